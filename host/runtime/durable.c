/*
 * durable.c - the host's persistence: the store, restart from the
 * manifest, the flush at the end of every slice, the output gate and the
 * sweeper.
 *
 * OPEN (vh_durable__open, from vh_host_new, before any script runs). The
 * store in DATA/db is opened (created if missing) with the durability
 * mode; a refused store (foreign or newer format, corrupt, locked) is one
 * line naming the dir or key and what to do, and the host does not start.
 * The trie's loader reads nodes through vh_store_get_node; its free hook
 * feeds the delete lists below. The manifest is read; the system state
 * "__ved" becomes vh_tab_stub(sys_root) and the scheduler's indexes are
 * rebuilt from it: head, seq, tid, and the `after` heap from `timers` (so
 * timers that fell due while the host was down fire in the first slice,
 * and messages below seq are delivered then). Nothing else is read.
 * Sweep keys left by the previous run resume.
 *
 * BOOT (vh_durable__boot, the first slice, before any start()). Each
 * declared domain in the manifest gets vh_tab_stub(root); the script's
 * `state = {...}` is used only for domains not in the manifest. Versions:
 *
 *   declared == stored   run
 *   declared >  stored   migrate(state, stored) runs now, in this slice,
 *                        so its writes and the version bump are one batch;
 *                        no migrate function: the version just moves
 *   migrate raises       state rolled back, version stays `stored`: the
 *                        domain is refused
 *   declared <  stored   refused (downgrade)
 *
 * A refused domain is retired the way reload.c retires a domain no longer
 * declared: its record keeps the stored root and version (written
 * unchanged in every manifest), loses its code (events for it are dropped,
 * logged once per event), and d->refused says why (:domains shows it). A
 * reload that declares it with a fixed script brings it back through
 * reload.c's normal path (migrate from the stored version, then start).
 * Domains in the manifest that no script declares become retired records
 * too (logged once), so they are kept in every manifest and a later reload
 * that declares them finds their state.
 *
 * SLICE END (vh_durable__slice_end). If anything changed, one batch:
 *
 *   puts     vh_flush_collect over every domain root and the system root:
 *            the nodes made since the last collect (children first)
 *   deletes  stored nodes freed since the last batch (free hook, subtree
 *            0), and sweep keys for never-loaded subtrees that were dropped
 *            (free hook, subtree 1; see persist/store/store_sweep.c)
 *   sweep    one bounded sweep step (VH_SWEEP_STEP nodes) if any is pending
 *   manifest seq, next_id, sys root, every domain's root and version
 *
 * goes to vh_store_submit with seq = manifest seq (it grows across
 * restarts). "Changed" = a root without an id, a delete, a sweep, or
 * manifest bytes other than the last written (a version). The loop never
 * waits on disk; vh_store_submit's backpressure is the only block. If
 * building the batch fails (out of memory) before or in the collect,
 * nothing is claimed to be on disk (collect is all or nothing), the
 * delete lists are kept, and the next slice retries. Only the manifest is
 * added after the collect; if that fails the new nodes already carry ids
 * that are not on disk, so the host stops writing (logged: the store
 * keeps the last durable slice) rather than ever naming a missing node.
 *
 * ROLLBACK (host/repl/repl_rollback.c, vh_durable__rewind). A domain's root
 * becomes the stub of the root it had at an older version V, between two slice
 * ends: the replaced tree's in-memory nodes are made views first (their
 * release never reaches the free hook: part of them is alive again), the
 * nodes only it held join D->dead, and the nodes it brings back (D->back)
 * are handed to vh_hist_resurrect in the next batch, before vh_hist_slice,
 * which takes them out of the death lists and pins after V.
 *
 * OUTPUT GATE (ARCHITECTURE.md invariant 3). Replies of outside calls and REPL
 * chunks (h->replies; repl_server.c sends its replies through the same
 * list) are moved behind the gate tagged with the seq of the last batch
 * submitted so far (this slice's, or the last one that wrote something:
 * the reply may show state of that slice). They are sent, in order, once
 * vh_store_durable_seq() reaches the tag: the writer's notify callback
 * wakes the loop with uv_async_send. In nosync mode "durable" means
 * written to RocksDB (WAL, no fsync), which survives kill -9. Later slices
 * keep running meanwhile.
 *
 * BACKPRESSURE: HOLD. The loop never waits on the store (ARCHITECTURE.md
 * invariant 6): vh_store_submit always queues. Instead sched.c asks
 * vh_durable__accepting before it starts a slice (delivers messages or due
 * `after` timers, runs calls, fires `every` ticks), and holds them while
 *   - the write queue holds opts.queue_bytes or more (64 MB; the test knob
 *     VEDHOST_TEST_QUEUE_BYTES sets it),
 *   - writes are failing (a full disk: retried until space comes back), or
 *   - the writer stopped for good after a non-transient error (corruption,
 *     an I/O error other than ENOSPC): the host stays up, read-only.
 * Held work is not lost: messages and `after` timers stay in the system
 * state, calls stay queued, an `every` timer skips its ticks. Signals,
 * read-only REPL chunks, :stats, /healthz (503 with the reason) and
 * /metrics keep working; HTTP event POSTs get 503 with the reason. The
 * hold is logged once when it starts and once when it ends; its end
 * (noticed at the writer's notify or the 1 s health timer) re-arms the
 * scheduler.
 *
 * WRITE FAILURES. The store retries transient errors (reopening RocksDB
 * as needed, persist/store/store_writer.c); the host holds slices and replies.
 * Its health is checked at every notify, every slice end and every second,
 * and logged once per change (failing, recovered, stopped).
 *
 * SHUTDOWN. A stop (SIGINT/SIGTERM, ved.exit) waits, with the loop still
 * turning, until every submitted slice is durable (vh_durable__drained;
 * sched.c logs what it waits for when the store is not keeping up); a
 * second SIGINT/SIGTERM stops at once. It waits for nothing the next
 * start can resume (perf/stop): batches of a stopping host drop at most
 * one old version whose death list is on disk (persist/store/history.c,
 * BOUNDED DROPS) and take no sweep step (the sweep keys are durable: open
 * resumes them); a batch made only to drop versions (idle) waits until
 * the writer has written every earlier one, so at most one such batch,
 * bounded at VH_HIST_DROP_ENTS deletes (~2 MB), is ever queued for a stop
 * to wait for. Then vh_durable__stop closes the
 * store (flushing the memtable so the next start replays no WAL); if
 * slices were still unwritten (second signal, or the writer stopped) they
 * are dropped: the store keeps the last durable slice, the log says how
 * many were dropped, and the exit code becomes VH_EXIT_DROPPED (3) unless
 * ved.exit asked for a non-zero one. Gated replies are sent, or answered
 * with an error when their slice was dropped.
 *
 * THREADS. Everything here runs on the loop thread, except the notify
 * callback (writer thread), which only calls uv_async_send.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"
#include "vh_bytes.h"
#include "vh_changes.h"
#include "vh_chrec.h"
#include "vh_flush.h"
#include "vh_log.h"
#include "vh_manifest.h"
#include "vh_rewind.h"
#include "vh_store.h"
#include "vh_versions.h"

/* Nodes swept per slice (each is one point read on the loop thread). */
#define VH_SWEEP_STEP 256
/* Health check period for write failures while nothing else happens. */
#define VH_HEALTH_MS 1000
/* Exit code of a stop that dropped slices it could not write. */
#define VH_EXIT_DROPPED 3
/* CHANGE RECORDS: no record for a slice that wrote more state keys than
 * this (VEDHOST_TEST_CHREC_KEYS=N sets it; 0: no records), or whose
 * record would pass VH_CHREC_BYTES (bench/README.md, ver/changerec). */
#define VH_CHREC_KEYS 2048
#define VH_CHREC_BYTES ((size_t)256 << 10)

/* A growable list of ids. */
typedef struct vh_ids {
  uint64_t *v;
  size_t n, cap;
} vh_ids_t;

/* A submitted batch not yet durable (for the lag and byte counts). */
typedef struct vh_inflight {
  uint64_t seq;
  int64_t t_ns; /* CLOCK_MONOTONIC at submit */
  size_t bytes;
} vh_inflight_t;

typedef struct vh_durable {
  vh_host_t *h;      /* [borrowed] */
  vh_store_t *store; /* [owned] NULL once closed */
  uv_async_t async;  /* woken by the writer's notify */
  uv_timer_t health; /* periodic health check (unref'd; data NULL) */
  int handles;       /* async and health are initialised */
  vh_manifest_t man; /* the manifest read at open (empty if none) */
  int have_man;      /* a manifest was read */
  uint64_t next_id;  /* next node id */
  uint64_t seq;      /* seq of the last manifest written or read */
  uint64_t last_sub; /* seq of the last batch this process submitted */
  void *open_man;    /* [owned] bytes of the manifest read at open */
  size_t open_man_len;
  void *last_man; /* [owned] bytes of the last manifest written */
  size_t last_man_len;
  vh_ids_t dead;   /* VH_DEAD(id, subtree) the free hook reported since
                      the last batch: the history engine decides */
  vh_ids_t sweep;  /* subtree roots still to sweep: pairs id, d (the
                      version whose batch dropped it; 0 unknown) */
  vh_hist_t *hist; /* [owned] the history engine (persist/store/history.c) */
  vh_ids_t back;   /* rollback.c: nodes alive again in the next batch */
  uint64_t back_after; /* ... the version they were brought back from */
  int hook_oom;        /* a death notice was lost (logged once) */
  vh_reply_t *gate, *gate_tail; /* replies waiting for durability */
  uint64_t held;
  vh_inflight_t *fl; /* submitted, not yet durable, oldest first */
  size_t fl_head, fl_n, fl_cap;
  uint64_t bytes, batches;
  double last_ms;
  int failing;  /* what was last logged */
  int stopped;  /* the writer stopped for good (logged once) */
  int broken;   /* a batch was lost after its collect: write no more */
  int sweeping; /* the health timer runs at 1 ms to drive the sweeper */
  /* CHANGE RECORDS (vh_durable_changes). */
  vh_vside_t chold;    /* [owned references] every domain's root as of
                          version held_seq (held_ok) */
  int held_ok;         /* chold is set */
  uint64_t held_seq;   /* the version chold holds */
  uint64_t last_ver;   /* seq of the last version batch of this run */
  uint64_t pend_keys;  /* state keys written since the last batch */
  uint64_t chrec_keys; /* the key cap (VH_CHREC_KEYS or the test knob) */
  vh_buf_t chrec;      /* the record of the batch being built */
  int has_chrec;       /* chrec holds one */
  uint64_t chrec_n;    /* records written (:stats, tests) */
  int hold_bad;        /* boot: a root could not be held */
} vh_durable_t;

/* ---- small helpers ---- */

static int vh_ids_push(vh_ids_t *l, uint64_t id) {
  if (vh_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0) return VH_ENOMEM;
  l->v[l->n++] = id;
  return 0;
}

static void vh_ids_free(vh_ids_t *l) {
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* ---- trie hooks ---- */

static int vh_durable_load(void *arg, uint64_t id, const void **bytes,
                           size_t *len) {
  vh_durable_t *D = arg;
  if (!D->store) return VH_EIO;
  void *b = NULL;
  char *m = NULL;
  int rc = vh_store_get_node(D->store, id, &b, len, &m);
  if (rc != 0) {
    vh_log(VH_LOG_ERROR, "vedhost", "cannot load %s", m ? m : vh_err_name(rc));
    free(m);
    return rc;
  }
  *bytes = b;
  return 0;
}

static void vh_durable_unload(void *arg, const void *bytes) {
  (void)arg;
  free((void *)bytes);
}

/* A stored node died: delete it (or sweep its subtree) in the next batch.
 * Runs inside a release: no trie calls. */
static void vh_durable_freed(void *arg, uint64_t id, int subtree) {
  vh_durable_t *D = arg;
  if (vh_ids_push(&D->dead, VH_DEAD(id, subtree)) != 0 && !D->hook_oom) {
    D->hook_oom = 1;
    vh_log(VH_LOG_ERROR, "vedhost",
           "out of memory recording a dead node: node %llu stays on disk "
           "(fsck reports it as unreachable)",
           (unsigned long long)id);
  }
}

static void vh_durable_notify(void *ud) {
  vh_durable_t *D = ud;
  uv_async_send(&D->async);
}

static void vh_durable_on_async(uv_async_t *a);
static void vh_durable_on_health(uv_timer_t *t);

/* ---- open: the store, the manifest, the system state ---- */

static int vh_durable_sweep_resume(void *arg, uint64_t id, uint64_t d) {
  vh_durable_t *D = arg;
  if (vh_ids_push(&D->sweep, id) != 0) return VH_ENOMEM;
  return vh_ids_push(&D->sweep, d);
}

/* Integer field key of the system root (absent: def). */
static int64_t vh_durable_sys_int(vh_tab_t *root, const char *key,
                                  int64_t def) {
  vh_val_t v;
  vh_tab_get_str(root, key, strlen(key), &v);
  return v.type == VH_TINT ? v.u.i : def;
}

/* Rebuild sched.c's indexes from the restored system state. */
static int vh_durable_restore_sys(vh_host_t *h, char *err, size_t cap) {
  vh_tab_t *root = vhl_state_root(h->sys);
  const char *why = NULL;
  vh_trie_fault_clear();
  h->next_seq = vh_durable_sys_int(root, "seq", 0);
  h->head = vh_durable_sys_int(root, "head", 0);
  h->next_tid = vh_durable_sys_int(root, "tid", 1);
  h->deliver_upto = h->next_seq;
  vh_val_t tv;
  vh_tab_get_str(root, "timers", 6, &tv);
  size_t ntimers = 0;
  if (tv.type == VH_TTAB) {
    vh_iter_t it;
    vh_val_t k, v;
    vh_iter_init(&it, tv.u.t);
    while (vh_iter_next(&it, &k, &v)) {
      vh_val_t due = vh_nil();
      if (v.type == VH_TTAB) vh_tab_get_int(v.u.t, 1, &due);
      if (k.type != VH_TINT || due.type != VH_TINT) continue;
      if (vh_sys__restore_timer(h, due.u.i, k.u.i) != 0) {
        snprintf(err, cap, "out of memory restoring the timers");
        return VH_ENOMEM;
      }
      ntimers++;
    }
  }
  if (vh_trie_fault(&why) != 0) {
    snprintf(err, cap,
             "%s/db: cannot read the system state (%s); the store is "
             "damaged: restore a backup or move the data dir away",
             h->opts.data_dir, why);
    vh_trie_fault_clear();
    return VH_HOST_EDATADIR;
  }
  vh_log(VH_LOG_INFO, "vedhost",
         "restored: %lld message(s) pending, %zu `after` timer(s)",
         (long long)(h->next_seq - h->head), ntimers);
  return 0;
}

int vh_durable__open(vh_host_t *h, char *err, size_t cap) {
  vh_durable_t *D = calloc(1, sizeof *D);
  if (!D) {
    snprintf(err, cap, "out of memory");
    return VH_ENOMEM;
  }
  D->h = h;
  D->next_id = 1;
  h->dur = D;
  vh_store_opts_t so;
  vh_store_opts_init(&so);
  so.create = 1;
  so.sync = h->opts.durability == VH_DURABILITY_SYNC;
  const char *qb = getenv("VEDHOST_TEST_QUEUE_BYTES"); /* tests only */
  if (qb && atoll(qb) > 0) so.queue_bytes = (size_t)atoll(qb);
  /* tests only: a small flush bound makes every slice a BIG GROUP
   * (persist/store/store_writer.c), crash-tested by crash_loop_spec */
  const char *fb = getenv("VEDHOST_TEST_FLUSH_BYTES");
  if (fb && atoll(fb) > 0) so.flush_bytes = (size_t)atoll(fb);
  /* tests and benchmarks only: the older stores' zstd bottommost level
   * (vh_store.h, zstd_dict_bytes) */
  const char *zd = getenv("VEDHOST_TEST_ZSTD_DICT_BYTES");
  if (zd && *zd) so.zstd_dict_bytes = atoi(zd);
  /* tests only: small graveyard blocks that fill in a short run, and a
   * cap that makes the graveyard take dead nodes in a small store
   * (persist/store/graveyard.c; crash_loop_spec) */
  const char *gb = getenv("VEDHOST_TEST_GRAVE_BITS");
  if (gb && atoi(gb) > 0) so.grave_block_bits = (unsigned)atoi(gb);
  const char *gc = getenv("VEDHOST_TEST_GRAVE_CAP");
  if (gc && atoll(gc) > 0) so.grave_cap_ids = (uint64_t)atoll(gc);
  if (h->opts.test_store) { /* ved.testing: see vh_store.h */
    so.test_store = 1;
    so.write_buffer_bytes = (size_t)32 << 20;
  }
  char *m = NULL;
  int rc = vh_store_open(h->opts.data_dir, &so, &D->store, &m);
  if (rc != 0) {
    snprintf(err, cap, "%s", m ? m : vh_err_name(rc));
    free(m);
    return rc == VH_ENOMEM ? VH_ENOMEM : VH_HOST_EDATADIR;
  }
  if (vh_store_open_note(D->store)) /* a torn WAL tail: what was dropped */
    vh_log(VH_LOG_WARN, "vedhost", "%s", vh_store_open_note(D->store));
  void *mb = NULL;
  size_t ml = 0;
  rc = vh_store_get_manifest(D->store, &mb, &ml, &m);
  if (rc == 0) {
    free(m);
    m = NULL;
    rc = vh_manifest_decode(mb, ml, &D->man, &m);
    D->open_man = mb;
    D->open_man_len = ml;
    if (rc != 0) {
      snprintf(err, cap,
               "%s/db: the manifest (key 'M') %s: %s; restore a backup or "
               "move the data dir away",
               h->opts.data_dir,
               rc == VH_EFORMAT ? "is of a newer format" : "is corrupt",
               m ? m : vh_err_name(rc));
      free(m);
      return VH_HOST_EDATADIR;
    }
    D->have_man = 1;
    D->next_id = D->man.next_id ? D->man.next_id : 1;
    D->seq = D->man.seq;
  } else if (rc != VH_ENOENT) {
    snprintf(err, cap,
             "%s/db: cannot read the manifest (key 'M'): %s; restore a backup "
             "or move the data dir away",
             h->opts.data_dir, m ? m : vh_err_name(rc));
    free(m);
    return VH_HOST_EDATADIR;
  } else {
    free(m);
  }
  vh_trie_set_loader(vh_durable_load, vh_durable_unload, D);
  vh_trie_set_free_hook(vh_durable_freed, D);
  vh_store_set_notify(D->store, vh_durable_notify, D);
  /* Nodes from the next id up are a big group's that a crash cut off
   * before its manifest (persist/store/store_writer.c, BIG GROUPS): the
   * writer thread deletes them before the first slice's group. */
  vh_store_drop_from(D->store, D->next_id ? D->next_id : 1);
  if (D->have_man && D->man.sys_root != 0) {
    vh_tab_t *stub = vh_tab_stub(D->man.sys_root);
    if (!stub) {
      snprintf(err, cap, "out of memory");
      return VH_ENOMEM;
    }
    vhl_state_set_root(h->L, h->sys, stub); /* outside a transaction */
    rc = vh_durable_restore_sys(h, err, cap);
    if (rc != 0) return rc;
  }
  rc = vh_store_sweep_list_at(D->store, vh_durable_sweep_resume, D, &m);
  if (rc != 0) {
    snprintf(err, cap, "%s", m ? m : vh_err_name(rc));
    free(m);
    return rc == VH_ENOMEM ? VH_ENOMEM : VH_HOST_EDATADIR;
  }
  if (D->sweep.n)
    vh_log(VH_LOG_INFO, "vedhost", "resuming %zu pending sweep(s)",
           D->sweep.n / 2);
  /* History: the header and the marks only (restart stays flat). */
  rc = vh_hist_open(D->store, &h->opts.retain, &D->hist, &m);
  if (rc != 0) {
    snprintf(err, cap,
             "%s/db: cannot read the history header or the marks: %s; "
             "restore a backup or move the data dir away",
             h->opts.data_dir, m ? m : vh_err_name(rc));
    free(m);
    return rc == VH_ENOMEM ? VH_ENOMEM : VH_HOST_EDATADIR;
  }
  /* Change records: only with history kept (--retain 0 keeps no version
   * to diff against). */
  D->chrec_keys = VH_CHREC_KEYS;
  const char *ck = getenv("VEDHOST_TEST_CHREC_KEYS");
  if (ck != NULL && *ck != 0) D->chrec_keys = strtoull(ck, NULL, 10);
  if (h->opts.retain.zero) D->chrec_keys = 0;
  uv_async_init(&h->loop, &D->async, vh_durable_on_async);
  uv_unref((uv_handle_t *)&D->async);
  uv_timer_init(&h->loop, &D->health);
  D->health.data = NULL; /* sched.c's close callback frees timers' data */
  D->handles = 1;
  return 0;
}

/* ---- boot: stored roots, versions, migrate, refusals ---- */

/* Retire d (as reload.c does for a domain no longer declared), with the
 * reason why [borrowed, copied]. */
static void vh_durable_retire(vh_host_t *h, vh_domain_t *d, const char *why) {
  vh_reload__drop_code(h, d);
  free(d->refused);
  d->refused = why ? strdup(why) : NULL;
}

/* Protected: a retired record for the stored domain e (not declared by any
 * script). Upvalue-free; arg 1 is a light userdata to the entry. */
static int vh_durable_keep_p(lua_State *L) {
  vh_host_t *h = vh_host__of(L);
  const vh_manifest_domain_t *e = lua_touserdata(L, 1);
  if (vh_host__doms_reserve(h) != 0) return luaL_error(L, "out of memory");
  vh_tab_t *stub = vh_tab_stub(e->root);
  if (!stub) return luaL_error(L, "out of memory");
  vhl_state_t *st = vhl_state_new(L, stub, e->name); /* steals stub */
  int st_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  int on_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  int unhandled_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  int ctx_ref = vh_api__new_ctx(L, e->name);
  vh_domain_t *d = vh_host__domain_new(e->name, strlen(e->name),
                                       "(stored; not declared by any script)");
  if (!d) {
    int refs[] = {st_ref, on_ref, unhandled_ref, ctx_ref};
    for (int i = 0; i < 4; i++) luaL_unref(L, LUA_REGISTRYINDEX, refs[i]);
    return luaL_error(L, "out of memory");
  }
  d->version = e->version;
  d->st = st;
  d->st_ref = st_ref;
  d->on_ref = on_ref;
  d->unhandled_ref = unhandled_ref;
  d->ctx_ref = ctx_ref;
  d->start_ref = d->migrate_ref = LUA_NOREF;
  d->retired = 1;
  h->doms[h->ndoms++] = d;
  return 0;
}

/* CHANGE RECORDS at boot: the roots of the manifest read at open, the
 * stubs the domains start from, are held as the newest version's (it has
 * the same roots: a batch that is no version changes no root), so the
 * first version of a run gets a record too. */
static void vh_durable_hold_boot(vh_durable_t *D, const char *name,
                                 vh_tab_t *root) {
  if (D->chrec_keys == 0 || !D->hist) return;
  if (vh_vside_add(&D->chold, name, root) != 0) D->hold_bad = 1;
}

static void vh_durable_hold_boot_end(vh_durable_t *D) {
  vh_history_t hh;
  vh_hist_info(D->hist, &hh);
  if (D->chrec_keys != 0 && !D->hold_bad && D->have_man &&
      D->chold.n == D->man.ndomains && hh.newest != 0 &&
      hh.newest <= D->man.seq && hh.newest_next_id == D->man.next_id) {
    D->held_ok = 1;
    D->held_seq = D->last_ver = hh.newest;
  } else {
    vh_vside_free(&D->chold);
    D->held_ok = 0;
  }
}

/* Give declared domain d its stored root and settle its version. */
static void vh_durable_boot_domain(vh_host_t *h, vh_domain_t *d,
                                   const vh_manifest_domain_t *e) {
  vh_tab_t *stub = vh_tab_stub(e->root);
  if (!stub) {
    vh_log(VH_LOG_ERROR, d->name, "out of memory restoring the state");
    vh_durable_retire(h, d, "out of memory restoring the state");
    d->version = e->version;
    return;
  }
  vhl_state_set_root(h->L, d->st, stub);
  vh_durable_hold_boot(h->dur, d->name, stub); /* before a migrate writes */
  int64_t declared = d->version, stored = e->version;
  char why[1400];
  if (declared < stored) {
    snprintf(why, sizeof why,
             "version %lld declared at %s is lower than the stored version "
             "%lld: downgrade refused (run the newer script)",
             (long long)declared, d->where, (long long)stored);
  } else if (declared > stored && d->migrate_ref == LUA_NOREF) {
    vh_log(VH_LOG_INFO, d->name,
           "version %lld -> %lld (no migrate function: state kept as is)",
           (long long)stored, (long long)declared);
    return;
  } else if (declared > stored) {
    char *e2 = NULL;
    if (vh_host__dispatch(h, d, "migrate", 7, VH_DISPATCH_MIGRATE,
                          vh_int(stored), NULL, &e2) == 0) {
      vh_log(VH_LOG_INFO, d->name, "migrated from version %lld to %lld",
             (long long)stored, (long long)declared);
      return;
    }
    snprintf(why, sizeof why,
             "migrate from version %lld to %lld failed: %s; state and version "
             "left as they were",
             (long long)stored, (long long)declared, e2 ? e2 : "?");
    free(e2);
  } else {
    return;
  }
  d->version = stored;
  vh_durable_retire(h, d, why);
  vh_log(VH_LOG_ERROR, d->name,
         "REFUSED, domain not started: %s. Its stored state is kept; fix the "
         "script and reload or restart.",
         why);
}

void vh_durable__boot(vh_host_t *h) {
  vh_durable_t *D = h->dur;
  if (!D) return;
  int ndeclared = h->ndoms;
  for (size_t i = 0; D->have_man && i < D->man.ndomains; i++) {
    const vh_manifest_domain_t *e = &D->man.domains[i];
    vh_domain_t *d = vh_host__find(h, e->name, strlen(e->name));
    if (d) {
      vh_durable_boot_domain(h, d, e);
      continue;
    }
    lua_pushcfunction(h->L, vh_durable_keep_p);
    lua_pushlightuserdata(h->L, (void *)e);
    if (lua_pcall(h->L, 1, 0, 0) != LUA_OK) {
      vh_log(VH_LOG_ERROR, "vedhost",
             "cannot keep stored domain '%s': %s; its entry is lost from the "
             "next manifest",
             e->name, lua_tostring(h->L, -1));
      lua_pop(h->L, 1);
      continue;
    }
    vh_log(VH_LOG_WARN, e->name,
           "stored domain (version %lld) is not declared by any script: its "
           "state is kept untouched, events for it are dropped",
           (long long)e->version);
    vh_domain_t *k = h->doms[h->ndoms - 1];
    vh_durable_hold_boot(D, k->name, vhl_state_root(k->st));
  }
  if (D->hist) vh_durable_hold_boot_end(D);
  if (h->ndoms > ndeclared)
    vh_log(VH_LOG_INFO, "vedhost", "%d stored domain(s) kept undeclared",
           h->ndoms - ndeclared);
  if (D->handles) {
    uv_timer_start(&D->health, vh_durable_on_health, VH_HEALTH_MS,
                   VH_HEALTH_MS);
    uv_unref((uv_handle_t *)&D->health);
  }
}

/* ---- health and the output gate ---- */

/* Log a change of the writer's health (failing / recovered / stopped)
 * and of the hold; a hold that ended re-arms the scheduler. */
static void vh_durable_health(vh_durable_t *D) {
  if (!D->store) return;
  vh_host_t *h = D->h;
  vh_store_health_t hl;
  vh_store_health(D->store, &hl);
  if (hl.stopped && !D->stopped) {
    D->stopped = 1;
    vh_log(VH_LOG_ERROR, "vedhost",
           "writes STOPPED: the store failed with an error that is not "
           "transient (%s); nothing more is written: the host stays up "
           "read-only (reads, REPL, /healthz), the store keeps slice %llu; "
           "fix the cause and restart",
           hl.last_error ? hl.last_error : "unknown error",
           (unsigned long long)vh_store_durable_seq(D->store));
  } else if (!hl.stopped && hl.failing != D->failing) {
    D->failing = hl.failing;
    if (hl.failing)
      vh_log(VH_LOG_ERROR, "vedhost",
             "writes to the store are failing (%s): retrying; slices are "
             "held and replies wait until their slice is written",
             hl.last_error ? hl.last_error : "unknown error");
    else
      vh_log(VH_LOG_INFO, "vedhost",
             "writes to the store work again (%llu failed attempt(s) in all, "
             "%llu reopen(s))",
             (unsigned long long)hl.errors, (unsigned long long)hl.reopens);
  }
  free(hl.last_error);
  if (h->phase != VH_PHASE_RUN) return;
  char why[512];
  int holding = !vh_durable__accepting(h, why, sizeof why);
  if (holding == h->holding) return;
  h->holding = holding;
  if (holding) {
    vh_log(VH_LOG_WARN, "vedhost",
           "%s; events, timers and messages wait (not lost), HTTP POSTs get "
           "503, REPL chunks may only read",
           why);
  } else {
    vh_log(VH_LOG_INFO, "vedhost",
           "store backpressure: released, slices start again");
    h->timers_dirty = 1;
    vh_sched__update(h);
  }
}

int vh_durable__accepting(vh_host_t *h, char *why, size_t cap) {
  vh_durable_t *D = h->dur;
  if (!D || !D->store) return 1;
  if (D->broken) {
    if (why)
      snprintf(why, cap,
               "store backpressure: hold: persistence stopped (a slice's "
               "batch was lost); the host is read-only, restart it");
    return 0;
  }
  vh_store_health_t hl;
  int ok = vh_store_health(D->store, &hl) && !hl.failing;
  if (!ok && why) {
    const char *e = hl.last_error ? hl.last_error : "unknown error";
    if (hl.stopped)
      snprintf(why, cap,
               "store backpressure: hold: writes stopped after a "
               "non-transient error (%s); the host is read-only: fix the "
               "cause and restart it",
               e);
    else if (hl.full)
      snprintf(why, cap,
               "store backpressure: hold: %zu KB of slices wait for the "
               "store (limit %zu KB)%s%s",
               hl.queued_bytes / 1024, hl.queue_limit / 1024,
               hl.failing ? "; writes are failing: " : "", hl.failing ? e : "");
    else
      snprintf(why, cap,
               "store backpressure: hold: writes to the store are failing "
               "(%s); retrying",
               e);
  }
  free(hl.last_error);
  return ok;
}

int vh_durable__drained(vh_host_t *h, char *why, size_t cap) {
  vh_durable_t *D = h->dur;
  if (!D || !D->store) return 1;
  uint64_t durable = vh_store_durable_seq(D->store);
  if (durable >= D->last_sub) return 1;
  vh_store_health_t hl;
  vh_store_health(D->store, &hl);
  int stopped = hl.stopped;
  if (!stopped && why)
    snprintf(why, cap,
             "%llu slice(s) (%zu KB) still to be written to the store%s%s",
             (unsigned long long)(D->last_sub - durable),
             hl.queued_bytes / 1024, hl.failing ? "; writes are failing: " : "",
             hl.failing && hl.last_error ? hl.last_error : "");
  free(hl.last_error);
  return stopped;
}

/* Account batches that became durable (lag, bytes). */
static void vh_durable_account(vh_durable_t *D, uint64_t durable) {
  int64_t now = vh_host__mono_ns();
  while (D->fl_n > 0 && D->fl[D->fl_head].seq <= durable) {
    vh_inflight_t *f = &D->fl[D->fl_head];
    D->bytes += f->bytes;
    D->batches++;
    D->last_ms = (double)(now - f->t_ns) / 1e6;
    D->fl_head = (D->fl_head + 1) % D->fl_cap;
    D->fl_n--;
  }
}

static void vh_durable_send(vh_reply_t *r, const char *override) {
  if (override && !r->err)
    r->cb(r->arg, VH_HOST_ENOTDURABLE, vh_nil(), override);
  else
    r->cb(r->arg, r->err ? r->code : 0, r->reply, r->err);
  vh_val_release(r->reply);
  free(r->err);
  free(r);
}

/* Send the gated replies whose batch is durable, in order. */
static void vh_durable_release(vh_durable_t *D) {
  uint64_t durable = D->store ? vh_store_durable_seq(D->store) : UINT64_MAX;
  vh_durable_account(D, durable);
  while (D->gate && D->gate->gate <= durable) {
    vh_reply_t *r = D->gate;
    D->gate = r->next;
    if (!D->gate) D->gate_tail = NULL;
    D->held--;
    vh_durable_send(r, NULL);
  }
  /* After writes stopped for good nothing more becomes durable: answer
   * now (an error: never acknowledged) rather than at stop. */
  while (D->stopped && D->gate) {
    vh_reply_t *r = D->gate;
    D->gate = r->next;
    if (!D->gate) D->gate_tail = NULL;
    D->held--;
    vh_durable_send(r,
                    "not durable: writes to the store stopped (see the "
                    "log); this slice was not written");
  }
}

static void vh_durable_on_async(uv_async_t *a) {
  vh_durable_t *D = (vh_durable_t *)((char *)a - offsetof(vh_durable_t, async));
  vh_durable_health(D);
  vh_durable_release(D);
}

static void vh_durable_on_health(uv_timer_t *t) {
  vh_durable_t *D =
      (vh_durable_t *)((char *)t - offsetof(vh_durable_t, health));
  vh_durable_health(D);
  vh_durable_release(D);
}

/* ---- the flush at the end of a slice ---- */

static int vh_durable_put(void *arg, uint64_t id, const void *bytes,
                          size_t len) {
  return vh_batch_put_node((vh_batch_t *)arg, id, bytes, len);
}

static int vh_durable_sweep_child(void *arg, uint64_t id, uint64_t d) {
  vh_durable_t *D = *(vh_durable_t **)arg;
  if (vh_ids_push(&D->sweep, id) != 0) return VH_ENOMEM;
  return vh_ids_push(&D->sweep, d);
}

/* The sweeper's mark check: a child a mark below d holds is pinned. */
typedef struct vh_durable_sweep_ctx {
  vh_durable_t *D; /* first: vh_durable_sweep_child reads it */
  vh_batch_t *b;
} vh_durable_sweep_ctx_t;

static int vh_durable_sweep_pin(void *arg, uint64_t id, uint64_t d) {
  vh_durable_sweep_ctx_t *c = arg;
  return c->D->hist ? vh_hist_pin(c->D->hist, c->b, id, d) : 0;
}

/* One bounded sweep step into b. *took = how many ids (pairs id, d) were
 * taken off the sweep list (put back by the caller on failure, see
 * below). */
static int vh_durable_sweep_step(vh_durable_t *D, vh_batch_t *b, uint64_t *ids,
                                 size_t *took) {
  size_t k = D->sweep.n < 2 * VH_SWEEP_STEP ? D->sweep.n : 2 * VH_SWEEP_STEP;
  memcpy(ids, D->sweep.v + D->sweep.n - k, k * sizeof *ids);
  D->sweep.n -= k;
  *took = k;
  vh_durable_sweep_ctx_t ctx = {D, b};
  for (size_t i = 0; i + 1 < k; i += 2) {
    char *m = NULL;
    int rc = vh_store_sweep_node_at(D->store, b, ids[i], ids[i + 1],
                                    vh_durable_sweep_pin,
                                    vh_durable_sweep_child, &ctx, &m);
    if (rc != 0) {
      vh_log(VH_LOG_WARN, "vedhost", "sweep postponed: %s",
             m ? m : vh_err_name(rc));
      free(m);
      return rc;
    }
  }
  return 0;
}

static int vh_durable_fl_push(vh_durable_t *D, uint64_t seq, size_t bytes) {
  if (D->fl_n == D->fl_cap) {
    size_t nc = D->fl_cap ? D->fl_cap * 2 : 64;
    vh_inflight_t *nf = malloc(nc * sizeof *nf);
    if (!nf) return VH_ENOMEM;
    for (size_t i = 0; i < D->fl_n; i++)
      nf[i] = D->fl[(D->fl_head + i) % D->fl_cap];
    free(D->fl);
    D->fl = nf;
    D->fl_head = 0;
    D->fl_cap = nc;
  }
  vh_inflight_t *f = &D->fl[(D->fl_head + D->fl_n) % D->fl_cap];
  f->seq = seq;
  f->t_ns = vh_host__mono_ns();
  f->bytes = bytes;
  D->fl_n++;
  return 0;
}

/* The manifest of the current roots (after a collect), encoded. */
static int vh_durable_manifest(vh_host_t *h, uint64_t seq, uint64_t next_id,
                               void **out, size_t *len) {
  vh_manifest_t m;
  memset(&m, 0, sizeof m);
  m.seq = seq;
  m.next_id = next_id;
  m.sys_root = vh_tab_id(vhl_state_root(h->sys));
  int rc = 0;
  for (int i = 0; i < h->ndoms && rc == 0; i++) {
    vh_domain_t *d = h->doms[i];
    rc = vh_manifest_add(&m, d->name, vh_tab_id(vhl_state_root(d->st)),
                         d->version);
  }
  if (rc == 0) rc = vh_manifest_encode(&m, out, len);
  vh_manifest_free(&m);
  return rc;
}

/* Same manifest as the last written, ignoring the seq (bytes 8..16)? */
static int vh_durable_same_manifest(vh_durable_t *D, const void *p, size_t n) {
  return vh_manifest_same_but_seq(p, n, D->last_man, D->last_man_len);
}

static int vh_durable_hist_sweep(void *arg, uint64_t id, uint64_t d) {
  vh_durable_t *D = arg;
  if (vh_ids_push(&D->sweep, id) != 0) return VH_ENOMEM;
  return vh_ids_push(&D->sweep, d);
}

/* The history records of this batch (persist/store/history.c): a version when
 * the manifest differs from the last one but for its seq. 0, or -1 (logged
 * by the caller: persistence stops). */
static int vh_durable_history(vh_host_t *h, vh_durable_t *D, vh_batch_t *b,
                              const void *man, size_t manlen, uint64_t next_id,
                              const vh_flush_stats_t *fs) {
  if (!D->hist) return 0;
  /* The manifest before: the last written, or the one read at open. */
  const void *prev = D->last_man ? D->last_man : D->open_man;
  size_t prevlen = D->last_man ? D->last_man_len : D->open_man_len;
  int is_version = !vh_manifest_same_but_seq(man, manlen, prev, prevlen);
  vh_manifest_t last;
  memset(&last, 0, sizeof last);
  if (is_version && prev) vh_manifest_decode(prev, prevlen, &last, NULL);
  char *stack_names[64];
  char **names =
      h->ndoms <= 64 ? stack_names : malloc((size_t)h->ndoms * sizeof *names);
  size_t nchanged = 0;
  uint64_t keys = D->pend_keys; /* vh_durable_changes took them */
  D->pend_keys = 0;
  if (!names) goto oom;
  for (int i = 0; is_version && i < h->ndoms; i++) {
    vh_domain_t *d = h->doms[i];
    const vh_manifest_domain_t *e = vh_manifest_find(&last, d->name);
    if (!e || e->root != vh_tab_id(vhl_state_root(d->st)))
      names[nchanged++] = d->name;
  }
  vh_hist_slice_t sl = {.seq = D->seq + 1,
                        .is_version = is_version,
                        .time_ms = vh_host__now(h),
                        .events = (uint32_t)h->slice_calls,
                        .keys = keys,
                        .changed = names,
                        .nchanged = nchanged,
                        .man = man,
                        .manlen = manlen,
                        .next_id = next_id,
                        .dead = D->dead.v,
                        .ndead = D->dead.n,
                        .new_nodes = fs->nodes,
                        .new_bytes = fs->bytes,
                        .durable = vh_store_durable_seq(D->store),
                        .stopping = h->stop_requested};
  if (is_version && !h->inlog.off && vh_det__encode(h, &h->inlog.rec) == 0) {
    sl.inputs = h->inlog.rec.p;
    sl.inlen = h->inlog.rec.len;
  }
  if (is_version && D->has_chrec) { /* its change record (vh_chrec.h) */
    sl.chrec = D->chrec.p;
    sl.chlen = D->chrec.len;
  }
  char *m = NULL;
  int rc = 0;
  if (D->back.n) /* a rollback (rollback.c): out of the death lists */
    rc = vh_hist_resurrect(D->hist, b, D->back_after, D->back.v, D->back.n, &m);
  D->back.n = 0;
  if (rc == 0)
    rc = vh_hist_slice(D->hist, b, &sl, vh_durable_hist_sweep, D, &m);
  if (rc == 0 && is_version) {
    D->last_ver = sl.seq;
    D->chrec_n += sl.chrec != NULL;
  }
  if (rc != 0)
    vh_log(VH_LOG_ERROR, "vedhost", "history of slice %llu: %s",
           (unsigned long long)sl.seq, m ? m : vh_err_name(rc));
  free(m);
  char *w = vh_hist_warning(D->hist);
  if (w) {
    vh_log(VH_LOG_WARN, "vedhost",
           "history: %s; old versions are kept until it can be read (retried "
           "every slice)",
           w);
    free(w);
  }
  if (names != stack_names) free(names);
  vh_manifest_free(&last);
  return rc == 0 ? 0 : -1;
oom:
  vh_manifest_free(&last);
  return -1;
}

/* ---- change records (vh_chrec.h) ----
 *
 * CHANGE RECORDS. A version batch that changed at most D->chrec_keys state
 * keys also carries 'C' seq: its changes from the version before it (pred,
 * D->last_ver), so a diff of the two (and the feed) reads one record
 * instead of walking two trees (host/runtime/diff_stage.c). They are
 * computed here, on the loop thread, with the readers' own walk
 * (vh_changes_diff, the same order) between the roots of version pred and
 * the roots now. To have the old roots in memory D->chold keeps a
 * reference to every domain's root after each batch is submitted (one
 * retain per domain; a committed table is never written in place, since
 * every transaction writes under a fresh edit token and path-copies, so an
 * extra reference changes nothing but when the replaced nodes are freed).
 * The held roots are released right after the walk, at the start of the
 * batch's build, so the nodes only they kept die now and their deaths
 * (the free hook) go into this same batch, as without records.
 *
 * The walk never does I/O on the loop: it runs with loads off
 * (vh_trie_noload). Whatever it would have to read (a replaced subtree
 * never loaded, roots of a restart) fails it and the version gets no
 * record; so do a rollback (vh_durable__rewind drops the held roots), the
 * first version of a run (nothing held yet), a slice over the key cap, a
 * record over VH_CHREC_BYTES, a table nested deeper than
 * VH_CHREC_MAX_NEST, and --retain 0. Readers then walk, as before. */

typedef struct vh_chw {
  vh_buf_t *out;
  const char *open; /* the domain open in out */
  int rc;
} vh_chw_t;

static int vh_durable_chrec_one(void *arg, const vh_change_t *c) {
  vh_chw_t *w = arg;
  w->rc = vh_chrec_add(w->out, &w->open, c->domain, c->op, c->path, c->depth,
                       c->old, c->new);
  if (w->rc == 0 && w->out->len > VH_CHREC_BYTES) w->rc = VH_ERANGE;
  return w->rc != 0;
}

/* The current domains and roots as a side [new]. 0 or VH_ENOMEM. */
static int vh_durable_side(vh_host_t *h, vh_vside_t *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < h->ndoms; i++)
    if (vh_vside_add(s, h->doms[i]->name, vhl_state_root(h->doms[i]->st))) {
      vh_vside_free(s);
      return VH_ENOMEM;
    }
  return 0;
}

/* Drop the held roots (their nodes that died report now). */
static void vh_durable_unhold(vh_durable_t *D) {
  vh_vside_free(&D->chold);
  D->held_ok = 0;
}

/* After a batch was submitted: hold the roots it committed, as version
 * D->last_ver, for the next batch's record. */
static void vh_durable_hold(vh_host_t *h, vh_durable_t *D) {
  vh_durable_unhold(D);
  if (D->chrec_keys == 0 || D->last_ver == 0 || !D->hist) return;
  if (vh_durable_side(h, &D->chold) == 0) {
    D->held_ok = 1;
    D->held_seq = D->last_ver;
  }
}

/* At the start of a batch: this slice's record into D->chrec (has_chrec)
 * when it can be made, then the held roots are released. */
static void vh_durable_changes(vh_host_t *h, vh_durable_t *D) {
  D->has_chrec = 0;
  for (int i = 0; i < h->ndoms; i++)
    D->pend_keys += vhl_state_writes_take(h->doms[i]->st);
  if (!D->held_ok) return;
  int changed = D->chold.n != (size_t)h->ndoms;
  for (int i = 0; i < h->ndoms && !changed; i++) {
    /* changed unless the same name holds the same root; the domains are
     * usually in the order they were held: look at index i first */
    const char *name = h->doms[i]->name;
    size_t j = (size_t)i;
    if (strcmp(D->chold.names[j], name) != 0)
      for (j = 0; j < D->chold.n && strcmp(D->chold.names[j], name); j++) {
      }
    changed =
        j == D->chold.n || D->chold.roots[j] != vhl_state_root(h->doms[i]->st);
  }
  if (!changed) return; /* the same roots: keep them held */
  vh_vside_t cur;
  if (D->pend_keys <= D->chrec_keys && vh_durable_side(h, &cur) == 0) {
    vh_chw_t w = {&D->chrec, NULL, 0};
    int r = vh_chrec_begin(&D->chrec, D->held_seq);
    if (r == 0) {
      vh_trie_fault_clear();
      int was = vh_trie_noload(1);
      r = vh_changes_diff(&D->chold, &cur, NULL, NULL, 0, 0, 0,
                          vh_durable_chrec_one, &w);
      vh_trie_noload(was);
      if (vh_trie_fault(NULL) != 0 && r == 0) r = VH_ENOLOAD;
      vh_trie_fault_clear(); /* a node not in memory: no record, no fault */
    }
    if (r == 0) r = vh_chrec_end(&D->chrec, w.open);
    D->has_chrec = r == 0;
    vh_vside_free(&cur);
  }
  vh_durable_unhold(D);
}

/* Build and submit the slice's batch if anything changed. */
/* 0 when this slice's changes are on their way to disk (submitted, or
 * nothing to write); -1 when they are not (the next batch carries them, or,
 * once D->broken is set, none will). */
static int vh_durable_flush(vh_host_t *h, vh_durable_t *D) {
  int nroots = h->ndoms + 1, dirty = 0;
  vh_tab_t *stack_roots[64];
  vh_tab_t **roots =
      nroots <= 64 ? stack_roots : malloc((size_t)nroots * sizeof *roots);
  uint64_t sweep_ids[2 * VH_SWEEP_STEP];
  size_t took = 0, sweep_n0 = D->sweep.n;
  vh_batch_t *b = NULL;
  void *man = NULL;
  size_t manlen = 0;
  const char *what = "out of memory";
  if (!roots) goto fail;
  vh_durable_changes(h, D);
  roots[0] = vhl_state_root(h->sys);
  for (int i = 0; i < h->ndoms; i++)
    roots[i + 1] = vhl_state_root(h->doms[i]->st);
  for (int i = 0; i < nroots && !dirty; i++) dirty = vh_tab_id(roots[i]) == 0;
  /* A stop sweeps no more (SHUTDOWN: the next start resumes the sweep keys);
   * each turn of the loop while it drains would make another batch. */
  int sweep = D->sweep.n && !h->stop_requested;
  dirty |= D->dead.n || sweep;
  /* History collection alone never delays a stop or adds to a
   * backpressure hold; a mark or unmark is written even then (its reply
   * waits behind the gate for it). A batch only for it waits until every
   * earlier one is durable (SHUTDOWN: at most one such batch is queued). */
  uint64_t durable = vh_store_durable_seq(D->store);
  if (!dirty && D->hist && !h->holding && !h->stop_requested &&
      durable >= D->last_sub)
    dirty = vh_hist_due(D->hist, vh_host__clock_ms(h), durable);
  else if (!dirty && D->hist)
    dirty = vh_hist_marks_dirty(D->hist);
  if (!dirty && D->last_man) {
    /* Only a version can have changed: compare manifests. */
    if (vh_durable_manifest(h, D->seq + 1, D->next_id, &man, &manlen) != 0)
      goto fail;
    if (vh_durable_same_manifest(D, man, manlen)) {
      free(man);
      if (roots != stack_roots) free(roots);
      return 0;
    }
    free(man);
    man = NULL;
  }
  if (vh_batch_new(&b) != 0) goto fail;
  /* Everything that can fail without side effects first: the collect
   * gives nodes their ids, which cannot be taken back once it returned. */
  if (sweep && vh_durable_sweep_step(D, b, sweep_ids, &took) != 0) goto fail;
  uint64_t next_id = D->next_id;
  vh_flush_stats_t fs;
  int rc =
      vh_flush_collect(roots, (size_t)nroots, &next_id, vh_durable_put, b, &fs);
  if (rc != 0) {
    what = rc == VH_ENOMEM ? "out of memory" : vh_err_name(rc);
    goto fail;
  }
  if (vh_durable_manifest(h, D->seq + 1, next_id, &man, &manlen) != 0 ||
      vh_batch_set_manifest(b, man, manlen) != 0 ||
      vh_durable_history(h, D, b, man, manlen, next_id, &fs) != 0) {
    /* The new nodes carry ids now but their batch cannot be written:
     * any later manifest would name nodes that are not on disk. Stop
     * writing; the store keeps the last durable slice. */
    vh_log(VH_LOG_ERROR, "vedhost",
           "cannot write the manifest or history of slice %llu: persistence "
           "STOPPED (the store keeps slice %llu); restart the host",
           (unsigned long long)D->seq + 1, (unsigned long long)D->seq);
    D->broken = 1;
    vh_batch_free(b);
    free(man);
    if (roots != stack_roots) free(roots);
    return -1;
  }
  /* Committed from here: ids given, lists consumed. */
  D->dead.n = 0;
  D->next_id = next_id;
  D->seq++;
  size_t bytes = vh_batch_bytes(b);
  rc = vh_store_submit(D->store, b, D->seq);
  if (rc != 0) {
    /* The batch is gone and its nodes carry ids: like a lost manifest. */
    vh_log(VH_LOG_ERROR, "vedhost",
           "cannot submit slice %llu: %s: persistence STOPPED; restart the "
           "host",
           (unsigned long long)D->seq, vh_err_name(rc));
    D->broken = 1;
  } else {
    D->last_sub = D->seq;
    vh_durable_fl_push(D, D->seq, bytes);
    vh_durable_hold(h, D);
  }
  free(D->last_man);
  D->last_man = man;
  D->last_man_len = manlen;
  if (roots != stack_roots) free(roots);
  return rc == 0 ? 0 : -1;

fail:
  if (took) { /* put the sweep ids back (children it queued go too) */
    D->sweep.n = sweep_n0 - took;
    for (size_t i = 0; i < took; i++) vh_ids_push(&D->sweep, sweep_ids[i]);
  }
  vh_log(VH_LOG_ERROR, "vedhost",
         "cannot build the batch of slice %llu (%s): retried next slice",
         (unsigned long long)D->seq + 1, what);
  vh_batch_free(b);
  free(man);
  if (roots != stack_roots) free(roots);
  return -1;
}

void vh_durable__slice_end(vh_host_t *h) {
  vh_durable_t *D = h->dur;
  vh_trie_fault_clear(); /* a fault never outlives its slice */
  if (!D || !D->store) { /* no store (tests, shutdown): send at once */
    while (h->replies) {
      vh_reply_t *r = h->replies;
      h->replies = r->next;
      vh_durable_send(r, NULL);
    }
    h->replies_tail = NULL;
    return;
  }
  int pending = D->broken || vh_durable_flush(h, D) != 0;
  /* Not written now: the next batch carries this slice's changes, and its
   * input log carries these calls, but two clocks cannot be replayed as
   * one slice (det.c). */
  h->inlog_carry = pending && !D->broken;
  if (h->inlog_carry)
    vh_det__unreplayable(h,
                         "this slice was written with the next one "
                         "(store backpressure)");
  vh_durable_health(D);
  /* Keep the loop turning while subtrees wait to be swept (one bounded
   * step per slice); back to the slow health period when done. */
  if (D->handles && h->phase == VH_PHASE_RUN) {
    int sweep = D->sweep.n && !h->stop_requested; /* SHUTDOWN: none */
    if (sweep && !D->sweeping)
      uv_timer_start(&D->health, vh_durable_on_health, 1, 1);
    else if (!sweep && D->sweeping)
      uv_timer_start(&D->health, vh_durable_on_health, VH_HEALTH_MS,
                     VH_HEALTH_MS);
    D->sweeping = sweep;
  }
  /* Behind the gate, tagged with the last batch submitted so far, or, when
   * this slice's batch could not be built, with the next one (which will
   * carry its changes); never released once persistence is broken (stop
   * then answers them with an error). */
  uint64_t tag = D->last_sub;
  if (pending) tag = D->broken ? UINT64_MAX : D->seq + 1;
  while (h->replies) {
    vh_reply_t *r = h->replies;
    h->replies = r->next;
    r->next = NULL;
    if (r->now) { /* a read-only REPL chunk during a hold (sched.c) */
      vh_durable_send(r, NULL);
      continue;
    }
    r->gate = tag;
    if (D->gate_tail)
      D->gate_tail->next = r;
    else
      D->gate = r;
    D->gate_tail = r;
    D->held++;
  }
  h->replies_tail = NULL;
  vh_durable_release(D);
}

/* ---- shutdown ---- */

void vh_durable__stop(vh_host_t *h) {
  vh_durable_t *D = h->dur;
  if (!D || !D->store) return;
  uint64_t last = D->last_sub;
  if (vh_store_durable_seq(D->store) < last) {
    /* Only a second signal, or a store that stopped or fails, gets here
     * with slices unwritten (sched.c waits for the rest): drop them. */
    vh_store_health_t hl;
    vh_store_health(D->store, &hl);
    if (h->stop_now || hl.stopped || hl.failing) vh_store_abandon(D->store);
    free(hl.last_error);
    vh_store_wait_durable(D->store, last); /* final once it returns */
  }
  uint64_t durable = vh_store_durable_seq(D->store);
  vh_durable_release(D);
  char *m = NULL;
  int rc = vh_store_close(D->store, &m);
  D->store = NULL;
  vh_trie_set_loader(NULL, NULL, NULL);
  vh_trie_set_free_hook(NULL, NULL);
  if (durable < last) {
    vh_log(VH_LOG_ERROR, "vedhost",
           "stopped with %llu slice(s) dropped: slices %llu..%llu were never "
           "written, the store keeps slice %llu (%s)",
           (unsigned long long)(last - durable),
           (unsigned long long)durable + 1, (unsigned long long)last,
           (unsigned long long)durable, m ? m : vh_err_name(rc));
    if (h->exit_code == 0) h->exit_code = VH_EXIT_DROPPED;
  } else if (rc != 0) {
    vh_log(VH_LOG_WARN, "vedhost",
           "closing the store: %s; every slice was written (the next start "
           "replays the WAL)",
           m ? m : vh_err_name(rc));
  } else {
    vh_log(VH_LOG_DEBUG, "vedhost", "store closed at slice %llu",
           (unsigned long long)D->seq);
  }
  free(m);
  /* Whatever is still gated was not written: say so. */
  while (D->gate) {
    vh_reply_t *r = D->gate;
    D->gate = r->next;
    D->held--;
    vh_durable_send(r, durable < last ? "not durable: the store could not "
                                        "write this slice"
                                      : NULL);
  }
  D->gate_tail = NULL;
}

void vh_durable__activate(vh_host_t *h) {
  vh_durable_t *D = h->dur;
  if (!D || !D->store) return;
  vh_trie_set_loader(vh_durable_load, vh_durable_unload, D);
  vh_trie_set_free_hook(vh_durable_freed, D);
}

void vh_durable__free(vh_host_t *h) {
  vh_durable_t *D = h->dur;
  if (!D) return;
  if (D->store) { /* run never ended normally: close without waiting */
    char *m = NULL;
    vh_store_set_notify(D->store, NULL, NULL); /* the async is closed */
    if (vh_store_last_error(D->store, NULL, NULL)) vh_store_abandon(D->store);
    vh_store_close(D->store, &m);
    free(m);
    D->store = NULL;
  }
  vh_trie_set_loader(NULL, NULL, NULL);
  vh_trie_set_free_hook(NULL, NULL);
  vh_vside_free(&D->chold);
  vh_buf_free(&D->chrec);
  while (D->gate) {
    vh_reply_t *r = D->gate;
    D->gate = r->next;
    vh_durable_send(r, NULL);
  }
  vh_manifest_free(&D->man);
  vh_ids_free(&D->dead);
  vh_ids_free(&D->back);
  vh_ids_free(&D->sweep);
  vh_hist_free(D->hist);
  D->hist = NULL;
  free(D->last_man);
  free(D->open_man);
  free(D->fl);
  free(D);
  h->dur = NULL;
}

vh_store_t *vh_durable__store(vh_host_t *h) {
  return h->dur ? h->dur->store : NULL;
}

/* ---- marks (:mark, :unmark, :marks, `vedhost mark` on a running host) */

int vh_durable__mark(vh_host_t *h, const char *name, int unmark, char *err,
                     size_t cap) {
  vh_durable_t *D = h->dur;
  if (!D || !D->hist) {
    snprintf(err, cap, "no store is open");
    return VH_EINVAL;
  }
  char *m = NULL;
  int rc = unmark ? vh_hist_unmark(D->hist, name, &m)
                  : vh_hist_mark(D->hist, name, &m);
  if (rc != 0) {
    snprintf(err, cap, "%s", m ? m : vh_err_name(rc));
    free(m);
    return rc;
  }
  vh_log(VH_LOG_INFO, "vedhost", "%s '%s'", unmark ? "unmark" : "mark", name);
  return 0;
}

int vh_durable__marks(vh_host_t *h, vh_mark_t **out, size_t *n) {
  vh_durable_t *D = h->dur;
  *out = NULL;
  *n = 0;
  return D && D->hist ? vh_hist_marks(D->hist, out, n) : 0;
}

/* ---- :stats ---- */

void vh_durable__stats(vh_host_t *h, vh_durable_stats_t *out) {
  memset(out, 0, sizeof *out);
  vh_durable_t *D = h->dur;
  if (!D || !D->store) return;
  uint64_t durable = vh_store_durable_seq(D->store);
  vh_durable_account(D, durable);
  out->on = 1;
  out->submitted = D->last_sub;
  out->durable = durable;
  out->lag_slices = D->fl_n;
  out->lag_ms =
      D->fl_n ? (double)(vh_host__mono_ns() - D->fl[D->fl_head].t_ns) / 1e6 : 0;
  out->last_ms = D->last_ms;
  out->bytes = D->bytes;
  out->batches = D->batches;
  out->held = D->held;
  out->sweep_pending = D->sweep.n / 2;
  char *msg = NULL;
  out->failing = vh_store_last_error(D->store, &msg, &out->errors);
  snprintf(out->last_error, sizeof out->last_error, "%s", msg ? msg : "");
  free(msg);
}

/* ---- rollback (host/repl/repl_rollback.c) ---- */

int vh_durable__rewind(vh_host_t *h, vh_domain_t *d, uint64_t root,
                       uint64_t after, const vh_idlist_t *dead,
                       const vh_idlist_t *back, char *err, size_t cap) {
  vh_durable_t *D = h->dur;
  if (!D || !D->store) {
    snprintf(err, cap, "the host has no store");
    return -1;
  }
  /* No change record for the rollback's version (CHANGE RECORDS): the
   * held roots go first, as if they had never been held. */
  vh_durable_unhold(D);
  vh_tab_t *stub = vh_tab_stub(root);
  size_t n0 = D->dead.n;
  int rc = stub && D->hist ? 0 : VH_ENOMEM;
  for (size_t i = 0; rc == 0 && i < dead->n; i++)
    rc = vh_ids_push(&D->dead, VH_DEAD(dead->v[i], 0));
  D->back.n = 0;
  for (size_t i = 0; rc == 0 && i < back->n; i++)
    rc = vh_ids_push(&D->back, back->v[i]);
  if (rc != 0) {
    D->dead.n = n0;
    D->back.n = 0;
    if (stub) vh_tab_release(stub);
    snprintf(err, cap, "out of memory");
    return -1;
  }
  D->back_after = after;
  /* The replaced tree's in-memory nodes become views while this holds
   * them (so the swap frees nothing): whoever keeps some of them, their
   * release never reports a death, since part of them is alive again. */
  vh_tab_t *old = vhl_state_root(d->st);
  vh_tab_retain(old);
  vhl_state_set_root(h->L, d->st, stub);
  if (vh_tab_make_view(old) != 0)
    vh_log(VH_LOG_ERROR, d->name,
           "out of memory marking the state a rollback replaced: it stays in "
           "memory until the host stops (nothing is lost)");
  else
    vh_tab_release(old);
  return 0;
}
