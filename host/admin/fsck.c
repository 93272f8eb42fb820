/*
 * fsck.c - `vedhost fsck [--data DIR]`: check a data dir (ARCHITECTURE.md
 * invariants 5 and 8), with or without a host running on it.
 *
 * WHAT IT PROVES. The store is opened as a secondary (offline.c), so the
 * manifest and the nodes are one consistent view. Then:
 *
 *  A. Graph walk (exact, low memory). From every root of the manifest
 *     (each domain's, and the system state "__ved"), depth first over node
 *     ids: each node is read (the store verifies its CRC-32C and record
 *     version) and validated alone by vh_codec_child_ids (kind, varints,
 *     tags, lengths, bitmaps, trailing bytes), which also lists the ids it
 *     refers to. Problems: a missing node, a corrupt or undecodable one, a
 *     node referred to twice (invariant 5 says every node has one parent;
 *     a second reference is a shared subtree or a loop), an id at or above
 *     the manifest's next id. Per root: nodes and encoded bytes.
 *  B. Trie walk (what one node cannot show). Each table is loaded through
 *     the trie's lazy loader, which decodes every node against what its
 *     parent implies (child kinds, hash prefixes, vector shapes), and
 *     iterated; the entries seen must match the counts the table node
 *     stores. Tables are walked one at a time, each from its own stub, so
 *     memory is bounded by the largest single table, not the state. This
 *     walk also learns the path of every table ("counter.recent"), used to
 *     name where a problem of walk A sits. Per root: keys (entries at every
 *     depth) and tables.
 *  C. Leak scan. Every node key of the store is listed; a node that walk A
 *     did not reach is a leak, unless it lies under an entry of the sweep
 *     queue (a dropped subtree the host deletes in the background: the
 *     queued ids and everything still stored below them), or its id is at
 *     or above the manifest's next id (a big group's nodes, written before
 *     its manifest, persist/store/store_writer.c BIG GROUPS: a crash
 *     between the two leaves them, and the host's next start deletes
 *     them).
 *
 *  D. History. Every retained version's roots are walked like A; death
 *     lists, pinned entries and the graveyard's ids (store format 5,
 *     persist/store/graveyard.c: counted dead, deleted with their block
 *     later) are pending (not leaks); a graveyard id must not be
 *     reachable, and each block's count must match its lists. Every change
 *     record ('C' seq, vh_chrec.h) must decode, be relative to an earlier
 *     version, and have its version record 'V' seq (they are written and
 *     deleted together).
 *
 * LIVE HOST. Beside a running host the view can lag (offline.c, A VIEW
 * THAT LAGS): a check that finds problems while a host holds the store is
 * made again on a new view, up to VH_FSCK_LIVE_TRIES checks; the last one
 * is reported. Without a host the first one is.
 *
 * Exit status: 0 with "fsck: ok ..." when clean; 1 with the report and
 * "fsck: N problems" otherwise, or with one line when the data dir cannot
 * be opened (missing, foreign, newer, damaged manifest, a store whose
 * RocksDB files are damaged, a write-ahead log with intact records after a
 * corrupt one: persist/store/store.c words these); 2 for bad usage.
 *
 * LIMITS. Walk B checks what vh_tab_check would except the multi-node
 * rules of the array part (keys n+1.. absent from the hash part); a
 * corrupt node that still decodes to a valid node with wrong contents is
 * undetectable by design (its CRC was computed over those contents).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_bytes.h"
#include "vh_chrec.h"
#include "vh_codec.h"
#include "vh_graveyard.h"
#include "vh_limits.h"
#include "vh_offline.h"
#include "vh_trie.h"
#include "vh_versions.h"

#define VH_FSCK_KIND_TAB 1    /* the table kind (vh_codec.h layout) */
#define VH_FSCK_MAX_SHOWN 50  /* problems printed in full */
#define VH_FSCK_MAX_LEAKS 20  /* unreachable ids listed by number */
#define VH_FSCK_PATH_MAX 1024 /* longest path kept (longer: cut with ...) */

static const char vh_fsck_usage[] =
    "usage: vedhost fsck [--data DIR]\n"
    "  Check the data dir (default " VH_DEFAULT_DATA_DIR
    "), whether or not a host\n"
    "  runs on it: every node reachable from the manifest reads and\n"
    "  decodes, and no unreachable node is left. Exit 0 when clean, 1 with\n"
    "  a report otherwise.\n";

/* One problem: a message, and where it sits (resolved to a path at the
 * end, when walk B has learnt the paths of the tables). */
typedef struct vh_fsck_problem {
  char *msg;      /* [owned] */
  uint64_t node;  /* the node concerned (its own path if it is a table) */
  uint64_t table; /* else the nearest table above it; 0 if unknown */
} vh_fsck_problem_t;

/* Counts per root (domain or system state). */
typedef struct vh_fsck_stats {
  uint64_t nodes, bytes; /* walk A */
  uint64_t keys, tables; /* walk B */
} vh_fsck_stats_t;

typedef struct vh_fsck {
  vh_offline_t o;
  size_t nroots;          /* domains, plus 1 if there is a system root */
  const char **names;     /* [owned array, borrowed names] per root */
  uint64_t *roots;        /* [owned] root ids */
  vh_fsck_stats_t *stats; /* [owned] per root */
  vh_idmap_t reach;       /* walk A: every node reached */
  vh_idmap_t reported;    /* nodes a problem is about */
  vh_idmap_t paths;       /* table ids whose path is wanted; flags = index
                             into path_of + 1 once known */
  char **path_of;         /* [owned] known paths of wanted tables */
  size_t npath;
  vh_fsck_problem_t *probs; /* [owned] */
  size_t nprobs, capprobs;
  uint64_t nomem; /* set when a problem could not be recorded */
  int tries;      /* checks made beside a live host (LIVE HOST) */
  /* History (walk D): retained versions, their nodes, pending entries. */
  vh_idmap_t pending;     /* ids of death-list and pinned entries */
  vh_idmap_t pending_sub; /* their never-loaded subtree roots */
  vh_idmap_t grave; /* dead ids waiting in the graveyard (store format 5) */
  uint64_t versions, marks;        /* retained versions ('V'), marks ('K') */
  uint64_t hist_nodes, hist_bytes; /* nodes only older versions reach */
  uint64_t dead_entries, pinned_entries;
  uint64_t hv_seq; /* the version being walked */
  uint64_t chrecs; /* change records ('C') */
} vh_fsck_t;

/* ---- problems ---- */

static void vh_fsck__problem(vh_fsck_t *f, uint64_t node, uint64_t table,
                             const char *fmt, ...) {
  if (vh_grow(&f->probs, &f->capprobs, f->nprobs + 1, sizeof *f->probs) != 0) {
    f->nomem++;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  char buf[512];
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  vh_fsck_problem_t *p = &f->probs[f->nprobs];
  p->msg = strdup(buf);
  if (p->msg == NULL) {
    f->nomem++;
    return;
  }
  p->node = node;
  p->table = table;
  f->nprobs++;
  /* Ask walk B for the paths that name this problem. */
  if (node) {
    vh_idmap_put(&f->reported, node, NULL);
    vh_idmap_put(&f->paths, node, NULL);
  }
  if (table) vh_idmap_put(&f->paths, table, NULL);
}

/* 1 if a problem about node id was recorded already. */
static int vh_fsck__reported(const vh_fsck_t *f, uint64_t id) {
  return vh_idmap_get(&f->reported, id) != NULL;
}

/* ---- a growable stack of u64 ---- */

typedef struct vh_fsck_stack {
  uint64_t *v;
  size_t n, cap;
} vh_fsck_stack_t;

static int vh_fsck__push(vh_fsck_stack_t *s, uint64_t x) {
  if (vh_grow(&s->v, &s->cap, s->n + 1, sizeof *s->v) != 0) return VH_ENOMEM;
  s->v[s->n++] = x;
  return 0;
}

static int vh_fsck__collect(void *arg, uint64_t id) {
  return vh_fsck__push(arg, id);
}

/* ---- walk A: the node graph ---- */

static int vh_fsck__walk_nodes(vh_fsck_t *f) {
  vh_fsck_stack_t todo = {0}, kids = {0};
  int rc = 0;
  for (size_t r = 0; r < f->nroots && rc == 0; r++) {
    int added;
    vh_idrec_t *rec = vh_idmap_put(&f->reach, f->roots[r], &added);
    if (rec == NULL) return VH_ENOMEM;
    if (!added) {
      vh_fsck__problem(f, f->roots[r], 0,
                       "root %s (node %" PRIu64
                       ") is also reachable from "
                       "%s",
                       f->names[r], f->roots[r], f->names[rec->owner]);
      continue;
    }
    rec->owner = (uint32_t)r;
    rec->table = f->roots[r];
    rc = vh_fsck__push(&todo, f->roots[r]);
  }
  while (rc == 0 && todo.n > 0) {
    uint64_t id = todo.v[--todo.n];
    vh_idrec_t me = *vh_idmap_get(&f->reach, id);
    void *bytes = NULL;
    size_t len = 0;
    char *msg = NULL;
    int e = vh_store_get_node(f->o.store, id, &bytes, &len, &msg);
    if (e == VH_ENOMEM) {
      free(msg);
      rc = e;
      break;
    }
    if (e == VH_ENOENT) {
      vh_fsck__problem(f, id, me.table,
                       "node %" PRIu64 " is missing (referred to by %s%" PRIu64
                       ")",
                       id, me.parent ? "node " : "the manifest, root ",
                       me.parent ? me.parent : id);
    } else if (e != 0) {
      vh_fsck__problem(f, id, me.table, "node %" PRIu64 " is corrupt: %s", id,
                       msg ? msg : vh_err_name(e));
    }
    free(msg);
    if (e != 0) continue;
    f->stats[me.owner].nodes++;
    f->stats[me.owner].bytes += len;
    if (id >= f->o.man.next_id)
      vh_fsck__problem(f, id, me.table,
                       "node %" PRIu64
                       " is at or above the manifest's next "
                       "id %" PRIu64,
                       id, f->o.man.next_id);
    int kind = 0;
    const char *why = NULL;
    kids.n = 0;
    e = vh_codec_child_ids(bytes, len, vh_fsck__collect, &kids, &kind, &why);
    free(bytes);
    if (e == VH_ENOMEM) {
      rc = e;
      break;
    }
    if (e != 0) {
      vh_fsck__problem(f, id, me.table, "node %" PRIu64 " does not decode: %s",
                       id, why ? why : vh_err_name(e));
      continue;
    }
    uint64_t table = kind == VH_FSCK_KIND_TAB ? id : me.table;
    if (me.parent == 0 && kind != VH_FSCK_KIND_TAB)
      vh_fsck__problem(f, id, 0,
                       "root %s (node %" PRIu64 ") is not a table node",
                       f->names[me.owner], id);
    for (size_t k = 0; k < kids.n && rc == 0; k++) {
      int added;
      vh_idrec_t *c = vh_idmap_put(&f->reach, kids.v[k], &added);
      if (c == NULL) {
        rc = VH_ENOMEM;
        break;
      }
      if (!added) {
        vh_fsck__problem(f, kids.v[k], table,
                         "node %" PRIu64 " has two parents (node %" PRIu64
                         " and %s%" PRIu64 "): a shared subtree or a loop",
                         kids.v[k], id, c->parent ? "node " : "root ",
                         c->parent ? c->parent : kids.v[k]);
        continue;
      }
      c->parent = id;
      c->table = table;
      c->owner = me.owner;
      rc = vh_fsck__push(&todo, kids.v[k]);
    }
  }
  free(todo.v);
  free(kids.v);
  return rc;
}

/* ---- walk D: the retained versions (history) ---- */

/* Walks the nodes of root id of version f->hv_seq that walk A (or an
 * earlier version) did not reach: shared subtrees are walked once. */
static int vh_fsck__walk_old_root(vh_fsck_t *f, uint64_t root,
                                  vh_fsck_stack_t *todo,
                                  vh_fsck_stack_t *kids) {
  int added;
  vh_idrec_t *rec = vh_idmap_put(&f->reach, root, &added);
  if (rec == NULL) return VH_ENOMEM;
  if (!added) return 0;
  rec->table = root;
  rec->flags = 2; /* reached from an older version */
  todo->n = 0;
  int rc = vh_fsck__push(todo, root);
  while (rc == 0 && todo->n > 0) {
    uint64_t id = todo->v[--todo->n];
    vh_idrec_t me = *vh_idmap_get(&f->reach, id);
    void *bytes = NULL;
    size_t len = 0;
    char *msg = NULL;
    int e = vh_store_get_node(f->o.store, id, &bytes, &len, &msg);
    if (e == VH_ENOMEM) {
      free(msg);
      return e;
    }
    if (e == VH_ENOENT)
      vh_fsck__problem(f, id, 0,
                       "node %" PRIu64 " of retained version %" PRIu64
                       " is missing (referred to by %s%" PRIu64
                       "): the history lost a node it still needs",
                       id, f->hv_seq, me.parent ? "node " : "its root ",
                       me.parent ? me.parent : id);
    else if (e != 0)
      vh_fsck__problem(f, id, 0,
                       "node %" PRIu64 " (version %" PRIu64 ") is corrupt: %s",
                       id, f->hv_seq, msg ? msg : vh_err_name(e));
    free(msg);
    if (e != 0) continue;
    f->hist_nodes++;
    f->hist_bytes += len;
    kids->n = 0;
    const char *why = NULL;
    e = vh_codec_child_ids(bytes, len, vh_fsck__collect, kids, NULL, &why);
    free(bytes);
    if (e == VH_ENOMEM) return e;
    if (e != 0) {
      vh_fsck__problem(f, id, 0,
                       "node %" PRIu64 " (version %" PRIu64
                       ") does not decode: %s",
                       id, f->hv_seq, why ? why : vh_err_name(e));
      continue;
    }
    for (size_t k = 0; k < kids->n && rc == 0; k++) {
      vh_idrec_t *c = vh_idmap_put(&f->reach, kids->v[k], &added);
      if (c == NULL) return VH_ENOMEM;
      if (!added) continue; /* shared with a version already walked */
      c->parent = id;
      c->flags = 2;
      rc = vh_fsck__push(todo, kids->v[k]);
    }
  }
  return rc;
}

typedef struct vh_fsck_hctx {
  vh_fsck_t *f;
  vh_fsck_stack_t todo, kids;
  int rc;
} vh_fsck_hctx_t;

static int vh_fsck__one_version(void *arg, const vh_version_t *v) {
  vh_fsck_hctx_t *c = arg;
  vh_fsck_t *f = c->f;
  f->versions++;
  f->hv_seq = v->seq;
  int rc = 0;
  if (v->m.sys_root)
    rc = vh_fsck__walk_old_root(f, v->m.sys_root, &c->todo, &c->kids);
  for (size_t i = 0; rc == 0 && i < v->m.ndomains; i++)
    rc = vh_fsck__walk_old_root(f, v->m.domains[i].root, &c->todo, &c->kids);
  c->rc = rc;
  return rc;
}

static int vh_fsck__pending_chunk(void *arg, uint64_t d, uint64_t s,
                                  const uint64_t *ents, size_t n,
                                  uint64_t est) {
  (void)d;
  (void)s;
  (void)est;
  vh_fsck_t *f = arg;
  f->dead_entries += n;
  for (size_t i = 0; i < n; i++) {
    vh_idmap_t *set = VH_DEAD_SUBTREE(ents[i]) ? &f->pending_sub : &f->pending;
    if (!vh_idmap_put(set, VH_DEAD_ID(ents[i]), NULL)) return VH_ENOMEM;
  }
  return 0;
}

static int vh_fsck__pending_pin(void *arg, uint64_t m, uint64_t d,
                                uint64_t ent) {
  (void)m;
  (void)d;
  vh_fsck_t *f = arg;
  f->pinned_entries++;
  vh_idmap_t *set = VH_DEAD_SUBTREE(ent) ? &f->pending_sub : &f->pending;
  return vh_idmap_put(set, VH_DEAD_ID(ent), NULL) ? 0 : VH_ENOMEM;
}

static int vh_fsck__grave_id(void *arg, uint64_t id) {
  vh_fsck_t *f = arg;
  return vh_idmap_put(&f->grave, id, NULL) ? 0 : VH_ENOMEM;
}

/* A graveyard block's record counts the ids its lists hold. */
static int vh_fsck__grave_block(void *arg, uint64_t block, unsigned bits,
                                uint64_t dead, uint64_t seen) {
  vh_fsck_t *f = arg;
  if (dead != seen || dead > ((uint64_t)1 << bits))
    vh_fsck__problem(
        f, 0, 0,
        "graveyard block %" PRIu64 " (ids %" PRIu64 "..%" PRIu64
        "): its record counts %" PRIu64 " dead ids, its lists hold %" PRIu64,
        block, block << bits, ((block + 1) << bits) - 1, dead, seen);
  return 0;
}

/* A change record (vh_chrec.h) must decode and ride with its version:
 * 'C' seq without 'V' seq is a record the drop of its version missed. */
static int vh_fsck__one_chrec(void *arg, uint64_t seq, const vh_chrec_t *r,
                              int rc, const char *msg, size_t bytes) {
  vh_fsck_t *f = arg;
  (void)bytes;
  f->chrecs++;
  if (r == NULL) {
    vh_fsck__problem(f, 0, 0, "change record of version %" PRIu64 ": %s", seq,
                     msg ? msg : vh_err_name(rc));
    return 0;
  }
  vh_version_t v;
  int e = vh_store_version_get(f->o.store, seq, &v, NULL);
  if (e == 0)
    vh_version_free(&v);
  else
    vh_fsck__problem(f, 0, 0,
                     "change record of version %" PRIu64
                     " without its version record ('C' without 'V')",
                     seq);
  if (r->pred >= seq)
    vh_fsck__problem(f, 0, 0,
                     "change record of version %" PRIu64
                     " is relative to a later version %" PRIu64,
                     seq, r->pred);
  return 0;
}

/* Every retained version (window and marked) reaches its nodes; death
 * lists and pinned entries are listed as pending. */
static int vh_fsck__walk_history(vh_fsck_t *f) {
  vh_fsck_hctx_t c = {f, {0}, {0}, 0};
  char *msg = NULL;
  int rc =
      vh_store_versions_each(f->o.store, 1, vh_fsck__one_version, &c, &msg);
  if (rc != 0 && rc != VH_ENOMEM) {
    vh_fsck__problem(f, 0, 0, "the version records cannot be read: %s",
                     msg ? msg : vh_err_name(rc));
    rc = 0;
  }
  free(msg);
  msg = NULL;
  free(c.todo.v);
  free(c.kids.v);
  if (rc != 0) return rc;
  rc = vh_store_deaths_all(f->o.store, vh_fsck__pending_chunk, f, &msg);
  if (rc == 0) {
    free(msg);
    msg = NULL;
    rc = vh_store_pins_each(f->o.store, 0, vh_fsck__pending_pin, f, &msg);
  }
  if (rc == 0) {
    free(msg);
    msg = NULL;
    rc = vh_store_grave_each(f->o.store, vh_fsck__grave_id,
                             vh_fsck__grave_block, f, &msg);
  }
  if (rc != 0 && rc != VH_ENOMEM) {
    vh_fsck__problem(f, 0, 0,
                     "the death lists, pinned entries or graveyard cannot be "
                     "read: %s",
                     msg ? msg : vh_err_name(rc));
    rc = 0;
  }
  free(msg);
  msg = NULL;
  if (rc == 0) {
    int e = vh_store_chrec_each(f->o.store, vh_fsck__one_chrec, f, &msg);
    if (e != 0 && e != VH_ENOMEM)
      vh_fsck__problem(f, 0, 0, "the change records cannot be read: %s",
                       msg ? msg : vh_err_name(e));
    if (e == VH_ENOMEM) rc = e;
    free(msg);
  }
  vh_mark_t *ms = NULL;
  size_t nm = 0;
  msg = NULL;
  if (rc == 0 && vh_store_marks(f->o.store, &ms, &nm, &msg) == 0) {
    f->marks = nm;
    for (size_t i = 0; i < nm; i++) {
      vh_version_t v;
      if (vh_store_version_get(f->o.store, ms[i].seq, &v, NULL) != 0)
        vh_fsck__problem(f, 0, 0,
                         "mark '%s' names version %" PRIu64
                         ", whose record is missing",
                         ms[i].name, ms[i].seq);
      else
        vh_version_free(&v);
    }
    vh_marks_free(ms, nm);
  }
  free(msg);
  return rc;
}

/* ---- walk B: tables through the trie ---- */

typedef struct vh_fsck_job {
  uint64_t id;
  char *path; /* [owned] */
  long depth; /* the root table is 1 (vh_limits.h) */
} vh_fsck_job_t;

/* Appends the path element for key k to path [borrowed] into a [new]
 * string: .name for identifiers and integers, [k] for the rest. */
static char *vh_fsck__child_path(const char *path, vh_val_t k) {
  char el[96];
  switch (k.type) {
    case VH_TINT:
      snprintf(el, sizeof el, ".%" PRId64, k.u.i);
      break;
    case VH_TFLOAT:
      snprintf(el, sizeof el, "[%.17g]", k.u.f);
      break;
    case VH_TBOOL:
      snprintf(el, sizeof el, "[%s]", k.u.b ? "true" : "false");
      break;
    case VH_TSTR: {
      const char *s = vh_str_data(k.u.s);
      size_t n = vh_str_len(k.u.s), i = 0;
      int ident = n > 0 && n < 64 && !(s[0] >= '0' && s[0] <= '9');
      for (i = 0; i < n && ident; i++) {
        char c = s[i];
        ident = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9');
      }
      if (ident)
        snprintf(el, sizeof el, ".%s", s);
      else
        snprintf(el, sizeof el, "[\"%.*s%s\"]", n > 60 ? 60 : (int)n, s,
                 n > 60 ? "..." : "");
      break;
    }
    default:
      snprintf(el, sizeof el, "[?]");
  }
  /* A path longer than VH_FSCK_PATH_MAX ends in "..." and stops growing:
   * each child's path costs at most that many bytes, so the walk stays
   * linear in the tables however deep they nest (growing it by "..." per
   * level made a 1M-level chain quadratic). */
  size_t a = strlen(path), b = strlen(el);
  if (a + b > VH_FSCK_PATH_MAX) {
    if (a >= 3 && strcmp(path + a - 3, "...") == 0) return strdup(path);
    b = strlen("...");
    memcpy(el, "...", b + 1);
  }
  char *p = malloc(a + b + 1);
  if (p == NULL) return NULL;
  memcpy(p, path, a);
  memcpy(p + a, el, b + 1);
  return p;
}

/* Remember path [borrowed] for table id if a problem asked for it. */
static void vh_fsck__learn_path(vh_fsck_t *f, uint64_t id, const char *path) {
  vh_idrec_t *r = vh_idmap_get(&f->paths, id);
  if (r == NULL || r->flags != 0) return;
  char **p = realloc(f->path_of, (f->npath + 1) * sizeof *p);
  if (p == NULL) return;
  f->path_of = p;
  if ((p[f->npath] = strdup(path)) == NULL) return;
  r->flags = (uint32_t)++f->npath;
}

/* Pushes job {id, path [stolen]} on the job stack. */
static int vh_fsck__push_job(vh_fsck_job_t **todo, size_t *n, size_t *cap,
                             uint64_t id, char *path, long depth) {
  if (vh_grow(todo, cap, *n + 1, sizeof **todo) != 0) {
    free(path);
    return VH_ENOMEM;
  }
  (*todo)[(*n)++] = (vh_fsck_job_t){id, path, depth};
  return 0;
}

/* Walks one table (job) of root r, pushing its nested tables on todo. */
static int vh_fsck__walk_table(vh_fsck_t *f, size_t r, vh_fsck_job_t *job,
                               vh_fsck_job_t **todo, size_t *n, size_t *cap,
                               int *deep) {
  vh_tab_t *t = vh_tab_stub(job->id);
  if (t == NULL) return VH_ENOMEM;
  vh_trie_fault_clear();
  size_t said = vh_tab_count(t), seen = 0;
  int rc = 0;
  vh_iter_t it;
  vh_val_t k, v;
  vh_iter_init(&it, t);
  while (rc == 0 && vh_iter_next(&it, &k, &v)) {
    seen++;
    if (v.type != VH_TTAB) continue;
    uint64_t cid = vh_tab_id(v.u.t);
    char *cpath = vh_fsck__child_path(job->path, k);
    if (cpath == NULL) {
      rc = VH_ENOMEM;
      break;
    }
    if (job->depth + 1 == VH_MAX_DEPTH + 1 && !*deep) {
      *deep = 1; /* once per root: a deep tree may cross the limit often */
      vh_fsck__problem(f, 0, cid,
                       "a table (node %" PRIu64
                       ") is nested deeper than %d levels, the limit (an "
                       "older vedhost wrote it): it reads, but export "
                       "refuses it; make it shallower from the REPL",
                       cid, VH_MAX_DEPTH);
    }
    vh_fsck__learn_path(f, cid, cpath);
    rc = vh_fsck__push_job(todo, n, cap, cid, cpath, job->depth + 1);
  }
  const char *fmsg = NULL;
  int fault = vh_trie_fault(&fmsg);
  if (fault == VH_ENOMEM) rc = VH_ENOMEM;
  if (rc == 0 && fault != 0) {
    unsigned long long bad = 0;
    if (sscanf(fmsg, "node %llu", &bad) != 1 ||
        !vh_fsck__reported(f, (uint64_t)bad))
      vh_fsck__problem(f, bad ? (uint64_t)bad : job->id, job->id,
                       "table %s (node %" PRIu64 ") cannot be read: %s",
                       job->path, job->id, fmsg);
  } else if (rc == 0 && seen != said) {
    vh_fsck__problem(f, job->id, job->id,
                     "table %s (node %" PRIu64
                     ") holds %zu entries but its "
                     "node counts %zu",
                     job->path, job->id, seen, said);
  }
  vh_trie_fault_clear();
  f->stats[r].keys += seen;
  f->stats[r].tables++;
  vh_tab_release(t);
  return rc;
}

static int vh_fsck__walk_tables(vh_fsck_t *f) {
  vh_offline_use_loader(&f->o);
  int rc = 0;
  vh_fsck_job_t *todo = NULL;
  size_t n = 0, cap = 0;
  for (size_t r = 0; r < f->nroots && rc == 0; r++) {
    /* A root that walk A found unreadable is not walked again. */
    if (vh_fsck__reported(f, f->roots[r])) continue;
    char *p = strdup(f->names[r]);
    if (p == NULL) {
      rc = VH_ENOMEM;
      break;
    }
    vh_fsck__learn_path(f, f->roots[r], p);
    rc = vh_fsck__push_job(&todo, &n, &cap, f->roots[r], p, 1);
    int deep = 0;
    while (n > 0) {
      vh_fsck_job_t job = todo[--n];
      /* A table of walk A's problems is skipped (already reported). */
      if (rc == 0 && !vh_fsck__reported(f, job.id))
        rc = vh_fsck__walk_table(f, r, &job, &todo, &n, &cap, &deep);
      free(job.path);
    }
  }
  free(todo);
  vh_trie_set_loader(NULL, NULL, NULL);
  return rc;
}

/* ---- C: leaks ---- */

static int vh_fsck__queue_one(void *arg, uint64_t id) {
  return vh_idmap_put(arg, id, NULL) ? 0 : VH_ENOMEM;
}

static int vh_fsck__expand(vh_fsck_t *f, vh_idmap_t *sweep);

/* The sweep queue and every node still stored below its entries. */
static int vh_fsck__sweep_set(vh_fsck_t *f, vh_idmap_t *sweep) {
  char *msg = NULL;
  int rc = vh_offline_sweep_ids(&f->o, vh_fsck__queue_one, sweep, &msg);
  if (rc != 0) {
    vh_fsck__problem(f, 0, 0, "the sweep queue cannot be read: %s",
                     msg ? msg : vh_err_name(rc));
    free(msg);
    return rc == VH_ENOMEM ? rc : 0;
  }
  return vh_fsck__expand(f, sweep);
}

/* Adds to set every node stored below its ids. */
static int vh_fsck__expand(vh_fsck_t *f, vh_idmap_t *sweep) {
  int rc = 0;
  vh_fsck_stack_t todo = {0}, kids = {0};
  for (size_t i = 0; i < sweep->cap && rc == 0; i++)
    if (sweep->slot[i].id) rc = vh_fsck__push(&todo, sweep->slot[i].id);
  while (rc == 0 && todo.n > 0) {
    uint64_t id = todo.v[--todo.n];
    void *bytes = NULL;
    size_t len = 0;
    if (vh_store_get_node(f->o.store, id, &bytes, &len, NULL) != 0) continue;
    kids.n = 0;
    int e = vh_codec_child_ids(bytes, len, vh_fsck__collect, &kids, NULL, NULL);
    free(bytes);
    if (e == VH_ENOMEM) rc = e;
    for (size_t k = 0; e == 0 && k < kids.n && rc == 0; k++) {
      int added;
      if (vh_idmap_put(sweep, kids.v[k], &added) == NULL)
        rc = VH_ENOMEM;
      else if (added)
        rc = vh_fsck__push(&todo, kids.v[k]);
    }
  }
  free(todo.v);
  free(kids.v);
  return rc;
}

static int vh_fsck__cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Reports the leaked nodes (ids [borrowed], n of them) as subtrees: a leak
 * whose parent is another leak is not listed, so a stranded subtree (its
 * parent missing or unreadable) or a dropped one reads as one entry. */
static int vh_fsck__report_leaks(vh_fsck_t *f, vh_idmap_t *leaks) {
  vh_fsck_stack_t kids = {0}, roots = {0};
  int rc = 0;
  for (size_t i = 0; i < leaks->cap && rc == 0; i++) {
    uint64_t id = leaks->slot[i].id;
    void *bytes = NULL;
    size_t len = 0;
    if (id == 0 || vh_store_get_node(f->o.store, id, &bytes, &len, NULL) != 0)
      continue;
    kids.n = 0;
    if (vh_codec_child_ids(bytes, len, vh_fsck__collect, &kids, NULL, NULL) ==
        0)
      for (size_t k = 0; k < kids.n; k++) {
        vh_idrec_t *c = vh_idmap_get(leaks, kids.v[k]);
        if (c != NULL && c->id != id) c->flags = 1;
      }
    free(bytes);
  }
  for (size_t i = 0; i < leaks->cap && rc == 0; i++)
    if (leaks->slot[i].id && !leaks->slot[i].flags)
      rc = vh_fsck__push(&roots, leaks->slot[i].id);
  if (rc == 0) {
    qsort(roots.v, roots.n, sizeof *roots.v, vh_fsck__cmp_u64);
    char list[VH_FSCK_MAX_LEAKS * 22 + 8];
    size_t ll = 0;
    list[0] = '\0';
    for (size_t i = 0; i < roots.n && i < VH_FSCK_MAX_LEAKS; i++)
      ll += (size_t)snprintf(list + ll, sizeof list - ll, "%s%" PRIu64,
                             ll ? ", " : "", roots.v[i]);
    size_t n = leaks->n;
    vh_fsck__problem(f, 0, 0,
                     "%zu unreachable node%s (neither reachable from the "
                     "manifest or a retained version, nor pending in a "
                     "death list, a mark or the sweep queue), in %zu "
                     "subtree%s "
                     "rooted at node%s %s%s",
                     n, n == 1 ? "" : "s", roots.n, roots.n == 1 ? "" : "s",
                     roots.n == 1 ? "" : "s", list,
                     roots.n > VH_FSCK_MAX_LEAKS ? ", ..." : "");
  }
  free(kids.v);
  free(roots.v);
  return rc;
}

static int vh_fsck__leaks(vh_fsck_t *f, uint64_t *total, uint64_t *bytes,
                          uint64_t *queued) {
  vh_idmap_t sweep = {0}, leaks = {0};
  int rc = vh_fsck__sweep_set(f, &sweep);
  /* Below a pending subtree root that no retained version reaches, every
   * stored node is pending too (a reached one needs no walk). */
  vh_idmap_t cold = {0};
  for (size_t i = 0; rc == 0 && i < f->pending_sub.cap; i++) {
    uint64_t sid = f->pending_sub.slot[i].id;
    if (sid && !vh_idmap_get(&f->reach, sid) && !vh_idmap_put(&cold, sid, NULL))
      rc = VH_ENOMEM;
  }
  if (rc == 0 && cold.n) rc = vh_fsck__expand(f, &cold);
  vh_store_iter_t *it = NULL;
  char *msg = NULL;
  if (rc == 0) rc = vh_store_iter_new(f->o.store, &it, &msg);
  uint64_t id;
  size_t size;
  int more;
  while (rc == 0 && (more = vh_store_iter_next(it, &id, &size, &msg)) != 0) {
    if (more < 0) {
      vh_fsck__problem(f, 0, 0, "the node scan failed: %s",
                       msg ? msg : vh_err_name(more));
      break;
    }
    (*total)++;
    *bytes += size;
    vh_idrec_t *r = vh_idmap_get(&f->reach, id);
    int swept = vh_idmap_get(&sweep, id) != NULL;
    int grave = vh_idmap_get(&f->grave, id) != NULL;
    if (r != NULL && grave)
      vh_fsck__problem(f, id, r->table,
                       "node %" PRIu64
                       " is reachable but in the graveyard "
                       "(counted dead)",
                       id);
    int pend = vh_idmap_get(&f->pending, id) != NULL ||
               vh_idmap_get(&cold, id) != NULL || grave;
    if (r != NULL && swept)
      vh_fsck__problem(f, id, r->table,
                       "node %" PRIu64
                       " is reachable but queued for "
                       "sweeping",
                       id);
    if (swept) (*queued)++;
    /* at or above the manifest's next id and unreached: the node puts
     * of a big group whose manifest is not written yet, or never was
     * (a crash: the host's next start deletes them; store_writer.c,
     * BIG GROUPS), not a leak */
    int beyond = r == NULL && id >= f->o.man.next_id;
    if (r == NULL && !swept && !pend && !beyond &&
        vh_idmap_put(&leaks, id, NULL) == NULL)
      rc = VH_ENOMEM;
  }
  free(msg);
  vh_store_iter_free(it);
  if (rc == 0 && leaks.n > 0) rc = vh_fsck__report_leaks(f, &leaks);
  vh_idmap_free(&leaks);
  vh_idmap_free(&sweep);
  vh_idmap_free(&cold);
  return rc;
}

/* ---- report ---- */

static const char *vh_fsck__path(const vh_fsck_t *f, uint64_t id) {
  vh_idrec_t *r = vh_idmap_get(&f->paths, id);
  return r && r->flags ? f->path_of[r->flags - 1] : NULL;
}

static void vh_fsck__report(const vh_fsck_t *f) {
  for (size_t i = 0; i < f->nprobs && i < VH_FSCK_MAX_SHOWN; i++) {
    const vh_fsck_problem_t *p = &f->probs[i];
    const char *own = p->node ? vh_fsck__path(f, p->node) : NULL;
    const char *up = p->table ? vh_fsck__path(f, p->table) : NULL;
    if (own)
      printf("problem: %s [at %s]\n", p->msg, own);
    else if (up)
      printf("problem: %s [under %s]\n", p->msg, up);
    else
      printf("problem: %s\n", p->msg);
  }
  if (f->nprobs > VH_FSCK_MAX_SHOWN)
    printf("problem: ... and %zu more\n", f->nprobs - VH_FSCK_MAX_SHOWN);
}

static void vh_fsck__free(vh_fsck_t *f) {
  for (size_t i = 0; i < f->nprobs; i++) free(f->probs[i].msg);
  free(f->probs);
  for (size_t i = 0; i < f->npath; i++) free(f->path_of[i]);
  free(f->path_of);
  vh_idmap_free(&f->reach);
  vh_idmap_free(&f->paths);
  vh_idmap_free(&f->reported);
  vh_idmap_free(&f->pending);
  vh_idmap_free(&f->pending_sub);
  vh_idmap_free(&f->grave);
  free(f->names);
  free(f->roots);
  free(f->stats);
  vh_offline_close(&f->o);
}

/* Checks beside a live host a store found with problems (LIVE HOST). */
#define VH_FSCK_LIVE_TRIES 5

int vh_fsck_main(int argc, char **argv) {
  const char *data;
  int rc = vh_offline_args(argc, argv, vh_fsck_usage, &data, NULL);
  if (rc != 0) return rc == 1 ? 0 : rc;
  vh_fsck_t f;
  memset(&f, 0, sizeof f);
  char err[1024];
again:
  if (vh_offline_open(&f.o, data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: fsck: %s\n", err);
    return 1;
  }
  f.o.fixed_view = 1; /* the leak scan lists the view the walks read */
  size_t nd = f.o.man.ndomains;
  f.nroots = nd + (f.o.man.sys_root ? 1 : 0);
  f.names = calloc(f.nroots + 1, sizeof *f.names);
  f.roots = calloc(f.nroots + 1, sizeof *f.roots);
  f.stats = calloc(f.nroots + 1, sizeof *f.stats);
  if (f.names == NULL || f.roots == NULL || f.stats == NULL) goto oom;
  for (size_t i = 0; i < nd; i++) {
    f.names[i] = f.o.man.domains[i].name;
    f.roots[i] = f.o.man.domains[i].root;
  }
  if (f.o.man.sys_root) {
    f.names[nd] = "__ved";
    f.roots[nd] = f.o.man.sys_root;
  }
  if (vh_fsck__walk_nodes(&f) != 0 || vh_fsck__walk_tables(&f) != 0 ||
      vh_fsck__walk_history(&f) != 0)
    goto oom;
  uint64_t total = 0, bytes = 0, queued = 0;
  if (vh_fsck__leaks(&f, &total, &bytes, &queued) != 0 || f.nomem) goto oom;
  /* LIVE HOST: a view of a host that writes can lack a flushed batch's
   * nodes and deletes (offline.c, A VIEW THAT LAGS): a missing node, a
   * leak. Such problems go with a new view; real damage stays. */
  if (f.nprobs > 0 && ++f.tries < VH_FSCK_LIVE_TRIES &&
      vh_store_primary_live(f.o.store)) {
    int tries = f.tries;
    vh_fsck__free(&f);
    memset(&f, 0, sizeof f);
    f.tries = tries;
    goto again;
  }

  if (f.o.has_manifest)
    printf("fsck: %s: manifest seq %" PRIu64 ", next id %" PRIu64
           ", %zu domain%s\n",
           data, f.o.man.seq, f.o.man.next_id, nd, nd == 1 ? "" : "s");
  else
    printf("fsck: %s: no manifest (no slice committed yet)\n", data);
  for (size_t i = 0; i < f.nroots; i++)
    if (i < nd)
      printf("  domain %-16s version %-3" PRId64 " %8" PRIu64
             " nodes %10" PRIu64 " bytes %9" PRIu64 " keys %7" PRIu64
             " tables\n",
             f.names[i], f.o.man.domains[i].version, f.stats[i].nodes,
             f.stats[i].bytes, f.stats[i].keys, f.stats[i].tables);
    else
      printf("  system %-16s %-11s %8" PRIu64 " nodes %10" PRIu64
             " bytes %9" PRIu64 " keys %7" PRIu64 " tables\n",
             f.names[i], "", f.stats[i].nodes, f.stats[i].bytes,
             f.stats[i].keys, f.stats[i].tables);
  printf("  store: %" PRIu64 " nodes, %" PRIu64 " bytes, %" PRIu64
         " queued for sweeping\n",
         total, bytes, queued);
  vh_history_t hh;
  if (vh_store_history(f.o.store, &hh, NULL) == 0)
    printf("  history: %" PRIu64 " version%s retained (window %" PRIu64
           "..%" PRIu64 ", %" PRIu64 " in it), %" PRIu64 " mark%s; %" PRIu64
           " nodes (%" PRIu64 " bytes) only older versions reach; %" PRIu64
           " death-list entries, %" PRIu64 " pinned; estimate %" PRIu64
           " KB; %" PRIu64 " change records\n",
           f.versions, f.versions == 1 ? "" : "s", hh.oldest, hh.newest,
           hh.count, f.marks, f.marks == 1 ? "" : "s", f.hist_nodes,
           f.hist_bytes, f.dead_entries, f.pinned_entries,
           (hh.bytes + hh.pinned_bytes) / 1024, f.chrecs);
  vh_fsck__report(&f);
  if (f.nprobs == 0)
    printf("fsck: ok (%zu domain%s, %" PRIu64 " nodes reachable)\n", nd,
           nd == 1 ? "" : "s", (uint64_t)f.reach.n);
  else
    printf("fsck: %zu problem%s\n", f.nprobs, f.nprobs == 1 ? "" : "s");
  rc = f.nprobs == 0 ? 0 : 1;
  vh_fsck__free(&f);
  return rc;

oom:
  fprintf(stderr, "vedhost: fsck: out of memory\n");
  vh_fsck__free(&f);
  return 1;
}
