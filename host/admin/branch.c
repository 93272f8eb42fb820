/*
 * branch.c - `vedhost branch [--data DIR] --at V NEWDIR`: a new data dir
 * whose current state is version V of DIR, for staging, tests and what-if
 * runs. DIR is never written.
 *
 * HOW. DIR/db is opened as a RocksDB secondary (host/admin/offline.c: no lock,
 * nothing written to DIR, works the same beside a running host), V is
 * resolved there (vh_version_resolve) and read (vh_store_version_get);
 * then a RocksDB checkpoint of that secondary goes to NEWDIR/db: its table
 * files are hard links (same file system; a copy otherwise, which RocksDB
 * does by itself), the live write-ahead log is copied (a few MB at most);
 * the copy is made again if the host flushed meanwhile, which would have
 * retired a log the copy needed (persist/store/rewind.c).
 * So a branch costs about the same for a 10 MB and a 10 GB store. Then
 * NEWDIR is locked and opened as a primary and trimmed to V in one atomic
 * write (vh_store_branch_trim, persist/store/rewind.c): the manifest becomes
 * V's, every node born after V is deleted (one range delete: ids at or
 * above V's next id), and the history after V goes (version records,
 * death lists and marks after V; pins of entries that died after V, whose
 * nodes V's tree holds, so they are live in the branch).
 *
 * HISTORY. The branch keeps the history DIR retained up to V: `vedhost
 * log --data NEWDIR` lists V and the versions before it that were
 * retained, and rollback/diff work on them; its next slice is V + 1
 * (seqs of the two dirs then mean different things).
 *
 * REFUSED (one line, nothing created): NEWDIR exists and is not empty,
 * NEWDIR's parent is missing, DIR has no store, V is not retained. If a
 * step fails after the checkpoint, NEWDIR/db (and NEWDIR when branch made
 * it) is removed again.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vh_cli_args.h"
#include "vh_datadir.h"
#include "vh_offline.h"
#include "vh_rewind.h"
#include "vh_branch.h"
#include "vh_version_spec.h"
#include "vh_versions.h"

static const char vh_branch_usage[] =
    "usage: vedhost branch [--data DIR] --at V NEWDIR\n"
    "  make NEWDIR (missing or empty) a data dir whose current state is\n"
    "  version V of DIR (a seq, -N, a time, an age or a mark), keeping the\n"
    "  history retained up to V. A RocksDB checkpoint (hard links): seconds\n"
    "  for a large store. Safe while a host runs on DIR; DIR is unchanged.\n"
    "  --data DIR   data directory (default " VH_DEFAULT_DATA_DIR
    ")\n"
    "  --at V       the version\n";

typedef struct vh_branch_args {
  const char *data, *at, *dir;
} vh_branch_args_t;

static const vh_cli_opt_t vh_branch_opts[] = {{"--data", 1, 0}, {"--at", 1, 0}};

static int vh_branch_arg(void *arg, int opt, const char *val) {
  vh_branch_args_t *a = arg;
  if (opt == 0) a->data = val;
  if (opt == 1) a->at = val;
  if (opt == -1) a->dir = val;
  return 0;
}

/* 1 if dir holds nothing (or only "." and ".."), 0 if it holds something,
 * -1 if it cannot be read. */
static int vh_branch_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  struct dirent *e;
  int empty = 1;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = 0;
  closedir(d);
  return empty;
}

/* The wall clock, unix ms (for version ages). */
static int64_t vh_branch_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double vh_branch_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int vh_branch_main(int argc, char **argv) {
  static const vh_cli_cmd_t cmd = {"branch", vh_branch_opts, 2, 1,
                                   vh_branch_usage};
  vh_branch_args_t a = {VH_DEFAULT_DATA_DIR, NULL, NULL};
  int rc = vh_cli_parse(&cmd, argc, argv, vh_branch_arg, &a);
  if (rc != 0) return rc == 1 ? 0 : 2;
  if (a.at == NULL) return vh_cli_bad("branch", "--at V is needed");
  if (a.dir == NULL) return vh_cli_bad("branch", "NEWDIR is needed");
  double t0 = vh_branch_now();
  struct stat sb;
  int made = 0;
  if (stat(a.dir, &sb) == 0) {
    if (!S_ISDIR(sb.st_mode) || vh_branch_empty(a.dir) != 1) {
      fprintf(stderr,
              "vedhost: branch: %s is not an empty directory; nothing was "
              "changed (branch into a new or empty dir)\n",
              a.dir);
      return 1;
    }
  } else if (errno != ENOENT) {
    fprintf(stderr, "vedhost: branch: cannot use %s: %s; nothing was changed\n",
            a.dir, strerror(errno));
    return 1;
  }
  char err[1024];
  vh_offline_t o;
  if (vh_offline_open(&o, a.data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: branch: %s; nothing was changed\n", err);
    return 1;
  }
  uint64_t seq = 0;
  char *m = NULL;
  vh_version_t ver;
  memset(&ver, 0, sizeof ver);
  rc = vh_version_resolve(o.store, a.at, vh_branch_wall_ms(), &seq, &m);
  if (rc == 0) rc = vh_store_version_get(o.store, seq, &ver, &m);
  if (rc != 0) {
    fprintf(stderr, "vedhost: branch: %s; nothing was changed\n",
            m ? m : vh_err_name(rc));
    free(m);
    vh_offline_close(&o);
    return 1;
  }
  if (stat(a.dir, &sb) != 0) {
    if (mkdir(a.dir, 0700) != 0) {
      fprintf(stderr,
              "vedhost: branch: cannot create %s: %s; nothing was changed\n",
              a.dir, strerror(errno));
      vh_version_free(&ver);
      vh_offline_close(&o);
      return 1;
    }
    made = 1;
  }
  size_t n = strlen(a.dir) + sizeof "/LOCK";
  char *db = malloc(n);
  if (db == NULL) {
    vh_offline_close(&o);
    vh_version_free(&ver);
    return 1;
  }
  snprintf(db, n, "%s/db", a.dir);
  rc = vh_store_checkpoint(o.store, db, &m);
  vh_offline_close(&o);
  double t1 = vh_branch_now();
  vh_datadir_t dd = {NULL, -1};
  vh_store_t *s = NULL;
  if (rc != 0) {
    fprintf(stderr, "vedhost: branch: checkpoint of %s into %s failed: %s\n",
            a.data, db, m ? m : vh_err_name(rc));
    goto fail;
  }
  if (vh_datadir_open(&dd, a.dir, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: branch: %s\n", err);
    rc = VH_EIO;
    goto fail;
  }
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  so.sync = 1;
  rc = vh_store_open(a.dir, &so, &s, &m);
  if (rc == 0) rc = vh_store_branch_trim(s, &ver, &m);
  if (rc == 0) {
    rc = vh_store_close(s, &m);
    s = NULL;
  }
  if (rc != 0) {
    fprintf(stderr,
            "vedhost: branch: cannot set %s to version %" PRIu64 ": %s\n",
            a.dir, seq, m ? m : vh_err_name(rc));
    goto fail;
  }
  vh_datadir_close(&dd);
  printf("branched version %" PRIu64
         " of %s into %s (checkpoint %.2f s, "
         "total %.2f s); its next slice is %" PRIu64 "\n",
         seq, a.data, a.dir, t1 - t0, vh_branch_now() - t0, seq + 1);
  vh_version_free(&ver);
  free(db);
  free(m);
  return 0;
fail:
  free(m);
  if (s != NULL) vh_store_close(s, NULL);
  if (dd.path != NULL) vh_datadir_close(&dd);
  vh_offline_rm_tree(db);
  if (made) {
    vh_offline_rm_tree(a.dir);
  } else { /* it was empty: leave it empty */
    snprintf(db, n, "%s/LOCK", a.dir);
    unlink(db);
  }
  free(db);
  vh_version_free(&ver);
  return 1;
}
