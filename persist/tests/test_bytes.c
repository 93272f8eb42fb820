/* test_bytes.c - the shared byte helpers (vh_bytes.h): varints at their
 * boundaries, refusal of non-minimal and overlong varints, fixed-width
 * byte orders, the growth helper's overflow refusal, the byte buffer. */
#include <stdint.h>
#include <string.h>

#include "vh_bytes.h"
#include "vh_test.h"

/* Encodes x, checks the length and the bytes, decodes it back. */
static void roundtrip(uint64_t x, const unsigned char *want, size_t wlen) {
  unsigned char b[VH_VARINT_MAX + 2];
  size_t n = vh_varint_put(b, x), pos = 0;
  uint64_t y = 0;
  ASSERT_EQ(n, wlen);
  ASSERT(memcmp(b, want, wlen) == 0);
  ASSERT_EQ(vh_varint_get(b, n, &pos, &y), 0);
  ASSERT_EQ(pos, n);
  ASSERT(y == x);
  /* Any shorter input is truncated. */
  for (size_t k = 0; k < n; k++) {
    pos = 0;
    ASSERT_EQ(vh_varint_get(b, k, &pos, &y), VH_ECORRUPT);
    ASSERT_EQ(pos, 0);
  }
}

TEST_IMPL(varint_boundaries) {
  roundtrip(0, (const unsigned char *)"\x00", 1);
  roundtrip(127, (const unsigned char *)"\x7f", 1);
  roundtrip(128, (const unsigned char *)"\x80\x01", 2);
  roundtrip(16383, (const unsigned char *)"\xff\x7f", 2);
  roundtrip(16384, (const unsigned char *)"\x80\x80\x01", 3);
  roundtrip(UINT64_C(1) << 63,
            (const unsigned char *)"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
            10);
  roundtrip(UINT64_MAX,
            (const unsigned char *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            10);
}

TEST_IMPL(varint_refused) {
  static const struct {
    const char *b;
    size_t n;
  } bad[] = {
      {"\x80\x00", 2},                                  /* 0, not minimal */
      {"\xff\x00", 2},                                  /* 127, not minimal */
      {"\x80\x80\x00", 3},                              /* not minimal */
      {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10}, /* past 64 bits */
      {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x00", 11}, /* 11 bytes */
      {"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 10},     /* 10th byte 0 */
      {"\x80", 1},                                          /* truncated */
      {"", 0},                                              /* empty */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t pos = 0;
    uint64_t x = 42;
    ASSERT_EQ(
        vh_varint_get((const unsigned char *)bad[i].b, bad[i].n, &pos, &x),
        VH_ECORRUPT);
    ASSERT_EQ(pos, 0);
    ASSERT(x == 42);
  }
  /* The step form refuses at the byte that breaks the rule. */
  uint64_t x = 0;
  ASSERT_EQ(vh_varint_step(&x, 0, 0x80), 0);
  ASSERT_EQ(vh_varint_step(&x, 1, 0x00), VH_ECORRUPT);
  x = 0;
  ASSERT_EQ(vh_varint_step(&x, 9, 0x02), VH_ECORRUPT);
  ASSERT_EQ(vh_varint_step(&x, 9, 0x81), VH_ECORRUPT);
  x = 0;
  ASSERT_EQ(vh_varint_step(&x, 0, 0x00), 1);
  ASSERT(x == 0);
}

TEST_IMPL(varint_get_moves_pos) {
  const unsigned char b[] = {0x05, 0xac, 0x02, 0x7f};
  size_t pos = 1;
  uint64_t x = 0;
  ASSERT_EQ(vh_varint_get(b, sizeof b, &pos, &x), 0);
  ASSERT_EQ(x, 300);
  ASSERT_EQ(pos, 3);
  ASSERT_EQ(vh_varint_get(b, sizeof b, &pos, &x), 0);
  ASSERT_EQ(x, 127);
  ASSERT_EQ(pos, 4);
}

TEST_IMPL(zigzag) {
  static const int64_t x[] = {0, -1, 1, -2, 2, INT64_MAX, INT64_MIN};
  static const uint64_t z[] = {0, 1, 2, 3, 4, UINT64_MAX - 1, UINT64_MAX};
  for (int i = 0; i < 7; i++) {
    ASSERT_EQ(vh_zigzag(x[i]), z[i]);
    ASSERT_EQ(vh_unzigzag(z[i]), x[i]);
  }
}

TEST_IMPL(fixed_width) {
  unsigned char b[8];
  vh_le16_store(b, 0x1234);
  ASSERT(memcmp(b, "\x34\x12", 2) == 0);
  ASSERT_EQ(vh_le16_load(b), 0x1234);
  vh_le32_store(b, 0x89abcdefu);
  ASSERT(memcmp(b, "\xef\xcd\xab\x89", 4) == 0);
  ASSERT(vh_le32_load(b) == 0x89abcdefu);
  vh_le64_store(b, UINT64_C(0x0123456789abcdef));
  ASSERT(memcmp(b, "\xef\xcd\xab\x89\x67\x45\x23\x01", 8) == 0);
  ASSERT(vh_le64_load(b) == UINT64_C(0x0123456789abcdef));
  vh_be32_store(b, 0x89abcdefu);
  ASSERT(memcmp(b, "\x89\xab\xcd\xef", 4) == 0);
  ASSERT(vh_be32_load(b) == 0x89abcdefu);
  vh_be64_store(b, UINT64_C(0x0123456789abcdef));
  ASSERT(memcmp(b, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8) == 0);
  ASSERT(vh_be64_load(b) == UINT64_C(0x0123456789abcdef));
}

TEST_IMPL(grow) {
  uint32_t *a = NULL;
  size_t cap = 0;
  ASSERT_EQ(vh_grow(&a, &cap, 1, sizeof *a), 0);
  ASSERT(a != NULL);
  ASSERT_GE(cap, 1);
  size_t first = cap;
  ASSERT_EQ(vh_grow(&a, &cap, first, sizeof *a), 0); /* fits: no change */
  ASSERT_EQ(cap, first);
  ASSERT_EQ(vh_grow(&a, &cap, first + 1, sizeof *a), 0);
  ASSERT_EQ(cap, 2 * first); /* doubles */
  for (size_t i = 0; i < cap; i++) a[i] = (uint32_t)i;
  ASSERT_EQ(vh_grow(&a, &cap, 1000, sizeof *a), 0);
  ASSERT_GE(cap, 1000);
  ASSERT_EQ(a[first], first); /* contents kept */
  /* Sizes past size_t are refused, nothing changed. */
  uint32_t *keep = a;
  size_t kcap = cap;
  ASSERT_EQ(vh_grow(&a, &cap, SIZE_MAX / 2, sizeof *a), VH_ENOMEM);
  ASSERT_EQ(vh_grow(&a, &cap, SIZE_MAX, 1 + sizeof *a), VH_ENOMEM);
  ASSERT_EQ(vh_grow(&a, &cap, SIZE_MAX / sizeof *a + 1, sizeof *a), VH_ENOMEM);
  ASSERT(a == keep);
  ASSERT_EQ(cap, kcap);
  free(a);
}

TEST_IMPL(buf) {
  vh_buf_t b;
  vh_buf_init(&b);
  ASSERT_EQ(vh_buf_put(&b, "ab", 2), 0);
  ASSERT_EQ(vh_buf_put_varint(&b, 300), 0);
  ASSERT_EQ(b.len, 4);
  ASSERT(memcmp(b.p, "ab\xac\x02", 4) == 0);
  for (int i = 0; i < 1000; i++) ASSERT_EQ(vh_buf_put(&b, "x", 1), 0);
  ASSERT_EQ(b.len, 1004);
  ASSERT(b.cap >= b.len);
  size_t len = b.len;
  ASSERT_EQ(vh_buf_reserve(&b, SIZE_MAX), VH_ENOMEM);
  ASSERT_EQ(vh_buf_put(&b, "y", SIZE_MAX - 2), VH_ENOMEM);
  ASSERT_EQ(b.len, len);
  vh_buf_free(&b);
  ASSERT(b.p == NULL);
  ASSERT_EQ(b.cap, 0);
}

VH_TEST_MAIN(TEST_ENTRY(varint_boundaries), TEST_ENTRY(varint_refused),
             TEST_ENTRY(varint_get_moves_pos), TEST_ENTRY(zigzag),
             TEST_ENTRY(fixed_width), TEST_ENTRY(grow), TEST_ENTRY(buf))
