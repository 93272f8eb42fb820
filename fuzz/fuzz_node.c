/*
 * fuzz_node.c - the node decoder (persist/trie/codec.c) and the value encoding
 * (persist/trie/valenc.c): what a damaged or hostile store hands the host.
 *
 * Input: the first byte picks the mode, the rest is the material.
 *   0  one value (vh_valenc_decode, as messages and timers are stored);
 *   1  one non-table node: bytes 1..11 are what its parent would expect
 *      (kind, shift, tail, u64 expect), the rest the node
 *      (vh_codec_decode), and its child id listing (vh_codec_child_ids,
 *      what the sweeper reads);
 *   2  one table node decoded into a stub (vh_codec_decode_tab);
 *   'C' a change record's payload (vh_chrec_decode, persist/store/
 *      store_changes.c: what diff and the change feed read for a version);
 *   3+ (but 'C') a whole store: the rest split at "VHND" into nodes with
 *      ids 1, 2,
 *      ... (children before parents, as vh_flush_collect numbers them);
 *      the last one, the root table, is loaded lazily through the trie's
 *      loader, checked
 *      (vh_tab_check) and walked, as the host touches a restored state.
 * Checked: never a crash, a leak (trie nodes alive before == after) or
 * an error code other than the documented ones; a load failure sets the
 * fault with a message naming the node.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_chrec.h"
#include "vh_codec.h"
#include "vh_trie.h"
#include "vh_trie_int.h"
#include "vh_valenc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VH_FUZZ_MAX_NODES 4096
#define VH_FUZZ_MAX_WALK 20000 /* entries visited per input */
#define VH_FUZZ_MAX_NEST 40    /* a table id may point at an ancestor */

static void vh_fuzz_fail(const char *what, const char *why) {
  fprintf(stderr, "fuzz_node: %s%s%s\n", what, why ? ": " : "", why ? why : "");
  abort();
}

/* Errors the decoders may return. */
static void vh_fuzz_check_rc(int rc, const char *why) {
  if (rc == 0 || rc == VH_ECORRUPT || rc == VH_EFORMAT || rc == VH_ENOMEM ||
      rc == VH_ENOENT || rc == VH_EIO)
    return;
  vh_fuzz_fail("unexpected error code", why);
}

/* ---- the store of mode 3 ---- */

typedef struct vh_fuzz_store {
  const uint8_t *p[VH_FUZZ_MAX_NODES];
  size_t len[VH_FUZZ_MAX_NODES];
  size_t n;
} vh_fuzz_store_t;

static int vh_fuzz_load(void *arg, uint64_t id, const void **bytes,
                        size_t *len) {
  vh_fuzz_store_t *s = arg;
  if (id == 0 || id > s->n) return VH_ENOENT;
  /* A private copy, freed by vh_fuzz_unload: ASan sees any use after. */
  void *copy = malloc(s->len[id - 1] ? s->len[id - 1] : 1);
  if (!copy) return VH_ENOMEM;
  memcpy(copy, s->p[id - 1], s->len[id - 1]);
  *bytes = copy;
  *len = s->len[id - 1];
  return 0;
}

static void vh_fuzz_unload(void *arg, const void *bytes) {
  (void)arg;
  free((void *)bytes);
}

static size_t vh_fuzz_walk(const vh_tab_t *t, int nest, size_t *budget) {
  vh_iter_t it;
  vh_val_t k, v;
  size_t n = 0;
  vh_iter_init(&it, t);
  while (*budget > 0 && vh_iter_next(&it, &k, &v)) {
    n++;
    (*budget)--;
    if (v.type == VH_TTAB && nest > 0) vh_fuzz_walk(v.u.t, nest - 1, budget);
  }
  return n;
}

static int vh_fuzz_id(void *arg, uint64_t id) {
  (void)id;
  (*(size_t *)arg)++;
  return 0;
}

static void vh_fuzz_store(const uint8_t *p, size_t n) {
  static vh_fuzz_store_t s;
  s.n = 0;
  size_t start = 0;
  for (size_t i = 0; i + 4 <= n && s.n < VH_FUZZ_MAX_NODES - 1; i++) {
    if (memcmp(p + i, "VHND", 4) == 0) {
      s.p[s.n] = p + start;
      s.len[s.n++] = i - start;
      start = i + 4;
      i += 3;
    }
  }
  s.p[s.n] = p + start;
  s.len[s.n++] = n - start;
  vh_trie_set_loader(vh_fuzz_load, vh_fuzz_unload, &s);
  vh_trie_fault_clear();
  vh_tab_t *t = vh_tab_stub(s.n); /* the root is written last */
  if (!t) return;
  const char *why = NULL;
  int rc = vh_tab_check(t, &why);
  if (rc == 0) {
    size_t budget = VH_FUZZ_MAX_WALK;
    size_t seen = vh_fuzz_walk(t, VH_FUZZ_MAX_NEST, &budget);
    if (budget > 0 && vh_trie_fault(NULL) == 0 && seen != vh_tab_count(t))
      vh_fuzz_fail("iteration and count disagree", NULL);
  } else {
    const char *msg = NULL;
    if (vh_trie_fault(&msg) != 0 && (!msg || !strstr(msg, "node ")))
      vh_fuzz_fail("a load fault without the node named", msg);
  }
  vh_tab_release(t);
  vh_trie_fault_clear();
  vh_trie_set_loader(NULL, NULL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 20)) return 0;
  size_t live = vh_trie_live_nodes();
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  const char *why = NULL;
  int rc;
  switch (data[0]) {
    case 0: {
      vh_val_t v;
      rc = vh_valenc_decode(p, n, vh_edit_new(), &v);
      vh_fuzz_check_rc(rc, "valenc");
      if (rc == 0) vh_val_release(v);
      break;
    }
    case 1: {
      if (n < 11) return 0;
      static const uint8_t kinds[] = {VH_K_CHAMP, VH_K_COLL, VH_K_VLEAF,
                                      VH_K_VINNER};
      vh_codec_expect_t ex;
      memset(&ex, 0, sizeof ex);
      /* Only expectations a parent can hand down (codec.c makes them:
       * CHAMP levels 0, 5, ... 30 with a hash prefix below the level,
       * collisions at 35, inner vector levels 5..60); the parent's own
       * decode checked its bytes, so anything else is not an input. */
      ex.kind = kinds[p[0] & 3];
      ex.tail = p[2] & 1;
      memcpy(&ex.expect, p + 3, 8);
      if (ex.kind == VH_K_CHAMP) {
        ex.shift = (uint8_t)(5 * (p[1] % 7));
        ex.expect &= ((uint64_t)1 << ex.shift) - 1;
      } else if (ex.kind == VH_K_COLL) {
        ex.shift = VH_CHAMP_COLL_SHIFT;
        ex.expect &= 0xFFFFFFFFu;
      } else if (ex.kind == VH_K_VINNER) {
        ex.shift = (uint8_t)(5 * (1 + p[1] % 12));
      }
      vh_node_t *node = NULL;
      rc = vh_codec_decode(p + 11, n - 11, 7, &ex, &node, &why);
      vh_fuzz_check_rc(rc, why);
      if (rc == 0) {
        if (!node) vh_fuzz_fail("decoded to nothing", NULL);
        vh_node__release(node);
      } else if (node || !why) {
        vh_fuzz_fail("a refusal with a node or without a message", why);
      }
      size_t ids = 0;
      int kind = 0;
      rc = vh_codec_child_ids(p + 11, n - 11, vh_fuzz_id, &ids, &kind, &why);
      vh_fuzz_check_rc(rc, why);
      break;
    }
    case 2: {
      vh_tab_t *t = vh_tab_stub(9);
      if (!t) return 0;
      rc = vh_codec_decode_tab(p, n, t, &why);
      vh_fuzz_check_rc(rc, why);
      if (rc == 0) t->h.flags &= (uint8_t)~VH_F_STUB; /* as lazy.c does */
      vh_tab_release(t);
      break;
    }
    case 'C': {
      vh_chrec_t rec;
      char *msg = NULL;
      rc = vh_chrec_decode(p, n, 1, &rec, &msg);
      vh_fuzz_check_rc(rc, msg);
      if (rc == 0) {
        if (msg != NULL) vh_fuzz_fail("a record decoded with a message", msg);
        vh_chrec_free(&rec);
      } else if (rc != VH_ENOMEM && msg == NULL) {
        vh_fuzz_fail("a refused record without a message", NULL);
      }
      free(msg);
      break;
    }
    default:
      vh_fuzz_store(p, n);
      break;
  }
  if (vh_trie_live_nodes() != live) vh_fuzz_fail("trie nodes leaked", NULL);
  return 0;
}
