/*
 * repl_server.c - the REPL inside the host: the control socket's requests
 * (EVAL, COMPLETE, COMMAND; see host/control/vh_control.h) answered from
 * the live Lua state and domain states.
 *
 * EVAL. A chunk is compiled when it arrives, lua.c style: `return <code>`
 * first so that an expression prints, then the code itself. When both
 * fail and either message ends in "<eof>" the reply is INCOMPLETE (the
 * client reads more lines; "either", because "1 +" fails as a statement
 * at '1' but is an expression that ran out of input); any other syntax
 * error is an ERROR at once (nothing ran). A chunk that compiles is queued
 * as a work item whose run callback is vh_repl_run (vh_sched__queue_work,
 * in the same FIFO as vh_host_call's calls; the scheduler knows nothing of
 * the REPL) and runs in a later slice as one atomic unit of work:
 *
 *   vh_sys__begin; vhl_tx_begin on EVERY domain (each root also retained
 *   here as `saved`); guard none, not strict (every proxy usable);
 *   watchdog and memory limit armed as for a handler call
 *   pcall(chunk) -> pretty.results(...) -> one string
 *   ok:    commit every domain; the chunk's messages / timers join the
 *          indexes (vh_sys__pending_apply); reply OK with the string
 *   error: roll back every domain to `saved`; drop the chunk's messages
 *          and timers (vh_sys__pending_drop); reply ERROR with the message
 *          and traceback
 *
 * A refused domain (durable.c: migrate failed, or a downgrade) is
 * read-only here: a chunk that changed its state fails with "domain 'x'
 * is refused: <why>" and is rolled back as a whole; send() and ved.send()
 * to it raise the same. Its state stays readable (domains.x.state, and
 * domains.x.refused says why).
 *
 * The reply goes through vh_sched_reply like a call's, so it is sent at
 * the end of the slice, once the slice is durable. During a store
 * hold (sched.c, HOLD) chunks still run, but only to read: a chunk that
 * changed anything (a state, a message, a timer) is rolled back and
 * answered "store backpressure: hold (why): this chunk changes state, so
 * it was rolled back ..."; a read-only one is answered at once. A chunk that
 * changed domains logs "repl: chunk changed a, b" at info level (an audit
 * trail of hand edits).
 *
 * THE ENVIRONMENT. One table per host, kept for the host's life (so
 * `x = 1` in one chunk, or one console, is seen by the next; locals do not
 * survive), whose __index is _G. It holds:
 *   domains   { <name> = { state = root proxy, version = n, name = s } },
 *             rebuilt before each chunk (and for each completion)
 *   send(domain, event, payload)  run that domain's handler now, inside
 *             this chunk: a nested handler call (guard set to the domain,
 *             h->cur = it, its ctx) whose writes, messages and timers are
 *             part of the chunk's transaction. Returns the handler's return
 *             value. A handler that raises is undone on its own (a
 *             savepoint: the domain's transaction is committed and begun
 *             again before the call, rolled back to that point if it
 *             raises; its pending effects are kept apart and merged only
 *             on success), then the error is raised in the chunk: uncaught,
 *             it rolls back the whole chunk; caught with pcall, the chunk
 *             goes on without that handler's effects.
 *   at(V)     read-only views of retained version V (repl_at.c)
 *   diff(a, b, path)  what changed between two versions (repl_diff.c)
 *   ved       a copy of the ved module whose send queues a message as part
 *             of the chunk (the module's own send, outside handlers, would
 *             take effect at once even if the chunk then fails)
 *   pretty    the printer (scripts/pretty.lua)
 *   print     prints into the reply (before the results), not the host's
 *             stdout
 *
 * FORK. `:fork` gives the connection a private copy of every domain's
 * current root (retained: O(1), nodes are shared, nothing is copied);
 * its later chunks run on that copy instead of the live states: before
 * the chunk each domain's root is swapped for the fork's, after it the
 * chunk's result becomes the fork's root and the live root is put back.
 * The store's flush walks the live roots only, so nothing a forked chunk
 * writes is ever written to disk, and the live state, events, timers and
 * messages go on as if the fork did not exist. A forked chunk may not send
 * messages or set timers (they would leave the fork): such a chunk is
 * rolled back with an error saying so; send(domain, event) runs that
 * handler on the fork. `:unfork`, or the connection closing, drops the
 * fork. The client shows "ved(fork)> " while forked; :stats names it.
 * LIMITATION: nodes the live state replaced while a fork still shares
 * them are freed when the fork lets go of them, so their deaths are
 * recorded in that later slice (kept a little longer, never lost).
 *
 * COMPLETE and COMMAND are answered at once, from the request callback,
 * by repl_info.c.
 *
 * OUTPUT. The control socket (control.c) holds at most one reply per
 * client: the next request of a connection is taken only once its reply
 * was written out. A reply over 64 MiB is replaced by an ERROR, a client
 * that reads nothing of its reply for 30 s is disconnected; both are
 * logged as warnings ("[repl] ...").
 *
 * LIFE. vh_repl_server_attach (main.c) registers the server's start and
 * stop hooks with the runtime (vh_host__hook). vh_repl_start (the START
 * hook, when the loop starts) builds the
 * environment and listens on DATA/control.sock (mode 0600); a failure is a
 * warning and the host runs without a REPL. A 1 s timer (unref'd) samples
 * the slice counter for :stats. vh_repl_stop (the STOP hook, after the loop
 * ended,
 * before its handles are closed) stops the listener and frees the server;
 * chunks still queued are answered "vedhost stopped before the call ran"
 * by sched.c, and their replies only release their connection.
 *
 * Threads: everything here runs on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_int.h"
#include "vh_log.h"
#include "vh_repl_server.h"

static int vh_repl_run(vh_host_t *h, vh_work_t *w, vh_val_t *reply, char **err);

/* One EVAL request on its way through the work queue. */
typedef struct vh_repl_req {
  vh_host_t *h;            /* [borrowed] */
  vh_control_conn_t *conn; /* [owned] the request's reference */
  int fn_ref;              /* registry: the compiled chunk */
} vh_repl_req_t;

int64_t vh_repl__mono_ms(void) {
  return vh_host__mono_ns() / 1000000;
}

static void vh_repl_reply_str(vh_control_conn_t *conn, int type,
                              const char *s) {
  vh_control_reply(conn, type, s, strlen(s));
}

/* ---- the environment -------------------------------------------------- */

void vh_repl__push_domains(lua_State *L, vh_host_t *h) {
  lua_createtable(L, 0, h->ndoms);
  for (int i = 0; i < h->ndoms; i++) {
    vh_domain_t *d = h->doms[i];
    lua_createtable(L, 0, 3);
    vhl_state_push_root(L, d->st);
    lua_setfield(L, -2, "state");
    lua_pushinteger(L, (lua_Integer)d->version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, d->name);
    lua_setfield(L, -2, "name");
    if (d->refused) { /* read-only: see vh_repl_eval */
      lua_pushstring(L, d->refused);
      lua_setfield(L, -2, "refused");
    }
    lua_setfield(L, -2, d->name);
  }
}

/* The server, or raise: the REPL helpers work only inside a chunk (a
 * domain script that got hold of them through _G cannot use them). */
static vh_repl_srv_t *vh_repl_check_active(lua_State *L, const char *fn) {
  vh_host_t *h = vh_host__of(L);
  if (!h->repl || !h->repl->active || h->cur)
    luaL_error(L, "%s: only available in a REPL chunk", fn);
  return h->repl;
}

/* The domain named by the string at idx, or raise. */
static vh_domain_t *vh_repl_check_domain(lua_State *L, int idx,
                                         const char *fn) {
  size_t nl;
  const char *name = luaL_checklstring(L, idx, &nl);
  vh_domain_t *d = vh_host__find(vh_host__of(L), name, nl);
  if (!d) luaL_error(L, "%s: no domain '%s'", fn, name);
  if (d->refused) /* durable.c: its stored state did not start */
    luaL_error(L, "%s: domain '%s' is refused: %s", fn, name, d->refused);
  return d;
}

/* A box for a value built in C: released by __gc, so that nothing leaks
 * when a later step raises. */
#define VH_REPL_BOX_MT "ved.repl.box"

static int vh_repl_box_gc(lua_State *L) {
  vh_val_t *v = (vh_val_t *)luaL_checkudata(L, 1, VH_REPL_BOX_MT);
  vh_val_release(*v);
  *v = vh_nil();
  return 0;
}

static vh_val_t *vh_repl_box(lua_State *L) {
  vh_val_t *v = (vh_val_t *)lua_newuserdatauv(L, sizeof *v, 0);
  *v = vh_nil();
  if (luaL_newmetatable(L, VH_REPL_BOX_MT)) {
    lua_pushcfunction(L, vh_repl_box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return v;
}

/* Move the pending effects `add` (a nested call's) to the end of `into`.
 * Returns 0, or VH_ENOMEM with nothing moved. */
static int vh_repl_pend_merge(vh_pending_t *into, vh_pending_t *add) {
  if (add->nseqs > 0) {
    size_t n = into->nseqs + add->nseqs;
    if (n > into->capseqs) {
      uint64_t *p = realloc(into->seqs, n * sizeof *p);
      if (!p) return VH_ENOMEM;
      into->seqs = p;
      into->capseqs = n;
    }
  }
  if (add->ndues > 0) {
    size_t n = into->ndues + add->ndues;
    if (n > into->capdues) {
      vh_due_t *p = realloc(into->dues, n * sizeof *p);
      if (!p) return VH_ENOMEM;
      into->dues = p;
      into->capdues = n;
    }
  }
  if (add->nseqs > 0)
    memcpy(into->seqs + into->nseqs, add->seqs, add->nseqs * sizeof(uint64_t));
  into->nseqs += add->nseqs;
  if (add->ndues > 0)
    memcpy(into->dues + into->ndues, add->dues, add->ndues * sizeof(vh_due_t));
  into->ndues += add->ndues;
  vh_every_t **tail = &into->everies;
  while (*tail) tail = &(*tail)->next;
  *tail = add->everies;
  add->everies = NULL;
  add->nseqs = add->ndues = 0;
  return 0;
}

/* send(domain, event, payload): the domain's handler, now, inside the
 * chunk (see the file comment). */
static int vh_repl_send(lua_State *L) {
  vh_repl_check_active(L, "send");
  vh_host_t *h = vh_host__of(L);
  vh_domain_t *d = vh_repl_check_domain(L, 1, "send");
  size_t elen;
  const char *ev = luaL_checklstring(L, 2, &elen);
  lua_settop(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->on_ref);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, -2) != LUA_TFUNCTION)
    return luaL_error(L, "send: domain '%s' has no handler for event '%s'",
                      d->name, ev);
  lua_replace(L, 4); /* 4: the handler */
  vh_val_t *box = vh_repl_box(L);
  vhl_tovalue(L, 3, "payload", box); /* a plain copy, as for any event */
  lua_pushcfunction(L, vh_host__msgh);
  int msgh = lua_gettop(L);
  lua_pushvalue(L, 4);
  vhl_state_push_root(L, d->st);
  vhl_pushvalue(L, *box);
  lua_rawgeti(L, LUA_REGISTRYINDEX, d->ctx_ref);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "event");
  lua_pushinteger(L, vh_host__now(h));
  lua_setfield(L, -2, "now");

  /* Savepoint: what the chunk did to d so far becomes the base. Nothing
   * below raises until the handler runs. */
  vhl_tx_commit(d->st);
  vhl_tx_begin(d->st);
  vh_pending_t outer = h->pend;
  memset(&h->pend, 0, sizeof h->pend);
  h->cur = d;
  vhl_guard(L, d->st);
  int status = lua_pcall(L, 3, 1, msgh);
  vhl_guard(L, NULL);
  h->cur = NULL;
  h->slice_calls++;
  h->total_calls++;
  vh_pending_t inner = h->pend;
  h->pend = outer;
  if (status == LUA_OK && vh_repl_pend_merge(&h->pend, &inner) == 0) {
    free(inner.seqs);
    free(inner.dues);
    return 1;
  }
  /* Undo the handler: its writes, then its messages and timers. */
  vhl_tx_rollback(d->st);
  vhl_tx_begin(d->st);
  h->pend = inner;
  vh_sys__pending_drop(h);
  free(inner.seqs);
  free(inner.dues);
  h->pend = outer;
  if (status == LUA_OK) return luaL_error(L, "send: out of memory");
  if (h->abort != VH_ABORT_NONE) return lua_error(L); /* keep aborting */
  const char *msg = lua_tostring(L, -1);
  return luaL_error(L, "send: handler '%s' of domain '%s' failed: %s", ev,
                    d->name, msg ? msg : "(no message)");
}

/* The REPL's ved.send(domain, event, payload): a message queued as part of
 * the chunk, delivered after its slice (if the chunk commits). */
static int vh_repl_ved_send(lua_State *L) {
  vh_repl_check_active(L, "ved.send");
  vh_host_t *h = vh_host__of(L);
  vh_domain_t *to = vh_repl_check_domain(L, 1, "ved.send");
  size_t elen;
  const char *ev = luaL_checklstring(L, 2, &elen);
  lua_settop(L, 3);
  vh_val_t *box = vh_repl_box(L);
  vhl_tovalue(L, 3, "payload", box);
  vh_str_t *evs = vh_str_new(ev, elen);
  if (!evs) return luaL_error(L, "ved.send: out of memory");
  vh_val_t pv = *box;
  *box = vh_nil();
  vh_sys__begin(h);
  if (vh_sys__send(h, to, NULL, evs, pv) != 0) /* steals evs and pv */
    return luaL_error(L, "ved.send: out of memory");
  return 0;
}

/* print(...) in the REPL: a line into the reply. Outside a chunk (a domain
 * script that got hold of it) it is the original print (upvalue 1). */
static int vh_repl_print(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  if (!h->repl || !h->repl->active || h->cur) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
  }
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->repl->out_ref);
  lua_insert(L, -2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* Protected: build the environment, load pretty, make the private pairs.
 * Light userdata 1: the server. */
static int vh_repl_setup(lua_State *L) {
  vh_repl_srv_t *s = (vh_repl_srv_t *)lua_touserdata(L, 1);
  vh_host_t *h = s->h;
  vh_host__push_pretty(L);
  lua_pushvalue(L, -1);
  s->pretty_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  int pretty = lua_gettop(L);

  lua_newtable(L); /* private copies of the proxy-aware iterators */
  vhl_open_compat(L, lua_gettop(L));
  lua_getfield(L, -1, "pairs");
  s->pairs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);

  lua_newtable(L);
  s->out_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  lua_newtable(L); /* the environment */
  int env = lua_gettop(L);
  lua_createtable(L, 0, 2);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "ved.repl.env"); /* setmetatable(_ENV, nil) raises */
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, env);
  vh_repl__push_domains(L, h);
  lua_setfield(L, env, "domains");
  lua_pushcfunction(L, vh_repl_send);
  lua_setfield(L, env, "send");
  lua_pushcfunction(L, vh_repl__at); /* repl_at.c */
  lua_setfield(L, env, "at");
  lua_pushcfunction(L, vh_repl__diff); /* repl_diff.c */
  lua_setfield(L, env, "diff");
  lua_pushcfunction(L, vh_repl__replay); /* repl_replay.c */
  lua_setfield(L, env, "replay");
  lua_pushvalue(L, pretty);
  lua_setfield(L, env, "pretty");
  lua_getglobal(L, "print");
  lua_pushcclosure(L, vh_repl_print, 1);
  lua_setfield(L, env, "print");
  lua_newtable(L); /* ved: a copy of the module, with our send */
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->ved_ref);
  vh_host__merge_top(L, -2);
  lua_pushcfunction(L, vh_repl_ved_send);
  lua_setfield(L, -2, "send");
  lua_setfield(L, env, "ved");
  lua_pushvalue(L, env);
  s->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* ---- FORK ------------------------------------------------------------- */

vh_repl_fork_t *vh_repl__fork_of(vh_repl_srv_t *s, vh_control_conn_t *conn) {
  for (vh_repl_fork_t *f = s ? s->forks : NULL; f; f = f->next)
    if (f->conn == conn) return f;
  return NULL;
}

/* The slot of name in f, added (holding NULL) when absent; NULL on out of
 * memory. */
static vh_tab_t **vh_repl_fork_slot(vh_repl_fork_t *f, const char *name) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->names[i], name) == 0) return &f->roots[i];
  if (f->n == f->cap) {
    size_t nc = f->cap ? 2 * f->cap : 8;
    char **nn = realloc(f->names, nc * sizeof *nn);
    if (!nn) return NULL;
    f->names = nn;
    vh_tab_t **nr = realloc(f->roots, nc * sizeof *nr);
    if (!nr) return NULL;
    f->roots = nr;
    f->cap = nc;
  }
  if (!(f->names[f->n] = strdup(name))) return NULL;
  f->roots[f->n] = NULL;
  return &f->roots[f->n++];
}

static void vh_repl_fork_free(vh_repl_fork_t *f) {
  for (size_t i = 0; i < f->n; i++) {
    free(f->names[i]);
    if (f->roots[i]) vh_tab_release(f->roots[i]);
  }
  free(f->names);
  free(f->roots);
  free(f);
}

int vh_repl__fork(vh_repl_srv_t *s, vh_control_conn_t *conn, char *msg,
                  size_t cap) {
  vh_host_t *h = s->h;
  if (vh_repl__fork_of(s, conn)) {
    snprintf(msg, cap, "already forked (:unfork drops the fork)");
    return -1;
  }
  vh_repl_fork_t *f = calloc(1, sizeof *f);
  if (!f) goto oom;
  f->conn = conn;
  f->slice = h->slice_seq;
  for (int i = 0; i < h->ndoms; i++) {
    vh_tab_t **slot = vh_repl_fork_slot(f, h->doms[i]->name);
    if (!slot) goto oom;
    *slot = vhl_state_root(h->doms[i]->st);
    vh_tab_retain(*slot);
  }
  f->next = s->forks;
  s->forks = f;
  snprintf(msg, cap,
           "forked: this connection's chunks now run on a private copy of "
           "the current state (%d domain(s)); nothing they do is written, "
           "and events keep running on the real state; :unfork drops it",
           h->ndoms);
  return 0;
oom:
  if (f) vh_repl_fork_free(f);
  snprintf(msg, cap, "out of memory");
  return -1;
}

int vh_repl__unfork(vh_repl_srv_t *s, vh_control_conn_t *conn, char *msg,
                    size_t cap) {
  for (vh_repl_fork_t **pp = &s->forks; *pp; pp = &(*pp)->next) {
    vh_repl_fork_t *f = *pp;
    if (f->conn != conn) continue;
    *pp = f->next;
    snprintf(msg, cap,
             "unforked: the fork's changes (%llu chunk(s)) were dropped; "
             "chunks run on the real state again",
             (unsigned long long)f->chunks);
    vh_repl_fork_free(f);
    return 0;
  }
  snprintf(msg, cap, "not forked (:fork makes a private copy)");
  return -1;
}

/* The connection closes: its fork goes. */
static void vh_repl_on_closed(vh_control_conn_t *conn, void *arg) {
  char msg[256];
  vh_repl_srv_t *s = (vh_repl_srv_t *)arg;
  if (vh_repl__fork_of(s, conn)) vh_repl__unfork(s, conn, msg, sizeof msg);
}

/* Swap every domain's live root for the fork's (into = 1; live[i] keeps
 * the live root) or back (into = 0: the chunk's result becomes the fork's
 * root). Returns -1 (nothing swapped) on out of memory going in. */
static int vh_repl_fork_swap(vh_host_t *h, vh_repl_fork_t *f, vh_tab_t **live,
                             int into) {
  for (int i = 0; i < h->ndoms; i++) {
    vhl_state_t *st = h->doms[i]->st;
    vh_tab_t **slot = vh_repl_fork_slot(f, h->doms[i]->name);
    if (into) {
      if (!slot) {
        while (i-- > 0) {
          vh_tab_t **sl = vh_repl_fork_slot(f, h->doms[i]->name);
          vh_tab_release(*sl);
          *sl = vhl_state_root(h->doms[i]->st);
          vh_tab_retain(*sl);
          vhl_state_set_root(h->L, h->doms[i]->st, live[i]);
        }
        return -1;
      }
      live[i] = vhl_state_root(st);
      vh_tab_retain(live[i]);
      if (!*slot) { /* a domain declared since the fork: its live root */
        *slot = live[i];
        vh_tab_retain(*slot);
      }
      vh_tab_retain(*slot);
      vhl_state_set_root(h->L, st, *slot);
    } else {
      vh_tab_t *mine = vhl_state_root(st);
      vh_tab_retain(mine);
      if (slot) {
        vh_tab_release(*slot);
        *slot = mine;
      } else {
        vh_tab_release(mine); /* out of memory: this chunk's result is lost */
      }
      vhl_state_set_root(h->L, st, live[i]);
    }
  }
  return 0;
}

/* ---- EVAL ------------------------------------------------------------- */

/* What vh_repl_compile needs and gives (on the C stack of
 * vh_repl_on_eval). */
typedef struct vh_repl_src {
  vh_repl_srv_t *s;
  const char *code; /* [borrowed] */
  size_t len;
  int fn_ref;     /* out: registry ref of the compiled chunk, or LUA_NOREF */
  int incomplete; /* out: the chunk ends too early */
} vh_repl_src_t;

/* Nonzero when the load error on top of the stack says the chunk ended
 * too early (lua.c's test: the message ends in "<eof>"). */
static int vh_repl_at_eof(lua_State *L, int status) {
  size_t n, k = sizeof "<eof>" - 1;
  const char *msg = lua_tolstring(L, -1, &n);
  return status == LUA_ERRSYNTAX && msg && n >= k &&
         strcmp(msg + n - k, "<eof>") == 0;
}

/* Protected: compile the chunk as the REPL does, `return <code>` first so
 * that an expression prints, else the code. On success the function (its
 * _ENV the REPL's) goes into the registry (src->fn_ref); else the error
 * message of the second attempt is returned. The chunk is incomplete when
 * either attempt ran into the end: "1 +" fails as a statement at '1' but
 * is an unfinished expression. Light userdata 1: the vh_repl_src_t. */
static int vh_repl_compile(lua_State *L) {
  vh_repl_src_t *src = (vh_repl_src_t *)lua_touserdata(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "return ");
  luaL_addlstring(&b, src->code, src->len);
  luaL_pushresult(&b);
  size_t rl;
  const char *ret = lua_tolstring(L, -1, &rl);
  int st = luaL_loadbufferx(L, ret, rl, "=repl", "t");
  if (st != LUA_OK) {
    int eof = vh_repl_at_eof(L, st);
    lua_pop(L, 1);
    st = luaL_loadbufferx(L, src->code, src->len, "=repl", "t");
    if (st != LUA_OK) {
      src->incomplete = eof || vh_repl_at_eof(L, st);
      return 1;
    }
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, src->s->env_ref);
  lua_setupvalue(L, -2, 1); /* _ENV */
  src->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* Reply callback of an EVAL work item: at the end of its slice, or when
 * the host stops before it ran. */
static void vh_repl_done(void *arg, int code, vh_val_t reply, const char *err) {
  vh_repl_req_t *rq = (vh_repl_req_t *)arg;
  (void)code; /* the REPL shows the text */
  if (err) {
    vh_repl_reply_str(rq->conn, VH_CONTROL_ERROR, err);
  } else if (reply.type == VH_TSTR) {
    vh_control_reply(rq->conn, VH_CONTROL_OK, vh_str_data(reply.u.s),
                     vh_str_len(reply.u.s));
  } else { /* success always has a string: the error text was lost */
    vh_repl_reply_str(rq->conn, VH_CONTROL_ERROR,
                      "out of memory (the chunk was rolled back)");
  }
  luaL_unref(rq->h->L, LUA_REGISTRYINDEX, rq->fn_ref);
  free(rq);
}

static void vh_repl_on_eval(vh_repl_srv_t *s, vh_control_conn_t *conn,
                            const char *code, size_t len) {
  vh_host_t *h = s->h;
  lua_State *L = h->L;
  if (h->phase != VH_PHASE_RUN || h->stop_requested) {
    vh_repl_reply_str(conn, VH_CONTROL_ERROR, "the host is stopping");
    return;
  }
  int top = lua_gettop(L);
  vh_repl_src_t src = {s, code, len, LUA_NOREF, 0};
  lua_pushcfunction(L, vh_repl_compile);
  lua_pushlightuserdata(L, &src);
  int st = lua_pcall(L, 1, 1, 0);
  if (st != LUA_OK || src.fn_ref == LUA_NOREF) {
    const char *msg = lua_tostring(L, -1);
    vh_repl_reply_str(conn,
                      src.incomplete ? VH_CONTROL_INCOMPLETE : VH_CONTROL_ERROR,
                      msg ? msg : "cannot compile the chunk");
    lua_settop(L, top);
    return;
  }
  lua_settop(L, top);
  vh_repl_req_t *rq = calloc(1, sizeof *rq);
  vh_work_t *w = calloc(1, sizeof *w);
  if (!rq || !w) {
    free(rq);
    free(w);
    luaL_unref(L, LUA_REGISTRYINDEX, src.fn_ref);
    vh_repl_reply_str(conn, VH_CONTROL_ERROR, "out of memory");
    return;
  }
  rq->h = h;
  rq->conn = conn;
  rq->fn_ref = src.fn_ref;
  vh_str_retain(s->tag);
  w->kind = VH_WORK_CALL;
  w->hdr = s->tag;
  w->payload = vh_nil();
  w->run = vh_repl_run;
  w->in_hold = 1; /* read-only chunks answer during a hold */
  w->cb = vh_repl_done;
  w->arg = rq;
  vh_sched__queue_work(h, w);
}

/* Protected part of a chunk. Stack: the chunk. Returns the reply text. */
static int vh_repl_tramp(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  vh_repl_srv_t *s = h->repl;
  lua_newtable(L);
  lua_rawseti(L, LUA_REGISTRYINDEX, s->out_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->env_ref);
  vh_repl__push_domains(L, h);
  lua_setfield(L, -2, "domains");
  lua_pop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->pretty_ref);
  lua_getfield(L, -1, "results");
  lua_remove(L, -2);
  lua_insert(L, 1);
  lua_call(L, 0, LUA_MULTRET);
  lua_call(L, lua_gettop(L) - 1, 1);
  int res = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->out_ref); /* printed lines first */
  int out = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, out);
  if (n == 0) {
    lua_settop(L, res);
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, out, i);
    luaL_addvalue(&b);
  }
  lua_pushvalue(L, res);
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  return 1;
}

static char *vh_repl_strdup(const char *s) {
  char *p = strdup(s ? s : "(no error message)");
  return p;
}

/* Log the names of the domains whose root differs from saved[]. */
static void vh_repl_log_changes(vh_host_t *h, vh_tab_t **saved) {
  char names[512];
  size_t used = 0;
  names[0] = '\0';
  for (int i = 0; i < h->ndoms && used < sizeof names; i++) {
    if (vhl_state_root(h->doms[i]->st) == saved[i]) continue;
    used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                             used ? ", " : "", h->doms[i]->name);
  }
  if (used) vh_log(VH_LOG_INFO, "repl", "chunk changed %s", names);
}

/* Did the chunk change anything (a domain's root, the system state, a
 * message, a timer)? For chunks run during a hold (sched.c). */
static int vh_repl_wrote(vh_host_t *h, vh_tab_t **saved) {
  for (int i = 0; i < h->ndoms; i++)
    if (vhl_state_root(h->doms[i]->st) != saved[i]) return 1;
  if (h->sys_open && h->sys_work != vhl_state_root(h->sys)) return 1;
  return h->pend.nseqs || h->pend.ndues || h->pend.everies;
}

/* Run the chunk of work item w as one atomic unit over every domain and
 * the system state. On success *reply [new] is the printed results (a
 * string) and *err NULL; on failure *err [new, malloc'ed] is the message
 * and traceback (everything the chunk did is rolled back) and *reply nil. */
static void vh_repl_eval(vh_host_t *h, vh_work_t *w, vh_val_t *reply,
                         char **err) {
  vh_repl_req_t *rq = (vh_repl_req_t *)w->arg;
  vh_repl_srv_t *s = h->repl;
  lua_State *L = h->L;
  *reply = vh_nil();
  *err = NULL;
  int n = h->ndoms;
  vh_tab_t **saved = calloc((size_t)(n > 0 ? n : 1), sizeof *saved);
  vh_repl_fork_t *fork = vh_repl__fork_of(s, rq->conn);
  vh_tab_t **live = fork ? calloc((size_t)(n > 0 ? n : 1), sizeof *live) : NULL;
  if (!s || !saved || (fork && !live) ||
      (fork && vh_repl_fork_swap(h, fork, live, 1) != 0)) {
    free(saved);
    free(live);
    *err = vh_repl_strdup(s ? "out of memory" : "the REPL is not running");
    return;
  }
  if (fork) fork->chunks++;
  vh_sys__begin(h);
  int opened = 0;
  for (; opened < n; opened++) {
    vhl_state_t *st = h->doms[opened]->st;
    if (vhl_tx_begin(st) != 0) break;
    saved[opened] = vhl_state_root(st);
    vh_tab_retain(saved[opened]);
  }
  int top = lua_gettop(L);
  int status = LUA_ERRRUN, aborted = VH_ABORT_NONE;
  if (opened == n) {
    lua_pushcfunction(L, vh_host__msgh);
    lua_pushcfunction(L, vh_repl_tramp);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rq->fn_ref);
    vhl_guard(L, NULL);
    vhl_guard_strict(L, 0); /* the REPL may touch every domain */
    h->cur = NULL;
    s->active = 1;
    vh_host__arm(h);
    status = lua_pcall(L, 1, 1, top + 1);
    aborted = vh_host__disarm(h);
    s->active = 0;
    vhl_guard_strict(L, 1);
    vhl_guard(L, NULL);
  } else {
    lua_pushfstring(L, "internal: a transaction is already open on '%s'",
                    h->doms[opened]->name);
  }
  s->evals++;
  for (int i = 0; status == LUA_OK && i < n; i++) {
    vh_domain_t *d = h->doms[i]; /* a refused domain is read-only */
    if (d->refused && vhl_state_root(d->st) != saved[i]) {
      lua_pushfstring(L,
                      "domain '%s' is refused: %s; its state is read-only "
                      "(the chunk was rolled back)",
                      d->name, d->refused);
      status = LUA_ERRRUN;
    }
  }
  if (status == LUA_OK && fork &&
      (h->pend.nseqs || h->pend.ndues || h->pend.everies)) {
    lua_settop(L, top);
    lua_pushliteral(L,
                    "a forked chunk cannot send messages or set timers (they "
                    "would leave the fork); the chunk was rolled back (:unfork "
                    "to act on the real state)");
    status = LUA_ERRRUN;
  }
  if (status == LUA_OK && !fork && h->in_hold && vh_repl_wrote(h, saved)) {
    /* HOLD (sched.c): the store takes no slice now; refuse, do not queue. */
    char why[400];
    if (vh_durable__accepting(h, why, sizeof why))
      snprintf(why, sizeof why, "store backpressure: hold");
    lua_settop(L, top);
    lua_pushfstring(L,
                    "%s: this chunk changes state, so it was rolled back "
                    "(read-only chunks still run; retry once the store "
                    "accepts writes again)",
                    why);
    status = LUA_ERRRUN;
  }
  if (status == LUA_OK) {
    size_t len;
    const char *out = lua_tolstring(L, -1, &len);
    vh_str_t *str = vh_str_new(out ? out : "", out ? len : 0);
    if (str) {
      for (int i = 0; i < n; i++) vhl_tx_commit(h->doms[i]->st);
      vh_sys__pending_apply(h);
      if (!fork) vh_repl_log_changes(h, saved);
      for (int i = 0; i < n; i++) vh_tab_release(saved[i]);
      free(saved);
      if (fork) vh_repl_fork_swap(h, fork, live, 0);
      free(live);
      *reply = vh_strv(str);
      lua_settop(L, top);
      return;
    }
    lua_pushliteral(L, "out of memory");
  }
  /* Roll everything back to the roots the chunk started from. */
  s->failed++;
  for (int i = 0; i < opened; i++) {
    vhl_state_t *st = h->doms[i]->st;
    vhl_tx_rollback(st);
    if (vhl_state_root(st) != saved[i])
      vhl_state_set_root(L, st, saved[i]); /* steals; cannot raise here */
    else
      vh_tab_release(saved[i]);
  }
  free(saved);
  vh_sys__pending_drop(h);
  if (fork) vh_repl_fork_swap(h, fork, live, 0);
  free(live);
  const char *msg = lua_tostring(L, -1);
  if (status == LUA_ERRMEM || aborted != VH_ABORT_NONE) {
    /* Say what happened in the REPL's words; keep the traceback. */
    const char *tb = msg ? strchr(msg, '\n') : NULL;
    char first[200];
    if (aborted == VH_ABORT_TIME)
      snprintf(first, sizeof first,
               "chunk aborted: it ran past the time budget of %d ms "
               "(--handler-timeout); everything it did was rolled back",
               h->opts.handler_timeout_ms);
    else
      snprintf(first, sizeof first,
               "chunk aborted: not enough memory (Lua heap over "
               "--memory-limit of %d MB); everything it did was rolled back",
               (int)(h->opts.memory_limit >> 20));
    size_t fl = strlen(first), tl = tb ? strlen(tb) : 0;
    *err = malloc(fl + tl + 1);
    if (*err) {
      memcpy(*err, first, fl);
      memcpy(*err + fl, tb ? tb : "", tl + 1);
    }
  } else {
    *err = vh_repl_strdup(msg);
  }
  lua_settop(L, top);
  if (status == LUA_ERRMEM || aborted == VH_ABORT_MEM)
    lua_gc(L, LUA_GCCOLLECT, 0);
}

/* ---- the server ------------------------------------------------------- */

static void vh_repl_on_request(vh_control_conn_t *conn, int type,
                               const char *payload, size_t len, void *arg) {
  vh_repl_srv_t *s = (vh_repl_srv_t *)arg;
  switch (type) {
    case VH_CONTROL_EVAL:
      vh_repl_on_eval(s, conn, payload, len);
      break;
    case VH_CONTROL_COMPLETE:
      vh_repl__complete(s, conn, payload, len);
      break;
    case VH_CONTROL_COMMAND:
      vh_repl__command(s, conn, payload, len);
      break;
    default: /* the server passes requests only */
      vh_repl_reply_str(conn, VH_CONTROL_ERROR, "bad request type");
  }
}

/* The control socket dropped a reply or a client (its output limits). */
static void vh_repl_on_limit(const char *msg, void *arg) {
  (void)arg;
  vh_log(VH_LOG_WARN, "repl", "%s", msg);
}

static void vh_repl_on_sample(uv_timer_t *timer) {
  vh_repl_srv_t *s = (vh_repl_srv_t *)timer->data;
  s->ring[s->ring_next].ms = vh_repl__mono_ms();
  s->ring[s->ring_next].slices = s->h->slice_seq;
  s->ring_next = (s->ring_next + 1) % VH_REPL_RING;
  if (s->nring < VH_REPL_RING) s->nring++;
}

static void vh_repl_free_handle(uv_handle_t *hd) {
  free(hd);
}

/* Release the Lua side and the memory of s (the listener is gone). */
static void vh_repl_free(vh_repl_srv_t *s) {
  lua_State *L = s->h->L;
  while (s->forks) {
    vh_repl_fork_t *f = s->forks;
    s->forks = f->next;
    vh_repl_fork_free(f);
  }
  int refs[] = {s->env_ref, s->pretty_ref, s->pairs_ref, s->out_ref};
  for (int i = 0; i < 4; i++) luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
  if (s->tag) vh_str_release(s->tag);
  if (s->sampler) {
    s->sampler->data = NULL;
    uv_close((uv_handle_t *)s->sampler, vh_repl_free_handle);
  }
  free(s);
}

static void vh_repl_start(vh_host_t *h) {
  if (h->repl) return;
  vh_repl_srv_t *s = calloc(1, sizeof *s);
  if (!s) {
    vh_log(VH_LOG_WARN, "vedhost", "no REPL: out of memory");
    return;
  }
  s->h = h;
  s->env_ref = s->pretty_ref = s->pairs_ref = s->out_ref = LUA_NOREF;
  s->tag = vh_str_new("repl", 4);
  s->sampler = malloc(sizeof *s->sampler);
  if (!s->tag || !s->sampler) {
    free(s->sampler);
    s->sampler = NULL;
    vh_log(VH_LOG_WARN, "vedhost", "no REPL: out of memory");
    vh_repl_free(s);
    return;
  }
  uv_timer_init(&h->loop, s->sampler);
  s->sampler->data = s;
  lua_State *L = h->L;
  lua_pushcfunction(L, vh_repl_setup);
  lua_pushlightuserdata(L, s);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    vh_log(VH_LOG_WARN, "vedhost", "no REPL: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    vh_repl_free(s);
    return;
  }
  const char *dir = h->dd.path;
  size_t pl = strlen(dir) + sizeof VH_CONTROL_SOCKET + 1;
  char *path = malloc(pl);
  int rc = path ? 0 : UV_ENOMEM;
  if (path) {
    snprintf(path, pl, "%s/%s", dir, VH_CONTROL_SOCKET);
    vh_control_opts_t co = {0, 0, 0, vh_repl_on_limit, vh_repl_on_closed};
    rc = vh_control_start(&h->loop, path, &co, vh_repl_on_request, s, &s->ctl);
  }
  if (rc != 0) {
    vh_log(VH_LOG_WARN, "vedhost",
           "no REPL: cannot listen on %s/%s: %s (the host runs without it)",
           dir, VH_CONTROL_SOCKET, uv_strerror(rc));
    free(path);
    vh_repl_free(s);
    return;
  }
  vh_log(VH_LOG_DEBUG, "vedhost", "control socket %s", path);
  free(path);
  vh_repl_on_sample(s->sampler); /* the first sample: the start */
  uv_timer_start(s->sampler, vh_repl_on_sample, 1000, 1000);
  uv_unref((uv_handle_t *)s->sampler);
  h->repl = s;
}

static void vh_repl_stop(vh_host_t *h) {
  vh_repl_srv_t *s = h->repl;
  if (!s) return;
  h->repl = NULL;
  if (s->ctl) vh_control_stop(s->ctl);
  s->ctl = NULL;
  vh_repl_free(s);
}

/* The vh_work_run_fn of a chunk: its errors are rollbacks. */
static int vh_repl_run(vh_host_t *h, vh_work_t *w, vh_val_t *reply,
                       char **err) {
  vh_repl_eval(h, w, reply, err);
  return VH_HOST_EROLLBACK;
}

static const vh_host_hooks_t vh_repl_hooks = {"repl", vh_repl_start, NULL,
                                              vh_repl_stop, NULL};

int vh_repl_server_attach(vh_host_t *h) {
  return vh_host__hook(h, &vh_repl_hooks);
}
