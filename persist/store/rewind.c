/*
 * rewind.c - what rollback and branch need from the store (vh_rewind.h
 * has the why and the contract): the node-level difference of two stored
 * trees, the plan of a rollback (resolve V, check the domain and its
 * version at V, walk the difference), a RocksDB checkpoint, and the trim
 * that makes a checkpoint hold one version.
 *
 * HOW IT WORKS. Every stored node's children have smaller ids than the
 * node: flush.c writes children before their parent (post-order) and a
 * stored node is immutable, so a parent made later than a child can only
 * point down to older, smaller ids. The walk keeps one max-heap of ids per
 * tree, seeded with the two roots, and always takes the largest id x left
 * in either heap, together with every other copy of x in both heaps:
 *
 *   x in both heaps    x is in both trees: its whole subtree is shared
 *                      (an id names one immutable subtree); skip it
 *   x in one heap      the other tree cannot reach x: every node of it
 *                      not yet taken sits below some entry of its heap,
 *                      and all of those are smaller than x; so x is only
 *                      in this tree: report it, read it, push its children
 *
 * Only reported nodes are read, so the cost is O(k log k) for k nodes that
 * differ, whatever the size of the trees: a rollback of a 1M-key domain
 * to a version that differed in 10 keys reads about 10 x depth nodes.
 *
 * LIMITATIONS. A node reached twice within one tree would be reported
 * once (the copies are taken together); the trie never stores such a
 * tree (a stored node has one parent), so this only matters for damaged
 * stores, where the walk stays finite and fsck reports the damage.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_int.h"
#include "vh_bytes.h"
#include "vh_codec.h"
#include "vh_rewind.h"
#include "vh_version_spec.h"
#include "vh_versions.h"

/* A max-heap of ids. */
typedef struct heap {
  uint64_t *v;
  size_t n, cap;
} heap_t;

static int heap_push(heap_t *h, uint64_t id) {
  if (vh_grow(&h->v, &h->cap, h->n + 1, sizeof *h->v) != 0) return VH_ENOMEM;
  size_t i = h->n++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h->v[p] >= id) break;
    h->v[i] = h->v[p];
    i = p;
  }
  h->v[i] = id;
  return 0;
}

static uint64_t heap_top(const heap_t *h) {
  return h->n ? h->v[0] : 0;
}

static void heap_pop(heap_t *h) {
  uint64_t last = h->v[--h->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && h->v[c + 1] > h->v[c]) c++;
    if (h->v[c] <= last) break;
    h->v[i] = h->v[c];
    i = c;
  }
  if (h->n) h->v[i] = last;
}

/* Pops every copy of id off h; 1 if there was one. */
static int heap_take(heap_t *h, uint64_t id) {
  int had = 0;
  while (h->n && h->v[0] == id) {
    heap_pop(h);
    had = 1;
  }
  return had;
}

static int push_child(void *arg, uint64_t id) {
  return heap_push((heap_t *)arg, id);
}

static void set_err(char **errmsg, const char *fmt, unsigned long long id,
                    const char *why) {
  if (errmsg == NULL) return;
  int n = snprintf(NULL, 0, fmt, id, why);
  *errmsg = n > 0 ? malloc((size_t)n + 1) : NULL;
  if (*errmsg) snprintf(*errmsg, (size_t)n + 1, fmt, id, why);
}

int vh_rewind_diff(uint64_t a, uint64_t b, vh_rewind_get_fn get, void *garg,
                   vh_codec_id_fn only_a, vh_codec_id_fn only_b, void *arg,
                   char **errmsg) {
  if (errmsg) *errmsg = NULL;
  heap_t ha = {NULL, 0, 0}, hb = {NULL, 0, 0};
  int rc = 0;
  if (a && (rc = heap_push(&ha, a)) != 0) goto done;
  if (b && (rc = heap_push(&hb, b)) != 0) goto done;
  while (ha.n || hb.n) {
    uint64_t ta = heap_top(&ha), tb = heap_top(&hb);
    uint64_t x = ta > tb ? ta : tb;
    int in_a = heap_take(&ha, x), in_b = heap_take(&hb, x);
    if (in_a && in_b) continue; /* shared subtree */
    heap_t *mine = in_a ? &ha : &hb;
    rc = (in_a ? only_a : only_b)(arg, x);
    if (rc != 0) goto done;
    void *bytes = NULL;
    size_t len = 0;
    rc = get(garg, x, &bytes, &len, errmsg);
    if (rc != 0) goto done;
    const char *why = NULL;
    rc = vh_codec_child_ids(bytes, len, push_child, mine, NULL, &why);
    free(bytes);
    if (rc == VH_ENOMEM) goto done;
    if (rc != 0) {
      set_err(errmsg, "node %llu: %s", (unsigned long long)x,
              why ? why : "does not decode");
      goto done;
    }
  }
done:
  if (rc == VH_ENOMEM && errmsg && *errmsg == NULL)
    *errmsg = strdup("comparing versions: out of memory");
  free(ha.v);
  free(hb.v);
  return rc;
}

static int store_get(void *arg, uint64_t id, void **bytes, size_t *len,
                     char **errmsg) {
  return vh_store_get_node((vh_store_t *)arg, id, bytes, len, errmsg);
}

int vh_store_tree_diff(vh_store_t *s, uint64_t a, uint64_t b,
                       vh_codec_id_fn only_a, vh_codec_id_fn only_b, void *arg,
                       char **errmsg) {
  return vh_rewind_diff(a, b, store_get, s, only_a, only_b, arg, errmsg);
}

int vh_idlist_add(void *arg, uint64_t id) {
  vh_idlist_t *l = arg;
  if (vh_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0) return VH_ENOMEM;
  l->v[l->n++] = id;
  return 0;
}

void vh_idlist_free(vh_idlist_t *l) {
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* ---- rollback: the plan ---- */

void vh_rewind_plan_free(vh_rewind_plan_t *p) {
  vh_idlist_free(&p->dead);
  vh_idlist_free(&p->back);
}

static int vh_rewind_back_cb(void *arg, uint64_t id) {
  return vh_idlist_add(&((vh_rewind_plan_t *)arg)->back, id);
}

static int vh_rewind_dead_cb(void *arg, uint64_t id) {
  return vh_idlist_add(&((vh_rewind_plan_t *)arg)->dead, id);
}

/* Resolve spec, check NAME at V against its running version, and walk the
 * difference between its root at V and cur_root. 0, or -1 with one line
 * in err (nothing changed). */
int vh_rewind_plan(vh_store_t *s, const char *name, const char *spec,
                   int64_t now_ms, int64_t running_version, uint64_t cur_root,
                   vh_rewind_plan_t *p, char *err, size_t cap) {
  char *m = NULL;
  vh_version_t ver;
  memset(&ver, 0, sizeof ver);
  memset(p, 0, sizeof *p);
  p->cur_root = cur_root;
  int rc = vh_version_resolve(s, spec, now_ms, &p->to, &m);
  if (rc == 0) rc = vh_store_version_get(s, p->to, &ver, &m);
  if (rc != 0) {
    snprintf(err, cap, "%s; nothing was changed", m ? m : vh_err_name(rc));
    free(m);
    return -1;
  }
  const vh_manifest_domain_t *e = vh_manifest_find(&ver.m, name);
  if (e == NULL) {
    snprintf(err, cap,
             "domain '%s' did not exist at version %" PRIu64
             "; nothing was changed",
             name, p->to);
    vh_version_free(&ver);
    return -1;
  }
  if (e->version != running_version) {
    snprintf(err, cap,
             "domain '%s' was at version %lld in version %" PRIu64
             " and is at version %lld now: a rollback across a migrate is "
             "refused (that state has the shape the older script expected); "
             "pick a version after the migrate; nothing was changed",
             name, (long long)e->version, p->to, (long long)running_version);
    vh_version_free(&ver);
    return -1;
  }
  p->to_root = e->root;
  vh_version_free(&ver);
  if (p->to_root == cur_root) {
    p->nothing = 1;
    return 0;
  }
  rc = vh_store_tree_diff(s, p->to_root, cur_root, vh_rewind_back_cb,
                          vh_rewind_dead_cb, p, &m);
  if (rc != 0) {
    snprintf(err, cap,
             "cannot compare version %" PRIu64
             " with the current state: %s; nothing was changed",
             p->to, m ? m : vh_err_name(rc));
    free(m);
    vh_rewind_plan_free(p);
    return -1;
  }
  return 0;
}

/* The summary line of a rollback written as version seq. */
void vh_rewind_summary(char *msg, size_t cap, const char *name,
                       const vh_rewind_plan_t *p, uint64_t seq) {
  if (p->nothing) {
    snprintf(msg, cap,
             "nothing to roll back: domain '%s' holds the state of version "
             "%" PRIu64 " already",
             name, p->to);
    return;
  }
  snprintf(msg, cap,
           "rolled back domain '%s' to version %" PRIu64 " as version %" PRIu64
           " (%zu node(s) back, %zu dropped); undo: vedhost rollback "
           "--domain %s --to %" PRIu64,
           name, p->to, seq, p->back.n, p->dead.n, name, seq - 1);
}

/* ---- branch: a checkpoint ---- */

/* SECONDARY CHECKPOINT. A checkpoint copies the table files of the view
 * it is made from and the WAL files in the primary's directory as they
 * are at that moment. A secondary's view is as old as its last catch-up:
 * if the primary flushed since then, the WAL that held the flushed writes
 * may be gone while the flush's table file is not in the view, and the
 * copy would silently lack those writes (in a young store, the format
 * record among them: "not a vedhost store"). So a secondary catches up,
 * notes the table files of its view, makes the checkpoint and catches up
 * again; if its table files changed meanwhile (a flush or a compaction
 * ran), the copy is removed and made again. A primary's checkpoint holds
 * its files still by itself. */

/* The names of the table files s's view lists, one [new] string (NULL
 * when RocksDB gives no list). */
static char *view_tables(vh_store_t *s) {
  const rocksdb_livefiles_t *lf = rocksdb_livefiles(s->db);
  if (lf == NULL) return NULL;
  int n = rocksdb_livefiles_count(lf);
  size_t len = 1;
  for (int i = 0; i < n; i++) len += strlen(rocksdb_livefiles_name(lf, i)) + 1;
  char *names = malloc(len), *at = names;
  for (int i = 0; names != NULL && i < n; i++) {
    size_t l = strlen(rocksdb_livefiles_name(lf, i));
    memcpy(at, rocksdb_livefiles_name(lf, i), l);
    at[l] = '\n';
    at += l + 1;
  }
  if (names != NULL) *at = '\0';
  rocksdb_livefiles_destroy(lf);
  return names;
}

static void catch_up(vh_store_t *s) {
  char *rerr = NULL;
  rocksdb_try_catch_up_with_primary(s->db, &rerr);
  rocksdb_free(rerr);
}

/* Removes a checkpoint dir (flat: RocksDB writes no subdirectories). */
static void remove_copy(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char *p = vh_store__msg("%s/%s", dir, e->d_name);
    if (p) unlink(p);
    free(p);
  }
  closedir(d);
  rmdir(dir);
}

int vh_store_checkpoint(vh_store_t *s, const char *dir, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (pthread_rwlock_rdlock(&s->db_lock) != 0) return VH_EIO;
  int rc = 0;
  char *rerr = NULL;
  if (s->db == NULL) {
    if (errmsg)
      *errmsg = vh_store__msg("%s: the store is being reopened", s->dbpath);
    rc = VH_EIO;
    goto done;
  }
  /* Up to two tries (VH_SECONDARY_OPENS beside a live host, store.c,
   * SECONDARY BESIDE A HOST): a compaction or a flush of a live primary
   * may delete a table file or a log between the listing and the link, or
   * change the table files while the copy is made (SECONDARY
   * CHECKPOINT). */
  int tries = s->secondary && vh_store_primary_live(s) ? VH_SECONDARY_OPENS : 2;
  for (int attempt = 0; attempt < tries; attempt++) {
    char *before = NULL;
    if (s->secondary) {
      catch_up(s);
      before = view_tables(s);
    }
    if (s->before_checkpoint) s->before_checkpoint(s->before_checkpoint_arg);
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(s->db, &rerr);
    if (rerr == NULL) {
      /* log_size_for_flush = max: copy the WAL rather than flush (a
       * secondary cannot flush, and a primary's loop must not wait). */
      rocksdb_checkpoint_create(cp, dir, UINT64_MAX, &rerr);
      rocksdb_checkpoint_object_destroy(cp);
    }
    int moved = 0;
    if (rerr == NULL && s->secondary) {
      catch_up(s);
      char *after = view_tables(s);
      moved = before == NULL || after == NULL || strcmp(before, after) != 0;
      free(after);
    }
    free(before);
    if (rerr == NULL && !moved) break;
    if (rerr == NULL && attempt + 1 < tries) {
      remove_copy(dir);
      continue;
    }
    if (rerr == NULL) {
      remove_copy(dir);
      if (errmsg)
        *errmsg = vh_store__msg(
            "the running host flushed or compacted during each of %d tries; "
            "try again",
            tries);
      rc = VH_EIO;
      break;
    }
    if (attempt + 1 < tries && strstr(rerr, "No such file") != NULL) {
      rocksdb_free(rerr);
      rerr = NULL;
      continue;
    }
    rc = vh_store__rocks_err(rerr, "checkpoint", errmsg);
    break;
  }
done:
  pthread_rwlock_unlock(&s->db_lock);
  return rc;
}

void vh_store__before_checkpoint(vh_store_t *s, void (*fn)(void *arg),
                                 void *arg) {
  s->before_checkpoint = fn;
  s->before_checkpoint_arg = arg;
}

/* ---- branch: trim a checkpoint to one version ---- */

typedef struct trim {
  vh_store_t *s;
  vh_batch_t *b;
  uint64_t v;    /* the branch's version */
  uint64_t kept; /* version records kept (seq <= v, >= oldest) */
  uint64_t oldest;
} trim_t;

static int trim_count(void *arg, uint64_t seq, int64_t time_ms, size_t bytes) {
  (void)time_ms;
  (void)bytes;
  trim_t *t = arg;
  if (seq > t->v) return 1;
  t->kept++;
  return 0;
}

static int trim_chunk(void *arg, uint64_t s, const uint64_t *ents, size_t n,
                      uint64_t est) {
  (void)ents;
  (void)n;
  (void)est;
  trim_t *t = arg;
  return vh_batch_del_deaths(t->b, t->v, s); /* t->v: the d being dropped */
}

static int trim_version(void *arg, uint64_t seq, int64_t time_ms,
                        size_t bytes) {
  (void)time_ms;
  (void)bytes;
  trim_t *t = arg;
  int rc = vh_batch_del_version(t->b, seq);
  if (rc != 0) return rc;
  trim_t sub = *t;
  sub.v = seq;
  return vh_store_deaths_each(t->s, seq, trim_chunk, &sub, NULL);
}

static int trim_pin(void *arg, uint64_t m, uint64_t d, uint64_t ent) {
  trim_t *t = arg;
  /* a pin of a mark after v, or of an entry that died after v (v's tree
   * holds it: it is live in the branch) */
  if (m > t->v || d > t->v)
    return vh_batch_del_pin(t->b, m, d, VH_DEAD_ID(ent));
  return 0;
}

static int trim_removing(void *arg, const vh_mark_t *m) {
  trim_t *t = arg;
  return m->seq > t->v ? vh_batch_del_mark_removing(t->b, m->seq) : 0;
}

int vh_store_branch_trim(vh_store_t *s, const vh_version_t *v, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  vh_history_t h;
  vh_mark_t *marks = NULL;
  size_t nmarks = 0;
  void *man = NULL;
  size_t manlen = 0;
  trim_t t = {s, NULL, v->seq, 0, 0};
  int rc = vh_store_history(s, &h, errmsg);
  /* A running host may have dropped v from its window (and deleted its
   * nodes) in the batches the checkpoint holds after v. */
  if (rc == 0 && h.oldest > v->seq) {
    if (errmsg)
      *errmsg = vh_store__msg(
          "version %llu left the running host's retention window while the "
          "branch was made (its oldest retained version is now %llu); "
          "branch a newer version, or mark it first",
          (unsigned long long)v->seq, (unsigned long long)h.oldest);
    return VH_ENOENT;
  }
  if (rc == 0) rc = vh_batch_new(&t.b);
  /* 1. the history after v: version records, death lists, marks, pins */
  if (rc == 0)
    rc = vh_store_version_scan(s, v->seq + 1, SIZE_MAX, trim_version, &t,
                               errmsg);
  if (rc == 0) rc = vh_store_pins_each(s, 0, trim_pin, &t, errmsg);
  if (rc == 0) rc = vh_store_marks(s, &marks, &nmarks, errmsg);
  for (size_t i = 0; rc == 0 && i < nmarks; i++)
    if (marks[i].seq > v->seq) rc = vh_batch_del_mark(t.b, marks[i].name);
  vh_marks_free(marks, nmarks);
  if (rc == 0) rc = vh_store_marks_removing(s, trim_removing, &t, errmsg);
  /* 2. the header: v is the newest */
  uint64_t oldest = h.oldest && h.oldest <= v->seq ? h.oldest : v->seq;
  t.kept = 0;
  if (rc == 0) {
    rc = vh_store_version_scan(s, oldest, SIZE_MAX, trim_count, &t, errmsg);
    if (rc > 0) rc = 0;
  }
  if (rc == 0) {
    uint64_t was = h.count ? h.count : 1;
    h.bytes = h.count ? h.bytes / was * (t.kept ? t.kept : 1) : 0;
    h.oldest = oldest;
    h.newest = v->seq;
    h.count = t.kept ? t.kept : 1;
    h.newest_time = v->time_ms;
    h.newest_next_id = v->m.next_id;
    rc = vh_batch_put_history(t.b, &h);
  }
  /* 3. the manifest: v's */
  if (rc == 0) rc = vh_manifest_encode(&v->m, &man, &manlen);
  if (rc == 0) rc = vh_batch_set_manifest(t.b, man, manlen);
  free(man);
  if (rc == 0) {
    uint64_t seq = v->seq; /* the writer only needs it > 0 here */
    rc = vh_store_submit(s, t.b, seq);
    t.b = NULL;
    if (rc == 0) rc = vh_store_wait_durable(s, seq);
  }
  vh_batch_free(t.b);
  if (rc != 0) {
    if (errmsg && !*errmsg) *errmsg = vh_store__msg("%s", vh_err_name(rc));
    return rc;
  }
  /* 4. every node (and sweep key) born after v: two range deletes (the
   * nodes' up to the last one stored: vh_store__delete_nodes) */
  unsigned char qlo[9], qhi[9];
  qlo[0] = VH_KEY_SWEEP;
  vh_be64_store(qlo + 1, v->m.next_id);
  memset(qhi + 1, 0xff, 8);
  qhi[0] = VH_KEY_SWEEP;
  char *rerr = NULL;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  rocksdb_writebatch_delete_range_cf(wb, s->cf_default, (const char *)qlo, 9,
                                     (const char *)qhi, 9);
  rocksdb_writebatch_delete_cf(wb, s->cf_default, (const char *)qhi, 9);
  pthread_rwlock_rdlock(&s->db_lock);
  uint64_t last = 0;
  if (s->db && vh_store__last_node(s, &last) != 0)
    rerr = strdup("IO error: reading the last node id");
  if (s->db && rerr == NULL && last >= v->m.next_id)
    vh_store__delete_nodes(s, wb, v->m.next_id, last);
  if (s->db && rerr == NULL) rocksdb_write(s->db, s->write_options, wb, &rerr);
  pthread_rwlock_unlock(&s->db_lock);
  rocksdb_writebatch_destroy(wb);
  if (rerr) return vh_store__rocks_err(rerr, "branch: deleting nodes", errmsg);
  return 0;
}
