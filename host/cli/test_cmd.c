/*
 * test_cmd.c - `vedhost test [BUSTED_ARGS...]`: run busted specs that use
 * ved.testing (README "Testing your domains").
 *
 * It finds the harness next to the executable (BIN/../lib: the Lua module
 * lib/lua/ved/testing.lua and its C half lib/ved/testing_core.so, as the
 * build tree lays them out), prepends those to LUA_PATH and LUA_CPATH
 * (keeping what the user set, or Lua's defaults), and execs busted under
 * lua5.4 (busted's own `#!/usr/bin/env lua` may name another Lua).
 * VEDHOST_BUSTED and VEDHOST_LUA override where busted and lua5.4 are.
 * Every argument goes to busted unchanged; its exit code is ours.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vh_test_cmd.h"

/* The first executable called name on PATH, into out; 0 or -1. */
static int vh_test_which(const char *name, char *out, size_t cap) {
  if (strchr(name, '/')) {
    snprintf(out, cap, "%s", name);
    return access(out, X_OK) == 0 ? 0 : -1;
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    const char *end = strchr(path, ':');
    size_t n = end ? (size_t)(end - path) : strlen(path);
    snprintf(out, cap, "%.*s/%s", (int)n, n ? path : ".", name);
    struct stat sb;
    if (stat(out, &sb) == 0 && S_ISREG(sb.st_mode) && access(out, X_OK) == 0)
      return 0;
    if (!end) break;
    path = end + 1;
  }
  return -1;
}

static int vh_test_setenv(const char *var, const char *first) {
  const char *old = getenv(var);
  size_t n = strlen(first) + (old ? strlen(old) : 0) + 4;
  char *v = malloc(n);
  if (!v) return -1;
  snprintf(v, n, "%s;%s", first, old && *old ? old : ";");
  int rc = setenv(var, v, 1);
  free(v);
  return rc;
}

int vh_test_main(int argc, char **argv) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    fprintf(stderr, "vedhost: test: cannot find the vedhost executable: %s\n",
            strerror(errno));
    return 1;
  }
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash) *slash = '\0'; /* BIN */
  char lib[PATH_MAX + 16], probe[PATH_MAX + 64];
  snprintf(lib, sizeof lib, "%s/../lib", exe);
  snprintf(probe, sizeof probe, "%s/ved/testing_core.so", lib);
  if (access(probe, R_OK) != 0) {
    fprintf(stderr,
            "vedhost: test: the ved.testing harness is not built (%s is "
            "missing)\n",
            probe);
    return 1;
  }
  char lpath[2 * PATH_MAX + 64], cpath[PATH_MAX + 32];
  snprintf(lpath, sizeof lpath, "%s/lua/?.lua;%s/lua/?/init.lua", lib, lib);
  snprintf(cpath, sizeof cpath, "%s/?.so", lib);
  if (vh_test_setenv("LUA_PATH", lpath) != 0 ||
      vh_test_setenv("LUA_CPATH", cpath) != 0) {
    fprintf(stderr, "vedhost: test: out of memory\n");
    return 1;
  }
  const char *bname = getenv("VEDHOST_BUSTED");
  const char *lname = getenv("VEDHOST_LUA");
  char busted[PATH_MAX], lua[PATH_MAX];
  if (vh_test_which(bname ? bname : "busted", busted, sizeof busted) != 0) {
    fprintf(stderr,
            "vedhost: test: busted not found (install it: apt-get install "
            "lua-busted, or luarocks install busted; or set VEDHOST_BUSTED)\n");
    return 1;
  }
  if (vh_test_which(lname ? lname : "lua5.4", lua, sizeof lua) != 0) {
    fprintf(stderr,
            "vedhost: test: lua5.4 not found (apt-get install lua5.4, or set "
            "VEDHOST_LUA)\n");
    return 1;
  }
  char **args = calloc((size_t)argc + 3, sizeof *args);
  if (!args) {
    fprintf(stderr, "vedhost: test: out of memory\n");
    return 1;
  }
  args[0] = lua;
  args[1] = busted;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  fflush(NULL);
  execv(lua, args);
  fprintf(stderr, "vedhost: test: cannot run %s: %s\n", lua, strerror(errno));
  free(args);
  return 1;
}
