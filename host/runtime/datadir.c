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
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
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
