/* test_repl.c: the `vedhost repl` client against a fake host.
 *
 * The fake host is a vh_control server on a libuv loop in a thread of this
 * process; it answers from a fixed script (below) and logs every request.
 * The client is the test-only executable vh_repl_client (VH_REPL_CLIENT),
 * started with pipes (-e mode, piped input) or on a pseudo-terminal
 * (forkpty) for the interactive console: multi-line input, completion,
 * Ctrl-C, history, colours, Ctrl-D.
 *
 * Waiting for output is bounded only as a guard against hangs (a wait that
 * runs out fails the test); nothing here depends on timing.
 */
#define _GNU_SOURCE    /* memmem */
#define GUARD_MS 20000 /* hang guard for one wait */
#include "vh_pty_test.h"
#include "vh_control.h"
#include "vh_test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

#define MAXLOG 256

/* ---- Fake host -------------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  uv_async_t stop;
  vh_control_t *ctl;
  pthread_t thread;
  char dir[64];
  char path[128];
  char home[128];
  char hist[160];
  pthread_mutex_t mu; /* guards log and nlog */
  char *log[MAXLOG];  /* "EVAL:<payload>", "COMPLETE:...", "COMMAND:..." */
  int nlog;
} fake_t;

static fake_t fake;

static int ends_with(const char *s, size_t n, const char *suffix) {
  size_t k = strlen(suffix);
  return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static void reply_str(vh_control_conn_t *c, int type, const char *s) {
  vh_control_reply(c, type, s, strlen(s));
}

/* The fake host's script. */
static void fake_request(vh_control_conn_t *c, int type, const char *p,
                         size_t len, void *arg) {
  fake_t *f = arg;
  char *entry = malloc(len + 16);
  snprintf(entry, len + 16, "%s:%s", vh_control_type_name(type), p);
  pthread_mutex_lock(&f->mu);
  if (f->nlog < MAXLOG)
    f->log[f->nlog++] = entry;
  else
    free(entry);
  pthread_mutex_unlock(&f->mu);

  if (type == VH_CONTROL_COMPLETE) {
    if (ends_with(p, len, "domains.c"))
      reply_str(c, VH_CONTROL_CANDIDATES, "domains.clock\ndomains.counter\n");
    else if (ends_with(p, len, "dom"))
      reply_str(c, VH_CONTROL_CANDIDATES, "domains");
    else if (ends_with(p, len, "pri"))
      reply_str(c, VH_CONTROL_CANDIDATES, "print\nprintf");
    else
      reply_str(c, VH_CONTROL_CANDIDATES, "");
  } else if (type == VH_CONTROL_COMMAND) {
    if (strcmp(p, "stats") == 0)
      reply_str(c, VH_CONTROL_OK, "slices: 42");
    else
      reply_str(c, VH_CONTROL_ERROR, "unknown command");
  } else if (strcmp(p, "1+") == 0 || strcmp(p, "function f()") == 0 ||
             strcmp(p, "function f()\nreturn 1") == 0) {
    reply_str(c, VH_CONTROL_INCOMPLETE, "unexpected symbol near <eof>");
  } else if (strcmp(p, "1+\n2") == 0) {
    reply_str(c, VH_CONTROL_OK, "3");
  } else if (strncmp(p, "error", 5) == 0) {
    reply_str(c, VH_CONTROL_ERROR, "boom\nstack traceback:\n\t[C]: in ?");
  } else if (strcmp(p, "many") == 0) {
    reply_str(c, VH_CONTROL_OK, "1\nnil\n{1, 2}\n");
  } else if (strcmp(p, "nothing") == 0 ||
             strcmp(p, "function f()\nreturn 1\nend") == 0) {
    reply_str(c, VH_CONTROL_OK, "");
  } else {
    char *r = malloc(len + 2);
    r[0] = '=';
    memcpy(r + 1, p, len + 1);
    reply_str(c, VH_CONTROL_OK, r);
    free(r);
  }
}

static void fake_on_stop(uv_async_t *a) {
  fake_t *f = a->data;
  vh_control_stop(f->ctl);
  uv_close((uv_handle_t *)a, NULL);
}

static void *fake_main(void *arg) {
  fake_t *f = arg;
  uv_run(&f->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int fake_start(void) {
  memset(&fake, 0, sizeof fake);
  pthread_mutex_init(&fake.mu, NULL);
  strcpy(fake.dir, "/tmp/vhrepl-XXXXXX");
  if (!mkdtemp(fake.dir)) return -1;
  snprintf(fake.path, sizeof fake.path, "%s/%s", fake.dir, VH_CONTROL_SOCKET);
  snprintf(fake.home, sizeof fake.home, "%s/home", fake.dir);
  snprintf(fake.hist, sizeof fake.hist, "%s/history", fake.dir);
  if (mkdir(fake.home, 0700) < 0) return -1;
  if (uv_loop_init(&fake.loop) < 0) return -1;
  if (uv_async_init(&fake.loop, &fake.stop, fake_on_stop) < 0) return -1;
  fake.stop.data = &fake;
  int r = vh_control_start(&fake.loop, fake.path, NULL, fake_request, &fake,
                           &fake.ctl);
  if (r < 0) return r;
  return pthread_create(&fake.thread, NULL, fake_main, &fake);
}

static void fake_finish(void) {
  uv_async_send(&fake.stop);
  pthread_join(fake.thread, NULL);
  uv_loop_close(&fake.loop);
  for (int i = 0; i < fake.nlog; i++) free(fake.log[i]);
  unlink(fake.hist);
  rmdir(fake.home);
  rmdir(fake.dir);
  pthread_mutex_destroy(&fake.mu);
}

/* Forgets the log (between tests). */
static void log_clear(void) {
  pthread_mutex_lock(&fake.mu);
  for (int i = 0; i < fake.nlog; i++) free(fake.log[i]);
  fake.nlog = 0;
  pthread_mutex_unlock(&fake.mu);
}

/* Entry i of the log as a new string, or NULL. */
static char *log_get(int i) {
  char *s = NULL;
  pthread_mutex_lock(&fake.mu);
  if (i < fake.nlog) s = strdup(fake.log[i]);
  pthread_mutex_unlock(&fake.mu);
  return s;
}

static int log_count(const char *entry) {
  int n = 0;
  pthread_mutex_lock(&fake.mu);
  for (int i = 0; i < fake.nlog; i++) n += strcmp(fake.log[i], entry) == 0;
  pthread_mutex_unlock(&fake.mu);
  return n;
}

static int log_len(void) {
  pthread_mutex_lock(&fake.mu);
  int n = fake.nlog;
  pthread_mutex_unlock(&fake.mu);
  return n;
}

/* ---- Running the client with pipes ------------------------------------ */

typedef struct {
  char out[8192];
  char err[8192];
  int status; /* exit code, or -1 when it did not exit normally */
} run_t;

/* Environment of the next client: a private HOME and history file. Set in
 * this process before fork, so the child calls nothing unsafe before exec
 * (the fake host's thread runs meanwhile). */
static void child_env(int colour_off) {
  setenv("HOME", fake.home, 1);
  setenv("VEDHOST_HISTORY", fake.hist, 1);
  setenv("TERM", "xterm", 1);
  if (colour_off)
    setenv("NO_COLOR", "1", 1);
  else
    unsetenv("NO_COLOR");
}

static void drain(int fd, char *buf, size_t cap, size_t *len) {
  ssize_t r = read(fd, buf + *len, cap - 1 - *len);
  if (r > 0) *len += (size_t)r;
  buf[*len] = '\0';
}

/* Runs the client with argv (NULL-terminated, argv[0] = "repl") in `cwd`,
 * feeding `input` on stdin; collects stdout, stderr and the exit code. */
static void run_client(run_t *res, const char *cwd, const char *input,
                       char **argv) {
  int in[2], out[2], err[2];
  memset(res, 0, sizeof *res);
  res->status = -1;
  if (pipe(in) || pipe(out) || pipe(err)) return;
  child_env(0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(in[1]);
    close(out[0]);
    close(err[0]);
    if (cwd && chdir(cwd) < 0) _exit(127);
    execv(VH_REPL_CLIENT, argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (input && write(in[1], input, strlen(input)) < 0) input = NULL;
  close(in[1]);
  size_t no = 0, ne = 0;
  struct pollfd p[2] = {{.fd = out[0], .events = POLLIN},
                        {.fd = err[0], .events = POLLIN}};
  int open_fds = 2;
  while (open_fds > 0 && poll(p, 2, GUARD_MS) > 0) {
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP))) continue;
      size_t before = i ? ne : no;
      if (i)
        drain(err[0], res->err, sizeof res->err, &ne);
      else
        drain(out[0], res->out, sizeof res->out, &no);
      if ((i ? ne : no) == before) {
        p[i].fd = -1;
        open_fds--;
      }
    }
  }
  close(out[0]);
  close(err[0]);
  int st;
  if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
    res->status = WEXITSTATUS(st);
}

/* ---- -e and piped mode -------------------------------------------------- */

TEST_IMPL(e_ok) {
  run_t r;
  log_clear();
  char *argv[] = {"repl", "--data", fake.dir, "-e", "return 1", NULL};
  run_client(&r, NULL, NULL, argv);
  ASSERT_EQ(r.status, 0);
  ASSERT_STR_EQ(r.out, "=return 1\n");
  ASSERT_STR_EQ(r.err, "");
  char *e = log_get(0);
  ASSERT_STR_EQ(e, "EVAL:return 1");
  free(e);

  char *argv2[] = {"repl", "--data=", "-e", "many", NULL};
  char data_eq[200];
  snprintf(data_eq, sizeof data_eq, "--data=%s", fake.dir);
  argv2[1] = data_eq;
  run_client(&r, NULL, NULL, argv2);
  ASSERT_EQ(r.status, 0);
  ASSERT_STR_EQ(r.out, "1\nnil\n{1, 2}\n");

  char *argv3[] = {"repl", "--data", fake.dir, "-e", "nothing", NULL};
  run_client(&r, NULL, NULL, argv3);
  ASSERT_EQ(r.status, 0);
  ASSERT_STR_EQ(r.out, "");
}

TEST_IMPL(e_error) {
  run_t r;
  char *argv[] = {"repl", "--data", fake.dir, "-e", "error('x')", NULL};
  run_client(&r, NULL, NULL, argv);
  ASSERT_EQ(r.status, 1);
  ASSERT_STR_EQ(r.out, "");
  /* not a terminal: no colour */
  ASSERT_STR_EQ(r.err, "boom\nstack traceback:\n\t[C]: in ?\n");
}

TEST_IMPL(e_incomplete) {
  run_t r;
  char *argv[] = {"repl", "--data", fake.dir, "-e", "1+", NULL};
  run_client(&r, NULL, NULL, argv);
  ASSERT_EQ(r.status, 1);
  ASSERT_STR_EQ(r.out, "");
  ASSERT_STR_EQ(r.err,
                "vedhost: incomplete chunk: unexpected symbol near <eof>\n");
}

TEST_IMPL(e_commands_and_sequence) {
  run_t r;
  log_clear();
  char *argv[] = {"repl", "--data", fake.dir, "-e", ":stats", "-e",
                  "a",    "-e",     "error",  "-e", "never",  NULL};
  run_client(&r, NULL, NULL, argv);
  ASSERT_EQ(r.status, 1);
  ASSERT_STR_EQ(r.out, "slices: 42\n=a\n");
  ASSERT_EQ(log_len(), 3); /* stops at the first error */
  ASSERT_EQ(log_count("COMMAND:stats"), 1);
  ASSERT_EQ(log_count("EVAL:a"), 1);
  ASSERT_EQ(log_count("EVAL:never"), 0);
}

TEST_IMPL(no_host) {
  run_t r;
  char *argv[] = {"repl", "--data", "/nonexistent/vh", "-e", "1", NULL};
  run_client(&r, NULL, NULL, argv);
  ASSERT_EQ(r.status, 1);
  ASSERT_STR_EQ(r.out, "");
  ASSERT_STR_EQ(r.err,
                "vedhost: no host is running on /nonexistent/vh (start one "
                "with: vedhost run --data /nonexistent/vh SCRIPT)\n");

  /* a socket file left by a dead host: the same message */
  char dir[64], path[96];
  strcpy(dir, "/tmp/vhrepl-XXXXXX");
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/%s", dir, VH_CONTROL_SOCKET);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  close(fd);
  char *argv2[] = {"repl", "--data", dir, NULL};
  run_client(&r, NULL, "", argv2);
  unlink(path);
  rmdir(dir);
  ASSERT_EQ(r.status, 1);
  ASSERT(strstr(r.err, "vedhost: no host is running on /tmp/vhrepl-") == r.err);
  ASSERT(strstr(r.err, "(start one with: vedhost run --data /tmp/vhrepl-"));

  /* the default data dir is ./vedhost.data */
  char *argv3[] = {"repl", "-e", "1", NULL};
  run_client(&r, fake.home, NULL, argv3);
  ASSERT_EQ(r.status, 1);
  ASSERT_STR_EQ(r.err,
                "vedhost: no host is running on ./vedhost.data (start one "
                "with: vedhost run --data ./vedhost.data SCRIPT)\n");
}

TEST_IMPL(bad_usage) {
  run_t r;
  char *argv[] = {"repl", "--bogus", NULL};
  run_client(&r, NULL, NULL, argv);
  ASSERT_EQ(r.status, 2);
  ASSERT_STR_EQ(r.err,
                "vedhost: repl: unknown option '--bogus'; see vedhost "
                "--help\n");
  char *argv2[] = {"repl", "-e", NULL};
  run_client(&r, NULL, NULL, argv2);
  ASSERT_EQ(r.status, 2);
  ASSERT_STR_EQ(r.err, "vedhost: repl: -e needs a value; see vedhost --help\n");
  char *argv3[] = {"repl", "--help", NULL};
  run_client(&r, NULL, NULL, argv3);
  ASSERT_EQ(r.status, 0);
  ASSERT(strstr(r.out, "usage: vedhost repl [--data DIR] [-e CODE]"));
}

/* Interactive mode with stdin a pipe: no terminal, same rules. */
TEST_IMPL(piped_console) {
  run_t r;
  log_clear();
  char *argv[] = {"repl", "--data", fake.dir, NULL};
  run_client(&r, NULL,
             "1+\n2\n\n:stats\n  \nerror()\nprint('h\xc3\xa9')\n:quit\nx\n",
             argv);
  if (r.status != 1) fprintf(stderr, "client stderr:\n%s\n", r.err);
  ASSERT_EQ(r.status, 1); /* piped input with a failed chunk: exit 1 */
  ASSERT(strstr(r.out, "3\n"));
  ASSERT(strstr(r.out, "slices: 42\n"));
  ASSERT(strstr(r.out, "=print('h\xc3\xa9')\n")); /* UTF-8 kept */
  ASSERT(!strstr(r.out, "\033"));
  ASSERT_STR_EQ(r.err, "boom\nstack traceback:\n\t[C]: in ?\n");
  const char *want[] = {"EVAL:1+", "EVAL:1+\n2", "COMMAND:stats",
                        "EVAL:error()", "EVAL:print('h\xc3\xa9')"};
  ASSERT_EQ(log_len(), 5); /* blank lines skipped, nothing after :quit */
  for (int i = 0; i < 5; i++) {
    char *e = log_get(i);
    ASSERT_STR_EQ(e, want[i]);
    free(e);
  }
}

/* The host goes away while the console waits: exit 1 with a message. */
TEST_IMPL(host_closes) {
  /* a one-shot server: accepts, reads a little, closes */
  char dir[64], path[96];
  strcpy(dir, "/tmp/vhrepl-XXXXXX");
  ASSERT(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/%s", dir, VH_CONTROL_SOCKET);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int ls = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_EQ(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
  ASSERT_EQ(listen(ls, 1), 0);
  pid_t pid = fork();
  if (pid == 0) {
    int c = accept(ls, NULL, NULL);
    char b[16];
    if (c >= 0 && read(c, b, 6) < 0) _exit(1);
    _exit(0);
  }
  close(ls);
  run_t r;
  char *argv[] = {"repl", "--data", dir, "-e", "1", NULL};
  run_client(&r, NULL, NULL, argv);
  waitpid(pid, NULL, 0);
  unlink(path);
  rmdir(dir);
  ASSERT_EQ(r.status, 1);
  ASSERT_STR_EQ(r.err, "vedhost: the host closed the connection\n");
}

/* ---- The console on a pseudo-terminal ----------------------------------- */

static int pty_start(pty_t *t, int colour_off) {
  memset(t, 0, sizeof *t);
  struct winsize ws = {.ws_row = 24, .ws_col = 80};
  char *argv[] = {"repl", "--data", fake.dir, NULL};
  child_env(colour_off);
  t->pid = forkpty(&t->fd, NULL, NULL, &ws);
  if (t->pid < 0) return -1;
  if (t->pid == 0) {
    execv(VH_REPL_CLIENT, argv);
    _exit(127);
  }
  return 0;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* Prompts as they appear with colours: the reset comes before the space. */
#define P1 "ved>\033[0m "
#define P2 "ved>>\033[0m "

TEST_IMPL(tty_console) {
  pty_t t;
  log_clear();
  unlink(fake.hist);
  ASSERT_EQ(pty_start(&t, 0), 0);
  ASSERT(pty_prompt(&t, P1));
  /* colours on a terminal: the prompt is green */
  ASSERT(strstr(t.buf, "\033[1;32m"));

  /* multi-line input: an incomplete chunk asks for more */
  pty_send(&t, "1+\r");
  ASSERT(pty_prompt(&t, P2));
  pty_send(&t, "2\r");
  ASSERT(pty_expect(&t, "3\r\n"));
  ASSERT(pty_prompt(&t, P1));
  ASSERT_EQ(log_count("EVAL:1+\n2"), 1);

  /* a function over three lines */
  pty_send(&t, "function f()\r");
  ASSERT(pty_prompt(&t, P2));
  pty_send(&t, "return 1\r");
  ASSERT(pty_prompt(&t, P2));
  pty_send(&t, "end\r");
  ASSERT(pty_prompt(&t, P1));
  ASSERT_EQ(log_count("EVAL:function f()\nreturn 1\nend"), 1);

  /* completion inserts the only candidate */
  pty_send(&t, "dom\t");
  ASSERT(pty_expect(&t, "ains"));
  pty_send(&t, "\r");
  ASSERT(pty_expect(&t, "=domains\r\n"));
  ASSERT(pty_prompt(&t, P1)); /* type only at a prompt, as people do */
  ASSERT_EQ(log_count("COMPLETE:dom"), 1);
  ASSERT_EQ(log_count("EVAL:domains"), 1);

  /* several candidates: their common prefix, else a list */
  pty_send(&t, "x = pri\t");
  ASSERT(pty_expect(&t, "nt"));
  pty_send(&t, "\r");
  ASSERT(pty_expect(&t, "=x = print\r\n"));
  ASSERT(pty_prompt(&t, P1));
  ASSERT_EQ(log_count("COMPLETE:x = pri"), 1);
  pty_send(&t, "domains.c\t");
  ASSERT(pty_expect(&t, "domains.clock"));
  ASSERT(pty_expect(&t, "domains.counter"));
  pty_send(&t, "\r");
  ASSERT(pty_expect(&t, "=domains.c\r\n"));
  ASSERT(pty_prompt(&t, P1));

  /* Ctrl-C cancels the chunk, not the client */
  pty_send(&t, "1+\r");
  ASSERT(pty_prompt(&t, P2));
  pty_send(&t, "\003");
  ASSERT(pty_prompt(&t, P1));
  pty_send(&t, "7\r");
  ASSERT(pty_expect(&t, "=7\r\n"));
  ASSERT(pty_prompt(&t, P1));
  ASSERT_EQ(log_count("EVAL:7"), 1);
  ASSERT_EQ(log_count("EVAL:1+\n7"), 0);
  /* and the line being typed */
  pty_send(&t, "abc\003");
  ASSERT(pty_prompt(&t, P1));
  pty_send(&t, "8\r");
  ASSERT(pty_expect(&t, "=8\r\n"));
  ASSERT(pty_prompt(&t, P1));
  ASSERT_EQ(log_count("EVAL:abc8"), 0);
  ASSERT_EQ(log_count("EVAL:8"), 1);

  /* Ctrl-C the instant the prompt is drawn (the editor may not be reading
   * yet) is not lost either */
  pty_send(&t, "1+\r");
  ASSERT(pty_expect(&t, P2));
  pty_send(&t, "\003");
  ASSERT(pty_prompt(&t, P1));
  pty_send(&t, "9\r");
  ASSERT(pty_expect(&t, "=9\r\n"));
  ASSERT(pty_prompt(&t, P1));
  ASSERT_EQ(log_count("EVAL:1+\n9"), 0);
  ASSERT_EQ(log_count("EVAL:9"), 1);
  pty_send(&t, "8\r");
  ASSERT(pty_expect(&t, "=8\r\n"));
  ASSERT(pty_prompt(&t, P1));

  /* Ctrl-P recalls the previous entry */
  pty_send(&t, "\020\r");
  ASSERT(pty_expect(&t, "=8\r\n"));
  ASSERT(pty_prompt(&t, P1));
  ASSERT_EQ(log_count("EVAL:8"), 3);

  /* errors in red; commands */
  pty_send(&t, "error()\r");
  ASSERT(pty_expect(&t, "\033[31mboom"));
  ASSERT(pty_prompt(&t, P1));
  pty_send(&t, ":stats\r");
  ASSERT(pty_expect(&t, "slices: 42"));
  ASSERT(pty_prompt(&t, P1));

  /* Ctrl-D leaves with 0 */
  pty_send(&t, "\004");
  ASSERT_EQ(pty_wait_exit(&t), 0);

  /* the history file was written, one entry per chunk */
  char *h = read_file(fake.hist);
  ASSERT(h != NULL);
  ASSERT(strncmp(h, "_HiStOrY_V2_\n", 13) == 0);
  ASSERT(strstr(h, "\ndomains\n"));
  ASSERT(strstr(h, "\n8\n"));
  ASSERT(strstr(h, "\n:stats\n"));
  ASSERT(strstr(h, "1+")); /* the multi-line chunk, escaped by libedit */
  ASSERT(!strstr(h, "\nabc"));
  struct stat st;
  ASSERT_EQ(stat(fake.hist, &st), 0);
  ASSERT_EQ(st.st_mode & 0777, 0600);
}

/* A new console loads the history of the previous one. */
TEST_IMPL(tty_history_reloaded) {
  pty_t t;
  log_clear();
  FILE *f = fopen(fake.hist, "w");
  ASSERT(f != NULL);
  fputs("_HiStOrY_V2_\nfrom_last_time\n", f);
  fclose(f);
  ASSERT_EQ(pty_start(&t, 0), 0);
  ASSERT(pty_prompt(&t, P1));
  pty_send(&t, "\020\r");
  ASSERT(pty_expect(&t, "=from_last_time\r\n"));
  ASSERT_EQ(log_count("EVAL:from_last_time"), 1);
  pty_send(&t, ":quit\r");
  ASSERT_EQ(pty_wait_exit(&t), 0);
}

TEST_IMPL(tty_no_color) {
  pty_t t;
  ASSERT_EQ(pty_start(&t, 1), 0);
  ASSERT(pty_prompt(&t, "ved> "));
  pty_send(&t, "error()\r");
  ASSERT(pty_expect(&t, "boom"));
  ASSERT(pty_prompt(&t, "ved> "));
  ASSERT(!strstr(t.buf, "\033[31m"));
  ASSERT(!strstr(t.buf, "\033[1;32m"));
  pty_send(&t, "\004");
  ASSERT_EQ(pty_wait_exit(&t), 0);
}

/* Runs the tests around one fake host. */
static const vh_test_entry_t tests[] = {
    TEST_ENTRY(e_ok),          TEST_ENTRY(e_error),
    TEST_ENTRY(e_incomplete),  TEST_ENTRY(e_commands_and_sequence),
    TEST_ENTRY(no_host),       TEST_ENTRY(bad_usage),
    TEST_ENTRY(piped_console), TEST_ENTRY(host_closes),
    TEST_ENTRY(tty_console),   TEST_ENTRY(tty_history_reloaded),
    TEST_ENTRY(tty_no_color),
};

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (fake_start() != 0) {
    fprintf(stderr, "cannot start the fake host\n");
    return 1;
  }
  int rc = vh_test__run(tests, sizeof tests / sizeof tests[0], argc, argv);
  fake_finish();
  return rc;
}
