/* control.c: the control socket of a running host, and its frame codec.
 *
 * WHAT. The host listens on DATA/control.sock, a Unix stream socket, so that
 * `vedhost repl` can run Lua in the host, ask for completions and run
 * commands. No TCP: only the owning user can connect (the socket file is
 * mode 0600 before it listens, and peers whose uid is neither ours nor root
 * are dropped as a second line of defence).
 *
 * FRAMES. Both directions use the same frame:
 *
 *   offset  size  field
 *   0       4     payload length N, unsigned big-endian (N <= the limit,
 *                 16 MiB by default, for requests)
 *   4       1     protocol version, 1
 *   5       1     type
 *   6       N     payload (raw bytes, no terminator)
 *
 *   type  direction  payload
 *   0x01  request    EVAL: a Lua chunk (the whole chunk, all lines so far)
 *   0x02  request    COMPLETE: the text of the line before the cursor
 *   0x03  request    COMMAND: a command without its colon: "help",
 *                    "domains", "stats", "reload" (arguments after a space)
 *   0x81  reply      OK: the printed results, one per line (may be empty)
 *   0x82  reply      ERROR: the message, then the traceback
 *   0x83  reply      INCOMPLETE: the chunk needs more lines (payload: the
 *                    parser message, may be empty)
 *   0x84  reply      CANDIDATES: completions separated by '\n'. Each one
 *                    replaces the word before the cursor, the word being
 *                    the longest suffix of [A-Za-z0-9_.:] characters
 *                    ("domains.co" -> "domains.counter").
 *
 * Every request gets exactly one reply, in order. A connection has at most
 * one request in the host at a time: later frames wait in its buffer (and
 * reading stops once a whole frame waits) until the reply is sent and
 * written out (the client took it), so a client that pipelines requests
 * and never reads holds at most one reply in the host.
 *
 * OUTPUT LIMITS. A reply over max_output (64 MiB by default) is replaced
 * by an ERROR saying how big it was. A connection whose reply makes no
 * progress (not one byte taken by the client) for write_timeout_ms (30 s)
 * is closed; a sweep timer (a quarter of that, at most 1 s) checks, and
 * both are told to opts->log.
 *
 * BAD INPUT. A wrong version, an unknown type or a length over the limit is
 * judged from the 6 header bytes alone (so garbage is refused at once, not
 * after reading a "body"): the connection gets an ERROR reply "bad request:
 * ..." (after the replies it is owed) and is closed once that is written.
 * A connection that closes mid-frame is dropped quietly. The server and the
 * other connections carry on. A client may half-close (shutdown SHUT_WR)
 * after its requests: they are still answered, then the connection closes.
 * A full close (POLLHUP after EOF) closes at once; its unanswered request is
 * still answered by the host, into the void.
 *
 * LIFETIME. A connection (vh_control_conn_t) is reference counted: one
 * reference for its libuv handle (dropped in the close callback), one for
 * the request in the host (dropped by vh_control_reply), and short pins
 * around callbacks and writes. So the host may answer a connection that has
 * closed, even after vh_control_stop: the reply is then a no-op that frees.
 * The server itself (vh_control_t) is freed when stop was called and the
 * listener and every connection handle have run their close callbacks.
 * A release below zero aborts.
 *
 * STALE SOCKETS. start() first connects to the path: if something accepts
 * (or the backlog is full), a live host owns it and start fails; if the
 * connection is refused, the file is a leftover of a dead host and is
 * unlinked. A path that is not a socket is never removed. libuv unlinks the
 * socket when the listener closes (before closing its fd, so it never
 * removes a socket made later by another process).
 */
#define _GNU_SOURCE /* struct ucred, SO_PEERCRED */
#include "vh_control.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Bytes offered to each read; the buffer also keeps one spare byte so a
 * payload can be NUL-terminated in place. */
#define READ_CHUNK 65536

struct vh_control_s {
  uv_loop_t *loop;          /* borrowed; the loop all handles live on */
  uv_pipe_t listener;       /* the listening socket */
  char *path;               /* socket path (owned), for messages */
  size_t max_payload;       /* request payload limit */
  vh_control_request_cb cb; /* called with each request */
  void *arg;                /* passed to cb */
  vh_control_conn_t *conns; /* open (not closing) connections, a list */
  size_t nconns;            /* length of that list */
  unsigned live;            /* handles whose close callback has not run */
  int stopping;             /* vh_control_stop was called */
  size_t max_output;        /* reply limit */
  uint64_t write_timeout;   /* ms without progress before a close */
  void (*log)(const char *msg, void *arg);            /* may be NULL */
  void (*closed)(vh_control_conn_t *conn, void *arg); /* may be NULL */
  uv_timer_t sweep; /* checks stalled replies */
};

struct vh_control_conn_s {
  uv_pipe_t pipe;          /* the connection; pipe.data = this */
  vh_control_t *ctl;       /* server; valid until the close callback */
  vh_control_conn_t *prev; /* links in ctl->conns while open */
  vh_control_conn_t *next;
  unsigned refs;            /* see LIFETIME above */
  unsigned char *buf;       /* received bytes not yet delivered */
  size_t len;               /* bytes used in buf */
  size_t cap;               /* bytes allocated in buf */
  size_t writes;            /* writes not yet completed */
  unsigned pending : 1;     /* a request is in the host, unanswered */
  unsigned closing : 1;     /* uv_close was called; never reopens */
  unsigned eof : 1;         /* the peer sent EOF: no more input */
  unsigned reading : 1;     /* uv_read_start is in effect */
  unsigned in_pump : 1;     /* conn_pump is on the stack */
  unsigned close_after : 1; /* close once the writes complete */
  size_t wq_last;           /* write queue size at the last look */
  uint64_t t_stall;         /* loop ms when it last changed */
};

/* A reply being written: the frame bytes follow the struct. */
typedef struct {
  uv_write_t req;
  vh_control_conn_t *conn; /* pinned until the write callback */
  unsigned char data[];
} write_req_t;

/* ---- Types and codec ------------------------------------------------- */

int vh_control_is_request(int type) {
  return type == VH_CONTROL_EVAL || type == VH_CONTROL_COMPLETE ||
         type == VH_CONTROL_COMMAND;
}

int vh_control_is_reply(int type) {
  return type == VH_CONTROL_OK || type == VH_CONTROL_ERROR ||
         type == VH_CONTROL_INCOMPLETE || type == VH_CONTROL_CANDIDATES;
}

const char *vh_control_type_name(int type) {
  switch (type) {
    case VH_CONTROL_EVAL:
      return "EVAL";
    case VH_CONTROL_COMPLETE:
      return "COMPLETE";
    case VH_CONTROL_COMMAND:
      return "COMMAND";
    case VH_CONTROL_OK:
      return "OK";
    case VH_CONTROL_ERROR:
      return "ERROR";
    case VH_CONTROL_INCOMPLETE:
      return "INCOMPLETE";
    case VH_CONTROL_CANDIDATES:
      return "CANDIDATES";
    default:
      return "?";
  }
}

int vh_control_frame_header(unsigned char *out, int type, size_t len) {
  if (len > UINT32_MAX) return UV_E2BIG;
  out[0] = (unsigned char)(len >> 24);
  out[1] = (unsigned char)(len >> 16);
  out[2] = (unsigned char)(len >> 8);
  out[3] = (unsigned char)len;
  out[4] = VH_CONTROL_VERSION;
  out[5] = (unsigned char)type;
  return 0;
}

int vh_control_frame_parse_header(const unsigned char *h, size_t max_payload,
                                  int want_request, int *type,
                                  size_t *payload_len, char *err,
                                  size_t errlen) {
  const char *what = want_request ? "request" : "reply";
  uint32_t n = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) |
               ((uint32_t)h[2] << 8) | (uint32_t)h[3];
  int t = h[5];
  if (h[4] != VH_CONTROL_VERSION) {
    snprintf(err, errlen, "bad %s: protocol version %d, expected %d", what,
             h[4], VH_CONTROL_VERSION);
    return UV_EPROTO;
  }
  if (want_request ? !vh_control_is_request(t) : !vh_control_is_reply(t)) {
    snprintf(err, errlen, "bad %s: unknown %s type 0x%02x", what, what, t);
    return UV_EPROTO;
  }
  if (n > max_payload) {
    snprintf(err, errlen,
             "bad %s: payload of %lu bytes is over the limit of %zu", what,
             (unsigned long)n, max_payload);
    return UV_EPROTO;
  }
  *type = t;
  *payload_len = n;
  return 0;
}

int vh_control_frame_check(const unsigned char *buf, size_t avail,
                           size_t max_payload, int want_request, int *type,
                           size_t *payload_len, size_t *frame_len, char *err,
                           size_t errlen) {
  int t;
  size_t n;
  if (avail < VH_CONTROL_HEADER) return VH_FRAME_MORE;
  int r = vh_control_frame_parse_header(buf, max_payload, want_request, &t, &n,
                                        err, errlen);
  if (r < 0) return r;
  if (avail - VH_CONTROL_HEADER < n) return VH_FRAME_MORE;
  *type = t;
  *payload_len = n;
  *frame_len = VH_CONTROL_HEADER + n;
  return VH_FRAME_COMPLETE;
}

/* ---- Connections ----------------------------------------------------- */

static void ctl_maybe_free(vh_control_t *ctl) {
  if (!ctl->stopping || ctl->live > 0) return;
  free(ctl->path);
  free(ctl);
}

static void conn_ref(vh_control_conn_t *c) {
  c->refs++;
}

static void conn_unref(vh_control_conn_t *c) {
  if (c->refs == 0) {
    fprintf(stderr, "vh_control: connection released too often\n");
    abort();
  }
  if (--c->refs > 0) return;
  free(c->buf);
  free(c);
}

static void conn_close_cb(uv_handle_t *h) {
  vh_control_conn_t *c = h->data;
  vh_control_t *ctl = c->ctl;
  c->ctl = NULL;
  ctl->live--;
  conn_unref(c); /* the handle's reference */
  ctl_maybe_free(ctl);
}

/* Starts closing `c` (idempotent). Unanswered requests keep it allocated. */
static void conn_close(vh_control_conn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  c->reading = 0;
  vh_control_t *ctl = c->ctl;
  if (c->prev)
    c->prev->next = c->next;
  else
    ctl->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  ctl->nconns--;
  if (ctl->closed) ctl->closed(c, ctl->arg);
  uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
}

static void conn_pump(vh_control_conn_t *c);

static void conn_write_cb(uv_write_t *req, int status) {
  write_req_t *wr = (write_req_t *)req;
  vh_control_conn_t *c = wr->conn;
  free(wr);
  c->writes--;
  if (status < 0 || (c->close_after && c->writes == 0))
    conn_close(c);
  else if (c->writes == 0 && !c->closing)
    conn_pump(c); /* the reply is out: the next request may go in */
  conn_unref(c);  /* the write's pin */
}

/* Queues one frame on `c`. On failure the connection is closed. */
static int conn_send(vh_control_conn_t *c, int type, const void *bytes,
                     size_t len) {
  if (len > UINT32_MAX) return UV_EINVAL;
  write_req_t *wr = malloc(sizeof *wr + VH_CONTROL_HEADER + len);
  if (!wr) {
    conn_close(c);
    return UV_ENOMEM;
  }
  vh_control_frame_header(wr->data, type, len);
  if (len) memcpy(wr->data + VH_CONTROL_HEADER, bytes, len);
  wr->conn = c;
  uv_buf_t b =
      uv_buf_init((char *)wr->data, (unsigned)(VH_CONTROL_HEADER + len));
  int r = uv_write(&wr->req, (uv_stream_t *)&c->pipe, &b, 1, conn_write_cb);
  if (r < 0) {
    free(wr);
    conn_close(c);
    return r;
  }
  conn_ref(c);
  if (c->writes++ == 0) { /* the stall clock starts */
    c->t_stall = uv_now(c->ctl->loop);
    c->wq_last = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
  }
  return 0;
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
  vh_control_conn_t *c = h->data;
  (void)suggested;
  size_t need = c->len + READ_CHUNK + 1;
  if (c->cap < need) {
    size_t cap = c->cap ? c->cap : READ_CHUNK + 1;
    while (cap < need) cap *= 2;
    unsigned char *nb = realloc(c->buf, cap);
    if (!nb) { /* libuv reports UV_ENOBUFS to the read callback */
      *out = uv_buf_init(NULL, 0);
      return;
    }
    c->buf = nb;
    c->cap = cap;
  }
  *out = uv_buf_init((char *)c->buf + c->len, READ_CHUNK);
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* Reads while the buffer does not hold a whole frame waiting for its turn;
 * this bounds the buffer to about one frame plus one read. */
static void conn_set_reading(vh_control_conn_t *c) {
  int want = !c->closing && !c->eof && !c->close_after;
  if (want && (c->pending || c->writes > 0)) {
    int type;
    size_t plen, flen;
    char err[8];
    want =
        vh_control_frame_check(c->buf, c->len, c->ctl->max_payload, 1, &type,
                               &plen, &flen, err, sizeof err) == VH_FRAME_MORE;
  }
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->pipe, conn_alloc_cb, conn_read_cb) <
        0) {
      conn_close(c);
      return;
    }
    c->reading = 1;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->reading = 0;
  }
}

/* Delivers buffered requests, one at a time, while none is in the host.
 * HOW IT WORKS: the host may reply from inside the callback; that reply
 * calls conn_pump again, which returns at once (in_pump), and this loop
 * then delivers the next frame. So requests never recurse, however many
 * a client pipelines. */
static void conn_pump(vh_control_conn_t *c) {
  if (c->in_pump) return;
  c->in_pump = 1;
  conn_ref(c);
  while (!c->closing && !c->pending && !c->close_after && c->writes == 0) {
    vh_control_t *ctl = c->ctl;
    int type;
    size_t plen, flen;
    char err[160];
    int r = vh_control_frame_check(c->buf, c->len, ctl->max_payload, 1, &type,
                                   &plen, &flen, err, sizeof err);
    if (r == VH_FRAME_MORE) {
      if (c->eof) { /* done; a partial frame is dropped quietly */
        if (c->writes > 0)
          c->close_after = 1; /* after the last reply */
        else
          conn_close(c);
      }
      break;
    }
    if (r < 0) {
      c->close_after = 1;
      conn_send(c, VH_CONTROL_ERROR, err, strlen(err));
      break;
    }
    c->pending = 1;
    conn_ref(c); /* the request's reference, released by the reply */
    unsigned char saved = c->buf[flen]; /* cap > len >= flen */
    c->buf[flen] = '\0';
    ctl->cb(c, type, (const char *)c->buf + VH_CONTROL_HEADER, plen, ctl->arg);
    c->buf[flen] = saved;
    memmove(c->buf, c->buf + flen, c->len - flen);
    c->len -= flen;
    if (c->len == 0 && c->cap > ((size_t)1 << 20)) {
      free(c->buf); /* give back what a big request grew */
      c->buf = NULL;
      c->cap = 0;
    }
  }
  if (!c->closing) conn_set_reading(c);
  c->in_pump = 0;
  conn_unref(c);
}

/* After EOF: nonzero when the peer closed both ways (POLLHUP), not just
 * its writing half (shutdown(SHUT_WR), which still reads replies). */
static int peer_gone(uv_pipe_t *p) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)p, &fd) < 0) return 1;
  struct pollfd pf = {.fd = fd, .events = POLLOUT};
  return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLHUP | POLLERR));
}

static void conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  vh_control_conn_t *c = s->data;
  (void)b; /* it points into c->buf */
  if (c->closing) return;
  if (nread > 0) {
    c->len += (size_t)nread;
    conn_pump(c);
  } else if (nread == UV_EOF) {
    c->eof = 1;
    if (peer_gone(&c->pipe)) { /* a full close: nobody will read replies */
      conn_close(c);
      return;
    }
    conn_set_reading(c);
    conn_pump(c);
  } else if (nread < 0) {
    conn_close(c);
  }
}

/* Nonzero when the peer is us or root (SO_PEERCRED); the socket mode
 * already keeps others out, this is a second check. */
static int peer_allowed(uv_pipe_t *p) {
  uv_os_fd_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (uv_fileno((uv_handle_t *)p, &fd) < 0) return 0;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return 0;
  return cred.uid == geteuid() || cred.uid == 0;
}

static void on_connection(uv_stream_t *server, int status) {
  vh_control_t *ctl = server->data;
  if (status < 0 || ctl->stopping) return;
  vh_control_conn_t *c = calloc(1, sizeof *c);
  if (!c) return; /* the connection waits in the backlog */
  if (uv_pipe_init(ctl->loop, &c->pipe, 0) < 0) {
    free(c);
    return;
  }
  c->pipe.data = c;
  c->ctl = ctl;
  c->refs = 1;
  ctl->live++;
  c->next = ctl->conns;
  if (ctl->conns) ctl->conns->prev = c;
  ctl->conns = c;
  ctl->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0 ||
      !peer_allowed(&c->pipe)) {
    conn_close(c);
    return;
  }
  conn_set_reading(c);
}

/* ---- Server ---------------------------------------------------------- */

/* Removes a socket file left by a dead host at `path`; see STALE SOCKETS. */
static int clear_stale(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode)) return UV_EEXIST;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  close(fd);
  if (r == 0 || e == EAGAIN || e == EINPROGRESS) return UV_EADDRINUSE;
  if (e == ENOENT) return 0;
  if (e != ECONNREFUSED) return -e;
  if (unlink(path) < 0 && errno != ENOENT) return -errno;
  return 0;
}

static void ctl_log(vh_control_t *ctl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void ctl_log(vh_control_t *ctl, const char *fmt, ...) {
  if (!ctl->log) return;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ctl->log(msg, ctl->arg);
}

/* Close the connections whose reply made no progress for too long. */
static void sweep_cb(uv_timer_t *t) {
  vh_control_t *ctl = t->data;
  uint64_t now = uv_now(ctl->loop);
  vh_control_conn_t *c = ctl->conns;
  while (c) {
    vh_control_conn_t *next = c->next;
    if (c->writes > 0) {
      size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
      if (q != c->wq_last) {
        c->wq_last = q;
        c->t_stall = now;
      } else if (now - c->t_stall >= ctl->write_timeout) {
        ctl_log(ctl,
                "a client did not read its reply for %llu ms (%zu bytes "
                "unread): disconnected",
                (unsigned long long)(now - c->t_stall), q);
        conn_close(c);
      }
    }
    c = next;
  }
}

static void listener_close_cb(uv_handle_t *h) {
  vh_control_t *ctl = h->data;
  ctl->live--;
  ctl_maybe_free(ctl);
}

int vh_control_start(uv_loop_t *loop, const char *path,
                     const vh_control_opts_t *opts, vh_control_request_cb cb,
                     void *arg, vh_control_t **out) {
  struct sockaddr_un sa;
  if (!loop || !path || !cb || !out || !*path) return UV_EINVAL;
  if (strlen(path) >= sizeof sa.sun_path) return UV_ENAMETOOLONG;
  int r = clear_stale(path);
  if (r < 0) return r;

  vh_control_t *ctl = calloc(1, sizeof *ctl);
  if (!ctl) return UV_ENOMEM;
  ctl->path = strdup(path);
  if (!ctl->path) {
    free(ctl);
    return UV_ENOMEM;
  }
  ctl->loop = loop;
  ctl->cb = cb;
  ctl->arg = arg;
  ctl->max_payload =
      opts && opts->max_payload ? opts->max_payload : VH_CONTROL_MAX_PAYLOAD;
  ctl->max_output =
      opts && opts->max_output ? opts->max_output : VH_CONTROL_MAX_OUTPUT;
  ctl->closed = opts ? opts->closed : NULL;
  ctl->write_timeout = opts && opts->write_timeout_ms
                           ? opts->write_timeout_ms
                           : VH_CONTROL_WRITE_TIMEOUT_MS;
  ctl->log = opts ? opts->log : NULL;
  r = uv_pipe_init(loop, &ctl->listener, 0);
  if (r < 0) goto fail_free;
  ctl->listener.data = ctl;
  ctl->live = 1;

  r = uv_pipe_bind(&ctl->listener, path);
  if (r < 0) goto fail_close;
  /* Bound but not listening: nobody can connect yet, so tightening the
   * mode here leaves no window where others could. */
  if (chmod(path, S_IRUSR | S_IWUSR) < 0) {
    r = -errno;
    goto fail_close;
  }
  r = uv_listen((uv_stream_t *)&ctl->listener, 64, on_connection);
  if (r < 0) goto fail_close;
  uint64_t tick = ctl->write_timeout / 4;
  tick = tick < 10 ? 10 : tick > 1000 ? 1000 : tick;
  uv_timer_init(loop, &ctl->sweep);
  ctl->sweep.data = ctl;
  ctl->live++;
  uv_timer_start(&ctl->sweep, sweep_cb, tick, tick);
  uv_unref((uv_handle_t *)&ctl->sweep);

  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  *out = ctl;
  return 0;

fail_close: /* the close unlinks a socket bound above; frees in callback */
  ctl->stopping = 1;
  uv_close((uv_handle_t *)&ctl->listener, listener_close_cb);
  return r;
fail_free:
  free(ctl->path);
  free(ctl);
  return r;
}

void vh_control_stop(vh_control_t *ctl) {
  if (!ctl || ctl->stopping) return;
  ctl->stopping = 1;
  while (ctl->conns) conn_close(ctl->conns);
  uv_close((uv_handle_t *)&ctl->sweep, listener_close_cb);
  uv_close((uv_handle_t *)&ctl->listener, listener_close_cb);
}

int vh_control_reply(vh_control_conn_t *conn, int type, const char *bytes,
                     size_t len) {
  if (!conn->pending) {
    fprintf(stderr, "vh_control: reply without a request\n");
    abort();
  }
  conn->pending = 0;
  int r = 0;
  if (!conn->closing) {
    char big[320];
    if (vh_control_is_reply(type) && len > conn->ctl->max_output) {
      snprintf(big, sizeof big,
               "the reply (%zu bytes) is over the control socket's limit of "
               "%zu bytes and was not sent (what the chunk did stands); "
               "print less, or read big state with vedhost inspect",
               len, conn->ctl->max_output);
      ctl_log(conn->ctl, "a reply of %zu bytes was refused (limit %zu)", len,
              conn->ctl->max_output);
      type = VH_CONTROL_ERROR;
      bytes = big;
      len = strlen(big);
    }
    if (!vh_control_is_reply(type) || len > UINT32_MAX) {
      r = UV_EINVAL;
      conn_close(conn);
    } else if (conn_send(conn, type, bytes, len) == 0) {
      conn_pump(conn);
    } /* else the connection failed and is closed: not the host's error */
  }
  conn_unref(conn); /* the request's reference */
  return r;
}

size_t vh_control_conn_count(const vh_control_t *ctl) {
  return ctl->nconns;
}
