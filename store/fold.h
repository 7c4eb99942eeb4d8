/* SPDX-License-Identifier: MIT */
/*
 * fold.h - the fold index: page hash -> shared pool object + refcount.
 *
 * Entries are named by 32-bit ids (4 bits of shard, 28 bits of entry within
 * the shard) and never move while referenced, so a slot can hold an entry id
 * in place of a pool handle, and the read path finds the handle through the
 * id without taking the shard lock. The index is sharded by the top bits of
 * the hash, one lock per shard.
 *
 * Cost per unique page (entry in the index):
 *   12 bytes  entry {hash low 32 bits, pool handle, refcount}
 *    4 bytes  index cell (uint32 entry id), at a load of 3/8..3/4
 *             -> 5.3..10.7 bytes per entry
 *   --------
 *   17.3..22.7 bytes per unique page while the set of unique pages grows,
 *   plus 4 bytes per 64-entry chunk of bookkeeping and 8 of chunk directory
 *   (0.19 B/entry), and per shard a partly filled last chunk (< 768 bytes,
 *   16 shards). Measured: 21.1 B per unique page at 61k unique pages.
 *   After mass deletions the index shrinks only once its load
 *   falls below 1/8 and an entry chunk is freed only when it is the last one
 *   and empty (allocation always takes the lowest free entry, so chunks at
 *   the end drain), so the figure can be higher for a while. The chunk
 *   directory (12 bytes per chunk of its high-water mark, and the smaller
 *   directories it replaced, kept for lock-free readers) stays until its
 *   shard has no entry left; then the shard gives back everything.
 *
 * Content check: a hash match alone is never trusted. fold_get() calls the
 * same() callback given at creation with each candidate's pool handle; it
 * must compare the page with the object's contents for real. A candidate
 * whose hash matched (all 32 stored bits and the shard bits) but whose
 * contents differ is counted as a false match.
 *
 * Threads: all functions are thread safe; same() is called under the shard
 * lock (lock order: fold shard, then whatever same() takes, i.e. the pool).
 */
#ifndef PAGEFOLD_STORE_FOLD_H
#define PAGEFOLD_STORE_FOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "mem.h"

#define FOLD_SHARD_BITS 4
#define FOLD_SHARDS     (1u << FOLD_SHARD_BITS)
#define FOLD_LOCAL_BITS (32 - FOLD_SHARD_BITS)
#define FOLD_CHUNK_BITS 6
#define FOLD_CHUNK      (1u << FOLD_CHUNK_BITS)

struct fold_index;

/* True when the object behind handle holds exactly page; may store one
 * number about the object in *aux (the store passes back its size). */
typedef bool (*fold_same_fn)(void *ctx, uint32_t handle, const void *page,
			     uint32_t *aux);

struct fold_index *fold_create(struct meta_mem *mem, fold_same_fn same,
			       void *ctx);
/* Frees the index; pool objects it names are the caller's business. */
void fold_destroy(struct fold_index *fi);

/*
 * Find a stored page equal to page among the entries whose hash equals
 * hash. On a verified match take a reference, store the entry's id in *id
 * and what same() put in its aux argument in *aux, and return 1; return 0
 * when there is none.
 */
int fold_get(struct fold_index *fi, uint64_t hash, const void *page,
	     uint32_t *id, uint32_t *aux);

/* Add an entry for a new object with one reference. -ENOSPC (limit) or
 * -ENOMEM if the index cannot grow; the index is unchanged then. */
int fold_insert(struct fold_index *fi, uint64_t hash, uint32_t handle,
		uint32_t *id);

/* Drop one reference. Returns the pool handle when that was the last one
 * (the entry is gone; the caller frees the object), else 0. */
uint32_t fold_put(struct fold_index *fi, uint32_t id);

/* Take one more reference on a live entry the caller can reach (it holds
 * the lock of a slot naming it). */
void fold_dup(struct fold_index *fi, uint32_t id);

/* Handle of an entry the caller holds a reference on; takes no lock. */
uint32_t fold_handle(struct fold_index *fi, uint32_t id);

/*
 * Point an entry with exactly one reference at another object of the same
 * contents (recompression): 0 when the entry named old and now names new,
 * -EBUSY (unchanged) when it is shared or names another object. The caller
 * holds the lock of the one slot naming the entry, so nobody reads through
 * it meanwhile; new references wait for the shard lock taken here.
 */
int fold_replace(struct fold_index *fi, uint32_t id, uint32_t old,
		 uint32_t new);

/*
 * Remove an entry with exactly one reference that names handle (a page
 * leaving the index for a group): 0 when it is gone (the object is the
 * caller's now), -EBUSY (unchanged) when it is shared or names another
 * object. The caller holds the lock of the one slot naming it.
 */
int fold_drop_single(struct fold_index *fi, uint32_t id, uint32_t handle);

/* Current references of a live entry (0 if free); takes the shard lock. */
uint32_t fold_refs(struct fold_index *fi, uint32_t id);

struct fold_stats {
	uint64_t entries;	/* live entries (objects in the index) */
	uint64_t shared;	/* entries with refs >= 2 */
	uint64_t folded;	/* sum of refs over entries with refs >= 2 */
	uint64_t false_matches;	/* hash matched, contents differed */
	uint64_t bytes;		/* memory of the index */
};
void fold_get_stats(struct fold_index *fi, struct fold_stats *fs);

/* Call fn for every live entry, shard by shard under its lock. */
void fold_for_each(struct fold_index *fi,
		   void (*fn)(void *arg, uint32_t id, uint32_t handle,
			      uint32_t refs),
		   void *arg);

bool fold_is_valid(struct fold_index *fi, const char **why);

#endif /* PAGEFOLD_STORE_FOLD_H */
