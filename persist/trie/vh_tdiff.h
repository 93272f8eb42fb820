/*
 * vh_tdiff.h - the difference of two persistent tables (persist/tdiff.c).
 *
 * vh_tab_diff walks two versions of a table side by side and reports every
 * path whose value differs, in the REPL's key order (scripts/pretty.lua:
 * numbers ascending, then strings in byte order, then false, true), depth
 * first: a table's changed keys in that order, each nested table's own
 * changes right after its key. Whatever both versions share is skipped
 * without being read: two slots holding the same node (the same pointer or
 * the same non-zero store id) are equal, and this holds at every level, for
 * tables, CHAMP nodes, collision nodes and vector nodes. So the cost grows
 * with what changed (times the depth of the tries), not with the state.
 *
 * What one change is:
 *   '+'  path absent in a, present in b: new = its value in b;
 *   '-'  present in a, absent in b: old = its value in a;
 *   '~'  present in both with different values, where not both are tables
 *        (a table in both is walked: its changed keys are reported).
 * A nested table added or removed is ONE change whose value is the whole
 * table (the printer shows it as a literal), not one change per leaf: a
 * deploy that drops `sessions` shows one `- sessions` line, not a million.
 */
#ifndef VH_TDIFF_H
#define VH_TDIFF_H

#include <stddef.h>

#include "vh_trie.h"

typedef struct vh_tdiff_change {
  int op;               /* '+', '-' or '~' */
  const vh_val_t *path; /* the keys from the diffed root, path[0..depth) */
  size_t depth;         /* number of keys, >= 1 */
  vh_val_t old;         /* value in a [borrowed]; nil for '+' */
  vh_val_t new;         /* value in b [borrowed]; nil for '-' */
} vh_tdiff_change_t;

/* Called once per change, in order; everything in c is [borrowed] and valid
 * during the call only. Return 0 to go on, anything else to stop the walk
 * (vh_tab_diff then returns that value). */
typedef int (*vh_tdiff_fn)(void *arg, const vh_tdiff_change_t *c);

/* Report the differences between a and b [borrowed; either may be NULL,
 * which stands for an empty table] under the key path path[0..npath)
 * (normalized keys, [borrowed]; npath 0 = the whole tables): the values at
 * that path in a and b are compared (a missing step or a step through a
 * non-table reads as nil). Every reported path starts with path.
 * Returns 0, what cb returned when it stopped the walk, VH_ENOMEM, or the
 * code of a node that could not be loaded (the trie's fault is set: the
 * caller reports vh_trie_fault's message and clears it). Nothing is
 * written: the tables may be read-only views. */
int vh_tab_diff(const vh_tab_t *a, const vh_tab_t *b, const vh_val_t *path,
                size_t npath, vh_tdiff_fn cb, void *arg);

/* vh_tab_diff with flags. VH_TDIFF_ADOPT (for a reader walking version
 * after version, host/runtime/changes.c): where a and b hold the same
 * stored node as two objects and b's is an unloaded view stub while a's
 * is loaded, b's stub is made to forward to a's node (as a load would,
 * without the read), so b keeps what earlier walks loaded. Only view
 * nodes are touched (nothing else is written); tables are not adopted. */
#define VH_TDIFF_ADOPT 1
int vh_tab_diff_ex(const vh_tab_t *a, const vh_tab_t *b, const vh_val_t *path,
                   size_t npath, int flags, vh_tdiff_fn cb, void *arg);

/* The REPL's key order (pretty.lua): <0, 0 or >0. Numbers (integers and
 * floats compared by value) before strings (byte order) before booleans
 * (false first). a, b normalized keys. */
int vh_tdiff_key_cmp(vh_val_t a, vh_val_t b);

/* Scalar equality as a diff sees it: floats equal when their bits are (so
 * 0.0 and -0.0 differ, NaN equals NaN), tables when they are the same node
 * (same pointer or the same non-zero id); different tables are not equal
 * here even with equal contents (vh_tab_diff walks them). */
int vh_tdiff_same(vh_val_t a, vh_val_t b);

#endif /* VH_TDIFF_H */
