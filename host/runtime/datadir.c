/*
 * datadir.c - create and lock the data directory.
 *
 * Layout so far (the store adds its files later):
 *
 *   DIR/        mode 0700, created on first run (its parent must exist)
 *   DIR/LOCK    mode 0600; holds the pid of the running host as decimal
 *               text and a newline. The lock is the flock(2) on it, not
 *               the file's existence: a killed host leaves the file, and
 *               the kernel drops its lock, so the next start just works.
 *
 * Why flock and not a pid file alone: a stale pid can be reused by an
 * unrelated process; the lock dies with its holder. The pid is only there
 * to make the "in use" message useful. A second host reads it right after
 * failing to lock; the first writes it right after locking, so a tiny race
 * can show "pid unknown", never a wrong lock decision.
 *
 * A HOLDER THAT IS DYING. kill -9 ends a process's main thread at once,
 * but the process (and its lock) lives on until every thread has left
 * the kernel: a store thread inside an fsync of a table file finishes it
 * first, for up to seconds under heavy writeback. Meanwhile its main
 * thread is a zombie (state Z in /proc/PID/stat) and a supervisor, or a
 * user, restarting at once found the data dir "in use" (bench/run's
 * restart after kill -9 under load at 1M keys did, once in three runs).
 * So when the lock is held by the pid written in LOCK and that pid's main
 * thread is a zombie, open waits for the lock, polling every 10 ms, up
 * to VH_DATADIR_DYING_WAIT_MS; a live holder fails at once, as before.
 * Waiting never takes a lock from anyone: the flock decides.
 */
#include "vh_datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Create the data dir itself (mode 0700) if it is missing, as mkdir(1)
 * would: its parent must exist. Creating a whole missing chain would
 * turn a typo in --data (a wrong mount point, a missing volume) into a
 * fresh, empty store somewhere unexpected. */
static int vh_datadir_mkdir(const char *path, char *err, size_t cap) {
  if (mkdir(path, 0700) != 0 && errno != EEXIST) {
    int e = errno;
    char *parent = strdup(path);
    if (e == ENOENT && parent) {
      size_t len = strlen(parent);
      while (len > 1 && parent[len - 1] == '/') parent[--len] = '\0';
      char *slash = strrchr(parent, '/');
      if (slash == parent)
        slash[1] = '\0';
      else if (slash)
        *slash = '\0';
      else
        snprintf(parent, len + 1, ".");
      snprintf(err, cap,
               "cannot create data dir %s: its parent %s does not exist; "
               "create it first (vedhost creates only the last component)",
               path, parent);
    } else {
      snprintf(err, cap, "cannot create data dir %s: %s", path, strerror(e));
    }
    free(parent);
    return VH_DATADIR_EIO;
  }
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    snprintf(err, cap, "data dir %s is not a directory", path);
    return VH_DATADIR_EIO;
  }
  return 0;
}

/* Bound of the wait for a dying holder (A HOLDER THAT IS DYING). */
#define VH_DATADIR_DYING_WAIT_MS 10000

/* 1 if pid's main thread has exited while the process lives on (state Z
 * or X in /proc/PID/stat: the other threads are still finishing). */
static int vh_datadir_dying(long pid) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the name may hold spaces, ')' */
  return p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* The pid written in an existing LOCK file, or 0. */
static long vh_datadir_read_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

int vh_datadir_open(vh_datadir_t *dd, const char *path, char *err, size_t cap) {
  dd->path = NULL;
  dd->lock_fd = -1;
  int rc = vh_datadir_mkdir(path, err, cap);
  if (rc != 0) return rc;
  size_t n = strlen(path) + sizeof "/LOCK";
  char *lock = malloc(n);
  if (!lock) {
    snprintf(err, cap, "out of memory");
    return VH_DATADIR_EIO;
  }
  snprintf(lock, n, "%s/LOCK", path);
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err, cap, "cannot open %s: %s", lock, strerror(errno));
    free(lock);
    return VH_DATADIR_EIO;
  }
  free(lock);
  int locked = flock(fd, LOCK_EX | LOCK_NB) == 0, e = locked ? 0 : errno;
  for (int waited = 0;
       !locked && e == EWOULDBLOCK && waited < VH_DATADIR_DYING_WAIT_MS;
       waited += 10) {
    long holder = vh_datadir_read_pid(fd);
    if (holder <= 0 || !vh_datadir_dying(holder)) break;
    usleep(10 * 1000);
    locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
    e = locked ? 0 : errno;
  }
  if (!locked) {
    long pid = vh_datadir_read_pid(fd);
    close(fd);
    if (e == EWOULDBLOCK) {
      if (pid > 0)
        snprintf(err, cap,
                 "data dir %s is in use by another vedhost (pid %ld); "
                 "stop it first",
                 path, pid);
      else
        snprintf(err, cap,
                 "data dir %s is in use by another vedhost (pid unknown); "
                 "stop it first",
                 path);
      return VH_DATADIR_EBUSY;
    }
    snprintf(err, cap, "cannot lock %s/LOCK: %s", path, strerror(e));
    return VH_DATADIR_EIO;
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
    snprintf(err, cap, "cannot write %s/LOCK: %s", path, strerror(errno));
    close(fd);
    return VH_DATADIR_EIO;
  }
  dd->path = strdup(path);
  if (!dd->path) {
    close(fd);
    snprintf(err, cap, "out of memory");
    return VH_DATADIR_EIO;
  }
  dd->lock_fd = fd;
  return 0;
}

void vh_datadir_close(vh_datadir_t *dd) {
  if (dd->lock_fd >= 0) close(dd->lock_fd); /* drops the flock */
  dd->lock_fd = -1;
  free(dd->path);
  dd->path = NULL;
}
