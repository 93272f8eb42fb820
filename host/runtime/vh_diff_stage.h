/*
 * vh_diff_stage.h - a diff of two stored versions with the newer one's new
 * nodes read in one range scan (host/runtime/diff_stage.c), shared by the
 * REPL's diff() and `vedhost diff`.
 */
#ifndef VH_DIFF_STAGE_H
#define VH_DIFF_STAGE_H

#include <stdint.h>

#include "vh_changes.h"

/* Node ids [lo, hi) are staged only for a whole diff (no domain, no path)
 * of two ADJACENT versions (seqs one apart): every node born between them
 * is then in the newer version and on a changed path, so the walk loads
 * each one. Over a longer span most of them may have died in between (a
 * counter bumped by every slice: 5 live nodes of 50,000 born), and under
 * a path most belong elsewhere: a scan of them all would cost far more
 * than the point reads it saves, so those diffs read node by node, as
 * before. And only when hi - lo is at least MIN (a scan costs what ~10
 * point reads do: a 1-key diff of a 1M-key state, 4-6 new nodes, was
 * slower staged, bench/README.md) and at most MAX_IDS (and their bytes at
 * most VH_DIFF_STAGE_BYTES). */
#define VH_DIFF_STAGE_MIN_IDS ((uint64_t)16)
#define VH_DIFF_STAGE_MAX_IDS ((uint64_t)1 << 18)
#define VH_DIFF_STAGE_BYTES ((size_t)4 << 20)

/* vh_changes_diff (same arguments, same result) of two versions whose
 * manifests had seqs seqa, seqb and next_id na, nb: the nodes born between
 * them (ids [min, max) of the two, which the walk loads on the newer side)
 * are first read with one range scan of store [borrowed] and staged, under
 * the rules above. na or nb 0 (a side that is not a stored version, e.g.
 * the live state) or store NULL: no stage. A failed scan only costs the
 * point reads. Before all that, a whole diff (npath 0) of two stored
 * versions one of which has a change record relative to the other is
 * read from that record (vh_chrec.h; diff_stage.c, CHANGE RECORDS). */
int vh_diff_staged(vh_store_t *store, uint64_t seqa, uint64_t na, uint64_t seqb,
                   uint64_t nb, const vh_vside_t *a, const vh_vside_t *b,
                   const char *domain, const vh_val_t *path, size_t npath,
                   vh_change_fn fn, void *arg);

/* Encodings staged and loads served from them by every vh_diff_staged of
 * this process (tests: VEDHOST_TEST_DIFF_STAGE). */
void vh_diff_stage_counts(uint64_t *staged, uint64_t *used);

/* Diffs served from change records (vh_chrec.h) by vh_diff_staged in this
 * process (tests, diagnostics). */
uint64_t vh_diff_record_count(void);

#endif
