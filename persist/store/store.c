/*
 * store.c - the snapshot store on RocksDB: open, format check, reads, close.
 *
 * WHAT. A key/value store of encoded trie nodes plus one manifest, kept in
 * DIR/db (a RocksDB database; the host owns DIR and its LOCK file). The
 * writing half (batches, the queue and the writer thread with group commit)
 * is in persist/store/store_writer.c; the private struct is in store_int.h.
 *
 * WHY ROCKSDB AND NOT OUR OWN FILES. The store must write many small values
 * atomically (one WriteBatch per group of slices), fsync once per group,
 * delete replaced nodes so disk tracks live state (ARCHITECTURE.md invariant
 * 5), and compress small nodes well. RocksDB's WAL gives the atomic batch, its
 * level compaction drops deleted nodes, and its block-level LZ4 compresses
 * neighbouring nodes together (ARCHITECTURE.md "Storage choices"; TUNING,
 * CODEC).
 *
 * KEYS (byte strings; RocksDB orders them bytewise):
 *
 *   'F'                      format record, written once at creation
 *   'M'                      the manifest
 *   'A' u64be(id)            a node: 9 bytes, big endian so ids sort in order
 *                            ('N' in a store of format 1 or 2, see below),
 *                            in the column family "nodes" (FORMAT 4)
 *   'Q' u64be(id)            a dropped subtree rooted at node id whose nodes
 *                            are still to be deleted (empty value; see
 *                            persist/store/store_sweep.c)
 *   (other capital letters are free for later use)
 *
 * FORMAT RECORD VALUE ('F'), 12 bytes (later versions may append fields):
 *
 *   offset size  field
 *   0      8     magic "VEDHOST\0"
 *   8      4     u32 little endian: store format version (5; 4 before
 *                the GC's dead nodes went through the graveyard, FORMAT
 *                5; 3 before
 *                the nodes had a column family of their own, FORMAT 4;
 *                2 before node keys sorted first, FORMAT 3; 1 before
 *                big string values were stored out of line as blobs,
 *                invariant 1)
 *
 * FORMAT 3 (this code) differs from 2 only in the node key's first byte:
 * 'A' instead of 'N', so that node keys sort before every other key. Node
 * ids only grow, so a memtable flush (an L0 file) then spans the newest
 * node ids and the other keys after them, and RocksDB's compaction of L0
 * into the level below rewrites only that level's files of those keys
 * (the last node file, the death lists, versions, inputs, the manifest;
 * the SST partitioner cuts output files where the first byte changes);
 * with 'N', between 'D' (death lists) and 'V' (versions), every L0 file
 * spanned every stored node and each compaction rewrote them all (TUNING).
 * A format 1 or 2 store is still read and written, with its 'N' keys; a
 * new store, or one restored from a backup, gets format 3. An older vedhost
 * refuses a format 3 store with its "newer than this vedhost supports"
 * line.
 *
 * FORMAT 4 (this code): the node keys live in a column family of their
 * own, "nodes"; every other key in RocksDB's default family, so the two
 * are compacted apart. A slice's nodes have ids above every stored node
 * (ids only grow), and the writer writes a big group's node puts as one
 * table file that RocksDB ingests (store_writer.c, INGESTION): it
 * overlaps nothing in the family, so RocksDB puts it straight into the
 * bottommost level, where no compaction rewrites it on its way down. The
 * GC's deletes and small groups' nodes go through the memtable and level 0
 * as before, and compaction brings the deletes to the old files (one
 * rewrite of what survives, not one per level). Measured at K=1M, N=10M
 * (bench/README.md, "perf/ingest"): compaction CPU 47 -> 24 s, flush 12.5
 * -> 4.8 s, process CPU -26% against format 3. A format 1-3 store has no
 * such family: it is opened with the default one only (cf_nodes is that
 * one, nodes_apart 0), keeps its node keys beside the others and the
 * memtable path, and keeps its format. A new store (and one that import
 * fills) is created with the family and the format record 4 (a crash
 * between the two leaves an empty store with the family, which the next
 * open completes). A format 4 record without the family, or a lower one
 * with it, is damage. An older vedhost cannot open a format 4 store: its
 * RocksDB open fails ("Column families not opened: nodes") before it reads
 * the format record, so it says "cannot open the store" with that text,
 * not the "newer than this vedhost" line.
 *
 * FORMAT 5 (this code) is format 4 plus the graveyard's records ('Z',
 * 'R', 'Y': persist/store/graveyard.c): the GC may write a dead node's id
 * into its block's record instead of deleting the node, and delete a
 * block of ids by one range delete later. A new store gets format 5; a
 * format 1-4 store keeps its format and deletes each dead node at once
 * (vh_store.format). An older vedhost refuses a format 5 store with its
 * "newer than this vedhost supports" line (it would count the
 * graveyard's nodes as leaks and never delete them).
 *
 * NODE AND MANIFEST VALUES ('A...', 'M'):
 *
 *   offset size  field
 *   0      4     u32 little endian: CRC-32C of bytes 4..end (vh_crc32c.h)
 *   4      1     kind << 4 | version: node 0x11, manifest 0x21
 *   5      n     payload: the opaque bytes given to the batch
 *
 * INVARIANTS.
 *  1. A database is used only if its format record has the magic and a
 *     version <= VH_STORE_FORMAT_VERSION. A store is created (format record
 *     written, fsync'd) only when opts.create is set and the database holds
 *     no key at all, so a foreign RocksDB is never written to. A store of
 *     version 1 is read and written as it is: version 2 only adds blob
 *     records and references (persist/trie/codec.c, BLOBS), and those
 *     nodes carry node format 2, which a vedhost of version 1 refuses as
 *     "node of a newer format" when it reads one (never misread).
 *  2. Every value read is verified (length, CRC, kind) before its payload is
 *     returned; a value of a newer version is refused (VH_EFORMAT), never
 *     misread. RocksDB also verifies its own block checksums on every read
 *     (paranoid checks on); its "Corruption" errors become VH_ECORRUPT.
 *  3. Only the writer thread writes, after open. Reads may run on the loop
 *     thread at the same time (RocksDB is thread-safe for this), under
 *     db_lock held shared, so the writer's reopen after a failed write
 *     (store_writer.c, REOPEN) never pulls the handle from under them.
 *  4. A clean close flushes the memtable, so the next open replays no WAL
 *     (and compacts a small store, TUNING).
 *
 * WAL DAMAGE (persist/store/walscan.c reads the log before RocksDB does, from
 * vh_store__precheck in persist/store/store_damage.c):
 *  - intact: "tolerate corrupted tail records" mode, a safety net: damage
 *    the scan missed makes the open fail instead of dropping records;
 *  - torn tail only (or an earlier crash's torn tail that later records
 *    continue): "point in time", which stops exactly there; the primary
 *    keeps a note (vh_store_open_note) that the host logs;
 *  - intact records after a damaged one: refused before RocksDB opens, so
 *    nothing in DIR/db is written (no replay, no new MANIFEST, no deleted
 *    log), unless opts.accept_loss (`vedhost recover`): "point in time",
 *    flushing what was recovered at open so the damaged log is deleted.
 * DAMAGED ROCKSDB FILES are diagnosed in one place for every caller (run,
 * the offline tools, recover), persist/store/store_damage.c: CURRENT missing
 * beside RocksDB's files, a MANIFEST that CURRENT names missing or damaged
 * (checked before opening: RocksDB would open an older version and delete the
 * table files it no longer lists), a listed table file missing. Such a store is
 * refused as damaged, never taken for a foreign or missing one, never
 * re-created.
 *
 * SECONDARY BESIDE A HOST (inspect, log, diff, export, fsck, changes on a
 * running host). A secondary reads the primary's MANIFEST, then its table
 * files and logs, while the primary flushes (writes a table file, names it
 * in the MANIFEST, deletes the log it retired) and compacts (deletes the
 * files it replaced). So the open can fail on a log deleted meanwhile
 * ("No such file"), or name a table file that is gone, while nothing is
 * damaged: a stress test (spec/live_readers_spec.lua) saw one open in six
 * fail so. With a live primary (RocksDB's lock on db/LOCK held) the open
 * is tried again, up to VH_SECONDARY_OPENS times; then, or without a live
 * primary, what it found is reported as damage. A view that opened can
 * still miss a node whose batch sat in a log deleted before the
 * secondary read it: readers catch up and read again (offline.c).
 *
 * TUNING (build_options below). Numbers from bench/store_bench.c on the
 * 2-core test machine, synthetic ~190-byte node payloads (see the bench):
 *  - CODEC: LZ4 at every level below L0, the bottommost level (where most
 *    data lives) included. Small nodes share field names and id prefixes
 *    with their block neighbours, which per-value compression cannot
 *    exploit; block compression can. Before perf/lz4 (2026-12-06) the
 *    bottommost level was zstd (level 3) with a 16 KB dictionary of
 *    sampled blocks; reading a 4 KB zstd block costs ~80k
 *    instructions (zstd builds its Huffman/FSE tables for every block,
 *    and Debian's librocksdb 7.8 has no digested-dictionary path), LZ4
 *    ~11-14k, and reads of old versions are mostly such block reads (a
 *    diff, at(V), the change feed: issue 15). Measured on the data of
 *    K=1M N=10M --retain 0 (bench/README.md, "LZ4 at the bottommost
 *    level"): SST 15.4 MB zstd, 20.9 MB LZ4 (+36%), 19.0 MB LZ4HC level
 *    1 (+24%); a full compaction with the same codec in and out 0.58 s
 *    CPU zstd, 0.25 s LZ4, 0.48 s LZ4HC 1; a random point read with a
 *    1 MB cache 16.3 us zstd, 5.5 us LZ4 or LZ4HC. LZ4HC's 9% less disk
 *    costs the compaction CPU that LZ4 saves (compaction is ~40% of a
 *    K=1M sync write's CPU), and disk stays under issue 16's bound (2x
 *    Redis RDB) with plain LZ4: taken. The codec is recorded per block,
 *    so a store written with zstd reads as it is and turns LZ4 as
 *    compactions rewrite it (no format version change). Export/backup
 *    streams keep zstd (persist/trie/export.c).
 *  - No compression at L0 (the memtable flushes, short-lived: the next
 *    compaction rewrites them). Since the writer asks for a flush every
 *    1 MB (store_writer.c), LZ4 at L0 compressed every node once more
 *    for files only ~15% smaller; callgrind of bench/README.md's sync
 *    profile (K=50k, N=150k): flush thread 567M -> 333M instructions.
 *    Before, LZ4 was used at L0 too, as RocksDB's tuning guide
 *    recommends; measured then with the peer benchmark's workload (2M
 *    updates over 1M keys, sync): zstd everywhere 14.0-15.1 s, LZ4 above
 *    11.9-12.6 s (-15%); flushes finish sooner, so a kill -9 more often
 *    finds one WAL (2.3 MB, 47-51 ms to the first handler) instead of
 *    two (6.9 MB, 160-214 ms). Disk after a clean stop: the same within
 *    the run-to-run spread (42-81 MB either way).
 *  - The zstd dictionary the bottommost level had (the older codec,
 *    kept for tests and benchmarks: vh_store_opts.zstd_dict_bytes) was
 *    the sampled blocks themselves (zstd_max_train_bytes 0), not trained:
 *    zstd's trainer ran once per compaction output file and was 980M of
 *    the 3.33G instructions of the sync profile above. It saved 11% on
 *    synthetic nodes, 0-1% on real ones, and cost reads nothing.
 *  - NO memtable insert hint (memtable_insert_with_hint_prefix_extractor).
 *    Tried with a 1-byte prefix: only -4% of the skiplist insert (Debian's
 *    librocksdb has assertions on, which walk every level of the hint
 *    after each insert), and RocksDB 7.8's MemTable::Add keeps one hint
 *    per prefix for both the point and the range-deletion skiplists, so a
 *    DeleteRange on node keys (rewind.c: branch, rollback) met a hint
 *    from the other list: an assertion abort in `vedhost branch`
 *    (versions_roll_spec), memtable corruption in a build without them.
 *  - 64 MB LRU block cache: decompressed blocks of hot nodes.
 *  - Full bloom filter, 10 bits/key (~1% false positives), and a hash index
 *    inside data blocks: node reads are point lookups, never scans.
 *  - Index and filter blocks in the block cache, read on a table's first
 *    lookup (level 0's pinned), not all at open: max_open_files -1 opens
 *    every table file at open, and reading each one's index and filter
 *    made a restart grow with history (~18 MB for 1.6 GB of it; K=1M
 *    N=10M restart 0.05 -> 0.02 s CPU). Cold reads at K=1M: the same.
 *  - INGESTED FILES are not compressed (store_writer.c, INGESTION): the
 *    fresh nodes of one slice share little within a 4 KB block, and
 *    RocksDB keeps a block raw unless LZ4 saves 1/8 of it: K=1M, N=4M,
 *    the data dir was 896 MB with LZ4 and 900 MB without, while LZ4 was
 *    ~30% of the writer thread (7.2 -> 5.2 s). Compactions still write
 *    LZ4 (CODEC), so what survives the GC's rewrite is compressed.
 *  - OPEN FILES: a primary keeps at most VH_MAX_OPEN_FILES (128) table
 *    files open, opened when first read (RocksDB opens a quarter of that
 *    at open), not all of them at open (-1) as before FORMAT 4: ingested
 *    files are one per big group (~2 MB at K=1M) until compaction
 *    rewrites them, 630-700 files for the 1.5 GB of K=1M N=10M with the
 *    default retention, and opening all of them made the first handler
 *    after a clean stop ~100 ms (~36 ms now, ~29 ms for format 3's ~110
 *    files). 128 rather than 512: each open table reader holds memory
 *    (VmRSS after 10M updates at K=1M: -4 MB with the next change of
 *    BLOCK CACHE's measurements). A secondary needs -1 (RocksDB), so the
 *    host raises the soft limit on open files (host/cli/main.c, OPEN
 *    FILES).
 *  - MANIFEST at most VH_MANIFEST_BYTES (4 MB; RocksDB's default is 1
 *    GB): RocksDB appends an edit to its MANIFEST for every flush,
 *    ingestion and compaction (~2,600 edits for K=1M N=10M) and reads
 *    them all at open; a new MANIFEST (one snapshot of the live files) is
 *    started only at open or past this size. So a host that ran for
 *    weeks without a restart read a MANIFEST that grew with its history
 *    at the open after a crash; now at most 4 MB of edits, whatever the
 *    history.
 *  - Scans of one key tag are bounded at the tag's end
 *    (vh_store__tag_scan_opts): a seek past a tag's last live key
 *    otherwise steps over every deleted key after it.
 *  - write_buffer_size 4 MB (two memtables) and one group <= 1 MB
 *    (store_writer.c): an open after kill -9 replays at most ~2 write
 *    buffers of WAL at ~20 ms/MB here. The writer keeps it far shorter
 *    (store_writer.c, FLUSHING): it asks for a flush after 100 ms idle
 *    and every 512 KB written (no write starts while it runs), so a kill
 *    -9 after a burst leaves no WAL and one under a flood at most 512 KB
 *    plus one group (K=100k: 0.73-0.84 MB).
 * Measured with 1M nodes under a flood of updates: 8 MB buffers left 15-16 MB
 * of WAL and a 300-330 ms open; 4 MB buffers, 7.5 MB and 140 ms. A clean close
 * leaves no WAL: open + manifest read of 1M nodes ~6 ms. (max_total_wal_size,
 * 16 MB, only matters with several column families; set for when there are.)
 *  - L0 TRIGGER: a compaction starts at 8 level-0 files (RocksDB's
 *    default is 4; writes slow down at 30 files and stop at 50, against
 *    20 and 36). Under --retain 0 every slice deletes nodes spread over
 *    all ids, so each compaction from level 0 rewrites the whole
 *    bottommost level whatever it brings; at 8 files it does that
 *    half as often. bench/run's workload at K=1M, N=3M, --retain 0:
 *    RocksDB's compaction CPU 22.5 -> 16.9 s (its own CompMergeCPU, one
 *    run each under the same load), L6 bytes read 0.4 -> 0.3 GB. At
 *    K=100k it saved ~10% of compaction CPU (smaller bottommost level).
 *    Costs: up to ~8 more L0 files (each a bloom filter probe per node
 *    read, and a table reader to open after a kill -9), and more SST
 *    bytes before the store settles (the close compaction's bound below
 *    is 128 MB for that reason).
 *  - Level compaction with dynamic level sizes: space amplification stays
 *    near 1.1x, so disk tracks live state even though every slice deletes
 *    as many old nodes as it writes new ones. A deletion-triggered
 *    compaction marks SST files that are mostly tombstones (a dropped
 *    subtree) so they are compacted away soon rather than when size-based
 *    compaction reaches them.
 *  - LEVEL BASE 16 MB (max_bytes_for_level_base; RocksDB's default is
 *    256 MB). Node ids only grow, but with retention the GC deletes the
 *    OLDEST retained ids (the nodes of the version it drops) while the
 *    slices write the newest: every memtable flush (an L0 file, which the
 *    SST partitioner does not cut) spans from the oldest retained node to
 *    the newest, and RocksDB's L0 compaction rewrites every file of the
 *    base level inside that range, i.e. the whole base level. With a 256
 *    MB base the base level was the bottommost one below ~2.5 GB of SST
 *    (all of history), and L5 (~10% of it) above: each L0 compaction of
 *    ~16 MB rewrote up to 256 MB (bench/README.md, "K = 1M with
 *    retention": 80% of the slow phase's samples were compaction). A 16 MB
 *    base puts one or two small levels above, so the L0 compaction rewrites
 *    ~16 MB, and the compactions below it pick one file each, whose key
 *    range is either the old end (tombstones) or the new end (new nodes),
 *    never both. Measured (K=500k, N=2M, sync, --retain 100MB, 3-4 runs at
 *    once on the loaded machine, compaction stats at close): compaction
 *    CPU 42.0 -> 17.9 s, process CPU 56.0 -> 32.1 s against 26.2 s for
 *    --retain 0 in the same run; a 4 MB base gave the same CPU and more
 *    disk. The price: deletes reach the bottommost level later, so the
 *    disk holds more dead nodes while the writes go on (180-260 MB of SST
 *    against 120 MB at the end of that run; the next compactions drop
 *    them). --retain 0 (deaths near the newest ids) is unchanged. K=1M,
 *    N=10M, default retention against --retain 0 started together: CPU
 *    per update 0.85x, updates done while both ran 0.79x (0.34x of the
 *    wall time before, on an idle machine: bench/README.md).
 *  - WAL recovery mode: chosen per open from a scan of the WAL done first
 *    (WAL DAMAGE below), so RocksDB never drops a record silently.
 *  - COMPACTION AT A CLEAN STOP (vh_store_close): when, once the close
 *    flushed the memtable, more than a third of the SST bytes sit above
 *    the bottommost level's (flushed files
 *    and tombstones not yet compacted down), the session deleted at
 *    least one node per three written, and the store is <= 128 MB (64
 *    MB before the L0 TRIGGER: level 0 now holds up to ~20-40 MB of
 *    uncompressed flushes at 1M keys; a stop spends ~2-3 s of CPU on it
 *    here), close compacts everything into the bottommost level (LZ4 since
 * CODEC; the figures here are zstd's). 1M keys, 2.3M updates, --retain 0: 55.3
 * MB of SST (16 L0 files, 39 MB, waiting behind a 14 MB bottommost level)
 * -> 14.9 MB, 2.2 s of CPU (7-10 s wall on the loaded machine); 100k keys: 7.1
 * -> 1.5 MB. Retained history is live data: with the default
 *    --retain a 100k-key store (1M updates) went 66 -> 58 MB only, for
 *    ~20 s of wall time at close on the loaded machine: such a session
 *    deletes few nodes, so the second rule leaves it to RocksDB. Block sizes 16
 * / 32 KB: 3-4% smaller than 4 KB, not worth the slower point reads.
 *    A third rule (perf/stop): the session wrote at least a quarter as
 *    many bytes as the store's SST holds (one that replaced every node
 *    wrote about half: the old nodes are still there), so a short one (a
 *    restart that dropped old versions: deletes only, a few MB) does not
 *    spend seconds of its stop rewriting up to 128 MB: the compaction
 *    rewrites at most 4x what the session wrote (test_store
 *    clean_close_leaves_compaction_to_a_long_session).
 *  - avoid_flush_during_recovery: the replayed WAL stays in the memtable
 *    (and its log file stays until the memtable is flushed as usual), so
 *    open does not compress and write an L0 file first. 1M-key state,
 *    2.4 MB of WAL after kill -9: exec to first handler 78-87 ms -> 49-54
 *    ms. The WAL stays bounded by the write buffers as before.
 *  - PERF LEVEL: the thread that opens the store sets RocksDB's perf
 *    level to kDisable (the writer thread does the same, store_writer.c).
 *    It is thread-local and defaults to counting: every key compare of
 *    the WAL replay at open (~19 per memtable insert, the Debian build's
 *    skiplist assertions included) and of later reads bumped a counter
 *    through the perf context's TLS (__tls_get_addr twice and a TLS init
 *    per compare). Restart after kill -9 under load, K=100k, 1.49 MB of
 *    WAL (callgrind, every thread up to the close): 157.6M -> 146.3M
 *    instructions (bench/README.md, "Crash restart under load
 *    (perf/crash)").
 *  - BLOCK CACHE: 16 MB (64 MB, then 32 MB before). Index and filter blocks go
 * through it (see build_options), and RocksDB 7.8 leaves the blocks of a table
 *    file that compaction deleted in the cache until the LRU pushes them
 *    out: a host that writes fills the cache to about its capacity with
 *    the index and filter blocks of dead files, whatever it reads. K=1M,
 *    N=10M (bench's writer, default --retain, 1.3 GB of live tables whose
 *    index and filter blocks are 16.5 MB): 42-50 MB in use of 64 at the
 *    end, VmRSS 126-140 MB; with 32 MB, 12.7 MB in use and 91.8 MB (16 MB:
 *    8.0 MB and 84.9 MB) (bench/README.md, "Memory after a long history").
 *    32 MB held those 16.5 MB with room for data blocks; but with store
 *    format 4 every ingested file (~1000 per 10M updates there) is opened
 *    by its ingestion and puts its index and filter blocks in the cache
 *    too, and VmRSS after those 10M updates was 101-105 MB with 32 MB,
 *    96.4 with 24, 92.6 with 16 (format 3 with 32 MB: 94.5, same hour).
 *    Cold reads with 16 MB: versions_bench's at(V) 0.60 ms against the
 *    present's 0.77 ms (0.78x), as before.
 *  - NOT TAKEN (perf/sync4, bench/README.md "perf/sync4"): K=1M N=4M
 *    --retain 0, CPU seconds in interleaved runs, none outside the
 *    run-to-run spread (~±5%): XXH3 block checksums (perf shows <0.1% of
 *    the flush and compaction threads in CRC code; only the WAL's record
 *    CRC, whose type is fixed, is a software CRC-32C, ~10% of the writer
 *    thread), no compression above the bottommost level, a 256 MB level
 *    base (no L5 above L6 at K=1M), optimize_filters_for_hits, and an L0
 *    trigger of 16 (on 2 saturated cores a compaction takes whatever L0
 *    files piled up while it waited, whatever the trigger).
 *  - 2 background jobs (2 cores). The info LOG is kept at FATAL level: see
 *    build_options for the disk-full abort in librocksdb 7.8 this avoids.
 *  - COMPACTION HOLD: a primary opens with disable_auto_compactions=true,
 *    and its writer thread sets it back to false (rocksdb_set_options)
 *    compact_hold_ms (1 s) after the open, or before a write that finds
 *    VH_COMPACT_HOLD_L0 (12) files in level 0, whichever comes first
 *    (store_writer.c; the reopen after a failed write holds it again).
 *    A kill -9 in the middle of a flood leaves a dozen level-0 files
 *    behind, and RocksDB started compacting them (into the bottommost
 *    level) as soon as open returned: perf of a restart after kill -9 at
 *    1M keys, 66% of the process's samples were that compaction thread,
 *    competing with the loop thread (WAL replay, first handler) for the 2
 *    cores. The bound at 12 stays under the write slowdown at 30
 *    level-0 files (stop at 50, L0 TRIGGER), so the hold never stalls
 *    a write; the manual compaction at a clean close is not affected.
 *    A clean close holds them again before its flush when level 0 is at
 *    the slowdown (close_hold: A CLEAN STOP WAITS FOR NO COMPACTION), and
 *    rocksdb_close cancels a running compaction: runs that all stop
 *    before their level-0 compaction is done add one level-0 file each,
 *    so level 0 can pass the slowdown (a write is paced: microseconds for
 *    a small batch) and reach the stop at 50, where the first write after
 *    the hold waits for that compaction: 1 run in 60 back-to-back
 *    restarts at K=200k (0.33-0.62 s, bench/README.md "perf/stop"),
 *    where before their stops waited for it (2 in 55, 1.7-2.1 s).
 */
#include "store_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "vh_bytes.h"
#include "vh_crc32c.h"

/* Defaults (see TUNING above). */
#define VH_DEFAULT_QUEUE_BYTES ((size_t)64 << 20)
#define VH_DEFAULT_CACHE_BYTES ((size_t)16 << 20) /* TUNING, BLOCK CACHE */
#define VH_DEFAULT_WRITE_BUFFER ((size_t)4 << 20)
#define VH_DEFAULT_WAL_BYTES ((uint64_t)16 << 20)
#define VH_DEFAULT_BLOCK_BYTES ((size_t)4 << 10)
/* Largest MANIFEST before RocksDB starts a new one (TUNING, MANIFEST). */
#define VH_MANIFEST_BYTES ((uint64_t)4 << 20)
/* Table files a primary keeps open (TUNING, OPEN FILES). */
#define VH_MAX_OPEN_FILES 128
/* Free space needed to open: a preallocated WAL (1.1 x the write buffer),
 * the MANIFEST, OPTIONS and LOG files, and room for a first flush. */
#define VH_MIN_FREE_BYTES ((unsigned long long)16 << 20)
/* Free space the writer leaves to RocksDB's flushes and compactions: it
 * writes no batch while the file system has less (store_writer.c), so a
 * disk that fills up with vedhost's own data stops vedhost before RocksDB
 * ever sees ENOSPC. */
#define VH_RESERVE_BYTES ((unsigned long long)8 << 20)
/* Largest store (SST bytes) a clean close compacts fully (TUNING). */
#define VH_COMPACT_AT_CLOSE_BYTES ((uint64_t)128 << 20)
/* Memory bound for the blocks buffered to sample a zstd dictionary per
 * SST (the older bottommost codec, tests and benchmarks only). */
#define VH_DICT_BUFFER_BYTES ((uint64_t)8 << 20)
/* COMPACTION HOLD (TUNING): how long after open. */
#define VH_COMPACT_HOLD_MS 1000
/* L0 TRIGGER (TUNING): level-0 files that start a compaction, slow
 * writes down, stop them (RocksDB's defaults: 4, 20, 36). */
#define VH_L0_TRIGGER 8
#define VH_L0_SLOWDOWN 30
#define VH_L0_STOP 50
/* SST file size a compaction aims at (TUNING). */
#define VH_TARGET_FILE_BYTES ((uint64_t)16 << 20)
/* max_bytes_for_level_base (TUNING, LEVEL BASE). */
#define VH_LEVEL_BASE_BYTES ((uint64_t)16 << 20)

static const char vh_magic[8] = {'V', 'E', 'D', 'H', 'O', 'S', 'T', '\0'};

/* ---- messages and errors ---- */

char *vh_store__msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *m = malloc((size_t)n + 1);
  if (m == NULL) return NULL;
  va_start(ap, fmt);
  vsnprintf(m, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return m;
}

void vh_store__set_msg(char **errmsg, char *m) {
  if (errmsg != NULL)
    *errmsg = m;
  else
    free(m);
}

/* Classifies a RocksDB status string by its prefix (Status::ToString). */
static int rocks_code(const char *e) {
  if (strncmp(e, "Corruption", 10) == 0) return VH_ECORRUPT;
  if (strstr(e, "lock file") != NULL || strstr(e, "/LOCK") != NULL)
    return VH_ELOCKED;
  if (strstr(e, "does not exist (create_if_missing is false)") != NULL)
    return VH_ENOENT;
  if (strstr(e, "CURRENT") != NULL && strstr(e, "No such file") != NULL)
    return VH_ENOENT;
  return VH_EIO;
}

int vh_store__rocks_err(char *rocks_err, const char *what, char **errmsg) {
  int rc = rocks_code(rocks_err);
  if (errmsg != NULL) *errmsg = vh_store__msg("%s: %s", what, rocks_err);
  rocksdb_free(rocks_err);
  return rc;
}

void vh_store_opts_init(vh_store_opts_t *opts) {
  memset(opts, 0, sizeof *opts);
  opts->sync = 1;
}

/* ---- options ---- */

/* The WAL recovery mode for what the scan found (see WAL DAMAGE above):
 * RocksDB may drop records only where the scan proved nothing that counted
 * is lost, or where recover accepted the loss. */
static int wal_mode(const vh_store_t *s, const vh_store_opts_t *o) {
  if (s->wal.state == VH_WALSCAN_CLEAN && !s->wal.tail_seen)
    return rocksdb_tolerate_corrupted_tail_records_recovery;
  if (s->wal.state == VH_WALSCAN_CORRUPT && !o->accept_loss)
    return rocksdb_absolute_consistency_recovery; /* not reached */
  return rocksdb_point_in_time_recovery;
}

static void build_options(vh_store_t *s, const vh_store_opts_t *o) {
  rocksdb_options_t *opt = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(opt, o->create && !s->secondary);
  rocksdb_options_set_paranoid_checks(opt, 1);
  rocksdb_options_set_wal_recovery_mode(opt, wal_mode(s, o));
  /* TUNING, OPEN FILES: a secondary needs -1 (every table file open) */
  rocksdb_options_set_max_open_files(opt,
                                     s->secondary ? -1 : VH_MAX_OPEN_FILES);
  rocksdb_options_set_max_background_jobs(opt, 2);
  rocksdb_options_set_max_manifest_file_size(
      opt, o->manifest_bytes ? o->manifest_bytes : VH_MANIFEST_BYTES);
  rocksdb_options_set_keep_log_file_num(opt, 3);
  rocksdb_options_set_max_log_file_size(opt, 1 << 20);
  /* Debian's librocksdb 7.8 is built with assertions on, and its info LOG
   * writer asserts (aborting the process) on the first line logged after a
   * failed LOG append, i.e. as soon as the disk is full. Measured on a full
   * tmpfs: INFO and ERROR levels abort, FATAL survives disk-full and
   * resumes when space returns. So the LOG holds only its header;
   * vedhost reports errors itself from the statuses RocksDB returns. */
  rocksdb_options_set_info_log_level(opt, 4 /* FATAL */);

  size_t wbuf =
      o->write_buffer_bytes ? o->write_buffer_bytes : VH_DEFAULT_WRITE_BUFFER;
  rocksdb_options_set_write_buffer_size(opt, wbuf);
  if (o->test_store) { /* vh_store.h: the test harness */
    rocksdb_options_set_memtable_vector_rep(opt);
    rocksdb_options_set_allow_concurrent_memtable_write(opt, 0);
  }
  rocksdb_options_set_max_write_buffer_number(opt, 2);
  rocksdb_options_set_max_total_wal_size(opt, VH_DEFAULT_WAL_BYTES);

  rocksdb_options_set_compaction_style(opt, rocksdb_level_compaction);
  /* Smaller files than RocksDB's 64 MB: a compaction from L0 rewrites the
   * files its key range overlaps (the newest nodes' and the other keys',
   * see FORMAT 3 and TUNING). */
  rocksdb_options_set_target_file_size_base(opt, VH_TARGET_FILE_BYTES);
  rocksdb_options_set_level_compaction_dynamic_level_bytes(opt, 1);
  /* A small base level: what an L0 compaction rewrites (LEVEL BASE). */
  rocksdb_options_set_max_bytes_for_level_base(opt, VH_LEVEL_BASE_BYTES);
  /* L0 TRIGGER (TUNING): 8 level-0 files per compaction, not 4. */
  rocksdb_options_set_level0_file_num_compaction_trigger(opt, VH_L0_TRIGGER);
  rocksdb_options_set_level0_slowdown_writes_trigger(opt, VH_L0_SLOWDOWN);
  rocksdb_options_set_level0_stop_writes_trigger(opt, VH_L0_STOP);
  /* An SST window of 1000 entries with 900 deletes marks the file. */
  rocksdb_options_add_compact_on_deletion_collector_factory(opt, 1000, 900);
  /* COMPACTION HOLD (TUNING): the writer turns them on again. */
  if (!s->secondary && s->compact_hold_ms > 0)
    rocksdb_options_set_disable_auto_compactions(opt, 1);

  if (o->no_compression) {
    rocksdb_options_set_compression(opt, rocksdb_no_compression);
    rocksdb_options_set_bottommost_compression(opt, rocksdb_no_compression);
  } else {
    /* None at L0 (the flushes), LZ4 below it, the bottommost level
     * included (see TUNING, CODEC). In dynamic level mode entry 0 is L0
     * and the others count from the base level. */
    int per_level[7] = {rocksdb_no_compression,  rocksdb_lz4_compression,
                        rocksdb_lz4_compression, rocksdb_lz4_compression,
                        rocksdb_lz4_compression, rocksdb_lz4_compression,
                        rocksdb_lz4_compression};
    rocksdb_options_set_compression(opt, rocksdb_lz4_compression);
    rocksdb_options_set_compression_per_level(opt, per_level, 7);
    if (o->zstd_dict_bytes == 0) {
      rocksdb_options_set_bottommost_compression(opt, rocksdb_lz4_compression);
    } else {
      /* Tests and benchmarks only: the bottommost level as stores were
       * written before (zstd at its default level 3, window bits -14,
       * strategy 0, a dictionary of sampled blocks, no training: TUNING,
       * CODEC). A store reads any mix of codecs either way. */
      int dict = o->zstd_dict_bytes < 0 ? 0 : o->zstd_dict_bytes;
      rocksdb_options_set_bottommost_compression(opt, rocksdb_zstd_compression);
      rocksdb_options_set_bottommost_compression_options(opt, -14, 32767, 0,
                                                         dict, 1);
      if (dict > 0) {
        rocksdb_options_set_bottommost_compression_options_zstd_max_train_bytes(
            opt, 0, 1);
        rocksdb_options_set_bottommost_compression_options_max_dict_buffer_bytes(
            opt, VH_DICT_BUFFER_BYTES, 1);
      }
    }
  }

  rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
  s->cache = rocksdb_cache_create_lru(o->cache_bytes ? o->cache_bytes
                                                     : VH_DEFAULT_CACHE_BYTES);
  rocksdb_block_based_options_set_block_cache(t, s->cache);
  rocksdb_block_based_options_set_block_size(
      t, o->block_bytes ? o->block_bytes : VH_DEFAULT_BLOCK_BYTES);
  /* The table options take ownership of the filter policy. */
  rocksdb_block_based_options_set_filter_policy(
      t, rocksdb_filterpolicy_create_bloom_full(10));
  rocksdb_block_based_options_set_format_version(t, 5);
  /* Index and filter blocks go through the block cache, read on a table's
   * first use, instead of being read for every table file at open: with
   * max_open_files -1 an open read them all, ~18 MB for 1.6 GB of history,
   * so a restart grew with the history (bench/README.md, "Index and filter
   * blocks at open": K=1M N=10M restart CPU 0.05 -> 0.02 s). Level 0's
   * stay pinned (they are read by every lookup). */
  rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
  rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
  rocksdb_block_based_options_set_data_block_index_type(
      t,
      rocksdb_block_based_table_data_block_index_type_binary_search_and_hash);
  rocksdb_options_set_block_based_table_factory(opt, t);

  /* Recovery replays the WAL into the memtable without flushing it to an
   * SST inside open (see TUNING). librocksdb 7.8's C API has no setter for
   * this option, so it is set by name; if that fails, open just flushes as
   * RocksDB does by default. */
  rocksdb_options_t *with = rocksdb_options_create();
  char *oerr = NULL;
  /* recover (accept_loss) flushes what it recovered at open instead, so
   * the damaged log becomes obsolete and is deleted there and then; so
   * does a test store (its vector memtable is slow to read). */
  /* The SST partitioner ends a compaction's output file where the key's
   * first byte changes, so nodes and the other keys never share a file
   * (FORMAT 3). No memtable insert hint (TUNING). */
  rocksdb_get_options_from_string(
      opt,
      o->accept_loss || o->test_store
          ? "avoid_flush_during_recovery=false;"
            "sst_partitioner_factory={id=SstPartitionerFixedPrefixFactory;"
            "length=1}"
          : "avoid_flush_during_recovery=true;"
            "sst_partitioner_factory={id=SstPartitionerFixedPrefixFactory;"
            "length=1}",
      with, &oerr);
  if (oerr == NULL) {
    rocksdb_options_destroy(opt);
    opt = with;
  } else {
    rocksdb_free(oerr);
    rocksdb_options_destroy(with);
  }

  s->options = opt;
  s->table_options = t;
  /* INGESTION's table files: no compression (TUNING, INGESTED FILES) */
  s->ingest_options = rocksdb_options_create_copy(opt);
  rocksdb_options_set_bottommost_compression(s->ingest_options,
                                             rocksdb_no_compression);

  s->read_options = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(s->read_options, 1);
  s->scan_options = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(s->scan_options, 1);
  rocksdb_readoptions_set_fill_cache(s->scan_options, 0);
  s->write_options = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(s->write_options, o->sync ? 1 : 0);
  rocksdb_writeoptions_disable_WAL(s->write_options, 0);
}

/* Frees everything open() may have made; s [stolen]. db must be closed. */
static void store_free(vh_store_t *s) {
  if (s->read_options) rocksdb_readoptions_destroy(s->read_options);
  if (s->scan_options) rocksdb_readoptions_destroy(s->scan_options);
  if (s->write_options) rocksdb_writeoptions_destroy(s->write_options);
  if (s->options) rocksdb_options_destroy(s->options);
  if (s->ingest_options) rocksdb_options_destroy(s->ingest_options);
  if (s->table_options) rocksdb_block_based_options_destroy(s->table_options);
  if (s->cache) rocksdb_cache_destroy(s->cache);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->work_cv);
  pthread_cond_destroy(&s->durable_cv);
  pthread_cond_destroy(&s->retry_cv);
  pthread_rwlock_destroy(&s->db_lock);
  free(s->last_error);
  free(s->open_note);
  free(s->scratch);
  free(s->dir);
  free(s->dbpath);
  free(s->ingest_path);
  free(s);
}

/* ---- open ---- */

/* ---- column families (FORMAT 4) ---- */

static const char *const vh_cf_names[2] = {"default", VH_NODES_CF};

/* One rocksdb_open* of the mode with the first nf of vh_cf_names. */
static rocksdb_t *open_mode(const rocksdb_options_t *o, const char *dbpath,
                            int mode, const char *secondary_path, int nf,
                            rocksdb_column_family_handle_t *h[2], char **rerr) {
  const rocksdb_options_t *fo[2] = {o, o};
  h[0] = h[1] = NULL;
  if (mode == VH_OPEN_SECONDARY)
    return rocksdb_open_as_secondary_column_families(
        o, dbpath, secondary_path, nf, vh_cf_names, fo, h, rerr);
  if (mode == VH_OPEN_READ_ONLY)
    return rocksdb_open_for_read_only_column_families(
        o, dbpath, nf, vh_cf_names, fo, h, 0, rerr);
  return rocksdb_open_column_families(o, dbpath, nf, vh_cf_names, fo, h, rerr);
}

rocksdb_t *vh_store__open_families(const rocksdb_options_t *o,
                                   const char *dbpath, int mode,
                                   const char *secondary_path,
                                   rocksdb_column_family_handle_t *h[2],
                                   int *apart, char **rerr) {
  /* Both families first: every store made since FORMAT 4 has them. A
   * store of format 1-3 has "default" only: RocksDB then says "Column
   * family not found" before it writes anything, and the store is opened
   * with that one. A store being made (no CURRENT yet) starts with
   * "default" (make_nodes_family adds the other). (Listing the families
   * before the open read the whole MANIFEST once more: ~2 ms of the
   * first open after K=1M N=10M, a 388 KB MANIFEST.) */
  char *current = vh_store__msg("%s/CURRENT", dbpath);
  int nodes = current == NULL || access(current, F_OK) == 0;
  free(current);
  rocksdb_t *db =
      open_mode(o, dbpath, mode, secondary_path, nodes ? 2 : 1, h, rerr);
  if (db == NULL && nodes && *rerr != NULL &&
      strstr(*rerr, "Column family not found") != NULL) {
    rocksdb_free(*rerr);
    *rerr = NULL;
    nodes = 0;
    db = open_mode(o, dbpath, mode, secondary_path, 1, h, rerr);
  }
  if (db == NULL) h[0] = h[1] = NULL;
  if (db != NULL && !nodes) h[1] = h[0];
  *apart = db != NULL && nodes;
  return db;
}

void vh_store__close_families(rocksdb_t *db,
                              rocksdb_column_family_handle_t *h[2], int apart) {
  if (db == NULL) return;
  if (apart && h[1] != NULL) rocksdb_column_family_handle_destroy(h[1]);
  if (h[0] != NULL) rocksdb_column_family_handle_destroy(h[0]);
  h[0] = h[1] = NULL;
  rocksdb_close(db);
}

/* The store's column families into h: 2 (the default one, the nodes'),
 * or 1 (the default one) in a store of format 1-3. */
static int families(const vh_store_t *s, rocksdb_column_family_handle_t *h[2]) {
  h[0] = s->cf_default;
  h[1] = s->cf_nodes;
  return s->nodes_apart ? 2 : 1;
}

/* s->db from vh_store__open_families, with s's handles. */
static rocksdb_t *db_open(vh_store_t *s, const char *secondary_path,
                          char **rerr) {
  rocksdb_column_family_handle_t *h[2];
  rocksdb_t *db = vh_store__open_families(
      s->options, s->dbpath,
      secondary_path ? VH_OPEN_SECONDARY : VH_OPEN_PRIMARY, secondary_path, h,
      &s->nodes_apart, rerr);
  s->cf_default = h[0];
  s->cf_nodes = h[1];
  return db;
}

static void db_close(vh_store_t *s) {
  rocksdb_column_family_handle_t *h[2];
  families(s, h);
  vh_store__close_families(s->db, h, s->nodes_apart);
  s->cf_default = s->cf_nodes = NULL;
  s->nodes_apart = 0;
}

int vh_store__prop(vh_store_t *s, const char *name, uint64_t *out) {
  *out = 0;
  rocksdb_column_family_handle_t *h[2];
  for (int i = 0, n = families(s, h); i < n; i++) {
    uint64_t v = 0;
    if (s->db == NULL || rocksdb_property_int_cf(s->db, h[i], name, &v) != 0)
      return -1;
    *out += v;
  }
  return 0;
}

void vh_store__set_option(vh_store_t *s, const char *key, const char *val) {
  const char *k[1] = {key}, *v[1] = {val};
  rocksdb_column_family_handle_t *h[2];
  for (int i = 0, n = families(s, h); s->db != NULL && i < n; i++) {
    char *rerr = NULL;
    rocksdb_set_options_cf(s->db, h[i], 1, k, v, &rerr);
    free(rerr); /* not expected: the options are valid */
  }
}

char *vh_store__flush_all(vh_store_t *s, int wait) {
  rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
  rocksdb_flushoptions_set_wait(fo, wait);
  char *rerr = NULL;
  /* the nodes first: a WAL is retired once every family flushed it */
  if (s->nodes_apart) rocksdb_flush_cf(s->db, fo, s->cf_nodes, &rerr);
  if (rerr == NULL) rocksdb_flush_cf(s->db, fo, s->cf_default, &rerr);
  rocksdb_flushoptions_destroy(fo);
  return rerr;
}

/* A message for a failed rocksdb_open*, naming the dir and what to do. */
static int open_error(vh_store_t *s, char *rerr, char **errmsg) {
  int rc = rocks_code(rerr);
  if (rc == VH_ECORRUPT || rc == VH_EIO || rc == VH_ENOENT) {
    char *what = vh_store__damage(s);
    if (what == NULL) what = vh_store__missing_table(rerr);
    if (what != NULL) {
      rocksdb_free(rerr);
      return vh_store__damaged(s, what, errmsg);
    }
  }
  char *m;
  switch (rc) {
    case VH_ELOCKED:
      m = vh_store__msg(
          "%s: the store is locked by another process (is another vedhost "
          "running on this data dir?); stop it or use another --data (%s)",
          s->dbpath, rerr);
      break;
    case VH_ENOENT:
      m = vh_store__msg(
          "%s: no vedhost store here (%s does not exist); check --data, or "
          "let `vedhost run` create one",
          s->dir, s->dbpath);
      break;
    case VH_ECORRUPT:
      m = vh_store__msg(
          "%s: RocksDB reports corruption (%s); if it is in a write-ahead "
          "log (db/*.log), `vedhost recover --data %s` accepts the loss; "
          "otherwise restore the data dir from a backup or move it away",
          s->dbpath, rerr, s->dir);
      break;
    default:
      m = vh_store__msg("%s: cannot open the store (%s)", s->dbpath, rerr);
      break;
  }
  rocksdb_free(rerr);
  vh_store__set_msg(errmsg, m);
  return rc;
}

/* Opening writes the LOG header, OPTIONS and MANIFEST files and
 * preallocates a WAL; on a full disk librocksdb 7.8 aborts inside its LOG
 * writer (see build_options). So refuse first, with a clear message, when
 * DIR's file system has less than VH_MIN_FREE_BYTES. */
static int check_free_space(vh_store_t *s, char **errmsg) {
  struct statvfs fs;
  if (statvfs(s->dir, &fs) != 0) return 0; /* let the open report it */
  unsigned long long avail = (unsigned long long)fs.f_bavail * fs.f_frsize;
  if (avail >= VH_MIN_FREE_BYTES) return 0;
  vh_store__set_msg(
      errmsg, vh_store__msg("%s: no space left on device (%llu KB free, "
                            "the store needs %llu KB to open); free some "
                            "space and start again",
                            s->dir, avail / 1024,
                            (unsigned long long)VH_MIN_FREE_BYTES / 1024));
  return VH_EIO;
}

rocksdb_readoptions_t *vh_store__tag_scan_opts(unsigned char tag, char *end) {
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(ro, 1);
  rocksdb_readoptions_set_fill_cache(ro, 0);
  *end = (char)(tag + 1); /* tags are ASCII letters: no wrap */
  rocksdb_readoptions_set_iterate_upper_bound(ro, end, 1);
  return ro;
}

/* 1 if the database holds no key at all, 0 if it does, <0 on error. */
static int db_is_empty(vh_store_t *s, char **errmsg) {
  int empty = 1;
  char *rerr = NULL;
  rocksdb_column_family_handle_t *h[2];
  for (int i = 0, n = families(s, h); empty && rerr == NULL && i < n; i++) {
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(s->db, s->scan_options, h[i]);
    rocksdb_iter_seek_to_first(it);
    empty = !rocksdb_iter_valid(it);
    rocksdb_iter_get_error(it, &rerr);
    rocksdb_iter_destroy(it);
  }
  if (rerr) return vh_store__rocks_err(rerr, s->dbpath, errmsg);
  return empty;
}

unsigned vh_store__l0_files(vh_store_t *s) {
  unsigned most = 0;
  rocksdb_column_family_handle_t *h[2];
  for (int i = 0, n = families(s, h); s->db != NULL && i < n; i++) {
    /* a string property (rocksdb_property_int does not know it) */
    char *l0 =
        rocksdb_property_value_cf(s->db, h[i], "rocksdb.num-files-at-level0");
    unsigned long files = l0 ? strtoul(l0, NULL, 10) : 0;
    rocksdb_free(l0);
    if (files > most) most = (unsigned)files;
  }
  return most;
}

/* FORMAT 4: the nodes' own column family, made with the format record of
 * a new store (and again if a crash came between the two). */
static int make_nodes_family(vh_store_t *s, char **errmsg) {
  if (s->nodes_apart) return 0;
  char *rerr = NULL;
  rocksdb_column_family_handle_t *h =
      rocksdb_create_column_family(s->db, s->options, VH_NODES_CF, &rerr);
  if (rerr) return vh_store__rocks_err(rerr, s->dbpath, errmsg);
  s->cf_nodes = h;
  s->nodes_apart = 1;
  return 0;
}

static int write_format_record(vh_store_t *s, char **errmsg) {
  unsigned char v[12];
  memcpy(v, vh_magic, 8);
  uint32_t ver = VH_STORE_FORMAT_VERSION;
  vh_le32_store(v + 8, ver);
  rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(wo, 1);
  char *rerr = NULL;
  char key = VH_KEY_FORMAT;
  rocksdb_put(s->db, wo, &key, 1, (const char *)v, sizeof v, &rerr);
  rocksdb_writeoptions_destroy(wo);
  if (rerr) return vh_store__rocks_err(rerr, s->dbpath, errmsg);
  return 0;
}

/* Invariant 1: check (or, for a new empty database, write) the format
 * record. */
static int check_format(vh_store_t *s, int create, char **errmsg) {
  char key = VH_KEY_FORMAT, *rerr = NULL;
  size_t vlen = 0;
  char *v = rocksdb_get(s->db, s->read_options, &key, 1, &vlen, &rerr);
  /* A secondary that opened while the primary compacted can miss a table
   * file the primary just replaced (RocksDB skips it); catching up with the
   * primary's newer MANIFEST edits brings in the replacement. */
  for (int tries = 0; s->secondary && v == NULL && !rerr && tries < 3;
       tries++) {
    rocksdb_try_catch_up_with_primary(s->db, &rerr);
    rocksdb_free(rerr);
    rerr = NULL;
    v = rocksdb_get(s->db, s->read_options, &key, 1, &vlen, &rerr);
  }
  if (rerr) return open_error(s, rerr, errmsg);
  if (v == NULL) {
    /* A damaged store can look empty or foreign: never write to it. */
    char *what = vh_store__damage(s);
    if (what != NULL) return vh_store__damaged(s, what, errmsg);
    int empty = db_is_empty(s, errmsg);
    if (empty < 0) return empty;
    if (empty && create && !s->secondary) {
      s->node_key = VH_KEY_NODE;
      s->format = VH_STORE_FORMAT_VERSION;
      int rc = make_nodes_family(s, errmsg);
      return rc != 0 ? rc : write_format_record(s, errmsg);
    }
    vh_store__set_msg(
        errmsg, vh_store__msg(
                    "%s: not a vedhost store (a RocksDB database without "
                    "vedhost's format record); point --data at a vedhost data "
                    "dir, or move this one away",
                    s->dbpath));
    return VH_EFORMAT;
  }
  int rc = 0;
  if (vlen < 12 || memcmp(v, vh_magic, 8) != 0) {
    vh_store__set_msg(
        errmsg,
        vh_store__msg("%s: bad format record (no VEDHOST magic): not a "
                      "vedhost store, or a damaged one; move it away or "
                      "restore a backup",
                      s->dbpath));
    rc = VH_EFORMAT;
  } else {
    const unsigned char *u = (const unsigned char *)v + 8;
    uint32_t ver = vh_le32_load(u);
    if (ver > VH_STORE_FORMAT_VERSION) {
      vh_store__set_msg(
          errmsg,
          vh_store__msg("%s: store format version %u is newer than this "
                        "vedhost supports (%d); run a newer vedhost",
                        s->dbpath, (unsigned)ver, VH_STORE_FORMAT_VERSION));
      rc = VH_EFORMAT;
    } else if (ver == 0) {
      vh_store__set_msg(
          errmsg, vh_store__msg("%s: bad format record (version 0): a damaged "
                                "store; move it away or restore a backup",
                                s->dbpath));
      rc = VH_EFORMAT;
    } else if ((ver >= 4) != s->nodes_apart) {
      vh_store__set_msg(
          errmsg,
          vh_store__msg("%s: the store is damaged: format %u %s a \"%s\" "
                        "column family; restore the data dir from a backup "
                        "or move it away",
                        s->dbpath, (unsigned)ver, ver >= 4 ? "without" : "with",
                        VH_NODES_CF));
      rc = VH_ECORRUPT;
    } else {
      /* Format 1 and 2 stores keep their 'N' node keys (KEYS above). */
      s->node_key = ver >= 3 ? VH_KEY_NODE : VH_KEY_NODE_V1;
      s->format = ver;
    }
  }
  rocksdb_free(v);
  return rc;
}

/* SECONDARY BESIDE A HOST: 0 if the view lacks the format record (a
 * table file that held it was replaced meanwhile), else 1 (a read error
 * is check_format's to report). */
static int sees_format(vh_store_t *s) {
  char key = VH_KEY_FORMAT, *rerr = NULL;
  size_t vlen = 0;
  char *v = rocksdb_get(s->db, s->read_options, &key, 1, &vlen, &rerr);
  int seen = v != NULL || rerr != NULL;
  rocksdb_free(v);
  rocksdb_free(rerr);
  return seen;
}

int vh_store_open(const char *dir, const vh_store_opts_t *opts,
                  vh_store_t **out, char **errmsg) {
  *out = NULL;
  if (errmsg) *errmsg = NULL;
  if (opts->read_only_secondary && opts->secondary_path == NULL) {
    vh_store__set_msg(
        errmsg, vh_store__msg("%s: a secondary needs a secondary_path", dir));
    return VH_EINVAL;
  }
  vh_store_t *s = calloc(1, sizeof *s);
  if (s == NULL) return VH_ENOMEM;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->work_cv, NULL);
  pthread_cond_init(&s->durable_cv, NULL);
  pthread_cond_init(&s->retry_cv, NULL);
  pthread_rwlock_init(&s->db_lock, NULL);
  s->secondary = opts->read_only_secondary ? 1 : 0;
  s->test_store = opts->test_store ? 1 : 0;
  s->grave_bits = opts->grave_block_bits;
  s->grave_cap = opts->grave_cap_ids;
  s->node_key = VH_KEY_NODE; /* check_format sets the store's own */
  if (s->secondary) s->scratch = strdup(opts->secondary_path);
  s->dir = strdup(dir);
  s->dbpath = vh_store__msg("%s/db", dir);
  s->ingest_path = vh_store__msg("%s/db/vh-ingest.tmp", dir);
  if (s->dir == NULL || s->dbpath == NULL || s->ingest_path == NULL) {
    store_free(s);
    return VH_ENOMEM;
  }
  s->queue_limit =
      opts->queue_bytes ? opts->queue_bytes : VH_DEFAULT_QUEUE_BYTES;
  s->reserve_bytes = s->secondary ? 0 : VH_RESERVE_BYTES;
  s->idle_flush_ms = opts->idle_flush_ms < 0    ? 0
                     : opts->idle_flush_ms == 0 ? VH_IDLE_FLUSH_MS
                                                : (unsigned)opts->idle_flush_ms;
  s->load_flush_bytes = opts->flush_bytes ? opts->flush_bytes : VH_FLUSH_BYTES;
  s->compact_hold_ms = opts->compact_hold_ms < 0 ? 0
                       : opts->compact_hold_ms == 0
                           ? VH_COMPACT_HOLD_MS
                           : (unsigned)opts->compact_hold_ms;
  if (opts->create && !s->secondary && mkdir(dir, 0700) != 0 &&
      errno != EEXIST) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("%s: cannot create the data dir (%s)", dir,
                                    strerror(errno)));
    store_free(s);
    return VH_EIO;
  }
  int prc = vh_store__precheck(s, opts, errmsg);
  if (prc != 0) {
    store_free(s);
    return prc;
  }
  if (!s->secondary) {
    int rc = check_free_space(s, errmsg);
    if (rc != 0) {
      store_free(s);
      return rc;
    }
  }
  build_options(s, opts);

  /* PERF LEVEL (TUNING): no perf-context counting on this thread, which
   * replays the WAL here and reads nodes from now on. */
  rocksdb_set_perf_level(1 /* rocksdb::kDisable */);
  char *rerr = NULL, *what = NULL;
  if (!s->secondary) s->db = db_open(s, NULL, &rerr);
  for (int tries = 1; s->secondary; tries++) { /* SECONDARY BESIDE A HOST */
    s->db = db_open(s, opts->secondary_path, &rerr);
    /* first: check_format reads through this view */
    if (rerr == NULL) what = vh_store__secondary_tables(s);
    if ((rerr == NULL && what == NULL && sees_format(s)) ||
        tries >= VH_SECONDARY_OPENS || !vh_store_primary_live(s))
      break;
    if (rerr == NULL) db_close(s);
    s->db = NULL;
    rocksdb_free(rerr);
    free(what);
    rerr = what = NULL;
    struct timespec ts = {0, (tries < 10 ? tries : 10) * 10000000L};
    nanosleep(&ts, NULL);
  }
  int rc;
  if (rerr != NULL) {
    rc = open_error(s, rerr, errmsg);
    goto fail_free;
  }
  if (what != NULL) {
    rc = vh_store__damaged(s, what, errmsg);
    goto fail_close;
  }
  rc = check_format(s, opts->create, errmsg);
  if (rc != 0) goto fail_close;
  if (!s->secondary && s->wal.state == VH_WALSCAN_TORN) vh_store__torn_note(s);
  /* INGESTION: a table file a crash left before RocksDB took it */
  if (!s->secondary) unlink(s->ingest_path);
  if (!s->secondary) {
    vh_store__hold_compaction(s);
    rc = vh_store__writer_start(s);
    if (rc != 0) {
      vh_store__set_msg(
          errmsg,
          vh_store__msg("%s: cannot start the writer thread", s->dbpath));
      goto fail_close;
    }
  }
  *out = s;
  return 0;

fail_close:
  db_close(s);
fail_free:
  store_free(s);
  return rc;
}

/* ---- close ---- */

static int flush_db(vh_store_t *s, char **errmsg) {
  char *rerr = NULL;
  pthread_rwlock_rdlock(&s->db_lock);
  if (s->db)
    rerr = vh_store__flush_all(s, 1);
  else
    rerr = strdup("IO error: the database is closed after a failed reopen");
  pthread_rwlock_unlock(&s->db_lock);
  if (rerr) return vh_store__rocks_err(rerr, s->dbpath, errmsg);
  return 0;
}

int vh_store_flush(vh_store_t *s, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s->secondary) return VH_EINVAL;
  return flush_db(s, errmsg);
}

/* COMPACTION AT A CLEAN STOP (TUNING): is the store small enough that
 * rewriting all of it at close costs little, and does it hold enough
 * that a compaction would drop: SST bytes above the bottommost level's
 * (flushed files and tombstones not yet compacted down), while this
 * session deleted nodes (at least one per three put: with --retain 0
 * every replaced node is deleted at once; retained history deletes
 * little, and its nodes are live)? */
/* A number in RocksDB's table properties text ("...; NAME=N; ..."). */
static uint64_t table_prop(const char *text, const char *name) {
  const char *p = text ? strstr(text, name) : NULL;
  return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static int compact_worth(vh_store_t *s) {
  uint64_t total = 0, bottom = 0, dels = 0, entries = 0;
  pthread_rwlock_rdlock(&s->db_lock);
  int rc = vh_store__prop(s, "rocksdb.total-sst-files-size", &total);
  if (rc == 0)
    rc = vh_store__prop(s, "rocksdb.estimate-live-data-size", &bottom);
  rocksdb_column_family_handle_t *h[2];
  for (int i = 0, n = families(s, h); rc == 0 && s->nodes_apart && i < n; i++) {
    char *props = rocksdb_property_value_cf(
        s->db, h[i], "rocksdb.aggregated-table-properties");
    dels += table_prop(props, "# deletions=");
    entries += table_prop(props, "# entries=");
    rocksdb_free(props);
  }
  pthread_rwlock_unlock(&s->db_lock);
  /* What a compaction would drop, a third of the store or more: with the
   * nodes apart (FORMAT 4) their big groups go straight to the
   * bottommost level, so the bytes above it say little; the deletes in
   * the table files of both families do (each drops itself and the key
   * it deletes: nodes, and the death lists and records of dropped
   * versions), and so do the ids of this session's range deletes (FORMAT
   * 5's graveyard: one record in a table file, a block of nodes). */
  dels += s->node_range_ids;
  int dropping = s->nodes_apart
                     ? dels * 6 >= entries
                     : total - (total < bottom ? total : bottom) > total / 3;
  return rc == 0 && total <= VH_COMPACT_AT_CLOSE_BYTES && dropping &&
         s->node_dels * 3 > s->node_puts && s->bytes_written * 4 >= total;
}

/* A CLEAN STOP WAITS FOR NO COMPACTION (TUNING): before the close flush,
 * turns RocksDB's automatic compactions off again if the COMPACTION HOLD
 * ended and level 0 is at the write slowdown: a flush that would add the
 * slowdown's level-0 file waits until a compaction brings level 0 under
 * it (WaitUntilFlushWouldNotStallWrites; the C API has no
 * allow_write_stall), and does not with automatic compactions off.
 * rocksdb_close then cancels the running compaction
 * (CancelAllBackgroundWork: RocksDB 7.8's compaction iterator stops at
 * the next key once shutting_down is set); the next run's compactions
 * redo it after its hold. */
static void close_hold(vh_store_t *s) {
  if (s->compact_held || s->db == NULL) return;
  if ((long)vh_store__l0_files(s) + 1 < VH_L0_SLOWDOWN) return;
  vh_store__set_option(s, "disable_auto_compactions", "true");
  s->compact_held = 1;
}

int vh_store_compact(vh_store_t *s, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s->secondary) return VH_EINVAL;
  int rc = flush_db(s, errmsg);
  if (rc != 0) return rc;
  rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
  /* kForceOptimized: the bottommost level is rewritten too (it holds the
   * nodes the upper levels' tombstones delete), but not the files this
   * compaction just wrote there. */
  rocksdb_compactoptions_set_bottommost_level_compaction(co, 3);
  rocksdb_compactoptions_set_exclusive_manual_compaction(co, 0);
  pthread_rwlock_rdlock(&s->db_lock);
  rocksdb_column_family_handle_t *h[2];
  for (int i = 0, n = families(s, h); s->db != NULL && i < n; i++)
    rocksdb_compact_range_cf_opt(s->db, h[i], co, NULL, 0, NULL, 0);
  pthread_rwlock_unlock(&s->db_lock);
  rocksdb_compactoptions_destroy(co);
  return 0;
}

size_t vh_store__cache_usage(vh_store_t *s) {
  return s->cache ? rocksdb_cache_get_usage(s->cache) : 0;
}

size_t vh_store__cache_capacity(vh_store_t *s) {
  return s->cache ? rocksdb_cache_get_capacity(s->cache) : 0;
}

int vh_store__base_level(vh_store_t *s) {
  uint64_t v = 0;
  pthread_rwlock_rdlock(&s->db_lock);
  int rc = s->db ? rocksdb_property_int_cf(s->db, s->cf_nodes,
                                           "rocksdb.base-level", &v)
                 : -1;
  pthread_rwlock_unlock(&s->db_lock);
  return rc == 0 ? (int)v : -1;
}

int vh_store__level0_files(vh_store_t *s) {
  pthread_rwlock_rdlock(&s->db_lock);
  int n = s->db ? (int)vh_store__l0_files(s) : -1;
  pthread_rwlock_unlock(&s->db_lock);
  return n;
}

int vh_store__imm_memtables(vh_store_t *s) {
  uint64_t v = 0;
  pthread_rwlock_rdlock(&s->db_lock);
  int rc = vh_store__prop(s, "rocksdb.num-immutable-mem-table", &v);
  pthread_rwlock_unlock(&s->db_lock);
  return rc == 0 ? (int)v : -1;
}

int vh_store_close(vh_store_t *s, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s == NULL) return 0;
  int rc = 0;
  int wrote = s->writer_started && vh_store__write_count(s) > 0;
  if (s->writer_started) rc = vh_store__writer_stop(s, errmsg);
  if (!s->secondary && !s->test_store) {
    /* Invariant 4: no WAL left to replay at the next open; and (TUNING,
     * COMPACTION AT A CLEAN STOP) a compact store if it is small enough. */
    char *m = NULL;
    /* Flush first: the rule weighs the memtable too, as the level-0 file
     * this flush makes of it. Weighed before, a session whose replaced
     * nodes were still in the memtable was left uncompacted or not as the
     * idle flush had run or not (history_spec's du bound flaked so). */
    close_hold(s);
    int frc = flush_db(s, &m);
    if (frc == 0 && rc == 0 && wrote && compact_worth(s))
      frc = vh_store_compact(s, &m);
    if (frc != 0 && rc == 0) {
      rc = frc;
      vh_store__set_msg(errmsg, m);
    } else {
      free(m);
    }
  }
  if (s->db) db_close(s);
  vh_store__queue_free(s);
  store_free(s);
  return rc;
}

/* ---- reopen (writer thread) ---- */

unsigned long long vh_store__free_bytes(vh_store_t *s) {
  struct statvfs fs;
  if (statvfs(s->dir, &fs) != 0) return ULLONG_MAX;
  return (unsigned long long)fs.f_bavail * fs.f_frsize;
}

/* librocksdb 7.8 keeps a WAL writer that failed in an error state: the next
 * append asserts (writable_file_writer.h:312, an abort), and its
 * background error is sticky (the C API has no Resume). So after a failed
 * write the writer closes the database and opens it again, under db_lock
 * held exclusive: readers fail fast meanwhile (read_lock) instead of using
 * a closed handle. The reopen replays the WAL, whose tail may hold the torn
 * record of the failed write (never acknowledged); the memtable is then
 * flushed so that WAL is retired before anything is written after it (a
 * later recovery must never meet a torn record in the middle of the WAL
 * sequence). */
int vh_store__reopen(vh_store_t *s, char **errmsg) {
  char *rerr = NULL;
  pthread_rwlock_wrlock(&s->db_lock);
  if (s->db) db_close(s);
  s->db = db_open(s, NULL, &rerr);
  if (rerr) s->db = NULL;
  pthread_rwlock_unlock(&s->db_lock);
  if (rerr) return vh_store__rocks_err(rerr, s->dbpath, errmsg);
  vh_store__hold_compaction(s);
  return flush_db(s, errmsg);
}

void vh_store__hold_compaction(vh_store_t *s) {
  s->compact_held = s->compact_hold_ms > 0;
  clock_gettime(CLOCK_REALTIME, &s->compact_at);
  s->compact_at.tv_sec += s->compact_hold_ms / 1000;
  s->compact_at.tv_nsec += (long)(s->compact_hold_ms % 1000) * 1000000L;
  if (s->compact_at.tv_nsec >= 1000000000L) {
    s->compact_at.tv_sec++;
    s->compact_at.tv_nsec -= 1000000000L;
  }
}

/* ---- reads ---- */

static void node_key(const vh_store_t *s, char key[VH_NODE_KEY_LEN],
                     uint64_t id) {
  key[0] = s->node_key;
  for (int i = 0; i < 8; i++) key[1 + i] = (char)(id >> (56 - 8 * i));
}

/* Invariant 2: checks value v of vlen bytes, stored under the key `what`
 * ("node 12" / "manifest"), and on success copies its payload out. */
static int get_value(vh_store_t *s, const char *key, size_t klen, int kind,
                     const char *what, void **bytes, size_t *len,
                     char **errmsg);

/* The checks of verify_value; *bytes points into v. */
static int check_value(const char *v, size_t vlen, int kind, const char *what,
                       const void **bytes, size_t *len, char **errmsg) {
  const unsigned char *u = (const unsigned char *)v;
  if (vlen < VH_STORE_HDR) {
    vh_store__set_msg(
        errmsg, vh_store__msg("%s: value too short (%zu bytes)", what, vlen));
    return VH_ECORRUPT;
  }
  uint32_t stored = vh_le32_load(u);
  uint32_t computed = vh_crc32c(0, u + 4, vlen - 4);
  if (stored != computed) {
    vh_store__set_msg(
        errmsg, vh_store__msg("%s: checksum mismatch (stored %08x, "
                              "computed %08x)",
                              what, (unsigned)stored, (unsigned)computed));
    return VH_ECORRUPT;
  }
  if (u[4] >> 4 != kind) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("%s: wrong kind byte 0x%02x", what, u[4]));
    return VH_ECORRUPT;
  }
  if ((u[4] & 0xf) > VH_VALUE_VERSION) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("%s: value format version %d is newer than "
                                    "this vedhost supports (%d); run a newer "
                                    "vedhost",
                                    what, u[4] & 0xf, VH_VALUE_VERSION));
    return VH_EFORMAT;
  }
  *bytes = u + VH_STORE_HDR;
  *len = vlen - VH_STORE_HDR;
  return 0;
}

static int verify_value(const char *v, size_t vlen, int kind, const char *what,
                        void **bytes, size_t *len, char **errmsg) {
  const void *q;
  size_t n;
  int rc = check_value(v, vlen, kind, what, &q, &n, errmsg);
  if (rc != 0) return rc;
  void *p = malloc(n ? n : 1);
  if (p == NULL) return VH_ENOMEM;
  memcpy(p, q, n);
  *bytes = p;
  *len = n;
  return 0;
}

/* Takes db_lock shared without waiting (the loop thread must not wait for
 * the writer's reopen): 0, or VH_EIO with a message when a reopen is under
 * way or the database is closed after a failed one. */
static int read_lock(vh_store_t *s, const char *what, char **errmsg) {
  if (pthread_rwlock_tryrdlock(&s->db_lock) != 0) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("%s: the store is being reopened after a "
                                    "write error; try again",
                                    what));
    return VH_EIO;
  }
  if (s->db == NULL) {
    pthread_rwlock_unlock(&s->db_lock);
    vh_store__set_msg(errmsg,
                      vh_store__msg("%s: the store is closed after a failed "
                                    "reopen (%s); it is retried",
                                    what, s->dbpath));
    return VH_EIO;
  }
  return 0;
}

int vh_store__verify(const char *v, size_t vlen, int kind, const char *what,
                     void **bytes, size_t *len, char **errmsg) {
  return verify_value(v, vlen, kind, what, bytes, len, errmsg);
}

int vh_store__check(const char *v, size_t vlen, int kind, const char *what,
                    const void **bytes, size_t *len, char **errmsg) {
  return check_value(v, vlen, kind, what, bytes, len, errmsg);
}

int vh_store__read_lock(vh_store_t *s, const char *what, char **errmsg) {
  return read_lock(s, what, errmsg);
}

int vh_store__get_value(vh_store_t *s, const char *key, size_t klen, int kind,
                        const char *what, void **bytes, size_t *len,
                        char **errmsg) {
  return get_value(s, key, klen, kind, what, bytes, len, errmsg);
}

static void seq_key(unsigned char *k, unsigned char tag, uint64_t seq) {
  k[0] = tag;
  vh_be64_store(k + 1, seq);
}

int vh_batch__seq_op(vh_batch_t *b, unsigned char tag, uint64_t seq, int kind,
                     const void *payload, size_t len) {
  unsigned char k[VH_SEQ_KEY_LEN];
  seq_key(k, tag, seq);
  return vh_batch__key_op(b, k, sizeof k, kind, payload, len);
}

int vh_store__seq_get(vh_store_t *s, unsigned char tag, uint64_t seq, int kind,
                      const char *what, void **bytes, size_t *len,
                      char **errmsg) {
  unsigned char k[VH_SEQ_KEY_LEN];
  seq_key(k, tag, seq);
  return vh_store__get_value(s, (const char *)k, sizeof k, kind, what, bytes,
                             len, errmsg);
}

static int get_value(vh_store_t *s, const char *key, size_t klen, int kind,
                     const char *what, void **bytes, size_t *len,
                     char **errmsg) {
  *bytes = NULL;
  *len = 0;
  if (errmsg) *errmsg = NULL;
  char *rerr = NULL;
  int rc = read_lock(s, what, errmsg);
  if (rc != 0) return rc;
  rocksdb_pinnableslice_t *ps = rocksdb_get_pinned_cf(
      s->db, s->read_options,
      kind == VH_KIND_NODE ? s->cf_nodes : s->cf_default, key, klen, &rerr);
  if (rerr) {
    pthread_rwlock_unlock(&s->db_lock);
    return vh_store__rocks_err(rerr, what, errmsg);
  }
  if (ps == NULL) {
    pthread_rwlock_unlock(&s->db_lock);
    vh_store__set_msg(errmsg, vh_store__msg("%s: absent", what));
    return VH_ENOENT;
  }
  size_t vlen = 0;
  const char *v = rocksdb_pinnableslice_value(ps, &vlen);
  rc = verify_value(v, vlen, kind, what, bytes, len, errmsg);
  rocksdb_pinnableslice_destroy(ps);
  pthread_rwlock_unlock(&s->db_lock);
  return rc;
}

int vh_store_get_node(vh_store_t *s, uint64_t id, void **bytes, size_t *len,
                      char **errmsg) {
  char key[VH_NODE_KEY_LEN];
  node_key(s, key, id);
  /* "node N" is spelled out only in a message (every one begins "what: "):
   * an snprintf per read was ~3% of a small diff's instructions
   * (bench/README.md, ver/diff3). */
  char *m = NULL;
  int rc = get_value(s, key, sizeof key, VH_KIND_NODE, "node", bytes, len,
                     errmsg ? &m : NULL);
  if (errmsg) *errmsg = NULL;
  if (m != NULL && strncmp(m, "node: ", 6) == 0) {
    *errmsg = vh_store__msg("node %llu: %s", (unsigned long long)id, m + 6);
    free(m);
  } else if (m != NULL) {
    *errmsg = m;
  }
  return rc;
}

int vh_store_get_manifest(vh_store_t *s, void **bytes, size_t *len,
                          char **errmsg) {
  char key = VH_KEY_MANIFEST;
  return get_value(s, &key, 1, VH_KIND_MANIFEST, "manifest", bytes, len,
                   errmsg);
}

/* ---- node iterator ---- */

int vh_store__last_node(vh_store_t *s, uint64_t *last) {
  *last = 0;
  char hi[VH_NODE_KEY_LEN], end; /* bounded: vh_store__tag_scan_opts */
  hi[0] = s->node_key;
  memset(hi + 1, 0xff, 8);
  rocksdb_readoptions_t *ro =
      vh_store__tag_scan_opts((unsigned char)s->node_key, &end);
  rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, ro, s->cf_nodes);
  rocksdb_iter_seek_for_prev(it, hi, sizeof hi);
  if (rocksdb_iter_valid(it)) {
    size_t klen = 0;
    const char *k = rocksdb_iter_key(it, &klen);
    if (klen == sizeof hi && k[0] == s->node_key)
      *last = vh_be64_load((const unsigned char *)k + 1);
  }
  char *rerr = NULL;
  rocksdb_iter_get_error(it, &rerr);
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  if (rerr == NULL) return 0;
  rocksdb_free(rerr);
  return -1;
}

void vh_store__delete_nodes(vh_store_t *s, rocksdb_writebatch_t *wb,
                            uint64_t from, uint64_t last) {
  char lo[VH_NODE_KEY_LEN], hi[VH_NODE_KEY_LEN];
  lo[0] = hi[0] = s->node_key;
  vh_be64_store((unsigned char *)lo + 1, from);
  vh_be64_store((unsigned char *)hi + 1, last);
  rocksdb_writebatch_delete_cf(wb, s->cf_nodes, hi, sizeof hi);
  if (from < last)
    rocksdb_writebatch_delete_range_cf(wb, s->cf_nodes, lo, sizeof lo, hi,
                                       sizeof hi);
}

struct vh_store_iter {
  vh_store_t *s;             /* [borrowed] */
  rocksdb_iterator_t *it;    /* RocksDB iterator (one implicit snapshot) */
  rocksdb_readoptions_t *ro; /* bounded at the end of the node keys */
  char end;                  /* that bound */
  int started;               /* seeked to the first node yet */
};

int vh_store_iter_new(vh_store_t *s, vh_store_iter_t **out, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  vh_store_iter_t *it = calloc(1, sizeof *it);
  if (it == NULL) return VH_ENOMEM;
  /* The iterator holds db_lock shared until it is freed. */
  int rc = read_lock(s, "node scan", errmsg);
  if (rc != 0) {
    free(it);
    return rc;
  }
  it->s = s;
  it->ro = vh_store__tag_scan_opts((unsigned char)s->node_key, &it->end);
  it->it = rocksdb_create_iterator_cf(s->db, it->ro, s->cf_nodes);
  *out = it;
  return 0;
}

int vh_store_iter_next(vh_store_iter_t *it, uint64_t *id, size_t *size,
                       char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (!it->started) {
    char k = it->s->node_key;
    rocksdb_iter_seek(it->it, &k, 1);
    it->started = 1;
  } else {
    rocksdb_iter_next(it->it);
  }
  if (!rocksdb_iter_valid(it->it)) {
    char *rerr = NULL;
    rocksdb_iter_get_error(it->it, &rerr);
    if (rerr) return vh_store__rocks_err(rerr, "node scan", errmsg);
    return 0;
  }
  size_t klen = 0, vlen = 0;
  const unsigned char *k =
      (const unsigned char *)rocksdb_iter_key(it->it, &klen);
  if (klen < 1 || k[0] != (unsigned char)it->s->node_key)
    return 0; /* past the nodes */
  if (klen != VH_NODE_KEY_LEN) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("%s: stray key of %zu bytes among the "
                                    "nodes",
                                    it->s->dbpath, klen));
    return VH_ECORRUPT;
  }
  uint64_t v = 0;
  for (int i = 1; i < VH_NODE_KEY_LEN; i++) v = v << 8 | k[i];
  rocksdb_iter_value(it->it, &vlen);
  *id = v;
  *size = vlen >= VH_STORE_HDR ? vlen - VH_STORE_HDR : 0;
  return 1;
}

void vh_store_iter_free(vh_store_iter_t *it) {
  if (it == NULL) return;
  rocksdb_iter_destroy(it->it);
  rocksdb_readoptions_destroy(it->ro);
  pthread_rwlock_unlock(&it->s->db_lock);
  free(it);
}

/* ---- secondary ---- */

int vh_store_catch_up(vh_store_t *s, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (!s->secondary) return VH_EINVAL;
  char *rerr = NULL;
  rocksdb_try_catch_up_with_primary(s->db, &rerr);
  if (rerr) return vh_store__rocks_err(rerr, s->dbpath, errmsg);
  return 0;
}
