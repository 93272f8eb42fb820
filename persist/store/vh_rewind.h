/*
 * vh_rewind.h - what a rollback brings back and what it drops: the stored
 * nodes of one tree that another tree does not reach (persist/store/rewind.c).
 *
 * A rollback (`vedhost rollback`: host/cli/rollback_cmd.c offline,
 * host/repl/repl_rollback.c on a running host) makes a domain's root
 * the root it had at an older version V. The nodes of V's tree that the
 * current tree does not hold died after V and wait in death lists; they
 * are alive again ("resurrected") and must leave those lists before the
 * garbage collector deletes them. The nodes of the current tree that V's
 * tree does not hold die in the rollback's own slice. Both sets come from
 * one walk over the two trees that skips every subtree they share, so its
 * cost follows what changed between V and now, not the size of the state.
 * (The replaced tree's in-memory nodes: vh_tab_make_view, vh_trie.h.)
 *
 * Ownership in prototypes: [borrowed] the caller keeps it, [new] the
 * caller frees it (free()).
 */
#ifndef VH_REWIND_H
#define VH_REWIND_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"

struct vh_store;

/* Called with each node id a walk reports; non-zero stops the walk. */
typedef int (*vh_rewind_id_fn)(void *arg, uint64_t id);

/* Reads the encoded node id: *bytes = [new] payload (free()), *len its
 * size; 0 or a negative VH_E* code with a [new] one-line *errmsg. */
typedef int (*vh_rewind_get_fn)(void *arg, uint64_t id, void **bytes,
                                size_t *len, char **errmsg);

/* Walks the stored trees rooted at node ids a and b (either may be 0: an
 * empty tree) and calls only_a(arg, id) once for every node a's tree
 * reaches and b's does not, only_b(arg, id) for every node of b's tree
 * that a's does not reach. Shared subtrees (the same id under both) are
 * never read: only the nodes reported are decoded (vh_codec_child_ids),
 * through get(garg, ...).
 *
 * HOW (relies on the store's id order: a node's children always have
 * smaller ids than the node, because a child is written before its
 * parent and stored nodes never change). Two max-heaps of ids, one per
 * tree, start with the roots. The larger top is taken (with every copy of
 * it in both heaps): if both heaps hold it, the node is shared and its
 * subtree is skipped; otherwise no node still unvisited in the other tree
 * can be it (they are all below a heap entry, so smaller), the node is
 * reported as only in its tree and its children are pushed there.
 *
 * Returns 0, the first negative value a callback returned, VH_ENOMEM, or
 * the get or decode error (VH_ECORRUPT: "node N: ...") with *errmsg [new]
 * (if errmsg is not NULL). The callbacks may have been called for part of
 * the trees when it fails. */
int vh_rewind_diff(uint64_t a, uint64_t b, vh_rewind_get_fn get, void *garg,
                   vh_rewind_id_fn only_a, vh_rewind_id_fn only_b, void *arg,
                   char **errmsg);

/* The same over the nodes of store s [borrowed] (vh_store_get_node): the
 * trees must be readable, that is durable (vh_store_wait_durable). */
int vh_store_tree_diff(struct vh_store *s, uint64_t a, uint64_t b,
                       vh_rewind_id_fn only_a, vh_rewind_id_fn only_b,
                       void *arg, char **errmsg);

/* `vedhost branch`: a RocksDB checkpoint of s [borrowed] (primary or
 * secondary) into dir [borrowed], which must not exist: SST files are hard
 * links (same file system), the live WAL is copied, nothing is flushed.
 * The result is a complete store (DIR/db layout of its own) holding what
 * s reads now; a secondary's copy is made again when its primary flushed
 * or compacted meanwhile (rewind.c, SECONDARY CHECKPOINT). 0, or a negative
 * code with a [new] *errmsg. */
int vh_store_checkpoint(struct vh_store *s, const char *dir, char **errmsg);

struct vh_version;

/* `vedhost branch`, after the checkpoint: makes the primary store s
 * [borrowed] (the branch's own) hold version v [borrowed] (read from the
 * source) as its current state: the manifest becomes v's, the history
 * after v goes (version records, death lists, marks after v; pins of
 * entries that died after v, which v's tree holds), the history header
 * says v is the newest, and every node and sweep key with an id at or
 * above v's next id (born after v) is deleted with a range delete. The
 * history up to v stays. Writes and waits (a tool, not the loop). 0, or a
 * negative code with a [new] *errmsg. */
int vh_store_branch_trim(struct vh_store *s, const struct vh_version *v,
                         char **errmsg);

/* A growable list of node ids (for the callbacks above). */
typedef struct vh_idlist {
  uint64_t *v; /* [owned] n ids */
  size_t n, cap;
} vh_idlist_t;

/* vh_rewind_id_fn that appends id to the vh_idlist_t at arg: 0 or
 * VH_ENOMEM. */
int vh_idlist_add(void *arg, uint64_t id);
/* Frees the list's memory and empties it. */
void vh_idlist_free(vh_idlist_t *l);

/* What a rollback of one domain will do, found before anything changes. */
typedef struct vh_rewind_plan {
  uint64_t to;       /* the version V, resolved */
  uint64_t to_root;  /* the domain's root at V */
  uint64_t cur_root; /* its root now */
  vh_idlist_t dead;  /* nodes only the current tree holds: die */
  vh_idlist_t back;  /* nodes only V's tree holds: resurrected */
  int nothing;       /* the roots are equal: nothing to do */
} vh_rewind_plan_t;

/* Plans the rollback of domain name [borrowed] of store s to version spec
 * [borrowed] (vh_version_resolve, now_ms the wall clock): the domain must
 * exist at V with version running_version (else a rollback would cross a
 * migrate), and the walk vh_store_tree_diff(root at V, cur_root) fills
 * back and dead. 0 (*p filled, free with vh_rewind_plan_free), or -1 with
 * one line in err (cap bytes) ending "nothing was changed". */
int vh_rewind_plan(struct vh_store *s, const char *name, const char *spec,
                   int64_t now_ms, int64_t running_version, uint64_t cur_root,
                   vh_rewind_plan_t *p, char *err, size_t cap);
void vh_rewind_plan_free(vh_rewind_plan_t *p);
/* The summary line of plan p written as version seq (or "nothing to roll
 * back ..." when p->nothing), into msg (cap bytes). */
void vh_rewind_summary(char *msg, size_t cap, const char *name,
                       const vh_rewind_plan_t *p, uint64_t seq);

#endif /* VH_REWIND_H */
