/*
 * test_export.c - the export stream (persist/trie/export.c): round trips of
 * random and large states, canonical bytes whatever the history, lazily
 * loaded states, the documented byte layout, and damaged, truncated,
 * newer-format and foreign streams refused without a crash.
 */
#include <math.h>
#include <zstd.h>

#include "lazy_util.h"
#include "trie_util.h"
#include "vh_bytes.h"
#include "vh_crc32c.h"
#include "vh_export.h"
#include "vh_limits.h"
#include "vh_test.h"

/* ---- in-memory output and chunked input ---- */

static int te_write(void *arg, const void *p, size_t len) {
  return vh_buf_put(arg, p, len);
}

/* Strict deep equality: same types (int vs float kept), floats bitwise. */
static int te_equal(vh_val_t a, vh_val_t b) {
  if (a.type != b.type) return 0;
  switch (a.type) {
    case VH_TFLOAT:
      return memcmp(&a.u.f, &b.u.f, sizeof a.u.f) == 0;
    case VH_TTAB: {
      vh_iter_t it;
      vh_val_t k, v, w;
      if (vh_tab_count(a.u.t) != vh_tab_count(b.u.t)) return 0;
      vh_iter_init(&it, a.u.t);
      while (vh_iter_next(&it, &k, &v) == 1) {
        vh_tab_get(b.u.t, k, &w);
        if (!te_equal(v, w)) return 0;
      }
      return 1;
    }
    default:
      return vh_val_equal(a, b);
  }
}

/* Exports the tables (one domain each, names d0, d1...) into out. */
static int te_export(vh_tab_t **tabs, size_t n, uint64_t seq, vh_buf_t *out,
                     vh_export_stats_t *st) {
  vh_export_writer_t *w;
  vh_export_header_t h;
  char *msg = NULL;
  int rc;
  memset(&h, 0, sizeof h);
  h.seq = seq;
  for (size_t i = 0; i < n; i++) {
    char name[24]; /* "d" + up to 20 digits */
    snprintf(name, sizeof name, "d%zu", i);
    if (vh_export_header_add(&h, name, (int64_t)i + 1) != 0) abort();
  }
  out->len = 0;
  if (vh_export_writer_new(te_write, out, 0, &w) != 0) abort();
  rc = vh_export_write_header(w, &h, &msg);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = vh_export_write_table(w, tabs[i], &msg);
  if (rc == 0) rc = vh_export_write_finish(w, st, &msg);
  if (rc != 0) fprintf(stderr, "export: %s\n", msg ? msg : "?");
  free(msg);
  vh_export_writer_free(w);
  vh_export_header_free(&h);
  return rc;
}

/* Imports bytes; on success tabs[0..*n) are [new]. Returns the error code
 * and, if msg != NULL, the [new] message. */
static int te_import(const void *p, size_t len, size_t chunk, vh_tab_t **tabs,
                     size_t *n, vh_export_header_t *h, char **msg) {
  vh_export_mem_t src = {p, len, 0, chunk};
  vh_export_reader_t *r;
  char *m = NULL;
  size_t got = 0;
  uint64_t edit = vh_edit_new();
  if (vh_export_reader_new(vh_export_read_mem, &src, &r) != 0) abort();
  int rc = vh_export_read_header(r, h, &m);
  for (size_t i = 0; rc == 0 && i < h->ndomains; i++) {
    rc = vh_export_read_table(r, edit, &tabs[i], &m);
    if (rc == 0) got++;
  }
  if (rc == 0 && (h->flags & VH_EXPORT_F_SYS)) {
    vh_tab_t *sys = NULL;
    rc = vh_export_read_table(r, edit, &sys, &m);
    if (sys != NULL) vh_tab_release(sys);
  }
  if (rc == 0) rc = vh_export_read_finish(r, NULL, &m);
  vh_export_reader_free(r);
  if (rc != 0) {
    for (size_t i = 0; i < got; i++) vh_tab_release(tabs[i]);
    got = 0;
    vh_export_header_free(h);
  }
  *n = got;
  if (msg)
    *msg = m;
  else
    free(m);
  return rc;
}

/* The raw (uncompressed) bytes of a stream [new]. */
static unsigned char *te_raw(const vh_buf_t *z, size_t *len) {
  unsigned long long n = ZSTD_getFrameContentSize(z->p, z->len);
  size_t cap = n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR
                   ? 64u << 20
                   : (size_t)n;
  unsigned char *raw = malloc(cap ? cap : 1);
  size_t r = ZSTD_decompress(raw, cap, z->p, z->len);
  if (ZSTD_isError(r)) abort();
  *len = r;
  return raw;
}

/* Recompresses raw bytes into a stream (zstd checksum on). */
static void te_pack(const unsigned char *raw, size_t len, vh_buf_t *out) {
  size_t cap = ZSTD_compressBound(len);
  ZSTD_CCtx *c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
  out->len = 0;
  if (out->cap < cap) {
    out->p = realloc(out->p, cap);
    out->cap = cap;
  }
  out->len = ZSTD_compress2(c, out->p, cap, raw, len);
  if (ZSTD_isError(out->len)) abort();
  ZSTD_freeCCtx(c);
}

static void te_release(vh_tab_t **tabs, size_t n) {
  for (size_t i = 0; i < n; i++) vh_tab_release(tabs[i]);
}

/* Round trip: export, import (chunked reads), equal contents, and the
 * import exports to the same bytes. */
static vh_tab_t *te_last[8]; /* the imported tables, while deep_check */

static void te_roundtrip2(vh_tab_t **tabs, size_t n, size_t chunk,
                          int deep_check);
static void te_roundtrip(vh_tab_t **tabs, size_t n, size_t chunk) {
  te_roundtrip2(tabs, n, chunk, 0);
}

/* deep_check: skip the recursive comparison; the caller checks te_last
 * (valid until the next call) instead. */
static void te_roundtrip2(vh_tab_t **tabs, size_t n, size_t chunk,
                          int deep_check) {
  vh_buf_t a, b;
  vh_tab_t *back[8];
  vh_export_header_t h;
  size_t got;
  char *msg = NULL;
  vh_buf_init(&a);
  vh_buf_init(&b);
  ASSERT_EQ(te_export(tabs, n, 42, &a, NULL), 0);
  int rc = te_import(a.p, a.len, chunk, back, &got, &h, &msg);
  if (rc != 0) fprintf(stderr, "import: %s\n", msg);
  free(msg);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(got, n);
  ASSERT_EQ(h.seq, 42);
  ASSERT_EQ(h.ndomains, n);
  for (size_t i = 0; i < n; i++) {
    ASSERT_EQ(h.domains[i].version, (int64_t)i + 1);
    if (!deep_check) {
      ASSERT(te_equal(tu_tab(tabs[i]), tu_tab(back[i])));
      ASSERT_CHECK(back[i]);
    }
  }
  ASSERT_EQ(te_export(back, n, 42, &b, NULL), 0);
  ASSERT_EQ(a.len, b.len);
  ASSERT(memcmp(a.p, b.p, a.len) == 0);
  if (deep_check) {
    for (size_t i = 0; i < n; i++) {
      vh_tab_retain(back[i]);
      te_last[i] = back[i];
    }
  }
  te_release(back, n);
  vh_export_header_free(&h);
  vh_buf_free(&a);
  vh_buf_free(&b);
}

TEST_IMPL(roundtrip_random) {
  for (int round = 0; round < 40; round++) {
    uint64_t edit = vh_edit_new();
    vh_tab_t *t[3];
    t[0] = lu_rtab(lu_below(200), 4, edit);
    t[1] = vh_tab_new(edit); /* an empty domain */
    t[2] = lu_rtab(lu_below(30), 8, edit);
    te_roundtrip(t, 3, round % 2 ? 1 + (size_t)lu_below(100) : 0);
    te_release(t, 3);
  }
  ASSERT_CLEAN();
}

TEST_IMPL(roundtrip_big) {
  /* 150k keys of every kind, a 5 MB string, a 200k-entry array. */
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit), *arr = vh_tab_new(edit);
  char key[32];
  for (int i = 0; i < 150000; i++) {
    snprintf(key, sizeof key, "user:%d", i);
    vh_val_t v;
    switch (i % 4) {
      case 0:
        v = vh_int((int64_t)i * 1000003);
        break;
      case 1:
        v = vh_float(i / 3.0);
        break;
      case 2:
        v = tu_str(key);
        break;
      default:
        v = vh_bool(i & 8);
    }
    ASSERT_EQ(tu_set_s(&t, key, v, edit), 0);
  }
  for (int i = 1; i <= 200000; i++)
    ASSERT_EQ(vh_tab_set(&arr, vh_int(i), vh_int(-i), edit), 0);
  ASSERT_EQ(tu_set_s(&t, "arr", tu_tab(arr), edit), 0);
  size_t big = 5u << 20;
  char *s = malloc(big);
  for (size_t i = 0; i < big; i++) s[i] = (char)(lu_rand() & 0xff);
  vh_val_t sv;
  sv.type = VH_TSTR;
  sv.u.s = vh_str_new(s, big);
  free(s);
  ASSERT_EQ(tu_set_s(&t, "blob", sv, edit), 0);
  vh_buf_t a;
  vh_export_stats_t st;
  vh_buf_init(&a);
  ASSERT_EQ(te_export(&t, 1, 1, &a, &st), 0);
  ASSERT_EQ(st.keys, 150000 + 2 + 200000);
  ASSERT_EQ(st.tables, 2);
  ASSERT_GT(st.raw_bytes, big);
  ASSERT_EQ(st.zst_bytes, a.len);
  vh_buf_free(&a);
  te_roundtrip(&t, 1, 0);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

/* The deepest state a stream may hold: VH_MAX_DEPTH tables. */
#define TE_DEEP (VH_MAX_DEPTH - 1)

TEST_IMPL(roundtrip_deep) {
  /* VH_MAX_DEPTH nested tables: neither side may recurse. */
  uint64_t edit = vh_edit_new();
  vh_tab_t *leaf = vh_tab_new(edit);
  ASSERT_EQ(tu_set_s(&leaf, "bottom", vh_bool(1), edit), 0);
  for (int i = 0; i < TE_DEEP; i++) {
    vh_tab_t *up = vh_tab_new(edit);
    ASSERT_EQ(tu_set_s(&up, "down", tu_tab(leaf), edit), 0);
    ASSERT_EQ(vh_tab_set(&up, vh_int(1), vh_int(i), edit), 0);
    leaf = up;
  }
  te_roundtrip2(&leaf, 1, 0, 1);
  const vh_tab_t *at = te_last[0];
  for (int i = TE_DEEP - 1; i >= 0; i--) {
    ASSERT_EQ(vh_tab_count(at), 2);
    vh_val_t v = tu_get_i(at, 1);
    ASSERT_EQ(v.type, VH_TINT);
    ASSERT_EQ(v.u.i, i);
    v = tu_get_s(at, "down");
    ASSERT_EQ(v.type, VH_TTAB);
    at = v.u.t;
  }
  ASSERT_EQ(vh_tab_count(at), 1);
  ASSERT_EQ(tu_get_s(at, "bottom").type, VH_TBOOL);
  vh_tab_release(te_last[0]);
  vh_tab_release(leaf);
  ASSERT_CLEAN();
}

/* A raw stream by hand: header with one domain (name, version), then
 * `levels` tables each holding the next at key 1, then a valid trailer. */
static unsigned char *te_craft(const char *name, int64_t version, long levels,
                               size_t *len) {
  size_t nl = strlen(name), cap = 64 + nl + 3 * (size_t)levels + 64, n = 0;
  unsigned char *b = malloc(cap);
  if (b == NULL) abort();
  memcpy(b, "VEDXPORT", 8);
  n = 8;
  const uint32_t hdr[4] = {1, 0, 0, 0}; /* version, flags, seq lo, seq hi */
  for (int i = 0; i < 4; i++)
    for (int k = 0; k < 4; k++) b[n++] = (unsigned char)(hdr[i] >> (8 * k));
  b[n++] = 1, b[n++] = 0, b[n++] = 0, b[n++] = 0; /* one domain */
  b[n++] = (unsigned char)nl;
  memcpy(b + n, name, nl);
  n += nl;
  for (int k = 0; k < 8; k++)
    b[n++] = (unsigned char)((uint64_t)version >> (8 * k));
  for (long i = 0; i < levels; i++) b[n++] = 0x06, b[n++] = 1, b[n++] = 0;
  b[n++] = 0x06, b[n++] = 0, b[n++] = 0;
  uint64_t t[3] = {(uint64_t)levels, (uint64_t)levels + 1, n};
  memcpy(b + n, "VEDXEND.", 8);
  n += 8;
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 8; k++) b[n++] = (unsigned char)(t[i] >> (8 * k));
  uint32_t crc = vh_crc32c(0, b, n);
  for (int k = 0; k < 4; k++) b[n++] = (unsigned char)(crc >> (8 * k));
  *len = n;
  return b;
}

static int te_import_raw(const unsigned char *raw, size_t len, char **msg) {
  vh_buf_t z;
  vh_buf_init(&z);
  te_pack(raw, len, &z);
  vh_tab_t *back[2] = {NULL, NULL};
  vh_export_header_t h;
  size_t got = 0;
  int rc = te_import(z.p, z.len, 0, back, &got, &h, msg);
  if (rc == 0) {
    te_release(back, got);
    vh_export_header_free(&h);
  }
  vh_buf_free(&z);
  return rc;
}

TEST_IMPL(depth_limit) {
  /* The crafted stream is accepted at the limit... */
  size_t len;
  char *msg = NULL;
  unsigned char *raw = te_craft("d", 1, VH_MAX_DEPTH - 1, &len);
  ASSERT_EQ(te_import_raw(raw, len, &msg), 0);
  free(raw);
  free(msg);
  msg = NULL;
  /* ...and refused with one line past it, 1M levels too. */
  const long too_deep[] = {VH_MAX_DEPTH, 1000000};
  for (int i = 0; i < 2; i++) {
    raw = te_craft("d", 1, too_deep[i], &len);
    ASSERT_EQ(te_import_raw(raw, len, &msg), VH_EDEPTH);
    ASSERT(msg != NULL && strstr(msg, "deeper than 20000 levels") != NULL);
    ASSERT(strchr(msg, '\n') == NULL);
    free(msg);
    msg = NULL;
    free(raw);
  }
  ASSERT_CLEAN();
  /* The writer refuses a state deeper than the limit (an old store). */
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  for (int i = 0; i < VH_MAX_DEPTH; i++) {
    vh_tab_t *up = vh_tab_new(edit);
    ASSERT_EQ(vh_tab_set(&up, vh_int(1), tu_tab(t), edit), 0);
    t = up;
  }
  vh_buf_t z;
  vh_buf_init(&z);
  ASSERT_EQ(te_export(&t, 1, 1, &z, NULL), VH_EDEPTH);
  vh_buf_free(&z);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(header_refuses_what_the_host_refuses) {
  static const char *const bad[] = {"a b", "../../x", "__ved", "1x", "é"};
  size_t len;
  char *msg = NULL;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    unsigned char *raw = te_craft(bad[i], 1, 1, &len);
    ASSERT_EQ(te_import_raw(raw, len, &msg), VH_EINVAL);
    ASSERT(msg != NULL && strstr(msg, "not a valid domain name") != NULL);
    free(msg);
    msg = NULL;
    free(raw);
  }
  unsigned char *raw = te_craft("ok", INT64_MAX, 1, &len);
  ASSERT_EQ(te_import_raw(raw, len, &msg), VH_EINVAL);
  ASSERT(msg != NULL && strstr(msg, "version") != NULL);
  free(msg);
  msg = NULL;
  free(raw);
  raw = te_craft("ok", VH_MAX_VERSION, 1, &len);
  ASSERT_EQ(te_import_raw(raw, len, &msg), 0);
  free(msg);
  free(raw);
  /* The writer checks the same. */
  vh_export_writer_t *w;
  vh_export_header_t h;
  vh_buf_t z;
  vh_buf_init(&z);
  memset(&h, 0, sizeof h);
  ASSERT_EQ(vh_export_header_add(&h, "__ved", 1), 0);
  ASSERT_EQ(vh_export_writer_new(te_write, &z, 0, &w), 0);
  ASSERT_EQ(vh_export_write_header(w, &h, &msg), VH_EINVAL);
  free(msg);
  vh_export_writer_free(w);
  vh_export_header_free(&h);
  vh_buf_free(&z);
  ASSERT_CLEAN();
}

TEST_IMPL(canonical_whatever_history) {
  /* Same contents, different histories (array holes, hash-part integers,
   * insertion order): the same bytes. */
  uint64_t e1 = vh_edit_new(), e2 = vh_edit_new();
  vh_tab_t *a = vh_tab_new(e1), *b = vh_tab_new(e2);
  for (int i = 1; i <= 50; i++)
    ASSERT_EQ(vh_tab_set(&a, vh_int(i), vh_int(i * i), e1), 0);
  ASSERT_EQ(vh_tab_set(&a, vh_int(20), vh_nil(), e1), 0); /* a hole */
  ASSERT_EQ(tu_set_s(&a, "x", vh_float(1.5), e1), 0);
  ASSERT_EQ(vh_tab_set(&a, vh_int(0), vh_bool(0), e1), 0);
  ASSERT_EQ(vh_tab_set(&a, vh_bool(1), vh_int(7), e1), 0);
  for (int i = 50; i >= 1; i--)
    if (i != 20) ASSERT_EQ(vh_tab_set(&b, vh_int(i), vh_int(i * i), e2), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_bool(1), vh_int(7), e2), 0);
  ASSERT_EQ(vh_tab_set(&b, vh_int(0), vh_bool(0), e2), 0);
  ASSERT_EQ(tu_set_s(&b, "x", vh_float(1.5), e2), 0);
  vh_buf_t za, zb;
  vh_buf_init(&za);
  vh_buf_init(&zb);
  ASSERT_EQ(te_export(&a, 1, 9, &za, NULL), 0);
  ASSERT_EQ(te_export(&b, 1, 9, &zb, NULL), 0);
  size_t la, lb;
  unsigned char *ra = te_raw(&za, &la), *rb = te_raw(&zb, &lb);
  ASSERT_EQ(la, lb);
  ASSERT(memcmp(ra, rb, la) == 0);
  /* Body of the table: tag, na = 19 (1..19), nh = 50 - 19 - 1 + 3. */
  size_t body = 28 + 1 + 2 + 8;
  ASSERT_EQ(ra[body], 0x06);
  ASSERT_EQ(ra[body + 1], 19);
  ASSERT_EQ(ra[body + 2], 30 + 3);
  free(ra);
  free(rb);
  vh_buf_free(&za);
  vh_buf_free(&zb);
  vh_tab_release(a);
  vh_tab_release(b);
  ASSERT_CLEAN();
}

TEST_IMPL(byte_layout) {
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  ASSERT_EQ(tu_set_s(&t, "n", vh_int(-3), edit), 0);
  vh_buf_t z;
  vh_buf_init(&z);
  ASSERT_EQ(te_export(&t, 1, 0x0102030405060708ull, &z, NULL), 0);
  size_t len;
  unsigned char *raw = te_raw(&z, &len);
  static const unsigned char want[] = {
      'V',  'E', 'D', 'X',  'P', 'O', 'R',  'T', 1, 0, 0, 0,
      0,    0,   0,   0,                                     /* */
      8,    7,   6,   5,    4,   3,   2,    1,   1, 0, 0, 0, /* seq, n = 1 */
      2,    'd', '0', 1,    0,   0,   0,    0,   0, 0, 0, /* "d0", version 1 */
      0x06, 0,   1,   0x05, 1,   'n', 0x03, 5,            /* {n = -3} */
      'V',  'E', 'D', 'X',  'E', 'N', 'D',  '.',          /* trailer */
      1,    0,   0,   0,    0,   0,   0,    0,   1, 0, 0, 0,
      0,    0,   0,   0,                        /* keys, tables */
      47,   0,   0,   0,    0,   0,   0,    0}; /* trailer offset */
  ASSERT_EQ(len, sizeof want + 4);
  ASSERT(memcmp(raw, want, sizeof want) == 0);
  uint32_t crc = vh_crc32c(0, raw, sizeof want);
  ASSERT_EQ(raw[len - 4] | raw[len - 3] << 8 | raw[len - 2] << 16 |
                (uint32_t)raw[len - 1] << 24,
            crc);
  free(raw);
  vh_buf_free(&z);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(lazy_state_exports_the_same) {
  /* A state flushed to a store and reopened as stubs exports to the same
   * bytes as the in-memory original. */
  lu_map_t m;
  uint64_t next = 1, edit = vh_edit_new();
  lu_init(&m);
  lu_use(&m);
  vh_tab_t *t = lu_rtab(3000, 5, edit);
  lu_flush(&m, t, &next);
  uint64_t id = vh_tab_id(t);
  vh_buf_t a, b;
  vh_buf_init(&a);
  vh_buf_init(&b);
  ASSERT_EQ(te_export(&t, 1, 5, &a, NULL), 0);
  vh_tab_t *stub = vh_tab_stub(id);
  ASSERT(vh_tab_unloaded(stub));
  ASSERT_EQ(te_export(&stub, 1, 5, &b, NULL), 0);
  ASSERT_GT(lu_loads, 0);
  ASSERT_EQ(a.len, b.len);
  ASSERT(memcmp(a.p, b.p, a.len) == 0);
  /* A load failure is reported, not exported as a smaller state. */
  vh_tab_release(stub);
  stub = vh_tab_stub(id);
  lu_fail_every = 7;
  char *msg = NULL;
  vh_export_writer_t *w;
  vh_export_header_t h;
  memset(&h, 0, sizeof h);
  ASSERT_EQ(vh_export_header_add(&h, "d0", 1), 0);
  ASSERT_EQ(vh_export_writer_new(te_write, &b, 0, &w), 0);
  ASSERT_EQ(vh_export_write_header(w, &h, &msg), 0);
  ASSERT_EQ(vh_export_write_table(w, stub, &msg), VH_EIO);
  ASSERT(msg != NULL && strstr(msg, "cannot read the state") != NULL);
  free(msg);
  ASSERT_NE(vh_export_write_finish(w, NULL, NULL), 0);
  vh_export_writer_free(w);
  vh_export_header_free(&h);
  vh_trie_fault_clear();
  lu_fail_every = 0;
  vh_tab_release(stub);
  vh_tab_release(t);
  vh_buf_free(&a);
  vh_buf_free(&b);
  vh_trie_set_loader(NULL, NULL, NULL);
  lu_free(&m);
  ASSERT_CLEAN();
}

/* A small state with every kind of value, exported into *z. */
static vh_tab_t *te_small(vh_buf_t *z) {
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit), *in = vh_tab_new(edit);
  tu_set_s(&in, "s", tu_str("hello"), edit);
  vh_tab_set(&in, vh_int(1), vh_float(-0.0), edit);
  vh_tab_set(&in, vh_int(2), vh_bool(0), edit);
  tu_set_s(&t, "in", tu_tab(in), edit);
  tu_set_s(&t, "i", vh_int(INT64_MIN), edit);
  tu_set_s(&t, "f", vh_float(HUGE_VAL), edit);
  vh_tab_set(&t, vh_float(2.5), vh_bool(1), edit);
  if (te_export(&t, 1, 3, z, NULL) != 0) abort();
  return t;
}

TEST_IMPL(every_raw_byte_damaged_is_refused) {
  /* Each raw byte position (header, body, trailer, CRC) with several
   * flips, recompressed so zstd's own checksum is valid: our parser and
   * CRC must refuse every one. */
  vh_buf_t z, bad;
  vh_buf_init(&z);
  vh_buf_init(&bad);
  vh_tab_t *t = te_small(&z);
  size_t len;
  unsigned char *raw = te_raw(&z, &len);
  static const unsigned char flips[] = {0x01, 0x80, 0xff, 0x10};
  vh_tab_t *back[2];
  vh_export_header_t h;
  size_t got;
  for (size_t i = 0; i < len; i++) {
    for (size_t f = 0; f < sizeof flips; f++) {
      raw[i] ^= flips[f];
      te_pack(raw, len, &bad);
      char *msg = NULL;
      int rc = te_import(bad.p, bad.len, 0, back, &got, &h, &msg);
      if (rc == 0)
        fprintf(stderr, "accepted: byte %zu ^ 0x%02x\n", i, flips[f]);
      ASSERT_NE(rc, 0);
      /* EINVAL: a damaged name or version that the host would refuse */
      if (rc != VH_ECORRUPT && rc != VH_EFORMAT && rc != VH_EINVAL)
        fprintf(stderr, "byte %zu: %d %s\n", i, rc, msg);
      ASSERT(rc == VH_ECORRUPT || rc == VH_EFORMAT || rc == VH_EINVAL);
      ASSERT(msg != NULL && strlen(msg) > 10 && !strchr(msg, '\n'));
      if (i < 8) ASSERT_EQ(rc, VH_EFORMAT); /* the magic */
      free(msg);
      raw[i] ^= flips[f];
    }
  }
  /* A newer format version says so. */
  raw[8] = 2;
  te_pack(raw, len, &bad);
  char *msg = NULL;
  ASSERT_EQ(te_import(bad.p, bad.len, 0, back, &got, &h, &msg), VH_EFORMAT);
  ASSERT(strstr(msg, "newer") != NULL);
  free(msg);
  free(raw);
  vh_buf_free(&bad);
  vh_buf_free(&z);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(compressed_damage_and_truncation) {
  vh_buf_t z, bad;
  vh_buf_init(&z);
  vh_buf_init(&bad);
  vh_tab_t *t = te_small(&z);
  vh_tab_t *back[2];
  vh_export_header_t h;
  size_t got;
  char *msg;
  /* Every proper prefix (truncation) is refused. */
  for (size_t n = 0; n < z.len; n++) {
    msg = NULL;
    ASSERT_EQ(te_import(z.p, n, 0, back, &got, &h, &msg) != 0, 1);
    ASSERT(msg != NULL);
    free(msg);
  }
  /* Any flipped compressed byte: refused, or (a flip in a header field
   * that does not change the data, such as the window size) the very
   * same state. */
  int refused = 0;
  for (size_t i = 0; i < z.len; i++) {
    for (int f = 0; f < 8; f++) {
      bad.len = 0;
      te_write(&bad, z.p, z.len);
      bad.p[i] ^= (unsigned char)(1u << f);
      msg = NULL;
      int rc = te_import(bad.p, bad.len, 0, back, &got, &h, &msg);
      if (rc == 0) {
        ASSERT_EQ(got, 1);
        ASSERT(te_equal(tu_tab(t), tu_tab(back[0])));
        te_release(back, got);
        vh_export_header_free(&h);
      } else {
        refused++;
      }
      free(msg);
    }
  }
  ASSERT_GT(refused, (int)z.len * 6);
  /* Trailing bytes after the stream, and two streams back to back. */
  bad.len = 0;
  te_write(&bad, z.p, z.len);
  te_write(&bad, "x", 1);
  msg = NULL;
  ASSERT_EQ(te_import(bad.p, bad.len, 0, back, &got, &h, &msg), VH_ECORRUPT);
  free(msg);
  te_write(&bad, z.p, z.len);
  bad.len--;
  te_write(&bad, z.p, z.len);
  msg = NULL;
  ASSERT_NE(te_import(bad.p, bad.len, 0, back, &got, &h, &msg), 0);
  free(msg);
  /* Not zstd at all. */
  msg = NULL;
  ASSERT_EQ(te_import("hello, world", 12, 0, back, &got, &h, &msg), VH_EFORMAT);
  ASSERT(strstr(msg, "not a vedhost export") != NULL);
  free(msg);
  /* zstd, but not ours. */
  te_pack((const unsigned char *)"just some text, not an export", 29, &bad);
  msg = NULL;
  ASSERT_EQ(te_import(bad.p, bad.len, 0, back, &got, &h, &msg), VH_EFORMAT);
  free(msg);
  vh_buf_free(&bad);
  vh_buf_free(&z);
  vh_tab_release(t);
  ASSERT_CLEAN();
}

TEST_IMPL(noncanonical_streams_refused) {
  /* Hand-made raw streams that parse but are not canonical. */
  static const unsigned char head[] = {
      'V', 'E', 'D', 'X', 'P', 'O', 'R', 'T', 1, 0, 0, 0, 0,
      0,   0,   0,   0,   0,   0,   0,   0,   0, 0, 0, 1, 0,
      0,   0,   1,   'a', 1,   0,   0,   0,   0, 0, 0, 0};
  static const unsigned char bodies[][12] = {
      {0x06, 0, 2, 0x05, 1, 'b', 0x02, 0x05, 1, 'a', 0x02}, /* order */
      {0x06, 0, 2, 0x05, 1, 'a', 0x02, 0x05, 1, 'a', 0x02}, /* dup */
      {0x06, 0, 1, 0x03, 2, 0x02},                          /* key 1 in hash */
      {0x06, 0, 1, 0x04, 0, 0, 0, 0, 0, 0, 0, 0x40},        /* key 2.0 */
      {0x06, 1, 0, 0x07},                                   /* unknown tag */
      {0x06, 0x80, 0, 0x02},          /* non-minimal varint */
      {0x06, 0, 1, 0x06, 0, 0, 0x02}, /* table as key */
  };
  static const size_t blen[] = {11, 11, 6, 12, 4, 4, 7};
  vh_buf_t z;
  vh_buf_init(&z);
  for (size_t i = 0; i < sizeof blen / sizeof blen[0]; i++) {
    unsigned char raw[128];
    size_t n = 0;
    memcpy(raw, head, sizeof head);
    n = sizeof head;
    memcpy(raw + n, bodies[i], blen[i]);
    n += blen[i];
    te_pack(raw, n, &z);
    vh_tab_t *back[1];
    vh_export_header_t h;
    size_t got;
    char *msg = NULL;
    ASSERT_EQ(te_import(z.p, z.len, 0, back, &got, &h, &msg), VH_ECORRUPT);
    ASSERT(strstr(msg, "damaged") != NULL);
    free(msg);
  }
  vh_buf_free(&z);
  ASSERT_CLEAN();
}

VH_TEST_MAIN(TEST_ENTRY(roundtrip_random), TEST_ENTRY(roundtrip_big),
             TEST_ENTRY(roundtrip_deep), TEST_ENTRY(depth_limit),
             TEST_ENTRY(header_refuses_what_the_host_refuses),
             TEST_ENTRY(canonical_whatever_history), TEST_ENTRY(byte_layout),
             TEST_ENTRY(lazy_state_exports_the_same),
             TEST_ENTRY(every_raw_byte_damaged_is_refused),
             TEST_ENTRY(compressed_damage_and_truncation),
             TEST_ENTRY(noncanonical_streams_refused))
