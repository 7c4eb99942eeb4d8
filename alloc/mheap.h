/* SPDX-License-Identifier: MIT */
/*
 * mheap.h - fixed-address memory for metadata (internal to alloc/; the
 * pool's public face for it is pool_meta_alloc() and friends in pool.h).
 *
 * Why not malloc: the daemon runs under mlockall(), and there glibc cannot
 * give freed memory back. Inside its heaps it releases memory with
 * madvise(MADV_DONTNEED) (malloc_trim(), the shrinking of thread arenas),
 * which the kernel refuses on locked pages (EINVAL, ignored by glibc); only
 * the top of the main heap (brk) and chunks above the mmap threshold go
 * back. Measured on the daemon: after 5,047 files (129 MiB) and a 250 MiB
 * file were copied in and deleted, 37 MB of freed metadata stayed resident
 * in the worker threads' arenas while mem_used_total said 0.8 MB, and
 * malloc_trim(0) changed nothing. Here the memory comes from a reservation
 * of our own and goes back with the pool arena's methods
 * (pages_release(): MADV_DONTNEED_LOCKED under mlockall).
 *
 * Layout: one range reserved up front (address space only, MAP_NORESERVE),
 * cut into frames of 128 KiB (32 pages). A frame holds either one slab of a
 * size class - objects of one size packed from the frame's start, crossing
 * page boundaries, in a slab of 1..32 pages chosen per class so that its
 * unusable tail is at most 1/32 where any length allows it - or a large
 * allocation (more than MH_SMALL_MAX bytes: whole pages, in as many
 * consecutive frames as it needs). Each frame's descriptor lives in a frame
 * table (a second reservation, touched as frames come into use), so
 * objects carry no header and a pointer finds its frame by a shift.
 * Frames are taken lowest first, so the range in use stays compact.
 *
 * Size classes: 16, 32, ..., MH_SMALL_MAX bytes (16-byte steps): a request
 * wastes less than 16 bytes to rounding. An object's address is a multiple
 * of the largest power of two dividing its class size (at most 4096): a
 * request whose size is a multiple of 64 gets a 64-byte aligned object.
 *
 * Memory, all of it counted (mheap_resident_bytes()): a slab's pages up to
 * the end of the highest object handed out since the slab was made (its
 * untouched tail costs nothing), a large allocation's pages, and the
 * touched pages of the frame table and frame bitmap. A slab that empties
 * goes back to the OS at once, except that each class keeps one empty slab
 * (all classes together at most MH_CACHE_PAGES pages) for its next
 * allocation, so a class that goes back and forth across a slab boundary
 * does not pay a system call and a page fault each time; mheap_trim()
 * returns those too. Partly used slabs keep their pages: allocation takes
 * the fullest partly used slab of the class first, so holes are refilled
 * before a new slab is started.
 *
 * Threads: one lock per class (its slabs and lists) and one for the frame
 * bitmap; both are leaves (taken in that order, nothing taken inside them),
 * and no system call is made under either: an emptied slab is unlinked
 * under its class lock, released with no lock held, and only then is its
 * frame marked free. A freed object's frame is read without a lock: it
 * cannot change while the object is live.
 */
#ifndef PAGEFOLD_MHEAP_H
#define PAGEFOLD_MHEAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MH_PAGE_SHIFT   12
#define MH_PAGE_SIZE    (1u << MH_PAGE_SHIFT)
#define MH_FRAME_SHIFT  17
#define MH_FRAME_SIZE   (1u << MH_FRAME_SHIFT)
#define MH_FRAME_PAGES  (MH_FRAME_SIZE >> MH_PAGE_SHIFT)
#define MH_STEP         16u
#define MH_SMALL_MAX    8192u
#define MH_NR_CLASSES   (MH_SMALL_MAX / MH_STEP)
#define MH_GROUPS       4u    /* partly used slabs, by quarters of fullness */
#define MH_G_FULL       MH_GROUPS
#define MH_G_EMPTY      (MH_GROUPS + 1) /* the cached empty slab */
#define MH_CACHE_PAGES  64u   /* pages of cached empty slabs, all classes */
#define MH_RESERVE      (UINT64_C(16) << 30) /* default reservation */

enum mh_kind {
	MH_FREE = 0,	/* free frame (below top) or never used */
	MH_SLAB,	/* a slab of a size class */
	MH_LARGE,	/* first frame of a large allocation */
	MH_TAIL,	/* further frame of a large allocation */
	MH_LOST,	/* its release failed: never reused */
};

/*
 * A frame's descriptor (24 bytes, in the frame table). Links are frame
 * numbers + 1 (0 = none), so a zeroed table is all free frames.
 *
 * Invariants of a slab (under its class lock):
 *   inuse + (objects on the free list) == bump <= class objs
 *   touched == pages covering objects [0, bump) (at most the slab's pages)
 *   it is on list group == mh_group(inuse) of its class, or it is the
 *   class's cached empty slab (inuse == 0, group == MH_G_EMPTY)
 * Of a large allocation: touched == its pages, and the next
 * ceil(touched / 32) - 1 frames are MH_TAIL.
 */
struct mh_frame {
	uint32_t prev, next;	/* slab: neighbours on its class list */
	uint8_t kind;		/* enum mh_kind */
	uint8_t group;		/* slab: the list it is on */
	uint16_t cls;		/* slab: class index */
	uint16_t inuse;		/* slab: live objects */
	uint16_t bump;		/* slab: objects [bump, objs) never handed out */
	uint16_t free_head;	/* slab: a freed object below bump, or none */
	uint16_t pad;
	uint32_t touched;	/* pages [0, touched) may hold memory */
};

/* A size class. Zeroed memory is a valid class with no slabs (its
 * geometry is set at first use). */
struct mh_class {
	pthread_mutex_t lock;
	_Atomic bool ready;	/* size, pages, objs are set */
	uint16_t pages;		/* per slab */
	uint16_t objs;		/* per slab */
	uint32_t size;		/* bytes per object */
	uint32_t head[MH_GROUPS + 1]; /* lists: partly used by fullness, full */
	uint32_t empty;		/* the cached empty slab (frame + 1) or 0 */
	uint64_t slabs;		/* slabs of the class (listed or cached) */
	uint64_t inuse;		/* live objects */
};

/*
 * Invariants (under lock):
 *   free_frames == set bits of fbits, all of them below top
 *   top == 0 or frame top - 1 is not free (free frames never touch top)
 *   resident == sum of touched over slabs, large allocations and lost
 *   frames; live <= resident * page size
 */
struct mheap {
	char *base;		/* the reservation: nr_frames frames */
	uint32_t nr_frames;
	struct mh_frame *ftab;	/* nr_frames descriptors (reserved) */
	uint64_t *fbits;	/* bit set: frame free (reserved) */
	pthread_mutex_t lock;	/* fbits, top, free_frames, top_max */
	uint32_t top;		/* frames [top, nr_frames) never handed out */
	uint32_t top_max;	/* highest top so far (table pages touched) */
	uint32_t free_frames;
	uint32_t lost_frames;	/* atomic */
	int release_mode;	/* atomic, for pages_release() */
	uint64_t releases;	/* atomic: successful releases */
	uint64_t resident;	/* atomic: pages counted (see above) */
	uint64_t live;		/* atomic: bytes of live objects (usable) */
	uint64_t cached;	/* atomic: pages of cached empty slabs */
	uint64_t table_bytes;	/* atomic: touched frame table + bitmap */
	uint64_t large;		/* atomic: live large allocations */
	struct mh_class cls[MH_NR_CLASSES];
};

/* Reserve at most bytes of address space (less if the kernel refuses
 * that much; at least 16 MiB). 0 or -ENOMEM. */
int mheap_init(struct mheap *h, uint64_t bytes);
/* Unmap everything; every object becomes invalid. */
void mheap_fini(struct mheap *h);

/*
 * An object of size bytes (1 or more), zeroed when zero is set; its usable
 * bytes (class size, or whole pages) go to *usable. NULL when the
 * reservation is used up or size is 0.
 */
void *mheap_alloc(struct mheap *h, size_t size, bool zero, size_t *usable);
/* Free an object of mheap_alloc(); returns its usable bytes. Debug builds
 * abort on a pointer that is not a live object. */
size_t mheap_free(struct mheap *h, void *p);
/* Usable bytes of a live object. */
size_t mheap_usable(struct mheap *h, const void *p);

static inline bool mheap_owns(const struct mheap *h, const void *p)
{
	return h->base && (const char *)p >= h->base &&
	       (const char *)p < h->base + ((size_t)h->nr_frames << MH_FRAME_SHIFT);
}

/* Whether the heap has its reservation (else every mheap_alloc() fails). */
static inline bool mheap_active(const struct mheap *h)
{
	return h->base != NULL;
}

/*
 * Bytes mheap_resident_bytes() would grow by if size bytes were allocated
 * now (0 when a freed object in a touched page is there to take; a new
 * slab's first pages, or a large allocation's, plus any frame-table page
 * it would touch). What a memory limit must check before the allocation:
 * the object's usable bytes are part of it, counted by whoever holds the
 * object, the rest is the heap's overhead. Exact while no other thread
 * allocates meanwhile.
 */
uint64_t mheap_cost(struct mheap *h, size_t size);

/* Release the cached empty slabs; returns the pages released. */
uint64_t mheap_trim(struct mheap *h);

/* Bytes of memory held (slabs, large allocations, tables). Lock-free. */
uint64_t mheap_resident_bytes(struct mheap *h);
/* Bytes of live objects, by their usable sizes. Lock-free. */
uint64_t mheap_live_bytes(struct mheap *h);

struct mheap_stats {
	uint64_t resident_bytes; /* mheap_resident_bytes() */
	uint64_t live_bytes;     /* mheap_live_bytes() */
	uint64_t table_bytes;    /* frame table + bitmap, touched */
	uint64_t cached_bytes;   /* cached empty slabs */
	uint64_t slabs;          /* slabs, cached ones included */
	uint64_t large;          /* large allocations */
	uint64_t objs;           /* live small objects */
	uint64_t frames_used;    /* frames below top that are not free */
	uint64_t releases;       /* successful releases to the OS, ever */
	uint64_t lost_frames;    /* frames whose release failed */
};
/* Takes every class lock in turn. */
void mheap_get_stats(struct mheap *h, struct mheap_stats *st);

/* Check the invariants above and every slab's free list; false and a
 * reason in *why if broken. Takes the class locks one at a time, then the
 * heap lock. */
bool mheap_is_valid(struct mheap *h, const char **why);

#endif /* PAGEFOLD_MHEAP_H */
