/*
 * offline.c - opening a data dir for reading beside (or without) a host,
 * for `vedhost fsck` and `vedhost inspect` (vh_offline.h).
 *
 * WHY A SECONDARY. A running host holds DATA/LOCK and RocksDB's own lock
 * on DATA/db; a read-only open beside a live writer is undefined
 * (ARCHITECTURE.md, Storage choices). A RocksDB secondary instance is made for
 * this: it reads the primary's files, replays the primary's WAL into its
 * own memtable (so a host killed with kill -9 is seen at its last written
 * batch), takes no lock and writes only into its own scratch directory.
 * That directory is a fresh mkdtemp under $TMPDIR (or /tmp), removed at
 * close, so the data dir is never written. The manifest is read once, at
 * open: every node read is one that manifest reaches, so what is read is
 * the state at the end of one slice (the view moves only to find a node
 * it lacks, A VIEW THAT LAGS below; nodes never change under their id).
 *
 * The secondary keeps every SST file it has seen open (the store sets
 * max_open_files = -1, which secondaries require), so a compaction of the
 * primary that deletes a file does not pull it from under our reads.
 *
 * A VIEW THAT LAGS. Beside a live host the view can still miss a node the
 * manifest it shows reaches: the secondary read the MANIFEST, then the
 * host flushed a memtable and deleted its log before the secondary read
 * that log, so the view holds the later batches (from the newer log) but
 * not the flushed ones (in a table file the MANIFEST it read does not
 * name yet). Seen beside a host writing hard as "node N: ENOENT" from
 * inspect, diff and changes --follow. Nodes never change under their id,
 * so the loader, when a node is missing and a host holds the store,
 * catches up (a newer view, which names that table file) and reads it
 * again, up to VH_OFFLINE_CATCH_UPS times; the walk goes on over the same
 * manifest. A node still missing then is reported as before. fsck does
 * not catch up in the middle of a walk (its leak scan must list the view
 * it walked): it checks again from a new open (fsck.c). The store opens
 * a secondary again on the same race (persist/store/store.c, SECONDARY
 * BESIDE A HOST).
 *
 * THE ID MAP is open addressing with linear probing over u64 ids (0 marks
 * an empty slot; node ids are never 0), grown at 1/2 load. fsck keeps one
 * record per reachable node (32 bytes), so a 1M-key state (~100k-300k
 * nodes) costs a few MB.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "vh_offline.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vh_cli_args.h"
#include "vh_datadir.h"
#include "vh_trie.h"
#include "vh_version_spec.h"

/* ---- scratch dir ---- */

static int vh_offline__rm_one(const char *path, const struct stat *sb, int flag,
                              struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void vh_offline_rm_tree(const char *dir) {
  nftw(dir, vh_offline__rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *vh_offline__mkscratch(void) {
  const char *tmp = getenv("TMPDIR");
  if (tmp == NULL || *tmp == '\0') tmp = "/tmp";
  size_t n = strlen(tmp) + sizeof "/vedhost-secondary-XXXXXX";
  char *p = malloc(n);
  if (p == NULL) return NULL;
  snprintf(p, n, "%s/vedhost-secondary-XXXXXX", tmp);
  if (mkdtemp(p) == NULL) {
    free(p);
    return NULL;
  }
  return p;
}

/* Catches o's view up with a live host (A VIEW THAT LAGS), waiting a
 * little more each try (tries from 0); 1 if it did, 0 if no host holds
 * the store, o keeps its view, or the catch-up failed. */
static int vh_offline__catch_up(vh_offline_t *o, int tries) {
  if (o->fixed_view || !vh_store_primary_live(o->store)) return 0;
  if (tries > 0) {
    struct timespec ts = {0, (long)(tries < 10 ? tries : 10) * 10000000L};
    nanosleep(&ts, NULL);
  }
  char *msg = NULL;
  int rc = vh_store_catch_up(o->store, &msg);
  free(msg);
  return rc == 0;
}

/* ---- open / close ---- */

void vh_offline_close(vh_offline_t *o) {
  if (o->store != NULL) vh_store_close(o->store, NULL);
  o->store = NULL;
  if (o->scratch != NULL) vh_offline_rm_tree(o->scratch);
  free(o->scratch);
  o->scratch = NULL;
  free(o->data_dir);
  o->data_dir = NULL;
  vh_manifest_free(&o->man);
  o->has_manifest = 0;
}

int vh_offline_open(vh_offline_t *o, const char *data_dir, char *err,
                    size_t cap) {
  memset(o, 0, sizeof *o);
  struct stat sb;
  if (stat(data_dir, &sb) != 0) {
    snprintf(err, cap,
             "no data dir %s (%s); check --data, or start a host with "
             "`vedhost run --data %s SCRIPT`",
             data_dir, strerror(errno), data_dir);
    return VH_ENOENT;
  }
  if (!S_ISDIR(sb.st_mode)) {
    snprintf(err, cap, "%s is not a directory; point --data at a data dir",
             data_dir);
    return VH_ENOENT;
  }
  o->data_dir = strdup(data_dir);
  o->scratch = vh_offline__mkscratch();
  if (o->data_dir == NULL || o->scratch == NULL) {
    snprintf(err, cap, "cannot create a scratch dir under $TMPDIR or /tmp");
    vh_offline_close(o);
    return VH_EIO;
  }
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  so.read_only_secondary = 1;
  so.secondary_path = o->scratch;
  so.cache_bytes = (size_t)16 << 20;
  char *msg = NULL;
  int rc = vh_store_open(data_dir, &so, &o->store, &msg);
  if (rc == 0) rc = vh_store_catch_up(o->store, &msg);
  if (rc != 0) {
    snprintf(err, cap, "%s", msg ? msg : vh_err_name(rc));
    free(msg);
    vh_offline_close(o);
    return rc;
  }
  rc = vh_offline_read_manifest(o->store, &o->man, &msg);
  if (rc == VH_ENOENT) return 0; /* a store that never committed a slice */
  if (rc != 0) {
    snprintf(err, cap,
             "%s/db: %s; the data dir is damaged: restore it from a "
             "backup or move it away",
             data_dir, msg ? msg : vh_err_name(rc));
    free(msg);
    vh_offline_close(o);
    return rc;
  }
  o->has_manifest = 1;
  return 0;
}

int64_t vh_offline_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vh_offline_at(vh_offline_t *o, const char *spec, char *err, size_t cap) {
  if (spec == NULL) return 0;
  vh_manifest_t m;
  uint64_t seq = 0;
  int64_t t = 0;
  char *msg = NULL;
  int rc =
      vh_version_load(o->store, spec, vh_offline_now_ms(), &seq, &t, &m, &msg);
  /* A lagging view can lack a version's records (A VIEW THAT LAGS). */
  for (int tries = 0; rc == VH_ENOENT && tries < VH_OFFLINE_CATCH_UPS &&
                      vh_offline__catch_up(o, tries);
       tries++) {
    free(msg);
    msg = NULL;
    rc = vh_version_load(o->store, spec, vh_offline_now_ms(), &seq, &t, &m,
                         &msg);
  }
  if (rc != 0) {
    snprintf(err, cap, "%s", msg ? msg : vh_err_name(rc));
    free(msg);
    return rc;
  }
  vh_manifest_free(&o->man);
  o->man = m;
  o->has_manifest = 1;
  o->at_seq = seq;
  o->at_time_ms = t;
  return 0;
}

/* ---- the lazy loader over the secondary ---- */

static int vh_offline__load(void *arg, uint64_t id, const void **bytes,
                            size_t *len) {
  vh_offline_t *o = arg;
  void *p = NULL;
  char *msg = NULL;
  int rc = vh_store_get_node(o->store, id, &p, len, &msg);
  for (int tries = 0; rc == VH_ENOENT && tries < VH_OFFLINE_CATCH_UPS &&
                      vh_offline__catch_up(o, tries);
       tries++) {
    free(msg);
    msg = NULL;
    rc = vh_store_get_node(o->store, id, &p, len, &msg);
  }
  free(msg);
  *bytes = p;
  return rc;
}

static void vh_offline__unload(void *arg, const void *bytes) {
  (void)arg;
  free((void *)bytes);
}

void vh_offline_use_loader(vh_offline_t *o) {
  vh_trie_set_loader(vh_offline__load, vh_offline__unload, o);
}

int vh_offline_sweep_ids(vh_offline_t *o, int (*fn)(void *arg, uint64_t id),
                         void *arg, char **errmsg) {
  return vh_store_sweep_list(o->store, fn, arg, errmsg);
}

/* ---- arguments ---- */

/* What vh_offline_args collects. */
typedef struct vh_offline_argv {
  const char **data; /* [borrowed] --data */
  const char **arg;  /* [borrowed] the positional argument, or NULL */
  const char **at;   /* [borrowed] --at, or NULL when not accepted */
} vh_offline_argv_t;

static int vh_offline__arg(void *arg, int opt, const char *val) {
  vh_offline_argv_t *a = arg;
  *(opt < 0 ? a->arg : opt == 0 ? a->data : a->at) = val;
  return 0;
}

int vh_offline_args_at(int argc, char **argv, const char *usage,
                       const char **data, const char **arg, const char **at) {
  static const vh_cli_opt_t opts[] = {{"--data", 1, 0}, {"--at", 1, 0}};
  vh_cli_cmd_t cmd = {argv[0], opts, 2, arg ? 1 : 0, usage};
  vh_offline_argv_t a = {data, arg, at};
  *data = VH_DEFAULT_DATA_DIR;
  if (arg) *arg = NULL;
  *at = NULL;
  int rc = vh_cli_parse(&cmd, argc, argv, vh_offline__arg, &a);
  if (rc == 0 && *at != NULL) { /* a malformed time is a usage error */
    int64_t t;
    char *msg = NULL;
    if (vh_version_parse_time(*at, 0, &t, &msg) < 0) {
      rc = vh_cli_bad(argv[0], "--at: %s", msg ? msg : "bad version");
      free(msg);
    }
  }
  return rc;
}

int vh_offline_args(int argc, char **argv, const char *usage, const char **data,
                    const char **arg) {
  static const vh_cli_opt_t opts[] = {{"--data", 1, 0}};
  vh_cli_cmd_t cmd = {argv[0], opts, 1, arg ? 1 : 0, usage};
  vh_offline_argv_t a = {data, arg, NULL};
  *data = VH_DEFAULT_DATA_DIR;
  if (arg) *arg = NULL;
  return vh_cli_parse(&cmd, argc, argv, vh_offline__arg, &a);
}

/* ---- id map ---- */

static size_t vh_idmap__hash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return (size_t)x;
}

vh_idrec_t *vh_idmap_get(const vh_idmap_t *m, uint64_t id) {
  if (m->cap == 0 || id == 0) return NULL;
  for (size_t i = vh_idmap__hash(id) & (m->cap - 1);;
       i = (i + 1) & (m->cap - 1)) {
    if (m->slot[i].id == id) return &m->slot[i];
    if (m->slot[i].id == 0) return NULL;
  }
}

static int vh_idmap__grow(vh_idmap_t *m) {
  size_t cap = m->cap ? m->cap * 2 : 1024;
  vh_idrec_t *s = calloc(cap, sizeof *s);
  if (s == NULL) return VH_ENOMEM;
  for (size_t k = 0; k < m->cap; k++) {
    if (m->slot[k].id == 0) continue;
    size_t i = vh_idmap__hash(m->slot[k].id) & (cap - 1);
    while (s[i].id != 0) i = (i + 1) & (cap - 1);
    s[i] = m->slot[k];
  }
  free(m->slot);
  m->slot = s;
  m->cap = cap;
  return 0;
}

vh_idrec_t *vh_idmap_put(vh_idmap_t *m, uint64_t id, int *added) {
  if (added) *added = 0;
  if (id == 0) return NULL;
  if ((m->n + 1) * 2 > m->cap && vh_idmap__grow(m) != 0) return NULL;
  size_t i = vh_idmap__hash(id) & (m->cap - 1);
  while (m->slot[i].id != 0 && m->slot[i].id != id) i = (i + 1) & (m->cap - 1);
  if (m->slot[i].id == 0) {
    memset(&m->slot[i], 0, sizeof m->slot[i]);
    m->slot[i].id = id;
    m->n++;
    if (added) *added = 1;
  }
  return &m->slot[i];
}

void vh_idmap_free(vh_idmap_t *m) {
  free(m->slot);
  m->slot = NULL;
  m->cap = m->n = 0;
}

int vh_offline_read_manifest(vh_store_t *s, vh_manifest_t *m, char **msg) {
  memset(m, 0, sizeof *m);
  void *bytes = NULL;
  size_t len = 0;
  int rc = vh_store_get_manifest(s, &bytes, &len, msg);
  if (rc == VH_ENOENT) {
    free(*msg);
    *msg = NULL;
    return rc;
  }
  if (rc == 0) rc = vh_manifest_decode(bytes, len, m, msg);
  free(bytes);
  return rc;
}

int vh_offline_had_lock(const char *data) {
  char p[4096];
  snprintf(p, sizeof p, "%s/LOCK", data);
  return access(p, F_OK) == 0;
}

void vh_offline_unlock(vh_datadir_t *dd, int had_lock, int refused) {
  if (refused && !had_lock && dd->path != NULL && dd->lock_fd >= 0) {
    char p[4096];
    snprintf(p, sizeof p, "%s/LOCK", dd->path);
    unlink(p); /* still locked: no host can have taken it meanwhile */
  }
  vh_datadir_close(dd);
}
