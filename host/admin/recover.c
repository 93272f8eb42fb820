/*
 * recover.c - `vedhost recover [--data DIR]` (vh_recover.h).
 *
 * WHY. A write-ahead log with a corrupt record that intact records follow
 * (persist/store/walscan.c) is refused by `run` and the offline tools: opening
 * it with RocksDB's point-in-time recovery would drop acknowledged slices
 * without a word. recover is the explicit way to accept that loss: it does
 * the point-in-time open and says exactly what was dropped.
 *
 * HOW.
 *  1. Refuse a missing dir, and take DIR/LOCK like `run` (a host running on
 *     DIR makes recover fail at once with the same message run gives).
 *  2. Scan the WAL (vh_walscan_dir): where the damage is and which slices
 *     the intact records after it held.
 *  3. Open the store with opts.accept_loss: RocksDB replays up to the
 *     damage, flushes what it recovered into a table file and deletes the
 *     old logs, so the damaged one is gone. Read the manifest: the slice
 *     the store is at now.
 *  4. Close (flush), scan again (must be clean), and print one line:
 *       recovered to slice R; slices R+1..M (N) in db/F after offset O
 *       were dropped
 *     A torn tail alone, or an intact log, is reported too (exit 0): run
 *     would have handled it the same way.
 * Other damage (RocksDB's own files: CURRENT, MANIFEST, table files) is
 * not repaired here: the store's one-line diagnosis is printed (exit 1).
 */
#include "vh_recover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vh_datadir.h"
#include "vh_manifest.h"
#include "vh_offline.h"
#include "vh_store.h"
#include "vh_walscan.h"

static const char vh_recover_usage[] =
    "usage: vedhost recover [--data DIR]\n"
    "  Open a data dir (default " VH_DEFAULT_DATA_DIR
    ") whose write-ahead log has a\n"
    "  corrupt record, keeping every slice before it and dropping the ones\n"
    "  after it, and print which slices were dropped. `run`, `fsck`,\n"
    "  `inspect` and `export` refuse such a dir until this is done. The\n"
    "  host must be stopped.\n";

/* The slice the store is at (0: no manifest); <0 on error with *msg. */
static int vh_recover__slice(vh_store_t *s, uint64_t *seq, char **msg) {
  *seq = 0;
  vh_manifest_t m;
  int rc = vh_offline_read_manifest(s, &m, msg);
  if (rc == VH_ENOENT) return 0;
  if (rc != 0) return rc;
  *seq = m.seq;
  vh_manifest_free(&m);
  return 0;
}

/* Prints the report of what the open dropped (w: the scan before it). */
static void vh_recover__report(const vh_walscan_t *w, uint64_t at) {
  unsigned long long r = at;
  switch (w->state) {
    case VH_WALSCAN_CLEAN:
      printf(
          "nothing to recover: the write-ahead log is intact; the store "
          "is at slice %llu\n",
          r);
      break;
    case VH_WALSCAN_TORN:
      printf(
          "recovered to slice %llu; the last record of db/%s (offset "
          "%llu) was cut short by a crash and was dropped (never "
          "acknowledged in sync mode)\n",
          r, w->file, (unsigned long long)w->offset);
      break;
    default:
      if (w->after_max_slice > at)
        printf(
            "recovered to slice %llu; slices %llu..%llu (%llu) in db/%s "
            "after offset %llu were dropped\n",
            r, r + 1, (unsigned long long)w->after_max_slice,
            (unsigned long long)(w->after_max_slice - at), w->file,
            (unsigned long long)w->offset);
      else if (w->after_records == 0)
        printf(
            "recovered to slice %llu; the corrupt last record of db/%s "
            "(offset %llu, whatever it held after that slice) was "
            "dropped\n",
            r, w->file, (unsigned long long)w->offset);
      else if (w->after_max_slice == 0)
        printf(
            "recovered to slice %llu; %llu record(s) in db/%s after "
            "offset %llu were dropped (their slices could not be read)\n",
            r, (unsigned long long)w->after_records, w->file,
            (unsigned long long)w->offset);
      else
        printf(
            "recovered to slice %llu; the records in db/%s after offset "
            "%llu held no later slice: nothing was dropped\n",
            r, w->file, (unsigned long long)w->offset);
  }
}

int vh_recover_main(int argc, char **argv) {
  const char *data;
  int rc = vh_offline_args(argc, argv, vh_recover_usage, &data, NULL);
  if (rc != 0) return rc == 1 ? 0 : rc;
  struct stat sb;
  if (stat(data, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "vedhost: recover: no data dir %s (%s); check --data\n",
            data, stat(data, &sb) != 0 ? strerror(errno) : "not a directory");
    return 1;
  }
  char err[1024];
  vh_datadir_t dd;
  int had_lock = vh_offline_had_lock(data);
  if (vh_datadir_open(&dd, data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: recover: %s\n", err);
    return 1;
  }
  char *db = malloc(strlen(data) + 4), *msg = NULL;
  vh_walscan_t w;
  if (db == NULL) {
    vh_offline_unlock(&dd, had_lock, 1);
    return 1;
  }
  sprintf(db, "%s/db", data);
  rc = vh_walscan_dir(db, &w, &msg);
  vh_store_t *s = NULL;
  uint64_t at = 0;
  if (rc == 0) {
    vh_store_opts_t so;
    vh_store_opts_init(&so);
    so.accept_loss = 1;
    rc = vh_store_open(data, &so, &s, &msg);
  }
  if (rc == 0) rc = vh_recover__slice(s, &at, &msg);
  if (s != NULL) {
    char *cm = NULL;
    int crc = vh_store_close(s, &cm);
    if (rc == 0 && crc != 0) {
      rc = crc;
      free(msg);
      msg = cm;
    } else {
      free(cm);
    }
  }
  vh_walscan_t after;
  if (rc == 0) rc = vh_walscan_dir(db, &after, &msg);
  if (rc == 0 && after.state == VH_WALSCAN_CORRUPT) {
    msg = strdup("the write-ahead log is still corrupt after recovery");
    rc = VH_ECORRUPT;
  }
  if (rc != 0)
    fprintf(stderr, "vedhost: recover: %s\n", msg ? msg : vh_err_name(rc));
  else
    vh_recover__report(&w, at);
  free(msg);
  free(db);
  vh_offline_unlock(&dd, had_lock, rc != 0);
  return rc == 0 ? 0 : 1;
}
