/*
 * repl_replay.c - the REPL's replay(V): re-run the slice that made
 * version V on version V-1 with the code running now, and return what
 * differs from V.
 *
 *   local diffs, info = replay(-1)
 *   -> diffs: records shaped like diff()'s, from V to the replay
 *      ({op = "~", path = {"gen", "n"}, old = 5, new = 6, line = ...});
 *      empty when the replay reproduces V's state
 *   -> info: {version = V, calls = N, reproduced = true|false,
 *      errors = {"gen.tick: a.lua:3: boom", ...},
 *      replies = {{call = i, event = "counter.get", recorded = x,
 *                  replayed = y}, ...}}
 *
 * V is a spec as for at(V). Bad input raises one line: an unknown
 * version, one whose V-1 is not retained, an unreplayable slice (with its
 * reason), a domain whose running version differs from V-1's (replay runs
 * no migrate).
 *
 * HOW. Inside the running host (host/runtime/replay.c), on private copies
 * of V-1's roots (vh_tab_stub_private: writable, and nothing loaded under
 * them, nor made by their writes, ever reports a death to the store). The
 * chunk's own writes so far are kept as a savepoint (as send() does), each
 * domain's live root is set aside, the private roots put in their place,
 * the recorded calls run (h->replaying: nothing recorded, sent or timed),
 * the end roots taken and the live roots put back: nothing in between
 * raises, so the live state is never left swapped. The store is never
 * written by it: no slice ends during the replay, and the private roots
 * are never part of a live version.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repl_int.h"
#include "vh_changes.h"
#include "vh_version_spec.h"
#include "vh_versions.h"

static int64_t vh_rr_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct vh_rr_prev {
  uint64_t seq, found;
} vh_rr_prev_t;

static int vh_rr_prev_fn(void *arg, const vh_version_t *v) {
  vh_rr_prev_t *p = arg;
  if (v->seq < p->seq) {
    p->found = v->seq;
    return 1;
  }
  return 0;
}

#define VH_RR_MT "ved.repl.replay"

/* What the chunk holds while replay() runs: freed by __gc if it raises. */
typedef struct vh_rrbox {
  vh_inputs_t in;
  vh_version_t prev;
  vh_manifest_t m;
  vh_replay_res_t res;
  vh_vside_t a, b;
} vh_rrbox_t;

static int vh_rrbox_gc(lua_State *L) {
  vh_rrbox_t *bx = luaL_checkudata(L, 1, VH_RR_MT);
  vh_replay_res_free(&bx->res); /* before the inputs it points into */
  vh_inputs_free(&bx->in);
  vh_version_free(&bx->prev);
  vh_manifest_free(&bx->m);
  vh_vside_free(&bx->a);
  vh_vside_free(&bx->b);
  return 0;
}

static int vh_rr_fail(lua_State *L, char *msg, int rc) {
  lua_pushfstring(L, "replay: %s", msg ? msg : vh_err_name(rc));
  free(msg);
  return lua_error(L);
}

int vh_repl__replay(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (!h->repl || !h->repl->active || h->cur || h->replaying)
    return luaL_error(L, "replay: only available in a REPL chunk");
  struct vh_store *store = vh_durable__store(h);
  if (!store) return luaL_error(L, "replay: this host has no store");
  lua_settop(L, 1);
  const char *spec;
  if (lua_type(L, 1) == LUA_TNUMBER && lua_isinteger(L, 1)) {
    lua_Integer n = lua_tointeger(L, 1);
    spec = n > 0 ? lua_pushfstring(L, "%I", n) : lua_pushfstring(L, "-%I", -n);
  } else if (lua_type(L, 1) == LUA_TSTRING) {
    spec = lua_tostring(L, 1);
  } else {
    return luaL_error(L, "replay: a version is an integer or a string");
  }
  vh_rrbox_t *bx = lua_newuserdatauv(L, sizeof *bx, 0);
  memset(bx, 0, sizeof *bx);
  if (luaL_newmetatable(L, VH_RR_MT)) {
    lua_pushcfunction(L, vh_rrbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int box = lua_gettop(L);

  uint64_t v = 0;
  int64_t t = 0;
  char *msg = NULL;
  int rc = vh_version_load(store, spec, vh_rr_wall_ms(), &v, &t, &bx->m, &msg);
  if (rc != 0) return vh_rr_fail(L, msg, rc);
  rc = vh_store_inputs_get(store, v, &bx->in, &msg);
  if (rc != 0) return vh_rr_fail(L, msg, rc);
  if (bx->in.unreplayable)
    return luaL_error(L, "replay: version %I is unreplayable: %s",
                      (lua_Integer)v,
                      bx->in.reason ? bx->in.reason : "(no reason)");
  vh_history_t hist;
  vh_rr_prev_t pv = {v, 0};
  rc = vh_store_history(store, &hist, &msg);
  if (rc == 0) rc = vh_store_versions_each(store, 1, vh_rr_prev_fn, &pv, &msg);
  if (rc < 0) return vh_rr_fail(L, msg, rc);
  free(msg);
  msg = NULL;
  if (pv.found == 0 || pv.found < hist.oldest)
    return luaL_error(L,
                      "replay: version %I cannot be replayed: the version "
                      "before it is not retained (the oldest retained is %I)",
                      (lua_Integer)v, (lua_Integer)hist.oldest);
  rc = vh_store_version_get(store, pv.found, &bx->prev, &msg);
  if (rc != 0) return vh_rr_fail(L, msg, rc);
  for (int i = 0; i < h->ndoms; i++) {
    const vh_manifest_domain_t *e =
        vh_manifest_find(&bx->prev.m, h->doms[i]->name);
    if (e && e->version != h->doms[i]->version)
      return luaL_error(L,
                        "replay: domain %s runs version %I but version %I "
                        "holds version %I: replay runs no migrate",
                        h->doms[i]->name, (lua_Integer)h->doms[i]->version,
                        (lua_Integer)pv.found, (lua_Integer)e->version);
  }
  rc = vh_vside_from_manifest(&bx->a, &bx->m, vh_tab_stub_view);
  if (rc != 0) return luaL_error(L, "replay: out of memory");

  /* The private roots first (may fail: nothing swapped yet). */
  int n = h->ndoms;
  vh_tab_t **live = calloc((size_t)n + 1, sizeof *live);
  vh_tab_t **priv = calloc((size_t)n + 1, sizeof *priv);
  int oom = !live || !priv;
  for (int i = 0; !oom && i < n; i++) {
    const vh_manifest_domain_t *e =
        vh_manifest_find(&bx->prev.m, h->doms[i]->name);
    priv[i] = e && e->root ? vh_tab_stub_private(e->root) : vh_tab_new(0);
    if (!priv[i]) oom = 1;
  }
  if (oom) {
    for (int i = 0; priv && i < n; i++)
      if (priv[i]) vh_tab_release(priv[i]);
    free(live);
    free(priv);
    return luaL_error(L, "replay: out of memory");
  }
  /* Swap: from here to the swap back nothing raises. */
  for (int i = 0; i < n; i++) {
    vhl_state_t *st = h->doms[i]->st;
    vhl_tx_commit(st); /* the chunk's writes so far: a savepoint */
    live[i] = vhl_state_root(st);
    vh_tab_retain(live[i]);
    vhl_state_set_root(L, st, priv[i]);
  }
  rc = vh_replay_slice(h, &bx->in, NULL, NULL, &bx->res);
  for (int i = 0; i < n; i++) {
    vhl_state_t *st = h->doms[i]->st;
    if (rc == 0 &&
        vh_vside_add(&bx->b, h->doms[i]->name, vhl_state_root(st)) != 0)
      rc = VH_ENOMEM;
    vhl_state_set_root(L, st, live[i]);
    vhl_tx_begin(st);
  }
  free(live);
  free(priv);
  vh_host__arm(h); /* the chunk's own time budget again */
  if (rc != 0) return luaL_error(L, "replay: %s", vh_err_name(rc));

  vh_repl__diff_push(L, &bx->a, &bx->b, "replay");
  int records = lua_gettop(L);
  size_t nrec = lua_rawlen(L, records);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, "version");
  lua_pushinteger(L, (lua_Integer)bx->res.n);
  lua_setfield(L, -2, "calls");
  lua_pushboolean(L, nrec == 0 && bx->res.differs == 0 && bx->res.errors == 0);
  lua_setfield(L, -2, "reproduced");
  lua_newtable(L);
  lua_newtable(L);
  int errs = lua_gettop(L) - 1, reps = lua_gettop(L);
  for (size_t i = 0; i < bx->res.n; i++) {
    const vh_replay_call_t *c = &bx->res.calls[i];
    const vh_input_t *e = c->in;
    if (c->err && c->rc == VH_HOST_EROLLBACK) {
      lua_pushfstring(L, "%s.%s: %s", e->domain, e->event, c->err);
      lua_rawseti(L, errs, (lua_Integer)lua_rawlen(L, errs) + 1);
    }
    if (!c->differs) continue;
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_setfield(L, -2, "call");
    lua_pushfstring(L, "%s.%s", e->domain, e->event);
    lua_setfield(L, -2, "event");
    vhl_pushvalue(L, e->reply);
    lua_setfield(L, -2, "recorded");
    vhl_pushvalue(L, c->reply);
    lua_setfield(L, -2, "replayed");
    lua_rawseti(L, reps, (lua_Integer)lua_rawlen(L, reps) + 1);
  }
  lua_setfield(L, -3, "replies");
  lua_setfield(L, -2, "errors");
  lua_remove(L, box);
  return 2;
}
