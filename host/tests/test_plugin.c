/*
 * test_plugin.c - unit tests of loading one plugin twice: the command
 * line refuses it before anything is opened
 * (vh_plugin_check_specs), and vh_plugin_load itself refuses a shared
 * object whose dlopen handle is already loaded (the same file through
 * another path or a symlink), so its init never runs twice on its static
 * state. The example plugin is build/plugins/hello.so, found from this
 * executable's own path (build/host/host_test_plugin).
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_plugin.h"
#include "vh_test.h"
#include "host_util.h"

static char hello[4096];

static void setup(void) {
  mk_tmpdir();
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT(n > 0);
  exe[n] = '\0';
  snprintf(hello, sizeof hello, "%s/../plugins/hello.so", dirname(exe));
  ASSERT_EQ(access(hello, R_OK), 0);
}

static void teardown(void) {
  rm_tmpdir();
}

TEST_IMPL(check_specs_refuses_the_same_file) {
  setup();
  char link[300], err[1024];
  snprintf(link, sizeof link, "%s/other.so", tmpdir);
  ASSERT_EQ(symlink(hello, link), 0);
  const char *same[] = {hello, hello};
  ASSERT_EQ(vh_plugin_check_specs(same, 2, err, sizeof err), VH_PLUGIN_ELOAD);
  ASSERT(strstr(err, "given twice") != NULL);
  char with_cfg[4200];
  snprintf(with_cfg, sizeof with_cfg, "%s=d/e", link);
  const char *linked[] = {hello, with_cfg};
  ASSERT_EQ(vh_plugin_check_specs(linked, 2, err, sizeof err), VH_PLUGIN_ELOAD);
  ASSERT(strstr(err, "same file") != NULL);
  ASSERT(strstr(err, "other.so") != NULL);
  ASSERT(strstr(err, "=d/e") == NULL); /* the path, not the config */
  const char *missing[] = {hello, "/nonexistent/x.so", "/nonexistent/x.so"};
  ASSERT_EQ(vh_plugin_check_specs(missing, 3, err, sizeof err), 0);
  ASSERT_EQ(vh_plugin_check_specs(same, 1, err, sizeof err), 0);
  teardown();
}

TEST_IMPL(load_refuses_a_loaded_handle) {
  setup();
  char link[300], err[1024];
  snprintf(link, sizeof link, "%s/other.so", tmpdir);
  ASSERT_EQ(symlink(hello, link), 0);
  vh_host_opts_t o;
  vh_host_opts_default(&o);
  o.data_dir = datadir;
  o.watch = 0;
  o.log_level = VH_LOG_WARN;
  vh_host_t *h = NULL;
  ASSERT_EQ(vh_host_new(&o, &h, err, sizeof err), 0);
  ASSERT_EQ(vh_plugin_load(h, hello, err, sizeof err), 0);
  err[0] = '\0';
  ASSERT_EQ(vh_plugin_load(h, hello, err, sizeof err), VH_PLUGIN_ELOAD);
  ASSERT(strstr(err, "already loaded") != NULL);
  err[0] = '\0';
  ASSERT_EQ(vh_plugin_load(h, link, err, sizeof err), VH_PLUGIN_ELOAD);
  ASSERT(strstr(err, "already loaded") != NULL);
  ASSERT(strstr(err, "other.so") != NULL);
  vh_host_free(h);
  teardown();
}

/* Host -> plugin errors go by code (vh_plugin_code), never by text; the
 * ABI's values are fixed (plugins are compiled against them). */
TEST_IMPL(plugin_code_maps_by_code) {
  ASSERT_EQ(VEDHOST_ENOMEM, -1);
  ASSERT_EQ(VEDHOST_EREFUSED, -10);
  ASSERT_EQ(vh_plugin_code(0), 0);
  ASSERT_EQ(vh_plugin_code(VH_ENOMEM), VEDHOST_ENOMEM);
  ASSERT_EQ(vh_plugin_code(VH_HOST_ENODOMAIN), VEDHOST_ENODOMAIN);
  ASSERT_EQ(vh_plugin_code(VH_HOST_ENOEVENT), VEDHOST_ENOEVENT);
  ASSERT_EQ(vh_plugin_code(VH_HOST_EREFUSED), VEDHOST_EREFUSED);
  ASSERT_EQ(vh_plugin_code(VH_HOST_ESTOPPED), VEDHOST_ESTOPPED);
  ASSERT_EQ(vh_plugin_code(VH_HOST_ESTATE), VEDHOST_ESTOPPED);
  ASSERT_EQ(vh_plugin_code(VH_JSON_EPARSE), VEDHOST_EJSON);
  ASSERT_EQ(vh_plugin_code(VH_JSON_EIO), VEDHOST_EIO);
  ASSERT_EQ(vh_plugin_code(VH_HOST_EROLLBACK), VEDHOST_EHANDLER);
  ASSERT_EQ(vh_plugin_code(VH_HOST_ENOTDURABLE), VEDHOST_EHANDLER);
}

VH_TEST_MAIN(TEST_ENTRY(check_specs_refuses_the_same_file),
             TEST_ENTRY(load_refuses_a_loaded_handle),
             TEST_ENTRY(plugin_code_maps_by_code))
