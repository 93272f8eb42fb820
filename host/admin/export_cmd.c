/*
 * export_cmd.c - `vedhost export` and `vedhost import`: backups of the
 * committed state as a portable stream (format: persist/trie/vh_export.h).
 *
 * EXPORT [--data DIR] [--at V] [--domain NAME]... [FILE|-]
 *   --at V: the retained version V (vh_version_spec.h) instead of the
 *   newest; the stream's seq is V's, so an import restores V.
 *   Opens DIR/db as a RocksDB secondary (offline.c: no lock, nothing
 *   written into DIR), so it runs beside a live host without pausing it.
 *   The secondary catches up once at open and never again, and the
 *   manifest is read once: every node read afterwards belongs to that one
 *   batch boundary, i.e. the state at the end of one slice. Each domain's
 *   root becomes a lazily loaded stub and is walked (nodes fault in as the
 *   walk reaches them). Without --domain the stream holds every domain of
 *   the manifest and the host's system state (durable timers, messages);
 *   with --domain only those domains. FILE "-" or no FILE: stdout, unless
 *   stdout is a terminal (refused: binary). A FILE is written as
 *   FILE.tmp-PID, fsync'd and renamed over FILE, so a failed export never
 *   leaves a half file under the final name. On a terminal (stderr is a
 *   tty) a progress line shows bytes and keys; piped, export is silent.
 *
 * IMPORT [--data DIR] [--replace-domain NAME] FILE|-
 *   The stream is read and verified completely (trailer, CRC, end of
 *   input) into memory BEFORE the target is touched: a damaged, truncated,
 *   newer or foreign stream is one line and the target is unchanged.
 *   Then:
 *   - without --replace-domain, DIR must be missing or empty (a LOCK file
 *     left by a stopped host is allowed; its lock is taken). The tables
 *     are collected (vh_flush_collect) into a store created in a temporary
 *     directory next to the target (DIR.import-PID when DIR is missing,
 *     DIR/.import-PID otherwise), with a manifest carrying the stream's
 *     slice seq, versions and roots, written with fsync and closed (the
 *     memtable flushed). The finished store is then renamed into place
 *     (rename(2) is atomic) and the parent directory fsync'd.
 *   - with --replace-domain NAME, DIR must hold a store of a STOPPED host
 *     (DIR/LOCK is taken; a running host holds it: refused). One batch
 *     carries NAME's new nodes (ids from the manifest's next id), a sweep
 *     key for the old root (the host deletes the old subtree on its next
 *     run, store_sweep.c) and the new manifest (seq + 1, NAME's root and
 *     the stream's version; other domains untouched). RocksDB writes the
 *     batch atomically, so the switch is all or nothing.
 *
 * Exit codes: 0 ok, 1 failure (one line on stderr starting "vedhost: "),
 * 2 bad usage.
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008: fsync, O_CLOEXEC */
#include "vh_export_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vh_datadir.h"
#include "vh_export.h"
#include "vh_flush.h"
#include "vh_cli_args.h"
#include "vh_manifest.h"
#include "vh_versions.h"
#include "vh_offline.h"
#include "vh_store.h"
#include "vh_trie.h"
#include "vh_version_spec.h"

static const char vh_export_usage[] =
    "usage: vedhost export [--data DIR] [--at V] [--domain NAME]... "
    "[FILE|-]\n"
    "  write a consistent snapshot of DIR (default " VH_DEFAULT_DATA_DIR
    ") as a\n"
    "  zstd-compressed stream to FILE, or to stdout for '-' or no FILE;\n"
    "  safe while a host runs on DIR. --domain (repeatable) limits it to\n"
    "  those domains (the host's timers and messages are then left out).\n"
    "  --at V writes the retained version V (a seq, -N, a time or a mark)\n"
    "  instead of the newest.\n";

static const char vh_import_usage[] =
    "usage: vedhost import [--data DIR] [--replace-domain NAME] FILE|-\n"
    "  restore an export stream into DIR (default " VH_DEFAULT_DATA_DIR
    "), which\n"
    "  must be missing or empty; with --replace-domain, replace only the\n"
    "  domain NAME in the data dir of a stopped host.\n";

/* ---- arguments ---- */

typedef struct vh_xargs {
  const char *data;   /* --data */
  const char **names; /* [owned array] --domain / --replace-domain */
  int nnames;
  const char *file; /* the positional argument, or NULL */
  const char *at;   /* export --at, or NULL */
} vh_xargs_t;

static int vh_export__arg(void *arg, int opt, const char *val) {
  vh_xargs_t *x = arg;
  if (opt < 0)
    x->file = val;
  else if (opt == 0)
    x->data = val;
  else if (opt == 2)
    x->at = val;
  else
    x->names[x->nnames++] = val;
  return 0;
}

/* 0 ok, 1 --help printed, 2 usage error printed. opt: "--domain"
 * (repeatable, many 1) or "--replace-domain" (at most once, many 0). */
static int vh_export_args(int argc, char **argv, const char *usage,
                          const char *opt, int many, vh_xargs_t *x) {
  memset(x, 0, sizeof *x);
  x->data = VH_DEFAULT_DATA_DIR;
  x->names = calloc((size_t)argc + 1, sizeof *x->names);
  if (x->names == NULL) return 2;
  /* --at only for export (many: the --domain form) */
  const vh_cli_opt_t opts[] = {
      {"--data", 1, 0}, {opt, 1, many}, {"--at", 1, 0}};
  vh_cli_cmd_t cmd = {argv[0], opts, many ? 3 : 2, 1, usage};
  int rc = vh_cli_parse(&cmd, argc, argv, vh_export__arg, x);
  if (rc == 0 && x->at != NULL) { /* a malformed time is a usage error */
    int64_t t;
    char *msg = NULL;
    if (vh_version_parse_time(x->at, 0, &t, &msg) < 0)
      rc = vh_cli_bad(argv[0], "--at: %s", msg ? msg : "bad version");
    free(msg);
  }
  return rc;
}

/* ---- progress on a terminal ---- */

typedef struct vh_xprog {
  const char *verb; /* "export" / "import" */
  int shown;        /* a progress line is on screen */
} vh_xprog_t;

static void vh_export_progress(void *arg, const vh_export_stats_t *st) {
  vh_xprog_t *p = arg;
  fprintf(stderr, "\r%s: %.1f MB (%.1f MB compressed), %" PRIu64 " keys  ",
          p->verb, (double)st->raw_bytes / 1e6, (double)st->zst_bytes / 1e6,
          st->keys);
  p->shown = 1;
}

static void vh_export_progress_end(vh_xprog_t *p) {
  if (p->shown) fputc('\n', stderr);
  p->shown = 0;
}

/* ---- output ---- */

typedef struct vh_xout {
  int fd;
  int err; /* errno of the first failed write */
} vh_xout_t;

static int vh_export_write_fd(void *arg, const void *p, size_t len) {
  vh_xout_t *o = arg;
  const char *s = p;
  while (len > 0) {
    ssize_t n = write(o->fd, s, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      o->err = n < 0 ? errno : EIO;
      return VH_EIO;
    }
    s += n;
    len -= (size_t)n;
  }
  return 0;
}

/* fsync the directory that holds path. */
static void vh_export_sync_parent(const char *path) {
  char *d = strdup(path);
  if (d == NULL) return;
  char *slash = strrchr(d, '/');
  const char *dir = ".";
  if (slash == d)
    dir = "/";
  else if (slash != NULL) {
    *slash = '\0';
    dir = d;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(d);
}

/* Writes the stream of o's state; 0 or 1 (message printed). */
static int vh_export_run(vh_offline_t *o, const vh_xargs_t *x, vh_xout_t *out,
                         vh_export_stats_t *st) {
  vh_export_header_t h;
  vh_export_writer_t *w = NULL;
  vh_xprog_t prog = {"export", 0};
  char *msg = NULL;
  int rc = 0;
  memset(&h, 0, sizeof h);
  h.seq = o->man.seq;
  const vh_manifest_domain_t **sel = calloc(o->man.ndomains + 1, sizeof *sel);
  if (sel == NULL) rc = VH_ENOMEM;
  for (int i = 0; i < x->nnames && rc == 0; i++) {
    const vh_manifest_domain_t *d = vh_manifest_find(&o->man, x->names[i]);
    if (d == NULL) {
      fprintf(stderr,
              "vedhost: no domain '%s' in %s; `vedhost inspect "
              "--data %s` lists them\n",
              x->names[i], x->data, x->data);
      free(sel);
      return 1;
    }
    int dup = 0;
    for (size_t j = 0; j < h.ndomains; j++) dup |= sel[j] == d;
    if (!dup) {
      sel[h.ndomains] = d;
      rc = vh_export_header_add(&h, d->name, d->version);
    }
  }
  for (size_t i = 0; x->nnames == 0 && i < o->man.ndomains && rc == 0; i++) {
    sel[i] = &o->man.domains[i];
    rc = vh_export_header_add(&h, sel[i]->name, sel[i]->version);
  }
  if (x->nnames == 0 && o->man.sys_root != 0) h.flags |= VH_EXPORT_F_SYS;
  if (rc == 0) rc = vh_export_writer_new(vh_export_write_fd, out, 0, &w);
  if (rc == 0 && isatty(2))
    vh_export_writer_set_progress(w, vh_export_progress, &prog);
  if (rc == 0) rc = vh_export_write_header(w, &h, &msg);
  vh_offline_use_loader(o);
  size_t ntabs = h.ndomains + ((h.flags & VH_EXPORT_F_SYS) ? 1 : 0);
  for (size_t i = 0; i < ntabs && rc == 0; i++) {
    uint64_t id = i < h.ndomains ? sel[i]->root : o->man.sys_root;
    vh_tab_t *t = vh_tab_stub(id);
    if (t == NULL) {
      rc = VH_ENOMEM;
      break;
    }
    rc = vh_export_write_table(w, t, &msg);
    vh_tab_release(t);
  }
  if (rc == 0) rc = vh_export_write_finish(w, st, &msg);
  vh_export_progress_end(&prog);
  if (rc != 0) {
    if (out->err != 0)
      fprintf(stderr, "vedhost: export: cannot write the output: %s\n",
              strerror(out->err));
    else
      fprintf(stderr, "vedhost: export of %s failed: %s\n", x->data,
              msg ? msg : vh_err_name(rc));
  }
  free(msg);
  free(sel);
  vh_export_writer_free(w);
  vh_export_header_free(&h);
  return rc != 0;
}

int vh_export_main(int argc, char **argv) {
  vh_xargs_t x;
  int rc = vh_export_args(argc, argv, vh_export_usage, "--domain", 1, &x);
  if (rc != 0) {
    free(x.names);
    return rc == 1 ? 0 : 2;
  }
  int to_stdout = x.file == NULL || strcmp(x.file, "-") == 0;
  if (to_stdout && isatty(1)) {
    fprintf(stderr,
            "vedhost: export writes binary data: give a FILE or "
            "pipe it (vedhost export - | ...)\n");
    free(x.names);
    return 2;
  }
  char err[1024];
  vh_offline_t o;
  if (vh_offline_open(&o, x.data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: %s\n", err);
    free(x.names);
    return 1;
  }
  if (vh_offline_at(&o, x.at, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: export: %s\n", err);
    vh_offline_close(&o);
    free(x.names);
    return 1;
  }
  vh_xout_t out = {1, 0};
  char *tmp = NULL;
  /* A FILE that is a FIFO or a device (not a regular file) is written
   * into, as stdout is: renaming a temporary file over it would replace
   * the pipe or the device node. */
  struct stat fst;
  int direct = !to_stdout && stat(x.file, &fst) == 0 && !S_ISREG(fst.st_mode) &&
               !S_ISDIR(fst.st_mode);
  if (direct) {
    out.fd = open(x.file, O_WRONLY | O_CLOEXEC);
    if (out.fd < 0 || isatty(out.fd)) {
      if (out.fd < 0)
        fprintf(stderr, "vedhost: cannot open %s: %s\n", x.file,
                strerror(errno));
      else
        fprintf(stderr,
                "vedhost: export writes binary data: %s is a "
                "terminal; give a FILE\n",
                x.file);
      if (out.fd >= 0) close(out.fd);
      vh_offline_close(&o);
      free(x.names);
      return 1;
    }
  } else if (!to_stdout) {
    size_t n = strlen(x.file) + 32;
    tmp = malloc(n);
    if (tmp != NULL) {
      snprintf(tmp, n, "%s.tmp-%ld", x.file, (long)getpid());
      out.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (tmp == NULL || out.fd < 0) {
      fprintf(stderr, "vedhost: cannot create %s: %s\n", tmp ? tmp : x.file,
              strerror(errno));
      free(tmp);
      vh_offline_close(&o);
      free(x.names);
      return 1;
    }
  }
  vh_export_stats_t st;
  memset(&st, 0, sizeof st);
  rc = vh_export_run(&o, &x, &out, &st);
  vh_offline_close(&o);
  if (direct) {
    close(out.fd);
  } else if (!to_stdout) {
    if (rc == 0 && fsync(out.fd) != 0) {
      fprintf(stderr, "vedhost: cannot write %s: %s\n", tmp, strerror(errno));
      rc = 1;
    }
    close(out.fd);
    if (rc == 0 && rename(tmp, x.file) != 0) {
      fprintf(stderr, "vedhost: cannot rename %s to %s: %s\n", tmp, x.file,
              strerror(errno));
      rc = 1;
    }
    if (rc != 0)
      unlink(tmp);
    else
      vh_export_sync_parent(x.file);
  }
  if (rc == 0 && isatty(2))
    fprintf(stderr, "export: %" PRIu64 " keys, %.1f MB -> %.1f MB\n", st.keys,
            (double)st.raw_bytes / 1e6, (double)st.zst_bytes / 1e6);
  free(tmp);
  free(x.names);
  return rc;
}

/* ================================ import ================================ */

static int vh_import_read_fd(void *arg, void *p, size_t cap, size_t *got) {
  int fd = *(int *)arg;
  for (;;) {
    ssize_t n = read(fd, p, cap);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return VH_EIO;
    *got = (size_t)n;
    return 0;
  }
}

/* The verified content of a stream. */
typedef struct vh_import {
  vh_export_header_t h;
  vh_tab_t **tabs; /* [owned] h.ndomains tables (NULL for skipped ones) */
  vh_tab_t *sys;   /* [owned] system state or NULL */
  vh_export_stats_t st;
} vh_import_t;

static void vh_import_free(vh_import_t *im) {
  for (size_t i = 0; im->tabs && i < im->h.ndomains; i++)
    if (im->tabs[i]) vh_tab_release(im->tabs[i]);
  free(im->tabs);
  if (im->sys) vh_tab_release(im->sys);
  vh_export_header_free(&im->h);
  memset(im, 0, sizeof *im);
}

/* Reads and verifies the whole stream from fd; only `only` (if not NULL)
 * is kept. 0 or 1 (message printed). */
static int vh_import_read(int fd, const char *src, const char *only,
                          vh_import_t *im) {
  vh_export_reader_t *r = NULL;
  vh_xprog_t prog = {"import", 0};
  char *msg = NULL;
  uint64_t edit = vh_edit_new();
  memset(im, 0, sizeof *im);
  int rc = vh_export_reader_new(vh_import_read_fd, &fd, &r);
  if (rc == 0 && isatty(2))
    vh_export_reader_set_progress(r, vh_export_progress, &prog);
  if (rc == 0) rc = vh_export_read_header(r, &im->h, &msg);
  if (rc == 0) {
    im->tabs = calloc(im->h.ndomains + 1, sizeof *im->tabs);
    if (im->tabs == NULL) rc = VH_ENOMEM;
  }
  for (size_t i = 0; i < im->h.ndomains && rc == 0; i++) {
    rc = vh_export_read_table(r, edit, &im->tabs[i], &msg);
    if (rc == 0 && only != NULL && strcmp(im->h.domains[i].name, only) != 0) {
      vh_tab_release(im->tabs[i]);
      im->tabs[i] = NULL;
    }
  }
  if (rc == 0 && (im->h.flags & VH_EXPORT_F_SYS)) {
    rc = vh_export_read_table(r, edit, &im->sys, &msg);
    if (rc == 0 && only != NULL) {
      vh_tab_release(im->sys);
      im->sys = NULL;
    }
  }
  if (rc == 0) rc = vh_export_read_finish(r, &im->st, &msg);
  vh_export_progress_end(&prog);
  vh_export_reader_free(r);
  if (rc != 0) {
    fprintf(stderr, "vedhost: import: %s: %s; nothing was changed\n", src,
            msg ? msg : vh_err_name(rc));
    free(msg);
    vh_import_free(im);
    return 1;
  }
  return 0;
}

static int vh_import_put(void *arg, uint64_t id, const void *bytes,
                         size_t len) {
  return vh_batch_put_node(arg, id, bytes, len);
}

/* Writes im into a new store at dir (created): 0 or 1 (message printed). */
/* The end of an import's only write: unless rc (the status so far) is
 * already an error, puts manifest m into *b, submits *b [stolen, *b set to
 * NULL] as batch seq and waits until it is durable; then closes s (if
 * open) either way. Returns the first error; when that is the close's,
 * *msg (NULL until then) gets its [new] message. */
static int vh_import_commit(vh_store_t *s, vh_batch_t **b,
                            const vh_manifest_t *m, uint64_t seq, int rc,
                            char **msg) {
  void *mb = NULL;
  size_t ml = 0;
  if (rc == 0) rc = vh_manifest_encode(m, &mb, &ml);
  if (rc == 0) rc = vh_batch_set_manifest(*b, mb, ml);
  free(mb);
  if (rc == 0) {
    rc = vh_store_submit(s, *b, seq);
    *b = NULL;
  }
  if (rc == 0) rc = vh_store_wait_durable(s, seq);
  if (s != NULL) {
    char *cmsg = NULL;
    int crc = vh_store_close(s, &cmsg);
    if (rc == 0 && crc != 0) {
      rc = crc;
      *msg = cmsg;
    } else {
      free(cmsg);
    }
  }
  return rc;
}

/* The replaced domain makes a new version (persist/store/history.c): the old
 * root goes to its death list (dead, 0 if none), collected once no
 * retained version reaches it, like a slice's. No version is dropped here
 * (the next run's --retain does that). */
static int vh_import_history(vh_store_t *s, vh_batch_t *b,
                             const vh_manifest_t *m, const char *name,
                             uint64_t dead, char **msg) {
  vh_retain_t keep;
  memset(&keep, 0, sizeof keep);
  vh_hist_t *H = NULL;
  int rc = vh_hist_open(s, &keep, &H, msg);
  void *mb = NULL;
  size_t ml = 0;
  if (rc == 0) rc = vh_manifest_encode(m, &mb, &ml);
  if (rc == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char *changed[1] = {(char *)name};
    vh_hist_slice_t sl;
    memset(&sl, 0, sizeof sl);
    sl.seq = m->seq;
    sl.is_version = 1;
    sl.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    sl.changed = changed;
    sl.nchanged = 1;
    sl.man = mb;
    sl.manlen = ml;
    sl.next_id = m->next_id;
    sl.dead = &dead;
    sl.ndead = dead ? 1 : 0;
    sl.durable = UINT64_MAX;
    rc = vh_hist_slice(H, b, &sl, NULL, NULL, msg);
  }
  free(mb);
  vh_hist_free(H);
  return rc;
}

static int vh_import_build(const char *dir, vh_import_t *im) {
  vh_store_opts_t so;
  vh_store_t *s = NULL;
  vh_batch_t *b = NULL;
  vh_manifest_t m;
  char *msg = NULL;
  memset(&m, 0, sizeof m);
  vh_store_opts_init(&so);
  so.create = 1;
  so.sync = 1;
  int rc = vh_store_open(dir, &so, &s, &msg);
  size_t n = im->h.ndomains, nroots = n + (im->sys ? 1 : 0);
  vh_tab_t **roots = calloc(nroots + 1, sizeof *roots);
  if (rc == 0 && roots == NULL) rc = VH_ENOMEM;
  if (rc == 0) rc = vh_batch_new(&b);
  for (size_t i = 0; i < n && rc == 0; i++) roots[i] = im->tabs[i];
  if (rc == 0 && im->sys) roots[n] = im->sys;
  uint64_t next_id = 1;
  if (rc == 0)
    rc = vh_flush_collect(roots, nroots, &next_id, vh_import_put, b, NULL);
  m.seq = im->h.seq;
  m.next_id = next_id;
  m.sys_root = im->sys ? vh_tab_id(im->sys) : 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = vh_manifest_add(&m, im->h.domains[i].name, vh_tab_id(roots[i]),
                         im->h.domains[i].version);
  rc = vh_import_commit(s, &b, &m, 1, rc, &msg);
  if (rc != 0)
    fprintf(stderr, "vedhost: import: cannot write the store in %s: %s\n", dir,
            msg ? msg : vh_err_name(rc));
  free(msg);
  free(roots);
  vh_batch_free(b);
  vh_manifest_free(&m);
  return rc != 0;
}

static int vh_import_dir_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return 0;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
        strcmp(e->d_name, "LOCK") == 0)
      continue;
    empty = 0;
  }
  closedir(d);
  return empty;
}

/* Import into a missing or empty data dir. */
static int vh_import_fresh(const char *data, vh_import_t *im) {
  struct stat sb;
  char err[1024];
  size_t n = strlen(data) + 64;
  char *tmp = malloc(n), *dst = malloc(n);
  int rc = 1, had_lock = 1;
  vh_datadir_t dd = {NULL, -1};
  if (tmp == NULL || dst == NULL) goto done;
  if (stat(data, &sb) != 0) {
    if (errno != ENOENT) {
      fprintf(stderr, "vedhost: import: cannot use %s: %s\n", data,
              strerror(errno));
      goto done;
    }
    /* Missing: build DIR.import-PID beside it, rename it to DIR. */
    snprintf(tmp, n, "%s.import-%ld", data, (long)getpid());
    snprintf(dst, n, "%s", data);
    vh_offline_rm_tree(tmp);
    if (mkdir(tmp, 0700) != 0) {
      fprintf(stderr, "vedhost: import: cannot create %s: %s\n", tmp,
              strerror(errno));
      goto done;
    }
    if (vh_import_build(tmp, im) != 0) {
      vh_offline_rm_tree(tmp);
      goto done;
    }
    if (rename(tmp, dst) != 0) {
      fprintf(stderr, "vedhost: import: cannot rename %s to %s: %s\n", tmp, dst,
              strerror(errno));
      vh_offline_rm_tree(tmp);
      goto done;
    }
    vh_export_sync_parent(dst);
    rc = 0;
    goto done;
  }
  /* Present: check it is empty (before writing anything into it: a
   * refused import leaves the target exactly as it was), lock it (no host
   * may start meanwhile) and check again. A LOCK file this import created
   * is removed again when it fails. */
  if (!S_ISDIR(sb.st_mode)) {
    fprintf(stderr,
            "vedhost: import: %s is not a directory; nothing was "
            "changed\n",
            data);
    goto done;
  }
  snprintf(tmp, n, "%s/LOCK", data);
  had_lock = lstat(tmp, &sb) == 0;
  if (vh_import_dir_empty(data) &&
      vh_datadir_open(&dd, data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: import: %s; nothing was changed\n", err);
    goto done;
  }
  if (!vh_import_dir_empty(data)) {
    fprintf(stderr,
            "vedhost: import: data dir %s is not empty; nothing was "
            "changed; import into a new dir, or use --replace-domain NAME "
            "on a stopped host\n",
            data);
    goto done;
  }
  snprintf(tmp, n, "%s/.import-%ld", data, (long)getpid());
  snprintf(dst, n, "%s/db", data);
  if (mkdir(tmp, 0700) != 0) {
    fprintf(stderr, "vedhost: import: cannot create %s: %s\n", tmp,
            strerror(errno));
    goto done;
  }
  if (vh_import_build(tmp, im) == 0) {
    char *src = malloc(n);
    if (src != NULL) {
      snprintf(src, n, "%s/db", tmp);
      if (rename(src, dst) == 0)
        rc = 0;
      else
        fprintf(stderr, "vedhost: import: cannot rename %s to %s: %s\n", src,
                dst, strerror(errno));
      free(src);
    }
  }
  vh_offline_rm_tree(tmp);
  if (rc == 0) vh_export_sync_parent(dst);
done:
  if (rc != 0 && !had_lock && dd.path != NULL) {
    snprintf(tmp, n, "%s/LOCK", data);
    unlink(tmp); /* still ours: the lock is held until the close below */
  }
  if (dd.path != NULL) vh_datadir_close(&dd);
  free(tmp);
  free(dst);
  return rc;
}

/* Replace one domain in the store of a stopped host. */
static int vh_import_replace(const char *data, const char *name,
                             vh_import_t *im) {
  size_t k = 0;
  while (k < im->h.ndomains && strcmp(im->h.domains[k].name, name) != 0) k++;
  if (k == im->h.ndomains) {
    fprintf(stderr,
            "vedhost: import: the stream has no domain '%s'; "
            "nothing was changed\n",
            name);
    return 1;
  }
  struct stat sb;
  if (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr,
            "vedhost: import: no data dir %s to replace domain "
            "'%s' in; import into a new dir without --replace-domain\n",
            data, name);
    return 1;
  }
  char err[1024];
  vh_datadir_t dd = {NULL, -1};
  if (vh_datadir_open(&dd, data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: import: %s\n", err); /* says what to do */
    return 1;
  }
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  so.sync = 1;
  vh_store_t *s = NULL;
  vh_batch_t *b = NULL;
  vh_manifest_t m;
  memset(&m, 0, sizeof m);
  char *msg = NULL;
  int rc = vh_store_open(data, &so, &s, &msg);
  if (rc == 0) {
    rc = vh_offline_read_manifest(s, &m, &msg);
    if (rc == VH_ENOENT) {
      m.next_id = 1;
      rc = 0;
    }
  }
  if (rc == 0) rc = vh_batch_new(&b);
  uint64_t next_id = m.next_id ? m.next_id : 1;
  vh_tab_t *root = im->tabs[k];
  if (rc == 0)
    rc = vh_flush_collect(&root, 1, &next_id, vh_import_put, b, NULL);
  vh_manifest_domain_t *old = NULL;
  uint64_t dead = 0; /* the replaced root: a never-loaded subtree */
  for (size_t i = 0; i < m.ndomains; i++)
    if (strcmp(m.domains[i].name, name) == 0) old = &m.domains[i];
  if (rc == 0 && old != NULL) {
    dead = VH_DEAD(old->root, 1);
    old->root = vh_tab_id(root);
    old->version = im->h.domains[k].version;
  } else if (rc == 0) {
    rc = vh_manifest_add(&m, name, vh_tab_id(root), im->h.domains[k].version);
  }
  m.seq++;
  m.next_id = next_id;
  if (rc == 0) rc = vh_import_history(s, b, &m, name, dead, &msg);
  rc = vh_import_commit(s, &b, &m, m.seq, rc, &msg);
  if (rc != 0)
    fprintf(stderr, "vedhost: import: cannot replace domain '%s' in %s: %s\n",
            name, data, msg ? msg : vh_err_name(rc));
  free(msg);
  vh_batch_free(b);
  vh_manifest_free(&m);
  vh_datadir_close(&dd);
  return rc != 0;
}

int vh_import_main(int argc, char **argv) {
  vh_xargs_t x;
  int rc =
      vh_export_args(argc, argv, vh_import_usage, "--replace-domain", 0, &x);
  if (rc != 0) {
    free(x.names);
    return rc == 1 ? 0 : 2;
  }
  if (x.file == NULL) {
    fprintf(stderr,
            "vedhost: import needs a FILE (or - for stdin); see "
            "vedhost --help\n");
    free(x.names);
    return 2;
  }
  const char *only = x.nnames > 0 ? x.names[0] : NULL;
  int from_stdin = strcmp(x.file, "-") == 0;
  int fd = from_stdin ? 0 : open(x.file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "vedhost: import: cannot open %s: %s\n", x.file,
            strerror(errno));
    free(x.names);
    return 1;
  }
  vh_import_t im;
  rc = vh_import_read(fd, from_stdin ? "stdin" : x.file, only, &im);
  if (!from_stdin) close(fd);
  if (rc == 0) {
    rc = only ? vh_import_replace(x.data, only, &im)
              : vh_import_fresh(x.data, &im);
    if (rc == 0 && isatty(2))
      fprintf(stderr, "import: %" PRIu64 " keys into %s\n", im.st.keys, x.data);
    vh_import_free(&im);
  }
  free(x.names);
  return rc;
}
