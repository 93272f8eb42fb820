/* vh_control: the host's control socket (server side) and its frame codec.
 *
 * The host listens on DATA/control.sock (a Unix stream socket, mode 0600).
 * The REPL client (vh_repl.h) sends requests; the host answers each one,
 * later, once the slice that ran it is durable. See control.c for the byte
 * layout of a frame and the rules for bad input.
 *
 * Threads: every function here except the codec runs on the loop thread.
 * The codec functions (vh_control_frame_*) are pure and thread-safe.
 */
#ifndef VH_CONTROL_H
#define VH_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Protocol version carried by every frame. */
#define VH_CONTROL_VERSION 1
/* Bytes before the payload: u32 length, u8 version, u8 type. */
#define VH_CONTROL_HEADER 6
/* Default limit on a payload, both ways. */
#define VH_CONTROL_MAX_PAYLOAD ((size_t)16 << 20)
/* Name of the socket inside the data dir. */
#define VH_CONTROL_SOCKET "control.sock"

/* Frame types. Requests go client -> host, replies host -> client. */
enum {
  VH_CONTROL_EVAL = 0x01,     /* payload: a Lua chunk */
  VH_CONTROL_COMPLETE = 0x02, /* payload: the line before the cursor */
  VH_CONTROL_COMMAND = 0x03,  /* payload: "stats", "reload x" (no colon) */

  VH_CONTROL_OK = 0x81,         /* payload: printed results, may be "" */
  VH_CONTROL_ERROR = 0x82,      /* payload: message and traceback */
  VH_CONTROL_INCOMPLETE = 0x83, /* payload: the parser's message, may be "" */
  VH_CONTROL_CANDIDATES = 0x84  /* payload: completions, '\n' separated */
};

/* Nonzero when `type` is a request type (EVAL, COMPLETE, COMMAND). */
int vh_control_is_request(int type);
/* Nonzero when `type` is a reply type (OK, ERROR, INCOMPLETE, CANDIDATES). */
int vh_control_is_reply(int type);
/* A static name for a type ("EVAL", ...), "?" when unknown. */
const char *vh_control_type_name(int type);

/* ---- Frame codec ------------------------------------------------------ */

/* Writes the 6-byte header of a frame into `out` (borrowed, 6 bytes).
 * Returns 0, or UV_E2BIG when `len` does not fit in 32 bits. */
int vh_control_frame_header(unsigned char *out, int type, size_t len);

/* Judges a frame header `h` (borrowed, VH_CONTROL_HEADER bytes): the
 * version must be VH_CONTROL_VERSION, the type a request (want_request != 0)
 * or a reply (want_request == 0), the payload length <= max_payload.
 * Returns 0 and sets *type and *payload_len, or UV_EPROTO with a message
 * "bad request: ..." (or "bad reply: ...") in err (borrowed, errlen bytes,
 * always NUL-terminated). */
int vh_control_frame_parse_header(const unsigned char *h, size_t max_payload,
                                  int want_request, int *type,
                                  size_t *payload_len, char *err,
                                  size_t errlen);

/* Result of vh_control_frame_check. */
enum {
  VH_FRAME_MORE = 0,    /* need more bytes */
  VH_FRAME_COMPLETE = 1 /* a whole frame is in the buffer */
};

/* Looks at the start of `buf` (borrowed, `avail` bytes) and says whether a
 * whole frame is there, judging its header as vh_control_frame_parse_header
 * does as soon as its 6 bytes are there (so garbage is refused without
 * waiting for a body). Returns VH_FRAME_MORE, VH_FRAME_COMPLETE (then *type,
 * *payload_len and *frame_len are set), or UV_EPROTO (message in err). */
int vh_control_frame_check(const unsigned char *buf, size_t avail,
                           size_t max_payload, int want_request, int *type,
                           size_t *payload_len, size_t *frame_len, char *err,
                           size_t errlen);

/* ---- Server ----------------------------------------------------------- */

typedef struct vh_control_s vh_control_t;
typedef struct vh_control_conn_s vh_control_conn_t;

/* Called on the loop thread for each request, one at a time per connection
 * and in the order received. `payload` is borrowed and valid only during
 * the call; payload[len] is '\0' (so text payloads are C strings too).
 * The callee must answer later with exactly one vh_control_reply(conn, ...)
 * (possibly from inside the callback): the reply consumes the reference the
 * request holds on `conn`, even when the connection has closed meanwhile or
 * the server was stopped. The next request of that connection is delivered
 * only after the reply. */
typedef void (*vh_control_request_cb)(vh_control_conn_t *conn, int type,
                                      const char *payload, size_t len,
                                      void *arg);

/* Default limit on a reply: a bigger one is replaced by an ERROR. */
#define VH_CONTROL_MAX_OUTPUT ((size_t)64 << 20)
/* Default time a client may leave its reply unread (no byte taken). */
#define VH_CONTROL_WRITE_TIMEOUT_MS 30000

typedef struct {
  /* Largest payload accepted in a request; 0 means VH_CONTROL_MAX_PAYLOAD. */
  size_t max_payload;
  /* Largest reply sent; a bigger one is replaced by an ERROR that says so.
   * 0 means VH_CONTROL_MAX_OUTPUT. */
  size_t max_output;
  /* A connection whose pending reply makes no progress (the client reads
   * nothing of it) for this long is closed. 0 means
   * VH_CONTROL_WRITE_TIMEOUT_MS. */
  unsigned write_timeout_ms;
  /* Told (msg [borrowed], the server's arg) when a reply is refused or a
   * connection dropped by these limits; may be NULL. */
  void (*log)(const char *msg, void *arg);
  /* Told (the server's arg) when a connection starts closing, while conn
   * [borrowed] is still valid: the host drops what it kept for it (the
   * REPL's :fork). Requests of it still unanswered must still be
   * answered. May be NULL. */
  void (*closed)(vh_control_conn_t *conn, void *arg);
} vh_control_opts_t;

/* Starts listening on `path` (borrowed; copied), a Unix socket created with
 * mode 0600 before it listens. A socket file left by a dead host is
 * replaced; a socket a live process listens on is not touched
 * (UV_EADDRINUSE); a path that exists but is not a socket is not touched
 * (UV_EEXIST); a path longer than sockaddr_un allows gives UV_ENAMETOOLONG.
 * opts (borrowed) may be NULL. `cb` gets `arg` (borrowed) with each request.
 * Ignores SIGPIPE for the process if it still has its default action (a
 * reply to a vanished client must not kill the host).
 * On success *out (new) is the server, to be ended with vh_control_stop;
 * on failure returns a negative libuv error and *out is untouched. */
int vh_control_start(uv_loop_t *loop, const char *path,
                     const vh_control_opts_t *opts, vh_control_request_cb cb,
                     void *arg, vh_control_t **out);

/* Closes the listener and every connection and unlinks the socket. The
 * server's memory is freed in the close callbacks (run the loop to finish);
 * `ctl` (stolen) must not be used afterwards. Requests still unanswered stay
 * valid for vh_control_reply, which then only releases them. */
void vh_control_stop(vh_control_t *ctl);

/* Answers the oldest unanswered request of `conn` (stolen: the request's
 * reference) with a frame of `type` (a reply type) and `len` bytes of
 * `bytes` (borrowed; copied). When the connection has closed, nothing is
 * sent and 0 is returned: that is not an error. Returns UV_EINVAL for a
 * non-reply type or a payload over 4 GiB (the request is still consumed,
 * and the connection is closed since its client would wait forever). */
int vh_control_reply(vh_control_conn_t *conn, int type, const char *bytes,
                     size_t len);

/* Number of open connections (for :stats and tests). */
size_t vh_control_conn_count(const vh_control_t *ctl);

#endif /* VH_CONTROL_H */
