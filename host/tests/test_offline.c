/*
 * test_offline.c - `vedhost fsck` and `vedhost inspect` (host/admin/fsck.c,
 * host/admin/inspect.c, host/admin/offline.c) on stores built and damaged from
 * C.
 *
 * Two modes in one executable:
 *  - no argument (ctest): unit tests that build a store, run
 *    vh_fsck_main / vh_inspect_main on it, damage it in the ways fsck must
 *    catch and check the exit codes (the messages are checked by
 *    spec/fsck_spec.lua, which drives the same damage through the tool
 *    mode below and the real vedhost binary);
 *  - a tool for the specs: `host_test_offline CMD DIR [ARGS]`:
 *      mkstore DIR        build a store in DIR (no host needed) and print
 *                         "name id" lines: the roots and some inner nodes
 *      del DIR ID         delete node ID (through the store)
 *      copy DIR SRC DST   store node SRC's bytes again as node DST
 *      orphan DIR         store a small subtree no root refers to; prints
 *                         its root id
 *      queue DIR ID       put the sweep key of ID (as a host dropping it)
 *      flip DIR ID        flip the last byte of node ID's value in RocksDB
 *                         (its CRC no longer matches)
 *      recode DIR ID      set node ID's kind byte to 0x1F with a correct
 *                         CRC (it reads, but does not decode)
 *    They open the store as its only writer: no host may run on DIR.
 */
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_bytes.h"
#include "vh_chrec.h"
#include "vh_codec.h"
#include "vh_crc32c.h"
#include "vh_flush.h"
#include "vh_manifest.h"
#include "vh_offline.h"
#include "vh_store.h"
#include "vh_store_raw.h"
#include "vh_test.h"

/* ---- building a store ---- */

static vh_val_t tv_str(const char *s) {
  return vh_strv(vh_str_new(s, strlen(s)));
}

/* t[k] = v (k a string key); v [stolen]. */
static int set_s(vh_tab_t **t, const char *k, vh_val_t v, uint64_t e) {
  vh_val_t key = tv_str(k);
  int rc = vh_tab_set(t, key, v, e);
  vh_val_release(key);
  return rc;
}

static int put_node(void *arg, uint64_t id, const void *bytes, size_t len) {
  return vh_batch_put_node(arg, id, bytes, len);
}

static int open_store(const char *dir, int create, vh_store_t **s) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = create;
  char *msg = NULL;
  int rc = vh_store_open(dir, &o, s, &msg);
  if (rc != 0) fprintf(stderr, "open %s: %s\n", dir, msg ? msg : "?");
  free(msg);
  return rc;
}

/* Submits b [stolen] as the next slice and waits until it is written. */
static int submit(vh_store_t *s, vh_batch_t *b) {
  static uint64_t seq;
  uint64_t q = ++seq + vh_store_durable_seq(s);
  int rc = vh_store_submit(s, b, q);
  return rc ? rc : vh_store_wait_durable(s, q);
}

static int first_child(void *arg, uint64_t id) {
  uint64_t *out = arg;
  if (*out == 0) *out = id;
  return 0;
}

/* The first id node id refers to, or 0. */
static uint64_t child_of(vh_store_t *s, uint64_t id) {
  void *p;
  size_t n;
  uint64_t c = 0;
  if (vh_store_get_node(s, id, &p, &n, NULL) != 0) return 0;
  vh_codec_child_ids(p, n, first_child, &c, NULL, NULL);
  free(p);
  return c;
}

/* Builds domains counter (nested tables) and big (5000 keys: a CHAMP of
 * several levels) plus a system root, writes them with a manifest whose
 * next id leaves 1000 free ids, and prints "name id" lines. */
static int mkstore(const char *dir, FILE *out) {
  vh_store_t *s;
  if (open_store(dir, 1, &s) != 0) return 1;
  uint64_t e = vh_edit_new();
  vh_tab_t *counter = vh_tab_new(e), *big = vh_tab_new(e), *sys = vh_tab_new(e);
  vh_tab_t *recent = vh_tab_new(e), *users = vh_tab_new(e);
  int rc = 0;
  for (int i = 1; i <= 50 && rc == 0; i++)
    rc = vh_tab_set(&recent, vh_int(i), vh_int(i * 10), e);
  for (int i = 1; i <= 30 && rc == 0; i++) {
    vh_tab_t *u = vh_tab_new(e), *tags = vh_tab_new(e);
    char name[32];
    snprintf(name, sizeof name, "user%d", i);
    rc |= set_s(&u, "name", tv_str(name), e);
    rc |= vh_tab_set(&tags, vh_int(1), tv_str("a"), e);
    rc |= vh_tab_set(&tags, vh_int(2), tv_str("b"), e);
    rc |= set_s(&u, "tags", vh_tabv(tags), e);
    rc |= vh_tab_set(&users, vh_int(i), vh_tabv(u), e);
  }
  rc |= set_s(&counter, "count", vh_int(42), e);
  rc |= set_s(&counter, "label", tv_str("hello"), e);
  rc |= set_s(&counter, "ratio", vh_float(0.5), e);
  rc |= set_s(&counter, "recent", vh_tabv(recent), e);
  rc |= set_s(&counter, "users", vh_tabv(users), e);
  for (int i = 1; i <= 5000 && rc == 0; i++) {
    char k[32];
    snprintf(k, sizeof k, "k%d", i);
    rc = set_s(&big, k, vh_int(i), e);
  }
  rc |= set_s(&sys, "next", vh_int(1), e);
  vh_batch_t *b = NULL;
  rc |= vh_batch_new(&b);
  uint64_t next = 1;
  vh_tab_t *roots[3] = {counter, big, sys};
  if (rc == 0) rc = vh_flush_collect(roots, 3, &next, put_node, b, NULL);
  vh_manifest_t m = {0};
  m.seq = 1;
  m.next_id = next + 1000;
  m.sys_root = vh_tab_id(sys);
  rc |= vh_manifest_add(&m, "counter", vh_tab_id(counter), 1);
  rc |= vh_manifest_add(&m, "big", vh_tab_id(big), 2);
  void *mb = NULL;
  size_t ml = 0;
  if (rc == 0) rc = vh_manifest_encode(&m, &mb, &ml);
  if (rc == 0) rc = vh_batch_set_manifest(b, mb, ml);
  free(mb);
  if (rc == 0) rc = submit(s, b);
  if (rc == 0) {
    vh_val_t v;
    fprintf(out, "counter %llu\n", (unsigned long long)vh_tab_id(counter));
    fprintf(out, "big %llu\n", (unsigned long long)vh_tab_id(big));
    fprintf(out, "__ved %llu\n", (unsigned long long)vh_tab_id(sys));
    vh_tab_get_str(counter, "recent", 6, &v);
    fprintf(out, "counter.recent %llu\n", (unsigned long long)vh_tab_id(v.u.t));
    vh_tab_get_str(counter, "users", 5, &v);
    vh_tab_get_int(v.u.t, 3, &v);
    fprintf(out, "counter.users.3 %llu\n",
            (unsigned long long)vh_tab_id(v.u.t));
    /* big's root table -> its CHAMP root -> a CHAMP child */
    uint64_t hroot = child_of(s, vh_tab_id(big));
    fprintf(out, "big.hash %llu\n", (unsigned long long)hroot);
    fprintf(out, "big.inner %llu\n", (unsigned long long)child_of(s, hroot));
    fprintf(out, "next_id %llu\n", (unsigned long long)m.next_id);
    fprintf(out, "free_id %llu\n", (unsigned long long)next + 10);
  }
  vh_manifest_free(&m);
  vh_tab_release(counter);
  vh_tab_release(big);
  vh_tab_release(sys);
  if (vh_store_close(s, NULL) != 0) rc = 1;
  return rc != 0;
}

/* Reads the manifest's next id (the free range starts 10 ids below it
 * after mkstore: mkstore leaves 1000). */
static uint64_t free_id_base(vh_store_t *s) {
  void *p;
  size_t n;
  vh_manifest_t m;
  uint64_t id = 0;
  if (vh_store_get_manifest(s, &p, &n, NULL) != 0) return 0;
  if (vh_manifest_decode(p, n, &m, NULL) == 0) {
    id = m.next_id - 500;
    vh_manifest_free(&m);
  }
  free(p);
  return id;
}

/* A subtree {x = {1, 2, 3}, y = "z"} written at ids no root refers to. */
static int orphan(const char *dir, FILE *out) {
  vh_store_t *s;
  if (open_store(dir, 0, &s) != 0) return 1;
  uint64_t e = vh_edit_new(), next = free_id_base(s);
  vh_tab_t *t = vh_tab_new(e), *x = vh_tab_new(e);
  int rc = 0;
  for (int i = 1; i <= 3; i++) rc |= vh_tab_set(&x, vh_int(i), vh_int(i), e);
  rc |= set_s(&t, "x", vh_tabv(x), e);
  rc |= set_s(&t, "y", tv_str("z"), e);
  vh_batch_t *b = NULL;
  rc |= vh_batch_new(&b);
  if (rc == 0 && next > 0)
    rc = vh_flush_collect(&t, 1, &next, put_node, b, NULL);
  if (rc == 0) rc = submit(s, b);
  if (rc == 0) fprintf(out, "%llu\n", (unsigned long long)vh_tab_id(t));
  vh_tab_release(t);
  vh_store_close(s, NULL);
  return rc != 0;
}

static int batch_op(const char *dir, const char *op, uint64_t a, uint64_t b) {
  vh_store_t *s;
  if (open_store(dir, 0, &s) != 0) return 1;
  vh_batch_t *bt = NULL;
  int rc = vh_batch_new(&bt);
  if (rc == 0 && strcmp(op, "del") == 0) rc = vh_batch_del_node(bt, a);
  if (rc == 0 && strcmp(op, "queue") == 0) rc = vh_batch_put_sweep(bt, a);
  if (rc == 0 && strcmp(op, "copy") == 0) {
    void *p;
    size_t n;
    rc = vh_store_get_node(s, a, &p, &n, NULL);
    if (rc == 0) rc = vh_batch_put_node(bt, b, p, n);
    if (rc == 0) free(p);
  }
  if (rc == 0)
    rc = submit(s, bt);
  else
    vh_batch_free(bt);
  vh_store_close(s, NULL);
  return rc != 0;
}

/* Raw RocksDB edit of node id's value: flip its last byte, or (recode)
 * set the kind byte of the payload to 0x1F and fix the CRC. */
static int raw_edit(const char *dir, uint64_t id, int recode) {
  char path[1024], key[9], *err = NULL;
  snprintf(path, sizeof path, "%s/db", dir);
  key[0] = 'A'; /* store format 3 and 4 */
  for (int i = 0; i < 8; i++) key[1 + i] = (char)(id >> (56 - 8 * i));
  vh_store_raw_t raw;
  rocksdb_t *db =
      vh_store_raw_open(path, VH_RAW_WRITE, &raw, &err) == 0 ? raw.db : NULL;
  rocksdb_column_family_handle_t *cf =
      db ? vh_store_raw_family(&raw, key, 9) : NULL;
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  size_t n = 0;
  char *v = db && !err ? rocksdb_get_cf(db, ro, cf, key, 9, &n, &err) : NULL;
  int rc = 1;
  if (v != NULL && n > 5) {
    if (recode) {
      v[5] = 0x1F;
      vh_le32_store((unsigned char *)v, vh_crc32c(0, v + 4, n - 4));
    } else {
      v[n - 1] ^= 0x5A;
    }
    rocksdb_put_cf(db, wo, cf, key, 9, v, n, &err);
    rc = err != NULL;
  }
  if (err) fprintf(stderr, "rocksdb: %s\n", err);
  rocksdb_free(err);
  rocksdb_free(v);
  rocksdb_readoptions_destroy(ro);
  rocksdb_writeoptions_destroy(wo);
  if (db) vh_store_raw_close(&raw);
  return rc;
}

static int tool(int argc, char **argv) {
  const char *cmd = argv[1], *dir = argv[2];
  uint64_t a = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
  uint64_t b = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
  if (strcmp(cmd, "mkstore") == 0) return mkstore(dir, stdout);
  if (strcmp(cmd, "orphan") == 0) return orphan(dir, stdout);
  if (strcmp(cmd, "flip") == 0) return raw_edit(dir, a, 0);
  if (strcmp(cmd, "recode") == 0) return raw_edit(dir, a, 1);
  if (strcmp(cmd, "del") == 0 || strcmp(cmd, "queue") == 0 ||
      strcmp(cmd, "copy") == 0)
    return batch_op(dir, cmd, a, b);
  fprintf(stderr, "unknown tool command %s\n", cmd);
  return 2;
}

/* ---- unit tests ---- */

static char tmp[256];

/* The "name id" lines of mkstore, parsed. */
typedef struct ids {
  uint64_t counter, big, recent, user3, big_hash, big_inner, free_id;
} ids_t;

static void build(ids_t *ids) {
  snprintf(tmp, sizeof tmp, "/tmp/vh_test_offline_XXXXXX");
  ASSERT(mkdtemp(tmp) != NULL);
  char path[300];
  snprintf(path, sizeof path, "%s/ids", tmp);
  FILE *f = fopen(path, "w+");
  ASSERT(f != NULL);
  ASSERT_EQ(mkstore(tmp, f), 0);
  rewind(f);
  char name[64];
  unsigned long long v;
  memset(ids, 0, sizeof *ids);
  while (fscanf(f, "%63s %llu", name, &v) == 2) {
    if (!strcmp(name, "counter")) ids->counter = v;
    if (!strcmp(name, "big")) ids->big = v;
    if (!strcmp(name, "counter.recent")) ids->recent = v;
    if (!strcmp(name, "counter.users.3")) ids->user3 = v;
    if (!strcmp(name, "big.hash")) ids->big_hash = v;
    if (!strcmp(name, "big.inner")) ids->big_inner = v;
    if (!strcmp(name, "free_id")) ids->free_id = v;
  }
  fclose(f);
  ASSERT(ids->recent && ids->user3 && ids->big_inner && ids->free_id);
}

static void cleanup(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  ASSERT_EQ(system(cmd), 0);
}

static int run_fsck(void) {
  char *argv[] = {"fsck", "--data", tmp, NULL};
  fflush(stdout);
  int rc = vh_fsck_main(3, argv);
  fflush(stdout);
  return rc;
}

static int run_inspect(const char *path) {
  char *argv[] = {"inspect", "--data", tmp, (char *)path, NULL};
  fflush(stdout);
  int rc = vh_inspect_main(path ? 4 : 3, argv);
  fflush(stdout);
  return rc;
}

TEST_IMPL(fsck_clean) {
  ids_t ids;
  build(&ids);
  ASSERT_EQ(run_fsck(), 0);
  ASSERT_EQ(vh_trie_live_nodes(), 0);
  cleanup();
}

TEST_IMPL(fsck_missing_node) {
  ids_t ids;
  build(&ids);
  ASSERT_EQ(batch_op(tmp, "del", ids.big_inner, 0), 0);
  ASSERT_EQ(run_fsck(), 1);
  ASSERT_EQ(batch_op(tmp, "del", ids.recent, 0), 0); /* a nested table */
  ASSERT_EQ(run_fsck(), 1);
  ASSERT_EQ(vh_trie_live_nodes(), 0);
  cleanup();
}

TEST_IMPL(fsck_unreachable_and_sweep) {
  ids_t ids;
  build(&ids);
  ASSERT_EQ(batch_op(tmp, "copy", ids.user3, ids.free_id), 0);
  ASSERT_EQ(run_fsck(), 1);
  ASSERT_EQ(batch_op(tmp, "del", ids.free_id, 0), 0);
  ASSERT_EQ(run_fsck(), 0);
  /* a dropped subtree: a leak until it is queued for sweeping */
  char path[300];
  snprintf(path, sizeof path, "%s/orphan", tmp);
  FILE *f = fopen(path, "w+");
  ASSERT(f != NULL);
  ASSERT_EQ(orphan(tmp, f), 0);
  rewind(f);
  unsigned long long root = 0;
  ASSERT_EQ(fscanf(f, "%llu", &root), 1);
  fclose(f);
  ASSERT_EQ(run_fsck(), 1);
  ASSERT_EQ(batch_op(tmp, "queue", root, 0), 0);
  ASSERT_EQ(run_fsck(), 0);
  /* queuing a live node is a problem too */
  ASSERT_EQ(batch_op(tmp, "queue", ids.recent, 0), 0);
  ASSERT_EQ(run_fsck(), 1);
  cleanup();
}

TEST_IMPL(fsck_corrupt) {
  ids_t ids;
  build(&ids);
  ASSERT_EQ(raw_edit(tmp, ids.user3, 0), 0);
  ASSERT_EQ(run_fsck(), 1);
  cleanup();
  build(&ids);
  ASSERT_EQ(raw_edit(tmp, ids.big_hash, 1), 0);
  ASSERT_EQ(run_fsck(), 1);
  ASSERT_EQ(vh_trie_live_nodes(), 0);
  cleanup();
}

/* A change record 'C' seq without its version 'V' seq (the store has no
 * version records), and one that does not decode: both are problems. */
static int put_chrec(uint64_t seq, const void *p, size_t n) {
  vh_store_t *s;
  if (open_store(tmp, 0, &s) != 0) return 1;
  vh_batch_t *bt = NULL;
  int rc = vh_batch_new(&bt);
  if (rc == 0) rc = vh_batch_put_chrec(bt, seq, p, n);
  if (rc == 0)
    rc = submit(s, bt);
  else
    vh_batch_free(bt);
  vh_store_close(s, NULL);
  return rc;
}

TEST_IMPL(fsck_change_records) {
  ids_t ids;
  build(&ids);
  vh_buf_t rec;
  vh_buf_init(&rec);
  vh_val_t k = vh_int(1);
  const char *open = NULL;
  ASSERT_EQ(vh_chrec_begin(&rec, 1), 0);
  ASSERT_EQ(vh_chrec_add(&rec, &open, "d", '+', &k, 1, vh_nil(), vh_int(2)), 0);
  ASSERT_EQ(vh_chrec_end(&rec, open), 0);
  ASSERT_EQ(run_fsck(), 0);
  ASSERT_EQ(put_chrec(2, rec.p, rec.len), 0); /* no 'V' 2 */
  ASSERT_EQ(run_fsck(), 1);
  cleanup();
  build(&ids);
  ASSERT_EQ(put_chrec(2, rec.p, rec.len - 1), 0); /* cut: malformed */
  ASSERT_EQ(run_fsck(), 1);
  vh_buf_free(&rec);
  ASSERT_EQ(vh_trie_live_nodes(), 0);
  cleanup();
}

TEST_IMPL(fsck_bad_dirs) {
  char *argv[] = {"fsck", "--data", "/nonexistent/vh_nowhere", NULL};
  ASSERT_EQ(vh_fsck_main(3, argv), 1);
  char *bad[] = {"fsck", "--bogus", NULL};
  ASSERT_EQ(vh_fsck_main(2, bad), 2);
  char *extra[] = {"fsck", "x", NULL};
  ASSERT_EQ(vh_fsck_main(2, extra), 2);
  /* a foreign RocksDB */
  snprintf(tmp, sizeof tmp, "/tmp/vh_test_offline_XXXXXX");
  ASSERT(mkdtemp(tmp) != NULL);
  char path[300], *err = NULL;
  snprintf(path, sizeof path, "%s/db", tmp);
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(o, 1);
  rocksdb_t *db = rocksdb_open(o, path, &err);
  ASSERT(db != NULL && err == NULL);
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_put(db, wo, "hello", 5, "x", 1, &err);
  rocksdb_writeoptions_destroy(wo);
  rocksdb_close(db);
  rocksdb_options_destroy(o);
  ASSERT_EQ(run_fsck(), 1);
  ASSERT_EQ(run_inspect(NULL), 1);
  cleanup();
}

TEST_IMPL(inspect_paths) {
  ids_t ids;
  build(&ids);
  ASSERT_EQ(run_inspect(NULL), 0);
  ASSERT_EQ(run_inspect("counter.recent.3"), 0);
  ASSERT_EQ(run_inspect("counter.users.3.tags"), 0);
  ASSERT_EQ(run_inspect("big.k4999"), 0);
  ASSERT_EQ(run_inspect("counter.nothing"), 1);
  ASSERT_EQ(run_inspect("nosuch"), 1);
  ASSERT_EQ(run_inspect("counter.count.x"), 1);
  ASSERT_EQ(run_inspect("counter..x"), 1);
  /* an unreadable node is an error, not nil */
  ASSERT_EQ(batch_op(tmp, "del", ids.user3, 0), 0);
  ASSERT_EQ(run_inspect("counter.users.3"), 1);
  ASSERT_EQ(run_inspect("counter.users.2"), 0);
  ASSERT_EQ(vh_trie_live_nodes(), 0);
  cleanup();
}

int main(int argc, char **argv) {
  if (argc >= 3) return tool(argc, argv);
  static const vh_test_entry_t tests[] = {
      TEST_ENTRY(fsck_clean),        TEST_ENTRY(fsck_change_records),
      TEST_ENTRY(fsck_missing_node), TEST_ENTRY(fsck_unreachable_and_sweep),
      TEST_ENTRY(fsck_corrupt),      TEST_ENTRY(fsck_bad_dirs),
      TEST_ENTRY(inspect_paths)};
  return vh_test__run(tests, sizeof tests / sizeof tests[0], argc, argv);
}
