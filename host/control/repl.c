/* repl.c: `vedhost repl`, the console that attaches to a running host.
 *
 * WHAT. A thin client of the control socket (frame layout in control.c):
 * every input goes to the host as one request and the host's reply is
 * printed as it is; the host does the evaluating, the printing of results
 * (scripts/pretty.lua) and the completing. So this file holds no Lua.
 *
 * INPUT RULES (as `lua` does it, but the parsing is the host's):
 * - A line starting with ':' on a fresh prompt is a command. ":quit" leaves;
 *   the others go to the host as COMMAND with the colon removed.
 * - Anything else is appended to the current chunk (lines joined by '\n')
 *   and the whole chunk is sent as EVAL. INCOMPLETE means "read more": the
 *   prompt becomes "ved>> " and the next line is appended. OK and ERROR end
 *   the chunk, which then goes into the history as one entry.
 * - Ctrl-C drops the line being typed and the chunk; Ctrl-C while waiting
 *   for a reply is ignored (the host cannot be interrupted from here, and
 *   the next reply on the socket belongs to that request). Ctrl-D leaves.
 *
 * LINE EDITING is libedit's native API (histedit.h) rather than its
 * readline emulation: completion is a bound function, which lets this file
 * replace the word before the cursor itself, and libedit's EL_SIGNAL
 * handling restores the tty on Ctrl-C and Ctrl-Z. GNU readline is not used
 * (GPL).
 *
 * CTRL-C without a race. SIGINT stays blocked for the whole console except
 * inside ppoll() in getc_fn, our libedit read function: a Ctrl-C that
 * arrives anywhere else (while the prompt is drawn, while a reply is
 * awaited) stays pending and is taken by the next ppoll, which then ends
 * el_gets. With a plain blocking read(), a SIGINT landing just before the
 * read would be lost until the next key. (libedit's own handler runs first
 * and re-raises the signal to ours, so ppoll may wake twice.)
 *
 * COMPLETION. Tab sends COMPLETE with the text before the cursor on the
 * current line. The host answers CANDIDATES: full replacements for the word
 * before the cursor (the longest suffix of [A-Za-z0-9_.:]). One candidate
 * replaces the word; several replace it by their longest common prefix when
 * that is longer, else they are listed in columns under the line.
 *
 * HISTORY. libedit's history, at most 1000 entries, saved (mode 0600, by
 * libedit) after every entry, so a killed console loses nothing.
 */
#define _GNU_SOURCE /* ppoll, strndup */
#include "vh_repl.h"

#include "vh_cli_args.h"
#include "vh_control.h"

#include <errno.h>
#include <fcntl.h>
#include <histedit.h>
#include <locale.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <wchar.h>

#define HISTORY_SIZE 1000
#define USAGE "usage: vedhost repl [--data DIR] [-e CODE]..."

/* Set by the SIGINT handler; read and cleared by the main loop only. */
static volatile sig_atomic_t got_sigint;

/* One interactive session. */
typedef struct {
  int fd;            /* connection to the host */
  int colour;        /* colours on stdout */
  int colour_err;    /* colours on stderr */
  int cont;          /* the chunk is incomplete: continuation prompt */
  int forked;        /* :fork succeeded, no :unfork since: "ved(fork)> " */
  int lost;          /* the connection failed; the loop ends */
  char *chunk;       /* lines of the current chunk (owned), or NULL */
  size_t chunk_len;  /* bytes in chunk */
  History *hist;     /* libedit history */
  const char *hfile; /* history file (owned), NULL when off */
  sigset_t waitmask; /* the signal mask inside ppoll: SIGINT unblocked */
  EditLine *el;      /* the line editor (for the go-live question) */
  int asking;        /* the prompt is "go live? [y/N] " */
  char confirm[64];  /* the last reply offered `:reload --confirm FP` */
  int failed;        /* a chunk or command got an error reply */
} session_t;

/* ---- Socket I/O ------------------------------------------------------ */

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == EPIPE ? UV_EOF : -errno;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes; UV_EOF when the peer closes first. */
static int read_full(int fd, void *p, size_t n) {
  char *c = p;
  while (n > 0) {
    ssize_t r = read(fd, c, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno == ECONNRESET ? UV_EOF : -errno;
    }
    if (r == 0) return UV_EOF;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

int vh_repl_connect(const char *dir, int *fd) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir,
                   VH_CONTROL_SOCKET);
  if (n < 0 || (size_t)n >= sizeof sa.sun_path) return UV_ENAMETOOLONG;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  while (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    if (e == EINTR) continue;
    close(s);
    if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) return UV_ENOENT;
    return -e;
  }
  *fd = s;
  return 0;
}

int vh_repl_request(int fd, int type, const char *payload, size_t len,
                    int *rtype, char **reply, size_t *rlen) {
  unsigned char h[VH_CONTROL_HEADER];
  *reply = NULL;
  int r = vh_control_frame_header(h, type, len);
  if (r < 0) return r;
  if ((r = write_all(fd, h, sizeof h)) < 0) return r;
  if (len && (r = write_all(fd, payload, len)) < 0) return r;
  if ((r = read_full(fd, h, sizeof h)) < 0) return r;
  int t;
  size_t plen;
  char err[160];
  r = vh_control_frame_parse_header(h, VH_REPL_MAX_REPLY, 0, &t, &plen, err,
                                    sizeof err);
  if (r < 0) return UV_EPROTO;
  char *buf = malloc(plen + 1);
  if (!buf) return UV_ENOMEM;
  if ((r = read_full(fd, buf, plen)) < 0) {
    free(buf);
    return r;
  }
  buf[plen] = '\0';
  *rtype = t;
  *reply = buf;
  *rlen = plen;
  return 0;
}

/* ---- Output ---------------------------------------------------------- */

/* Prints a reply body on `f`, adding the final newline it may lack. */
static void print_body(FILE *f, const char *s, size_t n, const char *pre,
                       const char *post) {
  if (n == 0) return;
  fputs(pre, f);
  fwrite(s, 1, n, f);
  fputs(post, f);
  if (s[n - 1] != '\n') fputc('\n', f);
  fflush(f);
}

static void print_error(int colour, const char *s, size_t n) {
  fflush(stdout); /* keep stdout and stderr in order on a terminal */
  if (n == 0) {
    s = "error (no message)";
    n = strlen(s);
  }
  print_body(stderr, s, n, colour ? "\033[31m" : "", colour ? "\033[0m" : "");
}

static void lost_connection(int r) {
  if (r == UV_EOF)
    fprintf(stderr, "vedhost: the host closed the connection\n");
  else if (r == UV_EPROTO)
    fprintf(stderr, "vedhost: malformed reply from the host\n");
  else
    fprintf(stderr, "vedhost: lost the connection to the host: %s\n",
            uv_strerror(r));
}

/* Nonzero when colours may be used on descriptor `fd`. */
static int want_colour(int fd) {
  const char *nc = getenv("NO_COLOR");
  return isatty(fd) && !(nc && *nc);
}

/* ---- -e mode --------------------------------------------------------- */

/* Runs one -e CODE; returns the exit code. */
static int run_one(int fd, const char *code) {
  int type = VH_CONTROL_EVAL;
  if (code[0] == ':') {
    code++;
    if (strcmp(code, "quit") == 0) return 0;
    type = VH_CONTROL_COMMAND;
  }
  int rtype;
  char *rep;
  size_t rlen;
  int r = vh_repl_request(fd, type, code, strlen(code), &rtype, &rep, &rlen);
  if (r < 0) {
    lost_connection(r);
    return 1;
  }
  int rc = 0;
  switch (rtype) {
    case VH_CONTROL_OK:
      print_body(stdout, rep, rlen, "", "");
      break;
    case VH_CONTROL_ERROR:
      print_error(want_colour(2), rep, rlen);
      rc = 1;
      break;
    case VH_CONTROL_INCOMPLETE:
      fflush(stdout);
      fprintf(stderr, "vedhost: incomplete chunk%s%s\n", rlen ? ": " : "", rep);
      rc = 1;
      break;
    default:
      fprintf(stderr, "vedhost: unexpected %s reply from the host\n",
              vh_control_type_name(rtype));
      rc = 1;
  }
  free(rep);
  return rc;
}

/* ---- Interactive mode ------------------------------------------------ */

static void on_sigint(int sig) {
  (void)sig;
  got_sigint = 1;
}

static char *prompt_fn(EditLine *el) {
  session_t *s;
  el_get(el, EL_CLIENTDATA, &s);
  if (s->asking) return "go live? [y/N] ";
  if (s->forked && !s->colour) return s->cont ? "ved(fork)>> " : "ved(fork)> ";
  if (s->forked)
    return s->cont ? "\1\033[1;33m\1ved(fork)>>\1\033[0m\1 "
                   : "\1\033[1;33m\1ved(fork)>\1\033[0m\1 ";
  if (!s->colour) return s->cont ? "ved>> " : "ved> ";
  /* \1 brackets the escapes so libedit does not count them as columns;
   * libedit drops an escape that ends the prompt, so the reset comes
   * before the final space */
  return s->cont ? "\1\033[1;32m\1ved>>\1\033[0m\1 "
                 : "\1\033[1;32m\1ved>\1\033[0m\1 ";
}

/* libedit's read function: one character from stdin, decoded in the
 * locale's encoding. Returns 1, 0 at end of input, -1 on Ctrl-C or an
 * error (el_gets then returns NULL). See CTRL-C at the top. */
static int getc_fn(EditLine *el, wchar_t *wc) {
  session_t *s;
  el_get(el, EL_CLIENTDATA, &s);
  mbstate_t st;
  memset(&st, 0, sizeof st);
  for (;;) {
    if (got_sigint) return -1;
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (ppoll(&p, 1, NULL, &s->waitmask) < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    char b;
    ssize_t n = read(0, &b, 1);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return -1;
    }
    if (n == 0) return 0;
    size_t k = mbrtowc(wc, &b, 1, &st);
    if (k == (size_t)-2) continue; /* more bytes of this character */
    if (k == (size_t)-1) {         /* invalid: dropped, as libedit does */
      memset(&st, 0, sizeof st);
      continue;
    }
    if (k == 0) *wc = L'\0';
    return 1;
  }
}

/* Ctrl-C bound as a key (for terminals where it does not raise SIGINT). */
static unsigned char cancel_fn(EditLine *el, int ch) {
  (void)el;
  (void)ch;
  got_sigint = 1;
  return CC_NEWLINE;
}

static int is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':';
}

/* Splits a CANDIDATES body in place into lines; drops empty ones and those
 * holding control bytes (they would corrupt the line). Returns how many are
 * left in `out` (up to max). */
static size_t split_candidates(char *body, char **out, size_t max) {
  size_t n = 0;
  char *save = NULL;
  for (char *tok = strtok_r(body, "\n", &save); tok && n < max;
       tok = strtok_r(NULL, "\n", &save)) {
    int ok = *tok != '\0';
    for (const unsigned char *p = (const unsigned char *)tok; *p && ok; p++)
      if (*p < 32 || *p == 127) ok = 0;
    if (ok) out[n++] = tok;
  }
  return n;
}

/* Length of the common prefix of all candidates, cut back so as not to
 * split a UTF-8 sequence. */
static size_t common_prefix(char **c, size_t n) {
  size_t len = strlen(c[0]);
  for (size_t i = 1; i < n; i++) {
    size_t k = 0;
    while (k < len && c[i][k] == c[0][k]) k++;
    len = k;
  }
  while (len > 0 && ((unsigned char)c[0][len] & 0xC0) == 0x80) len--;
  return len;
}

static void list_candidates(EditLine *el, char **c, size_t n) {
  int cols = 80;
  size_t width = 0;
  if (el_get(el, EL_GETTC, "co", &cols, (void *)0) != 0 || cols < 20) cols = 80;
  for (size_t i = 0; i < n; i++)
    if (strlen(c[i]) > width) width = strlen(c[i]);
  width += 2;
  size_t per = (size_t)cols / width;
  if (per == 0) per = 1;
  fputc('\n', stdout);
  for (size_t i = 0; i < n; i++) {
    if ((i + 1) % per == 0 || i + 1 == n)
      fprintf(stdout, "%s\n", c[i]);
    else
      fprintf(stdout, "%-*s", (int)width, c[i]);
  }
  fflush(stdout);
}

/* Tab: asks the host; see COMPLETION at the top. */
static unsigned char complete_fn(EditLine *el, int ch) {
  session_t *s;
  (void)ch;
  el_get(el, EL_CLIENTDATA, &s);
  if (s->lost) return CC_REFRESH_BEEP;
  const LineInfo *li = el_line(el);
  size_t before = (size_t)(li->cursor - li->buffer);
  const char *w = li->cursor;
  while (w > li->buffer && is_word_char(w[-1])) w--;
  size_t wlen = (size_t)(li->cursor - w);
  char *word = strndup(w, wlen);
  if (!word) return CC_REFRESH_BEEP;

  int rtype;
  char *rep;
  size_t rlen;
  int r = vh_repl_request(s->fd, VH_CONTROL_COMPLETE, li->buffer, before,
                          &rtype, &rep, &rlen);
  if (r < 0) {
    s->lost = r;
    free(word);
    return CC_REFRESH_BEEP;
  }
  unsigned char res = CC_REFRESH_BEEP;
  char *cand[512];
  size_t n = rtype == VH_CONTROL_CANDIDATES
                 ? split_candidates(rep, cand, sizeof cand / sizeof *cand)
                 : 0;
  if (n > 0) {
    size_t p = n == 1 ? strlen(cand[0]) : common_prefix(cand, n);
    if (p > wlen || (p == wlen && n == 1 && strncmp(cand[0], word, p))) {
      char *ins = strndup(cand[0], p);
      if (ins) {
        el_deletestr(el, (int)wlen); /* word chars are ASCII: 1 byte each */
        el_insertstr(el, ins);
        free(ins);
        res = CC_REFRESH;
      }
    } else if (n > 1) {
      list_candidates(el, cand, n);
      res = CC_REDISPLAY;
    }
  }
  free(rep);
  free(word);
  return res;
}

static void history_add(session_t *s, const char *entry) {
  HistEvent ev;
  if (!*entry) return;
  history(s->hist, &ev, H_ENTER, entry);
  if (s->hfile) history(s->hist, &ev, H_SAVE, s->hfile);
}

static int chunk_append(session_t *s, const char *line, size_t n) {
  size_t add = n + (s->chunk ? 1 : 0);
  char *c = realloc(s->chunk, s->chunk_len + add + 1);
  if (!c) return UV_ENOMEM;
  if (s->chunk) c[s->chunk_len++] = '\n';
  memcpy(c + s->chunk_len, line, n);
  s->chunk_len += n;
  c[s->chunk_len] = '\0';
  s->chunk = c;
  return 0;
}

static void chunk_reset(session_t *s) {
  free(s->chunk);
  s->chunk = NULL;
  s->chunk_len = 0;
  s->cont = 0;
}

/* Sends one request from the console and prints its reply. Returns the
 * reply type, or a negative error (then the session is lost). */
static int console_request(session_t *s, int type, const char *p, size_t n) {
  int rtype;
  char *rep;
  size_t rlen;
  int r = vh_repl_request(s->fd, type, p, n, &rtype, &rep, &rlen);
  if (r < 0) {
    s->lost = r;
    return r;
  }
  s->confirm[0] = '\0';
  if (rtype == VH_CONTROL_OK) {
    print_body(stdout, rep, rlen, "", "");
    /* `:reload --rehearse N` ends with the command that goes live
     * (host/repl/repl_rehearse.c): the console asks for it */
    static const char offer[] = "to go live: :reload --confirm ";
    size_t k = rlen;
    while (k > 0 && rep[k - 1] != '\n') k--;
    if (type == VH_CONTROL_COMMAND && rlen - k > sizeof offer - 1 &&
        memcmp(rep + k, offer, sizeof offer - 1) == 0 &&
        rlen - k - (sizeof offer - 1) < sizeof s->confirm)
      snprintf(s->confirm, sizeof s->confirm, "%.*s",
               (int)(rlen - k - (sizeof offer - 1)),
               rep + k + sizeof offer - 1);
  } else if (rtype == VH_CONTROL_ERROR) {
    print_error(s->colour_err, rep, rlen);
    s->failed = 1;
  } else if (rtype != VH_CONTROL_INCOMPLETE) {
    fprintf(stderr, "vedhost: unexpected %s reply from the host\n",
            vh_control_type_name(rtype));
    s->failed = 1;
  }
  free(rep);
  return rtype;
}

/* Handles one line read by libedit (without its newline). Returns 1 to go
 * on, 0 to leave. */
static int console_line(session_t *s, char *line) {
  if (!s->cont) {
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0') return 1;
    if (*p == ':') {
      char *end = p + strlen(p);
      while (end > p && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
      history_add(s, p);
      if (strcmp(p, ":quit") == 0) return 0;
      int t = console_request(s, VH_CONTROL_COMMAND, p + 1, strlen(p + 1));
      if (t == VH_CONTROL_OK && s->confirm[0] && s->el) { /* go live? */
        char cmd[96];
        snprintf(cmd, sizeof cmd, "reload --confirm %s", s->confirm);
        s->asking = 1;
        int count = 0;
        const char *ans = el_gets(s->el, &count);
        s->asking = 0;
        if (ans && count > 0 && (ans[0] == 'y' || ans[0] == 'Y'))
          console_request(s, VH_CONTROL_COMMAND, cmd, strlen(cmd));
        else
          fputs("not reloaded\n", stdout);
        s->confirm[0] = '\0';
      }
      if (t == VH_CONTROL_OK && strcmp(p, ":fork") == 0) s->forked = 1;
      if (t == VH_CONTROL_OK && strcmp(p, ":unfork") == 0) s->forked = 0;
      return !s->lost;
    }
  }
  if (chunk_append(s, line, strlen(line)) < 0) {
    fprintf(stderr, "vedhost: out of memory\n");
    chunk_reset(s);
    return 1;
  }
  int t = console_request(s, VH_CONTROL_EVAL, s->chunk, s->chunk_len);
  if (t == VH_CONTROL_INCOMPLETE) {
    s->cont = 1;
    return 1;
  }
  if (t >= 0) history_add(s, s->chunk);
  chunk_reset(s);
  return !s->lost;
}

static const char *history_file(void) {
  const char *h = getenv("VEDHOST_HISTORY");
  if (h) return *h ? strdup(h) : NULL;
  const char *home = getenv("HOME");
  if (!home || !*home) {
    struct passwd *pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : NULL;
  }
  if (!home) return NULL;
  size_t n = strlen(home) + sizeof "/.vedhost_history";
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/.vedhost_history", home);
  return p;
}

/* Puts SIGINT back as it was, dropping a Ctrl-C still pending (it was
 * meant for the console, not for whatever the old action is). */
static void restore_sigint(const struct sigaction *old_int,
                           const sigset_t *old_mask) {
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGINT, &ign, NULL); /* discards a pending SIGINT */
  sigprocmask(SIG_SETMASK, old_mask, NULL);
  sigaction(SIGINT, old_int, NULL);
}

static int run_console(int fd) {
  session_t s;
  memset(&s, 0, sizeof s);
  s.fd = fd;
  s.colour = want_colour(1);
  s.colour_err = s.colour && want_colour(2);
  s.hfile = history_file();

  /* before el_init, which looks for UTF-8; without a locale in the
   * environment, C.UTF-8 keeps non-ASCII input (state keys, strings) */
  const char *loc = setlocale(LC_CTYPE, "");
  if (!loc || strcmp(loc, "C") == 0 || strcmp(loc, "POSIX") == 0)
    setlocale(LC_CTYPE, "C.UTF-8");
  struct sigaction sa, old_int;
  sigset_t block, old_mask;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint; /* no SA_RESTART: ppoll returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &old_mask);
  s.waitmask = old_mask;
  sigdelset(&s.waitmask, SIGINT);

  HistEvent ev;
  s.hist = history_init();
  EditLine *el = el_init("vedhost", stdin, stdout, stderr);
  if (!s.hist || !el) {
    fprintf(stderr, "vedhost: cannot start the line editor\n");
    if (el) el_end(el);
    if (s.hist) history_end(s.hist);
    free((void *)s.hfile);
    restore_sigint(&old_int, &old_mask);
    return 1;
  }
  s.el = el;

  history(s.hist, &ev, H_SETSIZE, HISTORY_SIZE);
  history(s.hist, &ev, H_SETUNIQUE, 1);
  if (s.hfile) history(s.hist, &ev, H_LOAD, s.hfile);
  el_set(el, EL_CLIENTDATA, &s);
  el_set(el, EL_EDITOR, "emacs");
  el_set(el, EL_SIGNAL, 1);
  el_set(el, EL_PROMPT_ESC, prompt_fn, '\1');
  el_set(el, EL_GETCFN, getc_fn);
  el_set(el, EL_HIST, history, s.hist);
  el_set(el, EL_ADDFN, "vh-complete", "complete from the host", complete_fn);
  el_set(el, EL_ADDFN, "vh-cancel", "cancel the line", cancel_fn);
  el_set(el, EL_BIND, "^I", "vh-complete", (char *)0);
  el_set(el, EL_BIND, "^C", "vh-cancel", (char *)0);
  el_source(el, NULL); /* ~/.editrc, as other libedit programs */

  int rc = 0;
  for (;;) {
    int count = 0;
    got_sigint = 0;
    const char *line = el_gets(el, &count);
    if (got_sigint) { /* Ctrl-C: drop the line and the chunk */
      fputs("^C\n", stdout);
      fflush(stdout);
      chunk_reset(&s);
      continue;
    }
    if (!line || count <= 0) { /* Ctrl-D or end of input */
      if (isatty(0)) fputc('\n', stdout);
      break;
    }
    char *copy = strdup(line);
    if (!copy) break;
    size_t n = strlen(copy);
    while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == '\r'))
      copy[--n] = '\0';
    int go_on = console_line(&s, copy);
    free(copy);
    if (s.lost) {
      lost_connection(s.lost);
      rc = 1;
      break;
    }
    if (!go_on) break;
  }
  /* Input from a pipe or a file is a script: like `lua < file`, it fails
   * (exit 1) when a chunk failed or the input ended inside a chunk. */
  if (rc == 0 && !isatty(0)) {
    if (s.cont && s.chunk) {
      fflush(stdout);
      fprintf(stderr,
              "vedhost: repl: the input ended inside an incomplete "
              "chunk; it was not run\n");
      s.failed = 1;
    }
    if (s.failed) rc = 1;
  }
  fflush(stdout);
  chunk_reset(&s);
  el_end(el);
  history_end(s.hist);
  free((void *)s.hfile);
  restore_sigint(&old_int, &old_mask);
  return rc;
}

/* ---- Entry point ----------------------------------------------------- */

/* What the command line of repl asked for. */
typedef struct {
  const char *dir;    /* [borrowed] --data */
  const char **codes; /* [owned array; strings borrowed] -e, in order */
  size_t ncodes;
} repl_args_t;

static int repl_arg(void *arg, int opt, const char *val) {
  repl_args_t *a = arg;
  if (opt == 0)
    a->dir = val;
  else
    a->codes[a->ncodes++] = val;
  return 0;
}

int vh_repl_main(int argc, char **argv) {
  static const vh_cli_opt_t opts[] = {{"--data", 1, 0}, {"-e", 1, 1}};
  static const vh_cli_cmd_t cmd = {
      "repl", opts, 2, 0,
      USAGE
      "\n"
      "Attach to the host running on DIR (default " VH_DEFAULT_DATA_DIR
      ").\n"
      "  -e CODE   run CODE in the host, print the results, exit\n"
      "            (0 on success, 1 on error); may be repeated\n"
      "Without -e: an interactive console; :help lists commands,\n"
      ":quit or Ctrl-D leaves, Ctrl-C cancels the line.\n"};
  repl_args_t a = {VH_DEFAULT_DATA_DIR, NULL, 0};
  a.codes = calloc((size_t)(argc > 0 ? argc : 1), sizeof *a.codes);
  if (!a.codes) return 1;
  int prc = vh_cli_parse(&cmd, argc, argv, repl_arg, &a);
  if (prc != 0) {
    free(a.codes);
    return prc == 1 ? 0 : 2;
  }
  const char *dir = a.dir;
  const char **codes = a.codes;
  size_t ncodes = a.ncodes;

  int fd;
  int r = vh_repl_connect(dir, &fd);
  if (r == UV_ENOENT) {
    fprintf(stderr,
            "vedhost: no host is running on %s (start one with: vedhost run "
            "--data %s SCRIPT)\n",
            dir, dir);
    free(codes);
    return 1;
  }
  if (r < 0) {
    fprintf(stderr, "vedhost: cannot connect to %s/%s: %s\n", dir,
            VH_CONTROL_SOCKET, uv_strerror(r));
    free(codes);
    return 1;
  }
  int rc = 0;
  if (ncodes > 0) {
    for (size_t i = 0; i < ncodes && rc == 0; i++) rc = run_one(fd, codes[i]);
  } else {
    rc = run_console(fd);
  }
  close(fd);
  free(codes);
  return rc;
}
