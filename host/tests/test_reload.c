/*
 * test_reload.c - unit tests of hot reload through its C entry point,
 * vh_host_reload (what the REPL's :reload calls), without processes or
 * file watches: a chain of vh_host_call replies rewrites the script,
 * reloads, and calls the domain again. Each step records what it saw; the
 * assertions run after the loop ended (an assertion inside a libuv
 * callback would jump out of uv_run).
 *
 * Checked: the new handler answers the next call with the state intact;
 * a syntax error and a raising migrate leave code, state and version as
 * they were; a good migrate runs once from the old version; a domain the
 * script no longer declares keeps its state and drops events, and comes
 * back when declared again; a reload outside the loop is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"
#include "vh_test.h"
#include "host_util.h"

static char script[512]; /* tmpdir/t.lua */

static void write_script(const char *src) {
  snprintf(script, sizeof script, "%s", write_file("t.lua", src));
}

/* A domain 'c' whose inc returns {n, v = gen, m = state.m}; version and
 * migrate body given. */
static void write_c(int gen, int version, const char *migrate) {
  char src[1024];
  snprintf(src, sizeof src,
           "local ved = require 'ved'\n"
           "ved.domain 'c' {\n"
           "  version = %d,\n"
           "  state = { n = 0 },\n"
           "  migrate = function(state, from) %s end,\n"
           "  start = function(state, ctx) ctx:after(5000, 'giveup') end,\n"
           "  on = {\n"
           "    inc = function(state)\n"
           "      state.n = state.n + 1\n"
           "      return { n = state.n, v = %d, m = state.m }\n"
           "    end,\n"
           "    giveup = function() ved.exit(9) end,\n"
           "  },\n"
           "}\n",
           version, migrate, gen);
  write_script(src);
}

static int64_t get_int(vh_val_t tab, const char *k) {
  vh_val_t v;
  if (tab.type != VH_TTAB) return -998;
  vh_tab_get_str(tab.u.t, k, strlen(k), &v);
  return v.type == VH_TINT ? v.u.i : -999;
}

#define NSTEPS 8

typedef struct step {
  int64_t n, v, m; /* the reply of the call that ended in this step */
  int call_failed; /* that call answered with an error */
  int reload_rc;   /* what this step's vh_host_reload returned */
  char reload_msg[512];
  int64_t version; /* c's version after that reload */
  int64_t state_n; /* c's committed n after that reload */
  int retired;     /* c's retired flag after that reload */
} step_t;

typedef struct chain {
  vh_host_t *h;
  int i; /* steps done */
  step_t s[NSTEPS];
} chain_t;

static void on_reply(void *arg, int code, vh_val_t reply, const char *err);

static void next_call(chain_t *c) {
  if (vh_host_call(c->h, "c", "inc", vh_nil(), on_reply, c) != 0)
    vh_host_stop(c->h, 3);
}

/* One step: record the reply, change the script, reload, record. */
static void on_reply(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  chain_t *c = (chain_t *)arg;
  step_t *s = &c->s[c->i];
  s->call_failed = err != NULL;
  s->n = get_int(reply, "n");
  s->v = get_int(reply, "v");
  s->m = get_int(reply, "m");
  switch (c->i) {
    case 0:
      write_c(2, 1, "");
      break;
    case 1:
      write_script(
          "local ved = require 'ved'\nved.domain 'c' {\n"
          "  on = { inc = function( },\n}\n");
      break;
    case 2:
      write_c(3, 2, "state.n = 100; state.m = from; error('no')");
      break;
    case 3:
      write_c(4, 2, "state.m = from");
      break;
    case 4:
      write_script(
          "local ved = require 'ved'\nved.domain 'd' {\n"
          "  start = function(state, ctx)\n"
          "    ctx:after(5000, 'giveup')\n  end,\n"
          "  on = { giveup = function() ved.exit(9) end },\n}\n");
      break;
    case 5:
      write_c(5, 2, "error('must not run')");
      break;
    default:
      c->i++;
      vh_host_stop(c->h, 0);
      return;
  }
  s->reload_rc = vh_host_reload(c->h, s->reload_msg, sizeof s->reload_msg);
  vh_domain_t *d = vh_host__find(c->h, "c", 1);
  s->version = d ? d->version : -1;
  s->state_n = d ? get_int(vh_tabv(vhl_state_root(d->st)), "n") : -1;
  s->retired = d ? d->retired : -1;
  c->i++;
  next_call(c);
}

TEST_IMPL(reload_swaps_code_and_rolls_back) {
  mk_tmpdir();
  char err[512];
  vh_host_opts_t o;
  vh_host_opts_default(&o);
  o.data_dir = datadir;
  o.watch = 0; /* only explicit reloads */
  o.log_level = VH_LOG_WARN;
  vh_host_t *h = NULL;
  ASSERT_EQ(vh_host_new(&o, &h, err, sizeof err), 0);
  write_c(1, 1, "");
  ASSERT_EQ(vh_host_load(h, script, err, sizeof err), 0);
  /* not running yet */
  ASSERT_EQ(vh_host_reload(h, err, sizeof err), VH_HOST_ESTATE);
  chain_t c;
  memset(&c, 0, sizeof c);
  c.h = h;
  next_call(&c);
  int code = -1;
  ASSERT_EQ(vh_host_run(h, &code), 0);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(c.i, 7);
  step_t *s = c.s;
  /* 0: v1 answered; reload to v2 */
  ASSERT_EQ(s[0].n, 1);
  ASSERT_EQ(s[0].v, 1);
  ASSERT_EQ(s[0].reload_rc, 0);
  ASSERT(strstr(s[0].reload_msg, "reload: 1 script, domains changed: c in") !=
         NULL);
  ASSERT_EQ(s[0].version, 1);
  /* 1: v2 answers with the state kept; a syntax error fails */
  ASSERT_EQ(s[1].n, 2);
  ASSERT_EQ(s[1].v, 2);
  ASSERT_EQ(s[1].reload_rc, VH_HOST_ELOAD);
  ASSERT(strstr(s[1].reload_msg, "t.lua:3:") != NULL);
  /* 2: still v2; a raising migrate fails, state and version unchanged */
  ASSERT_EQ(s[2].n, 3);
  ASSERT_EQ(s[2].v, 2);
  ASSERT_EQ(s[2].reload_rc, VH_HOST_ELOAD);
  ASSERT(strstr(s[2].reload_msg,
                "domain 'c': migrate from version 1 raised:") != NULL);
  ASSERT(strstr(s[2].reload_msg, "no") != NULL);
  ASSERT_EQ(s[2].version, 1);
  ASSERT_EQ(s[2].state_n, 3);
  /* 3: still v2, no m; a good migrate runs from version 1 */
  ASSERT_EQ(s[3].n, 4);
  ASSERT_EQ(s[3].v, 2);
  ASSERT_EQ(s[3].m, -999);
  ASSERT_EQ(s[3].reload_rc, 0);
  ASSERT_EQ(s[3].version, 2);
  ASSERT_EQ(s[3].state_n, 4);
  /* 4: v4 with the migrated state; then c is no longer declared */
  ASSERT_EQ(s[4].n, 5);
  ASSERT_EQ(s[4].v, 4);
  ASSERT_EQ(s[4].m, 1);
  ASSERT_EQ(s[4].reload_rc, 0);
  ASSERT(strstr(s[4].reload_msg, "(added: d; removed: c)") != NULL);
  ASSERT_EQ(s[4].retired, 1);
  ASSERT_EQ(s[4].state_n, 5);
  /* 5: the call to the retired c fails; c comes back, same version: its
   * migrate must not run */
  ASSERT_EQ(s[5].call_failed, 1);
  ASSERT_EQ(s[5].reload_rc, 0);
  ASSERT(strstr(s[5].reload_msg, "(added: c; removed: d)") != NULL);
  ASSERT_EQ(s[5].retired, 0);
  ASSERT_EQ(s[5].version, 2);
  /* 6: v5 runs on the kept state */
  ASSERT_EQ(s[6].n, 6);
  ASSERT_EQ(s[6].v, 5);
  ASSERT_EQ(s[6].m, 1);
  vh_host_free(h);
  rm_tmpdir();
}

VH_TEST_MAIN(TEST_ENTRY(reload_swaps_code_and_rolls_back))
