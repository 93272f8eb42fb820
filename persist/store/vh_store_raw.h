/*
 * vh_store_raw.h - plain RocksDB access to a store's database, for tests and
 * fault injection only (never the host): opens DIR/db with every column
 * family it has and names the family each key lives in (persist/store/store.c,
 * FORMAT 4: node keys in the "nodes" family of a format 4 store, every other
 * key in the default one). No format check, no writer thread, no CRC: what
 * a caller writes is written as given.
 */
#ifndef VH_STORE_RAW_H
#define VH_STORE_RAW_H

#include <stddef.h>

#include <rocksdb/c.h>

typedef struct vh_store_raw {
  rocksdb_t *db;
  /* [0] the default family, [1] the nodes' ([0] again in a store of
   * format 1-3, which has no such family: apart 0) */
  rocksdb_column_family_handle_t *cf[2];
  int apart;
} vh_store_raw_t;

#define VH_RAW_WRITE 0     /* open an existing database to write */
#define VH_RAW_CREATE 1    /* the same, creating an empty one if missing */
#define VH_RAW_READ_ONLY 2 /* RocksDB's read-only open */

/* Opens dbpath (DIR/db): 0, or -1 with *err = [new] RocksDB message. */
int vh_store_raw_open(const char *dbpath, int mode, vh_store_raw_t *r,
                      char **err);
/* The family key (klen bytes) lives in: a node key (9 bytes, 'A' or 'N'
 * + u64 big endian id) in the nodes' family, any other in the default. */
rocksdb_column_family_handle_t *vh_store_raw_family(const vh_store_raw_t *r,
                                                    const char *key,
                                                    size_t klen);
/* Closes r's database (nothing if none is open). */
void vh_store_raw_close(vh_store_raw_t *r);

#endif
