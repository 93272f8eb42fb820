/*
 * reload.c - hot reload: watch the domain scripts, run them again in fresh
 * environments, and swap the new code in between two slices, state kept.
 *
 * TRIGGERS. Three ways start a reload, all on the loop thread:
 *   - a change to a script (unless --no-watch): a uv_fs_event on every
 *     directory involved (directories named on the command line, and the
 *     parent of every script file named) and on every script file named.
 *     The directory watch is what survives how editors save (write in
 *     place, write a temp file then rename it over, delete then create):
 *     the file's own watch dies with its inode, and is re-armed before
 *     every reload; it is there for scripts that are symlinks. Events are
 *     filtered (a file named on the command line, or any *.lua not
 *     starting with '.' of a directory named) and debounced: a reload runs
 *     once no relevant event came for VH_RELOAD_QUIET_MS. A watch-
 *     triggered reload is skipped when the set of scripts and the bytes of
 *     every script are what the running code was loaded from (FNV-1a
 *     hashes), so `touch` or an editor rewriting the same bytes costs
 *     nothing.
 *   - SIGHUP: reloads everything, even when nothing changed.
 *   - vh_host_reload (the REPL's :reload): the same, synchronously.
 *
 * WHAT A RELOAD DOES (vh_reload_do). It is a slice of its own: the slice
 * that ran so far is ended first (vh_slice_end), the reload runs, and its
 * own slice is ended after it, so no handler call of another event sits in
 * the reload's slice.
 *
 *   1. Collect: list the scripts again (a directory may have gained or
 *      lost files) and read them. A missing script fails the reload.
 *   2. Stage: run every script in a fresh _ENV, like at boot, but with
 *      h->doms swapped for an empty array, so the ved.domain declarations
 *      land in a NEW registry of staged records (vh_host__register is
 *      unchanged). Each script runs under the handler time budget and
 *      memory limit (a top level that loops forever fails the reload
 *      instead of hanging a running host). Load-time ved.send / after /
 *      every go into h->pend as usual, and h->pend_hold keeps them there.
 *   3. Plan: pair each staged record with the live record of that name.
 *      A version lower than the running one fails the reload.
 *   4. Swap and run: for a paired domain, the code fields (on, start,
 *      migrate refs, the unhandled-events table, where, src_hash) are
 *      swapped between the live and the staged record, so the live record
 *      (which keeps the state, the ctx and the version) runs the new code;
 *      an added domain's staged record joins h->doms. Then, in declaration
 *      order, migrate(state, old_version) for every domain whose version
 *      grew, then start(state, ctx) for every declared domain, each as an
 *      ordinary handler call (call.c). Their messages, `after` and `every`
 *      timers stay held in h->pend.
 *   5a. Any failure (syntax error, error at load, a script declaring no
 *      domain, a downgrade, migrate or start raising): every paired
 *      domain's root is set back to the root it had before step 4 (a
 *      persistent trie: that root is intact), the code fields are swapped
 *      back, added records leave h->doms, and h->pend is dropped (sends
 *      become `false` slots, timers are deleted, every timers freed). The
 *      old code keeps running; the error is logged with file:line.
 *   5b. Success: the old `every` timers of every paired domain are closed
 *      (start registered the new ones), versions are updated (the domain
 *      record's `version` is the one place it lives, and it only changes
 *      here), live domains the scripts no longer declare are retired, and
 *      h->pend is applied (new every timers start, `after` timers join the
 *      heap). Durable `after` timers and queued messages are not touched:
 *      they name domain + event, and find the new handlers when they run.
 *
 * RETIRED DOMAINS. A domain the new scripts do not declare keeps its
 * record and its state, but loses its code: its `on` table becomes empty
 * and its every timers stop. Messages and timers for it are dropped when
 * they come due, logged once per event name (call.c's unhandled path). A
 * later reload that declares it again brings it back with its state (and
 * runs migrate if its version grew).
 *
 * LIMITATIONS. Modules loaded with require stay cached in package.loaded:
 * a reload does not re-read them. The message-header cache (sched.c) keys
 * on domain record addresses, so it is emptied after every reload (staged
 * records are freed and their addresses may come back).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_bytes.h"
#include "vh_log.h"

/* A burst of file events is one reload, run after this quiet period. */
#define VH_RELOAD_QUIET_MS 50

#define vh_reload_container(ptr, type, field) \
  ((type *)((char *)(ptr)-offsetof(type, field)))

/* A script as loaded: path and the hash of its bytes. */
typedef struct vh_rfile {
  char *path;    /* [owned] the argument, or "dir/name.lua" */
  uint64_t hash; /* FNV-1a 64 of the bytes */
  char *src;     /* [owned] the bytes while a reload runs, else NULL */
  size_t len;
} vh_rfile_t;

/* One uv_fs_event watch. The array holding these is allocated once, when
 * the loop starts, and freed after the loop closed its handles. */
typedef struct vh_rwatch {
  uv_fs_event_t ev;
  struct vh_reload *rl; /* [borrowed] */
  char *path;           /* [owned] what is watched */
  char *parent;         /* [owned] file watches: its directory; else NULL */
  char *base;           /* [owned] file watches: its base name; else NULL */
  int is_dir;
  int all_lua; /* a directory named on the command line */
  int active;  /* uv_fs_event_start succeeded */
} vh_rwatch_t;

struct vh_reload {
  vh_host_t *h; /* [borrowed] */
  char **args;  /* [owned] SCRIPT_OR_DIR arguments, in order */
  int nargs, capargs;
  vh_rfile_t *files; /* [owned] scripts of the running code (src NULL) */
  int nfiles, capfiles;
  vh_rwatch_t *watches; /* [owned] nwatches entries */
  int nwatches;
  uv_timer_t debounce; /* data stays NULL (sched.c's close callback) */
  uv_signal_t sighup;
  int handles;       /* debounce and sighup are initialised */
  int busy;          /* a reload runs (no nesting) */
  uint64_t nreloads; /* successful reloads */
};

/* One staged domain and what it replaces. */
typedef struct vh_rplan {
  vh_domain_t *s; /* [owned until committed as an added domain] */
  vh_domain_t *o; /* [borrowed] live record of the same name, or NULL */
  vh_tab_t *root; /* [owned] o's root before the reload, or NULL */
  int changed;    /* o runs and its script's bytes or version changed */
  int added;      /* no live record, or a retired one */
} vh_rplan_t;

/* ---- files ---- */

static uint64_t vh_reload_hash(const char *p, size_t n) {
  uint64_t x = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) {
    x ^= (unsigned char)p[i];
    x *= 1099511628211ULL;
  }
  return x;
}

/* Open a script for reading: fd [new] in *fd. O_NONBLOCK so that a FIFO
 * (or a device) named *.lua cannot block the loop in open(); only a
 * regular file is accepted, and for one O_NONBLOCK changes nothing, so
 * it is read as usual. 0, or VH_HOST_ELOAD with one line in err. */
int vh_reload__open_script(const char *path, int *fd, char *err, size_t cap) {
  struct stat sb;
  /* stat first: open() of a socket fails (ENXIO) and a device is better
   * not opened at all; fstat below covers a swap in between */
  int f = stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)
              ? -2
              : open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (f == -1) {
    snprintf(err, cap, "cannot open script %s: %s", path, strerror(errno));
    return VH_HOST_ELOAD;
  }
  if (f == -2 || fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    const char *kind = S_ISFIFO(sb.st_mode)   ? "a FIFO"
                       : S_ISDIR(sb.st_mode)  ? "a directory"
                       : S_ISSOCK(sb.st_mode) ? "a socket"
                       : S_ISCHR(sb.st_mode)  ? "a character device"
                       : S_ISBLK(sb.st_mode)  ? "a block device"
                                              : "unknown";
    snprintf(err, cap,
             "script %s is not a regular file (%s); only regular files are "
             "loaded",
             path, kind);
    if (f >= 0) close(f);
    return VH_HOST_ELOAD;
  }
  *fd = f;
  return 0;
}

/* Read path into *out [new, malloc'ed] and *len. 0 or VH_HOST_ELOAD. */
static int vh_reload_read(const char *path, char **out, size_t *len, char *err,
                          size_t cap) {
  int fd;
  if (vh_reload__open_script(path, &fd, err, cap) != 0) return VH_HOST_ELOAD;
  vh_buf_t b = {0};
  int bad = 0, oom = 0;
  for (;;) {
    if (vh_buf_reserve(&b, 4096) != 0) {
      oom = 1;
      break;
    }
    ssize_t got = read(fd, b.p + b.len, b.cap - b.len);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      bad = got < 0;
      break;
    }
    b.len += (size_t)got;
  }
  int e = errno;
  close(fd);
  if (bad || oom) {
    vh_buf_free(&b);
    snprintf(err, cap, "cannot read script %s: %s", path,
             oom ? "out of memory" : strerror(e));
    return VH_HOST_ELOAD;
  }
  *out = (char *)b.p;
  *len = b.len;
  return 0;
}

static void vh_rfiles_free(vh_rfile_t *f, int n) {
  for (int i = 0; i < n; i++) {
    free(f[i].path);
    free(f[i].src);
  }
  free(f);
}

/* Append path [stolen] to the array. 0 or VH_ENOMEM. */
static int vh_rfiles_push(vh_rfile_t **a, int *n, int *cap, char *path) {
  if (!path) return VH_ENOMEM;
  size_t c = (size_t)*cap;
  if (vh_grow(a, &c, (size_t)*n + 1, sizeof **a) != 0) {
    free(path);
    return VH_ENOMEM;
  }
  *cap = (int)c;
  memset(&(*a)[*n], 0, sizeof **a);
  (*a)[(*n)++].path = path;
  return 0;
}

/* A script name in a directory: "*.lua", not hidden (as host.c loads). */
static int vh_reload_is_lua(const char *name) {
  size_t len = strlen(name);
  return len >= 5 && strcmp(name + len - 4, ".lua") == 0 && name[0] != '.';
}

static int vh_reload_cmp(const void *a, const void *b) {
  return strcmp(((const vh_rfile_t *)a)->path, ((const vh_rfile_t *)b)->path);
}

/* Append the *.lua of dir in sorted order (as host.c's load_dir). */
static int vh_reload_list_dir(const char *dir, vh_rfile_t **a, int *n, int *cap,
                              char *err, size_t errcap) {
  DIR *dp = opendir(dir);
  if (!dp) {
    snprintf(err, errcap, "cannot read directory %s: %s", dir, strerror(errno));
    return VH_HOST_ELOAD;
  }
  int first = *n, rc = 0;
  struct dirent *de;
  while (rc == 0 && (de = readdir(dp)) != NULL) {
    if (!vh_reload_is_lua(de->d_name)) continue;
    size_t pl = strlen(dir) + strlen(de->d_name) + 2;
    char *p = malloc(pl);
    if (p) snprintf(p, pl, "%s/%s", dir, de->d_name);
    rc = vh_rfiles_push(a, n, cap, p);
  }
  closedir(dp);
  if (rc != 0) {
    snprintf(err, errcap, "out of memory");
    return rc;
  }
  if (*n == first) {
    snprintf(err, errcap, "directory %s has no .lua scripts", dir);
    return VH_HOST_ELOAD;
  }
  qsort(*a + first, (size_t)(*n - first), sizeof **a, vh_reload_cmp);
  return 0;
}

/* The scripts the arguments name now, read and hashed: *out [new]. */
static int vh_reload_collect(struct vh_reload *rl, vh_rfile_t **out, int *nout,
                             char *err, size_t cap) {
  vh_rfile_t *a = NULL;
  int n = 0, c = 0, rc = 0;
  for (int i = 0; i < rl->nargs && rc == 0; i++) {
    struct stat sb;
    if (stat(rl->args[i], &sb) != 0) {
      snprintf(err, cap, "cannot open script %s: %s", rl->args[i],
               strerror(errno));
      rc = VH_HOST_ELOAD;
    } else if (S_ISDIR(sb.st_mode)) {
      rc = vh_reload_list_dir(rl->args[i], &a, &n, &c, err, cap);
    } else {
      rc = vh_rfiles_push(&a, &n, &c, strdup(rl->args[i]));
      if (rc != 0) snprintf(err, cap, "out of memory");
    }
  }
  for (int i = 0; i < n && rc == 0; i++) {
    rc = vh_reload_read(a[i].path, &a[i].src, &a[i].len, err, cap);
    if (rc == 0) a[i].hash = vh_reload_hash(a[i].src, a[i].len);
  }
  if (rc != 0) {
    vh_rfiles_free(a, n);
    return rc;
  }
  *out = a;
  *nout = n;
  return 0;
}

/* Are f[0..n) the scripts the running code was loaded from? */
static int vh_reload_same(const struct vh_reload *rl, const vh_rfile_t *f,
                          int n) {
  if (n != rl->nfiles) return 0;
  for (int i = 0; i < n; i++)
    if (f[i].hash != rl->files[i].hash ||
        strcmp(f[i].path, rl->files[i].path) != 0)
      return 0;
  return 1;
}

/* gate.c: the scripts on disk now, hashed (paths and bytes, in load
 * order) into *fp; *same = they are what the running code was loaded
 * from. 0, or VH_HOST_ELOAD with one line in err. */
int vh_reload__scan(vh_host_t *h, uint64_t *fp, int *same, char *err,
                    size_t cap) {
  struct vh_reload *rl = h->reload;
  vh_rfile_t *f = NULL;
  int n = 0;
  if (!rl) {
    snprintf(err, cap, "no scripts");
    return VH_HOST_ESTATE;
  }
  int rc = vh_reload_collect(rl, &f, &n, err, cap);
  if (rc != 0) return rc;
  uint64_t x = 1469598103934665603ULL;
  for (int i = 0; i < n; i++) {
    x = (x ^ vh_reload_hash(f[i].path, strlen(f[i].path))) * 1099511628211ULL;
    x = (x ^ f[i].hash) * 1099511628211ULL;
  }
  *fp = x;
  *same = vh_reload_same(rl, f, n);
  vh_rfiles_free(f, n);
  return 0;
}

/* ---- boot hooks (host.c) ---- */

static struct vh_reload *vh_reload_get(vh_host_t *h) {
  if (!h->reload) h->reload = calloc(1, sizeof *h->reload);
  if (h->reload) h->reload->h = h;
  return h->reload;
}

char **vh_reload__args(vh_host_t *h, int *n) {
  *n = h->reload ? h->reload->nargs : 0;
  return h->reload ? h->reload->args : NULL;
}

int vh_reload__track(vh_host_t *h, const char *path) {
  struct vh_reload *rl = vh_reload_get(h);
  if (!rl) return VH_ENOMEM;
  if (rl->nargs == rl->capargs) {
    int nc = rl->capargs ? rl->capargs * 2 : 4;
    char **na = realloc(rl->args, (size_t)nc * sizeof *na);
    if (!na) return VH_ENOMEM;
    rl->args = na;
    rl->capargs = nc;
  }
  char *p = strdup(path);
  if (!p) return VH_ENOMEM;
  rl->args[rl->nargs++] = p;
  return 0;
}

int vh_reload__set_args(vh_host_t *h, const char *const *paths, int n) {
  struct vh_reload *rl = vh_reload_get(h);
  if (!rl || n < 0) return VH_ENOMEM;
  char **na = calloc((size_t)n + 1, sizeof *na);
  if (!na) return VH_ENOMEM;
  for (int i = 0; i < n; i++)
    if (!(na[i] = strdup(paths[i]))) {
      for (int j = 0; j < i; j++) free(na[j]);
      free(na);
      return VH_ENOMEM;
    }
  for (int i = 0; i < rl->nargs; i++) free(rl->args[i]);
  free(rl->args);
  rl->args = na;
  rl->nargs = n;
  rl->capargs = n + 1;
  return 0;
}

void vh_reload__loaded(vh_host_t *h, const char *path, int first) {
  struct vh_reload *rl = vh_reload_get(h);
  char err[256], *src = NULL;
  size_t len = 0;
  uint64_t hash = 0; /* unreadable now: the next reload is not skipped */
  if (vh_reload_read(path, &src, &len, err, sizeof err) == 0)
    hash = vh_reload_hash(src, len);
  free(src);
  for (int i = first; i < h->ndoms; i++) h->doms[i]->src_hash = hash;
  if (!rl || vh_rfiles_push(&rl->files, &rl->nfiles, &rl->capfiles,
                            strdup(path)) != 0) {
    vh_log(VH_LOG_WARN, "vedhost", "out of memory tracking %s for reload",
           path);
    return;
  }
  rl->files[rl->nfiles - 1].hash = hash;
}

/* ---- staging ---- */

/* Run one script (its bytes in f) in a fresh _ENV; the domains it
 * declares are appended to h->doms (the staging array). */
static int vh_reload_exec(vh_host_t *h, const vh_rfile_t *f, char *err,
                          size_t cap) {
  lua_State *L = h->L;
  int top = lua_gettop(L), before = h->ndoms;
  const char *src = f->src;
  size_t len = f->len;
  /* As luaL_loadfilex: skip a UTF-8 BOM, and a first line starting with
   * '#' (its newline stays, so line numbers hold). */
  if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) {
    src += 3;
    len -= 3;
  }
  if (len > 0 && src[0] == '#') {
    const char *nl = memchr(src, '\n', len);
    size_t skip = nl ? (size_t)(nl - src) : len;
    src += skip;
    len -= skip;
  }
  lua_pushcfunction(L, vh_host__msgh);
  const char *chunk = lua_pushfstring(L, "@%s", f->path);
  int rc = luaL_loadbufferx(L, src, len, chunk, "t");
  lua_remove(L, -2);
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    /* a binary chunk's refusal names no file: say which */
    if (msg && strncmp(msg, "attempt to load", 15) == 0)
      msg = lua_pushfstring(L, "%s: %s", f->path, msg);
    vh_host__first_line(err, cap, msg ? msg : "cannot load");
    lua_settop(L, top);
    return VH_HOST_ELOAD;
  }
  /* Top levels run under the watchdog (vh_host__script_pcall). */
  rc = vh_host__run_script(h, f->path, top, before, vh_host__script_pcall, err,
                           cap);
  if (rc != 0) return rc;
  for (int i = before; i < h->ndoms; i++) h->doms[i]->src_hash = f->hash;
  return 0;
}

/* Free a record that never was, or no longer is, in h->doms, with its
 * Lua references. */
static void vh_reload_dom_free(lua_State *L, vh_domain_t *d) {
  int refs[] = {d->st_ref,      d->on_ref,        d->start_ref,
                d->migrate_ref, d->unhandled_ref, d->ctx_ref};
  for (int i = 0; i < 6; i++) luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
  free(d->name);
  free(d->where);
  if (d->name_s) vh_str_release(d->name_s);
  free(d);
}

/* Run f[0..n) with ved.domain declaring into a fresh array, returned in
 * *staged [new] (also on error, possibly partial). */
static int vh_reload_stage(vh_host_t *h, const vh_rfile_t *f, int n,
                           vh_domain_t ***staged, int *nstaged, char *err,
                           size_t cap) {
  vh_domain_t **live = h->doms;
  int nlive = h->ndoms, caplive = h->capdoms, rc = 0;
  h->doms = NULL;
  h->ndoms = h->capdoms = 0;
  h->phase = VH_PHASE_LOAD; /* vh_host__register accepts declarations */
  for (int i = 0; i < n && rc == 0; i++)
    rc = vh_reload_exec(h, &f[i], err, cap);
  h->phase = VH_PHASE_RUN;
  *staged = h->doms;
  *nstaged = h->ndoms;
  h->doms = live;
  h->ndoms = nlive;
  h->capdoms = caplive;
  return rc;
}

/* ---- swapping ---- */

static void vh_reload_swap_int(int *a, int *b) {
  int t = *a;
  *a = *b;
  *b = t;
}

/* Exchange the code of a and b (not state, ctx, version, timers). */
static void vh_reload_swap(vh_domain_t *a, vh_domain_t *b) {
  vh_reload_swap_int(&a->on_ref, &b->on_ref);
  vh_reload_swap_int(&a->start_ref, &b->start_ref);
  vh_reload_swap_int(&a->migrate_ref, &b->migrate_ref);
  vh_reload_swap_int(&a->unhandled_ref, &b->unhandled_ref);
  char *w = a->where;
  a->where = b->where;
  b->where = w;
  uint64_t x = a->src_hash;
  a->src_hash = b->src_hash;
  b->src_hash = x;
}

/* Steps 3-5a of the file comment: check, swap, migrate, start; undo all of
 * it on failure. */
static int vh_reload_apply(vh_host_t *h, vh_rplan_t *p, int np, char *err,
                           size_t cap) {
  int live = h->ndoms, nadd = 0, rc = 0;
  for (int i = 0; i < np; i++) {
    if (!p[i].o) {
      nadd++;
    } else if (p[i].s->version < p[i].o->version) {
      snprintf(err, cap,
               "%s: domain '%s': version %lld is lower than the running "
               "version %lld (a reload cannot downgrade a domain)",
               p[i].s->where, p[i].s->name, (long long)p[i].s->version,
               (long long)p[i].o->version);
      return VH_HOST_ELOAD;
    }
  }
  if (h->ndoms + nadd > h->capdoms) {
    int nc = h->ndoms + nadd + 8;
    vh_domain_t **nd = realloc(h->doms, (size_t)nc * sizeof *nd);
    if (!nd) {
      snprintf(err, cap, "out of memory");
      return VH_ENOMEM;
    }
    h->doms = nd;
    h->capdoms = nc;
  }
  for (int i = 0; i < np; i++) {
    if (p[i].o) {
      p[i].root = vhl_state_root(p[i].o->st);
      vh_tab_retain(p[i].root);
      vh_reload_swap(p[i].o, p[i].s);
    } else {
      h->doms[h->ndoms++] = p[i].s;
    }
  }
  char *e = NULL;
  for (int i = 0; i < np && rc == 0; i++) {
    vh_domain_t *o = p[i].o;
    if (!o || p[i].s->version <= o->version || o->migrate_ref == LUA_NOREF)
      continue;
    if (vh_host__dispatch(h, o, "migrate", 7, VH_DISPATCH_MIGRATE,
                          vh_int(o->version), NULL, &e) != 0) {
      snprintf(err, cap, "domain '%s': migrate from version %lld raised: %s",
               o->name, (long long)o->version, e ? e : "?");
      rc = VH_HOST_ELOAD;
    }
    free(e);
    e = NULL;
  }
  for (int i = 0; i < np && rc == 0; i++) {
    vh_domain_t *d = p[i].o ? p[i].o : p[i].s;
    if (d->start_ref == LUA_NOREF) continue;
    if (vh_host__dispatch(h, d, "start", 5, VH_DISPATCH_START, vh_nil(), NULL,
                          &e) != 0) {
      snprintf(err, cap, "domain '%s': start raised: %s", d->name, e ? e : "?");
      rc = VH_HOST_ELOAD;
    }
    free(e);
    e = NULL;
  }
  if (rc == 0) return 0;
  for (int i = 0; i < np; i++) {
    if (!p[i].o) continue;
    vhl_state_set_root(h->L, p[i].o->st, p[i].root); /* steals it */
    p[i].root = NULL;
    vh_reload_swap(p[i].o, p[i].s);
  }
  h->ndoms = live;
  return rc;
}

static void vh_reload_every_closed(uv_handle_t *hd) {
  vh_every__free((vh_every_t *)hd->data);
}

/* Close d's running every timers (freed in their close callback). */
static void vh_reload_stop_everies(vh_domain_t *d) {
  vh_every_t *e = d->everies;
  d->everies = NULL;
  while (e) {
    vh_every_t *next = e->next;
    uv_close((uv_handle_t *)&e->timer, vh_reload_every_closed);
    e = next;
  }
}

void vh_reload__drop_code(vh_host_t *h, vh_domain_t *d) {
  lua_State *L = h->L;
  int refs[] = {d->on_ref, d->start_ref, d->migrate_ref, d->unhandled_ref};
  for (int i = 0; i < 4; i++) luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
  lua_newtable(L);
  d->on_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  d->unhandled_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  d->start_ref = d->migrate_ref = LUA_NOREF;
  d->retired = 1;
}

/* d is no longer declared: drop its code and timers, keep its state. */
static void vh_reload_retire(vh_host_t *h, vh_domain_t *d) {
  vh_reload_stop_everies(d);
  vh_reload__drop_code(h, d);
  vh_log(VH_LOG_WARN, d->name,
         "no longer declared by the scripts: its state is kept, events for "
         "it are dropped (logged once per event)");
}

/* Append name to a ", "-separated list in buf. */
static void vh_reload_list_add(char *buf, size_t cap, const char *name) {
  size_t used = strlen(buf);
  if (used + 4 >= cap) return;
  int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", name);
  if (n < 0 || (size_t)n >= cap - used) snprintf(buf + cap - 4, 4, "...");
}

/* Step 5b: the reload succeeded. Fills the lists for the log line. */
static void vh_reload_commit(vh_host_t *h, vh_rplan_t *p, int np, int nlive,
                             char *changed, char *added, char *removed,
                             size_t cap) {
  for (int i = 0; i < nlive; i++) {
    vh_domain_t *d = h->doms[i];
    int kept = 0;
    for (int j = 0; j < np && !kept; j++) kept = p[j].o == d;
    if (!kept && !d->retired) {
      vh_reload_retire(h, d);
      vh_reload_list_add(removed, cap, d->name);
    }
  }
  for (int i = 0; i < np; i++) {
    vh_domain_t *o = p[i].o;
    if (p[i].changed) vh_reload_list_add(changed, cap, p[i].s->name);
    if (p[i].added) vh_reload_list_add(added, cap, p[i].s->name);
    if (!o) continue;
    vh_reload_stop_everies(o);
    if (o->retired)
      vh_log(VH_LOG_INFO, o->name, "declared again: its kept state is used");
    o->retired = 0;
    o->version = p[i].s->version;
  }
  /* Load-time every timers name the staged record: point them at the live
   * one, then let the held effects take place. */
  for (vh_every_t *e = h->pend.everies; e; e = e->next)
    for (int i = 0; i < np; i++)
      if (e->dom == p[i].s && p[i].o) e->dom = p[i].o;
  h->pend_hold = 0;
  vh_sys__pending_apply(h);
}

/* Forget every cached message header (they key on record addresses). */
static void vh_reload_forget_headers(vh_host_t *h) {
  for (int i = 0; i < VH_EVCACHE; i++) {
    vh_hdrc_t *c = &h->hdrc[i];
    if (c->hdr) vh_str_release(c->hdr);
    if (c->ev) vh_str_release(c->ev);
    memset(c, 0, sizeof *c);
  }
}

/* Steps 2-5 on the collected scripts f[0..n). Writes the summary lists. */
static int vh_reload_swap_in(vh_host_t *h, const vh_rfile_t *f, int n,
                             char *err, size_t cap, char lists[3][512]) {
  vh_domain_t **staged = NULL;
  int nstaged = 0, nlive = h->ndoms;
  h->pend_hold = 1;
  int rc = vh_reload_stage(h, f, n, &staged, &nstaged, err, cap);
  vh_rplan_t *p = rc == 0 ? calloc((size_t)nstaged, sizeof *p) : NULL;
  if (rc == 0 && !p) {
    snprintf(err, cap, "out of memory");
    rc = VH_ENOMEM;
  }
  for (int i = 0; rc == 0 && i < nstaged; i++) {
    vh_domain_t *s = staged[i];
    vh_domain_t *o = vh_host__find(h, s->name, strlen(s->name));
    p[i].s = s;
    p[i].o = o;
    p[i].added = !o || o->retired;
    p[i].changed = o && !o->retired &&
                   (o->src_hash != s->src_hash || o->version != s->version);
  }
  if (rc == 0) rc = vh_reload_apply(h, p, nstaged, err, cap);
  if (rc == 0) {
    vh_reload_commit(h, p, nstaged, nlive, lists[0], lists[1], lists[2],
                     sizeof lists[0]);
  } else {
    h->pend_hold = 0;
    vh_sys__pending_drop(h);
  }
  for (int i = 0; i < nstaged; i++) {
    if (p && p[i].root) vh_tab_release(p[i].root);
    /* Paired records now hold the old code (or, after a failure, the new
     * one); an added record is freed only if the reload failed. */
    if (rc != 0 || !p || p[i].o) vh_reload_dom_free(h->L, staged[i]);
  }
  free(p);
  free(staged);
  vh_reload_forget_headers(h);
  return rc;
}

/* A whole reload (see the file comment). force: reload even if no script
 * changed. why names the trigger in the log. */
static int vh_reload_do(vh_host_t *h, int force, const char *why, char *err,
                        size_t cap) {
  struct vh_reload *rl = h->reload;
  char local[1024];
  if (!err || cap == 0) {
    err = local;
    cap = sizeof local;
  }
  err[0] = '\0';
  if (!rl || h->phase != VH_PHASE_RUN || h->stop_requested) {
    snprintf(err, cap, "the host is not running");
    return VH_HOST_ESTATE;
  }
  int tx = 0; /* e.g. inside a REPL chunk, which holds every domain */
  for (int i = 0; i < h->ndoms && !tx; i++) tx = vhl_tx_open(h->doms[i]->st);
  if (rl->busy || h->in_handler || h->cur || tx) {
    snprintf(err, cap,
             "a reload cannot run inside a handler call, a REPL chunk or "
             "another reload");
    return VH_HOST_ESTATE;
  }
  int64_t t0 = vh_host__mono_ns();
  vh_rfile_t *f = NULL;
  int n = 0;
  int rc = vh_reload_collect(rl, &f, &n, err, cap);
  if (rc != 0) {
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) failed: %s; the old code keeps running", why, err);
    return rc;
  }
  if (!force && vh_reload_same(rl, f, n)) {
    vh_rfiles_free(f, n);
    vh_log(VH_LOG_DEBUG, "vedhost", "reload (%s): no script changed", why);
    snprintf(err, cap, "reload: no script changed");
    return 0;
  }
  rl->busy = 1;
  vh_slice_end(h); /* the reload is a slice of its own */
  if (h->phase != VH_PHASE_RUN) {
    rl->busy = 0;
    vh_rfiles_free(f, n);
    snprintf(err, cap, "the host is stopping");
    return VH_HOST_ESTATE;
  }
  char lists[3][512] = {"", "", ""};
  rc = vh_reload_swap_in(h, f, n, err, cap, lists);
  double ms = (double)(vh_host__mono_ns() - t0) / 1e6;
  if (rc == 0) {
    for (int i = 0; i < n; i++) { /* the running code's scripts */
      free(f[i].src);
      f[i].src = NULL;
    }
    vh_rfiles_free(rl->files, rl->nfiles);
    rl->files = f;
    rl->nfiles = rl->capfiles = n;
    rl->nreloads++;
    char more[1100] = "";
    if (lists[1][0] || lists[2][0])
      snprintf(more, sizeof more, " (added: %s; removed: %s)",
               lists[1][0] ? lists[1] : "none",
               lists[2][0] ? lists[2] : "none");
    snprintf(err, cap, "reload: %d script%s, domains changed: %s%s in %.1f ms",
             n, n == 1 ? "" : "s", lists[0][0] ? lists[0] : "none", more, ms);
    vh_log(VH_LOG_INFO, "vedhost", "%s [%s]", err, why);
  } else {
    vh_rfiles_free(f, n);
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) failed: %s; the old code keeps running", why, err);
  }
  vh_slice_end(h);
  rl->busy = 0;
  return rc == 0 ? 0 : VH_HOST_ELOAD;
}

int vh_host_reload(vh_host_t *h, char *err, size_t cap) {
  if (h->opts.rehearse) { /* --rehearse N: a rehearsal first (gate.c) */
    int rc = vh_gate__request(h, 1, "request");
    if (err && cap)
      snprintf(err, cap,
               rc == 0 ? "reload: rehearsing the last %d slices first "
                         "(--rehearse); the outcome is logged"
                       : "reload: a rehearsal could not start (see the log)",
               h->opts.rehearse);
    return rc;
  }
  return vh_reload_do(h, 1, "request", err, cap);
}

int vh_reload__now(vh_host_t *h, const char *why, char *err, size_t cap) {
  return vh_reload_do(h, 1, why, err, cap);
}

/* ---- watching ---- */

static void vh_reload_on_fs(uv_fs_event_t *ev, const char *name, int events,
                            int status);

static void vh_reload_arm(vh_rwatch_t *w) {
  if (w->active) uv_fs_event_stop(&w->ev);
  int rc = uv_fs_event_start(&w->ev, vh_reload_on_fs, w->path, 0);
  w->active = rc == 0;
  if (rc != 0)
    vh_log(VH_LOG_DEBUG, "vedhost", "cannot watch %s: %s", w->path,
           uv_strerror(rc));
}

static void vh_reload_on_quiet(uv_timer_t *t) {
  struct vh_reload *rl = vh_reload_container(t, struct vh_reload, debounce);
  if (rl->h->phase != VH_PHASE_RUN) return;
  /* Re-arm first: a change after this point raises a new event. */
  for (int i = 0; i < rl->nwatches; i++)
    if (!rl->watches[i].is_dir || !rl->watches[i].active)
      vh_reload_arm(&rl->watches[i]);
  if (rl->h->opts.rehearse) /* --rehearse N: a rehearsal first (gate.c) */
    vh_gate__request(rl->h, 0, "file change");
  else
    vh_reload_do(rl->h, 0, "file change", NULL, 0);
}

/* Does an event on w about name (may be NULL) concern a script? */
static int vh_reload_relevant(const struct vh_reload *rl, const vh_rwatch_t *w,
                              const char *name) {
  if (!w->is_dir || !name) return 1;
  if (w->all_lua && vh_reload_is_lua(name)) return 1;
  for (int i = 0; i < rl->nwatches; i++) {
    const vh_rwatch_t *x = &rl->watches[i];
    if (!x->is_dir && strcmp(x->parent, w->path) == 0 &&
        strcmp(x->base, name) == 0)
      return 1;
  }
  return 0;
}

static void vh_reload_on_fs(uv_fs_event_t *ev, const char *name, int events,
                            int status) {
  vh_rwatch_t *w = vh_reload_container(ev, vh_rwatch_t, ev);
  struct vh_reload *rl = w->rl;
  if (rl->h->phase != VH_PHASE_RUN) return;
  if (status < 0)
    vh_log(VH_LOG_DEBUG, "vedhost", "watch %s: %s", w->path,
           uv_strerror(status));
  if (!vh_reload_relevant(rl, w, name)) return;
  vh_log(VH_LOG_DEBUG, "vedhost", "%s%s%s changed (events %d)", w->path,
         name ? "/" : "", name ? name : "", events);
  uv_timer_start(&rl->debounce, vh_reload_on_quiet, VH_RELOAD_QUIET_MS, 0);
}

/* Add a watch of path (copied); a directory already watched only gains
 * all_lua. */
static void vh_reload_add_watch(struct vh_reload *rl, const char *path,
                                int is_dir, int all_lua, const char *file) {
  for (int i = 0; is_dir && i < rl->nwatches; i++) {
    vh_rwatch_t *x = &rl->watches[i];
    if (x->is_dir && strcmp(x->path, path) == 0) {
      x->all_lua |= all_lua;
      return;
    }
  }
  vh_rwatch_t *w = &rl->watches[rl->nwatches];
  memset(w, 0, sizeof *w);
  w->rl = rl;
  w->is_dir = is_dir;
  w->all_lua = all_lua;
  w->path = strdup(path);
  if (!is_dir) {
    const char *slash = strrchr(file, '/');
    w->base = strdup(slash ? slash + 1 : file);
    w->parent = slash
                    ? strndup(file, slash == file ? 1 : (size_t)(slash - file))
                    : strdup(".");
  }
  if (!w->path || (!is_dir && (!w->base || !w->parent))) {
    free(w->path);
    free(w->base);
    free(w->parent);
    vh_log(VH_LOG_WARN, "vedhost", "out of memory watching %s", path);
    return;
  }
  uv_fs_event_init(&rl->h->loop, &w->ev);
  rl->nwatches++;
  vh_reload_arm(w);
  if (!w->active)
    vh_log(VH_LOG_WARN, "vedhost",
           "cannot watch %s: edits to it do not reload (SIGHUP does)", path);
}

static void vh_reload_on_hup(uv_signal_t *s, int signum) {
  (void)signum;
  struct vh_reload *rl = vh_reload_container(s, struct vh_reload, sighup);
  vh_log(VH_LOG_INFO, "vedhost", "SIGHUP received: reloading every script");
  if (rl->h->opts.rehearse) /* --rehearse N: a rehearsal first (gate.c) */
    vh_gate__request(rl->h, 1, "SIGHUP");
  else
    vh_reload_do(rl->h, 1, "SIGHUP", NULL, 0);
}

void vh_reload__start(vh_host_t *h) {
  struct vh_reload *rl = h->reload;
  if (!rl) return;
  vh_reload__write_list(h); /* DATA/scripts, for vedhost replay */
  uv_timer_init(&h->loop, &rl->debounce);
  rl->debounce.data = NULL;
  uv_signal_init(&h->loop, &rl->sighup);
  if (!h->vclock_on) /* a test harness leaves SIGHUP alone */
    uv_signal_start(&rl->sighup, vh_reload_on_hup, SIGHUP);
  rl->handles = 1;
  if (!h->opts.watch) return;
  rl->watches = calloc((size_t)rl->nargs * 2 + 1, sizeof *rl->watches);
  if (!rl->watches) {
    vh_log(VH_LOG_WARN, "vedhost", "out of memory: scripts are not watched");
    return;
  }
  for (int i = 0; i < rl->nargs; i++) {
    const char *a = rl->args[i];
    struct stat sb;
    if (stat(a, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      vh_reload_add_watch(rl, a, 1, 1, NULL);
      continue;
    }
    const char *slash = strrchr(a, '/');
    char dir[4096];
    if (!slash)
      snprintf(dir, sizeof dir, ".");
    else
      snprintf(dir, sizeof dir, "%.*s", slash == a ? 1 : (int)(slash - a), a);
    vh_reload_add_watch(rl, dir, 1, 0, NULL);
    vh_reload_add_watch(rl, a, 0, 0, a);
  }
  vh_log(VH_LOG_DEBUG, "vedhost", "watching %d path(s) for script changes",
         rl->nwatches);
}

void vh_reload__free(vh_host_t *h) {
  vh_gate__free(h);
  struct vh_reload *rl = h->reload;
  if (!rl) return;
  for (int i = 0; i < rl->nargs; i++) free(rl->args[i]);
  free(rl->args);
  vh_rfiles_free(rl->files, rl->nfiles);
  for (int i = 0; i < rl->nwatches; i++) {
    free(rl->watches[i].path);
    free(rl->watches[i].parent);
    free(rl->watches[i].base);
  }
  free(rl->watches);
  free(rl);
  h->reload = NULL;
}

int vh_reload__write_list(vh_host_t *h) {
  struct vh_reload *rl = h->reload;
  if (!rl || !h->dd.path) return 0;
  size_t n = strlen(h->dd.path) + sizeof "/scripts.tmp";
  char *tmp = malloc(n), *dst = malloc(n);
  if (!tmp || !dst) {
    free(tmp);
    free(dst);
    return VH_ENOMEM;
  }
  snprintf(tmp, n, "%s/scripts.tmp", h->dd.path);
  snprintf(dst, n, "%s/scripts", h->dd.path);
  /* The list as it would be written; a start with the same scripts as
   * the last one writes nothing (a new file is ~1 ms of a restart on a
   * file system with many recently deleted files: ext4 looks for an
   * inode not freed lately). */
  char *want = NULL;
  size_t wlen = 0;
  FILE *m = open_memstream(&want, &wlen);
  for (int i = 0; m && i < rl->nargs; i++) {
    char *abs = realpath(rl->args[i], NULL);
    fprintf(m, "%s\n", abs ? abs : rl->args[i]);
    free(abs);
  }
  if (m == NULL || fclose(m) != 0) {
    free(want);
    free(tmp);
    free(dst);
    return VH_ENOMEM;
  }
  FILE *old = fopen(dst, "r");
  if (old) {
    char *have = malloc(wlen + 1);
    size_t got = have ? fread(have, 1, wlen + 1, old) : 0;
    int same = have && got == wlen && memcmp(have, want, wlen) == 0;
    free(have);
    fclose(old);
    if (same) {
      free(want);
      free(tmp);
      free(dst);
      return 0;
    }
  }
  FILE *f = fopen(tmp, "w");
  int rc = f ? 0 : VH_EIO;
  if (f && fwrite(want, 1, wlen, f) != wlen) rc = VH_EIO;
  free(want);
  if (f && fclose(f) != 0) rc = VH_EIO;
  if (rc == 0 && rename(tmp, dst) != 0) rc = VH_EIO;
  if (rc != 0) {
    unlink(tmp);
    vh_log(VH_LOG_WARN, "vedhost",
           "cannot write %s (vedhost replay then needs --code)", dst);
  }
  free(tmp);
  free(dst);
  return rc;
}
