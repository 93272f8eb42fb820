/*
 * host_util.h - what the host tests share: one temp dir per test
 * (tmpdir, with the host's data dir datadir = tmpdir/data inside it) and
 * scripts written into it. Include once, after vh_test.h.
 */
#ifndef HOST_UTIL_H
#define HOST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

static char tmpdir[256];
static char datadir[300];

/* A fresh tmpdir; datadir inside it (not created: the host makes it). */
static inline void mk_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vh_host_test_XXXXXX");
  ASSERT(mkdtemp(tmpdir) != NULL);
  snprintf(datadir, sizeof datadir, "%s/data", tmpdir);
}

static inline void rm_tmpdir(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ASSERT_EQ(system(cmd), 0);
}

/* Write src to tmpdir/name; returns the path (a static buffer, valid
 * until the next call). */
static inline const char *write_file(const char *name, const char *src) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  ASSERT(f != NULL);
  fputs(src, f);
  fclose(f);
  return path;
}

#endif /* HOST_UTIL_H */
