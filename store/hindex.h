/* SPDX-License-Identifier: MIT */
/*
 * hindex.h - an open-addressing hash index of 32-bit ids, for a table
 * whose entries live elsewhere and are named by id: each fold index shard
 * (fold.c), the pattern table (pattern.c), the disk tier's shared objects
 * (backing.c).
 *
 * The index is mask + 1 cells (a power of two; no array at all while it
 * holds nothing) of uint32: id + 1, 0 = empty. An id sits in the probe
 * run that starts at its home cell, hash & mask, and goes on cell by cell
 * (linear probing) to the first empty cell; a removal shifts the later
 * members of the run back into the hole (backward-shift deletion: no
 * tombstones), so a probe never stops early. The index keeps no hashes:
 * the owner's hash_of(ctx, id) reads an id's hash from its entry, so the
 * index can be rebuilt at any size from the entries alone.
 *
 * Sizing: before an insertion, hindex_reserve() doubles the cells when
 * live would pass 3/4 of them (the first array has the owner's smallest
 * size); after a removal, hindex_shrink() halves them while live is below
 * 1/8 (not below the smallest size). 4 bytes a cell at a load of 3/8..3/4:
 * 5.3..10.7 bytes per id while the index grows, up to 32 after removals.
 * The arrays come from the owner's struct meta_mem (mem.h): they are counted.
 *
 * Invariants (hindex_check()):
 *   live == non-empty cells
 *   live < mask + 1 (an empty cell ends every probe)
 *   every id is in the probe run of its home cell, in one cell only
 *
 * Not thread safe: the owner's lock covers the index. The probes (find,
 * insert, remove) are inline: they are on the write path, and with the
 * owner's callbacks known where it calls them, the compiler calls neither
 * through a pointer.
 */
#ifndef PAGEFOLD_STORE_HINDEX_H
#define PAGEFOLD_STORE_HINDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"

struct hindex {
	uint32_t *cell;		/* mask + 1 cells, or NULL */
	uint32_t mask;		/* 0 while cell is NULL */
	uint32_t live;		/* ids in the index */
};

#define HINDEX_NONE      UINT32_MAX	/* no id, no cell */
#define HINDEX_MAX_CELLS (1u << 31)	/* the most cells a uint32 mask takes */

/* The hash of id, read from the owner's entry (its home is hash & mask). */
typedef uint32_t (*hindex_hash_fn)(void *ctx, uint32_t id);

/*
 * The first id, in probe order from hash's home cell, for which
 * match(arg, id) holds, or HINDEX_NONE. match sees every id of the run,
 * whatever its hash: it compares what it needs to.
 */
static inline uint32_t hindex_find(const struct hindex *hx, uint32_t hash,
				   bool (*match)(void *arg, uint32_t id),
				   void *arg)
{
	uint32_t pos, v;

	if (!hx->cell)
		return HINDEX_NONE;
	for (pos = hash & hx->mask; (v = hx->cell[pos]);
	     pos = (pos + 1) & hx->mask)
		if (match(arg, v - 1))
			return v - 1;
	return HINDEX_NONE;
}

/* The cell holding id, whose hash is hash, or HINDEX_NONE. */
static inline uint32_t hindex_cell_of(const struct hindex *hx, uint32_t hash,
				      uint32_t id)
{
	uint32_t pos, v;

	if (!hx->cell)
		return HINDEX_NONE;
	for (pos = hash & hx->mask; (v = hx->cell[pos]);
	     pos = (pos + 1) & hx->mask)
		if (v == id + 1)
			return pos;
	return HINDEX_NONE;
}

/* The id in cell pos becomes new_id (the owner moved its entry). */
static inline void hindex_renumber(struct hindex *hx, uint32_t pos,
				   uint32_t new_id)
{
	hx->cell[pos] = new_id + 1;
}

/* Add id (not in the index) after hindex_reserve() made room. */
static inline void hindex_insert(struct hindex *hx, uint32_t hash,
				 uint32_t id)
{
	uint32_t pos = hash & hx->mask;

	while (hx->cell[pos])
		pos = (pos + 1) & hx->mask;
	hx->cell[pos] = id + 1;
	hx->live++;
}

/* Remove id, whose hash is hash and which is in the index; later members
 * of its run move back so that no probe stops early. */
static inline void hindex_remove(struct hindex *hx, uint32_t hash,
				 uint32_t id, hindex_hash_fn hash_of,
				 void *ctx)
{
	uint32_t mask = hx->mask, pos = hash & mask, next;

	while (hx->cell[pos] != id + 1)
		pos = (pos + 1) & mask;
	for (next = (pos + 1) & mask; hx->cell[next];
	     next = (next + 1) & mask) {
		uint32_t home = hash_of(ctx, hx->cell[next] - 1) & mask;

		/* Move it into the hole unless its home lies cyclically in
		 * (pos, next]. */
		if (((next - home) & mask) >= ((next - pos) & mask)) {
			hx->cell[pos] = hx->cell[next];
			pos = next;
		}
	}
	hx->cell[pos] = 0;
	hx->live--;
}

/*
 * Room for one more id: no array yet (min cells), or live + 1 would pass
 * 3/4 of the cells (twice as many, up to max; both powers of two).
 * Growth is limited by the memory limit. 0 when there is room, also when
 * growth was refused but a cell stays empty after the insertion (the index
 * runs fuller); else -ENOSPC (the limit, or max cells) or -ENOMEM, with
 * the index unchanged.
 */
int hindex_reserve(struct hindex *hx, struct meta_mem *mem, uint32_t min,
		   uint32_t max, hindex_hash_fn hash_of, void *ctx);

/* Halve the cells while live is below 1/8 of them and they are more than
 * min; limited: a smaller array may be refused at the memory limit (then
 * the index stays as it is). */
void hindex_shrink(struct hindex *hx, struct meta_mem *mem, uint32_t min,
		   bool limited, hindex_hash_fn hash_of, void *ctx);

/* Free the cells (the owner's entries are its own): an empty index. */
void hindex_free(struct hindex *hx, struct meta_mem *mem);

/* NULL when the invariants hold, else what is wrong. live(ctx, id) tells
 * whether id names a live entry (before its hash is read). */
const char *hindex_check(const struct hindex *hx,
			 bool (*live)(void *ctx, uint32_t id),
			 hindex_hash_fn hash_of, void *ctx);

#endif /* PAGEFOLD_STORE_HINDEX_H */
