/*
 * stage.c - staged node bytes: a reader that knows which nodes it is about
 * to load reads them in one go and stages their encodings here; a load of
 * a staged id decodes from them instead of calling the loader (vh_trie.h).
 *
 * WHY. The change feed (host/runtime/changes.c) diffs each version against
 * the one before it, and that walk loads every node the version created:
 * they differ from the old side by id all the way up from each change.
 * Nodes born in one version have one contiguous id range
 * (persist/store/history.c) and node keys sort by id, so the feed reads
 * them with one range scan of the store (vh_store_node_range: a seek and a
 * sequential run over the few data blocks that hold them) instead of one
 * point read per node (bloom filter, index seek and block lookup each);
 * profiled, those point reads were about half of the feed's CPU
 * (bench/README.md).
 *
 * HOW. One open-addressing table id -> (offset, length) into one byte
 * buffer; vh_trie_stage_clear empties both, keeping their memory for the
 * next version. A staged encoding is decoded exactly as the loader's bytes
 * would be (same checks), so a load from it is indistinguishable from a
 * point read; unused entries cost only their bytes until cleared.
 *
 * THREADS. Like the loader: the trie's owner thread only; one stage is in
 * use at a time (vh_trie_stage_use), and lazy.c asks it on every load.
 */
#include <stdlib.h>
#include <string.h>

#include "vh_bytes.h"
#include "vh_trie.h"
#include "vh_trie_int.h"

typedef struct sslot {
  uint64_t id; /* 0 = empty */
  size_t off, len;
} sslot_t;

struct vh_trie_stage {
  sslot_t *s; /* cap a power of two, or 0 */
  size_t cap, n;
  vh_buf_t buf; /* the staged bytes, one after another */
  uint64_t staged, used;
};

vh_trie_stage_t *vh_trie__stage; /* in use, see vh_trie_int.h */

static inline size_t hslot(uint64_t id, size_t cap) {
  return (size_t)vh_hash__mix64(id) & (cap - 1);
}

vh_trie_stage_t *vh_trie_stage_new(void) {
  return calloc(1, sizeof(vh_trie_stage_t));
}

void vh_trie_stage_free(vh_trie_stage_t *st) {
  if (st == NULL) return;
  if (vh_trie__stage == st) vh_trie__stage = NULL;
  free(st->s);
  vh_buf_free(&st->buf);
  free(st);
}

vh_trie_stage_t *vh_trie_stage_use(vh_trie_stage_t *st) {
  vh_trie_stage_t *old = vh_trie__stage;
  vh_trie__stage = st;
  return old;
}

int vh_trie_stage_reserve(vh_trie_stage_t *st, size_t n) {
  if (st->cap != 0) return 0; /* a hint for an empty stage only */
  size_t cap = 16;
  while (cap < 2 * n + 2 && cap < 1024) cap *= 2;
  st->s = calloc(cap, sizeof *st->s);
  if (st->s == NULL) return VH_ENOMEM;
  st->cap = cap;
  return 0;
}

int vh_trie_stage_put(vh_trie_stage_t *st, uint64_t id, const void *bytes,
                      size_t len) {
  if (id == 0) return VH_EINVAL;
  if (2 * (st->n + 1) > st->cap) {
    size_t cap = st->cap ? 2 * st->cap : 1024;
    sslot_t *s = calloc(cap, sizeof *s);
    if (s == NULL) return VH_ENOMEM;
    for (size_t j = 0; j < st->cap; j++) {
      if (st->s[j].id == 0) continue;
      size_t i = hslot(st->s[j].id, cap);
      while (s[i].id != 0) i = (i + 1) & (cap - 1);
      s[i] = st->s[j];
    }
    free(st->s);
    st->s = s;
    st->cap = cap;
  }
  size_t i = hslot(id, st->cap);
  while (st->s[i].id != 0) {
    if (st->s[i].id == id) return 0; /* staged already */
    i = (i + 1) & (st->cap - 1);
  }
  size_t off = st->buf.len;
  int r = vh_buf_put(&st->buf, bytes, len);
  if (r != 0) return r;
  st->s[i].id = id;
  st->s[i].off = off;
  st->s[i].len = len;
  st->n++;
  st->staged++;
  return 0;
}

void vh_trie_stage_clear(vh_trie_stage_t *st) {
  if (st->cap) memset(st->s, 0, st->cap * sizeof *st->s);
  st->n = 0;
  st->buf.len = 0;
}

void vh_trie_stage_counts(const vh_trie_stage_t *st, uint64_t *staged,
                          uint64_t *used) {
  if (staged) *staged = st->staged;
  if (used) *used = st->used;
}

int vh_trie__staged(uint64_t id, const void **bytes, size_t *len) {
  vh_trie_stage_t *st = vh_trie__stage;
  if (st->n == 0) return 0;
  for (size_t i = hslot(id, st->cap);; i = (i + 1) & (st->cap - 1)) {
    if (st->s[i].id == id) {
      *bytes = (const char *)st->buf.p + st->s[i].off;
      *len = st->s[i].len;
      st->used++;
      return 1;
    }
    if (st->s[i].id == 0) return 0;
  }
}
