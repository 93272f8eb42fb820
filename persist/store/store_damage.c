/*
 * store_damage.c - the store's checks before RocksDB opens DIR/db, and the
 * one place that words a damaged store (for `run`, the offline tools and
 * `vedhost recover` alike: they all open through vh_store_open).
 *
 * BEFORE OPENING (vh_store__precheck), reading only:
 *  1. RocksDB's files (a log or a table file) without CURRENT: damaged.
 *     RocksDB would create a new database over them (`run` creates).
 *  2. CURRENT names a MANIFEST that is missing or damaged (read with the
 *     log reader of persist/store/walscan.c): damaged. RocksDB would open the
 *     MANIFEST's intact prefix, an older version, and delete the table
 *     files only the lost part listed.
 *  3. The write-ahead log (persist/store/walscan.c): corrupt with intact
 * records after the damage (or a whole last record that fails its checksum):
 *     refused unless opts.accept_loss, naming the file, the offset and the
 *     slices that opening would drop. So nothing in DIR/db is written.
 * AFTER A FAILED OR SUSPICIOUS OPEN (vh_store__damage): the same checks, a
 * listed table file missing, table files the MANIFEST does not list, and
 * for a secondary (which opens past missing table files) a read-only
 * probe whose info LOG goes to the secondary's scratch dir, tried first.
 * AFTER A SECONDARY OPENED (vh_store__secondary_tables): every table file
 * it lists must exist (checked again after catching up with a live
 * primary, whose compactions delete files); fsck would otherwise pass a
 * store whose slices it still finds in the log while `run` refuses it.
 *
 * Every message says the store is damaged, what is missing, and what to
 * do; a damaged store is never called foreign or missing.
 */
#include "store_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vh_manifest.h"

/* What DIR/db holds, by RocksDB file kind. */
typedef struct db_files {
  int exists;                  /* DIR/db is a directory */
  int current;                 /* CURRENT is there */
  int manifests, tables, logs; /* MANIFEST-*, *.sst, *.log files */
} db_files_t;

static void list_db(const char *dbpath, db_files_t *df) {
  memset(df, 0, sizeof *df);
  DIR *d = opendir(dbpath);
  if (d == NULL) return;
  df->exists = 1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    size_t l = strlen(n);
    if (strcmp(n, "CURRENT") == 0) df->current = 1;
    if (strncmp(n, "MANIFEST-", 9) == 0) df->manifests++;
    if (l > 4 && strcmp(n + l - 4, ".sst") == 0) df->tables++;
    if (l > 4 && strcmp(n + l - 4, ".log") == 0) df->logs++;
  }
  closedir(d);
}

/* 1 if DIR/db/name exists. */
static int db_has(const vh_store_t *s, const char *name) {
  char *p = vh_store__msg("%s/%s", s->dbpath, name);
  struct stat st;
  int has = p != NULL && stat(p, &st) == 0;
  free(p);
  return has;
}

/* The MANIFEST file CURRENT names ([new] "MANIFEST-000005"), or NULL. */
static char *current_manifest(const vh_store_t *s) {
  char *p = vh_store__msg("%s/CURRENT", s->dbpath);
  FILE *f = p ? fopen(p, "rb") : NULL;
  free(p);
  if (f == NULL) return NULL;
  char buf[128];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  if (strncmp(buf, "MANIFEST-", 9) != 0 || strchr(buf, '/') != NULL)
    return NULL;
  return strdup(buf);
}

/* What is damaged in RocksDB's own files, as a [new] phrase, or NULL if
 * nothing is seen. Reads only. tails: count an incomplete last MANIFEST
 * record as damage (not beside a live primary, which may be writing it). */
static char *damage_files(vh_store_t *s, int tails) {
  db_files_t df;
  list_db(s->dbpath, &df);
  if (!df.current) {
    /* Every write goes through a log or a table file first: without one
     * there is no data (a first open that died before CURRENT). */
    if (df.tables + df.logs == 0) return NULL;
    return vh_store__msg(
        "db/CURRENT is missing (db/ still holds %d MANIFEST, "
        "%d table and %d log file(s))",
        df.manifests, df.tables, df.logs);
  }
  char *man = current_manifest(s);
  if (man == NULL)
    return vh_store__msg("db/CURRENT does not name a MANIFEST file");
  char *path = vh_store__msg("%s/%s", s->dbpath, man);
  uint64_t off = 0;
  const char *why = NULL;
  int rc = path ? vh_walscan_file_damage(path, &off, &why) : VH_ENOMEM;
  char *what = NULL;
  struct stat st;
  if (rc == VH_ENOENT)
    what = vh_store__msg("db/CURRENT names %s, which is missing", man);
  else if (rc == 1 && (tails || strcmp(why, "incomplete record") != 0))
    what =
        vh_store__msg("db/%s is damaged at offset %llu of %lld bytes (%s)", man,
                      (unsigned long long)off,
                      stat(path, &st) == 0 ? (long long)st.st_size : -1LL, why);
  free(path);
  free(man);
  return what;
}

/* A table file of lf that is not in db/, as a [new] phrase, or NULL. */
static char *missing_listed(vh_store_t *s, const rocksdb_livefiles_t *lf) {
  int n = rocksdb_livefiles_count(lf);
  for (int i = 0; i < n; i++) {
    const char *name = rocksdb_livefiles_name(lf, i);
    if (name == NULL) continue;
    if (*name == '/') name++;
    if (!db_has(s, name))
      return vh_store__msg(
          "db/%s is missing (a table file the MANIFEST "
          "lists)",
          name);
  }
  return NULL;
}

static char *damage_probe(vh_store_t *s);

/* 1 if a process (a running host) holds RocksDB's lock on db/LOCK. A
 * primary is that host itself: it must not even open db/LOCK, since
 * closing any descriptor of a file drops every fcntl lock the process
 * holds on it, RocksDB's included (a primary made on a fresh dir asks
 * here, through vh_store__damage, before its format record exists). */
static int primary_live(vh_store_t *s) {
  if (!s->secondary) return 0;
  char *path = vh_store__msg("%s/LOCK", s->dbpath);
  int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  free(path);
  if (fd < 0) return 0;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  int live = fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type != F_UNLCK;
  close(fd);
  return live;
}

int vh_store_primary_live(vh_store_t *s) {
  return primary_live(s);
}

char *vh_store__secondary_tables(vh_store_t *s) {
  /* A secondary stops at the last version whose table files all exist:
   * with the newest one deleted it shows an older state as if intact.
   * Without a live primary the read-only probe opens every file. */
  if (!primary_live(s)) {
    char *what = damage_probe(s);
    if (what != NULL) return what;
  }
  char *what = NULL;
  for (int tries = 0; tries < 2; tries++) {
    if (tries > 0) { /* a live primary may have compacted it away */
      char *rerr = NULL;
      rocksdb_try_catch_up_with_primary(s->db, &rerr);
      rocksdb_free(rerr);
    }
    const rocksdb_livefiles_t *lf = rocksdb_livefiles(s->db);
    if (lf == NULL) return NULL;
    free(what);
    what = missing_listed(s, lf);
    rocksdb_livefiles_destroy(lf);
    if (what == NULL) return NULL;
  }
  return what;
}

/* With the database open: a table file the MANIFEST lists that is missing,
 * or table files on disk it does not list (it lost track of them). A live
 * primary writes a table file before its MANIFEST names it (a flush or a
 * compaction in progress), so unlisted files count only when no host holds
 * the store. */
static char *damage_tables(vh_store_t *s) {
  const rocksdb_livefiles_t *lf = rocksdb_livefiles(s->db);
  if (lf == NULL) return NULL;
  char *what = missing_listed(s, lf);
  int n = rocksdb_livefiles_count(lf), unlisted = 0;
  DIR *d = what == NULL && !primary_live(s) ? opendir(s->dbpath) : NULL;
  struct dirent *e = NULL;
  char first[sizeof e->d_name] = "";
  while (d != NULL && (e = readdir(d)) != NULL) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 4, ".sst") != 0) continue;
    int listed = 0;
    for (int i = 0; i < n && !listed; i++) {
      const char *name = rocksdb_livefiles_name(lf, i);
      listed = name != NULL &&
               strcmp(*name == '/' ? name + 1 : name, e->d_name) == 0;
    }
    if (!listed && unlisted++ == 0)
      snprintf(first, sizeof first, "%s", e->d_name);
  }
  if (d != NULL) closedir(d);
  if (what == NULL && unlisted > 0)
    what = vh_store__msg(
        "the MANIFEST does not list %d table file(s) in db/ "
        "(%s%s): it lost track of them",
        unlisted, first, unlisted > 1 ? ", ..." : "");
  rocksdb_livefiles_destroy(lf);
  return what;
}

/* A phrase for a RocksDB error rerr [borrowed] that names a missing table
 * file ("... s1/db/000009.ldb: No such file ..."; RocksDB tries the old
 * .ldb name last), or NULL. */
char *vh_store__missing_table(const char *rerr) {
  if (strstr(rerr, "No such file") == NULL) return NULL;
  for (const char *p = strchr(rerr, '/'); p != NULL; p = strchr(p + 1, '/')) {
    size_t d = strspn(p + 1, "0123456789");
    const char *ext = p + 1 + d;
    if (d > 0 && (strncmp(ext, ".sst", 4) == 0 || strncmp(ext, ".ldb", 4) == 0))
      return vh_store__msg(
          "db/%.*s.sst is missing (a table file the MANIFEST "
          "lists)",
          (int)d, p + 1);
  }
  return vh_store__msg("a file RocksDB needs is missing (%s)", rerr);
}

/* A secondary opens past missing table files (it expects a live primary to
 * delete some); a read-only open does not. Its info LOG goes to the
 * secondary's scratch dir, so nothing in DIR/db is written. */
static char *damage_probe(vh_store_t *s) {
  if (s->scratch == NULL) return NULL;
  rocksdb_options_t *o = rocksdb_options_create();
  rocksdb_options_set_max_open_files(o, -1); /* open every table file */
  rocksdb_options_set_paranoid_checks(o, 1);
  rocksdb_options_set_info_log_level(o, 4 /* FATAL */);
  rocksdb_options_set_db_log_dir(o, s->scratch);
  char *rerr = NULL, *what = NULL;
  rocksdb_column_family_handle_t *h[2];
  int apart = 0;
  rocksdb_t *db = vh_store__open_families(o, s->dbpath, VH_OPEN_READ_ONLY, NULL,
                                          h, &apart, &rerr);
  vh_store__close_families(db, h, apart);
  rocksdb_options_destroy(o);
  if (rerr != NULL) {
    what = vh_store__missing_table(rerr);
    if (what == NULL && strncmp(rerr, "Corruption", 10) == 0)
      what = vh_store__msg("RocksDB reports %s", rerr);
    rocksdb_free(rerr);
  }
  return what;
}

/* Everything damage_* can see, as a [new] phrase or NULL. */
char *vh_store__damage(vh_store_t *s) {
  char *what = damage_files(s, 1);
  /* a secondary's view of the tables is unreliable past a missing one:
   * the read-only probe names it */
  if (what == NULL && s->db != NULL && s->secondary) what = damage_probe(s);
  if (what == NULL && s->db != NULL) what = damage_tables(s);
  return what;
}

/* The one message for a damaged store; what [stolen]. */
int vh_store__damaged(vh_store_t *s, char *what, char **errmsg) {
  vh_store__set_msg(
      errmsg,
      vh_store__msg("%s: the store is damaged: %s; restore the data dir "
                    "from a backup (vedhost export/import) or move it "
                    "away",
                    s->dir, what ? what : "?"));
  free(what);
  return VH_ECORRUPT;
}

/* The refusal of a WAL with intact records after a damaged one. */
static int wal_corrupt(vh_store_t *s, char **errmsg) {
  const vh_walscan_t *w = &s->wal;
  char follow[120];
  uint64_t lo = w->last_slice ? w->last_slice + 1 : w->after_min_slice;
  if (w->after_records == 0)
    snprintf(follow, sizeof follow,
             "; it is the last record but whole, so no crash cut it short: "
             "it may hold acknowledged slices after slice %llu",
             (unsigned long long)w->last_slice);
  else if (w->after_max_slice)
    snprintf(follow, sizeof follow,
             " and %llu intact record(s) follow it, slices %llu..%llu",
             (unsigned long long)w->after_records, (unsigned long long)lo,
             (unsigned long long)w->after_max_slice);
  else
    snprintf(follow, sizeof follow, " and %llu intact record(s) follow it",
             (unsigned long long)w->after_records);
  vh_store__set_msg(
      errmsg,
      vh_store__msg(
          "%s/%s: the write-ahead log is corrupt at offset %llu (%s)%s; "
          "opening would drop them silently, so nothing was changed; "
          "run `vedhost recover --data %s` to accept the loss, or "
          "restore a backup",
          s->dbpath, w->file, (unsigned long long)w->offset, w->why, follow,
          s->dir));
  return VH_ECORRUPT;
}

/* The slice of the store's manifest (0 if none or unreadable). */
static uint64_t stored_slice(vh_store_t *s) {
  void *b = NULL;
  size_t n = 0;
  vh_manifest_t m;
  uint64_t seq = 0;
  if (vh_store_get_manifest(s, &b, &n, NULL) == 0 &&
      vh_manifest_decode(b, n, &m, NULL) == 0) {
    seq = m.seq;
    vh_manifest_free(&m);
  }
  free(b);
  return seq;
}

/* After opening past a torn tail: the line the host logs. */
void vh_store__torn_note(vh_store_t *s) {
  const vh_walscan_t *w = &s->wal;
  uint64_t at = stored_slice(s);
  s->open_note = vh_store__msg(
      "%s/%s: the last record (offset %llu, %llu bytes to the end) was cut "
      "short by a crash and is dropped: it held the writes after slice "
      "%llu, never completed, so never acknowledged in sync mode; the store "
      "is at slice %llu",
      s->dbpath, w->file, (unsigned long long)w->offset,
      (unsigned long long)(w->file_size - w->offset), (unsigned long long)at,
      (unsigned long long)at);
}

const char *vh_store_open_note(vh_store_t *s) {
  return s->open_note;
}

/* ---- before opening ---- */

int vh_store__precheck(vh_store_t *s, const vh_store_opts_t *o, char **errmsg) {
  db_files_t df;
  list_db(s->dbpath, &df);
  /* RocksDB's files without CURRENT: a damaged store, never a new one
   * (RocksDB would create a database over it). */
  if (!df.current && df.tables + df.logs > 0)
    return vh_store__damaged(s, damage_files(s, 1), errmsg);
  if (!df.current && (!o->create || s->secondary)) {
    /* Without create, refuse a missing store before RocksDB gets to make
     * an empty DIR/db as a side effect (and word the error for users). */
    struct stat st;
    if (!df.exists && stat(s->dbpath, &st) == 0 && !S_ISDIR(st.st_mode)) {
      vh_store__set_msg(errmsg,
                        vh_store__msg("%s: no vedhost store here (%s is not a "
                                      "directory); check --data, or move that "
                                      "file away",
                                      s->dir, s->dbpath));
      return VH_ENOENT;
    }
    vh_store__set_msg(
        errmsg,
        vh_store__msg("%s: no vedhost store here (%s %s); check --data, "
                      "or let `vedhost run` create one",
                      s->dir, s->dbpath,
                      df.exists ? "holds no database" : "does not exist"));
    return VH_ENOENT;
  }
  if (df.current) {
    /* A damaged MANIFEST: RocksDB would open an older version and delete
     * the table files it no longer lists. (A secondary may see the last
     * record of a live primary half written: only other damage counts.) */
    char *what = damage_files(s, !s->secondary);
    if (what != NULL) return vh_store__damaged(s, what, errmsg);
  }
  /* The write-ahead log (persist/store/walscan.c). */
  char *m = NULL;
  int rc = vh_walscan_dir(s->dbpath, &s->wal, &m);
  if (rc != 0) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("%s: cannot read the write-ahead log: %s",
                                    s->dbpath, m ? m : vh_err_name(rc)));
    free(m);
    return rc;
  }
  if (s->wal.state == VH_WALSCAN_CORRUPT && !o->accept_loss)
    return wal_corrupt(s, errmsg);
  return 0;
}
