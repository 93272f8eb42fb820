/*
 * http.c - the HTTP ingress: events and state of domains over HTTP/1.1,
 * built as a plugin on the public ABI (vedhost/plugin.h) alone: no host
 * header is on this room's include path (plugins/http/CMakeLists.txt).
 * Linked into the executable and started as a built-in plugin by
 * vh_http_start (host/abi/plugin.c) for `vedhost run --http ADDR:PORT`.
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
 *        state (or of the value at that path; 404 if absent), pinned when
 *        the request is served and sent once every slice it may show is
 *        durable (api->when_durable: the output gate). See STREAMING.
 *   GET  /healthz  -> 200 {"status":"ok"} (503 once stopping; 503 with
 *        {"error": reason} while slices are held: api->accepting)
 *   GET  /metrics  -> Prometheus text format 0.0.4
 *   Other paths 404; another method on a known path 405 with Allow.
 *   GET  /domains/{domain}/state[/key...]?at=V  -> the same of retained
 *        version V (a seq, -N, a time, -5m, a mark: README "Versions"),
 *        read through view stubs (api->read_open_at); 404 with the reason
 *        for an unknown version, a time before the oldest retained, a
 *        mark that does not exist, or a domain absent from V.
 *   GET  /changes[?from=SEQ]  -> the change feed (README "Versions"), a
 *        stream that does not end: 200 with Content-Type
 *        application/x-ndjson and chunked transfer encoding, one JSON
 *        object per line per change of every committed version after SEQ
 *        (api->changes, ABI minor 3: {"seq","time","domain","op","path",
 *        "value" | "old","new","n","of"}); without from, the oldest
 *        retained version whole, then each later one. New versions are
 *        polled every VH_HTTP_FEED_MS. 410 Gone with the oldest seq to
 *        resume from when SEQ is past retention, 404 for a seq newer than
 *        the newest, 400 for a from that is not a seq. At stop the stream
 *        ends with its last chunk (a consumer resumes with its last seq),
 *        and so it does when what follows the request cannot be parsed
 *        (reading stops there, so an EOF would go unseen).
 *   Path segments are percent-decoded; the query string is ignored but
 *   for ?at= on a state read and ?from= on /changes.
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
 * LIMITS (the options after the address: `--http ADDR:PORT,OPT=V,...`).
 *   header-timeout (10s)  a request (head and body) must arrive within
 *        this from its first byte, and a new connection must send one
 *        within it: else 408 and close (slowloris).
 *   idle-timeout (60s)    a kept-alive connection with nothing to do is
 *        closed after this; so is one whose client reads nothing of a
 *        pending response for this long.
 *   max-connections       open connections (default: the fd limit, raised
 *        to its hard limit at start, minus a quarter of it (at least 128)
 *        kept for the store, at most 16384). Over it a connection is
 *        accepted, answered 503 if the socket takes it at once, and
 *        closed; logged once per burst (until the count falls to 90%).
 *   max-output (1MB)      bytes of responses queued per connection. While
 *        over it, no next request is served and nothing is read
 *        (pipelined requests wait in the kernel), and a streamed body
 *        stops being produced until the client reads.
 * A sweep timer (a quarter of the shorter timeout, 50 ms..1 s) checks the
 * deadlines; timeouts are counted in /metrics.
 *
 * STREAMING. A GET of state does not encode the value at once (a state of
 * millions of keys would hold the loop for seconds): api->read_open pins
 * the committed version (later slices do not change what is sent), and
 * once when_durable says it may be shown, the connection joins a run
 * queue served by an idle handle: each loop turn writes at most 16 steps
 * (and ~4 ms) over all streaming connections, round robin. The first step
 * takes up to VH_HTTP_FIRST bytes: a value that fits is sent with a
 * Content-Length (and a value that cannot be written, e.g. nested too
 * deep, gets its error status); a bigger one is sent with chunked
 * transfer encoding (HTTP/1.0: unframed, then close) in VH_HTTP_CHUNK
 * steps, each written as soon as it is made, and while the connection is
 * over max-output it leaves the queue until a write completes. An error
 * after the head went out (a node that cannot be read, the host stopping)
 * cuts the connection without the last chunk, so the client sees an
 * incomplete body, never a short one that looks whole.
 *
 * HALF-CLOSE. A client may shutdown(SHUT_WR) after its requests: EOF
 * stops reading, but what was received is answered (a POST's reply once
 * durable), the last response says "Connection: close", and then the
 * connection closes.
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
#include <sys/resource.h>

#include <http_parser.h>

#include <jansson.h>

#include "vedhost/plugin.h"
#include "vh_http.h"

#define VH_HTTP_MAX_BODY ((size_t)1 << 20) /* 1 MiB */
#define VH_HTTP_MAX_URL 8192
#define VH_HTTP_MAX_QUEUE 64
#define VH_HTTP_MAX_SEGS 64
#define VH_HTTP_STOP_MS 2000
#define VH_HTTP_FEED_MS 50 /* change feed: poll for new versions */
#define VH_HTTP_FEED_NS (4 * 1000000ull) /* feed work per loop turn */
#define VH_HTTP_HEADER_MS 10000          /* defaults of the options */
#define VH_HTTP_IDLE_MS 60000
#define VH_HTTP_MAX_OUTPUT ((size_t)1 << 20)
#define VH_HTTP_MAX_CONNS 16384
#define VH_HTTP_LINGER_MS 2000     /* lingering close, at most */
#define VH_HTTP_FIRST (256 * 1024) /* first step of a GET: Content-Length */
#define VH_HTTP_CHUNK (64 * 1024)  /* later steps: one chunk each */
#define VH_HTTP_HEADROOM 512       /* room for a head before a step */
#define VH_HTTP_TURN_STEPS 16      /* steps per loop turn, all streams */
#define VH_HTTP_TURN_NS 4000000    /* and time per loop turn */

/* Response codes counted in /metrics. */
static const int vh_http_codes[] = {200, 400, 404, 405, 408,
                                    413, 414, 500, 503, 0};
#define VH_HTTP_NCODES 10

/* Timeouts counted in /metrics. */
enum { VH_HTTP_TO_HEADER, VH_HTTP_TO_IDLE, VH_HTTP_TO_WRITE, VH_HTTP_NTO };

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
  int http10; /* HTTP/1.0: no chunked transfer encoding */
  int status; /* preset answer (400, 408, 413, 414) or 0 */
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
  int eof;                     /* the client shut its sending side */
  int served;                  /* a request was answered (idle-timeout) */
  size_t out_bytes;            /* bytes in uv_write requests not done */
  uint64_t t_req;       /* ms: first byte of the request being received */
  uint64_t t_active;    /* ms: last read, write or answer */
  uint64_t t_linger;    /* ms: the lingering close began */
  vedhost_reader_t *rd; /* [owned] the GET being streamed (the head) */
  int started;          /* its head went out */
  int chunked;          /* it is sent with chunked transfer encoding */
  int skeep;            /* the connection stays open after it */
  int in_runq;          /* in srv's run queue */
  vh_http_conn_t *rq_next;
  int feed;            /* GET /changes being streamed (head stays) */
  uint64_t feed_after; /* the last seq sent whole */
};

struct vh_http_srv {
  const vedhost_api_t *api; /* [borrowed] */
  uv_loop_t *loop;
  uv_tcp_t listener;
  int listener_open;
  int timers_open;     /* sweep and runner are initialised */
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
  /* limits (the options of --http) */
  uint64_t header_ms, idle_ms;
  size_t max_conns, max_output;
  size_t nlive;     /* connections not closing (the cap counts these) */
  uv_timer_t sweep; /* checks the deadlines */
  uv_idle_t runner; /* runs the streams' steps while runq is not empty */
  vh_http_conn_t *rq_head, *rq_tail; /* streams with room to write */
  size_t streaming;                  /* GETs being streamed now */
  int refusing;                      /* over the cap (logged once) */
  uint64_t refused, refused_burst;   /* connections refused: total, now */
  uint64_t timeouts[VH_HTTP_NTO];
  int accept_failing;    /* accept errors are being logged once */
  uv_timer_t feed_timer; /* polls the change feeds (while feeds > 0) */
  size_t feeds;          /* GET /changes streams open */
};

typedef struct vh_http_write {
  uv_write_t w;
  vh_http_conn_t *c;
  char *buf;  /* [owned] */
  size_t len; /* bytes written (counted in c->out_bytes) */
} vh_http_write_t;

static void vh_http_pump(vh_http_conn_t *c);
static void vh_http_runq_add(vh_http_conn_t *c);
static void vh_http_runq_del(vh_http_conn_t *c);
static void vh_http_on_run(uv_idle_t *idle);
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

static uint64_t vh_http_ms(const vh_http_srv_t *srv) {
  return uv_now(srv->loop);
}

static void vh_http_log(vh_http_srv_t *srv, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void vh_http_log(vh_http_srv_t *srv, int level, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  srv->api->log(srv->api->host, level, "http", line);
}

/* The stream of c ends (done, failed or cut): release the reader. */
static void vh_http_stream_end(vh_http_conn_t *c) {
  if (!c->rd) return;
  vh_http_runq_del(c);
  c->srv->api->read_close(c->rd);
  c->rd = NULL;
  if (c->started) c->srv->streaming--;
  c->started = 0;
}

static void vh_http_close(vh_http_conn_t *c) {
  if (c->closing) return;
  vh_http_srv_t *srv = c->srv;
  c->closing = 1;
  vh_http_stream_end(c);
  if (c->feed) {
    c->feed = 0;
    srv->feeds--;
  }
  srv->nlive--;
  if (srv->refusing && srv->nlive * 10 <= srv->max_conns * 9) {
    srv->refusing = 0;
    vh_http_log(srv, VEDHOST_LOG_INFO,
                "below the connection limit again; %" PRIu64
                " connection(s) were refused",
                srv->refused_burst);
  }
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
  c->t_linger = vh_http_ms(c->srv);
  if (c->eof)
    vh_http_close(c); /* nothing more can come */
  else
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
  c->out_bytes -= wr->len;
  free(wr->buf);
  free(wr);
  c->writes--;
  c->t_active = vh_http_ms(c->srv);
  if (status != 0) {
    vh_http_close(c);
    return;
  }
  if (c->ending) {
    if (c->writes == 0) vh_http_end(c);
    return;
  }
  if (c->closing || c->out_bytes >= c->srv->max_output) return;
  if (c->rd)
    vh_http_runq_add(c); /* room again: the stream goes on */
  else
    vh_http_pump(c);
}

/* Queue len bytes at buf [stolen] (base [stolen] is what to free, buf
 * points into it) on c. 0, or -1 with the connection closed. */
static int vh_http_send(vh_http_conn_t *c, char *base, char *buf, size_t len) {
  vh_http_write_t *wr = malloc(sizeof *wr);
  if (!wr) {
    free(base);
    vh_http_close(c);
    return -1;
  }
  wr->c = c;
  wr->buf = base;
  wr->len = len;
  uv_buf_t ub = uv_buf_init(buf, (unsigned)len);
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &ub, 1, vh_http_on_write) != 0) {
    free(base);
    free(wr);
    vh_http_close(c);
    return -1;
  }
  c->writes++;
  c->out_bytes += len;
  return 0;
}

/* Pop the head request (answered). Returns 1 when the connection stays
 * open for more (keep-alive), 0 when this is its last response. *keep
 * (may be NULL): the request allowed keep-alive. */
static int vh_http_pop(vh_http_conn_t *c, int *keep) {
  vh_http_req_t *r = c->head;
  int k = r && r->keep_alive && !r->status && !c->srv->stopping;
  if (r) {
    c->head = r->next;
    if (!c->head) c->tail = NULL;
    c->nqueued--;
    vh_http_req_free(r);
  }
  c->served = 1;
  c->t_active = vh_http_ms(c->srv);
  if (keep) *keep = k;
  /* after EOF: the last response is the one with nothing queued behind */
  return k && !(c->eof && !c->head);
}

/* After the last response (more == 0): answer nothing more, end. */
static void vh_http_last(vh_http_conn_t *c, int keep) {
  if (!keep) {
    while (c->head) {
      vh_http_req_t *q = c->head;
      c->head = q->next;
      vh_http_req_free(q);
    }
    c->tail = NULL;
    c->nqueued = 0;
  }
  c->halted = 1;
  vh_http_end(c);
}

/* Write the response of the head request and pop it. body [borrowed]. */
static void vh_http_respond(vh_http_conn_t *c, int status, const char *ctype,
                            const char *body, size_t blen, const char *extra) {
  vh_http_srv_t *srv = c->srv;
  int keep;
  int more = vh_http_pop(c, &keep);
  vh_http_count(srv, status);
  if (c->closing) return;
  const char *reason = http_status_str((enum http_status)status);
  char hdr[512];
  int hl = snprintf(hdr, sizeof hdr,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\n%sConnection: %s\r\n\r\n",
                    status, reason, ctype, blen, extra ? extra : "",
                    more ? "keep-alive" : "close");
  char *buf = malloc((size_t)hl + blen);
  if (!buf) {
    vh_http_close(c);
    return;
  }
  memcpy(buf, hdr, (size_t)hl);
  if (blen) memcpy(buf + hl, body, blen);
  if (vh_http_send(c, buf, buf, (size_t)hl + blen) != 0) return;
  if (!more) vh_http_last(c, keep);
}

static void vh_http_json(vh_http_conn_t *c, int status, const char *body,
                         size_t blen) {
  vh_http_respond(c, status, "application/json", body, blen, NULL);
}

/* A byte string as valid UTF-8 [new, malloc'ed]: each byte of a bad
 * sequence becomes U+FFFD, as vh_jstream does for state strings (jansson
 * refuses bad UTF-8). NULL when out of memory. */
static char *vh_http_utf8(const char *msg) {
  const unsigned char *p = (const unsigned char *)msg;
  size_t n = strlen(msg), i = 0, o = 0;
  char *out = malloc(3 * n + 1);
  if (!out) return NULL;
  while (i < n) {
    unsigned c = p[i];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len > n - i) len = 0;
    for (size_t k = 1; k < len; k++) {
      unsigned lo = 0x80, hi = 0xBF;
      if (k == 1 && c == 0xE0) lo = 0xA0; /* overlong */
      if (k == 1 && c == 0xED) hi = 0x9F; /* surrogate */
      if (k == 1 && c == 0xF0) lo = 0x90; /* overlong */
      if (k == 1 && c == 0xF4) hi = 0x8F; /* past U+10FFFF */
      if (p[i + k] < lo || p[i + k] > hi) len = 0;
    }
    if (len == 0) {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, p + i, len);
      o += len;
      i += len;
    }
  }
  out[o] = '\0';
  return out;
}

/* {"error": msg} as jansson's compact dump [new], or NULL. */
static char *vh_http_error_json(const char *msg) {
  char *clean = vh_http_utf8(msg);
  json_t *o = clean ? json_pack("{s:s}", "error", clean) : NULL;
  free(clean);
  char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return js;
}

static void vh_http_error(vh_http_conn_t *c, int status, const char *msg,
                          const char *extra) {
  char *js = vh_http_error_json(msg);
  if (!js) {
    vh_http_respond(c, 500, "text/plain", "out of memory\n", 14, NULL);
    return;
  }
  vh_http_respond(c, status, "application/json", js, strlen(js), extra);
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
  vh_http_metric(&b, "vedhost_http_connection_limit", "gauge",
                 "Open HTTP connections allowed (max-connections).",
                 (int64_t)srv->max_conns);
  vh_http_metric(&b, "vedhost_http_connections_refused_total", "counter",
                 "HTTP connections closed at once: over max-connections.",
                 (int64_t)srv->refused);
  vh_http_metric(&b, "vedhost_http_streaming_responses", "gauge",
                 "GET responses being written in steps now.",
                 (int64_t)srv->streaming);
  vh_sbuf_printf(&b,
                 "# HELP vedhost_http_timeouts_total HTTP connections closed "
                 "by a timeout.\n# TYPE vedhost_http_timeouts_total counter\n"
                 "vedhost_http_timeouts_total{kind=\"header\"} %" PRIu64
                 "\n"
                 "vedhost_http_timeouts_total{kind=\"idle\"} %" PRIu64
                 "\n"
                 "vedhost_http_timeouts_total{kind=\"write\"} %" PRIu64 "\n",
                 srv->timeouts[VH_HTTP_TO_HEADER],
                 srv->timeouts[VH_HTTP_TO_IDLE],
                 srv->timeouts[VH_HTTP_TO_WRITE]);
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

/* A state read waiting for the output gate: the version is pinned when
 * the request is served, and written once every slice it may show is
 * durable. */
typedef struct vh_http_held {
  vh_http_conn_t *c;    /* [ref] c->refs counts this */
  vedhost_reader_t *rd; /* [owned] until handed to c */
} vh_http_held_t;

static void vh_http_on_durable(void *arg, int durable) {
  vh_http_held_t *hd = arg;
  vh_http_conn_t *c = hd->c;
  const vedhost_api_t *api = c->srv->api;
  if (!c->closing && !c->ending && durable) {
    c->rd = hd->rd; /* c->busy stays set: the stream answers the head */
    c->started = 0;
    vh_http_runq_add(c);
  } else {
    api->read_close(hd->rd);
    c->busy = 0;
    if (!c->closing && !c->ending) {
      vh_http_error(c, 503, "vedhost stopped before the state was durable",
                    NULL);
      vh_http_pump(c);
    }
  }
  free(hd);
  vh_http_conn_unref(c);
}

/* The status and message of a reader's error code. */
static int vh_http_read_status(vh_http_srv_t *srv, vedhost_reader_t *rd, int rc,
                               char *msg, size_t cap) {
  const char *why = rd ? srv->api->read_error(rd) : "";
  switch (rc) {
    case VEDHOST_EIO:
      snprintf(msg, cap, "state could not be read from the store%s%s",
               *why ? ": " : "", why);
      return 500;
    case VEDHOST_EJSON:
      snprintf(msg, cap, "%s", why);
      return 500;
    case VEDHOST_ESTOPPED:
      snprintf(msg, cap, "vedhost is stopping");
      return 503;
    default:
      snprintf(msg, cap, "out of memory");
      return 500;
  }
}

/* The value of query parameter name in q (the text after '?', or NULL),
 * percent-decoded ('+' is a space) into out (cap bytes): 1, 0 if absent,
 * -1 if badly encoded or longer than cap - 1. */
static int vh_http_query(const char *q, const char *name, char *out,
                         size_t cap) {
  size_t nl = strlen(name);
  while (q && *q) {
    const char *end = strchr(q, '&');
    if (!end) end = q + strlen(q);
    if ((size_t)(end - q) > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
      size_t n = 0;
      for (const char *p = q + nl + 1; p < end; p++) {
        int ch = (unsigned char)*p;
        if (ch == '%') {
          int a = p + 2 < end ? vh_http_hex((unsigned char)p[1]) : -1;
          int b = a < 0 ? -1 : vh_http_hex((unsigned char)p[2]);
          if (b < 0 || (a == 0 && b == 0)) return -1;
          ch = a * 16 + b;
          p += 2;
        } else if (ch == '+') {
          ch = ' ';
        }
        if (n + 1 >= cap) return -1;
        out[n++] = (char)ch;
      }
      out[n] = '\0';
      return 1;
    }
    q = *end ? end + 1 : end;
  }
  return 0;
}

/* GET /domains/D/state[/PATH][?at=V]: the committed value, or (with at)
 * the value at retained version V (api->read_open_at, ABI minor 3). */
static void vh_http_get_state(vh_http_conn_t *c, char **segs, int nseg,
                              const char *query) {
  const vedhost_api_t *api = c->srv->api;
  vedhost_reader_t *rd = NULL;
  char at[256], why[512] = "";
  int has_at = vh_http_query(query, "at", at, sizeof at);
  if (has_at < 0) {
    vh_http_error(c, 400, "bad ?at= value", NULL);
    return;
  }
  int rc =
      has_at
          ? api->read_open_at(api->host, segs[1], (const char *const *)segs + 3,
                              (size_t)(nseg - 3), at, &rd, why, sizeof why)
          : api->read_open(api->host, segs[1], (const char *const *)segs + 3,
                           (size_t)(nseg - 3), &rd);
  if (rc == 0) {
    /* Invariant 3: what was pinned may belong to a slice not yet durable. */
    vh_http_held_t *hd = malloc(sizeof *hd);
    if (hd) {
      hd->c = c;
      hd->rd = rd;
      c->busy = 1;
      c->refs++;
      if (api->when_durable(api->host, vh_http_on_durable, hd) == 0) return;
      c->busy = 0;
      c->refs--;
      free(hd);
    }
    api->read_close(rd);
    vh_http_error(c, 500, "out of memory", NULL);
    return;
  }
  char msg[600];
  int code = 404;
  if (has_at && why[0] && (rc == VEDHOST_ENODOMAIN || rc == VEDHOST_ENOTFOUND))
    snprintf(msg, sizeof msg, "%s", why); /* names the version */
  else if (rc == VEDHOST_ENODOMAIN)
    snprintf(msg, sizeof msg, "no domain '%.200s'", segs[1]);
  else if (rc == VEDHOST_ENOTFOUND)
    snprintf(msg, sizeof msg, "no value at that path");
  else
    code = vh_http_read_status(c->srv, NULL, rc, msg, sizeof msg);
  vh_http_error(c, code, msg, NULL);
}

/* ---- streaming (see STREAMING) ---- */

static void vh_http_runq_add(vh_http_conn_t *c) {
  vh_http_srv_t *srv = c->srv;
  if (c->in_runq || c->closing || !c->rd) return;
  c->in_runq = 1;
  c->rq_next = NULL;
  if (srv->rq_tail)
    srv->rq_tail->rq_next = c;
  else
    srv->rq_head = c;
  srv->rq_tail = c;
  uv_idle_start(&srv->runner, vh_http_on_run);
}

static void vh_http_runq_del(vh_http_conn_t *c) {
  vh_http_srv_t *srv = c->srv;
  if (!c->in_runq) return;
  vh_http_conn_t **pp = &srv->rq_head, *prev = NULL;
  while (*pp != c) {
    prev = *pp;
    pp = &(*pp)->rq_next;
  }
  *pp = c->rq_next;
  if (srv->rq_tail == c) srv->rq_tail = prev;
  c->in_runq = 0;
  c->rq_next = NULL;
}

/* The stream failed after its head went out: cut the connection. */
static void vh_http_stream_cut(vh_http_conn_t *c, int rc) {
  char msg[512];
  vh_http_read_status(c->srv, c->rd, rc, msg, sizeof msg);
  vh_http_log(c->srv, VEDHOST_LOG_WARN,
              "GET of state cut after it began (the client sees an "
              "incomplete body): %s",
              msg);
  vh_http_close(c);
}

/* One step of c's stream: up to VH_HTTP_FIRST bytes the first time (and
 * the whole answer when the value fits), VH_HTTP_CHUNK later. */
static void vh_http_step(vh_http_conn_t *c) {
  vh_http_srv_t *srv = c->srv;
  const vedhost_api_t *api = srv->api;
  size_t want = c->started ? VH_HTTP_CHUNK : VH_HTTP_FIRST;
  char *base = malloc(VH_HTTP_HEADROOM + want + 16);
  if (!base) {
    vh_http_close(c);
    return;
  }
  char *data = base + VH_HTTP_HEADROOM;
  size_t got = 0;
  int rc = 1;
  while (rc == 1 && got < want) {
    size_t n = 0;
    rc = api->read_next(c->rd, data + got, want - got, &n);
    got += n;
  }
  if (rc < 0) {
    if (c->started) {
      free(base);
      vh_http_stream_cut(c, rc);
      return;
    }
    char msg[512];
    int code = vh_http_read_status(srv, c->rd, rc, msg, sizeof msg);
    free(base);
    vh_http_stream_end(c);
    c->busy = 0;
    vh_http_error(c, code, msg, NULL);
    vh_http_pump(c);
    return;
  }
  if (!c->started && rc == 0) { /* it fits: one plain response */
    vh_http_stream_end(c);
    c->busy = 0;
    vh_http_json(c, 200, data, got);
    free(base);
    vh_http_pump(c);
    return;
  }
  char pre[256];
  size_t pl = 0;
  if (!c->started) {
    vh_http_req_t *r = c->head;
    c->chunked = !r->http10;
    c->skeep =
        c->chunked && r->keep_alive && !srv->stopping && !(c->eof && !r->next);
    pl = (size_t)snprintf(pre, sizeof pre,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json"
                          "\r\n%sConnection: %s\r\n\r\n",
                          c->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                          c->skeep ? "keep-alive" : "close");
    c->started = 1;
    srv->streaming++;
    vh_http_count(srv, 200);
  }
  if (c->chunked && got)
    pl += (size_t)snprintf(pre + pl, sizeof pre - pl, "%zx\r\n", got);
  char *out = data - pl;
  memcpy(out, pre, pl);
  size_t len = pl + got;
  if (c->chunked && got) {
    memcpy(out + len, "\r\n", 2);
    len += 2;
  }
  if (c->chunked && rc == 0) {
    memcpy(out + len, "0\r\n\r\n", 5);
    len += 5;
  }
  if (len == 0)
    free(base);
  else if (vh_http_send(c, base, out, len) != 0)
    return;
  if (rc == 1) {
    if (c->out_bytes < srv->max_output) vh_http_runq_add(c);
    return; /* else vh_http_on_write brings it back */
  }
  /* the text is complete */
  int keep = c->skeep;
  vh_http_stream_end(c);
  c->busy = 0;
  int more = vh_http_pop(c, NULL) && keep;
  if (!more)
    vh_http_last(c, keep);
  else
    vh_http_pump(c);
}

static void vh_http_on_run(uv_idle_t *idle) {
  vh_http_srv_t *srv = idle->data;
  uint64_t t0 = uv_hrtime();
  for (int n = 0; srv->rq_head && n < VH_HTTP_TURN_STEPS; n++) {
    vh_http_conn_t *c = srv->rq_head;
    vh_http_runq_del(c);
    c->refs++; /* a step may close it */
    vh_http_step(c);
    vh_http_conn_unref(c);
    if (uv_hrtime() - t0 > VH_HTTP_TURN_NS) break;
  }
  if (!srv->rq_head) uv_idle_stop(idle);
}

/* ---- the change feed (GET /changes, see ENDPOINTS) ---- */

#define VH_HTTP_FEED_HEAD 64          /* room for the head or a chunk size */
#define VH_HTTP_FEED_MAX (256 * 1024) /* bytes of lines per write */

typedef struct vh_http_fbuf {
  char *p; /* [owned] VH_HTTP_FEED_HEAD bytes of headroom, then lines */
  size_t len, cap;
  int oom;
} vh_http_fbuf_t;

static int vh_http_feed_line(void *arg, const char *line, size_t len) {
  vh_http_fbuf_t *b = arg;
  if (b->len + len + 8 > b->cap) {
    size_t nc = (b->cap ? 2 * b->cap : 16384) + len + 8;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return 1;
    }
    b->p = np;
    b->cap = nc;
  }
  if (b->len == 0) b->len = VH_HTTP_FEED_HEAD;
  memcpy(b->p + b->len, line, len);
  b->p[b->len + len] = '\n';
  b->len += len + 1;
  return 0;
}

/* Send the lines in b [stolen] as one chunk (after the head, the first
 * time). 0, or -1 with the connection closed. */
static int vh_http_feed_send(vh_http_conn_t *c, vh_http_fbuf_t *b, int first) {
  char pre[VH_HTTP_FEED_HEAD + 256];
  size_t pl = 0, body = b->len ? b->len - VH_HTTP_FEED_HEAD : 0;
  int chunked = !c->head->http10;
  if (first)
    pl = (size_t)snprintf(pre, sizeof pre,
                          "HTTP/1.1 200 OK\r\nContent-Type: "
                          "application/x-ndjson\r\nCache-Control: no-cache\r\n"
                          "%sConnection: close\r\n\r\n",
                          chunked ? "Transfer-Encoding: chunked\r\n" : "");
  if (chunked && body)
    pl += (size_t)snprintf(pre + pl, sizeof pre - pl, "%zx\r\n", body);
  if (pl == 0 && body == 0) {
    free(b->p);
    return 0;
  }
  if (body == 0) { /* the head alone */
    char *h = malloc(pl);
    free(b->p);
    if (!h) {
      vh_http_close(c);
      return -1;
    }
    memcpy(h, pre, pl);
    return vh_http_send(c, h, h, pl);
  }
  /* The head goes as its own write when it does not fit the headroom. */
  if (pl > VH_HTTP_FEED_HEAD) {
    char *h = malloc(pl);
    if (h) memcpy(h, pre, pl);
    if (!h || vh_http_send(c, h, h, pl) != 0) {
      if (!h) vh_http_close(c);
      free(b->p);
      return -1;
    }
    pl = 0;
  }
  char *out = b->p + VH_HTTP_FEED_HEAD - pl;
  memcpy(out, pre, pl);
  size_t len = pl + body;
  if (chunked) {
    memcpy(out + len, "\r\n", 2);
    len += 2;
  }
  return vh_http_send(c, b->p, out, len);
}

/* Poll c's feed for up to VH_HTTP_FEED_NS and send what came. Returns 1
 * when more versions are waiting, 0 when caught up, -1 when c ended. */
static int vh_http_feed_pump(vh_http_conn_t *c, int first) {
  vh_http_srv_t *srv = c->srv;
  const vedhost_api_t *api = srv->api;
  vh_http_fbuf_t b = {NULL, 0, 0, 0};
  char why[512] = "";
  uint64_t t0 = uv_hrtime();
  int rc;
  for (;;) {
    uint64_t last = c->feed_after;
    rc = api->changes(api->host, c->feed_after, 8, vh_http_feed_line, &b, &last,
                      why, sizeof why);
    c->feed_after = last;
    if (rc <= 0 || b.oom || b.len >= VH_HTTP_FEED_MAX ||
        uv_hrtime() - t0 > VH_HTTP_FEED_NS)
      break;
  }
  if (b.oom || rc < 0) {
    free(b.p);
    if (first) {
      int code = b.oom                      ? 500
                 : rc == VEDHOST_ESTOPPED   ? 503
                 : rc != VEDHOST_ENOTFOUND  ? 500
                 : strstr(why, "retention") ? 410
                                            : 404;
      c->feed = 0;
      srv->feeds--;
      c->busy = 0;
      vh_http_error(c, code, b.oom ? "out of memory" : why, NULL);
      vh_http_pump(c);
    } else {
      vh_http_log(srv, VEDHOST_LOG_WARN,
                  "GET /changes cut (the consumer resumes with its last "
                  "seq): %s",
                  b.oom ? "out of memory" : why);
      vh_http_close(c);
    }
    return -1;
  }
  if (first) vh_http_count(srv, 200);
  if (vh_http_feed_send(c, &b, first) != 0) return -1;
  return rc == 1 || (b.len >= VH_HTTP_FEED_MAX) ? 1 : 0;
}

/* Ends c's feed: its last chunk (HTTP/1.1; an HTTP/1.0 stream ends with
 * the connection) is queued. 0, or -1 with the connection closed. */
static int vh_http_feed_last_chunk(vh_http_conn_t *c) {
  c->feed = 0;
  c->srv->feeds--;
  char *z = c->head->http10 ? NULL : strdup("0\r\n\r\n");
  return z ? vh_http_send(c, z, z, 5) : 0;
}

static void vh_http_on_feed(uv_timer_t *t) {
  vh_http_srv_t *srv = t->data;
  int more = 0;
  for (vh_http_conn_t *c = srv->conns, *next; c; c = next) {
    next = c->next;
    if (!c->feed || c->closing) continue;
    if (c->eof) { /* the consumer went away */
      vh_http_close(c);
      continue;
    }
    if (c->halted) { /* what came after GET /changes could not be parsed:
                        reading stopped there (so an EOF would go unseen),
                        and nothing is answered after the feed. It ends
                        with its last chunk, then the connection. */
      if (vh_http_feed_last_chunk(c) != 0) continue;
      vh_http_end(c);
      continue;
    }
    if (c->out_bytes >= srv->max_output) continue; /* it does not read */
    c->refs++;
    next = c->next;
    if (vh_http_feed_pump(c, 0) == 1) more = 1;
    vh_http_conn_unref(c);
  }
  if (srv->feeds > 0)
    uv_timer_start(&srv->feed_timer, vh_http_on_feed,
                   more ? 0 : VH_HTTP_FEED_MS, 0);
}

/* GET /changes[?from=SEQ]. */
static void vh_http_get_changes(vh_http_conn_t *c, const char *query) {
  vh_http_srv_t *srv = c->srv;
  char from[64];
  uint64_t after = 0;
  int has = vh_http_query(query, "from", from, sizeof from);
  if (has != 0) {
    char *end = NULL;
    errno = 0;
    after = has > 0 && from[0] >= '0' && from[0] <= '9'
                ? strtoull(from, &end, 10)
                : 0;
    if (has < 0 || !end || *end || errno || after == 0) {
      vh_http_error(c, 400,
                    "?from= must be the seq of a version (the last one the "
                    "consumer applied); leave it out to start from the "
                    "oldest retained version",
                    NULL);
      return;
    }
  }
  c->feed = 1;
  c->feed_after = after;
  c->busy = 1;
  srv->feeds++;
  c->refs++;
  int rc = vh_http_feed_pump(c, 1);
  if (rc >= 0 && c->feed && !c->closing && srv->timers_open &&
      !uv_is_active((uv_handle_t *)&srv->feed_timer))
    uv_timer_start(&srv->feed_timer, vh_http_on_feed,
                   rc == 1 ? 0 : VH_HTTP_FEED_MS, 0);
  vh_http_conn_unref(c);
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
                  r->status == 414   ? "URL too long"
                  : r->status == 408 ? "the request did not arrive in time"
                                     : "bad HTTP request",
                  NULL);
    return;
  }
  char *segs[VH_HTTP_MAX_SEGS];
  /* The query stays readable after the split ends the path at '?'. */
  const char *query = strchr(r->url, '?');
  if (query) query++;
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
      vh_http_get_state(c, segs, n, query);
    return;
  }
  if (n == 1 && strcmp(segs[0], "changes") == 0) {
    if (!get)
      vh_http_error(c, 405, "use GET", "Allow: GET\r\n");
    else
      vh_http_get_changes(c, query);
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
  size_t max = c->srv->max_output;
  while (c->head && !c->busy && !c->closing && !c->ending && c->out_bytes < max)
    vh_http_serve(c);
  if (c->closing || c->ending) return;
  if (!c->halted && !c->eof && c->nqueued < VH_HTTP_MAX_QUEUE &&
      c->out_bytes < max)
    vh_http_read_start(c);
  else
    vh_http_read_stop(c);
  /* after EOF (or a halt), end once everything received is answered */
  if ((c->eof || c->halted) && !c->head && !c->busy && !c->rd) vh_http_end(c);
}

/* ---- parsing ---- */

static int vh_http_on_begin(http_parser *p) {
  vh_http_conn_t *c = p->data;
  if (!c->t_req) c->t_req = vh_http_ms(c->srv);
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
  r->http10 = p->http_major < 1 || (p->http_major == 1 && p->http_minor == 0);
  c->t_req = 0;
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
  free(n > 0 ? NULL : b->base); /* freed below when there is data */
  if (n == 0) return;
  if (n < 0) {
    if (n != UV_EOF || c->discard) {
      vh_http_close(c);
      return;
    }
    /* EOF: the client may still read (shutdown(SHUT_WR)). Answer what was
     * received, then close. A request cut by the EOF is dropped. */
    c->eof = 1;
    vh_http_read_stop(c);
    vh_http_req_free(c->cur);
    c->cur = NULL;
    c->t_req = 0;
    if (!c->head && !c->busy && !c->rd && c->writes == 0)
      vh_http_close(c);
    else
      vh_http_pump(c);
    return;
  }
  c->t_active = vh_http_ms(c->srv);
  if (c->discard || c->halted) {
    free(b->base);
    if (c->halted && !c->discard && !c->busy && !c->head) vh_http_end(c);
    return;
  }
  if (!c->t_req) c->t_req = c->t_active; /* the header deadline runs */
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
  free(b->base);
  if (c->halted || c->nqueued >= VH_HTTP_MAX_QUEUE) vh_http_read_stop(c);
  vh_http_pump(c);
  if (c->halted && !c->head && !c->busy && !c->closing) vh_http_end(c);
}

/* Refuse a connection over the cap: a best-effort 503, then close. */
static void vh_http_refuse(vh_http_conn_t *c) {
  vh_http_srv_t *srv = c->srv;
  static const char resp[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Content-Length: 44\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
      "{\"error\":\"too many connections, try again\"}";
  uv_buf_t ub = uv_buf_init((char *)resp, sizeof resp - 1);
  uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
  srv->refused++;
  srv->refused_burst++;
  if (!srv->refusing) {
    srv->refusing = 1;
    srv->refused_burst = 1;
    vh_http_log(srv, VEDHOST_LOG_WARN,
                "%zu connections open: at the limit (max-connections=%zu); "
                "new connections are answered 503 and closed until the "
                "count falls to 90%% of it",
                srv->nlive - 1, srv->max_conns);
  }
  vh_http_close(c);
}

static void vh_http_on_conn(uv_stream_t *server, int status) {
  vh_http_srv_t *srv = server->data;
  if (status != 0) {
    if (!srv->accept_failing) /* libuv's EMFILE trick drops the peer */
      vh_http_log(srv, VEDHOST_LOG_WARN,
                  "cannot accept a connection: %s (%s); logged once",
                  uv_strerror(status), uv_err_name(status));
    srv->accept_failing = 1;
    return;
  }
  if (srv->stopping) return;
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
  srv->nlive++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    vh_http_close(c);
    return;
  }
  srv->accept_failing = 0;
  if (srv->nlive > srv->max_conns) {
    vh_http_refuse(c);
    return;
  }
  srv->accepted++;
  c->t_active = vh_http_ms(srv);
  uv_tcp_nodelay(&c->tcp, 1);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  vh_http_read_start(c);
}

/* ---- deadlines ---- */

/* A request took too long to arrive: 408 when nothing else is owed, then
 * close; else close at once. */
static void vh_http_header_timeout(vh_http_conn_t *c) {
  c->srv->timeouts[VH_HTTP_TO_HEADER]++;
  c->t_req = 0;
  if (c->head || c->busy || c->rd || c->writes > 0 || c->halted) {
    vh_http_close(c);
    return;
  }
  vh_http_req_free(c->cur);
  c->cur = calloc(1, sizeof *c->cur);
  if (!c->cur) {
    vh_http_close(c);
    return;
  }
  vh_http_halt(c, 408);
  vh_http_read_stop(c);
  vh_http_pump(c);
}

static void vh_http_check(vh_http_conn_t *c, uint64_t now) {
  vh_http_srv_t *srv = c->srv;
  if (c->closing) return;
  if (c->discard) { /* lingering close */
    if (now - c->t_linger >= VH_HTTP_LINGER_MS) vh_http_close(c);
    return;
  }
  if (c->t_req && now - c->t_req >= srv->header_ms) {
    vh_http_header_timeout(c);
  } else if (c->writes > 0) { /* the client does not read */
    if (now - c->t_active >= srv->idle_ms) {
      srv->timeouts[VH_HTTP_TO_WRITE]++;
      vh_http_close(c);
    }
  } else if (!c->head && !c->busy && !c->rd && !c->ending && !c->t_req) {
    uint64_t limit = c->served ? srv->idle_ms : srv->header_ms;
    if (now - c->t_active >= limit) {
      srv->timeouts[c->served ? VH_HTTP_TO_IDLE : VH_HTTP_TO_HEADER]++;
      vh_http_close(c);
    }
  }
}

static void vh_http_on_sweep(uv_timer_t *t) {
  vh_http_srv_t *srv = t->data;
  uint64_t now = vh_http_ms(srv);
  vh_http_conn_t *c = srv->conns;
  while (c) {
    vh_http_conn_t *next = c->next; /* c stays listed until its close cb */
    c->refs++;
    vh_http_check(c, now);
    vh_http_conn_unref(c);
    c = next;
  }
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
  if (srv->timers_open) {
    srv->timers_open = 0;
    uv_close((uv_handle_t *)&srv->sweep, vh_http_srv_closed);
    uv_close((uv_handle_t *)&srv->runner, vh_http_srv_closed);
    uv_close((uv_handle_t *)&srv->feed_timer, vh_http_srv_closed);
  }
  for (vh_http_conn_t *c = srv->conns; c; c = c->next) {
    vh_http_read_stop(c);
    c->halted = 1;
    if (c->feed && !c->closing) { /* end the feed with its last chunk */
      if (vh_http_feed_last_chunk(c) != 0) continue;
      if (c->writes > 0)
        c->ending = 1;
      else
        vh_http_close(c);
      continue;
    }
    if (c->rd && c->started) { /* a body cut short: say so by closing */
      vh_http_close(c);
      continue;
    }
    vh_http_stream_end(c); /* the host cut its reader: 503 below */
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

/* The options of --http (see LIMITS). */
typedef struct vh_http_opts {
  uint64_t header_ms, idle_ms;
  size_t max_conns, max_output; /* 0: default */
} vh_http_opts_t;

/* "10s", "500ms", "2m", "10" (seconds) -> ms; -1 if bad. */
static int64_t vh_http_dur(const char *v) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || !(x > 0)) return -1;
  double mul = 1000;
  if (strcmp(end, "ms") == 0)
    mul = 1;
  else if (strcmp(end, "m") == 0)
    mul = 60000;
  else if (*end && strcmp(end, "s") != 0)
    return -1;
  x *= mul;
  return x >= 1 && x <= 86400000.0 ? (int64_t)x : -1;
}

/* "1MB", "512KB", "4096" (bytes), or a plain count; 0 if bad. */
static size_t vh_http_size(const char *v, int units) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || end == v || *v == '-' || x == 0) return 0;
  unsigned long long mul = 1;
  if (units && (strcmp(end, "KB") == 0 || strcmp(end, "kB") == 0))
    mul = 1024;
  else if (units && strcmp(end, "MB") == 0)
    mul = 1024 * 1024;
  else if (units && strcmp(end, "GB") == 0)
    mul = 1024ULL * 1024 * 1024;
  else if (*end)
    return 0;
  if (x > (1ULL << 40) / mul) return 0;
  return (size_t)(x * mul);
}

/* Parse ",opt=value..." (after the address) into o. */
static int vh_http_parse_opts(const char *s, vh_http_opts_t *o, char *err,
                              size_t cap) {
  while (s && *s == ',') {
    s++;
    const char *end = strchr(s, ',');
    size_t n = end ? (size_t)(end - s) : strlen(s);
    char kv[128];
    if (n >= sizeof kv) n = sizeof kv - 1;
    memcpy(kv, s, n);
    kv[n] = '\0';
    s = end;
    char *v = strchr(kv, '=');
    if (v) *v++ = '\0';
    int ok = v != NULL;
    if (ok && strcmp(kv, "header-timeout") == 0) {
      int64_t ms = vh_http_dur(v);
      ok = ms > 0;
      o->header_ms = (uint64_t)ms;
    } else if (ok && strcmp(kv, "idle-timeout") == 0) {
      int64_t ms = vh_http_dur(v);
      ok = ms > 0;
      o->idle_ms = (uint64_t)ms;
    } else if (ok && strcmp(kv, "max-connections") == 0) {
      ok = (o->max_conns = vh_http_size(v, 0)) > 0;
    } else if (ok && strcmp(kv, "max-output") == 0) {
      ok = (o->max_output = vh_http_size(v, 1)) > 0;
    } else {
      snprintf(err, cap,
               "bad --http option '%s' (options: header-timeout=10s, "
               "idle-timeout=60s, max-connections=N, max-output=1MB)",
               kv);
      return -1;
    }
    if (!ok) {
      snprintf(err, cap,
               "bad value '%s' for --http option %s (durations like 10s or "
               "500ms, sizes like 1MB, counts > 0)",
               v, kv);
      return -1;
    }
  }
  return 0;
}

/* The connection cap: raise the soft fd limit to the hard one, keep a
 * quarter of it (at least 128) for the store and the rest of the host. */
static size_t vh_http_cap(vh_http_srv_t *srv, size_t asked) {
  struct rlimit rl;
  size_t nofile = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    if (rl.rlim_cur < rl.rlim_max) {
      struct rlimit up = rl;
      up.rlim_cur = rl.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
    }
    nofile =
        rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
  }
  size_t reserve = nofile / 4 > 128 ? nofile / 4 : 128;
  size_t room = nofile > reserve + 16 ? nofile - reserve : 16;
  if (!asked) return room < VH_HTTP_MAX_CONNS ? room : VH_HTTP_MAX_CONNS;
  if (asked > room) {
    vh_http_log(srv, VEDHOST_LOG_WARN,
                "max-connections=%zu leaves too few of the %zu file "
                "descriptors for the store: using %zu",
                asked, nofile, room);
    return room;
  }
  return asked;
}

/* Parses --http's value: the address (into sa, host, port) and the
 * options after it (into o). 0, or -1 with one line in err. */
static int vh_http_config(const char *config, vh_http_opts_t *o,
                          struct sockaddr_storage *sa, char *host,
                          size_t hostcap, int *port, char *err, size_t cap) {
  const char *comma = strchr(config, ',');
  char spec[256];
  snprintf(spec, sizeof spec, "%.*s",
           (int)(comma ? (size_t)(comma - config) : strlen(config)), config);
  *o = (vh_http_opts_t){VH_HTTP_HEADER_MS, VH_HTTP_IDLE_MS, 0,
                        VH_HTTP_MAX_OUTPUT};
  if (vh_http_parse_opts(comma, o, err, cap) != 0) return -1;
  memset(sa, 0, sizeof *sa);
  if (vh_http_addr(spec, sa, host, hostcap, port) != 0) {
    snprintf(err, cap,
             "bad --http address '%s' (use PORT, :PORT, ADDR:PORT or "
             "[ADDR]:PORT, PORT 0 to 65535, then ,option=value...)",
             spec);
    return -1;
  }
  return 0;
}

/* Checks --http's value without opening anything, for main.c's option
 * parser. */
int vh_http_check_addr(const char *addr, char *err, size_t cap) {
  vh_http_opts_t o;
  struct sockaddr_storage sa;
  char host[128];
  int port;
  return vh_http_config(addr, &o, &sa, host, sizeof host, &port, err, cap);
}

static int vh_http_init(const vedhost_api_t *api, char *err, size_t cap) {
  vh_http_opts_t o;
  struct sockaddr_storage sa;
  char host[128];
  int port;
  if (vh_http_config(api->config ? api->config : "", &o, &sa, host, sizeof host,
                     &port, err, cap) != 0)
    return -1;
  vh_http_srv_t *srv = calloc(1, sizeof *srv);
  if (!srv) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  srv->api = api;
  srv->loop = api->loop(api->host);
  srv->header_ms = o.header_ms;
  srv->idle_ms = o.idle_ms;
  srv->max_output = o.max_output;
  srv->max_conns = vh_http_cap(srv, o.max_conns);
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
  uint64_t tick = (o.header_ms < o.idle_ms ? o.header_ms : o.idle_ms) / 4;
  tick = tick < 50 ? 50 : tick > 1000 ? 1000 : tick;
  uv_timer_init(srv->loop, &srv->sweep);
  uv_idle_init(srv->loop, &srv->runner);
  uv_timer_init(srv->loop, &srv->feed_timer);
  srv->sweep.data = srv->runner.data = srv->feed_timer.data = srv;
  srv->timers_open = 1;
  srv->open_handles += 3;
  uv_timer_start(&srv->sweep, vh_http_on_sweep, tick, tick);
  uv_unref((uv_handle_t *)&srv->sweep);
  uv_unref((uv_handle_t *)&srv->feed_timer);
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
  snprintf(line, sizeof line,
           "http: listening on %s%s%s:%d (max-connections=%zu, "
           "header-timeout=%" PRIu64 "ms, idle-timeout=%" PRIu64
           "ms, max-output=%zu)",
           strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
           port, srv->max_conns, srv->header_ms, srv->idle_ms, srv->max_output);
  api->log(api->host, VEDHOST_LOG_INFO, "vedhost", line);
  return 0;
}

const vedhost_plugin_abi_t vh_http_abi = {VEDHOST_PLUGIN_ABI_MAJOR,
                                          VEDHOST_PLUGIN_ABI_MINOR, "http"};

/* The reason init gave, kept for vh_http_why (one host per process). */
static char vh_http_init_why[512];

int vh_http_init_start(const vedhost_api_t *api, char *err, size_t cap) {
  vh_http_init_why[0] = '\0';
  int rc = vh_http_init(api, err, cap);
  if (rc != 0)
    snprintf(vh_http_init_why, sizeof vh_http_init_why, "%s",
             err[0] ? err : "no reason given");
  return rc;
}

const char *vh_http_why(void) {
  return vh_http_init_why;
}
