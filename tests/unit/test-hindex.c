// SPDX-License-Identifier: MIT
/*
 * test-hindex - the open-addressing hash index (store/hindex.h) on its own.
 *
 * 1. Ids come and go at random against a model, with hashes from a small
 *    range (long probe runs, runs that wrap past the last cell): every id
 *    is found, no removed one is, hindex_check() holds after every
 *    operation, and the load stays within 3/8..3/4 while growing.
 * 2. Sizing: the first array has the smallest size, the index doubles
 *    past 3/4 and halves below 1/8 (not under the smallest size), and
 *    every byte it took goes back to its struct meta_mem.
 * 3. Refused growth: at the memory limit, or at the most cells, the index
 *    runs fuller while a cell stays empty, then says -ENOSPC and is left
 *    as it was.
 * 4. The checker finds a broken index: a cell naming a free entry, an id
 *    cut off from its home by an empty cell, a wrong live count.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hindex.h"
#include "tap.h"
#include "testdata.h"

#define NIDS 2048

static uint64_t rng_s = 0x243f6a8885a308d3ull;

/* The entries the index names: an id's hash and whether it is in. */
struct table {
	uint32_t hash[NIDS];
	bool in[NIDS];
	uint32_t n;
};

static uint32_t t_hash(void *ctx, uint32_t id)
{
	return ((struct table *)ctx)->hash[id];
}

static bool t_live(void *ctx, uint32_t id)
{
	return id < NIDS && ((struct table *)ctx)->in[id];
}

static bool is_id(void *arg, uint32_t id)
{
	return id == *(uint32_t *)arg;
}

static uint32_t find(struct hindex *hx, struct table *t, uint32_t id)
{
	return hindex_find(hx, t->hash[id], is_id, &id);
}

static bool t_add(struct hindex *hx, struct meta_mem *mem, struct table *t,
		  uint32_t id)
{
	if (hindex_reserve(hx, mem, 16, HINDEX_MAX_CELLS, t_hash, t))
		return false;
	hindex_insert(hx, t->hash[id], id);
	t->in[id] = true;
	t->n++;
	return true;
}

static void t_del(struct hindex *hx, struct meta_mem *mem, struct table *t,
		  uint32_t id)
{
	hindex_remove(hx, t->hash[id], id, t_hash, t);
	t->in[id] = false;
	t->n--;
	if (!hx->live)
		hindex_free(hx, mem);
	else
		hindex_shrink(hx, mem, 16, false, t_hash, t);
}

/* ---- 1. against a model ---- */

static void test_model(void)
{
	static struct table t;
	struct hindex hx = { 0 };
	struct meta_mem mem;
	const char *bad = NULL;
	uint32_t i, found_bad = 0, load_bad = 0, ops = 0;

	meta_mem_init(&mem, NULL, NULL);
	for (i = 0; i < NIDS; i++)	/* 8 ids a hash: long runs */
		t.hash[i] = (uint32_t)td_mix(i / 8);
	for (int round = 0; round < 6; round++) {
		/* Fill towards a target that rises, then falls to 0. */
		uint32_t target = round < 3 ? NIDS / 4 * (uint32_t)(round + 1) :
					      NIDS / 4 * (uint32_t)(5 - round);

		while (t.n != target) {
			uint32_t id = (uint32_t)(td_next(&rng_s) % NIDS);
			uint64_t cells;

			if (t.n < target && !t.in[id]) {
				if (!t_add(&hx, &mem, &t, id))
					break;
				cells = (uint64_t)hx.mask + 1;
				if (cells > 16 && (hx.live * 8 < cells * 3 ||
						   hx.live * 4 > cells * 3))
					load_bad++;
			} else if (t.n > target && t.in[id]) {
				t_del(&hx, &mem, &t, id);
			} else {
				continue;
			}
			ops++;
			if (!bad)
				bad = hindex_check(&hx, t_live, t_hash, &t);
			if (ops % 61 == 0)
				for (uint32_t j = 0; j < NIDS; j++)
					found_bad += (find(&hx, &t, j) == j) !=
						     t.in[j];
		}
		ok(t.n == target, "round %d: %u ids in the index", round,
		   target);
	}
	for (i = 0; i < NIDS; i++)
		found_bad += (find(&hx, &t, i) == i) != t.in[i];
	ok(!bad, "hindex_check() after each of %u operations (%s)", ops,
	   bad ? bad : "ok");
	is_u64(found_bad, 0, "every id in the model found, no other");
	is_u64(load_bad, 0, "load 3/8..3/4 after every insertion");
	ok(!hx.cell && !hx.live && !hx.mask, "empty again: no cells");
	is_u64(meta_mem_bytes(&mem), 0, "every byte back");
}

/* ---- 2. sizing ---- */

static void test_sizing(void)
{
	static struct table t;
	struct hindex hx = { 0 };
	struct meta_mem mem;
	uint32_t i, grew_at = 0, shrank_at = 0;

	meta_mem_init(&mem, NULL, NULL);
	for (i = 0; i < NIDS; i++)
		t.hash[i] = (uint32_t)td_mix(i);
	t_add(&hx, &mem, &t, 0);
	is_u64(hx.mask + 1, 16, "the first id: the smallest array");
	for (i = 1; i < NIDS && !grew_at; i++) {
		uint32_t cells = hx.mask + 1;

		t_add(&hx, &mem, &t, i);
		if (hx.mask + 1 != cells)
			grew_at = i + 1;
	}
	is_u64(grew_at, 13, "16 cells double at the 13th id (past 3/4)");
	is_u64(hx.mask + 1, 32, "... to 32");
	for (; i < 1024; i++)
		t_add(&hx, &mem, &t, i);
	is_u64(hx.mask + 1, 2048, "1024 ids: 2048 cells");
	is_u64(meta_mem_bytes(&mem), malloc_usable_size(hx.cell),
	       "the cells are counted in the meta_mem");
	for (i = 1023; i > 0 && !shrank_at; i--) {
		t_del(&hx, &mem, &t, i);
		if (hx.mask + 1 != 2048)
			shrank_at = hx.live;
	}
	is_u64(shrank_at, 255, "2048 cells halve below 1/8 (at 255 ids)");
	is_u64(hx.mask + 1, 1024, "... to 1024");
	while (hx.live > 1)
		t_del(&hx, &mem, &t, i--);
	is_u64(hx.mask + 1, 16, "one id left: not under the smallest size");
	t_del(&hx, &mem, &t, 0);
	is_u64(meta_mem_bytes(&mem), 0, "empty: every byte back");
}

/* ---- 3. refused growth ---- */

static bool refuse;

static bool over(void *ctx, uint64_t extra)
{
	(void)ctx;
	(void)extra;
	return refuse;
}

static void test_refused(void)
{
	static struct table t;
	struct hindex hx = { 0 };
	struct meta_mem mem;
	const char *bad;
	uint32_t i;
	int err = 0;

	meta_mem_init(&mem, over, NULL);
	for (i = 0; i < NIDS; i++)
		t.hash[i] = (uint32_t)td_mix(i + 7);
	for (i = 0; i < 12; i++)
		t_add(&hx, &mem, &t, i);
	refuse = true;
	for (; i < 16 && !err; i++) {
		err = hindex_reserve(&hx, &mem, 16, HINDEX_MAX_CELLS, t_hash,
				     &t);
		if (!err) {
			hindex_insert(&hx, t.hash[i], i);
			t.in[i] = true;
		}
	}
	is_u64(hx.live, 15, "at the limit: 16 cells take 15 ids");
	ok(err == -ENOSPC, "the 16th: -ENOSPC (%d)", err);
	is_u64(hx.mask + 1, 16, "... the index unchanged");
	bad = hindex_check(&hx, t_live, t_hash, &t);
	ok(!bad, "... and valid (%s)", bad ? bad : "ok");
	refuse = false;
	err = hindex_reserve(&hx, &mem, 16, 16, t_hash, &t);
	ok(err == -ENOSPC, "at the most cells: -ENOSPC too (%d)", err);
	err = hindex_reserve(&hx, &mem, 16, HINDEX_MAX_CELLS, t_hash, &t);
	ok(!err && hx.mask + 1 == 32, "below the limit again: it grows");
	hindex_free(&hx, &mem);
	is_u64(meta_mem_bytes(&mem), 0, "freed: every byte back");
}

/* ---- 4. the checker ---- */

static void test_check(void)
{
	static struct table t;
	struct hindex hx = { 0 };
	struct meta_mem mem;
	uint32_t pos;

	meta_mem_init(&mem, NULL, NULL);
	for (uint32_t i = 0; i < 8; i++)
		t.hash[i] = 5;		/* one run: cells 5..12 */
	for (uint32_t i = 0; i < 8; i++)
		t_add(&hx, &mem, &t, i);
	ok(!hindex_check(&hx, t_live, t_hash, &t), "a valid index passes");
	t.in[3] = false;
	ok(hindex_check(&hx, t_live, t_hash, &t) != NULL,
	   "a cell naming a free entry: found");
	t.in[3] = true;
	pos = hindex_cell_of(&hx, 5, 4);
	hx.cell[pos] = 0;
	hx.live--;
	ok(hindex_check(&hx, t_live, t_hash, &t) != NULL,
	   "an id cut off from its home: found");
	hx.cell[pos] = 4 + 1;
	ok(hindex_check(&hx, t_live, t_hash, &t) != NULL,
	   "live one short of the cells: found");
	hx.live++;
	ok(!hindex_check(&hx, t_live, t_hash, &t), "mended: passes again");
	hindex_free(&hx, &mem);
}

int main(void)
{
	test_model();
	test_sizing();
	test_refused();
	test_check();
	return tap_done();
}
