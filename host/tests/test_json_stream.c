/*
 * test_json_stream.c - the JSON writer in steps (json_stream.c): the same
 * bytes whatever the size of the buffers it is read with, and the bytes
 * jansson's compact dump writes for the same document (vh_json_encode is
 * this writer drained at once, so jansson is the independent reference); a
 * version pinned by a writer is written as it was while the table goes on
 * changing; the refusals (too deep, keys that clash) name the path; a big table
 * is written in many small steps.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "host_int.h"
#include "vh_json.h"
#include "vh_jstream.h"
#include "vh_limits.h"
#include "vh_test.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* A random string: ASCII, escapes, UTF-8 (good and bad bytes). */
static vh_str_t *rnd_str(void) {
  static const char *const parts[] = {"a",
                                      "bc",
                                      "\"",
                                      "\\",
                                      "\n",
                                      "\t",
                                      "\b",
                                      "\f",
                                      "\r",
                                      "\x01",
                                      "\x1f",
                                      "/",
                                      " ",
                                      "\x7f",
                                      "\xc3\xa9",
                                      "\xe2\x82\xac",
                                      "\xf0\x9f\x98\x80",
                                      "\xff",
                                      "\xc3",
                                      "\xed\xa0\x80",
                                      "\xc0\xaf",
                                      "\xf4\x90\x80\x80",
                                      "z"};
  char buf[64];
  size_t n = 0, k = rnd() % 8;
  for (size_t i = 0; i < k; i++) {
    const char *p = parts[rnd() % (sizeof parts / sizeof *parts)];
    size_t l = strlen(p);
    memcpy(buf + n, p, l);
    n += l;
  }
  if (rnd() % 16 == 0) buf[n++] = '\0';
  return vh_str_new(buf, n);
}

static vh_val_t rnd_val(int depth);

/* A random table: sequences, holes, mixed keys (string keys are letters
 * only, so they never clash with the text of a number or boolean key). */
static vh_tab_t *rnd_tab(int depth) {
  uint64_t edit = vh_edit_new();
  vh_tab_t *t = vh_tab_new(edit);
  ASSERT(t != NULL);
  int kind = (int)(rnd() % 4), n = (int)(rnd() % 12);
  for (int i = 0; i < n; i++) {
    vh_val_t k;
    if (kind == 0) {
      k = vh_int(i + 1); /* a sequence */
    } else {
      switch (rnd() % 5) {
        case 0:
          k = vh_int((int64_t)(rnd() % 20) - 3);
          break;
        case 1:
          k = vh_float((double)(rnd() % 1000) / 7.0);
          break;
        case 2:
          k = vh_bool((int)(rnd() % 2));
          break;
        default: {
          char kb[4] = {(char)('a' + rnd() % 5), (char)('a' + rnd() % 26), 0};
          k = vh_strv(vh_str_new(kb, 2));
        }
      }
      ASSERT_EQ(vh_key_norm(&k), 0);
    }
    ASSERT_EQ(vh_tab_set(&t, k, rnd_val(depth + 1), edit), 0);
    vh_val_release(k);
  }
  if (kind == 1 && n > 2) /* a hole */
    ASSERT_EQ(vh_tab_set(&t, vh_int(2), vh_nil(), edit), 0);
  return t;
}

static vh_val_t rnd_val(int depth) {
  switch (rnd() % (depth < 4 ? 8 : 6)) {
    case 0:
      return vh_bool((int)(rnd() % 2));
    case 1:
      return vh_int((int64_t)rnd());
    case 2: {
      static const double f[] = {
          0.5, -2.0, 1e20, 1e-7, 3.141592653589793, 1e300, -0.0, 123456789.0};
      double d = f[rnd() % 8];
      if (rnd() % 5 == 0) d = INFINITY;
      return vh_float(d);
    }
    case 3:
    case 4:
    case 5:
      return vh_strv(rnd_str());
    default:
      return vh_tabv(rnd_tab(depth));
  }
}

/* The whole text of a writer read with buffers of `step` bytes. *out
 * [new]. Returns the last code. */
static int read_all(vh_jstream_t *s, size_t step, char **out, size_t *len) {
  size_t cap = 1024, n = 0;
  char *buf = malloc(cap);
  int rc;
  do {
    if (n + step > cap) {
      while (n + step > cap) cap *= 2;
      buf = realloc(buf, cap);
    }
    size_t got = 0;
    rc = vh_jstream_read(s, buf + n, step, &got);
    ASSERT(rc < 0 || got > 0 || rc == 0);
    n += got;
  } while (rc == 1);
  *out = buf;
  *len = n;
  return rc;
}

TEST_IMPL(same_bytes_as_json_encode) {
  static const size_t steps[] = {1, 2, 3, 7, 64, 65536};
  for (int round = 0; round < 400; round++) {
    vh_val_t v = rnd_val(round % 3);
    char *want = NULL;
    size_t wn = 0;
    ASSERT_EQ(vh_json_encode(v, &want, &wn), 0);
    /* jansson reads it and writes it back byte for byte */
    json_error_t jerr;
    json_t *j = json_loadb(want, wn, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    ASSERT(j != NULL);
    char *back = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    ASSERT(back != NULL);
    if (strlen(back) != wn || memcmp(back, want, wn) != 0) {
      fprintf(stderr, "ours    %.*s\njansson %s\n", (int)wn, want, back);
      ASSERT(0);
    }
    free(back);
    json_decref(j);
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
      vh_jstream_t *s;
      ASSERT_EQ(vh_jstream_new(v, &s), 0);
      char *got;
      size_t gn;
      ASSERT_EQ(read_all(s, steps[i], &got, &gn), 0);
      if (gn != wn || memcmp(got, want, wn) != 0) {
        fprintf(stderr, "step %zu\nwant %.*s\ngot  %.*s\n", steps[i], (int)wn,
                want, (int)gn, got);
        ASSERT(0);
      }
      ASSERT_EQ(vh_jstream_total(s), gn);
      free(got);
      vh_jstream_free(s);
    }
    free(want);
    vh_val_release(v);
  }
}

TEST_IMPL(pinned_version_is_written_as_it_was) {
  uint64_t e1 = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e1);
  for (int i = 1; i <= 3000; i++)
    ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(i), e1), 0);
  vh_jstream_t *s;
  ASSERT_EQ(vh_jstream_new(vh_tabv(t), &s), 0);
  char *want;
  size_t wn;
  ASSERT_EQ(vh_json_encode(vh_tabv(t), &want, &wn), 0);
  char buf[100];
  size_t n, got = 0;
  ASSERT_EQ(vh_jstream_read(s, buf, sizeof buf, &n), 1);
  ASSERT_EQ(memcmp(buf, want, n), 0);
  got += n;
  /* later "slices": fresh tokens, as the host takes */
  for (int round = 0; round < 50; round++) {
    uint64_t e = vh_edit_new();
    for (int i = 1; i <= 3000; i += 7)
      ASSERT_EQ(vh_tab_set(&t, vh_int(i), vh_int(-round), e), 0);
    ASSERT_EQ(vh_tab_set(&t, vh_int(3001 + round), vh_int(0), e), 0);
    ASSERT_EQ(vh_jstream_read(s, buf, sizeof buf, &n), 1);
    ASSERT_EQ(memcmp(buf, want + got, n), 0);
    got += n;
  }
  vh_tab_release(t); /* only the writer holds the old version now */
  int rc;
  do {
    rc = vh_jstream_read(s, buf, sizeof buf, &n);
    ASSERT(rc >= 0);
    ASSERT(got + n <= wn);
    ASSERT_EQ(memcmp(buf, want + got, n), 0);
    got += n;
  } while (rc == 1);
  ASSERT_EQ(got, wn);
  vh_jstream_free(s);
  free(want);
}

TEST_IMPL(refuses_deep_nesting_with_path) {
  uint64_t e = vh_edit_new();
  vh_tab_t *inner = vh_tab_new(e);
  for (int i = 0; i < VH_MAX_DEPTH; i++) {
    vh_tab_t *outer = vh_tab_new(e);
    ASSERT_EQ(vh_tab_set(&outer, vh_int(1), vh_tabv(inner), e), 0);
    inner = outer;
  }
  /* VH_MAX_DEPTH + 1 levels */
  vh_jstream_t *s;
  ASSERT_EQ(vh_jstream_new(vh_tabv(inner), &s), 0);
  char *got;
  size_t gn;
  ASSERT_EQ(read_all(s, 4096, &got, &gn), VH_JSON_EPARSE);
  const char *msg = vh_jstream_error(s);
  ASSERT(strncmp(msg, "$[0][0][0]", 10) == 0);
  ASSERT(strstr(msg, "nested deeper than") != NULL);
  size_t n;
  ASSERT_EQ(vh_jstream_read(s, got, 1, &n), VH_JSON_EPARSE); /* sticky */
  free(got);
  vh_jstream_free(s);
  /* one level less is fine */
  vh_val_t v;
  vh_tab_get_int(inner, 1, &v);
  ASSERT_EQ(vh_jstream_new(v, &s), 0);
  ASSERT_EQ(read_all(s, 4096, &got, &gn), 0);
  ASSERT_EQ(gn, 2 * (size_t)VH_MAX_DEPTH);
  free(got);
  vh_jstream_free(s);
  vh_tab_release(inner);
}

TEST_IMPL(refuses_clashing_keys_with_path) {
  static const char *const cases[][2] = {
      {"1", "i"}, {"true", "b"}, {"1.5", "f"}};
  for (int c = 0; c < 3; c++) {
    uint64_t e = vh_edit_new();
    vh_tab_t *t = vh_tab_new(e), *in = vh_tab_new(e);
    vh_val_t k = cases[c][1][0] == 'i'   ? vh_int(1)
                 : cases[c][1][0] == 'b' ? vh_bool(1)
                                         : vh_float(1.5);
    ASSERT_EQ(vh_tab_set(&in, k, vh_int(1), e), 0);
    vh_val_t sk = vh_strv(vh_str_new(cases[c][0], strlen(cases[c][0])));
    ASSERT_EQ(vh_tab_set(&in, sk, vh_int(2), e), 0);
    vh_val_release(sk);
    vh_val_t name = vh_strv(vh_str_new("users", 5));
    ASSERT_EQ(vh_tab_set(&t, name, vh_tabv(in), e), 0);
    vh_val_release(name);
    vh_jstream_t *s;
    ASSERT_EQ(vh_jstream_new(vh_tabv(t), &s), 0);
    char *got;
    size_t gn;
    ASSERT_EQ(read_all(s, 3, &got, &gn), VH_JSON_EPARSE);
    const char *msg = vh_jstream_error(s);
    ASSERT(strncmp(msg, "cannot write $.users as JSON", 28) == 0);
    ASSERT(strstr(msg, cases[c][0]) != NULL);
    free(got);
    vh_jstream_free(s);
    vh_tab_release(t);
  }
}

TEST_IMPL(big_table_in_small_steps) {
  uint64_t e = vh_edit_new();
  vh_tab_t *t = vh_tab_new(e);
  char kb[32];
  for (int i = 0; i < 200000; i++) {
    int n = snprintf(kb, sizeof kb, "key%d", i);
    vh_val_t k = vh_strv(vh_str_new(kb, (size_t)n));
    ASSERT_EQ(vh_tab_set(&t, k, vh_int(i), e), 0);
    vh_val_release(k);
  }
  vh_jstream_t *s;
  ASSERT_EQ(vh_jstream_new(vh_tabv(t), &s), 0);
  char *buf = malloc(65536);
  size_t n, total = 0;
  int rc, steps = 0;
  do {
    rc = vh_jstream_read(s, buf, 65536, &n);
    ASSERT(rc >= 0);
    total += n;
    steps++;
  } while (rc == 1);
  char *want;
  size_t wn;
  ASSERT_EQ(vh_json_encode(vh_tabv(t), &want, &wn), 0);
  ASSERT_EQ(total, wn);
  ASSERT_GT(steps, 40);
  free(want);
  free(buf);
  vh_jstream_free(s);
  vh_tab_release(t);
}

TEST_IMPL(utf8_len) {
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"a", 1), 1);
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"\xc3\xa9", 2), 2);
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"\xc3", 1), 0);
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"\xed\xa0\x80", 3), 0);
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"\xc0\xaf", 2), 0);
  ASSERT_EQ(vh_json__utf8_len((const unsigned char *)"\x80", 1), 0);
}

VH_TEST_MAIN(TEST_ENTRY(same_bytes_as_json_encode),
             TEST_ENTRY(pinned_version_is_written_as_it_was),
             TEST_ENTRY(refuses_deep_nesting_with_path),
             TEST_ENTRY(refuses_clashing_keys_with_path),
             TEST_ENTRY(big_table_in_small_steps), TEST_ENTRY(utf8_len))
