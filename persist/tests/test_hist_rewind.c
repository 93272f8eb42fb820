/*
 * test_hist_rewind.c - vh_hist_resurrect (persist/store/history.c): a rollback
 * brings back nodes that wait in death lists and pinned entries; the exact GC
 * must never delete them, in the rollback's batch or later, across a
 * restart too. The fake host below is the one of test_history.c.
 *
 * A fake host drives the engine: each "slice" puts the nodes it creates
 * (ids from a counter, like flush.c), hands the engine the ids that died,
 * submits the batch and waits until it is durable. The tests then look at
 * which nodes are still stored: the rule is that a node that died at d is
 * deleted exactly when the window's oldest reaches d, unless a mark below d
 * was born after it.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "vh_manifest.h"
#include "vh_store.h"
#include "vh_test.h"
#include "vh_versions.h"

#include "hist_fixture.h"

/* One slice: nborn new nodes (returned ids from first), dead entries;
 * with back != NULL, a rollback to version after resurrecting back[]. */
static uint64_t slice_r(fake_t *f, int is_version, size_t nborn,
                        const uint64_t *dead, size_t ndead, uint64_t after,
                        const uint64_t *back, size_t nback) {
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  uint64_t first = f->next_id;
  for (size_t i = 0; i < nborn; i++) {
    char txt[32];
    snprintf(txt, sizeof txt, "node%llu", (unsigned long long)f->next_id);
    ASSERT_EQ(vh_batch_put_node(b, f->next_id++, txt, strlen(txt)), 0);
  }
  f->seq++;
  f->t += 1000;
  vh_manifest_t man;
  memset(&man, 0, sizeof man);
  man.seq = f->seq;
  man.next_id = f->next_id;
  ASSERT_EQ(vh_manifest_add(&man, "d", first > 1 ? first : 1, 1), 0);
  void *mb = NULL;
  size_t ml = 0;
  ASSERT_EQ(vh_manifest_encode(&man, &mb, &ml), 0);
  vh_manifest_free(&man);
  char *ch[] = {"d"};
  vh_hist_slice_t sl = {.seq = f->seq,
                        .is_version = is_version,
                        .time_ms = f->t,
                        .events = 1,
                        .keys = nborn,
                        .changed = ch,
                        .nchanged = is_version ? 1 : 0,
                        .man = mb,
                        .manlen = ml,
                        .next_id = f->next_id,
                        .dead = dead,
                        .ndead = ndead,
                        .new_nodes = nborn,
                        .new_bytes = nborn * 10,
                        .durable = vh_store_durable_seq(f->s)};
  char *m = NULL;
  int rc = back ? vh_hist_resurrect(f->H, b, after, back, nback, &m) : 0;
  if (rc != 0) fprintf(stderr, "resurrect: %s\n", m ? m : "?");
  ASSERT_EQ(rc, 0);
  rc = vh_hist_slice(f->H, b, &sl, fake_sweep, f, &m);
  if (rc != 0) fprintf(stderr, "hist slice: %s\n", m ? m : "?");
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(vh_batch_set_manifest(b, mb, ml), 0);
  free(mb);
  ASSERT_EQ(vh_store_submit(f->s, b, f->seq), 0);
  ASSERT_EQ(vh_store_wait_durable(f->s, f->seq), 0);
  return first;
}

static vh_retain_t retain_slices(uint64_t n) {
  vh_retain_t r;
  memset(&r, 0, sizeof r);
  if (n == 0)
    r.zero = 1;
  else
    r.slices = n;
  return r;
}

static uint64_t slice(fake_t *f, int is_version, size_t nborn,
                      const uint64_t *dead, size_t ndead) {
  return slice_r(f, is_version, nborn, dead, ndead, 0, NULL, 0);
}

/* Versions 1..3 then a rollback to 1 (with or without resurrecting), then
 * enough slices for the window (4) to pass every one of them. reopen: close
 * and reopen the store right after the rollback (the edits must be on
 * disk, not only in memory). */
static void scenario(int resurrect, int reopen, int evict_to_disk) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(4);
  const char *dir = fresh_dir();
  fake_open(&f, dir, &r);
  slice(&f, 1, 10, NULL, 0); /* v1: nodes 1..10 */
  uint64_t d2[] = {VH_DEAD(2, 0), VH_DEAD(3, 1)};
  slice(&f, 1, 2, d2, 2); /* v2: 11, 12 */
  if (evict_to_disk) {    /* versions of an earlier run: on disk only */
    fake_close(&f);
    fake_open(&f, dir, &r);
  }
  uint64_t d3[] = {VH_DEAD(4, 0)};
  slice(&f, 1, 1, d3, 1); /* v3: 13 */
  uint64_t back[] = {4, 2, 3};
  uint64_t d4[] = {VH_DEAD(11, 0), VH_DEAD(12, 0), VH_DEAD(13, 0)};
  slice_r(&f, 1, 0, d4, 3, 1, resurrect ? back : NULL, 3); /* v4: rollback */
  if (reopen) {
    fake_close(&f);
    fake_open(&f, dir, &r);
  }
  for (int i = 0; i < 8; i++) slice(&f, 1, 1, NULL, 0);
  int swept3 = 0; /* 3 died as a subtree: it goes to the sweeper */
  for (size_t i = 0; i < f.nsweeps; i++) swept3 |= f.sweeps[i] == 3;
  ASSERT_EQ(swept3, !resurrect);
  for (uint64_t id = 1; id <= 10; id++) {
    if (!resurrect && (id == 2 || id == 4)) {
      ASSERT_EQ(has_node(&f, id), 0); /* the control: GC deletes them */
      continue;
    }
    ASSERT_EQ(has_node(&f, id), 1);
  }
  for (uint64_t id = 11; id <= 13; id++) ASSERT_EQ(has_node(&f, id), 0);
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(without_resurrect_gc_deletes) {
  scenario(0, 0, 0);
}
TEST_IMPL(resurrected_survive_gc) {
  scenario(1, 0, 0);
}
TEST_IMPL(resurrected_survive_reopen) {
  scenario(1, 1, 0);
}
TEST_IMPL(resurrected_from_disk_lists) {
  scenario(1, 1, 1);
}

/* The window is full and the rollback's own batch drops the version it
 * goes back to's successor: the same batch must not delete them. */
TEST_IMPL(resurrect_in_the_dropping_batch) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(2);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 5, NULL, 0); /* v1: 1..5 */
  uint64_t d2[] = {VH_DEAD(2, 0), VH_DEAD(3, 0)};
  slice(&f, 1, 1, d2, 2); /* v2: 6; window {1, 2} */
  uint64_t back[] = {2, 3};
  uint64_t d3[] = {VH_DEAD(6, 0)};
  slice_r(&f, 1, 0, d3, 1, 1, back, 2); /* v3 drops 1: processes D(2) */
  for (uint64_t id = 1; id <= 5; id++) ASSERT_EQ(has_node(&f, id), 1);
  for (int i = 0; i < 4; i++) slice(&f, 1, 1, NULL, 0);
  for (uint64_t id = 1; id <= 5; id++) ASSERT_EQ(has_node(&f, id), 1);
  ASSERT_EQ(has_node(&f, 6), 0);
  fake_close(&f);
  dir_cleanup();
}

/* A mark holds v1; the window passes the deaths (they move to the mark's
 * pins); a rollback to the mark takes them out of the pins, so unmark
 * does not delete them either. */
TEST_IMPL(resurrect_pinned) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(2);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 5, NULL, 0); /* v1 */
  char *m = NULL;
  ASSERT_EQ(vh_hist_mark(f.H, "pre", &m), 0);
  uint64_t d2[] = {VH_DEAD(2, 0), VH_DEAD(3, 0)};
  slice(&f, 1, 1, d2, 2);
  for (int i = 0; i < 4; i++) slice(&f, 1, 1, NULL, 0); /* pins 2, 3 */
  ASSERT_EQ(has_node(&f, 2), 1);
  uint64_t back[] = {2, 3};
  slice_r(&f, 1, 0, NULL, 0, 1, back, 2);
  ASSERT_EQ(vh_hist_unmark(f.H, "pre", &m), 0);
  for (int i = 0; i < 6; i++) slice(&f, 1, 1, NULL, 0);
  for (uint64_t id = 1; id <= 5; id++) ASSERT_EQ(has_node(&f, id), 1);
  fake_close(&f);
  dir_cleanup();
}

VH_TEST_MAIN(TEST_ENTRY(without_resurrect_gc_deletes),
             TEST_ENTRY(resurrected_survive_gc),
             TEST_ENTRY(resurrected_survive_reopen),
             TEST_ENTRY(resurrected_from_disk_lists),
             TEST_ENTRY(resurrect_in_the_dropping_batch),
             TEST_ENTRY(resurrect_pinned))
