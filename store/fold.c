// SPDX-License-Identifier: MIT
/*
 * fold.c - the fold index (see fold.h for what it costs).
 *
 * lock ordering: fold shard lock, then the pool's locks (through the
 * same() callback). Shard locks are never nested with each other.
 *
 * A shard holds its entries in chunks of FOLD_CHUNK entries reached through
 * a chunk directory. Entry ids are (shard, chunk, offset), so entries never
 * move. The directory is read without the lock by fold_handle(): when it
 * grows, the new copy is published with a release store and the old copy is
 * kept (retired, freed at destroy; together smaller than the current one),
 * so a reader that loaded an old pointer still reads valid chunk pointers for
 * every entry that existed when it was copied, which covers every entry a
 * caller can hold a reference on.
 *
 * Within a chunk, free entries form a list (through the handle field).
 * Allocation takes the lowest chunk with a free entry, so when pages go away
 * the last chunks drain and are freed. A shard whose last entry goes is
 * reset to nothing (index, directory, retired directories): no reader can
 * be inside fold_handle() then, since a reader holds a reference.
 *
 * The index of a shard is a hash index of local entry ids (hindex.h); an
 * id's home cell comes from the low hash bits kept in its entry.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bug.h"
#include "fold.h"
#include "hindex.h"
#include "lock.h"

#define NONE16  UINT16_MAX
#define INDEX_MIN 64u
#define LOCAL_MASK ((1u << FOLD_LOCAL_BITS) - 1)
#define MAX_CHUNKS (1u << (FOLD_LOCAL_BITS - FOLD_CHUNK_BITS))

struct fold_entry {
	uint32_t hash;		/* low 32 bits of the page hash */
	uint32_t handle;	/* pool handle; free: next free offset */
	uint32_t refs;		/* slots referencing it; 0 = free */
};

struct chunk_meta {
	uint16_t live;		/* entries with refs > 0 */
	uint16_t free_head;	/* first free offset, NONE16 if full */
};

struct retired {
	struct retired *next;
	void *dir;
};

/*
 * Invariants (under lock):
 *   idx.live == sum over chunks of cmeta[c].live; idx holds exactly the
 *   live entries (and hindex.h's own invariants)
 *   cmeta[c].live + free entries listed from cmeta[c].free_head == FOLD_CHUNK
 *   every chunk below first_free is full (free_head == NONE16)
 *   folded == sum of refs over entries with refs >= 2
 *   shared == number of entries with refs >= 2
 */
struct fold_shard {
	struct futex_lock lock;
	struct hindex idx;		/* live entries by hash */
	struct fold_entry **_Atomic dir;
	uint32_t dir_cap;
	uint32_t nchunks;
	uint32_t first_free;
	struct chunk_meta *cmeta;	/* dir_cap entries */
	struct retired *retired;
	uint64_t folded;
	uint64_t shared;
	uint64_t false_matches;
	uint64_t ops;		/* debug builds: operations since creation */
} __attribute__((aligned(64)));

struct fold_index {
	struct meta_mem *mem;
	fold_same_fn same;
	void *ctx;
	struct fold_shard shard[FOLD_SHARDS];
};

static inline uint32_t shard_of(uint64_t hash)
{
	return (uint32_t)(hash >> (64 - FOLD_SHARD_BITS));
}

static inline struct fold_entry *entry_at(struct fold_entry **dir,
					  uint32_t local)
{
	return &dir[local >> FOLD_CHUNK_BITS][local & (FOLD_CHUNK - 1)];
}

static inline struct fold_entry *sh_entry(struct fold_shard *sh,
					  uint32_t local)
{
	return entry_at(atomic_load_explicit(&sh->dir, memory_order_relaxed),
			local);
}

struct fold_index *fold_create(struct meta_mem *mem, fold_same_fn same,
			       void *ctx)
{
	struct fold_index *fi;
	unsigned int i;

	fi = meta_alloc(mem, sizeof(*fi), META_ZERO | META_LIMITED, NULL);
	if (!fi)
		return NULL;
	fi->mem = mem;
	fi->same = same;
	fi->ctx = ctx;
	for (i = 0; i < FOLD_SHARDS; i++) {
		futex_lock_init(&fi->shard[i].lock);
		atomic_init(&fi->shard[i].dir, NULL);
	}
	return fi;
}

void fold_destroy(struct fold_index *fi)
{
	unsigned int i, c;

	if (!fi)
		return;
	for (i = 0; i < FOLD_SHARDS; i++) {
		struct fold_shard *sh = &fi->shard[i];
		struct fold_entry **dir = atomic_load(&sh->dir);
		struct retired *r, *next;

		for (c = 0; c < sh->nchunks; c++)
			meta_free(fi->mem, dir[c]);
		meta_free(fi->mem, dir);
		meta_free(fi->mem, sh->cmeta);
		hindex_free(&sh->idx, fi->mem);
		for (r = sh->retired; r; r = next) {
			next = r->next;
			meta_free(fi->mem, r->dir);
			meta_free(fi->mem, r);
		}
	}
	meta_free(fi->mem, fi);
}

/* ---- index ---- */

static uint32_t entry_hash(void *ctx, uint32_t local)
{
	return sh_entry(ctx, local)->hash;
}

static bool entry_live(void *ctx, uint32_t local)
{
	struct fold_shard *sh = ctx;

	return (local >> FOLD_CHUNK_BITS) < sh->nchunks &&
	       sh_entry(sh, local)->refs;
}

/* fold_get()'s probe: the page, and the shard it looks in. */
struct fold_probe {
	struct fold_index *fi;
	struct fold_shard *sh;
	uint32_t h32;
	const void *page;
	uint32_t *aux;
};

/* Does entry local hold the probe's page? A hash match alone is never
 * trusted: same() compares the contents. */
static bool entry_holds(void *arg, uint32_t local)
{
	struct fold_probe *p = arg;
	struct fold_entry *e = sh_entry(p->sh, local);

	if (e->hash != p->h32 || e->refs == UINT32_MAX)
		return false;
	if (!p->fi->same(p->fi->ctx, e->handle, p->page, p->aux)) {
		p->sh->false_matches++;
		return false;
	}
	return true;
}

/* ---- entries ---- */

static int dir_grow(struct fold_index *fi, struct fold_shard *sh)
{
	uint32_t cap = sh->dir_cap ? sh->dir_cap * 2 : 4;
	struct fold_entry **old = atomic_load_explicit(&sh->dir,
						       memory_order_relaxed);
	struct fold_entry **dir;
	struct chunk_meta *cm;
	struct retired *r = NULL;
	int err = 0;

	if (cap > MAX_CHUNKS)
		return -ENOSPC;
	dir = meta_alloc(fi->mem, cap * sizeof(*dir), META_ZERO | META_LIMITED,
			 &err);
	cm = meta_alloc(fi->mem, cap * sizeof(*cm), META_ZERO | META_LIMITED,
			&err);
	if (old)
		r = meta_alloc(fi->mem, sizeof(*r), META_LIMITED, &err);
	if (!dir || !cm || (old && !r)) {
		meta_free(fi->mem, dir);
		meta_free(fi->mem, cm);
		meta_free(fi->mem, r);
		return err;
	}
	if (old) {
		memcpy(dir, old, sh->dir_cap * sizeof(*dir));
		memcpy(cm, sh->cmeta, sh->dir_cap * sizeof(*cm));
		r->dir = old;
		r->next = sh->retired;
		sh->retired = r;
	}
	meta_free(fi->mem, sh->cmeta);
	sh->cmeta = cm;
	sh->dir_cap = cap;
	atomic_store_explicit(&sh->dir, dir, memory_order_release);
	return 0;
}

static int chunk_add(struct fold_index *fi, struct fold_shard *sh)
{
	struct fold_entry *chunk, **dir;
	uint32_t i;
	int err = 0;

	if (sh->nchunks == sh->dir_cap) {
		err = dir_grow(fi, sh);
		if (err)
			return err;
	}
	chunk = meta_alloc(fi->mem, FOLD_CHUNK * sizeof(*chunk), META_LIMITED,
			   &err);
	if (!chunk)
		return err;
	for (i = 0; i < FOLD_CHUNK; i++) {
		chunk[i].refs = 0;
		chunk[i].hash = 0;
		chunk[i].handle = i + 1 < FOLD_CHUNK ? i + 1 : NONE16;
	}
	dir = atomic_load_explicit(&sh->dir, memory_order_relaxed);
	dir[sh->nchunks] = chunk;
	sh->cmeta[sh->nchunks].live = 0;
	sh->cmeta[sh->nchunks].free_head = 0;
	sh->nchunks++;
	return 0;
}

static int entry_alloc(struct fold_index *fi, struct fold_shard *sh,
		       uint32_t *local)
{
	struct chunk_meta *cm;
	struct fold_entry *e;
	uint32_t c;
	int err;

	while (sh->first_free < sh->nchunks &&
	       sh->cmeta[sh->first_free].free_head == NONE16)
		sh->first_free++;
	if (sh->first_free == sh->nchunks) {
		err = chunk_add(fi, sh);
		if (err)
			return err;
	}
	c = sh->first_free;
	cm = &sh->cmeta[c];
	*local = (c << FOLD_CHUNK_BITS) | cm->free_head;
	e = sh_entry(sh, *local);
	cm->free_head = (uint16_t)e->handle;
	cm->live++;
	return 0;
}

/* Return a free entry to its chunk; free trailing chunks left empty. */
static void entry_free(struct fold_index *fi, struct fold_shard *sh,
		       uint32_t local)
{
	struct fold_entry **dir = atomic_load_explicit(&sh->dir,
						       memory_order_relaxed);
	uint32_t c = local >> FOLD_CHUNK_BITS;
	struct fold_entry *e = entry_at(dir, local);

	e->refs = 0;
	e->handle = sh->cmeta[c].free_head;
	sh->cmeta[c].free_head = (uint16_t)(local & (FOLD_CHUNK - 1));
	sh->cmeta[c].live--;
	if (c < sh->first_free)
		sh->first_free = c;
	while (sh->nchunks && sh->cmeta[sh->nchunks - 1].live == 0) {
		sh->nchunks--;
		meta_free(fi->mem, dir[sh->nchunks]);
		dir[sh->nchunks] = NULL;
	}
	if (sh->first_free > sh->nchunks)
		sh->first_free = sh->nchunks;
}

static const char *shard_check(struct fold_shard *sh);

/*
 * Debug builds: after every operation on a shard, under its lock, check the
 * entry it touched (live, with a handle, reachable from its home cell) and
 * run the full shard check every 1024 operations.
 */
#ifdef PF_DEBUG
static void debug_after(struct fold_shard *sh, uint32_t local, bool live)
{
	const char *bad = NULL;

	if (live) {
		struct fold_entry *e = sh_entry(sh, local);

		if (!e->refs || !e->handle)
			bad = "fold: touched entry dead or without handle";
		else if (hindex_cell_of(&sh->idx, e->hash, local) == HINDEX_NONE)
			bad = "fold: touched entry not in the index";
	}
	if (!bad && ++sh->ops % 1024 == 0)
		bad = shard_check(sh);
	if (bad)
		BUG("invariant broken: %s", bad);
}
#else
static inline void debug_after(struct fold_shard *sh, uint32_t local,
			       bool live)
{
	(void)sh;
	(void)local;
	(void)live;
}
#endif

/* The last entry of the shard is gone (live == 0, every chunk freed):
 * free what is left, as a shard that never held an entry. Readers hold a
 * reference while they read the directory, so none is reading it. */
static void shard_reset(struct fold_index *fi, struct fold_shard *sh)
{
	struct retired *r, *next;

	meta_free(fi->mem,
		  atomic_load_explicit(&sh->dir, memory_order_relaxed));
	atomic_store_explicit(&sh->dir, NULL, memory_order_relaxed);
	meta_free(fi->mem, sh->cmeta);
	sh->cmeta = NULL;
	sh->dir_cap = 0;
	sh->first_free = 0;
	for (r = sh->retired; r; r = next) {
		next = r->next;
		meta_free(fi->mem, r->dir);
		meta_free(fi->mem, r);
	}
	sh->retired = NULL;
	hindex_free(&sh->idx, fi->mem);
}

/* ---- refcount bookkeeping ---- */

static void refs_changed(struct fold_shard *sh, uint32_t before,
			 uint32_t after)
{
	if (before >= 2) {
		sh->folded -= before;
		sh->shared--;
	}
	if (after >= 2) {
		sh->folded += after;
		sh->shared++;
	}
}

/* ---- API ---- */

int fold_get(struct fold_index *fi, uint64_t hash, const void *page,
	     uint32_t *id, uint32_t *aux)
{
	uint32_t s = shard_of(hash), local;
	struct fold_shard *sh = &fi->shard[s];
	struct fold_probe p = {
		.fi = fi, .sh = sh, .h32 = (uint32_t)hash, .page = page,
		.aux = aux,
	};
	int hit = 0;

	futex_lock(&sh->lock);
	local = hindex_find(&sh->idx, p.h32, entry_holds, &p);
	if (local != HINDEX_NONE) {
		struct fold_entry *e = sh_entry(sh, local);

		refs_changed(sh, e->refs, e->refs + 1);
		e->refs++;
		*id = (s << FOLD_LOCAL_BITS) | local;
		hit = 1;
		debug_after(sh, local, true);
	}
	futex_unlock(&sh->lock);
	return hit;
}

int fold_insert(struct fold_index *fi, uint64_t hash, uint32_t handle,
		uint32_t *id)
{
	uint32_t s = shard_of(hash), h32 = (uint32_t)hash, local;
	struct fold_shard *sh = &fi->shard[s];
	struct fold_entry *e;
	int err;

	futex_lock(&sh->lock);
	err = hindex_reserve(&sh->idx, fi->mem, INDEX_MIN,
			     1u << FOLD_LOCAL_BITS, entry_hash, sh);
	if (err)
		goto out_unlock;
	if (sh->idx.live >= LOCAL_MASK) {
		err = -ENOSPC;
		goto out_unlock;
	}
	err = entry_alloc(fi, sh, &local);
	if (err)
		goto out_unlock;
	e = sh_entry(sh, local);
	e->hash = h32;
	e->handle = handle;
	e->refs = 1;
	hindex_insert(&sh->idx, h32, local);
	*id = (s << FOLD_LOCAL_BITS) | local;
	debug_after(sh, local, true);
out_unlock:
	futex_unlock(&sh->lock);
	return err;
}

/* Drop one reference of entry local; shard lock held. */
static uint32_t entry_put(struct fold_index *fi, struct fold_shard *sh,
			  uint32_t local)
{
	struct fold_entry *e = sh_entry(sh, local);
	uint32_t handle = 0;

	refs_changed(sh, e->refs, e->refs - 1);
	if (--e->refs == 0) {
		handle = e->handle;
		hindex_remove(&sh->idx, e->hash, local, entry_hash, sh);
		entry_free(fi, sh, local);
		/* Shrink a mostly empty index (hysteresis: grow at 3/4). */
		if (!sh->idx.live)
			shard_reset(fi, sh);
		else
			hindex_shrink(&sh->idx, fi->mem, INDEX_MIN, true,
				      entry_hash, sh);
		debug_after(sh, local, false);
	} else {
		debug_after(sh, local, true);
	}
	return handle;
}

uint32_t fold_put(struct fold_index *fi, uint32_t id)
{
	struct fold_shard *sh = &fi->shard[id >> FOLD_LOCAL_BITS];
	uint32_t handle;

	futex_lock(&sh->lock);
	handle = entry_put(fi, sh, id & LOCAL_MASK);
	futex_unlock(&sh->lock);
	return handle;
}

/*
 * An entry with exactly one reference that names old: point it at new,
 * or drop it when new is 0 (never a pool handle). 0, or -EBUSY with
 * nothing changed when it is shared or names another object.
 */
static int entry_single(struct fold_index *fi, uint32_t id, uint32_t old,
			uint32_t new)
{
	struct fold_shard *sh = &fi->shard[id >> FOLD_LOCAL_BITS];
	uint32_t local = id & LOCAL_MASK;
	struct fold_entry *e;
	int err = -EBUSY;

	futex_lock(&sh->lock);
	e = sh_entry(sh, local);
	if (e->refs == 1 && e->handle == old) {
		if (new)
			e->handle = new;
		else
			(void)entry_put(fi, sh, local);
		err = 0;
	}
	futex_unlock(&sh->lock);
	return err;
}

int fold_drop_single(struct fold_index *fi, uint32_t id, uint32_t handle)
{
	return entry_single(fi, id, handle, 0);
}

int fold_replace(struct fold_index *fi, uint32_t id, uint32_t old,
		 uint32_t new)
{
	return entry_single(fi, id, old, new);
}

/* One more reference to a live entry (the disk tier's writeback walk). */
void fold_dup(struct fold_index *fi, uint32_t id)
{
	struct fold_shard *sh = &fi->shard[id >> FOLD_LOCAL_BITS];
	struct fold_entry *e;

	futex_lock(&sh->lock);
	e = sh_entry(sh, id & LOCAL_MASK);
	refs_changed(sh, e->refs, e->refs + 1);
	e->refs++;
	futex_unlock(&sh->lock);
}

uint32_t fold_handle(struct fold_index *fi, uint32_t id)
{
	struct fold_shard *sh = &fi->shard[id >> FOLD_LOCAL_BITS];

	return entry_at(atomic_load_explicit(&sh->dir, memory_order_acquire),
			id & LOCAL_MASK)->handle;
}

uint32_t fold_refs(struct fold_index *fi, uint32_t id)
{
	struct fold_shard *sh = &fi->shard[id >> FOLD_LOCAL_BITS];
	uint32_t local = id & LOCAL_MASK, refs = 0;

	futex_lock(&sh->lock);
	if ((local >> FOLD_CHUNK_BITS) < sh->nchunks)
		refs = sh_entry(sh, local)->refs;
	futex_unlock(&sh->lock);
	return refs;
}

void fold_get_stats(struct fold_index *fi, struct fold_stats *fs)
{
	unsigned int i;

	memset(fs, 0, sizeof(*fs));
	for (i = 0; i < FOLD_SHARDS; i++) {
		struct fold_shard *sh = &fi->shard[i];

		futex_lock(&sh->lock);
		fs->entries += sh->idx.live;
		fs->shared += sh->shared;
		fs->folded += sh->folded;
		fs->false_matches += sh->false_matches;
		futex_unlock(&sh->lock);
	}
	fs->bytes = meta_mem_bytes(fi->mem);
}

void fold_for_each(struct fold_index *fi,
		   void (*fn)(void *arg, uint32_t id, uint32_t handle,
			      uint32_t refs),
		   void *arg)
{
	unsigned int i;
	uint32_t local;

	for (i = 0; i < FOLD_SHARDS; i++) {
		struct fold_shard *sh = &fi->shard[i];

		futex_lock(&sh->lock);
		for (local = 0; local < sh->nchunks * FOLD_CHUNK; local++) {
			struct fold_entry *e = sh_entry(sh, local);

			if (e->refs)
				fn(arg, (i << FOLD_LOCAL_BITS) | local,
				   e->handle, e->refs);
		}
		futex_unlock(&sh->lock);
	}
}

static const char *shard_check(struct fold_shard *sh)
{
	uint64_t folded = 0, shared = 0;
	uint32_t c, i, live = 0;
	const char *bad;

	if (sh->nchunks > sh->dir_cap || sh->first_free > sh->nchunks)
		return "fold: chunk counts out of range";
	for (c = 0; c < sh->nchunks; c++) {
		struct chunk_meta *cm = &sh->cmeta[c];
		uint32_t clive = 0, nfree = 0, f;

		for (i = 0; i < FOLD_CHUNK; i++) {
			struct fold_entry *e = sh_entry(sh, (c << FOLD_CHUNK_BITS) | i);

			if (!e->refs)
				continue;
			clive++;
			if (!e->handle)
				return "fold: live entry without a handle";
			if (e->refs >= 2) {
				folded += e->refs;
				shared++;
			}
		}
		for (f = cm->free_head; f != NONE16 && nfree <= FOLD_CHUNK;
		     f = sh_entry(sh, (c << FOLD_CHUNK_BITS) | f)->handle) {
			if (f >= FOLD_CHUNK)
				return "fold: free list leaves its chunk";
			if (sh_entry(sh, (c << FOLD_CHUNK_BITS) | f)->refs)
				return "fold: live entry on a free list";
			nfree++;
		}
		if (clive != cm->live || clive + nfree != FOLD_CHUNK)
			return "fold: chunk live + free != chunk size";
		if (c < sh->first_free && cm->free_head != NONE16)
			return "fold: free entry below first_free";
		live += clive;
	}
	if (sh->nchunks && sh->cmeta[sh->nchunks - 1].live == 0)
		return "fold: empty last chunk kept";
	if (live != sh->idx.live)
		return "fold: live count disagrees with entries/index";
	bad = hindex_check(&sh->idx, entry_live, entry_hash, sh);
	if (bad)
		return bad;
	if (folded != sh->folded || shared != sh->shared)
		return "fold: folded/shared counters wrong";
	return NULL;
}

bool fold_is_valid(struct fold_index *fi, const char **why)
{
	const char *bad = NULL;
	unsigned int i;

	for (i = 0; i < FOLD_SHARDS && !bad; i++) {
		futex_lock(&fi->shard[i].lock);
		bad = shard_check(&fi->shard[i]);
		futex_unlock(&fi->shard[i].lock);
	}
	if (bad && why)
		*why = bad;
	return !bad;
}
