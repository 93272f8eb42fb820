/*
 * json_stream.c - a state value written as JSON in steps, for responses
 * that must not hold the loop (the HTTP ingress's GET of state, through
 * the plugin ABI's reader: plugin.c).
 *
 * HOW IT WORKS. The writer holds one reference to the value. State tables
 * are immutable once committed (a later slice writes under a fresh edit
 * token and path-copies, vh_trie.h), so every table reachable from that
 * reference stays as it was for as long as the writer lives, and the
 * writer can keep borrowed pointers into it across loop turns. The walk is
 * an explicit stack of open tables (one vh_iter_t each), so depth costs
 * heap, not C stack, and a step can stop anywhere: between two entries,
 * inside a key, inside a string of many MB. Bytes that do not fit the
 * caller's buffer (a token is cut at the end of it) wait in a small carry
 * buffer for the next call.
 *
 *   state     what the next step writes
 *   VALUE     s->val: a scalar, or '"' and then STRING, or '[' / '{' and
 *             then NEXT with a new frame
 *   STRING    the rest of s->sp (escaped, UTF-8 sanitised), then '"' (and
 *             ':' and VALUE if it was a key)
 *   NEXT      the next entry of the innermost table (',' key ':'), or its
 *             closing bracket
 *   DONE      nothing: the text is complete
 *
 * THE TEXT is byte for byte what vh_json_encode (json.c, jansson's compact
 * dump) writes: a table is an array iff it is non-empty and its keys are
 * exactly 1..n; entries in the trie's iteration order; integer keys in
 * decimal, float keys %.17g, booleans true/false; floats as jansson prints
 * them with 17 digits (a ".0" added when the text would read as an
 * integer, no '+' or leading zeros in the exponent), infinities null;
 * strings escaped as jansson does (\" \\ \b \f \n \r \t, \u00XX for the
 * other control bytes), each byte of a bad UTF-8 sequence replaced by
 * U+FFFD. The host's unit test compares both on random values. Refused
 * (VH_JSON_EPARSE, message "$.a[3].b: ..."): nesting deeper than
 * VH_MAX_DEPTH, and an object whose non-string key has the same text
 * as one of its string keys (both would be written as one JSON key, and a
 * reader would keep only one of the values).
 *
 * FAULTS. A node that cannot be loaded ends the walk with VH_JSON_EIO and
 * the trie's message: never a shortened table.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_bytes.h"
#include "vh_json.h"
#include "vh_jstream.h"
#include "vh_limits.h"

enum { VH_JS_VALUE, VH_JS_STRING, VH_JS_NEXT, VH_JS_DONE };

/* One open table. */
typedef struct vh_jframe {
  const vh_tab_t *t; /* [borrowed] kept alive by s->root */
  vh_iter_t it;      /* the walk over t */
  int array;         /* written as an array: values only */
  size_t n;          /* entries written so far */
  size_t plen;       /* length of s->path naming t */
} vh_jframe_t;

struct vh_jstream {
  vh_val_t root;           /* [owned] the value written */
  int state;               /* VH_JS_* */
  vh_val_t val;            /* [borrowed] the value VALUE writes */
  vh_jframe_t *fr;         /* [owned] open tables, fr[0] the outermost */
  int depth;               /* frames in use */
  size_t cap;              /* frames allocated */
  const unsigned char *sp; /* [borrowed] the string STRING writes */
  size_t slen, spos;       /* its length, bytes written */
  int skey;                /* it is a key: ':' and VALUE follow */
  char carry[64];          /* bytes that did not fit the last buffer */
  size_t cn, cpos;         /* bytes in carry, bytes of it handed out */
  char path[256];          /* "$.a[3].b" of the entry being written */
  size_t plen;
  size_t total; /* bytes handed out */
  int err;      /* sticky error, 0 if none */
  char msg[400];
};

/* The caller's buffer. */
typedef struct vh_jout {
  char *p;
  size_t cap, n;
} vh_jout_t;

size_t vh_json__utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t need;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0)
    need = 1;
  else if ((c & 0xF0) == 0xE0)
    need = 2;
  else if ((c & 0xF8) == 0xF0)
    need = 3;
  else
    return 0;
  if (need >= n) return 0;
  uint32_t cp = need == 1 ? c & 0x1F : need == 2 ? c & 0x0F : c & 0x07;
  for (size_t k = 1; k <= need; k++) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  /* overlong forms, surrogates and values past U+10FFFF */
  if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
      (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return need + 1;
}

/* ---- output ---- */

/* Append len bytes (len <= 32); what does not fit waits in the carry. */
static void vh_js_emit(vh_jstream_t *s, vh_jout_t *o, const char *p,
                       size_t len) {
  size_t k = o->cap - o->n;
  if (s->cn > s->cpos) k = 0; /* keep the order behind the carry */
  if (k > len) k = len;
  memcpy(o->p + o->n, p, k);
  o->n += k;
  if (k < len) {
    memcpy(s->carry + s->cn, p + k, len - k);
    s->cn += len - k;
  }
}

static void vh_js_drain(vh_jstream_t *s, vh_jout_t *o) {
  size_t k = s->cn - s->cpos;
  if (k > o->cap - o->n) k = o->cap - o->n;
  memcpy(o->p + o->n, s->carry + s->cpos, k);
  o->n += k;
  s->cpos += k;
  if (s->cpos == s->cn) s->cpos = s->cn = 0;
}

static int vh_js_fail(vh_jstream_t *s, int rc, const char *why) {
  s->err = rc;
  snprintf(s->msg, sizeof s->msg, "%.*s: %s", (int)s->plen, s->path, why);
  return rc;
}

/* ---- the path, for messages ---- */

static void vh_js_path_key(vh_jstream_t *s, vh_val_t k) {
  char *p = s->path + s->plen;
  size_t room = sizeof s->path - s->plen;
  int n = 0;
  switch (k.type) {
    case VH_TSTR:
      n = snprintf(p, room, ".%.*s",
                   (int)(vh_str_len(k.u.s) > 64 ? 64 : vh_str_len(k.u.s)),
                   vh_str_data(k.u.s));
      break;
    case VH_TINT:
      n = snprintf(p, room, "[%" PRId64 "]", k.u.i);
      break;
    case VH_TFLOAT:
      n = snprintf(p, room, "[%.17g]", k.u.f);
      break;
    case VH_TBOOL:
      n = snprintf(p, room, "[%s]", k.u.b ? "true" : "false");
      break;
    default:
      break;
  }
  if (n > 0) s->plen += (size_t)n < room ? (size_t)n : room - 1;
}

/* ---- tokens ---- */

/* A float as jansson writes it (JSON_REAL_PRECISION(17)). */
static size_t vh_js_real(double f, char *buf, size_t cap) {
  int r = snprintf(buf, cap, "%.17g", f);
  if (r < 0 || (size_t)r >= cap - 3) return 0;
  size_t len = (size_t)r;
  if (!strchr(buf, '.') && !strchr(buf, 'e')) {
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

/* The text of a non-string key, as json.c writes it. */
static size_t vh_js_keytext(vh_val_t k, char *buf, size_t cap) {
  int r;
  switch (k.type) {
    case VH_TINT:
      r = snprintf(buf, cap, "%" PRId64, k.u.i);
      break;
    case VH_TFLOAT:
      r = snprintf(buf, cap, "%.17g", k.u.f);
      break;
    case VH_TBOOL:
      r = snprintf(buf, cap, "%s", k.u.b ? "true" : "false");
      break;
    default:
      r = snprintf(buf, cap, "?");
  }
  return r > 0 ? (size_t)r : 0;
}

/* 1 if t's keys are exactly 1..n, n >= 1. The trie keeps integer keys
 * 1..#t in the array part and no key #t+1 in the hash part, so that is:
 * count == #t and nothing follows key #t in iteration order (the hash
 * part is empty). O(1) rather than json.c's walk over every key. */
static int vh_js_is_array(const vh_tab_t *t) {
  int64_t len = vh_tab_len(t);
  if (len < 1 || (size_t)len != vh_tab_count(t)) return 0;
  vh_val_t nk, nv;
  return vh_tab_next(t, vh_int(len), &nk, &nv) == 0;
}

static int vh_js_after_value(vh_jstream_t *s) {
  s->state = s->depth > 0 ? VH_JS_NEXT : VH_JS_DONE;
  return 0;
}

static int vh_js_value(vh_jstream_t *s, vh_jout_t *o) {
  vh_val_t v = s->val;
  char buf[48];
  size_t n;
  switch (v.type) {
    case VH_TBOOL:
      vh_js_emit(s, o, v.u.b ? "true" : "false", v.u.b ? 4 : 5);
      break;
    case VH_TINT:
      n = (size_t)snprintf(buf, sizeof buf, "%" PRId64, v.u.i);
      vh_js_emit(s, o, buf, n);
      break;
    case VH_TFLOAT:
      n = isfinite(v.u.f) ? vh_js_real(v.u.f, buf, sizeof buf) : 0;
      vh_js_emit(s, o, n ? buf : "null", n ? n : 4);
      break;
    case VH_TSTR:
      vh_js_emit(s, o, "\"", 1);
      s->sp = (const unsigned char *)vh_str_data(v.u.s);
      s->slen = vh_str_len(v.u.s);
      s->spos = 0;
      s->skey = 0;
      s->state = VH_JS_STRING;
      return 0;
    case VH_TTAB: {
      if (s->depth >= VH_MAX_DEPTH) {
        snprintf(buf, sizeof buf, "nested deeper than %d levels", VH_MAX_DEPTH);
        return vh_js_fail(s, VH_JSON_EPARSE, buf);
      }
      if (vh_grow(&s->fr, &s->cap, (size_t)s->depth + 1, sizeof *s->fr) != 0)
        return vh_js_fail(s, VH_ENOMEM, "out of memory");
      vh_jframe_t *f = &s->fr[s->depth++];
      f->t = v.u.t;
      f->array = vh_js_is_array(v.u.t);
      f->n = 0;
      f->plen = s->plen;
      vh_iter_init(&f->it, v.u.t);
      vh_js_emit(s, o, f->array ? "[" : "{", 1);
      s->state = VH_JS_NEXT;
      return 0;
    }
    default:
      vh_js_emit(s, o, "null", 4);
  }
  return vh_js_after_value(s);
}

static int vh_js_next(vh_jstream_t *s, vh_jout_t *o) {
  vh_jframe_t *f = &s->fr[s->depth - 1];
  s->plen = f->plen;
  vh_val_t k, v;
  if (!vh_iter_next(&f->it, &k, &v)) {
    vh_js_emit(s, o, f->array ? "]" : "}", 1);
    s->depth--;
    return vh_js_after_value(s);
  }
  if (f->n++ > 0) vh_js_emit(s, o, ",", 1);
  /* Paths are JSON's, as the decoder's: array elements count from 0. */
  vh_js_path_key(s, f->array && k.type == VH_TINT ? vh_int(k.u.i - 1) : k);
  s->val = v;
  if (f->array) {
    s->state = VH_JS_VALUE;
    return 0;
  }
  if (k.type == VH_TSTR) {
    vh_js_emit(s, o, "\"", 1);
    s->sp = (const unsigned char *)vh_str_data(k.u.s);
    s->slen = vh_str_len(k.u.s);
    s->spos = 0;
    s->skey = 1;
    s->state = VH_JS_STRING;
    return 0;
  }
  char text[40];
  size_t n = vh_js_keytext(k, text, sizeof text);
  vh_val_t clash;
  vh_tab_get_str(f->t, text, n, &clash);
  if (clash.type != VH_TNIL) {
    /* Named by the table's path, as "cannot write $.t as JSON ...". */
    s->err = VH_JSON_EPARSE;
    snprintf(s->msg, sizeof s->msg,
             "cannot write %.*s as JSON without losing data: the keys %s and "
             "\"%s\" would both be the JSON key \"%s\"",
             (int)f->plen, s->path, text, text, text);
    return VH_JSON_EPARSE;
  }
  vh_js_emit(s, o, "\"", 1);
  vh_js_emit(s, o, text, n);
  vh_js_emit(s, o, "\":", 2);
  s->state = VH_JS_VALUE;
  return 0;
}

/* A byte that is written as it is inside a JSON string. */
static int vh_js_plain(unsigned c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static int vh_js_string(vh_jstream_t *s, vh_jout_t *o) {
  while (s->spos < s->slen && o->n < o->cap) {
    size_t room = o->cap - o->n, i = s->spos;
    size_t lim = s->slen - i < room ? s->slen : i + room;
    while (i < lim && vh_js_plain(s->sp[i])) i++;
    if (i > s->spos) {
      memcpy(o->p + o->n, s->sp + s->spos, i - s->spos);
      o->n += i - s->spos;
      s->spos = i;
      continue;
    }
    unsigned c = s->sp[i];
    char esc[8];
    size_t en = 2, adv = 1;
    const char *out = esc;
    esc[0] = '\\';
    switch (c) {
      case '"':
        esc[1] = '"';
        break;
      case '\\':
        esc[1] = '\\';
        break;
      case '\b':
        esc[1] = 'b';
        break;
      case '\f':
        esc[1] = 'f';
        break;
      case '\n':
        esc[1] = 'n';
        break;
      case '\r':
        esc[1] = 'r';
        break;
      case '\t':
        esc[1] = 't';
        break;
      default:
        if (c < 0x20) {
          snprintf(esc, sizeof esc, "\\u%04X", c);
          en = 6;
        } else {
          adv = vh_json__utf8_len(s->sp + i, s->slen - i);
          if (adv == 0) {
            out = "\xEF\xBF\xBD"; /* U+FFFD for this one byte */
            en = 3;
            adv = 1;
          } else {
            out = (const char *)s->sp + i;
            en = adv;
          }
        }
    }
    vh_js_emit(s, o, out, en);
    s->spos += adv;
  }
  if (s->spos < s->slen) return 0;
  vh_js_emit(s, o, s->skey ? "\":" : "\"", s->skey ? 2 : 1);
  if (s->skey) {
    s->state = VH_JS_VALUE;
    return 0;
  }
  return vh_js_after_value(s);
}

/* ---- the API ---- */

int vh_jstream_new(vh_val_t v, vh_jstream_t **out) {
  vh_jstream_t *s = calloc(1, sizeof *s);
  *out = NULL;
  if (!s) return VH_ENOMEM;
  vh_val_retain(v);
  s->root = v;
  s->val = v;
  s->state = VH_JS_VALUE;
  s->path[0] = '$';
  s->plen = 1;
  *out = s;
  return 0;
}

int vh_jstream_read(vh_jstream_t *s, char *buf, size_t cap, size_t *n) {
  vh_jout_t o = {buf, cap, 0};
  *n = 0;
  if (s->err) return s->err;
  vh_trie_fault_clear();
  vh_js_drain(s, &o);
  while (o.n < o.cap && s->state != VH_JS_DONE) {
    int rc;
    switch (s->state) {
      case VH_JS_VALUE:
        rc = vh_js_value(s, &o);
        break;
      case VH_JS_STRING:
        rc = vh_js_string(s, &o);
        break;
      default:
        rc = vh_js_next(s, &o);
    }
    const char *why = NULL;
    if (rc == 0 && vh_trie_fault(&why) != 0) {
      vh_js_fail(s, VH_JSON_EIO, why);
      vh_trie_fault_clear();
      rc = VH_JSON_EIO;
    }
    if (rc != 0) return rc;
  }
  *n = o.n;
  s->total += o.n;
  return s->state == VH_JS_DONE && s->cn == 0 ? 0 : 1;
}

const char *vh_jstream_error(const vh_jstream_t *s) {
  return s->err ? s->msg : "";
}

size_t vh_jstream_total(const vh_jstream_t *s) {
  return s->total;
}

void vh_jstream_free(vh_jstream_t *s) {
  if (!s) return;
  vh_val_release(s->root);
  free(s->fr);
  free(s);
}
