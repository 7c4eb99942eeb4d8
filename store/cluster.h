/* SPDX-License-Identifier: MIT */
/*
 * cluster.h - a file's pages: slots, clusters of 512 slots, and the sparse
 * directory (a radix tree) above the clusters.
 *
 * A slot is one uint64_t:
 *
 *   bits  0..1   type: EMPTY (hole), SAME (same-filled), OBJ (own pool
 *                object), FOLD (object shared through a fold entry)
 *   bit   2      OBJ/FOLD: stored raw (huge page)
 *                SAME: the payload is a pattern-table id, not the pattern
 *   bits  3..15  compressed size of the object, 1..4096 (OBJ/FOLD)
 *   bits 16..23  page age (OBJ/FOLD): ticks of recompress_after / 8 since
 *                the page was last written or read, saturating at 254;
 *                255 = marked idle by store_mark_idle() (recompress.c)
 *   bit  24      COLD (OBJ/FOLD): recompression moved this page's object
 *                to the cold codec; counted in recomp_pages
 *   bit  25      KEEP (OBJ/FOLD): the cold codec was tried on this page and
 *                did not make it smaller; not tried again until rewritten
 *   bit  26      GROUP (OBJ, with COLD): the page is one of a group's,
 *                several pages in one zstd frame (recompress.c); the payload
 *                is the group's head object, the size the page's share
 *                of the group's bytes (rounded up, at least 1); never
 *                with DISK: writeback skips grouped pages (wb_wants())
 *   bits 27..30  GROUP: the page's index in the group's frame
 *   bit  31      DISK (OBJ only; disk tier, backing.h): the object is in
 *                the backing file, the payload its place there (16-byte
 *                granules + 1) and nothing but this slot is in memory;
 *                counted in bd_count; never with GROUP
 *   bits 32..63  payload: pool handle (OBJ), fold entry id (FOLD), the
 *                32-bit half of a pattern whose two halves are equal
 *                (SAME; zero pages included), or a pattern id (SAME + bit 2)
 *
 * A cluster holds only as many slots as its highest written page needs,
 * rounded up to a power of two (8 at least): a file of one page has a
 * cluster of 8 slots (72 bytes), a full one 512 (4104 bytes). Slots past
 * the cluster's capacity are holes; a write past it grows the cluster
 * (under the file's write lock, so no reader holds it).
 *
 * Metadata per stored page, all layers:
 *    8 bytes  slot
 *    8 bytes  pool: handle-table entry + back-reference (alloc/include/pool.h),
 *             only for a page that has its own object; a folded page shares
 *             its object's, a same-filled page has none
 *   --------
 *   16 bytes, plus amortised costs: the cluster header (8 bytes per 512
 *   slots = 0.016 B/page in a full cluster; a cluster holds up to twice
 *   the slots its highest page needs), directory nodes (520 bytes per
 *   64 clusters = 0.016 B/page), the pool's per-span descriptors, and for
 *   unique pages with folding on the fold index (fold.h).
 * A page written back to the backing file (DISK) keeps only its 8-byte
 * slot; its pool object and handle are freed, and the backing file's space
 * map adds 2 bytes per 4 KiB block of the file (about 1 byte a page for
 * LZ4 pages of real programs) and 16 per object several slots share
 * (backing.h).
 *
 * An untouched region costs nothing: a cluster exists only while it holds a
 * live slot, and directory nodes only above existing clusters. The tree is
 * as tall as the highest cluster needs (6 index bits per level): a 1 TiB
 * file (2^19 clusters, 4 levels) with its first and last pages written holds
 * a cluster of 8 slots, one of 512 and 7 nodes = 72 + 4104 + 7 * 520 =
 * 7816 bytes.
 *
 * Locking is the caller's: the directory under the file's rwlock (read to
 * look up, write to add or remove a cluster), slots under the cluster lock.
 */
#ifndef PAGEFOLD_STORE_CLUSTER_H
#define PAGEFOLD_STORE_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "lock.h"
#include "mem.h"
#include "store.h"

#define CLUSTER_SHIFT 9
#define CLUSTER_SLOTS (1u << CLUSTER_SHIFT)
#define DIR_BITS      6
#define DIR_FANOUT    (1u << DIR_BITS)
_Static_assert(CLUSTER_SLOTS == STORE_CLUSTER_PAGES,
	       "store.h promises its callers the cluster size");

/* ---- slots ---- */

enum slot_type {
	SLOT_EMPTY = 0,
	SLOT_SAME = 1,
	SLOT_OBJ = 2,
	SLOT_FOLD = 3,
};

#define SLOT_FLAG      (UINT64_C(1) << 2)
#define SLOT_SIZE_SHIFT 3
#define SLOT_SIZE_MASK  UINT64_C(0x1fff)
#define SLOT_AGE_SHIFT  16
#define SLOT_AGE_MASK   (UINT64_C(0xff) << SLOT_AGE_SHIFT)
#define SLOT_COLD       (UINT64_C(1) << 24)
#define SLOT_KEEP       (UINT64_C(1) << 25)
#define SLOT_GROUP      (UINT64_C(1) << 26)
#define SLOT_GIDX_SHIFT 27
#define SLOT_GIDX_MASK  (UINT64_C(0xf) << SLOT_GIDX_SHIFT)
/* disk tier (backing.h) */
#define SLOT_DISK       (UINT64_C(1) << 31)
#define AGE_IDLE        255u	/* marked idle */
#define AGE_MAX         254u	/* where aging saturates */

typedef uint64_t slot_t;

static inline enum slot_type slot_type(slot_t s)
{
	return (enum slot_type)(s & 3);
}

static inline bool slot_flag(slot_t s)
{
	return s & SLOT_FLAG;
}

static inline unsigned int slot_size(slot_t s)
{
	return (unsigned int)((s >> SLOT_SIZE_SHIFT) & SLOT_SIZE_MASK);
}

static inline uint32_t slot_payload(slot_t s)
{
	return (uint32_t)(s >> 32);
}

static inline unsigned int slot_age(slot_t s)
{
	return (unsigned int)((s >> SLOT_AGE_SHIFT) & 0xff);
}

/* zram's choice of pages by type= (recompress, writeback): huge (stored
 * raw), huge and idle (age at least threshold) together, or - neither
 * asked, or idle alone - idle. */
static inline bool slot_of_type(slot_t s, bool huge, bool idle,
				unsigned int threshold)
{
	bool is_idle = slot_age(s) >= threshold;

	if (huge)
		return slot_flag(s) && (!idle || is_idle);
	return is_idle;
}

static inline slot_t slot_set_age(slot_t s, unsigned int age)
{
	return (s & ~SLOT_AGE_MASK) | ((slot_t)age << SLOT_AGE_SHIFT);
}

/* An object slot (OBJ or FOLD); huge = stored raw. */
static inline slot_t slot_make_obj(enum slot_type t, uint32_t payload,
				   unsigned int size, bool huge)
{
	return (slot_t)t | (huge ? SLOT_FLAG : 0) |
	       ((slot_t)size << SLOT_SIZE_SHIFT) | ((slot_t)payload << 32);
}

static inline bool slot_is_group(slot_t s)
{
	return s & SLOT_GROUP;
}

static inline unsigned int slot_gidx(slot_t s)
{
	return (unsigned int)((s & SLOT_GIDX_MASK) >> SLOT_GIDX_SHIFT);
}

/* Page idx of the group whose head object is head; share bytes. */
static inline slot_t slot_make_group(uint32_t head, unsigned int idx,
				     unsigned int share)
{
	return (slot_t)SLOT_OBJ | SLOT_GROUP | SLOT_COLD |
	       ((slot_t)idx << SLOT_GIDX_SHIFT) |
	       ((slot_t)share << SLOT_SIZE_SHIFT) | ((slot_t)head << 32);
}

/* A same-filled slot: the 32-bit half pattern, or a pattern-table id. */
static inline slot_t slot_make_same(uint32_t payload, bool table)
{
	return (slot_t)SLOT_SAME | (table ? SLOT_FLAG : 0) |
	       ((slot_t)payload << 32);
}

/* ---- clusters ---- */

/*
 * Invariants: live == number of slots whose type is not SLOT_EMPTY;
 * cap is a power of two, CLUSTER_MIN_SLOTS <= cap <= CLUSTER_SLOTS; the
 * pages of slots cap..CLUSTER_SLOTS - 1 are holes.
 */
struct cluster {
	struct futex_lock lock;
	uint16_t live;
	uint16_t cap;
	slot_t slot[];
};

#define CLUSTER_MIN_SLOTS 8u

/* The capacity a cluster needs to hold slot off. */
static inline unsigned int cluster_cap_for(unsigned int off)
{
	unsigned int cap = CLUSTER_MIN_SLOTS;

	while (cap <= off)
		cap <<= 1;
	return cap;
}

/* A zeroed (all-empty) cluster of cap slots, or NULL with -ENOSPC/-ENOMEM
 * in *err. */
struct cluster *cluster_new(struct meta_mem *mem, unsigned int cap, int *err);
/* c's slots in a new cluster of cap (> c->cap) slots (c is left for the
 * caller to replace and free); NULL with *err when it cannot be
 * allocated. No other thread may hold c. */
struct cluster *cluster_grow(struct meta_mem *mem, struct cluster *c,
			     unsigned int cap, int *err);
void cluster_free(struct meta_mem *mem, struct cluster *c);
/* Caller holds the cluster lock. */
bool cluster_is_valid(const struct cluster *c, const char **why);

/* ---- directory ---- */

/*
 * Invariants:
 *   root == NULL  =>  height == 0 and clusters == 0
 *   height == 0   =>  root is the cluster of index 0 (or NULL)
 *   height > 0    =>  root is a node with a child other than child[0]
 *                     (the tree is no taller than needed)
 *   node->count == number of non-NULL children, and never 0
 *   clusters == clusters reachable, nodes == nodes reachable
 */
struct cdir {
	void *root;
	unsigned int height;	/* node levels above the clusters */
	uint64_t clusters;
	uint64_t slots;		/* the clusters' capacities, summed */
	uint64_t nodes;
};

#define CDIR_NODE_BYTES (sizeof(uint64_t) + DIR_FANOUT * sizeof(void *))

static inline void cdir_init(struct cdir *d)
{
	d->root = NULL;
	d->height = 0;
	d->clusters = 0;
	d->slots = 0;
	d->nodes = 0;
}

struct cluster *cdir_lookup(const struct cdir *d, uint64_t ci);
/* Add cluster c at index ci (which must be free). -ENOSPC/-ENOMEM when a
 * node cannot be allocated; the directory is unchanged then. */
int cdir_insert(struct cdir *d, struct meta_mem *mem, uint64_t ci,
		struct cluster *c);
/* Put c in place of the cluster at ci (which must exist). */
void cdir_replace(struct cdir *d, uint64_t ci, struct cluster *c);
/* Unlink the cluster at ci (not freed) and prune empty nodes. */
struct cluster *cdir_remove(struct cdir *d, struct meta_mem *mem, uint64_t ci);
/* First cluster with index >= ci, or NULL. */
struct cluster *cdir_next(const struct cdir *d, uint64_t ci, uint64_t *found);
/* Last cluster with index <= ci, or NULL. */
struct cluster *cdir_prev(const struct cdir *d, uint64_t ci, uint64_t *found);
/* Free every node; fn (may be NULL) is called for each cluster first and
 * owns it afterwards. Leaves an empty directory. */
void cdir_clear(struct cdir *d, struct meta_mem *mem,
		void (*fn)(void *arg, uint64_t ci, struct cluster *c),
		void *arg);
bool cdir_is_valid(const struct cdir *d, const char **why);

#endif /* PAGEFOLD_STORE_CLUSTER_H */
