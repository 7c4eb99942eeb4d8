/* SPDX-License-Identifier: MIT */
/*
 * mem.h - counted allocations for the store's own metadata.
 *
 * Every byte the store allocates besides the pool goes through these
 * wrappers so that mem_used_total and the memory limit see it. A struct
 * meta_mem is one counter (the store keeps one per kind: metadata, fold index,
 * pattern table) plus an optional limit check shared by all of them.
 *
 * Once meta_mem_set_pool() gave it the pool, the memory comes from the pool's
 * metadata heap (pool_meta_alloc(): given back to the OS when freed, also
 * under mlockall(), which glibc's malloc cannot do) and the count is the
 * object's usable bytes there; the rest of the heap (slab pages not in live
 * objects) is in pool_mem_bytes(). The limit check is given what the
 * allocation really adds to the two together (pool_meta_cost(): 0 when a
 * freed slot is there to take, a page or more when a slab grows). Without
 * the pool, or when its heap is used up, malloc: then the count is
 * malloc_usable_size(), i.e. what the allocator really handed out.
 * meta_free() tells the two apart by address.
 */
#ifndef PAGEFOLD_STORE_MEM_H
#define PAGEFOLD_STORE_MEM_H

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

struct meta_mem {
	_Atomic uint64_t bytes;	/* usable bytes currently allocated */
	/* true when allocating extra more bytes would pass the limit; NULL
	 * means no limit. Shared by the counters of one store. */
	bool (*over)(void *ctx, uint64_t extra);
	void *ctx;
	struct pool *pool;	/* metadata heap, or NULL: malloc */
};

static inline void meta_mem_init(struct meta_mem *m,
				 bool (*over)(void *, uint64_t), void *ctx)
{
	atomic_init(&m->bytes, 0);
	m->over = over;
	m->ctx = ctx;
	m->pool = NULL;
}

/* From now on, allocate from pool's metadata heap (memory allocated
 * before stays with malloc and is freed there). */
static inline void meta_mem_set_pool(struct meta_mem *m, struct pool *pool)
{
	m->pool = pool;
}

/* How meta_alloc() allocates, or'ed. */
enum meta_flags {
	META_ZERO = 1,		/* zeroed */
	META_LIMITED = 2,	/* -ENOSPC past the memory limit; without it,
				   for what must not fail because of the
				   limit (nothing on the data path) */
};

/* From the pool's heap; NULL (*err untouched) when it cannot serve, or
 * with *err = -ENOSPC when the limit would be passed. */
static inline void *meta_alloc_heap(struct meta_mem *m, size_t n,
				    unsigned int flags, int *err)
{
	size_t usable;
	void *p;

	if ((flags & META_LIMITED) && m->over &&
	    m->over(m->ctx, pool_meta_cost(m->pool, n))) {
		if (err)
			*err = -ENOSPC;
		return NULL;
	}
	p = pool_meta_alloc(m->pool, n, flags & META_ZERO, &usable);
	if (p)
		atomic_fetch_add_explicit(&m->bytes, usable,
					  memory_order_relaxed);
	return p;
}

static inline uint64_t meta_mem_bytes(struct meta_mem *m)
{
	return atomic_load_explicit(&m->bytes, memory_order_relaxed);
}

/*
 * Allocate n bytes as flags say (enum meta_flags). On failure returns NULL
 * and stores -ENOSPC (the limit would be passed) or -ENOMEM in *err (err
 * may be NULL).
 */
static inline void *meta_alloc(struct meta_mem *m, size_t n, unsigned int flags,
			       int *err)
{
	void *p;

	if (m->pool) {
		int e = 0;

		p = meta_alloc_heap(m, n, flags, &e);
		if (p || e) {
			if (e && err)
				*err = e;
			return p;
		}
	}
	/* + 16: malloc may hand out up to 15 bytes more than asked. */
	if ((flags & META_LIMITED) && m->over &&
	    m->over(m->ctx, (uint64_t)n + 16)) {
		if (err)
			*err = -ENOSPC;
		return NULL;
	}
	p = (flags & META_ZERO) ? calloc(1, n) : malloc(n);
	if (!p) {
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	atomic_fetch_add_explicit(&m->bytes, malloc_usable_size(p),
				  memory_order_relaxed);
	return p;
}

/* Zeroed, aligned to align (a power of two >= sizeof(void *)); for structs
 * with cache-line aligned members. Same errors as meta_alloc(). */
static inline void *meta_alloc_aligned(struct meta_mem *m, size_t n,
				       size_t align, int *err)
{
	size_t len = (n + align - 1) & ~(align - 1);
	void *p;

	/* A heap object whose size is a multiple of align (a power of two,
	 * at most a page) is aligned to it. */
	if (m->pool && align <= 4096) {
		int e = 0;

		p = meta_alloc_heap(m, len, META_ZERO | META_LIMITED, &e);
		if (p || e) {
			if (e && err)
				*err = e;
			return p;
		}
	}
	if (m->over && m->over(m->ctx, (uint64_t)len + 16)) {
		if (err)
			*err = -ENOSPC;
		return NULL;
	}
	p = aligned_alloc(align, len);
	if (!p) {
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	memset(p, 0, len);
	atomic_fetch_add_explicit(&m->bytes, malloc_usable_size(p),
				  memory_order_relaxed);
	return p;
}

static inline void meta_free(struct meta_mem *m, void *p)
{
	if (!p)
		return;
	if (m->pool && pool_meta_owns(m->pool, p)) {
		atomic_fetch_sub_explicit(&m->bytes,
					  pool_meta_free(m->pool, p),
					  memory_order_relaxed);
		return;
	}
	atomic_fetch_sub_explicit(&m->bytes, malloc_usable_size(p),
				  memory_order_relaxed);
	free(p);
}

#endif /* PAGEFOLD_STORE_MEM_H */
