/*
 * vh_pty_test.h - driving the interactive console on a pseudo-terminal, for
 * tests (host/control/tests/test_repl.c against a fake host,
 * host/tests/test_repl_host.c against a real one). Each test starts its own
 * child with forkpty into a pty_t (the command and environment differ);
 * this header reads, waits and types.
 *
 * The includer defines _GNU_SOURCE (memmem) before any include and may
 * define GUARD_MS. Every wait is bounded by GUARD_MS only as a guard
 * against hangs: a wait that runs out fails the test and prints the
 * output so far; nothing here depends on timing.
 */
#ifndef VH_PTY_TEST_H
#define VH_PTY_TEST_H

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef GUARD_MS
#define GUARD_MS 20000 /* hang guard for one wait */
#endif

typedef struct {
  int fd;    /* pty master */
  pid_t pid; /* the console process */
  char buf[1 << 16];
  size_t len;  /* bytes of output so far */
  size_t mark; /* searches start here */
} pty_t;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Prints the output with control bytes visible, for failure reports. */
static void pty_dump(const pty_t *t) {
  for (size_t i = 0; i < t->len; i++) {
    unsigned char c = (unsigned char)t->buf[i];
    if (c == '\n')
      fputs("\\n\n", stderr);
    else if (c < 32 || c == 127)
      fprintf(stderr, "^%c", c ^ 0x40);
    else
      fputc(c, stderr);
  }
  fputc('\n', stderr);
}

/* Reads output until `s` appears after the mark; moves the mark past it.
 * Returns 1 when found, 0 when the guard runs out or the console ends. */
static int pty_expect(pty_t *t, const char *s) {
  long long end = now_ms() + GUARD_MS;
  while (now_ms() < end) {
    /* memmem: terminals may pad with NUL bytes */
    char *at = memmem(t->buf + t->mark, t->len - t->mark, s, strlen(s));
    if (at) {
      t->mark = (size_t)(at - t->buf) + strlen(s);
      return 1;
    }
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(t->fd, t->buf + t->len, sizeof t->buf - 1 - t->len);
    if (n <= 0) {
      fprintf(stderr, "the console ended; its output:\n");
      pty_dump(t);
      return 0;
    }
    t->len += (size_t)n;
  }
  fprintf(stderr, "waited for \"%s\"; output so far:\n", s);
  pty_dump(t);
  return 0;
}

/* Waits for a prompt and then for the line editor to take the terminal
 * (canonical mode off): only then is typing echoed by libedit alone, as
 * for a person, who never types within microseconds of the prompt. */
static int pty_prompt(pty_t *t, const char *prompt) {
  if (!pty_expect(t, prompt)) return 0;
  long long end = now_ms() + GUARD_MS;
  while (now_ms() < end) {
    struct termios tio;
    if (tcgetattr(t->fd, &tio) < 0) return 0;
    if (!(tio.c_lflag & ICANON)) return 1;
    usleep(1000);
  }
  fprintf(stderr, "the terminal never left canonical mode\n");
  return 0;
}

static void pty_send(pty_t *t, const char *s) {
  if (write(t->fd, s, strlen(s)) < 0) abort();
}

/* Waits for the console to exit; returns its exit code (the output is
 * printed when it is not 0), or -1 when it does not exit (it is killed). */
static int pty_wait_exit(pty_t *t) {
  char sink[4096];
  long long end = now_ms() + GUARD_MS;
  while (now_ms() < end) {
    int st;
    if (waitpid(t->pid, &st, WNOHANG) == t->pid) {
      close(t->fd);
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      if (code != 0) pty_dump(t);
      return code;
    }
    /* keep reading so the console never blocks on a full terminal */
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    ssize_t n = 0;
    if (poll(&p, 1, 100) > 0) n = read(t->fd, sink, sizeof sink);
    if (n > 0 && t->len + (size_t)n < sizeof t->buf) {
      memcpy(t->buf + t->len, sink, (size_t)n);
      t->len += (size_t)n;
    } else if (n <= 0 && p.revents) {
      usleep(10000); /* EIO: the terminal closed, the exit is near */
    }
  }
  fprintf(stderr, "the console did not exit; its output:\n");
  pty_dump(t);
  kill(t->pid, SIGKILL);
  waitpid(t->pid, NULL, 0);
  close(t->fd);
  return -1;
}

#endif
