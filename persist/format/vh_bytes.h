/*
 * vh_bytes.h - one copy of the small byte helpers: LEB128 varints,
 * little- and big-endian loads and stores, a growth helper for arrays and
 * a growable byte buffer.
 *
 * WHY. The node codec, the value encoding, the export stream, the manifest
 * and the host each wrote their own; the copies had drifted only in
 * spelling. Everything here is static inline so the callers compile to
 * what they had. persist/ is the bottom room: host/ and bindings/ may
 * include this header, persist/ includes nothing above it.
 *
 * VARINTS are unsigned LEB128, least significant group first, 1..10 bytes.
 * Readers accept only the minimal form (no trailing 0x00 group) and at most
 * 64 bits (a 10th byte of 0 or 1); the byte layouts that use them (codec.c,
 * valenc.c, export.c) require exactly that, so one reading is one value.
 *
 * GROWTH (vh_grow) follows Lua's luaM_growvector: double until the need
 * fits, refuse (VH_ENOMEM, nothing changed) when the size in bytes would
 * overflow size_t, and realloc once.
 */
#ifndef VH_BYTES_H
#define VH_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vh_err.h"

/* ---- zigzag: signed integers as small varints ---- */

/* 0, -1, 1, -2, 2 ... as 0, 1, 2, 3, 4 ... (every format here that stores
 * an int64 as a varint: nodes, values, exports, input logs, change
 * records). */
static inline uint64_t vh_zigzag(int64_t x) {
  uint64_t u = (uint64_t)x;
  return (u << 1) ^ (0 - (u >> 63));
}

static inline int64_t vh_unzigzag(uint64_t z) {
  return (int64_t)((z >> 1) ^ (0 - (z & 1)));
}

/* ---- varints ---- */

/* The most bytes a varint of 64 bits takes. */
#define VH_VARINT_MAX 10

/* Writes x at b (room for VH_VARINT_MAX bytes); returns the bytes used. */
static inline size_t vh_varint_put(unsigned char *b, uint64_t x) {
  size_t n = 0;
  while (x >= 0x80) {
    b[n++] = (unsigned char)(x | 0x80);
    x >>= 7;
  }
  b[n++] = (unsigned char)x;
  return n;
}

/* Feeds c, byte i (from 0) of a varint, into *x (set *x = 0 before byte
 * 0). Returns 1 when c ends the varint, 0 when more bytes follow, or
 * VH_ECORRUPT when c would take it past 64 bits (i == 9, c > 1) or ends it
 * with a needless 0x00 group (not minimal). For readers of a stream. */
static inline int vh_varint_step(uint64_t *x, unsigned i, unsigned c) {
  if (i == VH_VARINT_MAX - 1 && c > 1) return VH_ECORRUPT;
  *x |= (uint64_t)(c & 0x7f) << (7 * i);
  if (c & 0x80) return 0;
  return c == 0 && i > 0 ? VH_ECORRUPT : 1;
}

/* Reads a varint from p[*pos..len) into *x and moves *pos past it. 0, or
 * VH_ECORRUPT (truncated, past 64 bits, not minimal; *pos, *x unchanged). */
static inline int vh_varint_get(const unsigned char *p, size_t len, size_t *pos,
                                uint64_t *x) {
  uint64_t v = 0;
  size_t at = *pos;
  for (unsigned i = 0; at < len; i++) {
    int r = vh_varint_step(&v, i, p[at++]);
    if (r < 0) return r;
    if (r == 1) {
      *x = v;
      *pos = at;
      return 0;
    }
  }
  return VH_ECORRUPT;
}

/* ---- fixed-width integers ---- */

static inline void vh_le16_store(unsigned char *b, uint16_t x) {
  b[0] = (unsigned char)x;
  b[1] = (unsigned char)(x >> 8);
}
static inline void vh_le32_store(unsigned char *b, uint32_t x) {
  for (int i = 0; i < 4; i++) b[i] = (unsigned char)(x >> (8 * i));
}
static inline void vh_le64_store(unsigned char *b, uint64_t x) {
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(x >> (8 * i));
}
static inline uint16_t vh_le16_load(const unsigned char *b) {
  return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t vh_le32_load(const unsigned char *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
         (uint32_t)b[3] << 24;
}
static inline uint64_t vh_le64_load(const unsigned char *b) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; i--) x = x << 8 | b[i];
  return x;
}
static inline void vh_be32_store(unsigned char *b, uint32_t x) {
  for (int i = 0; i < 4; i++) b[i] = (unsigned char)(x >> (24 - 8 * i));
}
static inline void vh_be64_store(unsigned char *b, uint64_t x) {
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(x >> (56 - 8 * i));
}
static inline uint32_t vh_be32_load(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         (uint32_t)b[3];
}
static inline uint64_t vh_be64_load(const unsigned char *b) {
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x = x << 8 | b[i];
  return x;
}

/* ---- growth ---- */

/* Makes the array *pp (any T *, passed as &ptr; NULL when *cap == 0) hold
 * at least need elements of elem bytes: the capacity doubles from *cap (or
 * from 64 bytes' worth) until need fits, then one realloc. 0, or VH_ENOMEM
 * (too large for size_t, or realloc failed) with *pp and *cap unchanged. */
static inline int vh_grow(void *pp, size_t *cap, size_t need, size_t elem) {
  void *p, *q;
  size_t nc;
  if (need <= *cap) return 0;
  if (elem == 0 || need > SIZE_MAX / elem) return VH_ENOMEM;
  nc = *cap ? *cap : (elem < 64 ? 64 / elem : 1);
  while (nc < need) nc = nc > SIZE_MAX / 2 / elem ? need : nc * 2;
  memcpy(&p, pp, sizeof p);
  q = realloc(p, nc * elem);
  if (q == NULL) return VH_ENOMEM;
  memcpy(pp, &q, sizeof q);
  *cap = nc;
  return 0;
}

/* ---- byte buffer ---- */

/* A growable byte buffer (plain malloc, outside the trie's accounting).
 * Zero-initialise it (or vh_buf_init); vh_buf_free releases it. Reusable:
 * set len = 0 to start over. */
typedef struct vh_buf {
  unsigned char *p; /* [owned] bytes [0, len) */
  size_t len;       /* bytes in use */
  size_t cap;       /* bytes allocated */
} vh_buf_t;

static inline void vh_buf_init(vh_buf_t *b) {
  b->p = NULL;
  b->len = 0;
  b->cap = 0;
}

static inline void vh_buf_free(vh_buf_t *b) {
  free(b->p);
  vh_buf_init(b);
}

/* Room for more bytes after len. 0 or VH_ENOMEM (b unchanged). */
static inline int vh_buf_reserve(vh_buf_t *b, size_t more) {
  if (more > SIZE_MAX - b->len) return VH_ENOMEM;
  return vh_grow(&b->p, &b->cap, b->len + more, 1);
}

/* Appends n bytes at p [borrowed]. 0 or VH_ENOMEM (b unchanged). */
static inline int vh_buf_put(vh_buf_t *b, const void *p, size_t n) {
  int r = vh_buf_reserve(b, n);
  if (r != 0) return r;
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

/* Appends x as a varint. 0 or VH_ENOMEM (b unchanged). */
static inline int vh_buf_put_varint(vh_buf_t *b, uint64_t x) {
  int r = vh_buf_reserve(b, VH_VARINT_MAX);
  if (r != 0) return r;
  b->len += vh_varint_put(b->p + b->len, x);
  return 0;
}

#endif
