/*
 * vh_plugin.h - loading native plugins into a host (the host side of
 * include/vedhost/plugin.h), and the in-tree HTTP ingress.
 *
 * Order: vh_host_new, then vh_plugin_load / vh_plugin_add / vh_http_start
 * (plugins register Lua modules the scripts require), then vh_host_load,
 * vh_host_run (which calls every plugin's stop callbacks once the loop
 * stopped), vh_host_free (which unloads the shared objects last, after
 * every pending reply callback ran).
 */
#ifndef VH_PLUGIN_H
#define VH_PLUGIN_H

#include <stddef.h>

#include "vedhost/plugin.h"
#include "vh_host.h"

/* VH_PLUGIN_ELOAD (dlopen, symbol, ABI or init failure): see vh_err.h. */

/* The public VEDHOST_E* code (include/vedhost/plugin.h) of an internal
 * code of vh_err.h: 0 for 0; a handler's rollback, and any code the ABI
 * has no name for, is VEDHOST_EHANDLER. */
int vh_plugin_code(int code);

/* Load the shared object spec (borrowed): "PATH" or "PATH=CONFIG" (split
 * at the first '=' that follows ".so"; CONFIG is handed to the plugin as
 * api->config). Checks the ABI symbol, then runs vedhost_plugin_init.
 * 0, or VH_PLUGIN_ELOAD / VH_ENOMEM with one line in err (cap bytes)
 * naming the file and what to do. Only before vh_host_run. */
int vh_plugin_load(vh_host_t *h, const char *spec, char *err, size_t cap);

/* Start a plugin linked into the executable: the same checks and init as
 * vh_plugin_load, with abi [borrowed, static] and init, config
 * [borrowed, copied; may be NULL]. */
int vh_plugin_add(vh_host_t *h, const vedhost_plugin_abi_t *abi,
                  vedhost_plugin_init_fn init, const char *config, char *err,
                  size_t cap);

/* The HTTP ingress (plugins/http/http.c) as a built-in plugin listening on addr
 * ("PORT", ":PORT", "ADDR:PORT", "[V6ADDR]:PORT"; no address means
 * 127.0.0.1; port 0 picks a free port, logged as "http: listening on
 * ADDR:PORT"). 0 or VH_PLUGIN_ELOAD with one line in err. */
int vh_http_start(vh_host_t *h, const char *addr, char *err, size_t cap);

/* Check the --plugin specs [borrowed] (as vh_plugin_load splits them)
 * before anything is opened: two that name the same file (the same path,
 * or another path or symlink to the same inode) are refused, since a
 * plugin's static state exists once per process. A file that cannot be
 * stat'ed is left for vh_plugin_load to report. 0, or VH_PLUGIN_ELOAD
 * with one line in err. */
int vh_plugin_check_specs(const char *const *specs, int n, char *err,
                          size_t cap);

#endif /* VH_PLUGIN_H */
