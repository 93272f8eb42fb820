/*
 * json.c - JSON text <-> state values, for the plugin ABI and the HTTP
 * ingress. Parsing is jansson's (this file maps its tree to vh_val_t);
 * printing is done here, iteratively (see "encode" below). The rules are
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

typedef struct vh_jbuf {
  char *p;
  size_t n, cap;
} vh_jbuf_t;

/* ---- encode ----
 *
 * Written here rather than through jansson's tree: jansson's dump and
 * decref recurse once per level (a state may nest VH_MAX_DEPTH tables, and
 * a store written by an older vedhost deeper), and its objects silently
 * keep one of two members with the same key text. So the encoder walks
 * the value with an explicit stack on the heap and writes text directly,
 * in jansson's compact format (the bytes are the same as before for every
 * value both accept): "," and ":" without spaces, strings escaped as
 * jansson does (\" \\ \b \f \n \r \t, other control bytes \u00XX, UTF-8
 * as is), reals with %.17g plus ".0" when they would read as an integer
 * and the exponent without "+" or leading zeros.
 *
 * LOSSLESS OR REFUSED. An object's keys are written as strings, so a
 * non-string key can collide with a string key of the same text (1 and
 * "1", true and "true", 1.5 and "1.5", inf and "inf"; two non-string keys
 * never share a text: integral floats are integers, other floats print
 * with a "." or an "e", booleans as true/false). Each non-string key is
 * looked up as a string in its table (O(1)); a hit refuses the whole
 * encoding with VH_JSON_EPARSE and a message naming the table's path
 * ("$", ".key", "[i]" as decode's) and the two keys. */

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

typedef struct vh_jframe {
  const vh_tab_t *t; /* [borrowed] the table being written */
  int64_t len;       /* > 0: written as an array of len elements */
  int64_t i;         /* array: next index (1-based) */
  vh_iter_t it;      /* object: cursor */
  int first;         /* nothing written inside yet */
  vh_val_t key;      /* [borrowed] key of the child being written */
} vh_jframe_t;

typedef struct vh_jenc {
  vh_jbuf_t b;
  vh_jframe_t *st; /* [owned] */
  size_t n, cap;
  int oom;
} vh_jenc_t;

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

static void vh_jenc_put(vh_jenc_t *e, const char *s, size_t n) {
  if (!e->oom && vh_jbuf_put(s, n, &e->b) != 0) e->oom = 1;
}

/* A JSON string of p[0..n) (sanitised to UTF-8, escaped as jansson). */
static void vh_jenc_str(vh_jenc_t *e, const char *p, size_t n) {
  size_t m;
  char *u = vh_jenc_utf8(p, n, &m);
  if (!u) {
    e->oom = 1;
    return;
  }
  vh_jenc_put(e, "\"", 1);
  size_t from = 0;
  for (size_t i = 0; i < m; i++) {
    unsigned char c = (unsigned char)u[i];
    const char *esc = NULL;
    char hex[8];
    switch (c) {
      case '"':
        esc = "\\\"";
        break;
      case '\\':
        esc = "\\\\";
        break;
      case '\b':
        esc = "\\b";
        break;
      case '\f':
        esc = "\\f";
        break;
      case '\n':
        esc = "\\n";
        break;
      case '\r':
        esc = "\\r";
        break;
      case '\t':
        esc = "\\t";
        break;
      default:
        if (c < 0x20) {
          snprintf(hex, sizeof hex, "\\u%04X", c);
          esc = hex;
        }
    }
    if (!esc) continue;
    vh_jenc_put(e, u + from, i - from);
    vh_jenc_put(e, esc, strlen(esc));
    from = i + 1;
  }
  vh_jenc_put(e, u + from, m - from);
  vh_jenc_put(e, "\"", 1);
  free(u);
}

/* The text of a number as jansson writes it (real: precision 17). */
static size_t vh_jenc_real(double f, char *buf, size_t cap) {
  int r = snprintf(buf, cap, "%.17g", f);
  size_t len = r > 0 ? (size_t)r : 0;
  if (!strchr(buf, '.') && !strchr(buf, 'e') && len + 3 < cap) {
    memcpy(buf + len, ".0", 3);
    len += 2;
  }
  char *start = strchr(buf, 'e');
  if (start) {
    start++;
    char *end = start + 1;
    if (*start == '-') start++;
    while (*end == '0') end++;
    if (end != start) {
      memmove(start, end, len - (size_t)(end - buf) + 1);
      len -= (size_t)(end - start);
    }
  }
  return len;
}

/* The text a key has as an object member name: *s, *n [borrowed from the
 * key or buf]. */
static void vh_jenc_key_text(vh_val_t k, char *buf, size_t cap, const char **s,
                             size_t *n) {
  switch (k.type) {
    case VH_TSTR:
      *s = vh_str_data(k.u.s);
      *n = vh_str_len(k.u.s);
      return;
    case VH_TINT:
      snprintf(buf, cap, "%" PRId64, k.u.i);
      break;
    case VH_TFLOAT:
      snprintf(buf, cap, "%.17g", k.u.f);
      break;
    case VH_TBOOL:
      snprintf(buf, cap, "%s", k.u.b ? "true" : "false");
      break;
    default:
      snprintf(buf, cap, "?");
  }
  *s = buf;
  *n = strlen(buf);
}

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

/* Appends the path of the frames [0, n) to buf ("$.a[2]"). */
static void vh_jenc_path(const vh_jenc_t *e, size_t n, char *buf, size_t cap) {
  size_t w = (size_t)snprintf(buf, cap, "$");
  for (size_t i = 0; i + 1 < n && w < cap; i++) {
    const vh_jframe_t *f = &e->st[i];
    char kb[64];
    const char *ks;
    size_t kn;
    if (f->len > 0) {
      w += (size_t)snprintf(buf + w, cap - w, "[%" PRId64 "]", f->i - 2);
      continue;
    }
    vh_jenc_key_text(f->key, kb, sizeof kb, &ks, &kn);
    w +=
        (size_t)snprintf(buf + w, cap - w, ".%.*s", kn > 64 ? 64 : (int)kn, ks);
  }
}

/* The collision check of an object (see above): 0, or VH_JSON_EPARSE with
 * the message in err. */
static int vh_jenc_check_keys(vh_jenc_t *e, const vh_tab_t *t, char *err,
                              size_t cap) {
  vh_iter_t it;
  vh_val_t k, v, w;
  vh_iter_init(&it, t);
  while (vh_iter_next(&it, &k, &v)) {
    if (k.type == VH_TSTR) continue;
    char kb[64];
    const char *ks;
    size_t kn;
    vh_jenc_key_text(k, kb, sizeof kb, &ks, &kn);
    vh_tab_get_str(t, ks, kn, &w);
    if (w.type == VH_TNIL) continue;
    char path[256];
    vh_jenc_path(e, e->n, path, sizeof path);
    snprintf(err, cap,
             "cannot write %s as JSON without losing data: the keys %s and "
             "\"%s\" would both be the JSON key \"%s\"",
             path, kb, kb, kb);
    return VH_JSON_EPARSE;
  }
  return 0;
}

/* Opens table t: writes "[" or "{" and pushes its frame. */
static int vh_jenc_open(vh_jenc_t *e, const vh_tab_t *t, char *err,
                        size_t cap) {
  if (e->n == e->cap) {
    size_t nc = e->cap ? 2 * e->cap : 64;
    vh_jframe_t *ns = realloc(e->st, nc * sizeof *ns);
    if (!ns) return VH_ENOMEM;
    e->st = ns;
    e->cap = nc;
  }
  vh_jframe_t *f = &e->st[e->n++];
  f->t = t;
  f->len = vh_jenc_is_array(t) ? vh_tab_len(t) : 0;
  f->i = 1;
  f->first = 1;
  f->key = vh_nil();
  if (f->len > 0) {
    vh_jenc_put(e, "[", 1);
    return 0;
  }
  vh_iter_init(&f->it, t);
  vh_jenc_put(e, "{", 1);
  return vh_jenc_check_keys(e, t, err, cap);
}

/* Writes a value that is not a table. */
static void vh_jenc_scalar(vh_jenc_t *e, vh_val_t v) {
  char buf[64];
  switch (v.type) {
    case VH_TBOOL:
      vh_jenc_put(e, v.u.b ? "true" : "false", v.u.b ? 4 : 5);
      return;
    case VH_TINT:
      vh_jenc_put(e, buf, (size_t)snprintf(buf, sizeof buf, "%" PRId64, v.u.i));
      return;
    case VH_TFLOAT:
      if (!isfinite(v.u.f)) break;
      vh_jenc_put(e, buf, vh_jenc_real(v.u.f, buf, sizeof buf));
      return;
    case VH_TSTR:
      vh_jenc_str(e, vh_str_data(v.u.s), vh_str_len(v.u.s));
      return;
    default:
      break;
  }
  vh_jenc_put(e, "null", 4);
}

int vh_json_encode_err(vh_val_t v, char **out, size_t *outlen, char *err,
                       size_t cap) {
  vh_jenc_t e;
  memset(&e, 0, sizeof e);
  *out = NULL;
  *outlen = 0;
  if (err && cap) err[0] = '\0';
  char tmp[8];
  if (!err) {
    err = tmp;
    cap = sizeof tmp;
  }
  vh_trie_fault_clear();
  int rc = 0;
  if (v.type != VH_TTAB)
    vh_jenc_scalar(&e, v);
  else
    rc = vh_jenc_open(&e, v.u.t, err, cap);
  while (rc == 0 && !e.oom && e.n > 0) {
    vh_jframe_t *f = &e.st[e.n - 1];
    vh_val_t k, x;
    int more;
    if (f->len > 0) {
      more = f->i <= f->len;
      if (more) {
        k = vh_int(f->i);
        vh_tab_get_int(f->t, f->i++, &x);
      }
    } else {
      more = vh_iter_next(&f->it, &k, &x);
    }
    if (!more) {
      vh_jenc_put(&e, f->len > 0 ? "]" : "}", 1);
      e.n--;
      continue;
    }
    if (!f->first) vh_jenc_put(&e, ",", 1);
    f->first = 0;
    if (f->len == 0) {
      char kb[64];
      const char *ks;
      size_t kn;
      vh_jenc_key_text(k, kb, sizeof kb, &ks, &kn);
      vh_jenc_str(&e, ks, kn);
      vh_jenc_put(&e, ":", 1);
    }
    f->key = k;
    if (x.type == VH_TTAB)
      rc = vh_jenc_open(&e, x.u.t, err, cap); /* f is stale now */
    else
      vh_jenc_scalar(&e, x);
  }
  free(e.st);
  if (rc == 0 && vh_trie_fault(NULL) != 0) rc = VH_JSON_EIO;
  vh_trie_fault_clear();
  if (rc == 0 && e.oom) rc = VH_ENOMEM;
  if (rc == 0 && !e.b.p && vh_jbuf_put("", 0, &e.b) != 0) rc = VH_ENOMEM;
  if (rc != 0) {
    free(e.b.p);
    if (rc == VH_ENOMEM) snprintf(err, cap, "out of memory");
    if (rc == VH_JSON_EIO)
      snprintf(err, cap, "state could not be read from the store");
    return rc;
  }
  *out = e.b.p;
  *outlen = e.b.n;
  return 0;
}

int vh_json_encode(vh_val_t v, char **out, size_t *outlen) {
  return vh_json_encode_err(v, out, outlen, NULL, 0);
}

int vh_json_error(const char *msg, char **out, size_t *outlen) {
  vh_jenc_t e;
  memset(&e, 0, sizeof e);
  vh_jenc_put(&e, "{\"error\":", 9);
  vh_jenc_str(&e, msg, strlen(msg));
  vh_jenc_put(&e, "}", 1);
  if (e.oom) {
    free(e.b.p);
    return VH_ENOMEM;
  }
  *out = e.b.p;
  *outlen = e.b.n;
  return 0;
}
