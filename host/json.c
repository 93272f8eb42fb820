/*
 * json.c - JSON text <-> state values, for the plugin ABI and the HTTP
 * ingress. Parsing and printing are jansson's; this file only maps its
 * tree to vh_val_t and back, under the rules of vedhost/plugin.h:
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
 *           U+FFFD), infinities become null.
 *
 * Tables built by decode are stamped with one fresh edit token per
 * document; each nested table has exactly one parent (invariant 5 of
 * DESIGN.md). Lazily loaded state is read through the trie's loader; a
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
#include "vh_json.h"

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
  if (depth >= VH_JSON_MAX_DEPTH) return vh_jdec_fail(d, "nested too deep");
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

/* ---- encode ---- */

/* Append the UTF-8 sanitised copy of p[0..n) to a fresh buffer: *out
 * [new] (NULL when out of memory), *outn. */
static char *vh_jenc_utf8(const char *p, size_t n, size_t *outn) {
  const unsigned char *s = (const unsigned char *)p;
  char *o = malloc(n * 3 + 1);
  if (!o) return NULL;
  size_t w = 0, i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t need;
    int ok = 1;
    if (c < 0x80)
      need = 0;
    else if ((c & 0xE0) == 0xC0)
      need = 1;
    else if ((c & 0xF0) == 0xE0)
      need = 2;
    else if ((c & 0xF8) == 0xF0)
      need = 3;
    else
      need = 0, ok = 0;
    if (ok && need) {
      for (size_t k = 1; ok && k <= need; k++)
        if (i + k >= n || (s[i + k] & 0xC0) != 0x80) ok = 0;
      if (ok) {
        uint32_t cp = need == 1 ? c & 0x1F : need == 2 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k <= need; k++) cp = (cp << 6) | (s[i + k] & 0x3F);
        /* overlong forms, surrogates and values past U+10FFFF */
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
            (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
          ok = 0;
      }
    }
    if (!ok) {
      memcpy(o + w, "\xEF\xBF\xBD", 3); /* U+FFFD for this one byte */
      w += 3;
      i++;
      continue;
    }
    memcpy(o + w, s + i, need + 1);
    w += need + 1;
    i += need + 1;
  }
  *outn = w;
  return o;
}

static json_t *vh_jenc_string(const char *p, size_t n) {
  size_t m;
  char *u = vh_jenc_utf8(p, n, &m);
  if (!u) return NULL;
  json_t *j = json_stringn_nocheck(u, m);
  free(u);
  return j;
}

static json_t *vh_jenc_val(vh_val_t v, int depth);

/* 1 if t's keys are exactly the integers 1..n with n >= 1. */
static int vh_jenc_is_array(const vh_tab_t *t) {
  int64_t len = vh_tab_len(t);
  if (len < 1 || (size_t)len != vh_tab_count(t)) return 0;
  vh_iter_t it;
  vh_val_t k, v;
  vh_iter_init(&it, t);
  while (vh_iter_next(&it, &k, &v))
    if (k.type != VH_TINT || k.u.i < 1 || k.u.i > len) return 0;
  return 1;
}

static json_t *vh_jenc_key(vh_val_t k) {
  char buf[64];
  switch (k.type) {
    case VH_TSTR:
      return vh_jenc_string(vh_str_data(k.u.s), vh_str_len(k.u.s));
    case VH_TINT:
      snprintf(buf, sizeof buf, "%" PRId64, k.u.i);
      break;
    case VH_TFLOAT:
      snprintf(buf, sizeof buf, "%.17g", k.u.f);
      break;
    case VH_TBOOL:
      snprintf(buf, sizeof buf, "%s", k.u.b ? "true" : "false");
      break;
    default:
      snprintf(buf, sizeof buf, "?");
  }
  return json_string(buf);
}

static json_t *vh_jenc_table(const vh_tab_t *t, int depth) {
  if (depth >= VH_JSON_MAX_DEPTH)
    return json_null(); /* cannot happen:
state refuses cycles and Lua's C stack bounds nesting */
  if (vh_jenc_is_array(t)) {
    int64_t len = vh_tab_len(t);
    json_t *a = json_array();
    for (int64_t i = 1; a && i <= len; i++) {
      vh_val_t v;
      vh_tab_get_int(t, i, &v);
      json_t *e = vh_jenc_val(v, depth + 1);
      if (!e || json_array_append_new(a, e) != 0) {
        json_decref(a);
        a = NULL;
      }
    }
    return a;
  }
  json_t *o = json_object();
  vh_iter_t it;
  vh_val_t k, v;
  vh_iter_init(&it, t);
  while (o && vh_iter_next(&it, &k, &v)) {
    json_t *ks = vh_jenc_key(k);
    json_t *e = ks ? vh_jenc_val(v, depth + 1) : NULL;
    if (!e || json_object_setn_new_nocheck(o, json_string_value(ks),
                                           json_string_length(ks), e) != 0) {
      json_decref(o);
      o = NULL;
    }
    json_decref(ks);
  }
  return o;
}

static json_t *vh_jenc_val(vh_val_t v, int depth) {
  switch (v.type) {
    case VH_TBOOL:
      return json_boolean(v.u.b);
    case VH_TINT:
      return json_integer((json_int_t)v.u.i);
    case VH_TFLOAT:
      if (!isfinite(v.u.f)) return json_null();
      return json_real(v.u.f);
    case VH_TSTR:
      return vh_jenc_string(vh_str_data(v.u.s), vh_str_len(v.u.s));
    case VH_TTAB:
      return vh_jenc_table(v.u.t, depth);
    default:
      return json_null();
  }
}

typedef struct vh_jbuf {
  char *p;
  size_t n, cap;
} vh_jbuf_t;

static int vh_jbuf_put(const char *s, size_t n, void *arg) {
  vh_jbuf_t *b = arg;
  if (b->n + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->n + n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) return -1;
    b->p = np;
    b->cap = nc;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
  return 0;
}

/* Dump j (stolen) into *out / *outlen. */
static int vh_jenc_dump(json_t *j, char **out, size_t *outlen) {
  vh_jbuf_t b = {NULL, 0, 0};
  int rc = json_dump_callback(
      j, vh_jbuf_put, &b,
      JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
  json_decref(j);
  if (rc == 0 && !b.p) rc = vh_jbuf_put("", 0, &b);
  if (rc != 0) {
    free(b.p);
    return VH_ENOMEM;
  }
  *out = b.p;
  *outlen = b.n;
  return 0;
}

int vh_json_encode(vh_val_t v, char **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  vh_trie_fault_clear();
  json_t *j = vh_jenc_val(v, 0);
  if (vh_trie_fault(NULL) != 0) {
    vh_trie_fault_clear();
    json_decref(j);
    return VH_JSON_EIO;
  }
  if (!j) return VH_ENOMEM;
  return vh_jenc_dump(j, out, outlen);
}

int vh_json_error(const char *msg, char **out, size_t *outlen) {
  json_t *o = json_object();
  json_t *m = vh_jenc_string(msg, strlen(msg));
  if (!o || !m || json_object_set_new(o, "error", m) != 0) {
    json_decref(o);
    return VH_ENOMEM;
  }
  return vh_jenc_dump(o, out, outlen);
}
