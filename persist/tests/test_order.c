/*
 * test_order.c - pairs order over state is deterministic (README
 * "Deterministic slices"): two tables with the same contents, built by
 * inserting (and deleting) the same keys in different random orders,
 * iterate (vh_iter, what pairs/next use) in exactly the same order. The
 * CHAMP hash part is canonical (a key's place depends only on its hash
 * and the other keys present); the array part holds 1..n whatever order
 * they came in (keys that arrive above n+1 wait in the hash part and move
 * into the array when the gap closes); collision nodes (two keys with one
 * 32-bit hash) are kept sorted. Checked for integers (dense, sparse,
 * negative), floats, strings and booleans, at sizes that make deep tries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trie_util.h"
#include "vh_test.h"

static uint64_t rs = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

static vh_val_t key_of(int i) {
  switch (i % 5) {
    case 0:
      return vh_int(i / 5 + 1); /* dense 1..n: the array part */
    case 1:
      return vh_int(-(int64_t)i * 7919); /* sparse and negative */
    case 2:
      return vh_float(i + 0.25);
    case 3: {
      char b[32];
      snprintf(b, sizeof b, "k%d", i);
      return tu_str(b);
    }
    default:
      return i == 4 ? vh_bool(1) : i == 9 ? vh_bool(0) : vh_int(i * 1000003LL);
  }
}

/* t[key_of(i)] = v (keys are borrowed by vh_tab_set: released here). */
static void set(vh_tab_t **t, int i, vh_val_t v, uint64_t e) {
  vh_val_t k = key_of(i);
  ASSERT_EQ(vh_tab_set(t, k, v, e), 0);
  vh_val_release(k);
}

/* A table of keys 0..n-1 (value i) in the order perm, with the keys of
 * extra inserted and then deleted again. */
static vh_tab_t *build(const int *perm, int n, const int *extra, int nx) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  for (int j = 0; j < nx; j++) set(&t, extra[j], vh_int(-1), e);
  for (int j = 0; j < n; j++) set(&t, perm[j], vh_int(perm[j]), e);
  for (int j = 0; j < nx; j++) set(&t, extra[j], vh_nil(), e);
  return t;
}

static void shuffle(int *a, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(rnd() % (uint64_t)(i + 1)), x = a[i];
    a[i] = a[j];
    a[j] = x;
  }
}

static void same_order(int n) {
  int *p1 = malloc(sizeof(int) * (size_t)n),
      *p2 = malloc(sizeof(int) * (size_t)n);
  int ex[64];
  for (int i = 0; i < n; i++) p1[i] = p2[i] = i;
  for (int i = 0; i < 64; i++) ex[i] = n + (int)(rnd() % 1000);
  shuffle(p2, n);
  if (n > 1) { /* one of them in reverse, too */
    for (int i = 0; i < n / 2; i++) {
      int x = p1[i];
      p1[i] = p1[n - 1 - i];
      p1[n - 1 - i] = x;
    }
  }
  vh_tab_t *a = build(p1, n, NULL, 0), *b = build(p2, n, ex, 64);
  vh_iter_t ia, ib;
  vh_val_t ka, va, kb, vb;
  vh_iter_init(&ia, a);
  vh_iter_init(&ib, b);
  int count = 0;
  for (;;) {
    int ha = vh_iter_next(&ia, &ka, &va), hb = vh_iter_next(&ib, &kb, &vb);
    ASSERT_EQ(ha, hb);
    if (!ha) break;
    ASSERT_EQ(vh_val_equal(ka, kb), 1);
    ASSERT_EQ(va.u.i, vb.u.i);
    count++;
  }
  ASSERT_EQ(count, n);
  vh_tab_release(a);
  vh_tab_release(b);
  free(p1);
  free(p2);
}

TEST_IMPL(pairs_order_independent_of_build_order) {
  static const int sizes[] = {0, 1, 2, 5, 33, 100, 1057, 20000};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
    for (int r = 0; r < 3; r++) same_order(sizes[i]);
}

VH_TEST_MAIN(TEST_ENTRY(pairs_order_independent_of_build_order))
