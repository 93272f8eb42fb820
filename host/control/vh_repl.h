/* vh_repl: `vedhost repl`, the client of the control socket.
 *
 *   vedhost repl [--data DIR] [-e CODE]...
 *
 * Connects to DIR/control.sock (DIR defaults to ./vedhost.data). With -e,
 * evaluates each CODE in turn (a CODE starting with ':' is a command),
 * prints the results on stdout and exits 0, or prints the error on stderr and
 * exits 1. Without -e, runs an interactive console (libedit): prompt "ved> ",
 * "ved>> " while the chunk is incomplete, history in $VEDHOST_HISTORY or
 * ~/.vedhost_history (an empty $VEDHOST_HISTORY turns the file off), tab
 * completion from the host, Ctrl-C cancels the line or chunk, Ctrl-D or
 * :quit leaves, other :commands go to the host. Colours only when stdout is
 * a terminal and NO_COLOR is unset or empty.
 *
 * Exit codes: 0 ok, 1 an error (no host, host error, connection lost),
 * 2 bad usage.
 */
#ifndef VH_REPL_H
#define VH_REPL_H

#include <stddef.h>

/* Largest reply payload the client accepts (the host's printer elides long
 * tables, so replies are normally small; a huge string may be large). */
#define VH_REPL_MAX_REPLY ((size_t)1 << 30)

/* Entry point of `vedhost repl`. argv[0] is the subcommand name ("repl")
 * and is skipped; options start at argv[1]. argv is borrowed. Returns the
 * process exit code. */
int vh_repl_main(int argc, char **argv);

/* Connects to the control socket of the host on data dir `dir` (borrowed).
 * On success *fd is a new blocking socket (the caller closes it). Returns 0,
 * UV_ENOENT when no host listens there (no socket, or a stale one),
 * UV_ENAMETOOLONG, or another negative errno-style error. */
int vh_repl_connect(const char *dir, int *fd);

/* Sends one request frame (`type`, `len` bytes of `payload`, borrowed) on
 * `fd` and waits for its reply. On success *rtype is the reply type and
 * *reply a new malloc'd buffer of *rlen bytes plus a terminating '\0'
 * (free it). Returns 0, UV_EOF when the host closed the connection,
 * UV_EPROTO for a malformed reply, or another negative error; *reply is
 * NULL on failure. Interrupted system calls are retried. */
int vh_repl_request(int fd, int type, const char *payload, size_t len,
                    int *rtype, char **reply, size_t *rlen);

#endif /* VH_REPL_H */
