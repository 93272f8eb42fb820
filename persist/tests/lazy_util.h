/*
 * lazy_util.h - helpers for the codec / lazy loading / flush tests (header
 * only): an in-memory "store" (a hash map id -> bytes), a loader reading
 * it (with call counting and fault injection), a put callback for
 * vh_flush_collect, a recorder for death notices, reachability over the
 * map (with vh_codec_child_ids), and a random table generator.
 */
#ifndef LAZY_UTIL_H
#define LAZY_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trie_util.h"
#include "vh_codec.h"
#include "vh_flush.h"

/* ---- the map ---- */

#define LU_TOMB UINT64_MAX

typedef struct lu_ent {
  uint64_t id; /* 0 = empty, LU_TOMB = deleted */
  unsigned char *p;
  size_t len;
} lu_ent_t;

typedef struct lu_map {
  lu_ent_t *e;
  size_t cap;  /* power of two */
  size_t n;    /* live entries */
  size_t used; /* live + tombstones */
} lu_map_t;

static inline uint64_t lu_mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

static lu_ent_t *lu_slot(lu_map_t *m, uint64_t id, int insert) {
  size_t i = (size_t)lu_mix(id) & (m->cap - 1);
  lu_ent_t *tomb = NULL;
  for (;; i = (i + 1) & (m->cap - 1)) {
    lu_ent_t *e = &m->e[i];
    if (e->id == id) return e;
    if (e->id == LU_TOMB && tomb == NULL) tomb = e;
    if (e->id == 0) return insert ? (tomb ? tomb : e) : NULL;
  }
}

static inline void lu_init(lu_map_t *m) {
  m->cap = 1024;
  m->n = m->used = 0;
  m->e = calloc(m->cap, sizeof(lu_ent_t));
}

static inline void lu_free(lu_map_t *m) {
  size_t i;
  for (i = 0; i < m->cap; i++)
    if (m->e[i].id != 0 && m->e[i].id != LU_TOMB) free(m->e[i].p);
  free(m->e);
  m->e = NULL;
  m->cap = m->n = m->used = 0;
}

static inline void lu_grow(lu_map_t *m) {
  lu_map_t nm;
  size_t i;
  nm.cap = m->cap * 2;
  nm.n = nm.used = 0;
  nm.e = calloc(nm.cap, sizeof(lu_ent_t));
  for (i = 0; i < m->cap; i++) {
    lu_ent_t *e = &m->e[i];
    if (e->id != 0 && e->id != LU_TOMB) {
      *lu_slot(&nm, e->id, 1) = *e;
      nm.n++;
      nm.used++;
    }
  }
  free(m->e);
  *m = nm;
}

static lu_ent_t *lu_get(lu_map_t *m, uint64_t id) {
  return lu_slot(m, id, 0);
}

static inline void lu_put(lu_map_t *m, uint64_t id, const void *p, size_t len) {
  lu_ent_t *e;
  if ((m->used + 1) * 2 > m->cap) lu_grow(m);
  e = lu_slot(m, id, 1);
  if (e->id == id) {
    free(e->p);
  } else {
    if (e->id == 0) m->used++;
    m->n++;
  }
  e->id = id;
  e->p = malloc(len ? len : 1);
  memcpy(e->p, p, len);
  e->len = len;
}

static inline int lu_del(lu_map_t *m, uint64_t id) {
  lu_ent_t *e = lu_get(m, id);
  if (e == NULL) return 0;
  free(e->p);
  e->p = NULL;
  e->id = LU_TOMB;
  m->n--;
  return 1;
}

/* ---- loader (reads the map given as arg) ---- */

static long lu_loads;       /* loader calls */
static uint64_t lu_fail_id; /* != 0: loading this id fails (lu_fail_rc) */
static int lu_fail_rc = VH_EIO;
static long lu_fail_every; /* > 0: every n-th load fails */

static inline int lu_loader(void *arg, uint64_t id, const void **bytes,
                            size_t *len) {
  lu_ent_t *e = lu_get(arg, id);
  void *copy;
  lu_loads++;
  if (lu_fail_id != 0 && id == lu_fail_id) return lu_fail_rc;
  if (lu_fail_every > 0 && lu_loads % lu_fail_every == 0) return VH_EIO;
  if (e == NULL) return VH_ENOENT;
  /* A private copy, freed by lu_unload: ASan sees any use after it. */
  copy = malloc(e->len ? e->len : 1);
  memcpy(copy, e->p, e->len);
  *bytes = copy;
  *len = e->len;
  return 0;
}

static inline void lu_unload(void *arg, const void *bytes) {
  (void)arg;
  free((void *)bytes);
}

static inline void lu_use(lu_map_t *m) {
  vh_trie_set_loader(lu_loader, lu_unload, m);
  lu_loads = 0;
  lu_fail_id = 0;
  lu_fail_every = 0;
  lu_fail_rc = VH_EIO;
}

/* A vh_codec_child_ids callback: counts each id in the map arg (an entry
 * of length 0 made on first sight; its len counts the sightings). */
static inline int lu_count_cb(void *arg, uint64_t id) {
  lu_map_t *seen = arg;
  lu_ent_t *x = lu_get(seen, id);
  if (x == NULL) {
    lu_put(seen, id, "", 0);
    x = lu_get(seen, id);
  }
  x->len++;
  return 0;
}

/* ---- flush into the map ---- */

static long lu_puts;

static inline int lu_put_cb(void *arg, uint64_t id, const void *bytes,
                            size_t len) {
  lu_ent_t *e = lu_get(arg, id);
  if (e != NULL) {
    fprintf(stderr, "flush: id %llu written twice\n", (unsigned long long)id);
    abort();
  }
  lu_put(arg, id, bytes, len);
  lu_puts++;
  return 0;
}

/* Collect root into m; returns the number of nodes written. */
static inline uint64_t lu_flush(lu_map_t *m, vh_tab_t *root,
                                uint64_t *next_id) {
  vh_flush_stats_t st;
  int r = vh_flush_collect(&root, 1, next_id, lu_put_cb, m, &st);
  if (r != 0) {
    fprintf(stderr, "vh_flush_collect: %s\n", vh_err_name(r));
    abort();
  }
  return st.nodes;
}

/* ---- death notices ---- */

typedef struct lu_dead {
  uint64_t *id;
  int *subtree;
  size_t n, cap;
  int on; /* record only while on */
} lu_dead_t;

static lu_dead_t lu_deaths;

static inline void lu_hook(void *arg, uint64_t id, int subtree) {
  lu_dead_t *d = arg;
  if (!d->on) return;
  if (d->n == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 256;
    d->id = realloc(d->id, d->cap * sizeof *d->id);
    d->subtree = realloc(d->subtree, d->cap * sizeof *d->subtree);
  }
  d->id[d->n] = id;
  d->subtree[d->n] = subtree;
  d->n++;
}

static inline void lu_hook_on(int on) {
  vh_trie_set_free_hook(lu_hook, &lu_deaths);
  lu_deaths.on = on;
  lu_deaths.n = 0;
}

static inline void lu_hook_free(void) {
  vh_trie_set_free_hook(NULL, NULL);
  free(lu_deaths.id);
  free(lu_deaths.subtree);
  memset(&lu_deaths, 0, sizeof lu_deaths);
}

/* ---- id sets (a map with empty values) and reachability ---- */

static inline int lu_add_cb(void *arg, uint64_t id) {
  lu_map_t *set = arg;
  if (lu_get(set, id) == NULL) lu_put(set, id, "", 0);
  return 0;
}

/* Every id reachable from root in m (root included) into set. Returns 0,
 * or -1 if a reachable id is missing or does not parse. */
static inline int lu_reach(lu_map_t *m, uint64_t root, lu_map_t *set) {
  uint64_t *stack = malloc(sizeof(uint64_t) * 64);
  size_t n = 0, cap = 64;
  int bad = 0;
  lu_add_cb(set, root);
  stack[n++] = root;
  while (n > 0) {
    uint64_t id = stack[--n];
    lu_ent_t *e = lu_get(m, id);
    lu_map_t kids;
    size_t i;
    if (e == NULL) {
      bad = -1;
      continue;
    }
    lu_init(&kids);
    if (vh_codec_child_ids(e->p, e->len, lu_add_cb, &kids, NULL, NULL) != 0)
      bad = -1;
    for (i = 0; i < kids.cap; i++) {
      uint64_t c = kids.e[i].id;
      if (c == 0 || c == LU_TOMB || lu_get(set, c) != NULL) continue;
      lu_add_cb(set, c);
      if (n == cap) stack = realloc(stack, sizeof(uint64_t) * (cap *= 2));
      stack[n++] = c;
    }
    lu_free(&kids);
  }
  free(stack);
  return bad;
}

/* ---- random tables ---- */

static uint64_t lu_rng = 88172645463325252ull;
static inline uint64_t lu_rand(void) {
  lu_rng ^= lu_rng << 13;
  lu_rng ^= lu_rng >> 7;
  lu_rng ^= lu_rng << 17;
  return lu_rng;
}
static inline int lu_below(int n) {
  return (int)(lu_rand() % (uint64_t)n);
}

static inline vh_val_t lu_rstr(size_t maxlen) {
  size_t len = (size_t)lu_below((int)maxlen + 1), i;
  char *b = malloc(len + 1);
  vh_val_t v;
  for (i = 0; i < len; i++) b[i] = (char)lu_below(256); /* binary, NULs */
  v.u.i = 0;
  v.u.s = vh_str_new(b, len);
  v.type = VH_TSTR;
  free(b);
  return v;
}

/* [new] A random key: ints (some in 1..64, the array range), strings,
 * non-integral floats, booleans. */
static inline vh_val_t lu_rkey(void) {
  char buf[32];
  switch (lu_below(6)) {
    case 0:
      return vh_int(1 + lu_below(64));
    case 1:
      return vh_int((int64_t)lu_rand());
    case 2:
      return vh_float((double)lu_below(1000) + 0.5);
    case 3:
      return vh_bool(lu_below(2));
    default:
      snprintf(buf, sizeof buf, "k%d", lu_below(5000));
      return tu_str(buf);
  }
}

static vh_tab_t *lu_rtab(int size, int depth, uint64_t edit);

/* [new] A random value of every kind; nested tables while depth > 0. */
static inline vh_val_t lu_rval(int depth, uint64_t edit) {
  switch (lu_below(depth > 0 ? 9 : 8)) {
    case 0:
      return vh_bool(lu_below(2));
    case 1:
      return vh_int((int64_t)lu_rand() >> lu_below(64));
    case 2:
      return vh_int(-(int64_t)lu_below(100));
    case 3:
      return vh_float((double)(int64_t)lu_rand() / 7.0);
    case 4:
      return vh_float(lu_below(2) ? -0.0 : HUGE_VAL); /* -0.0, inf */
    case 5:
      return lu_rstr(lu_below(50) == 0 ? 5000 : 24);
    case 6:
      return vh_int(lu_below(10));
    case 7:
      return lu_rstr(3);
    default:
      return tu_tab(lu_rtab(lu_below(20), depth - 1, edit));
  }
}

/* [new] A random table of about size entries: an array part with holes
 * and a hash part. */
static vh_tab_t *lu_rtab(int size, int depth, uint64_t edit) {
  vh_tab_t *t = vh_tab_new(edit);
  int i, n = size;
  for (i = 0; i < n; i++) {
    vh_val_t k = lu_below(3) == 0 ? vh_int(1 + i) : lu_rkey();
    vh_val_t v = lu_below(12) == 0 ? vh_nil() : lu_rval(depth, edit);
    if (vh_tab_set(&t, k, v, edit) != 0) abort();
    vh_val_release(k);
  }
  return t;
}

/* 1 if a and b iterate the same entries in the same order, with equal
 * values (deep). */
static inline int lu_same(const vh_tab_t *a, const vh_tab_t *b) {
  vh_iter_t ia, ib;
  vh_val_t ka, va, kb, vb;
  int ra, rb;
  if (vh_tab_len(a) != vh_tab_len(b) || vh_tab_count(a) != vh_tab_count(b))
    return 0;
  vh_iter_init(&ia, a);
  vh_iter_init(&ib, b);
  for (;;) {
    ra = vh_iter_next(&ia, &ka, &va);
    rb = vh_iter_next(&ib, &kb, &vb);
    if (ra != rb) return 0;
    if (ra == 0) return 1;
    if (!vh_val_equal(ka, kb) || !vh_val_equal(va, vb)) return 0;
    if (va.type == VH_TTAB && !lu_same(va.u.t, vb.u.t)) return 0;
  }
}

#endif /* LAZY_UTIL_H */
