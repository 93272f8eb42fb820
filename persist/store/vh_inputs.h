/*
 * vh_inputs.h - the input log: what the slice that made a retained version
 * consumed, so that it can be re-run (host/runtime/replay.c) (byte layout:
 * top of persist/store/store_inputs.c).
 *
 * The host writes one record 'I' u64be(seq) in the batch of every version
 * seq (beside its 'V' record, host/history.c); vh_batch_del_version deletes
 * it with the version, so it is kept and dropped exactly like the version,
 * and its size counts in the retention disk budget.
 *
 * A record holds, in order, every handler call the slice made (the input
 * that caused it: an outside call, a REPL send, an `every` or `after`
 * timer, a delivered message, a start), each with its domain, event,
 * payload, outcome and the reply sent; the slice clock (ctx.now); the
 * slice's random seed (math.random of domain d is seeded from it and d);
 * and whether the slice read something from the outside that was not
 * recorded (then it cannot be replayed: unreplayable, with the reason).
 *
 * Ownership in prototypes: [borrowed] the caller keeps it, [new] the
 * caller frees it, [stolen] the callee takes it over.
 */
#ifndef VH_INPUTS_H
#define VH_INPUTS_H

#include <stddef.h>
#include <stdint.h>

#include "vh_bytes.h"
#include "vh_store.h"
#include "vh_trie.h"

/* What caused a handler call. */
typedef enum vh_in_kind {
  VH_IN_CALL = 0,  /* an outside call: HTTP, a plugin, vh_host_call */
  VH_IN_REPL = 1,  /* send() in a REPL chunk */
  VH_IN_EVERY = 2, /* an `every` timer (id: its period, ms) */
  VH_IN_AFTER = 3, /* an `after` timer (id: its timer id) */
  VH_IN_MSG = 4,   /* a delivered message (id: its seq) */
  VH_IN_START = 5, /* start(state, ctx) */
  VH_IN_KINDS = 6
} vh_in_kind_t;

/* How a call ended. */
typedef enum vh_in_outcome {
  VH_IN_OK = 0,     /* committed */
  VH_IN_RAISED = 1, /* raised (or was aborted): rolled back */
  VH_IN_NOCALL = 2  /* no handler, refused domain */
} vh_in_outcome_t;

typedef struct vh_input {
  vh_in_kind_t kind;
  int64_t id;   /* see vh_in_kind_t; 0 if none */
  char *domain; /* [owned] NUL-terminated */
  char *event;  /* [owned] elen bytes + NUL (may hold any byte) */
  size_t elen;
  vh_val_t payload; /* [owned] */
  vh_in_outcome_t outcome;
  int has_reply;  /* a reply went to the caller (VH_IN_CALL/REPL) */
  vh_val_t reply; /* [owned] the reply (nil unless has_reply and OK) */
} vh_input_t;

typedef struct vh_inputs {
  uint64_t seq;     /* the version */
  int64_t now;      /* the slice clock, unix ms */
  uint64_t seed;    /* the slice's random seed (0: never used) */
  int unreplayable; /* the slice read an unrecorded outside input */
  char *reason;     /* [owned] why, or NULL */
  size_t n;
  vh_input_t *v; /* [owned] n calls in order */
} vh_inputs_t;

void vh_inputs_free(vh_inputs_t *in);

/* Appends one call to ents (the entries part of a record). domain
 * [borrowed] dlen bytes, event elen bytes, payload and reply [borrowed]
 * (reply written only if has_reply and outcome is VH_IN_OK). 0 or
 * VH_ENOMEM (ents unchanged) or an encoding error of the payload. */
int vh_inputs_add(vh_buf_t *ents, vh_in_kind_t kind, int64_t id,
                  const char *domain, size_t dlen, const char *event,
                  size_t elen, vh_val_t payload, vh_in_outcome_t outcome,
                  int has_reply, vh_val_t reply);
/* Encodes a whole record into out (appended): header + n entries ents
 * [borrowed] made by vh_inputs_add. reason may be NULL. */
int vh_inputs_encode(vh_buf_t *out, int64_t now, uint64_t seed,
                     int unreplayable, const char *reason, size_t n,
                     const vh_buf_t *ents);
/* Decodes a record (p, len [borrowed]) of version seq into *out
 * (vh_inputs_free). Payloads and replies are built under a fresh edit
 * token. 0, VH_ECORRUPT / VH_EFORMAT with *errmsg [new], VH_ENOMEM. */
int vh_inputs_decode(const void *p, size_t len, uint64_t seq, vh_inputs_t *out,
                     char **errmsg);

/* Batch record 'I' seq (framed like nodes). */
int vh_batch_put_inputs(vh_batch_t *b, uint64_t seq, const void *payload,
                        size_t len);
/* The input record of version seq: 0, VH_ENOENT (no record: the version is
 * not retained, or was written by a vedhost without input logs) with
 * *errmsg, VH_ECORRUPT, VH_EFORMAT, VH_EIO. */
int vh_store_inputs_get(vh_store_t *s, uint64_t seq, vh_inputs_t *out,
                        char **errmsg);

#endif /* VH_INPUTS_H */
