/*
 * test_blob.c - big string values stored out of line (ARCHITECTURE.md
 * "Large string values out of line"): flush.c writes a blob record per new
 * big value before its leaf, codec.c refers to it (tag 7) and lists it as
 * a child, lazy.c reads it with its leaf, str.c reports its death, tab.c
 * keeps one slot per blob id.
 *
 * A "store" is an in-memory map id -> bytes (lazy_util.h); deaths are
 * applied to it as the host's store would (a subtree death deletes what
 * it reaches), and then the map must hold exactly what the root reaches,
 * each id with one parent: exact garbage collection, fsck's rule.
 */
#include "lazy_util.h"

/* [new] A big string value of len bytes, its contents from seed. */
static vh_val_t big(int seed, size_t len) {
  char *b = malloc(len);
  vh_val_t v;
  for (size_t i = 0; i < len; i++)
    b[i] = (char)('a' + (seed * 31 + i * 7) % 26);
  v.u.i = 0;
  v.u.s = vh_str_new(b, len);
  v.type = VH_TSTR;
  free(b);
  ASSERT(v.u.s != NULL);
  return v;
}

static int is_big(vh_val_t v, int seed, size_t len) {
  vh_val_t w = big(seed, len);
  int eq = vh_val_equal(v, w);
  vh_val_release(w);
  return eq;
}

static int kind_of(lu_map_t *m, uint64_t id) {
  lu_ent_t *e = lu_get(m, id);
  int kind = 0;
  ASSERT(e != NULL);
  ASSERT_EQ(vh_codec_child_ids(e->p, e->len, NULL, NULL, &kind, NULL), 0);
  return kind;
}

static size_t count_blobs(lu_map_t *m) {
  size_t n = 0;
  for (size_t i = 0; i < m->cap; i++)
    if (m->e[i].id != 0 && m->e[i].id != LU_TOMB &&
        kind_of(m, m->e[i].id) == VH_K_BLOB)
      n++;
  return n;
}

/* Any one blob id of m. */
static uint64_t some_blob(lu_map_t *m) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->e[i].id != 0 && m->e[i].id != LU_TOMB &&
        kind_of(m, m->e[i].id) == VH_K_BLOB)
      return m->e[i].id;
  ASSERT(0);
  return 0;
}

/* Apply the recorded deaths to m, then: m holds exactly the ids root
 * reaches, each the child of one node (the root of none). */
static void apply_and_check(lu_map_t *m, uint64_t root) {
  lu_map_t dead, live, parents;
  size_t i;
  lu_init(&dead);
  for (i = 0; i < lu_deaths.n; i++) {
    ASSERT(lu_get(&dead, lu_deaths.id[i]) == NULL); /* reported once */
    ASSERT(lu_get(m, lu_deaths.id[i]) != NULL);     /* it was stored */
    if (lu_deaths.subtree[i])
      ASSERT_EQ(lu_reach(m, lu_deaths.id[i], &dead), 0);
    else
      lu_add_cb(&dead, lu_deaths.id[i]);
  }
  lu_deaths.n = 0;
  for (i = 0; i < dead.cap; i++)
    if (dead.e[i].id != 0 && dead.e[i].id != LU_TOMB)
      ASSERT(lu_del(m, dead.e[i].id));
  lu_init(&live);
  ASSERT_EQ(lu_reach(m, root, &live), 0);
  ASSERT_EQ(live.n, m->n); /* nothing unreachable left */
  lu_init(&parents);
  for (i = 0; i < m->cap; i++)
    if (m->e[i].id != 0 && m->e[i].id != LU_TOMB)
      ASSERT_EQ(vh_codec_child_ids(m->e[i].p, m->e[i].len, lu_count_cb,
                                   &parents, NULL, NULL),
                0);
  ASSERT_EQ(parents.n + 1, m->n);
  ASSERT(lu_get(&parents, root) == NULL);
  for (i = 0; i < parents.cap; i++)
    if (parents.e[i].id != 0 && parents.e[i].id != LU_TOMB)
      ASSERT_EQ(parents.e[i].len, 1); /* one parent per id */
  lu_free(&dead);
  lu_free(&live);
  lu_free(&parents);
}

static int kid_is_blob(void *arg, uint64_t id) {
  int *n = ((int **)arg)[1];
  *n += kind_of(((lu_map_t **)arg)[0], id) == VH_K_BLOB;
  return 0;
}

/* Node format 2 exactly on blob records and nodes referring to a blob
 * (a version-1 vedhost then refuses just those, as newer); returns how
 * many nodes refer to blobs. */
static int check_versions(lu_map_t *m) {
  int refs = 0;
  for (size_t i = 0; i < m->cap; i++) {
    lu_ent_t *e = &m->e[i];
    int nblob = 0, kind;
    void *arg[2] = {m, &nblob};
    if (e->id == 0 || e->id == LU_TOMB) continue;
    ASSERT_EQ(vh_codec_child_ids(e->p, e->len, kid_is_blob, arg, &kind, NULL),
              0);
    int v = ((const unsigned char *)e->p)[0] >> 4;
    ASSERT_EQ(v, kind == VH_K_BLOB || nblob > 0 ? 2 : 1);
    refs += nblob > 0;
  }
  return refs;
}

static vh_flush_stats_t flush(lu_map_t *m, vh_tab_t *t, uint64_t *next) {
  vh_flush_stats_t st;
  ASSERT_EQ(vh_flush_collect(&t, 1, next, lu_put_cb, m, &st), 0);
  return st;
}

/* A test's node map m in use as the store, the free hook on (see
 * lu_hook_on); map_end checks nothing leaked and frees both. */
static void map_begin(lu_map_t *m, int hook) {
  lu_init(m);
  lu_use(m);
  lu_hook_on(hook);
}

static void map_end(lu_map_t *m) {
  ASSERT_CLEAN();
  lu_hook_free();
  lu_free(m);
}

static void set_s(vh_tab_t **t, const char *k, vh_val_t v, uint64_t e) {
  ASSERT_EQ(tu_set_s(t, k, v, e), 0);
}

/* 100 keys -> 1 KB values: each value is a blob; changing one writes one
 * blob and the nodes on its path, not its leaf neighbours' bytes; the old
 * blob is reported dead; a restart reads every value back. */
TEST_IMPL(blob_rewrite_is_small) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = vh_tab_new(e), *r, *base;
  lu_map_t m;
  char k[16];
  map_begin(&m, 0);
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof k, "k%d", i);
    set_s(&t, k, big(i, 1024), e);
  }
  set_s(&t, "small", tu_str("short"), e);
  set_s(&t, "edge", big(7, VH_BLOB_MIN - 1), e); /* just under: inline */
  vh_flush_stats_t st = flush(&m, t, &next);
  ASSERT_EQ(st.blobs, 100);
  ASSERT_EQ(count_blobs(&m), 100);
  ASSERT(check_versions(&m) > 0);
  root = vh_tab_id(t);
  vh_tab_release(t); /* the process ends (hook muted) */

  r = vh_tab_stub(root); /* restart */
  lu_deaths.on = 1;
  base = r;
  vh_tab_retain(base);
  uint64_t e2 = vh_edit_new();
  set_s(&r, "k5", big(1005, 1024), e2);
  st = flush(&m, r, &next);
  ASSERT_EQ(st.blobs, 1);
  /* the new blob (1 KB) and a few path nodes of refs: no neighbour's KB */
  ASSERT(st.bytes < 1025 + 300);
  vh_tab_release(base);
  root = vh_tab_id(r);
  size_t blob_deaths = 0;
  for (size_t i = 0; i < lu_deaths.n; i++)
    blob_deaths += kind_of(&m, lu_deaths.id[i]) == VH_K_BLOB;
  ASSERT_EQ(blob_deaths, 1);
  apply_and_check(&m, root);
  ASSERT_EQ(count_blobs(&m), 100);
  lu_deaths.on = 0;
  vh_tab_release(r);

  r = vh_tab_stub(root);
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof k, "k%d", i);
    ASSERT(is_big(tu_get_s(r, k), i == 5 ? 1005 : i, 1024));
  }
  ASSERT(is_big(tu_get_s(r, "edge"), 7, VH_BLOB_MIN - 1));
  ASSERT_CHECK(r);
  ASSERT_EQ(vh_trie_fault(NULL), 0);
  vh_tab_release(r);
  map_end(&m);
}

/* A big string stored into a second slot (a C caller's copy of a value, a
 * moved value, a deep copy, an insert) gets a blob of its own: one parent
 * per id, and every death exact. */
TEST_IMPL(blob_one_slot) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = vh_tab_new(e), *sub = vh_tab_new(e), *list = vh_tab_new(e);
  lu_map_t m;
  vh_val_t v;
  map_begin(&m, 1);
  set_s(&t, "a", big(1, 600), e);
  set_s(&sub, "x", big(2, 700), e);
  ASSERT_EQ(vh_tab_set(&list, vh_int(1), big(3, 800), e), 0);
  set_s(&t, "sub", tu_tab(sub), e);
  set_s(&t, "list", tu_tab(list), e);
  /* Before any flush: the same id-0 string in two slots. */
  v = tu_get_s(t, "a");
  vh_val_retain(v);
  set_s(&t, "b", v, e);
  flush(&m, t, &next);
  root = vh_tab_id(t);
  apply_and_check(&m, root);
  ASSERT_EQ(count_blobs(&m), 4);

  for (int round = 0; round < 2; round++) {
    if (round == 1) { /* the same once everything came from the store */
      lu_deaths.on = 0;
      vh_tab_release(t);
      t = vh_tab_stub(root);
      lu_deaths.on = 1;
    }
    vh_tab_t *base = t;
    vh_tab_retain(base);
    uint64_t e2 = vh_edit_new();
    /* a stored value into a second slot */
    v = tu_get_s(t, "b");
    vh_val_retain(v);
    set_s(&t, "c", v, e2);
    /* a value moved: taken out, then stored elsewhere (it has an id) */
    v = tu_get_s(t, "a");
    vh_val_retain(v);
    set_s(&t, "a", vh_nil(), e2);
    set_s(&t, "moved", v, e2);
    /* a deep copy of a table holding big values, and an insert */
    v = tu_get_s(t, "sub");
    vh_tab_t *copy = vh_tab_deepcopy(v.u.t, e2);
    ASSERT(copy != NULL);
    set_s(&t, "copy", tu_tab(copy), e2);
    v = tu_get_s(t, "list");
    vh_tab_t *l = vh_tab_clone(v.u.t, e2);
    set_s(&t, "list", tu_tab(l), e2);
    vh_val_t one = tu_get_i(l, 1);
    vh_val_retain(one);
    ASSERT_EQ(vh_tab_insert(&l, 1, one, e2), 0);
    flush(&m, t, &next);
    vh_tab_release(base);
    root = vh_tab_id(t);
    apply_and_check(&m, root);
    ASSERT(is_big(tu_get_s(t, "moved"), 1, 600));
    ASSERT(is_big(tu_get_s(t, "c"), 1, 600));
    ASSERT(tu_get_s(t, "a").type == VH_TNIL);
    /* undo the round's additions for the next one */
    uint64_t e3 = vh_edit_new();
    base = t;
    vh_tab_retain(base);
    set_s(&t, "c", vh_nil(), e3);
    set_s(&t, "copy", vh_nil(), e3);
    set_s(&t, "a", big(1, 600), e3);
    set_s(&t, "moved", vh_nil(), e3);
    flush(&m, t, &next);
    vh_tab_release(base);
    root = vh_tab_id(t);
    apply_and_check(&m, root);
  }
  lu_deaths.on = 0;
  vh_tab_release(t);
  t = vh_tab_stub(root);
  ASSERT_CHECK(t);
  ASSERT(is_big(tu_get_s(t, "b"), 1, 600));
  vh_tab_release(t);
  map_end(&m);
}

/* Views report no blob death; a leaf whose blob cannot be read fails its
 * load without reporting anything, and loads once the blob reads again. */
TEST_IMPL(blob_views_and_faults) {
  uint64_t e = vh_edit_new(), next = 1, root, bid;
  vh_tab_t *t = vh_tab_new(e), *r;
  lu_map_t m;
  char k[16];
  map_begin(&m, 0);
  for (int i = 0; i < 40; i++) {
    snprintf(k, sizeof k, "k%d", i);
    set_s(&t, k, big(i, 300 + i), e);
  }
  flush(&m, t, &next);
  root = vh_tab_id(t);
  vh_tab_release(t);
  lu_deaths.on = 1;

  r = vh_tab_stub_view(root);
  for (int i = 0; i < 40; i++) {
    snprintf(k, sizeof k, "k%d", i);
    ASSERT(is_big(tu_get_s(r, k), i, 300 + (size_t)i));
  }
  vh_tab_release(r);
  ASSERT_EQ(lu_deaths.n, 0);
  /* a loaded tree turned into a view (rollback) is silent too */
  r = vh_tab_stub(root);
  ASSERT_CHECK(r);
  ASSERT_EQ(vh_tab_make_view(r), 0);
  vh_tab_release(r);
  ASSERT_EQ(lu_deaths.n, 0);

  bid = some_blob(&m);
  for (int rc = 0; rc < 2; rc++) {
    r = vh_tab_stub(root);
    lu_fail_id = bid;
    lu_fail_rc = rc == 0 ? VH_EIO : VH_ENOENT;
    int missing = 0;
    for (int i = 0; i < 40; i++) {
      snprintf(k, sizeof k, "k%d", i);
      missing += tu_get_s(r, k).type == VH_TNIL;
    }
    ASSERT(missing >= 1);
    const char *msg;
    ASSERT_EQ(vh_trie_fault(&msg), lu_fail_rc);
    char want[32];
    snprintf(want, sizeof want, "node %llu:", (unsigned long long)bid);
    ASSERT(strstr(msg, want) != NULL); /* names the blob */
    vh_trie_fault_clear();
    ASSERT_EQ(lu_deaths.n, 0); /* a half-decoded leaf frees silently */
    lu_fail_id = 0;
    for (int i = 0; i < 40; i++) {
      snprintf(k, sizeof k, "k%d", i);
      ASSERT(is_big(tu_get_s(r, k), i, 300 + (size_t)i));
    }
    ASSERT_EQ(vh_trie_fault(NULL), 0);
    lu_deaths.on = 0;
    vh_tab_release(r);
    lu_deaths.on = 1;
  }
  /* a blob record of the wrong length is corrupt */
  lu_ent_t *x = lu_get(&m, bid);
  x->len--;
  r = vh_tab_stub(root);
  int missing = 0;
  for (int i = 0; i < 40; i++) {
    snprintf(k, sizeof k, "k%d", i);
    missing += tu_get_s(r, k).type == VH_TNIL;
  }
  ASSERT(missing >= 1);
  ASSERT_EQ(vh_trie_fault(NULL), VH_ECORRUPT);
  vh_trie_fault_clear();
  lu_deaths.on = 0;
  vh_tab_release(r);
  map_end(&m);
}

/* A store of format 1 holds big strings inline. They read as they are,
 * and move out of line when their leaf is next written; exact GC holds. */
TEST_IMPL(blob_inline_moves_out) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = vh_tab_new(e), *r, *base;
  lu_map_t m;
  char k[16];
  map_begin(&m, 0);
  for (int i = 0; i < 30; i++) {
    snprintf(k, sizeof k, "k%d", i);
    set_s(&t, k, big(i, 512), e);
    /* no id and silent: flush writes it inline, as format 1 did */
    *vh_str__blob(tu_get_s(t, k).u.s) = VH_BLOB_NODEATH;
  }
  flush(&m, t, &next);
  ASSERT_EQ(count_blobs(&m), 0);
  ASSERT_EQ(check_versions(&m), 0); /* every node as a format-1 vedhost wrote */
  root = vh_tab_id(t);
  vh_tab_release(t);

  r = vh_tab_stub(root);
  lu_deaths.on = 1;
  base = r;
  vh_tab_retain(base);
  set_s(&r, "k3", big(1003, 512), vh_edit_new());
  vh_flush_stats_t st = flush(&m, r, &next);
  ASSERT(st.blobs >= 1); /* k3 and its leaf neighbours */
  vh_tab_release(base);
  root = vh_tab_id(r);
  apply_and_check(&m, root);
  ASSERT_EQ(count_blobs(&m), st.blobs);
  ASSERT(check_versions(&m) > 0);
  lu_deaths.on = 0;
  vh_tab_release(r);
  r = vh_tab_stub(root);
  for (int i = 0; i < 30; i++) {
    snprintf(k, sizeof k, "k%d", i);
    ASSERT(is_big(tu_get_s(r, k), i == 3 ? 1003 : i, 512));
  }
  vh_tab_release(r);
  map_end(&m);
}

/* Big strings are hashed only when used as keys (str.c): big keys stay
 * inline, are found by any equal string, before and after a restart. */
TEST_IMPL(blob_big_keys) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = vh_tab_new(e), *r = NULL;
  lu_map_t m;
  lu_init(&m);
  lu_use(&m);
  for (int i = 0; i < 50; i++) {
    vh_val_t k = big(i, 300 + (size_t)i); /* a key is borrowed */
    ASSERT_EQ(vh_tab_set(&t, k, vh_int(i), e), 0);
    vh_val_release(k);
  }
  vh_val_t v = big(3, 303);
  ASSERT_EQ(vh_tab_set(&t, v, big(3, 303), e), 0); /* key == value bytes */
  vh_val_release(v);
  flush(&m, t, &next);
  root = vh_tab_id(t);
  ASSERT_EQ(count_blobs(&m), 1); /* the one big value; keys inline */
  for (int pass = 0; pass < 2; pass++) {
    vh_tab_t *x = pass == 0 ? t : (r = vh_tab_stub(root));
    for (int i = 0; i < 50; i++) {
      vh_val_t k = big(i, 300 + (size_t)i), got;
      vh_tab_get(x, k, &got);
      if (i == 3)
        ASSERT(is_big(got, 3, 303));
      else
        ASSERT(got.type == VH_TINT && got.u.i == i);
      vh_tab_get_str(x, vh_str_data(k.u.s), vh_str_len(k.u.s), &got);
      ASSERT(got.type != VH_TNIL);
      vh_val_release(k);
    }
    ASSERT_CHECK(x);
    ASSERT_EQ(vh_tab_count(x), 50);
  }
  vh_tab_release(r);
  vh_tab_release(t);
  ASSERT_CLEAN();
  lu_free(&m);
}

VH_TEST_MAIN(TEST_ENTRY(blob_big_keys), TEST_ENTRY(blob_rewrite_is_small),
             TEST_ENTRY(blob_one_slot), TEST_ENTRY(blob_views_and_faults),
             TEST_ENTRY(blob_inline_moves_out))
