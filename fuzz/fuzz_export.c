/*
 * fuzz_export.c - the export/import stream reader (persist/trie/export.c), what
 * `vedhost import` reads from a file or a pipe.
 *
 * Input: byte 0 picks how the rest reaches the reader: bit 0 clear, the
 * rest is the raw stream (header, tables, trailer), compressed here into
 * one zstd frame, so mutations reach the parser rather than zstd's own
 * checks (the trailer's CRC then refuses most of them, but only after
 * every table was parsed); bit 0 set, the rest is handed over as is (a
 * zstd frame). Bits 1..7 choose the read size (1..127 bytes, or all), to
 * move record boundaries across reads. The reader runs as import does:
 * header, one table per domain (+ the system table), finish.
 * Checked: never a crash or leak; errors are the documented codes, each
 * with a one-line message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "vh_export.h"
#include "vh_trie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void vh_fuzz_check(int rc, const char *msg) {
  if (rc == 0) return;
  /* EINVAL: a name or version the host refuses; EDEPTH: nested too deep. */
  if (rc != VH_ECORRUPT && rc != VH_EFORMAT && rc != VH_ENOMEM &&
      rc != VH_EINVAL && rc != VH_EDEPTH) {
    fprintf(stderr, "fuzz_export: unexpected error %d: %s\n", rc,
            msg ? msg : "(no message)");
    abort();
  }
  if (!msg || !*msg || strchr(msg, '\n')) {
    fprintf(stderr, "fuzz_export: error %d without a one-line message: %s\n",
            rc, msg ? msg : "(none)");
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 20)) return 0;
  size_t live = vh_trie_live_nodes();
  unsigned char *z = NULL;
  vh_export_mem_t src = {data + 1, size - 1, 0, (size_t)(data[0] >> 1)};
  if (!(data[0] & 1)) {
    size_t cap = ZSTD_compressBound(size - 1);
    z = malloc(cap);
    if (!z) return 0;
    size_t n = ZSTD_compress(z, cap, data + 1, size - 1, 1);
    if (ZSTD_isError(n)) {
      free(z);
      return 0;
    }
    src.p = z;
    src.len = n;
  }
  vh_export_reader_t *r = NULL;
  if (vh_export_reader_new(vh_export_read_mem, &src, &r) != 0) {
    free(z);
    return 0;
  }
  vh_export_header_t h;
  memset(&h, 0, sizeof h);
  char *msg = NULL;
  uint64_t edit = vh_edit_new();
  int rc = vh_export_read_header(r, &h, &msg);
  size_t ntabs = h.ndomains + ((h.flags & VH_EXPORT_F_SYS) ? 1 : 0);
  for (size_t i = 0; rc == 0 && i < ntabs; i++) {
    vh_tab_t *t = NULL;
    rc = vh_export_read_table(r, edit, &t, &msg);
    if (rc == 0) {
      if (!t) abort();
      vh_tab_release(t);
    } else if (t) {
      fprintf(stderr, "fuzz_export: a failed read returned a table\n");
      abort();
    }
  }
  if (rc == 0) rc = vh_export_read_finish(r, NULL, &msg);
  vh_fuzz_check(rc, msg);
  free(msg);
  vh_export_header_free(&h);
  vh_export_reader_free(r);
  free(z);
  if (vh_trie_live_nodes() != live) {
    fprintf(stderr, "fuzz_export: trie nodes leaked\n");
    abort();
  }
  return 0;
}
