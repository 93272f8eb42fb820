/*
 * test_flush.c - collecting new nodes (persist/trie/flush.c): children before
 * parents, only new nodes (O(changes), not O(state)), all-or-nothing on a
 * failing put, written nodes frozen, shared nodes written once, and deep
 * nesting without recursion.
 */
#include "lazy_util.h"

/* ---- order and counts ---- */

typedef struct order {
  lu_map_t *m;
  uint64_t bytes;
  int missing;
} order_t;

static int child_known(void *arg, uint64_t id) {
  order_t *o = arg;
  if (lu_get(o->m, id) == NULL) o->missing++;
  return 0;
}

static int put_checked(void *arg, uint64_t id, const void *bytes, size_t len) {
  order_t *o = arg;
  if (vh_codec_child_ids(bytes, len, child_known, o, NULL, NULL) != 0)
    o->missing += 1000;
  o->bytes += len;
  return lu_put_cb(o->m, id, bytes, len);
}

TEST_IMPL(children_first) {
  uint64_t e = vh_edit_new(), next = 5;
  vh_tab_t *t = lu_rtab(3000, 3, e);
  lu_map_t m;
  order_t o;
  vh_flush_stats_t st;
  int i;
  for (i = 1; i <= 5000; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i), e), 0);
  lu_init(&m);
  o.m = &m;
  o.bytes = 0;
  o.missing = 0;
  ASSERT_EQ(vh_flush_collect(&t, 1, &next, put_checked, &o, &st), 0);
  ASSERT_EQ(o.missing, 0);
  ASSERT_EQ(st.nodes, m.n);
  ASSERT_EQ(st.bytes, o.bytes);
  ASSERT_EQ(next, 5 + m.n);
  ASSERT_EQ(vh_tab_id(t), next - 1); /* the root comes last */
  ASSERT(lu_get(&m, 4) == NULL && lu_get(&m, 5) != NULL);
  /* nothing new: nothing written */
  ASSERT_EQ(vh_flush_collect(&t, 1, &next, put_checked, &o, &st), 0);
  ASSERT_EQ(st.nodes, 0);
  next = 0;
  ASSERT_EQ(vh_flush_collect(&t, 1, &next, put_checked, &o, &st), VH_EINVAL);
  vh_tab_release(t);
  ASSERT_CLEAN();
  lu_free(&m);
}

/* One write to a big table writes its path, not the table. */
TEST_IMPL(only_new_paths) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = vh_tab_new(e), *old;
  lu_map_t m;
  char buf[32];
  int i, pass;
  for (i = 0; i < 200000; i++) {
    snprintf(buf, sizeof buf, "key%d", i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e), 0);
  }
  for (i = 1; i <= 100000; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i), e), 0);
  lu_init(&m);
  lu_use(&m);
  ASSERT_GT(lu_flush(&m, t, &next), 5000);
  root = vh_tab_id(t);
  /* pass 0: the in-memory version; pass 1: after a restart (lazy) */
  for (pass = 0; pass < 2; pass++) {
    uint64_t e2 = vh_edit_new(), n;
    if (pass == 1) {
      vh_tab_release(t);
      t = vh_tab_stub(root);
    }
    old = t;
    vh_tab_retain(old);
    ASSERT_EQ(tu_set_s(&t, "key4242", vh_int(-1), e2), 0);
    n = lu_flush(&m, t, &next);
    ASSERT_GE(n, 3); /* the table, the CHAMP root, ... */
    ASSERT_LE(n, 8); /* ... down to the key's level */
    {
      vh_tab_t *written = t; /* frozen by the collect: a write copies */
      ASSERT_EQ(tu_set_s(&t, "key4242", vh_int(-2), e2), 0);
      ASSERT(t != written);
    }
    ASSERT_EQ(tu_get_s(old, "key4242").u.i, pass == 0 ? 4242 : -2);
    vh_tab_release(old);
    old = t;
    vh_tab_retain(old);
    ASSERT_EQ(vh_tab_set(&t, vh_int(777), vh_int(0), e2), 0);
    /* the table, the CHAMP path of -2, 3 inner nodes and 1 leaf */
    n = lu_flush(&m, t, &next);
    ASSERT_GE(n, 5 + 1);
    ASSERT_LE(n, 5 + 8);
    vh_tab_release(old);
    root = vh_tab_id(t);
  }
  vh_tab_release(t);
  ASSERT_CLEAN();
  lu_free(&m);
}

/* ---- all or nothing ---- */

static long fail_at;

static int put_failing(void *arg, uint64_t id, const void *bytes, size_t len) {
  if (--fail_at == 0) return VH_EIO;
  return lu_put_cb(arg, id, bytes, len);
}

TEST_IMPL(rollback_on_put_failure) {
  uint64_t e = vh_edit_new(), next = 100;
  vh_tab_t *t;
  lu_map_t m;
  vh_flush_stats_t st;
  uint64_t total;
  long k;
  lu_rng = 12345;
  t = lu_rtab(800, 2, e);
  lu_init(&m);
  ASSERT_EQ(vh_flush_collect(&t, 1, &next, put_failing, &m, &st), 0);
  total = st.nodes;
  ASSERT_GT(total, 10);
  lu_free(&m);
  vh_tab_release(t);
  for (k = 1; k <= (long)total; k += 1 + (long)total / 40) {
    lu_rng = 12345;
    t = lu_rtab(800, 2, e);
    lu_init(&m);
    fail_at = k;
    next = 100;
    ASSERT_EQ(vh_flush_collect(&t, 1, &next, put_failing, &m, &st), VH_EIO);
    ASSERT_EQ(next, 100);
    ASSERT_EQ(vh_tab_id(t), 0);
    ASSERT_EQ(vh_tab_edit(t), e); /* still the writer's */
    lu_free(&m);
    lu_init(&m); /* the batch was dropped: retry writes everything */
    fail_at = 0;
    ASSERT_EQ(vh_flush_collect(&t, 1, &next, put_failing, &m, &st), 0);
    ASSERT_EQ(st.nodes, m.n);
    lu_use(&m);
    {
      vh_tab_t *r = vh_tab_stub(vh_tab_id(t));
      ASSERT(lu_same(r, t));
      vh_tab_release(r);
    }
    vh_tab_release(t);
    lu_free(&m);
  }
  ASSERT_CLEAN();
}

/* Shared nodes (a clone and its original both as roots) are written once:
 * the pair costs the original plus the clone's new path. */
TEST_IMPL(shared_written_once) {
  uint64_t e = vh_edit_new(), e2, next = 1;
  vh_tab_t *roots[2];
  lu_map_t m;
  vh_flush_stats_t st;
  uint64_t together = 0, alone, extra;
  int pass;
  for (pass = 0; pass < 2; pass++) {
    lu_rng = 777;
    roots[0] = lu_rtab(2000, 1, e);
    e2 = vh_edit_new();
    roots[1] = vh_tab_clone(roots[0], e2);
    ASSERT_EQ(tu_set_s(&roots[1], "new", vh_int(1), e2), 0);
    lu_init(&m);
    if (pass == 0) {
      ASSERT_EQ(vh_flush_collect(roots, 2, &next, lu_put_cb, &m, &st), 0);
      together = st.nodes;
    } else {
      ASSERT_EQ(vh_flush_collect(roots, 1, &next, lu_put_cb, &m, &st), 0);
      alone = st.nodes;
      ASSERT_EQ(vh_flush_collect(roots + 1, 1, &next, lu_put_cb, &m, &st), 0);
      extra = st.nodes;
      ASSERT_LE(extra, 8);
      ASSERT_EQ(together, alone + extra);
    }
    vh_tab_release(roots[0]);
    vh_tab_release(roots[1]);
    lu_free(&m);
  }
  ASSERT_CLEAN();
}

/* 100,000 nested tables: collected, reloaded and freed without deep
 * recursion. */
TEST_IMPL(deep_nesting) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = vh_tab_new(e), *r;
  lu_map_t m;
  vh_val_t v;
  int i;
  for (i = 0; i < 100000; i++) {
    vh_tab_t *p = vh_tab_new(e);
    ASSERT_EQ(tu_set_s(&p, "next", tu_tab(t), e), 0);
    ASSERT_EQ(vh_tab_set(&p, vh_int(1), vh_int(i), e), 0);
    t = p;
  }
  lu_init(&m);
  lu_use(&m);
  /* each level: table, tail, CHAMP root; the innermost: an empty table */
  ASSERT_EQ(lu_flush(&m, t, &next), 3 * 100000 + 1);
  root = vh_tab_id(t);
  vh_tab_release(t);
  ASSERT_CLEAN();
  r = vh_tab_stub(root);
  v = tu_tab(r);
  for (i = 99999; i >= 0; i--) {
    ASSERT_EQ(tu_get_i(v.u.t, 1).u.i, i);
    v = tu_get_s(v.u.t, "next");
    ASSERT_EQ(v.type, VH_TTAB);
  }
  ASSERT_EQ(vh_tab_count(v.u.t), 0);
  ASSERT_EQ(vh_trie_fault(NULL), 0);
  lu_hook_on(1);
  vh_tab_release(r);
  ASSERT_EQ(lu_deaths.n, m.n); /* everything loaded: each node once */
  lu_hook_free();
  ASSERT_CLEAN();
  lu_free(&m);
}

VH_TEST_MAIN(TEST_ENTRY(children_first), TEST_ENTRY(only_new_paths),
             TEST_ENTRY(rollback_on_put_failure),
             TEST_ENTRY(shared_written_once), TEST_ENTRY(deep_nesting))
