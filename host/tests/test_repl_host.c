/*
 * test_repl_host.c - the REPL against a REAL vedhost process: raw frames
 * on its control socket (garbage, oversized, unknown type, truncated,
 * pipelined) and the interactive console `vedhost repl` on a
 * pseudo-terminal (completion of domains.co<TAB> and state keys,
 * multi-line input, Ctrl-C, history across consoles, errors, commands).
 *
 * The host is build/bin/vedhost (found next to this test's build folder,
 * or $VEDHOST_BIN), started once for all tests on a script with two
 * domains, in a fresh temp dir. Waits are bounded only as a guard against
 * hangs (a wait that runs out fails the test); nothing depends on timing.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define GUARD_MS 20000 /* hang guard for one wait */
#include "../control/tests/vh_pty_test.h"
#include "vh_control.h"
#include "vh_test.h"

static char bin[4096];  /* the vedhost executable */
static char tmp[256];   /* the test's dir: app.lua, data/, home/ */
static char data[300];  /* tmp/data */
static char sock[400];  /* tmp/data/control.sock */
static char hist[300];  /* tmp/history */
static pid_t host = -1; /* the running host */

static const char app[] =
    "local ved = require 'ved'\n"
    "ved.domain 'counter' {\n"
    "  state = { count = 0, recent = {} },\n"
    "  on = { bump = function(state) state.count = state.count + 1\n"
    "           return state.count end },\n"
    "}\n"
    "ved.domain 'clock' { state = { ticks = 0 } }\n";

/* ---- the host --------------------------------------------------------- */

static int find_bin(void) {
  const char *env = getenv("VEDHOST_BIN");
  if (env && *env) {
    snprintf(bin, sizeof bin, "%s", env);
    return access(bin, X_OK);
  }
  char self[2048];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = '\0';
  snprintf(bin, sizeof bin, "%s/../bin/vedhost", dirname(self));
  return access(bin, X_OK);
}

static int connect_sock(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (fd < 0) return -1;
  if (strlen(sock) >= sizeof a.sun_path) {
    close(fd);
    return -1;
  }
  memcpy(a.sun_path, sock, strlen(sock) + 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int start_host(void) {
  snprintf(tmp, sizeof tmp, "/tmp/vh_test_repl_XXXXXX");
  if (!mkdtemp(tmp)) return -1;
  snprintf(data, sizeof data, "%s/data", tmp);
  snprintf(sock, sizeof sock, "%s/%s", data, VH_CONTROL_SOCKET);
  snprintf(hist, sizeof hist, "%s/history", tmp);
  char path[400];
  snprintf(path, sizeof path, "%s/app.lua", tmp);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(app, f);
  fclose(f);
  snprintf(path, sizeof path, "%s/home", tmp);
  if (mkdir(path, 0700) < 0) return -1;
  host = fork();
  if (host < 0) return -1;
  if (host == 0) {
    char log[400];
    snprintf(log, sizeof log, "%s/host.log", tmp);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || chdir(tmp) < 0) _exit(127);
    dup2(fd, 2);
    execl(bin, "vedhost", "run", "--data", "data", "app.lua", (char *)NULL);
    _exit(127);
  }
  long long end = now_ms() + GUARD_MS;
  while (now_ms() < end) {
    int fd = connect_sock();
    if (fd >= 0) {
      close(fd);
      return 0;
    }
    if (waitpid(host, NULL, WNOHANG) == host) return -1;
    usleep(10000);
  }
  return -1;
}

/* Stops the host; returns its exit code (-1 if it did not exit cleanly),
 * printing its log when that is not 0. Removes the temp dir. */
static int stop_host(void) {
  int code = -1;
  if (host > 0) {
    kill(host, SIGTERM);
    int st;
    long long end = now_ms() + GUARD_MS;
    while (now_ms() < end) {
      if (waitpid(host, &st, WNOHANG) == host) {
        code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        break;
      }
      usleep(10000);
    }
    if (now_ms() >= end) kill(host, SIGKILL);
    host = -1;
  }
  if (code != 0) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "cat '%s/host.log' >&2", tmp);
    if (system(cmd) != 0) fprintf(stderr, "no host log\n");
  }
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (tmp[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
  return code;
}

static int host_alive(void) {
  return host > 0 && waitpid(host, NULL, WNOHANG) == 0;
}

/* ---- raw frames ------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads everything until EOF (or `want` bytes when want > 0) into buf. */
static size_t read_until(int fd, unsigned char *buf, size_t cap, size_t want) {
  size_t len = 0;
  long long end = now_ms() + GUARD_MS;
  while (len < cap && now_ms() < end && (want == 0 || len < want)) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t r = read(fd, buf + len, cap - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  return len;
}

/* Sends a frame; returns the fd. */
static int send_frame(int type, const char *payload) {
  int fd = connect_sock();
  if (fd < 0) return -1;
  unsigned char h[VH_CONTROL_HEADER];
  vh_control_frame_header(h, type, strlen(payload));
  if (write_all(fd, h, sizeof h) || write_all(fd, payload, strlen(payload))) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Parses the frame at buf: its type and a copy of its payload (static). */
static const char *frame_at(const unsigned char *buf, size_t len, int *type,
                            size_t *flen) {
  static char body[65536];
  char err[256];
  size_t n;
  if (vh_control_frame_check(buf, len, sizeof body - 1, 0, type, &n, flen, err,
                             sizeof err) != VH_FRAME_COMPLETE) {
    *type = -1;
    return "";
  }
  memcpy(body, buf + VH_CONTROL_HEADER, n);
  body[n] = '\0';
  return body;
}

/* One request on a new connection; its reply type and payload. */
static const char *request(int type, const char *payload, int *rtype) {
  static unsigned char buf[65536];
  int fd = send_frame(type, payload);
  if (fd < 0) return NULL;
  shutdown(fd, SHUT_WR);
  size_t len = read_until(fd, buf, sizeof buf, 0);
  close(fd);
  size_t fl;
  return frame_at(buf, len, rtype, &fl);
}

/* Sends raw bytes, half-closes, expects exactly one ERROR reply starting
 * with "bad request" and then EOF. */
static void expect_refused(const void *bytes, size_t n) {
  unsigned char buf[4096];
  int fd = connect_sock();
  ASSERT(fd >= 0);
  ASSERT_EQ(write_all(fd, bytes, n), 0);
  size_t len = read_until(fd, buf, sizeof buf, 0);
  close(fd);
  int type;
  size_t fl = 0;
  const char *body = frame_at(buf, len, &type, &fl);
  ASSERT_EQ(type, VH_CONTROL_ERROR);
  ASSERT(strncmp(body, "bad request", 11) == 0);
  ASSERT_EQ(fl, len); /* nothing after it: the connection closed */
}

static void expect_healthy(void) {
  int type;
  const char *r =
      request(VH_CONTROL_EVAL, "domains.counter.state.count", &type);
  ASSERT(r != NULL);
  ASSERT_EQ(type, VH_CONTROL_OK);
  ASSERT_STR_EQ(r, "0");
  ASSERT(host_alive());
}

TEST_IMPL(socket_mode) {
  struct stat st;
  ASSERT_EQ(stat(sock, &st), 0);
  ASSERT(S_ISSOCK(st.st_mode));
  ASSERT_EQ(st.st_mode & 0777, 0600);
}

TEST_IMPL(garbage_frames) {
  static const char http[] = "GET / HTTP/1.0\r\n\r\n";
  expect_refused(http, sizeof http - 1);
  expect_healthy();
  /* oversized: 1 GiB announced, nothing sent */
  unsigned char big[6] = {0x40, 0, 0, 0, VH_CONTROL_VERSION, VH_CONTROL_EVAL};
  expect_refused(big, sizeof big);
  expect_healthy();
  /* an unknown type, and a reply type sent as a request */
  unsigned char odd[7] = {0, 0, 0, 1, VH_CONTROL_VERSION, 0x7f, 'x'};
  expect_refused(odd, sizeof odd);
  unsigned char rep[7] = {0, 0, 0, 1, VH_CONTROL_VERSION, VH_CONTROL_OK, 'x'};
  expect_refused(rep, sizeof rep);
  expect_healthy();
}

TEST_IMPL(truncated_frame) {
  /* 100 bytes announced, 5 sent, then gone: no reply, no harm */
  unsigned char part[11] = {
      0,   0,   0,   100, VH_CONTROL_VERSION, VH_CONTROL_EVAL, 'r',
      'e', 't', 'u', 'r'};
  int fd = connect_sock();
  ASSERT(fd >= 0);
  ASSERT_EQ(write_all(fd, part, sizeof part), 0);
  close(fd);
  expect_healthy();
}

TEST_IMPL(pipelined_requests) {
  /* three frames in one write: three replies, in order */
  unsigned char buf[512];
  size_t n = 0;
  const char *reqs[] = {"1 + 1", "for", "send('counter', 'bump')"};
  int types[] = {VH_CONTROL_EVAL, VH_CONTROL_EVAL, VH_CONTROL_EVAL};
  for (int i = 0; i < 3; i++) {
    vh_control_frame_header(buf + n, types[i], strlen(reqs[i]));
    memcpy(buf + n + VH_CONTROL_HEADER, reqs[i], strlen(reqs[i]));
    n += VH_CONTROL_HEADER + strlen(reqs[i]);
  }
  int fd = connect_sock();
  ASSERT(fd >= 0);
  ASSERT_EQ(write_all(fd, buf, n), 0);
  shutdown(fd, SHUT_WR);
  unsigned char in[4096];
  size_t len = read_until(fd, in, sizeof in, 0);
  close(fd);
  int type;
  size_t fl, at = 0;
  const char *body = frame_at(in, len, &type, &fl);
  ASSERT_EQ(type, VH_CONTROL_OK);
  ASSERT_STR_EQ(body, "2");
  at += fl;
  body = frame_at(in + at, len - at, &type, &fl);
  ASSERT_EQ(type, VH_CONTROL_INCOMPLETE);
  ASSERT(strstr(body, "<eof>") != NULL);
  at += fl;
  body = frame_at(in + at, len - at, &type, &fl);
  ASSERT_EQ(type, VH_CONTROL_OK);
  ASSERT_STR_EQ(body, "1");
  ASSERT_EQ(at + fl, len);
  /* put the counter back for the other tests */
  const char *r =
      request(VH_CONTROL_EVAL, "domains.counter.state.count = 0", &type);
  ASSERT(r != NULL);
  ASSERT_EQ(type, VH_CONTROL_OK);
}

TEST_IMPL(completion_requests) {
  int type;
  const char *r = request(VH_CONTROL_COMPLETE, "x = domains.co", &type);
  ASSERT_EQ(type, VH_CONTROL_CANDIDATES);
  ASSERT_STR_EQ(r, "domains.counter");
  r = request(VH_CONTROL_COMPLETE, "domains.c", &type);
  ASSERT_STR_EQ(r, "domains.clock\ndomains.counter");
  r = request(VH_CONTROL_COMPLETE, "domains.counter.state.re", &type);
  ASSERT_STR_EQ(r, "domains.counter.state.recent");
  r = request(VH_CONTROL_COMPLETE, "domains.counter.state.", &type);
  ASSERT_STR_EQ(r, "domains.counter.state.count\ndomains.counter.state.recent");
  r = request(VH_CONTROL_COMPLETE, ":st", &type);
  ASSERT_STR_EQ(r, ":stats");
  r = request(VH_CONTROL_COMPLETE, "string.for", &type);
  ASSERT_STR_EQ(r, "string.format");
  r = request(VH_CONTROL_COMPLETE, "nothing.here.", &type);
  ASSERT_EQ(type, VH_CONTROL_CANDIDATES);
  ASSERT_STR_EQ(r, "");
}

/* ---- the console on a pseudo-terminal --------------------------------- */

static pty_t tty;

static int pty_start(pty_t *t) {
  memset(t, 0, sizeof *t);
  struct winsize ws = {.ws_row = 24, .ws_col = 100};
  char home[300];
  snprintf(home, sizeof home, "%s/home", tmp);
  setenv("HOME", home, 1);
  setenv("VEDHOST_HISTORY", hist, 1);
  setenv("TERM", "xterm", 1);
  setenv("NO_COLOR", "1", 1);
#ifdef VH_SANITIZE
  /* libedit leaks a little per console (host/control/tests/lsan.supp) */
  char file[] = __FILE__, supp[600];
  snprintf(supp, sizeof supp,
           "suppressions=%s/../control/tests/lsan.supp:print_suppressions=0",
           dirname(file));
  setenv("LSAN_OPTIONS", supp, 0);
#endif
  t->pid = forkpty(&t->fd, NULL, NULL, &ws);
  if (t->pid < 0) return -1;
  if (t->pid == 0) {
    execl(bin, "vedhost", "repl", "--data", data, (char *)NULL);
    _exit(127);
  }
  return 0;
}

#define P1 "ved> "
#define P2 "ved>> "

TEST_IMPL(console) {
  pty_t *t = &tty;
  unlink(hist);
  ASSERT_EQ(pty_start(t), 0);
  ASSERT(pty_prompt(t, P1));

  /* completion of a domain name, then of a state key */
  pty_send(t, "domains.co\t");
  ASSERT(pty_expect(t, "unter"));
  pty_send(t, ".state.cou\t");
  ASSERT(pty_expect(t, "nt"));
  pty_send(t, " = 7\r");
  ASSERT(pty_prompt(t, P1));
  pty_send(t, "domains.counter.state.count\r");
  ASSERT(pty_expect(t, "\r\n7\r\n"));
  ASSERT(pty_prompt(t, P1));

  /* multi-line input: a function over three lines, kept as a global */
  pty_send(t, "function twice(x)\r");
  ASSERT(pty_prompt(t, P2));
  pty_send(t, "return x * 2\r");
  ASSERT(pty_prompt(t, P2));
  pty_send(t, "end\r");
  ASSERT(pty_prompt(t, P1));
  pty_send(t, "twice(21)\r");
  ASSERT(pty_expect(t, "\r\n42\r\n"));
  ASSERT(pty_prompt(t, P1));

  /* Ctrl-C drops an unfinished chunk */
  pty_send(t, "1 +\r");
  ASSERT(pty_prompt(t, P2));
  pty_send(t, "\003");
  ASSERT(pty_prompt(t, P1));
  pty_send(t, "send('counter', 'bump')\r");
  ASSERT(pty_expect(t, "\r\n8\r\n"));
  ASSERT(pty_prompt(t, P1));

  /* Ctrl-P recalls the previous entry */
  pty_send(t, "\020\r");
  ASSERT(pty_expect(t, "\r\n9\r\n"));
  ASSERT(pty_prompt(t, P1));

  /* an error is printed, the state is untouched; commands work */
  pty_send(t, "domains.counter.state.count = 0; error('nope')\r");
  ASSERT(pty_expect(t, "nope"));
  ASSERT(pty_prompt(t, P1));
  pty_send(t, ":domains\r");
  ASSERT(pty_expect(t, "counter"));
  ASSERT(pty_prompt(t, P1));
  pty_send(t, "domains.counter.state.count\r");
  ASSERT(pty_expect(t, "\r\n9\r\n"));
  ASSERT(pty_prompt(t, P1));

  /* Ctrl-D leaves with 0; the history has one entry per chunk */
  pty_send(t, "\004");
  ASSERT_EQ(pty_wait_exit(t), 0);
  FILE *f = fopen(hist, "r");
  ASSERT(f != NULL);
  static char h[1 << 16];
  size_t n = fread(h, 1, sizeof h - 1, f);
  fclose(f);
  h[n] = '\0';
  ASSERT(strstr(h, "\ntwice(21)\n") != NULL);
  ASSERT(strstr(h, "function") != NULL); /* the chunk, escaped by libedit */
  ASSERT(strstr(h, "\ndomains.counter.state.count\n") != NULL);

  /* a new console recalls the last entry of the previous one */
  ASSERT_EQ(pty_start(t), 0);
  ASSERT(pty_prompt(t, P1));
  pty_send(t, "\020\r");
  ASSERT(pty_expect(t, "\r\n9\r\n"));
  ASSERT(pty_prompt(t, P1));
  pty_send(t, "twice(5)\r"); /* globals outlive a console */
  ASSERT(pty_expect(t, "\r\n10\r\n"));
  ASSERT(pty_prompt(t, P1));
  pty_send(t, "domains.counter.state.count = 0\r");
  ASSERT(pty_prompt(t, P1));
  pty_send(t, ":quit\r");
  ASSERT_EQ(pty_wait_exit(t), 0);
  ASSERT(host_alive());
}

static const vh_test_entry_t tests[] = {
    TEST_ENTRY(socket_mode),         TEST_ENTRY(garbage_frames),
    TEST_ENTRY(truncated_frame),     TEST_ENTRY(pipelined_requests),
    TEST_ENTRY(completion_requests), TEST_ENTRY(console),
};

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (find_bin() != 0) {
    fprintf(stderr, "vedhost not found at %s (set VEDHOST_BIN)\n", bin);
    return 1;
  }
  if (start_host() != 0) {
    fprintf(stderr, "cannot start %s in %s\n", bin, tmp);
    stop_host();
    return 1;
  }
  int rc = vh_test__run(tests, sizeof tests / sizeof tests[0], argc, argv);
  if (!host_alive()) {
    fprintf(stderr, "the host died during the tests\n");
    rc = 1;
  }
  int code = stop_host();
  if (code != 0) {
    fprintf(stderr, "the host exited with %d\n", code);
    rc = 1;
  }
  return rc;
}
