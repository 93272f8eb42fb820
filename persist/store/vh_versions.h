/*
 * vh_versions.h - retained versions in the store: version records, death
 * lists, marks, pinned entries and the history header (byte layouts: top of
 * persist/store/store_versions.c; the rules: ARCHITECTURE.md invariant 5 and
 * host/history.c).
 *
 * A version is the state after a slice that wrote a batch and changed a
 * root or a domain version. Its id is that batch's manifest seq; its time
 * is the slice clock (unix ms). The host writes, in the slice's own batch:
 *   'V' seq            the version record (summary + that version's
 *                      manifest),
 *   'D' d s            the stored nodes that were in the version before d
 *                      and are not in d (death list of version d, written
 *                      by the batch with seq s: s == d, or a later batch
 *                      that found more deaths while d was the newest),
 *   'H'                the history header (window, counts, estimate),
 *   'K' name / 'P' ... marks and the entries they pin.
 * A batch that only sweeps or collects garbage is not a version (no 'V').
 *
 * Reading (any of these, on the calling thread, like vh_store_get_node;
 * also on a secondary): records are verified (CRC, kind, layout version).
 * Errors are negative VH_E* codes with a [new] one-line *errmsg.
 */
#ifndef VH_VERSIONS_H
#define VH_VERSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"
#include "vh_manifest.h"
#include "vh_store.h"

/* One retained version. */
typedef struct vh_version {
  uint64_t seq;          /* manifest seq */
  int64_t time_ms;       /* slice clock, unix ms */
  uint32_t events;       /* handler calls in the slice */
  uint64_t keys_changed; /* state keys written in the slice */
  size_t nchanged;       /* domains whose root changed */
  char **changed;        /* [owned] their names */
  vh_manifest_t m;       /* [owned] roots at that version */
} vh_version_t;
void vh_version_free(vh_version_t *v);

/* Version seq if retained (window or mark): 0, VH_ENOENT (not retained:
 * *errmsg names the oldest retained seq), VH_ECORRUPT, VH_EFORMAT, VH_EIO. */
int vh_store_version_get(vh_store_t *s, uint64_t seq, vh_version_t *out,
                         char **errmsg);
/* Every retained version (marked ones too) in seq order (newest first if
 * newest_first); fn returns non-zero to stop (that value is returned). */
int vh_store_versions_each(vh_store_t *s, int newest_first,
                           int (*fn)(void *arg, const vh_version_t *v),
                           void *arg, char **errmsg);

typedef struct vh_history {
  uint64_t oldest, newest; /* window; 0 when no version record exists */
  uint64_t count;          /* retained versions in the window */
  uint64_t bytes;          /* estimated disk held only by the window */
  uint64_t pinned_bytes;   /* estimated disk held only by marks */
  uint64_t pinned;         /* entries pinned by marks */
  uint32_t avg_node;       /* running average encoded node size (bytes) */
  int64_t newest_time;     /* the newest version's time and next id */
  uint64_t newest_next_id;
} vh_history_t;
/* The history header ('H'); all zero (and 0 returned) when absent. */
int vh_store_history(vh_store_t *s, vh_history_t *out, char **errmsg);

typedef struct vh_mark {
  char *name;       /* [owned] */
  uint64_t seq;     /* the marked version */
  int64_t time_ms;  /* its time */
  uint64_t next_id; /* its manifest's next id: it pins ids below this */
  uint64_t bytes;   /* estimated disk only this mark holds */
} vh_mark_t;
/* Every mark, in name order. *out [new] (vh_marks_free), *n. */
int vh_store_marks(vh_store_t *s, vh_mark_t **out, size_t *n, char **errmsg);
void vh_marks_free(vh_mark_t *m, size_t n);
/* 1 if name is a valid mark name (1..64 of [A-Za-z0-9_.-], starting with a
 * letter or '_', so it never reads as a seq, "-N" or a time). */
int vh_mark_name_ok(const char *name);

/* ---- what the host needs to keep history (host/history.c) ---- */

/* The retention policy of `vedhost run --retain` (cli_args.c parses it). */
typedef struct vh_retain {
  int zero;          /* --retain 0: only the newest version */
  int64_t age_ms;    /* keep versions this old (0 = no age limit) */
  uint64_t slices;   /* keep at most this many versions (0 = no limit) */
  uint64_t bytes;    /* history disk budget (0 = no limit) */
  int bytes_default; /* the default cap: max(bytes, live / 2) */
} vh_retain_t;
/* The default: 15 minutes, capped at 1 GiB or 50% of the live state.
 * (The spec parser is host/cli/cli_args.c's vh_cli_retain.) */
void vh_retain_default(vh_retain_t *r);

/* One death-list entry: id << 1 | subtree. */
#define VH_DEAD_ID(e) ((e) >> 1)
#define VH_DEAD_SUBTREE(e) ((e)&1u)
#define VH_DEAD(id, subtree) ((uint64_t)(id) << 1 | ((subtree) ? 1u : 0u))

/* Batch records (values framed like nodes: CRC + kind). */
int vh_batch_put_version(vh_batch_t *b, uint64_t seq, const void *payload,
                         size_t len);
int vh_batch_del_version(vh_batch_t *b, uint64_t seq);
/* Death list chunk of version d written by batch s: n entries,
 * est_bytes their estimated disk size. */
int vh_batch_put_deaths(vh_batch_t *b, uint64_t d, uint64_t s,
                        const uint64_t *ents, size_t n, uint64_t est_bytes);
int vh_batch_del_deaths(vh_batch_t *b, uint64_t d, uint64_t s);
int vh_batch_put_history(vh_batch_t *b, const vh_history_t *h);
int vh_batch_put_mark(vh_batch_t *b, const vh_mark_t *m);
int vh_batch_del_mark(vh_batch_t *b, const char *name);
/* Entry ent of death list d pinned by mark seq m. */
int vh_batch_put_pin(vh_batch_t *b, uint64_t m, uint64_t d, uint64_t ent);
int vh_batch_del_pin(vh_batch_t *b, uint64_t m, uint64_t d, uint64_t id);
/* A sweep key for id whose subtree died in version d (the sweeper checks
 * marks below d for its children). */
int vh_batch_put_sweep_at(vh_batch_t *b, uint64_t id, uint64_t d);

/* Encodes a version record payload: *out [new] of *len bytes. */
int vh_version_encode(const vh_version_t *v, const void *man, size_t manlen,
                      void **out, size_t *len);
/* Decodes one (p, len [borrowed]) into *v (vh_version_free). */
int vh_version_decode(const void *p, size_t len, uint64_t seq, vh_version_t *v,
                      char **errmsg);

/* Version records with seq >= from, in order: fn(arg, seq, time_ms,
 * value_bytes) for each, until fn returns non-zero (returned) or max
 * records were seen. Only the header of each record is decoded. */
int vh_store_version_scan(vh_store_t *s, uint64_t from, size_t max,
                          int (*fn)(void *arg, uint64_t seq, int64_t time_ms,
                                    size_t bytes),
                          void *arg, char **errmsg);
/* Every chunk of death list d, in batch order: fn(arg, s, ents, n,
 * est_bytes) [ents borrowed for the call]; non-zero stops. */
int vh_store_deaths_each(vh_store_t *s, uint64_t d,
                         int (*fn)(void *arg, uint64_t s, const uint64_t *ents,
                                   size_t n, uint64_t est_bytes),
                         void *arg, char **errmsg);
/* Every death-list chunk of the store (d, s, entries), in (d, s) order. */
int vh_store_deaths_all(vh_store_t *s,
                        int (*fn)(void *arg, uint64_t d, uint64_t s,
                                  const uint64_t *ents, size_t n,
                                  uint64_t est_bytes),
                        void *arg, char **errmsg);
/* Every pinned entry of mark m (m = 0: of every mark), in key order. */
int vh_store_pins_each(vh_store_t *s, uint64_t m,
                       int (*fn)(void *arg, uint64_t m, uint64_t d,
                                 uint64_t ent),
                       void *arg, char **errmsg);
/* Every sweep key with the version its subtree died in (0: unknown, a
 * key written without one). */
int vh_store_sweep_list_at(vh_store_t *s,
                           int (*fn)(void *arg, uint64_t id, uint64_t d),
                           void *arg, char **errmsg);
/* vh_store_sweep_node with marks: for each child c, pin(arg, c, d)
 * returns 1 if it pinned c itself (then no sweep key is put for c and
 * child is not called), 0 to sweep it (sweep key c with d), <0 error. */
int vh_store_sweep_node_at(vh_store_t *s, vh_batch_t *b, uint64_t id,
                           uint64_t d,
                           int (*pin)(void *arg, uint64_t c, uint64_t d),
                           int (*child)(void *arg, uint64_t c, uint64_t d),
                           void *arg, char **errmsg);
/* Marks being removed (unmark whose pinned entries are still being
 * re-examined): fn(arg, mark) for each; the record is 'K' 0x01 u64be(seq).
 */
int vh_store_marks_removing(vh_store_t *s,
                            int (*fn)(void *arg, const vh_mark_t *m), void *arg,
                            char **errmsg);
int vh_batch_put_mark_removing(vh_batch_t *b, const vh_mark_t *m);
int vh_batch_del_mark_removing(vh_batch_t *b, uint64_t seq);

/* RocksDB's estimate of the live data size (bytes), or 0. */
uint64_t vh_store_live_bytes(vh_store_t *s);

/* ---- the history engine (persist/store/history.c), used by
 * host/runtime/durable.c ---- */

typedef struct vh_hist vh_hist_t;

/* Opens the history of s: reads 'H' and the marks ('K'), nothing else, so
 * an open costs the same however long the history is. policy [borrowed,
 * copied]. *out [new]. */
int vh_hist_open(vh_store_t *s, const vh_retain_t *policy, vh_hist_t **out,
                 char **errmsg);
void vh_hist_free(vh_hist_t *H);

/* What one batch brings (host/runtime/durable.c fills it after the collect). */
typedef struct vh_hist_slice {
  uint64_t seq;         /* the batch's (manifest) seq */
  int is_version;       /* a root or a domain version changed: a version */
  int64_t time_ms;      /* slice clock */
  uint32_t events;      /* handler calls */
  uint64_t keys;        /* state writes */
  char **changed;       /* [borrowed] names of domains whose root changed */
  size_t nchanged;      /* ... and how many */
  const void *man;      /* [borrowed] the encoded manifest */
  size_t manlen;        /* ... its length */
  uint64_t next_id;     /* the manifest's next id */
  const uint64_t *dead; /* [borrowed] VH_DEAD entries the free hook gave */
  size_t ndead;         /* ... how many */
  uint64_t new_nodes, new_bytes; /* the collect's stats (the average) */
  uint64_t durable;              /* vh_store_durable_seq now */
  const void *inputs;            /* [borrowed] the slice's input log record
                                    (vh_inputs.h), written as 'I' seq when
                                    it is a version; NULL: none */
  size_t inlen;                  /* ... its length */
  const void *chrec;             /* [borrowed] the version's change record
                                    (vh_chrec.h), written as 'C' seq when
                                    it is a version; NULL: none */
  size_t chlen;                  /* ... its length */
  int stopping; /* the host stops after this batch: drop no version whose
                   death list is not in memory (history.c, BOUNDED DROPS) */
} vh_hist_slice_t;

/* Called for every subtree root the batch queues for sweeping. */
typedef int (*vh_hist_sweep_fn)(void *arg, uint64_t id, uint64_t d);

/* Adds to b everything batch sl must carry for history: 'V' (a version),
 * its death list or the deletes/sweep keys/pins of entries no retained
 * version reaches any more, the records of dropped versions deleted, the
 * marks changed, 'H'. Reads (death lists of older runs, pinned entries of
 * a removed mark) are bounded per batch. 0, or <0 (VH_ENOMEM, read
 * errors) with *errmsg: b is then partly filled and must be dropped; the
 * engine is then unusable (the host stops writing). */
int vh_hist_slice(vh_hist_t *H, vh_batch_t *b, const vh_hist_slice_t *sl,
                  vh_hist_sweep_fn sweep, void *arg, char **errmsg);
/* 1 if a batch should be written although nothing changed: versions are
 * due to drop (age, a smaller budget), marks changed, a removed mark's
 * entries wait. now_ms = the wall clock. May read a few version records. */
int vh_hist_due(vh_hist_t *H, int64_t now_ms, uint64_t durable);
/* 1 if a mark or unmark waits to be written (cheap; no read). */
int vh_hist_marks_dirty(const vh_hist_t *H);
/* For the sweeper: if a mark below d pins id (born before it), adds the
 * pin (subtree entry) to b and returns 1; else 0. */
int vh_hist_pin(vh_hist_t *H, vh_batch_t *b, uint64_t id, uint64_t d);
/* Marks the newest version as name (written by the next vh_hist_slice).
 * VH_EEXIST-like VH_EINVAL with *errmsg for a bad or duplicate name,
 * VH_ENOENT when there is no version yet. */
int vh_hist_mark(vh_hist_t *H, const char *name, char **errmsg);
/* Removes mark name: its pinned entries are re-examined by later
 * batches. VH_ENOENT ("no mark named x"). */
int vh_hist_unmark(vh_hist_t *H, const char *name, char **errmsg);
/* The marks in memory: *out [new] (vh_marks_free). */
int vh_hist_marks(vh_hist_t *H, vh_mark_t **out, size_t *n);
/* A [new] message about a history read that failed (the window was kept,
 * later batches retry), once per failure streak; or NULL. */
char *vh_hist_warning(vh_hist_t *H);
/* Rollback (host/repl/repl_rollback.c): the stored nodes ids[0..n) [borrowed]
 * are alive again in the version batch b is being built for, because it brings
 * back a tree of version `after` that holds them. Adds to b the edits that take
 * them out of every death list of a version after `after` (in memory and on
 * disk) and out of every mark's pinned entries, and keeps the next
 * vh_hist_slice (which must build the same batch) from deleting them when it
 * drops versions. Reads the death lists after `after` and every pinned entry:
 * cost ~ the deaths since `after`. Call it with everything written durable (the
 * lists on disk must be current). 0, or <0 with *errmsg (drop b). */
int vh_hist_resurrect(vh_hist_t *H, vh_batch_t *b, uint64_t after,
                      const uint64_t *ids, size_t n, char **errmsg);
/* The header as it will be written next. */
void vh_hist_info(vh_hist_t *H, vh_history_t *out);
/* Death-list entries of this run held in memory (tests: the bound). */
size_t vh_hist__mem_entries(const vh_hist_t *H);

#endif /* VH_VERSIONS_H */
