/*
 * changes.c - the diff of two versions, domain by domain, and the change
 * feed (vh_changes.h).
 *
 * DIFF. Each side is a sorted list of (domain, root). The two lists are
 * merged by name; a domain on one side only is diffed against an empty
 * table (every key added or removed). Within a domain persist/tdiff.c
 * walks the two roots and skips every subtree both versions share (the
 * same store id, or the same pointer for live tables), so a diff costs
 * what changed, not the size of the state.
 *
 * FEED. The versions are the store's version records ('V', host/history.c
 * writes one in each slice's own batch), read in seq order with
 * vh_store_version_scan. Version v's changes are the diff of the retained
 * version before it (its manifest is kept in the vh_feed_t) and v. A
 * record exists only once the writer thread wrote its batch, so a version
 * is never sent before it is committed (with --durability sync, before it
 * is on disk). Each version is walked once; its changes are collected
 * (values borrowed from the two versions' roots, kept until they are
 * sent) so that each carries "of", the version's count: a consumer can
 * tell a version it saw whole from one it saw in part. Memory: one entry
 * per change of the version being sent. The roots of the version just sent
 * (and the nodes its walk loaded) are kept as the next walk's old side.
 *
 * READS. Two things keep a follower's reads at one per node (profiled:
 * RocksDB point reads, decoding and freeing were ~90% of the feed's CPU,
 * bench/README.md). The nodes version v created have the ids
 * [next_id of the version before, next_id of v) (persist/store/history.c),
 * and v's walk visits every one of them: they are read with one range
 * scan (vh_store_node_range) and staged (persist/trie/stage.c) before the
 * walk. And the walk adopts (VH_TDIFF_ADOPT, persist/tdiff.c): v's side
 * takes over every node it shares with the previous side, which the
 * earlier walks loaded, so the old side of the next walk is in memory.
 * The side kept is therefore the part of the newest version that walks
 * loaded: it is dropped (and read again as needed) when the trie holds
 * more than VH_FEED_SIDE_MAX bytes.
 *
 * CHANGE RECORDS (vh_chrec.h). A version whose change record is relative
 * to the version sent before it (pred == f->last) is sent from the record:
 * the same changes in the same order with the same counts, no walk. The
 * side kept for the next walk is then dropped (a record loads nothing; the
 * next walk, if any, starts from stubs). VEDHOST_TEST_CHANGE_RECORDS=0
 * walks every version (tests compare the two). A record also tells the
 * feed which version came before: a follower (a RocksDB secondary, whose
 * view of a writing host can lag: seen in bench/diff_bench.sh, a scan
 * showing 'V' 688 but not 686 and 687) that finds pred > f->last with
 * pred still in the retention window sends nothing of that version and
 * polls again after a catch-up (walk_fault), where a walk would have sent
 * the missing versions' changes as the later one's.
 *
 * A caller polling in short calls (api->changes) keeps its vh_feed_t
 * between them and resumes it (vh_feed_resume): the side stays.
 *
 * RESUMING. A consumer keeps the seq of the last version it applied whole
 * and comes back with it: it is sent the versions after it, each exactly
 * once, in order, as long as that seq is still retained (its manifest is
 * the base of the next diff). Past retention it gets VH_ENOENT and a line
 * naming the oldest seq it can resume from (or: start over from 0, which
 * sends the oldest retained version whole and goes on from there).
 */
#include "vh_changes.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_chrec.h"
#include "vh_tdiff.h"
#include "vh_versions.h"

/* ---- sides ---- */

void vh_vside_free(vh_vside_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->names[i]);
    if (s->roots[i]) vh_tab_release(s->roots[i]);
  }
  free(s->names);
  free(s->roots);
  memset(s, 0, sizeof *s);
}

int vh_vside_add(vh_vside_t *s, const char *name, vh_tab_t *root) {
  char **nn = realloc(s->names, (s->n + 1) * sizeof *nn);
  if (nn == NULL) return VH_ENOMEM;
  s->names = nn;
  vh_tab_t **nr = realloc(s->roots, (s->n + 1) * sizeof *nr);
  if (nr == NULL) return VH_ENOMEM;
  s->roots = nr;
  char *copy = strdup(name);
  if (copy == NULL) return VH_ENOMEM;
  size_t i = s->n;
  while (i > 0 && strcmp(s->names[i - 1], name) > 0) {
    s->names[i] = s->names[i - 1];
    s->roots[i] = s->roots[i - 1];
    i--;
  }
  s->names[i] = copy;
  s->roots[i] = root;
  if (root) vh_tab_retain(root);
  s->n++;
  return 0;
}

int vh_vside_from_manifest(vh_vside_t *s, const vh_manifest_t *m,
                           vh_mkroot_fn mkroot) {
  memset(s, 0, sizeof *s);
  for (size_t i = 0; i < m->ndomains; i++) {
    vh_tab_t *t = m->domains[i].root ? mkroot(m->domains[i].root) : NULL;
    if (m->domains[i].root && t == NULL) goto fail;
    int r = vh_vside_add(s, m->domains[i].name, t);
    if (t) vh_tab_release(t);
    if (r != 0) goto fail;
  }
  return 0;
fail:
  vh_vside_free(s);
  return VH_ENOMEM;
}

/* ---- diff ---- */

typedef struct dctx {
  vh_change_t c; /* seq, time, domain, n, of filled in by the caller */
  vh_change_fn fn;
  void *arg;
  int flags; /* vh_tab_diff_ex's */
} dctx_t;

static int vh_changes__one(void *arg, const vh_tdiff_change_t *t) {
  dctx_t *d = arg;
  d->c.op = t->op;
  d->c.path = t->path;
  d->c.depth = t->depth;
  d->c.old = t->old;
  d->c.new = t->new;
  if (d->c.of) d->c.n++;
  return d->fn(d->arg, &d->c);
}

static int vh_changes__diff(const vh_vside_t *a, const vh_vside_t *b,
                            const char *domain, const vh_val_t *path,
                            size_t npath, dctx_t *d) {
  size_t i = 0, j = 0;
  while (i < a->n || j < b->n) {
    int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->names[i], b->names[j]);
    const char *name = c <= 0 ? a->names[i] : b->names[j];
    vh_tab_t *ra = c <= 0 ? a->roots[i] : NULL;
    vh_tab_t *rb = c >= 0 ? b->roots[j] : NULL;
    if (c <= 0) i++;
    if (c >= 0) j++;
    if (domain != NULL && strcmp(domain, name) != 0) continue;
    d->c.domain = name;
    int r = vh_tab_diff_ex(ra, rb, path, npath, d->flags, vh_changes__one, d);
    if (r != 0) return r;
  }
  return 0;
}

int vh_changes_diff(const vh_vside_t *a, const vh_vside_t *b,
                    const char *domain, const vh_val_t *path, size_t npath,
                    uint64_t seq, int64_t time_ms, vh_change_fn fn, void *arg) {
  dctx_t d;
  memset(&d, 0, sizeof d);
  d.c.seq = seq;
  d.c.time_ms = time_ms;
  d.fn = fn;
  d.arg = arg;
  return vh_changes__diff(a, b, domain, path, npath, &d);
}

/* ---- feed ---- */

void vh_feed_init(vh_feed_t *f, vh_store_t *store, vh_mkroot_fn mkroot,
                  uint64_t after) {
  memset(f, 0, sizeof *f);
  f->store = store;
  f->mkroot = mkroot;
  f->last = after;
}

void vh_feed_free(vh_feed_t *f) {
  vh_manifest_free(&f->prev);
  vh_vside_free(&f->side);
  vh_trie_stage_free(f->stage);
  memset(f, 0, sizeof *f);
}

int vh_feed_resume(vh_feed_t *f, vh_store_t *store, vh_mkroot_fn mkroot,
                   uint64_t after) {
  if (f->store == store && f->mkroot == mkroot && f->started && after != 0 &&
      f->last == after) {
    vh_manifest_free(&f->prev); /* read again by the poll's resume check */
    memset(&f->prev, 0, sizeof f->prev);
    f->started = 0;
    return 1;
  }
  vh_feed_free(f);
  vh_feed_init(f, store, mkroot, after);
  return 0;
}

/* The changes of one version, collected before they are sent. */
typedef struct vh_fent {
  const char *domain; /* [borrowed] a side's name */
  int op;
  size_t off, depth; /* path: keys[off .. off + depth) */
  vh_val_t old, new; /* [borrowed] */
} vh_fent_t;

typedef struct vh_fcoll {
  vh_fent_t *e;
  size_t n, cap;
  vh_val_t *keys; /* [borrowed values] every path, one after another */
  size_t nkeys, capkeys;
  int oom;
} vh_fcoll_t;

static int vh_feed__collect(void *arg, const vh_change_t *c) {
  vh_fcoll_t *col = arg;
  if (vh_grow(&col->e, &col->cap, col->n + 1, sizeof *col->e) != 0 ||
      vh_grow(&col->keys, &col->capkeys, col->nkeys + c->depth,
              sizeof *col->keys) != 0)
    return col->oom = 1;
  vh_fent_t *e = &col->e[col->n++];
  e->domain = c->domain;
  e->op = c->op;
  e->off = col->nkeys;
  e->depth = c->depth;
  e->old = c->old;
  e->new = c->new;
  memcpy(col->keys + col->nkeys, c->path, c->depth * sizeof *c->path);
  col->nkeys += c->depth;
  return 0;
}

/* The oldest retained seq (a marked one included), or 0. */
static int vh_feed__first(void *arg, const vh_version_t *v) {
  *(uint64_t *)arg = v->seq;
  return 1;
}

static int vh_feed__gone(vh_feed_t *f, uint64_t seq, uint64_t *oldest,
                         char **errmsg) {
  uint64_t o = 0;
  char *m = NULL;
  vh_history_t h;
  memset(&h, 0, sizeof h);
  vh_store_versions_each(f->store, 0, vh_feed__first, &o, &m);
  free(m);
  m = NULL;
  vh_store_history(f->store, &h, &m);
  free(m);
  if (oldest) *oldest = o;
  char buf[256];
  if (h.newest != 0 && seq > h.newest)
    snprintf(buf, sizeof buf,
             "unknown version %" PRIu64 ": the newest version is %" PRIu64, seq,
             h.newest);
  else if (o == 0)
    snprintf(buf, sizeof buf,
             "seq %" PRIu64 " is past retention: no version is retained", seq);
  else
    snprintf(buf, sizeof buf,
             "seq %" PRIu64
             " is past retention: the oldest seq you can resume from is "
             "%" PRIu64 " (or start over without --from)",
             seq, o);
  *errmsg = strdup(buf);
  return VH_ENOENT;
}

/* The side kept for the next walk holds, by adoption (VH_TDIFF_ADOPT),
 * every node the walks loaded that is still in the newest version: it is
 * dropped (the next walk starts from stubs) while the trie holds more than
 * this many bytes. */
#define VH_FEED_SIDE_MAX ((size_t)512 << 20)

/* A version's new nodes are staged when they are at least MIN ids (a
 * scan costs about what 15-20 point reads do: measured with callgrind,
 * bench/README.md) and at most MAX (a bigger version's new nodes are read
 * one by one, as the walk needs them). */
#define VH_FEED_STAGE_MIN ((uint64_t)32)
#define VH_FEED_STAGE_MAX ((uint64_t)1 << 18)

static int vh_feed__stage(void *arg, uint64_t id, const void *bytes,
                          size_t len) {
  return vh_trie_stage_put(arg, id, bytes, len);
}

/* Stage the new nodes of a version, ids [lo, hi), into st (empty) when
 * there are enough of them and not too many. Any thread (the store's
 * reads are; st is the caller's alone). */
static void vh_feed__scan(vh_store_t *store, uint64_t lo, uint64_t hi,
                          vh_trie_stage_t *st) {
  if (hi < lo + VH_FEED_STAGE_MIN || hi - lo > VH_FEED_STAGE_MAX) return;
  char *m = NULL; /* a failed scan only costs the point reads */
  if (vh_store_node_range(store, lo, hi, vh_feed__stage, st, &m) != 0)
    vh_trie_stage_clear(st);
  free(m);
}

int vh_changes_of_record(const vh_chrec_t *rec, const char *domain, int rev,
                         uint64_t seq, int64_t time_ms, int counted,
                         vh_change_fn fn, void *arg) {
  vh_change_t c;
  memset(&c, 0, sizeof c);
  c.seq = seq;
  c.time_ms = time_ms;
  for (size_t d = 0; counted && d < rec->ndom; d++)
    if (domain == NULL || strcmp(domain, rec->dom[d].name) == 0)
      c.of += (uint32_t)rec->dom[d].n;
  int r = 0;
  for (size_t d = 0; r == 0 && d < rec->ndom; d++) {
    const vh_chdom_t *dm = &rec->dom[d];
    if (domain != NULL && strcmp(domain, dm->name) != 0) continue;
    c.domain = dm->name;
    for (size_t i = 0; r == 0 && i < dm->n; i++) {
      const vh_chent_t *x = &dm->e[i];
      c.op = !rev ? x->op : x->op == '+' ? '-' : x->op == '-' ? '+' : '~';
      c.path = x->path;
      c.depth = x->depth;
      c.old = rev ? x->new : x->old;
      c.new = rev ? x->old : x->new;
      c.n += counted != 0;
      r = fn(arg, &c);
    }
  }
  return r;
}

/* 1 when version pred is in the retention window ('H' oldest..), so that
 * not seeing it is a view that lags, not a version dropped (a mark can
 * keep f->last while the versions after it went). */
static int vh_feed__hidden(vh_feed_t *f, uint64_t pred) {
  vh_history_t h;
  char *m = NULL;
  memset(&h, 0, sizeof h);
  int r = vh_store_history(f->store, &h, &m);
  free(m);
  return r == 0 && h.oldest != 0 && pred >= h.oldest;
}

/* Send version v from its change record when it has one relative to the
 * version sent last (*used = 1): 0 or what fn returned (any non-zero
 * value), or VH_ENOENT for a version hidden before it. *used = 0: no
 * record applies, walk it. */
static int vh_feed__record(vh_feed_t *f, const vh_version_t *v, vh_change_fn fn,
                           void *arg, char **errmsg, int *used) {
  *used = 0;
  const char *e = getenv("VEDHOST_TEST_CHANGE_RECORDS");
  if (e != NULL && strcmp(e, "0") == 0) return 0;
  vh_chrec_t rec;
  if (vh_store_chrec_get(f->store, v->seq, &rec, NULL) != 0) return 0;
  if (rec.pred > f->last && vh_feed__hidden(f, rec.pred)) {
    /* Versions between f->last and v exist but this view does not show
     * them yet (a secondary that lags): nothing of v is sent, a follower
     * catches up and polls again (walk_fault), rather than sending their
     * changes lumped into v's. */
    char buf[160];
    snprintf(buf, sizeof buf,
             "version %" PRIu64 ": version %" PRIu64
             " before it is not visible yet",
             v->seq, rec.pred);
    vh_chrec_free(&rec);
    *used = 1;
    f->walk_fault = 1;
    *errmsg = strdup(buf);
    return VH_ENOENT;
  }
  if (rec.pred != f->last) {
    vh_chrec_free(&rec);
    return 0;
  }
  *used = 1;
  int r = vh_changes_of_record(&rec, NULL, 0, v->seq, v->time_ms, 1, fn, arg);
  vh_chrec_free(&rec);
  if (r < 0 && *errmsg == NULL) {
    char buf[128];
    snprintf(buf, sizeof buf, "version %" PRIu64 ": %s", v->seq,
             vh_err_name(r));
    *errmsg = strdup(buf);
  }
  /* v's roots were not walked: the next walk starts from stubs. */
  vh_vside_free(&f->side);
  f->has_side = 0;
  f->record_versions++;
  return r;
}

/* Send version v (prev: the manifest before it, or NULL = nothing). The
 * side of v is kept in f->side for the next version, so the nodes this
 * walk loaded are not loaded again as the next walk's old side. */
static int vh_feed__send(vh_feed_t *f, const vh_manifest_t *prev,
                         const vh_version_t *v, vh_trie_stage_t *ready,
                         vh_change_fn fn, void *arg, char **errmsg) {
  vh_vside_t a, b;
  vh_manifest_t none;
  memset(&none, 0, sizeof none);
  memset(&a, 0, sizeof a);
  int r = 0;
  if (prev != NULL) {
    int used = 0;
    r = vh_feed__record(f, v, fn, arg, errmsg, &used);
    if (used) return r;
  }
  if (f->has_side && prev != NULL) {
    a = f->side; /* the previous version's roots, loaded nodes and all */
    memset(&f->side, 0, sizeof f->side);
    f->has_side = 0;
  } else {
    r = vh_vside_from_manifest(&a, prev ? prev : &none, f->mkroot);
  }
  if (r == 0 && (r = vh_vside_from_manifest(&b, &v->m, f->mkroot)) != 0)
    vh_vside_free(&a);
  if (r != 0) {
    *errmsg = strdup("out of memory");
    return r;
  }
  /* One walk collects the changes (values borrowed from a and b, which
   * live until the end), then they are sent knowing their count. */
  vh_fcoll_t col;
  memset(&col, 0, sizeof col);
  dctx_t d;
  memset(&d, 0, sizeof d);
  d.c.seq = v->seq;
  d.c.time_ms = v->time_ms;
  d.fn = vh_feed__collect;
  d.arg = &col;
  /* b keeps what a had loaded (the same ids): the next walk starts from
   * b with no reads for it (view roots only: others are left alone). */
  d.flags = VH_TDIFF_ADOPT;
  vh_trie_fault_clear();
  /* v's new nodes (ids [prev next_id, v next_id): the walk loads every
   * one of them) staged with one range scan (persist/trie/stage.c). */
  /* (ready: staged already by the read-ahead thread, READ-AHEAD.) */
  if (ready == NULL && f->stage == NULL) f->stage = vh_trie_stage_new();
  vh_trie_stage_t *st = ready != NULL ? ready : f->stage;
  vh_trie_stage_t *was = vh_trie_stage_use(st);
  if (ready == NULL && st != NULL && prev != NULL)
    vh_feed__scan(f->store, prev->next_id, v->m.next_id, st);
  r = vh_changes__diff(&a, &b, NULL, NULL, 0, &d);
  if (r != 0 && vh_trie_fault(NULL) != 0) f->walk_fault = 1; /* none sent */
  if (r == 0 && col.oom) r = VH_ENOMEM;
  for (size_t i = 0; r == 0 && i < col.n; i++) {
    vh_fent_t *e = &col.e[i];
    d.c.domain = e->domain;
    d.c.op = e->op;
    d.c.path = col.keys + e->off;
    d.c.depth = e->depth;
    d.c.old = e->old;
    d.c.new = e->new;
    d.c.n = (uint32_t)i + 1;
    d.c.of = (uint32_t)col.n;
    r = fn(arg, &d.c);
  }
  free(col.e);
  free(col.keys);
  if (st != NULL) vh_trie_stage_clear(st);
  vh_trie_stage_use(was);
  if (r < 0 && *errmsg == NULL) {
    const char *fm = NULL;
    char buf[320];
    if (vh_trie_fault(&fm) != 0) {
      snprintf(buf, sizeof buf, "version %" PRIu64 ": %s", v->seq, fm);
      vh_trie_fault_clear();
    } else {
      snprintf(buf, sizeof buf, "version %" PRIu64 ": %s", v->seq,
               vh_err_name(r));
    }
    *errmsg = strdup(buf);
  }
  vh_vside_free(&a);
  if (r == 0 && vh_mem_bytes() <= VH_FEED_SIDE_MAX) {
    f->side = b;
    f->has_side = 1;
  } else {
    vh_vside_free(&b);
  }
  return r;
}

typedef struct seqs {
  uint64_t *s;
  size_t n, cap, max;
} seqs_t;

static int vh_feed__seq(void *arg, uint64_t seq, int64_t time_ms,
                        size_t bytes) {
  seqs_t *q = arg;
  (void)time_ms;
  (void)bytes;
  if (q->n == q->cap) {
    size_t cap = q->cap ? 2 * q->cap : 64;
    uint64_t *s = realloc(q->s, cap * sizeof *s);
    if (s == NULL) return VH_ENOMEM;
    q->s = s;
    q->cap = cap;
  }
  q->s[q->n++] = seq;
  return q->max && q->n >= q->max ? 1 : 0;
}

/* ---- READ-AHEAD ----
 *
 * A feed with f->ahead set reads the next versions' records and stages
 * their new nodes (the range scans: RocksDB's iterator and the block
 * decompression, about a third of the consumer's instructions,
 * bench/README.md) on a second thread while this one walks, sends and
 * frees: up to VH_FEED_AHEAD versions ahead, in seq order, each in a slot
 * of its own (record, stage). The walk itself stays on the trie's owner
 * thread: the read-ahead thread touches only the store (whose reads any
 * thread may make) and its slots' stages, never a node. A poll starts it
 * when it has two versions or more to send and joins it before it
 * returns, so nothing runs beside a catch-up. It stops after the first
 * record it cannot read (the poll reports that version's error as
 * before) or when the poll stops early.
 *
 * MEASURED (bench/README.md, "Change feed, fourth pass"): the walking
 * thread's instructions halve (+1.5% in all), but beside a host writing
 * on a loaded 2-core machine the consumer spent ~25% more CPU a change
 * (staged bytes crossing cores, hand-offs) for no wall-clock gain, so
 * `vedhost changes` turns it on only with VEDHOST_FEED_AHEAD=1: for a
 * machine with cores to spare. */
#define VH_FEED_AHEAD 3

typedef struct vh_fslot {
  vh_version_t v;         /* [owned] the record, when r == 0 */
  int r;                  /* vh_store_version_get's result */
  char *err;              /* [owned] its message */
  vh_trie_stage_t *stage; /* [owned] v's new nodes (NULL: none staged) */
} vh_fslot_t;

typedef struct vh_fahead {
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  vh_store_t *store;    /* [borrowed] */
  const uint64_t *seqs; /* [borrowed] the versions to read, in order */
  size_t n;
  uint64_t lo;  /* next_id of the version before seqs[done]: its range */
  int has_lo;   /* lo is known (the feed has a version sent before) */
  size_t done;  /* slots filled (under mu) */
  size_t taken; /* slots the walk gave back (under mu) */
  int stop;     /* the walk ended early (under mu) */
  vh_fslot_t slot[VH_FEED_AHEAD];
} vh_fahead_t;

static void *vh_fahead__run(void *arg) {
  vh_fahead_t *a = arg;
  for (size_t i = 0; i < a->n; i++) {
    pthread_mutex_lock(&a->mu);
    while (!a->stop && i - a->taken >= VH_FEED_AHEAD)
      pthread_cond_wait(&a->cv, &a->mu);
    int stop = a->stop;
    pthread_mutex_unlock(&a->mu);
    if (stop) break;
    vh_fslot_t *sl = &a->slot[i % VH_FEED_AHEAD];
    sl->r = vh_store_version_get(a->store, a->seqs[i], &sl->v, &sl->err);
    if (sl->r == 0 && sl->stage != NULL && a->has_lo)
      vh_feed__scan(a->store, a->lo, sl->v.m.next_id, sl->stage);
    a->lo = sl->v.m.next_id;
    a->has_lo = 1;
    pthread_mutex_lock(&a->mu);
    a->done = i + 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (sl->r != 0) break;
  }
  return NULL;
}

/* Start reading q->s ahead; 0, or an error (then the poll reads each
 * version itself, as without read-ahead). */
static int vh_fahead_start(vh_fahead_t *a, vh_feed_t *f, const seqs_t *q) {
  memset(a, 0, sizeof *a);
  a->store = f->store;
  a->seqs = q->s;
  a->n = q->n;
  a->lo = f->prev.next_id;
  a->has_lo = f->started;
  for (int i = 0; i < VH_FEED_AHEAD; i++)
    a->slot[i].stage = vh_trie_stage_new(); /* NULL: that slot stages none */
  if (pthread_mutex_init(&a->mu, NULL) != 0) goto fail;
  if (pthread_cond_init(&a->cv, NULL) != 0) {
    pthread_mutex_destroy(&a->mu);
    goto fail;
  }
  if (pthread_create(&a->th, NULL, vh_fahead__run, a) != 0) {
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    goto fail;
  }
  return 0;
fail:
  for (int i = 0; i < VH_FEED_AHEAD; i++) vh_trie_stage_free(a->slot[i].stage);
  return VH_ENOMEM;
}

/* Slot i once it is filled ([borrowed] until vh_fahead_give). */
static vh_fslot_t *vh_fahead_take(vh_fahead_t *a, size_t i) {
  pthread_mutex_lock(&a->mu);
  while (a->done <= i) pthread_cond_wait(&a->cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  return &a->slot[i % VH_FEED_AHEAD];
}

/* Slot i back (emptied) for version i + VH_FEED_AHEAD. */
static void vh_fahead_give(vh_fahead_t *a, size_t i) {
  vh_fslot_t *sl = &a->slot[i % VH_FEED_AHEAD];
  vh_version_free(&sl->v);
  memset(&sl->v, 0, sizeof sl->v);
  free(sl->err);
  sl->err = NULL;
  if (sl->stage != NULL) vh_trie_stage_clear(sl->stage);
  pthread_mutex_lock(&a->mu);
  a->taken = i + 1;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

/* Stop the thread, join it, free what it read that was not taken; the
 * nodes it staged are counted in f->ahead_staged. */
static void vh_fahead_end(vh_fahead_t *a, vh_feed_t *f) {
  pthread_mutex_lock(&a->mu);
  a->stop = 1;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->th, NULL);
  for (int i = 0; i < VH_FEED_AHEAD; i++) {
    uint64_t staged = 0;
    if (a->slot[i].stage != NULL)
      vh_trie_stage_counts(a->slot[i].stage, &staged, NULL);
    f->ahead_staged += staged;
    vh_version_free(&a->slot[i].v);
    free(a->slot[i].err);
    vh_trie_stage_free(a->slot[i].stage);
  }
  pthread_cond_destroy(&a->cv);
  pthread_mutex_destroy(&a->mu);
}

int vh_feed_poll(vh_feed_t *f, size_t max, vh_change_fn fn, void *arg,
                 uint64_t *oldest, char **errmsg) {
  vh_version_t v;
  int r;
  *errmsg = NULL;
  f->walk_fault = 0;
  if (!f->started && f->last != 0) { /* resume: `after` must be retained */
    memset(&v, 0, sizeof v);
    r = vh_store_version_get(f->store, f->last, &v, errmsg);
    if (r == VH_ENOENT) {
      free(*errmsg);
      *errmsg = NULL;
      return vh_feed__gone(f, f->last, oldest, errmsg);
    }
    if (r != 0) return r;
    f->prev = v.m;
    memset(&v.m, 0, sizeof v.m);
    vh_version_free(&v);
    f->started = 1;
  }
  seqs_t q;
  memset(&q, 0, sizeof q);
  q.max = max;
  r = vh_store_version_scan(f->store, f->last + 1, max ? max : SIZE_MAX,
                            vh_feed__seq, &q, errmsg);
  if (r < 0) {
    free(q.s);
    return r;
  }
  r = 0;
  vh_fahead_t ah;
  int ahead = f->ahead && q.n >= 2 && vh_fahead_start(&ah, f, &q) == 0;
  for (size_t i = 0; i < q.n && r == 0; i++) {
    vh_fslot_t *sl = NULL;
    memset(&v, 0, sizeof v);
    if (ahead) { /* the record (and the staged nodes) read ahead */
      sl = vh_fahead_take(&ah, i);
      r = sl->r;
      v = sl->v;
      memset(&sl->v, 0, sizeof sl->v);
      *errmsg = sl->err;
      sl->err = NULL;
    } else {
      r = vh_store_version_get(f->store, q.s[i], &v, errmsg);
    }
    if (r == VH_ENOENT) { /* dropped by retention since the scan */
      free(*errmsg);
      *errmsg = NULL;
      r = vh_feed__gone(f, f->started ? f->last : q.s[i], oldest, errmsg);
      break;
    }
    if (r != 0) break;
    r = vh_feed__send(f, f->started ? &f->prev : NULL, &v,
                      sl != NULL && f->started ? sl->stage : NULL, fn, arg,
                      errmsg);
    if (r == 0) {
      vh_manifest_free(&f->prev);
      f->prev = v.m;
      memset(&v.m, 0, sizeof v.m);
      f->last = v.seq;
      f->started = 1;
    }
    vh_version_free(&v);
    if (ahead) {
      f->ahead_versions += r == 0;
      vh_fahead_give(&ah, i);
    }
  }
  if (ahead) vh_fahead_end(&ah, f);
  if (r == 0 && max && q.n >= max) r = 1; /* more may follow */
  free(q.s);
  return r;
}

/* ---- output ---- */

static int vh_change__put(vh_buf_t *b, const char *s) {
  return vh_buf_put(b, s, strlen(s));
}

/* A plain name: [A-Za-z_][A-Za-z0-9_]*, not all digits. */
static int vh_change__plain(const vh_str_t *s) {
  const char *p = vh_str_data(s);
  size_t n = vh_str_len(s);
  if (n == 0 || (p[0] >= '0' && p[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '_'))
      return 0;
  }
  return 1;
}

/* A string as a Lua literal (pretty.lua's escapes for the common cases:
 * \\ \" \n \r \t, other bytes below 32 and DEL as \ddd). */
static int vh_change__lua_str(vh_buf_t *b, const vh_str_t *s) {
  const unsigned char *p = (const unsigned char *)vh_str_data(s);
  size_t n = vh_str_len(s);
  int r = vh_change__put(b, "\"");
  for (size_t i = 0; i < n && r == 0; i++) {
    char e[8];
    unsigned c = p[i];
    if (c == '"' || c == '\\') {
      e[0] = '\\';
      e[1] = (char)c;
      e[2] = 0;
    } else if (c == '\n') {
      strcpy(e, "\\n");
    } else if (c == '\r') {
      strcpy(e, "\\r");
    } else if (c == '\t') {
      strcpy(e, "\\t");
    } else if (c < 32 || c == 127) {
      snprintf(e, sizeof e, "\\%03u", c);
    } else {
      e[0] = (char)c;
      e[1] = 0;
    }
    r = vh_change__put(b, e);
  }
  if (r == 0) r = vh_change__put(b, "\"");
  return r;
}

int vh_change_path_text(const char *domain, const vh_val_t *path, size_t depth,
                        vh_buf_t *out) {
  int r = vh_change__put(out, domain);
  char num[64];
  for (size_t i = 0; i < depth && r == 0; i++) {
    vh_val_t k = path[i];
    switch (k.type) {
      case VH_TINT:
        snprintf(num, sizeof num, ".%" PRId64, k.u.i);
        r = vh_change__put(out, num);
        break;
      case VH_TSTR:
        if (vh_change__plain(k.u.s)) {
          r = vh_change__put(out, ".");
          if (r == 0)
            r = vh_buf_put(out, vh_str_data(k.u.s), vh_str_len(k.u.s));
        } else {
          r = vh_change__put(out, "[");
          if (r == 0) r = vh_change__lua_str(out, k.u.s);
          if (r == 0) r = vh_change__put(out, "]");
        }
        break;
      case VH_TFLOAT: /* pretty.lua: the shortest %.14g..%.17g */
        for (int prec = 14; prec <= 17; prec++) {
          snprintf(num, sizeof num, "[%.*g]", prec, k.u.f);
          if (strtod(num + 1, NULL) == k.u.f) break;
        }
        r = vh_change__put(out, num);
        break;
      case VH_TBOOL:
        r = vh_change__put(out, k.u.b ? "[true]" : "[false]");
        break;
      default:
        r = vh_change__put(out, "[?]");
    }
  }
  return r;
}
