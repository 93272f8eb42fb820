/*
 * vh_http.h - the HTTP ingress (http.c) as a plugin on the public ABI
 * (vedhost/plugin.h) alone: what the host side needs to start it as a
 * built-in plugin (vh_http_start in host/abi/plugin.c) and what the CLI
 * needs to check --http before anything is opened. Nothing here names a
 * host type.
 */
#ifndef VH_HTTP_H
#define VH_HTTP_H

#include <stddef.h>

#include "vedhost/plugin.h"

/* The ingress's ABI record ("http", the ABI it is built for). */
extern const vedhost_plugin_abi_t vh_http_abi;

/* The ingress's vedhost_plugin_init: api->config is --http's value
 * ("ADDR:PORT,OPT=V,..."). 0, or -1 with one line in err. */
int vh_http_init_start(const vedhost_api_t *api, char *err, size_t cap);

/* The line the last failed vh_http_init_start gave [borrowed], "" if
 * none: the host prints "http: <it>" rather than the generic plugin line. */
const char *vh_http_why(void);

/* Check an --http value (as init parses it) without opening anything:
 * 0, or -1 with one line in err. */
int vh_http_check_addr(const char *addr, char *err, size_t cap);

#endif /* VH_HTTP_H */
