/*
 * test_trie.c - unit tests of the persistent trie (persist/trie/vh_trie.h):
 * big maps, collisions, canonical form, iteration, transients, rollback,
 * refcounts, array semantics, nesting, and a randomized differential test
 * against a plain model. Allocation-failure tests are in test_trie_oom.c.
 */
#include <math.h>

#include "trie_util.h"

/* ---- 1M mixed keys ---- */

/* Key number i: strings, positive and negative ints, floats. */
static vh_val_t big_key(int64_t i, char *buf) {
  switch (i % 4) {
    case 0:
      snprintf(buf, 32, "key%lld", (long long)i);
      return tu_str(buf);
    case 1:
      return vh_int(-i);
    case 2:
      return vh_int(i * 3 + 10);
    default:
      return vh_float((double)i + 0.5);
  }
}

TEST_IMPL(big_mixed_1m) {
  const int64_t N = 1000000;
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  char buf[32];
  int64_t i;
  vh_val_t k, v;
  ASSERT_PTR_NE(t, NULL);
  for (i = 0; i < N; i++) {
    k = big_key(i, buf);
    ASSERT_EQ(vh_tab_set(&t, k, vh_int(i), e), 0);
    vh_val_release(k);
  }
  ASSERT_CHECK(t);
  ASSERT_EQ(vh_tab_count(t), N);
  ASSERT_EQ(vh_tab_len(t), 0);
  printf("# 1M mixed keys: %zu bytes accounted (%.1f per entry), %zu nodes\n",
         vh_mem_bytes(), (double)vh_mem_bytes() / (double)N,
         vh_trie_live_nodes());
  for (i = 0; i < N; i++) {
    k = big_key(i, buf);
    vh_tab_get(t, k, &v);
    ASSERT_EQ(v.type, VH_TINT);
    ASSERT_EQ(v.u.i, i);
    if (i % 4 == 0) {
      v = tu_get_s(t, buf);
      ASSERT_EQ(v.type, VH_TINT);
      ASSERT_EQ(v.u.i, i);
    }
    vh_val_release(k);
  }
  /* Absent keys. */
  ASSERT_EQ(tu_get_s(t, "key1").type, VH_TNIL);
  ASSERT_EQ(tu_get_i(t, 11).type, VH_TNIL);
  /* Delete the odd ones (with a fresh token: path copying). */
  e = vh_edit_new();
  for (i = 1; i < N; i += 2) {
    k = big_key(i, buf);
    ASSERT_EQ(vh_tab_set(&t, k, vh_nil(), e), 0);
    vh_val_release(k);
  }
  ASSERT_CHECK(t);
  ASSERT_EQ(vh_tab_count(t), N / 2);
  for (i = 0; i < N; i++) {
    k = big_key(i, buf);
    vh_tab_get(t, k, &v);
    if (i % 2) {
      ASSERT_EQ(v.type, VH_TNIL);
    } else {
      ASSERT_EQ(v.type, VH_TINT);
      ASSERT_EQ(v.u.i, i);
    }
    vh_val_release(k);
  }
  for (i = 0; i < N; i += 2) {
    k = big_key(i, buf);
    ASSERT_EQ(vh_tab_set(&t, k, vh_nil(), e), 0);
    vh_val_release(k);
  }
  ASSERT_CHECK(t);
  ASSERT_EQ(vh_tab_count(t), 0);
  ASSERT_EQ(vh_trie_live_nodes(), 1); /* the table node alone */
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* ---- collisions ---- */

static uint32_t hash_and3(vh_val_t k) {
  if (k.type == VH_TINT) return (uint32_t)(k.u.i & 3);
  if (k.type == VH_TSTR)
    return vh_hash_bytes(vh_str_data(k.u.s), vh_str_len(k.u.s)) & 3;
  return 1;
}
static uint32_t hash_const(vh_val_t k) {
  (void)k;
  return 0xCAFEBABEu;
}
/* Equal low 30 bits, two distinct top bits: splits at level 6 only. */
static uint32_t hash_top(vh_val_t k) {
  uint32_t x = k.type == VH_TINT ? (uint32_t)k.u.i : 5;
  return 0x15555555u | ((x & 3) << 30);
}

static void collide_with(vh_hash_fn fn) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t, *base;
  int64_t i, n = 1500;
  char buf[32];
  vh_val_t v;
  ASSERT_CLEAN();
  vh_trie_set_test_hash(fn);
  t = vh_tab_new(e);
  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "s%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_int(100 + i), vh_int(-i), e), 0);
  }
  ASSERT_CHECK(t);
  ASSERT_EQ(vh_tab_count(t), 2 * n);
  base = t;
  vh_tab_retain(base);
  e = vh_edit_new();
  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "s%lld", (long long)i);
    v = tu_get_s(t, buf);
    ASSERT_EQ(v.type, VH_TINT);
    ASSERT_EQ(v.u.i, i);
    v = tu_get_i(t, 100 + i);
    ASSERT_EQ(v.u.i, -i);
    if (i % 3 == 0) { /* delete a third of both kinds, overwrite some */
      ASSERT_EQ(tu_set_s(&t, buf, vh_nil(), e), 0);
      ASSERT_EQ(vh_tab_set(&t, vh_int(100 + i), vh_nil(), e), 0);
    } else if (i % 3 == 1) {
      ASSERT_EQ(vh_tab_set(&t, vh_int(100 + i), vh_int(7), e), 0);
    }
    if (i % 250 == 0) ASSERT_CHECK(t);
  }
  ASSERT_CHECK(t);
  ASSERT_CHECK(base);
  ASSERT_EQ(vh_tab_count(t), 2 * (n - n / 3));
  ASSERT_EQ(vh_tab_count(base), 2 * n);
  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "s%lld", (long long)i);
    v = tu_get_s(t, buf);
    ASSERT_EQ(v.type, i % 3 == 0 ? VH_TNIL : VH_TINT);
    v = tu_get_i(t, 100 + i);
    if (i % 3 == 1) ASSERT_EQ(v.u.i, 7);
    v = tu_get_i(base, 100 + i);
    ASSERT_EQ(v.u.i, -i);
  }
  /* Delete everything left. */
  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "s%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_nil(), e), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_int(100 + i), vh_nil(), e), 0);
  }
  ASSERT_CHECK(t);
  ASSERT_EQ(vh_tab_count(t), 0);
  vh_tab_release(t);
  vh_tab_release(base);
  ASSERT_CLEAN();
  vh_trie_set_test_hash(NULL);
}

TEST_IMPL(collisions_and3) {
  collide_with(hash_and3);
}
TEST_IMPL(collisions_const) {
  collide_with(hash_const);
}
TEST_IMPL(collisions_level6) {
  collide_with(hash_top);
}

/* ---- canonical form and iteration order ---- */

/* Sequence of (key) in iteration order must be identical. */
static void assert_same_order(const vh_tab_t *a, const vh_tab_t *b) {
  vh_iter_t ia, ib;
  vh_val_t ka, va, kb, vb;
  int ra, rb;
  vh_iter_init(&ia, a);
  vh_iter_init(&ib, b);
  for (;;) {
    ra = vh_iter_next(&ia, &ka, &va);
    rb = vh_iter_next(&ib, &kb, &vb);
    ASSERT_EQ(ra, rb);
    if (ra == 0) break;
    ASSERT(vh_val_equal(ka, kb));
    ASSERT(vh_val_equal(va, vb));
  }
}

/* Both hash parts have identical shapes (bitmaps, counts) at every node. */
static int same_shape(const vh_node_t *a, const vh_node_t *b) {
  int i, nd, nc;
  const vh_champ_t *ca, *cb;
  if (a == NULL || b == NULL) return a == b;
  if (a->kind != b->kind) return 0;
  if (a->kind == VH_K_COLL)
    return ((const vh_coll_t *)a)->count == ((const vh_coll_t *)b)->count;
  ca = (const vh_champ_t *)a;
  cb = (const vh_champ_t *)b;
  if (ca->datamap != cb->datamap || ca->nodemap != cb->nodemap) return 0;
  nd = __builtin_popcount(ca->datamap);
  nc = __builtin_popcount(ca->nodemap);
  for (i = 0; i < nc; i++)
    if (!same_shape(((vh_node_t *const *)(ca->kv + 2 * nd))[i],
                    ((vh_node_t *const *)(cb->kv + 2 * nd))[i]))
      return 0;
  return 1;
}

static void canonical_with(vh_hash_fn fn) {
  uint64_t e = vh_edit_new();
  vh_tab_t *ab = vh_tab_new(e), *a = vh_tab_new(e);
  int64_t i, n = 3000;
  char buf[32];
  vh_trie_set_test_hash(fn);
  /* A = strings a0.. and ints 1000+2i; B = strings b0.. and ints 1001+2i.
   * ab gets A and B interleaved, a gets A in reverse order. */
  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "b%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&ab, buf, vh_int(i), e), 0);
    snprintf(buf, sizeof buf, "a%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&ab, buf, vh_int(i), e), 0);
    ASSERT_EQ(vh_tab_set(&ab, vh_int(1001 + 2 * i), vh_int(i), e), 0);
    ASSERT_EQ(vh_tab_set(&ab, vh_int(1000 + 2 * i), vh_int(i), e), 0);
  }
  for (i = n - 1; i >= 0; i--) {
    snprintf(buf, sizeof buf, "a%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&a, buf, vh_int(i), e), 0);
    ASSERT_EQ(vh_tab_set(&a, vh_int(1000 + 2 * i), vh_int(i), e), 0);
  }
  e = vh_edit_new(); /* deletes with path copying, then in place */
  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "b%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&ab, buf, vh_nil(), e), 0);
    ASSERT_EQ(vh_tab_set(&ab, vh_int(1001 + 2 * i), vh_nil(), e), 0);
  }
  ASSERT_CHECK(ab);
  ASSERT_CHECK(a);
  ASSERT_EQ(vh_tab_count(ab), vh_tab_count(a));
  ASSERT(same_shape(ab->hash, a->hash));
  assert_same_order(ab, a);
  ASSERT(vh_val_equal(tu_tab(ab), tu_tab(a)));
  vh_tab_release(ab);
  vh_tab_release(a);
  ASSERT_CLEAN();
  vh_trie_set_test_hash(NULL);
}

TEST_IMPL(canonical_after_delete) {
  canonical_with(NULL);
}
TEST_IMPL(canonical_after_delete_collisions) {
  canonical_with(hash_and3);
}
TEST_IMPL(canonical_after_delete_const) {
  canonical_with(hash_const);
}

TEST_IMPL(iteration_order_stable) {
  uint64_t e = vh_edit_new();
  vh_tab_t *x = vh_tab_new(e), *y = vh_tab_new(e);
  int64_t i, n = 20000, j;
  char buf[32];
  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof buf, "k%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&x, buf, vh_int(i), e), 0);
  }
  /* y: a permutation (stride coprime with n), values first wrong. */
  for (i = 0; i < n; i++) {
    j = (i * 7919) % n;
    snprintf(buf, sizeof buf, "k%lld", (long long)j);
    ASSERT_EQ(tu_set_s(&y, buf, vh_int(-1), e), 0);
    ASSERT_EQ(tu_set_s(&y, buf, vh_int(j), e), 0);
  }
  assert_same_order(x, y);
  ASSERT(same_shape(x->hash, y->hash));
  vh_tab_release(x);
  vh_tab_release(y);
  ASSERT_CLEAN();
}

/* ---- transients ---- */

TEST_IMPL(transients) {
  uint64_t e1 = vh_edit_new(), e2, e3;
  vh_tab_t *t = vh_tab_new(e1), *base, *t2, *snap;
  uint64_t sum_base;
  int64_t i;
  char buf[32];
  for (i = 0; i < 5000; i++) {
    snprintf(buf, sizeof buf, "k%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e1), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_int(i + 1), vh_int(i), e1), 0);
  }
  /* Same token: in place, pointer unchanged. */
  t2 = t;
  ASSERT_EQ(tu_set_s(&t, "k1", vh_int(-1), e1), 0);
  ASSERT_EQ(tu_set_s(&t, "new", vh_int(1), e1), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(3), vh_int(-3), e1), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(5001), vh_int(5001), e1), 0);
  ASSERT_PTR_EQ(t, t2);
  ASSERT_EQ(vh_tab_edit(t), e1);

  base = t;
  vh_tab_retain(base);
  sum_base = tu_sum(base);
  e2 = vh_edit_new();
  /* New token: the first write copies, later ones work in place. */
  ASSERT_EQ(tu_set_s(&t, "k2", vh_int(-2), e2), 0);
  ASSERT_PTR_NE(t, base);
  ASSERT_EQ(vh_tab_edit(t), e2);
  t2 = t;
  for (i = 0; i < 5000; i += 7) {
    snprintf(buf, sizeof buf, "k%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, i % 2 ? vh_nil() : vh_int(-i), e2), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_int(i + 1), vh_int(-i), e2), 0);
  }
  ASSERT_EQ(vh_tab_insert(&t, 1, vh_int(77), e2), 0);
  ASSERT_PTR_EQ(t, t2);
  ASSERT_EQ(sum_base, tu_sum(base)); /* the old version is intact */
  ASSERT_CHECK(base);
  ASSERT_CHECK(t);
  ASSERT_EQ(tu_get_s(base, "k2").u.i, 2);
  ASSERT_EQ(tu_get_s(base, "k1").u.i, -1);
  ASSERT_EQ(tu_get_i(base, 3).u.i, -3);
  ASSERT_EQ(tu_get_i(t, 1).u.i, 77);
  ASSERT_EQ(tu_get_i(t, 2).u.i, 0);

  /* A snapshot pinned while a third token writes. */
  snap = t;
  vh_tab_retain(snap);
  {
    uint64_t sum_snap = tu_sum(snap);
    e3 = vh_edit_new();
    for (i = 0; i < 3000; i++)
      ASSERT_EQ(vh_tab_remove(&t, 1, &(vh_val_t){0}, e3) < 0, 0);
    ASSERT_EQ(sum_snap, tu_sum(snap));
    ASSERT_EQ(sum_base, tu_sum(base));
    ASSERT_CHECK(t);
    ASSERT_EQ(vh_tab_len(t), vh_tab_len(snap) - 3000);
  }
  vh_tab_release(snap);
  vh_tab_release(base);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* deepcopy_max walks any height without recursion and refuses a tree
 * taller than asked, leaving nothing behind. */
TEST_IMPL(deepcopy_max_height) {
  uint64_t e = vh_edit_new();
  const int H = 300000;
  vh_tab_t *t = vh_tab_new(e), *c = NULL;
  ASSERT_EQ(tu_set_s(&t, "leaf", vh_int(7), e), 0);
  for (int i = 1; i < H; i++) { /* t has height i + 1 after this step */
    vh_tab_t *up = vh_tab_new(e);
    ASSERT_EQ(tu_set_s(&up, "d", tu_tab(t), e), 0);
    ASSERT_EQ(vh_tab_set(&up, vh_int(1), vh_int(i), e), 0);
    t = up;
  }
  size_t live = vh_trie_live_nodes();
  ASSERT_EQ(vh_tab_deepcopy_max(t, vh_edit_new(), H - 1, &c), VH_EDEPTH);
  ASSERT_PTR_EQ(c, NULL);
  ASSERT_EQ(vh_trie_live_nodes(), live);
  ASSERT_EQ(vh_tab_deepcopy_max(t, vh_edit_new(), H, &c), 0);
  ASSERT_PTR_NE(c, NULL);
  vh_tab_t *d = vh_tab_deepcopy(t, vh_edit_new()); /* no limit */
  ASSERT_PTR_NE(d, NULL);
  const vh_tab_t *a = c, *b = d;
  for (int i = H - 1; i >= 1; i--) {
    ASSERT_EQ(tu_get_i(a, 1).u.i, i);
    ASSERT_EQ(tu_get_i(b, 1).u.i, i);
    a = tu_get_s(a, "d").u.t;
    b = tu_get_s(b, "d").u.t;
  }
  ASSERT_EQ(tu_get_s(a, "leaf").u.i, 7);
  ASSERT_EQ(tu_get_s(b, "leaf").u.i, 7);
  vh_tab_release(t);
  vh_tab_release(c);
  vh_tab_release(d);
  ASSERT_CLEAN();
}

/* Clone detaches; deepcopy shares nothing. */
TEST_IMPL(clone_and_deepcopy) {
  uint64_t e = vh_edit_new(), e2;
  vh_tab_t *t = vh_tab_new(e), *in = vh_tab_new(e), *c, *d;
  uint64_t sum;
  ASSERT_EQ(tu_set_s(&in, "x", vh_int(1), e), 0);
  ASSERT_EQ(vh_tab_set(&in, vh_int(1), tu_str("one"), e), 0);
  ASSERT_EQ(tu_set_s(&t, "in", tu_tab(in), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(1), vh_int(10), e), 0);
  sum = tu_sum(t);
  e2 = vh_edit_new();
  c = vh_tab_clone(t, e2);
  ASSERT_PTR_NE(c, NULL);
  ASSERT_EQ(vh_tab_edit(c), e2);
  ASSERT_EQ(tu_set_s(&c, "y", vh_int(2), e2), 0);
  ASSERT_EQ(tu_get_s(t, "y").type, VH_TNIL);
  ASSERT_EQ(tu_get_s(c, "y").u.i, 2);
  ASSERT_EQ(sum, tu_sum(t));

  d = vh_tab_deepcopy(t, e2);
  ASSERT_PTR_NE(d, NULL);
  ASSERT(vh_val_equal(tu_tab(d), tu_tab(t)));
  {
    vh_val_t din = tu_get_s(d, "in"), tin = tu_get_s(t, "in");
    vh_tab_t *dt = din.u.t;
    ASSERT_EQ(din.type, VH_TTAB);
    ASSERT_PTR_NE(din.u.t, tin.u.t);
    ASSERT_PTR_NE(d->hash, t->hash);
    ASSERT_PTR_NE(dt->arr.tail, tin.u.t->arr.tail);
    /* Writing into the copy's nested table leaves the original alone. */
    ASSERT_EQ(tu_set_s(&dt, "x", vh_int(99), e2), 0);
    ASSERT_PTR_EQ(dt, din.u.t); /* deepcopy nodes carry e2 */
    ASSERT_EQ(tu_get_s(tin.u.t, "x").u.i, 1);
    ASSERT(!vh_val_equal(tu_tab(d), tu_tab(t)));
  }
  ASSERT_EQ(sum, tu_sum(t));
  ASSERT_CHECK(d);
  vh_tab_release(t);
  vh_tab_release(c);
  vh_tab_release(d);
  ASSERT_CLEAN();
}

/* ---- rollback and refcounts ---- */

TEST_IMPL(rollback) {
  uint64_t e = vh_edit_new(), e2;
  vh_tab_t *t = vh_tab_new(e), *base;
  size_t bytes, live;
  uint64_t sum;
  int64_t i;
  char buf[32];
  for (i = 0; i < 20000; i++) {
    snprintf(buf, sizeof buf, "k%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, tu_str(buf), e), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_int(i + 1), vh_int(i), e), 0);
  }
  base = t;
  vh_tab_retain(base);
  bytes = vh_mem_bytes();
  live = vh_trie_live_nodes();
  sum = tu_sum(base);
  e2 = vh_edit_new();
  for (i = 0; i < 20000; i += 3) {
    vh_tab_t *in = vh_tab_new(e2);
    snprintf(buf, sizeof buf, "k%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, i % 2 ? vh_nil() : tu_tab(in), e2), 0);
    if (i % 2) vh_tab_release(in);
    snprintf(buf, sizeof buf, "n%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e2), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_int(i + 1), vh_nil(), e2), 0);
  }
  ASSERT_EQ(vh_tab_insert(&t, 5, vh_int(5), e2), 0);
  ASSERT_EQ(vh_tab_remove(&t, 9, &(vh_val_t){0}, e2), 0);
  for (i = 0; i < 100; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(vh_tab_len(t)), vh_nil(), e2), 0);
  ASSERT_CHECK(t);
  vh_tab_release(t); /* rollback */
  t = base;
  ASSERT_EQ(vh_mem_bytes(), bytes);
  ASSERT_EQ(vh_trie_live_nodes(), live);
  ASSERT_EQ(sum, tu_sum(t));
  ASSERT_EQ(t->h.refc, 1);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(refcounts_many_versions) {
  uint64_t e = vh_edit_new();
  vh_tab_t *v[50];
  int i, j;
  char buf[32];
  v[0] = vh_tab_new(e);
  for (i = 1; i < 50; i++) {
    e = vh_edit_new();
    v[i] = v[i - 1];
    vh_tab_retain(v[i]);
    for (j = 0; j < 200; j++) {
      snprintf(buf, sizeof buf, "k%d", (j * 31 + i) % 500);
      ASSERT_EQ(tu_set_s(&v[i], buf, (i + j) % 5 ? tu_str(buf) : vh_nil(), e),
                0);
      ASSERT_EQ(vh_tab_set(&v[i], vh_int((j * 17 + i) % 90 + 1),
                           (i + j) % 7 ? vh_int(j) : vh_nil(), e),
                0);
    }
    ASSERT_CHECK(v[i]);
  }
  /* Release in a scrambled order; all others stay valid meanwhile. */
  for (i = 0; i < 50; i++) {
    int k = (i * 13) % 50;
    vh_tab_release(v[k]);
    v[k] = NULL;
    for (j = 0; j < 50; j++)
      if (v[j] != NULL && j % 10 == 0) ASSERT_CHECK(v[j]);
  }
  ASSERT_CLEAN();
}

/* ---- array part semantics ---- */

TEST_IMPL(array_border_and_holes) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  vh_val_t r;
  int64_t i;
  /* 2 and 3 go to the hash part, 1 appends and pulls them over. */
  ASSERT_EQ(vh_tab_set(&t, vh_int(3), vh_int(3), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(2), vh_int(2), e), 0);
  ASSERT_EQ(vh_tab_len(t), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(5), vh_int(5), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(1), vh_int(1), e), 0);
  ASSERT_EQ(vh_tab_len(t), 3);
  ASSERT_EQ(t->hcount, 1);
  ASSERT_CHECK(t);
  ASSERT_EQ(vh_tab_set(&t, vh_int(4), vh_int(4), e), 0);
  ASSERT_EQ(vh_tab_len(t), 5);
  ASSERT_EQ(t->hcount, 0);
  /* A hole inside; then pop trims trailing nils. */
  ASSERT_EQ(vh_tab_set(&t, vh_int(3), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(4), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 5);
  ASSERT_EQ(vh_tab_count(t), 3);
  ASSERT_EQ(vh_tab_set(&t, vh_int(5), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 2);
  ASSERT_CHECK(t);
  /* Setting n+1 to nil changes nothing. */
  ASSERT_EQ(vh_tab_set(&t, vh_int(3), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 2);
  ASSERT_EQ(vh_tab_set(&t, vh_int(1), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 2);
  ASSERT_EQ(vh_tab_set(&t, vh_int(2), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 0);
  ASSERT_EQ(vh_tab_count(t), 0);
  ASSERT_CHECK(t);
  /* Grow big (tree levels), punch holes, pop back down. */
  for (i = 1; i <= 40000; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i * 2), e), 0);
  ASSERT_EQ(vh_tab_len(t), 40000);
  ASSERT_CHECK(t);
  for (i = 20000; i <= 39999; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 40000);
  ASSERT_EQ(vh_tab_set(&t, vh_int(40000), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 19999);
  ASSERT_EQ(vh_tab_count(t), 19999);
  ASSERT_CHECK(t);
  for (i = 1; i <= 19999; i++) ASSERT_EQ(tu_get_i(t, i).u.i, i * 2);
  /* table.remove at the end many times with a fresh token. */
  e = vh_edit_new();
  for (i = 19999; i >= 1; i--) {
    ASSERT_EQ(vh_tab_remove(&t, i, &r, e), 0);
    ASSERT_EQ(r.u.i, i * 2);
    ASSERT_EQ(vh_tab_len(t), i - 1);
    if (i % 1000 == 0) ASSERT_CHECK(t);
  }
  ASSERT_EQ(vh_tab_remove(&t, 0, &r, e), 0); /* empty: nil */
  ASSERT_EQ(r.type, VH_TNIL);
  ASSERT_EQ(vh_tab_remove(&t, 2, &r, e), VH_ERANGE);
  ASSERT_EQ(vh_tab_insert(&t, 2, vh_int(1), e), VH_ERANGE);
  ASSERT_CHECK(t);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(insert_remove_shift) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  vh_val_t r;
  int64_t i;
  for (i = 1; i <= 100; i++)
    ASSERT_EQ(vh_tab_insert(&t, 1, vh_int(i), e), 0); /* 100 .. 1 */
  ASSERT_EQ(vh_tab_len(t), 100);
  for (i = 1; i <= 100; i++) ASSERT_EQ(tu_get_i(t, i).u.i, 101 - i);
  ASSERT_EQ(vh_tab_insert(&t, 50, tu_str("mid"), e), 0);
  ASSERT_EQ(tu_get_i(t, 50).type, VH_TSTR);
  ASSERT_EQ(tu_get_i(t, 51).u.i, 51);
  ASSERT_EQ(tu_get_i(t, 101).u.i, 1);
  ASSERT_EQ(vh_tab_remove(&t, 50, &r, e), 0);
  ASSERT_STR_EQ(vh_str_data(r.u.s), "mid");
  vh_val_release(r);
  ASSERT_EQ(vh_tab_len(t), 100);
  ASSERT_EQ(tu_get_i(t, 50).u.i, 51);
  /* Insert shifting into the key n+2 that waits in the hash part. */
  ASSERT_EQ(vh_tab_set(&t, vh_int(102), vh_int(102), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(103), vh_int(103), e), 0);
  ASSERT_EQ(vh_tab_len(t), 100);
  ASSERT_EQ(vh_tab_insert(&t, 1, vh_int(0), e), 0);
  ASSERT_EQ(vh_tab_len(t), 103);
  ASSERT_EQ(t->hcount, 0);
  ASSERT_CHECK(t);
  /* A nil insert makes a hole; removing before it shifts the hole. */
  ASSERT_EQ(vh_tab_insert(&t, 3, vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 104);
  ASSERT_EQ(tu_get_i(t, 3).type, VH_TNIL);
  ASSERT_EQ(vh_tab_remove(&t, 1, &r, e), 0);
  ASSERT_EQ(r.u.i, 0);
  ASSERT_EQ(tu_get_i(t, 2).type, VH_TNIL);
  ASSERT_EQ(vh_tab_count(t), 102);
  /* Remove just before trailing holes trims them. */
  ASSERT_EQ(vh_tab_set(&t, vh_int(102), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(101), vh_nil(), e), 0);
  ASSERT_EQ(vh_tab_len(t), 103);
  ASSERT_EQ(vh_tab_remove(&t, 103, &r, e), 0);
  ASSERT_EQ(r.u.i, 103);
  ASSERT_EQ(vh_tab_len(t), 100);
  ASSERT_CHECK(t);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(keys_normalization) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  vh_val_t k, v;
  k = vh_float(2.0);
  ASSERT_EQ(vh_key_norm(&k), 0);
  ASSERT_EQ(k.type, VH_TINT);
  ASSERT_EQ(k.u.i, 2);
  k = vh_float(-0.0);
  ASSERT_EQ(vh_key_norm(&k), 0);
  ASSERT_EQ(k.type, VH_TINT);
  ASSERT_EQ(k.u.i, 0);
  k = vh_float(NAN);
  ASSERT_EQ(vh_key_norm(&k), VH_EKEY);
  k = vh_nil();
  ASSERT_EQ(vh_key_norm(&k), VH_EKEY);
  k = vh_float(1e300); /* integral but beyond int64: stays a float */
  ASSERT_EQ(vh_key_norm(&k), 0);
  ASSERT_EQ(k.type, VH_TFLOAT);

  ASSERT_EQ(vh_tab_set(&t, vh_float(2.0), vh_int(20), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_float(-0.0), vh_int(0), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_float(2.5), vh_int(25), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_float(1e300), vh_int(300), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_bool(1), vh_int(1), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_bool(0), vh_int(0), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_float(NAN), vh_int(1), e), VH_EKEY);
  ASSERT_EQ(vh_tab_set(&t, vh_nil(), tu_str("released"), e), VH_EKEY);
  ASSERT_EQ(tu_get_i(t, 2).u.i, 20);
  ASSERT_EQ(tu_get_i(t, 0).u.i, 0);
  vh_tab_get(t, vh_float(2.5), &v);
  ASSERT_EQ(v.u.i, 25);
  vh_tab_get(t, vh_bool(1), &v);
  ASSERT_EQ(v.u.i, 1);
  ASSERT_EQ(vh_tab_count(t), 6);
  ASSERT_CHECK(t);
  /* 1.0 appends to the array part and moves 2 over. */
  ASSERT_EQ(vh_tab_set(&t, vh_float(1.0), vh_int(10), e), 0);
  ASSERT_EQ(vh_tab_len(t), 2);
  ASSERT_CHECK(t);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* ---- next / iter ---- */

TEST_IMPL(next_and_iter_agree) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  vh_iter_t it;
  vh_val_t k, v, k2, v2, nk, nv;
  size_t seen = 0;
  int64_t i;
  char buf[32];
  for (i = 1; i <= 300; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i), e), 0);
  for (i = 5; i <= 300; i += 5)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_nil(), e), 0);
  for (i = 0; i < 5000; i++) {
    snprintf(buf, sizeof buf, "h%lld", (long long)i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_float(i + 0.25), vh_int(i), e), 0);
  }
  ASSERT_EQ(vh_tab_set(&t, vh_bool(1), vh_int(1), e), 0);
  vh_iter_init(&it, t);
  k = vh_nil();
  for (;;) {
    int r1 = vh_iter_next(&it, &k2, &v2);
    int r2 = vh_tab_next(t, k, &nk, &nv);
    ASSERT_EQ(r1, r2);
    if (r1 == 0) break;
    ASSERT(vh_val_equal(k2, nk));
    ASSERT(vh_val_equal(v2, nv));
    vh_tab_get(t, nk, &v);
    ASSERT(vh_val_equal(v, nv));
    ASSERT_NE(nv.type, VH_TNIL);
    k = nk;
    seen++;
  }
  ASSERT_EQ(seen, vh_tab_count(t));
  /* Every key once: delete each key as we walk a pinned copy. */
  {
    vh_tab_t *pin = t, *w = t;
    uint64_t e2 = vh_edit_new();
    vh_tab_retain(pin);
    vh_iter_init(&it, pin);
    while (vh_iter_next(&it, &k, &v)) {
      size_t before = vh_tab_count(w);
      ASSERT_EQ(vh_tab_set(&w, k, vh_nil(), e2), 0);
      ASSERT_EQ(vh_tab_count(w), before - 1);
    }
    ASSERT_EQ(vh_tab_count(w), 0);
    ASSERT_CHECK(pin);
    vh_tab_release(pin);
    t = w;
  }
  ASSERT_EQ(vh_tab_next(t, vh_int(1000), &nk, &nv), VH_ENOTFOUND);
  ASSERT_EQ(vh_tab_next(t, vh_nil(), &nk, &nv), 0);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* ---- nesting ---- */

TEST_IMPL(deep_nesting_release) {
  uint64_t e = vh_edit_new();
  vh_tab_t *cur = vh_tab_new(e), *parent, *copy;
  int i;
  for (i = 0; i < 10000; i++) {
    parent = vh_tab_new(e);
    ASSERT_PTR_NE(parent, NULL);
    ASSERT_EQ(tu_set_s(&parent, "x", tu_tab(cur), e), 0);
    ASSERT_EQ(vh_tab_set(&parent, vh_int(1), vh_int(i), e), 0);
    cur = parent;
  }
  copy = vh_tab_deepcopy(cur, vh_edit_new());
  ASSERT_PTR_NE(copy, NULL);
  ASSERT(vh_val_equal(tu_tab(copy), tu_tab(cur)));
  vh_tab_release(cur);
  vh_tab_release(copy);
  ASSERT_CLEAN();
}

/* ---- randomized differential test against a plain model ---- */

#define M_STRS 40
#define M_NIL INT64_MIN
#define M_MAXI 2200

static int M_INTS = 90; /* int keys -4 .. M_INTS-5 */

typedef struct model {
  int64_t iv[M_MAXI];
  int64_t sv[M_STRS];
} model_t;

static uint64_t rng_state = 0x12345678abcdefull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static vh_val_t mval(int64_t x) {
  char buf[32];
  if (x == M_NIL) return vh_nil();
  if (x % 5 == 0) { /* some string values, for refcounting */
    snprintf(buf, sizeof buf, "v%lld", (long long)x);
    return tu_str(buf);
  }
  return vh_int(x);
}

static int64_t unval(vh_val_t v) {
  if (v.type == VH_TNIL) return M_NIL;
  if (v.type == VH_TSTR) return strtoll(vh_str_data(v.u.s) + 1, NULL, 10);
  return v.u.i;
}

static void model_verify(const vh_tab_t *t, const model_t *m) {
  size_t cnt = 0, seen = 0;
  int64_t i, n;
  char buf[16];
  vh_iter_t it;
  vh_val_t k, v;
  ASSERT_CHECK(t);
  for (i = 0; i < M_INTS; i++) {
    ASSERT_EQ(unval(tu_get_i(t, i - 4)), m->iv[i]);
    cnt += m->iv[i] != M_NIL;
  }
  for (i = 0; i < M_STRS; i++) {
    snprintf(buf, sizeof buf, "s%lld", (long long)i);
    ASSERT_EQ(unval(tu_get_s(t, buf)), m->sv[i]);
    cnt += m->sv[i] != M_NIL;
  }
  ASSERT_EQ(vh_tab_count(t), cnt);
  n = vh_tab_len(t);
  ASSERT(n == 0 || m->iv[n + 4] != M_NIL);
  ASSERT(n + 5 >= M_INTS || m->iv[n + 5] == M_NIL);
  vh_iter_init(&it, t);
  while (vh_iter_next(&it, &k, &v)) {
    if (k.type == VH_TINT)
      ASSERT_EQ(unval(v), m->iv[k.u.i + 4]);
    else
      ASSERT_EQ(unval(v), m->sv[atoi(vh_str_data(k.u.s) + 1)]);
    seen++;
  }
  ASSERT_EQ(seen, cnt);
}

static model_t m, saved_m[8];

/* Random sets, deletes, inserts and removes (with holes) on keys -4 ..
 * nints-5 and 40 strings, with versions pinned along the way; the table is
 * compared with the model every `every` steps and the pinned versions when
 * they are dropped. Int ops aim near the border half of the time. */
static void differential(int nints, int steps, int every) {
  vh_tab_t *t, *saved[8] = {0};
  uint64_t e = vh_edit_new();
  int step, i;
  int64_t maxlen = 0;
  char buf[16];
  M_INTS = nints;
  for (i = 0; i < M_INTS; i++) m.iv[i] = M_NIL;
  for (i = 0; i < M_STRS; i++) m.sv[i] = M_NIL;
  t = vh_tab_new(e);
  for (step = 0; step < 60000; step++) {
    uint64_t r = rnd();
    int op = (int)(r % 100);
    int64_t val = (rnd() % 3 == 0) ? M_NIL : (int64_t)(rnd() % 1000);
    int64_t n = vh_tab_len(t), p, j;
    if (op < 3) { /* pin a version, continue with a fresh token */
      int s = (int)(rnd() % 8);
      if (saved[s] != NULL) {
        model_verify(saved[s], &saved_m[s]);
        vh_tab_release(saved[s]);
      }
      saved[s] = t;
      vh_tab_retain(t);
      saved_m[s] = m;
      e = vh_edit_new();
    } else if (op < 50) {
      int64_t k = (int64_t)(rnd() % (uint64_t)M_INTS) - 4;
      if (op % 2 && n + 2 < M_INTS - 5) /* near the border */
        k = n - 2 + (int64_t)(rnd() % 5);
      if (k < -4) k = -4;
      ASSERT_EQ(vh_tab_set(&t, vh_int(k), mval(val), e), 0);
      m.iv[k + 4] = val;
      /* A border must exist for the model too: appends pull keys over. */
    } else if (op < 75) {
      int s = (int)(rnd() % M_STRS);
      snprintf(buf, sizeof buf, "s%d", s);
      ASSERT_EQ(tu_set_s(&t, buf, mval(val), e), 0);
      m.sv[s] = val;
    } else if (op < 87) {
      if (n + 5 >= M_INTS) continue;
      p = 1 + (int64_t)(rnd() % (uint64_t)(n + 1));
      ASSERT_EQ(vh_tab_insert(&t, p, mval(val), e), 0);
      for (j = n; j >= p; j--) m.iv[j + 1 + 4] = m.iv[j + 4];
      m.iv[p + 4] = val;
    } else {
      vh_val_t rv;
      if (n == 0) continue;
      p = 1 + (int64_t)(rnd() % (uint64_t)n);
      ASSERT_EQ(vh_tab_remove(&t, p, &rv, e), 0);
      ASSERT_EQ(unval(rv), m.iv[p + 4]);
      vh_val_release(rv);
      for (j = p; j < n; j++) m.iv[j + 4] = m.iv[j + 1 + 4];
      m.iv[n + 4] = M_NIL;
    }
    if (step % every == 0) model_verify(t, &m);
    if (vh_tab_len(t) > maxlen) maxlen = vh_tab_len(t);
  }
  model_verify(t, &m);
  printf("# differential(%d): max len %lld\n", nints, (long long)maxlen);
  for (i = 0; i < 8; i++) {
    if (saved[i] == NULL) continue;
    model_verify(saved[i], &saved_m[i]);
    vh_tab_release(saved[i]);
  }
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(random_differential) {
  differential(90, 60000, 7);
}
TEST_IMPL(random_differential_big) {
  differential(M_MAXI, 20000, 97);
}

VH_TEST_MAIN(TEST_ENTRY(big_mixed_1m), TEST_ENTRY(collisions_and3),
             TEST_ENTRY(collisions_const), TEST_ENTRY(collisions_level6),
             TEST_ENTRY(canonical_after_delete),
             TEST_ENTRY(canonical_after_delete_collisions),
             TEST_ENTRY(canonical_after_delete_const),
             TEST_ENTRY(iteration_order_stable), TEST_ENTRY(transients),
             TEST_ENTRY(clone_and_deepcopy), TEST_ENTRY(deepcopy_max_height),
             TEST_ENTRY(rollback), TEST_ENTRY(refcounts_many_versions),
             TEST_ENTRY(array_border_and_holes),
             TEST_ENTRY(insert_remove_shift), TEST_ENTRY(keys_normalization),
             TEST_ENTRY(next_and_iter_agree), TEST_ENTRY(deep_nesting_release),
             TEST_ENTRY(random_differential),
             TEST_ENTRY(random_differential_big))
