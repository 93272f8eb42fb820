/*
 * vh_changes.h - the diff of two versions and the change feed, shared by
 * `vedhost diff`, `vedhost changes`, the REPL's diff(), HTTP /changes and
 * the plugin ABI's changes call (host/changes.c).
 *
 * A change is (seq, time, domain, path, op, value): path is the key path
 * inside the domain's state (vh_tdiff.h: '+' added, '-' removed, '~'
 * changed; a nested table added or removed is one change holding the
 * whole table). Domains are visited in name order, each domain's changes
 * in the REPL's key order. The system state "__ved" is not a domain and is
 * never reported.
 *
 * Roots of old versions are made by mkroot: vh_tab_stub offline (nothing
 * reports deaths there), vh_tab_stub_view inside a host.
 */
#ifndef VH_CHANGES_H
#define VH_CHANGES_H

#include <stddef.h>
#include <stdint.h>

#include "vh_bytes.h"
#include "vh_manifest.h"
#include "vh_trie.h"

typedef struct vh_store vh_store_t;

typedef struct vh_change {
  uint64_t seq;         /* the version that made it (0 in a plain diff) */
  int64_t time_ms;      /* its slice clock (unix ms) */
  const char *domain;   /* [borrowed] */
  int op;               /* '+', '-', '~' */
  const vh_val_t *path; /* [borrowed] keys inside the domain */
  size_t depth;         /* >= 1 */
  vh_val_t old, new;    /* [borrowed] nil when absent */
  uint32_t n, of;       /* the feed: n-th change (from 1) of `of` in seq */
} vh_change_t;

/* Called per change, in order; everything is [borrowed] for the call.
 * Non-zero stops the walk and is returned. */
typedef int (*vh_change_fn)(void *arg, const vh_change_t *c);
typedef vh_tab_t *(*vh_mkroot_fn)(uint64_t id);

/* One side of a diff: the domains of a version and their roots. */
typedef struct vh_vside {
  size_t n;         /* domains */
  char **names;     /* [owned] their names, sorted (strcmp) */
  vh_tab_t **roots; /* [owned references] their roots; NULL = empty */
} vh_vside_t;

/* The domains of manifest m [borrowed] with roots made by mkroot (the
 * system state is left out). 0 or VH_ENOMEM (s then empty). */
int vh_vside_from_manifest(vh_vside_t *s, const vh_manifest_t *m,
                           vh_mkroot_fn mkroot);
/* Add domain name [borrowed, copied] with root [borrowed, retained; may
 * be NULL], keeping names sorted. 0 or VH_ENOMEM. */
int vh_vside_add(vh_vside_t *s, const char *name, vh_tab_t *root);
void vh_vside_free(vh_vside_t *s);

/* The changes a change record (vh_chrec.h) [borrowed] holds, to fn in
 * its order, as the walk would report them: only domain's [borrowed] when
 * not NULL; rev: from the newer version to the older ('+' and '-'
 * swapped, old and new swapped). seq and time_ms go into each change;
 * counted (the feed): n counts them from 1 and of is their number, else
 * both stay 0. 0 or what fn returned. */
struct vh_chrec;
int vh_changes_of_record(const struct vh_chrec *rec, const char *domain,
                         int rev, uint64_t seq, int64_t time_ms, int counted,
                         vh_change_fn fn, void *arg);

/* The changes from a to b [borrowed] (a domain missing on one side is an
 * empty table there). domain [borrowed] NULL = every domain; path[0..npath)
 * [borrowed, normalized keys] inside it (npath > 0 needs a domain). seq
 * and time_ms are copied into each change. 0, what fn returned, or a
 * negative code (a load fault: the trie's fault holds its message). */
int vh_changes_diff(const vh_vside_t *a, const vh_vside_t *b,
                    const char *domain, const vh_val_t *path, size_t npath,
                    uint64_t seq, int64_t time_ms, vh_change_fn fn, void *arg);

/* ---- the feed ---- */

/* Where a feed starts: after version `after` (a consumer's last seq); 0 =
 * from the beginning: the oldest retained version is sent whole (every
 * key of every domain as '+', with that version's seq), then each later
 * version's changes. */
typedef struct vh_feed {
  vh_store_t *store;   /* [borrowed] */
  vh_mkroot_fn mkroot; /* vh_tab_stub or vh_tab_stub_view */
  uint64_t last;       /* the last version fully sent (0: none yet) */
  int started;         /* prev holds version `last` */
  vh_manifest_t prev;  /* [owned] the manifest of version `last` */
  vh_vside_t side;     /* [owned] roots of version `last` (has_side) */
  int has_side;        /* side is set: the next diff starts from it */
  /* [owned] the next version's new nodes, staged (persist/trie/stage.c) */
  struct vh_trie_stage *stage;
  /* The last poll failed on a node it could not load while walking a
   * version, or found (by its change record) that versions before it are
   * not visible yet, before any change of that version was sent: a
   * follower (a secondary) may catch up and poll again
   * (host/cli/diff_cmd.c). */
  int walk_fault;
  /* Set by the caller after vh_feed_init: polls read the next versions'
   * records and new nodes on a second thread while they walk
   * (host/runtime/changes.c, READ-AHEAD). `vedhost changes` sets it with
   * VEDHOST_FEED_AHEAD=1 (not by default: bench/README.md, feed4). */
  int ahead;
  /* Versions sent from the read-ahead, and the nodes it staged (tests,
   * diagnostics). */
  uint64_t ahead_versions, ahead_staged;
  /* Versions sent from their change records (vh_chrec.h), not walked. */
  uint64_t record_versions;
} vh_feed_t;

/* Prepare f to send the versions after `after` (0: from the start). */
void vh_feed_init(vh_feed_t *f, vh_store_t *store, vh_mkroot_fn mkroot,
                  uint64_t after);
void vh_feed_free(vh_feed_t *f);
/* Make f send the versions after `after` again, as vh_feed_init would,
 * but keep what it holds when it stopped right there (f->last == after,
 * same store and mkroot): its side, the nodes earlier walks loaded, so
 * the next walk does not read its old side again. The next poll checks
 * that `after` is still retained exactly as a fresh feed's would. 1: kept,
 * 0: reset. For a caller that polls in short calls (api->changes: HTTP
 * asks for 8 versions a call). */
int vh_feed_resume(vh_feed_t *f, vh_store_t *store, vh_mkroot_fn mkroot,
                   uint64_t after);

/* Send every version after f->last that the store holds now, in seq order,
 * at most max versions (0 = no limit); f->last advances past each version
 * once all its changes were handed to fn. 0 (caught up), 1 (max versions
 * sent: more may follow),
 * what fn returned, or a negative code with a one-line [new] *errmsg:
 * VH_ENOENT when `after` (or the next version) is not retained any more:
 * "seq 99 is past retention: the oldest seq you can resume from is 1200"
 * (*oldest = 1200 when oldest is not NULL). */
int vh_feed_poll(vh_feed_t *f, size_t max, vh_change_fn fn, void *arg,
                 uint64_t *oldest, char **errmsg);

/* ---- output ---- */

/* The path as `domain.key.key` (inspect's syntax): keys that are plain
 * names or integers after a dot, the others in brackets as Lua literals
 * (`jobs["a b"]`, `x[1.5]`, `x[true]`, `x["3"]`). Appended to out. */
int vh_change_path_text(const char *domain, const vh_val_t *path, size_t depth,
                        vh_buf_t *out);

#endif /* VH_CHANGES_H */
