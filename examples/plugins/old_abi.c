/*
 * old_abi.c - a plugin built for an older minor ABI (1.2, before
 * read_open_at was appended at 1.3). A host of a newer minor must load it
 * and give it a table whose first fields are those of 1.2; spec/
 * plugin_spec.lua checks that it loads and runs.
 */
#include <stddef.h>

#include "vedhost/plugin.h"

__attribute__((visibility("default")))
const vedhost_plugin_abi_t vedhost_plugin_abi = {VEDHOST_PLUGIN_ABI_MAJOR, 2,
                                                 "old_abi"};

__attribute__((visibility("default"))) int vedhost_plugin_init(
    const vedhost_api_t *api, char *err, size_t cap) {
  (void)err;
  (void)cap;
  /* Everything up to read_close (minor 2) is there. */
  if (api->abi_minor < 2 ||
      api->size < offsetof(vedhost_api_t, read_close) + sizeof api->read_close)
    return 1;
  api->log(api->host, VEDHOST_LOG_INFO, "old_abi", "minor 2 plugin runs");
  return 0;
}
