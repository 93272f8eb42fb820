/*
 * vhl.h - Lua bindings of the persistent state (public API).
 *
 * A vhl_state_t is one domain's state: the current root table, and, while a
 * transaction is open, the root it started from and the edit token it
 * writes with. Lua code sees the state through proxies: full userdata with
 * the metatable "ved.proxy", one per table path (state, state.users,
 * state.users[7], ...). A proxy is a live view of its path in the state's
 * current version; the same path gives the same proxy while it lives.
 *
 * Rules enforced by the proxies (errors name the path, as `state.a.b`):
 *  - writes only inside a transaction of the proxy's state;
 *  - when a guard state is set (vhl_guard), only proxies of that state may
 *    be used at all (the host sets it to the domain whose handler runs);
 *  - values are nil, booleans, numbers, strings and tables (plain or
 *    proxies); storing a table stores a deep copy; functions, userdata,
 *    threads, NaN/nil keys and cycles raise.
 *
 * The same code is built into the host and into the Lua C module `vedcore`
 * (luaopen_vedcore) that busted specs load from a plain lua5.4.
 */
#ifndef VHL_H
#define VHL_H

#include <stdint.h>

#include "lua.h"
#include "vh_trie.h"

typedef struct vhl_state vhl_state_t;

/* Create a state whose committed root is root [stolen; NULL means an empty
 * table] and push its userdata (metatable "ved.state") on the stack. The
 * state lives while that userdata is reachable. name is copied and used as
 * the first path element in messages ("state" if NULL). Raises on OOM. */
vhl_state_t *vhl_state_new(lua_State *L, vh_tab_t *root, const char *name);
/* Make st read-only for good, as a view of version seq of a domain (the
 * REPL's at(V)): every write through its proxies raises "cannot write
 * PATH: version SEQ is read-only". The root should be a view
 * (vh_tab_stub_view), whose nodes refuse writes on their own too. */
void vhl_state_set_view(vhl_state_t *st, uint64_t seq);
/* The state at index idx, or raise a type error. */
vhl_state_t *vhl_state_check(lua_State *L, int idx);

/* Push the root proxy of st (cached: always the same userdata). */
void vhl_state_push_root(lua_State *L, vhl_state_t *st);

/* Error codes of the bindings (negative, after the trie's VH_E*). */
/* VHL_EBUSY, VHL_EREADONLY: see vh_err.h (the one error space). */

/* Transactions. begin: 0, or VHL_EBUSY if one is already open (VHL_EREADONLY
 * on a snapshot). commit keeps the writes; rollback restores the root from
 * begin. Both end it (and do nothing when none is open). */
int vhl_tx_begin(vhl_state_t *st);
void vhl_tx_commit(vhl_state_t *st);
void vhl_tx_rollback(vhl_state_t *st);
int vhl_tx_open(const vhl_state_t *st);
/* State keys written (sets and removals through the proxies) since the
 * last take, rolled-back writes excluded; resets the count. Outside a
 * transaction (the host calls it at slice end, for the version record). */
uint64_t vhl_state_writes_take(vhl_state_t *st);

/* The current root [borrowed]; vhl_state_set_root replaces it outside a
 * transaction (root [stolen]). */
vh_tab_t *vhl_state_root(const vhl_state_t *st);
void vhl_state_set_root(lua_State *L, vhl_state_t *st, vh_tab_t *root);

/* Guard: while st is set, proxies of any other state raise "belongs to
 * domain X" and, when st is NULL but vhl_guard_strict was set, every proxy
 * raises "outside any handler". Returns the previous guard. */
vhl_state_t *vhl_guard(lua_State *L, vhl_state_t *st);
void vhl_guard_strict(lua_State *L, int on);

/* Value conversion.
 * vhl_tovalue: convert the Lua value at idx to a vh_val_t [new] with state
 * rules (deep copy of plain tables and proxies). `what` names it in errors
 * ("payload", "state.x"). Raises a Lua error on a value that cannot be
 * stored; on return *out owns its references.
 * vhl_pushvalue: push v as a plain Lua value (tables deep-copied into plain
 * Lua tables), for payloads and REPL results. */
void vhl_tovalue(lua_State *L, int idx, const char *what, vh_val_t *out);
void vhl_pushvalue(lua_State *L, vh_val_t v);

/* Drop the process-wide cache of string keys (it holds references to
 * recently written keys, counted in vh_mem_bytes). For exact memory
 * accounting and leak checks; harmless at any time. */
void vhl_key_cache_flush(void);

/* Proxy-aware replacements for the globals `type`, `next`, `pairs`,
 * `ipairs`, `rawlen`, `rawequal` used in domain environments: register
 * them into the table at idx. */
void vhl_open_compat(lua_State *L, int idx);

/* Is the value at idx a proxy? */
int vhl_isproxy(lua_State *L, int idx);

/* Open the module: returns the `vedcore` table (new_state, type, next,
 * pairs, copy, stats, ...). */
int luaopen_vedcore(lua_State *L);

#endif /* VHL_H */
