/*
 * vh_graveyard.h - dead nodes deleted a block of ids at a time (store
 * format 5): what, why, the records and the rules are at the top of
 * persist/store/graveyard.c. The history engine (history.c) is the only
 * writer; fsck reads the pending ids.
 */
#ifndef VH_GRAVEYARD_H
#define VH_GRAVEYARD_H

#include <stddef.h>
#include <stdint.h>

#include "vh_err.h"
#include "vh_store.h"

typedef struct vh_grave vh_grave_t;

/* The graveyard of store s, or NULL (*out) when its format has none
 * (format 1-4: every dead node is deleted at once). Reads nothing. */
int vh_grave_open(vh_store_t *s, vh_grave_t **out);
void vh_grave_free(vh_grave_t *g);

/* Begins a batch: forgets ids added by a batch that was not finished, and
 * reads the floor and the blocks' counts if not read yet (a failed read
 * is returned with *errmsg [new]; until one works, vh_grave_add takes
 * nothing). cap_ids: at most this many ids should wait in incomplete
 * blocks; below a few blocks' worth the graveyard takes none (SMALL
 * STORES). */
int vh_grave_begin(vh_grave_t *g, uint64_t cap_ids, char **errmsg);

/* A dead node the GC may delete: 1 if the graveyard takes it (the batch's
 * vh_grave_end writes it down), 0 if the caller deletes it itself (its
 * block is below the floor, or the counts could not be read). */
int vh_grave_add(vh_grave_t *g, uint64_t id);

/* Ends the batch seq in b: the ids added go to their blocks' records (or
 * are deleted, when this batch released their block). Unless stopping,
 * one block whose ids are all dead is deleted with one range delete, and
 * one block is released when more than cap_ids ids wait. durable: the
 * newest batch the writer wrote (records of later ones are not read).
 * 0, VH_ENOMEM, or a read error (*errmsg [new]; the batch's ids are
 * still written down, nothing was deleted). */
int vh_grave_end(vh_grave_t *g, vh_batch_t *b, uint64_t seq, uint64_t durable,
                 int stopping, char **errmsg);

/* Ids waiting in incomplete blocks (after the last vh_grave_end). */
uint64_t vh_grave_pending(const vh_grave_t *g);

/* fsck: every id of every 'Z' record, fn(arg, id); and each block's
 * count: blk_fn(arg, block, bits, dead, ids_seen) once per 'R' record,
 * after its ids. Non-zero from fn stops (returned). */
int vh_store_grave_each(vh_store_t *s, int (*fn)(void *arg, uint64_t id),
                        int (*blk_fn)(void *arg, uint64_t block, unsigned bits,
                                      uint64_t dead, uint64_t seen),
                        void *arg, char **errmsg);

#endif
