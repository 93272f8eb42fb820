/* cli_args.c - the one argument parser of every vedhost subcommand.
 *
 * RULES (the same for run, repl, inspect, fsck, recover, export, import;
 * README "Command line"):
 * - A long option's value is "--opt VALUE" or "--opt=VALUE"; a short one's
 *   (repl's -e) is "-e VALUE" or "-eVALUE".
 * - A value taken from the next argument never starts with "--": `--data
 *   --x` is "--data needs a value" (write --data=--odd for such a name).
 *   A value may not be empty. A missing value is "--data needs a value".
 * - Options are spelled in full: getopt_long's abbreviations (--dat) are
 *   refused as unknown options.
 * - An option may be given once, unless it is repeatable (run's --plugin,
 *   export's --domain, repl's -e); twice is an error, not "the last wins".
 * - A flag given a value (--no-watch=1) is an error.
 * - Positional arguments may come before, between or after options; "--"
 *   ends the options; "-" is a positional argument (stdin/stdout). More
 *   positional arguments than the subcommand takes is an error.
 * - --help or -h prints the subcommand's help on stdout (exit 0).
 * Every refusal is one line on stderr, "vedhost: CMD: ...; see vedhost
 * --help", exit 2, and happens while parsing, before the caller opens or
 * creates anything.
 *
 * HOW. getopt_long with optstring "-:h...": a leading '-' returns the
 * positional arguments in order (code 1) instead of permuting argv, which
 * also makes the result independent of POSIXLY_CORRECT; ':' reports a
 * missing value as ':' and keeps getopt silent (opterr is 0 as well). The
 * checks getopt does not make (full spelling, "--" values, empty values,
 * repeats, positional count) are made here on the argument getopt just
 * consumed: argv[optind - 1], or argv[optind - 2] when the value was the
 * separate argument argv[optind - 1].
 */
#include "vh_cli_args.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define VH_CLI_LONG_BASE 256 /* getopt code of long option k: base + k */

int vh_cli_bad(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "vedhost: %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "; see vedhost --help\n");
  va_end(ap);
  return 2;
}

/* Length of the option part of an argument ("--data=x" -> 6). */
static size_t vh_cli__optlen(const char *a) {
  const char *eq = strchr(a, '=');
  return eq ? (size_t)(eq - a) : strlen(a);
}

/* Is the argument text (a long option as typed) exactly name? */
static int vh_cli__exact(const char *text, const char *name) {
  size_t n = vh_cli__optlen(text);
  return strncmp(text, "--", 2) != 0 ||
         (strlen(name) == n && strncmp(text, name, n) == 0);
}

/* The index of the short option c in cmd->opts, or -1. */
static int vh_cli__short(const vh_cli_cmd_t *cmd, int c) {
  for (int k = 0; k < cmd->nopts; k++) {
    const char *n = cmd->opts[k].name;
    if (n[0] == '-' && n[1] == c && n[2] == '\0') return k;
  }
  return -1;
}

/* The option index of getopt code c, or -1. */
static int vh_cli__index(const vh_cli_cmd_t *cmd, int c) {
  if (c >= VH_CLI_LONG_BASE && c < VH_CLI_LONG_BASE + cmd->nopts)
    return c - VH_CLI_LONG_BASE;
  return c > 0 && c < VH_CLI_LONG_BASE ? vh_cli__short(cmd, c) : -1;
}

static int vh_cli__unknown(const vh_cli_cmd_t *cmd, const char *text) {
  return vh_cli_bad(cmd->name, "unknown option '%.*s'",
                    (int)vh_cli__optlen(text), text);
}

/* A positional argument; counts it in *nargs. */
static int vh_cli__arg(const vh_cli_cmd_t *cmd, const char *a, int *nargs,
                       vh_cli_fn fn, void *arg) {
  if (cmd->max_args >= 0 && *nargs >= cmd->max_args)
    return vh_cli_bad(cmd->name, "unexpected argument '%s'", a);
  (*nargs)++;
  return fn(arg, -1, a);
}

int vh_cli_parse(const vh_cli_cmd_t *cmd, int argc, char **argv, vh_cli_fn fn,
                 void *arg) {
  struct option lo[VH_CLI_MAX_OPTS + 2];
  char so[3 * VH_CLI_MAX_OPTS + 4] = "-:h";
  size_t nso = 3;
  int nlo = 0, seen[VH_CLI_MAX_OPTS] = {0};
  if (cmd->nopts > VH_CLI_MAX_OPTS)
    return vh_cli_bad(cmd->name, "internal: too many options");
  for (int k = 0; k < cmd->nopts; k++) {
    const vh_cli_opt_t *o = &cmd->opts[k];
    if (o->name[1] == '-') {
      lo[nlo++] = (struct option){
          o->name + 2, o->has_value ? required_argument : no_argument, NULL,
          VH_CLI_LONG_BASE + k};
    } else {
      so[nso++] = o->name[1];
      if (o->has_value) so[nso++] = ':';
    }
  }
  so[nso] = '\0';
  lo[nlo++] = (struct option){"help", no_argument, NULL, 'h'};
  lo[nlo] = (struct option){NULL, 0, NULL, 0};

  int nargs = 0, rc = 0;
  opterr = 0;
#ifdef __GLIBC__
  optind = 0; /* glibc: start over, re-reading the optstring */
#else
  optind = 1;
#endif
  for (;;) {
    int c = getopt_long(argc, argv, so, lo, NULL);
    if (c == -1) break;
    if (c == 1) {
      rc = vh_cli__arg(cmd, optarg, &nargs, fn, arg);
      if (rc != 0) return rc;
      continue;
    }
    if (c == '?') {
      const char *text = argv[optind - 1];
      if (optopt == 'h' && strncmp(text, "--", 2) == 0 &&
          vh_cli__exact(text, "--help"))
        return vh_cli_bad(cmd->name, "--help takes no value");
      int k = vh_cli__index(cmd, optopt);
      if (optopt == 0 || k < 0 || strncmp(text, "--", 2) != 0)
        return optopt == 0 || strncmp(text, "--", 2) == 0
                   ? vh_cli__unknown(cmd, text)
                   : vh_cli_bad(cmd->name, "unknown option '-%c'", optopt);
      if (!vh_cli__exact(text, cmd->opts[k].name))
        return vh_cli__unknown(cmd, text);
      return vh_cli_bad(cmd->name, "%s takes no value", cmd->opts[k].name);
    }
    int k = vh_cli__index(cmd, c == ':' ? optopt : c);
    int separate = c != ':' && k >= 0 && cmd->opts[k].has_value &&
                   optarg != NULL && optind >= 2 && optarg == argv[optind - 1];
    const char *text = argv[optind - 1 - separate];
    if (c == 'h') {
      if (!vh_cli__exact(text, "--help")) return vh_cli__unknown(cmd, text);
      fputs(cmd->help, stdout);
      return 1;
    }
    if (k < 0) return vh_cli_bad(cmd->name, "internal: option code %d", c);
    const vh_cli_opt_t *o = &cmd->opts[k];
    if (!vh_cli__exact(text, o->name)) return vh_cli__unknown(cmd, text);
    if (c == ':' ||
        (o->has_value && (optarg == NULL || *optarg == '\0' ||
                          (separate && strncmp(optarg, "--", 2) == 0))))
      return vh_cli_bad(cmd->name, "%s needs a value", o->name);
    if (seen[k]++ && !o->repeatable)
      return vh_cli_bad(cmd->name, "%s given twice; give it once", o->name);
    rc = fn(arg, k, o->has_value ? optarg : NULL);
    if (rc != 0) return rc;
  }
  for (int i = optind; i < argc; i++) { /* after "--" */
    rc = vh_cli__arg(cmd, argv[i], &nargs, fn, arg);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- --retain ---- */

int vh_cli_retain(const char *spec, vh_cli_retain_t *out, char *err,
                  size_t cap) {
  static const struct {
    const char *unit;
    int kind; /* 1 age (ms per unit), 2 bytes */
    unsigned long long mul;
  } units[] = {{"s", 1, 1000ULL},     {"m", 1, 60000ULL},
               {"h", 1, 3600000ULL},  {"d", 1, 86400000ULL},
               {"KB", 2, 1ULL << 10}, {"MB", 2, 1ULL << 20},
               {"GB", 2, 1ULL << 30}, {"TB", 2, 1ULL << 40}};
  memset(out, 0, sizeof *out);
  if (strcmp(spec, "0") == 0) {
    out->zero = 1;
    return 0;
  }
  const char *p = spec;
  int seen[3] = {0, 0, 0};
  for (;;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    char part[64];
    if (n == 0 || n >= sizeof part) {
      snprintf(err, cap,
               "--retain: bad limit '%.*s' in '%s' (want e.g. 15m, 24h, "
               "10000, 2GB or 1h,2GB)",
               (int)(n < 40 ? n : 40), p, spec);
      return -1;
    }
    memcpy(part, p, n);
    part[n] = '\0';
    size_t digits = 0;
    while (isdigit((unsigned char)part[digits])) digits++;
    errno = 0;
    char *e = NULL;
    unsigned long long v = digits ? strtoull(part, &e, 10) : 0;
    int kind = 0;
    unsigned long long mul = 1;
    if (digits && part[digits] == '\0') {
      kind = 0; /* a count of versions */
    } else {
      kind = -1;
      for (size_t i = 0; digits && i < sizeof units / sizeof units[0]; i++)
        if (strcmp(part + digits, units[i].unit) == 0) {
          kind = units[i].kind;
          mul = units[i].mul;
        }
    }
    if (kind < 0 || errno || v == 0 || v > ~0ULL / mul ||
        (kind == 1 && v * mul > 9000000000000000000ULL)) {
      snprintf(err, cap,
               "--retain: bad limit '%s' in '%s' (want a positive age 30s, "
               "15m, 24h, 7d, a count of versions 10000, or a disk budget "
               "500MB, 2GB; combine with commas; 0 alone keeps only the "
               "newest version)",
               part, spec);
      return -1;
    }
    if (seen[kind]++) {
      snprintf(err, cap, "--retain: '%s' gives %s twice", spec,
               kind == 0   ? "a count"
               : kind == 1 ? "an age"
                           : "a budget");
      return -1;
    }
    if (kind == 0)
      out->slices = v;
    else if (kind == 1)
      out->age_ms = (long long)(v * mul);
    else
      out->bytes = v * mul;
    if (!end) break;
    p = end + 1;
  }
  return 0;
}
