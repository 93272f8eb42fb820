/*
 * vh_version_spec.h - naming a retained version: `1234`, `-3`, `14:02`,
 * `2026-12-06T14:02:00Z`, `-5m`, a mark (persist/store/version_spec.c).
 *
 * Every reader of an old version (vedhost log/inspect/export/diff/
 * rollback/branch, the REPL's at(V) and diff, HTTP ?at=V) resolves its V
 * here, so a spec means the same thing everywhere. The grammar, tried in
 * this order:
 *
 *   DIGITS                 a version seq: it must be retained (in the
 *                          window or pinned by a mark)
 *   -DIGITS                N versions back from the newest (-0 = newest,
 *                          -1 the one before), counted in the window
 *   -DIGITS(s|m|h|d)       an age: the newest version at or before
 *                          now - age (now = the wall clock, now_ms)
 *   YYYY-MM-DDTHH:MM[:SS[.mmm]][Z]   a UTC time: the newest version at or
 *                          before it (a space may replace the T)
 *   HH:MM / HH:MM:SS       today (UTC, the day of now_ms) at that time
 *   anything else          a mark name
 *
 * Times and ages resolve within the retention window only: a marked
 * version older than the window is the state of its own moment, not of
 * any later one (the versions between it and the window are gone), so it
 * is named by its seq or its mark, never by a time.
 *
 * Errors are one line in *errmsg ([new], free()):
 *   "unknown version 99: oldest retained is 1200, newest 1300"
 *   "no version at or before 2026-12-06T13:00:00.000Z: oldest retained is
 *    1200 (2026-12-06T14:00:00.000Z)"
 *   "no mark named x"
 *   "bad version \"1x\": ..." for a spec that is none of the above
 * VH_ENOENT for a well-formed spec that names nothing retained, VH_EINVAL
 * for a malformed one, other codes from the store.
 */
#ifndef VH_VERSION_SPEC_H
#define VH_VERSION_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"
#include "vh_manifest.h"

typedef struct vh_store vh_store_t;

/* Resolve spec [borrowed] to a retained version of store s: 0 and *seq,
 * or a negative code and a one-line [new] *errmsg. now_ms: the wall clock
 * (unix ms) for ages and today's HH:MM. */
int vh_version_resolve(vh_store_t *s, const char *spec, int64_t now_ms,
                       uint64_t *seq, char **errmsg);

/* Resolve spec and read that version's manifest: 0 with *seq, *time_ms
 * (INT64_MIN when the store keeps no version records and the answer is
 * its current manifest) and *m [new] (vh_manifest_free), or a negative
 * code and a one-line [new] *errmsg, as vh_version_resolve. The readers'
 * one call: make each root of *m a vh_tab_stub_view (in a host) or a
 * vh_tab_stub (offline, where nothing reports deaths). */
int vh_version_load(vh_store_t *s, const char *spec, int64_t now_ms,
                    uint64_t *seq, int64_t *time_ms, vh_manifest_t *m,
                    char **errmsg);

/* ---- the resolver over any list of versions (the store's, a test's) ---- */

/* Where the versions come from. */
typedef struct vh_vspec_src {
  void *arg; /* [borrowed] handed to each and mark */
  /* Calls fn(fnarg, seq, time_ms) for every retained version, newest
   * first (window and marked ones), until fn returns non-zero. Returns 0,
   * the value fn stopped with, or a negative code with a [new] *errmsg. */
  int (*each)(void *arg, int (*fn)(void *fnarg, uint64_t seq, int64_t time_ms),
              void *fnarg, char **errmsg);
  /* The seq marked name: 0, VH_ENOENT (no such mark), or a negative code
   * with a [new] *errmsg. */
  int (*mark)(void *arg, const char *name, uint64_t *seq, char **errmsg);
  uint64_t oldest; /* the window's oldest seq (versions below it are kept
                      only by marks); 0 when nothing is retained */
} vh_vspec_src_t;

/* vh_version_resolve over src [borrowed]. */
int vh_version_resolve_src(const vh_vspec_src_t *src, const char *spec,
                           int64_t now_ms, uint64_t *seq, char **errmsg);

/* If spec is a time or an age (the 3 time forms above), *t_ms = that
 * moment and 1; 0 if it is not one (a seq, -N, a mark name); VH_EINVAL
 * with a [new] *errmsg if it looks like a time but is not a valid one
 * ("25:00"). For `vedhost log --since T`. */
int vh_version_parse_time(const char *spec, int64_t now_ms, int64_t *t_ms,
                          char **errmsg);

/* Format t_ms (unix ms) as "2026-12-06T14:02:00.123Z" into buf (at least
 * VH_VERSION_TIME_LEN bytes); returns buf. */
#define VH_VERSION_TIME_LEN 32
char *vh_version_time_fmt(int64_t t_ms, char *buf);

#endif /* VH_VERSION_SPEC_H */
