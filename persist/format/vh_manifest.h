/*
 * vh_manifest.h - the manifest: which roots make up the committed state.
 *
 * One manifest is written in every slice's batch (key 'M' of the store, with
 * the store's checksum framing around it). A restart reads it and nothing
 * else: each domain's root becomes a lazily loaded table (vh_tab_stub).
 *
 * Byte layout (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     magic "VHMF"
 *   4       4     u32 manifest format version (VH_MANIFEST_VERSION)
 *   8       8     u64 slice sequence number of the slice that wrote it
 *   16      8     u64 next node id (every stored node id is below it)
 *   24      8     u64 root id of the host's system state "__ved" (0: none)
 *   32      4     u32 n = number of domains
 *   36      ...   n entries, each:
 *                   u16 name length L (1..255), L bytes of name,
 *                   u64 root id (> 0), i64 domain version (>= 1)
 *   end           nothing may follow the last entry
 *
 * Decoding checks every length, the magic, that the version is not newer
 * than this code's, and that no bytes trail; a newer version is VH_EFORMAT,
 * anything malformed VH_ECORRUPT, each with a one-line message.
 */
#ifndef VH_MANIFEST_H
#define VH_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"

#define VH_MANIFEST_VERSION 1

typedef struct vh_manifest_domain {
  char *name;      /* [owned] NUL-terminated */
  uint64_t root;   /* node id of the domain's root table */
  int64_t version; /* the domain's `version` when it was written */
} vh_manifest_domain_t;

typedef struct vh_manifest {
  uint64_t seq;      /* slice sequence number */
  uint64_t next_id;  /* next node id to hand out */
  uint64_t sys_root; /* system state root id, 0 if none */
  size_t ndomains;
  vh_manifest_domain_t *domains; /* [owned] ndomains entries */
} vh_manifest_t;

/* Encode m [borrowed] into *out [new, free()] of *len bytes. 0, VH_ENOMEM,
 * or VH_EINVAL (a name empty or longer than 255 bytes, a root id 0). */
int vh_manifest_encode(const vh_manifest_t *m, void **out, size_t *len);
/* Decode len bytes at p into *m (freed with vh_manifest_free). On error *m
 * is empty and *errmsg (if not NULL) gets a [new, free()] message. */
int vh_manifest_decode(const void *p, size_t len, vh_manifest_t *m,
                       char **errmsg);
/* Free what *m owns and zero it. */
void vh_manifest_free(vh_manifest_t *m);
/* Append a domain entry (name copied). 0 or VH_ENOMEM. */
int vh_manifest_add(vh_manifest_t *m, const char *name, uint64_t root,
                    int64_t version);
/* The entry named name, or NULL. */
const vh_manifest_domain_t *vh_manifest_find(const vh_manifest_t *m,
                                             const char *name);
/* 1 when the encodings a (an bytes) and b (bn bytes) [borrowed] are equal
 * except for the slice sequence number (bytes 8..16 of the layout above):
 * same length, same bytes 0..8 and 16..end. 0 otherwise, also when either
 * is NULL or shorter than 16 bytes. The writer uses it to skip a slice
 * whose manifest would only bump the sequence number. */
int vh_manifest_same_but_seq(const void *a, size_t an, const void *b,
                             size_t bn);

#endif /* VH_MANIFEST_H */
