/*
 * crc32c.c - table-driven CRC-32C ("slicing by 8").
 *
 * What: the CRC-32C (Castagnoli) of a byte string, used by the store to
 * checksum every value it writes (persist/store/store.c: [u32
 * crc][kind][payload]).
 *
 * How: the classic byte-at-a-time table algorithm, sped up by processing 8
 * bytes per step with 8 tables (Intel's "slicing-by-8"): table[k][b] is the
 * CRC contribution of byte b followed by k zero bytes, so the 8 lookups of
 * one 64-bit word can be xored together independently. About 1-2 GB/s in
 * plain C. On x86-64 CPUs with SSE4.2 the CRC32 instruction (which
 * computes exactly CRC-32C) does 8 bytes per instruction instead: the
 * writer thread checksums every node it writes, and the profile of a
 * `sync` update (bench/README.md) had the table path at ~4% of that
 * thread; the instruction path is chosen once, at the table init, from
 * the CPU's feature bits, and gives the same result (persist/tests
 * test_store checks both against a bitwise reference).
 *
 * Invariants: the tables are computed once (pthread_once) and never written
 * again, so any thread may call vh_crc32c() at any time. The input is read
 * byte by byte when assembling words, so alignment and host byte order do
 * not matter (the result is the same on every machine).
 */
#include "vh_crc32c.h"

#include <pthread.h>
#include <string.h>

#include "vh_bytes.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define VH_CRC_HW 1
#endif

#define VH_CRC32C_POLY 0x82F63B78u /* reflected 0x1EDC6F41 */

static uint32_t crc_table[8][256]; /* written once by crc_init_tables */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw_ok; /* the CPU has SSE4.2 (set once by crc_init_tables) */
int vh_crc32c__no_hw; /* tests: 1 = always the table path */

#ifdef VH_CRC_HW
/* The CRC32 instruction: CRC-32C without the pre/post inversion. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc,
                                                         const unsigned char *p,
                                                         size_t len) {
  uint64_t c = crc;
  while (len >= 8) {
    uint64_t w; /* x86 is little endian: a plain load is vh_le64_load */
    memcpy(&w, p, sizeof w);
    c = _mm_crc32_u64(c, w);
    p += 8;
    len -= 8;
  }
  crc = (uint32_t)c;
  while (len--) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
#endif

static void crc_init_tables(void) {
#ifdef VH_CRC_HW
  __builtin_cpu_init();
  crc_hw_ok = __builtin_cpu_supports("sse4.2") != 0;
#endif
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (VH_CRC32C_POLY & (0u - (c & 1)));
    crc_table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = crc_table[0][b];
    for (int t = 1; t < 8; t++) {
      c = (c >> 8) ^ crc_table[0][c & 0xff];
      crc_table[t][b] = c;
    }
  }
}

uint32_t vh_crc32c(uint32_t crc, const void *buf, size_t len) {
  const unsigned char *p = buf;
  pthread_once(&crc_once, crc_init_tables);
  crc = ~crc;
#ifdef VH_CRC_HW
  if (crc_hw_ok && !vh_crc32c__no_hw) return ~crc_hw(crc, p, len);
#endif
  while (len >= 8) {
    uint32_t lo = crc ^ vh_le32_load(p);
    crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
          crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
          crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
          crc_table[0][p[7]];
    p += 8;
    len -= 8;
  }
  while (len--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
  return ~crc;
}
