/*
 * vh_trie.h - persistent tables of Lua-like values (public API).
 *
 * A vh_tab_t is one Lua-like table: an array part (a persistent vector for
 * keys 1..n) plus a hash part (a CHAMP map for every other key). Tables are
 * immutable once published; a new version shares every node it did not
 * change with the old one (path copying). Nodes are reference counted.
 *
 * Edit tokens (Clojure transients). Every node records the token it was
 * created under. A writer holds a token (vh_edit_new()); a write through that
 * token mutates in place every node stamped with it and copies every other
 * node on the path. So a transaction:
 *
 *     base = root; vh_tab_retain(base);          // keep the old version
 *     edit = vh_edit_new();
 *     vh_tab_set(&root, key, val, edit);         // many writes...
 *     commit:   vh_tab_release(base);            // O(1)
 *     rollback: vh_tab_release(root); root = base;
 *
 * Rollback is "drop the new root": the nodes the transaction created are
 * referenced only from it and are freed by the release; the shared nodes get
 * their counts back. A token must not be used again once anything reachable
 * from its nodes has been pinned as a snapshot (retained for reading while
 * the writer goes on): take a fresh token instead, so the pinned nodes are
 * never mutated again.
 *
 * Keys: strings, integers, floats, booleans. A float with an integral value
 * (2.0, -0.0) is the same key as the integer; NaN and nil are not keys.
 * Values: nil (= absent), booleans, integers, floats, strings (binary safe),
 * tables. A table value is owned by exactly one parent slot (the one-parent
 * rule of ARCHITECTURE.md invariant 5): storing a table that already has a
 * parent must store a vh_tab_deepcopy() of it.
 *
 * Ownership conventions in prototypes:
 *   [borrowed]  caller keeps its reference, callee takes none.
 *   [stolen]    the callee takes over the caller's reference.
 *   [new]       the result carries a reference the caller must release.
 * A vh_val_t that holds a string or table "holds a reference" to it.
 *
 * Errors: functions that can fail return int (0 ok, negative VH_E*) and
 * leave every table exactly as it was when they fail (allocation failure
 * included).
 */
#ifndef VH_TRIE_H
#define VH_TRIE_H

#include <stddef.h>
#include <stdint.h>

/* Error codes: see vh_err.h (VH_ECORRUPT is what vh_tab_check returns). */
#include "vh_err.h"

typedef enum vh_type {
  VH_TNIL = 0,
  VH_TBOOL = 1,
  VH_TINT = 2,
  VH_TFLOAT = 3,
  VH_TSTR = 4,
  VH_TTAB = 5
} vh_type_t;

typedef struct vh_str vh_str_t; /* refcounted immutable byte string */
typedef struct vh_tab vh_tab_t; /* persistent table */

/* A value. 16 bytes. `type` says which member is valid. */
typedef struct vh_val {
  union {
    int b;       /* VH_TBOOL: 0 or 1 */
    int64_t i;   /* VH_TINT */
    double f;    /* VH_TFLOAT (never used for keys with integral value) */
    vh_str_t *s; /* VH_TSTR: holds a reference */
    vh_tab_t *t; /* VH_TTAB: holds a reference */
  } u;
  uint8_t type; /* vh_type_t */
  /* Unused by every value handed out. Inside the trie's nodes a short
   * string key keeps its length and last bytes here (an inline key,
   * vh_trie_int.h); a named member rather than padding so that struct
   * copies keep it. */
  uint8_t x[7];
} vh_val_t;

/* ---- constructors for scalar values (no references involved) ---- */
static inline vh_val_t vh_nil(void) {
  vh_val_t v;
  v.u.i = 0;
  v.type = VH_TNIL;
  return v;
}
static inline vh_val_t vh_bool(int b) {
  vh_val_t v;
  v.u.i = 0;
  v.u.b = b != 0;
  v.type = VH_TBOOL;
  return v;
}
static inline vh_val_t vh_int(int64_t i) {
  vh_val_t v;
  v.u.i = i;
  v.type = VH_TINT;
  return v;
}
/* A float; not normalized (use vh_key_norm for keys). */
static inline vh_val_t vh_float(double f) {
  vh_val_t v;
  v.u.f = f;
  v.type = VH_TFLOAT;
  return v;
}

/* ---- allocation accounting and failure injection ---- */

/* Live bytes and blocks allocated by this module (all threads). */
size_t vh_mem_bytes(void);
size_t vh_mem_blocks(void);
/* Live bytes the allocator really spends on them (malloc chunk headers and
 * rounding, or slab slots): what the trie adds to the resident size. */
size_t vh_mem_footprint(void);
/* Fail the n-th allocation from now (1 = the next one); 0 turns it off.
 * For tests: every public function must then return VH_ENOMEM cleanly. */
void vh_mem_fail_after(long n);
/* The node cache (mem.c, NODE CACHE): bytes of free blocks kept for
 * reuse. vh_mem_tick() (the host's slice end) gives malloc back the blocks
 * that were already cached at the tick before and were not reused, and
 * returns their bytes. */
size_t vh_mem_cached(void);
size_t vh_mem_tick(void);

/* ---- strings ---- */

/* [new] A string holding a copy of len bytes at p; NULL if out of memory. */
vh_str_t *vh_str_new(const char *p, size_t len);
void vh_str_retain(vh_str_t *s);
void vh_str_release(vh_str_t *s);           /* aborts on refcount underflow */
const char *vh_str_data(const vh_str_t *s); /* NUL-terminated for convenience */
size_t vh_str_len(const vh_str_t *s);
/* The hash used for string keys of length len (the same as a vh_str's). */
uint32_t vh_hash_bytes(const char *p, size_t len);

/* ---- values ---- */

/* Retain / release whatever reference v holds (no-op for scalars). */
void vh_val_retain(vh_val_t v);
void vh_val_release(vh_val_t v);
/* Turn v into a canonical key in place: integral floats become integers.
 * Returns VH_EKEY for nil, NaN, or a table (tables are not keys). */
int vh_key_norm(vh_val_t *k);
/* Deep equality of two values (tables compared by contents). */
int vh_val_equal(vh_val_t a, vh_val_t b);

/* ---- tables ---- */

/* A fresh, process-unique edit token (never 0). */
uint64_t vh_edit_new(void);

/* [new] An empty table stamped with edit (so the holder of edit may mutate
 * it in place). NULL if out of memory. */
vh_tab_t *vh_tab_new(uint64_t edit);
void vh_tab_retain(vh_tab_t *t);
void vh_tab_release(vh_tab_t *t); /* aborts on refcount underflow */
/* The token t was created under. t may be mutated in place by a writer
 * holding edit iff vh_tab_edit(t) == edit. */
uint64_t vh_tab_edit(const vh_tab_t *t);

/* Read. *out is [borrowed]: valid while the table version lives and is not
 * written; nil when absent. key must be normalized (vh_key_norm). */
void vh_tab_get(const vh_tab_t *t, vh_val_t key, vh_val_t *out);
/* Fast paths for the proxy: the same as vh_tab_get with such a key. */
void vh_tab_get_str(const vh_tab_t *t, const char *k, size_t len,
                    vh_val_t *out);
void vh_tab_get_int(const vh_tab_t *t, int64_t k, vh_val_t *out);

/* Write (set, or delete when val is nil). *t is replaced by a copy unless it
 * was created under edit, in which case it is mutated in place; either way
 * *t is the new version. key [borrowed], normalized; val [stolen] (also on
 * error, where it is released). On error *t and everything reachable from
 * it are unchanged. Integer key n+1 on a table whose array part has n slots
 * appends (moving n+2, n+3... over from the hash part if present). */
int vh_tab_set(vh_tab_t **t, vh_val_t key, vh_val_t val, uint64_t edit);
/* vh_tab_set, and *slot [borrowed]: when the write replaced the value of a
 * key of the hash part in place (*t created under edit and every node on
 * the key's path exclusive to it), that value's slot; else NULL. The slot
 * stays the key's value, and may be overwritten in place with an integer,
 * float or boolean while it holds one, until t's parts change or become
 * shared: any other write to t (set, insert, remove), a clone or retain
 * of t, or edit passing to another token. (The state proxy's write cache,
 * bindings/proxy.c.) */
int vh_tab_set_slot(vh_tab_t **t, vh_val_t key, vh_val_t val, uint64_t edit,
                    vh_val_t **slot);
/* vh_tab_set_slot with the string key given by its len bytes at k
 * [borrowed]: no string is made for a key the trie keeps inline (up to 14
 * bytes), nor for an existing key of any length but the lookup's probe. */
int vh_tab_set_str_slot(vh_tab_t **t, const char *k, size_t len, vh_val_t val,
                        uint64_t edit, vh_val_t **slot);

/* [new] A copy of t that shares every node (O(1)), stamped with edit, so
 * that writes through edit go to the copy. (For the writer that must detach
 * a nested table from a shared version before mutating it.) */
vh_tab_t *vh_tab_clone(vh_tab_t *t, uint64_t edit);
/* [new] A deep copy sharing no node with t (each nested table copied), for
 * storing a table that already has a parent. NULL on out of memory. */
vh_tab_t *vh_tab_deepcopy(const vh_tab_t *t, uint64_t edit);
/* The same, refusing a tree taller than max_height tables (t alone has
 * height 1; 0 = no limit): *out = the [new] copy, or NULL with VH_EDEPTH
 * (too tall), VH_ENOMEM, or a load failure's code. Iterative: any height
 * is walked without deep C recursion. */
int vh_tab_deepcopy_max(const vh_tab_t *t, uint64_t edit, int max_height,
                        vh_tab_t **out);

/* The border `#t`: the size of the array part after trailing nils are
 * trimmed (t[n] ~= nil and t[n+1] == nil, as Lua requires). */
int64_t vh_tab_len(const vh_tab_t *t);
/* Number of non-nil entries (array and hash parts). */
size_t vh_tab_count(const vh_tab_t *t);

/* Insert val at position pos (1 <= pos <= len+1), shifting pos..len up by
 * one; remove the value at pos (1 <= pos <= len), shifting down, storing
 * it in *removed [new] (nil if none). These back table.insert/remove.
 * As in Lua, remove also accepts pos == len+1 (and pos 0 when len is 0)
 * and then returns nil changing nothing. Any other pos: VH_ERANGE (insert
 * releases val). */
int vh_tab_insert(vh_tab_t **t, int64_t pos, vh_val_t val, uint64_t edit);
int vh_tab_remove(vh_tab_t **t, int64_t pos, vh_val_t *removed, uint64_t edit);

/* Iteration order: array part 1..n (skipping nil holes), then the hash part
 * in trie order. Deterministic for the same contents and history.
 *
 * Stateless step (backs Lua's next): key nil starts; on success *nk, *nv are
 * [borrowed] and the return is 1; at the end 0; VH_ENOTFOUND if key is not
 * in t. O(depth) per step. */
int vh_tab_next(const vh_tab_t *t, vh_val_t key, vh_val_t *nk, vh_val_t *nv);

/* Cursor for walking a pinned table (backs pairs over a snapshot): keep a
 * reference to the table for as long as the cursor is used. */
typedef struct vh_iter {
  const vh_tab_t *t; /* the table walked [borrowed] */
  int64_t ai;        /* next array index (1-based) */
  int depth;         /* number of valid stack entries */
  struct {
    const void *node; /* hash node on the path */
    int pos;          /* next entry / child position in it */
  } stack[16];
} vh_iter_t;
void vh_iter_init(vh_iter_t *it, const vh_tab_t *t);
/* 1 with *k, *v [borrowed], or 0 at the end. */
int vh_iter_next(vh_iter_t *it, vh_val_t *k, vh_val_t *v);

/* ---- persistence: lazy loading and death notices ----
 *
 * Nodes written by vh_flush_collect (vh_flush.h) get an id, their key in
 * the store, and never change again. After a restart the host makes each
 * root with vh_tab_stub(id); nothing else is read until touched: each node
 * is read through the loader the first time a read or write reaches it,
 * on the calling thread (the loop thread).
 *
 * FAULTS. A load can fail (I/O error, corrupt or missing node, out of
 * memory). Then:
 *   - reads (vh_tab_get*, vh_tab_len, vh_tab_count, iteration) return nil,
 *     0, or the end, and set the thread's sticky fault;
 *   - int-returning calls (vh_tab_set, insert, remove, next) return the
 *     error code (VH_EIO, VH_ECORRUPT, VH_ENOENT, VH_ENOMEM...), set the
 *     fault, and leave every table unchanged;
 *   - vh_tab_clone / vh_tab_deepcopy return NULL (as for out of memory):
 *     vh_trie_fault() tells the two apart.
 * So a caller that must not confuse "absent" with "unreadable" checks
 * vh_trie_fault() after a nil/0/end result, reports it, and clears it.
 * A failed load is retried the next time the node is touched. */

/* The loader: *bytes = the node's encoding (vh_codec.h), *len its length,
 * return 0; or return a negative VH_E* (VH_ENOENT: no such node). The bytes
 * are handed back to free_fn(arg, bytes) once decoded. */
typedef int (*vh_trie_load_fn)(void *arg, uint64_t id, const void **bytes,
                               size_t *len);
typedef void (*vh_trie_unload_fn)(void *arg, const void *bytes);
/* Set once (not thread-safe), before the first stub is touched; fn NULL
 * removes it (a load then fails with VH_EINVAL). arg [borrowed]. */
void vh_trie_set_loader(vh_trie_load_fn fn, vh_trie_unload_fn free_fn,
                        void *arg);

/* [new] A table standing for the stored table node id (!= 0), read in
 * place the first time it is used. NULL if out of memory or id is 0. */
vh_tab_t *vh_tab_stub(uint64_t id);
/* [new] The same for a reader of an old version (REPL at(V), diff, HTTP
 * ?at=, the change feed): the table and every node loaded under it
 * (transitively) is a view. A view node never calls the free hook when it
 * is freed (the live version, or the store's history, owns those ids; a
 * plain stub of an old root would report them dead and the store would
 * delete nodes that retained versions still use), and may not be written:
 * vh_tab_set/insert/remove on a view table, or on a clone of one, return
 * VH_EREADONLY and change nothing; so does storing a view table as a
 * value (store a vh_tab_deepcopy of it). NULL if out of memory or id 0. */
vh_tab_t *vh_tab_stub_view(uint64_t id);
/* [new] A writable private copy of the stored table id, for a replay
 * inside a running host (host/repl/repl_replay.c): like a view, nothing
 * loaded under it ever reports its death to the free hook (the store
 * keeps owning those ids); unlike one, it may be written (the writes make
 * new nodes that are never flushed: it must never be stored into a live
 * version). NULL if out of memory or id 0. */
vh_tab_t *vh_tab_stub_private(uint64_t id);
/* Turns every node of t's tree [borrowed] that is in memory (loaded nodes,
 * stubs, loaded stubs' targets) into a view node (persist/trie/tab_view.c):
 * none of them will ever report its death to the free hook, whoever holds
 * it and whenever it is freed, and none can be written. A rollback does
 * this to the root it replaces. O(nodes in memory under t). 0 or VH_ENOMEM
 * (then only part of the tree is marked). */
int vh_tab_make_view(vh_tab_t *t);
/* 1 if t is a view (vh_tab_stub_view, or loaded under one). */
int vh_tab_is_view(const vh_tab_t *t);
/* 1 if t is a table that has not been read from the store yet. */
int vh_tab_unloaded(const vh_tab_t *t);
/* t's store id: 0 if t was made in memory and not collected yet. */
uint64_t vh_tab_id(const vh_tab_t *t);

/* The thread's sticky fault: 0, or the code of the first load failure
 * since the last clear, with *msg (if msg != NULL) a message naming the
 * node ("node 1234: ECORRUPT: bad kind byte"), static per-thread storage.
 * vh_trie_fault_clear() resets it. */
int vh_trie_fault(const char **msg);
void vh_trie_fault_clear(void);

/* No-load mode (the host's change records, host/runtime/durable.c: a walk
 * on the loop thread that must never do I/O). While on != 0 every load of
 * a node or blob not in memory (and not staged) fails with VH_ENOLOAD
 * without calling the loader: the stub stays unloaded (a later touch with
 * loads on reads it), and the fault is set as for any failed load (the
 * caller clears it). Returns the previous setting. Owner thread only. */
int vh_trie_noload(int on);

/* Death notices: fn(arg, id, subtree) is called whenever a node with an id
 * is freed, so the host can delete it from the store. subtree = 1 if the
 * node was never loaded: everything below it on disk is dead too (it was
 * never in memory to report itself) and must be swept (vh_codec_child_ids
 * lists the children). subtree = 0: its children report themselves. Each
 * id is reported once. fn runs inside a release and must not call into
 * the trie. NULL removes it. arg [borrowed]. */
typedef void (*vh_trie_free_hook_fn)(void *arg, uint64_t id, int subtree);
void vh_trie_set_free_hook(vh_trie_free_hook_fn fn, void *arg);

/* ---- staged node bytes (stage.c) ----
 *
 * A reader that knows which nodes it will load (the change feed: every
 * node a version created, read with one range scan, vh_store_node_range)
 * stages their encodings; a load of a staged id decodes from them and
 * does not call the loader. Owner thread only; one stage in use at a
 * time. */
typedef struct vh_trie_stage vh_trie_stage_t;
/* [new] An empty stage, or NULL if out of memory. */
vh_trie_stage_t *vh_trie_stage_new(void);
/* st [stolen], may be NULL (stops using it if in use). */
void vh_trie_stage_free(vh_trie_stage_t *st);
/* Make st [borrowed] (NULL: none) the stage loads use; returns the one in
 * use before. */
vh_trie_stage_t *vh_trie_stage_use(vh_trie_stage_t *st);
/* Stage a copy of node id's encoding (bytes [borrowed]); an id staged
 * already keeps its first bytes. 0 or VH_ENOMEM. */
int vh_trie_stage_put(vh_trie_stage_t *st, uint64_t id, const void *bytes,
                      size_t len);
/* Size an empty stage's table for about n ids (a small diff stages a few
 * dozen: the default first table, 1024 slots, touched ~6 fresh pages);
 * a hint only: puts past it grow the table as usual. */
int vh_trie_stage_reserve(vh_trie_stage_t *st, size_t n);
/* Forget every staged encoding (keeps the memory for reuse). */
void vh_trie_stage_clear(vh_trie_stage_t *st);
/* Encodings staged and loads served from them since st was made. */
void vh_trie_stage_counts(const vh_trie_stage_t *st, uint64_t *staged,
                          uint64_t *used);

/* ---- testing hooks ---- */

/* Replace the hash function of the hash part (NULL restores the default),
 * to force collisions in tests. Only while no table exists. */
typedef uint32_t (*vh_hash_fn)(vh_val_t key);
void vh_trie_set_test_hash(vh_hash_fn fn);
/* Check every structural invariant of t (bitmaps, counts, canonical form,
 * array part trimmed, refcounts > 0). 0 if sound, else a negative code and
 * a message in *why (static storage). */
int vh_tab_check(const vh_tab_t *t, const char **why);
/* Nodes currently alive (tables, hash and vector nodes), for leak tests. */
size_t vh_trie_live_nodes(void);

#endif /* VH_TRIE_H */
