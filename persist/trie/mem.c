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
 *
 * NODE CACHE. Blocks of VH_SLAB_MAX+1 .. VH_CACHE_MAX bytes (the CHAMP
 * nodes a path copy makes: ~100-1000 bytes) are malloc's, but a freed one
 * first waits in a free list of its 8-byte size class, from which the
 * next allocation of that class takes it. Why: a `sync` update at K = 1M
 * copies ~1.6 such nodes, and the slice end frees the replaced ones, ~16k
 * per slice of 10,000 updates, all at once. Given to free(), they filled
 * glibc's unsorted bin, which the next malloc of any size (the next
 * handler's path copies, Lua's strings, the flush's and the batch's
 * growing buffers) sorted chunk by chunk: malloc and free were ~25% of
 * the loop thread's time (bench/README.md "perf/loop"). The next slice asks for
 * the same sizes again (a path copy has its original's size), so the cache
 * hands them back at the cost of a pop. Blocks are malloc'd at the class's size
 * (8-byte rounding: the same glibc chunk as the exact size, so footprints do
 * not change).
 *
 * Bounds (memory must not grow, bench/README.md "Memory per key"): the
 * cache holds at most VH_CACHE_CAP bytes (a free beyond it goes to malloc
 * at once), and it keeps only what the next slice may reuse:
 * vh_mem_tick(), called by the host at every slice end (every loop turn),
 * frees the blocks that waited a whole tick untouched: two generations per
 * class, the blocks freed since the last tick and the older ones (an
 * allocation takes the newest first); a tick frees the older ones and
 * makes the newer ones older. So a block waits at most two ticks, and an
 * idle host (whose health timer turns the loop every second) gives the
 * cache back within two seconds (and the host then has malloc return the
 * free pages: host/runtime/sched.c). Without ticks (tests, tools) the
 * cache only stays under its cap.
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
#define VH_SLAB_MAX 64             /* larger blocks go to malloc */
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

#define VH_CACHE_MAX 2048                  /* larger blocks: malloc only */
#define VH_CACHE_CAP (32u * 1024u * 1024u) /* bytes held at most */
#define VH_CACHE_CLASSES (VH_CACHE_MAX / 8)
/* Per 8-byte class: free blocks linked through their first word (every
 * cached block is malloc'd, so 16-aligned), in two generations. */
static struct {
  void *cur; /* freed since the last vh_mem_tick */
  void *old; /* freed before it: freed for good at the next tick */
  size_t ncur, nold;
} cache[VH_CACHE_CLASSES + 1];
static size_t cache_bytes; /* bytes held by both generations */

static inline size_t cache_class(size_t size) {
  return (size + 7) >> 3;
}

/* The next block of a class will be written whole by the next path copy
 * of that size, a node or so later: fetch its lines now (for writing), so
 * neither the pop's read of its link nor the copy waits for them. */
static inline void cache_prefetch(const char *p, size_t size) {
  size_t off;
  for (off = 0; off < size; off += 64) __builtin_prefetch(p + off, 1);
}

static void *cache_alloc(size_t size) {
  size_t c = cache_class(size);
  void *p;
  if (cache[c].cur != NULL) {
    p = cache[c].cur;
    memcpy(&cache[c].cur, p, sizeof(void *));
    cache[c].ncur--;
    if (cache[c].cur != NULL) cache_prefetch(cache[c].cur, c << 3);
  } else if (cache[c].old != NULL) {
    p = cache[c].old;
    memcpy(&cache[c].old, p, sizeof(void *));
    cache[c].nold--;
  } else {
    return malloc(c << 3);
  }
  cache_bytes -= c << 3;
  return p;
}

static void cache_free(void *p, size_t size) {
  size_t c = cache_class(size);
  if (cache_bytes + (c << 3) > VH_CACHE_CAP) {
    free(p);
    return;
  }
  memcpy(p, &cache[c].cur, sizeof(void *));
  cache[c].cur = p;
  cache[c].ncur++;
  cache_bytes += c << 3;
}

/* Free the list at *head (n blocks of class c) to malloc. */
static void cache_drop(void **head, size_t *n, size_t c) {
  void *p = *head;
  while (p != NULL) {
    void *next;
    memcpy(&next, p, sizeof(void *));
    free(p);
    p = next;
  }
  cache_bytes -= *n * (c << 3);
  *head = NULL;
  *n = 0;
}
#endif

size_t vh_mem_tick(void) {
#ifdef VH_CACHE_MAX
  size_t c, before = cache_bytes;
  if (cache_bytes == 0) return 0;
  for (c = 0; c <= VH_CACHE_CLASSES; c++) {
    if (cache[c].old != NULL) cache_drop(&cache[c].old, &cache[c].nold, c);
    cache[c].old = cache[c].cur;
    cache[c].nold = cache[c].ncur;
    cache[c].cur = NULL;
    cache[c].ncur = 0;
  }
  return before - cache_bytes;
#else
  return 0;
#endif
}

size_t vh_mem_cached(void) {
#ifdef VH_CACHE_MAX
  return cache_bytes;
#else
  return 0;
#endif
}

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
  if (size <= VH_SLAB_MAX)
    p = slab_alloc(size == 0 ? 1 : size);
  else if (size <= VH_CACHE_MAX)
    p = cache_alloc(size);
  else
    p = malloc(size);
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
  if (size <= VH_CACHE_MAX) {
    cache_free(p, size);
    return;
  }
#endif
  free(p);
}
