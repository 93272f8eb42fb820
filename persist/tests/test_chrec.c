/*
 * test_chrec.c - the change record codec (vh_chrec.h,
 * persist/store/store_changes.c): an exact round trip of every kind of
 * value (nested tables, arrays with holes beside a hash part, floats with
 * -0.0 and NaN, integer and float keys, booleans, big strings) with tables
 * that iterate as the originals did; refusal of every truncation, of
 * trailing bytes and of bad bytes (VH_ECORRUPT), of a newer layout
 * (VH_EFORMAT); no record for a value nested too deep (VH_EDEPTH).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trie_util.h"
#include "vh_chrec.h"
#include "vh_test.h"

static vh_val_t sv(const char *s, size_t n) {
  vh_val_t v;
  v.u.i = 0;
  v.u.s = vh_str_new(s, n);
  v.type = VH_TSTR;
  return v;
}

static vh_val_t tv(vh_tab_t *t) {
  vh_val_t v;
  v.u.i = 0;
  v.u.t = t;
  v.type = VH_TTAB;
  return v;
}

static void set(vh_tab_t **t, vh_val_t k, vh_val_t v, uint64_t e) {
  ASSERT_EQ(vh_tab_set(t, k, v, e), 0);
  vh_val_release(k);
}

/* {1, nil, 3, [4] = {x = -0.0}, k = "v", [2.5] = true, [100] = false,
 *  big = <5000 bytes>, nan = NaN} built so that slot 2 is a hole of the
 * array part (4 slots) and 100 sits in the hash part. */
static vh_val_t sample(void) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e), *in = vh_tab_new(e);
  set(&in, sv("x", 1), vh_float(-0.0), e);
  set(&t, vh_int(1), vh_int(1), e);
  set(&t, vh_int(2), vh_int(2), e);
  set(&t, vh_int(3), vh_int(3), e);
  set(&t, vh_int(4), tv(in), e);
  set(&t, vh_int(2), vh_nil(), e); /* a hole */
  set(&t, sv("k", 1), sv("v", 1), e);
  set(&t, vh_float(2.5), vh_bool(1), e);
  set(&t, vh_int(100), vh_bool(0), e);
  char *big = malloc(5000);
  memset(big, 'b', 5000);
  big[7] = 0;
  set(&t, sv("big", 3), sv(big, 5000), e);
  free(big);
  set(&t, sv("nan", 3), vh_float(NAN), e);
  ASSERT_EQ(vh_tab_len(t), 4);
  return tv(t);
}

/* Same iteration, key by key (floats by bits), at every depth. */
static void same_iter(vh_val_t a, vh_val_t b) {
  ASSERT_EQ(a.type, b.type);
  if (a.type == VH_TFLOAT) {
    ASSERT_EQ(memcmp(&a.u.f, &b.u.f, 8), 0);
    return;
  }
  if (a.type != VH_TTAB) {
    ASSERT(vh_val_equal(a, b));
    return;
  }
  ASSERT_EQ(vh_tab_len(a.u.t), vh_tab_len(b.u.t));
  vh_iter_t ia, ib;
  vh_iter_init(&ia, a.u.t);
  vh_iter_init(&ib, b.u.t);
  vh_val_t ka, va, kb, vb;
  for (;;) {
    int na = vh_iter_next(&ia, &ka, &va), nb = vh_iter_next(&ib, &kb, &vb);
    ASSERT_EQ(na, nb);
    if (!na) break;
    same_iter(ka, kb);
    same_iter(va, vb);
  }
}

static void build(vh_buf_t *rec, vh_val_t *keep) {
  vh_val_t s = sample();
  vh_val_t p1[2] = {sv("t", 1), vh_int(7)};
  vh_val_t p2[1] = {vh_float(0.5)};
  vh_val_t p3[1] = {vh_bool(0)};
  const char *open = NULL;
  ASSERT_EQ(vh_chrec_begin(rec, 41), 0);
  ASSERT_EQ(vh_chrec_add(rec, &open, "alpha", '+', p1, 2, vh_nil(), s), 0);
  ASSERT_EQ(
      vh_chrec_add(rec, &open, "alpha", '~', p2, 1, vh_int(-5), vh_float(-0.0)),
      0);
  ASSERT_EQ(vh_chrec_add(rec, &open, "beta", '-', p3, 1, s, vh_nil()), 0);
  ASSERT_EQ(vh_chrec_end(rec, open), 0);
  vh_val_release(p1[0]);
  *keep = s;
}

TEST_IMPL(round_trip) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  vh_val_t s;
  build(&rec, &s);
  vh_chrec_t r;
  char *m = NULL;
  ASSERT_EQ(vh_chrec_decode(rec.p, rec.len, 42, &r, &m), 0);
  ASSERT_EQ(r.seq, 42u);
  ASSERT_EQ(r.pred, 41u);
  ASSERT_EQ(r.ndom, 2u);
  ASSERT_STR_EQ(r.dom[0].name, "alpha");
  ASSERT_STR_EQ(r.dom[1].name, "beta");
  ASSERT_EQ(r.dom[0].n, 2u);
  ASSERT_EQ(r.dom[1].n, 1u);
  vh_chent_t *e = &r.dom[0].e[0];
  ASSERT_EQ(e->op, '+');
  ASSERT_EQ(e->depth, 2u);
  ASSERT_EQ(e->path[0].type, VH_TSTR);
  ASSERT_EQ(e->path[1].type, VH_TINT);
  ASSERT_EQ(e->path[1].u.i, 7);
  ASSERT_EQ(e->old.type, VH_TNIL);
  same_iter(e->new, s);
  e = &r.dom[0].e[1];
  ASSERT_EQ(e->op, '~');
  ASSERT_EQ(e->path[0].type, VH_TFLOAT);
  ASSERT_EQ(e->old.u.i, -5);
  ASSERT_EQ(e->new.type, VH_TFLOAT);
  ASSERT(signbit(e->new.u.f));
  e = &r.dom[1].e[0];
  ASSERT_EQ(e->op, '-');
  ASSERT_EQ(e->path[0].type, VH_TBOOL);
  same_iter(e->old, s);
  ASSERT_EQ(e->new.type, VH_TNIL);
  vh_chrec_free(&r);
  vh_val_release(s);
  vh_buf_free(&rec);
}

TEST_IMPL(empty_record) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  ASSERT_EQ(vh_chrec_begin(&rec, 0), 0);
  ASSERT_EQ(vh_chrec_end(&rec, NULL), 0);
  vh_chrec_t r;
  ASSERT_EQ(vh_chrec_decode(rec.p, rec.len, 1, &r, NULL), 0);
  ASSERT_EQ(r.ndom, 0u);
  vh_chrec_free(&r);
  vh_buf_free(&rec);
}

TEST_IMPL(truncations_and_trailing_bytes_are_corrupt) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  vh_val_t s;
  build(&rec, &s);
  vh_val_release(s);
  for (size_t n = 0; n < rec.len; n++) {
    vh_chrec_t r;
    char *m = NULL;
    unsigned char *cut = malloc(n ? n : 1);
    memcpy(cut, rec.p, n);
    int rc = vh_chrec_decode(cut, n, 5, &r, &m);
    free(cut);
    ASSERT_EQ(rc, VH_ECORRUPT);
    ASSERT(m != NULL);
    free(m);
  }
  ASSERT_EQ(vh_buf_put(&rec, "\0", 1), 0);
  vh_chrec_t r;
  ASSERT_EQ(vh_chrec_decode(rec.p, rec.len, 5, &r, NULL), VH_ECORRUPT);
  vh_buf_free(&rec);
}

/* header + one domain "d" + bytes of one entry + end */
static int one(const unsigned char *ent, size_t n) {
  unsigned char buf[256];
  memset(buf, 0, 12);
  buf[0] = 1;
  buf[12] = 1;
  buf[13] = 'd';
  memcpy(buf + 14, ent, n);
  buf[14 + n] = 0;
  buf[15 + n] = 0;
  vh_chrec_t r;
  int rc = vh_chrec_decode(buf, 16 + n, 9, &r, NULL);
  vh_chrec_free(&r);
  return rc;
}

TEST_IMPL(newer_layout_and_bad_bytes_are_refused) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  vh_val_t s;
  build(&rec, &s);
  vh_val_release(s);
  vh_chrec_t r;
  char *m = NULL;
  rec.p[0] = 2;
  ASSERT_EQ(vh_chrec_decode(rec.p, rec.len, 5, &r, &m), VH_EFORMAT);
  ASSERT(strstr(m, "newer") != NULL);
  free(m);
  rec.p[0] = 0;
  ASSERT_EQ(vh_chrec_decode(rec.p, rec.len, 5, &r, NULL), VH_ECORRUPT);
  vh_buf_free(&rec);
  /* a well-formed entry: + [1] = 5 */
  const unsigned char ok[] = {'+', 1, 3, 2, 3, 10};
  ASSERT_EQ(one(ok, sizeof ok), 0);
  const unsigned char badop[] = {'*', 1, 3, 2, 3, 10};
  ASSERT_EQ(one(badop, sizeof badop), VH_ECORRUPT);
  const unsigned char depth0[] = {'+', 0, 3, 10};
  ASSERT_EQ(one(depth0, sizeof depth0), VH_ECORRUPT);
  const unsigned char nilkey[] = {'+', 1, 0, 3, 10};
  ASSERT_EQ(one(nilkey, sizeof nilkey), VH_ECORRUPT);
  const unsigned char tabkey[] = {'+', 1, 6, 0, 0, 3, 10};
  ASSERT_EQ(one(tabkey, sizeof tabkey), VH_ECORRUPT);
  const unsigned char nilval[] = {'+', 1, 3, 2, 0};
  ASSERT_EQ(one(nilval, sizeof nilval), VH_ECORRUPT);
  const unsigned char badtag[] = {'+', 1, 3, 2, 9};
  ASSERT_EQ(one(badtag, sizeof badtag), VH_ECORRUPT);
  /* a float key with an integral value is not normalized */
  unsigned char fkey[] = {'+', 1, 4, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 3, 10};
  ASSERT_EQ(one(fkey, sizeof fkey), VH_ECORRUPT);
  /* tables: {5} ok; {nil} (hole at slot n); {5, [1] = 6} (key in the
   * array range); {5, x = 1, x = 2} (twice) */
  const unsigned char t1[] = {'+', 1, 3, 2, 6, 1, 3, 10, 0};
  ASSERT_EQ(one(t1, sizeof t1), 0);
  const unsigned char t2[] = {'+', 1, 3, 2, 6, 1, 0, 0};
  ASSERT_EQ(one(t2, sizeof t2), VH_ECORRUPT);
  const unsigned char t3[] = {'+', 1, 3, 2, 6, 1, 3, 10, 3, 2, 3, 12, 0};
  ASSERT_EQ(one(t3, sizeof t3), VH_ECORRUPT);
  const unsigned char t4[] = {'+', 1, 3, 2, 6, 1,   3, 10, 5, 1,
                              'x', 3, 2, 5, 1, 'x', 3, 4,  0};
  ASSERT_EQ(one(t4, sizeof t4), VH_ECORRUPT);
  const unsigned char t5[] = {'+', 1, 3, 2, 6, 1, 3, 10, 5, 1, 'x', 0, 0};
  ASSERT_EQ(one(t5, sizeof t5), VH_ECORRUPT); /* a nil hash value */
  /* domains out of order, an empty domain, an empty name */
  unsigned char two[] = {1,   0,   0,   0,   0, 0, 0,  0, 0,  0, 0,
                         0,   1,   'b', '+', 1, 3, 2,  3, 10, 0, 1,
                         'a', '+', 1,   3,   2, 3, 10, 0, 0};
  ASSERT_EQ(vh_chrec_decode(two, sizeof two, 1, &r, NULL), VH_ECORRUPT);
  two[13] = 'a';
  ASSERT_EQ(vh_chrec_decode(two, sizeof two, 1, &r, NULL), VH_ECORRUPT);
  two[22] = 'b';
  ASSERT_EQ(vh_chrec_decode(two, sizeof two, 1, &r, NULL), 0);
  vh_chrec_free(&r);
  const unsigned char empty[] = {1, 0, 0, 0, 0, 0,   0, 0,
                                 0, 0, 0, 0, 1, 'a', 0, 0};
  ASSERT_EQ(vh_chrec_decode(empty, sizeof empty, 1, &r, NULL), VH_ECORRUPT);
  const unsigned char noend[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  ASSERT_EQ(vh_chrec_decode(noend, sizeof noend, 1, &r, NULL), VH_ECORRUPT);
}

TEST_IMPL(too_deep_is_not_recorded_nor_decoded) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  for (int i = 0; i < VH_CHREC_MAX_NEST + 1; i++) {
    vh_tab_t *o = vh_tab_new(e);
    set(&o, vh_int(1), tv(t), e);
    t = o;
  }
  vh_val_t p[1] = {vh_int(1)};
  vh_buf_t rec;
  vh_buf_init(&rec);
  const char *open = NULL;
  ASSERT_EQ(vh_chrec_begin(&rec, 1), 0);
  ASSERT_EQ(vh_chrec_add(&rec, &open, "d", '+', p, 1, vh_nil(), tv(t)),
            VH_EDEPTH);
  vh_tab_release(t);
  /* hand-made: 101 nested one-slot arrays */
  rec.len = 0;
  ASSERT_EQ(vh_chrec_begin(&rec, 1), 0);
  const unsigned char head[] = {1, 'd', '+', 1, 3, 2};
  ASSERT_EQ(vh_buf_put(&rec, head, sizeof head), 0);
  for (int i = 0; i < VH_CHREC_MAX_NEST + 1; i++)
    ASSERT_EQ(vh_buf_put(&rec, "\6\1", 2), 0);
  ASSERT_EQ(vh_buf_put(&rec, "\1", 1), 0);
  for (int i = 0; i < VH_CHREC_MAX_NEST + 1; i++)
    ASSERT_EQ(vh_buf_put(&rec, "\0", 1), 0);
  ASSERT_EQ(vh_buf_put(&rec, "\0\0", 2), 0);
  vh_chrec_t r;
  ASSERT_EQ(vh_chrec_decode(rec.p, rec.len, 2, &r, NULL), VH_ECORRUPT);
  vh_buf_free(&rec);
}

VH_TEST_MAIN(TEST_ENTRY(round_trip), TEST_ENTRY(empty_record),
             TEST_ENTRY(truncations_and_trailing_bytes_are_corrupt),
             TEST_ENTRY(newer_layout_and_bad_bytes_are_refused),
             TEST_ENTRY(too_deep_is_not_recorded_nor_decoded))
