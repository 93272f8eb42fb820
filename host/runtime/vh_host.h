/*
 * vh_host.h - the vedhost runtime: domains, the libuv loop, slices, timers
 * and messages (public API of host/runtime, used by the CLI, the admin
 * tools, the REPL server, the plugin ABI and the tests).
 *
 * Life cycle:
 *
 *   vh_host_new(&opts, &h)        Lua state, ved module, data dir lock
 *   vh_host_load(h, path) ...     run domain scripts (file or directory)
 *   vh_host_run(h, &code)         start() every domain, loop until stopped
 *   vh_host_free(h)               close handles, lua_close, release states
 *
 * One host per process: the watchdog's signal handler finds the host
 * through a process-wide pointer (see call.c).
 */
#ifndef VH_HOST_H
#define VH_HOST_H

#include <stddef.h>

#include "vh_log.h"
#include "vh_trie.h"
#include "vh_versions.h"

/* The one version string: --version, ved.version, CMake's project(). */
#define VH_HOST_VERSION "0.1.0"

/* Errors: VH_HOST_E* and the rest, see vh_err.h (the one error space). */

typedef enum vh_durability {
  VH_DURABILITY_SYNC = 0,
  VH_DURABILITY_NOSYNC = 1
} vh_durability_t;

typedef struct vh_host_opts {
  const char *data_dir;       /* [borrowed] default VH_DEFAULT_DATA_DIR */
  vh_durability_t durability; /* sync: the store fsyncs every batch */
  int watch;                  /* 1 = reload scripts on change */
  int handler_timeout_ms;     /* watchdog budget per handler call */
  size_t memory_limit;        /* Lua heap limit in bytes during handlers */
  vh_log_level_t log_level;
  vh_retain_t retain;  /* --retain: versions kept (host/runtime/durable.c) */
  int rehearse;        /* --rehearse N: reloads wait for a rehearsal of the
                          last N slices (host/runtime/gate.c); 0 = off */
  int rehearse_strict; /* --rehearse-strict: differences refuse too */
  int test_store;      /* host/testing: a throwaway store (vh_store_opts_t) */
} vh_host_opts_t;

typedef struct vh_host vh_host_t;

/* Fill opts with the defaults of `vedhost run`. */
void vh_host_opts_default(vh_host_opts_t *opts);

/* Create a host: lock the data dir, create the Lua state and the ved
 * module. *out [new] on success. On error returns VH_HOST_EDATADIR or
 * VH_ENOMEM and writes a one-line message into err (cap bytes). */
int vh_host_new(const vh_host_opts_t *opts, vh_host_t **out, char *err,
                size_t cap);

/* Load a domain script, or every *.lua of a directory in sorted order.
 * path [borrowed]. 0, or VH_HOST_ELOAD with a one-line message (naming
 * the file, and the line where known) in err. Only before vh_host_run. */
int vh_host_load(vh_host_t *h, const char *path, char *err, size_t cap);

/* Run start() of every domain (the first slice), then the loop, until
 * SIGINT/SIGTERM, ved.exit/os.exit or vh_host_stop. *exit_code gets the
 * code the process should exit with. 0, or VH_HOST_ESTATE when no domain
 * was loaded. Ignores SIGPIPE for the process if it still has its default
 * action (a write to a vanished client must not kill the host). */
int vh_host_run(vh_host_t *h, int *exit_code);

/* Ask the loop to stop after the current slice, with exit code code.
 * Safe from handlers' C callees and from vh_host_call callbacks. */
void vh_host_stop(vh_host_t *h, int code);

/* The result of vh_host_call, delivered once the slice that ran the call
 * has ended and its batch is durable (durable.c). Exactly one of reply /
 * err is meaningful: on success code is 0, err is NULL and reply [borrowed;
 * valid during the callback; vh_val_retain to keep] is the handler's return
 * value (nil if none); on failure code is the error (vh_err.h:
 * VH_HOST_EROLLBACK when the handler raised, VH_HOST_ENOEVENT,
 * VH_HOST_EREFUSED, VH_HOST_ENODOMAIN, VH_HOST_ESTOPPED, VH_HOST_ENOTDURABLE,
 * VH_ENOMEM) and err [borrowed] is the one-line error, for people: decide by
 * code. */
typedef void (*vh_host_reply_fn)(void *arg, int code, vh_val_t reply,
                                 const char *err);

/* Run domain's handler for event with payload [stolen, also on error] as
 * a call from outside, in a later slice; cb(arg, ...) runs once that slice
 * has ended. domain and event [borrowed]. 0, or VH_HOST_ENODOMAIN /
 * VH_ENOMEM (then cb is never called). */
int vh_host_call(vh_host_t *h, const char *domain, const char *event,
                 vh_val_t payload, vh_host_reply_fn cb, void *arg);

/* Reload every script now (the REPL's :reload; SIGHUP does the same). The
 * slice running so far is ended, the reload runs as a slice of its own
 * (compile every script in a fresh environment, migrate, start, swap) and
 * that slice is ended too, so the result is known on return: 0 and the
 * summary line ("reload: N scripts, domains changed: ... in X ms") in err,
 * or VH_HOST_ELOAD with the one-line error (file:line where known) in err
 * and the old code still running, unchanged. VH_HOST_ESTATE when the loop
 * does not run, or when called from inside a handler call or a reload.
 * Call it on the loop thread from a libuv callback (or a vh_host_call
 * reply callback). err may be NULL. */
int vh_host_reload(vh_host_t *h, char *err, size_t cap);

/* Close every handle, free the Lua state and all states, unlock the data
 * dir. h may be NULL. */
void vh_host_free(vh_host_t *h);

#endif /* VH_HOST_H */
