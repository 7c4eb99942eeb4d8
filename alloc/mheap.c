// SPDX-License-Identifier: MIT
/*
 * mheap.c - fixed-address memory for metadata (see mheap.h).
 *
 * lock ordering: a class lock, then the heap lock; never two class locks
 * except in mheap_is_valid() (ascending). Both are leaves: nothing else is
 * taken under them, and no system call is made under them.
 */
#include "mheap.h"
#include "arena.h"	/* pages_release() */
#include "atomic.h"
#include "bug.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MH_MIN_BYTES   (16u << 20)
#define NONE16         UINT16_MAX
#define MH_G_GOING     (MH_GROUPS + 2) /* unlinked, being released */


static void *map_reserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t ftab_len(uint32_t frames)
{
	return (size_t)frames * sizeof(struct mh_frame);
}

static size_t fbits_len(uint32_t frames)
{
	return ((size_t)frames + 63) / 64 * sizeof(uint64_t);
}

int mheap_init(struct mheap *h, uint64_t bytes)
{
	uint64_t frames = bytes >> MH_FRAME_SHIFT;
	unsigned int k;

	memset(h, 0, sizeof(*h));
	if (frames > UINT32_MAX / 2)
		frames = UINT32_MAX / 2;
	/* As the pool's arena: halve until the kernel agrees. */
	for (;;) {
		h->base = map_reserve(frames << MH_FRAME_SHIFT);
		if (h->base)
			break;
		if ((frames << MH_FRAME_SHIFT) / 2 < MH_MIN_BYTES)
			return -ENOMEM;
		frames /= 2;
	}
	h->ftab = map_reserve(ftab_len((uint32_t)frames));
	if (!h->ftab)
		goto unmap_base;
	h->fbits = map_reserve(fbits_len((uint32_t)frames));
	if (!h->fbits)
		goto unmap_ftab;
	if (pthread_mutex_init(&h->lock, NULL))
		goto unmap_fbits;
	for (k = 0; k < MH_NR_CLASSES; k++)
		if (pthread_mutex_init(&h->cls[k].lock, NULL))
			goto destroy_locks;
	h->nr_frames = (uint32_t)frames;
	return 0;

destroy_locks:
	while (k--)
		pthread_mutex_destroy(&h->cls[k].lock);
	pthread_mutex_destroy(&h->lock);
unmap_fbits:
	munmap(h->fbits, fbits_len((uint32_t)frames));
unmap_ftab:
	munmap(h->ftab, ftab_len((uint32_t)frames));
unmap_base:
	munmap(h->base, frames << MH_FRAME_SHIFT);
	h->base = NULL;
	return -ENOMEM;
}

void mheap_fini(struct mheap *h)
{
	if (!h->base)
		return;
#ifdef PF_DEBUG
	/* The sanitizers do not see these objects: report leaks here. */
	if (RD(h->live))
		BUG("%llu bytes still allocated at destroy (a leak)",
		    (unsigned long long)RD(h->live));
#endif
	for (unsigned int k = 0; k < MH_NR_CLASSES; k++)
		pthread_mutex_destroy(&h->cls[k].lock);
	pthread_mutex_destroy(&h->lock);
	/* ASan keeps shadow state per address: leave none behind for
	 * whatever is mapped here next. */
	UNPOISON(h->base, (size_t)h->top_max << MH_FRAME_SHIFT);
	munmap(h->fbits, fbits_len(h->nr_frames));
	munmap(h->ftab, ftab_len(h->nr_frames));
	munmap(h->base, (size_t)h->nr_frames << MH_FRAME_SHIFT);
	memset(h, 0, sizeof(*h));
}

/* ------------------------------------------------------------ geometry */

/* Slab length for objects of s bytes: the shortest whose unusable tail is
 * at most 1/32 of it, else the one wasting the smallest share. */
static void class_setup(struct mh_class *c, uint32_t k)
{
	uint32_t s = (k + 1) * MH_STEP, best = 0;
	uint64_t best_waste = 0, best_bytes = 1;

	for (uint32_t n = 1; n <= MH_FRAME_PAGES; n++) {
		uint32_t bytes = n * MH_PAGE_SIZE, waste;

		if (bytes < s)
			continue;
		waste = bytes % s;
		if ((uint64_t)waste * 32 <= bytes) {
			best = n;
			break;
		}
		if (!best || (uint64_t)waste * best_bytes < best_waste * bytes) {
			best = n;
			best_waste = waste;
			best_bytes = bytes;
		}
	}
	c->size = s;
	c->pages = (uint16_t)best;
	c->objs = (uint16_t)(best * MH_PAGE_SIZE / s);
}

static struct mh_class *class_get(struct mheap *h, uint32_t k)
{
	struct mh_class *c = &h->cls[k];

	if (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&c->lock);
		if (!c->ready) {
			class_setup(c, k);
			__atomic_store_n(&c->ready, true, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&c->lock);
	}
	return c;
}

static inline char *frame_addr(const struct mheap *h, uint32_t f)
{
	return h->base + ((size_t)f << MH_FRAME_SHIFT);
}

static inline uint32_t pages_for(const struct mh_class *c, uint32_t objs)
{
	return ((uint64_t)objs * c->size + MH_PAGE_SIZE - 1) >> MH_PAGE_SHIFT;
}

static inline unsigned int mh_group(const struct mh_class *c, uint32_t inuse)
{
	return inuse == c->objs ? MH_G_FULL : inuse * MH_GROUPS / c->objs;
}

/* ---------------------------------------------------- lists (class lock) */

static void list_add(struct mheap *h, struct mh_class *c, uint32_t f,
		     unsigned int g)
{
	struct mh_frame *fr = &h->ftab[f];

	fr->group = (uint8_t)g;
	fr->prev = 0;
	fr->next = c->head[g];
	if (fr->next)
		h->ftab[fr->next - 1].prev = f + 1;
	c->head[g] = f + 1;
}

static void list_del(struct mheap *h, struct mh_class *c, uint32_t f)
{
	struct mh_frame *fr = &h->ftab[f];

	if (fr->prev)
		h->ftab[fr->prev - 1].next = fr->next;
	else
		c->head[fr->group] = fr->next;
	if (fr->next)
		h->ftab[fr->next - 1].prev = fr->prev;
	fr->prev = fr->next = 0;
}

/* ------------------------------------------------- frames (heap lock) */

static inline bool bit_free(const struct mheap *h, uint32_t f)
{
	return h->fbits[f / 64] >> (f % 64) & 1;
}

/* Touched bytes of the frame table and bitmap for frames [0, top). */
static uint64_t table_bytes_for(uint32_t top)
{
	uint64_t mask = MH_PAGE_SIZE - 1;

	return ((ftab_len(top) + mask) & ~mask) +
	       ((fbits_len(top) + mask) & ~mask);
}

static void table_note_top(struct mheap *h)
{
	if (h->top <= h->top_max)
		return;
	h->top_max = h->top;
	__atomic_store_n(&h->table_bytes, table_bytes_for(h->top_max),
			 __ATOMIC_RELAXED);
}

/* n free frames in a row, the lowest such run, else from top. The
 * descriptors are left as they were (all zero). 0 or -ENOMEM. */
static int frames_get(struct mheap *h, uint32_t n, uint32_t *first)
{
	uint32_t run = 0, start = 0;

	for (uint32_t w = 0; h->free_frames >= n && w * 64 < h->top; w++) {
		uint64_t bits = h->fbits[w];

		if (!bits) {
			run = 0;
			continue;
		}
		for (uint32_t b = 0; b < 64 && w * 64 + b < h->top; b++) {
			uint32_t f = w * 64 + b;

			if (!(bits >> b & 1)) {
				run = 0;
				continue;
			}
			if (!run++)
				start = f;
			if (run < n)
				continue;
			for (f = start; f < start + n; f++)
				h->fbits[f / 64] &= ~(UINT64_C(1) << (f % 64));
			h->free_frames -= n;
			*first = start;
			return 0;
		}
	}
	if (h->nr_frames - h->top < n)
		return -ENOMEM;
	*first = h->top;
	h->top += n;
	table_note_top(h);
	return 0;
}

/* Mark n frames free (their memory already released); lower top past the
 * free frames below it. */
static void frames_put(struct mheap *h, uint32_t first, uint32_t n)
{
	for (uint32_t f = first; f < first + n; f++) {
		memset(&h->ftab[f], 0, sizeof(h->ftab[f]));
		h->fbits[f / 64] |= UINT64_C(1) << (f % 64);
	}
	h->free_frames += n;
	while (h->top && bit_free(h, h->top - 1)) {
		h->top--;
		h->fbits[h->top / 64] &= ~(UINT64_C(1) << (h->top % 64));
		h->free_frames--;
	}
}

/* ------------------------------------------------------------- release */

/* Give an unlinked slab's pages back and free its frame; no lock held. */
static void slab_release(struct mheap *h, uint32_t f)
{
	struct mh_frame *fr = &h->ftab[f];
	uint32_t touched = fr->touched;
	int ret = 0;

	if (touched)
		ret = pages_release(&h->release_mode, &h->releases,
				    frame_addr(h, f),
				    (size_t)touched << MH_PAGE_SHIFT, true);
	pthread_mutex_lock(&h->lock);
	if (ret) {
		/* A failed remap may have left a hole: never reuse it; its
		 * pages stay counted. */
		fr->kind = MH_LOST;
		fr->group = 0;
		ADD(h->lost_frames, 1);
	} else {
		SUB(h->resident, touched);
		frames_put(h, f, 1);
	}
	pthread_mutex_unlock(&h->lock);
}

/* --------------------------------------------------------- debug checks */

/* The slab's own invariants (class lock held); NULL if they hold. */
static const char *slab_check(struct mheap *h, struct mh_class *c,
			      uint32_t f)
{
	struct mh_frame *fr = &h->ftab[f];
	uint32_t nfree = 0;

	if (fr->kind != MH_SLAB || &h->cls[fr->cls] != c)
		return "mheap: slab frame of another kind or class";
	if (fr->bump > c->objs || fr->inuse > fr->bump)
		return "mheap: slab counts out of range";
	if (fr->touched != pages_for(c, fr->bump))
		return "mheap: touched pages do not cover the objects handed out";
	for (uint32_t i = fr->free_head; i != NONE16; nfree++) {
		char *obj;

		if (i >= fr->bump || nfree > fr->bump)
			return "mheap: free list leaves the objects handed out";
		obj = frame_addr(h, f) + (size_t)i * c->size;
		UNPOISON(obj, c->size);
		i = *(uint16_t *)obj;
		POISON(obj, c->size);
	}
	if (fr->inuse + nfree != fr->bump)
		return "mheap: inuse + free != objects handed out";
	if (fr->inuse && fr->group != mh_group(c, fr->inuse))
		return "mheap: slab on the wrong fullness list";
	if (!fr->inuse && fr->group != MH_G_EMPTY && fr->group != MH_G_GOING)
		return "mheap: empty slab left on a list";
	return NULL;
}

#ifdef PF_DEBUG
/* Is object i on the slab's free list? (class lock held) */
static bool on_free_list(struct mheap *h, struct mh_class *c, uint32_t f,
			 uint32_t i)
{
	struct mh_frame *fr = &h->ftab[f];

	for (uint32_t j = fr->free_head, n = 0; j != NONE16 && n <= fr->bump;
	     n++) {
		char *obj = frame_addr(h, f) + (size_t)j * c->size;

		if (j == i)
			return true;
		UNPOISON(obj, c->size);
		j = *(uint16_t *)obj;
		POISON(obj, c->size);
	}
	return false;
}

static void debug_slab(struct mheap *h, struct mh_class *c, uint32_t f,
		       const char *op)
{
	const char *bad = slab_check(h, c, f);

	if (bad)
		BUG("%s: class %u bytes, frame %u: %s", op, c->size, f, bad);
}
#else
#define debug_slab(h, c, f, op) do { } while (0)
#endif

/* --------------------------------------------------------- alloc / free */

static void *large_alloc(struct mheap *h, size_t size, size_t *usable)
{
	uint64_t pages = (size + MH_PAGE_SIZE - 1) >> MH_PAGE_SHIFT;
	uint32_t frames, f;
	int ret;

	if (pages > h->nr_frames * (uint64_t)MH_FRAME_PAGES)
		return NULL;
	frames = (uint32_t)((pages + MH_FRAME_PAGES - 1) / MH_FRAME_PAGES);
	pthread_mutex_lock(&h->lock);
	ret = frames_get(h, frames, &f);
	if (!ret) {
		h->ftab[f].kind = MH_LARGE;
		h->ftab[f].touched = (uint32_t)pages;
		for (uint32_t t = 1; t < frames; t++)
			h->ftab[f + t].kind = MH_TAIL;
		ADD(h->resident, pages);
		ADD(h->live, pages << MH_PAGE_SHIFT);
		ADD(h->large, 1);
	}
	pthread_mutex_unlock(&h->lock);
	if (ret)
		return NULL;
	/* Free frames hold no memory: the pages read as zeros. */
	UNPOISON(frame_addr(h, f), pages << MH_PAGE_SHIFT);
	*usable = pages << MH_PAGE_SHIFT;
	return frame_addr(h, f);
}

static size_t large_free(struct mheap *h, uint32_t f)
{
	uint32_t pages = h->ftab[f].touched;
	uint32_t frames = (pages + MH_FRAME_PAGES - 1) / MH_FRAME_PAGES;
	size_t bytes = (size_t)pages << MH_PAGE_SHIFT;
	int ret;

	POISON(frame_addr(h, f), bytes);
	ret = pages_release(&h->release_mode, &h->releases, frame_addr(h, f),
			    bytes, true);
	pthread_mutex_lock(&h->lock);
	if (ret) {
		for (uint32_t t = 0; t < frames; t++)
			h->ftab[f + t].kind = MH_LOST;
		ADD(h->lost_frames, frames);
	} else {
		SUB(h->resident, pages);
		frames_put(h, f, frames);
	}
	/* Under the lock with the frames, for mheap_is_valid(). */
	SUB(h->live, bytes);
	SUB(h->large, 1);
	pthread_mutex_unlock(&h->lock);
	return bytes;
}

void *mheap_alloc(struct mheap *h, size_t size, bool zero, size_t *usable)
{
	struct mh_class *c;
	struct mh_frame *fr;
	uint32_t f, i;
	bool dirty;
	char *obj;

	if (!size || !h->base)
		return NULL;
	if (size > MH_SMALL_MAX)
		return large_alloc(h, size, usable);
	c = class_get(h, (uint32_t)((size + MH_STEP - 1) / MH_STEP - 1));
	pthread_mutex_lock(&c->lock);
	f = 0;
	for (unsigned int g = MH_GROUPS; g-- > 0 && !f;)
		f = c->head[g];
	if (f) {
		f--;
		list_del(h, c, f);
	} else if (c->empty) {
		f = c->empty - 1;
		c->empty = 0;
		SUB(h->cached, h->ftab[f].touched);
	} else {
		int ret;

		pthread_mutex_lock(&h->lock);
		ret = frames_get(h, 1, &f);
		if (!ret) {
			fr = &h->ftab[f];
			fr->kind = MH_SLAB;
			fr->cls = (uint16_t)(c - h->cls);
			fr->free_head = NONE16;
		}
		pthread_mutex_unlock(&h->lock);
		if (ret) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		c->slabs++;
		POISON(frame_addr(h, f), (size_t)c->pages << MH_PAGE_SHIFT);
	}
	fr = &h->ftab[f];
	if (fr->free_head != NONE16) {
		i = fr->free_head;
		obj = frame_addr(h, f) + (size_t)i * c->size;
		UNPOISON(obj, c->size);
		fr->free_head = *(uint16_t *)obj;
		dirty = true;
	} else {
		uint32_t pages;

		i = fr->bump++;
		obj = frame_addr(h, f) + (size_t)i * c->size;
		UNPOISON(obj, c->size);
		pages = pages_for(c, fr->bump);
		if (pages > fr->touched) {
			ADD(h->resident, pages - fr->touched);
			fr->touched = pages;
		}
		dirty = false;	/* never handed out: still zero */
	}
	fr->inuse++;
	c->inuse++;
	list_add(h, c, f, mh_group(c, fr->inuse));
	ADD(h->live, c->size);
	debug_slab(h, c, f, "alloc");
	pthread_mutex_unlock(&c->lock);
	if (zero && dirty)
		memset(obj, 0, size);
	*usable = c->size;
	return obj;
}

size_t mheap_free(struct mheap *h, void *p)
{
	size_t off = (size_t)((char *)p - h->base);
	uint32_t f = (uint32_t)(off >> MH_FRAME_SHIFT), i;
	struct mh_frame *fr = &h->ftab[f];
	struct mh_class *c;
	bool release = false;

#ifdef PF_DEBUG
	if (!mheap_owns(h, p) ||
	    (fr->kind != MH_SLAB && fr->kind != MH_LARGE) ||
	    (fr->kind == MH_LARGE && (off & (MH_FRAME_SIZE - 1))))
		BUG("free of %p: not a live object", p);
#endif
	if (fr->kind == MH_LARGE)
		return large_free(h, f);
	c = &h->cls[fr->cls];
	off &= MH_FRAME_SIZE - 1;
	i = (uint32_t)(off / c->size);
	pthread_mutex_lock(&c->lock);
#ifdef PF_DEBUG
	if (off % c->size || i >= fr->bump || on_free_list(h, c, f, i))
		BUG("free of %p (class %u bytes): not a live object "
		    "(double free?)", p, c->size);
#endif
	*(uint16_t *)p = fr->free_head;
	fr->free_head = (uint16_t)i;
	POISON(p, c->size);
	fr->inuse--;
	c->inuse--;
	SUB(h->live, c->size);
	list_del(h, c, f);
	if (fr->inuse) {
		list_add(h, c, f, mh_group(c, fr->inuse));
	} else if (!c->empty &&
		   ADD(h->cached, fr->touched) <= MH_CACHE_PAGES) {
		/* Keep one empty slab for the class's next allocation. */
		fr->group = MH_G_EMPTY;
		c->empty = f + 1;
	} else {
		if (!c->empty)
			SUB(h->cached, fr->touched);
		fr->group = MH_G_GOING;
		c->slabs--;
		release = true;
	}
	debug_slab(h, c, f, "free");
	pthread_mutex_unlock(&c->lock);
	if (release)
		slab_release(h, f);
	return c->size;
}

size_t mheap_usable(struct mheap *h, const void *p)
{
	size_t off = (size_t)((const char *)p - h->base);
	struct mh_frame *fr = &h->ftab[off >> MH_FRAME_SHIFT];

	if (fr->kind == MH_LARGE)
		return (size_t)fr->touched << MH_PAGE_SHIFT;
	return h->cls[fr->cls].size;
}

/* Table bytes that taking n frames would add (heap lock held). */
static uint64_t table_growth(struct mheap *h, uint32_t n)
{
	if (h->free_frames >= n || h->top + n <= h->top_max)
		return 0;	/* (a free run may not exist; close enough) */
	return table_bytes_for(h->top + n) - table_bytes_for(h->top_max);
}

uint64_t mheap_cost(struct mheap *h, size_t size)
{
	struct mh_class *c;
	uint64_t pages, table;
	uint32_t f;

	if (!size || !h->base)
		return 0;
	if (size > MH_SMALL_MAX) {
		pages = (size + MH_PAGE_SIZE - 1) >> MH_PAGE_SHIFT;
		pthread_mutex_lock(&h->lock);
		table = table_growth(h, (uint32_t)((pages + MH_FRAME_PAGES - 1) /
						   MH_FRAME_PAGES));
		pthread_mutex_unlock(&h->lock);
		return (pages << MH_PAGE_SHIFT) + table;
	}
	c = class_get(h, (uint32_t)((size + MH_STEP - 1) / MH_STEP - 1));
	pthread_mutex_lock(&c->lock);
	f = 0;
	for (unsigned int g = MH_GROUPS; g-- > 0 && !f;)
		f = c->head[g];
	if (!f)
		f = c->empty;
	if (f) {
		struct mh_frame *fr = &h->ftab[f - 1];

		pages = fr->free_head != NONE16 ? 0 :
			pages_for(c, fr->bump + 1) - fr->touched;
		table = 0;
	} else {
		pages = pages_for(c, 1);
		pthread_mutex_lock(&h->lock);
		table = table_growth(h, 1);
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return (pages << MH_PAGE_SHIFT) + table;
}

uint64_t mheap_trim(struct mheap *h)
{
	uint64_t pages = 0;

	for (unsigned int k = 0; k < MH_NR_CLASSES; k++) {
		struct mh_class *c = &h->cls[k];
		uint32_t f = 0;

		if (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE) ||
		    !RD(c->empty))
			continue;
		pthread_mutex_lock(&c->lock);
		if (c->empty) {
			f = c->empty;
			c->empty = 0;
			c->slabs--;
			h->ftab[f - 1].group = MH_G_GOING;
			SUB(h->cached, h->ftab[f - 1].touched);
			pages += h->ftab[f - 1].touched;
		}
		pthread_mutex_unlock(&c->lock);
		if (f)
			slab_release(h, f - 1);
	}
	return pages;
}

/* ---------------------------------------------------------------- stats */

uint64_t mheap_resident_bytes(struct mheap *h)
{
	return (RD(h->resident) << MH_PAGE_SHIFT) + RD(h->table_bytes);
}

uint64_t mheap_live_bytes(struct mheap *h)
{
	return RD(h->live);
}

void mheap_get_stats(struct mheap *h, struct mheap_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned int k = 0; k < MH_NR_CLASSES; k++) {
		struct mh_class *c = &h->cls[k];

		if (!__atomic_load_n(&c->ready, __ATOMIC_ACQUIRE))
			continue;
		pthread_mutex_lock(&c->lock);
		st->slabs += c->slabs;
		st->objs += c->inuse;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&h->lock);
	st->frames_used = h->top - h->free_frames;
	pthread_mutex_unlock(&h->lock);
	st->resident_bytes = mheap_resident_bytes(h);
	st->live_bytes = mheap_live_bytes(h);
	st->table_bytes = RD(h->table_bytes);
	st->cached_bytes = RD(h->cached) << MH_PAGE_SHIFT;
	st->large = RD(h->large);
	st->releases = RD(h->releases);
	st->lost_frames = RD(h->lost_frames);
}

/* ---------------------------------------------------------------- check */

/* One class's lists (its lock held): counts into *slabs, *inuse, *cached. */
static const char *class_check(struct mheap *h, struct mh_class *c,
			       uint64_t *live, uint64_t *cached)
{
	uint64_t slabs = 0, inuse = 0;
	const char *bad;

	for (unsigned int g = 0; g <= MH_G_FULL; g++) {
		uint32_t prev = 0;

		for (uint32_t l = c->head[g]; l; l = h->ftab[l - 1].next) {
			struct mh_frame *fr = &h->ftab[l - 1];

			if (l - 1 >= h->top || slabs > h->top)
				return "mheap: list leaves the frames in use";
			if (fr->prev != prev)
				return "mheap: broken list links";
			bad = slab_check(h, c, l - 1);
			if (bad)
				return bad;
			if (fr->group != g || !fr->inuse)
				return "mheap: slab on the wrong list";
			slabs++;
			inuse += fr->inuse;
			prev = l;
		}
	}
	if (c->empty) {
		struct mh_frame *fr = &h->ftab[c->empty - 1];

		bad = slab_check(h, c, c->empty - 1);
		if (bad)
			return bad;
		if (fr->inuse || fr->group != MH_G_EMPTY)
			return "mheap: cached slab not empty";
		slabs++;
		*cached += fr->touched;
	}
	if (slabs != c->slabs || inuse != c->inuse)
		return "mheap: class counts disagree with its slabs";
	*live += inuse * c->size;
	return NULL;
}

bool mheap_is_valid(struct mheap *h, const char **why)
{
	uint64_t live = 0, cached = 0, resident = 0, slabs = 0, listed = 0;
	uint64_t large = 0;
	uint32_t nfree = 0;
	const char *bad = NULL;
	unsigned int k;

	if (!h->base)
		return true;
	for (k = 0; k < MH_NR_CLASSES; k++)
		pthread_mutex_lock(&h->cls[k].lock);
	pthread_mutex_lock(&h->lock);
	for (k = 0; k < MH_NR_CLASSES && !bad; k++) {
		struct mh_class *c = &h->cls[k];

		if (!c->ready) {
			if (c->slabs || c->inuse)
				bad = "mheap: class in use before its setup";
			continue;
		}
		bad = class_check(h, c, &live, &cached);
		listed += c->slabs;
	}
	if (h->top > h->nr_frames || h->top_max < h->top)
		bad = bad ? bad : "mheap: top out of range";
	for (uint32_t f = 0; f < h->top && !bad; f++) {
		struct mh_frame *fr = &h->ftab[f];

		if (bit_free(h, f) != (fr->kind == MH_FREE))
			bad = "mheap: free bit disagrees with the frame";
		switch (fr->kind) {
		case MH_FREE:
			nfree++;
			break;
		case MH_SLAB:
			resident += fr->touched;
			/* Off the lists only while being released, empty. */
			if (fr->group != MH_G_GOING)
				slabs++;
			else if (fr->inuse)
				bad = "mheap: slab released with live objects";
			break;
		case MH_LARGE:
			resident += fr->touched;
			large++;
			live += (uint64_t)fr->touched << MH_PAGE_SHIFT;
			for (uint32_t t = 1;
			     t < (fr->touched + MH_FRAME_PAGES - 1) /
				 MH_FRAME_PAGES && !bad; t++)
				if (f + t >= h->top ||
				    h->ftab[f + t].kind != MH_TAIL)
					bad = "mheap: large allocation's frames";
			break;
		case MH_TAIL:
			break;
		case MH_LOST:
			resident += fr->touched;
			break;
		default:
			bad = "mheap: frame of unknown kind";
		}
	}
	for (uint32_t f = h->top; f < h->top + 64 && f < h->nr_frames && !bad;
	     f++)
		if (bit_free(h, f) || h->ftab[f].kind != MH_FREE)
			bad = "mheap: frame above top in use";
	if (!bad && h->top && bit_free(h, h->top - 1))
		bad = "mheap: free frame just below top";
	if (!bad && nfree != h->free_frames)
		bad = "mheap: free_frames != free frames";
	if (!bad && slabs != listed)
		bad = "mheap: slab frames != slabs on the class lists";
	if (!bad && resident != RD(h->resident))
		bad = "mheap: resident != pages of slabs and large allocations";
	if (!bad && live != RD(h->live))
		bad = "mheap: live != bytes of live objects";
	if (!bad && cached != RD(h->cached))
		bad = "mheap: cached != pages of the cached empty slabs";
	if (!bad && large != RD(h->large))
		bad = "mheap: large != large allocations";
	pthread_mutex_unlock(&h->lock);
	for (k = MH_NR_CLASSES; k-- > 0;)
		pthread_mutex_unlock(&h->cls[k].lock);
	if (bad && why)
		*why = bad;
	return !bad;
}
