/*
 * diff_cmd.c - `vedhost diff [--data DIR] [--json] FROM [TO] [PATH]` and
 * `vedhost changes [--data DIR] [--from V] [--follow] [--json]`.
 *
 * HOW (the CLI room: it joins admin's offline store and literal printer,
 * the runtime's diff and the ABI's JSON lines, as only the executable may).
 * The store is opened as a RocksDB secondary (offline.c), so both run
 * the same beside a running host and on a stopped one, and write nothing.
 * FROM/TO/V are version specs (persist/vh_version_spec.h); the roots of
 * each version are stubs read by the trie's lazy loader, and
 * host/changes.c walks them, skipping what both versions share.
 *
 * OUTPUT. Text, one line per change, the path in inspect's syntax and
 * values in the REPL's literal format (scripts/pretty.lua, on one line,
 * nothing elided):
 *     + counter.recent.3 = "x"
 *     - jobs.queue
 *     ~ counter.n: 41 -> 42
 * `changes` puts "SEQ TIME " before each line. --json prints one JSON
 * object per line (host/changes.c vh_change_json): {"domain", "op",
 * "path" (an array of keys), "value" / "old","new"}, and for `changes`
 * "seq", "time" (unix ms), "n", "of" (n-th change of `of` in that seq).
 *
 * ARGUMENTS. A version spec may start with '-' (`-1`, `-5m`): an argument
 * "-" followed by a digit is never an option here. With two positional
 * arguments the second is TO if it names a retained version, else PATH.
 * PATH is `domain.key.key` (inspect's syntax); an element that reads as an
 * integer is an integer key where either version has that integer key,
 * else a string key.
 *
 * --follow polls the store (catch-up of the secondary) for newer versions
 * until stdout is closed or the process is signalled: at once after a
 * poll that sent versions, else 200 ms later;
 * stdout is flushed after each version, so a consumer never sees part of a
 * version without the rest following.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vh_changes.h"
#include "vh_changes_json.h"
#include "vh_cli_args.h"
#include "vh_diff_stage.h"
#include "vh_diff_text.h"
#include "vh_offline.h"
#include "vh_version_spec.h"
#include "vh_versions.h"

static const char vh_diffcmd_usage[] =
    "usage: vedhost diff [--data DIR] [--json] FROM [TO] [PATH]\n"
    "  print what changed between two retained versions of DIR (default\n"
    "  " VH_DEFAULT_DATA_DIR
    "): FROM and TO are versions (1234, -1, 14:02,\n"
    "  -5m, 2026-12-06T14:02:00Z, a mark); TO defaults to the current\n"
    "  state. PATH (domain.key.key) limits it to that value. One line per\n"
    "  change: `+ path = value`, `- path`, `~ path: old -> new`; --json\n"
    "  prints one JSON object per line. Safe while a host runs on DIR.\n";

static const char vh_changescmd_usage[] =
    "usage: vedhost changes [--data DIR] [--from V] [--follow] [--json]\n"
    "  print the changes of every retained version after V (a seq or any\n"
    "  version spec; without --from the oldest retained version is\n"
    "  printed whole, as additions), oldest first, one line each: SEQ TIME\n"
    "  and the change as `vedhost diff` prints it. --follow keeps waiting\n"
    "  for new versions. --json prints one JSON object per line. Safe while\n"
    "  a host runs on DIR.\n";

static int64_t vh_diffcmd__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the printer ---- */

typedef struct vh_printer {
  vh_diff_text_t *text; /* [owned] the literal printer (not with --json) */
  int json;             /* --json */
  int with_seq;         /* changes: SEQ TIME first */
  vh_buf_t line;        /* the line being built */
  int err;              /* a failure while printing (message on stderr) */
  const char *cmd;
} vh_printer_t;

static int vh_printer_open(vh_printer_t *p, const char *cmd, int json,
                           int with_seq) {
  memset(p, 0, sizeof *p);
  p->cmd = cmd;
  p->json = json;
  p->with_seq = with_seq;
  if (json) return 0;
  return vh_diff_text_open(cmd, &p->text);
}

static void vh_printer_close(vh_printer_t *p) {
  vh_diff_text_close(p->text);
  vh_buf_free(&p->line);
}

/* Report a load fault (or r) in one line; the fault is cleared. */
static int vh_diffcmd__fault(const char *cmd, int r) {
  const char *fm = NULL;
  if (vh_trie_fault(&fm) != 0) {
    fprintf(stderr, "vedhost: %s: cannot read the state: %s\n", cmd, fm);
    vh_trie_fault_clear();
  } else if (r < 0) {
    fprintf(stderr, "vedhost: %s: %s\n", cmd, vh_err_name(r));
  }
  return 1;
}

static int vh_printer_change(void *arg, const vh_change_t *c) {
  vh_printer_t *p = arg;
  int r = 0;
  p->line.len = 0;
  if (p->json) {
    r = vh_change_json(c, p->with_seq, &p->line);
  } else {
    char head[96], tb[VH_VERSION_TIME_LEN];
    if (p->with_seq) {
      snprintf(head, sizeof head, "%" PRIu64 " %s ", c->seq,
               vh_version_time_fmt(c->time_ms, tb));
      r = vh_buf_put(&p->line, head, strlen(head));
    }
    if (r == 0)
      r = vh_diff_text_change(p->text, c->domain, c->op, c->path, c->depth,
                              c->old, c->new, &p->line);
  }
  if (r == 0 && vh_trie_fault(NULL) != 0) r = VH_EIO;
  if (r != 0) {
    if (r != VH_EINVAL) vh_diffcmd__fault(p->cmd, r);
    p->err = 1;
    return r;
  }
  if (vh_buf_put(&p->line, "\n", 1) != 0 ||
      fwrite(p->line.p, 1, p->line.len, stdout) != p->line.len) {
    p->err = 2; /* stdout closed: stop quietly */
    return VH_EIO;
  }
  if (c->of > 0 && c->n == c->of) fflush(stdout);
  return 0;
}

/* ---- arguments ---- */

/* An argument "-<digit>..." is a version spec, not an option: getopt
 * would read it as short options, so it is hidden behind a \1 prefix that
 * the positional handler strips. */
static char **vh_diffcmd__argv(int argc, char **argv) {
  char **v = calloc((size_t)argc + 1, sizeof *v);
  if (v == NULL) return NULL;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (i > 0 && a[0] == '-' && a[1] >= '0' && a[1] <= '9') {
      size_t n = strlen(a);
      v[i] = malloc(n + 2);
      if (v[i] == NULL) continue;
      v[i][0] = '\1';
      memcpy(v[i] + 1, a, n + 1);
    } else {
      v[i] = strdup(a);
    }
  }
  return v;
}

static void vh_diffcmd__argv_free(int argc, char **v) {
  for (int i = 0; i < argc; i++) free(v[i]);
  free(v);
}

typedef struct vh_diffcmd_args {
  const char *data;
  const char *pos[3];
  int npos;
  int json, follow;
  const char *from;
} vh_diffcmd_args_t;

static int vh_diffcmd__arg(void *arg, int opt, const char *val) {
  vh_diffcmd_args_t *a = arg;
  if (val && val[0] == '\1') val++;
  if (opt < 0) {
    a->pos[a->npos++] = val;
  } else if (opt == 0) {
    a->data = val;
  } else if (opt == 1) {
    a->json = 1;
  } else if (opt == 2) {
    a->from = val;
  } else {
    a->follow = 1;
  }
  return 0;
}

/* ---- vedhost diff ---- */

/* The UTF-8 bytes of code point c (Lua's \u{X}, up to 2^31) into o. */
static size_t vh_diffcmd__utf8(unsigned long c, char *o) {
  if (c < 0x80) return o[0] = (char)c, 1;
  int n = c < 0x800       ? 2
          : c < 0x10000   ? 3
          : c < 0x200000  ? 4
          : c < 0x4000000 ? 5
                          : 6;
  for (int i = n - 1; i > 0; i--) o[i] = (char)(0x80 | (c & 0x3f)), c >>= 6;
  o[0] = (char)((0xff00u >> n) | c);
  return (size_t)n;
}

/* A bracketed key of PATH, p just past '[', written as diff prints keys
 * that are not plain names (scripts/pretty.lua): a quoted string with
 * Lua's escapes, an integer or float, 1/0, -1/0, math.mininteger, true,
 * false. *k [new]; returns the char past ']', or NULL. */
static const char *vh_diffcmd__literal(const char *p, vh_val_t *k) {
  if (*p == '"' || *p == '\'') {
    char q = *p++, *b = malloc(strlen(p) + 1);
    size_t n = 0;
    if (b == NULL) return NULL;
    for (; *p && *p != q; p++) {
      if (*p != '\\') {
        b[n++] = *p;
        continue;
      }
      static const char esc[] = "a\ab\bf\fn\nr\rt\tv\v\\\\\"\"''";
      const char *e = *++p ? strchr(esc, *p) : NULL;
      if (e && (e - esc) % 2 == 0) {
        b[n++] = e[1];
      } else if (*p >= '0' && *p <= '9') {
        int c = 0, d = 0;
        while (d < 3 && *p >= '0' && *p <= '9') c = c * 10 + (*p++ - '0'), d++;
        p--;
        if (c > 255) break;
        b[n++] = (char)c;
      } else if (*p == 'x' && isxdigit((unsigned char)p[1]) &&
                 isxdigit((unsigned char)p[2])) {
        char h[3] = {p[1], p[2], 0};
        b[n++] = (char)strtol(h, NULL, 16);
        p += 2;
      } else if (*p == 'u' && p[1] == '{' && isxdigit((unsigned char)p[2])) {
        char *end;
        unsigned long c = strtoul(p + 2, &end, 16);
        if (*end != '}' || c >= 0x80000000UL) break;
        n += vh_diffcmd__utf8(c, b + n);
        p = end;
      } else if (*p == 'z') {
        while (p[1] == ' ' || p[1] == '\n' || p[1] == '\t' || p[1] == '\r') p++;
      } else {
        break;
      }
    }
    if (*p != q || p[1] != ']') {
      free(b);
      return NULL;
    }
    k->u.s = vh_str_new(b, n);
    k->type = VH_TSTR;
    free(b);
    return k->u.s ? p + 2 : NULL;
  }
  const char *end = strchr(p, ']');
  size_t len = end ? (size_t)(end - p) : 0;
  char tok[64], *te;
  if (len == 0 || len >= sizeof tok) return NULL;
  memcpy(tok, p, len);
  tok[len] = 0;
  errno = 0;
  long long ll = strtoll(tok, &te, 10);
  double d;
  if (*te == 0 && errno == 0)
    *k = vh_int(ll);
  else if (strcmp(tok, "true") == 0 || strcmp(tok, "false") == 0)
    *k = vh_bool(tok[0] == 't');
  else if (strcmp(tok, "math.mininteger") == 0)
    *k = vh_int(INT64_MIN);
  else if (strcmp(tok, "1/0") == 0 || strcmp(tok, "-1/0") == 0)
    *k = vh_float(tok[0] == '-' ? -HUGE_VAL : HUGE_VAL);
  else if ((d = strtod(tok, &te)), *te == 0 && d == d)
    *k = d == floor(d) && d >= -0x1p63 && d < 0x1p63 ? vh_int((int64_t)d)
                                                     : vh_float(d);
  else
    return NULL;
  return end + 1;
}

/* Split PATH into domain and keys: `name.key.key` where a plain element
 * that looks like an integer is resolved against both sides (integer key
 * first, then string), and a key may be bracketed as diff prints it
 * (`kv["a.b"]`, `t[1.5]`, `t[true]`). *keys [new] (strings to release),
 * *nkeys. */
static int vh_diffcmd__path(const char *path, const vh_vside_t *a,
                            const vh_vside_t *b, char **domain, vh_val_t **keys,
                            size_t *nkeys) {
  size_t dl = strcspn(path, ".[");
  *keys = NULL;
  *nkeys = 0;
  if (dl == 0) goto bad;
  *domain = strndup(path, dl);
  vh_tab_t *ta = NULL, *tb = NULL;
  int found = 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->names[i], *domain) == 0) ta = a->roots[i], found = 1;
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->names[i], *domain) == 0) tb = b->roots[i], found = 1;
  size_t n = 0;
  for (const char *p = path; *p; p++) n += *p == '.' || *p == '[';
  *keys = calloc(n + 1, sizeof **keys);
  if (*keys == NULL) return 1;
  vh_val_t va = ta ? (vh_val_t){.u.t = ta, .type = VH_TTAB} : vh_nil();
  vh_val_t vb = tb ? (vh_val_t){.u.t = tb, .type = VH_TTAB} : vh_nil();
  /* A side whose walk meets a scalar can never hold PATH; both: refused as
   * inspect refuses it. */
  size_t wa = 0;
  int sa = VH_TNIL, sb = VH_TNIL;
  for (const char *s = path + dl; *s;) {
    vh_val_t k = vh_nil(), x = vh_nil(), y = vh_nil();
    if (sa == VH_TNIL && va.type != VH_TNIL && va.type != VH_TTAB)
      sa = va.type, wa = (size_t)(s - path);
    if (sb == VH_TNIL && vb.type != VH_TNIL && vb.type != VH_TTAB) sb = vb.type;
    if (*s == '[') {
      s = vh_diffcmd__literal(s + 1, &k);
      if (s == NULL) goto bad;
    } else if (*s == '.') {
      s++;
      size_t len = strcspn(s, ".[");
      if (len == 0) goto bad;
      char buf[32], *end;
      if (len < sizeof buf) {
        memcpy(buf, s, len);
        buf[len] = 0;
        errno = 0;
        long long ll = strtoll(buf, &end, 10);
        if (*end == 0 && errno == 0) {
          vh_val_t ik = vh_int(ll);
          if (va.type == VH_TTAB) vh_tab_get(va.u.t, ik, &x);
          if (vb.type == VH_TTAB) vh_tab_get(vb.u.t, ik, &y);
          if (x.type != VH_TNIL || y.type != VH_TNIL) k = ik;
        }
      }
      if (k.type == VH_TNIL) {
        k.u.s = vh_str_new(s, len);
        k.type = VH_TSTR;
        if (k.u.s == NULL) return 1;
      }
      s += len;
    } else {
      goto bad;
    }
    (*keys)[(*nkeys)++] = k;
    x = y = vh_nil();
    if (va.type == VH_TTAB) vh_tab_get(va.u.t, k, &x);
    if (vb.type == VH_TTAB) vh_tab_get(vb.u.t, k, &y);
    va = x;
    vb = y;
  }
  if (!found) {
    fprintf(stderr, "vedhost: diff: no domain \"%s\" in either version\n",
            *domain);
    return 1;
  }
  if (sa != VH_TNIL && sb != VH_TNIL) {
    fprintf(stderr, "vedhost: diff: %.*s is a %s, not a table: no %s\n",
            (int)wa, path,
            sa == VH_TSTR    ? "string"
            : sa == VH_TBOOL ? "boolean"
                             : "number",
            path);
    return 1;
  }
  return 0;
bad:
  fprintf(stderr,
          "vedhost: diff: bad path \"%s\": use name.key.key, with keys that "
          "are not plain names as diff prints them: key[\"a.b\"], key[1.5], "
          "key[true]\n",
          path);
  return 2;
}

/* Load version spec into a side (roots as stubs); *next_id: its
 * manifest's. */
static int vh_diffcmd__side(vh_offline_t *o, const char *spec, vh_vside_t *s,
                            uint64_t *seq, uint64_t *next_id, char **errmsg) {
  vh_manifest_t m;
  int64_t t;
  int r =
      vh_version_load(o->store, spec, vh_diffcmd__now(), seq, &t, &m, errmsg);
  if (r != 0) return r;
  *next_id = m.next_id;
  r = vh_vside_from_manifest(s, &m, vh_tab_stub);
  vh_manifest_free(&m);
  if (r != 0) *errmsg = strdup("out of memory");
  return r;
}

int vh_diff_main(int argc, char **argv) {
  static const vh_cli_opt_t opts[] = {{"--data", 1, 0}, {"--json", 0, 0}};
  vh_cli_cmd_t cmd = {"diff", opts, 2, 3, vh_diffcmd_usage};
  vh_diffcmd_args_t a;
  memset(&a, 0, sizeof a);
  a.data = VH_DEFAULT_DATA_DIR;
  char **av = vh_diffcmd__argv(argc, argv);
  if (av == NULL) return 1;
  int rc = vh_cli_parse(&cmd, argc, av, vh_diffcmd__arg, &a);
  if (rc == 0 && a.npos == 0)
    rc = vh_cli_bad("diff", "FROM is missing (a version: 1234, -1, 14:02)");
  if (rc != 0) {
    vh_diffcmd__argv_free(argc, av);
    return rc == 1 ? 0 : rc;
  }
  vh_offline_t o;
  char err[1024];
  if (vh_offline_open(&o, a.data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: diff: %s\n", err);
    vh_diffcmd__argv_free(argc, av);
    return 1;
  }
  vh_offline_use_loader(&o);
  vh_vside_t sa, sb;
  memset(&sa, 0, sizeof sa);
  memset(&sb, 0, sizeof sb);
  char *msg = NULL, *domain = NULL;
  uint64_t seqa = 0, seqb = 0, na = 0, nb = 0;
  const char *to = a.npos >= 2 ? a.pos[1] : NULL;
  const char *path = a.npos == 3 ? a.pos[2] : NULL;
  vh_val_t *keys = NULL;
  size_t nkeys = 0;
  rc = 0;
  int r = vh_diffcmd__side(&o, a.pos[0], &sa, &seqa, &na, &msg);
  if (r == 0 && a.npos == 2) { /* FROM TO, or FROM PATH */
    char *m2 = NULL;
    if (vh_diffcmd__side(&o, to, &sb, &seqb, &nb, &m2) != 0) {
      size_t dl = strcspn(to, ".[");
      int isdom = 0;
      for (size_t i = 0; i < o.man.ndomains; i++)
        if (strlen(o.man.domains[i].name) == dl &&
            strncmp(o.man.domains[i].name, to, dl) == 0)
          isdom = 1;
      for (size_t i = 0; i < sa.n; i++)
        if (strlen(sa.names[i]) == dl && strncmp(sa.names[i], to, dl) == 0)
          isdom = 1;
      if (isdom) {
        path = to;
        to = NULL;
        free(m2);
      } else {
        char buf[512];
        snprintf(buf, sizeof buf,
                 "\"%.200s\" is neither a version (%.200s) nor a path in "
                 "a domain",
                 to, m2 ? m2 : "unknown");
        free(m2);
        r = VH_ENOENT;
        msg = strdup(buf);
      }
    }
  }
  if (r == 0 && a.npos == 3)
    r = vh_diffcmd__side(&o, to, &sb, &seqb, &nb, &msg);
  if (r == 0 && to == NULL) { /* TO: the current state */
    nb = o.man.next_id;
    seqb = o.man.seq;
    r = vh_vside_from_manifest(&sb, &o.man, vh_tab_stub);
    if (r != 0) msg = strdup("out of memory");
  }
  if (r != 0) {
    fprintf(stderr, "vedhost: diff: %s\n", msg ? msg : vh_err_name(r));
    rc = 1;
    goto out;
  }
  if (path != NULL &&
      (rc = vh_diffcmd__path(path, &sa, &sb, &domain, &keys, &nkeys)) != 0)
    goto out;
  if (vh_trie_fault(NULL) != 0) {
    rc = vh_diffcmd__fault("diff", VH_EIO);
    goto out;
  }
  vh_printer_t p;
  if (vh_printer_open(&p, "diff", a.json, 0) != 0) {
    rc = 1;
    goto out;
  }
  /* The newer side's new nodes read in one scan (vh_diff_stage.h). */
  r = vh_diff_staged(o.store, seqa, na, seqb, nb, &sa, &sb, domain, keys, nkeys,
                     vh_printer_change, &p);
  if (getenv("VEDHOST_TEST_DIFF_STAGE") != NULL) { /* tests: was it used? */
    uint64_t staged = 0, used = 0;
    vh_diff_stage_counts(&staged, &used);
    fprintf(stderr, "diff stage: staged %" PRIu64 ", used %" PRIu64 "\n",
            staged, used);
  }
  if (getenv("VEDHOST_TEST_CHANGE_RECORDS") != NULL) /* tests: used? */
    fprintf(stderr, "diff records: %" PRIu64 "\n", vh_diff_record_count());
  if (r != 0 && !p.err) vh_diffcmd__fault("diff", r);
  rc = r == 0 ? 0 : p.err == 2 ? 0 : 1;
  vh_printer_close(&p);
  fflush(stdout);
out:
  for (size_t i = 0; i < nkeys; i++) vh_val_release(keys[i]);
  free(keys);
  free(domain);
  free(msg);
  vh_vside_free(&sa);
  vh_vside_free(&sb);
  vh_offline_close(&o);
  vh_diffcmd__argv_free(argc, av);
  return rc;
}

/* ---- vedhost changes ---- */

static volatile sig_atomic_t vh_changescmd_stop;

/* Polls (200 ms apart) a follower retries a version whose walk could not
 * load a node (see vh_changes_main). */
#define VH_CHANGES_RETRIES 50

static void vh_changescmd__sig(int sig) {
  (void)sig;
  vh_changescmd_stop = 1;
}

int vh_changes_main(int argc, char **argv) {
  static const vh_cli_opt_t opts[] = {
      {"--data", 1, 0}, {"--json", 0, 0}, {"--from", 1, 0}, {"--follow", 0, 0}};
  vh_cli_cmd_t cmd = {"changes", opts, 4, 0, vh_changescmd_usage};
  vh_diffcmd_args_t a;
  memset(&a, 0, sizeof a);
  a.data = VH_DEFAULT_DATA_DIR;
  char **av = vh_diffcmd__argv(argc, argv);
  if (av == NULL) return 1;
  int rc = vh_cli_parse(&cmd, argc, av, vh_diffcmd__arg, &a);
  if (rc != 0) {
    vh_diffcmd__argv_free(argc, av);
    return rc == 1 ? 0 : rc;
  }
  vh_offline_t o;
  char err[1024];
  if (vh_offline_open(&o, a.data, err, sizeof err) != 0) {
    fprintf(stderr, "vedhost: changes: %s\n", err);
    vh_diffcmd__argv_free(argc, av);
    return 1;
  }
  vh_offline_use_loader(&o);
  uint64_t after = 0;
  char *msg = NULL;
  if (a.from != NULL) {
    const char *f = a.from;
    int digits = *f != 0;
    for (const char *q = f; *q; q++) digits &= *q >= '0' && *q <= '9';
    if (digits) { /* a seq: the feed tells past retention apart */
      after = strtoull(f, NULL, 10);
      if (after == 0) {
        fprintf(stderr,
                "vedhost: changes: --from 0 names no version (leave "
                "--from out to start from the oldest retained one)\n");
        rc = 1;
      }
    } else if (vh_version_resolve(o.store, f, vh_diffcmd__now(), &after,
                                  &msg) != 0) {
      fprintf(stderr, "vedhost: changes: %s\n", msg ? msg : "bad version");
      rc = 1;
    }
  }
  vh_printer_t p;
  if (rc == 0 && vh_printer_open(&p, "changes", a.json, 1) != 0) rc = 1;
  if (rc != 0) {
    free(msg);
    vh_offline_close(&o);
    vh_diffcmd__argv_free(argc, av);
    return rc;
  }
  /* One write per 64 KiB (stdio's default for a file is 4 KiB; each
   * version is flushed whole anyway, vh_printer_change). */
  static char outbuf[1 << 16];
  setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
  signal(SIGPIPE, SIG_IGN);
  if (a.follow) {
    signal(SIGTERM, vh_changescmd__sig);
    signal(SIGINT, vh_changescmd__sig);
  }
  vh_feed_t f;
  vh_feed_init(&f, o.store, vh_tab_stub_view, after);
  /* Range scans on a second thread (changes.c, READ-AHEAD) only with
   * VEDHOST_FEED_AHEAD=1: beside a host writing on this 2-core machine it
   * cost ~25% more consumer CPU a change (cache misses and hand-offs;
   * instructions +1.5%) and gained no wall time (bench/README.md). */
  const char *ahead = getenv("VEDHOST_FEED_AHEAD");
  f.ahead = ahead != NULL && strcmp(ahead, "1") == 0;
  int retries = 0;
  for (;;) {
    free(msg);
    msg = NULL;
    uint64_t last = f.last;
    int r = vh_feed_poll(&f, 0, vh_printer_change, &p, NULL, &msg);
    fflush(stdout);
    /* A following secondary can see a version's record before one of its
     * nodes (seen with the bench's writer: "node N: ENOENT: missing from
     * the store", while the same version reads whole offline). Nothing of
     * that version was sent: catch up and walk it again, for up to ~10 s
     * (VH_CHANGES_RETRIES polls) before the error is reported. */
    if (r != 0 && a.follow && f.walk_fault && !p.err &&
        retries < VH_CHANGES_RETRIES && !vh_changescmd_stop) {
      retries++;
      r = 0;
    } else if (r == 0) {
      retries = 0;
    }
    if (r != 0) {
      if (p.err == 2) break; /* the reader went away */
      if (!p.err)
        fprintf(stderr, "vedhost: changes: %s\n", msg ? msg : vh_err_name(r));
      rc = 1;
      break;
    }
    if (!a.follow || vh_changescmd_stop) break;
    /* A poll that sent versions catches up at once: the host may have
     * committed more meanwhile (a backlog is not read 200 ms at a time). */
    struct timespec ts = {0, 200 * 1000000L};
    if (f.last == last || retries > 0) nanosleep(&ts, NULL);
    if (vh_changescmd_stop) break;
    free(msg);
    msg = NULL;
    if (vh_store_catch_up(o.store, &msg) != 0) {
      fprintf(stderr, "vedhost: changes: %s\n", msg ? msg : "catch-up failed");
      rc = 1;
      break;
    }
  }
  free(msg);
  if (getenv("VEDHOST_TEST_FEED_STATS")) /* tests only */
    fprintf(stderr,
            "vedhost: changes: read ahead %" PRIu64 " versions, %" PRIu64
            " nodes staged, %" PRIu64 " versions from records\n",
            f.ahead_versions, f.ahead_staged, f.record_versions);
  vh_feed_free(&f);
  vh_printer_close(&p);
  vh_offline_close(&o);
  vh_diffcmd__argv_free(argc, av);
  return rc;
}
