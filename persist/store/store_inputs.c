/*
 * store_inputs.c - the input log records (API and meaning: vh_inputs.h).
 *
 * KEY   'I' u64be(seq)   beside 'V' seq (store_versions.c), in the same
 *                        batch; deleted by vh_batch_del_version.
 * VALUE framed like nodes (store.c: u32 CRC-32C, kind 0x8 << 4 | 1).
 * PAYLOAD (numbers little endian; varints: vh_bytes.h LEB128):
 *   u32 layout (1; a newer one is refused, VH_EFORMAT)
 *   i64 now            the slice clock, unix ms
 *   u64 seed           the slice's random seed (0: never used)
 *   u8  flags          bit 0: unreplayable
 *   varint rlen, rlen bytes   the reason ("" if none)
 *   varint n           calls, then n entries:
 *     u8 kind (vh_in_kind_t)
 *     u8 outcome | has_reply << 4
 *     varint zigzag(id)
 *     varint dlen, dlen bytes domain
 *     varint elen, elen bytes event
 *     value payload (persist/trie/valenc.c)
 *     value reply   only if has_reply and outcome is OK
 * Nothing may follow the last entry.
 *
 * Cost: an entry is ~10 bytes plus its names and payload, so recording a
 * call costs one encoding of its payload (handlers do far more work).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "vh_bytes.h"
#include "vh_inputs.h"
#include "vh_valenc.h"

#define VH_INPUTS_LAYOUT 1

void vh_inputs_free(vh_inputs_t *in) {
  if (in == NULL) return;
  for (size_t i = 0; i < in->n; i++) {
    free(in->v[i].domain);
    free(in->v[i].event);
    vh_val_release(in->v[i].payload);
    vh_val_release(in->v[i].reply);
  }
  free(in->v);
  free(in->reason);
  memset(in, 0, sizeof *in);
}

int vh_inputs_add(vh_buf_t *ents, vh_in_kind_t kind, int64_t id,
                  const char *domain, size_t dlen, const char *event,
                  size_t elen, vh_val_t payload, vh_in_outcome_t outcome,
                  int has_reply, vh_val_t reply) {
  size_t was = ents->len;
  unsigned char h[2] = {(unsigned char)kind,
                        (unsigned char)(outcome | (has_reply ? 0x10 : 0))};
  int rc = vh_buf_put(ents, h, 2);
  if (rc == 0) rc = vh_buf_put_varint(ents, vh_zigzag(id));
  if (rc == 0) rc = vh_buf_put_varint(ents, dlen);
  if (rc == 0) rc = vh_buf_put(ents, domain, dlen);
  if (rc == 0) rc = vh_buf_put_varint(ents, elen);
  if (rc == 0) rc = vh_buf_put(ents, event, elen);
  if (rc == 0) rc = vh_valenc_append(ents, payload);
  if (rc == 0 && has_reply && outcome == VH_IN_OK)
    rc = vh_valenc_append(ents, reply);
  if (rc != 0) ents->len = was;
  return rc;
}

int vh_inputs_encode(vh_buf_t *out, int64_t now, uint64_t seed,
                     int unreplayable, const char *reason, size_t n,
                     const vh_buf_t *ents) {
  unsigned char h[21];
  vh_le32_store(h, VH_INPUTS_LAYOUT);
  vh_le64_store(h + 4, (uint64_t)now);
  vh_le64_store(h + 12, seed);
  h[20] = unreplayable ? 1 : 0;
  size_t rl = reason ? strlen(reason) : 0;
  int rc = vh_buf_put(out, h, sizeof h);
  if (rc == 0) rc = vh_buf_put_varint(out, rl);
  if (rc == 0) rc = vh_buf_put(out, reason, rl);
  if (rc == 0) rc = vh_buf_put_varint(out, n);
  if (rc == 0 && ents && ents->len) rc = vh_buf_put(out, ents->p, ents->len);
  return rc;
}

static int bytes_at(const unsigned char *p, size_t len, size_t *pos, char **out,
                    size_t *n) {
  uint64_t l;
  if (vh_varint_get(p, len, pos, &l) != 0 || l > len - *pos) return VH_ECORRUPT;
  *out = malloc((size_t)l + 1);
  if (*out == NULL) return VH_ENOMEM;
  memcpy(*out, p + *pos, (size_t)l);
  (*out)[l] = '\0';
  *pos += (size_t)l;
  if (n) *n = (size_t)l;
  return 0;
}

int vh_inputs_decode(const void *pv, size_t len, uint64_t seq, vh_inputs_t *out,
                     char **errmsg) {
  const unsigned char *p = pv;
  memset(out, 0, sizeof *out);
  if (errmsg) *errmsg = NULL;
  out->seq = seq;
  if (len < 21) goto bad;
  uint32_t lay = vh_le32_load(p);
  if (lay == 0) goto bad;
  if (lay > VH_INPUTS_LAYOUT) {
    vh_store__set_msg(errmsg,
                      vh_store__msg("inputs of version %llu: record layout %u "
                                    "is newer than this vedhost supports (%d); "
                                    "run a newer vedhost",
                                    (unsigned long long)seq, (unsigned)lay,
                                    VH_INPUTS_LAYOUT));
    return VH_EFORMAT;
  }
  out->now = (int64_t)vh_le64_load(p + 4);
  out->seed = vh_le64_load(p + 12);
  if (p[20] > 1) goto bad;
  out->unreplayable = p[20];
  size_t pos = 21, rl = 0;
  int rc = bytes_at(p, len, &pos, &out->reason, &rl);
  if (rc == VH_ENOMEM) goto oom;
  if (rc != 0) goto bad;
  if (rl == 0) {
    free(out->reason);
    out->reason = NULL;
  }
  uint64_t n;
  if (vh_varint_get(p, len, &pos, &n) != 0 || n > (len - pos) / 5) goto bad;
  out->v = calloc(n ? (size_t)n : 1, sizeof *out->v);
  if (out->v == NULL) goto oom;
  uint64_t edit = vh_edit_new();
  for (uint64_t i = 0; i < n; i++) {
    vh_input_t *e = &out->v[i];
    e->payload = vh_nil();
    e->reply = vh_nil();
    out->n = (size_t)i + 1;
    if (len - pos < 2) goto bad;
    if (p[pos] >= VH_IN_KINDS) goto bad;
    e->kind = (vh_in_kind_t)p[pos];
    unsigned o = p[pos + 1] & 0x0f, r = p[pos + 1] >> 4;
    if (o > VH_IN_NOCALL || r > 1) goto bad;
    e->outcome = (vh_in_outcome_t)o;
    e->has_reply = (int)r;
    pos += 2;
    uint64_t id;
    if (vh_varint_get(p, len, &pos, &id) != 0) goto bad;
    e->id = vh_unzigzag(id);
    size_t dl;
    rc = bytes_at(p, len, &pos, &e->domain, &dl);
    if (rc == 0) rc = bytes_at(p, len, &pos, &e->event, &e->elen);
    if (rc == 0) rc = vh_valenc_decode_at(p, len, &pos, edit, &e->payload);
    if (rc == 0 && e->has_reply && e->outcome == VH_IN_OK)
      rc = vh_valenc_decode_at(p, len, &pos, edit, &e->reply);
    if (rc == VH_ENOMEM) goto oom;
    if (rc != 0 || dl == 0) goto bad;
  }
  if (pos != len) goto bad;
  return 0;
oom:
  vh_inputs_free(out);
  return VH_ENOMEM;
bad:
  vh_inputs_free(out);
  vh_store__set_msg(errmsg,
                    vh_store__msg("inputs of version %llu: malformed record",
                                  (unsigned long long)seq));
  return VH_ECORRUPT;
}

int vh_batch_put_inputs(vh_batch_t *b, uint64_t seq, const void *payload,
                        size_t len) {
  return vh_batch__seq_op(b, VH_KEY_INPUTS, seq, VH_KIND_INPUTS, payload, len);
}

int vh_batch__del_inputs(vh_batch_t *b, uint64_t seq) {
  return vh_batch__seq_op(b, VH_KEY_INPUTS, seq, -1, NULL, 0);
}

int vh_store_inputs_get(vh_store_t *s, uint64_t seq, vh_inputs_t *out,
                        char **errmsg) {
  memset(out, 0, sizeof *out);
  if (errmsg) *errmsg = NULL;
  char what[48];
  snprintf(what, sizeof what, "inputs of version %llu",
           (unsigned long long)seq);
  void *p = NULL;
  size_t len = 0;
  int rc = vh_store__seq_get(s, VH_KEY_INPUTS, seq, VH_KIND_INPUTS, what, &p,
                             &len, errmsg);
  if (rc == VH_ENOENT) {
    if (errmsg) {
      free(*errmsg);
      *errmsg = vh_store__msg(
          "version %llu has no input log (not retained, "
          "or written by a vedhost without input logs)",
          (unsigned long long)seq);
    }
    return rc;
  }
  if (rc != 0) return rc;
  rc = vh_inputs_decode(p, len, seq, out, errmsg);
  free(p);
  return rc;
}
