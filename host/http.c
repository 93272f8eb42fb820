/*
 * http.c - the HTTP ingress: events and state of domains over HTTP/1.1,
 * built as a plugin on the public ABI (vedhost/plugin.h) and linked into
 * the executable (`vedhost run --http ADDR:PORT`).
 *
 * ENDPOINTS
 *   POST /domains/{domain}/events/{event}   body: JSON payload (empty =
 *        nil) -> 200 with the handler's return value as JSON, written
 *        only once the slice that ran the handler is durable (api->call
 *        replies after the output gate). 400 bad JSON, 404 unknown domain
 *        or event, 413 body over VH_HTTP_MAX_BODY, 500 {"error": msg}
 *        when the handler raised (its writes were rolled back), 503 while
 *        stopping, while the host holds slices (api->accepting: store
 *        backpressure), with the reason, or when the domain is refused
 *        (its state stays readable with GET).
 *   GET  /domains/{domain}/state[/key...]  -> 200 JSON of the committed
 *        state (or of the value at that path; 404 if absent), read when
 *        the request is served and sent once every slice it may show is
 *        durable (api->when_durable: the output gate).
 *   GET  /healthz  -> 200 {"status":"ok"} (503 once stopping; 503 with
 *        {"error": reason} while slices are held: api->accepting)
 *   GET  /metrics  -> Prometheus text format 0.0.4
 *   Other paths 404; another method on a known path 405 with Allow.
 *   Path segments are percent-decoded; the query string is ignored.
 *
 * CONNECTIONS. One uv_tcp_t and one http_parser per connection; the loop
 * never blocks on a client. Requests are parsed as bytes arrive and
 * queued per connection (pipelining is allowed); they are served one at
 * a time, in order, so responses keep the order of requests. While the
 * head request waits for its handler's reply the queue may grow up to
 * VH_HTTP_MAX_QUEUE requests, then reading stops until it drains
 * (backpressure on a client that pipelines without reading). Keep-alive
 * follows http_should_keep_alive (HTTP/1.1 default on, 1.0 with the
 * header); "Connection: close" in a response ends the connection after
 * its write.
 *
 * A body over the limit (declared by Content-Length or reached by chunks)
 * gets 413 at once and the connection ends with a lingering close: FIN
 * after the response, then what the client still sends is read and
 * dropped until it closes, so the kernel does not reset the connection
 * and throw away the 413 before the client read it. A request the parser
 * rejects gets 400 and the same close.
 *
 * LIFETIME. A connection is freed when its handle is closed and no call
 * is in flight for it (refs counts both); a reply for a connection that
 * went away is dropped. At stop (api->on_stop): the listener closes,
 * a request whose call is still unanswered gets 503 (the host sends every
 * durable reply before the stop hooks run, so it was not acknowledged),
 * idle connections close, connections with a response being written
 * close after the write; the loop is run here until they are all closed,
 * for at most VH_HTTP_STOP_MS, after which the rest are closed as they
 * are.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "vedhost/plugin.h"
#include "vh_json.h"
#include "vh_plugin.h"

#define VH_HTTP_MAX_BODY ((size_t)1 << 20) /* 1 MiB */
#define VH_HTTP_MAX_URL 8192
#define VH_HTTP_MAX_QUEUE 64
#define VH_HTTP_MAX_SEGS 64
#define VH_HTTP_STOP_MS 2000

/* Response codes counted in /metrics. */
static const int vh_http_codes[] = {200, 400, 404, 405, 413, 414, 500, 503, 0};
#define VH_HTTP_NCODES 9

typedef struct vh_http_srv vh_http_srv_t;
typedef struct vh_http_conn vh_http_conn_t;

/* One parsed request. */
typedef struct vh_http_req {
  int method; /* enum http_method */
  char *url;  /* [owned] NUL-terminated */
  size_t ulen;
  char *body; /* [owned] may be NULL */
  size_t blen, bcap;
  int keep_alive;
  int status; /* preset answer (400, 413, 414) or 0 */
  struct vh_http_req *next;
} vh_http_req_t;

struct vh_http_conn {
  uv_tcp_t tcp;               /* tcp.data = this */
  vh_http_srv_t *srv;         /* [borrowed] */
  http_parser parser;         /* parser.data = this */
  vh_http_req_t *cur;         /* [owned] being parsed */
  vh_http_req_t *head, *tail; /* [owned] parsed, waiting; head is served */
  size_t nqueued;
  int busy;                    /* head's call is in flight */
  int refs;                    /* 1 while the handle is open + 1 per call */
  int closing;                 /* uv_close called */
  int halted;                  /* parse no more (error or 413) */
  int ending;                  /* close once the writes are done */
  int discard;                 /* lingering close: read and drop */
  int reading;                 /* uv_read_start active */
  int writes;                  /* uv_write in flight */
  int64_t t0_ns;               /* when head started (for latency) */
  vh_http_conn_t *prev, *next; /* in srv->conns */
};

struct vh_http_srv {
  const vedhost_api_t *api; /* [borrowed] */
  uv_loop_t *loop;
  uv_tcp_t listener;
  int listener_open;
  uv_timer_t deadline; /* stop deadline */
  int deadline_hit;
  int open_handles; /* listener + deadline not closed yet */
  vh_http_conn_t *conns;
  size_t nconns;
  int stopping;
  http_parser_settings settings;
  uint64_t by_code[VH_HTTP_NCODES]; /* responses per code (last: other) */
  uint64_t handler_errors;
  uint64_t posts;      /* POSTs answered 200 */
  double post_seconds; /* their summed latency */
  uint64_t accepted;
};

typedef struct vh_http_write {
  uv_write_t w;
  vh_http_conn_t *c;
  char *buf; /* [owned] */
} vh_http_write_t;

static void vh_http_pump(vh_http_conn_t *c);
static void vh_http_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* ---- connection life ---- */

static void vh_http_req_free(vh_http_req_t *r) {
  if (!r) return;
  free(r->url);
  free(r->body);
  free(r);
}

static void vh_http_conn_unref(vh_http_conn_t *c) {
  if (--c->refs > 0) return;
  vh_http_req_free(c->cur);
  while (c->head) {
    vh_http_req_t *r = c->head;
    c->head = r->next;
    vh_http_req_free(r);
  }
  free(c);
}

static void vh_http_on_close(uv_handle_t *hd) {
  vh_http_conn_t *c = hd->data;
  vh_http_srv_t *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  srv->nconns--;
  vh_http_conn_unref(c);
}

static void vh_http_close(vh_http_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, vh_http_on_close);
}

static void vh_http_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *b) {
  (void)hd;
  (void)hint;
  b->base = malloc(65536);
  b->len = b->base ? 65536 : 0;
}

static void vh_http_read_start(vh_http_conn_t *c) {
  if (c->reading || c->closing) return;
  if (uv_read_start((uv_stream_t *)&c->tcp, vh_http_alloc, vh_http_on_read) ==
      0)
    c->reading = 1;
}

static void vh_http_read_stop(vh_http_conn_t *c) {
  if (!c->reading) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

static void vh_http_on_shutdown(uv_shutdown_t *req, int status) {
  vh_http_conn_t *c = req->data;
  free(req);
  if (status != 0 || c->srv->stopping) {
    vh_http_close(c);
    return;
  }
  c->discard = 1; /* lingering close: drop input until the client closes */
  vh_http_read_start(c);
}

/* The connection ends: FIN once the writes are done, then lingering. */
static void vh_http_end(vh_http_conn_t *c) {
  if (c->closing) return;
  c->ending = 1;
  vh_http_read_stop(c);
  if (c->writes > 0) return; /* vh_http_on_write comes back here */
  uv_shutdown_t *req = malloc(sizeof *req);
  if (!req || c->srv->stopping ||
      uv_shutdown(req, (uv_stream_t *)&c->tcp, vh_http_on_shutdown) != 0) {
    free(req);
    vh_http_close(c);
    return;
  }
  req->data = c;
}

/* ---- responses ---- */

static void vh_http_count(vh_http_srv_t *srv, int status) {
  int i = 0;
  while (vh_http_codes[i] && vh_http_codes[i] != status) i++;
  srv->by_code[i]++;
}

static void vh_http_on_write(uv_write_t *w, int status) {
  vh_http_write_t *wr = (vh_http_write_t *)w;
  vh_http_conn_t *c = wr->c;
  free(wr->buf);
  free(wr);
  c->writes--;
  if (status != 0) {
    vh_http_close(c);
    return;
  }
  if (c->ending && c->writes == 0) vh_http_end(c);
}

/* Write the response of the head request and pop it. body [borrowed]. */
static void vh_http_respond(vh_http_conn_t *c, int status, const char *ctype,
                            const char *body, size_t blen, const char *extra) {
  vh_http_srv_t *srv = c->srv;
  vh_http_req_t *r = c->head;
  int keep = r && r->keep_alive && !r->status && !srv->stopping;
  vh_http_count(srv, status);
  if (r) {
    c->head = r->next;
    if (!c->head) c->tail = NULL;
    c->nqueued--;
    vh_http_req_free(r);
  }
  if (c->closing) return;
  const char *reason = http_status_str((enum http_status)status);
  char hdr[512];
  int hl = snprintf(hdr, sizeof hdr,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\n%sConnection: %s\r\n\r\n",
                    status, reason, ctype, blen, extra ? extra : "",
                    keep ? "keep-alive" : "close");
  vh_http_write_t *wr = malloc(sizeof *wr);
  char *buf = malloc((size_t)hl + blen);
  if (!wr || !buf) {
    free(wr);
    free(buf);
    vh_http_close(c);
    return;
  }
  memcpy(buf, hdr, (size_t)hl);
  if (blen) memcpy(buf + hl, body, blen);
  wr->c = c;
  wr->buf = buf;
  uv_buf_t ub = uv_buf_init(buf, (unsigned)((size_t)hl + blen));
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &ub, 1, vh_http_on_write) != 0) {
    free(buf);
    free(wr);
    vh_http_close(c);
    return;
  }
  c->writes++;
  if (!keep) {
    /* Nothing after this response is answered. */
    while (c->head) {
      vh_http_req_t *q = c->head;
      c->head = q->next;
      vh_http_req_free(q);
    }
    c->tail = NULL;
    c->nqueued = 0;
    c->halted = 1;
    vh_http_end(c);
  }
}

static void vh_http_json(vh_http_conn_t *c, int status, const char *body,
                         size_t blen) {
  vh_http_respond(c, status, "application/json", body, blen, NULL);
}

static void vh_http_error(vh_http_conn_t *c, int status, const char *msg,
                          const char *extra) {
  char *js = NULL;
  size_t n = 0;
  if (vh_json_error(msg, &js, &n) != 0) {
    vh_http_respond(c, 500, "text/plain", "out of memory\n", 14, NULL);
    return;
  }
  vh_http_respond(c, status, "application/json", js, n, extra);
  free(js);
}

/* ---- metrics ---- */

typedef struct vh_sbuf {
  char *p;
  size_t n, cap;
  int oom;
} vh_sbuf_t;

static void vh_sbuf_printf(vh_sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void vh_sbuf_printf(vh_sbuf_t *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->n) {
      b->n += (size_t)n;
      return;
    }
    size_t nc = b->cap * 2 + (size_t)n;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
}

static void vh_http_metric(vh_sbuf_t *b, const char *name, const char *type,
                           const char *help, int64_t v) {
  if (v < 0) return; /* not tracked by this host */
  vh_sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n", name, help,
                 name, type, name, v);
}

/* api->accepting (ABI minor 2), or "running" for an older host. */
static int vh_http_accepting(const vedhost_api_t *api, char *why, size_t cap) {
  if (api->abi_minor >= 2 && api->accepting)
    return api->accepting(api->host, why, cap);
  snprintf(why, cap, "vedhost is stopping");
  return api->running(api->host);
}

static void vh_http_metrics(vh_http_conn_t *c) {
  vh_http_srv_t *srv = c->srv;
  const vedhost_api_t *api = srv->api;
  vedhost_stats_t s;
  api->stats(api->host, &s, sizeof s);
  vh_sbuf_t b = {malloc(4096), 0, 4096, 0};
  if (!b.p) b.oom = 1;
  vh_http_metric(&b, "vedhost_slices_total", "counter",
                 "Slices (loop turns) ended since start.", s.slices);
  vh_http_metric(&b, "vedhost_handler_calls_total", "counter",
                 "Handler calls since start.", s.handler_calls);
  vh_http_metric(&b, "vedhost_handler_errors_total", "counter",
                 "Handler calls that raised and were rolled back.",
                 s.handler_errors);
  vh_http_metric(&b, "vedhost_lua_heap_bytes", "gauge",
                 "Bytes held by the Lua state.", s.lua_heap_bytes);
  vh_http_metric(&b, "vedhost_lua_heap_peak_bytes", "gauge",
                 "Peak bytes held by the Lua state.", s.lua_heap_peak);
  vh_http_metric(&b, "vedhost_domains", "gauge", "Declared domains.",
                 s.domains);
  vh_http_metric(&b, "vedhost_flush_lag_ms", "gauge",
                 "Age of the oldest slice not durable yet.", s.flush_lag_ms);
  vh_http_metric(&b, "vedhost_store_bytes_written_total", "counter",
                 "Bytes handed to the store.", s.bytes_written);
  vh_http_metric(&b, "vedhost_store_accepting", "gauge",
                 "1 while slices start, 0 while they are held (store "
                 "backpressure or stopping).",
                 vh_http_accepting(api, NULL, 0));
  vh_http_metric(&b, "vedhost_boot_ms", "gauge",
                 "Milliseconds from process start to the first slice.",
                 s.boot_ms);
  vh_sbuf_printf(&b,
                 "# HELP vedhost_http_responses_total HTTP responses by "
                 "status code.\n# TYPE vedhost_http_responses_total "
                 "counter\n");
  for (int i = 0; i < VH_HTTP_NCODES; i++) {
    if (vh_http_codes[i])
      vh_sbuf_printf(&b,
                     "vedhost_http_responses_total{code=\"%d\"} %" PRIu64 "\n",
                     vh_http_codes[i], srv->by_code[i]);
    else
      vh_sbuf_printf(
          &b, "vedhost_http_responses_total{code=\"other\"} %" PRIu64 "\n",
          srv->by_code[i]);
  }
  vh_http_metric(&b, "vedhost_http_handler_errors_total", "counter",
                 "POSTs whose handler raised (answered 500).",
                 (int64_t)srv->handler_errors);
  vh_http_metric(&b, "vedhost_http_connections", "gauge",
                 "Open HTTP connections.", (int64_t)srv->nconns);
  vh_http_metric(&b, "vedhost_http_connections_accepted_total", "counter",
                 "HTTP connections accepted.", (int64_t)srv->accepted);
  vh_sbuf_printf(&b,
                 "# HELP vedhost_http_post_seconds Time from a POST's "
                 "dispatch to its durable reply.\n# TYPE "
                 "vedhost_http_post_seconds summary\n"
                 "vedhost_http_post_seconds_sum %.6f\n"
                 "vedhost_http_post_seconds_count %" PRIu64 "\n",
                 srv->post_seconds, srv->posts);
  if (b.oom) {
    free(b.p);
    vh_http_error(c, 500, "out of memory", NULL);
    return;
  }
  vh_http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.n,
                  NULL);
  free(b.p);
}

/* ---- routing ---- */

static int vh_http_hex(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Split the path of url (in place) into percent-decoded segments. The
 * number of segments, or -1 on bad encoding (or a NUL byte), -2 if too
 * many. */
static int vh_http_split(char *url, char **segs) {
  char *q = strchr(url, '?');
  if (q) *q = '\0';
  int n = 0;
  char *p = url;
  while (*p) {
    while (*p == '/') p++;
    if (!*p) break;
    if (n == VH_HTTP_MAX_SEGS) return -2;
    char *seg = p, *w = p;
    while (*p && *p != '/') {
      if (*p == '%') {
        int a = vh_http_hex((unsigned char)p[1]);
        int b = a < 0 ? -1 : vh_http_hex((unsigned char)p[2]);
        if (b < 0 || (a == 0 && b == 0)) return -1;
        *w++ = (char)(a * 16 + b);
        p += 3;
      } else {
        *w++ = *p++;
      }
    }
    if (*p) p++;
    *w = '\0';
    segs[n++] = seg;
  }
  return n;
}

static int64_t vh_http_now_ns(void) {
  return (int64_t)uv_hrtime();
}

static void vh_http_on_reply(void *arg, int status, const char *json,
                             size_t len) {
  vh_http_conn_t *c = arg;
  vh_http_srv_t *srv = c->srv;
  c->busy = 0;
  if (!c->closing) {
    if (status == 0) {
      srv->posts++;
      srv->post_seconds += (double)(vh_http_now_ns() - c->t0_ns) / 1e9;
      vh_http_json(c, 200, json, len);
    } else {
      char msg[1024];
      snprintf(msg, sizeof msg, "%.*s", (int)len, json);
      int code = status == VEDHOST_EHANDLER    ? 500
                 : status == VEDHOST_ESTOPPED  ? 503
                 : status == VEDHOST_ENODOMAIN ? 404
                 : status == VEDHOST_ENOEVENT  ? 404
                 : status == VEDHOST_EREFUSED  ? 503
                                               : 500;
      if (status == VEDHOST_EHANDLER) srv->handler_errors++;
      vh_http_error(c, code, msg, NULL);
    }
    vh_http_pump(c);
  }
  vh_http_conn_unref(c);
}

static void vh_http_post_event(vh_http_conn_t *c, vh_http_req_t *r,
                               const char *dom, const char *ev) {
  const vedhost_api_t *api = c->srv->api;
  char err[512];
  if (!vh_http_accepting(api, err, sizeof err)) {
    vh_http_error(c, 503, err, NULL);
    return;
  }
  c->busy = 1;
  c->refs++;
  c->t0_ns = vh_http_now_ns();
  int rc = api->call(api->host, dom, ev, r->body ? r->body : "", r->blen,
                     vh_http_on_reply, c, err, sizeof err);
  if (rc == 0) return;
  c->busy = 0;
  c->refs--;
  int code = rc == VEDHOST_EJSON       ? 400
             : rc == VEDHOST_ENODOMAIN ? 404
             : rc == VEDHOST_ENOEVENT  ? 404
             : rc == VEDHOST_EREFUSED  ? 503
             : rc == VEDHOST_ESTOPPED  ? 503
                                       : 500;
  vh_http_error(c, code, err, NULL);
}

/* A state read waiting for the output gate: the JSON is taken when the
 * request is served, and sent once every slice it may show is durable. */
typedef struct vh_http_held {
  vh_http_conn_t *c; /* [ref] c->refs counts this */
  char *js;          /* [owned by the host: api->free] */
  size_t n;
} vh_http_held_t;

static void vh_http_on_durable(void *arg, int durable) {
  vh_http_held_t *hd = arg;
  vh_http_conn_t *c = hd->c;
  const vedhost_api_t *api = c->srv->api;
  c->busy = 0;
  if (!c->closing) {
    if (durable)
      vh_http_json(c, 200, hd->js, hd->n);
    else
      vh_http_error(c, 503, "vedhost stopped before the state was durable",
                    NULL);
    vh_http_pump(c);
  }
  api->free(hd->js);
  free(hd);
  vh_http_conn_unref(c);
}

static void vh_http_get_state(vh_http_conn_t *c, char **segs, int nseg) {
  const vedhost_api_t *api = c->srv->api;
  char *js = NULL;
  size_t n = 0;
  int rc = api->read_json(api->host, segs[1], (const char *const *)segs + 3,
                          (size_t)(nseg - 3), &js, &n);
  if (rc == 0) {
    /* Invariant 3: what was read may belong to a slice not yet durable. */
    vh_http_held_t *hd = malloc(sizeof *hd);
    if (hd) {
      hd->c = c;
      hd->js = js;
      hd->n = n;
      c->busy = 1;
      c->refs++;
      if (api->when_durable(api->host, vh_http_on_durable, hd) == 0) return;
      c->busy = 0;
      c->refs--;
      free(hd);
    }
    api->free(js);
    vh_http_error(c, 500, "out of memory", NULL);
    return;
  }
  if (rc == VEDHOST_EJSON) { /* js is the message: 500, naming the path */
    vh_http_error(c, 500, js ? js : "cannot write the state as JSON", NULL);
    api->free(js);
    return;
  }
  char msg[256];
  if (rc == VEDHOST_ENODOMAIN)
    snprintf(msg, sizeof msg, "no domain '%.200s'", segs[1]);
  else if (rc == VEDHOST_ENOTFOUND)
    snprintf(msg, sizeof msg, "no value at that path");
  else if (rc == VEDHOST_EIO)
    snprintf(msg, sizeof msg, "state could not be read from the store");
  else
    snprintf(msg, sizeof msg, "out of memory");
  vh_http_error(c,
                rc == VEDHOST_ENODOMAIN || rc == VEDHOST_ENOTFOUND ? 404 : 500,
                msg, NULL);
}

/* Answer c->head (it stays the head until answered). */
static void vh_http_serve(vh_http_conn_t *c) {
  vh_http_req_t *r = c->head;
  vh_http_srv_t *srv = c->srv;
  if (r->status == 413) {
    vh_http_error(c, 413, "request body too large", NULL);
    return;
  }
  if (r->status) {
    vh_http_error(c, r->status,
                  r->status == 414 ? "URL too long" : "bad HTTP request", NULL);
    return;
  }
  char *segs[VH_HTTP_MAX_SEGS];
  int n = vh_http_split(r->url, segs);
  if (n < 0) {
    vh_http_error(c, n == -1 ? 400 : 404, "bad path", NULL);
    return;
  }
  int get = r->method == HTTP_GET;
  char why[512];
  if (n == 1 && strcmp(segs[0], "healthz") == 0) {
    if (!get) {
      vh_http_error(c, 405, "use GET", "Allow: GET\r\n");
    } else if (!srv->api->running(srv->api->host)) {
      vh_http_json(c, 503, "{\"status\":\"stopping\"}", 21);
    } else if (!vh_http_accepting(srv->api, why, sizeof why)) {
      vh_http_error(c, 503, why, NULL);
    } else {
      vh_http_json(c, 200, "{\"status\":\"ok\"}", 15);
    }
    return;
  }
  if (n == 1 && strcmp(segs[0], "metrics") == 0) {
    if (!get)
      vh_http_error(c, 405, "use GET", "Allow: GET\r\n");
    else
      vh_http_metrics(c);
    return;
  }
  if (n >= 3 && strcmp(segs[0], "domains") == 0 &&
      strcmp(segs[2], "state") == 0) {
    if (!get)
      vh_http_error(c, 405, "use GET", "Allow: GET\r\n");
    else
      vh_http_get_state(c, segs, n);
    return;
  }
  if (n == 4 && strcmp(segs[0], "domains") == 0 &&
      strcmp(segs[2], "events") == 0) {
    if (r->method != HTTP_POST)
      vh_http_error(c, 405, "use POST", "Allow: POST\r\n");
    else
      vh_http_post_event(c, r, segs[1], segs[3]);
    return;
  }
  vh_http_error(c, 404, "no such endpoint", NULL);
}

/* Serve queued requests in order while none is in flight. */
static void vh_http_pump(vh_http_conn_t *c) {
  while (c->head && !c->busy && !c->closing) vh_http_serve(c);
  if (!c->halted && !c->ending && c->nqueued < VH_HTTP_MAX_QUEUE)
    vh_http_read_start(c);
}

/* ---- parsing ---- */

static int vh_http_on_begin(http_parser *p) {
  vh_http_conn_t *c = p->data;
  vh_http_req_free(c->cur);
  c->cur = calloc(1, sizeof *c->cur);
  return c->cur ? 0 : -1;
}

static int vh_http_on_url(http_parser *p, const char *at, size_t len) {
  vh_http_conn_t *c = p->data;
  vh_http_req_t *r = c->cur;
  if (r->status) return 0;
  if (r->ulen + len > VH_HTTP_MAX_URL) {
    r->status = 414;
    return 0;
  }
  char *nu = realloc(r->url, r->ulen + len + 1);
  if (!nu) return -1;
  memcpy(nu + r->ulen, at, len);
  r->ulen += len;
  nu[r->ulen] = '\0';
  r->url = nu;
  return 0;
}

/* Queue c->cur as answered-at-once with status and stop parsing. */
static int vh_http_halt(vh_http_conn_t *c, int status) {
  vh_http_req_t *r = c->cur;
  c->cur = NULL;
  r->status = status;
  r->keep_alive = 0;
  if (c->tail)
    c->tail->next = r;
  else
    c->head = r;
  c->tail = r;
  c->nqueued++;
  c->halted = 1;
  return -1; /* the parser stops here */
}

static int vh_http_on_headers(http_parser *p) {
  vh_http_conn_t *c = p->data;
  if (c->cur->status) return vh_http_halt(c, c->cur->status);
  if (!c->cur->url) return vh_http_halt(c, 400);
  if (p->content_length != ULLONG_MAX && p->content_length > VH_HTTP_MAX_BODY)
    return vh_http_halt(c, 413);
  return 0;
}

static int vh_http_on_body(http_parser *p, const char *at, size_t len) {
  vh_http_conn_t *c = p->data;
  vh_http_req_t *r = c->cur;
  if (r->blen + len > VH_HTTP_MAX_BODY) return vh_http_halt(c, 413);
  if (r->blen + len > r->bcap) {
    size_t nc = r->bcap ? r->bcap : 1024;
    while (nc < r->blen + len) nc *= 2;
    char *nb = realloc(r->body, nc);
    if (!nb) return -1;
    r->body = nb;
    r->bcap = nc;
  }
  memcpy(r->body + r->blen, at, len);
  r->blen += len;
  return 0;
}

static int vh_http_on_complete(http_parser *p) {
  vh_http_conn_t *c = p->data;
  vh_http_req_t *r = c->cur;
  c->cur = NULL;
  r->method = (int)p->method;
  r->keep_alive = http_should_keep_alive(p);
  if (c->tail)
    c->tail->next = r;
  else
    c->head = r;
  c->tail = r;
  c->nqueued++;
  return 0;
}

static void vh_http_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  vh_http_conn_t *c = s->data;
  if (n < 0 || c->discard || c->halted) {
    free(b->base);
    if (n < 0) {
      vh_http_close(c);
    } else if (c->halted && !c->discard && !c->busy && !c->head) {
      vh_http_end(c);
    }
    return;
  }
  if (n > 0) {
    size_t done =
        http_parser_execute(&c->parser, &c->srv->settings, b->base, (size_t)n);
    if (!c->halted && (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK ||
                       done != (size_t)n || c->parser.upgrade)) {
      if (!c->cur) c->cur = calloc(1, sizeof *c->cur);
      if (c->cur)
        vh_http_halt(c, 400);
      else
        c->halted = 1;
    }
  }
  free(b->base);
  if (c->halted || c->nqueued >= VH_HTTP_MAX_QUEUE) vh_http_read_stop(c);
  vh_http_pump(c);
  if (c->halted && !c->head && !c->busy && !c->closing) vh_http_end(c);
}

static void vh_http_on_conn(uv_stream_t *server, int status) {
  vh_http_srv_t *srv = server->data;
  if (status != 0 || srv->stopping) return;
  vh_http_conn_t *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = srv;
  c->refs = 1;
  uv_tcp_init(srv->loop, &c->tcp);
  c->tcp.data = c;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    vh_http_close(c);
    return;
  }
  srv->accepted++;
  uv_tcp_nodelay(&c->tcp, 1);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  vh_http_read_start(c);
}

/* ---- start and stop ---- */

static void vh_http_srv_closed(uv_handle_t *hd) {
  vh_http_srv_t *srv = hd->data;
  srv->open_handles--;
}

static void vh_http_on_deadline(uv_timer_t *t) {
  vh_http_srv_t *srv = t->data;
  srv->deadline_hit = 1;
}

static void vh_http_stop(void *arg) {
  vh_http_srv_t *srv = arg;
  srv->stopping = 1;
  if (srv->listener_open) {
    srv->listener_open = 0;
    uv_close((uv_handle_t *)&srv->listener, vh_http_srv_closed);
  }
  for (vh_http_conn_t *c = srv->conns; c; c = c->next) {
    vh_http_read_stop(c);
    c->halted = 1;
    /* The host sent every durable reply before the stop hooks run, so a
     * call still in flight was not acknowledged: say so. Its callback,
     * when the host frees the call, finds the connection closed. */
    if (c->busy && c->head && !c->closing)
      vh_http_error(c, 503, "vedhost stopped before the call was answered",
                    NULL);
    if (c->writes > 0)
      c->ending = 1; /* vh_http_on_write closes it (stopping) */
    else
      vh_http_close(c);
  }
  uv_timer_init(srv->loop, &srv->deadline);
  srv->deadline.data = srv;
  srv->open_handles++;
  uv_timer_start(&srv->deadline, vh_http_on_deadline, VH_HTTP_STOP_MS, 0);
  while (srv->nconns > 0 && !srv->deadline_hit) uv_run(srv->loop, UV_RUN_ONCE);
  for (vh_http_conn_t *c = srv->conns; c; c = c->next) vh_http_close(c);
  uv_close((uv_handle_t *)&srv->deadline, vh_http_srv_closed);
  /* Only close callbacks are left to run: NOWAIT turns never block. */
  while (srv->nconns > 0 || srv->open_handles > 0)
    uv_run(srv->loop, UV_RUN_NOWAIT);
  free(srv);
}

/* Parse "PORT", ":PORT", "ADDR:PORT" or "[V6]:PORT" into *sa. */
static int vh_http_addr(const char *spec, struct sockaddr_storage *sa,
                        char *host, size_t hcap, int *port) {
  const char *colon = strrchr(spec, ':');
  const char *ps = colon ? colon + 1 : spec;
  char *end;
  errno = 0;
  long p = strtol(ps, &end, 10);
  if (!*ps || *end || errno || p < 0 || p > 65535) return -1;
  *port = (int)p;
  size_t hl = colon ? (size_t)(colon - spec) : 0;
  if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
    spec++;
    hl -= 2;
  }
  if (hl >= hcap) return -1;
  if (hl == 0)
    snprintf(host, hcap, "127.0.0.1");
  else
    snprintf(host, hcap, "%.*s", (int)hl, spec);
  if (uv_ip4_addr(host, *port, (struct sockaddr_in *)sa) == 0) return 0;
  if (uv_ip6_addr(host, *port, (struct sockaddr_in6 *)sa) == 0) return 0;
  return -1;
}

int vh_http_check_addr(const char *addr, char *err, size_t cap) {
  struct sockaddr_storage sa;
  char host[128];
  int port;
  if (vh_http_addr(addr, &sa, host, sizeof host, &port) == 0) return 0;
  snprintf(err, cap,
           "bad --http address '%s' (use PORT, :PORT, ADDR:PORT or "
           "[ADDR]:PORT; PORT is 0 to 65535)",
           addr);
  return VH_PLUGIN_ELOAD;
}

static int vh_http_init(const vedhost_api_t *api, char *err, size_t cap) {
  const char *spec = api->config ? api->config : "";
  struct sockaddr_storage sa;
  char host[128];
  int port;
  memset(&sa, 0, sizeof sa);
  if (vh_http_addr(spec, &sa, host, sizeof host, &port) != 0) {
    snprintf(err, cap,
             "bad --http address '%s' (use PORT, :PORT, ADDR:PORT or "
             "[ADDR]:PORT)",
             spec);
    return -1;
  }
  vh_http_srv_t *srv = calloc(1, sizeof *srv);
  if (!srv) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  srv->api = api;
  srv->loop = api->loop(api->host);
  http_parser_settings_init(&srv->settings);
  srv->settings.on_message_begin = vh_http_on_begin;
  srv->settings.on_url = vh_http_on_url;
  srv->settings.on_headers_complete = vh_http_on_headers;
  srv->settings.on_body = vh_http_on_body;
  srv->settings.on_message_complete = vh_http_on_complete;
  if (api->on_stop(api->host, vh_http_stop, srv) != 0) {
    free(srv);
    snprintf(err, cap, "out of memory");
    return -1;
  }
  /* From here on vh_http_stop frees srv, also after a failure below. */
  uv_tcp_init(srv->loop, &srv->listener);
  srv->listener.data = srv;
  srv->listener_open = 1;
  srv->open_handles++;
  int rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&sa, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 511, vh_http_on_conn);
  if (rc != 0) {
    snprintf(err, cap, "cannot listen on %s:%d: %s (%s)", host, port,
             uv_strerror(rc), uv_err_name(rc));
    return -1;
  }
  struct sockaddr_storage got;
  int glen = sizeof got;
  if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&got, &glen) == 0) {
    port = ntohs(got.ss_family == AF_INET6
                     ? ((struct sockaddr_in6 *)&got)->sin6_port
                     : ((struct sockaddr_in *)&got)->sin_port);
  }
  char line[256];
  snprintf(line, sizeof line, "http: listening on %s%s%s:%d",
           strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
           port);
  api->log(api->host, VEDHOST_LOG_INFO, "vedhost", line);
  return 0;
}

static const vedhost_plugin_abi_t vh_http_abi = {
    VEDHOST_PLUGIN_ABI_MAJOR, VEDHOST_PLUGIN_ABI_MINOR, "http"};

int vh_http_start(vh_host_t *h, const char *addr, char *err, size_t cap) {
  char buf[1024];
  int rc = vh_plugin_add(h, &vh_http_abi, vh_http_init, addr, buf, sizeof buf);
  if (rc != 0) { /* "http: <reason>" rather than the generic plugin line */
    const char *why = strstr(buf, "init failed: ");
    snprintf(err, cap, "http: %s", why ? why + 13 : buf);
  }
  return rc;
}
