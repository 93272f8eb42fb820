/*
 * tab_view.c - turning a tree already in memory into a view
 * (vh_tab_make_view, vh_trie.h).
 *
 * WHY. A rollback (host/admin/rollback_cmd.c, host/repl/repl_rollback.c)
 * replaces a domain's root by the root of an older version. The ids of the
 * replaced tree are partly alive again in the tree brought back, so none of
 * its nodes may ever report its death to the free hook: the rollback
 * reports the dead ones itself. Whoever still holds part of the replaced
 * tree (a REPL fork, an iterator, a plugin's reader) frees it later, at any
 * time; flagging every node in memory VH_F_VIEW now (what a view stub's
 * loads do as they go, persist/trie/lazy.c) makes each of those frees
 * silent, and makes the nodes read-only.
 *
 * HOW. An explicit stack (no recursion: trees nest deep) over every node
 * reachable in memory: tables, CHAMP and collision nodes, vector nodes,
 * and the target of a loaded stub, and the big string values (their blob
 * ids, str.c); an unloaded stub gets the flag and its
 * load (if it ever happens) passes it on. A committed tree holds each node
 * once, so no visited set is needed.
 */
#include <stdlib.h>

#include "vh_bytes.h"
#include "vh_trie.h"
#include "vh_trie_int.h"

typedef struct nstack {
  vh_node_t **v;
  size_t n, cap;
} nstack_t;

static int npush(nstack_t *s, vh_node_t *n) {
  if (n == NULL) return 0;
  if (vh_grow(&s->v, &s->cap, s->n + 1, sizeof *s->v) != 0) return VH_ENOMEM;
  s->v[s->n++] = n;
  return 0;
}

/* A table value is walked; a big string's blob id goes silent too. */
static int npush_val(nstack_t *s, vh_val_t v) {
  vh_str__nodeath(v);
  return v.type == VH_TTAB ? npush(s, &v.u.t->h) : 0;
}

int vh_tab_make_view(vh_tab_t *t) {
  nstack_t st = {NULL, 0, 0};
  int r = npush(&st, &t->h), i;
  while (r == 0 && st.n > 0) {
    vh_node_t *n = st.v[--st.n];
    n->flags |= VH_F_VIEW;
    if (n->flags & VH_F_STUB) { /* a loaded stub forwards to its node */
      if (n->kind != VH_K_TAB) r = npush(&st, ((vh_stub_t *)n)->fwd);
      continue;
    }
    switch (n->kind) {
      case VH_K_TAB: {
        vh_tab_t *x = (vh_tab_t *)n;
        if (x->arr.root != NULL) r = npush(&st, &x->arr.root->h);
        if (r == 0 && x->arr.tail != NULL) r = npush(&st, &x->arr.tail->h);
        if (r == 0) r = npush(&st, x->hash);
        break;
      }
      case VH_K_CHAMP: {
        vh_champ_t *c = (vh_champ_t *)n;
        int nd = vh_popc(c->datamap);
        int nc = vh_popc(c->nodemap);
        vh_node_t **kids = (vh_node_t **)(c->kv + 2 * nd);
        for (i = 0; i < nd && r == 0; i++) r = npush_val(&st, c->kv[2 * i + 1]);
        for (i = 0; i < nc && r == 0; i++) r = npush(&st, kids[i]);
        break;
      }
      case VH_K_COLL: {
        vh_coll_t *c = (vh_coll_t *)n;
        for (i = 0; i < (int)c->count && r == 0; i++)
          r = npush_val(&st, c->kv[2 * i + 1]);
        break;
      }
      case VH_K_VLEAF:
        for (i = 0; i < n->a && r == 0; i++)
          r = npush_val(&st, ((vh_vleaf_t *)n)->v[i]);
        break;
      default: /* VH_K_VINNER */
        for (i = 0; i < n->a && r == 0; i++)
          r = npush(&st, ((vh_vinner_t *)n)->c[i]);
    }
  }
  free(st.v);
  return r;
}
