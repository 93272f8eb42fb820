/*
 * vh_rollback.h - `vedhost rollback [--data DIR] --domain NAME --to V`
 * (host/cli/rollback_cmd.c; on a running host the work is done by
 * host/repl/repl_rollback.c).
 */
#ifndef VH_ROLLBACK_H
#define VH_ROLLBACK_H

/* The subcommand; argv[0] is "rollback". Exit codes: 0, 1 a refusal or a
 * failure (one line, nothing changed), 2 bad usage. */
int vh_rollback_main(int argc, char **argv);

#endif /* VH_ROLLBACK_H */
