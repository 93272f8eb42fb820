/*
 * test_depth.c - a store that already holds a state deeper than the
 * nesting limit (persist/format/vh_limits.h), as an older vedhost could write
 * it (a "poison pill" that crashed every run before the limit). Nothing may
 * crash or overflow the C stack:
 *   - writing it (vh_flush_collect) and freeing it are iterative;
 *   - a host runs on it: a handler walks to the bottom through proxies,
 *     writes a scalar there (every node on the path is copied: the
 *     iterative make_transient), is refused when it stores a table there,
 *     and the write survives a restart;
 *   - fsck completes and reports the depth; export refuses it with one
 *     line.
 * DEEP is several times what the old recursive code survived (~120k).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_export_cmd.h"
#include "vh_flush.h"
#include "vh_limits.h"
#include "vh_manifest.h"
#include "vh_offline.h"
#include "vh_store.h"
#include "vh_test.h"
#include "host_util.h"

#define DEEP 200000L

static int put_node(void *arg, uint64_t id, const void *bytes, size_t len) {
  return vh_batch_put_node(arg, id, bytes, len);
}

/* Writes domain "deep" = { d = { d = ... { leaf = true } } } with DEEP
 * tables below the state table into a new store at datadir. */
static void write_deep_store(void) {
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  vh_str_t *leaf = vh_str_new("leaf", 4), *d = vh_str_new("d", 1);
  vh_val_t k;
  k.type = VH_TSTR;
  k.u.s = leaf;
  ASSERT_EQ(vh_tab_set(&t, k, vh_bool(1), edit), 0);
  k.u.s = d;
  for (long i = 0; i < DEEP; i++) {
    vh_tab_t *up = vh_tab_new(edit);
    vh_val_t v;
    v.type = VH_TTAB;
    v.u.t = t;
    ASSERT_EQ(vh_tab_set(&up, k, v, edit), 0);
    t = up;
  }
  vh_str_release(leaf);
  vh_str_release(d);

  vh_store_opts_t so;
  vh_store_opts_init(&so);
  so.create = 1;
  so.sync = 1;
  vh_store_t *s = NULL;
  char *msg = NULL;
  ASSERT_EQ(vh_store_open(datadir, &so, &s, &msg), 0);
  vh_batch_t *b = NULL;
  ASSERT_EQ(vh_batch_new(&b), 0);
  uint64_t next_id = 1;
  ASSERT_EQ(vh_flush_collect(&t, 1, &next_id, put_node, b, NULL), 0);
  vh_manifest_t m;
  memset(&m, 0, sizeof m);
  m.seq = 1;
  m.next_id = next_id;
  ASSERT_EQ(vh_manifest_add(&m, "deep", vh_tab_id(t), 1), 0);
  void *mb = NULL;
  size_t ml = 0;
  ASSERT_EQ(vh_manifest_encode(&m, &mb, &ml), 0);
  ASSERT_EQ(vh_batch_set_manifest(b, mb, ml), 0);
  free(mb);
  ASSERT_EQ(vh_store_submit(s, b, 1), 0);
  ASSERT_EQ(vh_store_wait_durable(s, 1), 0);
  ASSERT_EQ(vh_store_close(s, &msg), 0);
  vh_manifest_free(&m);
  vh_tab_release(t); /* iterative release of DEEP tables */
  ASSERT_EQ(vh_trie_live_nodes(), 0);
}

static int run_host(const char *src) {
  vh_host_opts_t o;
  vh_host_opts_default(&o);
  o.data_dir = datadir;
  o.watch = 0;
  o.log_level = VH_LOG_ERROR;
  o.handler_timeout_ms = 60000; /* a loaded machine: bound only a hang */
  char err[512];
  vh_host_t *h = NULL;
  int rc = vh_host_new(&o, &h, err, sizeof err);
  if (rc != 0) fprintf(stderr, "vh_host_new: %s\n", err);
  ASSERT_EQ(rc, 0);
  rc = vh_host_load(h, write_file("t.lua", src), err, sizeof err);
  if (rc != 0) fprintf(stderr, "vh_host_load: %s\n", err);
  ASSERT_EQ(rc, 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  vh_host_free(h);
  return code;
}

/* Exit 0 only if every check in start holds; exit 3 otherwise. */
static const char *const first_run =
    "local ved = require 'ved'\n"
    "ved.domain 'deep' {\n"
    "  start = function(s)\n"
    "    local p, n = s, 0\n"
    "    while p.d ~= nil do p, n = p.d, n + 1 end\n"
    "    local ok = n == 200000 and p.leaf == true\n"
    "    p.leaf = 42 -- copies all the nodes of the path\n"
    "    local stored, err = pcall(function() p.x = {} end)\n"
    "    ok = ok and not stored and\n"
    "      err:find('nested deeper than 20000 levels', 1, true) ~= nil\n"
    "    ved.exit(ok and 0 or 3)\n"
    "  end,\n"
    "}\n";

static const char *const second_run =
    "local ved = require 'ved'\n"
    "ved.domain 'deep' {\n"
    "  start = function(s)\n"
    "    local p = s\n"
    "    while p.d ~= nil do p = p.d end\n"
    "    local ok = p.leaf == 42\n"
    "    s.d = nil -- making it shallow again is allowed\n"
    "    ved.exit(ok and 0 or 3)\n"
    "  end,\n"
    "}\n";

TEST_IMPL(deep_old_store) {
  mk_tmpdir();
  write_deep_store();

  /* fsck walks it (linear in nodes) and reports the depth. */
  char *fsck_argv[] = {"fsck", "--data", datadir, NULL};
  fflush(stdout);
  ASSERT_EQ(vh_fsck_main(3, fsck_argv), 1);
  fflush(stdout);
  /* export refuses it (import would) with one line. */
  char out[400];
  snprintf(out, sizeof out, "%s/x.vx", tmpdir);
  char *export_argv[] = {"export", "--data", datadir, out, NULL};
  ASSERT_EQ(vh_export_main(4, export_argv), 1);
  ASSERT(access(out, F_OK) != 0);

  ASSERT_EQ(run_host(first_run), 0);
  ASSERT_EQ(run_host(second_run), 0);
  ASSERT_EQ(vh_fsck_main(3, fsck_argv), 0);

  rm_tmpdir();
}

/* `host_test_depth --write DIR`: only write the deep store into DIR/db
 * (to try other vedhost builds on it by hand). */
int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--write") == 0) {
    snprintf(datadir, sizeof datadir, "%s", argv[2]);
    write_deep_store();
    return 0;
  }
  static const vh_test_entry_t tests[] = {TEST_ENTRY(deep_old_store)};
  return vh_test__run(tests, 1, argc, argv);
}
