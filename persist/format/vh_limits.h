/*
 * vh_limits.h - the limits every path into a state shares: how deep
 * tables nest, how large a domain version may be, what a domain name is.
 *
 * One definition each, used by the bindings (plain tables and state
 * subtables stored through a proxy), the host (scripts' declarations, JSON),
 * the export stream (writer and reader, so import refuses what the host
 * would refuse) and fsck. README.md documents them ("Limits").
 *
 * DEPTH. A table's depth is the number of tables on the path from its
 * domain's state table down to it, both counted: the state table itself is
 * at depth 1, state.a at 2, state.a.b at 3. No table of a state may sit
 * deeper than VH_MAX_DEPTH. Storing a value checks the depth where it
 * lands plus the height of what is stored, so the limit holds however a
 * deep tree is assembled (a plain table, a state subtable stored under
 * itself again and again, an import, a JSON payload).
 *
 * A store written by an older vedhost may hold a deeper state: reading it
 * works (every walk over stored trees is iterative), writing below the
 * limit still raises, export refuses it with one line, fsck reports it.
 */
#ifndef VH_LIMITS_H
#define VH_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* Deepest table of a state (the state table itself is depth 1). */
#define VH_MAX_DEPTH 20000

/* Largest domain version (scripts' `version`, manifests, export streams).
 * A version near INT64_MAX could never be raised again by a script. */
#define VH_MAX_VERSION INT64_C(1000000000)

/* 1 if the n bytes at s are a valid domain name: an identifier
 * ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes) not starting with "__"
 * (reserved for the host: "__ved" holds its queues and timers). */
static inline int vh_domain_name_ok(const char *s, size_t n) {
  if (n == 0 || n > 255 || (n >= 2 && s[0] == '_' && s[1] == '_')) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return 0;
  }
  return 1;
}

#endif /* VH_LIMITS_H */
