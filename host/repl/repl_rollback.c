/*
 * repl_rollback.c - `vedhost rollback` on a running host: the control
 * socket's COMMAND "rollback NAME V" (also `:rollback NAME V` in the REPL),
 * answered from the request callback (repl_info.c), between two slices.
 *
 * WHAT IT WRITES. A new version (a slice of its own) whose manifest is the
 * current one with NAME's root replaced by the root NAME had at V: a stub
 * of that stored node, nothing is copied. Every other domain, the system
 * state "__ved" (queued messages, `after` timers) and every domain version
 * stay as they are, so a rollback is undone by rolling back to the version
 * before it. The plan (V resolved, NAME at V checked against its running
 * version: a rollback across a migrate is refused, the difference of the
 * two trees walked) is vh_rewind_plan (persist/store/rewind.c); the same
 * plan serves the offline path (host/cli/rollback_cmd.c).
 *
 * HOW. The current slice is ended first (every root is then stored) and
 * the loop waits until the store has written it (the walk reads nodes from
 * disk); then, in one step with no handler in between, vh_durable__rewind
 * (host/runtime/durable.c) swaps the root (the replaced tree's in-memory
 * nodes become views: whoever still holds them - a REPL fork, an iterator,
 * a plugin's reader - their frees never report a death, since part of them
 * is alive again), queues the nodes only the replaced tree held as this
 * version's deaths and the nodes brought back for vh_hist_resurrect
 * (persist/store/history.c: out of the death lists and pins after V, in the
 * same batch); the slice is ended again: that batch is the rollback's
 * version, and the command answers once it is durable. The two waits block
 * the loop for about two group commits (a rollback is an operator's act,
 * not traffic), each at most 30 s: a store that stopped or keeps failing
 * must not freeze the host (before the swap that refuses the rollback,
 * after it the answer says the version is not durable yet). It is logged
 * as a warning ("rolled back to version V as version N").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repl_int.h"
#include "vh_log.h"
#include "vh_rewind.h"
#include "vh_store.h"

/* Waits (blocking the loop: see the file comment) until the store has
 * written seq, at most VH_ROLL_WAIT_MS: a store that stopped or keeps
 * failing must not freeze the host. 0, or -1. */
#define VH_ROLL_WAIT_MS 30000
static int vh_roll_wait(vh_store_t *s, uint64_t seq) {
  for (int i = 0; i < VH_ROLL_WAIT_MS; i++) {
    if (vh_store_durable_seq(s) >= seq) return 0;
    vh_store_health_t hl;
    vh_store_health(s, &hl);
    free(hl.last_error);
    if (hl.stopped) return -1;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return vh_store_durable_seq(s) >= seq ? 0 : -1;
}

int vh_rollback__command(vh_host_t *h, const char *args, char *msg,
                         size_t cap) {
  char name[256];
  size_t nl = strcspn(args, " ");
  const char *spec = args[nl] ? args + nl + 1 : "";
  while (*spec == ' ') spec++;
  if (nl == 0 || nl >= sizeof name || *spec == '\0') {
    snprintf(msg, cap, "usage: :rollback NAME V");
    return -1;
  }
  memcpy(name, args, nl);
  name[nl] = '\0';
  vh_domain_t *d = vh_host__find(h, name, nl);
  if (d == NULL) {
    snprintf(msg, cap, "no domain '%s'; nothing was changed", name);
    return -1;
  }
  if (d->retired) {
    snprintf(msg, cap, "domain '%s' is not running (%s); nothing was changed",
             name, d->refused ? d->refused : "not declared by the scripts");
    return -1;
  }
  vh_store_t *s = vh_durable__store(h);
  char why[512];
  if (s == NULL || !vh_host__accepting(h, why, sizeof why)) {
    snprintf(msg, cap, "cannot roll back now: %s; nothing was changed",
             s ? why : "the host has no store");
    return -1;
  }
  /* Every root stored and readable: end the slice, wait for the store. */
  vh_slice_end(h);
  vh_durable_stats_t ds;
  vh_durable__stats(h, &ds);
  if (vh_roll_wait(s, ds.submitted) != 0) {
    snprintf(msg, cap,
             "the store is not writing (see :stats); nothing was changed");
    return -1;
  }
  uint64_t cur = vh_tab_id(vhl_state_root(d->st));
  vh_rewind_plan_t p;
  if (cur == 0) {
    snprintf(msg, cap,
             "the current state of '%s' is not stored yet (the store is "
             "failing); nothing was changed",
             name);
    return -1;
  }
  if (vh_rewind_plan(s, name, spec, vh_host__wall_ms(), d->version, cur, &p,
                     msg, cap) != 0)
    return -1;
  if (p.nothing) {
    vh_rewind_summary(msg, cap, name, &p, 0);
    return 0;
  }
  char err[512];
  if (vh_durable__rewind(h, d, p.to_root, p.to, &p.dead, &p.back, err,
                         sizeof err) != 0) {
    snprintf(msg, cap, "%s; nothing was changed", err);
    vh_rewind_plan_free(&p);
    return -1;
  }
  vh_slice_end(h); /* the rollback's own version */
  vh_durable__stats(h, &ds);
  vh_rewind_summary(msg, cap, name, &p, ds.submitted);
  vh_log(VH_LOG_WARN, name,
         "rolled back to version %" PRIu64 " as version %" PRIu64
         " (%zu node(s) back, %zu dropped)",
         p.to, ds.submitted, p.back.n, p.dead.n);
  vh_rewind_plan_free(&p);
  if (vh_roll_wait(s, ds.submitted) != 0) {
    snprintf(msg, cap,
             "rolled back, but version %" PRIu64
             " is not durable yet: the store is not writing (see :stats); it "
             "is written when the store recovers, or lost if the host stops "
             "first",
             ds.submitted);
    return -1;
  }
  return 0;
}
