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
 *
 * SLABS. Most blocks are small (a key string "k123456" is 20 bytes, a
 * CHAMP leaf with 2-3 entries ~100), and malloc spends an 8-byte header and
 * rounds to 16 bytes with a 32-byte minimum on each: 12 of the 32 bytes a
 * short key string costs. Blocks up to VH_SLAB_MAX bytes are therefore cut
 * from 64 KiB pages, one size class per 4 bytes, with a free list per
 * class threaded through the free slots' first word (memcpy: a slot may
 * be only 4-aligned): no header, 4-byte rounding. Alignment: a class whose
 * size is a multiple of 8 has 8-aligned slots (the page is malloc's,
 * 16-aligned), and every node's size is a multiple of 8 (its header has
 * 64-bit fields), so nodes keep the 8-byte alignment they need; the other
 * classes hold only strings (12-byte header of 32-bit fields, then bytes:
 * 4-byte alignment). Key "k123456" (20 bytes): 20 bytes, was 24 with
 * 8-byte classes (census at 1M keys: 73 -> 69 B/key). The size the caller
 * passes back picks the class, which is why it must be exact. Pages are
 * never handed back (a free slot is reused by the next block of its
 * class); a state that shrinks a lot keeps its pages, as malloc's heap
 * would mostly keep its top. One thread at a time (see above): the free
 * lists are plain. Sanitizer builds (VH_SANITIZE) use plain malloc so that
 * ASan still sees every block's bounds and lifetime.
 * VH_SLAB_MAX was 64 (strings and the smallest nodes); it is 1024 since
 * the CHAMP nodes went to malloc: at 1M keys 308k nodes of 144 B on
 * average, each spending malloc's header and rounding (census: 44.3 B/key
 * asked, 49.0 spent; now 44.3 and 44.3, bench/README.md "Memory after a
 * long history"). Larger nodes (a full 32-entry CHAMP node is ~1.1 KB)
 * and long strings still go to malloc, whose overhead is small beside
 * them. A page holds at least 64 slots of the largest class.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_trie_int.h"

static size_t mem_bytes;  /* live bytes (requested sizes) */
static size_t mem_blocks; /* live blocks */
static size_t mem_real;   /* live bytes as the allocator spends them */
static long mem_fail_in;  /* > 0: the mem_fail_in-th allocation fails */

#ifndef VH_SANITIZE
#define VH_SLAB_MAX 1024           /* larger blocks go to malloc */
#define VH_SLAB_PAGE (64u * 1024u) /* bytes cut per page */
#define VH_SLAB_CLASSES (VH_SLAB_MAX / 4)
static struct {
  void *free; /* free slots, linked through their first word */
  char *cur;  /* bump pointer into the class's newest page */
  char *end;
} slab[VH_SLAB_CLASSES + 1];

/* The class of a block: its size in 4-byte units, at least 2 (a free
 * slot holds the free list's pointer). */
static size_t slab_class(size_t size) {
  size_t c = (size + 3) >> 2;
  return c < 2 ? 2 : c;
}

static void *slab_alloc(size_t size) {
  size_t c = slab_class(size), sz = c << 2;
  void *p = slab[c].free;
  if (p != NULL) {
    memcpy(&slab[c].free, p, sizeof(void *));
    return p;
  }
  if ((size_t)(slab[c].end - slab[c].cur) < sz) {
    char *page = malloc(VH_SLAB_PAGE);
    if (page == NULL) return NULL;
    slab[c].cur = page;
    slab[c].end = page + VH_SLAB_PAGE / sz * sz;
  }
  p = slab[c].cur;
  slab[c].cur += sz;
  return p;
}

static void slab_free(void *p, size_t size) {
  size_t c = slab_class(size);
  memcpy(p, &slab[c].free, sizeof(void *));
  slab[c].free = p;
}
#endif

size_t vh_mem_bytes(void) {
  return mem_bytes;
}

size_t vh_mem_blocks(void) {
  return mem_blocks;
}

size_t vh_mem_footprint(void) {
  return mem_real;
}

/* A slab slot (size rounded to 4, at least 8), or a glibc malloc chunk:
 * an 8-byte header, 16-byte granularity, 32-byte minimum. */
size_t vh_mem__footprint(size_t size) {
#ifdef VH_SLAB_MAX
  if (size <= VH_SLAB_MAX) return size <= 8 ? 8 : (size + 3) & ~(size_t)3;
#endif
  size_t c = (size + 8 + 15) & ~(size_t)15;
  return c < 32 ? 32 : c;
}

void vh_mem_fail_after(long n) {
  mem_fail_in = n > 0 ? n : 0;
}

void *vh_mem__alloc(size_t size) {
  void *p;
  if (mem_fail_in > 0 && --mem_fail_in == 0) return NULL;
#ifdef VH_SLAB_MAX
  p = size <= VH_SLAB_MAX ? slab_alloc(size == 0 ? 1 : size) : malloc(size);
#else
  p = malloc(size);
#endif
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
#ifdef VH_SLAB_MAX
  if (size <= VH_SLAB_MAX) {
    slab_free(p, size == 0 ? 1 : size);
    return;
  }
#endif
  free(p);
}
