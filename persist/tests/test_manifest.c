/* test_manifest.c - the manifest's encoding: round trip, and refusal of
 * every truncation, a newer version, bad magic and trailing bytes; and
 * vh_manifest_same_but_seq. */
#include <stdlib.h>
#include <string.h>

#include "vh_manifest.h"
#include "vh_test.h"

static void sample(vh_manifest_t *m) {
  memset(m, 0, sizeof *m);
  m->seq = 42;
  m->next_id = 1000;
  m->sys_root = 7;
  ASSERT_EQ(vh_manifest_add(m, "counter", 11, 1), 0);
  ASSERT_EQ(vh_manifest_add(m, "jobs", 999, 3), 0);
}

TEST_IMPL(round_trip) {
  vh_manifest_t m, d;
  sample(&m);
  void *buf;
  size_t len;
  ASSERT_EQ(vh_manifest_encode(&m, &buf, &len), 0);
  char *err = NULL;
  ASSERT_EQ(vh_manifest_decode(buf, len, &d, &err), 0);
  ASSERT(err == NULL);
  ASSERT_EQ(d.seq, 42);
  ASSERT_EQ(d.next_id, 1000);
  ASSERT_EQ(d.sys_root, 7);
  ASSERT_EQ(d.ndomains, 2);
  ASSERT_STR_EQ(d.domains[1].name, "jobs");
  ASSERT_EQ(d.domains[1].root, 999);
  ASSERT_EQ(d.domains[1].version, 3);
  ASSERT(vh_manifest_find(&d, "counter") == &d.domains[0]);
  ASSERT(vh_manifest_find(&d, "nope") == NULL);
  vh_manifest_free(&d);
  vh_manifest_free(&m);
  free(buf);
}

TEST_IMPL(every_truncation_refused) {
  vh_manifest_t m, d;
  sample(&m);
  void *buf;
  size_t len;
  ASSERT_EQ(vh_manifest_encode(&m, &buf, &len), 0);
  for (size_t l = 0; l < len; l++) {
    char *err = NULL;
    ASSERT_EQ(vh_manifest_decode(buf, l, &d, &err), VH_ECORRUPT);
    ASSERT(err != NULL);
    ASSERT_EQ(d.ndomains, 0);
    free(err);
  }
  /* One trailing byte is refused too. */
  unsigned char *big = malloc(len + 1);
  memcpy(big, buf, len);
  big[len] = 0;
  ASSERT_EQ(vh_manifest_decode(big, len + 1, &d, NULL), VH_ECORRUPT);
  free(big);
  vh_manifest_free(&m);
  free(buf);
}

TEST_IMPL(newer_and_foreign_refused) {
  vh_manifest_t m, d;
  sample(&m);
  unsigned char *buf;
  size_t len;
  ASSERT_EQ(vh_manifest_encode(&m, (void **)&buf, &len), 0);
  buf[4] = VH_MANIFEST_VERSION + 1;
  char *err = NULL;
  ASSERT_EQ(vh_manifest_decode(buf, len, &d, &err), VH_EFORMAT);
  ASSERT(strstr(err, "newer") != NULL);
  free(err);
  buf[4] = VH_MANIFEST_VERSION;
  buf[0] = 'X';
  ASSERT_EQ(vh_manifest_decode(buf, len, &d, &err), VH_ECORRUPT);
  ASSERT(strstr(err, "magic") != NULL);
  free(err);
  buf[0] = 'V';
  /* A root id past next_id is refused. */
  m.domains[0].root = 5000;
  free(buf);
  ASSERT_EQ(vh_manifest_encode(&m, (void **)&buf, &len), 0);
  ASSERT_EQ(vh_manifest_decode(buf, len, &d, &err), VH_ECORRUPT);
  free(err);
  free(buf);
  vh_manifest_free(&m);
}

TEST_IMPL(bad_names_not_encoded) {
  vh_manifest_t m;
  memset(&m, 0, sizeof m);
  m.next_id = 10;
  char longname[300];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  ASSERT_EQ(vh_manifest_add(&m, longname, 1, 1), 0);
  void *buf;
  size_t len;
  ASSERT_EQ(vh_manifest_encode(&m, &buf, &len), VH_EINVAL);
  vh_manifest_free(&m);
}

/* Two encodings that differ only in the slice sequence number (bytes
 * 8..16) are "the same"; any other difference, a length difference, a
 * missing side or a buffer too short to hold the sequence is not. */
TEST_IMPL(same_but_seq) {
  vh_manifest_t m;
  sample(&m);
  void *a, *b;
  size_t an, bn;
  ASSERT_EQ(vh_manifest_encode(&m, &a, &an), 0);
  m.seq = 43;
  ASSERT_EQ(vh_manifest_encode(&m, &b, &bn), 0);
  ASSERT_EQ(an, bn);
  ASSERT(memcmp(a, b, an) != 0);
  ASSERT_EQ(vh_manifest_same_but_seq(a, an, b, bn), 1);
  ASSERT_EQ(vh_manifest_same_but_seq(a, an, a, an), 1);
  ASSERT_EQ(vh_manifest_same_but_seq(a, an, NULL, 0), 0);
  ASSERT_EQ(vh_manifest_same_but_seq(NULL, 0, b, bn), 0);
  ASSERT_EQ(vh_manifest_same_but_seq(a, an, b, bn - 1), 0);
  ASSERT_EQ(vh_manifest_same_but_seq(a, 15, b, 15), 0);
  ASSERT_EQ(vh_manifest_same_but_seq(a, 16, b, 16), 1);
  /* Every byte outside 8..16 counts. */
  unsigned char *c = malloc(bn);
  ASSERT(c != NULL);
  for (size_t i = 0; i < bn; i++) {
    memcpy(c, b, bn);
    c[i] ^= 0x01;
    ASSERT_EQ(vh_manifest_same_but_seq(a, an, c, bn), i >= 8 && i < 16);
  }
  free(c);
  /* Another next id (bytes 16..24) is a different manifest. */
  m.next_id++;
  void *d;
  size_t dn;
  ASSERT_EQ(vh_manifest_encode(&m, &d, &dn), 0);
  ASSERT_EQ(vh_manifest_same_but_seq(a, an, d, dn), 0);
  free(d);
  free(a);
  free(b);
  vh_manifest_free(&m);
}

VH_TEST_MAIN(TEST_ENTRY(round_trip), TEST_ENTRY(every_truncation_refused),
             TEST_ENTRY(newer_and_foreign_refused),
             TEST_ENTRY(bad_names_not_encoded), TEST_ENTRY(same_but_seq))
