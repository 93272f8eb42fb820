/*
 * store_writer.c - batches, the write queue and the writer thread.
 *
 * WHAT. The loop thread builds one vh_batch_t per slice and submits it with
 * the slice's sequence number. One dedicated writer thread (a pthread, not
 * libuv's pool, whose workers would run items concurrently and out of order)
 * writes the batches to RocksDB in submission order.
 *
 * GROUP COMMIT. Each time the writer wakes up it takes every batch queued
 * (up to 4 MB, so that one group, which is one WAL record, cannot make the
 * WAL long: ARCHITECTURE.md invariant 4), merges them into one rocksdb
 * WriteBatch and writes that once (one fsync in sync mode). The merge keeps,
 * for every key, only the last operation in commit order (a hash table from
 * node id to its last op), so a node put by slice k and deleted by slice k+1
 * costs nothing on disk, and the manifest is written once per group. Since the
 * merged batch is applied atomically and only its final state is visible, this
 * is exactly "apply the batches one by one", minus the intermediate states
 * nobody can observe. While a write is in flight, new batches queue up and form
 * the next group: the more the disk lags, the bigger the groups, so sync
 * throughput scales with load.
 *
 * STATE DIAGRAM of the writer:
 *
 *   idle --(batches queued)--> merge --> write --ok--> publish --> idle
 *                                          |   ^
 *                          transient error |   | backoff 10 ms .. 1 s
 *                                          v   | (reopen first if RocksDB
 *                                         retry  saw the failure)
 *                                          |
 *                      non-transient error | (or abandoned, or closing and
 *                                          v  still failing)
 *                                       stopped: this group and every later
 *                                       batch are dropped, never written
 *
 *   publish: durable_seq = seq of the last batch of the group, wake
 *   wait_durable(), call notify. On close the writer drains the queue and
 *   exits; if writes still fail after VH_CLOSE_ATTEMPTS more attempts, it
 *   gives up and drops the group and every later batch (never a later
 *   batch without an earlier one), and close reports it. After
 *   vh_store_abandon it drops at once.
 *
 * FAILURES. A transient error may go away by itself: no space left (a
 * full disk: space is freed), too many open files, a quota. It is retried
 * forever (the host holds its slices meanwhile, host/runtime/durable.c).
 * Anything else (RocksDB Corruption, an I/O error that is not ENOSPC) fails
 * every later write the same way: the writer reports it once (notify, then
 * vh_store_health says stopped) and stops writing; the host stays up
 * read-only and a stop drops what is queued.
 *
 * THE RESERVE. Before each write the writer checks the file system's free
 * space (statvfs) and does not write while it is under reserve_bytes (8
 * MB, store.c; once under it, until twice that is free again, so a disk
 * at the edge does not flip in and out): a disk filled by vedhost's own
 * data then stops vedhost
 * (a transient error, "No space left on device for the store") before
 * RocksDB's WAL append, flush or compaction meets ENOSPC. Something else
 * filling the disk can still beat it; then the reopen below recovers.
 *
 * REOPEN. librocksdb 7.8 cannot go on after a failed write: its WAL writer
 * keeps the error, the next append asserts (an abort in
 * writable_file_writer.h:312), and the background error is sticky (the C
 * API has no Resume). So after a failed rocksdb_write the writer sets
 * need_reopen, and before its next attempt (once the reserve is free
 * again) closes the database and opens it again (vh_store__reopen:
 * replays the WAL, whose torn tail held only the failed, unacknowledged
 * group, and flushes the memtable so that WAL is retired). The loop thread
 * reads nodes through the same handle: the handoff is s->db_lock, a
 * rwlock. Readers hold it shared while they use s->db; the writer holds it
 * exclusive only around close+open. The loop thread takes it with
 * tryrdlock, so it never waits for a reopen (which does disk I/O) and
 * never reads a closed handle: during a reopen a read fails with "the
 * store is being reopened" (the host holds slices while writes fail, so
 * only REPL and HTTP reads can meet it). RocksDB's info LOG is never
 * written after open (FATAL level, store.c), because its writer aborts
 * on the first line after a failed LOG write; the LOG header that open
 * writes is why a reopen waits for the reserve.
 *
 * FLUSHING (ARCHITECTURE.md invariant 4: restart after kill -9 as fast as
 * after a clean stop). What an open after a crash replays is the WAL of
 * the memtable not yet flushed to an SST. The writer keeps it short:
 *  - idle: once no batch came for idle_flush_ms (100 ms) after at least
 *    VH_IDLE_FLUSH_MIN bytes were written, it asks RocksDB to flush, so a
 *    kill -9 after a burst finds no WAL to replay (as after a clean stop);
 *  - under load: each time flush_bytes (512 KB) were written since the
 *    last flush, it asks at once, without waiting; but it starts no
 *    further write while that flush runs (flush_settle, before each
 *    write), so a kill -9 in the middle of a write flood replays at most
 *    the groups since the last flush: under 512 KB plus one group (one
 *    slice at bench/run's sizes: ~0.75 MB at K=100k, ~1.7 MB at 1M).
 *    Before, the writer went on writing while the flush ran, and a kill
 *    found the memtable being flushed plus the groups written meanwhile:
 *    1.3-2.3 MB at K=100k where it now finds 0.73-0.84 MB (bench/README.md,
 *    "Crash restart under load (perf/crash)"). The wait is the flush's
 *    remaining time, once per 512 KB; the loop thread goes on making
 *    slices meanwhile (sync throughput unchanged within the noise there).
 *    512 KB rather than 1 MB: at K=100k a slice is ~0.75 MB, so with 1 MB
 *    two slices waited for one flush.
 *  - the end of a burst: when that group is the last one queued, the
 *    writer waits for the flush before it publishes durable_seq, so its
 *    acknowledgement comes with no WAL behind it: a kill -9 right after
 *    a client saw its burst done replays nothing (without this, it
 *    replayed the whole last slice, 1.6 MB at K=100k and 2.3 MB at K=1M
 *    in bench/run, with the flush still running). That costs the ack of
 *    such a group one flush (tens of ms here) and nothing else: the
 *    writer had nothing queued, and a group under the bound never waits.
 *  - BIG GROUPS (perf/crash2): a group whose batches hold load_flush_bytes
 *    (512 KB) or more (every slice at bench/run's K=100k and 1M: 0.75
 *    and ~1.7 MB) would be flushed at once anyway, so its node puts skip
 *    the WAL. INGESTION (store format 4, store.c): they are written, in
 *    key order, as one table file (DIR/db/vh-ingest.tmp, synced), which
 *    RocksDB then ingests into the nodes' column family (a hard link and
 *    a MANIFEST edit, synced): the ids lie above every stored node, so
 *    the file goes straight to the bottommost level, with no memtable
 *    insert, no flush and no compaction on the way down. Format 1-3
 *    stores: they go into the memtable with the WAL off, and the writer
 *    flushes and WAITS (the puts are then in a synced table file). Only
 *    then does the writer write the rest of the group, deletes, sweep
 *    keys, version records, the manifest, as one WAL record (synced in
 *    sync mode): one fsync'd record as before, now of a few KB. After
 *    an ingested group the writer asks for a flush of that rest (no
 *    wait; the next write waits for it, flush_settle), so the WAL holds
 *    at most one group's rest, as when the group's own flush took it.
 *    durable_seq moves after that write, exactly as before. A kill -9
 *    at any moment now finds in the WAL at most the small groups since
 *    the last flush and the rest of the last big group, never the nodes
 *    of a slice: restart replays a few entries instead of ~10-20k (each
 *    ~6.7k instructions in RocksDB's replay). A crash between the puts
 *    and the rest leaves nodes (in a table file, if their flush or
 *    ingestion was done; an unfinished vh-ingest.tmp is removed at the
 *    next open) with ids at or above the durable manifest's next id,
 *    which nothing refers to: the host's open calls vh_store_drop_from
 *    with that next id and the writer deletes them (one range delete up
 *    to the last stored id, only if there is one) before its first
 *    group; fsck does not count them as leaks meanwhile. Deletes never
 *    skip the WAL: a node is deleted only with the manifest that stops
 *    referring to it. Node ids only grow (persist/trie/flush.c), so a
 *    put without the WAL never overwrites a node a durable manifest
 *    refers to. Test: persist_test_store_crash
 *    big_group_killed_at_each_phase (VH_STORE_KILL_*: kill after the
 *    puts or the ingested file's write, after their flush or ingestion,
 *    after the WAL write) and kill9_loop's rounds with a 32 KB bound. A
 *    small group (an interactive slice) stays one WAL write.
 * Otherwise the flush is asked without waiting (RocksDB's flush thread
 * writes the SST; the writer goes on with the next group); a flush that
 * fails is RocksDB's background error, which the next write reports
 * (FAILURES).
 * The thresholds count the bytes of the merged WriteBatches.
 *
 * COMPACTION HOLD (store.c, TUNING): the store opens with RocksDB's
 * automatic compactions off, so that the compaction of what a crash left
 * in level 0 does not compete with the WAL replay and the first handlers
 * for the CPU. The writer turns them on (rocksdb_set_options) once
 * compact_at passed (its idle wait wakes up for it) or before a write that
 * finds VH_COMPACT_HOLD_L0 level-0 files, well before RocksDB would slow
 * or stop writes for want of compaction (30 and 50 files, store.c L0 TRIGGER):
 * a held compaction never stalls the writer. Flushes are not held.
 *
 * MEMORY. The batches are built on the loop thread, between the trie
 * nodes of the slices that made them, and freed here once written. glibc
 * gives freed memory back to the system only from the top of a heap, so
 * after a burst (up to queue_limit, 64 MB, of queued batches) most of it
 * stayed resident, in holes between live nodes: at 1M keys the idle
 * process kept ~197 MB where ~120 MB were needed (bench/README.md, "Memory
 * per key"). So when the queue has drained and at least VH_TRIM_MIN_BYTES
 * (8 MB) of batches were freed since the last trim, the writer calls
 * malloc_trim(0) (which releases the free pages inside every arena, not
 * only the top) before it publishes the group. At most one trim per 8 MB
 * written. Cost, measured (300k keys, sync, on this loaded 2-core
 * machine): 0.06-0.3 ms for a trim that gives back little, 154 ms for the
 * one after the 64 MB queue drained at the end of the burst (madvise of
 * the freed pages; the loop thread waits for malloc meanwhile, and the
 * group's acknowledgement, which comes after tens of seconds of queue,
 * by as long). Trimming before the publish means an acknowledged state
 * has given its batches' memory back (the bench reads the RSS then).
 *
 * MALLOC'S MMAP THRESHOLD. The writer's start fixes it at
 * VH_MMAP_THRESHOLD, 4 MB (setting it turns glibc's sliding one off: glibc
 * raises it, up to 32 MB, each time a mapped block is freed, so after the
 * first big batch every later one came from the heap, and stayed there
 * in holes between live nodes). Blocks from 4 MB up are mapped on their
 * own and unmapped when freed, even under a flood whose queue never
 * drains. Below that, a slice's batch buffer (~1.7 MB at 1M keys),
 * RocksDB's WriteBatch (a group is <= 1 MB) and its memtable blocks come
 * from the heap and are reused; the trim above gives them back when the
 * queue drains. From perf/memory until perf/mmap the threshold was 128
 * KB: every page of every batch was a page fault and every unmap a TLB
 * shootdown, 6.6% of all the process's CPU samples at K=1M N=10M (1.4%
 * with glibc's sliding threshold). Measured at K=1M N=10M (2 runs each;
 * bench/README.md "perf/mmap"): the writer's CPU 16.7-17.9 s with 128 KB,
 * 14.8-15.4 s with 4 MB, 14.3-14.9 s sliding; the idle writer's RSS at
 * the acknowledgement 87.0-98.9 MB, 86.6-95.4 MB and 95.9-104.5 MB, and
 * 10 s later 92.5-93.6, 94.9-95.0 and 97.3-111.4 MB. Sliding would cost
 * the memory row its margin over Redis; 4 MB keeps most of the CPU.
 *
 * INVARIANTS.
 *  1. Batches are written in submission order, each all-or-nothing, and
 *     durable_seq only moves forward to the seq of a written batch.
 *  2. A group that failed with a transient error is retried (same merged
 *     batch) until it succeeds; no batch queued after it is written before
 *     it. A group that is dropped takes every later batch with it.
 *  3. The writer thread touches only batches handed to it and the RocksDB
 *     handle (ARCHITECTURE.md invariant 6). Locks, in order: s->db_lock (the
 *     handle, see REOPEN), then s->mu (the queue and the error state).
 *     Nobody takes db_lock while holding mu; mu is never held across a
 *     RocksDB call or the notify callback.
 *  4. Backpressure never blocks: vh_store_submit always queues. Bytes
 *     count as queued from submit until their group is written or
 *     dropped; vh_store_health reports the queue full from queue_limit
 *     until it drained to half of that, and the host then starts no slice
 *     (host/runtime/sched.c, HOLD), so memory held by batches stays near
 *     queue_limit plus what the slices in progress add.
 */
#include "store_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

#include "vh_bytes.h"
#include "vh_crc32c.h"

#define VH_BACKOFF_MIN_MS 10
#define VH_BACKOFF_MAX_MS 1000
#define VH_CLOSE_ATTEMPTS 5
/* Most bytes merged into one write (one WAL record); see writer_main. */
#define VH_GROUP_MAX_BYTES ((size_t)1 << 20)
/* MEMORY above: the batch bytes a drained queue must have freed since the
 * last trim before the writer trims the heap again. */
#define VH_TRIM_MIN_BYTES ((size_t)8 << 20)
/* MEMORY above: the least an idle trim is worth (wait_work). */
#define VH_TRIM_IDLE_BYTES ((size_t)1 << 20)
/* MALLOC'S MMAP THRESHOLD above: blocks from this size up are mapped on
 * their own. */
#define VH_MMAP_THRESHOLD ((size_t)4 << 20)
/* FLUSHING above: the least an idle flush is worth. */
#define VH_IDLE_FLUSH_MIN ((size_t)16 << 10)
/* COMPACTION HOLD above: level-0 files that end it before a write. */
#define VH_COMPACT_HOLD_L0 12

/* ---- batches ---- */

int vh_batch_new(vh_batch_t **out) {
  *out = calloc(1, sizeof **out);
  return *out ? 0 : VH_ENOMEM;
}

void vh_batch_free(vh_batch_t *b) {
  if (b == NULL) return;
  free(b->ops);
  free(b->buf);
  free(b);
}

size_t vh_batch_bytes(const vh_batch_t *b) {
  return b->len + b->nops * sizeof(vh_batch_op_t) + sizeof *b;
}

/* Appends a value [crc placeholder][kind byte][payload] to b->buf; *off =
 * where it starts. */
static int batch_append(vh_batch_t *b, int kind, const void *bytes, size_t len,
                        size_t *off) {
  if (len > SIZE_MAX / 2 - VH_STORE_HDR - b->len) return VH_ENOMEM;
  size_t need = b->len + VH_STORE_HDR + len;
  if (vh_grow(&b->buf, &b->cap, need, 1) != 0) return VH_ENOMEM;
  unsigned char *p = b->buf + b->len;
  memset(p, 0, 4); /* the writer computes the CRC */
  p[4] = VH_KIND_BYTE(kind);
  if (len) memcpy(p + VH_STORE_HDR, bytes, len);
  *off = b->len;
  b->len = need;
  return 0;
}

static int batch_add_op(vh_batch_t *b, const vh_batch_op_t *op) {
  if (vh_grow(&b->ops, &b->cap_ops, b->nops + 1, sizeof *b->ops) != 0)
    return VH_ENOMEM;
  b->ops[b->nops++] = *op;
  return 0;
}

int vh_batch_put_node(vh_batch_t *b, uint64_t id, const void *bytes,
                      size_t len) {
  vh_batch_op_t op = {.id = id, .type = VH_OP_PUT, .len = VH_STORE_HDR + len};
  size_t old_len = b->len;
  int rc = batch_append(b, VH_KIND_NODE, bytes, len, &op.off);
  if (rc != 0) return rc;
  rc = batch_add_op(b, &op);
  if (rc != 0) b->len = old_len; /* leave the batch as it was */
  return rc;
}

int vh_batch_del_node(vh_batch_t *b, uint64_t id) {
  vh_batch_op_t op = {.id = id, .type = VH_OP_DEL};
  return batch_add_op(b, &op);
}

int vh_batch_put_sweep(vh_batch_t *b, uint64_t id) {
  vh_batch_op_t op = {.id = id, .type = VH_OP_QPUT};
  return batch_add_op(b, &op);
}

/* The sweep key's value: u64 little endian version the subtree died in
 * (store_versions.c); an empty value (written by vh_batch_put_sweep) means
 * unknown. Raw bytes, not framed. */
int vh_batch_put_sweep_at(vh_batch_t *b, uint64_t id, uint64_t d) {
  if (vh_grow(&b->buf, &b->cap, b->len + 8, 1) != 0) return VH_ENOMEM;
  vh_batch_op_t op = {.id = id, .type = VH_OP_QPUT, .off = b->len, .len = 8};
  vh_le64_store(b->buf + b->len, d);
  int rc = batch_add_op(b, &op);
  if (rc == 0) b->len += 8;
  return rc;
}

int vh_batch__key_op(vh_batch_t *b, const void *key, size_t klen, int kind,
                     const void *payload, size_t len) {
  size_t old_len = b->len;
  if (vh_grow(&b->buf, &b->cap, b->len + klen, 1) != 0) return VH_ENOMEM;
  vh_batch_op_t op = {.id = klen,
                      .off = b->len,
                      .len = 0,
                      .type = kind < 0 ? VH_OP_KDEL : VH_OP_KPUT};
  memcpy(b->buf + b->len, key, klen);
  b->len += klen;
  if (kind >= 0) {
    size_t voff;
    int rc = batch_append(b, kind, payload, len, &voff);
    if (rc != 0) {
      b->len = old_len;
      return rc;
    }
    op.len = VH_STORE_HDR + len;
  }
  int rc = batch_add_op(b, &op);
  if (rc != 0) b->len = old_len;
  return rc;
}

int vh_batch__del_node_range(vh_batch_t *b, uint64_t lo, uint64_t hi) {
  if (vh_grow(&b->buf, &b->cap, b->len + 16, 1) != 0) return VH_ENOMEM;
  vh_batch_op_t op = {.id = 16, .off = b->len, .type = VH_OP_NRDEL};
  memcpy(b->buf + b->len, &lo, 8);
  memcpy(b->buf + b->len + 8, &hi, 8);
  int rc = batch_add_op(b, &op);
  if (rc == 0) b->len += 16;
  return rc;
}

int vh_batch_del_sweep(vh_batch_t *b, uint64_t id) {
  vh_batch_op_t op = {.id = id, .type = VH_OP_QDEL};
  return batch_add_op(b, &op);
}

int vh_batch_set_manifest(vh_batch_t *b, const void *bytes, size_t len) {
  size_t off;
  int rc = batch_append(b, VH_KIND_MANIFEST, bytes, len, &off);
  if (rc != 0) return rc;
  b->has_manifest = 1;
  b->man_off = off;
  b->man_len = VH_STORE_HDR + len;
  return 0;
}

/* ---- merging a group ---- */

/* Open-addressing table: key (node id, and 'N' or 'Q') -> its last op in
 * the group. */
typedef struct last_op_table {
  const vh_batch_op_t **slot; /* NULL = empty */
  size_t mask;
  int shift;
} last_op_table_t;

static size_t slot_of(const last_op_table_t *t, uint64_t id) {
  return (size_t)((id * 0x9E3779B97F4A7C15ull) >> t->shift) & t->mask;
}

/* Do a and b write the same key? */
static int same_key(const vh_batch_op_t *a, const vh_batch_op_t *b) {
  return a->id == b->id && VH_OP_IS_SWEEP(a->type) == VH_OP_IS_SWEEP(b->type);
}

/* Builds the table for the ops of the group; 0, or VH_ENOMEM (then the
 * caller writes every op in order, which is just as correct). */
static int table_build(last_op_table_t *t, vh_batch_t *list) {
  size_t n = 0;
  for (vh_batch_t *b = list; b; b = b->next) n += b->nops;
  size_t cap = 16;
  int bits = 4;
  while (cap < 2 * n) cap *= 2, bits++;
  t->slot = calloc(cap, sizeof *t->slot);
  if (t->slot == NULL) return VH_ENOMEM;
  t->mask = cap - 1;
  t->shift = 64 - bits;
  for (vh_batch_t *b = list; b; b = b->next)
    for (size_t i = 0; i < b->nops; i++) {
      const vh_batch_op_t *op = &b->ops[i];
      if (VH_OP_IS_KEY(op->type)) continue; /* written in order */
      size_t j = slot_of(t, op->id);
      while (t->slot[j] != NULL && !same_key(t->slot[j], op))
        j = (j + 1) & t->mask;
      t->slot[j] = op; /* later ops overwrite earlier ones */
    }
  return 0;
}

static const vh_batch_op_t *table_get(const last_op_table_t *t,
                                      const vh_batch_op_t *op) {
  size_t j = slot_of(t, op->id);
  while (t->slot[j] != NULL && !same_key(t->slot[j], op)) j = (j + 1) & t->mask;
  return t->slot[j];
}

/* Fills in the CRC of the value at p (len bytes, header included). */
static void seal_value(unsigned char *p, size_t len) {
  uint32_t c = vh_crc32c(0, p + 4, len - 4);
  vh_le32_store(p, c);
}

static void node_op_key(const vh_store_t *s, char key[VH_NODE_KEY_LEN],
                        const vh_batch_op_t *op) {
  key[0] = VH_OP_IS_SWEEP(op->type) ? VH_KEY_SWEEP : s->node_key;
  for (int k = 0; k < 8; k++) key[1 + k] = (char)(op->id >> (56 - 8 * k));
}

/* A node put about to be written: counted (COMPACTION AT A CLEAN STOP)
 * and its value sealed. */
static void seal_node_put(vh_store_t *s, const vh_batch_op_t *op,
                          unsigned char *buf) {
  s->node_puts++;
  seal_value(buf + op->off, op->len);
}

/* Adds one node or sweep op to wb (its value sealed first): node keys go
 * to the nodes' column family, sweep keys to the default one. */
static void write_node_op(vh_store_t *s, rocksdb_writebatch_t *wb,
                          const vh_batch_op_t *op, unsigned char *buf) {
  char key[VH_NODE_KEY_LEN];
  node_op_key(s, key, op);
  if (op->type == VH_OP_PUT) {
    seal_node_put(s, op, buf);
    rocksdb_writebatch_put_cf(wb, s->cf_nodes, key, sizeof key,
                              (const char *)buf + op->off, op->len);
  } else if (op->type == VH_OP_QPUT) {
    rocksdb_writebatch_put_cf(wb, s->cf_default, key, sizeof key,
                              op->len ? (const char *)buf + op->off : "",
                              op->len);
  } else if (op->type == VH_OP_QDEL) {
    rocksdb_writebatch_delete_cf(wb, s->cf_default, key, sizeof key);
  } else {
    s->node_dels++;
    rocksdb_writebatch_delete_cf(wb, s->cf_nodes, key, sizeof key);
  }
}

/* KEY ORDER (see merge_group): a node or sweep op that survived the
 * merge, with its batch's buffer, sorted by the key it writes. */
typedef struct sorted_op {
  uint64_t id;
  const vh_batch_op_t *op;
  unsigned char *buf;
} sorted_op_t;

/* BIG GROUPS: a group's node puts, apart from its other ops, in key
 * order, their values sealed (in the batches' buffers, which outlive the
 * group's write and its retries). */
typedef struct node_puts {
  int on;         /* collect them (else every op goes to the batch) */
  sorted_op_t *v; /* [owned] */
  size_t n;
  size_t bytes; /* keys and values */
} node_puts_t;

/* Node keys ('A' or 'N') before sweep keys ('Q'), then by id. */
static int sorted_op_cmp(const void *pa, const void *pb) {
  const sorted_op_t *a = pa, *b = pb;
  int sa = VH_OP_IS_SWEEP(a->op->type), sb = VH_OP_IS_SWEEP(b->op->type);
  if (sa != sb) return sa - sb;
  return a->id < b->id ? -1 : a->id > b->id;
}

/* Sorts a[0..n) as sorted_op_cmp does, stable, with tmp[n] as scratch:
 * an LSD radix sort on the id's bytes (a pass is skipped when every id
 * has the same byte there: a group's ids share their top bytes), then a
 * stable split of node keys before sweep keys. qsort's compares, each
 * loading its op's type through a pointer, were 7% of the writer
 * thread's instructions; this sort costs a fifth of that (bench/README.md,
 * "perf/sync3"). Returns the sorted array: a or tmp. */
static sorted_op_t *radix_sort_ops(sorted_op_t *a, sorted_op_t *tmp, size_t n) {
  size_t count[256];
  for (int shift = 0; shift < 64; shift += 8) {
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) count[(a[i].id >> shift) & 0xff]++;
    if (n == 0 || count[(a[0].id >> shift) & 0xff] == n) continue;
    for (size_t b = 0, sum = 0; b < 256; b++) {
      size_t c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++)
      tmp[count[(a[i].id >> shift) & 0xff]++] = a[i];
    sorted_op_t *t = a;
    a = tmp;
    tmp = t;
  }
  size_t nodes = 0, sweeps;
  for (size_t i = 0; i < n; i++) nodes += !VH_OP_IS_SWEEP(a[i].op->type);
  if (nodes == n) return a;
  sweeps = nodes;
  nodes = 0;
  for (size_t i = 0; i < n; i++)
    tmp[VH_OP_IS_SWEEP(a[i].op->type) ? sweeps++ : nodes++] = a[i];
  return tmp;
}

/* KEY ORDER. The memtable is a skiplist, and RocksDB keeps the place of
 * the last insert (its "splice"): a key inserted just after the previous
 * one costs a few compares, a key anywhere else a search from the top
 * (~20 compares at these sizes). A slice's new nodes have ascending ids,
 * but the nodes it deletes come in the order the history engine found
 * them, spread over all ids, between them. So once every key is known
 * to appear once (the merge table was built), node and sweep ops are
 * written sorted by key: the same final state (distinct keys, one atomic
 * batch), and the memtable, which the writer's flushes keep short,
 * takes them nearly as appends (bench/README.md, "K = 1M with
 * --retain 0"). The other keys (versions, death lists, inputs, marks)
 * keep their order, before them; the manifest comes last. Without the
 * table (no memory for it) every op goes in submission order.
 * With puts->on (BIG GROUPS), the node puts go to puts, the rest to the
 * returned batch; only once every key appears once (the table was
 * built) and in key order: else puts->on is cleared and every op goes to
 * the one batch. */
static rocksdb_writebatch_t *merge_group(vh_store_t *s, vh_batch_t *list,
                                         node_puts_t *puts) {
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  last_op_table_t t = {0};
  int dedup = table_build(&t, list) == 0;
  sorted_op_t *sorted = NULL;
  size_t nsorted = 0;
  if (dedup) {
    size_t n = 0;
    for (vh_batch_t *b = list; b; b = b->next) n += b->nops;
    sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (puts->on) puts->v = malloc((n ? n : 1) * sizeof *puts->v);
  }
  if (sorted == NULL || puts->v == NULL) puts->on = 0;
  vh_batch_t *man = NULL;
  for (vh_batch_t *b = list; b; b = b->next) {
    if (b->has_manifest) man = b;
    for (size_t i = 0; i < b->nops; i++) {
      const vh_batch_op_t *op = &b->ops[i];
      if (VH_OP_IS_KEY(op->type)) {
        const char *k = (const char *)b->buf + op->off;
        size_t klen = (size_t)op->id;
        if (op->type == VH_OP_NRDEL) {
          vh_batch_op_t lo = {.id = 0}, hi = {.id = 0};
          char klo[VH_NODE_KEY_LEN], khi[VH_NODE_KEY_LEN];
          memcpy(&lo.id, k, 8);
          memcpy(&hi.id, k + 8, 8);
          node_op_key(s, klo, &lo);
          node_op_key(s, khi, &hi);
          rocksdb_writebatch_delete_range_cf(wb, s->cf_nodes, klo, sizeof klo,
                                             khi, sizeof khi);
          if (hi.id > lo.id) {
            s->node_dels += hi.id - lo.id;
            s->node_range_ids += hi.id - lo.id;
          }
        } else if (op->type == VH_OP_KDEL) {
          rocksdb_writebatch_delete(wb, k, klen);
        } else {
          seal_value(b->buf + op->off + klen, op->len);
          rocksdb_writebatch_put(wb, k, klen, k + klen, op->len);
        }
        continue;
      }
      if (dedup && table_get(&t, op) != op) continue; /* superseded */
      if (sorted != NULL)
        sorted[nsorted++] = (sorted_op_t){op->id, op, b->buf};
      else
        write_node_op(s, wb, op, b->buf);
    }
  }
  if (sorted != NULL) {
    sorted_op_t *tmp = malloc((nsorted ? nsorted : 1) * sizeof *tmp);
    const sorted_op_t *in_order = sorted;
    if (tmp != NULL)
      in_order = radix_sort_ops(sorted, tmp, nsorted);
    else
      qsort(sorted, nsorted, sizeof *sorted, sorted_op_cmp);
    for (size_t i = 0; i < nsorted; i++) {
      const vh_batch_op_t *op = in_order[i].op;
      if (puts->on && op->type == VH_OP_PUT) {
        seal_node_put(s, op, in_order[i].buf);
        puts->v[puts->n++] = in_order[i];
        puts->bytes += VH_NODE_KEY_LEN + op->len;
      } else {
        write_node_op(s, wb, op, in_order[i].buf);
      }
    }
    free(tmp);
    free(sorted);
  }
  if (man != NULL) {
    char key = VH_KEY_MANIFEST;
    seal_value(man->buf + man->man_off, man->man_len);
    rocksdb_writebatch_put(wb, &key, 1, (const char *)man->buf + man->man_off,
                           man->man_len);
  }
  free(t.slot);
  return wb;
}

/* ---- the writer thread ---- */

/* May this write error go away by itself (space freed, descriptors
 * closed)? Everything else (Corruption, an I/O error that is not ENOSPC,
 * ...) fails every later write too: the writer stops (FAILURES above). */
static int is_transient(const char *err) {
  return err == NULL || strstr(err, "No space left on device") != NULL ||
         strstr(err, "Too many open files") != NULL ||
         strstr(err, "Disk quota exceeded") != NULL ||
         strstr(err, "being reopened") != NULL;
}

/* Before any write to the database (a batch, an ingestion): the injected
 * failures of the tests, THE RESERVE, and the REOPEN a failed write asked
 * for. 0, or -1 with *err = [new] message. */
static int ready_to_write(vh_store_t *s, char **err) {
  int n = atomic_load(&s->fail_writes);
  while (n > 0) {
    if (atomic_compare_exchange_weak(&s->fail_writes, &n, n - 1)) {
      *err = vh_store__msg(
          "%s: IO error: No space left on device "
          "(injected by vh_store__fail_writes)",
          s->dbpath);
      return -1;
    }
  }
  /* The reserve: RocksDB never gets to fill the disk (FAILURES above). */
  unsigned long long avail = vh_store__free_bytes(s);
  unsigned long long need = s->reserve_bytes * (s->low_space ? 2 : 1);
  s->low_space = avail < need;
  if (s->low_space) {
    *err = vh_store__msg(
        "%s: No space left on device for the store: %llu KB free, below the "
        "%llu KB vedhost keeps free for RocksDB's flushes and compactions; "
        "writing resumes once %llu KB are free",
        s->dir, avail / 1024, s->reserve_bytes / 1024,
        s->reserve_bytes * 2 / 1024);
    return -1;
  }
  if (s->need_reopen) {
    if (vh_store__reopen(s, err) != 0) return -1;
    s->need_reopen = 0;
    pthread_mutex_lock(&s->mu);
    s->reopens++;
    pthread_mutex_unlock(&s->mu);
  }
  return 0;
}

/* One attempt with write options wo: 0, or -1 with *err = [new]
 * message. */
static int write_once(vh_store_t *s, rocksdb_writebatch_t *wb,
                      const rocksdb_writeoptions_t *wo, char **err) {
  if (ready_to_write(s, err) != 0) return -1;
  char *rerr = NULL;
  rocksdb_write(s->db, wo, wb, &rerr);
  if (rerr == NULL) {
    atomic_fetch_add(&s->write_count, 1);
    size_t wlen = 0;
    rocksdb_writebatch_data(wb, &wlen);
    s->unflushed += wlen;
    s->bytes_written += wlen;
    return 0;
  }
  s->need_reopen = 1; /* RocksDB's WAL writer is unusable now */
  vh_store__rocks_err(rerr, s->dbpath, err);
  return -1;
}

/* Waits ms or until close/abandon wakes it (mu held by the caller). */
static void backoff_wait(vh_store_t *s, unsigned ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  if (!s->abandon) pthread_cond_timedwait(&s->retry_cv, &s->mu, &ts);
}

/* vh_store__kill_at: dies here if the test asked for this phase. */
static void kill_point(vh_store_t *s, int phase) {
  if (atomic_load(&s->kill_at) == phase) raise(SIGKILL);
}

/* INGESTION: one attempt at writing a big group's node puts as a table
 * file (s->ingest_path, synced by RocksDB's writer) and ingesting it into
 * the nodes' column family, where it lands in the bottommost level when
 * its ids lie above every node stored (the ids only grow). 0, or -1 with
 * *err = [new] message. */
static int ingest_nodes(vh_store_t *s, const node_puts_t *p, char **err) {
  if (ready_to_write(s, err) != 0) return -1;
  rocksdb_envoptions_t *eo = rocksdb_envoptions_create();
  rocksdb_sstfilewriter_t *w =
      rocksdb_sstfilewriter_create(eo, s->ingest_options);
  char *rerr = NULL;
  rocksdb_sstfilewriter_open(w, s->ingest_path, &rerr);
  char key[VH_NODE_KEY_LEN];
  for (size_t i = 0; rerr == NULL && i < p->n; i++) {
    const vh_batch_op_t *op = p->v[i].op;
    node_op_key(s, key, op);
    rocksdb_sstfilewriter_put(w, key, sizeof key,
                              (const char *)p->v[i].buf + op->off, op->len,
                              &rerr);
  }
  if (rerr == NULL) rocksdb_sstfilewriter_finish(w, &rerr);
  rocksdb_sstfilewriter_destroy(w);
  rocksdb_envoptions_destroy(eo);
  int written = rerr == NULL;
  if (written) {
    kill_point(s, VH_STORE_KILL_NODES_PUT);
    rocksdb_ingestexternalfileoptions_t *io =
        rocksdb_ingestexternalfileoptions_create();
    /* a hard link, not a copy; RocksDB removes ours once it is in */
    rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
    /* after a crash (vh_store_drop_from's range delete) the ids may meet
     * a tombstone: then the file gets a sequence number above it */
    rocksdb_ingestexternalfileoptions_set_allow_global_seqno(io, 1);
    rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(io, 1);
    const char *files[1] = {s->ingest_path};
    rocksdb_ingest_external_file_cf(s->db, s->cf_nodes, files, 1, io, &rerr);
    rocksdb_ingestexternalfileoptions_destroy(io);
  }
  unlink(s->ingest_path); /* a failed attempt's file (ENOENT once in) */
  if (rerr != NULL) {
    /* an ingestion that failed may have left RocksDB's background error
     * set, as a failed write does (REOPEN) */
    if (written) s->need_reopen = 1;
    vh_store__rocks_err(rerr, s->dbpath, err);
    return -1;
  }
  s->bytes_written += p->bytes;
  return 0;
}

/* BIG GROUPS: one attempt at a split group: the node puts (ingested in a
 * store of format 4; else with the WAL off and their flush waited for),
 * then the rest with the WAL (s->write_options: synced per opts). 0, or
 * -1 with *err = [new] message. */
static int write_split(vh_store_t *s, const node_puts_t *p,
                       rocksdb_writebatch_t *rest, char **err) {
  if (s->nodes_apart) {
    if (ingest_nodes(s, p, err) != 0) return -1;
    kill_point(s, VH_STORE_KILL_NODES_FLUSHED);
    return write_once(s, rest, s->write_options, err);
  }
  rocksdb_writebatch_t *nodes = rocksdb_writebatch_create();
  char key[VH_NODE_KEY_LEN];
  for (size_t i = 0; i < p->n; i++) {
    const vh_batch_op_t *op = p->v[i].op;
    node_op_key(s, key, op);
    rocksdb_writebatch_put(nodes, key, sizeof key,
                           (const char *)p->v[i].buf + op->off, op->len);
  }
  rocksdb_writeoptions_t *wo_nodes = rocksdb_writeoptions_create();
  rocksdb_writeoptions_disable_WAL(wo_nodes, 1); /* sync needs the WAL */
  int rc = write_once(s, nodes, wo_nodes, err);
  rocksdb_writeoptions_destroy(wo_nodes);
  rocksdb_writebatch_destroy(nodes);
  if (rc != 0) return -1;
  kill_point(s, VH_STORE_KILL_NODES_PUT);
  char *rerr = vh_store__flush_all(s, 1);
  if (rerr != NULL) {
    /* RocksDB's background error: its memtable (and with it these puts,
     * which no WAL holds) is lost to the reopen; the retry puts them
     * again. */
    s->need_reopen = 1;
    vh_store__rocks_err(rerr, s->dbpath, err);
    return -1;
  }
  s->unflushed = 0;
  s->flush_unwaited = 0;
  atomic_fetch_add(&s->flush_count, 1);
  kill_point(s, VH_STORE_KILL_NODES_FLUSHED);
  return write_once(s, rest, s->write_options, err);
}

/* Writes the group, retrying transient errors (invariant 2). 2 = written
 * as a big group, 1 = written, 0 = not written: a non-transient error,
 * abandoned, or given up at close. BIG GROUPS when its batches hold
 * load_flush_bytes or more. */
static int write_group(vh_store_t *s, vh_batch_t *list) {
  size_t bytes = 0;
  for (vh_batch_t *b = list; b; b = b->next) bytes += b->len;
  node_puts_t puts = {.on = bytes >= s->load_flush_bytes};
  rocksdb_writebatch_t *wb = merge_group(s, list, &puts);
  int big = puts.on && puts.n > 0;
  unsigned delay = VH_BACKOFF_MIN_MS;
  int after_close = 0, written = 0;
  for (;;) {
    char *err = NULL;
    int rc = big ? write_split(s, &puts, wb, &err)
                 : write_once(s, wb, s->write_options, &err);
    if (rc == 0) {
      written = big ? 2 : 1;
      break;
    }
    int transient = is_transient(err);
    pthread_mutex_lock(&s->mu);
    if (err != NULL) {
      free(s->last_error);
      s->last_error = err;
    }
    int first_failure = !s->failing;
    s->failing = 1;
    s->error_count++;
    if (!transient) s->stopped = 1;
    int closing = s->closing, abandon = s->abandon;
    vh_store_notify_fn fn = s->notify;
    void *ud = s->notify_ud;
    pthread_mutex_unlock(&s->mu);
    if ((first_failure || !transient) && fn) fn(ud); /* the host reports */
    if (!transient || abandon) break;
    if (closing && ++after_close >= VH_CLOSE_ATTEMPTS) break;
    pthread_mutex_lock(&s->mu);
    backoff_wait(s, delay);
    pthread_mutex_unlock(&s->mu);
    delay = delay * 2 > VH_BACKOFF_MAX_MS ? VH_BACKOFF_MAX_MS : delay * 2;
  }
  rocksdb_writebatch_destroy(wb);
  free(puts.v);
  return written;
}

/* Asks RocksDB to flush the memtable, without waiting unless wait
 * (FLUSHING above). Writer thread only, mu not held. */
/* Asks RocksDB to flush the memtable, waiting for it or not, unless the
 * db is being reopened (the reopen flushes). A failure is RocksDB's
 * background error, which the next write meets. Writer thread only. */
static void rocks_flush(vh_store_t *s, int wait) {
  if (s->need_reopen || s->db == NULL) return;
  free(vh_store__flush_all(s, wait));
}

static void flush_memtable(vh_store_t *s, int wait) {
  s->unflushed = 0;
  if (s->need_reopen || s->db == NULL) return;
  rocks_flush(s, wait);
  atomic_fetch_add(&s->flush_count, 1);
  s->flush_unwaited = !wait;
}

/* FLUSHING above: before a write, waits for the flush asked without
 * waiting, if any. The memtable is empty (nothing was written since that
 * flush switched it), so RocksDB switches nothing and only waits for the
 * memtables it is flushing. Writer thread only, mu not held. */
static void flush_settle(vh_store_t *s) {
  if (!s->flush_unwaited) return;
  s->flush_unwaited = 0;
  rocks_flush(s, 1);
}

/* Deadline idle_flush_ms from now, for pthread_cond_timedwait. */
static struct timespec idle_deadline(const vh_store_t *s) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += (long)s->idle_flush_ms * 1000000L;
  ts.tv_sec += ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  return ts;
}

static int ts_reached(const struct timespec *now, const struct timespec *t) {
  return now->tv_sec > t->tv_sec ||
         (now->tv_sec == t->tv_sec && now->tv_nsec >= t->tv_nsec);
}

/* Ends the COMPACTION HOLD (above) if it is due: force, or compact_at
 * passed, or level 0 holds VH_COMPACT_HOLD_L0 files. Writer thread only,
 * mu not held. */
static void compact_resume(vh_store_t *s, int force) {
  if (!s->compact_held || s->need_reopen || s->db == NULL) return;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (!force && !ts_reached(&now, &s->compact_at) &&
      vh_store__l0_files(s) < VH_COMPACT_HOLD_L0)
    return;
  vh_store__set_option(s, "disable_auto_compactions", "false");
  s->compact_held = 0;
}

/* vh_store_drop_from, on the writer thread: deletes the node keys from
 * id `from` up (BIG GROUPS: a crash between a big group's node puts and
 * its manifest), with one range delete, written before any later group
 * (whose puts of those ids then win) and only if a node key lies there
 * (one seek for the last one). The range ends just after that last key,
 * not at the end of all ids: a range tombstone over the ids still to
 * come would make every later ingested file overlap it (INGESTION: such
 * a file lands in level 0, not the bottommost level). A failure is left
 * for the next open to redo. mu not held. */
static void drop_nodes_from(vh_store_t *s, uint64_t from) {
  if (s->need_reopen || s->db == NULL) return;
  uint64_t last = 0;
  if (vh_store__last_node(s, &last) != 0 || last < from) return;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  vh_store__delete_nodes(s, wb, from, last);
  char *rerr = NULL;
  rocksdb_write(s->db, s->write_options, wb, &rerr);
  rocksdb_writebatch_destroy(wb);
  if (rerr != NULL) s->need_reopen = 1; /* as after any failed write */
  free(rerr);
}

/* Runs a pending vh_store_drop_from (mu held; released meanwhile). */
static void drop_pending(vh_store_t *s) {
  uint64_t from = s->drop_from;
  if (from == 0 || s->gave_up) return;
  s->drop_from = 0;
  pthread_mutex_unlock(&s->mu);
  drop_nodes_from(s, from);
  pthread_mutex_lock(&s->mu);
}

/* MEMORY above: gives the free pages of every malloc arena back to the
 * system. Writer thread only, mu not held. */
static void trim_heap(vh_store_t *s) {
  s->untrimmed = 0;
#if defined(__GLIBC__) && !defined(VH_SANITIZE)
  malloc_trim(0);
#endif
  atomic_fetch_add(&s->trim_count, 1);
}

/* Waits (mu held) until a batch can be taken, or closing/abandon; flushes
 * the memtable once the queue stayed empty for idle_flush_ms, and ends the
 * COMPACTION HOLD when it is due. */
static void wait_work(vh_store_t *s) {
  while (!s->closing && !s->abandon && (s->qhead == NULL || s->paused)) {
    if (s->drop_from != 0 && !s->paused && !s->gave_up) {
      drop_pending(s);
      continue;
    }
    int flushable = s->idle_flush_ms != 0 &&
                    s->unflushed >= VH_IDLE_FLUSH_MIN && !s->paused &&
                    !s->gave_up;
    /* MEMORY above: an idle store gives back what its last batches and
     * the flushed memtable left in the heap, even below the drain's
     * VH_TRIM_MIN_BYTES (a short burst's few MB stayed resident for good:
     * batches under malloc's mmap threshold come from the heap) */
    int trimmable = s->idle_flush_ms != 0 &&
                    s->untrimmed >= VH_TRIM_IDLE_BYTES && !s->paused;
    int idle = flushable || trimmable;
    int hold = s->compact_held && !s->gave_up;
    if (!idle && !hold) {
      pthread_cond_wait(&s->work_cv, &s->mu);
      continue;
    }
    struct timespec flush_at = idle_deadline(s), ts = flush_at;
    if (hold && (!idle || !ts_reached(&s->compact_at, &flush_at)))
      ts = s->compact_at;
    int rc = 0;
    while (rc == 0 && !s->closing && !s->abandon &&
           (s->qhead == NULL || s->paused))
      rc = pthread_cond_timedwait(&s->work_cv, &s->mu, &ts);
    if (rc != 0 && !s->closing && !s->abandon) {
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      int quiet = s->qhead == NULL && ts_reached(&now, &flush_at);
      int flush = flushable && quiet, trim = trimmable && quiet;
      pthread_mutex_unlock(&s->mu);
      if (hold && ts_reached(&now, &s->compact_at)) compact_resume(s, 1);
      if (flush) flush_memtable(s, 0);
      if (trim) trim_heap(s);
      pthread_mutex_lock(&s->mu);
    }
  }
}

static void *writer_main(void *arg) {
  vh_store_t *s = arg;
  /* RocksDB counts every key comparison of a memtable insert in its
   * thread-local perf context unless the thread's perf level says not to;
   * nobody reads those counters here. Profile (bench/README.md, "Where a
   * sync update's time goes"): __tls_get_addr and the perf context's TLS
   * init were ~14% of this thread's instructions. */
  rocksdb_set_perf_level(1 /* rocksdb::kDisable */);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    wait_work(s);
    if (!s->abandon) drop_pending(s); /* before any later group */
    if (s->qhead == NULL) {
      if (s->closing) break;                  /* drained */
      pthread_cond_wait(&s->work_cv, &s->mu); /* abandoned, not closing */
      continue;
    }
    /* Take batches up to VH_GROUP_MAX_BYTES (at least one): one group is
     * one WAL record and one memtable insert, so this bounds the WAL that
     * an open after kill -9 replays, whatever the queue holds. */
    vh_batch_t *list = s->qhead, *tail = s->qhead;
    size_t group = vh_batch_bytes(tail);
    while (tail->next &&
           group + vh_batch_bytes(tail->next) <= VH_GROUP_MAX_BYTES) {
      tail = tail->next;
      group += vh_batch_bytes(tail);
    }
    s->qhead = tail->next;
    if (s->qhead == NULL) s->qtail = NULL;
    tail->next = NULL;
    int gave_up = s->gave_up || s->abandon;
    pthread_mutex_unlock(&s->mu);

    size_t bytes = 0, n = 0;
    uint64_t first = list->seq, last = 0;
    for (vh_batch_t *b = list; b; b = b->next) {
      bytes += vh_batch_bytes(b);
      last = b->seq;
      n++;
    }
    if (!gave_up) compact_resume(s, 0);
    if (!gave_up) flush_settle(s);
    int written = gave_up ? 0 : write_group(s, list), ok = written != 0;
    if (ok) kill_point(s, VH_STORE_KILL_WRITTEN);
    /* INGESTION: after a big group the memtable holds its deletes and
     * other keys only (its nodes are in their table file): flushed too,
     * so the WAL a kill -9 leaves holds at most one group's of those,
     * as when the group's own flush took them (BIG GROUPS). */
    if (ok && (s->unflushed >= s->load_flush_bytes ||
               (written == 2 && s->nodes_apart && s->unflushed > 0))) {
      /* FLUSHING: the end of a burst waits for its flush. */
      pthread_mutex_lock(&s->mu);
      int burst_end = s->qhead == NULL && !s->closing;
      pthread_mutex_unlock(&s->mu);
      flush_memtable(s, burst_end);
    }
    while (list) {
      vh_batch_t *next = list->next;
      vh_batch_free(list);
      list = next;
    }

    pthread_mutex_lock(&s->mu);
    s->untrimmed += bytes;
    if (s->qhead == NULL && s->untrimmed >= VH_TRIM_MIN_BYTES) {
      pthread_mutex_unlock(&s->mu);
      trim_heap(s);
      pthread_mutex_lock(&s->mu);
    }
    s->qbytes -= bytes;
    if (ok) {
      s->failing = 0;
      atomic_store(&s->durable_seq, last);
    } else {
      /* Stopped, abandoned or given up at close: drop this group and
       * everything after it (never a later batch without this one). */
      if (!s->gave_up) s->dropped_from = first;
      s->gave_up = 1;
      s->dropped_to = last;
      s->dropped_n += n;
    }
    pthread_cond_broadcast(&s->durable_cv);
    vh_store_notify_fn fn = s->notify;
    void *ud = s->notify_ud;
    if (fn) {
      pthread_mutex_unlock(&s->mu);
      fn(ud);
      pthread_mutex_lock(&s->mu);
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int vh_store__writer_start(vh_store_t *s) {
#if defined(__GLIBC__) && !defined(VH_SANITIZE)
  /* MALLOC'S MMAP THRESHOLD above: a fixed one (setting it turns glibc's
   * sliding one off), so big buffers never settle in the heap. */
  mallopt(M_MMAP_THRESHOLD, (int)VH_MMAP_THRESHOLD);
#endif
  if (pthread_create(&s->writer, NULL, writer_main, s) != 0) return VH_EIO;
  s->writer_started = 1;
  return 0;
}

int vh_store__writer_stop(vh_store_t *s, char **errmsg) {
  pthread_mutex_lock(&s->mu);
  s->closing = 1;
  s->paused = 0;
  pthread_cond_broadcast(&s->work_cv);
  pthread_cond_broadcast(&s->retry_cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->writer, NULL);
  s->writer_started = 0;
  if (!s->gave_up) return 0;
  char *m = vh_store__msg(
      "%s: %llu slice(s) dropped: slices %llu..%llu were not written (%s; "
      "last error: %s), the store holds the state as of slice %llu",
      s->dbpath, (unsigned long long)s->dropped_n,
      (unsigned long long)s->dropped_from, (unsigned long long)s->dropped_to,
      s->stopped   ? "writes had stopped"
      : s->abandon ? "the stop did not wait for them"
                   : "writes kept failing at close",
      s->last_error ? s->last_error : "none",
      (unsigned long long)atomic_load(&s->durable_seq));
  if (errmsg)
    *errmsg = m;
  else
    free(m);
  return VH_EIO;
}

void vh_store__queue_free(vh_store_t *s) {
  while (s->qhead) {
    vh_batch_t *next = s->qhead->next;
    vh_batch_free(s->qhead);
    s->qhead = next;
  }
  s->qtail = NULL;
}

/* ---- the loop thread's side ---- */

void vh_store_set_notify(vh_store_t *s, vh_store_notify_fn fn, void *ud) {
  pthread_mutex_lock(&s->mu);
  s->notify = fn;
  s->notify_ud = ud;
  pthread_mutex_unlock(&s->mu);
}

int vh_store_submit(vh_store_t *s, vh_batch_t *b, uint64_t seq) {
  if (b == NULL) return VH_EINVAL;
  if (s->secondary || !s->writer_started || seq <= s->last_submitted) {
    vh_batch_free(b);
    return VH_EINVAL;
  }
  b->seq = seq;
  b->next = NULL;
  size_t bytes = vh_batch_bytes(b);
  pthread_mutex_lock(&s->mu);
  /* Never waits (invariant 4): the caller holds slices while
   * vh_store_health says the queue is full. */
  if (s->qtail)
    s->qtail->next = b;
  else
    s->qhead = b;
  s->qtail = b;
  s->qbytes += bytes;
  s->last_submitted = seq;
  pthread_cond_signal(&s->work_cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

uint64_t vh_store_durable_seq(vh_store_t *s) {
  return atomic_load(&s->durable_seq);
}

int vh_store_wait_durable(vh_store_t *s, uint64_t seq) {
  if (seq > s->last_submitted) return VH_EINVAL; /* would wait forever */
  pthread_mutex_lock(&s->mu);
  while (atomic_load(&s->durable_seq) < seq && !s->gave_up)
    pthread_cond_wait(&s->durable_cv, &s->mu);
  int rc = atomic_load(&s->durable_seq) >= seq ? 0 : VH_EIO;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int vh_store_last_error(vh_store_t *s, char **msg, uint64_t *count) {
  pthread_mutex_lock(&s->mu);
  if (msg) *msg = s->last_error ? strdup(s->last_error) : NULL;
  if (count) *count = s->error_count;
  int failing = s->failing;
  pthread_mutex_unlock(&s->mu);
  return failing;
}

int vh_store_health(vh_store_t *s, vh_store_health_t *out) {
  pthread_mutex_lock(&s->mu);
  out->failing = s->failing;
  out->stopped = s->gave_up;
  /* Hysteresis: full from the limit down to half of it, so a writer that
   * just keeps up does not flip the host in and out of a hold. */
  if (s->qbytes >= s->queue_limit) s->full = 1;
  if (s->qbytes <= s->queue_limit / 2) s->full = 0;
  out->full = s->full;
  out->queued_bytes = s->qbytes;
  out->queue_limit = s->queue_limit;
  out->errors = s->error_count;
  out->reopens = s->reopens;
  out->dropped = s->dropped_n;
  out->last_error = s->last_error ? strdup(s->last_error) : NULL;
  int accepting = !out->stopped && !out->full;
  pthread_mutex_unlock(&s->mu);
  return accepting;
}

void vh_store_abandon(vh_store_t *s) {
  pthread_mutex_lock(&s->mu);
  s->abandon = 1;
  pthread_cond_broadcast(&s->work_cv);
  pthread_cond_broadcast(&s->retry_cv);
  pthread_mutex_unlock(&s->mu);
}

/* ---- test hooks ---- */

void vh_store__fail_writes(vh_store_t *s, int n) {
  atomic_store(&s->fail_writes, n > 0 ? n : 0);
}

void vh_store__pause_writer(vh_store_t *s, int paused) {
  pthread_mutex_lock(&s->mu);
  s->paused = paused;
  pthread_cond_broadcast(&s->work_cv);
  pthread_mutex_unlock(&s->mu);
}

uint64_t vh_store__write_count(vh_store_t *s) {
  return atomic_load(&s->write_count);
}

uint64_t vh_store__flush_count(vh_store_t *s) {
  return atomic_load(&s->flush_count);
}

void vh_store__kill_at(vh_store_t *s, int phase) {
  atomic_store(&s->kill_at, phase);
}

int vh_store_drop_from(vh_store_t *s, uint64_t next_id) {
  if (s->secondary || next_id == 0) return VH_EINVAL;
  pthread_mutex_lock(&s->mu);
  s->drop_from = next_id;
  pthread_cond_signal(&s->work_cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

uint64_t vh_store__trim_count(vh_store_t *s) {
  return atomic_load(&s->trim_count);
}
