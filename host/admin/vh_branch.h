/*
 * vh_branch.h - `vedhost branch [--data DIR] --at V NEWDIR`
 * (host/admin/branch.c).
 */
#ifndef VH_BRANCH_H
#define VH_BRANCH_H

/* The subcommand; argv[0] is "branch". Exit codes: 0, 1 a refusal or a
 * failure (one line, nothing created), 2 bad usage. */
int vh_branch_main(int argc, char **argv);

#endif /* VH_BRANCH_H */
