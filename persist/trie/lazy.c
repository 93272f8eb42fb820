/*
 * lazy.c - stubs, loading nodes on first touch, faults and death notices.
 *
 * WHY. A restart must not read the state: the host makes each root with
 * vh_tab_stub(id) and the trie reads a node only when a read or a write
 * first reaches it (ARCHITECTURE.md invariant 4). Nodes that were read or
 * written carry their store id; when one of them is freed the host is
 * told (the free hook), so the store can delete it in the batch that stops
 * referencing it (invariant 5).
 *
 * STUBS (layout in vh_trie_int.h). A child slot of a decoded node holds a
 * stub: a small vh_stub_t that knows the child's id, its expected kind and
 * what its parent implies about it (vh_codec_expect_t). vh_node__load()
 * reads and decodes the child once and keeps it in the stub's forwarding
 * pointer, which owns one reference to it. We forward rather than swap the
 * parent's slot because path copying shares the stub between versions:
 * swapping in one parent would leave the others with the stub, and a second
 * load would make two in-memory copies of one id, whose deaths would be
 * reported twice. A table is different: its stub is a full vh_tab_t that is
 * filled in place (the bindings cache table pointers).
 *
 * STATE DIAGRAM of a stored node (id != 0):
 *
 *   stub (fwd NULL) --first touch--> stub + fwd --refcount 0--> freed,
 *        |                                         fwd reports (id, 0)
 *        +--refcount 0--> freed, reports (id, 1): never loaded, its whole
 *                         subtree on disk is garbage
 *   table stub --first touch--> table (flag cleared, same node)
 *   written node (flush.c gave it an id) --refcount 0--> reports (id, 0)
 *
 * VIEWS. A reader of an old version (vh_tab_stub_view) makes its root a
 * view stub (VH_F_VIEW). Loading a view stub flags the decoded node and
 * every stub and table value in it, so the flag spreads down exactly as
 * far as the reader goes. A view node reports nothing when freed: its ids
 * belong to the store's history (or to the live version, which holds its
 * own in-memory copy of a shared id and reports that one), so the free
 * hook, which feeds the store's deletes, must never hear of them. Writes
 * refuse view tables (tab.c), so a view can never become part of a live
 * version.
 *
 * TWINS. vh_node__load_twin hands the decoder a loaded view node of an
 * older version at the same place (the change feed's walk, tdiff.c): the
 * children both share by id are taken from it instead of getting stubs.
 *
 * STAGED BYTES. A reader that read a batch of nodes in one go (the change
 * feed: a version's new nodes with one range scan) stages them
 * (stage.c); a load of a staged id decodes from those bytes and does not
 * call the loader. Nothing else differs.
 *
 * BLOBS (codec.c, BLOBS). A leaf's big string values stored out of line
 * are read while the leaf decodes (vh_trie__load_blob: one loader call
 * each, eager), so every reader above the codec sees plain strings. Lazy
 * blobs would save those reads for a leaf whose big values are never
 * looked at, but every string user would then have to load; a leaf
 * holds ~3 values, so eager costs at most ~3 reads per leaf loaded. A
 * blob string's trailer carries its id: the string reports the death
 * (str.c), with VH_BLOB_NODEATH under views like the nodes' flag.
 *
 * FAULTS. A failed load (loader error, decode error, out of memory) is
 * recorded per thread: the first one is sticky (vh_trie_fault) until
 * cleared; vh_trie__nfaults counts them all (a plain global: the trie has
 * one owner thread), so a write can tell whether one of its reads failed
 * and undo itself. The stub stays unloaded, so a
 * later touch retries.
 *
 * NO-LOAD MODE (vh_trie_noload). The host's change records are computed
 * on the loop thread at slice end, where a store read must never happen:
 * while the mode is on, fetch() fails with VH_ENOLOAD before calling the
 * loader (a blob likewise). The fault is recorded as for any failed load
 * (the caller clears it) and the stub stays unloaded, so the next touch
 * with loads on reads it as usual.
 *
 * THREADS. The loader, the hook and the stubs belong to the thread that
 * owns the trie (the loop thread); only the fault record is per thread.
 */
#include <inttypes.h>
#include <stdio.h>

#include "vh_codec.h"
#include "vh_trie_int.h"

static vh_trie_load_fn loader;     /* set once by the host */
static vh_trie_unload_fn unloader; /* frees what loader returned */
static void *loader_arg;
static vh_trie_free_hook_fn free_hook;
static void *free_hook_arg;
static int noload; /* vh_trie_noload: loads fail with VH_ENOLOAD */

uint64_t vh_trie__nfaults;            /* owner thread only, see vh_trie_int.h */
static _Thread_local int fault_first; /* sticky: the first since clear */
static _Thread_local int fault_last;  /* the latest */
static _Thread_local char fault_msg[192];

const vh_val_t vh_trie__nil; /* all zero: VH_TNIL */

void vh_trie_set_loader(vh_trie_load_fn fn, vh_trie_unload_fn free_fn,
                        void *arg) {
  loader = fn;
  unloader = free_fn;
  loader_arg = arg;
}

void vh_trie_set_free_hook(vh_trie_free_hook_fn fn, void *arg) {
  free_hook = fn;
  free_hook_arg = arg;
}

int vh_trie_noload(int on) {
  int was = noload;
  noload = on;
  return was;
}

int vh_trie_fault(const char **msg) {
  if (msg != NULL) *msg = fault_first != 0 ? fault_msg : "ok";
  return fault_first;
}

void vh_trie_fault_clear(void) {
  fault_first = 0;
  fault_msg[0] = '\0';
}

int vh_trie__fault_err(void) {
  return fault_last != 0 ? fault_last : VH_EIO;
}

void vh_trie__fault(int code, uint64_t id, const char *what) {
  vh_trie__nfaults++;
  fault_last = code;
  if (fault_first != 0) return;
  fault_first = code;
  snprintf(fault_msg, sizeof fault_msg, "node %" PRIu64 ": %s: %s", id,
           vh_err_name(code), what);
}

void vh_trie__died(uint64_t id, int subtree) {
  if (free_hook != NULL) free_hook(free_hook_arg, id, subtree);
}

vh_node_t *vh_node__stub(uint8_t kind, uint64_t id, uint8_t shift, uint8_t tail,
                         uint64_t expect) {
  vh_stub_t *s = (vh_stub_t *)vh_node__alloc(kind, sizeof(vh_stub_t), 0);
  if (s == NULL) return NULL;
  s->h.flags = VH_F_STUB;
  s->h.a = shift;
  s->h.b = tail;
  s->h.id = id;
  s->fwd = NULL;
  s->expect = expect;
  return &s->h;
}

vh_tab_t *vh_tab_stub(uint64_t id) {
  vh_tab_t *t;
  if (id == 0) return NULL;
  if ((t = vh_tab_new(0)) == NULL) return NULL;
  t->h.flags = VH_F_STUB;
  t->h.id = id;
  return t;
}

vh_tab_t *vh_tab_stub_view(uint64_t id) {
  vh_tab_t *t = vh_tab_stub(id);
  if (t != NULL) t->h.flags |= VH_F_VIEW;
  return t;
}

vh_tab_t *vh_tab_stub_private(uint64_t id) {
  vh_tab_t *t = vh_tab_stub(id);
  if (t != NULL) t->h.flags |= VH_F_PRIV;
  return t;
}

int vh_tab_is_view(const vh_tab_t *t) {
  return (t->h.flags & VH_F_VIEW) != 0;
}

static void vh_trie__view_val(vh_val_t v, uint8_t f) {
  if (v.type == VH_TTAB)
    v.u.t->h.flags |= f;
  else
    vh_str__nodeath(v);
}

void vh_trie__mark_view(vh_node_t *n) {
  vh_trie__mark_flags(n, VH_F_VIEW);
}

void vh_trie__mark_flags(vh_node_t *n, uint8_t f) {
  int i, k;
  n->flags |= f;
  switch (n->kind) {
    case VH_K_TAB: {
      vh_tab_t *t = (vh_tab_t *)n;
      if (t->arr.root != NULL) t->arr.root->h.flags |= f;
      if (t->arr.tail != NULL) t->arr.tail->h.flags |= f;
      if (t->hash != NULL) t->hash->flags |= f;
      break;
    }
    case VH_K_CHAMP: {
      vh_champ_t *c = (vh_champ_t *)n;
      int nd = vh_popc(c->datamap), nc = vh_popc(c->nodemap);
      vh_node_t **kids = (vh_node_t **)(c->kv + 2 * nd);
      for (i = 0; i < nd; i++) vh_trie__view_val(c->kv[2 * i + 1], f);
      for (k = 0; k < nc; k++) kids[k]->flags |= f;
      break;
    }
    case VH_K_COLL: {
      vh_coll_t *c = (vh_coll_t *)n;
      for (i = 0; i < (int)c->count; i++)
        vh_trie__view_val(c->kv[2 * i + 1], f);
      break;
    }
    case VH_K_VLEAF: {
      vh_vleaf_t *l = (vh_vleaf_t *)n;
      for (i = 0; i < n->a; i++) vh_trie__view_val(l->v[i], f);
      break;
    }
    default: { /* VH_K_VINNER */
      vh_vinner_t *in = (vh_vinner_t *)n;
      for (i = 0; i < n->a; i++) in->c[i]->flags |= f;
    }
  }
}

int vh_tab_unloaded(const vh_tab_t *t) {
  return (t->h.flags & VH_F_STUB) != 0;
}

uint64_t vh_tab_id(const vh_tab_t *t) {
  return t->h.id;
}

/* Ask the loader for node id's bytes; on failure record the fault. */
static int fetch(uint64_t id, const void **bytes, size_t *len) {
  int r;
  *bytes = NULL;
  *len = 0;
  if (noload) {
    vh_trie__fault(VH_ENOLOAD, id, "not in memory (loads are off)");
    return VH_ENOLOAD;
  }
  if (loader == NULL) {
    vh_trie__fault(VH_EINVAL, id, "no loader set");
    return VH_EINVAL;
  }
  r = loader(loader_arg, id, bytes, len);
  if (r < 0) {
    vh_trie__fault(r, id,
                   r == VH_ENOENT ? "missing from the store" : "load failed");
    return r;
  }
  return 0;
}

static void give_back(const void *bytes) {
  if (unloader != NULL && bytes != NULL) unloader(loader_arg, bytes);
}

int vh_trie__load_blob(uint64_t id, uint64_t len, vh_str_t **out,
                       const char **why) {
  const void *bytes;
  const unsigned char *b;
  size_t n;
  vh_str_t *s;
  int r;
  *out = NULL;
  if (loader == NULL && !noload) {
    *why = "blob: no loader set";
    vh_trie__fault(VH_EIO, id, *why);
    return VH_EIO;
  }
  int staged = vh_trie__stage != NULL && vh_trie__staged(id, &bytes, &n);
  if (!staged && (r = fetch(id, &bytes, &n)) < 0) {
    *why = r == VH_ENOENT    ? "blob missing from the store"
           : r == VH_ENOLOAD ? "blob not in memory (loads are off)"
                             : "blob load failed";
    return r;
  }
  b = bytes;
  r = VH_ECORRUPT;
  if (n < 1 || (b[0] & 15) != VH_K_BLOB || (b[0] >> 4) < 2)
    *why = "blob: not a blob record";
  else if ((b[0] >> 4) > VH_CODEC_VERSION)
    *why = "blob of a newer format (upgrade vedhost)", r = VH_EFORMAT;
  else if (n - 1 != len)
    *why = "blob: length differs from its reference";
  else if ((s = vh_str_new((const char *)b + 1, (size_t)len)) == NULL)
    *why = "out of memory", r = VH_ENOMEM;
  else {
    *vh_str__blob(s) = id | VH_BLOB_NODEATH;
    *out = s;
    r = 0;
  }
  if (!staged) give_back(bytes);
  if (r < 0) vh_trie__fault(r, id, *why);
  return r;
}

vh_node_t *vh_node__load(vh_node_t *n) {
  return vh_node__load_twin(n, NULL);
}

vh_node_t *vh_node__load_twin(vh_node_t *n, const vh_node_t *twin) {
  vh_stub_t *s = (vh_stub_t *)n;
  vh_codec_expect_t ex;
  const void *bytes;
  const char *why;
  vh_node_t *node;
  size_t len;
  int r;
  int staged = 0;
  if (s->fwd != NULL) return s->fwd;
  if (vh_trie__stage != NULL) staged = vh_trie__staged(n->id, &bytes, &len);
  if (!staged && fetch(n->id, &bytes, &len) < 0) return NULL;
  ex.kind = n->kind;
  ex.shift = n->a;
  ex.tail = n->b;
  ex.expect = s->expect;
  /* A twin only for a view stub (the decoded node is flagged as one). */
  ex.twin = (n->flags & VH_F_NODEATH) == VH_F_VIEW ? twin : NULL;
  r = vh_codec_decode(bytes, len, n->id, &ex, &node, &why);
  if (!staged) give_back(bytes);
  if (r < 0) {
    vh_trie__fault(r, n->id, why);
    return NULL;
  }
  if (n->flags & VH_F_NODEATH)
    vh_trie__mark_flags(node, n->flags & VH_F_NODEATH);
  s->fwd = node;
  return node;
}

/* HOW SWAPPING IS SAFE. A stub's refcount counts the slots (and callers)
 * holding it; a node shared by several versions is one node, so its slots
 * are shared too. With refcount 1 the slot we came through is the only
 * holder: nobody can still reach the stub once the slot holds the loaded
 * node. Code that keeps a raw child pointer across reads retains it first
 * (vec.c's pop, the compound writes in tab.c), which blocks the swap. */
vh_node_t *vh_node__take(vh_node_t *n) {
  vh_node_t *fwd = ((vh_stub_t *)n)->fwd;
  if (fwd == NULL || n->refc != 1) return NULL;
  vh_node__free_shell(n, sizeof(vh_stub_t)); /* its reference moves */
  return fwd;
}

vh_node_t *vh_node__load_slot(vh_node_t **slot) {
  vh_node_t *fwd = vh_node__load(*slot), *own;
  if (fwd != NULL && (own = vh_node__take(*slot)) != NULL) *slot = own;
  return fwd;
}

int vh_tab__load(vh_tab_t *t) {
  const void *bytes;
  const char *why;
  size_t len;
  int r;
  int staged = 0;
  if (!(t->h.flags & VH_F_STUB)) return 0;
  if (vh_trie__stage != NULL) staged = vh_trie__staged(t->h.id, &bytes, &len);
  if (!staged && (r = fetch(t->h.id, &bytes, &len)) < 0) return r;
  r = vh_codec_decode_tab(bytes, len, t, &why);
  if (!staged) give_back(bytes);
  if (r < 0) {
    vh_trie__fault(r, t->h.id, why);
    return r;
  }
  t->h.flags &= (uint8_t)~VH_F_STUB;
  if (t->h.flags & VH_F_NODEATH)
    vh_trie__mark_flags(&t->h, t->h.flags & VH_F_NODEATH);
  return 0;
}
