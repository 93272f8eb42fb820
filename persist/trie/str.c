/*
 * str.c - strings, the byte hash, and values (keys and their order).
 *
 * A vh_str_t is one allocation: a 12-byte header (refcount, cached hash,
 * length) followed by the bytes and a NUL, so vh_str_data() can be passed
 * to C APIs that want a C string (the bytes may still hold NULs). Strings
 * are immutable and shared freely between table versions; they are not
 * trie nodes and carry no store id, except big ones (BLOBS below).
 *
 * BLOBS (ARCHITECTURE.md "Large string values out of line"). A string of
 * at least VH_BLOB_MIN bytes is stored out of line when it is a value: its
 * allocation has an 8-byte trailer (vh_trie_int.h) holding its blob id,
 * set by flush.c when it writes the blob, or by lazy.c when it loads one.
 * The blob lives as long as this in-memory string: when the last
 * reference goes, vh_str_release reports the id's death to the free hook,
 * as a loaded node's release does (unless VH_BLOB_NODEATH: a view's copy).
 * That is exact because a blob id has one holder slot per version:
 * vh_str__own copies a big string that is stored into a slot while it
 * has another holder or an id (tab.c's writes and deep copies call it).
 * Keys are always written inline, so a big key string carries a trailer
 * that stays 0.
 *
 * vh_hash_bytes is our own 64-bit-state hash folded to 32 bits: the input
 * is read in 8-byte little-endian words (assembled bytewise, so the result
 * is the same on every machine: the trie's shape depends on it), each word
 * is multiplied by an odd constant, xored in, rotated and multiplied again;
 * a 1..7 byte tail is read as two overlapping 32-bit words (or first,
 * middle and last byte), which is injective because len is in the seed;
 * a final xorshift-multiply avalanche spreads every input bit over the
 * output. Hash values feed the CHAMP map 5 bits per level, low bits first.
 *
 * Keys are normalized before use (vh_key_norm): an integral float becomes
 * the integer, so 2.0 and 2 and -0.0 and 0 are one key each. After that,
 * key equality is type + value equality, and vh_key__cmp is a total order
 * (type first, then value) used to keep collision nodes sorted.
 *
 * INLINE KEYS (vh_trie_int.h). Inside a node a string key of at most 14
 * bytes is a VH_TIKEY slot holding its bytes, not a vh_str_t. The key
 * functions here (eq, cmp, hash) treat it as the VH_TSTR it stands for,
 * in either argument, so a lookup with a string key finds an inline one
 * and a collision node sorts both forms as one; vh_key__out turns a slot
 * into the string form before anything hands the key out.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vh_bytes.h"
#include "vh_trie_int.h"

#define K1 0x9E3779B97F4A7C15ull
#define K2 0xC2B2AE3D27D4EB4Full
#define K3 0xD6E8FEB86659FD93ull

vh_hash_fn vh_trie__test_hash;

static inline uint64_t rotl64(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

uint64_t vh_hash__mix64(uint64_t x) {
  x ^= x >> 31;
  x *= K1;
  x ^= x >> 29;
  x *= K3;
  x ^= x >> 32;
  return x;
}

uint32_t vh_hash_bytes(const char *p, size_t len) {
  const unsigned char *s = (const unsigned char *)p;
  uint64_t h = 0x243F6A8885A308D3ull ^ ((uint64_t)len * K1);
  uint64_t w;
  while (len >= 8) {
    w = vh_le64_load(s);
    h = rotl64(h ^ (w * K2), 27) * K1;
    s += 8;
    len -= 8;
  }
  if (len >= 4) { /* 4..7 bytes: two overlapping 32-bit words */
    w = vh_le32_load(s) | (uint64_t)vh_le32_load(s + len - 4) << 32;
    h = rotl64(h ^ (w * K2), 27) * K1;
  } else if (len > 0) { /* 1..3 bytes: first, middle, last */
    w = (uint64_t)s[0] | (uint64_t)s[len >> 1] << 8 |
        (uint64_t)s[len - 1] << 16;
    h = rotl64(h ^ (w * K2), 27) * K1;
  }
  h ^= h >> 33;
  h *= K3;
  h ^= h >> 29;
  return (uint32_t)(h ^ (h >> 32));
}

/* ---- strings ---- */

vh_str_t *vh_str_new(const char *p, size_t len) {
  vh_str_t *s;
  if (len >= UINT32_MAX) return NULL;
  s = vh_mem__alloc(vh_str__alloc_size(len));
  if (s == NULL) return NULL;
  s->refc = 1;
  s->len = (uint32_t)len;
  if (len >= VH_BLOB_MIN) *vh_str__blob(s) = 0;
  s->hash = len < VH_BLOB_MIN ? vh_hash_bytes(p, len) : 0;
  if (len > 0) memcpy(s->data, p, len);
  s->data[len] = '\0';
  return s;
}

void vh_str_retain(vh_str_t *s) {
  s->refc++;
}

void vh_str_release(vh_str_t *s) {
  if (s->refc == 0) vh_trie__panic("vh_str_release: refcount underflow");
  if (--s->refc != 0) return;
  if (VH_UNLIKELY(vh_str__big(s))) {
    uint64_t t = *vh_str__blob(s);
    if ((t & VH_BLOB_ID_MASK) != 0 && !(t & VH_BLOB_NODEATH))
      vh_trie__died(t & VH_BLOB_ID_MASK, 0);
  }
  vh_mem__free(s, vh_str__alloc_size(s->len));
}

int vh_str__own(vh_val_t *v) {
  vh_str_t *s, *c;
  if (v->type != VH_TSTR) return 0;
  s = v->u.s;
  if (!vh_str__big(s) ||
      (s->refc == 1 &&
       !(*vh_str__blob(s) & (VH_BLOB_ID_MASK | VH_BLOB_NODEATH))))
    return 0;
  if ((c = vh_str_new(s->data, s->len)) == NULL) return VH_ENOMEM;
  vh_str_release(s);
  v->u.s = c;
  return 0;
}

void vh_str__nodeath(vh_val_t v) {
  if (v.type == VH_TSTR && vh_str__big(v.u.s))
    *vh_str__blob(v.u.s) |= VH_BLOB_NODEATH;
}

const char *vh_str_data(const vh_str_t *s) {
  return s->data;
}

size_t vh_str_len(const vh_str_t *s) {
  return s->len;
}

/* ---- values ---- */

void vh_val_retain(vh_val_t v) {
  if (v.type == VH_TSTR)
    v.u.s->refc++;
  else if (v.type == VH_TTAB)
    vh_tab_retain(v.u.t);
}

void vh_val_release(vh_val_t v) {
  if (v.type == VH_TSTR)
    vh_str_release(v.u.s);
  else if (v.type == VH_TTAB)
    vh_tab_release(v.u.t);
}

int vh_key_norm(vh_val_t *k) {
  double f;
  switch (k->type) {
    case VH_TBOOL:
    case VH_TINT:
    case VH_TSTR:
      return 0;
    case VH_TFLOAT:
      f = k->u.f;
      if (isnan(f)) return VH_EKEY;
      /* Integral and inside int64 range: the integer key. 2^63 itself
       * does not fit, hence the strict upper bound. */
      if (f == floor(f) && f >= -9223372036854775808.0 &&
          f < 9223372036854775808.0) {
        k->u.i = (int64_t)f;
        k->type = VH_TINT;
      }
      return 0;
    default:
      return VH_EKEY;
  }
}

/* Bytes and length of a string key in either form (buf: VH_IKEY_MAX). */
static const char *key_bytes(const vh_val_t *k, char *buf, size_t *len) {
  if (k->type == VH_TIKEY) {
    *len = vh_key__ibytes(k, buf);
    return buf;
  }
  *len = k->u.s->len;
  return k->u.s->data;
}

/* An inline key against another key (a or b is VH_TIKEY). */
static __attribute__((noinline)) int ikey_eq(const vh_val_t *a,
                                             const vh_val_t *b) {
  char ba[VH_IKEY_MAX], bb[VH_IKEY_MAX];
  const char *pa, *pb;
  size_t la, lb;
  if (a->type == b->type) return vh_key__ieq(a, b);
  if (a->type != VH_TSTR && b->type != VH_TSTR) return 0;
  pa = key_bytes(a, ba, &la);
  pb = key_bytes(b, bb, &lb);
  return la == lb && memcmp(pa, pb, la) == 0;
}

int vh_key__out(vh_val_t *k) {
  char buf[VH_IKEY_MAX];
  size_t len;
  vh_str_t *s;
  if (k->type != VH_TIKEY) return 0;
  len = vh_key__ibytes(k, buf);
  if ((s = vh_str_new(buf, len)) == NULL) return VH_ENOMEM;
  memset(k->x, 0, sizeof k->x);
  k->u.s = s;
  k->type = VH_TSTR;
  return 0;
}

int vh_key__eq(vh_val_t a, vh_val_t b) {
  if (VH_UNLIKELY(a.type == VH_TIKEY || b.type == VH_TIKEY))
    return ikey_eq(&a, &b);
  if (a.type != b.type) return 0;
  switch (a.type) {
    case VH_TSTR:
      if (a.u.s == b.u.s) return 1;
      if (a.u.s->len != b.u.s->len) return 0;
      if (vh_str__big(a.u.s)) { /* one blob id, one content (diff) */
        uint64_t id = vh_str__blob_id(a.u.s);
        if (id != 0 && id == vh_str__blob_id(b.u.s)) return 1;
      } else if (a.u.s->hash != b.u.s->hash) {
        return 0;
      }
      return memcmp(a.u.s->data, b.u.s->data, a.u.s->len) == 0;
    case VH_TINT:
      return a.u.i == b.u.i;
    case VH_TFLOAT:
      return a.u.f == b.u.f;
    case VH_TBOOL:
      return a.u.b == b.u.b;
    default:
      return a.u.t == b.u.t;
  }
}

int vh_key__cmp(vh_val_t a, vh_val_t b) {
  char ba[VH_IKEY_MAX], bb[VH_IKEY_MAX];
  const char *pa, *pb;
  size_t n, la, lb;
  int c, ta = a.type == VH_TIKEY ? VH_TSTR : a.type;
  int tb = b.type == VH_TIKEY ? VH_TSTR : b.type;
  if (ta != tb) return ta < tb ? -1 : 1;
  switch (ta) {
    case VH_TSTR: /* either form */
      pa = key_bytes(&a, ba, &la);
      pb = key_bytes(&b, bb, &lb);
      n = la < lb ? la : lb;
      c = memcmp(pa, pb, n);
      if (c != 0) return c < 0 ? -1 : 1;
      return la < lb ? -1 : la > lb;
    case VH_TINT:
      return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
    case VH_TFLOAT:
      return a.u.f < b.u.f ? -1 : a.u.f > b.u.f;
    case VH_TBOOL:
      return a.u.b < b.u.b ? -1 : a.u.b > b.u.b;
    default:
      return 0;
  }
}

vh_str_t *vh_str__tmp(const char *p, size_t len) {
  vh_str_t *s = malloc(sizeof(vh_str_t) + len + 1);
  if (s == NULL) return NULL;
  s->refc = 1;
  s->len = (uint32_t)len;
  s->hash = vh_hash_bytes(p, len);
  memcpy(s->data, p, len);
  s->data[len] = '\0';
  return s;
}

/* A test hash of an inline key: the hash function is handed the key as
 * a VH_TSTR (vh_str__tmp, so hashing never fails or counts). */
static uint32_t test_hash_ikey(vh_val_t k) {
  char buf[VH_IKEY_MAX];
  size_t len = vh_key__ibytes(&k, buf);
  vh_str_t *s = vh_str__tmp(buf, len);
  vh_val_t v;
  uint32_t h;
  if (s == NULL) return vh_hash_bytes(buf, len);
  v.type = VH_TSTR;
  v.u.s = s;
  h = vh_trie__test_hash(v);
  free(s);
  return h;
}

/* Out of line: the buffer would cost every vh_key__hash a stack check. */
static __attribute__((noinline)) uint32_t hash_ikey(vh_val_t k) {
  char buf[VH_IKEY_MAX];
  size_t len = vh_key__ibytes(&k, buf);
  return vh_hash_bytes(buf, len);
}

uint32_t vh_key__hash(vh_val_t k) {
  uint64_t bits;
  if (vh_trie__test_hash != NULL)
    return k.type == VH_TIKEY ? test_hash_ikey(k) : vh_trie__test_hash(k);
  switch (k.type) {
    case VH_TIKEY:
      return hash_ikey(k);
    case VH_TSTR:
      if (VH_UNLIKELY(vh_str__big(k.u.s))) { /* hashed on first use */
        uint64_t *t = vh_str__blob(k.u.s);
        if (!(*t & VH_STR_HASHED)) {
          k.u.s->hash = vh_hash_bytes(k.u.s->data, k.u.s->len);
          *t |= VH_STR_HASHED;
        }
      }
      return k.u.s->hash;
    case VH_TINT:
      return (uint32_t)vh_hash__mix64((uint64_t)k.u.i);
    case VH_TFLOAT:
      memcpy(&bits, &k.u.f, sizeof bits);
      return (uint32_t)vh_hash__mix64(bits ^ K2);
    default:
      return (uint32_t)vh_hash__mix64(k.u.b ? K3 : K1);
  }
}

void vh_trie_set_test_hash(vh_hash_fn fn) {
  vh_trie__test_hash = fn;
}

/* Deep equality. Tables: same count, and every entry of a is in b with an
 * equal value. Recursion follows table nesting (one small frame per level;
 * a 10,000-deep comparison needs well under 1 MB of stack). */
int vh_val_equal(vh_val_t a, vh_val_t b) {
  vh_val_t k, v, w;
  int r;
  if (a.type != b.type) return 0;
  switch (a.type) {
    case VH_TNIL:
      return 1;
    case VH_TBOOL:
      return a.u.b == b.u.b;
    case VH_TINT:
      return a.u.i == b.u.i;
    case VH_TFLOAT:
      return a.u.f == b.u.f;
    case VH_TSTR:
      return vh_key__eq(a, b);
    default:
      break;
  }
  if (a.u.t == b.u.t) return 1;
  if (vh_tab_count(a.u.t) != vh_tab_count(b.u.t)) return 0;
  k = vh_nil();
  while ((r = vh_tab_next(a.u.t, k, &k, &v)) == 1) {
    vh_tab_get(b.u.t, k, &w);
    if (!vh_val_equal(v, w)) return 0;
  }
  return r == 0;
}
