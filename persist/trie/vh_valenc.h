/*
 * vh_valenc.h - a compact, self-delimiting byte encoding of one vh_val_t
 * (persist/trie/valenc.c). The host stores each queued message as one string
 * holding its payload in this encoding (host/runtime/sched.c), so that a
 * message costs a slot in a vector leaf rather than nodes of its own.
 *
 * The byte layout is described at the top of valenc.c. Encoding walks
 * tables in their iteration order (vh_tab_next's order); decoding builds
 * fresh tables under a given edit token. Neither recurses on the C stack:
 * any nesting depth the trie can hold round-trips.
 *
 * Errors: VH_ENOMEM; VH_ECORRUPT for bytes that are not exactly one
 * well-formed value (decode), or a lazily loaded node that failed to load
 * while encoding (the trie's fault code is returned then: VH_EIO,
 * VH_ECORRUPT, VH_ENOENT...). Decoding never reads past len and never
 * crashes on arbitrary bytes.
 *
 * Ownership in prototypes: [borrowed] the caller keeps it, [new] the
 * caller frees / releases it, [stolen] the callee takes it over.
 */
#ifndef VH_VALENC_H
#define VH_VALENC_H

#include <stddef.h>
#include <stdint.h>

#include "vh_bytes.h"
#include "vh_err.h"
#include "vh_trie.h"

/* The byte buffer is vh_buf_t (vh_bytes.h; zero-initialise it, free with
 * vh_valenc_buf_free). Reusable: set len = 0 to start over. */
typedef vh_buf_t vh_valenc_buf_t;

void vh_valenc_buf_free(vh_valenc_buf_t *b);
/* Append n bytes at p [borrowed]. 0 or VH_ENOMEM (b unchanged). */
int vh_valenc_buf_put(vh_valenc_buf_t *b, const void *p, size_t n);
/* Append x as an unsigned LEB128 varint (1..10 bytes). 0 or VH_ENOMEM. */
int vh_valenc_put_varint(vh_valenc_buf_t *b, uint64_t x);
/* Read a minimal varint from p[*pos..len) into *x and move *pos past it.
 * 0, or VH_ECORRUPT (truncated, over 10 bytes / 64 bits, not minimal). */
int vh_valenc_get_varint(const unsigned char *p, size_t len, size_t *pos,
                         uint64_t *x);

/* Append the encoding of v [borrowed] to b. On error b->len is as it was.
 * Tables are walked, not changed (lazy nodes are loaded). */
int vh_valenc_append(vh_valenc_buf_t *b, vh_val_t v);
/* *out = a [new] malloc'd buffer holding the encoding of v [borrowed],
 * *len its length (>= 1). */
int vh_valenc_encode(vh_val_t v, unsigned char **out, size_t *len);

/* Decode the value starting at p[*pos] (p [borrowed], len bytes in all)
 * into *out [new] and move *pos past it. Tables are built under edit. On
 * error *out is nil, *pos unchanged and nothing leaks. */
int vh_valenc_decode_at(const void *p, size_t len, size_t *pos, uint64_t edit,
                        vh_val_t *out);
/* The same for a buffer that must hold exactly one value: bytes left over
 * are VH_ECORRUPT. */
int vh_valenc_decode(const void *p, size_t len, uint64_t edit, vh_val_t *out);

#endif /* VH_VALENC_H */
