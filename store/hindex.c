// SPDX-License-Identifier: MIT
/*
 * hindex.c - the open-addressing hash index's sizing and check (hindex.h;
 * the probes are inline there).
 */
#include <errno.h>

#include "hindex.h"

/* Move the ids to an array of cells cells (a power of two > live). */
static int resize(struct hindex *hx, struct meta_mem *mem, uint32_t cells,
		  bool limited, hindex_hash_fn hash_of, void *ctx)
{
	uint32_t *cell, i, mask = cells - 1;
	int err = 0;

	cell = meta_alloc(mem, (size_t)cells * sizeof(*cell),
			  META_ZERO | (limited ? META_LIMITED : 0), &err);
	if (!cell)
		return err;
	for (i = 0; hx->cell && i <= hx->mask; i++) {
		uint32_t v = hx->cell[i], pos;

		if (!v)
			continue;
		pos = hash_of(ctx, v - 1) & mask;
		while (cell[pos])
			pos = (pos + 1) & mask;
		cell[pos] = v;
	}
	meta_free(mem, hx->cell);
	hx->cell = cell;
	hx->mask = mask;
	return 0;
}

int hindex_reserve(struct hindex *hx, struct meta_mem *mem, uint32_t min,
		   uint32_t max, hindex_hash_fn hash_of, void *ctx)
{
	uint64_t cells = (uint64_t)hx->mask + 1;
	int err;

	if (hx->cell && (hx->live + UINT64_C(1)) * 4 <= cells * 3)
		return 0;
	if (hx->cell && cells >= max)
		err = -ENOSPC;
	else
		err = resize(hx, mem, hx->cell ? (uint32_t)cells * 2 : min,
			     true, hash_of, ctx);
	/* Refused growth: go on while a cell stays empty. */
	if (err && hx->cell && hx->live + UINT64_C(2) <= cells)
		err = 0;
	return err;
}

void hindex_shrink(struct hindex *hx, struct meta_mem *mem, uint32_t min,
		   bool limited, hindex_hash_fn hash_of, void *ctx)
{
	while (hx->cell && hx->mask + 1 > min &&
	       (uint64_t)hx->live * 8 < hx->mask + UINT64_C(1) &&
	       !resize(hx, mem, (hx->mask + 1) / 2, limited, hash_of, ctx))
		;
}

void hindex_free(struct hindex *hx, struct meta_mem *mem)
{
	meta_free(mem, hx->cell);
	hx->cell = NULL;
	hx->mask = 0;
	hx->live = 0;
}

const char *hindex_check(const struct hindex *hx,
			 bool (*live)(void *ctx, uint32_t id),
			 hindex_hash_fn hash_of, void *ctx)
{
	uint32_t i, cells = 0;

	if (!hx->cell)
		return hx->live || hx->mask ? "hash index: ids but no cells" :
					      NULL;
	if (hx->mask & (hx->mask + 1))
		return "hash index: cells not a power of two";
	for (i = 0; i <= hx->mask; i++)
		cells += hx->cell[i] != 0;
	if (cells != hx->live)
		return "hash index: live != non-empty cells";
	if (hx->live >= hx->mask + 1)
		return "hash index: full (no empty cell ends a probe)";
	for (i = 0; i <= hx->mask; i++) {
		uint32_t v = hx->cell[i];

		if (!v)
			continue;
		if (!live(ctx, v - 1))
			return "hash index: a cell names a free entry";
		/* Found from its home where it is: no empty cell between
		 * them, and no earlier cell of its run naming it too. */
		if (hindex_cell_of(hx, hash_of(ctx, v - 1), v - 1) != i)
			return "hash index: an id not found from its home cell";
	}
	return NULL;
}
