/*
 * test_store.c - unit tests of the snapshot store (persist/store*.c).
 *
 * Each test works in a fresh directory under /tmp and removes it. The raw
 * RocksDB C API is used to plant what the store must refuse (a foreign
 * database, a bad format record, a damaged value). Nothing here depends on
 * timing: where a test must let another thread run (backpressure), it only
 * checks something that holds however long it waits. The WAL tests run
 * their store in a child process (this binary with --child) and kill it
 * with SIGKILL, to open what a crash leaves.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallinfo2 */
#endif

#include <rocksdb/c.h>

#include "vh_bytes.h"
#include "vh_crc32c.h"
#include "vh_rewind.h"
#include "vh_store.h"
#include "vh_store_raw.h"
#include "vh_versions.h"
/* --child: this binary runs a store for a test to kill (child_main). */
static int child_main(int argc, char **argv);
#define VH_TEST_PRE_MAIN child_main
#include "vh_test.h"

/* ---- helpers ---- */

static char test_dir[256];

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void dir_remove(const char *d) {
  nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh, empty data dir path (not created: the store creates it). */
static void dir_cleanup(void);
static const char *fresh_dir(void) {
  dir_cleanup(); /* what a failed test left behind */
  char tmpl[] = "/tmp/vh_test_store.XXXXXX";
  char *d = mkdtemp(tmpl);
  if (d == NULL) abort();
  snprintf(test_dir, sizeof test_dir, "%s/data", d);
  return test_dir;
}

static void child_reap(void);
static void dir_cleanup(void) {
  child_reap(); /* a store child a failed test left running */
  if (!test_dir[0]) return;
  char parent[256];
  snprintf(parent, sizeof parent, "%s", test_dir);
  char *slash = strrchr(parent, '/');
  if (slash) *slash = '\0';
  dir_remove(parent);
  test_dir[0] = '\0';
}

#define ASSERT_MSG_HAS(msg, needle)                             \
  do {                                                          \
    const char *m_ = (msg);                                     \
    if (m_ == NULL || strstr(m_, (needle)) == NULL)             \
      fprintf(stderr, "message: %s\nexpected to contain: %s\n", \
              m_ ? m_ : "(null)", (needle));                    \
    ASSERT(m_ != NULL && strstr(m_, (needle)) != NULL);         \
  } while (0)

/* Opens dir with o; the open must succeed (its message, if any, in *m). */
static vh_store_t *open_opts(const char *dir, const vh_store_opts_t *o,
                             char **m) {
  vh_store_t *s = NULL;
  int rc = vh_store_open(dir, o, &s, m);
  if (rc != 0) fprintf(stderr, "open: %s\n", *m ? *m : "?");
  ASSERT_EQ(rc, 0);
  return s;
}

static vh_store_t *open_ok(const char *dir, int create, int sync) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = create;
  o.sync = sync;
  char *m = NULL;
  vh_store_t *s = open_opts(dir, &o, &m);
  ASSERT(m == NULL);
  ASSERT(s != NULL);
  return s;
}

static void close_ok(vh_store_t *s) {
  char *m = NULL;
  int rc = vh_store_close(s, &m);
  if (rc != 0) fprintf(stderr, "close: %s\n", m ? m : "?");
  ASSERT_EQ(rc, 0);
  free(m);
}

/* Submits a batch with one put per (id, text) and the manifest text. */
static void submit_put(vh_store_t *s, uint64_t seq, uint64_t id,
                       const char *text, const char *manifest) {
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_put_node(b, id, text, strlen(text)), 0);
  if (manifest)
    ASSERT_EQ(vh_batch_set_manifest(b, manifest, strlen(manifest)), 0);
  ASSERT_EQ(vh_store_submit(s, b, seq), 0);
}

/* submit_put, then waits until seq is durable. */
static void put_durable(vh_store_t *s, uint64_t seq, uint64_t id,
                        const char *text, const char *manifest) {
  submit_put(s, seq, id, text, manifest);
  ASSERT_EQ(vh_store_wait_durable(s, seq), 0);
}

static void submit_del(vh_store_t *s, uint64_t seq, uint64_t id) {
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_del_node(b, id), 0);
  ASSERT_EQ(vh_store_submit(s, b, seq), 0);
}

/* Asserts node id holds exactly text (NULL: absent). */
static void expect_node(vh_store_t *s, uint64_t id, const char *text) {
  void *p = NULL;
  size_t n = 0;
  char *m = NULL;
  int rc = vh_store_get_node(s, id, &p, &n, &m);
  if (text == NULL) {
    ASSERT_EQ(rc, VH_ENOENT);
    ASSERT(p == NULL);
  } else {
    if (rc != 0)
      fprintf(stderr, "get node %llu: %s\n", (unsigned long long)id,
              m ? m : "?");
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(n, strlen(text));
    ASSERT(memcmp(p, text, n) == 0);
  }
  free(p);
  free(m);
}

/* Opens the store in dir (no create), checks node id as expect_node does,
 * closes it. */
static void reopen_expect_node(const char *dir, uint64_t id, const char *text) {
  vh_store_t *s = open_ok(dir, 0, 1);
  expect_node(s, id, text);
  close_ok(s);
}

static void expect_manifest(vh_store_t *s, const char *text) {
  void *p = NULL;
  size_t n = 0;
  char *m = NULL;
  int rc = vh_store_get_manifest(s, &p, &n, &m);
  if (text == NULL) {
    ASSERT_EQ(rc, VH_ENOENT);
  } else {
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(n, strlen(text));
    ASSERT(memcmp(p, text, n) == 0);
  }
  free(p);
  free(m);
}

/* Raw RocksDB access to DIR/db, for planting bad data (each key in its
 * column family: vh_store_raw.h). */
static vh_store_raw_t *raw_open(const char *dir, int create) {
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  static vh_store_raw_t raws[4];
  static int next;
  vh_store_raw_t *r = &raws[next++ % 4];
  char *err = NULL;
  vh_store_raw_open(path, create ? VH_RAW_CREATE : VH_RAW_WRITE, r, &err);
  if (err) fprintf(stderr, "raw open: %s\n", err);
  ASSERT(err == NULL);
  return r;
}

static void raw_close(vh_store_raw_t *r) {
  vh_store_raw_close(r);
}

static void raw_put(vh_store_raw_t *db, const char *k, size_t kl, const void *v,
                    size_t vl) {
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  char *err = NULL;
  rocksdb_put_cf(db->db, wo, vh_store_raw_family(db, k, kl), k, kl, v, vl,
                 &err);
  rocksdb_writeoptions_destroy(wo);
  ASSERT(err == NULL);
}

static char *raw_get(vh_store_raw_t *db, const char *k, size_t kl, size_t *vl) {
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  char *err = NULL;
  char *v = rocksdb_get_cf(db->db, ro, vh_store_raw_family(db, k, kl), k, kl,
                           vl, &err);
  rocksdb_readoptions_destroy(ro);
  ASSERT(err == NULL);
  return v;
}

static void node_key(char k[9], uint64_t id) {
  k[0] = 'A'; /* store format 3 */
  for (int i = 0; i < 8; i++) k[1 + i] = (char)(id >> (56 - 8 * i));
}

static int open_expect_fail(const char *dir, int create, int want_rc,
                            const char *needle) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = create;
  vh_store_t *s = (vh_store_t *)1;
  char *m = NULL;
  int rc = vh_store_open(dir, &o, &s, &m);
  ASSERT_EQ(rc, want_rc);
  ASSERT(s == NULL);
  ASSERT_MSG_HAS(m, needle);
  ASSERT_MSG_HAS(m, dir); /* every open error names the dir */
  free(m);
  return rc;
}

/* ---- CRC-32C ---- */

TEST_IMPL(crc32c_vectors) {
  ASSERT_EQ(vh_crc32c(0, "123456789", 9), 0xE3069283u);
  unsigned char buf[32];
  /* RFC 3720 B.4 test vectors. */
  memset(buf, 0, sizeof buf);
  ASSERT_EQ(vh_crc32c(0, buf, 32), 0x8A9136AAu);
  memset(buf, 0xff, sizeof buf);
  ASSERT_EQ(vh_crc32c(0, buf, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
  ASSERT_EQ(vh_crc32c(0, buf, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
  ASSERT_EQ(vh_crc32c(0, buf, 32), 0x113FDB5Cu);
  /* Chaining at every split point, unaligned starts included. */
  uint32_t whole = vh_crc32c(0, buf, 32);
  for (size_t cut = 0; cut <= 32; cut++)
    ASSERT_EQ(vh_crc32c(vh_crc32c(0, buf, cut), buf + cut, 32 - cut), whole);
  ASSERT_EQ(vh_crc32c(0, "", 0), 0u);
}

/* The CRC32-instruction path and the table path against a bitwise
 * reference, at every length up to 300 and every start offset mod 8. */
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *p, size_t n) {
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return ~crc;
}

TEST_IMPL(crc32c_paths) {
  unsigned char buf[320];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof buf; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (unsigned char)(x >> 16);
  }
  for (size_t off = 0; off < 8; off++)
    for (size_t n = 0; n <= 300; n++) {
      uint32_t want = crc_bitwise(0x1234u, buf + off, n);
      vh_crc32c__no_hw = 0;
      ASSERT_EQ(vh_crc32c(0x1234u, buf + off, n), want);
      vh_crc32c__no_hw = 1;
      ASSERT_EQ(vh_crc32c(0x1234u, buf + off, n), want);
    }
  vh_crc32c__no_hw = 0;
}

/* ---- open, create, format record ---- */

TEST_IMPL(open_missing_without_create) {
  const char *dir = fresh_dir();
  open_expect_fail(dir, 0, VH_ENOENT, "no vedhost store");
  struct stat st;
  ASSERT(stat(dir, &st) != 0); /* nothing was created */
  dir_cleanup();
}

TEST_IMPL(create_reopen_format_record) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  expect_manifest(s, NULL); /* a new store has no manifest */
  close_ok(s);
  s = open_ok(dir, 0, 1); /* reopen without create */
  expect_manifest(s, NULL);
  close_ok(s);
  /* The format record: "VEDHOST\0" + u32 le 5. */
  vh_store_raw_t *db = raw_open(dir, 0);
  size_t vl = 0;
  char *v = raw_get(db, "F", 1, &vl);
  ASSERT(v != NULL);
  ASSERT_EQ(vl, 12);
  ASSERT(memcmp(v, "VEDHOST\0\5\0\0\0", 12) == 0);
  rocksdb_free(v);
  raw_close(db);
  dir_cleanup();
}

/* Format 1 (before blobs, every string inline) is a subset of 2: it is
 * read and written as it is, by a primary and a secondary open (its nodes
 * that refer to blobs carry node format 2, which a version-1 vedhost
 * refuses as newer: persist/trie/codec.c, BLOBS). */
TEST_IMPL(older_format_kept) {
  const char *dir = fresh_dir();
  /* as a format 1 vedhost wrote it: one family, 'N' node keys (format 3:
   * 'A'; format 4: 'A' in a family of their own) */
  ASSERT_EQ(mkdir(dir, 0700), 0);
  vh_store_raw_t *db = raw_open(dir, 1);
  raw_put(db, "F", 1, "VEDHOST\0\1\0\0\0", 12);
  {
    unsigned char v[5 + 5];
    v[4] = 0x11; /* kind node, value version 1 */
    memcpy(v + 5, "first", 5);
    vh_le32_store(v, vh_crc32c(0, v + 4, sizeof v - 4));
    char k[9];
    node_key(k, 1);
    k[0] = 'N';
    raw_put(db, k, 9, v, sizeof v);
    v[4] = 0x21; /* kind manifest */
    memcpy(v + 5, "m1", 2);
    vh_le32_store(v, vh_crc32c(0, v + 4, 3));
    raw_put(db, "M", 1, v, 7);
  }
  raw_close(db);

  char sec[300];
  snprintf(sec, sizeof sec, "%s.secondary", dir);
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.read_only_secondary = 1;
  o.secondary_path = sec;
  vh_store_t *r;
  char *m = NULL;
  ASSERT_EQ(vh_store_open(dir, &o, &r, &m), 0);
  expect_node(r, 1, "first");
  close_ok(r);
  vh_store_t *s = open_ok(dir, 0, 1);
  ASSERT(vh_store_open_note(s) == NULL);
  expect_manifest(s, "m1");
  expect_node(s, 1, "first");
  put_durable(s, 2, 2, "second", "m2");
  close_ok(s);
  db = raw_open(dir, 0);
  size_t vl = 0;
  char *v = raw_get(db, "F", 1, &vl);
  ASSERT(v != NULL && vl == 12 && memcmp(v, "VEDHOST\0\1\0\0\0", 12) == 0);
  rocksdb_free(v);
  raw_close(db);
  reopen_expect_node(dir, 2, "second");
  dir_cleanup();
}

TEST_IMPL(locked_by_another_open) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  open_expect_fail(dir, 1, VH_ELOCKED, "locked by another process");
  close_ok(s);
  dir_cleanup();
}

/* 1 if another process sees DIR/db/LOCK locked (RocksDB's fcntl lock):
 * a forked child asks F_GETLK (a process never conflicts with its own
 * locks) and exits with the answer. */
static int db_lock_seen_held(const char *dir) {
  char path[600];
  snprintf(path, sizeof path, "%s/db/LOCK", dir);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) { /* no RocksDB here: open, F_GETLK, _exit */
    int fd = open(path, O_RDONLY);
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0) _exit(2);
    _exit(fl.l_type != F_UNLCK ? 1 : 0);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) != 2);
  return WEXITSTATUS(st);
}

TEST_IMPL(new_store_keeps_its_rocksdb_lock) {
  /* A primary made on a fresh dir looks for damage before it writes the
   * format record (vh_store__damage), whose "is a host live" probe opened
   * and closed db/LOCK: closing any descriptor of a file drops every
   * fcntl lock the process holds on it, so the host lost RocksDB's lock
   * and readers took it for a stopped store (fsck then counted a table
   * file being flushed as lost). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  ASSERT_EQ(db_lock_seen_held(dir), 1);
  close_ok(s);
  ASSERT_EQ(db_lock_seen_held(dir), 0);
  s = open_ok(dir, 0, 1);
  ASSERT_EQ(db_lock_seen_held(dir), 1);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(foreign_rocksdb_refused) {
  const char *dir = fresh_dir();
  mkdir(dir, 0700);
  vh_store_raw_t *db = raw_open(dir, 1);
  raw_put(db, "hello", 5, "world", 5);
  raw_close(db);
  open_expect_fail(dir, 0, VH_EFORMAT, "not a vedhost store");
  /* create does not make it ours either, and writes nothing into it. */
  open_expect_fail(dir, 1, VH_EFORMAT, "not a vedhost store");
  db = raw_open(dir, 0);
  size_t vl;
  char *v = raw_get(db, "F", 1, &vl);
  ASSERT(v == NULL);
  raw_close(db);
  dir_cleanup();
}

TEST_IMPL(bad_magic_refused) {
  const char *dir = fresh_dir();
  close_ok(open_ok(dir, 1, 1));
  vh_store_raw_t *db = raw_open(dir, 0);
  raw_put(db, "F", 1, "VEDHOSX\0\1\0\0\0", 12);
  raw_close(db);
  open_expect_fail(dir, 0, VH_EFORMAT, "bad format record");
  /* A truncated record is refused the same way. */
  db = raw_open(dir, 0);
  raw_put(db, "F", 1, "VEDHOST\0\1", 9);
  raw_close(db);
  open_expect_fail(dir, 1, VH_EFORMAT, "bad format record");
  dir_cleanup();
}

TEST_IMPL(newer_format_refused) {
  const char *dir = fresh_dir();
  close_ok(open_ok(dir, 1, 1));
  vh_store_raw_t *db = raw_open(dir, 0);
  raw_put(db, "F", 1, "VEDHOST\0\6\0\0\0", 12);
  raw_close(db);
  open_expect_fail(dir, 0, VH_EFORMAT, "format version 6 is newer");
  open_expect_fail(dir, 0, VH_EFORMAT, "run a newer vedhost");
  dir_cleanup();
}

/* ---- batches ---- */

TEST_IMPL(put_get_delete_iterate) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  char text[64];
  for (uint64_t id = 1; id <= 100; id++) {
    int n = snprintf(text, sizeof text, "node-%llu", (unsigned long long)id);
    ASSERT_EQ(vh_batch_put_node(b, id * 3, text, (size_t)n), 0);
  }
  ASSERT_EQ(vh_batch_put_node(b, UINT64_MAX, "", 0), 0); /* empty, max id */
  ASSERT_EQ(vh_batch_set_manifest(b, "m1", 2), 0);
  ASSERT(vh_batch_bytes(b) > 100 * 6);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  ASSERT_EQ(vh_store_wait_durable(s, 1), 0);
  ASSERT_EQ(vh_store_durable_seq(s), 1);
  expect_manifest(s, "m1");
  expect_node(s, 3, "node-1");
  expect_node(s, 300, "node-100");
  expect_node(s, UINT64_MAX, "");
  expect_node(s, 4, NULL);

  /* Delete every even multiple of 3. */
  ASSERT_EQ(vh_batch_new(&b), 0);
  for (uint64_t id = 2; id <= 100; id += 2)
    ASSERT_EQ(vh_batch_del_node(b, id * 3), 0);
  ASSERT_EQ(vh_batch_del_node(b, 999999), 0); /* absent: fine */
  ASSERT_EQ(vh_batch_set_manifest(b, "m2", 2), 0);
  ASSERT_EQ(vh_store_submit(s, b, 2), 0);
  ASSERT_EQ(vh_store_wait_durable(s, 2), 0);
  expect_node(s, 6, NULL);
  expect_node(s, 9, "node-3");
  expect_manifest(s, "m2");
  close_ok(s);

  /* After reopen: the iterator lists exactly the live ids, in order. */
  s = open_ok(dir, 0, 1);
  vh_store_iter_t *it;
  ASSERT_EQ(vh_store_iter_new(s, &it, NULL), 0);
  uint64_t id, expect_id = 3;
  size_t size;
  int count = 0;
  while (vh_store_iter_next(it, &id, &size, NULL) == 1) {
    if (count < 50) {
      ASSERT_EQ(id, expect_id);
      int n = snprintf(text, sizeof text, "node-%llu",
                       (unsigned long long)(expect_id / 3));
      ASSERT_EQ(size, (size_t)n);
      expect_id += 6;
    } else {
      ASSERT_EQ(id, UINT64_MAX);
      ASSERT_EQ(size, 0);
    }
    count++;
  }
  ASSERT_EQ(count, 51);
  vh_store_iter_free(it);
  close_ok(s);
  dir_cleanup();
}

static atomic_int notify_calls;
static atomic_ullong notify_last;
static void count_notify(void *ud) {
  atomic_fetch_add(&notify_calls, 1);
  atomic_store(&notify_last, vh_store_durable_seq(ud));
}

TEST_IMPL(group_commit_merges_batches) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  atomic_store(&notify_calls, 0);
  vh_store_set_notify(s, count_notify, s);
  vh_store__pause_writer(s, 1);
  uint64_t writes0 = vh_store__write_count(s);
  char text[32], man[32];
  for (uint64_t k = 1; k <= 200; k++) {
    snprintf(text, sizeof text, "v%llu", (unsigned long long)k);
    snprintf(man, sizeof man, "seq %llu", (unsigned long long)k);
    submit_put(s, k * 10, k, text, man); /* seqs need only increase */
  }
  ASSERT_EQ(vh_store_durable_seq(s), 0); /* nothing written while paused */
  ASSERT_EQ(vh_store__write_count(s), writes0);
  vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, 2000), 0);
  ASSERT_EQ(vh_store_durable_seq(s), 2000);
  /* 200 small batches fit in one group: one RocksDB write. */
  ASSERT_EQ(vh_store__write_count(s) - writes0, 1);
  expect_node(s, 1, "v1");
  expect_node(s, 200, "v200");
  expect_manifest(s, "seq 200");
  close_ok(s); /* joins the writer: notify has run */
  ASSERT_EQ(atomic_load(&notify_calls), 1);
  ASSERT_EQ(atomic_load(&notify_last), 2000);
  dir_cleanup();
}

/* The same sequence of batches, merged into one group or written one by
 * one, must leave the same state. */
static void order_sequence(int merged) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, merged);
  if (merged) vh_store__pause_writer(s, 1);
  uint64_t seq = 0;
  submit_put(s, ++seq, 5, "a", "m1"); /* 5: put, del, put -> "c" */
  submit_del(s, ++seq, 5);
  submit_put(s, ++seq, 5, "c", NULL);
  submit_put(s, ++seq, 6, "x", NULL); /* 6: put, put, del -> absent */
  submit_put(s, ++seq, 6, "y", NULL);
  submit_del(s, ++seq, 6);
  submit_del(s, ++seq, 7); /* 7: del, put -> "z" */
  submit_put(s, ++seq, 7, "z", "m8");
  vh_batch_t *b; /* 8: two puts in one batch -> the second */
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_put_node(b, 8, "first", 5), 0);
  ASSERT_EQ(vh_batch_put_node(b, 8, "second", 6), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, "m9a", 3), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, "m9", 2), 0);
  ASSERT_EQ(vh_store_submit(s, b, ++seq), 0);
  submit_del(s, ++seq, 9); /* 9: del, put in one later batch... */
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_put_node(b, 9, "nine", 4), 0);
  ASSERT_EQ(vh_batch_del_node(b, 10), 0); /* 10: put then del in a batch */
  ASSERT_EQ(vh_store_submit(s, b, ++seq), 0);
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_put_node(b, 10, "ten", 3), 0);
  ASSERT_EQ(vh_batch_del_node(b, 10), 0);
  ASSERT_EQ(vh_store_submit(s, b, ++seq), 0);
  if (merged) vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, seq), 0);
  if (merged) ASSERT_EQ(vh_store__write_count(s), 1);
  for (int pass = 0; pass < 2; pass++) { /* before and after reopen */
    expect_node(s, 5, "c");
    expect_node(s, 6, NULL);
    expect_node(s, 7, "z");
    expect_node(s, 8, "second");
    expect_node(s, 9, "nine");
    expect_node(s, 10, NULL);
    expect_manifest(s, "m9");
    close_ok(s);
    if (pass == 0) s = open_ok(dir, 0, 1);
  }
  dir_cleanup();
}

TEST_IMPL(order_preserved_merged) {
  order_sequence(1);
}
TEST_IMPL(order_preserved_one_by_one) {
  order_sequence(0);
}

/* The keys of the last record of the newest WAL file in DIR/db, in the
 * order the WriteBatch holds them (RocksDB's log format: 32 KB blocks of
 * records with a 7-byte header; a WriteBatch is seq, count, then per op a
 * tag, a varint32-prefixed key and, for a put, a value). keys[i] gets
 * the key's first byte and its u64be id if it has 9 bytes; *n their count.
 * The test reads the file beside the live store, after its group is
 * durable (the WAL is fsync'd) and before any flush retires it. */
typedef struct wal_key {
  char c;
  int del;
  uint64_t id;
} wal_key_t;

static uint32_t rd_varint32(const unsigned char **p) {
  uint32_t v = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    unsigned char b = *(*p)++;
    v |= (uint32_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

static void last_wal_keys(const char *dir, wal_key_t *keys, size_t cap,
                          size_t *n) {
  char path[512], best[64] = "";
  snprintf(path, sizeof path, "%s/db", dir);
  DIR *d = opendir(path);
  ASSERT(d != NULL);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0 &&
        strcmp(e->d_name, best) > 0)
      snprintf(best, sizeof best, "%s", e->d_name);
  }
  closedir(d);
  ASSERT(best[0] != '\0');
  char p[800];
  snprintf(p, sizeof p, "%s/%s", path, best);
  FILE *f = fopen(p, "rb");
  ASSERT(f != NULL);
  static unsigned char file[1 << 20], rec[1 << 20], last[1 << 20];
  size_t flen = fread(file, 1, sizeof file, f), rlen = 0, llen = 0;
  fclose(f);
  for (size_t off = 0; off + 7 <= flen;) {
    size_t left = 32768 - off % 32768;
    if (left < 7) {
      off += left; /* block trailer */
      continue;
    }
    size_t len = file[off + 4] | (size_t)file[off + 5] << 8;
    int type = file[off + 6];
    ASSERT(off + 7 + len <= flen);
    if (type == 0) break; /* preallocated zeros */
    if (type == 1 || type == 2) rlen = 0;
    memcpy(rec + rlen, file + off + 7, len);
    rlen += len;
    if (type == 1 || type == 4) {
      memcpy(last, rec, rlen);
      llen = rlen;
    }
    off += 7 + len;
  }
  ASSERT(llen >= 12);
  const unsigned char *q = last + 12, *end = last + llen;
  *n = 0;
  while (q < end) {
    int tag = *q++;
    /* deletion, value; in a column family (its id first): 4, 5 */
    ASSERT(tag == 0 || tag == 1 || tag == 4 || tag == 5);
    if (tag >= 4) {
      (void)rd_varint32(&q);
      tag -= 4;
    }
    uint32_t kl = rd_varint32(&q);
    ASSERT(*n < cap);
    wal_key_t *k = &keys[(*n)++];
    k->c = (char)q[0];
    k->del = tag == 0;
    k->id = 0;
    if (kl == 9)
      for (int i = 1; i < 9; i++) k->id = k->id << 8 | q[i];
    q += kl;
    if (tag == 1) q += rd_varint32(&q);
  }
}

TEST_IMPL(group_writes_node_keys_in_order) {
  /* store_writer.c, KEY ORDER: the memtable skiplist inserts a key next
   * to the previous one cheaply, so the writer writes a group's node and
   * sweep ops sorted by key, whatever order the slices gave them in (a
   * slice deletes old nodes spread over all ids, then puts new ones). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  vh_store__pause_writer(s, 1);
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_del_node(b, 50), 0);
  ASSERT_EQ(vh_batch_del_node(b, 20), 0);
  ASSERT_EQ(vh_batch_put_node(b, 100, "n100", 4), 0);
  ASSERT_EQ(vh_batch_del_node(b, 90), 0);
  ASSERT_EQ(vh_batch_put_node(b, 101, "n101", 4), 0);
  ASSERT_EQ(vh_batch_put_sweep(b, 3), 0);
  ASSERT_EQ(vh_batch_del_node(b, 10), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, "m1", 2), 0);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_put_sweep(b, 1), 0);
  ASSERT_EQ(vh_batch_del_node(b, 30), 0);
  ASSERT_EQ(vh_batch_put_node(b, 102, "n102", 4), 0);
  ASSERT_EQ(vh_batch_del_node(b, 101), 0); /* superseded put: one delete */
  ASSERT_EQ(vh_batch_del_node(b, 5), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, "m2", 2), 0);
  ASSERT_EQ(vh_store_submit(s, b, 2), 0);
  vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, 2), 0);
  ASSERT_EQ(vh_store__write_count(s), 1); /* one group */
  wal_key_t k[32];
  size_t n = 0;
  last_wal_keys(dir, k, 32, &n);
  static const uint64_t want_node[] = {5, 10, 20, 30, 50, 90, 100, 101, 102};
  static const int want_del[] = {1, 1, 1, 1, 1, 1, 0, 1, 0};
  ASSERT_EQ(n, 9 + 2 + 1);
  for (size_t i = 0; i < 9; i++) {
    ASSERT(k[i].c != 'Q' && k[i].c != 'M');
    ASSERT_EQ(k[i].id, want_node[i]);
    ASSERT_EQ(k[i].del, want_del[i]);
  }
  ASSERT(k[9].c == 'Q' && k[9].id == 1 && !k[9].del);
  ASSERT(k[10].c == 'Q' && k[10].id == 3 && !k[10].del);
  ASSERT(k[11].c == 'M' && !k[11].del); /* the manifest last */
  expect_node(s, 100, "n100");
  expect_node(s, 101, NULL);
  expect_node(s, 102, "n102");
  expect_manifest(s, "m2");
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(group_order_ids_of_many_bytes) {
  /* KEY ORDER with the writer's radix sort: ids that differ in low, middle
   * and top bytes, puts and deletes mixed, sweeps among them, come out
   * node keys by id, then sweep keys by id, as the compare defined it. */
  enum { NOPS = 400 };
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  vh_store__pause_writer(s, 1);
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  uint64_t x = 88172645463325252ull, nodes[NOPS], sweeps[NOPS];
  size_t nn = 0, ns = 0;
  for (int i = 0; i < NOPS; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
    /* ids of 1 to 8 significant bytes; the index keeps them distinct */
    uint64_t id = ((x >> 16) << (8 * (i % 8)) | (uint64_t)i) & ~(1ull << 63);
    if (id == 0) id = 1;
    if (i % 7 == 3) {
      ASSERT_EQ(vh_batch_put_sweep(b, id), 0);
      sweeps[ns++] = id;
    } else {
      ASSERT_EQ(
          i % 2 ? vh_batch_del_node(b, id) : vh_batch_put_node(b, id, "v", 1),
          0);
      nodes[nn++] = id;
    }
  }
  ASSERT_EQ(vh_batch_set_manifest(b, "m1", 2), 0);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, 1), 0);
  static wal_key_t k[NOPS + 8];
  size_t n = 0;
  last_wal_keys(dir, k, NOPS + 8, &n);
  ASSERT_EQ(n, (size_t)NOPS + 1);
  ASSERT(k[NOPS].c == 'M');
  for (size_t i = 0; i < nn; i++) {
    ASSERT(k[i].c != 'Q' && k[i].c != 'M');
    if (i > 0) ASSERT(k[i - 1].id < k[i].id);
  }
  for (size_t i = nn; i < nn + ns; i++) {
    ASSERT(k[i].c == 'Q');
    if (i > nn) ASSERT(k[i - 1].id < k[i].id);
  }
  /* the same ids: every one found in its list */
  for (size_t i = 0; i < nn + ns; i++) {
    const uint64_t *l = i < nn ? nodes : sweeps;
    size_t m = i < nn ? nn : ns, j = 0;
    while (j < m && l[j] != k[i].id) j++;
    ASSERT(j < m);
  }
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(submit_misuse) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 0);
  submit_put(s, 5, 1, "a", NULL);
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_store_submit(s, b, 5), VH_EINVAL); /* seq not increasing */
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_store_submit(s, b, 4), VH_EINVAL);
  ASSERT_EQ(vh_store_submit(s, NULL, 6), VH_EINVAL);
  ASSERT_EQ(vh_store_wait_durable(s, 6), VH_EINVAL); /* never submitted */
  ASSERT_EQ(vh_store_wait_durable(s, 5), 0);
  vh_batch_free(NULL);
  close_ok(s);
  dir_cleanup();
}

/* ---- corruption ---- */

TEST_IMPL(checksum_mismatch_detected) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  submit_put(s, 1, 1234, "hello node", "the manifest");
  submit_put(s, 2, 1235, "fine", NULL);
  submit_put(s, 3, 1236, "newer", NULL);
  put_durable(s, 4, 1237, "short", NULL);
  close_ok(s);

  vh_store_raw_t *db = raw_open(dir, 0);
  char k[9];
  size_t vl;
  node_key(k, 1234); /* flip one payload bit, keep the stored CRC */
  char *v = raw_get(db, k, 9, &vl);
  ASSERT(v != NULL);
  ASSERT_EQ(vl, 5 + strlen("hello node"));
  ASSERT_EQ((unsigned char)v[4], 0x11); /* node, version 1 */
  v[7] ^= 0x04;
  raw_put(db, k, 9, v, vl);
  rocksdb_free(v);
  v = raw_get(db, "M", 1, &vl); /* damage the manifest's CRC itself */
  ASSERT(v != NULL);
  ASSERT_EQ((unsigned char)v[4], 0x21);
  v[0] ^= 0x80;
  raw_put(db, "M", 1, v, vl);
  rocksdb_free(v);
  node_key(k, 1236); /* a valid CRC over a newer value version */
  unsigned char nv[10] = {0, 0, 0, 0, 0x12, 'n', 'e', 'w', 'e', 'r'};
  uint32_t c = vh_crc32c(0, nv + 4, 6);
  for (int i = 0; i < 4; i++) nv[i] = (unsigned char)(c >> (8 * i));
  raw_put(db, k, 9, nv, sizeof nv);
  node_key(k, 1237); /* too short to hold a header */
  raw_put(db, k, 9, "abc", 3);
  raw_close(db);

  s = open_ok(dir, 0, 1);
  void *p = NULL;
  size_t n;
  char *m = NULL;
  ASSERT_EQ(vh_store_get_node(s, 1234, &p, &n, &m), VH_ECORRUPT);
  ASSERT(p == NULL);
  ASSERT_MSG_HAS(m, "node 1234: checksum mismatch");
  free(m);
  ASSERT_EQ(vh_store_get_manifest(s, &p, &n, &m), VH_ECORRUPT);
  ASSERT_MSG_HAS(m, "manifest: checksum mismatch");
  free(m);
  ASSERT_EQ(vh_store_get_node(s, 1236, &p, &n, &m), VH_EFORMAT);
  ASSERT_MSG_HAS(m, "node 1236: value format version 2 is newer");
  free(m);
  ASSERT_EQ(vh_store_get_node(s, 1237, &p, &n, &m), VH_ECORRUPT);
  ASSERT_MSG_HAS(m, "node 1237: value too short");
  free(m);
  expect_node(s, 1235, "fine"); /* the rest still reads */
  ASSERT_EQ(vh_store_get_node(s, 1234, &p, &n, NULL), VH_ECORRUPT);
  close_ok(s);
  dir_cleanup();
}

/* ---- range scan (store_range.c) ---- */

typedef struct range_rec {
  uint64_t ids[64];
  char text[64][16];
  int n, stop_after;
} range_rec_t;

static int range_cb(void *arg, uint64_t id, const void *bytes, size_t len) {
  range_rec_t *r = arg;
  ASSERT(r->n < 64 && len < 16);
  r->ids[r->n] = id;
  memcpy(r->text[r->n], bytes, len);
  r->text[r->n][len] = '\0';
  r->n++;
  return r->stop_after && r->n == r->stop_after ? 1 : 0;
}

static int range_fail_cb(void *arg, uint64_t id, const void *bytes,
                         size_t len) {
  (void)arg, (void)id, (void)bytes, (void)len;
  return VH_ENOMEM;
}

/* Every node of [lo, hi) in id order with its bytes, none outside it
 * (ids on both sides, a deleted one inside); a stop; a failing callback;
 * a damaged value inside the range fails the scan as a point read
 * would. */
TEST_IMPL(node_range_scan) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  char text[16];
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  for (uint64_t id = 250; id <= 262; id++) { /* 256 = 0x100: a byte carry */
    snprintf(text, sizeof text, "n%llu", (unsigned long long)id);
    ASSERT_EQ(vh_batch_put_node(b, id, text, strlen(text)), 0);
  }
  ASSERT_EQ(vh_batch_set_manifest(b, "m1", 2), 0);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  submit_del(s, 2, 257);
  ASSERT_EQ(vh_store_wait_durable(s, 2), 0);

  range_rec_t r;
  memset(&r, 0, sizeof r);
  char *m = NULL;
  ASSERT_EQ(vh_store_node_range(s, 252, 260, range_cb, &r, &m), 0);
  ASSERT(m == NULL);
  uint64_t want[] = {252, 253, 254, 255, 256, 258, 259};
  ASSERT_EQ(r.n, 7);
  for (int i = 0; i < 7; i++) {
    ASSERT_EQ(r.ids[i], want[i]);
    snprintf(text, sizeof text, "n%llu", (unsigned long long)want[i]);
    ASSERT(strcmp(r.text[i], text) == 0);
  }
  memset(&r, 0, sizeof r); /* empty ranges */
  ASSERT_EQ(vh_store_node_range(s, 260, 260, range_cb, &r, &m), 0);
  ASSERT_EQ(vh_store_node_range(s, 300, 400, range_cb, &r, &m), 0);
  ASSERT_EQ(vh_store_node_range(s, 1, 250, range_cb, &r, &m), 0);
  ASSERT_EQ(r.n, 0);
  r.stop_after = 2; /* fn > 0 stops the scan: 0 */
  ASSERT_EQ(vh_store_node_range(s, 0, UINT64_MAX, range_cb, &r, &m), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_EQ(r.ids[0], 250);
  ASSERT_EQ(vh_store_node_range(s, 250, 251, range_fail_cb, NULL, &m),
            VH_ENOMEM);
  close_ok(s);

  vh_store_raw_t *db = raw_open(dir, 0); /* flip a payload bit of 255 */
  char k[9];
  size_t vl;
  node_key(k, 255);
  char *v = raw_get(db, k, 9, &vl);
  ASSERT(v != NULL);
  v[6] ^= 0x01;
  raw_put(db, k, 9, v, vl);
  rocksdb_free(v);
  raw_close(db);
  s = open_ok(dir, 0, 1);
  memset(&r, 0, sizeof r);
  ASSERT_EQ(vh_store_node_range(s, 250, 263, range_cb, &r, &m), VH_ECORRUPT);
  ASSERT_MSG_HAS(m, "node 255: checksum mismatch");
  free(m);
  ASSERT_EQ(r.n, 5); /* 250..254 were handed over before it */
  close_ok(s);
  dir_cleanup();
}

/* A scan of one tag's keys stops at the tag's end: it does not step over
 * the deleted keys of the tags after it (vh_store__tag_scan_opts). Before,
 * a restart after a long history spent 208M instructions skipping them. */
static int count_sweep(void *arg, uint64_t id) {
  (void)id;
  (*(int *)arg)++;
  return 0;
}

static uint64_t deletes_skipped(rocksdb_perfcontext_t *pc) {
  return rocksdb_perfcontext_metric(pc, rocksdb_internal_delete_skipped_count);
}

TEST_IMPL(scans_stop_at_their_tag) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_put_node(b, 5, "n5", 2), 0);
  ASSERT_EQ(vh_batch_put_sweep(b, 7), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, "m1", 2), 0);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  ASSERT_EQ(vh_store_wait_durable(s, 1), 0);
  close_ok(s);

  /* Deleted keys right after the nodes ('D': death lists) and right after
   * the sweep keys ('V': versions), as a long history leaves them. */
  vh_store_raw_t *db = raw_open(dir, 0);
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  char k[9], *err = NULL;
  for (uint64_t i = 1; i <= 5000; i++) {
    for (int j = 0; j < 8; j++) k[1 + j] = (char)(i >> (56 - 8 * j));
    k[0] = 'D';
    rocksdb_delete_cf(db->db, wo, vh_store_raw_family(db, k, 9), k, 9, &err);
    ASSERT(err == NULL);
    k[0] = 'V';
    rocksdb_delete_cf(db->db, wo, vh_store_raw_family(db, k, 9), k, 9, &err);
    ASSERT(err == NULL);
  }
  rocksdb_writeoptions_destroy(wo);
  raw_close(db);

  s = open_ok(dir, 0, 1);
  rocksdb_set_perf_level(rocksdb_enable_count);
  rocksdb_perfcontext_t *pc = rocksdb_perfcontext_create();
  rocksdb_perfcontext_reset(pc);
  int sweeps = 0;
  ASSERT_EQ(vh_store_sweep_list(s, count_sweep, &sweeps, NULL), 0);
  ASSERT_EQ(sweeps, 1);
  ASSERT(deletes_skipped(pc) < 100); /* 5000 before */

  rocksdb_perfcontext_reset(pc);
  vh_store_iter_t *it;
  ASSERT_EQ(vh_store_iter_new(s, &it, NULL), 0);
  uint64_t id;
  size_t size;
  int nodes = 0;
  while (vh_store_iter_next(it, &id, &size, NULL) == 1) nodes++;
  vh_store_iter_free(it);
  ASSERT_EQ(nodes, 1);
  ASSERT(deletes_skipped(pc) < 100); /* 5000 before */
  rocksdb_perfcontext_destroy(pc);
  rocksdb_set_perf_level(1 /* disable */);
  close_ok(s);
  dir_cleanup();
}

static int count_chunk(void *arg, uint64_t sq, const uint64_t *ents, size_t n,
                       uint64_t est) {
  (void)sq;
  (void)ents;
  (void)est;
  *(size_t *)arg += n;
  return 0;
}

TEST_IMPL(history_scans_leave_the_block_cache) {
  /* store_versions.c, NO CACHE FILL: the history engine reads each death
   * list once, when its version drops; its blocks must not stay in the
   * block cache (16 MB: TUNING, BLOCK CACHE). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  ASSERT_EQ(vh_store__cache_capacity(s), (size_t)16 << 20);
  enum { VERSIONS = 200, ENTS = 400 };
  static uint64_t ents[ENTS];
  for (uint64_t d = 1; d <= VERSIONS; d++) {
    for (size_t i = 0; i < ENTS; i++) ents[i] = (d * 7919 + i * 104729) << 1;
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_deaths(b, d, d, ents, ENTS, 1000), 0);
    ASSERT_EQ(vh_batch_set_manifest(b, "m", 1), 0);
    ASSERT_EQ(vh_store_submit(s, b, d), 0);
  }
  ASSERT_EQ(vh_store_wait_durable(s, VERSIONS), 0);
  ASSERT_EQ(vh_store_flush(s, NULL), 0); /* into a table file */
  size_t n = 0;
  /* the first read loads the table's index and filter blocks */
  ASSERT_EQ(vh_store_deaths_each(s, 1, count_chunk, &n, NULL), 0);
  size_t before = vh_store__cache_usage(s);
  for (uint64_t d = 2; d <= VERSIONS; d++)
    ASSERT_EQ(vh_store_deaths_each(s, d, count_chunk, &n, NULL), 0);
  ASSERT_EQ(n, (size_t)VERSIONS * ENTS);
  size_t after = vh_store__cache_usage(s);
  if (after > before + 4096)
    fprintf(stderr, "block cache grew %zu -> %zu\n", before, after);
  ASSERT(after <= before + 4096); /* ~600 KB of blocks read */
  close_ok(s);
  dir_cleanup();
}

/* ---- write failures ---- */

TEST_IMPL(write_failure_retried_in_order) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  char *m = NULL;
  uint64_t count = 99;
  ASSERT_EQ(vh_store_last_error(s, &m, &count), 0);
  ASSERT(m == NULL);
  ASSERT_EQ(count, 0);

  vh_store__pause_writer(s, 1);
  vh_store__fail_writes(s, 3);
  submit_put(s, 1, 1, "one", "m1");
  submit_del(s, 2, 1);
  submit_put(s, 3, 2, "two", "m3");
  vh_store__pause_writer(s, 0);
  submit_put(s, 4, 1, "one again", "m4"); /* may queue behind the retries */
  ASSERT_EQ(vh_store_wait_durable(s, 4), 0);
  ASSERT_EQ(vh_store_last_error(s, &m, &count), 0); /* healthy again */
  ASSERT_EQ(count, 3);
  ASSERT_MSG_HAS(m, "No space left on device");
  ASSERT_MSG_HAS(m, dir);
  free(m);
  expect_node(s, 1, "one again");
  expect_node(s, 2, "two");
  expect_manifest(s, "m4");

  /* While failing: reported, nothing durable; recovers when it clears. */
  vh_store__fail_writes(s, 1000000);
  submit_put(s, 5, 3, "three", "m5");
  int failing = 0;
  for (int i = 0; i < 2000 && !failing; i++) {
    failing = vh_store_last_error(s, NULL, NULL);
    if (!failing) usleep(1000);
  }
  ASSERT_EQ(failing, 1);
  ASSERT_EQ(vh_store_durable_seq(s), 4);
  expect_node(s, 3, NULL);
  vh_store__fail_writes(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, 5), 0);
  ASSERT_EQ(vh_store_last_error(s, NULL, &count), 0);
  ASSERT(count > 3);
  expect_node(s, 3, "three");
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(close_gives_up_on_failing_writes) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  put_durable(s, 1, 1, "kept", "m1");
  vh_store__fail_writes(s, 1000000);
  submit_put(s, 2, 2, "lost", "m2");
  submit_put(s, 3, 3, "lost too", "m3");
  char *m = NULL;
  ASSERT_EQ(vh_store_close(s, &m), VH_EIO);
  ASSERT_MSG_HAS(m, "slices 2..3 were not written");
  ASSERT_MSG_HAS(m, "as of slice 1");
  free(m);
  s = open_ok(dir, 0, 1); /* consistent: exactly slice 1 */
  expect_manifest(s, "m1");
  expect_node(s, 1, "kept");
  expect_node(s, 2, NULL);
  expect_node(s, 3, NULL);
  close_ok(s);
  dir_cleanup();
}

/* ---- backpressure ---- */

/* submit never waits (the loop thread must not): it queues past the limit
 * and vh_store_health reports the queue full until the writer catches up. */
TEST_IMPL(backpressure_never_blocks_submit) {
  const char *dir = fresh_dir();
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = 0;
  o.queue_bytes = 64 * 1024; /* room for 6 batches of ~10 KB */
  vh_store_t *s;
  ASSERT_EQ(vh_store_open(dir, &o, &s, NULL), 0);
  vh_store_health_t hl;
  ASSERT_EQ(vh_store_health(s, &hl), 1);
  free(hl.last_error);
  vh_store__pause_writer(s, 1);
  static char payload[10000];
  memset(payload, 'p', sizeof payload);
  for (uint64_t k = 1; k <= 50; k++) {
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
    ASSERT_EQ(vh_store_submit(s, b, k), 0); /* returns: the writer is paused */
  }
  ASSERT_EQ(vh_store_health(s, &hl), 0);
  ASSERT_EQ(hl.full, 1);
  ASSERT_EQ(hl.stopped, 0);
  ASSERT(hl.queued_bytes >= 50 * 10000);
  free(hl.last_error);
  vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, 50), 0);
  ASSERT_EQ(vh_store_health(s, &hl), 1);
  ASSERT_EQ(hl.queued_bytes, 0);
  free(hl.last_error);
  void *p;
  size_t n;
  for (uint64_t id = 1; id <= 50; id++) {
    ASSERT_EQ(vh_store_get_node(s, id, &p, &n, NULL), 0);
    ASSERT_EQ(n, 10000);
    free(p);
  }
  close_ok(s);
  dir_cleanup();
}

/* abandon: close returns at once, dropping what could not be written. */
TEST_IMPL(abandon_drops_at_close) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  put_durable(s, 1, 1, "kept", "m1");
  vh_store__fail_writes(s, 1000000);
  submit_put(s, 2, 2, "lost", "m2");
  submit_put(s, 3, 3, "lost too", "m3");
  vh_store_abandon(s);
  char *m = NULL;
  ASSERT_EQ(vh_store_close(s, &m), VH_EIO);
  ASSERT_MSG_HAS(m, "2 slice(s) dropped");
  ASSERT_MSG_HAS(m, "as of slice 1");
  free(m);
  s = open_ok(dir, 0, 1);
  expect_manifest(s, "m1");
  expect_node(s, 2, NULL);
  close_ok(s);
  dir_cleanup();
}

/* ---- secondary ---- */

TEST_IMPL(secondary_reads_primary) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  put_durable(s, 1, 1, "first", "m1");
  ASSERT_EQ(vh_store_flush(s, NULL), 0);

  char sec[300];
  snprintf(sec, sizeof sec, "%s.secondary", dir);
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.read_only_secondary = 1;
  vh_store_t *r;
  char *m = NULL;
  ASSERT_EQ(vh_store_open(dir, &o, &r, &m), VH_EINVAL); /* no path */
  ASSERT_MSG_HAS(m, "secondary_path");
  free(m);
  o.secondary_path = sec;
  ASSERT_EQ(vh_store_open(dir, &o, &r, &m), 0);
  expect_manifest(r, "m1");
  expect_node(r, 1, "first");
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_store_submit(r, b, 1), VH_EINVAL); /* read-only */
  ASSERT_EQ(vh_store_flush(r, NULL), VH_EINVAL);
  ASSERT_EQ(vh_store_catch_up(s, NULL), VH_EINVAL); /* primary */

  submit_put(s, 2, 2, "second", "m2");
  submit_del(s, 3, 1);
  ASSERT_EQ(vh_store_wait_durable(s, 3), 0);
  ASSERT_EQ(vh_store_flush(s, NULL), 0);
  expect_manifest(r, "m1"); /* not caught up yet */
  ASSERT_EQ(vh_store_catch_up(r, NULL), 0);
  expect_manifest(r, "m2");
  expect_node(r, 2, "second");
  expect_node(r, 1, NULL);
  close_ok(r);
  close_ok(s);
  dir_remove(sec);
  dir_cleanup();
}

/* A secondary's checkpoint while its primary flushes: the flush retires
 * the WAL that held the writes after the secondary's view, whose table
 * files do not include the flush's (rewind.c, SECONDARY CHECKPOINT). The
 * copy must still hold every durable write, the format record too. */
static vh_store_t *flush_during_checkpoint_primary;
static int flush_during_checkpoint_calls;
static void flush_during_checkpoint(void *arg) {
  (void)arg;
  if (flush_during_checkpoint_calls++ == 0)
    ASSERT_EQ(vh_store_flush(flush_during_checkpoint_primary, NULL), 0);
}

TEST_IMPL(secondary_checkpoint_while_the_primary_flushes) {
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  put_durable(s, 1, 1, "first", "m1"); /* in the WAL only */
  char sec[300], copy[300], copydb[320];
  snprintf(sec, sizeof sec, "%s.secondary", dir);
  snprintf(copy, sizeof copy, "%s.copy", dir);
  snprintf(copydb, sizeof copydb, "%s/db", copy);
  ASSERT_EQ(mkdir(copy, 0700), 0);
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.read_only_secondary = 1;
  o.secondary_path = sec;
  vh_store_t *r;
  char *m = NULL;
  ASSERT_EQ(vh_store_open(dir, &o, &r, &m), 0);
  put_durable(s, 2, 2, "second", "m2");
  flush_during_checkpoint_primary = s;
  flush_during_checkpoint_calls = 0;
  vh_store__before_checkpoint(r, flush_during_checkpoint, NULL);
  int rc = vh_store_checkpoint(r, copydb, &m);
  if (rc != 0) fprintf(stderr, "checkpoint: %s\n", m ? m : "?");
  ASSERT_EQ(rc, 0);
  ASSERT(flush_during_checkpoint_calls >= 2); /* the first copy was redone */
  close_ok(r);
  vh_store_t *c = open_ok(copy, 0, 1);
  expect_manifest(c, "m2");
  expect_node(c, 1, "first");
  expect_node(c, 2, "second");
  close_ok(c);
  close_ok(s);
  dir_remove(sec);
  dir_remove(copy);
  dir_cleanup();
}

/* ---- clean close leaves no WAL to replay ---- */

/* Bytes and count of the files in DIR/db whose names start with prefix
 * and end in suffix ("" for either: any). */
static long long db_files_bytes(const char *dir, const char *prefix,
                                const char *suffix, int *files) {
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  DIR *d = opendir(path);
  ASSERT(d != NULL);
  long long total = 0;
  struct dirent *e;
  size_t pl = strlen(prefix), sl = strlen(suffix);
  *files = 0;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l < pl + sl || strncmp(e->d_name, prefix, pl) != 0 ||
        strcmp(e->d_name + l - sl, suffix) != 0)
      continue;
    char p[800];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", path, e->d_name);
    /* Polled while RocksDB works: a WAL a flush retired (or an SST a
     * compaction replaced) can go between readdir and stat; it holds no
     * bytes any more. */
    if (stat(p, &st) != 0) {
      ASSERT_EQ(errno, ENOENT);
      continue;
    }
    total += st.st_size;
    (*files)++;
  }
  closedir(d);
  return total;
}

static long long wal_bytes(const char *dir, int *files) {
  return db_files_bytes(dir, "", ".log", files);
}

TEST_IMPL(clean_close_leaves_empty_wal) {
  const char *dir = fresh_dir();
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.idle_flush_ms = -1; /* only the size bound and the close flush */
  char *m = NULL;
  vh_store_t *s = open_opts(dir, &o, &m);
  ASSERT(s != NULL);
  uint64_t last = 3000;
  static char payload[2000];
  for (uint64_t k = 1; k <= 3000; k++) { /* ~6 MB: more than a memtable */
    memset(payload, (int)('a' + k % 26), sizeof payload);
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
    ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
    ASSERT_EQ(vh_store_submit(s, b, k), 0);
  }
  int files;
  ASSERT_EQ(vh_store_wait_durable(s, 3000), 0);
  /* The last batch may have crossed the flush bound, and the flush it
   * asked for retires the WAL that held it; a small batch after it lands
   * in the new WAL (at most once more can it cross the bound). So the
   * WAL is in use when the close begins, however the flushes fell. */
  for (uint64_t k = 3001; k <= 3003 && wal_bytes(dir, &files) == 0; k++) {
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_node(b, k, "small", 5), 0);
    ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
    ASSERT_EQ(vh_store_submit(s, b, k), 0);
    ASSERT_EQ(vh_store_wait_durable(s, k), 0);
    last = k;
  }
  ASSERT(wal_bytes(dir, &files) > 0); /* the WAL was in use */
  close_ok(s);
  ASSERT_EQ(wal_bytes(dir, &files), 0);
  s = open_ok(dir, 0, 1);
  void *p;
  size_t n;
  ASSERT_EQ(vh_store_get_manifest(s, &p, &n, NULL), 0);
  ASSERT_EQ(n, 8);
  uint64_t k;
  memcpy(&k, p, 8);
  ASSERT_EQ(k, last);
  free(p);
  ASSERT_EQ(vh_store_get_node(s, 2999, &p, &n, NULL), 0);
  ASSERT_EQ(n, 2000);
  ASSERT_EQ(((char *)p)[0], (char)('a' + 2999 % 26));
  free(p);
  close_ok(s);
  ASSERT_EQ(wal_bytes(dir, &files), 0);
  dir_cleanup();
}

/* ---- background flush: a crash leaves little WAL to replay ---- */

static vh_store_t *open_flush(const char *dir, int idle_ms) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = 0;
  o.idle_flush_ms = idle_ms;
  char *m = NULL;
  return open_opts(dir, &o, &m);
}

/* Submits n batches of one 2000-byte node each, ids from id0, seqs from
 * seq0, back to back (no pause: the writer merges what queues up). */
static void flood(vh_store_t *s, uint64_t id0, uint64_t seq0, int n) {
  static char payload[2000];
  for (int i = 0; i < n; i++) {
    uint64_t k = id0 + (uint64_t)i;
    memset(payload, (int)('a' + k % 26), sizeof payload);
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
    ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
    ASSERT_EQ(vh_store_submit(s, b, seq0 + (uint64_t)i), 0);
  }
}

/* Polls (bounded: only a hang fails on time) until the WAL holds at most
 * max bytes; returns what it holds then. */
static long long wal_settles(const char *dir, long long max) {
  int files;
  long long w = wal_bytes(dir, &files);
  for (int i = 0; i < 300 && w > max; i++) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    w = wal_bytes(dir, &files);
  }
  return w;
}

/* One slice of n 2000-byte nodes (ids 1..n, manifest n), seq 1. */
static void burst(vh_store_t *s, int n) {
  static char payload[2000];
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  for (uint64_t k = 1; k <= (uint64_t)n; k++) {
    memset(payload, (int)('a' + k % 26), sizeof payload);
    ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
  }
  uint64_t last = (uint64_t)n;
  ASSERT_EQ(vh_batch_set_manifest(b, &last, sizeof last), 0);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
}

/* ---- a store in a child process, killed with SIGKILL ----
 * What a kill -9 leaves is the files as they are at one instant. A copy of
 * a live store (cp -a) is not that: cp reads the files one by one while
 * RocksDB's flush thread writes an SST, appends to the MANIFEST and deletes
 * the WAL it retired, and a compaction replaces SSTs, so cp can miss a file
 * ("cannot stat ... .sst") or copy a MANIFEST naming one it lacks (CI failed
 * flood_keeps_wal_short so). These tests run the store in a child (this
 * binary with --child, exec'd: RocksDB's threads do not survive a bare
 * fork), let it write and acknowledge, then kill it for real. */

static pid_t child_pid = -1;

/* Kills and waits for the child, if one runs; its wait status. */
static int child_kill9(void) {
  int st = 0;
  if (child_pid <= 0) return 0;
  kill(child_pid, SIGKILL);
  while (waitpid(child_pid, &st, 0) < 0 && errno == EINTR) {
  }
  child_pid = -1;
  return st;
}

static void child_reap(void) {
  (void)child_kill9();
}

/* Starts a child that opens DIR (idle flush idle_ms), writes n batches of
 * one node (flood) or, with one_slice, one batch of n nodes (burst), waits
 * until the last is durable and then idles; returns once the child said
 * so. */
static void child_start(const char *dir, int idle_ms, int n, int one_slice) {
  char a_idle[24], a_n[24], a_one[4];
  snprintf(a_idle, sizeof a_idle, "%d", idle_ms);
  snprintf(a_n, sizeof a_n, "%d", n);
  snprintf(a_one, sizeof a_one, "%d", one_slice);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) { /* only async-signal-safe calls until exec */
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execl("/proc/self/exe", "persist_test_store", "--child", dir, a_idle, a_n,
          a_one, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  child_pid = pid;
  char c = 0;
  ssize_t r;
  do r = read(p[0], &c, 1);
  while (r < 0 && errno == EINTR);
  close(p[0]);
  if (r != 1) fprintf(stderr, "the store child ended before its ack\n");
  ASSERT_EQ(r, 1);
}

/* The child's side (main, --child DIR IDLE_MS N ONE_SLICE). */
static const char *child_dir;
static int child_idle, child_n, child_one;

static void child_run(void) {
  vh_store_t *s = open_flush(child_dir, child_idle);
  if (child_one)
    burst(s, child_n);
  else
    flood(s, 1, 1, child_n);
  ASSERT_EQ(vh_store_wait_durable(s, child_one ? 1 : (uint64_t)child_n), 0);
  ASSERT_EQ(write(1, "a", 1), 1); /* acknowledged: the parent goes on */
  for (;;) pause();               /* until SIGKILL */
}

static int child_main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--child") != 0) return -1; /* the tests */
  /* A parent that dies (a failed assertion ends the runner) takes its
   * child along, so no store process outlives the test. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (argc != 6) return 2;
  child_dir = argv[2];
  child_idle = atoi(argv[3]);
  child_n = atoi(argv[4]);
  child_one = atoi(argv[5]);
  vh_test__call(child_run);
  return 1; /* child_run returns only through a failed assertion */
}

/* Kills the child now (it has been idle since its ack, as far as the
 * store's writer knows; RocksDB's own threads may be flushing or
 * compacting) and opens what it left: the manifest names last and node
 * last is there. */
static void kill9_has(const char *dir, uint64_t last) {
  int st = child_kill9();
  ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  vh_store_t *c = open_ok(dir, 0, 0);
  void *p;
  size_t n;
  ASSERT_EQ(vh_store_get_manifest(c, &p, &n, NULL), 0);
  uint64_t k;
  memcpy(&k, p, 8);
  ASSERT_EQ(k, last);
  free(p);
  ASSERT_EQ(vh_store_get_node(c, last, &p, &n, NULL), 0);
  ASSERT_EQ(((char *)p)[0], (char)('a' + last % 26));
  free(p);
  close_ok(c);
}

TEST_IMPL(idle_flush_retires_wal) {
  const char *dir = fresh_dir();
  /* Default idle flush; 240 batches, ~490 KB: under the 512 KB load
   * bound. */
  child_start(dir, 0, 240, 0);
  /* No batch comes: the writer flushes, the WAL is retired. */
  ASSERT_EQ(wal_settles(dir, 0), 0);
  kill9_has(dir, 240);
  dir_cleanup();
}

TEST_IMPL(no_idle_flush_keeps_wal) {
  /* The control: with the idle flush off, the same burst stays in the WAL
   * (what a kill -9 made the next open replay before). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  flood(s, 1, 1, 240);
  ASSERT_EQ(vh_store_wait_durable(s, 240), 0);
  struct timespec ts = {0, 500 * 1000000L};
  nanosleep(&ts, NULL);
  int files;
  ASSERT(wal_bytes(dir, &files) > 400 * 1000);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(flood_keeps_wal_short) {
  /* ~3.6 MB written back to back, idle flush off: under the 4 MB write
   * buffer, so without the load flush all of it would stay in the WAL. */
  const char *dir = fresh_dir();
  child_start(dir, -1, 1800, 0);
  long long w = wal_settles(dir, (long long)2 << 20);
  if (w > (2 << 20)) fprintf(stderr, "WAL still %lld bytes\n", w);
  ASSERT(w <= (long long)2 << 20);
  kill9_has(dir, 1800);
  dir_cleanup();
}

TEST_IMPL(burst_end_acked_after_flush) {
  /* The last group of a burst that reaches the load flush bound (512 KB), with
   * nothing queued behind it: it is acknowledged once its nodes are
   * flushed (BIG GROUPS, store_writer.c: they skip the WAL and are flushed
   * before the manifest's WAL write), so a kill -9 right after that
   * acknowledgement (a client that saw its burst done) replays no node,
   * only the group's manifest record. Idle flush off, so only this rule
   * can have flushed. */
  const char *dir = fresh_dir();
  child_start(dir, -1, 700, 1); /* 1.4 MB in one slice */
  int files;
  long long w = wal_bytes(dir, &files); /* at once: no polling */
  if (w > 1024) fprintf(stderr, "WAL %lld bytes at the ack\n", w);
  ASSERT(w <= 1024);
  kill9_has(dir, 700);
  dir_cleanup();
}

static long long sst_bytes(const char *dir) {
  int files;
  return db_files_bytes(dir, "", ".sst", &files);
}

TEST_IMPL(clean_close_compacts) {
  /* 4000 nodes of 2000 pseudo-random bytes (~8 MB, several flushes),
   * then all but the last 100 deleted: a clean close leaves about the
   * live 100 nodes (~200 KB) on disk, not the deleted ones and their
   * tombstones. */
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  static unsigned char payload[2000];
  uint32_t x = 12345;
  uint64_t seq = 1;
  for (uint64_t k = 1; k <= 4000; k++, seq++) {
    for (size_t i = 0; i < sizeof payload; i++) {
      x = x * 1103515245u + 12345u;
      payload[i] = (unsigned char)(x >> 24);
    }
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
    ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
    ASSERT_EQ(vh_store_submit(s, b, seq), 0);
  }
  for (uint64_t k = 1; k <= 3900; k++, seq++) submit_del(s, seq, k);
  ASSERT_EQ(vh_store_wait_durable(s, seq - 1), 0);
  close_ok(s);
  long long sst = sst_bytes(dir);
  if (sst > 600 * 1000) fprintf(stderr, "SST bytes after close: %lld\n", sst);
  ASSERT(sst <= 600 * 1000);
  s = open_ok(dir, 0, 0);
  void *p;
  size_t n;
  ASSERT_EQ(vh_store_get_node(s, 4000, &p, &n, NULL), 0);
  ASSERT_EQ(n, 2000);
  free(p);
  ASSERT_EQ(vh_store_get_node(s, 3900, &p, &n, NULL), VH_ENOENT);
  close_ok(s);
  dir_cleanup();
}

/* Puts nodes id0..id0+n-1 of 2000 pseudo-random bytes, deleting node
 * del0+i in the batch of put i when del0 is not 0; seqs from *seq. */
static void put_random(vh_store_t *s, uint64_t *seq, uint64_t id0,
                       uint64_t del0, int n) {
  static unsigned char payload[2000];
  uint32_t x = (uint32_t)id0 * 2654435761u;
  for (int k = 0; k < n; k++) {
    for (size_t i = 0; i < sizeof payload; i++) {
      x = x * 1103515245u + 12345u;
      payload[i] = (unsigned char)(x >> 24);
    }
    uint64_t id = id0 + (uint64_t)k;
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_node(b, id, payload, sizeof payload), 0);
    if (del0) ASSERT_EQ(vh_batch_del_node(b, del0 + (uint64_t)k), 0);
    ASSERT_EQ(vh_batch_set_manifest(b, &id, sizeof id), 0);
    ASSERT_EQ(vh_store_submit(s, b, (*seq)++), 0);
  }
  ASSERT_EQ(vh_store_wait_durable(s, *seq - 1), 0);
}

TEST_IMPL(clean_close_compacts_the_memtable_too) {
  /* 300 nodes (~600 KB) compacted into the bottommost level; a second
   * session replaces every one (300 new nodes, the old ones deleted),
   * all of it still in the memtable at close (idle flush off, load flush
   * bound raised to 1 MB for this session). The close must weigh that memtable,
   * which its own flush turns into a level-0 file: it was measured before that
   * flush (no SST above the bottommost level), so the replaced 600 KB stayed on
   * disk beside the new ones, or not, as the idle flush happened to run
   * first (history_spec's du bound flaked so under ASan). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  uint64_t seq = 1;
  put_random(s, &seq, 1, 0, 300);
  ASSERT_EQ(vh_store_compact(s, NULL), 0);
  close_ok(s);
  long long before = sst_bytes(dir);
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.sync = 0;
  o.idle_flush_ms = -1;
  o.flush_bytes = (size_t)1 << 20; /* over the ~600 KB this session writes */
  char *m = NULL;
  s = open_opts(dir, &o, &m);
  put_random(s, &seq, 301, 1, 300);
  close_ok(s);
  long long sst = sst_bytes(dir);
  if (sst > before * 3 / 2)
    fprintf(stderr,
            "SST bytes %lld after the first close, %lld after the "
            "second\n",
            before, sst);
  ASSERT(sst <= before * 3 / 2);
  s = open_ok(dir, 0, 0);
  void *p;
  size_t n;
  ASSERT_EQ(vh_store_get_node(s, 600, &p, &n, NULL), 0);
  ASSERT_EQ(n, 2000);
  free(p);
  ASSERT_EQ(vh_store_get_node(s, 300, &p, &n, NULL), VH_ENOENT);
  close_ok(s);
  dir_cleanup();
}

/* Level-0 files of the closed store in dir (a read-only open). */
static int l0_files(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  vh_store_raw_t db;
  char *err = NULL;
  vh_store_raw_open(path, VH_RAW_READ_ONLY, &db, &err);
  if (err) fprintf(stderr, "read-only open: %s\n", err);
  ASSERT(err == NULL);
  int n = 0; /* both families' */
  for (int i = 0; i < (db.apart ? 2 : 1); i++) {
    char *v = rocksdb_property_value_cf(db.db, db.cf[i],
                                        "rocksdb.num-files-at-level0");
    n += v ? atoi(v) : 0;
    rocksdb_free(v);
  }
  vh_store_raw_close(&db);
  return n;
}

TEST_IMPL(clean_close_leaves_compaction_to_a_long_session) {
  /* perf/stop: 300 nodes (~600 KB) in the bottommost level and 300 more
   * in level 0; then a session that only deletes 10 nodes (a restart
   * that dropped old versions): it meets the other rules (deletes, a
   * third of the SST above the bottommost level, a small store) but wrote
   * a few hundred bytes, so its stop does not rewrite the 1.2 MB store:
   * level 0 keeps its files. A session that wrote enough still compacts
   * (clean_close_compacts*). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  uint64_t seq = 1;
  put_random(s, &seq, 1, 0, 300);
  ASSERT_EQ(vh_store_compact(s, NULL), 0);
  close_ok(s);
  s = open_flush(dir, -1);
  put_random(s, &seq, 301, 0, 300); /* no deletes: no compaction */
  close_ok(s);
  ASSERT(l0_files(dir) >= 1);
  s = open_flush(dir, -1);
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  for (uint64_t id = 1; id <= 10; id++) ASSERT_EQ(vh_batch_del_node(b, id), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, &seq, sizeof seq), 0);
  ASSERT_EQ(vh_store_submit(s, b, seq), 0);
  ASSERT_EQ(vh_store_wait_durable(s, seq), 0);
  seq++;
  close_ok(s);
  ASSERT(l0_files(dir) >= 2);
  dir_cleanup();
}

/* ---- compaction hold: an open does not compact while the host starts ---- */

static vh_store_t *open_hold(const char *dir, int create, int hold_ms) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = create;
  o.sync = 0;
  o.idle_flush_ms = -1;
  o.compact_hold_ms = hold_ms;
  char *m = NULL;
  return open_opts(dir, &o, &m);
}

static int sst_files(const char *dir) {
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  DIR *d = opendir(path);
  ASSERT(d != NULL);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l >= 4 && strcmp(e->d_name + l - 4, ".sst") == 0) n++;
  }
  closedir(d);
  return n;
}

/* One 2000-byte node (id k) and the manifest, then a flush: one more
 * level-0 file. */
static void put_flushed(vh_store_t *s, uint64_t k) {
  static char payload[2000];
  memset(payload, (int)('a' + k % 26), sizeof payload);
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
  ASSERT_EQ(vh_store_submit(s, b, k), 0);
  ASSERT_EQ(vh_store_wait_durable(s, k), 0);
  ASSERT_EQ(vh_store_flush(s, NULL), 0);
}

/* Polls (bounded: only a hang fails on time) until DIR/db holds fewer than
 * n SST files; returns how many it holds then. */
static int sst_below(const char *dir, int n) {
  int f = sst_files(dir);
  for (int i = 0; i < 600 && f >= n; i++) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    f = sst_files(dir);
  }
  return f;
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

TEST_IMPL(open_holds_compaction) {
  /* Nine level-0 files (the store compacts from 8, store.c L0 TRIGGER):
   * an open leaves them alone while the hold lasts, a write does not end
   * it (it ends at 12 files), then it ends. */
  const char *dir = fresh_dir();
  vh_store_t *s = open_hold(dir, 1, 600000);
  for (uint64_t k = 1; k <= 9; k++) put_flushed(s, k);
  int n = sst_files(dir);
  if (n < 9) fprintf(stderr, "%d SST files\n", n);
  ASSERT(n >= 9);
  close_ok(s);
  ASSERT_EQ(sst_files(dir), n);
  s = open_hold(dir, 0, 600000);
  pause_ms(500);
  ASSERT_EQ(sst_files(dir), n); /* RocksDB's compaction would be done */
  put_flushed(s, 10);
  pause_ms(500);
  ASSERT_EQ(sst_files(dir), n + 2); /* a level-0 file in each family */
  close_ok(s);
  /* A short hold: compaction starts once it is over, with no write. */
  s = open_hold(dir, 0, 50);
  int m = sst_below(dir, n + 1);
  if (m > n) fprintf(stderr, "still %d SST files (was %d)\n", m, n + 1);
  ASSERT(m <= n);
  void *p;
  size_t len;
  ASSERT_EQ(vh_store_get_node(s, 10, &p, &len, NULL), 0);
  ASSERT_EQ(len, 2000);
  free(p);
  close_ok(s);
  dir_cleanup();
}

/* The newest OPTIONS-* file RocksDB wrote in DIR/db, read whole ([new]). */
static char *options_text(const char *dir) {
  char path[512], best[256] = "";
  snprintf(path, sizeof path, "%s/db", dir);
  DIR *d = opendir(path);
  ASSERT(d != NULL);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "OPTIONS-", 8) == 0 &&
        (strlen(e->d_name) > strlen(best) ||
         (strlen(e->d_name) == strlen(best) && strcmp(e->d_name, best) > 0)))
      snprintf(best, sizeof best, "%s", e->d_name);
  closedir(d);
  ASSERT(best[0] != '\0');
  char p[800];
  snprintf(p, sizeof p, "%s/%s", path, best);
  FILE *f = fopen(p, "rb");
  ASSERT(f != NULL);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *out = strdup(buf);
  ASSERT(out != NULL);
  return out;
}

TEST_IMPL(write_path_options) {
  /* The options that make a sync update cheap (store.c, TUNING), as
   * RocksDB itself recorded them: no compression at L0 (flushes), LZ4
   * below it, the bottommost level included, without a zstd dictionary
   * (TUNING, CODEC); and no memtable insert hint (RocksDB 7.8 shares it
   * between the point and range-deletion skiplists: store.c, TUNING). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  close_ok(s);
  char *t = options_text(dir);
  ASSERT(strstr(t, "insert_with_hint_prefix_extractor=rocksdb") == NULL);
  ASSERT_MSG_HAS(t, "compression_per_level=kNoCompression:kLZ4Compression");
  ASSERT_MSG_HAS(t, "bottommost_compression=kLZ4Compression");
  /* compaction output files end where the key's first byte changes, and
   * are 16 MB at most (FORMAT 3 in store.c) */
  ASSERT_MSG_HAS(t,
                 "sst_partitioner_factory={id=SstPartitionerFixedPrefixFactory;"
                 "length=1;}");
  ASSERT_MSG_HAS(t, "target_file_size_base=16777216");
  /* a small base level (store.c, TUNING, LEVEL BASE) */
  ASSERT_MSG_HAS(t, "max_bytes_for_level_base=16777216");
  /* L0 TRIGGER (store.c, TUNING): compactions from level 0 start at 8
   * files, writes slow down at 30 and stop at 50 */
  ASSERT_MSG_HAS(t, "level0_file_num_compaction_trigger=8");
  ASSERT_MSG_HAS(t, "level0_slowdown_writes_trigger=30");
  ASSERT_MSG_HAS(t, "level0_stop_writes_trigger=50");
  const char *bo = strstr(t, "bottommost_compression_opts={");
  ASSERT(bo != NULL);
  const char *end = strchr(bo, '}');
  ASSERT(end != NULL);
  const char *md = strstr(bo, "max_dict_bytes=0;");
  ASSERT(md != NULL && md < end);
  free(t);
  dir_cleanup();
}

/* ---- the codec of the table files (store.c, TUNING, CODEC) ---- */

static uint64_t rd_varint64(const unsigned char **p, const unsigned char *e) {
  uint64_t v = 0;
  for (int sh = 0; *p < e && sh < 64; sh += 7) {
    unsigned char c = *(*p)++;
    v |= (uint64_t)(c & 0x7f) << sh;
    if (!(c & 0x80)) return v;
  }
  *p = e + 1; /* truncated: the caller sees p past the end */
  return 0;
}

/* The value of key want in a block of a table file (b, n bytes without
 * its trailer): entries (varint shared, non-shared and value lengths,
 * the key's non-shared bytes, the value), then the restart offsets (u32
 * each) and their count (u32). NULL if absent or malformed. */
static const unsigned char *block_value(const unsigned char *b, size_t n,
                                        const char *want, size_t *vlen) {
  if (n < 4) return NULL;
  uint32_t restarts = vh_le32_load(b + n - 4);
  if ((uint64_t)restarts * 4 + 4 > n) return NULL;
  const unsigned char *p = b, *e = b + n - 4 - (size_t)restarts * 4;
  char key[256];
  size_t kl = 0;
  while (p < e) {
    uint64_t shared = rd_varint64(&p, e), own = rd_varint64(&p, e);
    uint64_t vl = rd_varint64(&p, e);
    if (p > e || shared > kl || shared + own > sizeof key ||
        own + vl > (size_t)(e - p))
      return NULL;
    memcpy(key + shared, p, own);
    kl = shared + own;
    p += own;
    if (kl == strlen(want) && memcmp(key, want, kl) == 0) {
      *vlen = vl;
      return p;
    }
    p += vl;
  }
  return NULL;
}

/* The codec RocksDB recorded in table file path ("LZ4", "ZSTD",
 * "NoCompression"), written into out. RocksDB's block-based table format
 * (format_version 5): the file ends in a 53-byte footer (checksum type,
 * the metaindex block's handle as varint offset and size, the index
 * block's, padding, u32 version, u64 magic); the metaindex maps
 * "rocksdb.properties" to the properties block's handle, and that block
 * (meta blocks are never compressed) maps "rocksdb.compression" to the
 * codec's name. */
static void table_codec(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "rb");
  ASSERT(f != NULL);
  ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  ASSERT(size > 53);
  unsigned char *buf = malloc((size_t)size);
  ASSERT(buf != NULL);
  ASSERT_EQ(fseek(f, 0, SEEK_SET), 0);
  ASSERT_EQ(fread(buf, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  const unsigned char *end = buf + size, *p = end - 53 + 1;
  ASSERT_EQ(vh_le32_load(end - 12), 5); /* format_version */
  uint64_t mo = rd_varint64(&p, end), ms = rd_varint64(&p, end);
  ASSERT(mo + ms <= (uint64_t)size);
  size_t vl = 0;
  const unsigned char *h =
      block_value(buf + mo, (size_t)ms, "rocksdb.properties", &vl);
  ASSERT(h != NULL);
  uint64_t po = rd_varint64(&h, h + vl), ps = rd_varint64(&h, h + vl);
  ASSERT(po + ps <= (uint64_t)size);
  const unsigned char *v =
      block_value(buf + po, (size_t)ps, "rocksdb.compression", &vl);
  ASSERT(v != NULL && vl < cap);
  memcpy(out, v, vl);
  out[vl] = '\0';
  free(buf);
}

/* Checks the codec of every table file of DIR/db by level: files at
 * level 0 must use l0 (NULL: any), the others below (the bottommost
 * level is 6, dynamic level sizes); returns the number of files at level
 * 6 (the store must be closed). */
static int codecs_are(const char *dir, const char *l0, const char *below) {
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  vh_store_raw_t raw;
  char *err = NULL;
  vh_store_raw_open(path, VH_RAW_READ_ONLY, &raw, &err);
  if (err) fprintf(stderr, "read-only open: %s\n", err);
  ASSERT(err == NULL);
  const rocksdb_livefiles_t *lf = rocksdb_livefiles(raw.db);
  int bottom = 0;
  for (int i = 0; i < rocksdb_livefiles_count(lf); i++) {
    int level = rocksdb_livefiles_level(lf, i);
    const char *want = level == 0 ? l0 : below;
    if (level == 6) bottom++;
    char file[800], codec[64];
    snprintf(file, sizeof file, "%s%s", path, rocksdb_livefiles_name(lf, i));
    table_codec(file, codec, sizeof codec);
    if (want != NULL && strcmp(codec, want) != 0)
      fprintf(stderr, "%s (level %d): %s, expected %s\n", file, level, codec,
              want);
    ASSERT(want == NULL || strcmp(codec, want) == 0);
  }
  rocksdb_livefiles_destroy(lf);
  vh_store_raw_close(&raw);
  return bottom;
}

/* A compressible node payload: text like the trie's small nodes. */
static const char *codec_node(uint64_t id, int gen) {
  static char t[200];
  snprintf(t, sizeof t,
           "node %llu gen %d: key:%llu = %llu, key:%llu = %llu, "
           "name = \"user %llu\", seen = %llu",
           (unsigned long long)id, gen, (unsigned long long)id * 7,
           (unsigned long long)id * 13, (unsigned long long)id * 7 + 1,
           (unsigned long long)id * 17, (unsigned long long)id % 977,
           (unsigned long long)(1700000000 + id));
  return t;
}

/* Puts nodes id0..id0+n-1 (generation gen), 100 per batch, deleting
 * del0.. one for one when del0 is not 0; waits until durable. */
static void put_codec_nodes(vh_store_t *s, uint64_t *seq, uint64_t id0,
                            uint64_t del0, int n, int gen) {
  for (int k = 0; k < n; k += 100) {
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    for (int i = k; i < n && i < k + 100; i++) {
      const char *t = codec_node(id0 + (uint64_t)i, gen);
      ASSERT_EQ(vh_batch_put_node(b, id0 + (uint64_t)i, t, strlen(t)), 0);
      if (del0) ASSERT_EQ(vh_batch_del_node(b, del0 + (uint64_t)i), 0);
    }
    ASSERT_EQ(vh_batch_set_manifest(b, seq, sizeof *seq), 0);
    ASSERT_EQ(vh_store_submit(s, b, (*seq)++), 0);
  }
  ASSERT_EQ(vh_store_wait_durable(s, *seq - 1), 0);
}

TEST_IMPL(bottommost_level_is_lz4) {
  /* store.c, TUNING, CODEC: the bottommost level, where most nodes live,
   * is LZ4 (its 4 KB blocks decode in ~1/6 of zstd's instructions);
   * level 0 is uncompressed. Checked in the table files themselves, as
   * RocksDB recorded each file's codec. */
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  uint64_t seq = 1;
  put_codec_nodes(s, &seq, 1, 0, 20000, 1);
  ASSERT_EQ(vh_store_compact(s, NULL), 0);
  put_codec_nodes(s, &seq, 20001, 0, 500, 1);
  ASSERT_EQ(vh_store_flush(s, NULL), 0); /* one level-0 file */
  close_ok(s);
  ASSERT(codecs_are(dir, "NoCompression", "LZ4") >= 1);
  s = open_ok(dir, 0, 0);
  expect_node(s, 12345, codec_node(12345, 1));
  expect_node(s, 20400, codec_node(20400, 1));
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(zstd_store_reads_and_turns_lz4) {
  /* A store written with the older codec (zstd with a 16 KB dictionary of
   * sampled blocks at the bottommost level, store.c TUNING, CODEC) opens
   * with today's options and reads every node; the compactions after
   * it rewrite what they touch with LZ4, and a store of both codecs
   * reads too. */
  const char *dir = fresh_dir();
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = 0;
  o.idle_flush_ms = -1;
  o.zstd_dict_bytes = 16384; /* the older stores' codec */
  char *m = NULL;
  vh_store_t *s = open_opts(dir, &o, &m);
  uint64_t seq = 1;
  put_codec_nodes(s, &seq, 1, 0, 20000, 1);
  ASSERT_EQ(vh_store_compact(s, NULL), 0);
  close_ok(s);
  ASSERT(codecs_are(dir, NULL, "ZSTD") >= 1); /* the fixture is zstd */
  /* Today's options read it whole. */
  s = open_flush(dir, -1);
  for (uint64_t id = 1; id <= 20000; id += 37)
    expect_node(s, id, codec_node(id, 1));
  expect_node(s, 20000, codec_node(20000, 1));
  /* New nodes above the zstd level (L0, then LZ4), read beside it. */
  put_codec_nodes(s, &seq, 20001, 0, 2000, 2);
  ASSERT_EQ(vh_store_flush(s, NULL), 0);
  expect_node(s, 21999, codec_node(21999, 2));
  expect_node(s, 7, codec_node(7, 1));
  /* Nodes 1..10000 replaced; the compaction rewrites everything LZ4. */
  put_codec_nodes(s, &seq, 22001, 1, 10000, 3);
  ASSERT_EQ(vh_store_compact(s, NULL), 0);
  close_ok(s);
  ASSERT(codecs_are(dir, NULL, "LZ4") >= 1);
  s = open_ok(dir, 0, 0);
  for (uint64_t id = 10001; id <= 20000; id += 37)
    expect_node(s, id, codec_node(id, 1));
  for (uint64_t id = 22001; id <= 32000; id += 41)
    expect_node(s, id, codec_node(id, 3));
  expect_node(s, 21000, codec_node(21000, 2));
  expect_node(s, 10000, NULL);
  expect_node(s, 1, NULL);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(history_gc_keeps_l0_off_the_bottom) {
  /* The retention GC deletes the oldest retained node ids while slices
   * write the newest, so every level-0 file spans the whole id range, and
   * RocksDB's L0 compaction rewrites every base-level file in it. The base
   * level must therefore stay a small level above the bottommost one (which
   * holds the history) once the store outgrows 16 MB (store.c, TUNING, LEVEL
   * BASE); with RocksDB's 256 MB default it was the bottommost level up to
   * ~2.5 GB. ~28 MB of incompressible nodes, then GC-shaped batches. */
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 0);
  static char payload[4000];
  uint64_t x = 88172645463325252ull, seq = 0, id = 0;
  enum { LIVE = 7000, PER = 50 };
  for (int round = 0; round < LIVE / PER + 20; round++) {
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    for (int i = 0; i < PER; i++, id++) {
      for (size_t j = 0; j < sizeof payload; j += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(payload + j, &x, 8);
      }
      ASSERT_EQ(vh_batch_put_node(b, id, payload, sizeof payload), 0);
      if (id >= LIVE) ASSERT_EQ(vh_batch_del_node(b, id - LIVE), 0);
    }
    ASSERT_EQ(vh_batch_set_manifest(b, &id, sizeof id), 0);
    ASSERT_EQ(vh_store_submit(s, b, ++seq), 0);
  }
  ASSERT_EQ(vh_store_wait_durable(s, seq), 0);
  char *m = NULL;
  ASSERT_EQ(vh_store_compact(s, &m), 0);
  free(m);
  ASSERT(sst_bytes(dir) > 20ll << 20);
  int base = vh_store__base_level(s);
  if (base < 0 || base >= 6)
    fprintf(stderr, "base level %d with %lld bytes of SST\n", base,
            sst_bytes(dir));
  ASSERT(base >= 1 && base < 6);
  close_ok(s);
  dir_cleanup();
}

/* Is there a value under key[0] = c + u64be(id) in the raw database? */
static int raw_has_node(vh_store_raw_t *db, char c, uint64_t id) {
  char k[9];
  node_key(k, id);
  k[0] = c;
  size_t vl = 0;
  char *v = raw_get(db, k, 9, &vl);
  rocksdb_free(v);
  return v != NULL;
}

/* The first key of the raw database's family cf, in *k (kl bytes; 0: the
 * family is empty). */
static void raw_first_key(vh_store_raw_t *db,
                          rocksdb_column_family_handle_t *cf, char k[16],
                          size_t *kl) {
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db->db, ro, cf);
  rocksdb_iter_seek_to_first(it);
  *kl = 0;
  if (rocksdb_iter_valid(it)) {
    const char *p = rocksdb_iter_key(it, kl);
    memcpy(k, p, *kl < 16 ? *kl : 16);
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
}

TEST_IMPL(format4_nodes_in_their_family) {
  /* A new store is format 4: its node keys ('A' + id) live in the "nodes"
   * column family, every other key in the default one (store.c, FORMAT
   * 4). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_ok(dir, 1, 1);
  put_durable(s, 1, 5, "five", "m1");
  close_ok(s);
  vh_store_raw_t *db = raw_open(dir, 0);
  ASSERT(db->apart);
  ASSERT(raw_has_node(db, 'A', 5));
  ASSERT(!raw_has_node(db, 'N', 5));
  size_t vl = 0;
  char *f = raw_get(db, "F", 1, &vl);
  ASSERT(f != NULL && vl == 12 && f[8] == 5); /* format 4's layout, 5 */
  rocksdb_free(f);
  char k[16];
  size_t kl = 0;
  raw_first_key(db, db->cf[0], k, &kl);
  ASSERT(kl > 0 && k[0] != 'A'); /* no node among the other keys */
  raw_first_key(db, db->cf[1], k, &kl);
  ASSERT(kl == 9 && k[0] == 'A');
  raw_close(db);
  reopen_expect_node(dir, 5, "five");
  dir_cleanup();
}

/* A raw store of format 3 in dir: the format record and node 7 = "old",
 * both in the default family, as a vedhost of format 3 wrote them. */
static void plant_format3(const char *dir) {
  ASSERT_EQ(mkdir(dir, 0700), 0);
  vh_store_raw_t *db = raw_open(dir, 1);
  ASSERT(!db->apart);
  raw_put(db, "F", 1, "VEDHOST\0\3\0\0\0", 12);
  unsigned char v[4 + 1 + 3];
  v[4] = 0x11; /* kind node, value version 1 */
  memcpy(v + 5, "old", 3);
  vh_le32_store(v, vh_crc32c(0, v + 4, sizeof v - 4));
  char k[9];
  node_key(k, 7);
  raw_put(db, k, 9, v, sizeof v);
  raw_close(db);
}

/* Submits seq with n node puts of ids first.. (each 64 bytes of text,
 * id-stamped), and waits until it is durable. */
static void put_many(vh_store_t *s, uint64_t seq, uint64_t first, int n) {
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  char text[64];
  for (int i = 0; i < n; i++) {
    memset(text, 'x', sizeof text);
    snprintf(text, sizeof text, "n%llu", (unsigned long long)(first + i));
    ASSERT_EQ(vh_batch_put_node(b, first + (uint64_t)i, text, sizeof text), 0);
  }
  ASSERT_EQ(vh_batch_set_manifest(b, "m", 1), 0);
  ASSERT_EQ(vh_store_submit(s, b, seq), 0);
  ASSERT_EQ(vh_store_wait_durable(s, seq), 0);
}

static void expect_many(vh_store_t *s, uint64_t first, int n) {
  for (int i = 0; i < n; i++) {
    void *p = NULL;
    size_t len = 0;
    ASSERT_EQ(vh_store_get_node(s, first + (uint64_t)i, &p, &len, NULL), 0);
    char want[16];
    snprintf(want, sizeof want, "n%llu", (unsigned long long)(first + i));
    ASSERT(len == 64 && strcmp(p, want) == 0);
    free(p);
  }
}

/* Table files of the raw database's family cf at level `level`. */
static int raw_files_at(vh_store_raw_t *db, rocksdb_column_family_handle_t *cf,
                        int level) {
  char prop[64];
  snprintf(prop, sizeof prop, "rocksdb.num-files-at-level%d", level);
  char *v = rocksdb_property_value_cf(db->db, cf, prop);
  int n = v ? atoi(v) : -1;
  rocksdb_free(v);
  return n;
}

TEST_IMPL(format3_store_keeps_its_nodes_beside_the_rest) {
  /* A store of format 3 (no "nodes" family) still opens, reads its nodes
   * and writes new ones, big groups too, beside the other keys; it stays
   * format 3. */
  const char *dir = fresh_dir();
  plant_format3(dir);
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.flush_bytes = 4096; /* every group below is a big one */
  char *m = NULL;
  vh_store_t *s = open_opts(dir, &o, &m);
  expect_node(s, 7, "old");
  put_many(s, 1, 100, 200);
  put_many(s, 2, 300, 200);
  expect_many(s, 100, 200);
  expect_many(s, 300, 200);
  close_ok(s);
  vh_store_raw_t *db = raw_open(dir, 0);
  ASSERT(!db->apart);
  ASSERT(raw_has_node(db, 'A', 7));
  ASSERT(raw_has_node(db, 'A', 499));
  size_t vl = 0;
  char *f = raw_get(db, "F", 1, &vl);
  ASSERT(f != NULL && vl == 12 && f[8] == 3); /* still format 3 */
  rocksdb_free(f);
  raw_close(db);
  s = open_ok(dir, 0, 1);
  expect_node(s, 7, "old");
  expect_many(s, 300, 200);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(big_groups_land_in_the_bottommost_level) {
  /* INGESTION (store_writer.c): a big group's node puts are one table
   * file ingested into the nodes' family, and as node ids only grow it
   * lands in the bottommost level (6), never in level 0: no compaction
   * rewrites it on the way down. Small groups go through the memtable. */
  const char *dir = fresh_dir();
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.flush_bytes = 4096;
  char *m = NULL;
  vh_store_t *s = open_opts(dir, &o, &m);
  for (uint64_t g = 0; g < 5; g++) put_many(s, g + 1, 1000 + g * 300, 300);
  put_durable(s, 6, 5000, "small", "m");
  expect_many(s, 1000, 1500);
  expect_node(s, 5000, "small");
  close_ok(s);
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  vh_store_raw_t db;
  char *err = NULL;
  vh_store_raw_open(path, VH_RAW_READ_ONLY, &db, &err);
  ASSERT(err == NULL && db.apart);
  ASSERT_EQ(raw_files_at(&db, db.cf[1], 6), 5); /* the 5 big groups */
  ASSERT_EQ(raw_files_at(&db, db.cf[1], 0), 1); /* the small one, flushed */
  for (int level = 1; level < 6; level++)
    ASSERT_EQ(raw_files_at(&db, db.cf[1], level), 0);
  vh_store_raw_close(&db);
  struct stat st;
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s/vh-ingest.tmp", path);
  ASSERT(stat(tmp, &st) != 0 && errno == ENOENT); /* none left behind */
  s = open_ok(dir, 0, 1);
  expect_many(s, 1000, 1500);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(compaction_hold_ends_before_a_stall) {
  /* The store slows writes from 30 level-0 files and stops them at 50
   * (store.c, L0 TRIGGER; RocksDB's defaults are 20 and 36): a
   * write that finds level 0 filling up ends the hold, however long it
   * was to last (else a write flood right after open would stall on a
   * compaction nobody may start). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_hold(dir, 1, 600000);
  for (uint64_t k = 1; k <= 18; k++) put_flushed(s, k);
  /* (the node keys of separate flushes do not overlap: their files move
   * down whole, so count level 0, not files) */
  int m = vh_store__level0_files(s);
  for (int i = 0; i < 600 && m >= 12; i++) {
    pause_ms(50);
    m = vh_store__level0_files(s);
  }
  if (m >= 12) fprintf(stderr, "still %d level-0 files\n", m);
  ASSERT(m >= 0 && m < 12);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(format1_store_keeps_its_keys) {
  /* A store written by a format 1 vedhost ('N' node keys) still opens,
   * reads its nodes, and goes on writing 'N' keys. */
  const char *dir = fresh_dir();
  ASSERT_EQ(mkdir(dir, 0700), 0);
  vh_store_raw_t *db = raw_open(dir, 1);
  raw_put(db, "F", 1, "VEDHOST\0\1\0\0\0", 12);
  unsigned char v[4 + 1 + 3];
  v[4] = 0x11; /* kind node, value version 1 */
  memcpy(v + 5, "old", 3);
  vh_le32_store(v, vh_crc32c(0, v + 4, sizeof v - 4));
  char k[9];
  node_key(k, 7);
  k[0] = 'N';
  raw_put(db, k, 9, v, sizeof v);
  raw_close(db);
  vh_store_t *s = open_ok(dir, 0, 1);
  expect_node(s, 7, "old");
  put_durable(s, 1, 8, "new", "m1");
  expect_node(s, 8, "new");
  size_t nodes = 0;
  vh_store_iter_t *it = NULL;
  ASSERT_EQ(vh_store_iter_new(s, &it, NULL), 0);
  uint64_t id;
  size_t size;
  while (vh_store_iter_next(it, &id, &size, NULL) > 0) nodes++;
  vh_store_iter_free(it);
  ASSERT_EQ(nodes, 2);
  range_rec_t r; /* the range scan reads 'N' keys here too */
  memset(&r, 0, sizeof r);
  char *m = NULL;
  ASSERT_EQ(vh_store_node_range(s, 0, UINT64_MAX, range_cb, &r, &m), 0);
  ASSERT_EQ(r.n, 2);
  ASSERT_EQ(r.ids[0], 7);
  ASSERT(strcmp(r.text[1], "new") == 0);
  close_ok(s);
  db = raw_open(dir, 0);
  ASSERT(raw_has_node(db, 'N', 8));
  ASSERT(!raw_has_node(db, 'A', 8));
  size_t vl = 0;
  char *f = raw_get(db, "F", 1, &vl);
  ASSERT(f != NULL && vl == 12 && f[8] == 1); /* still format 1 */
  rocksdb_free(f);
  raw_close(db);
  dir_cleanup();
}

/* Resident bytes of the main heap ([heap] in /proc/self/smaps), or -1:
 * where blocks malloc'ed on this thread live. RocksDB's threads allocate
 * in arenas of their own and its big buffers are mapped, so what a flush
 * or compaction holds for a moment is not counted. */
static long long rss_bytes(void) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  int in_heap = 0;
  long long kb = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    /* A mapping's line starts with its address (lowercase hex); its
     * fields ("Rss:", ...) with a capital letter. */
    if (isxdigit((unsigned char)line[0]) && !isupper((unsigned char)line[0]))
      in_heap = strstr(line, "[heap]") != NULL;
    else if (in_heap && sscanf(line, "Rss: %lld kB", &kb) == 1)
      break;
  }
  fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

TEST_IMPL(idle_store_trims_a_short_burst) {
  /* A burst of ~2 MB, below the drain's trim minimum (8 MB): the writer
   * gives the heap back once it has been idle for its idle flush
   * (store_writer.c, MEMORY), not never. */
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, 20);
  static char payload[2000];
  uint64_t k = 0, trims = vh_store__trim_count(s);
  for (int i = 0; i < 32; i++) {
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    for (int j = 0; j < 32; j++) {
      k++;
      memset(payload, (int)('a' + k % 26), sizeof payload);
      ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
    }
    ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
    ASSERT_EQ(vh_store_submit(s, b, (uint64_t)i + 1), 0);
  }
  ASSERT_EQ(vh_store_wait_durable(s, 32), 0);
  for (int i = 0; i < 200 && vh_store__trim_count(s) == trims; i++)
    usleep(10000);
  ASSERT(vh_store__trim_count(s) > trims);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(drained_burst_gives_memory_back) {
  /* A burst of ~48 MB of batches (64 KB each, as a slice's batch is one
   * growing buffer) built on this thread, with a small long-lived block
   * allocated after each (as the trie's nodes are between a slice's
   * batches in the host): once the writer has written them, the freed
   * batch memory sits in holes of the heap that free() never gives back
   * by itself. The writer trims the heap when its queue drains after a
   * burst (store_writer.c, MEMORY), so the resident size comes back near
   * where it was. */
#ifdef VH_SANITIZE
  TEST_SKIP("the sanitizer's allocator keeps freed memory in quarantine");
#endif
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  enum { NB = 750, PER = 32 };
  static void *keep[NB];
  static char payload[2000];
  vh_store__pause_writer(s, 1);
  long long before = rss_bytes();
  ASSERT(before > 0);
  uint64_t k = 0;
  for (int i = 0; i < NB; i++) {
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    for (int j = 0; j < PER; j++) {
      k++;
      memset(payload, (int)('a' + k % 26), sizeof payload);
      ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
    }
    ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
    ASSERT_EQ(vh_store_submit(s, b, (uint64_t)i + 1), 0);
    keep[i] = malloc(48);
    ASSERT(keep[i] != NULL);
    memset(keep[i], 1, 48);
  }
  long long full = rss_bytes();
  ASSERT(full - before > (long long)40 << 20);
  vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, NB), 0);
  long long after = rss_bytes();
  fprintf(stderr, "RSS before %lld MB, queued %lld MB, drained %lld MB\n",
          before >> 20, full >> 20, after >> 20);
  /* The keepers (750 x 64 B) and what the writer allocates on the way may
   * stay; the ~48 MB of batches must not. */
  ASSERT(after - before < (long long)8 << 20);
  ASSERT(vh_store__trim_count(s) >= 1);
  close_ok(s);
  for (int i = 0; i < NB; i++) free(keep[i]);
  dir_cleanup();
}

TEST_IMPL(manifest_stays_bounded) {
  /* Every flush appends an edit to the MANIFEST, which an open reads
   * whole: RocksDB starts a new one past manifest_bytes (store.c,
   * TUNING, MANIFEST), so a host that runs for weeks does not leave an
   * open a MANIFEST as long as its history. */
  const char *dir = fresh_dir();
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = 0;
  o.idle_flush_ms = -1;
  o.manifest_bytes = 16 << 10;
  char *m = NULL;
  vh_store_t *s = open_opts(dir, &o, &m);
  for (uint64_t k = 1; k <= 400; k++) {
    put_durable(s, k, k, "node", "m");
    ASSERT_EQ(vh_store_flush(s, NULL), 0);
  }
  /* The MANIFEST that CURRENT names: the one it replaced can linger until
   * RocksDB next purges obsolete files (a CI run read 2 files, 71 KB). A
   * new MANIFEST begins with a snapshot of the live table files, so it
   * ends past manifest_bytes: ~36 KB here. */
  char path[512], name[128] = "";
  snprintf(path, sizeof path, "%s/db/CURRENT", dir);
  FILE *f = fopen(path, "r");
  ASSERT(f != NULL);
  ASSERT(fgets(name, sizeof name, f) != NULL);
  fclose(f);
  name[strcspn(name, "\n")] = '\0';
  snprintf(path, sizeof path, "%s/db/%s", dir, name);
  struct stat st;
  ASSERT_EQ(stat(path, &st), 0);
  int files = 0;
  long long all = db_files_bytes(dir, "MANIFEST-", "", &files);
  fprintf(stderr, "400 flushes: %s %lld bytes (%d MANIFEST file(s), %lld)\n",
          name, (long long)st.st_size, files, all);
  ASSERT(st.st_size < 64 << 10); /* RocksDB's default: ~140 KB, one file */
  expect_node(s, 1, "node");
  expect_node(s, 400, "node");
  close_ok(s);
  reopen_expect_node(dir, 200, "node");
  dir_cleanup();
}

TEST_IMPL(big_batches_unmapped_when_written) {
  /* A batch of 6 MB (a burst's slice at 1M keys, or a big one's) is
   * mapped on its own (store_writer.c, MALLOC'S MMAP THRESHOLD: the
   * writer fixes malloc's mmap threshold at 4 MB), so it is unmapped when
   * the writer frees it, not left in the heap between the blocks
   * allocated after it. glibc's sliding threshold would have put it in
   * the heap once a big block was freed (the 16 MB one here). malloc maps
   * a big block only when no free block of the heap fits, so this test
   * runs first, before the others leave big free blocks in the heap. */
#if !defined(__GLIBC__) || defined(VH_SANITIZE)
  TEST_SKIP("glibc's malloc only");
#else
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  static char payload[2000];
  char *big = malloc((size_t)16 << 20);
  ASSERT(big != NULL);
  memset(big, 1, (size_t)16 << 20);
  free(big);
  vh_store__pause_writer(s, 1);
  size_t mapped = mallinfo2().hblkhd;
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  uint64_t k = 0;
  for (int j = 0; j < 3000; j++) {
    k++;
    memset(payload, (int)('a' + k % 26), sizeof payload);
    ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
  }
  ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
  size_t now = mallinfo2().hblkhd;
  fprintf(stderr, "mapped before %zu KB, with the batch %zu KB\n", mapped >> 10,
          now >> 10);
  ASSERT(now >= mapped + 6000 * 1000);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, 1), 0);
  close_ok(s);
  dir_cleanup();
#endif
}

TEST_IMPL(open_thread_counts_no_compares) {
  /* RocksDB counts every key compare in a thread-local perf context
   * unless the thread's perf level is kDisable; the thread that opens the
   * store replays the WAL (a memtable insert is ~19 compares with the
   * Debian build's assertions) and then reads nodes. Nobody reads those
   * counters: open turns them off for its thread. */
  const char *dir = fresh_dir();
  rocksdb_set_perf_level(2 /* kEnableCount, a new thread's default */);
  vh_store_t *s = open_ok(dir, 1, 0);
  flood(s, 1, 1, 200);
  ASSERT_EQ(vh_store_wait_durable(s, 200), 0);
  rocksdb_perfcontext_t *pc = rocksdb_perfcontext_create();
  rocksdb_perfcontext_reset(pc);
  for (uint64_t k = 1; k <= 200; k++) {
    void *p;
    size_t n;
    ASSERT_EQ(vh_store_get_node(s, k, &p, &n, NULL), 0);
    free(p);
  }
  uint64_t cmp =
      rocksdb_perfcontext_metric(pc, rocksdb_user_key_comparison_count);
  if (cmp != 0)
    fprintf(stderr, "%llu key compares counted\n", (unsigned long long)cmp);
  ASSERT_EQ(cmp, 0);
  rocksdb_perfcontext_destroy(pc);
  close_ok(s);
  dir_cleanup();
}

TEST_IMPL(flood_flush_done_before_next_write) {
  /* Under a flood the writer asks for a flush once a group passes the
   * load bound, and goes on without waiting; but it starts no further
   * write while that flush runs, so a kill -9 at any moment replays at
   * most one flush's worth of WAL (the groups since the last flush),
   * never that plus the next groups. Idle flush off; group A (1.2 MB,
   * one group: over the bound) then group B (one small node). */
  const char *dir = fresh_dir();
  vh_store_t *s = open_flush(dir, -1);
  vh_store__pause_writer(s, 1);
  static char payload[2000];
  vh_batch_t *b;
  ASSERT_EQ(vh_batch_new(&b), 0);
  uint64_t k;
  for (k = 1; k <= 600; k++) {
    memset(payload, (int)('a' + k % 26), sizeof payload);
    ASSERT_EQ(vh_batch_put_node(b, k, payload, sizeof payload), 0);
  }
  k = 600;
  ASSERT_EQ(vh_batch_set_manifest(b, &k, sizeof k), 0);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  flood(s, 601, 2, 1);
  vh_store__pause_writer(s, 0);
  ASSERT_EQ(vh_store_wait_durable(s, 2), 0);
  /* B was written after A's flush was done: no memtable waits for one. */
  int imm = vh_store__imm_memtables(s);
  if (imm != 0) fprintf(stderr, "%d memtable(s) still to flush\n", imm);
  ASSERT_EQ(imm, 0);
  ASSERT(vh_store__flush_count(s) >= 1);
  close_ok(s);
  dir_cleanup();
}

VH_TEST_MAIN(
    /* First: it needs a heap without big free blocks (see the test). */
    TEST_ENTRY(big_batches_unmapped_when_written),
    TEST_ENTRY(burst_end_acked_after_flush), TEST_ENTRY(open_holds_compaction),
    TEST_ENTRY(compaction_hold_ends_before_a_stall),
    TEST_ENTRY(idle_flush_retires_wal), TEST_ENTRY(clean_close_compacts),
    TEST_ENTRY(clean_close_compacts_the_memtable_too),
    TEST_ENTRY(clean_close_leaves_compaction_to_a_long_session),
    TEST_ENTRY(no_idle_flush_keeps_wal), TEST_ENTRY(flood_keeps_wal_short),
    TEST_ENTRY(crc32c_vectors), TEST_ENTRY(crc32c_paths),
    TEST_ENTRY(open_missing_without_create),
    TEST_ENTRY(create_reopen_format_record), TEST_ENTRY(locked_by_another_open),
    TEST_ENTRY(new_store_keeps_its_rocksdb_lock),
    TEST_ENTRY(foreign_rocksdb_refused), TEST_ENTRY(bad_magic_refused),
    TEST_ENTRY(newer_format_refused), TEST_ENTRY(older_format_kept),
    TEST_ENTRY(put_get_delete_iterate), TEST_ENTRY(group_commit_merges_batches),
    TEST_ENTRY(order_preserved_merged), TEST_ENTRY(order_preserved_one_by_one),
    TEST_ENTRY(group_writes_node_keys_in_order),
    TEST_ENTRY(group_order_ids_of_many_bytes), TEST_ENTRY(submit_misuse),
    TEST_ENTRY(checksum_mismatch_detected), TEST_ENTRY(node_range_scan),
    TEST_ENTRY(scans_stop_at_their_tag),
    TEST_ENTRY(history_scans_leave_the_block_cache),
    TEST_ENTRY(write_failure_retried_in_order),
    TEST_ENTRY(close_gives_up_on_failing_writes),
    TEST_ENTRY(backpressure_never_blocks_submit),
    TEST_ENTRY(abandon_drops_at_close), TEST_ENTRY(secondary_reads_primary),
    TEST_ENTRY(secondary_checkpoint_while_the_primary_flushes),
    TEST_ENTRY(manifest_stays_bounded),
    TEST_ENTRY(clean_close_leaves_empty_wal), TEST_ENTRY(write_path_options),
    TEST_ENTRY(bottommost_level_is_lz4),
    TEST_ENTRY(zstd_store_reads_and_turns_lz4),
    TEST_ENTRY(format4_nodes_in_their_family),
    TEST_ENTRY(format3_store_keeps_its_nodes_beside_the_rest),
    TEST_ENTRY(big_groups_land_in_the_bottommost_level),
    TEST_ENTRY(format1_store_keeps_its_keys),
    TEST_ENTRY(drained_burst_gives_memory_back),
    TEST_ENTRY(idle_store_trims_a_short_burst),
    TEST_ENTRY(history_gc_keeps_l0_off_the_bottom),
    TEST_ENTRY(open_thread_counts_no_compares),
    TEST_ENTRY(flood_flush_done_before_next_write))
