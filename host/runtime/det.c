/*
 * det.c - deterministic slices and the input log (README "Deterministic
 * slices"; record layout: persist/store/store_inputs.c).
 *
 * DETERMINISM. Inside a handler call (h->cur set), what domain code could
 * read from the world is fixed per slice:
 *   math.random       a xoshiro256** generator per domain, seeded (at its
 *                     first use in a slice) from the slice's seed and the
 *                     domain's name; the slice's seed comes from a host
 *                     seed (taken at start) and the slice counter, and is
 *                     recorded in the input log. math.randomseed(x) in a
 *                     handler reseeds that domain's generator from x.
 *                     Same ranges and errors as Lua 5.4's math.random.
 *   os.time()         the slice clock ctx.now in seconds (floor); with a
 *                     table argument it is Lua's own (pure).
 *   os.date(fmt)      formats the slice clock; with a time argument, Lua's.
 *   os.clock()        the slice clock in seconds (a float).
 * Outside handlers (script top levels, REPL chunks) they are Lua's own.
 * Anything else that reads the world (or acts on it and reads the result)
 * from a handler - io.open, io.read, io.lines, io.popen, io.input,
 * io.tmpfile, the file methods read, lines and seek, os.getenv,
 * os.execute, os.tmpname, os.remove, os.rename - marks the slice
 * unreplayable (with the reason: which
 * function, which domain and event) and then runs as before: such a slice
 * is reported as unreplayable, never replayed wrongly. C modules a script
 * requires are trusted and not seen (README).
 *
 * THE INPUT LOG. vh_det__record (called by call.c for every handler call)
 * appends the call to h->inlog.ents: what caused it (h->inlog.kind / id,
 * set by sched.c just before it dispatches), the domain, event, payload,
 * the outcome and the reply. At slice end durable.c encodes the record
 * (vh_det__encode) into the version's batch; vh_det__slice_reset starts
 * the next slice's log.
 *
 * Cost: one payload encoding per handler call and a few bytes; measured
 * in README "Deterministic slices".
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_log.h"

static uint64_t vh_det_splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t vh_det_fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

void vh_det__init(vh_host_t *h) {
  uint64_t x = (uint64_t)vh_host__wall_ms() * 1000003u ^
               (uint64_t)vh_host__mono_ns() ^ ((uint64_t)getpid() << 32);
  h->host_seed = vh_det_splitmix(&x);
  h->inlog.kind = VH_IN_REPL;
  /* bench/inputlog_bench.sh measures the log's cost against this */
  const char *off = getenv("VEDHOST_NO_INPUT_LOG");
  h->inlog.off = off && *off && strcmp(off, "0") != 0;
}

uint64_t vh_det__seed(vh_host_t *h) {
  if (!h->seed_taken) {
    uint64_t x = h->host_seed ^ (h->slice_seq * 0xd1b54a32d192ed03ULL);
    h->slice_seed = vh_det_splitmix(&x);
    if (h->slice_seed == 0) h->slice_seed = 1;
    h->seed_taken = 1;
    h->rng_gen++;
  }
  return h->slice_seed;
}

void vh_det__set_seed(vh_host_t *h, uint64_t seed) {
  h->slice_seed = seed;
  h->seed_taken = seed != 0;
  h->rng_gen++;
}

static void vh_det_seed_rng(uint64_t *s, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) s[i] = vh_det_splitmix(&x);
}

static uint64_t vh_det_rotl(uint64_t x, int n) {
  return (x << n) | (x >> (64 - n));
}

static uint64_t vh_det_next(uint64_t *s) {
  uint64_t r = vh_det_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = vh_det_rotl(s[3], 45);
  return r;
}

/* The generator of the running handler's domain, seeded for this slice. */
static uint64_t *vh_det_rng(vh_host_t *h, vh_domain_t *d) {
  vh_det__seed(h);
  if (d->rng_gen != h->rng_gen) {
    vh_det_seed_rng(d->rng, h->slice_seed ^ vh_det_fnv(d->name));
    d->rng_gen = h->rng_gen;
  }
  return d->rng;
}

/* Lua 5.4's project (lmathlib.c): a uniform integer in [0, n]. */
static uint64_t vh_det_project(uint64_t ran, uint64_t n, uint64_t *s) {
  if ((n & (n + 1)) == 0) return ran & n;
  uint64_t lim = n;
  lim |= (lim >> 1);
  lim |= (lim >> 2);
  lim |= (lim >> 4);
  lim |= (lim >> 8);
  lim |= (lim >> 16);
  lim |= (lim >> 32);
  while ((ran &= lim) > n) ran = vh_det_next(s);
  return ran;
}

/* math.random; upvalue 1: Lua's own (outside handlers). */
static int vh_det_random(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  vh_domain_t *d = h ? h->cur : NULL;
  if (d == NULL) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
  }
  uint64_t *s = vh_det_rng(h, d);
  uint64_t rv = vh_det_next(s);
  lua_Integer low, up;
  switch (lua_gettop(L)) {
    case 0:
      lua_pushnumber(L, (lua_Number)(rv >> 11) * 0x1.0p-53);
      return 1;
    case 1:
      low = 1;
      up = luaL_checkinteger(L, 1);
      if (up == 0) {
        lua_pushinteger(L, (lua_Integer)rv);
        return 1;
      }
      break;
    case 2:
      low = luaL_checkinteger(L, 1);
      up = luaL_checkinteger(L, 2);
      break;
    default:
      return luaL_error(L, "wrong number of arguments");
  }
  luaL_argcheck(L, low <= up, lua_gettop(L), "interval is empty");
  uint64_t p = vh_det_project(rv, (uint64_t)up - (uint64_t)low, s);
  lua_pushinteger(L, (lua_Integer)(p + (uint64_t)low));
  return 1;
}

/* math.randomseed; upvalue 1: Lua's own. */
static int vh_det_randomseed(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  vh_domain_t *d = h ? h->cur : NULL;
  if (d == NULL || lua_isnone(L, 1)) {
    if (d != NULL) { /* no argument: a fresh seed would be outside input */
      lua_pushinteger(L, (lua_Integer)vh_det__seed(h));
      lua_replace(L, 1);
    } else {
      lua_pushvalue(L, lua_upvalueindex(1));
      lua_insert(L, 1);
      lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
      return lua_gettop(L);
    }
  }
  uint64_t n1 = lua_isinteger(L, 1) ? (uint64_t)lua_tointeger(L, 1)
                                    : (uint64_t)luaL_checknumber(L, 1);
  uint64_t n2 = (uint64_t)luaL_optinteger(L, 2, 0);
  vh_det_rng(h, d);
  vh_det_seed_rng(d->rng, n1 ^ vh_det_fnv(d->name) ^ (n2 * 0x9e37ULL));
  return 0;
}

static int vh_det_call_orig(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int vh_det_time(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (h && h->cur && lua_isnoneornil(L, 1)) {
    int64_t ms = vh_host__now(h);
    lua_pushinteger(L,
                    (lua_Integer)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000)));
    return 1;
  }
  return vh_det_call_orig(L);
}

static int vh_det_date(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (h && h->cur && lua_isnoneornil(L, 2)) {
    int64_t ms = vh_host__now(h);
    lua_settop(L, 1);
    if (lua_isnil(L, 1)) {
      lua_pop(L, 1);
      lua_pushliteral(L, "%c");
    }
    lua_pushinteger(L,
                    (lua_Integer)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000)));
  }
  return vh_det_call_orig(L);
}

static int vh_det_clock(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (h && h->cur) {
    lua_pushnumber(L, (lua_Number)vh_host__now(h) / 1000.0);
    return 1;
  }
  return vh_det_call_orig(L);
}

void vh_det__unreplayable(vh_host_t *h, const char *why) {
  if (h->inlog.unrep) return; /* the first reason is kept */
  h->inlog.unrep = 1;
  snprintf(h->inlog.reason, sizeof h->inlog.reason, "%s", why);
}

/* An outside read; upvalue 1: the original, 2: its name. */
static int vh_det_outside(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (h && h->cur) {
    char why[300];
    snprintf(why, sizeof why, "%s.%.*s called %s (an unrecorded outside input)",
             h->cur->name, (int)(h->cur_elen > 64 ? 64 : h->cur_elen),
             h->cur_event ? h->cur_event : "",
             lua_tostring(L, lua_upvalueindex(2)));
    vh_det__unreplayable(h, why);
  }
  return vh_det_call_orig(L);
}

static void vh_det_wrap(lua_State *L, int tab, const char *field,
                        const char *name, lua_CFunction fn) {
  lua_getfield(L, tab, field);
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (name) {
    lua_pushstring(L, name);
    lua_pushcclosure(L, fn, 2);
  } else {
    lua_pushcclosure(L, fn, 1);
  }
  lua_setfield(L, tab, field);
}

void vh_det__install(lua_State *L) {
  int top = lua_gettop(L);
  if (lua_getglobal(L, "math") == LUA_TTABLE) {
    int t = lua_gettop(L);
    vh_det_wrap(L, t, "random", NULL, vh_det_random);
    vh_det_wrap(L, t, "randomseed", NULL, vh_det_randomseed);
  }
  if (lua_getglobal(L, "os") == LUA_TTABLE) {
    int t = lua_gettop(L);
    vh_det_wrap(L, t, "time", NULL, vh_det_time);
    vh_det_wrap(L, t, "date", NULL, vh_det_date);
    vh_det_wrap(L, t, "clock", NULL, vh_det_clock);
    static const char *const os_out[] = {"getenv", "execute", "tmpname",
                                         "remove", "rename",  NULL};
    for (int i = 0; os_out[i]; i++) {
      char name[32];
      snprintf(name, sizeof name, "os.%s", os_out[i]);
      vh_det_wrap(L, t, os_out[i], name, vh_det_outside);
    }
  }
  if (lua_getglobal(L, "io") == LUA_TTABLE) {
    int t = lua_gettop(L);
    static const char *const io_out[] = {"open",  "read",    "lines", "popen",
                                         "input", "tmpfile", NULL};
    for (int i = 0; io_out[i]; i++) {
      char name[32];
      snprintf(name, sizeof name, "io.%s", io_out[i]);
      vh_det_wrap(L, t, io_out[i], name, vh_det_outside);
    }
    /* file methods (io.stdin:read ...): the shared metatable's __index */
    lua_getfield(L, t, "stdin");
    if (lua_getmetatable(L, -1) &&
        lua_getfield(L, -1, "__index") == LUA_TTABLE) {
      int m = lua_gettop(L);
      static const char *const f_out[] = {"read", "lines", "seek", NULL};
      for (int i = 0; f_out[i]; i++) {
        char name[32];
        snprintf(name, sizeof name, "file:%s", f_out[i]);
        vh_det_wrap(L, m, f_out[i], name, vh_det_outside);
      }
    }
  }
  lua_settop(L, top);
}

void vh_det__record(vh_host_t *h, vh_domain_t *d, const char *event,
                    size_t elen, int kind, vh_val_t payload, int rc,
                    const vh_val_t *reply) {
  vh_inlog_t *g = &h->inlog;
  vh_in_kind_t k = g->kind;
  int64_t id = g->id;
  g->kind = VH_IN_REPL; /* the default for the next call */
  g->id = 0;
  if (h->replaying || g->off) return;
  if (kind == VH_DISPATCH_MIGRATE) {
    vh_det__unreplayable(h, "a migrate ran in this slice (boot or reload)");
    return;
  }
  if (kind == VH_DISPATCH_START) k = VH_IN_START;
  vh_in_outcome_t o = rc == 0                   ? VH_IN_OK
                      : rc == VH_HOST_EROLLBACK ? VH_IN_RAISED
                                                : VH_IN_NOCALL;
  int r = vh_inputs_add(&g->ents, k, id, d->name, strlen(d->name), event, elen,
                        payload, o, reply != NULL, reply ? *reply : vh_nil());
  if (r != 0) {
    vh_det__unreplayable(h, "out of memory recording an input");
    return;
  }
  g->n++;
}

int vh_det__encode(vh_host_t *h, vh_buf_t *out) {
  vh_inlog_t *g = &h->inlog;
  out->len = 0;
  return vh_inputs_encode(out, vh_host__now(h),
                          h->seed_taken ? h->slice_seed : 0, g->unrep,
                          g->unrep ? g->reason : NULL, g->n, &g->ents);
}

void vh_det__slice_reset(vh_host_t *h) {
  h->inlog.ents.len = 0;
  h->inlog.n = 0;
  h->inlog.unrep = 0;
  h->inlog.reason[0] = '\0';
  h->seed_taken = 0;
}

void vh_det__free(vh_host_t *h) {
  vh_buf_free(&h->inlog.ents);
  vh_buf_free(&h->inlog.rec);
}
