/*
 * faultfs.c - an LD_PRELOAD shim that injects I/O errors into the files of
 * one directory, for spec/fault_slow_spec.lua (SQLite-style I/O-error
 * tests; RocksDB's C API has no Env wrapper to do it from inside).
 *
 * Environment:
 *   VH_FAULT_DIR  a path fragment ("data/db/"): files whose open() path
 *                 contains it are watched
 *   VH_FAULT_CTL  a control file, read at most every 20 ms. Absent or
 *                 empty: no faults. Otherwise one line "OPS ERRNO", OPS a
 *                 comma list of write, fsync, open; ERRNO ENOSPC, EIO or
 *                 EMFILE. While it says so, those calls on watched files
 *                 fail with that errno (open: only opens for writing, so
 *                 reads keep working). RocksDB's info LOG files are never
 *                 watched (see vh_ff_is_watched).
 *
 * Intercepted: open, open64, openat, openat64, close, write, pwrite,
 * pwrite64, writev, fsync, fdatasync (not sync_file_range: RocksDB probes
 * it once per file and asserts it either works or is ENOSYS). The shim's own
 * reads of the control file run with a thread-local guard so they are
 * never intercepted.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define VH_FF_MAXFD 65536
#define VH_FF_WRITE 1
#define VH_FF_FSYNC 2
#define VH_FF_OPEN 4

static unsigned char vh_ff_watched[VH_FF_MAXFD];
static _Atomic int vh_ff_ops, vh_ff_errno;
static _Atomic long long vh_ff_next_ns;
static __thread int vh_ff_guard;

static long long vh_ff_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define VH_FF_REAL(ret, name, args)                          \
  static ret(*real_##name) args;                             \
  static ret(*get_##name(void)) args {                       \
    if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); \
    return real_##name;                                      \
  }

VH_FF_REAL(int, open, (const char *, int, ...))
VH_FF_REAL(int, open64, (const char *, int, ...))
VH_FF_REAL(int, openat, (int, const char *, int, ...))
VH_FF_REAL(int, openat64, (int, const char *, int, ...))
VH_FF_REAL(int, close, (int))
VH_FF_REAL(ssize_t, write, (int, const void *, size_t))
VH_FF_REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
VH_FF_REAL(ssize_t, pwrite64, (int, const void *, size_t, off_t))
VH_FF_REAL(ssize_t, writev, (int, const struct iovec *, int))
VH_FF_REAL(int, fsync, (int))
VH_FF_REAL(int, fdatasync, (int))

/* Re-read the control file (at most every 20 ms). */
static void vh_ff_refresh(void) {
  long long now = vh_ff_now_ns();
  if (now < atomic_load(&vh_ff_next_ns)) return;
  atomic_store(&vh_ff_next_ns, now + 20000000LL);
  const char *ctl = getenv("VH_FAULT_CTL");
  int ops = 0, err = 0;
  if (ctl) {
    vh_ff_guard = 1;
    FILE *f = fopen(ctl, "r");
    char line[128] = "";
    if (f) {
      if (!fgets(line, sizeof line, f)) line[0] = '\0';
      fclose(f);
    }
    vh_ff_guard = 0;
    if (strstr(line, "write")) ops |= VH_FF_WRITE;
    if (strstr(line, "fsync")) ops |= VH_FF_FSYNC;
    if (strstr(line, "open")) ops |= VH_FF_OPEN;
    err = strstr(line, "ENOSPC")   ? ENOSPC
          : strstr(line, "EMFILE") ? EMFILE
                                   : EIO;
  }
  atomic_store(&vh_ff_errno, err);
  atomic_store(&vh_ff_ops, ops);
}

/* 1 (errno set) if a call of kind op on fd must fail now. */
static int vh_ff_fail_fd(int fd, int op) {
  if (vh_ff_guard || fd < 0 || fd >= VH_FF_MAXFD || !vh_ff_watched[fd])
    return 0;
  vh_ff_refresh();
  if (!(atomic_load(&vh_ff_ops) & op)) return 0;
  errno = atomic_load(&vh_ff_errno);
  return 1;
}

static int vh_ff_is_watched(const char *path) {
  const char *dir = getenv("VH_FAULT_DIR");
  if (vh_ff_guard || !dir || !*dir || !path || !strstr(path, dir)) return 0;
  /* Not RocksDB's info LOG: librocksdb 7.8 aborts on the first line it
   * logs after a failed LOG write, whatever the caller does (README,
   * "When the disk fills up"; vedhost checks free space before it opens
   * or reopens the store so that a full disk never gets there). */
  const char *base = strrchr(path, '/');
  return strncmp(base ? base + 1 : path, "LOG", 3) != 0;
}

/* Common part of the open family: fail, or record the new fd. */
static int vh_ff_opened(const char *path, int fd) {
  if (fd >= 0 && fd < VH_FF_MAXFD) vh_ff_watched[fd] = vh_ff_is_watched(path);
  return fd;
}

static int vh_ff_open_fails(const char *path, int flags) {
  if (!vh_ff_is_watched(path)) return 0;
  if (!(flags & (O_WRONLY | O_RDWR | O_CREAT))) return 0;
  vh_ff_refresh();
  if (!(atomic_load(&vh_ff_ops) & VH_FF_OPEN)) return 0;
  errno = atomic_load(&vh_ff_errno);
  return 1;
}

#define VH_FF_MODE(flags, mode)            \
  do {                                     \
    if ((flags) & (O_CREAT | O_TMPFILE)) { \
      va_list ap;                          \
      va_start(ap, flags);                 \
      mode = va_arg(ap, int);              \
      va_end(ap);                          \
    }                                      \
  } while (0)

int open(const char *path, int flags, ...) {
  int mode = 0;
  VH_FF_MODE(flags, mode);
  if (vh_ff_open_fails(path, flags)) return -1;
  return vh_ff_opened(path, get_open()(path, flags, mode));
}

int open64(const char *path, int flags, ...) {
  int mode = 0;
  VH_FF_MODE(flags, mode);
  if (vh_ff_open_fails(path, flags)) return -1;
  return vh_ff_opened(path, get_open64()(path, flags, mode));
}

int openat(int dirfd, const char *path, int flags, ...) {
  int mode = 0;
  VH_FF_MODE(flags, mode);
  if (vh_ff_open_fails(path, flags)) return -1;
  return vh_ff_opened(path, get_openat()(dirfd, path, flags, mode));
}

int openat64(int dirfd, const char *path, int flags, ...) {
  int mode = 0;
  VH_FF_MODE(flags, mode);
  if (vh_ff_open_fails(path, flags)) return -1;
  return vh_ff_opened(path, get_openat64()(dirfd, path, flags, mode));
}

int close(int fd) {
  if (fd >= 0 && fd < VH_FF_MAXFD) vh_ff_watched[fd] = 0;
  return get_close()(fd);
}

ssize_t write(int fd, const void *buf, size_t n) {
  if (vh_ff_fail_fd(fd, VH_FF_WRITE)) return -1;
  return get_write()(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  if (vh_ff_fail_fd(fd, VH_FF_WRITE)) return -1;
  return get_pwrite()(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  if (vh_ff_fail_fd(fd, VH_FF_WRITE)) return -1;
  return get_pwrite64()(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  if (vh_ff_fail_fd(fd, VH_FF_WRITE)) return -1;
  return get_writev()(fd, iov, cnt);
}

int fsync(int fd) {
  if (vh_ff_fail_fd(fd, VH_FF_FSYNC)) return -1;
  return get_fsync()(fd);
}

int fdatasync(int fd) {
  if (vh_ff_fail_fd(fd, VH_FF_FSYNC)) return -1;
  return get_fdatasync()(fd);
}
