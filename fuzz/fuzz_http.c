/*
 * fuzz_http.c - the HTTP/JSON request path end to end: plugins/http/http.c (the
 * http_parser callbacks, URL splitting and percent-decoding, routing,
 * limits), host/abi/json.c (request bodies in, replies out), the call into a
 * domain handler and the output gate, as a client on the network reaches
 * them.
 *
 * A real host runs in a thread of this process (a temp data dir,
 * durability nosync, one domain "d" with handlers echo/put/bump/err) with
 * the ingress on a free 127.0.0.1 port; no seam in http.c is needed. Each
 * input is sent as is over a fresh TCP connection, the client
 * half-closes and reads until the server closes (bounded). libFuzzer's
 * coverage counters are process-wide, so the host thread's paths guide
 * the fuzzer. At exit the host is stopped with SIGTERM and freed.
 * Checked: never a crash (ASan/UBSan in tools/fuzz.sh); every answer
 * starts with an HTTP/1.1 status line; the host keeps accepting.
 * Signals: libFuzzer's -timeout arms SIGALRM (every timeout/2+1 s), which
 * interrupts this client's blocking connect/send/recv (calls on a socket
 * with a timeout are never restarted): EINTR is retried, never taken for
 * the end of an answer. Giving up early once closed the connection with
 * answers still to write, and the host thread's next write raised SIGPIPE
 * and ended the whole process silently, with status 141 and no stats
 * (vh_host_run now ignores SIGPIPE). vh_fuzz_init returns only once the
 * host answered a GET /healthz: its loop runs and its SIGTERM watcher is
 * in place before vh_fuzz_stop can send SIGTERM.
 * Leak checking is off for this target (tools/fuzz.sh): the host thread
 * allocates across inputs, which libFuzzer's per-input leak heuristic
 * cannot tell from a leak.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "vh_host.h"
#include "vh_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VH_FUZZ_HEAD 16 /* bytes of an answer kept for the checks */

static const char vh_fuzz_script[] =
    "local ved = require 'ved'\n"
    "ved.domain 'd' {\n"
    "  state = { n = 0, t = { a = 1, list = { 'x', 'y', 3.5, true } } },\n"
    "  on = {\n"
    "    echo = function(state, p) return p end,\n"
    "    put = function(state, p) state.last = p; return state.last end,\n"
    "    bump = function(state) state.n = state.n + 1; return state.n end,\n"
    "    err = function() error('boom') end,\n"
    "  },\n"
    "}\n";

static vh_host_t *host;
static pthread_t host_thread;
static int host_port;
static char tmpdir[64];
static volatile int stopping;

static void vh_fuzz_fail(const char *what) {
  fprintf(stderr, "fuzz_http: %s (%s)\n", what, strerror(errno));
  abort();
}

static void *vh_fuzz_host_main(void *arg) {
  int code = 0;
  (void)arg;
  if (vh_host_run(host, &code) != 0) vh_fuzz_fail("vh_host_run");
  if (!stopping) vh_fuzz_fail("the host stopped by itself");
  return NULL;
}

/* A connect interrupted by a signal goes on in the kernel: wait for it
 * (bounded) and read its outcome. 0 once connected, else -1. */
static int vh_fuzz_connected(int fd) {
  struct pollfd pf = {.fd = fd, .events = POLLOUT};
  int r;
  do r = poll(&pf, 1, 10000); /* only bounds a hang */
  while (r < 0 && errno == EINTR);
  int err = 0;
  socklen_t len = sizeof err;
  if (r != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return -1;
  if (err != 0) errno = err;
  return err == 0 ? 0 : -1;
}

static int vh_fuzz_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) vh_fuzz_fail("socket");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)host_port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
      (errno != EINTR || vh_fuzz_connected(fd) != 0)) {
    close(fd);
    return -1;
  }
  struct timeval tv = {30, 0}; /* only bounds a hang */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

static size_t vh_fuzz_exchange(const uint8_t *data, size_t size,
                               char head[VH_FUZZ_HEAD]);

static void vh_fuzz_stop(void) {
  if (!host) return;
  if (getenv("VH_FUZZ_HTTP_ALARM_US")) { /* the store closes on this thread */
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
  }
  stopping = 1;
  kill(getpid(), SIGTERM); /* the host's uv_signal stops its loop */
  pthread_join(host_thread, NULL);
  vh_host_free(host);
  host = NULL;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0)
    fprintf(stderr, "fuzz_http: cannot remove %s\n", tmpdir);
}

/* A free port on 127.0.0.1 (bound, read back, released). */
static int vh_fuzz_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    vh_fuzz_fail("no free port");
  close(fd);
  return ntohs(sa.sin_port);
}

static void vh_fuzz_on_alarm(int sig) {
  (void)sig;
}

/* VH_FUZZ_HTTP_ALARM_US=N (the replay test fuzz/http_alarms): SIGALRM
 * every N us with a handler installed as libFuzzer installs its own (no
 * SA_RESTART), so that every blocking call of the client can be
 * interrupted, as libFuzzer's -timeout alarm does once in a while. */
static void vh_fuzz_alarms(void) {
  const char *e = getenv("VH_FUZZ_HTTP_ALARM_US");
  long us = e ? strtol(e, NULL, 10) : 0;
  if (us <= 0) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = vh_fuzz_on_alarm;
  sigemptyset(&sa.sa_mask);
  struct itimerval it = {{us / 1000000, us % 1000000},
                         {us / 1000000, us % 1000000}};
  if (sigaction(SIGALRM, &sa, NULL) != 0 ||
      setitimer(ITIMER_REAL, &it, NULL) != 0)
    vh_fuzz_fail("cannot arm the alarm");
}

static void vh_fuzz_init(void) {
  char path[128], data[128], addr[64], err[1024];
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vh_fuzz_http_XXXXXX");
  if (!mkdtemp(tmpdir)) vh_fuzz_fail("mkdtemp");
  snprintf(path, sizeof path, "%s/d.lua", tmpdir);
  snprintf(data, sizeof data, "%s/data", tmpdir);
  FILE *f = fopen(path, "w");
  if (!f) vh_fuzz_fail("cannot write the script");
  fputs(vh_fuzz_script, f);
  fclose(f);
  /* The host's threads (store, writer, watchdog, loop) inherit a mask
   * without SIGALRM: libFuzzer's alarm lands in the fuzzing thread, the
   * only one where its timeout check runs. */
  sigset_t alrm, old_mask;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, &old_mask);
  vh_host_opts_t o;
  vh_host_opts_default(&o);
  o.data_dir = data;
  o.watch = 0;
  o.durability = VH_DURABILITY_NOSYNC;
  o.log_level = VH_LOG_ERROR;
  if (getenv("VH_FUZZ_HTTP_LOG")) o.log_level = VH_LOG_DEBUG;
  if (vh_host_new(&o, &host, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_http: %s\n", err);
    abort();
  }
  host_port = vh_fuzz_free_port();
  snprintf(addr, sizeof addr, "127.0.0.1:%d", host_port);
  if (vh_http_start(host, addr, err, sizeof err) != 0 ||
      vh_host_load(host, path, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_http: %s\n", err);
    abort();
  }
  if (pthread_create(&host_thread, NULL, vh_fuzz_host_main, NULL) != 0)
    vh_fuzz_fail("pthread_create");
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  atexit(vh_fuzz_stop);
  vh_fuzz_alarms();
  /* an answer comes from the running loop: SIGTERM now stops it */
  static const char ping[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  char head[VH_FUZZ_HEAD];
  size_t n = vh_fuzz_exchange((const uint8_t *)ping, sizeof ping - 1, head);
  if (n < 12 || memcmp(head, "HTTP/1.1 200", 12) != 0) {
    errno = 0;
    vh_fuzz_fail("the host does not answer GET /healthz");
  }
}

/* Send data over a fresh connection, half-close, read until the server
 * closes (it must, once it answered what it could parse: a hang is a
 * failure, by libFuzzer's -timeout or the socket timeout); the answer's
 * first bytes go to head (up to VH_FUZZ_HEAD). The number of them. */
static size_t vh_fuzz_exchange(const uint8_t *data, size_t size,
                               char head[VH_FUZZ_HEAD]) {
  int fd = vh_fuzz_connect();
  if (fd < 0) vh_fuzz_fail("the host does not accept connections");
  size_t sent = 0;
  while (sent < size) {
    ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue; /* SIGALRM: see the top */
    if (w <= 0) break; /* the server may answer and close early (413) */
    sent += (size_t)w;
  }
  shutdown(fd, SHUT_WR);
  size_t nhead = 0;
  char buf[65536];
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) continue; /* SIGALRM: see the top */
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      vh_fuzz_fail("the host neither closed nor answered within 30 s");
    if (r <= 0) break; /* closed or reset */
    for (ssize_t i = 0; i < r && nhead < VH_FUZZ_HEAD; i++)
      head[nhead++] = buf[i];
  }
  close(fd);
  return nhead;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!host) vh_fuzz_init();
  char head[VH_FUZZ_HEAD];
  size_t nhead = vh_fuzz_exchange(data, size, head);
  if (getenv("VH_FUZZ_HTTP_LOG"))
    fprintf(stderr, "fuzz_http: answer %.*s\n", (int)nhead, head);
  if (nhead > 0 && (nhead < 9 || memcmp(head, "HTTP/1.1 ", 9) != 0)) {
    fprintf(stderr, "fuzz_http: an answer without a status line: %.*s\n",
            (int)nhead, head);
    abort();
  }
  return 0;
}
