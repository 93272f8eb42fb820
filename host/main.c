/*
 * main.c - the vedhost command line: subcommand dispatch and the options
 * of `vedhost run`.
 *
 * Exit codes: 0 ok (or what ved.exit asked for); 1 a runtime failure
 * (script does not load, data dir in use, ...); 2 bad usage (unknown
 * command or option, bad option value); 3 `run` stopped but dropped
 * slices the store could not write (host/durable.c, SHUTDOWN). Every failure is
 * one line on stderr that starts with "vedhost: ".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vh_export_cmd.h"
#include "vh_host.h"
#include "vh_log.h"
#include "vh_offline.h"
#include "vh_plugin.h"
#include "vh_recover.h"
#include "vh_repl.h"

static const char vh_main_usage[] =
    "usage:\n"
    "  vedhost run [--data DIR] [--no-watch] [--durability sync|nosync]\n"
    "              [--handler-timeout MS] [--memory-limit MB]\n"
    "              [--log-level debug|info|warn|error]\n"
    "              [--plugin PATH.so[=CONFIG]]... [--http [ADDR:]PORT]\n"
    "              SCRIPT_OR_DIR...\n"
    "      load the domain scripts (a directory means its *.lua files) and\n"
    "      run them until SIGINT/SIGTERM or ved.exit(code)\n"
    "  vedhost repl [--data DIR] [-e CODE]\n"
    "      attach to a running host and evaluate Lua in it\n"
    "  vedhost inspect [--data DIR] [PATH]\n"
    "      print the value at PATH (e.g. counter.recent.3) or every domain\n"
    "  vedhost fsck [--data DIR]\n"
    "      check the data dir\n"
    "  vedhost recover [--data DIR]\n"
    "      accept the loss of the slices after a corrupt write-ahead log\n"
    "      record (which run refuses) and print which slices were dropped\n"
    "  vedhost export [--data DIR] [--domain NAME]... [FILE|-]\n"
    "      write a consistent snapshot (zstd stream) to FILE or stdout;\n"
    "      safe while a host runs\n"
    "  vedhost import [--data DIR] [--replace-domain NAME] FILE|-\n"
    "      restore a snapshot into an empty data dir, or replace one\n"
    "      domain of a stopped host\n"
    "  vedhost --help | --version\n"
    "\n"
    "options of run:\n"
    "  --data DIR            data directory (default ./vedhost.data)\n"
    "  --no-watch            do not reload scripts when they change\n"
    "  --durability MODE     sync (default): fsync each slice before its\n"
    "                        effects are shown; nosync: no fsync\n"
    "  --handler-timeout MS  time budget of one handler call (default 1000)\n"
    "  --memory-limit MB     Lua heap limit during handlers (default 1024)\n"
    "  --log-level LEVEL     debug, info (default), warn or error\n"
    "  --plugin PATH.so      load a native plugin (repeatable; =CONFIG is\n"
    "                        handed to it)\n"
    "  --http [ADDR:]PORT    serve the HTTP ingress (default off; no ADDR\n"
    "                        means 127.0.0.1)\n";

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

static int vh_main_run(int argc, char **argv) {
  vh_host_opts_t opts;
  vh_host_opts_default(&opts);
  const char **scripts = calloc((size_t)argc + 1, sizeof *scripts);
  const char **plugins = calloc((size_t)argc + 1, sizeof *plugins);
  const char *http = NULL;
  if (!scripts || !plugins) {
    free(scripts);
    free(plugins);
    return 1;
  }
  int nscripts = 0, nplugins = 0, only_args = 0, rc = 0;
  for (int i = 0; i < argc && rc == 0; i++) {
    const char *a = argv[i];
    if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
      scripts[nscripts++] = a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_args = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(vh_main_usage, stdout);
      free(scripts);
      free(plugins);
      return 0;
    }
    if (strcmp(a, "--no-watch") == 0) {
      opts.watch = 0;
      continue;
    }
    /* options with a value: --opt VALUE or --opt=VALUE */
    static const char *const valued[] = {
        "--data",         "--durability", "--handler-timeout",
        "--memory-limit", "--log-level",  "--plugin",
        "--http"};
    const char *val = NULL;
    int which = -1;
    for (int k = 0; k < 7 && which < 0; k++) {
      size_t n = strlen(valued[k]);
      if (strncmp(a, valued[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
        which = k;
        if (a[n] == '=')
          val = a + n + 1;
        else if (i + 1 < argc)
          val = argv[++i];
      }
    }
    if (which < 0) {
      rc = vh_main_bad("unknown option '%s' for run%s", a, "");
      break;
    }
    if (!val) {
      rc = vh_main_bad("option '%s' needs a value%s", valued[which], "");
      break;
    }
    switch (which) {
      case 0:
        if (!*val) rc = vh_main_bad("option '%s' needs a value%s", a, "");
        opts.data_dir = val;
        break;
      case 1:
        if (strcmp(val, "sync") == 0)
          opts.durability = VH_DURABILITY_SYNC;
        else if (strcmp(val, "nosync") == 0)
          opts.durability = VH_DURABILITY_NOSYNC;
        else
          rc = vh_main_bad("--durability must be sync or nosync (got '%s')%s",
                           val, "");
        break;
      case 2: {
        long v = vh_main_posint(val);
        if (v < 0 || v > 86400000)
          rc = vh_main_bad(
              "--handler-timeout must be a positive number of ms (got "
              "'%s')%s",
              val, "");
        opts.handler_timeout_ms = (int)v;
        break;
      }
      case 3: {
        long v = vh_main_posint(val);
        if (v < 0 || v > (1L << 30))
          rc = vh_main_bad(
              "--memory-limit must be a positive number of MB (got '%s')%s",
              val, "");
        opts.memory_limit = (size_t)v << 20;
        break;
      }
      case 4:
        if (vh_log_parse_level(val, &opts.log_level) != 0)
          rc = vh_main_bad(
              "--log-level must be debug, info, warn or error (got '%s')%s",
              val, "");
        break;
      case 5:
        if (!*val) rc = vh_main_bad("option '%s' needs a value%s", a, "");
        plugins[nplugins++] = val;
        break;
      case 6:
        if (!*val) rc = vh_main_bad("option '%s' needs a value%s", a, "");
        http = val;
        break;
    }
  }
  if (rc == 0 && nscripts == 0)
    rc = vh_main_bad("run needs at least one SCRIPT_OR_DIR%s%s", "", "");
  /* A missing script is reported before the data dir is created. */
  for (int i = 0; i < nscripts && rc == 0; i++) {
    struct stat sb;
    if (stat(scripts[i], &sb) != 0) {
      fprintf(stderr, "vedhost: cannot open script %s: %s\n", scripts[i],
              strerror(errno));
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

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(vh_main_usage, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
      strcmp(cmd, "help") == 0) {
    fputs(vh_main_usage, stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("vedhost %s\n", VH_HOST_VERSION);
    return 0;
  }
  if (strcmp(cmd, "run") == 0) return vh_main_run(argc - 2, argv + 2);
  if (strcmp(cmd, "repl") == 0) return vh_repl_main(argc - 1, argv + 1);
  if (strcmp(cmd, "fsck") == 0) return vh_fsck_main(argc - 1, argv + 1);
  if (strcmp(cmd, "inspect") == 0) return vh_inspect_main(argc - 1, argv + 1);
  if (strcmp(cmd, "export") == 0) return vh_export_main(argc - 1, argv + 1);
  if (strcmp(cmd, "import") == 0) return vh_import_main(argc - 1, argv + 1);
  if (strcmp(cmd, "recover") == 0) return vh_recover_main(argc - 1, argv + 1);
  if (cmd[0] == '-') return vh_main_bad("unknown option '%s'%s", cmd, "");
  return vh_main_bad("unknown command '%s'%s", cmd, "");
}
