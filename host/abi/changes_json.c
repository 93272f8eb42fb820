/*
 * changes_json.c - one change (host/runtime/vh_changes.h) as a JSON object
 * on one line (vh_changes_json.h). Keys and values use the mapping of
 * include/vedhost/plugin.h (VALUES) through json.c; integers, booleans
 * and strings of plain printable ASCII (the common case of a feed) are
 * written here without an allocation.
 */
#include "vh_changes_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_json.h"

static int vh_change__put(vh_buf_t *b, const char *s) {
  return vh_buf_put(b, s, strlen(s));
}

/* An integer in decimal, appended to b (snprintf's "%" PRId64 without
 * the formatting machinery: a feed line carries up to five of them, and
 * snprintf was ~5% of the consumer's CPU, bench/README.md). */
static int vh_change__u64(vh_buf_t *b, uint64_t u, int neg) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (neg) tmp[--i] = '-';
  return vh_buf_put(b, tmp + i, sizeof tmp - i);
}

static int vh_change__i64(vh_buf_t *b, int64_t v) {
  return v < 0 ? vh_change__u64(b, (uint64_t)0 - (uint64_t)v, 1)
               : vh_change__u64(b, (uint64_t)v, 0);
}

/* Bytes that go into a JSON string as they are (printable ASCII but for
 * the quote and the backslash). */
static int vh_change__plain_json(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') return 0;
  }
  return 1;
}

/* v as JSON appended to b; a value JSON cannot hold becomes {"error":..}.
 * Integers, booleans and plain strings are written here (the common case
 * of a feed: no allocation); the rest by vh_json_encode. */
static int vh_change__json_val(vh_buf_t *b, vh_val_t v) {
  if (v.type == VH_TINT) return vh_change__i64(b, v.u.i);
  if (v.type == VH_TBOOL) return vh_change__put(b, v.u.b ? "true" : "false");
  if (v.type == VH_TSTR &&
      vh_change__plain_json(vh_str_data(v.u.s), vh_str_len(v.u.s))) {
    int r = vh_buf_reserve(b, vh_str_len(v.u.s) + 2);
    if (r != 0) return r;
    b->p[b->len++] = '"';
    memcpy(b->p + b->len, vh_str_data(v.u.s), vh_str_len(v.u.s));
    b->len += vh_str_len(v.u.s);
    b->p[b->len++] = '"';
    return 0;
  }
  char *out = NULL, err[256];
  size_t len = 0;
  int r = vh_json_encode_err(v, &out, &len, err, sizeof err);
  if (r == VH_JSON_EPARSE) { /* {"error": err} */
    vh_val_t m;
    m.u.s = vh_str_new(err, strlen(err));
    m.type = VH_TSTR;
    if (m.u.s == NULL) return VH_ENOMEM;
    r = vh_json_encode(m, &out, &len);
    vh_str_release(m.u.s);
    if (r != 0) return r;
    r = vh_change__put(b, "{\"error\":");
    if (r == 0) r = vh_buf_put(b, out, len);
    if (r == 0) r = vh_change__put(b, "}");
    free(out);
    return r;
  }
  if (r != 0) return r;
  r = vh_buf_put(b, out, len);
  free(out);
  return r;
}

/* The line's head, `{"seq":S,"time":T,"domain":"D","op":"` (or from
 * `{"domain"` without seq), is the same for every change of a version in
 * a domain: it is kept per thread and written with one copy while seq,
 * time and domain stay (a feed version's changes come one after another).
 * Only for a plain domain name short enough to fit. */
typedef struct vh_jhead {
  int valid, with_seq;
  uint64_t seq;
  int64_t time_ms;
  size_t dl;
  char dom[64];
  size_t len;
  char text[192];
} vh_jhead_t;

static _Thread_local vh_jhead_t vh_change__head;

/* h is the head of c's line. */
static inline int vh_change__head_is(const vh_jhead_t *h, const vh_change_t *c,
                                     int with_seq, size_t dl) {
  return h->valid && h->with_seq == with_seq && h->dl == dl &&
         (!with_seq || (h->seq == c->seq && h->time_ms == c->time_ms)) &&
         memcmp(h->dom, c->domain, dl) == 0;
}

/* Make h the head of c (plain domain of dl < 64 bytes). */
static int vh_change__head_make(vh_jhead_t *h, const vh_change_t *c,
                                int with_seq, size_t dl) {
  vh_buf_t b;
  memset(&b, 0, sizeof b);
  int r = 0;
  if (with_seq) {
    r = vh_change__put(&b, "{\"seq\":");
    if (r == 0) r = vh_change__u64(&b, c->seq, 0);
    if (r == 0) r = vh_change__put(&b, ",\"time\":");
    if (r == 0) r = vh_change__i64(&b, c->time_ms);
    if (r == 0) r = vh_change__put(&b, ",\"domain\":\"");
  } else {
    r = vh_change__put(&b, "{\"domain\":\"");
  }
  if (r == 0) r = vh_buf_put(&b, c->domain, dl);
  if (r == 0) r = vh_change__put(&b, "\",\"op\":\"");
  if (r == 0 && b.len > sizeof h->text) r = VH_ENOMEM; /* cannot happen */
  if (r == 0) {
    h->valid = 1;
    h->with_seq = with_seq;
    h->seq = c->seq;
    h->time_ms = c->time_ms;
    h->dl = dl;
    memcpy(h->dom, c->domain, dl);
    h->len = b.len;
    memcpy(h->text, b.p, b.len);
  }
  vh_buf_free(&b);
  return r;
}

int vh_change_json(const vh_change_t *c, int with_seq, vh_buf_t *out) {
  int r = 0;
  char op[2] = {(char)c->op, 0};
  vh_str_t *dom = NULL;
  size_t dl = strlen(c->domain);
  vh_jhead_t *h = &vh_change__head;
  int plain = vh_change__plain_json(c->domain, dl);
  if (plain && dl < sizeof h->dom &&
      (vh_change__head_is(h, c, with_seq, dl) ||
       vh_change__head_make(h, c, with_seq, dl) == 0)) {
    r = vh_buf_put(out, h->text, h->len);
    goto op;
  }
  if (!plain) {
    dom = vh_str_new(c->domain, dl);
    if (dom == NULL) return VH_ENOMEM;
  }
  if (with_seq) {
    r = vh_change__put(out, "{\"seq\":");
    if (r == 0) r = vh_change__u64(out, c->seq, 0);
    if (r == 0) r = vh_change__put(out, ",\"time\":");
    if (r == 0) r = vh_change__i64(out, c->time_ms);
    if (r == 0) r = vh_change__put(out, ",");
  } else {
    r = vh_change__put(out, "{");
  }
  if (r == 0) r = vh_change__put(out, "\"domain\":");
  if (r == 0 && dom != NULL) {
    vh_val_t dv;
    dv.u.s = dom;
    dv.type = VH_TSTR;
    r = vh_change__json_val(out, dv);
  } else if (r == 0) {
    r = vh_change__put(out, "\"");
    if (r == 0) r = vh_buf_put(out, c->domain, dl);
    if (r == 0) r = vh_change__put(out, "\"");
  }
  if (dom) vh_str_release(dom);
  if (r == 0) r = vh_change__put(out, ",\"op\":\"");
op:
  if (r == 0) r = vh_change__put(out, op);
  if (r == 0) r = vh_change__put(out, "\",\"path\":[");
  for (size_t i = 0; i < c->depth && r == 0; i++) {
    if (i > 0) r = vh_change__put(out, ",");
    if (r == 0) r = vh_change__json_val(out, c->path[i]);
  }
  if (r == 0) r = vh_change__put(out, "]");
  if (r == 0 && c->op == '+') {
    r = vh_change__put(out, ",\"value\":");
    if (r == 0) r = vh_change__json_val(out, c->new);
  } else if (r == 0 && c->op == '~') {
    r = vh_change__put(out, ",\"old\":");
    if (r == 0) r = vh_change__json_val(out, c->old);
    if (r == 0) r = vh_change__put(out, ",\"new\":");
    if (r == 0) r = vh_change__json_val(out, c->new);
  }
  if (r == 0 && c->of > 0) {
    r = vh_change__put(out, ",\"n\":");
    if (r == 0) r = vh_change__u64(out, c->n, 0);
    if (r == 0) r = vh_change__put(out, ",\"of\":");
    if (r == 0) r = vh_change__u64(out, c->of, 0);
  }
  if (r == 0) r = vh_change__put(out, "}");
  return r;
}
