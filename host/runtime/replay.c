/*
 * replay.c - re-running the slice that made a version (vh_replay_slice;
 * `vedhost replay` is host/admin/replay_cmd.c, the REPL's replay(V)
 * host/repl/repl_replay.c).
 *
 * WHAT. Given a host whose domains' roots are the state before the slice
 * (version V-1: the caller sets them, as stubs of V-1's roots that nothing
 * writes back), and the input log of V (vh_inputs.h), run the recorded
 * handler calls in their order through vh_host__dispatch, with the
 * recorded slice clock (ctx.now, os.time) and seed (math.random), and
 * report each call's outcome, reply and error, and whether it matches what
 * was recorded. The end state is the domains' roots afterwards.
 *
 * NEVER WRITES. h->replaying is set for the run: the calls are not
 * recorded in the host's input log, and what would leave the slice is
 * dropped (ctx:send / ved.send messages, `after` timers: they are the
 * inputs of later slices, recorded there; `every` timers are freed at
 * commit instead of started). No slice ends here, so nothing reaches the
 * store: the caller's host either has no store worth writing (the CLI's
 * private host on a scratch dir) or swaps its roots back (REPL).
 *
 * A start() in the log (the boot's first slice) is run as start again. A
 * slice that ran a migrate or read an unrecorded input is unreplayable:
 * the caller checks in->unreplayable first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"

void vh_replay_res_free(vh_replay_res_t *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n; i++) {
    vh_val_release(r->calls[i].reply);
    free(r->calls[i].err);
  }
  free(r->calls);
  memset(r, 0, sizeof *r);
}

static vh_in_outcome_t vh_replay_outcome(int rc) {
  return rc == 0                   ? VH_IN_OK
         : rc == VH_HOST_EROLLBACK ? VH_IN_RAISED
                                   : VH_IN_NOCALL;
}

int vh_replay_slice(vh_host_t *h, const vh_inputs_t *in,
                    vh_replay_trace_fn trace, void *arg, vh_replay_res_t *out) {
  memset(out, 0, sizeof *out);
  out->calls = calloc(in->n ? in->n : 1, sizeof *out->calls);
  if (!out->calls) return VH_ENOMEM;
  int64_t save_now = h->slice_now;
  uint64_t save_seed = h->slice_seed;
  int save_taken = h->seed_taken, save_replaying = h->replaying;
  h->replaying = 1;
  h->slice_now = in->now;
  vh_det__set_seed(h, in->seed);
  for (size_t i = 0; i < in->n; i++) {
    const vh_input_t *e = &in->v[i];
    vh_replay_call_t *c = &out->calls[i];
    c->in = e;
    c->reply = vh_nil();
    out->n = i + 1;
    vh_domain_t *d = vh_host__find(h, e->domain, strlen(e->domain));
    vh_tab_t *before = NULL;
    if (!d) {
      char buf[400];
      snprintf(buf, sizeof buf, "domain '%s' is not declared by the scripts",
               e->domain);
      c->err = strdup(buf);
      c->rc = VH_HOST_ENODOMAIN;
    } else {
      before = vhl_state_root(d->st);
      if (before) vh_tab_retain(before);
      c->rc = vh_host__dispatch(
          h, d, e->event, e->elen,
          e->kind == VH_IN_START ? VH_DISPATCH_START : VH_DISPATCH_EVENT,
          e->payload, e->has_reply ? &c->reply : NULL, &c->err);
    }
    vh_in_outcome_t o = vh_replay_outcome(c->rc);
    if (o == VH_IN_RAISED) out->errors++;
    if (o != VH_IN_OK) {
      vh_val_release(c->reply);
      c->reply = vh_nil();
    } else {
      free(c->err);
      c->err = NULL;
    }
    c->differs = o != e->outcome || (e->has_reply && o == VH_IN_OK &&
                                     !vh_val_equal(c->reply, e->reply));
    if (c->differs) out->differs++;
    if (trace) trace(arg, c, d, before, d ? vhl_state_root(d->st) : NULL);
    if (before) vh_tab_release(before);
  }
  h->replaying = save_replaying;
  h->slice_now = save_now;
  h->slice_seed = save_seed;
  h->seed_taken = save_taken;
  h->rng_gen++; /* the live slice's generators are seeded again */
  return 0;
}
