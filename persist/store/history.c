/*
 * history.c - the history engine: which versions are retained, and the
 * exact garbage collection of the nodes only dropped versions reached
 * (API: vh_versions.h; records: persist/store/store_versions.c; used by
 * host/runtime/durable.c in every slice's batch; ARCHITECTURE.md invariant 5).
 *
 * WHAT IS A VERSION. A batch is a version when its manifest differs from
 * the last one but for the seq (host/runtime/durable.c): a domain's root
 * or version, or the system root (queued / delivered messages, timers)
 * changed. System-only changes stay versions on purpose: a version's
 * record names the system root too (branch, restart and fsck use it), and
 * a non-version batch's deaths go to the newest version's list below,
 * which is only exact when that version's roots are still the live ones.
 * A slice that changed nothing (a read-only REPL chunk) must therefore
 * leave every root as it was: sched.c writes its counters into the system
 * state only when they moved, and such a slice writes no batch at all.
 *
 * THE WINDOW. Versions are retained from the oldest o to the newest, by
 * the policy of `--retain` (age of the second oldest, count, estimated
 * bytes; any limit exceeded drops the oldest; never the newest). Marks pin
 * single versions outside it.
 *
 * DEATH LISTS. The trie's free hook reports each stored node that a slice
 * freed (or a never-loaded subtree root). For a version batch s these are
 * the nodes in prev(s) and not in s: the death list D(s). A batch that is
 * not a version (a sweep step, a late free of a node a Lua value held)
 * adds its deaths to the newest version's list (they are not in it
 * either: its roots are the live ones), as another chunk D(v, s).
 *
 * THE RULE (exact). Node i, born in the first version whose next_id > i
 * (children are never younger than parents), dead at d, is in every
 * version of [birth, d). So an entry of D(d) can go once no retained
 * version v has birth <= v < d: when the window's oldest o >= d (D(d) is
 * processed in the batch that makes d, or a later version, the oldest),
 * unless a mark m < d has i < next_id(m); then it moves to m's pinned
 * entries ('P' m d i) until unmark re-examines it against the other
 * marks. A processed entry is deleted ('N' i; in a big store of format 5,
 * handed to the GRAVEYARD instead, graveyard.c, which deletes it with its
 * block of ids later) or, for a subtree, gets a
 * sweep key with d ('Q' i = d): the sweeper (host/runtime/durable.c,
 * vh_store_sweep_node_at) deletes it node by node and pins a child that a
 * mark below d holds. Dropping version o also deletes 'V' o (unless it is
 * marked) and every chunk 'D' d * it processed, in the same batch.
 *
 * --retain 0 keeps one version: each version batch drops the previous
 * one at once, so its deaths are deletes in its own batch and no death
 * list is ever written (the behaviour before history existed, plus one
 * 'V' and the 'H' header per batch).
 *
 * MEMORY AND THE LOOP THREAD. Everything runs on the loop thread, in the
 * slice's batch. Death lists of this run stay in memory (up to
 * VH_HIST_MEM_ENTS entries, 2 MB) and are processed from there without
 * any read; older ones (earlier runs, or evicted) are read back with one
 * prefix scan of 'D' d when d becomes the oldest, and the times of older
 * runs' versions are read VH_HIST_FRONT at a time. Chunks not yet durable
 * are never read from disk (the store only shows what the writer wrote):
 * those are always in memory. At most VH_HIST_DROPS versions are dropped
 * per batch; removed marks are re-examined VH_HIST_UNPIN entries per batch
 * once what pinned them is durable. So a slice's extra disk reads are
 * bounded; the price is a few reads per dropped old version.
 *
 * BOUNDED DROPS (perf/stop). A batch also stops dropping once it processed
 * VH_HIST_DROP_ENTS death entries (each a delete the writer must write):
 * 64 versions of a K=200k state made a 20 MB batch of 635k deletes, ~1 s
 * of the writer here, and a stop waits for every batch submitted. At
 * least one version goes per batch, and each batch adds at most one, so
 * the window still keeps up under load. A batch of a stopping host
 * (sl->stopping) drops one version at most if it is a version itself (so
 * hosts that each stop in their first slice keep the window from
 * growing), and beyond that only versions whose death lists are all in
 * memory and fit the bound (--retain 0's previous version, typically):
 * not the 64 of an earlier run (20 MB of deletes above) whose lists
 * would be read back from disk. Those wait for the next start, which
 * drops them as the policy says (exact: the lists stay on disk until
 * then).
 *
 * ROLLBACK (vh_hist_resurrect, host/repl/repl_rollback.c) brings back nodes
 * that died after an older version: before the rollback's vh_hist_slice, the
 * same batch takes their entries out of every death list after that
 * version (in memory and on disk: the chunk is written again without
 * them, or deleted when empty) and out of the marks' pinned entries, and
 * process_entry skips them for that one batch (its drops may read chunks
 * from disk that the batch itself rewrites).
 *
 * RESTART reads 'H' (window bounds, counts, estimate) and the marks, not
 * the history; the tail of older runs is read lazily as it is dropped.
 *
 * THE ESTIMATE (bytes of history). Each version adds its 'V' record's size
 * (plus its input log 'I', vh_inputs.h, in this run: a version of an
 * earlier run is known by its 'V' size only) and (entries of its death list) x
 * (running average encoded node size, from the collects). A subtree entry
 * counts as one node (its size is unknown without reading it): the estimate is
 * low when big never-loaded subtrees are dropped. RocksDB's compression is not
 * counted (the real disk is usually smaller). The default budget is max(1 GiB,
 * half the live state), the live state being RocksDB's estimate minus this one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "vh_bytes.h"
#include "vh_chrec.h"
#include "vh_graveyard.h"
#include "vh_inputs.h"
#include "vh_versions.h"

#define VH_HIST_FRONT 64   /* tail versions read at a time */
#define VH_HIST_DROPS 64   /* versions dropped per batch at most */
#define VH_HIST_UNPIN 4096 /* pinned entries re-examined per batch */
/* BOUNDED DROPS above: death entries processed per batch (2 MB of batch). */
#define VH_HIST_DROP_ENTS 65536
/* Death entries kept in memory: 2 MB. It was 1M entries (8 MB, 8 B per
 * key of a 1M-key state filled in one run: bench/README.md, "Memory per
 * key"); an evicted chunk costs one prefix scan when its version drops. */
#define VH_HIST_MEM_ENTS (1u << 18)
#define VH_HIST_DEF_AVG 128       /* node size before any is measured */
#define VH_HIST_BUDGET_EVERY 1024 /* batches between live-size reads */
/* GRAVEYARD: dead nodes waiting in incomplete blocks, at most this part
 * of the store's live bytes (RocksDB's estimate). */
#define VH_HIST_GRAVE_SHARE 8
#define VH_HIST_GRAVE_LIVE_EVERY 64 /* batches between its reads */

typedef struct hchunk {
  struct hchunk *next;
  uint64_t s;   /* batch that wrote it */
  uint64_t est; /* estimated bytes */
  size_t n;
  uint64_t ents[];
} hchunk_t;

typedef struct hver {
  uint64_t seq;
  int64_t time_ms;
  uint64_t next_id;
  uint64_t vbytes;  /* its 'V' record */
  int evicted;      /* some chunk of its list is on disk only */
  hchunk_t *chunks; /* in memory, in s order */
  hchunk_t *last;
} hver_t;

typedef struct hmark {
  char *name; /* NULL once removing */
  uint64_t seq;
  int64_t time_ms;
  uint64_t next_id;
  uint64_t bytes;
  int dirty;         /* 'K' to (re)write */
  int removing;      /* unmarked: its pins are being re-examined */
  int removing_new;  /* the removal record is still to be written */
  uint64_t wait_seq; /* re-examine once this batch is durable */
  char *old_name;    /* [owned] name whose 'K' is to delete */
} hmark_t;

struct vh_hist {
  vh_store_t *s;
  vh_retain_t pol;
  uint64_t tail_n;  /* versions of earlier runs still in the window */
  uint64_t tail_lo; /* the oldest of them */
  hver_t front[VH_HIST_FRONT];
  size_t front_i, front_n;
  hver_t *ring; /* versions of this run (and the newest at open) */
  size_t head, n, cap;
  uint64_t bytes, pinned, pinned_bytes;
  uint32_t avg;
  uint64_t budget;
  uint64_t batches;
  uint64_t mem_ents;
  uint64_t last_seq; /* the last batch seen */
  uint64_t floor;    /* batches below the first of this run: on disk */
  char *warning;     /* [owned] a read failure not reported yet */
  int warned;        /* one was reported (until a batch works again) */
  int started;       /* floor is set */
  hmark_t *marks;
  size_t nmarks, capm;
  int dirty;
  uint64_t *res; /* [owned] sorted ids a rollback resurrects in the batch
                    being built (vh_hist_resurrect); never deleted by it */
  size_t res_n;
  vh_grave_t *grave; /* [owned] store format 5 (GRAVEYARD), else NULL */
  uint64_t live;     /* the store's live bytes, read now and then */
  uint64_t live_batches;
};

/* ---- small helpers ---- */

static hver_t *ring_at(vh_hist_t *H, size_t i) {
  return &H->ring[(H->head + i) % H->cap];
}

static hver_t *newest(vh_hist_t *H) {
  return H->n ? ring_at(H, H->n - 1) : NULL;
}

static int ring_push(vh_hist_t *H, const hver_t *v) {
  if (H->n == H->cap) {
    size_t nc = H->cap ? H->cap * 2 : 64;
    hver_t *r = malloc(nc * sizeof *r);
    if (r == NULL) return VH_ENOMEM;
    for (size_t i = 0; i < H->n; i++) r[i] = *ring_at(H, i);
    free(H->ring);
    H->ring = r;
    H->head = 0;
    H->cap = nc;
  }
  *ring_at(H, H->n) = *v;
  H->n++;
  return 0;
}

static void chunks_free(vh_hist_t *H, hver_t *v) {
  for (hchunk_t *c = v->chunks, *nx; c; c = nx) {
    nx = c->next;
    H->mem_ents -= c->n;
    free(c);
  }
  v->chunks = v->last = NULL;
}

static uint64_t count(const vh_hist_t *H) {
  return H->tail_n + H->n;
}

static int set_err(char **errmsg, int rc, const char *what) {
  if (errmsg && !*errmsg) *errmsg = vh_store__msg("history: %s", what);
  return rc;
}

/* The newest mark (not being removed) below d. */
static hmark_t *mark_below(vh_hist_t *H, uint64_t d) {
  hmark_t *best = NULL;
  for (size_t i = 0; i < H->nmarks; i++) {
    hmark_t *m = &H->marks[i];
    if (m->removing || m->seq >= d) continue;
    if (!best || m->seq > best->seq) best = m;
  }
  return best;
}

static int marked(vh_hist_t *H, uint64_t seq) {
  for (size_t i = 0; i < H->nmarks; i++)
    if (!H->marks[i].removing && H->marks[i].seq == seq) return 1;
  return 0;
}

/* A read failed (the window stays; the next batch retries): keep the
 * message for vh_hist_warning. */
static void note(vh_hist_t *H, char **errmsg) {
  if (!H->warned && !H->warning && errmsg && *errmsg) {
    H->warning = *errmsg;
    *errmsg = NULL;
    H->warned = 1;
  }
  if (errmsg) {
    free(*errmsg);
    *errmsg = NULL;
  }
}

char *vh_hist_warning(vh_hist_t *H) {
  char *w = H->warning;
  H->warning = NULL;
  return w;
}

/* ---- open ---- */

static int open_mark_removing(void *arg, const vh_mark_t *m) {
  vh_hist_t *H = arg;
  if (vh_grow(&H->marks, &H->capm, H->nmarks + 1, sizeof *H->marks) != 0)
    return VH_ENOMEM;
  hmark_t *r = &H->marks[H->nmarks++];
  memset(r, 0, sizeof *r);
  r->seq = m->seq;
  r->time_ms = m->time_ms;
  r->next_id = m->next_id;
  r->bytes = m->bytes;
  r->removing = 1;
  return 0;
}

int vh_hist_open(vh_store_t *s, const vh_retain_t *policy, vh_hist_t **out,
                 char **errmsg) {
  *out = NULL;
  if (errmsg) *errmsg = NULL;
  vh_hist_t *H = calloc(1, sizeof *H);
  if (H == NULL) return VH_ENOMEM;
  H->s = s;
  H->pol = *policy;
  vh_history_t h;
  int rc = vh_store_history(s, &h, errmsg);
  if (rc != 0) goto fail;
  H->avg = h.avg_node ? h.avg_node : VH_HIST_DEF_AVG;
  H->bytes = h.bytes;
  H->pinned = h.pinned;
  H->pinned_bytes = h.pinned_bytes;
  H->last_seq = h.newest;
  if (h.newest != 0) {
    hver_t v = {.seq = h.newest,
                .time_ms = h.newest_time,
                .next_id = h.newest_next_id,
                .vbytes = 0,
                .evicted = 1};
    rc = ring_push(H, &v);
    if (rc != 0) goto fail;
    H->tail_n = h.count > 0 ? h.count - 1 : 0;
    H->tail_lo = h.oldest;
  }
  vh_mark_t *ms = NULL;
  size_t nm = 0;
  rc = vh_store_marks(s, &ms, &nm, errmsg);
  if (rc != 0) goto fail;
  if (nm) {
    H->marks = calloc(nm, sizeof *H->marks);
    if (H->marks == NULL) {
      vh_marks_free(ms, nm);
      rc = VH_ENOMEM;
      goto fail;
    }
    H->capm = nm;
  }
  for (size_t i = 0; i < nm; i++) {
    hmark_t *m = &H->marks[H->nmarks++];
    m->name = ms[i].name;
    ms[i].name = NULL;
    m->seq = ms[i].seq;
    m->time_ms = ms[i].time_ms;
    m->next_id = ms[i].next_id;
    m->bytes = ms[i].bytes;
  }
  vh_marks_free(ms, nm);
  rc = vh_store_marks_removing(s, open_mark_removing, H, errmsg);
  if (rc != 0) goto fail;
  rc = vh_grave_open(s, &H->grave);
  if (rc != 0) goto fail;
  H->budget = H->pol.bytes;
  if (H->pol.bytes_default) {
    uint64_t live = vh_store_live_bytes(s);
    live = live > H->bytes ? live - H->bytes : 0;
    if (live / 2 > H->budget) H->budget = live / 2;
  }
  *out = H;
  return 0;
fail:
  vh_hist_free(H);
  return rc;
}

void vh_hist_free(vh_hist_t *H) {
  if (H == NULL) return;
  vh_grave_free(H->grave);
  free(H->res);
  for (size_t i = 0; i < H->n; i++) chunks_free(H, ring_at(H, i));
  for (size_t i = 0; i < H->nmarks; i++) {
    free(H->marks[i].name);
    free(H->marks[i].old_name);
  }
  free(H->marks);
  free(H->ring);
  free(H->warning);
  free(H);
}

/* ---- the tail (versions of earlier runs) ---- */

static int front_add(void *arg, uint64_t seq, int64_t time_ms, size_t bytes) {
  vh_hist_t *H = arg;
  if (H->front_n == VH_HIST_FRONT) return 1;
  hver_t *v = &H->front[H->front_n++];
  memset(v, 0, sizeof *v);
  v->seq = seq;
  v->time_ms = time_ms;
  v->vbytes = bytes;
  v->evicted = 1;
  return 0;
}

/* Makes the first two window versions known (as far as they exist). */
static int front_fill(vh_hist_t *H, char **errmsg) {
  if (H->tail_n == 0) return 0;
  size_t have = H->front_n - H->front_i;
  if (have >= 2 || have >= H->tail_n) return 0;
  uint64_t from = have ? H->front[H->front_i].seq : H->tail_lo;
  H->front_i = H->front_n = 0;
  size_t want = H->tail_n < VH_HIST_FRONT ? (size_t)H->tail_n : VH_HIST_FRONT;
  int rc = vh_store_version_scan(H->s, from, want, front_add, H, errmsg);
  if (rc != 0) return rc;
  /* Never past the ring (this run's versions). */
  uint64_t lim = H->n ? ring_at(H, 0)->seq : UINT64_MAX;
  while (H->front_n && H->front[H->front_n - 1].seq >= lim) H->front_n--;
  if (H->front_n < want) H->tail_n = H->front_n; /* fewer than 'H' said */
  if (H->front_n) H->tail_lo = H->front[0].seq;
  return 0;
}

/* The i-th version of the window (0 oldest, i < 2), after front_fill. */
static hver_t *win(vh_hist_t *H, uint64_t i) {
  if (i < H->tail_n) return &H->front[H->front_i + i];
  i -= H->tail_n;
  return i < H->n ? ring_at(H, (size_t)i) : NULL;
}

/* ---- processing death entries ---- */

typedef struct proc {
  vh_hist_t *H;
  vh_batch_t *b;
  vh_hist_sweep_fn sweep;
  void *arg;
  uint64_t durable;
  uint64_t est; /* disk chunks' estimates */
  uint64_t d;
  uint64_t ents; /* entries processed (BOUNDED DROPS) */
} proc_t;

static int resurrected(const vh_hist_t *H, uint64_t id);

static int process_entry(proc_t *p, uint64_t ent, uint64_t d) {
  vh_hist_t *H = p->H;
  uint64_t id = VH_DEAD_ID(ent);
  p->ents++;
  if (H->res_n && resurrected(H, id)) return 0; /* alive again: rollback */
  hmark_t *m = mark_below(H, d);
  if (m && id < m->next_id) {
    m->bytes += H->avg;
    m->dirty = 1;
    H->pinned++;
    H->pinned_bytes += H->avg;
    return vh_batch_put_pin(p->b, m->seq, d, ent);
  }
  if (VH_DEAD_SUBTREE(ent)) {
    int rc = vh_batch_put_sweep_at(p->b, id, d);
    if (rc == 0 && p->sweep) rc = p->sweep(p->arg, id, d);
    return rc;
  }
  if (H->grave && vh_grave_add(H->grave, id)) return 0; /* GRAVEYARD */
  return vh_batch_del_node(p->b, id);
}

static int process_ents(proc_t *p, const uint64_t *e, size_t n, uint64_t d) {
  for (size_t i = 0; i < n; i++) {
    int rc = process_entry(p, e[i], d);
    if (rc != 0) return rc;
  }
  return 0;
}

static int disk_chunk(void *arg, uint64_t s, const uint64_t *ents, size_t n,
                      uint64_t est) {
  proc_t *p = arg;
  if (s > p->durable) return 0; /* still queued: taken from memory */
  p->est += est;
  int rc = process_ents(p, ents, n, p->d);
  if (rc == 0) rc = vh_batch_del_deaths(p->b, p->d, s);
  return rc;
}

/* Version v just became the oldest: its death list goes. fresh/nfresh:
 * entries of the batch being built (not written) for v. */
static int process_deaths(proc_t *p, hver_t *v, const uint64_t *fresh,
                          size_t nfresh, char **errmsg) {
  vh_hist_t *H = p->H;
  p->d = v->seq;
  p->est = 0;
  int rc = 0;
  if (v->evicted) {
    rc = vh_store_deaths_each(H->s, v->seq, disk_chunk, p, errmsg);
    if (rc != 0) return rc;
  }
  uint64_t sub = p->est; /* disk chunks */
  for (hchunk_t *c = v->chunks; c && rc == 0; c = c->next) {
    if (v->evicted && c->s <= p->durable) continue; /* read from disk */
    rc = process_ents(p, c->ents, c->n, v->seq);
    if (rc == 0) rc = vh_batch_del_deaths(p->b, v->seq, c->s);
    sub += c->est;
  }
  if (rc == 0) rc = process_ents(p, fresh, nfresh, v->seq);
  if (rc != 0) return set_err(errmsg, rc, "out of memory");
  H->bytes = H->bytes > sub ? H->bytes - sub : 0;
  chunks_free(H, v);
  v->evicted = 0;
  return 0;
}

/* Drops the oldest version; the next one's death list is processed. */
static int drop_one(proc_t *p, const uint64_t *fresh, size_t nfresh,
                    uint64_t fresh_for, int *fresh_used, char **errmsg) {
  vh_hist_t *H = p->H;
  hver_t *o = win(H, 0), *o2 = win(H, 1);
  if (!o || !o2) return 0;
  /* The reads first: a failed one leaves the window as it was. */
  int use = o2->seq == fresh_for;
  int rc = process_deaths(p, o2, use ? fresh : NULL, use ? nfresh : 0, errmsg);
  if (rc != 0) return rc;
  if (!marked(H, o->seq)) {
    rc = vh_batch_del_version(p->b, o->seq);
    if (rc != 0) return set_err(errmsg, rc, "out of memory");
  }
  H->bytes = H->bytes > o->vbytes ? H->bytes - o->vbytes : 0;
  if (use) *fresh_used = 1;
  if (H->tail_n) {
    H->front_i++;
    H->tail_n--;
    H->tail_lo = o2->seq;
  } else {
    chunks_free(H, o);
    H->head = (H->head + 1) % H->cap;
    H->n--;
  }
  return 0;
}

/* BOUNDED DROPS (above), for a stopping host: may the oldest go without
 * a read, within the bound? Its successor's death list must be in memory
 * (fresh/nfresh: entries of the batch being built for fresh_for). */
static int stop_may_drop(vh_hist_t *H, const proc_t *p, size_t nfresh,
                         uint64_t fresh_for) {
  if (H->tail_n != 0 || H->n < 2) return 0;
  hver_t *o2 = ring_at(H, 1);
  if (o2->evicted) return 0;
  uint64_t n = o2->seq == fresh_for ? nfresh : 0;
  for (hchunk_t *c = o2->chunks; c; c = c->next) n += c->n;
  return p->ents + n <= VH_HIST_DROP_ENTS;
}

/* Should the oldest version go, at time now? */
static int want_drop(vh_hist_t *H, int64_t now) {
  if (count(H) < 2) return 0;
  const vh_retain_t *r = &H->pol;
  if (r->zero) return 1;
  if (r->slices && count(H) > r->slices) return 1;
  if (H->budget && H->bytes > H->budget) return 1;
  if (r->age_ms) {
    hver_t *o2 = win(H, 1);
    if (o2 && o2->time_ms <= now - r->age_ms) return 1;
  }
  return 0;
}

/* ---- marks ---- */

int vh_hist_mark(vh_hist_t *H, const char *name, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (!vh_mark_name_ok(name)) {
    if (errmsg)
      *errmsg = vh_store__msg(
          "bad mark name '%s': use 1-64 letters, digits, '_', '.' or '-', "
          "starting with a letter or '_'",
          name ? name : "");
    return VH_EINVAL;
  }
  for (size_t i = 0; i < H->nmarks; i++)
    if (H->marks[i].name && strcmp(H->marks[i].name, name) == 0) {
      if (errmsg)
        *errmsg = vh_store__msg(
            "mark '%s' exists already (version %llu); "
            "unmark it first",
            name, (unsigned long long)H->marks[i].seq);
      return VH_EINVAL;
    }
  hver_t *v = newest(H);
  if (v == NULL) {
    if (errmsg) *errmsg = vh_store__msg("no version to mark yet");
    return VH_ENOENT;
  }
  if (vh_grow(&H->marks, &H->capm, H->nmarks + 1, sizeof *H->marks) != 0)
    return VH_ENOMEM;
  char *nm = strdup(name);
  if (nm == NULL) return VH_ENOMEM;
  hmark_t *m = &H->marks[H->nmarks++];
  memset(m, 0, sizeof *m);
  m->name = nm;
  m->seq = v->seq;
  m->time_ms = v->time_ms;
  m->next_id = v->next_id;
  m->dirty = 1;
  H->dirty = 1;
  return 0;
}

int vh_hist_unmark(vh_hist_t *H, const char *name, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  for (size_t i = 0; i < H->nmarks; i++) {
    hmark_t *m = &H->marks[i];
    if (!m->name || strcmp(m->name, name) != 0) continue;
    m->old_name = m->name;
    m->name = NULL;
    m->removing = 1;
    m->removing_new = 1;
    m->wait_seq = UINT64_MAX; /* set when the record is written */
    H->dirty = 1;
    return 0;
  }
  if (errmsg) *errmsg = vh_store__msg("no mark named '%s'", name);
  return VH_ENOENT;
}

int vh_hist_marks(vh_hist_t *H, vh_mark_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t k = 0;
  for (size_t i = 0; i < H->nmarks; i++) k += H->marks[i].name != NULL;
  if (k == 0) return 0;
  vh_mark_t *v = calloc(k, sizeof *v);
  if (v == NULL) return VH_ENOMEM;
  size_t j = 0;
  for (size_t i = 0; i < H->nmarks; i++) {
    hmark_t *m = &H->marks[i];
    if (!m->name) continue;
    v[j].name = strdup(m->name);
    if (v[j].name == NULL) {
      vh_marks_free(v, j);
      return VH_ENOMEM;
    }
    v[j].seq = m->seq;
    v[j].time_ms = m->time_ms;
    v[j].next_id = m->next_id;
    v[j].bytes = m->bytes;
    j++;
  }
  *out = v;
  *n = j;
  return 0;
}

int vh_hist_pin(vh_hist_t *H, vh_batch_t *b, uint64_t id, uint64_t d) {
  if (d == 0) return 0;
  hmark_t *m = mark_below(H, d);
  if (!m || id >= m->next_id) return 0;
  int rc = vh_batch_put_pin(b, m->seq, d, VH_DEAD(id, 1));
  if (rc != 0) return rc;
  m->bytes += H->avg;
  m->dirty = 1;
  H->pinned++;
  H->pinned_bytes += H->avg;
  return 1;
}

typedef struct unpin {
  proc_t *p;
  hmark_t *r;
  size_t seen;
} unpin_t;

static int unpin_one(void *arg, uint64_t m, uint64_t d, uint64_t ent) {
  unpin_t *u = arg;
  vh_hist_t *H = u->p->H;
  if (u->seen == VH_HIST_UNPIN) return 1;
  u->seen++;
  int rc = vh_batch_del_pin(u->p->b, m, d, VH_DEAD_ID(ent));
  if (rc != 0) return rc;
  H->pinned -= H->pinned > 0;
  H->pinned_bytes = H->pinned_bytes > H->avg ? H->pinned_bytes - H->avg : 0;
  return process_entry(u->p, ent, d);
}

/* One step of each removed mark whose pins are durable. */
static int unpin_steps(proc_t *p, uint64_t seq, char **errmsg) {
  vh_hist_t *H = p->H;
  for (size_t i = 0; i < H->nmarks;) {
    hmark_t *r = &H->marks[i];
    if (!r->removing || r->removing_new || r->wait_seq > p->durable) {
      i++;
      continue;
    }
    unpin_t u = {p, r, 0};
    int rc = vh_store_pins_each(H->s, r->seq, unpin_one, &u, errmsg);
    if (rc < 0) return rc;
    if (u.seen == VH_HIST_UNPIN) { /* more: once this batch is durable */
      r->wait_seq = seq;
      i++;
      continue;
    }
    hver_t *o = win(H, 0);
    if (!o || r->seq < o->seq) {
      if (!marked(H, r->seq)) rc = vh_batch_del_version(p->b, r->seq);
    }
    if (rc == 0) rc = vh_batch_del_mark_removing(p->b, r->seq);
    if (rc != 0) return set_err(errmsg, rc, "out of memory");
    free(r->old_name);
    free(r->name);
    H->marks[i] = H->marks[--H->nmarks];
  }
  return 0;
}

static int write_marks(vh_hist_t *H, vh_batch_t *b, uint64_t seq) {
  for (size_t i = 0; i < H->nmarks; i++) {
    hmark_t *m = &H->marks[i];
    vh_mark_t rec = {m->name, m->seq, m->time_ms, m->next_id, m->bytes};
    int rc = 0;
    if (m->removing_new) {
      rc = vh_batch_del_mark(b, m->old_name);
      if (rc == 0) rc = vh_batch_put_mark_removing(b, &rec);
      if (rc != 0) return rc;
      m->removing_new = 0;
      m->wait_seq = seq;
      m->dirty = 0;
    } else if (m->dirty) {
      rc = m->name ? vh_batch_put_mark(b, &rec)
                   : vh_batch_put_mark_removing(b, &rec);
      if (rc != 0) return rc;
      m->dirty = 0;
    }
  }
  return 0;
}

/* ---- the batch ---- */

size_t vh_hist__mem_entries(const vh_hist_t *H) {
  return H->mem_ents;
}

void vh_hist_info(vh_hist_t *H, vh_history_t *h) {
  memset(h, 0, sizeof *h);
  hver_t *nv = newest(H);
  h->oldest = H->tail_n ? H->tail_lo : (H->n ? ring_at(H, 0)->seq : 0);
  h->newest = nv ? nv->seq : 0;
  h->count = count(H);
  h->bytes = H->bytes;
  h->pinned = H->pinned;
  h->pinned_bytes = H->pinned_bytes;
  h->avg_node = H->avg;
  h->newest_time = nv ? nv->time_ms : 0;
  h->newest_next_id = nv ? nv->next_id : 0;
}

/* Frees in-memory chunks that are durable, oldest first, while too many
 * entries are held. */
static void evict(vh_hist_t *H, uint64_t durable) {
  for (size_t i = 0; i < H->n && H->mem_ents > VH_HIST_MEM_ENTS; i++) {
    hver_t *v = ring_at(H, i);
    if (!v->chunks || v->last->s > durable) continue;
    chunks_free(H, v);
    v->evicted = 1;
  }
}

static int add_chunk(vh_hist_t *H, vh_batch_t *b, hver_t *v, uint64_t s,
                     const uint64_t *ents, size_t n) {
  uint64_t est = (uint64_t)n * H->avg;
  hchunk_t *c = malloc(sizeof *c + n * sizeof *ents);
  if (c == NULL) return VH_ENOMEM;
  int rc = vh_batch_put_deaths(b, v->seq, s, ents, n, est);
  if (rc != 0) {
    free(c);
    return rc;
  }
  c->next = NULL;
  c->s = s;
  c->est = est;
  c->n = n;
  memcpy(c->ents, ents, n * sizeof *ents);
  if (v->last)
    v->last->next = c;
  else
    v->chunks = c;
  v->last = c;
  H->mem_ents += n;
  H->bytes += est;
  return 0;
}

/* GRAVEYARD (graveyard.c): dead nodes may wait in their blocks while
 * they hold at most a VH_HIST_GRAVE_SHARE part of the store's live bytes
 * (RocksDB's estimate, read now and then), in nodes of the average size. */
static uint64_t grave_cap(vh_hist_t *H) {
  if (H->s->grave_cap) return H->s->grave_cap; /* tests */
  if (H->live_batches++ % VH_HIST_GRAVE_LIVE_EVERY == 0)
    H->live = vh_store_live_bytes(H->s);
  return H->live / VH_HIST_GRAVE_SHARE / (H->avg ? H->avg : 1);
}

/* GRAVEYARD: the batch's dead nodes go to their blocks' records; a dead
 * block is deleted, or one released when too many wait. VH_ENOMEM, or 0
 * (any other failure is noted and retried by a later batch). */
static int grave_end(vh_hist_t *H, proc_t *p, const vh_hist_slice_t *sl,
                     char **errmsg) {
  int rc =
      vh_grave_end(H->grave, p->b, sl->seq, p->durable, sl->stopping, errmsg);
  if (rc == VH_ENOMEM) return set_err(errmsg, rc, "out of memory");
  if (rc != 0) note(H, errmsg);
  return 0;
}

int vh_hist_slice(vh_hist_t *H, vh_batch_t *b, const vh_hist_slice_t *sl,
                  vh_hist_sweep_fn sweep, void *arg, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (!H->started) {
    H->started = 1;
    H->floor = sl->seq - 1;
  }
  proc_t p = {H, b, sweep, arg, sl->durable > H->floor ? sl->durable : H->floor,
              0, 0, 0};
  int rc = 0;
  if (H->grave) { /* GRAVEYARD: its counts, read once */
    rc = vh_grave_begin(H->grave, grave_cap(H), errmsg);
    if (rc == VH_ENOMEM) return set_err(errmsg, rc, "out of memory");
    if (rc != 0) note(H, errmsg); /* its nodes are deleted meanwhile */
    rc = 0;
  }
  H->last_seq = sl->seq;
  if (sl->new_nodes) {
    uint64_t a = sl->new_bytes / sl->new_nodes + 5 + 9; /* frame + key */
    H->avg = (uint32_t)((H->avg * 15 + a) / 16);
    if (H->avg == 0) H->avg = 1;
  }
  if (H->pol.bytes_default && ++H->batches % VH_HIST_BUDGET_EVERY == 0) {
    uint64_t live = vh_store_live_bytes(H->s);
    live = live > H->bytes ? live - H->bytes : 0;
    H->budget = live / 2 > H->pol.bytes ? live / 2 : H->pol.bytes;
  }
  /* The fresh deaths belong to this version, or to the newest one. */
  uint64_t fresh_for = 0;
  if (sl->is_version) {
    vh_version_t v = {.seq = sl->seq,
                      .time_ms = sl->time_ms,
                      .events = sl->events,
                      .keys_changed = sl->keys,
                      .nchanged = sl->nchanged,
                      .changed = sl->changed};
    void *pay = NULL;
    size_t plen = 0;
    rc = vh_version_encode(&v, sl->man, sl->manlen, &pay, &plen);
    if (rc == 0) rc = vh_batch_put_version(b, sl->seq, pay, plen);
    free(pay);
    /* The input log rides with its version (vh_inputs.h): dropped with
     * it by vh_batch_del_version, counted in its bytes. */
    if (rc == 0 && sl->inputs != NULL) {
      rc = vh_batch_put_inputs(b, sl->seq, sl->inputs, sl->inlen);
      plen += sl->inlen + 5 + 9;
    }
    /* So does its change record (vh_chrec.h). */
    if (rc == 0 && sl->chrec != NULL) {
      rc = vh_batch_put_chrec(b, sl->seq, sl->chrec, sl->chlen);
      plen += sl->chlen + 5 + 9;
    }
    if (rc != 0) return set_err(errmsg, rc, "out of memory");
    hver_t nv = {.seq = sl->seq,
                 .time_ms = sl->time_ms,
                 .next_id = sl->next_id,
                 .vbytes = plen + 5 + 9};
    rc = ring_push(H, &nv);
    if (rc != 0) return set_err(errmsg, rc, "out of memory");
    H->bytes += nv.vbytes;
    fresh_for = sl->seq;
  } else if (newest(H)) {
    fresh_for = newest(H)->seq;
  }
  int fresh_used = 0;
  if (sl->ndead && (fresh_for == 0 || count(H) == 1)) {
    /* No retained version before it: nothing can reach these. */
    rc = process_ents(&p, sl->dead, sl->ndead, fresh_for ? fresh_for : sl->seq);
    if (rc != 0) return set_err(errmsg, rc, "out of memory");
    fresh_used = 1;
  }
  /* The fresh deaths count in the estimate while the policy runs. */
  uint64_t fest = fresh_used ? 0 : (uint64_t)sl->ndead * H->avg;
  H->bytes += fest;
  for (int k = 0; k < VH_HIST_DROPS; k++) {
    if (k > 0 && p.ents >= VH_HIST_DROP_ENTS) break; /* BOUNDED DROPS */
    if (sl->stopping && k >= (sl->is_version ? 1 : 0) &&
        !stop_may_drop(H, &p, fresh_used ? 0 : sl->ndead, fresh_for))
      break;
    rc = front_fill(H, errmsg);
    if (rc == 0 && !want_drop(H, sl->time_ms)) break;
    if (rc == 0)
      rc = drop_one(&p, sl->dead, sl->ndead, fresh_for, &fresh_used, errmsg);
    if (rc == 0) H->warned = 0; /* reads work (again) */
    if (rc == VH_ENOMEM) return rc;
    if (rc != 0) { /* a read failed: keep the window, retry later */
      note(H, errmsg);
      rc = 0;
      break;
    }
  }
  H->bytes = H->bytes > fest ? H->bytes - fest : 0; /* add_chunk counts */
  if (sl->ndead && !fresh_used) {
    hver_t *v = newest(H);
    rc = add_chunk(H, b, v, sl->seq, sl->dead, sl->ndead);
    if (rc != 0) return set_err(errmsg, rc, "out of memory");
  }
  rc = unpin_steps(&p, sl->seq, errmsg);
  if (rc == VH_ENOMEM) return rc;
  if (rc != 0) {
    note(H, errmsg);
    rc = 0;
  }
  /* after every process_entry of the batch (drops, unpins) */
  if (H->grave && grave_end(H, &p, sl, errmsg) == VH_ENOMEM) return VH_ENOMEM;
  rc = write_marks(H, b, sl->seq);
  if (rc == 0) {
    vh_history_t h;
    vh_hist_info(H, &h);
    rc = vh_batch_put_history(b, &h);
  }
  if (rc != 0) return set_err(errmsg, rc, "out of memory");
  H->dirty = 0;
  evict(H, p.durable);
  free(H->res); /* vh_hist_resurrect's filter lasts one batch */
  H->res = NULL;
  H->res_n = 0;
  return 0;
}

int vh_hist_marks_dirty(const vh_hist_t *H) {
  return H->dirty;
}

int vh_hist_due(vh_hist_t *H, int64_t now_ms, uint64_t durable) {
  if (H->dirty) return 1;
  for (size_t i = 0; i < H->nmarks; i++)
    if (H->marks[i].removing && H->marks[i].wait_seq <= durable) return 1;
  if (count(H) < 2) return 0;
  if (front_fill(H, NULL) != 0) return 0;
  return want_drop(H, now_ms);
}

/* ---- rollback: nodes alive again (vh_hist_resurrect) ---- */

static int id_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* 1 if id is in the sorted set of resurrected ids of this batch. */
static int resurrected(const vh_hist_t *H, uint64_t id) {
  size_t lo = 0, hi = H->res_n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (H->res[mid] == id) return 1;
    if (H->res[mid] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* Removes the resurrected entries of ents[0..n) in place: the new count. */
static size_t res_filter(const vh_hist_t *H, uint64_t *ents, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!resurrected(H, VH_DEAD_ID(ents[i]))) ents[k++] = ents[i];
  return k;
}

/* Writes chunk (d, s) again with its n remaining entries (none: deleted). */
static int res_rewrite(vh_hist_t *H, vh_batch_t *b, uint64_t d, uint64_t s,
                       const uint64_t *ents, size_t n, size_t removed,
                       uint64_t *est) {
  uint64_t cut = (uint64_t)removed * H->avg;
  *est = *est > cut ? *est - cut : 0;
  H->bytes = H->bytes > cut ? H->bytes - cut : 0;
  return n ? vh_batch_put_deaths(b, d, s, ents, n, *est)
           : vh_batch_del_deaths(b, d, s);
}

typedef struct res_disk {
  vh_hist_t *H;
  vh_batch_t *b;
  hver_t *mem; /* the version in memory, or NULL */
  uint64_t d;
  uint64_t *buf;
  size_t cap;
} res_disk_t;

static int res_disk_chunk(void *arg, uint64_t s, const uint64_t *ents, size_t n,
                          uint64_t est) {
  res_disk_t *r = arg;
  if (r->mem) /* a chunk held in memory is edited there */
    for (hchunk_t *c = r->mem->chunks; c; c = c->next)
      if (c->s == s) return 0;
  if (vh_grow(&r->buf, &r->cap, n ? n : 1, sizeof *r->buf) != 0)
    return VH_ENOMEM;
  memcpy(r->buf, ents, n * sizeof *ents);
  size_t k = res_filter(r->H, r->buf, n);
  if (k == n) return 0;
  return res_rewrite(r->H, r->b, r->d, s, r->buf, k, n - k, &est);
}

static int res_version(void *arg, uint64_t seq, int64_t time_ms, size_t bytes) {
  (void)time_ms;
  (void)bytes;
  res_disk_t *r = arg;
  r->d = seq;
  r->mem = NULL;
  for (size_t i = 0; i < r->H->n; i++)
    if (ring_at(r->H, i)->seq == seq) r->mem = ring_at(r->H, i);
  return vh_store_deaths_each(r->H->s, seq, res_disk_chunk, r, NULL);
}

static int res_pin(void *arg, uint64_t m, uint64_t d, uint64_t ent) {
  res_disk_t *r = arg;
  vh_hist_t *H = r->H;
  if (!resurrected(H, VH_DEAD_ID(ent))) return 0;
  int rc = vh_batch_del_pin(r->b, m, d, VH_DEAD_ID(ent));
  if (rc != 0) return rc;
  H->pinned -= H->pinned > 0;
  H->pinned_bytes = H->pinned_bytes > H->avg ? H->pinned_bytes - H->avg : 0;
  for (size_t i = 0; i < H->nmarks; i++) {
    hmark_t *mk = &H->marks[i];
    if (mk->seq != m) continue;
    mk->bytes = mk->bytes > H->avg ? mk->bytes - H->avg : 0;
    mk->dirty = 1;
  }
  return 0;
}

int vh_hist_resurrect(vh_hist_t *H, vh_batch_t *b, uint64_t after,
                      const uint64_t *ids, size_t n, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  free(H->res);
  H->res = NULL;
  H->res_n = 0;
  if (n == 0) return 0;
  H->res = malloc(n * sizeof *ids);
  if (H->res == NULL) return set_err(errmsg, VH_ENOMEM, "out of memory");
  memcpy(H->res, ids, n * sizeof *ids);
  qsort(H->res, n, sizeof *ids, id_cmp);
  H->res_n = n;
  int rc = 0;
  /* Chunks in memory (this run's versions after `after`). */
  for (size_t i = 0; i < H->n && rc == 0; i++) {
    hver_t *v = ring_at(H, i);
    if (v->seq <= after) continue;
    for (hchunk_t *c = v->chunks; c && rc == 0; c = c->next) {
      size_t k = res_filter(H, c->ents, c->n);
      if (k == c->n) continue;
      H->mem_ents -= c->n - k;
      size_t removed = c->n - k;
      c->n = k;
      rc = res_rewrite(H, b, v->seq, c->s, c->ents, k, removed, &c->est);
    }
  }
  /* Chunks on disk only (older runs, evicted ones), then the pins. */
  res_disk_t r = {H, b, NULL, 0, NULL, 0};
  if (rc == 0)
    rc = vh_store_version_scan(H->s, after + 1, SIZE_MAX, res_version, &r,
                               errmsg);
  if (rc == 0) rc = vh_store_pins_each(H->s, 0, res_pin, &r, errmsg);
  free(r.buf);
  H->dirty = 1;
  if (rc != 0) return set_err(errmsg, rc, "out of memory");
  return 0;
}
