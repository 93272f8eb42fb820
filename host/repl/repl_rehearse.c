/*
 * repl_rehearse.c - the REPL's `:reload --rehearse N [--yes]` and
 * `:reload --confirm FP` (README "Safe deploys").
 *
 * :reload --rehearse N  starts `vedhost rehearse --gate --last N` on the
 *     host's scripts as a child process (host/runtime/gate.c, the same as
 *     `run --rehearse`): the loop keeps running, and this request is
 *     answered when the child ends, with its report (the diff lines, the
 *     replies that differ, the handler errors, the verdict) and then:
 *       - handler errors (a migrate or start that raised included): "the
 *         reload is refused" - nothing goes live;
 *       - else, with --yes: the reload runs now and its summary follows;
 *       - else the last line is `to go live: :reload --confirm FP`, FP the
 *         hash of the scripts' paths and bytes that were rehearsed. The
 *         console client (host/control/repl.c) asks "go live? [y/N]" and
 *         sends that command on y; a non-interactive client (repl -e)
 *         prints the report and nothing goes live.
 *     A rehearsal that could not run (nothing retained, no input log) is
 *     an ERROR reply and nothing goes live.
 * :reload --confirm FP  reloads at once (no --rehearse gate: this was the
 *     rehearsal) if the scripts on disk still hash to FP; else an ERROR
 *     ("changed since the rehearsal: rehearse again").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_int.h"
#include "vh_bytes.h"

typedef struct vh_repl_rh {
  vh_host_t *h;
  vh_control_conn_t *conn; /* the request's reference */
  int yes;
} vh_repl_rh_t;

static void vh_repl_rh_reply(vh_control_conn_t *conn, int type, vh_buf_t *b) {
  vh_control_reply(conn, type, b->p ? (const char *)b->p : "", b->len);
  vh_buf_free(b);
}

static void vh_repl_rh_done(void *arg, int code, const char *out, size_t len,
                            const char *eout, size_t elen, uint64_t fp,
                            double ms) {
  vh_repl_rh_t *r = arg;
  vh_host_t *h = r->h;
  vh_buf_t b = {0};
  char line[1400];
  int type = VH_CONTROL_OK;
  (void)ms;
  if (code == 0 || code == 1 || code == 3) {
    vh_buf_put(&b, out, len);
    while (b.len && b.p[b.len - 1] == '\n') b.len--;
  }
  if (code == 3) {
    snprintf(line, sizeof line,
             "\nhandler errors: the reload is refused (the old code keeps "
             "running)");
    type = VH_CONTROL_ERROR;
  } else if (code == 0 || code == 1) {
    if (r->yes) {
      char err[1024] = "";
      uint64_t now = 0;
      int same = 0;
      if (vh_reload__scan(h, &now, &same, err, sizeof err) == 0 && now != fp) {
        snprintf(line, sizeof line,
                 "\nthe scripts changed during the rehearsal: not reloaded "
                 "(rehearse again)");
        type = VH_CONTROL_ERROR;
      } else if (vh_reload__now(h, "REPL, rehearsed", err, sizeof err) != 0) {
        snprintf(line, sizeof line, "\nreload failed: %s", err);
        type = VH_CONTROL_ERROR;
      } else {
        snprintf(line, sizeof line, "\n%s", err);
      }
    } else {
      snprintf(line, sizeof line, "\nto go live: :reload --confirm %016" PRIx64,
               fp);
    }
  } else {
    char why[600];
    vh_gate__last_line(eout, elen, why, sizeof why);
    snprintf(line, sizeof line, "the rehearsal could not run: %s%s",
             why[0] ? why : "it failed",
             code == -2 ? "" : "; nothing was reloaded");
    type = VH_CONTROL_ERROR;
  }
  vh_buf_put(&b, line, strlen(line));
  vh_repl_rh_reply(r->conn, type, &b);
  free(r);
}

int vh_repl__reload_rehearse(vh_repl_srv_t *s, vh_control_conn_t *conn,
                             const char *args) {
  vh_host_t *h = s->h;
  char err[1024];
  long n = 0;
  int yes = 0;
  char fps[64] = "";
  char buf[256];
  snprintf(buf, sizeof buf, "%s", args);
  int bad = 0, confirm = 0;
  for (char *sv = NULL, *t = strtok_r(buf, " \t", &sv); t;
       t = strtok_r(NULL, " \t", &sv)) {
    if (strcmp(t, "--rehearse") == 0) {
      char *v = strtok_r(NULL, " \t", &sv), *end = NULL;
      n = v ? strtol(v, &end, 10) : 0;
      if (!v || *end || n < 1 || n > 10000000) bad = 1;
    } else if (strcmp(t, "--yes") == 0) {
      yes = 1;
    } else if (strcmp(t, "--confirm") == 0) {
      char *v = strtok_r(NULL, " \t", &sv);
      if (!v || strlen(v) >= sizeof fps)
        bad = 1;
      else
        snprintf(fps, sizeof fps, "%s", v);
      confirm = 1;
    } else {
      bad = 1;
    }
  }
  if (!n && !confirm && !bad && !yes) return 0; /* a plain :reload */
  vh_buf_t b = {0};
  if (bad || (n && confirm) || (yes && !n)) {
    const char *u =
        "usage: :reload [--rehearse N [--yes]] | :reload --confirm FP";
    vh_buf_put(&b, u, strlen(u));
    vh_repl_rh_reply(conn, VH_CONTROL_ERROR, &b);
    return 1;
  }
  if (h->phase != VH_PHASE_RUN || h->stop_requested) {
    vh_buf_put(&b, "the host is stopping", 20);
    vh_repl_rh_reply(conn, VH_CONTROL_ERROR, &b);
    return 1;
  }
  uint64_t fp = 0;
  int same = 0;
  if (vh_reload__scan(h, &fp, &same, err, sizeof err) != 0) {
    vh_buf_put(&b, err, strlen(err));
    vh_repl_rh_reply(conn, VH_CONTROL_ERROR, &b);
    return 1;
  }
  if (confirm) {
    char now[32];
    snprintf(now, sizeof now, "%016" PRIx64, fp);
    int type = VH_CONTROL_OK;
    if (strcmp(now, fps) != 0) {
      snprintf(err, sizeof err,
               "the scripts changed since that rehearsal (or FP is not one): "
               "nothing reloaded; run :reload --rehearse N again");
      type = VH_CONTROL_ERROR;
    } else if (vh_reload__now(h, "REPL, rehearsed", err, sizeof err) != 0) {
      vh_buf_put(&b, "reload failed: ", 15);
      type = VH_CONTROL_ERROR;
    }
    vh_buf_put(&b, err, strlen(err));
    vh_repl_rh_reply(conn, type, &b);
    return 1;
  }
  vh_repl_rh_t *r = calloc(1, sizeof *r);
  if (!r) {
    vh_buf_put(&b, "out of memory", 13);
    vh_repl_rh_reply(conn, VH_CONTROL_ERROR, &b);
    return 1;
  }
  r->h = h;
  r->conn = conn;
  r->yes = yes;
  if (vh_gate__spawn(h, (int)n, 0, fp, vh_repl_rh_done, r, err, sizeof err) !=
      0) {
    free(r);
    vh_buf_put(&b, err, strlen(err));
    vh_repl_rh_reply(conn, VH_CONTROL_ERROR, &b);
  }
  return 1;
}
