/*
 * mem.c - the trie's allocator wrapper: accounting and failure injection.
 *
 * Every block the trie allocates (nodes and strings) goes through
 * vh_mem__alloc / vh_mem__free. The caller passes the block's size back to
 * vh_mem__free (every block's size is computable from its contents: a
 * string from its length, a node from its bitmaps or slot counts), so no
 * size header is stored and the counters cost two additions per call.
 *
 * Threads: the counters are plain, not atomic. The trie is used by one
 * thread at a time (the loop thread; the store's writer thread never
 * allocates or frees trie nodes), so this is exact. vh_mem_fail_after() is
 * a test hook with the same rule.
 *
 * Invariants: bytes == sum of the sizes of live blocks; blocks == their
 * number. Freeing more than was allocated aborts (it means a size mismatch).
 */
#include <stdio.h>
#include <stdlib.h>

#include "vh_trie_int.h"

static size_t mem_bytes;  /* live bytes (requested sizes) */
static size_t mem_blocks; /* live blocks */
static size_t mem_real;   /* live bytes as the allocator spends them */
static long mem_fail_in;  /* > 0: the mem_fail_in-th allocation fails */

size_t vh_mem_bytes(void) {
  return mem_bytes;
}

size_t vh_mem_blocks(void) {
  return mem_blocks;
}

size_t vh_mem_footprint(void) {
  return mem_real;
}

/* glibc malloc: an 8-byte chunk header, 16-byte granularity, 32-byte
 * minimum chunk. */
size_t vh_mem__footprint(size_t size) {
  size_t c = (size + 8 + 15) & ~(size_t)15;
  return c < 32 ? 32 : c;
}

void vh_mem_fail_after(long n) {
  mem_fail_in = n > 0 ? n : 0;
}

void *vh_mem__alloc(size_t size) {
  void *p;
  if (mem_fail_in > 0 && --mem_fail_in == 0) return NULL;
  p = malloc(size);
  if (p == NULL) return NULL;
  mem_bytes += size;
  mem_real += vh_mem__footprint(size);
  mem_blocks++;
  return p;
}

void vh_mem__free(void *p, size_t size) {
  if (p == NULL) return;
  if (size > mem_bytes || mem_blocks == 0) {
    fprintf(stderr, "vedhost: vh_mem__free: accounting underflow (%zu)\n",
            size);
    abort();
  }
  mem_bytes -= size;
  mem_real -= vh_mem__footprint(size);
  mem_blocks--;
  free(p);
}
