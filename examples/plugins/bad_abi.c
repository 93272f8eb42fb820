/*
 * bad_abi.c - a plugin that claims an ABI major version the host does not
 * have (VEDHOST_PLUGIN_ABI_MAJOR + 1). vedhost must refuse it at start
 * with one line naming both versions, before init is ever called; init
 * aborts the process to prove it is not.
 */
#include <stdlib.h>

#include "vedhost/plugin.h"

__attribute__((visibility("default")))
const vedhost_plugin_abi_t vedhost_plugin_abi = {VEDHOST_PLUGIN_ABI_MAJOR + 1,
                                                 0, "bad_abi"};

__attribute__((visibility("default"))) int vedhost_plugin_init(
    const vedhost_api_t *api, char *err, size_t cap) {
  (void)api;
  (void)err;
  (void)cap;
  abort(); /* never reached: the ABI check comes first */
}
