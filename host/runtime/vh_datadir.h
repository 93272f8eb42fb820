/*
 * vh_datadir.h - the data directory: created on first use, locked so that
 * only one vedhost runs on it.
 */
#ifndef VH_DATADIR_H
#define VH_DATADIR_H

#include <stddef.h>

#include "vh_err.h" /* VH_DATADIR_EIO, VH_DATADIR_EBUSY */

typedef struct vh_datadir {
  char *path;  /* the directory as given [owned] */
  int lock_fd; /* DIR/LOCK, flock'ed exclusively; -1 when not held */
} vh_datadir_t;

/* Create path (mode 0700, parents too) if missing, then take the lock
 * DIR/LOCK with flock(LOCK_EX | LOCK_NB) and write our pid into it.
 * path [borrowed]. On error a one-line message (without the "vedhost: "
 * prefix) is written to err (cap bytes) and nothing is held. */
int vh_datadir_open(vh_datadir_t *dd, const char *path, char *err, size_t cap);
/* Release the lock (the LOCK file stays) and free the path. */
void vh_datadir_close(vh_datadir_t *dd);

#endif /* VH_DATADIR_H */
