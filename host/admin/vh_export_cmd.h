/*
 * vh_export_cmd.h - `vedhost export` and `vedhost import`
 * (host/admin/export_cmd.c; the stream format is persist/trie/vh_export.h).
 */
#ifndef VH_EXPORT_CMD_H
#define VH_EXPORT_CMD_H

/* argv[0] is the subcommand's name ("export" / "import"), argv [borrowed].
 * Return the process exit code: 0 ok, 1 failure, 2 bad usage. */
int vh_export_main(int argc, char **argv);
int vh_import_main(int argc, char **argv);

#endif /* VH_EXPORT_CMD_H */
