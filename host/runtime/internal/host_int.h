/*
 * host_int.h - private layout of the host runtime (host/runtime), shared
 * through the CMake target vh_runtime_internal by the host rooms that run
 * code inside a host (abi, repl, admin's inspect) and by the host unit
 * tests only (ARCHITECTURE.md, "Rooms"). The public API is vh_host.h.
 *
 * Files:
 *   host.c   life cycle, the Lua state and its globals, script loading,
 *            domain registration (ved.domain), vh_host_run / vh_host_free.
 *   call.c   one handler call: transactions, guard, watchdog (time budget
 *            and Lua heap limit), the abort-proof pcall/xpcall/coroutine
 *            wrappers, error logging with a traceback.
 *   sched.c  the system state "__ved" (durable message queue and `after`
 *            timers), the in-memory indexes over it, delivery, `every`
 *            timers, external calls, and the end of a slice.
 *   api.c    what Lua sees: ctx methods and ved.send/after/every/log/now/
 *            exit.
 *   reload.c hot reload: script watches, SIGHUP, vh_host_reload; reruns
 *            the scripts into a staging registry and swaps code in.
 *   gate.c   `run --rehearse N`: a reload waits for `vedhost rehearse`
 *            run as a child process (also the REPL's :reload --rehearse).
 * The REPL server and the plugins are not called by name: they register
 * hooks (vh_host__hook) and queue work with a run callback
 * (vh_sched__queue_work).
 *
 * Threads: everything here belongs to the loop thread, except the fields
 * marked "signal" (read by the watchdog's signal handler, which runs on the
 * loop thread but at any instruction) and the watchdog block (shared with
 * the watchdog thread through atomics and its mutex).
 */
#ifndef VH_HOST_INT_H
#define VH_HOST_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include <uv.h>

#include "lauxlib.h"
#include "lua.h"
#include "vh_datadir.h"
#include "vh_host.h"
#include "vh_inputs.h"
#include "vh_trie.h"
#include "vh_valenc.h"
#include "vhl.h"

/* Deliver at most this many queued messages / due timers per slice, so a
 * flood never starves timers, signals and I/O. */
#define VH_BATCH 4096
/* Depth of coroutine resumes tracked for the watchdog. Deeper resumes
 * still run; only their hooks are armed late (when they return). */
#define VH_COSTACK 64
#define VH_LFREE_MAX 64   /* call.c, SMALL BLOCKS: largest cached size */
#define VH_LFREE_CAP 8192 /* free blocks kept per class at most */
/* Slots of the event-name cache (api.c): a send reuses the trie string of
 * a recent event name instead of allocating one. */
#define VH_EVCACHE 64
/* Messages per bucket of the durable queue (sched.c). */
#define VH_QBUCKET 1024

/* Value constructors for references (vh_trie.h has the scalar ones). The
 * value holds the caller's reference to s / t. */
static inline vh_val_t vh_strv(vh_str_t *s) {
  vh_val_t v;
  v.u.s = s;
  v.type = VH_TSTR;
  return v;
}
static inline vh_val_t vh_tabv(vh_tab_t *t) {
  vh_val_t v;
  v.u.t = t;
  v.type = VH_TTAB;
  return v;
}

typedef struct vh_domain vh_domain_t;

/* A `ctx:every` timer. In memory only; lives until restart or a reload
 * of its domain (reload.c closes it). Started when the handler that
 * created it commits; freed in the close callback of its uv timer. */
typedef struct vh_every {
  uv_timer_t timer;      /* timer.data = this; initialised at commit */
  vh_host_t *h;          /* [borrowed] */
  vh_domain_t *dom;      /* [borrowed] target domain */
  int64_t ms;            /* period */
  vh_str_t *event;       /* [owned] */
  vh_val_t payload;      /* [owned] */
  struct vh_every *next; /* next in dom->everies, or in the pending list */
  int64_t vdue;          /* virtual time (vclock_on): next tick, in ms */
  uint64_t vorder;       /* virtual time: start order (ties fire in it) */
} vh_every_t;

/* One declared domain. Owned by h->doms; freed by vh_host_free. */
struct vh_domain {
  char *name;          /* [owned] */
  vh_str_t *name_s;    /* [owned] the name as a trie string */
  char *where;         /* [owned] "file:line" of the declaration */
  int64_t version;     /* running version (>= 1); reload.c changes it
                          only when a reload commits */
  vhl_state_t *st;     /* [borrowed] alive through st_ref */
  int st_ref;          /* registry: the state userdata */
  int on_ref;          /* registry: event name -> handler function */
  int start_ref;       /* registry: start function, or LUA_NOREF */
  int migrate_ref;     /* registry: migrate function, or LUA_NOREF */
  int ctx_ref;         /* registry: this domain's ctx table */
  int unhandled_ref;   /* registry: events already logged as unhandled */
  vh_every_t *everies; /* running `every` timers of this domain */
  uint64_t src_hash;   /* reload.c: hash of the declaring script's bytes */
  int retired;         /* reload.c: no longer declared (state kept, events
                          dropped) */
  char *refused;       /* durable.c: [owned] why the stored state was not
                          started (migrate failed, downgrade), or NULL;
                          meaningful only while retired is set */
  uint64_t rng[4];     /* det.c: math.random's state in this slice */
  uint64_t rng_gen;    /* det.c: h->rng_gen it was seeded for */
};

/* The input log of the running slice (det.c, vh_inputs.h). */
typedef struct vh_inlog {
  vh_buf_t ents;     /* [owned] the calls so far (vh_inputs_add) */
  size_t n;          /* ... how many */
  int unrep;         /* an unrecorded outside input was read */
  char reason[320];  /* ... the first such */
  vh_in_kind_t kind; /* what the next dispatch is (sched.c sets it) */
  int64_t id;        /* ... its timer id / message seq / period */
  vh_buf_t rec;      /* [owned] durable.c: the encoded record (scratch) */
  int off;           /* VEDHOST_NO_INPUT_LOG=1 (benchmarks): no record */
} vh_inlog_t;

/* Hooks a host holds at most (vh_host__hook). */
#define VH_HOST_MAX_HOOKS 8

/* Work taken out of the queues for one slice: a message, a due timer, or a
 * call from outside. */
typedef enum vh_work_kind {
  VH_WORK_MSG = 0,
  VH_WORK_TIMER = 1,
  VH_WORK_CALL = 2
} vh_work_kind_t;

struct vh_work;
/* What a queued call runs inside a slice (as uv_queue_work's work_cb):
 * *reply [new] on success, or *err [new, malloc'ed] and the code the reply
 * carries. The reply goes to the item's cb (its after_work_cb), behind the
 * output gate. */
typedef int (*vh_work_run_fn)(vh_host_t *h, struct vh_work *w, vh_val_t *reply,
                              char **err);

typedef struct vh_work {
  vh_work_kind_t kind;
  vh_str_t *hdr;        /* [owned] "to\0from\0event" (sched.c), or for
                           VH_WORK_MSG the stored message string whose
                           bytes [hoff, hoff + hlen) are that header; for a
                           call with run set, any tag */
  size_t hoff, hlen;    /* hlen 0: the header is all of hdr */
  vh_val_t payload;     /* [owned] */
  vh_work_run_fn run;   /* VH_WORK_CALL: NULL dispatches the event hdr
                           names to its domain; else what runs (the REPL's
                           chunks, repl_server.c) */
  int64_t id;           /* VH_WORK_MSG: its seq; VH_WORK_TIMER: its id */
  int in_hold;          /* VH_WORK_CALL with run: may run while slices are
                           held (h->in_hold is set meanwhile: it must not
                           write) */
  vh_host_reply_fn cb;  /* VH_WORK_CALL: reply callback */
  void *arg;            /* VH_WORK_CALL: its argument */
  struct vh_work *next; /* in h->calls */
} vh_work_t;

/* One slot of the message-header cache (sched.c). */
typedef struct vh_hdrc {
  vh_domain_t *to, *from; /* [borrowed] from may be NULL */
  vh_str_t *ev;           /* [owned] the event name it was built for */
  vh_str_t *hdr;          /* [owned] */
} vh_hdrc_t;

/* A finished external call waiting for the end of its slice. */
typedef struct vh_reply {
  vh_host_reply_fn cb;
  void *arg;
  vh_val_t reply; /* [owned] nil on error */
  char *err;      /* [owned] NULL on success */
  int code;       /* 0, or the error's code (vh_host_reply_fn) */
  uint64_t gate;  /* durable.c: store seq that must be durable first */
  int now;        /* sched.c: send at the end of the slice, not behind the
                     gate (a read-only REPL chunk during a hold) */
  struct vh_reply *next;
} vh_reply_t;

/* An `after` timer in the in-memory heap (the data lives in the system
 * state under timers[id]). */
typedef struct vh_due {
  int64_t due; /* wall-clock ms since the epoch */
  int64_t id;  /* creation order; unique */
} vh_due_t;

/* Effects of the running handler call, applied to the in-memory indexes
 * only if the call commits (the system state itself rolls back with it). */
typedef struct vh_pending {
  uint64_t *seqs; /* messages sent, in order */
  size_t nseqs, capseqs;
  vh_due_t *dues; /* `after` timers created */
  size_t ndues, capdues;
  vh_every_t *everies; /* `every` timers to start (not yet uv handles) */
} vh_pending_t;

typedef enum vh_abort {
  VH_ABORT_NONE = 0,
  VH_ABORT_TIME = 1, /* past the handler's deadline */
  VH_ABORT_MEM = 2   /* Lua heap over the limit */
} vh_abort_t;

typedef enum vh_phase {
  VH_PHASE_LOAD = 0, /* loading scripts */
  VH_PHASE_RUN = 1,  /* the loop runs */
  VH_PHASE_STOP = 2  /* the last slice ended; no new handler call */
} vh_phase_t;

struct vh_host {
  vh_host_opts_t opts; /* copy; opts.data_dir points into dd.path */
  vh_datadir_t dd;     /* the locked data dir */
  lua_State *L;        /* the one Lua state */
  uv_loop_t loop;
  uv_prepare_t prepare;   /* ends the slice before the loop may block */
  uv_idle_t idle;         /* active while messages / calls wait */
  uv_timer_t after_timer; /* armed for the earliest `after` timer */
  uv_signal_t sigint, sigterm;
  int handles_ready; /* the handles above are initialised */
  vh_phase_t phase;

  /* Lua heap accounting (call.c: the allocator). */
  size_t heap;      /* bytes the Lua state holds now */
  size_t heap_peak; /* for the log at exit */
  /* Free Lua blocks of 1..VH_LFREE_MAX bytes per 8-byte class (call.c,
   * SMALL BLOCKS), linked through their first word; counts bounded by
   * VH_LFREE_CAP. Loop thread only; freed by vh_host__alloc_free. */
  void *lfree[VH_LFREE_MAX / 8 + 1];
  uint32_t lfree_n[VH_LFREE_MAX / 8 + 1];
  uint32_t lfree_hits; /* blocks taken from the lists since the slice end */

  /* The running handler call (call.c). "signal": read by the signal
   * handler of the watchdog. */
  volatile sig_atomic_t in_handler;        /* signal */
  volatile sig_atomic_t abort;             /* signal; vh_abort_t */
  int64_t deadline_ns;                     /* signal; CLOCK_MONOTONIC */
  lua_State *volatile costack[VH_COSTACK]; /* signal; resumed coroutines */
  volatile sig_atomic_t costack_n;         /* signal */
  vh_domain_t *cur;      /* domain whose handler runs, or NULL */
  const char *cur_event; /* [borrowed] its event (cur_elen bytes) */
  size_t cur_elen;

  /* Deterministic slices and the input log (det.c). */
  uint64_t host_seed;  /* taken at vh_host_new */
  uint64_t slice_seed; /* this slice's seed, if seed_taken */
  int seed_taken;
  uint64_t rng_gen; /* bumped whenever a new slice seed is taken */
  vh_inlog_t inlog;
  int inlog_carry; /* durable.c: this slice's batch was not built:
                      its input log carries into the next one */
  int replaying;   /* replay.c runs the calls: nothing is recorded,
                      sends and timers are dropped */

  /* The watchdog thread (call.c). */
  pthread_t wd_thread;
  pthread_t loop_thread;
  pthread_mutex_t wd_mu;
  pthread_cond_t wd_cv;
  int wd_running;              /* thread started; protected by wd_mu */
  int wd_quit;                 /* protected by wd_mu */
  _Atomic int64_t wd_deadline; /* deadline of the running call, or 0 */

  /* Domains, in declaration order. */
  vh_domain_t **doms;
  int ndoms, capdoms;
  vh_domain_t *load_dom; /* last domain declared by the loading script */
  const char *loading;   /* script being loaded [borrowed] or NULL */
  int ved_ref;           /* registry: the ved module table */

  /* The system state (sched.c). */
  vhl_state_t *sys; /* [borrowed] alive through sys_ref */
  int sys_ref;
  vh_tab_t *sys_work; /* [owned] root being written, if sys_open */
  uint64_t sys_edit;  /* token of the open step */
  int sys_open;       /* a step on the system state is open */
  vh_str_t *k_q, *k_timers, *k_seq, *k_tid, *k_head; /* [owned] keys */
  int64_t next_seq;           /* next message seq to hand out (never reused) */
  int64_t head;               /* next message seq to deliver */
  int64_t deliver_upto;       /* seqs below it were sent before this slice */
  int64_t next_tid;           /* next timer id (never reused) */
  vh_hdrc_t hdrc[VH_EVCACHE]; /* recent message headers */
  vh_due_t *heap_due;         /* min-heap of `after` timers (due, id) */
  size_t nheap, capheap;
  int timers_dirty;              /* heap top changed: re-arm after_timer */
  vh_pending_t pend;             /* effects of the running call */
  vh_valenc_buf_t qbuf;          /* sched.c: scratch for encoding sends */
  vh_work_t *batch;              /* [owned] VH_BATCH slots for one delivery */
  vh_str_t *evcache[VH_EVCACHE]; /* [owned] recent event names (api.c) */
  vh_work_t *calls, *calls_tail; /* external calls waiting for a slice */
  vh_reply_t *replies, *replies_tail; /* replies waiting for slice end */

  /* Slices (sched.c). */
  int64_t slice_now;       /* ctx.now of this slice; 0 = not taken yet */
  uint64_t slice_seq;      /* number of ended slices */
  uint64_t slice_calls;    /* handler calls in this slice */
  uint64_t total_calls;    /* handler calls since start */
  uint64_t handler_errors; /* handler (and start/migrate) calls that raised */
  uint64_t created_ns;     /* uv_hrtime() in vh_host_new */
  int64_t start_ms;        /* wall-clock ms when the loop started; 0 before */
  int64_t boot_ms;         /* ms from vh_host_new to the end of the first
                              slice (restored, started); -1 before */
  int stop_requested;      /* stop after this slice */
  int stop_now;            /* a second SIGINT/SIGTERM: stop without waiting
                              for the store (unwritten slices dropped) */
  int drain_logged;        /* "waiting for ..." was logged at stop */
  int64_t stop_ns;         /* when the stop began to wait (mono ns) */
  int holding;             /* durable.c: slices are held (store
                              backpressure), as last logged */
  int in_hold;             /* sched.c: the call running now was let through
                              a hold (vh_work_t.in_hold): it must not
                              write */
  int exit_code;

  /* The control socket and REPL (host/repl, which owns it); NULL when not
   * running. */
  struct vh_repl_srv *repl;
  /* Rooms beside the runtime (vh_host__hook), in registration order. */
  const struct vh_host_hooks *hooks[VH_HOST_MAX_HOOKS];
  int nhooks;

  /* Hot reload (reload.c): watches, SIGHUP, the scripts loaded. NULL until
   * the first script is loaded. pend_hold: while set (a reload runs),
   * vh_sys__pending_apply keeps h->pend as it is, so the reload's effects
   * are applied or dropped all together. */
  struct vh_reload *reload;
  int pend_hold;
  struct vh_gate *gate; /* gate.c: the --rehearse child, or NULL */

  /* Persistence (durable.c): the store, the output gate, sweeping. NULL
   * until vh_durable__open. */
  struct vh_durable *dur;

  /* Virtual time (host/testing, the ved.testing harness): when vclock_on,
   * the slice clock reads vclock (ms since the epoch), no uv timer runs an
   * `after` or `every` timer and no signal handle is started; the driver
   * moves vclock and fires what is due (vh_sched__fire_due). */
  int vclock_on;
  int64_t vclock;
  uint64_t vorder; /* start order of `every` timers */
};

/* ---- call.c ---- */

/* The host of L (kept as the allocator's user data). */
vh_host_t *vh_host__of(lua_State *L);
/* The allocator and the abort machinery; install_globals wraps pcall,
 * xpcall, coroutine.resume and coroutine.wrap in _G. */
void *vh_host__alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Give the allocator's free small blocks back to malloc (after lua_close:
 * call.c, SMALL BLOCKS). */
void vh_host__alloc_free(vh_host_t *h);
/* The slice end's check: every free small block goes back to malloc if
 * none was reused since the last one (an idle host). */
void vh_host__alloc_tick(vh_host_t *h);
void vh_host__install_wrappers(lua_State *L);
int vh_host__watchdog_start(vh_host_t *h);
void vh_host__watchdog_stop(vh_host_t *h);
/* Arm the watchdog (handler time budget from now) and the memory limit
 * around Lua code run on the host's behalf: a handler call, a reload's
 * script top level, a REPL chunk. disarm returns the abort reason
 * (VH_ABORT_*, NONE if the code was not aborted) and clears it. */
void vh_host__arm(vh_host_t *h);
int vh_host__disarm(vh_host_t *h);
/* Run the script chunk on top (message handler at msgh) armed like a
 * handler call; an aborted top level gets one line naming the script and
 * the limit ("took longer than N ms" / "--memory-limit"). The LUA_*
 * status. Used for the first load (host.c) and reloads (reload.c). */
int vh_host__script_pcall(vh_host_t *h, int msgh);
/* The Lua message handler: error message + traceback. */
int vh_host__msgh(lua_State *L);
/* Copy the first line of msg [borrowed] into err. */
void vh_host__first_line(char *err, size_t cap, const char *msg);
/* Run the compiled script chunk on top of the stack (its message handler
 * at top + 1) as the domain script path: a fresh _ENV over _G, ved.domain
 * registering into h->doms, then the checks every script passes (it ran,
 * it declared a domain). pcall(h, msgh) runs the chunk (NULL: plain
 * lua_pcall; the first load and reload.c pass vh_host__script_pcall, armed
 * like a handler call). Leaves the
 * stack at top. 0 or VH_HOST_ELOAD with a one-line message in err. */
int vh_host__run_script(vh_host_t *h, const char *path, int top, int before,
                        int (*pcall)(vh_host_t *h, int msgh), char *err,
                        size_t cap);

/* Which function of a domain vh_host__dispatch calls. */
typedef enum vh_dispatch_kind {
  VH_DISPATCH_EVENT = 0,  /* on[event](state, payload, ctx) */
  VH_DISPATCH_START = 1,  /* start(state, ctx) */
  VH_DISPATCH_MIGRATE = 2 /* migrate(state, payload = the old version) */
} vh_dispatch_kind_t;

/* Run one handler call of d: the function kind names. event [borrowed]
 * (also ctx.event for start and migrate). payload [borrowed]. reply: NULL,
 * or where the return value goes [new] (nil on failure). err: NULL, or
 * where a one-line error goes [new, malloc'ed] on failure. Returns 0 when
 * the call committed, VH_HOST_EROLLBACK when it was rolled back,
 * VH_HOST_ENOEVENT / VH_HOST_EREFUSED when it had no handler. */
int vh_host__dispatch(vh_host_t *h, vh_domain_t *d, const char *event,
                      size_t elen, vh_dispatch_kind_t kind, vh_val_t payload,
                      vh_val_t *reply, char **err);

/* ---- sandbox.c ---- */

/* Replace debug, load, loadfile, dofile, getmetatable, setmetatable,
 * collectgarbage and the Lua module searcher in _G with the sandboxed
 * versions (see sandbox.c). */
void vh_host__sandbox(lua_State *L);

/* ---- det.c: deterministic slices and the input log ---- */

/* Host seed (at vh_host_new). */
void vh_det__init(vh_host_t *h);
/* Replace math.random/randomseed, os.time/date/clock and wrap the io and
 * os functions that reach outside (see det.c). Once, after the sandbox. */
void vh_det__install(lua_State *L);
/* The slice's seed (taken at first use); set_seed forces one (replay). */
uint64_t vh_det__seed(vh_host_t *h);
void vh_det__set_seed(vh_host_t *h, uint64_t seed);
/* Marks the slice unreplayable with why [borrowed, copied] (first wins). */
void vh_det__unreplayable(vh_host_t *h, const char *why);
/* call.c: one handler call ended with rc (vh_host__dispatch's); reply
 * [borrowed] if the caller takes one. */
void vh_det__record(vh_host_t *h, vh_domain_t *d, const char *event,
                    size_t elen, int kind, vh_val_t payload, int rc,
                    const vh_val_t *reply);
/* durable.c: the slice's input record into out (replaced). 0/VH_ENOMEM. */
int vh_det__encode(vh_host_t *h, vh_buf_t *out);
/* sched.c, slice end: the next slice's log starts empty. */
void vh_det__slice_reset(vh_host_t *h);
void vh_det__free(vh_host_t *h);

/* ---- replay.c: re-running a recorded slice ---- */

/* One replayed call. */
typedef struct vh_replay_call {
  const vh_input_t *in; /* [borrowed] the recorded call */
  int rc;               /* vh_host__dispatch's result in the replay */
  vh_val_t reply;       /* [owned] the replay's reply (nil unless the
                           recorded call had one and the replay committed) */
  char *err;            /* [owned] the replay's error line, or NULL */
  int differs;          /* outcome or reply differs from the recorded */
} vh_replay_call_t;

typedef struct vh_replay_res {
  vh_replay_call_t *calls; /* [owned] n, in the recorded order */
  size_t n;
  size_t errors;  /* calls that raised in the replay */
  size_t differs; /* calls whose outcome or reply differs */
} vh_replay_res_t;

/* Called after each call: d [borrowed] its domain (NULL: not declared),
 * before / after [borrowed] the domain's root around the call. */
typedef void (*vh_replay_trace_fn)(void *arg, const vh_replay_call_t *c,
                                   vh_domain_t *d, vh_tab_t *before,
                                   vh_tab_t *after);

/* Runs the calls of in [borrowed] on h (see replay.c): the domains' roots
 * must hold the state before the slice; they hold the replayed end state
 * on return. Nothing is recorded, sent, timed or written. trace may be
 * NULL. *out [new] (vh_replay_res_free). 0 or VH_ENOMEM. */
int vh_replay_slice(vh_host_t *h, const vh_inputs_t *in,
                    vh_replay_trace_fn trace, void *arg, vh_replay_res_t *out);
void vh_replay_res_free(vh_replay_res_t *r);

/* ---- sched.c ---- */

/* ms since the epoch for this slice (taken at the first use in a slice). */
int64_t vh_host__now(vh_host_t *h);
/* The domain called name (len bytes), or NULL. */
vh_domain_t *vh_host__find(vh_host_t *h, const char *name, size_t len);
/* The slice's step on the system state: begin opens it if needed (0 or
 * VH_ENOMEM), commit makes it the new version (slice end), rollback drops
 * it (host teardown only). */
int vh_sys__begin(vh_host_t *h);
void vh_sys__commit(vh_host_t *h);
void vh_sys__rollback(vh_host_t *h);
/* Queue a message (to, from [borrowed, from may be NULL]; event,
 * payload [stolen]) in the open step; its seq goes to h->pend. 0 or
 * VH_ENOMEM. */
int vh_sys__send(vh_host_t *h, vh_domain_t *to, vh_domain_t *from,
                 vh_str_t *event, vh_val_t payload);
/* Store an `after` timer for dom in the open step (event, payload
 * [stolen]); its (due, id) goes to h->pend. 0 or VH_ENOMEM. */
int vh_sys__after(vh_host_t *h, vh_domain_t *dom, int64_t due, vh_str_t *event,
                  vh_val_t payload);
/* Apply h->pend after the call committed; or drop it after a rollback,
 * deleting the call's messages and timers from the system state. */
void vh_sys__pending_apply(vh_host_t *h);
void vh_sys__pending_drop(vh_host_t *h);
/* Restart (durable.c): index the stored `after` timer id, due at due. 0
 * or VH_ENOMEM. */
int vh_sys__restore_timer(vh_host_t *h, int64_t due, int64_t id);
/* Create the loop, its handles and the system-state keys. */
int vh_sched__init(vh_host_t *h);
/* The first slice begins: start the handles. */
void vh_sched__begin_run(vh_host_t *h);
/* Close every handle and run the loop until they are closed. */
void vh_sched__close(vh_host_t *h);
/* Re-arm idle / after_timer for what is queued (nothing while slices are
 * held; durable.c calls it again when the hold ends). */
void vh_sched__update(vh_host_t *h);
/* May a slice start now? 1, or 0 with the reason (stopping, or store
 * backpressure) in why (may be NULL). For plugins (api->accepting). */
int vh_host__accepting(vh_host_t *h, char *why, size_t cap);
/* End the current slice (see sched.c). */
void vh_slice_end(vh_host_t *h);
/* Release everything sched.c holds (after the loop closed its handles). */
void vh_sched__free(vh_host_t *h);
/* Call fn(arg, 1) once every slice up to the current one is durable (it
 * joins this slice's replies behind the output gate), or fn(arg, 0) if the
 * host stops before that. 0 or VH_ENOMEM (fn is then never called). */
int vh_host__when_durable(vh_host_t *h, void (*fn)(void *arg, int durable),
                          void *arg);
/* Free an every that was never started. */
void vh_every__free(vh_every_t *e);

/* Virtual time (vclock_on): the earliest due time of a committed `after`
 * or `every` timer, or INT64_MAX when none is armed. */
int64_t vh_sched__next_due(vh_host_t *h);
/* Virtual time: run, as work of the current slice, every timer due at or
 * before now: `after` timers in (due, id) order, then `every` timers in
 * start order (each ticks once; its next tick is one period later). The
 * caller ends the slice (vh_slice_end). */
void vh_sched__fire_due(vh_host_t *h, int64_t now);
/* The slice clock's source: vclock when vclock_on, else the wall clock. */
int64_t vh_host__clock_ms(vh_host_t *h);

/* ---- api.c ---- */

/* Push the core table the ved prelude builds the module from. */
void vh_api__push_core(lua_State *L);
/* Create the ctx table of the domain called name and return its registry
 * ref. */
int vh_api__new_ctx(lua_State *L, const char *name);

/* ---- vh_scripts.c (generated from the scripts folder at build time) ---- */

typedef struct vh_script {
  const char *name;          /* file name without .lua: "ved" */
  const unsigned char *data; /* the source */
  size_t len;
} vh_script_t;
extern const vh_script_t vh_scripts[]; /* ends with a NULL name */
/* Pushes the chunk of scripts/<name>.lua, loaded under chunkname (not
 * run). Raises "<what> was not built in" or the load error. (host.c) */
void vh_host__load_script(lua_State *L, const char *name, const char *chunkname,
                          const char *what);
/* Pushes the pretty module: scripts/pretty.lua loaded and run. Raises if
 * it is missing, fails, or returns no table. (host.c) */
void vh_host__push_pretty(lua_State *L);

/* ---- host.c ---- */

/* The core's register function (ved.domain's C half). */
int vh_host__register(lua_State *L);
/* Room for one more record in h->doms: 0 or VH_ENOMEM. */
int vh_host__doms_reserve(vh_host_t *h);
/* A new zeroed domain record [new] named name (nl bytes) [borrowed, copied],
 * declared at where [borrowed, copied]; NULL when out of memory. */
vh_domain_t *vh_host__domain_new(const char *name, size_t nl,
                                 const char *where);
/* Copies every field of the table on top of the stack into the table at
 * index to (rawset), then pops the source. */
void vh_host__merge_top(lua_State *L, int to);
/* Time: CLOCK_MONOTONIC ns (call.c), wall-clock ms (sched.c). */
int64_t vh_host__mono_ns(void);
int64_t vh_host__wall_ms(void);

/* ---- hooks (host.c): rooms that run beside the runtime ---- */

/* What the REPL server and the plugins are called for, instead of the
 * runtime calling them by name. Any member may be NULL. The hooks of a
 * phase run in registration order. */
typedef enum vh_hook_phase {
  VH_HOOK_START,      /* vh_host_run: the loop is about to run */
  VH_HOOK_LAST_SLICE, /* a stopping host's slice ends, before its batch is
                         built (sched.c) */
  VH_HOOK_STOP,       /* the loop stopped (before its handles are closed);
                         again from vh_host_free: must be idempotent */
  VH_HOOK_FREE        /* vh_host_free, after lua_close */
} vh_hook_phase_t;

typedef struct vh_host_hooks {
  const char *name;
  void (*start)(vh_host_t *h);
  void (*last_slice)(vh_host_t *h);
  void (*stop)(vh_host_t *h);
  void (*free)(vh_host_t *h);
} vh_host_hooks_t;

/* Register hooks [borrowed: static storage] with h; registering the same
 * table again does nothing. 0, or VH_HOST_ESTATE when VH_HOST_MAX_HOOKS
 * are registered already. */
int vh_host__hook(vh_host_t *h, const vh_host_hooks_t *hooks);
/* vh_host_run in two halves, for a driver that turns the loop itself
 * (host/testing): run_begin does what vh_host_run does before uv_run (the
 * first slice: stored roots, migrate, start()); run_end what it does
 * after (phase STOP, the store drained and closed, hooks, watchdog).
 * run_begin returns VH_HOST_ESTATE like vh_host_run. */
int vh_host__run_begin(vh_host_t *h);
void vh_host__run_end(vh_host_t *h, int *exit_code);

/* Run every registered hook of phase p. */
void vh_host__run_hooks(vh_host_t *h, vh_hook_phase_t p);

/* Queue w [stolen] (kind VH_WORK_CALL, run set) to run in a later slice,
 * after the calls queued before it, and wake the loop for it. */
void vh_sched__queue_work(vh_host_t *h, vh_work_t *w);

/* ---- reload.c ---- */

/* Boot hooks of host.c: track records a SCRIPT_OR_DIR argument (path
 * [borrowed], copied; 0 or VH_ENOMEM); loaded records a script that loaded
 * and declared h->doms[first..] (hashes its bytes for change detection). */
int vh_reload__track(vh_host_t *h, const char *path);
void vh_reload__loaded(vh_host_t *h, const char *path, int first);
/* Open the script path [borrowed] for reading without blocking (a FIFO
 * named *.lua must not hang a load): *fd [new] for a regular file, else
 * VH_HOST_ELOAD with one line in err ("... is not a regular file"). */
int vh_reload__open_script(const char *path, int *fd, char *err, size_t cap);
/* Writes DATA/scripts: the SCRIPT_OR_DIR arguments as absolute paths, one
 * a line (vedhost replay reruns the current scripts from it). 0 or <0
 * (logged). */
int vh_reload__write_list(vh_host_t *h);
/* The loop runs: SIGHUP handler, and the watches unless opts.watch is 0. */
void vh_reload__start(vh_host_t *h);
/* Free what reload.c holds, after the loop closed its handles. */
void vh_reload__free(vh_host_t *h);
/* Replace the SCRIPT_OR_DIR arguments a reload reruns by paths[0..n)
 * [borrowed, copied] (host/testing: h:reload{scripts = ...}). 0 or
 * VH_ENOMEM (then nothing changed). */
int vh_reload__set_args(vh_host_t *h, const char *const *paths, int n);
/* Make d a retired record: its handlers, start, migrate and unhandled
 * references are dropped (on and unhandled become empty tables), its state
 * is kept, d->retired is set. Timers and logging are the caller's. */
void vh_reload__drop_code(vh_host_t *h, vh_domain_t *d);

/* The scripts on disk now (reload.c): *fp a hash of their paths and
 * bytes, *same = they are what the running code was loaded from. 0, or
 * VH_HOST_ELOAD with one line in err. */
int vh_reload__scan(vh_host_t *h, uint64_t *fp, int *same, char *err,
                    size_t cap);
/* A reload now, without the --rehearse gate (gate.c once the rehearsal
 * passed; the REPL's `:reload --rehearse N` once confirmed). why names the
 * trigger in the log. As vh_host_reload. */
int vh_reload__now(vh_host_t *h, const char *why, char *err, size_t cap);

/* ---- gate.c: --rehearse N ---- */

/* A reload was asked for (force: even if no script changed; why: the
 * trigger): start `vedhost rehearse --gate --last N` on the scripts as a
 * child process, and reload (vh_reload__now) when it passes; a rehearsal
 * already running is redone once it ends. 0, or <0 when the child cannot
 * start (logged; no reload). */
int vh_gate__request(vh_host_t *h, int force, const char *why);
/* The rehearsal's command line for the scripts of h (argv [new], NULL
 * terminated; vh_gate__argv_free): exe rehearse --gate --data DIR --last n
 * SCRIPT_OR_DIR... (json: --json instead of --gate). NULL when out of
 * memory. */
char **vh_gate__argv(vh_host_t *h, int n, int json);
void vh_gate__argv_free(char **argv);
/* The script arguments the host was started with ([borrowed], *n). */
char **vh_reload__args(vh_host_t *h, int *n);
/* Stop the running rehearsals (SIGTERM; their waiters are told with code
 * -2) and free the gate (reload.c's free). */
void vh_gate__free(vh_host_t *h);
/* Told when a rehearsal child ends: code its exit code (vh_rehearse_cmd.h;
 * -1 killed by a signal, -2 the host stopped), out/eout [borrowed] its
 * stdout/stderr (the first 64 KB), fp the scripts' hash at the spawn, ms
 * its run time. */
typedef void (*vh_gate_done_fn)(void *arg, int code, const char *out,
                                size_t len, const char *eout, size_t elen,
                                uint64_t fp, double ms);
/* Start a rehearsal of the scripts of h on the last n slices as a child
 * process (json: --json, else --gate); fn(arg, ...) once it ended and its
 * output was read. 0, or <0 with one line in err (fn never called). */
int vh_gate__spawn(vh_host_t *h, int n, int json, uint64_t fp,
                   vh_gate_done_fn fn, void *arg, char *err, size_t cap);
/* The last line of buf (len bytes [borrowed], may be NULL) into out. */
void vh_gate__last_line(const char *buf, size_t len, char *out, size_t cap);

/* ---- durable.c ---- */

/* Open the store in DATA/db (created if missing), install the trie's
 * loader and free hook, and restore the system state "__ved" and the
 * scheduler's indexes from the manifest. Before any script runs. 0, or
 * VH_HOST_EDATADIR / VH_ENOMEM with a one-line message (naming the dir or
 * key and what to do) in err. */
int vh_durable__open(vh_host_t *h, char *err, size_t cap);
/* The first slice, before any start(): give each declared domain its
 * stored root, run migrate where the version grew, refuse downgrades and
 * failed migrations (the domain is retired with d->refused set), and keep
 * stored domains no script declares as retired records. Starts the
 * output gate's async handle. */
void vh_durable__boot(vh_host_t *h);
/* End of a slice, after the system state's step was committed: write the
 * slice (new nodes, deletes, sweep keys, manifest) to the store if
 * anything changed, then move h->replies behind the output gate and send
 * those whose batch is durable. Without a store, sends the replies. */
void vh_durable__slice_end(vh_host_t *h);
/* The loop ended: wait for the last batch, send the gated replies, close
 * the store (memtable flushed). Logs a failure. */
void vh_durable__stop(vh_host_t *h);
/* Release everything (after the loop closed its handles, before the Lua
 * state is closed): closes the store if still open, removes the hooks. */
void vh_durable__free(vh_host_t *h);

/* Store backpressure: 1 while slices may start, 0 while they are held
 * (the write queue is full, writes are failing, or the writer stopped for
 * good), with the reason in why (one line; why may be NULL). */
int vh_durable__accepting(vh_host_t *h, char *why, size_t cap);
/* 1 once a stop need not wait for the store any more (every submitted
 * slice is durable, or the writer stopped for good); else 0 with what it
 * waits for in why. */
int vh_durable__drained(vh_host_t *h, char *why, size_t cap);

/* Numbers for the REPL's :stats. */
typedef struct vh_durable_stats {
  int on;                 /* a store is open */
  uint64_t submitted;     /* seq of the last batch handed to the writer */
  uint64_t durable;       /* seq written (fsync'd in sync mode) */
  uint64_t lag_slices;    /* batches submitted but not yet durable */
  double lag_ms;          /* age of the oldest batch not yet durable */
  double last_ms;         /* commit-to-durable time of the last batch */
  uint64_t bytes;         /* batch bytes made durable since start */
  uint64_t batches;       /* batches made durable since start */
  uint64_t held;          /* replies held by the output gate now */
  uint64_t sweep_pending; /* dropped nodes still to sweep (known so far) */
  int failing;            /* writes are failing now */
  uint64_t errors;        /* failed write attempts since open */
  char last_error[256];   /* the last write error, or "" */
} vh_durable_stats_t;
void vh_durable__stats(vh_host_t *h, vh_durable_stats_t *out);
/* Marks the newest version as name (unmark = 0) or removes mark name
 * (unmark = 1), in memory: the next slice's batch writes it (the caller
 * gates its reply behind that batch). 0, or an error with a one-line
 * message in err: a bad or duplicate name, no mark of that name. */
int vh_durable__mark(vh_host_t *h, const char *name, int unmark, char *err,
                     size_t cap);
/* The marks: *out [new] (vh_marks_free). */
int vh_durable__marks(vh_host_t *h, vh_mark_t **out, size_t *n);
/* repl/repl_rollback.c: makes d's root the stub of stored node root (d's root
 * at version after), in the current slice: the replaced tree's in-memory nodes
 * become views (vh_tab_make_view), dead [borrowed] die in the next batch, and
 * back [borrowed] leave the death lists there (vh_hist_resurrect). 0, or -1
 * with one line in err (nothing changed). */
struct vh_idlist;
int vh_durable__rewind(vh_host_t *h, vh_domain_t *d, uint64_t root,
                       uint64_t after, const struct vh_idlist *dead,
                       const struct vh_idlist *back, char *err, size_t cap);
/* Point the trie's process-wide loader and free hook at h's store again
 * (host/testing drives several hosts in one process: each operation on
 * one activates it first). */
void vh_durable__activate(vh_host_t *h);
/* The open store [borrowed], or NULL: for tests (vh_store__ hooks). */
struct vh_store *vh_durable__store(vh_host_t *h);

#endif /* VH_HOST_INT_H */
