/*
 * vh_rehearse_cmd.h - `vedhost rehearse [--data DIR] [--last N | --since T]
 * [--json] SCRIPT_OR_DIR...` (host/admin/rehearse_cmd.c).
 */
#ifndef VH_REHEARSE_CMD_H
#define VH_REHEARSE_CMD_H

/* argv[0] is "rehearse". Exit codes: 0 clean (same state, same replies, no
 * handler error), 1 differences or errors, or a rehearsal that could not
 * run (one line on stderr), 2 usage. With --gate (used by `vedhost run
 * --rehearse N`, not documented for people): 0 clean, 1 differences only,
 * 3 handler errors (a migrate or start that raised included), 4 could not
 * rehearse, 2 usage. */
int vh_rehearse_main(int argc, char **argv);

#endif /* VH_REHEARSE_CMD_H */
