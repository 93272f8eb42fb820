/* test_err.c - the one error space (vh_err.h): every code is negative,
 * distinct from every other, and has its own name and text. */
#include <string.h>

#include "vh_err.h"
#include "vh_test.h"

#define ROW(c, n, t) {c, n, t, #c},
static const struct {
  int code;
  const char *name, *text, *macro;
} rows[] = {VH_ERR_LIST(ROW)};
#undef ROW
#define NROWS ((int)(sizeof rows / sizeof rows[0]))

TEST_IMPL(codes_distinct_and_named) {
  ASSERT_GT(NROWS, 20);
  for (int i = 0; i < NROWS; i++) {
    ASSERT_LT(rows[i].code, 0);
    ASSERT_STR_EQ(vh_err_name(rows[i].code), rows[i].name);
    ASSERT_STR_EQ(vh_strerror(rows[i].code), rows[i].text);
    ASSERT(strcmp(rows[i].name, "EUNKNOWN") != 0);
    ASSERT(rows[i].text[0] != '\0');
    for (int j = 0; j < i; j++) {
      if (rows[i].code == rows[j].code)
        fprintf(stderr, "%s and %s share %d\n", rows[i].macro, rows[j].macro,
                rows[i].code);
      ASSERT(rows[i].code != rows[j].code);
      ASSERT(strcmp(rows[i].name, rows[j].name) != 0);
    }
  }
  ASSERT_STR_EQ(vh_err_name(0), "EUNKNOWN");
  ASSERT_STR_EQ(vh_err_name(-1000), "EUNKNOWN");
  ASSERT_STR_EQ(vh_strerror(-1000), "unknown error");
}

TEST_IMPL(ranges_per_room) {
  /* each room's codes sit in its range (vh_err.h) */
  ASSERT(VH_EINVAL > -20 && VH_ENOMEM < 0);
  ASSERT(VHL_EBUSY <= -20 && VHL_EREADONLY > -30);
  ASSERT(VH_PLUGIN_ELOAD <= -30 && VH_PLUGIN_ELOAD > -40);
  ASSERT(VH_JSON_EPARSE <= -40 && VH_JSON_EIO > -50);
  ASSERT(VH_HOST_ELOAD <= -50 && VH_DATADIR_EBUSY > -70);
}

VH_TEST_MAIN(TEST_ENTRY(codes_distinct_and_named), TEST_ENTRY(ranges_per_room))
