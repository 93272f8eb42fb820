/*
 * sched.c - slices, the durable message queue and `after` timers, `every`
 * timers, calls from outside, and the end of a slice.
 *
 * SLICES. A slice is one turn of the libuv loop. Its boundary is the
 * prepare handle: libuv runs timers, idle and prepare callbacks, then
 * polls for I/O (and may block), then check and close callbacks, and
 * loops. vh_slice_end() runs from the prepare callback, i.e. after every
 * handler call of the turn and before the loop may block. Handler calls
 * commit one by one into the in-memory states (call.c), so ending a slice
 * is bookkeeping: replies to outside callers are released, ctx.now is reset
 * for the next slice, the slice counter grows, and a pending stop
 * (ved.exit, os.exit, SIGINT/SIGTERM) stops the loop. The flush hooks in
 * there too (vh_durable__slice_end): the slice's new roots go to the
 * store's writer, and replies wait until they are durable.
 *
 * THE SYSTEM STATE "__ved". A vhl_state_t like a domain's (so the store
 * persists it the same way), written only from C. Layout:
 *
 *   q      = { [b] = { [i] = msg | false } }  messages, where
 *            seq = b * VH_QBUCKET + i - 1 (buckets of consecutive seqs,
 *            kept in the array part: a send is a vector push)
 *   head   = seq of the next message to deliver: seqs below it are
 *            delivered, even when their bucket is still there
 *   seq    = next message seq to hand out
 *   timers = { [id] = { due, hdr, payload } }               `after` timers
 *   tid    = next timer id to hand out
 *
 *   hdr    = to .. "\0" .. from .. "\0" .. event   (one string: cheaper
 *            than three fields; from is "" outside handlers; domain names
 *            are identifiers, the event is the rest and may hold anything)
 *   msg    = ONE string: the message, header and payload together:
 *              offset  size  field
 *              0       1     format byte VH_MSG_V1 (0x01)
 *              1       1-10  varint hlen (persist/trie/vh_valenc.h varints)
 *              ..      hlen  hdr
 *              ..      rest  the payload as one VALUE of persist/trie/valenc.c
 *                            (nil included); nothing may follow it
 *            A message used to be a table { hdr, payload }: with the store
 *            that cost ~4 RocksDB keys per message (its table and CHAMP
 *            nodes, the payload's) written at send and deleted at
 *            delivery; as a string a leaf of 32 messages is one node.
 *            Nothing is released yet, so there is no migration: a data dir
 *            with messages queued in the old form would see them refused
 *            (logged and dropped) at delivery.
 *
 * `due` is ms since the epoch; a timer's payload is any state value
 * (absent when nil), kept as a table (timers are few); `false` marks the
 * slot of a message whose sending call failed.
 * A bucket is deleted once head has passed all of it, so at most one
 * partly delivered bucket (VH_QBUCKET messages) is kept around. Keys of
 * the queue are not hashed seqs on purpose: deliveries in seq order would
 * then path-copy most of a hash trie per slice; in buckets they touch one
 * vector leaf per 32 messages.
 *
 * ONE STEP PER SLICE. The system state is written under one edit token
 * per slice and committed at the end of the slice (vh_slice_end). A step
 * per handler call, like the domains', would path-copy the queue's nodes
 * at every ctx:send and then free the old path, decrementing the
 * refcount of every child of every freed 32-way node: profiled at about a
 * third of the cost of a call that sends. Nobody reads the system state
 * in the middle of a slice (it has no proxies), so mutating its nodes in
 * place for the whole slice is safe. A failing call is still undone
 * exactly: its messages become `false` and its timers are deleted again
 * (h->pend lists every seq and id it added), and nothing else in the
 * system state was touched by it. The seq / tid counters are written at
 * the end of the slice; numbers handed out are never reused.
 *
 * IN-MEMORY INDEX. heap_due holds (due, id) of committed `after` timers,
 * a binary min-heap (a restart rebuilds it from `timers`). A call's new
 * timers wait in h->pend and join the heap when the call commits. Seqs
 * and ids come from counters that never go back, even when a call rolls
 * back, so an entry is never confused with a later one.
 *
 * DELIVERY. Messages sent before a slice began (seq < h->deliver_upto)
 * are delivered in that slice, at most VH_BATCH per turn, from the idle
 * callback (the idle handle is active while any wait, which also keeps the
 * loop from blocking). A batch is first taken out of the queue (head
 * moves past it), then each message runs its handler: a failing handler
 * cannot put its message back, so nothing is delivered twice, and no
 * message is lost unless the process dies (then the store brings back
 * the state of the last durable slice, queue included). Taking a message
 * out decodes its payload into fresh tables (a new edit token each) that
 * only the handler call sees; a message string that does not decode is
 * logged and dropped. Due `after` timers are taken out the same way in
 * the timer callback, in (due, id) order.
 *
 * HOLD (store backpressure, durable.c). A slice starts work from the idle
 * callback (calls, REPL chunks, messages), the `after` timer, `every`
 * timers, and a hot reload. The first three ask vh_host__accepting first
 * (a reload is not held: it is rare and asked for by the operator; its
 * batch joins the queue like any other); while it says no (the store's write
 * queue is full, writes fail or stopped, or the host is stopping) they start
 * nothing: calls and messages stay queued, `after` timers stay in the
 * heap, an `every` tick is skipped, and vh_sched__update leaves the idle
 * handle and the `after` timer off (no busy loop). durable.c calls
 * vh_sched__update again when the hold ends. One exception: queued work
 * marked in_hold (the REPL's chunks) still runs during a hold (not while
 * stopping), with h->in_hold set; a
 * chunk that would change anything is rolled back with an error
 * (repl_server.c) and a read-only one answers at once, not behind the
 * output gate (its slice writes nothing; it may show slices that are not
 * durable yet, as the live state of an operator's console).
 *
 * STOP. SIGINT/SIGTERM, ved.exit and os.exit set stop_requested; at the
 * end of the slice the loop stops once every submitted slice is durable
 * (vh_durable__drained). Until then it keeps turning with no new slice
 * (signals, the REPL's commands, /healthz and /metrics still answer), and
 * logs what it waits for when the store is not keeping up. A second
 * SIGINT/SIGTERM sets stop_now: the loop stops at once and durable.c drops
 * what is unwritten (the store keeps its last durable slice; exit code 3).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_int.h"
#include "vh_bytes.h"
#include "vh_log.h"

#if defined(__GLIBC__) && !defined(VH_SANITIZE)
#include <malloc.h> /* malloc_trim */
#endif
/* Node cache bytes a turn without a handler must give back for a trim. */
#define VH_TRIM_MIN (1u << 20)

/* First byte of a stored message string (see the layout above). */
#define VH_MSG_V1 0x01

#define vh_container_of(ptr, type, field) \
  ((type *)((char *)(ptr)-offsetof(type, field)))

int64_t vh_host__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t vh_host__clock_ms(vh_host_t *h) {
  return h->vclock_on ? h->vclock : vh_host__wall_ms();
}

int64_t vh_host__now(vh_host_t *h) {
  if (h->slice_now == 0) h->slice_now = vh_host__clock_ms(h);
  return h->slice_now;
}

vh_domain_t *vh_host__find(vh_host_t *h, const char *name, size_t len) {
  for (int i = 0; i < h->ndoms; i++) {
    vh_domain_t *d = h->doms[i];
    if (vh_str_len(d->name_s) == len && memcmp(d->name, name, len) == 0)
      return d;
  }
  return NULL;
}

/* ---- message headers ---- */

/* Split the header of w into its parts (pointers into w->hdr's bytes). */
static void vh_hdr_parse(const vh_work_t *w, const char **to, size_t *tolen,
                         const char **ev, size_t *evlen) {
  const char *p = vh_str_data(w->hdr) + w->hoff;
  size_t n = w->hlen ? w->hlen : vh_str_len(w->hdr);
  const char *z1 = memchr(p, '\0', n);
  const char *z2 = z1 ? memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - p)) : NULL;
  if (!z2) { /* not ours: nothing will match it */
    *to = p;
    *tolen = 0;
    *ev = p;
    *evlen = 0;
    return;
  }
  *to = p;
  *tolen = (size_t)(z1 - p);
  *ev = z2 + 1;
  *evlen = n - (size_t)(z2 + 1 - p);
}

/* The header "to\0from\0event" [new], from the cache when possible. ev
 * [borrowed]. NULL on OOM. */
static vh_str_t *vh_sys_hdr(vh_host_t *h, vh_domain_t *to, vh_domain_t *from,
                            vh_str_t *ev) {
  uintptr_t k = (uintptr_t)to ^ ((uintptr_t)from * 31) ^ ((uintptr_t)ev * 17);
  vh_hdrc_t *c = &h->hdrc[(k >> 4) % VH_EVCACHE];
  if (c->hdr && c->to == to && c->from == from && c->ev == ev) {
    vh_str_retain(c->hdr);
    return c->hdr;
  }
  size_t tl = strlen(to->name), fl = from ? strlen(from->name) : 0;
  size_t el = vh_str_len(ev), n = tl + fl + el + 2;
  char stack[256], *buf = n <= sizeof stack ? stack : malloc(n);
  if (!buf) return NULL;
  memcpy(buf, to->name, tl);
  buf[tl] = '\0';
  if (fl) memcpy(buf + tl + 1, from->name, fl);
  buf[tl + 1 + fl] = '\0';
  memcpy(buf + tl + fl + 2, vh_str_data(ev), el);
  vh_str_t *hdr = vh_str_new(buf, n);
  if (buf != stack) free(buf);
  if (!hdr) return NULL;
  if (c->hdr) vh_str_release(c->hdr);
  if (c->ev) vh_str_release(c->ev);
  c->to = to;
  c->from = from;
  c->ev = ev;
  vh_str_retain(ev);
  c->hdr = hdr;
  vh_str_retain(hdr);
  return hdr;
}

/* ---- steps on the system state ---- */

int vh_sys__begin(vh_host_t *h) {
  if (h->sys_open) return 0;
  h->sys_work = vhl_state_root(h->sys);
  vh_tab_retain(h->sys_work);
  h->sys_edit = vh_edit_new();
  h->sys_open = 1;
  return 0;
}

void vh_sys__commit(vh_host_t *h) {
  if (!h->sys_open) return;
  vhl_state_set_root(h->L, h->sys, h->sys_work);
  h->sys_work = NULL;
  h->sys_open = 0;
}

void vh_sys__rollback(vh_host_t *h) {
  if (!h->sys_open) return;
  vh_tab_release(h->sys_work);
  h->sys_work = NULL;
  h->sys_open = 0;
}

/* The subtable sub of the working root [borrowed], or NULL. */
static vh_tab_t *vh_sys_sub(vh_host_t *h, vh_str_t *sub) {
  vh_val_t c;
  vh_tab_get(h->sys_work, vh_strv(sub), &c);
  return c.type == VH_TTAB ? c.u.t : NULL;
}

/* sub[key] = val in the open step. key [borrowed], normalized; val
 * [stolen, also on error]. The subtable is cloned once per step (then
 * written in place) and stored back into the working root. */
static int vh_sys_set(vh_host_t *h, vh_str_t *sub, vh_val_t key, vh_val_t val) {
  vh_tab_t *old = vh_sys_sub(h, sub), *t;
  int in_place = 0;
  if (old && vh_tab_edit(old) == h->sys_edit) {
    t = old;
    vh_tab_retain(t);
    in_place = 1;
  } else {
    t = old ? vh_tab_clone(old, h->sys_edit) : vh_tab_new(h->sys_edit);
    if (!t) {
      vh_val_release(val);
      return VH_ENOMEM;
    }
  }
  int rc = vh_tab_set(&t, key, val, h->sys_edit);
  if (rc != 0) {
    vh_tab_release(t);
    return rc;
  }
  if (in_place && t == old) {
    vh_tab_release(t); /* written in place: the root holds it already */
    return 0;
  }
  return vh_tab_set(&h->sys_work, vh_strv(sub), vh_tabv(t), h->sys_edit);
}

/* A table {v[0], .., v[n-1]} built with the step's token. Values
 * [stolen]. */
static int vh_sys_tuple(vh_host_t *h, vh_val_t *v, int n, vh_tab_t **out) {
  vh_tab_t *t = vh_tab_new(h->sys_edit);
  int rc = t ? 0 : VH_ENOMEM;
  for (int i = 0; i < n; i++) {
    if (rc == 0)
      rc = vh_tab_set(&t, vh_int(i + 1), v[i], h->sys_edit);
    else
      vh_val_release(v[i]);
  }
  if (rc != 0) {
    if (t) vh_tab_release(t);
    return rc;
  }
  *out = t;
  return 0;
}

static int vh_pend_grow(void **p, size_t *cap, size_t n, size_t size) {
  return vh_grow(p, cap, n + 1, size);
}

/* The bucket table holding seq [borrowed], or NULL. */
static vh_tab_t *vh_sys_bucket(vh_host_t *h, int64_t seq) {
  vh_tab_t *q = vh_sys_sub(h, h->k_q);
  vh_val_t b = vh_nil();
  if (q) vh_tab_get_int(q, seq / VH_QBUCKET, &b);
  return b.type == VH_TTAB ? b.u.t : NULL;
}

/* q[b][i] = val for seq (val [stolen]): the bucket is made writable (once
 * per slice) and stored back. */
static int vh_sys_qset(vh_host_t *h, int64_t seq, vh_val_t val) {
  vh_tab_t *q = vh_sys_sub(h, h->k_q);
  vh_val_t old = vh_nil();
  if (q) vh_tab_get_int(q, seq / VH_QBUCKET, &old);
  vh_tab_t *b;
  int in_place = 0;
  if (old.type == VH_TTAB && vh_tab_edit(old.u.t) == h->sys_edit) {
    b = old.u.t;
    vh_tab_retain(b);
    in_place = 1;
  } else {
    b = old.type == VH_TTAB ? vh_tab_clone(old.u.t, h->sys_edit)
                            : vh_tab_new(h->sys_edit);
    if (!b) {
      vh_val_release(val);
      return VH_ENOMEM;
    }
  }
  int rc = vh_tab_set(&b, vh_int(seq % VH_QBUCKET + 1), val, h->sys_edit);
  if (rc != 0) {
    vh_tab_release(b);
    return rc;
  }
  if (in_place && b == old.u.t) {
    vh_tab_release(b);
    return 0;
  }
  return vh_sys_set(h, h->k_q, vh_int(seq / VH_QBUCKET), vh_tabv(b));
}

/* The start that send and after share. While replaying, drops the message
 * (replay.c: what leaves the slice is dropped) and returns 1. Else makes
 * its header (to, from, event [stolen]) into *hdr [new] and room for one
 * more entry (`size` bytes) in the pending array *arr (n used, *cap): 0,
 * or VH_ENOMEM with payload released. */
static int vh_sys_out_begin(vh_host_t *h, vh_domain_t *to, vh_domain_t *from,
                            vh_str_t *event, vh_val_t payload, void **arr,
                            size_t *cap, size_t n, size_t size,
                            vh_str_t **hdr) {
  if (h->replaying) {
    vh_str_release(event);
    vh_val_release(payload);
    return 1;
  }
  *hdr = vh_sys_hdr(h, to, from, event);
  vh_str_release(event);
  if (!*hdr || vh_pend_grow(arr, cap, n, size) != 0) {
    if (*hdr) vh_str_release(*hdr);
    vh_val_release(payload);
    return VH_ENOMEM;
  }
  return 0;
}

int vh_sys__send(vh_host_t *h, vh_domain_t *to, vh_domain_t *from,
                 vh_str_t *event, vh_val_t payload) {
  vh_str_t *hdr;
  int rc =
      vh_sys_out_begin(h, to, from, event, payload, (void **)&h->pend.seqs,
                       &h->pend.capseqs, h->pend.nseqs, sizeof(uint64_t), &hdr);
  if (rc != 0) return rc > 0 ? 0 : rc;
  /* The message string (layout in the file comment), built in h->qbuf. */
  vh_valenc_buf_t *b = &h->qbuf;
  unsigned char v1 = VH_MSG_V1;
  b->len = 0;
  rc = vh_valenc_buf_put(b, &v1, 1);
  if (rc == 0) rc = vh_valenc_put_varint(b, vh_str_len(hdr));
  if (rc == 0) rc = vh_valenc_buf_put(b, vh_str_data(hdr), vh_str_len(hdr));
  if (rc == 0) rc = vh_valenc_append(b, payload);
  vh_str_release(hdr);
  vh_val_release(payload);
  vh_str_t *m = rc == 0 ? vh_str_new((const char *)b->p, b->len) : NULL;
  if (b->cap > 65536) vh_valenc_buf_free(b); /* keep no huge scratch */
  if (!m) return rc != 0 ? rc : VH_ENOMEM;
  int64_t seq = h->next_seq++;
  rc = vh_sys_qset(h, seq, vh_strv(m));
  if (rc != 0) return rc;
  h->pend.seqs[h->pend.nseqs++] = (uint64_t)seq;
  return 0;
}

int vh_sys__after(vh_host_t *h, vh_domain_t *dom, int64_t due, vh_str_t *event,
                  vh_val_t payload) {
  vh_str_t *hdr;
  int rc =
      vh_sys_out_begin(h, dom, NULL, event, payload, (void **)&h->pend.dues,
                       &h->pend.capdues, h->pend.ndues, sizeof(vh_due_t), &hdr);
  if (rc != 0) return rc > 0 ? 0 : rc;
  vh_val_t v[3] = {vh_int(due), vh_strv(hdr), payload};
  vh_tab_t *t;
  rc = vh_sys_tuple(h, v, 3, &t);
  if (rc != 0) return rc;
  int64_t id = h->next_tid++;
  rc = vh_sys_set(h, h->k_timers, vh_int(id), vh_tabv(t));
  if (rc != 0) return rc;
  h->pend.dues[h->pend.ndues].due = due;
  h->pend.dues[h->pend.ndues].id = id;
  h->pend.ndues++;
  return 0;
}

/* ---- the timer heap ---- */

static int vh_due_less(vh_due_t a, vh_due_t b) {
  return a.due < b.due || (a.due == b.due && a.id < b.id);
}

static int vh_heap_push(vh_host_t *h, vh_due_t e) {
  if (vh_pend_grow((void **)&h->heap_due, &h->capheap, h->nheap,
                   sizeof(vh_due_t)) != 0)
    return VH_ENOMEM;
  size_t i = h->nheap++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!vh_due_less(e, h->heap_due[p])) break;
    h->heap_due[i] = h->heap_due[p];
    i = p;
  }
  h->heap_due[i] = e;
  if (i == 0) h->timers_dirty = 1;
  return 0;
}

static vh_due_t vh_heap_pop(vh_host_t *h) {
  vh_due_t top = h->heap_due[0], last = h->heap_due[--h->nheap];
  size_t i = 0, n = h->nheap;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && vh_due_less(h->heap_due[c + 1], h->heap_due[c])) c++;
    if (!vh_due_less(h->heap_due[c], last)) break;
    h->heap_due[i] = h->heap_due[c];
    i = c;
  }
  if (n > 0) h->heap_due[i] = last;
  h->timers_dirty = 1;
  return top;
}

int vh_sys__restore_timer(vh_host_t *h, int64_t due, int64_t id) {
  if (id >= h->next_tid) h->next_tid = id + 1;
  return vh_heap_push(h, (vh_due_t){due, id});
}

/* ---- every timers ---- */

void vh_every__free(vh_every_t *e) {
  vh_str_release(e->event);
  vh_val_release(e->payload);
  free(e);
}

static void vh_every_on_timer(uv_timer_t *t) {
  vh_every_t *e = (vh_every_t *)t->data;
  vh_host_t *h = e->h;
  if (!vh_host__accepting(h, NULL, 0)) return; /* held: tick skipped */
  h->inlog.kind = VH_IN_EVERY;
  h->inlog.id = e->ms;
  vh_host__dispatch(h, e->dom, vh_str_data(e->event), vh_str_len(e->event),
                    VH_DISPATCH_EVENT, e->payload, NULL, NULL);
}

static void vh_every_start(vh_host_t *h, vh_every_t *e) {
  uv_timer_init(&h->loop, &e->timer);
  e->timer.data = e;
  e->next = e->dom->everies;
  e->dom->everies = e;
  if (h->vclock_on) { /* virtual time: vh_sched__fire_due ticks it */
    e->vdue = h->vclock + e->ms;
    e->vorder = h->vorder++;
    return;
  }
  uv_update_time(&h->loop);
  uv_timer_start(&e->timer, vh_every_on_timer, (uint64_t)e->ms,
                 (uint64_t)e->ms);
}

/* ---- pending effects of a call ---- */

void vh_sys__pending_apply(vh_host_t *h) {
  vh_pending_t *p = &h->pend;
  if (h->pend_hold) return; /* a reload applies or drops it all (reload.c) */
  for (size_t i = 0; i < p->ndues; i++)
    if (vh_heap_push(h, p->dues[i]) != 0)
      vh_log(VH_LOG_ERROR, "vedhost", "out of memory indexing a timer");
  while (p->everies) {
    vh_every_t *e = p->everies;
    p->everies = e->next;
    if (h->replaying) /* replay.c: timers never leave a replay */
      vh_every__free(e);
    else
      vh_every_start(h, e);
  }
  /* sent messages become deliverable at the end of the slice */
  p->nseqs = p->ndues = 0;
}

void vh_sys__pending_drop(vh_host_t *h) {
  vh_pending_t *p = &h->pend;
  /* Undo the call's entries in the slice's step (see the file comment). */
  int rc = 0;
  for (size_t i = 0; i < p->nseqs && h->sys_open; i++)
    rc |= vh_sys_qset(h, (int64_t)p->seqs[i], vh_bool(0));
  for (size_t i = 0; i < p->ndues && h->sys_open; i++)
    rc |= vh_sys_set(h, h->k_timers, vh_int(p->dues[i].id), vh_nil());
  if (rc != 0)
    vh_log(VH_LOG_ERROR, "vedhost",
           "out of memory undoing a failed call's messages and timers");
  while (p->everies) {
    vh_every_t *e = p->everies;
    p->everies = e->next;
    vh_every__free(e);
  }
  p->nseqs = p->ndues = 0;
}

/* ---- delivery ---- */

/* Fill w from the timer table {due, hdr, payload} (hdr at index at).
 * Returns 1 if it is a well-formed entry. */
static int vh_sched_work(vh_work_t *w, vh_val_t m, int at,
                         vh_work_kind_t kind) {
  vh_val_t hdr, pl;
  if (m.type != VH_TTAB) return 0; /* false: the sending call failed */
  vh_tab_get_int(m.u.t, at, &hdr);
  vh_tab_get_int(m.u.t, at + 1, &pl);
  if (hdr.type != VH_TSTR) return 0;
  w->kind = kind;
  w->hdr = hdr.u.s;
  w->hoff = w->hlen = 0;
  w->payload = pl;
  vh_str_retain(w->hdr);
  vh_val_retain(w->payload);
  return 1;
}

/* Fill w from the stored message m (a string, see the file comment):
 * w->hdr holds m itself, the payload is decoded into fresh tables.
 * Returns 1 if it is a message; 0 for `false` (the sending call failed)
 * and, logged, for anything that does not decode. */
static int vh_sched_msg(vh_work_t *w, vh_val_t m, int64_t seq) {
  if (m.type != VH_TSTR) return 0;
  const unsigned char *p = (const unsigned char *)vh_str_data(m.u.s);
  size_t n = vh_str_len(m.u.s), pos = 1;
  uint64_t hlen = 0;
  int rc = VH_ECORRUPT;
  if (n > 0 && p[0] == VH_MSG_V1 &&
      vh_valenc_get_varint(p, n, &pos, &hlen) == 0 && hlen >= 2 &&
      hlen <= n - pos) {
    w->hoff = pos;
    w->hlen = (size_t)hlen;
    rc = vh_valenc_decode(p + pos + hlen, n - pos - (size_t)hlen, vh_edit_new(),
                          &w->payload);
  }
  if (rc != 0) {
    vh_log(VH_LOG_ERROR, "vedhost", "message %lld dropped: %s (%zu bytes)",
           (long long)seq,
           rc == VH_ENOMEM ? "out of memory decoding it" : "it does not decode",
           n);
    return 0;
  }
  w->kind = VH_WORK_MSG;
  w->hdr = m.u.s;
  vh_str_retain(w->hdr);
  return 1;
}

/* Take up to n messages sent before this slice into h->batch: head moves
 * past them (and past the buckets they empty) in the slice's step.
 * Returns how many were taken. */
static size_t vh_sched_take_msgs(vh_host_t *h, size_t n) {
  size_t got = 0;
  vh_sys__begin(h);
  vh_tab_t *b = NULL;
  int64_t bno = -1;
  while (got < n && h->head < h->deliver_upto) {
    int64_t seq = h->head++;
    if (seq / VH_QBUCKET != bno) {
      bno = seq / VH_QBUCKET;
      b = vh_sys_bucket(h, seq);
    }
    vh_val_t m = vh_nil();
    if (b) vh_tab_get_int(b, seq % VH_QBUCKET + 1, &m);
    if (vh_sched_msg(&h->batch[got], m, seq)) h->batch[got++].id = seq;
    if (seq % VH_QBUCKET == VH_QBUCKET - 1) { /* bucket fully delivered */
      b = NULL;
      if (vh_sys_set(h, h->k_q, vh_int(bno), vh_nil()) != 0) break;
    }
  }
  if (vh_tab_set(&h->sys_work, vh_strv(h->k_head), vh_int(h->head),
                 h->sys_edit) != 0)
    vh_log(VH_LOG_ERROR, "vedhost", "out of memory advancing the queue");
  return got;
}

/* Take the due `after` timers (at most VH_BATCH) out of the system state
 * into h->batch, in (due, id) order. Returns how many were taken. */
static size_t vh_sched_take_timers(vh_host_t *h, int64_t now) {
  size_t got = 0;
  vh_sys__begin(h);
  while (got < VH_BATCH && h->nheap > 0 && h->heap_due[0].due <= now) {
    int64_t id = vh_heap_pop(h).id;
    vh_tab_t *timers = vh_sys_sub(h, h->k_timers);
    vh_val_t m = vh_nil();
    if (timers) vh_tab_get_int(timers, id, &m);
    if (vh_sched_work(&h->batch[got], m, 2, VH_WORK_TIMER))
      h->batch[got++].id = id;
    if (vh_sys_set(h, h->k_timers, vh_int(id), vh_nil()) != 0) {
      vh_log(VH_LOG_ERROR, "vedhost", "out of memory removing a timer");
      break;
    }
  }
  return got;
}

/* The domain and event of a work item; NULL (and a warning) when the
 * domain is gone. */
static vh_domain_t *vh_sched_target(vh_host_t *h, vh_work_t *w, const char **ev,
                                    size_t *evlen) {
  const char *to;
  size_t tolen;
  vh_hdr_parse(w, &to, &tolen, ev, evlen);
  vh_domain_t *d = vh_host__find(h, to, tolen);
  if (!d)
    vh_log(VH_LOG_WARN, "vedhost",
           "%s '%.*s' for unknown domain '%.*s' dropped",
           w->kind == VH_WORK_TIMER ? "timer" : "message", (int)*evlen, *ev,
           (int)tolen, to);
  return d;
}

/* Run the handlers of h->batch[0..n) and release the batch. */
static void vh_sched_run_batch(vh_host_t *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    vh_work_t *w = &h->batch[i];
    const char *ev;
    size_t evlen;
    vh_domain_t *d = vh_sched_target(h, w, &ev, &evlen);
    h->inlog.kind = w->kind == VH_WORK_TIMER ? VH_IN_AFTER : VH_IN_MSG;
    h->inlog.id = w->id;
    if (d)
      vh_host__dispatch(h, d, ev, evlen, VH_DISPATCH_EVENT, w->payload, NULL,
                        NULL);
    vh_str_release(w->hdr);
    vh_val_release(w->payload);
  }
}

static void vh_sched_reply(vh_host_t *h, vh_work_t *w, int code, vh_val_t reply,
                           char *err) {
  vh_reply_t *r = malloc(sizeof *r);
  if (!r) { /* cannot queue it: answer now rather than never */
    w->cb(w->arg, err ? code : VH_ENOMEM, reply, err ? err : "out of memory");
    vh_val_release(reply);
    free(err);
    return;
  }
  r->cb = w->cb;
  r->arg = w->arg;
  r->reply = reply;
  r->err = err;
  r->code = err ? code : 0;
  r->now = 0;
  r->next = NULL;
  if (h->replies_tail)
    h->replies_tail->next = r;
  else
    h->replies = r;
  h->replies_tail = r;
}

/* Run the queued work marked in_hold only (the rest stays queued, in
 * order): during a hold, read-only (see HOLD above). */
static void vh_sched_run_in_hold(vh_host_t *h) {
  vh_work_t **pp = &h->calls, *last = NULL;
  while (*pp) {
    vh_work_t *w = *pp;
    if (!w->in_hold) {
      last = w;
      pp = &w->next;
      continue;
    }
    *pp = w->next;
    vh_val_t reply = vh_nil();
    char *err = NULL;
    h->in_hold = 1;
    int code = w->run(h, w, &reply, &err);
    h->in_hold = 0;
    vh_reply_t *before = h->replies_tail;
    vh_sched_reply(h, w, code, reply, err);
    if (h->replies_tail != before) h->replies_tail->now = 1;
    vh_str_release(w->hdr);
    vh_val_release(w->payload);
    free(w);
  }
  h->calls_tail = last;
}

static int vh_sched_has_in_hold(vh_host_t *h) {
  for (vh_work_t *w = h->calls; w; w = w->next)
    if (w->in_hold) return 1;
  return 0;
}

/* A work item (a REPL chunk, a plugin's item): its writes are not inputs
 * the log can replay, so a slice where one changed a domain's root is
 * unreplayable (det.c). Messages it queues (ved.send) are recorded when
 * they are delivered. */
static int vh_sched_run_work(vh_host_t *h, vh_work_t *w, vh_val_t *reply,
                             char **err) {
  vh_tab_t *stack[64];
  int n = h->ndoms; /* roots are held, so an address is never reused */
  vh_tab_t **roots = n <= 64 ? stack : malloc((size_t)n * sizeof *roots);
  for (int i = 0; roots && i < n; i++) {
    roots[i] = vhl_state_root(h->doms[i]->st);
    if (roots[i]) vh_tab_retain(roots[i]);
  }
  int code = w->run(h, w, reply, err);
  for (int i = 0; i < n && i < h->ndoms; i++) {
    if (!roots || roots[i] != vhl_state_root(h->doms[i]->st)) {
      char why[300];
      snprintf(why, sizeof why,
               "a REPL chunk (or plugin work item) wrote domain %s directly "
               "(only messages it queued are recorded)",
               h->doms[i]->name);
      vh_det__unreplayable(h, why);
      break;
    }
  }
  for (int i = 0; roots && i < n; i++)
    if (roots[i]) vh_tab_release(roots[i]);
  if (roots != stack) free(roots);
  return code;
}

static void vh_sched_run_calls(vh_host_t *h) {
  vh_work_t *w = h->calls;
  h->calls = h->calls_tail = NULL;
  while (w) {
    vh_work_t *next = w->next;
    vh_val_t reply = vh_nil();
    char *err = NULL;
    int code = VH_HOST_EROLLBACK;
    if (w->run) { /* queued by vh_sched__queue_work */
      code = vh_sched_run_work(h, w, &reply, &err);
    } else {
      const char *ev;
      size_t evlen;
      vh_domain_t *d = vh_sched_target(h, w, &ev, &evlen);
      h->inlog.kind = VH_IN_CALL;
      if (d) {
        code = vh_host__dispatch(h, d, ev, evlen, VH_DISPATCH_EVENT, w->payload,
                                 &reply, &err);
      } else {
        err = strdup("the domain is gone");
        code = VH_HOST_ENODOMAIN;
      }
    }
    vh_sched_reply(h, w, code, reply, err);
    vh_str_release(w->hdr);
    vh_val_release(w->payload);
    free(w);
    w = next;
  }
}

static void vh_sched_on_idle(uv_idle_t *idle) {
  vh_host_t *h = vh_container_of(idle, vh_host_t, idle);
  if (h->phase != VH_PHASE_RUN) return;
  if (!vh_host__accepting(h, NULL, 0)) {
    if (!h->stop_requested && h->calls) vh_sched_run_in_hold(h);
    uv_idle_stop(&h->idle); /* re-armed when the hold ends */
    return;
  }
  if (h->calls) vh_sched_run_calls(h);
  if (h->head < h->deliver_upto)
    vh_sched_run_batch(h, vh_sched_take_msgs(h, VH_BATCH));
}

static void vh_sched_on_after(uv_timer_t *t) {
  vh_host_t *h = vh_container_of(t, vh_host_t, after_timer);
  h->timers_dirty = 1; /* re-armed at the end of the slice */
  if (!vh_host__accepting(h, NULL, 0)) return; /* held: stays in the heap */
  vh_sched_run_batch(h, vh_sched_take_timers(h, vh_host__clock_ms(h)));
}

/* ---- virtual time (host/testing) ---- */

int64_t vh_sched__next_due(vh_host_t *h) {
  int64_t t = h->nheap ? h->heap_due[0].due : INT64_MAX;
  for (int i = 0; i < h->ndoms; i++)
    for (vh_every_t *e = h->doms[i]->everies; e; e = e->next)
      if (e->vdue < t) t = e->vdue;
  return t;
}

static int vh_every_order(const void *a, const void *b) {
  const vh_every_t *x = *(vh_every_t *const *)a, *y = *(vh_every_t *const *)b;
  return x->vorder < y->vorder ? -1 : x->vorder > y->vorder;
}

void vh_sched__fire_due(vh_host_t *h, int64_t now) {
  h->timers_dirty = 1;
  vh_sched_run_batch(h, vh_sched_take_timers(h, now));
  /* Collect first: a handler may start (or a reload stop) every timers. */
  size_t n = 0, cap = 0;
  vh_every_t **due = NULL;
  for (int i = 0; i < h->ndoms; i++)
    for (vh_every_t *e = h->doms[i]->everies; e; e = e->next) {
      if (e->vdue > now) continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 8;
        vh_every_t **nd = realloc(due, cap * sizeof *nd);
        if (!nd) break;
        due = nd;
      }
      due[n++] = e;
    }
  if (n > 1) qsort(due, n, sizeof *due, vh_every_order);
  for (size_t i = 0; i < n; i++) {
    vh_every_t *e = due[i];
    e->vdue += e->ms;
    if (e->vdue <= now) e->vdue = now + e->ms; /* never behind the clock */
    vh_host__dispatch(h, e->dom, vh_str_data(e->event), vh_str_len(e->event),
                      VH_DISPATCH_EVENT, e->payload, NULL, NULL);
  }
  free(due);
}

/* ---- slices ---- */

int vh_host__accepting(vh_host_t *h, char *why, size_t cap) {
  if (h->phase != VH_PHASE_RUN || h->stop_requested) {
    if (why) snprintf(why, cap, "vedhost is stopping");
    return 0;
  }
  return vh_durable__accepting(h, why, cap);
}

void vh_sched__update(vh_host_t *h) {
  if (h->phase != VH_PHASE_RUN) return;
  if (!vh_host__accepting(h, NULL, 0)) { /* held: nothing starts */
    if (!h->stop_requested && vh_sched_has_in_hold(h))
      uv_idle_start(&h->idle, vh_sched_on_idle);
    else
      uv_idle_stop(&h->idle);
    uv_timer_stop(&h->after_timer);
    h->timers_dirty = 1; /* re-armed when the hold ends */
    return;
  }
  if (h->head < h->deliver_upto || h->calls)
    uv_idle_start(&h->idle, vh_sched_on_idle);
  else
    uv_idle_stop(&h->idle);
  if (h->timers_dirty && !h->vclock_on) { /* virtual: the driver fires */
    h->timers_dirty = 0;
    if (h->nheap == 0) {
      uv_timer_stop(&h->after_timer);
    } else {
      int64_t delay = h->heap_due[0].due - vh_host__clock_ms(h);
      uv_update_time(&h->loop);
      uv_timer_start(&h->after_timer, vh_sched_on_after,
                     delay > 0 ? (uint64_t)delay : 0, 0);
    }
  }
}

/* The integer at key k of the open system step, or -1. */
static int64_t vh_sched_sys_int(vh_host_t *h, vh_str_t *k) {
  vh_val_t v;
  vh_tab_get(h->sys_work, vh_strv(k), &v);
  return v.type == VH_TINT ? v.u.i : -1;
}

void vh_slice_end(vh_host_t *h) {
  if (h->phase != VH_PHASE_RUN) return;
  /* Node blocks freed two slice ends ago and not reused go back to malloc
   * (persist/trie/mem.c, NODE CACHE); before step 2, whose release of the
   * replaced nodes fills the cache for the next slice's path copies. */
  size_t gave = vh_mem_tick();
  /* A turn without a handler (the loop goes idle after it, or waits for
   * the store): the blocks the last slice freed go back too, not only
   * the older generation; else they stay cached for as long as the host
   * is idle (VmRSS 103-105 MB against 94 after bench/run's 10M updates at
   * K = 1M, when the loop went idle one turn after its last slice). */
  if (h->slice_calls == 0) gave += vh_mem_tick();
  vh_host__alloc_tick(h); /* call.c, SMALL BLOCKS: idle, none kept */
#if defined(__GLIBC__) && !defined(VH_SANITIZE)
  /* A turn without a handler that gave a slice's worth of blocks back (an
   * idle host, the turn after its last slice): have malloc return the
   * free pages, as the writer does when its queue drains (that happened
   * before these blocks were freed; else VmRSS kept them, +3.6 MB after
   * bench/run's 10M updates at K = 1M: bench/README.md "perf/loop"). */
  if (h->slice_calls == 0 && gave >= VH_TRIM_MIN) malloc_trim(0);
#else
  (void)gave;
#endif
  if (h->boot_ms < 0) /* for /metrics: how long a (re)start took */
    h->boot_ms = (int64_t)((uv_hrtime() - h->created_ns) / 1000000);
  /* 1. The system state's step of this slice becomes its new version.
   *    Its roots, with every state changed in this slice, go to the
   *    store's writer in step 2; the replies then wait until that batch
   *    is durable. The next slice writes the system state under a fresh
   *    token, so the nodes handed over are never mutated again. */
  if (h->sys_open) {
    /* Only counters that moved are written: a slice that changed nothing
     * (a read-only REPL chunk) leaves the system root as it was, so it is
     * not a version (persist/store/history.c, README "Versions"). */
    if ((vh_sched_sys_int(h, h->k_seq) != h->next_seq &&
         vh_tab_set(&h->sys_work, vh_strv(h->k_seq), vh_int(h->next_seq),
                    h->sys_edit) != 0) ||
        (vh_sched_sys_int(h, h->k_tid) != h->next_tid &&
         vh_tab_set(&h->sys_work, vh_strv(h->k_tid), vh_int(h->next_tid),
                    h->sys_edit) != 0))
      vh_log(VH_LOG_ERROR, "vedhost", "out of memory saving the counters");
    vh_sys__commit(h);
  }

  /* Stopping: versions pinned by plugins' readers die now, so the nodes
   * only they held are deleted in this last batch. */
  if (h->stop_requested) vh_host__run_hooks(h, VH_HOOK_LAST_SLICE);

  /* 2. Write the slice to the store (durable.c) and put the replies of
   *    outside calls made in this slice behind the output gate: they are
   *    sent once the slice is durable. */
  vh_durable__slice_end(h);

  /* 3. The next slice: new ctx.now, and what it may deliver. */
  if (!h->inlog_carry) vh_det__slice_reset(h);
  h->slice_seq++;
  h->slice_calls = 0;
  h->slice_now = 0;
  h->deliver_upto = h->next_seq;

  /* 4. Stop after this slice if asked (ved.exit, os.exit, signal), once
   *    the store has written every slice (see STOP above). */
  if (h->stop_requested) {
    char why[512];
    if (!h->stop_now && !vh_durable__drained(h, why, sizeof why)) {
      /* said at once while held, else once the wait passed 1 s (a
       * normal stop waits a few ms and says nothing) */
      int64_t now = vh_host__mono_ns();
      if (h->stop_ns == 0) h->stop_ns = now;
      if (!h->drain_logged && (!vh_durable__accepting(h, NULL, 0) ||
                               now - h->stop_ns >= 1000000000LL)) {
        h->drain_logged = 1;
        vh_log(VH_LOG_WARN, "vedhost",
               "stopping: waiting for %s; send SIGTERM or SIGINT again to "
               "stop now and drop them",
               why);
      }
      vh_sched__update(h); /* held: idle and timers off */
      return;
    }
    h->phase = VH_PHASE_STOP;
    uv_stop(&h->loop);
    return;
  }
  vh_sched__update(h);
}

static void vh_sched_on_prepare(uv_prepare_t *p) {
  vh_slice_end(vh_container_of(p, vh_host_t, prepare));
}

static void vh_sched_on_signal(uv_signal_t *s, int signum) {
  vh_host_t *h = (vh_host_t *)s->data;
  if (h->phase != VH_PHASE_RUN) return;
  if (h->stop_requested) { /* the second one: do not wait for the store */
    vh_log(VH_LOG_WARN, "vedhost",
           "%s received again: stopping now; slices not yet written are "
           "dropped",
           signum == SIGINT ? "SIGINT" : "SIGTERM");
    h->stop_now = 1;
    vh_slice_end(h);
    return;
  }
  vh_log(VH_LOG_INFO, "vedhost", "%s received: stopping after this slice",
         signum == SIGINT ? "SIGINT" : "SIGTERM");
  if (!h->stop_requested) h->exit_code = 0;
  h->stop_requested = 1;
  vh_slice_end(h); /* no handler runs now: this ends the current slice */
}

void vh_host_stop(vh_host_t *h, int code) {
  h->stop_requested = 1;
  h->exit_code = code;
}

int vh_host_call(vh_host_t *h, const char *domain, const char *event,
                 vh_val_t payload, vh_host_reply_fn cb, void *arg) {
  vh_domain_t *d = vh_host__find(h, domain, strlen(domain));
  if (!d) {
    vh_val_release(payload);
    return VH_HOST_ENODOMAIN;
  }
  if (h->phase == VH_PHASE_STOP) {
    vh_val_release(payload);
    return VH_HOST_ESTATE;
  }
  vh_work_t *w = calloc(1, sizeof *w);
  vh_str_t *ev = vh_str_new(event, strlen(event));
  vh_str_t *hdr = ev ? vh_sys_hdr(h, d, NULL, ev) : NULL;
  if (ev) vh_str_release(ev);
  if (!w || !hdr) {
    free(w);
    if (hdr) vh_str_release(hdr);
    vh_val_release(payload);
    return VH_ENOMEM;
  }
  w->kind = VH_WORK_CALL;
  w->hdr = hdr;
  w->payload = payload;
  w->cb = cb;
  w->arg = arg;
  if (h->calls_tail)
    h->calls_tail->next = w;
  else
    h->calls = w;
  h->calls_tail = w;
  if (h->phase == VH_PHASE_RUN) uv_idle_start(&h->idle, vh_sched_on_idle);
  return 0;
}

void vh_sched__queue_work(vh_host_t *h, vh_work_t *w) {
  w->next = NULL;
  if (h->calls_tail)
    h->calls_tail->next = w;
  else
    h->calls = w;
  h->calls_tail = w;
  vh_sched__update(h); /* starts the idle handle that runs calls */
}

/* ---- life cycle ---- */

int vh_sched__init(vh_host_t *h) {
  static const char *const names[] = {"q", "timers", "seq", "tid", "head"};
  vh_str_t **keys[] = {&h->k_q, &h->k_timers, &h->k_seq, &h->k_tid, &h->k_head};
  for (int i = 0; i < 5; i++) {
    *keys[i] = vh_str_new(names[i], strlen(names[i]));
    if (!*keys[i]) return VH_ENOMEM;
  }
  h->batch = malloc(VH_BATCH * sizeof *h->batch);
  if (!h->batch) return VH_ENOMEM;
  h->next_seq = h->head = h->deliver_upto = 0;
  h->next_tid = 1;
  if (uv_loop_init(&h->loop) != 0) return VH_ENOMEM;
  uv_prepare_init(&h->loop, &h->prepare);
  uv_idle_init(&h->loop, &h->idle);
  uv_timer_init(&h->loop, &h->after_timer);
  uv_signal_init(&h->loop, &h->sigint);
  uv_signal_init(&h->loop, &h->sigterm);
  h->sigint.data = h->sigterm.data = h;
  h->handles_ready = 1;
  return 0;
}

/* The first slice starts: handles on, messages queued at load time are
 * deliverable in it. */
void vh_sched__begin_run(vh_host_t *h) {
  h->phase = VH_PHASE_RUN;
  h->deliver_upto = h->next_seq;
  h->timers_dirty = 1;
  uv_prepare_start(&h->prepare, vh_sched_on_prepare);
  if (h->vclock_on) return; /* a test harness: the process's signals stay */
  uv_signal_start(&h->sigint, vh_sched_on_signal, SIGINT);
  uv_signal_start(&h->sigterm, vh_sched_on_signal, SIGTERM);
}

static void vh_sched_on_close(uv_handle_t *hd) {
  /* Only every timers carry data among timers (after_timer's is NULL). */
  if (hd->type == UV_TIMER && hd->data) vh_every__free((vh_every_t *)hd->data);
}

static void vh_sched_walk_close(uv_handle_t *hd, void *arg) {
  (void)arg;
  if (!uv_is_closing(hd)) uv_close(hd, vh_sched_on_close);
}

void vh_sched__close(vh_host_t *h) {
  if (!h->handles_ready) return;
  h->phase = VH_PHASE_STOP;
  h->after_timer.data = NULL;
  uv_walk(&h->loop, vh_sched_walk_close, NULL);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&h->loop) != 0)
    vh_log(VH_LOG_WARN, "vedhost", "a libuv handle was left open at exit");
  h->handles_ready = 0;
  for (int i = 0; i < h->ndoms; i++) h->doms[i]->everies = NULL;
}

/* when_durable: ride the slice's reply list, so the output gate releases
 * it with the replies of the current slice. */
typedef struct vh_wd {
  void (*fn)(void *arg, int durable);
  void *arg;
} vh_wd_t;

static void vh_wd_fire(void *arg, int code, vh_val_t reply, const char *err) {
  (void)code;
  (void)reply;
  vh_wd_t *wd = arg;
  wd->fn(wd->arg, err == NULL);
  free(wd);
}

int vh_host__when_durable(vh_host_t *h, void (*fn)(void *arg, int durable),
                          void *arg) {
  vh_wd_t *wd = malloc(sizeof *wd);
  vh_reply_t *r = malloc(sizeof *r);
  if (!wd || !r) {
    free(wd);
    free(r);
    return VH_ENOMEM;
  }
  wd->fn = fn;
  wd->arg = arg;
  r->cb = vh_wd_fire;
  r->arg = wd;
  r->reply = vh_nil();
  r->err = NULL;
  r->code = 0;
  r->gate = 0;
  r->now = 0;
  r->next = NULL;
  if (h->replies_tail)
    h->replies_tail->next = r;
  else
    h->replies = r;
  h->replies_tail = r;
  return 0;
}

void vh_sched__free(vh_host_t *h) {
  /* Calls that never ran and replies never sent still get their answer. */
  while (h->calls) {
    vh_work_t *w = h->calls;
    h->calls = w->next;
    w->cb(w->arg, VH_HOST_ESTOPPED, vh_nil(),
          "vedhost stopped before the call ran");
    vh_str_release(w->hdr);
    vh_val_release(w->payload);
    free(w);
  }
  h->calls_tail = NULL;
  while (h->replies) { /* never reached the output gate: not durable */
    vh_reply_t *r = h->replies;
    h->replies = r->next;
    r->cb(r->arg, r->err ? r->code : VH_HOST_ENOTDURABLE, vh_nil(),
          r->err ? r->err : "vedhost stopped before the reply was durable");
    vh_val_release(r->reply);
    free(r->err);
    free(r);
  }
  h->replies_tail = NULL;
  vh_sys__rollback(h);
  vh_sys__pending_drop(h);
  free(h->pend.seqs);
  free(h->pend.dues);
  free(h->heap_due);
  free(h->batch);
  vh_valenc_buf_free(&h->qbuf);
  vh_str_t **keys[] = {&h->k_q, &h->k_timers, &h->k_seq, &h->k_tid, &h->k_head};
  for (int i = 0; i < 5; i++)
    if (*keys[i]) vh_str_release(*keys[i]);
  for (int i = 0; i < VH_EVCACHE; i++) {
    if (h->evcache[i]) vh_str_release(h->evcache[i]);
    if (h->hdrc[i].hdr) vh_str_release(h->hdrc[i].hdr);
    if (h->hdrc[i].ev) vh_str_release(h->hdrc[i].ev);
  }
}
