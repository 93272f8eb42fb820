/*
 * vh_test_cmd.h - `vedhost test [BUSTED_ARGS...]` (test_cmd.c).
 */
#ifndef VH_TEST_CMD_H
#define VH_TEST_CMD_H

/* argv[0] is "test"; execs busted, or returns the exit code (1) with one
 * line on stderr. */
int vh_test_main(int argc, char **argv);

#endif /* VH_TEST_CMD_H */
