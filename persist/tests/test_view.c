/*
 * test_view.c - view stubs (vh_tab_stub_view, persist/trie/lazy.c): nodes
 * loaded under a view never reach the free hook and refuse writes, while
 * the same walk under a plain stub reports every node.
 */
#include "lazy_util.h"

/* A stored nested table: 3000 string keys, an array of 100, and nested
 * tables (so a walk loads CHAMP, collision-free vector and table nodes).
 * Returns its root id; the in-memory copy is released. */
static uint64_t build(lu_map_t *m, size_t *nodes) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = lu_rtab(3000, 2, e);
  int i;
  for (i = 1; i <= 100; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i * 10), e), 0);
  vh_tab_t *sub = vh_tab_new(e);
  ASSERT_EQ(tu_set_s(&sub, "deep", vh_int(42), e), 0);
  vh_val_t sv;
  sv.type = VH_TTAB;
  sv.u.t = sub;
  ASSERT_EQ(tu_set_s(&t, "sub", sv, e), 0);
  lu_init(m);
  lu_use(m);
  lu_flush(m, t, &next);
  root = vh_tab_id(t);
  vh_tab_release(t);
  *nodes = m->n;
  return root;
}

/* Touch every node under t (iterating loads all of it, nested tables
 * included) and return the number of entries seen. */
static size_t walk(const vh_tab_t *t) {
  vh_iter_t it;
  vh_val_t k, v;
  size_t n = 0;
  vh_iter_init(&it, t);
  while (vh_iter_next(&it, &k, &v)) {
    n++;
    if (v.type == VH_TTAB) n += walk(v.u.t);
  }
  return n;
}

TEST_IMPL(view_reports_nothing_plain_reports) {
  lu_map_t m;
  size_t nodes, seen_view, seen_plain;
  uint64_t root = build(&m, &nodes);
  lu_hook_on(1);

  /* A view: load it all, read through it, free it: no death notice. */
  vh_tab_t *v = vh_tab_stub_view(root);
  ASSERT(v != NULL);
  ASSERT(vh_tab_is_view(v));
  seen_view = walk(v);
  ASSERT_GT(seen_view, 3000);
  vh_val_t x = tu_get_s(v, "sub");
  ASSERT_EQ(x.type, VH_TTAB);
  ASSERT(vh_tab_is_view(x.u.t)); /* nested tables inherit the flag */
  ASSERT_EQ(tu_get_s(x.u.t, "deep").u.i, 42);
  vh_tab_release(v);
  ASSERT_EQ(lu_deaths.n, 0);
  ASSERT_CLEAN();

  /* A view never loaded: still nothing (not even a subtree notice). */
  v = vh_tab_stub_view(root);
  vh_tab_release(v);
  ASSERT_EQ(lu_deaths.n, 0);

  /* A view partly loaded (one path): nothing. */
  v = vh_tab_stub_view(root);
  vh_tab_get_int(v, 50, &x);
  ASSERT_EQ(x.u.i, 500);
  vh_tab_release(v);
  ASSERT_EQ(lu_deaths.n, 0);

  /* The same under a plain stub: every node reports exactly once. */
  vh_tab_t *p = vh_tab_stub(root);
  seen_plain = walk(p);
  ASSERT_EQ(seen_plain, seen_view);
  vh_tab_release(p);
  ASSERT_EQ(lu_deaths.n, nodes);
  for (size_t i = 0; i < lu_deaths.n; i++) {
    ASSERT(lu_get(&m, lu_deaths.id[i]) != NULL);
    ASSERT_EQ(lu_deaths.subtree[i], 0);
  }
  ASSERT_CLEAN();
  lu_hook_free();
  lu_free(&m);
}

TEST_IMPL(view_beside_live_copy) {
  /* The live version and a view of the same ids side by side: freeing
   * the view reports nothing, freeing the live one reports its nodes. */
  lu_map_t m;
  size_t nodes;
  uint64_t root = build(&m, &nodes);
  lu_hook_on(1);
  vh_tab_t *live = vh_tab_stub(root), *v = vh_tab_stub_view(root);
  ASSERT_EQ(walk(live), walk(v));
  vh_tab_release(v);
  ASSERT_EQ(lu_deaths.n, 0);
  vh_tab_release(live);
  ASSERT_EQ(lu_deaths.n, nodes);
  ASSERT_CLEAN();
  lu_hook_free();
  lu_free(&m);
}

TEST_IMPL(view_refuses_writes) {
  lu_map_t m;
  size_t nodes;
  uint64_t root = build(&m, &nodes);
  uint64_t e = vh_edit_new();
  lu_hook_on(1);
  vh_tab_t *v = vh_tab_stub_view(root), *before = v;
  vh_val_t old = tu_get_s(v, "sub");
  ASSERT_EQ(old.type, VH_TTAB);

  ASSERT_EQ(tu_set_s(&v, "new", vh_int(1), e), VH_EREADONLY);
  ASSERT_PTR_EQ(v, before);
  ASSERT_EQ(tu_get_s(v, "new").type, VH_TNIL);
  ASSERT_EQ(vh_tab_set(&v, vh_int(1), vh_nil(), e), VH_EREADONLY);
  ASSERT_EQ(vh_tab_insert(&v, 1, vh_int(5), e), VH_EREADONLY);
  vh_val_t rem;
  ASSERT_EQ(vh_tab_remove(&v, 1, &rem, e), VH_EREADONLY);
  ASSERT_EQ(rem.type, VH_TNIL);
  /* nested table of the view */
  vh_tab_t *sub = old.u.t;
  vh_tab_retain(sub);
  vh_tab_t *sub0 = sub;
  ASSERT_EQ(tu_set_s(&sub, "deep", vh_int(1), e), VH_EREADONLY);
  ASSERT_PTR_EQ(sub, sub0);
  vh_tab_release(sub);
  /* a clone of a view is a view */
  vh_tab_t *cl = vh_tab_clone(v, e);
  ASSERT(cl != NULL);
  ASSERT(vh_tab_is_view(cl));
  ASSERT_EQ(tu_set_s(&cl, "x", vh_int(1), e), VH_EREADONLY);
  vh_tab_release(cl);
  /* storing a view table into a live table: refused (val released) */
  vh_tab_t *live = vh_tab_new(e);
  vh_val_t tv;
  tv.type = VH_TTAB;
  tv.u.t = v;
  vh_tab_retain(v); /* each refusal releases the value it was handed */
  ASSERT_EQ(tu_set_s(&live, "copy", tv, e), VH_EREADONLY);
  vh_tab_retain(v);
  ASSERT_EQ(vh_tab_insert(&live, 1, tv, e), VH_EREADONLY);
  /* a deep copy of a view is an ordinary table, storable */
  vh_tab_t *dc = vh_tab_deepcopy(v, e);
  ASSERT(dc != NULL);
  ASSERT(!vh_tab_is_view(dc));
  tv.u.t = dc;
  ASSERT_EQ(tu_set_s(&live, "copy", tv, e), 0);
  ASSERT(vh_val_equal(tu_get_s(live, "copy"), tu_tab(v)));
  vh_tab_release(live);
  vh_tab_release(v);
  ASSERT_EQ(lu_deaths.n, 0);
  ASSERT_CLEAN();
  lu_hook_free();
  lu_free(&m);
}

/* A private copy (vh_tab_stub_private, a replay's fork): writable at any
 * depth, readable after, and freeing it (old loaded nodes and the new
 * ones its writes made) reports no death; the stored version is intact. */
TEST_IMPL(private_copy_writes_and_reports_nothing) {
  lu_map_t m;
  size_t nodes;
  uint64_t root = build(&m, &nodes);
  lu_hook_on(1);
  uint64_t e = vh_edit_new();
  vh_tab_t *p = vh_tab_stub_private(root);
  ASSERT(p != NULL);
  ASSERT(!vh_tab_is_view(p));
  ASSERT_EQ(vh_tab_set(&p, vh_int(50), vh_int(-1), e), 0);
  ASSERT_EQ(tu_set_s(&p, "new", vh_int(7), e), 0);
  vh_val_t x = tu_get_s(p, "sub");
  ASSERT_EQ(x.type, VH_TTAB);
  vh_tab_t *sub = x.u.t;
  vh_tab_retain(sub);
  ASSERT_EQ(tu_set_s(&sub, "deep", vh_int(43), e), 0);
  vh_val_t sv;
  sv.type = VH_TTAB;
  sv.u.t = sub;
  ASSERT_EQ(tu_set_s(&p, "sub", sv, e), 0);
  ASSERT_EQ(walk(p), walk(p));
  vh_tab_get_int(p, 50, &x);
  ASSERT_EQ(x.u.i, -1);
  ASSERT_EQ(tu_get_s(tu_get_s(p, "sub").u.t, "deep").u.i, 43);
  vh_tab_release(p);
  ASSERT_EQ(lu_deaths.n, 0);
  /* the stored version is unchanged */
  vh_tab_t *v = vh_tab_stub_view(root);
  vh_tab_get_int(v, 50, &x);
  ASSERT_EQ(x.u.i, 500);
  ASSERT_EQ(tu_get_s(tu_get_s(v, "sub").u.t, "deep").u.i, 42);
  vh_tab_release(v);
  ASSERT_EQ(lu_deaths.n, 0);
  ASSERT_CLEAN();
  lu_hook_free();
  lu_free(&m);
}

VH_TEST_MAIN(TEST_ENTRY(private_copy_writes_and_reports_nothing),
             TEST_ENTRY(view_reports_nothing_plain_reports),
             TEST_ENTRY(view_beside_live_copy), TEST_ENTRY(view_refuses_writes))
