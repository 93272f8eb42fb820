/*
 * hist_fixture.h - the fake host of the history engine's tests
 * (test_history.c, test_hist_rewind.c): a fresh data dir per test, a store
 * opened without fsync, and a fake_t that drives vh_hist_* the way
 * host/runtime/durable.c does. Static functions: include it once, from a
 * test's .c file, after vh_store.h, vh_test.h and vh_versions.h.
 */
#ifndef VH_HIST_FIXTURE_H
#define VH_HIST_FIXTURE_H

#include "vh_graveyard.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char test_dir[256];

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void dir_cleanup(void) {
  if (!test_dir[0]) return;
  char parent[256];
  snprintf(parent, sizeof parent, "%s", test_dir);
  char *slash = strrchr(parent, '/');
  if (slash) *slash = '\0';
  nftw(parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  test_dir[0] = '\0';
}

static const char *fresh_dir(void) {
  dir_cleanup();
  char tmpl[] = "/tmp/vh_test_hist.XXXXXX";
  char *d = mkdtemp(tmpl);
  if (d == NULL) abort();
  snprintf(test_dir, sizeof test_dir, "%s/data", d);
  return test_dir;
}

static vh_store_t *open_store(const char *dir) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = 0;
  if (getenv("VH_TEST_GRAVE")) { /* ctest's *_graveyard runs */
    o.grave_block_bits = 2;      /* blocks of 4 ids */
    o.grave_cap_ids = 16;        /* the least that takes ids */
  }
  vh_store_t *s = NULL;
  char *m = NULL;
  int rc = vh_store_open(dir, &o, &s, &m);
  if (rc != 0) fprintf(stderr, "open: %s\n", m ? m : "?");
  ASSERT_EQ(rc, 0);
  return s;
}

/* The fake host. */
typedef struct fake {
  vh_store_t *s;
  vh_hist_t *H;
  uint64_t seq, next_id;
  int64_t t;
  uint64_t sweeps[64];
  size_t nsweeps;
} fake_t;

static int fake_sweep(void *arg, uint64_t id, uint64_t d) {
  fake_t *f = arg;
  (void)d;
  if (f->nsweeps < 64) f->sweeps[f->nsweeps++] = id;
  return 0;
}

static void fake_open(fake_t *f, const char *dir, const vh_retain_t *r) {
  f->s = open_store(dir);
  char *m = NULL;
  int rc = vh_hist_open(f->s, r, &f->H, &m);
  if (rc != 0) fprintf(stderr, "hist open: %s\n", m ? m : "?");
  ASSERT_EQ(rc, 0);
  vh_history_t h;
  vh_hist_info(f->H, &h);
  f->seq = h.newest;
  f->next_id = h.newest_next_id ? h.newest_next_id : 1;
  f->t = h.newest_time ? h.newest_time : 1000000;
}

/* In the graveyard (store format 5, persist/store/graveyard.c): found
 * dead, and deleted with its block later. */
typedef struct grave_find {
  uint64_t id;
  int found;
} grave_find_t;

static inline int grave_find_id(void *arg, uint64_t id) {
  grave_find_t *g = arg;
  if (id == g->id) g->found = 1;
  return 0;
}

static inline int grave_find_block(void *arg, uint64_t block, unsigned bits,
                                   uint64_t dead, uint64_t seen) {
  (void)arg;
  (void)block;
  (void)bits;
  ASSERT_EQ(dead, seen); /* fsck's check too */
  return 0;
}

static inline int in_graveyard(vh_store_t *s, uint64_t id) {
  grave_find_t g = {id, 0};
  char *m = NULL;
  int rc = vh_store_grave_each(s, grave_find_id, grave_find_block, &g, &m);
  if (rc != 0) fprintf(stderr, "graveyard: %s\n", m ? m : "?");
  ASSERT_EQ(rc, 0);
  return g.found;
}

/* Is node id still alive to the store: stored, and not counted dead in
 * the graveyard (the GC deleted it, or handed it to the graveyard)? */
static inline int has_node(fake_t *f, uint64_t id) {
  void *p = NULL;
  size_t n = 0;
  int rc = vh_store_get_node(f->s, id, &p, &n, NULL);
  free(p);
  return rc == 0 && !in_graveyard(f->s, id);
}

static void fake_close(fake_t *f) {
  vh_hist_free(f->H);
  char *m = NULL;
  ASSERT_EQ(vh_store_close(f->s, &m), 0);
  f->s = NULL;
  f->H = NULL;
}

#endif /* VH_HIST_FIXTURE_H */
