/*
 * mark_cmd.c - `vedhost mark [--data DIR] NAME` and `vedhost unmark [--data
 * DIR] NAME`: pin the current version under a name until unmark (README
 * "Versions"; the rule: persist/store/history.c).
 *
 * WHERE IT RUNS. When a host runs on DIR (its control socket answers), the
 * request goes there as the REPL's `:mark NAME` / `:unmark NAME`: the host
 * writes the mark in its next slice's batch and answers once that batch is
 * durable. Otherwise the data dir is locked like `run` does (a host that
 * is starting or has no socket makes this fail with run's message), the
 * store is opened, and the history engine writes the mark (or, for unmark,
 * removes it and re-examines the entries it pinned, batch after batch,
 * until none is left) in batches of its own; the next `run` goes on from
 * there (the nodes unpinned are deleted or queued for sweeping already).
 *
 * OUTPUT. One line: "marked NAME = version SEQ" / "unmarked NAME", exit 0.
 * Errors (bad name, duplicate, unknown mark, no store, a locked dir): one
 * line "vedhost: mark: ...", exit 1; usage errors exit 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vh_cli_args.h"
#include "vh_control.h"
#include "vh_datadir.h"
#include "vh_host.h"
#include "vh_manifest.h"
#include "vh_offline.h"
#include "vh_repl.h"
#include "vh_store.h"
#include "vh_versions.h"

static const char vh_mark_usage[] =
    "usage: vedhost mark [--data DIR] NAME\n"
    "       vedhost unmark [--data DIR] NAME\n"
    "  mark pins the current version of the data dir "
    "(default " VH_DEFAULT_DATA_DIR
    ")\n"
    "  under NAME, outside the retention window, until unmark NAME. Works\n"
    "  on a running host (through its control socket) or a stopped one.\n"
    "  NAME: 1-64 letters, digits, '_', '.', '-', starting with a letter\n"
    "  or '_'.\n";

/* Through the control socket: 0 ok, 1 error (printed); -1 no host. */
static int vh_mark__online(const char *cmd, const char *data,
                           const char *name) {
  int fd = -1;
  if (vh_repl_connect(data, &fd) != 0) return -1;
  char req[160];
  snprintf(req, sizeof req, "%s %s", cmd, name);
  int rtype = 0;
  char *rep = NULL;
  size_t rlen = 0;
  int rc = vh_repl_request(fd, VH_CONTROL_COMMAND, req, strlen(req), &rtype,
                           &rep, &rlen);
  close(fd);
  if (rc != 0) {
    fprintf(stderr, "vedhost: %s: the host closed the connection\n", cmd);
    return 1;
  }
  if (rtype == VH_CONTROL_OK) {
    printf("%s\n", rep);
    free(rep);
    return 0;
  }
  fprintf(stderr, "vedhost: %s: %s\n", cmd, rep ? rep : "failed");
  free(rep);
  return 1;
}

/* One batch of the engine, written and waited for. */
static int vh_mark__batch(vh_store_t *s, vh_hist_t *H, uint64_t seq,
                          uint64_t sub, char **m) {
  vh_batch_t *b = NULL;
  if (vh_batch_new(&b) != 0) return VH_ENOMEM;
  vh_hist_slice_t sl;
  memset(&sl, 0, sizeof sl);
  sl.seq = seq;
  sl.durable = UINT64_MAX; /* every earlier batch was waited for */
  int rc = vh_hist_slice(H, b, &sl, NULL, NULL, m);
  if (rc != 0) {
    vh_batch_free(b);
    return rc;
  }
  rc = vh_store_submit(s, b, sub);
  if (rc == 0) rc = vh_store_wait_durable(s, sub);
  return rc;
}

static int vh_mark__offline(const char *cmd, const char *data, const char *name,
                            int unmark) {
  char err[1024];
  vh_datadir_t dd;
  if (access(data, F_OK) != 0) {
    fprintf(stderr, "vedhost: %s: %s: no such data dir\n", cmd, data);
    return 1;
  }
  int had_lock = vh_offline_had_lock(data);
  if (vh_datadir_open(&dd, data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: %s: %s\n", cmd, err);
    return 1;
  }
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  vh_store_t *s = NULL;
  char *m = NULL;
  int rc = vh_store_open(data, &so, &s, &m);
  if (rc == 0) { /* a newer or damaged manifest: refused, never written */
    vh_manifest_t cur;
    rc = vh_offline_read_manifest(s, &cur, &m);
    if (rc == VH_ENOENT) rc = 0; /* never given a manifest */
    vh_manifest_free(&cur);
    if (rc != 0) {
      char *cm = NULL;
      vh_store_close(s, &cm);
      free(cm);
    }
  }
  if (rc != 0) {
    fprintf(stderr, "vedhost: %s: %s\n", cmd, m ? m : vh_err_name(rc));
    free(m);
    vh_offline_unlock(&dd, had_lock, 1);
    return 1;
  }
  vh_retain_t keep; /* no limit: an offline mark drops no version */
  memset(&keep, 0, sizeof keep);
  vh_hist_t *H = NULL;
  rc = vh_hist_open(s, &keep, &H, &m);
  uint64_t seq = 0;
  if (rc == 0) {
    vh_history_t hi;
    vh_hist_info(H, &hi);
    seq = hi.newest;
    rc = unmark ? vh_hist_unmark(H, name, &m) : vh_hist_mark(H, name, &m);
  }
  /* The engine's batches carry no manifest: their seq only orders them. */
  uint64_t sub = 0;
  if (rc == 0) rc = vh_mark__batch(s, H, seq, ++sub, &m);
  for (int i = 0;
       rc == 0 && unmark && i < 1000000 && vh_hist_due(H, 0, UINT64_MAX); i++)
    rc = vh_mark__batch(s, H, seq, ++sub, &m);
  int out = 0;
  if (rc != 0) {
    fprintf(stderr, "vedhost: %s: %s\n", cmd, m ? m : vh_err_name(rc));
    out = 1;
  } else if (unmark) {
    printf("unmarked %s\n", name);
  } else {
    printf("marked %s = version %llu\n", name, (unsigned long long)seq);
  }
  free(m);
  vh_hist_free(H);
  m = NULL;
  if (vh_store_close(s, &m) != 0 && out == 0) {
    fprintf(stderr, "vedhost: %s: %s\n", cmd, m ? m : "closing the store");
    out = 1;
  }
  free(m);
  vh_offline_unlock(&dd, had_lock, out);
  return out;
}

int vh_mark_main(int argc, char **argv) {
  const char *cmd = argv[0];
  int unmark = strcmp(cmd, "unmark") == 0;
  const char *data = NULL, *name = NULL;
  int rc = vh_offline_args(argc, argv, vh_mark_usage, &data, &name);
  if (rc != 0) return rc == 1 ? 0 : rc;
  if (name == NULL) return vh_cli_bad(cmd, "NAME is missing");
  if (!vh_mark_name_ok(name)) {
    fprintf(stderr,
            "vedhost: %s: bad mark name '%.64s': use 1-64 letters, digits, "
            "'_', '.' or '-', starting with a letter or '_'\n",
            cmd, name);
    return 1;
  }
  rc = vh_mark__online(cmd, data, name);
  if (rc >= 0) return rc;
  return vh_mark__offline(cmd, data, name, unmark);
}
