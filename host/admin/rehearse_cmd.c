/*
 * rehearse_cmd.c - `vedhost rehearse [--data DIR] [--last N | --since T]
 * [--json] SCRIPT_OR_DIR...`: what would new scripts have done to the last
 * N slices of real traffic? (README "Safe deploys".)
 *
 * HOW. DIR's store is opened as a RocksDB secondary (offline.c: nothing is
 * written to DIR, safe beside a running host). The window is the newest N
 * retained versions (--last, default 1000) or those after the version T
 * names (--since); the version just before it is the BASE. Walking the
 * window from the newest back, a version without an input log or marked
 * unreplayable (host/runtime/det.c: it read an unrecorded input, or ran a
 * migrate) ends it: that version becomes the base and the report says so.
 *
 * A private host is built on a scratch data dir in /tmp (its own empty
 * store; no slice ever ends in it, removed at the end) from the NEW
 * scripts. Each declared domain's root becomes a plain stub of its root at
 * the base (a private in-memory fork: written nodes are new, the stored
 * ones are read lazily from DIR and never written back; offline, nothing
 * reports deaths to DIR). Then, as a reload would (host/runtime/reload.c):
 * a version lower than the base's is refused, migrate(state, old_version)
 * runs for every domain whose version grew, start(state, ctx) for every
 * domain; then each window version's recorded calls run through the new
 * handlers, oldest first (host/runtime/replay.c: the recorded clock and
 * seed; what a handler sends or times is dropped, the later slices'
 * recorded inputs carry it). Finally the rehearsed end state is diffed
 * against the real state at the window's last version (host/runtime/
 * changes.c, shared subtrees skipped), per domain.
 *
 * WHAT COUNTS. A handler ERROR is a call that committed in production but
 * raised (or found no handler) in the rehearsal, and a migrate or start
 * that raised. A call that raised in production and raises again is the
 * same behaviour (counted apart, "raised as recorded"). A REPLY differs
 * when a call with a reply to its caller got another reply, or committed
 * where production raised.
 *
 * OUTPUT (stdout). The errors and replies in slice order, then the state
 * diff, then one verdict line:
 *   error 1305#1 counter.add (call): a.lua:7: attempt to ...
 *     payload: {n = 3}
 *   reply 1305#2 counter.get (call): recorded 41, rehearsed 42
 *   state: ~ counter.count: 41 -> 42          (real -> rehearsed)
 *   rehearsal of 1000 slices (1201..2200): 0 errors, 3 paths differ in 1
 *   domain, 2 replies differ
 * (SEQ#I: the I-th call of version SEQ.) --json prints the same as one
 * JSON object per line, "type" state/reply/error/note/verdict; values are
 * their REPL literal text. Exit 0 clean, 1 differences or errors or a
 * rehearsal that cannot run (one line on stderr), 2 usage; --gate
 * (vh_rehearse_cmd.h) splits 1 for `run --rehearse`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_changes.h"
#include "vh_cli_args.h"
#include "vh_diff_text.h"
#include "vh_offline.h"
#include "vh_rehearse_cmd.h"
#include "vh_version_spec.h"
#include "vh_versions.h"

#define VH_RH_DEFAULT_LAST 1000

static const char vh_rh_usage[] =
    "usage: vedhost rehearse [--data DIR] [--last N | --since T] [--json]\n"
    "                        SCRIPT_OR_DIR...\n"
    "  run the new scripts against the last N retained slices of DIR\n"
    "  (default " VH_DEFAULT_DATA_DIR
    ", N 1000) or those after version T:\n"
    "  fork the version before them in memory, run migrate where the\n"
    "  version grew, replay the recorded inputs through the new handlers,\n"
    "  and print the end state's diff against the real one, every reply\n"
    "  that differs and every handler error, then a verdict. Writes\n"
    "  nothing to DIR; safe while a host runs on it. --json: one JSON\n"
    "  object per line. Exit 0 clean, 1 differences or errors, 2 usage.\n";

typedef struct vh_rh_args {
  const char *data, *since;
  long long last;
  int json, gate;
  const char **scripts;
  int nscripts;
} vh_rh_args_t;

static int vh_rh_arg(void *arg, int opt, const char *val) {
  vh_rh_args_t *a = arg;
  switch (opt) {
    case 0:
      a->data = val;
      break;
    case 1: {
      char *end;
      errno = 0;
      long long n = strtoll(val, &end, 10);
      if (errno || end == val || *end || n < 1)
        return vh_cli_bad("rehearse",
                          "--last needs a positive integer, not "
                          "'%s'",
                          val);
      a->last = n;
      break;
    }
    case 2:
      a->since = val;
      break;
    case 3:
      a->json = 1;
      break;
    case 4:
      a->gate = 1;
      break;
    case -1:
      a->scripts[a->nscripts++] = val;
      break;
    default:
      break;
  }
  return 0;
}

/* ---- output ---- */

typedef struct vh_rh {
  vh_rh_args_t *a;
  vh_diff_text_t *text; /* [owned] the literal printer */
  vh_buf_t line, tmp;
  int err; /* printing failed (message on stderr) */
  /* counts */
  uint64_t slices, calls, errors, replies, raised_same, paths, domains;
  const char *last_domain; /* [borrowed] domain of the last state change */
} vh_rh_t;

static const char *const vh_rh_kinds[] = {"call",  "repl", "every",
                                          "after", "msg",  "start"};

/* kind -1: a migrate (or a refused downgrade) before the window */
static const char *vh_rh_kind(int k) {
  return k >= 0 && k < VH_IN_KINDS ? vh_rh_kinds[k] : "migrate";
}

/* Append s (n bytes) to b as a JSON string. */
static int vh_rh_jstr(vh_buf_t *b, const char *s, size_t n) {
  int r = vh_buf_put(b, "\"", 1);
  for (size_t i = 0; r == 0 && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      r = vh_buf_put(b, esc, 2);
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      r = vh_buf_put(b, esc, 6);
    } else if (c >= 0x80) { /* keep valid JSON whatever the bytes */
      snprintf(esc, sizeof esc, "\\u%04x", c);
      r = vh_buf_put(b, esc, 6);
    } else {
      r = vh_buf_put(b, (const char *)&c, 1);
    }
  }
  if (r == 0) r = vh_buf_put(b, "\"", 1);
  return r;
}

static int vh_rh_put(vh_buf_t *b, const char *s) {
  return vh_buf_put(b, s, strlen(s));
}

/* The literal text of v into p->tmp (reset first). */
static int vh_rh_lit(vh_rh_t *p, vh_val_t v) {
  p->tmp.len = 0;
  return vh_diff_text_value(p->text, v, &p->tmp);
}

static void vh_rh_flush(vh_rh_t *p) {
  if (vh_buf_put(&p->line, "\n", 1) == 0)
    fwrite(p->line.p, 1, p->line.len, stdout);
  p->line.len = 0;
}

static int vh_rh_change(void *arg, const vh_change_t *c) {
  vh_rh_t *p = arg;
  if (!p->last_domain || strcmp(p->last_domain, c->domain) != 0) {
    p->domains++;
    p->last_domain = c->domain;
  }
  p->paths++;
  vh_buf_t *l = &p->tmp;
  l->len = 0;
  int r = vh_diff_text_change(p->text, c->domain, c->op, c->path, c->depth,
                              c->old, c->new, l);
  if (r != 0) {
    p->err = 1;
    return r;
  }
  p->line.len = 0;
  if (p->a->json) {
    char op1[2] = {(char)c->op, 0};
    r = vh_rh_put(&p->line, "{\"type\": \"state\", \"domain\": ");
    if (r == 0) r = vh_rh_jstr(&p->line, c->domain, strlen(c->domain));
    if (r == 0) r = vh_rh_put(&p->line, ", \"op\": ");
    if (r == 0) r = vh_rh_jstr(&p->line, op1, 1);
    if (r == 0) r = vh_rh_put(&p->line, ", \"line\": ");
    if (r == 0) r = vh_rh_jstr(&p->line, (const char *)l->p, l->len);
    if (r == 0) r = vh_rh_put(&p->line, "}");
  } else {
    r = vh_rh_put(&p->line, "state: ");
    if (r == 0) r = vh_buf_put(&p->line, l->p, l->len);
  }
  if (r == 0) vh_rh_flush(p);
  return r;
}

/* A call that differs or raised. what: "reply" or "error". rec/got: the
 * outcomes (VH_IN_*); err may be NULL. */
static void vh_rh_call(vh_rh_t *p, const char *what, uint64_t seq, size_t idx,
                       const char *domain, const char *event, size_t elen,
                       int kind, vh_val_t payload, int rec, vh_val_t rec_reply,
                       int got, vh_val_t reply, int has_reply,
                       const char *err) {
  char recb[4096], gotb[4096];
  recb[0] = gotb[0] = '\0';
  if (rec == VH_IN_OK && has_reply && vh_rh_lit(p, rec_reply) == 0)
    snprintf(recb, sizeof recb, "%.*s", (int)p->tmp.len, p->tmp.p);
  else
    snprintf(recb, sizeof recb, "%s",
             rec == VH_IN_OK       ? "ok"
             : rec == VH_IN_RAISED ? "raised"
                                   : "no handler");
  if (got == VH_IN_OK && has_reply && vh_rh_lit(p, reply) == 0)
    snprintf(gotb, sizeof gotb, "%.*s", (int)p->tmp.len, p->tmp.p);
  else
    snprintf(gotb, sizeof gotb, "%s",
             got == VH_IN_OK       ? "ok"
             : got == VH_IN_RAISED ? "raised"
                                   : "no handler");
  int pay = payload.type != VH_TNIL && vh_rh_lit(p, payload) == 0;
  vh_buf_t *l = &p->line;
  l->len = 0;
  char head[64];
  if (p->a->json) {
    snprintf(head, sizeof head,
             "{\"type\": \"%s\", \"seq\": %" PRIu64
             ", \"call\": %zu, \"kind\": \"%s\", \"domain\": ",
             what, seq, idx + 1, vh_rh_kind(kind));
    vh_rh_put(l, head);
    vh_rh_jstr(l, domain, strlen(domain));
    vh_rh_put(l, ", \"event\": ");
    vh_rh_jstr(l, event, elen);
    if (pay) {
      vh_rh_put(l, ", \"payload\": ");
      vh_rh_jstr(l, (const char *)p->tmp.p, p->tmp.len);
    }
    vh_rh_put(l, ", \"recorded\": ");
    vh_rh_jstr(l, recb, strlen(recb));
    vh_rh_put(l, ", \"rehearsed\": ");
    vh_rh_jstr(l, gotb, strlen(gotb));
    if (err) {
      vh_rh_put(l, ", \"error\": ");
      vh_rh_jstr(l, err, strlen(err));
    }
    vh_rh_put(l, "}");
    vh_rh_flush(p);
    return;
  }
  snprintf(head, sizeof head, "%s %" PRIu64 "#%zu ", what, seq, idx + 1);
  vh_rh_put(l, head);
  vh_rh_put(l, domain);
  vh_rh_put(l, ".");
  vh_buf_put(l, event, elen);
  vh_rh_put(l, " (");
  vh_rh_put(l, vh_rh_kind(kind));
  vh_rh_put(l, "): ");
  if (err) {
    vh_rh_put(l, err);
  } else {
    vh_rh_put(l, "recorded ");
    vh_rh_put(l, recb);
    vh_rh_put(l, ", rehearsed ");
    vh_rh_put(l, gotb);
  }
  if (pay) {
    vh_rh_put(l, "\n  payload: ");
    vh_buf_put(l, p->tmp.p, p->tmp.len);
  }
  vh_rh_flush(p);
}

static void vh_rh_note(vh_rh_t *p, const char *note) {
  if (p->a->json) {
    p->line.len = 0;
    vh_rh_put(&p->line, "{\"type\": \"note\", \"note\": ");
    vh_rh_jstr(&p->line, note, strlen(note));
    vh_rh_put(&p->line, "}");
    vh_rh_flush(p);
  } else {
    printf("note: %s\n", note);
  }
}

/* ---- the window ---- */

typedef struct vh_rh_win {
  uint64_t oldest; /* the retention window's oldest version */
  uint64_t want;   /* versions wanted after the base (--last), or 0 */
  uint64_t since;  /* --since: the base seq, or 0 */
  uint64_t *seqs;  /* newest first: the window, then the base */
  size_t n, cap;
} vh_rh_win_t;

static int vh_rh_win_fn(void *arg, const vh_version_t *v) {
  vh_rh_win_t *w = arg;
  if (v->seq < w->oldest) return 1; /* a mark older than the window */
  if (w->n == w->cap) {
    size_t nc = w->cap ? w->cap * 2 : 256;
    uint64_t *ns = realloc(w->seqs, nc * sizeof *ns);
    if (!ns) return VH_ENOMEM;
    w->seqs = ns;
    w->cap = nc;
  }
  w->seqs[w->n++] = v->seq;
  if (w->since && v->seq <= w->since) return 1;
  if (w->want && w->n == w->want + 1) return 1;
  return 0;
}

/* ---- main ---- */

int vh_rehearse_main(int argc, char **argv) {
  static const vh_cli_opt_t opts[] = {{"--data", 1, 0},
                                      {"--last", 1, 0},
                                      {"--since", 1, 0},
                                      {"--json", 0, 0},
                                      {"--gate", 0, 0}};
  vh_cli_cmd_t cmd = {"rehearse", opts, 5, -1, vh_rh_usage};
  vh_rh_args_t a;
  memset(&a, 0, sizeof a);
  a.data = VH_DEFAULT_DATA_DIR;
  a.scripts = calloc((size_t)argc + 1, sizeof *a.scripts);
  if (!a.scripts) return 1;
  int rc = vh_cli_parse(&cmd, argc, argv, vh_rh_arg, &a);
  if (rc == 0 && a.last && a.since)
    rc = vh_cli_bad("rehearse", "give --last N or --since T, not both");
  if (rc == 0 && a.nscripts == 0)
    rc = vh_cli_bad("rehearse",
                    "needs at least one SCRIPT_OR_DIR (the new "
                    "scripts)");
  if (rc != 0) {
    free(a.scripts);
    return rc == 1 ? 0 : rc;
  }
  if (!a.last && !a.since) a.last = VH_RH_DEFAULT_LAST;
  const int fail = a.gate ? 4 : 1;

  vh_offline_t o;
  char err[1024];
  if (vh_offline_open(&o, a.data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: rehearse: %s\n", err);
    free(a.scripts);
    return fail;
  }
  int exit_code = fail;
  vh_host_t *h = NULL;
  char scratch[] = "/tmp/vedhost-rehearse.XXXXXX";
  int have_scratch = 0;
  char *msg = NULL;
  vh_rh_win_t w;
  memset(&w, 0, sizeof w);
  vh_inputs_t *ins = NULL;
  size_t nin = 0;
  vh_version_t base, end;
  memset(&base, 0, sizeof base);
  memset(&end, 0, sizeof end);
  vh_vside_t real, got;
  memset(&real, 0, sizeof real);
  memset(&got, 0, sizeof got);
  vh_rh_t p;
  memset(&p, 0, sizeof p);
  p.a = &a;
  char note[512] = "";
  int64_t t0 = vh_host__mono_ns();

  /* The window. */
  vh_history_t hist;
  rc = vh_store_history(o.store, &hist, &msg);
  if (rc == 0 && hist.newest == 0) {
    fprintf(stderr,
            "vedhost: rehearse: %s keeps no versions (run the host with "
            "--retain, e.g. the default 15m)\n",
            a.data);
    goto out;
  }
  w.oldest = hist.oldest;
  w.want = (uint64_t)a.last;
  if (rc == 0 && a.since) {
    rc = vh_version_resolve(o.store, a.since, vh_offline_now_ms(), &w.since,
                            &msg);
    if (rc == 0 && w.since < hist.oldest) {
      fprintf(stderr,
              "vedhost: rehearse: --since %s names version %" PRIu64
              ", older than the retention window (oldest %" PRIu64 ")\n",
              a.since, w.since, hist.oldest);
      goto out;
    }
  }
  if (rc == 0) {
    rc = vh_store_versions_each(o.store, 1, vh_rh_win_fn, &w, &msg);
    if (rc == 1) rc = 0;
  }
  if (rc < 0) {
    fprintf(stderr, "vedhost: rehearse: %s\n", msg ? msg : vh_err_name(rc));
    goto out;
  }
  if (w.n < 2) {
    fprintf(stderr,
            "vedhost: rehearse: nothing to rehearse: %s retains %s version "
            "(a rehearsal needs one before the slices it replays)\n",
            a.data, w.n ? "only one" : "no");
    goto out;
  }
  /* w.seqs[0..n-1) is the window (newest first), w.seqs[n-1] the base,
   * unless fewer versions were retained than asked. */
  if (a.last && w.n < w.want + 1)
    snprintf(note, sizeof note,
             "only %zu slices after the oldest retained version %" PRIu64
             " (asked for %lld)",
             w.n - 1, w.seqs[w.n - 1], a.last);
  ins = calloc(w.n, sizeof *ins);
  if (!ins) goto oom;
  size_t cut = w.n - 1; /* index of the base */
  for (size_t i = 0; i + 1 < w.n; i++) {
    char *m2 = NULL;
    int r = vh_store_inputs_get(o.store, w.seqs[i], &ins[i], &m2);
    nin = i + 1;
    if (r == 0 && !ins[i].unreplayable) {
      free(m2);
      continue;
    }
    if (r != 0 && r != VH_ENOENT) {
      fprintf(stderr, "vedhost: rehearse: %s\n", m2 ? m2 : vh_err_name(r));
      free(m2);
      goto out;
    }
    snprintf(note, sizeof note,
             "the window starts after version %" PRIu64 ": %s", w.seqs[i],
             r != 0 ? "it has no input log (written before input logs, or "
                      "by a host without them)"
             : ins[i].reason ? ins[i].reason
                             : "it is unreplayable");
    free(m2);
    cut = i;
    break;
  }
  if (cut == 0) {
    fprintf(stderr, "vedhost: rehearse: nothing to rehearse: %s\n", note);
    goto out;
  }
  uint64_t base_seq = w.seqs[cut], first = w.seqs[cut - 1], last = w.seqs[0];
  p.slices = cut;
  rc = vh_store_version_get(o.store, base_seq, &base, &msg);
  if (rc == 0) rc = vh_store_version_get(o.store, last, &end, &msg);
  if (rc != 0) {
    fprintf(stderr, "vedhost: rehearse: %s\n", msg ? msg : vh_err_name(rc));
    goto out;
  }

  /* The private host on the new scripts. */
  if (!mkdtemp(scratch)) {
    fprintf(stderr, "vedhost: rehearse: cannot make a scratch dir in /tmp\n");
    goto out;
  }
  have_scratch = 1;
  vh_host_opts_t ho;
  vh_host_opts_default(&ho);
  ho.data_dir = scratch;
  ho.watch = 0;
  ho.durability = VH_DURABILITY_NOSYNC;
  ho.log_level = VH_LOG_WARN;
  ho.retain.zero = 1;
  if (vh_host_new(&ho, &h, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: rehearse: %s\n", err);
    goto out;
  }
  for (int i = 0; i < a.nscripts; i++) {
    if (vh_host_load(h, a.scripts[i], err, sizeof err) != 0) {
      fprintf(stderr, "vedhost: rehearse: %s\n", err);
      goto out;
    }
  }
  /* handler errors are reported below, not logged with tracebacks */
  vh_log_set_level((vh_log_level_t)(VH_LOG_ERROR + 1));
  vh_offline_use_loader(&o); /* nodes come from DIR's store */
  if (vh_diff_text_open("rehearse", &p.text) != 0) goto out;
  if (note[0]) vh_rh_note(&p, note);

  /* As a reload: roots of the base, then migrate and start. */
  int64_t *from = calloc((size_t)h->ndoms + 1, sizeof *from);
  if (!from) goto oom;
  int boot_failed = 0;
  for (int i = 0; i < h->ndoms; i++) {
    vh_domain_t *d = h->doms[i];
    const vh_manifest_domain_t *e = vh_manifest_find(&base.m, d->name);
    if (!e) continue; /* a new domain: its initial state */
    from[i] = e->version;
    if (e->version > d->version) {
      char line[600];
      snprintf(line, sizeof line,
               "%s: domain '%s': version %lld is lower than the running "
               "version %lld (a reload cannot downgrade a domain)",
               d->where, d->name, (long long)d->version, (long long)e->version);
      vh_rh_call(&p, "error", base_seq, 0, d->name, "migrate", 7, -1, vh_nil(),
                 VH_IN_OK, vh_nil(), VH_IN_RAISED, vh_nil(), 0, line);
      p.errors++;
      boot_failed = 1;
    }
    vh_tab_t *root = e->root ? vh_tab_stub(e->root) : vh_tab_new(0);
    if (!root) {
      free(from);
      goto oom;
    }
    vhl_state_set_root(h->L, d->st, root);
  }
  if (vh_host__watchdog_start(h) != 0)
    fprintf(stderr, "vedhost: rehearse: no watchdog: handlers run unbounded\n");
  h->phase = VH_PHASE_RUN;
  h->replaying = 1; /* migrate's and start's sends and timers stay here */
  h->slice_now = base.time_ms;
  for (int i = 0; i < h->ndoms && !boot_failed; i++) {
    vh_domain_t *d = h->doms[i];
    if (!from[i] || d->version <= from[i] || d->migrate_ref == LUA_NOREF)
      continue;
    char *e = NULL;
    if (vh_host__dispatch(h, d, "migrate", 7, VH_DISPATCH_MIGRATE,
                          vh_int(from[i]), NULL, &e) != 0) {
      char line[1200];
      snprintf(line, sizeof line, "migrate from version %lld raised: %s",
               (long long)from[i], e ? e : "?");
      vh_rh_call(&p, "error", base_seq, 0, d->name, "migrate", 7, -1, vh_nil(),
                 VH_IN_OK, vh_nil(), VH_IN_RAISED, vh_nil(), 0, line);
      p.errors++;
      boot_failed = 1;
    }
    free(e);
  }
  for (int i = 0; i < h->ndoms && !boot_failed; i++) {
    vh_domain_t *d = h->doms[i];
    if (d->start_ref == LUA_NOREF) continue;
    char *e = NULL;
    if (vh_host__dispatch(h, d, "start", 5, VH_DISPATCH_START, vh_nil(), NULL,
                          &e) != 0) {
      char line[1200];
      snprintf(line, sizeof line, "start raised: %s", e ? e : "?");
      vh_rh_call(&p, "error", base_seq, 0, d->name, "start", 5, VH_IN_START,
                 vh_nil(), VH_IN_OK, vh_nil(), VH_IN_RAISED, vh_nil(), 0, line);
      p.errors++;
      boot_failed = 1;
    }
    free(e);
  }
  h->replaying = 0;
  free(from);

  /* The window's slices, oldest first. */
  for (size_t k = cut; k-- > 0 && !boot_failed;) {
    vh_replay_res_t res;
    int r = vh_replay_slice(h, &ins[k], NULL, NULL, &res);
    if (r != 0) {
      fprintf(stderr, "vedhost: rehearse: %s\n", vh_err_name(r));
      goto out;
    }
    const char *fm = NULL;
    if (vh_trie_fault(&fm) != 0) {
      fprintf(stderr, "vedhost: rehearse: cannot read the state: %s\n", fm);
      vh_replay_res_free(&res);
      goto out;
    }
    for (size_t i = 0; i < res.n; i++) {
      const vh_replay_call_t *c = &res.calls[i];
      const vh_input_t *e = c->in;
      int o2 = c->rc == 0                   ? VH_IN_OK
               : c->rc == VH_HOST_EROLLBACK ? VH_IN_RAISED
                                            : VH_IN_NOCALL;
      p.calls++;
      if (o2 != VH_IN_OK && (int)e->outcome == VH_IN_OK) {
        p.errors++;
        vh_rh_call(&p, "error", ins[k].seq, i, e->domain, e->event, e->elen,
                   (int)e->kind, e->payload, (int)e->outcome, e->reply, o2,
                   c->reply, e->has_reply,
                   c->err ? c->err : "no handler for this event");
      } else if (o2 != VH_IN_OK && o2 == (int)e->outcome) {
        p.raised_same++;
      } else if (c->differs) {
        p.replies++;
        vh_rh_call(&p, "reply", ins[k].seq, i, e->domain, e->event, e->elen,
                   (int)e->kind, e->payload, (int)e->outcome, e->reply, o2,
                   c->reply, e->has_reply, NULL);
      }
    }
    vh_replay_res_free(&res);
  }

  /* The end state: the real one at `last` against the rehearsal's. */
  if (!boot_failed) {
    rc = vh_vside_from_manifest(&real, &end.m, vh_tab_stub);
    for (int i = 0; rc == 0 && i < h->ndoms; i++)
      rc = vh_vside_add(&got, h->doms[i]->name, vhl_state_root(h->doms[i]->st));
    /* Domains the new scripts do not declare keep their base state. */
    for (size_t i = 0; rc == 0 && i < base.m.ndomains; i++) {
      const vh_manifest_domain_t *e = &base.m.domains[i];
      if (vh_host__find(h, e->name, strlen(e->name)) || !e->root) continue;
      vh_tab_t *t = vh_tab_stub(e->root);
      rc = t ? vh_vside_add(&got, e->name, t) : VH_ENOMEM;
      if (t) vh_tab_release(t);
    }
    if (rc == 0)
      rc = vh_changes_diff(&real, &got, NULL, NULL, 0, 0, 0, vh_rh_change, &p);
    const char *fm = NULL;
    if (rc != 0 || vh_trie_fault(&fm) != 0 || p.err) {
      fprintf(stderr, "vedhost: rehearse: cannot compare the state: %s\n",
              fm ? fm : vh_err_name(rc));
      goto out;
    }
  }

  /* The verdict. */
  double ms = (double)(vh_host__mono_ns() - t0) / 1e6;
  int clean = p.errors == 0 && p.paths == 0 && p.replies == 0;
  char verdict[600];
  snprintf(verdict, sizeof verdict,
           "rehearsal of %" PRIu64 " slice%s (%" PRIu64 "..%" PRIu64
           "): %" PRIu64 " error%s, %" PRIu64 " path%s differ%s in %" PRIu64
           " domain%s, %" PRIu64 " repl%s differ%s",
           p.slices, p.slices == 1 ? "" : "s", first, last, p.errors,
           p.errors == 1 ? "" : "s", p.paths, p.paths == 1 ? "" : "s",
           p.paths == 1 ? "s" : "", p.domains, p.domains == 1 ? "" : "s",
           p.replies, p.replies == 1 ? "y" : "ies", p.replies == 1 ? "s" : "");
  if (boot_failed)
    snprintf(verdict + strlen(verdict), sizeof verdict - strlen(verdict),
             " (the reload itself fails: no slice was replayed)");
  if (a.json) {
    printf("{\"type\": \"verdict\", \"clean\": %s, \"slices\": %" PRIu64
           ", \"first\": %" PRIu64 ", \"last\": %" PRIu64 ", \"base\": %" PRIu64
           ", \"calls\": %" PRIu64 ", \"errors\": %" PRIu64
           ", \"raised_as_recorded\": %" PRIu64 ", \"paths\": %" PRIu64
           ", \"domains\": %" PRIu64 ", \"replies\": %" PRIu64
           ", \"reload_fails\": %s, \"ms\": %.1f, \"line\": ",
           clean ? "true" : "false", p.slices, first, last, base_seq, p.calls,
           p.errors, p.raised_same, p.paths, p.domains, p.replies,
           boot_failed ? "true" : "false", ms);
    p.line.len = 0;
    vh_rh_jstr(&p.line, verdict, strlen(verdict));
    vh_rh_put(&p.line, "}");
    vh_rh_flush(&p);
  } else {
    printf("%s\n", verdict);
  }
  if (a.gate)
    exit_code = p.errors ? 3 : clean ? 0 : 1;
  else
    exit_code = clean ? 0 : 1;
  goto out;
oom:
  fprintf(stderr, "vedhost: rehearse: out of memory\n");
out:
  fflush(stdout);
  free(msg);
  vh_vside_free(&real);
  vh_vside_free(&got);
  for (size_t i = 0; i < nin; i++) vh_inputs_free(&ins[i]);
  free(ins);
  free(w.seqs);
  vh_version_free(&base);
  vh_version_free(&end);
  vh_diff_text_close(p.text);
  vh_buf_free(&p.line);
  vh_buf_free(&p.tmp);
  vh_host_free(h); /* before the loader's store closes */
  if (have_scratch) vh_offline_rm_tree(scratch);
  vh_offline_close(&o);
  free(a.scripts);
  return exit_code;
}
