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

/* One rehearsal child (vh_gate__spawn). */
typedef struct vh_rhc {
  vh_host_t *h;
  uv_process_t proc;
  uv_pipe_t out, err;
  int open;       /* handles still open (proc, out, err) */
  int exited;     /* its exit code is known */
  int64_t status; /* exit status */
  int term_sig;
  int pid;
  uint64_t fp; /* hash of the scripts rehearsed */
  char *buf;   /* [owned] stdout (VH_GATE_OUT_MAX at most) */
  size_t len;
  char *ebuf; /* [owned] stderr */
  size_t elen;
  int64_t t0; /* mono ns at spawn */
  vh_gate_done_fn fn;
  void *arg;
  struct vh_rhc *next; /* in gate->kids */
} vh_rhc_t;

struct vh_gate {
  vh_host_t *h;
  vh_rhc_t *kids; /* running rehearsals */
  int running;    /* the reload gate's rehearsal runs */
  int force;      /* reload even if no script changed */
  char why[64];   /* the trigger */
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

void vh_gate__last_line(const char *buf, size_t len, char *out, size_t cap) {
  if (!buf) len = 0;
  while (len > 0 && buf[len - 1] == '\n') len--;
  size_t s = len;
  while (s > 0 && buf[s - 1] != '\n') s--;
  snprintf(out, cap, "%.*s", (int)(len - s), len ? buf + s : "");
}

/* ---- one child ---- */

static void vh_rhc_unlink(vh_rhc_t *c) {
  struct vh_gate *g = c->h->gate;
  for (vh_rhc_t **pp = &g->kids; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
}

static void vh_rhc_closed(uv_handle_t *hd) {
  vh_rhc_t *c = hd->data;
  if (--c->open > 0) return;
  vh_rhc_unlink(c);
  double ms = (double)(vh_host__mono_ns() - c->t0) / 1e6;
  int code = !c->exited ? -2 : c->term_sig ? -1 : (int)c->status;
  if (c->fn)
    c->fn(c->arg, code, c->buf ? c->buf : "", c->len, c->ebuf ? c->ebuf : "",
          c->elen, c->fp, ms);
  free(c->buf);
  free(c->ebuf);
  free(c);
}

static void vh_rhc_alloc(uv_handle_t *hd, size_t sugg, uv_buf_t *b) {
  (void)hd;
  (void)sugg;
  static char scratch[16384]; /* the loop thread only; consumed at once */
  b->base = scratch;
  b->len = sizeof scratch;
}

static void vh_rhc_keep(char **buf, size_t *len, const char *p, size_t n) {
  if (*len >= VH_GATE_OUT_MAX) return;
  if (n > VH_GATE_OUT_MAX - *len) n = VH_GATE_OUT_MAX - *len;
  char *nb = realloc(*buf, *len + n + 1);
  if (!nb) return;
  memcpy(nb + *len, p, n);
  *len += n;
  nb[*len] = '\0';
  *buf = nb;
}

static void vh_rhc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  vh_rhc_t *c = s->data;
  if (n > 0) {
    if (s == (uv_stream_t *)&c->out)
      vh_rhc_keep(&c->buf, &c->len, b->base, (size_t)n);
    else
      vh_rhc_keep(&c->ebuf, &c->elen, b->base, (size_t)n);
    return;
  }
  if (n < 0) uv_close((uv_handle_t *)s, vh_rhc_closed);
}

static void vh_rhc_exit(uv_process_t *p, int64_t status, int sig) {
  vh_rhc_t *c = p->data;
  c->status = status;
  c->term_sig = sig;
  c->exited = 1;
  uv_close((uv_handle_t *)p, vh_rhc_closed);
}

static struct vh_gate *vh_gate_get(vh_host_t *h) {
  if (!h->gate) {
    h->gate = calloc(1, sizeof *h->gate);
    if (h->gate) h->gate->h = h;
  }
  return h->gate;
}

int vh_gate__spawn(vh_host_t *h, int n, int json, uint64_t fp,
                   vh_gate_done_fn fn, void *arg, char *err, size_t cap) {
  struct vh_gate *g = vh_gate_get(h);
  vh_rhc_t *c = g ? calloc(1, sizeof *c) : NULL;
  char **argv = c ? vh_gate__argv(h, n, json) : NULL;
  if (!argv) {
    free(c);
    snprintf(err, cap, "out of memory");
    return VH_ENOMEM;
  }
  c->h = h;
  c->fp = fp;
  c->fn = fn;
  c->arg = arg;
  uv_pipe_init(&h->loop, &c->out, 0);
  uv_pipe_init(&h->loop, &c->err, 0);
  c->out.data = c->err.data = c->proc.data = c;
  uv_stdio_container_t io[3];
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[1].data.stream = (uv_stream_t *)&c->out;
  io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  io[2].data.stream = (uv_stream_t *)&c->err;
  uv_process_options_t po;
  memset(&po, 0, sizeof po);
  po.exit_cb = vh_rhc_exit;
  po.file = argv[0];
  po.args = argv;
  po.stdio = io;
  po.stdio_count = 3;
  c->open = 3;
  c->t0 = vh_host__mono_ns();
  c->next = g->kids;
  g->kids = c;
  int rc = uv_spawn(&h->loop, &c->proc, &po);
  vh_gate__argv_free(argv);
  if (rc != 0) {
    snprintf(err, cap, "cannot start the rehearsal: %s", uv_strerror(rc));
    c->fn = NULL; /* the caller is told by the return value */
    uv_close((uv_handle_t *)&c->proc, vh_rhc_closed);
    uv_close((uv_handle_t *)&c->out, vh_rhc_closed);
    uv_close((uv_handle_t *)&c->err, vh_rhc_closed);
    return VH_HOST_ESTATE;
  }
  c->pid = c->proc.pid;
  uv_read_start((uv_stream_t *)&c->out, vh_rhc_alloc, vh_rhc_read);
  uv_read_start((uv_stream_t *)&c->err, vh_rhc_alloc, vh_rhc_read);
  return 0;
}

/* ---- the reload gate ---- */

/* The gate's rehearsal ended: decide. */
static void vh_gate_done(void *arg, int code, const char *out, size_t len,
                         const char *eout, size_t elen, uint64_t rfp,
                         double ms) {
  struct vh_gate *g = arg;
  vh_host_t *h = g->h;
  g->running = 0;
  if (code == -2 || h->phase != VH_PHASE_RUN || h->stop_requested) return;
  char err[1024] = "";
  uint64_t fp = 0;
  int same = 0;
  if (vh_reload__scan(h, &fp, &same, err, sizeof err) == 0 && fp != rfp) {
    vh_log(VH_LOG_INFO, "vedhost",
           "reload (%s): the scripts changed during the rehearsal; "
           "rehearsing them again",
           g->why);
    vh_gate_start(g);
    return;
  }
  char verdict[600] = "", first[2048] = "";
  vh_gate__last_line(out, len, verdict, sizeof verdict);
  int go = 0;
  if (code == 0) {
    vh_log(VH_LOG_INFO, "vedhost",
           "reload (%s): rehearsal clean in %.0f ms: %s", g->why, ms, verdict);
    go = 1;
  } else if (code == 1) {
    vh_gate_lines(out, len, "state: ", 3, first, sizeof first);
    vh_gate_lines(out, len, "reply ", 3, first, sizeof first);
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
    vh_gate_lines(out, len, "error ", 3, first, sizeof first);
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) refused by the rehearsal: %s; first errors: %s; the "
           "old code keeps running",
           g->why, verdict, first);
  } else {
    char why[600];
    vh_gate__last_line(eout, elen, why, sizeof why);
    if (!why[0])
      snprintf(why, sizeof why, "exit %d%s", code,
               code == -1 ? " (killed by a signal)" : "");
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

static void vh_gate_start(struct vh_gate *g) {
  vh_host_t *h = g->h;
  char err[1024];
  int same = 0;
  uint64_t fp = 0;
  if (vh_reload__scan(h, &fp, &same, err, sizeof err) != 0) {
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) failed: %s; the old code keeps running", g->why, err);
    return;
  }
  if (same && !g->force) {
    vh_log(VH_LOG_DEBUG, "vedhost", "reload (%s): no script changed", g->why);
    return;
  }
  if (vh_gate__spawn(h, h->opts.rehearse, 0, fp, vh_gate_done, g, err,
                     sizeof err) != 0) {
    vh_log(VH_LOG_ERROR, "vedhost",
           "reload (%s) failed: %s; the old code keeps running", g->why, err);
    return;
  }
  g->running = 1;
  vh_log(VH_LOG_INFO, "vedhost",
         "reload (%s): rehearsing the new scripts on the last %d slices "
         "first (pid %d)",
         g->why, h->opts.rehearse, g->kids->pid);
}

int vh_gate__request(vh_host_t *h, int force, const char *why) {
  if (h->phase != VH_PHASE_RUN || h->stop_requested) return VH_HOST_ESTATE;
  struct vh_gate *g = vh_gate_get(h);
  if (!g) return VH_ENOMEM;
  if (g->running) { /* folded in: the scan at its end sees the change */
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
  /* The loop closed the children's handles (sched.c) without our close
   * callbacks: stop the processes and tell the waiters. */
  while (g->kids) {
    vh_rhc_t *c = g->kids;
    g->kids = c->next;
    if (!c->exited && c->pid > 0) kill(c->pid, SIGTERM);
    if (c->fn) c->fn(c->arg, -2, "", 0, "the host stopped", 16, c->fp, 0);
    free(c->buf);
    free(c->ebuf);
    free(c);
  }
  free(g);
  h->gate = NULL;
}
