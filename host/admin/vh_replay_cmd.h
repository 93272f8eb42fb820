/*
 * vh_replay_cmd.h - `vedhost replay [--data DIR] --at V [--code DIR]
 * [--trace]` (host/admin/replay_cmd.c).
 */
#ifndef VH_REPLAY_CMD_H
#define VH_REPLAY_CMD_H

/* argv[0] is "replay". Exit codes: 0 reproduced, 3 not reproduced, 1 bad
 * input (unknown or unreplayable version, V-1 not retained, no scripts),
 * 2 usage. */
int vh_replay_main(int argc, char **argv);

#endif /* VH_REPLAY_CMD_H */
