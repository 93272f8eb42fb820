/*
 * api.c - what domain code calls: the ctx methods and ved.send / after /
 * every / log / now / exit (the C half of the ved module; the Lua half is
 * scripts/ved.lua).
 *
 * Who acts. Inside a handler, ved.* act for the running handler's domain,
 * exactly like its ctx. Outside handlers only script load time runs domain
 * code; there ved.after / ved.every act for the domain the loading script
 * declared last (an error before its first ved.domain), and ved.send
 * queues a message with an empty sender, delivered in the first slice
 * after every start(). A ctx is per domain and valid only during that
 * domain's handler calls: using a kept ctx later raises.
 *
 * Load-time effects are not part of a handler call: each takes effect at
 * once. Inside a handler, messages and `after` timers are written into the
 * system state and listed in h->pend, `every` timers wait in h->pend, and
 * a failing handler's are all undone (call.c, sched.c).
 *
 * ved.exit / os.exit do not unwind the caller: the handler runs to its end
 * and commits; the host stops after the current slice. A handler that
 * raises after asking to exit still stops the host (the request is not
 * state).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"
#include "vh_limits.h"
#include "vh_log.h"

#define VH_CTX_MT "ved.ctx"

/* The domain ved.after / ved.every act for, or raise. */
static vh_domain_t *vh_api_actor(lua_State *L, vh_host_t *h, const char *fn) {
  if (h->cur) return h->cur;
  if (h->phase == VH_PHASE_LOAD && h->load_dom) return h->load_dom;
  luaL_error(L,
             "%s: no current domain (call it from a handler or start, or "
             "after ved.domain in the script)",
             fn);
  return NULL;
}

/* Check that the ctx at index 1 is the running call's. */
static void vh_api_checkctx(lua_State *L, vh_host_t *h, const char *fn) {
  if (!h->cur)
    luaL_error(L, "%s: this ctx belongs to a handler call that has ended", fn);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->cur->ctx_ref);
  int same = lua_rawequal(L, 1, -1);
  lua_pop(L, 1);
  if (!same)
    luaL_error(L, "%s: not the ctx of the running handler (domain '%s')", fn,
               h->cur->name);
}

/* After an effect on the system state (rc from it): inside a handler it
 * waits for the call's end; outside one it takes effect at once. */
static void vh_api_effect_done(lua_State *L, vh_host_t *h, int rc,
                               const char *fn) {
  if (!h->cur) {
    if (rc == 0)
      vh_sys__pending_apply(h);
    else
      vh_sys__pending_drop(h);
  }
  if (rc != 0) luaL_error(L, "%s: out of memory", fn);
}

/* The event name e (len bytes) as a trie string [new], from the cache of
 * recent names when possible. The slot is picked by the address of the
 * Lua string's bytes (stable while that string lives) and always checked
 * by content, so a reused address can only cause a miss. NULL on OOM. */
static vh_str_t *vh_api_event_str(vh_host_t *h, const char *e, size_t len) {
  size_t slot = ((uintptr_t)e >> 4) % VH_EVCACHE;
  vh_str_t *s = h->evcache[slot];
  if (s && vh_str_len(s) == len && memcmp(vh_str_data(s), e, len) == 0) {
    vh_str_retain(s);
    return s;
  }
  s = vh_str_new(e, len);
  if (!s) return NULL;
  if (h->evcache[slot]) vh_str_release(h->evcache[slot]);
  vh_str_retain(s);
  h->evcache[slot] = s;
  return s;
}

/* Convert the payload at idx and an event name; raise before holding C
 * memory. On return *ev [new] and *pv [new]. */
static void vh_api_event_payload(lua_State *L, int ev_idx, int pv_idx,
                                 vh_str_t **ev, vh_val_t *pv) {
  size_t el;
  const char *e = luaL_checklstring(L, ev_idx, &el);
  vhl_tovalue(L, pv_idx, "payload", pv);
  *ev = vh_api_event_str(vh_host__of(L), e, el);
  if (!*ev) {
    vh_val_release(*pv);
    luaL_error(L, "out of memory");
  }
}

static int vh_api_send_at(lua_State *L, int base, const char *fn) {
  vh_host_t *h = vh_host__of(L);
  size_t nl;
  const char *name = luaL_checklstring(L, base, &nl);
  luaL_checkstring(L, base + 1);
  lua_settop(L, base + 2);
  vh_domain_t *to = vh_host__find(h, name, nl);
  if (!to) return luaL_error(L, "%s: no domain '%s'", fn, name);
  vh_str_t *ev;
  vh_val_t pv;
  vh_api_event_payload(L, base + 1, base + 2, &ev, &pv);
  vh_sys__begin(h);
  int rc = vh_sys__send(h, to, h->cur, ev, pv);
  vh_api_effect_done(L, h, rc, fn);
  return 0;
}

/* The longest delay or interval, in ms: 2^53 (about 285,000 years) keeps
 * every ms exact in a double and ctx.now + ms far from int64 overflow. */
#define VH_API_MAX_MS 9007199254740992.0

/* A delay (after: min_excl 0) or an interval (every: min_excl 1) in ms from
 * the number at idx, rounded up; raise with the caller's file:line if it
 * is not a finite number >= 0 (> 0 for every) and <= VH_API_MAX_MS. */
static int64_t vh_api_delay(lua_State *L, int idx, const char *fn,
                            int min_excl) {
  double ms = luaL_checknumber(L, idx);
  int ok = min_excl ? ms > 0 : ms >= 0; /* false for NaN */
  if (!ok || !(ms <= VH_API_MAX_MS))
    luaL_error(L,
               "%s: %s must be a finite number of ms %s and at most 2^53 "
               "(got %s)",
               fn, min_excl ? "the interval" : "the delay",
               min_excl ? "> 0" : ">= 0",
               ms != ms ? "nan" : lua_tostring(L, idx)); /* not "-nan" */
  return (int64_t)ceil(ms);
}

static int vh_api_after_at(lua_State *L, int base, const char *fn) {
  vh_host_t *h = vh_host__of(L);
  vh_domain_t *d = vh_api_actor(L, h, fn);
  int64_t ms = vh_api_delay(L, base, fn, 0);
  luaL_checkstring(L, base + 1);
  lua_settop(L, base + 2);
  vh_str_t *ev;
  vh_val_t pv;
  vh_api_event_payload(L, base + 1, base + 2, &ev, &pv);
  vh_sys__begin(h);
  int rc = vh_sys__after(h, d, vh_host__now(h) + ms, ev, pv);
  vh_api_effect_done(L, h, rc, fn);
  return 0;
}

static int vh_api_every_at(lua_State *L, int base, const char *fn) {
  vh_host_t *h = vh_host__of(L);
  vh_domain_t *d = vh_api_actor(L, h, fn);
  int64_t ms = vh_api_delay(L, base, fn, 1);
  luaL_checkstring(L, base + 1);
  lua_settop(L, base + 2);
  vh_every_t *e = calloc(1, sizeof *e);
  if (!e) return luaL_error(L, "%s: out of memory", fn);
  /* e is not yet reachable: hand it to a pending list before anything
   * else can raise. */
  e->h = h;
  e->dom = d;
  e->ms = ms;
  e->payload = vh_nil();
  size_t el;
  const char *ename = lua_tolstring(L, base + 1, &el);
  e->event = vh_api_event_str(h, ename, el);
  if (!e->event) {
    free(e);
    return luaL_error(L, "%s: out of memory", fn);
  }
  e->next = h->pend.everies;
  h->pend.everies = e; /* from here a raise drops it with the call */
  vhl_tovalue(L, base + 2, "payload", &e->payload);
  if (!h->cur) vh_sys__pending_apply(h); /* load time: start now */
  return 0;
}

/* Concatenate the arguments from base on with tostring, space separated. */
static void vh_api_log_at(lua_State *L, int base, const char *tag) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = base; i <= n; i++) {
    if (i > base) luaL_addchar(&b, ' ');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  vh_log_text(VH_LOG_INFO, tag, lua_tostring(L, -1), NULL);
}

/* ---- ctx methods ---- */

static int vh_api_ctx_send(lua_State *L) {
  vh_api_checkctx(L, vh_host__of(L), "ctx:send");
  return vh_api_send_at(L, 2, "ctx:send");
}

static int vh_api_ctx_after(lua_State *L) {
  vh_api_checkctx(L, vh_host__of(L), "ctx:after");
  return vh_api_after_at(L, 2, "ctx:after");
}

static int vh_api_ctx_every(lua_State *L) {
  vh_api_checkctx(L, vh_host__of(L), "ctx:every");
  return vh_api_every_at(L, 2, "ctx:every");
}

static int vh_api_ctx_log(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  vh_api_checkctx(L, h, "ctx:log");
  vh_api_log_at(L, 2, h->cur->name);
  return 0;
}

/* ---- ved.* ---- */

static int vh_api_send(lua_State *L) {
  return vh_api_send_at(L, 1, "ved.send");
}

static int vh_api_after(lua_State *L) {
  return vh_api_after_at(L, 1, "ved.after");
}

static int vh_api_every(lua_State *L) {
  return vh_api_every_at(L, 1, "ved.every");
}

static int vh_api_log(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  vh_api_log_at(L, 1, h->cur ? h->cur->name : "ved");
  return 0;
}

static int vh_api_now(lua_State *L) {
  lua_pushinteger(L, vh_host__now(vh_host__of(L)));
  return 1;
}

static int vh_api_exit(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  int code = 0;
  if (lua_isboolean(L, 1)) {
    code = lua_toboolean(L, 1) ? 0 : 1;
  } else if (!lua_isnoneornil(L, 1)) {
    lua_Integer c = luaL_checkinteger(L, 1);
    luaL_argcheck(L, c >= 0 && c <= 255, 1, "exit code must be 0..255");
    code = (int)c;
  }
  vh_log(VH_LOG_INFO, h->cur ? h->cur->name : "ved",
         "exit(%d) requested: stopping after this slice", code);
  vh_host_stop(h, code);
  return 0;
}

/* core.name_ok(name): true if name is a valid domain name (vh_limits.h:
 * the one rule that scripts, the manifest and import share). */
static int vh_api_name_ok(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, vh_domain_name_ok(s, n));
  return 1;
}

void vh_api__push_core(lua_State *L) {
  static const luaL_Reg core[] = {{"register", vh_host__register},
                                  {"send", vh_api_send},
                                  {"after", vh_api_after},
                                  {"every", vh_api_every},
                                  {"log", vh_api_log},
                                  {"now", vh_api_now},
                                  {"exit", vh_api_exit},
                                  {"name_ok", vh_api_name_ok},
                                  {NULL, NULL}};
  luaL_newlib(L, core);
  lua_pushinteger(L, (lua_Integer)VH_MAX_VERSION);
  lua_setfield(L, -2, "max_version");
  lua_pushstring(L, VH_HOST_VERSION); /* the one version string */
  lua_setfield(L, -2, "version");
}

int vh_api__new_ctx(lua_State *L, const char *name) {
  static const luaL_Reg methods[] = {{"send", vh_api_ctx_send},
                                     {"after", vh_api_ctx_after},
                                     {"every", vh_api_ctx_every},
                                     {"log", vh_api_ctx_log},
                                     {NULL, NULL}};
  lua_createtable(L, 0, 4);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "domain");
  if (luaL_newmetatable(L, VH_CTX_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, VH_CTX_MT); /* getmetatable(ctx) cannot change it */
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}
