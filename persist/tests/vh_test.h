/*
 * vh_test.h - a tiny unit-test framework for vedhost's C tests, in the
 * spirit of libuv's runner. Header only, generic (includes nothing from
 * the project).
 *
 *   TEST_IMPL(name) { ASSERT_EQ(1 + 1, 2); }
 *   ...
 *   VH_TEST_MAIN(TEST_ENTRY(name), TEST_ENTRY(other))
 *
 * A failed assertion prints file:line, the expression and both sides, and
 * ends the current test (longjmp); the runner goes on with the next one.
 * `prog NAME...` runs only the named tests. The last line printed is
 * "N passed, N failed"; the exit status is 1 if any test failed.
 * Tests may call TEST_SKIP("why") to end early, counted as passed.
 */
#ifndef VH_TEST_H
#define VH_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vh_test_entry {
  const char *name;
  void (*fn)(void);
} vh_test_entry_t;

static jmp_buf vh_test__jmp;
static int vh_test__failed_now;

#define TEST_IMPL(name) static void vh_test_fn_##name(void)
#define TEST_ENTRY(name) \
  { #name, vh_test_fn_##name }

static void vh_test__fail(void) {
  vh_test__failed_now = 1;
  longjmp(vh_test__jmp, 1);
}

#define ASSERT(expr)                                                       \
  do {                                                                     \
    if (!(expr)) {                                                         \
      fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, \
              #expr);                                                      \
      vh_test__fail();                                                     \
    }                                                                      \
  } while (0)

#define VH_TEST__CMP(a, op, b)                                               \
  do {                                                                       \
    intmax_t vh_a_ = (intmax_t)(a), vh_b_ = (intmax_t)(b);                   \
    if (!(vh_a_ op vh_b_)) {                                                 \
      fprintf(stderr,                                                        \
              "%s:%d: assertion failed: %s %s %s (%" PRIdMAX " vs %" PRIdMAX \
              ")\n",                                                         \
              __FILE__, __LINE__, #a, #op, #b, vh_a_, vh_b_);                \
      vh_test__fail();                                                       \
    }                                                                        \
  } while (0)

#define ASSERT_EQ(a, b) VH_TEST__CMP(a, ==, b)
#define ASSERT_NE(a, b) VH_TEST__CMP(a, !=, b)
#define ASSERT_LT(a, b) VH_TEST__CMP(a, <, b)
#define ASSERT_LE(a, b) VH_TEST__CMP(a, <=, b)
#define ASSERT_GT(a, b) VH_TEST__CMP(a, >, b)
#define ASSERT_GE(a, b) VH_TEST__CMP(a, >=, b)

#define ASSERT_PTR_EQ(a, b)                                             \
  do {                                                                  \
    const void *vh_a_ = (a), *vh_b_ = (b);                              \
    if (vh_a_ != vh_b_) {                                               \
      fprintf(stderr, "%s:%d: assertion failed: %s == %s (%p vs %p)\n", \
              __FILE__, __LINE__, #a, #b, vh_a_, vh_b_);                \
      vh_test__fail();                                                  \
    }                                                                   \
  } while (0)

#define ASSERT_PTR_NE(a, b)                                            \
  do {                                                                 \
    const void *vh_a_ = (a), *vh_b_ = (b);                             \
    if (vh_a_ == vh_b_) {                                              \
      fprintf(stderr, "%s:%d: assertion failed: %s != %s (both %p)\n", \
              __FILE__, __LINE__, #a, #b, vh_a_);                      \
      vh_test__fail();                                                 \
    }                                                                  \
  } while (0)

#define ASSERT_STR_EQ(a, b)                                             \
  do {                                                                  \
    const char *vh_a_ = (a), *vh_b_ = (b);                              \
    if (vh_a_ == NULL || vh_b_ == NULL || strcmp(vh_a_, vh_b_) != 0) {  \
      fprintf(stderr,                                                   \
              "%s:%d: assertion failed: %s == %s (\"%s\" vs \"%s\")\n", \
              __FILE__, __LINE__, #a, #b, vh_a_ ? vh_a_ : "(null)",     \
              vh_b_ ? vh_b_ : "(null)");                                \
      vh_test__fail();                                                  \
    }                                                                   \
  } while (0)

#define TEST_SKIP(why)                         \
  do {                                         \
    fprintf(stderr, "  skipped: %s\n", (why)); \
    longjmp(vh_test__jmp, 2);                  \
  } while (0)

static int vh_test__selected(int argc, char **argv, const char *name) {
  int i;
  if (argc < 2) return 1;
  for (i = 1; i < argc; i++)
    if (strcmp(argv[i], name) == 0) return 1;
  return 0;
}

/* Run one test; 1 if it failed. setjmp lives in this small frame so no
 * local of the runner can be clobbered by the longjmp. */
static int vh_test__call(void (*fn)(void)) {
  vh_test__failed_now = 0;
  if (setjmp(vh_test__jmp) == 0) fn();
  return vh_test__failed_now;
}

static int vh_test__run(const vh_test_entry_t *tests, size_t ntests, int argc,
                        char **argv) {
  size_t i;
  int passed = 0, failed = 0;
  for (i = 0; i < ntests; i++) {
    if (!vh_test__selected(argc, argv, tests[i].name)) continue;
    if (vh_test__call(tests[i].fn)) {
      failed++;
      printf("not ok %zu - %s\n", i + 1, tests[i].name);
    } else {
      passed++;
      printf("ok %zu - %s\n", i + 1, tests[i].name);
    }
    fflush(stdout);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

/* A test file that defines VH_TEST_PRE_MAIN(argc, argv) before including
 * this header has it run first: a result >= 0 is the exit status (a helper
 * mode, such as a child process the tests start), -1 runs the tests. */
#ifndef VH_TEST_PRE_MAIN
#define VH_TEST_PRE_MAIN(argc, argv) -1
#endif

#define VH_TEST_MAIN(...)                                                  \
  int main(int argc, char **argv) {                                        \
    static const vh_test_entry_t vh_tests_[] = {__VA_ARGS__};              \
    int vh_pre_ = VH_TEST_PRE_MAIN(argc, argv);                            \
    if (vh_pre_ >= 0) return vh_pre_;                                      \
    return vh_test__run(vh_tests_, sizeof vh_tests_ / sizeof vh_tests_[0], \
                        argc, argv);                                       \
  }

#endif /* VH_TEST_H */
