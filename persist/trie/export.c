/*
 * export.c - writing and reading the export stream (vh_export.h, where the
 * byte layout is documented).
 *
 * WHY A LOGICAL STREAM. The store's bytes name nodes by id and follow the
 * trie's shape, which depends on history (which integer keys sit in the
 * array part, which nodes were copied). A backup must move between hosts
 * and survive changes of the node format, so the stream holds only what a
 * Lua program can observe: each table's (key, value) pairs, written in a
 * canonical order computed from the contents alone. Two states with the
 * same contents give the same raw bytes, whatever built them.
 *
 * WRITER. A pre-order walk on an explicit heap stack (a state nests up to
 * VH_MAX_DEPTH tables, one written by an older vedhost deeper: recursion
 * could overflow the C stack). A state deeper than the limit is refused
 * (the reader would refuse it), as is a stream that nests deeper. Each
 * table on the stack is a frame holding its entries, collected with vh_iter
 * (which faults nodes in through the trie's loader) and sorted into the
 * canonical order; the entries' keys and values are borrowed from the
 * table, which the caller keeps alive and unchanged. Raw bytes go into a
 * 128 KB buffer; a full buffer is CRC'd and handed to ZSTD_compressStream2,
 * whose output goes to the caller's write callback.
 *
 * READER. The mirror: ZSTD_decompressStream fills a window of raw bytes;
 * the parser pulls from it and keeps a stack of tables under construction
 * (each built under the caller's edit token, so sets mutate in place). A
 * length is never trusted for an allocation: strings grow as their bytes
 * arrive and counts only bound loops, so a damaged length ends in
 * "truncated", not in a huge malloc. Everything is validated (tags,
 * varints, key order, counts, CRC, end of frame, end of input); the first
 * error is sticky and every later call returns it.
 *
 * INVARIANTS.
 *   1. The CRC covers every raw byte before the trailer's CRC field, in
 *      stream order (crc_pos marks how far it has been taken).
 *   2. A reader never returns a table built from bytes it could not parse;
 *      on error everything under construction is released.
 *   3. Writer and reader agree on the canonical order (cmp_key): the reader
 *      refuses a stream in any other order, so accepted streams re-export
 *      to the same bytes.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "vh_bytes.h"
#include "vh_codec.h"
#include "vh_crc32c.h"
#include "vh_export.h"
#include "vh_limits.h"

#define RAW_CAP (128 * 1024)
#define PROGRESS_STEP (4u << 20)

enum {
  TAG_FALSE = 0x01,
  TAG_TRUE = 0x02,
  TAG_INT = 0x03,
  TAG_FLOAT = 0x04,
  TAG_STR = 0x05,
  TAG_TAB = 0x06
};

static const char magic_head[8] = {'V', 'E', 'D', 'X', 'P', 'O', 'R', 'T'};
static const char magic_tail[8] = {'V', 'E', 'D', 'X', 'E', 'N', 'D', '.'};

/* Messages quote names read from the stream: control bytes become '?' so
 * that a message stays one line (found by fuzz/fuzz_export.c). */
static void one_line(char *buf) {
  for (unsigned char *p = (unsigned char *)buf; *p; p++)
    if (*p < 0x20 || *p == 0x7f) *p = '?';
}

/* A [new] formatted message in *errmsg (if errmsg != NULL); returns rc. */
static int fail(char **errmsg, int rc, const char *fmt, ...) {
  if (errmsg != NULL) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    one_line(buf);
    *errmsg = strdup(buf);
  }
  return rc;
}

/* ---- header ---- */

void vh_export_header_free(vh_export_header_t *h) {
  for (size_t i = 0; i < h->ndomains; i++) free(h->domains[i].name);
  free(h->domains);
  memset(h, 0, sizeof *h);
}

int vh_export_header_add(vh_export_header_t *h, const char *name,
                         int64_t version) {
  vh_export_domain_t *d =
      realloc(h->domains, (h->ndomains + 1) * sizeof *h->domains);
  if (d == NULL) return VH_ENOMEM;
  h->domains = d;
  d[h->ndomains].name = strdup(name);
  if (d[h->ndomains].name == NULL) return VH_ENOMEM;
  d[h->ndomains].version = version;
  h->ndomains++;
  return 0;
}

/* ---- the canonical key order (shared by writer and reader) ---- */

static int rank(const vh_val_t *k) {
  switch (k->type) {
    case VH_TBOOL:
      return 0;
    case VH_TINT:
      return 1;
    case VH_TFLOAT:
      return 2;
    default:
      return 3;
  }
}

/* <0, 0, >0 as a sorts before, equal to, after b (normalized keys). */
static int cmp_key(const vh_val_t *a, const vh_val_t *b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (a->type) {
    case VH_TBOOL:
      return a->u.b - b->u.b;
    case VH_TINT:
      return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    case VH_TFLOAT:
      return a->u.f < b->u.f ? -1 : a->u.f > b->u.f;
    default: {
      size_t la = vh_str_len(a->u.s), lb = vh_str_len(b->u.s);
      int c =
          memcmp(vh_str_data(a->u.s), vh_str_data(b->u.s), la < lb ? la : lb);
      if (c != 0) return c;
      return la < lb ? -1 : la > lb;
    }
  }
}

/* ================================ writer ================================ */

typedef struct ent {
  vh_val_t k, v; /* [borrowed] from the table walked */
} ent_t;

typedef struct wframe {
  ent_t *e;   /* [owned] entries in emission order */
  size_t n;   /* entries */
  size_t na;  /* the first na are the array run 1..na */
  size_t pos; /* next entry to write */
} wframe_t;

struct vh_export_writer {
  ZSTD_CCtx *cz;         /* [owned] */
  vh_export_write_fn fn; /* output */
  void *arg;
  unsigned char *raw;  /* [owned] RAW_CAP raw bytes not compressed yet */
  size_t rlen;         /* bytes in raw */
  size_t crc_pos;      /* raw[0..crc_pos) is already in crc */
  uint32_t crc;        /* CRC-32C of the raw bytes so far */
  unsigned char *zout; /* [owned] compressor output buffer */
  size_t zcap;
  wframe_t *stack; /* [owned] the walk's frames */
  size_t depth, scap;
  vh_export_stats_t st;
  uint64_t next_progress; /* raw_bytes at which to call progress */
  vh_export_progress_fn progress;
  void *parg;
  int state;          /* 0 new, 1 header written, 2 finished */
  int err;            /* sticky error (0 none) */
  size_t tables_left; /* tables the header still expects */
};

int vh_export_writer_new(vh_export_write_fn fn, void *arg, int level,
                         vh_export_writer_t **out) {
  vh_export_writer_t *w = calloc(1, sizeof *w);
  *out = NULL;
  if (w == NULL) return VH_ENOMEM;
  w->fn = fn;
  w->arg = arg;
  w->cz = ZSTD_createCCtx();
  w->raw = malloc(RAW_CAP);
  w->zcap = ZSTD_CStreamOutSize();
  w->zout = malloc(w->zcap);
  if (w->cz == NULL || w->raw == NULL || w->zout == NULL) {
    vh_export_writer_free(w);
    return VH_ENOMEM;
  }
  ZSTD_CCtx_setParameter(w->cz, ZSTD_c_compressionLevel,
                         level != 0 ? level : 3);
  ZSTD_CCtx_setParameter(w->cz, ZSTD_c_checksumFlag, 1);
  /* One worker thread compresses while this one walks (2-core machine);
   * a libzstd built without threads refuses it and we stay single. */
  ZSTD_CCtx_setParameter(w->cz, ZSTD_c_nbWorkers, 1);
  w->next_progress = PROGRESS_STEP;
  *out = w;
  return 0;
}

void vh_export_writer_set_progress(vh_export_writer_t *w,
                                   vh_export_progress_fn fn, void *arg) {
  w->progress = fn;
  w->parg = arg;
}

void vh_export_writer_free(vh_export_writer_t *w) {
  if (w == NULL) return;
  for (size_t i = 0; i < w->depth; i++) free(w->stack[i].e);
  free(w->stack);
  ZSTD_freeCCtx(w->cz);
  free(w->raw);
  free(w->zout);
  free(w);
}

/* Compresses raw[0..rlen) (mode ZSTD_e_continue or ZSTD_e_end). */
static int w_flush(vh_export_writer_t *w, ZSTD_EndDirective mode) {
  if (w->rlen > w->crc_pos)
    w->crc = vh_crc32c(w->crc, w->raw + w->crc_pos, w->rlen - w->crc_pos);
  w->st.raw_bytes += w->rlen;
  ZSTD_inBuffer in = {w->raw, w->rlen, 0};
  for (;;) {
    ZSTD_outBuffer o = {w->zout, w->zcap, 0};
    size_t rem = ZSTD_compressStream2(w->cz, &o, &in, mode);
    if (ZSTD_isError(rem)) return VH_ENOMEM;
    if (o.pos > 0) {
      if (w->fn(w->arg, w->zout, o.pos) != 0) return VH_EIO;
      w->st.zst_bytes += o.pos;
    }
    if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size) break;
  }
  w->rlen = w->crc_pos = 0;
  if (w->progress != NULL && w->st.raw_bytes >= w->next_progress) {
    w->next_progress = w->st.raw_bytes + PROGRESS_STEP;
    w->progress(w->parg, &w->st);
  }
  return 0;
}

static int w_put(vh_export_writer_t *w, const void *p, size_t n) {
  const unsigned char *s = p;
  while (n > 0) {
    size_t room = RAW_CAP - w->rlen, k = n < room ? n : room;
    memcpy(w->raw + w->rlen, s, k);
    w->rlen += k;
    s += k;
    n -= k;
    if (w->rlen == RAW_CAP) {
      int rc = w_flush(w, ZSTD_e_continue);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

/* Writes a scalar (not a table). */
static int w_scalar(vh_export_writer_t *w, vh_val_t v) {
  unsigned char b[16];
  size_t n;
  switch (v.type) {
    case VH_TBOOL:
      b[0] = v.u.b ? TAG_TRUE : TAG_FALSE;
      return w_put(w, b, 1);
    case VH_TINT: {
      uint64_t z = vh_zigzag(v.u.i);
      b[0] = TAG_INT;
      n = 1 + vh_varint_put(b + 1, z);
      return w_put(w, b, n);
    }
    case VH_TFLOAT: {
      uint64_t bits;
      memcpy(&bits, &v.u.f, 8);
      b[0] = TAG_FLOAT;
      vh_le64_store(b + 1, bits);
      return w_put(w, b, 9);
    }
    case VH_TSTR: {
      size_t len = vh_str_len(v.u.s);
      b[0] = TAG_STR;
      n = 1 + vh_varint_put(b + 1, len);
      int rc = w_put(w, b, n);
      return rc != 0 ? rc : w_put(w, vh_str_data(v.u.s), len);
    }
    default:
      return VH_EINVAL;
  }
}

static int cmp_ent(const void *a, const void *b) {
  return cmp_key(&((const ent_t *)a)->k, &((const ent_t *)b)->k);
}

/* Collects t's entries in canonical order, writes the table's head and
 * pushes its frame. */
static int w_open_table(vh_export_writer_t *w, const vh_tab_t *t,
                        char **errmsg) {
  size_t cap = 16, n = 0;
  ent_t *e = malloc(cap * sizeof *e);
  vh_iter_t it;
  vh_val_t k, v;
  const char *why;
  if (w->depth >= VH_MAX_DEPTH) { /* a store written by an older vedhost */
    free(e);
    return fail(errmsg, VH_EDEPTH,
                "the state nests tables deeper than %d levels (the limit): "
                "import would refuse it; make it shallower first",
                VH_MAX_DEPTH);
  }
  if (e == NULL) return VH_ENOMEM;
  vh_iter_init(&it, t);
  while (vh_iter_next(&it, &k, &v) == 1) {
    if (vh_grow(&e, &cap, n + 1, sizeof *e) != 0) {
      free(e);
      return VH_ENOMEM;
    }
    e[n].k = k;
    e[n].v = v;
    n++;
  }
  int fault = vh_trie_fault(&why);
  if (fault != 0) {
    free(e);
    return fail(errmsg, fault, "cannot read the state: %s", why);
  }
  qsort(e, n, sizeof *e, cmp_ent);
  /* The array run: keys 1, 2, ... consecutive, moved to the front. */
  size_t p = 0, na = 0;
  while (p < n && e[p].k.type != VH_TINT) p++; /* booleans first */
  while (p < n && e[p].k.type == VH_TINT && e[p].k.u.i < 1) p++;
  while (p + na < n && e[p + na].k.type == VH_TINT &&
         e[p + na].k.u.i == (int64_t)na + 1)
    na++;
  if (na > 0 && p > 0) {
    ent_t *pre = malloc(p * sizeof *pre);
    if (pre == NULL) {
      free(e);
      return VH_ENOMEM;
    }
    memcpy(pre, e, p * sizeof *pre);
    memmove(e, e + p, na * sizeof *e);
    memcpy(e + na, pre, p * sizeof *pre);
    free(pre);
  }
  unsigned char b[24];
  size_t len = 0;
  b[len++] = TAG_TAB;
  len += vh_varint_put(b + len, na);
  len += vh_varint_put(b + len, n - na);
  int rc = w_put(w, b, len);
  if (rc == 0)
    rc = vh_grow(&w->stack, &w->scap, w->depth + 1, sizeof *w->stack);
  if (rc != 0) {
    free(e);
    return rc;
  }
  wframe_t *f = &w->stack[w->depth++];
  f->e = e;
  f->n = n;
  f->na = na;
  f->pos = 0;
  w->st.tables++;
  w->st.keys += n;
  return 0;
}

int vh_export_write_header(vh_export_writer_t *w, const vh_export_header_t *h,
                           char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (w->err) return fail(errmsg, w->err, "export writer failed before");
  if (w->state != 0) return fail(errmsg, VH_EINVAL, "header written twice");
  if ((h->flags & ~VH_EXPORT_F_SYS) != 0 || h->ndomains > 65535)
    return fail(errmsg, VH_EINVAL, "bad export header flags or size");
  unsigned char b[32];
  memcpy(b, magic_head, 8);
  vh_le32_store(b + 8, VH_EXPORT_VERSION);
  vh_le32_store(b + 12, h->flags);
  vh_le64_store(b + 16, h->seq);
  vh_le32_store(b + 24, (uint32_t)h->ndomains);
  int rc = w_put(w, b, 28);
  for (size_t i = 0; i < h->ndomains && rc == 0; i++) {
    const vh_export_domain_t *d = &h->domains[i];
    size_t len = strlen(d->name);
    if (!vh_domain_name_ok(d->name, len) || d->version < 1 ||
        d->version > VH_MAX_VERSION)
      return fail(errmsg, VH_EINVAL, "bad domain '%s' in export header",
                  d->name);
    for (size_t j = 0; j < i; j++)
      if (strcmp(h->domains[j].name, d->name) == 0)
        return fail(errmsg, VH_EINVAL, "domain '%s' listed twice", d->name);
    b[0] = (unsigned char)len;
    rc = w_put(w, b, 1);
    if (rc == 0) rc = w_put(w, d->name, len);
    vh_le64_store(b, (uint64_t)d->version);
    if (rc == 0) rc = w_put(w, b, 8);
  }
  if (rc != 0) {
    w->err = rc;
    return fail(errmsg, rc, "cannot write the export stream (%s)",
                vh_err_name(rc));
  }
  w->state = 1;
  w->tables_left = h->ndomains + ((h->flags & VH_EXPORT_F_SYS) ? 1 : 0);
  return 0;
}

int vh_export_write_table(vh_export_writer_t *w, const vh_tab_t *t,
                          char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (w->err) return fail(errmsg, w->err, "export writer failed before");
  if (w->state != 1 || w->tables_left == 0)
    return fail(errmsg, VH_EINVAL, "table not announced by the header");
  vh_trie_fault_clear();
  int rc = w_open_table(w, t, errmsg);
  while (rc == 0 && w->depth > 0) {
    wframe_t *f = &w->stack[w->depth - 1];
    if (f->pos == f->n) {
      free(f->e);
      w->depth--;
      continue;
    }
    ent_t *e = &f->e[f->pos];
    if (f->pos++ >= f->na) rc = w_scalar(w, e->k);
    if (rc != 0) break;
    if (e->v.type == VH_TTAB)
      rc = w_open_table(w, e->v.u.t, errmsg); /* f is stale now */
    else
      rc = w_scalar(w, e->v);
  }
  if (rc != 0) {
    for (size_t i = 0; i < w->depth; i++) free(w->stack[i].e);
    w->depth = 0;
    w->err = rc;
    if (errmsg && *errmsg == NULL)
      fail(errmsg, rc, "cannot write the export stream (%s)", vh_err_name(rc));
    return rc;
  }
  w->tables_left--;
  return 0;
}

int vh_export_write_finish(vh_export_writer_t *w, vh_export_stats_t *st,
                           char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (w->err) return fail(errmsg, w->err, "export writer failed before");
  if (w->state != 1 || w->tables_left != 0)
    return fail(errmsg, VH_EINVAL, "%zu announced tables not written",
                w->tables_left);
  unsigned char b[40];
  memcpy(b, magic_tail, 8);
  vh_le64_store(b + 8, w->st.keys);
  vh_le64_store(b + 16, w->st.tables);
  vh_le64_store(b + 24, w->st.raw_bytes + w->rlen);
  int rc = w_put(w, b, 32);
  if (rc == 0 && RAW_CAP - w->rlen < 4) rc = w_flush(w, ZSTD_e_continue);
  if (rc == 0) {
    w->crc = vh_crc32c(w->crc, w->raw + w->crc_pos, w->rlen - w->crc_pos);
    vh_le32_store(w->raw + w->rlen, w->crc);
    w->rlen += 4;
    w->crc_pos = w->rlen; /* the CRC field is not in the CRC */
    rc = w_flush(w, ZSTD_e_end);
  }
  if (rc != 0) {
    w->err = rc;
    return fail(errmsg, rc, "cannot write the export stream (%s)",
                vh_err_name(rc));
  }
  w->state = 2;
  if (st != NULL) *st = w->st;
  return 0;
}

/* ================================ reader ================================ */

typedef struct rframe {
  vh_tab_t *t;   /* [owned] the table being built */
  uint64_t na;   /* array values announced */
  uint64_t nh;   /* hash pairs announced */
  uint64_t done; /* entries read so far */
  vh_val_t key;  /* [owned] key of the child table being built */
  vh_val_t prev; /* [owned] previous hash key (nil before the first) */
} rframe_t;

struct vh_export_reader {
  ZSTD_DCtx *dz;        /* [owned] */
  vh_export_read_fn fn; /* input */
  void *arg;
  unsigned char *in;  /* [owned] compressed input buffer */
  ZSTD_inBuffer zin;  /* over in */
  int in_eof;         /* fn reported the end of input */
  int frame_done;     /* the zstd frame ended */
  unsigned char *out; /* [owned] window of raw bytes */
  size_t out_cap, out_len, out_pos;
  size_t crc_pos; /* out[0..crc_pos) already in crc */
  int crc_off;    /* 1 while reading the CRC field */
  uint32_t crc;
  uint64_t raw_pos;     /* raw bytes consumed */
  vh_export_stats_t st; /* raw/zst bytes decoded, keys, tables */
  uint64_t next_progress;
  vh_export_progress_fn progress;
  void *parg;
  vh_buf_t sbuf;   /* scratch for strings */
  rframe_t *stack; /* [owned] tables under construction */
  size_t depth, scap;
  int state;    /* 0 new, 1 header read, 2 finished */
  int err;      /* sticky error */
  char *errmsg; /* [owned] its message */
  size_t tables_left;
};

/* Records the sticky error (the first one wins) and returns it. */
static int r_fail(vh_export_reader_t *r, int rc, const char *fmt, ...) {
  if (r->err == 0) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    one_line(buf);
    r->err = rc;
    r->errmsg = strdup(buf);
  }
  return r->err;
}

static int r_ret(vh_export_reader_t *r, char **errmsg) {
  if (errmsg != NULL)
    *errmsg = r->err ? strdup(r->errmsg ? r->errmsg : "export error") : NULL;
  return r->err;
}

int vh_export_read_mem(void *arg, void *p, size_t cap, size_t *got) {
  vh_export_mem_t *s = arg;
  size_t k = s->len - s->pos;
  if (k > cap) k = cap;
  if (s->chunk && k > s->chunk) k = s->chunk;
  memcpy(p, s->p + s->pos, k);
  s->pos += k;
  *got = k;
  return 0;
}

int vh_export_reader_new(vh_export_read_fn fn, void *arg,
                         vh_export_reader_t **out) {
  vh_export_reader_t *r = calloc(1, sizeof *r);
  *out = NULL;
  if (r == NULL) return VH_ENOMEM;
  r->fn = fn;
  r->arg = arg;
  r->dz = ZSTD_createDCtx();
  r->in = malloc(ZSTD_DStreamInSize());
  r->out_cap = ZSTD_DStreamOutSize();
  r->out = malloc(r->out_cap);
  if (r->dz == NULL || r->in == NULL || r->out == NULL) {
    vh_export_reader_free(r);
    return VH_ENOMEM;
  }
  r->zin.src = r->in;
  r->next_progress = PROGRESS_STEP;
  *out = r;
  return 0;
}

void vh_export_reader_set_progress(vh_export_reader_t *r,
                                   vh_export_progress_fn fn, void *arg) {
  r->progress = fn;
  r->parg = arg;
}

static void r_drop_stack(vh_export_reader_t *r) {
  for (size_t i = 0; i < r->depth; i++) {
    vh_tab_release(r->stack[i].t);
    vh_val_release(r->stack[i].key);
    vh_val_release(r->stack[i].prev);
  }
  r->depth = 0;
}

void vh_export_reader_free(vh_export_reader_t *r) {
  if (r == NULL) return;
  r_drop_stack(r);
  free(r->stack);
  ZSTD_freeDCtx(r->dz);
  free(r->in);
  free(r->out);
  vh_buf_free(&r->sbuf);
  free(r->errmsg);
  free(r);
}

/* Takes the window's unCRC'd bytes into the CRC (unless crc_off). */
static void r_sync_crc(vh_export_reader_t *r) {
  if (!r->crc_off && r->out_pos > r->crc_pos)
    r->crc = vh_crc32c(r->crc, r->out + r->crc_pos, r->out_pos - r->crc_pos);
  r->crc_pos = r->out_pos;
}

/* Refills the window (which is fully consumed). 1: bytes available; 0: the
 * frame ended and no raw byte is left; <0: error. */
static int r_fill(vh_export_reader_t *r) {
  r_sync_crc(r);
  r->out_len = r->out_pos = r->crc_pos = 0;
  while (!r->frame_done) {
    if (r->zin.pos == r->zin.size && !r->in_eof) {
      size_t got = 0;
      if (r->fn(r->arg, r->in, ZSTD_DStreamInSize(), &got) != 0)
        return r_fail(r, VH_EIO, "cannot read the export stream");
      r->zin.size = got;
      r->zin.pos = 0;
      if (got == 0) r->in_eof = 1;
      r->st.zst_bytes += got;
    }
    ZSTD_outBuffer o = {r->out, r->out_cap, 0};
    size_t before = r->zin.pos;
    size_t rem = ZSTD_decompressStream(r->dz, &o, &r->zin);
    if (ZSTD_isError(rem)) {
      if (ZSTD_getErrorCode(rem) == ZSTD_error_prefix_unknown &&
          r->st.raw_bytes == 0)
        return r_fail(r, VH_EFORMAT,
                      "not a vedhost export (not a zstd stream)");
      return r_fail(r, VH_ECORRUPT, "damaged export stream (zstd: %s)",
                    ZSTD_getErrorName(rem));
    }
    if (rem == 0) r->frame_done = 1;
    if (o.pos > 0) {
      r->out_len = o.pos;
      r->st.raw_bytes += o.pos;
      if (r->progress != NULL && r->st.raw_bytes >= r->next_progress) {
        r->next_progress = r->st.raw_bytes + PROGRESS_STEP;
        r->progress(r->parg, &r->st);
      }
      return 1;
    }
    if (!r->frame_done && r->in_eof && r->zin.pos == before)
      return r_fail(r, VH_ECORRUPT,
                    "truncated export stream (it ends after %" PRIu64
                    " bytes, inside the zstd frame)",
                    r->st.zst_bytes);
  }
  return 0;
}

/* Copies n raw bytes into dst (NULL: skip them). */
static int r_get(vh_export_reader_t *r, void *dst, size_t n, const char *what) {
  unsigned char *d = dst;
  while (n > 0) {
    if (r->out_pos == r->out_len) {
      int rc = r_fill(r);
      if (rc < 0) return rc;
      if (rc == 0)
        return r_fail(r, VH_ECORRUPT,
                      "truncated export stream: it ends at byte %" PRIu64
                      " inside %s",
                      r->raw_pos, what);
    }
    size_t k = r->out_len - r->out_pos;
    if (k > n) k = n;
    if (d != NULL) {
      memcpy(d, r->out + r->out_pos, k);
      d += k;
    }
    r->out_pos += k;
    r->raw_pos += k;
    n -= k;
  }
  return 0;
}

static inline int r_u8(vh_export_reader_t *r, unsigned char *c,
                       const char *what) {
  if (r->out_pos < r->out_len) {
    *c = r->out[r->out_pos++];
    r->raw_pos++;
    return 0;
  }
  return r_get(r, c, 1, what);
}

static int r_varint(vh_export_reader_t *r, uint64_t *out, const char *what) {
  uint64_t x = 0;
  for (unsigned i = 0; i < VH_VARINT_MAX; i++) {
    unsigned char c;
    int rc = r_u8(r, &c, what);
    if (rc != 0) return rc;
    if ((rc = vh_varint_step(&x, i, c)) < 0) break;
    if (rc == 1) {
      *out = x;
      return 0;
    }
  }
  return r_fail(r, VH_ECORRUPT,
                "damaged export stream: bad varint in %s at "
                "byte %" PRIu64,
                what, r->raw_pos);
}

/* Reads a scalar with tag into *v ([new]). */
static int r_scalar(vh_export_reader_t *r, unsigned char tag, vh_val_t *v) {
  uint64_t x;
  unsigned char b[8];
  int rc;
  switch (tag) {
    case TAG_FALSE:
    case TAG_TRUE:
      *v = vh_bool(tag == TAG_TRUE);
      return 0;
    case TAG_INT:
      if ((rc = r_varint(r, &x, "an integer")) != 0) return rc;
      *v = vh_int(vh_unzigzag(x));
      return 0;
    case TAG_FLOAT: {
      double f;
      if ((rc = r_get(r, b, 8, "a float")) != 0) return rc;
      x = vh_le64_load(b);
      memcpy(&f, &x, 8);
      *v = vh_float(f);
      return 0;
    }
    case TAG_STR: {
      if ((rc = r_varint(r, &x, "a string length")) != 0) return rc;
      vh_buf_t *s = &r->sbuf;
      s->len = 0;
      /* Grow as bytes arrive: a damaged length hits the end, not malloc. */
      while (s->len < x) {
        if (vh_grow(&s->p, &s->cap, s->len + 1, 1) != 0)
          return r_fail(r, VH_ENOMEM, "out of memory");
        size_t k = s->cap - s->len;
        if (k > x - s->len) k = (size_t)(x - s->len);
        if ((rc = r_get(r, s->p + s->len, k, "a string")) != 0) return rc;
        s->len += k;
      }
      v->type = VH_TSTR;
      v->u.s = vh_str_new((const char *)s->p, s->len);
      if (v->u.s == NULL) return r_fail(r, VH_ENOMEM, "out of memory");
      return 0;
    }
    default:
      return r_fail(r, VH_ECORRUPT,
                    "damaged export stream: bad value tag 0x%02x at byte "
                    "%" PRIu64,
                    tag, r->raw_pos - 1);
  }
}

int vh_export_read_header(vh_export_reader_t *r, vh_export_header_t *h,
                          char **errmsg) {
  unsigned char b[28];
  memset(h, 0, sizeof *h);
  if (r->err == 0 && r->state != 0)
    r_fail(r, VH_EINVAL, "export header read twice");
  if (r->err == 0 && r_get(r, b, 28, "the header") == 0) {
    uint32_t ver = vh_le32_load(b + 8);
    if (memcmp(b, magic_head, 8) != 0)
      r_fail(r, VH_EFORMAT, "not a vedhost export stream (bad magic)");
    else if (ver > VH_EXPORT_VERSION)
      r_fail(r, VH_EFORMAT,
             "export stream of format %" PRIu32
             ", newer than this vedhost "
             "reads (%d): use a newer vedhost",
             ver, VH_EXPORT_VERSION);
    else if (ver == 0 || (vh_le32_load(b + 12) & ~VH_EXPORT_F_SYS) != 0 ||
             vh_le32_load(b + 24) > 65535)
      r_fail(r, VH_ECORRUPT, "damaged export stream: bad header");
    h->version = ver;
    h->flags = vh_le32_load(b + 12);
    h->seq = vh_le64_load(b + 16);
  }
  uint32_t n = r->err ? 0 : vh_le32_load(b + 24);
  for (uint32_t i = 0; i < n && r->err == 0; i++) {
    unsigned char len;
    char name[256];
    if (r_u8(r, &len, "the header") != 0) break;
    if (r_get(r, name, len, "the header") != 0) break;
    name[len] = '\0';
    if (r_get(r, b, 8, "the header") != 0) break;
    int64_t version = (int64_t)vh_le64_load(b);
    if (len == 0 || memchr(name, '\0', len) != NULL || version < 1) {
      r_fail(r, VH_ECORRUPT, "damaged export stream: bad domain entry %u",
             (unsigned)i);
      break;
    }
    /* Well formed but refused by the host: the same rules as scripts. */
    if (!vh_domain_name_ok(name, len)) {
      for (unsigned j = 0; j < len; j++) /* keep the message one line */
        if ((unsigned char)name[j] < 0x20 || (unsigned char)name[j] >= 0x7f)
          name[j] = '?';
      r_fail(r, VH_EINVAL,
             "the stream holds domain '%s', which is not a valid domain "
             "name (an identifier not starting with '__')",
             name);
      break;
    }
    if (version > VH_MAX_VERSION) {
      r_fail(r, VH_EINVAL,
             "the stream gives domain '%s' version %" PRId64
             ", above the largest version a host accepts (%" PRId64 ")",
             name, version, VH_MAX_VERSION);
      break;
    }
    for (size_t j = 0; j < h->ndomains; j++)
      if (strcmp(h->domains[j].name, name) == 0)
        r_fail(r, VH_ECORRUPT, "damaged export stream: domain '%s' twice",
               name);
    if (r->err == 0 && vh_export_header_add(h, name, version) != 0)
      r_fail(r, VH_ENOMEM, "out of memory");
  }
  if (r->err != 0) {
    vh_export_header_free(h);
    return r_ret(r, errmsg);
  }
  r->state = 1;
  r->tables_left = h->ndomains + ((h->flags & VH_EXPORT_F_SYS) ? 1 : 0);
  return r_ret(r, errmsg);
}

/* Reads a table's counts and pushes its frame. */
static int r_open_table(vh_export_reader_t *r, uint64_t edit) {
  uint64_t na, nh;
  int rc = r_varint(r, &na, "a table");
  if (rc == 0) rc = r_varint(r, &nh, "a table");
  if (rc != 0) return rc;
  if (r->depth >= VH_MAX_DEPTH)
    return r_fail(r, VH_EDEPTH,
                  "the stream nests tables deeper than %d levels (the limit "
                  "of a state) at byte %" PRIu64,
                  VH_MAX_DEPTH, r->raw_pos);
  if (vh_grow(&r->stack, &r->scap, r->depth + 1, sizeof *r->stack) != 0)
    return r_fail(r, VH_ENOMEM, "out of memory");
  vh_tab_t *t = vh_tab_new(edit);
  if (t == NULL) return r_fail(r, VH_ENOMEM, "out of memory");
  rframe_t *f = &r->stack[r->depth++];
  f->t = t;
  f->na = na;
  f->nh = nh;
  f->done = 0;
  f->key = vh_nil();
  f->prev = vh_nil();
  r->st.tables++;
  return 0;
}

/* Reads the next key of frame f into *k ([new]). */
static int r_key(vh_export_reader_t *r, rframe_t *f, vh_val_t *k) {
  if (f->done < f->na) {
    *k = vh_int((int64_t)f->done + 1);
    return 0;
  }
  unsigned char tag;
  int rc = r_u8(r, &tag, "a key");
  if (rc != 0) return rc;
  if (tag == TAG_TAB)
    return r_fail(r, VH_ECORRUPT,
                  "damaged export stream: a table as a key at byte %" PRIu64,
                  r->raw_pos - 1);
  if ((rc = r_scalar(r, tag, k)) != 0) return rc;
  const char *bad = NULL;
  vh_val_t norm = *k;
  if (k->type == VH_TFLOAT &&
      (vh_key_norm(&norm) != 0 || norm.type != VH_TFLOAT))
    bad = "a NaN or integral float key";
  else if (k->type == VH_TINT && k->u.i >= 1 && (uint64_t)k->u.i <= f->na + 1)
    bad = "an array key in the hash part";
  else if (f->prev.type != VH_TNIL && cmp_key(&f->prev, k) >= 0)
    bad = "keys out of order";
  if (bad != NULL) {
    vh_val_release(*k);
    *k = vh_nil();
    return r_fail(r, VH_ECORRUPT, "damaged export stream: %s at byte %" PRIu64,
                  bad, r->raw_pos);
  }
  return 0;
}

int vh_export_read_table(vh_export_reader_t *r, uint64_t edit, vh_tab_t **out,
                         char **errmsg) {
  unsigned char tag;
  *out = NULL;
  if (r->err == 0 && (r->state != 1 || r->tables_left == 0))
    r_fail(r, VH_EINVAL, "no more tables in the export stream");
  if (r->err == 0 && r_u8(r, &tag, "a domain's state") == 0 && tag != TAG_TAB)
    r_fail(r, VH_ECORRUPT,
           "damaged export stream: a domain's state is not a table");
  if (r->err == 0) r_open_table(r, edit);
  while (r->err == 0 && r->depth > 0) {
    rframe_t *f = &r->stack[r->depth - 1];
    if (f->done == f->na + f->nh) { /* complete: hand it to its parent */
      vh_tab_t *t = f->t;
      vh_val_release(f->prev);
      r->depth--;
      if (r->depth == 0) {
        *out = t;
        break;
      }
      rframe_t *p = &r->stack[r->depth - 1];
      vh_val_t tv;
      tv.u.i = 0;
      tv.u.t = t;
      tv.type = VH_TTAB;
      if (vh_tab_set(&p->t, p->key, tv, edit) != 0)
        r_fail(r, VH_ENOMEM, "out of memory");
      vh_val_release(p->prev);
      p->prev = p->done > p->na ? p->key : vh_nil();
      if (p->done <= p->na) vh_val_release(p->key);
      p->key = vh_nil();
      continue;
    }
    vh_val_t k, v;
    if (r_key(r, f, &k) != 0) break;
    f->done++;
    r->st.keys++;
    if (r_u8(r, &tag, "a value") != 0) {
      vh_val_release(k);
      break;
    }
    if (tag == TAG_TAB) {
      f->key = k; /* f is stale once the child is pushed */
      r_open_table(r, edit);
      continue;
    }
    if (r_scalar(r, tag, &v) != 0) {
      vh_val_release(k);
      break;
    }
    if (vh_tab_set(&f->t, k, v, edit) != 0) {
      vh_val_release(k);
      r_fail(r, VH_ENOMEM, "out of memory");
      break;
    }
    vh_val_release(f->prev);
    if (f->done > f->na) {
      f->prev = k;
    } else {
      f->prev = vh_nil();
      vh_val_release(k);
    }
  }
  if (r->err != 0) {
    if (*out != NULL) vh_tab_release(*out);
    *out = NULL;
    r_drop_stack(r);
    return r_ret(r, errmsg);
  }
  r->tables_left--;
  return r_ret(r, errmsg);
}

int vh_export_read_finish(vh_export_reader_t *r, vh_export_stats_t *st,
                          char **errmsg) {
  unsigned char b[36];
  if (r->err == 0 && (r->state != 1 || r->tables_left != 0))
    r_fail(r, VH_EINVAL, "export stream: tables left unread");
  uint64_t at = r->raw_pos;
  if (r->err == 0 && r_get(r, b, 32, "the trailer") == 0) {
    if (memcmp(b, magic_tail, 8) != 0)
      r_fail(r, VH_ECORRUPT,
             "damaged export stream: no trailer at byte %" PRIu64, at);
    else if (vh_le64_load(b + 8) != r->st.keys ||
             vh_le64_load(b + 16) != r->st.tables || vh_le64_load(b + 24) != at)
      r_fail(r, VH_ECORRUPT,
             "damaged export stream: the trailer's counts do not match");
  }
  if (r->err == 0) {
    r_sync_crc(r);
    uint32_t crc = r->crc;
    r->crc_off = 1; /* the CRC field is not in the CRC */
    if (r_get(r, b, 4, "the trailer") == 0 && vh_le32_load(b) != crc)
      r_fail(r, VH_ECORRUPT, "damaged export stream: checksum mismatch");
  }
  /* Nothing may follow: no raw byte, no byte after the frame. */
  if (r->err == 0 && (r->out_pos < r->out_len || r_fill(r) > 0))
    r_fail(r, VH_ECORRUPT, "damaged export stream: data after the trailer");
  if (r->err == 0 && !r->frame_done)
    r_fail(r, VH_ECORRUPT, "truncated export stream: the zstd frame is cut");
  if (r->err == 0 && r->zin.pos == r->zin.size && !r->in_eof) {
    size_t got = 0;
    if (r->fn(r->arg, r->in, ZSTD_DStreamInSize(), &got) != 0)
      r_fail(r, VH_EIO, "cannot read the export stream");
    r->zin.size = got;
    r->zin.pos = 0;
  }
  if (r->err == 0 && r->zin.pos < r->zin.size)
    r_fail(r, VH_ECORRUPT,
           "damaged export stream: bytes after the end of the stream");
  if (r->err == 0) {
    r->state = 2;
    if (st != NULL) *st = r->st;
  }
  return r_ret(r, errmsg);
}
