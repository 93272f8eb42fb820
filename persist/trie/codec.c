/*
 * codec.c - the byte encoding of trie nodes (vh_codec.h).
 *
 * WHAT. Each trie node (vh_trie_int.h) is stored as one value under its id.
 * The encoding is compact (varints), self-describing enough to validate in
 * isolation, and refers to children only by id, so that a node never
 * changes once written and a new version rewrites only the nodes on the
 * paths it changed. Integrity of the bytes (checksum, record version) is
 * the store's job; this layer guards the structure: a node that decodes
 * can be used by champ.c / vec.c without any further check.
 *
 * NODE LAYOUT. Byte 0 is version << 4 | kind. Version is 2 for a node that
 * holds a blob reference (tag 7) and for a blob record (kind 6), 1 for
 * every other node (so those stay readable by a vedhost of before blobs);
 * a version above VH_CODEC_VERSION is refused with VH_EFORMAT ("node of a
 * newer format"), never misread, and tag 7 or kind 6 in a version 1 node
 * is corrupt. Varints are LEB128 (7 bits a byte, low first, at most 10 bytes,
 * minimal: no trailing 0x80 0x00), "u32" is 4 bytes little endian.
 *
 *   kind           field        encoding
 *   0x11 table     n            varint: array part size (keys 1..n)
 *                  acount       varint: non-nil array slots (<= n)
 *                  hcount       varint: hash part entries
 *                  root         varint: id of the vector root, 0 if none
 *                  tail         varint: id of the vector tail, 0 if none
 *                  hash         varint: id of the CHAMP root, 0 if none
 *   0x12 CHAMP     datamap      u32 (bit b: an inline entry of chunk b)
 *                  nodemap      u32 (bit b: a child of chunk b)
 *                  entries      popcount(datamap) x (key value)
 *                  children     popcount(nodemap) x varint id
 *   0x13 collision count        varint (>= 2)
 *                  entries      count x (key value), sorted by key
 *   0x14 vec leaf  count        varint (1..32)
 *                  slots        count x value (nil = a hole)
 *   0x15 vec inner count        varint (1..32)
 *                  children     count x varint id
 *
 * A value (and a key: the same, but never nil, a table, a NaN or an
 * integral float) is a tag byte then its payload:
 *
 *   tag  value    payload
 *   0    nil      -
 *   1    false    -
 *   2    true     -
 *   3    integer  varint of the zigzag form ((i << 1) ^ (i >> 63))
 *   4    float    8 bytes: IEEE 754 binary64 bits, little endian
 *   5    string   varint length, then the bytes
 *   6    table    varint id of the nested table's node (!= 0)
 *
 * Fields that follow from others are not stored: the vector's shift (the
 * smallest that holds the tree), the collision hash (the keys' hash), the
 * slot capacity (copies are exact), refcounts and edit tokens.
 *
 * VALIDATION (decode). Besides lengths, varints, tags and trailing bytes,
 * a node is checked against what its parent expects (vh_codec_expect_t,
 * carried by the child's stub): the kind at its depth, the vector slot
 * counts implied by the table's size, CHAMP bitmaps (disjoint, within the
 * hash at level 6, canonical: no empty or single-entry non-root node), each
 * key's hash prefix matching its slot, collision keys sorted and of one
 * hash, values non-nil in the hash part, and the vector tail's last slot
 * non-nil. What needs more than one node (the hash part's count, keys
 * 1..n+1 absent from the hash part) is left to vh_tab_check. Memory is
 * bounded by the input: counts are checked against the bytes left before
 * anything is allocated.
 *
 * LIMITS. A node is checked alone, so a wrong but well-formed child id is
 * not caught here: pointing at a node of the right kind and shape, it
 * makes the stored graph share a subtree or loop back to an ancestor
 * (which then unfolds lazily without end). The store's checksums make
 * this unlikely; fsck catches it (every id must have exactly one parent).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vh_bytes.h"
#include "vh_codec.h"
#include "vh_trie_int.h"

enum {
  TAG_NIL,
  TAG_FALSE,
  TAG_TRUE,
  TAG_INT,
  TAG_FLOAT,
  TAG_STR,
  TAG_TAB,
  TAG_BLOB
};

/* ---- buffers (vh_bytes.h) ---- */

static int reserve(vh_buf_t *b, size_t more) {
  return vh_buf_reserve(b, more);
}

/* The put_* helpers write into space already reserved. */
static inline void put_u8(vh_buf_t *b, unsigned x) {
  b->p[b->len++] = (unsigned char)x;
}

static inline void put_varint(vh_buf_t *b, uint64_t x) {
  b->len += vh_varint_put(b->p + b->len, x);
}

static inline void put_u32(vh_buf_t *b, uint32_t x) {
  vh_le32_store(b->p + b->len, x);
  b->len += 4;
}

/* The blob id a value is written as (0: inline). */
static inline uint64_t blob_ref(vh_val_t v) {
  if (v.type != VH_TSTR || !vh_str__big(v.u.s)) return 0;
  uint64_t t = *vh_str__blob(v.u.s);
  return t & VH_BLOB_NODEATH ? 0 : t & VH_BLOB_ID_MASK;
}

/* One value: at most a tag, 10 varint bytes and the string's bytes. */
static int put_val(vh_buf_t *b, vh_val_t v) {
  uint64_t bits, bid = blob_ref(v);
  int r;
  size_t more = 21 + (v.type == VH_TSTR && !bid ? v.u.s->len : 0);
  if ((r = reserve(b, more)) < 0) return r;
  if (bid != 0) {
    put_u8(b, TAG_BLOB);
    put_varint(b, bid);
    put_varint(b, v.u.s->len);
    return 0;
  }
  switch (v.type) {
    case VH_TNIL:
      put_u8(b, TAG_NIL);
      return 0;
    case VH_TBOOL:
      put_u8(b, v.u.b ? TAG_TRUE : TAG_FALSE);
      return 0;
    case VH_TINT:
      put_u8(b, TAG_INT);
      put_varint(b, vh_zigzag(v.u.i));
      return 0;
    case VH_TFLOAT:
      put_u8(b, TAG_FLOAT);
      memcpy(&bits, &v.u.f, sizeof bits);
      vh_le64_store(b->p + b->len, bits);
      b->len += 8;
      return 0;
    case VH_TSTR:
      put_u8(b, TAG_STR);
      put_varint(b, v.u.s->len);
      memcpy(b->p + b->len, v.u.s->data, v.u.s->len);
      b->len += v.u.s->len;
      return 0;
    case VH_TTAB:
      if (v.u.t->h.id == 0) return VH_EINVAL; /* children first */
      put_u8(b, TAG_TAB);
      put_varint(b, v.u.t->h.id);
      return 0;
    default:
      return VH_EINVAL;
  }
}

/* count child ids, the space reserved once (put_id's bytes). */
static int put_ids(vh_buf_t *b, vh_node_t *const *k, size_t count) {
  size_t i;
  int r;
  if (count > (SIZE_MAX - 64) / 10) return VH_ENOMEM;
  if ((r = reserve(b, count * 10)) < 0) return r;
  for (i = 0; i < count; i++) {
    if (k[i] == NULL) {
      put_u8(b, 0);
    } else {
      if (k[i]->id == 0) return VH_EINVAL;
      put_varint(b, k[i]->id);
    }
  }
  return 0;
}

static int put_id(vh_buf_t *b, const vh_node_t *c) {
  int r;
  if (c == NULL) {
    if ((r = reserve(b, 1)) < 0) return r;
    put_u8(b, 0);
    return 0;
  }
  if (c->id == 0) return VH_EINVAL;
  if ((r = reserve(b, 10)) < 0) return r;
  put_varint(b, c->id);
  return 0;
}

/* A key: always inline in the record (a string key in either of its
 * in-memory forms gives the same bytes, vh_trie_int.h "Inline keys"). */
static int put_key(vh_buf_t *b, vh_val_t k) {
  int r;
  char buf[VH_IKEY_MAX];
  const char *p;
  size_t len;
  if (k.type == VH_TIKEY) {
    len = vh_key__ibytes(&k, buf);
    p = buf;
  } else if (k.type == VH_TSTR) {
    len = k.u.s->len;
    p = k.u.s->data;
  } else {
    return put_val(b, k);
  }
  if ((r = reserve(b, 11 + len)) < 0) return r;
  put_u8(b, TAG_STR);
  put_varint(b, len);
  memcpy(b->p + b->len, p, len);
  b->len += len;
  return 0;
}

static int put_vals(vh_buf_t *b, const vh_val_t *v, size_t count) {
  size_t i;
  int r;
  for (i = 0; i < count; i++)
    if ((r = put_val(b, v[i])) < 0) return r;
  return 0;
}

/* Bytes an entry of the fast path below takes at most: an inline key (tag,
 * length, 14 bytes copied whole) and a tag with a 10-byte varint. */
#define KV_FAST_MAX (2 + 14 + 1 + 10)

/* count (key, value) pairs. FAST PATH: an inline key with an integer,
 * boolean or nil value (bench/run's keys and values, most entries of a
 * state of short keys) is written without put_key's and put_val's
 * per-value dispatch, reserve and variable-length memcpy call: the 14 key
 * bytes are copied whole (the bytes past the key's length are scratch
 * the next entry overwrites, inside the reserved space) and the buffer
 * grows at most once per node. The bytes are the same as the general
 * path's (test_codec kv_bytes_by_hand). callgrind, K=1M, 200k updates:
 * the loop thread's encoding was ~1,650 instructions per node written,
 * 24% of the thread (bench/README.md, "perf/sync4"). */
static int put_kvs(vh_buf_t *b, const vh_val_t *kv, size_t count) {
  size_t i;
  int r;
  if (count <= (SIZE_MAX - 64) / KV_FAST_MAX &&
      (r = reserve(b, count * KV_FAST_MAX)) < 0)
    return r;
  for (i = 0; i < count; i++) {
    const vh_val_t *k = &kv[2 * i], *v = &kv[2 * i + 1];
    if (k->type == VH_TIKEY && v->type <= VH_TINT &&
        b->cap - b->len >= KV_FAST_MAX) {
      unsigned char *p = b->p + b->len;
      size_t len = k->x[0]; /* <= VH_IKEY_MAX: a one-byte varint */
      p[0] = TAG_STR;
      p[1] = (unsigned char)len;
      memcpy(p + 2, &k->u, 8);
      memcpy(p + 10, k->x + 1, 6);
      p += 2 + len;
      if (v->type == VH_TINT) {
        *p++ = TAG_INT;
        p += vh_varint_put(p, vh_zigzag(v->u.i));
      } else if (v->type == VH_TBOOL) {
        *p++ = v->u.b ? TAG_TRUE : TAG_FALSE;
      } else {
        *p++ = TAG_NIL;
      }
      b->len = (size_t)(p - b->p);
      continue;
    }
    if ((r = put_key(b, *k)) < 0 || (r = put_val(b, *v)) < 0) return r;
  }
  return 0;
}

int vh_codec_encode_blob(const void *p, size_t len, vh_buf_t *out) {
  int r;
  out->len = 0;
  if ((r = reserve(out, len + 1)) < 0) return r;
  put_u8(out, VH_CODEC_VERSION << 4 | VH_K_BLOB);
  memcpy(out->p + out->len, p, len);
  out->len += len;
  return 0;
}

static inline int popc(uint32_t x) {
  return vh_popc(x);
}

/* 1 if the leaf n has a value written as a blob reference. */
static int has_blob_ref(const vh_node_t *n) {
  const vh_val_t *v;
  size_t i, step, count = vh_node__vals(n, &v, &step);
  for (i = 0; i < count; i++, v += step)
    if (blob_ref(*v) != 0) return 1;
  return 0;
}

int vh_codec_encode(const vh_node_t *n, vh_buf_t *out) {
  int r;
  out->len = 0;
  if (n->flags & VH_F_STUB) return VH_EINVAL;
  if ((r = reserve(out, 64)) < 0) return r;
  put_u8(out, (has_blob_ref(n) ? VH_CODEC_VERSION : VH_CODEC_VERSION_INLINE)
                      << 4 |
                  n->kind);
  switch (n->kind) {
    case VH_K_TAB: {
      const vh_tab_t *t = (const vh_tab_t *)n;
      put_varint(out, (uint64_t)t->arr.n);
      put_varint(out, (uint64_t)t->acount);
      put_varint(out, (uint64_t)t->hcount);
      if ((r = put_id(out, t->arr.root ? &t->arr.root->h : NULL)) < 0 ||
          (r = put_id(out, t->arr.tail ? &t->arr.tail->h : NULL)) < 0 ||
          (r = put_id(out, t->hash)) < 0)
        return r;
      return 0;
    }
    case VH_K_CHAMP: {
      const vh_champ_t *c = (const vh_champ_t *)n;
      int nd = popc(c->datamap), nc = popc(c->nodemap);
      vh_node_t *const *k = (vh_node_t *const *)(c->kv + 2 * nd);
      put_u32(out, c->datamap);
      put_u32(out, c->nodemap);
      if ((r = put_kvs(out, c->kv, (size_t)nd)) < 0) return r;
      return put_ids(out, k, (size_t)nc);
    }
    case VH_K_COLL: {
      const vh_coll_t *l = (const vh_coll_t *)n;
      put_varint(out, l->count);
      return put_kvs(out, l->kv, (size_t)l->count);
    }
    case VH_K_VLEAF:
      put_varint(out, n->a);
      return put_vals(out, ((const vh_vleaf_t *)n)->v, n->a);
    case VH_K_VINNER:
      put_varint(out, n->a);
      return put_ids(out, ((const vh_vinner_t *)n)->c, (size_t)n->a);
    default:
      return VH_EINVAL;
  }
}

/* ---- reading ---- */

typedef struct rd {
  const unsigned char *p, *end; /* unread bytes */
  const char *why;              /* the first error's message */
  /* Mode: build values (decode), or only check them and report table ids
   * to fn (child_ids). */
  int build;
  vh_codec_id_fn fn; /* may be NULL: validate only */
  void *arg;
  size_t blobs; /* blob references read */
  unsigned ver; /* the node's format version */
} rd_t;

static int bad(rd_t *r, const char *why) {
  if (r->why == NULL) r->why = why;
  return VH_ECORRUPT;
}

static int rd_u8(rd_t *r, unsigned *x) {
  if (r->p >= r->end) return bad(r, "truncated node");
  *x = *r->p++;
  return 0;
}

static int rd_u32(rd_t *r, uint32_t *x) {
  if (r->end - r->p < 4) return bad(r, "truncated node");
  *x = vh_le32_load(r->p);
  r->p += 4;
  return 0;
}

static __attribute__((noinline)) int rd_varint_slow(rd_t *r, uint64_t *x) {
  uint64_t v = 0;
  for (unsigned i = 0;; i++) {
    unsigned b;
    int e;
    if (r->p >= r->end) return bad(r, "truncated varint");
    b = *r->p++;
    if ((e = vh_varint_step(&v, i, b)) < 0)
      return bad(r, b > 1 ? "varint overflows 64 bits" : "non-minimal varint");
    if (e == 1) {
      *x = v;
      return 0;
    }
  }
}

/* A varint of up to 3 bytes (lengths, ids and small integers: most of a
 * node's varints) read inline; longer, truncated, non-minimal or
 * overlong ones by rd_varint_slow, which gives the error its message. */
static inline int rd_varint(rd_t *r, uint64_t *x) {
  const unsigned char *p = r->p;
  if (__builtin_expect(r->end - p >= 3, 1)) {
    unsigned b0 = p[0], b1 = p[1], b2 = p[2];
    if (b0 < 0x80) {
      *x = b0;
      r->p = p + 1;
      return 0;
    }
    if (b1 < 0x80 && b1 != 0) {
      *x = (b0 & 0x7fu) | (uint64_t)b1 << 7;
      r->p = p + 2;
      return 0;
    }
    if (b1 >= 0x80 && b2 < 0x80 && b2 != 0) {
      *x = (b0 & 0x7fu) | (uint64_t)(b1 & 0x7fu) << 7 | (uint64_t)b2 << 14;
      r->p = p + 3;
      return 0;
    }
  }
  return rd_varint_slow(r, x);
}

static int rd_id(rd_t *r, uint64_t *id) {
  int e = rd_varint(r, id);
  if (e < 0) return e;
  return *id == 0 ? bad(r, "child id 0") : 0;
}

static int report(rd_t *r, uint64_t id) {
  return r->fn != NULL ? r->fn(r->arg, id) : 0;
}

/* Read a value (key = 1: a key). In build mode *v is a [new] value. */
static int rd_val(rd_t *r, int key, vh_val_t *v) {
  unsigned tag;
  uint64_t x;
  int e;
  *v = vh_nil();
  if ((e = rd_u8(r, &tag)) < 0) return e;
  switch (tag) {
    case TAG_NIL:
      return key ? bad(r, "nil key") : 0;
    case TAG_FALSE:
    case TAG_TRUE:
      *v = vh_bool(tag == TAG_TRUE);
      return 0;
    case TAG_INT:
      if ((e = rd_varint(r, &x)) < 0) return e;
      *v = vh_int(vh_unzigzag(x));
      return 0;
    case TAG_FLOAT: {
      vh_val_t k;
      if (r->end - r->p < 8) return bad(r, "truncated float");
      x = vh_le64_load(r->p);
      r->p += 8;
      v->type = VH_TFLOAT;
      memcpy(&v->u.f, &x, sizeof x);
      k = *v;
      if (key && (vh_key_norm(&k) < 0 || k.type != VH_TFLOAT)) {
        *v = vh_nil();
        return bad(r, "float key not normalized");
      }
      return 0;
    }
    case TAG_STR:
      if ((e = rd_varint(r, &x)) < 0) return e;
      if (x > (uint64_t)(r->end - r->p)) return bad(r, "truncated string");
      if (x >= UINT32_MAX) return bad(r, "string too long");
      if (r->build && key && x <= VH_IKEY_MAX) { /* an inline key */
        *v = vh_key__ikey((const char *)r->p, (size_t)x);
      } else if (r->build) {
        vh_str_t *s = vh_str_new((const char *)r->p, (size_t)x);
        if (s == NULL) return VH_ENOMEM;
        v->type = VH_TSTR;
        v->u.s = s;
      }
      r->p += x;
      return 0;
    case TAG_TAB:
      if (key) return bad(r, "table key");
      if ((e = rd_id(r, &x)) < 0) return e;
      if (r->build) {
        vh_tab_t *t = vh_tab_stub(x);
        if (t == NULL) return VH_ENOMEM;
        v->type = VH_TTAB;
        v->u.t = t;
        return 0;
      }
      return report(r, x);
    case TAG_BLOB: {
      uint64_t len;
      if (r->ver < 2) return bad(r, "bad value tag");
      if (key) return bad(r, "blob key");
      if ((e = rd_id(r, &x)) < 0 || (e = rd_varint(r, &len)) < 0) return e;
      if (len < VH_BLOB_MIN) return bad(r, "blob shorter than the minimum");
      if (len >= UINT32_MAX) return bad(r, "string too long");
      r->blobs++;
      if (r->build) {
        vh_str_t *s;
        const char *why = NULL;
        if ((e = vh_trie__load_blob(x, len, &s, &why)) < 0) {
          if (e == VH_ECORRUPT || e == VH_EFORMAT) (void)bad(r, why);
          if (r->why == NULL) r->why = why;
          return e;
        }
        v->type = VH_TSTR;
        v->u.s = s;
        return 0;
      }
      return report(r, x);
    }
    default:
      return bad(r, "bad value tag");
  }
}

/* Table header fields, parsed and checked (shared by decode and ids). */
typedef struct tabhdr {
  uint64_t n, acount, hcount, root, tail, hash;
  uint64_t leaves; /* full leaves in the tree: tailoff / 32 */
  uint32_t shift;  /* the root's level */
} tabhdr_t;

static int rd_tabhdr(rd_t *r, tabhdr_t *h) {
  int e;
  uint64_t toff;
  if ((e = rd_varint(r, &h->n)) < 0 || (e = rd_varint(r, &h->acount)) < 0 ||
      (e = rd_varint(r, &h->hcount)) < 0 || (e = rd_varint(r, &h->root)) < 0 ||
      (e = rd_varint(r, &h->tail)) < 0 || (e = rd_varint(r, &h->hash)) < 0)
    return e;
  if (h->n > (uint64_t)INT64_MAX - 64) return bad(r, "table: array too big");
  if (h->acount > h->n || (h->n > 0 && h->acount == 0))
    return bad(r, "table: bad array count");
  if (h->hcount > (uint64_t)SIZE_MAX) return bad(r, "table: bad hash count");
  toff = h->n == 0 ? 0 : ((h->n - 1) >> 5) << 5;
  h->leaves = toff >> 5;
  if ((h->root != 0) != (h->leaves > 0)) return bad(r, "table: vector root");
  if ((h->tail != 0) != (h->n > 0)) return bad(r, "table: vector tail");
  if ((h->hash != 0) != (h->hcount > 0)) return bad(r, "table: hash root");
  h->shift = 5;
  while (h->leaves > ((uint64_t)1 << h->shift)) h->shift += 5;
  return 0;
}

static int rd_kind(rd_t *r, unsigned *kind) {
  unsigned b;
  int e;
  if ((e = rd_u8(r, &b)) < 0) return e;
  if ((b >> 4) > VH_CODEC_VERSION) {
    r->why = "node of a newer format (upgrade vedhost)";
    return VH_EFORMAT;
  }
  *kind = b & 15;
  r->ver = b >> 4;
  if (r->ver == 0 || *kind < VH_K_TAB || *kind > VH_K_BLOB ||
      (*kind == VH_K_BLOB && r->ver < 2))
    return bad(r, "bad kind byte");
  return 0;
}

/* ---- child ids (validation without building) ---- */

static int scan_node(rd_t *r, unsigned kind) {
  uint64_t x, i, count;
  vh_val_t v;
  int e;
  switch (kind) {
    case VH_K_TAB: {
      tabhdr_t h;
      if ((e = rd_tabhdr(r, &h)) < 0) return e;
      if ((h.root && (e = report(r, h.root)) < 0) ||
          (h.tail && (e = report(r, h.tail)) < 0) ||
          (h.hash && (e = report(r, h.hash)) < 0))
        return e;
      return 0;
    }
    case VH_K_CHAMP: {
      uint32_t dm, nm;
      if ((e = rd_u32(r, &dm)) < 0 || (e = rd_u32(r, &nm)) < 0) return e;
      if (dm & nm) return bad(r, "CHAMP: bitmaps overlap");
      if ((dm | nm) == 0) return bad(r, "CHAMP: empty node");
      for (i = 0; i < (uint64_t)popc(dm); i++)
        if ((e = rd_val(r, 1, &v)) < 0 || (e = rd_val(r, 0, &v)) < 0) return e;
      for (i = 0; i < (uint64_t)popc(nm); i++)
        if ((e = rd_id(r, &x)) < 0 || (e = report(r, x)) < 0) return e;
      return 0;
    }
    case VH_K_COLL:
      if ((e = rd_varint(r, &count)) < 0) return e;
      if (count < 2 || count > (uint64_t)(r->end - r->p) / 2)
        return bad(r, "collision: bad count");
      for (i = 0; i < count; i++)
        if ((e = rd_val(r, 1, &v)) < 0 || (e = rd_val(r, 0, &v)) < 0) return e;
      return 0;
    case VH_K_VLEAF:
      if ((e = rd_varint(r, &count)) < 0) return e;
      if (count < 1 || count > VH_VEC_W) return bad(r, "leaf: bad count");
      for (i = 0; i < count; i++)
        if ((e = rd_val(r, 0, &v)) < 0) return e;
      return 0;
    case VH_K_BLOB: /* bytes only */
      r->p = r->end;
      return 0;
    default: /* VH_K_VINNER */
      if ((e = rd_varint(r, &count)) < 0) return e;
      if (count < 1 || count > VH_VEC_W) return bad(r, "inner: bad count");
      for (i = 0; i < count; i++)
        if ((e = rd_id(r, &x)) < 0 || (e = report(r, x)) < 0) return e;
      return 0;
  }
}

int vh_codec_child_ids(const void *bytes, size_t len, vh_codec_id_fn fn,
                       void *arg, int *kind, const char **why) {
  rd_t r;
  unsigned k = 0;
  int pass, e = 0;
  /* Pass 0 validates, pass 1 reports: a malformed node reports nothing. */
  for (pass = 0; pass < 2 && e == 0; pass++) {
    r.p = bytes;
    r.end = r.p + len;
    r.why = NULL;
    r.build = 0;
    r.fn = pass == 0 ? NULL : fn;
    r.arg = arg;
    r.blobs = 0;
    if ((e = rd_kind(&r, &k)) == 0 && (e = scan_node(&r, k)) == 0 &&
        r.p != r.end)
      e = bad(&r, "trailing bytes after the node");
  }
  if (kind != NULL) *kind = e == 0 ? (int)k : 0;
  if (why != NULL) *why = e == 0 ? "ok" : r.why ? r.why : "callback failed";
  return e;
}

/* ---- decoding ---- */

static size_t champ_size(int nd, int nc) {
  return sizeof(vh_champ_t) + (size_t)nd * 2 * sizeof(vh_val_t) +
         (size_t)nc * sizeof(vh_node_t *);
}

/* Free a partly built node: values and children filled so far (the rest
 * is nil / NULL). */
static void unbuild(vh_node_t *n, size_t size, vh_val_t *vals, size_t nvals,
                    vh_node_t **kids, size_t nkids) {
  size_t i;
  for (i = 0; i < nvals; i++) vh_val_release(vals[i]);
  for (i = 0; i < nkids; i++)
    if (kids[i] != NULL) vh_node__release(kids[i]);
  vh_node__free_shell(n, size);
}

/* The twin's child k if it is the stored node id (its loaded node when k
 * is a loaded stub), else NULL (vh_codec_expect_t.twin). Only view nodes
 * of the expected kind qualify. */
static vh_node_t *twin_child(vh_node_t *k, uint64_t id, uint8_t kind) {
  if (k->id != id) return NULL;
  if ((k->flags & VH_F_STUB) && ((vh_stub_t *)k)->fwd != NULL)
    k = ((vh_stub_t *)k)->fwd;
  if (k->kind != kind || (k->flags & VH_F_NODEATH) != VH_F_VIEW) return NULL;
  return k;
}

static int dec_champ(rd_t *r, const vh_codec_expect_t *ex, vh_node_t **out) {
  uint32_t dm, nm, prefix = (uint32_t)ex->expect, b;
  int s = ex->shift, nd, nc, di = 0, ci = 0, e;
  uint32_t mask = s + 5 >= 32 ? 0xFFFFFFFFu : (1u << (s + 5)) - 1;
  vh_champ_t *c;
  vh_node_t **kids;
  size_t size;
  if ((e = rd_u32(r, &dm)) < 0 || (e = rd_u32(r, &nm)) < 0) return e;
  nd = popc(dm);
  nc = popc(nm);
  if (dm & nm) return bad(r, "CHAMP: bitmaps overlap");
  if (s == 30 && ((dm | nm) >> 4)) return bad(r, "CHAMP: bit beyond hash");
  if (nd + nc == 0) return bad(r, "CHAMP: empty node");
  if (s > 0 && nd == 1 && nc == 0) return bad(r, "CHAMP: single entry");
  if ((uint64_t)(r->end - r->p) < (uint64_t)nd * 2 + (uint64_t)nc)
    return bad(r, "truncated node");
  size = champ_size(nd, nc);
  c = (vh_champ_t *)vh_node__alloc(VH_K_CHAMP, size, 0);
  if (c == NULL) return VH_ENOMEM;
  c->datamap = dm;
  c->nodemap = nm;
  kids = (vh_node_t **)(c->kv + 2 * nd);
  memset(c->kv, 0, 2 * (size_t)nd * sizeof(vh_val_t));
  memset(kids, 0, (size_t)nc * sizeof(vh_node_t *));
  /* The twin (a view node decoded at this very place: its keys passed
   * the same slot checks) walked along: its entries (td: data bits not
   * passed yet, te: the next entry) and children (tn, tk), without a
   * popcount per entry (without -mpopcnt it is a libgcc call). */
  const vh_champ_t *tw = (const vh_champ_t *)ex->twin;
  uint32_t tn = 0, td = 0;
  vh_node_t *const *tk = NULL;
  const vh_val_t *te = NULL;
  if (tw != NULL && tw->h.kind == VH_K_CHAMP && !(tw->h.flags & VH_F_STUB) &&
      (tw->h.flags & VH_F_NODEATH) == VH_F_VIEW) {
    td = tw->datamap;
    te = tw->kv;
    tn = tw->nodemap;
    tk = (vh_node_t *const *)(tw->kv + 2 * popc(tw->datamap));
  }
  for (uint32_t left = dm; left != 0 && e == 0; left &= left - 1) {
    b = (uint32_t)__builtin_ctz(left);
    vh_val_t *kv = c->kv + 2 * di++;
    if ((e = rd_val(r, 1, &kv[0])) < 0 || (e = rd_val(r, 0, &kv[1])) < 0) break;
    while (td != 0 && (uint32_t)__builtin_ctz(td) < b) {
      td &= td - 1;
      te += 2;
    }
    /* The twin's entry in this slot has this key: its hash is known to
     * fit (a feed leaf changes one entry of ~10; the hash was ~3% of the
     * feed's instructions). */
    int known = td != 0 && (uint32_t)__builtin_ctz(td) == b &&
                vh_key__eq_i(&kv[0], &te[0]);
    if (kv[1].type == VH_TNIL)
      e = bad(r, "CHAMP: nil value");
    else if (!known && (vh_key__hash(kv[0]) & mask) != (prefix | (b << s)))
      e = bad(r, "CHAMP: key hash does not match its slot");
  }
  uint8_t kkind = s + 5 >= VH_CHAMP_COLL_SHIFT ? VH_K_COLL : VH_K_CHAMP;
  for (uint32_t left = nm; left != 0 && e == 0; left &= left - 1) {
    uint64_t id;
    b = (uint32_t)__builtin_ctz(left);
    if ((e = rd_id(r, &id)) < 0) break;
    while (tn != 0 && (uint32_t)__builtin_ctz(tn) < b) {
      tn &= tn - 1;
      tk++;
    }
    vh_node_t *same = tn != 0 && (uint32_t)__builtin_ctz(tn) == b
                          ? twin_child(*tk, id, kkind)
                          : NULL;
    if (same != NULL) {
      vh_node__retain(same);
      kids[ci++] = same;
      continue;
    }
    kids[ci] = s + 5 >= VH_CHAMP_COLL_SHIFT
                   ? vh_node__stub(VH_K_COLL, id, (uint8_t)(s + 5), 0,
                                   prefix | (b << s))
                   : vh_node__stub(VH_K_CHAMP, id, (uint8_t)(s + 5), 0,
                                   prefix | (b << s));
    if (kids[ci++] == NULL) e = VH_ENOMEM;
  }
  if (e < 0) {
    unbuild(&c->h, size, c->kv, 2 * (size_t)nd, kids, (size_t)nc);
    return e;
  }
  *out = &c->h;
  return 0;
}

static int dec_coll(rd_t *r, const vh_codec_expect_t *ex, vh_node_t **out) {
  uint64_t count, i;
  vh_coll_t *l;
  size_t size;
  int e = 0;
  if ((e = rd_varint(r, &count)) < 0) return e;
  if (count < 2 || count > (uint64_t)(r->end - r->p) / 2)
    return bad(r, "collision: bad count");
  size = sizeof(vh_coll_t) + (size_t)count * 2 * sizeof(vh_val_t);
  l = (vh_coll_t *)vh_node__alloc(VH_K_COLL, size, 0);
  if (l == NULL) return VH_ENOMEM;
  l->hash = (uint32_t)ex->expect;
  l->count = (uint32_t)count;
  memset(l->kv, 0, 2 * (size_t)count * sizeof(vh_val_t));
  for (i = 0; i < count && e == 0; i++) {
    vh_val_t *kv = l->kv + 2 * i;
    if ((e = rd_val(r, 1, &kv[0])) < 0 || (e = rd_val(r, 0, &kv[1])) < 0) break;
    if (kv[1].type == VH_TNIL)
      e = bad(r, "collision: nil value");
    else if (vh_key__hash(kv[0]) != l->hash)
      e = bad(r, "collision: key hash differs");
    else if (i > 0 && vh_key__cmp(kv[-2], kv[0]) >= 0)
      e = bad(r, "collision: keys not sorted");
  }
  if (e < 0) {
    unbuild(&l->h, size, l->kv, 2 * (size_t)count, NULL, 0);
    return e;
  }
  *out = &l->h;
  return 0;
}

static int dec_leaf(rd_t *r, const vh_codec_expect_t *ex, vh_node_t **out) {
  uint64_t count, i;
  vh_vleaf_t *l;
  size_t size;
  int e = 0;
  if ((e = rd_varint(r, &count)) < 0) return e;
  if (count < 1 || count > VH_VEC_W || count != ex->expect)
    return bad(r, "leaf: slot count does not match the table");
  size = sizeof(vh_vleaf_t) + (size_t)count * sizeof(vh_val_t);
  l = (vh_vleaf_t *)vh_node__alloc(VH_K_VLEAF, size, 0);
  if (l == NULL) return VH_ENOMEM;
  l->h.a = l->h.b = (uint8_t)count;
  memset(l->v, 0, (size_t)count * sizeof(vh_val_t));
  for (i = 0; i < count && e == 0; i++) e = rd_val(r, 0, &l->v[i]);
  if (e == 0 && ex->tail && l->v[count - 1].type == VH_TNIL)
    e = bad(r, "leaf: the tail's last slot is nil");
  if (e < 0) {
    unbuild(&l->h, size, l->v, (size_t)count, NULL, 0);
    return e;
  }
  *out = &l->h;
  return 0;
}

static int dec_inner(rd_t *r, const vh_codec_expect_t *ex, vh_node_t **out) {
  uint64_t count, i, leaves = ex->expect, per, want;
  int s = ex->shift, e = 0;
  vh_vinner_t *n;
  size_t size;
  if (s < 5 || s > 60 || s % 5 != 0 || leaves == 0)
    return bad(r, "inner: bad level");
  per = (uint64_t)1 << (s - 5);
  want = leaves / per + (leaves % per != 0);
  if ((e = rd_varint(r, &count)) < 0) return e;
  if (count < 1 || count > VH_VEC_W || count != want)
    return bad(r, "inner: child count does not match the table");
  size = sizeof(vh_vinner_t) + (size_t)count * sizeof(vh_node_t *);
  n = (vh_vinner_t *)vh_node__alloc(VH_K_VINNER, size, 0);
  if (n == NULL) return VH_ENOMEM;
  n->h.a = n->h.b = (uint8_t)count;
  memset(n->c, 0, (size_t)count * sizeof(vh_node_t *));
  for (i = 0; i < count && e == 0; i++) {
    uint64_t id, here = i < count - 1 ? per : leaves - per * (count - 1);
    if ((e = rd_id(r, &id)) < 0) break;
    if (s == 5)
      n->c[i] = vh_node__stub(VH_K_VLEAF, id, 0, 0, VH_VEC_W);
    else
      n->c[i] = vh_node__stub(VH_K_VINNER, id, (uint8_t)(s - 5), 0, here);
    if (n->c[i] == NULL) e = VH_ENOMEM;
  }
  if (e < 0) {
    unbuild(&n->h, size, NULL, 0, n->c, (size_t)count);
    return e;
  }
  *out = &n->h;
  return 0;
}

static void rd_init(rd_t *r, const void *bytes, size_t len) {
  r->p = bytes;
  r->end = r->p + len;
  r->why = NULL;
  r->build = 1;
  r->fn = NULL;
  r->arg = NULL;
  r->blobs = 0;
}

/* The blobs of a node just decoded whole: their deaths count from now
 * (vh_trie__load_blob made them VH_BLOB_NODEATH, so that a node refused
 * half way frees them silently). */
static void own_blobs(vh_node_t *n) {
  const vh_val_t *v;
  size_t i, step, count = vh_node__vals(n, &v, &step);
  for (i = 0; i < count; i++, v += step)
    if (v->type == VH_TSTR && vh_str__big(v->u.s))
      *vh_str__blob(v->u.s) &= ~VH_BLOB_NODEATH;
}

static int finish(rd_t *r, int e, const char **why) {
  if (e == 0 && r->p != r->end) e = bad(r, "trailing bytes after the node");
  if (why != NULL) *why = e == 0 ? "ok" : r->why ? r->why : "out of memory";
  return e;
}

int vh_codec_decode(const void *bytes, size_t len, uint64_t id,
                    const vh_codec_expect_t *ex, vh_node_t **out,
                    const char **why) {
  rd_t r;
  unsigned kind;
  vh_node_t *n = NULL;
  int e;
  *out = NULL;
  rd_init(&r, bytes, len);
  if ((e = rd_kind(&r, &kind)) == 0) {
    if (kind != ex->kind) {
      e = bad(&r, "node of the wrong kind for its place");
    } else if (kind == VH_K_CHAMP) {
      e = ex->shift < VH_CHAMP_COLL_SHIFT ? dec_champ(&r, ex, &n)
                                          : bad(&r, "CHAMP below level 6");
    } else if (kind == VH_K_COLL) {
      e = ex->shift >= VH_CHAMP_COLL_SHIFT ? dec_coll(&r, ex, &n)
                                           : bad(&r, "collision above level 7");
    } else if (kind == VH_K_VLEAF) {
      e = dec_leaf(&r, ex, &n);
    } else if (kind == VH_K_VINNER) {
      e = dec_inner(&r, ex, &n);
    } else {
      e = bad(&r, "unexpected table node");
    }
  }
  if ((e = finish(&r, e, why)) < 0) {
    if (n != NULL) vh_node__release(n);
    return e;
  }
  n->id = id;
  if (r.blobs > 0) own_blobs(n);
  *out = n;
  return 0;
}

int vh_codec_decode_tab(const void *bytes, size_t len, vh_tab_t *t,
                        const char **why) {
  rd_t r;
  unsigned kind;
  tabhdr_t h;
  vh_node_t *root = NULL, *tail = NULL, *hash = NULL;
  int e;
  rd_init(&r, bytes, len);
  if ((e = rd_kind(&r, &kind)) == 0 && kind != VH_K_TAB)
    e = bad(&r, "expected a table node");
  if (e == 0) e = rd_tabhdr(&r, &h);
  if ((e = finish(&r, e, why)) < 0) return e;
  if ((h.root && (root = vh_node__stub(VH_K_VINNER, h.root, (uint8_t)h.shift, 0,
                                       h.leaves)) == NULL) ||
      (h.tail && (tail = vh_node__stub(VH_K_VLEAF, h.tail, 0, 1,
                                       h.n - (h.leaves << 5))) == NULL) ||
      (h.hash && (hash = vh_node__stub(VH_K_CHAMP, h.hash, 0, 0, 0)) == NULL)) {
    if (root != NULL) vh_node__release(root);
    if (tail != NULL) vh_node__release(tail);
    if (why != NULL) *why = "out of memory";
    return VH_ENOMEM;
  }
  t->arr.n = (int64_t)h.n;
  t->arr.root = (vh_vinner_t *)root;
  t->arr.tail = (vh_vleaf_t *)tail;
  t->arr.shift = h.shift;
  t->arr.lazy = 1;
  t->acount = (int64_t)h.acount;
  t->hash = hash;
  t->hcount = (size_t)h.hcount;
  return 0;
}
