/*
 * test_lazy.c - lazy loading, death notices and the disk-tracks-live-state
 * invariant (persist/trie/lazy.c, flush.c, codec.c through the trie's API).
 *
 * A "store" is an in-memory map id -> bytes (lazy_util.h). A "restart"
 * releases every in-memory table (with the free hook muted: a process
 * that dies reports nothing) and makes a new root with vh_tab_stub().
 */
#include "lazy_util.h"

/* ---- round trip ---- */

static void roundtrip(vh_tab_t *t) {
  lu_map_t m;
  uint64_t next = 1, n;
  vh_tab_t *r;
  lu_init(&m);
  lu_use(&m);
  n = lu_flush(&m, t, &next);
  ASSERT_EQ(n, m.n);
  ASSERT_EQ(next, n + 1);
  r = vh_tab_stub(vh_tab_id(t));
  ASSERT(r != NULL);
  ASSERT(vh_tab_unloaded(r));
  ASSERT(lu_same(t, r));
  ASSERT(vh_val_equal(tu_tab(t), tu_tab(r)));
  ASSERT_CHECK(r);
  ASSERT_EQ(vh_trie_fault(NULL), 0);
  vh_tab_release(r);
  lu_free(&m);
}

TEST_IMPL(roundtrip_random) {
  int i;
  uint64_t e = vh_edit_new();
  for (i = 0; i < 40; i++) {
    vh_tab_t *t = lu_rtab(1 + lu_below(i < 30 ? 200 : 3000), 3, e);
    roundtrip(t);
    vh_tab_release(t);
  }
  ASSERT_CLEAN();
}

TEST_IMPL(roundtrip_big) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  char buf[32];
  int i;
  /* 120k string keys, a 40k array with holes, a 3 MB string, nesting. */
  for (i = 0; i < 120000; i++) {
    snprintf(buf, sizeof buf, "key%d", i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e), 0);
  }
  for (i = 1; i <= 40000; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_float(i / 3.0), e), 0);
  for (i = 7; i < 40000; i += 7) /* holes */
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_nil(), e), 0);
  {
    size_t len = 3u << 20;
    char *big = malloc(len);
    vh_val_t v;
    for (i = 0; i < (int)len; i++) big[i] = (char)(i * 31);
    v.u.s = vh_str_new(big, len);
    v.type = VH_TSTR;
    free(big);
    ASSERT_EQ(tu_set_s(&t, "big", v, e), 0);
  }
  ASSERT_EQ(tu_set_s(&t, "nested", tu_tab(lu_rtab(500, 4, e)), e), 0);
  ASSERT_EQ(vh_tab_len(t), 40000);
  roundtrip(t);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* A weak hash: 512 distinct values, so 5000 keys collide at depth 7. */
static uint32_t weak_hash(vh_val_t k) {
  uint64_t x;
  switch (k.type) {
    case VH_TSTR:
      x = k.u.s->hash;
      break;
    case VH_TINT:
      x = (uint64_t)k.u.i * 0x9E3779B97F4A7C15ull >> 20;
      break;
    case VH_TFLOAT:
      memcpy(&x, &k.u.f, sizeof x);
      x = x * 0x9E3779B97F4A7C15ull >> 20;
      break;
    default:
      x = (uint64_t)k.u.b;
  }
  return (uint32_t)(x & 511) * 0x01000193u;
}

TEST_IMPL(roundtrip_collisions) {
  uint64_t e;
  int i;
  vh_trie_set_test_hash(weak_hash);
  e = vh_edit_new();
  for (i = 0; i < 6; i++) {
    vh_tab_t *t = lu_rtab(i < 5 ? 300 : 5000, 2, e);
    roundtrip(t);
    vh_tab_release(t);
  }
  ASSERT_CLEAN();
  vh_trie_set_test_hash(NULL);
}

/* ---- laziness ---- */

TEST_IMPL(laziness_1m) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *t = vh_tab_new(e), *r;
  lu_map_t m;
  vh_val_t v;
  char buf[32];
  int i;
  for (i = 0; i < 1000000; i++) {
    snprintf(buf, sizeof buf, "key%d", i);
    ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e), 0);
  }
  for (i = 1; i <= 1000000; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(-i), e), 0);
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, t, &next);
  root = vh_tab_id(t);
  vh_tab_release(t);
  ASSERT_CLEAN();

  r = vh_tab_stub(root);
  lu_loads = 0;
  v = tu_get_s(r, "key777777");
  ASSERT_EQ(v.type, VH_TINT);
  ASSERT_EQ(v.u.i, 777777);
  /* the table node, then one CHAMP node per level (~4-5 for 1M keys) */
  ASSERT_LE(lu_loads, 9);
  ASSERT_GE(lu_loads, 3);
  lu_loads = 0;
  v = tu_get_s(r, "key777777"); /* cached: no load */
  ASSERT_EQ(lu_loads, 0);
  v = tu_get_i(r, 654321);
  ASSERT_EQ(v.u.i, -654321);
  ASSERT_LE(lu_loads, 5); /* inner levels (shift 15) + leaf */
  lu_loads = 0;
  ASSERT_EQ(vh_tab_len(r), 1000000);
  ASSERT_EQ(vh_tab_count(r), 2000000);
  v = tu_get_i(r, 1000000); /* the tail */
  ASSERT_EQ(v.u.i, -1000000);
  ASSERT_EQ(lu_loads, 1);
  ASSERT(vh_trie_live_nodes() < 400); /* loaded paths and their stubs */
  ASSERT_EQ(vh_trie_fault(NULL), 0);
  vh_tab_release(r);
  ASSERT_CLEAN();
  lu_free(&m);
}

/* ---- incremental rounds: disk tracks live state ---- */

static vh_val_t key_s(const char *fmt, int i) {
  char buf[32];
  snprintf(buf, sizeof buf, fmt, i);
  return tu_str(buf);
}

/* The exclusive version of table *parent[key] (cloned into the parent if
 * needed); NULL if that value is not a table. */
static vh_tab_t *child_w(vh_tab_t **parent, vh_val_t key, uint64_t edit) {
  vh_val_t v;
  vh_tab_t *c;
  vh_tab_get(*parent, key, &v);
  if (v.type != VH_TTAB) return NULL;
  if (vh_tab_edit(v.u.t) == edit) return v.u.t;
  c = vh_tab_clone(v.u.t, edit);
  if (c == NULL) abort();
  if (vh_tab_set(parent, key, tu_tab(c), edit) != 0) abort();
  return c;
}

/* [new] v for one more holder: tables are deep-copied (one-parent rule). */
static vh_val_t dup(vh_val_t v, uint64_t edit) {
  if (v.type == VH_TTAB) return tu_tab(vh_tab_deepcopy(v.u.t, edit));
  vh_val_retain(v);
  return v;
}

typedef struct op {
  int kind, a, b;
  int64_t pos;
  vh_val_t v; /* [new], released by the caller after both applies */
} op_t;

static void apply(vh_tab_t **root, const op_t *o, uint64_t edit) {
  vh_val_t k = vh_nil(), k2 = vh_nil(), old;
  vh_tab_t *c, *l;
  int64_t n;
  switch (o->kind) {
    case 0: /* root.r<a> = v */
    case 1: /* root.r<a> = nil */
      k = key_s("r%d", o->a);
      if (vh_tab_set(root, k, o->kind ? vh_nil() : dup(o->v, edit), edit))
        abort();
      break;
    case 2: /* table.insert(root.list, pos, v) */
    case 3: /* table.remove(root.list, pos) */
    case 4: /* root.list[pos] = v or nil */
      k = tu_str("list");
      if ((l = child_w(root, k, edit)) == NULL) break;
      n = vh_tab_len(l);
      if (o->kind == 2) {
        if (o->v.type == VH_TNIL) break;
        if (vh_tab_insert(&l, 1 + o->pos % (n + 1), dup(o->v, edit), edit))
          abort();
      } else if (o->kind == 3) {
        if (n == 0) break;
        if (vh_tab_remove(&l, 1 + o->pos % n, &old, edit)) abort();
        vh_val_release(old);
      } else {
        if (vh_tab_set(&l, vh_int(1 + o->pos % (n + 2)), dup(o->v, edit), edit))
          abort();
      }
      break;
    case 5: /* root.m.u<a> = v (a table) or nil */
      k = tu_str("m");
      if ((c = child_w(root, k, edit)) == NULL) break;
      k2 = key_s("u%d", o->a);
      if (vh_tab_set(&c, k2, o->b ? vh_nil() : dup(o->v, edit), edit)) abort();
      break;
    case 6: /* root.m.u<a>.f<b> = v */
      k = tu_str("m");
      if ((c = child_w(root, k, edit)) == NULL) break;
      k2 = key_s("u%d", o->a);
      if ((c = child_w(&c, k2, edit)) == NULL) break;
      vh_val_release(k2);
      k2 = key_s("f%d", o->b);
      if (vh_tab_set(&c, k2, dup(o->v, edit), edit)) abort();
      break;
    default: /* root.m = {} : drops a big, mostly unloaded subtree */
      k = tu_str("m");
      if (vh_tab_set(root, k, tu_tab(vh_tab_new(edit)), edit)) abort();
      break;
  }
  vh_val_release(k);
  vh_val_release(k2);
}

static void random_op(op_t *o, uint64_t edit) {
  int p = lu_below(100);
  o->kind = p < 20   ? 0
            : p < 28 ? 1
            : p < 40 ? 2
            : p < 50 ? 3
            : p < 60 ? 4
            : p < 75 ? 5
            : p < 99 ? 6
                     : 7;
  o->a = lu_below(o->kind <= 1 ? 400 : 300);
  o->b = lu_below(o->kind == 5 ? 4 : 30) == 0;
  if (o->kind == 6) o->b = lu_below(30);
  o->pos = (int64_t)(lu_rand() >> 1);
  if (o->kind == 5)
    o->v = tu_tab(lu_rtab(lu_below(30), 1, edit));
  else
    o->v = lu_rval(o->kind == 0 ? 1 : 0, edit);
}

static vh_tab_t *initial_state(uint64_t e) {
  vh_tab_t *t = vh_tab_new(e), *l = vh_tab_new(e), *m = vh_tab_new(e);
  int i;
  for (i = 1; i <= 300; i++)
    ASSERT_EQ(vh_tab_set(&l, vh_int(i), lu_rval(0, e), e), 0);
  for (i = 0; i < 300; i++) {
    vh_val_t k = key_s("u%d", i);
    ASSERT_EQ(vh_tab_set(&m, k, tu_tab(lu_rtab(5 + lu_below(30), 1, e)), e), 0);
    vh_val_release(k);
  }
  for (i = 0; i < 400; i++) {
    vh_val_t k = key_s("r%d", i);
    ASSERT_EQ(vh_tab_set(&t, k, lu_rval(1, e), e), 0);
    vh_val_release(k);
  }
  ASSERT_EQ(tu_set_s(&t, "list", tu_tab(l), e), 0);
  ASSERT_EQ(tu_set_s(&t, "m", tu_tab(m), e), 0);
  return t;
}

/* After a round: the notices (subtree ones expanded through the map) are
 * exactly the ids the new root no longer reaches; drop them. */
static void check_notices(lu_map_t *m, uint64_t root, long *subtrees) {
  lu_map_t dead, live;
  size_t i;
  lu_init(&dead);
  lu_init(&live);
  for (i = 0; i < lu_deaths.n; i++) {
    uint64_t id = lu_deaths.id[i];
    ASSERT(lu_get(&dead, id) == NULL); /* reported once */
    ASSERT(lu_get(m, id) != NULL);     /* it was on disk */
    if (lu_deaths.subtree[i]) {
      (*subtrees)++;
      ASSERT_EQ(lu_reach(m, id, &dead), 0);
    } else {
      lu_add_cb(&dead, id);
    }
  }
  ASSERT_EQ(lu_reach(m, root, &live), 0);
  for (i = 0; i < m->cap; i++) {
    uint64_t id = m->e[i].id;
    if (id == 0 || id == LU_TOMB) continue;
    /* every stored id is either live or reported dead, never both */
    ASSERT_EQ(lu_get(&live, id) != NULL, lu_get(&dead, id) == NULL);
  }
  for (i = 0; i < dead.cap; i++) {
    uint64_t id = dead.e[i].id;
    if (id != 0 && id != LU_TOMB) ASSERT(lu_del(m, id));
  }
  ASSERT_EQ(m->n, live.n); /* no garbage left on "disk" */
  lu_free(&dead);
  lu_free(&live);
}

TEST_IMPL(incremental_rounds) {
  uint64_t e = vh_edit_new(), next = 1, root, written;
  vh_tab_t *cur, *model, *base;
  lu_map_t m;
  long subtrees = 0;
  int round, i;
  lu_init(&m);
  lu_use(&m);
  lu_hook_on(0);
  cur = initial_state(e);
  model = vh_tab_deepcopy(cur, e);
  lu_flush(&m, cur, &next);
  root = vh_tab_id(cur);
  for (round = 0; round < 60; round++) {
    uint64_t edit = vh_edit_new(), medit = vh_edit_new();
    if (round % 4 == 0) { /* restart */
      lu_deaths.on = 0;
      vh_tab_release(cur);
      cur = vh_tab_stub(root);
    }
    lu_deaths.on = 1;
    lu_deaths.n = 0;
    base = cur;
    vh_tab_retain(base);
    for (i = 0; i < 1 + lu_below(40); i++) {
      op_t o;
      random_op(&o, medit);
      apply(&cur, &o, edit);
      apply(&model, &o, medit);
      vh_val_release(o.v);
    }
    written = lu_flush(&m, cur, &next);
    ASSERT(written < 6000); /* new paths and values, not the state */
    vh_tab_release(base);
    root = vh_tab_id(cur);
    ASSERT_NE(root, 0);
    check_notices(&m, root, &subtrees);
    ASSERT_EQ(vh_trie_fault(NULL), 0);
    if (round % 10 == 9) {
      ASSERT(lu_same(cur, model));
      ASSERT_CHECK(cur);
    }
  }
  ASSERT_GT(subtrees, 0); /* never-loaded subtrees were dropped */
  lu_deaths.on = 0;
  vh_tab_release(cur);
  /* A final restart reads back exactly the model. */
  cur = vh_tab_stub(root);
  ASSERT(lu_same(cur, model));
  ASSERT_CHECK(cur);
  vh_tab_release(cur);
  vh_tab_release(model);
  ASSERT_CLEAN();
  lu_hook_free();
  lu_free(&m);
}

/* A stub shared by two versions is loaded once and reported once. */
TEST_IMPL(shared_stub_reported_once) {
  uint64_t e = vh_edit_new(), next = 1, root, e2;
  vh_tab_t *t = lu_rtab(2000, 0, e), *a, *b;
  lu_map_t m;
  long loads;
  size_t i, nodes;
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, t, &next);
  root = vh_tab_id(t);
  vh_tab_release(t);
  nodes = m.n;
  lu_hook_on(1);
  a = vh_tab_stub(root);
  e2 = vh_edit_new();
  b = vh_tab_clone(a, e2); /* shares a's (unloaded) parts */
  ASSERT_EQ(tu_set_s(&b, "zzz", vh_int(1), e2), 0);
  ASSERT_EQ(vh_tab_count(a) + 1, vh_tab_count(b));
  {
    vh_val_t k = vh_nil(), v;
    while (vh_tab_next(a, k, &k, &v) == 1) { /* all loaded now */
    }
    loads = lu_loads;
    k = vh_nil();
    while (vh_tab_next(b, k, &k, &v) == 1) {
    }
    ASSERT_EQ(lu_loads, loads); /* b's shared nodes came through a */
  }
  vh_tab_release(a);
  vh_tab_release(b);
  ASSERT_CLEAN();
  /* every stored node died exactly once (the new nodes had no id) */
  ASSERT_EQ(lu_deaths.n, nodes);
  for (i = 0; i < lu_deaths.n; i++) {
    ASSERT(lu_del(&m, lu_deaths.id[i]));
    ASSERT_EQ(lu_deaths.subtree[i], 0);
  }
  ASSERT_EQ(m.n, 0);
  lu_hook_free();
  lu_free(&m);
}

/* ---- faults ---- */

/* A table whose parts are unloaded: every read and write must fail
 * cleanly while node `bad` cannot be loaded, and work once it can. */
TEST_IMPL(faults_clean) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *ref = vh_tab_new(e), *t, *t0;
  lu_map_t m;
  vh_val_t v, k;
  const char *msg;
  int i, r, kind;
  for (i = 1; i <= 2000; i++)
    ASSERT_EQ(vh_tab_set(&ref, vh_int(i), vh_int(i * 10), e), 0);
  for (i = 0; i < 2000; i++) {
    k = key_s("s%d", i);
    ASSERT_EQ(vh_tab_set(&ref, k, vh_int(i), e), 0);
    vh_val_release(k);
  }
  ASSERT_EQ(vh_tab_set(&ref, vh_int(5000), vh_int(1), e), 0); /* hash int */
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, ref, &next);
  root = vh_tab_id(ref);
  for (kind = 0; kind < 3; kind++) {
    /* 0: the loader fails for every node; 1: I/O error on one in 3
     * loads; 2: corrupt bytes (a flipped kind byte) for every node. */
    lu_map_t bad;
    size_t j;
    lu_init(&bad);
    for (j = 0; j < m.cap; j++) {
      lu_ent_t *x = &m.e[j];
      if (x->id == 0 || x->id == LU_TOMB) continue;
      lu_put(&bad, x->id, x->p, x->len);
      if (kind == 2 && x->id != root) lu_get(&bad, x->id)->p[0] ^= 0x07;
    }
    vh_trie_set_loader(lu_loader, lu_unload, &bad);
    lu_fail_every = kind == 1 ? 3 : 0;
    lu_fail_id = 0;
    t = t0 = vh_tab_stub(root);
    /* the root itself loads (kind 0 fails it: reads give nil / 0) */
    lu_fail_id = kind == 0 ? root : 0;
    vh_trie_fault_clear();
    v = tu_get_s(t, "s5");
    if (kind == 0) {
      ASSERT_EQ(v.type, VH_TNIL);
      ASSERT_EQ(vh_trie_fault(&msg), VH_EIO);
      ASSERT(strstr(msg, "node ") != NULL);
      ASSERT_EQ(vh_tab_len(t), 0);
      ASSERT_EQ(vh_tab_set(&t, vh_int(1), vh_int(0), e), VH_EIO);
      ASSERT(t == t0 && vh_tab_unloaded(t));
      lu_fail_id = 0;
      vh_trie_fault_clear();
    }
    /* Hammer reads and writes; every failure must be clean. */
    for (i = 0; i < 300; i++) {
      int64_t n = vh_tab_len(t);
      vh_tab_t *before = t;
      vh_val_t removed;
      vh_trie_fault_clear();
      switch (i % 6) {
        case 0:
          v = tu_get_i(t, 1 + (i * 7) % 1900);
          if (v.type == VH_TNIL) ASSERT_NE(vh_trie_fault(NULL), 0);
          break;
        case 1:
          k = key_s("s%d", i * 5);
          r = vh_tab_set(&t, k, vh_int(-1), vh_edit_new());
          vh_val_release(k);
          if (r != 0)
            ASSERT(t == before);
          else
            ASSERT(t != before);
          break;
        case 2:
          r = vh_tab_insert(&t, 1 + i % 1900, vh_int(7), vh_edit_new());
          if (r != 0) ASSERT(t == before);
          break;
        case 3:
          r = vh_tab_remove(&t, 1 + i % 1900, &removed, vh_edit_new());
          if (r != 0) ASSERT(t == before);
          vh_val_release(removed);
          break;
        case 4: /* append with migration of key n+2.. from the hash */
          r = vh_tab_set(&t, vh_int(n + 1), vh_int(1), vh_edit_new());
          if (r != 0) ASSERT(t == before);
          break;
        default:
          k = vh_nil();
          while ((r = vh_tab_next(t, k, &k, &v)) == 1) {
          }
          if (r < 0) ASSERT_NE(vh_trie_fault(NULL), 0);
      }
      if (kind == 2) ASSERT(vh_trie_fault(NULL) != VH_EIO);
    }
    lu_fail_every = 0;
    if (kind == 2) { /* nothing beyond the root could ever load */
      ASSERT_EQ(vh_trie_fault(&msg) == 0 || strstr(msg, "ECORRUPT") != NULL, 1);
    }
    vh_trie_fault_clear();
    vh_tab_release(t);
    lu_free(&bad);
  }
  /* With the good map, the stored state is intact. */
  lu_use(&m);
  t = vh_tab_stub(root);
  ASSERT(lu_same(t, ref));
  vh_tab_release(t);
  vh_tab_release(ref);
  ASSERT_CLEAN();
  lu_free(&m);
}

/* Writes that fail on a load leave the table exactly as it was: compare
 * with the reference after the loader is fixed. */
TEST_IMPL(faults_writes_unchanged) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *ref = lu_rtab(3000, 1, e), *t;
  lu_map_t m;
  int i, failed = 0;
  for (i = 1; i <= 500; i++)
    ASSERT_EQ(vh_tab_set(&ref, vh_int(i), vh_int(i), e), 0);
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, ref, &next);
  root = vh_tab_id(ref);
  t = vh_tab_stub(root);
  for (i = 0; i < 400; i++) {
    vh_tab_t *before = t;
    vh_val_t k = lu_rkey(), removed;
    uint64_t ed = vh_edit_new();
    int r;
    vh_tab_retain(before); /* a successful write consumes a reference */
    lu_fail_every = 2 + i % 3;
    switch (i % 3) {
      case 0:
        r = vh_tab_set(&t, k, vh_int(1), ed);
        break;
      case 1:
        r = vh_tab_insert(&t, 1 + i, vh_int(1), ed);
        break;
      default:
        r = vh_tab_remove(&t, 1 + i, &removed, ed);
        if (r == 0) vh_val_release(removed);
    }
    vh_val_release(k);
    lu_fail_every = 0;
    if (r == 0 && t != before) {
      vh_tab_release(t); /* drop the new version, keep the original */
      t = before;
    } else {
      if (r != 0) {
        ASSERT(r == VH_EIO);
        failed++;
      }
      ASSERT(t == before);
      vh_tab_release(before);
    }
    vh_trie_fault_clear();
  }
  ASSERT_GT(failed, 20);
  ASSERT(lu_same(t, ref));
  ASSERT_CHECK(t);
  vh_tab_release(t);
  vh_tab_release(ref);
  ASSERT_CLEAN();
  lu_free(&m);
}

/* Out of memory while loading: a fault (ENOMEM), never a leak. */
TEST_IMPL(faults_oom) {
  uint64_t e = vh_edit_new(), next = 1, root;
  vh_tab_t *ref = lu_rtab(600, 2, e), *t;
  lu_map_t m;
  long n;
  int ok = 0;
  lu_init(&m);
  lu_use(&m);
  lu_flush(&m, ref, &next);
  root = vh_tab_id(ref);
  /* Walking ref turns its inline keys into strings (vh_trie_int.h, "Inline
   * keys"): do it once here, so the loop measures t's loads alone. */
  ASSERT(lu_same(ref, ref));
  for (n = 1; n < 5000 && !ok; n++) {
    size_t live = vh_trie_live_nodes(), bytes = vh_mem_bytes();
    t = vh_tab_stub(root);
    vh_trie_fault_clear();
    vh_mem_fail_after(n);
    ok = lu_same(t, ref);
    vh_mem_fail_after(0);
    if (!ok) ASSERT_EQ(vh_trie_fault(NULL), VH_ENOMEM);
    vh_tab_release(t);
    ASSERT_EQ(vh_trie_live_nodes(), live);
    ASSERT_EQ(vh_mem_bytes(), bytes);
  }
  ASSERT(ok);
  vh_trie_fault_clear();
  vh_tab_release(ref);
  ASSERT_CLEAN();
  lu_free(&m);
}

VH_TEST_MAIN(TEST_ENTRY(roundtrip_random), TEST_ENTRY(roundtrip_big),
             TEST_ENTRY(roundtrip_collisions), TEST_ENTRY(laziness_1m),
             TEST_ENTRY(incremental_rounds),
             TEST_ENTRY(shared_stub_reported_once), TEST_ENTRY(faults_clean),
             TEST_ENTRY(faults_writes_unchanged), TEST_ENTRY(faults_oom))
