/*
 * repl_at.c - the REPL's at(V): read-only views of a retained version.
 *
 *   at(V) -> { seq = 1234, time = <unix ms>,
 *              domains = { <name> = { state = proxy, version = n,
 *                                     name = s } } }
 *
 * V is a version spec (persist/store/vh_version_spec.h): an integer (1234 a
 * seq, -3 three versions back, 0 the newest) or a string ("1234", "-3",
 * "14:02", "2026-12-06T14:02:00Z", "-5m", a mark name). It is resolved against
 * the host's own store (the version records the writer has written: a version
 * whose batch is still queued is not found yet), and `time` is nil when
 * the store keeps no version records (then only the current manifest is a
 * version).
 *
 * VIEWS. Each domain of that version's manifest becomes a vhl_state whose
 * root is vh_tab_stub_view(root) and which is read-only as version seq
 * (vhl_state_set_view): reading state.a.b loads the nodes on that path
 * from the store, as a restart would, but the loaded nodes are views:
 * they never reach the trie's free hook, which feeds the store's deletes
 * (the live version holds its own in-memory copy of every shared id and
 * reports that one), and writes raise "cannot write counter.a: version
 * 1234 is read-only". Reading a view whose version has since left the
 * retention window fails the way an unreadable node does ("state
 * unreadable: node N: ENOENT ...").
 *
 * A view is a value like any other: keep it in a global and read it in a
 * later chunk. It is freed by Lua's GC. at() works only in a REPL chunk.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repl_int.h"
#include "vh_version_spec.h"

#define VH_REPL_MAN_MT "ved.repl.manifest"

/* A manifest in a userdata, freed by __gc (so nothing leaks on a raise). */
static int vh_repl_man_gc(lua_State *L) {
  vh_manifest_t *m = (vh_manifest_t *)luaL_checkudata(L, 1, VH_REPL_MAN_MT);
  vh_manifest_free(m);
  return 0;
}

static vh_manifest_t *vh_repl_man_box(lua_State *L) {
  vh_manifest_t *m = (vh_manifest_t *)lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  if (luaL_newmetatable(L, VH_REPL_MAN_MT)) {
    lua_pushcfunction(L, vh_repl_man_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return m;
}

static int64_t vh_repl_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vh_repl__at(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (!h->repl || !h->repl->active || h->cur)
    return luaL_error(L, "at: only available in a REPL chunk");
  const char *spec;
  if (lua_type(L, 1) == LUA_TNUMBER) {
    if (!lua_isinteger(L, 1))
      return luaL_error(L, "at: a version is an integer or a string");
    lua_Integer n = lua_tointeger(L, 1);
    /* 0 (an integer has no -0) is the newest, like "-0". */
    spec = n > 0 ? lua_pushfstring(L, "%I", n) : lua_pushfstring(L, "-%I", -n);
  } else if (lua_type(L, 1) == LUA_TSTRING) {
    spec = lua_tostring(L, 1);
  } else {
    return luaL_error(L, "at: a version is an integer or a string (got %s)",
                      luaL_typename(L, 1));
  }
  struct vh_store *store = vh_durable__store(h);
  if (!store) return luaL_error(L, "at: this host has no store");
  vh_manifest_t *m = vh_repl_man_box(L);
  int box = lua_gettop(L);
  uint64_t seq = 0;
  int64_t t = 0;
  char *msg = NULL;
  int rc = vh_version_load(store, spec, vh_repl_wall_ms(), &seq, &t, m, &msg);
  if (rc != 0) {
    lua_pushfstring(L, "at: %s", msg ? msg : vh_err_name(rc));
    free(msg);
    return lua_error(L);
  }
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)seq);
  lua_setfield(L, -2, "seq");
  if (t != INT64_MIN) {
    lua_pushinteger(L, (lua_Integer)t);
    lua_setfield(L, -2, "time");
  }
  lua_createtable(L, 0, (int)m->ndomains);
  for (size_t i = 0; i < m->ndomains; i++) {
    const vh_manifest_domain_t *d = &m->domains[i];
    lua_createtable(L, 0, 3);
    vh_tab_t *root = d->root ? vh_tab_stub_view(d->root) : NULL;
    if (d->root && !root) return luaL_error(L, "at: out of memory");
    /* NULL root: an empty table (a domain that never wrote a node). */
    vhl_state_t *st = vhl_state_new(L, root, d->name);
    vhl_state_set_view(st, seq);
    vhl_state_push_root(L, st);
    lua_setfield(L, -3, "state");
    lua_pop(L, 1); /* the state userdata: its root proxy keeps it */
    lua_pushinteger(L, (lua_Integer)d->version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, d->name);
    lua_setfield(L, -2, "name");
    lua_setfield(L, -2, d->name);
  }
  lua_setfield(L, -2, "domains");
  lua_remove(L, box);
  return 1;
}
