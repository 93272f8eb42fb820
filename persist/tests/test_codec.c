/*
 * test_codec.c - the node encoding (persist/trie/codec.c): exact values,
 * decode(encode(x)) == x byte for byte, child id listing, hand-made
 * malformed nodes, and fuzzing by truncation and byte flips (every prefix
 * of every node of a table; thousands of flips), loaded through the lazy
 * path and checked with vh_tab_check. Run under ASan+UBSan too.
 */
#include "lazy_util.h"

/* ---- exact values ---- */

TEST_IMPL(values_exact) {
  uint64_t e = vh_edit_new(), next = 1, bits_a, bits_b;
  vh_tab_t *t = vh_tab_new(e), *r;
  lu_map_t m;
  double nan = NAN;
  static const int64_t ints[] = {INT64_MIN,
                                 INT64_MAX,
                                 0,
                                 -1,
                                 1,
                                 (int64_t)1 << 62,
                                 -((int64_t)1 << 62) - 3};
  vh_val_t v, w;
  size_t i;
  char *big = malloc(1 << 20);
  for (i = 0; i < (1u << 20); i++) big[i] = (char)(i ^ (i >> 8));
  for (i = 0; i < sizeof ints / sizeof ints[0]; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int((int64_t)i + 1), vh_int(ints[i]), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(8), vh_float(-0.0), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(9), vh_float(HUGE_VAL), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(10), vh_float(-HUGE_VAL), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(11), vh_float(nan), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(12), vh_float(5e-324), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(13), vh_bool(0), e), 0);
  v.type = VH_TSTR;
  v.u.s = vh_str_new("", 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(14), v, e), 0);
  v.u.s = vh_str_new("\0a\0", 3);
  ASSERT_EQ(vh_tab_set(&t, vh_int(15), v, e), 0);
  v.u.s = vh_str_new(big, 1 << 20);
  ASSERT_EQ(vh_tab_set(&t, vh_int(16), v, e), 0);
  /* float keys that are not integers, bool and negative int keys */
  ASSERT_EQ(vh_tab_set(&t, vh_float(0.5), vh_bool(1), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_float(-1e300), vh_int(3), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_bool(1), vh_int(4), e), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_int(INT64_MIN), vh_int(5), e), 0);
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, t, &next);
  r = vh_tab_stub(vh_tab_id(t));
  for (i = 1; i <= 16; i++) {
    vh_tab_get_int(t, (int64_t)i, &v);
    vh_tab_get_int(r, (int64_t)i, &w);
    ASSERT_EQ(v.type, w.type);
    if (v.type == VH_TFLOAT) { /* bit exact: -0.0, NaN */
      memcpy(&bits_a, &v.u.f, 8);
      memcpy(&bits_b, &w.u.f, 8);
      ASSERT(bits_a == bits_b);
    } else {
      ASSERT(vh_val_equal(v, w));
    }
  }
  vh_tab_get_int(r, 7, &w);
  ASSERT_EQ(w.u.i, ints[6]);
  vh_tab_get_int(r, 16, &w);
  ASSERT_EQ(vh_str_len(w.u.s), 1 << 20);
  ASSERT(memcmp(vh_str_data(w.u.s), big, 1 << 20) == 0);
  vh_tab_get(r, vh_float(-1e300), &w);
  ASSERT_EQ(w.u.i, 3);
  vh_tab_get(r, vh_int(INT64_MIN), &w);
  ASSERT_EQ(w.u.i, 5);
  ASSERT_EQ(vh_tab_count(r), 20);
  vh_tab_release(r);
  vh_tab_release(t);
  free(big);
  ASSERT_CLEAN();
  lu_free(&m);
}

/* ---- decode(encode(x)) == x ---- */

/* Re-encode every loaded node under n and compare with the stored bytes. */
static void reencode(lu_map_t *m, const vh_node_t *n, vh_buf_t *buf,
                     long *count);

static void reencode_val(lu_map_t *m, vh_val_t v, vh_buf_t *buf, long *count) {
  if (v.type == VH_TTAB) reencode(m, &v.u.t->h, buf, count);
  if (v.type == VH_TSTR && vh_str__big(v.u.s)) {
    /* A big value is a blob of its own, and loads owning its id. */
    lu_ent_t *x;
    uint64_t id = vh_str__blob_id(v.u.s);
    ASSERT(id != 0 && !(*vh_str__blob(v.u.s) & VH_BLOB_NODEATH));
    ASSERT_EQ(vh_codec_encode_blob(vh_str_data(v.u.s), vh_str_len(v.u.s), buf),
              0);
    ASSERT((x = lu_get(m, id)) != NULL);
    ASSERT_EQ(x->len, buf->len);
    ASSERT(memcmp(x->p, buf->p, buf->len) == 0);
    (*count)++;
  }
}

static void reencode(lu_map_t *m, const vh_node_t *n, vh_buf_t *buf,
                     long *count) {
  lu_ent_t *x;
  int i;
  if (n->flags & VH_F_STUB) {
    ASSERT(n->kind != VH_K_TAB); /* vh_tab_check loaded every table */
    n = ((const vh_stub_t *)n)->fwd;
    ASSERT(n != NULL);
  }
  ASSERT_EQ(vh_codec_encode(n, buf), 0);
  ASSERT((x = lu_get(m, n->id)) != NULL);
  ASSERT_EQ(x->len, buf->len);
  ASSERT(memcmp(x->p, buf->p, buf->len) == 0);
  (*count)++;
  switch (n->kind) {
    case VH_K_TAB: {
      const vh_tab_t *t = (const vh_tab_t *)n;
      if (t->arr.root) reencode(m, &t->arr.root->h, buf, count);
      if (t->arr.tail) reencode(m, &t->arr.tail->h, buf, count);
      if (t->hash) reencode(m, t->hash, buf, count);
      break;
    }
    case VH_K_CHAMP: {
      const vh_champ_t *c = (const vh_champ_t *)n;
      int nd = __builtin_popcount(c->datamap);
      int nc = __builtin_popcount(c->nodemap);
      for (i = 0; i < nd; i++) reencode_val(m, c->kv[2 * i + 1], buf, count);
      for (i = 0; i < nc; i++)
        reencode(m, ((vh_node_t *const *)(c->kv + 2 * nd))[i], buf, count);
      break;
    }
    case VH_K_COLL: {
      const vh_coll_t *l = (const vh_coll_t *)n;
      for (i = 0; i < (int)l->count; i++)
        reencode_val(m, l->kv[2 * i + 1], buf, count);
      break;
    }
    case VH_K_VLEAF:
      for (i = 0; i < n->a; i++)
        reencode_val(m, ((const vh_vleaf_t *)n)->v[i], buf, count);
      break;
    default:
      for (i = 0; i < n->a; i++)
        reencode(m, ((const vh_vinner_t *)n)->c[i], buf, count);
  }
}

TEST_IMPL(reencode_identity_and_child_ids) {
  uint64_t e = vh_edit_new();
  int round;
  vh_buf_t buf;
  vh_buf_init(&buf);
  for (round = 0; round < 12; round++) {
    uint64_t next = 1, root;
    vh_tab_t *t = lu_rtab(20 + lu_below(round < 10 ? 300 : 5000), 3, e), *r;
    lu_map_t m, seen;
    long count = 0;
    size_t i;
    if (round == 11) /* a deep vector: inner nodes at several levels */
      for (i = 1; i <= 40000; i++)
        ASSERT_EQ(vh_tab_set(&t, vh_int((int64_t)i), vh_int(1), e), 0);
    lu_init(&m);
    lu_use(&m);
    lu_flush(&m, t, &next);
    root = vh_tab_id(t);
    r = vh_tab_stub(root);
    ASSERT_CHECK(r); /* loads everything */
    reencode(&m, &r->h, &buf, &count);
    ASSERT_EQ(count, m.n); /* every node, once: one parent each */
    /* child ids: every id but the root is exactly one node's child */
    lu_init(&seen);
    for (i = 0; i < m.cap; i++) {
      lu_ent_t *x = &m.e[i];
      int kind;
      if (x->id == 0 || x->id == LU_TOMB) continue;
      ASSERT_EQ(
          vh_codec_child_ids(x->p, x->len, lu_count_cb, &seen, &kind, NULL), 0);
      ASSERT(kind >= VH_K_TAB && kind <= VH_K_BLOB);
    }
    ASSERT_EQ(seen.n + 1, m.n);
    ASSERT(lu_get(&seen, root) == NULL);
    for (i = 0; i < seen.cap; i++)
      if (seen.e[i].id != 0 && seen.e[i].id != LU_TOMB)
        ASSERT_EQ(seen.e[i].len, 1);
    lu_free(&seen);
    vh_tab_release(r);
    vh_tab_release(t);
    lu_free(&m);
  }
  vh_buf_free(&buf);
  ASSERT_CLEAN();
}

/* ---- malformed nodes made by hand ---- */

typedef struct bad_case {
  const char *name;
  unsigned char b[24];
  size_t len;
  int err; /* what vh_codec_child_ids must return */
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"empty", {0}, 0, VH_ECORRUPT},
    {"kind 0", {0x00}, 1, VH_ECORRUPT},
    {"kind 7", {0x17, 0x00}, 2, VH_ECORRUPT},
    {"blob ref: id 0", {0x24, 0x01, 0x07, 0x00, 0x80, 0x02}, 6, VH_ECORRUPT},
    {"blob ref: short", {0x24, 0x01, 0x07, 0x05, 0xff, 0x01}, 6, VH_ECORRUPT},
    {"blob ref: truncated", {0x24, 0x01, 0x07, 0x05, 0x80}, 5, VH_ECORRUPT},
    {"blob key",
     {0x22, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x07, 0x05, 0x80, 0x02, 0x03, 0x02},
     15,
     VH_ECORRUPT},
    {"version 0", {0x04, 0x01, 0x01}, 3, VH_ECORRUPT},
    {"newer version", {0x34, 0x01, 0x01}, 3, VH_EFORMAT},
    {"blob record of version 1", {0x16, 0x61}, 2, VH_ECORRUPT},
    {"blob ref in a version 1 node",
     {0x14, 0x01, 0x07, 0x05, 0x80, 0x02},
     6,
     VH_ECORRUPT},
    {"varint overflow",
     {0x14, 0x01, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
      0x02},
     13,
     VH_ECORRUPT},
    {"varint unterminated", {0x14, 0x01, 0x03, 0xFF, 0xFF}, 5, VH_ECORRUPT},
    {"varint not minimal", {0x14, 0x81, 0x00, 0x01}, 4, VH_ECORRUPT},
    /* codec.c reads varints of up to 3 bytes inline */
    {"varint not minimal, 3 bytes",
     {0x14, 0x01, 0x03, 0x81, 0x80, 0x00, 0x01},
     7,
     VH_ECORRUPT},
    {"trailing byte", {0x14, 0x01, 0x00, 0x00}, 4, VH_ECORRUPT},
    {"leaf count 0", {0x14, 0x00}, 2, VH_ECORRUPT},
    {"leaf count 33", {0x14, 0x21}, 2, VH_ECORRUPT},
    {"bad value tag", {0x14, 0x01, 0x07}, 3, VH_ECORRUPT},
    {"string past the end", {0x14, 0x01, 0x05, 0x05, 'a'}, 5, VH_ECORRUPT},
    {"bitmaps overlap",
     {0x12, 1, 0, 0, 0, 1, 0, 0, 0, 0x03, 0x02, 0x01, 0x05},
     13,
     VH_ECORRUPT},
    {"empty CHAMP", {0x12, 0, 0, 0, 0, 0, 0, 0, 0}, 9, VH_ECORRUPT},
    {"CHAMP missing entry",
     {0x12, 3, 0, 0, 0, 0, 0, 0, 0, 0x03, 0x02, 0x01},
     12,
     VH_ECORRUPT},
    {"CHAMP child id 0", {0x12, 0, 0, 0, 0, 1, 0, 0, 0, 0x00}, 10, VH_ECORRUPT},
    {"nil key",
     {0x13, 0x02, 0x00, 0x01, 0x03, 0x02, 0x01, 0x01},
     8,
     VH_ECORRUPT},
    {"table key",
     {0x13, 0x02, 0x06, 0x05, 0x01, 0x03, 0x02, 0x01},
     8,
     VH_ECORRUPT},
    {"integral float key",
     {0x12, 1, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x01},
     19,
     VH_ECORRUPT},
    {"collision count 1", {0x13, 0x01, 0x03, 0x02, 0x01}, 5, VH_ECORRUPT},
    {"collision count huge",
     {0x13, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01},
     7,
     VH_ECORRUPT},
    {"inner child id 0", {0x15, 0x01, 0x00}, 3, VH_ECORRUPT},
    {"table id 0 value", {0x14, 0x01, 0x06, 0x00}, 4, VH_ECORRUPT},
    {"table: root but n <= 32",
     {0x11, 0x05, 0x05, 0x00, 0x07, 0x08, 0x00},
     7,
     VH_ECORRUPT},
    {"table: acount > n",
     {0x11, 0x01, 0x02, 0x00, 0x00, 0x08, 0x00},
     7,
     VH_ECORRUPT},
    {"table: no tail",
     {0x11, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00},
     7,
     VH_ECORRUPT},
    {"table: hash without count",
     {0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09},
     7,
     VH_ECORRUPT},
    {"table: truncated", {0x11, 0x00, 0x00, 0x00}, 4, VH_ECORRUPT},
};

TEST_IMPL(malformed_by_hand) {
  size_t i;
  for (i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const bad_case_t *c = &bad_cases[i];
    const char *why = NULL;
    int r = vh_codec_child_ids(c->b, c->len, NULL, NULL, NULL, &why);
    if (r != c->err) fprintf(stderr, "case %s: %d (%s)\n", c->name, r, why);
    ASSERT_EQ(r, c->err);
    ASSERT(why != NULL && strcmp(why, "ok") != 0);
  }
  ASSERT_CLEAN();
}

/* Decoding checks a node against its place (vh_codec_expect_t). */
TEST_IMPL(malformed_for_its_place) {
  static const unsigned char leaf2[] = {0x14, 0x02, 0x03, 0x02, 0x00};
  static const unsigned char inner1[] = {0x15, 0x01, 0x07};
  vh_codec_expect_t ex;
  vh_node_t *n;
  const char *why;
  vh_tab_t *t;
  uint64_t e = vh_edit_new();
  vh_buf_t buf;
  vh_val_t k;
  memset(&ex, 0, sizeof ex);
  ex.kind = VH_K_VLEAF;
  ex.expect = 2;
  ASSERT_EQ(vh_codec_decode(leaf2, sizeof leaf2, 9, &ex, &n, &why), 0);
  ASSERT_EQ(n->id, 9);
  ASSERT_EQ(n->a, 2);
  vh_node__release(n);
  ex.tail = 1; /* a tail must end non-nil */
  ASSERT_EQ(vh_codec_decode(leaf2, sizeof leaf2, 9, &ex, &n, &why),
            VH_ECORRUPT);
  ASSERT(n == NULL);
  ex.tail = 0;
  ex.expect = 3; /* the table implies 3 slots */
  ASSERT_EQ(vh_codec_decode(leaf2, sizeof leaf2, 9, &ex, &n, &why),
            VH_ECORRUPT);
  ex.kind = VH_K_VINNER; /* a leaf where an inner node belongs */
  ex.shift = 5;
  ex.expect = 2;
  ASSERT_EQ(vh_codec_decode(leaf2, sizeof leaf2, 9, &ex, &n, &why),
            VH_ECORRUPT);
  ex.expect = 1; /* one full leaf under it: ok */
  ASSERT_EQ(vh_codec_decode(inner1, sizeof inner1, 9, &ex, &n, &why), 0);
  ASSERT(n->kind == VH_K_VINNER && n->a == 1);
  vh_node__release(n);
  ex.expect = 33; /* two children expected */
  ASSERT_EQ(vh_codec_decode(inner1, sizeof inner1, 9, &ex, &n, &why),
            VH_ECORRUPT);
  /* A CHAMP node decoded at a slot whose hash prefix its keys lack. */
  t = vh_tab_new(e);
  k = tu_str("hello");
  ASSERT_EQ(vh_tab_set(&t, k, vh_int(1), e), 0);
  vh_buf_init(&buf);
  ASSERT_EQ(vh_codec_encode(t->hash, &buf), 0);
  ex.kind = VH_K_CHAMP;
  ex.shift = 0;
  ex.expect = 0;
  ASSERT_EQ(vh_codec_decode(buf.p, buf.len, 5, &ex, &n, &why), 0);
  vh_node__release(n);
  ex.shift = 5; /* a non-root node holding a single entry */
  ex.expect = vh_str_data(k.u.s)[0] & 31;
  ASSERT_EQ(vh_codec_decode(buf.p, buf.len, 5, &ex, &n, &why), VH_ECORRUPT);
  ex.kind = VH_K_COLL;
  ex.shift = 35;
  ASSERT_EQ(vh_codec_decode(buf.p, buf.len, 5, &ex, &n, &why), VH_ECORRUPT);
  /* A node that is not written yet cannot be a child. */
  ASSERT_EQ(tu_set_s(&t, "sub", tu_tab(vh_tab_new(e)), e), 0);
  ASSERT_EQ(vh_codec_encode(t->hash, &buf), VH_EINVAL);
  vh_buf_free(&buf);
  vh_val_release(k);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* ---- fuzzing ---- */

/* Iterate t and its nested tables (down to the depth vh_tab_check
 * covers: a flipped table id can point back at an ancestor, and the
 * stored graph then unfolds forever; see codec.c LIMITS); the number of
 * entries seen. */
static size_t walk_all(const vh_tab_t *t, int nest) {
  vh_iter_t it;
  vh_val_t k, v;
  size_t n = 0;
  vh_iter_init(&it, t);
  while (vh_iter_next(&it, &k, &v)) {
    n++;
    if (v.type == VH_TTAB && nest > 0) walk_all(v.u.t, nest - 1);
  }
  ASSERT_EQ(n, vh_tab_count(t));
  return n;
}

/* Load the whole table from m and check it. 0 if it loaded and passed
 * vh_tab_check; else the check failed with the fault set (never a crash,
 * never a leak). */
static int load_all(lu_map_t *m, uint64_t root) {
  const char *why;
  vh_tab_t *t = vh_tab_stub(root);
  int r;
  vh_trie_fault_clear();
  r = vh_tab_check(t, &why);
  if (r == 0) {
    walk_all(t, 60);
    ASSERT_EQ(vh_trie_fault(NULL), 0);
  } else {
    const char *msg;
    ASSERT_EQ(r, VH_ECORRUPT);
    if (vh_trie_fault(&msg) != 0) ASSERT(strstr(msg, "node ") != NULL);
  }
  vh_tab_release(t);
  vh_trie_fault_clear();
  ASSERT_CLEAN();
  return r;
}

static vh_tab_t *fuzz_table(uint64_t e) {
  vh_tab_t *t = lu_rtab(60, 2, e);
  int i;
  for (i = 1; i <= 70; i++) /* a tree leaf, an inner node and a tail */
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), lu_rval(0, e), e), 0);
  return t;
}

TEST_IMPL(fuzz_truncations) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = fuzz_table(e);
  lu_map_t m;
  size_t i, cut, prefixes = 0;
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, t, &next);
  root = vh_tab_id(t);
  vh_tab_release(t);
  ASSERT_EQ(load_all(&m, root), 0);
  for (i = 0; i < m.cap; i++) {
    lu_ent_t *x = &m.e[i];
    unsigned char *orig;
    size_t len;
    if (x->id == 0 || x->id == LU_TOMB) continue;
    orig = x->p;
    len = x->len;
    for (cut = 0; cut < len; cut++) {
      ASSERT(vh_codec_child_ids(orig, cut, NULL, NULL, NULL, NULL) < 0);
      x->len = cut; /* the store now holds a prefix */
      ASSERT_EQ(load_all(&m, root), VH_ECORRUPT);
      prefixes++;
    }
    x->len = len;
  }
  ASSERT_GT(prefixes, 500);
  lu_free(&m);
}

TEST_IMPL(fuzz_flips) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = fuzz_table(e);
  lu_map_t m;
  uint64_t *ids;
  size_t nids = 0, i;
  int round, broken = 0, fine = 0;
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, t, &next);
  root = vh_tab_id(t);
  vh_tab_release(t);
  ids = malloc(m.n * sizeof *ids);
  for (i = 0; i < m.cap; i++)
    if (m.e[i].id != 0 && m.e[i].id != LU_TOMB) ids[nids++] = m.e[i].id;
  for (round = 0; round < 6000; round++) {
    lu_ent_t *x = lu_get(&m, ids[lu_below((int)nids)]);
    size_t pos = (size_t)lu_below((int)x->len);
    unsigned char old = x->p[pos], flip;
    int r;
    /* single bits mostly, sometimes a whole random byte */
    flip = lu_below(4) ? (unsigned char)(1u << lu_below(8))
                       : (unsigned char)(1 + lu_below(255));
    x->p[pos] ^= flip;
    r = vh_codec_child_ids(x->p, x->len, NULL, NULL, NULL, NULL);
    ASSERT(r == 0 || r == VH_ECORRUPT || r == VH_EFORMAT);
    if (load_all(&m, root) == 0)
      fine++; /* e.g. a changed string byte or integer */
    else
      broken++;
    x->p[pos] = old;
  }
  ASSERT_GT(broken, 1000);
  ASSERT_GT(fine, 100);
  ASSERT_EQ(load_all(&m, root), 0);
  free(ids);
  lu_free(&m);
}

/* ---- entry bytes, written by hand ---- */

/* The test's own LEB128 (codec.c's layout comment). */
static size_t kv_varint(unsigned char *p, uint64_t x) {
  size_t n = 0;
  do {
    p[n] = (unsigned char)(x & 0x7F);
    x >>= 7;
    if (x) p[n] |= 0x80;
    n++;
  } while (x);
  return n;
}

/* A one-entry table's CHAMP root encodes as 0x12, datamap, nodemap 0, the
 * key as a string and the value, for every key length around the inline
 * limit (14) and the value kinds of codec.c's fast path (inline key with
 * an integer or boolean) and of its general path (float, string, a key
 * of 15 bytes): the fast path must write what the general one does. */
TEST_IMPL(kv_bytes_by_hand) {
  static const int64_t ints[] = {
      0, 1, -1, 63, 64, -64, -65, 300, INT64_MAX, INT64_MIN, (int64_t)1 << 62};
  const char *kb = "abcdefghijklmnopq";
  uint64_t e = vh_edit_new();
  vh_buf_t buf;
  unsigned char want[64];
  size_t klen, vi, n;
  vh_buf_init(&buf);
  for (klen = 0; klen <= 16; klen++) {
    for (vi = 0; vi < sizeof ints / sizeof ints[0] + 4; vi++) {
      vh_tab_t *t = vh_tab_new(e);
      vh_val_t key, val;
      const vh_champ_t *c;
      key.type = VH_TSTR;
      key.u.s = vh_str_new(kb, klen);
      n = 9;
      if (vi < sizeof ints / sizeof ints[0]) {
        int64_t i = ints[vi];
        val = vh_int(i);
        want[n++] = 3;
        n += kv_varint(want + n, ((uint64_t)i << 1) ^ (uint64_t)(i >> 63));
      } else if (vi == sizeof ints / sizeof ints[0]) {
        val = vh_bool(1);
        want[n++] = 2;
      } else if (vi == sizeof ints / sizeof ints[0] + 1) {
        val = vh_bool(0);
        want[n++] = 1;
      } else if (vi == sizeof ints / sizeof ints[0] + 2) {
        val = vh_float(0.5); /* 0x3FE0000000000000 */
        want[n++] = 4;
        memcpy(want + n, "\0\0\0\0\0\0\xE0\x3F", 8);
        n += 8;
      } else {
        val.type = VH_TSTR;
        val.u.s = vh_str_new("xy", 2);
        memcpy(want + n, "\x05\x02xy", 4);
        n += 4;
      }
      ASSERT_EQ(vh_tab_set(&t, key, val, e), 0);
      vh_val_release(key);
      c = (const vh_champ_t *)t->hash;
      ASSERT(c != NULL && c->h.kind == VH_K_CHAMP && c->nodemap == 0);
      /* header, then the key in front of the value bytes built above */
      memmove(want + 9 + 2 + klen, want + 9, n - 9);
      want[0] = 0x12;
      want[1] = (unsigned char)c->datamap;
      want[2] = (unsigned char)(c->datamap >> 8);
      want[3] = (unsigned char)(c->datamap >> 16);
      want[4] = (unsigned char)(c->datamap >> 24);
      memset(want + 5, 0, 4);
      want[9] = 5;
      want[10] = (unsigned char)klen;
      memcpy(want + 11, kb, klen);
      n += 2 + klen;
      ASSERT_EQ(vh_codec_encode(t->hash, &buf), 0);
      if (buf.len != n || memcmp(buf.p, want, n) != 0)
        fprintf(stderr, "key length %zu, value case %zu differs\n", klen, vi);
      ASSERT_EQ(buf.len, n);
      ASSERT(memcmp(buf.p, want, n) == 0);
      vh_tab_release(t);
    }
  }
  vh_buf_free(&buf);
  ASSERT_CLEAN();
}

VH_TEST_MAIN(TEST_ENTRY(values_exact),
             TEST_ENTRY(reencode_identity_and_child_ids),
             TEST_ENTRY(malformed_by_hand), TEST_ENTRY(malformed_for_its_place),
             TEST_ENTRY(fuzz_truncations), TEST_ENTRY(fuzz_flips),
             TEST_ENTRY(kv_bytes_by_hand))
