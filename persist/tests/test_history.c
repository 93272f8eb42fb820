/*
 * test_history.c - version records and the exact GC of the history engine
 * (persist/store/store_versions.c, persist/store/history.c).
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
#include "vh_store_raw.h"
#include "vh_test.h"
#include "vh_chrec.h"
#include "vh_inputs.h"
#include "vh_versions.h"

#include "hist_fixture.h"

/* The input log record the next slice() writes (NULL: none). */
static const void *g_inputs;
static size_t g_inlen;
/* The change record the next slice() writes (NULL: none). */
static const void *g_chrec;
static size_t g_chlen;
/* slice() makes the batch of a stopping host (vh_hist_slice_t.stopping). */
static int g_stopping;

/* One slice: nborn new nodes (returned ids from first), dead entries. */
static uint64_t slice(fake_t *f, int is_version, size_t nborn,
                      const uint64_t *dead, size_t ndead) {
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
                        .durable = vh_store_durable_seq(f->s),
                        .inputs = g_inputs,
                        .inlen = g_inlen,
                        .chrec = g_chrec,
                        .chlen = g_chlen,
                        .stopping = g_stopping};
  char *m = NULL;
  int rc = vh_hist_slice(f->H, b, &sl, fake_sweep, f, &m);
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

/* ---- records ---- */

static int collect_seq(void *arg, const vh_version_t *v) {
  uint64_t *out = arg;
  out[out[0] + 1] = v->seq;
  out[0]++;
  return 0;
}

TEST_IMPL(records_round_trip) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(100);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0);
  uint64_t d1[] = {VH_DEAD(1, 0)};
  slice(&f, 1, 1, d1, 1);
  uint64_t d2[] = {VH_DEAD(2, 1)};
  slice(&f, 1, 1, d2, 1);
  vh_version_t v;
  char *m = NULL;
  ASSERT_EQ(vh_store_version_get(f.s, 2, &v, &m), 0);
  ASSERT_EQ(v.seq, 2);
  ASSERT_EQ(v.time_ms, 1002000);
  ASSERT_EQ(v.events, 1);
  ASSERT_EQ(v.keys_changed, 1);
  ASSERT_EQ(v.nchanged, 1);
  ASSERT(strcmp(v.changed[0], "d") == 0);
  ASSERT_EQ(v.m.seq, 2);
  ASSERT_EQ(v.m.next_id, 4);
  ASSERT_EQ(v.m.ndomains, 1);
  vh_version_free(&v);
  ASSERT_EQ(vh_store_version_get(f.s, 9, &v, &m), VH_ENOENT);
  ASSERT(m && strstr(m, "unknown version 9"));
  free(m);
  uint64_t seqs[8] = {0};
  ASSERT_EQ(vh_store_versions_each(f.s, 1, collect_seq, seqs, NULL), 0);
  ASSERT_EQ(seqs[0], 3);
  ASSERT_EQ(seqs[1], 3);
  ASSERT_EQ(seqs[3], 1);
  vh_history_t h;
  ASSERT_EQ(vh_store_history(f.s, &h, NULL), 0);
  ASSERT_EQ(h.oldest, 1);
  ASSERT_EQ(h.newest, 3);
  ASSERT_EQ(h.count, 3);
  ASSERT_GT(h.bytes, 0);
  fake_close(&f);
  dir_cleanup();
}

/* ---- the window ---- */

TEST_IMPL(window_deletes_exactly_when_oldest_reaches_death) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(3);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0);       /* v1: nodes 1, 2 */
  uint64_t a[] = {VH_DEAD(1, 0)}; /* 1 dies at v2 */
  slice(&f, 1, 1, a, 1);          /* v2: node 3 */
  uint64_t b[] = {VH_DEAD(2, 0)}; /* 2 dies at v3 */
  slice(&f, 1, 1, b, 1);          /* v3: node 4; window 1..3 */
  ASSERT(has_node(&f, 1));        /* v1 reaches it */
  uint64_t c[] = {VH_DEAD(3, 0)}; /* 3 dies at v4 */
  slice(&f, 1, 1, c, 1);          /* window 2..4 */
  ASSERT(!has_node(&f, 1));       /* oldest 2 >= 2 */
  ASSERT(has_node(&f, 2));        /* v2 reaches it */
  ASSERT(has_node(&f, 3));
  slice(&f, 1, 1, NULL, 0); /* window 3..5 */
  ASSERT(!has_node(&f, 2));
  ASSERT(has_node(&f, 3));
  vh_version_t v;
  ASSERT_EQ(vh_store_version_get(f.s, 2, &v, NULL), VH_ENOENT);
  ASSERT_EQ(vh_store_version_get(f.s, 3, &v, NULL), 0);
  vh_version_free(&v);
  vh_history_t h;
  ASSERT_EQ(vh_store_history(f.s, &h, NULL), 0);
  ASSERT_EQ(h.oldest, 3);
  ASSERT_EQ(h.count, 3);
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(retain_zero_deletes_in_the_same_batch) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(0);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0);
  uint64_t a[] = {VH_DEAD(1, 0)};
  slice(&f, 1, 1, a, 1);
  ASSERT(!has_node(&f, 1));
  uint64_t sub[] = {VH_DEAD(2, 1)};
  f.nsweeps = 0;
  slice(&f, 1, 0, sub, 1);
  ASSERT_EQ(f.nsweeps, 1); /* queued for the sweeper in that batch */
  ASSERT_EQ(f.sweeps[0], 2);
  vh_history_t h;
  ASSERT_EQ(vh_store_history(f.s, &h, NULL), 0);
  ASSERT_EQ(h.count, 1);
  ASSERT_EQ(h.oldest, 3);
  vh_version_t v;
  ASSERT_EQ(vh_store_version_get(f.s, 2, &v, NULL), VH_ENOENT);
  fake_close(&f);
  dir_cleanup();
}

static int count_chunk(void *arg, uint64_t d, uint64_t s, const uint64_t *e,
                       size_t n, uint64_t est) {
  (void)d;
  (void)s;
  (void)e;
  (void)est;
  *(size_t *)arg += n ? 1 : 1;
  return 0;
}

TEST_IMPL(retain_zero_writes_no_death_list) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(0);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0);
  for (uint64_t i = 1; i < 20; i++) {
    uint64_t a[] = {VH_DEAD(i, 0)};
    slice(&f, 1, 1, a, 1);
  }
  size_t chunks = 0;
  ASSERT_EQ(vh_store_deaths_all(f.s, count_chunk, &chunks, NULL), 0);
  ASSERT_EQ(chunks, 0);
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(late_deaths_join_the_newest_version) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(2);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 3, NULL, 0); /* v1: 1 2 3 */
  slice(&f, 1, 1, NULL, 0); /* v2: 4 */
  uint64_t a[] = {VH_DEAD(1, 0)};
  slice(&f, 0, 0, a, 1);   /* batch 3, not a version: 1 joins D(2) */
  ASSERT(has_node(&f, 1)); /* v1 still retained */
  vh_version_t v;
  ASSERT_EQ(vh_store_version_get(f.s, 3, &v, NULL), VH_ENOENT);
  slice(&f, 1, 1, NULL, 0); /* v4: window 2, 4 */
  ASSERT(!has_node(&f, 1));
  ASSERT(has_node(&f, 2));
  fake_close(&f);
  dir_cleanup();
}

/* ---- marks ---- */

TEST_IMPL(mark_pins_until_unmark) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(2);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0); /* v1: 1 2 */
  slice(&f, 1, 1, NULL, 0); /* v2: 3 */
  char *m = NULL;
  ASSERT_EQ(vh_hist_mark(f.H, "before", &m), 0);
  ASSERT_EQ(vh_hist_mark(f.H, "before", &m), VH_EINVAL);
  ASSERT(m && strstr(m, "exists"));
  free(m);
  ASSERT_EQ(vh_hist_mark(f.H, "9bad", &m), VH_EINVAL);
  free(m);
  uint64_t a[] = {VH_DEAD(2, 0), VH_DEAD(3, 0)};
  uint64_t n5 = slice(&f, 1, 1, a, 2); /* v3: 2, 3 die; node 4 */
  uint64_t b[] = {VH_DEAD(n5, 0)};     /* born after the mark */
  slice(&f, 1, 1, b, 1);               /* v4 */
  for (int i = 0; i < 5; i++) slice(&f, 1, 1, NULL, 0);
  ASSERT(has_node(&f, 2)); /* pinned by the mark on v2 */
  ASSERT(has_node(&f, 3));
  ASSERT(!has_node(&f, n5)); /* not pinned: born after v2 */
  vh_version_t v;
  ASSERT_EQ(vh_store_version_get(f.s, 2, &v, NULL), 0); /* marked */
  vh_version_free(&v);
  vh_mark_t *ms = NULL;
  size_t nm = 0;
  ASSERT_EQ(vh_store_marks(f.s, &ms, &nm, NULL), 0);
  ASSERT_EQ(nm, 1);
  ASSERT(strcmp(ms[0].name, "before") == 0);
  ASSERT_EQ(ms[0].seq, 2);
  ASSERT_GT(ms[0].bytes, 0);
  vh_marks_free(ms, nm);
  /* A restart keeps the mark and the pins. */
  fake_close(&f);
  fake_open(&f, test_dir, &r);
  for (int i = 0; i < 3; i++) slice(&f, 1, 1, NULL, 0);
  ASSERT(has_node(&f, 2));
  ASSERT_EQ(vh_hist_unmark(f.H, "nope", &m), VH_ENOENT);
  free(m);
  ASSERT_EQ(vh_hist_unmark(f.H, "before", &m), 0);
  for (int i = 0; i < 3; i++) slice(&f, 0, 0, NULL, 0);
  ASSERT(!has_node(&f, 2));
  ASSERT(!has_node(&f, 3));
  ASSERT_EQ(vh_store_version_get(f.s, 2, &v, NULL), VH_ENOENT);
  ASSERT_EQ(vh_store_marks(f.s, &ms, &nm, NULL), 0);
  ASSERT_EQ(nm, 0);
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(subtree_entries_sweep_with_death_seq) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(2);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 3, NULL, 0); /* v1 */
  slice(&f, 1, 1, NULL, 0); /* v2 */
  ASSERT_EQ(vh_hist_mark(f.H, "m", NULL), 0);
  uint64_t a[] = {VH_DEAD(1, 1)};
  f.nsweeps = 0;
  slice(&f, 1, 1, a, 1); /* v3: subtree 1 dies; pinned at v4 */
  slice(&f, 1, 1, NULL, 0);
  slice(&f, 1, 1, NULL, 0);
  ASSERT_EQ(f.nsweeps, 0); /* pinned, not swept */
  /* The sweeper's check for a child: born before the mark, died at 3. */
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_hist_pin(f.H, b, 2, 3), 1);
  ASSERT_EQ(vh_hist_pin(f.H, b, 2, 2), 0);   /* no mark below 2 */
  ASSERT_EQ(vh_hist_pin(f.H, b, 999, 3), 0); /* born after the mark */
  vh_batch_free(b);
  ASSERT_EQ(vh_hist_unmark(f.H, "m", NULL), 0);
  for (int i = 0; i < 3; i++) slice(&f, 0, 0, NULL, 0);
  ASSERT_EQ(f.nsweeps, 1);
  ASSERT_EQ(f.sweeps[0], 1);
  fake_close(&f);
  dir_cleanup();
}

/* ---- restart ---- */

TEST_IMPL(restart_reads_only_the_header) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(1000);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0);
  for (uint64_t i = 1; i < 30; i++) {
    uint64_t a[] = {VH_DEAD(i, 0)};
    slice(&f, 1, 1, a, 1);
  }
  fake_close(&f);
  /* Damage every death list and version record but the header: an open
   * that read any of them would fail. */
  char *err = NULL, path[300];
  snprintf(path, sizeof path, "%s/db", test_dir);
  vh_store_raw_t db;
  vh_store_raw_open(path, VH_RAW_WRITE, &db, &err);
  ASSERT(err == NULL);
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  for (uint64_t sq = 1; sq <= 29; sq++) {
    unsigned char k[17] = {'D'};
    for (int i = 0; i < 8; i++) k[1 + i] = (unsigned char)(sq >> (56 - 8 * i));
    for (int i = 0; i < 8; i++) k[9 + i] = (unsigned char)(sq >> (56 - 8 * i));
    rocksdb_put_cf(db.db, wo, vh_store_raw_family(&db, (char *)k, 17),
                   (char *)k, 17, "junk", 4, &err);
    ASSERT(err == NULL);
  }
  rocksdb_writeoptions_destroy(wo);
  vh_store_raw_close(&db);
  /* A smaller window: the next batch must drop old versions by reading
   * them, but the open itself reads nothing of them. */
  vh_retain_t r2 = retain_slices(1000);
  fake_open(&f, test_dir, &r2);
  vh_history_t h;
  vh_hist_info(f.H, &h);
  ASSERT_EQ(h.count, 30);
  ASSERT_EQ(h.oldest, 1);
  ASSERT_EQ(h.newest, 30);
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(restart_then_window_shrinks_from_disk) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(1000);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0); /* 1, 2 */
  uint64_t prev = 2;
  for (int i = 0; i < 100; i++) {
    uint64_t a[] = {VH_DEAD(prev, 0)};
    prev = slice(&f, 1, 1, a, 1);
  }
  fake_close(&f);
  vh_retain_t r2 = retain_slices(10);
  fake_open(&f, test_dir, &r2);
  for (int i = 0; i < 3; i++) slice(&f, 1, 1, NULL, 0); /* 64 per batch */
  vh_history_t h;
  vh_hist_info(f.H, &h);
  ASSERT_EQ(h.count, 10);
  ASSERT(has_node(&f, 1));
  for (uint64_t id = 2; id < 90; id++) {
    if (has_node(&f, id))
      fprintf(stderr, "node %llu still there\n", (unsigned long long)id);
    ASSERT(!has_node(&f, id));
  }
  ASSERT(has_node(&f, 100)); /* died at 100: the window is 95..104 */
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(age_keeps_the_newest_version_at_or_before_now_minus_age) {
  fake_t f = {0};
  vh_retain_t r;
  memset(&r, 0, sizeof r);
  r.age_ms = 5000; /* slices are 1 s apart */
  fake_open(&f, fresh_dir(), &r);
  for (int i = 0; i < 20; i++) slice(&f, 1, 1, NULL, 0);
  vh_history_t h;
  vh_hist_info(f.H, &h);
  /* now = the newest's time; versions at or after now - 5 s, plus the
   * newest one before that */
  ASSERT_EQ(h.newest, 20);
  ASSERT_EQ(h.oldest, 15);
  ASSERT_EQ(h.count, 6);
  /* idle: nothing due at the same time, due once the clock moved on */
  ASSERT_EQ(vh_hist_due(f.H, f.t, vh_store_durable_seq(f.s)), 0);
  ASSERT_EQ(vh_hist_due(f.H, f.t + 10000, vh_store_durable_seq(f.s)), 1);
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(byte_budget_bounds_the_estimate) {
  fake_t f = {0};
  vh_retain_t r;
  memset(&r, 0, sizeof r);
  r.bytes = 20000;
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 10, NULL, 0);
  uint64_t first = 1;
  for (int i = 0; i < 200; i++) {
    uint64_t a[10];
    for (int k = 0; k < 10; k++) a[k] = VH_DEAD(first + k, 0);
    first = slice(&f, 1, 10, a, 10);
    vh_history_t h;
    vh_hist_info(f.H, &h);
    ASSERT_LE(h.bytes, 20000);
  }
  vh_history_t h;
  vh_hist_info(f.H, &h);
  ASSERT_GT(h.count, 5);
  ASSERT_LT(h.count, 200);
  /* what is not retained is deleted */
  ASSERT(!has_node(&f, 1));
  ASSERT(has_node(&f, first));
  fake_close(&f);
  dir_cleanup();
}

/* The input log 'I' rides in its version's batch, is read back, counts in
 * the estimate, and is deleted with the version when the window passes it
 * (a slice that is not a version writes none). */
TEST_IMPL(input_log_kept_and_dropped_with_its_version) {
  fake_t f;
  vh_retain_t r = retain_slices(2);
  fake_open(&f, fresh_dir(), &r);
  vh_buf_t rec;
  vh_buf_init(&rec);
  ASSERT_EQ(vh_inputs_encode(&rec, 99, 5, 0, NULL, 0, NULL), 0);
  g_inputs = rec.p;
  g_inlen = rec.len;
  uint64_t v1 = f.seq + 1;
  slice(&f, 1, 1, NULL, 0);
  vh_history_t h0;
  vh_hist_info(f.H, &h0);
  slice(&f, 0, 0, NULL, 0); /* not a version: no record */
  uint64_t nv = f.seq;
  vh_inputs_t in;
  char *m = NULL;
  ASSERT_EQ(vh_store_inputs_get(f.s, v1, &in, &m), 0);
  ASSERT_EQ(in.now, 99);
  ASSERT_EQ(in.seed, 5u);
  vh_inputs_free(&in);
  ASSERT_EQ(vh_store_inputs_get(f.s, nv, &in, &m), VH_ENOENT);
  ASSERT_EQ(m != NULL, 1);
  free(m);
  m = NULL;
  slice(&f, 1, 1, NULL, 0);
  slice(&f, 1, 1, NULL, 0); /* v1 leaves the window of 2 */
  ASSERT_EQ(vh_store_inputs_get(f.s, v1, &in, &m), VH_ENOENT);
  free(m);
  g_inputs = NULL;
  g_inlen = 0;
  /* the estimate counted the record: a version without one is smaller */
  vh_history_t h1;
  vh_hist_info(f.H, &h1);
  ASSERT_GT(h0.bytes, (uint64_t)rec.len);
  vh_buf_free(&rec);
  fake_close(&f);
  dir_cleanup();
}

/* ---- memory ---- */

/* The change record 'C' rides in its version's batch like 'I', is read
 * back, and is deleted with the version when the window passes it. */
TEST_IMPL(change_record_kept_and_dropped_with_its_version) {
  fake_t f;
  vh_retain_t r = retain_slices(2);
  fake_open(&f, fresh_dir(), &r);
  vh_buf_t rec;
  vh_buf_init(&rec);
  vh_val_t k = vh_int(3);
  const char *open = NULL;
  ASSERT_EQ(vh_chrec_begin(&rec, f.seq), 0);
  ASSERT_EQ(vh_chrec_add(&rec, &open, "d", '+', &k, 1, vh_nil(), vh_int(9)), 0);
  ASSERT_EQ(vh_chrec_end(&rec, open), 0);
  g_chrec = rec.p;
  g_chlen = rec.len;
  uint64_t v1 = f.seq + 1;
  slice(&f, 1, 1, NULL, 0);
  slice(&f, 0, 0, NULL, 0); /* not a version: no record */
  uint64_t nv = f.seq;
  g_chrec = NULL;
  g_chlen = 0;
  vh_chrec_t c;
  char *m = NULL;
  ASSERT_EQ(vh_store_chrec_get(f.s, v1, &c, &m), 0);
  ASSERT_EQ(c.seq, v1);
  ASSERT_EQ(c.pred, v1 - 1);
  ASSERT_EQ(c.ndom, 1u);
  ASSERT_EQ(c.dom[0].e[0].new.u.i, 9);
  vh_chrec_free(&c);
  ASSERT_EQ(vh_store_chrec_get(f.s, nv, &c, &m), VH_ENOENT);
  free(m);
  m = NULL;
  slice(&f, 1, 1, NULL, 0);
  slice(&f, 1, 1, NULL, 0); /* v1 leaves the window of 2 */
  ASSERT_EQ(vh_store_chrec_get(f.s, v1, &c, &m), VH_ENOENT);
  free(m);
  vh_buf_free(&rec);
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(death_lists_in_memory_are_bounded) {
  /* 70 retained versions of 4096 deaths each (286,720 entries) are more
   * than the 262,144 entries kept in memory (history.c, MEMORY AND THE
   * LOOP THREAD): the oldest durable chunks are evicted, and dropping
   * their versions later reads them back from disk and still deletes
   * exactly their nodes. */
  enum { PER = 4096, KILLS = 100, CAP = 1 << 18 };
  fake_t f = {0};
  vh_retain_t r = retain_slices(70);
  fake_open(&f, fresh_dir(), &r);
  uint64_t first = slice(&f, 1, (size_t)PER * KILLS, NULL, 0);
  static uint64_t dead[PER];
  size_t most = 0;
  for (int k = 0; k < KILLS; k++) {
    for (int i = 0; i < PER; i++)
      dead[i] = VH_DEAD(first + (uint64_t)k * PER + (uint64_t)i, 0);
    slice(&f, 1, 1, dead, PER);
    size_t held = vh_hist__mem_entries(f.H);
    if (held > most) most = held;
  }
  fprintf(stderr, "death entries in memory: at most %zu\n", most);
  ASSERT(most <= (size_t)CAP + PER);
  /* The window is the last 70 versions: the deaths of the first 30
   * kill slices were processed (their chunks had been evicted). */
  ASSERT(!has_node(&f, first));
  ASSERT(!has_node(&f, first + (uint64_t)30 * PER - 1));
  ASSERT(has_node(&f, first + (uint64_t)(KILLS - 1) * PER));
  fake_close(&f);
  dir_cleanup();
}

/* ---- a stopping host (history.c, BOUNDED DROPS; perf/stop) ---- */

TEST_IMPL(stopping_batch_drops_no_version_of_an_earlier_run) {
  /* 101 versions, each killing the node the one before made; restarted
   * with a window of 10: the batch of a stopping host drops one of them,
   * as many as it adds (their death lists are on disk; it used to drop
   * 64), and the next start's batches drop the rest exactly as if the
   * stop had never come between. */
  fake_t f = {0};
  vh_retain_t r = retain_slices(1000);
  fake_open(&f, fresh_dir(), &r);
  slice(&f, 1, 2, NULL, 0); /* 1, 2 */
  uint64_t prev = 2;
  for (int i = 0; i < 100; i++) {
    uint64_t a[] = {VH_DEAD(prev, 0)};
    prev = slice(&f, 1, 1, a, 1);
  }
  fake_close(&f);
  vh_retain_t r2 = retain_slices(10);
  fake_open(&f, test_dir, &r2);
  g_stopping = 1;
  slice(&f, 1, 1, NULL, 0);
  g_stopping = 0;
  vh_history_t h;
  vh_hist_info(f.H, &h);
  ASSERT_EQ(h.count, 101);
  ASSERT(!has_node(&f, 2)); /* died at 2, the new oldest */
  for (uint64_t id = 3; id < 102; id++) ASSERT(has_node(&f, id));
  fake_close(&f);
  /* a batch that is not a version drops none */
  fake_open(&f, test_dir, &r2);
  g_stopping = 1;
  slice(&f, 0, 0, NULL, 0);
  g_stopping = 0;
  vh_hist_info(f.H, &h);
  ASSERT_EQ(h.count, 101);
  ASSERT(has_node(&f, 3));
  fake_close(&f);
  /* the next start */
  fake_open(&f, test_dir, &r2);
  for (int i = 0; i < 3; i++) slice(&f, 1, 1, NULL, 0); /* 64 per batch */
  vh_hist_info(f.H, &h);
  ASSERT_EQ(h.count, 10);
  ASSERT(has_node(&f, 1));
  for (uint64_t id = 2; id <= 96; id++) ASSERT(!has_node(&f, id));
  ASSERT(has_node(&f, 97)); /* died at 97: the window is 96..105 */
  fake_close(&f);
  dir_cleanup();
}

TEST_IMPL(stopping_batch_still_drops_versions_in_memory) {
  /* --retain 0: the previous version of this run (its deaths in memory)
   * still goes in the stopping batch: no death list is left. */
  fake_t f = {0};
  vh_retain_t r = retain_slices(0);
  fake_open(&f, fresh_dir(), &r);
  uint64_t a1 = slice(&f, 1, 2, NULL, 0);
  uint64_t d1[] = {VH_DEAD(a1, 0)};
  slice(&f, 1, 1, d1, 1);
  uint64_t d2[] = {VH_DEAD(a1 + 1, 0)};
  g_stopping = 1;
  slice(&f, 1, 1, d2, 1);
  g_stopping = 0;
  vh_history_t h;
  vh_hist_info(f.H, &h);
  ASSERT_EQ(h.count, 1);
  ASSERT(!has_node(&f, a1));
  ASSERT(!has_node(&f, a1 + 1));
  fake_close(&f);
  dir_cleanup();
}

static int count_deaths(void *arg, uint64_t s, const uint64_t *ents, size_t n,
                        uint64_t est) {
  (void)s;
  (void)ents;
  (void)est;
  *(size_t *)arg += n;
  return 0;
}

TEST_IMPL(drops_per_batch_are_bounded_by_death_entries) {
  /* 10 versions of 20,000 deaths each, then a window of 1: a batch stops
   * dropping once it processed 65,536 entries (history.c, BOUNDED DROPS),
   * so 4 versions go per batch (not 10), each dropped exactly. */
  enum { PER = 20000, KILLS = 10 };
  fake_t f = {0};
  vh_retain_t r = retain_slices(1000);
  fake_open(&f, fresh_dir(), &r);
  uint64_t first = slice(&f, 1, (size_t)PER * KILLS, NULL, 0);
  static uint64_t dead[PER];
  for (int k = 0; k < KILLS; k++) {
    for (int i = 0; i < PER; i++)
      dead[i] = VH_DEAD(first + (uint64_t)k * PER + (uint64_t)i, 0);
    slice(&f, 1, 1, dead, PER);
  }
  fake_close(&f);
  vh_retain_t r1 = retain_slices(1);
  fake_open(&f, test_dir, &r1);
  slice(&f, 1, 1, NULL, 0);
  vh_history_t h;
  vh_hist_info(f.H, &h);
  ASSERT_EQ(h.count, 12 - 4);
  /* the deaths of versions 2..5 (kill slices 0..3) are gone, not 6's */
  ASSERT(!has_node(&f, first));
  ASSERT(!has_node(&f, first + (uint64_t)4 * PER - 1));
  ASSERT(has_node(&f, first + (uint64_t)4 * PER));
  for (int i = 0; i < 10 && h.count > 1; i++) {
    slice(&f, 1, 1, NULL, 0);
    vh_hist_info(f.H, &h);
  }
  ASSERT_EQ(h.count, 1);
  ASSERT(!has_node(&f, first + (uint64_t)KILLS * PER - 1));
  size_t left = 0;
  ASSERT_EQ(vh_store_deaths_each(f.s, h.newest, count_deaths, &left, NULL), 0);
  ASSERT_EQ(left, 0);
  fake_close(&f);
  dir_cleanup();
}

/* ---- the graveyard (store format 5, persist/store/graveyard.c) ---- */

/* Is node id in the store at all (the graveyard's ids too)? */
static int stored(fake_t *f, uint64_t id) {
  void *p = NULL;
  size_t n = 0;
  int rc = vh_store_get_node(f->s, id, &p, &n, NULL);
  free(p);
  return rc == 0;
}

static int count_id(void *arg, uint64_t id) {
  (void)id;
  (*(uint64_t *)arg)++;
  return 0;
}

/* Ids in the graveyard (each block's count checked by grave_find_block). */
static uint64_t grave_ids(fake_t *f) {
  uint64_t n = 0;
  ASSERT_EQ(vh_store_grave_each(f->s, count_id, grave_find_block, &n, NULL), 0);
  return n;
}

/* A store of 4-id blocks whose graveyard takes every dead node
 * (hist_fixture.h), in the plain run too; grave_done puts the env back. */
static int g_grave_env;
static void grave_open(fake_t *f, const char *dir, const vh_retain_t *r) {
  g_grave_env = getenv("VH_TEST_GRAVE") != NULL;
  setenv("VH_TEST_GRAVE", "1", 1);
  fake_open(f, dir, r);
}

static void grave_done(fake_t *f) {
  fake_close(f);
  if (!g_grave_env) unsetenv("VH_TEST_GRAVE");
  dir_cleanup();
}

static uint64_t *dead_range(uint64_t lo, uint64_t hi, size_t *n) {
  uint64_t *v = malloc((hi - lo + 1) * sizeof *v);
  ASSERT(v != NULL);
  *n = 0;
  for (uint64_t id = lo; id <= hi; id++) v[(*n)++] = VH_DEAD(id, 0);
  return v;
}

TEST_IMPL(graveyard_deletes_whole_blocks_by_range) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(0);
  grave_open(&f, fresh_dir(), &r);
  slice(&f, 1, 40, NULL, 0); /* nodes 1..40: blocks 0 (1..3) to 10 (40) */
  size_t n;
  uint64_t *d = dead_range(4, 39, &n); /* blocks 1..9 die whole */
  slice(&f, 1, 0, d, n);
  free(d);
  ASSERT_EQ(grave_ids(&f), 36); /* written down, not deleted */
  ASSERT(stored(&f, 4) && stored(&f, 39));
  ASSERT(!has_node(&f, 4)); /* but dead to the store */
  /* one block per batch, once its records are durable */
  for (int i = 0; i < 12; i++) slice(&f, 1, 0, NULL, 0);
  for (uint64_t id = 4; id <= 39; id++) ASSERT(!stored(&f, id));
  ASSERT_EQ(grave_ids(&f), 0);
  for (uint64_t id = 1; id <= 3; id++) ASSERT(has_node(&f, id));
  ASSERT(has_node(&f, 40));
  grave_done(&f);
}

TEST_IMPL(graveyard_releases_blocks_that_never_complete) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(0);
  grave_open(&f, fresh_dir(), &r);
  slice(&f, 1, 40, NULL, 0); /* nodes 1..40 */
  /* 3 of the 4 ids of blocks 0..5 die (id 0 is never a node: block 0 is
   * 1..3, which never completes): 18 wait, the cap is 16 */
  uint64_t d[18];
  size_t n = 0;
  for (uint64_t id = 1; id <= 3; id++) d[n++] = VH_DEAD(id, 0);
  for (uint64_t blk = 1; blk <= 5; blk++)
    for (uint64_t id = blk * 4 + 1; id < blk * 4 + 4; id++)
      d[n++] = VH_DEAD(id, 0);
  slice(&f, 1, 0, d, n);
  ASSERT_EQ(grave_ids(&f), 18);
  slice(&f, 1, 0, NULL, 0); /* the lowest block is released */
  for (uint64_t id = 1; id <= 3; id++) ASSERT(!stored(&f, id));
  ASSERT_EQ(grave_ids(&f), 15); /* <= 16: no more releases */
  slice(&f, 1, 0, NULL, 0);
  ASSERT_EQ(grave_ids(&f), 15);
  ASSERT(stored(&f, 5) && !has_node(&f, 5));
  ASSERT(has_node(&f, 4)); /* the one live id of block 1 */
  /* the floor is above block 0: a death there is deleted at once (none
   * is left), and block 1's last id completes it */
  uint64_t last[] = {VH_DEAD(4, 0)};
  slice(&f, 1, 0, last, 1);
  for (int i = 0; i < 3; i++) slice(&f, 1, 0, NULL, 0);
  for (uint64_t id = 4; id <= 7; id++) ASSERT(!stored(&f, id));
  ASSERT_EQ(grave_ids(&f), 12);
  grave_done(&f);
}

TEST_IMPL(graveyard_counts_survive_a_restart) {
  fake_t f = {0};
  vh_retain_t r = retain_slices(0);
  grave_open(&f, fresh_dir(), &r);
  slice(&f, 1, 40, NULL, 0);
  size_t n;
  uint64_t *d = dead_range(8, 10, &n); /* 3 of block 2 (8..11) */
  slice(&f, 1, 0, d, n);
  free(d);
  fake_close(&f);
  fake_open(&f, test_dir, &r); /* reads the counts back */
  ASSERT_EQ(grave_ids(&f), 3);
  uint64_t last[] = {VH_DEAD(11, 0)};
  slice(&f, 1, 0, last, 1);
  for (int i = 0; i < 3; i++) slice(&f, 1, 0, NULL, 0);
  for (uint64_t id = 8; id <= 11; id++) ASSERT(!stored(&f, id));
  ASSERT_EQ(grave_ids(&f), 0);
  ASSERT(has_node(&f, 7) && has_node(&f, 12));
  grave_done(&f);
}

VH_TEST_MAIN(
    TEST_ENTRY(input_log_kept_and_dropped_with_its_version),
    TEST_ENTRY(change_record_kept_and_dropped_with_its_version),

    TEST_ENTRY(age_keeps_the_newest_version_at_or_before_now_minus_age),
    TEST_ENTRY(byte_budget_bounds_the_estimate), TEST_ENTRY(records_round_trip),
    TEST_ENTRY(window_deletes_exactly_when_oldest_reaches_death),
    TEST_ENTRY(retain_zero_deletes_in_the_same_batch),
    TEST_ENTRY(retain_zero_writes_no_death_list),
    TEST_ENTRY(late_deaths_join_the_newest_version),
    TEST_ENTRY(mark_pins_until_unmark),
    TEST_ENTRY(subtree_entries_sweep_with_death_seq),
    TEST_ENTRY(restart_reads_only_the_header),
    TEST_ENTRY(restart_then_window_shrinks_from_disk),
    TEST_ENTRY(death_lists_in_memory_are_bounded),
    TEST_ENTRY(stopping_batch_drops_no_version_of_an_earlier_run),
    TEST_ENTRY(stopping_batch_still_drops_versions_in_memory),
    TEST_ENTRY(drops_per_batch_are_bounded_by_death_entries),
    TEST_ENTRY(graveyard_deletes_whole_blocks_by_range),
    TEST_ENTRY(graveyard_releases_blocks_that_never_complete),
    TEST_ENTRY(graveyard_counts_survive_a_restart))
