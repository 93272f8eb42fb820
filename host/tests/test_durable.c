/*
 * test_durable.c - unit tests of the host's persistence
 * (host/runtime/durable.c) driven from C: the output gate holds a call's reply
 * until its slice is durable (writer paused, then resumed), the state and the
 * call survive a restart, a dropped never-loaded subtree is swept from disk,
 * and a damaged manifest or a newer format refuses vh_host_new with a clear
 * message.
 *
 * The binary also serves spec/persist_restart_spec.lua as a helper that
 * damages a stopped host's data dir through RocksDB directly:
 *
 *   host_test_durable --corrupt-manifest DIR   flip a byte of the manifest
 *   host_test_durable --newer-manifest DIR     manifest format version 99,
 *                                              checksum made valid again
 *   host_test_durable --newer-store DIR        store format record version 99
 *
 * Scripts arm a `giveup` timer that exits with 9, so a broken host fails
 * the test instead of hanging it (30 s: only a hang bound; the sweep test
 * took over 5 s under a load average of 25).
 */
#include <rocksdb/c.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_bytes.h"
#include "vh_codec.h"
#include "vh_crc32c.h"
#include "vh_log.h"
#include "vh_manifest.h"
#include "vh_store.h"
#include "vh_store_raw.h"
#include "vh_test.h"
#include "host_util.h"

/* --retain 0 for the hosts made while set (a test of collection without
 * history: nothing keeps the dropped nodes for older versions). */
static int retain_zero;

/* vh_host_new on datadir: 0 and *out, or the error and its message. */
static int try_host(vh_host_t **out, char *err, size_t cap) {
  vh_host_opts_t o;
  vh_host_opts_default(&o);
  o.retain.zero = retain_zero;
  o.data_dir = datadir;
  o.watch = 0;
  o.log_level = VH_LOG_ERROR;
  /* Fill handlers write 20000 keys; under ASan on a loaded 2-core machine
   * that passed the default 1 s budget. The watchdog is not under test. */
  o.handler_timeout_ms = 30000;
  return vh_host_new(&o, out, err, cap);
}

static vh_host_t *new_host(const char *src) {
  char err[512];
  vh_host_t *h = NULL;
  int rc = try_host(&h, err, sizeof err);
  if (rc != 0) fprintf(stderr, "vh_host_new: %s\n", err);
  ASSERT_EQ(rc, 0);
  rc = vh_host_load(h, write_file("t.lua", src), err, sizeof err);
  if (rc != 0) fprintf(stderr, "vh_host_load: %s\n", err);
  ASSERT_EQ(rc, 0);
  return h;
}

/* ---- the output gate ---- */

typedef struct gate_test {
  vh_host_t *h;
  int replied;   /* the reply callback ran */
  int64_t value; /* its integer reply */
  int early;     /* it ran while the writer was paused */
  int paused;    /* the writer is paused now */
  uv_timer_t t;  /* resumes the writer */
} gate_test_t;

static void gate_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  gate_test_t *g = arg;
  g->replied = 1;
  g->early = g->paused;
  g->value = err == NULL && reply.type == VH_TINT ? reply.u.i : -1;
  vh_host_stop(g->h, 0);
}

static void gate_resume(uv_timer_t *t) {
  gate_test_t *g = t->data;
  /* The reply waits for the paused writer, however long it takes. */
  ASSERT_EQ(g->replied, 0);
  vh_durable_stats_t ds;
  vh_durable__stats(g->h, &ds);
  if (ds.held == 0) { /* a loaded machine: the call has not run yet */
    uv_timer_start(t, gate_resume, 50, 0);
    return;
  }
  ASSERT_GE(ds.held, 1);
  ASSERT_GT(ds.submitted, ds.durable);
  g->paused = 0;
  vh_store__pause_writer(vh_durable__store(g->h), 0);
  t->data = NULL; /* sched.c's close callback frees timers' data */
}

static const char *const kv_src =
    "local ved = require 'ved'\n"
    "ved.domain 'kv' {\n"
    "  state = { v = 0, big = {} },\n"
    "  start = function(state, ctx) ctx:after(30000, 'giveup') end,\n"
    "  on = {\n"
    "    put = function(state, p) state.v = p; return p end,\n"
    "    get = function(state) return state.v end,\n"
    "    fill = function(state, n)\n"
    "      for i = 1, n do state.big['k' .. i] = { i, tostring(i) } end\n"
    "    end,\n"
    "    drop = function(state) state.big = nil end,\n"
    "    giveup = function() ved.exit(9) end,\n"
    "  },\n"
    "}\n";

TEST_IMPL(gate_holds_reply_until_durable) {
  mk_tmpdir();
  vh_host_t *h = new_host(kv_src);
  gate_test_t g;
  memset(&g, 0, sizeof g);
  g.h = h;
  g.paused = 1;
  vh_store__pause_writer(vh_durable__store(h), 1);
  ASSERT_EQ(vh_host_call(h, "kv", "put", vh_int(77), gate_reply, &g), 0);
  uv_timer_init(&h->loop, &g.t);
  g.t.data = &g;
  uv_timer_start(&g.t, gate_resume, 200, 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(g.replied, 1);
  ASSERT_EQ(g.early, 0);
  ASSERT_EQ(g.value, 77);
  vh_host_free(h);

  /* A restart sees the acknowledged write. */
  h = new_host(kv_src);
  gate_test_t g2;
  memset(&g2, 0, sizeof g2);
  g2.h = h;
  ASSERT_EQ(vh_host_call(h, "kv", "get", vh_nil(), gate_reply, &g2), 0);
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(g2.value, 77);
  vh_host_free(h);
  rm_tmpdir();
}

/* when_durable (the gate the HTTP ingress uses for GET state): asked
 * after a write while the writer is paused, it must wait for the resume. */
typedef struct wd_test {
  gate_test_t g;
  int fired, durable, early;
  uv_timer_t ask;
} wd_test_t;

static void wd_fn(void *arg, int durable) {
  wd_test_t *w = arg;
  w->fired++;
  w->durable = durable;
  w->early = w->g.paused;
}

static void wd_ask(uv_timer_t *t) {
  wd_test_t *w = t->data;
  vh_durable_stats_t ds;
  vh_durable__stats(w->g.h, &ds);
  if (ds.held == 0) { /* ask after the write ran, however long it takes */
    uv_timer_start(t, wd_ask, 50, 0);
    return;
  }
  ASSERT_EQ(vh_host__when_durable(w->g.h, wd_fn, w), 0);
  t->data = NULL; /* sched.c's close callback frees timers' data */
  /* Only now may the writer resume. Two timers polling side by side raced
   * under load: the resume one could see the write first, the batch became
   * durable, the put's reply stopped the host and the ask never ran. */
  w->g.t.data = &w->g;
  uv_timer_start(&w->g.t, gate_resume, 200, 0);
}

TEST_IMPL(when_durable_waits_for_the_writer) {
  mk_tmpdir();
  vh_host_t *h = new_host(kv_src);
  wd_test_t w;
  memset(&w, 0, sizeof w);
  w.g.h = h;
  w.g.paused = 1;
  vh_store__pause_writer(vh_durable__store(h), 1);
  ASSERT_EQ(vh_host_call(h, "kv", "put", vh_int(5), gate_reply, &w.g), 0);
  uv_timer_init(&h->loop, &w.ask);
  w.ask.data = &w;
  uv_timer_start(&w.ask, wd_ask, 50, 0);
  uv_timer_init(&h->loop, &w.g.t); /* started by wd_ask */
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(w.fired, 1);
  ASSERT_EQ(w.durable, 1);
  ASSERT_EQ(w.early, 0);
  ASSERT_EQ(w.g.early, 0);
  vh_host_free(h);
  rm_tmpdir();
}

/* ---- sweeping a dropped subtree that was never loaded ---- */

static void stop_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  (void)reply;
  ASSERT(err == NULL);
  vh_host_stop((vh_host_t *)arg, 0);
}

/* Run one call to completion on a fresh host over datadir. */
static void run_call(const char *event, vh_val_t payload) {
  vh_host_t *h = new_host(kv_src);
  ASSERT_EQ(vh_host_call(h, "kv", event, payload, stop_reply, h), 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(code, 0);
  vh_host_free(h);
}

/* Nodes in the stopped store at datadir. */
static size_t count_nodes(void) {
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  vh_store_t *s = NULL;
  char *m = NULL;
  ASSERT_EQ(vh_store_open(datadir, &so, &s, &m), 0);
  vh_store_iter_t *it = NULL;
  ASSERT_EQ(vh_store_iter_new(s, &it, &m), 0);
  uint64_t id;
  size_t size, n = 0;
  while (vh_store_iter_next(it, &id, &size, &m) == 1) n++;
  vh_store_iter_free(it);
  ASSERT_EQ(vh_store_close(s, &m), 0);
  return n;
}

typedef struct sweep_test {
  vh_host_t *h;
  int dropped; /* the drop call replied */
  uv_timer_t t;
} sweep_test_t;

static void sweep_dropped(void *arg, int code, vh_val_t reply,
                          const char *err) {
  (void)code;
  (void)reply;
  ASSERT(err == NULL);
  ((sweep_test_t *)arg)->dropped = 1;
}

/* Stops the host once the drop replied and nothing is left to sweep or
 * to write. */
static void sweep_poll(uv_timer_t *t) {
  sweep_test_t *st = t->data;
  vh_durable_stats_t ds;
  vh_durable__stats(st->h, &ds);
  if (st->dropped && ds.sweep_pending == 0 && ds.lag_slices == 0) {
    uv_timer_stop(t);
    t->data = NULL; /* sched.c's close callback frees timers' data */
    vh_host_stop(st->h, 0);
  }
}

TEST_IMPL(dropped_subtree_is_swept) {
  mk_tmpdir();
  retain_zero = 1;           /* with history, older versions keep the subtree */
  run_call("get", vh_nil()); /* the empty state on disk */
  size_t base = count_nodes();
  run_call("fill", vh_int(20000));
  size_t full = count_nodes();
  ASSERT_GT(full, base + 1000);
  /* Restart: big is a stub, never loaded; dropping it leaves a sweep key
   * in the slice's batch, and the sweeper deletes the subtree afterwards
   * in bounded steps, without anything else waking the loop. */
  sweep_test_t st;
  memset(&st, 0, sizeof st);
  st.h = new_host(kv_src);
  ASSERT_EQ(vh_host_call(st.h, "kv", "drop", vh_nil(), sweep_dropped, &st), 0);
  uv_timer_init(&st.h->loop, &st.t);
  st.t.data = &st;
  uv_timer_start(&st.t, sweep_poll, 100, 100);
  int code = -1;
  ASSERT_EQ(vh_host_run(st.h, &code), 0);
  ASSERT_EQ(code, 0);
  vh_host_free(st.h);
  size_t after = count_nodes();
  ASSERT_LE(after, base + 20); /* (timers the scripts armed add a few) */
  retain_zero = 0;
  rm_tmpdir();
}

/* ---- refused data dirs ---- */

/* Open DIR/db with plain RocksDB, read key k, let fix change the value,
 * write it back. */
static int raw_edit(const char *dir, char k,
                    void (*fix)(unsigned char *v, size_t n)) {
  char path[512];
  snprintf(path, sizeof path, "%s/db", dir);
  char *err = NULL;
  vh_store_raw_t db;
  if (vh_store_raw_open(path, VH_RAW_WRITE, &db, &err) != 0) {
    fprintf(stderr, "open %s: %s\n", path, err);
    return 1;
  }
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  size_t n = 0;
  char *v = rocksdb_get_cf(db.db, ro, vh_store_raw_family(&db, &k, 1), &k, 1,
                           &n, &err);
  if (err || !v) {
    fprintf(stderr, "get %c: %s\n", k, err ? err : "absent");
    return 1;
  }
  fix((unsigned char *)v, n);
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(wo, 1);
  rocksdb_put_cf(db.db, wo, vh_store_raw_family(&db, &k, 1), &k, 1, v, n, &err);
  rocksdb_free(v);
  rocksdb_writeoptions_destroy(wo);
  rocksdb_readoptions_destroy(ro);
  vh_store_raw_close(&db);
  if (err) {
    fprintf(stderr, "put: %s\n", err);
    return 1;
  }
  return 0;
}

static void flip_payload(unsigned char *v, size_t n) {
  if (n > 20) v[20] ^= 0x5a; /* inside the manifest: the crc catches it */
}

/* Manifest value: [crc32c][kind][payload "VHMF" u32 version ...]. */
static void newer_manifest(unsigned char *v, size_t n) {
  if (n < 13) return;
  v[9] = 99;
  v[10] = v[11] = v[12] = 0;
  vh_le32_store(v, vh_crc32c(0, v + 4, n - 4));
}

/* Format record: "VEDHOST\0" u32 version. */
static void newer_store(unsigned char *v, size_t n) {
  if (n >= 12) v[8] = 99;
}

static void make_stored_state(void) {
  run_call("put", vh_int(5));
}

TEST_IMPL(corrupt_manifest_is_refused) {
  mk_tmpdir();
  make_stored_state();
  ASSERT_EQ(raw_edit(datadir, 'M', flip_payload), 0);
  vh_host_t *h = NULL;
  char err[1024];
  ASSERT_EQ(try_host(&h, err, sizeof err), VH_HOST_EDATADIR);
  ASSERT(h == NULL);
  ASSERT(strstr(err, "manifest") != NULL);
  ASSERT(strstr(err, "checksum mismatch") != NULL);
  if (!strstr(err, datadir)) fprintf(stderr, "%s\n", err);
  ASSERT(strstr(err, datadir) != NULL);
  rm_tmpdir();
}

TEST_IMPL(newer_formats_are_refused) {
  mk_tmpdir();
  make_stored_state();
  ASSERT_EQ(raw_edit(datadir, 'M', newer_manifest), 0);
  vh_host_t *h = NULL;
  char err[1024];
  ASSERT_EQ(try_host(&h, err, sizeof err), VH_HOST_EDATADIR);
  ASSERT(strstr(err, "newer") != NULL);
  rm_tmpdir();

  mk_tmpdir();
  make_stored_state();
  ASSERT_EQ(raw_edit(datadir, 'F', newer_store), 0);
  ASSERT_EQ(try_host(&h, err, sizeof err), VH_HOST_EDATADIR);
  ASSERT(strstr(err, "newer") != NULL);
  rm_tmpdir();
}

/* ---- write failures: served from memory, replies held, then sent ---- */

typedef struct fail_test {
  vh_host_t *h;
  int64_t value;
  uint64_t errors; /* failed attempts seen when the reply came */
} fail_test_t;

static void fail_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  fail_test_t *f = arg;
  f->value = err == NULL && reply.type == VH_TINT ? reply.u.i : -1;
  vh_durable_stats_t ds;
  vh_durable__stats(f->h, &ds);
  f->errors = ds.errors;
  vh_host_stop(f->h, 0);
}

TEST_IMPL(write_failures_hold_replies_then_recover) {
  mk_tmpdir();
  fail_test_t f;
  memset(&f, 0, sizeof f);
  f.h = new_host(kv_src);
  vh_store__fail_writes(vh_durable__store(f.h), 3);
  ASSERT_EQ(vh_host_call(f.h, "kv", "put", vh_int(31), fail_reply, &f), 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(f.h, &code), 0);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(f.value, 31);
  ASSERT_GE(f.errors, 3); /* sent only after the failed attempts */
  vh_host_free(f.h);
  f.h = new_host(kv_src);
  ASSERT_EQ(vh_host_call(f.h, "kv", "get", vh_nil(), fail_reply, &f), 0);
  ASSERT_EQ(vh_host_run(f.h, &code), 0);
  ASSERT_EQ(f.value, 31);
  vh_host_free(f.h);
  rm_tmpdir();
}

/* ---- backpressure: the loop never waits on the store ---- */

/* With a queue limit of 1 byte and the writer paused, the first slice's
 * batch fills the queue: the host holds (a second call, made later,
 * waits queued and is not run) while the loop keeps turning; resuming the
 * writer ends the hold and the call runs. Before the fix the loop blocked
 * inside vh_store_submit and the probe timer never ran. */
typedef struct hold_test {
  vh_host_t *h;
  int replies;    /* replies received, in order */
  int64_t got[2]; /* their values */
  int probed;     /* probe runs: 1 made the second call, 2 probed */
  int held;       /* vh_host__accepting said no then */
  int queued;     /* the second call was still queued, not run */
  uv_timer_t t;
} hold_test_t;

static void hold_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  hold_test_t *t = arg;
  ASSERT(err == NULL);
  t->got[t->replies++] = reply.type == VH_TINT ? reply.u.i : -1;
  if (t->replies == 2) vh_host_stop(t->h, 0);
}

static void hold_probe(uv_timer_t *tm) {
  hold_test_t *t = tm->data;
  char why[256] = "";
  if (t->h->slice_seq < 1) return; /* the loop's clock may be stale */
  if (t->probed++ == 0) {          /* first: a call while the queue is full */
    ASSERT_EQ(vh_host_call(t->h, "kv", "put", vh_int(2), hold_reply, t), 0);
    return;
  }
  t->held = !vh_host__accepting(t->h, why, sizeof why);
  ASSERT(strstr(why, "store backpressure: hold") != NULL);
  t->queued = t->h->calls != NULL && t->replies == 0;
  vh_store__pause_writer(vh_durable__store(t->h), 0);
  uv_timer_stop(tm);
  tm->data = NULL; /* sched.c's close callback frees timers' data */
}

TEST_IMPL(full_queue_holds_slices_without_blocking) {
  mk_tmpdir();
  setenv("VEDHOST_TEST_QUEUE_BYTES", "1", 1);
  vh_host_t *h = new_host(kv_src);
  unsetenv("VEDHOST_TEST_QUEUE_BYTES");
  hold_test_t t;
  memset(&t, 0, sizeof t);
  t.h = h;
  vh_store__pause_writer(vh_durable__store(h), 1);
  ASSERT_EQ(vh_host_call(h, "kv", "put", vh_int(1), hold_reply, &t), 0);
  uv_timer_init(&h->loop, &t.t);
  t.t.data = &t;
  uv_timer_start(&t.t, hold_probe, 100, 200);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(t.probed, 2);
  ASSERT_EQ(t.held, 1);
  ASSERT_EQ(t.queued, 1);
  ASSERT_EQ(t.replies, 2);
  ASSERT_EQ(t.got[0], 1);
  ASSERT_EQ(t.got[1], 2);
  vh_host_free(h);
  rm_tmpdir();
}

/* A stop waits for the store with the loop turning; a second SIGTERM stops
 * at once, drops what is unwritten and exits 3. */
typedef struct sig_test {
  vh_host_t *h;
  int step;
  int waited; /* the loop still ran after the first SIGTERM */
  uv_timer_t t;
} sig_test_t;

static void sig_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  (void)reply;
  int *n = arg;
  if (err) (*n)++; /* dropped: answered with an error, never "ok" */
}

static void sig_step(uv_timer_t *tm) {
  sig_test_t *t = tm->data;
  if (t->h->slice_seq < 1) return; /* the loop's clock may be stale */
  if (t->step == 0) {
    raise(SIGTERM);
  } else if (t->step == 1) {
    t->waited = t->h->phase == VH_PHASE_RUN && t->h->stop_requested;
    raise(SIGTERM);
    tm->data = NULL;
    uv_timer_stop(tm);
  }
  t->step++;
}

TEST_IMPL(second_sigterm_drops_unwritten_slices) {
  mk_tmpdir();
  int errs = 0;
  {
    vh_host_t *h = new_host(kv_src);
    sig_test_t t;
    memset(&t, 0, sizeof t);
    t.h = h;
    vh_store__pause_writer(vh_durable__store(h), 1);
    ASSERT_EQ(vh_host_call(h, "kv", "put", vh_int(5), sig_reply, &errs), 0);
    uv_timer_init(&h->loop, &t.t);
    t.t.data = &t;
    uv_timer_start(&t.t, sig_step, 100, 100);
    int code = -1;
    ASSERT_EQ(vh_host_run(h, &code), 0);
    ASSERT_EQ(t.waited, 1);
    ASSERT_EQ(code, 3);
    ASSERT_EQ(errs, 1);
    vh_host_free(h);
  }
  /* The store kept its last durable slice: the put is not there. */
  fail_test_t f;
  memset(&f, 0, sizeof f);
  f.h = new_host(kv_src);
  ASSERT_EQ(vh_host_call(f.h, "kv", "get", vh_nil(), fail_reply, &f), 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(f.h, &code), 0);
  ASSERT_EQ(f.value, 0);
  vh_host_free(f.h);
  rm_tmpdir();
}

/* A first SIGTERM that has to wait for the store says what it waits for,
 * also when the queue is not full (no hold): here the writer is paused
 * with one slice queued, and the second SIGTERM comes 2.5 s later. */
typedef struct wait_test {
  vh_host_t *h;
  int step;
  int64_t first_ns;
  uv_timer_t t;
} wait_test_t;

static void wait_step(uv_timer_t *tm) {
  wait_test_t *t = tm->data;
  if (t->h->slice_seq < 1) return; /* the loop's clock may be stale */
  if (t->step == 0) {
    t->first_ns = vh_host__mono_ns();
    raise(SIGTERM);
    t->step++;
  } else if (vh_host__mono_ns() - t->first_ns > 2500000000LL) {
    raise(SIGTERM);
    tm->data = NULL;
    uv_timer_stop(tm);
  }
}

TEST_IMPL(first_sigterm_logs_what_it_waits_for) {
  mk_tmpdir();
  char logpath[400];
  snprintf(logpath, sizeof logpath, "%s/stderr.log", tmpdir);
  int errs = 0;
  vh_host_t *h = new_host(kv_src);
  vh_log_set_level(VH_LOG_WARN);
  wait_test_t t;
  memset(&t, 0, sizeof t);
  t.h = h;
  vh_store__pause_writer(vh_durable__store(h), 1);
  ASSERT_EQ(vh_host_call(h, "kv", "put", vh_int(5), sig_reply, &errs), 0);
  uv_timer_init(&h->loop, &t.t);
  t.t.data = &t;
  uv_timer_start(&t.t, wait_step, 100, 100);
  fflush(stderr);
  int saved = dup(2);
  FILE *lf = fopen(logpath, "w+");
  ASSERT(lf != NULL && saved >= 0);
  dup2(fileno(lf), 2);
  int code = -1;
  int rc = vh_host_run(h, &code);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(code, 3);
  char buf[8192];
  rewind(lf);
  size_t n = fread(buf, 1, sizeof buf - 1, lf);
  buf[n] = 0;
  fclose(lf);
  vh_log_set_level(VH_LOG_ERROR);
  ASSERT(strstr(buf, "stopping: waiting for 1 slice(s)") != NULL);
  vh_host_free(h);
  rm_tmpdir();
}

/* ---- a node that fails to load during a handler ---- */

static int first_child(void *arg, uint64_t id) {
  *(uint64_t *)arg = id;
  return -100; /* stop at the first */
}

/* Flip a byte of the node under the domain root that holds kv's `big`. */
static void corrupt_big(void) {
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  vh_store_t *s = NULL;
  char *m = NULL;
  ASSERT_EQ(vh_store_open(datadir, &so, &s, &m), 0);
  void *mb;
  size_t ml;
  ASSERT_EQ(vh_store_get_manifest(s, &mb, &ml, &m), 0);
  vh_manifest_t man;
  ASSERT_EQ(vh_manifest_decode(mb, ml, &man, &m), 0);
  free(mb);
  ASSERT_EQ(man.ndomains, 1);
  uint64_t root = man.domains[0].root;
  vh_manifest_free(&man);
  /* root -> its hash node -> the first nested table (big) */
  uint64_t id = root;
  for (int depth = 0; depth < 2; depth++) {
    void *b;
    size_t n;
    ASSERT_EQ(vh_store_get_node(s, id, &b, &n, &m), 0);
    uint64_t c = 0;
    const char *why;
    vh_codec_child_ids(b, n, first_child, &c, NULL, &why);
    free(b);
    ASSERT_NE(c, 0);
    id = c;
  }
  ASSERT_EQ(vh_store_close(s, &m), 0);
  char path[512], key[9];
  snprintf(path, sizeof path, "%s/db", datadir);
  key[0] = 'A'; /* store format 3 and 4 */
  for (int i = 0; i < 8; i++) key[1 + i] = (char)(id >> (56 - 8 * i));
  char *err = NULL;
  vh_store_raw_t db;
  ASSERT_EQ(vh_store_raw_open(path, VH_RAW_WRITE, &db, &err), 0);
  rocksdb_column_family_handle_t *cf = vh_store_raw_family(&db, key, 9);
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  size_t n = 0;
  char *v = rocksdb_get_cf(db.db, ro, cf, key, 9, &n, &err);
  ASSERT(v != NULL && n > 6);
  v[n - 1] ^= 0x33;
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_put_cf(db.db, wo, cf, key, 9, v, n, &err);
  ASSERT(err == NULL);
  rocksdb_free(v);
  rocksdb_writeoptions_destroy(wo);
  rocksdb_readoptions_destroy(ro);
  vh_store_raw_close(&db);
}

typedef struct fault_test {
  vh_host_t *h;
  char err[512];
  int64_t v;
  int n;
} fault_test_t;

static void fault_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  fault_test_t *f = arg;
  if (f->n++ == 0) {
    snprintf(f->err, sizeof f->err, "%s", err ? err : "");
  } else {
    f->v = reply.type == VH_TINT ? reply.u.i : -1;
    vh_host_stop(f->h, 0);
  }
}

TEST_IMPL(unreadable_node_fails_the_handler) {
  mk_tmpdir();
  run_call("put", vh_int(8));
  run_call("fill", vh_int(3)); /* big = { k1 = {1, "1"}, ... } */
  corrupt_big();
  fault_test_t f;
  memset(&f, 0, sizeof f);
  f.h = new_host(
      "local ved = require 'ved'\n"
      "ved.domain 'kv' {\n"
      "  on = {\n"
      "    touch = function(state) state.v = 99; return state.big.k1 end,\n"
      "    get = function(state) return state.v end,\n"
      "  },\n"
      "}\n");
  ASSERT_EQ(vh_host_call(f.h, "kv", "touch", vh_nil(), fault_reply, &f), 0);
  ASSERT_EQ(vh_host_call(f.h, "kv", "get", vh_nil(), fault_reply, &f), 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(f.h, &code), 0);
  if (!strstr(f.err, "state unreadable: node")) fprintf(stderr, "%s\n", f.err);
  ASSERT(strstr(f.err, "state unreadable: node") != NULL);
  ASSERT_EQ(f.v, 8); /* the failed handler's write was rolled back */
  vh_host_free(f.h);
  rm_tmpdir();
}

static const vh_test_entry_t tests[] = {
    TEST_ENTRY(write_failures_hold_replies_then_recover),
    TEST_ENTRY(unreadable_node_fails_the_handler),
    TEST_ENTRY(gate_holds_reply_until_durable),
    TEST_ENTRY(when_durable_waits_for_the_writer),
    TEST_ENTRY(full_queue_holds_slices_without_blocking),
    TEST_ENTRY(second_sigterm_drops_unwritten_slices),
    TEST_ENTRY(first_sigterm_logs_what_it_waits_for),
    TEST_ENTRY(dropped_subtree_is_swept),
    TEST_ENTRY(corrupt_manifest_is_refused),
    TEST_ENTRY(newer_formats_are_refused)};

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--corrupt-manifest") == 0)
    return raw_edit(argv[2], 'M', flip_payload);
  if (argc == 3 && strcmp(argv[1], "--newer-manifest") == 0)
    return raw_edit(argv[2], 'M', newer_manifest);
  if (argc == 3 && strcmp(argv[1], "--newer-store") == 0)
    return raw_edit(argv[2], 'F', newer_store);
  return vh_test__run(tests, sizeof tests / sizeof tests[0], argc, argv);
}
