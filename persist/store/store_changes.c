/*
 * store_changes.c - change records (API and meaning: vh_chrec.h).
 *
 * KEY   'C' u64be(seq)   beside 'V' seq (store_versions.c), in the same
 *                        batch; deleted by vh_batch_del_version.
 * VALUE framed like nodes (store.c: u32 CRC-32C, kind 0x9 << 4 | 1).
 * PAYLOAD (numbers little endian; varints: vh_bytes.h LEB128, minimal):
 *   u32 layout (1; a newer one is refused, VH_EFORMAT)
 *   u64 pred           the version the changes are from
 *   then DOMAIN*, in strictly increasing name order (strcmp), then 0x00
 *   (a name of length 0: the end; nothing follows it, so a record cut
 *   anywhere is refused):
 *     varint nlen (>= 1), nlen bytes   the name (no NUL byte)
 *     ENTRY+, then 0x00
 *   ENTRY:
 *     u8 op ('+', '-' or '~')
 *     varint depth (>= 1), depth KEYs
 *     VAL old    for '-' and '~'
 *     VAL new    for '+' and '~'
 *   VAL (tag byte first):
 *     0x00 nil (a hole of an array part only)   0x01 false   0x02 true
 *     0x03 varint zigzag(i64)   0x04 u64 the double's bits (any bits)
 *     0x05 varint len, bytes    (a string)
 *     0x06 table: varint n (its array part's length, vh_tab_len), n VALs
 *          (nil for a hole; slot n is never nil), then (KEY VAL) pairs
 *          of the hash part in its iteration order (values never nil),
 *          then 0x00.
 *   KEY: a VAL with tag 0x01..0x05, normalized (vh_key_norm leaves it as
 *   it is); in a hash part never an integer in 1..n+1, never twice.
 *
 * WHY ITS OWN VALUE ENCODING. valenc.c (vh_valenc.h) rebuilds an array
 * with a hole differently (the keys after the hole go to the hash part),
 * so the rebuilt table would iterate in another order than the stored one,
 * and JSON output (vh_json, the feed) follows iteration order. Here the
 * array part is rebuilt slot for slot (holes included) and the hash part,
 * a CHAMP map, has one canonical layout per key set (champ.c), so the
 * decoded table iterates exactly as the walked one.
 *
 * LIMITS. Both directions recurse once per nested table, at most
 * VH_CHREC_MAX_NEST deep (the writer writes no record for a deeper value;
 * the decoder refuses one as corrupt). Any byte string decodes to a
 * record or VH_ECORRUPT, never a crash or a leak.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "vh_chrec.h"

#define VH_CHREC_LAYOUT 1

enum { CV_NIL = 0, CV_FALSE, CV_TRUE, CV_INT, CV_FLOAT, CV_STR, CV_TAB };

void vh_chrec_free(vh_chrec_t *r) {
  if (r == NULL) return;
  for (size_t d = 0; d < r->ndom; d++) {
    vh_chdom_t *dm = &r->dom[d];
    for (size_t i = 0; i < dm->n; i++) {
      vh_chent_t *e = &dm->e[i];
      for (size_t k = 0; k < e->depth; k++) vh_val_release(e->path[k]);
      free(e->path);
      vh_val_release(e->old);
      vh_val_release(e->new);
    }
    free(dm->e);
    free(dm->name);
  }
  free(r->dom);
  memset(r, 0, sizeof *r);
}

/* ---- encoding ---- */

static int enc_val(vh_buf_t *b, vh_val_t v, int nest) {
  unsigned char t8[9];
  switch (v.type) {
    case VH_TNIL:
      t8[0] = CV_NIL;
      return vh_buf_put(b, t8, 1);
    case VH_TBOOL:
      t8[0] = v.u.b ? CV_TRUE : CV_FALSE;
      return vh_buf_put(b, t8, 1);
    case VH_TINT: {
      t8[0] = CV_INT;
      int r = vh_buf_put(b, t8, 1);
      return r ? r : vh_buf_put_varint(b, vh_zigzag(v.u.i));
    }
    case VH_TFLOAT: {
      uint64_t bits;
      memcpy(&bits, &v.u.f, 8);
      t8[0] = CV_FLOAT;
      vh_le64_store(t8 + 1, bits);
      return vh_buf_put(b, t8, 9);
    }
    case VH_TSTR: {
      t8[0] = CV_STR;
      size_t n = vh_str_len(v.u.s);
      int r = vh_buf_put(b, t8, 1);
      if (r == 0) r = vh_buf_put_varint(b, n);
      return r ? r : vh_buf_put(b, vh_str_data(v.u.s), n);
    }
    case VH_TTAB:
      break;
    default:
      return VH_ECORRUPT;
  }
  if (nest >= VH_CHREC_MAX_NEST) return VH_EDEPTH;
  const vh_tab_t *t = v.u.t;
  int64_t n = vh_tab_len(t);
  if (vh_trie_fault(NULL) != 0) return vh_trie_fault(NULL);
  t8[0] = CV_TAB;
  int r = vh_buf_put(b, t8, 1);
  if (r == 0) r = vh_buf_put_varint(b, (uint64_t)n);
  for (int64_t i = 1; r == 0 && i <= n; i++) {
    vh_val_t x;
    vh_tab_get_int(t, i, &x);
    r = enc_val(b, x, nest + 1);
  }
  vh_iter_t it;
  vh_iter_init(&it, t);
  vh_val_t k, x;
  while (r == 0 && vh_iter_next(&it, &k, &x)) {
    if (k.type == VH_TINT && k.u.i >= 1 && k.u.i <= n) continue;
    r = enc_val(b, k, nest + 1);
    if (r == 0) r = enc_val(b, x, nest + 1);
  }
  if (r == 0 && vh_trie_fault(NULL) != 0) r = vh_trie_fault(NULL);
  t8[0] = 0;
  return r ? r : vh_buf_put(b, t8, 1);
}

int vh_chrec_begin(vh_buf_t *out, uint64_t pred) {
  unsigned char h[12];
  out->len = 0;
  vh_le32_store(h, VH_CHREC_LAYOUT);
  vh_le64_store(h + 4, pred);
  return vh_buf_put(out, h, sizeof h);
}

int vh_chrec_add(vh_buf_t *out, const char **open, const char *domain, int op,
                 const vh_val_t *path, size_t depth, vh_val_t old,
                 vh_val_t new) {
  unsigned char z = 0, o = (unsigned char)op;
  int r = 0;
  if (*open != NULL && strcmp(*open, domain) != 0) {
    r = vh_buf_put(out, &z, 1); /* the open domain ends */
    *open = NULL;
  }
  if (r == 0 && *open == NULL) {
    size_t n = strlen(domain);
    r = vh_buf_put_varint(out, n);
    if (r == 0) r = vh_buf_put(out, domain, n);
    *open = domain;
  }
  if (r == 0) r = vh_buf_put(out, &o, 1);
  if (r == 0) r = vh_buf_put_varint(out, depth);
  for (size_t i = 0; r == 0 && i < depth; i++) r = enc_val(out, path[i], 0);
  if (r == 0 && op != '+') r = enc_val(out, old, 0);
  if (r == 0 && op != '-') r = enc_val(out, new, 0);
  return r;
}

int vh_chrec_end(vh_buf_t *out, const char *open) {
  unsigned char z[2] = {0, 0}; /* the open domain's end, the record's */
  return open != NULL ? vh_buf_put(out, z, 2) : vh_buf_put(out, z, 1);
}

/* ---- decoding ---- */

typedef struct dec {
  const unsigned char *p;
  size_t len, pos;
  uint64_t edit;
} dec_t;

#define BAD VH_ECORRUPT

static int dec_val(dec_t *d, vh_val_t *out, int nest, int key);

static int dec_tab(dec_t *d, vh_val_t *out, int nest) {
  uint64_t n;
  if (nest >= VH_CHREC_MAX_NEST) return BAD;
  if (vh_varint_get(d->p, d->len, &d->pos, &n) != 0 || n > d->len - d->pos ||
      n > INT64_MAX / 2)
    return BAD; /* every slot takes a byte at least */
  vh_tab_t *t = vh_tab_new(d->edit);
  if (t == NULL) return VH_ENOMEM;
  int64_t *holes = NULL;
  size_t nholes = 0, capholes = 0;
  int r = 0;
  for (uint64_t i = 1; r == 0 && i <= n; i++) {
    vh_val_t v;
    r = dec_val(d, &v, nest + 1, 0);
    if (r != 0) break;
    if (v.type == VH_TNIL) {
      if (i == n) {
        r = BAD;
        break;
      }
      if (vh_grow(&holes, &capholes, nholes + 1, sizeof *holes) != 0) {
        r = VH_ENOMEM;
        break;
      }
      holes[nholes++] = (int64_t)i;
      v = vh_bool(0); /* a placeholder, made a hole below */
    }
    r = vh_tab_set(&t, vh_int((int64_t)i), v, d->edit);
  }
  for (size_t i = 0; r == 0 && i < nholes; i++)
    r = vh_tab_set(&t, vh_int(holes[i]), vh_nil(), d->edit);
  free(holes);
  while (r == 0) {
    if (d->pos >= d->len) {
      r = BAD;
      break;
    }
    if (d->p[d->pos] == 0) {
      d->pos++;
      break;
    }
    vh_val_t k, v, was;
    r = dec_val(d, &k, nest + 1, 1);
    if (r != 0) break;
    if (k.type == VH_TINT && k.u.i >= 1 && (uint64_t)k.u.i <= n + 1) r = BAD;
    if (r == 0) {
      vh_tab_get(t, k, &was);
      if (was.type != VH_TNIL) r = BAD;
    }
    if (r == 0) r = dec_val(d, &v, nest + 1, 0);
    if (r == 0 && v.type == VH_TNIL) r = BAD;
    if (r == 0) r = vh_tab_set(&t, k, v, d->edit);
    vh_val_release(k);
  }
  if (r == 0 && vh_tab_len(t) != (int64_t)n) r = BAD;
  if (r != 0) {
    vh_tab_release(t);
    return r == VH_ENOMEM ? r : BAD;
  }
  out->type = VH_TTAB;
  out->u.t = t;
  return 0;
}

/* A value (key: a normalized key, tags 0x01..0x05) into *out [new]. */
static int dec_val(dec_t *d, vh_val_t *out, int nest, int key) {
  *out = vh_nil();
  if (d->pos >= d->len) return BAD;
  unsigned tag = d->p[d->pos++];
  uint64_t x;
  switch (tag) {
    case CV_NIL:
      return key ? BAD : 0;
    case CV_FALSE:
    case CV_TRUE:
      *out = vh_bool(tag == CV_TRUE);
      return 0;
    case CV_INT:
      if (vh_varint_get(d->p, d->len, &d->pos, &x) != 0) return BAD;
      *out = vh_int(vh_unzigzag(x));
      return 0;
    case CV_FLOAT: {
      if (d->len - d->pos < 8) return BAD;
      x = vh_le64_load(d->p + d->pos);
      d->pos += 8;
      double f;
      memcpy(&f, &x, 8);
      *out = vh_float(f);
      if (key) {
        vh_val_t k = *out;
        if (vh_key_norm(&k) != 0 || k.type != VH_TFLOAT) return BAD;
        uint64_t kb;
        memcpy(&kb, &k.u.f, 8);
        if (kb != x) return BAD;
      }
      return 0;
    }
    case CV_STR: {
      if (vh_varint_get(d->p, d->len, &d->pos, &x) != 0 || x > d->len - d->pos)
        return BAD;
      vh_str_t *s = vh_str_new((const char *)d->p + d->pos, (size_t)x);
      if (s == NULL) return VH_ENOMEM;
      d->pos += (size_t)x;
      out->type = VH_TSTR;
      out->u.s = s;
      return 0;
    }
    case CV_TAB:
      return key ? BAD : dec_tab(d, out, nest);
    default:
      return BAD;
  }
}

static int dec_ent(dec_t *d, vh_chent_t *e) {
  e->op = d->p[d->pos++];
  if (e->op != '+' && e->op != '-' && e->op != '~') return BAD;
  uint64_t depth;
  if (vh_varint_get(d->p, d->len, &d->pos, &depth) != 0 || depth == 0 ||
      depth > d->len - d->pos)
    return BAD;
  e->path = calloc((size_t)depth, sizeof *e->path);
  if (e->path == NULL) return VH_ENOMEM;
  int r = 0;
  for (uint64_t i = 0; r == 0 && i < depth; i++) {
    r = dec_val(d, &e->path[i], 0, 1);
    if (r == 0 || e->path[i].type != VH_TNIL) e->depth = (size_t)i + 1;
  }
  if (r == 0 && e->op != '+') r = dec_val(d, &e->old, 0, 0);
  if (r == 0 && e->op != '+' && e->old.type == VH_TNIL) r = BAD;
  if (r == 0 && e->op != '-') r = dec_val(d, &e->new, 0, 0);
  if (r == 0 && e->op != '-' && e->new.type == VH_TNIL) r = BAD;
  return r;
}

int vh_chrec_decode(const void *pv, size_t len, uint64_t seq, vh_chrec_t *out,
                    char **errmsg) {
  memset(out, 0, sizeof *out);
  if (errmsg) *errmsg = NULL;
  out->seq = seq;
  const unsigned char *p = pv;
  if (len < 12) goto bad;
  uint32_t lay = vh_le32_load(p);
  if (lay == 0) goto bad;
  if (lay > VH_CHREC_LAYOUT) {
    vh_store__set_msg(
        errmsg,
        vh_store__msg("changes of version %llu: record layout %u "
                      "is newer than this vedhost supports (%d); "
                      "run a newer vedhost",
                      (unsigned long long)seq, (unsigned)lay, VH_CHREC_LAYOUT));
    return VH_EFORMAT;
  }
  out->pred = vh_le64_load(p + 4);
  dec_t d = {p, len, 12, vh_edit_new()};
  size_t capdom = 0;
  int r;
  for (;;) {
    uint64_t nl;
    if (vh_varint_get(p, len, &d.pos, &nl) != 0) goto bad;
    if (nl == 0) break; /* the end */
    if (nl > len - d.pos || memchr(p + d.pos, 0, (size_t)nl) != NULL) goto bad;
    if (vh_grow(&out->dom, &capdom, out->ndom + 1, sizeof *out->dom) != 0)
      goto oom;
    vh_chdom_t *dm = &out->dom[out->ndom++];
    memset(dm, 0, sizeof *dm);
    dm->name = malloc((size_t)nl + 1);
    if (dm->name == NULL) goto oom;
    memcpy(dm->name, p + d.pos, (size_t)nl);
    dm->name[nl] = 0;
    d.pos += (size_t)nl;
    if (out->ndom > 1 && strcmp(out->dom[out->ndom - 2].name, dm->name) >= 0)
      goto bad;
    size_t cap = 0;
    for (;;) {
      if (d.pos >= len) goto bad;
      if (p[d.pos] == 0) {
        d.pos++;
        break;
      }
      if (vh_grow(&dm->e, &cap, dm->n + 1, sizeof *dm->e) != 0) goto oom;
      vh_chent_t *e = &dm->e[dm->n++];
      memset(e, 0, sizeof *e);
      r = dec_ent(&d, e);
      if (r == VH_ENOMEM) goto oom;
      if (r != 0) goto bad;
    }
    if (dm->n == 0) goto bad;
  }
  if (d.pos != len) goto bad;
  return 0;
oom:
  vh_chrec_free(out);
  return VH_ENOMEM;
bad:
  vh_chrec_free(out);
  vh_store__set_msg(errmsg,
                    vh_store__msg("changes of version %llu: malformed record",
                                  (unsigned long long)seq));
  return VH_ECORRUPT;
}

/* ---- the store ---- */

int vh_batch_put_chrec(vh_batch_t *b, uint64_t seq, const void *payload,
                       size_t len) {
  return vh_batch__seq_op(b, VH_KEY_CHREC, seq, VH_KIND_CHREC, payload, len);
}

int vh_batch__del_chrec(vh_batch_t *b, uint64_t seq) {
  return vh_batch__seq_op(b, VH_KEY_CHREC, seq, -1, NULL, 0);
}

int vh_store_chrec_get(vh_store_t *s, uint64_t seq, vh_chrec_t *out,
                       char **errmsg) {
  memset(out, 0, sizeof *out);
  if (errmsg) *errmsg = NULL;
  char what[48];
  snprintf(what, sizeof what, "changes of version %llu",
           (unsigned long long)seq);
  void *p = NULL;
  size_t len = 0;
  char *m = NULL;
  int rc = vh_store__seq_get(s, VH_KEY_CHREC, seq, VH_KIND_CHREC, what, &p,
                             &len, &m);
  if (rc == 0) rc = vh_chrec_decode(p, len, seq, out, &m);
  free(p);
  vh_store__set_msg(errmsg, m);
  return rc;
}

int vh_store_chrec_each(vh_store_t *s, vh_chrec_each_fn fn, void *arg,
                        char **errmsg) {
  if (errmsg) *errmsg = NULL;
  int rc = vh_store__read_lock(s, "changes scan", errmsg);
  if (rc != 0) return rc;
  char lo = VH_KEY_CHREC, hi;
  rocksdb_readoptions_t *ro = vh_store__tag_scan_opts(VH_KEY_CHREC, &hi);
  rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
  for (rocksdb_iter_seek(it, &lo, 1); rc == 0 && rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t klen = 0, vlen = 0;
    const unsigned char *kk =
        (const unsigned char *)rocksdb_iter_key(it, &klen);
    if (klen < 1 || kk[0] != VH_KEY_CHREC) break;
    const char *v = rocksdb_iter_value(it, &vlen);
    uint64_t seq = klen == VH_SEQ_KEY_LEN ? vh_be64_load(kk + 1) : 0;
    char what[48];
    snprintf(what, sizeof what, "changes of version %llu",
             (unsigned long long)seq);
    const void *pay = NULL;
    size_t plen = 0;
    char *m = NULL;
    vh_chrec_t r;
    memset(&r, 0, sizeof r);
    int e = klen == VH_SEQ_KEY_LEN
                ? vh_store__check(v, vlen, VH_KIND_CHREC, what, &pay, &plen, &m)
                : VH_ECORRUPT;
    if (e == VH_ECORRUPT && m == NULL)
      m = vh_store__msg("a change record key of %zu bytes", klen);
    if (e == 0) e = vh_chrec_decode(pay, plen, seq, &r, &m);
    rc = fn(arg, seq, e == 0 ? &r : NULL, e, m, klen + vlen);
    vh_chrec_free(&r);
    free(m);
  }
  if (rc == 0) {
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr) rc = vh_store__rocks_err(rerr, "changes scan", errmsg);
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  pthread_rwlock_unlock(&s->db_lock);
  return rc == 1 ? 0 : rc;
}
