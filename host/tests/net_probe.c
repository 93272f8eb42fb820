/*
 * net_probe.c - misbehaving network clients for the limits specs
 * (spec/http_limits_spec.lua): built as build/bin/vh_net_probe. Each mode
 * prints one result line on stdout; every wait is bounded by SECS.
 *
 *   slow PORT N SECS        N connections each sending a request head one
 *                           header line every 200 ms (slowloris); prints
 *                           "closed K of N, 408 M" once all are closed by
 *                           the server or SECS passed
 *   idle PORT N SECS        N connections that send one GET /healthz, read
 *                           its response, then stay idle; prints "closed K
 *                           of N"
 *   hold PORT N SECS        N connections that send nothing; after 2 s
 *                           prints "open K refused R 503 M" (refused: the
 *                           server closed it), then holds them SECS more
 *   noread PORT N PATH SECS N connections (4 KB receive buffer) that send
 *                           GET PATH and never read; prints "sent N", then
 *                           holds them SECS (or until stdin closes)
 *   lazyget PORT PATH SECS  one GET PATH (4 KB receive buffer); prints
 *                           "sent", waits for a line on stdin, then reads
 *                           the whole response: "status S bytes B
 *                           complete C w W" (C: a Content-Length body or
 *                           the last chunk arrived; W: how many 'w' bytes)
 *   halfclose PORT PATH BODY  POST BODY to PATH, shutdown(SHUT_WR), print
 *                           everything read until the server closes
 *   rawhalf PORT SECS DATA  send DATA as is, shutdown(SHUT_WR), read until
 *                           the server closes or SECS passed; prints
 *                           "closed B last-chunk L" or "open B last-chunk
 *                           L" (B bytes read; L: they end with a chunked
 *                           body's last chunk)
 *   reset PORT N PATH SECS  one connection: GET PATH and read its response
 *                           (the server has accepted it), print "ready",
 *                           wait for a line on stdin (the spec stops the
 *                           host meanwhile), send N pipelined GET PATH and
 *                           close with a reset (SO_LINGER 0) before any
 *                           answer; prints "reset"
 *   repl SOCK N REQS SECS CODE  N control-socket clients each sending REQS
 *                           EVAL frames of CODE at once, never reading;
 *                           prints "sent", holds SECS (or until stdin
 *                           closes)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_connect(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

/* Wait up to ms for fd to be readable; 1 if so. */
static int readable(int fd, int ms) {
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  return poll(&pf, 1, ms) == 1;
}

/* Read what is there; 1 if the peer closed (EOF or error). *saw503 / 408
 * set when the data has that status. */
static int drain(int fd, int *status) {
  char buf[4096];
  ssize_t r = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
  if (r == 0) return 1;
  if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
  buf[r] = '\0';
  if (status && strncmp(buf, "HTTP/1.1 ", 9) == 0) *status = atoi(buf + 9);
  return 0;
}

static int mode_slow(int port, int n, double secs) {
  int *fd = calloc((size_t)n, sizeof *fd), *done = calloc((size_t)n, 4);
  int closed = 0, got408 = 0;
  for (int i = 0; i < n; i++) {
    fd[i] = tcp_connect(port, 0);
    if (fd[i] < 0) {
      done[i] = 1;
      closed++;
      continue;
    }
    const char head[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    send_all(fd[i], head, sizeof head - 1);
  }
  double end = now_s() + secs;
  int line = 0;
  while (closed < n && now_s() < end) {
    for (int i = 0; i < n; i++) {
      if (done[i]) continue;
      int st = 0;
      if (readable(fd[i], 0) && drain(fd[i], &st)) {
        done[i] = 1;
        closed++;
      }
      if (st == 408) got408++;
      if (!done[i]) {
        char h[32];
        int hl = snprintf(h, sizeof h, "X-%d: y\r\n", line);
        send_all(fd[i], h, (size_t)hl);
      }
    }
    line++;
    usleep(200000);
  }
  printf("closed %d of %d, 408 %d\n", closed, n, got408);
  free(fd);
  free(done);
  return 0;
}

static int mode_idle(int port, int n, double secs) {
  int *fd = calloc((size_t)n, sizeof *fd), *done = calloc((size_t)n, 4);
  int closed = 0;
  for (int i = 0; i < n; i++) {
    fd[i] = tcp_connect(port, 0);
    if (fd[i] < 0) {
      done[i] = 1;
      closed++;
      continue;
    }
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd[i], req, sizeof req - 1);
    if (readable(fd[i], 5000)) drain(fd[i], NULL);
  }
  double end = now_s() + secs;
  while (closed < n && now_s() < end) {
    for (int i = 0; i < n; i++)
      if (!done[i] && readable(fd[i], 0) && drain(fd[i], NULL)) {
        done[i] = 1;
        closed++;
      }
    usleep(50000);
  }
  printf("closed %d of %d\n", closed, n);
  free(fd);
  free(done);
  return 0;
}

static int mode_hold(int port, int n, double secs) {
  int *fd = calloc((size_t)n, sizeof *fd), *done = calloc((size_t)n, 4);
  int refused = 0, got503 = 0;
  for (int i = 0; i < n; i++) fd[i] = tcp_connect(port, 0);
  double end = now_s() + 2;
  while (now_s() < end) {
    for (int i = 0; i < n; i++) {
      if (done[i]) continue;
      int st = 0;
      if (fd[i] < 0 || (readable(fd[i], 0) && drain(fd[i], &st))) {
        done[i] = 1;
        refused++;
      }
      if (st == 503) got503++;
    }
    usleep(50000);
  }
  printf("open %d refused %d 503 %d\n", n - refused, refused, got503);
  fflush(stdout);
  double until = now_s() + secs;
  while (now_s() < until && !readable(0, 100)) {
  }
  free(fd);
  free(done);
  return 0;
}

static int mode_noread(int port, int n, const char *path, double secs) {
  char req[512];
  int rl =
      snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  int sent = 0;
  for (int i = 0; i < n; i++) {
    int fd = tcp_connect(port, 4096);
    if (fd < 0) continue;
    send_all(fd, req, (size_t)rl);
    sent++;
  }
  printf("sent %d\n", sent);
  fflush(stdout);
  double until = now_s() + secs;
  while (now_s() < until && !readable(0, 100)) {
  }
  return 0;
}

static int mode_lazyget(int port, const char *path, double secs) {
  char req[512];
  int rl =
      snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  int fd = tcp_connect(port, 4096);
  if (fd < 0) {
    printf("cannot connect\n");
    return 1;
  }
  send_all(fd, req, (size_t)rl);
  printf("sent\n");
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 1;
  size_t cap = 1 << 20, len = 0;
  char *buf = malloc(cap);
  double end = now_s() + secs;
  int complete = 0;
  size_t body = 0;     /* offset of the body once the head is in */
  long long clen = -1; /* its Content-Length, -1 when chunked */
  while (now_s() < end && !complete) {
    if (!readable(fd, 100)) continue;
    if (len + 65536 + 1 > cap) buf = realloc(buf, cap *= 2);
    ssize_t r = recv(fd, buf + len, 65536, 0);
    if (r <= 0) break;
    len += (size_t)r;
    buf[len] = '\0';
    if (!body) { /* look at the head once (the body may be many MB) */
      char *e = strstr(buf, "\r\n\r\n");
      if (!e) continue;
      body = (size_t)(e + 4 - buf);
      *e = '\0';
      char *cl = strstr(buf, "Content-Length: ");
      if (cl) clen = strtoll(cl + 16, NULL, 10);
      *e = '\r';
    }
    if (clen >= 0)
      complete = len - body >= (size_t)clen;
    else
      complete = len >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0;
  }
  int status = len > 9 && strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : 0;
  size_t nw = 0; /* 'w' bytes: the specs' second version writes them */
  for (size_t i = 0; i < len; i++) nw += buf[i] == 'w';
  printf("status %d bytes %zu complete %d w %zu\n", status, len, complete, nw);
  free(buf);
  return 0;
}

static int mode_halfclose(int port, const char *path, const char *body) {
  int fd = tcp_connect(port, 0);
  if (fd < 0) {
    printf("cannot connect\n");
    return 1;
  }
  char req[1024];
  int rl = snprintf(req, sizeof req,
                    "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                    path, strlen(body), body);
  send_all(fd, req, (size_t)rl);
  shutdown(fd, SHUT_WR);
  double end = now_s() + 10;
  char buf[4096];
  while (now_s() < end) {
    if (!readable(fd, 100)) continue;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    fwrite(buf, 1, (size_t)r, stdout);
  }
  printf("\n");
  return 0;
}

static int mode_rawhalf(int port, double secs, const char *data) {
  int fd = tcp_connect(port, 0);
  if (fd < 0) {
    printf("cannot connect\n");
    return 1;
  }
  send_all(fd, data, strlen(data));
  shutdown(fd, SHUT_WR);
  double end = now_s() + secs;
  char buf[65536], tail[5] = {0};
  size_t total = 0;
  int closed = 0;
  while (now_s() < end) {
    if (!readable(fd, 100)) continue;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) {
      closed = 1;
      break;
    }
    for (ssize_t i = 0; i < r; i++) { /* the last 5 bytes */
      memmove(tail, tail + 1, 4);
      tail[4] = buf[i];
    }
    total += (size_t)r;
  }
  printf("%s %zu last-chunk %d\n", closed ? "closed" : "open", total,
         total >= 5 && memcmp(tail, "0\r\n\r\n", 5) == 0);
  return 0;
}

static int mode_reset(int port, int n, const char *path, double secs) {
  char req[512];
  int rl =
      snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
  int fd = tcp_connect(port, 0);
  if (fd < 0) {
    printf("cannot connect\n");
    return 1;
  }
  send_all(fd, req, (size_t)rl);
  /* the whole first response: its head, then Content-Length bytes */
  char buf[65536];
  size_t len = 0;
  long long want = -1;
  double end = now_s() + secs;
  while (now_s() < end && (want < 0 || (long long)len < want)) {
    if (!readable(fd, 100)) continue;
    ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
    if (r <= 0) break;
    len += (size_t)r;
    buf[len] = '\0';
    char *e = strstr(buf, "\r\n\r\n");
    char *cl = strstr(buf, "Content-Length: ");
    if (want < 0 && e && cl) want = (e + 4 - buf) + strtoll(cl + 16, NULL, 10);
  }
  if (want < 0 || (long long)len < want) {
    printf("no first response\n");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  char line[64];
  if (!readable(0, (int)(secs * 1000)) || !fgets(line, sizeof line, stdin))
    return 1;
  /* one send: the server reads them all at once, before the reset */
  char *all = malloc((size_t)n * (size_t)rl + 1);
  if (!all) return 1;
  for (int i = 0; i < n; i++)
    memcpy(all + (size_t)i * (size_t)rl, req, (size_t)rl);
  send_all(fd, all, (size_t)n * (size_t)rl);
  free(all);
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  printf("reset\n");
  fflush(stdout);
  return 0;
}

static int mode_repl(const char *path, int n, int reqs, double secs,
                     const char *code) {
  size_t cl = strlen(code);
  unsigned char *frame = malloc(6 + cl);
  frame[0] = (unsigned char)(cl >> 24);
  frame[1] = (unsigned char)(cl >> 16);
  frame[2] = (unsigned char)(cl >> 8);
  frame[3] = (unsigned char)cl;
  frame[4] = 1;
  frame[5] = 0x01;
  memcpy(frame + 6, code, cl);
  int sent = 0;
  for (int i = 0; i < n; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int rb = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) continue;
    for (int k = 0; k < reqs; k++) send_all(fd, (char *)frame, 6 + cl);
    sent++;
  }
  printf("sent %d\n", sent);
  fflush(stdout);
  free(frame);
  double until = now_s() + secs;
  while (now_s() < until && !readable(0, 100)) {
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: see net_probe.c\n");
    return 2;
  }
  const char *m = argv[1];
  if (strcmp(m, "slow") == 0 && argc == 5)
    return mode_slow(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
  if (strcmp(m, "idle") == 0 && argc == 5)
    return mode_idle(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
  if (strcmp(m, "hold") == 0 && argc == 5)
    return mode_hold(atoi(argv[2]), atoi(argv[3]), atof(argv[4]));
  if (strcmp(m, "noread") == 0 && argc == 6)
    return mode_noread(atoi(argv[2]), atoi(argv[3]), argv[4], atof(argv[5]));
  if (strcmp(m, "lazyget") == 0 && argc == 5)
    return mode_lazyget(atoi(argv[2]), argv[3], atof(argv[4]));
  if (strcmp(m, "halfclose") == 0 && argc == 5)
    return mode_halfclose(atoi(argv[2]), argv[3], argv[4]);
  if (strcmp(m, "rawhalf") == 0 && argc == 5)
    return mode_rawhalf(atoi(argv[2]), atof(argv[3]), argv[4]);
  if (strcmp(m, "reset") == 0 && argc == 6)
    return mode_reset(atoi(argv[2]), atoi(argv[3]), argv[4], atof(argv[5]));
  if (strcmp(m, "repl") == 0 && argc == 7)
    return mode_repl(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]),
                     argv[6]);
  fprintf(stderr, "vh_net_probe: bad arguments\n");
  return 2;
}
