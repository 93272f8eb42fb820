/*
 * vedhost/plugin.h - the native plugin ABI of vedhost (public, versioned).
 *
 * A plugin is a shared object loaded with `vedhost run --plugin PATH.so`
 * (the option may repeat; plugins load in command-line order, before the
 * domain scripts, so the Lua modules they register are visible to
 * `require` in every script). It exports two symbols:
 *
 *   const vedhost_plugin_abi_t vedhost_plugin_abi;      (VEDHOST_PLUGIN)
 *   int vedhost_plugin_init(const vedhost_api_t *api, char *err,
 *                           size_t cap);
 *
 * Write `VEDHOST_PLUGIN("name");` once in the plugin to define the first
 * one with the ABI version the plugin was compiled against. The host
 * refuses (one line on stderr, exit 1, before any script runs) a plugin
 * whose major version differs from the host's, whose minor version is
 * newer than the host's, that lacks either symbol, or whose init returns
 * non-zero (init writes a one-line reason into err).
 *
 * VERSIONING. Major changes when a function or struct below changes
 * meaning or layout; minor grows when a function is appended at the end of
 * vedhost_api_t (a plugin built for minor m may use the first fields up to
 * those of m; api->size says how many bytes the host filled in).
 *
 * THREADS. Every function of the table must be called on the loop thread
 * (from init, from a libuv callback of the loop, or from a reply or stop
 * callback). The host never calls the plugin from another thread.
 *
 * VALUES. Payloads and replies cross the ABI as JSON text (UTF-8), so the
 * ABI does not depend on the host's value layout. The mapping (also used
 * by the HTTP ingress) is:
 *
 *   JSON -> state:  object -> table with string keys; array -> table with
 *   keys 1..n; string -> string; integer (within int64) -> integer; number
 *   with a fraction or exponent -> float; true/false -> boolean; a top
 *   level null -> nil; null as an object member -> the key is absent.
 *   Refused (VEDHOST_EJSON, a message naming the path): null inside an
 *   array (a Lua sequence cannot hold a hole exactly), integers outside
 *   int64, invalid UTF-8, more than 2048 levels of nesting (jansson's
 *   parser; a state itself may nest 20000).
 *
 *   state -> JSON:  a non-empty table whose keys are exactly the integers
 *   1..n -> array; any other table -> object, keys written as strings
 *   (integers in decimal, floats with %.17g, booleans as true/false); an
 *   empty table -> {}; nil -> null; integer -> integer; float -> number
 *   with a fraction or exponent (2.0 stays 2.0), infinities -> null;
 *   strings -> JSON strings, each byte of an invalid UTF-8 sequence
 *   replaced by U+FFFD. Any nesting depth a state can hold is written. A
 *   table with a non-string key whose text equals one of its string keys
 *   (1 and "1", true and "true", 1.5 and "1.5") cannot be written without
 *   losing a member: refused with VEDHOST_EJSON and a message naming the
 *   path ("$.a.b"), never dropped silently. The reader (read_open, minor
 *   2) writes the same text and refuses the same tables.
 */
#ifndef VEDHOST_PLUGIN_H
#define VEDHOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VEDHOST_PLUGIN_ABI_MAJOR 1
#define VEDHOST_PLUGIN_ABI_MINOR 3

/* Errors returned by the table's functions (negative). */
#define VEDHOST_ENOMEM (-1)    /* out of memory */
#define VEDHOST_ENODOMAIN (-2) /* no such domain */
#define VEDHOST_ENOEVENT (-3)  /* the domain has no handler for the event */
#define VEDHOST_EJSON (-4)     /* bad or unrepresentable JSON */
#define VEDHOST_ESTOPPED (-5)  /* the host is stopping */
#define VEDHOST_EHANDLER (-6)  /* the handler raised (reply callback only) */
#define VEDHOST_ENOTFOUND (-7) /* no value at that path */
#define VEDHOST_EINVAL (-8)    /* bad argument */
#define VEDHOST_EIO (-9)       /* state could not be read from the store */
/* The domain is refused (its stored state did not start: a failed migrate
 * or a downgrade); its state stays readable. */
#define VEDHOST_EREFUSED (-10)

/* Log levels (the host's: debug, info, warn, error). */
#define VEDHOST_LOG_DEBUG 0
#define VEDHOST_LOG_INFO 1
#define VEDHOST_LOG_WARN 2
#define VEDHOST_LOG_ERROR 3

typedef struct vedhost vedhost_t;               /* the host, opaque */
typedef struct vedhost_reader vedhost_reader_t; /* a JSON reader (minor 2) */

typedef struct vedhost_plugin_abi {
  uint32_t major;   /* VEDHOST_PLUGIN_ABI_MAJOR the plugin was built with */
  uint32_t minor;   /* VEDHOST_PLUGIN_ABI_MINOR the plugin was built with */
  const char *name; /* [borrowed, static] short name for the log */
} vedhost_plugin_abi_t;

/* The answer to api->call. status 0: json [borrowed, valid during the
 * callback] is the handler's return value as JSON text ("null" when it
 * returned nothing), len its length. status < 0 (VEDHOST_EHANDLER: the
 * handler raised and every write it made was rolled back; VEDHOST_ESTOPPED:
 * the host stopped before the call ran; VEDHOST_ENOMEM): json is the
 * one-line error message. Called once the slice that ran the handler is
 * durable (--durability sync: fsync'd), never from inside api->call. */
typedef void (*vedhost_reply_fn)(void *arg, int status, const char *json,
                                 size_t len);

/* Counters of the host for exporters (api->stats). Fields the host does
 * not track read -1. */
typedef struct vedhost_stats {
  int64_t slices;         /* slices ended since start */
  int64_t handler_calls;  /* handler calls since start */
  int64_t handler_errors; /* calls that raised (-1 if not tracked) */
  int64_t lua_heap_bytes; /* bytes the Lua state holds now */
  int64_t lua_heap_peak;  /* its peak */
  int64_t domains;        /* declared domains */
  int64_t start_ms;       /* wall-clock ms when the loop started */
  int64_t boot_ms;        /* ms from process start to the first slice */
  int64_t flush_lag_ms;   /* age of the oldest slice not durable yet */
  int64_t bytes_written;  /* bytes handed to the store */
} vedhost_stats_t;

typedef struct vedhost_api {
  uint32_t abi_major; /* the host's VEDHOST_PLUGIN_ABI_MAJOR */
  uint32_t abi_minor; /* the host's VEDHOST_PLUGIN_ABI_MINOR */
  size_t size;        /* sizeof(vedhost_api_t) in the host */
  vedhost_t *host;    /* pass to every function below */
  const char *config; /* [borrowed, lives as long as the plugin] the text
                         after '=' in --plugin PATH=CONFIG, or NULL */

  /* The loop the host runs (the plugin may add handles to it; it must
   * close them in its stop callback). */
  uv_loop_t *(*loop)(vedhost_t *host);

  /* Make `require(name)` in domain scripts call open (a lua_CFunction
   * returning the module). name [borrowed, copied]. 0, VEDHOST_EINVAL
   * (called after the scripts loaded) or VEDHOST_ENOMEM. Functions of the
   * module run inside handler calls, so they must not block. */
  int (*register_module)(vedhost_t *host, const char *name, lua_CFunction open);

  /* Run domain's handler for event with the JSON payload (json [borrowed],
   * len bytes; NULL or empty means nil) as a call from outside, in a later
   * slice; cb(arg, ...) runs once that slice is durable. 0, or
   * VEDHOST_ENODOMAIN / VEDHOST_ENOEVENT / VEDHOST_EJSON / VEDHOST_ESTOPPED
   * / VEDHOST_ENOMEM, and then cb is never called. err [borrowed, may be
   * NULL]: a one-line message on failure. */
  int (*call)(vedhost_t *host, const char *domain, const char *event,
              const char *json, size_t len, vedhost_reply_fn cb, void *arg,
              char *err, size_t cap);

  /* The committed state of domain at path (npath keys [borrowed]; a key
   * that reads as a decimal integer matches an integer key first, then the
   * string key) as JSON text: *out [new, free with api->free], *outlen.
   * The state read is the latest committed in memory, which may include
   * a slice that is not durable yet: before showing it outside the
   * process, wait for when_durable (minor 1). 0, VEDHOST_ENODOMAIN,
   * VEDHOST_ENOTFOUND, VEDHOST_EIO, VEDHOST_ENOMEM, or VEDHOST_EJSON when
   * the value cannot be written as JSON without losing data: then *out is
   * the one-line message naming the path (free it with api->free). */
  int (*read_json)(vedhost_t *host, const char *domain, const char *const *path,
                   size_t npath, char **out, size_t *outlen);

  /* Fill *out (size bytes, up to sizeof(vedhost_stats_t)). */
  void (*stats)(vedhost_t *host, vedhost_stats_t *out, size_t size);

  /* 1 while the loop runs and accepts calls, 0 once it is stopping. */
  int (*running)(vedhost_t *host);

  /* Register fn(arg), called once when the loop has stopped (after the
   * last slice), before the host closes the loop: close every handle the
   * plugin opened there. The loop still runs close and write callbacks
   * after it returns. 0 or VEDHOST_ENOMEM. */
  int (*on_stop)(vedhost_t *host, void (*fn)(void *arg), void *arg);

  /* Write one record to the host's log ([tag] message). msg [borrowed]. */
  void (*log)(vedhost_t *host, int level, const char *tag, const char *msg);

  /* Free memory the host handed out (read_json's *out). */
  void (*free)(void *p);

  /* Minor 1. Call fn(arg, 1) once every slice up to the current one is
   * durable (the output gate of ARCHITECTURE.md invariant 3): a plugin that
   * read state with read_json holds its answer until then. If the host stops
   * before that (or its writes fail), fn(arg, 0) runs instead: what was
   * read must not be shown. fn runs on the loop thread, exactly once.
   * 0 or VEDHOST_ENOMEM (fn is then never called). */
  int (*when_durable)(vedhost_t *host, void (*fn)(void *arg, int durable),
                      void *arg);

  /* Minor 2. 1 while the host starts slices (runs events), 0 while it
   * holds them: it is stopping, or its store cannot take more (the write
   * queue is full, writes fail, or writing stopped after an error; see
   * README "When the disk fills up"). Calls made meanwhile wait, so an
   * ingress should refuse new work (HTTP: 503) and report unhealthy. why
   * [may be NULL]: the reason, one line, up to cap bytes. */
  int (*accepting)(vedhost_t *host, char *why, size_t cap);

  /* Minor 2. read_json in steps, for values too big to encode in one go
   * without holding the loop. read_open takes the committed value of
   * domain at path (as read_json finds it) and pins that version: later
   * slices do not change what the reader writes. The output gate applies
   * as for read_json (when_durable before showing it). *out [new, end it
   * with read_close]. 0, VEDHOST_ENODOMAIN, VEDHOST_ENOTFOUND,
   * VEDHOST_EIO, VEDHOST_ESTOPPED or VEDHOST_ENOMEM. */
  int (*read_open)(vedhost_t *host, const char *domain, const char *const *path,
                   size_t npath, vedhost_reader_t **out);

  /* The next bytes of the reader's JSON text into buf (cap bytes; at least
   * one when cap > 0 and the text is not complete), *len how many.
   * Returns 1 while more follows, 0 once the text is complete, or an
   * error: VEDHOST_EIO (a node could not be read from the store),
   * VEDHOST_EJSON (the value cannot be written as JSON exactly: nested
   * too deep, keys of different types with one text), VEDHOST_ENOMEM, or
   * VEDHOST_ESTOPPED: the host is stopping, and it releases every pinned
   * version before it writes its last slice. After an error the reader
   * only answers read_error and read_close. Cost: about cap bytes of
   * encoding per call; yield to the loop between calls. */
  int (*read_next)(vedhost_reader_t *r, char *buf, size_t cap, size_t *len);

  /* [borrowed, valid until read_close] The one-line message of the last
   * error of r, naming the path ("$.a[3]: ..."), or "". */
  const char *(*read_error)(vedhost_reader_t *r);

  /* End r (NULL is a no-op): releases the pinned version. */
  void (*read_close)(vedhost_reader_t *r);

  /* minor 3: versions */

  /* Minor 3. read_open of the value at a retained version: at is a
   * version spec (README "Versions": "1234" a seq, "-3" three back,
   * "14:02", "2026-12-06T14:02:00Z", "-5m", a mark name). The value is
   * read from the store through read-only views of that version's roots
   * (durable by definition: no output gate needed). Read it with
   * read_next/read_error/read_close as any reader. 0, VEDHOST_ENOTFOUND
   * (no such retained version, a malformed spec, or no value at that
   * path), VEDHOST_ENODOMAIN (the domain is not in that version),
   * VEDHOST_EIO, VEDHOST_ESTOPPED or VEDHOST_ENOMEM; why (cap bytes, may
   * be NULL) gets one line saying which ("unknown version 99: oldest
   * retained is 1200, newest 1300"). */
  int (*read_open_at)(vedhost_t *host, const char *domain,
                      const char *const *path, size_t npath, const char *at,
                      vedhost_reader_t **out, char *why, size_t cap);

  /* Minor 3. The change feed: the changes of every committed version
   * after version `after`, oldest first. fn(arg, line, len) gets each
   * change as one JSON object without a newline (line [borrowed] for the
   * call; the format of `vedhost changes --json`: {"seq", "time" (unix
   * ms), "domain", "op" ("+", "-", "~"), "path" (array of keys), "value"
   * for "+", "old"/"new" for "~", "n", "of": the n-th change of `of` in
   * that seq}); a non-zero return stops the call. after = 0: start with
   * the oldest retained version whole (every key as "+"). At most
   * max_versions versions per call (0: no limit); *last = the seq of the
   * last version all of whose changes were handed to fn (after when none):
   * pass it as `after` next time, and each change comes exactly once.
   * Only versions whose batch the store holds are sent (committed; with
   * --durability sync, on disk). Returns 1 (max_versions sent: call again),
   * 0 (caught up: poll later), VEDHOST_ENOTFOUND (after is not retained:
   * why says which seq to resume from, "seq 99 is past retention: the
   * oldest seq you can resume from is 1200 ..."), VEDHOST_EIO,
   * VEDHOST_ESTOPPED, VEDHOST_ENOMEM. Cost: the nodes the versions
   * changed, not the size of the state. */
  int (*changes)(vedhost_t *host, uint64_t after, size_t max_versions,
                 int (*fn)(void *arg, const char *line, size_t len), void *arg,
                 uint64_t *last, char *why, size_t cap);
} vedhost_api_t;

typedef int (*vedhost_plugin_init_fn)(const vedhost_api_t *api, char *err,
                                      size_t cap);

/* Define the ABI symbol of a plugin: VEDHOST_PLUGIN("hello"); */
#define VEDHOST_PLUGIN(name_)                       \
  __attribute__((visibility("default")))            \
  const vedhost_plugin_abi_t vedhost_plugin_abi = { \
      VEDHOST_PLUGIN_ABI_MAJOR, VEDHOST_PLUGIN_ABI_MINOR, (name_)}

#ifdef __cplusplus
}
#endif

#endif /* VEDHOST_PLUGIN_H */
