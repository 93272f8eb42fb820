/*
 * convert.c - Lua values <-> state values (vh_val_t).
 *
 * State is data, like a JSON document: storing a table stores a deep copy.
 *  - Scalars map one to one: nil, booleans, integers and floats (the
 *    subtype is kept: 2 and 2.0 are different values, though the same key),
 *    strings (binary safe).
 *  - NaN is allowed as a VALUE (it is an ordinary float); only keys are
 *    restricted (nil and NaN keys raise, as in Lua).
 *  - A plain Lua table is copied recursively (raw access: metatables are
 *    ignored). A table met again while it is being copied (on the current
 *    path) is a cycle and raises "cannot store a cyclic table at <path>";
 *    the same table reachable twice without a cycle is copied twice.
 *  - A proxy is stored as vh_tab_deepcopy of the node it resolves to, so
 *    every node keeps exactly one parent (ARCHITECTURE.md invariant 5).
 *  - Functions, userdata (other than proxies), threads raise
 *    "cannot store a <type> at <path>".
 *
 * Raising safely: the table being built is first stored in a box userdata
 * ("ved.box", __gc releases it), and every nested table is stored into its
 * parent before it is filled. The tables are created under the caller's edit
 * token, so filling them mutates them in place and their pointers stay
 * valid. When something raises, the partial copy is owned by the box and
 * freed by the garbage collector; no C memory is ever held across a call
 * that may raise.
 *
 * Depth (vh_limits.h). A value lands at a depth: 1 for a whole state or a
 * payload, the proxy's depth + 1 for a value stored into a state table.
 * No table of the copy may sit deeper than VH_MAX_DEPTH: a plain table is
 * checked level by level while it is copied (which also bounds fill's
 * recursion), a proxy by copying its subtree with vh_tab_deepcopy_max
 * (iterative, refusing a subtree taller than the room left). So storing a
 * state subtable under itself again and again stops at the limit.
 *
 * Paths in messages are built only when an error is raised: each recursion
 * level records the stack index of its key in a frame on the C stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhl_int.h"

typedef struct frame {
  const struct frame *up; /* enclosing level, NULL at the top */
  int key_idx;            /* absolute stack index of the key */
} frame_t;

typedef struct ctx {
  lua_State *L;
  vhl_proxy_t *p;   /* the path starts at p + key at p_key (or NULL) */
  int p_key;        /* absolute index of that key, 0 if none */
  const char *what; /* the path when p is NULL */
  uint64_t edit;    /* token for the tables built */
  int seen;         /* absolute index of the set of tables on the path */
  int base;         /* depth where the value lands (vh_limits.h) */
} ctx_t;

int vhl__oom(lua_State *L) {
  return luaL_error(L, "not enough memory for the state");
}

static int box_gc(lua_State *L) {
  vhl_box_t *b = (vhl_box_t *)luaL_checkudata(L, 1, VHL_BOX_MT);
  vh_val_t v = b->v;
  b->v = vh_nil();
  vh_val_release(v);
  return 0;
}

vhl_box_t *vhl__box_new(lua_State *L) {
  if (luaL_newmetatable(L, VHL_BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  vhl_box_t *b = (vhl_box_t *)lua_newuserdatauv(L, sizeof *b, 0);
  b->v = vh_nil();
  luaL_setmetatable(L, VHL_BOX_MT);
  return b;
}

/* ---- the key cache ----
 *
 * Writes need a vh_str_t for a string key; making one costs a malloc, a
 * copy, a hash and a free per write. The cache maps the address of a Lua
 * string's bytes to a retained vh_str_t with the same bytes. An address can
 * be reused by another string once the first is collected, so a hit is also
 * checked by length and content (short keys only: a few bytes of memcmp).
 * Keys stored through the cache are the cached objects, so later lookups
 * with the cached key compare pointers inside the trie instead of bytes.
 * One process-wide table: the loop thread owns every lua_State. The cached
 * strings count in vh_mem_bytes until vhl_key_cache_flush.
 *
 * ADMISSION. A proxy write whose key misses is cached only if the same
 * Lua string missed at its slot the time before (vhl__key_admit; `seen`
 * remembers the last miss): a key written once (a handler that sets 10,000
 * different keys) is written by its bytes (vh_tab_set_str_slot: an inline
 * key needs no string) and evicts nothing; a key used again is cached at
 * its second miss, as before. Making the string, hashing it, caching it and
 * freeing the string it evicted (vhl__key_str) cost ~260 instructions of
 * a ~5,700-instruction `sync` update (bench/README.md "perf/loop"). */
#define KC_BITS 10
#define KC_MAXLEN 40 /* Lua's short (interned) strings */

static struct {
  const char *lp;   /* address of the Lua string's bytes */
  vh_str_t *s;      /* [owned] same bytes; NULL if the slot is empty */
  const char *data; /* vh_str_data(s), len: copies for a call-free check */
  size_t len;
  const char *seen; /* the last address that missed here (ADMISSION) */
} kc[1u << KC_BITS];

static inline size_t kc_slot(const char *p) {
  return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >>
                  (64 - KC_BITS));
}

/* Byte compare without a libc call: the keys checked here are short. */
static inline int same_bytes(const char *a, const char *b, size_t n) {
  uint64_t x, y;
  for (; n >= 8; n -= 8, a += 8, b += 8) {
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y) return 0;
  }
  if (n >= 4) {
    uint32_t u, v;
    memcpy(&u, a, 4);
    memcpy(&v, b, 4);
    if (u != v) return 0;
    n -= 4, a += 4, b += 4;
  }
  for (; n > 0; n--)
    if (*a++ != *b++) return 0;
  return 1;
}

vh_str_t *vhl__key_cached(const char *p, size_t n) {
  size_t i = kc_slot(p);
  if (kc[i].lp == p && kc[i].len == n && kc[i].s != NULL &&
      same_bytes(kc[i].data, p, n))
    return kc[i].s;
  return NULL;
}

vh_str_t *vhl__key_str(const char *p, size_t n) {
  vh_str_t *s = vhl__key_cached(p, n);
  if (s != NULL) {
    vh_str_retain(s);
    return s;
  }
  s = vh_str_new(p, n);
  if (s == NULL || n > KC_MAXLEN) return s;
  size_t i = kc_slot(p);
  vh_str_t *old = kc[i].s;
  vh_str_retain(s);
  kc[i].lp = p;
  kc[i].s = s;
  kc[i].data = vh_str_data(s);
  kc[i].len = n;
  if (old != NULL) vh_str_release(old);
  return s;
}

vh_str_t *vhl__key_admit(const char *p, size_t n) {
  size_t i = kc_slot(p);
  if (n > KC_MAXLEN) return NULL; /* never cached */
  if (kc[i].seen != p) {
    kc[i].seen = p;
    return NULL;
  }
  return vhl__key_str(p, n);
}

void vhl_key_cache_flush(void) {
  for (size_t i = 0; i < (1u << KC_BITS); i++) {
    vh_str_t *s = kc[i].s;
    kc[i].s = NULL;
    kc[i].lp = NULL;
    kc[i].seen = NULL;
    if (s != NULL) vh_str_release(s);
  }
}

const char *vhl__tokey(lua_State *L, int idx, vh_val_t *out) {
  vh_val_t k;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
      if (out != NULL) {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        vh_str_t *str = vhl__key_str(s, n);
        if (str == NULL) vhl__oom(L);
        out->type = VH_TSTR;
        out->u.s = str;
      }
      return NULL;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        k = vh_int((int64_t)lua_tointeger(L, idx));
      } else {
        k = vh_float((double)lua_tonumber(L, idx));
        if (vh_key_norm(&k) != 0) return "NaN";
      }
      break;
    case LUA_TBOOLEAN:
      k = vh_bool(lua_toboolean(L, idx));
      break;
    case LUA_TNIL:
      return "nil";
    default:
      return luaL_typename(L, idx);
  }
  if (out != NULL) *out = k;
  return NULL;
}

/* ---- errors with paths ---- */

#define SHOWN_FRAMES 8 /* deep paths show this many keys at each end */

/* Append the keys of the frames, outermost first; pos counts from the
 * innermost (0), n is the number of frames. */
static void add_frames(luaL_Buffer *b, lua_State *L, const frame_t *f, int pos,
                       int n) {
  if (f == NULL) return;
  add_frames(b, L, f->up, pos + 1, n);
  int from_start = n - 1 - pos;
  if (from_start < SHOWN_FRAMES || pos < SHOWN_FRAMES)
    vhl__add_key_lua(b, L, f->key_idx);
  else if (from_start == SHOWN_FRAMES)
    luaL_addstring(b, "...");
}

/* Push the path of the value at frame f. */
static void push_where(ctx_t *c, const frame_t *f) {
  lua_State *L = c->L;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (c->p != NULL) {
    vhl__add_path(&b, c->p);
    if (c->p_key) vhl__add_key_lua(&b, L, c->p_key);
  } else {
    luaL_addstring(&b, c->what != NULL ? c->what : "value");
  }
  int n = 0;
  for (const frame_t *g = f; g != NULL; g = g->up) n++;
  add_frames(&b, L, f, 0, n);
  luaL_pushresult(&b);
}

static int fail_type(ctx_t *c, const frame_t *f, const char *tname) {
  push_where(c, f);
  return luaL_error(c->L, "cannot store a %s at %s", tname,
                    lua_tostring(c->L, -1));
}

/* ---- Lua -> state ---- */

/* Convert a non-table value at idx; 0, or 1 if it is a table or proxy (not
 * handled here). Raises for functions, userdata, threads. */
static int scalar(ctx_t *c, int idx, const frame_t *f, vh_val_t *out) {
  lua_State *L = c->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      *out = vh_nil();
      return 0;
    case LUA_TBOOLEAN:
      *out = vh_bool(lua_toboolean(L, idx));
      return 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        *out = vh_int((int64_t)lua_tointeger(L, idx));
      else
        *out = vh_float((double)lua_tonumber(L, idx)); /* NaN allowed */
      return 0;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      vh_str_t *str = vh_str_new(s, n);
      if (str == NULL) vhl__oom(L);
      out->type = VH_TSTR;
      out->u.s = str;
      return 0;
    }
    case LUA_TTABLE:
      return 1;
    case LUA_TUSERDATA:
      if (vhl__toproxy(L, idx) != NULL) return 1;
      /* fall through */
    default:
      return fail_type(c, f, luaL_typename(L, idx));
  }
}

static int fail_depth(ctx_t *c, const frame_t *f) {
  push_where(c, f);
  return luaL_error(c->L,
                    "cannot store a table nested deeper than %d levels at %s",
                    VH_MAX_DEPTH, lua_tostring(c->L, -1));
}

/* [new] Deep copy of the proxy at idx (frame f: its place), landing at
 * depth `depth`. */
static vh_tab_t *copy_proxy(ctx_t *c, int idx, const frame_t *f, int depth) {
  vhl_proxy_t *q = vhl__toproxy(c->L, idx);
  vhl__guard_check(c->L, q);
  if (depth > VH_MAX_DEPTH) fail_depth(c, f); /* (max_height 0: no limit) */
  vh_tab_t *t = NULL;
  int rc = vh_tab_deepcopy_max(vhl__resolve(c->L, q), c->edit,
                               VH_MAX_DEPTH - depth + 1, &t);
  if (rc == VH_EDEPTH) fail_depth(c, f);
  if (rc != 0) {
    const char *why;
    if (rc != VH_ENOMEM && vh_trie_fault(&why) != 0) {
      char msg[256];
      snprintf(msg, sizeof msg, "%s", why);
      vh_trie_fault_clear();
      luaL_error(c->L, "state unreadable: %s", msg);
    }
    vhl__oom(c->L);
  }
  return t;
}

/* Store val [stolen] under the Lua key at k_idx in dst (transient). */
static void put(ctx_t *c, vh_tab_t *dst, int k_idx, vh_val_t val) {
  vh_val_t key;
  if (lua_type(c->L, k_idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(c->L, k_idx, &n);
    key.type = VH_TSTR;
    key.u.s = vhl__key_str(s, n);
    if (key.u.s == NULL) {
      vh_val_release(val);
      vhl__oom(c->L);
    }
  } else {
    vhl__tokey(c->L, k_idx, &key); /* validated by the caller */
  }
  vh_tab_t *d2 = dst;
  int rc = vh_tab_set(&d2, key, val, c->edit);
  vh_val_release(key);
  if (d2 != dst) abort(); /* dst was created under c->edit */
  if (rc != 0) vhl__oom(c->L);
}

/* Copy the plain table at t_idx into dst (empty, transient, already owned
 * by its parent or the box). */
static void fill(ctx_t *c, int t_idx, vh_tab_t *dst, const frame_t *f,
                 int depth) {
  lua_State *L = c->L;
  if (depth > VH_MAX_DEPTH) fail_depth(c, f);
  luaL_checkstack(L, 6, "state value nested too deeply");
  lua_pushvalue(L, t_idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, c->seen);
  lua_pushnil(L);
  while (lua_next(L, t_idx)) {
    int k_idx = lua_gettop(L) - 1, v_idx = k_idx + 1;
    frame_t fr = {f, k_idx};
    const char *bad = vhl__tokey(L, k_idx, NULL);
    if (bad != NULL) {
      push_where(c, f);
      luaL_error(L, "%s: invalid key (%s)", lua_tostring(L, -1), bad);
    }
    vh_val_t val;
    if (scalar(c, v_idx, &fr, &val) == 0) {
      put(c, dst, k_idx, val);
    } else if (lua_type(L, v_idx) == LUA_TUSERDATA) {
      val.type = VH_TTAB;
      val.u.t = copy_proxy(c, v_idx, &fr, depth + 1);
      put(c, dst, k_idx, val);
    } else {
      lua_pushvalue(L, v_idx);
      if (lua_rawget(L, c->seen) != LUA_TNIL) {
        push_where(c, &fr);
        luaL_error(L, "cannot store a cyclic table at %s", lua_tostring(L, -1));
      }
      lua_pop(L, 1);
      vh_tab_t *child = vh_tab_new(c->edit);
      if (child == NULL) vhl__oom(L);
      val.type = VH_TTAB;
      val.u.t = child;
      put(c, dst, k_idx, val); /* dst owns child; still transient */
      fill(c, v_idx, child, &fr, depth + 1);
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, t_idx);
  lua_pushnil(L);
  lua_rawset(L, c->seen);
}

void vhl__tovalue(lua_State *L, int idx, vhl_proxy_t *p, int key_idx,
                  const char *what, uint64_t edit, vh_val_t *out) {
  ctx_t c = {L, p, key_idx, what, edit, 0, p != NULL ? (int)p->depth + 1 : 1};
  idx = lua_absindex(L, idx);
  if (scalar(&c, idx, NULL, out) == 0) return;
  if (c.base > VH_MAX_DEPTH) fail_depth(&c, NULL); /* an old, deeper state */
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    out->type = VH_TTAB;
    out->u.t = copy_proxy(&c, idx, NULL, c.base);
    return;
  }
  vhl_box_t *box = vhl__box_new(L);
  vh_tab_t *root = vh_tab_new(edit);
  if (root == NULL) vhl__oom(L);
  box->v.type = VH_TTAB;
  box->v.u.t = root;
  lua_newtable(L);
  c.seen = lua_gettop(L);
  fill(&c, idx, root, NULL, c.base);
  *out = box->v;
  box->v = vh_nil();
  lua_pop(L, 2);
}

void vhl_tovalue(lua_State *L, int idx, const char *what, vh_val_t *out) {
  vhl__tovalue(L, idx, NULL, 0, what, vh_edit_new(), out);
}

/* ---- state -> Lua ---- */

/* Iterative (an old store may hold a state deeper than the limit, and a
 * vh_iter_t per level on the C stack would not fit 20000 levels): a heap
 * stack of cursors, kept in a userdata so that a raise frees it; the Lua
 * stack holds each open table with the key it is filled under. */
typedef struct pframe {
  vh_iter_t it; /* cursor over the table at this level */
} pframe_t;

static void push_table(lua_State *L, const vh_tab_t *t) {
  int64_t n = vh_tab_len(t);
  size_t count = vh_tab_count(t);
  int narr = n > 0 && n < (1 << 30) ? (int)n : 0;
  int nrec = count > (size_t)narr && count - narr < (1u << 30)
                 ? (int)(count - (size_t)narr)
                 : 0;
  lua_createtable(L, narr, nrec);
}

void vhl_pushvalue(lua_State *L, vh_val_t v) {
  if (v.type != VH_TTAB) {
    vhl__push_scalar(L, v);
    return;
  }
  luaL_checkstack(L, 4, "state value nested too deeply");
  /* The cursors: a plain userdata grown by doubling (old ones are left to
   * the collector). */
  size_t cap = 16, n = 0;
  pframe_t *st = (pframe_t *)lua_newuserdatauv(L, cap * sizeof *st, 0);
  int st_idx = lua_gettop(L);
  push_table(L, v.u.t);
  vh_iter_init(&st[n++].it, v.u.t);
  while (n > 0) {
    vh_val_t k, e;
    if (!vh_iter_next(&st[n - 1].it, &k, &e)) {
      if (--n == 0) break;
      lua_rawset(L, -3); /* parent[key] = this table */
      continue;
    }
    vhl__push_scalar(L, k);
    if (e.type != VH_TTAB) {
      vhl__push_scalar(L, e);
      lua_rawset(L, -3);
      continue;
    }
    luaL_checkstack(L, 4, "state value nested too deeply");
    if (n == cap) {
      pframe_t *ns = (pframe_t *)lua_newuserdatauv(L, 2 * cap * sizeof *ns, 0);
      memcpy(ns, st, n * sizeof *st);
      lua_replace(L, st_idx);
      st = ns;
      cap *= 2;
    }
    push_table(L, e.u.t);
    vh_iter_init(&st[n++].it, e.u.t);
  }
  /* stack: ... cursors, the table */
  lua_remove(L, st_idx);
}
