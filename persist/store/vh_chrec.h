/*
 * vh_chrec.h - change records: the changes a version made, stored beside
 * it so that a diff of two adjacent versions (and the change feed) reads
 * one record instead of walking two trees (persist/store/store_changes.c;
 * written by host/runtime/durable.c, read by host/runtime/diff_stage.c).
 *
 * A record 'C' u64be(seq) rides in the batch of version seq, beside its
 * 'V' record, and is deleted with it by vh_batch_del_version. It holds
 * pred, the version it is relative to (the newest version before seq when
 * it was written), and, per domain (in name order), that domain's changes
 * from pred to seq in the order vh_changes_diff reports them (vh_tdiff.h:
 * the REPL's key order, depth first): op, path keys, old and new value. A
 * reader uses it only for a diff whose older side IS pred.
 *
 * Values are encoded with their table layout (array part length and holes,
 * then the hash part in iteration order), so a decoded table iterates
 * exactly as the walked one did (JSON prints in iteration order).
 *
 * Ownership in prototypes: [borrowed] the caller keeps it, [new] the
 * caller frees it, [stolen] the callee takes it over.
 */
#ifndef VH_CHREC_H
#define VH_CHREC_H

#include <stddef.h>
#include <stdint.h>

#include "vh_bytes.h"
#include "vh_store.h"
#include "vh_trie.h"

/* Tables nested deeper than this inside one value are not recorded (the
 * codec recurses on the C stack): the writer then writes no record. */
#define VH_CHREC_MAX_NEST 100

/* One change (see vh_change_t in host/runtime/vh_changes.h). */
typedef struct vh_chent {
  int op;         /* '+', '-' or '~' */
  size_t depth;   /* >= 1 */
  vh_val_t *path; /* [owned] depth keys */
  vh_val_t old;   /* [owned] nil for '+' */
  vh_val_t new;   /* [owned] nil for '-' */
} vh_chent_t;

typedef struct vh_chdom {
  char *name; /* [owned] */
  size_t n;
  vh_chent_t *e; /* [owned] n changes in the walk's order */
} vh_chdom_t;

typedef struct vh_chrec {
  uint64_t seq;  /* the version */
  uint64_t pred; /* the version its changes are from */
  size_t ndom;
  vh_chdom_t *dom; /* [owned] domains with changes, in name order */
} vh_chrec_t;

void vh_chrec_free(vh_chrec_t *r);

/* ---- writing (the loop thread, host/runtime/durable.c) ---- */

/* Start a record relative to pred in out (emptied first). */
int vh_chrec_begin(vh_buf_t *out, uint64_t pred);
/* Append one change of domain (NUL-terminated [borrowed]). The caller
 * keeps *open (NULL at start: the domain open now, [borrowed] from the
 * domain arguments, which must live until the next call) and passes the
 * changes domain by domain in name order. path, old, new [borrowed] (old
 * is written for '-' and '~', new for '+' and '~'). Tables are read, never
 * written (a node not in memory fails the way its load fails). 0,
 * VH_ENOMEM, VH_EDEPTH (nested deeper than VH_CHREC_MAX_NEST), or a load
 * fault's code. On error out is unusable (drop the record). */
int vh_chrec_add(vh_buf_t *out, const char **open, const char *domain, int op,
                 const vh_val_t *path, size_t depth, vh_val_t old,
                 vh_val_t new);
/* Close the record (ends the open domain). 0 or VH_ENOMEM. */
int vh_chrec_end(vh_buf_t *out, const char *open);

/* Decode a record payload (p, len [borrowed]) of version seq into *out
 * (vh_chrec_free). 0, VH_ECORRUPT / VH_EFORMAT (a newer layout) with
 * *errmsg [new] (errmsg may be NULL), VH_ENOMEM. */
int vh_chrec_decode(const void *p, size_t len, uint64_t seq, vh_chrec_t *out,
                    char **errmsg);

/* Batch record 'C' seq (framed like nodes). */
int vh_batch_put_chrec(vh_batch_t *b, uint64_t seq, const void *payload,
                       size_t len);
/* The record of version seq: 0, VH_ENOENT (none: the version is not
 * retained, changed too much, or was written without one), VH_ECORRUPT,
 * VH_EFORMAT, VH_EIO, with *errmsg [new] (may be NULL). */
int vh_store_chrec_get(vh_store_t *s, uint64_t seq, vh_chrec_t *out,
                       char **errmsg);
/* Every stored record in seq order: fn(arg, seq, r, bytes) with r the
 * decoded record [borrowed] or NULL when it does not decode (rc, msg
 * [borrowed] then say why), bytes the key and value sizes. fn's non-zero
 * return stops the scan (returned; 1 becomes 0). (fsck.) */
typedef int (*vh_chrec_each_fn)(void *arg, uint64_t seq, const vh_chrec_t *r,
                                int rc, const char *msg, size_t bytes);
int vh_store_chrec_each(vh_store_t *s, vh_chrec_each_fn fn, void *arg,
                        char **errmsg);

#endif /* VH_CHREC_H */
