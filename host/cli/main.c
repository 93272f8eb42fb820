/*
 * main.c - the vedhost command line: subcommand dispatch and the options
 * of `vedhost run`.
 *
 * Exit codes: 0 ok (or what ved.exit asked for); 1 a runtime failure
 * (script does not load, data dir in use, ...); 2 bad usage (unknown
 * command or option, bad or missing option value, an option given twice,
 * the same plugin twice), always found before anything is opened; 3 `run`
 * stopped but dropped slices the store could not write (host/runtime/durable.c,
 * SHUTDOWN). Every failure is one line on stderr that starts with
 * "vedhost: ".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "vh_cli_args.h"
#include "vh_export_cmd.h"
#include "vh_host.h"
#include "vh_http.h"
#include "vh_log.h"
#include "vh_offline.h"
#include "vh_plugin.h"
#include "vh_recover.h"
#include "vh_rehearse_cmd.h"
#include "vh_repl.h"
#include "vh_branch.h"
#include "vh_rollback.h"
#include "vh_repl_server.h"
#include "vh_replay_cmd.h"
#include "vh_test_cmd.h"

static const char vh_main_usage[] =
    "usage:\n"
    "  vedhost run [--data DIR] [--no-watch] [--durability sync|nosync]\n"
    "              [--handler-timeout MS] [--memory-limit MB]\n"
    "              [--log-level debug|info|warn|error]\n"
    "              [--plugin PATH.so[=CONFIG]]... [--http [ADDR:]PORT]\n"
    "              [--retain SPEC] [--rehearse N [--rehearse-strict]]\n"
    "              SCRIPT_OR_DIR...\n"
    "      load the domain scripts (a directory means its *.lua files) and\n"
    "      run them until SIGINT/SIGTERM or ved.exit(code)\n"
    "  vedhost repl [--data DIR] [-e CODE]\n"
    "      attach to a running host and evaluate Lua in it\n"
    "  vedhost inspect [--data DIR] [--at V] [PATH]\n"
    "      print the value at PATH (e.g. counter.recent.3) or every domain\n"
    "      (of retained version V: a seq, -N, a time 14:02, -5m, a mark)\n"
    "  vedhost log [--data DIR] [--domain NAME] [--since T] [-n N]\n"
    "      list the retained versions, newest first\n"
    "  vedhost diff [--data DIR] [--json] FROM [TO] [PATH]\n"
    "      print what changed between two versions (TO: the current one)\n"
    "  vedhost replay [--data DIR] --at V [--code DIR] [--trace]\n"
    "      re-run the slice that made V on V-1: does it reproduce V?\n"
    "  vedhost changes [--data DIR] [--from V] [--follow] [--json]\n"
    "      print every retained version's changes, oldest first\n"
    "  vedhost rehearse [--data DIR] [--last N | --since T] [--json]\n"
    "                   SCRIPT_OR_DIR...\n"
    "      run new scripts on the last N slices of recorded traffic (in\n"
    "      memory) and print what would differ: state, replies, errors\n"
    "  vedhost fsck [--data DIR]\n"
    "      check the data dir\n"
    "  vedhost recover [--data DIR]\n"
    "      accept the loss of the slices after a corrupt write-ahead log\n"
    "      record (which run refuses) and print which slices were dropped\n"
    "  vedhost export [--data DIR] [--at V] [--domain NAME]... [FILE|-]\n"
    "      write a consistent snapshot (zstd stream) to FILE or stdout;\n"
    "      safe while a host runs\n"
    "  vedhost import [--data DIR] [--replace-domain NAME] FILE|-\n"
    "      restore a snapshot into an empty data dir, or replace one\n"
    "      domain of a stopped host\n"
    "  vedhost mark [--data DIR] NAME | vedhost unmark [--data DIR] NAME\n"
    "      pin the current version under NAME (outside --retain) / unpin it\n"
    "  vedhost rollback [--data DIR] --domain NAME --to V\n"
    "      put one domain back to its state at version V, as a new version\n"
    "      (through the running host, or on a stopped data dir)\n"
    "  vedhost branch [--data DIR] --at V NEWDIR\n"
    "      make NEWDIR a data dir whose current state is version V\n"
    "  vedhost test [BUSTED_ARGS...]\n"
    "      run busted specs that use ved.testing (the runtime on a virtual\n"
    "      clock); LUA_PATH and LUA_CPATH are set to find it\n"
    "  vedhost --help | --version\n"
    "\n"
    "options of run:\n"
    "  --data DIR            data directory (default " VH_DEFAULT_DATA_DIR
    ")\n"
    "  --no-watch            do not reload scripts when they change\n"
    "  --durability MODE     sync (default): fsync each slice before its\n"
    "                        effects are shown; nosync: no fsync\n"
    "  --handler-timeout MS  time budget of one handler call (default 1000)\n"
    "  --memory-limit MB     Lua heap limit during handlers (default 1024)\n"
    "  --log-level LEVEL     debug, info (default), warn or error\n"
    "  --plugin PATH.so      load a native plugin (repeatable; =CONFIG is\n"
    "                        handed to it)\n"
    "  --http [ADDR:]PORT    serve the HTTP ingress (default off; no ADDR\n"
    "                        means 127.0.0.1)\n"
    "  --retain SPEC         versions kept: 15m, 24h, 7d (age), 10000\n"
    "                        (versions), 2GB (history disk), combined as\n"
    "                        1h,2GB; 0 = only the newest (default 15m,\n"
    "                        history capped at 1GB or half the live state)\n"
    "  --rehearse N          gate every hot reload on a rehearsal of the\n"
    "                        last N slices: handler errors refuse it\n"
    "  --rehearse-strict     with --rehearse: differences refuse it too\n";

static int vh_main_bad(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "vedhost: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, "; see vedhost --help\n");
  return 2;
}

/* A positive integer option value, or -1. */
static long vh_main_posint(const char *s) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < 1) return -1;
  return v;
}

/* The options of `vedhost run`, parsed by the rules of every subcommand
 * (host/cli/cli_args.c, README "Command line"): --opt VALUE or
 * --opt=VALUE, a value taken from the next argument never starts with
 * "--", no empty values, only --plugin may be given more than once. Every
 * value is checked here, before the data dir is opened, so a usage error
 * (exit 2) never creates or locks anything. The order of the table is the
 * order of vh_main_opt_id_t. */
typedef enum vh_main_opt_id {
  VH_OPT_DATA,
  VH_OPT_NO_WATCH,
  VH_OPT_DURABILITY,
  VH_OPT_HANDLER_TIMEOUT,
  VH_OPT_MEMORY_LIMIT,
  VH_OPT_LOG_LEVEL,
  VH_OPT_PLUGIN,
  VH_OPT_HTTP,
  VH_OPT_RETAIN,
  VH_OPT_REHEARSE,
  VH_OPT_REHEARSE_STRICT,
  VH_OPT_COUNT
} vh_main_opt_id_t;

static const vh_cli_opt_t vh_main_run_opts[VH_OPT_COUNT] = {
    {"--data", 1, 0},
    {"--no-watch", 0, 0},
    {"--durability", 1, 0},
    {"--handler-timeout", 1, 0},
    {"--memory-limit", 1, 0},
    {"--log-level", 1, 0},
    {"--plugin", 1, 1},
    {"--http", 1, 0},
    {"--retain", 1, 0},
    {"--rehearse", 1, 0},
    {"--rehearse-strict", 0, 0},
};

/* What `vedhost run` was asked to do. */
typedef struct vh_main_run_args {
  vh_host_opts_t opts;
  const char **scripts; /* [owned array; strings borrowed from argv] */
  const char **plugins; /* [owned array; strings borrowed from argv] */
  int nscripts, nplugins;
  const char *http; /* [borrowed] --http value, or NULL */
  int help;         /* --help was given */
} vh_main_run_args_t;

/* Check and apply one option's value. 0 or 2 (message printed). */
static int vh_main_apply(vh_main_run_args_t *ra, vh_main_opt_id_t id,
                         const char *val) {
  vh_host_opts_t *opts = &ra->opts;
  char err[512];
  switch (id) {
    case VH_OPT_DATA:
      opts->data_dir = val;
      return 0;
    case VH_OPT_NO_WATCH:
      opts->watch = 0;
      return 0;
    case VH_OPT_DURABILITY:
      if (strcmp(val, "sync") == 0)
        opts->durability = VH_DURABILITY_SYNC;
      else if (strcmp(val, "nosync") == 0)
        opts->durability = VH_DURABILITY_NOSYNC;
      else
        return vh_main_bad("--durability must be sync or nosync (got '%s')%s",
                           val, "");
      return 0;
    case VH_OPT_HANDLER_TIMEOUT: {
      long v = vh_main_posint(val);
      if (v < 0 || v > 86400000)
        return vh_main_bad(
            "--handler-timeout must be a positive number of ms (got '%s')%s",
            val, "");
      opts->handler_timeout_ms = (int)v;
      return 0;
    }
    case VH_OPT_MEMORY_LIMIT: {
      long v = vh_main_posint(val);
      if (v < 0 || v > (1L << 30))
        return vh_main_bad(
            "--memory-limit must be a positive number of MB (got '%s')%s", val,
            "");
      opts->memory_limit = (size_t)v << 20;
      return 0;
    }
    case VH_OPT_LOG_LEVEL:
      if (vh_log_parse_level(val, &opts->log_level) != 0)
        return vh_main_bad(
            "--log-level must be debug, info, warn or error (got '%s')%s", val,
            "");
      return 0;
    case VH_OPT_PLUGIN:
      ra->plugins[ra->nplugins++] = val;
      return 0;
    case VH_OPT_HTTP:
      if (vh_http_check_addr(val, err, sizeof err) != 0)
        return vh_main_bad("%s%s", err, "");
      ra->http = val;
      return 0;
    case VH_OPT_RETAIN: {
      vh_cli_retain_t cr;
      if (vh_cli_retain(val, &cr, err, sizeof err) != 0)
        return vh_main_bad("%s%s", err, "");
      memset(&opts->retain, 0, sizeof opts->retain);
      opts->retain.zero = cr.zero;
      opts->retain.age_ms = cr.age_ms;
      opts->retain.slices = cr.slices;
      opts->retain.bytes = cr.bytes;
      return 0;
    }
    case VH_OPT_REHEARSE: {
      long v = vh_main_posint(val);
      if (v < 0 || v > 10000000)
        return vh_main_bad(
            "--rehearse must be a positive number of slices (got '%s')%s", val,
            "");
      opts->rehearse = (int)v;
      return 0;
    }
    case VH_OPT_REHEARSE_STRICT:
      opts->rehearse_strict = 1;
      return 0;
    case VH_OPT_COUNT:
      break;
  }
  return vh_cli_bad("run", "internal: option %d is not handled", (int)id);
}

/* vh_cli_fn of run: a script, or an option to check and apply. */
static int vh_main_run_arg(void *arg, int opt, const char *val) {
  vh_main_run_args_t *ra = arg;
  if (opt < 0) {
    ra->scripts[ra->nscripts++] = val;
    return 0;
  }
  return vh_main_apply(ra, (vh_main_opt_id_t)opt, val);
}

/* Parse the arguments of run (argv[0] is "run") into ra, whose arrays
 * hold argc + 1 entries. 0, or 2 after printing the one-line usage error. */
static int vh_main_run_parse(int argc, char **argv, vh_main_run_args_t *ra) {
  static const vh_cli_cmd_t cmd = {"run", vh_main_run_opts, VH_OPT_COUNT, -1,
                                   vh_main_usage};
  int rc = vh_cli_parse(&cmd, argc, argv, vh_main_run_arg, ra);
  if (rc == 1) ra->help = 1;
  if (rc != 0) return rc == 1 ? 0 : rc;
  if (ra->nscripts == 0)
    return vh_main_bad("run needs at least one SCRIPT_OR_DIR%s%s", "", "");
  if (ra->opts.rehearse_strict && !ra->opts.rehearse)
    return vh_main_bad("--rehearse-strict needs --rehearse N%s%s", "", "");
  char err[1024];
  if (vh_plugin_check_specs(ra->plugins, ra->nplugins, err, sizeof err) != 0)
    return vh_main_bad("%s%s", err, "");
  return 0;
}

/* The kind of a file that is neither a directory nor a regular file. */
static const char *vh_main_ftype(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a file";
}

static int vh_main_run(int argc, char **argv) {
  vh_main_run_args_t ra;
  memset(&ra, 0, sizeof ra);
  vh_host_opts_default(&ra.opts);
  ra.scripts = calloc((size_t)argc + 1, sizeof *ra.scripts);
  ra.plugins = calloc((size_t)argc + 1, sizeof *ra.plugins);
  const char **scripts = ra.scripts, **plugins = ra.plugins;
  if (!scripts || !plugins) {
    free(scripts);
    free(plugins);
    return 1;
  }
  int rc = vh_main_run_parse(argc, argv, &ra);
  if (rc == 0 && ra.help) { /* printed by vh_cli_parse */
    free(scripts);
    free(plugins);
    return 0;
  }
  vh_host_opts_t opts = ra.opts;
  int nscripts = ra.nscripts, nplugins = ra.nplugins;
  const char *http = ra.http;
  /* A missing script, or one that is not a regular file (a FIFO would
   * block the load), is reported before the data dir is created. */
  for (int i = 0; i < nscripts && rc == 0; i++) {
    struct stat sb;
    if (stat(scripts[i], &sb) != 0) {
      fprintf(stderr, "vedhost: cannot open script %s: %s\n", scripts[i],
              strerror(errno));
      rc = 1;
    } else if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode)) {
      fprintf(stderr,
              "vedhost: script %s is not a regular file (%s); name a .lua "
              "file or a directory\n",
              scripts[i], vh_main_ftype(sb.st_mode));
      rc = 1;
    }
  }
  if (rc != 0) {
    free(scripts);
    free(plugins);
    return rc;
  }

  char err[1024];
  vh_host_t *h = NULL;
  if (vh_host_new(&opts, &h, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: %s\n", err);
    free(scripts);
    free(plugins);
    return 1;
  }
  /* The REPL server on DATA/control.sock (started when the loop runs). It
   * registers before the plugins, so it stops before them. */
  if (vh_repl_server_attach(h) != 0) {
    fprintf(stderr, "vedhost: cannot attach the REPL server\n");
    rc = 1;
  }
  /* Plugins first: their Lua modules must exist when scripts require them. */
  for (int i = 0; i < nplugins && rc == 0; i++) {
    if (vh_plugin_load(h, plugins[i], err, sizeof err) != 0) {
      fprintf(stderr, "vedhost: %s\n", err);
      rc = 1;
    }
  }
  if (rc == 0 && http && vh_http_start(h, http, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: %s\n", err);
    rc = 1;
  }
  free(plugins);
  for (int i = 0; i < nscripts && rc == 0; i++) {
    if (vh_host_load(h, scripts[i], err, sizeof err) != 0) {
      fprintf(stderr, "vedhost: %s\n", err);
      rc = 1;
    }
  }
  free(scripts);
  if (rc == 0 && vh_host_run(h, &rc) != 0) {
    fprintf(stderr, "vedhost: nothing to run\n");
    rc = 1;
  }
  vh_host_free(h);
  return rc;
}

static int vh_main_cmd(int argc, char **argv) {
  if (argc < 2)
    return vh_main_bad("a command is needed (run, repl, inspect, ...)%s%s", "",
                       "");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    if (argc == 3 && argv[2][0] != '-' && strcmp(argv[2], "help") != 0) {
      /* help CMD: that command's own help */
      char *sub[] = {argv[0], argv[2], "--help", NULL};
      return vh_main_cmd(3, sub);
    }
    if (argc > 3) return vh_main_bad("unexpected argument '%s'%s", argv[3], "");
    fputs(vh_main_usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    if (argc > 2) return vh_main_bad("unexpected argument '%s'%s", argv[2], "");
    printf("vedhost %s\n", VH_HOST_VERSION);
    return 0;
  }
  if (strcmp(cmd, "run") == 0) return vh_main_run(argc - 1, argv + 1);
  if (strcmp(cmd, "repl") == 0) return vh_repl_main(argc - 1, argv + 1);
  if (strcmp(cmd, "fsck") == 0) return vh_fsck_main(argc - 1, argv + 1);
  if (strcmp(cmd, "inspect") == 0) return vh_inspect_main(argc - 1, argv + 1);
  if (strcmp(cmd, "log") == 0) return vh_log_main(argc - 1, argv + 1);
  if (strcmp(cmd, "diff") == 0) return vh_diff_main(argc - 1, argv + 1);
  if (strcmp(cmd, "replay") == 0) return vh_replay_main(argc - 1, argv + 1);
  if (strcmp(cmd, "changes") == 0) return vh_changes_main(argc - 1, argv + 1);
  if (strcmp(cmd, "rehearse") == 0) return vh_rehearse_main(argc - 1, argv + 1);
  if (strcmp(cmd, "export") == 0) return vh_export_main(argc - 1, argv + 1);
  if (strcmp(cmd, "import") == 0) return vh_import_main(argc - 1, argv + 1);
  if (strcmp(cmd, "recover") == 0) return vh_recover_main(argc - 1, argv + 1);
  if (strcmp(cmd, "mark") == 0 || strcmp(cmd, "unmark") == 0)
    return vh_mark_main(argc - 1, argv + 1);
  if (strcmp(cmd, "rollback") == 0) return vh_rollback_main(argc - 1, argv + 1);
  if (strcmp(cmd, "branch") == 0) return vh_branch_main(argc - 1, argv + 1);
  if (strcmp(cmd, "test") == 0) return vh_test_main(argc - 1, argv + 1);
  if (cmd[0] == '-') return vh_main_bad("unknown option '%s'%s", cmd, "");
  return vh_main_bad("unknown command '%s'%s", cmd, "");
}

/* OPEN FILES: a store of format 4 holds one table file per big group of
 * slices until compaction merges them (persist/store/store.c), and a
 * reader beside a running host (inspect, fsck, export) keeps every one of
 * them open. So the soft limit on open files goes up to the hard limit
 * (64k at most), as database servers do: Debian's default soft limit is
 * 1024. A failure leaves the limit as it was. */
static void raise_open_files(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return;
  rlim_t want =
      r.rlim_max == RLIM_INFINITY || r.rlim_max > 65536 ? 65536 : r.rlim_max;
  if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
    r.rlim_cur = want;
    (void)setrlimit(RLIMIT_NOFILE, &r);
  }
}

int main(int argc, char **argv) {
  raise_open_files();
  int rc = vh_main_cmd(argc, argv);
  /* A result printed into a full disk or a closed file is a failure, not
   * exit 0 (`vedhost inspect > out` on a full disk). `run` keeps its own
   * exit code (ved.exit's); `test` has exec'd busted. A pipe whose reader
   * left (`vedhost changes | head`, SIGPIPE ignored there) is not one. */
  errno = 0;
  int bad = fflush(stdout) != 0 || ferror(stdout);
  int err = errno;
  struct stat st;
  if (bad && fstat(fileno(stdout), &st) == 0 &&
      (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
    bad = 0;
  if (bad && err != EPIPE && rc == 0 &&
      (argc < 2 || strcmp(argv[1], "run") != 0)) {
    fprintf(stderr, "vedhost: %s%scannot write the output: %s\n",
            argc >= 2 && argv[1][0] != '-' ? argv[1] : "",
            argc >= 2 && argv[1][0] != '-' ? ": " : "",
            err ? strerror(err) : "write error");
    rc = 1;
  }
  return rc;
}
