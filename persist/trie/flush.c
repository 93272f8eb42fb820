/*
 * flush.c - collecting new trie nodes for the store (vh_flush.h).
 *
 * HOW IT WORKS. A node made in memory has id 0; a node read from or written
 * to the store has its id. So the nodes a slice created that are still
 * live are exactly the id-0 nodes reachable from the roots, and every such
 * node's id-0 children are new too, while a child with an id (a stored
 * node, a stub, a loaded node) is the root of a subtree that is entirely on
 * disk already. The walk therefore enters only id-0 nodes and costs
 * O(new nodes + their child slots), however big the state.
 *
 * Order: post-order on an explicit stack (tables nest 100,000 deep in the
 * tests, too deep to recurse). Each stack entry is first "expanded" (its
 * id-0 children pushed) and, when it is on top again, encoded: by then
 * every child has an id, as the encoding requires. A node reachable twice
 * (vh_tab_clone shares parts) is entered twice but written once: the
 * second visit finds its id set.
 *
 * Writing a node sets its id and clears its edit token, so no writer can
 * change it in place again (a stale token would otherwise do it).
 *
 * BLOBS (ARCHITECTURE.md "Large string values out of line"). Just before
 * a CHAMP, collision or vector leaf is encoded, each of its big string
 * values (VH_BLOB_MIN bytes or more) whose trailer is still 0 is written
 * as a blob record under the next id and the id goes into the string's
 * trailer; the leaf then refers to it (codec.c, tag 7). A string that
 * already has an id (a path copy of a written leaf shares it) is not
 * written again: that is the point, a change to one value no longer
 * rewrites its neighbours' bytes. Blob ids are below their leaf's, as a
 * child's are (history.c's birth rule, rewind.c's walk).
 *
 * ALL OR NOTHING. Every node written gets its old id (0) and edit token
 * back if a later put or encoding fails (a blob's string its trailer 0),
 * and *next_id is restored: the
 * caller drops the half-built batch and nothing in memory claims to be on
 * disk.
 *
 * Memory: the stack, the undo list and the encoding buffer are plain
 * malloc, outside the trie's accounting, and freed before returning.
 */
#include <stdlib.h>

#include "vh_bytes.h"
#include "vh_codec.h"
#include "vh_flush.h"
#include "vh_trie_int.h"

typedef struct entry {
  vh_node_t *n;
  uint64_t edit; /* undo list: the token it had; stack: 1 once expanded */
} entry_t;

typedef struct list {
  entry_t *e;
  size_t n, cap;
} list_t;

typedef struct slist {
  vh_str_t **s;
  size_t n, cap;
} slist_t;

/* Write the blobs of n's big string values that have none yet. */
static int put_blobs(vh_node_t *n, slist_t *undo, vh_buf_t *buf,
                     uint64_t *next_id, vh_flush_put_fn put, void *arg,
                     uint64_t *blobs, uint64_t *bytes) {
  const vh_val_t *v;
  size_t i, step, count = vh_node__vals(n, &v, &step);
  int r;
  for (i = 0; i < count; i++, v += step) {
    vh_str_t *s;
    if (v->type != VH_TSTR || !vh_str__big(v->u.s)) continue;
    s = v->u.s;
    if (*vh_str__blob(s) & (VH_BLOB_ID_MASK | VH_BLOB_NODEATH))
      continue; /* written, or a view's */
    if (vh_grow(&undo->s, &undo->cap, undo->n + 1, sizeof *undo->s) != 0)
      return VH_ENOMEM;
    if ((r = vh_codec_encode_blob(vh_str_data(s), vh_str_len(s), buf)) < 0 ||
        (r = put(arg, *next_id, buf->p, buf->len)) < 0)
      return r;
    vh_str__set_blob_id(s, (*next_id)++);
    undo->s[undo->n++] = s;
    (*blobs)++;
    *bytes += buf->len;
  }
  return 0;
}

static int push(list_t *l, vh_node_t *n, uint64_t edit) {
  if (vh_grow(&l->e, &l->cap, l->n + 1, sizeof *l->e) != 0) return VH_ENOMEM;
  l->e[l->n].n = n;
  l->e[l->n].edit = edit;
  l->n++;
  return 0;
}

static inline int want(const vh_node_t *n) {
  return n != NULL && n->id == 0;
}

static int push_val(list_t *st, vh_val_t v) {
  if (v.type == VH_TTAB && want(&v.u.t->h)) return push(st, &v.u.t->h, 0);
  return 0;
}

/* Push n's id-0 children (nodes and nested tables). */
static int push_children(list_t *st, vh_node_t *n) {
  int i, r = 0;
  switch (n->kind) {
    case VH_K_TAB: {
      vh_tab_t *t = (vh_tab_t *)n;
      if (t->arr.root != NULL && want(&t->arr.root->h))
        r = push(st, &t->arr.root->h, 0);
      if (r == 0 && t->arr.tail != NULL && want(&t->arr.tail->h))
        r = push(st, &t->arr.tail->h, 0);
      if (r == 0 && want(t->hash)) r = push(st, t->hash, 0);
      return r;
    }
    case VH_K_CHAMP: {
      vh_champ_t *c = (vh_champ_t *)n;
      int nd = vh_popc(c->datamap);
      int nc = vh_popc(c->nodemap);
      vh_node_t **k = (vh_node_t **)(c->kv + 2 * nd);
      /* The children's headers first, all at once: the want() below
       * branches on each id, and a mispredicted branch (a new child
       * among stored ones) would wait for its miss before the next load
       * could start (bench/README.md "perf/loop"). */
      for (i = 0; i < nc; i++) __builtin_prefetch(k[i]);
      for (i = 0; i < nd && r == 0; i++) r = push_val(st, c->kv[2 * i + 1]);
      for (i = 0; i < nc && r == 0; i++)
        if (want(k[i])) r = push(st, k[i], 0);
      return r;
    }
    case VH_K_COLL: {
      vh_coll_t *l = (vh_coll_t *)n;
      for (i = 0; i < (int)l->count && r == 0; i++)
        r = push_val(st, l->kv[2 * i + 1]);
      return r;
    }
    case VH_K_VLEAF:
      for (i = 0; i < n->a && r == 0; i++)
        r = push_val(st, ((vh_vleaf_t *)n)->v[i]);
      return r;
    case VH_K_VINNER:
      for (i = 0; i < n->a && r == 0; i++) {
        vh_node_t *c = ((vh_vinner_t *)n)->c[i];
        if (want(c)) r = push(st, c, 0);
      }
      return r;
    default:
      return VH_EINVAL;
  }
}

int vh_flush_collect(vh_tab_t *const *roots, size_t nroots, uint64_t *next_id,
                     vh_flush_put_fn put, void *arg, vh_flush_stats_t *stats) {
  list_t st = {NULL, 0, 0}, undo = {NULL, 0, 0};
  slist_t sundo = {NULL, 0, 0};
  vh_buf_t buf;
  uint64_t id0 = *next_id, nodes = 0, bytes = 0, blobs = 0;
  size_t i;
  int r = 0;
  if (stats != NULL) stats->nodes = stats->bytes = stats->blobs = 0;
  if (*next_id == 0) return VH_EINVAL;
  vh_buf_init(&buf);
  for (i = 0; i < nroots && r == 0; i++)
    if (roots[i] != NULL && want(&roots[i]->h)) r = push(&st, &roots[i]->h, 0);
  while (r == 0 && st.n > 0) {
    entry_t *top = &st.e[st.n - 1];
    vh_node_t *n = top->n;
    if (n->id != 0) { /* reached twice: already written */
      st.n--;
      continue;
    }
    if (top->edit == 0) { /* first visit: children first */
      top->edit = 1;
      r = push_children(&st, n);
      continue;
    }
    st.n--;
    if (n->kind != VH_K_TAB && n->kind != VH_K_VINNER &&
        (r = put_blobs(n, &sundo, &buf, next_id, put, arg, &blobs, &bytes)) < 0)
      break;
    if ((r = vh_codec_encode(n, &buf)) < 0) break;
    if ((r = push(&undo, n, n->edit)) < 0) break;
    if ((r = put(arg, *next_id, buf.p, buf.len)) < 0) {
      undo.n--; /* n was not given its id */
      break;
    }
    n->id = (*next_id)++;
    n->edit = 0;
    nodes++;
    bytes += buf.len;
  }
  if (r < 0) {
    for (i = 0; i < undo.n; i++) {
      undo.e[i].n->id = 0;
      undo.e[i].n->edit = undo.e[i].edit;
    }
    for (i = 0; i < sundo.n; i++) vh_str__set_blob_id(sundo.s[i], 0);
    *next_id = id0;
  } else if (stats != NULL) {
    stats->nodes = nodes + blobs;
    stats->bytes = bytes;
    stats->blobs = blobs;
  }
  free(st.e);
  free(undo.e);
  free(sundo.s);
  vh_buf_free(&buf);
  return r;
}
