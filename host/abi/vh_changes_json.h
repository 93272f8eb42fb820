/*
 * vh_changes_json.h - a change of vh_changes.h as one JSON line, in the
 * plugin ABI's value mapping (host/abi/changes_json.c): `vedhost diff
 * --json`, `vedhost changes --json`, HTTP /changes and api->changes.
 */
#ifndef VH_CHANGES_JSON_H
#define VH_CHANGES_JSON_H

#include "vh_bytes.h"
#include "vh_changes.h"

/* One change as a JSON object (no newline) appended to out:
 * {"seq":N,"time":MS,"domain":"d","op":"+","path":[k,...],"value":V}
 * with "old"/"new" for '~' and no value for '-'; "n"/"of" when c->of > 0;
 * seq/time only when with_seq. Keys: strings, numbers, booleans. 0,
 * VH_ENOMEM, or VH_JSON_EIO (a node could not be read). A value that JSON
 * cannot hold exactly (colliding keys) is written as {"error": "..."}. */
int vh_change_json(const vh_change_t *c, int with_seq, vh_buf_t *out);

#endif /* VH_CHANGES_JSON_H */
