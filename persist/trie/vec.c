/*
 * vec.c - the array part of a table: a persistent 32-way vector in the
 * style of Clojure's PersistentVector, with a tail.
 *
 * LAYOUT. Slots 0..n-1 (Lua keys 1..n). The last 1..32 slots live in the
 * tail leaf; slots [0, tailoff) live in full 32-slot leaves under a tree of
 * inner nodes, tailoff = ((n - 1) >> 5) << 5. The root sits at level
 * `shift` (5: its children are leaves; each level up multiplies by 32);
 * slot i is found by following child (i >> s) & 31 for s = shift, shift-5,
 * ..., 5, then slot i & 31 of the leaf. The tree is packed to the left: all
 * leaves are full, and the root has at least two children when shift > 5.
 * Slots may hold nil (holes); the table keeps slot n-1 non-nil.
 *
 * SLACK. Nodes record slots in use (h.a) and allocated (h.b). Copies are
 * exact; an exclusive tail grows by doubling (up to 32) so appends inside
 * one transaction allocate only now and then; an exclusive inner node that
 * lost a child keeps the spare slot and reuses it on the next append.
 *
 * WRITES follow the plan of champ.c: walk, allocate every shell (copies of
 * non-exclusive nodes on the path, grown nodes, new paths), then fill and
 * swap; VH_ENOMEM leaves everything unchanged. The owner of the vh_vec_t
 * (its table) is exclusive whenever these functions are called.
 */
#include <string.h>

#include "vh_trie_int.h"

#define W VH_VEC_W
#define MAXL 14 /* levels of a tree over 2^63 slots, plus the leaf */

static inline size_t leaf_bytes(int cap) {
  return sizeof(vh_vleaf_t) + (size_t)cap * sizeof(vh_val_t);
}

static inline size_t inner_bytes(int cap) {
  return sizeof(vh_vinner_t) + (size_t)cap * sizeof(vh_node_t *);
}

size_t vh_vec__node_size(const vh_node_t *n) {
  return n->kind == VH_K_VLEAF ? leaf_bytes(n->b) : inner_bytes(n->b);
}

static inline int64_t tailoff(const vh_vec_t *v) {
  return v->n == 0 ? 0 : ((v->n - 1) >> 5) << 5;
}

static inline int excl_of(const vh_node_t *n, uint64_t edit, int pexcl) {
  return pexcl && edit != 0 && n->edit == edit && n->refc == 1;
}

typedef struct shells {
  vh_node_t *p[MAXL + 4];
  int n;
} shells_t;

static vh_node_t *shell(shells_t *s, uint8_t kind, int len, int cap,
                        uint64_t edit) {
  size_t size = kind == VH_K_VLEAF ? leaf_bytes(cap) : inner_bytes(cap);
  vh_node_t *n = vh_node__alloc(kind, size, edit);
  if (n == NULL) return NULL;
  n->a = (uint8_t)len;
  n->b = (uint8_t)cap;
  s->p[s->n++] = n;
  return n;
}

static void shells_free(shells_t *s) {
  while (s->n > 0) {
    vh_node_t *n = s->p[--s->n];
    vh_node__free_shell(n, vh_vec__node_size(n));
  }
}

/* Copy node src into shell dst (dst->a already set, <= src->a slots are
 * copied), retaining what it holds, except child/slot skip which is
 * replaced by nk (a reference of its own). */
static void fill_inner(vh_node_t *dst, const vh_node_t *src, int skip,
                       vh_node_t *nk) {
  vh_vinner_t *d = (vh_vinner_t *)dst;
  const vh_vinner_t *o = (const vh_vinner_t *)src;
  int j, len = dst->a < src->a ? dst->a : src->a;
  for (j = 0; j < len; j++) {
    d->c[j] = o->c[j];
    if (j == skip)
      d->c[j] = nk;
    else
      vh_node__retain(d->c[j]);
  }
}

static void fill_leaf(vh_node_t *dst, const vh_node_t *src) {
  vh_vleaf_t *d = (vh_vleaf_t *)dst;
  const vh_vleaf_t *o = (const vh_vleaf_t *)src;
  int j, len = dst->a < src->a ? dst->a : src->a;
  for (j = 0; j < len; j++) {
    d->v[j] = o->v[j];
    vh_val_retain(d->v[j]);
  }
}

/* ---- reads ---- */

/* Reads of a vector that may hold stubs: load on the way (a slot that is
 * the stub's only holder takes the loaded node). &vh_trie__nil on a
 * failed load (fault set). */
static const vh_val_t *get_lazy(vh_vec_t *v, int64_t i) {
  vh_node_t *n, *own, **slot;
  uint32_t s;
  if (i >= tailoff(v)) {
    if ((n = vh_node__res(&v->tail->h)) == NULL) return &vh_trie__nil;
    if (n != &v->tail->h && (own = vh_node__take(&v->tail->h)) != NULL)
      v->tail = (vh_vleaf_t *)own;
    return &((vh_vleaf_t *)n)->v[i - tailoff(v)];
  }
  if ((n = vh_node__res(&v->root->h)) == NULL) return &vh_trie__nil;
  if (n != &v->root->h && (own = vh_node__take(&v->root->h)) != NULL)
    v->root = (vh_vinner_t *)own;
  for (s = v->shift; n != NULL && s > 0; s -= 5) {
    slot = &((vh_vinner_t *)n)->c[(i >> s) & 31];
    n = vh_node__res_slot(slot);
  }
  return n == NULL ? &vh_trie__nil : &((const vh_vleaf_t *)n)->v[i & 31];
}

const vh_val_t *vh_vec__get(const vh_vec_t *v, int64_t i) {
  const vh_node_t *n;
  uint32_t s;
  if (VH_UNLIKELY(v->lazy)) return get_lazy((vh_vec_t *)v, i);
  if (i >= tailoff(v)) return &v->tail->v[i - tailoff(v)];
  n = &v->root->h;
  for (s = v->shift; s > 0; s -= 5)
    n = ((const vh_vinner_t *)n)->c[(i >> s) & 31];
  return &((const vh_vleaf_t *)n)->v[i & 31];
}

/* ---- path walking shared by set and pop ---- */

typedef struct step {
  vh_node_t *n;
  int excl;
  int idx; /* child index taken */
} step_t;

/* Put newn in place of path[m].n: exclusive parents swap, the others were
 * given copies cp[d]; a new root replaces v->root. */
static void apply_up(vh_vec_t *v, step_t *path, vh_node_t **cp, int m,
                     vh_node_t *newn) {
  int d;
  for (d = m - 1; d >= 0; d--) {
    if (path[d].excl) {
      vh_vinner_t *p = (vh_vinner_t *)path[d].n;
      vh_node_t *old = p->c[path[d].idx];
      p->c[path[d].idx] = newn;
      vh_node__release(old);
      return;
    }
    fill_inner(cp[d], path[d].n, path[d].idx, newn);
    newn = cp[d];
  }
  if (m >= 0 && newn != &v->root->h) {
    vh_node_t *old = &v->root->h;
    v->root = (vh_vinner_t *)newn;
    vh_node__release(old);
  }
}

static int alloc_copies(shells_t *s, step_t *path, int m, uint64_t edit,
                        vh_node_t **cp) {
  int d;
  for (d = 0; d < m; d++) {
    cp[d] = NULL;
    if (path[d].excl) continue;
    cp[d] = shell(s, VH_K_VINNER, path[d].n->a, path[d].n->a, edit);
    if (cp[d] == NULL) return VH_ENOMEM;
  }
  return 0;
}

/* Replace the tail by the copy nt (already allocated) of the loaded tail
 * lt, releasing the old slot content (lt, or the stub standing for it). */
static void swap_tail(vh_vec_t *v, vh_node_t *nt, const vh_node_t *lt) {
  vh_vleaf_t *old = v->tail;
  fill_leaf(nt, lt);
  v->tail = (vh_vleaf_t *)nt;
  vh_node__release(&old->h);
}

/* The loaded tail, or NULL with the fault set. */
static inline vh_vleaf_t *tail_of(const vh_vec_t *v) {
  return (vh_vleaf_t *)vh_node__res(&v->tail->h);
}

/* ---- set ---- */

int vh_vec__set(vh_vec_t *v, uint64_t edit, int64_t i, vh_val_t val) {
  step_t path[MAXL];
  vh_node_t *cp[MAXL], *n, *nl;
  shells_t s;
  vh_val_t old;
  int d, depth;
  uint32_t sh;
  s.n = 0;
  if (i >= tailoff(v)) {
    vh_vleaf_t *t = tail_of(v);
    int j = (int)(i - tailoff(v));
    if (t == NULL) return vh_trie__fault_err();
    if (!excl_of(&t->h, edit, 1)) {
      nl = shell(&s, VH_K_VLEAF, t->h.a, t->h.a, edit);
      if (nl == NULL) return VH_ENOMEM;
      swap_tail(v, nl, &t->h);
      t = v->tail;
    }
    old = t->v[j];
    t->v[j] = val;
    vh_val_release(old);
    return 0;
  }
  /* Tree: walk to the leaf, loading stubs (nothing changes before). */
  n = &v->root->h;
  d = 0;
  for (sh = v->shift;; sh -= 5) {
    if ((n = vh_node__res(n)) == NULL) return vh_trie__fault_err();
    path[d].n = n;
    path[d].excl = excl_of(n, edit, d == 0 ? 1 : path[d - 1].excl);
    if (sh == 0) break;
    path[d].idx = (int)((i >> sh) & 31);
    n = ((vh_vinner_t *)n)->c[path[d].idx];
    d++;
  }
  depth = d; /* path[depth] is the leaf */
  if (path[depth].excl) {
    vh_vleaf_t *l = (vh_vleaf_t *)path[depth].n;
    old = l->v[i & 31];
    l->v[i & 31] = val;
    vh_val_release(old);
    return 0;
  }
  if (alloc_copies(&s, path, depth, edit, cp) < 0 ||
      (nl = shell(&s, VH_K_VLEAF, W, W, edit)) == NULL) {
    shells_free(&s);
    return VH_ENOMEM;
  }
  fill_leaf(nl, path[depth].n);
  vh_val_release(((vh_vleaf_t *)nl)->v[i & 31]);
  ((vh_vleaf_t *)nl)->v[i & 31] = val;
  apply_up(v, path, cp, depth, nl);
  return 0;
}

/* ---- push ---- */

/* Push the full tail into the tree and start a new tail holding val. */
static int push_tail(vh_vec_t *v, uint64_t edit, vh_val_t val) {
  step_t path[MAXL];
  vh_node_t *cp[MAXL], *np[MAXL], *nt, *at = NULL, *top;
  shells_t s;
  int64_t toff = v->n - W; /* first slot of the full tail */
  int d = 0, m = 0, nnp = 0, overflow = 0, tex, r = VH_ENOMEM;
  uint32_t sh = 0, ash = 0;
  s.n = 0;
  path[0].n = NULL; /* (silences a false maybe-uninitialized warning) */
  if (tail_of(v) == NULL) return vh_trie__fault_err();
  tex = excl_of(&tail_of(v)->h, edit, 1);
  nt = shell(&s, VH_K_VLEAF, 1, tex ? 8 : 1, edit);
  if (nt == NULL) goto fail;
  if (v->root == NULL) {
    ash = 5; /* new root at level 5 holding the tail */
    at = shell(&s, VH_K_VINNER, 1, 1, edit);
    if (at == NULL) goto fail;
  } else if ((uint64_t)(v->n >> 5) > ((uint64_t)1 << v->shift)) {
    overflow = 1; /* new root one level up: [old root, new path] */
    ash = v->shift + 5;
    at = shell(&s, VH_K_VINNER, 2, 2, edit);
    if (at == NULL) goto fail;
  } else {
    vh_node_t *n = &v->root->h;
    for (sh = v->shift;; sh -= 5) {
      int sub = (int)((toff >> sh) & 31);
      if ((n = vh_node__res(n)) == NULL) {
        r = vh_trie__fault_err();
        goto fail;
      }
      path[d].n = n;
      path[d].excl = excl_of(n, edit, d == 0 ? 1 : path[d - 1].excl);
      path[d].idx = sub;
      if (sh == 5 || sub >= n->a) break;
      n = ((vh_vinner_t *)n)->c[sub];
      d++;
    }
    m = d; /* attach level */
    ash = sh;
    if (alloc_copies(&s, path, m, edit, cp) < 0) goto fail;
    if (!(path[m].excl && path[m].n->a < path[m].n->b)) {
      at = shell(&s, VH_K_VINNER, path[m].n->a + 1, path[m].n->a + 1, edit);
      if (at == NULL) goto fail;
    }
  }
  /* New path from level ash-5 down to the leaf's parent. */
  for (sh = ash - 5; sh >= 5; sh -= 5) {
    np[nnp] = shell(&s, VH_K_VINNER, 1, 1, edit);
    if (np[nnp] == NULL) goto fail;
    nnp++;
  }

  /* Fill. The tail's reference moves into the tree. */
  top = &v->tail->h;
  for (d = nnp - 1; d >= 0; d--) {
    ((vh_vinner_t *)np[d])->c[0] = top;
    top = np[d];
  }
  if (v->root == NULL) {
    ((vh_vinner_t *)at)->c[0] = top;
    v->root = (vh_vinner_t *)at;
    v->shift = 5;
  } else if (overflow) {
    ((vh_vinner_t *)at)->c[0] = &v->root->h;
    ((vh_vinner_t *)at)->c[1] = top;
    v->root = (vh_vinner_t *)at;
    v->shift += 5;
  } else if (at == NULL) { /* exclusive with a spare slot: in place */
    vh_vinner_t *p = (vh_vinner_t *)path[m].n;
    p->c[p->h.a++] = top;
  } else {
    fill_inner(at, path[m].n, -1, NULL);
    ((vh_vinner_t *)at)->c[path[m].n->a] = top;
    apply_up(v, path, cp, m, at);
  }
  ((vh_vleaf_t *)nt)->v[0] = val;
  v->tail = (vh_vleaf_t *)nt;
  v->n++;
  return 0;
fail:
  shells_free(&s);
  return r;
}

int vh_vec__push(vh_vec_t *v, uint64_t edit, vh_val_t val) {
  vh_vleaf_t *t;
  shells_t s;
  int tl;
  s.n = 0;
  if (v->n == 0) {
    vh_node_t *nt = shell(&s, VH_K_VLEAF, 1, 1, edit);
    if (nt == NULL) return VH_ENOMEM;
    ((vh_vleaf_t *)nt)->v[0] = val;
    v->tail = (vh_vleaf_t *)nt;
    v->root = NULL;
    v->shift = 5;
    v->n = 1;
    return 0;
  }
  tl = (int)(v->n - tailoff(v));
  if (tl == W) return push_tail(v, edit, val);
  if ((t = tail_of(v)) == NULL) return vh_trie__fault_err();
  if (!(excl_of(&t->h, edit, 1) && tl < t->h.b)) {
    int cap = excl_of(&t->h, edit, 1) ? 2 * t->h.b : tl + 1;
    vh_node_t *nt = shell(&s, VH_K_VLEAF, tl, cap > W ? W : cap, edit);
    if (nt == NULL) return VH_ENOMEM;
    swap_tail(v, nt, &t->h);
    t = v->tail;
  }
  t->v[tl] = val;
  t->h.a++;
  v->n++;
  return 0;
}

/* ---- pop ---- */

int vh_vec__pop(vh_vec_t *v, uint64_t edit, vh_val_t *old) {
  step_t path[MAXL];
  vh_node_t *cp[MAXL], *nb = NULL, *leaf;
  shells_t s;
  vh_vleaf_t *t = tail_of(v);
  int tl = (int)(v->n - tailoff(v)), d, depth, b, r = VH_ENOMEM;
  uint32_t sh;
  s.n = 0;
  if (t == NULL) return vh_trie__fault_err();
  if (tl > 1) {
    if (excl_of(&t->h, edit, 1)) {
      *old = t->v[tl - 1]; /* the slot's reference moves to the caller */
      t->v[tl - 1] = vh_nil();
      t->h.a--;
    } else {
      vh_node_t *nt = shell(&s, VH_K_VLEAF, tl - 1, tl - 1, edit);
      if (nt == NULL) return VH_ENOMEM;
      *old = t->v[tl - 1];
      vh_val_retain(*old);
      swap_tail(v, nt, &t->h);
    }
    v->n--;
    return 0;
  }
  if (v->n == 1) {
    *old = t->v[0];
    vh_val_retain(*old);
    vh_node__release(&v->tail->h); /* the slot's content */
    v->tail = NULL;
    v->n = 0;
    v->shift = 5;
    return 0;
  }
  /* The tail empties: the tree's last leaf (as its parent holds it: maybe
   * a stub) becomes the tail. */
  {
    vh_node_t *n = &v->root->h;
    int64_t last = v->n - 2;
    d = 0;
    for (sh = v->shift;; sh -= 5) {
      if ((n = vh_node__res(n)) == NULL) return vh_trie__fault_err();
      path[d].n = n;
      path[d].excl = excl_of(n, edit, d == 0 ? 1 : path[d - 1].excl);
      path[d].idx = (int)((last >> sh) & 31);
      n = ((vh_vinner_t *)n)->c[path[d].idx];
      if (sh == 5) break;
      d++;
    }
    leaf = n;
    depth = d; /* path[depth] is the leaf's parent */
  }
  for (b = depth; b >= 0 && path[b].n->a == 1; b--) {
  }
  if (b >= 0) {
    if (alloc_copies(&s, path, b, edit, cp) < 0) goto fail;
    if (!path[b].excl) {
      nb = shell(&s, VH_K_VINNER, path[b].n->a - 1, path[b].n->a - 1, edit);
      if (nb == NULL) goto fail;
    }
  }
  /* Fill: no failure from here on. */
  *old = t->v[0];
  vh_val_retain(*old);
  vh_node__retain(leaf); /* the new tail's reference */
  if (b < 0) {
    vh_node__release(&v->root->h);
    v->root = NULL;
    v->shift = 5;
  } else {
    if (nb == NULL) {
      vh_vinner_t *p = (vh_vinner_t *)path[b].n;
      vh_node_t *gone = p->c[p->h.a - 1];
      p->h.a--; /* exclusive, so every ancestor is too: done */
      vh_node__release(gone);
    } else {
      fill_inner(nb, path[b].n, -1, NULL);
      apply_up(v, path, cp, b, nb);
    }
    /* Collapse: a one-child root is on the path just walked, so it and
     * its child are loaded (res cannot fail here). */
    while (v->shift > 5) {
      vh_node_t *rt = &v->root->h, *lr = vh_node__res(rt), *c;
      if (lr == NULL) vh_trie__panic("vec pop: path node not loaded");
      if (lr->a != 1) break;
      c = ((vh_vinner_t *)lr)->c[0];
      vh_node__retain(c);
      v->root = (vh_vinner_t *)c;
      v->shift -= 5;
      vh_node__release(rt);
    }
  }
  vh_node__release(&v->tail->h); /* the slot's content */
  v->tail = (vh_vleaf_t *)leaf;
  v->n--;
  return 0;
fail:
  shells_free(&s);
  return r;
}

/* ---- deep copy, walking, release ---- */

static vh_node_t *copy_tree(const vh_node_t *n, uint64_t edit) {
  shells_t s;
  vh_node_t *d;
  int j;
  s.n = 0;
  if ((n = vh_node__res(n)) == NULL) return NULL; /* fault set */
  d = shell(&s, n->kind, n->a, n->a, edit);
  if (d == NULL) return NULL;
  if (n->kind == VH_K_VLEAF) {
    fill_leaf(d, n);
    return d;
  }
  for (j = 0; j < n->a; j++) {
    vh_node_t *c = copy_tree(((const vh_vinner_t *)n)->c[j], edit);
    if (c == NULL) {
      while (j-- > 0) vh_node__release(((vh_vinner_t *)d)->c[j]);
      shells_free(&s);
      return NULL;
    }
    ((vh_vinner_t *)d)->c[j] = c;
  }
  return d;
}

int vh_vec__copy_deep(const vh_vec_t *src, vh_vec_t *dst, uint64_t edit) {
  vh_node_t *r = NULL, *t = NULL;
  if (src->root != NULL && (r = copy_tree(&src->root->h, edit)) == NULL)
    return VH_ENOMEM;
  if (src->tail != NULL && (t = copy_tree(&src->tail->h, edit)) == NULL) {
    if (r != NULL) vh_node__release(r);
    return VH_ENOMEM;
  }
  dst->n = src->n;
  dst->shift = src->shift;
  dst->root = (vh_vinner_t *)r;
  dst->tail = (vh_vleaf_t *)t;
  return 0;
}

static int each_node(vh_node_t *n, int (*fn)(vh_val_t *slot, void *ud),
                     void *ud) {
  int j, r;
  if (n == NULL) return 0;
  if ((n = vh_node__res(n)) == NULL) return vh_trie__fault_err();
  for (j = 0; j < n->a; j++) {
    if (n->kind == VH_K_VLEAF)
      r = fn(&((vh_vleaf_t *)n)->v[j], ud);
    else
      r = each_node(((vh_vinner_t *)n)->c[j], fn, ud);
    if (r < 0) return r;
  }
  return 0;
}

int vh_vec__each_val(vh_vec_t *v, int (*fn)(vh_val_t *slot, void *ud),
                     void *ud) {
  int r = v->root != NULL ? each_node(&v->root->h, fn, ud) : 0;
  if (r < 0 || v->tail == NULL) return r;
  return each_node(&v->tail->h, fn, ud);
}

void vh_vec__drop_refs(vh_node_t *n, void (*drop)(vh_node_t *c, void *ud),
                       void *ud) {
  int j;
  for (j = 0; j < n->a; j++) {
    if (n->kind == VH_K_VLEAF) {
      vh_val_t x = ((vh_vleaf_t *)n)->v[j];
      if (x.type == VH_TSTR)
        vh_str_release(x.u.s);
      else if (x.type == VH_TTAB)
        drop(&x.u.t->h, ud);
    } else {
      drop(((vh_vinner_t *)n)->c[j], ud);
    }
  }
}

void vh_vec__retain_parts(const vh_vec_t *v) {
  if (v->root != NULL) vh_node__retain(&v->root->h);
  if (v->tail != NULL) vh_node__retain(&v->tail->h);
}

void vh_vec__release_parts(const vh_vec_t *v) {
  if (v->root != NULL) vh_node__release(&v->root->h);
  if (v->tail != NULL) vh_node__release(&v->tail->h);
}

/* ---- check ---- */

static int bad(const char **why, const char *msg) {
  *why = msg;
  return -1;
}

static int check_leaf(const vh_node_t *n, int len, int64_t *nonnil,
                      const char **why, int nest) {
  int j;
  if (n->refc == 0) return bad(why, "array part: node with refcount 0");
  if ((n = vh_node__res(n)) == NULL)
    return bad(why, "array part: a leaf failed to load (see vh_trie_fault)");
  if (n->kind != VH_K_VLEAF) return bad(why, "array part: leaf expected");
  if (n->refc == 0) return bad(why, "array part: node with refcount 0");
  if (n->a != len || n->b < n->a || n->b > W)
    return bad(why, "array part: leaf size");
  for (j = 0; j < len; j++) {
    vh_val_t x = ((const vh_vleaf_t *)n)->v[j];
    if (x.type == VH_TNIL) continue;
    (*nonnil)++;
    if (vh_val__check(x, why, nest) < 0) return -1;
  }
  return 0;
}

/* A subtree at level sh holding `leaves` full leaves. */
static int check_tree(const vh_node_t *n, uint32_t sh, int64_t leaves,
                      int64_t *nonnil, const char **why, int nest) {
  int64_t per = (int64_t)1 << (sh - 5), want = (leaves + per - 1) / per;
  int j;
  if (n->refc == 0) return bad(why, "array part: node with refcount 0");
  if ((n = vh_node__res(n)) == NULL)
    return bad(why, "array part: a node failed to load (see vh_trie_fault)");
  if (n->kind != VH_K_VINNER) return bad(why, "array part: inner expected");
  if (n->refc == 0) return bad(why, "array part: node with refcount 0");
  if (want > W || n->a != want || n->b < n->a || n->b > W)
    return bad(why, "array part: inner node size");
  for (j = 0; j < n->a; j++) {
    const vh_node_t *c = ((const vh_vinner_t *)n)->c[j];
    int64_t here = j < n->a - 1 ? per : leaves - per * (n->a - 1);
    int r = sh == 5 ? check_leaf(c, W, nonnil, why, nest)
                    : check_tree(c, sh - 5, here, nonnil, why, nest);
    if (r < 0) return r;
  }
  return 0;
}

int vh_vec__check(const vh_vec_t *v, int64_t *nonnil, const char **why,
                  int nest) {
  int64_t toff = tailoff(v);
  *nonnil = 0;
  if (v->n < 0) return bad(why, "array part: negative size");
  if ((v->tail == NULL) != (v->n == 0)) return bad(why, "array part: tail");
  if ((v->root == NULL) != (toff == 0)) return bad(why, "array part: root");
  if (v->shift < 5 || v->shift % 5 != 0 || v->shift > 60)
    return bad(why, "array part: shift");
  if (v->n == 0) return 0;
  if (v->root != NULL) {
    const vh_node_t *lr = vh_node__res(&v->root->h);
    if (lr == NULL)
      return bad(why,
                 "array part: the root failed to load (see vh_trie_fault)");
    /* shift is minimal: a root above level 5 has two children or more */
    if (v->shift > 5 && lr->a < 2)
      return bad(why, "array part: root not collapsed");
    if (v->shift < 60 && (toff >> 5) > ((int64_t)1 << v->shift))
      return bad(why, "array part: tree too small for its size");
    /* per-level leaf capacity is 32^(level/5) = 2^level */
    if (check_tree(&v->root->h, v->shift, toff >> 5, nonnil, why, nest) < 0)
      return -1;
  }
  if (check_leaf(&v->tail->h, (int)(v->n - toff), nonnil, why, nest) < 0)
    return -1;
  if (vh_vec__get(v, v->n - 1)->type == VH_TNIL)
    return bad(why, "array part: not trimmed (last slot is nil)");
  return 0;
}
