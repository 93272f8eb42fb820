/*
 * test_census.c - where the bytes of a big table go (bench/README.md,
 * "Memory per key").
 *
 * Builds K string keys "k0".."k<K-1>" -> integers the way a handler does
 * (batches of 10,000 writes, each under a fresh edit token, the previous
 * version released at commit), then walks the tree and counts, per kind of
 * block, how many there are, the bytes the trie asked for and the bytes the
 * allocator really spends on them (vh_mem__footprint: malloc's chunk or the
 * slab slot). The test asserts that the census adds up to vh_mem_bytes()
 * and vh_mem_blocks() (so the table in the README is complete) and prints
 * it. K defaults to 20,000; VH_CENSUS_K=1000000 gives the README's figures.
 */
#include <stdio.h>
#include <string.h>

#include "trie_util.h"

typedef struct {
  const char *name;
  size_t n, req, real;
} row_t;

enum { R_TAB, R_CHAMP, R_COLL, R_VEC, R_STR, R_N };
static row_t rows[R_N] = {{"table headers", 0, 0, 0},
                          {"CHAMP nodes", 0, 0, 0},
                          {"collision nodes", 0, 0, 0},
                          {"vector nodes", 0, 0, 0},
                          {"key/value strings", 0, 0, 0}};

static void count(int r, size_t size) {
  rows[r].n++;
  rows[r].req += size;
  rows[r].real += vh_mem__footprint(size);
}

static size_t entries;     /* key/value pairs seen */
static size_t inline_keys; /* keys kept in their slot (VH_TIKEY) */

static void walk_kv(const vh_val_t *kv, size_t pairs) {
  for (size_t i = 0; i < 2 * pairs; i++) {
    if (kv[i].type == VH_TSTR)
      count(R_STR, sizeof(vh_str_t) + vh_str_len(kv[i].u.s) + 1);
    inline_keys += kv[i].type == VH_TIKEY;
  }
  entries += pairs;
}

static void walk(const vh_node_t *n) {
  if (n->kind == VH_K_COLL) {
    const vh_coll_t *c = (const vh_coll_t *)n;
    count(R_COLL, vh_node__size(n));
    walk_kv(c->kv, c->count);
    return;
  }
  const vh_champ_t *c = (const vh_champ_t *)n;
  int nd = __builtin_popcount(c->datamap), nc = __builtin_popcount(c->nodemap);
  count(R_CHAMP, vh_node__size(n));
  walk_kv(c->kv, (size_t)nd);
  vh_node_t *const *kids = (vh_node_t *const *)(c->kv + 2 * nd);
  for (int i = 0; i < nc; i++) walk(kids[i]);
}

TEST_IMPL(census_adds_up) {
  const char *e = getenv("VH_CENSUS_K");
  long k = e ? atol(e) : 20000;
  size_t b0 = vh_mem_bytes(), n0 = vh_mem_blocks(), f0 = vh_mem_footprint();
  vh_tab_t *t = vh_tab_new(vh_edit_new());
  char key[32];
  ASSERT(t != NULL);
  for (long j = 0; j < k; j += 10000) {
    uint64_t edit = vh_edit_new();
    vh_tab_t *base = t;
    vh_tab_retain(base);
    for (long i = j; i < j + 10000 && i < k; i++) {
      int len = snprintf(key, sizeof key, "k%ld", i);
      vh_val_t kv;
      kv.type = VH_TSTR;
      kv.u.s = vh_str_new(key, (size_t)len);
      ASSERT(kv.u.s != NULL);
      ASSERT_EQ(vh_tab_set(&t, kv, vh_int(i), edit), 0);
      vh_val_release(kv);
    }
    vh_tab_release(base);
  }
  ASSERT_EQ(vh_tab_count(t), (size_t)k);
  count(R_TAB, sizeof(vh_tab_t));
  if (t->hash != NULL) walk(t->hash);
  ASSERT_EQ(entries, (size_t)k);
  size_t req = 0, real = 0, blocks = 0;
  printf("K=%ld: %-18s %9s %8s %8s\n", k, "block", "count", "B/key",
         "real B/key");
  for (int r = 0; r < R_N; r++) {
    req += rows[r].req;
    real += rows[r].real;
    blocks += rows[r].n;
    printf("  %-25s %9zu %8.1f %8.1f\n", rows[r].name, rows[r].n,
           (double)rows[r].req / (double)k, (double)rows[r].real / (double)k);
  }
  printf("  of which entries (2 x %zu-byte vh_val_t): %.1f B/key\n",
         sizeof(vh_val_t), (double)(entries * 2 * sizeof(vh_val_t)) / k);
  printf("  of which node headers (%zu B each): %.1f B/key\n",
         sizeof(vh_node_t),
         (double)((rows[R_CHAMP].n + rows[R_COLL].n) * sizeof(vh_node_t)) / k);
  printf("  inline keys (in their entry, no block): %zu\n", inline_keys);
  printf("  %-25s %9zu %8.1f %8.1f\n", "total", blocks, (double)req / k,
         (double)real / k);
  ASSERT_EQ(req, vh_mem_bytes() - b0);
  ASSERT_EQ(blocks, vh_mem_blocks() - n0);
  ASSERT_EQ(real, vh_mem_footprint() - f0);
  vh_tab_release(t);
  ASSERT_EQ(vh_mem_bytes(), b0);
}

TEST_IMPL(short_strings_packed) {
  /* mem.c, SLABS: 4-byte size classes. A key string "k123456" (12-byte
   * header + 7 bytes + NUL = 20) takes 20 bytes, not 24; nodes (sizes
   * that are multiples of 8) keep 8-aligned slots among them. */
#ifdef VH_SANITIZE
  TEST_SKIP("sanitizer builds use plain malloc");
#else
  enum { N = 64 };
  vh_str_t *a[N];
  size_t f0 = vh_mem_footprint();
  for (int i = 0; i < N; i++) {
    a[i] = vh_str_new("k123456", 7);
    ASSERT(a[i] != NULL);
    ASSERT_EQ((uintptr_t)a[i] % 4, 0);
  }
  ASSERT_EQ(vh_mem_footprint() - f0, (size_t)N * 20);
  for (size_t sz = 24; sz <= 64; sz += 8) {
    for (int i = 0; i < 4; i++) {
      vh_node_t *n = vh_node__alloc(VH_K_CHAMP, sz, 0);
      ASSERT(n != NULL);
      ASSERT_EQ((uintptr_t)n % 8, 0);
      vh_str_t *x = vh_str_new("k12345", 6); /* 19 -> the 20-byte class */
      ASSERT(x != NULL);
      vh_node__free_shell(n, sz);
      vh_str_release(x);
    }
  }
  for (int i = 0; i < N; i++) vh_str_release(a[i]);
  ASSERT_EQ(vh_mem_footprint(), f0);
#endif
}

TEST_IMPL(node_cache_bounded) {
  /* mem.c, NODE CACHE: a freed node block of 65..2048 bytes waits for the
   * next block of its 8-byte class (the same address comes back), is not
   * counted as live, and goes back to malloc at the second vh_mem_tick()
   * after its free unless it was reused. */
#ifdef VH_SANITIZE
  TEST_SKIP("sanitizer builds use plain malloc");
#else
  enum { N = 100 };
  vh_node_t *a[N];
  size_t b0 = vh_mem_bytes(), f0 = vh_mem_footprint();
  vh_mem_tick();
  vh_mem_tick();
  ASSERT_EQ(vh_mem_cached(), 0);
  for (int i = 0; i < N; i++) {
    a[i] = vh_node__alloc(VH_K_CHAMP, 32 + 32 * 10 + (size_t)(i % 3) * 8, 0);
    ASSERT(a[i] != NULL);
    ASSERT_EQ((uintptr_t)a[i] % 16, 0);
  }
  for (int i = 0; i < N; i++)
    vh_node__free_shell(a[i], 32 + 32 * 10 + (size_t)(i % 3) * 8);
  ASSERT_EQ(vh_mem_bytes(), b0);
  ASSERT_EQ(vh_mem_footprint(), f0);
  ASSERT(vh_mem_cached() >= (size_t)N * 352);
  /* Reused: the last block freed of a class is the next one handed out,
   * also after one tick (the older generation). */
  vh_mem_tick();
  vh_node_t *n = vh_node__alloc(VH_K_CHAMP, 32 + 32 * 10 + 2 * 8, 0);
  ASSERT(n == a[N - 2]); /* i = 98, the last of class 368 */
  vh_node__free_shell(n, 32 + 32 * 10 + 2 * 8);
  /* Not reused: gone after the second tick since its free. */
  vh_mem_tick();
  ASSERT(vh_mem_cached() > 0); /* n, freed after the first tick */
  vh_mem_tick();
  ASSERT_EQ(vh_mem_cached(), 0);
  /* A size above the cache's classes is plain malloc. */
  n = vh_node__alloc(VH_K_CHAMP, 4096, 0);
  ASSERT(n != NULL);
  vh_node__free_shell(n, 4096);
  ASSERT_EQ(vh_mem_cached(), 0);
#endif
}

VH_TEST_MAIN(TEST_ENTRY(census_adds_up), TEST_ENTRY(short_strings_packed),
             TEST_ENTRY(node_cache_bounded))
