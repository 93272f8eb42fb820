/*
 * vh_jstream.h - a state value written as JSON in steps (json_stream.c).
 *
 * vh_json_encode (vh_json.h) builds the whole text at once, which holds the
 * loop for seconds on a state of millions of keys. A vh_jstream_t pins one
 * value (a reference to an immutable version: later slices never change
 * what it writes) and writes it as compact JSON into the caller's buffer,
 * a buffer at a time, so the caller can yield to the loop between steps.
 * The text is the one vh_json_encode writes (same mapping, same bytes),
 * except that what JSON cannot hold exactly is refused, with the path:
 * nesting deeper than VH_MAX_DEPTH, and a table whose keys of
 * different types have one text (`[1]` and `["1"]`).
 *
 * Threads: the loop thread only (it walks the trie, which may load nodes).
 */
#ifndef VH_JSTREAM_H
#define VH_JSTREAM_H

#include <stddef.h>

#include "vh_trie.h"

typedef struct vh_jstream vh_jstream_t;

/* A writer of v [borrowed; the writer takes its own reference]. *out
 * [new]. 0 or VH_ENOMEM. */
int vh_jstream_new(vh_val_t v, vh_jstream_t **out);

/* Write the next bytes of the text into buf (cap bytes): *n is how many.
 * 1: more follows; 0: the text is complete (*n may still be > 0);
 * VH_JSON_EIO (a node could not be read from the store), VH_JSON_EPARSE
 * (the value cannot be written as JSON exactly) or VH_ENOMEM: the message
 * is vh_jstream_error(s), and every later call returns the same error.
 * Each call writes at least one byte when cap > 0 and the text is not
 * complete. */
int vh_jstream_read(vh_jstream_t *s, char *buf, size_t cap, size_t *n);

/* [borrowed] The one-line message of the error returned, or "". */
const char *vh_jstream_error(const vh_jstream_t *s);

/* Bytes written so far. */
size_t vh_jstream_total(const vh_jstream_t *s);

/* Release the value and the writer (s may be NULL). */
void vh_jstream_free(vh_jstream_t *s);

/* The length (1..4) of the well-formed UTF-8 sequence at s (n >= 1 bytes
 * available), or 0 when s[0] does not start one (a stray continuation
 * byte, an overlong form, a surrogate, a value past U+10FFFF, or a cut
 * sequence). Both JSON writers replace each byte of a bad sequence with
 * U+FFFD. */
size_t vh_json__utf8_len(const unsigned char *s, size_t n);

#endif /* VH_JSTREAM_H */
