/*
 * seedgen.c - writes the seed corpora of fuzz_node and fuzz_export from
 * real encodings (run by hand when a format changes, then commit):
 *
 *   build/fuzz/fuzz_seedgen fuzz/corpus
 *
 * It builds a few tables (scalars of every type, strings with NUL bytes,
 * an array part long enough for vector leaves and an inner node, a hash
 * part big enough for CHAMP sub-nodes, nested tables), collects their
 * nodes as the host's flush does, and writes: corpus/node/store-* (mode 3:
 * the nodes joined by "VHND", root last), node-* (mode 1, each hash or
 * vector node), tab-* (mode 2, each table node), value-* (mode 0),
 * chrec-* (mode 'C': a change record adding, changing and removing it);
 * corpus/export/raw-* and zst-* (a stream, raw or compressed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "vh_chrec.h"
#include "vh_codec.h"
#include "vh_export.h"
#include "vh_flush.h"
#include "vh_trie.h"
#include "vh_trie_int.h"
#include "vh_valenc.h"

typedef struct seed_node {
  uint64_t id;
  unsigned char *p;
  size_t len;
} seed_node_t;

static seed_node_t nodes[100000];
static size_t nnodes;
static const char *outdir;

static void die(const char *what) {
  fprintf(stderr, "seedgen: %s\n", what);
  exit(1);
}

static void out(const char *sub, const char *name, int mode, const void *p,
                size_t len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s/%s", outdir, sub, name);
  FILE *f = fopen(path, "wb");
  if (!f) die(path);
  if (mode >= 0) fputc(mode, f);
  fwrite(p, 1, len, f);
  fclose(f);
}

static int put(void *arg, uint64_t id, const void *bytes, size_t len) {
  (void)arg;
  if (nnodes == sizeof nodes / sizeof nodes[0]) die("too many nodes");
  nodes[nnodes].id = id;
  nodes[nnodes].p = malloc(len ? len : 1);
  memcpy(nodes[nnodes].p, bytes, len);
  nodes[nnodes].len = len;
  nnodes++;
  return 0;
}

static vh_val_t str(const char *s, size_t n) {
  vh_val_t v;
  v.type = VH_TSTR;
  v.u.s = vh_str_new(s, n);
  return v;
}

static vh_val_t tabv(vh_tab_t *t) {
  vh_val_t v;
  v.type = VH_TTAB;
  v.u.t = t;
  return v;
}

static vh_tab_t *make(int which, uint64_t e) {
  vh_tab_t *t = vh_tab_new(e);
  char key[32];
  switch (which) {
    case 0: /* scalars */
      vh_tab_set(&t, str("i", 1), vh_int(-42), e);
      vh_tab_set(&t, str("f", 1), vh_float(2.5), e);
      vh_tab_set(&t, str("b", 1), vh_bool(1), e);
      vh_tab_set(&t, str("s", 1), str("a\0b", 3), e);
      vh_tab_set(&t, vh_float(0.5), str("half", 4), e);
      vh_tab_set(&t, vh_bool(0), vh_int(INT64_MIN), e);
      break;
    case 1: /* an array of 70: leaves, an inner node, a tail */
      for (int i = 1; i <= 70; i++) vh_tab_set(&t, vh_int(i), vh_int(i * i), e);
      break;
    case 2: /* a hash part with sub-nodes, and nested tables */
      for (int i = 0; i < 80; i++) {
        snprintf(key, sizeof key, "k%d", i);
        vh_tab_set(&t, str(key, strlen(key)), vh_int(i), e);
      }
      {
        vh_tab_t *sub = vh_tab_new(e);
        vh_tab_set(&sub, str("deep", 4), tabv(make(0, e)), e);
        vh_tab_set(&sub, vh_int(1), str("x", 1), e);
        vh_tab_set(&t, str("sub", 3), tabv(sub), e);
      }
      break;
    default: /* empty */
      break;
  }
  return t;
}

static void gen_store(int which) {
  uint64_t e = vh_edit_new(), next = 1;
  vh_tab_t *t = make(which, e);
  nnodes = 0;
  if (vh_flush_collect(&t, 1, &next, put, NULL, NULL) != 0) die("flush");
  /* ids run 1..n with the root last: write them in id order */
  size_t total = 0;
  for (size_t i = 0; i < nnodes; i++) total += nodes[i].len + 4;
  unsigned char *buf = malloc(total + 1), *w = buf;
  for (uint64_t id = 1; id < next; id++) {
    for (size_t i = 0; i < nnodes; i++) {
      if (nodes[i].id != id) continue;
      if (id > 1) {
        memcpy(w, "VHND", 4);
        w += 4;
      }
      memcpy(w, nodes[i].p, nodes[i].len);
      w += nodes[i].len;
    }
  }
  if (vh_tab_id(t) != next - 1) die("the root is not the last id");
  char name[64];
  snprintf(name, sizeof name, "store-%d", which);
  out("node", name, 3, buf, (size_t)(w - buf));
  free(buf);
  for (size_t i = 0; i < nnodes; i++) {
    int kind = 0;
    const char *why;
    if (vh_codec_child_ids(nodes[i].p, nodes[i].len, NULL, NULL, &kind, &why) !=
            0 &&
        kind == 0)
      continue;
    if (kind == VH_K_TAB) {
      snprintf(name, sizeof name, "tab-%d-%zu", which, i);
      out("node", name, 2, nodes[i].p, nodes[i].len);
    } else if (i < 6) {
      unsigned char hdr[11 + 4096];
      size_t n = nodes[i].len < 4096 ? nodes[i].len : 4096;
      memset(hdr, 0, 11);
      hdr[0] = (unsigned char)(kind == VH_K_CHAMP   ? 0
                               : kind == VH_K_COLL  ? 1
                               : kind == VH_K_VLEAF ? 2
                                                    : 3);
      memcpy(hdr + 11, nodes[i].p, n);
      snprintf(name, sizeof name, "node-%d-%zu", which, i);
      out("node", name, 1, hdr, 11 + n);
    }
    free(nodes[i].p);
  }
  /* the value encoding of the same table */
  unsigned char *v = NULL;
  size_t vlen = 0;
  if (vh_valenc_encode(tabv(t), &v, &vlen) == 0) {
    snprintf(name, sizeof name, "value-%d", which);
    out("node", name, 0, v, vlen);
    free(v);
  }
  /* a change record of two domains: the table added, a key changed from
   * it to a string, another removed */
  vh_buf_t rec = {0};
  const char *open = NULL;
  vh_val_t path[2] = {str("t", 1), vh_int(7)};
  vh_val_t nil;
  memset(&nil, 0, sizeof nil);
  if (vh_chrec_begin(&rec, 41) != 0 ||
      vh_chrec_add(&rec, &open, "a", '+', path, 1, nil, tabv(t)) != 0 ||
      vh_chrec_add(&rec, &open, "a", '~', path, 2, tabv(t), str("x", 1)) != 0 ||
      vh_chrec_add(&rec, &open, "b", '-', path + 1, 1, vh_int(3), nil) != 0 ||
      vh_chrec_end(&rec, open) != 0)
    die("change record");
  snprintf(name, sizeof name, "chrec-%d", which);
  out("node", name, 'C', rec.p, rec.len);
  vh_buf_free(&rec);
  vh_val_release(path[0]);
  vh_tab_release(t);
}

typedef struct seed_buf {
  unsigned char *p;
  size_t len, cap;
} seed_buf_t;

static int wr(void *arg, const void *p, size_t len) {
  seed_buf_t *b = arg;
  if (b->len + len > b->cap) {
    b->cap = (b->len + len) * 2;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, p, len);
  b->len += len;
  return 0;
}

static void gen_export(int ndom, int sys) {
  uint64_t e = vh_edit_new();
  seed_buf_t z = {NULL, 0, 0};
  vh_export_writer_t *w;
  vh_export_header_t h;
  char *msg = NULL;
  memset(&h, 0, sizeof h);
  h.version = VH_EXPORT_VERSION;
  h.flags = sys ? VH_EXPORT_F_SYS : 0;
  h.seq = 7;
  for (int i = 0; i < ndom; i++) {
    char name[16];
    snprintf(name, sizeof name, "d%d", i);
    vh_export_header_add(&h, name, i + 1);
  }
  if (vh_export_writer_new(wr, &z, 1, &w) != 0) die("writer");
  if (vh_export_write_header(w, &h, &msg) != 0) die(msg);
  for (int i = 0; i < ndom + sys; i++) {
    vh_tab_t *t = make(i % 4, e);
    if (vh_export_write_table(w, t, &msg) != 0) die(msg);
    vh_tab_release(t);
  }
  if (vh_export_write_finish(w, NULL, &msg) != 0) die(msg);
  vh_export_writer_free(w);
  vh_export_header_free(&h);
  char name[64];
  snprintf(name, sizeof name, "zst-%d-%d", ndom, sys);
  out("export", name, 1, z.p, z.len);
  unsigned long long n = ZSTD_getFrameContentSize(z.p, z.len);
  if (n == ZSTD_CONTENTSIZE_UNKNOWN || n == ZSTD_CONTENTSIZE_ERROR) {
    n = 1 << 20;
  }
  unsigned char *raw = malloc(n ? n : 1);
  size_t r = ZSTD_decompress(raw, n, z.p, z.len);
  if (ZSTD_isError(r)) die("zstd");
  snprintf(name, sizeof name, "raw-%d-%d", ndom, sys);
  out("export", name, 0, raw, r);
  snprintf(name, sizeof name, "raw-chunked-%d-%d", ndom, sys);
  out("export", name, 2 * 7, raw, r); /* reads of 7 bytes */
  free(raw);
  free(z.p);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  outdir = argv[1];
  for (int i = 0; i < 4; i++) gen_store(i);
  gen_export(0, 0);
  gen_export(1, 0);
  gen_export(3, 1);
  return 0;
}
