/* SPDX-License-Identifier: MIT */
/*
 * mem.h - counted allocations for the store's own metadata.
 *
 * Every byte the store allocates besides the pool goes through these
 * wrappers so that mem_used_total and the memory limit see it. A struct
 * pf_mem is one counter (the store keeps one per kind: metadata, fold index,
 * pattern table) plus an optional limit check shared by all of them. The
 * count is malloc_usable_size(), i.e. what the allocator really handed out,
 * not the size asked for.
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

struct pf_mem {
	_Atomic uint64_t bytes;	/* usable bytes currently allocated */
	/* true when allocating extra more bytes would pass the limit; NULL
	 * means no limit. Shared by the counters of one store. */
	bool (*over)(void *ctx, uint64_t extra);
	void *ctx;
};

static inline void pf_mem_init(struct pf_mem *m,
			       bool (*over)(void *, uint64_t), void *ctx)
{
	atomic_init(&m->bytes, 0);
	m->over = over;
	m->ctx = ctx;
}

static inline uint64_t pf_mem_bytes(struct pf_mem *m)
{
	return atomic_load_explicit(&m->bytes, memory_order_relaxed);
}

/*
 * Allocate n bytes (zeroed when zero is set). On failure returns NULL and
 * stores -ENOSPC (the limit would be passed) or -ENOMEM in *err (err may be
 * NULL). limited=false skips the limit check, for allocations that must not
 * fail because of the limit (none on the data path).
 */
static inline void *pf_alloc(struct pf_mem *m, size_t n, bool zero,
			     bool limited, int *err)
{
	void *p;

	/* + 16: malloc may hand out up to 15 bytes more than asked. */
	if (limited && m->over && m->over(m->ctx, (uint64_t)n + 16)) {
		if (err)
			*err = -ENOSPC;
		return NULL;
	}
	p = zero ? calloc(1, n) : malloc(n);
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
 * with cache-line aligned members. Same errors as pf_alloc(). */
static inline void *pf_alloc_aligned(struct pf_mem *m, size_t n, size_t align,
				     int *err)
{
	size_t len = (n + align - 1) & ~(align - 1);
	void *p;

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

static inline void pf_free(struct pf_mem *m, void *p)
{
	if (!p)
		return;
	atomic_fetch_sub_explicit(&m->bytes, malloc_usable_size(p),
				  memory_order_relaxed);
	free(p);
}

#endif /* PAGEFOLD_STORE_MEM_H */
