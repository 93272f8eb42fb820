/*
 * testing_core.c - the C half of `ved.testing` (host/testing/ved/
 * testing.lua): a real vedhost runtime driven from a busted test, on a
 * virtual clock. Built as the Lua C module build/lib/ved/testing_core.so
 * (require "ved.testing_core"); like vedcore.so it takes the Lua API from
 * the lua5.4 interpreter that loads it.
 *
 * What is real: everything below vh_host_t. A test host is a vh_host_t
 * (its own lua_State, libuv loop, watchdog thread and store writer
 * thread) on a data dir of its own, run by the same code as `vedhost
 * run`: handler calls with their rollback, the scheduler's durable
 * messages and `after` timers, `every` timers, reload with migrate, the
 * store (nosync: a test needs no fsync) with its retained versions.
 *
 * What is virtual: time. The host runs with vclock_on (host_int.h): the
 * slice clock (ctx.now, ved.now) reads vclock, and no uv timer runs an
 * `after` or `every` timer. The driver here moves the clock:
 *
 *   advance(ms)  drain; then, while the earliest due timer T is at or
 *                before now + ms: vclock = T, fire every timer due at T
 *                (vh_sched__fire_due) as one slice, end it, drain. Then
 *                vclock = now + ms.
 *   drain        (run_until_idle) turn the loop (UV_RUN_NOWAIT) while
 *                calls or messages wait: each turn is one slice, exactly
 *                as in production (idle callback, prepare ends the
 *                slice); then wait until every slice is durable.
 *
 * So a test sees each timer fire at its own due time, in (due, id) order
 * for `after` and start order for `every`, each instant its own slice,
 * and messages delivered in send order in the slices that follow, at the
 * same virtual time.
 *
 * Several hosts in one process. The runtime keeps a few process-wide
 * pointers: the trie's loader and free hook (durable.c), the log's level
 * and sink, the watchdog's signal target (set at each arm). Every entry
 * point here activates its host first (vt_enter); closing a host
 * re-activates the one that was active. Only the loop thread (the test's)
 * ever runs any of it.
 *
 * Nothing is left behind: close (also from __gc, so a failed assertion
 * that skips the test's own close still cleans up when the GC runs, and
 * ved.testing closes hosts in busted's teardown) stops the loop, joins
 * the writer and watchdog threads, closes the store and removes the data
 * dir (unless it is kept for a restart). No socket is opened.
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"
#include "lauxlib.h"
#include "lua.h"
#include "vh_cli_args.h"
#include "vh_log.h"
#include "vh_tdiff.h"
#include "vh_version_spec.h"
#include "vh_versions.h"
#include "vhl.h"

#define VT_MT "ved.testing.host"

typedef struct vt_host {
  vh_host_t *h; /* [owned] NULL once closed */
  char *dir;    /* [owned] the data dir */
  char **logs;  /* [owned] captured records */
  size_t nlogs, caplogs;
  int echo; /* also write records to stderr */
} vt_host_t;

static vt_host_t *vt_active; /* the host the process-wide hooks point at */

static void vt_sink(void *arg, vh_log_level_t level, const char *tag,
                    const char *text) {
  static const char *const names[] = {"debug", "info", "warn", "error"};
  vt_host_t *t = arg;
  size_t n = strlen(text) + strlen(tag) + 16;
  char *s = malloc(n);
  if (!s) return;
  snprintf(s, n, "%s [%s] %s", names[level], tag, text);
  if (t->echo) fprintf(stderr, "%s\n", s);
  if (t->nlogs == t->caplogs) {
    size_t nc = t->caplogs ? t->caplogs * 2 : 64;
    char **nl = realloc(t->logs, nc * sizeof *nl);
    if (!nl) {
      free(s);
      return;
    }
    t->logs = nl;
    t->caplogs = nc;
  }
  t->logs[t->nlogs++] = s;
}

static void vt_enter(vt_host_t *t) {
  vt_active = t;
  vh_log_set_sink(vt_sink, t);
  if (t->h) vh_durable__activate(t->h);
}

static vt_host_t *vt_check(lua_State *L) {
  vt_host_t *t = luaL_checkudata(L, 1, VT_MT);
  if (!t->h) luaL_error(L, "ved.testing: this host is closed");
  vt_enter(t);
  return t;
}

/* ---- turning the loop ---- */

/* One turn of the loop that only waits (for the writer's notify, or the
 * end of a store hold): it runs no handler, so it is not counted as a
 * slice. The slice counter seeds math.random (det.c), and how many such
 * turns a wait takes depends on the writer thread's timing: counting them
 * would make the numbers a test draws differ from run to run. */
static void vt_wait(vh_host_t *h) {
  uint64_t seq = h->slice_seq;
  uv_run(&h->loop, UV_RUN_ONCE);
  h->slice_seq = seq;
}

static int vt_busy(vh_host_t *h) {
  return h->calls != NULL || h->head < h->deliver_upto;
}

static void vt_set_flag(void *arg, int durable) {
  (void)durable;
  *(int *)arg = 1;
}

/* Run slices while work waits, then until every slice is durable. */
static void vt_drain(vh_host_t *h) {
  for (int guard = 0; h->phase == VH_PHASE_RUN; guard++) {
    if (!vh_host__accepting(h, NULL, 0)) { /* store backpressure: wait */
      vt_wait(h);
      continue;
    }
    if (!vt_busy(h)) break;
    uv_run(&h->loop, UV_RUN_NOWAIT);
  }
  if (h->phase != VH_PHASE_RUN) return;
  int done = 0;
  if (vh_host__when_durable(h, vt_set_flag, &done) != 0) return;
  vh_slice_end(h); /* puts it behind the gate with this slice */
  while (!done && h->phase == VH_PHASE_RUN) vt_wait(h);
}

/* advance(ms) -> number of instants at which timers fired */
static int vt_advance(lua_State *L) {
  vt_host_t *t = vt_check(L);
  vh_host_t *h = t->h;
  lua_Integer ms = luaL_checkinteger(L, 2);
  if (ms < 0) return luaL_error(L, "advance: a duration is >= 0 ms");
  int64_t target = h->vclock + ms;
  lua_Integer fired = 0;
  vt_drain(h);
  while (h->phase == VH_PHASE_RUN) {
    int64_t due = vh_sched__next_due(h);
    if (due > target) break;
    while (!vh_host__accepting(h, NULL, 0) && h->phase == VH_PHASE_RUN)
      vt_wait(h); /* held: the writer catches up */
    if (h->phase != VH_PHASE_RUN) break;
    if (due > h->vclock) h->vclock = due;
    vh_sched__fire_due(h, h->vclock);
    vh_slice_end(h);
    fired++;
    if (vt_busy(h)) vt_drain(h);
  }
  if (h->phase == VH_PHASE_RUN) {
    h->vclock = target;
    vt_drain(h);
  }
  lua_pushinteger(L, fired);
  return 1;
}

static int vt_idle(lua_State *L) {
  vt_host_t *t = vt_check(L);
  vt_drain(t->h);
  return 0;
}

/* step() -> true if work is left: one turn of the loop (one slice) */
static int vt_step(lua_State *L) {
  vt_host_t *t = vt_check(L);
  vh_host_t *h = t->h;
  if (h->phase == VH_PHASE_RUN) {
    if (vh_host__accepting(h, NULL, 0))
      uv_run(&h->loop, UV_RUN_NOWAIT);
    else
      vt_wait(h);
  }
  lua_pushboolean(L, h->phase == VH_PHASE_RUN && vt_busy(h));
  return 1;
}

static void vt_on_posted(void *arg, int code, vh_val_t reply, const char *err) {
  (void)arg;
  (void)code;
  (void)reply;
  (void)err;
}

/* post(domain, event, payload): queue a call, run nothing */
static int vt_post(lua_State *L) {
  vt_host_t *t = vt_check(L);
  const char *dom = luaL_checkstring(L, 2);
  const char *ev = luaL_checkstring(L, 3);
  vh_val_t payload = vh_nil();
  if (!lua_isnoneornil(L, 4)) vhl_tovalue(L, 4, "payload", &payload);
  if (t->h->phase != VH_PHASE_RUN) {
    vh_val_release(payload);
    return luaL_error(L, "post: the host has stopped");
  }
  if (vh_host_call(t->h, dom, ev, payload, vt_on_posted, NULL) != 0)
    return luaL_error(L, "post: no domain '%s'", dom);
  return 0;
}

static int vt_now(lua_State *L) {
  vt_host_t *t = vt_check(L);
  lua_pushinteger(L, (lua_Integer)t->h->vclock);
  return 1;
}

static int vt_running(lua_State *L) {
  vt_host_t *t = vt_check(L);
  lua_pushboolean(L, t->h->phase == VH_PHASE_RUN);
  lua_pushinteger(L, t->h->exit_code);
  return 2;
}

typedef struct vt_res {
  int done, code;
  vh_val_t reply;
  char *err;
} vt_res_t;

static void vt_on_reply(void *arg, int code, vh_val_t reply, const char *err) {
  vt_res_t *r = arg;
  r->done = 1;
  r->code = code;
  if (err) {
    r->err = strdup(err);
  } else {
    vh_val_retain(reply);
    r->reply = reply;
  }
}

/* call(domain, event, payload) -> true, reply | false, err, code */
static int vt_call(lua_State *L) {
  vt_host_t *t = vt_check(L);
  vh_host_t *h = t->h;
  const char *dom = luaL_checkstring(L, 2);
  const char *ev = luaL_checkstring(L, 3);
  vh_val_t payload = vh_nil();
  if (!lua_isnoneornil(L, 4)) vhl_tovalue(L, 4, "payload", &payload);
  if (h->phase != VH_PHASE_RUN) {
    vh_val_release(payload);
    return luaL_error(L, "send: the host has stopped");
  }
  vt_res_t r = {0, 0, vh_nil(), NULL};
  int rc = vh_host_call(h, dom, ev, payload, vt_on_reply, &r);
  if (rc != 0) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "no domain '%s'", dom);
    lua_pushinteger(L, rc);
    return 3;
  }
  while (!r.done && h->phase == VH_PHASE_RUN) {
    if (vt_busy(h) && vh_host__accepting(h, NULL, 0))
      uv_run(&h->loop, UV_RUN_NOWAIT);
    else
      vt_wait(h);
  }
  if (h->phase == VH_PHASE_RUN) vt_drain(h);
  if (!r.done) { /* stopped (ved.exit) before the call ran */
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "the host stopped before the call ran");
    lua_pushinteger(L, VH_HOST_ESTOPPED);
    return 3;
  }
  if (r.err) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, r.err);
    lua_pushinteger(L, r.code);
    free(r.err);
    return 3;
  }
  lua_pushboolean(L, 1);
  vhl_pushvalue(L, r.reply);
  vh_val_release(r.reply);
  return 2;
}

/* state(domain) -> plain copy of its committed state, or nil */
static int vt_state(lua_State *L) {
  vt_host_t *t = vt_check(L);
  size_t n;
  const char *name = luaL_checklstring(L, 2, &n);
  vh_domain_t *d = vh_host__find(t->h, name, n);
  if (!d) return 0;
  vh_tab_t *root = vhl_state_root(d->st);
  if (!root) {
    lua_newtable(L);
    return 1;
  }
  vh_tab_retain(root);
  vhl_pushvalue(L, vh_tabv(root));
  vh_tab_release(root);
  const char *msg = NULL;
  if (vh_trie_fault(&msg)) {
    lua_pushfstring(L, "state unreadable: %s", msg ? msg : "?");
    vh_trie_fault_clear();
    return lua_error(L);
  }
  return 1;
}

static int vt_domains(lua_State *L) {
  vt_host_t *t = vt_check(L);
  lua_createtable(L, t->h->ndoms, 0);
  for (int i = 0; i < t->h->ndoms; i++) {
    lua_pushstring(L, t->h->doms[i]->name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* reload(paths) -> true, summary | false, err */
static int vt_reload(lua_State *L) {
  vt_host_t *t = vt_check(L);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  const char **paths = calloc((size_t)n + 1, sizeof *paths);
  if (!paths) return luaL_error(L, "out of memory");
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    paths[i] = lua_tostring(L, -1); /* kept alive by the table */
    lua_pop(L, 1);
    if (!paths[i]) {
      free(paths);
      return luaL_error(L, "reload: scripts must be paths");
    }
  }
  vt_drain(t->h);
  int rc = vh_reload__set_args(t->h, paths, n);
  free(paths);
  if (rc != 0) return luaL_error(L, "out of memory");
  char err[1024];
  rc = vh_host_reload(t->h, err, sizeof err);
  vt_drain(t->h);
  lua_pushboolean(L, rc == 0);
  lua_pushstring(L, err);
  return 2;
}

static int vt_logs(lua_State *L) {
  vt_host_t *t = luaL_checkudata(L, 1, VT_MT);
  lua_createtable(L, (int)t->nlogs, 0);
  for (size_t i = 0; i < t->nlogs; i++) {
    lua_pushstring(L, t->logs[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ---- versions ---- */

static void vt_push_version(lua_State *L, const vh_version_t *v) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)v->seq);
  lua_setfield(L, -2, "seq");
  lua_pushinteger(L, (lua_Integer)v->time_ms);
  lua_setfield(L, -2, "time");
  lua_pushinteger(L, (lua_Integer)v->events);
  lua_setfield(L, -2, "events");
  lua_pushinteger(L, (lua_Integer)v->keys_changed);
  lua_setfield(L, -2, "keys");
  lua_createtable(L, (int)v->nchanged, 0);
  for (size_t i = 0; i < v->nchanged; i++) {
    lua_pushstring(L, v->changed[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "domains");
}

static int vt_version_cb(void *arg, const vh_version_t *v) {
  lua_State *L = arg;
  vt_push_version(L, v);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

/* The host's store, its memtable flushed: a test store's memtable is an
 * unsorted vector that every read would sort (vh_store.h, test_store), and
 * reading history reads many keys. Slices must be durable (vt_drain). */
static struct vh_store *vt_store(lua_State *L, vt_host_t *t) {
  struct vh_store *s = vh_durable__store(t->h);
  if (!s) luaL_error(L, "ved.testing: this host has no store");
  char *msg = NULL;
  if (vh_store_flush(s, &msg) != 0) {
    lua_pushfstring(L, "ved.testing: %s", msg ? msg : "the store failed");
    free(msg);
    lua_error(L);
  }
  return s;
}

/* versions() -> { {seq, time, events, keys, domains}, ... } oldest first */
static int vt_versions(lua_State *L) {
  vt_host_t *t = vt_check(L);
  vt_drain(t->h);
  struct vh_store *s = vt_store(L, t);
  lua_newtable(L);
  char *msg = NULL;
  int rc = vh_store_versions_each(s, 0, vt_version_cb, L, &msg);
  if (rc != 0) {
    lua_pushfstring(L, "versions: %s", msg ? msg : vh_err_name(rc));
    free(msg);
    return lua_error(L);
  }
  return 1;
}

/* The spec at idx as text: integers as at() takes them (0 = newest). */
static const char *vt_spec(lua_State *L, int idx) {
  if (lua_isinteger(L, idx)) {
    lua_Integer n = lua_tointeger(L, idx);
    return n > 0 ? lua_pushfstring(L, "%I", n) : lua_pushfstring(L, "-%I", -n);
  }
  return luaL_checkstring(L, idx);
}

/* Load the manifest of version spec into *m; raises with one line. */
static void vt_load(lua_State *L, vt_host_t *t, const char *spec,
                    vh_manifest_t *m, uint64_t *seq, int64_t *time) {
  char *msg = NULL;
  int rc =
      vh_version_load(vt_store(L, t), spec, t->h->vclock, seq, time, m, &msg);
  if (rc != 0) {
    lua_pushfstring(L, "%s", msg ? msg : vh_err_name(rc));
    free(msg);
    lua_error(L);
  }
}

/* at(V) -> { seq, time, domains = { name = { state, version } } } */
static int vt_at(lua_State *L) {
  vt_host_t *t = vt_check(L);
  vt_drain(t->h);
  const char *spec = vt_spec(L, 2);
  vh_manifest_t m;
  memset(&m, 0, sizeof m);
  uint64_t seq = 0;
  int64_t time = 0;
  vt_load(L, t, spec, &m, &seq, &time);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)seq);
  lua_setfield(L, -2, "seq");
  if (time != INT64_MIN) {
    lua_pushinteger(L, (lua_Integer)time);
    lua_setfield(L, -2, "time");
  }
  lua_newtable(L);
  int fault = 0;
  for (size_t i = 0; i < m.ndomains && !fault; i++) {
    const vh_manifest_domain_t *d = &m.domains[i];
    lua_createtable(L, 0, 2);
    vh_tab_t *root = d->root ? vh_tab_stub_view(d->root) : NULL;
    if (root) {
      vhl_pushvalue(L, vh_tabv(root));
      vh_tab_release(root);
    } else {
      lua_newtable(L);
    }
    lua_setfield(L, -2, "state");
    lua_pushinteger(L, (lua_Integer)d->version);
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, d->name);
    fault = vh_trie_fault(NULL);
  }
  vh_manifest_free(&m);
  if (fault) {
    const char *msg = NULL;
    vh_trie_fault(&msg);
    lua_pushfstring(L, "state unreadable: %s", msg ? msg : "?");
    vh_trie_fault_clear();
    return lua_error(L);
  }
  lua_setfield(L, -2, "domains");
  return 1;
}

typedef struct vt_diff {
  lua_State *L;
  const char *domain;
} vt_diff_t;

static int vt_diff_cb(void *arg, const vh_tdiff_change_t *c) {
  vt_diff_t *x = arg;
  lua_State *L = x->L;
  lua_createtable(L, 0, 4);
  char op[2] = {(char)c->op, 0};
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_createtable(L, (int)c->depth + 1, 0);
  lua_pushstring(L, x->domain);
  lua_rawseti(L, -2, 1);
  for (size_t i = 0; i < c->depth; i++) {
    vhl_pushvalue(L, c->path[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 2);
  }
  lua_setfield(L, -2, "path");
  if (c->op == '~') {
    vhl_pushvalue(L, c->old);
    lua_setfield(L, -2, "old");
  }
  if (c->op != '-') {
    vhl_pushvalue(L, c->new);
    lua_setfield(L, -2, c->op == '~' ? "new" : "value");
  }
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return 0;
}

static uint64_t vt_root_of(const vh_manifest_t *m, const char *name) {
  for (size_t i = 0; i < m->ndomains; i++)
    if (strcmp(m->domains[i].name, name) == 0) return m->domains[i].root;
  return 0;
}

static int vt_has(const vh_manifest_t *m, const char *name) {
  for (size_t i = 0; i < m->ndomains; i++)
    if (strcmp(m->domains[i].name, name) == 0) return 1;
  return 0;
}

/* diff(a, b) -> { {op, path = {domain, k...}, old, new | value}, ... } */
static int vt_diff(lua_State *L) {
  vt_host_t *t = vt_check(L);
  vt_drain(t->h);
  const char *sa = vt_spec(L, 2);
  const char *sb = lua_isnoneornil(L, 3) ? "-0" : vt_spec(L, 3);
  vh_manifest_t ma, mb;
  memset(&ma, 0, sizeof ma);
  memset(&mb, 0, sizeof mb);
  uint64_t seq;
  int64_t time;
  vt_load(L, t, sa, &ma, &seq, &time);
  char *msg = NULL;
  int rc =
      vh_version_load(vt_store(L, t), sb, t->h->vclock, &seq, &time, &mb, &msg);
  if (rc != 0) {
    vh_manifest_free(&ma);
    lua_pushfstring(L, "%s", msg ? msg : vh_err_name(rc));
    free(msg);
    return lua_error(L);
  }
  /* domains of either version, in name order (the CLI's order) */
  size_t nn = ma.ndomains + mb.ndomains, k = 0;
  const char **names = calloc(nn + 1, sizeof *names);
  for (size_t i = 0; names && i < ma.ndomains; i++)
    names[k++] = ma.domains[i].name;
  for (size_t i = 0; names && i < mb.ndomains; i++)
    if (!vt_has(&ma, mb.domains[i].name)) names[k++] = mb.domains[i].name;
  lua_newtable(L);
  for (size_t i = 0; names && i < k; i++)
    for (size_t j = i + 1; j < k; j++)
      if (strcmp(names[j], names[i]) < 0) {
        const char *x = names[i];
        names[i] = names[j];
        names[j] = x;
      }
  for (size_t i = 0; names && i < k && rc == 0; i++) {
    if (i > 0 && strcmp(names[i], names[i - 1]) == 0) continue;
    uint64_t ra = vt_root_of(&ma, names[i]), rb = vt_root_of(&mb, names[i]);
    vh_tab_t *a = ra ? vh_tab_stub_view(ra) : NULL;
    vh_tab_t *b = rb ? vh_tab_stub_view(rb) : NULL;
    vt_diff_t x = {L, names[i]};
    rc = vh_tab_diff(a, b, NULL, 0, vt_diff_cb, &x);
    if (a) vh_tab_release(a);
    if (b) vh_tab_release(b);
  }
  free(names);
  vh_manifest_free(&ma);
  vh_manifest_free(&mb);
  if (rc != 0) {
    const char *fm = NULL;
    vh_trie_fault(&fm);
    lua_pushfstring(L, "diff: %s", fm ? fm : vh_err_name(rc));
    vh_trie_fault_clear();
    return lua_error(L);
  }
  return 1;
}

/* ---- life cycle ---- */

static int vt_rm(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* Stop the host like `vedhost run` stops (every slice durable, store
 * closed), free it, and remove its data dir unless keep. */
static void vt_close_host(vt_host_t *t, int keep, int crash) {
  vt_host_t *was = vt_active;
  if (t->h) {
    vt_enter(t);
    vh_host_t *h = t->h;
    if (h->phase == VH_PHASE_RUN && !crash) vt_drain(h);
    int code = 0;
    if (h->phase != VH_PHASE_LOAD) vh_host__run_end(h, &code);
    vh_host_free(h);
    t->h = NULL;
  }
  if (t->dir) { /* kept: the caller's now (a restart reopens it) */
    if (!keep) nftw(t->dir, vt_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(t->dir);
    t->dir = NULL;
  }
  vh_log_set_sink(NULL, NULL);
  vt_active = NULL;
  if (was && was != t) vt_enter(was);
}

/* close([keep_dir [, crash]]): crash = stop as kill -9 would, after the
 * slices that ended: queued calls are dropped, queued messages and timers
 * stay in the store; nothing more runs. */
static int vt_close(lua_State *L) {
  vt_host_t *t = luaL_checkudata(L, 1, VT_MT);
  vt_close_host(t, lua_toboolean(L, 2), lua_toboolean(L, 3));
  return 0;
}

static int vt_gc(lua_State *L) {
  vt_host_t *t = luaL_checkudata(L, 1, VT_MT);
  vt_close_host(t, 0, 0);
  for (size_t i = 0; i < t->nlogs; i++) free(t->logs[i]);
  free(t->logs);
  t->logs = NULL;
  t->nlogs = t->caplogs = 0;
  return 0;
}

static int vt_opt_int(lua_State *L, int idx, const char *k, lua_Integer def,
                      lua_Integer *out) {
  int ty = lua_getfield(L, idx, k);
  *out = ty == LUA_TNIL ? def : lua_tointeger(L, -1);
  lua_pop(L, 1);
  return ty != LUA_TNIL;
}

/* open{dir=, scripts={...}, now=ms, seed=n, timeout=ms, memory=MB,
 *      retain=spec, log_level=, echo=bool, fresh=bool, restarts=n}
 * -> host, or raises with the one-line load error. The data dir's parent
 * must exist; the dir is created (or reopened: a restart). */
static int vt_open(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "dir");
  const char *dir = luaL_checkstring(L, -1);
  lua_getfield(L, 1, "scripts");
  luaL_checktype(L, -1, LUA_TTABLE);
  int scripts = lua_gettop(L);
  lua_Integer now, seed, timeout, memory;
  vt_opt_int(L, 1, "now", 0, &now);
  vt_opt_int(L, 1, "seed", 0, &seed);
  lua_Integer restarts;
  vt_opt_int(L, 1, "restarts", 0, &restarts);
  vt_opt_int(L, 1, "timeout", 1000, &timeout);
  vt_opt_int(L, 1, "memory", 1024, &memory);
  vh_host_opts_t o;
  vh_host_opts_default(&o);
  o.data_dir = dir;
  o.durability = VH_DURABILITY_NOSYNC;
  o.watch = 0;
  o.test_store = 1;
  o.handler_timeout_ms = (int)timeout;
  o.memory_limit = (size_t)memory << 20;
  lua_getfield(L, 1, "log_level");
  if (!lua_isnil(L, -1) &&
      vh_log_parse_level(luaL_checkstring(L, -1), &o.log_level) != 0)
    return luaL_error(L, "log_level: debug, info, warn or error");
  lua_pop(L, 1);
  lua_getfield(L, 1, "retain");
  if (!lua_isnil(L, -1)) {
    char msg[256];
    vh_cli_retain_t cr;
    if (vh_cli_retain(luaL_checkstring(L, -1), &cr, msg, sizeof msg) != 0)
      return luaL_error(L, "retain: %s", msg);
    memset(&o.retain, 0, sizeof o.retain);
    o.retain.zero = cr.zero;
    o.retain.age_ms = cr.age_ms;
    o.retain.slices = cr.slices;
    o.retain.bytes = cr.bytes;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "echo");
  int echo = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "fresh"); /* a new dir: removed if the open fails */
  int fresh = lua_toboolean(L, -1);
  lua_pop(L, 1);

  vt_host_t *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, VT_MT);
  t->echo = echo;
  t->dir = strdup(dir);
  if (!t->dir) return luaL_error(L, "out of memory");
  vt_enter(t);
  char err[1024];
  int rc = vh_host_new(&o, &t->h, err, sizeof err);
  if (rc != 0) {
    vt_close_host(t, !fresh, 0); /* a restart's dir is the caller's */
    return luaL_error(L, "%s", err);
  }
  vt_enter(t);
  t->h->vclock_on = 1;
  t->h->vclock = now;
  /* math.random: handlers draw from per-slice generators seeded from the
   * host seed (det.c); a test's seed (and how many restarts it made)
   * fixes it, so a test run twice draws the same numbers. Script top
   * levels use Lua's own generator: seeded too. */
  uint64_t x = (uint64_t)seed * 0x9e3779b97f4a7c15ULL +
               (uint64_t)restarts * 0xd1b54a32d192ed03ULL + 1;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  t->h->host_seed = x ^ (x >> 31);
  lua_State *HL = t->h->L;
  lua_getglobal(HL, "math");
  lua_getfield(HL, -1, "randomseed");
  lua_pushinteger(HL, seed);
  if (lua_pcall(HL, 1, 0, 0) != LUA_OK) lua_pop(HL, 1);
  lua_pop(HL, 1);
  int n = (int)luaL_len(L, scripts);
  for (int i = 1; i <= n && rc == 0; i++) {
    lua_rawgeti(L, scripts, i);
    const char *p = lua_tostring(L, -1);
    if (!p) {
      snprintf(err, sizeof err, "scripts[%d] is not a path", i);
      rc = -1;
    } else {
      rc = vh_host_load(t->h, p, err, sizeof err);
    }
    lua_pop(L, 1);
  }
  if (rc == 0 && n == 0) {
    snprintf(err, sizeof err, "no scripts given");
    rc = -1;
  }
  if (rc == 0 && vh_host__run_begin(t->h) != 0) {
    snprintf(err, sizeof err, "the host cannot run");
    rc = -1;
  }
  if (rc != 0) {
    vt_close_host(t, !fresh, 0);
    return luaL_error(L, "%s", err);
  }
  vt_drain(t->h); /* the first slice: migrate, start() */
  return 1;
}

/* rmdir(path): remove a data dir and everything in it */
static int vt_rmdir(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  nftw(p, vt_rm, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

int luaopen_ved_testing_core(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"advance", vt_advance}, {"step", vt_step},
      {"post", vt_post},       {"idle", vt_idle},
      {"now", vt_now},         {"running", vt_running},
      {"call", vt_call},       {"state", vt_state},
      {"domains", vt_domains}, {"reload", vt_reload},
      {"logs", vt_logs},       {"versions", vt_versions},
      {"at", vt_at},           {"diff", vt_diff},
      {"close", vt_close},     {NULL, NULL}};
  if (luaL_newmetatable(L, VT_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, vt_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, vt_open);
  lua_setfield(L, -2, "open");
  lua_pushcfunction(L, vt_rmdir);
  lua_setfield(L, -2, "rmdir");
  return 1;
}
