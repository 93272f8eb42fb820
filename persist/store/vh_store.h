/*
 * vh_store.h - the snapshot store: encoded nodes and a manifest in RocksDB.
 *
 * The store knows nothing about tries. It keeps
 *   node id (u64)  ->  opaque bytes        (an encoded trie node)
 *   the manifest   ->  opaque bytes        (roots, versions, next ids...)
 * in DIR/db, a RocksDB database, with a checksum on every value and a format
 * record that identifies the database as a vedhost store (byte layouts: top
 * of persist/store/store.c).
 *
 * Writing. The loop thread builds a vh_batch_t per slice (puts, deletes and
 * the manifest) and hands it to vh_store_submit() with the slice's sequence
 * number. One dedicated writer thread takes every batch queued, merges them
 * in commit order into one RocksDB WriteBatch (group commit: the last write
 * of a key wins), writes it atomically (fsync'd in sync mode), and then
 * publishes the highest sequence number written (vh_store_durable_seq) and
 * calls the notify callback. A write that fails with a transient error
 * (no space, too many open files) is retried, with backoff, until it
 * succeeds; a non-transient one (corruption, another I/O error) stops the
 * writer for good. Batches are never reordered, and dropped only when the
 * writer stopped or at close (see vh_store_close). The loop thread never
 * waits on disk, not even for backpressure: vh_store_submit() always
 * queues, and vh_store_health() tells the caller to hold its slices while
 * opts.queue_bytes (default 64 MB) or more wait to be written.
 *
 * Reading (vh_store_get_node, vh_store_get_manifest, the node iterator)
 * happens on the calling thread and verifies the checksum of what it reads.
 * Reads see only what the writer has written, not batches still queued.
 *
 * A secondary store (opts.read_only_secondary) reads a database that a live
 * primary, possibly in another process, is writing (vedhost inspect/fsck):
 * no writer thread, no submit; vh_store_catch_up() pulls in the primary's
 * newest writes.
 *
 * Threads: one thread (the loop thread) owns a vh_store_t and calls every
 * function here, except vh_store_durable_seq(), vh_store_last_error() and the
 * test hooks, which any thread may call. Batches are single-threaded values.
 *
 * Ownership in prototypes: [borrowed] the caller keeps the pointer,
 * [stolen] the callee takes it over, [new] the result is the caller's to
 * free (with free() for bytes and messages).
 *
 * Errors: negative codes of vh_err.h (shared with the trie). Functions
 * that take `char **errmsg` store a [new] one-line message there on error
 * (and NULL on success) when errmsg is not NULL.
 */
#ifndef VH_STORE_H
#define VH_STORE_H

#include "vh_err.h"

#include <stddef.h>
#include <stdint.h>

/* The format this code writes (new stores) and the newest it reads. 2:
 * big string values stored out of line as blobs (persist/trie/codec.c,
 * BLOBS). A version-1 store is read and written as it is (store.c,
 * invariant 1): its nodes with blobs carry node format 2. 3: node keys
 * 'A' + id, sorted before every other key (store.c, FORMAT 3); stores
 * of format 1 and 2 keep their 'N' keys. 4: the nodes in a column family
 * of their own, written as ingested table files (store.c, FORMAT 4);
 * stores of format 1-3 keep their nodes beside the other keys. */
#define VH_STORE_FORMAT_VERSION 5

typedef struct vh_store vh_store_t;
typedef struct vh_batch vh_batch_t;
typedef struct vh_store_iter vh_store_iter_t;

/* Called on the writer thread after durable_seq moved. It must only wake
 * the loop up (uv_async_send) and return: no store calls, no locks held by
 * the loop thread. */
typedef void (*vh_store_notify_fn)(void *ud);

typedef struct vh_store_opts {
  int create; /* create DIR and DIR/db if missing (and the format record) */
  int sync;   /* 1: fsync every write (--durability sync); 0: nosync */
  int read_only_secondary;    /* open beside a live primary, read-only */
  const char *secondary_path; /* [borrowed] secondary's own scratch dir */
  size_t queue_bytes;         /* backpressure bound; 0 = 64 MB */
  /* Tuning, for benchmarks; 0 = the defaults explained in
   * persist/store/store.c. */
  size_t cache_bytes;        /* LRU block cache (16 MB) */
  size_t write_buffer_bytes; /* memtable size (8 MB) */
  /* Bottommost level's codec: 0 = LZ4 (the default, store.c TUNING,
   * CODEC); > 0 = zstd with a dictionary of that many bytes, < 0 = zstd
   * without one: the older stores' codec, for tests and benchmarks. */
  int zstd_dict_bytes;
  int no_compression;    /* 1 = store blocks uncompressed */
  size_t block_bytes;    /* SST data block size (4 KB) */
  size_t manifest_bytes; /* MANIFEST size that starts a new one (4 MB) */
  /* Node ids per graveyard block, as a power of two (graveyard.c), for a
   * store that has not fixed its own yet: 0 = 16 (65536 ids); tests use
   * small blocks. */
  unsigned grave_block_bits;
  /* Dead ids that may wait in incomplete graveyard blocks: 0 = an eighth
   * of the store's live bytes in nodes (history.c, GRAVEYARD), for tests. */
  uint64_t grave_cap_ids;
  /* Background flush of the memtable by the writer (store_writer.c,
   * FLUSHING): after idle_flush_ms without a batch (0 = 100 ms, < 0 =
   * never), and at once each time flush_bytes were written since the
   * last flush (0 = 512 KB). */
  int idle_flush_ms;
  size_t flush_bytes;
  /* RocksDB's automatic compactions are held after open (store.c,
   * COMPACTION HOLD) for compact_hold_ms (0 = 1000 ms, < 0 = not held),
   * or until a write finds level 0 filling up. */
  int compact_hold_ms;
  /* The test harness (host/testing): a store of many tiny slices that is
   * thrown away (or reopened as after kill -9): the memtable is an
   * unsorted vector (appends, sorted at flush: RocksDB's skiplist inserts
   * were 80% of a virtual day's CPU) and a clean close does not flush it
   * (the next open replays the WAL, as after a crash, and flushes it).
   * Reading an unsorted memtable sorts a copy of it at every read: the
   * harness flushes before it reads history (vh_store_flush). */
  int test_store;
  /* `vedhost recover`: open a store whose write-ahead log is corrupt
   * with RocksDB's point-in-time recovery, dropping what follows the
   * damage, instead of refusing it; what was recovered is flushed at open
   * so the damaged log is deleted. */
  int accept_loss;
} vh_store_opts_t;

/* Fills *opts with the defaults: no create, sync on, primary. */
void vh_store_opts_init(vh_store_opts_t *opts);

/* Opens (or with opts->create, creates) the store in DIR/db. On success
 * *out is a [new] store and 0 is returned. On error *out is NULL and a
 * clear message naming the directory and what to do is put in *errmsg:
 * VH_ELOCKED (another vedhost has it open), VH_EFORMAT (foreign RocksDB,
 * bad magic, newer format), VH_ECORRUPT (a damaged store: RocksDB's files,
 * or a write-ahead log with intact records after a damaged one, which is
 * refused before anything in DIR/db is touched), VH_ENOENT (no store and
 * no create), VH_EIO. dir, opts [borrowed]. */
int vh_store_open(const char *dir, const vh_store_opts_t *opts,
                  vh_store_t **out, char **errmsg);

/* A line for the host's log about what the open did, or NULL: after a
 * crash whose last WAL record was torn, which record was dropped and the
 * slice the store is at. [borrowed], valid until close. */
const char *vh_store_open_note(vh_store_t *s);

/* Sets the callback run (on the writer thread) each time durable_seq moves.
 * Call before the first submit. ud [borrowed], must outlive the store. */
void vh_store_set_notify(vh_store_t *s, vh_store_notify_fn fn, void *ud);

/* Closes the store: lets the writer drain the queue and exit (joined), then
 * flushes RocksDB's memtable so the next open replays no WAL, and frees
 * everything. If writes are failing when close is called, the writer tries
 * a few more times (~5 s) and then gives up; if the writer had stopped, or
 * vh_store_abandon was called, it does not try. Then close returns VH_EIO
 * with "N slice(s) dropped: slices a..b were not written ..." (the store on
 * disk is still consistent: it holds the state as of the last durable
 * seq). s [stolen]. */
int vh_store_close(vh_store_t *s, char **errmsg);

/* ---- batches (built on the loop thread) ---- */

/* *out = a [new] empty batch. VH_ENOMEM on allocation failure. */
int vh_batch_new(vh_batch_t **out);
/* Frees a batch that was not submitted. b [stolen], may be NULL. */
void vh_batch_free(vh_batch_t *b);
/* Adds "node id = bytes[0..len)" (bytes [borrowed], copied). */
int vh_batch_put_node(vh_batch_t *b, uint64_t id, const void *bytes,
                      size_t len);
/* Adds "delete node id" (absent ids are fine). */
int vh_batch_del_node(vh_batch_t *b, uint64_t id);
/* Adds "set / delete the sweep key of id" ('Q' + id, see store_sweep.c):
 * put marks node id as the root of a dropped subtree still on disk, to be
 * deleted later by vh_store_sweep_node; del clears the mark. */
int vh_batch_put_sweep(vh_batch_t *b, uint64_t id);
int vh_batch_del_sweep(vh_batch_t *b, uint64_t id);
/* Sets the manifest (bytes [borrowed], copied); the last call wins. */
int vh_batch_set_manifest(vh_batch_t *b, const void *bytes, size_t len);
/* Bytes the batch holds (what backpressure counts). */
size_t vh_batch_bytes(const vh_batch_t *b);

/* Queues batch b [stolen] for writing as slice `seq`, which must be greater
 * than every seq submitted before (else VH_EINVAL, and b is freed). Never
 * waits: the queue may go over opts.queue_bytes, by what the caller submits
 * before it sees vh_store_health() report it full. The batch is written
 * all-or-nothing, after every batch submitted before it. */
int vh_store_submit(vh_store_t *s, vh_batch_t *b, uint64_t seq);

/* Highest seq whose batch (and every earlier one) is written (fsync'd in
 * sync mode); 0 before the first. Any thread. */
uint64_t vh_store_durable_seq(vh_store_t *s);

/* Blocks until durable_seq >= seq. For shutdown paths, tools and tests, not
 * for the loop thread in normal running. Returns VH_EIO if the writer gave
 * up (only possible while closing). */
int vh_store_wait_durable(vh_store_t *s, uint64_t seq);

/* The writer's health. Returns 1 while writes are failing (the last attempt
 * failed and is being retried), else 0. *msg (if msg not NULL) = a [new]
 * copy of the last write error ever seen, or NULL if none; *count (if not
 * NULL) = how many write attempts have failed since open. Any thread. */
int vh_store_last_error(vh_store_t *s, char **msg, uint64_t *count);

/* The writer's state, for the host's backpressure and health. */
typedef struct vh_store_health {
  int failing;         /* the last write attempt failed (being retried, or
                          stopped) */
  int stopped;         /* the writer writes no more: a non-transient error
                          (or vh_store_abandon); what is queued is dropped */
  int full;            /* queued_bytes reached queue_limit and has not
                          drained to half of it since */
  size_t queued_bytes; /* bytes submitted and not yet written or dropped */
  size_t queue_limit;  /* opts.queue_bytes */
  uint64_t errors;     /* failed write attempts since open */
  uint64_t reopens;    /* database reopens after failed writes */
  uint64_t dropped;    /* batches dropped (never written) */
  char *last_error;    /* [new] the last write error, or NULL */
} vh_store_health_t;

/* Fills *out (free out->last_error). Returns 1 while the store accepts
 * slices (not full, not stopped), else 0: the caller should start no new
 * slice until it returns 1 again (the notify callback runs after every
 * group written or dropped). Any thread. */
int vh_store_health(vh_store_t *s, vh_store_health_t *out);

/* Makes the writer drop what is queued instead of writing or retrying it
 * (after the write in progress, if any, returns), so that the next
 * vh_store_close returns at once: a stop that does not wait for a failing
 * store. close then reports the dropped slices (VH_EIO). */
void vh_store_abandon(vh_store_t *s);

/* ---- reads (calling thread; checksums verified) ---- */

/* *bytes = [new] payload of node id, *len its length. VH_ENOENT if the node
 * is absent; VH_ECORRUPT ("node 1234: checksum mismatch ..."); VH_EFORMAT
 * for a value of a newer format; VH_EIO. */
int vh_store_get_node(vh_store_t *s, uint64_t id, void **bytes, size_t *len,
                      char **errmsg);
/* Same for the manifest; VH_ENOENT in a store never given one. */
int vh_store_get_manifest(vh_store_t *s, void **bytes, size_t *len,
                          char **errmsg);

/* Iterates over every node id in increasing order with its payload size
 * (for fsck); values are not verified here, read them to verify. The
 * iterator sees one consistent snapshot. *out = [new] iterator. */
int vh_store_iter_new(vh_store_t *s, vh_store_iter_t **out, char **errmsg);
/* 1 and *id, *size set: one more node; 0: the end; <0: error. */
int vh_store_iter_next(vh_store_iter_t *it, uint64_t *id, size_t *size,
                       char **errmsg);
/* it [stolen], may be NULL. */
void vh_store_iter_free(vh_store_iter_t *it);

/* Calls fn(arg, id, bytes [borrowed], len) for every node with
 * lo <= id < hi, in id order, each checked as vh_store_get_node checks it,
 * with one range scan (persist/store/store_range.c). fn returns 0 to go
 * on, > 0 to stop (then 0 is returned), < 0 to fail with that code. */
typedef int (*vh_store_node_fn)(void *arg, uint64_t id, const void *bytes,
                                size_t len);
int vh_store_node_range(vh_store_t *s, uint64_t lo, uint64_t hi,
                        vh_store_node_fn fn, void *arg, char **errmsg);

/* ---- sweeping dropped subtrees (persist/store/store_sweep.c) ---- */

/* Calls fn(arg, id) for every sweep key written so far (in id order), so a
 * host resumes the sweeps a previous run left pending. fn returning < 0
 * stops the walk with that value. 0 or a negative VH_E* with *errmsg. */
int vh_store_sweep_list(vh_store_t *s, int (*fn)(void *arg, uint64_t id),
                        void *arg, char **errmsg);

/* One sweep step for the subtree root id: reads node id (if it is still
 * there), adds to b [borrowed] "delete node id", "delete sweep key id" and
 * "put sweep key c" for each child c (tables nested in it included), and
 * calls child(arg, c) for each c so the caller can queue them. A node that
 * is gone already (an earlier step was written) only loses its sweep key.
 * A node that does not decode is left in place and its sweep key deleted
 * (fsck then reports it). Reads on the calling thread, like
 * vh_store_get_node. 0, or VH_EIO / VH_ENOMEM with *errmsg and b possibly
 * holding part of the step (drop b or retry the same id: ops repeat
 * harmlessly). */
int vh_store_sweep_node(vh_store_t *s, vh_batch_t *b, uint64_t id,
                        int (*child)(void *arg, uint64_t id), void *arg,
                        char **errmsg);

/* Secondary only: catch up with the primary's newest writes. */
int vh_store_catch_up(vh_store_t *s, char **errmsg);
/* 1 if a process (a running host) holds the store's RocksDB lock. A
 * secondary's view of a live primary can lag behind its files: a table
 * file or a log the view names may be gone (compacted, flushed) and a
 * node or record the view lacks may be written already; readers that
 * meet a missing node catch up and read again (host/admin/offline.c). */
int vh_store_primary_live(vh_store_t *s);

/* Primary only: node keys with ids >= next_id (the manifest's next id)
 * are left by a big group whose write a crash interrupted before its
 * manifest (store_writer.c, BIG GROUPS): no manifest refers to them.
 * The writer thread deletes them (one range delete, only if a node key
 * lies there) before it writes its next group, or once idle; call it
 * after the open, before the first submit. 0, or VH_EINVAL (a secondary,
 * next_id 0). */
int vh_store_drop_from(vh_store_t *s, uint64_t next_id);

/* Primary only: flushes the memtable to an SST and waits (blocks on disk:
 * tools, tests and shutdown only). Queued batches are not waited for. */
int vh_store_flush(vh_store_t *s, char **errmsg);

/* Primary only: flushes the memtable, then compacts the whole key range
 * into the bottommost level (LZ4, store.c TUNING), dropping deleted
 * nodes; waits (blocks on disk and CPU: tools, tests, benchmarks and
 * shutdown only). */
int vh_store_compact(vh_store_t *s, char **errmsg);

/* ---- test hooks (any thread) ---- */

/* The next n writes fail as if the disk were full (n = 0 cancels). */
void vh_store__fail_writes(vh_store_t *s, int n);
/* While paused, the writer takes no batch (to make tests deterministic). */
void vh_store__pause_writer(vh_store_t *s, int paused);
/* Number of RocksDB writes done so far (one per group commit). */
uint64_t vh_store__write_count(vh_store_t *s);
/* Number of background flushes the writer asked RocksDB for. */
uint64_t vh_store__flush_count(vh_store_t *s);
/* Number of times the writer gave freed heap memory back (MEMORY). */
uint64_t vh_store__trim_count(vh_store_t *s);
/* The writer SIGKILLs its own process when it reaches phase (0: never) of
 * a group's write (store_writer.c, BIG GROUPS): VH_STORE_KILL_NODES_PUT
 * after a big group's node puts went into the memtable (no WAL) or, in a
 * store of format 4, into the table file to ingest,
 * VH_STORE_KILL_NODES_FLUSHED after their flush or ingestion,
 * VH_STORE_KILL_WRITTEN
 * after the group's WAL write, before durable_seq moves (every group). */
enum {
  VH_STORE_KILL_NODES_PUT = 1,
  VH_STORE_KILL_NODES_FLUSHED = 2,
  VH_STORE_KILL_WRITTEN = 3
};
void vh_store__kill_at(vh_store_t *s, int phase);
/* Immutable memtables not yet flushed (RocksDB's
 * rocksdb.num-immutable-mem-table); -1 if unknown. */
int vh_store__imm_memtables(vh_store_t *s);
/* Bytes in use in the store's block cache, and its capacity (TUNING,
 * BLOCK CACHE). */
size_t vh_store__cache_usage(vh_store_t *s);
size_t vh_store__cache_capacity(vh_store_t *s);
/* The level RocksDB compacts level 0 into (its "base level"; store.c,
 * TUNING, LEVEL BASE); -1 if unknown. */
int vh_store__base_level(vh_store_t *s);
/* Level-0 table files of the column family that has most (store.c, L0
 * TRIGGER, FORMAT 4); -1 if unknown. */
int vh_store__level0_files(vh_store_t *s);
/* vh_store_checkpoint calls fn(arg) after it listed what to copy and
 * before it copies (NULL: no call): a test makes a primary flush there. */
void vh_store__before_checkpoint(vh_store_t *s, void (*fn)(void *arg),
                                 void *arg);

#endif
