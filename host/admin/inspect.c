/*
 * inspect.c - `vedhost inspect [--data DIR] [PATH]`: print persisted state
 * with the REPL's printer, whether or not a host runs on DIR.
 *
 * HOW. The store is opened as a RocksDB secondary (offline.c: no lock, no
 * write, one consistent view). Each domain of the manifest becomes a
 * read-only vhl_state over vh_tab_stub(root) in a private lua_State whose
 * globals `type`, `next`, `pairs`, ... are the proxy-aware ones
 * (vhl_open_compat), and nodes are read by the trie's lazy loader from the
 * secondary. So resolving `counter.recent.3` reads only the nodes on that
 * path (O(depth), whatever the state's size), and printing reads only the
 * value printed. No transaction is ever opened, so every write through a
 * proxy raises; nothing is written back.
 *
 * The path walk and the printing are scripts/inspect.lua (embedded).
 *
 * --at V (a version spec, persist/store/vh_version_spec.h) swaps the manifest
 * for that retained version's (offline.c, vh_offline_at) before anything
 * is read; the rest is the same walk over older roots. Plain stubs are
 * right here: no free hook is installed offline.
 *
 * OUTPUT (stdout), the format of scripts/pretty.lua:
 *   no PATH   one `name = <value>` line per domain, sorted by name
 *   PATH      the value at PATH alone
 * PATH is dot separated: the first element is a domain name (or "__ved",
 * the host's system state, which is not listed without PATH); an element
 * that reads as an integer is tried as an integer key first, then as a
 * string key. A missing domain or key, or a step into a non-table, is one
 * line on stderr and exit 1; so is a node that cannot be read (the proxies
 * raise "state unreadable: ..." on a load fault, and the trie's sticky
 * fault is checked after every read as well: an unreadable node must
 * never print as nil).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"
#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"
#include "vh_offline.h"
#include "vhl.h"

static const char vh_inspect_usage[] =
    "usage: vedhost inspect [--data DIR] [--at V] [PATH]\n"
    "  Print the value at PATH (e.g. counter.recent.3) or, without PATH,\n"
    "  every domain as `name = value`, from the data dir (default\n"
    "  " VH_DEFAULT_DATA_DIR
    "), whether or not a host runs on it.\n"
    "  --at V reads the retained version V instead of the newest: a seq\n"
    "  (1234), -N (N versions back), a time (2026-12-06T14:02:00Z, 14:02,\n"
    "  -5m) or a mark name.\n";

/* fault() -> nil, or the message of the trie's sticky fault (cleared). */
static int vh_inspect__fault(lua_State *L) {
  const char *msg = NULL;
  if (vh_trie_fault(&msg) == 0) return 0;
  lua_pushstring(L, msg);
  vh_trie_fault_clear();
  return 1;
}

static int vh_inspect__cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Protected body: lua args = offline [light userdata], path or nil. */
static int vh_inspect__run(lua_State *L) {
  vh_offline_t *o = lua_touserdata(L, 1);
  const vh_manifest_t *m = &o->man;
  int has_path = !lua_isnil(L, 2);
  lua_settop(L, 2);
  lua_pushglobaltable(L);
  vhl_open_compat(L, lua_gettop(L));
  lua_pop(L, 1);

  /* The Lua half (scripts/inspect.lua) resolves the path and prints. */
  vh_host__load_script(L, "inspect", "=[inspect]", "the inspect script");
  vh_host__push_pretty(L);
  /* domains: name -> root proxy (the proxy keeps its state alive). */
  lua_createtable(L, 0, (int)m->ndomains + 1);
  int domains = lua_gettop(L);
  for (size_t i = 0; i < m->ndomains + 1; i++) {
    const char *name = i < m->ndomains ? m->domains[i].name : "__ved";
    uint64_t root = i < m->ndomains ? m->domains[i].root : m->sys_root;
    if (root == 0) continue;
    vh_tab_t *t = vh_tab_stub(root);
    if (t == NULL) return luaL_error(L, "out of memory");
    vhl_state_t *st = vhl_state_new(L, t, name);
    vhl_state_push_root(L, st);
    lua_setfield(L, domains, name);
    lua_pop(L, 1); /* the state userdata */
  }
  /* names: the domains, sorted */
  const char **names = malloc((m->ndomains + 1) * sizeof *names);
  if (names == NULL) return luaL_error(L, "out of memory");
  for (size_t i = 0; i < m->ndomains; i++) names[i] = m->domains[i].name;
  qsort(names, m->ndomains, sizeof *names, vh_inspect__cmp);
  lua_createtable(L, (int)m->ndomains, 0);
  for (size_t i = 0; i < m->ndomains; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  free(names);
  if (has_path)
    lua_pushvalue(L, 2);
  else
    lua_pushnil(L);
  lua_pushcfunction(L, vh_inspect__fault);
  lua_pushstring(L, o->data_dir);
  lua_call(L, 6, 1);
  return 1;
}

int vh_inspect_main(int argc, char **argv) {
  const char *data, *path, *at;
  int rc = vh_offline_args_at(argc, argv, vh_inspect_usage, &data, &path, &at);
  if (rc != 0) return rc == 1 ? 0 : rc;
  vh_offline_t o;
  char err[1024];
  if (vh_offline_open(&o, data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: inspect: %s\n", err);
    return 1;
  }
  if (vh_offline_at(&o, at, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: inspect: %s\n", err);
    vh_offline_close(&o);
    return 1;
  }
  if (path == NULL && o.man.ndomains == 0) {
    fprintf(stderr, "vedhost: inspect: %s holds no domain yet\n", data);
    vh_offline_close(&o);
    return 0;
  }
  vh_offline_use_loader(&o);
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "vedhost: inspect: out of memory\n");
    vh_offline_close(&o);
    return 1;
  }
  luaL_openlibs(L);
  lua_pushcfunction(L, vh_inspect__run);
  lua_pushlightuserdata(L, &o);
  if (path)
    lua_pushstring(L, path);
  else
    lua_pushnil(L);
  if (lua_pcall(L, 2, 1, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "vedhost: inspect: %s\n", msg ? msg : "error");
    rc = 1;
  } else {
    size_t len;
    const char *out = lua_tolstring(L, -1, &len);
    fwrite(out, 1, len, stdout);
    fputc('\n', stdout);
    rc = 0;
  }
  /* Closing the state releases every stub before the store closes. */
  lua_close(L);
  vh_trie_set_loader(NULL, NULL, NULL);
  vh_offline_close(&o);
  return rc;
}
