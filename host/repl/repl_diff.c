/*
 * repl_diff.c - the REPL's diff(a [, b [, path]]): what changed between two
 * versions.
 *
 *   diff(-1)                    the newest retained version -> the present
 *   diff(1200, 1300, "kv.a")    two retained versions, under kv.a
 *   -> { {op = "~", path = {"kv", "a"}, old = 1, new = 2,
 *         line = "~ kv.a: 1 -> 2"}, ... }
 *
 * a and b are version specs as for at(V) (an integer: a seq, 0 or -N; a
 * string: "1234", "-3", "14:02", "-5m", a mark); b nil (or absent) is the
 * present: the live state of every domain, including what the running
 * chunk wrote. path is "domain.key.key" (an integer-looking element is an
 * integer key where either side has it, else a string key), or nil for
 * every domain. Records come in `vedhost diff`'s order (domains by name,
 * keys in the REPL's key order); op is "+" (value), "-" (old) or "~" (old,
 * new); line is the record as `vedhost diff` prints it.
 *
 * HOW. Old versions are read through vh_tab_stub_view (their nodes never
 * report deaths, see repl_at.c); the present is the live roots, whose
 * stored nodes carry the same ids as the views' nodes, so the walk
 * (persist/tdiff.c) skips every subtree both share. The changes are first
 * collected in C (values retained), in a userdata whose __gc releases
 * them, and only then turned into Lua tables: nothing raises while the
 * walk holds memory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repl_int.h"
#include "vh_changes.h"
#include "vh_diff_stage.h"
#include "vh_tdiff.h"
#include "vh_version_spec.h"

#define VH_REPL_DIFF_MT "ved.repl.diff"

typedef struct vh_rdrec {
  int op;
  char *domain;   /* [owned] */
  vh_val_t *path; /* [owned] keys, retained */
  size_t depth;
  vh_val_t old, new; /* retained */
} vh_rdrec_t;

typedef struct vh_rdbox {
  vh_rdrec_t *r;
  size_t n, cap;
  int oom;
  vh_vside_t a, b; /* the sides, freed by __gc too */
} vh_rdbox_t;

static void vh_rdbox_clear(vh_rdbox_t *bx) {
  for (size_t i = 0; i < bx->n; i++) {
    vh_rdrec_t *r = &bx->r[i];
    free(r->domain);
    for (size_t d = 0; d < r->depth; d++) vh_val_release(r->path[d]);
    free(r->path);
    vh_val_release(r->old);
    vh_val_release(r->new);
  }
  free(bx->r);
  bx->r = NULL;
  bx->n = bx->cap = 0;
  vh_vside_free(&bx->a);
  vh_vside_free(&bx->b);
}

static int vh_rdbox_gc(lua_State *L) {
  vh_rdbox_clear((vh_rdbox_t *)luaL_checkudata(L, 1, VH_REPL_DIFF_MT));
  return 0;
}

static int vh_rdbox_add(void *arg, const vh_change_t *c) {
  vh_rdbox_t *bx = arg;
  if (bx->n == bx->cap) {
    size_t cap = bx->cap ? 2 * bx->cap : 32;
    vh_rdrec_t *r = realloc(bx->r, cap * sizeof *r);
    if (!r) return bx->oom = 1;
    bx->r = r;
    bx->cap = cap;
  }
  vh_rdrec_t *r = &bx->r[bx->n];
  r->domain = strdup(c->domain);
  r->path = malloc((c->depth + 1) * sizeof *r->path);
  if (!r->domain || !r->path) {
    free(r->domain);
    free(r->path);
    return bx->oom = 1;
  }
  r->op = c->op;
  r->depth = c->depth;
  for (size_t d = 0; d < c->depth; d++) {
    r->path[d] = c->path[d];
    vh_val_retain(r->path[d]);
  }
  r->old = c->old;
  r->new = c->new;
  vh_val_retain(r->old);
  vh_val_retain(r->new);
  bx->n++;
  return 0;
}

static int64_t vh_rd_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The spec at idx as a string (at()'s rules), or raise. */
static const char *vh_rd_spec(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (!lua_isinteger(L, idx))
      luaL_error(L, "diff: a version is an integer or a string");
    lua_Integer n = lua_tointeger(L, idx);
    return n > 0 ? lua_pushfstring(L, "%I", n) : lua_pushfstring(L, "-%I", -n);
  }
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
  luaL_error(L, "diff: a version is an integer or a string (got %s)",
             luaL_typename(L, idx));
  return NULL;
}

/* A side from a spec, and its manifest's next_id; or raise (nothing of the
 * side is kept then). */
static void vh_rd_side(lua_State *L, struct vh_store *store, const char *spec,
                       vh_vside_t *side, uint64_t *seq_out, uint64_t *next_id) {
  vh_manifest_t m;
  uint64_t seq = 0;
  int64_t t = 0;
  char *msg = NULL;
  int rc = vh_version_load(store, spec, vh_rd_wall_ms(), &seq, &t, &m, &msg);
  if (rc != 0) {
    lua_pushfstring(L, "diff: %s", msg ? msg : vh_err_name(rc));
    free(msg);
    lua_error(L);
  }
  *seq_out = seq;
  *next_id = m.next_id;
  rc = vh_vside_from_manifest(side, &m, vh_tab_stub_view);
  vh_manifest_free(&m);
  if (rc != 0) luaL_error(L, "diff: out of memory");
}

/* The value at the top of the stack formatted as pretty.format would
 * format it (scripts/pretty.lua: format_number, format_string's fast
 * path), added to b; 0 (nothing added) for a value pretty.format must do:
 * tables, strings with a control byte, a quote, a backslash or a byte >=
 * 128, math.mininteger, NaN and infinities. pretty.format builds its state
 * (closures, tables) on every call, ~30k instructions a value: most of a
 * small diff's record cost (bench/README.md, ver/diff3). b's slot is just
 * below the value; a value added is popped first (its string is the
 * record's field too, so its bytes stay valid); else it stays. */
static int vh_rd_fast_format(lua_State *L, luaL_Buffer *b) {
  char buf[64];
  switch (lua_type(L, -1)) {
    case LUA_TNIL:
      lua_pop(L, 1);
      luaL_addstring(b, "nil");
      return 1;
    case LUA_TBOOLEAN: {
      int t = lua_toboolean(L, -1);
      lua_pop(L, 1);
      luaL_addstring(b, t ? "true" : "false");
      return 1;
    }
    case LUA_TNUMBER: {
      if (lua_isinteger(L, -1)) {
        lua_Integer i = lua_tointeger(L, -1);
        if (i == LUA_MININTEGER) return 0;
        char *e = buf + sizeof buf, *p = e;
        lua_Unsigned u = i < 0 ? 0u - (lua_Unsigned)i : (lua_Unsigned)i;
        do *--p = (char)('0' + u % 10);
        while ((u /= 10) != 0);
        if (i < 0) *--p = '-';
        lua_pop(L, 1);
        luaL_addlstring(b, p, (size_t)(e - p));
        return 1;
      }
      lua_Number x = lua_tonumber(L, -1);
      if (x != x || x == HUGE_VAL || x == -HUGE_VAL) return 0;
      for (int prec = 14; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if (strtod(buf, NULL) == x) break;
      }
      if (strspn(buf, "-0123456789") == strlen(buf)) strcat(buf, ".0");
      lua_pop(L, 1);
      luaL_addstring(b, buf);
      return 1;
    }
    case LUA_TSTRING: {
      size_t len = 0;
      const unsigned char *s =
          (const unsigned char *)lua_tolstring(L, -1, &len);
      for (size_t i = 0; i < len; i++)
        if (s[i] < 32 || s[i] >= 127 || s[i] == '"' || s[i] == '\\') return 0;
      lua_pop(L, 1);
      luaL_addchar(b, '"');
      luaL_addlstring(b, (const char *)s, len);
      luaL_addchar(b, '"');
      return 1;
    }
    default:
      return 0;
  }
}

/* Push record r as a Lua table (pretty at index pretty). */
static void vh_rd_push(lua_State *L, const vh_rdrec_t *r, int pretty) {
  lua_createtable(L, 0, 5);
  int rec = lua_gettop(L);
  char op[2] = {(char)r->op, 0};
  lua_pushstring(L, op);
  lua_setfield(L, -2, "op");
  lua_createtable(L, (int)r->depth + 1, 0);
  lua_pushstring(L, r->domain);
  lua_rawseti(L, -2, 1);
  for (size_t d = 0; d < r->depth; d++) {
    vhl_pushvalue(L, r->path[d]);
    lua_rawseti(L, -2, (lua_Integer)d + 2);
  }
  lua_setfield(L, -2, "path");
  /* line: "+ path = v", "- path", "~ path: old -> new" */
  vh_buf_t pb;
  vh_buf_init(&pb);
  if (vh_change_path_text(r->domain, r->path, r->depth, &pb) != 0) {
    vh_buf_free(&pb);
    luaL_error(L, "diff: out of memory");
  }
  const char *names[2] = {r->op == '+' ? "value" : "old", "new"};
  vh_val_t vals[2] = {r->op == '+' ? r->new : r->old, r->new};
  int nv = r->op == '~' ? 2 : r->op == '+' ? 1 : 0;
  for (int i = 0; i < nv; i++) { /* the record's value fields */
    vhl_pushvalue(L, vals[i]);
    lua_setfield(L, -2, names[i]);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, (char)r->op);
  luaL_addchar(&b, ' ');
  luaL_addlstring(&b, (const char *)pb.p, pb.len);
  vh_buf_free(&pb);
  for (int i = 0; i < nv; i++) {
    luaL_addstring(&b, r->op == '+' ? " = " : i == 0 ? ": " : " -> ");
    lua_getfield(L, rec, names[i]);
    if (!vh_rd_fast_format(L, &b)) {
      /* pretty.format(v, {width = huge, max_items = huge}) */
      lua_getfield(L, pretty, "format");
      lua_insert(L, -2);
      lua_createtable(L, 0, 3);
      lua_pushinteger(L, LUA_MAXINTEGER / 2);
      lua_setfield(L, -2, "width");
      lua_pushinteger(L, LUA_MAXINTEGER / 2);
      lua_setfield(L, -2, "max_items");
      lua_pushinteger(L, 1000000);
      lua_setfield(L, -2, "max_depth");
      lua_call(L, 2, 1);
      luaL_addvalue(&b);
    }
  }
  luaL_pushresult(&b);
  lua_setfield(L, -2, "line");
}

int vh_repl__diff(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (!h->repl || !h->repl->active || h->cur)
    return luaL_error(L, "diff: only available in a REPL chunk");
  struct vh_store *store = vh_durable__store(h);
  if (!store) return luaL_error(L, "diff: this host has no store");
  lua_settop(L, 3); /* the specs pushed below go above the arguments */
  const char *sa = vh_rd_spec(L, 1);
  const char *sb = lua_isnoneornil(L, 2) ? NULL : vh_rd_spec(L, 2);
  const char *path = luaL_optstring(L, 3, NULL);
  vh_rdbox_t *bx = (vh_rdbox_t *)lua_newuserdatauv(L, sizeof *bx, 0);
  memset(bx, 0, sizeof *bx);
  if (luaL_newmetatable(L, VH_REPL_DIFF_MT)) {
    lua_pushcfunction(L, vh_rdbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int box = lua_gettop(L);
  uint64_t na = 0, nb = 0; /* next_id of each stored version (0: live) */
  uint64_t qa = 0, qb = 0; /* and its seq */
  vh_rd_side(L, store, sa, &bx->a, &qa, &na);
  if (sb) {
    vh_rd_side(L, store, sb, &bx->b, &qb, &nb);
  } else {
    for (int i = 0; i < h->ndoms; i++)
      if (vh_vside_add(&bx->b, h->doms[i]->name,
                       vhl_state_root(h->doms[i]->st)) != 0)
        return luaL_error(L, "diff: out of memory");
  }
  /* The path: domain, then keys resolved against both sides. */
  char *domain = NULL;
  vh_val_t keys[64];
  size_t nkeys = 0;
  int bad = 0;
  if (path) {
    const char *dot = strchr(path, '.');
    size_t dl = dot ? (size_t)(dot - path) : strlen(path);
    if (dl == 0 || path[strlen(path) - 1] == '.' || strstr(path, ".."))
      return luaL_error(L, "diff: bad path \"%s\": empty element", path);
    domain = strndup(path, dl);
    if (!domain) return luaL_error(L, "diff: out of memory");
    vh_val_t va = vh_nil(), vb = vh_nil();
    int found = 0;
    for (size_t i = 0; i < bx->a.n; i++)
      if (strcmp(bx->a.names[i], domain) == 0 && (found = 1) && bx->a.roots[i])
        va = (vh_val_t){.u.t = bx->a.roots[i], .type = VH_TTAB};
    for (size_t i = 0; i < bx->b.n; i++)
      if (strcmp(bx->b.names[i], domain) == 0 && (found = 1) && bx->b.roots[i])
        vb = (vh_val_t){.u.t = bx->b.roots[i], .type = VH_TTAB};
    if (!found) bad = 1;
    for (const char *e = dot; e && !bad;) {
      const char *s = e + 1;
      e = strchr(s, '.');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      if (nkeys == 64) {
        bad = 2;
        break;
      }
      vh_val_t k = vh_nil(), x = vh_nil(), y = vh_nil();
      char buf[24], *end;
      if (len < sizeof buf) {
        memcpy(buf, s, len);
        buf[len] = 0;
        long long ll = strtoll(buf, &end, 10);
        if (len > 0 && *end == 0) {
          if (va.type == VH_TTAB) vh_tab_get(va.u.t, vh_int(ll), &x);
          if (vb.type == VH_TTAB) vh_tab_get(vb.u.t, vh_int(ll), &y);
          if (x.type != VH_TNIL || y.type != VH_TNIL) k = vh_int(ll);
        }
      }
      if (k.type == VH_TNIL) {
        k.u.s = vh_str_new(s, len);
        k.type = VH_TSTR;
        if (!k.u.s) {
          bad = 3;
          break;
        }
        x = y = vh_nil();
        if (va.type == VH_TTAB) vh_tab_get(va.u.t, k, &x);
        if (vb.type == VH_TTAB) vh_tab_get(vb.u.t, k, &y);
      }
      keys[nkeys++] = k;
      va = x;
      vb = y;
    }
  }
  /* Two stored versions: the newer one's new nodes read in one scan. */
  int rc = bad ? 0
               : vh_diff_staged(store, qa, na, qb, nb, &bx->a, &bx->b, domain,
                                keys, nkeys, vh_rdbox_add, bx);
  for (size_t i = 0; i < nkeys; i++) vh_val_release(keys[i]);
  const char *fm = NULL;
  int fault = vh_trie_fault(&fm) != 0;
  if (bad == 1) {
    lua_pushfstring(L, "diff: no domain \"%s\" in either version", domain);
    free(domain);
    return lua_error(L);
  }
  free(domain);
  if (bad) return luaL_error(L, "diff: bad path (too long or no memory)");
  if (fault || (rc < 0 && !bx->oom)) {
    lua_pushfstring(L, "diff: state unreadable: %s",
                    fault ? fm : vh_err_name(rc));
    vh_trie_fault_clear();
    return lua_error(L);
  }
  if (bx->oom) return luaL_error(L, "diff: out of memory");
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->repl->pretty_ref);
  int pretty = lua_gettop(L);
  lua_createtable(L, (int)bx->n, 0);
  for (size_t i = 0; i < bx->n; i++) {
    vh_rd_push(L, &bx->r[i], pretty);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  vh_rdbox_clear(bx);
  lua_remove(L, pretty);
  lua_remove(L, box);
  return 1;
}

int vh_repl__diff_push(lua_State *L, vh_vside_t *a, vh_vside_t *b,
                       const char *what) {
  vh_host_t *h = vh_host__of(L);
  vh_rdbox_t *bx = (vh_rdbox_t *)lua_newuserdatauv(L, sizeof *bx, 0);
  memset(bx, 0, sizeof *bx);
  bx->a = *a;
  bx->b = *b;
  memset(a, 0, sizeof *a);
  memset(b, 0, sizeof *b);
  if (luaL_newmetatable(L, VH_REPL_DIFF_MT)) {
    lua_pushcfunction(L, vh_rdbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  int box = lua_gettop(L);
  int rc =
      vh_changes_diff(&bx->a, &bx->b, NULL, NULL, 0, 0, 0, vh_rdbox_add, bx);
  const char *fm = NULL;
  if (vh_trie_fault(&fm) != 0 || (rc < 0 && !bx->oom)) {
    lua_pushfstring(L, "%s: state unreadable: %s", what,
                    fm ? fm : vh_err_name(rc));
    vh_trie_fault_clear();
    return lua_error(L);
  }
  if (bx->oom) return luaL_error(L, "%s: out of memory", what);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->repl->pretty_ref);
  int pretty = lua_gettop(L);
  lua_createtable(L, (int)bx->n, 0);
  for (size_t i = 0; i < bx->n; i++) {
    vh_rd_push(L, &bx->r[i], pretty);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  vh_rdbox_clear(bx);
  lua_remove(L, pretty);
  lua_remove(L, box);
  return 1;
}
