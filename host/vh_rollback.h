/*
 * vh_rollback.h - `vedhost rollback` and `vedhost branch` (host/rollback.c,
 * host/branch.c).
 *
 *   vedhost rollback [--data DIR] --domain NAME --to V
 *   vedhost branch   [--data DIR] --at V NEWDIR
 *
 * Ownership in prototypes: [borrowed] the caller keeps it.
 */
#ifndef VH_ROLLBACK_H
#define VH_ROLLBACK_H

#include <stddef.h>

struct vh_host;

/* The subcommands; argv[0] is "rollback" / "branch". Exit codes: 0, 1 a
 * runtime refusal or failure (one line, nothing changed), 2 bad usage. */
int vh_rollback_main(int argc, char **argv);
int vh_branch_main(int argc, char **argv);

/* The control socket's COMMAND "rollback NAME SPEC" on a running host h
 * (loop thread, outside any handler): rolls domain NAME back to version
 * SPEC as its own slice and waits until that slice is durable. Returns 0
 * with a summary in msg (cap bytes), or -1 with one error line in msg
 * (nothing changed). args [borrowed]: "NAME SPEC". */
int vh_rollback__command(struct vh_host *h, const char *args, char *msg,
                         size_t cap);

#endif /* VH_ROLLBACK_H */
