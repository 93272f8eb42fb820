/*
 * tab.c - tables (vh_tab_t): an array part (vec.c) plus a hash part
 * (champ.c), and the life cycle of every trie node.
 *
 * ARRAY SEMANTICS (invariants, checked by vh_tab_check):
 *   1. The array part holds keys 1..n, n = arr.n; nil holes may sit inside.
 *   2. Trimmed: n == 0 or slot n is non-nil. So n is a border: t[n] ~= nil
 *      and t[n+1] == nil, and vh_tab_len() is simply n.
 *   3. Keys 1..n+1 are never in the hash part. Setting key n+1 appends and
 *      then moves n+2, n+3, ... over from the hash part while present;
 *      setting slot n to nil pops, then pops trailing nils.
 *   4. acount = non-nil slots of the array part, hcount = hash entries.
 *
 * WRITES AND FAILURE. A table may be changed in place by the writer whose
 * token it carries; otherwise a write makes a new table node (sharing the
 * parts) first. A single-step write relies on the atomicity of vec.c and
 * champ.c. A compound write (append with migration, a pop that trims,
 * insert, remove) first retains the current part roots: that makes every
 * node it would touch non-exclusive, so its first step copies the path and
 * later steps work in place on those copies; on failure the copies are
 * released and the saved roots restored, on success the saved roots are
 * released. Either way vh_tab_* fail with nothing changed.
 *
 * RELEASE is iterative: dead nodes are chained through their (no longer
 * needed) edit field and processed in a loop, so a table nested 100,000
 * deep is freed without deep recursion and without allocating. A dead
 * node with a store id is reported to the free hook (lazy.c): subtree = 1
 * for a stub never loaded, 0 otherwise; a loaded stub hands its node on
 * and lets that node report.
 *
 * LAZY TABLES (lazy.c). Every entry point first makes sure the table
 * itself is loaded (vh_tab__ready). Reads that hit a failed load return
 * nil; writes note vh_trie__nfaults before their reads and fail, undoing
 * themselves, if it moved (see faulted() and the LOADS notes below).
 *
 * The counters (live nodes, edit tokens) follow the single-thread rule of
 * mem.c, except the edit token counter, which is atomic.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_bytes.h"
#include "vh_trie_int.h"

#define CHECK_NEST 64 /* nested tables checked by vh_tab_check */

static size_t live_nodes;
static atomic_uint_fast64_t edit_counter;

void vh_trie__panic(const char *msg) {
  fprintf(stderr, "vedhost: fatal: %s\n", msg);
  abort();
}

size_t vh_trie_live_nodes(void) {
  return live_nodes;
}

uint64_t vh_edit_new(void) {
  return (uint64_t)atomic_fetch_add(&edit_counter, 1) + 1;
}

/* ---- node life cycle ---- */

vh_node_t *vh_node__alloc(uint8_t kind, size_t size, uint64_t edit) {
  vh_node_t *n = vh_mem__alloc(size);
  if (n == NULL) return NULL;
  n->refc = 1;
  n->kind = kind;
  n->flags = 0;
  n->a = 0;
  n->b = 0;
  n->edit = edit;
  n->id = 0;
  live_nodes++;
  return n;
}

void vh_node__free_shell(vh_node_t *n, size_t size) {
  vh_mem__free(n, size);
  live_nodes--;
}

size_t vh_node__size(const vh_node_t *n) {
  if ((n->flags & VH_F_STUB) && n->kind != VH_K_TAB) return sizeof(vh_stub_t);
  switch (n->kind) {
    case VH_K_TAB:
      return sizeof(vh_tab_t);
    case VH_K_CHAMP:
    case VH_K_COLL:
      return vh_champ__node_size(n);
    default:
      return vh_vec__node_size(n);
  }
}

size_t vh_node__vals(const vh_node_t *n, const vh_val_t **v, size_t *step) {
  *step = 1;
  switch (n->kind) {
    case VH_K_CHAMP:
      *v = ((const vh_champ_t *)n)->kv + 1;
      *step = 2;
      return (size_t)vh_popc(((const vh_champ_t *)n)->datamap);
    case VH_K_COLL:
      *v = ((const vh_coll_t *)n)->kv + 1;
      *step = 2;
      return ((const vh_coll_t *)n)->count;
    case VH_K_VLEAF:
      *v = ((const vh_vleaf_t *)n)->v;
      return n->a;
    default:
      *v = NULL;
      return 0;
  }
}

/* Decrement c; when it dies, push it on the dead list *ud. A dead CHAMP
 * node is the next one the release loop reads (the list is LIFO), and
 * its body is cold (the release of a slice's replaced nodes touches each
 * once, long after the path copy read it): its lines are prefetched now,
 * while the loop still decrements the dying parent's other children. */
static inline void drop(vh_node_t *c, void *ud) {
  vh_node_t **list = ud;
  if (c->refc == 0) vh_trie__panic("trie node release: refcount underflow");
  if (--c->refc == 0) {
    c->edit = (uint64_t)(uintptr_t)*list;
    *list = c;
    if (c->kind == VH_K_CHAMP && !(c->flags & VH_F_STUB)) {
      size_t off, size = vh_champ__node_size(c);
      for (off = 64; off < size; off += 64)
        __builtin_prefetch((const char *)c + off);
    }
  }
}

/* vh_champ__drop_refs for a dead CHAMP node, with drop() inline instead
 * of called through a pointer per table value and child (the release of
 * a slice's replaced nodes is ~15% of the loop thread at K = 1M). */
static inline void drop_champ(vh_champ_t *c, vh_node_t **list) {
  int i, nd = vh_popc(c->datamap), nc = vh_popc(c->nodemap);
  vh_node_t **k = (vh_node_t **)(c->kv + 2 * nd);
  /* The children's headers first, all at once: drop() branches on each
   * count, and a mispredicted branch (a child that dies among shared
   * ones) would wait for its miss before the next load could start. */
  for (i = 0; i < nc; i++) __builtin_prefetch(k[i], 1);
  for (i = 0; i < 2 * nd; i++) {
    if (c->kv[i].type == VH_TSTR)
      vh_str_release(c->kv[i].u.s);
    else if (c->kv[i].type == VH_TTAB)
      drop(&c->kv[i].u.t->h, list);
  }
  for (i = 0; i < nc; i++) drop(k[i], list);
}

void vh_node__release(vh_node_t *n) {
  vh_node_t *list = NULL;
  drop(n, &list);
  while (list != NULL) {
    size_t size;
    n = list;
    list = (vh_node_t *)(uintptr_t)n->edit;
    size = vh_node__size(n);
    if (VH_UNLIKELY(n->flags & VH_F_STUB)) {
      /* Never loaded: the whole subtree on disk dies with it. Loaded: the
       * forwarded node carries the id and reports when it dies. */
      vh_node_t *fwd = n->kind == VH_K_TAB ? NULL : ((vh_stub_t *)n)->fwd;
      if (fwd != NULL)
        drop(fwd, &list);
      else if (!(n->flags & VH_F_NODEATH))
        vh_trie__died(n->id, 1);
      vh_node__free_shell(n, size);
      continue;
    }
    switch (n->kind) {
      case VH_K_TAB: {
        vh_tab_t *t = (vh_tab_t *)n;
        if (t->arr.root != NULL) drop(&t->arr.root->h, &list);
        if (t->arr.tail != NULL) drop(&t->arr.tail->h, &list);
        if (t->hash != NULL) drop(t->hash, &list);
        break;
      }
      case VH_K_CHAMP:
        drop_champ((vh_champ_t *)n, &list);
        break;
      case VH_K_COLL:
        vh_champ__drop_refs(n, drop, &list);
        break;
      case VH_K_VLEAF:
      case VH_K_VINNER:
        vh_vec__drop_refs(n, drop, &list);
        break;
      default:
        vh_trie__panic("trie node release: bad node kind");
    }
    if (n->id != 0 && !(n->flags & VH_F_NODEATH)) vh_trie__died(n->id, 0);
    vh_node__free_shell(n, size);
  }
}

/* ---- tables: basics ---- */

vh_tab_t *vh_tab_new(uint64_t edit) {
  vh_tab_t *t = (vh_tab_t *)vh_node__alloc(VH_K_TAB, sizeof(vh_tab_t), edit);
  if (t == NULL) return NULL;
  t->arr.n = 0;
  t->arr.root = NULL;
  t->arr.tail = NULL;
  t->arr.shift = 5;
  t->arr.lazy = 0;
  t->acount = 0;
  t->hash = NULL;
  t->hcount = 0;
  return t;
}

void vh_tab_retain(vh_tab_t *t) {
  t->h.refc++;
}

void vh_tab_release(vh_tab_t *t) {
  vh_node__release(&t->h);
}

uint64_t vh_tab_edit(const vh_tab_t *t) {
  return t->h.edit;
}

int64_t vh_tab_len(const vh_tab_t *t) {
  if (vh_tab__ready(t) < 0) return 0;
  return t->arr.n;
}

size_t vh_tab_count(const vh_tab_t *t) {
  if (vh_tab__ready(t) < 0) return 0;
  return (size_t)t->acount + t->hcount;
}

/* Since mark (a value of vh_trie__nfaults), a node failed to load: a write
 * must not act on what its reads returned. */
static inline int faulted(uint64_t mark) {
  return VH_UNLIKELY(vh_trie__nfaults != mark);
}

/* A new table node sharing t's parts (retained). */
static vh_tab_t *shallow_clone(const vh_tab_t *t, uint64_t edit) {
  vh_tab_t *nt = (vh_tab_t *)vh_node__alloc(VH_K_TAB, sizeof(vh_tab_t), edit);
  if (nt == NULL) return NULL;
  /* a clone of a view (or a private copy) stays one */
  nt->h.flags = t->h.flags & VH_F_NODEATH;
  nt->arr = t->arr;
  nt->acount = t->acount;
  nt->hash = t->hash;
  nt->hcount = t->hcount;
  vh_vec__retain_parts(&nt->arr);
  if (nt->hash != NULL) vh_node__retain(nt->hash);
  return nt;
}

vh_tab_t *vh_tab_clone(vh_tab_t *t, uint64_t edit) {
  if (vh_tab__ready(t) < 0) return NULL;
  return shallow_clone(t, edit);
}

/* ---- reads ---- */

void vh_tab_get(const vh_tab_t *t, vh_val_t key, vh_val_t *out) {
  const vh_val_t *p;
  if (vh_tab__ready(t) < 0) {
    *out = vh_nil();
    return;
  }
  if (key.type == VH_TINT && key.u.i >= 1 && key.u.i <= t->arr.n) {
    *out = *vh_vec__get(&t->arr, key.u.i - 1);
    return;
  }
  if (t->hash == NULL || key.type == VH_TNIL || key.type == VH_TTAB) {
    *out = vh_nil();
    return;
  }
  p = vh_champ__find(t->hash, key, vh_key__hash(key), t->arr.lazy);
  *out = p != NULL ? *p : vh_nil();
}

void vh_tab_get_int(const vh_tab_t *t, int64_t k, vh_val_t *out) {
  /* An unloaded table has n = 0: vh_tab_get loads it. */
  if (k >= 1 && k <= t->arr.n) {
    *out = *vh_vec__get(&t->arr, k - 1);
    return;
  }
  vh_tab_get(t, vh_int(k), out);
}

void vh_tab_get_str(const vh_tab_t *t, const char *k, size_t len,
                    vh_val_t *out) {
  const vh_val_t *p;
  if (t->hash == NULL) {
    /* An unloaded table has no hash part yet: load, then look again. */
    if (VH_UNLIKELY(t->h.flags & VH_F_STUB) && vh_tab__load((vh_tab_t *)t) == 0)
      vh_tab_get_str(t, k, len, out);
    else
      *out = vh_nil();
    return;
  }
  if (__builtin_expect(vh_trie__test_hash != NULL, 0)) {
    /* Test hash: the hash needs a key value. A temporary string outside
     * the accounted allocator, so reads never fail or count. */
    vh_str_t *s = vh_str__tmp(k, len);
    vh_val_t key;
    *out = vh_nil();
    if (s == NULL) return;
    key.type = VH_TSTR;
    key.u.s = s;
    vh_tab_get(t, key, out);
    free(s);
    return;
  }
  p = vh_champ__find_str(t->hash, k, len, vh_hash_bytes(k, len), t->arr.lazy);
  *out = p != NULL ? *p : vh_nil();
}

/* ---- write transactions ---- */

typedef struct txn {
  vh_tab_t *old; /* *tp on entry (the caller's reference) */
  vh_tab_t *t;   /* the table written: old, or a fresh node */
  int fresh;     /* t is a new node made by txn_begin */
  int saved;     /* the fields below hold retained parts of old */
  vh_vec_t arr;
  int64_t acount;
  vh_node_t *hash;
  size_t hcount;
} txn_t;

static int txn_begin(txn_t *x, vh_tab_t *t, uint64_t edit, int compound) {
  x->old = t;
  x->saved = 0;
  x->fresh = 0;
  if (edit != 0 && t->h.edit == edit) {
    x->t = t;
    if (compound) {
      x->saved = 1;
      x->arr = t->arr;
      x->acount = t->acount;
      x->hash = t->hash;
      x->hcount = t->hcount;
      vh_vec__retain_parts(&x->arr);
      if (x->hash != NULL) vh_node__retain(x->hash);
    }
    return 0;
  }
  x->t = shallow_clone(t, edit);
  if (x->t == NULL) return VH_ENOMEM;
  x->fresh = 1;
  return 0;
}

static void txn_commit(txn_t *x, vh_tab_t **tp) {
  if (x->fresh) {
    *tp = x->t;
    vh_tab_release(x->old);
  } else if (x->saved) {
    vh_vec__release_parts(&x->arr);
    if (x->hash != NULL) vh_node__release(x->hash);
  }
}

static int txn_abort(txn_t *x, int r) {
  if (x->fresh) {
    vh_tab_release(x->t);
  } else if (x->saved) {
    vh_tab_t *t = x->t;
    vh_vec__release_parts(&t->arr);
    if (t->hash != NULL) vh_node__release(t->hash);
    t->arr = x->arr;
    t->acount = x->acount;
    t->hash = x->hash;
    t->hcount = x->hcount;
  }
  return r;
}

static inline int present_int(const vh_tab_t *t, int64_t k) {
  return t->hash != NULL &&
         vh_champ__find(t->hash, vh_int(k), vh_key__hash(vh_int(k)),
                        t->arr.lazy) != NULL;
}

/* Move keys n+1, n+2, ... from the hash part to the array while present.
 * A failed load makes present_int false; the caller checks faulted(). */
static int migrate(vh_tab_t *t, uint64_t edit) {
  while (present_int(t, t->arr.n + 1)) {
    vh_val_t k = vh_int(t->arr.n + 1), v;
    int removed, r;
    r = vh_champ__del(&t->hash, edit, k, vh_key__hash(k), &v, &removed);
    if (r < 0) return r;
    t->hcount--;
    if ((r = vh_vec__push(&t->arr, edit, v)) < 0) {
      vh_val_release(v);
      return r;
    }
    t->acount++;
  }
  return 0;
}

/* Pop slot n, then trailing nils. *old = the popped value [new].
 * LOADS: the compound test reads slot n-1 (1-based); when it is non-nil
 * the loop reads only that slot again, so a load can fail after a change
 * only inside a compound (restorable) transaction. */
static int pop_trim(vh_tab_t **tp, uint64_t edit, vh_val_t *old) {
  vh_tab_t *t = *tp;
  int64_t n = t->arr.n;
  uint64_t mark = vh_trie__nfaults;
  int compound = n >= 2 && vh_vec__get(&t->arr, n - 2)->type == VH_TNIL;
  txn_t x;
  vh_val_t v;
  int r;
  *old = vh_nil();
  if (faulted(mark)) return vh_trie__fault_err();
  if ((r = txn_begin(&x, t, edit, compound)) < 0) return r;
  t = x.t;
  do {
    if ((r = vh_vec__pop(&t->arr, edit, &v)) < 0) goto fail;
    if (v.type != VH_TNIL) {
      t->acount--;
      if (old->type == VH_TNIL) {
        *old = v;
        continue;
      }
    }
    vh_val_release(v);
  } while (t->arr.n > 0 && vh_vec__get(&t->arr, t->arr.n - 1)->type == VH_TNIL);
  if (faulted(mark)) {
    r = vh_trie__fault_err();
    goto fail;
  }
  txn_commit(&x, tp);
  return 0;
fail:
  vh_val_release(*old);
  *old = vh_nil();
  return txn_abort(&x, r);
}

/* LOADS: every read that decides what to change happens before the first
 * change, except migrate's, which runs in a compound transaction (or
 * repeats the lookup of key n+2 that decided it needs none). */
static int set_array(vh_tab_t **tp, int64_t i, vh_val_t val, uint64_t edit) {
  vh_tab_t *t = *tp;
  int64_t n = t->arr.n;
  uint64_t mark = vh_trie__nfaults;
  txn_t x;
  int r, delta;
  if (i == n + 1) {
    int compound;
    if (val.type == VH_TNIL) return 0; /* n+1 is absent by invariant 3 */
    compound = present_int(t, n + 2);
    if (faulted(mark)) {
      r = vh_trie__fault_err();
      goto fail;
    }
    if ((r = txn_begin(&x, t, edit, compound)) < 0) goto fail;
    if ((r = vh_vec__push(&x.t->arr, edit, val)) < 0) {
      txn_abort(&x, r);
      goto fail;
    }
    x.t->acount++;
    if ((r = migrate(x.t, edit)) < 0) return txn_abort(&x, r); /* val gone */
    if (faulted(mark)) return txn_abort(&x, vh_trie__fault_err());
    txn_commit(&x, tp);
    return 0;
  }
  if (val.type == VH_TNIL && i == n) {
    vh_val_t old;
    if ((r = pop_trim(tp, edit, &old)) < 0) return r;
    vh_val_release(old);
    return 0;
  }
  delta =
      (val.type != VH_TNIL) - (vh_vec__get(&t->arr, i - 1)->type != VH_TNIL);
  if (faulted(mark)) {
    r = vh_trie__fault_err();
    goto fail;
  }
  if ((r = txn_begin(&x, t, edit, 0)) < 0) goto fail;
  if ((r = vh_vec__set(&x.t->arr, edit, i - 1, val)) < 0) {
    txn_abort(&x, r);
    goto fail;
  }
  x.t->acount += delta;
  txn_commit(&x, tp);
  return 0;
fail:
  vh_val_release(val);
  return r;
}

/* A write into t of val that a view forbids: t is a view, or val is a
 * view table (it would make old ids part of a live version). */
static inline int view_write(const vh_tab_t *t, vh_val_t val) {
  return (t->h.flags & VH_F_VIEW) ||
         (val.type == VH_TTAB && (val.u.t->h.flags & VH_F_VIEW));
}

int vh_tab_set(vh_tab_t **tp, vh_val_t key, vh_val_t val, uint64_t edit) {
  return vh_tab_set_slot(tp, key, val, edit, NULL);
}

int vh_tab_set_slot(vh_tab_t **tp, vh_val_t key, vh_val_t val, uint64_t edit,
                    vh_val_t **slot) {
  vh_tab_t *t = *tp;
  uint64_t mark = vh_trie__nfaults;
  txn_t x;
  uint32_t h;
  int r, flag;
  if (slot != NULL) *slot = NULL;
  if (VH_UNLIKELY(view_write(t, val))) {
    vh_val_release(val);
    return VH_EREADONLY;
  }
  if (val.type == VH_TSTR && VH_UNLIKELY(vh_str__big(val.u.s)) &&
      (r = vh_str__own(&val)) < 0)
    goto fail; /* one slot per blob id (str.c) */
  if ((r = vh_tab__ready(t)) < 0) goto fail;
  if (key.type != VH_TIKEY && vh_key_norm(&key) < 0) {
    vh_val_release(val);
    return VH_EKEY;
  }
  if (key.type == VH_TINT && key.u.i >= 1 && key.u.i <= t->arr.n + 1)
    return set_array(tp, key.u.i, val, edit);
  h = vh_key__hash(key);
  if (val.type == VH_TNIL) {
    vh_val_t old;
    if (t->hash == NULL || vh_champ__find(t->hash, key, h, t->arr.lazy) == NULL)
      return faulted(mark) ? vh_trie__fault_err() : 0;
    if ((r = txn_begin(&x, t, edit, 0)) < 0) return r;
    r = vh_champ__del(&x.t->hash, edit, key, h, &old, &flag);
    if (r < 0) return txn_abort(&x, r);
    x.t->hcount--;
    txn_commit(&x, tp);
    vh_val_release(old);
    return 0;
  }
  if ((r = txn_begin(&x, t, edit, 0)) < 0) goto fail;
  if ((r = vh_champ__set(&x.t->hash, edit, key, h, val, &flag,
                         x.t == t ? slot : NULL)) < 0) {
    txn_abort(&x, r);
    goto fail;
  }
  x.t->hcount += (size_t)flag;
  txn_commit(&x, tp);
  return 0;
fail:
  vh_val_release(val);
  return r;
}

/* A short key goes in as the inline form the trie would store it in
 * (vh_trie_int.h, "Inline keys"): the lookup, the compare and a new entry
 * use it as they are, so the write makes and frees no string (the proxy's
 * write of a key it has not cached: bench/README.md "perf/loop"). */
int vh_tab_set_str_slot(vh_tab_t **tp, const char *k, size_t len, vh_val_t val,
                        uint64_t edit, vh_val_t **slot) {
  vh_val_t key;
  int r;
  if (len <= VH_IKEY_MAX)
    return vh_tab_set_slot(tp, vh_key__ikey(k, len), val, edit, slot);
  if (slot != NULL) *slot = NULL;
  key.type = VH_TSTR;
  key.u.s = vh_str_new(k, len);
  if (key.u.s == NULL) {
    vh_val_release(val);
    return VH_ENOMEM;
  }
  r = vh_tab_set_slot(tp, key, val, edit, slot);
  vh_str_release(key.u.s);
  return r;
}

/* Compound: every change is restorable, so a failed load anywhere (the
 * shifted slots, migrate) is caught before commit. */
int vh_tab_insert(vh_tab_t **tp, int64_t pos, vh_val_t val, uint64_t edit) {
  vh_tab_t *t = *tp;
  uint64_t mark = vh_trie__nfaults;
  int64_t n, i;
  txn_t x;
  vh_val_t v;
  int r;
  if (VH_UNLIKELY(view_write(t, val))) {
    vh_val_release(val);
    return VH_EREADONLY;
  }
  if (val.type == VH_TSTR && (r = vh_str__own(&val)) < 0) goto fail;
  if ((r = vh_tab__ready(t)) < 0) goto fail;
  n = t->arr.n;
  if (pos < 1 || pos > n + 1) {
    vh_val_release(val);
    return VH_ERANGE;
  }
  if (pos == n + 1) return set_array(tp, pos, val, edit);
  if ((r = txn_begin(&x, t, edit, 1)) < 0) goto fail;
  t = x.t;
  /* Shift pos..n up by one: push slot n, then move down to pos. */
  v = *vh_vec__get(&t->arr, n - 1);
  vh_val_retain(v);
  if ((r = vh_vec__push(&t->arr, edit, v)) < 0) goto fail_v;
  for (i = n - 2; i >= pos - 1; i--) {
    v = *vh_vec__get(&t->arr, i);
    vh_val_retain(v);
    if ((r = vh_vec__set(&t->arr, edit, i + 1, v)) < 0) goto fail_v;
  }
  if ((r = vh_vec__set(&t->arr, edit, pos - 1, val)) < 0) {
    txn_abort(&x, r);
    goto fail;
  }
  t->acount += val.type != VH_TNIL;
  if ((r = migrate(t, edit)) < 0) return txn_abort(&x, r);
  if (faulted(mark)) return txn_abort(&x, vh_trie__fault_err());
  txn_commit(&x, tp);
  return 0;
fail_v:
  vh_val_release(v);
  txn_abort(&x, r);
fail:
  vh_val_release(val);
  return r;
}

int vh_tab_remove(vh_tab_t **tp, int64_t pos, vh_val_t *removed,
                  uint64_t edit) {
  vh_tab_t *t = *tp;
  uint64_t mark = vh_trie__nfaults;
  int64_t n, i;
  txn_t x;
  vh_val_t v;
  int r;
  *removed = vh_nil();
  if (VH_UNLIKELY(t->h.flags & VH_F_VIEW)) return VH_EREADONLY;
  if ((r = vh_tab__ready(t)) < 0) return r;
  n = t->arr.n;
  if (pos == n + 1 || (n == 0 && pos == 0)) return 0; /* Lua: nil */
  if (pos < 1 || pos > n) return VH_ERANGE;
  if (pos == n) return pop_trim(tp, edit, removed);
  if ((r = txn_begin(&x, t, edit, 1)) < 0) return r;
  t = x.t;
  *removed = *vh_vec__get(&t->arr, pos - 1);
  vh_val_retain(*removed);
  for (i = pos - 1; i < n - 1; i++) {
    v = *vh_vec__get(&t->arr, i + 1);
    vh_val_retain(v);
    if ((r = vh_vec__set(&t->arr, edit, i, v)) < 0) {
      vh_val_release(v);
      goto fail;
    }
  }
  /* Slot n now duplicates slot n-1: pop it, then trailing nils. */
  do {
    if ((r = vh_vec__pop(&t->arr, edit, &v)) < 0) goto fail;
    vh_val_release(v);
  } while (t->arr.n > 0 && vh_vec__get(&t->arr, t->arr.n - 1)->type == VH_TNIL);
  if (faulted(mark)) {
    r = vh_trie__fault_err();
    goto fail;
  }
  t->acount -= removed->type != VH_TNIL;
  txn_commit(&x, tp);
  return 0;
fail:
  vh_val_release(*removed);
  *removed = vh_nil();
  return txn_abort(&x, r);
}

/* ---- deep copy ---- */

/* A table whose nodes are all new (values retained, nested tables still
 * the originals). */
static vh_tab_t *copy_nodes(const vh_tab_t *t, uint64_t edit) {
  vh_tab_t *nt;
  if (vh_tab__ready(t) < 0 || (nt = vh_tab_new(edit)) == NULL) return NULL;
  if (vh_vec__copy_deep(&t->arr, &nt->arr, edit) < 0) goto fail;
  if (t->hash != NULL &&
      (nt->hash = vh_champ__copy_deep(t->hash, edit)) == NULL)
    goto fail;
  nt->acount = t->acount;
  nt->hcount = t->hcount;
  return nt;
fail:
  vh_tab_release(nt);
  return NULL;
}

/* The walk of a deep copy: an explicit stack (tables nest deeper than the
 * C stack allows) of the new tables whose nested tables are still the
 * originals, with their depth below the copy's root (the root is 1). */
typedef struct deep {
  struct {
    vh_tab_t *t; /* a new table, reachable from the copy's root */
    int depth;
  } * st;
  size_t n, cap;
  int depth;      /* depth of the table whose slots are being copied */
  int max_height; /* 0: no limit */
  uint64_t edit;
} deep_t;

static int deep_slot(vh_val_t *slot, void *ud) {
  deep_t *d = ud;
  vh_tab_t *c;
  if (slot->type == VH_TSTR && vh_str__big(slot->u.s)) {
    /* The original keeps its slot: the copy gets its own blob (str.c). */
    vh_str_t *s = vh_str_new(slot->u.s->data, slot->u.s->len);
    if (s == NULL) return VH_ENOMEM;
    vh_str_release(slot->u.s);
    slot->u.s = s;
    return 0;
  }
  if (slot->type != VH_TTAB) return 0;
  if (d->max_height > 0 && d->depth >= d->max_height) return VH_EDEPTH;
  if (vh_grow(&d->st, &d->cap, d->n + 1, sizeof *d->st) != 0) return VH_ENOMEM;
  c = copy_nodes(slot->u.t, d->edit);
  if (c == NULL) return VH_ENOMEM; /* or a failed load: see the caller */
  vh_tab_release(slot->u.t);
  slot->u.t = c;
  d->st[d->n].t = c;
  d->st[d->n].depth = d->depth + 1;
  d->n++;
  return 0;
}

int vh_tab_deepcopy_max(const vh_tab_t *t, uint64_t edit, int max_height,
                        vh_tab_t **out) {
  uint64_t mark = vh_trie__nfaults;
  deep_t d = {NULL, 0, 0, 1, max_height, edit};
  int r = 0;
  vh_tab_t *root = copy_nodes(t, edit);
  *out = NULL;
  if (root == NULL) return faulted(mark) ? vh_trie__fault_err() : VH_ENOMEM;
  /* The root's slots first, then the stack: deep_slot pushes every new
   * table, so each is filled exactly once. */
  if ((r = vh_vec__each_val(&root->arr, deep_slot, &d)) == 0)
    r = vh_champ__each_val(root->hash, deep_slot, &d);
  while (r == 0 && d.n > 0) {
    vh_tab_t *c = d.st[--d.n].t;
    d.depth = d.st[d.n].depth;
    if ((r = vh_vec__each_val(&c->arr, deep_slot, &d)) == 0)
      r = vh_champ__each_val(c->hash, deep_slot, &d);
  }
  free(d.st);
  if (r != VH_EDEPTH && faulted(mark)) r = vh_trie__fault_err();
  if (r < 0) {
    vh_tab_release(root); /* every new table is reachable from it */
    return r;
  }
  *out = root;
  return 0;
}

vh_tab_t *vh_tab_deepcopy(const vh_tab_t *t, uint64_t edit) {
  vh_tab_t *c;
  return vh_tab_deepcopy_max(t, edit, 0, &c) == 0 ? c : NULL;
}

/* ---- iteration ---- */

static int array_from(const vh_tab_t *t, int64_t i, vh_val_t *nk,
                      vh_val_t *nv) {
  for (; i < t->arr.n; i++) {
    const vh_val_t *p = vh_vec__get(&t->arr, i);
    if (p->type != VH_TNIL) {
      *nk = vh_int(i + 1);
      *nv = *p;
      return 1;
    }
  }
  return 0;
}

int vh_tab_next(const vh_tab_t *t, vh_val_t key, vh_val_t *nk, vh_val_t *nv) {
  vh_iter_t it;
  uint64_t mark = vh_trie__nfaults;
  int r;
  if ((r = vh_tab__ready(t)) < 0) return r;
  if (key.type == VH_TNIL ||
      (key.type == VH_TINT && key.u.i >= 1 && key.u.i <= t->arr.n)) {
    if (array_from(t, key.type == VH_TNIL ? 0 : key.u.i, nk, nv) &&
        !faulted(mark))
      return 1;
    vh_champ__iter_start(&it, t->hash);
  } else {
    if (vh_key_norm(&key) < 0 || t->hash == NULL) return VH_ENOTFOUND;
    if (vh_champ__iter_seek(&it, t->hash, key, vh_key__hash(key)) < 0)
      return faulted(mark) ? vh_trie__fault_err() : VH_ENOTFOUND;
  }
  r = vh_champ__iter_step(&it, nk, nv);
  return faulted(mark) ? vh_trie__fault_err() : r;
}

void vh_iter_init(vh_iter_t *it, const vh_tab_t *t) {
  it->t = t;
  it->ai = 1;
  it->depth = -1; /* still in the array part */
}

int vh_iter_next(vh_iter_t *it, vh_val_t *k, vh_val_t *v) {
  if (it->depth < 0) {
    const vh_tab_t *t = it->t;
    if (vh_tab__ready(t) < 0) { /* the end, with the fault set */
      it->depth = 0;
      return 0;
    }
    while (it->ai <= t->arr.n) {
      const vh_val_t *p = vh_vec__get(&t->arr, it->ai - 1);
      it->ai++;
      if (p->type != VH_TNIL) {
        *k = vh_int(it->ai - 1);
        *v = *p;
        return 1;
      }
    }
    vh_champ__iter_start(it, t->hash);
  }
  return vh_champ__iter_step(it, k, v);
}

/* ---- check ---- */

static int check_tab(const vh_tab_t *t, const char **why, int nest) {
  int64_t nonnil;
  size_t count;
  if (t->h.kind != VH_K_TAB) {
    *why = "table: wrong node kind";
    return -1;
  }
  if (vh_tab__ready(t) < 0) {
    *why = "table: failed to load (see vh_trie_fault)";
    return -1;
  }
  if (t->h.refc == 0) {
    *why = "table: refcount 0";
    return -1;
  }
  if (vh_vec__check(&t->arr, &nonnil, why, nest) < 0) return -1;
  if (nonnil != t->acount) {
    *why = "table: acount differs from the array part";
    return -1;
  }
  if (vh_champ__check(t->hash, t, &count, why, nest) < 0) return -1;
  if (count != t->hcount) {
    *why = "table: hcount differs from the hash part";
    return -1;
  }
  return 0;
}

int vh_val__check(vh_val_t v, const char **why, int nest) {
  switch (v.type) {
    case VH_TNIL:
    case VH_TBOOL:
    case VH_TINT:
      return 0;
    case VH_TFLOAT:
      return 0;
    case VH_TSTR:
      if (v.u.s->refc == 0) {
        *why = "value: string with refcount 0";
        return -1;
      }
      return 0;
    case VH_TTAB:
      if (v.u.t->h.refc == 0) {
        *why = "value: table with refcount 0";
        return -1;
      }
      return nest > 0 ? check_tab(v.u.t, why, nest - 1) : 0;
    default:
      *why = "value: bad type";
      return -1;
  }
}

int vh_tab_check(const vh_tab_t *t, const char **why) {
  static const char *ok = "ok";
  *why = ok;
  return check_tab(t, why, CHECK_NEST) < 0 ? VH_ECORRUPT : 0;
}
