/*
 * rollback.c - `vedhost rollback [--data DIR] --domain NAME --to V`: put
 * one domain back to the state it had at a retained version V.
 *
 * WHAT IT WRITES. A new version (a slice of its own), whose manifest is the
 * current one with NAME's root replaced by the root NAME had at V: a stub
 * of that stored node, nothing is copied. Every other domain, the system
 * state "__ved" (queued messages, `after` timers) and every domain version
 * stay as they are. The rollback is a version like any other, so it is
 * undone by rolling back to the version before it.
 *
 * EXACT GC (the hard part; ARCHITECTURE.md invariant 5). The nodes of V's
 * tree that the current tree does not hold died after V: they sit in death
 * lists ('D' d s, d > V) or, when a mark pinned them, in pinned entries
 * ('P'), waiting to be deleted when retention passes them. The rollback
 * makes them live again, so in the same batch they are taken out of those
 * lists (vh_batch_resurrect, persist/rewind.c); the nodes of the current
 * tree that V's tree does not hold die in the rollback's version (its own
 * death list). Both sets come from vh_rewind_diff, a walk over node ids
 * that never reads a subtree the two trees share, so the cost follows what
 * changed between V and now, not the size of the state.
 *
 * ON A RUNNING HOST (the command reaches the loop through the control
 * socket: COMMAND "rollback NAME SPEC", repl_info.c): the current slice is
 * ended first (so every root is stored) and the loop waits until the store
 * has written it (the walk reads nodes from disk); then, in one step with
 * no handler in between, the replaced root's in-memory nodes become view
 * nodes (vh_tab_make_view: whoever still holds them - a REPL fork, an
 * iterator, a plugin's reader - their deaths are never reported, since
 * part of them is alive again), the domain gets the stub of V's root, and
 * the slice is ended again: that batch is the rollback's version. The
 * command waits for it to be durable before it answers. Those two waits
 * block the loop for about two group commits; a rollback is an operator's
 * act, not traffic. Each wait gives up after 30 s (a failing store must not
 * freeze the host): before the swap that refuses the rollback, after it
 * the answer says the version is not durable yet. It is logged ("rolled
 * back to version V").
 *
 * ON A STOPPED DATA DIR: DIR/LOCK is taken (a host starting meanwhile is
 * refused), the store opened, and one batch appended with the same
 * content as above; the next `run` starts from it.
 *
 * REFUSED (one line, nothing changed): an unknown domain, a domain absent
 * at V, a version not retained, and a domain whose version at V is not the
 * version it runs now: the state at V has the shape of an older `version`
 * and a `migrate` lies between; rolling back across it would hand the
 * current code a state it does not expect. (The alternative, running
 * migrate again as a boot would, was not chosen: migrate is written to run
 * once per version bump, and running it on a rollback would surprise.)
 * Rolling back to the state the domain has now changes nothing and writes
 * nothing ("nothing to roll back").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_cli_args.h"
#include "vh_control.h"
#include "vh_datadir.h"
#include "vh_log.h"
#include "vh_manifest.h"
#include "vh_repl.h"
#include "vh_rewind.h"
#include "vh_rollback.h"
#include "vh_store.h"
#include "vh_version_spec.h"
#include "vh_versions.h"

static const char vh_rollback_usage[] =
    "usage: vedhost rollback [--data DIR] --domain NAME --to V\n"
    "  put domain NAME back to the state it had at version V (a seq, -N,\n"
    "  a time such as 14:02 or 2026-12-06T14:02:00Z, an age such as -5m,\n"
    "  or a mark) as a new version: undo it by rolling back to the version\n"
    "  before. Through the control socket when a host runs on DIR, else\n"
    "  on the stopped data dir. Messages, timers and versions are kept.\n"
    "  --data DIR      data directory (default " VH_DEFAULT_DATA_DIR
    ")\n"
    "  --domain NAME   the domain\n"
    "  --to V          the version to go back to\n";

/* What a rollback will do, found before anything is changed. */
typedef struct vh_roll_plan {
  uint64_t to;       /* V, resolved */
  uint64_t to_root;  /* NAME's root at V */
  uint64_t cur_root; /* NAME's root now */
  vh_idlist_t dead;  /* nodes only the current tree holds */
  vh_idlist_t back;  /* nodes only V's tree holds: resurrected */
  int nothing;       /* the roots are equal: nothing to do */
} vh_roll_plan_t;

static void vh_roll_plan_free(vh_roll_plan_t *p) {
  vh_idlist_free(&p->dead);
  vh_idlist_free(&p->back);
}

static int vh_roll_back_cb(void *arg, uint64_t id) {
  return vh_idlist_add(&((vh_roll_plan_t *)arg)->back, id);
}

static int vh_roll_dead_cb(void *arg, uint64_t id) {
  return vh_idlist_add(&((vh_roll_plan_t *)arg)->dead, id);
}

/* Resolve spec, check NAME at V against its running version, and walk the
 * difference between its root at V and cur_root. 0, or -1 with one line
 * in err (nothing changed). */
static int vh_roll_prepare(vh_store_t *s, const char *name, const char *spec,
                           int64_t running_version, uint64_t cur_root,
                           vh_roll_plan_t *p, char *err, size_t cap) {
  char *m = NULL;
  vh_version_t ver;
  memset(&ver, 0, sizeof ver);
  memset(p, 0, sizeof *p);
  p->cur_root = cur_root;
  int rc = vh_version_resolve(s, spec, vh_host__wall_ms(), &p->to, &m);
  if (rc == 0) rc = vh_store_version_get(s, p->to, &ver, &m);
  if (rc != 0) {
    snprintf(err, cap, "%s; nothing was changed", m ? m : vh_err_name(rc));
    free(m);
    return -1;
  }
  const vh_manifest_domain_t *e = vh_manifest_find(&ver.m, name);
  if (e == NULL) {
    snprintf(err, cap,
             "domain '%s' did not exist at version %" PRIu64
             "; nothing was changed",
             name, p->to);
    vh_version_free(&ver);
    return -1;
  }
  if (e->version != running_version) {
    snprintf(err, cap,
             "domain '%s' was at version %lld in version %" PRIu64
             " and is at version %lld now: a rollback across a migrate is "
             "refused (that state has the shape the older script expected); "
             "pick a version after the migrate; nothing was changed",
             name, (long long)e->version, p->to, (long long)running_version);
    vh_version_free(&ver);
    return -1;
  }
  p->to_root = e->root;
  vh_version_free(&ver);
  if (p->to_root == cur_root) {
    p->nothing = 1;
    return 0;
  }
  rc = vh_store_tree_diff(s, p->to_root, cur_root, vh_roll_back_cb,
                          vh_roll_dead_cb, p, &m);
  if (rc != 0) {
    snprintf(err, cap,
             "cannot compare version %" PRIu64
             " with the current state: %s; nothing was changed",
             p->to, m ? m : vh_err_name(rc));
    free(m);
    vh_roll_plan_free(p);
    return -1;
  }
  return 0;
}

/* The summary line of a rollback written as version seq. */
static void vh_roll_summary(char *msg, size_t cap, const char *name,
                            const vh_roll_plan_t *p, uint64_t seq) {
  if (p->nothing) {
    snprintf(msg, cap,
             "nothing to roll back: domain '%s' holds the state of version "
             "%" PRIu64 " already",
             name, p->to);
    return;
  }
  snprintf(msg, cap,
           "rolled back domain '%s' to version %" PRIu64 " as version %" PRIu64
           " (%zu node(s) back, %zu dropped); undo: vedhost rollback "
           "--domain %s --to %" PRIu64,
           name, p->to, seq, p->back.n, p->dead.n, name, seq - 1);
}

/* ---- on a running host (the control socket's "rollback NAME SPEC") ---- */

/* Waits (blocking the loop: see the file comment) until the store has
 * written seq, at most VH_ROLL_WAIT_MS: a store that stopped or keeps
 * failing must not freeze the host. 0, or -1. */
#define VH_ROLL_WAIT_MS 30000
static int vh_roll_wait(vh_store_t *s, uint64_t seq) {
  for (int i = 0; i < VH_ROLL_WAIT_MS; i++) {
    if (vh_store_durable_seq(s) >= seq) return 0;
    vh_store_health_t hl;
    vh_store_health(s, &hl);
    free(hl.last_error);
    if (hl.stopped) return -1;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return vh_store_durable_seq(s) >= seq ? 0 : -1;
}

int vh_rollback__command(vh_host_t *h, const char *args, char *msg,
                         size_t cap) {
  char name[256];
  size_t nl = strcspn(args, " ");
  const char *spec = args[nl] ? args + nl + 1 : "";
  while (*spec == ' ') spec++;
  if (nl == 0 || nl >= sizeof name || *spec == '\0') {
    snprintf(msg, cap, "usage: :rollback NAME V");
    return -1;
  }
  memcpy(name, args, nl);
  name[nl] = '\0';
  vh_domain_t *d = vh_host__find(h, name, nl);
  if (d == NULL) {
    snprintf(msg, cap, "no domain '%s'; nothing was changed", name);
    return -1;
  }
  if (d->retired) {
    snprintf(msg, cap, "domain '%s' is not running (%s); nothing was changed",
             name, d->refused ? d->refused : "not declared by the scripts");
    return -1;
  }
  vh_store_t *s = vh_durable__store(h);
  char why[512];
  if (s == NULL || !vh_host__accepting(h, why, sizeof why)) {
    snprintf(msg, cap, "cannot roll back now: %s; nothing was changed",
             s ? why : "the host has no store");
    return -1;
  }
  /* Every root stored and readable: end the slice, wait for the store. */
  vh_slice_end(h);
  vh_durable_stats_t ds;
  vh_durable__stats(h, &ds);
  if (vh_roll_wait(s, ds.submitted) != 0) {
    snprintf(msg, cap,
             "the store is not writing (see :stats); nothing was changed");
    return -1;
  }
  uint64_t cur = vh_tab_id(vhl_state_root(d->st));
  vh_roll_plan_t p;
  if (cur == 0) {
    snprintf(msg, cap,
             "the current state of '%s' is not stored yet (the store is "
             "failing); nothing was changed",
             name);
    return -1;
  }
  if (vh_roll_prepare(s, name, spec, d->version, cur, &p, msg, cap) != 0)
    return -1;
  if (p.nothing) {
    vh_roll_summary(msg, cap, name, &p, 0);
    return 0;
  }
  char err[512];
  if (vh_durable__rewind(h, d, p.to_root, p.to, &p.dead, &p.back, err,
                         sizeof err) != 0) {
    snprintf(msg, cap, "%s; nothing was changed", err);
    vh_roll_plan_free(&p);
    return -1;
  }
  vh_slice_end(h); /* the rollback's own version */
  vh_durable__stats(h, &ds);
  vh_roll_summary(msg, cap, name, &p, ds.submitted);
  vh_log(VH_LOG_WARN, name,
         "rolled back to version %" PRIu64 " as version %" PRIu64
         " (%zu node(s) back, %zu dropped)",
         p.to, ds.submitted, p.back.n, p.dead.n);
  vh_roll_plan_free(&p);
  if (vh_roll_wait(s, ds.submitted) != 0) {
    snprintf(msg, cap,
             "rolled back, but version %" PRIu64
             " is not durable yet: the store is not writing (see :stats); it "
             "is written when the store recovers, or lost if the host stops "
             "first",
             ds.submitted);
    return -1;
  }
  return 0;
}

/* ---- on a stopped data dir ---- */

/* Appends the rollback as a new version to the stopped store at data. */
static int vh_roll_offline(const char *data, const char *name,
                           const char *spec) {
  struct stat sb;
  if (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "vedhost: rollback: no data dir %s; nothing was changed\n",
            data);
    return 1;
  }
  char err[1024];
  vh_datadir_t dd = {NULL, -1};
  if (vh_datadir_open(&dd, data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: rollback: %s; nothing was changed\n", err);
    return 1;
  }
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  so.sync = 1;
  vh_store_t *s = NULL;
  vh_hist_t *H = NULL;
  vh_batch_t *b = NULL;
  vh_manifest_t cur;
  memset(&cur, 0, sizeof cur);
  vh_roll_plan_t p;
  memset(&p, 0, sizeof p);
  char *m = NULL;
  void *mb = NULL;
  size_t ml = 0;
  int ret = 1, rc = vh_store_open(data, &so, &s, &m);
  if (rc == 0) rc = vh_store_get_manifest(s, &mb, &ml, &m);
  if (rc == 0) rc = vh_manifest_decode(mb, ml, &cur, &m);
  free(mb);
  mb = NULL;
  if (rc != 0) {
    fprintf(stderr, "vedhost: rollback: %s: %s; nothing was changed\n", data,
            rc == VH_ENOENT && !m ? "no store (nothing to roll back)"
                                  : (m ? m : vh_err_name(rc)));
    goto done;
  }
  vh_manifest_domain_t *e = NULL;
  for (size_t i = 0; i < cur.ndomains; i++)
    if (strcmp(cur.domains[i].name, name) == 0) e = &cur.domains[i];
  if (e == NULL) {
    fprintf(stderr,
            "vedhost: rollback: no domain '%s' in %s; nothing was changed\n",
            name, data);
    goto done;
  }
  if (vh_roll_prepare(s, name, spec, e->version, e->root, &p, err,
                      sizeof err) != 0) {
    fprintf(stderr, "vedhost: rollback: %s\n", err);
    goto done;
  }
  if (p.nothing) {
    vh_roll_summary(err, sizeof err, name, &p, 0);
    printf("%s\n", err);
    ret = 0;
    goto done;
  }
  /* One batch: the new manifest, the version record and its death list,
   * the resurrected nodes out of the older death lists and pins. No
   * version is dropped here: the next run applies its own --retain. */
  vh_retain_t keep;
  memset(&keep, 0, sizeof keep);
  uint64_t seq = cur.seq + 1;
  e->root = p.to_root;
  cur.seq = seq;
  uint64_t *ents = malloc((p.dead.n ? p.dead.n : 1) * sizeof *ents);
  rc = ents ? 0 : VH_ENOMEM;
  for (size_t i = 0; rc == 0 && i < p.dead.n; i++)
    ents[i] = VH_DEAD(p.dead.v[i], 0);
  if (rc == 0) rc = vh_hist_open(s, &keep, &H, &m);
  if (rc == 0) rc = vh_batch_new(&b);
  if (rc == 0) rc = vh_manifest_encode(&cur, &mb, &ml);
  if (rc == 0) rc = vh_batch_set_manifest(b, mb, ml);
  if (rc == 0) rc = vh_hist_resurrect(H, b, p.to, p.back.v, p.back.n, &m);
  char *changed[1] = {(char *)name};
  vh_hist_slice_t sl = {.seq = seq,
                        .is_version = 1,
                        .time_ms = vh_host__wall_ms(),
                        .changed = changed,
                        .nchanged = 1,
                        .man = mb,
                        .manlen = ml,
                        .next_id = cur.next_id,
                        .dead = ents,
                        .ndead = p.dead.n,
                        .durable = seq - 1};
  if (rc == 0) rc = vh_hist_slice(H, b, &sl, NULL, NULL, &m);
  free(ents);
  if (rc == 0) {
    rc = vh_store_submit(s, b, seq);
    b = NULL;
  }
  if (rc == 0) rc = vh_store_wait_durable(s, seq);
  if (rc != 0) {
    fprintf(stderr, "vedhost: rollback: cannot write to %s: %s\n", data,
            m ? m : vh_err_name(rc));
    goto done;
  }
  vh_roll_summary(err, sizeof err, name, &p, seq);
  printf("%s\n", err);
  ret = 0;
done:
  free(m);
  free(mb);
  vh_batch_free(b);
  vh_hist_free(H);
  vh_roll_plan_free(&p);
  vh_manifest_free(&cur);
  if (s != NULL) {
    char *cm = NULL;
    if (vh_store_close(s, &cm) != 0 && ret == 0) {
      fprintf(stderr, "vedhost: rollback: closing %s: %s\n", data,
              cm ? cm : "error");
      ret = 1;
    }
    free(cm);
  }
  vh_datadir_close(&dd);
  return ret;
}

/* ---- the command line ---- */

typedef struct vh_roll_args {
  const char *data, *domain, *to;
} vh_roll_args_t;

static const vh_cli_opt_t vh_roll_opts[] = {
    {"--data", 1, 0}, {"--domain", 1, 0}, {"--to", 1, 0}};

static int vh_roll_arg(void *arg, int opt, const char *val) {
  vh_roll_args_t *a = arg;
  if (opt == 0) a->data = val;
  if (opt == 1) a->domain = val;
  if (opt == 2) a->to = val;
  return 0;
}

int vh_rollback_main(int argc, char **argv) {
  static const vh_cli_cmd_t cmd = {"rollback", vh_roll_opts, 3, 0,
                                   vh_rollback_usage};
  vh_roll_args_t a = {VH_DEFAULT_DATA_DIR, NULL, NULL};
  int rc = vh_cli_parse(&cmd, argc, argv, vh_roll_arg, &a);
  if (rc != 0) return rc == 1 ? 0 : 2;
  if (a.domain == NULL)
    return vh_cli_bad("rollback", "--domain NAME is needed");
  if (a.to == NULL) return vh_cli_bad("rollback", "--to V is needed");
  if (strchr(a.domain, ' ') != NULL)
    return vh_cli_bad("rollback", "no domain is named '%s'", a.domain);
  int fd = -1;
  rc = vh_repl_connect(a.data, &fd);
  if (rc == UV_ENOENT) return vh_roll_offline(a.data, a.domain, a.to);
  if (rc != 0) {
    fprintf(stderr, "vedhost: rollback: cannot reach the host on %s: %s\n",
            a.data, uv_strerror(rc));
    return 1;
  }
  size_t n = strlen(a.domain) + strlen(a.to) + sizeof "rollback  ";
  char *req = malloc(n);
  if (req == NULL) {
    close(fd);
    fprintf(stderr, "vedhost: rollback: out of memory\n");
    return 1;
  }
  snprintf(req, n, "rollback %s %s", a.domain, a.to);
  int rtype = 0;
  char *rep = NULL;
  size_t rlen = 0;
  rc = vh_repl_request(fd, VH_CONTROL_COMMAND, req, strlen(req), &rtype, &rep,
                       &rlen);
  free(req);
  close(fd);
  if (rc != 0) {
    fprintf(stderr, "vedhost: rollback: lost the host on %s: %s\n", a.data,
            uv_strerror(rc));
    return 1;
  }
  if (rtype == VH_CONTROL_OK) {
    printf("%s\n", rep);
    free(rep);
    return 0;
  }
  fprintf(stderr, "vedhost: rollback: %s\n", rep ? rep : "refused");
  free(rep);
  return 1;
}
