/*
 * test_ikey.c - inline keys (vh_trie_int.h, "Inline keys"): a string key of
 * at most VH_IKEY_MAX bytes is kept in its node's key slot instead of a
 * vh_str_t of its own, and becomes an ordinary string slot the first time
 * it is handed out (iteration, vh_tab_next, tdiff).
 *
 * What must hold: short keys take no allocation; both forms are one key
 * (lookups by value and by bytes, equality, order, hash); iteration hands
 * out VH_TSTR keys in the same order whatever the form; the codec writes
 * the same bytes for both forms and decodes short keys inline; collision
 * nodes keep their order with mixed forms; running out of memory while
 * handing a key out is a fault, never a leak or a change.
 */
#include <stdio.h>
#include <string.h>

#include "trie_util.h"
#include "vh_codec.h"

/* A string value of len bytes at p (binary: may hold NULs). */
static vh_val_t bstr(const char *p, size_t len) {
  vh_val_t v = vh_nil();
  v.type = VH_TSTR;
  v.u.s = vh_str_new(p, len);
  return v;
}

/* Key i of the test set (i < 2688), all distinct: lengths 1..20 in turn
 * (21 instead of 0, except for key 0, the empty string), NULs and high
 * bytes inside, the last byte telling keys of one length apart. */
static size_t key_i(int i, char *buf) {
  size_t len = (size_t)(i % 21), j;
  if (len == 0 && i > 0) len = 21;
  for (j = 0; j < len; j++)
    buf[j] = (char)((i * 31 + (int)j * 7) % 5 == 0 ? 0 : 'a' + (i + j) % 26);
  if (len > 0) buf[len - 1] = (char)(0x80 | (i / 21));
  return len;
}

static void set_i(vh_tab_t **t, int i, uint64_t e) {
  char buf[32];
  vh_val_t k = bstr(buf, key_i(i, buf));
  ASSERT(k.u.s != NULL);
  ASSERT_EQ(vh_tab_set(t, k, vh_int(i), e), 0);
  vh_val_release(k);
}

/* Blocks of the nodes of a hash tree (CHAMP and collision nodes). */
static size_t tree_nodes(const vh_node_t *n, size_t *strs) {
  size_t count = 1, i, nd;
  const vh_val_t *kv;
  if (n->kind == VH_K_COLL) {
    nd = ((const vh_coll_t *)n)->count;
    kv = ((const vh_coll_t *)n)->kv;
  } else {
    const vh_champ_t *c = (const vh_champ_t *)n;
    nd = (size_t)__builtin_popcount(c->datamap);
    kv = c->kv;
    for (i = 0; i < (size_t)__builtin_popcount(c->nodemap); i++)
      count += tree_nodes(((vh_node_t *const *)(kv + 2 * nd))[i], strs);
  }
  for (i = 0; i < nd; i++) *strs += kv[2 * i].type == VH_TSTR;
  return count;
}

enum { NKEYS = 2100 }; /* 100 keys of each length 0..20 */

/* Short keys take no block of their own: the table's blocks are its
 * nodes plus one string per key longer than VH_IKEY_MAX. */
TEST_IMPL(short_keys_take_no_block) {
  uint64_t e = vh_edit_new();
  size_t b0 = vh_mem_blocks(), strs = 0, nodes;
  vh_tab_t *t = vh_tab_new(e);
  int i, long_keys = 0;
  char buf[32];
  for (i = 0; i < NKEYS; i++) {
    set_i(&t, i, e);
    long_keys += key_i(i, buf) > VH_IKEY_MAX;
  }
  ASSERT_EQ(vh_tab_count(t), (size_t)NKEYS);
  nodes = tree_nodes(t->hash, &strs);
  ASSERT_EQ(strs, (size_t)long_keys);
  ASSERT_EQ(vh_mem_blocks() - b0, 1 + nodes + (size_t)long_keys);
  /* The bench's keys: "k0".."k999" hold no string at all. */
  {
    vh_tab_t *u = vh_tab_new(e);
    size_t b1 = vh_mem_blocks(), s1 = 0;
    for (i = 0; i < 1000; i++) {
      int len = snprintf(buf, sizeof buf, "k%d", i);
      vh_val_t k = bstr(buf, (size_t)len);
      ASSERT_EQ(vh_tab_set(&u, k, vh_int(i), e), 0);
      vh_val_release(k);
    }
    ASSERT_EQ(vh_mem_blocks() - b1, tree_nodes(u->hash, &s1));
    ASSERT_EQ(s1, 0);
    vh_tab_release(u);
  }
  ASSERT_CHECK(t);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* Both forms are the same key for every read and write. */
static void expect_all(const vh_tab_t *t, int n) {
  char buf[40];
  int i;
  for (i = 0; i < n; i++) {
    size_t len = key_i(i, buf);
    vh_val_t v, k = bstr(buf, len);
    vh_tab_get_str(t, buf, len, &v);
    ASSERT(v.type == VH_TINT && v.u.i == i);
    vh_tab_get(t, k, &v);
    ASSERT(v.type == VH_TINT && v.u.i == i);
    vh_val_release(k);
    /* Near misses: one more byte, one byte changed, one NUL more. */
    buf[len] = 'z';
    vh_tab_get_str(t, buf, len + 1, &v);
    ASSERT(v.type == VH_TNIL);
    buf[len] = '\0';
    vh_tab_get_str(t, buf, len + 1, &v);
    ASSERT(v.type == VH_TNIL);
    if (len > 0) {
      buf[len - 1] ^= (char)0x80; /* no key ends in a byte < 0x80 */
      vh_tab_get_str(t, buf, len, &v);
      ASSERT(v.type == VH_TNIL);
    }
  }
}

TEST_IMPL(both_forms_one_key) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e), *snap;
  vh_val_t k, v;
  vh_iter_t it;
  char buf[32];
  int i;
  for (i = 0; i < NKEYS; i++) set_i(&t, i, e);
  expect_all(t, NKEYS);
  /* Iterating turns every key into a string slot: the same reads work. */
  vh_iter_init(&it, t);
  for (i = 0; vh_iter_next(&it, &k, &v) == 1; i++) ASSERT(k.type == VH_TSTR);
  ASSERT_EQ(i, NKEYS);
  expect_all(t, NKEYS);
  ASSERT_CHECK(t);
  /* Half inline, half strings: overwrite, delete and insert through a new
   * edit (path copies) and through the same one (in place). */
  snap = t;
  vh_tab_retain(snap);
  e = vh_edit_new();
  for (i = 0; i < NKEYS; i += 2) {
    size_t len = key_i(i, buf);
    k = bstr(buf, len);
    ASSERT_EQ(vh_tab_set(&t, k, vh_nil(), e), 0);
    vh_val_release(k);
  }
  for (i = 0; i < NKEYS; i += 2) set_i(&t, i, e);
  expect_all(t, NKEYS);
  expect_all(snap, NKEYS);
  ASSERT_CHECK(t);
  ASSERT_CHECK(snap);
  /* Equality, order and hash agree across forms for every length. */
  for (i = 0; i < 200; i++) {
    size_t len = key_i(i, buf), len2;
    char buf2[32];
    vh_val_t a = bstr(buf, len), b = bstr(buf, len);
    len2 = key_i(i + 1, buf2);
    vh_val_t c = bstr(buf2, len2);
    if (len <= VH_IKEY_MAX) {
      vh_val_t ia = vh_key__ikey(buf, len);
      ASSERT(vh_key__eq(ia, a) && vh_key__eq(a, ia) && vh_key__eq(ia, ia));
      ASSERT_EQ(vh_key__cmp(ia, a), 0);
      ASSERT_EQ(vh_key__hash(ia), vh_key__hash(a));
      ASSERT_EQ(vh_key__hash(ia), vh_hash_bytes(buf, len));
      ASSERT_EQ(vh_key__cmp(ia, vh_int(5)), vh_key__cmp(a, vh_int(5)));
      ASSERT_EQ(vh_key__cmp(ia, vh_bool(1)), vh_key__cmp(a, vh_bool(1)));
      ASSERT(!vh_key__eq(ia, vh_int(0)));
      if (len2 <= VH_IKEY_MAX) {
        vh_val_t ic = vh_key__ikey(buf2, len2);
        ASSERT_EQ(vh_key__cmp(ia, ic), vh_key__cmp(a, c));
        ASSERT_EQ(vh_key__cmp(ic, a), vh_key__cmp(c, b));
        ASSERT_EQ(vh_key__eq(ia, ic), vh_key__eq(a, c));
      }
      ASSERT_EQ(vh_key__cmp(ia, c), vh_key__cmp(a, c));
      ASSERT_EQ(vh_key__eq(ia, c), vh_key__eq(a, c));
    }
    vh_val_release(a);
    vh_val_release(b);
    vh_val_release(c);
  }
  vh_tab_release(snap);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* Iteration order does not depend on the form, and vh_tab_next walks the
 * same sequence from any key. */
TEST_IMPL(iteration_order_kept) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  static vh_val_t keys[NKEYS];
  vh_iter_t it;
  vh_val_t k, v;
  size_t b0;
  int i, n, inl = 0;
  for (i = 0; i < NKEYS; i++) set_i(&t, i, e);
  {
    size_t strs = 0;
    (void)tree_nodes(t->hash, &strs);
    inl = NKEYS - (int)strs;
  }
  ASSERT_GT(inl, NKEYS / 2);
  b0 = vh_mem_blocks();
  vh_iter_init(&it, t);
  for (n = 0; vh_iter_next(&it, &k, &v) == 1; n++) {
    ASSERT(k.type == VH_TSTR);
    vh_val_retain(k);
    keys[n] = k;
  }
  ASSERT_EQ(n, NKEYS);
  /* Each inline key handed out got its string (kept by its slot). */
  ASSERT_EQ(vh_mem_blocks() - b0, (size_t)inl);
  /* Second walk: strings everywhere now, the same order, no new block. */
  b0 = vh_mem_blocks();
  vh_iter_init(&it, t);
  for (i = 0; vh_iter_next(&it, &k, &v) == 1; i++) {
    ASSERT(vh_key__eq(k, keys[i]));
    ASSERT_PTR_EQ(k.u.s, keys[i].u.s);
  }
  ASSERT_EQ(vh_mem_blocks(), b0);
  /* A fresh table with the same history: the same order as the first
   * walk, through vh_tab_next. */
  {
    vh_tab_t *u = vh_tab_new(e);
    for (i = 0; i < NKEYS; i++) set_i(&u, i, e);
    k = vh_nil();
    for (i = 0; vh_tab_next(u, k, &k, &v) == 1; i++)
      ASSERT(vh_key__eq(k, keys[i]));
    ASSERT_EQ(i, NKEYS);
    vh_tab_release(u);
  }
  for (i = 0; i < NKEYS; i++) vh_val_release(keys[i]);
  ASSERT_CHECK(t);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* The codec writes the same bytes for both forms; decoding gives inline
 * keys again. */
TEST_IMPL(codec_same_bytes) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  vh_buf_t b1, b2, b3;
  vh_codec_expect_t ex;
  vh_node_t *n;
  const char *why;
  vh_iter_t it;
  vh_val_t k, v;
  size_t strs = 0;
  char buf[32];
  int i, kept = 0;
  /* Keys of every length that fit in the root node (no children). */
  for (i = 0; i < 200 && kept < 16; i++) {
    size_t len = key_i(i, buf);
    k = bstr(buf, len);
    ASSERT_EQ(vh_tab_set(&t, k, vh_int(i), e), 0);
    if (((vh_champ_t *)t->hash)->nodemap != 0)
      ASSERT_EQ(vh_tab_set(&t, k, vh_nil(), e), 0);
    else
      kept++;
    vh_val_release(k);
  }
  ASSERT_GE(kept, 8);
  (void)tree_nodes(t->hash, &strs);
  ASSERT_LT(strs, (size_t)kept);
  vh_buf_init(&b1);
  vh_buf_init(&b2);
  vh_buf_init(&b3);
  ASSERT_EQ(vh_codec_encode(t->hash, &b1), 0);
  vh_iter_init(&it, t); /* every key a string now */
  while (vh_iter_next(&it, &k, &v) == 1) ASSERT(k.type == VH_TSTR);
  strs = 0;
  (void)tree_nodes(t->hash, &strs);
  ASSERT_EQ(strs, (size_t)kept);
  ASSERT_EQ(vh_codec_encode(t->hash, &b2), 0);
  ASSERT_EQ(b1.len, b2.len);
  ASSERT_EQ(memcmp(b1.p, b2.p, b1.len), 0);
  /* Decoded: short keys inline, the same bytes once more. */
  memset(&ex, 0, sizeof ex);
  ex.kind = VH_K_CHAMP;
  ASSERT_EQ(vh_codec_decode(b1.p, b1.len, 5, &ex, &n, &why), 0);
  {
    const vh_champ_t *c = (const vh_champ_t *)n;
    int nd = __builtin_popcount(c->datamap), inl = 0;
    ASSERT_EQ(nd, kept);
    for (i = 0; i < nd; i++) {
      const vh_val_t *key = &c->kv[2 * i];
      if (key->type == VH_TIKEY) {
        inl++;
      } else {
        ASSERT(key->type == VH_TSTR);
        ASSERT_GT(vh_str_len(key->u.s), VH_IKEY_MAX);
      }
    }
    ASSERT_GT(inl, 0);
  }
  ASSERT_EQ(vh_codec_encode(n, &b3), 0);
  ASSERT_EQ(b1.len, b3.len);
  ASSERT_EQ(memcmp(b1.p, b3.p, b1.len), 0);
  vh_node__release(n);
  vh_buf_free(&b1);
  vh_buf_free(&b2);
  vh_buf_free(&b3);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* Collision nodes: one hash for every key, inline and string keys mixed,
 * kept sorted; deletes inline the last key back. */
static uint32_t hash_const(vh_val_t k) {
  ASSERT(k.type != VH_TIKEY); /* test hashes see strings only */
  return 0x12345678u;
}

TEST_IMPL(collisions_mixed_forms) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  vh_iter_t it;
  vh_val_t k, v, prev = vh_nil();
  char buf[32];
  int i, n = 0;
  vh_trie_set_test_hash(hash_const);
  for (i = 0; i < 120; i++) set_i(&t, i, e);
  /* A walk that stops early: the first 40 keys become strings. */
  vh_iter_init(&it, t);
  for (i = 0; i < 40 && vh_iter_next(&it, &k, &v) == 1; i++) continue;
  for (i = 120; i < 160; i++) set_i(&t, i, e);
  ASSERT_CHECK(t);
  expect_all(t, 160);
  vh_iter_init(&it, t);
  while (vh_iter_next(&it, &k, &v) == 1) {
    if (n > 0) ASSERT_LT(vh_key__cmp(prev, k), 0);
    prev = k;
    n++;
  }
  ASSERT_EQ(n, 160);
  for (i = 0; i < 159; i++) {
    size_t len = key_i(i, buf);
    k = bstr(buf, len);
    ASSERT_EQ(vh_tab_set(&t, k, vh_nil(), e), 0);
    vh_val_release(k);
  }
  ASSERT_CHECK(t);
  ASSERT_EQ(vh_tab_count(t), 1);
  vh_trie_set_test_hash(NULL);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* Out of memory while a key is handed out: the walk ends with the fault,
 * the table is unchanged and nothing leaks; the next walk succeeds. */
TEST_IMPL(oom_handing_out) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  vh_iter_t it;
  vh_val_t k, v;
  size_t bytes;
  uint64_t sum;
  int i, n;
  for (i = 0; i < 200; i++) set_i(&t, i, e);
  sum = tu_sum(t);
  bytes = vh_mem_bytes();
  vh_trie_fault_clear();
  vh_mem_fail_after(1);
  vh_iter_init(&it, t);
  n = 0;
  while (vh_iter_next(&it, &k, &v) == 1) n++;
  vh_mem_fail_after(0);
  ASSERT_LT(n, 200);
  ASSERT_EQ(vh_trie_fault(NULL), VH_ENOMEM);
  vh_trie_fault_clear();
  /* The first allocation failed: nothing changed. */
  ASSERT_EQ(vh_mem_bytes(), bytes);
  ASSERT_EQ(tu_sum(t), sum);
  ASSERT_CHECK(t);
  vh_iter_init(&it, t);
  for (n = 0; vh_iter_next(&it, &k, &v) == 1; n++) ASSERT(k.type == VH_TSTR);
  ASSERT_EQ(n, 200);
  ASSERT_EQ(vh_trie_fault(NULL), 0);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(set_by_bytes) {
  /* vh_tab_set_str_slot (the proxy's write of a key it has not cached):
   * the same table as vh_tab_set with a string key, for short (inline)
   * and long keys, new and existing, nil deleting; a short key makes no
   * string, a write in place reports its slot. */
  uint64_t e = vh_edit_new();
  vh_tab_t *a = vh_tab_new(e), *b = vh_tab_new(e);
  char key[40];
  vh_val_t *slot;
  vh_val_t v;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 300; i++) {
      int len =
          snprintf(key, sizeof key, i % 3 ? "k%d" : "a-long-key-%d-xx", i);
      vh_val_t val = round == 2 && i % 5 == 0 ? vh_nil() : vh_int(i + round);
      vh_val_t k = tu_str(key);
      ASSERT_EQ(vh_tab_set(&a, k, val, e), 0);
      vh_val_release(k);
      size_t blocks = vh_mem_blocks();
      ASSERT_EQ(vh_tab_set_str_slot(&b, key, (size_t)len, val, e, &slot), 0);
      if (len <= 14 && round == 1) { /* existing short key: in place */
        ASSERT_EQ(vh_mem_blocks(), blocks);
        ASSERT(slot != NULL);
        ASSERT_EQ(slot->u.i, i + round);
      }
    }
  }
  ASSERT_EQ(vh_tab_count(a), vh_tab_count(b));
  for (int i = 0; i < 300; i++) {
    int len = snprintf(key, sizeof key, i % 3 ? "k%d" : "a-long-key-%d-xx", i);
    vh_val_t w;
    vh_tab_get_str(a, key, (size_t)len, &v);
    vh_tab_get_str(b, key, (size_t)len, &w);
    ASSERT_EQ(v.type, w.type);
    if (i % 5 == 0)
      ASSERT_EQ(w.type, VH_TNIL);
    else
      ASSERT_EQ(w.u.i, i + 2);
  }
  ASSERT_CHECK(a);
  ASSERT_CHECK(b);
  vh_tab_release(a);
  vh_tab_release(b);
  ASSERT_CLEAN();
}

VH_TEST_MAIN(TEST_ENTRY(short_keys_take_no_block),
             TEST_ENTRY(both_forms_one_key), TEST_ENTRY(iteration_order_kept),
             TEST_ENTRY(codec_same_bytes), TEST_ENTRY(collisions_mixed_forms),
             TEST_ENTRY(oom_handing_out), TEST_ENTRY(set_by_bytes))
