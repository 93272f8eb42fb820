/*
 * proxy.c - the state proxy userdata ("ved.proxy").
 *
 * A proxy stands for one table path of one state (state, state.users,
 * state.users[7], ...) and is a live view of that path in the state's
 * current version. Layout and lifetimes: vhl_int.h.
 *
 * HOW IT WORKS
 *  - Resolution. A proxy caches the node at its path with the state's epoch
 *    (vhl__resolve); while the epoch is unchanged the cached pointer is the
 *    node at the path. Otherwise the parent is resolved and the key looked
 *    up; a path that no longer holds a table raises "<path> is no longer a
 *    table".
 *  - Reads (__index) take the fast paths of the trie (string and integer
 *    keys) and allocate nothing for scalar results; a table value comes
 *    back as the child proxy, which the parent's child cache (uv2, weak
 *    values) keeps unique per key while it lives.
 *  - Writes (__newindex) need an open transaction. The proxy's node is made
 *    transient first (vhl__writable): if it was not created under the
 *    transaction's edit token, the parent is made transient, the node is
 *    cloned with the token (O(1), shares everything) and stored in the
 *    parent, and the epoch is bumped. A transient node is then mutated in
 *    place by vh_tab_set, so its pointer and every cached resolution stay
 *    valid; the epoch is bumped again only when a table value is stored or
 *    replaced (a node some proxy may have cached goes away).
 *  - The read cache (READ CACHE below) answers a repeated read with a
 *    short string key (`t.count`, `u.name`) from the proxy itself: no key
 *    interning, no trie lookup, no string made for a string value.
 *  - pairs pins the node it walks (a retained reference plus a cursor in a
 *    "ved.pin" userdata with __gc and __close), so the loop sees the table
 *    as it was when it started. A pinned node must never be mutated in
 *    place again, so if it is transient the transaction switches to a fresh
 *    token first (vhl__pin_prepare).
 *  - The guard (vhl_guard) is one process-wide pointer: the host runs one
 *    lua_State. Every entry point compares it with the proxy's domain.
 *
 * Reads with a nil or NaN key return nil, as in Lua; writes with them raise
 * "<path>: invalid key (nil)". Reads with a key of a type that cannot be a
 * state key (a table, a function) return nil; writes raise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhl_int.h"

vhl_state_t *vhl__guard_st = NULL;
int vhl__guard_strict = 0;

#define PIN_MT VHL_PIN_MT
#define WEAK_MT "ved.weakv"
#define MAX_KEY_SHOWN 48 /* longer string keys are cut in messages */

/* A pinned node and a cursor over it (pairs). */
typedef struct pin {
  vh_tab_t *t;  /* [owned] the walked node; NULL once finished */
  vh_iter_t it; /* cursor over t */
} pin_t;

/* ---- paths for messages ---- */

static int is_keyword(const char *s, size_t n) {
  static const char *const kw[] = {
      "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
      "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
      "repeat",   "return", "then", "true", "until",  "while", NULL};
  for (int i = 0; kw[i]; i++)
    if (strlen(kw[i]) == n && memcmp(kw[i], s, n) == 0) return 1;
  return 0;
}

static int is_ident(const char *s, size_t n) {
  if (n == 0 || n > MAX_KEY_SHOWN) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return 0;
  }
  return !is_keyword(s, n);
}

static void add_str_key(luaL_Buffer *b, const char *s, size_t n) {
  if (is_ident(s, n)) {
    luaL_addchar(b, '.');
    luaL_addlstring(b, s, n);
    return;
  }
  luaL_addstring(b, "[\"");
  size_t shown = n > MAX_KEY_SHOWN ? MAX_KEY_SHOWN : n;
  for (size_t i = 0; i < shown; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      luaL_addchar(b, '\\');
      luaL_addchar(b, (char)c);
    } else if (c < 32 || c == 127) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\%u", (unsigned)c);
      luaL_addstring(b, esc);
    } else {
      luaL_addchar(b, (char)c);
    }
  }
  if (shown < n) luaL_addstring(b, "...");
  luaL_addstring(b, "\"]");
}

static void add_num_key(luaL_Buffer *b, int isint, int64_t i, double f) {
  char tmp[64];
  if (isint)
    snprintf(tmp, sizeof tmp, "[%lld]", (long long)i);
  else
    snprintf(tmp, sizeof tmp, "[%.14g]", f);
  luaL_addstring(b, tmp);
}

void vhl__add_key_val(luaL_Buffer *b, vh_val_t k) {
  switch (k.type) {
    case VH_TSTR:
      add_str_key(b, vh_str_data(k.u.s), vh_str_len(k.u.s));
      break;
    case VH_TINT:
      add_num_key(b, 1, k.u.i, 0);
      break;
    case VH_TFLOAT:
      add_num_key(b, 0, 0, k.u.f);
      break;
    case VH_TBOOL:
      luaL_addstring(b, k.u.b ? "[true]" : "[false]");
      break;
    default:
      luaL_addstring(b, "[?]");
      break;
  }
}

void vhl__add_key_lua(luaL_Buffer *b, lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      add_str_key(b, s, n);
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        add_num_key(b, 1, (int64_t)lua_tointeger(L, idx), 0);
      else
        add_num_key(b, 0, 0, (double)lua_tonumber(L, idx));
      break;
    case LUA_TBOOLEAN:
      luaL_addstring(b, lua_toboolean(L, idx) ? "[true]" : "[false]");
      break;
    default:
      luaL_addchar(b, '[');
      luaL_addstring(b, luaL_typename(L, idx));
      luaL_addchar(b, ']');
      break;
  }
}

/* The ancestor of p d levels up (d = 0: p). */
static vhl_proxy_t *up(vhl_proxy_t *p, uint32_t d) {
  while (d-- > 0) p = p->parent;
  return p;
}

/* Iterative (a path may be as deep as the state, and deeper in a store
 * written by an older vedhost): a long path shows its first and last
 * SHOWN_KEYS keys around "...". Each shown key is found by walking up from
 * p: O(SHOWN_KEYS * depth), no allocation (b sits on the Lua stack). */
#define SHOWN_KEYS 8
void vhl__add_path(luaL_Buffer *b, vhl_proxy_t *p) {
  uint32_t n = 0; /* keys on the path */
  for (vhl_proxy_t *q = p; q->parent != NULL; q = q->parent) n++;
  luaL_addstring(b, up(p, n)->st->name);
  for (uint32_t i = 0; i < n; i++) { /* i-th key from the top */
    if (i == SHOWN_KEYS && n > 2 * SHOWN_KEYS) {
      luaL_addstring(b, "...");
      i = n - SHOWN_KEYS - 1;
      continue;
    }
    vhl__add_key_val(b, up(p, n - 1 - i)->key);
  }
}

void vhl__push_path(lua_State *L, vhl_proxy_t *p) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  vhl__add_path(&b, p);
  luaL_pushresult(&b);
}

/* Push "<path of p>[key at key_idx]" (key_idx 0: just the path). */
static void push_path_key(lua_State *L, vhl_proxy_t *p, int key_idx) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  vhl__add_path(&b, p);
  if (key_idx) vhl__add_key_lua(&b, L, key_idx);
  luaL_pushresult(&b);
}

/* ---- the guard ---- */

void vhl__guard_fail(lua_State *L, vhl_proxy_t *p) {
  vhl__push_path(L, p);
  if (vhl__guard_st != NULL)
    luaL_error(L, "%s belongs to domain %s; use ctx:send to reach it",
               lua_tostring(L, -1), p->st->dom->name);
  luaL_error(L, "%s: state is only usable inside a handler of its domain",
             lua_tostring(L, -1));
}

vhl_state_t *vhl_guard(lua_State *L, vhl_state_t *st) {
  (void)L;
  vhl_state_t *old = vhl__guard_st;
  vhl__guard_st = st;
  return old;
}

void vhl_guard_strict(lua_State *L, int on) {
  (void)L;
  vhl__guard_strict = on != 0;
}

/* ---- lookup ---- */

vhl_proxy_t *vhl__toproxy(lua_State *L, int idx) {
  vhl_proxy_t *p = luaL_testudata(L, idx, VHL_PROXY_MT);
  return p != NULL && p->magic == VHL_PROXY_MAGIC ? p : NULL;
}

int vhl_isproxy(lua_State *L, int idx) {
  return vhl__toproxy(L, idx) != NULL;
}

vhl_proxy_t *vhl__checkproxy(lua_State *L, int idx) {
  vhl_proxy_t *p = vhl__toproxy(L, idx);
  if (p == NULL) luaL_typeerror(L, idx, "state table");
  vhl__guard_check(L, p);
  return p;
}

/* The proxy that a metamethod of ours was called with. The metatable is
 * protected (__metatable), so only our userdata reach here; the magic check
 * costs one compare. */
static inline vhl_proxy_t *self(lua_State *L) {
  vhl_proxy_t *p = (vhl_proxy_t *)lua_touserdata(L, 1);
  if (VHL_UNLIKELY(p == NULL || p->magic != VHL_PROXY_MAGIC))
    luaL_typeerror(L, 1, "ved.proxy");
  vhl__guard_check(L, p);
  return p;
}

/* A read that came back nil / 0 may mean "unreadable": a stored node
 * failed to load (vh_trie.h FAULTS). Raise then, naming the node, so the
 * handler fails and is rolled back instead of seeing an emptied state. */
static VHL_NOINLINE void fault_check(lua_State *L) {
  const char *why;
  if (VHL_LIKELY(vh_trie_fault(&why) == 0)) return;
  char msg[256];
  snprintf(msg, sizeof msg, "%s", why);
  vh_trie_fault_clear();
  luaL_error(L, "state unreadable: %s", msg);
}

/* Scratch room for n proxy pointers: `small` (SMALL_CHAIN entries) when
 * it fits, else a userdata pushed on L (*pushed = 1; the caller pops it).
 * Paths are as deep as the state, so walks along them must not recurse. */
#define SMALL_CHAIN 32
static vhl_proxy_t **chain_room(lua_State *L, vhl_proxy_t **small, size_t n,
                                int *pushed) {
  *pushed = 0;
  if (n <= SMALL_CHAIN) return small;
  luaL_checkstack(L, 1, "state path too deep");
  *pushed = 1;
  return (vhl_proxy_t **)lua_newuserdatauv(L, n * sizeof(vhl_proxy_t *), 0);
}

/* Iterative: the stale proxies from p up to the nearest current ancestor
 * (or the root) are resolved top down. */
vh_tab_t *vhl__resolve_slow(lua_State *L, vhl_proxy_t *p) {
  vhl_state_t *st = p->st;
  size_t n = 0;
  vhl_proxy_t *q = p;
  for (; q->parent != NULL && q->epoch != st->epoch; q = q->parent) n++;
  if (q->epoch != st->epoch) { /* the root */
    q->tab = st->root;
    q->epoch = st->epoch;
  }
  if (n == 0) return q->tab;
  vhl_proxy_t *small[SMALL_CHAIN];
  int pushed;
  vhl_proxy_t **chain = chain_room(L, small, n, &pushed);
  size_t i = n;
  for (vhl_proxy_t *c = p; c != q; c = c->parent) chain[--i] = c;
  vh_tab_t *t = q->tab;
  for (i = 0; i < n; i++) {
    vhl_proxy_t *c = chain[i];
    vh_val_t v;
    vh_tab_get(t, c->key, &v);
    if (v.type != VH_TTAB) {
      fault_check(L);
      vhl__push_path(L, c);
      luaL_error(L, "%s is no longer a table", lua_tostring(L, -1));
    }
    t = v.u.t;
    c->tab = t;
    c->epoch = st->epoch;
  }
  if (pushed) lua_pop(L, 1);
  return t;
}

/* Make the node of p transient (created under st->edit) and return it.
 * Iterative: first the chain of p and its ancestors whose nodes are not
 * transient is found (bottom up, resolving each: every proxy is resolved
 * at most once, since resolving does not bump the epoch), then each of
 * them is cloned top down and stored in its (now transient) parent. */
static vh_tab_t *make_transient(lua_State *L, vhl_proxy_t *p, vh_tab_t *t) {
  vhl_state_t *st = p->st;
  if (vh_tab_edit(t) == st->edit) return t;
  size_t n = 1;
  vhl_proxy_t *q = p;
  vh_tab_t *pt = NULL; /* the transient node above the chain, if any */
  while (q->parent != NULL) {
    pt = vhl__resolve(L, q->parent);
    if (vh_tab_edit(pt) == st->edit) break;
    pt = NULL;
    q = q->parent;
    n++;
  }
  vhl_proxy_t *small[SMALL_CHAIN];
  vh_tab_t *nodes_small[SMALL_CHAIN], **nodes = nodes_small;
  int pushed = 0;
  vhl_proxy_t **chain = small;
  if (n > SMALL_CHAIN) { /* one userdata holds both arrays */
    luaL_checkstack(L, 1, "state path too deep");
    pushed = 1;
    chain = (vhl_proxy_t **)lua_newuserdatauv(
        L, n * (sizeof(vhl_proxy_t *) + sizeof(vh_tab_t *)), 0);
    nodes = (vh_tab_t **)(chain + n);
  }
  /* chain[0] is the topmost; every node is resolved before any clone (a
   * clone bumps the epoch). An ancestor's clone retains the parts that
   * hold the next node down, so the recorded nodes stay valid. */
  size_t i = n;
  for (vhl_proxy_t *c = p; i > 0; c = c->parent) {
    chain[--i] = c;
    nodes[i] = c == p ? t : c->tab; /* resolved by the loop above */
  }
  for (i = 0; i < n; i++) {
    vhl_proxy_t *c = chain[i];
    vh_tab_t *cl = vh_tab_clone(nodes[i], st->edit);
    if (cl == NULL) vhl__oom(L);
    if (c->parent == NULL) {
      /* The base (or a snapshot) keeps the old root alive. */
      vh_tab_release(st->root);
      st->root = cl;
    } else {
      vh_val_t v;
      v.u.t = cl;
      v.type = VH_TTAB;
      vh_tab_t *pt2 = pt;
      if (vh_tab_set(&pt2, c->key, v, st->edit) != 0) vhl__oom(L);
      if (pt2 != pt) abort(); /* a transient node is mutated in place */
    }
    st->epoch++;
    c->tab = cl;
    c->epoch = st->epoch;
    pt = cl;
  }
  if (pushed) lua_pop(L, 1);
  return pt;
}

/* Raise the "cannot write" error for p (+ key at key_idx, may be 0). */
static int write_error(lua_State *L, vhl_proxy_t *p, int key_idx) {
  char why[64];
  push_path_key(L, p, key_idx);
  return luaL_error(L, "cannot write %s: %s", lua_tostring(L, -1),
                    p->st->readonly ? vhl__readonly_why(p->st, why, sizeof why)
                                    : "outside a transaction");
}

static vh_tab_t *writable(lua_State *L, vhl_proxy_t *p, int key_idx) {
  vhl_state_t *st = p->st;
  if (VHL_UNLIKELY(st->edit == 0)) write_error(L, p, key_idx);
  vh_tab_t *t = vhl__resolve(L, p);
  if (VHL_LIKELY(vh_tab_edit(t) == st->edit)) return t;
  return make_transient(L, p, t);
}

/* For callers that change the node as they please (compat.c: insert,
 * remove, sort): the write cache's slots may move. */
vh_tab_t *vhl__writable(lua_State *L, vhl_proxy_t *p) {
  vh_tab_t *t = writable(L, p, 0);
  p->wmask = 0;
  p->len_epoch = 0;
  return t;
}

/* ---- pushing values ---- */

void vhl__push_scalar(lua_State *L, vh_val_t v) {
  switch (v.type) {
    case VH_TBOOL:
      lua_pushboolean(L, v.u.b);
      break;
    case VH_TINT:
      lua_pushinteger(L, (lua_Integer)v.u.i);
      break;
    case VH_TFLOAT:
      lua_pushnumber(L, (lua_Number)v.u.f);
      break;
    case VH_TSTR:
      lua_pushlstring(L, vh_str_data(v.u.s), vh_str_len(v.u.s));
      break;
    default:
      lua_pushnil(L);
      break;
  }
}

static void push_cache(lua_State *L, int p_idx) {
  if (lua_getiuservalue(L, p_idx, 2) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 2);
  luaL_setmetatable(L, WEAK_MT);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, p_idx, 2);
}

/* A cheap fingerprint of a string key: length and end bytes. */
static inline uint32_t key_fp(const char *s, size_t n) {
  const unsigned char *d = (const unsigned char *)s;
  return n == 0 ? 0 : (uint32_t)(n * 7 + d[0] * 3u + d[n - 1]);
}

/* The bit of a key in kid_bits: a cheap filter, so collisions only cost
 * a lookup. A string key's from its fingerprint (the same for the stored
 * key and for the Lua string of a write), an integer's from its
 * low bits; floats and booleans share one. */
static inline uint64_t kid_bit_bytes(const char *s, size_t n) {
  return 1ull << (key_fp(s, n) & 63);
}

static inline uint64_t kid_bit(vh_val_t k) {
  switch (k.type) {
    case VH_TSTR:
      return kid_bit_bytes(vh_str_data(k.u.s), vh_str_len(k.u.s));
    case VH_TINT:
      return 1ull << ((uint64_t)k.u.i & 63);
    default:
      return 1ull << 63;
  }
}

void vhl__push_child(lua_State *L, int p_idx, vhl_proxy_t *p, int key_idx,
                     vh_tab_t *tab) {
  vhl_state_t *st = p->st;
  push_cache(L, p_idx);
  int cache = lua_gettop(L);
  lua_pushvalue(L, key_idx);
  if (lua_rawget(L, cache) == LUA_TUSERDATA) {
    vhl_proxy_t *c = (vhl_proxy_t *)lua_touserdata(L, -1);
    if (tab != NULL && c->epoch != st->epoch) {
      c->tab = tab;
      c->epoch = st->epoch;
    }
    lua_remove(L, cache);
    return;
  }
  lua_pop(L, 1);
  vhl_proxy_t *c =
      (vhl_proxy_t *)lua_newuserdatauv(L, sizeof *c, VHL_PROXY_NUV);
  c->magic = 0; /* not usable until the key is set */
  memset(c->rc, 0, sizeof c->rc);
  c->st = st;
  c->parent = p;
  c->tab = tab;
  c->epoch = tab != NULL ? st->epoch : 0;
  c->key = vh_nil();
  c->live_kids = 0;
  c->kid_bits = 0;
  c->wmask = 0;
  c->len_epoch = 0;
  c->depth = p->depth + 1;
  luaL_setmetatable(L, VHL_PROXY_MT);
  lua_pushvalue(L, p_idx);
  lua_setiuservalue(L, -2, 1);
  if (vhl__tokey(L, key_idx, &c->key) != NULL)
    luaL_error(L, "bad state key"); /* callers pass valid keys only */
  c->magic = VHL_PROXY_MAGIC;
  p->live_kids++; /* undone by the child's __gc */
  p->kid_bits |= kid_bit(c->key);
  lua_pushvalue(L, key_idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, cache);
  lua_remove(L, cache);
}

void vhl__push_read(lua_State *L, int p_idx, vhl_proxy_t *p, int key_idx,
                    vh_val_t v) {
  if (v.type == VH_TTAB)
    vhl__push_child(L, p_idx, p, key_idx, v.u.t);
  else
    vhl__push_scalar(L, v);
}

/* ---- READ CACHE ----
 *
 * A proxy keeps, in VHL_RC_SLOTS slots picked by the address of the key
 * string, the last values read with short string keys (vhl_rc_t). The key
 * string (and a string value, or a child proxy) sits in the proxy's user
 * values, so the key cannot be collected and its address reused while the
 * slot names it. The address is lua_topointer's: one call, which also
 * tells a collectable key (a string, or a table that is never a state
 * key) from a number, boolean or nil. Why a hit is the current value:
 *  - a scalar or string slot is filled with the proxy resolved at epoch E
 *    and is used only while st->epoch == E. Between bumps the only change
 *    to the node of a path is a write through that path's proxy (the same
 *    path gives the same proxy while it lives, and every other change of
 *    the state bumps the epoch: commit, rollback, set_root, clones, tables
 *    stored or replaced, shifts), and proxy_set updates or empties the
 *    slot of its proxy with that key (rc_wrote). Reload, restart, rollback
 *    and at(V) all come through vhl_state_set_root or the transaction
 *    functions, which bump the epoch.
 *  - a child slot holds the child proxy, used while its own resolution is
 *    current (c->epoch == st->epoch): then its path holds a table, which
 *    is what the read must return (the same proxy, as vhl__push_child).
 *    Integer keys use the same rule through the child cache (proxy_index).
 * A valid slot also means the proxy's own path was resolved at the current
 * epoch, so a hit never skips a "no longer a table" error. The guard is
 * checked before the cache (self).
 *
 * ---- WRITE CACHE ----
 *
 * A slot also remembers where its key's value sits in the proxy's node
 * (ws, from vh_tab_set_slot after a write that replaced it in place), so
 * that the next write of an integer, float or boolean over an integer,
 * float or boolean (`t.count = i`) stores it there: no resolution, key
 * conversion, hash or trie walk. ws is used only while the node and every
 * trie node on the key's path stay exclusive to the transaction and in
 * place: the epoch is the one of the fill (the path's node is the same
 * node), the transaction's edit token is the same (a pin or a snapshot
 * switches it: vhl__pin_prepare), and the proxy's wmask bit is set. Every
 * write to the node through the proxy that is not itself an in-place
 * replacement clears wmask (proxy_set, vhl__writable for compat.c's
 * insert, remove and sort), and a slot given to another key clears its
 * bit (rc_own). Every other change to the node bumps the epoch (above).
 * An armed slot holds an integer, float or boolean: it is armed only by
 * such a write, and any other write of its key through proxy_set disarms
 * it first, so a string's or table's reference is never overwritten. */
#define RC_MAXLEN 40 /* Lua's short strings: interned, one address each */

static inline unsigned rc_slot(const void *ko) {
  return (unsigned)(((uint64_t)(uintptr_t)ko * 0x9E3779B97F4A7C15ull) >> 62) &
         (VHL_RC_SLOTS - 1);
}

/* Push the cached value of slot i for the key at index 2 if the slot is
 * valid (1), else push nothing (0). */
static inline int rc_hit(lua_State *L, vhl_proxy_t *p, unsigned i) {
  vhl_rc_t *r = &p->rc[i];
  uint64_t epoch = p->st->epoch;
  int type = r->type;
  if (type == VH_TTAB) {
    if (r->u.c->epoch != epoch || r->u.c->magic != VHL_PROXY_MAGIC) return 0;
    lua_getiuservalue(L, 1, VHL_RC_UV + 2 * (int)i + 1);
    return 1;
  }
  if (r->epoch != epoch) return 0;
  if (type == VH_TINT) {
    lua_pushinteger(L, (lua_Integer)r->u.i);
  } else if (type == VH_TSTR) {
    lua_getiuservalue(L, 1, VHL_RC_UV + 2 * (int)i + 1);
  } else if (type == VH_TFLOAT) {
    lua_pushnumber(L, (lua_Number)r->u.f);
  } else if (type == VH_TBOOL) {
    lua_pushboolean(L, r->u.b);
  } else {
    return 0; /* VH_TNIL: empty */
  }
  return 1;
}

/* Give slot i of p (at index 1) to the key string ko at k_idx. */
static void rc_take(lua_State *L, vhl_proxy_t *p, unsigned i, int k_idx,
                    const void *ko) {
  vhl_rc_t *r = &p->rc[i];
  lua_pushvalue(L, k_idx);
  lua_setiuservalue(L, 1, VHL_RC_UV + 2 * (int)i);
  r->ko = ko;
  r->type = VH_TNIL;
  p->wmask &= ~(1u << i); /* ws was the old key's */
}

/* Admission: may the key ko (at k_idx) have slot i of p (at index 1)? A
 * slot holding another key read at this epoch is taken over only by a key
 * that missed it twice in a row, so keys used in rotation (more of them
 * than slots) do not pay a fill per access. */
static inline int rc_own(lua_State *L, vhl_proxy_t *p, unsigned i, int k_idx,
                         const void *ko) {
  vhl_rc_t *r = &p->rc[i];
  if (r->ko == ko) return 1;
  if (r->type != VH_TNIL && r->epoch == p->st->epoch && r->cand != ko) {
    r->cand = ko;
    return 0;
  }
  rc_take(L, p, i, k_idx, ko);
  return 1;
}

/* Copies v into r's value when v is an integer, float or boolean (the
 * caller sets the slot's type and epoch); 0 for any other type. */
static inline int rc_scalar(vhl_rc_t *r, vh_val_t v) {
  switch (v.type) {
    case VH_TINT:
      r->u.i = v.u.i;
      return 1;
    case VH_TFLOAT:
      r->u.f = v.u.f;
      return 1;
    case VH_TBOOL:
      r->u.b = v.u.b;
      return 1;
    default:
      return 0;
  }
}

/* Fill slot i of p (at index 1) for the key string ko at index 2 with the
 * value v just read; a string value or a child proxy is on the top of the
 * stack. */
static void rc_fill(lua_State *L, vhl_proxy_t *p, unsigned i, const void *ko,
                    vh_val_t v) {
  vhl_rc_t *r = &p->rc[i];
  int uv = VHL_RC_UV + 2 * (int)i;
  if (!rc_own(L, p, i, 2, ko)) return;
  r->type = VH_TNIL;
  if (!rc_scalar(r, v)) {
    if (v.type != VH_TSTR && v.type != VH_TTAB) return;
    if (v.type == VH_TTAB) r->u.c = (vhl_proxy_t *)lua_touserdata(L, -1);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, 1, uv + 1);
  }
  r->epoch = p->st->epoch;
  r->type = v.type;
}

/* Slot r's key was just written with val (the epoch already bumped if it
 * had to be): keep a scalar value, empty the slot otherwise. */
static inline void rc_wrote(vhl_state_t *st, vhl_rc_t *r, vh_val_t val) {
  if (!rc_scalar(r, val)) {
    r->type = VH_TNIL;
    return;
  }
  r->epoch = st->epoch;
  r->type = val.type;
}

/* ---- metamethods ---- */

/* __index with a key that is a collectable object ko (read cache slot
 * ri), not found in the read cache. */
static VHL_NOINLINE int index_str(lua_State *L, vhl_proxy_t *p, const void *ko,
                                  unsigned ri) {
  size_t n;
  const char *s = lua_tolstring(L, 2, &n); /* not a number: no conversion */
  if (s == NULL) return 0; /* a table, function...: never a key */
  vh_tab_t *t = vhl__resolve(L, p);
  vh_val_t k, v;
  k.u.s = vhl__key_cached(s, n); /* no hashing, maybe no memcmp */
  k.type = VH_TSTR;
  if (k.u.s != NULL)
    vh_tab_get(t, k, &v);
  else
    vh_tab_get_str(t, s, n, &v);
  if (v.type != VH_TTAB) {
    if (v.type == VH_TNIL) {
      fault_check(L);
      lua_pushnil(L);
      return 1;
    }
    vhl__push_scalar(L, v);
  } else {
    lua_settop(L, 2);
    vhl__push_child(L, 1, p, 2, v.u.t);
  }
  if (n <= RC_MAXLEN) rc_fill(L, p, ri, ko, v);
  return 1;
}

/* Push the table v read under the key at 2 of p (at 1): its child proxy.
 * isint: the key is the integer i. cache: the child cache is at 3. */
static VHL_NOINLINE int index_table(lua_State *L, vhl_proxy_t *p, int isint,
                                    lua_Integer i, vh_tab_t *v, int cache) {
  /* Fast path of vhl__push_child: the child is cached. The cache table
   * stays on the stack below the result. */
  if (!cache) {
    cache = lua_getiuservalue(L, 1, 2) == LUA_TTABLE;
    if (!cache) lua_settop(L, 2);
  }
  if (cache) {
    int found;
    if (isint) {
      found = lua_rawgeti(L, 3, i);
    } else {
      lua_pushvalue(L, 2);
      found = lua_rawget(L, 3);
    }
    if (found == LUA_TUSERDATA) {
      vhl_proxy_t *c = (vhl_proxy_t *)lua_touserdata(L, -1);
      c->tab = v;
      c->epoch = p->st->epoch;
      return 1;
    }
  }
  lua_settop(L, 2);
  vhl__push_child(L, 1, p, 2, v);
  return 1;
}

/* __index with a key that is a float, a boolean or nil (not an integer). */
static VHL_NOINLINE int index_other(lua_State *L, vhl_proxy_t *p) {
  vh_tab_t *t = vhl__resolve(L, p);
  vh_val_t v;
  switch (lua_type(L, 2)) {
    case LUA_TNUMBER: {
      vh_val_t k = vh_float((double)lua_tonumber(L, 2));
      if (vh_key_norm(&k) != 0) return 0; /* NaN: nil, as in Lua */
      vh_tab_get(t, k, &v);
      break;
    }
    case LUA_TBOOLEAN:
      vh_tab_get(t, vh_bool(lua_toboolean(L, 2)), &v);
      break;
    default:
      return 0; /* nil, light userdata: never keys of a state */
  }
  if (v.type == VH_TTAB) return index_table(L, p, 0, 0, v.u.t, 0);
  if (v.type == VH_TNIL) fault_check(L);
  vhl__push_scalar(L, v);
  return 1;
}

/* __index with a key that is not a collectable object: a number, a
 * boolean or nil. */
static VHL_NOINLINE int index_key(lua_State *L, vhl_proxy_t *p) {
  int isint;
  lua_Integer i = lua_tointegerx(L, 2, &isint); /* numbers only: no string */
  if (!isint) return index_other(L, p);
  int cache = 0; /* 1: the child cache is at index 3 */
  if ((p->kid_bits & kid_bit(vh_int((int64_t)i))) != 0) {
    /* Maybe a live child proxy's key (kid_bit): a child resolved at this
     * epoch is the answer (READ CACHE), without a trie lookup. */
    if (lua_getiuservalue(L, 1, 2) == LUA_TTABLE) {
      cache = 1;
      if (lua_rawgeti(L, 3, i) == LUA_TUSERDATA) {
        vhl_proxy_t *c = (vhl_proxy_t *)lua_touserdata(L, 4);
        if (c->epoch == p->st->epoch) return 1;
      }
    }
    lua_settop(L, 2 + cache);
  }
  vh_val_t v;
  vh_tab_get_int(vhl__resolve(L, p), (int64_t)i, &v);
  switch (v.type) {
    case VH_TINT:
      lua_pushinteger(L, (lua_Integer)v.u.i);
      return 1;
    case VH_TTAB:
      return index_table(L, p, 1, i, v.u.t, cache);
    case VH_TNIL:
      fault_check(L);
      lua_pushnil(L);
      return 1;
    default:
      vhl__push_scalar(L, v);
      return 1;
  }
}

static int proxy_index(lua_State *L) {
  vhl_proxy_t *p = self(L);
  const void *ko = lua_topointer(L, 2);
  if (ko == NULL) return index_key(L, p);
  /* A string (or a table, function...: never a key): the READ CACHE. */
  unsigned ri = rc_slot(ko);
  if (p->rc[ri].ko == ko && rc_hit(L, p, ri)) return 1;
  return index_str(L, p, ko, ri);
}

/* A value the write cache may store over another: it holds no reference
 * (an integer, float or boolean). */
static inline int plain_scalar(int type) {
  return (unsigned)(type - VH_TBOOL) <= (unsigned)(VH_TFLOAT - VH_TBOOL);
}

/* Store the value at v_idx under the key at k_idx of proxy p. Shared by
 * __newindex and the compat functions. p_idx: p's stack index if it is 1
 * (the write cache may then be filled), else 0; ko: the key's
 * lua_topointer, or NULL (then found here if needed). */
static int proxy_set(lua_State *L, vhl_proxy_t *p, int p_idx, int k_idx,
                     int v_idx, const void *ko) {
  vhl_state_t *st = p->st;
  vh_tab_t *t = writable(L, p, k_idx);
  vh_val_t key, val, old;
  size_t n = 0;
  const char *s = NULL;
  int kstr;
  if (ko != NULL) {                  /* collectable: a string, or a bad key */
    s = lua_tolstring(L, k_idx, &n); /* not a number: no conversion */
    kstr = s != NULL;
  } else {
    kstr = lua_type(L, k_idx) == LUA_TSTRING;
    if (kstr) s = lua_tolstring(L, k_idx, &n);
  }
  if (!kstr) { /* scalar keys need no allocation */
    const char *bad = vhl__tokey(L, k_idx, &key);
    if (bad != NULL) {
      push_path_key(L, p, 0);
      luaL_error(L, "%s: invalid key (%s)", lua_tostring(L, -1), bad);
    }
  }
  switch (lua_type(L, v_idx)) {
    case LUA_TNUMBER: {
      if (lua_isinteger(L, v_idx)) /* not tointegerx: 2.0 stays a float */
        val = vh_int((int64_t)lua_tointeger(L, v_idx));
      else
        val = vh_float((double)lua_tonumber(L, v_idx)); /* NaN allowed */
      break;
    }
    case LUA_TBOOLEAN:
      val = vh_bool(lua_toboolean(L, v_idx));
      break;
    case LUA_TNIL:
      val = vh_nil();
      break;
    default: /* strings, tables, and the errors */
      vhl__tovalue(L, v_idx, p, k_idx, NULL, st->edit, &val);
      break;
  }
  /* From here C holds val: nothing may raise before it is handed over. */
  int kown = !kstr; /* key holds a reference of ours */
  int kbytes = 0;   /* no key string: write by the bytes s, n */
  if (kstr) {
    key.type = VH_TSTR;
    key.u.s = vhl__key_cached(s, n); /* borrowed: vh_tab_set borrows it */
    if (key.u.s == NULL) {           /* cached at its second miss (convert.c) */
      key.u.s = vhl__key_admit(s, n);
      kown = key.u.s != NULL;
      kbytes = !kown;
    }
  }
  /* A child proxy may cache the node being replaced: only a live child
   * proxy of this key can (its descendants keep it alive). */
  int bump = val.type == VH_TTAB;
  if (!bump && p->kid_bits != 0 &&
      (p->kid_bits & (kstr ? kid_bit_bytes(s, n) : kid_bit(key))) != 0) {
    if (kbytes)
      vh_tab_get_str(t, s, n, &old);
    else
      vh_tab_get(t, key, &old);
    bump = old.type == VH_TTAB;
  }
  vh_tab_t *t2 = t;
  vh_val_t *ws = NULL;
  vh_val_t **wsp = kstr && n <= RC_MAXLEN ? &ws : NULL;
  int rc = kbytes ? vh_tab_set_str_slot(&t2, s, n, val, st->edit, wsp)
                  : vh_tab_set_slot(&t2, key, val, st->edit, wsp);
  /* val stolen either way */
  if (kown) vh_val_release(key);
  if (t2 != t) abort(); /* a transient node is mutated in place */
  if (bump) st->epoch++;
  st->writes++;
  if (ws == NULL) { /* the node's slots may have moved, its # changed */
    p->wmask = 0;
    p->len_epoch = 0;
  }
  if (kstr && n <= RC_MAXLEN) {
    if (ko == NULL) ko = lua_topointer(L, k_idx);
    unsigned i = rc_slot(ko);
    vhl_rc_t *r = &p->rc[i];
    if (r->ko == ko) p->wmask &= ~(1u << i); /* the slot may hold val */
    if (ws != NULL && p_idx == 1 && plain_scalar(val.type) &&
        rc_own(L, p, i, k_idx, ko)) {
      r->ws = ws;
      r->wepoch = st->epoch;
      r->wedit = st->edit;
      p->wmask |= 1u << i;
    }
    if (r->ko == ko) rc_wrote(st, r, rc == 0 ? val : vh_nil());
  }
  if (rc != 0) {
    fault_check(L);
    vhl__oom(L);
  }
  return 0;
}

/* __newindex from the WRITE CACHE, if the key at 2 has a valid slot and
 * the value at 3 is an integer, float or boolean (1); else 0, with *ko =
 * the key's lua_topointer. */
static VHL_NOINLINE int write_cached(lua_State *L, vhl_proxy_t *p,
                                     const void **ko) {
  const void *k = *ko = lua_topointer(L, 2);
  if (k == NULL) return 0;
  unsigned i = rc_slot(k);
  vhl_rc_t *r = &p->rc[i];
  vhl_state_t *st = p->st;
  if (r->ko != k || (p->wmask >> i & 1u) == 0 || r->wepoch != st->epoch ||
      r->wedit != st->edit)
    return 0;
  vh_val_t *ws = r->ws;
  if (lua_isinteger(L, 3)) {
    ws->u.i = r->u.i = (int64_t)lua_tointeger(L, 3);
    ws->type = VH_TINT;
  } else {
    switch (lua_type(L, 3)) {
      case LUA_TNUMBER:
        ws->u.f = r->u.f = (double)lua_tonumber(L, 3);
        ws->type = VH_TFLOAT;
        break;
      case LUA_TBOOLEAN:
        ws->u.b = r->u.b = lua_toboolean(L, 3);
        ws->type = VH_TBOOL;
        break;
      default:
        return 0;
    }
  }
  r->type = ws->type;
  r->epoch = st->epoch;
  st->writes++;
  return 1;
}

static int proxy_newindex(lua_State *L) {
  vhl_proxy_t *p = self(L);
  const void *ko = NULL;
  if (p->wmask != 0 && write_cached(L, p, &ko)) return 0;
  return proxy_set(L, p, 1, 2, 3, ko); /* 0 */
}

/* # when p->len is not current. */
static VHL_NOINLINE int64_t len_slow(lua_State *L, vhl_proxy_t *p) {
  int64_t n = vh_tab_len(vhl__resolve(L, p));
  if (n == 0) fault_check(L);
  p->len = n;
  p->len_epoch = p->st->epoch;
  return n;
}

/* The node of p changes only through p's writes or with an epoch bump
 * (READ CACHE), and a write that may change # (one that is not an
 * in-place replacement of a string key's value) forgets p->len. */
static int proxy_len(lua_State *L) {
  vhl_proxy_t *p = self(L);
  int64_t n = p->len_epoch == p->st->epoch ? p->len : len_slow(L, p);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int proxy_tostring(lua_State *L) {
  vhl_proxy_t *p = (vhl_proxy_t *)lua_touserdata(L, 1);
  if (p == NULL || p->magic != VHL_PROXY_MAGIC)
    return luaL_typeerror(L, 1, "ved.proxy");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "ved.proxy: ");
  vhl__add_path(&b, p);
  luaL_pushresult(&b);
  return 1;
}

static int proxy_gc(lua_State *L) {
  vhl_proxy_t *p = (vhl_proxy_t *)lua_touserdata(L, 1);
  if (p == NULL) return 0;
  vh_val_t k = p->key;
  /* The parent outlives this call: p keeps it reachable (uv1), so both are
   * finalized in the same cycle at the earliest and freed after it. */
  if (p->magic == VHL_PROXY_MAGIC && p->parent != NULL &&
      --p->parent->live_kids == 0)
    p->parent->kid_bits = 0;
  p->key = vh_nil();
  p->magic = 0;
  vh_val_release(k);
  return 0;
}

/* ---- pairs ---- */

static void pin_release(pin_t *pin) {
  vh_tab_t *t = pin->t;
  pin->t = NULL;
  if (t != NULL) vh_tab_release(t);
}

static int pin_gc(lua_State *L) {
  pin_t *pin = (pin_t *)luaL_checkudata(L, 1, PIN_MT);
  pin_release(pin);
  return 0;
}

/* upvalue 1: the pin; upvalue 2: the proxy walked. */
static int pairs_iter(lua_State *L) {
  pin_t *pin = (pin_t *)lua_touserdata(L, lua_upvalueindex(1));
  vhl_proxy_t *p = (vhl_proxy_t *)lua_touserdata(L, lua_upvalueindex(2));
  vh_val_t k, v;
  if (pin->t == NULL) return 0;
  vhl__guard_check(L, p);
  if (!vh_iter_next(&pin->it, &k, &v)) {
    pin_release(pin);
    fault_check(L);
    lua_pushnil(L);
    return 1;
  }
  vhl__push_scalar(L, k);
  if (v.type != VH_TTAB) {
    vhl__push_scalar(L, v);
    return 2;
  }
  /* The child proxy is a live view: v.u.t is its current node only if the
   * pinned node is still the node at p's path. */
  vh_tab_t *cur = p->epoch == p->st->epoch ? p->tab : NULL;
  int key_idx = lua_gettop(L);
  vhl__push_child(L, lua_upvalueindex(2), p, key_idx,
                  cur == pin->t ? v.u.t : NULL);
  return 2;
}

int vhl__pairs(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  vhl_proxy_t *p = vhl__checkproxy(L, idx);
  vh_tab_t *t = vhl__resolve(L, p);
  pin_t *pin = (pin_t *)lua_newuserdatauv(L, sizeof *pin, 0);
  pin->t = NULL;
  luaL_setmetatable(L, PIN_MT);
  vhl__pin_prepare(p->st, t);
  vh_tab_retain(t);
  pin->t = t;
  vh_iter_init(&pin->it, t);
  lua_pushvalue(L, -1);
  lua_pushvalue(L, idx);
  lua_pushcclosure(L, pairs_iter, 2); /* pin, iter */
  lua_insert(L, -2);                  /* iter, pin */
  lua_pushnil(L);
  lua_pushnil(L);
  lua_rotate(L, -3, -1); /* iter, nil, nil, pin */
  return 4;
}

static int proxy_pairs(lua_State *L) {
  self(L);
  return vhl__pairs(L, 1);
}

/* ---- setup ---- */

/* Hottest first (vhl__proxy_init). */
static const luaL_Reg proxy_meta[] = {{"__index", proxy_index},
                                      {"__len", proxy_len},
                                      {"__newindex", proxy_newindex},
                                      {"__pairs", proxy_pairs},
                                      {"__tostring", proxy_tostring},
                                      {"__gc", proxy_gc},
                                      {NULL, NULL}};

/* __gc of the registry sentinel: the Lua state is closing (or the sentinel
 * was dropped): release the cached keys before the module may be unloaded. */
static int keycache_gc(lua_State *L) {
  (void)L;
  vhl_key_cache_flush();
  return 0;
}

void vhl__proxy_init(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, "ved.keycache") == LUA_TNIL) {
    lua_newuserdatauv(L, 1, 0);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, keycache_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "ved.keycache");
  }
  lua_pop(L, 1);
  /* luaL_newmetatable's table, built roomy and hottest entries first: Lua
   * looks __index / __len / __newindex up in it on every access. A key
   * inserted first sits at the head of its chain whatever the string hash
   * seed of the run, and in 64 slots the next ones almost always do too
   * (in the 8 slots luaL_newmetatable ends with, an access took 0-3 chain
   * steps more, varying from run to run). */
  if (lua_getfield(L, LUA_REGISTRYINDEX, VHL_PROXY_MT) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 64);
    luaL_setfuncs(L, proxy_meta, 0);
    lua_pushliteral(L, VHL_PROXY_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, VHL_PROXY_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, VHL_PROXY_MT);
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, PIN_MT)) {
    lua_pushcfunction(L, pin_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, pin_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, WEAK_MT)) {
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
  }
  lua_pop(L, 1);
}

void vhl__proxy_new_root(lua_State *L, vhl_state_t *st, int st_idx) {
  st_idx = lua_absindex(L, st_idx);
  vhl__proxy_init(L);
  vhl_proxy_t *p =
      (vhl_proxy_t *)lua_newuserdatauv(L, sizeof *p, VHL_PROXY_NUV);
  p->magic = VHL_PROXY_MAGIC;
  memset(p->rc, 0, sizeof p->rc);
  p->st = st;
  p->parent = NULL;
  p->tab = NULL;
  p->epoch = 0; /* st->epoch starts at 1: resolve on first use */
  p->key = vh_nil();
  p->live_kids = 0;
  p->kid_bits = 0;
  p->wmask = 0;
  p->len_epoch = 0;
  p->depth = 1;
  luaL_setmetatable(L, VHL_PROXY_MT);
  lua_pushvalue(L, st_idx);
  lua_setiuservalue(L, -2, 1);
}

void vhl__proxy_set(lua_State *L, vhl_proxy_t *p, int k_idx, int v_idx) {
  proxy_set(L, p, 0, k_idx, v_idx, NULL);
}
