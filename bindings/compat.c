/*
 * compat.c - proxy-aware replacements for Lua's table-walking functions.
 *
 * Domain code must keep working when a state table is a proxy, so its
 * environment gets versions of `type`, `next`, `pairs`, `ipairs`, `rawlen`,
 * `rawequal` and `table` that treat proxies as tables:
 *  - type(proxy) == "table".
 *  - next(proxy, k) is stateless (vh_tab_next, O(depth) per step). Unlike
 *    Lua's next it cannot continue from a key that was deleted meanwhile
 *    (it raises "invalid key to 'next'"); pairs has no such limit.
 *  - pairs(proxy) walks a pinned version (vhl__pairs) and returns a fourth,
 *    to-be-closed value that unpins at once when the loop is left.
 *  - ipairs reads the current version, stopping at the first nil.
 *  - rawlen(proxy) is #; rawequal(a, b) is true for two proxies of the same
 *    path of the same state.
 *  - table.insert / table.remove shift inside the trie (vh_tab_insert /
 *    vh_tab_remove: O(1) at the end, no metamethod per element);
 *    table.concat / table.unpack read the trie directly; table.sort sorts
 *    a permutation with Lua's own sort, then moves the values (tables are
 *    moved, not copied, so each node keeps one parent). table.move goes
 *    through the metamethods, which is already correct for proxies: a table
 *    element read is a proxy, and storing it stores a copy.
 *    For plain tables every function is the stock one.
 *
 * Note: the stock table.sort also works on proxies through metamethods for
 * scalar elements, but NOT for table elements: it swaps through live views,
 * so the second half of a swap would read the copy just written. Domain
 * code gets this file's table.sort.
 *
 * table.remove on a proxy returns a removed table as a plain Lua copy: the
 * value is no longer at any path of the state, so no proxy can stand for it.
 */
#include <limits.h>
#include <stdlib.h>

#include "vhl_int.h"

/* ---- globals ---- */

static int c_type(lua_State *L) {
  luaL_checkany(L, 1);
  if (vhl__toproxy(L, 1) != NULL)
    lua_pushliteral(L, "table");
  else
    lua_pushstring(L, luaL_typename(L, 1));
  return 1;
}

static int proxy_next(lua_State *L, vhl_proxy_t *p) {
  vh_tab_t *t = vhl__resolve(L, p);
  vh_val_t key = vh_nil(), nk, nv;
  lua_settop(L, 2);
  if (!lua_isnil(L, 2) && vhl__tokey(L, 2, NULL) == NULL)
    vhl__tokey(L, 2, &key); /* may allocate a string; raises only on OOM */
  else if (!lua_isnil(L, 2))
    return luaL_error(L, "invalid key to 'next'");
  int rc = vh_tab_next(t, key, &nk, &nv);
  vh_val_release(key);
  if (rc < 0) return luaL_error(L, "invalid key to 'next'");
  if (rc == 0) {
    lua_pushnil(L);
    return 1;
  }
  vhl__push_scalar(L, nk);
  vhl__push_read(L, 1, p, 3, nv);
  return 2;
}

static int c_next(lua_State *L) {
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p != NULL) {
    vhl__guard_check(L, p);
    return proxy_next(L, p);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1)) return 2;
  lua_pushnil(L);
  return 1;
}

/* upvalue 1: the next function to return for plain tables. */
static int c_pairs(lua_State *L) {
  if (vhl__toproxy(L, 1) != NULL) return vhl__pairs(L, 1);
  luaL_checkany(L, 1);
  if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
    lua_pushvalue(L, 1);
    lua_call(L, 1, 3);
    return 3;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

static int ipairs_proxy_aux(lua_State *L) {
  vhl_proxy_t *p = (vhl_proxy_t *)lua_touserdata(L, 1);
  vhl__guard_check(L, p);
  lua_Integer i = luaL_checkinteger(L, 2);
  i = (lua_Integer)((lua_Unsigned)i + 1);
  vh_val_t v;
  vh_tab_get_int(vhl__resolve(L, p), (int64_t)i, &v);
  if (v.type == VH_TNIL) {
    lua_pushnil(L);
    return 1;
  }
  lua_settop(L, 1);
  lua_pushinteger(L, i);
  vhl__push_read(L, 1, p, 2, v);
  return 2;
}

static int ipairs_aux(lua_State *L) {
  lua_Integer i = luaL_checkinteger(L, 2);
  i = (lua_Integer)((lua_Unsigned)i + 1);
  lua_pushinteger(L, i);
  return lua_geti(L, 1, i) == LUA_TNIL ? 1 : 2;
}

static int c_ipairs(lua_State *L) {
  luaL_checkany(L, 1);
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p != NULL) vhl__guard_check(L, p);
  lua_pushcfunction(L, p != NULL ? ipairs_proxy_aux : ipairs_aux);
  lua_pushvalue(L, 1);
  lua_pushinteger(L, 0);
  return 3;
}

static int c_rawlen(lua_State *L) {
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p != NULL) {
    vhl__guard_check(L, p);
    lua_pushinteger(L, (lua_Integer)vh_tab_len(vhl__resolve(L, p)));
    return 1;
  }
  int t = lua_type(L, 1);
  luaL_argexpected(L, t == LUA_TTABLE || t == LUA_TSTRING, 1,
                   "table or string");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
  return 1;
}

static int same_path(const vhl_proxy_t *a, const vhl_proxy_t *b) {
  while (a != NULL && b != NULL) {
    if (a == b) return 1;
    if (a->st != b->st || !vh_val_equal(a->key, b->key)) return 0;
    a = a->parent;
    b = b->parent;
  }
  return a == b;
}

static int c_rawequal(lua_State *L) {
  luaL_checkany(L, 1);
  luaL_checkany(L, 2);
  vhl_proxy_t *a = vhl__toproxy(L, 1), *b = vhl__toproxy(L, 2);
  if (a != NULL && b != NULL)
    lua_pushboolean(L, same_path(a, b));
  else
    lua_pushboolean(L, lua_rawequal(L, 1, 2));
  return 1;
}

/* ---- table library ---- */

/* Call the stock function (upvalue 1) with all the arguments. */
static int stock(lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static int t_insert(lua_State *L) {
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p == NULL) return stock(L);
  vhl__guard_check(L, p);
  int n = lua_gettop(L);
  if (n != 2 && n != 3)
    return luaL_error(L, "wrong number of arguments to 'insert'");
  vh_tab_t *t = vhl__writable(L, p);
  lua_Integer e = (lua_Integer)vh_tab_len(t) + 1, pos = e;
  if (n == 3) {
    pos = luaL_checkinteger(L, 2);
    luaL_argcheck(L, (lua_Unsigned)pos - 1u < (lua_Unsigned)e, 2,
                  "position out of bounds");
  }
  lua_pushinteger(L, pos); /* the key, for paths in messages */
  vh_val_t val;
  vhl__tovalue(L, n, p, n + 1, NULL, p->st->edit, &val);
  if (val.type == VH_TNIL && pos == e) return 0; /* t[#t+1] = nil */
  vh_tab_t *t2 = t;
  int rc = vh_tab_insert(&t2, (int64_t)pos, val, p->st->edit);
  if (t2 != t) abort(); /* t is transient: mutated in place */
  if (rc != 0) return vhl__oom(L);
  if (pos != e || val.type == VH_TTAB) p->st->epoch++; /* tables moved */
  return 0;
}

static int t_remove(lua_State *L) {
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p == NULL) return stock(L);
  vhl__guard_check(L, p);
  vh_tab_t *t = vhl__writable(L, p);
  lua_Integer size = (lua_Integer)vh_tab_len(t);
  lua_Integer pos = luaL_optinteger(L, 2, size);
  if (lua_gettop(L) >= 2 && pos != size)
    luaL_argcheck(L, (lua_Unsigned)pos - 1u <= (lua_Unsigned)size, 2,
                  "position out of bounds");
  lua_settop(L, 1);
  if (pos < 1 || pos > size) {
    /* Lua's edge cases: #t == 0 and pos 0 or #t, or pos == #t + 1. */
    vh_val_t v;
    vh_tab_get_int(t, (int64_t)pos, &v);
    lua_pushinteger(L, pos);
    if (v.type == VH_TTAB) {
      vhl_pushvalue(L, v);
    } else {
      vhl__push_scalar(L, v);
    }
    lua_pushnil(L);
    vhl__proxy_set(L, p, 2, 4);
    lua_settop(L, 3);
    return 1;
  }
  /* The box owns the removed value while it is pushed (which may raise). */
  vhl_box_t *box = vhl__box_new(L);
  vh_val_t removed = vh_nil();
  vh_tab_t *t2 = t;
  int rc = vh_tab_remove(&t2, (int64_t)pos, &removed, p->st->edit);
  if (t2 != t) abort();
  if (rc != 0) return vhl__oom(L);
  p->st->writes += (uint64_t)(size - pos) + 1;
  box->v = removed;
  if (pos != size || box->v.type == VH_TTAB) p->st->epoch++;
  vhl_pushvalue(L, box->v);
  vh_val_t v = box->v;
  box->v = vh_nil();
  vh_val_release(v);
  return 1;
}

static int t_concat(lua_State *L) {
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p == NULL) return stock(L);
  vhl__guard_check(L, p);
  size_t lsep;
  const char *sep = luaL_optlstring(L, 2, "", &lsep);
  vh_tab_t *t = vhl__resolve(L, p);
  lua_Integer i = luaL_optinteger(L, 3, 1);
  lua_Integer last = luaL_opt(L, luaL_checkinteger, 4, vh_tab_len(t));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (; i <= last; i++) {
    vh_val_t v;
    vh_tab_get_int(t, (int64_t)i, &v);
    if (v.type != VH_TSTR && v.type != VH_TINT && v.type != VH_TFLOAT)
      return luaL_error(L,
                        "invalid value (%s) at index %I in table for 'concat'",
                        v.type == VH_TTAB    ? "table"
                        : v.type == VH_TBOOL ? "boolean"
                                             : "nil",
                        (LUAI_UACINT)i);
    if (v.type == VH_TSTR) {
      luaL_addlstring(&b, vh_str_data(v.u.s), vh_str_len(v.u.s));
    } else {
      vhl__push_scalar(L, v);
      luaL_addvalue(&b);
    }
    if (i != last) luaL_addlstring(&b, sep, lsep);
    if (i == LUA_MAXINTEGER) break;
  }
  luaL_pushresult(&b);
  return 1;
}

static int t_unpack(lua_State *L) {
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p == NULL) return stock(L);
  vhl__guard_check(L, p);
  vh_tab_t *t = vhl__resolve(L, p);
  lua_Integer i = luaL_optinteger(L, 2, 1);
  lua_Integer e = luaL_opt(L, luaL_checkinteger, 3, vh_tab_len(t));
  lua_settop(L, 1);
  if (i > e) return 0;
  lua_Unsigned n = (lua_Unsigned)e - i;
  if (n >= (unsigned int)INT_MAX || !lua_checkstack(L, (int)(++n) + 2))
    return luaL_error(L, "too many results to unpack");
  for (; i <= e; i++) {
    vh_val_t v;
    vh_tab_get_int(vhl__resolve(L, p), (int64_t)i, &v);
    if (v.type == VH_TTAB) {
      lua_pushinteger(L, i);
      vhl__push_child(L, 1, p, lua_gettop(L), v.u.t);
      lua_remove(L, -2);
    } else {
      vhl__push_scalar(L, v);
    }
    if (i == LUA_MAXINTEGER) break;
  }
  return (int)n;
}

/* Comparator over a permutation: upvalue 1 = values, 2 = cmp or nil. */
static int sort_cmp(lua_State *L) {
  lua_Integer a = luaL_checkinteger(L, 1), b = luaL_checkinteger(L, 2);
  if (lua_isnil(L, lua_upvalueindex(2))) {
    lua_rawgeti(L, lua_upvalueindex(1), a);
    lua_rawgeti(L, lua_upvalueindex(1), b);
    lua_pushboolean(L, lua_compare(L, -2, -1, LUA_OPLT));
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_rawgeti(L, lua_upvalueindex(1), a);
  lua_rawgeti(L, lua_upvalueindex(1), b);
  lua_call(L, 2, 1);
  lua_pushboolean(L, lua_toboolean(L, -1));
  return 1;
}

/* Move the values of t (transient) by the permutation at perm_idx:
 * t[i] = old t[perm[i]]. Nothing may raise while C holds references. */
static void apply_perm(lua_State *L, vhl_proxy_t *p, vh_tab_t *t, int perm_idx,
                       lua_Integer n) {
  size_t cnt = (size_t)n;
  int64_t *perm = malloc(cnt * sizeof *perm);
  vh_val_t *old = malloc(cnt * sizeof *old);
  if (perm == NULL || old == NULL) {
    free(perm);
    free(old);
    vhl__oom(L);
  }
  for (size_t i = 0; i < cnt; i++) {
    lua_rawgeti(L, perm_idx, (lua_Integer)i + 1);
    perm[i] = (int64_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    vh_tab_get_int(t, (int64_t)i + 1, &old[i]);
    vh_val_retain(old[i]);
  }
  int rc = 0;
  for (size_t i = 0; i < cnt && rc == 0; i++) {
    vh_val_t v = old[perm[i] - 1];
    vh_val_retain(v);
    vh_tab_t *t2 = t;
    rc = vh_tab_set(&t2, vh_int((int64_t)i + 1), v, p->st->edit);
    if (t2 != t) abort();
  }
  for (size_t i = 0; i < cnt; i++) vh_val_release(old[i]);
  free(perm);
  free(old);
  p->st->epoch++;
  p->st->writes += cnt;
  if (rc != 0) vhl__oom(L);
}

static int t_sort(lua_State *L) {
  vhl_proxy_t *p = vhl__toproxy(L, 1);
  if (p == NULL) return stock(L);
  vhl__guard_check(L, p);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  vh_tab_t *t = vhl__writable(L, p);
  lua_Integer n = (lua_Integer)vh_tab_len(t);
  if (n < 2) return 0;
  luaL_argcheck(L, n < INT_MAX, 1, "array too big");
  lua_createtable(L, (int)n, 0); /* 3: values */
  lua_createtable(L, (int)n, 0); /* 4: permutation */
  for (lua_Integer i = 1; i <= n; i++) {
    vh_val_t v;
    vh_tab_get_int(vhl__resolve(L, p), (int64_t)i, &v);
    lua_pushinteger(L, i);
    vhl__push_read(L, 1, p, lua_gettop(L), v);
    lua_rawseti(L, 3, i);
    lua_rawseti(L, 4, i);
  }
  lua_pushvalue(L, lua_upvalueindex(1)); /* stock sort */
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 3);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, sort_cmp, 2);
  lua_call(L, 2, 0);
  /* The comparator may have written: re-check before moving values. */
  t = vhl__writable(L, p);
  if ((lua_Integer)vh_tab_len(t) != n)
    return luaL_error(L, "table changed while sorting");
  apply_perm(L, p, t, 4, n);
  return 0;
}

/* Push a copy of the stock table library with the proxy-aware functions. */
void vhl__push_table_lib(lua_State *L) {
  static const struct {
    const char *name;
    lua_CFunction fn;
  } fns[] = {{"insert", t_insert}, {"remove", t_remove}, {"concat", t_concat},
             {"unpack", t_unpack}, {"sort", t_sort},     {NULL, NULL}};
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "table") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_getglobal(L, "table");
  }
  lua_remove(L, -2);
  if (!lua_istable(L, -1))
    luaL_error(L, "the table library must be open before the state compat");
  int orig = lua_gettop(L);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, orig)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  for (int i = 0; fns[i].name; i++) {
    lua_getfield(L, orig, fns[i].name);
    lua_pushcclosure(L, fns[i].fn, 1);
    lua_setfield(L, -2, fns[i].name);
  }
  lua_remove(L, orig);
}

void vhl_open_compat(lua_State *L, int idx) {
  static const luaL_Reg fns[] = {{"type", c_type},         {"next", c_next},
                                 {"ipairs", c_ipairs},     {"rawlen", c_rawlen},
                                 {"rawequal", c_rawequal}, {NULL, NULL}};
  idx = lua_absindex(L, idx);
  for (int i = 0; fns[i].name; i++) {
    lua_pushcfunction(L, fns[i].func);
    lua_setfield(L, idx, fns[i].name);
  }
  lua_pushcfunction(L, c_next);
  lua_pushcclosure(L, c_pairs, 1);
  lua_setfield(L, idx, "pairs");
  vhl__push_table_lib(L);
  lua_setfield(L, idx, "table");
}
