// SPDX-License-Identifier: MIT
/*
 * pattern.c - the refcounted table of 64-bit same-filled patterns.
 *
 * Entries live in an array indexed by id (copied to a new array as it grows
 * or shrinks; ids stay valid because they are indices); a bitmap marks the
 * free ids below nent, and a new entry takes the lowest free id, so that
 * when patterns go away the top of the array drains: nent falls past the
 * free ids at its end. A hash index (hindex.h) maps a value to its id.
 * Everything is under one lock.
 *
 * Shrinking, with hysteresis so that a table going back and forth across
 * a size does not copy on every change: the index doubles when live would
 * pass 3/4 of its cells and halves when live falls below 1/8 (to a load of
 * at most 1/4); the array doubles when full and halves when nent falls to
 * 1/4 of it (to at most 1/2). A table with no pattern left frees both.
 * A smaller array is never refused at the memory limit.
 */
#include <errno.h>
#include <stdlib.h>

#include "bug.h"
#include "hindex.h"
#include "lock.h"
#include "pattern.h"

#define NO_ID UINT32_MAX

#define ENT_MIN   8u	/* smallest array */
#define INDEX_MIN 16u	/* smallest index */

struct pat_entry {
	uint64_t value;
	uint32_t refs;		/* 0: entry is free */
	uint32_t pad;
};

/*
 * Invariants:
 *   idx.live == entries with refs > 0; idx holds exactly those, each
 *   found from its value's hash (and hindex.h's own invariants)
 *   idx.live + free bits below nent == nent <= cap_ent; no free bit at or
 *   past nent; the entry at nent - 1 is live
 *   cap_ent == 0 or cap_ent == ENT_MIN or nent > cap_ent / 4
 *   the index has INDEX_MIN cells or idx.live >= 1/8 of them
 *   idx.live == 0 => no array and no index
 */
struct pattern_table {
	struct futex_lock lock;
	struct meta_mem *mem;
	struct pat_entry *ent;
	uint64_t *free_bits;	/* cap_ent bits: set = id free (below nent) */
	uint32_t nent, cap_ent;
	uint32_t first_free;	/* no free id below it */
	struct hindex idx;	/* live ids by value */
	uint64_t ops;		/* debug builds: operations since creation */
};

static bool check_locked(struct pattern_table *pt, const char **why);

/* Debug builds: the full check (the table is small) every 64 operations. */
#ifdef PF_DEBUG
static void debug_after(struct pattern_table *pt)
{
	const char *why = NULL;

	BUG_ON(++pt->ops % 64 == 0 && !check_locked(pt, &why),
	       "invariant broken: %s", why);
}
#else
static inline void debug_after(struct pattern_table *pt)
{
	(void)pt;
}
#endif

static uint32_t pat_hash(uint64_t v)
{
	v ^= v >> 33;
	v *= UINT64_C(0xff51afd7ed558ccd);
	v ^= v >> 33;
	return (uint32_t)v;
}

struct pattern_table *pattern_create(struct meta_mem *mem)
{
	struct pattern_table *pt;

	pt = meta_alloc(mem, sizeof(*pt), META_ZERO | META_LIMITED, NULL);
	if (!pt)
		return NULL;
	futex_lock_init(&pt->lock);
	pt->mem = mem;
	return pt;
}

void pattern_destroy(struct pattern_table *pt)
{
	struct meta_mem *mem;

	if (!pt)
		return;
	mem = pt->mem;
	meta_free(mem, pt->ent);
	meta_free(mem, pt->free_bits);
	hindex_free(&pt->idx, mem);
	meta_free(mem, pt);
}

static uint32_t ent_hash(void *ctx, uint32_t id)
{
	struct pattern_table *pt = ctx;

	return pat_hash(pt->ent[id].value);
}

static bool ent_live(void *ctx, uint32_t id)
{
	struct pattern_table *pt = ctx;

	return id < pt->nent && pt->ent[id].refs;
}

struct pat_key {
	struct pattern_table *pt;
	uint64_t value;
};

static bool ent_is(void *arg, uint32_t id)
{
	struct pat_key *k = arg;

	return k->pt->ent[id].value == k->value;
}

/* The id of value, or HINDEX_NONE. */
static uint32_t id_of(struct pattern_table *pt, uint64_t value)
{
	struct pat_key k = { pt, value };

	return hindex_find(&pt->idx, pat_hash(value), ent_is, &k);
}

static inline bool id_free(const struct pattern_table *pt, uint32_t id)
{
	return pt->free_bits[id / 64] >> (id % 64) & 1;
}

static size_t bits_bytes(uint32_t cap)
{
	return ((size_t)cap + 63) / 64 * sizeof(uint64_t);
}

/* Move the entries to arrays of cap entries (cap >= nent). 0, or -ENOSPC /
 * -ENOMEM with nothing changed. */
static int entries_resize(struct pattern_table *pt, uint32_t cap)
{
	bool grow = cap > pt->cap_ent;
	struct pat_entry *e;
	uint64_t *bits;
	int err = 0;

	e = meta_alloc(pt->mem, (size_t)cap * sizeof(*e),
		       grow ? META_LIMITED : 0, &err);
	bits = NULL;
	if (e)
		bits = meta_alloc(pt->mem, bits_bytes(cap),
				  META_ZERO | (grow ? META_LIMITED : 0), &err);
	if (!bits) {
		meta_free(pt->mem, e);
		return err;
	}
	if (pt->nent) {
		memcpy(e, pt->ent, (size_t)pt->nent * sizeof(*e));
		memcpy(bits, pt->free_bits, bits_bytes(pt->nent));
	}
	meta_free(pt->mem, pt->ent);
	meta_free(pt->mem, pt->free_bits);
	pt->ent = e;
	pt->free_bits = bits;
	pt->cap_ent = cap;
	return 0;
}

/* The lowest free id, or a new one at the end. */
static int entry_alloc(struct pattern_table *pt, uint32_t *id)
{
	for (uint32_t w = pt->first_free / 64; w * 64 < pt->nent; w++) {
		uint64_t bits = pt->free_bits[w];

		if (!bits)
			continue;
		*id = w * 64 + (uint32_t)__builtin_ctzll(bits);
		pt->free_bits[w] &= bits - 1;
		pt->first_free = *id + 1;
		return 0;
	}
	pt->first_free = pt->nent + 1;
	if (pt->nent == pt->cap_ent) {
		uint32_t cap = pt->cap_ent ? pt->cap_ent * 2 : ENT_MIN;
		int err;

		if (cap > NO_ID / 2)
			return -ENOSPC;
		err = entries_resize(pt, cap);
		if (err)
			return err;
	}
	*id = pt->nent++;
	return 0;
}

/* id's last reference went: free it, drain the top of the array, shrink
 * it (and the index) when mostly empty, or free everything when empty. */
static void entry_free(struct pattern_table *pt, uint32_t id)
{
	pt->free_bits[id / 64] |= UINT64_C(1) << (id % 64);
	if (id < pt->first_free)
		pt->first_free = id;
	while (pt->nent && id_free(pt, pt->nent - 1)) {
		pt->nent--;
		pt->free_bits[pt->nent / 64] &= ~(UINT64_C(1) << (pt->nent % 64));
	}
	if (pt->first_free > pt->nent)
		pt->first_free = pt->nent;
	if (!pt->idx.live) {
		meta_free(pt->mem, pt->ent);
		meta_free(pt->mem, pt->free_bits);
		hindex_free(&pt->idx, pt->mem);
		pt->ent = NULL;
		pt->free_bits = NULL;
		pt->cap_ent = pt->nent = pt->first_free = 0;
		return;
	}
	/* A refused shrink only keeps the larger arrays. */
	while (pt->cap_ent > ENT_MIN && pt->nent <= pt->cap_ent / 4 &&
	       !entries_resize(pt, pt->cap_ent / 2))
		;
	hindex_shrink(&pt->idx, pt->mem, INDEX_MIN, false, ent_hash, pt);
}

int pattern_get(struct pattern_table *pt, uint64_t value, uint32_t *id)
{
	uint32_t found;
	int err;

	futex_lock(&pt->lock);
	err = hindex_reserve(&pt->idx, pt->mem, INDEX_MIN, HINDEX_MAX_CELLS,
			     ent_hash, pt);
	if (err)
		goto out_unlock;
	found = id_of(pt, value);
	if (found != HINDEX_NONE) {
		struct pat_entry *e = &pt->ent[found];

		if (e->refs == UINT32_MAX) {
			err = -ENOSPC;
			goto out_unlock;
		}
		e->refs++;
		*id = found;
		goto out_unlock;
	}
	err = entry_alloc(pt, id);
	if (err)
		goto out_unlock;
	pt->ent[*id].value = value;
	pt->ent[*id].refs = 1;
	hindex_insert(&pt->idx, pat_hash(value), *id);
out_unlock:
	if (err && !pt->idx.live)
		/* The first pattern was refused: keep nothing for it. */
		hindex_free(&pt->idx, pt->mem);
	debug_after(pt);
	futex_unlock(&pt->lock);
	return err;
}

void pattern_put(struct pattern_table *pt, uint32_t id)
{
	struct pat_entry *e;

	futex_lock(&pt->lock);
	e = &pt->ent[id];
	if (--e->refs == 0) {
		hindex_remove(&pt->idx, pat_hash(e->value), id, ent_hash, pt);
		entry_free(pt, id);
	}
	debug_after(pt);
	futex_unlock(&pt->lock);
}

uint64_t pattern_value(struct pattern_table *pt, uint32_t id)
{
	uint64_t v;

	futex_lock(&pt->lock);
	v = pt->ent[id].value;
	futex_unlock(&pt->lock);
	return v;
}

uint32_t pattern_refs(struct pattern_table *pt, uint32_t id)
{
	uint32_t r = 0;

	futex_lock(&pt->lock);
	if (id < pt->nent)
		r = pt->ent[id].refs;
	futex_unlock(&pt->lock);
	return r;
}

uint32_t pattern_count(struct pattern_table *pt)
{
	uint32_t n;

	futex_lock(&pt->lock);
	n = pt->idx.live;
	futex_unlock(&pt->lock);
	return n;
}

bool pattern_is_valid(struct pattern_table *pt, const char **why)
{
	bool ok;

	futex_lock(&pt->lock);
	ok = check_locked(pt, why);
	futex_unlock(&pt->lock);
	return ok;
}

static bool check_locked(struct pattern_table *pt, const char **why)
{
	const char *bad = NULL, *index_bad;
	uint32_t i, live = 0, nfree = 0;

	for (i = 0; i < pt->nent; i++) {
		if (pt->ent[i].refs) {
			live++;
			if (id_free(pt, i))
				bad = "pattern: referenced entry marked free";
			if (id_of(pt, pt->ent[i].value) != i)
				bad = "pattern: live entry not found in index";
		} else if (!id_free(pt, i)) {
			bad = "pattern: free entry not marked free";
		} else {
			nfree++;
			if (i < pt->first_free)
				bad = "pattern: free entry below first_free";
		}
	}
	for (i = pt->nent; i < pt->cap_ent; i++)
		if (id_free(pt, i))
			bad = "pattern: free bit past the entries in use";
	index_bad = hindex_check(&pt->idx, ent_live, ent_hash, pt);
	if (live != pt->idx.live)
		bad = "pattern: live count disagrees with entries/index";
	else if (index_bad)
		bad = index_bad;
	else if (live + nfree != pt->nent || pt->nent > pt->cap_ent)
		bad = "pattern: live + free != entries";
	else if (pt->nent && !pt->ent[pt->nent - 1].refs)
		bad = "pattern: free entry at the top not drained";
	else if (pt->cap_ent > ENT_MIN && pt->nent <= pt->cap_ent / 4)
		bad = "pattern: entry array not shrunk";
	else if (pt->idx.cell && pt->idx.mask + 1 > INDEX_MIN &&
		 live * 8 < pt->idx.mask + 1)
		bad = "pattern: index not shrunk";
	else if (!live && (pt->ent || pt->idx.cell || pt->cap_ent))
		bad = "pattern: empty table kept its arrays";
	if (bad && why)
		*why = bad;
	return !bad;
}
