/*
 * gate.c - `vedhost run --rehearse N [--rehearse-strict]`: every hot
 * reload waits for a rehearsal of the new scripts on the last N slices of
 * recorded traffic (README "Safe deploys").
 *
 * HOW. A trigger (a script change, SIGHUP, the REPL's :reload) does not
 * reload at once: this file starts `vedhost rehearse --gate --data DIR
 * --last N SCRIPT_OR_DIR...` (the running executable, uv_exepath) as a
 * child process and keeps the loop running: the rehearsal reads DIR's
 * store as a RocksDB secondary, like inspect, and runs on the other core,
 * so handlers, timers and replies carry on meanwhile. When the child ends
 * (its exit code, vh_rehearse_cmd.h; its output read through pipes):
 *   0 clean              reload (vh_reload__now)
 *   1 differences        log the verdict and the first differences, then
 *                        reload; with --rehearse-strict refuse
 *   3 handler errors     refuse: log the verdict and the first errors; the
 *                        old code keeps running with its state
 *   4 could not rehearse (no retained versions, no input log yet, ...):
 *                        log why, reload anyway; --rehearse-strict refuses
 * Before reloading, the scripts are hashed again (vh_reload__scan): if they
 * changed while the rehearsal ran, it is started again on the new bytes,
 * so the code that goes live is the code that was rehearsed. A trigger
 * while a rehearsal runs is folded into it (the scan at its end sees the
 * change). A watch trigger with nothing changed starts nothing.
 *
 * COST. The rehearsal is a process of its own: the loop thread does only
 * the spawn and the reads of its output. The reload is delayed by the
 * rehearsal's run time (about the time the host spent on those slices,
 * bench/rehearse_bench.sh), which N bounds.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"
#include "vh_log.h"

/* Output kept from the child (the first bytes: errors come first). */
#define VH_GATE_OUT_MAX 65536

struct vh_gate {
  vh_host_t *h;
  uv_process_t proc;
  uv_pipe_t out, err;
  int open;       /* handles still open (proc, out, err) */
  int running;    /* a child is running */
  int exited;     /* its exit code is known */
  int64_t status; /* exit status */
  int term_sig;
  int pid;
  int again;    /* a trigger came while it ran */
  int force;    /* reload even if no script changed */
  uint64_t fp;  /* hash of the scripts being rehearsed */
  char why[64]; /* the trigger */
  char *buf;    /* [owned] stdout (VH_GATE_OUT_MAX at most) */
  size_t len;
  char *ebuf; /* [owned] stderr */
  size_t elen;
  int64_t t0; /* mono ns at spawn */
};

char **vh_gate__argv(vh_host_t *h, int n, int json) {
  int nargs = 0;
  char **args = vh_reload__args(h, &nargs);
  char exe[4096];
  size_t el = sizeof exe;
  if (uv_exepath(exe, &el) != 0) return NULL;
  char **v = calloc((size_t)nargs + 9, sizeof *v);
  if (!v) return NULL;
  char nb[32];
  snprintf(nb, sizeof nb, "%d", n);
  int k = 0;
  v[k++] = strdup(exe);
  v[k++] = strdup("rehearse");
  v[k++] = strdup(json ? "--json" : "--gate");
  v[k++] = strdup("--data");
  v[k++] = strdup(h->opts.data_dir);
  v[k++] = strdup("--last");
  v[k++] = strdup(nb);
  v[k++] = strdup("--");
  for (int i = 0; i < nargs; i++) {
    char *abs = realpath(args[i], NULL);
    v[k++] = abs ? abs : strdup(args[i]);
  }
  for (int i = 0; i < k; i++)
    if (!v[i]) {
      vh_gate__argv_free(v);
      return NULL;
    }
  return v;
}

void vh_gate__argv_free(char **argv) {
  if (!argv) return;
  for (int i = 0; argv[i]; i++) free(argv[i]);
  free(argv);
}

static void vh_gate_start(struct vh_gate *g);

/* Append up to n lines of buf that start with prefix to out. */
static void vh_gate_lines(const char *buf, size_t len, const char *prefix,
                          int n, char *out, size_t cap) {
  size_t pl = strlen(prefix), used = strlen(out);
  const char *p = buf, *endp = buf + len;
  while (p < endp && n > 0) {
    const char *nl = memchr(p, '\n', (size_t)(endp - p));
    size_t l = nl ? (size_t)(nl - p) : (size_t)(endp - p);
    if (l >= pl && memcmp(p, prefix, pl) == 0 && used + 4 < cap) {
      int w = snprintf(out + used, cap - used, "%s%.*s", used ? " | " : "",
                       (int)l, p);
      used = w > 0 && (size_t)w < cap - used ? used + (size_t)w : cap - 1;
      n--;
    }
    p = nl ? nl + 1 : endp;
  }
}

/* The last line of buf (the verdict), copied into out. */
static void vh_gate_last_line(const char *buf, size_t len, char *out,
                              size_t cap) {
  while (len > 0 && buf[len - 1] == '\n') len--;
  size_t s = len;
  while (s > 0 && buf[s - 1] != '\n') s--;
  snprintf(out, cap, "%.*s", (int)(len - s), buf + s);
}

/* The child ended and its pipes are drained: decide. */
static void vh_gate_done(struct vh_gate *g) {
  vh_host_t *h = g->h;
  g->running = 0;
  double ms = (double)(vh_host__mono_ns() - g->t0) / 1e6;
  if (h->phase != VH_PHASE_RUN || h->stop_requested) return;
  char err[1024] = "";
  uint64_t fp = 0;
  int same = 0;
  if (vh_reload__scan(h, &fp, &same, err, sizeof err) == 0 && fp != g->fp) {
    vh_log(VH_LOG_INFO, "vedhost",
           "reload (%s): the scripts changed during the rehearsal; "
           "rehearsing them again",
           g->why);
    g->again = 0;
    vh_gate_start(g);
    return;
  }
  g->again = 0;
  char verdict[600] = "", first[2048] = "";
  vh_gate_last_line(g->buf ? g->buf : "", g->len, verdict, sizeof verdict);
  int code = g->term_sig ? -1 : (int)g->status;
  int go = 0;
  if (code == 0) {
    vh_log(VH_LOG_INFO, "vedhost",
           "reload (%s): rehearsal clean in %.0f ms: %s", g->why, ms, verdict);
    go = 1;
  } else if (code == 1) {
    vh_gate_lines(g->buf ? g->buf : "", g->len, "state: ", 3, first,
                  sizeof first);
    vh_gate_lines(g->buf ? g->buf : "", g->len, "reply ", 3, first,
                  sizeof first);
    if (h->opts.rehearse_strict) {
      vh_log(VH_LOG_ERROR, "vedhost",
             "reload (%s) refused by the rehearsal (--rehearse-strict): %s; "
             "first differences: %s; the old code keeps running",
             g->why, verdict, first);
    } else {
      vh_log(VH_LOG_WARN, "vedhost",
             "reload (%s): rehearsal in %.0f ms: %s; first differences: %s; "
             "going live (--rehearse-strict would refuse)",
             g->why, ms, verdict, first);
      go = 1;
    }
  } else if (code == 3) {
    vh_gate_lines(g->buf ? g->buf : "", g->len, "error ", 3, first,
                  sizeof first);
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) refused by the rehearsal: %s; first errors: %s; the "
           "old code keeps running",
           g->why, verdict, first);
  } else {
    char why[600];
    vh_gate_last_line(g->ebuf ? g->ebuf : "", g->elen, why, sizeof why);
    if (!why[0])
      snprintf(why, sizeof why, "exit %d%s", code,
               g->term_sig ? " (killed by a signal)" : "");
    if (h->opts.rehearse_strict) {
      vh_log(VH_LOG_ERROR, "vedhost",
             "reload (%s) refused: the rehearsal could not run "
             "(--rehearse-strict): %s; the old code keeps running",
             g->why, why);
    } else {
      vh_log(VH_LOG_WARN, "vedhost",
             "reload (%s): the rehearsal could not run (%s); reloading "
             "without it",
             g->why, why);
      go = 1;
    }
  }
  if (go) vh_reload__now(h, g->why, NULL, 0);
}

static void vh_gate_closed(uv_handle_t *hd) {
  struct vh_gate *g = hd->data;
  if (--g->open == 0 && g->exited) vh_gate_done(g);
}

static void vh_gate_alloc(uv_handle_t *hd, size_t sugg, uv_buf_t *b) {
  (void)hd;
  static char scratch[16384];
  (void)sugg;
  b->base = scratch;
  b->len = sizeof scratch;
}

static void vh_gate_keep(char **buf, size_t *len, const char *p, size_t n) {
  if (*len >= VH_GATE_OUT_MAX) return;
  if (n > VH_GATE_OUT_MAX - *len) n = VH_GATE_OUT_MAX - *len;
  char *nb = realloc(*buf, *len + n + 1);
  if (!nb) return;
  memcpy(nb + *len, p, n);
  *len += n;
  nb[*len] = '\0';
  *buf = nb;
}

static void vh_gate_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct vh_gate *g = s->data;
  if (n > 0) {
    if (s == (uv_stream_t *)&g->out)
      vh_gate_keep(&g->buf, &g->len, b->base, (size_t)n);
    else
      vh_gate_keep(&g->ebuf, &g->elen, b->base, (size_t)n);
    return;
  }
  if (n < 0) uv_close((uv_handle_t *)s, vh_gate_closed);
}

static void vh_gate_exit(uv_process_t *p, int64_t status, int sig) {
  struct vh_gate *g = p->data;
  g->status = status;
  g->term_sig = sig;
  g->exited = 1;
  uv_close((uv_handle_t *)p, vh_gate_closed);
}

static void vh_gate_start(struct vh_gate *g) {
  vh_host_t *h = g->h;
  char err[1024];
  int same = 0;
  if (vh_reload__scan(h, &g->fp, &same, err, sizeof err) != 0) {
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) failed: %s; the old code keeps running", g->why, err);
    return;
  }
  if (same && !g->force) {
    vh_log(VH_LOG_DEBUG, "vedhost", "reload (%s): no script changed", g->why);
    return;
  }
  char **argv = vh_gate__argv(h, h->opts.rehearse, 0);
  if (!argv) {
    vh_log(VH_LOG_ERROR, "vedhost", "reload (%s): out of memory", g->why);
    return;
  }
  free(g->buf);
  free(g->ebuf);
  g->buf = g->ebuf = NULL;
  g->len = g->elen = 0;
  g->exited = 0;
  g->status = 0;
  g->term_sig = 0;
  uv_pipe_init(&h->loop, &g->out, 0);
  uv_pipe_init(&h->loop, &g->err, 0);
  g->out.data = g->err.data = g->proc.data = g;
  uv_stdio_container_t io[3];
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[1].data.stream = (uv_stream_t *)&g->out;
  io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[2].data.stream = (uv_stream_t *)&g->err;
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.exit_cb = vh_gate_exit;
  po.file = argv[0];
  po.args = argv;
  po.stdio = io;
  po.stdio_count = 3;
  g->open = 3;
  g->t0 = vh_host__mono_ns();
  int rc = uv_spawn(&h->loop, &g->proc, &po);
  vh_gate__argv_free(argv);
  if (rc != 0) {
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) failed: cannot start the rehearsal: %s; the old "
           "code keeps running",
           g->why, uv_strerror(rc));
    g->exited = 0; /* closed without a decision */
    uv_close((uv_handle_t *)&g->proc, vh_gate_closed);
    uv_close((uv_handle_t *)&g->out, vh_gate_closed);
    uv_close((uv_handle_t *)&g->err, vh_gate_closed);
    return;
  }
  g->running = 1;
  g->pid = g->proc.pid;
  uv_read_start((uv_stream_t *)&g->out, vh_gate_alloc, vh_gate_read);
  uv_read_start((uv_stream_t *)&g->err, vh_gate_alloc, vh_gate_read);
  vh_log(VH_LOG_INFO, "vedhost",
         "reload (%s): rehearsing the new scripts on the last %d slices "
         "first (pid %d)",
         g->why, h->opts.rehearse, g->pid);
}

int vh_gate__request(vh_host_t *h, int force, const char *why) {
  if (h->phase != VH_PHASE_RUN || h->stop_requested) return VH_HOST_ESTATE;
  struct vh_gate *g = h->gate;
  if (!g) {
    g = calloc(1, sizeof *g);
    if (!g) return VH_ENOMEM;
    g->h = h;
    h->gate = g;
  }
  if (g->running || g->open) { /* folded into the running one */
    g->again = 1;
    g->force |= force;
    return 0;
  }
  g->force = force;
  snprintf(g->why, sizeof g->why, "%s", why);
  vh_gate_start(g);
  return 0;
}

void vh_gate__free(vh_host_t *h) {
  struct vh_gate *g = h->gate;
  if (!g) return;
  if (g->running && !g->exited && g->pid > 0) kill(g->pid, SIGTERM);
  free(g->buf);
  free(g->ebuf);
  free(g);
  h->gate = NULL;
}
