/*
 * rollback_cmd.c - `vedhost rollback [--data DIR] --domain NAME --to V`:
 * put one domain back to the state it had at a retained version V. This
 * file is the command line: through the control socket of a running host
 * (host/repl/repl_rollback.c does the work there), or on a stopped data dir
 * (here). What is written, the exact GC and the refusals: below.
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
 * lists (vh_hist_resurrect, persist/store/history.c); the nodes of the current
 * tree that V's tree does not hold die in the rollback's version (its own
 * death list). Both sets come from vh_rewind_diff, a walk over node ids
 * that never reads a subtree the two trees share, so the cost follows what
 * changed between V and now, not the size of the state.
 *
 * ON A RUNNING HOST: COMMAND "rollback NAME SPEC" on the control socket;
 * host/repl/repl_rollback.c does it as its own slice between two others
 * and answers once it is durable (how: its top comment).
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

#include <uv.h>

#include "vh_cli_args.h"
#include "vh_control.h"
#include "vh_datadir.h"
#include "vh_manifest.h"
#include "vh_offline.h"
#include "vh_repl.h"
#include "vh_rewind.h"
#include "vh_rollback.h"
#include "vh_store.h"
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

/* The wall clock, unix ms (versions' times and ages). */
static int64_t vh_roll_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
  int had_lock = vh_offline_had_lock(data);
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
  vh_rewind_plan_t p;
  memset(&p, 0, sizeof p);
  char *m = NULL;
  void *mb = NULL; /* the rolled-back manifest, encoded */
  size_t ml = 0;
  int ret = 1, rc = vh_store_open(data, &so, &s, &m);
  if (rc == 0) rc = vh_offline_read_manifest(s, &cur, &m);
  if (rc != 0) {
    /* the store's open messages start with the dir: not twice */
    const char *why = rc == VH_ENOENT && !m ? "no store (nothing to roll back)"
                                            : (m ? m : vh_err_name(rc));
    size_t dl = strlen(data);
    int named = strncmp(why, data, dl) == 0 && why[dl] == ':';
    fprintf(stderr, "vedhost: rollback: %s%s%s; nothing was changed\n",
            named ? "" : data, named ? "" : ": ", why);
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
  if (vh_rewind_plan(s, name, spec, vh_roll_wall_ms(), e->version, e->root, &p,
                     err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: rollback: %s\n", err);
    goto done;
  }
  if (p.nothing) {
    vh_rewind_summary(err, sizeof err, name, &p, 0);
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
                        .time_ms = vh_roll_wall_ms(),
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
  vh_rewind_summary(err, sizeof err, name, &p, seq);
  printf("%s\n", err);
  ret = 0;
done:
  free(m);
  free(mb);
  vh_batch_free(b);
  vh_hist_free(H);
  vh_rewind_plan_free(&p);
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
  vh_offline_unlock(&dd, had_lock, ret);
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
