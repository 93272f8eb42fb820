/*
 * repl_info.c - the REPL's answers that run no chunk: completion (COMPLETE)
 * and the commands (COMMAND). Both answer at once, from the request
 * callback, and change nothing (except :reload, :fork/:unfork, which change
 * the host's code or the connection's fork, and :rollback).
 *
 * COMPLETE. The word before the cursor (the longest suffix of
 * [A-Za-z0-9_.:], as the client cuts it) is split at '.' / ':'. The path
 * before the last separator is resolved from the REPL environment (then
 * _G; `domains` is built fresh) with raw reads of plain tables and proxy
 * reads (the proxy's own C __index), never a user __index, so completing
 * runs no user code. The candidates are the string keys of what the path
 * names that are identifiers starting with the last part, as full
 * replacements of the word ("domains.counter.state.re" ->
 * "domains.counter.state.recent"); after a ':' only keys of functions
 * (methods). With no path: `domains`, the environment's globals and _G's.
 * A word starting with ':' completes the commands. At most VH_REPL_SCAN
 * keys are looked at and VH_REPL_CANDS returned, sorted, so a huge state
 * cannot stall the loop for long. Proxies are read with the guard lifted
 * (no handler runs meanwhile).
 *
 * COMMAND.
 *   help     the text below
 *   domains  name, version, keys (top-level keys of the state) and bytes:
 *            an estimate of the data walked over the trie now (strings by
 *            length, numbers 8, booleans 1, each table 16 plus its keys
 *            and values), not the bytes in memory or on disk
 *   stats    slices ended, slice rate since the oldest sample of a 1 s
 *            sampler (about the last 10 s), handler calls, flush lag and
 *            bytes written, held replies, pending sweeps and the store's
 *            write health (host/runtime/durable.c), the last error record of
 * the log, the Lua heap, REPL counters reload   vh_host_reload
 * (host/runtime/reload.c); its summary, or its error fork     / unfork: the
 * connection's fork (repl_server.c, FORK) rollback NAME V: repl_rollback.c
 * (vedhost rollback on a running host); it changes state, as its own slice, and
 * answers once durable quit     handled by the client; answered OK with nothing
 * Anything else is an ERROR naming the command.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repl_int.h"
#include "vh_bytes.h"
#include "vh_log.h"

/* Completion: keys looked at, candidates returned. */
#define VH_REPL_SCAN 100000
#define VH_REPL_CANDS 500
/* Tables nested deeper than this are not walked by :domains' bytes. */
#define VH_REPL_MAXDEPTH 200

static void vh_repl_reply_str(vh_control_conn_t *conn, int type,
                              const char *s) {
  vh_control_reply(conn, type, s, strlen(s));
}

/* ---- COMPLETE --------------------------------------------------------- */

static int vh_repl_is_word_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':';
}

/* Nonzero when s (n bytes) is a Lua identifier (keywords included: they
 * are valid field names after a dot). */
static int vh_repl_is_ident(const char *s, size_t n) {
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (size_t i = 0; i < n; i++)
    if (!vh_repl_is_word_char((unsigned char)s[i]) || s[i] == '.' ||
        s[i] == ':')
      return 0;
  return 1;
}

/* What a completion looks at (on the C stack of vh_repl_on_complete). */
typedef struct vh_repl_comp {
  vh_repl_srv_t *s;
  const char *word; /* the word before the cursor [borrowed] */
  size_t len;
  size_t base; /* bytes of word up to and including the last separator */
} vh_repl_comp_t;

/* Add key k (at index kidx) to the candidate set at index set when it is
 * an identifier that starts with the prefix. */
static void vh_repl_cand(lua_State *L, vh_repl_comp_t *c, int set, int kidx) {
  if (lua_type(L, kidx) != LUA_TSTRING) return;
  size_t kl;
  const char *k = lua_tolstring(L, kidx, &kl);
  const char *pre = c->word + c->base;
  size_t pl = c->len - c->base;
  if (kl < pl || memcmp(k, pre, pl) != 0 || !vh_repl_is_ident(k, kl)) return;
  lua_pushlstring(L, c->word, c->base);
  lua_pushvalue(L, kidx);
  lua_concat(L, 2);
  lua_pushboolean(L, 1);
  lua_rawset(L, set);
}

/* Add the matching keys of the table or proxy at idx to the set (after
 * a ':' only the keys of functions, i.e. methods). */
static void vh_repl_cand_keys(lua_State *L, vh_repl_comp_t *c, int set,
                              int idx) {
  long scanned = 0;
  int top = lua_gettop(L);
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushnil(L);
    int methods = c->base > 0 && c->word[c->base - 1] == ':';
    while (scanned++ < VH_REPL_SCAN && lua_next(L, idx) != 0) {
      int fn = lua_type(L, -1) == LUA_TFUNCTION;
      lua_pop(L, 1);
      if (fn || !methods) vh_repl_cand(L, c, set, lua_gettop(L));
    }
    lua_settop(L, top); /* the key left over when the scan was cut */
    return;
  }
  if (!vhl_isproxy(L, idx) || (c->base > 0 && c->word[c->base - 1] == ':'))
    return; /* state holds no functions */
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->s->pairs_ref);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 3); /* iterator, state, control */
  int it = lua_gettop(L) - 2;
  while (scanned++ < VH_REPL_SCAN) {
    lua_pushvalue(L, it);
    lua_pushvalue(L, it + 1);
    lua_pushvalue(L, it + 2);
    lua_call(L, 2, 1);
    if (lua_isnil(L, -1)) break;
    lua_replace(L, it + 2);
    vh_repl_cand(L, c, set, it + 2);
  }
  lua_settop(L, it - 1);
}

/* Push the value of name (n bytes) at the top level: the environment's
 * own, a fresh `domains`, or _G's; raw reads only. */
static void vh_repl_top_value(lua_State *L, vh_repl_srv_t *s, const char *name,
                              size_t n) {
  if (n == 7 && memcmp(name, "domains", 7) == 0) {
    vh_repl__push_domains(L, s->h);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_ref);
  lua_pushlstring(L, name, n);
  if (lua_rawget(L, -2) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_pushlstring(L, name, n);
    lua_rawget(L, -2);
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
}

static int vh_repl_strcmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Protected: light userdata 1 is the vh_repl_comp_t. Returns the
 * candidates, '\n' separated. */
static int vh_repl_complete_tramp(lua_State *L) {
  vh_repl_comp_t *c = (vh_repl_comp_t *)lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_newtable(L); /* 1: the candidate set */
  const char *w = c->word;
  if (c->len > 0 && w[0] == ':') {
    static const char *const cmds[] = {
        ":help",   ":domains", ":stats", ":reload", ":quit",    ":mark",
        ":unmark", ":marks",   ":fork",  ":unfork", ":rollback"};
    for (int i = 0; i < (int)(sizeof cmds / sizeof *cmds); i++) {
      size_t cl = strlen(cmds[i]);
      if (cl >= c->len && memcmp(cmds[i], w, c->len) == 0) {
        lua_pushboolean(L, 1);
        lua_setfield(L, 1, cmds[i]);
      }
    }
  } else if (c->base == 0) {
    lua_pushliteral(L, "domains");
    vh_repl_cand(L, c, 1, 2);
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->s->env_ref);
    vh_repl_cand_keys(L, c, 1, 2);
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    vh_repl_cand_keys(L, c, 1, 2);
    lua_pop(L, 1);
  } else {
    /* Walk the path: segments end at '.' or ':'. */
    size_t i = 0;
    int first = 1;
    while (i < c->base) {
      size_t j = i;
      while (w[j] != '.' && w[j] != ':') j++;
      if (!vh_repl_is_ident(w + i, j - i)) return 0;
      if (first) {
        vh_repl_top_value(L, c->s, w + i, j - i);
        first = 0;
      } else if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushlstring(L, w + i, j - i);
        lua_rawget(L, -2);
        lua_remove(L, -2);
      } else if (vhl_isproxy(L, -1)) {
        lua_pushlstring(L, w + i, j - i);
        lua_gettable(L, -2); /* the proxy's own __index: C, bounded */
        lua_remove(L, -2);
      } else {
        return 0;
      }
      i = j + 1;
    }
    vh_repl_cand_keys(L, c, 1, lua_gettop(L));
    lua_settop(L, 1);
  }
  /* Sorted, '\n' separated, at most VH_REPL_CANDS. The array is a
   * userdata so that nothing leaks if building the reply raises. */
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    n++;
  }
  const char **v =
      (const char **)lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    v[n++] = lua_tostring(L, -1); /* alive: a key of the set */
  }
  qsort(v, n, sizeof *v, vh_repl_strcmp);
  luaL_Buffer out;
  luaL_buffinit(L, &out);
  for (size_t k = 0; k < n && k < VH_REPL_CANDS; k++) {
    if (k) luaL_addchar(&out, '\n');
    luaL_addstring(&out, v[k]);
  }
  luaL_pushresult(&out);
  return 1;
}

void vh_repl__complete(vh_repl_srv_t *s, vh_control_conn_t *conn,
                       const char *line, size_t len) {
  lua_State *L = s->h->L;
  vh_repl_comp_t c = {s, line, len, 0};
  size_t start = len;
  while (start > 0 && vh_repl_is_word_char((unsigned char)line[start - 1]))
    start--;
  c.word = line + start;
  c.len = len - start;
  for (size_t i = 0; i < c.len; i++)
    if (c.word[i] == '.' || (c.word[i] == ':' && i > 0)) c.base = i + 1;
  int top = lua_gettop(L);
  lua_pushcfunction(L, vh_repl_complete_tramp);
  lua_pushlightuserdata(L, &c);
  vhl_guard(L, NULL);
  vhl_guard_strict(L, 0);
  int st = lua_pcall(L, 1, 1, 0);
  vhl_guard_strict(L, s->h->phase == VH_PHASE_RUN);
  const char *out = st == LUA_OK ? lua_tostring(L, -1) : NULL;
  vh_repl_reply_str(conn, VH_CONTROL_CANDIDATES, out ? out : "");
  lua_settop(L, top);
}

/* ---- COMMAND ---------------------------------------------------------- */

static const char vh_repl_help[] =
    "Lua runs inside the host, each input as its own atomic slice: an error\n"
    "rolls back everything it did; an expression prints its value.\n"
    "  domains.<name>.state          the live state of a domain (read, "
    "write)\n"
    "  domains.<name>.version        its declared version\n"
    "  send(domain, event, payload)  run the domain's handler now, in this\n"
    "                                chunk; returns the handler's reply\n"
    "  at(V).domains.<name>.state    read-only view of retained version V\n"
    "                                (1234, -3, \"14:02\", \"-5m\", a mark)\n"
    "  ved                           the ved module (ved.send queues a "
    "message)\n"
    "  pretty                        the printer: pretty.format(v, "
    "{max_items = 10})\n"
    "  print(...)                    prints into the reply\n"
    "Globals you set stay for later inputs; locals do not.\n"
    "Commands:\n"
    "  :help     this text\n"
    "  :domains  name, version, keys and bytes of each domain\n"
    "  :stats    slices, slice rate, flush lag, bytes written, store hold, "
    "last error\n"
    "  :reload   reload the domain scripts (--rehearse N [--yes]: on the\n"
    "            last N slices first, then ask; README Safe deploys)\n"
    "  :mark NAME    pin the current version until :unmark NAME\n"
    "  :unmark NAME  drop a mark (its history is collected later)\n"
    "  :marks        name, version, time and disk cost of each mark\n"
    "  :rollback NAME V  put domain NAME back to its state at version V\n"
    "  :fork     run this connection's later chunks on a private copy of\n"
    "            the state that is never written (:unfork drops it)\n"
    "  :quit     leave (or Ctrl-D)\n";

/* Bytes of the data under v: strings by length, numbers 8, booleans 1,
 * each table 16 plus its keys and values. An estimate of the data's size
 * walked over the trie now, not its size in memory or on disk. */
static uint64_t vh_repl_bytes(vh_val_t v, int depth) {
  switch (v.type) {
    case VH_TBOOL:
      return 1;
    case VH_TINT:
    case VH_TFLOAT:
      return 8;
    case VH_TSTR:
      return vh_str_len(v.u.s);
    case VH_TTAB: {
      uint64_t n = 16;
      if (depth >= VH_REPL_MAXDEPTH) return n;
      vh_iter_t it;
      vh_val_t k, x;
      vh_iter_init(&it, v.u.t);
      while (vh_iter_next(&it, &k, &x))
        n += vh_repl_bytes(k, depth + 1) + vh_repl_bytes(x, depth + 1);
      return n;
    }
    default:
      return 0;
  }
}

/* Append printf-style text to a growing buffer; *ok cleared on OOM. */
typedef struct vh_repl_text {
  char *p;
  size_t len, cap;
  int ok;
} vh_repl_text_t;

static void vh_repl_addf(vh_repl_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void vh_repl_addf(vh_repl_text_t *t, const char *fmt, ...) {
  if (!t->ok) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->ok = 0;
      return;
    }
    if (t->p && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    if (vh_grow(&t->p, &t->cap, t->len + (size_t)n + 1, 1) != 0) {
      t->ok = 0;
      return;
    }
  }
}

static void vh_repl_cmd_domains(vh_repl_srv_t *s, vh_repl_text_t *t) {
  vh_host_t *h = s->h;
  int w = 4;
  for (int i = 0; i < h->ndoms; i++) {
    int l = (int)strlen(h->doms[i]->name);
    if (l > w) w = l;
  }
  vh_repl_addf(t, "%-*s  %7s  %10s  %12s\n", w, "name", "version", "keys",
               "bytes");
  for (int i = 0; i < h->ndoms; i++) {
    vh_domain_t *d = h->doms[i];
    vh_tab_t *root = vhl_state_root(d->st);
    vh_repl_addf(t, "%-*s  %7lld  %10zu  %12llu\n", w, d->name,
                 (long long)d->version, vh_tab_count(root),
                 (unsigned long long)vh_repl_bytes(vh_tabv(root), 0));
    if (d->retired) /* durable.c / reload.c: not running */
      vh_repl_addf(
          t, "  %s: %s\n", d->refused ? "REFUSED" : "retired",
          d->refused ? d->refused : "not declared by the scripts (state kept)");
  }
  vh_repl_addf(t,
               "(keys: top-level keys of the state; bytes: keys and values "
               "walked now, strings by length, numbers 8, tables 16 each)");
}

static void vh_repl_cmd_stats(vh_repl_srv_t *s, vh_control_conn_t *conn,
                              vh_repl_text_t *t) {
  vh_host_t *h = s->h;
  int64_t now = vh_repl__mono_ms();
  /* Rate since the oldest sample kept: about VH_REPL_RING - 1 s ago, or
   * the start (the first sample) in the first seconds. */
  int oldest = s->nring < VH_REPL_RING ? 0 : s->ring_next;
  int64_t t0 = s->ring[oldest].ms;
  uint64_t s0 = s->ring[oldest].slices;
  double secs = (double)(now - t0) / 1000.0;
  double rate = secs > 0 ? (double)(h->slice_seq - s0) / secs : 0;
  vh_repl_addf(t, "slices:         %llu\n", (unsigned long long)h->slice_seq);
  vh_repl_addf(t, "slice rate:     %.1f/s (last %.1f s)\n", rate, secs);
  vh_repl_addf(t, "handler calls:  %llu\n", (unsigned long long)h->total_calls);
  vh_durable_stats_t ds;
  vh_durable__stats(h, &ds); /* host/runtime/durable.c */
  if (!ds.on) {
    vh_repl_addf(t, "flush lag:      n/a (no store)\n");
    vh_repl_addf(t, "bytes written:  n/a (no store)\n");
  } else {
    vh_repl_addf(t,
                 "flush lag:      %llu slice(s), %.1f ms (last batch %.1f ms "
                 "commit to durable; durable %llu of %llu)\n",
                 (unsigned long long)ds.lag_slices, ds.lag_ms, ds.last_ms,
                 (unsigned long long)ds.durable,
                 (unsigned long long)ds.submitted);
    vh_repl_addf(t, "bytes written:  %.1f MB in %llu batch(es)\n",
                 (double)ds.bytes / 1048576.0, (unsigned long long)ds.batches);
    vh_repl_addf(t, "held replies:   %llu\n", (unsigned long long)ds.held);
    vh_repl_addf(t, "sweep pending:  %llu subtree root(s)\n",
                 (unsigned long long)ds.sweep_pending);
    vh_repl_addf(t, "store writes:   %s (%llu failed attempt(s)%s%s)\n",
                 ds.failing ? "FAILING" : "ok", (unsigned long long)ds.errors,
                 ds.last_error[0] ? "; last: " : "", ds.last_error);
    char why[400];
    if (vh_durable__accepting(h, why,
                              sizeof why)) /* host/runtime/durable.c, HOLD */
      vh_repl_addf(t, "store hold:     none (slices run)\n");
    else
      vh_repl_addf(t, "store hold:     HELD: %s\n", why);
  }
  char last[512];
  int64_t when = vh_log_last_error(last, sizeof last);
  if (when == 0) {
    vh_repl_addf(t, "last error:     none\n");
  } else {
    int64_t ago = vh_host__wall_ms() - when;
    vh_repl_addf(t, "last error:     %.1f s ago: %s\n",
                 (double)(ago > 0 ? ago : 0) / 1000.0, last);
  }
  vh_repl_fork_t *f = vh_repl__fork_of(s, conn);
  if (f)
    vh_repl_addf(t,
                 "fork:           FORKED: this connection's chunks run on a "
                 "private copy made at slice %llu (%llu chunk(s)), never "
                 "written; :unfork drops it\n",
                 (unsigned long long)f->slice, (unsigned long long)f->chunks);
  else
    vh_repl_addf(t, "fork:           none (chunks act on the real state)\n");
  vh_repl_addf(t, "lua heap:       %.1f MB (peak %.1f MB)\n",
               (double)h->heap / 1048576.0, (double)h->heap_peak / 1048576.0);
  vh_repl_addf(t,
               "repl:           %zu connection(s), %llu chunk(s), %llu "
               "rolled back",
               s->ctl ? vh_control_conn_count(s->ctl) : 0,
               (unsigned long long)s->evals, (unsigned long long)s->failed);
}

/* The reply of :mark / :unmark, sent once the batch that holds the
 * change is durable (durable.c's output gate). */
typedef struct vh_repl_mark_reply {
  vh_control_conn_t *conn; /* [owned] the request's reference */
  char text[160];
} vh_repl_mark_reply_t;

static void vh_repl_mark_done(void *arg, int code, vh_val_t reply,
                              const char *err) {
  vh_repl_mark_reply_t *r = arg;
  (void)code;
  (void)reply;
  if (err)
    vh_control_reply(r->conn, VH_CONTROL_ERROR, err, strlen(err));
  else
    vh_control_reply(r->conn, VH_CONTROL_OK, r->text, strlen(r->text));
  free(r);
}

/* :mark NAME / :unmark NAME: 1 when the reply was queued behind the gate
 * (or sent), 0 with an error in t. */
static int vh_repl_cmd_mark(vh_repl_srv_t *s, vh_control_conn_t *conn,
                            const char *args, int unmark, vh_repl_text_t *t) {
  vh_host_t *h = s->h;
  char name[80], err[512];
  size_t n = strlen(args);
  while (n && args[n - 1] == ' ') n--;
  if (n == 0 || n >= sizeof name) {
    vh_repl_addf(t, "usage: :%s NAME", unmark ? "unmark" : "mark");
    return 0;
  }
  memcpy(name, args, n);
  name[n] = '\0';
  vh_repl_mark_reply_t *r = calloc(1, sizeof *r);
  vh_reply_t *q = calloc(1, sizeof *q);
  if (!r || !q) {
    free(r);
    free(q);
    vh_repl_addf(t, "out of memory");
    return 0;
  }
  if (vh_durable__mark(h, name, unmark, err, sizeof err) != 0) {
    free(r);
    free(q);
    vh_repl_addf(t, "%s", err);
    return 0;
  }
  vh_mark_t *ms = NULL;
  size_t nm = 0;
  uint64_t seq = 0;
  vh_durable__marks(h, &ms, &nm);
  for (size_t i = 0; i < nm; i++)
    if (strcmp(ms[i].name, name) == 0) seq = ms[i].seq;
  vh_marks_free(ms, nm);
  if (unmark)
    snprintf(r->text, sizeof r->text, "unmarked %s", name);
  else
    snprintf(r->text, sizeof r->text, "marked %s = version %llu", name,
             (unsigned long long)seq);
  r->conn = conn;
  q->cb = vh_repl_mark_done;
  q->arg = r;
  q->reply = vh_nil();
  if (h->replies_tail)
    h->replies_tail->next = q;
  else
    h->replies = q;
  h->replies_tail = q;
  return 1;
}

static void vh_repl_cmd_marks(vh_repl_srv_t *s, vh_repl_text_t *t) {
  vh_mark_t *ms = NULL;
  size_t n = 0;
  if (vh_durable__marks(s->h, &ms, &n) != 0) {
    vh_repl_addf(t, "out of memory");
    return;
  }
  if (n == 0) vh_repl_addf(t, "no marks");
  for (size_t i = 0; i < n; i++) {
    time_t sec = (time_t)(ms[i].time_ms / 1000);
    struct tm tm;
    char when[32];
    gmtime_r(&sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    vh_repl_addf(t, "%s%-20s version %-10llu %s  ~%llu KB held", i ? "\n" : "",
                 ms[i].name, (unsigned long long)ms[i].seq, when,
                 (unsigned long long)(ms[i].bytes + 1023) / 1024);
  }
  vh_marks_free(ms, n);
}

void vh_repl__command(vh_repl_srv_t *s, vh_control_conn_t *conn,
                      const char *cmd, size_t len) {
  size_t nl = 0;
  while (nl < len && cmd[nl] != ' ') nl++;
  const char *args = nl < len ? cmd + nl + 1 : "";
  vh_repl_text_t t = {NULL, 0, 0, 1};
  int type = VH_CONTROL_OK;
#define VH_REPL_IS(name) (nl == strlen(name) && memcmp(cmd, name, nl) == 0)
  int extra = 0; /* arguments to a command that takes none: refused */
  for (size_t i = nl; i < len; i++) extra |= cmd[i] != ' ' && cmd[i] != '\t';
  if (extra &&
      (VH_REPL_IS("help") || VH_REPL_IS("domains") || VH_REPL_IS("stats") ||
       VH_REPL_IS("marks") || VH_REPL_IS("fork") || VH_REPL_IS("unfork") ||
       VH_REPL_IS("quit"))) {
    type = VH_CONTROL_ERROR;
    vh_repl_addf(&t, "usage: :%.*s (it takes no arguments)", (int)nl, cmd);
  } else if (VH_REPL_IS("help")) {
    vh_repl_addf(&t, "%s", vh_repl_help);
  } else if (VH_REPL_IS("domains")) {
    vh_repl_cmd_domains(s, &t);
  } else if (VH_REPL_IS("stats")) {
    vh_repl_cmd_stats(s, conn, &t);
  } else if (VH_REPL_IS("rollback")) { /* repl_rollback.c */
    char msg[1024];
    if (vh_rollback__command(s->h, args, msg, sizeof msg) != 0)
      type = VH_CONTROL_ERROR;
    vh_repl_addf(&t, "%s", msg);
  } else if (VH_REPL_IS("fork") || VH_REPL_IS("unfork")) {
    char msg[400];
    int rc = VH_REPL_IS("fork") ? vh_repl__fork(s, conn, msg, sizeof msg)
                                : vh_repl__unfork(s, conn, msg, sizeof msg);
    if (rc != 0) type = VH_CONTROL_ERROR;
    vh_repl_addf(&t, "%s", msg);
  } else if (VH_REPL_IS("reload") && vh_repl__reload_rehearse(s, conn, args)) {
    return; /* repl_rehearse.c: answered, or answered when it ends */
  } else if (VH_REPL_IS("reload")) {
    char err[1024] = "";
    if (vh_host_reload(s->h, err, sizeof err) != 0) {
      type = VH_CONTROL_ERROR;
      vh_repl_addf(&t, "reload failed: %s", err);
    } else {
      vh_repl_addf(&t, "%s", err[0] ? err : "reloaded");
    }
  } else if (VH_REPL_IS("mark") || VH_REPL_IS("unmark")) {
    int unmark = VH_REPL_IS("unmark");
    char a[128];
    size_t al = len - (size_t)(args - cmd);
    if (nl >= len) al = 0;
    snprintf(a, sizeof a, "%.*s", (int)(al < 127 ? al : 127), args);
    if (s->h->phase != VH_PHASE_RUN || s->h->stop_requested) {
      type = VH_CONTROL_ERROR;
      vh_repl_addf(&t, "the host is stopping");
    } else if (vh_repl_cmd_mark(s, conn, a, unmark, &t)) {
      return; /* answered behind the output gate */
    } else {
      type = VH_CONTROL_ERROR;
    }
  } else if (VH_REPL_IS("marks")) {
    vh_repl_cmd_marks(s, &t);
  } else if (VH_REPL_IS("quit")) {
    /* the client leaves on its own; nothing to do here */
  } else {
    type = VH_CONTROL_ERROR;
    vh_repl_addf(&t, "unknown command ':%.*s' (:help lists the commands)",
                 (int)(nl > 64 ? 64 : nl), cmd);
  }
#undef VH_REPL_IS
  if (!t.ok)
    vh_repl_reply_str(conn, VH_CONTROL_ERROR, "out of memory");
  else
    vh_control_reply(conn, type, t.p ? t.p : "", t.len);
  free(t.p);
}
