/*
 * host.c - the host's life cycle: the Lua state and its globals, loading
 * domain scripts, declaring domains, and running the loop.
 *
 * The Lua state. One lua_State, with the counting allocator of call.c.
 * Before any script runs, _G gets the proxy-aware type, next, pairs,
 * ipairs, rawlen, rawequal (vhl_open_compat) and table library (the stock
 * one with vedcore's proxy-aware functions laid over it), abort-proof
 * pcall / xpcall / coroutine.resume / coroutine.wrap (call.c), and os.exit
 * = ved.exit, and the sandboxed debug, load, setmetatable... (sandbox.c).
 * Modules loaded with require see the same globals. `require
 * "ved"` finds the module through package.preload; LUA_PATH / LUA_CPATH
 * work as in lua5.4.
 *
 * Scripts. Each script is a chunk whose _ENV is a fresh table whose
 * __index is _G: its globals stay its own (hot reload, later, reruns a
 * script in a fresh env). A directory means its *.lua files in strcmp
 * order. A script must declare at least one domain; a domain name may be
 * declared once across all scripts. A script's top level runs under the
 * handler time budget and memory limit (vh_host__script_pcall, call.c), so
 * the watchdog thread starts with the first load.
 *
 * Domains. ved.domain "name" { ... } is validated by scripts/ved.lua and
 * registered here (vh_host__register): the initial state is deep-copied
 * into the domain's vhl_state_t, `on` is copied into a fresh table (later
 * changes to the spec table do not matter), start and migrate are kept.
 * migrate runs at boot and reload when the persisted version of a domain
 * is older than the declared one (durable.c, reload.c).
 *
 * Boot. vh_host_run begins the first slice: every domain's start(state,
 * ctx) runs in declaration order, each as its own handler call. A start
 * that raises is logged and rolled back; its domain still handles events
 * (its handlers may not depend on what start did, and refusing every
 * event of a domain because of one bad boot would turn a bug into an
 * outage).
 *
 * SIGPIPE. The loop writes to sockets and pipes whose other end may go
 * away at any time (an HTTP client that resets, a REPL client, a child's
 * pipe); libuv's writes do not pass MSG_NOSIGNAL, so vh_host_run ignores
 * SIGPIPE when it still has its default action: such a write fails with
 * EPIPE and the connection is closed, instead of the process dying
 * silently with status 141 (it once did, with no REPL socket to set this).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host_int.h"
#include "lualib.h"
#include "vh_cli_args.h"
#include "vh_limits.h"
#include "vh_log.h"

void vh_host_opts_default(vh_host_opts_t *opts) {
  opts->data_dir = VH_DEFAULT_DATA_DIR;
  opts->durability = VH_DURABILITY_SYNC;
  opts->watch = 1;
  opts->handler_timeout_ms = 1000;
  opts->memory_limit = (size_t)1024 << 20;
  opts->log_level = VH_LOG_INFO;
  vh_retain_default(&opts->retain);
  opts->test_store = 0;
  opts->rehearse = 0;
  opts->rehearse_strict = 0;
}

/* ---- domains ---- */

static void vh_domain_free(vh_domain_t *d) {
  if (!d) return;
  free(d->name);
  free(d->where);
  free(d->refused);
  if (d->name_s) vh_str_release(d->name_s);
  free(d);
}

int vh_host__doms_reserve(vh_host_t *h) {
  if (h->ndoms < h->capdoms) return 0;
  int nc = h->capdoms ? h->capdoms * 2 : 8;
  vh_domain_t **nd = realloc(h->doms, (size_t)nc * sizeof *nd);
  if (!nd) return VH_ENOMEM;
  h->doms = nd;
  h->capdoms = nc;
  return 0;
}

vh_domain_t *vh_host__domain_new(const char *name, size_t nl,
                                 const char *where) {
  vh_domain_t *d = calloc(1, sizeof *d);
  if (d) {
    d->name = strdup(name);
    d->where = strdup(where);
    d->name_s = vh_str_new(name, nl);
  }
  if (d && d->name && d->where && d->name_s) return d;
  vh_domain_free(d);
  return NULL;
}

static int vh_host_ref_opt(lua_State *L, int idx) {
  if (lua_isnil(L, idx)) return LUA_NOREF;
  lua_pushvalue(L, idx);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* core.register(name, where, version, state, migrate, start, on): the C
 * half of ved.domain, after scripts/ved.lua validated the fields. */
int vh_host__register(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  size_t nl;
  const char *name = luaL_checklstring(L, 1, &nl);
  const char *where = luaL_checkstring(L, 2);
  lua_Integer version = luaL_checkinteger(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 7, LUA_TTABLE);
  lua_settop(L, 7);
  if (h->phase != VH_PHASE_LOAD)
    return luaL_error(L, "domains can only be declared while scripts load");
  if (!vh_domain_name_ok(name, nl) || version < 1 || version > VH_MAX_VERSION)
    return luaL_error(L, "invalid domain name or version"); /* see ved.lua */
  vh_domain_t *other = vh_host__find(h, name, nl);
  if (other)
    return luaL_error(L, "domain '%s' is declared twice: at %s and at %s", name,
                      other->where, where);
  if (vh_host__doms_reserve(h) != 0) return luaL_error(L, "out of memory");
  /* Everything that can raise first, holding only Lua references. */
  vh_val_t v;
  vhl_tovalue(L, 4, "state", &v); /* deep copy; raises naming the path */
  if (v.type != VH_TTAB) {
    vh_val_release(v);
    return luaL_error(L, "state must be a table");
  }
  vhl_state_t *st = vhl_state_new(L, v.u.t, name); /* steals v */
  int st_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L); /* on: a private copy */
  lua_pushvalue(L, 7);
  vh_host__merge_top(L, -2);
  int on_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  int migrate_ref = vh_host_ref_opt(L, 5);
  int start_ref = vh_host_ref_opt(L, 6);
  lua_newtable(L);
  int unhandled_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  int ctx_ref = vh_api__new_ctx(L, name);

  vh_domain_t *d = vh_host__domain_new(name, nl, where);
  if (!d) {
    int refs[] = {st_ref,    on_ref,        migrate_ref,
                  start_ref, unhandled_ref, ctx_ref};
    for (int i = 0; i < 6; i++) luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
    return luaL_error(L, "out of memory");
  }
  d->version = version;
  d->st = st;
  d->st_ref = st_ref;
  d->on_ref = on_ref;
  d->migrate_ref = migrate_ref;
  d->start_ref = start_ref;
  d->unhandled_ref = unhandled_ref;
  d->ctx_ref = ctx_ref;
  h->doms[h->ndoms++] = d;
  h->load_dom = d;
  vh_log(VH_LOG_DEBUG, name, "declared at %s (version %lld)", where,
         (long long)version);
  return 0;
}

/* ---- the Lua state ---- */

static int vh_host_preload_ved(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ved_ref);
  return 1;
}

void vh_host__load_script(lua_State *L, const char *name, const char *chunkname,
                          const char *what) {
  const vh_script_t *s = vh_scripts;
  while (s->name && strcmp(s->name, name) != 0) s++;
  if (!s->name) luaL_error(L, "%s was not built in", what);
  if (luaL_loadbuffer(L, (const char *)s->data, s->len, chunkname))
    lua_error(L);
}

void vh_host__push_pretty(lua_State *L) {
  vh_host__load_script(L, "pretty", "=[pretty]", "the pretty printer");
  lua_call(L, 0, 1);
  if (!lua_istable(L, -1))
    luaL_error(L, "the pretty printer did not return a table");
}

void vh_host__merge_top(lua_State *L, int to) {
  to = lua_absindex(L, to);
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, to);
  }
  lua_pop(L, 1);
}

/* _G.table = the stock library with vedcore's proxy-aware functions laid
 * over it (core module at index core). */
static void vh_host_table_lib(lua_State *L, int core) {
  lua_newtable(L);
  lua_getglobal(L, "table");
  vh_host__merge_top(L, -2);
  if (lua_getfield(L, core, "table") == LUA_TTABLE)
    vh_host__merge_top(L, -2);
  else
    lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_setglobal(L, "table");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_insert(L, -2);
  lua_setfield(L, -2, "table");
  lua_pop(L, 1);
}

/* Protected: build the globals, the ved module and the system state. */
static int vh_host_setup(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  luaL_openlibs(L);
  lua_pushglobaltable(L);
  vhl_open_compat(L, lua_absindex(L, -1));
  lua_pop(L, 1);
  lua_pushcfunction(L, luaopen_vedcore);
  lua_call(L, 0, 1);
  vh_host_table_lib(L, lua_absindex(L, -1));
  lua_pop(L, 1);
  vh_host__install_wrappers(L);

  vh_host__load_script(L, "ved", "=[ved prelude]", "the ved prelude");
  vh_api__push_core(L);
  lua_call(L, 1, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "the ved prelude did not return a table");
  lua_getfield(L, -1, "exit");
  lua_getglobal(L, "os");
  lua_insert(L, -2);
  lua_setfield(L, -2, "exit"); /* os.exit = ved.exit */
  lua_pop(L, 1);
  h->ved_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, vh_host_preload_ved);
  lua_setfield(L, -2, "ved");
  lua_pop(L, 1);

  vh_host__sandbox(L); /* debug, load, setmetatable... (sandbox.c) */
  vh_det__install(L);  /* math.random, os.time... per slice (det.c) */

  vhl_state_new(L, NULL, "__ved");
  h->sys = vhl_state_check(L, -1);
  h->sys_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

int vh_host_new(const vh_host_opts_t *opts, vh_host_t **out, char *err,
                size_t cap) {
  *out = NULL;
  vh_host_t *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, cap, "out of memory");
    return VH_ENOMEM;
  }
  h->opts = *opts;
  h->created_ns = uv_hrtime();
  h->boot_ms = -1;
  h->dd.lock_fd = -1;
  h->ved_ref = h->sys_ref = LUA_NOREF;
  vh_det__init(h);
  vh_log_set_level(opts->log_level);
  int rc = vh_datadir_open(&h->dd, opts->data_dir, err, cap);
  if (rc != 0) {
    free(h);
    return VH_HOST_EDATADIR;
  }
  h->opts.data_dir = h->dd.path;
  if (vh_sched__init(h) != 0) {
    snprintf(err, cap, "out of memory");
    vh_host_free(h);
    return VH_ENOMEM;
  }
  h->L = lua_newstate(vh_host__alloc, h);
  if (!h->L) {
    snprintf(err, cap, "cannot create the Lua state: out of memory");
    vh_host_free(h);
    return VH_ENOMEM;
  }
  lua_pushcfunction(h->L, vh_host_setup);
  if (lua_pcall(h->L, 0, 0, 0) != LUA_OK) {
    snprintf(err, cap, "cannot set up Lua: %s", lua_tostring(h->L, -1));
    vh_host_free(h);
    return VH_ENOMEM;
  }
  rc = vh_durable__open(h, err, cap); /* the store; restores "__ved" */
  if (rc != 0) {
    vh_host_free(h);
    return rc;
  }
  *out = h;
  return 0;
}

/* ---- loading scripts ---- */

void vh_host__first_line(char *err, size_t cap, const char *msg) {
  const char *nl = strchr(msg, '\n');
  size_t n = nl ? (size_t)(nl - msg) : strlen(msg);
  snprintf(err, cap, "%.*s", (int)n, msg);
}

static int vh_host_plain_pcall(vh_host_t *h, int msgh) {
  return lua_pcall(h->L, 0, 0, msgh);
}

int vh_host__run_script(vh_host_t *h, const char *path, int top, int before,
                        int (*pcall)(vh_host_t *h, int msgh), char *err,
                        size_t cap) {
  lua_State *L = h->L;
  /* _ENV = setmetatable({}, {__index = _G}) */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setupvalue(L, -2, 1);
  h->loading = path;
  h->load_dom = NULL;
  int rc = (pcall ? pcall : vh_host_plain_pcall)(h, top + 1);
  h->loading = NULL;
  h->load_dom = NULL;
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    vh_host__first_line(err, cap, msg ? msg : "error loading script");
    vh_log(VH_LOG_DEBUG, "vedhost", "%s", msg ? msg : "");
    lua_settop(L, top);
    return VH_HOST_ELOAD;
  }
  lua_settop(L, top);
  if (h->ndoms == before) {
    snprintf(err, cap,
             "%s declares no domain (a script must call ved.domain \"name\" "
             "{ ... })",
             path);
    return VH_HOST_ELOAD;
  }
  return 0;
}

static int vh_host_load_file(vh_host_t *h, const char *path, char *err,
                             size_t cap) {
  lua_State *L = h->L;
  int top = lua_gettop(L);
  int before = h->ndoms;
  int fd; /* refuse what is not a regular file before fopen can block */
  if (vh_reload__open_script(path, &fd, err, cap) != 0) return VH_HOST_ELOAD;
  close(fd);
  lua_pushcfunction(L, vh_host__msgh);
  int rc = luaL_loadfilex(L, path, "t");
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    /* syntax errors read "file:line: message"; LUA_ERRFILE "cannot
     * open/read file" */
    /* a binary chunk's refusal names no file: say which */
    if (msg && strncmp(msg, "attempt to load", 15) == 0)
      msg = lua_pushfstring(L, "%s: %s", path, msg);
    vh_host__first_line(err, cap, msg ? msg : "cannot load");
    lua_settop(L, top);
    return VH_HOST_ELOAD;
  }
  /* The first load is bounded like a reload (call.c). */
  rc = vh_host__run_script(h, path, top, before, vh_host__script_pcall, err,
                           cap);
  if (rc != 0) return rc;
  vh_log(VH_LOG_DEBUG, "vedhost", "loaded %s (%d domain(s))", path,
         h->ndoms - before);
  vh_reload__loaded(h, path, before); /* for hot reload (reload.c) */
  return 0;
}

static int vh_host_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int vh_host_load_dir(vh_host_t *h, const char *dir, char *err,
                            size_t cap) {
  DIR *dp = opendir(dir);
  if (!dp) {
    snprintf(err, cap, "cannot read directory %s: %s", dir, strerror(errno));
    return VH_HOST_ELOAD;
  }
  char **names = NULL;
  size_t n = 0, c = 0;
  int rc = 0;
  struct dirent *de;
  while ((de = readdir(dp)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0 ||
        de->d_name[0] == '.')
      continue;
    if (n == c) {
      c = c ? c * 2 : 16;
      char **nn = realloc(names, c * sizeof *nn);
      if (!nn) {
        rc = VH_ENOMEM;
        break;
      }
      names = nn;
    }
    size_t pl = strlen(dir) + len + 2;
    names[n] = malloc(pl);
    if (!names[n]) {
      rc = VH_ENOMEM;
      break;
    }
    snprintf(names[n], pl, "%s/%s", dir, de->d_name);
    n++;
  }
  closedir(dp);
  if (rc != 0) {
    snprintf(err, cap, "out of memory");
  } else if (n == 0) {
    snprintf(err, cap, "directory %s has no .lua scripts", dir);
    rc = VH_HOST_ELOAD;
  } else {
    qsort(names, n, sizeof *names, vh_host_cmp);
    for (size_t i = 0; i < n && rc == 0; i++)
      rc = vh_host_load_file(h, names[i], err, cap);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

int vh_host_load(vh_host_t *h, const char *path, char *err, size_t cap) {
  if (h->phase != VH_PHASE_LOAD) {
    snprintf(err, cap, "scripts can only be loaded before the loop runs");
    return VH_HOST_ESTATE;
  }
  if (vh_reload__track(h, path) != 0) { /* what a reload reruns */
    snprintf(err, cap, "out of memory");
    return VH_ENOMEM;
  }
  if (!h->wd_running && vh_host__watchdog_start(h) != 0) /* bounds loads */
    vh_log(VH_LOG_WARN, "vedhost",
           "cannot start the watchdog: scripts and handlers run without a "
           "time budget");
  struct stat sb;
  if (stat(path, &sb) != 0) {
    snprintf(err, cap, "cannot open script %s: %s", path, strerror(errno));
    return VH_HOST_ELOAD;
  }
  if (S_ISDIR(sb.st_mode)) return vh_host_load_dir(h, path, err, cap);
  return vh_host_load_file(h, path, err, cap);
}

/* ---- hooks ---- */

int vh_host__hook(vh_host_t *h, const vh_host_hooks_t *hooks) {
  for (int i = 0; i < h->nhooks; i++)
    if (h->hooks[i] == hooks) return 0;
  if (h->nhooks == VH_HOST_MAX_HOOKS) return VH_HOST_ESTATE;
  h->hooks[h->nhooks++] = hooks;
  return 0;
}

void vh_host__run_hooks(vh_host_t *h, vh_hook_phase_t p) {
  for (int i = 0; i < h->nhooks; i++) {
    const vh_host_hooks_t *k = h->hooks[i];
    void (*fn)(vh_host_t *) = p == VH_HOOK_START        ? k->start
                              : p == VH_HOOK_LAST_SLICE ? k->last_slice
                              : p == VH_HOOK_STOP       ? k->stop
                                                        : k->free;
    if (fn) fn(h);
  }
}

/* ---- running ---- */

int vh_host_run(vh_host_t *h, int *exit_code) {
  *exit_code = 0;
  int rc = vh_host__run_begin(h);
  if (rc != 0) return rc;
  uv_run(&h->loop, UV_RUN_DEFAULT);
  vh_host__run_end(h, exit_code);
  return 0;
}

int vh_host__run_begin(vh_host_t *h) {
  if (h->ndoms == 0 || h->phase != VH_PHASE_LOAD) return VH_HOST_ESTATE;
  vhl_guard_strict(h->L, 1);
  int rc = vh_host__watchdog_start(h);
  if (rc != 0)
    vh_log(VH_LOG_WARN, "vedhost",
           "cannot start the watchdog (%s): handlers run without a time "
           "budget",
           strerror(-rc));
  struct sigaction pipe_old;
  if (sigaction(SIGPIPE, NULL, &pipe_old) == 0 &&
      pipe_old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN); /* see SIGPIPE above */
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  h->start_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
  vh_sched__begin_run(h);
  vh_host__run_hooks(h, VH_HOOK_START); /* the REPL server (host/repl) */
  /* SIGHUP and script watches (reload.c) */
  vh_reload__start(h);
  char names[512] = "";
  size_t used = 0;
  for (int i = 0; i < h->ndoms && used < sizeof names; i++)
    used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                             i ? ", " : "", h->doms[i]->name);
  vh_log(VH_LOG_INFO, "vedhost",
         "running %d domain(s): %s (data dir %s, durability %s)", h->ndoms,
         names, h->opts.data_dir,
         h->opts.durability == VH_DURABILITY_SYNC ? "sync" : "nosync");
  vh_durable__boot(h); /* stored roots, migrate, refusals (durable.c) */
  for (int i = 0; i < h->ndoms; i++) {
    vh_domain_t *d = h->doms[i];
    if (d->start_ref != LUA_NOREF)
      vh_host__dispatch(h, d, "start", 5, VH_DISPATCH_START, vh_nil(), NULL,
                        NULL);
  }
  vh_sched__update(h);
  return 0;
}

void vh_host__run_end(vh_host_t *h, int *exit_code) {
  h->phase = VH_PHASE_STOP;
  vh_durable__stop(h); /* last batch durable, gated replies sent, closed */
  /* The REPL, then the plugins (which close their handles while the loop
   * can still run them): before vh_sched__close closes the loop's handles. */
  vh_host__run_hooks(h, VH_HOOK_STOP);
  vh_host__watchdog_stop(h);
  vh_log(VH_LOG_INFO, "vedhost",
         "stopped after %llu slices and %llu handler calls (exit code %d)",
         (unsigned long long)h->slice_seq, (unsigned long long)h->total_calls,
         h->exit_code);
  *exit_code = h->exit_code;
}

void vh_host_free(vh_host_t *h) {
  if (!h) return;
  vh_host__watchdog_stop(h);
  vh_host__run_hooks(h, VH_HOOK_STOP); /* no-op if vh_host_run did it */
  vh_sched__close(h);
  vh_sched__free(h);
  vh_durable__free(h); /* closes the store, removes the trie's hooks */
  vh_reload__free(h);  /* after its handles were closed */
  for (int i = 0; i < h->ndoms; i++) vh_domain_free(h->doms[i]);
  free(h->doms);
  if (h->L) lua_close(h->L);
  vh_host__alloc_free(h); /* call.c, SMALL BLOCKS */
  /* dlclose (plugins): after every callback into them */
  vh_host__run_hooks(h, VH_HOOK_FREE);
  vh_datadir_close(&h->dd);
  vh_det__free(h);
  free(h);
}
