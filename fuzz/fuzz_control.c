/*
 * fuzz_control.c - the control socket's framing (host/control/control.c):
 * what any local process that can open DATA/control.sock sends the host.
 *
 * The real server runs on a libuv loop in this process, listening on a
 * socket in a temp dir (payload limit 1 KiB here, so the limit is within
 * reach). Each input is sent by a fresh client connection as is, then
 * the client half-closes and reads until the server closes. The request
 * callback answers EVAL at once (echoing the payload), COMPLETE at once
 * with CANDIDATES, and COMMAND later, from the loop (the host answers
 * most requests after their slice is durable), so both the in-callback
 * and the deferred reply paths run.
 * Checked: never a crash or leak; the bytes the server sends back are a
 * sequence of well-formed reply frames (vh_control_frame_check); the
 * server closes every connection (none left after the client is gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vh_control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VH_FUZZ_MAX_PAYLOAD 1024
#define VH_FUZZ_MAX_TURNS 200000

static uv_loop_t loop;
static vh_control_t *ctl;
static char sockpath[108];
static vh_control_conn_t *deferred[64];
static size_t ndeferred;

static void vh_fuzz_fail(const char *what) {
  fprintf(stderr, "fuzz_control: %s\n", what);
  abort();
}

static void vh_fuzz_on_request(vh_control_conn_t *conn, int type,
                               const char *payload, size_t len, void *arg) {
  (void)arg;
  if (payload[len] != '\0') vh_fuzz_fail("payload not NUL-terminated");
  if (type == VH_CONTROL_EVAL) {
    vh_control_reply(conn, VH_CONTROL_OK, payload, len);
  } else if (type == VH_CONTROL_COMPLETE) {
    vh_control_reply(conn, VH_CONTROL_CANDIDATES, "a\nb", 3);
  } else if (ndeferred < sizeof deferred / sizeof deferred[0]) {
    deferred[ndeferred++] = conn;
  } else {
    vh_control_reply(conn, VH_CONTROL_ERROR, "busy", 4);
  }
}

static void vh_fuzz_answer_deferred(void) {
  size_t n = ndeferred;
  ndeferred = 0;
  for (size_t i = 0; i < n; i++)
    vh_control_reply(deferred[i], VH_CONTROL_OK, "later", 5);
}

static void vh_fuzz_cleanup(void) {
  if (!ctl) return;
  vh_control_stop(ctl);
  ctl = NULL;
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  char dir[108];
  snprintf(dir, sizeof dir, "%s", sockpath);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  rmdir(dir);
}

static void vh_fuzz_init(void) {
  char dir[] = "/tmp/vh_fuzz_control_XXXXXX";
  if (!mkdtemp(dir)) vh_fuzz_fail("mkdtemp");
  snprintf(sockpath, sizeof sockpath, "%s/c.sock", dir);
  if (uv_loop_init(&loop) != 0) vh_fuzz_fail("uv_loop_init");
  vh_control_opts_t o = {.max_payload = VH_FUZZ_MAX_PAYLOAD};
  if (vh_control_start(&loop, sockpath, &o, vh_fuzz_on_request, NULL, &ctl) !=
      0)
    vh_fuzz_fail("vh_control_start");
  atexit(vh_fuzz_cleanup);
}

/* Check that got[0..n) is a sequence of whole reply frames. */
static void vh_fuzz_check_replies(const unsigned char *got, size_t n) {
  size_t pos = 0;
  while (pos < n) {
    int type;
    size_t plen, flen;
    char err[160];
    int r = vh_control_frame_check(got + pos, n - pos, (size_t)1 << 30, 0,
                                   &type, &plen, &flen, err, sizeof err);
    if (r != VH_FRAME_COMPLETE) vh_fuzz_fail("the server sent a bad frame");
    pos += flen;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ctl) vh_fuzz_init();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) vh_fuzz_fail("socket");
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    vh_fuzz_fail("connect");
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  size_t sent = 0, ngot = 0, capgot = 4096;
  unsigned char *got = malloc(capgot);
  int wr_done = 0, eof = 0;
  for (long turn = 0; !eof; turn++) {
    if (turn > VH_FUZZ_MAX_TURNS) vh_fuzz_fail("the server never closed");
    if (!wr_done) {
      ssize_t w =
          sent < size ? send(fd, data + sent, size - sent, MSG_NOSIGNAL) : 0;
      if (w > 0) sent += (size_t)w;
      if (sent == size || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        shutdown(fd, SHUT_WR);
        wr_done = 1;
      }
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    vh_fuzz_answer_deferred();
    for (;;) {
      if (ngot == capgot) {
        capgot *= 2;
        got = realloc(got, capgot);
        if (!got) vh_fuzz_fail("out of memory");
      }
      ssize_t r = recv(fd, got + ngot, capgot - ngot, 0);
      if (r > 0) {
        ngot += (size_t)r;
        continue;
      }
      if (r == 0 || (errno != EAGAIN && errno != EINTR)) eof = 1;
      break;
    }
  }
  close(fd);
  vh_fuzz_check_replies(got, ngot);
  free(got);
  for (int turn = 0; vh_control_conn_count(ctl) > 0; turn++) {
    if (turn > 1000) vh_fuzz_fail("a connection was left open");
    uv_run(&loop, UV_RUN_NOWAIT);
    vh_fuzz_answer_deferred();
  }
  return 0;
}
