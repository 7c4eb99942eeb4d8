// SPDX-License-Identifier: MIT
/*
 * backing.c - the disk tier: writeback of pages to a backing file, the
 * space map of that file, reads from it, and the writeback policy thread.
 *
 * A writeback walk (as recompress.c's) visits every cluster of every file under
 * its lock and copies the objects of the slots it wants into a batch
 * buffer (object after object, 16-byte aligned); a full batch, or the end
 * of a file, is flushed: whole free blocks are found for it, it is written
 * with one pwrite, and then each slot is switched, under its cluster lock
 * again, to a disk slot if it still holds what the walk saw (a read only
 * changes the age, which is kept out of the comparison; a write or discard
 * replaces the slot: its bytes in the file are then freed at once). The
 * object in memory is freed afterwards.
 *
 * A folded object (a fold entry several slots name) is written once per
 * walk: the walk takes a reference on the entry (so its id stays the same
 * object), remembers where it was written and points every slot of that
 * entry it meets at the same bytes; the disk object then has one reference
 * per slot, kept in a small table (refs) while it has two or more.
 *
 * lock ordering: bd->wb (one walk or attach at a time) -> file lock ->
 * cluster lock -> bd->io -> bd->lock -> fold shard lock | pool locks.
 * A flush holds bd->io for writing with no cluster lock held; a reader
 * takes it for reading under its cluster lock and keeps it across its
 * pread, so the bytes it reads cannot be reused or punched meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <uthash.h>

#include "backing.h"
#include "bg.h"
#include "codec.h"
#include "hindex.h"
#include "store-int.h"

#define BLK		4096u
#define GRAN		16u			/* object alignment in the file */
#define BLK_ALLOC	0x8000u
#define BLK_LIVE	0x1fffu
#define BATCH_BYTES	(256u * 1024)		/* one pwrite */
#define BATCH_ENTS	2048u
#define MAX_GRANULES	(UINT64_C(0xfffffffe))	/* payload = granule + 1 */
#define MAX_BLOCKS	((uint32_t)(MAX_GRANULES * GRAN / BLK))
#define COMPACT_EVERY	1024u
#define AGE_TICKS	8u

struct refent {
	uint32_t key;		/* granule + 1 */
	uint32_t refs;		/* >= 2 */
};

struct backing {
	struct store *st;
	struct meta_mem mem;		/* blk, pend, refs: mem_used_total */
	pthread_mutex_t wb;
	pthread_rwlock_t io;
	pthread_mutex_t lock;		/* everything below up to the stats */
	int fd;				/* -1: none */
	char *path;
	bool direct, punch;
	uint16_t *blk;
	uint32_t cap;			/* entries of blk */
	uint32_t end;			/* file size in blocks */
	uint32_t lowfree;		/* no free block below this */
	uint64_t file_blocks;		/* allocated blocks */
	uint64_t live_bytes;		/* sum of live over blocks */
	uint64_t objs;			/* live objects */
	uint32_t *pend;			/* blocks to punch out */
	uint32_t npend, pend_cap;
	struct refent *refs;		/* refs_n in use of refs_cap */
	uint32_t refs_n, refs_cap;
	struct hindex refs_idx;		/* refs by key */
	/* stats */
	_Atomic uint64_t bd_count, bd_reads, bd_writes;
	_Atomic uint64_t failed_writes, failed_reads, punched;
	_Atomic uint64_t gen;		/* raised when the file's bytes change
					   (io held for writing) */
	/* settings */
	_Atomic uint64_t limit;		/* pages still allowed */
	_Atomic bool limit_enable;
	_Atomic uint64_t after;		/* writeback_after, seconds */
	_Atomic uint64_t mem_high;
	struct bg_thread t;
	/* The walk's state and batch buffer (~370 KiB), made while a file
	 * is attached, counted in mem_used_total as the recompression
	 * walk's buffers are (walk_bytes). Used under wb. */
	struct wb_walk *walk;
	_Atomic uint64_t walk_bytes;
};

/* A new value for bd->gen, unique over every backing of the process: a
 * reader's buffer names its backing by address, which a later store may
 * reuse. io held for writing. */
static _Atomic uint64_t gen_next;

static void gen_bump(struct backing *bd)
{
	atomic_store_explicit(&bd->gen, atomic_fetch_add(&gen_next, 1) + 1,
			      memory_order_release);
}

/* ---- space map (bd->lock held) ---- */

static int blk_reserve(struct backing *bd, uint32_t n)
{
	uint32_t cap = bd->cap ? bd->cap : 1024;
	uint16_t *nb;

	if (n <= bd->cap)
		return 0;
	if (n > MAX_BLOCKS)
		return -EFBIG;
	while (cap < n)
		cap = cap > MAX_BLOCKS / 2 ? MAX_BLOCKS : cap * 2;
	nb = meta_alloc(&bd->mem, (size_t)cap * sizeof(*nb), META_ZERO, NULL);
	if (!nb)
		return -ENOMEM;
	if (bd->blk)
		memcpy(nb, bd->blk, (size_t)bd->cap * sizeof(*nb));
	meta_free(&bd->mem, bd->blk);
	bd->blk = nb;
	bd->cap = cap;
	return 0;
}

static void pend_add(struct backing *bd, uint32_t b)
{
	if (bd->npend == bd->pend_cap) {
		uint32_t cap = bd->pend_cap ? bd->pend_cap * 2 : 256;
		uint32_t *np = meta_alloc(&bd->mem, (size_t)cap * sizeof(*np),
					  0, NULL);

		if (!np)
			return;	/* stays allocated until it is reused... never;
				   counted as fragmentation, not lost */
		if (bd->pend)
			memcpy(np, bd->pend, bd->npend * sizeof(*np));
		meta_free(&bd->mem, bd->pend);
		bd->pend = np;
		bd->pend_cap = cap;
	}
	bd->pend[bd->npend++] = b;
}

/* Add d (+1/-1) times the bytes of [off, off + size) to the blocks. */
static void range_live(struct backing *bd, uint64_t off, unsigned int size,
		       int d)
{
	while (size) {
		uint32_t b = (uint32_t)(off / BLK);
		unsigned int n = BLK - (unsigned int)(off % BLK);

		if (n > size)
			n = size;
		if (d > 0) {
			bd->blk[b] += (uint16_t)n;
		} else {
			bd->blk[b] -= (uint16_t)n;
			if (!(bd->blk[b] & BLK_LIVE))
				pend_add(bd, b);
		}
		off += n;
		size -= n;
	}
}

/* ---- shared objects: entries ent[0..refs_n), found by key in refs_idx ---- */

#define REFS_MIN_CELLS 64u

static uint32_t ref_hash(uint32_t key)
{
	return key * 2654435761u;
}

static uint32_t ref_hash_of(void *ctx, uint32_t id)
{
	const struct backing *bd = ctx;

	return ref_hash(bd->refs[id].key);
}

struct ref_key {
	const struct backing *bd;
	uint32_t key;
};

static bool ref_live(void *ctx, uint32_t id)
{
	const struct backing *bd = ctx;

	return id < bd->refs_n;
}

static bool ref_is(void *arg, uint32_t id)
{
	const struct ref_key *k = arg;

	return k->bd->refs[id].key == k->key;
}

static struct refent *ref_find(struct backing *bd, uint32_t key)
{
	struct ref_key k = { bd, key };
	uint32_t id = hindex_find(&bd->refs_idx, ref_hash(key), ref_is, &k);

	return id == HINDEX_NONE ? NULL : &bd->refs[id];
}

/* Room for one more entry and its cell. */
static int ref_room(struct backing *bd)
{
	if (bd->refs_n == bd->refs_cap) {
		uint32_t cap = bd->refs_cap ? bd->refs_cap * 2 : 64;
		struct refent *nr = meta_alloc(&bd->mem,
					       (size_t)cap * sizeof(*nr), 0,
					       NULL);

		if (!nr)
			return -ENOMEM;
		if (bd->refs_n)
			memcpy(nr, bd->refs, bd->refs_n * sizeof(*nr));
		meta_free(&bd->mem, bd->refs);
		bd->refs = nr;
		bd->refs_cap = cap;
	}
	return hindex_reserve(&bd->refs_idx, &bd->mem, REFS_MIN_CELLS,
			      HINDEX_MAX_CELLS, ref_hash_of, bd);
}

/* Remove e: out of the index, and the last entry moves into its place. */
static void ref_remove(struct backing *bd, struct refent *e)
{
	uint32_t id = (uint32_t)(e - bd->refs), last = bd->refs_n - 1;

	hindex_remove(&bd->refs_idx, ref_hash(e->key), id, ref_hash_of, bd);
	if (id != last) {
		uint32_t pos = hindex_cell_of(&bd->refs_idx,
					      ref_hash(bd->refs[last].key),
					      last);

		hindex_renumber(&bd->refs_idx, pos, id);
		bd->refs[id] = bd->refs[last];
	}
	bd->refs_n--;
}

/* One more reference to the object at key (granule + 1). */
static int obj_ref(struct backing *bd, uint32_t key)
{
	struct refent *e = ref_find(bd, key);

	if (e) {
		e->refs++;
		return 0;
	}
	if (ref_room(bd))
		return -ENOMEM;
	bd->refs[bd->refs_n] = (struct refent){ .key = key, .refs = 2 };
	hindex_insert(&bd->refs_idx, ref_hash(key), bd->refs_n);
	bd->refs_n++;
	return 0;
}

/* Drop a reference; the last one frees the object's bytes. */
static void obj_unref(struct backing *bd, uint32_t key, unsigned int size)
{
	struct refent *e = ref_find(bd, key);

	if (e) {
		if (--e->refs == 1)
			ref_remove(bd, e);
		return;
	}
	range_live(bd, (uint64_t)(key - 1) * GRAN, size, -1);
	bd->live_bytes -= size;
	bd->objs--;
}

/* n wholly free blocks in a row: the first, or UINT32_MAX. */
static uint32_t blocks_alloc(struct backing *bd, uint32_t n)
{
	uint32_t b, run = 0, start = 0;

	for (b = bd->lowfree; b < bd->end; b++) {
		if (bd->blk[b]) {
			run = 0;
			continue;
		}
		if (!run)
			start = b;
		if (++run == n)
			goto found;
	}
	if (!run)
		start = bd->end;
	if ((uint64_t)start + n > MAX_BLOCKS || blk_reserve(bd, start + n))
		return UINT32_MAX;
	bd->end = start + n;
found:
	for (b = start; b < start + n; b++)
		bd->blk[b] = BLK_ALLOC;
	bd->file_blocks += n;
	if (start == bd->lowfree)
		bd->lowfree = start + n;
	return start;
}

/* Blocks of a batch that could not be written: free again (never read). */
static void blocks_unalloc(struct backing *bd, uint32_t start, uint32_t n)
{
	uint32_t b;

	for (b = start; b < start + n; b++)
		bd->blk[b] = 0;
	bd->file_blocks -= n;
	if (start < bd->lowfree)
		bd->lowfree = start;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Give the block map, the pending list and the refs table back. */
static void map_free(struct backing *bd)
{
	meta_free(&bd->mem, bd->blk);
	meta_free(&bd->mem, bd->pend);
	meta_free(&bd->mem, bd->refs);
	hindex_free(&bd->refs_idx, &bd->mem);
	bd->blk = NULL;
	bd->pend = NULL;
	bd->refs = NULL;
	bd->cap = bd->lowfree = 0;
	bd->pend_cap = bd->refs_cap = 0;
}

/* Punch out the queued empty blocks and cut a free tail off the file; io
 * held for writing, and lock. */
static void blocks_reclaim(struct backing *bd)
{
	uint32_t i, run_start = 0, run = 0;

	/* Punched or cut, the bytes readers keep are stale (io is held for
	 * writing here). */
	gen_bump(bd);
	if (bd->npend)
		qsort(bd->pend, bd->npend, sizeof(*bd->pend), cmp_u32);
	for (i = 0; i <= bd->npend; i++) {
		uint32_t b = i < bd->npend ? bd->pend[i] : UINT32_MAX;

		if (b != UINT32_MAX && bd->blk[b] != BLK_ALLOC)
			continue;	/* refilled? never; or a duplicate */
		if (b != UINT32_MAX) {
			bd->blk[b] = 0;
			bd->file_blocks--;
			if (b < bd->lowfree)
				bd->lowfree = b;
		}
		if (run && b == run_start + run) {
			run++;
			continue;
		}
		if (run && bd->punch &&
		    fallocate(bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)run_start * BLK, (off_t)run * BLK) == 0)
			atomic_fetch_add(&bd->punched, run);
		run_start = b;
		run = 1;
	}
	bd->npend = 0;
	if (bd->end && !bd->blk[bd->end - 1]) {
		uint32_t e = bd->end;

		while (e && !bd->blk[e - 1])
			e--;
		if (ftruncate(bd->fd, (off_t)e * BLK) == 0)
			bd->end = e;
	}
	if (!bd->end && !bd->refs_n)
		map_free(bd);	/* nothing on disk: the map goes back too */
}

void backing_reclaim(struct backing *bd)
{
	pthread_rwlock_wrlock(&bd->io);
	pthread_mutex_lock(&bd->lock);
	if (bd->fd >= 0 && bd->npend)
		blocks_reclaim(bd);
	pthread_mutex_unlock(&bd->lock);
	pthread_rwlock_unlock(&bd->io);
}

/* ---- the public side of one slot ---- */

void backing_put(struct backing *bd, slot_t s)
{
	pthread_mutex_lock(&bd->lock);
	obj_unref(bd, slot_payload(s), slot_size(s));
	pthread_mutex_unlock(&bd->lock);
	atomic_fetch_sub(&bd->bd_count, 1);
}

void backing_read_begin(struct backing *bd)
{
	pthread_rwlock_rdlock(&bd->io);
}

void backing_read_end(struct backing *bd)
{
	pthread_rwlock_unlock(&bd->io);
}

/*
 * Each reading thread keeps the last stretch of the file it read: a page
 * that follows the one read before it (a large read is split in chunks of
 * 16 pages, each read in order by one thread; objects written back
 * together lie one after the other) is read with the next RA_BYTES at
 * once, and the pages after it come from the buffer. The buffer is good
 * while bd->gen is unchanged: every batch written and every punch (the
 * only things that change the file's bytes) raise it, under io held for
 * writing, and a reader holds io for reading.
 */
#define RA_BYTES (64u * 1024)

struct rcache {
	const struct backing *bd;
	uint64_t gen;
	uint64_t start, end;		/* the file's bytes in buf */
	uint64_t last_end;		/* end of the last object read */
	unsigned char *buf;		/* RA_BYTES + BLK, block aligned */
};

/* store_read_hint(): pages this thread reads in a row from here, this
 * one included (0 or 1: no hint). */
static _Thread_local unsigned int read_hint;

void store_read_hint(unsigned int pages)
{
	read_hint = pages;
}

static pthread_key_t rc_key;
static pthread_once_t rc_once = PTHREAD_ONCE_INIT;
static bool rc_key_ok;

static void rc_free(void *p)
{
	struct rcache *rc = p;

	free(rc->buf);
	free(rc);
}

static void rc_key_init(void)
{
	rc_key_ok = pthread_key_create(&rc_key, rc_free) == 0;
}

static struct rcache *rc_get(void)
{
	struct rcache *rc;

	pthread_once(&rc_once, rc_key_init);
	if (!rc_key_ok)
		return NULL;
	rc = pthread_getspecific(rc_key);
	if (rc)
		return rc;
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		return NULL;
	if (posix_memalign((void **)&rc->buf, BLK, RA_BYTES + BLK)) {
		free(rc);
		return NULL;
	}
	memset(rc->buf, 0, RA_BYTES + BLK);	/* faulted in now */
	if (pthread_setspecific(rc_key, rc)) {
		rc_free(rc);
		return NULL;
	}
	return rc;
}

int backing_thread_prepare(struct backing *bd)
{
	if (!bd || bd->fd < 0)
		return 0;
	return rc_get() ? 0 : -ENOMEM;
}

int backing_read(struct backing *bd, slot_t s, void *page)
{
	uint64_t off = (uint64_t)(slot_payload(s) - 1) * GRAN;
	unsigned int size = slot_size(s);
	uint64_t start = off & ~(uint64_t)(BLK - 1);
	uint64_t gen = atomic_load_explicit(&bd->gen, memory_order_acquire);
	struct rcache *rc = rc_get();
	const unsigned char *src;
	ssize_t n;
	int err = 0;

	if (!rc) {
		err = -ENOMEM;
		goto out;
	}
	if (rc->bd != bd || rc->gen != gen || off < rc->start ||
	    off + size > rc->end) {
		size_t len = ((off - start + size + BLK - 1) / BLK) * BLK;

		if (rc->bd == bd && off >= rc->last_end &&
		    off < rc->last_end + BLK && len < RA_BYTES) {
			len = RA_BYTES;		/* reading on: read ahead */
		} else if (read_hint > 1) {
			/* The caller reads on: at most a page each. */
			uint64_t want = off - start +
					(uint64_t)read_hint * STORE_PAGE_SIZE;

			want = (want + BLK - 1) / BLK * BLK;
			if (want > RA_BYTES)
				want = RA_BYTES;
			if (want > len)
				len = (size_t)want;
		}
		rc->bd = NULL;
		n = pread(bd->fd, rc->buf, len, (off_t)start);
		if (n < (ssize_t)(off - start + size)) {
			err = -EIO;
			goto out;
		}
		rc->bd = bd;
		rc->gen = gen;
		rc->start = start;
		rc->end = start + (uint64_t)n;
	}
	rc->last_end = off + size;
	src = rc->buf + (off - rc->start);
	if (size == STORE_PAGE_SIZE)
		memcpy(page, src, STORE_PAGE_SIZE);
	else
		err = codec_decode(src, size, page) ? -EIO : 0;
out:
	if (err)
		atomic_fetch_add(&bd->failed_reads, 1);
	else
		atomic_fetch_add(&bd->bd_reads, 1);
	return err;
}

/* ---- the walk ---- */

/* A shared fold entry met by this walk: it holds one reference on the
 * entry and, once written, one on the disk object. */
struct shared {
	uint32_t id;
	uint32_t key;		/* granule + 1 once written, else 0 */
	int obj;		/* its object in the batch, or -1 */
	unsigned int size;
	bool failed;
	UT_hash_handle hh;
};

struct wb_obj {
	uint32_t boff;		/* in the batch */
	unsigned int size;
	struct shared *sh;	/* or NULL */
	bool taken;		/* a slot holds the batch's reference */
};

struct wb_ent {
	uint64_t ci;
	uint16_t i;
	int obj;		/* in the batch; -1: sh already on disk */
	struct shared *sh;
	slot_t seen;		/* without its age */
};

struct wb_walk {
	struct backing *bd;
	struct store *st;
	unsigned int type;	/* STORE_WB_* */
	unsigned int threshold;	/* age from which a page is idle */
	uint64_t mem_high;	/* policy: stop once below; 0 = never */
	const _Atomic bool *stop;
	bool full;		/* limit reached, or the file cannot grow */
	int err;
	uint64_t done, since_compact;
	struct shared *shared;
	unsigned int used, nobj, nent;
	unsigned char *buf;
	struct wb_obj obj[BATCH_ENTS];
	struct wb_ent ent[BATCH_ENTS];
};

#define SLOT_SEEN_MASK (~SLOT_AGE_MASK)

static bool wb_wants(const struct wb_walk *w, slot_t s)
{
	if (slot_type(s) < SLOT_OBJ || slot_on_disk(s))
		return false;
	/* A grouped page's payload is its group's head object, shared with
	 * the group's other pages, its size only a share of the group's
	 * bytes: not an object of its own to copy out. Grouped pages stay
	 * in memory (store.h, "The disk tier"); one that leaves its group
	 * (rewritten, or read and so hot again) can be written back. */
	if (slot_is_group(s))
		return false;
	if (w->type == STORE_WB_INCOMPRESSIBLE)
		return (s & SLOT_KEEP) != 0;
	return slot_of_type(s, w->type & STORE_WB_HUGE, w->type & STORE_WB_IDLE,
			    w->threshold);
}

/* Take one page from the limit; false when it is used up. */
static bool limit_take(struct backing *bd)
{
	uint64_t v;

	if (!atomic_load(&bd->limit_enable))
		return true;
	v = atomic_load(&bd->limit);
	do {
		if (!v)
			return false;
	} while (!atomic_compare_exchange_weak(&bd->limit, &v, v - 1));
	return true;
}

static void limit_give(struct backing *bd, uint64_t n)
{
	if (atomic_load(&bd->limit_enable))
		atomic_fetch_add(&bd->limit, n);
}

/*
 * Does slot s's object still hold bytes (size of them)? Cluster lock held.
 * The slot value the walk saw is not enough: the page may have been
 * discarded and written again meanwhile into the handle the discard freed,
 * at the same size; switching it then would put the old bytes back.
 */
static bool obj_holds(struct store *st, slot_t s, const void *bytes,
		      unsigned int size)
{
	pool_handle_t h = slot_handle(st, s);
	const void *obj = pool_map(st->pool, h);
	bool same;

	if (!obj)
		return false;
	same = memcmp(obj, bytes, size) == 0;
	pool_unmap(st->pool, h);
	return same;
}

/* Install ent e at disk key; true if the slot was still what was seen
 * and, bytes given (the batch's copy), its object still holds them. */
static bool wb_install(struct wb_walk *w, struct store_file *f,
		       struct wb_ent *e, uint32_t key, unsigned int size,
		       const void *bytes)
{
	struct store *st = w->st;
	struct cluster *c;
	slot_t s, new;
	uint32_t h;

	file_rdlock(f);
	c = cdir_lookup(&f->dir, e->ci);
	if (!c) {
		file_rdunlock(f);
		return false;
	}
	futex_lock(&c->lock);
	s = e->i < c->cap ? c->slot[e->i] : 0;
	if ((s & SLOT_SEEN_MASK) != e->seen ||
	    (bytes && !obj_holds(st, s, bytes, size))) {
		futex_unlock(&c->lock);
		file_rdunlock(f);
		return false;
	}
	new = slot_make_obj(SLOT_OBJ, key, size, slot_flag(s)) | SLOT_DISK |
	      (s & SLOT_AGE_MASK);
	slot_account(st, f, s, -1);
	slot_account(st, f, new, 1);
	c->slot[e->i] = new;
	atomic_fetch_add(&w->bd->bd_count, 1);
	futex_unlock(&c->lock);
	file_rdunlock(f);

	/* The memory copy goes. */
	if (slot_type(s) == SLOT_OBJ) {
		object_free(st, slot_payload(s), slot_size(s));
	} else {
		h = fold_put(st->fold, slot_payload(s));
		if (h)
			object_free(st, h, slot_size(s));
	}
	atomic_fetch_add(&w->bd->bd_writes, 1);
	w->done++;
	w->since_compact++;
	return true;
}

static void wb_flush(struct wb_walk *w, struct store_file *f)
{
	struct backing *bd = w->bd;
	uint32_t nblk, start, k;
	uint64_t base = 0;
	bool ok = false;
	ssize_t n = -1;

	if (!w->nent)
		return;
	nblk = (w->used + BLK - 1) / BLK;
	memset(w->buf + w->used, 0, (size_t)nblk * BLK - w->used);

	pthread_rwlock_wrlock(&bd->io);
	pthread_mutex_lock(&bd->lock);
	blocks_reclaim(bd);
	start = w->nobj ? blocks_alloc(bd, nblk) : UINT32_MAX;
	pthread_mutex_unlock(&bd->lock);
	if (!w->nobj) {
		ok = true;	/* only slots of objects already written */
	} else if (start != UINT32_MAX) {
		n = pwrite(bd->fd, w->buf, (size_t)nblk * BLK,
			   (off_t)start * BLK);
		ok = n == (ssize_t)nblk * BLK;
		base = (uint64_t)start * BLK / GRAN;
	}
	if (ok && w->nobj)
		gen_bump(bd);
	pthread_mutex_lock(&bd->lock);
	if (ok) {
		for (k = 0; k < w->nobj; k++) {
			range_live(bd, (base + w->obj[k].boff / GRAN) * GRAN,
				   w->obj[k].size, 1);
			bd->live_bytes += w->obj[k].size;
			bd->objs++;
		}
	} else if (start != UINT32_MAX && w->nobj) {
		blocks_unalloc(bd, start, nblk);
	}
	pthread_mutex_unlock(&bd->lock);
	pthread_rwlock_unlock(&bd->io);

	if (!ok) {
		/* ENOSPC, EIO, too big a file: the pages stay in memory. */
		atomic_fetch_add(&bd->failed_writes, w->nent);
		limit_give(bd, w->nent);
		for (k = 0; k < w->nobj; k++)
			if (w->obj[k].sh) {
				w->obj[k].sh->failed = true;
				w->obj[k].sh->obj = -1;
			}
		w->full = true;
		w->err = n < 0 && start != UINT32_MAX ? -errno : -ENOSPC;
		w->nent = w->nobj = w->used = 0;
		return;
	}
	for (k = 0; k < w->nobj; k++)
		if (w->obj[k].sh) {
			w->obj[k].sh->key = (uint32_t)(base +
						w->obj[k].boff / GRAN) + 1;
			w->obj[k].sh->obj = -1;
			w->obj[k].taken = true;	/* the walk's reference */
		}
	walk_hook(w->st);
	for (k = 0; k < w->nent; k++) {
		struct wb_ent *e = &w->ent[k];
		struct wb_obj *o = e->obj >= 0 ? &w->obj[e->obj] : NULL;
		uint32_t key = o ? (uint32_t)(base + o->boff / GRAN) + 1 :
				   e->sh->key;
		unsigned int size = o ? o->size : e->sh->size;
		bool need_ref = !o || o->taken;

		if (need_ref) {
			pthread_mutex_lock(&bd->lock);
			if (obj_ref(bd, key)) {
				pthread_mutex_unlock(&bd->lock);
				limit_give(bd, 1);
				continue;
			}
			pthread_mutex_unlock(&bd->lock);
		}
		if (wb_install(w, f, e, key, size,
			       o ? w->buf + o->boff : NULL)) {
			if (o)
				o->taken = true;
			continue;
		}
		limit_give(bd, 1);
		if (need_ref) {
			pthread_mutex_lock(&bd->lock);
			obj_unref(bd, key, size);
			pthread_mutex_unlock(&bd->lock);
		}
	}
	/* Objects no slot took (all changed meanwhile): free their bytes. */
	pthread_mutex_lock(&bd->lock);
	for (k = 0; k < w->nobj; k++)
		if (!w->obj[k].taken)
			obj_unref(bd, (uint32_t)(base + w->obj[k].boff / GRAN) + 1,
				  w->obj[k].size);
	pthread_mutex_unlock(&bd->lock);
	w->nent = w->nobj = w->used = 0;
}

/* List the slots of cluster ci the walk wants, copying their objects into
 * the batch; flushes as the batch fills. */
static bool wb_cluster(struct wb_walk *w, struct store_file *f, uint64_t from,
		       uint64_t *ci)
{
	struct store *st = w->st;
	struct cluster *c;
	unsigned int i = 0;

	file_rdlock(f);
	c = cdir_next(&f->dir, from, ci);
	if (!c) {
		file_rdunlock(f);
		return false;
	}
	file_rdunlock(f);
	while (!w->full) {
		bool flush = false;

		file_rdlock(f);
		c = cdir_lookup(&f->dir, *ci);
		if (!c) {
			file_rdunlock(f);
			break;
		}
		futex_lock(&c->lock);
		for (; i < c->cap; i++) {
			slot_t s = c->slot[i];
			struct shared *sh = NULL;
			uint32_t id, handle;
			const void *src;
			unsigned int size;

			if (!wb_wants(w, s))
				continue;
			if (w->nent == BATCH_ENTS ||
			    w->used + slot_size(s) > BATCH_BYTES) {
				flush = true;
				break;
			}
			if (!limit_take(w->bd)) {
				w->full = true;
				w->err = -EIO;	/* as zram at its limit */
				break;
			}
			size = slot_size(s);
			if (slot_type(s) == SLOT_FOLD) {
				id = slot_payload(s);
				HASH_FIND(hh, w->shared, &id, sizeof(id), sh);
				if (sh && sh->failed) {
					limit_give(w->bd, 1);
					continue;
				}
				if (!sh && fold_refs(st->fold, id) > 1) {
					/* Shared: written once, this walk
					 * keeps the entry (and its id). */
					sh = calloc(1, sizeof(*sh));
					if (sh) {
						fold_dup(st->fold, id);
						sh->id = id;
						sh->size = size;
						sh->obj = (int)w->nobj;
						HASH_ADD(hh, w->shared, id,
							 sizeof(id), sh);
					}
				}
				handle = fold_handle(st->fold, id);
			} else {
				handle = slot_payload(s);
			}
			w->ent[w->nent].ci = *ci;
			w->ent[w->nent].i = (uint16_t)i;
			w->ent[w->nent].seen = s & SLOT_SEEN_MASK;
			w->ent[w->nent].sh = sh;
			if (sh && sh->obj != (int)w->nobj) {
				/* In this batch already, or on disk (-1). */
				w->ent[w->nent].obj = sh->obj;
				w->nent++;
				continue;
			}
			src = pool_map(st->pool, handle);
			if (!src) {
				if (sh)
					sh->failed = true;
				limit_give(w->bd, 1);
				continue;
			}
			memcpy(w->buf + w->used, src, size);
			pool_unmap(st->pool, handle);
			w->obj[w->nobj].boff = w->used;
			w->obj[w->nobj].size = size;
			w->obj[w->nobj].sh = sh;
			w->obj[w->nobj].taken = false;
			w->ent[w->nent].obj = (int)w->nobj;
			w->nobj++;
			w->nent++;
			w->used = (w->used + size + GRAN - 1) & ~(GRAN - 1);
		}
		futex_unlock(&c->lock);
		file_rdunlock(f);
		if (!flush)
			break;
		wb_flush(w, f);
	}
	return true;
}

static bool wb_stopped(struct wb_walk *w)
{
	if (w->full)
		return true;
	if (w->stop && atomic_load_explicit(w->stop, memory_order_relaxed))
		return true;
	return w->mem_high && store_mem_used(w->st) <= w->mem_high;
}

static void wb_compact(struct wb_walk *w, unsigned int usage_pct)
{
	compact_run(w->st, usage_pct);
	w->since_compact = 0;
}

static void wb_file(struct wb_walk *w, struct store_file *f)
{
	uint64_t from = 0, ci;

	while (!wb_stopped(w) && wb_cluster(w, f, from, &ci)) {
		if (w->since_compact >= COMPACT_EVERY)
			wb_compact(w, 100 - atomic_load(&w->st->defrag_ratio));
		if (ci >= MAX_CLUSTER)
			break;
		from = ci + 1;
	}
	/* The batch names this file's slots: it goes before the file does. */
	wb_flush(w, f);
}

static void wb_release_shared(struct wb_walk *w)
{
	struct shared *sh, *tmp;

	HASH_ITER(hh, w->shared, sh, tmp) {
		uint32_t h;

		HASH_DEL(w->shared, sh);
		if (sh->key) {
			pthread_mutex_lock(&w->bd->lock);
			obj_unref(w->bd, sh->key, sh->size);
			pthread_mutex_unlock(&w->bd->lock);
		}
		h = fold_put(w->st->fold, sh->id);
		if (h)
			object_free(w->st, h, sh->size);
		free(sh);
	}
}

static int wb_run(struct backing *bd, unsigned int type, unsigned int threshold,
		  uint64_t mem_high, const _Atomic bool *stop, uint64_t *pages)
{
	struct store *st = bd->st;
	struct store_file *f;
	struct wb_walk *w;
	uint64_t cursor = 0, done;
	int err = 0;

	pthread_mutex_lock(&bd->wb);
	if (bd->fd < 0) {
		pthread_mutex_unlock(&bd->wb);
		if (pages)
			*pages = 0;
		return -ENODEV;
	}
	/* Made when the file was attached: a writeback under memory
	 * pressure allocates nothing. */
	w = bd->walk;
	w->bd = bd;
	w->st = st;
	w->type = type;
	w->threshold = threshold;
	w->mem_high = mem_high;
	w->stop = stop;
	w->full = false;
	w->err = 0;
	w->done = w->since_compact = 0;
	w->shared = NULL;
	w->used = w->nobj = w->nent = 0;
	while (!wb_stopped(w) && (f = file_next(st, &cursor))) {
		wb_file(w, f);
		file_put(f);
	}
	wb_release_shared(w);
	pthread_rwlock_wrlock(&bd->io);
	pthread_mutex_lock(&bd->lock);
	blocks_reclaim(bd);
	pthread_mutex_unlock(&bd->lock);
	pthread_rwlock_unlock(&bd->io);
	if (w->done)
		compact_run(st, mem_high ? 100 - atomic_load(&st->defrag_ratio)
					 : 100);
	if (w->full && !w->done)
		err = w->err;
	done = w->done;
	pthread_mutex_unlock(&bd->wb);
	if (pages)
		*pages = done;
	return err;
}

/* What walk_new() allocates. */
#define WALK_BYTES ((uint64_t)sizeof(struct wb_walk) + BATCH_BYTES + BLK)

static struct wb_walk *walk_new(void)
{
	struct wb_walk *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	if (posix_memalign((void **)&w->buf, BLK, BATCH_BYTES + BLK)) {
		free(w);
		return NULL;
	}
	return w;
}

static void walk_free(struct wb_walk *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

/* ---- the policy thread ---- */

static unsigned int after_ticks(struct store *st, uint64_t seconds)
{
	uint64_t after = store_get_recompress_after(st), ticks;

	if (!after)
		return AGE_IDLE;	/* no aging: only pages marked idle */
	ticks = (seconds * AGE_TICKS + after - 1) / after;
	return ticks > AGE_MAX ? AGE_MAX : (unsigned int)ticks;
}

static void *backing_main(void *arg)
{
	struct backing *bd = arg;
	struct timespec next;

	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	pthread_mutex_lock(&bd->t.lock);
	while (!atomic_load(&bd->t.stop)) {
		uint64_t after = atomic_load(&bd->after);
		uint64_t high = atomic_load(&bd->mem_high);
		uint64_t period;

		bd->t.changed = false;
		if (!after || !high) {
			pthread_cond_wait(&bd->t.cond, &bd->t.lock);
			continue;
		}
		period = after / AGE_TICKS;
		period = period < 1 ? 1 : period > 10 ? 10 : period;
		bg_deadline_in(&next, period * 1000);
		if (pthread_cond_timedwait(&bd->t.cond, &bd->t.lock, &next) !=
		    ETIMEDOUT || atomic_load(&bd->t.stop) || bd->t.changed)
			continue;
		pthread_mutex_unlock(&bd->t.lock);
		if (store_mem_used(bd->st) > high && bd->fd >= 0)
			(void)wb_run(bd, STORE_WB_IDLE,
				     after_ticks(bd->st, after), high,
				     &bd->t.stop, NULL);
		pthread_mutex_lock(&bd->t.lock);
	}
	pthread_mutex_unlock(&bd->t.lock);
	return NULL;
}


/* ---- life ---- */

struct backing *backing_create(struct store *st)
{
	struct backing *bd = calloc(1, sizeof(*bd));

	if (!bd)
		return NULL;
	bd->st = st;
	meta_mem_init(&bd->mem, NULL, NULL);
	meta_mem_set_pool(&bd->mem, st->pool);
	pthread_mutex_init(&bd->wb, NULL);
	pthread_rwlock_init(&bd->io, NULL);
	pthread_mutex_init(&bd->lock, NULL);
	bd->fd = -1;
	gen_bump(bd);
	return bd;
}

static void backing_clear(struct backing *bd)
{
	map_free(bd);
	bd->end = 0;
	bd->npend = bd->refs_n = 0;
	bd->file_blocks = bd->live_bytes = bd->objs = 0;
	if (bd->fd >= 0)
		close(bd->fd);
	bd->fd = -1;
	free(bd->path);
	bd->path = NULL;
	walk_free(bd->walk);
	bd->walk = NULL;
	atomic_store(&bd->walk_bytes, 0);
}

void backing_destroy(struct backing *bd)
{
	if (!bd)
		return;
	backing_clear(bd);
	pthread_mutex_destroy(&bd->lock);
	pthread_rwlock_destroy(&bd->io);
	pthread_mutex_destroy(&bd->wb);
	free(bd);
}

int backing_start(struct backing *bd)
{
	return bg_thread_start(&bd->t, backing_main, bd);
}

void backing_stop(struct backing *bd)
{
	if (bd)
		bg_thread_stop(&bd->t);
}

uint64_t backing_mem_bytes(struct backing *bd)
{
	return bd ? meta_mem_bytes(&bd->mem) + atomic_load(&bd->walk_bytes) : 0;
}

/* ---- opening the file ---- */

int store_backing_open(const char *path, int *out)
{
	struct stat sb;
	int fd;

	if (!path || !*path)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_DIRECT | O_NOCTTY |
		  O_NONBLOCK, 0600);
	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY |
			  O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*out = fd;
	return 0;
}

/* O_DIRECT and punch-hole, tried on the first block; the file is left
 * empty. */
static int probe(int fd, bool *direct, bool *punch)
{
	void *blk;
	int fl = fcntl(fd, F_GETFL), err = 0;

	if (posix_memalign(&blk, BLK, BLK))
		return -ENOMEM;
	memset(blk, 0, BLK);
	*direct = fl >= 0 && (fl & O_DIRECT);
	if (pwrite(fd, blk, BLK, 0) != BLK) {
		if (*direct && errno == EINVAL &&
		    fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0) {
			*direct = false;
			if (pwrite(fd, blk, BLK, 0) != BLK)
				err = -errno;
		} else {
			err = errno ? -errno : -EIO;
		}
	}
	if (!err)
		*punch = fallocate(fd, FALLOC_FL_PUNCH_HOLE |
				   FALLOC_FL_KEEP_SIZE, 0, BLK) == 0;
	if (!err && ftruncate(fd, 0))
		err = -errno;
	free(blk);
	return err;
}

int store_set_backing_fd(struct store *st, int fd, const char *path)
{
	struct backing *bd = st->bd;
	bool direct = false, punch = false;
	struct wb_walk *walk = NULL;
	char *p = NULL;
	int err = 0;

	/* Not while pages are out: refuse before probe() truncates. */
	if (fd >= 0 && atomic_load(&bd->bd_count)) {
		close(fd);
		return -EBUSY;
	}
	if (fd >= 0) {
		err = probe(fd, &direct, &punch);
		if (!err) {
			p = strdup(path ? path : "?");
			walk = walk_new();
			if (!p || !walk)
				err = -ENOMEM;
		}
		if (err) {
			free(p);
			walk_free(walk);
			close(fd);
			return err;
		}
	}
	pthread_mutex_lock(&bd->wb);
	pthread_rwlock_wrlock(&bd->io);
	pthread_mutex_lock(&bd->lock);
	if (atomic_load(&bd->bd_count) || bd->objs) {
		err = -EBUSY;
		free(p);
		walk_free(walk);
	} else {
		backing_clear(bd);
		gen_bump(bd);
		bd->fd = fd;
		bd->path = p;
		bd->walk = walk;
		atomic_store(&bd->walk_bytes, walk ? WALK_BYTES : 0);
		bd->direct = direct;
		bd->punch = punch;
	}
	pthread_mutex_unlock(&bd->lock);
	pthread_rwlock_unlock(&bd->io);
	pthread_mutex_unlock(&bd->wb);
	if (err && fd >= 0)
		close(fd);
	return err;
}

int store_set_backing(struct store *st, const char *path)
{
	int fd = -1, err;

	if (path) {
		err = store_backing_open(path, &fd);
		if (err)
			return err;
	}
	return store_set_backing_fd(st, fd, path);
}

int store_get_backing(struct store *st, char *buf, size_t size)
{
	struct backing *bd = st->bd;

	pthread_mutex_lock(&bd->lock);
	snprintf(buf, size, "%s", bd->path ? bd->path : "none");
	pthread_mutex_unlock(&bd->lock);
	return 0;
}

/* ---- triggers, settings, stats ---- */

int store_writeback(struct store *st, unsigned int type, uint64_t *pages)
{
	unsigned int threshold;

	if (type != STORE_WB_IDLE && type != STORE_WB_HUGE &&
	    type != (STORE_WB_IDLE | STORE_WB_HUGE) &&
	    type != STORE_WB_INCOMPRESSIBLE)
		return -EINVAL;
	threshold = store_get_recompress_after(st) ? AGE_TICKS : AGE_IDLE;
	return wb_run(st->bd, type, threshold, 0, NULL, pages);
}

int store_set_writeback_limit(struct store *st, uint64_t pages)
{
	atomic_store(&st->bd->limit, pages);
	return 0;
}

uint64_t store_get_writeback_limit(struct store *st)
{
	return atomic_load(&st->bd->limit);
}

void store_set_writeback_limit_enable(struct store *st, bool on)
{
	atomic_store(&st->bd->limit_enable, on);
}

bool store_get_writeback_limit_enable(struct store *st)
{
	return atomic_load(&st->bd->limit_enable);
}

int store_set_writeback_after(struct store *st, uint64_t seconds)
{
	if (seconds > STORE_RECOMPRESS_AFTER_MAX)
		return -EINVAL;
	atomic_store(&st->bd->after, seconds);
	bg_thread_kick(&st->bd->t);
	return 0;
}

uint64_t store_get_writeback_after(struct store *st)
{
	return atomic_load(&st->bd->after);
}

int store_set_mem_high(struct store *st, uint64_t bytes)
{
	atomic_store(&st->bd->mem_high, bytes);
	bg_thread_kick(&st->bd->t);
	return 0;
}

uint64_t store_get_mem_high(struct store *st)
{
	return atomic_load(&st->bd->mem_high);
}

void store_get_bd_stats(struct store *st, struct store_bd_stats *bs)
{
	struct backing *bd = st->bd;

	memset(bs, 0, sizeof(*bs));
	bs->bd_count = atomic_load(&bd->bd_count);
	bs->bd_reads = atomic_load(&bd->bd_reads);
	bs->bd_writes = atomic_load(&bd->bd_writes);
	bs->failed_writes = atomic_load(&bd->failed_writes);
	bs->failed_reads = atomic_load(&bd->failed_reads);
	bs->punched_blocks = atomic_load(&bd->punched);
	pthread_mutex_lock(&bd->lock);
	bs->file_bytes = bd->file_blocks * BLK;
	bs->obj_bytes = bd->live_bytes;
	bs->objs = bd->objs;
	bs->frag_pct = bd->file_blocks ?
		(unsigned int)((bd->file_blocks * BLK - bd->live_bytes) * 100 /
			       (bd->file_blocks * BLK)) : 0;
	bs->direct = bd->direct;
	bs->punch = bd->punch;
	bs->map_bytes = meta_mem_bytes(&bd->mem);
	pthread_mutex_unlock(&bd->lock);
}

/* ---- consistency ---- */

bool backing_is_valid(struct backing *bd, uint64_t disk_slots,
		      const char **why)
{
	uint64_t live = 0, alloc = 0, b;
	uint32_t i;
	bool ok = true;

	pthread_mutex_lock(&bd->lock);
	for (b = 0; b < bd->end; b++) {
		if (bd->blk[b] & BLK_LIVE && !(bd->blk[b] & BLK_ALLOC)) {
			*why = "backing: live bytes in a free block";
			ok = false;
		}
		if ((bd->blk[b] & BLK_LIVE) > BLK) {
			*why = "backing: more live bytes than a block";
			ok = false;
		}
		live += bd->blk[b] & BLK_LIVE;
		alloc += !!(bd->blk[b] & BLK_ALLOC);
	}
	if (ok && live != bd->live_bytes) {
		*why = "backing: live bytes != sum over blocks";
		ok = false;
	}
	if (ok && alloc != bd->file_blocks) {
		*why = "backing: allocated blocks != file_blocks";
		ok = false;
	}
	for (i = 0; ok && i < bd->npend; i++)
		if (!(bd->blk[bd->pend[i]] & BLK_ALLOC)) {
			*why = "backing: queued block not allocated";
			ok = false;
		}
	if (ok) {
		const char *bad = hindex_check(&bd->refs_idx, ref_live,
					       ref_hash_of, bd);

		if (bad) {
			*why = bad;
			ok = false;
		}
	}
	if (ok) {
		/* Disk slots == objects + the extra references. */
		uint64_t extra = 0;

		for (i = 0; i < bd->refs_n; i++)
			extra += bd->refs[i].refs - 1;
		if (disk_slots != bd->objs + extra ||
		    disk_slots != atomic_load(&bd->bd_count)) {
			*why = "backing: disk slots != objects + shared refs";
			ok = false;
		}
	}
	pthread_mutex_unlock(&bd->lock);
	return ok;
}
