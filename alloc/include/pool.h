/* SPDX-License-Identifier: MIT */
/*
 * pool.h - a handle-indirected pool for objects of 1..4096 bytes.
 *
 * Handles: an object is named by a 32-bit handle, never 0, the index of an
 * entry in a handle table that holds the object's current location.
 * Compaction moves objects and changes only that entry, so a handle stays
 * valid until its pool_free(). The bytes are reached through pool_map()
 * (which pins the object in place until pool_unmap()), pool_read() or
 * pool_write(). A freed handle's index is reused by later allocations.
 *
 * Size classes: a request is rounded up to a 16-byte step from 32 to 4096.
 * A class's objects live in spans, runs of 1..32 contiguous pages whose
 * length is chosen per class to waste the least; steps whose spans come
 * out identical share a class. An object may cross a page boundary inside
 * its span and is contiguous in memory. pool_get_stats() lists the classes.
 *
 * Memory: spans are carved from one range of address space reserved at
 * pool_create() (MAP_NORESERVE, MADV_NOHUGEPAGE whatever the THP mode; at
 * most POOL_ARENA_MAX), the pool's bookkeeping and pool_meta_alloc()'s
 * objects from a second one, the metadata heap (alloc/mheap.h), not from
 * malloc. Only memory that is resident is counted, and all of it is:
 *   pool_mem_bytes() == span_bytes + reserve_bytes + handle_bytes
 *                       + meta_bytes               (pool_stats, at rest)
 * span_bytes: the span pages objects have reached, and the page ahead
 * that is faulted in with them (or by the refill thread, with
 * pool_config.refill), so a span's untouched tail costs nothing;
 * reserve_bytes: first pages of runs kept resident for new spans (at most
 * pool_config.reserve_bytes, given back by a full compaction;
 * alloc/arena.h); handle_bytes: the handle tables and back-references;
 * meta_bytes: the rest of the bookkeeping (a fixed ~0.4 MB of class and
 * shard structures among it) and the heap's memory no live object holds.
 * The caller counts the usable bytes of its own pool_meta_alloc() objects.
 * An emptied span goes back to the OS at once (but one per shard of a
 * class, kept for reuse until a compaction); a handle table keeps its
 * class's high-water mark until the class empties. Under mlockall(), use
 * MCL_ONFAULT: MCL_FUTURE alone would populate the whole reservation.
 *
 * Cost per live object: 8 bytes of bookkeeping, a 4-byte handle-table entry
 * (the location, in 16-byte units) and a 4-byte back-reference in its span
 * descriptor (the handle's 24-bit index, for compaction, and 8 bits of
 * class size - requested size, so pool_obj_size() and live_bytes are
 * exact); per span, a 32-byte descriptor (back-references rounded up to a
 * cache line) and 8 bytes per page in the page map. Objects are also
 * rounded up to their class (at most 15 bytes, more in merged classes and
 * for an object a full compaction moved into a larger class, at most 254):
 *   span_bytes >= class_bytes >= live_bytes
 * Measured figures: tests/bench/README.md, bench-pool.
 *
 * Limits: at most 2^24 - 1024 live objects per size class (handle index
 * space) and the arena size; beyond either pool_alloc() returns -ENOMEM.
 *
 * Threads: every function may be called from any thread at any time,
 * including while pool_compact() runs in another thread. Each size class is
 * split into 4 shards with their own lock, spans and free handle indices; a
 * thread allocates in the shard it was dealt (in turn, at its first
 * allocation; a thread keeps its shard wherever it runs), and frees, maps,
 * reads and writes take the lock of the shard holding the object (of a
 * larger class, for an object a full compaction moved there). There is
 * no global lock on the alloc/free/read/write path (the arena lock is taken
 * only when a span is created or returned). Compaction takes the shard
 * locks of one class at a time and moves objects across its shards (a full
 * compaction's last step, those of two neighbouring classes).
 *
 * Errors: functions return 0 or -errno; they never print and never exit.
 * Debug builds (PF_DEBUG) abort with a message on a double free or a stale
 * handle (one whose index has since been reused by a new object cannot be
 * told apart), and run invariant checks after every operation: the touched
 * span and its shard's counters each time, the whole shard every 1024
 * operations on it, the whole class after every compaction step that
 * changed it. pool_is_valid() checks everything.
 */
#ifndef PAGEFOLD_POOL_H
#define PAGEFOLD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_PAGE_SIZE 4096u
#define POOL_MAX_OBJ   4096u

/* 0 is never a valid handle: callers may use it as "no object". */
typedef uint32_t pool_handle_t;

struct pool;

struct pool_config {
	/* Most bytes of span memory the pool may hold; 0 = no limit. */
	uint64_t limit_bytes;
	/* Virtual address space to reserve for spans; 0 = the default (and
	 * maximum), POOL_ARENA_MAX. Smaller values suit tests. */
	uint64_t arena_bytes;
	/* Fault pool pages in ahead of the writers in a background thread
	 * (see "Memory" above); off: the writer faults them in. */
	bool refill;
	/* Bound on the reserve of resident pages kept outside spans for new
	 * spans (ready runs: the first pages of freed spans, and those the
	 * refill faults in ahead); 0 = none. Counted in pool_mem_bytes(). */
	uint64_t reserve_bytes;
};

/* The reserve's upper bound (its default is its user's: the store's
 * STORE_POOL_RESERVE_DEFAULT). */
#define POOL_RESERVE_MAX     (UINT64_C(256) << 20)

#define POOL_ARENA_MAX (UINT64_C(0xff000000) * 16) /* 64 GiB - 256 MiB */

/* NULL on allocation failure. cfg may be NULL for defaults. */
struct pool *pool_create(const struct pool_config *cfg);
/* Frees everything; accepts NULL. Outstanding handles become invalid. */
void pool_destroy(struct pool *pool);

/*
 * Allocate an object of size bytes (1..4096). On success stores a non-zero
 * handle in *handle and returns 0. -EINVAL for a bad size, -ENOMEM when
 * memory or the pool limit is exhausted; the pool is unchanged on error.
 * The object's contents are undefined until written.
 * Called by tests and bench-pool only: the store uses pool_alloc_within().
 */
int pool_alloc(struct pool *pool, size_t size, pool_handle_t *handle);

/*
 * pool_alloc() for a caller that shares one memory budget between the pool
 * and its own data: also fails, with -ENOSPC and the pool unchanged, when
 * pool_mem_bytes() would pass max_mem once the allocation is done (a new
 * span's pages, descriptor and page-map entries, a new handle-table page
 * included). max_mem 0: no such cap. Threads allocating at once each check
 * against the memory in use when they look, so together they may pass
 * max_mem by what they allocate concurrently. When src is not NULL, size
 * bytes of it are copied into the object under the same lock (saving the
 * second lookup a pool_write() would make).
 */
int pool_alloc_within(struct pool *pool, size_t size, uint64_t max_mem,
		      const void *src, pool_handle_t *handle);

/* Free an object. A stale handle or double free aborts in debug builds. */
void pool_free(struct pool *pool, pool_handle_t handle);

/* Size the object was allocated with (not its class size); 0 if invalid. */
size_t pool_obj_size(struct pool *pool, pool_handle_t handle);

/*
 * Zero-copy access: pool_map() returns the object's address and pins it so
 * compaction will not move it until the matching pool_unmap(). Objects are
 * contiguous in memory even when they cross a page boundary. Keep the
 * mapping short (a memcpy or a decompression); many may be held at once.
 * Writing through a mapping is allowed.
 */
void *pool_map(struct pool *pool, pool_handle_t handle);
void pool_unmap(struct pool *pool, pool_handle_t handle);

/* Copy-in / copy-out of len bytes at the start of the object; len must not
 * exceed the object's size (-EINVAL otherwise). Called by tests and
 * bench-pool only: the store copies through pool_map() and
 * pool_alloc_within(). */
int pool_write(struct pool *pool, pool_handle_t handle, const void *src, size_t len);
int pool_read(struct pool *pool, pool_handle_t handle, void *dst, size_t len);

/*
 * Compaction in budgeted steps. Moves objects out of the emptiest spans of a
 * class into the fullest ones, frees the spans it empties, and changes
 * nothing but handle-table entries. Only spans whose use (in-use objects /
 * objects per span, in percent) is below usage_pct are emptied: 100 means a
 * full compaction ("shrink"), which leaves at most one partly used span per
 * class and then packs those spans' objects into larger classes where that
 * frees pages (their class_bytes grow by the larger slots). At most budget
 * objects are moved per call; a class's shard locks are held for a bounded
 * number of moves at a time so foreground work interleaves.
 *
 * Returns the number of pages released to the OS by this call (emptied
 * spans, cached empty spans, trimmed tails); the spans objects move into may
 * touch new pages meanwhile, so stats.pages can fall by less. *done (may be
 * NULL) is set to true when this call got through every class without
 * running out of budget: call again until it is. Mapped (pinned) spans are
 * never emptied, so they can leave more than one partly used span.
 */
size_t pool_compact(struct pool *pool, size_t budget, unsigned int usage_pct,
		    bool *done);

/* Fragmentation of the pool in percent: 100 * (bytes in spans - bytes of
 * live objects rounded to their class) / bytes in spans. Cheap. */
unsigned int pool_frag_pct(struct pool *pool);

/* Change the limit at run time; below current use, new spans are refused
 * until use falls under it. Called by tests only: the store keeps its own
 * limit (pool_alloc_within()'s max_mem). */
void pool_set_limit(struct pool *pool, uint64_t limit_bytes);

/* Bound the reserve (pool_config.reserve_bytes; rounded down to pages, at
 * most POOL_RESERVE_MAX); a lower bound releases it at once. */
void pool_set_reserve(struct pool *pool, uint64_t bytes);
uint64_t pool_get_reserve(struct pool *pool);

/* Statistics. Counters are read without stopping the pool, so a snapshot
 * taken while others work is consistent per field, not across fields. */
enum pool_counter {
	POOL_C_ALLOCS,          /* successful pool_alloc calls */
	POOL_C_FREES,           /* pool_free calls */
	POOL_C_MIGRATED,        /* objects moved by compaction */
	POOL_C_SPANS_ALLOCATED, /* spans created */
	POOL_C_SPANS_FREED,     /* spans returned to the OS */
	POOL_C_LOCK_ACQUIRED,   /* class-lock acquisitions */
	POOL_C_LOCK_CONTENDED,  /* of those, ones that had to wait */
	POOL_C_ENOMEM,          /* allocations refused for memory or limit */
	POOL_C_NR
};

struct pool_class_stats {
	uint32_t obj_size;       /* bytes per object slot in this class */
	uint32_t pages_per_span; /* pages in one span */
	uint32_t objs_per_span;  /* object slots in one span */
	uint64_t spans;          /* spans currently held */
	uint64_t objs_inuse;     /* live objects */
};

struct pool_stats {
	uint64_t pages;          /* pages held in spans */
	uint64_t span_bytes;     /* pages * POOL_PAGE_SIZE */
	uint64_t live_bytes;     /* sum of sizes requested by live objects */
	uint64_t class_bytes;    /* sum of class sizes of live objects */
	uint64_t handle_bytes;   /* memory of handle tables and back-refs */
	uint64_t meta_bytes;     /* all other pool bookkeeping (descriptors,
				    the metadata heap's memory that no live
				    object holds) */
	uint64_t heap_bytes;     /* memory held by the metadata heap (live
				    objects, partly used and kept slabs,
				    tables) */
	uint64_t heap_live_bytes; /* of it, live objects (usable sizes): the
				    pool's own, counted in handle_bytes and
				    meta_bytes, and its callers' */
	uint64_t objs;           /* live objects */
	uint64_t limit_bytes;    /* current limit, 0 = none */
	uint64_t reserve_bytes;  /* resident pages kept for new spans, in
				    pool_mem_bytes() (not in pages) */
	uint64_t ready_hits;     /* new spans that found their first pages
				    resident in the reserve */
	uint64_t ready_misses;   /* ... that did not (reserve on) */
	uint64_t refill_pages;   /* pages the refill thread faulted in */
	uint64_t writer_pages;   /* span pages the allocating thread faulted
				    in itself (on the write path) */
	bool refill;             /* the refill thread runs */
	uint64_t refill_cpu_ns;  /* CPU time the refill thread used */
	uint32_t refill_queued;  /* pages asked for, not yet taken by it */
	uint64_t counters[POOL_C_NR];
	uint32_t nr_classes;     /* entries used in classes[] */
	struct pool_class_stats classes[256];
};

void pool_get_stats(struct pool *pool, struct pool_stats *st);

/* Bytes of memory the pool holds right now (spans + bookkeeping, the
 * metadata heap's memory not in live objects); what a memory limit above
 * the pool should count, together with the usable bytes of the caller's
 * own pool_meta_alloc() objects. Cheap. */
uint64_t pool_mem_bytes(struct pool *pool);

/*
 * Metadata memory for the caller (fixed addresses, any size, from the
 * pool's metadata heap; see above): NULL when size is 0 or the heap's
 * reservation is used up (then use malloc). *usable gets the bytes the
 * object takes (its class size; whole pages above 8 KiB): the caller counts
 * them, pool_mem_bytes() counts the rest of the heap. Zeroed when zero is
 * set. A request whose size is a multiple of 64 (up to 4096) gets a 64-byte
 * aligned object. pool_meta_free() returns the object's usable bytes;
 * pool_meta_owns() says whether p lies in the heap (a range check: to tell
 * its objects from malloc's).
 */
void *pool_meta_alloc(struct pool *pool, size_t size, bool zero,
		      size_t *usable);
size_t pool_meta_free(struct pool *pool, void *p);
bool pool_meta_owns(struct pool *pool, const void *p);
/* What allocating size bytes now would add to pool_mem_bytes() plus the
 * object's usable bytes, i.e. to the memory held (see mheap_cost() in
 * alloc/mheap.h): what a limit must check first. */
uint64_t pool_meta_cost(struct pool *pool, size_t size);
/* Release the empty slabs the heap keeps for reuse; returns pages. */
uint64_t pool_meta_trim(struct pool *pool);

/* Run the full invariant checker; false (and a message in *why) if broken.
 * Takes every shard lock in turn. For tests and debug builds. */
bool pool_is_valid(struct pool *pool, const char **why);

#endif /* PAGEFOLD_POOL_H */
