/*
 * test_tdiff.c - the table diff walker (persist/tdiff.c).
 *
 * Differential: random tables, random edits through a fresh token (so the
 * two versions share what was not touched, as in the host), and the
 * walker's output compared with a naive full walk of both versions (every
 * key of both, sorted, nested tables always descended). The same over
 * stubs read back from an in-memory store, and a count of node loads that
 * proves shared subtrees are skipped: 10 changes in a 100k-key table load
 * a few dozen nodes, not thousands.
 */
#include "lazy_util.h"
#include "vh_tdiff.h"

/* ---- recorded changes ---- */

typedef struct rec {
  int op;
  vh_val_t *path;
  size_t depth;
  vh_val_t old, new;
} rec_t;

typedef struct recs {
  rec_t *r;
  size_t n, cap;
} recs_t;

static int rec_cb(void *arg, const vh_tdiff_change_t *c) {
  recs_t *rs = arg;
  if (rs->n == rs->cap) {
    rs->cap = rs->cap ? 2 * rs->cap : 64;
    rs->r = realloc(rs->r, rs->cap * sizeof *rs->r);
  }
  rec_t *r = &rs->r[rs->n++];
  r->op = c->op;
  r->depth = c->depth;
  r->path = malloc((c->depth + 1) * sizeof *r->path);
  memcpy(r->path, c->path, c->depth * sizeof *r->path);
  r->old = c->old;
  r->new = c->new;
  return 0;
}

static void recs_free(recs_t *rs) {
  for (size_t i = 0; i < rs->n; i++) free(rs->r[i].path);
  free(rs->r);
  memset(rs, 0, sizeof *rs);
}

/* ---- the naive diff: every key of both sides, nested tables always ---- */

typedef struct nctx {
  vh_val_t path[64];
  size_t depth;
  recs_t *out;
} nctx_t;

static int key_sort(const void *p, const void *q) {
  return vh_tdiff_key_cmp(*(const vh_val_t *)p, *(const vh_val_t *)q);
}

static void naive(nctx_t *c, const vh_tab_t *a, const vh_tab_t *b) {
  size_t na = a ? vh_tab_count(a) : 0, nb = b ? vh_tab_count(b) : 0, n = 0;
  vh_val_t *keys = malloc((na + nb + 1) * sizeof *keys), k, v;
  vh_iter_t it;
  if (a != NULL)
    for (vh_iter_init(&it, a); vh_iter_next(&it, &k, &v);) keys[n++] = k;
  if (b != NULL)
    for (vh_iter_init(&it, b); vh_iter_next(&it, &k, &v);) keys[n++] = k;
  qsort(keys, n, sizeof *keys, key_sort);
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && vh_tdiff_key_cmp(keys[i - 1], keys[i]) == 0) continue;
    vh_val_t va = vh_nil(), vb = vh_nil();
    if (a) vh_tab_get(a, keys[i], &va);
    if (b) vh_tab_get(b, keys[i], &vb);
    c->path[c->depth++] = keys[i];
    if (va.type == VH_TTAB && vb.type == VH_TTAB) {
      naive(c, va.u.t, vb.u.t);
    } else if (!vh_tdiff_same(va, vb)) {
      vh_tdiff_change_t ch;
      ch.op = va.type == VH_TNIL ? '+' : vb.type == VH_TNIL ? '-' : '~';
      ch.path = c->path;
      ch.depth = c->depth;
      ch.old = va;
      ch.new = vb;
      rec_cb(c->out, &ch);
    }
    c->depth--;
  }
  free(keys);
}

static int recs_equal(const recs_t *x, const recs_t *y) {
  if (x->n != y->n) {
    fprintf(stderr, "changes: %zu vs %zu\n", x->n, y->n);
    return 0;
  }
  for (size_t i = 0; i < x->n; i++) {
    const rec_t *p = &x->r[i], *q = &y->r[i];
    if (p->op != q->op || p->depth != q->depth) {
      fprintf(stderr, "change %zu: op %c/%c depth %zu/%zu\n", i, p->op, q->op,
              p->depth, q->depth);
      return 0;
    }
    for (size_t d = 0; d < p->depth; d++)
      if (vh_tdiff_key_cmp(p->path[d], q->path[d]) != 0) {
        fprintf(stderr, "change %zu: path differs at %zu\n", i, d);
        return 0;
      }
    if (!vh_val_equal(p->old, q->old) || !vh_val_equal(p->new, q->new)) {
      fprintf(stderr, "change %zu: values differ\n", i);
      return 0;
    }
  }
  return 1;
}

/* ---- random edits through a fresh token ---- */

static void edit_rand(vh_tab_t **t, int nedits, int depth, uint64_t edit) {
  for (int i = 0; i < nedits; i++) {
    int what = lu_below(10);
    vh_val_t k, cur;
    if (what < 2 && vh_tab_len(*t) > 0) { /* pop or push the array */
      int64_t n = vh_tab_len(*t);
      k = vh_int(lu_below(2) ? n : n + 1);
      vh_val_t v = k.u.i == n ? vh_nil() : lu_rval(depth, edit);
      ASSERT_EQ(vh_tab_set(t, k, v, edit), 0);
      continue;
    }
    k = lu_below(3) == 0 && vh_tab_count(*t) > 0 ? vh_nil() : lu_rkey();
    if (k.type == VH_TNIL) { /* an existing key */
      vh_val_t v;
      int skip = lu_below((int)vh_tab_count(*t));
      vh_iter_t it;
      for (vh_iter_init(&it, *t); vh_iter_next(&it, &k, &v) && skip > 0;)
        skip--;
      vh_val_retain(k);
    }
    vh_tab_get(*t, k, &cur);
    if (cur.type == VH_TTAB && depth > 0 && what < 7) {
      /* change inside the nested table */
      vh_tab_t *nt = vh_tab_clone(cur.u.t, edit);
      edit_rand(&nt, 1 + lu_below(4), depth - 1, edit);
      ASSERT_EQ(vh_tab_set(t, k, tu_tab(nt), edit), 0);
    } else {
      vh_val_t v = what == 9 ? vh_nil() : lu_rval(depth, edit);
      ASSERT_EQ(vh_tab_set(t, k, v, edit), 0);
    }
    vh_val_release(k);
  }
}

static void diff_both(const vh_tab_t *a, const vh_tab_t *b, recs_t *w,
                      recs_t *n) {
  nctx_t c;
  ASSERT_EQ(vh_tab_diff(a, b, NULL, 0, rec_cb, w), 0);
  c.depth = 0;
  c.out = n;
  naive(&c, a, b);
}

TEST_IMPL(random_in_memory) {
  for (int round = 0; round < 300; round++) {
    uint64_t e1 = vh_edit_new(), e2 = vh_edit_new();
    vh_tab_t *a = lu_rtab(lu_below(3) ? lu_below(60) : 400, 2, e1);
    vh_tab_t *b = vh_tab_clone(a, e2);
    recs_t w = {0}, n = {0};
    edit_rand(&b, lu_below(12), 2, e2);
    diff_both(a, b, &w, &n);
    ASSERT(recs_equal(&w, &n));
    recs_free(&w);
    recs_free(&n);
    diff_both(b, a, &w, &n); /* the other way round */
    ASSERT(recs_equal(&w, &n));
    recs_free(&w);
    recs_free(&n);
    vh_tab_release(a);
    vh_tab_release(b);
  }
  ASSERT_EQ(vh_trie_live_nodes(), 0);
}

/* Unrelated tables (nothing shared) and NULL (empty) sides. */
TEST_IMPL(random_unrelated) {
  for (int round = 0; round < 100; round++) {
    uint64_t e = vh_edit_new();
    vh_tab_t *a = lu_rtab(lu_below(80), 2, e);
    vh_tab_t *b = lu_rtab(lu_below(80), 2, e);
    recs_t w = {0}, n = {0};
    diff_both(a, b, &w, &n);
    ASSERT(recs_equal(&w, &n));
    recs_free(&w);
    recs_free(&n);
    diff_both(NULL, b, &w, &n);
    ASSERT(recs_equal(&w, &n));
    ASSERT_EQ(w.n, vh_tab_count(b));
    recs_free(&w);
    recs_free(&n);
    vh_tab_release(a);
    vh_tab_release(b);
  }
}

/* Collisions: every key hashes to one of 4 values. */
static uint32_t bad_hash(vh_val_t k) {
  return (uint32_t)(k.type * 7 + (k.type == VH_TINT ? k.u.i & 1 : 0)) * 0x9E37u;
}

TEST_IMPL(collisions) {
  vh_trie_set_test_hash(bad_hash);
  for (int round = 0; round < 100; round++) {
    uint64_t e1 = vh_edit_new(), e2 = vh_edit_new();
    vh_tab_t *a = lu_rtab(lu_below(40), 1, e1);
    vh_tab_t *b = vh_tab_clone(a, e2);
    recs_t w = {0}, n = {0};
    edit_rand(&b, lu_below(8), 1, e2);
    diff_both(a, b, &w, &n);
    ASSERT(recs_equal(&w, &n));
    recs_free(&w);
    recs_free(&n);
    vh_tab_release(a);
    vh_tab_release(b);
  }
  vh_trie_set_test_hash(NULL);
}

/* The REPL's key order, and one line per nested table added. */
TEST_IMPL(order_and_nesting) {
  uint64_t e = vh_edit_new();
  vh_tab_t *a = vh_tab_new(e), *b, *inner = vh_tab_new(e);
  recs_t w = {0};
  ASSERT_EQ(tu_set_s(&inner, "x", vh_int(1), e), 0);
  ASSERT_EQ(tu_set_s(&inner, "y", vh_int(2), e), 0);
  b = vh_tab_clone(a, vh_edit_new());
  e = vh_tab_edit(b);
  ASSERT_EQ(tu_set_s(&b, "b", vh_int(1), e), 0);
  ASSERT_EQ(tu_set_s(&b, "a", tu_tab(inner), e), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_bool(1), vh_int(3), e), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_bool(0), vh_int(3), e), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_float(1.5), vh_int(4), e), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_int(2), vh_int(5), e), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_int(-7), vh_int(6), e), 0);
  ASSERT_EQ(vh_tab_diff(a, b, NULL, 0, rec_cb, &w), 0);
  ASSERT_EQ(w.n, 7);
  ASSERT_EQ(w.r[0].path[0].u.i, -7);
  ASSERT_EQ(w.r[1].path[0].type, VH_TFLOAT);
  ASSERT_EQ(w.r[2].path[0].u.i, 2);
  ASSERT_EQ(w.r[3].path[0].type, VH_TSTR); /* "a" = {x = 1, y = 2} */
  ASSERT_EQ(w.r[3].op, '+');
  ASSERT_EQ(w.r[3].new.type, VH_TTAB);
  ASSERT_EQ(w.r[4].path[0].type, VH_TSTR); /* "b" */
  ASSERT_EQ(w.r[5].path[0].type, VH_TBOOL);
  ASSERT_EQ(w.r[5].path[0].u.b, 0);
  ASSERT_EQ(w.r[6].path[0].u.b, 1);
  recs_free(&w);
  /* The path filter: only under "a", and a scalar path. */
  vh_val_t ka = tu_str("a"), kx = tu_str("x"), p2[2] = {ka, kx};
  ASSERT_EQ(vh_tab_diff(a, b, &ka, 1, rec_cb, &w), 0);
  ASSERT_EQ(w.n, 1);
  ASSERT_EQ(w.r[0].depth, 1);
  recs_free(&w);
  ASSERT_EQ(vh_tab_diff(a, b, p2, 2, rec_cb, &w), 0);
  ASSERT_EQ(w.n, 1);
  ASSERT_EQ(w.r[0].depth, 2);
  ASSERT_EQ(w.r[0].op, '+');
  ASSERT_EQ(w.r[0].new.u.i, 1);
  recs_free(&w);
  ASSERT_EQ(vh_tab_diff(b, b, NULL, 0, rec_cb, &w), 0);
  ASSERT_EQ(w.n, 0);
  vh_val_release(ka);
  vh_val_release(kx);
  vh_tab_release(a);
  vh_tab_release(b);
}

/* A key that moves from the hash part to the array part is one change
 * (or none when its value did not change). */
TEST_IMPL(key_moves_between_parts) {
  uint64_t e = vh_edit_new();
  vh_tab_t *a = vh_tab_new(e), *b;
  recs_t w = {0};
  ASSERT_EQ(vh_tab_set(&a, vh_int(2), vh_int(20), e), 0); /* hash part */
  ASSERT_EQ(vh_tab_set(&a, vh_int(3), vh_int(30), e), 0);
  b = vh_tab_clone(a, vh_edit_new());
  ASSERT_EQ(vh_tab_set(&b, vh_int(1), vh_int(10), vh_tab_edit(b)), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_int(3), vh_int(31), vh_tab_edit(b)), 0);
  ASSERT_EQ(vh_tab_len(b), 3); /* 2 and 3 migrated into the array part */
  ASSERT_EQ(vh_tab_diff(a, b, NULL, 0, rec_cb, &w), 0);
  ASSERT_EQ(w.n, 2);
  ASSERT_EQ(w.r[0].op, '+');
  ASSERT_EQ(w.r[0].path[0].u.i, 1);
  ASSERT_EQ(w.r[1].op, '~');
  ASSERT_EQ(w.r[1].path[0].u.i, 3);
  ASSERT_EQ(w.r[1].old.u.i, 30);
  ASSERT_EQ(w.r[1].new.u.i, 31);
  recs_free(&w);
  vh_tab_release(a);
  vh_tab_release(b);
}

/* ---- over the store: stubs, and loads counted ---- */

static vh_tab_t *big_table(int nkeys, int narr, uint64_t edit) {
  vh_tab_t *t = vh_tab_new(edit);
  char buf[32];
  for (int i = 1; i <= narr; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i), edit), 0);
  for (int i = 0; i < nkeys; i++) {
    snprintf(buf, sizeof buf, "key%d", i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), edit), 0);
  }
  return t;
}

/* Loads to diff two stored versions that differ in `changes` keys. */
static long stored_diff_loads(lu_map_t *m, vh_tab_t *base, int changes,
                              uint64_t *next_id, size_t *nchanges) {
  uint64_t e = vh_edit_new();
  vh_tab_t *b = vh_tab_clone(base, e), *sa, *sb;
  char buf[32];
  recs_t w = {0};
  for (int i = 0; i < changes; i++) {
    snprintf(buf, sizeof buf, "key%d", (int)(lu_rand() % 100000));
    ASSERT_EQ(tu_set_s(&b, buf, vh_int(-1 - i), e), 0);
  }
  ASSERT_EQ(vh_tab_set(&b, vh_int(5000), tu_str("x"), e), 0);
  lu_flush(m, b, next_id);
  sa = vh_tab_stub(vh_tab_id(base));
  sb = vh_tab_stub(vh_tab_id(b));
  lu_loads = 0;
  ASSERT_EQ(vh_tab_diff(sa, sb, NULL, 0, rec_cb, &w), 0);
  long loads = lu_loads;
  *nchanges = w.n;
  recs_free(&w);
  vh_tab_release(sa);
  vh_tab_release(sb);
  vh_tab_release(b);
  return loads;
}

TEST_IMPL(stored_skips_shared) {
  lu_map_t m;
  uint64_t next_id = 1, e = vh_edit_new();
  size_t n1, n10;
  lu_init(&m);
  lu_use(&m);
  vh_tab_t *base = big_table(100000, 10000, e);
  uint64_t all = lu_flush(&m, base, &next_id);
  long l1 = stored_diff_loads(&m, base, 1, &next_id, &n1);
  long l10 = stored_diff_loads(&m, base, 10, &next_id, &n10);
  fprintf(stderr, "nodes %llu; loads: 1 change %ld, 10 changes %ld\n",
          (unsigned long long)all, l1, l10);
  ASSERT_EQ(n1, 2);
  ASSERT_EQ(n10, 11);
  ASSERT(l1 < 40);
  ASSERT(l10 < 200);
  ASSERT(l10 * 20 < (long)all);
  vh_tab_release(base);
  vh_trie_set_loader(NULL, NULL, NULL);
  lu_free(&m);
}

/* Random versions written to the store and read back as stubs (two stubs
 * of one id are distinct nodes: only ids tell they are shared). */
TEST_IMPL(random_stored) {
  lu_map_t m;
  uint64_t next_id = 1;
  lu_init(&m);
  lu_use(&m);
  for (int round = 0; round < 100; round++) {
    uint64_t e1 = vh_edit_new(), e2 = vh_edit_new();
    vh_tab_t *a = lu_rtab(lu_below(3) ? lu_below(60) : 600, 2, e1);
    lu_flush(&m, a, &next_id);
    vh_tab_t *b = vh_tab_clone(a, e2);
    edit_rand(&b, lu_below(12), 2, e2);
    lu_flush(&m, b, &next_id);
    vh_tab_t *sa = vh_tab_stub(vh_tab_id(a)), *sb = vh_tab_stub(vh_tab_id(b));
    recs_t w = {0}, n = {0};
    nctx_t c = {.depth = 0, .out = &n};
    ASSERT_EQ(vh_tab_diff(sa, sb, NULL, 0, rec_cb, &w), 0);
    naive(&c, a, b);
    ASSERT(recs_equal(&w, &n));
    recs_free(&w);
    recs_free(&n);
    vh_tab_release(sa);
    vh_tab_release(sb);
    vh_tab_release(a);
    vh_tab_release(b);
  }
  /* A load failure ends the walk with its code. */
  {
    uint64_t e = vh_edit_new();
    vh_tab_t *a = lu_rtab(200, 1, e);
    lu_flush(&m, a, &next_id);
    vh_tab_t *sa = vh_tab_stub(vh_tab_id(a));
    recs_t w = {0};
    lu_fail_id = vh_tab_id(a);
    ASSERT_EQ(vh_tab_diff(sa, NULL, NULL, 0, rec_cb, &w), VH_EIO);
    ASSERT(vh_trie_fault(NULL) != 0);
    vh_trie_fault_clear();
    lu_fail_id = 0;
    recs_free(&w);
    vh_tab_release(sa);
    vh_tab_release(a);
  }
  vh_trie_set_loader(NULL, NULL, NULL);
  lu_free(&m);
}

/* Array parts whose trees have different heights (a push past 32 * 33
 * slots adds a level; pops take it away) and edits all along them. */
TEST_IMPL(vector_levels) {
  int sizes[] = {0, 1, 32, 33, 64, 65, 1056, 1057, 1100, 33824, 33825};
  int ns = (int)(sizeof sizes / sizeof *sizes);
  for (int i = 0; i < ns; i++)
    for (int j = 0; j < ns; j++) {
      uint64_t e1 = vh_edit_new(), e2 = vh_edit_new();
      vh_tab_t *a = vh_tab_new(e1);
      for (int k = 1; k <= sizes[i]; k++)
        ASSERT_EQ(vh_tab_set(&a, vh_int(k), vh_int(k), e1), 0);
      vh_tab_t *b = vh_tab_clone(a, e2);
      int64_t n = vh_tab_len(b);
      while (n > sizes[j])
        ASSERT_EQ(vh_tab_set(&b, vh_int(n--), vh_nil(), e2), 0);
      while (n < sizes[j]) {
        n++;
        ASSERT_EQ(vh_tab_set(&b, vh_int(n), vh_int(-n), e2), 0);
      }
      for (int c = 0; c < 5 && n > 0; c++)
        ASSERT_EQ(vh_tab_set(&b, vh_int(1 + lu_below((int)n)), vh_int(7), e2),
                  0);
      recs_t w = {0}, nv = {0};
      diff_both(a, b, &w, &nv);
      ASSERT(recs_equal(&w, &nv));
      recs_free(&w);
      recs_free(&nv);
      vh_tab_release(a);
      vh_tab_release(b);
    }
}

/* ---- the change feed's chain of walks: adoption and staging ---- */

static unsigned char *chain_seen; /* per id: loader calls (saturating) */
static uint64_t chain_cap;
static long chain_new_loads; /* loader calls for ids >= chain_lo */
static uint64_t chain_lo;

static int chain_loader(void *arg, uint64_t id, const void **bytes,
                        size_t *len) {
  if (id < chain_cap && chain_seen[id] < 255) chain_seen[id]++;
  if (id >= chain_lo) chain_new_loads++;
  return lu_loader(arg, id, bytes, len);
}

#define CHAIN_V 12

/* Versions v[0..CHAIN_V] of one table (v[0] = base; each later one a few
 * edits through a fresh token), walked as host/runtime/changes.c walks
 * them: view stubs, v[k-1]'s side kept from the previous walk, v[k]'s new
 * ids [lo[k], hi[k]) staged when stage. Every walk's output must equal
 * the naive diff, and the last side must read as v[CHAIN_V]. Returns the
 * number of ids the loader was asked for more than once. */
static long chain_walk(lu_map_t *m, vh_tab_t **v, const uint64_t *lo,
                       const uint64_t *hi, int flags, int stage,
                       uint64_t *used) {
  memset(chain_seen, 0, chain_cap);
  chain_new_loads = 0;
  vh_trie_set_loader(chain_loader, lu_unload, m);
  vh_trie_stage_t *st = stage ? vh_trie_stage_new() : NULL;
  /* a small first table (a diff's hint): the puts grow it past 8 ids */
  if (st != NULL) ASSERT_EQ(vh_trie_stage_reserve(st, 8), 0);
  vh_tab_t *side = vh_tab_stub_view(vh_tab_id(v[0]));
  for (int k = 1; k <= CHAIN_V; k++) {
    vh_tab_t *nb = vh_tab_stub_view(vh_tab_id(v[k]));
    if (st != NULL) {
      for (uint64_t id = lo[k]; id < hi[k]; id++) {
        lu_ent_t *e = lu_get(m, id);
        if (e != NULL) ASSERT_EQ(vh_trie_stage_put(st, id, e->p, e->len), 0);
      }
      ASSERT(vh_trie_stage_use(st) == NULL);
    }
    recs_t w = {0}, n = {0};
    nctx_t c = {.depth = 0, .out = &n};
    ASSERT_EQ(vh_tab_diff_ex(side, nb, NULL, 0, flags, rec_cb, &w), 0);
    if (st != NULL) {
      ASSERT(vh_trie_stage_use(NULL) == st);
      vh_trie_stage_clear(st);
    }
    naive(&c, v[k - 1], v[k]);
    ASSERT(recs_equal(&w, &n));
    recs_free(&w);
    recs_free(&n);
    vh_tab_release(side);
    side = nb;
  }
  const char *why = NULL;
  ASSERT(lu_same(side, v[CHAIN_V]));
  ASSERT_EQ(vh_tab_check(side, &why), 0);
  vh_tab_release(side);
  if (st != NULL) vh_trie_stage_counts(st, NULL, used);
  vh_trie_stage_free(st);
  long twice = 0;
  for (uint64_t id = 0; id < chain_cap; id++) twice += chain_seen[id] > 1;
  vh_trie_set_loader(lu_loader, lu_unload, m);
  return twice;
}

/* A flat table of 20k keys and 2k slots: without adoption the chain reads
 * nodes again (the old side of walk k is a fresh stub tree); with it no
 * id is read twice; with staging too, no id a chain version created is
 * read through the loader at all. Then nested random tables, for the
 * output and the adopted trees' shape. */
TEST_IMPL(feed_chain_adopts) {
  for (int nested = 0; nested < 2; nested++) {
    lu_map_t m;
    uint64_t next_id = 1, lo[CHAIN_V + 1], hi[CHAIN_V + 1], used = 0;
    vh_tab_t *v[CHAIN_V + 1];
    char buf[32];
    lu_init(&m);
    lu_use(&m);
    uint64_t e = vh_edit_new();
    v[0] = nested ? lu_rtab(3000, 2, e) : big_table(20000, 2000, e);
    lo[0] = next_id;
    lu_flush(&m, v[0], &next_id);
    hi[0] = next_id;
    for (int k = 1; k <= CHAIN_V; k++) {
      e = vh_edit_new();
      v[k] = vh_tab_clone(v[k - 1], e);
      if (nested) {
        edit_rand(&v[k], 1 + lu_below(20), 2, e);
      } else {
        for (int i = 0; i < 10; i++) {
          snprintf(buf, sizeof buf, "key%d", (int)(lu_rand() % 20000));
          ASSERT_EQ(tu_set_s(&v[k], buf, vh_int(-k), e), 0);
        }
        ASSERT_EQ(vh_tab_set(&v[k], vh_int(1 + lu_below(2000)), vh_int(-k), e),
                  0);
      }
      lo[k] = next_id;
      lu_flush(&m, v[k], &next_id);
      hi[k] = next_id;
    }
    chain_cap = next_id;
    chain_lo = lo[1];
    chain_seen = calloc(chain_cap, 1);
    long plain = chain_walk(&m, v, lo, hi, 0, 0, NULL);
    long adopted = chain_walk(&m, v, lo, hi, VH_TDIFF_ADOPT, 0, NULL);
    long staged = chain_walk(&m, v, lo, hi, VH_TDIFF_ADOPT, 1, &used);
    long staged_new = chain_new_loads;
    fprintf(stderr,
            "nested %d: ids read twice: plain %ld, adopted %ld, staged %ld; "
            "staged loads %llu, chain ids through the loader %ld\n",
            nested, plain, adopted, staged, (unsigned long long)used,
            staged_new);
    ASSERT(used > 0);
    if (!nested) {
      ASSERT(plain > 10);
      ASSERT_EQ(adopted, 0);
      ASSERT_EQ(staged, 0);
      ASSERT_EQ(staged_new, 0);
    }
    free(chain_seen);
    chain_seen = NULL;
    for (int k = 0; k <= CHAIN_V; k++) vh_tab_release(v[k]);
    vh_trie_set_loader(NULL, NULL, NULL);
    lu_free(&m);
  }
}

/* TWINS (tdiff.c): a feed walk (VH_TDIFF_ADOPT) loads b's changed CHAMP
 * nodes with a's node at the same place as twin, so the children the two
 * versions share are a's objects in b, loaded or not; a plain walk gives
 * b stubs of its own. b stays whole when a goes. */
TEST_IMPL(feed_twins_share_children) {
  lu_map_t m;
  uint64_t next_id = 1;
  lu_init(&m);
  lu_use(&m);
  uint64_t e = vh_edit_new();
  vh_tab_t *v0 = big_table(20000, 0, e);
  lu_flush(&m, v0, &next_id);
  e = vh_edit_new();
  vh_tab_t *v1 = vh_tab_clone(v0, e);
  ASSERT_EQ(tu_set_s(&v1, "key7", vh_int(-7), e), 0);
  lu_flush(&m, v1, &next_id);
  for (int flags = 0; flags <= VH_TDIFF_ADOPT; flags++) {
    size_t live0 = vh_trie_live_nodes();
    vh_tab_t *a = vh_tab_stub_view(vh_tab_id(v0));
    vh_tab_t *b = vh_tab_stub_view(vh_tab_id(v1));
    recs_t w = {0};
    ASSERT_EQ(vh_tab_diff_ex(a, b, NULL, 0, flags, rec_cb, &w), 0);
    ASSERT_EQ(w.n, 1);
    recs_free(&w);
    const vh_champ_t *ca = (const vh_champ_t *)vh_node__res(a->hash);
    const vh_champ_t *cb = (const vh_champ_t *)vh_node__res(b->hash);
    ASSERT(ca != NULL && cb != NULL && ca != cb);
    ASSERT_EQ(ca->nodemap, cb->nodemap);
    int nc = __builtin_popcount(ca->nodemap), shared = 0;
    vh_node_t *const *ka =
        (vh_node_t *const *)(ca->kv + 2 * __builtin_popcount(ca->datamap));
    vh_node_t *const *kb =
        (vh_node_t *const *)(cb->kv + 2 * __builtin_popcount(cb->datamap));
    for (int i = 0; i < nc; i++) shared += ka[i] == kb[i];
    fprintf(stderr, "flags %d: %d of %d root children shared\n", flags, shared,
            nc);
    ASSERT(nc > 8);
    ASSERT_EQ(shared, flags ? nc - 1 : 0); /* all but key7's path */
    vh_tab_release(a);
    ASSERT(lu_same(b, v1));
    const char *why = NULL;
    ASSERT_EQ(vh_tab_check(b, &why), 0);
    vh_tab_release(b);
    ASSERT_EQ(vh_trie_live_nodes(), live0);
  }
  vh_tab_release(v0);
  vh_tab_release(v1);
  vh_trie_set_loader(NULL, NULL, NULL);
  lu_free(&m);
}

/* Keys the walk hands out (vh_key__out turns an inline key slot into a
 * string of its own): in the loaded CHAMP nodes under n (stubs not
 * loaded are not followed), string key slots into *out, inline ones into
 * *in. */
static void count_keys(const vh_node_t *n, int *out, int *in) {
  if (n->flags & VH_F_STUB) n = ((const vh_stub_t *)n)->fwd;
  if (n == NULL || n->kind != VH_K_CHAMP) return;
  const vh_champ_t *c = (const vh_champ_t *)n;
  int nd = __builtin_popcount(c->datamap), nc = __builtin_popcount(c->nodemap);
  for (int i = 0; i < nd; i++) {
    *out += c->kv[2 * i].type == VH_TSTR;
    *in += c->kv[2 * i].type == VH_TIKEY;
  }
  vh_node_t *const *k = (vh_node_t *const *)(c->kv + 2 * nd);
  for (int i = 0; i < nc; i++) count_keys(k[i], out, in);
}

/* A walk hands out only the keys it reports: the unchanged entries of a
 * changed CHAMP node keep their inline form on both sides (each handed
 * out key is a string allocated, hashed and freed with its node: it was
 * done for every entry of every node the feed walked). */
TEST_IMPL(walk_hands_out_changed_keys_only) {
  lu_map_t m;
  uint64_t next_id = 1;
  lu_init(&m);
  lu_use(&m);
  uint64_t e = vh_edit_new();
  vh_tab_t *v0 = big_table(20000, 0, e);
  lu_flush(&m, v0, &next_id);
  e = vh_edit_new();
  vh_tab_t *v1 = vh_tab_clone(v0, e);
  ASSERT_EQ(tu_set_s(&v1, "key7", vh_int(-7), e), 0);
  ASSERT_EQ(tu_set_s(&v1, "key12345", vh_int(-1), e), 0);
  lu_flush(&m, v1, &next_id);
  for (int flags = 0; flags <= VH_TDIFF_ADOPT; flags++) {
    vh_tab_t *a = vh_tab_stub_view(vh_tab_id(v0));
    vh_tab_t *b = vh_tab_stub_view(vh_tab_id(v1));
    recs_t w = {0};
    ASSERT_EQ(vh_tab_diff_ex(a, b, NULL, 0, flags, rec_cb, &w), 0);
    ASSERT_EQ(w.n, 2);
    recs_free(&w);
    int outa = 0, ina = 0, outb = 0, inb = 0;
    count_keys(a->hash, &outa, &ina);
    count_keys(b->hash, &outb, &inb);
    fprintf(stderr, "flags %d: keys handed out a %d of %d, b %d of %d\n", flags,
            outa, outa + ina, outb, outb + inb);
    ASSERT(outa + ina + outb + inb > 8); /* the walk loaded nodes */
    ASSERT(outa <= 2);
    ASSERT(outb <= 2);
    vh_tab_release(a);
    vh_tab_release(b);
  }
  vh_tab_release(v0);
  vh_tab_release(v1);
  vh_trie_set_loader(NULL, NULL, NULL);
  lu_free(&m);
}

/* A table's changes are sorted by tdiff.c's own merge sort: many keys of
 * every type (strings sharing prefixes, of every length; integers in and
 * out of the array part; floats; booleans), against the naive walk's
 * qsort, for sizes around the sort's runs of 8 and far above. */
TEST_IMPL(sorts_many_keys) {
  static const int sizes[] = {2, 7, 8, 9, 16, 17, 100, 1000, 3001};
  char buf[40];
  for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
    uint64_t e = vh_edit_new();
    vh_tab_t *a = vh_tab_new(e), *b = vh_tab_new(e);
    for (int i = 0; i < sizes[z]; i++) {
      uint64_t r = lu_rand();
      vh_tab_t **t = r & 1 ? &b : &a;
      vh_val_t v = vh_int((int64_t)(r >> 8) % 1000);
      switch ((r >> 1) % 5) {
        case 0:
          snprintf(buf, sizeof buf, "%.*s", (int)(r >> 4) % 4, "kkkk");
          snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%d",
                   (int)(lu_rand() % 300));
          ASSERT_EQ(tu_set_s(t, buf, v, e), 0);
          break;
        case 1:
          ASSERT_EQ(
              vh_tab_set(t, vh_int((int64_t)(lu_rand() % 400) - 100), v, e), 0);
          break;
        case 2:
          ASSERT_EQ(
              vh_tab_set(t, vh_float((double)(lu_rand() % 100) + 0.25), v, e),
              0);
          break;
        case 3:
          ASSERT_EQ(vh_tab_set(t, vh_bool((r >> 5) & 1), v, e), 0);
          break;
        default:
          snprintf(buf, sizeof buf, "k%d", (int)(lu_rand() % 5000));
          ASSERT_EQ(tu_set_s(t, buf, v, e), 0);
      }
    }
    recs_t w = {0}, n = {0};
    diff_both(a, b, &w, &n);
    ASSERT(recs_equal(&w, &n));
    recs_free(&w);
    recs_free(&n);
    diff_both(NULL, b, &w, &n);
    ASSERT(recs_equal(&w, &n));
    ASSERT_EQ(w.n, vh_tab_count(b));
    recs_free(&w);
    recs_free(&n);
    vh_tab_release(a);
    vh_tab_release(b);
  }
}

static int stop_cb(void *arg, const vh_tdiff_change_t *c) {
  (void)c;
  return ++*(int *)arg == 3 ? 42 : 0;
}

TEST_IMPL(callback_stops) {
  uint64_t e = vh_edit_new();
  vh_tab_t *b = lu_rtab(50, 1, e);
  int calls = 0;
  ASSERT(vh_tab_count(b) >= 3);
  ASSERT_EQ(vh_tab_diff(NULL, b, NULL, 0, stop_cb, &calls), 42);
  ASSERT_EQ(calls, 3);
  vh_tab_release(b);
}

VH_TEST_MAIN(TEST_ENTRY(random_in_memory), TEST_ENTRY(random_unrelated),
             TEST_ENTRY(collisions), TEST_ENTRY(order_and_nesting),
             TEST_ENTRY(key_moves_between_parts),
             TEST_ENTRY(stored_skips_shared), TEST_ENTRY(random_stored),
             TEST_ENTRY(vector_levels), TEST_ENTRY(callback_stops),
             TEST_ENTRY(feed_chain_adopts),
             TEST_ENTRY(feed_twins_share_children), TEST_ENTRY(sorts_many_keys),
             TEST_ENTRY(walk_hands_out_changed_keys_only))
