/*
 * vh_offline.h - reading a data dir from outside the host: `vedhost fsck`
 * and `vedhost inspect` (host/admin/offline.c, host/admin/fsck.c,
 * host/admin/inspect.c).
 *
 * Both open DATA/db as a RocksDB secondary (vh_store_opts_t
 * .read_only_secondary) with its scratch files in a fresh temporary
 * directory, so they work the same whether or not a host runs on DATA:
 * they never take DATA/LOCK, never write to DATA, and see one consistent
 * point in the primary's history (the state as of the last batch written
 * before the open's catch-up; beside a live host the view catches up
 * again for a node or version it lacks: offline.c, A VIEW THAT LAGS).
 *
 * Ownership in prototypes: [borrowed] the caller keeps it, [new] the
 * caller frees it (free()), [stolen] the callee takes it over.
 */
#ifndef VH_OFFLINE_H
#define VH_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "vh_cli_args.h" /* VH_DEFAULT_DATA_DIR */

#include "vh_manifest.h"
#include "vh_store.h"

/* An open, read-only view of a data dir. */
typedef struct vh_offline {
  vh_store_t *store;  /* [owned] the secondary store */
  char *scratch;      /* [owned] the secondary's scratch dir (removed at
                         close) */
  char *data_dir;     /* [owned] DATA as given */
  int has_manifest;   /* 1 if the store holds a manifest */
  vh_manifest_t man;  /* [owned] the decoded manifest (empty if none); the
                         version's after vh_offline_at */
  uint64_t at_seq;    /* vh_offline_at: the version read (0: the newest) */
  int64_t at_time_ms; /* ... and its time (INT64_MIN: unknown) */
  int fixed_view;     /* 1: never catch up with a live host, not even for
                         a node the view lacks (fsck; offline.c, A VIEW
                         THAT LAGS) */
} vh_offline_t;

/* Catch-ups tried for a node or a version the view of a live host lacks,
 * 10-100 ms apart (offline.c, A VIEW THAT LAGS). */
#define VH_OFFLINE_CATCH_UPS 20

/* Opens data_dir [borrowed] read-only and reads its manifest. On error
 * writes one line (no "vedhost: " prefix) into err (cap bytes), leaves
 * nothing open and returns a negative VH_E* code: VH_ENOENT (no data dir
 * or no store in it), VH_EFORMAT (foreign or newer), VH_ECORRUPT (a
 * damaged manifest, damaged RocksDB files, a corrupt write-ahead log: see
 * vh_store_open), VH_EIO. */
int vh_offline_open(vh_offline_t *o, const char *data_dir, char *err,
                    size_t cap);
/* Reads and decodes s's [borrowed] manifest into *m [out, owned; zeroed
 * first]. 0; VH_ENOENT with no message for a store never given one (the
 * store's "manifest: absent" dropped: each caller says what that means to
 * it); another negative code with *msg [new]. */
int vh_offline_read_manifest(vh_store_t *s, vh_manifest_t *m, char **msg);
/* Switches o to the retained version named by spec (vh_version_spec.h;
 * NULL: keep the newest): o->man becomes that version's manifest. 0, or
 * a negative code (VH_ENOENT: no such retained version, VH_EINVAL: a
 * malformed spec) with one line (no prefix) in err. */
int vh_offline_at(vh_offline_t *o, const char *spec, char *err, size_t cap);
/* The wall clock, unix ms (for version specs: ages, today's HH:MM). */
int64_t vh_offline_now_ms(void);
/* Closes the secondary and removes its scratch dir. Idempotent. */
void vh_offline_close(vh_offline_t *o);

/* Removes dir [borrowed] and everything under it (best effort, symlinks
 * not followed): the secondary's scratch dir, import's temporary dir. */
void vh_offline_rm_tree(const char *dir);

/* For the commands that lock a stopped data dir (mark, unmark, rollback,
 * recover): whether DIR/LOCK [borrowed] exists before vh_datadir_open
 * creates it. */
int vh_offline_had_lock(const char *data);
/* Closes dd (vh_datadir.h); a refused command (refused != 0) that created
 * DIR/LOCK (had_lock == 0) removes it first, so that a dir it refused (an
 * empty one) is left as it was found. */
struct vh_datadir;
void vh_offline_unlock(struct vh_datadir *dd, int had_lock, int refused);

/* Makes the trie's lazy loader read nodes from o's store (o [borrowed]
 * must stay open while any stub made afterwards is alive). */
void vh_offline_use_loader(vh_offline_t *o);

/* The store's sweep queue: calls fn(arg, id) for every node id queued for
 * sweeping (a dropped subtree whose nodes are deleted later: 'Q' keys, see
 * persist/store/store_sweep.c). 0, or a negative code with a [new] message in
 * *errmsg. */
int vh_offline_sweep_ids(vh_offline_t *o, int (*fn)(void *arg, uint64_t id),
                         void *arg, char **errmsg);

/* Parses `[--data DIR] [ARG]` by the rules of vh_cli_parse for the
 * subcommand cmd ("fsck", "inspect"). *data defaults to VH_DEFAULT_DATA_DIR;
 * *arg (if arg is not NULL) gets the one positional argument or NULL; with
 * arg NULL a positional argument is an error. Returns 0, 1 when --help
 * was printed (the caller exits 0), or 2 after printing a usage error.
 * argv[0] is the subcommand's name. */
int vh_offline_args(int argc, char **argv, const char *usage, const char **data,
                    const char **arg);

/* vh_offline_args that also takes `--at V` into *at (NULL if not given;
 * a value that looks like a time but is not one is a usage error). */
int vh_offline_args_at(int argc, char **argv, const char *usage,
                       const char **data, const char **arg, const char **at);

/* ---- a map from node id (> 0) to a small record ---- */

typedef struct vh_idrec {
  uint64_t id;     /* key; 0 = empty slot */
  uint64_t parent; /* fsck: the node that refers to it (0 for a root) */
  uint64_t table;  /* fsck: the nearest table node at or above it */
  uint32_t owner;  /* fsck: index of the root it was reached from */
  uint32_t flags;  /* caller's bits */
} vh_idrec_t;

typedef struct vh_idmap {
  vh_idrec_t *slot; /* [owned] cap slots */
  size_t cap;       /* a power of two, or 0 */
  size_t n;         /* records in use */
} vh_idmap_t;

/* The record of id, or NULL. */
vh_idrec_t *vh_idmap_get(const vh_idmap_t *m, uint64_t id);
/* The record of id, added (zeroed but for id) if absent; *added (if not
 * NULL) = 1 when it was. NULL when out of memory. id must be > 0. */
vh_idrec_t *vh_idmap_put(vh_idmap_t *m, uint64_t id, int *added);
void vh_idmap_free(vh_idmap_t *m);

/* ---- the subcommands (argv[0] is "fsck" / "inspect"); exit codes ---- */
int vh_fsck_main(int argc, char **argv);
/* `vedhost mark` / `vedhost unmark` (host/cli/mark_cmd.c); argv[0] is "mark" or
 * "unmark". */
int vh_mark_main(int argc, char **argv);
/* host/cli/diff_cmd.c: `vedhost diff` and `vedhost changes`. */
int vh_diff_main(int argc, char **argv);
int vh_changes_main(int argc, char **argv);
int vh_inspect_main(int argc, char **argv);
int vh_log_main(int argc, char **argv); /* log_cmd.c: `vedhost log` */

#endif /* VH_OFFLINE_H */
