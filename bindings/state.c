/*
 * state.c - vhl_state_t, transactions, and the "ved.state" userdata.
 *
 * A state is one domain's data: the current root table, plus, while a
 * transaction is open, the root it started from (base) and the edit token
 * its writes use. It lives inside a Lua userdata whose __gc releases both
 * roots. Its user value 1 is the root proxy (strong), so the root proxy is
 * always the same userdata; a snapshot's user value 2 is the writer state,
 * kept alive so that the guard pointer comparison stays meaningful.
 *
 * Transactions (Clojure transients, see vh_trie.h):
 *   begin     base = root (retained), edit = vh_edit_new()
 *   write     nodes stamped with edit are mutated in place, others copied
 *   commit    release base; edit = 0
 *   rollback  release root; root = base; edit = 0
 * Both commit and rollback bump the epoch, so every proxy re-resolves.
 *
 * Invariants:
 *  1. edit == 0 exactly when no transaction is open (base == NULL).
 *  2. A node stamped with the current edit is reachable only from root
 *     through nodes stamped with edit; none is pinned (a pin or a snapshot
 *     switches the transaction to a fresh token first: vhl__pin_prepare).
 *  3. A snapshot state is read-only: edit stays 0, root never changes.
 *
 * The root proxy of a state is found from the bare pointer (for
 * vhl_state_push_root) through a registry table with weak values mapping a
 * light userdata (the vhl_state_t address) to the root proxy. The entry is
 * cleared before the state's memory can be reused, because the proxy and
 * the state die in the same collection.
 *
 * Lua methods of "ved.state" (used by vedcore and the specs):
 *   st.state, st.name, st:begin(), st:commit(), st:rollback(), st:in_tx(),
 *   st:transact(fn) -> ok, err, st:snapshot() -> read-only root proxy.
 */
#include <stdio.h>
#include <string.h>

#include "vhl_int.h"

#define ROOTS_KEY "ved.roots"

/* ---- transactions ---- */

int vhl_tx_begin(vhl_state_t *st) {
  if (st->readonly) return VHL_EREADONLY;
  if (st->edit != 0) return VHL_EBUSY;
  vh_tab_retain(st->root);
  st->base = st->root;
  st->edit = vh_edit_new();
  st->writes_base = st->writes;
  return 0;
}

void vhl_tx_commit(vhl_state_t *st) {
  if (st->edit == 0) return;
  vh_tab_t *base = st->base;
  st->base = NULL;
  st->edit = 0;
  st->epoch++;
  vh_tab_release(base);
}

void vhl_tx_rollback(vhl_state_t *st) {
  if (st->edit == 0) return;
  vh_tab_t *cur = st->root;
  st->writes = st->writes_base;
  st->root = st->base;
  st->base = NULL;
  st->edit = 0;
  st->epoch++;
  vh_tab_release(cur);
}

uint64_t vhl_state_writes_take(vhl_state_t *st) {
  uint64_t n = st->writes;
  st->writes = st->writes_base = 0;
  return n;
}

int vhl_tx_open(const vhl_state_t *st) {
  return st->edit != 0;
}

void vhl__pin_prepare(vhl_state_t *st, const vh_tab_t *t) {
  if (st->edit != 0 && vh_tab_edit(t) == st->edit) st->edit = vh_edit_new();
}

void vhl_state_set_view(vhl_state_t *st, uint64_t seq) {
  st->readonly = 1;
  st->version = seq;
}

/* Why st may not be written, for messages. [borrowed: static or buf] */
const char *vhl__readonly_why(const vhl_state_t *st, char *buf, size_t cap) {
  if (st->version == 0) return "read-only snapshot";
  snprintf(buf, cap, "version %llu is read-only",
           (unsigned long long)st->version);
  return buf;
}

/* ---- roots ---- */

vh_tab_t *vhl_state_root(const vhl_state_t *st) {
  return st->root;
}

void vhl_state_set_root(lua_State *L, vhl_state_t *st, vh_tab_t *root) {
  if (root == NULL) {
    root = vh_tab_new(0);
    if (root == NULL) vhl__oom(L);
  }
  if (st->edit != 0 || st->readonly) {
    char why[64];
    vh_tab_release(root);
    luaL_error(L, "cannot replace the root of %s: %s", st->name,
               st->readonly ? vhl__readonly_why(st, why, sizeof why)
                            : "transaction open");
  }
  vh_tab_t *old = st->root;
  st->root = root;
  st->epoch++;
  vh_tab_release(old);
}

/* ---- the userdata ---- */

vhl_state_t *vhl__tostate(lua_State *L, int idx) {
  vhl_state_t *st = (vhl_state_t *)luaL_testudata(L, idx, VHL_STATE_MT);
  return st != NULL && st->magic == VHL_STATE_MAGIC ? st : NULL;
}

vhl_state_t *vhl_state_check(lua_State *L, int idx) {
  vhl_state_t *st = vhl__tostate(L, idx);
  if (st == NULL) luaL_typeerror(L, idx, VHL_STATE_MT);
  return st;
}

void vhl_state_push_root(lua_State *L, vhl_state_t *st) {
  lua_getfield(L, LUA_REGISTRYINDEX, ROOTS_KEY);
  lua_rawgetp(L, -1, st);
  lua_remove(L, -2);
}

static int state_gc(lua_State *L) {
  vhl_state_t *st = (vhl_state_t *)lua_touserdata(L, 1);
  if (st == NULL || st->magic != VHL_STATE_MAGIC) return 0;
  if (vhl__guard_st == st) vhl__guard_st = NULL;
  st->magic = 0;
  vh_tab_t *root = st->root, *base = st->base;
  st->root = st->base = NULL;
  st->edit = 0;
  if (root != NULL) vh_tab_release(root);
  if (base != NULL) vh_tab_release(base);
  return 0;
}

static int state_tostring(lua_State *L) {
  vhl_state_t *st = vhl_state_check(L, 1);
  lua_pushfstring(L, "ved.state: %s%s", st->name,
                  st->readonly ? " (snapshot)" : "");
  return 1;
}

static int state_begin(lua_State *L) {
  vhl_state_t *st = vhl_state_check(L, 1);
  int rc = vhl_tx_begin(st);
  if (rc == VHL_EBUSY)
    return luaL_error(L, "%s: a transaction is already open", st->name);
  if (rc != 0) {
    char why[64];
    return luaL_error(L, "%s: %s", st->name,
                      vhl__readonly_why(st, why, sizeof why));
  }
  return 0;
}

static int state_commit(lua_State *L) {
  vhl_state_t *st = vhl_state_check(L, 1);
  if (!vhl_tx_open(st))
    return luaL_error(L, "%s: no transaction is open", st->name);
  vhl_tx_commit(st);
  return 0;
}

static int state_rollback(lua_State *L) {
  vhl_state_t *st = vhl_state_check(L, 1);
  if (!vhl_tx_open(st))
    return luaL_error(L, "%s: no transaction is open", st->name);
  vhl_tx_rollback(st);
  return 0;
}

static int state_in_tx(lua_State *L) {
  lua_pushboolean(L, vhl_tx_open(vhl_state_check(L, 1)));
  return 1;
}

/* Message handler: add a traceback to string errors. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg =
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* st:transact(fn): begin; fn(st.state) under a traceback handler; commit
 * if it returned, roll back if it raised. Returns true, or false, err. */
static int state_transact(lua_State *L) {
  vhl_state_t *st = vhl_state_check(L, 1);
  luaL_checkany(L, 2);
  lua_settop(L, 2);
  state_begin(L);
  lua_pushcfunction(L, traceback);
  lua_pushvalue(L, 2);
  lua_getiuservalue(L, 1, 1);
  if (lua_pcall(L, 1, 0, 3) == LUA_OK) {
    vhl_tx_commit(st);
    lua_pushboolean(L, 1);
    return 1;
  }
  vhl_tx_rollback(st);
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

static int state_snapshot(lua_State *L) {
  vhl_state_t *st = vhl_state_check(L, 1);
  vhl__pin_prepare(st, st->root);
  vh_tab_retain(st->root);
  vhl_state_t *snap = vhl_state_new(L, st->root, st->name);
  snap->readonly = 1;
  snap->dom = st->dom;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 2);
  lua_getiuservalue(L, -1, 1);
  return 1;
}

static int state_index(lua_State *L) {
  vhl_state_t *st = vhl_state_check(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k != NULL && strcmp(k, "state") == 0) {
    lua_getiuservalue(L, 1, 1);
    return 1;
  }
  if (k != NULL && strcmp(k, "name") == 0) {
    lua_pushstring(L, st->name);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static const luaL_Reg state_methods[] = {{"begin", state_begin},
                                         {"commit", state_commit},
                                         {"rollback", state_rollback},
                                         {"in_tx", state_in_tx},
                                         {"transact", state_transact},
                                         {"snapshot", state_snapshot},
                                         {NULL, NULL}};

static void state_init(lua_State *L) {
  if (luaL_newmetatable(L, VHL_STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, state_tostring);
    lua_setfield(L, -2, "__tostring");
    luaL_newlib(L, state_methods);
    lua_pushcclosure(L, state_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, VHL_STATE_MT);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, ROOTS_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ROOTS_KEY);
  } else {
    lua_pop(L, 1);
  }
}

/* If a Lua memory error is raised before the userdata exists, root leaks;
 * nothing else can raise between taking root and owning it. */
vhl_state_t *vhl_state_new(lua_State *L, vh_tab_t *root, const char *name) {
  if (name == NULL) name = "state";
  size_t n = strlen(name);
  state_init(L);
  vhl__proxy_init(L);
  vhl_state_t *st = (vhl_state_t *)lua_newuserdatauv(L, sizeof *st + n + 1, 2);
  st->magic = VHL_STATE_MAGIC;
  st->readonly = 0;
  st->version = 0;
  st->root = root;
  st->base = NULL;
  st->edit = 0;
  st->epoch = 1;
  st->dom = st;
  st->writes = 0; /* counted for the version records */
  st->writes_base = 0;
  memcpy(st->name, name, n + 1);
  luaL_setmetatable(L, VHL_STATE_MT);
  if (st->root == NULL) {
    st->root = vh_tab_new(0);
    if (st->root == NULL) vhl__oom(L);
  }
  int idx = lua_gettop(L);
  vhl__proxy_new_root(L, st, idx);
  lua_getfield(L, LUA_REGISTRYINDEX, ROOTS_KEY);
  lua_pushvalue(L, -2);
  lua_rawsetp(L, -2, st);
  lua_pop(L, 1);
  lua_setiuservalue(L, idx, 1);
  return st;
}
