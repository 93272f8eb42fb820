/*
 * test_valenc.c - the value encoding (vh_valenc.h): exact round trips of
 * every kind of value (float subtype, binary strings, keys of every kind,
 * arrays with holes, deep nesting), the byte layout of a few values, and
 * refusal of damaged bytes: every truncation, random byte flips and random
 * garbage must give VH_ECORRUPT (or, for a flip that still spells a valid
 * value, a value) without a crash or a leak; allocation failures give
 * VH_ENOMEM cleanly.
 */
#include <math.h>

#include "trie_util.h"
#include "vh_test.h"
#include "vh_valenc.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

/* [new] a binary string value. */
static vh_val_t bstr(const char *p, size_t n) {
  vh_val_t v;
  v.u.i = 0;
  v.u.s = vh_str_new(p, n);
  v.type = VH_TSTR;
  if (!v.u.s) abort();
  return v;
}

/* A random scalar that may be a key (no nil; floats never integral). */
static vh_val_t rnd_key(void) {
  switch (rnd() % 5) {
    case 0:
      return vh_bool((int)(rnd() & 1));
    case 1:
      return vh_int((int64_t)(rnd() % 64) + 1); /* often array-like */
    case 2:
      return vh_float((double)(rnd() % 1000) + 0.5);
    default: {
      char buf[12];
      size_t n = rnd() % sizeof buf;
      for (size_t i = 0; i < n; i++) buf[i] = (char)(rnd() % 4); /* NULs */
      return bstr(buf, n);
    }
  }
}

/* A random value, tables at most depth levels deep. */
static vh_val_t rnd_val(int depth) {
  static const double floats[] = {0.0,   -0.0,      2.0,      -1.5,
                                  1e300, -INFINITY, INFINITY, 5e-324};
  switch (rnd() % (depth > 0 ? 8 : 6)) {
    case 0:
      return vh_bool((int)(rnd() & 1));
    case 1: {
      static const int64_t ints[] = {0,   1,   -1,        127,
                                     128, -65, INT64_MAX, INT64_MIN};
      return rnd() & 1 ? vh_int(ints[rnd() % 8]) : vh_int((int64_t)rnd());
    }
    case 2:
      return vh_float(floats[rnd() % 8]);
    case 3: {
      char buf[300];
      size_t n = rnd() & 1 ? rnd() % 8 : rnd() % sizeof buf;
      for (size_t i = 0; i < n; i++) buf[i] = (char)rnd();
      return bstr(buf, n);
    }
    case 4:
    case 5:
      return rnd_key();
    default: {
      uint64_t edit = vh_edit_new();
      vh_tab_t *t = vh_tab_new(edit);
      ASSERT(t != NULL);
      /* wide tables only near the leaves, so values stay small */
      int n = (int)(rnd() % (depth > 2 ? 4 : 12));
      int64_t na = (int64_t)(rnd() % (depth > 2 ? 4 : 40));
      for (int64_t i = 1; i <= na; i++)
        ASSERT_EQ(vh_tab_set(&t, vh_int(i), rnd_val(depth - 1), edit), 0);
      if (na > 2 && rnd() % 3 == 0) /* a hole in the array part */
        ASSERT_EQ(vh_tab_set(&t, vh_int(na / 2), vh_nil(), edit), 0);
      for (int i = 0; i < n; i++) {
        vh_val_t k = rnd_key();
        ASSERT_EQ(vh_tab_set(&t, k, rnd_val(depth - 1), edit), 0);
        vh_val_release(k);
      }
      return tu_tab(t);
    }
  }
}

/* Same contents, and the same float subtype and bits everywhere (checked
 * here rather than trusting vh_val_equal's number comparison). */
static int same(vh_val_t a, vh_val_t b) {
  if (a.type != b.type) return 0;
  if (a.type == VH_TFLOAT) {
    return memcmp(&a.u.f, &b.u.f, 8) == 0;
  }
  if (a.type != VH_TTAB) return vh_val_equal(a, b);
  if (vh_tab_count(a.u.t) != vh_tab_count(b.u.t)) return 0;
  vh_iter_t it;
  vh_val_t k, v, w;
  vh_iter_init(&it, a.u.t);
  while (vh_iter_next(&it, &k, &v)) {
    vh_tab_get(b.u.t, k, &w);
    if (!same(v, w)) return 0;
  }
  return 1;
}

/* Encode v, decode it back, compare; returns the encoding [new]. */
static unsigned char *roundtrip(vh_val_t v, size_t *len) {
  unsigned char *p = NULL;
  ASSERT_EQ(vh_valenc_encode(v, &p, len), 0);
  ASSERT(*len >= 1);
  vh_val_t back;
  ASSERT_EQ(vh_valenc_decode(p, *len, vh_edit_new(), &back), 0);
  ASSERT(same(v, back));
  if (back.type == VH_TTAB) ASSERT_CHECK(back.u.t);
  /* Decoding in the middle of other bytes stops at the value's end. */
  unsigned char *q = malloc(*len + 3);
  ASSERT(q != NULL);
  q[0] = 0xAA;
  memcpy(q + 1, p, *len);
  q[*len + 1] = 0x05;
  q[*len + 2] = 0x07;
  size_t pos = 1;
  vh_val_t again;
  ASSERT_EQ(vh_valenc_decode_at(q, *len + 3, &pos, vh_edit_new(), &again), 0);
  ASSERT_EQ(pos, *len + 1);
  ASSERT(same(v, again));
  vh_val_release(again);
  ASSERT_EQ(vh_valenc_decode(q, *len + 3, vh_edit_new(), &again), VH_ECORRUPT);
  ASSERT_EQ(again.type, VH_TNIL);
  free(q);
  vh_val_release(back);
  return p;
}

/* The bytes of small values, as the layout in valenc.c says. */
TEST_IMPL(layout) {
  static const unsigned char e_nil[] = {0x00}, e_f[] = {0x01}, e_t[] = {0x02},
                             e_m1[] = {0x03, 0x01},
                             e_300[] = {0x03, 0xd8, 0x04},
                             e_two[] = {0x04, 0, 0, 0, 0, 0, 0, 0, 0x40},
                             e_str[] = {0x05, 0x03, 'a', 0, 'b'},
                             e_tab[] = {0x06, 0x02, 0x03, 0x03, 0x07,
                                        0x05, 0x01, 'x',  0x01, 0x00};
  vh_val_t vals[8];
  const unsigned char *want[8] = {e_nil, e_f,   e_t,   e_m1,
                                  e_300, e_two, e_str, e_tab};
  size_t wn[8] = {1, 1, 1, 2, 3, 9, 5, 10};
  vals[0] = vh_nil();
  vals[1] = vh_bool(0);
  vals[2] = vh_bool(1);
  vals[3] = vh_int(-1);
  vals[4] = vh_int(300);
  vals[5] = vh_float(2.0);
  vals[6] = bstr("a\0b", 3);
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  ASSERT(t != NULL);
  ASSERT_EQ(vh_tab_set(&t, vh_int(1), vh_bool(1), edit), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(2), vh_int(-2), edit), 0);
  ASSERT_EQ(tu_set_s(&t, "x", vh_bool(0), edit), 0);
  vals[7] = tu_tab(t);
  for (int i = 0; i < 8; i++) {
    size_t n;
    unsigned char *p = roundtrip(vals[i], &n);
    ASSERT_EQ(n, wn[i]);
    ASSERT_EQ(memcmp(p, want[i], n), 0);
    free(p);
    vh_val_release(vals[i]);
  }
  ASSERT_CLEAN();
}

/* Random values of every kind, nested up to 6 levels, round trip. */
TEST_IMPL(random_roundtrip) {
  for (int i = 0; i < 2000; i++) {
    vh_val_t v = rnd_val(i % 7);
    size_t n;
    free(roundtrip(v, &n));
    vh_val_release(v);
  }
  ASSERT_CLEAN();
}

/* A float keeps its subtype (2.0 is not 2), NaN its bits; a non-integral
 * float key and keys of every kind round trip. */
TEST_IMPL(floats_and_keys) {
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  ASSERT(t != NULL);
  ASSERT_EQ(vh_tab_set(&t, vh_float(0.25), vh_float(2.0), edit), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_bool(1), vh_float(NAN), edit), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_bool(0), vh_int(2), edit), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(-7), vh_float(-0.0), edit), 0);
  vh_val_t k = bstr("\0\xff", 2);
  ASSERT_EQ(vh_tab_set(&t, k, bstr("", 0), edit), 0);
  unsigned char *p;
  size_t n;
  ASSERT_EQ(vh_valenc_encode(tu_tab(t), &p, &n), 0);
  vh_val_t back, e;
  ASSERT_EQ(vh_valenc_decode(p, n, vh_edit_new(), &back), 0);
  ASSERT_EQ(back.type, VH_TTAB);
  vh_tab_get(back.u.t, vh_float(0.25), &e);
  ASSERT_EQ(e.type, VH_TFLOAT);
  ASSERT(e.u.f == 2.0);
  vh_tab_get(back.u.t, vh_bool(1), &e);
  ASSERT_EQ(e.type, VH_TFLOAT);
  ASSERT(isnan(e.u.f));
  vh_tab_get(back.u.t, vh_bool(0), &e);
  ASSERT_EQ(e.type, VH_TINT);
  vh_tab_get(back.u.t, vh_int(-7), &e);
  ASSERT_EQ(e.type, VH_TFLOAT);
  ASSERT(signbit(e.u.f));
  vh_tab_get(back.u.t, k, &e);
  ASSERT_EQ(e.type, VH_TSTR);
  ASSERT_EQ(vh_str_len(e.u.s), 0);
  ASSERT_EQ(vh_tab_count(back.u.t), 5);
  vh_val_release(k);
  vh_val_release(back);
  vh_tab_release(t);
  free(p);
  ASSERT_CLEAN();
}

/* 50000 levels of nesting (deeper than the bindings allow): no C stack
 * recursion either way. Also a wide array next to the deep chain. */
TEST_IMPL(deep_nesting) {
  enum { DEPTH = 50000 };
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  ASSERT(t != NULL);
  ASSERT_EQ(vh_tab_set(&t, vh_int(1), vh_int(DEPTH), edit), 0);
  for (int i = DEPTH - 1; i >= 0; i--) {
    vh_tab_t *up = vh_tab_new(edit);
    ASSERT(up != NULL);
    ASSERT_EQ(vh_tab_set(&up, vh_int(1), vh_int(i), edit), 0);
    ASSERT_EQ(tu_set_s(&up, "down", tu_tab(t), edit), 0);
    t = up;
  }
  for (int64_t i = 2; i <= 5000; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i * i), edit), 0);
  unsigned char *p;
  size_t n;
  ASSERT_EQ(vh_valenc_encode(tu_tab(t), &p, &n), 0);
  vh_val_t back;
  ASSERT_EQ(vh_valenc_decode(p, n, vh_edit_new(), &back), 0);
  ASSERT_EQ(back.type, VH_TTAB);
  ASSERT_EQ(vh_tab_len(back.u.t), 5000);
  vh_val_t cur = back, e;
  for (int i = 0; i <= DEPTH; i++) {
    ASSERT_EQ(cur.type, VH_TTAB);
    vh_tab_get_int(cur.u.t, 1, &e);
    ASSERT_EQ(e.type, VH_TINT);
    ASSERT_EQ(e.u.i, i);
    cur = tu_get_s(cur.u.t, "down");
  }
  ASSERT_EQ(cur.type, VH_TNIL);
  /* Every truncation of a deep value is refused, without leaks. */
  for (size_t cut = 0; cut < n; cut += 997) {
    vh_val_t bad;
    ASSERT_EQ(vh_valenc_decode(p, cut, vh_edit_new(), &bad), VH_ECORRUPT);
  }
  vh_val_release(back);
  vh_tab_release(t);
  free(p);
  ASSERT_CLEAN();
}

/* Every strict prefix of an encoding is refused; so is any byte after. */
TEST_IMPL(truncations) {
  for (int i = 0; i < 300; i++) {
    vh_val_t v = rnd_val(1 + i % 4);
    size_t n;
    unsigned char *p = roundtrip(v, &n);
    for (size_t cut = 0; cut < n; cut++) {
      vh_val_t bad;
      ASSERT_EQ(vh_valenc_decode(p, cut, vh_edit_new(), &bad), VH_ECORRUPT);
      ASSERT_EQ(bad.type, VH_TNIL);
    }
    free(p);
    vh_val_release(v);
    ASSERT_CLEAN();
  }
}

/* Random byte flips and random garbage: a value or VH_ECORRUPT, never a
 * crash, never a leak, and a value that comes out is well-formed and
 * encodes again. Some flips must be refused (keeps the test honest). */
TEST_IMPL(flips_and_garbage) {
  size_t refused = 0, total = 0;
  for (int i = 0; i < 400; i++) {
    vh_val_t v = rnd_val(1 + i % 4);
    size_t n;
    unsigned char *p = roundtrip(v, &n);
    for (int f = 0; f < 40; f++) {
      unsigned char *q = malloc(n);
      ASSERT(q != NULL);
      memcpy(q, p, n);
      int flips = 1 + (int)(rnd() % 3);
      for (int j = 0; j < flips; j++)
        q[rnd() % n] ^= (unsigned char)(1 + rnd() % 255);
      vh_val_t out;
      int rc = vh_valenc_decode(q, n, vh_edit_new(), &out);
      total++;
      if (rc == 0) {
        if (out.type == VH_TTAB) ASSERT_CHECK(out.u.t);
        unsigned char *r;
        size_t rn;
        ASSERT_EQ(vh_valenc_encode(out, &r, &rn), 0);
        free(r);
        vh_val_release(out);
      } else {
        ASSERT_EQ(rc, VH_ECORRUPT);
        ASSERT_EQ(out.type, VH_TNIL);
        refused++;
      }
      free(q);
    }
    free(p);
    vh_val_release(v);
  }
  for (int i = 0; i < 20000; i++) {
    unsigned char g[64];
    size_t n = 1 + rnd() % sizeof g;
    for (size_t j = 0; j < n; j++) g[j] = (unsigned char)(rnd() % 9);
    vh_val_t out;
    int rc = vh_valenc_decode(g, n, vh_edit_new(), &out);
    if (rc == 0)
      vh_val_release(out);
    else
      ASSERT_EQ(rc, VH_ECORRUPT);
  }
  ASSERT_GT(refused, total / 4);
  ASSERT_CLEAN();
}

/* Specific malformations: duplicate keys, an integral or NaN float key, a
 * table as a key, nil as a table value, a 0x07 twice, a long or
 * non-minimal varint, a string longer than the bytes left. */
TEST_IMPL(malformed) {
  static const struct {
    unsigned char b[16];
    size_t n;
  } bad[] = {
      {{0x06, 0x07, 0x02, 0x01, 0x02, 0x01, 0x00}, 7}, /* {[true]} twice */
      {{0x06, 0x02, 0x07, 0x03, 0x02, 0x01, 0x00}, 7}, /* key 1 in A and H */
      {{0x06, 0x07, 0x04, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x01, 0x00}, 13},
      {{0x06, 0x07, 0x04, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0x01, 0x00}, 13},
      {{0x06, 0x07, 0x06, 0x00, 0x01, 0x00}, 6}, /* table key */
      {{0x06, 0x07, 0x02, 0x00, 0x00}, 5},       /* key without value */
      {{0x06, 0x07, 0x07, 0x00}, 4},             /* 0x07 twice */
      {{0x06, 0x08, 0x00}, 3},                   /* unknown tag */
      {{0x08}, 1},
      {{0x03, 0x80, 0x00}, 3}, /* non-minimal varint */
      {{0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
       11}, /* past 64 bits */
      {{0x05, 0x05, 'a', 'b'}, 4},
      {{0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11},
      {{0x00, 0x00}, 2}, /* bytes after the value */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    vh_val_t out;
    int rc = vh_valenc_decode(bad[i].b, bad[i].n, vh_edit_new(), &out);
    if (rc != VH_ECORRUPT) fprintf(stderr, "case %zu\n", i);
    ASSERT_EQ(rc, VH_ECORRUPT);
    ASSERT_EQ(out.type, VH_TNIL);
  }
  /* The largest varint is fine: INT64_MIN zigzags to 2^64 - 1. */
  static const unsigned char big[] = {0x03, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0x01};
  vh_val_t out;
  ASSERT_EQ(vh_valenc_decode(big, sizeof big, vh_edit_new(), &out), 0);
  ASSERT_EQ(out.type, VH_TINT);
  ASSERT(out.u.i == INT64_MIN);
  ASSERT_CLEAN();
}

/* Allocation failure at every point of a decode: VH_ENOMEM, no leak. */
TEST_IMPL(decode_oom) {
  vh_val_t v = rnd_val(3);
  while (v.type != VH_TTAB || vh_tab_count(v.u.t) < 5) {
    vh_val_release(v);
    v = rnd_val(3);
  }
  size_t n;
  unsigned char *p = roundtrip(v, &n);
  vh_val_release(v);
  ASSERT_CLEAN();
  int ok = 0;
  for (long k = 1; k < 100000 && !ok; k++) {
    vh_val_t out;
    vh_mem_fail_after(k);
    int rc = vh_valenc_decode(p, n, vh_edit_new(), &out);
    vh_mem_fail_after(0);
    if (rc == 0) {
      ok = 1;
      vh_val_release(out);
    } else {
      ASSERT_EQ(rc, VH_ENOMEM);
      ASSERT_EQ(out.type, VH_TNIL);
    }
    ASSERT_CLEAN();
  }
  ASSERT(ok);
  free(p);
}

VH_TEST_MAIN(TEST_ENTRY(layout), TEST_ENTRY(random_roundtrip),
             TEST_ENTRY(floats_and_keys), TEST_ENTRY(deep_nesting),
             TEST_ENTRY(truncations), TEST_ENTRY(flips_and_garbage),
             TEST_ENTRY(malformed), TEST_ENTRY(decode_oom))
