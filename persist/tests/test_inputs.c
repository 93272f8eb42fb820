/*
 * test_inputs.c - the input log record codec (vh_inputs.h,
 * persist/store/store_inputs.c): an exact round trip of every field (kinds,
 * ids, binary event names, nested payloads, replies only where sent),
 * refusal of every truncation and of trailing bytes (VH_ECORRUPT), of a
 * newer layout (VH_EFORMAT), and of bad kind / outcome bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trie_util.h"
#include "vh_inputs.h"
#include "vh_test.h"

static vh_val_t sv(const char *s) {
  vh_val_t v;
  v.u.i = 0;
  v.u.s = vh_str_new(s, strlen(s));
  v.type = VH_TSTR;
  return v;
}

/* {n = 7, list = {1.5, "x"}} */
static vh_val_t payload(void) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e), *l = vh_tab_new(e);
  ASSERT_EQ(vh_tab_set(&l, vh_int(1), vh_float(1.5), e), 0);
  ASSERT_EQ(vh_tab_set(&l, vh_int(2), sv("x"), e), 0);
  vh_val_t kn = sv("n"), kl = sv("list"); /* keys are borrowed */
  ASSERT_EQ(vh_tab_set(&t, kn, vh_int(7), e), 0);
  vh_val_t lv;
  lv.u.i = 0;
  lv.u.t = l;
  lv.type = VH_TTAB;
  ASSERT_EQ(vh_tab_set(&t, kl, lv, e), 0);
  vh_val_release(kn);
  vh_val_release(kl);
  vh_val_t v;
  v.u.i = 0;
  v.u.t = t;
  v.type = VH_TTAB;
  return v;
}

static void build(vh_buf_t *rec) {
  vh_buf_t ents;
  vh_buf_init(&ents);
  vh_val_t p = payload();
  ASSERT_EQ(vh_inputs_add(&ents, VH_IN_CALL, 0, "counter", 7, "get", 3,
                          vh_nil(), VH_IN_OK, 1, vh_int(42)),
            0);
  ASSERT_EQ(vh_inputs_add(&ents, VH_IN_AFTER, 12345, "jobs", 4, "a\0b", 3, p,
                          VH_IN_RAISED, 0, vh_nil()),
            0);
  ASSERT_EQ(vh_inputs_add(&ents, VH_IN_MSG, -3, "jobs", 4, "m", 1, p, VH_IN_OK,
                          0, vh_int(1)),
            0);
  ASSERT_EQ(vh_inputs_add(&ents, VH_IN_EVERY, 1000, "c", 1, "tick", 4, vh_nil(),
                          VH_IN_NOCALL, 1, vh_nil()),
            0);
  vh_val_release(p);
  rec->len = 0;
  ASSERT_EQ(vh_inputs_encode(rec, 1764000000123LL, 0xfeedULL, 1,
                             "counter.get called io.open", 4, &ents),
            0);
  vh_buf_free(&ents);
}

TEST_IMPL(round_trip) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  build(&rec);
  vh_inputs_t in;
  char *m = NULL;
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 77, &in, &m), 0);
  ASSERT_EQ(in.seq, 77u);
  ASSERT_EQ(in.now, 1764000000123LL);
  ASSERT_EQ(in.seed, 0xfeedULL);
  ASSERT_EQ(in.unreplayable, 1);
  ASSERT_STR_EQ(in.reason, "counter.get called io.open");
  ASSERT_EQ(in.n, 4u);
  ASSERT_EQ(in.v[0].kind, VH_IN_CALL);
  ASSERT_STR_EQ(in.v[0].domain, "counter");
  ASSERT_STR_EQ(in.v[0].event, "get");
  ASSERT_EQ(in.v[0].has_reply, 1);
  ASSERT_EQ(in.v[0].reply.type, VH_TINT);
  ASSERT_EQ(in.v[0].reply.u.i, 42);
  ASSERT_EQ(in.v[1].kind, VH_IN_AFTER);
  ASSERT_EQ(in.v[1].id, 12345);
  ASSERT_EQ(in.v[1].elen, 3u);
  ASSERT_EQ(memcmp(in.v[1].event, "a\0b", 3), 0);
  ASSERT_EQ(in.v[1].outcome, VH_IN_RAISED);
  vh_val_t p = payload();
  ASSERT_EQ(vh_val_equal(in.v[1].payload, p), 1);
  ASSERT_EQ(vh_val_equal(in.v[2].payload, p), 1);
  vh_val_release(p);
  ASSERT_EQ(in.v[2].id, -3);
  ASSERT_EQ(in.v[2].has_reply, 0);
  ASSERT_EQ(in.v[2].reply.type, VH_TNIL); /* not sent: not stored */
  ASSERT_EQ(in.v[3].kind, VH_IN_EVERY);
  ASSERT_EQ(in.v[3].outcome, VH_IN_NOCALL);
  vh_inputs_free(&in);
  vh_buf_free(&rec);
}

TEST_IMPL(empty_record) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  ASSERT_EQ(vh_inputs_encode(&rec, 5, 0, 0, NULL, 0, NULL), 0);
  vh_inputs_t in;
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 1, &in, NULL), 0);
  ASSERT_EQ(in.n, 0u);
  ASSERT_EQ(in.reason == NULL, 1);
  ASSERT_EQ(in.unreplayable, 0);
  vh_inputs_free(&in);
  vh_buf_free(&rec);
}

TEST_IMPL(truncations_and_trailing_bytes_are_corrupt) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  build(&rec);
  for (size_t n = 0; n < rec.len; n++) {
    vh_inputs_t in;
    char *m = NULL;
    int rc = vh_inputs_decode(rec.p, n, 3, &in, &m);
    ASSERT_EQ(rc, VH_ECORRUPT);
    ASSERT_EQ(m != NULL, 1);
    free(m);
  }
  ASSERT_EQ(vh_buf_put(&rec, "", 1), 0);
  vh_inputs_t in;
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 3, &in, NULL), VH_ECORRUPT);
  vh_buf_free(&rec);
}

TEST_IMPL(newer_layout_and_bad_bytes_are_refused) {
  vh_buf_t rec;
  vh_buf_init(&rec);
  build(&rec);
  vh_inputs_t in;
  char *m = NULL;
  rec.p[0] = 2; /* layout 2 */
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 3, &in, &m), VH_EFORMAT);
  ASSERT_EQ(strstr(m, "newer") != NULL, 1);
  free(m);
  rec.p[0] = 1;
  rec.p[20] = 7; /* flags */
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 3, &in, NULL), VH_ECORRUPT);
  rec.p[20] = 1;
  /* header 21 + varint reason len (1) + reason + varint n (1): first kind */
  size_t k = 21 + 1 + strlen("counter.get called io.open") + 1;
  rec.p[k] = VH_IN_KINDS;
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 3, &in, NULL), VH_ECORRUPT);
  rec.p[k] = VH_IN_CALL;
  rec.p[k + 1] = 0x13; /* outcome 3 */
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 3, &in, NULL), VH_ECORRUPT);
  rec.p[k + 1] = 0x10;
  ASSERT_EQ(vh_inputs_decode(rec.p, rec.len, 3, &in, NULL), 0);
  vh_inputs_free(&in);
  vh_buf_free(&rec);
}

VH_TEST_MAIN(TEST_ENTRY(round_trip), TEST_ENTRY(empty_record),
             TEST_ENTRY(truncations_and_trailing_bytes_are_corrupt),
             TEST_ENTRY(newer_layout_and_bad_bytes_are_refused))
