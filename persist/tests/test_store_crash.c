/*
 * test_store_crash.c - kill -9 a writer at random moments; nothing acked is
 * lost and no batch is torn. (ctest label "slow".)
 *
 * HOW IT WORKS. A child process opens the store and submits batches in a
 * loop, as fast as it can. Batch k:
 *   - puts nodes k*8 .. k*8+7, each payload naming (k, i) plus filler of a
 *     length that varies with k (so groups and flushes fall at odd places),
 *   - deletes the 8 nodes of batch k-W (so the database stays small and
 *     every batch mixes puts and deletes, like a real slice),
 *   - sets the manifest to k.
 * The store's notify callback writes durable_seq down a pipe each time it
 * moves: that is the child's "acknowledged" promise. The parent sleeps a
 * random time, kills the child with SIGKILL, reads every acknowledged seq,
 * reopens the store and checks:
 *   1. manifest m >= the highest seq acknowledged (nothing acked was lost);
 *   2. the nodes present are exactly those of batches max(1, m-W+1) .. m,
 *      all 8 of each, each with the payload batch k wrote (no torn batch,
 *      no batch beyond the manifest, no delete lost or applied early);
 *   3. every value reads back with a valid checksum.
 * The next child continues from m + 1. Rounds alternate sync with nosync
 * (one in three): both promise survival of kill -9. One round in four
 * has a 32 KB flush bound, so most of its groups are BIG GROUPS
 * (store_writer.c), killed at any phase of their write; the check's open
 * drops what such a group left above its manifest, as the host does.
 *
 * The parent bounds the run (ROUNDS rounds or ~45 s). Kill delays are
 * random, from the child's open to well into steady writing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vh_store.h"
#include "vh_test.h"

#define ROUNDS 40
#define MAX_SECONDS 45
#define W 32 /* batches kept live */
#define PER_BATCH 8

static char base_dir[64], data_dir[128];
static int ack_fd = -1; /* child: write end of the pipe */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* Payload of node i of batch k: "k:i:" then filler of 20..275 bytes. */
static size_t make_payload(char *buf, uint64_t k, int i) {
  int n = sprintf(buf, "%llu:%d:", (unsigned long long)k, i);
  size_t fill = 20 + (size_t)((k * 7 + (uint64_t)i * 13) % 256);
  for (size_t j = 0; j < fill; j++) buf[n + j] = (char)('a' + (k + j) % 26);
  return (size_t)n + fill;
}

static void notify_ack(void *ud) {
  uint64_t d = vh_store_durable_seq(ud);
  ssize_t w = write(ack_fd, &d, sizeof d);
  (void)w;
}

static uint64_t manifest_seq(vh_store_t *s) {
  void *p = NULL;
  size_t n = 0;
  uint64_t m = 0;
  int rc = vh_store_get_manifest(s, &p, &n, NULL);
  if (rc == 0 && n == sizeof m) memcpy(&m, p, sizeof m);
  free(p);
  if (rc != 0 && rc != VH_ENOENT) return UINT64_MAX;
  return m;
}

/* The child: never returns. small_flush: a 32 KB flush bound, so that
 * most groups are BIG GROUPS (store_writer.c: node puts without the WAL,
 * their flush, then the rest with the WAL). */
static void child_main(int sync, int small_flush) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.sync = sync;
  if (small_flush) o.flush_bytes = 32 * 1024;
  o.queue_bytes = 256 * 1024; /* backpressure is part of the exercise */
  vh_store_t *s;
  char *m = NULL;
  if (vh_store_open(data_dir, &o, &s, &m) != 0) {
    fprintf(stderr, "child open: %s\n", m);
    _exit(2);
  }
  vh_store_set_notify(s, notify_ack, s);
  uint64_t k = manifest_seq(s);
  if (k == UINT64_MAX) _exit(3);
  char buf[512];
  for (;;) {
    k++;
    vh_batch_t *b;
    if (vh_batch_new(&b) != 0) _exit(4);
    for (int i = 0; i < PER_BATCH; i++) {
      size_t n = make_payload(buf, k, i);
      if (vh_batch_put_node(b, k * PER_BATCH + (uint64_t)i, buf, n) != 0)
        _exit(4);
      if (k > W && vh_batch_del_node(b, (k - W) * PER_BATCH + (uint64_t)i) != 0)
        _exit(4);
    }
    if (vh_batch_set_manifest(b, &k, sizeof k) != 0) _exit(4);
    if (vh_store_submit(s, b, k) != 0) _exit(5);
  }
}

/* Reopens the store and checks 1-3 of the top comment; sets *out = m.
 * First the open drops the nodes of a big group whose manifest a kill
 * beat, as the host does (vh_store_drop_from: ids from the manifest's
 * batch + 1 up). */
static void check_store(uint64_t acked, uint64_t *out) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  vh_store_t *s;
  char *msg = NULL;
  int rc = vh_store_open(data_dir, &o, &s, &msg);
  if (rc != 0) fprintf(stderr, "reopen: %s\n", msg);
  ASSERT_EQ(rc, 0);
  uint64_t m = manifest_seq(s);
  ASSERT(m != UINT64_MAX);
  ASSERT_EQ(vh_store_drop_from(s, (m + 1) * PER_BATCH), 0);
  ASSERT_EQ(vh_store_close(s, NULL), 0); /* the writer drops first */
  ASSERT_EQ(vh_store_open(data_dir, &o, &s, NULL), 0);
  if (m < acked)
    fprintf(stderr, "manifest %llu < acknowledged %llu\n",
            (unsigned long long)m, (unsigned long long)acked);
  ASSERT_GE(m, acked);
  uint64_t lo = m >= W ? m - W + 1 : 1;
  uint64_t want_nodes = m >= lo && m > 0 ? (m - lo + 1) * PER_BATCH : 0;

  vh_store_iter_t *it;
  ASSERT_EQ(vh_store_iter_new(s, &it, NULL), 0);
  uint64_t id, count = 0, expect_id = lo * PER_BATCH;
  size_t size;
  char buf[512];
  while ((rc = vh_store_iter_next(it, &id, &size, NULL)) == 1) {
    if (id != expect_id)
      fprintf(stderr,
              "manifest %llu: found node %llu (batch %llu), "
              "expected node %llu\n",
              (unsigned long long)m, (unsigned long long)id,
              (unsigned long long)(id / PER_BATCH),
              (unsigned long long)expect_id);
    ASSERT_EQ(id, expect_id);
    uint64_t k = id / PER_BATCH;
    int i = (int)(id % PER_BATCH);
    ASSERT(k >= lo && k <= m);
    void *p;
    size_t n;
    ASSERT_EQ(vh_store_get_node(s, id, &p, &n, NULL), 0); /* checksum */
    size_t want = make_payload(buf, k, i);
    ASSERT_EQ(n, want);
    ASSERT_EQ(size, want);
    ASSERT(memcmp(p, buf, n) == 0);
    free(p);
    count++;
    expect_id++;
  }
  ASSERT_EQ(rc, 0);
  vh_store_iter_free(it);
  ASSERT_EQ(count, want_nodes);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  *out = m;
}

/* RocksDB's background threads (flushes, compactions) do not survive a
 * fork: a writer child forked after the parent opened the store would
 * wait forever for its first flush. So the parent never opens it: the
 * creation and every check run in a child of their own. */
static uint64_t check_acked, check_m;
static int check_create;

static void check_fn(void) {
  if (check_create) {
    vh_store_opts_t o;
    vh_store_opts_init(&o);
    o.create = 1;
    vh_store_t *s;
    ASSERT_EQ(vh_store_open(data_dir, &o, &s, NULL), 0);
    ASSERT_EQ(vh_store_close(s, NULL), 0);
    return;
  }
  check_store(check_acked, &check_m);
}

/* Runs check_fn in a child; 0 and *m, or -1 if it failed. */
static int check_in_child(uint64_t *m) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(fds[0]);
    int failed = vh_test__call(check_fn);
    ssize_t w = write(fds[1], &check_m, sizeof check_m);
    (void)w;
    fflush(NULL);
    _exit(failed ? 1 : 0);
  }
  close(fds[1]);
  ssize_t r = read(fds[0], m, sizeof *m);
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return r == (ssize_t)sizeof *m ? 0 : -1;
}

TEST_IMPL(kill9_loop) {
  snprintf(base_dir, sizeof base_dir, "/tmp/vh_test_crash.XXXXXX");
  ASSERT(mkdtemp(base_dir) != NULL);
  snprintf(data_dir, sizeof data_dir, "%s/data", base_dir);
  { /* create the store once, so every child opens an existing one */
    uint64_t unused;
    check_create = 1;
    ASSERT_EQ(check_in_child(&unused), 0);
    check_create = 0;
  }
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  if (getenv("VH_CRASH_SEED")) seed = (unsigned)atoi(getenv("VH_CRASH_SEED"));
  printf("# seed %u (set VH_CRASH_SEED to replay)\n", seed);
  srand(seed);
  double t0 = now_s();
  uint64_t m = 0, acked_total = 0;
  int rounds = 0;
  while (rounds < ROUNDS && now_s() - t0 < MAX_SECONDS) {
    int sync = rounds % 3 != 2;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      ack_fd = fds[1];
      child_main(sync, rounds % 4 == 3);
    }
    close(fds[1]);
    /* 5 ms .. 400 ms: from inside open to steady writing. */
    usleep(5000 + (useconds_t)(rand() % 395) * 1000);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
      fprintf(stderr, "child exited with %d\n", WEXITSTATUS(status));
    ASSERT(WIFSIGNALED(status)); /* it was still writing */
    uint64_t acked = 0, d;
    ssize_t r;
    while ((r = read(fds[0], &d, sizeof d)) == (ssize_t)sizeof d)
      if (d > acked) acked = d;
    close(fds[0]);
    uint64_t prev = m;
    check_acked = acked;
    ASSERT_EQ(check_in_child(&m), 0);
    ASSERT_GE(m, prev); /* a reopen never loses what an earlier one saw */
    if (acked > prev) acked_total += acked - prev;
    rounds++;
  }
  printf(
      "# %d rounds in %.1f s, manifest reached %llu, %llu batches "
      "acknowledged\n",
      rounds, now_s() - t0, (unsigned long long)m,
      (unsigned long long)acked_total);
  ASSERT_GE(rounds, 20);
  ASSERT(m > 0); /* the children made progress */
  nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- a big group killed at each phase of its write ----
 *
 * BIG GROUPS (store_writer.c): a group whose node puts pass the flush
 * bound writes them without the WAL, waits for their flush, then writes
 * the rest (deletes, other keys, the manifest) with the WAL. The child
 * writes batch 1 (PH_SMALL nodes, manifest 1) and waits for it, then a
 * big batch 2 (PH_BIG new nodes after them, deletes half of batch 1's,
 * manifest 2) with the writer set to SIGKILL itself at one phase. The
 * parent checks the restart: the manifest is 1 (killed before the WAL
 * write) or 2 (after it: written, though not acknowledged); the nodes
 * are exactly that manifest's (none of batch 2 left once the open's
 * vh_store_drop_from ran: the host calls it with the manifest's next
 * id), every payload whole; and the WAL the restart replays holds none
 * of batch 2's node puts (well under their bytes). */
#define PH_SMALL 64
#define PH_BIG 4000 /* ~0.9 MB of nodes: past the 512 KB flush bound */

static size_t ph_payload(char *buf, uint64_t id) {
  int n = sprintf(buf, "node %llu:", (unsigned long long)id);
  size_t fill = 150 + (size_t)(id * 37 % 100);
  for (size_t j = 0; j < fill; j++) buf[n + j] = (char)('a' + (id + j) % 26);
  return (size_t)n + fill;
}

/* Bytes of the write-ahead logs (db/ *.log). */
static long wal_bytes(void) {
  char path[256];
  snprintf(path, sizeof path, "%s/db", data_dir);
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  long total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 4, ".log") != 0) continue;
    char f[512];
    struct stat st;
    snprintf(f, sizeof f, "%s/%s", path, e->d_name);
    if (stat(f, &st) == 0) total += (long)st.st_size;
  }
  closedir(d);
  return total;
}

static void phase_child(int phase) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = 1;
  o.idle_flush_ms = -1; /* only the writes' own flushes */
  vh_store_t *s;
  if (vh_store_open(data_dir, &o, &s, NULL) != 0) _exit(2);
  char buf[512];
  vh_batch_t *b;
  if (vh_batch_new(&b) != 0) _exit(4);
  for (uint64_t id = 1; id <= PH_SMALL; id++)
    if (vh_batch_put_node(b, id, buf, ph_payload(buf, id)) != 0) _exit(4);
  uint64_t k = 1;
  if (vh_batch_set_manifest(b, &k, sizeof k) != 0) _exit(4);
  if (vh_store_submit(s, b, 1) != 0 || vh_store_wait_durable(s, 1) != 0)
    _exit(5);
  vh_store__kill_at(s, phase);
  if (vh_batch_new(&b) != 0) _exit(4);
  for (uint64_t id = PH_SMALL + 1; id <= PH_SMALL + PH_BIG; id++)
    if (vh_batch_put_node(b, id, buf, ph_payload(buf, id)) != 0) _exit(4);
  for (uint64_t id = 1; id <= PH_SMALL / 2; id++)
    if (vh_batch_del_node(b, id) != 0) _exit(4);
  k = 2;
  if (vh_batch_set_manifest(b, &k, sizeof k) != 0) _exit(4);
  if (vh_store_submit(s, b, 2) != 0) _exit(5);
  vh_store_wait_durable(s, 2);
  _exit(6); /* not killed */
}

/* The restart's checks, in a child of its own: RocksDB's background
 * threads do not survive a fork, so the parent never opens the store (a
 * writer child forked after an open in the parent waits forever for its
 * first flush). */
static int ph_phase;
static uint64_t ph_manifest;

static void phase_verify(void) {
  int phase = ph_phase, rc;
  long wal = wal_bytes();
  printf("# phase %d: %ld bytes of WAL to replay\n", phase, wal);
  /* batch 2's nodes are ~0.9 MB; its other ops a few hundred bytes */
  ASSERT(wal >= 0 && wal < 64 * 1024);

  vh_store_opts_t o;
  vh_store_opts_init(&o);
  vh_store_t *s;
  char *msg = NULL;
  rc = vh_store_open(data_dir, &o, &s, &msg);
  if (rc != 0) fprintf(stderr, "reopen: %s\n", msg);
  ASSERT_EQ(rc, 0);
  uint64_t m = manifest_seq(s);
  if (m != ph_manifest)
    fprintf(stderr, "phase %d: manifest %llu\n", phase, (unsigned long long)m);
  ASSERT(m == ph_manifest);
  uint64_t next_id = m == 1 ? PH_SMALL + 1 : PH_SMALL + PH_BIG + 1;
  ASSERT_EQ(vh_store_drop_from(s, next_id), 0);
  ASSERT_EQ(vh_store_close(s, NULL), 0); /* the writer drops first */
  ASSERT_EQ(vh_store_open(data_dir, &o, &s, NULL), 0);
  vh_store_iter_t *it;
  ASSERT_EQ(vh_store_iter_new(s, &it, NULL), 0);
  uint64_t id, expect = m == 1 ? 1 : PH_SMALL / 2 + 1, count = 0;
  size_t size;
  char buf[512];
  while ((rc = vh_store_iter_next(it, &id, &size, NULL)) == 1) {
    if (id != expect)
      fprintf(stderr, "phase %d, manifest %llu: node %llu, expected %llu\n",
              phase, (unsigned long long)m, (unsigned long long)id,
              (unsigned long long)expect);
    ASSERT_EQ(id, expect);
    void *p;
    size_t n;
    ASSERT_EQ(vh_store_get_node(s, id, &p, &n, NULL), 0);
    ASSERT_EQ(n, ph_payload(buf, id));
    ASSERT(memcmp(p, buf, n) == 0);
    free(p);
    expect++;
    count++;
  }
  ASSERT_EQ(rc, 0);
  vh_store_iter_free(it);
  ASSERT_EQ(count, m == 1 ? PH_SMALL : PH_SMALL / 2 + PH_BIG);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
}

/* Kills the writer child at phase, then checks the restart, which must
 * find manifest m. */
static void phase_round(int phase, uint64_t m) {
  nftw(data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  fflush(NULL);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) phase_child(phase);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  if (!WIFSIGNALED(status))
    fprintf(stderr, "phase %d: child exited with %d\n", phase,
            WEXITSTATUS(status));
  ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  ph_phase = phase;
  ph_manifest = m;
  fflush(NULL);
  pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int failed = vh_test__call(phase_verify);
    fflush(NULL);
    _exit(failed ? 1 : 0);
  }
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_IMPL(big_group_killed_at_each_phase) {
  snprintf(base_dir, sizeof base_dir, "/tmp/vh_test_crash.XXXXXX");
  ASSERT(mkdtemp(base_dir) != NULL);
  snprintf(data_dir, sizeof data_dir, "%s/data", base_dir);
  /* before the WAL write the group is not there; after it, it is */
  phase_round(VH_STORE_KILL_NODES_PUT, 1);
  phase_round(VH_STORE_KILL_NODES_FLUSHED, 1);
  phase_round(VH_STORE_KILL_WRITTEN, 2);
  nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

VH_TEST_MAIN(TEST_ENTRY(kill9_loop), TEST_ENTRY(big_group_killed_at_each_phase))
