/*
 * vedcore.c - the `vedcore` Lua module: the state core without the host.
 *
 * busted specs load it from a plain lua5.4 (LUA_CPATH=build/lib/?.so) to
 * test the proxies, transactions and conversions without a libuv loop:
 *
 *   local core = require "vedcore"
 *   local st = core.new_state({ count = 0 }, "state")
 *   st:transact(function(state) state.count = state.count + 1 end)
 *
 * Module fields:
 *   new_state(init, name)  a "ved.state" userdata; init is a plain table,
 *                          a proxy (copied) or nil (empty)
 *   type next pairs ipairs rawlen rawequal table   proxy-aware (compat.c)
 *   compat(env)            install those into the table env
 *   copy(v)                deep plain Lua copy with the state's rules
 *   isproxy(v)
 *   stats()                { bytes = vh_mem_bytes(), blocks, nodes }, after
 *                          dropping the key cache (vhl_key_cache_flush)
 *   _guard(st_or_nil, strict)   test hook for vhl_guard/vhl_guard_strict
 *   _bare()                benchmark reference: a userdata with do-nothing
 *                          C __index and __len
 *
 * The module sets no guard: proxies are usable from anywhere until _guard.
 */
#include "vhl_int.h"

static int core_new_state(lua_State *L) {
  const char *name = luaL_optstring(L, 2, "state");
  vh_tab_t *root = NULL;
  if (!lua_isnoneornil(L, 1)) {
    if (!lua_istable(L, 1) && !vhl_isproxy(L, 1))
      return luaL_typeerror(L, 1, "table or nil");
    vh_val_t v;
    vhl_tovalue(L, 1, name, &v);
    root = v.u.t;
  }
  vhl_state_new(L, root, name);
  return 1;
}

static int core_copy(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  vhl_box_t *box = vhl__box_new(L);
  vhl_tovalue(L, 1, "value", &box->v);
  vhl_pushvalue(L, box->v);
  vh_val_t v = box->v;
  box->v = vh_nil();
  vh_val_release(v);
  return 1;
}

static int core_isproxy(lua_State *L) {
  lua_pushboolean(L, vhl_isproxy(L, 1));
  return 1;
}

/* The key cache is flushed first, so that the numbers count state only. */
static int core_stats(lua_State *L) {
  vhl_key_cache_flush();
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)vh_mem_bytes());
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, (lua_Integer)vh_mem_blocks());
  lua_setfield(L, -2, "blocks");
  lua_pushinteger(L, (lua_Integer)vh_trie_live_nodes());
  lua_setfield(L, -2, "nodes");
  return 1;
}

static int core_guard(lua_State *L) {
  vhl_state_t *st = NULL;
  if (!lua_isnoneornil(L, 1)) {
    vhl_proxy_t *p = vhl__toproxy(L, 1);
    st = p != NULL ? p->st->dom : vhl_state_check(L, 1);
  }
  vhl_guard(L, st);
  vhl_guard_strict(L, lua_toboolean(L, 2));
  return 0;
}

/* Benchmark reference: a userdata whose C __index returns 1 and whose C
 * __len returns 0, doing nothing else. Its cost against a plain table read
 * is the floor of any C-metamethod proxy. */
static int bare_index(lua_State *L) {
  lua_pushinteger(L, 1);
  return 1;
}

static int bare_len(lua_State *L) {
  lua_pushinteger(L, 0);
  return 1;
}

static int core_bare(lua_State *L) {
  lua_newuserdatauv(L, 1, 0);
  if (luaL_newmetatable(L, "ved.bare")) {
    lua_pushcfunction(L, bare_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, bare_len);
    lua_setfield(L, -2, "__len");
  }
  lua_setmetatable(L, -2);
  return 1;
}

static int core_compat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  vhl_open_compat(L, 1);
  lua_settop(L, 1);
  return 1;
}

int luaopen_vedcore(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"new_state", core_new_state}, {"copy", core_copy},
      {"isproxy", core_isproxy},     {"stats", core_stats},
      {"_guard", core_guard},        {"compat", core_compat},
      {"_bare", core_bare},          {NULL, NULL}};
  vhl__proxy_init(L);
  luaL_newlib(L, fns);
  vhl_open_compat(L, -1);
  return 1;
}
