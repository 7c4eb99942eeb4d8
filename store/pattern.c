// SPDX-License-Identifier: MIT
/*
 * pattern.c - the refcounted table of 64-bit same-filled patterns.
 *
 * Entries live in an array indexed by id (realloc'd as it grows; ids stay
 * valid because they are indices); free entries form a list through
 * next_free. An open-addressing index (linear probing, backward-shift
 * deletion, no tombstones) maps a value to its id. Everything is under one
 * lock; the table never shrinks below its high-water mark.
 */
#include <errno.h>
#include <stdlib.h>

#include "lock.h"
#include "pattern.h"

#define NO_ID UINT32_MAX

struct pat_entry {
	uint64_t value;
	uint32_t refs;		/* 0: entry is free */
	uint32_t next_free;	/* next free id when free, NO_ID ends */
};

/*
 * Invariants:
 *   live == entries with refs > 0 == non-zero index cells
 *   live + length of the free list == nent <= cap_ent
 *   live < mask + 1 (an empty cell always ends a probe); the index doubles
 *   when live would pass 3/4 of it
 */
struct pattern_table {
	struct pf_lock lock;
	struct pf_mem *mem;
	struct pat_entry *ent;
	uint32_t nent, cap_ent, free_head, live;
	uint32_t *index;	/* id + 1, 0 = empty cell */
	uint32_t mask;
	uint64_t ops;		/* debug builds: operations since creation */
};

static bool check_locked(struct pattern_table *pt, const char **why);

/* Debug builds: the full check (the table is small) every 64 operations. */
#ifdef PF_DEBUG
#include <stdio.h>
static void debug_after(struct pattern_table *pt)
{
	const char *why = NULL;

	if (++pt->ops % 64 == 0 && !check_locked(pt, &why)) {
		fprintf(stderr, "pagefold store: invariant broken: %s\n", why);
		abort();
	}
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

struct pattern_table *pattern_create(struct pf_mem *mem)
{
	struct pattern_table *pt;

	pt = pf_alloc(mem, sizeof(*pt), true, true, NULL);
	if (!pt)
		return NULL;
	pf_lock_init(&pt->lock);
	pt->mem = mem;
	pt->free_head = NO_ID;
	return pt;
}

void pattern_destroy(struct pattern_table *pt)
{
	struct pf_mem *mem;

	if (!pt)
		return;
	mem = pt->mem;
	pf_free(mem, pt->ent);
	pf_free(mem, pt->index);
	pf_free(mem, pt);
}

static int index_resize(struct pattern_table *pt, uint32_t cells)
{
	uint32_t *idx, i, mask = cells - 1;
	int err = 0;

	idx = pf_alloc(pt->mem, (size_t)cells * sizeof(*idx), true, true, &err);
	if (!idx)
		return err;
	for (i = 0; pt->index && i <= pt->mask; i++) {
		uint32_t v = pt->index[i], pos;

		if (!v)
			continue;
		pos = pat_hash(pt->ent[v - 1].value) & mask;
		while (idx[pos])
			pos = (pos + 1) & mask;
		idx[pos] = v;
	}
	pf_free(pt->mem, pt->index);
	pt->index = idx;
	pt->mask = mask;
	return 0;
}

/* Cell holding value, or the empty cell where it would go. */
static uint32_t index_find(struct pattern_table *pt, uint64_t value)
{
	uint32_t pos = pat_hash(value) & pt->mask;

	while (pt->index[pos] && pt->ent[pt->index[pos] - 1].value != value)
		pos = (pos + 1) & pt->mask;
	return pos;
}

static int entry_alloc(struct pattern_table *pt, uint32_t *id)
{
	if (pt->free_head != NO_ID) {
		*id = pt->free_head;
		pt->free_head = pt->ent[*id].next_free;
		return 0;
	}
	if (pt->nent == pt->cap_ent) {
		uint32_t cap = pt->cap_ent ? pt->cap_ent * 2 : 8;
		struct pat_entry *e;
		int err = 0;

		if (cap > NO_ID / 2)
			return -ENOSPC;
		e = pf_alloc(pt->mem, (size_t)cap * sizeof(*e), false, true,
			     &err);
		if (!e)
			return err;
		if (pt->nent)
			memcpy(e, pt->ent, (size_t)pt->nent * sizeof(*e));
		pf_free(pt->mem, pt->ent);
		pt->ent = e;
		pt->cap_ent = cap;
	}
	*id = pt->nent++;
	return 0;
}

int pattern_get(struct pattern_table *pt, uint64_t value, uint32_t *id)
{
	uint32_t pos;
	int err = 0;

	pf_lock(&pt->lock);
	if (!pt->index || (pt->live + 1) * 4 > (pt->mask + 1) * 3) {
		err = index_resize(pt, pt->index ? (pt->mask + 1) * 2 : 16);
		if (err && (!pt->index || pt->live + 1 > pt->mask))
			goto out_unlock;
		err = 0;
	}
	pos = index_find(pt, value);
	if (pt->index[pos]) {
		struct pat_entry *e = &pt->ent[pt->index[pos] - 1];

		if (e->refs == UINT32_MAX) {
			err = -ENOSPC;
			goto out_unlock;
		}
		e->refs++;
		*id = pt->index[pos] - 1;
		goto out_unlock;
	}
	err = entry_alloc(pt, id);
	if (err)
		goto out_unlock;
	pt->ent[*id].value = value;
	pt->ent[*id].refs = 1;
	pt->ent[*id].next_free = NO_ID;
	pt->index[pos] = *id + 1;
	pt->live++;
out_unlock:
	debug_after(pt);
	pf_unlock(&pt->lock);
	return err;
}

/* Remove the index cell at pos, shifting later members of its probe run
 * back so that lookups never stop early (no tombstones). */
static void index_delete(struct pattern_table *pt, uint32_t pos)
{
	uint32_t next = pos;

	for (;;) {
		uint32_t home;

		next = (next + 1) & pt->mask;
		if (!pt->index[next])
			break;
		home = pat_hash(pt->ent[pt->index[next] - 1].value) & pt->mask;
		/* Move next into the hole unless its home lies cyclically
		 * in (pos, next]. */
		if (((next - home) & pt->mask) >= ((next - pos) & pt->mask)) {
			pt->index[pos] = pt->index[next];
			pos = next;
		}
	}
	pt->index[pos] = 0;
}

void pattern_put(struct pattern_table *pt, uint32_t id)
{
	struct pat_entry *e;

	pf_lock(&pt->lock);
	e = &pt->ent[id];
	if (--e->refs == 0) {
		index_delete(pt, index_find(pt, e->value));
		e->next_free = pt->free_head;
		pt->free_head = id;
		pt->live--;
	}
	debug_after(pt);
	pf_unlock(&pt->lock);
}

uint64_t pattern_value(struct pattern_table *pt, uint32_t id)
{
	uint64_t v;

	pf_lock(&pt->lock);
	v = pt->ent[id].value;
	pf_unlock(&pt->lock);
	return v;
}

uint32_t pattern_refs(struct pattern_table *pt, uint32_t id)
{
	uint32_t r = 0;

	pf_lock(&pt->lock);
	if (id < pt->nent)
		r = pt->ent[id].refs;
	pf_unlock(&pt->lock);
	return r;
}

uint32_t pattern_count(struct pattern_table *pt)
{
	uint32_t n;

	pf_lock(&pt->lock);
	n = pt->live;
	pf_unlock(&pt->lock);
	return n;
}

bool pattern_is_valid(struct pattern_table *pt, const char **why)
{
	bool ok;

	pf_lock(&pt->lock);
	ok = check_locked(pt, why);
	pf_unlock(&pt->lock);
	return ok;
}

static bool check_locked(struct pattern_table *pt, const char **why)
{
	uint32_t i, live = 0, cells = 0, nfree = 0;
	const char *bad = NULL;

	for (i = 0; i < pt->nent; i++) {
		if (pt->ent[i].refs) {
			live++;
			if (pt->index[index_find(pt, pt->ent[i].value)] != i + 1)
				bad = "pattern: live entry not found in index";
		}
	}
	for (i = pt->free_head; i != NO_ID && nfree <= pt->nent;
	     i = pt->ent[i].next_free) {
		nfree++;
		if (pt->ent[i].refs)
			bad = "pattern: referenced entry on free list";
	}
	for (i = 0; pt->index && i <= pt->mask; i++)
		cells += pt->index[i] != 0;
	if (live != pt->live || cells != live)
		bad = "pattern: live count disagrees with entries/index";
	else if (live + nfree != pt->nent)
		bad = "pattern: live + free != entries";
	else if (pt->index && pt->live >= pt->mask + 1)
		bad = "pattern: index full";
	if (bad && why)
		*why = bad;
	return !bad;
}
