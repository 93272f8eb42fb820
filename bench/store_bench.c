/*
 * store_bench.c - measurements behind the tuning of persist/store/store.c.
 *
 * Not a test: it prints numbers, and nothing here passes or fails.
 *
 *   store_bench compress   SST bytes for ~200-byte node payloads: no
 *                          compression, LZ4 (the default), zstd, zstd +
 *                          dictionary sizes
 *   store_bench commit     changed keys/s reaching disk through group
 *                          commit, sync and nosync
 *   store_bench open       open + manifest read of a 1M-node store, after a
 *                          clean close and after kill -9
 *   store_bench all        everything (default)
 *
 * Build (bench/ has no CMake target yet):
 *   cc -O2 -Ipersist/format -Ipersist/trie -Ipersist/trie/internal \
 *      -Ipersist/store -Ipersist/store/internal bench/store_bench.c \
 *      persist/{format,trie,store}/[a-z]*.c -lrocksdb -lzstd -lpthread -lm \
 *      -o /tmp/store_bench
 *
 * Payloads are synthetic: they imitate an encoded CHAMP node (a header, two
 * 32-bit bitmaps, a few key/value entries whose keys come from a small
 * vocabulary of field names and "user:NNNNNN" keys, integer timestamps and
 * short strings, and child ids close to the node's own id). Real nodes will
 * differ; rerun with the real encoder once it exists.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"
#include "vh_bytes.h"

#define BENCH_DIR "/tmp/vh_store_bench"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *vocab[] = {"count",  "recent", "name",       "email",
                              "status", "score",  "updated_at", "tags",
                              "owner",  "limit",  "created_at", "flags"};
static const char *strs[] = {"active",  "pending", "done",  "error", "idle",
                             "eu-west", "us-east", "admin", "guest"};

/* A plausible encoded node for id; returns its length (<= 400). */
static size_t make_node(unsigned char *p, uint64_t id) {
  size_t n = 0;
  p[n++] = 0x01; /* node type */
  uint32_t dmap = (uint32_t)rnd(), cmap = (uint32_t)rnd() & 0x0f0f;
  memcpy(p + n, &dmap, 4);
  n += 4;
  memcpy(p + n, &cmap, 4);
  n += 4;
  int entries = 8 + (int)(rnd() % 8);
  for (int e = 0; e < entries; e++) {
    char key[32];
    int kl;
    if (rnd() % 3 == 0)
      kl = snprintf(key, sizeof key, "user:%06u", (unsigned)(rnd() % 100000));
    else
      kl = snprintf(key, sizeof key, "%s", vocab[rnd() % 12]);
    p[n++] = 0x04; /* string key */
    p[n++] = (unsigned char)kl;
    memcpy(p + n, key, (size_t)kl);
    n += (size_t)kl;
    switch (rnd() % 3) {
      case 0: /* timestamp */
        p[n++] = 0x02;
        n += vh_varint_put(p + n, 1732400000000ull + rnd() % 100000000);
        break;
      case 1: /* small int */
        p[n++] = 0x02;
        n += vh_varint_put(p + n, rnd() % 1000);
        break;
      default: {
        const char *sv = strs[rnd() % 9];
        p[n++] = 0x05;
        p[n++] = (unsigned char)strlen(sv);
        memcpy(p + n, sv, strlen(sv));
        n += strlen(sv);
      }
    }
  }
  int kids = __builtin_popcount(cmap) / 2;
  for (int c = 0; c < kids; c++)
    n += vh_varint_put(p + n, id > 5000 ? id - rnd() % 5000 : rnd() % 5000);
  return n;
}

static long long dir_bytes(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  long long total = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name), sl = strlen(suffix);
    if (l < sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (stat(p, &st) == 0) total += st.st_size;
  }
  closedir(d);
  return total;
}

static vh_store_t *open_or_die(vh_store_opts_t *o) {
  vh_store_t *s;
  char *m;
  if (vh_store_open(BENCH_DIR, o, &s, &m) != 0) {
    fprintf(stderr, "open: %s\n", m);
    exit(1);
  }
  return s;
}

static void fresh(void) {
  if (system("rm -rf " BENCH_DIR) != 0) exit(1);
}

/* Fills the store with nodes 1..n (groups of 1000 per batch). */
static uint64_t fill(vh_store_t *s, uint64_t n, uint64_t seq, size_t *payload) {
  unsigned char buf[512];
  for (uint64_t id = 1; id <= n;) {
    vh_batch_t *b;
    vh_batch_new(&b);
    for (int i = 0; i < 1000 && id <= n; i++, id++) {
      size_t l = make_node(buf, id);
      if (payload) *payload += l;
      vh_batch_put_node(b, id, buf, l);
    }
    vh_batch_set_manifest(b, &seq, sizeof seq);
    vh_store_submit(s, b, ++seq);
  }
  vh_store_wait_durable(s, seq);
  return seq;
}

static void bench_compress(void) {
  struct {
    const char *name;
    int none, dict;
    size_t block;
  } cfg[] = {
      {"none", 1, -1, 0},
      {"lz4 (default)", 0, 0, 0},
      {"zstd", 0, -1, 0},
      {"zstd+dict4K", 0, 4096, 0},
      {"zstd+dict16K", 0, 16384, 0},
      {"zstd+dict64K", 0, 65536, 0},
      {"zstd 16K blocks", 0, -1, 16384},
      {"zstd+dict16K 16K blocks", 0, 16384, 16384},
  };
  const uint64_t n = 300000;
  printf("== compress: %llu nodes, SST bytes after full compaction\n",
         (unsigned long long)n);
  for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
    fresh();
    rng_state = 0x9E3779B97F4A7C15ull; /* same payloads for every config */
    vh_store_opts_t o;
    vh_store_opts_init(&o);
    o.create = 1;
    o.sync = 0;
    o.no_compression = cfg[c].none;
    o.zstd_dict_bytes = cfg[c].dict;
    o.block_bytes = cfg[c].block;
    vh_store_t *s = open_or_die(&o);
    size_t payload = 0;
    fill(s, n, 0, &payload);
    vh_store_flush(s, NULL);
    rocksdb_compact_range(s->db, NULL, 0, NULL, 0);
    long long sst = dir_bytes(BENCH_DIR "/db", ".sst");
    /* Random point reads (cold cache is not emulated: same process). */
    double t0 = now_s();
    for (int i = 0; i < 100000; i++) {
      void *p;
      size_t l;
      if (vh_store_get_node(s, 1 + rnd() % n, &p, &l, NULL) == 0) free(p);
    }
    double dt = now_s() - t0;
    printf(
        "  %-24s payload %6.1f MB  sst %6.1f MB  ratio %.2fx  "
        "get %.2f us\n",
        cfg[c].name, payload / 1e6, sst / 1e6, (double)payload / sst,
        dt / 100000 * 1e6);
    vh_store_close(s, NULL);
  }
}

/* Slices of `keys` changed keys (put new node + delete old), for secs. */
static void commit_run(int sync, int keys, double secs) {
  fresh();
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = sync;
  vh_store_t *s = open_or_die(&o);
  unsigned char buf[512];
  uint64_t seq = 0, next_id = 1;
  double t0 = now_s(), t;
  do {
    vh_batch_t *b;
    vh_batch_new(&b);
    for (int i = 0; i < keys; i++) {
      size_t l = make_node(buf, next_id);
      vh_batch_put_node(b, next_id, buf, l);
      if (next_id > 100000) vh_batch_del_node(b, next_id - 100000);
      next_id++;
    }
    vh_batch_set_manifest(b, &seq, sizeof seq);
    vh_store_submit(s, b, ++seq);
    t = now_s();
  } while (t - t0 < secs);
  vh_store_wait_durable(s, seq);
  double dt = now_s() - t0;
  uint64_t writes = vh_store__write_count(s);
  printf(
      "  %-6s %3d keys/slice: %8.0f slices/s %9.0f keys/s, %llu writes "
      "(%.0f slices/write)\n",
      sync ? "sync" : "nosync", keys, seq / dt, seq * keys / dt,
      (unsigned long long)writes, (double)seq / writes);
  vh_store_close(s, NULL);
}

static void bench_commit(void) {
  printf("== commit: loop thread submits as fast as it can, 3 s each\n");
  commit_run(1, 1, 3);
  commit_run(1, 16, 3);
  commit_run(0, 1, 3);
  commit_run(0, 16, 3);
}

static double time_open(void) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  double t0 = now_s();
  vh_store_t *s = open_or_die(&o);
  void *p;
  size_t l;
  if (vh_store_get_manifest(s, &p, &l, NULL) == 0) free(p);
  double dt = now_s() - t0;
  vh_store_close(s, NULL);
  return dt;
}

static void bench_open(void) {
  const uint64_t n = 1000000;
  printf("== open: %llu nodes\n", (unsigned long long)n);
  fresh();
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = 1;
  o.sync = 0;
  vh_store_t *s = open_or_die(&o);
  uint64_t seq = fill(s, n, 0, NULL);
  vh_store_close(s, NULL);
  printf("  clean close -> open + manifest: %.1f ms (wal %lld bytes)\n",
         time_open() * 1e3, dir_bytes(BENCH_DIR "/db", ".log"));
  /* kill -9 in the middle of steady updates (nosync: WAL in page cache). */
  pid_t pid = fork();
  if (pid == 0) {
    vh_store_t *c = open_or_die(&o);
    unsigned char buf[512];
    for (uint64_t k = seq + 1;; k++) {
      vh_batch_t *b;
      vh_batch_new(&b);
      for (int i = 0; i < 64; i++) {
        uint64_t id = 1 + rnd() % n;
        vh_batch_put_node(b, id, buf, make_node(buf, id));
      }
      vh_batch_set_manifest(b, &k, sizeof k);
      vh_store_submit(c, b, k);
    }
  }
  sleep(3);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  long long wal = dir_bytes(BENCH_DIR "/db", ".log");
  printf(
      "  kill -9 during updates -> open + manifest: %.1f ms (wal %lld "
      "bytes)\n",
      time_open() * 1e3, wal);
  printf("  disk after all: %.1f MB sst\n",
         dir_bytes(BENCH_DIR "/db", ".sst") / 1e6);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "all";
  int all = strcmp(what, "all") == 0;
  if (all || strcmp(what, "compress") == 0) bench_compress();
  if (all || strcmp(what, "commit") == 0) bench_commit();
  if (all || strcmp(what, "open") == 0) bench_open();
  fresh();
  return 0;
}
