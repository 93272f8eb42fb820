/*
 * test_version_spec.c - vh_version_resolve_src over a fake list of
 * versions: every spec form, the window/mark rules and the error lines.
 */
#include <stdlib.h>
#include <string.h>

#include "vh_test.h"
#include "vh_version_spec.h"

/* 2026-12-06T00:00:00Z in unix ms. */
#define DAY0 1796515200000LL
#define H(h, m, s) (DAY0 + ((int64_t)(h)*3600 + (m)*60 + (s)) * 1000)

typedef struct fake_ver {
  uint64_t seq;
  int64_t t;
} fake_ver_t;

typedef struct fake {
  const fake_ver_t *v; /* ascending seq */
  size_t n;
  const char *const *mark_names;
  const uint64_t *mark_seqs;
  size_t nmarks;
  int walked; /* versions handed to fn by the last each */
} fake_t;

static int fake_each(void *arg, int (*fn)(void *, uint64_t, int64_t),
                     void *fnarg, char **errmsg) {
  fake_t *f = arg;
  (void)errmsg;
  f->walked = 0;
  for (size_t i = f->n; i-- > 0;) {
    int r;
    f->walked++;
    if ((r = fn(fnarg, f->v[i].seq, f->v[i].t)) != 0) return r;
  }
  return 0;
}

static int fake_mark(void *arg, const char *name, uint64_t *seq,
                     char **errmsg) {
  fake_t *f = arg;
  (void)errmsg;
  for (size_t i = 0; i < f->nmarks; i++)
    if (strcmp(f->mark_names[i], name) == 0) {
      *seq = f->mark_seqs[i];
      return 0;
    }
  return VH_ENOENT;
}

/* Marked 50 (below the window), window 100..105 (103 missing: a gap). */
static const fake_ver_t vers[] = {
    {50, H(9, 0, 0)},   {100, H(14, 0, 0)},  {101, H(14, 1, 0)},
    {102, H(14, 2, 0)}, {104, H(14, 2, 30)}, {105, H(14, 10, 0)},
};
static const char *const mnames[] = {"predeploy", "old"};
static const uint64_t mseqs[] = {104, 50};

static fake_t fk;
static vh_vspec_src_t src;

static void setup(void) {
  fk.v = vers;
  fk.n = sizeof vers / sizeof vers[0];
  fk.mark_names = mnames;
  fk.mark_seqs = mseqs;
  fk.nmarks = 2;
  src.arg = &fk;
  src.each = fake_each;
  src.mark = fake_mark;
  src.oldest = 100;
}

static const int64_t NOW = H(14, 12, 0);

/* Resolve spec; on success the seq, else -1 with *msg [new]. */
static int64_t res(const char *spec, char **msg) {
  uint64_t seq = 0;
  char *m = NULL;
  int rc = vh_version_resolve_src(&src, spec, NOW, &seq, &m);
  if (msg != NULL)
    *msg = m;
  else
    free(m);
  if (rc != 0) {
    ASSERT(m != NULL || msg == NULL);
    return -1;
  }
  ASSERT(m == NULL);
  return (int64_t)seq;
}

/* spec fails, with a message containing want. */
static void fails(const char *spec, const char *want, int code) {
  uint64_t seq = 0;
  char *m = NULL;
  int rc = vh_version_resolve_src(&src, spec, NOW, &seq, &m);
  if (rc != code || m == NULL || strstr(m, want) == NULL || strchr(m, '\n')) {
    fprintf(stderr, "spec %s: rc %d, message \"%s\", wanted \"%s\"\n", spec, rc,
            m ? m : "(null)", want);
  }
  ASSERT_EQ(rc, code);
  ASSERT(m != NULL);
  ASSERT(strstr(m, want) != NULL);
  ASSERT(strchr(m, '\n') == NULL);
  free(m);
}

TEST_IMPL(seqs) {
  setup();
  ASSERT_EQ(res("105", NULL), 105);
  ASSERT_EQ(res("100", NULL), 100);
  ASSERT_EQ(res("50", NULL), 50); /* marked, below the window */
  fails("103", "unknown version 103: oldest retained is 50, newest 105",
        VH_ENOENT);
  fails("99", "unknown version 99", VH_ENOENT);
  fails("106", "unknown version 106: newest is 105", VH_ENOENT);
  fails("18446744073709551616", "no mark named", VH_ENOENT); /* overflow */
}

TEST_IMPL(seq_walk_stops_early) {
  setup();
  ASSERT_EQ(res("104", NULL), 104);
  ASSERT_EQ(fk.walked, 2);
  ASSERT_EQ(res("-1", NULL), 104);
  ASSERT_EQ(fk.walked, 2);
}

TEST_IMPL(back) {
  setup();
  ASSERT_EQ(res("-0", NULL), 105);
  ASSERT_EQ(res("-1", NULL), 104);
  ASSERT_EQ(res("-2", NULL), 102);
  ASSERT_EQ(res("-4", NULL), 100);
  /* the marked 50 is below the window: not counted */
  fails("-5", "no version -5: only 5 retained (oldest is 100)", VH_ENOENT);
}

TEST_IMPL(times) {
  setup();
  ASSERT_EQ(res("14:02", NULL), 102);
  ASSERT_EQ(res("14:02:29", NULL), 102);
  ASSERT_EQ(res("14:02:30", NULL), 104);
  ASSERT_EQ(res("14:09:59", NULL), 104);
  ASSERT_EQ(res("23:00", NULL), 105);
  ASSERT_EQ(res("2026-12-06T14:01:00Z", NULL), 101);
  ASSERT_EQ(res("2026-12-06T14:01:00.000Z", NULL), 101);
  ASSERT_EQ(res("2026-12-06 14:00:59.999", NULL), 100);
  ASSERT_EQ(res("2026-12-06T14:00", NULL), 100);
  ASSERT_EQ(res("2026-12-07T00:00:00Z", NULL), 105);
  /* before the window: the marked 50 (09:00) is not used for times */
  fails("13:59",
        "no version at or before 2026-12-06T13:59:00.000Z: oldest "
        "retained is 100 (2026-12-06T14:00:00.000Z)",
        VH_ENOENT);
  fails("2026-12-05T23:00:00Z", "oldest retained is 100", VH_ENOENT);
}

TEST_IMPL(ages) {
  setup();
  ASSERT_EQ(res("-1m", NULL), 105);   /* 14:11 */
  ASSERT_EQ(res("-2m", NULL), 105);   /* 14:10 exactly */
  ASSERT_EQ(res("-3m", NULL), 104);   /* 14:09 */
  ASSERT_EQ(res("-570s", NULL), 104); /* 14:02:30 exactly */
  ASSERT_EQ(res("-571s", NULL), 102); /* 14:02:29 */
  ASSERT_EQ(res("-10m", NULL), 102);  /* 14:02 */
  fails("-1h", "no version at or before 2026-12-06T13:12:00.000Z", VH_ENOENT);
  fails("-1d", "oldest retained is 100", VH_ENOENT);
}

TEST_IMPL(marks) {
  setup();
  ASSERT_EQ(res("predeploy", NULL), 104);
  ASSERT_EQ(res("old", NULL), 50);
  fails("nosuch", "no mark named nosuch", VH_ENOENT);
}

TEST_IMPL(malformed) {
  setup();
  fails("", "empty version", VH_EINVAL);
  fails("25:00", "bad version \"25:00\": no such time of day", VH_EINVAL);
  fails("14:2", "a time of day is written 14:02", VH_EINVAL);
  fails("14:02:61", "no such time", VH_EINVAL);
  fails("2026-02-30T00:00:00Z", "no such date", VH_EINVAL);
  fails("2026-12-06X14:00:00Z", "a time is written", VH_EINVAL);
  fails("2026-12-06T14:00:00Zjunk", "a time is written", VH_EINVAL);
  fails("-99999999999999999d", "age too large", VH_EINVAL);
  /* "-" alone, "-x": names, so unknown marks */
  fails("-", "no mark named -", VH_ENOENT);
  fails("-5x", "no mark named -5x", VH_ENOENT);
}

TEST_IMPL(empty_store) {
  setup();
  fk.n = 0;
  fk.nmarks = 0;
  src.oldest = 0;
  fails("1", "no version is retained yet", VH_ENOENT);
  fails("-0", "no version is retained yet", VH_ENOENT);
  fails("14:00", "no version is retained yet", VH_ENOENT);
}

TEST_IMPL(parse_time_and_fmt) {
  int64_t t = 0;
  char *m = NULL;
  char b[VH_VERSION_TIME_LEN];
  ASSERT_EQ(vh_version_parse_time("2026-12-06T14:02:00Z", 0, &t, &m), 1);
  ASSERT_EQ(t, H(14, 2, 0));
  ASSERT_EQ(strcmp(vh_version_time_fmt(t, b), "2026-12-06T14:02:00.000Z"), 0);
  ASSERT_EQ(strcmp(vh_version_time_fmt(0, b), "1970-01-01T00:00:00.000Z"), 0);
  ASSERT_EQ(vh_version_time_fmt(951782400123LL, b), b);
  ASSERT_EQ(strcmp(b, "2000-02-29T00:00:00.123Z"), 0);
  ASSERT_EQ(vh_version_parse_time("2000-02-29T00:00:00.123", 0, &t, &m), 1);
  ASSERT_EQ(t, 951782400123LL);
  ASSERT_EQ(vh_version_parse_time("-2h", NOW, &t, &m), 1);
  ASSERT_EQ(t, NOW - 7200000);
  ASSERT_EQ(vh_version_parse_time("1234", NOW, &t, &m), 0);
  ASSERT_EQ(vh_version_parse_time("-3", NOW, &t, &m), 0);
  ASSERT_EQ(vh_version_parse_time("predeploy", NOW, &t, &m), 0);
  ASSERT(m == NULL);
}

VH_TEST_MAIN(TEST_ENTRY(seqs), TEST_ENTRY(seq_walk_stops_early),
             TEST_ENTRY(back), TEST_ENTRY(times), TEST_ENTRY(ages),
             TEST_ENTRY(marks), TEST_ENTRY(malformed), TEST_ENTRY(empty_store),
             TEST_ENTRY(parse_time_and_fmt))
