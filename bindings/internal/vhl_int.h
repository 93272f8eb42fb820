/*
 * vhl_int.h - private layouts and cross-file internals of bindings/.
 *
 * Used only by the .c files of bindings/. The public API is vhl.h.
 *
 * Objects and what keeps them alive (Lua GC references, "uv" = user value):
 *
 *   state userdata ("ved.state")  uv1 = its root proxy (strong: the root
 *     |                            proxy is always the same userdata)
 *     |                            uv2 = the writer state (snapshots only)
 *   root proxy ("ved.proxy")      uv1 = the state userdata
 *     |                            uv2 = child cache (weak values)
 *   child proxy                   uv1 = the parent proxy
 *                                  uv2 = child cache (weak values)
 *   (every proxy)                 uv3.. = read cache keys and values
 *                                  (strong; see vhl_rc_t)
 *
 * A child proxy keeps its parent alive, which keeps the state alive, so a
 * proxy's `st` and `parent` pointers are valid for the proxy's whole life.
 * The child cache maps a Lua key to the child proxy of that key, so the same
 * path gives the same userdata while it lives.
 *
 * Epochs. A proxy caches the table node of its path (`tab`, borrowed) with
 * the state's epoch at the time. st->epoch is bumped whenever a table node
 * that some proxy may have cached stops being the node at its path (clone
 * for write, a table stored or replaced, insert/remove/sort shifting,
 * commit, rollback, set_root). Between bumps no cached node can be freed:
 * every release of a table node that is reachable from the root happens
 * through one of those operations. Reads never bump.
 */
#ifndef VHL_INT_H
#define VHL_INT_H

#include <stdint.h>

#include "lauxlib.h"
#include "lua.h"
#include "vh_limits.h"
#include "vh_trie.h"
#include "vhl.h"

#define VHL_STATE_MAGIC 0x76685354u /* "vhST" */
#define VHL_PROXY_MAGIC 0x76685058u /* "vhPX" */

#define VHL_STATE_MT "ved.state"
#define VHL_PROXY_MT "ved.proxy"
#define VHL_BOX_MT "ved.box"
#define VHL_PIN_MT "ved.pin"

#if defined(__GNUC__)
#define VHL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VHL_LIKELY(x) __builtin_expect(!!(x), 1)
#define VHL_NOINLINE __attribute__((noinline))
#define VHL_HIDDEN __attribute__((visibility("hidden")))
#else
#define VHL_UNLIKELY(x) (x)
#define VHL_LIKELY(x) (x)
#define VHL_NOINLINE
#define VHL_HIDDEN
#endif

/* One domain's state. Lives inside its Lua userdata (freed by Lua); the
 * __gc metamethod releases root and base. Only the loop thread touches it. */
struct vhl_state {
  uint32_t magic;       /* VHL_STATE_MAGIC */
  int readonly;         /* 1 for a snapshot: every write raises */
  uint64_t version;     /* a view of this retained version (the REPL's
                           at(V)): writes raise "version N is read-only";
                           0 = none */
  vh_tab_t *root;       /* current version [owned]; never NULL while alive */
  vh_tab_t *base;       /* root at vhl_tx_begin [owned]; NULL outside a tx */
  uint64_t edit;        /* token of the open transaction; 0 outside one */
  uint64_t epoch;       /* see the header comment; starts at 1, only grows */
  vhl_state_t *dom;     /* the state the guard compares: itself, or the writer
                           for a snapshot (kept alive through uv2) */
  uint64_t writes;      /* state writes committed or in the open tx */
  uint64_t writes_base; /* writes at vhl_tx_begin (a rollback restores) */
  char name[];          /* NUL-terminated first path element */
};

/* The read cache of a proxy (proxy.c, READ CACHE): the last values read
 * with a few short string keys. Slot i's key string is the proxy's user
 * value VHL_RC_UV + 2i, which keeps it alive, so its address `ko` (from
 * lua_topointer: one per string object, and a short string is one object
 * per content) identifies it; a string value or a child proxy is user
 * value VHL_RC_UV + 2i + 1. The slot's write part (proxy.c, WRITE CACHE)
 * points into the proxy's node at the key's value. */
#define VHL_RC_SLOTS 4
#define VHL_RC_UV 3 /* 1: parent or state, 2: child cache */
#define VHL_PROXY_NUV (VHL_RC_UV - 1 + 2 * VHL_RC_SLOTS)
typedef struct vhl_rc {
  const void *ko;   /* the key string (lua_topointer); NULL: never filled */
  const void *cand; /* another key that missed this slot last (compared,
                       never read) */
  uint64_t epoch;   /* scalar and string values: valid iff == st->epoch;
                       child proxies: the epoch of the fill */
  int type;         /* VH_TNIL: empty; VH_TBOOL, VH_TINT, VH_TFLOAT: in u;
                       VH_TSTR: the Lua string in the user value; VH_TTAB: the
                       child proxy u.c in the user value, valid iff
                       u.c->epoch == st->epoch */
  union {
    int b;
    int64_t i;
    double f;
    struct vhl_proxy *c;
  } u;
  vh_val_t *ws; /* the key's value slot in the proxy's node [borrowed]
                   (vh_tab_set_slot), valid iff bit i of the proxy's
                   wmask is set, wepoch == st->epoch and wedit ==
                   st->edit */
  uint64_t wepoch;
  uint64_t wedit;
} vhl_rc_t;

/* A proxy: one table path of one state. Lives inside its Lua userdata. */
typedef struct vhl_proxy {
  uint32_t magic;           /* VHL_PROXY_MAGIC */
  vhl_state_t *st;          /* its state [borrowed; alive through uv1] */
  struct vhl_proxy *parent; /* NULL for the root [borrowed; alive via uv1] */
  vh_tab_t *tab;            /* cached node of the path [borrowed] ... */
  uint64_t epoch;           /* ... valid iff epoch == st->epoch */
  vh_val_t key;             /* key in parent [owned]; nil for the root */
  uint32_t live_kids;       /* child proxies alive (created minus
                               collected); 0 means no proxy can cache a
                               node below this one */
  uint32_t depth;           /* tables on the path: 1 for the root, parent's
                               + 1 (vh_limits.h); set at creation */

  /* A bit per key of a child proxy created since live_kids was last 0
   * (proxy.c kid_bit): no live child has a key whose bit is clear. */
  uint64_t kid_bits;
  /* The read cache (proxy.c READ CACHE). */
  vhl_rc_t rc[VHL_RC_SLOTS];
  /* Bit i: rc[i].ws may be valid (proxy.c WRITE CACHE); cleared by every
   * write to the proxy's node that may move or share its slots. */
  uint32_t wmask;
  /* `#` of the node (proxy_len), valid iff len_epoch == st->epoch; every
   * write through the proxy that may change it sets len_epoch to 0. */
  uint64_t len_epoch;
  int64_t len;
} vhl_proxy_t;

/* A value box: a userdata owning one vh_val_t, released by __gc. Used to
 * hold C-built values across calls that may raise. */
typedef struct vhl_box {
  vh_val_t v; /* [owned] */
} vhl_box_t;

/* ---- proxy.c ---- */

/* The guard (one per process: the host has a single lua_State). Hidden:
 * read directly, not through the GOT, on every proxy access. */
extern VHL_HIDDEN vhl_state_t *vhl__guard_st;
extern VHL_HIDDEN int vhl__guard_strict;

/* Raise the guard error for p if the guard forbids it. Hot path inline. */
void vhl__guard_fail(lua_State *L, vhl_proxy_t *p);
static inline void vhl__guard_check(lua_State *L, vhl_proxy_t *p) {
  if (VHL_UNLIKELY(vhl__guard_st != p->st->dom) &&
      (vhl__guard_st != NULL || vhl__guard_strict))
    vhl__guard_fail(L, p);
}

/* The proxy at idx, or NULL if the value there is not a proxy. */
vhl_proxy_t *vhl__toproxy(lua_State *L, int idx);
/* The proxy at idx (after the guard check), or a type error naming arg. */
vhl_proxy_t *vhl__checkproxy(lua_State *L, int idx);
/* Create the root proxy of the state whose userdata is at st_idx and push
 * it. */
void vhl__proxy_new_root(lua_State *L, vhl_state_t *st, int st_idx);
/* The node at p's path [borrowed], or raise "<path> is no longer a table". */
vh_tab_t *vhl__resolve_slow(lua_State *L, vhl_proxy_t *p);
static inline vh_tab_t *vhl__resolve(lua_State *L, vhl_proxy_t *p) {
  if (VHL_LIKELY(p->epoch == p->st->epoch)) return p->tab;
  return vhl__resolve_slow(L, p);
}
/* Check that p may be written (transaction open, not read-only) and make
 * its node transient; returns it [borrowed]. Raises. */
vh_tab_t *vhl__writable(lua_State *L, vhl_proxy_t *p);
/* Push the child proxy of p (at p_idx) for the Lua key at key_idx, whose
 * current node is tab [borrowed] (or NULL: resolve on first use). */
void vhl__push_child(lua_State *L, int p_idx, vhl_proxy_t *p, int key_idx,
                     vh_tab_t *tab);
/* Store the value at v_idx under the Lua key at k_idx in proxy p, with all
 * the checks of __newindex (transaction, key, value). Raises. */
void vhl__proxy_set(lua_State *L, vhl_proxy_t *p, int k_idx, int v_idx);
/* Push a value read from the table of p (p at p_idx, its Lua key at
 * key_idx): scalars as Lua values, tables as the child proxy. */
void vhl__push_read(lua_State *L, int p_idx, vhl_proxy_t *p, int key_idx,
                    vh_val_t v);
/* Push a scalar value (not a table). */
void vhl__push_scalar(lua_State *L, vh_val_t v);
/* Push the path of p (as used in messages) as a Lua string. */
void vhl__push_path(lua_State *L, vhl_proxy_t *p);
/* Append the path of p to b. */
void vhl__add_path(luaL_Buffer *b, vhl_proxy_t *p);
/* Append `.name` / `[key]` for a key to b: from a vh_val_t, or from the Lua
 * value at idx (absolute index; not touched otherwise). */
void vhl__add_key_val(luaL_Buffer *b, vh_val_t k);
void vhl__add_key_lua(luaL_Buffer *b, lua_State *L, int idx);
/* pairs over p at idx: push the iterator, nil, nil and the closing pin. */
int vhl__pairs(lua_State *L, int idx);
/* Create the proxy/pin metatables (idempotent). */
void vhl__proxy_init(lua_State *L);

/* ---- convert.c ---- */

/* Turn the Lua key at idx into a normalized key in *out [new].
 * Returns 0, or the Lua type name / "NaN" of an invalid key. */
const char *vhl__tokey(lua_State *L, int idx, vh_val_t *out);
/* Convert the value at idx for storing at path `p` + key at key_idx
 * (p may be NULL: then `what` is the path). Tables are built with edit.
 * *out [new]. Raises with the path on values that cannot be stored; holds
 * no C memory when it raises. */
void vhl__tovalue(lua_State *L, int idx, vhl_proxy_t *p, int key_idx,
                  const char *what, uint64_t edit, vh_val_t *out);
/* The key cache (see convert.c). vhl__key_cached: the cached string with
 * the bytes at p [borrowed], or NULL. vhl__key_str: [new] a string with
 * those bytes, from the cache or made (and cached); NULL if out of
 * memory. */
vh_str_t *vhl__key_cached(const char *p, size_t n);
vh_str_t *vhl__key_str(const char *p, size_t n);
/* A write's key that vhl__key_cached missed: [new] the string, made and
 * cached now, if the same Lua string missed at its slot the last time
 * too; else NULL (also out of memory): the caller writes by the bytes
 * (vh_tab_set_str_slot), making no string. */
vh_str_t *vhl__key_admit(const char *p, size_t n);
/* Push a new box userdata holding nil; returns it. */
vhl_box_t *vhl__box_new(lua_State *L);
/* Raise the out-of-memory error. */
int vhl__oom(lua_State *L);

/* ---- state.c ---- */

/* Switch the open transaction to a fresh edit token if t was created under
 * the current one, so that t (about to be pinned) is never mutated again. */
void vhl__pin_prepare(vhl_state_t *st, const vh_tab_t *t);
/* Why st may not be written: "read-only snapshot" or "version N is
 * read-only" (into buf, cap bytes). [borrowed] */
const char *vhl__readonly_why(const vhl_state_t *st, char *buf, size_t cap);
/* The state userdata at idx, or NULL. */
vhl_state_t *vhl__tostate(lua_State *L, int idx);

/* ---- compat.c ---- */

/* Push the proxy-aware table library (a new table). */
void vhl__push_table_lib(lua_State *L);

#endif /* VHL_INT_H */
