/*
 * plugin.c - native plugins: loading shared objects, checking their ABI,
 * and the table of host functions they get (include/vedhost/plugin.h).
 *
 * WHY A TABLE. A plugin never links against the host: it receives one
 * vedhost_api_t with function pointers, so the host's symbols, value
 * layout and internal headers can change freely; only the table's layout
 * is the contract, versioned major.minor. Lua and libuv are shared
 * libraries of the process, so a plugin uses their APIs directly on the
 * lua_State and uv_loop_t it is handed.
 *
 * LOADING (before the scripts, so that modules exist for `require`):
 *   dlopen(RTLD_NOW | RTLD_LOCAL)   -> "cannot load: <dlerror>"
 *   a handle not loaded before      -> else "already loaded"
 *   dlsym("vedhost_plugin_abi")     -> "not a vedhost plugin"
 *   abi.major == ours, minor <= ours -> else "built for ABI a.b"
 *   dlsym("vedhost_plugin_init")    -> "missing symbol"
 *   init(api, err, cap) == 0        -> else "init failed: <err>"
 * Each failure is one line for main.c and the process exits 1. Built-in
 * plugins (the HTTP ingress) go through the same checks with a static
 * ABI record, so the ingress proves the ABI is enough for a real plugin.
 *
 * CALLS. api->call parses the JSON payload (json.c), checks that the
 * domain and its handler exist (so that a caller gets "not found" at once
 * rather than a failed call later), and hands the value to vh_host_call.
 * The reply callback of vh_host_call runs once the slice is durable (the
 * output gate is the host's); it encodes the reply as JSON and calls the
 * plugin's callback. Errors from the host arrive as a code with a text:
 * the code alone picks the VEDHOST_E* status (vh_plugin_code, one switch
 * from the internal codes of vh_err.h to the ABI's fixed ones), the text
 * goes to the plugin as the message. So a handler raising "the domain is
 * gone" is still a handler error, and rewording a message changes no
 * status.
 *
 * READERS (api->read_open, minor 2). A reader is a vh_jstream_t
 * (json_stream.c) over the value at the path, which holds a reference to
 * that immutable version, so the plugin can take the text in steps across
 * loop turns while later slices commit. Open readers are listed here:
 * when the host stops, vh_plugin_cut_readers (the LAST_SLICE hook, from
 * the last slice's end,
 * before its batch is built) releases every pinned version, so the nodes
 * only an old version held die while their deletes can still join the
 * last batch (invariant 5); the reader then answers VEDHOST_ESTOPPED.
 * api->read_open_at (minor 3) makes the same reader over a retained
 * version: its root is a view stub (persist/vh_trie.h: the nodes it
 * loads never reach the free hook), so a reader of an old version never
 * makes the store delete nodes that version still uses.
 *
 * LIFE. One host per process, so the plugin registry is process-wide (as
 * the watchdog's host pointer in call.c). Stop callbacks run in reverse
 * load order once the loop stopped (vh_plugin_stop, the STOP hook, from
 * vh_host_run); the shared objects are closed only in vh_plugin_free (the FREE
 * hook), at the very end of vh_host_free, because calls still pending when the
 * loop stopped are answered (ESTOPPED) while the host is freed, and those
 * callbacks are plugin code.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "host_int.h"
#include "vh_bytes.h"
#include "vh_changes.h"
#include "vh_changes_json.h"
#include "vh_http.h"
#include "vh_json.h"
#include "vh_jstream.h"
#include "vh_log.h"
#include "vh_plugin.h"
#include "vh_version_spec.h"

typedef struct vh_plug {
  void *dl;          /* [owned] dlopen handle, NULL for a built-in */
  char *path;        /* [owned] file, or the built-in's name */
  char *config;      /* [owned] may be NULL */
  vedhost_api_t api; /* the table this plugin holds a pointer to */
  const char *name;  /* [borrowed] abi->name (static in the plugin) */
} vh_plug_t;

typedef struct vh_stop_hook {
  void (*fn)(void *arg);
  void *arg;
} vh_stop_hook_t;

/* The registry; loop thread only. */
static struct {
  vh_host_t *h;      /* the host the plugins belong to */
  vh_plug_t **plugs; /* [owned] in load order */
  size_t nplugs, capplugs;
  vh_stop_hook_t *stops; /* [owned] */
  size_t nstops, capstops;
  int stopped;                    /* the stop hooks ran */
  struct vedhost_reader *readers; /* open readers (api->read_open) */
  int cut;                        /* vh_plugin_cut_readers ran */
  /* api->changes: the feed of the last call, resumed by a call that goes
   * on from where it stopped (vh_feed_resume: its side stays loaded). */
  vh_feed_t feed;
  int has_feed, feed_busy;
} vh_plugins;

/* The registry's part in a host's life, registered with the runtime
 * (vh_host__hook) when the first plugin is added. */
/* The host is stopping and its last slice ends: release the version
 * every open reader (api->read_open) pins, so the nodes that die join the
 * last batch; the readers answer VEDHOST_ESTOPPED from then on. */
static void vh_plugin_cut_readers(vh_host_t *h);
/* The loop has stopped: run the plugins' stop callbacks (in reverse load
 * order). */
static void vh_plugin_stop(vh_host_t *h);
/* The host is being freed, after every reply callback ran: dlclose. */
static void vh_plugin_free(vh_host_t *h);
static const vh_host_hooks_t vh_plugin_hooks = {
    "plugins", NULL, vh_plugin_cut_readers, vh_plugin_stop, vh_plugin_free};

/* A reader handed out by api->read_open. */
struct vedhost_reader {
  vh_jstream_t *js;                   /* [owned] NULL once cut */
  struct vedhost_reader *prev, *next; /* in vh_plugins.readers */
};

/* A call in flight through api->call. */
typedef struct vh_pcall {
  vedhost_reply_fn cb;
  void *arg;
} vh_pcall_t;

static vh_host_t *vh_plugin_host(vedhost_t *host) {
  return (vh_host_t *)host;
}

/* ---- the table ---- */

static uv_loop_t *vh_api_loop(vedhost_t *host) {
  return &vh_plugin_host(host)->loop;
}

typedef struct vh_regmod {
  const char *name;
  lua_CFunction open;
} vh_regmod_t;

static int vh_api_register_p(lua_State *L) {
  vh_regmod_t *r = lua_touserdata(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, r->open);
  lua_setfield(L, -2, r->name);
  return 0;
}

static int vh_api_register_module(vedhost_t *host, const char *name,
                                  lua_CFunction open) {
  vh_host_t *h = vh_plugin_host(host);
  if (h->phase != VH_PHASE_LOAD || !name || !*name || !open)
    return VEDHOST_EINVAL;
  vh_regmod_t r = {name, open};
  lua_pushcfunction(h->L, vh_api_register_p);
  lua_pushlightuserdata(h->L, &r);
  if (lua_pcall(h->L, 1, 0, 0) != LUA_OK) {
    lua_pop(h->L, 1);
    return VEDHOST_ENOMEM;
  }
  vh_log(VH_LOG_DEBUG, "vedhost", "plugin module '%s' registered", name);
  return 0;
}

/* 1 if domain d has a handler function for event. */
static int vh_plugin_has_event(vh_host_t *h, vh_domain_t *d,
                               const char *event) {
  lua_State *L = h->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->on_ref);
  lua_pushstring(L, event);
  int t = lua_rawget(L, -2);
  lua_settop(L, top);
  return t == LUA_TFUNCTION;
}

int vh_plugin_code(int code) {
  switch (code) {
    case 0:
      return 0;
    case VH_ENOMEM:
      return VEDHOST_ENOMEM;
    case VH_HOST_ENODOMAIN:
      return VEDHOST_ENODOMAIN;
    case VH_HOST_ENOEVENT:
      return VEDHOST_ENOEVENT;
    case VH_JSON_EPARSE:
      return VEDHOST_EJSON;
    case VH_HOST_ESTOPPED:
    case VH_HOST_ESTATE:
      return VEDHOST_ESTOPPED;
    case VH_ENOTFOUND:
      return VEDHOST_ENOTFOUND;
    case VH_EINVAL:
      return VEDHOST_EINVAL;
    case VH_EIO:
    case VH_JSON_EIO:
      return VEDHOST_EIO;
    case VH_HOST_EREFUSED:
      return VEDHOST_EREFUSED;
    case VH_HOST_EROLLBACK:
    case VH_HOST_ENOTDURABLE: /* the ABI has no code of its own for it */
    default:
      return VEDHOST_EHANDLER;
  }
}

static void vh_plugin_on_reply(void *arg, int code, vh_val_t reply,
                               const char *err) {
  vh_pcall_t *c = arg;
  if (err) {
    c->cb(c->arg, vh_plugin_code(code), err, strlen(err));
  } else {
    char *js = NULL, why[512];
    size_t n = 0;
    int rc = vh_json_encode_err(reply, &js, &n, why, sizeof why);
    if (rc == 0) {
      c->cb(c->arg, 0, js, n);
    } else if (rc == VH_JSON_EPARSE) { /* the handler ran; its reply is lost */
      char m[600];
      snprintf(m, sizeof m, "the reply: %s", why);
      c->cb(c->arg, VEDHOST_EJSON, m, strlen(m));
    } else {
      const char *m = rc == VH_JSON_EIO ? "the reply could not be read back "
                                          "from the store"
                                        : "out of memory encoding the reply";
      c->cb(c->arg, rc == VH_JSON_EIO ? VEDHOST_EIO : VEDHOST_ENOMEM, m,
            strlen(m));
    }
    free(js);
  }
  free(c);
}

static int vh_api_call(vedhost_t *host, const char *domain, const char *event,
                       const char *json, size_t len, vedhost_reply_fn cb,
                       void *arg, char *err, size_t cap) {
  vh_host_t *h = vh_plugin_host(host);
  char tmp[8];
  if (!err) {
    err = tmp;
    cap = sizeof tmp;
  }
  if (!domain || !event || !cb) {
    snprintf(err, cap, "domain, event and callback are required");
    return VEDHOST_EINVAL;
  }
  if (h->phase == VH_PHASE_STOP || h->stop_requested) {
    snprintf(err, cap, "vedhost is stopping");
    return VEDHOST_ESTOPPED;
  }
  vh_domain_t *d = vh_host__find(h, domain, strlen(domain));
  if (d && d->refused) { /* readable, but takes no events (README) */
    snprintf(err, cap, "domain '%s' is refused: %s", domain, d->refused);
    return VEDHOST_EREFUSED;
  }
  if (!d || d->retired) {
    snprintf(err, cap, "no domain '%s'", domain);
    return VEDHOST_ENODOMAIN;
  }
  if (!vh_plugin_has_event(h, d, event)) {
    snprintf(err, cap, "domain '%s' has no handler for event '%s'", domain,
             event);
    return VEDHOST_ENOEVENT;
  }
  vh_val_t payload = vh_nil();
  int rc = json ? vh_json_decode(json, len, &payload, err, cap) : 0;
  if (rc != 0) return rc == VH_ENOMEM ? VEDHOST_ENOMEM : VEDHOST_EJSON;
  vh_pcall_t *c = malloc(sizeof *c);
  if (!c) {
    vh_val_release(payload);
    snprintf(err, cap, "out of memory");
    return VEDHOST_ENOMEM;
  }
  c->cb = cb;
  c->arg = arg;
  rc = vh_host_call(h, domain, event, payload, vh_plugin_on_reply, c);
  if (rc != 0) {
    free(c);
    snprintf(err, cap, "%s",
             rc == VH_HOST_ENODOMAIN ? "no such domain"
             : rc == VH_ENOMEM       ? "out of memory"
                                     : "vedhost is stopping");
    return vh_plugin_code(rc);
  }
  return 0;
}

/* Look up one path key in table t: an integer (or float) key first when
 * the text reads as a number, then the string key. *out [borrowed]. */
static void vh_plugin_path_get(const vh_tab_t *t, const char *k,
                               vh_val_t *out) {
  *out = vh_nil();
  char *end;
  if (*k && *k != ' ' && *k != '+') {
    errno = 0;
    long long i = strtoll(k, &end, 10);
    if (!errno && *end == '\0') {
      vh_tab_get_int(t, (int64_t)i, out);
    } else {
      double f = strtod(k, &end);
      vh_val_t key = vh_float(f);
      if (*end == '\0' && vh_key_norm(&key) == 0) vh_tab_get(t, key, out);
    }
  }
  if (out->type == VH_TNIL) vh_tab_get_str(t, k, strlen(k), out);
}

/* The committed value of domain at path: *out [borrowed: valid until the
 * next slice]. 0, VEDHOST_ENODOMAIN, VEDHOST_ENOTFOUND or VEDHOST_EIO. */
static int vh_plugin_lookup(vh_host_t *h, const char *domain,
                            const char *const *path, size_t npath,
                            vh_val_t *out) {
  vh_domain_t *d = domain ? vh_host__find(h, domain, strlen(domain)) : NULL;
  if (!d) return VEDHOST_ENODOMAIN;
  vh_tab_t *root = vhl_state_root(d->st);
  vh_val_t v = root ? vh_tabv(root) : vh_nil();
  vh_trie_fault_clear();
  for (size_t i = 0; i < npath; i++) {
    if (v.type != VH_TTAB) return VEDHOST_ENOTFOUND;
    vh_plugin_path_get(v.u.t, path[i], &v);
    if (v.type == VH_TNIL) {
      int f = vh_trie_fault(NULL);
      vh_trie_fault_clear();
      return f ? VEDHOST_EIO : VEDHOST_ENOTFOUND;
    }
  }
  *out = v;
  return 0;
}

static int vh_api_read_json(vedhost_t *host, const char *domain,
                            const char *const *path, size_t npath, char **out,
                            size_t *outlen) {
  vh_host_t *h = vh_plugin_host(host);
  *out = NULL;
  *outlen = 0;
  vh_val_t v;
  int rc = vh_plugin_lookup(h, domain, path, npath, &v);
  if (rc != 0) return rc;
  char why[512];
  rc = vh_json_encode_err(v, out, outlen, why, sizeof why);
  if (rc == VH_JSON_EPARSE) { /* the message goes back in *out */
    *out = strdup(why);
    *outlen = *out ? strlen(why) : 0;
    return *out ? VEDHOST_EJSON : VEDHOST_ENOMEM;
  }
  if (rc == VH_JSON_EIO) return VEDHOST_EIO;
  return rc == 0 ? 0 : VEDHOST_ENOMEM;
}

static void vh_api_stats(vedhost_t *host, vedhost_stats_t *out, size_t size) {
  vh_host_t *h = vh_plugin_host(host);
  vedhost_stats_t s;
  s.slices = (int64_t)h->slice_seq;
  s.handler_calls = (int64_t)h->total_calls;
  s.handler_errors = (int64_t)h->handler_errors;
  s.lua_heap_bytes = (int64_t)h->heap;
  s.lua_heap_peak = (int64_t)h->heap_peak;
  s.domains = h->ndoms;
  s.start_ms = h->start_ms ? h->start_ms : -1;
  s.boot_ms = h->boot_ms;
  vh_durable_stats_t ds;
  memset(&ds, 0, sizeof ds);
  vh_durable__stats(h, &ds);
  s.flush_lag_ms = ds.on ? (int64_t)ds.lag_ms : -1;
  s.bytes_written = ds.on ? (int64_t)ds.bytes : -1;
  memcpy(out, &s, size < sizeof s ? size : sizeof s);
}

static int vh_api_running(vedhost_t *host) {
  vh_host_t *h = vh_plugin_host(host);
  return h->phase == VH_PHASE_RUN && !h->stop_requested;
}

static int vh_api_on_stop(vedhost_t *host, void (*fn)(void *arg), void *arg) {
  (void)host;
  if (!fn) return VEDHOST_EINVAL;
  if (vh_grow(&vh_plugins.stops, &vh_plugins.capstops, vh_plugins.nstops + 1,
              sizeof *vh_plugins.stops) != 0)
    return VEDHOST_ENOMEM;
  vh_plugins.stops[vh_plugins.nstops].fn = fn;
  vh_plugins.stops[vh_plugins.nstops].arg = arg;
  vh_plugins.nstops++;
  return 0;
}

static void vh_api_log(vedhost_t *host, int level, const char *tag,
                       const char *msg) {
  (void)host;
  if (level < VEDHOST_LOG_DEBUG) level = VEDHOST_LOG_DEBUG;
  if (level > VEDHOST_LOG_ERROR) level = VEDHOST_LOG_ERROR;
  vh_log_text((vh_log_level_t)level, tag ? tag : "plugin", msg ? msg : "",
              NULL);
}

static int vh_api_when_durable(vedhost_t *host,
                               void (*fn)(void *arg, int durable), void *arg) {
  return vh_host__when_durable(vh_plugin_host(host), fn, arg) == 0
             ? 0
             : VEDHOST_ENOMEM;
}

static int vh_api_accepting(vedhost_t *host, char *why, size_t cap) {
  return vh_host__accepting(vh_plugin_host(host), why, cap);
}

static void vh_api_free(void *p) {
  free(p);
}

static int vh_api_read_open(vedhost_t *host, const char *domain,
                            const char *const *path, size_t npath,
                            vedhost_reader_t **out) {
  vh_host_t *h = vh_plugin_host(host);
  *out = NULL;
  if (vh_plugins.cut || h->phase != VH_PHASE_RUN) return VEDHOST_ESTOPPED;
  vh_val_t v;
  int rc = vh_plugin_lookup(h, domain, path, npath, &v);
  if (rc != 0) return rc;
  vedhost_reader_t *r = calloc(1, sizeof *r);
  if (!r || vh_jstream_new(v, &r->js) != 0) {
    free(r);
    return VEDHOST_ENOMEM;
  }
  r->next = vh_plugins.readers;
  if (r->next) r->next->prev = r;
  vh_plugins.readers = r;
  *out = r;
  return 0;
}

/* Register reader r for v [borrowed] (read_open's tail). */
static int vh_api_reader_new(vh_val_t v, vedhost_reader_t **out) {
  vedhost_reader_t *r = calloc(1, sizeof *r);
  if (!r || vh_jstream_new(v, &r->js) != 0) {
    free(r);
    return VEDHOST_ENOMEM;
  }
  r->next = vh_plugins.readers;
  if (r->next) r->next->prev = r;
  vh_plugins.readers = r;
  *out = r;
  return 0;
}

static int64_t vh_api_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* read_open_at: the version's manifest (vh_version_load), a view stub of
 * the domain's root there (vh_tab_stub_view: loads report no deaths and
 * refuse writes), the path walked over it, a reader over the value. */
static int vh_api_read_open_at(vedhost_t *host, const char *domain,
                               const char *const *path, size_t npath,
                               const char *at, vedhost_reader_t **out,
                               char *why, size_t cap) {
  vh_host_t *h = vh_plugin_host(host);
  char dummy[1];
  if (!why || cap == 0) {
    why = dummy;
    cap = sizeof dummy;
  }
  why[0] = '\0';
  *out = NULL;
  if (vh_plugins.cut || h->phase != VH_PHASE_RUN) return VEDHOST_ESTOPPED;
  struct vh_store *store = vh_durable__store(h);
  if (!store || !at || !domain) {
    snprintf(why, cap, "%s",
             !store ? "this host keeps no store" : "no version");
    return VEDHOST_ENOTFOUND;
  }
  vh_manifest_t m;
  uint64_t seq = 0;
  int64_t t = 0;
  char *msg = NULL;
  int rc = vh_version_load(store, at, vh_api_wall_ms(), &seq, &t, &m, &msg);
  if (rc != 0) {
    snprintf(why, cap, "%s", msg ? msg : vh_err_name(rc));
    free(msg);
    return rc == VH_ENOENT || rc == VH_EINVAL ? VEDHOST_ENOTFOUND
           : rc == VH_ENOMEM                  ? VEDHOST_ENOMEM
                                              : VEDHOST_EIO;
  }
  const vh_manifest_domain_t *d = vh_manifest_find(&m, domain);
  if (!d) {
    snprintf(why, cap, "no domain '%.200s' in version %llu", domain,
             (unsigned long long)seq);
    vh_manifest_free(&m);
    return VEDHOST_ENODOMAIN;
  }
  vh_tab_t *root = d->root ? vh_tab_stub_view(d->root) : vh_tab_new(0);
  vh_manifest_free(&m);
  if (!root) return VEDHOST_ENOMEM;
  vh_val_t v = vh_tabv(root);
  vh_trie_fault_clear();
  rc = 0;
  for (size_t i = 0; i < npath && rc == 0; i++) {
    if (v.type != VH_TTAB) {
      rc = VEDHOST_ENOTFOUND;
      break;
    }
    vh_plugin_path_get(v.u.t, path[i], &v);
    if (v.type == VH_TNIL) {
      const char *fm = NULL;
      int f = vh_trie_fault(&fm);
      if (f) snprintf(why, cap, "%s", fm);
      vh_trie_fault_clear();
      rc = f ? VEDHOST_EIO : VEDHOST_ENOTFOUND;
    }
  }
  if (rc == VEDHOST_ENOTFOUND && !why[0])
    snprintf(why, cap, "no value at that path in version %llu",
             (unsigned long long)seq);
  if (rc == 0) rc = vh_api_reader_new(v, out);
  vh_tab_release(root); /* the reader holds its own reference */
  return rc;
}

/* changes: the feed of host/changes.c over view stubs (old versions must
 * never report deaths), one call = one vh_feed_poll from `after`; the
 * feed is kept for a next call that goes on from where it stopped. */
typedef struct vh_api_feed {
  int (*fn)(void *arg, const char *line, size_t len);
  void *arg;
  vh_buf_t line;
} vh_api_feed_t;

static int vh_api_feed_one(void *arg, const vh_change_t *c) {
  vh_api_feed_t *f = arg;
  f->line.len = 0;
  int r = vh_change_json(c, 1, &f->line);
  if (r != 0) return r;
  return f->fn(f->arg, (const char *)f->line.p, f->line.len) != 0 ? 2 : 0;
}

static int vh_api_changes(vedhost_t *host, uint64_t after, size_t max_versions,
                          int (*fn)(void *arg, const char *line, size_t len),
                          void *arg, uint64_t *last, char *why, size_t cap) {
  vh_host_t *h = vh_plugin_host(host);
  char dummy[1];
  if (!why || cap == 0) {
    why = dummy;
    cap = sizeof dummy;
  }
  why[0] = '\0';
  if (last) *last = after;
  if (vh_plugins.cut || h->phase != VH_PHASE_RUN) return VEDHOST_ESTOPPED;
  struct vh_store *store = vh_durable__store(h);
  if (!store || !fn) {
    snprintf(why, cap, "%s", !store ? "this host keeps no store" : "no fn");
    return VEDHOST_ENOTFOUND;
  }
  /* The kept feed, unless a call from inside fn is using it. HTTP polls
   * 8 versions a call: a fresh feed per call read each call's old side
   * again, ~2x the CPU of `vedhost changes` per change (bench/README.md). */
  vh_feed_t own, *feed = &own;
  vh_api_feed_t f;
  char *msg = NULL;
  f.fn = fn;
  f.arg = arg;
  vh_buf_init(&f.line);
  if (!vh_plugins.feed_busy) {
    feed = &vh_plugins.feed;
    vh_plugins.feed_busy = 1;
    if (vh_plugins.has_feed)
      vh_feed_resume(feed, store, vh_tab_stub_view, after);
    else
      vh_feed_init(feed, store, vh_tab_stub_view, after);
    vh_plugins.has_feed = 1;
  } else {
    vh_feed_init(feed, store, vh_tab_stub_view, after);
  }
  int rc = vh_feed_poll(feed, max_versions, vh_api_feed_one, &f, NULL, &msg);
  if (last) *last = feed->last;
  if (feed == &own || rc < 0) vh_feed_free(feed);
  if (feed != &own) {
    vh_plugins.has_feed = rc >= 0;
    vh_plugins.feed_busy = 0;
  }
  vh_buf_free(&f.line);
  if (rc < 0) snprintf(why, cap, "%s", msg ? msg : vh_err_name(rc));
  free(msg);
  if (rc >= 0) return rc == 1 ? 1 : 0; /* 2: fn stopped it */
  return rc == VH_ENOENT   ? VEDHOST_ENOTFOUND
         : rc == VH_ENOMEM ? VEDHOST_ENOMEM
                           : VEDHOST_EIO;
}

static int vh_api_read_next(vedhost_reader_t *r, char *buf, size_t cap,
                            size_t *len) {
  *len = 0;
  if (!r->js) return VEDHOST_ESTOPPED;
  int rc = vh_jstream_read(r->js, buf, cap, len);
  if (rc >= 0) return rc;
  return rc == VH_JSON_EIO      ? VEDHOST_EIO
         : rc == VH_JSON_EPARSE ? VEDHOST_EJSON
                                : VEDHOST_ENOMEM;
}

static const char *vh_api_read_error(vedhost_reader_t *r) {
  if (!r->js)
    return "vedhost is stopping: the value being read was released before "
           "the last slice was written";
  return vh_jstream_error(r->js);
}

static void vh_api_read_close(vedhost_reader_t *r) {
  if (!r) return;
  if (r->prev)
    r->prev->next = r->next;
  else
    vh_plugins.readers = r->next;
  if (r->next) r->next->prev = r->prev;
  vh_jstream_free(r->js);
  free(r);
}

static void vh_plugin_cut_readers(vh_host_t *h) {
  if (vh_plugins.h != h) return;
  vh_plugins.cut = 1;
  if (vh_plugins.has_feed) vh_feed_free(&vh_plugins.feed);
  vh_plugins.has_feed = 0;
  for (vedhost_reader_t *r = vh_plugins.readers; r; r = r->next) {
    vh_jstream_free(r->js);
    r->js = NULL;
  }
}

/* ---- loading ---- */

static void vh_plug_free(vh_plug_t *p) {
  if (!p) return;
  if (p->dl) dlclose(p->dl);
  free(p->path);
  free(p->config);
  free(p);
}

/* Check abi, run init and keep the record (p [stolen]). */
static int vh_plugin_start(vh_host_t *h, vh_plug_t *p,
                           const vedhost_plugin_abi_t *abi,
                           vedhost_plugin_init_fn init, char *err, size_t cap) {
  if (vh_plugins.h && vh_plugins.h != h) {
    snprintf(err, cap, "plugin %s: another host owns the plugins", p->path);
    vh_plug_free(p);
    return VH_PLUGIN_ELOAD;
  }
  if (abi->major != VEDHOST_PLUGIN_ABI_MAJOR ||
      abi->minor > VEDHOST_PLUGIN_ABI_MINOR) {
    snprintf(err, cap,
             "plugin %s was built for plugin ABI %u.%u, but this vedhost "
             "has ABI %d.%d: rebuild it against this vedhost's "
             "vedhost/plugin.h",
             p->path, abi->major, abi->minor, VEDHOST_PLUGIN_ABI_MAJOR,
             VEDHOST_PLUGIN_ABI_MINOR);
    vh_plug_free(p);
    return VH_PLUGIN_ELOAD;
  }
  if (vh_grow(&vh_plugins.plugs, &vh_plugins.capplugs, vh_plugins.nplugs + 1,
              sizeof *vh_plugins.plugs) != 0) {
    snprintf(err, cap, "plugin %s: out of memory", p->path);
    vh_plug_free(p);
    return VH_ENOMEM;
  }
  if (vh_host__hook(h, &vh_plugin_hooks) != 0) {
    snprintf(err, cap, "plugin %s: the host has no room for it", p->path);
    vh_plug_free(p);
    return VH_PLUGIN_ELOAD;
  }
  vh_plugins.h = h;
  p->name = abi->name ? abi->name : "plugin";
  vedhost_api_t *a = &p->api;
  a->abi_major = VEDHOST_PLUGIN_ABI_MAJOR;
  a->abi_minor = VEDHOST_PLUGIN_ABI_MINOR;
  a->size = sizeof *a;
  a->host = (vedhost_t *)h;
  a->config = p->config;
  a->loop = vh_api_loop;
  a->register_module = vh_api_register_module;
  a->call = vh_api_call;
  a->read_json = vh_api_read_json;
  a->stats = vh_api_stats;
  a->running = vh_api_running;
  a->on_stop = vh_api_on_stop;
  a->log = vh_api_log;
  a->free = vh_api_free;
  a->when_durable = vh_api_when_durable;
  a->accepting = vh_api_accepting;
  a->read_open = vh_api_read_open;
  a->read_next = vh_api_read_next;
  a->read_error = vh_api_read_error;
  a->read_close = vh_api_read_close;
  /* minor 3: versions */
  a->read_open_at = vh_api_read_open_at;
  a->changes = vh_api_changes;
  /* Kept before init runs: init may register stop hooks, and a failed
   * init still has its object closed only at vh_host_free. */
  vh_plugins.plugs[vh_plugins.nplugs++] = p;
  char why[512] = "";
  int rc = init(a, why, sizeof why);
  if (rc != 0) {
    snprintf(err, cap, "plugin %s (%s): init failed: %s", p->path, p->name,
             why[0] ? why : "no reason given");
    return VH_PLUGIN_ELOAD;
  }
  vh_log(VH_LOG_INFO, "vedhost", "plugin %s loaded (%s, ABI %u.%u)", p->name,
         p->path, abi->major, abi->minor);
  return 0;
}

static vh_plug_t *vh_plug_new(const char *path, size_t plen,
                              const char *config) {
  vh_plug_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->path = strndup(path, plen);
  p->config = config ? strdup(config) : NULL;
  if (!p->path || (config && !p->config)) {
    vh_plug_free(p);
    return NULL;
  }
  return p;
}

/* PATH=CONFIG: the first '=' that follows ".so" splits them. The '=', or
 * NULL when spec is only a path. */
static const char *vh_plugin_split(const char *spec) {
  const char *eq = spec;
  while ((eq = strchr(eq, '=')) != NULL &&
         !(eq - spec >= 3 && memcmp(eq - 3, ".so", 3) == 0))
    eq++;
  return eq;
}

int vh_plugin_check_specs(const char *const *specs, int n, char *err,
                          size_t cap) {
  struct stat *sb = calloc((size_t)n + 1, sizeof *sb);
  char **paths = calloc((size_t)n + 1, sizeof *paths);
  int rc = 0;
  if (!sb || !paths) {
    snprintf(err, cap, "out of memory");
    rc = VH_ENOMEM;
  }
  for (int i = 0; i < n && rc == 0; i++) {
    const char *eq = vh_plugin_split(specs[i]);
    size_t plen = eq ? (size_t)(eq - specs[i]) : strlen(specs[i]);
    paths[i] = strndup(specs[i], plen);
    if (!paths[i]) {
      snprintf(err, cap, "out of memory");
      rc = VH_ENOMEM;
      break;
    }
    if (stat(paths[i], &sb[i]) != 0) { /* vh_plugin_load says why */
      sb[i].st_mode = 0;
      continue;
    }
    for (int j = 0; j < i; j++) {
      if (sb[j].st_mode == 0 || sb[j].st_ino != sb[i].st_ino ||
          sb[j].st_dev != sb[i].st_dev)
        continue;
      if (strcmp(paths[i], paths[j]) == 0)
        snprintf(err, cap, "--plugin %s given twice; load a plugin once",
                 paths[i]);
      else
        snprintf(err, cap,
                 "--plugin %s is the same file as --plugin %s; load a "
                 "plugin once",
                 paths[i], paths[j]);
      rc = VH_PLUGIN_ELOAD;
      break;
    }
  }
  for (int i = 0; paths && i < n; i++) free(paths[i]);
  free(paths);
  free(sb);
  return rc;
}

int vh_plugin_load(vh_host_t *h, const char *spec, char *err, size_t cap) {
  if (h->phase != VH_PHASE_LOAD) {
    snprintf(err, cap, "plugins can only be loaded before the loop runs");
    return VH_PLUGIN_ELOAD;
  }
  const char *eq = vh_plugin_split(spec);
  size_t plen = eq ? (size_t)(eq - spec) : strlen(spec);
  vh_plug_t *p = vh_plug_new(spec, plen, eq ? eq + 1 : NULL);
  if (!p) {
    snprintf(err, cap, "plugin %s: out of memory", spec);
    return VH_ENOMEM;
  }
  /* dlopen searches the library path for a bare name: make "x.so" mean
   * the file in the current directory, as for scripts. */
  char *file = p->path;
  char *owned = NULL;
  if (!strchr(file, '/')) {
    owned = malloc(strlen(file) + 3);
    if (owned) {
      memcpy(owned, "./", 2);
      strcpy(owned + 2, file);
      file = owned;
    }
  }
  dlerror();
  p->dl = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  free(owned);
  if (!p->dl) {
    const char *e = dlerror();
    snprintf(err, cap, "plugin %s: cannot load: %s", p->path,
             e ? e : "unknown error");
    vh_plug_free(p);
    return VH_PLUGIN_ELOAD;
  }
  /* dlopen hands back the same handle for a file already loaded (also
   * through another path or a symlink): its static state exists once, so
   * a second init would run on it again. vh_plugin_check_specs refuses
   * this before anything is opened; this catches what it cannot see. */
  for (size_t i = 0; i < vh_plugins.nplugs; i++) {
    if (vh_plugins.plugs[i]->dl == p->dl) {
      snprintf(err, cap,
               "plugin %s is already loaded (as %s); load a plugin once",
               p->path, vh_plugins.plugs[i]->path);
      vh_plug_free(p);
      return VH_PLUGIN_ELOAD;
    }
  }
  const vedhost_plugin_abi_t *abi = dlsym(p->dl, "vedhost_plugin_abi");
  if (!abi) {
    snprintf(err, cap,
             "plugin %s: missing symbol vedhost_plugin_abi (not a vedhost "
             "plugin? declare it with VEDHOST_PLUGIN(\"name\"))",
             p->path);
    vh_plug_free(p);
    return VH_PLUGIN_ELOAD;
  }
  void *sym = dlsym(p->dl, "vedhost_plugin_init");
  if (!sym) {
    snprintf(err, cap,
             "plugin %s: missing symbol vedhost_plugin_init (every plugin "
             "must export int vedhost_plugin_init(const vedhost_api_t *, "
             "char *, size_t))",
             p->path);
    vh_plug_free(p);
    return VH_PLUGIN_ELOAD;
  }
  vedhost_plugin_init_fn init;
  memcpy(&init, &sym, sizeof init); /* object to function pointer */
  return vh_plugin_start(h, p, abi, init, err, cap);
}

int vh_plugin_add(vh_host_t *h, const vedhost_plugin_abi_t *abi,
                  vedhost_plugin_init_fn init, const char *config, char *err,
                  size_t cap) {
  const char *name = abi->name ? abi->name : "built-in";
  if (h->phase != VH_PHASE_LOAD) {
    snprintf(err, cap, "plugins can only be added before the loop runs");
    return VH_PLUGIN_ELOAD;
  }
  vh_plug_t *p = vh_plug_new(name, strlen(name), config);
  if (!p) {
    snprintf(err, cap, "plugin %s: out of memory", name);
    return VH_ENOMEM;
  }
  return vh_plugin_start(h, p, abi, init, err, cap);
}

static void vh_plugin_stop(vh_host_t *h) {
  if (vh_plugins.h != h || vh_plugins.stopped) return;
  vh_plugins.stopped = 1;
  for (size_t i = vh_plugins.nstops; i-- > 0;)
    vh_plugins.stops[i].fn(vh_plugins.stops[i].arg);
}

static void vh_plugin_free(vh_host_t *h) {
  if (vh_plugins.h != h) return;
  while (vh_plugins.readers) /* left open by a plugin */
    vh_api_read_close(vh_plugins.readers);
  if (vh_plugins.has_feed) vh_feed_free(&vh_plugins.feed);
  for (size_t i = vh_plugins.nplugs; i-- > 0;)
    vh_plug_free(vh_plugins.plugs[i]);
  free(vh_plugins.plugs);
  free(vh_plugins.stops);
  memset(&vh_plugins, 0, sizeof vh_plugins);
}

/* ---- built-in plugins ---- */

int vh_http_start(vh_host_t *h, const char *addr, char *err, size_t cap) {
  char buf[1024];
  int rc =
      vh_plugin_add(h, &vh_http_abi, vh_http_init_start, addr, buf, sizeof buf);
  if (rc != 0) /* "http: <reason>" rather than the generic plugin line */
    snprintf(err, cap, "http: %s", vh_http_why()[0] ? vh_http_why() : buf);
  return rc;
}
