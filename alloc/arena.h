/* SPDX-License-Identifier: MIT */
/*
 * arena.h - the pool's virtual address range (internal to alloc/).
 *
 * One large range is reserved up front (PROT_READ|PROT_WRITE, MAP_NORESERVE:
 * address space only, no memory until a page is touched). Spans are runs of
 * 1..ARENA_MAX_RUN pages carved from it: first from the free runs of the
 * requested length, then from the never-used top (the bump pointer); when
 * both are exhausted, adjacent free runs are merged (a merged run that ends
 * at the bump pointer lowers it; longer ones are kept whole and carved from
 * the front) and, failing that, a longer free run is split.
 * All of this only matters once the reservation is nearly used up. A run handed back is first released to the OS, so free runs hold no
 * memory: only the page map (8 bytes per page below the bump pointer) and
 * the free-run vectors (4 bytes per free run) cost anything.
 *
 * Releasing memory: madvise(MADV_DONTNEED); if the range is locked (the
 * daemon runs under mlockall, where MADV_DONTNEED fails with EINVAL),
 * MADV_DONTNEED_LOCKED (Linux >= 5.18); if that is refused too, a fresh
 * mapping is put over the range with mmap(MAP_FIXED|MAP_NORESERVE), which
 * under mlockall(MCL_FUTURE|MCL_ONFAULT) is itself locked on fault. The
 * method that worked is remembered.
 *
 * Locking: the arena lock protects the bump pointer and the free runs. It is
 * taken inside a shard lock (shard -> arena) and never around a system call.
 * The page map is written by the owner of a run (under its shard's lock, or
 * all of its class's shard locks) and read under that lock, under a pin on
 * the span, or optimistically and re-checked under the lock (pool.c).
 */
#ifndef PAGEFOLD_ARENA_H
#define PAGEFOLD_ARENA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARENA_PAGE_SHIFT 12
#define ARENA_PAGE_SIZE  (1u << ARENA_PAGE_SHIFT)
#define ARENA_MAX_RUN    32u   /* longest span, in pages */

struct span;

/* A growable vector of first pages of free runs of one length. */
struct arena_runs {
	uint32_t *page;
	uint32_t nr, cap;
};

/* Free runs longer than ARENA_MAX_RUN (made by merging), carved from the
 * front. */
struct arena_large {
	struct { uint32_t page, len; } *run;
	uint32_t nr, cap;
};

/*
 * Invariants (under lock):
 *   1 <= bump <= nr_pages (page 0 is never handed out)
 *   free_pages == sum over n of runs[n].nr * n + sum of large run lengths
 *   every free run lies below bump and overlaps no other run and no span
 *   page_map[p] != NULL  iff  page p belongs to a live span
 */
struct arena {
	char *base;                 /* start of the reservation */
	uint32_t nr_pages;          /* pages reserved */
	struct span **page_map;     /* nr_pages entries: owning span or NULL */
	pthread_mutex_t lock;
	uint32_t bump;              /* pages [bump, nr_pages) never handed out */
	uint32_t free_pages;        /* pages in free runs */
	uint32_t lost_pages;        /* pages whose release failed: never reused */
	bool runs_added;            /* runs pushed since the last coalescing */
	struct arena_runs runs[ARENA_MAX_RUN + 1]; /* runs[n]: free runs of n pages */
	struct arena_large large;   /* free runs of more than ARENA_MAX_RUN */
	int release_mode;           /* atomic: enum arena_release_mode */
	uint64_t releases;          /* atomic: successful releases (any method) */
	uint64_t meta_bytes;        /* atomic: what arena_meta_bytes() returns,
				     * recomputed under lock on every change */
};

enum arena_release_mode {
	ARENA_REL_DONTNEED,         /* madvise(MADV_DONTNEED) */
	ARENA_REL_DONTNEED_LOCKED,  /* madvise(MADV_DONTNEED_LOCKED) */
	ARENA_REL_MMAP,             /* mmap(MAP_FIXED) over the range */
};

/* Reserve at most bytes (rounded down to pages; smaller if the kernel
 * refuses that much). 0 or -ENOMEM. */
int arena_init(struct arena *a, uint64_t bytes);
void arena_fini(struct arena *a);

/* A run of n pages (1..ARENA_MAX_RUN) holding no memory. 0 or -ENOMEM. */
int arena_get(struct arena *a, uint32_t n, uint32_t *page);
/* Undo an arena_get() whose pages were never touched. */
void arena_unget(struct arena *a, uint32_t page, uint32_t n);
/* Release the first touched pages of a run to the OS (the rest were never
 * touched) and make the run free. */
void arena_put(struct arena *a, uint32_t page, uint32_t n, uint32_t touched);

/*
 * Give pages back to the OS while keeping them reserved and usable: their
 * contents become zero. With allow_remap false only madvise is tried (for
 * ranges inside a live span, where a failed remap must not leave a hole).
 * 0 or -errno.
 */
int arena_release(struct arena *a, void *addr, size_t len, bool allow_remap);

/*
 * The same for any range of anonymous memory (alloc/mheap.c): *mode is the
 * method that worked last (enum arena_release_mode, atomic), *releases
 * counts the successful releases (atomic).
 */
int pages_release(int *mode, uint64_t *releases, void *addr, size_t len,
		  bool allow_remap);

/* Bytes of bookkeeping: touched page-map pages and free-run vectors. Reads
 * one atomic: no lock. */
uint64_t arena_meta_bytes(struct arena *a);

/* Check the invariants above; false and a reason in *why if broken. Takes
 * the arena lock. O(free runs). */
bool arena_is_valid(struct arena *a, const char **why);

static inline void *arena_addr(const struct arena *a, uint32_t page)
{
	return a->base + ((size_t)page << ARENA_PAGE_SHIFT);
}

#endif /* PAGEFOLD_ARENA_H */
