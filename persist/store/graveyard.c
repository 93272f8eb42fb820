/*
 * graveyard.c - dead nodes deleted a block of ids at a time, by one range
 * delete, instead of one delete each (store format 5; API:
 * vh_graveyard.h; the one writer: history.c, in each slice's batch).
 *
 * WHY. Before format 5 the GC wrote one RocksDB delete per dead node
 * (~2.5 per update at 1M keys). A delete is a tombstone that compaction
 * carries down every level of the nodes' family to the node it deletes,
 * merged again and again into the levels on its way: at K=1M, N=10M
 * (`sync`, default retention) ~23 s of compaction CPU and ~5 s of
 * flushes for 10M updates, against ~33 s for the loop thread itself, on
 * 2 cores (bench/README.md, "perf/graveyard"). But the nodes a slice
 * writes have consecutive ids (ids only grow), and most of them die
 * within a few hundred slices: at the end of that run 82 of the 120
 * blocks of 65536 ids that had deaths were dead whole.
 *
 * BLOCKS. Ids are grouped in blocks of 2^bits consecutive ids (bits 16;
 * the 'Y' record fixes a store's own at its first use). Every id below
 * the manifest's next id was given to exactly one node, stored until it
 * is deleted; ids above it are reused after a crash, but a dead id is
 * always below (it was in a retained version).
 *
 * RECORDS (default family; values framed like the history's records,
 * kind 0xA; payloads little endian, opening with u32 layout 1):
 *
 *   'Z' u64be(block) u64be(s)  u32 layout, u32 n, n x u64 id: the ids
 *                              of block found dead by batch s
 *   'R' u64be(block)           u32 layout, u64 dead (ids in the block's
 *                              'Z' records), u64 last (the newest batch
 *                              that wrote one)
 *   'Y'                        u32 layout, u32 bits, u64 floor
 *
 * THE RULE. The GC (history.c, THE RULE) hands each node it may delete to
 * vh_grave_add. An id of a block at or above the floor is not deleted:
 * the batch writes it into the block's 'Z' record of that batch, and 'R'
 * counts it. When a block's count reaches 2^bits every id of it is dead;
 * once its 'Z' records are durable (the writer wrote their batch: a read
 * sees only what it wrote), a later batch reads them back, checks that
 * they hold each id of the block exactly once (a count alone is never
 * trusted with a range delete: one counted twice would delete a live
 * node), and deletes the block: one range delete of its node keys, and
 * its 'Z' and 'R' records. One block per batch. If the check fails (a
 * bug), the block is released instead, and the batch's caller reports it.
 *
 * RELEASE. A block that holds a node that never dies (a key never written
 * again) never completes. When more than cap_ids ids wait in incomplete
 * blocks (history.c: an eighth of the store's live bytes, in nodes), the
 * lowest incomplete block whose records are durable is released: its ids
 * are read back and deleted one by one (as before format 5), its records
 * deleted, and the floor moves above it, so every later death in it (or
 * below) is deleted at once. One block per batch: at most 2^bits deletes.
 *
 * SMALL STORES take no ids: only once the cap holds VH_GRAVE_MIN_BLOCKS
 * blocks (at 16 bits and ~64 B a node, ~128 MB of live store) does the
 * graveyard take any. A small store writes few nodes per update, and a
 * block of 65536 ids that holds one node that never dies would keep dead
 * nodes worth many times its live state on disk for a long while: its
 * release waits for the block's records to be durable, and the one block
 * a small store's deaths go to gets some in nearly every batch.
 *
 * A stopping host's batch only writes its ids down: the next start does
 * the rest. CRASH: every record is written in the batch of the deaths it
 * counts, and a range delete or a release in the batch that deletes the
 * records it retires, so a crash finds them consistent. RESTART reads
 * nothing at open: the first batch reads 'Y' and every 'R' (one per
 * incomplete block). FSCK (host/admin/fsck.c): the ids of the 'Z' records
 * are pending (not leaks), must not be reachable, and must match 'R'.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "vh_bytes.h"
#include "vh_graveyard.h"

#define VH_GRAVE_LAYOUT 1
#define VH_GRAVE_BITS 16
#define VH_GRAVE_BITS_MAX 24 /* whole()'s bitmap: 2 MB */
/* SMALL STORES: blocks the cap must hold before ids are taken at all. */
#define VH_GRAVE_MIN_BLOCKS 4
#define VH_GRAVE_Z_KEY 17
#define VH_GRAVE_R_KEY 9
#define VH_GRAVE_R_LEN 20
#define VH_GRAVE_Y_LEN 16

typedef struct gblock {
  uint64_t blk, dead, last;
} gblock_t;

struct vh_grave {
  vh_store_t *s;
  int loaded;     /* bits, floor and v are read */
  int floor_new;  /* 'Y' to write */
  unsigned bits;  /* ids per block: 1 << bits */
  uint64_t floor; /* blocks below: deleted at once */
  gblock_t *v;    /* blocks with an 'R', by blk */
  size_t n, cap;
  uint64_t *add; /* this batch's ids */
  size_t nadd, capadd;
  uint64_t wait_cap; /* this batch's cap on waiting ids (vh_grave_begin) */
  int take;          /* the cap is worth the graveyard (SMALL STORES) */
};

static uint64_t bsize(const vh_grave_t *g) {
  return (uint64_t)1 << g->bits;
}

int vh_grave_open(vh_store_t *s, vh_grave_t **out) {
  *out = NULL;
  if (s->format < 5) return 0;
  vh_grave_t *g = calloc(1, sizeof *g);
  if (g == NULL) return VH_ENOMEM;
  g->s = s;
  *out = g;
  return 0;
}

void vh_grave_free(vh_grave_t *g) {
  if (g == NULL) return;
  free(g->v);
  free(g->add);
  free(g);
}

/* ---- records ---- */

static void z_key(unsigned char *k, uint64_t blk, uint64_t s) {
  k[0] = VH_KEY_GRAVE;
  vh_be64_store(k + 1, blk);
  vh_be64_store(k + 9, s);
}

static int put_z(vh_batch_t *b, uint64_t blk, uint64_t s, const uint64_t *ids,
                 size_t n) {
  if (n > UINT32_MAX || n > (SIZE_MAX - 8) / 8) return VH_ENOMEM;
  size_t len = 8 + 8 * n;
  unsigned char *p = malloc(len);
  if (p == NULL) return VH_ENOMEM;
  vh_le32_store(p, VH_GRAVE_LAYOUT);
  vh_le32_store(p + 4, (uint32_t)n);
  for (size_t i = 0; i < n; i++) vh_le64_store(p + 8 + 8 * i, ids[i]);
  unsigned char k[VH_GRAVE_Z_KEY];
  z_key(k, blk, s);
  int rc = vh_batch__key_op(b, k, sizeof k, VH_KIND_GRAVE, p, len);
  free(p);
  return rc;
}

static int put_r(vh_batch_t *b, const gblock_t *e) {
  unsigned char p[VH_GRAVE_R_LEN], k[VH_GRAVE_R_KEY];
  vh_le32_store(p, VH_GRAVE_LAYOUT);
  vh_le64_store(p + 4, e->dead);
  vh_le64_store(p + 12, e->last);
  k[0] = VH_KEY_GRAVE_BLOCK;
  vh_be64_store(k + 1, e->blk);
  return vh_batch__key_op(b, k, sizeof k, VH_KIND_GRAVE, p, sizeof p);
}

static int del_r(vh_batch_t *b, uint64_t blk) {
  unsigned char k[VH_GRAVE_R_KEY];
  k[0] = VH_KEY_GRAVE_BLOCK;
  vh_be64_store(k + 1, blk);
  return vh_batch__key_op(b, k, sizeof k, -1, NULL, 0);
}

static int put_y(vh_batch_t *b, const vh_grave_t *g) {
  unsigned char p[VH_GRAVE_Y_LEN];
  vh_le32_store(p, VH_GRAVE_LAYOUT);
  vh_le32_store(p + 4, g->bits);
  vh_le64_store(p + 8, g->floor);
  char k = VH_KEY_GRAVE_FLOOR;
  return vh_batch__key_op(b, &k, 1, VH_KIND_GRAVE, p, sizeof p);
}

static int bad(char **errmsg, const char *what) {
  vh_store__set_msg(errmsg, vh_store__msg("graveyard: %s", what));
  return VH_ECORRUPT;
}

static int layout_ok(const unsigned char *p, size_t len, char **errmsg) {
  if (len < 4) return bad(errmsg, "record too short");
  if (vh_le32_load(p) > VH_GRAVE_LAYOUT) {
    vh_store__set_msg(
        errmsg, vh_store__msg("graveyard: record layout %u is "
                              "newer than this vedhost's (%d)",
                              (unsigned)vh_le32_load(p), VH_GRAVE_LAYOUT));
    return VH_EFORMAT;
  }
  return 0;
}

/* A 'Z' payload: calls fn(arg, id) for each id; checks its layout. */
static int z_ids(const unsigned char *p, size_t len,
                 int (*fn)(void *arg, uint64_t id), void *arg, char **errmsg) {
  int rc = layout_ok(p, len, errmsg);
  if (rc != 0) return rc;
  if (len < 8 || (len - 8) / 8 != vh_le32_load(p + 4) || (len - 8) % 8)
    return bad(errmsg, "bad id count");
  size_t n = vh_le32_load(p + 4);
  for (size_t i = 0; i < n && rc == 0; i++)
    rc = fn(arg, vh_le64_load(p + 8 + 8 * i));
  return rc;
}

/* ---- the blocks in memory ---- */

/* Index of blk in g->v, or where it would go. */
static size_t find(const vh_grave_t *g, uint64_t blk) {
  size_t lo = 0, hi = g->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (g->v[mid].blk < blk)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static gblock_t *get_or_add(vh_grave_t *g, uint64_t blk) {
  size_t i = find(g, blk);
  if (i < g->n && g->v[i].blk == blk) return &g->v[i];
  if (vh_grow(&g->v, &g->cap, g->n + 1, sizeof *g->v) != 0) return NULL;
  memmove(&g->v[i + 1], &g->v[i], (g->n - i) * sizeof *g->v);
  g->n++;
  g->v[i] = (gblock_t){blk, 0, 0};
  return &g->v[i];
}

static void drop_at(vh_grave_t *g, size_t i) {
  memmove(&g->v[i], &g->v[i + 1], (g->n - i - 1) * sizeof *g->v);
  g->n--;
}

static int r_one(void *arg, const unsigned char *k, size_t klen,
                 const unsigned char *p, size_t len, char **errmsg) {
  vh_grave_t *g = arg;
  if (klen != VH_GRAVE_R_KEY) return 0;
  int rc = layout_ok(p, len, errmsg);
  if (rc != 0) return rc;
  if (len < VH_GRAVE_R_LEN) return bad(errmsg, "block record too short");
  if (vh_grow(&g->v, &g->cap, g->n + 1, sizeof *g->v) != 0) return VH_ENOMEM;
  g->v[g->n++] = (gblock_t){vh_be64_load(k + 1), vh_le64_load(p + 4),
                            vh_le64_load(p + 12)};
  return 0;
}

static int load(vh_grave_t *g, char **errmsg) {
  void *y = NULL;
  size_t ylen = 0;
  char k = VH_KEY_GRAVE_FLOOR;
  int rc = vh_store__get_value(g->s, &k, 1, VH_KIND_GRAVE, "graveyard floor",
                               &y, &ylen, errmsg);
  if (rc == VH_ENOENT) { /* first use: fix the block size */
    free(errmsg ? *errmsg : NULL);
    if (errmsg) *errmsg = NULL;
    unsigned bits = g->s->grave_bits ? g->s->grave_bits : VH_GRAVE_BITS;
    g->bits = bits > VH_GRAVE_BITS_MAX ? VH_GRAVE_BITS_MAX : bits;
    g->floor = 0;
    g->floor_new = 1;
    rc = 0;
  } else if (rc == 0) {
    rc = layout_ok(y, ylen, errmsg);
    if (rc == 0 && ylen < VH_GRAVE_Y_LEN) rc = bad(errmsg, "floor too short");
    if (rc == 0) {
      g->bits = vh_le32_load((unsigned char *)y + 4);
      g->floor = vh_le64_load((unsigned char *)y + 8);
      if (g->bits == 0 || g->bits > VH_GRAVE_BITS_MAX)
        rc = bad(errmsg, "bad block size");
    }
  }
  free(y);
  if (rc != 0) return rc;
  g->n = 0;
  unsigned char pre = VH_KEY_GRAVE_BLOCK;
  rc = vh_store__scan(g->s, &pre, 1, VH_KIND_GRAVE, 0, r_one, g, errmsg);
  if (rc != 0) {
    g->n = 0;
    return rc;
  }
  g->loaded = 1;
  return 0;
}

int vh_grave_begin(vh_grave_t *g, uint64_t cap_ids, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  g->nadd = 0;
  g->take = 0;
  g->wait_cap = cap_ids;
  int rc = g->loaded ? 0 : load(g, errmsg);
  if (rc == 0) g->take = cap_ids >= bsize(g) * VH_GRAVE_MIN_BLOCKS;
  return rc;
}

int vh_grave_add(vh_grave_t *g, uint64_t id) {
  if (!g->take || id >> g->bits < g->floor) return 0;
  if (vh_grow(&g->add, &g->capadd, g->nadd + 1, sizeof *g->add) != 0)
    return 0; /* no memory: the caller deletes it, as before format 5 */
  g->add[g->nadd++] = id;
  return 1;
}

uint64_t vh_grave_pending(const vh_grave_t *g) {
  uint64_t n = 0;
  for (size_t i = 0; i < g->n; i++)
    if (g->v[i].dead < bsize(g)) n += g->v[i].dead;
  return n;
}

/* ---- reading a block back ---- */

typedef struct bread {
  uint64_t *ids;
  size_t n, cap;
  uint64_t *zs; /* the 'Z' records' s */
  size_t nz, capz;
} bread_t;

static int bread_id(void *arg, uint64_t id) {
  bread_t *r = arg;
  if (vh_grow(&r->ids, &r->cap, r->n + 1, sizeof *r->ids) != 0)
    return VH_ENOMEM;
  r->ids[r->n++] = id;
  return 0;
}

static int bread_z(void *arg, const unsigned char *k, size_t klen,
                   const unsigned char *p, size_t len, char **errmsg) {
  bread_t *r = arg;
  if (klen != VH_GRAVE_Z_KEY) return 0;
  if (vh_grow(&r->zs, &r->capz, r->nz + 1, sizeof *r->zs) != 0)
    return VH_ENOMEM;
  r->zs[r->nz++] = vh_be64_load(k + 9);
  return z_ids(p, len, bread_id, r, errmsg);
}

static int read_block(vh_grave_t *g, uint64_t blk, bread_t *r, char **errmsg) {
  unsigned char pre[9];
  pre[0] = VH_KEY_GRAVE;
  vh_be64_store(pre + 1, blk);
  return vh_store__scan(g->s, pre, sizeof pre, VH_KIND_GRAVE, 0, bread_z, r,
                        errmsg);
}

static void bread_free(bread_t *r) {
  free(r->ids);
  free(r->zs);
}

/* Deletes block e's records (its 'Z' ones are r->zs) and e itself. */
static int retire(vh_grave_t *g, vh_batch_t *b, size_t i, const bread_t *r) {
  uint64_t blk = g->v[i].blk;
  int rc = 0;
  for (size_t j = 0; j < r->nz && rc == 0; j++) {
    unsigned char k[VH_GRAVE_Z_KEY];
    z_key(k, blk, r->zs[j]);
    rc = vh_batch__key_op(b, k, sizeof k, -1, NULL, 0);
  }
  if (rc == 0) rc = del_r(b, blk);
  if (rc == 0) drop_at(g, i);
  return rc;
}

/* Releases block i: its ids are deleted one by one, the floor goes above
 * it. */
static int release(vh_grave_t *g, vh_batch_t *b, size_t i, bread_t *r) {
  uint64_t blk = g->v[i].blk;
  int rc = 0;
  for (size_t j = 0; j < r->n && rc == 0; j++)
    rc = vh_batch_del_node(b, r->ids[j]);
  if (rc == 0) rc = retire(g, b, i, r);
  if (rc == 0 && blk + 1 > g->floor) {
    g->floor = blk + 1;
    g->floor_new = 1;
  }
  return rc;
}

/* Does r hold each id of block blk exactly once? 1, 0, or VH_ENOMEM. */
static int whole(const vh_grave_t *g, uint64_t blk, const bread_t *r) {
  if (r->n != bsize(g)) return 0;
  uint64_t *seen = calloc(bsize(g) / 64 + 1, sizeof *seen);
  if (seen == NULL) return VH_ENOMEM;
  uint64_t lo = blk << g->bits;
  int ok = 1;
  for (size_t j = 0; j < r->n && ok; j++) {
    uint64_t k = r->ids[j] - lo;
    if (r->ids[j] < lo || k >= bsize(g) || (seen[k / 64] >> (k % 64) & 1))
      ok = 0;
    else
      seen[k / 64] |= (uint64_t)1 << (k % 64);
  }
  free(seen);
  return ok;
}

/* One block whose ids are all dead and durable: one range delete. */
static int complete_one(vh_grave_t *g, vh_batch_t *b, uint64_t durable,
                        char **errmsg) {
  for (size_t i = 0; i < g->n; i++) {
    gblock_t *e = &g->v[i];
    if (e->dead < bsize(g) || e->last > durable) continue;
    bread_t r = {0};
    uint64_t blk = e->blk, dead = e->dead; /* e moves once retired */
    int rc = read_block(g, blk, &r, errmsg);
    int all = rc == 0 ? whole(g, blk, &r) : 0;
    if (all < 0) rc = all;
    if (rc == 0 && all) {
      rc = vh_batch__del_node_range(b, blk << g->bits, (blk + 1) << g->bits);
      if (rc == 0) rc = retire(g, b, i, &r);
    } else if (rc == 0) {
      rc = release(g, b, i, &r);
      if (rc == 0) {
        vh_store__set_msg(
            errmsg,
            vh_store__msg("graveyard: block %llu counted %llu dead ids but "
                          "its records hold %zu; its nodes were deleted one "
                          "by one (run vedhost fsck)",
                          (unsigned long long)blk, (unsigned long long)dead,
                          r.n));
        rc = VH_ECORRUPT;
      }
    }
    bread_free(&r);
    return rc;
  }
  return 0;
}

/* The lowest incomplete block, if its records are durable, is released
 * when more than cap ids wait. */
static int release_one(vh_grave_t *g, vh_batch_t *b, uint64_t durable,
                       uint64_t cap, char **errmsg) {
  if (vh_grave_pending(g) <= cap) return 0;
  for (size_t i = 0; i < g->n; i++) {
    gblock_t *e = &g->v[i];
    if (e->dead >= bsize(g)) continue;
    if (e->last > durable) return 0;
    bread_t r = {0};
    int rc = read_block(g, e->blk, &r, errmsg);
    if (rc == 0) rc = release(g, b, i, &r);
    bread_free(&r);
    return rc;
  }
  return 0;
}

/* The batch's ids into their blocks' records, grouped by block with a
 * counting pass over the (few) blocks, not sorted: a qsort of a batch's
 * ~25k ids was ~2 ms of the loop thread at K=1M. */
static int write_down(vh_grave_t *g, vh_batch_t *b, uint64_t seq) {
  int rc = 0;
  size_t n = 0;
  for (size_t i = 0; i < g->nadd && rc == 0; i++) {
    uint64_t blk = g->add[i] >> g->bits;
    if (blk < g->floor) /* released by this batch */
      rc = vh_batch_del_node(b, g->add[i]);
    else if (get_or_add(g, blk) == NULL)
      rc = VH_ENOMEM;
    else
      g->add[n++] = g->add[i];
  }
  g->nadd = 0;
  if (rc != 0 || n == 0) return rc;
  size_t *at = calloc(g->n + 1, sizeof *at);
  uint64_t *grouped = malloc(n * sizeof *grouped);
  if (at == NULL || grouped == NULL) {
    free(at);
    free(grouped);
    return VH_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) at[find(g, g->add[i] >> g->bits) + 1]++;
  for (size_t k = 0; k < g->n; k++) at[k + 1] += at[k];
  for (size_t i = 0; i < n; i++)
    grouped[at[find(g, g->add[i] >> g->bits)]++] = g->add[i];
  /* at[k] is now the end of block k's ids */
  for (size_t k = 0, lo = 0; k < g->n && rc == 0; lo = at[k], k++) {
    if (at[k] == lo) continue;
    gblock_t *e = &g->v[k];
    rc = put_z(b, e->blk, seq, grouped + lo, at[k] - lo);
    if (rc == 0) {
      e->dead += at[k] - lo;
      e->last = seq;
      rc = put_r(b, e);
    }
  }
  free(at);
  free(grouped);
  return rc;
}

int vh_grave_end(vh_grave_t *g, vh_batch_t *b, uint64_t seq, uint64_t durable,
                 int stopping, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (!g->loaded) return 0;
  int rc = 0, late = 0;
  char *msg = NULL;
  if (!stopping) {
    rc = complete_one(g, b, durable, &msg);
    if (rc == VH_ENOMEM) return rc;
    late = rc;
    if (rc == 0) {
      rc = release_one(g, b, durable, g->wait_cap, &msg);
      if (rc == VH_ENOMEM) return rc;
      late = rc;
    }
  }
  rc = write_down(g, b, seq);
  if (rc == 0 && g->floor_new) {
    rc = put_y(b, g);
    if (rc == 0) g->floor_new = 0;
  }
  if (rc != 0) {
    free(msg);
    return rc;
  }
  if (late != 0) {
    vh_store__set_msg(errmsg, msg);
    return late;
  }
  free(msg);
  return 0;
}

/* ---- fsck ---- */

typedef struct fsck_ctx {
  int (*fn)(void *arg, uint64_t id);
  int (*blk_fn)(void *arg, uint64_t block, unsigned bits, uint64_t dead,
                uint64_t seen);
  void *arg;
  vh_grave_t g; /* bits; v: the 'R' records */
  uint64_t cur, seen;
  int any;
} fsck_ctx_t;

static int fsck_id(void *arg, uint64_t id) {
  fsck_ctx_t *c = arg;
  c->seen++;
  return c->fn(c->arg, id);
}

/* The block c->cur is done: compare its 'R' (marked seen: last = ~0). */
static int fsck_block_done(fsck_ctx_t *c) {
  size_t i = find(&c->g, c->cur);
  uint64_t dead = 0;
  if (i < c->g.n && c->g.v[i].blk == c->cur) {
    dead = c->g.v[i].dead;
    c->g.v[i].last = UINT64_MAX;
  }
  int rc = c->blk_fn(c->arg, c->cur, c->g.bits, dead, c->seen);
  c->seen = 0;
  return rc;
}

static int fsck_z(void *arg, const unsigned char *k, size_t klen,
                  const unsigned char *p, size_t len, char **errmsg) {
  fsck_ctx_t *c = arg;
  if (klen != VH_GRAVE_Z_KEY) return 0;
  uint64_t blk = vh_be64_load(k + 1);
  if (c->any && blk != c->cur) {
    int rc = fsck_block_done(c);
    if (rc != 0) return rc;
  }
  c->cur = blk;
  c->any = 1;
  return z_ids(p, len, fsck_id, c, errmsg);
}

int vh_store_grave_each(vh_store_t *s, int (*fn)(void *arg, uint64_t id),
                        int (*blk_fn)(void *arg, uint64_t block, unsigned bits,
                                      uint64_t dead, uint64_t seen),
                        void *arg, char **errmsg) {
  if (errmsg) *errmsg = NULL;
  if (s->format < 5) return 0;
  fsck_ctx_t c = {fn, blk_fn, arg, {.s = s}, 0, 0, 0};
  int rc = load(&c.g, errmsg);
  if (rc == 0) {
    unsigned char pre = VH_KEY_GRAVE;
    rc = vh_store__scan(s, &pre, 1, VH_KIND_GRAVE, 0, fsck_z, &c, errmsg);
  }
  if (rc == 0 && c.any) rc = fsck_block_done(&c);
  /* blocks counted by an 'R' without any 'Z' */
  for (size_t i = 0; rc == 0 && i < c.g.n; i++)
    if (c.g.v[i].last != UINT64_MAX)
      rc = blk_fn(arg, c.g.v[i].blk, c.g.bits, c.g.v[i].dead, 0);
  free(c.g.v);
  return rc;
}
