/*
 * store_raw.c - plain RocksDB access to a store's database for tests and
 * fault injection (vh_store_raw.h), through the store's own column family
 * open (store.c, FORMAT 4).
 */
#include <string.h>

#include "store_int.h"
#include "vh_store_raw.h"

int vh_store_raw_open(const char *dbpath, int mode, vh_store_raw_t *r,
                      char **err) {
  memset(r, 0, sizeof *r);
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(o, mode == VH_RAW_CREATE);
  r->db = vh_store__open_families(
      o, dbpath, mode == VH_RAW_READ_ONLY ? VH_OPEN_READ_ONLY : VH_OPEN_PRIMARY,
      NULL, r->cf, &r->apart, err);
  rocksdb_options_destroy(o);
  return r->db != NULL ? 0 : -1;
}

rocksdb_column_family_handle_t *vh_store_raw_family(const vh_store_raw_t *r,
                                                    const char *key,
                                                    size_t klen) {
  int node = klen == VH_NODE_KEY_LEN &&
             (key[0] == VH_KEY_NODE || key[0] == VH_KEY_NODE_V1);
  return node ? r->cf[1] : r->cf[0];
}

void vh_store_raw_close(vh_store_raw_t *r) {
  vh_store__close_families(r->db, r->cf, r->apart);
  r->db = NULL;
}
