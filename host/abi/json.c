/*
 * json.c - JSON text <-> state values, for the plugin ABI and the HTTP
 * ingress. Parsing is jansson's (this file maps its tree to vh_val_t);
 * printing is json_stream.c's, drained into one buffer here (see "encode"
 * below). The rules are
 * those of vedhost/plugin.h:
 *
 *   decode  object -> table (string keys; a null member is skipped);
 *           array -> table 1..n (a null element is refused: a Lua
 *           sequence cannot hold a hole exactly, and silently shifting or
 *           dropping it would change the data); integer -> int64 (jansson
 *           already refuses "too big integer"); real -> float; strings
 *           may hold \u0000 (JSON_ALLOW_NUL: state strings are
 *           binary-safe); invalid UTF-8 is refused by jansson.
 *   encode  a table is an array iff it is non-empty and its keys are
 *           exactly 1..n (checked by walking it, since #t and the count
 *           agree for some tables with holes too); otherwise an object
 *           whose keys are strings (integer keys in decimal, float keys
 *           %.17g, booleans true/false). An empty table is {}: Lua cannot
 *           tell [] from {} and the object is the safer reading. Strings
 *           are sanitised to UTF-8 (each byte of a bad sequence becomes
 *           U+FFFD), infinities become null. Any depth is written; a table
 *           whose keys would collide as JSON member names is refused
 *           (never a member silently dropped).
 *
 * Tables built by decode are stamped with one fresh edit token per
 * document; each nested table has exactly one parent (invariant 5 of
 * ARCHITECTURE.md). Lazily loaded state is read through the trie's loader; a
 * read fault during encode is reported as VH_JSON_EIO, never as missing
 * data.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "host_int.h"
#include "vh_bytes.h"
#include "vh_json.h"
#include "vh_jstream.h"
#include "vh_limits.h"

/* ---- decode ---- */

typedef struct vh_jdec {
  uint64_t edit;
  char path[256]; /* "$.a[3].b", truncated when long */
  size_t plen;
  char *err;
  size_t cap;
} vh_jdec_t;

static void vh_jdec_push(vh_jdec_t *d, const char *fmt, const char *s,
                         size_t i) {
  if (d->plen >= sizeof d->path - 1) return;
  int n;
  if (s)
    n = snprintf(d->path + d->plen, sizeof d->path - d->plen, fmt, s);
  else
    n = snprintf(d->path + d->plen, sizeof d->path - d->plen, fmt, i);
  if (n > 0) d->plen += (size_t)n;
  if (d->plen > sizeof d->path - 1) d->plen = sizeof d->path - 1;
}

static int vh_jdec_fail(vh_jdec_t *d, const char *why) {
  snprintf(d->err, d->cap, "%.*s: %s", (int)d->plen, d->path, why);
  return VH_JSON_EPARSE;
}

static int vh_jdec_val(vh_jdec_t *d, json_t *j, int depth, vh_val_t *out);

static int vh_jdec_table(vh_jdec_t *d, json_t *j, int depth, vh_val_t *out) {
  /* jansson's parser stops at 2048 levels already ("maximum parsing depth
   * reached"); the state's own limit is checked here all the same. */
  if (depth + 1 > VH_MAX_DEPTH) return vh_jdec_fail(d, "nested too deep");
  vh_tab_t *t = vh_tab_new(d->edit);
  if (!t) return VH_ENOMEM;
  size_t mark = d->plen;
  int rc = 0;
  if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j) && rc == 0; i++) {
      json_t *e = json_array_get(j, i);
      vh_jdec_push(d, "[%zu]", NULL, i);
      vh_val_t v;
      if (json_is_null(e))
        rc = vh_jdec_fail(d,
                          "null inside an array cannot be held by Lua "
                          "state (use false or an object)");
      else
        rc = vh_jdec_val(d, e, depth + 1, &v);
      if (rc == 0) rc = vh_tab_set(&t, vh_int((int64_t)i + 1), v, d->edit);
      d->plen = mark;
    }
  } else {
    const char *k;
    size_t klen;
    json_t *e;
    void *tmp;
    json_object_keylen_foreach_safe(j, tmp, k, klen, e) {
      if (rc != 0) break;
      if (json_is_null(e)) continue; /* absent, as in Lua */
      vh_jdec_push(d, ".%s", k, 0);
      vh_val_t v;
      rc = vh_jdec_val(d, e, depth + 1, &v);
      vh_str_t *ks = NULL;
      if (rc == 0) {
        ks = vh_str_new(k, klen);
        if (!ks) {
          vh_val_release(v);
          rc = VH_ENOMEM;
        }
      }
      if (rc == 0) {
        rc = vh_tab_set(&t, vh_strv(ks), v, d->edit);
        vh_str_release(ks);
      }
      d->plen = mark;
    }
  }
  if (rc != 0) {
    vh_tab_release(t);
    return rc;
  }
  *out = vh_tabv(t);
  return 0;
}

static int vh_jdec_val(vh_jdec_t *d, json_t *j, int depth, vh_val_t *out) {
  switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
      return vh_jdec_table(d, j, depth, out);
    case JSON_STRING: {
      vh_str_t *s = vh_str_new(json_string_value(j), json_string_length(j));
      if (!s) return VH_ENOMEM;
      *out = vh_strv(s);
      return 0;
    }
    case JSON_INTEGER:
      *out = vh_int((int64_t)json_integer_value(j));
      return 0;
    case JSON_REAL:
      *out = vh_float(json_real_value(j));
      return 0;
    case JSON_TRUE:
      *out = vh_bool(1);
      return 0;
    case JSON_FALSE:
      *out = vh_bool(0);
      return 0;
    case JSON_NULL:
    default:
      *out = vh_nil();
      return 0;
  }
}

/* The message quotes the input (jansson's "near '...'", object keys in a
 * path): control bytes become '?' so that it stays one line in a log
 * (found by fuzz/fuzz_json.c). */
static void vh_json_one_line(char *err) {
  for (unsigned char *p = (unsigned char *)err; *p; p++)
    if (*p < 0x20 || *p == 0x7f) *p = '?';
}

int vh_json_decode(const char *text, size_t len, vh_val_t *out, char *err,
                   size_t cap) {
  *out = vh_nil();
  size_t i = 0;
  while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                     text[i] == '\r'))
    i++;
  if (i == len) return 0;
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!j) {
    snprintf(err, cap, "bad JSON at line %d column %d: %s", je.line, je.column,
             je.text);
    vh_json_one_line(err);
    return VH_JSON_EPARSE;
  }
  vh_jdec_t d = {vh_edit_new(), "$", 1, err, cap};
  int rc = vh_jdec_val(&d, j, 0, out);
  json_decref(j);
  if (rc == VH_ENOMEM) snprintf(err, cap, "out of memory");
  if (rc != 0) vh_json_one_line(err);
  return rc;
}

/* ---- encode ----
 *
 * One writer for every JSON the host produces: json_stream.c (vh_jstream.h),
 * which walks the value with an explicit stack and writes jansson's compact
 * format byte for byte, refusing (with the path) what JSON cannot hold
 * exactly. The one-shot functions below drain it into a buffer. */

/* Appends the whole text of the writer s to b, read straight into b's
 * free room. 0, or the writer's error. */
static int vh_json_drain(vh_jstream_t *s, vh_buf_t *b) {
  for (;;) {
    if (vh_buf_reserve(b, 16384) != 0) return VH_ENOMEM;
    size_t n = 0;
    int rc = vh_jstream_read(s, (char *)b->p + b->len, b->cap - b->len, &n);
    if (rc < 0) return rc;
    b->len += n;
    if (rc == 0) return 0;
  }
}

/* Ends b with a NUL and hands it out as *out [new], *outlen (without the
 * NUL). 0 or VH_ENOMEM (b freed). */
static int vh_json_finish(vh_buf_t *b, char **out, size_t *outlen) {
  if (vh_buf_put(b, "", 1) != 0) {
    vh_buf_free(b);
    return VH_ENOMEM;
  }
  *out = (char *)b->p;
  *outlen = b->len - 1;
  return 0;
}

int vh_json_encode_err(vh_val_t v, char **out, size_t *outlen, char *err,
                       size_t cap) {
  *out = NULL;
  *outlen = 0;
  if (err && cap) err[0] = '\0';
  vh_jstream_t *s;
  if (vh_jstream_new(v, &s) != 0) {
    if (err && cap) snprintf(err, cap, "out of memory");
    return VH_ENOMEM;
  }
  vh_buf_t b = {0};
  int rc = vh_json_drain(s, &b);
  if (rc == 0) rc = vh_json_finish(&b, out, outlen);
  if (rc != 0) {
    if (err && cap)
      snprintf(err, cap, "%s",
               rc == VH_ENOMEM ? "out of memory" : vh_jstream_error(s));
    vh_jstream_free(s);
    vh_buf_free(&b);
    return rc;
  }
  vh_jstream_free(s);
  return 0;
}

int vh_json_encode(vh_val_t v, char **out, size_t *outlen) {
  return vh_json_encode_err(v, out, outlen, NULL, 0);
}
