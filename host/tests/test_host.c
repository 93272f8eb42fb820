/*
 * test_host.c - unit tests of the host runtime driven from C: calls from
 * outside (vh_host_call, the entry point of the REPL and ingress), their
 * replies after the slice, rollback of a failing call's messages and
 * timers, ctx.now fixed within a slice, exactly-once in-order delivery,
 * work queued with a run callback (vh_sched__queue_work, as the REPL
 * server does), the start/stop hooks of the rooms beside the runtime, and
 * the data dir lock.
 *
 * Each test writes its domain script into a fresh temp dir, which is also
 * the data dir's parent. Loops end through ved.exit or vh_host_stop; each
 * script also arms a 5 s `giveup` timer that exits with 9, so a broken
 * host fails the test instead of hanging it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_test.h"
#include "host_util.h"

static vh_host_t *new_host(const char *script_src) {
  char err[512];
  vh_host_opts_t o;
  vh_host_opts_default(&o);
  o.data_dir = datadir;
  o.log_level = VH_LOG_WARN;
  vh_host_t *h = NULL;
  int rc = vh_host_new(&o, &h, err, sizeof err);
  if (rc != 0) fprintf(stderr, "vh_host_new: %s\n", err);
  ASSERT_EQ(rc, 0);
  rc = vh_host_load(h, write_file("t.lua", script_src), err, sizeof err);
  if (rc != 0) fprintf(stderr, "vh_host_load: %s\n", err);
  ASSERT_EQ(rc, 0);
  return h;
}

/* A table {k1 = v1, k2 = v2} of integers [new]. */
static vh_val_t tab2(const char *k1, int64_t v1, const char *k2, int64_t v2) {
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  vh_str_t *a = vh_str_new(k1, strlen(k1)), *b = vh_str_new(k2, strlen(k2));
  ASSERT_EQ(vh_tab_set(&t, vh_strv(a), vh_int(v1), edit), 0);
  ASSERT_EQ(vh_tab_set(&t, vh_strv(b), vh_int(v2), edit), 0);
  vh_str_release(a);
  vh_str_release(b);
  return vh_tabv(t);
}

/* t[k] as an integer (tab must be a table), or -999 when absent. */
static int64_t get_int(vh_val_t tab, const char *k) {
  vh_val_t v;
  if (tab.type != VH_TTAB) return -998;
  vh_tab_get_str(tab.u.t, k, strlen(k), &v);
  return v.type == VH_TINT ? v.u.i : -999;
}

/* The committed state of domain name. */
static vh_val_t state_of(vh_host_t *h, const char *name) {
  vh_domain_t *d = vh_host__find(h, name, strlen(name));
  ASSERT(d != NULL);
  return vh_tabv(vhl_state_root(d->st));
}

#define NCALLS 100

typedef struct recorder {
  vh_host_t *h;
  int n;                 /* callbacks seen */
  int stop_at;           /* vh_host_stop when n reaches it */
  int64_t sums[NCALLS];  /* reply.sum, or -1 on error */
  int64_t nows[NCALLS];  /* reply.now */
  int committed[NCALLS]; /* state.total seen from the callback */
  int codes[NCALLS];     /* the reply's code (0 on success) */
  char err[256];         /* last error */
} recorder_t;

static void on_reply(void *arg, int code, vh_val_t reply, const char *err) {
  recorder_t *r = (recorder_t *)arg;
  int i = r->n++;
  if (i < NCALLS) {
    r->codes[i] = code;
    r->sums[i] = err ? -1 : get_int(reply, "sum");
    r->nows[i] = err ? -1 : get_int(reply, "now");
    r->committed[i] = (int)get_int(state_of(r->h, "calc"), "total");
  }
  if (err) snprintf(r->err, sizeof r->err, "%s", err);
  if (r->n == r->stop_at) vh_host_stop(r->h, 0);
}

static const char calc_src[] =
    "local ved = require 'ved'\n"
    "ved.domain 'calc' {\n"
    "  state = { total = 0 },\n"
    "  start = function(state, ctx) ctx:after(5000, 'giveup') end,\n"
    "  on = {\n"
    "    add = function(state, p, ctx)\n"
    "      state.total = state.total + p.a + p.b\n"
    "      return { sum = p.a + p.b, now = ctx.now }\n"
    "    end,\n"
    "    boom = function(state, p) state.total = -1; error('boom') end,\n"
    "    fn = function() return print end,\n"
    "    giveup = function() ved.exit(9) end,\n"
    "  },\n"
    "}\n";

TEST_IMPL(call_replies_in_order_after_commit) {
  mk_tmpdir();
  vh_host_t *h = new_host(calc_src);
  recorder_t r;
  memset(&r, 0, sizeof r);
  r.h = h;
  r.stop_at = NCALLS;
  for (int i = 0; i < NCALLS; i++)
    ASSERT_EQ(
        vh_host_call(h, "calc", "add", tab2("a", i, "b", 1), on_reply, &r), 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(r.n, NCALLS);
  int64_t total = 0;
  for (int i = 0; i < NCALLS; i++) {
    ASSERT_EQ(r.sums[i], i + 1);
    total += i + 1;
    /* every call of the slice committed before any reply went out */
    ASSERT_EQ(r.committed[i], (NCALLS * (NCALLS + 1)) / 2);
    /* ctx.now is fixed for the slice all these calls ran in */
    ASSERT_EQ(r.nows[i], r.nows[0]);
  }
  ASSERT_GT(r.nows[0], 1700000000000LL); /* ms since the epoch */
  ASSERT_EQ(get_int(state_of(h, "calc"), "total"), total);
  vh_host_free(h);
  rm_tmpdir();
}

TEST_IMPL(call_errors_roll_back_and_reply) {
  mk_tmpdir();
  vh_host_t *h = new_host(calc_src);
  recorder_t r;
  memset(&r, 0, sizeof r);
  r.h = h;
  r.stop_at = 4;
  ASSERT_EQ(vh_host_call(h, "calc", "add", tab2("a", 2, "b", 3), on_reply, &r),
            0);
  ASSERT_EQ(vh_host_call(h, "calc", "boom", vh_nil(), on_reply, &r), 0);
  ASSERT_EQ(vh_host_call(h, "calc", "nosuch", vh_nil(), on_reply, &r), 0);
  ASSERT_EQ(vh_host_call(h, "calc", "fn", vh_nil(), on_reply, &r), 0);
  /* no such domain: an error now, and the callback is never called */
  ASSERT_EQ(vh_host_call(h, "nope", "add", tab2("a", 1, "b", 1), on_reply, &r),
            VH_HOST_ENODOMAIN);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(r.n, 4);
  ASSERT_EQ(r.sums[0], 5);
  ASSERT_EQ(r.sums[1], -1); /* boom */
  ASSERT_EQ(r.sums[2], -1); /* no handler */
  ASSERT_EQ(r.sums[3], -1); /* reply not storable */
  /* the reply carries the code: decide by it, not by the text */
  ASSERT_EQ(r.codes[0], 0);
  ASSERT_EQ(r.codes[1], VH_HOST_EROLLBACK);
  ASSERT_EQ(r.codes[2], VH_HOST_ENOEVENT);
  ASSERT_EQ(r.codes[3], VH_HOST_EROLLBACK);
  ASSERT(strstr(r.err, "cannot store a function") != NULL);
  ASSERT(strstr(r.err, "reply") != NULL);
  /* boom's write (total = -1) was rolled back */
  ASSERT_EQ(get_int(state_of(h, "calc"), "total"), 5);
  vh_host_free(h);
  rm_tmpdir();
}

static const char send_src[] =
    "local ved = require 'ved'\n"
    "ved.domain 's' {\n"
    "  state = { got = 0, log = {} },\n"
    "  start = function(state, ctx) ctx:after(5000, 'giveup') end,\n"
    "  on = {\n"
    "    sendfail = function(state, p, ctx)\n"
    "      ctx:send('s', 'got', { n = 100 })\n"
    "      ctx:after(1, 'got', { n = 100 })\n"
    "      ctx:every(1, 'got', { n = 100 })\n"
    "      error('no')\n"
    "    end,\n"
    "    sendok = function(state, p, ctx)\n"
    "      for i = 1, 50 do ctx:send('s', 'seq', { i = i }) end\n"
    "      ctx:send('s', 'got', { n = 1 })\n"
    "      ctx:after(3, 'got', { n = 2 })\n"
    "    end,\n"
    "    seq = function(state, p) table.insert(state.log, p.i) end,\n"
    "    got = function(state, p)\n"
    "      state.got = state.got + p.n\n"
    "      if state.got >= 3 then ved.exit(0) end\n"
    "    end,\n"
    "    giveup = function() ved.exit(9) end,\n"
    "  },\n"
    "}\n";

static void chain_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  (void)reply;
  recorder_t *r = (recorder_t *)arg;
  r->n++;
  if (err) snprintf(r->err, sizeof r->err, "%s", err);
  if (r->n == 1) /* after the failed call: the good one */
    ASSERT_EQ(vh_host_call(r->h, "s", "sendok", vh_nil(), chain_reply, r), 0);
}

TEST_IMPL(failed_call_leaves_no_message_or_timer) {
  mk_tmpdir();
  vh_host_t *h = new_host(send_src);
  recorder_t r;
  memset(&r, 0, sizeof r);
  r.h = h;
  ASSERT_EQ(vh_host_call(h, "s", "sendfail", vh_nil(), chain_reply, &r), 0);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(r.n, 2);
  vh_val_t st = state_of(h, "s");
  ASSERT_EQ(get_int(st, "got"), 3); /* 1 + 2: none of the n = 100 */
  /* the 50 messages arrived exactly once and in order */
  vh_val_t log;
  vh_tab_get_str(st.u.t, "log", 3, &log);
  ASSERT_EQ(log.type, VH_TTAB);
  ASSERT_EQ(vh_tab_len(log.u.t), 50);
  for (int i = 1; i <= 50; i++) {
    vh_val_t v;
    vh_tab_get_int(log.u.t, i, &v);
    ASSERT_EQ(v.u.i, i);
  }
  /* everything sent was delivered (head passed it, durably too); the
   * failed call's message left a `false` in its slot */
  ASSERT_EQ(h->head, h->next_seq);
  ASSERT_EQ(h->next_seq, 1 + 50 + 1);
  ASSERT_EQ(get_int(vh_tabv(vhl_state_root(h->sys)), "head"), h->next_seq);
  ASSERT_EQ(get_int(vh_tabv(vhl_state_root(h->sys)), "seq"), h->next_seq);
  vh_val_t q, b, m;
  vh_tab_get_str(vhl_state_root(h->sys), "q", 1, &q);
  ASSERT_EQ(q.type, VH_TTAB);
  vh_tab_get_int(q.u.t, 0, &b);
  ASSERT_EQ(b.type, VH_TTAB);
  vh_tab_get_int(b.u.t, 1, &m);
  ASSERT_EQ(m.type, VH_TBOOL);
  ASSERT_EQ(m.u.b, 0);
  /* only the giveup timer is left */
  ASSERT_EQ(h->nheap, 1);
  vh_val_t timers;
  vh_tab_get_str(vhl_state_root(h->sys), "timers", 6, &timers);
  ASSERT_EQ(timers.type, VH_TTAB);
  ASSERT_EQ(vh_tab_count(timers.u.t), 1);
  /* no every timer survived the failed call */
  ASSERT(h->doms[0]->everies == NULL);
  vh_host_free(h);
  rm_tmpdir();
}

/* ---- work with a run callback, and hooks ---- */

static int seq;           /* order of hook calls */
static int hook_at[2][4]; /* [table][phase]: seq of its first call */
static int hook_n[2][4];  /* [table][phase]: calls */

#define HOOK_FNS(i)                           \
  static void hook##i##_start(vh_host_t *h) { \
    hook_note(i, 0);                          \
  }                                           \
  static void hook##i##_last(vh_host_t *h) {  \
    hook_note(i, 1);                          \
  }                                           \
  static void hook##i##_stop(vh_host_t *h) {  \
    hook_note(i, 2);                          \
  }                                           \
  static void hook##i##_free(vh_host_t *h) {  \
    hook_note(i, 3);                          \
  }

static void hook_note(int t, int phase) {
  if (hook_n[t][phase]++ == 0) hook_at[t][phase] = ++seq;
}
HOOK_FNS(0)
HOOK_FNS(1)
static const vh_host_hooks_t hooks0 = {"a", hook0_start, hook0_last, hook0_stop,
                                       hook0_free};
static const vh_host_hooks_t hooks1 = {"b", hook1_start, hook1_last, hook1_stop,
                                       hook1_free};

/* A run callback: the total the calc domain has committed when it runs,
 * or an error when the item's payload is true. */
static int run_total(vh_host_t *h, vh_work_t *w, vh_val_t *reply, char **err) {
  if (w->payload.type == VH_TBOOL) {
    *err = strdup("no such thing");
    return VH_HOST_ENODOMAIN;
  }
  ASSERT_EQ(h->in_hold, 0);
  *reply = vh_int(get_int(state_of(h, "calc"), "total"));
  return VH_HOST_EROLLBACK;
}

static void on_work(void *arg, int code, vh_val_t reply, const char *err) {
  recorder_t *r = (recorder_t *)arg;
  int i = r->n++;
  r->codes[i] = code;
  r->sums[i] = err ? -1 : reply.type == VH_TINT ? reply.u.i : -2;
  if (err) snprintf(r->err, sizeof r->err, "%s", err);
  if (r->n == r->stop_at) vh_host_stop(r->h, 0);
}

static vh_work_t *new_work(recorder_t *r, int fail) {
  vh_work_t *w = calloc(1, sizeof *w);
  ASSERT(w != NULL);
  w->kind = VH_WORK_CALL;
  w->hdr = vh_str_new("test", 4);
  w->payload = fail ? vh_bool(1) : vh_nil();
  w->run = run_total;
  w->cb = on_work;
  w->arg = r;
  return w;
}

TEST_IMPL(queued_work_runs_its_callback_and_hooks_run_in_order) {
  mk_tmpdir();
  vh_host_t *h = new_host(calc_src);
  ASSERT_EQ(vh_host__hook(h, &hooks0), 0);
  ASSERT_EQ(vh_host__hook(h, &hooks1), 0);
  ASSERT_EQ(vh_host__hook(h, &hooks0), 0); /* again: nothing */
  ASSERT_EQ(h->nhooks, 2);
  recorder_t r;
  memset(&r, 0, sizeof r);
  r.h = h;
  r.stop_at = 3;
  /* a call, then two work items: they run in queue order, in slices */
  ASSERT_EQ(vh_host_call(h, "calc", "add", tab2("a", 40, "b", 2), on_reply, &r),
            0);
  vh_sched__queue_work(h, new_work(&r, 1));
  vh_sched__queue_work(h, new_work(&r, 0));
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(r.n, 3);
  ASSERT_EQ(r.sums[0], 42);                 /* the call */
  ASSERT_EQ(r.codes[1], VH_HOST_ENODOMAIN); /* its error and code */
  ASSERT(strcmp(r.err, "no such thing") == 0);
  ASSERT_EQ(r.codes[2], 0); /* success: no code */
  ASSERT_EQ(r.sums[2], 42); /* ran after the call committed */
  /* hooks: each phase in registration order; stop once per run */
  for (int t = 0; t < 2; t++) {
    ASSERT_EQ(hook_n[t][0], 1);
    ASSERT_GT(hook_n[t][1], 0);
    ASSERT_EQ(hook_n[t][2], 1);
    ASSERT_EQ(hook_n[t][3], 0);
  }
  for (int p = 0; p < 3; p++) ASSERT_GT(hook_at[1][p], hook_at[0][p]);
  ASSERT_GT(hook_at[0][1], hook_at[1][0]); /* last slice after start */
  ASSERT_GT(hook_at[0][2], hook_at[1][1]); /* stop after the last slice */
  vh_host_free(h);
  for (int t = 0; t < 2; t++) {
    ASSERT_EQ(hook_n[t][2], 2); /* vh_host_free stops again (idempotent) */
    ASSERT_EQ(hook_n[t][3], 1);
  }
  ASSERT_GT(hook_at[1][3], hook_at[0][3]);
  rm_tmpdir();
}

TEST_IMPL(datadir_lock_is_exclusive) {
  mk_tmpdir();
  char dir[300], err[512];
  vh_datadir_t d1, d2;
  /* only the last component is created, as mkdir does */
  snprintf(dir, sizeof dir, "%s/a/b", tmpdir);
  ASSERT_EQ(vh_datadir_open(&d1, dir, err, sizeof err), VH_DATADIR_EIO);
  ASSERT(strstr(err, "/a does not exist") != NULL);
  snprintf(dir, sizeof dir, "%s/a", tmpdir);
  ASSERT_EQ(vh_datadir_open(&d1, dir, err, sizeof err), 0);
  ASSERT_EQ(vh_datadir_open(&d2, dir, err, sizeof err), VH_DATADIR_EBUSY);
  char want[64];
  snprintf(want, sizeof want, "(pid %ld)", (long)getpid());
  ASSERT(strstr(err, want) != NULL);
  ASSERT(strstr(err, "in use by another vedhost") != NULL);
  vh_datadir_close(&d1);
  ASSERT_EQ(vh_datadir_open(&d2, dir, err, sizeof err), 0);
  vh_datadir_close(&d2);
  rm_tmpdir();
}

/* The dying holder's last thread: holds the lock a little longer, as a
 * store thread finishing an fsync after kill -9 does. */
static void *dying_last_thread(void *arg) {
  (void)arg;
  usleep(300 * 1000);
  _exit(0);
  return NULL;
}

/* State letter of pid's main thread ('?' if unreadable). */
static char proc_state(pid_t pid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return '?';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  return p != NULL && p[1] == ' ' ? p[2] : '?';
}

/* A holder whose main thread has exited while another thread still holds
 * the process (and the lock) open: open waits for it instead of failing
 * "in use" (datadir.c, A HOLDER THAT IS DYING). Failed before: EBUSY. */
TEST_IMPL(datadir_waits_for_a_dying_holder) {
  mk_tmpdir();
  char dir[300], err[512];
  snprintf(dir, sizeof dir, "%s/d", tmpdir);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT(child >= 0);
  if (child == 0) {
    vh_datadir_t held;
    if (vh_datadir_open(&held, dir, err, sizeof err) != 0) _exit(3);
    pthread_t t;
    if (pthread_create(&t, NULL, dying_last_thread, NULL) != 0) _exit(4);
    if (write(ready[1], "x", 1) != 1) _exit(5);
    pthread_exit(NULL); /* the main thread goes; the process lives on */
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  for (int i = 0; i < 500 && proc_state(child) != 'Z'; i++) usleep(1000);
  ASSERT_EQ(proc_state(child), 'Z'); /* the case under test */
  vh_datadir_t d;
  int rc = vh_datadir_open(&d, dir, err, sizeof err);
  if (rc != 0) fprintf(stderr, "vh_datadir_open: %s\n", err);
  ASSERT_EQ(rc, 0);
  vh_datadir_close(&d);
  int st = 0;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  rm_tmpdir();
}

TEST_IMPL(log_levels_parse) {
  vh_log_level_t l;
  ASSERT_EQ(vh_log_parse_level("debug", &l), 0);
  ASSERT_EQ(l, VH_LOG_DEBUG);
  ASSERT_EQ(vh_log_parse_level("error", &l), 0);
  ASSERT_EQ(l, VH_LOG_ERROR);
  ASSERT_EQ(vh_log_parse_level("loud", &l), -1);
}

VH_TEST_MAIN(TEST_ENTRY(call_replies_in_order_after_commit),
             TEST_ENTRY(call_errors_roll_back_and_reply),
             TEST_ENTRY(failed_call_leaves_no_message_or_timer),
             TEST_ENTRY(queued_work_runs_its_callback_and_hooks_run_in_order),
             TEST_ENTRY(datadir_lock_is_exclusive),
             TEST_ENTRY(datadir_waits_for_a_dying_holder),
             TEST_ENTRY(log_levels_parse))
