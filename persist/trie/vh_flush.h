/*
 * vh_flush.h - collecting the trie nodes a slice created
 * (persist/trie/flush.c).
 *
 * At the end of a slice the host calls vh_flush_collect() with the roots it
 * keeps (one per domain). Every node reachable from them that has no id yet
 * (it was made in memory since the last collect) is given the next id from
 * the caller's counter, encoded (vh_codec.h), and handed to put(); children
 * come before their parents, and a leaf's new blobs (big string values
 * stored out of line, flush.c) before the leaf. Nodes that already have an id,
 * and unloaded stubs, are not entered: the cost is O(new nodes), not O(state).
 * Once written, a node carries its id and edit token 0, so it never changes
 * again (writes copy it).
 *
 * The deletes that go with a collect come from the free hook
 * (vh_trie_set_free_hook in vh_trie.h): nodes with an id that were freed.
 *
 * Threads: the loop thread (the trie's owner); put() runs on it too and
 * must copy the bytes (vh_batch_put_node does).
 */
#ifndef VH_FLUSH_H
#define VH_FLUSH_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"
#include "vh_trie.h"

/* Receives one encoded node: bytes [borrowed], valid during the call.
 * Return 0, or a negative VH_E* to abort the collect. */
typedef int (*vh_flush_put_fn)(void *arg, uint64_t id, const void *bytes,
                               size_t len);

typedef struct vh_flush_stats {
  uint64_t nodes; /* nodes encoded and put, blobs included */
  uint64_t bytes; /* their encoded bytes */
  uint64_t blobs; /* of the nodes: blobs (big string values, flush.c) */
} vh_flush_stats_t;

/* Collect the new nodes under roots[0..nroots) [borrowed]. Ids are taken
 * from *next_id upwards (it must be > 0) and *next_id is advanced past
 * them. stats (may be NULL) gets the counts. All or nothing: on error
 * (VH_ENOMEM, VH_EINVAL, or what put returned) no node keeps a new id and
 * *next_id is as it was, so the caller can drop its batch and retry.
 * Afterwards vh_tab_id(root) is each root's id for the manifest. */
int vh_flush_collect(vh_tab_t *const *roots, size_t nroots, uint64_t *next_id,
                     vh_flush_put_fn put, void *arg, vh_flush_stats_t *stats);

#endif /* VH_FLUSH_H */
