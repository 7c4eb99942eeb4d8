// SPDX-License-Identifier: MIT
/*
 * pool.c - size classes, shards, spans, handle tables and compaction.
 *
 * A class is split into NR_SHARDS shards, each with its own lock, spans,
 * counters and list of free handle indices; a thread allocates in the shard
 * it was dealt (my_shard()), so threads on different CPUs share no lock and no
 * cache line on the alloc/free path (one lock shared by all CPUs made two
 * threads run at a third of one thread's speed). The handle table belongs
 * to the class: a handle does not say which shard holds its object, the
 * page map does (the owning shard is kept in the low bits of the span
 * pointer), and compaction moves objects between the shards of a class.
 *
 * A shard sorts its spans into fullness groups: 16 groups for partly used
 * spans (group g holds spans with g/16 <= inuse/objs < (g+1)/16), one for
 * full spans and one holding at most one empty span kept for reuse.
 * Allocation takes the head of the fullest non-empty partial group, then the
 * cached empty span, then a new span. Compaction moves objects out of the
 * emptiest span of the class into the fullest, whichever shards they are in.
 *
 * Inside a span, slots [0, bump) have been handed out since the span was
 * last reset; freed slots among them form a list threaded through their
 * back-reference words, and a new object takes a freed slot first, slot bump
 * otherwise. Pages [0, resident) of a span may hold memory; pages from
 * resident on were never touched (or were released) and cost nothing.
 *
 * Handle = (index + 1) << 8 | class id, so handles are never 0. A class's
 * handle table is a fixed directory of HT_CHUNKS chunks of growing size
 * (chunk k holds 256 << k entries, created on first use: the two below a
 * page from malloc, so a class with few objects costs 1 or 3 KiB of table,
 * not a page; the others mapped), so an entry never
 * moves and pool_unmap() can read it without a lock. An entry holds the
 * object's location (arena offset / 16, 0 < location < LOC_MAX: the arena
 * never hands out its page 0), 0 if the index was never used, or for a free
 * index HT_FREE | next free index. Shards take never-used indices from the class
 * in blocks of HT_BLOCK, and keep the indices freed in them on their own
 * list.
 *
 * Who may change what: a span, its slots and the handle entries of its live
 * objects (guests included) change only under the lock of the span's shard
 * (or all the class's shard locks: compaction); a shard's free-index list
 * under its lock. To find an object, obj_lock() reads the entry and the
 * page map (span | shard | class id << 56) without a lock, locks the shard
 * they name and checks that both still say the same.
 *
 * lock ordering: shard locks of a class in ascending order (only compaction
 * and pool_is_valid() hold more than one; pool_is_valid() takes the classes
 * in ascending order too, and class_pack_up() a class's locks before those
 * of a larger class) -> class ht_lock -> arena fill lock -> arena lock.
 * The refill ring's lock is taken under a shard lock with a trylock only;
 * the refill thread takes the fill lock (then the arena lock) and never
 * a shard lock. A free of a guest
 * (an object moved into a larger class) holds only the lock of the shard
 * it lives in and gives its index back through the home class's lock-free
 * remote list. Spans emptied
 * under a shard lock are unlinked there and returned to the arena (a system
 * call) after the lock is dropped.
 */
#include "pool.h"
#include "arena.h"
#include "atomic.h"
#include "mheap.h"
#include "bg.h"
#include "bug.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#define PAGE_SHIFT      ARENA_PAGE_SHIFT
#define PAGE_SIZE       ARENA_PAGE_SIZE
#define MIN_CLASS       32u
#define CLASS_STEP      16u
#define NR_STEPS        ((POOL_MAX_OBJ - MIN_CLASS) / CLASS_STEP + 1)  /* 255 */

#define NR_SHARDS       4u    /* power of 2, at most 64 (page map tag bits) */
#define SHARD_MASK      ((uintptr_t)NR_SHARDS - 1)
#define TAG_CLS_SHIFT   56    /* page map: class id in the top byte */
#define TAG_PTR_MASK    (((uintptr_t)1 << TAG_CLS_SHIFT) - 1 - SHARD_MASK)

#define NR_PARTIAL      16u
#define G_FULL          NR_PARTIAL
#define G_EMPTY         (NR_PARTIAL + 1)
#define NR_GROUPS       (NR_PARTIAL + 2)

#define SLOT_NONE       0xffffu
#define BR_FREE         0xff000000u  /* back-ref of a free slot: | next slot */
#define BR_INDEX        0x00ffffffu  /* back-ref of a live slot: handle index */
#define BR_DELTA_SHIFT  24           /* ... and class size - requested size */
#define MAX_DELTA       254u

#define HT_BASE_SHIFT   8
#define HT_BASE         (1u << HT_BASE_SHIFT)
#define HT_CHUNKS       16u
#define HT_SMALL        2u    /* chunks 0, 1 (1, 2 KiB): from the heap */
#define HT_MAX          ((1u << 24) - HT_BASE)   /* indices 0 .. HT_MAX-1 */
#define HT_BLOCK        64u                      /* divides every chunk */
#define HT_FREE         0xff000000u
#define HT_NONE         0x00ffffffu
#define LOC_MAX         0xff000000u

#define COMPACT_BATCH   32u   /* moves per hold of a class's locks */
#define PACK_UP_MAX     256u  /* most objects class_pack_up() moves at once */
#define CHECK_EVERY     1024u /* debug: ops on a shard between full checks */

/*
 * A span descriptor: 32 bytes plus one back-reference word per slot,
 * rounded up to whole cache lines; the alignment (64) leaves the page map
 * 6 low bits, of which it uses 2 for the shard (and the top byte for the
 * class: span_tag()).
 *
 * Invariants (under the lock of its shard):
 *   inuse + (freed slots on the free list) == bump <= objs
 *   pages_for(bump) <= resident <= pages
 *   the span is on list groups[class_group(inuse)] of shard[shard]
 *   backref[i], i < bump: live (handle index | delta << 24, delta <= 254,
 *     and the handle's entry is this slot's location) or BR_FREE | next
 *   page_map[page + k] == this span | shard, for k < pages
 *   pins counts pool_map() calls not yet matched by pool_unmap()
 */
struct span {
	struct span *prev, *next;  /* fullness-group list */
	uint32_t page;             /* first arena page */
	uint16_t pins;             /* atomic */
	uint16_t inuse;            /* live objects */
	uint16_t bump;             /* slots [bump, objs) unused since reset */
	uint16_t free_head;        /* freed slot below bump, or SLOT_NONE */
	uint8_t resident;          /* pages [0, resident) may hold memory */
	uint8_t cls;               /* class id */
	uint8_t shard;             /* owning shard in the class */
	uint32_t backref[];        /* one per slot */
};

/*
 * A shard of a class. Under its lock.
 *
 * Invariants:
 *   nr_spans == spans on all lists; nr_full == spans on groups[G_FULL]
 *   groups[G_EMPTY] holds at most one span
 *   bit g of group_mask set  iff  groups[g] != NULL  (g < NR_PARTIAL)
 *   inuse == sum of span inuse; resident == sum of span resident
 *   live_bytes == sum of requested sizes of the live objects in its spans
 *   the free-index list and [fresh, fresh_end) lie below the class's hwm
 */
struct pool_shard {
	pthread_mutex_t lock;
	uint32_t id;
	uint32_t group_mask;
	struct span *groups[NR_GROUPS];
	uint64_t nr_spans;
	uint64_t nr_full;
	uint64_t inuse;
	uint64_t live_bytes;
	uint64_t resident;         /* pages */
	uint32_t hfree;            /* first free handle index, or HT_NONE */
	uint32_t fresh, fresh_end; /* never-used indices reserved from class */
	uint64_t counters[POOL_C_NR];
#ifdef PF_DEBUG
	uint32_t ops_since_check;
#endif
} __attribute__((aligned(64)));

/*
 * A size class: geometry (constant), the handle table, the shards.
 *
 * The handle table is that of the objects requested in the class's sizes
 * (their home); a full compaction may move the objects of a class's last
 * partly used span into a larger class (a guest there, see class_pack_up()),
 * so entries may point into other classes, never smaller ones. The index of
 * a guest freed in another class goes on the lock-free remote list.
 *
 * Invariants (with every shard locked):
 *   entries pointing into the class's spans == its home objects there, and
 *     each points to a live slot whose back-ref names it
 *   hwm == live entries (home and away) + free entries (shard lists and
 *     the remote list) + fresh range lengths
 *   away == live entries pointing into other classes (frees of guests only
 *     lower it, and only after their index is on the remote list)
 */
struct pool_class {
	uint32_t size;             /* slot bytes, a multiple of 16 */
	uint32_t size16;           /* size / 16: slot stride in location units */
	uint32_t recip;            /* ceil(2^32 / size16): unit offset -> slot */
	uint32_t min_size;         /* smallest request served here */
	uint16_t pages;            /* pages per span */
	uint16_t objs;             /* slots per span */
	uint8_t id;
	pthread_mutex_t ht_lock;   /* creating chunks */
	uint32_t *ht[HT_CHUNKS];   /* atomic pointers */
	uint32_t hwm;              /* atomic: indices [0, hwm) given to shards */
	uint32_t remote;           /* atomic: free indices of guests freed in
				    * other classes (list through the entries),
				    * or HT_NONE */
	uint64_t away;             /* atomic: live objects in other classes */
	struct pool_shard *shard[NR_SHARDS]; /* in the pool's shard tables */
} __attribute__((aligned(64)));

/*
 * Invariants (when no lock is held):
 *   pages == sum of shard resident
 *   pages * PAGE_SIZE <= limit_bytes, unless the limit was lowered
 *   backref_bytes == sum over spans of objs * 4
 *   ht_bytes == sum over classes of ht_bytes(hwm)
 *
 * One block: the pool, its classes, then NR_SHARDS tables of one shard per
 * class. Shard-major, so the shards a thread works in lie together, away
 * from the other threads' (the CPU's prefetchers fetch neighbouring lines
 * too: with the 4 shards of a class side by side, two threads each in its
 * own shard ran at 55-85% of one thread's speed per CPU-second, at 95-100%
 * shard-major, as on two separate pools: tests/bench/bench-pool).
 */
/*
 * The background refill (pool_config.refill): a thread that faults pool
 * pages in ahead of the writers, so a write finds its span's next page
 * resident: the page a growing span keeps ahead of its objects (asked for
 * through ring[] by the thread that grew the span) and the first pages of
 * the ready runs new spans take (arena_refill()). Writers never wait for
 * its work to be done (a page it has not reached yet faults in on first
 * touch as before), but a release of span pages (arena_put()) takes the
 * fill lock, which the thread holds while it populates.
 *
 * Invariants (under lock): tail <= head <= tail + REFILL_RING; sleeping
 * only while the thread waits on cond.
 */
#define REFILL_RING     256u
#ifndef REFILL_POLL_NS
#define REFILL_POLL_NS  10000L   /* idle polls before sleeping ... */
#endif
#define REFILL_POLLS    500u      /* ... 5-10 ms of them */

struct pool_refill {
	struct bg_thread t;        /* t.lock guards the ring and sleeping */
	int sleeping;              /* atomic */
	uint32_t head, tail;
	uint32_t ring[REFILL_RING]; /* arena pages to fault in */
	uint64_t asked;            /* atomic: pages asked for */
	uint64_t filled;           /* atomic: of them, faulted in */
	uint64_t writer_faults;    /* atomic: pages a writer faulted in
				    * itself (nothing ahead had) */
	uint64_t cpu_ns;           /* atomic: the thread's CPU time so far */
};

struct pool {
	struct arena arena;
	struct pool_refill refill;
	struct mheap heap;         /* span descriptors, small handle-table
				    * chunks and the callers' metadata */
	uint64_t limit_bytes;      /* atomic; 0 = none */
	uint64_t pages;            /* atomic: resident span pages */
	uint64_t desc_bytes;       /* atomic: descriptors minus back-refs */
	uint64_t backref_bytes;    /* atomic */
	uint64_t ht_bytes;         /* atomic: sum of ht_bytes(hwm) of classes */
	uint32_t compact_cursor;   /* atomic: class where compaction resumes */
	uint32_t nr_classes;
	uint8_t size_class[POOL_MAX_OBJ / CLASS_STEP + 1]; /* (size+15)/16 -> id */
	struct pool_class cls[];
};

/* Bytes of the block holding the pool, its classes and their shards. */
static size_t pool_struct_bytes(uint32_t nr_classes)
{
	return sizeof(struct pool) + nr_classes * sizeof(struct pool_class) +
	       (size_t)NR_SHARDS * nr_classes * sizeof(struct pool_shard);
}

/* ---------------------------------------------------------------- misuse */

#ifdef PF_DEBUG
#define pool_misuse(op, h) \
	BUG("%s: handle %#x is not live (double free or stale handle)", \
	    op, (unsigned int)(h))
#else
#define pool_misuse(op, h) ((void)(op), (void)(h))
#endif

/* -------------------------------------------------------------- geometry */

/* Bytes of bookkeeping a span of n pages costs besides its back-refs:
 * descriptor, malloc's header and cache-line padding, page map. Used to
 * choose span lengths. */
static uint32_t span_meta_bytes(uint32_t n)
{
	return (uint32_t)sizeof(struct span) + 48 + 8 * n;
}

/* Span length for slot size s: the least waste (unusable tail plus
 * bookkeeping) per span byte; of lengths within 0.05% of the best, the
 * shortest. */
static uint32_t best_span_pages(uint32_t s)
{
	double cost[ARENA_MAX_RUN + 1], best = 1.0;

	for (uint32_t n = 1; n <= ARENA_MAX_RUN; n++) {
		uint32_t bytes = n * PAGE_SIZE;

		cost[n] = (double)(bytes % s + span_meta_bytes(n)) / bytes;
		if (cost[n] < best)
			best = cost[n];
	}
	for (uint32_t n = 1; n <= ARENA_MAX_RUN; n++)
		if (cost[n] <= best + 0.0005)
			return n;
	return 1;
}

struct geom {
	uint32_t size, pages, objs, min_size;
};

/* Classes in ascending size; returns how many. */
static uint32_t classes_plan(struct geom *g, uint8_t *size_class)
{
	struct geom step[NR_STEPS];
	uint32_t nr = 0;

	for (uint32_t i = 0; i < NR_STEPS; i++) {
		uint32_t s = MIN_CLASS + i * CLASS_STEP;

		step[i].size = s;
		step[i].pages = best_span_pages(s);
		step[i].objs = step[i].pages * PAGE_SIZE / s;
	}
	/* From the top down: a step joins the class above it when their spans
	 * are identical and the size difference fits the back-ref's delta. */
	for (int i = NR_STEPS - 1; i >= 0; i--) {
		struct geom *top = nr ? &g[nr - 1] : NULL;
		uint32_t lo = i ? step[i].size - CLASS_STEP + 1 : 1;

		if (top && top->pages == step[i].pages &&
		    top->objs == step[i].objs && top->size - lo <= MAX_DELTA) {
			top->min_size = lo;
			continue;
		}
		g[nr] = step[i];
		g[nr].min_size = lo;
		nr++;
	}
	/* Reverse to ascending order; class id = position. */
	for (uint32_t i = 0; i < nr / 2; i++) {
		struct geom t = g[i];

		g[i] = g[nr - 1 - i];
		g[nr - 1 - i] = t;
	}
	for (uint32_t id = 0, q = 0; q <= POOL_MAX_OBJ / CLASS_STEP; q++) {
		while (g[id].size < q * CLASS_STEP)
			id++;
		size_class[q] = (uint8_t)id;
	}
	return nr;
}

/* ----------------------------------------------------------- small helpers */

static inline struct pool_class *size_to_class(struct pool *p, size_t size)
{
	return &p->cls[p->size_class[(size + CLASS_STEP - 1) / CLASS_STEP]];
}

/*
 * The shard this thread allocates in: threads are dealt shards in turn when
 * they first allocate, and keep theirs. By CPU instead, a thread the
 * scheduler moves around would grow a partly used span (and its tail
 * pages) in every shard it visits; dealt in turn, two threads never share
 * a shard and more threads than shards share evenly.
 */
static unsigned int next_shard;
static _Thread_local unsigned int tls_shard_plus1;

/* The class whose handle table names the object with back-ref br in a
 * live slot of class c: c, unless the object is a guest from a smaller
 * class (its requested size is below c's smallest). */
static inline struct pool_class *br_home(struct pool *p, struct pool_class *c,
					 uint32_t br)
{
	uint32_t req = c->size - (br >> BR_DELTA_SHIFT);

	return req >= c->min_size ? c : size_to_class(p, req);
}

static inline struct pool_shard *my_shard(struct pool_class *c)
{
	if (__builtin_expect(!tls_shard_plus1, 0))
		tls_shard_plus1 = (__atomic_fetch_add(&next_shard, 1,
						      __ATOMIC_RELAXED) &
				   SHARD_MASK) + 1;
	return c->shard[tls_shard_plus1 - 1];
}

static inline uint32_t pages_for_bytes(uint32_t bytes)
{
	return (bytes + PAGE_SIZE - 1) >> PAGE_SHIFT;
}

static inline uint32_t pages_for(const struct pool_class *c, uint32_t slots)
{
	return pages_for_bytes(slots * c->size);
}

static inline unsigned int class_group(const struct pool_class *c,
				       uint32_t inuse)
{
	if (!inuse)
		return G_EMPTY;
	if (inuse == c->objs)
		return G_FULL;
	return inuse * NR_PARTIAL / c->objs;
}

static inline uint32_t span_loc(const struct pool_class *c,
				const struct span *s, uint32_t slot)
{
	return (s->page << (PAGE_SHIFT - 4)) + slot * c->size16;
}

static inline void *loc_addr(const struct pool *p, uint32_t loc)
{
	return p->arena.base + ((size_t)loc << 4);
}

static inline uint32_t loc_slot(const struct pool_class *c,
				const struct span *s, uint32_t loc)
{
	uint32_t units = loc - (s->page << (PAGE_SHIFT - 4));

	return (uint32_t)(((uint64_t)units * c->recip) >> 32);
}

/* The page map entry for a location: span pointer | owning shard. */
static inline uintptr_t loc_tag(const struct pool *p, uint32_t loc)
{
	return (uintptr_t)__atomic_load_n(
		&p->arena.page_map[loc >> (PAGE_SHIFT - 4)], __ATOMIC_RELAXED);
}

static inline struct span *tag_span(uintptr_t tag)
{
	return (struct span *)(tag & TAG_PTR_MASK);
}

static inline unsigned int tag_cls(uintptr_t tag)
{
	return (unsigned int)(tag >> TAG_CLS_SHIFT);
}

/* What the page map holds for the pages of s: the class and shard can be
 * read from it before the span is known to be alive. */
static inline uintptr_t span_tag(const struct span *s)
{
	return (uintptr_t)s | s->shard | (uintptr_t)s->cls << TAG_CLS_SHIFT;
}

static inline bool slot_live(const struct span *s, uint32_t slot)
{
	return s->backref[slot] < BR_FREE;
}

static inline bool span_pinned(const struct span *s)
{
	return __atomic_load_n(&s->pins, __ATOMIC_ACQUIRE) != 0;
}

static void shard_lock(struct pool_shard *sh)
{
	if (pthread_mutex_trylock(&sh->lock)) {
		pthread_mutex_lock(&sh->lock);
		ADD_LOCKED(sh->counters[POOL_C_LOCK_CONTENDED], 1);
	}
	ADD_LOCKED(sh->counters[POOL_C_LOCK_ACQUIRED], 1);
}

static void shard_unlock(struct pool_shard *sh)
{
	pthread_mutex_unlock(&sh->lock);
}

static void class_lock_all(struct pool_class *c)
{
	for (unsigned int k = 0; k < NR_SHARDS; k++)
		shard_lock(c->shard[k]);
}

static void class_unlock_all(struct pool_class *c)
{
	for (unsigned int k = NR_SHARDS; k-- > 0;)
		shard_unlock(c->shard[k]);
}

/* Charge n more resident pages; with enforce, refuse past the limit. */
static int pool_charge(struct pool *p, uint32_t n, bool enforce)
{
	uint64_t limit = RD(p->limit_bytes);
	uint64_t now = __atomic_add_fetch(&p->pages, n, __ATOMIC_RELAXED);

	if (enforce && limit && now * PAGE_SIZE > limit) {
		__atomic_sub_fetch(&p->pages, n, __ATOMIC_RELAXED);
		return -ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------------- metadata memory */

/*
 * The pool's own bookkeeping (span descriptors, the small handle-table
 * chunks) comes from its metadata heap, as its callers' does, so that it
 * goes back to the OS when freed even under mlockall() (mheap.h). Where
 * the heap cannot serve (its reservation used up), malloc does. size must
 * be a multiple of align (a power of two, at most 64).
 */
static void *meta_alloc(struct pool *p, size_t size, size_t align, bool zero)
{
	size_t usable;
	void *m = mheap_alloc(&p->heap, size, zero, &usable);

	if (m)
		return m;
	if (posix_memalign(&m, align < sizeof(void *) ? sizeof(void *) : align,
			   size))
		return NULL;
	if (zero)
		memset(m, 0, size);
	return m;
}

static void meta_free(struct pool *p, void *m)
{
	if (mheap_owns(&p->heap, m))
		mheap_free(&p->heap, m);
	else
		free(m);
}

/* Bytes an object of meta_alloc() takes (malloc's: with its header). */
static size_t meta_size(struct pool *p, const void *m)
{
	if (mheap_owns(&p->heap, m))
		return mheap_usable(&p->heap, m);
	return malloc_usable_size((void *)m) + sizeof(size_t);
}

/* ---------------------------------------------------------- handle table */

static inline unsigned int ht_chunk_of(uint32_t idx)
{
	return 31 - __builtin_clz(idx + HT_BASE) - HT_BASE_SHIFT;
}

static inline uint32_t *ht_entry(struct pool_class *c, uint32_t idx)
{
	unsigned int k = ht_chunk_of(idx);
	uint32_t *chunk = __atomic_load_n(&c->ht[k], __ATOMIC_ACQUIRE);

	return chunk + (idx + HT_BASE - (HT_BASE << k));
}

static inline uint32_t ht_get(struct pool_class *c, uint32_t idx)
{
	return __atomic_load_n(ht_entry(c, idx), __ATOMIC_RELAXED);
}

static inline void ht_set(struct pool_class *c, uint32_t idx, uint32_t v)
{
	__atomic_store_n(ht_entry(c, idx), v, __ATOMIC_RELAXED);
}

static size_t ht_chunk_bytes(unsigned int k)
{
	return ((size_t)HT_BASE << k) * sizeof(uint32_t);
}

/* Memory of a table whose indices [0, hwm) are in use: the small chunks
 * whole (with malloc's header), the mapped ones by the pages touched
 * (indices are handed out from 0 up). */
static uint64_t ht_bytes(uint32_t hwm)
{
	uint64_t bytes = 0;

	for (unsigned int k = 0; hwm; k++) {
		uint32_t n = HT_BASE << k, used = hwm < n ? hwm : n;

		if (k < HT_SMALL)
			bytes += ht_chunk_bytes(k);
		else
			bytes += ((uint64_t)used * sizeof(uint32_t) +
				  PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE;
		hwm -= used;
	}
	return bytes;
}

/* Does sh need a new block of indices (and maybe a new table page)? */
static inline bool ht_needs_block(const struct pool_shard *sh)
{
	return sh->hfree == HT_NONE && sh->fresh >= sh->fresh_end;
}

/* Make sure a free or never-used index is ready in sh, without changing
 * anything the stats show unless it succeeds. 0 or -ENOMEM. */
static int ht_reserve(struct pool *p, struct pool_class *c,
		      struct pool_shard *sh)
{
	if (!ht_needs_block(sh))
		return 0;
	if (RD(c->remote) != HT_NONE) {
		/* Take the whole remote list (pairs with ht_put_remote()). */
		uint32_t head = __atomic_exchange_n(&c->remote, HT_NONE,
						    __ATOMIC_ACQUIRE);

		if (head != HT_NONE) {
			sh->hfree = head;
			return 0;
		}
	}
	for (;;) {
		uint32_t b = __atomic_load_n(&c->hwm, __ATOMIC_ACQUIRE);
		unsigned int k = ht_chunk_of(b);

		if (b + HT_BLOCK > HT_MAX)
			return -ENOMEM;
		if (!__atomic_load_n(&c->ht[k], __ATOMIC_ACQUIRE)) {
			void *chunk;

			pthread_mutex_lock(&c->ht_lock);
			if (!c->ht[k]) {
				if (k < HT_SMALL) {
					chunk = meta_alloc(p, ht_chunk_bytes(k),
							   16, true);
					if (!chunk)
						chunk = MAP_FAILED;
				} else {
					chunk = mmap(NULL, ht_chunk_bytes(k),
						     PROT_READ | PROT_WRITE,
						     MAP_PRIVATE |
						     MAP_ANONYMOUS |
						     MAP_NORESERVE, -1, 0);
				}
				if (chunk == MAP_FAILED) {
					pthread_mutex_unlock(&c->ht_lock);
					return -ENOMEM;
				}
				__atomic_store_n(&c->ht[k], chunk,
						 __ATOMIC_RELEASE);
			}
			pthread_mutex_unlock(&c->ht_lock);
		}
		/* Blocks never straddle chunks: HT_BLOCK divides them all. */
		if (__atomic_compare_exchange_n(&c->hwm, &b, b + HT_BLOCK, false,
						__ATOMIC_RELEASE,
						__ATOMIC_RELAXED)) {
			sh->fresh = b;
			sh->fresh_end = b + HT_BLOCK;
			if (ht_bytes(b + HT_BLOCK) != ht_bytes(b))
				__atomic_add_fetch(&p->ht_bytes,
						   ht_bytes(b + HT_BLOCK) -
						   ht_bytes(b),
						   __ATOMIC_RELAXED);
			return 0;
		}
	}
}

/* After ht_reserve(). */
static uint32_t ht_take(struct pool_class *c, struct pool_shard *sh,
			uint32_t loc)
{
	uint32_t idx = sh->hfree;

	if (idx != HT_NONE)
		sh->hfree = ht_get(c, idx) & HT_NONE;
	else
		idx = sh->fresh++;
	ht_set(c, idx, loc);
	return idx;
}

static void ht_put(struct pool_class *c, struct pool_shard *sh, uint32_t idx)
{
	ht_set(c, idx, HT_FREE | sh->hfree);
	sh->hfree = idx;
}

/* Free the index of a guest (an object living in another class, whose
 * shard lock is held, not one of c's): push it on c's remote list, then
 * count it home. Push-only with take-all (ht_reserve()) has no ABA. */
static void ht_put_remote(struct pool_class *c, uint32_t idx)
{
	uint32_t head = __atomic_load_n(&c->remote, __ATOMIC_RELAXED);

	do
		ht_set(c, idx, HT_FREE | head);
	while (!__atomic_compare_exchange_n(&c->remote, &head, idx, true,
					    __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
	__atomic_sub_fetch(&c->away, 1, __ATOMIC_RELEASE);
}

/* Unmap every chunk; only with all shards locked and no object left, here
 * or away. */
static void ht_reset(struct pool *p, struct pool_class *c)
{
	for (unsigned int k = 0; k < HT_CHUNKS; k++) {
		if (!c->ht[k])
			continue;
		if (k < HT_SMALL)
			meta_free(p, c->ht[k]);
		else
			munmap(c->ht[k], ht_chunk_bytes(k));
		__atomic_store_n(&c->ht[k], NULL, __ATOMIC_RELAXED);
	}
	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		c->shard[k]->hfree = HT_NONE;
		c->shard[k]->fresh = c->shard[k]->fresh_end = 0;
	}
	__atomic_store_n(&c->remote, HT_NONE, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&p->ht_bytes, ht_bytes(RD(c->hwm)), __ATOMIC_RELAXED);
	__atomic_store_n(&c->hwm, 0, __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- refill */

/* Ask the refill thread to fault in arena page page of a span (charged to
 * it already); under the span's shard lock. Dropped if the ring is full
 * or its lock busy: the page then faults in on first touch. */
static void refill_ask(struct pool *p, uint32_t page)
{
	struct pool_refill *r = &p->refill;

	/* Never wait for the refill thread: a busy ring drops the ask. */
	if (pthread_mutex_trylock(&r->t.lock))
		return;
	if (r->head - r->tail < REFILL_RING) {
		r->ring[r->head++ % REFILL_RING] = page;
		__atomic_fetch_add(&r->asked, 1, __ATOMIC_RELAXED);
		if (r->sleeping)
			pthread_cond_signal(&r->t.cond);
	}
	pthread_mutex_unlock(&r->t.lock);
}

/* A ready run was taken or missed (arena want set): wake the thread if it
 * sleeps. Pairs with the fence in refill_main(). */
static void refill_kick(struct pool *p)
{
	struct pool_refill *r = &p->refill;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&r->sleeping, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&r->t.lock);
	pthread_cond_signal(&r->t.cond);
	pthread_mutex_unlock(&r->t.lock);
}

/* Fault in a span page a writer asked for, if it still belongs to a span
 * that counts it: checked, and faulted in, under the arena's fill lock,
 * without which no page of the arena is released (span pages leave the
 * page map before they are released, and a span's resident shrinks only
 * with the release, both under it), and no span descriptor is freed
 * (arena_put() takes it first). No shard lock: an allocating writer never
 * waits for this thread, which runs at the lowest priority (a freeing one
 * may, for the fill lock). */
static void refill_span_page(struct pool *p, uint32_t page)
{
	uintptr_t tag;
	struct span *s;

	pthread_mutex_lock(&p->arena.fill_lock);
	tag = (uintptr_t)__atomic_load_n(&p->arena.page_map[page],
					 __ATOMIC_ACQUIRE);
	s = tag_span(tag);
	if (tag && page >= s->page && page < s->page + RD(s->resident)) {
		pages_populate(arena_addr(&p->arena, page), 1);
		__atomic_fetch_add(&p->refill.filled, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&p->arena.fill_lock);
}

/* Pages the reserve may still take under the pool's limit (0: no bound). */
static uint64_t refill_room(struct pool *p)
{
	uint64_t limit = RD(p->limit_bytes), used;

	if (!limit)
		return 0;
	used = (RD(p->pages) + arena_reserve_pages(&p->arena)) * PAGE_SIZE;
	return used + PAGE_SIZE * ARENA_READY_RES < limit ?
	       (limit - used) / PAGE_SIZE : UINT64_MAX;
}

static void *refill_main(void *arg)
{
	struct pool *p = arg;
	struct pool_refill *r = &p->refill;
	unsigned int idle = 0;
	uint32_t batch[64];

	/* Polls of tens of microseconds mean that, not the default 50 us of
	 * timer slack on top. */
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	/* Spare CPU only: the writers and everything else come first (with
	 * every CPU busy it does little, and the writers fault their pages
	 * in as they would without it). */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	for (;;) {
		uint32_t n = 0, work = 0;
		uint64_t room;

		pthread_mutex_lock(&r->t.lock);
		if (RD(r->t.stop)) {
			pthread_mutex_unlock(&r->t.lock);
			break;
		}
		while (n < 64 && r->tail != r->head)
			batch[n++] = r->ring[r->tail++ % REFILL_RING];
		pthread_mutex_unlock(&r->t.lock);
		for (uint32_t i = 0; i < n; i++)
			refill_span_page(p, batch[i]);
		work = n;
		room = refill_room(p);
		if (__atomic_load_n(&p->arena.want, __ATOMIC_RELAXED) &&
		    room != UINT64_MAX)
			work += arena_refill(&p->arena, room);
		if (work || !(idle % 64)) {
			struct timespec ts;

			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
			__atomic_store_n(&r->cpu_ns, (uint64_t)ts.tv_sec *
					 1000000000u + (uint64_t)ts.tv_nsec,
					 __ATOMIC_RELAXED);
		}
		if (work) {
			idle = 0;
			continue;
		}
		if (++idle < REFILL_POLLS) {
			struct timespec ts = { 0, REFILL_POLL_NS };

			if (REFILL_POLL_NS)
				nanosleep(&ts, NULL);
			else
				sched_yield();
			continue;
		}
		/* Idle for a while: sleep until a writer asks. */
		pthread_mutex_lock(&r->t.lock);
		__atomic_store_n(&r->sleeping, 1, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (!RD(r->t.stop) && r->tail == r->head &&
		    !__atomic_load_n(&p->arena.want, __ATOMIC_RELAXED))
			pthread_cond_wait(&r->t.cond, &r->t.lock);
		__atomic_store_n(&r->sleeping, 0, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&r->t.lock);
		idle = 0;
	}
	return NULL;
}

/* ----------------------------------------------------------------- spans */

static void group_add(struct pool_shard *sh, struct span *s, unsigned int g)
{
	s->prev = NULL;
	s->next = sh->groups[g];
	if (s->next)
		s->next->prev = s;
	sh->groups[g] = s;
	if (g < NR_PARTIAL)
		sh->group_mask |= 1u << g;
	else if (g == G_FULL)
		ADD_LOCKED(sh->nr_full, 1);
}

static void group_del(struct pool_shard *sh, struct span *s, unsigned int g)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		sh->groups[g] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	if (g < NR_PARTIAL && !sh->groups[g])
		sh->group_mask &= ~(1u << g);
	else if (g == G_FULL)
		ADD_LOCKED(sh->nr_full, -1);
}

/* s->inuse changed from old: move it to its new group. */
static void span_regroup(struct pool_class *c, struct pool_shard *sh,
			 struct span *s, uint32_t old)
{
	unsigned int og = class_group(c, old), ng = class_group(c, s->inuse);

	if (og != ng) {
		group_del(sh, s, og);
		group_add(sh, s, ng);
	}
}

static size_t span_alloc_bytes(const struct pool_class *c)
{
	return (sizeof(struct span) + c->objs * sizeof(uint32_t) + 63) &
	       ~(size_t)63;
}

static int span_fits(struct pool *p, struct pool_class *c,
		     struct pool_shard *sh, uint64_t max_mem, uint32_t res);

/* A new span, not yet linked into its shard. 0, -ENOMEM, or -ENOSPC when
 * max_mem (0: none) would be passed by a first object in it. */
static int span_create(struct pool *p, struct pool_class *c,
		       struct pool_shard *sh, uint64_t max_mem,
		       struct span **sp)
{
	struct span *s;
	uint32_t page, res;
	int ret;

	ret = arena_get_ready(&p->arena, c->pages, &page, &res);
	if (p->refill.t.running)
		refill_kick(p);
	if (ret)
		return ret;
	/* Refuse before the descriptor exists: freed again, it would leave
	 * its slab page in the metadata heap, and a refusal must leave the
	 * pool's memory as it was. (The arena's part is undone exactly.) */
	ret = span_fits(p, c, sh, max_mem, res);
	if (ret) {
		arena_unget_ready(&p->arena, page, c->pages, res);
		return ret;
	}
	/* Whole cache lines: spans of different shards must not share one
	 * (that alone cost two threads 40% of their speed). */
	s = meta_alloc(p, span_alloc_bytes(c), 64, false);
	if (s && ((uintptr_t)s >> TAG_CLS_SHIFT)) {
		/* The page map keeps the class in the top byte. */
		meta_free(p, s);
		s = NULL;
	}
	if (!s) {
		arena_unget_ready(&p->arena, page, c->pages, res);
		return -ENOMEM;
	}
	s->prev = s->next = NULL;
	s->page = page;
	s->pins = 0;
	s->inuse = 0;
	s->bump = 0;
	s->free_head = SLOT_NONE;
	/* A ready run's resident first pages: the span's from now on,
	 * counted at span_link(). */
	s->resident = (uint8_t)res;
	s->cls = c->id;
	s->shard = (uint8_t)sh->id;
	*sp = s;
	return 0;
}

static uint64_t span_backref_bytes(const struct pool_class *c)
{
	return (uint64_t)c->objs * sizeof(uint32_t);
}

static uint64_t span_desc_bytes(struct pool *p, const struct pool_class *c,
				struct span *s)
{
	return meta_size(p, s) - span_backref_bytes(c);
}

/* Make a span created by span_create() part of its shard (no group yet). */
static void span_link(struct pool *p, struct pool_class *c,
		      struct pool_shard *sh, struct span *s)
{
	uintptr_t tag = span_tag(s);

	for (uint32_t k = 0; k < c->pages; k++)
		__atomic_store_n(&p->arena.page_map[s->page + k],
				 (struct span *)tag, __ATOMIC_RELAXED);
	if (s->resident) {
		/* From the reserve (which no longer counts them) to the span. */
		ADD_LOCKED(sh->resident, s->resident);
		__atomic_add_fetch(&p->pages, s->resident, __ATOMIC_RELAXED);
	}
	ADD_LOCKED(sh->nr_spans, 1);
	ADD_LOCKED(sh->counters[POOL_C_SPANS_ALLOCATED], 1);
	__atomic_add_fetch(&p->desc_bytes, span_desc_bytes(p, c, s),
			   __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->backref_bytes, span_backref_bytes(c),
			   __ATOMIC_RELAXED);
}

/* Take an empty span (already off its list) out of its shard; the caller
 * returns it with spans_release() once the lock is dropped. */
static void span_unlink(struct pool *p, struct pool_class *c,
			struct pool_shard *sh, struct span *s)
{
	for (uint32_t k = 0; k < c->pages; k++)
		__atomic_store_n(&p->arena.page_map[s->page + k], NULL,
				 __ATOMIC_RELAXED);
	ADD_LOCKED(sh->nr_spans, -1);
	ADD_LOCKED(sh->resident, -(uint64_t)s->resident);
	__atomic_sub_fetch(&p->pages, s->resident, __ATOMIC_RELAXED);
	ADD_LOCKED(sh->counters[POOL_C_SPANS_FREED], 1);
	__atomic_sub_fetch(&p->desc_bytes, span_desc_bytes(p, c, s),
			   __ATOMIC_RELAXED);
	__atomic_sub_fetch(&p->backref_bytes, span_backref_bytes(c),
			   __ATOMIC_RELAXED);
	s->prev = s;  /* marks it unlinked for debug_check() */
}

/* Return unlinked spans (a list through ->next) to the arena and the OS. */
static void spans_release(struct pool *p, struct span *list)
{
	while (list) {
		struct span *s = list;
		struct pool_class *c = &p->cls[s->cls];

		list = s->next;
		arena_put(&p->arena, s->page, c->pages, s->resident);
		meta_free(p, s);
	}
}

/* Take slot (s->free_head or s->bump) in s; resident must cover it. */
static void span_take_slot(struct span *s, uint32_t slot)
{
	if (slot == s->free_head)
		s->free_head = (uint16_t)s->backref[slot];
	else
		s->bump++;
}

static void span_put_slot(struct span *s, uint32_t slot)
{
	s->backref[slot] = BR_FREE | s->free_head;
	s->free_head = (uint16_t)slot;
}

/* Grow s->resident to need pages; they were charged by the caller. */
static void span_grow(struct pool_shard *sh, struct span *s, uint32_t need)
{
	ADD_LOCKED(sh->resident, need - s->resident);
	WR(s->resident, (uint8_t)need);  /* read by the refill thread */
}

/* ---------------------------------------------------------------- checks */

static const char *span_check_quick(struct pool *p, struct pool_class *c,
				    struct pool_shard *sh, struct span *s)
{
	unsigned int g = class_group(c, s->inuse);
	uintptr_t tag = span_tag(s);

	if (s->cls != c->id || s->shard != sh->id)
		return "span: wrong class or shard";
	if (s->inuse > s->bump || s->bump > c->objs)
		return "span: inuse > bump or bump > objs";
	if (s->resident > c->pages || pages_for(c, s->bump) > s->resident)
		return "span: resident does not cover bump";
	if (s->free_head != SLOT_NONE &&
	    (s->free_head >= s->bump || slot_live(s, s->free_head)))
		return "span: bad free head";
	if (s->prev ? s->prev->next != s : sh->groups[g] != s)
		return "span: not on the list of its group";
	if (s->next && s->next->prev != s)
		return "span: broken list link";
	if ((uintptr_t)p->arena.page_map[s->page] != tag ||
	    (uintptr_t)p->arena.page_map[s->page + c->pages - 1] != tag)
		return "span: page map does not point to it";
	return NULL;
}

/* O(bump): every slot, the free list, the back-references. *guests
 * counts the live objects from smaller classes. */
static const char *span_check(struct pool *p, struct pool_class *c,
			      struct pool_shard *sh, struct span *s,
			      uint64_t *live_bytes, uint64_t *guests)
{
	const char *why = span_check_quick(p, c, sh, s);
	uintptr_t tag = span_tag(s);
	uint32_t live = 0, nfree = 0, slot;

	if (why)
		return why;
	for (uint32_t k = 0; k < c->pages; k++)
		if ((uintptr_t)p->arena.page_map[s->page + k] != tag)
			return "span: page map does not point to it";
	for (slot = s->free_head; slot != SLOT_NONE;
	     slot = (uint16_t)s->backref[slot]) {
		if (slot >= s->bump || slot_live(s, slot))
			return "span: free list holds a live or unused slot";
		if (++nfree > s->bump)
			return "span: free list has a cycle";
	}
	for (slot = 0; slot < s->bump; slot++) {
		uint32_t br = s->backref[slot], idx = br & BR_INDEX;
		struct pool_class *hc;

		if (!slot_live(s, slot))
			continue;
		live++;
		if ((br >> BR_DELTA_SHIFT) >= c->size)
			return "span: requested size 0";
		/* A guest's entry, like a home object's, changes only under
		 * the lock of the shard holding it. */
		hc = br_home(p, c, br);
		if (hc->id > c->id)
			return "span: object smaller than its class";
		if (idx >= RD(hc->hwm))
			return "span: back-ref past the handle table";
		if (ht_get(hc, idx) != span_loc(c, s, slot))
			return "span: handle entry does not point back to slot";
		*guests += hc != c;
		*live_bytes += c->size - (br >> BR_DELTA_SHIFT);
	}
	if (live != s->inuse)
		return "span: inuse != live slots";
	if (live + nfree != s->bump)
		return "span: live + free != bump";
	return NULL;
}

static const char *shard_check_counters(struct pool_class *c,
					struct pool_shard *sh)
{
	for (unsigned int g = 0; g < NR_PARTIAL; g++)
		if (!!(sh->group_mask & (1u << g)) != !!sh->groups[g])
			return "shard: group mask out of date";
	if (sh->groups[G_EMPTY] && sh->groups[G_EMPTY]->next)
		return "shard: more than one cached empty span";
	if (sh->nr_full > sh->nr_spans ||
	    sh->inuse > sh->nr_spans * c->objs ||
	    sh->inuse < sh->nr_full * c->objs)
		return "shard: span counters inconsistent";
	if (sh->fresh > sh->fresh_end || sh->fresh_end > RD(c->hwm) ||
	    (sh->hfree != HT_NONE && sh->hfree >= RD(c->hwm)))
		return "shard: handle indices past the table";
	if (sh->resident > sh->nr_spans * c->pages)
		return "shard: resident pages exceed spans";
	return NULL;
}

/* One shard: its spans and its free-index list. Under its lock. *nfree
 * gets the free indices it holds (list + fresh range), *guests the objects
 * from smaller classes in its spans. */
static const char *shard_check(struct pool *p, struct pool_class *c,
			       struct pool_shard *sh, uint32_t *nfree,
			       uint64_t *guests)
{
	uint64_t spans = 0, full = 0, inuse = 0, resident = 0, live = 0;
	uint32_t n = 0, hwm = RD(c->hwm);
	const char *why = shard_check_counters(c, sh);

	if (why)
		return why;
	for (unsigned int g = 0; g < NR_GROUPS; g++) {
		for (struct span *s = sh->groups[g]; s; s = s->next) {
			if (class_group(c, s->inuse) != g)
				return "shard: span in the wrong group";
			why = span_check(p, c, sh, s, &live, guests);
			if (why)
				return why;
			spans++;
			full += g == G_FULL;
			inuse += s->inuse;
			resident += s->resident;
		}
	}
	if (spans != sh->nr_spans || full != sh->nr_full)
		return "shard: span count mismatch";
	if (inuse != sh->inuse)
		return "shard: inuse != sum over spans";
	if (resident != sh->resident)
		return "shard: resident != sum over spans";
	if (live != sh->live_bytes)
		return "shard: live_bytes != sum of requested sizes";
	for (uint32_t idx = sh->hfree; idx != HT_NONE;
	     idx = ht_get(c, idx) & HT_NONE) {
		if (idx >= hwm || ht_get(c, idx) < HT_FREE)
			return "shard: handle free list holds a live entry";
		if (++n > hwm)
			return "shard: handle free list has a cycle";
	}
	for (uint32_t idx = sh->fresh; idx < sh->fresh_end; idx++)
		if (ht_get(c, idx) != 0)
			return "shard: a never-used handle entry was written";
	*nfree = n + (sh->fresh_end - sh->fresh);
	return NULL;
}

/*
 * The whole class, with every shard locked: O(spans * objs + handles).
 * Entries of objects away in larger classes and the remote list may change
 * meanwhile (under those classes' locks): they are counted, not followed.
 */
static const char *class_check(struct pool *p, struct pool_class *c)
{
	uint32_t listed = 0, fresh = 0, zero = 0, nfree = 0, hlive = 0;
	uint32_t away = 0, hwm = RD(c->hwm);
	uint64_t inuse = 0, guests = 0;
	/* Read first: with c's locks held no object can leave home, and a
	 * guest freed meanwhile is off the count only once its entry is free,
	 * so every entry seen away below was counted here. */
	uint64_t counted = __atomic_load_n(&c->away, __ATOMIC_ACQUIRE);
	const char *why;

	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		struct pool_shard *sh = c->shard[k];
		uint32_t n = 0;

		why = shard_check(p, c, sh, &n, &guests);
		if (why)
			return why;
		listed += n - (sh->fresh_end - sh->fresh);
		fresh += sh->fresh_end - sh->fresh;
		inuse += sh->inuse;
	}
	for (uint32_t idx = 0; idx < hwm; idx++) {
		uint32_t loc = ht_get(c, idx), slot;
		uintptr_t tag;
		struct span *s;

		if (!loc) {
			zero++;  /* never used (the arena has no page 0) */
			continue;
		}
		if (loc >= LOC_MAX) {
			nfree++;
			continue;
		}
		tag = loc_tag(p, loc);
		if (!tag || tag_cls(tag) != c->id) {
			away++;
			continue;
		}
		hlive++;
		s = tag_span(tag);
		if (s->cls != c->id || s->shard != (tag & SHARD_MASK))
			return "class: page map does not match the span";
		slot = loc_slot(c, s, loc);
		if ((s->backref[slot] & BR_INDEX) != idx || !slot_live(s, slot))
			return "class: slot does not point back to its handle";
	}
	if (hlive != inuse - guests)
		return "class: live handles != objects at home";
	if (zero != fresh)
		return "class: never-used entries outside the fresh ranges";
	if (listed > nfree)
		return "class: free lists longer than the free entries";
	if (away > counted)
		return "class: more entries away than counted";
	return NULL;
}

#ifdef PF_DEBUG
/* After an operation on shard sh that touched span s (may be NULL): O(1)
 * checks, the full shard check every CHECK_EVERY operations. */
static void debug_check(struct pool *p, struct pool_class *c,
			struct pool_shard *sh, struct span *s, const char *op)
{
	const char *why = shard_check_counters(c, sh);
	uint64_t guests = 0;
	uint32_t n;

	if (!why && s && s->prev != s)  /* s may have been unlinked */
		why = span_check_quick(p, c, sh, s);
	if (!why && ++sh->ops_since_check >= CHECK_EVERY) {
		sh->ops_since_check = 0;
		why = shard_check(p, c, sh, &n, &guests);
	}
	if (why)
		BUG("%s: class %u (%u bytes) shard %u: invariant broken: "
		    "%s", op, c->id, c->size, sh->id, why);
}

/* With every shard of c locked. */
static void debug_check_class(struct pool *p, struct pool_class *c,
			      const char *op)
{
	const char *why = class_check(p, c);

	if (why)
		BUG("%s: class %u (%u bytes): invariant broken: %s", op,
		    c->id, c->size, why);
}
#else
#define debug_check(p, c, sh, s, op) do { } while (0)
#define debug_check_class(p, c, op) do { } while (0)
#endif

/* ------------------------------------------------------ create / destroy */

struct pool *pool_create(const struct pool_config *cfg)
{
	struct geom g[NR_STEPS];
	uint8_t size_class[POOL_MAX_OBJ / CLASS_STEP + 1];
	uint64_t arena_bytes = POOL_ARENA_MAX;
	uint32_t nr = classes_plan(g, size_class), i, k;
	pthread_mutexattr_t attr;
	struct pool *p;

	if (cfg && cfg->arena_bytes && cfg->arena_bytes < arena_bytes)
		arena_bytes = cfg->arena_bytes;
	if (posix_memalign((void **)&p, 64, pool_struct_bytes(nr)))
		return NULL;
	memset(p, 0, pool_struct_bytes(nr));
	if (arena_init(&p->arena, arena_bytes))
		goto free_pool;
	/* Without it (address space refused) metadata comes from malloc. */
	(void)mheap_init(&p->heap, MH_RESERVE);
	p->limit_bytes = cfg ? cfg->limit_bytes : 0;
	if (cfg)
		pool_set_reserve(p, cfg->reserve_bytes);
	p->nr_classes = nr;
	memcpy(p->size_class, size_class, sizeof(size_class));
	/* Critical sections are tens of nanoseconds: spin before sleeping. */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	for (i = 0; i < nr; i++) {
		struct pool_class *c = &p->cls[i];

		c->size = g[i].size;
		c->size16 = g[i].size / 16;
		c->recip = (uint32_t)(((1ull << 32) + c->size16 - 1) / c->size16);
		c->min_size = g[i].min_size;
		c->pages = (uint16_t)g[i].pages;
		c->objs = (uint16_t)g[i].objs;
		c->id = (uint8_t)i;
		c->remote = HT_NONE;
		for (k = 0; k < NR_SHARDS; k++)
			c->shard[k] = (struct pool_shard *)&p->cls[nr] +
				      (size_t)k * nr + i;
		if (pthread_mutex_init(&c->ht_lock, NULL))
			goto destroy_locks;
		for (k = 0; k < NR_SHARDS; k++) {
			c->shard[k]->id = k;
			c->shard[k]->hfree = HT_NONE;
			if (pthread_mutex_init(&c->shard[k]->lock, &attr))
				goto destroy_class_locks;
		}
	}
	pthread_mutexattr_destroy(&attr);
	/* Without the thread (refused), pages fault in on the write path. */
	if (cfg && cfg->refill)
		(void)bg_thread_start(&p->refill.t, refill_main, p);
	return p;

destroy_class_locks:
	while (k--)
		pthread_mutex_destroy(&p->cls[i].shard[k]->lock);
	pthread_mutex_destroy(&p->cls[i].ht_lock);
destroy_locks:
	while (i--) {
		for (k = 0; k < NR_SHARDS; k++)
			pthread_mutex_destroy(&p->cls[i].shard[k]->lock);
		pthread_mutex_destroy(&p->cls[i].ht_lock);
	}
	pthread_mutexattr_destroy(&attr);
	mheap_fini(&p->heap);
	arena_fini(&p->arena);
free_pool:
	free(p);
	return NULL;
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	bg_thread_stop(&p->refill.t);
	for (uint32_t i = 0; i < p->nr_classes; i++) {
		struct pool_class *c = &p->cls[i];

		for (unsigned int k = 0; k < NR_SHARDS; k++) {
			struct pool_shard *sh = c->shard[k];

			for (unsigned int g = 0; g < NR_GROUPS; g++) {
				while (sh->groups[g]) {
					struct span *s = sh->groups[g];

					sh->groups[g] = s->next;
					meta_free(p, s);
				}
			}
			pthread_mutex_destroy(&sh->lock);
		}
		ht_reset(p, c);
		pthread_mutex_destroy(&c->ht_lock);
	}
	mheap_fini(&p->heap);
	arena_fini(&p->arena);
	free(p);
}

/* ------------------------------------------------------------ alloc/free */

/*
 * Pages a span grows by when an object needs a new one: one for the object
 * and one ahead, both faulted in with one system call. Measured with
 * bench-store on real.pages (one writer): 2 pages took writes from ~380 to
 * ~477 MB/s per core, 3 to ~512, at the cost of the pages ahead of each
 * class's growing span: +0.4 MB (0.4%) and +0.8 MB of 105 MB; 2 keeps the
 * store below zram's memory.
 */
#define PREFAULT_PAGES  2u

/*
 * With the refill: how far past its last object's end a growing span's
 * resident pages reach; the page that takes them there is asked for from
 * the refill thread. Half a page keeps as much memory ahead as the window
 * above does without it (the unused part of a growing span is one page
 * on average either way); measured with bench-store on real.pages, a
 * whole page cost +0.5% of memory with one writer and +1.5% through the
 * file system (all 4 shards growing), for no fewer faults: what the
 * refill misses is time without a free CPU, not distance.
 */
#ifndef AHEAD_BYTES
#define AHEAD_BYTES (PAGE_SIZE / 2)
#endif

/* Fault in n span pages starting at arena page page with one system call
 * instead of one fault per page (arena.h: pages_populate()). */
static void prefault(struct pool *p, uint32_t page, uint32_t n)
{
	pages_populate(arena_addr(&p->arena, page), n);
}

/*
 * Would the pool's memory stay within max_mem after an allocation that
 * creates span fresh (already taken from the arena, whose bookkeeping is
 * thus already counted; may be NULL), grows a span by pages and maybe takes
 * a new block of handle indices? 0 or -ENOSPC. Checked before anything is
 * charged, so a refusal leaves nothing behind.
 */
/* What taking a new block of handle indices would add to pool_mem_bytes():
 * the table pages it touches, or a new small chunk's growth of the
 * metadata heap (its own bytes count in ht_bytes, the rest of the slab
 * page in the heap's overhead). */
static uint64_t ht_extra(struct pool *p, struct pool_class *c,
			 struct pool_shard *sh)
{
	uint32_t b;
	unsigned int k;

	if (!ht_needs_block(sh))
		return 0;
	b = __atomic_load_n(&c->hwm, __ATOMIC_RELAXED);
	k = ht_chunk_of(b);
	if (k < HT_SMALL && !__atomic_load_n(&c->ht[k], __ATOMIC_ACQUIRE) &&
	    mheap_active(&p->heap))
		return mheap_cost(&p->heap, ht_chunk_bytes(k));
	return ht_bytes(b + HT_BLOCK) - ht_bytes(b);
}

static int alloc_fits(struct pool *p, struct pool_class *c,
		      struct pool_shard *sh, struct span *fresh,
		      uint32_t pages, uint64_t max_mem)
{
	uint64_t extra = (uint64_t)pages * PAGE_SIZE;

	/* A fresh descriptor's growth of the heap is already in
	 * pool_mem_bytes(), as overhead (resident - live): its own bytes
	 * move from there to desc_bytes and backref_bytes at span_link(). */
	if (fresh)
		extra += span_desc_bytes(p, c, fresh) + span_backref_bytes(c);
	extra += ht_extra(p, c, sh);
	return pool_mem_bytes(p) + extra > max_mem ? -ENOSPC : 0;
}

/*
 * Before a new span's descriptor is allocated: would its first object fit
 * max_mem (as alloc_fits() will check once it exists) and the pool's
 * limit? 0, -ENOSPC (max_mem) or -ENOMEM (limit).
 */
static int span_fits(struct pool *p, struct pool_class *c,
		     struct pool_shard *sh, uint64_t max_mem, uint32_t res)
{
	uint64_t limit = RD(p->limit_bytes), extra;
	uint32_t need = pages_for(c, 1);

	/* Pages of a ready run are in pool_mem_bytes() already. */
	need = need > res ? need - res : 0;
	if (limit && (RD(p->pages) + need) * PAGE_SIZE > limit)
		return -ENOMEM;
	if (!max_mem)
		return 0;
	extra = (uint64_t)need * PAGE_SIZE + ht_extra(p, c, sh);
	if (mheap_active(&p->heap))
		extra += mheap_cost(&p->heap, span_alloc_bytes(c));
	else
		extra += span_alloc_bytes(c) + sizeof(size_t);
	return pool_mem_bytes(p) + extra > max_mem ? -ENOSPC : 0;
}

static int shard_alloc(struct pool *p, struct pool_class *c,
		       struct pool_shard *sh, uint32_t size, uint64_t max_mem,
		       const void *src, pool_handle_t *handle,
		       struct span **touched)
{
	struct span *s, *fresh = NULL;
	uint32_t slot, need = 0, charged = 0, old, idx, loc, ahead, now = 0;
	int ret;

	s = sh->group_mask ? sh->groups[31 - __builtin_clz(sh->group_mask)]
			   : sh->groups[G_EMPTY];
	if (!s) {
		ret = span_create(p, c, sh, max_mem, &fresh);
		if (ret)
			goto fail;
		s = fresh;
	}
	slot = s->free_head != SLOT_NONE ? s->free_head : s->bump;
	if (slot == s->bump)
		need = pages_for(c, slot + 1);
	/* With the refill, a span keeps a whole page ahead of its objects,
	 * asked for from the refill thread the moment an object first
	 * reaches the page before it, so the next object to cross into it
	 * finds it resident. Without, it grows when an object needs a page,
	 * by that page and one ahead, faulted in together. */
	ahead = need;
	if (need && p->refill.t.running) {
		ahead = pages_for_bytes(((slot + 1) * c->size) + AHEAD_BYTES);
		ahead = ahead < c->pages ? ahead : c->pages;
		ahead = ahead > need ? ahead : need;
	}
	if (ahead > s->resident) {
		/* What the object needs whatever the window. */
		uint32_t base = need > s->resident ? need : s->resident;
		uint32_t want = p->refill.t.running ? ahead :
				s->resident + PREFAULT_PAGES;

		want = want > c->pages ? c->pages : want;
		if (want < base)
			want = base;
		if (max_mem && want > base &&
		    alloc_fits(p, c, sh, fresh, want - s->resident, max_mem))
			want = base;
		if (max_mem) {
			ret = alloc_fits(p, c, sh, fresh, base - s->resident,
					 max_mem);
			if (ret)
				goto destroy_fresh;
		}
		ret = want > s->resident ?
		      pool_charge(p, want - s->resident, true) : 0;
		if (ret && want > base) {
			want = base;
			ret = want > s->resident ?
			      pool_charge(p, want - s->resident, true) : 0;
		}
		if (ret)
			goto destroy_fresh;
		charged = want - s->resident;
		now = need > s->resident ? need : s->resident;
		need = want;
	} else if (max_mem) {
		ret = alloc_fits(p, c, sh, fresh, 0, max_mem);
		if (ret)
			goto destroy_fresh;
	}
	ret = ht_reserve(p, c, sh);
	if (ret)
		goto uncharge;
	/* Nothing can fail from here on. */
	if (fresh)
		span_link(p, c, sh, fresh);
	if (charged) {
		uint32_t from = s->resident;

		if (!p->refill.t.running) {
			if (charged > 1)
				prefault(p, s->page + from, charged);
			__atomic_fetch_add(&p->refill.writer_faults, charged,
					   __ATOMIC_RELAXED);
		} else {
			/* Pages needed now that nothing faulted in ahead: this
			 * thread's (one system call for several); the rest
			 * are the refill thread's. */
			if (now > from + 1)
				prefault(p, s->page + from, now - from);
			if (now > from)
				__atomic_fetch_add(&p->refill.writer_faults,
						   now - from, __ATOMIC_RELAXED);
		}
		span_grow(sh, s, need);
		/* After the grow: the thread checks resident. */
		for (uint32_t k = now; p->refill.t.running && k < need; k++)
			refill_ask(p, s->page + k);
	}
	span_take_slot(s, slot);
	loc = span_loc(c, s, slot);
	if (src)
		memcpy(loc_addr(p, loc), src, size);
	idx = ht_take(c, sh, loc);
	s->backref[slot] = idx | (c->size - size) << BR_DELTA_SHIFT;
	old = s->inuse++;
	if (fresh)
		group_add(sh, s, class_group(c, s->inuse));
	else
		span_regroup(c, sh, s, old);
	ADD_LOCKED(sh->inuse, 1);
	ADD_LOCKED(sh->live_bytes, size);
	ADD_LOCKED(sh->counters[POOL_C_ALLOCS], 1);
	*handle = (idx + 1) << 8 | c->id;
	*touched = s;
	return 0;

uncharge:
	if (charged)
		__atomic_sub_fetch(&p->pages, charged, __ATOMIC_RELAXED);
destroy_fresh:
	if (fresh) {
		arena_unget_ready(&p->arena, fresh->page, c->pages,
				  fresh->resident);
		meta_free(p, fresh);
	}
fail:
	ADD_LOCKED(sh->counters[POOL_C_ENOMEM], 1);
	return ret;
}

int pool_alloc(struct pool *p, size_t size, pool_handle_t *handle)
{
	return pool_alloc_within(p, size, 0, NULL, handle);
}

int pool_alloc_within(struct pool *p, size_t size, uint64_t max_mem,
		      const void *src, pool_handle_t *handle)
{
	struct pool_class *c;
	struct pool_shard *sh;
	struct span *s = NULL;
	int ret;

	if (!size || size > POOL_MAX_OBJ)
		return -EINVAL;
	c = size_to_class(p, size);
	sh = my_shard(c);
	shard_lock(sh);
	ret = shard_alloc(p, c, sh, (uint32_t)size, max_mem, src, handle, &s);
	debug_check(p, c, sh, s, "pool_alloc");
	shard_unlock(sh);
	return ret;
}

/* Decode a handle; NULL for one that cannot be valid. */
static struct pool_class *handle_class(struct pool *p, pool_handle_t h,
				       uint32_t *idx)
{
	if ((h & 0xff) >= p->nr_classes || !(h >> 8))
		return NULL;
	*idx = (h >> 8) - 1;
	return &p->cls[h & 0xff];
}

/*
 * Find a live object of handle class c and lock the shard that owns it
 * (*scp: its class, c unless the object is a guest in a larger one). The
 * entry and the page map are read without a lock (compaction may be moving
 * the object), then read again under the lock they name; if either
 * changed, try again. 0 with the shard locked, or -EINVAL with nothing
 * locked.
 */
static int obj_lock(struct pool *p, struct pool_class *c, uint32_t idx,
		    struct pool_class **scp, struct pool_shard **shp,
		    struct span **sp, uint32_t *slotp, uint32_t *locp)
{
	for (unsigned int tries = 0; tries < 1000; tries++) {
		uint32_t loc, slot, br;
		uintptr_t tag;
		struct pool_class *sc;
		struct pool_shard *sh;
		struct span *s;

		if (idx >= __atomic_load_n(&c->hwm, __ATOMIC_ACQUIRE))
			return -EINVAL;
		loc = ht_get(c, idx);
		if (!loc || loc >= LOC_MAX)
			return -EINVAL;  /* never used, or free */
		tag = loc_tag(p, loc);
		if (!tag)
			continue;  /* moved, its old span gone: read again */
		sc = &p->cls[tag_cls(tag)];
		sh = sc->shard[tag & SHARD_MASK];
		shard_lock(sh);
		if (ht_get(c, idx) != loc || loc_tag(p, loc) != tag) {
			shard_unlock(sh);
			continue;
		}
		/* Entry and page map agree under the lock of the shard the
		 * page map names: the span is alive and cannot change. */
		s = tag_span(tag);
		slot = loc_slot(sc, s, loc);
		br = slot < s->bump ? s->backref[slot] : BR_FREE;
		if (s->cls != sc->id || br >= BR_FREE ||
		    (br & BR_INDEX) != idx ||
		    (sc != c && br_home(p, sc, br) != c)) {
			shard_unlock(sh);
			return -EINVAL;
		}
		*scp = sc;
		*shp = sh;
		*sp = s;
		*slotp = slot;
		*locp = loc;
		return 0;
	}
	return -EINVAL;
}

static inline uint32_t obj_size(const struct pool_class *c,
				const struct span *s, uint32_t slot)
{
	return c->size - (s->backref[slot] >> BR_DELTA_SHIFT);
}

/* Free a looked-up object of handle class hc in span s of class c. Returns
 * a span to release after unlocking, if the free emptied one and another
 * empty span is already cached. */
static struct span *shard_free(struct pool *p, struct pool_class *hc,
			       struct pool_class *c, struct pool_shard *sh,
			       struct span *s, uint32_t slot, uint32_t idx)
{
	uint32_t old = s->inuse;

	ADD_LOCKED(sh->live_bytes, -(uint64_t)obj_size(c, s, slot));
	span_put_slot(s, slot);
	if (hc == c)
		ht_put(c, sh, idx);
	else
		ht_put_remote(hc, idx);
	s->inuse--;
	ADD_LOCKED(sh->inuse, -1);
	ADD_LOCKED(sh->counters[POOL_C_FREES], 1);
	if (s->inuse) {
		span_regroup(c, sh, s, old);
		return NULL;
	}
	if (!sh->groups[G_EMPTY]) {
		/* Keep it; reuse restarts at slot 0 on resident pages. */
		span_regroup(c, sh, s, old);
		s->bump = 0;
		s->free_head = SLOT_NONE;
		return NULL;
	}
	group_del(sh, s, class_group(c, old));
	span_unlink(p, c, sh, s);
	s->next = NULL;
	return s;
}

void pool_free(struct pool *p, pool_handle_t h)
{
	struct pool_class *hc, *c;
	struct pool_shard *sh;
	struct span *s, *rel;
	uint32_t idx, slot, loc;

	hc = handle_class(p, h, &idx);
	if (!hc || obj_lock(p, hc, idx, &c, &sh, &s, &slot, &loc)) {
		pool_misuse("pool_free", h);
		return;
	}
#ifdef PF_DEBUG
	if (span_pinned(s) && s->inuse == 1)
		BUG("pool_free: handle %#x freed while mapped", h);
#endif
	rel = shard_free(p, hc, c, sh, s, slot, idx);
	debug_check(p, c, sh, s, "pool_free");
	shard_unlock(sh);
	spans_release(p, rel);
}

size_t pool_obj_size(struct pool *p, pool_handle_t h)
{
	struct pool_class *hc, *c;
	struct pool_shard *sh;
	struct span *s;
	uint32_t idx, slot, loc;
	size_t size;

	hc = handle_class(p, h, &idx);
	if (!hc || obj_lock(p, hc, idx, &c, &sh, &s, &slot, &loc))
		return 0;
	size = obj_size(c, s, slot);
	shard_unlock(sh);
	return size;
}

/* ------------------------------------------------------------ map / copy */

void *pool_map(struct pool *p, pool_handle_t h)
{
	struct pool_class *hc, *c;
	struct pool_shard *sh;
	struct span *s;
	uint32_t idx, slot, loc;

	hc = handle_class(p, h, &idx);
	if (!hc || obj_lock(p, hc, idx, &c, &sh, &s, &slot, &loc)) {
		pool_misuse("pool_map", h);
		return NULL;
	}
#ifdef PF_DEBUG
	if (__atomic_add_fetch(&s->pins, 1, __ATOMIC_RELAXED) == 0)
		BUG("pool_map: more than 65535 mappings in one span");
#else
	__atomic_add_fetch(&s->pins, 1, __ATOMIC_RELAXED);
#endif
	debug_check(p, c, sh, s, "pool_map");
	shard_unlock(sh);
	return loc_addr(p, loc);
}

/*
 * Without a lock: the object is pinned, so its entry and its span cannot
 * change until the pin is dropped. The release pairs with the acquire in
 * span_pinned(): compaction sees the caller's writes through the mapping
 * before it moves the object.
 */
void pool_unmap(struct pool *p, pool_handle_t h)
{
	struct pool_class *c;
	struct span *s = NULL;
	uint32_t idx, loc;

	c = handle_class(p, h, &idx);
	if (c && idx < __atomic_load_n(&c->hwm, __ATOMIC_ACQUIRE)) {
		loc = ht_get(c, idx);
		if (loc && loc < LOC_MAX)
			s = tag_span(loc_tag(p, loc));
	}
	if (!s) {
		pool_misuse("pool_unmap", h);
		return;
	}
#ifdef PF_DEBUG
	if (!__atomic_fetch_sub(&s->pins, 1, __ATOMIC_RELEASE))
		BUG("pool_unmap: handle %#x was not mapped", h);
#else
	__atomic_fetch_sub(&s->pins, 1, __ATOMIC_RELEASE);
#endif
}

static int pool_copy(struct pool *p, pool_handle_t h, void *buf, size_t len,
		     bool to_pool)
{
	struct pool_class *hc, *c;
	struct pool_shard *sh;
	struct span *s;
	uint32_t idx, slot, loc;
	int ret = 0;

	hc = handle_class(p, h, &idx);
	if (!hc || obj_lock(p, hc, idx, &c, &sh, &s, &slot, &loc)) {
		pool_misuse(to_pool ? "pool_write" : "pool_read", h);
		return -EINVAL;
	}
	if (len > obj_size(c, s, slot))
		ret = -EINVAL;
	else if (to_pool)
		memcpy(loc_addr(p, loc), buf, len);
	else
		memcpy(buf, loc_addr(p, loc), len);
	debug_check(p, c, sh, s, to_pool ? "pool_write" : "pool_read");
	shard_unlock(sh);
	return ret;
}

int pool_write(struct pool *p, pool_handle_t h, const void *src, size_t len)
{
	return pool_copy(p, h, (void *)src, len, true);
}

int pool_read(struct pool *p, pool_handle_t h, void *dst, size_t len)
{
	return pool_copy(p, h, dst, len, false);
}

/* ------------------------------------------------------------ compaction */

/*
 * Compaction works on a class with all its shard locks held, and treats
 * the spans of all shards as one set.
 */

/* Copy the object in slot i of src (class sc) to slot j of dst (class dc,
 * sc itself or a larger one whose slot size the back-ref's delta still
 * covers; slot already taken) and point its handle there. */
static void obj_move(struct pool *p, struct pool_class *sc, struct span *src,
		     uint32_t i, struct pool_class *dc, struct span *dst,
		     uint32_t j)
{
	uint32_t br = src->backref[i], size = sc->size - (br >> BR_DELTA_SHIFT);
	struct pool_class *hc = br_home(p, sc, br);

	memcpy(loc_addr(p, span_loc(dc, dst, j)),
	       loc_addr(p, span_loc(sc, src, i)), size);
	dst->backref[j] = (br & BR_INDEX) | (dc->size - size) << BR_DELTA_SHIFT;
	ht_set(hc, br & BR_INDEX, span_loc(dc, dst, j));
	if (hc == sc && dc != sc)
		__atomic_add_fetch(&hc->away, 1, __ATOMIC_RELAXED);
}

/*
 * Move the live objects in slots [from, bump) of src (class sc), the top
 * one first, into dst (class dc: sc, or a larger class whose slots the
 * back-refs' delta still covers) until src is empty, dst is full or max
 * moves are done. Pages dst needs are charged without the limit:
 * compaction never grows the pool overall. Leaves an emptied src off every
 * list, still linked.
 */
static size_t span_drain(struct pool *p, struct pool_class *sc,
			 struct span *src, uint32_t from,
			 struct pool_class *dc, struct span *dst, size_t max)
{
	struct pool_shard *ssh = sc->shard[src->shard];
	struct pool_shard *dsh = dc->shard[dst->shard];
	size_t n = 0;

	for (uint32_t i = src->bump; i-- > from && n < max;) {
		uint32_t j, size, old_src = src->inuse, old_dst = dst->inuse;

		if (!src->inuse || dst->inuse == dc->objs)
			break;
		if (!slot_live(src, i))
			continue;
		j = dst->free_head != SLOT_NONE ? dst->free_head : dst->bump;
		if (j == dst->bump && pages_for(dc, j + 1) > dst->resident) {
			uint32_t need = pages_for(dc, j + 1);

			pool_charge(p, need - dst->resident, false);
			span_grow(dsh, dst, need);
		}
		span_take_slot(dst, j);
		size = obj_size(sc, src, i);
		obj_move(p, sc, src, i, dc, dst, j);
		span_put_slot(src, i);
		src->inuse--;
		dst->inuse++;
		if (ssh != dsh) {
			ADD_LOCKED(ssh->inuse, -1);
			ADD_LOCKED(ssh->live_bytes, -(uint64_t)size);
			ADD_LOCKED(dsh->inuse, 1);
			ADD_LOCKED(dsh->live_bytes, size);
		}
		if (src->inuse)
			span_regroup(sc, ssh, src, old_src);
		else
			group_del(ssh, src, class_group(sc, old_src));
		span_regroup(dc, dsh, dst, old_dst);
		ADD_LOCKED(ssh->counters[POOL_C_MIGRATED], 1);
		n++;
	}
	return n;
}

/*
 * Pack the objects of s into its lowest slots, then give the pages above
 * them back to the OS: what a full compaction does to the one partly used
 * span it leaves in a class. Sets *more if max moves were not enough.
 */
static size_t span_trim(struct pool *p, struct pool_class *c, struct span *s,
			size_t max, size_t *freed, bool *more)
{
	struct pool_shard *sh = c->shard[s->shard];
	uint32_t k = s->inuse, need = pages_for(c, k), lo = 0, hi = s->bump;
	size_t n = 0;

	if (span_pinned(s) || (s->bump == k && s->resident <= need))
		return 0;
	for (;;) {
		while (lo < k && slot_live(s, lo))
			lo++;
		while (hi > k && !slot_live(s, hi - 1))
			hi--;
		if (lo >= k || hi <= k)
			break;
		if (n == max) {
			*more = true;
			break;
		}
		obj_move(p, c, s, hi - 1, c, s, lo);
		s->backref[hi - 1] = BR_FREE;
		ADD_LOCKED(sh->counters[POOL_C_MIGRATED], 1);
		n++;
	}
	if (*more) {
		/* Rebuild the free list from what is free below bump. */
		s->free_head = SLOT_NONE;
		for (uint32_t i = s->bump; i-- > 0;)
			if (!slot_live(s, i))
				span_put_slot(s, i);
		return n;
	}
	/* Slots [0, k) are live, everything above is free. */
	s->bump = (uint16_t)k;
	s->free_head = SLOT_NONE;
	/* Release and shrink resident under the fill lock: the refill
	 * thread checks resident under it (refill_span_page()). */
	pthread_mutex_lock(&p->arena.fill_lock);
	if (s->resident > need &&
	    !arena_release_locked(&p->arena,
				  arena_addr(&p->arena, s->page + need),
				  (size_t)(s->resident - need) << PAGE_SHIFT,
				  false)) {
		uint32_t diff = s->resident - need;

		ADD_LOCKED(sh->resident, -(uint64_t)diff);
		__atomic_sub_fetch(&p->pages, diff, __ATOMIC_RELAXED);
		WR(s->resident, (uint8_t)need);
		*freed += diff;
	}
	pthread_mutex_unlock(&p->arena.fill_lock);
	return n;
}

/* Emptiest unpinned partial span used below usage_pct, or NULL. */
static struct span *pick_src(struct pool_class *c, unsigned int usage_pct)
{
	for (unsigned int g = 0; g < NR_PARTIAL; g++) {
		if (usage_pct < 100 && g * 100 >= usage_pct * NR_PARTIAL)
			break;
		for (unsigned int k = 0; k < NR_SHARDS; k++) {
			for (struct span *s = c->shard[k]->groups[g]; s;
			     s = s->next)
				if (!span_pinned(s) &&
				    (usage_pct >= 100 ||
				     (uint32_t)s->inuse * 100 <
				     usage_pct * c->objs))
					return s;
		}
	}
	return NULL;
}

/* Fullest partial span other than src, or NULL. */
static struct span *pick_dst(struct pool_class *c, struct span *src)
{
	for (unsigned int g = NR_PARTIAL; g-- > 0;)
		for (unsigned int k = 0; k < NR_SHARDS; k++)
			for (struct span *s = c->shard[k]->groups[g]; s;
			     s = s->next)
				if (s != src)
					return s;
	return NULL;
}

/* The only partly used span of the class, or NULL. */
static struct span *only_partial(struct pool_class *c)
{
	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		uint32_t m = c->shard[k]->group_mask;

		if (m)
			return c->shard[k]->groups[31 - __builtin_clz(m)];
	}
	return NULL;
}

static void class_totals(struct pool_class *c, uint64_t *spans,
			 uint64_t *full, uint64_t *inuse)
{
	*spans = *full = *inuse = 0;
	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		*spans += c->shard[k]->nr_spans;
		*full += c->shard[k]->nr_full;
		*inuse += c->shard[k]->inuse;
	}
}

/*
 * One bounded compaction step on a class with all shards locked: release
 * the cached empty spans, then move at most max objects. Spans it empties
 * go on *rel. Sets *more when it stopped for the budget with work left.
 */
static size_t class_compact_step(struct pool *p, struct pool_class *c,
				 unsigned int usage_pct, size_t max,
				 size_t *freed, struct span **rel, bool *more)
{
	uint64_t spans, full, inuse;
	size_t moved = 0;

	*more = false;
	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		struct pool_shard *sh = c->shard[k];
		struct span *s = sh->groups[G_EMPTY];

		if (s) {
			group_del(sh, s, G_EMPTY);
			*freed += s->resident;
			span_unlink(p, c, sh, s);
			s->next = *rel;
			*rel = s;
		}
	}
	class_totals(c, &spans, &full, &inuse);
	if (!spans && RD(c->hwm) &&
	    !__atomic_load_n(&c->away, __ATOMIC_ACQUIRE)) {
		ht_reset(p, c);
		return 0;
	}
	for (;;) {
		uint64_t partial = spans - full, used = inuse - full * c->objs;
		struct span *src, *dst;

		if (usage_pct >= 100) {
			if (partial < 2)
				break;
		} else if (partial * c->objs - used < c->objs) {
			break;  /* the emptiest span could not be emptied */
		}
		src = pick_src(c, usage_pct);
		dst = src ? pick_dst(c, src) : NULL;
		if (!dst)
			break;
		if (moved == max) {
			*more = true;
			break;
		}
		moved += span_drain(p, c, src, 0, c, dst, max - moved);
		if (!src->inuse) {
			*freed += src->resident;
			span_unlink(p, c, c->shard[src->shard], src);
			src->next = *rel;
			*rel = src;
		}
		class_totals(c, &spans, &full, &inuse);
	}
	if (usage_pct >= 100 && !*more && spans - full == 1) {
		struct span *s = only_partial(c);

		if (s)
			moved += span_trim(p, c, s, max - moved, freed, more);
	}
	return moved;
}

/* Without the locks: does c seem to hold exactly one span not full? */
static bool class_one_partial(struct pool_class *c)
{
	uint64_t spans = 0, full = 0;

	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		spans += RD(c->shard[k]->nr_spans);
		full += RD(c->shard[k]->nr_full);
	}
	return spans - full == 1;
}

/* Can the live objects in slots [from, bump) of src (class c) move to
 * class d, their back-refs' delta holding the larger slot? */
static bool pack_up_fits(struct pool_class *c, struct span *src,
			 uint32_t from, struct pool_class *d)
{
	for (uint32_t i = from; i < src->bump; i++)
		if (slot_live(src, i) &&
		    (src->backref[i] >> BR_DELTA_SHIFT) + d->size - c->size >
		    MAX_DELTA)
			return false;
	return true;
}

/* Slots of dst (class d) that can take an object without growing it. */
static uint32_t pack_up_room(struct pool_class *d, struct span *dst)
{
	uint32_t top = dst->resident * PAGE_SIZE / d->size;

	if (top > d->objs)
		top = d->objs;
	return (uint32_t)dst->bump - dst->inuse +
	       (top > dst->bump ? top - dst->bump : 0);
}

/*
 * One step of class_pack_up() from src (class c, packed: slots [0, inuse)
 * live, trimmed) into dst, the one partly used span of class d: all of src
 * if dst grows by fewer pages than src holds, else the objects on src's
 * last page if dst has room for them on the pages it holds (src then
 * gives that page back). Returns the objects moved; src may be left empty.
 */
static uint32_t pack_up_step(struct pool *p, struct pool_class *c,
			     struct span *src, struct pool_class *d,
			     struct span *dst, size_t *freed)
{
	struct pool_shard *ssh = c->shard[src->shard];
	uint32_t k = src->inuse, holes = (uint32_t)dst->bump - dst->inuse;
	uint32_t from, need, bump, room = pack_up_room(d, dst);

	/* All of it: dst's free slots first, then slots from bump up. */
	bump = dst->bump + (k > holes ? k - holes : 0);
	need = bump <= d->objs ? pages_for(d, bump) : UINT32_MAX;
	if (need != UINT32_MAX &&
	    (need > dst->resident ? need - dst->resident : 0) < src->resident &&
	    pack_up_fits(c, src, 0, d)) {
		span_drain(p, c, src, 0, d, dst, k);
		return k;
	}
	/* The objects that reach into src's last page. */
	from = (src->resident - 1) * PAGE_SIZE / c->size;
	if (!from || k - from > room || !pack_up_fits(c, src, from, d))
		return 0;
	span_drain(p, c, src, from, d, dst, k);
	src->bump = (uint16_t)from;
	src->free_head = SLOT_NONE;
	pthread_mutex_lock(&p->arena.fill_lock);
	if (!arena_release_locked(&p->arena,
				  arena_addr(&p->arena,
					     src->page + src->resident - 1),
				  PAGE_SIZE, false)) {
		ADD_LOCKED(ssh->resident, -1);
		__atomic_sub_fetch(&p->pages, 1, __ATOMIC_RELAXED);
		WR(src->resident, src->resident - 1);
		*freed += 1;
	}
	pthread_mutex_unlock(&p->arena.fill_lock);
	return k - from;
}

/*
 * The end of a full compaction of class c, whose one partly used span
 * holds at most max objects: move them, or those on its last page, into
 * the one partly used span of a class a little larger (the back-refs'
 * delta must still hold the difference) where that saves pages (see
 * pack_up_step()). Each class's last span leaves on average half a page
 * unused, and real data uses ~190 classes: done from the smallest class up,
 * this packs those tails together (bench-pool on real.pages: span/live
 * after a shrink 1.0122 -> 1.0074; the leftover: class rounding 0.49%, span
 * tails 0.06%, last pages 0.19%). The objects moved pay their larger slot
 * (stats.class_bytes), less than the pages saved. Every move frees pages,
 * so repeated shrinks settle. A span with more objects than max (the
 * budget left, at most PACK_UP_MAX) is left alone rather than reported
 * as unfinished work, which a caller with a small budget could never
 * finish. Returns the objects moved; pages released are added to *freed.
 */
static size_t class_pack_up(struct pool *p, struct pool_class *c, size_t max,
			    size_t *freed)
{
	uint64_t spans, full, inuse;
	struct span *src, *rel = NULL;
	size_t moved = 0;

	if (max > PACK_UP_MAX)
		max = PACK_UP_MAX;
	class_lock_all(c);
	class_totals(c, &spans, &full, &inuse);
	src = spans - full == 1 ? only_partial(c) : NULL;
	if (!src || span_pinned(src) || src->inuse > max ||
	    src->bump != src->inuse || src->resident != pages_for(c, src->inuse))
		goto unlock;  /* not packed and trimmed by span_trim() */
	for (uint32_t id = c->id + 1; id < p->nr_classes && src->inuse; id++) {
		struct pool_class *d = &p->cls[id];
		struct span *dst;
		uint32_t n = 0;

		if (d->size - c->size > MAX_DELTA)
			break;
		if (!class_one_partial(d))
			continue;
		/* Classes in ascending order: c's locks, then d's. */
		class_lock_all(d);
		class_totals(d, &spans, &full, &inuse);
		dst = spans - full == 1 ? only_partial(d) : NULL;
		if (dst)
			n = pack_up_step(p, c, src, d, dst, freed);
		if (n)
			debug_check_class(p, d, "pool_compact");
		class_unlock_all(d);
		moved += n;
	}
	if (moved && !src->inuse) {
		*freed += src->resident;
		span_unlink(p, c, c->shard[src->shard], src);
		src->next = NULL;
		rel = src;
	}
	if (moved)
		debug_check_class(p, c, "pool_compact");
unlock:
	class_unlock_all(c);
	spans_release(p, rel);
	return moved;
}

/*
 * Without the locks: could class_compact_step() find anything to do? The
 * same conditions on relaxed reads of the counters; a class that changes
 * meanwhile is seen by the next call. Saves taking every lock of every
 * class on the passes of a background compactor that mostly finds nothing.
 */
static bool class_compact_hint(struct pool_class *c, unsigned int usage_pct)
{
	uint64_t spans = 0, full = 0, inuse = 0;

	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		struct pool_shard *sh = c->shard[k];

		if (__atomic_load_n(&sh->groups[G_EMPTY], __ATOMIC_RELAXED))
			return true;
		spans += RD(sh->nr_spans);
		full += RD(sh->nr_full);
		inuse += RD(sh->inuse);
	}
	if (!spans)
		return RD(c->hwm) != 0 && !RD(c->away);
	if (spans < full || inuse < full * c->objs)
		return true;  /* torn reads: look under the locks */
	if (usage_pct >= 100)
		return spans - full >= 1;
	return (spans - full) * c->objs - (inuse - full * c->objs) >= c->objs;
}

size_t pool_compact(struct pool *p, size_t budget, unsigned int usage_pct,
		    bool *done)
{
	uint32_t n = p->nr_classes, start = RD(p->compact_cursor) % n;
	size_t freed = 0, moved = 0;
	bool finished = true;

	for (uint32_t i = 0; i < n && finished; i++) {
		struct pool_class *c = &p->cls[(start + i) % n];
		bool more;

		if (!class_compact_hint(c, usage_pct))
			continue;
		do {
			struct span *rel = NULL;
			size_t max = budget - moved, step, freed0 = freed;

			if (max > COMPACT_BATCH)
				max = COMPACT_BATCH;
			class_lock_all(c);
			step = class_compact_step(p, c, usage_pct, max,
						  &freed, &rel, &more);
			if (step || freed != freed0)
				debug_check_class(p, c, "pool_compact");
			class_unlock_all(c);
			spans_release(p, rel);
			moved += step;
		} while (more && moved < budget);
		if (more) {
			finished = false;
			WR(p->compact_cursor, (start + i) % n);
		}
	}
	/* A full compaction ends by packing the classes' last spans
	 * together, the smallest class first. */
	for (uint32_t i = 0; i < n && finished && usage_pct >= 100; i++) {
		if (moved >= budget) {
			finished = false;
			break;
		}
		if (class_one_partial(&p->cls[i]))
			moved += class_pack_up(p, &p->cls[i], budget - moved,
					       &freed);
	}
	/* ... and gives back the reserve too: a shrink leaves no memory
	 * that no object holds. */
	if (finished && usage_pct >= 100)
		freed += arena_drop_reserve(&p->arena);
	if (done)
		*done = finished;
	return freed;
}

/* ----------------------------------------------------------------- stats */

unsigned int pool_frag_pct(struct pool *p)
{
	uint64_t span = RD(p->pages) * PAGE_SIZE, used = 0;

	for (uint32_t i = 0; i < p->nr_classes; i++)
		for (unsigned int k = 0; k < NR_SHARDS; k++)
			used += RD(p->cls[i].shard[k]->inuse) * p->cls[i].size;
	if (!span || used >= span)
		return 0;
	return (unsigned int)((span - used) * 100 / span);
}

void pool_set_limit(struct pool *p, uint64_t limit_bytes)
{
	WR(p->limit_bytes, limit_bytes);
}

static uint64_t pool_handle_bytes(struct pool *p)
{
	return RD(p->backref_bytes) + RD(p->ht_bytes);
}

/* Memory of the metadata heap that no live object holds: the unused part
 * of its slabs, the empty slabs it keeps, its tables. (The live objects
 * are counted by whoever allocated them: the pool's own in desc_bytes,
 * backref_bytes and ht_bytes, its callers' by the callers.) */
static uint64_t heap_overhead_bytes(struct pool *p)
{
	uint64_t resident = mheap_resident_bytes(&p->heap);
	uint64_t live = mheap_live_bytes(&p->heap);

	/* Read apart, the two may cross for a moment. */
	return resident > live ? resident - live : 0;
}

static uint64_t pool_meta_bytes(struct pool *p)
{
	return pool_struct_bytes(p->nr_classes) +
	       RD(p->desc_bytes) + arena_meta_bytes(&p->arena) +
	       heap_overhead_bytes(p);
}

void pool_get_stats(struct pool *p, struct pool_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->nr_classes = p->nr_classes;
	for (uint32_t i = 0; i < p->nr_classes; i++) {
		struct pool_class *c = &p->cls[i];
		struct pool_class_stats *cs = &st->classes[i];

		cs->obj_size = c->size;
		cs->pages_per_span = c->pages;
		cs->objs_per_span = c->objs;
		for (unsigned int k = 0; k < NR_SHARDS; k++) {
			struct pool_shard *sh = c->shard[k];

			cs->spans += RD(sh->nr_spans);
			cs->objs_inuse += RD(sh->inuse);
			st->live_bytes += RD(sh->live_bytes);
			for (unsigned int n = 0; n < POOL_C_NR; n++)
				st->counters[n] += RD(sh->counters[n]);
		}
		st->objs += cs->objs_inuse;
		st->class_bytes += cs->objs_inuse * c->size;
	}
	st->pages = RD(p->pages);
	st->span_bytes = st->pages * PAGE_SIZE;
	st->handle_bytes = pool_handle_bytes(p);
	st->meta_bytes = pool_meta_bytes(p);
	st->limit_bytes = RD(p->limit_bytes);
	st->heap_bytes = mheap_resident_bytes(&p->heap);
	st->heap_live_bytes = mheap_live_bytes(&p->heap);
	st->reserve_bytes = (uint64_t)arena_reserve_pages(&p->arena) * PAGE_SIZE;
	st->ready_hits = RD(p->arena.ready_hits);
	st->ready_misses = RD(p->arena.ready_misses);
	st->refill_pages = RD(p->refill.filled) + RD(p->arena.filled);
	st->writer_pages = RD(p->refill.writer_faults);
	st->refill = p->refill.t.running;
	st->refill_cpu_ns = RD(p->refill.cpu_ns);
	st->refill_queued = 0;
	if (p->refill.t.running) {	/* else its lock was never made */
		pthread_mutex_lock(&p->refill.t.lock);
		st->refill_queued = p->refill.head - p->refill.tail;
		pthread_mutex_unlock(&p->refill.t.lock);
	}
}

void *pool_meta_alloc(struct pool *p, size_t size, bool zero, size_t *usable)
{
	return mheap_alloc(&p->heap, size, zero, usable);
}

size_t pool_meta_free(struct pool *p, void *m)
{
	return mheap_free(&p->heap, m);
}

bool pool_meta_owns(struct pool *p, const void *m)
{
	return mheap_owns(&p->heap, m);
}

uint64_t pool_meta_cost(struct pool *p, size_t size)
{
	return mheap_cost(&p->heap, size);
}

uint64_t pool_meta_trim(struct pool *p)
{
	return mheap_trim(&p->heap);
}

uint64_t pool_mem_bytes(struct pool *p)
{
	return (RD(p->pages) + arena_reserve_pages(&p->arena)) * PAGE_SIZE +
	       pool_handle_bytes(p) + pool_meta_bytes(p);
}

void pool_set_reserve(struct pool *p, uint64_t bytes)
{
	uint64_t pages = bytes / PAGE_SIZE;

	arena_set_reserve(&p->arena, pages > POOL_RESERVE_MAX / PAGE_SIZE ?
			  POOL_RESERVE_MAX / PAGE_SIZE : (uint32_t)pages);
}

uint64_t pool_get_reserve(struct pool *p)
{
	return (uint64_t)__atomic_load_n(&p->arena.reserve_max,
					 __ATOMIC_RELAXED) * PAGE_SIZE;
}

bool pool_is_valid(struct pool *p, const char **why)
{
	const char *bad = NULL;
	uint64_t resident = 0, ht = 0;
	uint32_t i;

	for (i = 0; i < p->nr_classes; i++)
		class_lock_all(&p->cls[i]);
	for (i = 0; i < p->nr_classes && !bad; i++) {
		bad = class_check(p, &p->cls[i]);
		for (unsigned int k = 0; k < NR_SHARDS; k++)
			resident += p->cls[i].shard[k]->resident;
	}
	if (!bad && resident != RD(p->pages))
		bad = "pool: resident pages != sum over shards";
	for (i = 0; i < p->nr_classes; i++)
		ht += ht_bytes(RD(p->cls[i].hwm));
	if (!bad && ht != RD(p->ht_bytes))
		bad = "pool: ht_bytes != sum of the classes' handle tables";
	if (!bad)
		arena_is_valid(&p->arena, &bad);
	for (i = p->nr_classes; i-- > 0;)
		class_unlock_all(&p->cls[i]);
	/* Its locks are leaves: checked with none of the pool's held. */
	if (!bad)
		mheap_is_valid(&p->heap, &bad);
	if (bad && why)
		*why = bad;
	return !bad;
}
