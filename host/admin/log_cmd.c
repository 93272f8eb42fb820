/*
 * log_cmd.c - `vedhost log [--data DIR] [--domain NAME] [--since T]
 * [-n N]`: the retained versions, newest first, one line each.
 *
 * HOW. The store is opened as a RocksDB secondary (offline.c: no lock,
 * nothing written, one consistent view), so log runs the same beside a
 * running host and on a stopped one. The version records ('V', written
 * by the host in each slice's own batch: persist/store/vh_versions.h) are
 * walked newest first; only their summaries are printed, no trie node is
 * read, so the cost is the number of lines printed (and, with --domain or
 * --since, the records skipped), whatever the size of the state.
 *
 * OUTPUT (stdout): a header line, then one line per version:
 *
 *       SEQ  TIME (UTC)                EVENTS      KEYS  DOMAINS
 *      1305  2026-12-06T14:10:00.000Z       3        12  counter, jobs
 *      1290  2026-12-06T14:02:00.000Z       1         1  counter  [predeploy]
 *
 *   SEQ      the version's id (the slice's manifest seq)
 *   TIME     the slice clock of that slice (ctx.now), UTC, ms
 *   EVENTS   handler calls in the slice (a REPL chunk's send() counts)
 *   KEYS     state keys written in the slice (sets and removals)
 *   DOMAINS  the domains whose state changed, comma separated ("-" when
 *            only the system state, timers and messages, changed)
 *   [a, b]   the marks naming that version, if any
 * Marked versions older than the retention window are listed in their
 * place too (they are retained).
 *
 * FILTERS. --domain NAME keeps versions that changed NAME. --since T keeps
 * versions at or after T: a time or an age (`14:02`, `-5m`,
 * `2026-12-06T14:02:00Z`) compares times (the walk stops at the first
 * version older than T: slice clocks grow with seqs unless the wall clock
 * was set back), any other version spec (`1234`, `-10`, a mark) compares
 * seqs. -n N stops after N lines.
 *
 * Exit codes: 0 (also when nothing matches: the header alone), 1 a runtime
 * failure (no data dir, damaged store, --since naming no version, a
 * --domain that neither the current state nor any retained version's
 * changes name: a typo, not an empty answer), 2 bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_cli_args.h"
#include "vh_offline.h"
#include "vh_version_spec.h"

#include "vh_versions.h"

static const char vh_logcmd_usage[] =
    "usage: vedhost log [--data DIR] [--domain NAME] [--since T] [-n N]\n"
    "  list the retained versions of DIR (default " VH_DEFAULT_DATA_DIR
    "),\n"
    "  newest first: seq, time (UTC), handler calls, keys written, domains\n"
    "  changed, marks. --domain keeps versions that changed NAME; --since\n"
    "  keeps those at or after T (a time 14:02 / 2026-12-06T14:02:00Z, an\n"
    "  age -5m, or a version: 1234, -10, a mark); -n N prints at most N.\n"
    "  Safe while a host runs on DIR.\n";

/* The command line. */
typedef struct vh_logcmd_args {
  const char *data;   /* --data */
  const char *domain; /* --domain, or NULL */
  const char *since;  /* --since, or NULL */
  long n;             /* -n, or -1 */
} vh_logcmd_args_t;

static int vh_logcmd_arg(void *arg, int opt, const char *val) {
  vh_logcmd_args_t *a = arg;
  char *end;
  switch (opt) {
    case 0:
      a->data = val;
      return 0;
    case 1:
      a->domain = val;
      return 0;
    case 2:
      a->since = val;
      return 0;
    default:
      a->n = strtol(val, &end, 10);
      if (*end != '\0' || a->n < 1 || a->n > 1000000000L)
        return vh_cli_bad("log", "-n must be a positive number (got '%s')",
                          val);
      return 0;
  }
}

/* The walk's state. */
typedef struct vh_logcmd_walk {
  const vh_logcmd_args_t *a;
  vh_mark_t *marks; /* [owned] */
  size_t nmarks;
  int since_time;     /* --since compares times (1) or seqs (0) */
  int64_t since_t;    /* ... the moment */
  uint64_t since_seq; /* ... the seq */
  long printed;       /* lines printed */
} vh_logcmd_walk_t;

static int vh_logcmd_line(void *arg, const vh_version_t *v) {
  vh_logcmd_walk_t *w = arg;
  char tb[VH_VERSION_TIME_LEN];
  if (w->a->since) {
    if (w->since_time ? v->time_ms < w->since_t : v->seq < w->since_seq)
      return 1; /* older ones follow */
  }
  if (w->a->domain) {
    size_t i;
    for (i = 0; i < v->nchanged; i++)
      if (strcmp(v->changed[i], w->a->domain) == 0) break;
    if (i == v->nchanged) return 0;
  }
  printf("%8" PRIu64 "  %-24s  %6" PRIu32 "  %8" PRIu64 "  ", v->seq,
         vh_version_time_fmt(v->time_ms, tb), v->events, v->keys_changed);
  if (v->nchanged == 0) fputs("-", stdout);
  for (size_t i = 0; i < v->nchanged; i++)
    printf("%s%s", i ? ", " : "", v->changed[i]);
  int first = 1;
  for (size_t i = 0; i < w->nmarks; i++) {
    if (w->marks[i].seq != v->seq) continue;
    printf("%s%s", first ? "  [" : ", ", w->marks[i].name);
    first = 0;
  }
  if (!first) fputc(']', stdout);
  fputc('\n', stdout);
  return w->a->n > 0 && ++w->printed >= w->a->n;
}

/* Stops the walk (1) at a version that changed the domain arg. */
static int vh_logcmd_has(void *arg, const vh_version_t *v) {
  for (size_t i = 0; i < v->nchanged; i++)
    if (strcmp(v->changed[i], (const char *)arg) == 0) return 1;
  return 0;
}

/* 0 if --domain names a domain of the current state or of a retained
 * version's changes; else prints the one error line and returns 1. */
static int vh_logcmd_domain(vh_offline_t *o, const char *data, const char *name,
                            char **msg) {
  for (size_t i = 0; i < o->man.ndomains; i++)
    if (strcmp(o->man.domains[i].name, name) == 0) return 0;
  int rc =
      vh_store_versions_each(o->store, 1, vh_logcmd_has, (void *)name, msg);
  if (rc != 0) return rc > 0 ? 0 : rc;
  fprintf(stderr, "vedhost: log: no domain '%s' in %s (domains: ", name, data);
  for (size_t i = 0; i < o->man.ndomains; i++)
    fprintf(stderr, "%s%s", i ? ", " : "", o->man.domains[i].name);
  fprintf(stderr, "%s)\n", o->man.ndomains ? "" : "none");
  return 1;
}

int vh_log_main(int argc, char **argv) {
  static const vh_cli_opt_t opts[] = {
      {"--data", 1, 0}, {"--domain", 1, 0}, {"--since", 1, 0}, {"-n", 1, 0}};
  vh_cli_cmd_t cmd = {argv[0], opts, 4, 0, vh_logcmd_usage};
  vh_logcmd_args_t a = {VH_DEFAULT_DATA_DIR, NULL, NULL, -1};
  int rc = vh_cli_parse(&cmd, argc, argv, vh_logcmd_arg, &a);
  if (rc != 0) return rc == 1 ? 0 : rc;
  vh_logcmd_walk_t w;
  memset(&w, 0, sizeof w);
  w.a = &a;
  char *msg = NULL;
  if (a.since) { /* a malformed time is a usage error, before opening */
    rc = vh_version_parse_time(a.since, vh_offline_now_ms(), &w.since_t, &msg);
    if (rc < 0) {
      rc = vh_cli_bad("log", "--since: %s", msg ? msg : "bad time");
      free(msg);
      return rc;
    }
    w.since_time = rc == 1;
  }
  vh_offline_t o;
  char err[1024];
  if (vh_offline_open(&o, a.data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: log: %s\n", err);
    return 1;
  }
  rc = 0;
  if (a.since && !w.since_time) {
    rc = vh_version_resolve(o.store, a.since, vh_offline_now_ms(), &w.since_seq,
                            &msg);
  }
  if (rc == 0 && a.domain) rc = vh_logcmd_domain(&o, a.data, a.domain, &msg);
  if (rc == 0) rc = vh_store_marks(o.store, &w.marks, &w.nmarks, &msg);
  if (rc == 0) {
    printf("%8s  %-24s  %6s  %8s  %s\n", "SEQ", "TIME (UTC)", "EVENTS", "KEYS",
           "DOMAINS");
    rc = vh_store_versions_each(o.store, 1, vh_logcmd_line, &w, &msg);
    if (rc > 0) rc = 0;
  }
  if (rc < 0) {
    fprintf(stderr, "vedhost: log: %s\n", msg ? msg : vh_err_name(rc));
    rc = 1;
  }
  free(msg);
  vh_marks_free(w.marks, w.nmarks);
  vh_offline_close(&o);
  fflush(stdout);
  return rc;
}
