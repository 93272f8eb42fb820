/*
 * vh_recover.h - `vedhost recover [--data DIR]`: accept the loss of what
 * follows a corrupt record of the write-ahead log, knowingly, and report
 * exactly which slices are gone (host/admin/recover.c).
 */
#ifndef VH_RECOVER_H
#define VH_RECOVER_H

/* The subcommand (argv[0] is "recover"); returns the exit code: 0 done
 * (or nothing to do), 1 the dir cannot be recovered (one line on stderr),
 * 2 bad usage. */
int vh_recover_main(int argc, char **argv);

#endif /* VH_RECOVER_H */
