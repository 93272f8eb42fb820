/*
 * vh_trie_int.h - private layouts of the persistent trie (persist/ only).
 *
 * Used by persist/{mem,str,champ,vec,tab}.c, by lazy.c (stubs, loading,
 * faults, death notices), codec.c (node encoding), flush.c (collecting
 * new nodes), and by their tests. Nothing outside persist/ may include it.
 *
 * Every node (table, CHAMP node, collision node, vector leaf, vector inner
 * node) starts with a vh_node_t. Strings are not nodes: they are plain
 * refcounted byte strings shared freely between versions.
 *
 * Ownership and mutation (see vh_trie.h for edit tokens). A writer holding
 * token E may change a node in place only if the node is *exclusive*:
 *   - a table node: its edit == E (the header's contract);
 *   - any other node: its edit == E, its refcount is 1, and its parent on
 *     the path is exclusive too (so a node reachable from a shared or
 *     copied parent is never mutated, whatever its stamp).
 * Every other node on a written path is copied (path copying); the copy is
 * stamped with E and retains every child it shares with the original.
 *
 * Failure atomicity: each write first walks its path and allocates every
 * node shell it will need; only when all allocations succeeded does it fill
 * the shells and mutate exclusive nodes. So an allocation failure changes
 * nothing. Compound writes (append with migration, trimming pops, insert,
 * remove) retain the table's part roots first, which makes the first step
 * copy them; on failure the copies are dropped and the saved roots put back.
 */
#ifndef VH_TRIE_INT_H
#define VH_TRIE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vh_trie.h"

/* Node kinds (vh_node_t.kind). */
enum {
  VH_K_TAB = 1,    /* vh_tab_t */
  VH_K_CHAMP = 2,  /* vh_champ_t */
  VH_K_COLL = 3,   /* vh_coll_t */
  VH_K_VLEAF = 4,  /* vh_vleaf_t */
  VH_K_VINNER = 5, /* vh_vinner_t */
  /* Stored only, never a node in memory: the record of a big string value
   * (a blob, ARCHITECTURE.md "Large string values out of line"). */
  VH_K_BLOB = 6
};

/* Node flags (vh_node_t.flags). */
#define VH_F_STUB 0x01 /* not loaded yet: see "Lazy nodes" below */
/* A view of an old version (vh_tab_stub_view): set on the view stub and,
 * when a view stub loads, on the node decoded and on every stub and table
 * value in it, so the whole loaded subtree carries it. A view node is
 * never reported to the free hook and is never written (VH_EREADONLY);
 * clones of a view table carry it too. */
#define VH_F_VIEW 0x02
/* A private copy of an old version (vh_tab_stub_private): carried like
 * VH_F_VIEW (on everything loaded under it, on clones), and like a view it
 * never reports its death; unlike one it may be written (a replay's
 * fork: the writes make new nodes, id 0, that die unreported too). */
#define VH_F_PRIV 0x04
#define VH_F_NODEATH (VH_F_VIEW | VH_F_PRIV)

/* Common header of every node. 24 bytes. */
typedef struct vh_node {
  uint32_t refc; /* references from parents, tables, values, callers */
  uint8_t kind;  /* VH_K_* */
  uint8_t flags; /* VH_F_*; 0 for every node made in memory */
  uint8_t a;     /* kind specific: vector nodes: slots in use; stubs: shift */
  uint8_t b;     /* kind specific: vector nodes: slots allocated; stubs: tail */
  /* Edit token the node was created under (0 = none; nodes loaded from or
   * written to the store carry 0, so they are never changed in place).
   * Once the node is dead (refcount 0) the release loop reuses it as its
   * work-list link. */
  uint64_t edit;
  /* Store key: 0 until flush.c writes the node (or for a node loaded from
   * the store, the key it was read from). A node with id != 0 never
   * changes. deepcopy links pending (fresh, id 0) tables through it while
   * it runs and resets it to 0. */
  uint64_t id;
} vh_node_t;

/* String: header + bytes + NUL. 12-byte header, allocated exactly. */
struct vh_str {
  uint32_t refc; /* references; release aborts on underflow */
  uint32_t hash; /* vh_hash_bytes(data, len), computed once */
  uint32_t len;  /* byte length (strings are limited to 4 GiB - 1) */
  char data[];   /* len bytes then a NUL */
};

/* Big strings (len >= VH_BLOB_MIN) are stored out of line as blobs
 * (codec.c, flush.c). Their allocation ends with an 8-byte trailer,
 * 8-aligned after the NUL: the blob id (low 62 bits: 0 until flush.c
 * writes it), VH_BLOB_NODEATH when this in-memory copy must never report
 * the id's death (loaded under a view or a private copy, or being
 * decoded), and VH_STR_HASHED once the hash field is computed: a big
 * string's hash is computed when it is first used as a key (vh_key__hash),
 * never for a value (hashing 1 KB values was ~38% of the loop thread's
 * instructions in the 1 KB-value bench). The minimum is part of the store
 * format: a reference to a shorter blob is refused as corrupt (the
 * trailer could not hold its id). */
#define VH_BLOB_MIN 256
#define VH_BLOB_NODEATH (1ull << 63)
#define VH_STR_HASHED (1ull << 62)
#define VH_BLOB_ID_MASK (VH_STR_HASHED - 1)
static inline size_t vh_str__trailer_off(size_t len) {
  return (sizeof(struct vh_str) + len + 1 + 7) & ~(size_t)7;
}
/* Bytes allocated for a string of len bytes. */
static inline size_t vh_str__alloc_size(size_t len) {
  return len >= VH_BLOB_MIN ? vh_str__trailer_off(len) + 8
                            : sizeof(struct vh_str) + len + 1;
}
/* The trailer of a big string (len >= VH_BLOB_MIN only). */
static inline uint64_t *vh_str__blob(const struct vh_str *s) {
  return (uint64_t *)((char *)s + vh_str__trailer_off(s->len));
}
static inline int vh_str__big(const struct vh_str *s) {
  return s->len >= VH_BLOB_MIN;
}
/* A big string's blob id (0: none yet). */
static inline uint64_t vh_str__blob_id(const struct vh_str *s) {
  return *vh_str__blob(s) & VH_BLOB_ID_MASK;
}
static inline void vh_str__set_blob_id(struct vh_str *s, uint64_t id) {
  uint64_t *t = vh_str__blob(s);
  *t = (*t & ~VH_BLOB_ID_MASK) | id;
}
/* A value about to be stored into a slot: if it is a big string that has
 * another holder or a blob id already (one parent per blob id), replace
 * it by a fresh copy (its reference released). 0 or VH_ENOMEM (*v kept). */
int vh_str__own(vh_val_t *v);
/* Set VH_BLOB_NODEATH on v if it is a big string (views). */
void vh_str__nodeath(vh_val_t v);

/* Inline keys. A string key of at most VH_IKEY_MAX bytes is kept in its
 * CHAMP or collision node's key slot itself instead of in a vh_str_t of
 * its own (20 B/key for "k123456", a third of the trie at 1M such keys):
 * type VH_TIKEY, bytes 0..7 in u, the length in x[0], bytes 8..13 in
 * x[1..6], every unused byte 0 (so two inline keys are equal iff their
 * u.i and x are). In memory only: the codec writes and reads the same
 * bytes as for a vh_str_t key, and the decoder makes short keys inline.
 *
 * An inline key never leaves the trie. Whatever hands a key slot out
 * (iteration, vh_tab_next, tdiff) first turns it into an ordinary
 * VH_TSTR slot holding a new vh_str_t (vh_key__out): the slot is then
 * what it was before inline keys existed, and the key stays borrowed from
 * the node as the API says. That changes the node's representation, not
 * its contents (the node's encoding, hash and order are the same), so it
 * is done in shared and stored nodes too. Keys compare (vh_key__eq,
 * vh_key__cmp) and hash (vh_key__hash) the same in both forms. */
#define VH_TIKEY 6
#define VH_IKEY_MAX 14
_Static_assert(sizeof(vh_val_t) == 16 && offsetof(vh_val_t, x) == 9,
               "inline key layout");
/* An inline key of len <= VH_IKEY_MAX bytes at p. */
static inline vh_val_t vh_key__ikey(const char *p, size_t len) {
  char b[16] = {0}; /* one copy of len bytes, then fixed-size moves */
  vh_val_t v;
  memcpy(b, p, len);
  memcpy(&v.u, b, 8);
  memcpy(v.x + 1, b + 8, 6);
  v.x[0] = (uint8_t)len;
  v.type = VH_TIKEY;
  return v;
}
/* Bytes of the inline key k into buf (VH_IKEY_MAX bytes); the length. */
static inline size_t vh_key__ibytes(const vh_val_t *k, char *buf) {
  size_t len = k->x[0];
  memcpy(buf, &k->u, 8);
  memcpy(buf + 8, k->x + 1, 6);
  return len;
}
/* Inline keys a, b equal: two words each (type, length and bytes). */
static inline int vh_key__ieq(const vh_val_t *a, const vh_val_t *b) {
  uint64_t a1, b1;
  memcpy(&a1, (const char *)a + 8, 8);
  memcpy(&b1, (const char *)b + 8, 8);
  return a->u.i == b->u.i && a1 == b1;
}
/* The inline key k holds the len bytes at p (no probe to build: the
 * hot paths compare a string key against an inline slot this way). */
static inline int vh_key__iis(const vh_val_t *k, const char *p, size_t len) {
  if (k->x[0] != len) return 0;
  if (len <= 8) return memcmp(&k->u, p, len) == 0;
  return memcmp(&k->u, p, 8) == 0 && memcmp(k->x + 1, p + 8, len - 8) == 0;
}
/* The form a new key is stored in: k itself, or its inline form. */
static inline vh_val_t vh_key__stored(vh_val_t k) {
  if (k.type == VH_TSTR && k.u.s->len <= VH_IKEY_MAX)
    return vh_key__ikey(k.u.s->data, k.u.s->len);
  return k;
}
/* Turn the key slot *k into an ordinary VH_TSTR slot if it is inline (a
 * new string the slot owns). 0 or VH_ENOMEM (the slot unchanged). */
int vh_key__out(vh_val_t *k);

/* Population count of a CHAMP bitmap, inline: without -mpopcnt,
 * __builtin_popcount is a libgcc call (__popcountdi2: ~2% of the loop
 * thread's instructions at K=1M from flush.c and codec.c alone,
 * bench/README.md "perf/sync4"; a quarter of a CHAMP lookup). */
static inline int vh_popc(uint32_t x) {
#if defined(__POPCNT__)
  return __builtin_popcount(x);
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  return (int)((((x + (x >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
#endif
}

/* CHAMP node (hash levels 0..6, shift 0..30).
 *   kv[0 .. 2*nd-1]    nd = popcount(datamap) inline entries: key, value
 *                      in ascending bit order;
 *   then nc = popcount(nodemap) child pointers (vh_node_t *) in ascending
 *   bit order. Children of a shift-30 node are collision nodes.
 * The node is allocated to exactly this size (no slack). */
typedef struct vh_champ {
  vh_node_t h;
  uint32_t datamap; /* bit b set: an inline entry for hash chunk b */
  uint32_t nodemap; /* bit b set: a child for hash chunk b */
  vh_val_t kv[];
} vh_champ_t;

/* Collision node: keys whose full 32-bit hashes are equal (depth 7 only),
 * count >= 2 entries sorted by vh_key__cmp, so that the order does not
 * depend on history. Exact size. */
typedef struct vh_coll {
  vh_node_t h;
  uint32_t hash;  /* the hash every key here has */
  uint32_t count; /* number of entries */
  vh_val_t kv[];  /* key, value pairs */
} vh_coll_t;

/* Vector leaf (h.a = used slots, h.b = allocated slots, <= 32). Leaves in
 * the tree are full (32 used); the tail may have fewer and spare slots. */
typedef struct vh_vleaf {
  vh_node_t h;
  vh_val_t v[];
} vh_vleaf_t;

/* Vector inner node (h.a = children in use, h.b = allocated, <= 32). */
typedef struct vh_vinner {
  vh_node_t h;
  vh_node_t *c[];
} vh_vinner_t;

/* The array part: a persistent vector of n slots (Lua keys 1..n), the last
 * 1..32 of them in the tail, the others in full leaves under root. */
typedef struct vh_vec {
  int64_t n;         /* slots (the array size, trimmed: slot n-1 non-nil) */
  vh_vinner_t *root; /* NULL iff n <= 32 (no full leaf in the tree) */
  vh_vleaf_t *tail;  /* NULL iff n == 0 */
  uint32_t shift;    /* level of root: 5 = its children are leaves */
  /* 1 if this table's parts (this vector and the table's hash part) may
   * hold stubs: the table was read from the store, or shares parts with
   * one that was. Copied with the struct (clones, transactions); 0 for
   * tables built in memory, whose reads then skip the stub checks (which
   * cost ~12-20% on lookups in big tables even when nothing is a stub). */
  uint8_t lazy;
} vh_vec_t;

/* A table. Its fields are written only by tab.c (and read by the store). */
struct vh_tab {
  vh_node_t h;
  vh_vec_t arr;    /* array part */
  int64_t acount;  /* non-nil slots in arr */
  vh_node_t *hash; /* CHAMP root (a vh_champ_t) or NULL if empty */
  size_t hcount;   /* entries in the hash part */
};

/* Lazy nodes (lazy.c). A node that is in the store but not in memory yet
 * is a stub, flagged VH_F_STUB:
 *   - a table: a full-size vh_tab_t with empty fields, filled in place by
 *     vh_tab__load() the first time it is read (so cached pointers to it
 *     stay valid); the flag is cleared then.
 *   - any other node: a vh_stub_t. Its kind is the kind expected at its
 *     place; a = the expected shift (CHAMP/COLL: hash shift; VINNER: the
 *     level's shift), b = 1 for a vector tail (its last slot must be
 *     non-nil). On first access vh_node__load() reads and decodes the node
 *     and stores it in fwd (the stub owns that reference); the stub keeps
 *     its flag and is the node's stand-in in every parent slot. Parents
 *     always hold the stub, never fwd directly, except a vector tail taken
 *     from a loaded leaf (either works: both carry the id).
 * Every child access goes through vh_node__res(); table entry points call
 * vh_tab__ready(). A load failure sets the thread's fault (vh_trie_fault)
 * and makes vh_node__res() return NULL. */
typedef struct vh_stub {
  vh_node_t h;     /* kind expected, flags VH_F_STUB, id, a/b as above */
  vh_node_t *fwd;  /* the loaded node (one reference), NULL before */
  uint64_t expect; /* CHAMP/COLL: hash prefix of the slot; VINNER: full
                      leaves under it; VLEAF: slots it must hold */
} vh_stub_t;

#define VH_CHAMP_COLL_SHIFT 35 /* where collision nodes sit (depth 7) */
#define VH_VEC_W 32

/* ---- mem.c ---- */
void *vh_mem__alloc(size_t size);        /* NULL on (injected) failure */
void vh_mem__free(void *p, size_t size); /* size must be the allocated one */
/* Bytes a block of size bytes really takes (header, rounding, slot). */
size_t vh_mem__footprint(size_t size);

/* ---- str.c ---- */
int vh_key__eq(vh_val_t a, vh_val_t b); /* a, b normalized keys */
/* vh_key__eq with two inline keys compared here (a feed walk's common
 * case: a decoded node's entries against its twin's). */
static inline int vh_key__eq_i(const vh_val_t *a, const vh_val_t *b) {
  if (a->type == VH_TIKEY && b->type == VH_TIKEY) return vh_key__ieq(a, b);
  return vh_key__eq(*a, *b);
}
int vh_key__cmp(vh_val_t a, vh_val_t b); /* total order on keys */
uint32_t vh_key__hash(vh_val_t k);       /* hash of a normalized key */
extern vh_hash_fn vh_trie__test_hash;    /* NULL unless a test set one */
/* [new] A string of len bytes at p outside the accounted allocator
 * (free() it), for a test hash that needs a key value; NULL without
 * memory. */
vh_str_t *vh_str__tmp(const char *p, size_t len);
uint64_t vh_hash__mix64(uint64_t x);

/* ---- tab.c: generic node life cycle ---- */
/* [new] A node of kind and size bytes, refcount 1, stamped edit. */
vh_node_t *vh_node__alloc(uint8_t kind, size_t size, uint64_t edit);
/* Free a node of size bytes that holds no references (an unfilled shell)
 * without touching its contents. */
void vh_node__free_shell(vh_node_t *n, size_t size);
size_t vh_node__size(const vh_node_t *n);
/* The inline value slots of a loaded node (*v [borrowed]): the values of a
 * CHAMP or collision node (every second slot from *v, *step = 2) or a vector
 * leaf's slots (*step = 1). Returns their count, 0 for other kinds. */
size_t vh_node__vals(const vh_node_t *n, const vh_val_t **v, size_t *step);
void vh_node__release(vh_node_t *n); /* iterative; aborts on underflow */
static inline void vh_node__retain(vh_node_t *n) {
  n->refc++;
}
/* Abort with a message (refcount underflow and other broken invariants). */
void vh_trie__panic(const char *msg);

/* ---- champ.c ---- */
/* Lookup: the value slot for key (hash h) or NULL. lazy: the tree may
 * hold stubs (the table's arr.lazy); then NULL may also mean a failed load
 * (the fault is set). */
const vh_val_t *vh_champ__find(const vh_node_t *root, vh_val_t key, uint32_t h,
                               int lazy);
const vh_val_t *vh_champ__find_str(const vh_node_t *root, const char *k,
                                   size_t len, uint32_t h, int lazy);
/* Set key (borrowed, retained if inserted) to val (stolen on success only;
 * non-nil) in the tree *rootp, whose owner (a table) is exclusive. *added
 * = 1 if the key was new. VH_ENOMEM: nothing changed, val not consumed.
 * slotp (may be NULL): the value's slot when it replaced the old value in
 * place (every node on the path exclusive under edit), else NULL. */
int vh_champ__set(vh_node_t **rootp, uint64_t edit, vh_val_t key, uint32_t h,
                  vh_val_t val, int *added, vh_val_t **slotp);
/* Delete key. *removed = 1 and *old = the value [new] if it was present. */
int vh_champ__del(vh_node_t **rootp, uint64_t edit, vh_val_t key, uint32_t h,
                  vh_val_t *old, int *removed);
/* Iterator steps over a hash tree (it->stack/depth only). */
void vh_champ__iter_start(vh_iter_t *it, const vh_node_t *root);
int vh_champ__iter_step(vh_iter_t *it, vh_val_t *k, vh_val_t *v);
/* Position it right after key; VH_ENOTFOUND if absent. */
int vh_champ__iter_seek(vh_iter_t *it, const vh_node_t *root, vh_val_t key,
                        uint32_t h);
/* [new] A copy of the tree sharing no node (values retained), or NULL. */
vh_node_t *vh_champ__copy_deep(const vh_node_t *n, uint64_t edit);
/* Call fn on every value slot of the tree (used by deepcopy). */
int vh_champ__each_val(vh_node_t *n, int (*fn)(vh_val_t *slot, void *ud),
                       void *ud);
/* Check the tree; count entries into *count. tab = owning table. */
int vh_champ__check(const vh_node_t *root, const vh_tab_t *tab, size_t *count,
                    const char **why, int nest);
size_t vh_champ__node_size(const vh_node_t *n);
/* Drop the references held by a dead CHAMP/collision node: strings are
 * released, and every child node and table value is handed to drop(),
 * which decrements it (and queues it when it reaches 0). */
void vh_champ__drop_refs(vh_node_t *n, void (*drop)(vh_node_t *c, void *ud),
                         void *ud);

/* ---- vec.c ---- */
const vh_val_t *vh_vec__get(const vh_vec_t *v, int64_t i); /* 0-based */
/* Set slot i < n to val (stolen on success; may be nil). old value is
 * released. The owner of v is exclusive. */
int vh_vec__set(vh_vec_t *v, uint64_t edit, int64_t i, vh_val_t val);
int vh_vec__push(vh_vec_t *v, uint64_t edit, vh_val_t val);
/* Remove the last slot; *old = its value [new]. */
int vh_vec__pop(vh_vec_t *v, uint64_t edit, vh_val_t *old);
int vh_vec__copy_deep(const vh_vec_t *src, vh_vec_t *dst, uint64_t edit);
int vh_vec__each_val(vh_vec_t *v, int (*fn)(vh_val_t *slot, void *ud),
                     void *ud);
int vh_vec__check(const vh_vec_t *v, int64_t *nonnil, const char **why,
                  int nest);
size_t vh_vec__node_size(const vh_node_t *n);
void vh_vec__drop_refs(vh_node_t *n, void (*drop)(vh_node_t *c, void *ud),
                       void *ud);
void vh_vec__retain_parts(const vh_vec_t *v);
void vh_vec__release_parts(const vh_vec_t *v);

/* ---- tab.c ---- */
/* Check a nested value (refcounts; nested tables down to nest levels). */
int vh_val__check(vh_val_t v, const char **why, int nest);

/* ---- lazy.c ---- */
#define VH_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Slow path of vh_node__res: n is a stub. The loaded node [borrowed], or
 * NULL with the thread's fault set. */
vh_node_t *vh_node__load(vh_node_t *n);
/* vh_node__load with a twin (vh_codec_expect_t.twin): a loaded view node
 * of an older version at n's place, whose children with the same ids the
 * decoded node shares. Ignored unless n is a view stub. */
vh_node_t *vh_node__load_twin(vh_node_t *n, const vh_node_t *twin);
/* The node standing at a child slot, loaded if it was a stub [borrowed].
 * NULL only when a load failed (the fault is set). */
static inline vh_node_t *vh_node__res(const vh_node_t *n) {
  if (VH_UNLIKELY(n->flags & VH_F_STUB)) return vh_node__load((vh_node_t *)n);
  return (vh_node_t *)n;
}
/* The same for a child slot: if the slot holds the only reference to the
 * stub, the slot takes the loaded node over and the stub is freed (later
 * reads then skip it). Used where a slot, not a copy of it, is at hand. */
vh_node_t *vh_node__load_slot(vh_node_t **slot);
/* If the loaded stub n has refcount 1: free it and return its node, whose
 * reference the caller stores in the slot that held n. Else NULL. */
vh_node_t *vh_node__take(vh_node_t *n);
static inline vh_node_t *vh_node__res_slot(vh_node_t **slot) {
  vh_node_t *n = *slot;
  if (VH_UNLIKELY(n->flags & VH_F_STUB)) return vh_node__load_slot(slot);
  return n;
}
/* Fill an unloaded table in place. 0, or the fault's code (fault set). */
int vh_tab__load(vh_tab_t *t);
static inline int vh_tab__ready(const vh_tab_t *t) {
  if (VH_UNLIKELY(t->h.flags & VH_F_STUB)) return vh_tab__load((vh_tab_t *)t);
  return 0;
}
/* [new] A stub for node id of the given kind and expectations (see
 * vh_stub_t), or NULL when out of memory. */
vh_node_t *vh_node__stub(uint8_t kind, uint64_t id, uint8_t shift, uint8_t tail,
                         uint64_t expect);
/* Faults so far (a write compares it before and after its reads), and
 * the code of the latest one. A plain global like mem.c's counters (the
 * trie has one owner thread): a thread-local costs a __tls_get_addr call
 * per write in the PIC Lua module. */
extern uint64_t vh_trie__nfaults;
int vh_trie__fault_err(void);
/* Record a fault: code, the node id, and what failed. */
void vh_trie__fault(int code, uint64_t id, const char *what);
/* A node with id != 0 died (refcount 0): tell the free hook. subtree = 1
 * if it was never loaded. Not called for view nodes (VH_F_VIEW). */
void vh_trie__died(uint64_t id, int subtree);
/* Flag n, a node just decoded under a view stub, and every stub and table
 * value it holds as VH_F_VIEW. */
void vh_trie__mark_view(vh_node_t *n);
/* The same with the flags f (VH_F_VIEW and/or VH_F_PRIV). */
void vh_trie__mark_flags(vh_node_t *n, uint8_t f);
/* stage.c: the stage in use (vh_trie_stage_use), or NULL; _staged: 1
 * and the staged encoding of id [borrowed, until the stage is cleared],
 * or 0. Only with vh_trie__stage != NULL. */
extern struct vh_trie_stage *vh_trie__stage;
int vh_trie__staged(uint64_t id, const void **bytes, size_t *len);
/* [new] The big string stored as blob id, len bytes (codec.c, decoding a
 * reference), read through the loader; its trailer holds id |
 * VH_BLOB_NODEATH (vh_codec_decode clears the flag once the node is
 * whole). 0, or a negative code with the fault set and *why static. */
int vh_trie__load_blob(uint64_t id, uint64_t len, vh_str_t **out,
                       const char **why);
/* The static nil a read returns after a fault. */
extern const vh_val_t vh_trie__nil;

#endif /* VH_TRIE_INT_H */
