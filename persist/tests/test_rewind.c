/*
 * test_rewind.c - vh_rewind_diff (persist/store/rewind.c): the nodes one stored
 * tree reaches and another does not, checked against full reachability
 * over many random versions of a state kept in an in-memory "store" that
 * never deletes (every version stays readable), and the walk's cost: it
 * reads only the nodes it reports.
 */
#include "lazy_util.h"
#include "vh_rewind.h"
#include "vh_test.h"

static long gets; /* nodes read by the walk */

static int map_get(void *arg, uint64_t id, void **bytes, size_t *len,
                   char **errmsg) {
  lu_ent_t *e = lu_get(arg, id);
  if (e == NULL) {
    if (errmsg) *errmsg = strdup("missing node");
    return VH_ENOENT;
  }
  *bytes = malloc(e->len ? e->len : 1);
  memcpy(*bytes, e->p, e->len);
  *len = e->len;
  gets++;
  return 0;
}

typedef struct sides {
  lu_map_t a, b; /* reported only-a / only-b */
  int dup;       /* an id reported twice */
} sides_t;

static int add_a(void *arg, uint64_t id) {
  sides_t *s = arg;
  if (lu_get(&s->a, id)) s->dup = 1;
  return lu_add_cb(&s->a, id);
}

static int add_b(void *arg, uint64_t id) {
  sides_t *s = arg;
  if (lu_get(&s->b, id)) s->dup = 1;
  return lu_add_cb(&s->b, id);
}

/* A writable child table of *parent at key (cloned into edit). */
static vh_tab_t *child_w(vh_tab_t **parent, vh_val_t key, uint64_t edit) {
  vh_val_t v;
  vh_tab_get(*parent, key, &v);
  if (v.type != VH_TTAB) {
    vh_tab_t *n = vh_tab_new(edit);
    if (vh_tab_set(parent, key, tu_tab(n), edit) != 0) abort();
    vh_tab_get(*parent, key, &v);
    return v.u.t;
  }
  if (vh_tab_edit(v.u.t) == edit) return v.u.t;
  vh_tab_t *c = vh_tab_clone(v.u.t, edit);
  if (vh_tab_set(parent, key, tu_tab(c), edit) != 0) abort();
  return c;
}

/* A few random writes: top-level keys, keys of nested tables, whole new
 * subtables, removals. */
static void mutate(vh_tab_t **root, uint64_t edit) {
  int n = 1 + lu_below(8);
  for (int i = 0; i < n; i++) {
    char k[32];
    snprintf(k, sizeof k, "u%d", lu_below(60));
    vh_val_t key = tu_str(k);
    switch (lu_below(4)) {
      case 0: /* a top-level value */
        if (vh_tab_set(root, key, lu_rval(0, edit), edit) != 0) abort();
        break;
      case 1: { /* inside a nested table (cloned into edit: in place) */
        vh_tab_t *c = child_w(root, key, edit);
        if (vh_tab_set(&c, vh_int(1 + lu_below(40)), lu_rval(1, edit), edit))
          abort();
        vh_tab_retain(c); /* c may be a new node now: put it back */
        if (vh_tab_set(root, key, tu_tab(c), edit) != 0) abort();
        break;
      }
      case 2: /* a whole new subtable */
        if (vh_tab_set(root, key, tu_tab(lu_rtab(lu_below(40), 1, edit)),
                       edit) != 0)
          abort();
        break;
      default: /* removal */
        if (vh_tab_set(root, key, vh_nil(), edit) != 0) abort();
    }
    vh_val_release(key);
  }
}

/* Truth by full reachability. */
static void check_pair(lu_map_t *m, uint64_t ra, uint64_t rb) {
  lu_map_t la, lb;
  lu_init(&la);
  lu_init(&lb);
  if (ra) ASSERT_EQ(lu_reach(m, ra, &la), 0);
  if (rb) ASSERT_EQ(lu_reach(m, rb, &lb), 0);
  sides_t s;
  lu_init(&s.a);
  lu_init(&s.b);
  s.dup = 0;
  char *err = NULL;
  gets = 0;
  ASSERT_EQ(vh_rewind_diff(ra, rb, map_get, m, add_a, add_b, &s, &err), 0);
  ASSERT(err == NULL);
  ASSERT_EQ(s.dup, 0);
  size_t want_a = 0, want_b = 0;
  for (size_t i = 0; i < la.cap; i++) {
    uint64_t id = la.e[i].id;
    if (id == 0 || id == LU_TOMB) continue;
    int only = lu_get(&lb, id) == NULL;
    want_a += (size_t)only;
    ASSERT_EQ(lu_get(&s.a, id) != NULL, only);
  }
  for (size_t i = 0; i < lb.cap; i++) {
    uint64_t id = lb.e[i].id;
    if (id == 0 || id == LU_TOMB) continue;
    int only = lu_get(&la, id) == NULL;
    want_b += (size_t)only;
    ASSERT_EQ(lu_get(&s.b, id) != NULL, only);
  }
  ASSERT_EQ(s.a.n, want_a);
  ASSERT_EQ(s.b.n, want_b);
  ASSERT_EQ((size_t)gets, want_a + want_b); /* reads only what differs */
  lu_free(&s.a);
  lu_free(&s.b);
  lu_free(&la);
  lu_free(&lb);
}

TEST_IMPL(diff_random_versions) {
  lu_map_t m;
  lu_init(&m);
  lu_use(&m);
  uint64_t next = 1, roots[40];
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  for (int i = 0; i < 60; i++) {
    char k[32];
    snprintf(k, sizeof k, "u%d", i);
    ASSERT_EQ(tu_set_s(&t, k, tu_tab(lu_rtab(5 + lu_below(30), 1, e)), e), 0);
  }
  for (int v = 0; v < 40; v++) {
    lu_flush(&m, t, &next);
    roots[v] = vh_tab_id(t);
    e = vh_edit_new();
    vh_tab_t *c = vh_tab_clone(t, e);
    vh_tab_release(t);
    t = c;
    mutate(&t, e);
  }
  vh_tab_release(t);
  for (int i = 0; i < 200; i++) {
    int x = lu_below(40), y = lu_below(40);
    check_pair(&m, roots[x], roots[y]);
  }
  check_pair(&m, roots[0], roots[0]);
  check_pair(&m, roots[3], 0);
  check_pair(&m, 0, roots[5]);
  lu_free(&m);
  vh_trie_set_loader(NULL, NULL, NULL);
}

TEST_IMPL(diff_bad_input) {
  lu_map_t m;
  lu_init(&m);
  sides_t s;
  lu_init(&s.a);
  lu_init(&s.b);
  char *err = NULL;
  ASSERT_EQ(vh_rewind_diff(5, 7, map_get, &m, add_a, add_b, &s, &err),
            VH_ENOENT);
  ASSERT(err != NULL);
  free(err);
  lu_put(&m, 9, "\xff\xff", 2); /* does not decode */
  err = NULL;
  ASSERT_LT(vh_rewind_diff(9, 0, map_get, &m, add_a, add_b, &s, &err), 0);
  ASSERT(err != NULL && strstr(err, "node 9") != NULL);
  free(err);
  lu_free(&s.a);
  lu_free(&s.b);
  lu_free(&m);
}

/* A tree made a view reports no death when released, partly loaded or
 * not, and refuses writes; the same tree released without it reports. */
TEST_IMPL(make_view_silences_deaths) {
  lu_map_t m;
  lu_init(&m);
  lu_use(&m);
  uint64_t next = 1, e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  for (int i = 0; i < 300; i++) {
    char k[32];
    snprintf(k, sizeof k, "u%d", i);
    ASSERT_EQ(tu_set_s(&t, k, tu_tab(lu_rtab(5 + lu_below(20), 1, e)), e), 0);
  }
  lu_flush(&m, t, &next);
  uint64_t root = vh_tab_id(t);
  vh_tab_release(t);
  for (int round = 0; round < 2; round++) {
    vh_tab_t *r = vh_tab_stub(root);
    for (int i = 0; i < 300; i += 7) { /* load part of it */
      char k[32];
      snprintf(k, sizeof k, "u%d", i);
      vh_val_t v = tu_get_s(r, k);
      ASSERT_EQ(v.type, VH_TTAB);
      vh_tab_count(v.u.t);
    }
    lu_hook_on(1);
    if (round == 0) {
      ASSERT_EQ(vh_tab_make_view(r), 0);
      ASSERT(vh_tab_is_view(r));
      vh_tab_t *w = r;
      vh_tab_retain(w);
      ASSERT_EQ(tu_set_s(&w, "x", vh_int(1), vh_edit_new()), VH_EREADONLY);
      vh_tab_release(w);
    }
    vh_tab_release(r);
    if (round == 0)
      ASSERT_EQ(lu_deaths.n, 0);
    else
      ASSERT_GT(lu_deaths.n, 0);
  }
  lu_hook_free();
  lu_free(&m);
  vh_trie_set_loader(NULL, NULL, NULL);
}

VH_TEST_MAIN(TEST_ENTRY(make_view_silences_deaths),
             TEST_ENTRY(diff_random_versions), TEST_ENTRY(diff_bad_input))
