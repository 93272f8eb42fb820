/*
 * store_versions.c - the history records of the store: versions, death
 * lists, marks, pinned entries, the history header (API: vh_versions.h;
 * the rules that write and drop them: host/history.c).
 *
 * KEYS (beside 'F', 'M', 'A' (nodes), 'Q' of persist/store/store.c; big endian
 * numbers so keys sort by them):
 *
 *   'V' u64be(seq)                    version record
 *   'D' u64be(d) u64be(s)             death list chunk of version d,
 *                                     written by the batch of seq s
 *   'H'                               history header (one)
 *   'K' name                          mark (name: vh_mark_name_ok)
 *   'P' u64be(m) u64be(d) u64be(id)   entry of death list d pinned by the
 *                                     mark on version m
 *
 * VALUES are framed like nodes (store.c: u32 CRC-32C, kind << 4 | 1) with
 * kinds V 0x3, D 0x4, K 0x5, P 0x6, H 0x7. Payloads, little endian, each
 * opening with u32 layout version 1 (a newer one is refused, VH_EFORMAT):
 *
 *   V  u32 layout, i64 time_ms, u32 events, u64 keys_changed,
 *      u32 nchanged, nchanged x (u16 len 1..255, name bytes),
 *      u32 manifest length L, L bytes of manifest (vh_manifest.h layout:
 *      seq, next_id, sys root, every domain's root and version)
 *   D  u32 layout, u64 est_bytes (estimated disk of the entries), u32 n,
 *      n x u64 entry (id << 1 | subtree: 1 = a never-loaded subtree root
 *      whose whole stored subtree died with it)
 *   H  u32 layout, u64 oldest, u64 newest, u64 count, u64 bytes,
 *      u64 pinned_bytes, u64 pinned, u32 avg_node, i64 newest_time,
 *      u64 newest_next_id (vh_history_t)
 *   K  u32 layout, u64 seq, i64 time_ms, u64 next_id, u64 bytes
 *      (also the value of 'K' 0x01 u64be(seq): a mark being removed, whose
 *      pinned entries are still being re-examined; never a valid name)
 *   P  u8 subtree (the key holds the rest)
 *
 * Sweep keys ('Q' id) may now carry a raw (unframed) 8-byte value: u64
 * little endian d, the version whose batch dropped that subtree; the
 * sweeper pins a child instead of deleting it when a mark below d holds
 * it. An empty value (older stores, vh_batch_put_sweep) means d unknown
 * (no mark checks: there was no mark then).
 *
 * Nothing here decides what to keep: host/history.c does, in the slice's
 * batch. Reads verify every record (invariant 8 of ARCHITECTURE.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "vh_bytes.h"
#include "vh_codec.h"
#include "vh_versions.h"

#define VH_REC_LAYOUT 1
#define VH_DEATH_KEY_LEN 17
#define VH_PIN_KEY_LEN 25
#define VH_VERSION_KEY_LEN 9
#define VH_HISTORY_LEN 72
#define VH_MARK_LEN 36
#define VH_MARK_NAME_MAX 64

static void key_u64s(unsigned char *k, char tag, const uint64_t *v, int n) {
  k[0] = (unsigned char)tag;
  for (int i = 0; i < n; i++) vh_be64_store(k + 1 + 8 * i, v[i]);
}

void vh_retain_default(vh_retain_t *r) {
  memset(r, 0, sizeof *r);
  r->age_ms = 15 * 60 * 1000;
  r->bytes = (uint64_t)1 << 30;
  r->bytes_default = 1;
}

int vh_mark_name_ok(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > VH_MARK_NAME_MAX) return 0;
  char c0 = name[0];
  if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '_'))
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
      return 0;
  }
  return 1;
}

/* ---- version records ---- */

void vh_version_free(vh_version_t *v) {
  if (v == NULL) return;
  for (size_t i = 0; i < v->nchanged; i++) free(v->changed[i]);
  free(v->changed);
  vh_manifest_free(&v->m);
  memset(v, 0, sizeof *v);
}

int vh_version_encode(const vh_version_t *v, const void *man, size_t manlen,
                      void **out, size_t *len) {
  vh_buf_t b;
  vh_buf_init(&b);
  unsigned char h[32];
  vh_le32_store(h, VH_REC_LAYOUT);
  vh_le64_store(h + 4, (uint64_t)v->time_ms);
  vh_le32_store(h + 12, v->events);
  vh_le64_store(h + 16, v->keys_changed);
  vh_le32_store(h + 24, (uint32_t)v->nchanged);
  int rc = vh_buf_put(&b, h, 28);
  for (size_t i = 0; rc == 0 && i < v->nchanged; i++) {
    size_t n = strlen(v->changed[i]);
    if (n == 0 || n > 255) {
      rc = VH_EINVAL;
      break;
    }
    unsigned char l[2];
    vh_le16_store(l, (uint16_t)n);
    rc = vh_buf_put(&b, l, 2);
    if (rc == 0) rc = vh_buf_put(&b, v->changed[i], n);
  }
  if (rc == 0) {
    unsigned char l[4];
    vh_le32_store(l, (uint32_t)manlen);
    rc = vh_buf_put(&b, l, 4);
  }
  if (rc == 0 && manlen) rc = vh_buf_put(&b, man, manlen);
  if (rc != 0) {
    vh_buf_free(&b);
    return rc;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}

static int rec_bad(char **errmsg, const char *what, uint64_t seq,
                   const char *why) {
  vh_store__set_msg(
      errmsg, vh_store__msg("%s %llu: %s", what, (unsigned long long)seq, why));
  return VH_ECORRUPT;
}

static int rec_layout(const unsigned char *p, size_t len, const char *what,
                      uint64_t seq, char **errmsg) {
  if (len < 4) return rec_bad(errmsg, what, seq, "record too short");
  uint32_t lay = vh_le32_load(p);
  if (lay == 0) return rec_bad(errmsg, what, seq, "layout version 0");
  if (lay > VH_REC_LAYOUT) {
    vh_store__set_msg(
        errmsg, vh_store__msg("%s %llu: record layout %u is newer than "
                              "this vedhost supports (%d); run a newer "
                              "vedhost",
                              what, (unsigned long long)seq, (unsigned)lay,
                              VH_REC_LAYOUT));
    return VH_EFORMAT;
  }
  return 0;
}

int vh_version_decode(const void *pv, size_t len, uint64_t seq, vh_version_t *v,
                      char **errmsg) {
  const unsigned char *p = pv;
  memset(v, 0, sizeof *v);
  if (errmsg) *errmsg = NULL;
  int rc = rec_layout(p, len, "version", seq, errmsg);
  if (rc != 0) return rc;
  if (len < 28) return rec_bad(errmsg, "version", seq, "record too short");
  v->seq = seq;
  v->time_ms = (int64_t)vh_le64_load(p + 4);
  v->events = vh_le32_load(p + 12);
  v->keys_changed = vh_le64_load(p + 16);
  uint32_t nc = vh_le32_load(p + 24);
  size_t at = 28;
  if (nc > (len - at) / 3) {
    return rec_bad(errmsg, "version", seq, "bad count of changed domains");
  }
  v->changed = calloc(nc ? nc : 1, sizeof *v->changed);
  if (v->changed == NULL) return VH_ENOMEM;
  for (uint32_t i = 0; i < nc; i++) {
    if (len - at < 2) goto bad;
    size_t n = vh_le16_load(p + at);
    at += 2;
    if (n == 0 || n > 255 || len - at < n) goto bad;
    v->changed[i] = malloc(n + 1);
    if (v->changed[i] == NULL) {
      vh_version_free(v);
      return VH_ENOMEM;
    }
    memcpy(v->changed[i], p + at, n);
    v->changed[i][n] = '\0';
    v->nchanged = i + 1;
    at += n;
  }
  if (len - at < 4) goto bad;
  size_t ml = vh_le32_load(p + at);
  at += 4;
  if (len - at != ml) goto bad;
  char *m = NULL;
  rc = vh_manifest_decode(p + at, ml, &v->m, &m);
  if (rc != 0) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("version %llu: manifest: %s",
                                    (unsigned long long)seq, m ? m : "bad"));
    free(m);
    vh_version_free(v);
    return rc;
  }
  if (v->m.seq != seq) {
    vh_version_free(v);
    return rec_bad(errmsg, "version", seq, "manifest of another seq");
  }
  return 0;
bad:
  vh_version_free(v);
  return rec_bad(errmsg, "version", seq, "malformed record");
}

int vh_batch_put_version(vh_batch_t *b, uint64_t seq, const void *payload,
                         size_t len) {
  unsigned char k[VH_VERSION_KEY_LEN];
  key_u64s(k, VH_KEY_VERSION, &seq, 1);
  return vh_batch__key_op(b, k, sizeof k, VH_KIND_VERSION, payload, len);
}

int vh_batch_del_version(vh_batch_t *b, uint64_t seq) {
  unsigned char k[VH_VERSION_KEY_LEN];
  key_u64s(k, VH_KEY_VERSION, &seq, 1);
  int rc = vh_batch__del_inputs(b, seq); /* its input log goes with it */
  if (rc == 0) rc = vh_batch__del_chrec(b, seq); /* its change record too */
  return rc ? rc : vh_batch__key_op(b, k, sizeof k, -1, NULL, 0);
}

/* ---- death lists ---- */

int vh_batch_put_deaths(vh_batch_t *b, uint64_t d, uint64_t s,
                        const uint64_t *ents, size_t n, uint64_t est_bytes) {
  if (n > UINT32_MAX || n > (SIZE_MAX - 16) / 8) return VH_ENOMEM;
  size_t len = 16 + 8 * n;
  unsigned char *p = malloc(len);
  if (p == NULL) return VH_ENOMEM;
  vh_le32_store(p, VH_REC_LAYOUT);
  vh_le64_store(p + 4, est_bytes);
  vh_le32_store(p + 12, (uint32_t)n);
  for (size_t i = 0; i < n; i++) vh_le64_store(p + 16 + 8 * i, ents[i]);
  uint64_t kv[2] = {d, s};
  unsigned char k[VH_DEATH_KEY_LEN];
  key_u64s(k, VH_KEY_DEATHS, kv, 2);
  int rc = vh_batch__key_op(b, k, sizeof k, VH_KIND_DEATHS, p, len);
  free(p);
  return rc;
}

int vh_batch_del_deaths(vh_batch_t *b, uint64_t d, uint64_t s) {
  uint64_t kv[2] = {d, s};
  unsigned char k[VH_DEATH_KEY_LEN];
  key_u64s(k, VH_KEY_DEATHS, kv, 2);
  return vh_batch__key_op(b, k, sizeof k, -1, NULL, 0);
}

/* Decodes a death chunk payload into a [new] array. */
static int deaths_decode(const unsigned char *p, size_t len, uint64_t d,
                         uint64_t **ents, size_t *n, uint64_t *est,
                         char **errmsg) {
  int rc = rec_layout(p, len, "death list", d, errmsg);
  if (rc != 0) return rc;
  if (len < 16) return rec_bad(errmsg, "death list", d, "record too short");
  *est = vh_le64_load(p + 4);
  size_t cnt = vh_le32_load(p + 12);
  if ((len - 16) / 8 != cnt || (len - 16) % 8 != 0)
    return rec_bad(errmsg, "death list", d, "bad entry count");
  uint64_t *e = malloc((cnt ? cnt : 1) * sizeof *e);
  if (e == NULL) return VH_ENOMEM;
  for (size_t i = 0; i < cnt; i++) e[i] = vh_le64_load(p + 16 + 8 * i);
  *ents = e;
  *n = cnt;
  return 0;
}

/* ---- header, marks, pins ---- */

int vh_batch_put_history(vh_batch_t *b, const vh_history_t *h) {
  unsigned char p[VH_HISTORY_LEN];
  vh_le32_store(p, VH_REC_LAYOUT);
  vh_le64_store(p + 4, h->oldest);
  vh_le64_store(p + 12, h->newest);
  vh_le64_store(p + 20, h->count);
  vh_le64_store(p + 28, h->bytes);
  vh_le64_store(p + 36, h->pinned_bytes);
  vh_le64_store(p + 44, h->pinned);
  vh_le32_store(p + 52, h->avg_node);
  vh_le64_store(p + 56, (uint64_t)h->newest_time);
  vh_le64_store(p + 64, h->newest_next_id);
  char k = VH_KEY_HISTORY;
  return vh_batch__key_op(b, &k, 1, VH_KIND_HISTORY, p, sizeof p);
}

int vh_store_history(vh_store_t *s, vh_history_t *out, char **errmsg) {
  memset(out, 0, sizeof *out);
  if (errmsg) *errmsg = NULL;
  char k = VH_KEY_HISTORY;
  void *p = NULL;
  size_t len = 0;
  int rc = vh_store__get_value(s, &k, 1, VH_KIND_HISTORY, "history header", &p,
                               &len, errmsg);
  if (rc == VH_ENOENT) {
    if (errmsg) {
      free(*errmsg);
      *errmsg = NULL;
    }
    return 0;
  }
  if (rc != 0) return rc;
  const unsigned char *u = p;
  rc = rec_layout(u, len, "history header", 0, errmsg);
  if (rc == 0 && len != VH_HISTORY_LEN)
    rc = rec_bad(errmsg, "history header", 0, "wrong length");
  if (rc == 0) {
    out->oldest = vh_le64_load(u + 4);
    out->newest = vh_le64_load(u + 12);
    out->count = vh_le64_load(u + 20);
    out->bytes = vh_le64_load(u + 28);
    out->pinned_bytes = vh_le64_load(u + 36);
    out->pinned = vh_le64_load(u + 44);
    out->avg_node = vh_le32_load(u + 52);
    out->newest_time = (int64_t)vh_le64_load(u + 56);
    out->newest_next_id = vh_le64_load(u + 64);
  }
  free(p);
  return rc;
}

static int put_mark_key(vh_batch_t *b, const unsigned char *k, size_t klen,
                        const vh_mark_t *m) {
  unsigned char p[VH_MARK_LEN];
  vh_le32_store(p, VH_REC_LAYOUT);
  vh_le64_store(p + 4, m->seq);
  vh_le64_store(p + 12, (uint64_t)m->time_ms);
  vh_le64_store(p + 20, m->next_id);
  vh_le64_store(p + 28, m->bytes);
  return vh_batch__key_op(b, k, klen, VH_KIND_MARK, p, sizeof p);
}

int vh_batch_put_mark(vh_batch_t *b, const vh_mark_t *m) {
  size_t n = strlen(m->name);
  if (n == 0 || n > VH_MARK_NAME_MAX) return VH_EINVAL;
  unsigned char k[1 + VH_MARK_NAME_MAX];
  k[0] = VH_KEY_MARK;
  memcpy(k + 1, m->name, n);
  return put_mark_key(b, k, 1 + n, m);
}

int vh_batch_put_mark_removing(vh_batch_t *b, const vh_mark_t *m) {
  unsigned char k[10];
  k[0] = VH_KEY_MARK;
  k[1] = 0x01;
  vh_be64_store(k + 2, m->seq);
  return put_mark_key(b, k, sizeof k, m);
}

int vh_batch_del_mark_removing(vh_batch_t *b, uint64_t seq) {
  unsigned char k[10];
  k[0] = VH_KEY_MARK;
  k[1] = 0x01;
  vh_be64_store(k + 2, seq);
  return vh_batch__key_op(b, k, sizeof k, -1, NULL, 0);
}

int vh_batch_del_mark(vh_batch_t *b, const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > VH_MARK_NAME_MAX) return VH_EINVAL;
  unsigned char k[1 + VH_MARK_NAME_MAX];
  k[0] = VH_KEY_MARK;
  memcpy(k + 1, name, n);
  return vh_batch__key_op(b, k, 1 + n, -1, NULL, 0);
}

int vh_batch_put_pin(vh_batch_t *b, uint64_t m, uint64_t d, uint64_t ent) {
  uint64_t kv[3] = {m, d, VH_DEAD_ID(ent)};
  unsigned char k[VH_PIN_KEY_LEN], v = (unsigned char)VH_DEAD_SUBTREE(ent);
  key_u64s(k, VH_KEY_PIN, kv, 3);
  return vh_batch__key_op(b, k, sizeof k, VH_KIND_PIN, &v, 1);
}

int vh_batch_del_pin(vh_batch_t *b, uint64_t m, uint64_t d, uint64_t id) {
  uint64_t kv[3] = {m, d, id};
  unsigned char k[VH_PIN_KEY_LEN];
  key_u64s(k, VH_KEY_PIN, kv, 3);
  return vh_batch__key_op(b, k, sizeof k, -1, NULL, 0);
}

void vh_marks_free(vh_mark_t *m, size_t n) {
  for (size_t i = 0; m && i < n; i++) free(m[i].name);
  free(m);
}

/* ---- scans ---- */

typedef vh_store__scan_fn scan_fn;

/* Read options for a scan of the keys that start with prefix: checksums
 * verified, blocks not kept in the block cache, bounded above by the
 * prefix's successor so a scan never reads past its keys. *hi holds the
 * bound; [new] options.
 * NO CACHE FILL: the history engine reads each death list once, when its
 * version drops (a few keys, on the loop thread); cached, those blocks
 * stayed in the cache for nothing, allocated in the loop thread's heap:
 * after 10M updates at K=1M (default --retain, the window dropping 1-3
 * versions a slice) they were ~33 MB of its 90 MB (bench/README.md,
 * "Memory after a long history"). A scan that meets a block again (the
 * next version's chunks are its neighbours) reads it from the OS's page
 * cache and decompresses 4 KB: microseconds. */
static rocksdb_readoptions_t *scan_opts(const unsigned char *prefix,
                                        size_t plen, unsigned char *hi,
                                        size_t *hlen) {
  rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
  rocksdb_readoptions_set_verify_checksums(ro, 1);
  rocksdb_readoptions_set_fill_cache(ro, 0);
  memcpy(hi, prefix, plen);
  size_t n = plen;
  while (n > 0 && hi[n - 1] == 0xff) n--; /* 'V' ff..: no bound needed */
  if (n > 0) {
    hi[n - 1]++;
    *hlen = n;
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, n);
  }
  return ro;
}

int vh_store__scan(vh_store_t *s, const unsigned char *prefix, size_t plen,
                   int kind, int reverse, scan_fn fn, void *arg,
                   char **errmsg) {
  if (errmsg) *errmsg = NULL;
  int rc = vh_store__read_lock(s, "history scan", errmsg);
  if (rc != 0) return rc;
  unsigned char hi[32];
  size_t hlen = 0;
  rocksdb_readoptions_t *ro = scan_opts(prefix, plen, hi, &hlen);
  rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
  if (it == NULL) {
    rocksdb_readoptions_destroy(ro);
    pthread_rwlock_unlock(&s->db_lock);
    return VH_ENOMEM;
  }
  if (!reverse) {
    rocksdb_iter_seek(it, (const char *)prefix, plen);
  } else {
    unsigned char end[32];
    memcpy(end, prefix, plen);
    memset(end + plen, 0xff, sizeof end - plen);
    rocksdb_iter_seek_for_prev(it, (const char *)end, sizeof end);
  }
  rc = 0;
  for (; rocksdb_iter_valid(it);
       reverse ? rocksdb_iter_prev(it) : rocksdb_iter_next(it)) {
    size_t klen = 0, vlen = 0;
    const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &klen);
    if (klen < plen || memcmp(k, prefix, plen) != 0) break;
    const char *v = rocksdb_iter_value(it, &vlen);
    if (kind < 0) {
      rc = fn(arg, k, klen, (const unsigned char *)v, vlen, errmsg);
    } else {
      void *p = NULL;
      size_t len = 0;
      char what[48];
      snprintf(what, sizeof what, "history record '%c'", k[0]);
      rc = vh_store__verify(v, vlen, kind, what, &p, &len, errmsg);
      if (rc == 0) rc = fn(arg, k, klen, p, len, errmsg);
      free(p);
    }
    if (rc != 0) break;
  }
  if (rc == 0) {
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr) rc = vh_store__rocks_err(rerr, "history scan", errmsg);
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  pthread_rwlock_unlock(&s->db_lock);
  return rc;
}

typedef struct each_ctx {
  int (*fn)(void *arg, const vh_version_t *v);
  void *arg;
} each_ctx_t;

static int each_one(void *arg, const unsigned char *k, size_t klen,
                    const unsigned char *p, size_t len, char **errmsg) {
  each_ctx_t *c = arg;
  if (klen != VH_VERSION_KEY_LEN) return 0; /* not ours */
  vh_version_t v;
  int rc = vh_version_decode(p, len, vh_be64_load(k + 1), &v, errmsg);
  if (rc != 0) return rc;
  rc = c->fn(c->arg, &v);
  vh_version_free(&v);
  return rc;
}

int vh_store_versions_each(vh_store_t *s, int newest_first,
                           int (*fn)(void *arg, const vh_version_t *v),
                           void *arg, char **errmsg) {
  each_ctx_t c = {fn, arg};
  unsigned char pre = VH_KEY_VERSION;
  return vh_store__scan(s, &pre, 1, VH_KIND_VERSION, newest_first, each_one, &c,
                        errmsg);
}

int vh_store_version_get(vh_store_t *s, uint64_t seq, vh_version_t *out,
                         char **errmsg) {
  memset(out, 0, sizeof *out);
  if (errmsg) *errmsg = NULL;
  unsigned char k[VH_VERSION_KEY_LEN];
  key_u64s(k, VH_KEY_VERSION, &seq, 1);
  char what[40];
  snprintf(what, sizeof what, "version %llu", (unsigned long long)seq);
  void *p = NULL;
  size_t len = 0;
  int rc = vh_store__get_value(s, (const char *)k, sizeof k, VH_KIND_VERSION,
                               what, &p, &len, errmsg);
  if (rc == VH_ENOENT) {
    if (errmsg) {
      free(*errmsg);
      *errmsg = NULL;
    }
    vh_history_t h;
    if (vh_store_history(s, &h, NULL) != 0 || h.newest == 0)
      vh_store__set_msg(errmsg,
                        vh_store__msg("unknown version %llu: no version is "
                                      "retained",
                                      (unsigned long long)seq));
    else if (seq > h.newest)
      vh_store__set_msg(
          errmsg,
          vh_store__msg("unknown version %llu (the newest is "
                        "%llu)",
                        (unsigned long long)seq, (unsigned long long)h.newest));
    else
      vh_store__set_msg(
          errmsg,
          vh_store__msg("version %llu is not retained (the "
                        "oldest retained is %llu)",
                        (unsigned long long)seq, (unsigned long long)h.oldest));
    return VH_ENOENT;
  }
  if (rc != 0) return rc;
  rc = vh_version_decode(p, len, seq, out, errmsg);
  free(p);
  return rc;
}

typedef struct vscan_ctx {
  int (*fn)(void *arg, uint64_t seq, int64_t time_ms, size_t bytes);
  void *arg;
  size_t left;
} vscan_ctx_t;

static int vscan_one(void *arg, const unsigned char *k, size_t klen,
                     const unsigned char *p, size_t len, char **errmsg) {
  vscan_ctx_t *c = arg;
  if (klen != VH_VERSION_KEY_LEN) return 0;
  if (c->left == 0) return 1;
  c->left--;
  uint64_t seq = vh_be64_load(k + 1);
  /* p is the raw framed value here: check the frame, decode the head. */
  void *pay = NULL;
  size_t plen = 0;
  int rc = vh_store__verify((const char *)p, len, VH_KIND_VERSION, "version",
                            &pay, &plen, errmsg);
  if (rc != 0) return rc;
  rc = rec_layout(pay, plen, "version", seq, errmsg);
  if (rc == 0 && plen < 12)
    rc = rec_bad(errmsg, "version", seq, "record too short");
  int64_t t = rc == 0 ? (int64_t)vh_le64_load((unsigned char *)pay + 4) : 0;
  free(pay);
  if (rc != 0) return rc;
  return c->fn(c->arg, seq, t, len + klen);
}

int vh_store_version_scan(vh_store_t *s, uint64_t from, size_t max,
                          int (*fn)(void *arg, uint64_t seq, int64_t time_ms,
                                    size_t bytes),
                          void *arg, char **errmsg) {
  vscan_ctx_t c = {fn, arg, max};
  unsigned char k[VH_VERSION_KEY_LEN];
  key_u64s(k, VH_KEY_VERSION, &from, 1);
  /* seek at 'V' from, but match the 1-byte prefix */
  if (errmsg) *errmsg = NULL;
  int rc = vh_store__read_lock(s, "history scan", errmsg);
  if (rc != 0) return rc;
  unsigned char pre = VH_KEY_VERSION, hi[32];
  size_t hlen = 0;
  rocksdb_readoptions_t *ro = scan_opts(&pre, 1, hi, &hlen);
  rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
  rc = 0;
  for (rocksdb_iter_seek(it, (const char *)k, sizeof k); rocksdb_iter_valid(it);
       rocksdb_iter_next(it)) {
    size_t klen = 0, vlen = 0;
    const unsigned char *kk =
        (const unsigned char *)rocksdb_iter_key(it, &klen);
    if (klen < 1 || kk[0] != VH_KEY_VERSION) break;
    const char *v = rocksdb_iter_value(it, &vlen);
    rc = vscan_one(&c, kk, klen, (const unsigned char *)v, vlen, errmsg);
    if (rc != 0) break;
  }
  if (rc == 0) {
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    if (rerr) rc = vh_store__rocks_err(rerr, "history scan", errmsg);
  }
  rocksdb_iter_destroy(it);
  rocksdb_readoptions_destroy(ro);
  pthread_rwlock_unlock(&s->db_lock);
  return rc == 1 ? 0 : rc;
}

typedef struct dscan_ctx {
  int (*fn)(void *arg, uint64_t s, const uint64_t *ents, size_t n,
            uint64_t est_bytes);
  int (*fn_all)(void *arg, uint64_t d, uint64_t s, const uint64_t *ents,
                size_t n, uint64_t est_bytes);
  void *arg;
} dscan_ctx_t;

static int dscan_one(void *arg, const unsigned char *k, size_t klen,
                     const unsigned char *p, size_t len, char **errmsg) {
  dscan_ctx_t *c = arg;
  if (klen != VH_DEATH_KEY_LEN) return 0;
  uint64_t d = vh_be64_load(k + 1), sq = vh_be64_load(k + 9);
  uint64_t *ents = NULL, est = 0;
  size_t n = 0;
  int rc = deaths_decode(p, len, d, &ents, &n, &est, errmsg);
  if (rc != 0) return rc;
  rc = c->fn ? c->fn(c->arg, sq, ents, n, est)
             : c->fn_all(c->arg, d, sq, ents, n, est);
  free(ents);
  return rc;
}

int vh_store_deaths_each(vh_store_t *s, uint64_t d,
                         int (*fn)(void *arg, uint64_t s, const uint64_t *ents,
                                   size_t n, uint64_t est_bytes),
                         void *arg, char **errmsg) {
  dscan_ctx_t c = {fn, NULL, arg};
  unsigned char k[VH_VERSION_KEY_LEN];
  key_u64s(k, VH_KEY_DEATHS, &d, 1);
  return vh_store__scan(s, k, sizeof k, VH_KIND_DEATHS, 0, dscan_one, &c,
                        errmsg);
}

int vh_store_deaths_all(vh_store_t *s,
                        int (*fn)(void *arg, uint64_t d, uint64_t s,
                                  const uint64_t *ents, size_t n,
                                  uint64_t est_bytes),
                        void *arg, char **errmsg) {
  dscan_ctx_t c = {NULL, fn, arg};
  unsigned char pre = VH_KEY_DEATHS;
  return vh_store__scan(s, &pre, 1, VH_KIND_DEATHS, 0, dscan_one, &c, errmsg);
}

typedef struct pscan_ctx {
  int (*fn)(void *arg, uint64_t m, uint64_t d, uint64_t ent);
  void *arg;
} pscan_ctx_t;

static int pscan_one(void *arg, const unsigned char *k, size_t klen,
                     const unsigned char *p, size_t len, char **errmsg) {
  pscan_ctx_t *c = arg;
  if (klen != VH_PIN_KEY_LEN) return 0;
  if (len != 1)
    return rec_bad(errmsg, "pinned entry", vh_be64_load(k + 17),
                   "wrong length");
  return c->fn(c->arg, vh_be64_load(k + 1), vh_be64_load(k + 9),
               VH_DEAD(vh_be64_load(k + 17), p[0] & 1));
}

int vh_store_pins_each(vh_store_t *s, uint64_t m,
                       int (*fn)(void *arg, uint64_t m, uint64_t d,
                                 uint64_t ent),
                       void *arg, char **errmsg) {
  pscan_ctx_t c = {fn, arg};
  unsigned char k[VH_VERSION_KEY_LEN];
  key_u64s(k, VH_KEY_PIN, &m, 1);
  return vh_store__scan(s, k, m ? sizeof k : 1, VH_KIND_PIN, 0, pscan_one, &c,
                        errmsg);
}

typedef struct mscan_ctx {
  vh_mark_t *v;
  size_t n, cap;
} mscan_ctx_t;

static int mscan_one(void *arg, const unsigned char *k, size_t klen,
                     const unsigned char *p, size_t len, char **errmsg) {
  mscan_ctx_t *c = arg;
  if (klen < 2 || klen > 1 + VH_MARK_NAME_MAX || k[1] == 0x01) return 0;
  int rc = rec_layout(p, len, "mark", 0, errmsg);
  if (rc != 0) return rc;
  if (len != VH_MARK_LEN) return rec_bad(errmsg, "mark", 0, "wrong length");
  if (vh_grow(&c->v, &c->cap, c->n + 1, sizeof *c->v) != 0) return VH_ENOMEM;
  vh_mark_t *m = &c->v[c->n];
  m->name = malloc(klen);
  if (m->name == NULL) return VH_ENOMEM;
  memcpy(m->name, k + 1, klen - 1);
  m->name[klen - 1] = '\0';
  m->seq = vh_le64_load(p + 4);
  m->time_ms = (int64_t)vh_le64_load(p + 12);
  m->next_id = vh_le64_load(p + 20);
  m->bytes = vh_le64_load(p + 28);
  c->n++;
  return 0;
}

int vh_store_marks(vh_store_t *s, vh_mark_t **out, size_t *n, char **errmsg) {
  mscan_ctx_t c = {0};
  unsigned char pre = VH_KEY_MARK;
  int rc = vh_store__scan(s, &pre, 1, VH_KIND_MARK, 0, mscan_one, &c, errmsg);
  if (rc != 0) {
    vh_marks_free(c.v, c.n);
    *out = NULL;
    *n = 0;
    return rc;
  }
  *out = c.v;
  *n = c.n;
  return 0;
}

typedef struct rscan_ctx {
  int (*fn)(void *arg, const vh_mark_t *m);
  void *arg;
} rscan_ctx_t;

static int rscan_one(void *arg, const unsigned char *k, size_t klen,
                     const unsigned char *p, size_t len, char **errmsg) {
  rscan_ctx_t *c = arg;
  if (klen != 10) return 0;
  int rc = rec_layout(p, len, "mark", 0, errmsg);
  if (rc != 0) return rc;
  if (len != VH_MARK_LEN) return rec_bad(errmsg, "mark", 0, "wrong length");
  vh_mark_t m = {NULL, vh_le64_load(p + 4), (int64_t)vh_le64_load(p + 12),
                 vh_le64_load(p + 20), vh_le64_load(p + 28)};
  return c->fn(c->arg, &m);
}

int vh_store_marks_removing(vh_store_t *s,
                            int (*fn)(void *arg, const vh_mark_t *m), void *arg,
                            char **errmsg) {
  rscan_ctx_t c = {fn, arg};
  unsigned char pre[2] = {VH_KEY_MARK, 0x01};
  return vh_store__scan(s, pre, 2, VH_KIND_MARK, 0, rscan_one, &c, errmsg);
}

/* ---- sweeping with marks ---- */

typedef struct qscan_ctx {
  int (*fn)(void *arg, uint64_t id, uint64_t d);
  void *arg;
} qscan_ctx_t;

static int qscan_one(void *arg, const unsigned char *k, size_t klen,
                     const unsigned char *p, size_t len, char **errmsg) {
  (void)errmsg;
  qscan_ctx_t *c = arg;
  if (klen != VH_NODE_KEY_LEN) return 0;
  uint64_t d = len == 8 ? vh_le64_load(p) : 0;
  int rc = c->fn(c->arg, vh_be64_load(k + 1), d);
  return rc < 0 ? rc : 0;
}

int vh_store_sweep_list_at(vh_store_t *s,
                           int (*fn)(void *arg, uint64_t id, uint64_t d),
                           void *arg, char **errmsg) {
  qscan_ctx_t c = {fn, arg};
  unsigned char pre = VH_KEY_SWEEP;
  return vh_store__scan(s, &pre, 1, -1, 0, qscan_one, &c, errmsg);
}

typedef struct sweep_at_ctx {
  vh_batch_t *b;
  uint64_t d;
  int (*pin)(void *arg, uint64_t c, uint64_t d);
  int (*child)(void *arg, uint64_t c, uint64_t d);
  void *arg;
} sweep_at_ctx_t;

static int sweep_at_child(void *arg, uint64_t id) {
  sweep_at_ctx_t *c = arg;
  int rc = c->pin ? c->pin(c->arg, id, c->d) : 0;
  if (rc != 0) return rc < 0 ? rc : 0;
  rc = vh_batch_put_sweep_at(c->b, id, c->d);
  if (rc == 0 && c->child != NULL) rc = c->child(c->arg, id, c->d);
  return rc;
}

int vh_store_sweep_node_at(vh_store_t *s, vh_batch_t *b, uint64_t id,
                           uint64_t d,
                           int (*pin)(void *arg, uint64_t c, uint64_t d),
                           int (*child)(void *arg, uint64_t c, uint64_t d),
                           void *arg, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  void *bytes = NULL;
  size_t len = 0;
  char *m = NULL;
  int rc = vh_store_get_node(s, id, &bytes, &len, &m);
  if (rc == VH_EIO || rc == VH_ENOMEM) {
    vh_store__set_msg(errmsg, m);
    return rc;
  }
  free(m);
  if (rc == 0) {
    sweep_at_ctx_t c = {b, d, pin, child, arg};
    const char *why = NULL;
    rc = vh_codec_child_ids(bytes, len, sweep_at_child, &c, NULL, &why);
    free(bytes);
    if (rc == VH_ENOMEM) {
      vh_store__set_msg(errmsg,
                        vh_store__msg("sweeping node %llu: out of memory",
                                      (unsigned long long)id));
      return rc;
    }
    rc = rc == 0 ? vh_batch_del_node(b, id) : 0; /* undecodable: for fsck */
  } else {
    rc = 0;
  }
  if (rc == 0) rc = vh_batch_del_sweep(b, id);
  if (rc != 0)
    vh_store__set_msg(errmsg, vh_store__msg("sweeping node %llu: out of memory",
                                            (unsigned long long)id));
  return rc;
}

uint64_t vh_store_live_bytes(vh_store_t *s) {
  uint64_t v = 0;
  if (pthread_rwlock_tryrdlock(&s->db_lock) != 0) return 0;
  if (s->db == NULL ||
      vh_store__prop(s, "rocksdb.estimate-live-data-size", &v) != 0)
    v = 0;
  pthread_rwlock_unlock(&s->db_lock);
  return v;
}
