/*
 * trie_util.h - helpers shared by the trie's C tests (header only).
 *
 * Key/value builders that manage string references, a content fingerprint
 * of a table version (every node's fields except its refcount, nested
 * tables included) used to prove that a version was not changed, and a
 * "clean" assertion: no live node and no accounted byte left.
 */
#ifndef TRIE_UTIL_H
#define TRIE_UTIL_H

#include <stdio.h>
#include <string.h>

#include "vh_test.h"
#include "vh_trie.h"
#include "vh_trie_int.h"

/* [new] a string value. */
static inline vh_val_t tu_str(const char *s) {
  vh_val_t v;
  v.u.i = 0;
  v.u.s = vh_str_new(s, strlen(s));
  v.type = VH_TSTR;
  if (v.u.s == NULL) {
    fprintf(stderr, "tu_str: out of memory\n");
    abort();
  }
  return v;
}

static inline vh_val_t tu_tab(vh_tab_t *t) {
  vh_val_t v;
  v.u.i = 0;
  v.u.t = t;
  v.type = VH_TTAB;
  return v;
}

/* Set a string key (built here, released here). */
/* Set a string key (built here, released here). The key's allocation may
 * fail under injection: VH_ENOMEM, v released. */
static inline int tu_set_s(vh_tab_t **t, const char *k, vh_val_t v,
                           uint64_t edit) {
  vh_val_t key;
  int r;
  key.u.i = 0;
  key.type = VH_TSTR;
  key.u.s = vh_str_new(k, strlen(k));
  if (key.u.s == NULL) {
    vh_val_release(v);
    return VH_ENOMEM;
  }
  r = vh_tab_set(t, key, v, edit);
  vh_val_release(key);
  return r;
}

static inline vh_val_t tu_get_s(const vh_tab_t *t, const char *k) {
  vh_val_t v;
  vh_tab_get_str(t, k, strlen(k), &v);
  return v;
}

static inline vh_val_t tu_get_i(const vh_tab_t *t, int64_t k) {
  vh_val_t v;
  vh_tab_get_int(t, k, &v);
  return v;
}

/* ---- fingerprint ---- */

static inline uint64_t tu_mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static uint64_t tu_sum_node(const vh_node_t *n, uint64_t h);

static uint64_t tu_sum_val(vh_val_t v, uint64_t h) {
  h = tu_mix(h, v.type);
  switch (v.type) {
    case VH_TNIL:
      return h;
    case VH_TBOOL:
      return tu_mix(h, (uint64_t)v.u.b);
    case VH_TSTR: {
      uint32_t i;
      h = tu_mix(h, (uint64_t)(uintptr_t)v.u.s);
      h = tu_mix(h, v.u.s->len);
      h = tu_mix(h, vh_hash_bytes(vh_str_data(v.u.s), vh_str_len(v.u.s)));
      for (i = 0; i < v.u.s->len; i++)
        h = tu_mix(h, (unsigned char)v.u.s->data[i]);
      return h;
    }
    case VH_TTAB:
      return tu_sum_node(&v.u.t->h, tu_mix(h, (uint64_t)(uintptr_t)v.u.t));
    case VH_TIKEY: { /* an inline key: its bytes and length */
      uint64_t x = 0;
      memcpy(&x, v.x, sizeof v.x);
      return tu_mix(tu_mix(h, (uint64_t)v.u.i), x);
    }
    default:
      return tu_mix(h, (uint64_t)v.u.i);
  }
}

static uint64_t tu_sum_node(const vh_node_t *n, uint64_t h) {
  int i;
  if (n == NULL) return tu_mix(h, 1);
  h = tu_mix(h, (uint64_t)(uintptr_t)n);
  h = tu_mix(h, n->kind);
  h = tu_mix(h, n->flags);
  h = tu_mix(h, n->a);
  h = tu_mix(h, n->b);
  h = tu_mix(h, n->edit);
  h = tu_mix(h, n->id);
  switch (n->kind) {
    case VH_K_TAB: {
      const vh_tab_t *t = (const vh_tab_t *)n;
      h = tu_mix(h, (uint64_t)t->arr.n);
      h = tu_mix(h, t->arr.shift);
      h = tu_mix(h, (uint64_t)t->acount);
      h = tu_mix(h, t->hcount);
      h = tu_sum_node(t->arr.root ? &t->arr.root->h : NULL, h);
      h = tu_sum_node(t->arr.tail ? &t->arr.tail->h : NULL, h);
      return tu_sum_node(t->hash, h);
    }
    case VH_K_CHAMP: {
      const vh_champ_t *c = (const vh_champ_t *)n;
      int nd = __builtin_popcount(c->datamap),
          nc = __builtin_popcount(c->nodemap);
      h = tu_mix(h, c->datamap);
      h = tu_mix(h, c->nodemap);
      for (i = 0; i < 2 * nd; i++) h = tu_sum_val(c->kv[i], h);
      for (i = 0; i < nc; i++)
        h = tu_sum_node(((vh_node_t *const *)(c->kv + 2 * nd))[i], h);
      return h;
    }
    case VH_K_COLL: {
      const vh_coll_t *l = (const vh_coll_t *)n;
      h = tu_mix(h, l->hash);
      h = tu_mix(h, l->count);
      for (i = 0; i < 2 * (int)l->count; i++) h = tu_sum_val(l->kv[i], h);
      return h;
    }
    case VH_K_VLEAF:
      for (i = 0; i < n->a; i++)
        h = tu_sum_val(((const vh_vleaf_t *)n)->v[i], h);
      return h;
    case VH_K_VINNER:
      for (i = 0; i < n->a; i++)
        h = tu_sum_node(((const vh_vinner_t *)n)->c[i], h);
      return h;
    default:
      return tu_mix(h, 0xdead);
  }
}

static inline uint64_t tu_sum(const vh_tab_t *t) {
  return tu_sum_node(&t->h, 7);
}

#define ASSERT_CHECK(t)                                       \
  do {                                                        \
    const char *why_;                                         \
    int r_ = vh_tab_check((t), &why_);                        \
    if (r_ != 0) fprintf(stderr, "vh_tab_check: %s\n", why_); \
    ASSERT_EQ(r_, 0);                                         \
  } while (0)

#define ASSERT_CLEAN()                  \
  do {                                  \
    ASSERT_EQ(vh_trie_live_nodes(), 0); \
    ASSERT_EQ(vh_mem_bytes(), 0);       \
    ASSERT_EQ(vh_mem_blocks(), 0);      \
  } while (0)

#endif /* TRIE_UTIL_H */
