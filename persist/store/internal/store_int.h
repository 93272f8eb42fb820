/*
 * store_int.h - private layout of the store, shared by persist/store/store.c
 * (open, close, reads, options), persist/store/store_writer.c (batches, queue,
 * writer thread) and persist/store/store_damage.c (checks before opening,
 * damage messages). Not for use outside those files and their tests.
 */
#ifndef VH_STORE_INT_H
#define VH_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <rocksdb/c.h>

#include "vh_store.h"
#include "vh_walscan.h"

/* Value header: [u32 crc32c, little endian][u8 kind/version]. */
#define VH_STORE_HDR 5
/* Kind byte = kind << 4 | version. */
#define VH_KIND_NODE 0x1
#define VH_KIND_MANIFEST 0x2
#define VH_KIND_VERSION 0x3 /* 'V': store_versions.c */
#define VH_KIND_DEATHS 0x4  /* 'D' */
#define VH_KIND_MARK 0x5    /* 'K' */
#define VH_KIND_PIN 0x6     /* 'P' */
#define VH_KIND_HISTORY 0x7 /* 'H' */
#define VH_KIND_INPUTS 0x8  /* 'I': store_inputs.c */
#define VH_KIND_CHREC 0x9   /* 'C': store_changes.c */
#define VH_KIND_GRAVE 0xA   /* 'Z', 'R', 'Y': graveyard.c */
#define VH_VALUE_VERSION 1
#define VH_KIND_BYTE(kind) ((uint8_t)((kind) << 4 | VH_VALUE_VERSION))

/* Background flush defaults (store_writer.c, FLUSHING). */
#define VH_IDLE_FLUSH_MS 100
#define VH_FLUSH_BYTES ((size_t)512 << 10)
/* Opens a secondary tries beside a live primary before a missing file is
 * damage (store.c, SECONDARY BESIDE A HOST): ~2.5 s of 10-100 ms waits. */
#define VH_SECONDARY_OPENS 30

/* Key prefixes. */
#define VH_KEY_FORMAT 'F'
#define VH_KEY_MANIFEST 'M'
/* Node keys: 'A' from store format 3 on, so they sort before every other
 * key (store.c, KEYS); a format 1 or 2 store keeps 'N' (vh_store.node_key). */
#define VH_KEY_NODE 'A'
#define VH_KEY_NODE_V1 'N'
#define VH_KEY_SWEEP 'Q'       /* 'Q' u64be(id): a dropped subtree to sweep */
#define VH_NODE_KEY_LEN 9      /* 'N' + u64 big endian */
#define VH_KEY_VERSION 'V'     /* 'V' u64be(seq) */
#define VH_KEY_DEATHS 'D'      /* 'D' u64be(d) u64be(s) */
#define VH_KEY_MARK 'K'        /* 'K' name */
#define VH_KEY_PIN 'P'         /* 'P' u64be(m) u64be(d) u64be(id) */
#define VH_KEY_HISTORY 'H'     /* 'H' */
#define VH_KEY_INPUTS 'I'      /* 'I' u64be(seq): store_inputs.c */
#define VH_KEY_CHREC 'C'       /* 'C' u64be(seq): store_changes.c */
#define VH_KEY_GRAVE 'Z'       /* 'Z' u64be(block) u64be(s): graveyard.c */
#define VH_KEY_GRAVE_BLOCK 'R' /* 'R' u64be(block): graveyard.c */
#define VH_KEY_GRAVE_FLOOR 'Y' /* 'Y': graveyard.c */
/* The column family of the nodes in a store of format 4 (store.c). */
#define VH_NODES_CF "nodes"

/* One operation of a batch. */
typedef struct vh_batch_op {
  uint64_t id;  /* node id */
  size_t off;   /* put: offset of the value (header + payload) in buf */
  size_t len;   /* put: value length including the 5-byte header */
  uint8_t type; /* VH_OP_PUT or VH_OP_DEL */
} vh_batch_op_t;

#define VH_OP_PUT 1
#define VH_OP_DEL 2
#define VH_OP_QPUT 3 /* sweep key 'Q' + id: set (empty value) */
#define VH_OP_QDEL 4 /* sweep key 'Q' + id: delete */
/* Any other key (store_versions.c): the key is at buf[off..off+id), a
 * put's value follows it (len bytes). Never merged away: written in
 * order. */
#define VH_OP_KPUT 5
#define VH_OP_KDEL 6
/* A range of node keys, ids [lo, hi) (u64 lo, hi at buf[off..off+16),
 * id = 16): one range delete (graveyard.c), written in order too. */
#define VH_OP_NRDEL 7
/* Ops on 'N' keys and ops on 'Q' keys of the same id are different keys. */
#define VH_OP_IS_SWEEP(type) ((type) == VH_OP_QPUT || (type) == VH_OP_QDEL)
#define VH_OP_IS_KEY(type) ((type) >= VH_OP_KPUT)

/* A batch: built by the loop thread, then (after submit) owned by the
 * store's queue and read only by the writer thread. */
struct vh_batch {
  vh_batch_op_t *ops; /* ops in the order they were added */
  size_t nops, cap_ops;
  unsigned char *buf; /* values, each [5 header bytes, crc filled by the
                         writer][payload]; the manifest's value too */
  size_t len, cap;
  int has_manifest; /* a manifest value is at buf[man_off .. +man_len) */
  size_t man_off, man_len;
  uint64_t seq;          /* set by vh_store_submit */
  struct vh_batch *next; /* queue link, guarded by vh_store.mu */
};

struct vh_store {
  /* Set at open, then read-only: any thread may read them. */
  char *dir;    /* DIR as given */
  char *dbpath; /* DIR/db */
  int secondary;
  int test_store;      /* vh_store_opts_t.test_store: no flush at close */
  char node_key;       /* first byte of node keys: VH_KEY_NODE or _V1 */
  uint32_t format;     /* the format record's version (GRAVEYARD from 5) */
  unsigned grave_bits; /* vh_store_opts_t.grave_block_bits (0: default) */
  uint64_t grave_cap;  /* vh_store_opts_t.grave_cap_ids (0: default) */
  vh_walscan_t wal;    /* what the WAL scan found before opening */
  char *open_note;     /* [owned] a line for the host's log, or NULL */
  char *scratch;       /* [owned] a secondary's own dir, else NULL */
  rocksdb_t *db;       /* guarded by db_lock: NULL while a reopen failed */
  /* Column families (store.c, FORMAT 4), opened and closed with db:
   * cf_default holds every key but the nodes; cf_nodes holds the nodes,
   * and is cf_default itself in a store of format 1-3 (nodes_apart 0),
   * which keeps its nodes beside the other keys. */
  rocksdb_column_family_handle_t *cf_default, *cf_nodes;
  int nodes_apart;   /* cf_nodes is the "nodes" family: INGESTION */
  char *ingest_path; /* [owned] DIR/db/vh-ingest.tmp (INGESTION) */
  rocksdb_options_t *options;
  rocksdb_options_t *ingest_options; /* INGESTION's table files (store.c) */
  rocksdb_block_based_table_options_t *table_options;
  rocksdb_cache_t *cache;
  rocksdb_readoptions_t *read_options;   /* point reads: verify, fill cache */
  rocksdb_readoptions_t *scan_options;   /* iterator: verify, no cache fill */
  rocksdb_writeoptions_t *write_options; /* sync per opts, WAL always on */
  size_t queue_limit;                    /* backpressure bound in bytes */
  unsigned long long reserve_bytes;      /* free space the writer leaves to
                                            RocksDB (0 for a secondary) */

  /* The handle's lock. Readers (vh_store_get_*, iterators, flush) hold it
   * shared while they use s->db; the writer thread holds it exclusive only
   * to close and reopen the database after a failed write (see
   * store_writer.c, REOPEN). The loop thread takes it with tryrdlock and
   * fails the read ("being reopened") rather than wait for a reopen, which
   * does disk I/O. Lock order: db_lock before mu; nobody takes db_lock
   * while holding mu. */
  pthread_rwlock_t db_lock;

  /* Writer thread and its queue. Lock order: db_lock, then mu; mu is never
   * held across a RocksDB call or the notify callback. */
  pthread_t writer;
  int writer_started; /* loop thread only */
  pthread_mutex_t mu;
  pthread_cond_t work_cv;    /* writer waits: queue empty or paused */
  pthread_cond_t durable_cv; /* wait_durable waits: durable_seq moved */
  pthread_cond_t retry_cv;   /* the writer's backoff: close/abandon wake it */
  vh_batch_t *qhead, *qtail; /* queued batches, oldest first (mu) */
  size_t qbytes;             /* bytes queued or being written (mu) */
  uint64_t last_submitted;   /* highest seq submitted (loop thread) */
  int closing;               /* close asked: drain and exit (mu) */
  int paused;                /* test hook: take no batch (mu) */
  int gave_up;               /* the writer writes no more: it stopped on a
                                non-transient error, or dropped batches
                                while closing (mu) */
  int stopped;               /* it stopped on a non-transient error (mu) */
  int abandon;               /* close drops what is queued at once (mu) */
  uint64_t reopens;          /* database reopens after failures (mu) */
  uint64_t dropped_n;        /* batches dropped, never written (mu) */
  int full;                  /* the queue reached queue_limit and has not
                                drained to half of it since (mu) */
  int need_reopen;           /* a RocksDB write failed: reopen before the
                                next one (writer thread only) */
  int low_space;             /* under the reserve: writing resumes at twice
                                the reserve (writer thread only) */
  uint64_t dropped_from, dropped_to; /* seqs it dropped (mu) */
  char *last_error;          /* [new] copy of the last write error (mu) */
  int failing;               /* the last write attempt failed (mu) */
  uint64_t error_count;      /* failed write attempts (mu) */
  vh_store_notify_fn notify; /* wakeup callback and its argument (mu) */
  void *notify_ud;

  /* Background flush (store_writer.c, FLUSHING): bytes written since the
   * last flush was asked for, and the thresholds (writer thread only). */
  size_t unflushed;
  size_t load_flush_bytes;      /* flush at once past this, idle or not */
  unsigned idle_flush_ms;       /* the pause (0: no idle flush) */
  _Atomic uint64_t flush_count; /* flushes the writer asked for */
  int flush_unwaited;           /* one was asked without waiting (FLUSHING) */
  /* COMPACTION HOLD (store.c): RocksDB's automatic compactions are off
   * since the last open until compact_at (CLOCK_REALTIME) or a write that
   * finds level 0 filling up (writer thread; set by open and reopen). */
  int compact_held;
  unsigned compact_hold_ms; /* 0: no hold */
  struct timespec compact_at;
  /* MEMORY (store_writer.c): batch bytes freed since the last heap trim
   * (writer thread only) and the trims done. */
  size_t untrimmed;
  _Atomic uint64_t trim_count;
  /* Node puts and deletes written since open (writer thread; read by
   * close after the writer joined): store.c, COMPACTION AT A CLEAN STOP.
   * node_range_ids: the ids of the graveyard's range deletes (counted in
   * node_dels too). */
  uint64_t node_puts, node_dels, node_range_ids;
  uint64_t bytes_written; /* RocksDB write batch bytes since open (idem) */

  _Atomic uint64_t durable_seq; /* written by the writer, read by anyone */
  _Atomic int fail_writes;      /* test hook: writes still to fail */
  _Atomic int kill_at;          /* test hook: vh_store__kill_at's phase */
  uint64_t drop_from;           /* vh_store_drop_from's id, 0 once done (mu) */
  _Atomic uint64_t write_count; /* RocksDB writes done */
  /* test hook: vh_store__before_checkpoint's call (rewind.c) */
  void (*before_checkpoint)(void *arg);
  void *before_checkpoint_arg;
};

/* store.c: opens DIR/db (dbpath) with every column family it has:
 * "default", and VH_NODES_CF in a store of format 4. h[0] = default,
 * h[1] = the nodes' family (h[0] again without one: *apart = 0). mode: */
#define VH_OPEN_PRIMARY 0
#define VH_OPEN_SECONDARY 1 /* at secondary_path */
#define VH_OPEN_READ_ONLY 2
rocksdb_t *vh_store__open_families(const rocksdb_options_t *o,
                                   const char *dbpath, int mode,
                                   const char *secondary_path,
                                   rocksdb_column_family_handle_t *h[2],
                                   int *apart, char **rerr);
/* store.c: destroys the handles, then closes db (NULL: nothing). */
void vh_store__close_families(rocksdb_t *db,
                              rocksdb_column_family_handle_t *h[2], int apart);
/* store.c: the highest node id stored (0: none), into *last; 0, or -1
 * on a read error (db_lock held). */
int vh_store__last_node(vh_store_t *s, uint64_t *last);
/* store.c: adds to wb the deletes of the node keys from..last (ids, both
 * included): one range delete ending at last, not past it (INGESTION:
 * a range tombstone over ids still to come would make every later
 * ingested table file overlap it). */
void vh_store__delete_nodes(vh_store_t *s, rocksdb_writebatch_t *wb,
                            uint64_t from, uint64_t last);
/* store.c: level-0 files of the family that has most (db_lock held). */
unsigned vh_store__l0_files(vh_store_t *s);
/* store.c: a RocksDB integer property summed over the column families
 * (cf_default, and cf_nodes if apart); 0, or -1 if RocksDB has no such
 * property. db_lock held. */
int vh_store__prop(vh_store_t *s, const char *name, uint64_t *out);
/* store.c: sets one mutable option in every column family (db_lock
 * held or the writer thread). */
void vh_store__set_option(vh_store_t *s, const char *key, const char *val);
/* store.c: asks RocksDB to flush every column family's memtable, waiting
 * for it or not; [new] RocksDB error string or NULL. */
char *vh_store__flush_all(vh_store_t *s, int wait);

/* store.c: starts the COMPACTION HOLD after an open or a reopen (before
 * the writer runs, or on the writer thread). */
void vh_store__hold_compaction(vh_store_t *s);
/* store.c: formats a [new] message, printf style (NULL if out of memory). */
char *vh_store__msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* store.c: *errmsg = m [stolen] if errmsg is not NULL, else m is freed. */
void vh_store__set_msg(char **errmsg, char *m);
/* store.c: turns a RocksDB error string (errptr, [stolen] and freed) into a
 * vedhost code, and if errmsg is not NULL a [new] message "what: rocksdb's
 * text". */
int vh_store__rocks_err(char *rocks_err, const char *what, char **errmsg);

/* store.c: reads and verifies the value of key (klen bytes) of kind;
 * what names it in messages. Like vh_store_get_node. */
int vh_store__get_value(vh_store_t *s, const char *key, size_t klen, int kind,
                        const char *what, void **bytes, size_t *len,
                        char **errmsg);
/* store.c: verifies a value read by an iterator (see get_value). */
int vh_store__verify(const char *v, size_t vlen, int kind, const char *what,
                     void **bytes, size_t *len, char **errmsg);
/* store.c: the same checks without the copy: *bytes points into v
 * [borrowed] (the payload after the header). */
int vh_store__check(const char *v, size_t vlen, int kind, const char *what,
                    const void **bytes, size_t *len, char **errmsg);
/* store.c: read_lock (shared, never waits) for iterators of other files. */
int vh_store__read_lock(vh_store_t *s, const char *what, char **errmsg);
/* Read options for a scan of the keys of one tag (their first byte): as
 * scan_options (checksums verified, no cache fill), bounded above at
 * tag + 1, which *end [borrowed, must outlive the options] is set to. An
 * unbounded seek or next past the last live key of a tag goes on over
 * every deleted key after it (sweep keys, dropped versions and death
 * lists: hundreds of thousands after a long history) to the next live
 * key: 208M instructions in one restart at K=1M, N=10M (bench/README.md,
 * "Bounded scans"). [new] */
rocksdb_readoptions_t *vh_store__tag_scan_opts(unsigned char tag, char *end);
/* store_versions.c: calls fn for every key starting with prefix (plen
 * bytes) of the default family, in order (or reverse), with the verified
 * payload of kind (kind < 0: the raw value); fn returns non-zero to stop
 * (returned). Read under the read lock, no block cache fill. */
typedef int (*vh_store__scan_fn)(void *arg, const unsigned char *k, size_t klen,
                                 const unsigned char *p, size_t len,
                                 char **errmsg);
int vh_store__scan(vh_store_t *s, const unsigned char *prefix, size_t plen,
                   int kind, int reverse, vh_store__scan_fn fn, void *arg,
                   char **errmsg);
/* store_writer.c: deletes the nodes of ids [lo, hi) (VH_OP_NRDEL). */
int vh_batch__del_node_range(vh_batch_t *b, uint64_t lo, uint64_t hi);
/* store_writer.c: appends an op on any key (VH_OP_KPUT with a framed
 * value of kind, or VH_OP_KDEL when kind < 0). */
int vh_batch__key_op(vh_batch_t *b, const void *key, size_t klen, int kind,
                     const void *payload, size_t len);
/* Records of one version under tag u64be(seq) (the input log 'I', change
 * records 'C'): vh_batch__key_op on that key (kind < 0 deletes), and
 * vh_store__get_value of it (*bytes [new]). */
#define VH_SEQ_KEY_LEN 9
int vh_batch__seq_op(vh_batch_t *b, unsigned char tag, uint64_t seq, int kind,
                     const void *payload, size_t len);
int vh_store__seq_get(vh_store_t *s, unsigned char tag, uint64_t seq, int kind,
                      const char *what, void **bytes, size_t *len,
                      char **errmsg);
/* store_inputs.c: deletes 'I' seq (vh_batch_del_version calls it). */
int vh_batch__del_inputs(vh_batch_t *b, uint64_t seq);
/* store_changes.c: deletes 'C' seq (vh_batch_del_version calls it). */
int vh_batch__del_chrec(vh_batch_t *b, uint64_t seq);

/* store.c: closes and reopens the database (writer thread only, after a
 * failed write), then flushes the memtable so the WAL that held the failed
 * write is retired. 0, or <0 with *errmsg [new]; s->db may then be NULL
 * (reads fail until a later reopen works). */
int vh_store__reopen(vh_store_t *s, char **errmsg);
/* store.c: bytes free on DIR's file system (statvfs), or ULLONG_MAX if it
 * cannot be told. */
unsigned long long vh_store__free_bytes(vh_store_t *s);
/* store_damage.c: the checks before rocksdb_open (CURRENT, MANIFEST, the
 * WAL scan into s->wal); 0, or a negative code with a [new] message. */
int vh_store__precheck(vh_store_t *s, const vh_store_opts_t *o, char **errmsg);
/* store_damage.c: what is damaged, as a [new] phrase, or NULL if nothing
 * is seen (s->db may be NULL). */
char *vh_store__damage(vh_store_t *s);
/* store_damage.c: after a secondary opened, a table file it lists that is
 * missing (also after catching up with a primary), as a [new] phrase, or
 * NULL. */
char *vh_store__secondary_tables(vh_store_t *s);
/* store_damage.c: a phrase for a RocksDB error naming a missing file. */
char *vh_store__missing_table(const char *rerr);
/* store_damage.c: the one "store is damaged" message; what [stolen].
 * Returns VH_ECORRUPT. */
int vh_store__damaged(vh_store_t *s, char *what, char **errmsg);
/* store_damage.c: s->open_note for a torn WAL tail (after open). */
void vh_store__torn_note(vh_store_t *s);

/* store_writer.c: start the writer thread / drain it and join it. stop
 * returns 0, or VH_EIO with a message if batches had to be dropped. */
int vh_store__writer_start(vh_store_t *s);
int vh_store__writer_stop(vh_store_t *s, char **errmsg);
/* store_writer.c: free every queued batch (after the writer stopped). */
void vh_store__queue_free(vh_store_t *s);

#endif
