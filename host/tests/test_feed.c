/*
 * test_feed.c - the change feed and change records (host/runtime/changes.c,
 * CHANGE RECORDS): a version whose record is relative to the version sent
 * before it is sent from the record; a record whose pred is a retained
 * version the view does not show (a following secondary that lags) makes
 * the poll send nothing of it and report walk_fault, so that a follower
 * polls again instead of sending the hidden version's changes as the
 * later one's.
 *
 * The store is driven like host/runtime/durable.c drives it (the history
 * engine's fake host, persist/tests/hist_fixture.h): versions with empty
 * roots and hand-made records, so the records are the only changes.
 */
#define _GNU_SOURCE /* nftw (hist_fixture.h) */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_changes.h"
#include "vh_chrec.h"
#include "vh_manifest.h"
#include "vh_store.h"
#include "vh_test.h"
#include "vh_versions.h"

#include "hist_fixture.h"

/* One batch: a version (or not) with the record rec (NULL: none). */
static void slice(fake_t *f, int is_version, const vh_buf_t *rec) {
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  f->seq++;
  f->t += 1000;
  vh_manifest_t man;
  memset(&man, 0, sizeof man);
  man.seq = f->seq;
  man.next_id = f->next_id > 1 ? f->next_id : 2;
  /* root 1: never read (every version sent here comes from a record) */
  ASSERT_EQ(vh_manifest_add(&man, "d", 1, is_version ? f->seq : 1), 0);
  void *mb = NULL;
  size_t ml = 0;
  ASSERT_EQ(vh_manifest_encode(&man, &mb, &ml), 0);
  vh_manifest_free(&man);
  char *ch[] = {"d"};
  vh_hist_slice_t sl = {.seq = f->seq,
                        .is_version = is_version,
                        .time_ms = f->t,
                        .events = 1,
                        .changed = ch,
                        .nchanged = is_version ? 1 : 0,
                        .man = mb,
                        .manlen = ml,
                        .next_id = f->next_id,
                        .durable = vh_store_durable_seq(f->s),
                        .chrec = rec ? rec->p : NULL,
                        .chlen = rec ? rec->len : 0};
  char *m = NULL;
  ASSERT_EQ(vh_hist_slice(f->H, b, &sl, fake_sweep, f, &m), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, mb, ml), 0);
  free(mb);
  ASSERT_EQ(vh_store_submit(f->s, b, f->seq), 0);
  ASSERT_EQ(vh_store_wait_durable(f->s, f->seq), 0);
}

/* A record relative to pred: + d.k = value. */
static void record(vh_buf_t *rec, uint64_t pred, int64_t value) {
  vh_val_t k = vh_int(1);
  const char *open = NULL;
  ASSERT_EQ(vh_chrec_begin(rec, pred), 0);
  ASSERT_EQ(vh_chrec_add(rec, &open, "d", '+', &k, 1, vh_nil(), vh_int(value)),
            0);
  ASSERT_EQ(vh_chrec_end(rec, open), 0);
}

typedef struct got {
  uint64_t seq[8];
  int64_t val[8];
  int n;
} got_t;

static int take(void *arg, const vh_change_t *c) {
  got_t *g = arg;
  ASSERT(g->n < 8);
  ASSERT_EQ(c->op, '+');
  ASSERT_EQ(c->n, 1u);
  ASSERT_EQ(c->of, 1u);
  g->seq[g->n] = c->seq;
  g->val[g->n++] = c->new.u.i;
  return 0;
}

TEST_IMPL(versions_sent_from_their_records) {
  fake_t f;
  vh_retain_t r;
  memset(&r, 0, sizeof r);
  r.slices = 100;
  fake_open(&f, fresh_dir(), &r);
  vh_buf_t rec;
  vh_buf_init(&rec);
  slice(&f, 1, NULL); /* 1: no record */
  record(&rec, 1, 20);
  slice(&f, 1, &rec); /* 2: + d[1] = 20, from 1 */
  record(&rec, 2, 30);
  slice(&f, 1, &rec); /* 3: + d[1] = 30, from 2 */
  vh_feed_t feed;
  vh_feed_init(&feed, f.s, vh_tab_stub_view, 1);
  got_t g;
  memset(&g, 0, sizeof g);
  char *m = NULL;
  ASSERT_EQ(vh_feed_poll(&feed, 0, take, &g, NULL, &m), 0);
  ASSERT_EQ(g.n, 2);
  ASSERT_EQ(g.seq[0], 2u);
  ASSERT_EQ(g.val[0], 20);
  ASSERT_EQ(g.seq[1], 3u);
  ASSERT_EQ(g.val[1], 30);
  ASSERT_EQ(feed.record_versions, 2u);
  ASSERT_EQ(feed.last, 3u);
  vh_feed_free(&feed);
  vh_buf_free(&rec);
  fake_close(&f);
  dir_cleanup();
}

/* Version 3's record says it follows version 2, which is in the window
 * ('H' oldest is 1) but has no 'V' this view shows: nothing of 3 is
 * sent, the poll reports walk_fault. */
TEST_IMPL(a_hidden_version_before_a_record_is_waited_for) {
  fake_t f;
  vh_retain_t r;
  memset(&r, 0, sizeof r);
  r.slices = 100;
  fake_open(&f, fresh_dir(), &r);
  vh_buf_t rec;
  vh_buf_init(&rec);
  slice(&f, 1, NULL); /* 1 */
  slice(&f, 0, NULL); /* 2: not a version (stands for one not seen) */
  record(&rec, 2, 30);
  slice(&f, 1, &rec); /* 3, from "2" */
  vh_feed_t feed;
  vh_feed_init(&feed, f.s, vh_tab_stub_view, 1);
  got_t g;
  memset(&g, 0, sizeof g);
  char *m = NULL;
  int rc = vh_feed_poll(&feed, 0, take, &g, NULL, &m);
  ASSERT(rc < 0);
  ASSERT_EQ(feed.walk_fault, 1);
  ASSERT_EQ(g.n, 0);
  ASSERT_EQ(feed.last, 1u);
  ASSERT(m != NULL && strstr(m, "not visible yet") != NULL);
  free(m);
  vh_feed_free(&feed);
  vh_buf_free(&rec);
  fake_close(&f);
  dir_cleanup();
}

VH_TEST_MAIN(TEST_ENTRY(versions_sent_from_their_records),
             TEST_ENTRY(a_hidden_version_before_a_record_is_waited_for))
