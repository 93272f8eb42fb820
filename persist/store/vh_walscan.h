/*
 * vh_walscan.h - reads RocksDB's write-ahead log files (DIR/db/NNNNNN.log)
 * without RocksDB, to tell a torn tail (normal after a crash) from
 * corruption that a point-in-time recovery would silently drop acknowledged
 * slices for. Byte layouts and the classification rules:
 * persist/store/walscan.c.
 *
 * The scan reads, never writes. Ownership: [borrowed] the caller keeps the
 * pointer; [new] the caller frees it with free().
 */
#ifndef VH_WALSCAN_H
#define VH_WALSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"

/* vh_walscan_t.state */
#define VH_WALSCAN_CLEAN 0   /* every record intact */
#define VH_WALSCAN_TORN 1    /* the last record was cut short by a crash */
#define VH_WALSCAN_CORRUPT 2 /* other damage, or intact records after it */

typedef struct vh_walscan {
  int state;           /* VH_WALSCAN_* */
  int tail_seen;       /* a torn tail of an earlier crash was passed: the
                          records after it continue its sequence numbers,
                          so nothing was lost there (state stays CLEAN) */
  size_t files;        /* WAL files read */
  uint64_t records;    /* intact records before the damage (all if none) */
  uint64_t last_slice; /* newest slice (manifest seq) among those; 0: none
                          held a manifest */
  /* The damage (TORN, CORRUPT): the first bad record. */
  char file[64];      /* its file name, e.g. "000012.log" */
  uint64_t offset;    /* byte offset in that file where its record starts */
  uint64_t file_size; /* that file's size */
  const char *why;    /* [borrowed, static] what is wrong with it */
  /* CORRUPT: what lies after the damage. */
  uint64_t after_records;   /* intact records (or record ends) after it */
  uint64_t after_min_slice; /* slices those held (0: none readable) */
  uint64_t after_max_slice;
} vh_walscan_t;

/* Scans every NNNNNN.log file in dbpath [borrowed] (DIR/db), in number
 * order, into *out. A missing dbpath, or a file deleted while scanning
 * (a live host), is not an error. 0, or VH_EIO / VH_ENOMEM with a [new]
 * message in *errmsg (if errmsg is not NULL). */
int vh_walscan_dir(const char *dbpath, vh_walscan_t *out, char **errmsg);

/* Scans one RocksDB log-format file (a MANIFEST-NNNNNN too) for damage
 * alone: 0 if intact, 1 with *offset and *why set if a record is damaged
 * or incomplete, or VH_EIO / VH_ENOENT if it cannot be read. path
 * [borrowed]; *why [borrowed, static]. */
int vh_walscan_file_damage(const char *path, uint64_t *offset,
                           const char **why);

#endif /* VH_WALSCAN_H */
