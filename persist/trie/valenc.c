/*
 * valenc.c - a compact byte encoding of one value (vh_valenc.h).
 *
 * WHY. A queued message used to be a table { hdr, payload }: with the store
 * that cost about four RocksDB keys per message (the message's table and
 * CHAMP nodes, the payload's), written at send and deleted at delivery.
 * Encoding the payload into the bytes of one string puts a whole message
 * into one slot of a vector leaf. The layout borrows the tags of the export
 * stream's VALUE (vh_export.h) but, unlike the export, it keeps a table's
 * iteration order instead of sorting (no canonical form is needed here, and
 * sorting would cost), and it needs no counts up front, so one pass over a
 * table writes it.
 *
 * VALUE (pre-order; the tag byte first; integers little-endian):
 *   0x00             nil (only as a whole value; inside a table 0x00 ends
 *                    the table)
 *   0x01             false
 *   0x02             true
 *   0x03 zz          integer: zz = varint of the zigzag-encoded i64
 *   0x04 f8          float: 8 bytes, the IEEE-754 double's bits (u64 LE);
 *                    any bits, the float subtype is kept (2.0 stays 2.0)
 *   0x05 len bytes   string: varint length, then that many bytes
 *   0x06 A [0x07 H] 0x00
 *                    table: A = VALUEs (tags 0x01..0x06) of the keys 1,
 *                    2, 3... in that order; then optionally 0x07 and H =
 *                    (KEY, VALUE) pairs of every other key; then 0x00.
 *                    Both parts follow the table's iteration order: the
 *                    writer emits values into A while the iteration yields
 *                    the keys 1, 2, 3..., and everything from the first
 *                    other key on goes to H.
 *   KEY is a VALUE with a tag 0x01..0x05; a float key is never integral and
 *   never NaN (keys are normalized). A key appears once per table.
 *
 *   Varints are unsigned LEB128, at most 10 bytes, minimal (no trailing
 *   0x80 groups). Zigzag: (i << 1) ^ (i >> 63).
 *
 * INVARIANTS. Neither direction recurses on the C stack: both keep an
 * explicit stack of open tables on the heap (a value may be nested as deep
 * as a state, VH_MAX_DEPTH of vh_limits.h). The decoder checks every
 * length against the bytes left, every tag against what may come at that
 * point, keys (kind, normal form, duplicates) and varints, and frees what
 * it built when it refuses: any byte string gives a value or VH_ECORRUPT,
 * never a crash or a leak. A decoded table is as the encoded one by
 * contents (vh_val_equal); its layout may differ (an array with a hole
 * comes back with the keys after the hole in the hash part).
 */
#include <stdlib.h>
#include <string.h>

#include "vh_valenc.h"

#define VE_NIL 0x00
#define VE_FALSE 0x01
#define VE_TRUE 0x02
#define VE_INT 0x03
#define VE_FLOAT 0x04
#define VE_STR 0x05
#define VE_TAB 0x06
#define VE_HASH 0x07

/* ---- buffer ---- */

void vh_valenc_buf_free(vh_valenc_buf_t *b) {
  vh_buf_free(b);
}

int vh_valenc_buf_put(vh_valenc_buf_t *b, const void *p, size_t n) {
  return vh_buf_put(b, p, n);
}

int vh_valenc_put_varint(vh_valenc_buf_t *b, uint64_t x) {
  return vh_buf_put_varint(b, x);
}

int vh_valenc_get_varint(const unsigned char *p, size_t len, size_t *pos,
                         uint64_t *x) {
  return vh_varint_get(p, len, pos, x);
}

/* ---- encoder ---- */

/* One open table of the walk. vh_iter_t holds node pointers only, so a
 * frame may be moved (realloc) freely. */
typedef struct ve_wframe {
  vh_iter_t it;
  int64_t ai; /* next key of the array part A */
  int hash;   /* 0x07 written: now in H */
} ve_wframe_t;

typedef struct ve_wstack {
  ve_wframe_t *f; /* frames, small[] until it grows */
  size_t n, cap;
  ve_wframe_t small[8];
} ve_wstack_t;

/* Write a scalar (not a table) value or key. */
static int ve_put_scalar(vh_valenc_buf_t *b, vh_val_t v) {
  unsigned char t;
  int rc;
  switch (v.type) {
    case VH_TNIL:
      t = VE_NIL;
      return vh_valenc_buf_put(b, &t, 1);
    case VH_TBOOL:
      t = v.u.b ? VE_TRUE : VE_FALSE;
      return vh_valenc_buf_put(b, &t, 1);
    case VH_TINT: {
      uint64_t z = vh_zigzag(v.u.i);
      t = VE_INT;
      if ((rc = vh_valenc_buf_put(b, &t, 1)) != 0) return rc;
      return vh_valenc_put_varint(b, z);
    }
    case VH_TFLOAT: {
      unsigned char f[9];
      uint64_t u;
      memcpy(&u, &v.u.f, 8);
      f[0] = VE_FLOAT;
      vh_le64_store(f + 1, u);
      return vh_valenc_buf_put(b, f, 9);
    }
    case VH_TSTR: {
      size_t n = vh_str_len(v.u.s);
      t = VE_STR;
      if ((rc = vh_valenc_buf_put(b, &t, 1)) != 0) return rc;
      if ((rc = vh_valenc_put_varint(b, n)) != 0) return rc;
      return vh_valenc_buf_put(b, vh_str_data(v.u.s), n);
    }
    default:
      return VH_EINVAL;
  }
}

/* Write v; a table writes its tag and opens a frame on s. */
static int ve_put(vh_valenc_buf_t *b, ve_wstack_t *s, vh_val_t v) {
  if (v.type != VH_TTAB) return ve_put_scalar(b, v);
  unsigned char t = VE_TAB;
  if (s->n == s->cap) {
    size_t nc = s->cap * 2;
    ve_wframe_t *nf = malloc(nc * sizeof *nf);
    if (!nf) return VH_ENOMEM;
    memcpy(nf, s->f, s->n * sizeof *nf);
    if (s->f != s->small) free(s->f);
    s->f = nf;
    s->cap = nc;
  }
  int rc = vh_valenc_buf_put(b, &t, 1);
  if (rc != 0) return rc;
  ve_wframe_t *f = &s->f[s->n++];
  vh_iter_init(&f->it, v.u.t);
  f->ai = 1;
  f->hash = 0;
  return 0;
}

int vh_valenc_append(vh_valenc_buf_t *b, vh_val_t v) {
  size_t start = b->len;
  int fault0 = vh_trie_fault(NULL);
  ve_wstack_t s;
  s.f = s.small;
  s.n = 0;
  s.cap = sizeof s.small / sizeof s.small[0];
  int rc = ve_put(b, &s, v);
  while (rc == 0 && s.n > 0) {
    ve_wframe_t *f = &s.f[s.n - 1];
    vh_val_t k, e;
    if (!vh_iter_next(&f->it, &k, &e)) {
      unsigned char end = VE_NIL;
      rc = vh_valenc_buf_put(b, &end, 1);
      s.n--;
      continue;
    }
    if (!f->hash && k.type == VH_TINT && k.u.i == f->ai) {
      f->ai++;
    } else {
      if (!f->hash) {
        unsigned char hm = VE_HASH;
        if ((rc = vh_valenc_buf_put(b, &hm, 1)) != 0) break;
        f->hash = 1;
      }
      if ((rc = ve_put_scalar(b, k)) != 0) break;
    }
    rc = ve_put(b, &s, e); /* may move the frames: f is stale after it */
  }
  if (s.f != s.small) free(s.f);
  if (rc == 0 && fault0 == 0) rc = vh_trie_fault(NULL); /* a lazy load */
  if (rc != 0) b->len = start;
  return rc;
}

int vh_valenc_encode(vh_val_t v, unsigned char **out, size_t *len) {
  vh_valenc_buf_t b = {NULL, 0, 0};
  int rc = vh_valenc_append(&b, v);
  if (rc != 0) {
    vh_valenc_buf_free(&b);
    return rc;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}

/* ---- decoder ---- */

/* One table being built. */
typedef struct ve_rframe {
  vh_tab_t *t;  /* [owned] */
  int64_t ai;   /* next key of the array part */
  int hash;     /* 0x07 seen */
  int haskey;   /* key holds a key whose value comes next */
  vh_val_t key; /* [owned] when haskey */
} ve_rframe_t;

typedef struct ve_rstack {
  ve_rframe_t *f;
  size_t n, cap;
  ve_rframe_t small[8];
} ve_rstack_t;

static void ve_rstack_free(ve_rstack_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    vh_tab_release(s->f[i].t);
    if (s->f[i].haskey) vh_val_release(s->f[i].key);
  }
  if (s->f != s->small) free(s->f);
}

/* Read the scalar of tag (0x01..0x05) at p[*pos..len). */
static int ve_get_scalar(const unsigned char *p, size_t len, size_t *pos,
                         unsigned tag, vh_val_t *out) {
  uint64_t x;
  int rc;
  switch (tag) {
    case VE_FALSE:
    case VE_TRUE:
      *out = vh_bool(tag == VE_TRUE);
      return 0;
    case VE_INT:
      if ((rc = vh_valenc_get_varint(p, len, pos, &x)) != 0) return rc;
      *out = vh_int(vh_unzigzag(x));
      return 0;
    case VE_FLOAT: {
      if (len - *pos < 8) return VH_ECORRUPT;
      uint64_t u = 0;
      double d;
      u = vh_le64_load(p + *pos);
      memcpy(&d, &u, 8);
      *pos += 8;
      *out = vh_float(d);
      return 0;
    }
    case VE_STR: {
      if ((rc = vh_valenc_get_varint(p, len, pos, &x)) != 0) return rc;
      if (x > len - *pos) return VH_ECORRUPT;
      vh_str_t *s = vh_str_new((const char *)p + *pos, (size_t)x);
      if (!s) return VH_ENOMEM;
      *pos += (size_t)x;
      out->u.s = s;
      out->type = VH_TSTR;
      return 0;
    }
    default:
      return VH_ECORRUPT;
  }
}

/* Open a new table frame. */
static int ve_open(ve_rstack_t *s, uint64_t edit) {
  if (s->n == s->cap) {
    size_t nc = s->cap * 2;
    ve_rframe_t *nf = malloc(nc * sizeof *nf);
    if (!nf) return VH_ENOMEM;
    memcpy(nf, s->f, s->n * sizeof *nf);
    if (s->f != s->small) free(s->f);
    s->f = nf;
    s->cap = nc;
  }
  vh_tab_t *t = vh_tab_new(edit);
  if (!t) return VH_ENOMEM;
  ve_rframe_t *f = &s->f[s->n++];
  f->t = t;
  f->ai = 1;
  f->hash = 0;
  f->haskey = 0;
  f->key = vh_nil();
  return 0;
}

/* Store v [stolen] at the next slot of f (the next array key, or the key
 * read before). */
static int ve_place(ve_rframe_t *f, vh_val_t v, uint64_t edit) {
  if (!f->hash) return vh_tab_set(&f->t, vh_int(f->ai++), v, edit);
  vh_val_t k = f->key;
  f->haskey = 0;
  f->key = vh_nil();
  int rc = vh_tab_set(&f->t, k, v, edit);
  vh_val_release(k);
  return rc;
}

/* Read a key into f: a scalar in normal form not yet in the table. */
static int ve_key(const unsigned char *p, size_t len, size_t *pos, unsigned tag,
                  ve_rframe_t *f) {
  vh_val_t k, old;
  if (tag < VE_FALSE || tag > VE_STR) return VH_ECORRUPT;
  int rc = ve_get_scalar(p, len, pos, tag, &k);
  if (rc != 0) return rc;
  if (k.type == VH_TFLOAT) {
    vh_val_t n = k;
    if (vh_key_norm(&n) != 0 || n.type != VH_TFLOAT) return VH_ECORRUPT;
  }
  vh_tab_get(f->t, k, &old);
  if (old.type != VH_TNIL) { /* a duplicate key */
    vh_val_release(k);
    return VH_ECORRUPT;
  }
  f->key = k;
  f->haskey = 1;
  return 0;
}

int vh_valenc_decode_at(const void *bytes, size_t len, size_t *pos,
                        uint64_t edit, vh_val_t *out) {
  const unsigned char *p = bytes;
  size_t i = *pos;
  *out = vh_nil();
  if (i >= len) return VH_ECORRUPT;
  unsigned tag = p[i++];
  if (tag == VE_NIL) {
    *pos = i;
    return 0;
  }
  if (tag != VE_TAB) {
    int rc = ve_get_scalar(p, len, &i, tag, out);
    if (rc == 0) *pos = i;
    return rc;
  }
  ve_rstack_t s;
  s.f = s.small;
  s.n = 0;
  s.cap = sizeof s.small / sizeof s.small[0];
  int rc = ve_open(&s, edit);
  while (rc == 0) {
    ve_rframe_t *f = &s.f[s.n - 1];
    if (i >= len) {
      rc = VH_ECORRUPT;
      break;
    }
    tag = p[i++];
    if (tag == VE_NIL && !f->haskey) { /* the table ends */
      vh_val_t tv;
      tv.u.t = f->t;
      tv.type = VH_TTAB;
      s.n--;
      if (s.n == 0) {
        *out = tv;
        break;
      }
      rc = ve_place(&s.f[s.n - 1], tv, edit);
    } else if (tag == VE_HASH && !f->hash) {
      f->hash = 1;
    } else if (f->hash && !f->haskey) {
      rc = ve_key(p, len, &i, tag, f);
    } else if (tag == VE_TAB) {
      rc = ve_open(&s, edit); /* placed when it ends */
    } else if (tag >= VE_FALSE && tag <= VE_STR) {
      vh_val_t v;
      rc = ve_get_scalar(p, len, &i, tag, &v);
      if (rc == 0) rc = ve_place(f, v, edit);
    } else {
      rc = VH_ECORRUPT;
    }
  }
  if (rc != 0) {
    ve_rstack_free(&s);
    return rc == VH_ENOMEM ? rc : VH_ECORRUPT;
  }
  if (s.f != s.small) free(s.f);
  *pos = i;
  return 0;
}

int vh_valenc_decode(const void *p, size_t len, uint64_t edit, vh_val_t *out) {
  size_t pos = 0;
  int rc = vh_valenc_decode_at(p, len, &pos, edit, out);
  if (rc == 0 && pos != len) {
    vh_val_release(*out);
    *out = vh_nil();
    return VH_ECORRUPT;
  }
  return rc;
}
