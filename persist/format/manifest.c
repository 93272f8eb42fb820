/*
 * manifest.c - encoding and decoding of the manifest (layout: vh_manifest.h).
 *
 * The manifest is small (a few dozen bytes per domain), written once per
 * slice, so the code favours plain bounds-checked reads over speed. The
 * store frames it with a CRC-32C, so a decode error here means a bug or a
 * foreign writer rather than a torn write; either way it is refused with a
 * message, never misread.
 */
#include "vh_bytes.h"
#include "vh_manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MF_HEAD 36 /* bytes before the first domain entry */
#define MF_MAX_NAME 255

int vh_manifest_encode(const vh_manifest_t *m, void **out, size_t *len) {
  size_t n = MF_HEAD;
  for (size_t i = 0; i < m->ndomains; i++) {
    size_t l = m->domains[i].name ? strlen(m->domains[i].name) : 0;
    if (l == 0 || l > MF_MAX_NAME || m->domains[i].root == 0) return VH_EINVAL;
    n += 2 + l + 16;
  }
  if (m->ndomains > UINT32_MAX) return VH_EINVAL;
  unsigned char *b = malloc(n);
  if (!b) return VH_ENOMEM;
  memcpy(b, "VHMF", 4);
  vh_le32_store(b + 4, VH_MANIFEST_VERSION);
  vh_le64_store(b + 8, m->seq);
  vh_le64_store(b + 16, m->next_id);
  vh_le64_store(b + 24, m->sys_root);
  vh_le32_store(b + 32, (uint32_t)m->ndomains);
  unsigned char *p = b + MF_HEAD;
  for (size_t i = 0; i < m->ndomains; i++) {
    size_t l = strlen(m->domains[i].name);
    vh_le16_store(p, (uint16_t)l);
    memcpy(p + 2, m->domains[i].name, l);
    p += 2 + l;
    vh_le64_store(p, m->domains[i].root);
    vh_le64_store(p + 8, (uint64_t)m->domains[i].version);
    p += 16;
  }
  *out = b;
  *len = n;
  return 0;
}

static int fail(vh_manifest_t *m, char **errmsg, int code, const char *fmt,
                ...) {
  /* Format first: the arguments may point into *m. */
  if (errmsg) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    *errmsg = strdup(buf);
  }
  vh_manifest_free(m);
  return code;
}

int vh_manifest_decode(const void *data, size_t len, vh_manifest_t *m,
                       char **errmsg) {
  const unsigned char *p = data, *end = p + len;
  memset(m, 0, sizeof *m);
  if (errmsg) *errmsg = NULL;
  if (len < 8 || memcmp(p, "VHMF", 4) != 0)
    return fail(m, errmsg, VH_ECORRUPT, "manifest: bad magic");
  uint32_t ver = vh_le32_load(p + 4);
  if (ver > VH_MANIFEST_VERSION)
    return fail(m, errmsg, VH_EFORMAT,
                "manifest: format version %u is newer than this vedhost "
                "reads (%u); upgrade vedhost",
                (unsigned)ver, (unsigned)VH_MANIFEST_VERSION);
  if (ver == 0 || len < MF_HEAD)
    return fail(m, errmsg, VH_ECORRUPT, "manifest: truncated header");
  m->seq = vh_le64_load(p + 8);
  m->next_id = vh_le64_load(p + 16);
  m->sys_root = vh_le64_load(p + 24);
  uint32_t n = vh_le32_load(p + 32);
  p += MF_HEAD;
  /* Each entry takes at least 19 bytes: bound n before allocating. */
  if (n > (size_t)(end - p) / 19)
    return fail(m, errmsg, VH_ECORRUPT, "manifest: %u domains do not fit",
                (unsigned)n);
  if (n > 0) {
    m->domains = calloc(n, sizeof *m->domains);
    if (!m->domains) return fail(m, errmsg, VH_ENOMEM, "out of memory");
  }
  for (uint32_t i = 0; i < n; i++) {
    if (end - p < 2) goto truncated;
    size_t l = vh_le16_load(p);
    p += 2;
    if (l == 0 || l > MF_MAX_NAME)
      return fail(m, errmsg, VH_ECORRUPT, "manifest: bad name length %zu", l);
    if ((size_t)(end - p) < l + 16) goto truncated;
    char *name = malloc(l + 1);
    if (!name) return fail(m, errmsg, VH_ENOMEM, "out of memory");
    memcpy(name, p, l);
    name[l] = '\0';
    m->domains[i].name = name;
    m->ndomains = i + 1;
    if (memchr(name, '\0', l))
      return fail(m, errmsg, VH_ECORRUPT, "manifest: NUL in a domain name");
    p += l;
    m->domains[i].root = vh_le64_load(p);
    m->domains[i].version = (int64_t)vh_le64_load(p + 8);
    p += 16;
    if (m->domains[i].root == 0 || m->domains[i].root >= m->next_id)
      return fail(m, errmsg, VH_ECORRUPT,
                  "manifest: domain %s has root id %llu outside 1..%llu", name,
                  (unsigned long long)m->domains[i].root,
                  (unsigned long long)m->next_id);
  }
  if (m->sys_root >= m->next_id && m->sys_root != 0)
    return fail(m, errmsg, VH_ECORRUPT,
                "manifest: system root id out of range");
  if (p != end)
    return fail(m, errmsg, VH_ECORRUPT, "manifest: %zu trailing bytes",
                (size_t)(end - p));
  return 0;
truncated:
  return fail(m, errmsg, VH_ECORRUPT, "manifest: truncated domain entry");
}

void vh_manifest_free(vh_manifest_t *m) {
  for (size_t i = 0; i < m->ndomains; i++) free(m->domains[i].name);
  free(m->domains);
  memset(m, 0, sizeof *m);
}

int vh_manifest_add(vh_manifest_t *m, const char *name, uint64_t root,
                    int64_t version) {
  vh_manifest_domain_t *d =
      realloc(m->domains, (m->ndomains + 1) * sizeof *m->domains);
  if (!d) return VH_ENOMEM;
  m->domains = d;
  char *copy = strdup(name);
  if (!copy) return VH_ENOMEM;
  d[m->ndomains].name = copy;
  d[m->ndomains].root = root;
  d[m->ndomains].version = version;
  m->ndomains++;
  return 0;
}

const vh_manifest_domain_t *vh_manifest_find(const vh_manifest_t *m,
                                             const char *name) {
  for (size_t i = 0; i < m->ndomains; i++)
    if (strcmp(m->domains[i].name, name) == 0) return &m->domains[i];
  return NULL;
}

int vh_manifest_same_but_seq(const void *a, size_t an, const void *b,
                             size_t bn) {
  /* Bytes 0..8 are magic and version, 8..16 the slice sequence number,
   * 16.. the next id, the system root and the domains (vh_manifest.h). */
  const unsigned char *pa = a, *pb = b;
  if (!pa || !pb || an != bn || an < 16) return 0;
  return memcmp(pa, pb, 8) == 0 && memcmp(pa + 16, pb + 16, an - 16) == 0;
}
