/*
 * store_range.c - reading the nodes of one id range with one scan
 * (vh_store_node_range, vh_store.h).
 *
 * WHY. The nodes a version created have one contiguous id range (ids are
 * handed out in order, persist/store/history.c), and node keys are the
 * store's node key byte ('A', or 'N' in a format 1 or 2 store: store.c,
 * KEYS) + the id big endian, so they sort by id: a reader that needs all of a
 * version's new nodes (the change feed walks every one of them) reads
 * them with one iterator, a seek and a sequential run over the few data
 * blocks holding them, instead of one point read per node (bloom filter,
 * index seek and block lookup each). Measured on the feed: bench/README.md.
 *
 * HOW. An iterator bounded by [lo, hi) on its own read options (checksums
 * verified, the block cache not filled: the caller keeps what it needs).
 * Each value is checked like a point read (the store's checksum and kind
 * byte, vh_store__check) before fn sees it, in place: fn gets the bytes
 * inside the iterator's value (no copy; they are valid during the call). Ids
 * absent from the range (deleted, or never written) are simply not visited.
 *
 * THREADS. Any thread that may read (db_lock shared, taken without
 * waiting as point reads do).
 */
#include <stdio.h>
#include <stdlib.h>

#include "store_int.h"

static void vh_range__key(const vh_store_t *s, char key[VH_NODE_KEY_LEN],
                          uint64_t id) {
  key[0] = s->node_key;
  for (int i = 0; i < 8; i++) key[1 + i] = (char)(id >> (56 - 8 * i));
}

int vh_store_node_range(vh_store_t *s, uint64_t lo, uint64_t hi,
                        vh_store_node_fn fn, void *arg, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (lo >= hi) return 0;
  char klo[VH_NODE_KEY_LEN], khi[VH_NODE_KEY_LEN];
  vh_range__key(s, klo, lo);
  vh_range__key(s, khi, hi);
  int rc = vh_store__read_lock(s, "node range", errmsg);
  if (rc != 0) return rc;
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(ro, 1);
  rocksdb_readoptions_set_fill_cache(ro, 0);
  rocksdb_readoptions_set_iterate_upper_bound(ro, khi, sizeof khi);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf_nodes);
  for (rocksdb_iter_seek(it, klo, sizeof klo);
       rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
    size_t klen = 0, vlen = 0;
    const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &klen);
    if (klen != VH_NODE_KEY_LEN || k[0] != (unsigned char)s->node_key) break;
    uint64_t id = 0;
    for (int i = 1; i < VH_NODE_KEY_LEN; i++) id = id << 8 | k[i];
    const char *v = rocksdb_iter_value(it, &vlen);
    const void *bytes = NULL;
    size_t len = 0;
    rc = vh_store__check(v, vlen, VH_KIND_NODE, "node", &bytes, &len, NULL);
    if (rc != 0) { /* again, for a message naming the id: formatted only
                    * here (snprintf per node was ~4% of the change feed's
                    * instructions, bench/README.md) */
      char what[40];
      snprintf(what, sizeof what, "node %llu", (unsigned long long)id);
      rc = vh_store__check(v, vlen, VH_KIND_NODE, what, &bytes, &len, errmsg);
    }
    if (rc == 0) rc = fn(arg, id, bytes, len);
  }
  if (rc > 0) rc = 0;
  if (rc == 0) {
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr) rc = vh_store__rocks_err(rerr, "node range", errmsg);
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  pthread_rwlock_unlock(&s->db_lock);
  return rc;
}
