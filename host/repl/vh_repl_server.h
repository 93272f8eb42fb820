/*
 * vh_repl_server.h - the REPL server (host/repl): a host that has it
 * listens on DATA/control.sock while it runs and answers `vedhost repl`
 * consoles (see repl_server.c).
 */
#ifndef VH_REPL_SERVER_H
#define VH_REPL_SERVER_H

#include "vh_host.h"

/* Give h a REPL server: registers its start and stop with the runtime
 * (before vh_host_run; the server starts when the loop does, and a
 * failure to listen is a warning, not an error). 0, or VH_HOST_ESTATE
 * when h has no room for another hook. */
int vh_repl_server_attach(vh_host_t *h);

#endif /* VH_REPL_SERVER_H */
