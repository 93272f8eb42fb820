/*
 * vh_codec.h - the byte encoding of one trie node (persist/trie/codec.c).
 *
 * A node's encoding is what the store keeps under the node's id (the store
 * adds its own checksum and record version around it). The byte layout is
 * documented at the top of persist/trie/codec.c. Nodes refer to their children
 * by id, so a child is always encoded (and given an id) before its parent.
 *
 * Decoding validates everything (format version, kind, lengths, varints,
 * bitmaps, key order and hashes, trailing bytes) and fails with VH_ECORRUPT
 * (or VH_EFORMAT for a newer format) and a static message, never crashing.
 * Children of a decoded node are stubs that load on first access; its
 * big string values stored as blobs are read at once (vh_trie__load_blob,
 * through the trie's loader: a failure there is the load's code).
 *
 * Ownership: [borrowed] the caller keeps it, [new] the caller must release.
 */
#ifndef VH_CODEC_H
#define VH_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "vh_bytes.h"
#include "vh_err.h"

/* The node format (the high nibble of every node's first byte): the newest
 * this code reads, written for nodes that refer to a blob and for blob
 * records (codec.c, BLOBS); a node without a blob reference is written as
 * version 1, which older vedhost versions read too. */
#define VH_CODEC_VERSION 2
#define VH_CODEC_VERSION_INLINE 1

/* vh_buf_t, the growable byte buffer, lives in vh_bytes.h. */

struct vh_node;
struct vh_tab;

/* Encode node n [borrowed] (not a stub; every child node and nested table
 * must already have an id) into out, replacing its contents. 0, VH_ENOMEM,
 * or VH_EINVAL (a child without an id, a stub, a bad kind). */
int vh_codec_encode(const struct vh_node *n, vh_buf_t *out);

/* Encode the blob record of a big string value's len bytes at p
 * [borrowed] into out, replacing its contents (codec.c, BLOBS). 0 or
 * VH_ENOMEM. A leaf encodes such a value as a reference once the
 * string's trailer holds the blob's id (flush.c writes blobs first). */
int vh_codec_encode_blob(const void *p, size_t len, vh_buf_t *out);

/* What a node's parent knows about it, for decoding a non-table node:
 * parents hand it to their children's stubs (vh_stub_t). */
typedef struct vh_codec_expect {
  uint8_t kind;    /* VH_K_CHAMP, VH_K_COLL, VH_K_VLEAF or VH_K_VINNER */
  uint8_t shift;   /* CHAMP/COLL: hash shift (0..35); VINNER: level (5..60) */
  uint8_t tail;    /* VLEAF: 1 if the vector tail (last slot non-nil) */
  uint64_t expect; /* CHAMP/COLL: hash prefix; VINNER: full leaves under
                      it; VLEAF: slot count */
  /* CHAMP, optional (NULL = none): a loaded view node of an older version
   * at the same place (same shift and prefix; tdiff.c, TWINS). A child
   * whose id is the twin's child's at the same slot is that child, shared
   * (one more reference), not a new stub. For view nodes only: the
   * decoded node must be flagged VH_F_VIEW like the twin. */
  const struct vh_node *twin;
} vh_codec_expect_t;

/* Decode a non-table node. *out = [new] node with id = id, edit 0, and
 * stubs for children and nested tables. On error *out = NULL, *why = a
 * static message, and nothing is leaked. bytes [borrowed]. */
int vh_codec_decode(const void *bytes, size_t len, uint64_t id,
                    const vh_codec_expect_t *ex, struct vh_node **out,
                    const char **why);
/* Decode a table node into the unloaded table t [borrowed] (a stub from
 * vh_tab_stub), in place; t is untouched on error. */
int vh_codec_decode_tab(const void *bytes, size_t len, struct vh_tab *t,
                        const char **why);

/* Lists the ids an encoded node refers to (child nodes, nested tables and
 * blobs; a blob record itself has none, kind VH_K_BLOB),
 * for a sweeper deleting a dropped subtree without loading it. Pure: no
 * trie globals, no allocation, safe on any thread. The node is validated
 * first (everything that can be checked without its parent); only a valid
 * node's ids are passed to fn(arg, id); fn returning < 0 stops the walk
 * and that value is returned. 0 on success; VH_ECORRUPT / VH_EFORMAT with
 * *why (static) if malformed. *kind (if not NULL) = the node's VH_K_*. */
typedef int (*vh_codec_id_fn)(void *arg, uint64_t id);
int vh_codec_child_ids(const void *bytes, size_t len, vh_codec_id_fn fn,
                       void *arg, int *kind, const char **why);

#endif /* VH_CODEC_H */
