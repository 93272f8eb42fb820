/*
 * tdiff.c - the difference of two persistent tables (vh_tdiff.h).
 *
 * HOW IT WORKS. Two versions of a table share every node the writes
 * between them did not touch (path copying), and a shared node is either
 * the same pointer (both versions in memory) or carries the same store id
 * (read back from the store, possibly as two separate stubs). So the walk
 * goes down both tries side by side and stops wherever the two slots hold
 * the same node: an unchanged subtree is never loaded, whatever its size.
 *
 *   table  = array part (vec.c) + hash part (champ.c), each diffed on its
 *            own into a list of (key, old, new) for that table's own keys;
 *   hash   = CHAMP nodes at the same shift cover the same hash prefix:
 *            the 32 chunks are compared one by one (entry vs entry, entry
 *            vs child subtree, child vs child recursively). Canonical form
 *            (champ.c) makes equal contents structurally equal, so only the
 *            changed paths differ. Collision nodes are matched by key.
 *   array  = vector nodes covering the same index range are compared
 *            recursively (a tree that grew a level holds the old root as
 *            its child 0, so the taller side is walked down its leftmost
 *            edge first); ranges only one side's tree covers are compared
 *            slot by slot against the other side's tail or nil, and the
 *            tails last.
 *   order  = the per-table list is sorted in the REPL's key order; a key
 *            that moved between the array and the hash part appears twice
 *            (once removed, once added) and is merged back into one entry,
 *            or dropped when its value did not change.
 *
 * Nested tables changed on both sides are walked after their key, depth
 * first, with an explicit stack of per-table lists (a state may nest
 * VH_MAX_DEPTH deep; the C stack holds only the bounded CHAMP / vector
 * recursion). Memory: the lists along the current path, i.e. the changed
 * keys of the tables being walked.
 *
 * ADOPTION (VH_TDIFF_ADOPT, the change feed). Where the walk finds one
 * stored node as two objects, a's loaded and b's an unloaded view stub,
 * b takes a's node (the parent's slot gets it when the stub has no other
 * holder, else the stub forwards to it): the feed keeps b as the next
 * walk's old side, so what any walk loaded stays loaded in the newest
 * version and no node is read twice. Views only (they never report
 * deaths and are read-only, so two trees sharing one copy is invisible);
 * tables are not adopted (a table stub is filled in place).
 *
 * TWINS (with VH_TDIFF_ADOPT). The new side's CHAMP nodes are mostly
 * loaded here, as the walk reaches them, while the old side's node at the
 * same place is in memory: b's node is decoded with a's as its twin
 * (vh_node__load_twin), so every child the two share by id is a's child
 * itself, not a fresh stub that adoption would then replace; the walk
 * then sees the same pointer and moves on. Measured on the feed: the
 * stubs, their adoption and their frees were ~12% of its instructions
 * (bench/README.md). The parent's slot takes the loaded node when it is
 * the stub's only holder (vh_node__take), as a read through the slot
 * would. Vector nodes are adopted as before, without twins.
 *
 * LIMITATIONS. A key whose value is a table in one version and a different
 * table that happens to hold equal contents in the other is walked (and
 * reports nothing); tables are compared by identity first, by contents
 * only when walked. Loads go through the trie's loader: a failed load ends
 * the walk with the fault's code.
 */
#include <stdlib.h>
#include <string.h>

#include "vh_tdiff.h"
#include "vh_trie_int.h"

/* ---- comparisons ---- */

static int rank(vh_val_t k) {
  switch (k.type) {
    case VH_TINT:
    case VH_TFLOAT:
      return 1;
    case VH_TSTR:
      return 2;
    case VH_TBOOL:
      return 3;
    default:
      return 4;
  }
}

int vh_tdiff_key_cmp(vh_val_t a, vh_val_t b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra == 1) {
    if (a.type == VH_TINT && b.type == VH_TINT)
      return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
    /* Float keys are never integral, so |f| < 2^52 whenever an integer
     * could compare equal: the conversion orders them exactly. */
    double x = a.type == VH_TINT ? (double)a.u.i : a.u.f;
    double y = b.type == VH_TINT ? (double)b.u.i : b.u.f;
    if (x != y) return x < y ? -1 : 1;
    return a.type == b.type ? 0 : (a.type == VH_TINT ? -1 : 1);
  }
  return vh_key__cmp(a, b); /* strings: bytes; booleans: false first */
}

static inline int same_node(const vh_node_t *x, const vh_node_t *y) {
  return x == y || (x != NULL && y != NULL && x->id != 0 && x->id == y->id);
}

int vh_tdiff_same(vh_val_t a, vh_val_t b) {
  if (a.type != b.type) return 0;
  switch (a.type) {
    case VH_TNIL:
      return 1;
    case VH_TBOOL:
      return a.u.b == b.u.b;
    case VH_TINT:
      return a.u.i == b.u.i;
    case VH_TFLOAT:
      return a.u.i == b.u.i || (a.u.f != a.u.f && b.u.f != b.u.f);
    case VH_TSTR:
      return a.u.s == b.u.s || vh_key__eq(a, b);
    default:
      return same_node(&a.u.t->h, &b.u.t->h);
  }
}

/* ---- the per-table change list ---- */

typedef struct ent {
  vh_val_t key, old, new; /* [borrowed] from the tables walked */
} ent_t;

typedef struct list {
  ent_t *e;
  size_t n, cap;
} list_t;

static int note(list_t *l, vh_val_t key, vh_val_t old, vh_val_t new) {
  if (old.type == VH_TNIL && new.type == VH_TNIL) return 0;
  if (vh_tdiff_same(old, new)) return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    ent_t *e = realloc(l->e, cap * sizeof *e);
    if (e == NULL) return VH_ENOMEM;
    l->e = e;
    l->cap = cap;
  }
  l->e[l->n].key = key;
  l->e[l->n].old = old;
  l->e[l->n].new = new;
  l->n++;
  return 0;
}

/* The walk's shared state: the fault counter at the start (a load that
 * failed anywhere ends the walk), the flags. */
typedef struct walk {
  uint64_t faults0;
  int adopt; /* VH_TDIFF_ADOPT */
} walk_t;

/* x (a's) and y (b's) are one stored node as two objects: with
 * VH_TDIFF_ADOPT and y an unloaded view stub, b takes a's loaded node.
 * yslot: where b's parent holds y, or NULL. When the parent's slot is the
 * stub's only holder the slot gets the node itself and the stub goes
 * (lazy.c's vh_node__take does the same after a load); otherwise the stub
 * forwards to it. Either way b owns one more reference to the node. */
static void adopt(const walk_t *w, const vh_node_t *x, const vh_node_t *y,
                  vh_node_t *const *yslot) {
  if (!w->adopt || x == y || x == NULL || y == NULL) return;
  if (!(y->flags & VH_F_STUB) || y->kind == VH_K_TAB) return;
  vh_stub_t *s = (vh_stub_t *)y;
  if (s->fwd != NULL || (y->flags & VH_F_NODEATH) != VH_F_VIEW) return;
  if (x->flags & VH_F_STUB) x = ((const vh_stub_t *)x)->fwd;
  if (x == NULL || x->kind != y->kind || (x->flags & VH_F_NODEATH) != VH_F_VIEW)
    return;
  vh_node__retain((vh_node_t *)x);
  if (yslot != NULL && y->refc == 1) {
    *(vh_node_t **)yslot = (vh_node_t *)x;
    vh_node__free_shell((vh_node_t *)y, sizeof(vh_stub_t));
  } else {
    s->fwd = (vh_node_t *)x;
  }
}

static inline int check(const walk_t *w) {
  if (VH_UNLIKELY(vh_trie__nfaults != w->faults0)) {
    int r = vh_trie__fault_err();
    return r < 0 ? r : VH_EIO;
  }
  return 0;
}

/* ---- hash part ---- */

/* Population count: vh_popc (vh_trie_int.h, inline without -mpopcnt). */
static inline int popc(uint32_t x) {
  return vh_popc(x);
}

/* Every entry of the subtree n, as removed (sign < 0) or added. */
static int champ_all(const walk_t *w, list_t *l, const vh_node_t *n, int sign) {
  vh_iter_t it;
  vh_val_t k, v;
  int r;
  vh_champ__iter_start(&it, n);
  while (vh_champ__iter_step(&it, &k, &v) == 1) {
    r = sign < 0 ? note(l, k, v, vh_nil()) : note(l, k, vh_nil(), v);
    if (r < 0) return r;
  }
  return check(w);
}

/* One inline entry (k, v) on side x against the subtree n on the other
 * side: xside < 0 when the entry is a's. */
static int entry_vs_tree(const walk_t *w, list_t *l, vh_val_t k, vh_val_t v,
                         const vh_node_t *n, int xside) {
  vh_iter_t it;
  vh_val_t nk, nv;
  int found = 0, r;
  vh_champ__iter_start(&it, n);
  while (vh_champ__iter_step(&it, &nk, &nv) == 1) {
    if (!found && vh_key__eq(k, nk)) {
      found = 1;
      r = xside < 0 ? note(l, k, v, nv) : note(l, k, nv, v);
    } else {
      r = xside < 0 ? note(l, nk, vh_nil(), nv) : note(l, nk, nv, vh_nil());
    }
    if (r < 0) return r;
  }
  if ((r = check(w)) < 0) return r;
  if (!found)
    return xside < 0 ? note(l, k, v, vh_nil()) : note(l, k, vh_nil(), v);
  return 0;
}

/* Collision nodes (or a mix, which canonical form rules out but costs
 * nothing to allow): match the entries by key, O(n*m) on tiny n, m. */
static int coll_diff(const walk_t *w, list_t *l, const vh_node_t *x,
                     const vh_node_t *y) {
  vh_iter_t ix, iy;
  vh_val_t kx, vx, ky, vy;
  int r;
  vh_champ__iter_start(&ix, x);
  while (vh_champ__iter_step(&ix, &kx, &vx) == 1) {
    vh_val_t other = vh_nil();
    vh_champ__iter_start(&iy, y);
    while (vh_champ__iter_step(&iy, &ky, &vy) == 1)
      if (vh_key__eq(kx, ky)) {
        other = vy;
        break;
      }
    if ((r = note(l, kx, vx, other)) < 0) return r;
  }
  vh_champ__iter_start(&iy, y);
  while (vh_champ__iter_step(&iy, &ky, &vy) == 1) {
    int found = 0;
    vh_champ__iter_start(&ix, x);
    while (vh_champ__iter_step(&ix, &kx, &vx) == 1)
      if (vh_key__eq(kx, ky)) {
        found = 1;
        break;
      }
    if (!found && (r = note(l, ky, vh_nil(), vy)) < 0) return r;
  }
  return check(w);
}

static int champ_diff(const walk_t *w, list_t *l, const vh_node_t *x,
                      const vh_node_t *y, vh_node_t *const *yslot);

/* champ_diff of two nodes with the same bitmaps (a path copy: the common
 * case, a write changes one entry or one child per node): entries and
 * children pair up by position, a child held by both (the same pointer)
 * is passed over without a call, and only the children that differ are
 * prefetched and walked. The list is sorted afterwards (walk_tabs), so
 * the order of the notes does not matter. */
static int champ_same_shape(const walk_t *w, list_t *l, const vh_champ_t *cx,
                            const vh_champ_t *cy, vh_node_t *const *kx,
                            vh_node_t *const *ky) {
  int nd = popc(cx->datamap), nc = popc(cx->nodemap), r = 0;
  for (int k = 0; k < nc; k++)
    if (kx[k] != ky[k]) {
      __builtin_prefetch(kx[k]);
      __builtin_prefetch(ky[k]);
    }
  const vh_val_t *ex = cx->kv, *ey = cy->kv;
  for (int i = 0; i < nd && r == 0; i++, ex += 2, ey += 2) {
    if (vh_key__eq_i(&ex[0], &ey[0]) && vh_tdiff_same(ex[1], ey[1]))
      continue; /* unchanged */
    if ((r = vh_key__out((vh_val_t *)&ex[0])) < 0 ||
        (r = vh_key__out((vh_val_t *)&ey[0])) < 0)
      break;
    if (vh_key__eq(ex[0], ey[0])) {
      r = note(l, ex[0], ex[1], ey[1]);
    } else if ((r = note(l, ex[0], ex[1], vh_nil())) == 0) {
      r = note(l, ey[0], vh_nil(), ey[1]);
    }
  }
  for (int k = 0; k < nc && r == 0; k++)
    if (kx[k] != ky[k]) r = champ_diff(w, l, kx[k], ky[k], ky + k);
  return r;
}

static int champ_diff(const walk_t *w, list_t *l, const vh_node_t *x,
                      const vh_node_t *y, vh_node_t *const *yslot) {
  const vh_champ_t *cx, *cy;
  int r = 0;
  if (same_node(x, y)) {
    adopt(w, x, y, yslot);
    return 0;
  }
  if (x == NULL) return champ_all(w, l, y, 1);
  if (y == NULL) return champ_all(w, l, x, -1);
  if ((x = vh_node__res(x)) == NULL) return check(w);
  if (w->adopt && (y->flags & VH_F_STUB)) { /* TWINS (above) */
    vh_node_t *stub = (vh_node_t *)y;
    y = vh_node__load_twin(stub, x);
    vh_node_t *own = y != NULL && yslot != NULL ? vh_node__take(stub) : NULL;
    if (own != NULL) *(vh_node_t **)yslot = own;
  } else {
    y = vh_node__res(y);
  }
  if (y == NULL) return check(w);
  if (x->kind != VH_K_CHAMP || y->kind != VH_K_CHAMP)
    return coll_diff(w, l, x, y);
  cx = (const vh_champ_t *)x;
  cy = (const vh_champ_t *)y;
  /* Positions: entries by rank among the data bits, children after; the
   * bits go up, so the ranks are counted along (ex, ey: the next entries;
   * kx, ky: the next children's slots) rather than a popcount per bit. */
  const vh_val_t *ex = cx->kv, *ey = cy->kv;
  vh_node_t *const *kx = (vh_node_t *const *)(cx->kv + 2 * popc(cx->datamap));
  vh_node_t *const *ky = (vh_node_t *const *)(cy->kv + 2 * popc(cy->datamap));
  if (cx->datamap == cy->datamap && cx->nodemap == cy->nodemap)
    return champ_same_shape(w, l, cx, cy, kx, ky);
  /* The loop reads each child's header (same_node): start those loads
   * (cache misses on a large tree) all at once rather than one by one. */
  for (int i = popc(cx->nodemap); i-- > 0;) __builtin_prefetch(kx[i]);
  for (int i = popc(cy->nodemap); i-- > 0;) __builtin_prefetch(ky[i]);
  uint32_t all = cx->datamap | cx->nodemap | cy->datamap | cy->nodemap;
  while (all != 0 && r == 0) {
    uint32_t bit = all & -all;
    all &= all - 1;
    int xd = (cx->datamap & bit) != 0, xn = (cx->nodemap & bit) != 0;
    int yd = (cy->datamap & bit) != 0, yn = (cy->nodemap & bit) != 0;
    const vh_node_t *nx = xn ? *kx : NULL;
    vh_node_t *const *nyslot = yn ? ky : NULL;
    const vh_node_t *ny = yn ? *nyslot : NULL;
    /* An entry both sides hold unchanged is passed over; keys that are
     * noted (handed out) become strings first if inline. Handing out
     * every key met cost a string per entry of every node walked (the
     * feed's leaves hold ~10 entries for one change). */
    if (xd && yd && vh_key__eq_i(&ex[0], &ey[0]) &&
        vh_tdiff_same(ex[1], ey[1])) {
      /* unchanged */
    } else if ((xd && (r = vh_key__out((vh_val_t *)&ex[0])) < 0) ||
               (yd && (r = vh_key__out((vh_val_t *)&ey[0])) < 0)) {
      break;
    } else if (xd && yd) {
      if (vh_key__eq(ex[0], ey[0])) {
        r = note(l, ex[0], ex[1], ey[1]);
      } else if ((r = note(l, ex[0], ex[1], vh_nil())) == 0) {
        r = note(l, ey[0], vh_nil(), ey[1]);
      }
    } else if (xd && yn) {
      r = entry_vs_tree(w, l, ex[0], ex[1], ny, -1);
    } else if (xn && yd) {
      r = entry_vs_tree(w, l, ey[0], ey[1], nx, 1);
    } else if (xn || yn) {
      r = champ_diff(w, l, nx, ny, nyslot); /* either may be NULL */
    } else if (xd) {
      r = note(l, ex[0], ex[1], vh_nil());
    } else {
      r = note(l, ey[0], vh_nil(), ey[1]);
    }
    ex += 2 * xd;
    ey += 2 * yd;
    kx += xn;
    ky += yn;
  }
  return r;
}

/* ---- array part ---- */

static inline int64_t tailoff(const vh_vec_t *v) {
  return v->n == 0 ? 0 : ((v->n - 1) >> 5) << 5;
}

/* Slot i of v (nil past its end). */
static vh_val_t slot(const vh_vec_t *v, int64_t i) {
  return i < v->n ? *vh_vec__get(v, i) : vh_nil();
}

static int slot_note(list_t *l, int64_t i, vh_val_t x, vh_val_t y) {
  return note(l, vh_int(i + 1), x, y);
}

/* x, y: the nodes of a's and b's trees at level s (0 = leaf) covering
 * slots [base, base + 2^(s+5)), NULL where that tree does not reach. */
static int vec_node_diff(const walk_t *w, list_t *l, const vh_vec_t *va,
                         const vh_vec_t *vb, const vh_node_t *x,
                         const vh_node_t *y, vh_node_t *const *yslot,
                         uint32_t s, int64_t base) {
  int r;
  if (same_node(x, y)) { /* also both NULL */
    adopt(w, x, y, yslot);
    return 0;
  }
  if (x != NULL && (x = vh_node__res(x)) == NULL) return check(w);
  if (y != NULL && (y = vh_node__res(y)) == NULL) return check(w);
  if (s == 0) {
    for (int j = 0; j < VH_VEC_W; j++) {
      int64_t i = base + j;
      vh_val_t vx = x ? ((const vh_vleaf_t *)x)->v[j] : slot(va, i);
      vh_val_t vy = y ? ((const vh_vleaf_t *)y)->v[j] : slot(vb, i);
      if ((r = check(w)) < 0 || (r = slot_note(l, i, vx, vy)) < 0) return r;
    }
    return 0;
  }
  int cx = x ? x->a : 0, cy = y ? y->a : 0, c = cx > cy ? cx : cy;
  for (int j = 0; j < c; j++) {
    const vh_node_t *kx = j < cx ? ((const vh_vinner_t *)x)->c[j] : NULL;
    vh_node_t *const *kyslot = j < cy ? &((const vh_vinner_t *)y)->c[j] : NULL;
    const vh_node_t *ky = kyslot ? *kyslot : NULL;
    r = vec_node_diff(w, l, va, vb, kx, ky, kyslot, s - 5,
                      base + ((int64_t)j << s));
    if (r < 0) return r;
  }
  return 0;
}

static int vec_diff(const walk_t *w, list_t *l, const vh_vec_t *va,
                    const vh_vec_t *vb) {
  const vh_node_t *x = va->n > VH_VEC_W ? &va->root->h : NULL;
  const vh_node_t *y = vb->n > VH_VEC_W ? &vb->root->h : NULL;
  uint32_t sx = va->shift, sy = vb->shift;
  int r;
  /* The taller tree holds the shorter's range under its child 0. */
  while (x != NULL && y != NULL && sx != sy) {
    const vh_node_t **tall = sx > sy ? &x : &y;
    uint32_t *ts = sx > sy ? &sx : &sy;
    const vh_node_t *n = vh_node__res(*tall);
    if (n == NULL) return check(w);
    for (int j = 1; j < n->a; j++) {
      const vh_node_t *k = ((const vh_vinner_t *)n)->c[j];
      r = vec_node_diff(w, l, va, vb, tall == &x ? k : NULL,
                        tall == &y ? k : NULL, NULL, *ts - 5,
                        (int64_t)j << *ts);
      if (r < 0) return r;
    }
    *tall = ((const vh_vinner_t *)n)->c[0];
    *ts -= 5;
  }
  if (x != NULL || y != NULL) {
    uint32_t s = x != NULL ? sx : sy;
    if ((r = vec_node_diff(w, l, va, vb, x, y, NULL, s, 0)) < 0) return r;
  }
  /* Past both trees: the tails (and nil past each end). */
  int64_t from = tailoff(va) > tailoff(vb) ? tailoff(va) : tailoff(vb);
  int64_t to = va->n > vb->n ? va->n : vb->n;
  if (tailoff(va) == tailoff(vb) && va->n == vb->n && va->n > 0 &&
      same_node(&va->tail->h, &vb->tail->h))
    return 0;
  for (int64_t i = from; i < to; i++) {
    vh_val_t vx = slot(va, i), vy = slot(vb, i);
    if ((r = check(w)) < 0 || (r = slot_note(l, i, vx, vy)) < 0) return r;
  }
  return 0;
}

/* ---- tables ---- */

static const vh_vec_t empty_vec;

/* vh_tdiff_key_cmp with the common cases inline: two strings (bytes,
 * then length: vh_key__cmp) or two integers. */
static inline int ent_cmp(const ent_t *p, const ent_t *q) {
  vh_val_t a = p->key, b = q->key;
  if (a.type == VH_TSTR && b.type == VH_TSTR) {
    size_t la = a.u.s->len, lb = b.u.s->len;
    int c = memcmp(a.u.s->data, b.u.s->data, la < lb ? la : lb);
    if (c != 0) return c;
    return la < lb ? -1 : la > lb;
  }
  if (a.type == VH_TINT && b.type == VH_TINT)
    return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
  return vh_tdiff_key_cmp(a, b);
}

/* Sorts e[0..n) by key, stably: insertion sort of runs of 8, then
 * bottom-up merges through tmp (n entries). qsort's indirect merge sort
 * with a comparator through a pointer was ~11% of the change feed's
 * instructions (a version's 1000 new keys in one table, bench/README.md);
 * this is ~3x fewer. */
static void ent_sort(ent_t *e, ent_t *tmp, size_t n) {
  enum { RUN = 8 };
  for (size_t lo = 0; lo < n; lo += RUN) {
    size_t hi = lo + RUN < n ? lo + RUN : n;
    for (size_t i = lo + 1; i < hi; i++) {
      ent_t x = e[i];
      size_t j = i;
      while (j > lo && ent_cmp(&x, &e[j - 1]) < 0) {
        e[j] = e[j - 1];
        j--;
      }
      e[j] = x;
    }
  }
  ent_t *src = e, *dst = tmp;
  for (size_t w = RUN; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n,
             hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        dst[k++] = ent_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
      while (i < mid) dst[k++] = src[i++];
      while (j < hi) dst[k++] = src[j++];
    }
    ent_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != e) memcpy(e, src, n * sizeof *e);
}

/* The changed keys of a vs b (NULL = empty) into l, sorted and merged. */
static int tab_list(const walk_t *w, list_t *l, const vh_tab_t *a,
                    const vh_tab_t *b) {
  int r;
  l->n = 0;
  if (same_node(a ? &a->h : NULL, b ? &b->h : NULL)) return 0;
  if ((a && vh_tab__ready(a) < 0) || (b && vh_tab__ready(b) < 0))
    return check(w);
  r = vec_diff(w, l, a ? &a->arr : &empty_vec, b ? &b->arr : &empty_vec);
  if (r == 0)
    r = champ_diff(w, l, a ? a->hash : NULL, b ? b->hash : NULL, NULL);
  if (r < 0) return r;
  if (l->n > 1) {
    ent_t *tmp = l->n > 8 ? malloc(l->n * sizeof *tmp) : NULL;
    if (l->n > 8 && tmp == NULL) return VH_ENOMEM;
    ent_sort(l->e, tmp, l->n);
    free(tmp);
  }
  /* A key that moved between the parts: one entry removed, one added. */
  size_t o = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (o > 0 && vh_tdiff_key_cmp(l->e[o - 1].key, l->e[i].key) == 0) {
      ent_t *p = &l->e[o - 1];
      if (p->old.type == VH_TNIL) p->old = l->e[i].old;
      if (p->new.type == VH_TNIL) p->new = l->e[i].new;
      if (vh_tdiff_same(p->old, p->new)) o--;
      continue;
    }
    l->e[o++] = l->e[i];
  }
  l->n = o;
  return 0;
}

typedef struct frame {
  list_t l;
  size_t i; /* next entry */
} frame_t;

typedef struct ctx {
  vh_tdiff_fn cb;
  void *arg;
  vh_val_t *path; /* path[0..depth) */
  size_t depth, cap;
} ctx_t;

static int path_push(ctx_t *c, vh_val_t k) {
  if (c->depth == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 32;
    vh_val_t *p = realloc(c->path, cap * sizeof *p);
    if (p == NULL) return VH_ENOMEM;
    c->path = p;
    c->cap = cap;
  }
  c->path[c->depth++] = k;
  return 0;
}

static int emit(ctx_t *c, vh_val_t old, vh_val_t new) {
  vh_tdiff_change_t ch;
  ch.op = old.type == VH_TNIL ? '+' : new.type == VH_TNIL ? '-' : '~';
  ch.path = c->path;
  ch.depth = c->depth;
  ch.old = old;
  ch.new = new;
  return c->cb(c->arg, &ch);
}

/* Walk two tables (the values at the current path) depth first. */
static int walk_tabs(const walk_t *w, ctx_t *c, const vh_tab_t *a,
                     const vh_tab_t *b) {
  frame_t *st = NULL;
  size_t n = 0, cap = 0, base = c->depth;
  int r = 0;
  for (;;) {
    if (a != NULL || b != NULL) { /* open a frame for (a, b) */
      if (n == cap) {
        size_t ncap = cap ? 2 * cap : 16;
        frame_t *ns = realloc(st, ncap * sizeof *ns);
        if (ns == NULL) {
          r = VH_ENOMEM;
          break;
        }
        st = ns;
        cap = ncap;
      }
      memset(&st[n], 0, sizeof st[n]);
      n++;
      if ((r = tab_list(w, &st[n - 1].l, a, b)) < 0) break;
      a = b = NULL;
    }
    if (n == 0) break;
    frame_t *f = &st[n - 1];
    if (f->i == f->l.n) {
      free(f->l.e);
      n--;
      if (n == 0) break;
      c->depth--; /* the key that opened f */
      continue;
    }
    ent_t e = f->l.e[f->i++];
    if ((r = path_push(c, e.key)) < 0) break;
    if (e.old.type == VH_TTAB && e.new.type == VH_TTAB) {
      a = e.old.u.t;
      b = e.new.u.t;
      continue; /* the frame opened above pops the key */
    }
    r = emit(c, e.old, e.new);
    c->depth--;
    if (r != 0) break;
  }
  while (n > 0) free(st[--n].l.e);
  free(st);
  c->depth = base;
  return r;
}

/* The value at path in t (NULL = empty table): nil past a non-table. */
static vh_val_t at_path(const vh_tab_t *t, const vh_val_t *path, size_t n) {
  vh_val_t v = vh_nil();
  if (t != NULL) {
    v.u.t = (vh_tab_t *)t;
    v.type = VH_TTAB;
  }
  for (size_t i = 0; i < n; i++) {
    if (v.type != VH_TTAB) return vh_nil();
    vh_tab_get(v.u.t, path[i], &v);
  }
  return v;
}

int vh_tab_diff(const vh_tab_t *a, const vh_tab_t *b, const vh_val_t *path,
                size_t npath, vh_tdiff_fn cb, void *arg) {
  return vh_tab_diff_ex(a, b, path, npath, 0, cb, arg);
}

int vh_tab_diff_ex(const vh_tab_t *a, const vh_tab_t *b, const vh_val_t *path,
                   size_t npath, int flags, vh_tdiff_fn cb, void *arg) {
  walk_t w;
  ctx_t c;
  int r = 0;
  w.faults0 = vh_trie__nfaults;
  w.adopt = (flags & VH_TDIFF_ADOPT) != 0;
  memset(&c, 0, sizeof c);
  c.cb = cb;
  c.arg = arg;
  for (size_t i = 0; i < npath && r == 0; i++) r = path_push(&c, path[i]);
  if (r == 0) {
    vh_val_t va = at_path(a, path, npath), vb = at_path(b, path, npath);
    if ((r = check(&w)) < 0) {
      /* a load on the way down failed */
    } else if (npath == 0) {
      r = walk_tabs(&w, &c, va.type == VH_TTAB ? va.u.t : NULL,
                    vb.type == VH_TTAB ? vb.u.t : NULL);
    } else if (va.type == VH_TTAB && vb.type == VH_TTAB) {
      r = walk_tabs(&w, &c, va.u.t, vb.u.t);
    } else if (!vh_tdiff_same(va, vb)) {
      r = emit(&c, va, vb);
    }
  }
  free(c.path);
  return r;
}
