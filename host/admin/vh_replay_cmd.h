/*
 * vh_replay_cmd.h - `vedhost replay [--data DIR] --at V [--code DIR]
 * [--trace]` (host/admin/replay_cmd.c).
 */
#ifndef VH_REPLAY_CMD_H
#define VH_REPLAY_CMD_H

#include <stdint.h>

#include "vh_offline.h"

/* ---- the pieces, for vedhost rehearse too ---- */

/* The scripts a replay runs: code [borrowed] (a file or dir) if not NULL,
 * else the paths `vedhost run` listed in DATA/scripts. *out [new]
 * (vh_replay_scripts_free), *n >= 1. 0, VH_ENOENT (no list), VH_ENOMEM. */
int vh_replay_scripts(const char *data, const char *code, char ***out, int *n);
void vh_replay_scripts_free(char **s, int n);
/* The retained version just before v in the window: *prev. 0, or <0 with
 * one line in err ("... the version before it is not retained ..."). */
int vh_replay_prev(vh_store_t *s, uint64_t v, uint64_t *prev, char *err,
                   size_t cap);

/* A private host to replay in: a scratch data dir in /tmp (its own empty
 * store, never written: no slice ends in it), the scripts loaded, every
 * declared domain's root a plain stub of m's root read from o's store
 * (o [borrowed] must stay open until close). */
typedef struct vh_replay_host {
  struct vh_host *h; /* [owned] */
  char scratch[64];
} vh_replay_host_t;
/* check_versions: refuse a domain whose version differs from m's (a
 * rehearsal runs migrate itself: 0). 0, or <0 with one line in err. */
int vh_replay_host_open(vh_offline_t *o, char **scripts, int nscripts,
                        const vh_manifest_t *m, int check_versions,
                        vh_replay_host_t *out, char *err, size_t cap);
void vh_replay_host_close(vh_replay_host_t *rh);

/* argv[0] is "replay". Exit codes: 0 reproduced, 3 not reproduced, 1 bad
 * input (unknown or unreplayable version, V-1 not retained, no scripts),
 * 2 usage. */
int vh_replay_main(int argc, char **argv);

#endif /* VH_REPLAY_CMD_H */
