// SPDX-License-Identifier: MIT
/*
 * arena.c - the pool's virtual address range: page runs and their release.
 *
 * lock ordering: shard locks (pool.c) -> fill lock -> arena lock. The arena
 * lock is never held while taking another lock or making a system call;
 * the fill lock is held around the system calls that release or populate
 * pages of the reservation (arena.h).
 */
#include "arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24 /* Linux 5.18; EINVAL on older kernels */
#endif

#define ARENA_MIN_BYTES (16u << 20)

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void arena_meta_update(struct arena *a);

int arena_init(struct arena *a, uint64_t bytes)
{
	uint64_t pages = bytes >> ARENA_PAGE_SHIFT;

	memset(a, 0, sizeof(*a));
	if (pages > UINT32_MAX)
		pages = UINT32_MAX;
	/* The kernel may refuse a huge reservation (vm.overcommit_memory=2,
	 * RLIMIT_AS): halve until it fits. */
	for (;;) {
		a->base = map_anon(pages << ARENA_PAGE_SHIFT);
		if (a->base)
			break;
		if ((pages << ARENA_PAGE_SHIFT) / 2 < ARENA_MIN_BYTES)
			return -ENOMEM;
		pages /= 2;
	}
	/* 4 KiB pages whatever the THP mode: under "always" a span's first
	 * touched page would make a whole 2 MiB resident around the other
	 * classes' untouched span tails (+9% of RSS measured, and memory
	 * mem_used_total would not see). New pages are made cheap by the
	 * refill instead (pool.c). Ignored where THP is not built in. */
	(void)madvise(a->base, pages << ARENA_PAGE_SHIFT, MADV_NOHUGEPAGE);
	a->page_map = map_anon(pages * sizeof(*a->page_map));
	if (!a->page_map)
		goto unmap_base;
	if (pthread_mutex_init(&a->lock, NULL))
		goto unmap_page_map;
	if (pthread_mutex_init(&a->fill_lock, NULL)) {
		pthread_mutex_destroy(&a->lock);
		goto unmap_page_map;
	}
	a->nr_pages = (uint32_t)pages;
	a->bump = 1;  /* page 0 is never handed out: location 0 means none */
	arena_meta_update(a);
	return 0;

unmap_page_map:
	munmap(a->page_map, pages * sizeof(*a->page_map));
unmap_base:
	munmap(a->base, pages << ARENA_PAGE_SHIFT);
	a->base = NULL;
	return -ENOMEM;
}

void arena_fini(struct arena *a)
{
	if (!a->base)
		return;
	for (unsigned int n = 0; n <= ARENA_MAX_RUN; n++)
		free(a->runs[n].page);
	free(a->large.run);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->fill_lock);
	munmap(a->page_map, (size_t)a->nr_pages * sizeof(*a->page_map));
	munmap(a->base, (size_t)a->nr_pages << ARENA_PAGE_SHIFT);
	memset(a, 0, sizeof(*a));
}

/* Make room for one more run of length n; 0 or -ENOMEM. Under lock. */
static int runs_reserve(struct arena_runs *r)
{
	uint32_t cap;
	uint32_t *p;

	if (r->nr < r->cap)
		return 0;
	cap = r->cap ? r->cap * 2 : 64;
	p = realloc(r->page, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	r->page = p;
	r->cap = cap;
	return 0;
}

/* Add a free run; on failure its pages are lost (address space only: they
 * hold no memory). Under lock. */
static void runs_push(struct arena *a, uint32_t page, uint32_t n)
{
	struct arena_runs *r = &a->runs[n];

	if (runs_reserve(r)) {
		a->lost_pages += n;
		return;
	}
	r->page[r->nr++] = page;
	a->free_pages += n;
	a->runs_added = true;
}

/* Keep a merged run of more than ARENA_MAX_RUN pages whole; on failure
 * fall back to pieces. Under lock. */
static void large_push(struct arena *a, uint32_t page, uint32_t len)
{
	struct arena_large *l = &a->large;

	if (l->nr == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 16;
		void *r = realloc(l->run, cap * sizeof(*l->run));

		if (!r) {
			while (len) {
				uint32_t n = len < ARENA_MAX_RUN ? len : ARENA_MAX_RUN;

				runs_push(a, page, n);
				page += n;
				len -= n;
			}
			return;
		}
		l->run = r;
		l->cap = cap;
	}
	l->run[l->nr].page = page;
	l->run[l->nr].len = len;
	l->nr++;
	a->free_pages += len;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/*
 * Merge adjacent free runs, give a free tail back to the bump pointer and
 * file the rest by length (longer than ARENA_MAX_RUN: whole, as a large
 * run). Rare: only when the arena is otherwise exhausted. Under lock.
 */
static void runs_coalesce(struct arena *a)
{
	uint64_t *all;   /* page << 32 | length */
	uint32_t nr = a->large.nr, i, j;

	for (unsigned int n = 1; n <= ARENA_MAX_RUN; n++)
		nr += a->runs[n].nr;
	if (!nr)
		return;
	all = malloc(nr * sizeof(*all));
	if (!all)
		return;
	nr = 0;
	for (unsigned int n = 1; n <= ARENA_MAX_RUN; n++) {
		for (i = 0; i < a->runs[n].nr; i++)
			all[nr++] = (uint64_t)a->runs[n].page[i] << 32 | n;
		a->runs[n].nr = 0;
	}
	for (i = 0; i < a->large.nr; i++)
		all[nr++] = (uint64_t)a->large.run[i].page << 32 |
			    a->large.run[i].len;
	a->large.nr = 0;
	a->free_pages = 0;
	qsort(all, nr, sizeof(*all), cmp_u64);
	for (i = 0; i < nr; i = j) {
		uint32_t start = (uint32_t)(all[i] >> 32);
		uint32_t end = start + (uint32_t)all[i];

		for (j = i + 1; j < nr && (uint32_t)(all[j] >> 32) == end; j++)
			end += (uint32_t)all[j];
		if (end == a->bump)
			a->bump = start;
		else if (end - start > ARENA_MAX_RUN)
			large_push(a, start, end - start);
		else
			runs_push(a, start, end - start);
	}
	free(all);
	a->runs_added = false;
}

/* Carve n pages from the front of a large run. Under lock. */
static int arena_get_large(struct arena *a, uint32_t n, uint32_t *page)
{
	struct arena_large *l = &a->large;
	uint32_t i = l->nr - 1;

	if (!l->nr)
		return -ENOMEM;
	if (l->run[i].len - n <= ARENA_MAX_RUN &&
	    runs_reserve(&a->runs[l->run[i].len - n]))
		return -ENOMEM;
	*page = l->run[i].page;
	l->run[i].page += n;
	l->run[i].len -= n;
	a->free_pages -= n;
	if (l->run[i].len <= ARENA_MAX_RUN) {
		/* Short now: file it with the others. */
		uint32_t len = l->run[i].len, start = l->run[i].page;

		l->nr--;
		a->free_pages -= len;
		if (len)
			runs_push(a, start, len);
	}
	return 0;
}

/* An exact free run or the bump pointer. Under lock. */
static int arena_get_fast(struct arena *a, uint32_t n, uint32_t *page)
{
	struct arena_runs *r = &a->runs[n];

	if (r->nr) {
		*page = r->page[--r->nr];
		a->free_pages -= n;
		return 0;
	}
	if (a->nr_pages - a->bump >= n) {
		*page = a->bump;
		a->bump += n;
		return 0;
	}
	return -ENOMEM;
}

/* Split the shortest longer run. Under lock. */
static int arena_get_split(struct arena *a, uint32_t n, uint32_t *page)
{
	for (uint32_t m = n + 1; m <= ARENA_MAX_RUN; m++) {
		struct arena_runs *longer = &a->runs[m];

		if (!longer->nr || runs_reserve(&a->runs[m - n]))
			continue;
		*page = longer->page[--longer->nr];
		a->free_pages -= m;
		runs_push(a, *page + n, m - n);
		return 0;
	}
	return -ENOMEM;
}

/* A run of n pages from the free runs or the bump pointer. Under lock. */
static int arena_get_locked(struct arena *a, uint32_t n, uint32_t *page)
{
	int ret = arena_get_fast(a, n, page);

	if (ret)
		ret = arena_get_large(a, n, page);
	if (ret && a->runs_added) {
		runs_coalesce(a);
		ret = arena_get_fast(a, n, page);
		if (ret)
			ret = arena_get_large(a, n, page);
	}
	if (ret)
		ret = arena_get_split(a, n, page);
	return ret;
}

int arena_get(struct arena *a, uint32_t n, uint32_t *page)
{
	int ret;

	if (n < 1 || n > ARENA_MAX_RUN)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	ret = arena_get_locked(a, n, page);
	arena_meta_update(a);
	pthread_mutex_unlock(&a->lock);
	return ret;
}

int arena_get_ready(struct arena *a, uint32_t n, uint32_t *page,
		    uint32_t *res)
{
	int ret = 0;

	*res = 0;
	if (n < 1 || n > ARENA_MAX_RUN)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	if (a->ready[n].page) {
		*page = a->ready[n].page;
		*res = a->ready[n].res;
		a->ready[n].page = 0;
		a->ready[n].res = 0;
		__atomic_store_n(&a->reserve, a->reserve - *res,
				 __ATOMIC_RELAXED);
		__atomic_fetch_add(&a->ready_hits, 1, __ATOMIC_RELAXED);
		a->want |= UINT64_C(1) << n;
	} else {
		if (__atomic_load_n(&a->reserve_max, __ATOMIC_RELAXED)) {
			__atomic_fetch_add(&a->ready_misses, 1,
					   __ATOMIC_RELAXED);
			a->want |= UINT64_C(1) << n;
		}
		ret = arena_get_locked(a, n, page);
	}
	arena_meta_update(a);
	pthread_mutex_unlock(&a->lock);
	return ret;
}

/* Make page..page+n (res first pages resident) the ready run of its
 * length if that is free and the reserve has room. Under lock. */
static bool ready_claim(struct arena *a, uint32_t page, uint32_t n,
			uint32_t res)
{
	if (a->ready[n].page || !res ||
	    a->reserve + res > __atomic_load_n(&a->reserve_max,
					       __ATOMIC_RELAXED))
		return false;
	a->ready[n].page = page;
	a->ready[n].res = res;
	__atomic_store_n(&a->reserve, a->reserve + res, __ATOMIC_RELAXED);
	return true;
}

void arena_unget_ready(struct arena *a, uint32_t page, uint32_t n,
		       uint32_t res)
{
	bool kept;

	if (res) {
		pthread_mutex_lock(&a->lock);
		kept = ready_claim(a, page, n, res);
		pthread_mutex_unlock(&a->lock);
		if (kept)
			return;
		arena_put(a, page, n, res);
		return;
	}
	arena_unget(a, page, n);
}

void arena_unget(struct arena *a, uint32_t page, uint32_t n)
{
	pthread_mutex_lock(&a->lock);
	if (page + n == a->bump)
		a->bump = page;
	else
		runs_push(a, page, n);
	arena_meta_update(a);
	pthread_mutex_unlock(&a->lock);
}

int pages_release(int *mode_p, uint64_t *releases, void *addr, size_t len,
		  bool allow_remap)
{
	int mode = __atomic_load_n(mode_p, __ATOMIC_RELAXED);

	if (mode == ARENA_REL_DONTNEED) {
		if (!madvise(addr, len, MADV_DONTNEED))
			goto released;
		if (errno != EINVAL)
			return -errno;
		/* Locked memory (mlockall): try the next method, remember. */
		mode = ARENA_REL_DONTNEED_LOCKED;
		__atomic_store_n(mode_p, mode, __ATOMIC_RELAXED);
	}
	if (mode == ARENA_REL_DONTNEED_LOCKED) {
		if (!madvise(addr, len, MADV_DONTNEED_LOCKED))
			goto released;
		if (errno != EINVAL)
			return -errno;
		mode = ARENA_REL_MMAP;
		__atomic_store_n(mode_p, mode, __ATOMIC_RELAXED);
	}
	if (!allow_remap)
		return -EOPNOTSUPP;
	if (mmap(addr, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		return -errno;
released:
	__atomic_fetch_add(releases, 1, __ATOMIC_RELAXED);
	return 0;
}

int arena_release_locked(struct arena *a, void *addr, size_t len,
			 bool allow_remap)
{
	return pages_release(&a->release_mode, &a->releases, addr, len,
			     allow_remap);
}

void arena_put(struct arena *a, uint32_t page, uint32_t n, uint32_t touched)
{
	uint32_t keep = 0;
	int ret = 0;

	/* Held throughout, even with nothing to release: the caller frees
	 * the span's descriptor after this, and the refill thread reads
	 * descriptors of spans it finds in the page map under it. */
	pthread_mutex_lock(&a->fill_lock);
	/* A ready run for its length, if the reserve has room (a hint read
	 * without the lock; claimed under it below). */
	if (touched && !__atomic_load_n(&a->ready[n].page, __ATOMIC_RELAXED) &&
	    arena_reserve_pages(a) + ARENA_READY_RES <=
	    __atomic_load_n(&a->reserve_max, __ATOMIC_RELAXED))
		keep = touched < ARENA_READY_RES ? touched : ARENA_READY_RES;
	/* What it does not keep goes first: once claimed, the run is
	 * another span's at any moment. */
	if (touched > keep)
		ret = arena_release_locked(a, arena_addr(a, page + keep),
					   (size_t)(touched - keep) <<
					   ARENA_PAGE_SHIFT, true);
	pthread_mutex_lock(&a->lock);
	if (!ret && keep && ready_claim(a, page, n, keep)) {
		pthread_mutex_unlock(&a->lock);
		pthread_mutex_unlock(&a->fill_lock);
		return;
	}
	pthread_mutex_unlock(&a->lock);
	if (!ret && keep)
		ret = arena_release_locked(a, arena_addr(a, page),
					   (size_t)keep << ARENA_PAGE_SHIFT,
					   true);

	pthread_mutex_lock(&a->lock);
	if (ret)
		/* A failed remap may have left a hole: never reuse the run. */
		a->lost_pages += n;
	else
		runs_push(a, page, n);
	arena_meta_update(a);
	pthread_mutex_unlock(&a->lock);
	pthread_mutex_unlock(&a->fill_lock);
}

static int populate_on = 1;  /* atomic: MADV_POPULATE_WRITE works here */

void pages_populate(void *addr, uint32_t n)
{
	if (__atomic_load_n(&populate_on, __ATOMIC_RELAXED) &&
	    madvise(addr, (size_t)n << ARENA_PAGE_SHIFT, MADV_POPULATE_WRITE)) {
		if (errno != EINVAL)
			return;
		__atomic_store_n(&populate_on, 0, __ATOMIC_RELAXED);
	}
	/* A write from user space to each page, changing no byte (the page
	 * may already hold a writer's object): where MADV_POPULATE_WRITE is
	 * missing (Linux < 5.14) it is the fault; and a virtual machine with
	 * shadow page tables traps the first write from user space to a page
	 * even after the kernel populated it (5 us of the 6.5 us a new page
	 * cost on such a host, tests/bench/README.md), so this thread takes
	 * that trap too, not the writer. */
	for (uint32_t i = 0; i < n; i++)
		__atomic_fetch_add((char *)addr + ((size_t)i << ARENA_PAGE_SHIFT),
				   0, __ATOMIC_RELAXED);
}

uint32_t arena_refill(struct arena *a, uint64_t room)
{
	struct { uint32_t page, res; } fill[ARENA_MAX_RUN];
	uint32_t nr = 0, done = 0, max;
	uint64_t want;

	pthread_mutex_lock(&a->fill_lock);
	pthread_mutex_lock(&a->lock);
	want = a->want;
	a->want = 0;
	max = __atomic_load_n(&a->reserve_max, __ATOMIC_RELAXED);
	for (uint32_t n = 1; n <= ARENA_MAX_RUN && want; n++) {
		uint32_t res = n < ARENA_READY_RES ? n : ARENA_READY_RES;
		uint32_t page;

		if (!(want & UINT64_C(1) << n) || a->ready[n].page)
			continue;
		if (a->reserve + res > max || (room && done + res > room))
			break;
		if (arena_get_locked(a, n, &page))
			continue;
		a->ready[n].page = page;
		a->ready[n].res = res;
		__atomic_store_n(&a->reserve, a->reserve + res,
				 __ATOMIC_RELAXED);
		fill[nr].page = page;
		fill[nr++].res = res;
		done += res;
	}
	arena_meta_update(a);
	pthread_mutex_unlock(&a->lock);
	/* Taken, used, freed meanwhile? Its release waits for the fill lock. */
	for (uint32_t i = 0; i < nr; i++)
		pages_populate(arena_addr(a, fill[i].page), fill[i].res);
	pthread_mutex_unlock(&a->fill_lock);
	__atomic_fetch_add(&a->filled, done, __ATOMIC_RELAXED);
	return done;
}

uint32_t arena_drop_reserve(struct arena *a)
{
	struct { uint32_t page, n; int ret; } drop[ARENA_MAX_RUN];
	uint32_t nr = 0, pages = 0;

	if (!arena_reserve_pages(a))
		return 0;
	pthread_mutex_lock(&a->fill_lock);
	pthread_mutex_lock(&a->lock);
	for (uint32_t n = 1; n <= ARENA_MAX_RUN; n++) {
		if (!a->ready[n].page)
			continue;
		drop[nr].page = a->ready[n].page;
		drop[nr].n = n;
		drop[nr++].ret = (int)a->ready[n].res;
		a->ready[n].page = 0;
		a->ready[n].res = 0;
	}
	__atomic_store_n(&a->reserve, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&a->lock);
	for (uint32_t i = 0; i < nr; i++) {
		uint32_t res = (uint32_t)drop[i].ret;

		drop[i].ret = arena_release_locked(a, arena_addr(a, drop[i].page),
						   (size_t)res << ARENA_PAGE_SHIFT,
						   true);
		if (!drop[i].ret)
			pages += res;
	}
	pthread_mutex_unlock(&a->fill_lock);
	pthread_mutex_lock(&a->lock);
	for (uint32_t i = 0; i < nr; i++) {
		if (drop[i].ret)
			a->lost_pages += drop[i].n;
		else
			runs_push(a, drop[i].page, drop[i].n);
	}
	arena_meta_update(a);
	pthread_mutex_unlock(&a->lock);
	return pages;
}

void arena_set_reserve(struct arena *a, uint32_t pages)
{
	__atomic_store_n(&a->reserve_max, pages, __ATOMIC_RELAXED);
	if (arena_reserve_pages(a) > pages)
		arena_drop_reserve(a);
}

/* Recompute meta_bytes after a change of the bump pointer or of a vector's
 * capacity. Under lock. */
static void arena_meta_update(struct arena *a)
{
	uint64_t bytes, map;

	map = (uint64_t)a->bump * sizeof(*a->page_map);
	bytes = (map + ARENA_PAGE_SIZE - 1) & ~(uint64_t)(ARENA_PAGE_SIZE - 1);
	for (unsigned int n = 0; n <= ARENA_MAX_RUN; n++)
		bytes += (uint64_t)a->runs[n].cap * sizeof(uint32_t);
	bytes += (uint64_t)a->large.cap * sizeof(*a->large.run);
	__atomic_store_n(&a->meta_bytes, bytes, __ATOMIC_RELAXED);
}

uint64_t arena_meta_bytes(struct arena *a)
{
	return __atomic_load_n(&a->meta_bytes, __ATOMIC_RELAXED);
}

bool arena_is_valid(struct arena *a, const char **why)
{
	uint64_t free_pages = 0;
	const char *bad = NULL;

	pthread_mutex_lock(&a->lock);
	if (a->bump < 1 || a->bump > a->nr_pages)
		bad = "arena: bump outside the reservation";
	for (unsigned int n = 1; n <= ARENA_MAX_RUN && !bad; n++) {
		struct arena_runs *r = &a->runs[n];

		if (r->nr > r->cap)
			bad = "arena: run vector overflow";
		for (uint32_t i = 0; i < r->nr && !bad; i++) {
			uint32_t p = r->page[i];

			if (p + n > a->bump)
				bad = "arena: free run above the bump pointer";
			for (uint32_t k = 0; k < n && !bad; k++)
				if (a->page_map[p + k])
					bad = "arena: free run overlaps a span";
		}
		free_pages += (uint64_t)r->nr * n;
	}
	for (uint32_t i = 0; i < a->large.nr && !bad; i++) {
		uint32_t p = a->large.run[i].page, n = a->large.run[i].len;

		if (n <= ARENA_MAX_RUN || p + n > a->bump)
			bad = "arena: bad large free run";
		for (uint32_t k = 0; k < n && !bad; k++)
			if (a->page_map[p + k])
				bad = "arena: free run overlaps a span";
		free_pages += n;
	}
	{
		uint32_t reserve = 0;

		for (uint32_t n = 1; n <= ARENA_MAX_RUN && !bad; n++) {
			uint32_t p = a->ready[n].page;

			if (!p) {
				if (a->ready[n].res)
					bad = "arena: resident pages without a ready run";
				continue;
			}
			reserve += a->ready[n].res;
			if (p + n > a->bump || a->ready[n].res > n ||
			    a->ready[n].res > ARENA_READY_RES)
				bad = "arena: bad ready run";
			for (uint32_t k = 0; k < n && !bad; k++)
				if (a->page_map[p + k])
					bad = "arena: ready run overlaps a span";
		}
		if (!bad && reserve != a->reserve)
			bad = "arena: reserve != sum of ready runs' resident pages";
	}
	if (a->runs[0].nr)
		bad = "arena: free run of length 0";
	if (!bad && free_pages != a->free_pages)
		bad = "arena: free_pages != sum of free runs";
	pthread_mutex_unlock(&a->lock);
	if (bad && why)
		*why = bad;
	return !bad;
}
