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
 * The reserve (off unless arena_set_reserve() gives it pages): ready runs,
 * at most one per run length, whose first pages (at most ARENA_READY_RES)
 * are resident, so the span that takes one finds its first pages already
 * faulted in. A ready run comes from a span freed with touched pages
 * (arena_put() keeps its first pages resident instead of releasing them:
 * memory reused before new memory is touched) or from arena_refill(),
 * which a background thread calls to make one, faulting its pages in
 * ahead of the writers, for each length taken since. The reserve's pages
 * (reserve) never pass reserve_max; the pool counts them as held memory.
 *
 * Locking: the arena lock protects the bump pointer, the free runs and the
 * ready runs. It is taken inside a shard lock (shard -> arena) and never
 * around a system call. The fill lock is held around every release of
 * pages of the reservation (arena_release_locked()) and around
 * arena_refill()'s populate, so that a ready run taken, used, freed and released while it
 * is being faulted in is released after the populate, not before
 * (shard -> fill -> arena).
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
#define ARENA_READY_RES  2u    /* resident first pages of a ready run */

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
 *   ready[n].page != 0: a run of n pages below bump, in no free run and no
 *     span, its first ready[n].res <= min(n, ARENA_READY_RES) pages resident
 *   reserve == sum of ready[n].res <= reserve_max (unless lowered since)
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
	struct { uint32_t page, res; } ready[ARENA_MAX_RUN + 1];
	uint64_t want;              /* bit n: a ready run of n pages was taken
				     * (or missed) since: arena_refill() makes
				     * one */
	uint32_t reserve;           /* atomic: resident pages of ready runs */
	uint32_t reserve_max;       /* atomic: bound on reserve, pages */
	uint64_t ready_hits;        /* atomic: spans that got a ready run */
	uint64_t ready_misses;      /* atomic: spans that found none */
	uint64_t filled;            /* atomic: pages arena_refill() faulted in */
	pthread_mutex_t fill_lock;
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
/* The same, taking the ready run of n pages if there is one: *res gets
 * the number of its first pages that are resident (0 otherwise), which
 * leave the reserve and are the caller's to count from now on. */
int arena_get_ready(struct arena *a, uint32_t n, uint32_t *page,
		    uint32_t *res);
/* Undo an arena_get() whose pages were never touched. */
void arena_unget(struct arena *a, uint32_t page, uint32_t n);
/* Undo an arena_get_ready() (its res first pages resident, untouched
 * since): back to the reserve if there is room, else released. */
void arena_unget_ready(struct arena *a, uint32_t page, uint32_t n,
		       uint32_t res);
/* Release the first touched pages of a run to the OS (the rest were never
 * touched) and make the run free; with a reserve, a run whose length has
 * no ready run keeps its first pages resident as that ready run. */
void arena_put(struct arena *a, uint32_t page, uint32_t n, uint32_t touched);

/* Bound the reserve to pages (0: none); above it, ready runs are released
 * at once. */
void arena_set_reserve(struct arena *a, uint32_t pages);
/* Make a ready run for every length taken since the last call, faulting
 * its first pages in (the background refill's work); with room_pages, at
 * most that many pages. Returns the pages faulted in. */
uint32_t arena_refill(struct arena *a, uint64_t room_pages);
/* Release every ready run's pages (a full compaction, a lower bound).
 * Returns the pages released. */
uint32_t arena_drop_reserve(struct arena *a);
/* Resident pages in the reserve (one atomic read). */
static inline uint32_t arena_reserve_pages(struct arena *a)
{
	return __atomic_load_n(&a->reserve, __ATOMIC_RELAXED);
}
/* Fault n pages in with one system call (MADV_POPULATE_WRITE), then write
 * to each page from user space (an atomic add of 0): that is the fault
 * where the kernel lacks the call, and takes the trap a virtual machine
 * with shadow page tables makes at a page's first user write. */
void pages_populate(void *addr, uint32_t n);

/*
 * Give pages back to the OS while keeping them reserved and usable: their
 * contents become zero. With allow_remap false only madvise is tried (for
 * ranges inside a live span, where a failed remap must not leave a hole).
 * 0 or -errno. The fill lock is held.
 */
int arena_release_locked(struct arena *a, void *addr, size_t len,
			 bool allow_remap);

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
