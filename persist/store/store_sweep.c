/*
 * store_sweep.c - deleting dropped subtrees that were never loaded.
 *
 * WHY. A slice deletes, in its own batch, every stored node it replaced
 * or dropped that was in memory (the trie reports each one as it is freed).
 * A subtree that was never read since the host started is different: only
 * its root is in memory, as a stub, and the stub's death is the only
 * notice for everything below it on disk. Reading that subtree inside the
 * slice would make a `state.big = nil` cost O(size of big) in disk reads
 * on the loop thread. So the slice's batch gets a sweep key 'Q' + id next
 * to the manifest that stops referencing the root (ARCHITECTURE.md invariant 5:
 * "queued durably in that batch and swept later"), and a sweeper deletes
 * the subtree afterwards, a bounded number of nodes per step.
 *
 * HOW IT WORKS. A sweep step for id reads node id, lists its children
 * (vh_codec_child_ids: child nodes and nested tables, validated, nothing
 * decoded into the trie), and adds to one batch:
 *
 *     delete 'N' id,   delete 'Q' id,   put 'Q' c   for every child c
 *
 * The batch is atomic, so after any crash every node of a dropped subtree
 * is either deleted or below a sweep key (or is that key's node): the
 * next open lists the 'Q' keys (vh_store_sweep_list) and goes on. A step
 * that is written twice (retried) only deletes what is gone already.
 *
 * KEYS. 'Q' + u64 big endian id (9 bytes), empty value. 'Q' sorts after
 * the node keys ('A', or 'N' in a format 1 store), so the node iterator
 * (store.c), which stops at the first key that is not a node, never sees
 * them.
 *
 * LIMITATIONS. The dropped nodes are unreachable but still on disk until
 * swept; fsck must count nodes below a sweep key as "pending sweep", not
 * as leaked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "vh_codec.h"

int vh_store_sweep_list(vh_store_t *s, int (*fn)(void *arg, uint64_t id),
                        void *arg, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  char end;
  rocksdb_readoptions_t *ro = vh_store__tag_scan_opts(VH_KEY_SWEEP, &end);
  rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
  if (it == NULL) {
    rocksdb_readoptions_destroy(ro);
    return VH_ENOMEM;
  }
  char k0 = VH_KEY_SWEEP;
  int rc = 0;
  for (rocksdb_iter_seek(it, &k0, 1); rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t klen = 0;
    const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &klen);
    if (klen < 1 || k[0] != VH_KEY_SWEEP) break;
    if (klen != VH_NODE_KEY_LEN) continue; /* not ours: leave it */
    uint64_t id = 0;
    for (int i = 1; i < VH_NODE_KEY_LEN; i++) id = id << 8 | k[i];
    rc = fn(arg, id);
    if (rc < 0) break;
  }
  if (rc == 0) {
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr) rc = vh_store__rocks_err(rerr, "sweep key scan", errmsg);
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  return rc < 0 ? rc : 0;
}

/* What vh_codec_child_ids reports each child to. */
typedef struct sweep_ctx {
  vh_batch_t *b;
  int (*child)(void *arg, uint64_t id);
  void *arg;
} sweep_ctx_t;

static int sweep_child(void *arg, uint64_t id) {
  sweep_ctx_t *c = arg;
  int rc = vh_batch_put_sweep(c->b, id);
  if (rc == 0 && c->child != NULL) rc = c->child(c->arg, id);
  return rc;
}

int vh_store_sweep_node(vh_store_t *s, vh_batch_t *b, uint64_t id,
                        int (*child)(void *arg, uint64_t id), void *arg,
                        char **errmsg) {
  if (errmsg) *errmsg = NULL;
  void *bytes = NULL;
  size_t len = 0;
  char *m = NULL;
  int rc = vh_store_get_node(s, id, &bytes, &len, &m);
  if (rc == VH_EIO || rc == VH_ENOMEM) {
    if (errmsg)
      *errmsg = m;
    else
      free(m);
    return rc;
  }
  free(m);
  if (rc == 0) {
    sweep_ctx_t c = {b, child, arg};
    const char *why = NULL;
    rc = vh_codec_child_ids(bytes, len, sweep_child, &c, NULL, &why);
    free(bytes);
    if (rc == VH_ENOMEM) {
      if (errmsg)
        *errmsg = vh_store__msg("sweeping node %llu: out of memory",
                                (unsigned long long)id);
      return rc;
    }
    /* Undecodable (rc < 0): leave the node for fsck to report. */
    if (rc == 0)
      rc = vh_batch_del_node(b, id);
    else
      rc = 0;
  } else {
    rc = 0; /* gone already, or unreadable: nothing more to find below */
  }
  if (rc == 0) rc = vh_batch_del_sweep(b, id);
  if (rc != 0 && errmsg)
    *errmsg = vh_store__msg("sweeping node %llu: out of memory",
                            (unsigned long long)id);
  return rc;
}
