/*
 * diff_stage.c - a diff of two stored versions whose newer side's new
 * nodes are read with one range scan (vh_diff_stage.h).
 *
 * WHY. A diff walk (persist/tdiff.c) loads, on each side, every node on
 * the way from a root to a change; each load of a node not in memory is
 * one store point read (memtable, L0 files, bloom filter, index seek and
 * block lookup, ~8 us a node on the bench machine), and those reads were
 * most of a small diff's time (bench/README.md, ver/diff2). On the newer
 * side every node the walk loads differs from the older side, so it was
 * born after the older version: ids are handed out in order and the nodes
 * born between two versions have the ids [older next_id, newer next_id)
 * (persist/store/history.c). They are read with one range scan
 * (vh_store_node_range: one seek and a sequential run over the blocks
 * holding them) and staged (persist/trie/stage.c) before the walk, as the
 * change feed does for each version (host/runtime/changes.c).
 *
 * BOUND. Only a whole diff of two adjacent versions is staged: then every
 * node born between them is in the newer version and on a changed path.
 * Between two far-apart versions the range holds every node born in
 * between, most of them possibly dead by the newer version (a counter
 * bumped by every slice), and a diff under a path visits only part of
 * them: a scan could cost hundreds of times the point reads it replaces.
 * A scan has a fixed cost (an iterator over every sorted run of the store)
 * of about ten point reads: fewer than VH_DIFF_STAGE_MIN_IDS new nodes are
 * read point by point. At most VH_DIFF_STAGE_MAX_IDS ids, and the scan
 * stops once VH_DIFF_STAGE_BYTES are staged (the rest is read point by
 * point, as without a stage). A staged encoding is decoded exactly as a
 * point read's bytes would be, so the output is the same either way.
 *
 * CHANGE RECORDS (vh_chrec.h). Before any of that: a whole diff (no path;
 * a domain filter just filters) of two stored versions a -> b where b has
 * a change record whose pred is a is that record's changes, in the order
 * the walk reports them, with values that print as the walked ones; b -> a
 * (a's record, pred b) is the same list reversed in meaning ('+' and '-'
 * swapped, old and new swapped; the paths and their order are the same).
 * Any other diff, a missing or unreadable record, or
 * VEDHOST_TEST_CHANGE_RECORDS=0 (tests: the walk, to compare) walks.
 *
 * THREADS. The trie's owner thread (the stage is process-wide state of
 * the trie, like the loader).
 */
#include "vh_diff_stage.h"

#include <stdlib.h>
#include <string.h>

#include "vh_chrec.h"
#include "vh_store.h"

static uint64_t vh_dstage__staged, vh_dstage__used, vh_dstage__records;

/* The diff of versions seqa -> seqb from a change record, when one
 * applies (*used = 1): 0 or what fn returned (which may be any non-zero
 * value). *used = 0: no record applies, walk. */
static int vh_dstage__record(vh_store_t *store, uint64_t seqa, uint64_t seqb,
                             const char *domain, vh_change_fn fn, void *arg,
                             int *used) {
  *used = 0;
  const char *e = getenv("VEDHOST_TEST_CHANGE_RECORDS");
  if ((e != NULL && strcmp(e, "0") == 0) || seqa == seqb) return 0;
  int rev = seqa > seqb;
  vh_chrec_t rec;
  if (vh_store_chrec_get(store, rev ? seqa : seqb, &rec, NULL) != 0) return 0;
  if (rec.pred != (rev ? seqb : seqa)) {
    vh_chrec_free(&rec);
    return 0;
  }
  *used = 1;
  vh_dstage__records++;
  int r = vh_changes_of_record(&rec, domain, rev, 0, 0, 0, fn, arg);
  vh_chrec_free(&rec);
  return r;
}

typedef struct dsput {
  vh_trie_stage_t *st;
  size_t bytes; /* staged so far */
} dsput_t;

static int vh_dstage__put(void *arg, uint64_t id, const void *bytes,
                          size_t len) {
  dsput_t *p = arg;
  if (p->bytes + len > VH_DIFF_STAGE_BYTES)
    return 1; /* stop: the rest
               * is point-read */
  p->bytes += len;
  return vh_trie_stage_put(p->st, id, bytes, len);
}

/* The id bounds: VH_DIFF_STAGE_MIN_IDS..VH_DIFF_STAGE_MAX_IDS, or 1..N with
 * VEDHOST_TEST_DIFF_STAGE=N (tests: 0 = never stage, a small N = a range
 * over the bound, a big N = stage the few nodes of a small test diff). */
static void vh_dstage__bounds(uint64_t *min, uint64_t *max) {
  const char *e = getenv("VEDHOST_TEST_DIFF_STAGE");
  *min = VH_DIFF_STAGE_MIN_IDS;
  *max = VH_DIFF_STAGE_MAX_IDS;
  if (e != NULL && *e != 0) {
    *min = 1;
    *max = strtoull(e, NULL, 10);
  }
}

int vh_diff_staged(vh_store_t *store, uint64_t seqa, uint64_t na, uint64_t seqb,
                   uint64_t nb, const vh_vside_t *a, const vh_vside_t *b,
                   const char *domain, const vh_val_t *path, size_t npath,
                   vh_change_fn fn, void *arg) {
  if (store != NULL && na != 0 && nb != 0 && npath == 0) {
    int used = 0;
    int r = vh_dstage__record(store, seqa, seqb, domain, fn, arg, &used);
    if (used) return r;
  }
  uint64_t lo = na < nb ? na : nb, hi = na < nb ? nb : na;
  uint64_t min, max;
  vh_dstage__bounds(&min, &max);
  int adjacent = seqa + 1 == seqb || seqb + 1 == seqa;
  vh_trie_stage_t *st = NULL;
  if (store != NULL && lo != 0 && adjacent && domain == NULL && npath == 0 &&
      hi - lo >= min && hi - lo <= max)
    st = vh_trie_stage_new();
  if (st != NULL && vh_trie_stage_reserve(st, (size_t)(hi - lo)) != 0) {
    vh_trie_stage_free(st);
    st = NULL;
  }
  vh_trie_stage_t *was = NULL;
  if (st != NULL) {
    was = vh_trie_stage_use(st);
    dsput_t p = {st, 0};
    char *m = NULL; /* a failed scan only costs the point reads */
    if (vh_store_node_range(store, lo, hi, vh_dstage__put, &p, &m) != 0)
      vh_trie_stage_clear(st);
    free(m);
  }
  int r = vh_changes_diff(a, b, domain, path, npath, 0, 0, fn, arg);
  if (st != NULL) {
    uint64_t s = 0, u = 0;
    vh_trie_stage_counts(st, &s, &u);
    vh_dstage__staged += s;
    vh_dstage__used += u;
    vh_trie_stage_use(was);
    vh_trie_stage_free(st);
  }
  return r;
}

uint64_t vh_diff_record_count(void) {
  return vh_dstage__records;
}

void vh_diff_stage_counts(uint64_t *staged, uint64_t *used) {
  if (staged) *staged = vh_dstage__staged;
  if (used) *used = vh_dstage__used;
}
