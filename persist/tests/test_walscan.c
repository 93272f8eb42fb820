/*
 * test_walscan.c - unit tests of the WAL scanner (persist/store/walscan.c) on
 * write-ahead logs that RocksDB itself wrote.
 *
 * A "crash image" is made by writing slices through the store (one group,
 * so one WAL record, per slice: each is waited for) and copying every file
 * of DIR/db while the store is still open, as kill -9 would leave them.
 * The copies are then damaged (truncated, bytes flipped, replaced with
 * garbage) and scanned. Records are located by walking the log's blocks
 * here (FULL records and fragments alike), independently of the scanner.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vh_bytes.h"
#include "vh_crc32c.h"
#include "vh_manifest.h"
#include "vh_store.h"
#include "vh_test.h"
#include "vh_walscan.h"

/* ---- files ---- */

static char base_dir[256];

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static void cleanup(void) {
  if (base_dir[0]) nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  base_dir[0] = '\0';
}

/* A fresh base directory; sub(name) paths below it. */
static void fresh(void) {
  cleanup();
  char tmpl[] = "/tmp/vh_test_walscan.XXXXXX";
  if (mkdtemp(tmpl) == NULL) abort();
  snprintf(base_dir, sizeof base_dir, "%s", tmpl);
}

static char *sub(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", base_dir, name);
  return buf[k];
}

static void copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT, 0600);
  ASSERT(in >= 0 && out >= 0);
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    ASSERT_EQ(write(out, buf, (size_t)n), n);
  close(in);
  close(out);
}

/* Copies every file of from/db into to/db (to created), as a crash would
 * leave them. */
static void copy_db(const char *from, const char *to) {
  char a[512], b[512];
  mkdir(to, 0700);
  snprintf(b, sizeof b, "%s/db", to);
  mkdir(b, 0700);
  snprintf(a, sizeof a, "%s/db", from);
  DIR *d = opendir(a);
  ASSERT(d != NULL);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strcmp(e->d_name, "LOCK") == 0) continue;
    char f[1024], t[1024];
    snprintf(f, sizeof f, "%s/%s", a, e->d_name);
    snprintf(t, sizeof t, "%s/%s", b, e->d_name);
    copy_file(f, t);
  }
  closedir(d);
}

/* The path of the only (or newest) WAL file in dir/db. */
static char *wal_of(const char *dir) {
  static char path[1024];
  char db[512];
  snprintf(db, sizeof db, "%s/db", dir);
  DIR *d = opendir(db);
  ASSERT(d != NULL);
  struct dirent *e;
  path[0] = '\0';
  char best[256] = "";
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 4 && strcmp(e->d_name + n - 4, ".log") == 0 &&
        strcmp(e->d_name, best) > 0)
      snprintf(best, sizeof best, "%s", e->d_name);
  }
  closedir(d);
  ASSERT(best[0] != '\0');
  snprintf(path, sizeof path, "%s/%s", db, best);
  return path;
}

static long file_size(const char *p) {
  struct stat st;
  ASSERT_EQ(stat(p, &st), 0);
  return (long)st.st_size;
}

static void flip(const char *p, long off, int n) {
  int fd = open(p, O_RDWR);
  ASSERT(fd >= 0);
  for (int i = 0; i < n; i++) {
    unsigned char c;
    ASSERT_EQ(pread(fd, &c, 1, off + i), 1);
    c ^= 0xff;
    ASSERT_EQ(pwrite(fd, &c, 1, off + i), 1);
  }
  close(fd);
}

/* ---- writing slices ---- */

/* Slices first..last through store s, each one WAL record holding a node
 * of `size` bytes and the manifest of that slice. */
static void write_slices(vh_store_t *s, uint64_t first, uint64_t last,
                         size_t size) {
  char *val = malloc(size);
  ASSERT(val != NULL);
  for (uint64_t seq = first; seq <= last; seq++) {
    memset(val, 'a' + (int)(seq % 26), size);
    vh_batch_t *b;
    ASSERT_EQ(vh_batch_new(&b), 0);
    ASSERT_EQ(vh_batch_put_node(b, seq, val, size), 0);
    vh_manifest_t m = {.seq = seq, .next_id = seq + 1};
    void *mb;
    size_t ml;
    ASSERT_EQ(vh_manifest_encode(&m, &mb, &ml), 0);
    ASSERT_EQ(vh_batch_set_manifest(b, mb, ml), 0);
    free(mb);
    ASSERT_EQ(vh_store_submit(s, b, seq), 0);
    ASSERT_EQ(vh_store_wait_durable(s, seq), 0);
  }
  free(val);
}

static vh_store_t *open_store(const char *dir, int create) {
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  o.create = create;
  o.sync = 0; /* a copy is taken while open: no fsync needed */
  vh_store_t *s = NULL;
  char *m = NULL;
  int rc = vh_store_open(dir, &o, &s, &m);
  if (rc != 0) fprintf(stderr, "open %s: %s\n", dir, m ? m : "?");
  free(m);
  ASSERT_EQ(rc, 0);
  return s;
}

/* The slice of s's manifest. */
static uint64_t stored_slice(vh_store_t *s) {
  void *mb;
  size_t ml;
  ASSERT_EQ(vh_store_get_manifest(s, &mb, &ml, NULL), 0);
  vh_manifest_t m;
  ASSERT_EQ(vh_manifest_decode(mb, ml, &m, NULL), 0);
  uint64_t seq = m.seq;
  free(mb);
  vh_manifest_free(&m);
  return seq;
}

/* A crash image in base/NAME with slices 1..n of `size` bytes each. */
static char *crash_image(const char *name, uint64_t n, size_t size) {
  char *live = strdup(sub("live"));
  vh_store_t *s = open_store(live, 1);
  write_slices(s, 1, n, size);
  char *img = sub(name);
  copy_db(live, img);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  free(live);
  return img;
}

static vh_walscan_t scan(const char *dir) {
  char db[512];
  snprintf(db, sizeof db, "%s/db", dir);
  vh_walscan_t w;
  char *m = NULL;
  int rc = vh_walscan_dir(db, &w, &m);
  if (rc != 0) fprintf(stderr, "scan: %s\n", m ? m : "?");
  free(m);
  ASSERT_EQ(rc, 0);
  return w;
}

/* Offsets of the logical records of a WAL (start of FULL or FIRST), found
 * by walking its blocks; returns how many (at most cap). */
static int record_offsets(const char *path, long *offs, int cap) {
  int fd = open(path, O_RDONLY);
  ASSERT(fd >= 0);
  long size = file_size(path), pos = 0;
  int n = 0;
  unsigned char h[7];
  while (pos + 7 <= size && n < cap) {
    long left = 32768 - pos % 32768;
    if (left < 7) {
      pos += left;
      continue;
    }
    ASSERT_EQ(pread(fd, h, 7, pos), 7);
    long len = h[4] | h[5] << 8;
    if (h[6] == 1 || h[6] == 2) offs[n++] = pos;
    pos += 7 + len;
  }
  close(fd);
  return n;
}

/* ---- WAL files built byte by byte ---- */

/* A log being built as RocksDB's log::Writer lays it out (db/log_writer.cc):
 * records fragmented over 32 KiB blocks, a block's last bytes that cannot
 * hold a header zero-filled. Recyclable logs use 11-byte headers. */
typedef struct wal_buf {
  unsigned char *b;
  size_t n, cap;
  int recyclable;
  uint32_t lognum;
} wal_buf_t;

static void wb_put(wal_buf_t *w, const void *p, size_t n) {
  if (w->n + n > w->cap) {
    w->cap = (w->n + n) * 2;
    w->b = realloc(w->b, w->cap);
    ASSERT(w->b != NULL);
  }
  if (n) memcpy(w->b + w->n, p, n);
  w->n += n;
}

/* One physical record of type t (1..4; +4 when recyclable). */
static void wb_phys(wal_buf_t *w, int t, const unsigned char *p, size_t n) {
  unsigned char h[11];
  size_t hs = w->recyclable ? 11 : 7;
  if (w->recyclable) t += 4;
  ASSERT(w->n % 32768 + hs + n <= 32768);
  h[6] = (unsigned char)t;
  vh_le16_store(h + 4, (uint16_t)n);
  if (w->recyclable) vh_le32_store(h + 7, w->lognum);
  uint32_t c = vh_crc32c(vh_crc32c(0, h + 6, hs - 6), p, n);
  vh_le32_store(h, ((c >> 15) | (c << 17)) + 0xa282ead8u);
  wb_put(w, h, hs);
  wb_put(w, p, n);
}

/* RocksDB's AddRecord: fragments p[0..n) from the current offset. */
static void wb_record(wal_buf_t *w, const unsigned char *p, size_t n) {
  size_t hs = w->recyclable ? 11 : 7;
  int begin = 1;
  do {
    size_t leftover = 32768 - w->n % 32768;
    if (leftover < hs) {
      static const unsigned char zeros[11];
      wb_put(w, zeros, leftover);
      leftover = 32768;
    }
    size_t avail = leftover - hs, frag = n < avail ? n : avail;
    int end = frag == n;
    wb_phys(w, begin && end ? 1 : begin ? 2 : end ? 4 : 3, p, frag);
    p += frag;
    n -= frag;
    begin = 0;
  } while (n > 0);
}

/* The WriteBatch vedhost writes for slice `slice` (RocksDB seq `seq`, two
 * operations): a Put of a node with `fill` bytes, then of the manifest
 * 'M' framed as the store frames values. Returns its length in buf. */
static size_t wb_batch(unsigned char *buf, uint64_t seq, uint64_t slice,
                       size_t fill) {
  size_t n = 0;
  vh_le64_store(buf, seq);
  vh_le32_store(buf + 8, 2);
  n = 12;
  buf[n++] = 0x01;
  n += vh_varint_put(buf + n, 1);
  buf[n++] = 'n';
  n += vh_varint_put(buf + n, fill);
  memset(buf + n, 'x', fill);
  n += fill;
  vh_manifest_t m = {.seq = slice, .next_id = slice + 1};
  void *mb;
  size_t ml;
  ASSERT_EQ(vh_manifest_encode(&m, &mb, &ml), 0);
  buf[n++] = 0x01;
  n += vh_varint_put(buf + n, 1);
  buf[n++] = 'M';
  n += vh_varint_put(buf + n, 5 + ml);
  unsigned char *v = buf + n;
  v[4] = 0x21;
  memcpy(v + 5, mb, ml);
  vh_le32_store(v, vh_crc32c(0, v + 4, 1 + ml));
  n += 5 + ml;
  free(mb);
  return n;
}

/* Appends the batch of slice k (seq 10 * k); fill sizes its node. */
static void wb_slice(wal_buf_t *w, uint64_t k, size_t fill) {
  static unsigned char buf[200000];
  ASSERT(fill + 200 < sizeof buf);
  wb_record(w, buf, wb_batch(buf, 10 * k, k, fill));
}

/* Writes w to dir/db/NNNNNN.log (lognum), `len` bytes of it (all if -1). */
static void wb_write(const wal_buf_t *w, const char *dir, long len) {
  char path[600];
  mkdir(dir, 0700);
  snprintf(path, sizeof path, "%s/db", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/db/%06u.log", dir, (unsigned)w->lognum);
  FILE *f = fopen(path, "wb");
  ASSERT(f != NULL);
  size_t n = len < 0 ? w->n : (size_t)len;
  ASSERT_EQ(fwrite(w->b, 1, n, f), n);
  fclose(f);
}

/* The length of a slice's batch with node filler `fill`. */
static size_t batch_len(size_t fill) {
  static unsigned char buf[200000];
  return wb_batch(buf, 1, 1, fill);
}

/* ---- tests ---- */

TEST_IMPL(good_wal) {
  fresh();
  char *img = crash_image("img", 20, 300);
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_CLEAN);
  ASSERT_EQ(w.files, 1);
  ASSERT_EQ(w.records, 21); /* the format record, then 20 slices */
  ASSERT_EQ(w.last_slice, 20);
  ASSERT_EQ(w.tail_seen, 0);
  cleanup();
}

TEST_IMPL(good_wal_fragmented) {
  fresh();
  char *img = crash_image("img", 6, 70000); /* each record spans blocks */
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_CLEAN);
  ASSERT_EQ(w.records, 7);
  ASSERT_EQ(w.last_slice, 6);
  cleanup();
}

TEST_IMPL(torn_tail) {
  fresh();
  char *img = crash_image("img", 10, 50000);
  char *wal = wal_of(img);
  long offs[64];
  int n = record_offsets(wal, offs, 64);
  ASSERT_EQ(n, 11);
  /* cut the last record short, inside its second fragment */
  ASSERT_EQ(truncate(wal, offs[10] + 40000), 0);
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_TORN);
  ASSERT_EQ(w.records, 10);
  ASSERT_EQ(w.last_slice, 9);
  ASSERT_EQ(w.offset, offs[10]);
  ASSERT_STR_EQ(w.why, "incomplete record");
  ASSERT(strstr(wal, w.file) != NULL);
  cleanup();
}

TEST_IMPL(truncated_anywhere_is_never_corrupt) {
  fresh();
  char *img = crash_image("img", 12, 9000);
  char *wal = wal_of(img);
  long size = file_size(wal);
  char *copy = strdup(sub("copy.log"));
  copy_file(wal, copy);
  uint64_t prev = 0;
  for (long cut = 0; cut <= size; cut += 613) {
    copy_file(copy, wal);
    ASSERT_EQ(truncate(wal, cut), 0);
    vh_walscan_t w = scan(img);
    ASSERT(w.state != VH_WALSCAN_CORRUPT);
    ASSERT_GE(w.last_slice, prev); /* a longer prefix keeps more */
    prev = w.last_slice;
  }
  ASSERT_EQ(prev, 11); /* the last cut is inside the last record */
  free(copy);
  cleanup();
}

TEST_IMPL(corrupt_middle) {
  fresh();
  char *img = crash_image("img", 40, 3000);
  char *wal = wal_of(img);
  long offs[64];
  int n = record_offsets(wal, offs, 64);
  ASSERT_EQ(n, 41);
  /* flip 4 bytes inside the payload of slice 20's record */
  flip(wal, offs[20] + 500, 4);
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_CORRUPT);
  ASSERT_STR_EQ(w.why, "checksum mismatch");
  ASSERT_EQ(w.offset, offs[20]);
  ASSERT_EQ(w.last_slice, 19);
  ASSERT_EQ(w.records, 20);
  ASSERT_EQ(w.after_records, 20);
  ASSERT_EQ(w.after_min_slice, 21);
  ASSERT_EQ(w.after_max_slice, 40);
  cleanup();
}

TEST_IMPL(corrupt_length_in_last_block) {
  /* Small records in one partial block: a damaged length field makes the
   * record run past the end of the file, but intact records follow it. */
  fresh();
  char *img = crash_image("img", 30, 200);
  char *wal = wal_of(img);
  ASSERT_LT(file_size(wal), 32768);
  long offs[64];
  ASSERT_EQ(record_offsets(wal, offs, 64), 31);
  flip(wal, offs[25] + 5, 1); /* high byte of the length */
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_CORRUPT);
  ASSERT_EQ(w.offset, offs[25]);
  ASSERT_EQ(w.last_slice, 24);
  ASSERT_EQ(w.after_records, 5);
  ASSERT_EQ(w.after_max_slice, 30);
  cleanup();
}

TEST_IMPL(corrupt_last_record_is_not_a_torn_tail) {
  /* A whole last record with a bad checksum: no crash leaves that. */
  fresh();
  char *img = crash_image("img", 10, 300);
  char *wal = wal_of(img);
  long offs[16];
  ASSERT_EQ(record_offsets(wal, offs, 16), 11);
  flip(wal, offs[10] + 30, 2);
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_CORRUPT);
  ASSERT_EQ(w.offset, offs[10]);
  ASSERT_EQ(w.after_records, 0);
  ASSERT_EQ(w.last_slice, 9);
  cleanup();
}

TEST_IMPL(corrupt_first_fragment) {
  /* The FIRST fragment of a multi-block record is damaged; its LAST
   * fragment is intact: a write that completed is lost. */
  fresh();
  char *img = crash_image("img", 4, 70000);
  char *wal = wal_of(img);
  long offs[16];
  ASSERT_EQ(record_offsets(wal, offs, 16), 5);
  flip(wal, offs[4] + 100, 4); /* the last record, slice 4 */
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_CORRUPT);
  ASSERT_EQ(w.offset, offs[4]);
  ASSERT_EQ(w.last_slice, 3);
  ASSERT_EQ(w.after_records, 1);
  ASSERT_EQ(w.after_max_slice, 4); /* read from the LAST fragment */
  cleanup();
}

TEST_IMPL(random_damage_is_classified) {
  /* Random bytes flipped anywhere: never a crash, and the verdict is
   * consistent (damage before intact records is CORRUPT with them counted;
   * otherwise only the slices before the damage are kept). */
  fresh();
  char *img = crash_image("img", 30, 2500);
  char *wal = wal_of(img);
  long size = file_size(wal);
  char *copy = strdup(sub("copy.log"));
  copy_file(wal, copy);
  srand(13);
  for (int round = 0; round < 300; round++) {
    copy_file(copy, wal);
    int flips = 1 + rand() % 4;
    for (int i = 0; i < flips; i++) flip(wal, rand() % size, 1);
    vh_walscan_t w = scan(img);
    ASSERT_LE(w.last_slice, 30);
    if (w.state == VH_WALSCAN_CORRUPT) {
      ASSERT_LE(w.after_max_slice, 30);
      ASSERT(w.after_max_slice == 0 || w.after_max_slice > w.last_slice);
    } else if (w.state == VH_WALSCAN_TORN) {
      ASSERT_EQ(w.after_records, 0);
    }
  }
  free(copy);
  cleanup();
}

TEST_IMPL(garbage_files_do_not_crash) {
  fresh();
  char *db = sub("g/db");
  mkdir(sub("g"), 0700);
  mkdir(db, 0700);
  char path[600];
  snprintf(path, sizeof path, "%s/000007.log", db);
  unsigned char *buf = malloc(200000);
  ASSERT(buf != NULL);
  srand(7);
  struct {
    size_t len;
    int fill; /* -1 random */
  } cases[] = {{200000, -1}, {100000, 0xff}, {3, -1},      {0, 0},
               {70000, 0},   {7, 0x01},      {40000, 0x01}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (size_t i = 0; i < cases[c].len; i++)
      buf[i] = cases[c].fill < 0 ? (unsigned char)rand()
                                 : (unsigned char)cases[c].fill;
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(buf, 1, cases[c].len, f), cases[c].len);
    fclose(f);
    vh_walscan_t w = scan(sub("g"));
    ASSERT_EQ(w.records, 0);
    ASSERT_EQ(w.after_records, 0);
    if (cases[c].fill == 0) ASSERT_EQ(w.state, VH_WALSCAN_CLEAN);
    if (cases[c].len >= 100000) ASSERT_EQ(w.state, VH_WALSCAN_CORRUPT);
    if (cases[c].len == 3) ASSERT_EQ(w.state, VH_WALSCAN_TORN);
  }
  free(buf);
  /* no dir at all is no WAL */
  vh_walscan_t w;
  ASSERT_EQ(vh_walscan_dir(sub("none/db"), &w, NULL), 0);
  ASSERT_EQ(w.state, VH_WALSCAN_CLEAN);
  ASSERT_EQ(w.files, 0);
  cleanup();
}

TEST_IMPL(torn_tail_then_new_log_is_clean) {
  /* A crash leaves a torn tail; the store opens (it is only a tail), writes
   * on into a new log, and crashes again: the torn record held nothing that
   * counted, so the second image scans clean. */
  fresh();
  char *img = strdup(crash_image("img", 10, 50000));
  char *wal = strdup(wal_of(img));
  long offs[64];
  ASSERT_EQ(record_offsets(wal, offs, 64), 11);
  ASSERT_EQ(truncate(wal, offs[10] + 40000), 0);
  vh_store_t *s = open_store(img, 0);
  ASSERT_EQ(stored_slice(s), 9);
  write_slices(s, 10, 15, 2000);
  char *img2 = sub("img2");
  copy_db(img, img2);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  vh_walscan_t w = scan(img2);
  ASSERT_EQ(w.state, VH_WALSCAN_CLEAN);
  ASSERT_EQ(w.tail_seen, 1);
  ASSERT_EQ(w.files, 2);
  ASSERT_EQ(w.last_slice, 15);
  free(img);
  free(wal);
  cleanup();
}

static void torn_first_record_round(long cut);

TEST_IMPL(torn_first_record_then_new_log_is_clean) {
  /* test_store_crash's round: a clean close leaves no WAL, the next
   * process is killed while writing the first record of its new log, the
   * check reopens (a torn tail: point in time) and closes again with
   * nothing to flush, so that log stays; the next process writes on in a
   * newer log and is killed. No record precedes the torn one, in any log:
   * it held nothing that counted, so the image scans clean and opens. */
  static const long cuts[] = {4096, 40000}; /* in FIRST, in LAST */
  for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++)
    torn_first_record_round(cuts[c]);
}

static void torn_first_record_round(long cut) {
  fresh();
  char *live = strdup(sub("live"));
  vh_store_t *s = open_store(live, 1);
  write_slices(s, 1, 3, 100);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  s = open_store(live, 0);
  write_slices(s, 4, 4, 50000); /* a record of 2 fragments at offset 0 */
  char *img = strdup(sub("img"));
  copy_db(live, img);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  char *wal = strdup(wal_of(img));
  long offs[8];
  ASSERT_EQ(record_offsets(wal, offs, 8), 1);
  ASSERT_EQ(offs[0], 0);
  ASSERT_EQ(truncate(wal, cut), 0);
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_TORN);
  ASSERT_EQ(w.records, 0);
  s = open_store(img, 0); /* the check: open and close */
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  s = open_store(img, 0); /* the next process */
  write_slices(s, 4, 6, 2000);
  char *img2 = sub("img2");
  copy_db(img, img2);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  w = scan(img2);
  if (w.state != VH_WALSCAN_CLEAN)
    fprintf(stderr, "%s at %llu: %s, %llu record(s) after\n", w.file,
            (unsigned long long)w.offset, w.why,
            (unsigned long long)w.after_records);
  ASSERT_EQ(w.state, VH_WALSCAN_CLEAN);
  ASSERT_EQ(w.tail_seen, 1);
  ASSERT_EQ(w.last_slice, 6);
  s = open_store(img2, 0);
  ASSERT_EQ(stored_slice(s), 6);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  free(live);
  free(img);
  free(wal);
  cleanup();
}

/* Adds slices (++*k) until exactly `left` bytes remain in the current
 * block (0 < left <= 32768). */
static void fill_to(wal_buf_t *w, uint64_t *k, size_t left) {
  size_t hs = w->recyclable ? 11 : 7;
  while (32768 - w->n % 32768 != left) {
    size_t room = 32768 - w->n % 32768;
    /* a FULL record of room - left bytes, if a batch has that size */
    size_t fill = 0;
    if (room > left + hs)
      while (fill < 20000 && hs + batch_len(fill) < room - left) fill++;
    if (room > left + hs && hs + batch_len(fill) == room - left)
      wb_slice(w, ++*k, fill);
    else
      wb_slice(w, ++*k, 3000); /* move on and try again */
  }
}

TEST_IMPL(block_edges) {
  /* Every layout RocksDB's writer makes at the end of a block, in plain
   * and recyclable logs: a record that fills its block exactly; a header
   * that just fits (an empty FIRST fragment, the payload all in the next
   * block); 1..header-1 bytes left (a zero trailer, skipped); a FIRST with
   * a few bytes. Each log scans CLEAN with every slice counted, and cut at
   * any byte around the edge (a file being written, or a crash) it is
   * never CORRUPT and keeps what precedes the cut. */
  for (int rec = 0; rec <= 1; rec++) {
    size_t hs = rec ? 11 : 7;
    size_t lefts[16], nl = 0;
    lefts[nl++] = hs + batch_len(10); /* fills the block exactly */
    lefts[nl++] = hs;                 /* empty FIRST */
    lefts[nl++] = hs + 5;
    for (size_t t = 1; t < hs; t++) lefts[nl++] = t; /* trailer */
    for (size_t i = 0; i < nl; i++) {
      fresh();
      wal_buf_t w = {.recyclable = rec, .lognum = 9};
      uint64_t k = 0;
      fill_to(&w, &k, lefts[i]);
      size_t edge = w.n;
      wb_slice(&w, ++k, 10);
      wb_slice(&w, ++k, 30000);
      wb_slice(&w, ++k, 70000);
      wb_write(&w, sub("d"), -1);
      vh_walscan_t v = scan(sub("d"));
      if (v.state != VH_WALSCAN_CLEAN)
        fprintf(stderr, "recyclable %d, left %zu: at %llu: %s\n", rec, lefts[i],
                (unsigned long long)v.offset, v.why);
      ASSERT_EQ(v.state, VH_WALSCAN_CLEAN);
      ASSERT_EQ(v.records, k);
      ASSERT_EQ(v.last_slice, k);
      uint64_t prev = 0;
      for (size_t cut = edge - 3; cut <= edge + lefts[i] + hs + 40; cut++) {
        wb_write(&w, sub("d"), (long)cut);
        v = scan(sub("d"));
        ASSERT(v.state != VH_WALSCAN_CORRUPT);
        ASSERT_GE(v.last_slice, prev);
        ASSERT_GE(v.last_slice, cut >= edge ? k - 3 : k - 4); /* the prefix */
        prev = v.last_slice;
      }
      free(w.b);
      cleanup();
    }
  }
}

TEST_IMPL(torn_first_record_synthetic) {
  /* The same as torn_first_record_then_new_log_is_clean, byte by byte: a
   * log whose only record (seq 500) is cut short, then a newer log whose
   * first record reuses seq 500 (RocksDB never applied the torn one):
   * CLEAN. A newer log that goes on from another seq is CORRUPT (the torn
   * record's writes counted somewhere), and so is a torn record too short
   * to show its seq. */
  static unsigned char buf[100000];
  size_t n = wb_batch(buf, 500, 7, 60000); /* FIRST + LAST */
  for (int c = 0; c < 4; c++) {
    fresh();
    wal_buf_t a = {.lognum = 11}, b = {.lognum = 14};
    wb_record(&a, buf, n);
    long cuts[] = {4096, 40000, 4096, 7 + 11};
    wb_write(&a, sub("d"), cuts[c]);
    uint64_t next = c == 2 ? 501 : 500;
    for (uint64_t k = 0; k < 3; k++) {
      static unsigned char nb[4000];
      wb_record(&b, nb, wb_batch(nb, next + 2 * k, 7 + k, 300));
    }
    wb_write(&b, sub("d"), -1);
    vh_walscan_t v = scan(sub("d"));
    ASSERT_EQ(v.files, 2);
    if (c < 2) {
      ASSERT_EQ(v.state, VH_WALSCAN_CLEAN);
      ASSERT_EQ(v.tail_seen, 1);
      ASSERT_EQ(v.records, 3);
      ASSERT_EQ(v.last_slice, 9);
    } else {
      ASSERT_EQ(v.state, VH_WALSCAN_CORRUPT);
      ASSERT_EQ(v.offset, 0);
      ASSERT_STR_EQ(v.why, "incomplete record");
      ASSERT_EQ(v.after_records, 3);
    }
    free(a.b);
    free(b.b);
    cleanup();
  }
}

TEST_IMPL(store_refuses_corrupt_then_recovers) {
  fresh();
  char *img = crash_image("img", 40, 3000);
  char *wal = wal_of(img);
  long offs[64];
  ASSERT_EQ(record_offsets(wal, offs, 64), 41);
  flip(wal, offs[20] + 500, 4);
  vh_store_opts_t o;
  vh_store_opts_init(&o);
  vh_store_t *s = NULL;
  char *m = NULL;
  ASSERT_EQ(vh_store_open(img, &o, &s, &m), VH_ECORRUPT);
  ASSERT(s == NULL);
  ASSERT(m != NULL && strstr(m, "corrupt at offset") != NULL);
  ASSERT(strstr(m, "slices 20..40") != NULL);
  free(m);
  m = NULL;
  o.read_only_secondary = 1; /* the offline tools refuse it too */
  o.secondary_path = sub("scratch");
  mkdir(sub("scratch"), 0700);
  ASSERT_EQ(vh_store_open(img, &o, &s, &m), VH_ECORRUPT);
  free(m);
  m = NULL;
  vh_store_opts_init(&o);
  o.accept_loss = 1;
  ASSERT_EQ(vh_store_open(img, &o, &s, &m), 0);
  ASSERT_EQ(stored_slice(s), 19);
  ASSERT_EQ(vh_store_close(s, NULL), 0);
  vh_walscan_t w = scan(img);
  ASSERT_EQ(w.state, VH_WALSCAN_CLEAN);
  ASSERT_EQ(w.after_records, 0);
  cleanup();
}

TEST_IMPL(manifest_file_damage) {
  fresh();
  char *img = crash_image("img", 3, 100);
  char db[600];
  snprintf(db, sizeof db, "%s/db", img);
  DIR *d = opendir(db);
  ASSERT(d != NULL);
  struct dirent *e;
  char man[900] = "";
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "MANIFEST-", 9) == 0)
      snprintf(man, sizeof man, "%s/%s", db, e->d_name);
  closedir(d);
  ASSERT(man[0] != '\0');
  uint64_t off = 99;
  const char *why = NULL;
  ASSERT_EQ(vh_walscan_file_damage(man, &off, &why), 0);
  long size = file_size(man);
  ASSERT_EQ(truncate(man, size - 5), 0);
  ASSERT_EQ(vh_walscan_file_damage(man, &off, &why), 1);
  ASSERT_STR_EQ(why, "incomplete record");
  ASSERT_EQ(vh_walscan_file_damage(sub("nope"), &off, &why), VH_ENOENT);
  cleanup();
}

VH_TEST_MAIN(TEST_ENTRY(good_wal), TEST_ENTRY(good_wal_fragmented),
             TEST_ENTRY(torn_tail),
             TEST_ENTRY(truncated_anywhere_is_never_corrupt),
             TEST_ENTRY(corrupt_middle),
             TEST_ENTRY(corrupt_length_in_last_block),
             TEST_ENTRY(corrupt_last_record_is_not_a_torn_tail),
             TEST_ENTRY(corrupt_first_fragment),
             TEST_ENTRY(random_damage_is_classified),
             TEST_ENTRY(garbage_files_do_not_crash),
             TEST_ENTRY(torn_tail_then_new_log_is_clean),
             TEST_ENTRY(torn_first_record_then_new_log_is_clean),
             TEST_ENTRY(block_edges), TEST_ENTRY(torn_first_record_synthetic),
             TEST_ENTRY(store_refuses_corrupt_then_recovers),
             TEST_ENTRY(manifest_file_damage))
