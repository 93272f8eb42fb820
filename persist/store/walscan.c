/*
 * walscan.c - a reader of RocksDB's write-ahead log that classifies damage
 * before RocksDB replays it (vh_walscan.h).
 *
 * WHY. After a crash RocksDB replays DIR/db/NNNNNN.log into its memtable.
 * In point-in-time mode it stops at the first bad record and drops every
 * record after it without a word, so one flipped byte in the middle of the
 * log silently loses slices that were acknowledged long ago; in the strict
 * modes it refuses a torn tail too, which is normal after kill -9. Neither
 * tells us what was lost. This reader walks the log first, finds the
 * manifest key of every intact record (so the slice each record ended), and
 * says: CLEAN; TORN (only the last record is damaged: a write cut short by
 * the crash, never acknowledged in sync mode); or CORRUPT (intact records
 * follow the damage: opening would drop them). persist/store/store.c refuses
 * CORRUPT, logs TORN and picks the WAL recovery mode from the verdict.
 * Plain C, no RocksDB, no Lua, no libuv; files are read with read(2) one
 * 32 KiB block at a time, so a huge or garbage file costs one block plus
 * the record being assembled (capped) and can never be misread.
 *
 * LOG FILE LAYOUT (RocksDB 7.8 db/log_format.h, db/log_writer.cc). The file
 * is a sequence of 32768-byte blocks (the last may be short). A block holds
 * physical records; a record never crosses a block boundary. When fewer than
 * 7 bytes (11 for recyclable records) are left in a block, they are zero
 * padding (a trailer) and the next record starts at the next block.
 *
 *   offset size  field (little endian)
 *   0      4     masked CRC-32C of bytes 6 .. end of payload (type, the
 *                log number if recyclable, payload); mask(c) =
 *                ((c >> 15) | (c << 17)) + 0xa282ead8
 *   4      2     payload length L (a record fits its block: 7 + L <= 32768)
 *   6      1     type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST; 5..8 the same
 *                for recycled log files; 9 SetCompressionType (first record
 *                only; vedhost never compresses its WAL); 0 zero padding
 *   7      4     recyclable types only: u32 log number (a record of an
 *                older incarnation of a recycled file ends the log)
 *   7/11   L     payload
 *
 * A logical record is one FULL record, or FIRST, MIDDLE..., LAST with the
 * payloads concatenated. Each logical record of a WAL is a WriteBatch
 * (db/write_batch.cc):
 *
 *   offset size  field
 *   0      8     u64 sequence number of its first operation
 *   8      4     u32 count of operations (each uses one sequence number)
 *   12     ...   count tagged operations: tag byte, then by tag
 *                 0x01 Put: varint32-prefixed key, varint32-prefixed value
 *                 0x00/0x07 Delete/SingleDelete: key
 *                 0x05 Put / 0x04,0x08 Delete in a column family: varint32
 *                 column family id first; the other tags of
 *                 ReadRecordFromWriteBatch are skipped by their shape
 *
 * vedhost writes one WriteBatch per group of slices
 * (persist/store/store_writer.c) with one Put of the manifest key 'M'; its
 * value is the store's framing (u32 CRC-32C of the rest, kind byte 0x21) around
 * the manifest, whose u64 at offset 8 is the slice sequence number
 * (vh_manifest.h). So a record's slice is the last slice of its group, and the
 * slices a lost record held run from the previous record's slice + 1 to its
 * own.
 *
 * CLASSIFICATION. Damage is: a CRC mismatch, a length past the end of a
 * full block, an unknown type, a fragment out of order, a nonzero byte
 * after a zero header, a record too short to be a batch, and a record left
 * incomplete at the end of a file. The first damage is kept; the scan goes
 * on to see what follows. After a bad record the rest of its block is
 * searched byte by byte for a record with a valid CRC (the length may be
 * what was damaged), then parsing resumes at block boundaries as RocksDB's
 * reader does.
 *  - Nothing intact (no complete record, no LAST fragment) after the
 *    damage, in this file or a later one, and the damage is what a crash
 *    makes (a record cut short, or zeros): TORN. A whole record with a bad
 *    checksum at the end is not a crash's doing (a kill -9 leaves a
 *    prefix of the last write): CORRUPT, with no records after it.
 *  - The next complete record continues the sequence numbers of the last
 *    record before the damage (seq == last seq + count): the damage held no
 *    write that counted. That is the torn tail of an earlier crash: RocksDB
 *    opened, kept that log (avoid_flush_during_recovery) and went on in a
 *    new one. The damage is forgotten (tail_seen = 1). When no record
 *    precedes the damage (the first write into a log after a clean close
 *    was cut short: the check that reopens then closes with nothing to
 *    flush, so RocksDB keeps that log), the torn record's own batch
 *    header stands in, if it reached the file: the next record reusing
 *    its sequence number shows RocksDB never applied it. Without it
 *    (fewer than 12 payload bytes; a kill -9 cuts a write at a page
 *    boundary, so only other damage leaves that): CORRUPT.
 *  - Otherwise: CORRUPT. Every complete record (and orphan LAST fragment)
 *    after the damage is counted with the slices it held.
 *
 * LIMITS. A log that RocksDB would skip as obsolete (its data already in
 * table files, left behind by a kill between a flush and the file's
 * deletion) is read like the others: damage in one is reported too. A
 * record above VH_WALSCAN_MAX_RECORD bytes is checked but not parsed (its
 * slice is read from its last fragment only).
 */
#define _DEFAULT_SOURCE /* DT_* of readdir */
#include "vh_walscan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vh_bytes.h"
#include "vh_crc32c.h"

#define VH_WALSCAN_BLOCK 32768
#define VH_WALSCAN_HDR 7
#define VH_WALSCAN_RHDR 11 /* recyclable header */
#define VH_WALSCAN_BATCH_HDR 12
/* Larger logical records are checked but not assembled (see LIMITS). */
#define VH_WALSCAN_MAX_RECORD ((size_t)64 << 20)
#define VH_WALSCAN_MASK_DELTA 0xa282ead8u

/* Record types (db/log_format.h). */
enum {
  VH_REC_ZERO = 0,
  VH_REC_FULL = 1,
  VH_REC_FIRST = 2,
  VH_REC_MIDDLE = 3,
  VH_REC_LAST = 4,
  VH_REC_RFULL = 5,
  VH_REC_RLAST = 8,
  VH_REC_COMPRESSION = 9
};

/* The store's manifest value framing (persist/store/store.c, vh_manifest.h). */
#define VH_WALSCAN_MAN_HDR 5        /* u32 crc, kind byte */
#define VH_WALSCAN_MAN_KIND 0x2     /* kind nibble of the manifest */
#define VH_WALSCAN_MAN_MIN (5 + 36) /* framing + manifest head */

/* One file being read. */
typedef struct vh_ws_file {
  int fd;
  uint32_t lognum; /* from the name; checked in recyclable records */
  uint64_t size;   /* bytes in the file when opened */
  unsigned char block[VH_WALSCAN_BLOCK];
  size_t blen;        /* bytes of block read (short only at the end) */
  uint64_t block_off; /* file offset of block[0] */
  /* The logical record being assembled. */
  int in_frag;        /* a FIRST was read and no LAST yet */
  uint64_t rec_off;   /* offset of its first fragment */
  unsigned char *rec; /* [owned] its payload so far */
  size_t rlen, rcap;
  int rec_big; /* over VH_WALSCAN_MAX_RECORD: no longer stored */
  unsigned char head[VH_WALSCAN_BATCH_HDR]; /* first bytes, always kept */
  size_t hlen;
} vh_ws_file_t;

/* The whole scan. */
typedef struct vh_ws {
  vh_walscan_t *w;  /* [borrowed] the result being filled */
  int batches;      /* 1: records are WriteBatches (a WAL); 0: only
                       damage is looked for (a MANIFEST) */
  const char *name; /* [borrowed] current file's name */
  int damaged;      /* a damage is pending (state decided at the end) */
  int have_last;    /* a record before the damage gave seq and count */
  uint64_t last_seq, last_count;
  int dmg_seq_known; /* the damaged record's batch header reached the file */
  uint64_t dmg_seq;  /* its sequence number */
} vh_ws_t;

static uint32_t unmask(uint32_t m) {
  uint32_t r = m - VH_WALSCAN_MASK_DELTA;
  return (r >> 17) | (r << 15);
}

/* ---- WriteBatch parsing ---- */

/* Reads a varint32 at *p (< end); 0 on success. */
static int varint32(const unsigned char **p, const unsigned char *end,
                    uint32_t *v) {
  uint32_t r = 0;
  for (int shift = 0; shift <= 28 && *p < end; shift += 7) {
    unsigned char b = *(*p)++;
    r |= (uint32_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return -1;
}

/* A varint32-prefixed slice; 0 on success. */
static int slice(const unsigned char **p, const unsigned char *end,
                 const unsigned char **s, uint32_t *n) {
  if (varint32(p, end, n) != 0 || (size_t)(end - *p) < *n) return -1;
  *s = *p;
  *p += *n;
  return 0;
}

/* The slice seq of a manifest value v of n bytes, or 0 if it is not one. */
static uint64_t manifest_slice(const unsigned char *v, size_t n) {
  if (n < VH_WALSCAN_MAN_MIN) return 0;
  if (v[4] >> 4 != VH_WALSCAN_MAN_KIND) return 0;
  if (memcmp(v + VH_WALSCAN_MAN_HDR, "VHMF", 4) != 0) return 0;
  if (vh_le32_load(v) != vh_crc32c(0, v + 4, n - 4)) return 0;
  return vh_le64_load(v + VH_WALSCAN_MAN_HDR + 8);
}

/* The slice of the last Put of 'M' in batch b (n bytes), or 0. */
static uint64_t batch_slice(const unsigned char *b, size_t n) {
  const unsigned char *p = b + VH_WALSCAN_BATCH_HDR, *end = b + n;
  uint64_t slice_seq = 0;
  uint32_t cf, kn, vn;
  const unsigned char *k, *v;
  while (p < end) {
    unsigned char tag = *p++;
    int put = 0, cf0 = 1;
    switch (tag) {
      case 0x05: /* Put in a column family */
      case 0x06:
      case 0x0E:
      case 0x10:
      case 0x17:
        if (varint32(&p, end, &cf) != 0) return slice_seq;
        cf0 = cf == 0;
        /* fall through */
      case 0x01: /* Put */
      case 0x02:
      case 0x0F:
      case 0x11:
      case 0x16:
        put = tag == 0x01 || tag == 0x05;
        if (slice(&p, end, &k, &kn) != 0 || slice(&p, end, &v, &vn) != 0)
          return slice_seq;
        if (put && cf0 && kn == 1 && k[0] == 'M') {
          uint64_t s = manifest_slice(v, vn);
          if (s) slice_seq = s;
        }
        break;
      case 0x04: /* Delete in a column family */
      case 0x08:
        if (varint32(&p, end, &cf) != 0) return slice_seq;
        /* fall through */
      case 0x00:
      case 0x07:
      case 0x03: /* LogData blob */
      case 0x0A: /* xids */
      case 0x0B:
      case 0x0C:
        if (slice(&p, end, &k, &kn) != 0) return slice_seq;
        break;
      case 0x15:
        if (slice(&p, end, &k, &kn) != 0 || slice(&p, end, &v, &vn) != 0)
          return slice_seq;
        break;
      case 0x09:
      case 0x0D:
      case 0x12:
      case 0x13:
        break;
      default:
        return slice_seq; /* unknown tag: stop where we are */
    }
  }
  return slice_seq;
}

/* Looks for a Put of 'M' (tag 1, key length 1, 'M') anywhere in a
 * fragment p[0..n) whose batch start is unknown; the slice, or 0. */
static uint64_t fragment_slice(const unsigned char *p, size_t n) {
  uint64_t found = 0;
  for (size_t i = 0; i + 3 < n; i++) {
    if (p[i] != 0x01 || p[i + 1] != 0x01 || p[i + 2] != 'M') continue;
    const unsigned char *q = p + i + 3, *v;
    uint32_t vn;
    if (slice(&q, p + n, &v, &vn) != 0) continue;
    uint64_t s = manifest_slice(v, vn);
    if (s) found = s;
  }
  return found;
}

/* ---- events ---- */

/* The kinds of damage a crash makes: a write cut short (a prefix of it
 * reached the file) or never written (zeros). Any other damage at the end
 * of the log (a whole record with a bad checksum, say) is corruption. */
static int torn_kind(const char *why) {
  return strcmp(why, "incomplete record") == 0 ||
         strcmp(why, "zeroed record") == 0;
}

/* Records the first damage; 1 if this one was recorded. */
static int note_damage(vh_ws_t *ws, vh_ws_file_t *f, uint64_t off,
                       const char *why) {
  if (ws->damaged || ws->w->state == VH_WALSCAN_CORRUPT) return 0;
  ws->damaged = 1;
  ws->dmg_seq_known = 0;
  vh_walscan_t *w = ws->w;
  snprintf(w->file, sizeof w->file, "%s", ws->name);
  w->offset = off;
  w->file_size = f->size;
  w->why = why;
  return 1;
}

/* A record cut short at the end of what reached the file: records the
 * damage and, when its batch header is among the bytes written (the
 * fragments before, f->head, then p[0..n) of the cut one), its sequence
 * number (see after_damage). */
static void note_torn(vh_ws_t *ws, vh_ws_file_t *f, uint64_t off,
                      const char *why, const unsigned char *p, size_t n) {
  if (!note_damage(ws, f, off, why)) return;
  unsigned char h[VH_WALSCAN_BATCH_HDR];
  size_t k = f->in_frag ? f->hlen : 0;
  memcpy(h, f->head, k);
  if (n > VH_WALSCAN_BATCH_HDR - k) n = VH_WALSCAN_BATCH_HDR - k;
  if (n) memcpy(h + k, p, n);
  if (k + n < VH_WALSCAN_BATCH_HDR) return;
  ws->dmg_seq_known = 1;
  ws->dmg_seq = vh_le64_load(h);
}

/* Evidence after a damage: a complete record (seq known if have_seq) or a
 * LAST fragment; slice_seq is what it held (0 unknown). */
static void after_damage(vh_ws_t *ws, int have_seq, uint64_t seq,
                         uint64_t count, uint64_t slice_seq) {
  vh_walscan_t *w = ws->w;
  if (w->state != VH_WALSCAN_CORRUPT) {
    /* No record before a torn one (the first write into a log that
     * follows a clean close): the next record reusing its sequence number
     * shows that RocksDB never applied it. */
    int reused = !ws->have_last && ws->dmg_seq_known && torn_kind(w->why) &&
                 seq == ws->dmg_seq;
    if (have_seq &&
        (reused || (ws->have_last && seq == ws->last_seq + ws->last_count))) {
      /* An earlier crash's torn tail: nothing lost there. */
      ws->damaged = 0;
      w->tail_seen = 1;
      w->records++;
      ws->have_last = 1;
      ws->last_seq = seq;
      ws->last_count = count;
      if (slice_seq) w->last_slice = slice_seq;
      return;
    }
    w->state = VH_WALSCAN_CORRUPT;
    ws->damaged = 0;
  }
  w->after_records++;
  if (slice_seq) {
    if (w->after_min_slice == 0 || slice_seq < w->after_min_slice)
      w->after_min_slice = slice_seq;
    if (slice_seq > w->after_max_slice) w->after_max_slice = slice_seq;
  }
}

/* A complete logical record at off: payload b[0..n) (NULL if too big to
 * keep; head then holds its first bytes and last_frag its last fragment). */
static void on_record(vh_ws_t *ws, vh_ws_file_t *f, uint64_t off,
                      const unsigned char *b, size_t n, size_t total,
                      const unsigned char *last, size_t lastn) {
  if (!ws->batches) return;
  if (total < VH_WALSCAN_BATCH_HDR) {
    note_damage(ws, f, off, "record too short to be a write batch");
    return;
  }
  const unsigned char *h = b ? b : f->head;
  uint64_t seq = vh_le64_load(h), count = vh_le32_load(h + 8);
  uint64_t s = b ? batch_slice(b, n) : fragment_slice(last, lastn);
  if (ws->damaged || ws->w->state == VH_WALSCAN_CORRUPT) {
    after_damage(ws, 1, seq, count, s);
    return;
  }
  ws->w->records++;
  ws->have_last = 1;
  ws->last_seq = seq;
  ws->last_count = count;
  if (s) ws->w->last_slice = s;
}

/* ---- fragments ---- */

static void frag_reset(vh_ws_file_t *f) {
  f->in_frag = 0;
  f->rlen = 0;
  f->hlen = 0;
  f->rec_big = 0;
}

/* Appends a fragment to the record being assembled; -1 out of memory. */
static int frag_add(vh_ws_file_t *f, const unsigned char *p, size_t n) {
  if (f->hlen < VH_WALSCAN_BATCH_HDR) {
    /* keep the batch header even when the record is too big to keep */
    size_t k = VH_WALSCAN_BATCH_HDR - f->hlen;
    if (k > n) k = n;
    memcpy(f->head + f->hlen, p, k);
    f->hlen += k;
  }
  if (f->rec_big) return 0;
  if (f->rlen + n > VH_WALSCAN_MAX_RECORD) {
    f->rec_big = 1;
    return 0;
  }
  if (n == 0) return 0; /* an empty fragment (f->rec may still be NULL) */
  if (vh_grow(&f->rec, &f->rcap, f->rlen + n, 1) != 0) return VH_ENOMEM;
  memcpy(f->rec + f->rlen, p, n);
  f->rlen += n;
  return 0;
}

/* One valid physical record of type t with payload p[0..n) at off. */
static int on_fragment(vh_ws_t *ws, vh_ws_file_t *f, uint64_t off, int t,
                       const unsigned char *p, size_t n) {
  int base = t >= VH_REC_RFULL ? t - 4 : t; /* recyclable -> plain */
  switch (base) {
    case VH_REC_FULL:
      if (f->in_frag) note_damage(ws, f, f->rec_off, "record without end");
      frag_reset(f);
      on_record(ws, f, off, p, n, n, p, n);
      return 0;
    case VH_REC_FIRST:
      if (f->in_frag) note_damage(ws, f, f->rec_off, "record without end");
      frag_reset(f);
      f->in_frag = 1;
      f->rec_off = off;
      return frag_add(f, p, n);
    case VH_REC_MIDDLE:
      if (!f->in_frag) {
        note_damage(ws, f, off, "record without start");
        return 0;
      }
      return frag_add(f, p, n);
    default: /* LAST */
      if (!f->in_frag) {
        note_damage(ws, f, off, "record without start");
        /* The end of a write that completed: evidence, slice if found. */
        if (ws->batches) after_damage(ws, 0, 0, 0, fragment_slice(p, n));
        return 0;
      }
      if (frag_add(f, p, n) != 0) return -1;
      {
        size_t total = f->rec_big ? VH_WALSCAN_MAX_RECORD + 1 : f->rlen;
        on_record(ws, f, f->rec_off, f->rec_big ? NULL : f->rec, f->rlen, total,
                  p, n);
      }
      frag_reset(f);
      return 0;
  }
}

/* ---- physical records ---- */

/* Header size of type t (0 for an unknown type). */
static size_t hdr_size(int t) {
  if (t >= VH_REC_FULL && t <= VH_REC_LAST) return VH_WALSCAN_HDR;
  if (t >= VH_REC_RFULL && t <= VH_REC_RLAST) return VH_WALSCAN_RHDR;
  if (t == VH_REC_COMPRESSION) return VH_WALSCAN_HDR;
  return 0;
}

/* 1 if a record with a valid CRC starts at block[pos], its total size in
 * *size. */
static int valid_at(const vh_ws_file_t *f, size_t pos, size_t *size) {
  const unsigned char *h = f->block + pos;
  if (f->blen - pos < VH_WALSCAN_HDR) return 0;
  int t = h[6];
  size_t hs = hdr_size(t);
  if (hs == 0 || f->blen - pos < hs) return 0;
  size_t len = (size_t)h[4] | (size_t)h[5] << 8;
  if (hs + len > f->blen - pos) return 0;
  if (unmask(vh_le32_load(h)) != vh_crc32c(0, h + 6, hs - 6 + len)) return 0;
  *size = hs + len;
  return 1;
}

/* After a bad record at pos: the next position in the block where a
 * valid record starts, or blen. */
static size_t resync(const vh_ws_file_t *f, size_t pos) {
  size_t size;
  for (size_t q = pos + 1; q + VH_WALSCAN_HDR <= f->blen; q++)
    if (valid_at(f, q, &size)) return q;
  return f->blen;
}

static int all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return 0;
  return 1;
}

/* Parses the block in f; 1 if the file ends here (an old record of a
 * recycled log), 0 to go on, -1 out of memory. */
static int scan_block(vh_ws_t *ws, vh_ws_file_t *f) {
  size_t pos = 0;
  int full = f->blen == VH_WALSCAN_BLOCK;
  while (pos < f->blen) {
    const unsigned char *h = f->block + pos;
    uint64_t off = f->block_off + pos;
    size_t left = f->blen - pos;
    int t = left >= VH_WALSCAN_HDR ? h[6] : -1;
    size_t hs = t >= 0 ? hdr_size(t) : 0;
    if (left < VH_WALSCAN_HDR || (hs && left < hs)) {
      /* A trailer (padding, skipped unread as RocksDB does) in a full
       * block; at the end of the file, a header cut short by the crash
       * (zeros held nothing). */
      if (!full && !all_zero(h, left))
        note_torn(ws, f, f->in_frag ? f->rec_off : off, "incomplete record",
                  NULL, 0);
      return 0;
    }
    size_t len = (size_t)h[4] | (size_t)h[5] << 8;
    if (t == VH_REC_ZERO) {
      /* Zero padding: fine if the rest of the block is zeros. */
      if (all_zero(h, left)) {
        if (f->in_frag) note_torn(ws, f, f->rec_off, "zeroed record", NULL, 0);
        frag_reset(f);
        return 0;
      }
      note_damage(ws, f, f->in_frag ? f->rec_off : off, "bad record type 0");
      frag_reset(f);
      pos = resync(f, pos);
      continue;
    }
    if (hs == 0) {
      note_damage(ws, f, f->in_frag ? f->rec_off : off, "unknown record type");
      frag_reset(f);
      pos = resync(f, pos);
      continue;
    }
    if (hs + len > left) {
      if (!full) {
        /* Runs past the end of the file: a write cut short. Anything
         * intact inside the rest is still looked for below. */
        int base = t >= VH_REC_RFULL ? t - 4 : t;
        int starts = base == VH_REC_FULL || base == VH_REC_FIRST;
        /* its payload continues the record's head only in order */
        int more = t != VH_REC_COMPRESSION && starts != f->in_frag;
        note_torn(ws, f, f->in_frag ? f->rec_off : off, "incomplete record",
                  h + hs, more ? left - hs : 0);
      } else {
        note_damage(ws, f, f->in_frag ? f->rec_off : off, "bad record length");
      }
      frag_reset(f);
      pos = resync(f, pos);
      continue;
    }
    if (unmask(vh_le32_load(h)) != vh_crc32c(0, h + 6, hs - 6 + len)) {
      note_damage(ws, f, f->in_frag ? f->rec_off : off, "checksum mismatch");
      frag_reset(f);
      pos = resync(f, pos);
      continue;
    }
    if (hs == VH_WALSCAN_RHDR && vh_le32_load(h + 7) != f->lognum) {
      /* A record of the file's previous life: the log ends here. */
      if (f->in_frag)
        note_torn(ws, f, f->rec_off, "incomplete record", NULL, 0);
      frag_reset(f);
      return 1;
    }
    if (t != VH_REC_COMPRESSION && on_fragment(ws, f, off, t, h + hs, len) != 0)
      return -1;
    pos += hs + len;
  }
  return 0;
}

/* Reads and scans one open file to its end. 0, -1 (ENOMEM), or -2 (read
 * error, errno set). */
static int scan_fd(vh_ws_t *ws, vh_ws_file_t *f) {
  for (;;) {
    size_t got = 0;
    while (got < VH_WALSCAN_BLOCK) {
      ssize_t r = read(f->fd, f->block + got, VH_WALSCAN_BLOCK - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return -2;
      if (r == 0) break;
      got += (size_t)r;
    }
    if (got == 0) break;
    f->blen = got;
    int rc = scan_block(ws, f);
    if (rc < 0) return -1;
    if (rc > 0) break;
    f->block_off += got;
    if (got < VH_WALSCAN_BLOCK) break;
  }
  if (f->in_frag) note_torn(ws, f, f->rec_off, "incomplete record", NULL, 0);
  return 0;
}

/* Opens and scans path; 0, VH_ENOENT (gone), VH_EIO, VH_ENOMEM. */
static int scan_path(vh_ws_t *ws, const char *path, uint32_t lognum,
                     char **errmsg) {
  vh_ws_file_t *f = calloc(1, sizeof *f);
  if (f == NULL) return VH_ENOMEM;
  f->lognum = lognum;
  f->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) {
    int e = errno;
    free(f);
    if (e == ENOENT) return VH_ENOENT;
    if (errmsg) {
      size_t n = strlen(path) + strlen(strerror(e)) + 32;
      *errmsg = malloc(n);
      if (*errmsg)
        snprintf(*errmsg, n, "%s: cannot read (%s)", path, strerror(e));
    }
    return VH_EIO;
  }
  struct stat st;
  if (fstat(f->fd, &st) == 0) f->size = (uint64_t)st.st_size;
  int rc = scan_fd(ws, f);
  int e = errno;
  close(f->fd);
  free(f->rec);
  free(f);
  if (rc == -1) return VH_ENOMEM;
  if (rc == -2) {
    if (errmsg) {
      size_t n = strlen(path) + strlen(strerror(e)) + 32;
      *errmsg = malloc(n);
      if (*errmsg)
        snprintf(*errmsg, n, "%s: read error (%s)", path, strerror(e));
    }
    return VH_EIO;
  }
  return 0;
}

/* ---- the directory ---- */

typedef struct vh_ws_name {
  uint64_t num;
  char name[64];
} vh_ws_name_t;

static int cmp_name(const void *a, const void *b) {
  uint64_t x = ((const vh_ws_name_t *)a)->num;
  uint64_t y = ((const vh_ws_name_t *)b)->num;
  return x < y ? -1 : x > y;
}

/* 1 and *num if name is DIGITS.log. */
static int wal_name(const char *name, uint64_t *num) {
  size_t n = strlen(name), d = 0;
  uint64_t v = 0;
  while (d < n && name[d] >= '0' && name[d] <= '9' && d < 19)
    v = v * 10 + (uint64_t)(name[d++] - '0');
  if (d == 0 || n - d != 4 || strcmp(name + d, ".log") != 0) return 0;
  *num = v;
  return 1;
}

int vh_walscan_dir(const char *dbpath, vh_walscan_t *out, char **errmsg) {
  memset(out, 0, sizeof *out);
  if (errmsg) *errmsg = NULL;
  DIR *d = opendir(dbpath);
  if (d == NULL) return 0; /* no store: nothing to replay */
  vh_ws_name_t *names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    uint64_t num;
    if (!wal_name(e->d_name, &num) || strlen(e->d_name) >= 64) continue;
    if ((rc = vh_grow(&names, &cap, n + 1, sizeof *names)) != 0) break;
    names[n].num = num;
    memcpy(names[n].name, e->d_name, strlen(e->d_name) + 1); /* < 64 */
    n++;
  }
  closedir(d);
  if (rc == 0 && n > 1) qsort(names, n, sizeof *names, cmp_name);
  vh_ws_t ws = {.w = out, .batches = 1};
  size_t plen = strlen(dbpath) + 80;
  char *path = rc == 0 ? malloc(plen) : NULL;
  if (rc == 0 && path == NULL) rc = VH_ENOMEM;
  for (size_t i = 0; i < n && rc == 0; i++) {
    snprintf(path, plen, "%s/%s", dbpath, names[i].name);
    ws.name = names[i].name;
    int r = scan_path(&ws, path, (uint32_t)names[i].num, errmsg);
    if (r == VH_ENOENT) continue; /* deleted by a live host meanwhile */
    if (r != 0) rc = r;
    out->files++;
  }
  if (rc == 0 && ws.damaged && out->state == VH_WALSCAN_CLEAN)
    out->state = torn_kind(out->why) ? VH_WALSCAN_TORN : VH_WALSCAN_CORRUPT;
  free(path);
  free(names);
  if (rc == VH_ENOMEM && errmsg && *errmsg == NULL)
    *errmsg = strdup("out of memory scanning the WAL");
  return rc;
}

int vh_walscan_file_damage(const char *path, uint64_t *offset,
                           const char **why) {
  vh_walscan_t w;
  memset(&w, 0, sizeof w);
  vh_ws_t ws = {.w = &w, .batches = 0, .name = ""};
  int rc = scan_path(&ws, path, 0, NULL);
  if (rc != 0) return rc;
  if (!ws.damaged) return 0;
  *offset = w.offset;
  *why = w.why;
  return 1;
}
