/*
 * call.c - one handler call, and the watchdog that keeps it bounded.
 *
 * A handler call (vh_host__dispatch) is atomic (ARCHITECTURE.md invariant 1):
 *
 *   vhl_tx_begin(domain)            edit token for this call only
 *   guard = domain, strict          other domains' proxies raise
 *   pcall(trampoline, fn, ctx)      state proxy + payload pushed inside,
 *                                   so even they are protected
 *   ok:    commit domain; the call's sends and afters (written into the
 *          slice's system-state step, sched.c) join the in-memory indexes
 *   error: roll the domain back; delete the call's sends and afters from
 *          the system state; log message + traceback
 *
 * Watchdog (invariant 7). The obvious design, a count hook every N
 * instructions, makes every Lua instruction go through luaG_traceexec once
 * a count hook is set: measured 1.95x slower for a plain Lua loop on this
 * machine. So no hook is set while things go well:
 *
 *   - the loop thread publishes the deadline of the running call in an
 *     atomic (two stores per call, no syscall);
 *   - a watchdog thread sleeps until that deadline; if the same call is
 *     still running then, it sends SIGURG to the loop thread;
 *   - the signal handler (on the loop thread) checks the deadline again
 *     and arms a count hook (count 1) on the main thread and on every
 *     coroutine the handler has resumed (h->costack), with lua_sethook,
 *     which the Lua manual allows from a signal handler (lua.c does the
 *     same for Ctrl-C);
 *   - the hook raises "handler exceeded its time budget (N ms)" at the
 *     next instruction, and again at every instruction while the abort is
 *     pending, so catching it buys domain code nothing;
 *   - pcall / xpcall / coroutine.resume / coroutine.wrap in _G are
 *     replaced by versions that re-raise the abort at once.
 *
 * Memory: the Lua allocator counts the heap. While a handler runs, a
 * growing allocation past --memory-limit fails (Lua raises "not enough
 * memory" after an emergency collection); the abort is marked pending, so
 * every further growing allocation of that call fails and the hook is
 * armed the same way. Script top levels (first load and reload) and REPL
 * chunks are armed the same way (vh_host__arm); outside those nothing is
 * limited (the host's own bookkeeping and the error path must not fail).
 *
 * Error objects. vh_host__msgh names the position of the Lua code that
 * raised a non-string error object and describes it raw (no metamethod);
 * its __tostring runs only while armed, in protected mode. Finalizers
 * (__gc), which Lua runs with hooks off, cannot be set from Lua at all
 * (sandbox.c).
 *
 * LIMITATIONS: C code that loops without running Lua instructions (a huge
 * table.sort, string.rep) is interrupted only when it returns to Lua. SIGURG
 * is used because its default action is to be ignored, so a stray one
 * cannot kill the host; one host per process, since the signal handler
 * finds it through a process-wide pointer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_int.h"
#include "vh_log.h"

#define VH_WD_SIGNAL SIGURG

/* The host whose watchdog runs (read by the signal handler). */
static vh_host_t *volatile vh_call_host = NULL;

vh_host_t *vh_host__of(lua_State *L) {
  void *ud = NULL;
  lua_getallocf(L, &ud);
  return (vh_host_t *)ud;
}

int64_t vh_host__mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the abort hook ---- */

/* Raise the pending abort, with the position of the function at level
 * (0 in a hook: the function that was running; 1 in a C function). */
static int vh_call_raise_at(lua_State *L, vh_host_t *h, int level) {
  luaL_where(L, level);
  if (h->abort == VH_ABORT_MEM)
    lua_pushfstring(L,
                    "not enough memory (Lua heap over --memory-limit "
                    "of %d MB)",
                    (int)(h->opts.memory_limit >> 20));
  else
    lua_pushfstring(L, "handler exceeded its time budget (%d ms)",
                    h->opts.handler_timeout_ms);
  lua_concat(L, 2);
  return lua_error(L);
}

static int vh_call_raise(lua_State *L, vh_host_t *h) {
  return vh_call_raise_at(L, h, 1);
}

static void vh_call_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  vh_host_t *h = vh_host__of(L);
  if (!h->in_handler || h->abort == VH_ABORT_NONE) {
    lua_sethook(L, NULL, 0, 0); /* a leftover from an earlier abort */
    return;
  }
  vh_call_raise_at(L, h, 0);
}

/* Arm the hook on the main thread and every resumed coroutine. Runs in
 * the signal handler or in the allocator: only lua_sethook, no
 * allocation. */
static void vh_call_arm(vh_host_t *h) {
  lua_sethook(h->L, vh_call_hook, LUA_MASKCOUNT, 1);
  int n = h->costack_n;
  for (int i = 0; i < n && i < VH_COSTACK; i++) {
    lua_State *co = h->costack[i];
    if (co) lua_sethook(co, vh_call_hook, LUA_MASKCOUNT, 1);
  }
}

static void vh_call_on_signal(int sig) {
  (void)sig;
  int saved = errno;
  vh_host_t *h = vh_call_host;
  if (h && h->in_handler && h->abort == VH_ABORT_NONE &&
      vh_host__mono_ns() >= h->deadline_ns) {
    h->abort = VH_ABORT_TIME;
    vh_call_arm(h);
  }
  errno = saved;
}

/* ---- the allocator ---- */

/* SMALL BLOCKS. Most of Lua's blocks are small and short-lived: a `sync`
 * handler that writes state.k["k" .. j] makes one string per write, and
 * the collector frees them a few thousand at a time. Through malloc these
 * cost ~140 instructions a block, and its slow path (sorting the chunks a
 * burst of frees left) was ~6% of the loop thread at K = 1M (bench/README.md
 * "perf/loop"). A freed block of up to VH_LFREE_MAX bytes is kept in a
 * free list of its 8-byte class (at most VH_LFREE_CAP blocks: the
 * collector frees a handler's strings thousands at a time; beyond it,
 * free()) and handed to the next new block of that class. A slice end
 * that finds no block reused since the one before gives them all back
 * (vh_host__alloc_tick: an idle host keeps none). Blocks of those sizes are
 * malloc'd rounded up to their class (the same glibc chunk: 16-byte
 * granularity). A resize within a class keeps the block. The memory limit still
 * counts the sizes Lua asked for. Sanitizer builds keep every block exact
 * (VH_LSMALL 0). */
static inline size_t vh_lclass(size_t n) {
  return (n + 7) >> 3;
}

#ifdef VH_SANITIZE
#define VH_LSMALL 0 /* ASan sees every block's exact bounds and lifetime */
#else
#define VH_LSMALL VH_LFREE_MAX
#endif

static void *vh_lalloc(vh_host_t *h, size_t n) {
  if (n > VH_LSMALL) return malloc(n);
  size_t c = vh_lclass(n);
  void *p = h->lfree[c];
  if (p) {
    memcpy(&h->lfree[c], p, sizeof p);
    h->lfree_n[c]--;
    h->lfree_hits++;
    return p;
  }
  return malloc(c << 3);
}

static void vh_lfree(vh_host_t *h, void *p, size_t n) {
  if (!p) return;
  if (n > VH_LSMALL) {
    free(p);
    return;
  }
  size_t c = vh_lclass(n);
  if (h->lfree_n[c] >= VH_LFREE_CAP) {
    free(p);
    return;
  }
  memcpy(p, &h->lfree[c], sizeof p);
  h->lfree[c] = p;
  h->lfree_n[c]++;
}

void vh_host__alloc_tick(vh_host_t *h) {
  if (h->lfree_hits == 0) vh_host__alloc_free(h);
  h->lfree_hits = 0;
}

void vh_host__alloc_free(vh_host_t *h) {
  for (size_t c = 0; c <= VH_LFREE_MAX / 8; c++) {
    while (h->lfree[c]) {
      void *p = h->lfree[c];
      memcpy(&h->lfree[c], p, sizeof p);
      free(p);
    }
    h->lfree_n[c] = 0;
  }
}

void *vh_host__alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  vh_host_t *h = (vh_host_t *)ud;
  size_t old = ptr ? osize : 0; /* for a new block osize is a type tag */
  if (nsize == 0) {
    vh_lfree(h, ptr, old);
    h->heap -= old;
    return NULL;
  }
  if (nsize > old && h->in_handler) {
    if (h->abort == VH_ABORT_MEM ||
        h->heap - old + nsize > h->opts.memory_limit) {
      if (h->abort == VH_ABORT_NONE) {
        h->abort = VH_ABORT_MEM;
        vh_call_arm(h);
      }
      return NULL;
    }
  }
  void *p;
  if (!ptr) {
    p = vh_lalloc(h, nsize);
  } else if (old > VH_LSMALL && nsize > VH_LSMALL) {
    p = realloc(ptr, nsize);
  } else if (old <= VH_LSMALL && nsize <= VH_LSMALL &&
             vh_lclass(old) == vh_lclass(nsize)) {
    p = ptr; /* the block already has the class's size */
  } else {
    /* one side is a small block: move, as realloc would */
    p = vh_lalloc(h, nsize);
    if (p) {
      memcpy(p, ptr, old < nsize ? old : nsize);
      vh_lfree(h, ptr, old);
    }
  }
  if (!p) return NULL;
  h->heap = h->heap - old + nsize;
  if (h->heap > h->heap_peak) h->heap_peak = h->heap;
  return p;
}

/* ---- abort-proof pcall / xpcall / coroutines ---- */

static int vh_call_finishpcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    vh_host_t *h = vh_host__of(L);
    if (h->in_handler && h->abort != VH_ABORT_NONE) return vh_call_raise(L, h);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

static int vh_call_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  int status =
      lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0, vh_call_finishpcall);
  return vh_call_finishpcall(L, status, 0);
}

static int vh_call_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, vh_call_finishpcall);
  return vh_call_finishpcall(L, status, 2);
}

/* lbaselib's auxresume, with the coroutine pushed on h->costack while it
 * runs (nothing between push and pop can raise). */
static int vh_call_auxresume(lua_State *L, lua_State *co, int narg) {
  vh_host_t *h = vh_host__of(L);
  int status, nres;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  int pushed = 0;
  if (h->costack_n < VH_COSTACK) {
    h->costack[h->costack_n] = co;
    atomic_signal_fence(memory_order_seq_cst);
    h->costack_n = h->costack_n + 1;
    pushed = 1;
  }
  atomic_signal_fence(memory_order_seq_cst);
  if (h->in_handler && h->abort != VH_ABORT_NONE)
    lua_sethook(co, vh_call_hook, LUA_MASKCOUNT, 1);
  status = lua_resume(co, L, narg, &nres);
  if (pushed) {
    h->costack_n = h->costack_n - 1;
    atomic_signal_fence(memory_order_seq_cst);
    h->costack[h->costack_n] = NULL;
  }
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

static int vh_call_coresume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "coroutine");
  int r = vh_call_auxresume(L, co, lua_gettop(L) - 1);
  if (r < 0) {
    vh_host_t *h = vh_host__of(L);
    if (h->in_handler && h->abort != VH_ABORT_NONE) return vh_call_raise(L, h);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

static int vh_call_auxwrap(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int r = vh_call_auxresume(L, co, lua_gettop(L));
  if (r < 0) {
    int stat = lua_status(co);
    if (stat != LUA_OK && stat != LUA_YIELD) {
      stat = lua_resetthread(co); /* close its to-be-closed variables */
      lua_xmove(co, L, 1);
    }
    vh_host_t *h = vh_host__of(L);
    if (h->in_handler && h->abort != VH_ABORT_NONE) return vh_call_raise(L, h);
    if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  return r;
}

static int vh_call_cowrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, vh_call_auxwrap, 1);
  return 1;
}

void vh_host__install_wrappers(lua_State *L) {
  lua_pushglobaltable(L);
  lua_pushcfunction(L, vh_call_pcall);
  lua_setfield(L, -2, "pcall");
  lua_pushcfunction(L, vh_call_xpcall);
  lua_setfield(L, -2, "xpcall");
  if (lua_getfield(L, -1, "coroutine") == LUA_TTABLE) {
    lua_pushcfunction(L, vh_call_coresume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, vh_call_cowrap);
    lua_setfield(L, -2, "wrap");
  }
  lua_pop(L, 2);
}

/* ---- the watchdog thread ---- */

static void *vh_call_watchdog(void *arg) {
  vh_host_t *h = (vh_host_t *)arg;
  const int64_t budget = (int64_t)h->opts.handler_timeout_ms * 1000000;
  pthread_mutex_lock(&h->wd_mu);
  while (!h->wd_quit) {
    int64_t d = atomic_load(&h->wd_deadline);
    int64_t now = vh_host__mono_ns();
    int64_t wake;
    if (d == 0) {
      wake = now + budget; /* idle: look again within one budget */
    } else if (now < d) {
      wake = d;
    } else {
      pthread_kill(h->loop_thread, VH_WD_SIGNAL);
      wake = now + 10 * 1000000; /* again while the call goes on */
    }
    struct timespec ts = {(time_t)(wake / 1000000000),
                          (long)(wake % 1000000000)};
    pthread_cond_timedwait(&h->wd_cv, &h->wd_mu, &ts);
  }
  pthread_mutex_unlock(&h->wd_mu);
  return NULL;
}

int vh_host__watchdog_start(vh_host_t *h) {
  if (h->wd_running) return 0; /* the first load started it (host.c) */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = vh_call_on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(VH_WD_SIGNAL, &sa, NULL) != 0) return -errno;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->wd_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&h->wd_mu, NULL);
  h->loop_thread = pthread_self();
  h->wd_quit = 0;
  atomic_store(&h->wd_deadline, 0);
  vh_call_host = h;
  int rc = pthread_create(&h->wd_thread, NULL, vh_call_watchdog, h);
  if (rc != 0) {
    vh_call_host = NULL;
    pthread_cond_destroy(&h->wd_cv);
    pthread_mutex_destroy(&h->wd_mu);
    return -rc;
  }
  h->wd_running = 1;
  return 0;
}

void vh_host__watchdog_stop(vh_host_t *h) {
  if (!h->wd_running) return;
  pthread_mutex_lock(&h->wd_mu);
  h->wd_quit = 1;
  pthread_cond_signal(&h->wd_cv);
  pthread_mutex_unlock(&h->wd_mu);
  pthread_join(h->wd_thread, NULL);
  pthread_cond_destroy(&h->wd_cv);
  pthread_mutex_destroy(&h->wd_mu);
  h->wd_running = 0;
  if (vh_call_host == h) vh_call_host = NULL;
}

/* ---- the call ---- */

/* A fixed-size text being built (vh_call_describe). */
typedef struct vh_desc {
  char buf[240];
  size_t n;
} vh_desc_t;

static void vh_desc_add(vh_desc_t *d, const char *s, size_t len) {
  for (size_t i = 0; i < len && d->n + 1 < sizeof d->buf; i++)
    d->buf[d->n++] = s[i] == '\n' ? ' ' : s[i];
  d->buf[d->n] = '\0';
}

static void vh_desc_str(vh_desc_t *d, const char *s) {
  vh_desc_add(d, s, strlen(s));
}

/* Describe the value at idx into d, raw: scalars as literals, a table as
 * its first entries (nested tables as {...}). No metamethod runs and
 * nothing is allocated, so describing can neither loop nor raise. */
static void vh_call_describe(lua_State *L, vh_desc_t *d, int idx, int depth) {
  char num[64];
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      vh_desc_str(d, "\"");
      vh_desc_add(d, s, n > 60 ? 60 : n);
      vh_desc_str(d, n > 60 ? "...\"" : "\"");
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, idx));
      else
        snprintf(num, sizeof num, "%.14g", (double)lua_tonumber(L, idx));
      vh_desc_str(d, num);
      break;
    case LUA_TBOOLEAN:
      vh_desc_str(d, lua_toboolean(L, idx) ? "true" : "false");
      break;
    case LUA_TTABLE: {
      if (depth > 0) {
        vh_desc_str(d, "{...}");
        break;
      }
      vh_desc_str(d, "{");
      int n = 0;
      lua_Integer next_i = 1;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        if (n == 8) {
          vh_desc_str(d, ", ...");
          lua_pop(L, 2);
          break;
        }
        if (n++) vh_desc_str(d, ", ");
        if (lua_isinteger(L, -2) && lua_tointeger(L, -2) == next_i) {
          next_i++;
        } else if (lua_type(L, -2) == LUA_TSTRING) {
          size_t kl;
          const char *k = lua_tolstring(L, -2, &kl);
          vh_desc_add(d, k, kl > 60 ? 60 : kl);
          vh_desc_str(d, " = ");
        } else {
          vh_desc_str(d, "[");
          vh_call_describe(L, d, -2, depth + 1);
          vh_desc_str(d, "] = ");
        }
        vh_call_describe(L, d, -1, depth + 1);
        lua_pop(L, 1);
      }
      vh_desc_str(d, "}");
      break;
    }
    default:
      vh_desc_str(d, luaL_typename(L, idx));
  }
}

/* Push "file:line: " of the innermost Lua function on the stack, or "". */
static void vh_call_where_lua(lua_State *L) {
  lua_Debug ar;
  for (int lv = 1; lua_getstack(L, lv, &ar); lv++) {
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushliteral(L, "");
}

/* The message handler. An error object that is not a string or number
 * gets the position of the Lua code that raised it and a raw description
 * ("error object is a table: {code = 1}"). Its __tostring is used only
 * while a call is armed (the watchdog and memory limit bound it), in
 * protected mode; otherwise, or if it fails, the description is used. */
int vh_host__msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    vh_host_t *h = vh_host__of(L);
    if (h->in_handler && h->abort == VH_ABORT_NONE &&
        luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
      lua_pushvalue(L, 1);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
        msg = lua_tostring(L, -1);
      else
        lua_pop(L, 1);
    }
  }
  if (msg == NULL) {
    vh_desc_t d = {"", 0};
    vh_call_describe(L, &d, 1, 0);
    vh_call_where_lua(L);
    if (lua_isnil(L, 1))
      msg = lua_pushfstring(L, "%serror object is nil", lua_tostring(L, -1));
    else if (!lua_istable(L, 1) && lua_type(L, 1) != LUA_TBOOLEAN)
      msg = lua_pushfstring(L, "%serror object is a %s", lua_tostring(L, -1),
                            luaL_typename(L, 1));
    else
      msg = lua_pushfstring(L, "%serror object is a %s: %s",
                            lua_tostring(L, -1), luaL_typename(L, 1), d.buf);
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* What the trampoline needs (on the C stack of vh_host__dispatch). */
typedef struct vh_callargs {
  vh_domain_t *d;
  vh_dispatch_kind_t kind; /* migrate: payload is the old version */
  vh_val_t payload;        /* [borrowed] */
  vh_val_t *reply;         /* NULL or [new] result */
} vh_callargs_t;

/* Protected part of a call. Stack: fn, ctx, args (light userdata). */
static int vh_call_tramp(lua_State *L) {
  vh_callargs_t *a = (vh_callargs_t *)lua_touserdata(L, 3);
  lua_settop(L, 2);
  lua_pushvalue(L, 1);
  vhl_state_push_root(L, a->d->st);
  if (a->kind == VH_DISPATCH_MIGRATE) { /* migrate(state, from_version) */
    vhl_pushvalue(L, a->payload);
    lua_call(L, 2, 1);
  } else if (a->kind == VH_DISPATCH_START) {
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);
  } else {
    vhl_pushvalue(L, a->payload);
    lua_pushvalue(L, 2);
    lua_call(L, 3, 1);
  }
  if (a->reply) vhl_tovalue(L, -1, "reply", a->reply);
  return 0;
}

static char *vh_call_strdup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* Log once per (domain, event) that there is no handler. */
static void vh_call_unhandled(vh_host_t *h, vh_domain_t *d, const char *event,
                              size_t elen) {
  lua_State *L = h->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->unhandled_ref);
  lua_pushlstring(L, event, elen);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pushlstring(L, event, elen);
    lua_pushboolean(L, 1);
    lua_rawset(L, -4);
    if (d->refused)
      vh_log(VH_LOG_WARN, d->name,
             "event '%.*s' dropped: the domain is refused (%s); events for "
             "it are dropped (logged once per event)",
             (int)elen, event, d->refused);
    else
      vh_log(VH_LOG_WARN, d->name,
             "no handler for event '%.*s'; events without a handler are "
             "dropped (logged once)",
             (int)elen, event);
  }
  lua_pop(L, 2);
}

/* Log a failed call; *err (if wanted) gets its first line. */
static void vh_call_failed(vh_host_t *h, vh_domain_t *d, const char *event,
                           size_t elen, vh_dispatch_kind_t kind, int status,
                           int aborted, char **err) {
  lua_State *L = h->L;
  char first[1024];
  h->handler_errors++;
  const char *msg = lua_tostring(L, -1);
  const char *more = NULL;
  if (status == LUA_ERRMEM || aborted == VH_ABORT_MEM) {
    snprintf(first, sizeof first,
             "not enough memory (Lua heap over --memory-limit of %d MB); "
             "call rolled back",
             (int)(h->opts.memory_limit >> 20));
  } else {
    if (!msg) msg = "(no error message)";
    const char *nl = strchr(msg, '\n');
    size_t n = nl ? (size_t)(nl - msg) : strlen(msg);
    if (n >= sizeof first) n = sizeof first - 1;
    memcpy(first, msg, n);
    first[n] = '\0';
    if (nl) more = nl + 1;
  }
  char line[1200];
  if (kind != VH_DISPATCH_EVENT)
    snprintf(line, sizeof line, "%s failed: %s",
             kind == VH_DISPATCH_MIGRATE ? "migrate" : "start", first);
  else
    snprintf(line, sizeof line, "handler '%.*s' failed: %s", (int)elen, event,
             first);
  vh_log_text(VH_LOG_ERROR, d->name, line, more);
  if (err) *err = vh_call_strdup(first, strlen(first));
}

void vh_host__arm(vh_host_t *h) {
  if (h->wd_running) vh_call_host = h; /* several hosts (host/testing) */
  h->abort = VH_ABORT_NONE;
  h->costack_n = 0;
  h->deadline_ns =
      vh_host__mono_ns() + (int64_t)h->opts.handler_timeout_ms * 1000000;
  atomic_store_explicit(&h->wd_deadline, h->deadline_ns, memory_order_release);
  atomic_signal_fence(memory_order_seq_cst);
  h->in_handler = 1;
}

int vh_host__disarm(vh_host_t *h) {
  h->in_handler = 0;
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(&h->wd_deadline, 0, memory_order_release);
  int aborted = h->abort;
  if (aborted != VH_ABORT_NONE) lua_sethook(h->L, NULL, 0, 0);
  h->abort = VH_ABORT_NONE;
  h->costack_n = 0;
  return aborted;
}

int vh_host__script_pcall(vh_host_t *h, int msgh) {
  lua_State *L = h->L;
  vh_host__arm(h);
  int rc = lua_pcall(L, 0, 0, msgh);
  int aborted = vh_host__disarm(h);
  if (rc == LUA_OK || (aborted == VH_ABORT_NONE && rc != LUA_ERRMEM)) return rc;
  /* Say it in the script's words, keeping the position of the abort (the
   * hook's "file:line: handler exceeded ..."), else naming the script. */
  const char *msg = lua_tostring(L, -1);
  const char *cut =
      msg ? strstr(msg, "handler exceeded its time budget") : NULL;
  if (!cut && msg) cut = strstr(msg, "not enough memory");
  const char *tb = msg ? strchr(msg, '\n') : NULL;
  if (cut && cut > msg)
    lua_pushlstring(L, msg, (size_t)(cut - msg));
  else
    lua_pushfstring(L, "%s: ", h->loading ? h->loading : "?");
  if (aborted == VH_ABORT_TIME)
    lua_pushfstring(L,
                    "the script's top level took longer than %d ms "
                    "(--handler-timeout)",
                    h->opts.handler_timeout_ms);
  else
    lua_pushfstring(L,
                    "the script's top level went over the --memory-limit of "
                    "%d MB (Lua heap)",
                    (int)(h->opts.memory_limit >> 20));
  lua_pushstring(L, tb ? tb : "");
  lua_concat(L, 3);
  lua_remove(L, -2);
  if (aborted == VH_ABORT_MEM || rc == LUA_ERRMEM) lua_gc(L, LUA_GCCOLLECT, 0);
  return rc;
}

static int vh_call_dispatch(vh_host_t *h, vh_domain_t *d, const char *event,
                            size_t elen, vh_dispatch_kind_t kind,
                            vh_val_t payload, vh_val_t *reply, char **err) {
  lua_State *L = h->L;
  int top = lua_gettop(L);
  if (reply) *reply = vh_nil();
  if (err) *err = NULL;
  lua_pushcfunction(L, vh_host__msgh);
  lua_pushcfunction(L, vh_call_tramp);
  if (kind != VH_DISPATCH_EVENT) {
    lua_rawgeti(L, LUA_REGISTRYINDEX,
                kind == VH_DISPATCH_MIGRATE ? d->migrate_ref : d->start_ref);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, d->on_ref);
    lua_pushlstring(L, event, elen);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_settop(L, top);
    vh_call_unhandled(h, d, event, elen);
    if (err) {
      char buf[1600];
      if (d->refused)
        snprintf(buf, sizeof buf, "domain '%s' is refused: %s", d->name,
                 d->refused);
      else
        snprintf(buf, sizeof buf, "domain '%s' has no handler for event '%.*s'",
                 d->name, (int)elen, event);
      *err = vh_call_strdup(buf, strlen(buf));
    }
    return d->refused ? VH_HOST_EREFUSED : VH_HOST_ENOEVENT;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->ctx_ref);
  lua_pushlstring(L, event, elen);
  lua_setfield(L, -2, "event");
  lua_pushinteger(L, vh_host__now(h));
  lua_setfield(L, -2, "now");
  vh_callargs_t a = {d, kind, payload, reply};
  lua_pushlightuserdata(L, &a);

  int brc = vhl_tx_begin(d->st);
  if (brc != 0) {
    lua_settop(L, top);
    vh_log(VH_LOG_ERROR, d->name, "internal: a transaction is already open");
    return brc;
  }
  h->cur = d;
  h->cur_event = event;
  h->cur_elen = elen;
  vhl_guard(L, d->st);
  vh_host__arm(h);

  vh_trie_fault_clear();
  int status = lua_pcall(L, 3, 0, top + 1);
  const char *fault;
  if (status == LUA_OK && vh_trie_fault(&fault) != 0) {
    /* A stored node failed to load during the call and the code went on
     * (a read that gave nil): its writes must not commit (durable.c). */
    lua_pushfstring(L, "state unreadable: %s", fault);
    vh_trie_fault_clear();
    status = LUA_ERRRUN;
  }

  int aborted = vh_host__disarm(h);
  vhl_guard(L, NULL);
  h->cur = NULL;
  h->slice_calls++;
  h->total_calls++;

  if (status == LUA_OK) {
    vhl_tx_commit(d->st);
    vh_sys__pending_apply(h);
    lua_settop(L, top);
    return 0;
  }
  vhl_tx_rollback(d->st);
  vh_sys__pending_drop(h); /* also undoes its sends and afters */
  if (reply) {
    vh_val_release(*reply);
    *reply = vh_nil();
  }
  vh_call_failed(h, d, event, elen, kind, status, aborted, err);
  lua_settop(L, top);
  if (aborted == VH_ABORT_MEM || status == LUA_ERRMEM)
    lua_gc(L, LUA_GCCOLLECT, 0); /* give the heap back now, unlimited */
  return VH_HOST_EROLLBACK;
}

/* The call, then its entry in the slice's input log (det.c). */
int vh_host__dispatch(vh_host_t *h, vh_domain_t *d, const char *event,
                      size_t elen, vh_dispatch_kind_t kind, vh_val_t payload,
                      vh_val_t *reply, char **err) {
  int rc = vh_call_dispatch(h, d, event, elen, kind, payload, reply, err);
  vh_det__record(h, d, event, elen, (int)kind, payload, rc, reply);
  return rc;
}
