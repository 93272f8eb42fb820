/*
 * vh_json.h - JSON text <-> state values (vh_val_t), on top of jansson.
 *
 * The mapping is the one documented in include/vedhost/plugin.h (VALUES):
 * JSON that a state cannot hold exactly (null inside an array, an integer
 * outside int64, invalid UTF-8, nesting deeper than jansson's 2048 levels
 * or VH_MAX_DEPTH) is refused with a message naming the path. Output is
 * json_stream.c's writer drained at once: it writes every depth a state
 * can hold (VH_MAX_DEPTH, iteratively) and refuses, naming the path, a table
 * whose keys would collide as JSON member names (1 and "1", true and
 * "true", 1.5 and "1.5"): nothing is ever dropped silently. Invalid UTF-8
 * bytes become U+FFFD, infinities null.
 */
#ifndef VH_JSON_H
#define VH_JSON_H

#include <stddef.h>

#include "vh_trie.h"

/* VH_JSON_EPARSE (bad JSON: see err), VH_JSON_EIO: see vh_err.h. */

/* Parse len bytes of JSON text at text [borrowed] into *out [new]. Empty
 * text (or only whitespace) is nil. 0, VH_ENOMEM, or VH_JSON_EPARSE with
 * a one-line message in err (cap bytes; "$.a[2]: null inside an array").
 */
int vh_json_decode(const char *text, size_t len, vh_val_t *out, char *err,
                   size_t cap);

/* Write v [borrowed] as compact JSON: *out [new, malloc'ed, NUL-terminated]
 * and *outlen. 0, VH_ENOMEM, VH_JSON_EIO when a lazily loaded node could
 * not be read (the fault is cleared), or VH_JSON_EPARSE when v cannot be
 * written without losing data (colliding keys); a one-line message in err
 * (cap bytes; may be NULL) names the path: "cannot write $.a as JSON
 * without losing data: the keys 1 and \"1\" would both be ...". */
int vh_json_encode_err(vh_val_t v, char **out, size_t *outlen, char *err,
                       size_t cap);
/* The same without the message. */
int vh_json_encode(vh_val_t v, char **out, size_t *outlen);

#endif /* VH_JSON_H */
