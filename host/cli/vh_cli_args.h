/* vh_cli_args: the one argument parser of every vedhost subcommand (run,
 * repl, inspect, fsck, recover, export, import), on getopt_long, plus the
 * one definition of the default data dir. The rules are written at the top
 * of cli_args.c and in README "Command line". */
#ifndef VH_CLI_ARGS_H
#define VH_CLI_ARGS_H

#include <stddef.h>

/* The data dir of every subcommand when --data is not given. */
#define VH_DEFAULT_DATA_DIR "./vedhost.data"

/* Most options one subcommand may have. */
#define VH_CLI_MAX_OPTS 16

/* One option of a subcommand. */
typedef struct vh_cli_opt {
  const char *name; /* [borrowed] "--data" (a long option) or "-e" (short) */
  int has_value;    /* takes a value (--opt VALUE, --opt=VALUE, -e VALUE) */
  int repeatable;   /* may be given more than once */
} vh_cli_opt_t;

/* A subcommand's command line. */
typedef struct vh_cli_cmd {
  const char *name;         /* [borrowed] "run", used in error messages */
  const vh_cli_opt_t *opts; /* [borrowed] nopts entries, at most 16 */
  int nopts;
  int max_args;     /* positional arguments allowed; -1 for any number */
  const char *help; /* [borrowed] printed on stdout for --help or -h */
} vh_cli_cmd_t;

/* Called for each option in the order given (opt is its index in
 * cmd->opts, val its value or NULL for a flag) and each positional argument
 * (opt -1). Returns 0, or 2 after printing one line (vh_cli_bad). */
typedef int (*vh_cli_fn)(void *arg, int opt, const char *val);

/* Parses argv[1..argc) (argv[0] is the subcommand's name) by the rules of
 * cli_args.c. Returns 0 when every argument was accepted, 1 when --help was
 * printed (the caller exits 0), or 2 after printing one usage line on
 * stderr (the caller exits 2). argv is borrowed (values handed to fn point
 * into it); it is not reordered. Not reentrant (getopt's globals). */
int vh_cli_parse(const vh_cli_cmd_t *cmd, int argc, char **argv, vh_cli_fn fn,
                 void *arg);

/* Prints "vedhost: CMD: MESSAGE; see vedhost --help" on stderr and returns
 * 2, the usage exit code. */
int vh_cli_bad(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* `vedhost run --retain SPEC` (README "Versions"): comma-separated limits,
 * each at most once: an age "30s" "15m" "24h" "7d", a count of versions
 * "10000", a disk budget "500MB" "2GB" (KB/MB/GB/TB are powers of 1024);
 * any limit reached drops the oldest version. "0" alone keeps only the
 * newest version. */
typedef struct vh_cli_retain {
  int zero;                         /* "0" */
  long long age_ms;                 /* 0 = none */
  unsigned long long slices, bytes; /* 0 = none */
} vh_cli_retain_t;

/* Parses spec into *out. 0, or -1 with a one-line reason in err (cap
 * bytes) that names the bad part (the caller prints it, exit 2). */
int vh_cli_retain(const char *spec, vh_cli_retain_t *out, char *err,
                  size_t cap);

#endif
