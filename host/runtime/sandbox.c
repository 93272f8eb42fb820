/*
 * sandbox.c - what domain code and REPL chunks may not reach: the parts of
 * the standard library that could crash the host, hang it, or break a
 * domain until restart.
 *
 * Domain scripts, their handlers, modules loaded with require and REPL
 * chunks all see _G; vh_host__sandbox (host.c, once, before any script)
 * replaces in _G (and in package.loaded where a library lives there):
 *
 *   debug           a table with traceback and getinfo only. getinfo drops
 *                   the `func` field when it is a C function: the host's
 *                   own C functions on the stack (the call trampoline)
 *                   take light userdata and must not be callable from Lua.
 *                   Every other debug function (getregistry, getmetatable,
 *                   setmetatable, getupvalue, setupvalue, upvalueid,
 *                   upvaluejoin, getlocal, setlocal, sethook, gethook,
 *                   getuservalue, setuservalue, setcstacklimit, debug)
 *                   raises "debug.X is not available in vedhost".
 *   load, loadfile  text chunks only (mode "t" whatever the caller asks):
 *                   a binary chunk is refused with Lua's own message. Lua
 *                   does not verify bytecode; a crafted one crashes the VM.
 *   dofile          text only. Both need a file name (without one Lua
 *                   reads stdin, which would block the loop).
 *   require         Lua modules are loaded as text only (package.searchers
 *                   [2] is replaced). C modules (LUA_CPATH) stay allowed:
 *                   the contract lets a script load C code, which can do
 *                   anything, so they are trusted like the host binary.
 *   getmetatable    for a userdata without __metatable, the string
 *                   "protected" instead of its metatable (calling a
 *                   userdata's __gc by hand frees it twice). Proxies,
 *                   states and the ctx have __metatable already.
 *   setmetatable    refuses a metatable with a __gc field: Lua runs
 *                   finalizers with hooks off, so the watchdog cannot stop
 *                   one that loops, and one could run at any allocation,
 *                   in or out of a handler. Checking at setmetatable time is
 *                   enough: Lua marks an object for finalization only if
 *                   its metatable has __gc when it is set (lgc.c,
 *                   luaC_checkfinalizer); __gc added later is never called.
 *                   __close is allowed: a to-be-closed variable's method
 *                   runs as ordinary Lua code, under the watchdog.
 *   collectgarbage  "collect", "count", "step", "isrunning", "restart"
 *                   only; "stop", "incremental", "generational", "setpause"
 *                   and "setstepmul" tune the host's one collector and are
 *                   refused.
 *
 * rawget / rawset / rawlen / setmetatable on a proxy raise already (a proxy
 * is a userdata: "table expected"). The shared string metatable stays
 * reachable (getmetatable("")): changing it affects every domain but
 * cannot crash the host.
 *
 * LIMITATIONS. C code that blocks (io.read on a terminal, os.execute, a
 * FIFO opened with io.open) is not interrupted by the watchdog (call.c).
 */
#include <string.h>

#include "host_int.h"

/* A refused function; upvalue 1: its name ("debug.sethook"). */
static int vh_sandbox_refuse(lua_State *L) {
  return luaL_error(L,
                    "%s is not available in vedhost (it could crash the host "
                    "or break a domain; see README, Sandbox)",
                    lua_tostring(L, lua_upvalueindex(1)));
}

/* debug.getinfo; upvalue 1: the stock one. A level in the running
 * thread counts from the caller, so it gains one for this wrapper. */
static int vh_sandbox_getinfo(lua_State *L) {
  int n = lua_gettop(L);
  int lv = lua_type(L, 1) == LUA_TTHREAD ? 2 : 1;
  int isnum = 0;
  lua_Integer level =
      lua_type(L, lv) == LUA_TNUMBER ? lua_tointegerx(L, lv, &isnum) : 0;
  if (isnum && (lv == 1 || lua_tothread(L, 1) == L)) {
    if (level >= 0 && level < LUA_MAXINTEGER) {
      lua_pushinteger(L, level + 1);
      lua_replace(L, lv);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, 1);
  if (lua_istable(L, -1)) {
    if (lua_getfield(L, -1, "func") == LUA_TFUNCTION &&
        lua_iscfunction(L, -1)) {
      lua_pushnil(L);
      lua_setfield(L, -3, "func");
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Replace _G.debug and package.loaded.debug. */
static void vh_sandbox_debug(lua_State *L) {
  static const char *const keep[] = {"traceback", NULL};
  lua_getglobal(L, "debug");
  int stock = lua_gettop(L);
  lua_newtable(L);
  int safe = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, stock)) {
    lua_pop(L, 1);
    const char *k = lua_tostring(L, -1);
    int kept = 0;
    for (int i = 0; keep[i]; i++) kept |= strcmp(k, keep[i]) == 0;
    if (kept) {
      lua_pushvalue(L, -1);
      lua_gettable(L, stock);
    } else if (strcmp(k, "getinfo") == 0) {
      lua_getfield(L, stock, "getinfo");
      lua_pushcclosure(L, vh_sandbox_getinfo, 1);
    } else {
      lua_pushfstring(L, "debug.%s", k);
      lua_pushcclosure(L, vh_sandbox_refuse, 1);
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, safe);
  }
  lua_pushvalue(L, safe);
  lua_setglobal(L, "debug");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, safe);
  lua_setfield(L, -2, "debug");
  lua_settop(L, stock - 1);
}

/* Call upvalue 1 with the arguments, the one at mode_idx forced to "t". */
static int vh_sandbox_textonly(lua_State *L, int mode_idx) {
  int n = lua_gettop(L);
  if (n < mode_idx) {
    lua_settop(L, mode_idx);
    n = mode_idx;
  }
  lua_pushliteral(L, "t");
  lua_replace(L, mode_idx);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static int vh_sandbox_load(lua_State *L) {
  return vh_sandbox_textonly(L, 3);
}

/* loadfile / dofile need a file name: without one Lua reads stdin, which
 * would block the loop. */
static int vh_sandbox_loadfile(lua_State *L) {
  luaL_checkstring(L, 1);
  return vh_sandbox_textonly(L, 2);
}

static int vh_sandbox_dofile(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  if (luaL_loadfilex(L, fname, "t") != LUA_OK) return lua_error(L);
  lua_call(L, 0, LUA_MULTRET);
  return lua_gettop(L) - 1;
}

/* package.searchers[2], text only; upvalue 1: the package table. */
static int vh_sandbox_search_lua(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_settop(L, 1);
  lua_getfield(L, lua_upvalueindex(1), "searchpath");
  lua_pushvalue(L, 1);
  if (lua_getfield(L, lua_upvalueindex(1), "path") != LUA_TSTRING)
    return luaL_error(L, "'package.path' must be a string");
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2)) return 1; /* the list of files tried */
  lua_pop(L, 1);
  const char *file = lua_tostring(L, -1);
  if (luaL_loadfilex(L, file, "t") != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                      name, file, lua_tostring(L, -1));
  lua_pushvalue(L, -2);
  return 2;
}

static int vh_sandbox_getmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  int t = lua_type(L, 1);
  if (t != LUA_TUSERDATA && t != LUA_TLIGHTUSERDATA) {
    if (!lua_getmetatable(L, 1)) {
      lua_pushnil(L);
      return 1;
    }
    luaL_getmetafield(L, 1, "__metatable"); /* if any, it is the answer */
    return 1;
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) return 1;
  if (!lua_getmetatable(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushliteral(L, "protected");
  return 1;
}

/* setmetatable; upvalue 1: the stock one. */
static int vh_sandbox_setmetatable(lua_State *L) {
  if (lua_istable(L, 2)) {
    lua_pushliteral(L, "__gc");
    int gc = lua_rawget(L, 2);
    lua_pop(L, 1);
    if (gc != LUA_TNIL)
      return luaL_error(L,
                        "setmetatable: __gc metamethods are not allowed in "
                        "vedhost (a finalizer runs outside the handler time "
                        "budget and could hang the host)");
  }
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, 1);
  return 1;
}

/* collectgarbage; upvalue 1: the stock one. */
static int vh_sandbox_collectgarbage(lua_State *L) {
  static const char *const ok[] = {"collect",   "count",   "step",
                                   "isrunning", "restart", NULL};
  const char *opt = luaL_optstring(L, 1, "collect");
  int allowed = 0;
  for (int i = 0; ok[i]; i++) allowed |= strcmp(opt, ok[i]) == 0;
  if (!allowed)
    return luaL_error(L,
                      "collectgarbage('%s') is not allowed in vedhost (the "
                      "host owns the collector; allowed: collect, count, "
                      "step, isrunning, restart)",
                      opt);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* _G[name] = fn with the old _G[name] as its upvalue. */
static void vh_sandbox_wrap(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getglobal(L, name);
  lua_pushcclosure(L, fn, 1);
  lua_setglobal(L, name);
}

void vh_host__sandbox(lua_State *L) {
  int top = lua_gettop(L);
  vh_sandbox_debug(L);
  vh_sandbox_wrap(L, "load", vh_sandbox_load);
  vh_sandbox_wrap(L, "loadfile", vh_sandbox_loadfile);
  vh_sandbox_wrap(L, "setmetatable", vh_sandbox_setmetatable);
  vh_sandbox_wrap(L, "collectgarbage", vh_sandbox_collectgarbage);
  lua_pushcfunction(L, vh_sandbox_dofile);
  lua_setglobal(L, "dofile");
  lua_pushcfunction(L, vh_sandbox_getmetatable);
  lua_setglobal(L, "getmetatable");
  if (lua_getglobal(L, "package") == LUA_TTABLE &&
      lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, vh_sandbox_search_lua, 1);
    lua_rawseti(L, -2, 2);
  }
  lua_settop(L, top);
}
