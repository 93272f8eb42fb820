/*
 * replay_cmd.c - `vedhost replay [--data DIR] --at V [--code DIR] [--trace]`:
 * does re-running the slice that made version V, on version V-1, with the
 * current scripts, reproduce V exactly?
 *
 * HOW. The store is opened as a RocksDB secondary (offline.c: nothing is
 * written to DIR, safe beside a running host). V's input log (vh_inputs.h)
 * and V-1 (the retained version just before V in the window) are read. A
 * private host is built on a scratch data dir in /tmp (its own empty
 * store, removed at the end; no slice ever ends in it, so nothing is
 * written there either) from the scripts: --code DIR, else the paths the
 * running host listed in DIR/scripts (host/runtime/reload.c). Its domains'
 * roots become plain stubs of V-1's roots read from DIR's store through
 * the trie's lazy loader (offline: no free hook reports deaths to DIR).
 * host/runtime/replay.c runs the recorded calls with V's clock and seed;
 * the end roots are diffed against V's (host/runtime/changes.c: shared
 * subtrees are skipped by store id, so the cost is the changed paths) and
 * the replies compared.
 *
 * OUTPUT (stdout): with --trace, per call `#i KIND domain.event (id) ->
 * ok|raised|no handler`, its writes as diff lines and its reply; then one
 * line per difference (`state: ~ path: in V -> replayed`, `reply #i ...`,
 * `error #i ...`) and the one-line verdict:
 *   version 123 reproduced: same state, same replies (4 calls)
 *   version 123 NOT reproduced: 2 paths differ, 1 reply differs, 1 handler
 *   error
 * Exit 0 reproduced, 3 not reproduced, 1 bad input (one line on stderr: an
 * unknown V, V-1 not retained, V unreplayable, no input log, no scripts,
 * a domain version that differs: replay runs no migrate), 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_changes.h"
#include "vh_cli_args.h"
#include "vh_diff_text.h"
#include "vh_offline.h"
#include "vh_replay_cmd.h"
#include "vh_tdiff.h"
#include "vh_versions.h"

static const char vh_replay_usage[] =
    "usage: vedhost replay [--data DIR] --at V [--code DIR] [--trace]\n"
    "  re-run the slice that made version V on version V-1 with the current\n"
    "  scripts (the running host's, or the *.lua of --code DIR) and say\n"
    "  whether it reproduces V exactly (same state, same replies); --trace\n"
    "  prints each handler call's writes and reply. Writes nothing to DIR\n"
    "  (default " VH_DEFAULT_DATA_DIR "); safe while a host runs on it.\n";

typedef struct vh_rp_args {
  const char *data, *at, *code;
  int trace;
} vh_rp_args_t;

static int vh_rp_arg(void *arg, int opt, const char *val) {
  vh_rp_args_t *a = arg;
  if (opt == 0) a->data = val;
  if (opt == 1) a->at = val;
  if (opt == 2) a->code = val;
  if (opt == 3) a->trace = 1;
  return 0;
}

typedef struct vh_rp {
  vh_diff_text_t *text;
  vh_buf_t line;
  const char *prefix;
  size_t nchanges;
  int err;
} vh_rp_t;

static const char *const vh_rp_kinds[] = {"call",  "repl", "every",
                                          "after", "msg",  "start"};

static int vh_rp_print(vh_rp_t *p, const char *domain,
                       const vh_tdiff_change_t *c) {
  vh_buf_t *l = &p->line;
  l->len = 0;
  int r = vh_buf_put(l, p->prefix, strlen(p->prefix));
  if (r == 0)
    r = vh_diff_text_change(p->text, domain, c->op, c->path, c->depth, c->old,
                            c->new, l);
  if (r == 0) r = vh_buf_put(l, "\n", 1);
  if (r != 0) {
    p->err = 1;
    return r;
  }
  fwrite(l->p, 1, l->len, stdout);
  p->nchanges++;
  return 0;
}

static int vh_rp_change(void *arg, const vh_change_t *c) {
  vh_tdiff_change_t t = {c->op, c->path, c->depth, c->old, c->new};
  return vh_rp_print(arg, c->domain, &t);
}

typedef struct vh_rp_dom {
  vh_rp_t *p;
  const char *domain;
} vh_rp_dom_t;

static int vh_rp_tchange(void *arg, const vh_tdiff_change_t *c) {
  vh_rp_dom_t *d = arg;
  return vh_rp_print(d->p, d->domain, c);
}

static void vh_rp_value(vh_rp_t *p, const char *head, vh_val_t v) {
  p->line.len = 0;
  if (vh_buf_put(&p->line, head, strlen(head)) == 0 &&
      vh_diff_text_value(p->text, v, &p->line) == 0 &&
      vh_buf_put(&p->line, "\n", 1) == 0)
    fwrite(p->line.p, 1, p->line.len, stdout);
}

static const char *vh_rp_outcome(int o) {
  return o == VH_IN_OK ? "ok" : o == VH_IN_RAISED ? "raised" : "no handler";
}

static void vh_rp_trace(void *arg, const vh_replay_call_t *c, vh_domain_t *d,
                        vh_tab_t *before, vh_tab_t *after) {
  vh_rp_t *p = arg;
  const vh_input_t *e = c->in;
  int o = c->rc == 0                   ? VH_IN_OK
          : c->rc == VH_HOST_EROLLBACK ? VH_IN_RAISED
                                       : VH_IN_NOCALL;
  printf("%s %s.%.*s", vh_rp_kinds[e->kind], e->domain, (int)e->elen, e->event);
  if (e->kind == VH_IN_AFTER) printf(" (timer %lld)", (long long)e->id);
  if (e->kind == VH_IN_MSG) printf(" (message %lld)", (long long)e->id);
  if (e->kind == VH_IN_EVERY) printf(" (every %lld ms)", (long long)e->id);
  printf(" -> %s\n", vh_rp_outcome(o));
  if (d && before != after) {
    vh_rp_dom_t dd = {p, e->domain};
    p->prefix = "  ";
    vh_tab_diff(before, after, NULL, 0, vh_rp_tchange, &dd);
  }
  if (c->err) printf("  error: %s\n", c->err);
  if (e->has_reply && o == VH_IN_OK) vh_rp_value(p, "  reply: ", c->reply);
}

/* The retained version just before seq (in the window), or 0. */
typedef struct vh_rp_prev {
  uint64_t seq, found;
} vh_rp_prev_t;

static int vh_rp_prev_fn(void *arg, const vh_version_t *v) {
  vh_rp_prev_t *p = arg;
  if (v->seq < p->seq) {
    p->found = v->seq;
    return 1;
  }
  return 0;
}

int vh_replay_scripts(const char *data, const char *code, char ***out, int *n) {
  *out = NULL;
  *n = 0;
  if (code) {
    *out = malloc(sizeof **out);
    if (!*out || !((*out)[0] = strdup(code))) return VH_ENOMEM;
    *n = 1;
    return 0;
  }
  size_t l = strlen(data) + sizeof "/scripts";
  char *path = malloc(l);
  if (!path) return VH_ENOMEM;
  snprintf(path, l, "%s/scripts", data);
  FILE *f = fopen(path, "r");
  free(path);
  if (!f) return VH_ENOENT;
  char buf[4096];
  while (fgets(buf, sizeof buf, f)) {
    buf[strcspn(buf, "\n")] = '\0';
    if (!buf[0]) continue;
    char **nv = realloc(*out, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) break;
    *out = nv;
    if (!((*out)[*n] = strdup(buf))) break;
    (*n)++;
  }
  fclose(f);
  return *n ? 0 : VH_ENOENT;
}

void vh_replay_scripts_free(char **s, int n) {
  for (int i = 0; i < n; i++) free(s[i]);
  free(s);
}

int vh_replay_prev(vh_store_t *s, uint64_t v, uint64_t *prev, char *err,
                   size_t cap) {
  vh_history_t hist;
  vh_rp_prev_t pv = {v, 0};
  char *msg = NULL;
  int rc = vh_store_history(s, &hist, &msg);
  if (rc == 0) rc = vh_store_versions_each(s, 1, vh_rp_prev_fn, &pv, &msg);
  if (rc < 0) {
    snprintf(err, cap, "%s", msg ? msg : vh_err_name(rc));
    free(msg);
    return rc;
  }
  free(msg);
  if (pv.found == 0 || pv.found < hist.oldest) {
    snprintf(err, cap,
             "version %llu cannot be replayed: the version before it is not "
             "retained (the oldest retained is %llu)",
             (unsigned long long)v, (unsigned long long)hist.oldest);
    return VH_ENOENT;
  }
  *prev = pv.found;
  return 0;
}

int vh_replay_host_open(vh_offline_t *o, char **scripts, int nscripts,
                        const vh_manifest_t *m, int check_versions,
                        vh_replay_host_t *out, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  snprintf(out->scratch, sizeof out->scratch, "/tmp/vedhost-replay.XXXXXX");
  if (!mkdtemp(out->scratch)) {
    out->scratch[0] = '\0';
    snprintf(err, cap, "cannot make a scratch dir in /tmp");
    return VH_EIO;
  }
  vh_host_opts_t ho;
  vh_host_opts_default(&ho);
  ho.data_dir = out->scratch;
  ho.watch = 0;
  ho.durability = VH_DURABILITY_NOSYNC;
  ho.log_level = VH_LOG_WARN;
  ho.retain.zero = 1;
  int rc = vh_host_new(&ho, &out->h, err, cap);
  for (int i = 0; rc == 0 && i < nscripts; i++)
    rc = vh_host_load(out->h, scripts[i], err, cap);
  if (rc != 0) {
    vh_replay_host_close(out);
    return rc;
  }
  vh_host_t *h = out->h;
  vh_offline_use_loader(o); /* nodes come from o's store */
  for (int i = 0; i < h->ndoms; i++) {
    vh_domain_t *d = h->doms[i];
    const vh_manifest_domain_t *e = vh_manifest_find(m, d->name);
    if (!e) continue; /* new domain: its initial state, as at a boot */
    if (check_versions && e->version != d->version) {
      snprintf(err, cap,
               "domain %s is version %lld in the scripts but %lld in version "
               "%llu: replay runs no migrate (vedhost rehearse does)",
               d->name, (long long)d->version, (long long)e->version,
               (unsigned long long)m->seq);
      vh_replay_host_close(out);
      return VH_EINVAL;
    }
    vh_tab_t *root = e->root ? vh_tab_stub(e->root) : vh_tab_new(0);
    if (!root) {
      snprintf(err, cap, "out of memory");
      vh_replay_host_close(out);
      return VH_ENOMEM;
    }
    vhl_state_set_root(h->L, d->st, root);
  }
  if (vh_host__watchdog_start(h) != 0)
    fprintf(stderr, "vedhost: replay: no watchdog: handlers run unbounded\n");
  return 0;
}

void vh_replay_host_close(vh_replay_host_t *rh) {
  vh_host_free(rh->h); /* before the loader's store closes */
  rh->h = NULL;
  if (rh->scratch[0]) vh_offline_rm_tree(rh->scratch);
  rh->scratch[0] = '\0';
}

int vh_replay_main(int argc, char **argv) {
  static const vh_cli_opt_t opts[] = {
      {"--data", 1, 0}, {"--at", 1, 0}, {"--code", 1, 0}, {"--trace", 0, 0}};
  vh_cli_cmd_t cmd = {"replay", opts, 4, 0, vh_replay_usage};
  vh_rp_args_t a = {VH_DEFAULT_DATA_DIR, NULL, NULL, 0};
  int rc = vh_cli_parse(&cmd, argc, argv, vh_rp_arg, &a);
  if (rc == 0 && !a.at)
    rc = vh_cli_bad("replay",
                    "--at V is missing (a version: 1234, -1, "
                    "14:02)");
  if (rc != 0) return rc == 1 ? 0 : rc;

  vh_offline_t o;
  char err[1024];
  if (vh_offline_open(&o, a.data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: replay: %s\n", err);
    return 1;
  }
  int exit_code = 1;
  vh_host_t *h = NULL;
  vh_replay_host_t rh;
  memset(&rh, 0, sizeof rh);
  char **scripts = NULL;
  int nscripts = 0;
  vh_inputs_t in;
  memset(&in, 0, sizeof in);
  vh_replay_res_t res;
  memset(&res, 0, sizeof res);
  vh_version_t prev;
  memset(&prev, 0, sizeof prev);
  vh_vside_t real, got;
  memset(&real, 0, sizeof real);
  memset(&got, 0, sizeof got);
  vh_rp_t p;
  memset(&p, 0, sizeof p);
  char *msg = NULL;

  if (vh_offline_at(&o, a.at, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: replay: %s\n", err);
    goto out;
  }
  uint64_t v = o.at_seq ? o.at_seq : o.man.seq;
  rc = vh_store_inputs_get(o.store, v, &in, &msg);
  if (rc != 0) {
    fprintf(stderr, "vedhost: replay: %s\n", msg ? msg : vh_err_name(rc));
    goto out;
  }
  if (in.unreplayable) {
    fprintf(stderr, "vedhost: replay: version %llu is unreplayable: %s\n",
            (unsigned long long)v, in.reason ? in.reason : "(no reason)");
    goto out;
  }
  uint64_t prevseq = 0;
  if (vh_replay_prev(o.store, v, &prevseq, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: replay: %s\n", err);
    goto out;
  }
  rc = vh_store_version_get(o.store, prevseq, &prev, &msg);
  if (rc != 0) {
    fprintf(stderr, "vedhost: replay: %s\n", msg ? msg : vh_err_name(rc));
    goto out;
  }
  if (vh_replay_scripts(a.data, a.code, &scripts, &nscripts) != 0) {
    fprintf(stderr,
            "vedhost: replay: no scripts: give --code DIR (%s/scripts, "
            "written by vedhost run, is missing)\n",
            a.data);
    goto out;
  }
  if (vh_replay_host_open(&o, scripts, nscripts, &prev.m, 1, &rh, err,
                          sizeof err) != 0) {
    fprintf(stderr, "vedhost: replay: %s\n", err);
    goto out;
  }
  h = rh.h;
  if (vh_diff_text_open("replay", &p.text) != 0) goto out;
  rc = vh_replay_slice(h, &in, a.trace ? vh_rp_trace : NULL, &p, &res);
  if (rc != 0) {
    fprintf(stderr, "vedhost: replay: %s\n", vh_err_name(rc));
    goto out;
  }
  /* The state: V's roots against the replay's. */
  p.prefix = "state: ";
  size_t nbefore = p.nchanges;
  rc = vh_vside_from_manifest(&real, &o.man, vh_tab_stub);
  for (int i = 0; rc == 0 && i < h->ndoms; i++)
    rc = vh_vside_add(&got, h->doms[i]->name, vhl_state_root(h->doms[i]->st));
  if (rc == 0)
    rc = vh_changes_diff(&real, &got, NULL, NULL, 0, 0, 0, vh_rp_change, &p);
  const char *fm = NULL;
  if (rc != 0 || vh_trie_fault(&fm) != 0 || p.err) {
    fprintf(stderr, "vedhost: replay: cannot compare the state: %s\n",
            fm ? fm : vh_err_name(rc));
    goto out;
  }
  size_t ndiff = p.nchanges - nbefore;
  for (size_t i = 0; i < res.n; i++) {
    const vh_replay_call_t *c = &res.calls[i];
    const vh_input_t *e = c->in;
    if (c->err && c->rc == VH_HOST_EROLLBACK)
      printf("error #%zu %s.%.*s: %s\n", i + 1, e->domain, (int)e->elen,
             e->event, c->err);
    if (!c->differs) continue;
    int o2 = c->rc == 0                   ? VH_IN_OK
             : c->rc == VH_HOST_EROLLBACK ? VH_IN_RAISED
                                          : VH_IN_NOCALL;
    printf("reply #%zu %s.%.*s: recorded %s, replayed %s\n", i + 1, e->domain,
           (int)e->elen, e->event, vh_rp_outcome(e->outcome),
           vh_rp_outcome(o2));
    if (e->has_reply && e->outcome == VH_IN_OK)
      vh_rp_value(&p, "  recorded: ", e->reply);
    if (e->has_reply && o2 == VH_IN_OK)
      vh_rp_value(&p, "  replayed: ", c->reply);
  }
  if (ndiff == 0 && res.differs == 0 && res.errors == 0) {
    printf("version %llu reproduced: same state, same replies (%zu calls)\n",
           (unsigned long long)v, res.n);
    exit_code = 0;
  } else {
    printf(
        "version %llu NOT reproduced: %zu path%s differ%s, %zu "
        "repl%s differ%s, %zu handler error%s (%zu calls)\n",
        (unsigned long long)v, ndiff, ndiff == 1 ? "" : "s",
        ndiff == 1 ? "s" : "", res.differs, res.differs == 1 ? "y" : "ies",
        res.differs == 1 ? "s" : "", res.errors, res.errors == 1 ? "" : "s",
        res.n);
    exit_code = 3;
  }
out:
  fflush(stdout);
  free(msg);
  vh_vside_free(&real);
  vh_vside_free(&got);
  vh_replay_res_free(&res);
  vh_inputs_free(&in);
  vh_version_free(&prev);
  vh_diff_text_close(p.text);
  vh_buf_free(&p.line);
  vh_replay_host_close(&rh);
  vh_replay_scripts_free(scripts, nscripts);
  vh_offline_close(&o);
  return exit_code;
}
