/*
 * repl_int.h - private layout of the REPL server, shared by repl_server.c
 * (the server, the environment, EVAL) and repl_info.c (COMPLETE and
 * COMMAND) only. The server reaches the runtime through host_int.h's hooks
 * (vh_host__hook) and work queue (vh_sched__queue_work); vh_repl_server.h
 * is its public side.
 */
#ifndef VH_REPL_INT_H
#define VH_REPL_INT_H

#include <stdint.h>

#include "host_int.h"
#include "vh_control.h"

/* Samples of the slice counter for the slice rate (one per second). */
#define VH_REPL_RING 11

/* A connection's :fork (repl_server.c, FORK): private roots its chunks run
 * on, never written to the store. Loop thread only. */
typedef struct vh_repl_fork {
  vh_control_conn_t *conn; /* [borrowed] its connection (dropped at close) */
  size_t n, cap;
  char **names;     /* [owned] n domain names */
  vh_tab_t **roots; /* [owned refs] the fork's root of each */
  uint64_t slice;   /* h->slice_seq when it was made */
  uint64_t chunks;  /* chunks run on it */
  struct vh_repl_fork *next;
} vh_repl_fork_t;

/* The REPL server of a host (h->repl). Loop thread only. */
typedef struct vh_repl_srv {
  vh_host_t *h;        /* [borrowed] */
  vh_control_t *ctl;   /* [owned] the listener; stopped by vh_repl_stop */
  vh_str_t *tag;       /* [owned] placeholder hdr of our work items */
  int env_ref;         /* registry: the REPL environment */
  int pretty_ref;      /* registry: the pretty module */
  int pairs_ref;       /* registry: a private proxy-aware pairs */
  int out_ref;         /* registry: print's lines of the running chunk */
  int active;          /* a chunk is running (vh_repl_eval) */
  uv_timer_t *sampler; /* [owned] 1 s timer; freed in its close callback */
  struct {
    int64_t ms;      /* CLOCK_MONOTONIC ms */
    uint64_t slices; /* h->slice_seq then */
  } ring[VH_REPL_RING];
  int nring, ring_next;  /* samples held (the first is the start); next slot */
  uint64_t evals;        /* chunks run */
  uint64_t failed;       /* of which rolled back */
  vh_repl_fork_t *forks; /* [owned] the connections' forks (:fork) */
} vh_repl_srv_t;

/* ---- repl_server.c ---- */

/* Push { <name> = { state = root proxy, version = n, name = s } } for
 * every domain of h. Raises only on out of memory. */
void vh_repl__push_domains(lua_State *L, vh_host_t *h);
/* CLOCK_MONOTONIC in ms. */
int64_t vh_repl__mono_ms(void);

/* FORK: the fork of conn, or NULL. */
vh_repl_fork_t *vh_repl__fork_of(vh_repl_srv_t *s, vh_control_conn_t *conn);
/* :fork / :unfork for conn: 0 with a reply text in msg, or -1 with an
 * error in msg (cap bytes). */
int vh_repl__fork(vh_repl_srv_t *s, vh_control_conn_t *conn, char *msg,
                  size_t cap);
int vh_repl__unfork(vh_repl_srv_t *s, vh_control_conn_t *conn, char *msg,
                    size_t cap);

/* ---- repl_at.c ---- */

/* at(V): the read-only views of retained version V (see repl_at.c). */
int vh_repl__at(lua_State *L);

/* ---- repl_diff.c ---- */

/* diff(a [, b [, path]]): the changes from version a to b (nil: the
 * present), as records (see repl_diff.c). */
int vh_repl__diff(lua_State *L);
/* Pushes the records (diff()'s shape) of the changes from a to b, every
 * domain; the sides [stolen] are freed with the records. what names the
 * caller in errors (raised). Returns 1. */
struct vh_vside;
int vh_repl__diff_push(lua_State *L, struct vh_vside *a, struct vh_vside *b,
                       const char *what);

/* ---- repl_replay.c ---- */

/* replay(V): re-run the slice that made V on V-1 with the running code
 * (see repl_replay.c): the diff records from V to the replay, and a
 * summary. */
int vh_repl__replay(lua_State *L);
/* ---- repl_rollback.c ---- */

/* The COMMAND "rollback NAME SPEC" on the running host h (loop thread,
 * outside any handler): rolls domain NAME back to version SPEC as its own
 * slice and waits until it is durable. 0 with a summary in msg (cap
 * bytes), or -1 with one error line in msg. args [borrowed]: "NAME SPEC". */
int vh_rollback__command(vh_host_t *h, const char *args, char *msg, size_t cap);

/* ---- repl_rehearse.c ---- */

/* The COMMAND "reload ARGS": 1 when ARGS hold --rehearse N [--yes] or
 * --confirm FP (conn [stolen: the request] is then answered, maybe later,
 * when the rehearsal ended), 0 for a plain reload (conn untouched). */
int vh_repl__reload_rehearse(vh_repl_srv_t *s, vh_control_conn_t *conn,
                             const char *args);

/* ---- repl_info.c ---- */

/* Answer a COMPLETE request (line [borrowed], len bytes: the text before
 * the cursor) with CANDIDATES, at once. conn [stolen: the request]. */
void vh_repl__complete(vh_repl_srv_t *s, vh_control_conn_t *conn,
                       const char *line, size_t len);
/* Answer a COMMAND request ("stats", "reload x": cmd [borrowed], len
 * bytes) with OK or ERROR, at once. conn [stolen: the request]. */
void vh_repl__command(vh_repl_srv_t *s, vh_control_conn_t *conn,
                      const char *cmd, size_t len);

#endif /* VH_REPL_INT_H */
