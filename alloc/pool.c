// SPDX-License-Identifier: MIT
/*
 * pool.c - size classes, spans, handle tables and compaction.
 *
 * A class owns its spans and its handle table; everything about them is
 * protected by the class lock. Spans are sorted into fullness groups: 16
 * groups for partly used spans (group g holds spans with
 * g/16 <= inuse/objs < (g+1)/16), one for full spans and one holding at most
 * one empty span kept for reuse. Allocation takes the head of the fullest
 * non-empty partial group (so spans fill up and frees empty the rest),
 * then the cached empty span, then a new span. Compaction moves objects out
 * of the emptiest span into the fullest.
 *
 * Inside a span, slots [0, bump) have been handed out since the span was
 * last reset; freed slots among them form a list threaded through their
 * back-reference words, and a new object takes a freed slot first, slot bump
 * otherwise. Pages [0, resident) of a span may hold memory; pages from
 * resident on were never touched (or were released) and cost nothing.
 *
 * Handle = (index + 1) << 8 | class id, so handles are never 0. A class's
 * handle table is a fixed directory of HT_CHUNKS chunks of growing size
 * (chunk k holds 1024 << k entries, mapped on first use), so an entry never
 * moves and pool_unmap() can read it without the lock. An entry holds the
 * object's location (arena offset / 16, < LOC_MAX) or, for a free index,
 * HT_FREE | next free index.
 *
 * lock ordering: class lock -> arena lock. Only pool_is_valid() holds more
 * than one class lock, taking them in ascending class order. Spans emptied
 * under a class lock are unlinked there and returned to the arena (a system
 * call) after the lock is dropped.
 */
#include "pool.h"
#include "arena.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE_SHIFT      ARENA_PAGE_SHIFT
#define PAGE_SIZE       ARENA_PAGE_SIZE
#define MIN_CLASS       32u
#define CLASS_STEP      16u
#define NR_STEPS        ((POOL_MAX_OBJ - MIN_CLASS) / CLASS_STEP + 1)  /* 255 */

#define NR_PARTIAL      16u
#define G_FULL          NR_PARTIAL
#define G_EMPTY         (NR_PARTIAL + 1)
#define NR_GROUPS       (NR_PARTIAL + 2)

#define SLOT_NONE       0xffffu
#define BR_FREE         0xff000000u  /* back-ref of a free slot: | next slot */
#define BR_INDEX        0x00ffffffu  /* back-ref of a live slot: handle index */
#define BR_DELTA_SHIFT  24           /* ... and class size - requested size */
#define MAX_DELTA       254u

#define HT_BASE_SHIFT   10
#define HT_BASE         (1u << HT_BASE_SHIFT)
#define HT_CHUNKS       14u
#define HT_MAX          ((1u << 24) - HT_BASE)   /* indices 0 .. HT_MAX-1 */
#define HT_FREE         0xff000000u
#define HT_NONE         0x00ffffffu
#define LOC_MAX         0xff000000u

#define COMPACT_BATCH   32u   /* moves per class-lock hold */
#define CHECK_EVERY     1024u /* debug: ops on a class between full checks */

/* Relaxed atomics for fields written under a lock and read without one
 * (statistics). On x86-64 they compile to plain loads and stores. */
#define RD(x)           __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WR(x, v)        __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define ADD(x, n)       WR(x, RD(x) + (n))

/*
 * A span descriptor: 32 bytes plus one back-reference word per slot.
 *
 * Invariants (under the class lock):
 *   inuse + (freed slots on the free list) == bump <= objs
 *   pages_for(bump) <= resident <= pages
 *   the span is on list groups[class_group(inuse)] of its class
 *   backref[i], i < bump: live (handle index | delta << 24, delta <= 254,
 *     and the handle's entry is this slot's location) or BR_FREE | next
 *   page_map[page + k] == this span for k < pages
 *   pins counts pool_map() calls not yet matched by pool_unmap()
 */
struct span {
	struct span *prev, *next;  /* fullness-group list */
	uint32_t page;             /* first arena page */
	uint32_t pins;             /* atomic */
	uint16_t inuse;            /* live objects */
	uint16_t bump;             /* slots [bump, objs) unused since reset */
	uint16_t free_head;        /* freed slot below bump, or SLOT_NONE */
	uint8_t resident;          /* pages [0, resident) may hold memory */
	uint8_t cls;               /* class id */
	uint32_t backref[];        /* one per slot */
};

/*
 * A size class. Geometry is constant; the rest is under lock.
 *
 * Invariants:
 *   nr_spans == spans on all lists; nr_full == spans on groups[G_FULL]
 *   groups[G_EMPTY] holds at most one span
 *   bit g of group_mask set  iff  groups[g] != NULL  (g < NR_PARTIAL)
 *   inuse == sum of span inuse == handle entries in [0, hwm) that are live
 *   hwm == inuse + length of the handle free list
 *   resident == sum of span resident
 *   live_bytes == sum of requested sizes of live objects
 */
struct pool_class {
	pthread_mutex_t lock;
	/* geometry */
	uint32_t size;             /* slot bytes, a multiple of 16 */
	uint32_t size16;           /* size / 16: slot stride in location units */
	uint32_t recip;            /* ceil(2^32 / size16): unit offset -> slot */
	uint32_t min_size;         /* smallest request served here */
	uint16_t pages;            /* pages per span */
	uint16_t objs;             /* slots per span */
	uint8_t id;
	/* spans */
	uint32_t group_mask;
	struct span *groups[NR_GROUPS];
	uint64_t nr_spans;
	uint64_t nr_full;
	uint64_t inuse;
	uint64_t live_bytes;
	uint64_t resident;         /* pages */
	/* handles */
	uint32_t *ht[HT_CHUNKS];
	uint32_t hfree;            /* first free index, or HT_NONE */
	uint32_t hwm;              /* indices [0, hwm) have been used */
	uint64_t counters[POOL_C_NR];
#ifdef PF_DEBUG
	uint32_t ops_since_check;
#endif
} __attribute__((aligned(64)));

/*
 * Invariants (when no class lock is held):
 *   pages == sum of class resident
 *   pages * PAGE_SIZE <= limit_bytes, unless the limit was lowered
 *   backref_bytes == sum over spans of objs * 4
 */
struct pool {
	struct arena arena;
	uint64_t limit_bytes;      /* atomic; 0 = none */
	uint64_t pages;            /* atomic: resident span pages */
	uint64_t desc_bytes;       /* atomic: descriptors minus back-refs */
	uint64_t backref_bytes;    /* atomic */
	uint32_t compact_cursor;   /* atomic: class where compaction resumes */
	uint32_t nr_classes;
	uint8_t size_class[POOL_MAX_OBJ / CLASS_STEP + 1]; /* (size+15)/16 -> id */
	struct pool_class cls[];
};

/* ---------------------------------------------------------------- misuse */

#ifdef PF_DEBUG
__attribute__((noreturn, format(printf, 1, 2)))
static void pool_bug(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pagefold pool: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
#define pool_misuse(op, h) \
	pool_bug("%s: handle %#x is not live (double free or stale handle)", \
		 op, (unsigned int)(h))
#else
#define pool_misuse(op, h) ((void)(op), (void)(h))
#endif

/* -------------------------------------------------------------- geometry */

/* Bytes of bookkeeping a span of n pages costs besides its back-refs:
 * descriptor, malloc's header, page map. Used to choose span lengths. */
static uint32_t span_meta_bytes(uint32_t n)
{
	return (uint32_t)sizeof(struct span) + 16 + 8 * n;
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

static inline uint32_t pages_for(const struct pool_class *c, uint32_t slots)
{
	return (slots * c->size + PAGE_SIZE - 1) >> PAGE_SHIFT;
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

static inline struct span *loc_span(const struct pool *p, uint32_t loc)
{
	return __atomic_load_n(&p->arena.page_map[loc >> (PAGE_SHIFT - 4)],
			       __ATOMIC_RELAXED);
}

static inline bool slot_live(const struct span *s, uint32_t slot)
{
	return s->backref[slot] < BR_FREE;
}

static inline bool span_pinned(const struct span *s)
{
	return __atomic_load_n(&s->pins, __ATOMIC_ACQUIRE) != 0;
}

static void class_lock(struct pool_class *c)
{
	if (pthread_mutex_trylock(&c->lock)) {
		pthread_mutex_lock(&c->lock);
		ADD(c->counters[POOL_C_LOCK_CONTENDED], 1);
	}
	ADD(c->counters[POOL_C_LOCK_ACQUIRED], 1);
}

static void class_unlock(struct pool_class *c)
{
	pthread_mutex_unlock(&c->lock);
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

/* ---------------------------------------------------------- handle table */

static inline uint32_t *ht_entry(struct pool_class *c, uint32_t idx)
{
	uint32_t x = idx + HT_BASE;
	unsigned int k = 31 - __builtin_clz(x) - HT_BASE_SHIFT;
	uint32_t *chunk = __atomic_load_n(&c->ht[k], __ATOMIC_ACQUIRE);

	return chunk + (x - (HT_BASE << k));
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

/* Make sure an index can be taken without failing. 0 or -ENOMEM. */
static int ht_reserve(struct pool_class *c)
{
	unsigned int k;
	void *chunk;

	if (c->hfree != HT_NONE)
		return 0;
	if (c->hwm >= HT_MAX)
		return -ENOMEM;
	k = 31 - __builtin_clz(c->hwm + HT_BASE) - HT_BASE_SHIFT;
	if (c->ht[k])
		return 0;
	chunk = mmap(NULL, ht_chunk_bytes(k), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (chunk == MAP_FAILED)
		return -ENOMEM;
	__atomic_store_n(&c->ht[k], chunk, __ATOMIC_RELEASE);
	return 0;
}

/* After ht_reserve(). */
static uint32_t ht_take(struct pool_class *c, uint32_t loc)
{
	uint32_t idx = c->hfree;

	if (idx != HT_NONE) {
		c->hfree = ht_get(c, idx) & HT_NONE;
	} else {
		idx = c->hwm;
		WR(c->hwm, idx + 1);
	}
	ht_set(c, idx, loc);
	return idx;
}

static void ht_put(struct pool_class *c, uint32_t idx)
{
	ht_set(c, idx, HT_FREE | c->hfree);
	c->hfree = idx;
}

/* Unmap every chunk; only when the class has no object at all. */
static void ht_reset(struct pool_class *c)
{
	for (unsigned int k = 0; k < HT_CHUNKS; k++) {
		if (!c->ht[k])
			continue;
		munmap(c->ht[k], ht_chunk_bytes(k));
		c->ht[k] = NULL;
	}
	c->hfree = HT_NONE;
	WR(c->hwm, 0);
}

/* Resident bytes of the table: entries are used from index 0 up, and chunk
 * boundaries fall on page boundaries (1024 entries = 4 KiB). */
static uint64_t ht_bytes(uint32_t hwm)
{
	return (uint64_t)(hwm + HT_BASE - 1) / HT_BASE * PAGE_SIZE;
}

/* ----------------------------------------------------------------- spans */

static void group_add(struct pool_class *c, struct span *s, unsigned int g)
{
	s->prev = NULL;
	s->next = c->groups[g];
	if (s->next)
		s->next->prev = s;
	c->groups[g] = s;
	if (g < NR_PARTIAL)
		c->group_mask |= 1u << g;
	else if (g == G_FULL)
		ADD(c->nr_full, 1);
}

static void group_del(struct pool_class *c, struct span *s, unsigned int g)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		c->groups[g] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	if (g < NR_PARTIAL && !c->groups[g])
		c->group_mask &= ~(1u << g);
	else if (g == G_FULL)
		ADD(c->nr_full, -1);
}

/* s->inuse changed from old: move it to its new group. */
static void span_regroup(struct pool_class *c, struct span *s, uint32_t old)
{
	unsigned int og = class_group(c, old), ng = class_group(c, s->inuse);

	if (og != ng) {
		group_del(c, s, og);
		group_add(c, s, ng);
	}
}

/* A new span, not yet linked into its class. 0 or -ENOMEM. */
static int span_create(struct pool *p, struct pool_class *c, struct span **sp)
{
	struct span *s;
	uint32_t page;
	int ret;

	ret = arena_get(&p->arena, c->pages, &page);
	if (ret)
		return ret;
	s = malloc(sizeof(*s) + c->objs * sizeof(s->backref[0]));
	if (!s) {
		arena_unget(&p->arena, page, c->pages);
		return -ENOMEM;
	}
	s->prev = s->next = NULL;
	s->page = page;
	s->pins = 0;
	s->inuse = 0;
	s->bump = 0;
	s->free_head = SLOT_NONE;
	s->resident = 0;
	s->cls = c->id;
	*sp = s;
	return 0;
}

static uint64_t span_backref_bytes(const struct pool_class *c)
{
	return (uint64_t)c->objs * sizeof(uint32_t);
}

static uint64_t span_desc_bytes(const struct pool_class *c, struct span *s)
{
	/* malloc's chunk header is one size_t. */
	return malloc_usable_size(s) + sizeof(size_t) - span_backref_bytes(c);
}

/* Make a span created by span_create() part of its class (no group yet). */
static void span_link(struct pool *p, struct pool_class *c, struct span *s)
{
	for (uint32_t k = 0; k < c->pages; k++)
		__atomic_store_n(&p->arena.page_map[s->page + k], s,
				 __ATOMIC_RELAXED);
	ADD(c->nr_spans, 1);
	ADD(c->counters[POOL_C_SPANS_ALLOCATED], 1);
	__atomic_add_fetch(&p->desc_bytes, span_desc_bytes(c, s),
			   __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->backref_bytes, span_backref_bytes(c),
			   __ATOMIC_RELAXED);
}

/* Take an empty span (already off its list) out of its class; the caller
 * returns it with span_release() once the class lock is dropped. */
static void span_unlink(struct pool *p, struct pool_class *c, struct span *s)
{
	for (uint32_t k = 0; k < c->pages; k++)
		__atomic_store_n(&p->arena.page_map[s->page + k], NULL,
				 __ATOMIC_RELAXED);
	ADD(c->nr_spans, -1);
	ADD(c->resident, -(uint64_t)s->resident);
	__atomic_sub_fetch(&p->pages, s->resident, __ATOMIC_RELAXED);
	ADD(c->counters[POOL_C_SPANS_FREED], 1);
	__atomic_sub_fetch(&p->desc_bytes, span_desc_bytes(c, s),
			   __ATOMIC_RELAXED);
	__atomic_sub_fetch(&p->backref_bytes, span_backref_bytes(c),
			   __ATOMIC_RELAXED);
}

/* Return unlinked spans (a list through ->next) to the arena and the OS. */
static void spans_release(struct pool *p, struct span *list)
{
	while (list) {
		struct span *s = list;
		struct pool_class *c = &p->cls[s->cls];

		list = s->next;
		arena_put(&p->arena, s->page, c->pages, s->resident);
		free(s);
	}
}

/* Take slot (s->free_head or s->bump) in s; resident must already cover
 * it. */
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

/* Grow s->resident to cover slot; pages were charged by the caller. */
static void span_grow(struct pool_class *c, struct span *s, uint32_t need)
{
	ADD(c->resident, need - s->resident);
	s->resident = (uint8_t)need;
}

/* ---------------------------------------------------------------- checks */

static const char *span_check_quick(struct pool *p, struct pool_class *c,
				    struct span *s)
{
	unsigned int g = class_group(c, s->inuse);

	if (s->cls != c->id)
		return "span: wrong class";
	if (s->inuse > s->bump || s->bump > c->objs)
		return "span: inuse > bump or bump > objs";
	if (s->resident > c->pages || pages_for(c, s->bump) > s->resident)
		return "span: resident does not cover bump";
	if (s->free_head != SLOT_NONE &&
	    (s->free_head >= s->bump || slot_live(s, s->free_head)))
		return "span: bad free head";
	if (s->prev ? s->prev->next != s : c->groups[g] != s)
		return "span: not on the list of its group";
	if (s->next && s->next->prev != s)
		return "span: broken list link";
	if (p->arena.page_map[s->page] != s ||
	    p->arena.page_map[s->page + c->pages - 1] != s)
		return "span: page map does not point to it";
	return NULL;
}

/* O(bump): every slot, the free list, the back-references. */
static const char *span_check(struct pool *p, struct pool_class *c,
			      struct span *s, uint64_t *live_bytes)
{
	const char *why = span_check_quick(p, c, s);
	uint32_t live = 0, nfree = 0, slot;

	if (why)
		return why;
	for (uint32_t k = 0; k < c->pages; k++)
		if (p->arena.page_map[s->page + k] != s)
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

		if (!slot_live(s, slot))
			continue;
		live++;
		if (idx >= c->hwm)
			return "span: back-ref past the handle table";
		if (ht_get(c, idx) != span_loc(c, s, slot))
			return "span: handle entry does not point back to slot";
		if (c->size - (br >> BR_DELTA_SHIFT) < c->min_size)
			return "span: requested size below the class";
		*live_bytes += c->size - (br >> BR_DELTA_SHIFT);
	}
	if (live != s->inuse)
		return "span: inuse != live slots";
	if (live + nfree != s->bump)
		return "span: live + free != bump";
	return NULL;
}

static const char *class_check_counters(struct pool_class *c)
{
	for (unsigned int g = 0; g < NR_PARTIAL; g++)
		if (!!(c->group_mask & (1u << g)) != !!c->groups[g])
			return "class: group mask out of date";
	if (c->groups[G_EMPTY] && c->groups[G_EMPTY]->next)
		return "class: more than one cached empty span";
	if (c->nr_full > c->nr_spans ||
	    c->inuse > c->nr_spans * c->objs ||
	    c->inuse < c->nr_full * c->objs)
		return "class: span counters inconsistent";
	if (c->inuse > c->hwm || (c->hfree != HT_NONE && c->hfree >= c->hwm))
		return "class: handle counters inconsistent";
	if (c->resident > c->nr_spans * c->pages)
		return "class: resident pages exceed spans";
	return NULL;
}

/* The whole class: O(spans * objs + handles). Under the class lock. */
static const char *class_check(struct pool *p, struct pool_class *c)
{
	uint64_t spans = 0, full = 0, inuse = 0, resident = 0, live = 0;
	uint32_t hfree = 0, hlive = 0;
	const char *why = class_check_counters(c);

	if (why)
		return why;
	for (unsigned int g = 0; g < NR_GROUPS; g++) {
		for (struct span *s = c->groups[g]; s; s = s->next) {
			if (class_group(c, s->inuse) != g)
				return "class: span in the wrong group";
			why = span_check(p, c, s, &live);
			if (why)
				return why;
			spans++;
			full += g == G_FULL;
			inuse += s->inuse;
			resident += s->resident;
		}
	}
	if (spans != c->nr_spans || full != c->nr_full)
		return "class: span count mismatch";
	if (inuse != c->inuse)
		return "class: inuse != sum over spans";
	if (resident != c->resident)
		return "class: resident != sum over spans";
	if (live != c->live_bytes)
		return "class: live_bytes != sum of requested sizes";
	for (uint32_t idx = c->hfree; idx != HT_NONE;
	     idx = ht_get(c, idx) & HT_NONE) {
		if (idx >= c->hwm || ht_get(c, idx) < HT_FREE)
			return "class: handle free list holds a live entry";
		if (++hfree > c->hwm)
			return "class: handle free list has a cycle";
	}
	for (uint32_t idx = 0; idx < c->hwm; idx++) {
		uint32_t loc = ht_get(c, idx);
		struct span *s;

		if (loc >= LOC_MAX)
			continue;
		hlive++;
		s = loc_span(p, loc);
		if (!s || s->cls != c->id)
			return "class: live handle points outside the class";
		if ((s->backref[loc_slot(c, s, loc)] & BR_INDEX) != idx ||
		    !slot_live(s, loc_slot(c, s, loc)))
			return "class: slot does not point back to its handle";
	}
	if (hlive != c->inuse || hlive + hfree != c->hwm)
		return "class: handle table counts mismatch";
	return NULL;
}

#ifdef PF_DEBUG
/* After an operation on c that touched span s (may be NULL): O(1) checks,
 * the full class check every CHECK_EVERY operations. */
static void debug_check(struct pool *p, struct pool_class *c, struct span *s,
			const char *op)
{
	const char *why = class_check_counters(c);

	if (!why && s && s->prev != s)  /* s may have been unlinked */
		why = span_check_quick(p, c, s);
	if (!why && ++c->ops_since_check >= CHECK_EVERY) {
		c->ops_since_check = 0;
		why = class_check(p, c);
	}
	if (why)
		pool_bug("%s: class %u (%u bytes): invariant broken: %s", op,
			 c->id, c->size, why);
}

static void debug_check_full(struct pool *p, struct pool_class *c,
			     const char *op)
{
	const char *why = class_check(p, c);

	c->ops_since_check = 0;
	if (why)
		pool_bug("%s: class %u (%u bytes): invariant broken: %s", op,
			 c->id, c->size, why);
}
#else
#define debug_check(p, c, s, op) do { } while (0)
#define debug_check_full(p, c, op) do { } while (0)
#endif

/* ------------------------------------------------------ create / destroy */

struct pool *pool_create(const struct pool_config *cfg)
{
	struct geom g[NR_STEPS];
	uint8_t size_class[POOL_MAX_OBJ / CLASS_STEP + 1];
	uint64_t arena_bytes = POOL_ARENA_MAX;
	uint32_t nr = classes_plan(g, size_class), i;
	struct pool *p;

	if (cfg && cfg->arena_bytes && cfg->arena_bytes < arena_bytes)
		arena_bytes = cfg->arena_bytes;
	if (posix_memalign((void **)&p, 64,
			   sizeof(*p) + nr * sizeof(p->cls[0])))
		return NULL;
	memset(p, 0, sizeof(*p) + nr * sizeof(p->cls[0]));
	if (arena_init(&p->arena, arena_bytes))
		goto free_pool;
	p->limit_bytes = cfg ? cfg->limit_bytes : 0;
	p->nr_classes = nr;
	memcpy(p->size_class, size_class, sizeof(size_class));
	for (i = 0; i < nr; i++) {
		struct pool_class *c = &p->cls[i];

		if (pthread_mutex_init(&c->lock, NULL))
			goto destroy_locks;
		c->size = g[i].size;
		c->size16 = g[i].size / 16;
		c->recip = (uint32_t)(((1ull << 32) + c->size16 - 1) / c->size16);
		c->min_size = g[i].min_size;
		c->pages = (uint16_t)g[i].pages;
		c->objs = (uint16_t)g[i].objs;
		c->id = (uint8_t)i;
		c->hfree = HT_NONE;
	}
	return p;

destroy_locks:
	while (i--)
		pthread_mutex_destroy(&p->cls[i].lock);
	arena_fini(&p->arena);
free_pool:
	free(p);
	return NULL;
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->nr_classes; i++) {
		struct pool_class *c = &p->cls[i];

		for (unsigned int g = 0; g < NR_GROUPS; g++) {
			while (c->groups[g]) {
				struct span *s = c->groups[g];

				c->groups[g] = s->next;
				free(s);
			}
		}
		ht_reset(c);
		pthread_mutex_destroy(&c->lock);
	}
	arena_fini(&p->arena);
	free(p);
}

/* ------------------------------------------------------------ alloc/free */

static int class_alloc(struct pool *p, struct pool_class *c, uint32_t size,
		       pool_handle_t *handle, struct span **touched)
{
	struct span *s, *fresh = NULL;
	uint32_t slot, need = 0, old, idx, loc;
	int ret;

	ret = ht_reserve(c);
	if (ret)
		goto fail;
	s = c->group_mask ? c->groups[31 - __builtin_clz(c->group_mask)]
			  : c->groups[G_EMPTY];
	if (!s) {
		ret = span_create(p, c, &fresh);
		if (ret)
			goto fail;
		s = fresh;
	}
	slot = s->free_head != SLOT_NONE ? s->free_head : s->bump;
	if (slot == s->bump) {
		need = pages_for(c, slot + 1);
		if (need > s->resident) {
			ret = pool_charge(p, need - s->resident, true);
			if (ret)
				goto destroy_fresh;
		}
	}
	/* Nothing can fail from here on. */
	if (fresh)
		span_link(p, c, fresh);
	if (need > s->resident)
		span_grow(c, s, need);
	span_take_slot(s, slot);
	loc = span_loc(c, s, slot);
	idx = ht_take(c, loc);
	s->backref[slot] = idx | (c->size - size) << BR_DELTA_SHIFT;
	old = s->inuse++;
	if (fresh)
		group_add(c, s, class_group(c, s->inuse));
	else
		span_regroup(c, s, old);
	ADD(c->inuse, 1);
	ADD(c->live_bytes, size);
	ADD(c->counters[POOL_C_ALLOCS], 1);
	*handle = (idx + 1) << 8 | c->id;
	*touched = s;
	return 0;

destroy_fresh:
	if (fresh) {
		arena_unget(&p->arena, fresh->page, c->pages);
		free(fresh);
	}
fail:
	ADD(c->counters[POOL_C_ENOMEM], 1);
	return ret;
}

int pool_alloc(struct pool *p, size_t size, pool_handle_t *handle)
{
	struct pool_class *c;
	struct span *s = NULL;
	int ret;

	if (!size || size > POOL_MAX_OBJ)
		return -EINVAL;
	c = size_to_class(p, size);
	class_lock(c);
	ret = class_alloc(p, c, (uint32_t)size, handle, &s);
	debug_check(p, c, s, "pool_alloc");
	class_unlock(c);
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

/* Find a live object under the class lock. 0 or -EINVAL. */
static int class_lookup(struct pool *p, struct pool_class *c, uint32_t idx,
			struct span **sp, uint32_t *slotp, uint32_t *locp)
{
	uint32_t loc, slot;
	struct span *s;

	if (idx >= c->hwm)
		return -EINVAL;
	loc = ht_get(c, idx);
	if (loc >= LOC_MAX)
		return -EINVAL;
	s = loc_span(p, loc);
	if (!s || s->cls != c->id)
		return -EINVAL;
	slot = loc_slot(c, s, loc);
	if (slot >= s->bump || (s->backref[slot] & BR_INDEX) != idx ||
	    !slot_live(s, slot))
		return -EINVAL;
	*sp = s;
	*slotp = slot;
	*locp = loc;
	return 0;
}

static inline uint32_t obj_size(const struct pool_class *c,
				const struct span *s, uint32_t slot)
{
	return c->size - (s->backref[slot] >> BR_DELTA_SHIFT);
}

/* Free a looked-up object. Returns a span to release after unlocking, if
 * the free emptied one and another empty span is already cached. */
static struct span *class_free(struct pool *p, struct pool_class *c,
			       struct span *s, uint32_t slot, uint32_t idx)
{
	uint32_t old = s->inuse;

	ADD(c->live_bytes, -(uint64_t)obj_size(c, s, slot));
	span_put_slot(s, slot);
	ht_put(c, idx);
	s->inuse--;
	ADD(c->inuse, -1);
	ADD(c->counters[POOL_C_FREES], 1);
	if (s->inuse) {
		span_regroup(c, s, old);
		return NULL;
	}
	if (!c->groups[G_EMPTY]) {
		/* Keep it; reuse restarts at slot 0 on resident pages. */
		span_regroup(c, s, old);
		s->bump = 0;
		s->free_head = SLOT_NONE;
		return NULL;
	}
	group_del(c, s, class_group(c, old));
	span_unlink(p, c, s);
	s->next = NULL;
	s->prev = s;  /* marks it unlinked for debug_check() */
	return s;
}

void pool_free(struct pool *p, pool_handle_t h)
{
	struct pool_class *c;
	struct span *s, *rel = NULL;
	uint32_t idx, slot, loc;

	c = handle_class(p, h, &idx);
	if (!c) {
		pool_misuse("pool_free", h);
		return;
	}
	class_lock(c);
	if (class_lookup(p, c, idx, &s, &slot, &loc)) {
		class_unlock(c);
		pool_misuse("pool_free", h);
		return;
	}
#ifdef PF_DEBUG
	if (span_pinned(s) && s->inuse == 1)
		pool_bug("pool_free: handle %#x freed while mapped", h);
#endif
	rel = class_free(p, c, s, slot, idx);
	debug_check(p, c, s, "pool_free");
	class_unlock(c);
	if (rel) {
		rel->prev = NULL;
		spans_release(p, rel);
	}
}

size_t pool_obj_size(struct pool *p, pool_handle_t h)
{
	struct pool_class *c;
	struct span *s;
	uint32_t idx, slot, loc;
	size_t size = 0;

	c = handle_class(p, h, &idx);
	if (!c)
		return 0;
	class_lock(c);
	if (!class_lookup(p, c, idx, &s, &slot, &loc))
		size = obj_size(c, s, slot);
	class_unlock(c);
	return size;
}

/* ------------------------------------------------------------ map / copy */

void *pool_map(struct pool *p, pool_handle_t h)
{
	struct pool_class *c;
	struct span *s;
	uint32_t idx, slot, loc;

	c = handle_class(p, h, &idx);
	if (!c) {
		pool_misuse("pool_map", h);
		return NULL;
	}
	class_lock(c);
	if (class_lookup(p, c, idx, &s, &slot, &loc)) {
		class_unlock(c);
		pool_misuse("pool_map", h);
		return NULL;
	}
	__atomic_add_fetch(&s->pins, 1, __ATOMIC_RELAXED);
	debug_check(p, c, s, "pool_map");
	class_unlock(c);
	return loc_addr(p, loc);
}

/*
 * Without the class lock: the object is pinned, so its entry and its span
 * cannot change until the pin is dropped. The release pairs with the
 * acquire in span_pinned(): compaction sees the caller's writes through
 * the mapping before it moves the object.
 */
void pool_unmap(struct pool *p, pool_handle_t h)
{
	struct pool_class *c;
	struct span *s;
	uint32_t idx, loc;

	c = handle_class(p, h, &idx);
	if (!c || idx >= RD(c->hwm)) {
		pool_misuse("pool_unmap", h);
		return;
	}
	loc = ht_get(c, idx);
	s = loc < LOC_MAX ? loc_span(p, loc) : NULL;
	if (!s) {
		pool_misuse("pool_unmap", h);
		return;
	}
#ifdef PF_DEBUG
	if (!__atomic_fetch_sub(&s->pins, 1, __ATOMIC_RELEASE))
		pool_bug("pool_unmap: handle %#x was not mapped", h);
#else
	__atomic_fetch_sub(&s->pins, 1, __ATOMIC_RELEASE);
#endif
}

static int pool_copy(struct pool *p, pool_handle_t h, void *buf, size_t len,
		     bool to_pool)
{
	struct pool_class *c;
	struct span *s;
	uint32_t idx, slot, loc;
	int ret = 0;

	c = handle_class(p, h, &idx);
	if (!c) {
		pool_misuse(to_pool ? "pool_write" : "pool_read", h);
		return -EINVAL;
	}
	class_lock(c);
	if (class_lookup(p, c, idx, &s, &slot, &loc)) {
		class_unlock(c);
		pool_misuse(to_pool ? "pool_write" : "pool_read", h);
		return -EINVAL;
	}
	if (len > obj_size(c, s, slot))
		ret = -EINVAL;
	else if (to_pool)
		memcpy(loc_addr(p, loc), buf, len);
	else
		memcpy(buf, loc_addr(p, loc), len);
	debug_check(p, c, s, to_pool ? "pool_write" : "pool_read");
	class_unlock(c);
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

/* Move the object in slot i of src to a free slot of dst (dst may be src
 * itself when dst_slot is given, for trimming). Pages dst needs are charged
 * without the limit: compaction never grows the pool overall. */
static void obj_move(struct pool *p, struct pool_class *c, struct span *src,
		     uint32_t i, struct span *dst, uint32_t j)
{
	uint32_t br = src->backref[i];

	memcpy(loc_addr(p, span_loc(c, dst, j)), loc_addr(p, span_loc(c, src, i)),
	       c->size - (br >> BR_DELTA_SHIFT));
	dst->backref[j] = br;
	ht_set(c, br & BR_INDEX, span_loc(c, dst, j));
	ADD(c->counters[POOL_C_MIGRATED], 1);
}

/* Move objects from src into dst until src is empty, dst is full or max
 * moves are done. Leaves an emptied src off every list, still linked. */
static size_t span_drain(struct pool *p, struct pool_class *c,
			 struct span *src, struct span *dst, size_t max)
{
	size_t n = 0;

	for (uint32_t i = src->bump; i-- > 0 && n < max;) {
		uint32_t j, old_src = src->inuse, old_dst = dst->inuse;

		if (!src->inuse || dst->inuse == c->objs)
			break;
		if (!slot_live(src, i))
			continue;
		j = dst->free_head != SLOT_NONE ? dst->free_head : dst->bump;
		if (j == dst->bump && pages_for(c, j + 1) > dst->resident) {
			uint32_t need = pages_for(c, j + 1);

			pool_charge(p, need - dst->resident, false);
			span_grow(c, dst, need);
		}
		span_take_slot(dst, j);
		obj_move(p, c, src, i, dst, j);
		span_put_slot(src, i);
		src->inuse--;
		dst->inuse++;
		if (src->inuse)
			span_regroup(c, src, old_src);
		else
			group_del(c, src, class_group(c, old_src));
		span_regroup(c, dst, old_dst);
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
		obj_move(p, c, s, hi - 1, s, lo);
		s->backref[hi - 1] = BR_FREE;
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
	if (s->resident > need &&
	    !arena_release(&p->arena, arena_addr(&p->arena, s->page + need),
			   (size_t)(s->resident - need) << PAGE_SHIFT, false)) {
		uint32_t diff = s->resident - need;

		ADD(c->resident, -(uint64_t)diff);
		__atomic_sub_fetch(&p->pages, diff, __ATOMIC_RELAXED);
		s->resident = (uint8_t)need;
		*freed += diff;
	}
	return n;
}

/* Emptiest unpinned partial span used below usage_pct, or NULL. */
static struct span *pick_src(struct pool_class *c, unsigned int usage_pct)
{
	for (uint32_t m = c->group_mask; m; m &= m - 1) {
		unsigned int g = __builtin_ctz(m);

		if (usage_pct < 100 && g * 100 >= usage_pct * NR_PARTIAL)
			break;
		for (struct span *s = c->groups[g]; s; s = s->next)
			if (!span_pinned(s) &&
			    (usage_pct >= 100 ||
			     (uint32_t)s->inuse * 100 < usage_pct * c->objs))
				return s;
	}
	return NULL;
}

/* Fullest partial span other than src, or NULL. */
static struct span *pick_dst(struct pool_class *c, struct span *src)
{
	for (uint32_t m = c->group_mask; m;) {
		unsigned int g = 31 - __builtin_clz(m);

		for (struct span *s = c->groups[g]; s; s = s->next)
			if (s != src)
				return s;
		m &= ~(1u << g);
	}
	return NULL;
}

/*
 * One bounded compaction step on a locked class: release the cached empty
 * span, then move at most max objects. Spans it empties go on *rel. Sets
 * *more when it stopped for the budget with work left.
 */
static size_t class_compact_step(struct pool *p, struct pool_class *c,
				 unsigned int usage_pct, size_t max,
				 size_t *freed, struct span **rel, bool *more)
{
	struct span *s = c->groups[G_EMPTY];
	size_t moved = 0;

	*more = false;
	if (s) {
		group_del(c, s, G_EMPTY);
		*freed += s->resident;
		span_unlink(p, c, s);
		s->next = *rel;
		*rel = s;
	}
	if (!c->nr_spans && c->hwm)
		ht_reset(c);
	for (;;) {
		uint64_t partial = c->nr_spans - c->nr_full;
		struct span *src, *dst;

		if (usage_pct >= 100) {
			if (partial < 2)
				break;
		} else {
			uint64_t used = c->inuse - c->nr_full * c->objs;

			/* Only when the emptiest span can be emptied. */
			if (partial * c->objs - used < c->objs)
				break;
		}
		src = pick_src(c, usage_pct);
		dst = src ? pick_dst(c, src) : NULL;
		if (!dst)
			break;
		if (moved == max) {
			*more = true;
			break;
		}
		moved += span_drain(p, c, src, dst, max - moved);
		if (!src->inuse) {
			*freed += src->resident;
			span_unlink(p, c, src);
			src->next = *rel;
			*rel = src;
		}
	}
	if (usage_pct >= 100 && !*more && c->nr_spans - c->nr_full == 1 &&
	    c->group_mask) {
		s = c->groups[31 - __builtin_clz(c->group_mask)];
		moved += span_trim(p, c, s, max - moved, freed, more);
	}
	return moved;
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

		do {
			struct span *rel = NULL;
			size_t max = budget - moved;

			if (max > COMPACT_BATCH)
				max = COMPACT_BATCH;
			class_lock(c);
			moved += class_compact_step(p, c, usage_pct, max,
						    &freed, &rel, &more);
			debug_check_full(p, c, "pool_compact");
			class_unlock(c);
			spans_release(p, rel);
		} while (more && moved < budget);
		if (more) {
			finished = false;
			WR(p->compact_cursor, (start + i) % n);
		}
	}
	if (done)
		*done = finished;
	return freed;
}

/* ----------------------------------------------------------------- stats */

unsigned int pool_frag_pct(struct pool *p)
{
	uint64_t span = RD(p->pages) * PAGE_SIZE, used = 0;

	for (uint32_t i = 0; i < p->nr_classes; i++)
		used += RD(p->cls[i].inuse) * p->cls[i].size;
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
	uint64_t bytes = RD(p->backref_bytes);

	for (uint32_t i = 0; i < p->nr_classes; i++)
		bytes += ht_bytes(RD(p->cls[i].hwm));
	return bytes;
}

static uint64_t pool_meta_bytes(struct pool *p)
{
	return sizeof(*p) + p->nr_classes * sizeof(p->cls[0]) +
	       RD(p->desc_bytes) + arena_meta_bytes(&p->arena);
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
		cs->spans = RD(c->nr_spans);
		cs->objs_inuse = RD(c->inuse);
		st->objs += cs->objs_inuse;
		st->live_bytes += RD(c->live_bytes);
		st->class_bytes += cs->objs_inuse * c->size;
		for (unsigned int k = 0; k < POOL_C_NR; k++)
			st->counters[k] += RD(c->counters[k]);
	}
	st->pages = RD(p->pages);
	st->span_bytes = st->pages * PAGE_SIZE;
	st->handle_bytes = pool_handle_bytes(p);
	st->meta_bytes = pool_meta_bytes(p);
	st->limit_bytes = RD(p->limit_bytes);
}

uint64_t pool_mem_bytes(struct pool *p)
{
	return RD(p->pages) * PAGE_SIZE + pool_handle_bytes(p) +
	       pool_meta_bytes(p);
}

bool pool_is_valid(struct pool *p, const char **why)
{
	const char *bad = NULL;
	uint64_t resident = 0;
	uint32_t i;

	for (i = 0; i < p->nr_classes; i++)
		pthread_mutex_lock(&p->cls[i].lock);
	for (i = 0; i < p->nr_classes && !bad; i++) {
		bad = class_check(p, &p->cls[i]);
		resident += p->cls[i].resident;
	}
	if (!bad && resident != RD(p->pages))
		bad = "pool: resident pages != sum over classes";
	if (!bad)
		arena_is_valid(&p->arena, &bad);
	for (i = p->nr_classes; i-- > 0;)
		pthread_mutex_unlock(&p->cls[i].lock);
	if (bad && why)
		*why = bad;
	return !bad;
}
