/*
 * champ.c - the hash part of a table: a CHAMP map (Steindorfer & Vinju,
 * "Optimizing Hash-Array Mapped Tries for Fast and Lean Immutable JVM
 * Collections", 2015).
 *
 * HOW IT WORKS. A key's 32-bit hash is cut into 5-bit chunks, low bits
 * first: level d (shift 5d, d = 0..6) uses chunk (h >> 5d) & 31; level 6
 * has only 2 bits left. A node has two bitmaps: datamap bit b set means an
 * inline key/value entry whose chunk is b; nodemap bit b set means a child
 * node for chunk b. The entries come first in the node (ascending bit),
 * then the child pointers (ascending bit); the node is allocated to exactly
 * that size. When the hash is exhausted (below level 6) keys with equal
 * hashes share a collision node (depth 7), kept sorted by vh_key__cmp.
 *
 * CANONICAL FORM (invariant). A key sits at the shallowest level where no
 * other key shares its hash prefix; a non-root node therefore holds at
 * least two keys in its subtree, and never exactly one entry and no child.
 * Insert keeps this by construction (a clash pushes both keys one level
 * down, as deep as their hashes agree). Delete restores it: a subtree left
 * with one key is inlined back into the nearest ancestor that still has
 * other content (or the root). So equal contents give identical structure
 * and identical iteration order, whatever the history.
 *
 * WRITES. A write walks the path once, recording each node and whether it
 * is exclusive (see vh_trie_int.h). Then it allocates every shell it needs
 * (copies of non-exclusive ancestors, the changed node, a split chain); if
 * any allocation fails it frees the shells and returns VH_ENOMEM having
 * changed nothing. Then it fills bottom-up: a copy retains everything it
 * shares, an exclusive parent swaps the child pointer in place and releases
 * the old child. The only in-place change without a new shell is replacing
 * a value in an exclusive node. Iteration order: entries of a node, then
 * its children's subtrees, in bit order.
 *
 * KEYS. A new string key of <= VH_IKEY_MAX bytes is stored inline in its
 * entry (vh_key__stored; vh_trie_int.h "Inline keys"), with no string of
 * its own. Reads and writes compare a caller's string with an inline
 * slot byte for byte (key_is, str_is: no probe is built); iteration turns
 * an entry's inline key into a string slot as it hands it out (key_out),
 * so callers only ever see VH_TSTR.
 */
#include <string.h>

#include "vh_trie_int.h"

#define MAXD 9 /* levels 0..6, the collision level, one spare */

/* Population count: vh_popc (vh_trie_int.h), inline without -mpopcnt
 * (the libgcc call cost a quarter of a lookup). */
static inline int popc(uint32_t x) {
  return vh_popc(x);
}

static inline int cnd(const vh_champ_t *c) {
  return popc(c->datamap);
}

static inline int cnc(const vh_champ_t *c) {
  return popc(c->nodemap);
}

static inline vh_node_t **kids(const vh_champ_t *c) {
  return (vh_node_t **)(c->kv + 2 * cnd(c));
}

static inline uint32_t chunk(uint32_t h, int shift) {
  return (h >> shift) & 31;
}

static inline size_t champ_bytes(int nd, int nc) {
  return sizeof(vh_champ_t) + (size_t)nd * 2 * sizeof(vh_val_t) +
         (size_t)nc * sizeof(vh_node_t *);
}

static inline size_t coll_bytes(uint32_t count) {
  return sizeof(vh_coll_t) + (size_t)count * 2 * sizeof(vh_val_t);
}

size_t vh_champ__node_size(const vh_node_t *n) {
  if (n->kind == VH_K_COLL) return coll_bytes(((const vh_coll_t *)n)->count);
  return champ_bytes(cnd((const vh_champ_t *)n), cnc((const vh_champ_t *)n));
}

/* ---- reads ---- */

/* Reads come in two versions: the plain loops for trees built in memory,
 * and the _lazy ones for trees that may hold stubs (the owning table's
 * arr.lazy), which check every child before use. Checking costs ~12% on
 * a 1M-key lookup even when there is no stub, so in-memory tables do not
 * pay it. */

/* Key slot *k holds key (a key as callers pass it, or a slot's): an
 * inline slot is compared with the string's bytes directly. */
static inline int key_is(const vh_val_t *k, const vh_val_t *key) {
  if (k->type == VH_TIKEY) {
    if (key->type == VH_TSTR)
      return vh_key__iis(k, key->u.s->data, key->u.s->len);
    return key->type == VH_TIKEY && vh_key__ieq(k, key);
  }
  return vh_key__eq(*k, *key);
}

static const vh_val_t *find_lazy(const vh_node_t *n, vh_val_t key, uint32_t h) {
  int shift = 0;
  if (n == NULL || (n = vh_node__res(n)) == NULL) return NULL;
  for (;;) {
    const vh_champ_t *c;
    uint32_t bit;
    if (n->kind == VH_K_COLL) {
      const vh_coll_t *l = (const vh_coll_t *)n;
      uint32_t i;
      for (i = 0; i < l->count; i++)
        if (key_is(&l->kv[2 * i], &key)) return &l->kv[2 * i + 1];
      return NULL;
    }
    c = (const vh_champ_t *)n;
    bit = 1u << chunk(h, shift);
    if (c->datamap & bit) {
      int i = popc(c->datamap & (bit - 1));
      return key_is(&c->kv[2 * i], &key) ? &c->kv[2 * i + 1] : NULL;
    }
    if (!(c->nodemap & bit)) return NULL;
    n = vh_node__res_slot(&kids(c)[popc(c->nodemap & (bit - 1))]);
    if (n == NULL) return NULL; /* fault set */
    shift += 5;
  }
}

const vh_val_t *vh_champ__find(const vh_node_t *n, vh_val_t key, uint32_t h,
                               int lazy) {
  int shift = 0;
  if (VH_UNLIKELY(lazy)) return find_lazy(n, key, h);
  while (n != NULL) {
    const vh_champ_t *c;
    uint32_t bit;
    if (n->kind == VH_K_COLL) {
      const vh_coll_t *l = (const vh_coll_t *)n;
      uint32_t i;
      for (i = 0; i < l->count; i++)
        if (key_is(&l->kv[2 * i], &key)) return &l->kv[2 * i + 1];
      return NULL;
    }
    c = (const vh_champ_t *)n;
    bit = 1u << chunk(h, shift);
    if (c->datamap & bit) {
      int i = popc(c->datamap & (bit - 1));
      return key_is(&c->kv[2 * i], &key) ? &c->kv[2 * i + 1] : NULL;
    }
    if (!(c->nodemap & bit)) return NULL;
    n = kids(c)[popc(c->nodemap & (bit - 1))];
    shift += 5;
  }
  return NULL;
}

/* Key slot k holds the string p, len (hash h). */
static inline int str_is(const vh_val_t *k, const char *p, size_t len,
                         uint32_t h) {
  if (k->type == VH_TIKEY) return vh_key__iis(k, p, len);
  return k->type == VH_TSTR && k->u.s->hash == h && k->u.s->len == len &&
         memcmp(k->u.s->data, p, len) == 0;
}

static const vh_val_t *find_str_lazy(const vh_node_t *n, const char *p,
                                     size_t len, uint32_t h) {
  int shift = 0;
  if (n == NULL || (n = vh_node__res(n)) == NULL) return NULL;
  for (;;) {
    const vh_champ_t *c;
    uint32_t bit;
    if (__builtin_expect(n->kind == VH_K_COLL, 0)) {
      const vh_coll_t *l = (const vh_coll_t *)n;
      uint32_t i;
      for (i = 0; i < l->count; i++)
        if (str_is(&l->kv[2 * i], p, len, h)) return &l->kv[2 * i + 1];
      return NULL;
    }
    c = (const vh_champ_t *)n;
    bit = 1u << chunk(h, shift);
    if (c->datamap & bit) {
      int i = popc(c->datamap & (bit - 1));
      return str_is(&c->kv[2 * i], p, len, h) ? &c->kv[2 * i + 1] : NULL;
    }
    if (!(c->nodemap & bit)) return NULL;
    n = vh_node__res_slot(&kids(c)[popc(c->nodemap & (bit - 1))]);
    if (n == NULL) return NULL; /* fault set */
    shift += 5;
  }
}

/* The proxy's hot path: h is vh_hash_bytes(p, len) (default hash only). */
const vh_val_t *vh_champ__find_str(const vh_node_t *n, const char *p,
                                   size_t len, uint32_t h, int lazy) {
  int shift = 0;
  if (VH_UNLIKELY(lazy)) return find_str_lazy(n, p, len, h);
  while (n != NULL) {
    const vh_champ_t *c;
    uint32_t bit;
    if (__builtin_expect(n->kind == VH_K_COLL, 0)) {
      const vh_coll_t *l = (const vh_coll_t *)n;
      uint32_t i;
      for (i = 0; i < l->count; i++)
        if (str_is(&l->kv[2 * i], p, len, h)) return &l->kv[2 * i + 1];
      return NULL;
    }
    c = (const vh_champ_t *)n;
    bit = 1u << chunk(h, shift);
    if (c->datamap & bit) {
      int i = popc(c->datamap & (bit - 1));
      return str_is(&c->kv[2 * i], p, len, h) ? &c->kv[2 * i + 1] : NULL;
    }
    if (!(c->nodemap & bit)) return NULL;
    n = kids(c)[popc(c->nodemap & (bit - 1))];
    shift += 5;
  }
  return NULL;
}

/* ---- write helpers ---- */

typedef struct step {
  vh_node_t *n; /* node on the path */
  int excl;     /* may be changed in place */
  int idx;      /* index of the child taken (champ levels above the end) */
} step_t;

/* A shell list: every allocation of one write, freed together on failure. */
typedef struct shells {
  vh_node_t *p[2 * MAXD];
  size_t sz[2 * MAXD];
  int n;
} shells_t;

static vh_node_t *shell_get(shells_t *s, uint8_t kind, size_t size,
                            uint64_t edit) {
  vh_node_t *n = vh_node__alloc(kind, size, edit);
  if (n == NULL) return NULL;
  s->p[s->n] = n;
  s->sz[s->n] = size;
  s->n++;
  return n;
}

static void shells_free(shells_t *s) {
  while (s->n > 0) {
    s->n--;
    vh_node__free_shell(s->p[s->n], s->sz[s->n]);
  }
}

static inline void *body(vh_node_t *n) {
  return (char *)n + sizeof(*n);
}

/* Retain count values (keys and values of entries) after a copy: only
 * strings and tables hold a count, so this is a type test per slot, inline
 * (vh_val_retain's call per slot was ~10% of a path copy's instructions;
 * bench/README.md "perf/loop"). */
static void retain_vals(vh_val_t *kv, int count) {
  int i;
  for (i = 0; i < count; i++) {
    if (kv[i].type == VH_TSTR)
      kv[i].u.s->refc++;
    else if (kv[i].type == VH_TTAB)
      kv[i].u.t->h.refc++;
  }
}

/* Fill shell dst (same size as champ src) with a copy of src whose child
 * skip is replaced by nk (which brings its own reference); everything else
 * is retained. skip < 0: plain copy. */
static void fill_copy(vh_node_t *dst, const vh_node_t *src, int skip,
                      vh_node_t *nk) {
  size_t size = vh_champ__node_size(src);
  if (src->kind == VH_K_CHAMP) {
    const vh_champ_t *sc = (const vh_champ_t *)src;
    vh_node_t *const *sk = kids(sc);
    int j, nc = cnc(sc);
    for (j = 0; j < nc; j++) __builtin_prefetch(sk[j], 1);
  }
  memcpy(body(dst), (const char *)src + sizeof(vh_node_t),
         size - sizeof(vh_node_t));
  if (src->kind == VH_K_COLL) {
    vh_coll_t *l = (vh_coll_t *)dst;
    retain_vals(l->kv, 2 * (int)l->count);
  } else {
    vh_champ_t *c = (vh_champ_t *)dst;
    vh_node_t **k = kids(c);
    int j, nc = cnc(c);
    retain_vals(c->kv, 2 * cnd(c));
    for (j = 0; j < nc; j++) {
      if (j == skip)
        k[j] = nk;
      else
        vh_node__retain(k[j]);
    }
  }
}

/* Propagate a changed node newn (at level m, replacing path[m].n) up to
 * the root: exclusive parents swap in place, others were given a shell. */
static void apply_up(step_t *path, vh_node_t **cp, int m, vh_node_t *newn,
                     vh_node_t **rootp) {
  vh_node_t *old;
  int d;
  for (d = m - 1; d >= 0; d--) {
    if (path[d].excl) {
      vh_node_t **k = kids((vh_champ_t *)path[d].n);
      old = k[path[d].idx];
      k[path[d].idx] = newn;
      vh_node__release(old);
      return;
    }
    fill_copy(cp[d], path[d].n, path[d].idx, newn);
    newn = cp[d];
  }
  old = *rootp; /* the slot's content: path[0].n or the stub before it */
  *rootp = newn;
  vh_node__release(old);
}

/* Walk from the root towards key, loading stubs. Fills path[0..*depth]
 * with the (loaded) nodes; returns with the last level's node and, for
 * champ nodes, *bit / *i of the key's slot. Returns 1 if the key is at
 * entry *i of the last node, 0 if not, or a load's error (nothing was
 * changed: loads are invisible). */
static int walk(vh_node_t *n, uint64_t edit, vh_val_t key, uint32_t h,
                step_t *path, int *depth, int *i, uint32_t *bit) {
  int d = 0, shift = 0, pexcl = 1;
  for (;;) {
    int excl;
    vh_champ_t *c;
    if ((n = vh_node__res(n)) == NULL) return vh_trie__fault_err();
    excl = pexcl && edit != 0 && n->edit == edit && n->refc == 1;
    path[d].n = n;
    path[d].excl = excl;
    path[d].idx = -1;
    *depth = d;
    if (n->kind == VH_K_COLL) {
      vh_coll_t *l = (vh_coll_t *)n;
      uint32_t j;
      for (j = 0; j < l->count; j++) {
        int r = vh_key__cmp(l->kv[2 * j], key);
        if (r == 0) {
          *i = (int)j;
          return 1;
        }
        if (r > 0) break;
      }
      *i = (int)j; /* sorted insertion point */
      return 0;
    }
    c = (vh_champ_t *)n;
    if (!excl) { /* to be copied whole (fill_copy): fetch its lines now */
      size_t off, size = champ_bytes(cnd(c), cnc(c));
      for (off = 64; off < size; off += 64)
        __builtin_prefetch((const char *)c + off);
    }
    *bit = 1u << chunk(h, shift);
    if (c->datamap & *bit) {
      *i = popc(c->datamap & (*bit - 1));
      return key_is(&c->kv[2 * *i], &key);
    }
    if (!(c->nodemap & *bit)) {
      *i = popc(c->datamap & (*bit - 1));
      return 0;
    }
    path[d].idx = popc(c->nodemap & (*bit - 1));
    n = vh_node__res_slot(&kids(c)[path[d].idx]);
    if (n == NULL) return vh_trie__fault_err();
    pexcl = excl;
    shift += 5;
    d++;
  }
}

/* Allocate copies for the non-exclusive ancestors 0..m-1. */
static int alloc_ancestors(shells_t *s, step_t *path, int m, uint64_t edit,
                           vh_node_t **cp) {
  int d;
  for (d = 0; d < m; d++) {
    cp[d] = NULL;
    if (path[d].excl) continue;
    cp[d] = shell_get(s, VH_K_CHAMP, vh_champ__node_size(path[d].n), edit);
    if (cp[d] == NULL) return VH_ENOMEM;
  }
  return 0;
}

/* ---- set ---- */

/* Build (in preallocated shells) the subtree holding two entries whose
 * hashes agree below shift: a chain of one-child nodes down to where they
 * differ, or to a collision node. Returns the chain's top. */
static int chain_len(uint32_t h0, uint32_t h1, int shift) {
  int len = 1;
  while (shift < VH_CHAMP_COLL_SHIFT && chunk(h0, shift) == chunk(h1, shift)) {
    shift += 5;
    len++;
  }
  return len;
}

static vh_node_t *fill_chain(vh_node_t **ch, int len, int shift, vh_val_t k0,
                             vh_val_t v0, uint32_t h0, vh_val_t k1, vh_val_t v1,
                             uint32_t h1) {
  int d, s = shift + 5 * (len - 1);
  vh_node_t *below;
  if (s >= VH_CHAMP_COLL_SHIFT) {
    vh_coll_t *l = (vh_coll_t *)ch[len - 1];
    int first = vh_key__cmp(k0, k1) < 0;
    l->hash = h0;
    l->count = 2;
    l->kv[0] = first ? k0 : k1;
    l->kv[1] = first ? v0 : v1;
    l->kv[2] = first ? k1 : k0;
    l->kv[3] = first ? v1 : v0;
  } else {
    vh_champ_t *c = (vh_champ_t *)ch[len - 1];
    int first = chunk(h0, s) < chunk(h1, s);
    c->datamap = (1u << chunk(h0, s)) | (1u << chunk(h1, s));
    c->nodemap = 0;
    c->kv[0] = first ? k0 : k1;
    c->kv[1] = first ? v0 : v1;
    c->kv[2] = first ? k1 : k0;
    c->kv[3] = first ? v1 : v0;
  }
  below = ch[len - 1];
  for (d = len - 2; d >= 0; d--) {
    vh_champ_t *c = (vh_champ_t *)ch[d];
    c->datamap = 0;
    c->nodemap = 1u << chunk(h1, shift + 5 * d);
    kids(c)[0] = below;
    below = ch[d];
  }
  return below;
}

enum { T_REPLACE, T_INSERT, T_SPLIT, T_CADD };

int vh_champ__set(vh_node_t **rootp, uint64_t edit, vh_val_t key, uint32_t h,
                  vh_val_t val, int *added, vh_val_t **slotp) {
  step_t path[MAXD];
  vh_node_t *cp[MAXD], *ch[MAXD], *nt = NULL;
  shells_t s;
  int depth, i = 0, found, term, L, chlen = 0;
  uint32_t bit = 0, h0 = 0;
  vh_node_t *n;
  vh_val_t sk = key; /* what a new entry holds: key or its inline form */

  *added = 0;
  if (slotp != NULL) *slotp = NULL;
  s.n = 0;
  if (*rootp == NULL) {
    vh_champ_t *c =
        (vh_champ_t *)vh_node__alloc(VH_K_CHAMP, champ_bytes(1, 0), edit);
    sk = vh_key__stored(key);
    if (c == NULL) return VH_ENOMEM;
    c->datamap = 1u << chunk(h, 0);
    c->nodemap = 0;
    c->kv[0] = sk;
    c->kv[1] = val;
    vh_val_retain(sk);
    *rootp = &c->h;
    *added = 1;
    return 0;
  }
  found = walk(*rootp, edit, key, h, path, &depth, &i, &bit);
  if (found < 0) return found;
  L = depth;
  n = path[L].n;
  if (found) {
    term = T_REPLACE;
    if (path[L].excl) { /* in place: nothing else changes */
      vh_val_t *slot = n->kind == VH_K_COLL ? &((vh_coll_t *)n)->kv[2 * i + 1]
                                            : &((vh_champ_t *)n)->kv[2 * i + 1];
      vh_val_t old = *slot;
      *slot = val;
      vh_val_release(old);
      if (slotp != NULL) *slotp = slot;
      return 0;
    }
  } else if (n->kind == VH_K_COLL) {
    term = T_CADD;
  } else if (((vh_champ_t *)n)->datamap & bit) {
    term = T_SPLIT;
  } else {
    term = T_INSERT;
  }

  /* Phase 1: allocate. */
  if (term != T_REPLACE) sk = vh_key__stored(key);
  if (alloc_ancestors(&s, path, L, edit, cp) < 0) goto fail;
  if (term == T_REPLACE) {
    nt = shell_get(&s, n->kind, vh_champ__node_size(n), edit);
  } else if (term == T_CADD) {
    nt =
        shell_get(&s, VH_K_COLL, coll_bytes(((vh_coll_t *)n)->count + 1), edit);
  } else {
    vh_champ_t *c = (vh_champ_t *)n;
    if (term == T_INSERT) {
      nt = shell_get(&s, VH_K_CHAMP, champ_bytes(cnd(c) + 1, cnc(c)), edit);
    } else {
      int d, sh = 5 * (L + 1);
      h0 = vh_key__hash(c->kv[2 * i]);
      chlen = chain_len(h0, h, sh);
      nt = shell_get(&s, VH_K_CHAMP, champ_bytes(cnd(c) - 1, cnc(c) + 1), edit);
      for (d = 0; nt != NULL && d < chlen; d++) {
        int last = d == chlen - 1, cs = sh + 5 * d;
        if (last && cs >= VH_CHAMP_COLL_SHIFT)
          ch[d] = shell_get(&s, VH_K_COLL, coll_bytes(2), edit);
        else
          ch[d] = shell_get(&s, VH_K_CHAMP,
                            last ? champ_bytes(2, 0) : champ_bytes(0, 1), edit);
        if (ch[d] == NULL) goto fail;
      }
    }
  }
  if (nt == NULL) goto fail;

  /* Phase 2: fill (no failure possible from here on). */
  if (term == T_REPLACE) {
    vh_val_t *kv;
    fill_copy(nt, n, -1, NULL);
    kv = n->kind == VH_K_COLL ? ((vh_coll_t *)nt)->kv : ((vh_champ_t *)nt)->kv;
    vh_val_release(kv[2 * i + 1]); /* the copy's extra reference */
    kv[2 * i + 1] = val;
  } else if (term == T_CADD) {
    vh_coll_t *o = (vh_coll_t *)n, *l = (vh_coll_t *)nt;
    l->hash = o->hash;
    l->count = o->count + 1;
    memcpy(l->kv, o->kv, (size_t)i * 2 * sizeof(vh_val_t));
    l->kv[2 * i] = sk;
    l->kv[2 * i + 1] = val;
    memcpy(l->kv + 2 * i + 2, o->kv + 2 * i,
           (size_t)(o->count - i) * 2 * sizeof(vh_val_t));
    retain_vals(o->kv, 2 * (int)o->count);
    vh_val_retain(sk);
    *added = 1;
  } else {
    vh_champ_t *o = (vh_champ_t *)n, *c = (vh_champ_t *)nt;
    int nd = cnd(o), nc = cnc(o), j;
    vh_node_t **ok = kids(o), **nk;
    retain_vals(o->kv, 2 * nd);
    for (j = 0; j < nc; j++) vh_node__retain(ok[j]);
    vh_val_retain(sk);
    *added = 1;
    if (term == T_INSERT) {
      c->datamap = o->datamap | bit;
      c->nodemap = o->nodemap;
      memcpy(c->kv, o->kv, (size_t)i * 2 * sizeof(vh_val_t));
      c->kv[2 * i] = sk;
      c->kv[2 * i + 1] = val;
      memcpy(c->kv + 2 * i + 2, o->kv + 2 * i,
             (size_t)(nd - i) * 2 * sizeof(vh_val_t));
      memcpy(kids(c), ok, (size_t)nc * sizeof(vh_node_t *));
    } else {
      int ci = popc(o->nodemap & (bit - 1));
      vh_node_t *top = fill_chain(ch, chlen, 5 * (L + 1), o->kv[2 * i],
                                  o->kv[2 * i + 1], h0, sk, val, h);
      c->datamap = o->datamap & ~bit;
      c->nodemap = o->nodemap | bit;
      memcpy(c->kv, o->kv, (size_t)i * 2 * sizeof(vh_val_t));
      memcpy(c->kv + 2 * i, o->kv + 2 * i + 2,
             (size_t)(nd - i - 1) * 2 * sizeof(vh_val_t));
      nk = kids(c);
      memcpy(nk, ok, (size_t)ci * sizeof(vh_node_t *));
      nk[ci] = top;
      memcpy(nk + ci + 1, ok + ci, (size_t)(nc - ci) * sizeof(vh_node_t *));
    }
  }
  apply_up(path, cp, L, nt, rootp);
  return 0;
fail:
  shells_free(&s);
  return VH_ENOMEM;
}

/* ---- delete ---- */

int vh_champ__del(vh_node_t **rootp, uint64_t edit, vh_val_t key, uint32_t h,
                  vh_val_t *old, int *removed) {
  step_t path[MAXD];
  vh_node_t *cp[MAXD], *nt = NULL, *n;
  shells_t s;
  int depth, i = 0, L, M, single = 0;
  uint32_t bit = 0;
  vh_val_t k1, v1, *kv;

  *removed = 0;
  *old = vh_nil();
  s.n = 0;
  if (*rootp == NULL) return 0;
  if ((L = walk(*rootp, edit, key, h, path, &depth, &i, &bit)) <= 0) return L;
  L = M = depth;
  n = path[L].n;
  kv = n->kind == VH_K_COLL ? ((vh_coll_t *)n)->kv : ((vh_champ_t *)n)->kv;

  if (n->kind == VH_K_COLL) {
    vh_coll_t *l = (vh_coll_t *)n;
    if (l->count == 2) {
      single = 1;
    } else {
      nt = shell_get(&s, VH_K_COLL, coll_bytes(l->count - 1), edit);
      if (nt == NULL) goto fail;
    }
  } else {
    vh_champ_t *c = (vh_champ_t *)n;
    int nd = cnd(c), nc = cnc(c);
    if (L > 0 && nd == 2 && nc == 0) {
      single = 1;
    } else if (!(L == 0 && nd == 1 && nc == 0)) {
      nt = shell_get(&s, VH_K_CHAMP, champ_bytes(nd - 1, nc), edit);
      if (nt == NULL) goto fail;
    }
  }
  if (single) {
    /* The subtree keeps one key: inline it into the nearest ancestor that
     * has other content (or the root). */
    vh_champ_t *a;
    k1 = kv[2 * (1 - i)];
    v1 = kv[2 * (1 - i) + 1];
    M = L - 1;
    while (M > 0) {
      a = (vh_champ_t *)path[M].n;
      if (!(cnd(a) == 0 && cnc(a) == 1)) break;
      M--;
    }
    a = (vh_champ_t *)path[M].n;
    nt = shell_get(&s, VH_K_CHAMP, champ_bytes(cnd(a) + 1, cnc(a) - 1), edit);
    if (nt == NULL) goto fail;
  }
  if (alloc_ancestors(&s, path, M, edit, cp) < 0) goto fail;

  /* Phase 2: fill. */
  *old = kv[2 * i + 1];
  vh_val_retain(*old);
  *removed = 1;
  if (single) {
    vh_champ_t *a = (vh_champ_t *)path[M].n, *c = (vh_champ_t *)nt;
    uint32_t b = 1u << chunk(h, 5 * M);
    int nd = cnd(a), nc = cnc(a), di = popc(a->datamap & (b - 1));
    int ci = path[M].idx, j;
    vh_node_t **ak = kids(a), **ck;
    c->datamap = a->datamap | b;
    c->nodemap = a->nodemap & ~b;
    memcpy(c->kv, a->kv, (size_t)di * 2 * sizeof(vh_val_t));
    c->kv[2 * di] = k1;
    c->kv[2 * di + 1] = v1;
    memcpy(c->kv + 2 * di + 2, a->kv + 2 * di,
           (size_t)(nd - di) * 2 * sizeof(vh_val_t));
    ck = kids(c);
    memcpy(ck, ak, (size_t)ci * sizeof(vh_node_t *));
    memcpy(ck + ci, ak + ci + 1, (size_t)(nc - ci - 1) * sizeof(vh_node_t *));
    retain_vals(c->kv, 2 * (nd + 1));
    for (j = 0; j < nc - 1; j++) vh_node__retain(ck[j]);
  } else if (nt != NULL && n->kind == VH_K_COLL) {
    vh_coll_t *o = (vh_coll_t *)n, *l = (vh_coll_t *)nt;
    l->hash = o->hash;
    l->count = o->count - 1;
    memcpy(l->kv, o->kv, (size_t)i * 2 * sizeof(vh_val_t));
    memcpy(l->kv + 2 * i, o->kv + 2 * i + 2,
           (size_t)(o->count - i - 1) * 2 * sizeof(vh_val_t));
    retain_vals(l->kv, 2 * (int)l->count);
  } else if (nt != NULL) {
    vh_champ_t *o = (vh_champ_t *)n, *c = (vh_champ_t *)nt;
    int nd = cnd(o), nc = cnc(o), j;
    vh_node_t **ck;
    c->datamap = o->datamap & ~bit;
    c->nodemap = o->nodemap;
    memcpy(c->kv, o->kv, (size_t)i * 2 * sizeof(vh_val_t));
    memcpy(c->kv + 2 * i, o->kv + 2 * i + 2,
           (size_t)(nd - i - 1) * 2 * sizeof(vh_val_t));
    ck = kids(c);
    memcpy(ck, kids(o), (size_t)nc * sizeof(vh_node_t *));
    retain_vals(c->kv, 2 * (nd - 1));
    for (j = 0; j < nc; j++) vh_node__retain(ck[j]);
  }
  apply_up(path, cp, M, nt, rootp);
  return 0;
fail:
  shells_free(&s);
  return VH_ENOMEM;
}

/* ---- iteration ---- */

void vh_champ__iter_start(vh_iter_t *it, const vh_node_t *root) {
  it->depth = 0;
  if (root != NULL && (root = vh_node__res(root)) != NULL) {
    it->stack[0].node = root;
    it->stack[0].pos = 0;
    it->depth = 1;
  }
}

/* An entry's key is about to be handed out: an inline key becomes an
 * ordinary string slot (vh_trie_int.h, "Inline keys"). Out of memory
 * sets the fault and ends the walk, as a failed load does. */
static int key_out(vh_iter_t *it, vh_val_t *k) {
  if (VH_UNLIKELY(k->type == VH_TIKEY) && vh_key__out(k) < 0) {
    vh_trie__fault(VH_ENOMEM, 0, "out of memory for an iterated key");
    it->depth = 0;
    return VH_ENOMEM;
  }
  return 0;
}

int vh_champ__iter_step(vh_iter_t *it, vh_val_t *k, vh_val_t *v) {
  while (it->depth > 0) {
    int *pos = &it->stack[it->depth - 1].pos;
    const vh_node_t *n = it->stack[it->depth - 1].node;
    if (n->kind == VH_K_COLL) {
      const vh_coll_t *l = (const vh_coll_t *)n;
      if ((uint32_t)*pos < l->count) {
        if (VH_UNLIKELY(key_out(it, (vh_val_t *)&l->kv[2 * *pos]) < 0))
          return 0;
        *k = l->kv[2 * *pos];
        *v = l->kv[2 * *pos + 1];
        (*pos)++;
        return 1;
      }
    } else {
      const vh_champ_t *c = (const vh_champ_t *)n;
      int nd = cnd(c);
      if (*pos < nd) {
        if (VH_UNLIKELY(key_out(it, (vh_val_t *)&c->kv[2 * *pos]) < 0))
          return 0;
        *k = c->kv[2 * *pos];
        *v = c->kv[2 * *pos + 1];
        (*pos)++;
        return 1;
      }
      if (*pos < nd + cnc(c)) {
        const vh_node_t *child = vh_node__res_slot(&kids(c)[*pos - nd]);
        if (child == NULL) { /* fault set: end the walk */
          it->depth = 0;
          return 0;
        }
        (*pos)++;
        it->stack[it->depth].node = child;
        it->stack[it->depth].pos = 0;
        it->depth++;
        continue;
      }
    }
    it->depth--;
  }
  return 0;
}

int vh_champ__iter_seek(vh_iter_t *it, const vh_node_t *n, vh_val_t key,
                        uint32_t h) {
  int shift = 0;
  it->depth = 0; /* key: as next() had it, a string slot's own string */
  while (n != NULL) {
    const vh_champ_t *c;
    uint32_t bit;
    if ((n = vh_node__res(n)) == NULL) break; /* fault set */
    it->stack[it->depth].node = n;
    it->depth++;
    if (n->kind == VH_K_COLL) {
      const vh_coll_t *l = (const vh_coll_t *)n;
      uint32_t i;
      for (i = 0; i < l->count; i++) {
        if (key_is(&l->kv[2 * i], &key)) {
          it->stack[it->depth - 1].pos = (int)i + 1;
          return 0;
        }
      }
      break;
    }
    c = (const vh_champ_t *)n;
    bit = 1u << chunk(h, shift);
    if (c->datamap & bit) {
      int i = popc(c->datamap & (bit - 1));
      if (!key_is(&c->kv[2 * i], &key)) break;
      it->stack[it->depth - 1].pos = i + 1;
      return 0;
    }
    if (!(c->nodemap & bit)) break;
    it->stack[it->depth - 1].pos = cnd(c) + popc(c->nodemap & (bit - 1)) + 1;
    n = vh_node__res_slot(&kids(c)[popc(c->nodemap & (bit - 1))]);
    shift += 5;
  }
  it->depth = 0;
  return VH_ENOTFOUND;
}

/* ---- deep copy, walking, release ---- */

vh_node_t *vh_champ__copy_deep(const vh_node_t *n, uint64_t edit) {
  size_t size;
  vh_node_t *d;
  vh_champ_t *c;
  vh_node_t **k;
  int j, nc;
  if ((n = vh_node__res(n)) == NULL) return NULL; /* fault set */
  size = vh_champ__node_size(n);
  if ((d = vh_node__alloc(n->kind, size, edit)) == NULL) return NULL;
  memcpy(body(d), (const char *)n + sizeof(vh_node_t),
         size - sizeof(vh_node_t));
  if (n->kind == VH_K_COLL) {
    retain_vals(((vh_coll_t *)d)->kv, 2 * (int)((vh_coll_t *)d)->count);
    return d;
  }
  c = (vh_champ_t *)d;
  k = kids(c);
  nc = cnc(c);
  for (j = 0; j < nc; j++) {
    vh_node_t *nk = vh_champ__copy_deep(k[j], edit);
    if (nk == NULL) {
      while (j-- > 0) vh_node__release(k[j]);
      vh_node__free_shell(d, size);
      return NULL;
    }
    k[j] = nk;
  }
  retain_vals(c->kv, 2 * cnd(c));
  return d;
}

int vh_champ__each_val(vh_node_t *n, int (*fn)(vh_val_t *slot, void *ud),
                       void *ud) {
  int i, r;
  if (n == NULL) return 0;
  if ((n = vh_node__res(n)) == NULL) return vh_trie__fault_err();
  if (n->kind == VH_K_COLL) {
    vh_coll_t *l = (vh_coll_t *)n;
    for (i = 0; i < (int)l->count; i++)
      if ((r = fn(&l->kv[2 * i + 1], ud)) < 0) return r;
  } else {
    vh_champ_t *c = (vh_champ_t *)n;
    int nd = cnd(c), nc = cnc(c);
    for (i = 0; i < nd; i++)
      if ((r = fn(&c->kv[2 * i + 1], ud)) < 0) return r;
    for (i = 0; i < nc; i++)
      if ((r = vh_champ__each_val(kids(c)[i], fn, ud)) < 0) return r;
  }
  return 0;
}

static void drop_val(vh_val_t v, void (*drop)(vh_node_t *c, void *ud),
                     void *ud) {
  if (v.type == VH_TSTR)
    vh_str_release(v.u.s);
  else if (v.type == VH_TTAB)
    drop(&v.u.t->h, ud);
}

void vh_champ__drop_refs(vh_node_t *n, void (*drop)(vh_node_t *c, void *ud),
                         void *ud) {
  int i;
  if (n->kind == VH_K_COLL) {
    vh_coll_t *l = (vh_coll_t *)n;
    for (i = 0; i < 2 * (int)l->count; i++) drop_val(l->kv[i], drop, ud);
  } else {
    vh_champ_t *c = (vh_champ_t *)n;
    int nd = cnd(c), nc = cnc(c);
    for (i = 0; i < 2 * nd; i++) drop_val(c->kv[i], drop, ud);
    for (i = 0; i < nc; i++) drop(kids(c)[i], ud);
  }
}

/* ---- check ---- */

static int bad(const char **why, const char *msg) {
  *why = msg;
  return -1;
}

static int check_entry(vh_val_t k, vh_val_t v, const vh_tab_t *tab,
                       const char **why, int nest) {
  vh_val_t nk = k;
  if (k.type == VH_TIKEY) {
    char buf[VH_IKEY_MAX];
    size_t len = vh_key__ibytes(&k, buf);
    if (len > VH_IKEY_MAX) return bad(why, "hash part: inline key too long");
    nk = vh_key__ikey(buf, len);
    if (!vh_key__ieq(&k, &nk))
      return bad(why, "hash part: inline key not zero-padded");
    nk = k;
  } else if (k.type == VH_TNIL || k.type == VH_TTAB || vh_key_norm(&nk) < 0 ||
             nk.type != k.type)
    return bad(why, "hash part: key not normalized");
  if (k.type == VH_TINT && k.u.i >= 1 && k.u.i <= tab->arr.n + 1)
    return bad(why, "hash part: key 1..n+1 belongs to the array part");
  if (k.type == VH_TSTR && k.u.s->refc == 0)
    return bad(why, "hash part: dead key string");
  if (v.type == VH_TNIL) return bad(why, "hash part: nil value stored");
  return vh_val__check(v, why, nest);
}

static int check_node(const vh_node_t *n, int shift, uint32_t prefix,
                      int is_root, const vh_tab_t *tab, size_t *count,
                      const char **why, int nest) {
  int i;
  uint32_t mask =
      shift + 5 >= 32 ? 0xFFFFFFFFu : (uint32_t)((1u << (shift + 5)) - 1);
  if (n->refc == 0) return bad(why, "hash part: node with refcount 0");
  if ((n = vh_node__res(n)) == NULL)
    return bad(why, "hash part: a node failed to load (see vh_trie_fault)");
  if (n->refc == 0) return bad(why, "hash part: node with refcount 0");
  if (shift >= VH_CHAMP_COLL_SHIFT) {
    const vh_coll_t *l = (const vh_coll_t *)n;
    if (n->kind != VH_K_COLL) return bad(why, "hash part: depth-7 non-leaf");
    if (l->count < 2) return bad(why, "hash part: collision node < 2");
    if (l->hash != prefix) return bad(why, "hash part: collision hash");
    for (i = 0; i < (int)l->count; i++) {
      if (vh_key__hash(l->kv[2 * i]) != l->hash)
        return bad(why, "hash part: collision key hash differs");
      if (i > 0 && vh_key__cmp(l->kv[2 * i - 2], l->kv[2 * i]) >= 0)
        return bad(why, "hash part: collision node not sorted");
      if (check_entry(l->kv[2 * i], l->kv[2 * i + 1], tab, why, nest) < 0)
        return -1;
    }
    *count += l->count;
    return 0;
  }
  if (n->kind != VH_K_CHAMP)
    return bad(why, "hash part: collision node above depth 7");
  {
    const vh_champ_t *c = (const vh_champ_t *)n;
    int nd = cnd(c), nc = cnc(c), di = 0, ci = 0;
    uint32_t b;
    if (c->datamap & c->nodemap) return bad(why, "hash part: bitmaps overlap");
    if (is_root && nd + nc == 0) return bad(why, "hash part: empty root");
    if (!is_root && nd + nc == 0) return bad(why, "hash part: empty node");
    if (!is_root && nd == 1 && nc == 0)
      return bad(why, "hash part: singleton node not inlined");
    if (shift == 30 && ((c->datamap | c->nodemap) >> 4))
      return bad(why, "hash part: level-6 bit beyond the hash");
    for (b = 0; b < 32; b++) {
      uint32_t bit = 1u << b;
      if (c->datamap & bit) {
        vh_val_t k = c->kv[2 * di], v = c->kv[2 * di + 1];
        if ((vh_key__hash(k) & mask) != (prefix | (b << shift)))
          return bad(why, "hash part: key in the wrong slot");
        if (check_entry(k, v, tab, why, nest) < 0) return -1;
        di++;
      } else if (c->nodemap & bit) {
        const vh_node_t *k = kids(c)[ci++];
        if (check_node(k, shift + 5, prefix | (b << shift), 0, tab, count, why,
                       nest) < 0)
          return -1;
      }
    }
    *count += (size_t)nd;
  }
  return 0;
}

int vh_champ__check(const vh_node_t *root, const vh_tab_t *tab, size_t *count,
                    const char **why, int nest) {
  *count = 0;
  if (root == NULL) return 0;
  if ((root = vh_node__res(root)) == NULL)
    return bad(why, "hash part: the root failed to load (see vh_trie_fault)");
  if (root->kind != VH_K_CHAMP)
    return bad(why, "hash part: root is not a CHAMP node");
  return check_node(root, 0, 0, 1, tab, count, why, nest);
}
