/*
 * test_trie_oom.c - allocation failure injection for the trie (SQLite and
 * libuv style): for N = 1, 2, 3, ... fail the N-th allocation of an
 * operation, until the operation runs without hitting the failure. Every
 * failing call must return VH_ENOMEM (or NULL), leave the table exactly as
 * it was (same pointer, same content fingerprint, vh_tab_check passes) and
 * leak nothing (accounted bytes and live nodes as before).
 */
#include "trie_util.h"

typedef struct oom_case {
  const char *name;
  int mutable_; /* write with the table's own token (in place) */
  /* Run the operation on *t with token e; 0, VH_ENOMEM. */
  int (*op)(vh_tab_t **t, uint64_t e);
  /* Verify the result of a successful run. */
  void (*verify)(const vh_tab_t *t);
} oom_case_t;

#define ARR 300   /* array part 1..ARR */
#define HASH 3000 /* string keys */

/* The shared fixture: array 1..ARR (a few holes), keys ARR+2..ARR+40 in
 * the hash part waiting for migration, HASH string keys, nested tables. */
static vh_tab_t *fixture(uint64_t e) {
  vh_tab_t *t = vh_tab_new(e);
  char buf[32];
  int i;
  for (i = 1; i <= ARR; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), i % 3 ? vh_int(i) : tu_str("s"), e), 0);
  for (i = 10; i < ARR; i += 37)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_nil(), e), 0);
  for (i = ARR + 2; i <= ARR + 40; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i), e), 0);
  for (i = 0; i < HASH; i++) {
    snprintf(buf, sizeof buf, "k%d", i);
    if (i % 100 == 0) {
      vh_tab_t *in = vh_tab_new(e);
      ASSERT_EQ(tu_set_s(&in, "deep", tu_str(buf), e), 0);
      ASSERT_EQ(vh_tab_set(&in, vh_int(1), vh_int(i), e), 0);
      ASSERT_EQ(tu_set_s(&t, buf, tu_tab(in), e), 0);
    } else {
      ASSERT_EQ(tu_set_s(&t, buf, vh_int(i), e), 0);
    }
  }
  ASSERT_CHECK(t);
  return t;
}

static int op_set_new(vh_tab_t **t, uint64_t e) {
  return tu_set_s(t, "brand-new", vh_int(1), e);
}
static void v_set_new(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_s(t, "brand-new").u.i, 1);
}

static int op_set_existing(vh_tab_t **t, uint64_t e) {
  return tu_set_s(t, "k17", vh_int(-17), e);
}
static void v_set_existing(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_s(t, "k17").u.i, -17);
}

static int op_delete(vh_tab_t **t, uint64_t e) {
  return tu_set_s(t, "k18", vh_nil(), e);
}
static void v_delete(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_s(t, "k18").type, VH_TNIL);
}

static int op_set_table(vh_tab_t **t, uint64_t e) {
  vh_tab_t *in = vh_tab_new(e);
  if (in == NULL) return VH_ENOMEM;
  return tu_set_s(t, "k19", tu_tab(in), e);
}
static void v_set_table(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_s(t, "k19").type, VH_TTAB);
}

static int op_append_migrate(vh_tab_t **t, uint64_t e) {
  return vh_tab_set(t, vh_int(ARR + 1), vh_int(0), e);
}
static void v_append_migrate(const vh_tab_t *t) {
  ASSERT_EQ(vh_tab_len(t), ARR + 40);
  ASSERT_EQ(tu_get_i(t, ARR + 40).u.i, ARR + 40);
}

static int op_array_set(vh_tab_t **t, uint64_t e) {
  return vh_tab_set(t, vh_int(5), vh_int(-5), e);
}
static void v_array_set(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_i(t, 5).u.i, -5);
}

/* Pop slot ARR after making ARR-1.. ARR-5 holes: a trimming pop. */
static int op_pop_trim(vh_tab_t **t, uint64_t e) {
  return vh_tab_set(t, vh_int(ARR), vh_nil(), e);
}
static void v_pop_trim(const vh_tab_t *t) {
  ASSERT_EQ(vh_tab_len(t), ARR - 6);
}

static int op_insert(vh_tab_t **t, uint64_t e) {
  vh_val_t v;
  v.u.i = 0;
  v.type = VH_TSTR;
  v.u.s = vh_str_new("first", 5);
  if (v.u.s == NULL) return VH_ENOMEM;
  return vh_tab_insert(t, 1, v, e);
}
static void v_insert(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_i(t, 1).type, VH_TSTR);
  ASSERT_EQ(tu_get_i(t, 3).u.i, 2);
}

static int op_remove(vh_tab_t **t, uint64_t e) {
  vh_val_t r;
  int rc = vh_tab_remove(t, 2, &r, e);
  if (rc == 0) {
    ASSERT_EQ(r.u.i, 2);
    vh_val_release(r);
  }
  return rc;
}
static void v_remove(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_i(t, 2).type, VH_TSTR); /* old slot 3 */
}

static vh_tab_t *made; /* result of deepcopy / clone ops */

static int op_deepcopy(vh_tab_t **t, uint64_t e) {
  made = vh_tab_deepcopy(*t, e);
  return made ? 0 : VH_ENOMEM;
}
static void v_made(const vh_tab_t *t) {
  ASSERT(vh_val_equal(tu_tab((vh_tab_t *)t), tu_tab(made)));
  ASSERT_CHECK(made);
}

static int op_clone_write(vh_tab_t **t, uint64_t e) {
  uint64_t e2 = vh_edit_new();
  int r;
  made = vh_tab_clone(*t, e2);
  if (made == NULL) return VH_ENOMEM;
  r = tu_set_s(&made, "clone-only", vh_int(1), e2);
  if (r < 0) {
    vh_tab_release(made);
    made = NULL;
  }
  (void)e;
  return r;
}
static void v_clone_write(const vh_tab_t *t) {
  ASSERT_EQ(tu_get_s(t, "clone-only").type, VH_TNIL);
  ASSERT_EQ(tu_get_s(made, "clone-only").u.i, 1);
}

static void run_case(const oom_case_t *c) {
  uint64_t e0 = vh_edit_new(), e;
  vh_tab_t *t = fixture(e0), *base = NULL;
  int i, r;
  long n;
  /* Holes before ARR so that popping ARR trims. */
  for (i = ARR - 5; i < ARR; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_nil(), e0), 0);
  ASSERT_EQ(vh_tab_len(t), ARR);
  if (c->mutable_) {
    e = e0;
  } else {
    e = vh_edit_new();
    base = t;
    vh_tab_retain(base); /* shared: writes must copy */
  }
  for (n = 1;; n++) {
    vh_tab_t *before = t;
    uint64_t sum = tu_sum(t);
    size_t bytes = vh_mem_bytes(), live = vh_trie_live_nodes();
    made = NULL;
    vh_mem_fail_after(n);
    r = c->op(&t, e);
    vh_mem_fail_after(0);
    if (r == 0) break;
    ASSERT_EQ(r, VH_ENOMEM);
    ASSERT_PTR_EQ(t, before);
    ASSERT_EQ(tu_sum(t), sum);
    ASSERT_CHECK(t);
    ASSERT_EQ(vh_mem_bytes(), bytes);
    ASSERT_EQ(vh_trie_live_nodes(), live);
    ASSERT_PTR_EQ(made, NULL);
    ASSERT_LT(n, 100000);
  }
  printf("# %s: %ld allocation%s needed\n", c->name, n - 1, n == 2 ? "" : "s");
  c->verify(t);
  ASSERT_CHECK(t);
  if (made != NULL) vh_tab_release(made);
  if (base != NULL) {
    ASSERT_CHECK(base);
    vh_tab_release(base);
  }
  vh_tab_release(t);
  ASSERT_CLEAN();
}

static const oom_case_t cases[] = {
    {"set_new", 0, op_set_new, v_set_new},
    {"set_existing", 0, op_set_existing, v_set_existing},
    {"delete", 0, op_delete, v_delete},
    {"set_table", 0, op_set_table, v_set_table},
    {"append_migrate", 0, op_append_migrate, v_append_migrate},
    {"array_set", 0, op_array_set, v_array_set},
    {"pop_trim", 0, op_pop_trim, v_pop_trim},
    {"insert", 0, op_insert, v_insert},
    {"remove", 0, op_remove, v_remove},
    {"deepcopy", 0, op_deepcopy, v_made},
    {"clone_write", 0, op_clone_write, v_clone_write},
    {"m_set_new", 1, op_set_new, v_set_new},
    {"m_delete", 1, op_delete, v_delete},
    {"m_append_migrate", 1, op_append_migrate, v_append_migrate},
    {"m_pop_trim", 1, op_pop_trim, v_pop_trim},
    {"m_insert", 1, op_insert, v_insert},
    {"m_remove", 1, op_remove, v_remove},
    {"m_deepcopy", 1, op_deepcopy, v_made},
};

TEST_IMPL(oom_each_operation) {
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

/* A long transaction on a fresh token where an allocation fails midway:
 * the failed write changes nothing, the writes before it stay, and rolling
 * back the whole transaction restores the accounting exactly. */
TEST_IMPL(oom_midway_rollback) {
  uint64_t e0 = vh_edit_new(), e = vh_edit_new();
  vh_tab_t *t = fixture(e0), *base = t;
  size_t bytes = vh_mem_bytes(), live = vh_trie_live_nodes();
  uint64_t sum = tu_sum(base);
  char buf[32];
  int i, fails = 0;
  vh_tab_retain(base);
  for (i = 0; i < 2000; i++) {
    vh_tab_t *before = t;
    uint64_t s = tu_sum(t);
    int r;
    snprintf(buf, sizeof buf, "t%d", i);
    {
      vh_val_t key = tu_str(buf);
      vh_mem_fail_after(1 + i % 4);
      r = vh_tab_set(&t, key, vh_int(i), e);
      vh_mem_fail_after(0);
      vh_val_release(key);
    }
    if (r < 0) {
      ASSERT_EQ(r, VH_ENOMEM);
      ASSERT_PTR_EQ(t, before);
      ASSERT_EQ(tu_sum(t), s);
      fails++;
    }
  }
  ASSERT(fails > 0);
  ASSERT_CHECK(t);
  vh_tab_release(t);
  ASSERT_EQ(vh_mem_bytes(), bytes);
  ASSERT_EQ(vh_trie_live_nodes(), live);
  ASSERT_EQ(tu_sum(base), sum);
  vh_tab_release(base);
  ASSERT_CLEAN();
}

/* vh_str_new and vh_tab_new report failure too. */
TEST_IMPL(oom_constructors) {
  vh_mem_fail_after(1);
  ASSERT_PTR_EQ(vh_str_new("x", 1), NULL);
  vh_mem_fail_after(1);
  ASSERT_PTR_EQ(vh_tab_new(1), NULL);
  vh_mem_fail_after(0);
  ASSERT_CLEAN();
}

VH_TEST_MAIN(TEST_ENTRY(oom_each_operation), TEST_ENTRY(oom_midway_rollback),
             TEST_ENTRY(oom_constructors))
