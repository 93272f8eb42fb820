/*
 * vh_export.h - the export stream: a portable, versioned, checksummed,
 * zstd-compressed snapshot of the committed state (persist/trie/export.c).
 *
 * The stream is what `vedhost export` writes and `vedhost import` reads. It
 * is independent of node ids, of the trie's node layout and of RocksDB: it
 * holds the logical contents of each table, in a canonical order that
 * depends only on those contents (not on the history that built them), so
 * two states with equal contents export to equal bytes, and
 * export -> import -> export gives back the same bytes.
 *
 * FRAMING. The whole stream is ONE zstd frame (libzstd streaming API, with
 * zstd's own content checksum enabled). Nothing may follow the frame. The
 * uncompressed bytes ("raw bytes") are laid out as below; all fixed-size
 * integers are little-endian.
 *
 * HEADER
 *   offset  size  field
 *   0       8     magic "VEDXPORT"
 *   8       4     u32 format version (VH_EXPORT_VERSION); a reader refuses
 *                 a version newer than its own (VH_EFORMAT)
 *   12      4     u32 flags: bit 0 (VH_EXPORT_F_SYS) = a system-state table
 *                 follows the domains' tables; other bits must be 0
 *   16      8     u64 slice sequence number the snapshot was taken at
 *   24      4     u32 n = number of domains (0..65535)
 *   28      ...   n entries, each: u8 name length L (1..255), L bytes of
 *                 name (no NUL), i64 domain version (>= 1). Names are
 *                 distinct. A reader refuses (VH_EINVAL) what a host
 *                 would refuse (vh_limits.h): a name that is not a valid
 *                 domain name ("a b", "../x", the reserved "__ved") and a
 *                 version above VH_MAX_VERSION.
 *
 * BODY: n VALUEs that are tables (the domains' states, in header order),
 * then one more table if flags bit 0 is set (the host's system state).
 * Tables nest at most VH_MAX_DEPTH deep, each state table at depth 1
 * (vh_limits.h): the writer refuses a deeper state and the reader a
 * deeper stream (VH_EDEPTH), before building anything that deep.
 *
 * VALUE (pre-order, tag byte first):
 *   0x01             false
 *   0x02             true
 *   0x03 zz          integer: zz = varint of the zigzag-encoded i64
 *   0x04 f8          float: 8 bytes, the IEEE-754 double's bits (u64 LE)
 *   0x05 len bytes   string: varint length, then that many bytes
 *   0x06 na nh A H   table: varint na, varint nh; A = na VALUEs (the values
 *                    of keys 1..na); H = nh (KEY, VALUE) pairs
 *   (no tag for nil: a table holds no nil value)
 *   KEY is a VALUE with tag 0x01..0x05; a float key is never integral
 *   (2.0 is the key 2) and never NaN.
 *
 *   Varints are unsigned LEB128, at most 10 bytes, minimal (no trailing
 *   0x80 groups). Zigzag: (i << 1) ^ (i >> 63).
 *
 * CANONICAL ORDER of a table: na is the largest k such that keys 1..k are
 * all present (so key na + 1 is absent); every other key is in H, sorted
 * strictly ascending by (rank, value): rank false/true = 0, integer = 1,
 * float = 2, string = 3; booleans false < true; integers and floats by
 * value; strings bytewise (memcmp, then shorter first). A reader refuses
 * an H that is not strictly ascending (a duplicate key) or that holds the
 * key na + 1.
 *
 * A consequence: an array with holes ({1, nil, 3} made by t[2] = nil) is
 * exported as its contents; after import the hole ends the array part, so
 * `#t` may report another valid border (1 rather than 3), as Lua allows.
 *
 * TRAILER (right after the body):
 *   size  field
 *   8     magic "VEDXEND."
 *   8     u64 total number of (key, value) entries in every table
 *   8     u64 number of tables
 *   8     u64 raw offset of the trailer (bytes of header + body)
 *   4     u32 CRC-32C (vh_crc32c.h) of every raw byte before this field
 *
 * Errors: VH_ECORRUPT for anything malformed, damaged or truncated,
 * VH_EFORMAT for a newer version or a non-vedhost stream, VH_ENOMEM,
 * VH_EIO when the read / write callback fails; with a [new] one-line
 * message in *errmsg where a prototype has one.
 *
 * Ownership in prototypes: [borrowed] the caller keeps it, [new] the caller
 * frees / releases it, [stolen] the callee takes it over.
 *
 * Threads: a writer or reader belongs to one thread; the trie's rules apply
 * to the tables (the thread that owns them, and the lazy loader on it).
 */
#ifndef VH_EXPORT_H
#define VH_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"
#include "vh_trie.h"

#define VH_EXPORT_VERSION 1
#define VH_EXPORT_F_SYS 1u

/* One domain of the header. */
typedef struct vh_export_domain {
  char *name;      /* [owned] NUL-terminated, 1..255 bytes */
  int64_t version; /* the domain's version (>= 1) */
} vh_export_domain_t;

typedef struct vh_export_header {
  uint32_t version;            /* format version (reader: as read) */
  uint32_t flags;              /* VH_EXPORT_F_* */
  uint64_t seq;                /* slice sequence number */
  size_t ndomains;             /* entries in domains */
  vh_export_domain_t *domains; /* [owned] */
} vh_export_header_t;

/* Frees what *h owns and zeroes it. */
void vh_export_header_free(vh_export_header_t *h);
/* Appends a domain (name [borrowed], copied). 0 or VH_ENOMEM. */
int vh_export_header_add(vh_export_header_t *h, const char *name,
                         int64_t version);

/* Progress and totals. */
typedef struct vh_export_stats {
  uint64_t raw_bytes; /* uncompressed bytes so far */
  uint64_t zst_bytes; /* compressed bytes so far */
  uint64_t keys;      /* (key, value) entries so far */
  uint64_t tables;    /* tables so far */
} vh_export_stats_t;

/* Called every ~4 MB of raw bytes (and not at all if NULL). */
typedef void (*vh_export_progress_fn)(void *arg, const vh_export_stats_t *st);

/* ---- writer ---- */

/* Receives compressed bytes p [borrowed]; returns 0 or a negative code
 * (the writer then fails with VH_EIO). */
typedef int (*vh_export_write_fn)(void *arg, const void *p, size_t len);

typedef struct vh_export_writer vh_export_writer_t;

/* *out = a [new] writer sending its output to fn(arg, ...). level: zstd
 * level (0 = default 3). 0 or VH_ENOMEM. */
int vh_export_writer_new(vh_export_write_fn fn, void *arg, int level,
                         vh_export_writer_t **out);
void vh_export_writer_set_progress(vh_export_writer_t *w,
                                   vh_export_progress_fn fn, void *arg);
/* Writes the header h [borrowed] (VH_EINVAL: a bad name or version, a
 * duplicate name, flags other than VH_EXPORT_F_SYS). Call once, first. */
int vh_export_write_header(vh_export_writer_t *w, const vh_export_header_t *h,
                           char **errmsg);
/* Writes table t [borrowed] (walked, not changed; lazily loaded nodes are
 * read through the trie's loader): once per header domain, in order, then
 * the system table if flagged. A load failure is returned (VH_EIO,
 * VH_ECORRUPT, VH_ENOENT...) with the trie's message. */
int vh_export_write_table(vh_export_writer_t *w, const vh_tab_t *t,
                          char **errmsg);
/* Writes the trailer and ends the zstd frame. VH_EINVAL if fewer tables
 * than the header announced were written. st (may be NULL) = totals. */
int vh_export_write_finish(vh_export_writer_t *w, vh_export_stats_t *st,
                           char **errmsg);
/* w [stolen], may be NULL. */
void vh_export_writer_free(vh_export_writer_t *w);

/* ---- reader ---- */

/* Reads up to cap bytes into p; *got = bytes read, 0 at end of input.
 * Returns 0 or a negative code (the reader fails with VH_EIO). */
typedef int (*vh_export_read_fn)(void *arg, void *p, size_t cap, size_t *got);

/* A stream held in memory [borrowed bytes], read through
 * vh_export_read_mem: at most chunk bytes per read when chunk is not 0
 * (tests and fuzzing vary the read boundaries with it). */
typedef struct vh_export_mem {
  const unsigned char *p;
  size_t len, pos;
  size_t chunk;
} vh_export_mem_t;
/* The vh_export_read_fn of a vh_export_mem_t (arg). */
int vh_export_read_mem(void *arg, void *p, size_t cap, size_t *got);

typedef struct vh_export_reader vh_export_reader_t;

/* *out = a [new] reader pulling from fn(arg, ...). 0 or VH_ENOMEM. */
int vh_export_reader_new(vh_export_read_fn fn, void *arg,
                         vh_export_reader_t **out);
void vh_export_reader_set_progress(vh_export_reader_t *r,
                                   vh_export_progress_fn fn, void *arg);
/* Reads and checks the header into *h (freed with vh_export_header_free;
 * empty on error). Call once, first. */
int vh_export_read_header(vh_export_reader_t *r, vh_export_header_t *h,
                          char **errmsg);
/* Reads the next table: *out = a [new] table built under edit (mutable in
 * place by the holder of edit). On error *out = NULL and nothing leaks.
 * The content is only trusted once vh_export_read_finish succeeded. */
int vh_export_read_table(vh_export_reader_t *r, uint64_t edit, vh_tab_t **out,
                         char **errmsg);
/* Reads the trailer, checks the counts, the CRC, the end of the zstd frame
 * and the end of input. st (may be NULL) = totals. */
int vh_export_read_finish(vh_export_reader_t *r, vh_export_stats_t *st,
                          char **errmsg);
/* r [stolen], may be NULL. */
void vh_export_reader_free(vh_export_reader_t *r);

#endif /* VH_EXPORT_H */
