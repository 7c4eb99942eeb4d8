// SPDX-License-Identifier: MIT
/*
 * store.c - the store: files, the page data path, settings and stats.
 *
 * lock ordering:
 *   st->files_lock  ->  file lock (striped rwlock)  ->  cluster lock
 *     ->  fold shard lock | pattern lock  ->  the pool's own locks
 * (the pool takes the shard locks of one size class inside its calls and
 * returns with none held). No two locks of one kind are held together,
 * except the stripes of one file lock, which a writer takes in index order.
 *
 * The data path never holds a lock across compression or decompression:
 *  - a write classifies and compresses its page (and takes its reference
 *    on a fold entry or pattern) with no lock held, then swaps the new slot
 *    in under the cluster lock, then releases what the slot held before
 *    after dropping it;
 *  - a read, under the file's read lock and the cluster lock, copies the
 *    stored object (or a group's frame) out of the pool into the thread's
 *    scratch (pool_map() pins it against compaction for the copy), drops
 *    both locks and only then decodes the copy (slot_read()).
 * So what keeps an object alive under a reader is the cluster lock: a slot's
 * object is touched only between pool_map() and pool_unmap() under the
 * cluster lock of a slot naming it, and whoever replaces that slot frees the
 * old object only after taking the same lock. recompress.c's and the fold
 * scan's safety rests on exactly that. The background passes (fold scan,
 * recompression, grouping) are the ones that decode under a cluster lock,
 * one page or one group at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "bug.h"
#include "codec.h"
#include "store-int.h"

#define PAGE STORE_PAGE_SIZE

/* ---- memory ---- */

/* What the store and its caller allocated besides the pool's own. */
static uint64_t mem_own(struct store *st)
{
	return meta_mem_bytes(&st->mem_meta) + meta_mem_bytes(&st->mem_fold) +
	       meta_mem_bytes(&st->mem_pat) + meta_mem_bytes(&st->mem_ns) +
	       backing_mem_bytes(st->bd);	/* disk tier: its space map */
}

/* With the group scratch of the threads that read grouped pages (all of
 * the process's: threads are not a store's) and the buffers of a running
 * recompression walk. */
static uint64_t mem_total(struct store *st)
{
	return pool_mem_bytes(st->pool) + mem_own(st) +
	       codec_group_scratch_bytes() +
	       atomic_load_explicit(&st->rc.walk_bytes, memory_order_relaxed);
}

uint64_t store_mem_used(struct store *st)
{
	return mem_total(st);
}

static bool mem_over(void *ctx, uint64_t extra)
{
	struct store *st = ctx;
	uint64_t limit = atomic_load_explicit(&st->mem_limit,
					      memory_order_relaxed);

	return limit && mem_total(st) + extra > limit;
}

static void mem_note_max(struct store *st)
{
	uint64_t total = mem_total(st);
	uint64_t max = atomic_load_explicit(&st->mem_used_max,
					    memory_order_relaxed);

	while (total > max &&
	       !atomic_compare_exchange_weak_explicit(&st->mem_used_max, &max,
			total, memory_order_relaxed, memory_order_relaxed))
		;
}

/* ---- objects and slots ---- */

static uint64_t default_hash(const void *page, size_t len)
{
	return XXH3_64bits(page, len);
}

/* Fold-index content check: does the object behind handle hold page? */
static bool object_same(void *ctx, uint32_t handle, const void *page,
			uint32_t *aux)
{
	struct store *st = ctx;
	size_t size = pool_obj_size(st->pool, handle);
	const void *obj;
	bool same;

	obj = pool_map(st->pool, handle);
	if (!obj)
		return false;
	if (size == PAGE) {
		same = memcmp(obj, page, PAGE) == 0;
	} else {
		void *tmp = codec_scratch(SCRATCH_IN);

		same = codec_decode(obj, (unsigned int)size, tmp) == 0 &&
		       memcmp(tmp, page, PAGE) == 0;
	}
	pool_unmap(st->pool, handle);
	*aux = (uint32_t)size;
	return same;
}

/*
 * A new pool object holding size bytes of src. -ENOSPC over the limit: the
 * pool gets what the limit leaves after the store's own metadata as a cap,
 * so it refuses a new span or handle-table page that would pass the limit
 * instead of creating it (and keeping it as a cached empty span once the
 * refused object is freed).
 */
int object_create(struct store *st, const void *src, unsigned int size,
			 pool_handle_t *handle)
{
	uint64_t limit = atomic_load_explicit(&st->mem_limit,
					      memory_order_relaxed);
	uint64_t cap = 0;
	int err;

	if (limit) {
		uint64_t other = mem_own(st);

		if (other >= limit)
			return -ENOSPC;
		cap = limit - other;
	}
	err = pool_alloc_within(st->pool, size, cap, src, handle);
	if (err) {
		if (err == -ENOMEM && mem_over(st, 0))
			err = -ENOSPC;
		return err;
	}
	if (mem_over(st, 0)) {
		/* Another thread took the room meanwhile. */
		pool_free(st->pool, *handle);
		return -ENOSPC;
	}
	ctr_add(st, SC_COMPR, size);
	mem_note_max(st);
	return 0;
}

void object_free(struct store *st, pool_handle_t handle,
			unsigned int size)
{
	pool_free(st->pool, handle);
	ctr_add(st, SC_COMPR, -(int64_t)size);
}

/* Drop whatever reference slot s holds (no lock may be held but the
 * caller's file lock, if any). */
static void slot_release(struct store *st, slot_t s)
{
	uint32_t handle;

	switch (slot_type(s)) {
	case SLOT_EMPTY:
		break;
	case SLOT_SAME:
		if (slot_flag(s))
			pattern_put(st->pat, slot_payload(s));
		break;
	case SLOT_OBJ:
		if (slot_on_disk(s))	/* disk tier */
			backing_put(st->bd, s);
		else if (slot_is_group(s))
			group_free(st, slot_payload(s));
		else
			object_free(st, slot_payload(s), slot_size(s));
		break;
	case SLOT_FOLD:
		handle = fold_put(st->fold, slot_payload(s));
		if (handle)
			object_free(st, handle, slot_size(s));
		break;
	}
}

static inline void fctr_add(struct store_file *f, enum file_ctr c, int64_t d)
{
	struct file_stripes *s = atomic_load_explicit(&f->stripes,
						      memory_order_relaxed);

	ctr_stripe_add(s ? &s->ctr[ctr_stripe_id()] : &f->ctr0, c, d);
}

static uint64_t fctr_read(struct store_file *f, enum file_ctr c)
{
	struct file_stripes *s = atomic_load_explicit(&f->stripes,
						      memory_order_acquire);
	int64_t sum = ctr_stripes_sum(&f->ctr0, 1, c);

	if (s)
		sum += ctr_stripes_sum(s->ctr, CTR_STRIPES, c);
	return ctr_count(sum);
}

/* Counters that follow the slots of file f (store-wide and the file's):
 * d = +1 for a value entering a slot, -1 leaving it. */
void slot_account(struct store *st, struct store_file *f, slot_t s,
			 int d)
{
	switch (slot_type(s)) {
	case SLOT_EMPTY:
		return;
	case SLOT_SAME:
		ctr_add(st, SC_SAME, d);
		fctr_add(f, FC_SAME, d);
		break;
	case SLOT_OBJ:
	case SLOT_FOLD:
		if (slot_flag(s)) {
			ctr_add(st, SC_HUGE, d);
			fctr_add(f, FC_HUGE, d);
		}
		if (s & SLOT_COLD)
			ctr_add(st, SC_COLD, d);
		if (slot_is_group(s))
			ctr_add(st, SC_GROUP_PAGES, d);
		fctr_add(f, FC_COMPR, d * (int64_t)slot_size(s));
		break;
	}
	ctr_add(st, SC_PAGES, d);
	fctr_add(f, FC_PAGES, d);
}

/*
 * Turn a page into a slot value holding one reference of its own (a pattern
 * reference, a fold-entry reference or a new object). No lock held on
 * entry or exit; *hit tells whether an existing object was folded onto.
 */
static int slot_make(struct store *st, const void *buf, slot_t *out, bool *hit)
{
	enum store_fold_mode mode;
	pool_handle_t handle;
	unsigned int size;
	uint64_t pattern, hash = 0;
	uint32_t id, aux;
	const void *src;
	unsigned int intake;
	bool huge, cold = false;
	int err;

	*hit = false;
	if (codec_same_filled(buf, &pattern)) {
		uint32_t lo = (uint32_t)pattern;

		if (lo == (uint32_t)(pattern >> 32)) {
			*out = slot_make_same(lo, false);
			return 0;
		}
		err = pattern_get(st->pat, pattern, &id);
		if (err)
			return err;
		*out = slot_make_same(id, true);
		return 0;
	}

	mode = (enum store_fold_mode)atomic_load_explicit(&st->fold_mode,
							  memory_order_relaxed);
	if (mode == STORE_FOLD_INLINE) {
		hash = st->hash(buf, PAGE);
		if (fold_get(st->fold, hash, buf, &id, &aux)) {
			*out = slot_make_obj(SLOT_FOLD, id, aux, aux == PAGE);
			*hit = true;
			return 0;
		}
	}

	src = codec_scratch(SCRATCH_OUT);
	size = 0;
	intake = atomic_load_explicit(&st->rc.intake, memory_order_relaxed);
	if (intake) {
		/* A cold intake; what the cold codec cannot fit under the
		 * threshold (or a context it could not allocate) goes the
		 * LZ4 way below. */
		size = codec_cold_compress(intake_algo(intake),
					   (int)(intake & 0xff), buf,
					   codec_scratch(SCRATCH_OUT),
					   st->huge_threshold);
		cold = size != 0;
	}
	if (!size)
		size = codec_compress(buf, codec_scratch(SCRATCH_OUT),
				      st->huge_threshold - 1);
	huge = size == 0;
	if (huge) {
		src = buf;
		size = PAGE;
	}
	err = object_create(st, src, size, &handle);
	if (err)
		return err;
	if (cold)
		ctr_add(st, SC_INTAKE_COLD, 1);
	if (mode == STORE_FOLD_INLINE &&
	    fold_insert(st->fold, hash, handle, &id) == 0) {
		*out = slot_make_obj(SLOT_FOLD, id, size, huge) |
		       (cold ? SLOT_COLD : 0);
		return 0;
	}
	/* Fold off or scan, or the index could not grow: unindexed. */
	*out = slot_make_obj(SLOT_OBJ, handle, size, huge) |
	       (cold ? SLOT_COLD : 0);
	return 0;
}

/* ---- files ---- */

/*
 * The file lock (store-int.h): lock0, or the stripes once published. A
 * thread that took lock0 and then sees stripes published lets go and
 * takes the stripes instead; one that holds lock0 with stripes still NULL
 * keeps it, since only a holder of lock0 for writing publishes them.
 */
static struct file_stripes *file_stripes(struct store_file *f)
{
	return atomic_load_explicit(&f->stripes, memory_order_acquire);
}

void file_rdlock(struct store_file *f)
{
	for (;;) {
		struct file_stripes *s = file_stripes(f);

		if (s) {
			pthread_rwlock_rdlock(&s->lock[ctr_stripe_id()].rw);
			return;
		}
		pthread_rwlock_rdlock(&f->lock0.rw);
		if (!file_stripes(f))
			return;
		pthread_rwlock_unlock(&f->lock0.rw);
	}
}

void file_rdunlock(struct store_file *f)
{
	struct file_stripes *s = file_stripes(f);

	pthread_rwlock_unlock(s ? &s->lock[ctr_stripe_id()].rw : &f->lock0.rw);
}

static void file_wrlock(struct store_file *f)
{
	for (;;) {
		struct file_stripes *s = file_stripes(f);
		unsigned int i;

		if (s) {
			for (i = 0; i < CTR_STRIPES; i++)
				pthread_rwlock_wrlock(&s->lock[i].rw);
			return;
		}
		pthread_rwlock_wrlock(&f->lock0.rw);
		if (!file_stripes(f))
			return;
		pthread_rwlock_unlock(&f->lock0.rw);
	}
}

static void file_wrunlock(struct store_file *f)
{
	struct file_stripes *s = file_stripes(f);
	unsigned int i = CTR_STRIPES;

	if (!s) {
		pthread_rwlock_unlock(&f->lock0.rw);
		return;
	}
	while (i-- > 0)
		pthread_rwlock_unlock(&s->lock[i].rw);
	if (f->lock0_held) {
		f->lock0_held = false;
		pthread_rwlock_unlock(&f->lock0.rw);
	}
}

static void rwlock_init_writer_first(pthread_rwlock_t *rw)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	/* Writers (cluster creation, discard) must not starve behind a
	 * steady stream of page reads and writes. */
	pthread_rwlockattr_setkind_np(&attr,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(rw, &attr);
	pthread_rwlockattr_destroy(&attr);
}

/*
 * With the file's write lock held while it is still lock0: give the file
 * CTR_STRIPES stripes, held for writing like lock0, so that the file goes
 * on as a striped one. Nothing changes if they cannot be allocated.
 */
static void file_spread(struct store_file *f)
{
	struct file_stripes *s;
	unsigned int i;

	if (file_stripes(f))
		return;
	s = meta_alloc_aligned(&f->st->mem_meta, sizeof(*s), 64, NULL);
	if (!s)
		return;
	for (i = 0; i < CTR_STRIPES; i++) {
		rwlock_init_writer_first(&s->lock[i].rw);
		pthread_rwlock_wrlock(&s->lock[i].rw);
	}
	ctr_stripes_init(s->ctr, CTR_STRIPES);
	f->lock0_held = true;
	atomic_store_explicit(&f->stripes, s, memory_order_release);
}

static void file_get(struct store_file *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void file_put(struct store_file *f)
{
	struct store *st = f->st;

	unsigned int i;

	struct file_stripes *s;

	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	s = file_stripes(f);
	for (i = 0; s && i < CTR_STRIPES; i++)
		pthread_rwlock_destroy(&s->lock[i].rw);
	meta_free(&st->mem_meta, s);
	pthread_rwlock_destroy(&f->lock0.rw);
	meta_free(&st->mem_meta, f);
}

struct store_file *store_file_create(struct store *st)
{
	struct store_file *f;

	f = meta_alloc_aligned(&st->mem_meta, sizeof(*f), 64, NULL);
	if (!f)
		return NULL;
	f->st = st;
	rwlock_init_writer_first(&f->lock0.rw);
	ctr_stripes_init(&f->ctr0, 1);
	atomic_init(&f->stripes, NULL);
	f->lock0_held = false;
	cdir_init(&f->dir);
	atomic_init(&f->end_page, 0);
	atomic_init(&f->refs, 1);

	pthread_mutex_lock(&st->files_lock);
	f->id = st->next_file_id++;
	f->prev = st->files_tail;
	f->next = NULL;
	if (st->files_tail)
		st->files_tail->next = f;
	else
		st->files_head = f;
	st->files_tail = f;
	st->nfiles++;
	pthread_mutex_unlock(&st->files_lock);
	mem_note_max(st);
	return f;
}

/* cdir_clear() callback: release every slot of a cluster and free it. */
static void cluster_release_all(void *arg, uint64_t ci, struct cluster *c)
{
	struct store_file *f = arg;
	struct store *st = f->st;
	uint32_t i;

	(void)ci;
	for (i = 0; i < c->cap; i++) {
		slot_t s = c->slot[i];

		if (slot_type(s) == SLOT_EMPTY)
			continue;
		slot_account(st, f, s, -1);
		if (slot_is_group(s) && !group_drop(st, s))
			continue;	/* the group's last slot frees it */
		slot_release(st, s);
	}
	cluster_free(&st->mem_meta, c);
}

void store_file_destroy(struct store_file *f)
{
	struct store *st;

	if (!f)
		return;
	st = f->st;
	pthread_mutex_lock(&st->files_lock);
	if (f->prev)
		f->prev->next = f->next;
	else
		st->files_head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		st->files_tail = f->prev;
	st->nfiles--;
	pthread_mutex_unlock(&st->files_lock);

	file_wrlock(f);
	cdir_clear(&f->dir, &st->mem_meta, cluster_release_all, f);
	atomic_store_explicit(&f->end_page, 0, memory_order_relaxed);
	file_wrunlock(f);
	file_put(f);
}

/*
 * Iterate over live files without holding files_lock while working on one:
 * returns the first file created after *cursor with a reference taken (drop
 * it with file_put), or NULL at the end.
 */
struct store_file *file_next(struct store *st, uint64_t *cursor)
{
	struct store_file *f;

	pthread_mutex_lock(&st->files_lock);
	for (f = st->files_head; f && f->id < *cursor; f = f->next)
		;
	if (f) {
		file_get(f);
		*cursor = f->id + 1;
	}
	pthread_mutex_unlock(&st->files_lock);
	return f;
}

static void end_page_raise(struct store_file *f, uint64_t end)
{
	uint64_t cur = atomic_load_explicit(&f->end_page, memory_order_relaxed);

	while (end > cur &&
	       !atomic_compare_exchange_weak_explicit(&f->end_page, &cur, end,
			memory_order_relaxed, memory_order_relaxed))
		;
}

/* Recompute end_page; file lock held for writing. */
static void end_page_recompute(struct store_file *f)
{
	uint64_t ci = MAX_CLUSTER, found;
	struct cluster *c;

	for (;;) {
		int i;

		c = cdir_prev(&f->dir, ci, &found);
		if (!c)
			break;
		for (i = c->cap - 1; i >= 0; i--) {
			if (slot_type(c->slot[i]) != SLOT_EMPTY) {
				atomic_store_explicit(&f->end_page,
					(found << CLUSTER_SHIFT) + i + 1,
					memory_order_relaxed);
				return;
			}
		}
		if (!found)
			break;
		ci = found - 1;
	}
	atomic_store_explicit(&f->end_page, 0, memory_order_relaxed);
}

/* ---- the data path ---- */

/* Swap new into the slot of page; the old value comes back in *old. */
static int slot_install(struct store_file *f, uint64_t page, slot_t new,
			slot_t *old)
{
	struct store *st = f->st;
	uint64_t ci = page >> CLUSTER_SHIFT;
	unsigned int off = page & (CLUSTER_SLOTS - 1);
	struct cluster *c;
	bool wr = false;
	int err;

	file_rdlock(f);
	c = cdir_lookup(&f->dir, ci);
	if (!c || off >= c->cap) {
		/* A new cluster, or a bigger one: under the write lock, so
		 * that nobody holds the cluster replaced. */
		file_rdunlock(f);
		file_wrlock(f);
		wr = true;
		c = cdir_lookup(&f->dir, ci);
		if (c && off >= c->cap) {
			struct cluster *n = cluster_grow(&st->mem_meta, c,
						cluster_cap_for(off), &err);

			if (!n)
				goto out_unlock;
			cdir_replace(&f->dir, ci, n);
			cluster_free(&st->mem_meta, c);
			c = n;
			mem_note_max(st);
		} else if (!c) {
			/* A second cluster: the file is no longer small. */
			if (f->dir.clusters)
				file_spread(f);
			c = cluster_new(&st->mem_meta, cluster_cap_for(off),
					&err);
			if (!c)
				goto out_unlock;
			err = cdir_insert(&f->dir, &st->mem_meta, ci, c);
			if (err) {
				cluster_free(&st->mem_meta, c);
				goto out_unlock;
			}
			mem_note_max(st);
			DEBUG_CHECK(cdir_is_valid, &f->dir);
		}
	}
	futex_lock(&c->lock);
	*old = c->slot[off];
	c->slot[off] = new;
	if (slot_type(*old) == SLOT_EMPTY)
		c->live++;
	slot_account(st, f, new, 1);
	slot_account(st, f, *old, -1);
	/* A page leaving its group: the group goes when its last one does. */
	if (slot_is_group(*old) && !group_drop(st, *old))
		*old = 0;
	/* Under the cluster lock, so that a discard that clears this slot
	 * afterwards also sees the end it raised. */
	end_page_raise(f, page + 1);
	DEBUG_CHECK(cluster_is_valid, c);
	futex_unlock(&c->lock);
	err = 0;
out_unlock:
	if (wr)
		file_wrunlock(f);
	else
		file_rdunlock(f);
	return err;
}

int store_write(struct store_file *f, uint64_t page, const void *buf)
{
	struct store *st = f->st;
	slot_t new, old = 0;
	bool hit;
	int err;

	if (page >= STORE_MAX_PAGES) {
		err = -EFBIG;
		goto fail;
	}
	err = slot_make(st, buf, &new, &hit);
	if (err)
		goto fail;
	err = slot_install(f, page, new, &old);
	if (err)
		goto fail_release_new;
	slot_release(st, old);
	if (hit)
		ctr_add(st, SC_FOLD_HITS, 1);
	if (slot_type(new) >= SLOT_OBJ && slot_flag(new))
		ctr_add(st, SC_HUGE_SINCE, 1);
	ctr_add(st, SC_WRITES, 1);
	return 0;

fail_release_new:
	slot_release(st, new);
fail:
	ctr_add(st, SC_FAILED_WRITES, 1);
	return err;
}

/*
 * Produce the page slot s stands for; cluster lock held. A compressed
 * object is only copied out, to this thread's scratch page, with its size
 * in *csize: the caller decodes it after dropping the locks, so threads
 * reading one cluster decode in parallel and writers wait for a copy, not
 * a decode (copying costs ~5% of an LZ4 decode, ~1% of a zstd one).
 */
static int slot_read(struct store *st, slot_t s, void *buf,
		     unsigned int *csize, struct group_read *gr)
{
	pool_handle_t handle;
	const void *obj;

	*csize = 0;
	gr->pending = false;
	switch (slot_type(s)) {
	case SLOT_EMPTY:
		memset(buf, 0, PAGE);
		return 0;
	case SLOT_SAME:
		if (slot_flag(s)) {
			codec_fill(buf, pattern_value(st->pat, slot_payload(s)));
		} else {
			uint64_t half = slot_payload(s);

			codec_fill(buf, half | half << 32);
		}
		return 0;
	case SLOT_OBJ:
		if (slot_is_group(s))
			return group_fetch(st, s, buf, gr);
		handle = slot_payload(s);
		break;
	case SLOT_FOLD:
	default:
		handle = fold_handle(st->fold, slot_payload(s));
		break;
	}
	obj = pool_map(st->pool, handle);
	if (!obj)
		return -EIO;
	if (slot_size(s) == PAGE) {
		memcpy(buf, obj, PAGE);		/* raw: nothing to decode */
	} else {
		*csize = slot_size(s);
		memcpy(codec_scratch(SCRATCH_IN), obj, *csize);
	}
	pool_unmap(st->pool, handle);
	return 0;
}

int store_thread_prepare(struct store *st)
{
	unsigned int intake = st ? atomic_load(&st->rc.intake) : 0;
	int err = codec_thread_prepare();

	if (!err && intake)
		err = codec_cold_prepare(intake_algo(intake),
					 (int)(intake & 0xff));
	if (!err && st)		/* disk tier: the read-ahead buffer */
		err = backing_thread_prepare(st->bd);
	return err;
}

int store_read(struct store_file *f, uint64_t page, void *buf)
{
	struct store *st = f->st;
	unsigned int csize = 0, off;
	struct group_read gr = { .pending = false };
	struct cluster *c;
	slot_t disk = 0;
	bool read_idle = atomic_load_explicit(&st->rc.read_idle,
					      memory_order_relaxed);
	int err = 0;

	if (page >= STORE_MAX_PAGES) {
		err = -EFBIG;
		goto out;
	}
	file_rdlock(f);
	c = cdir_lookup(&f->dir, page >> CLUSTER_SHIFT);
	off = page & (CLUSTER_SLOTS - 1);
	if (!c || off >= c->cap) {
		memset(buf, 0, PAGE);	/* a hole */
	} else {
		slot_t *sp = &c->slot[off];

		futex_lock(&c->lock);
		if (slot_on_disk(*sp)) {
			/* disk tier: read it once the locks are dropped */
			disk = *sp;
			backing_read_begin(st->bd);
		} else {
			err = slot_read(st, *sp, buf, &csize, &gr);
		}
		/* A read makes the page young again (idle tracking), or with
		 * read_idle idle at once (store.h). */
		if (slot_type(*sp) >= SLOT_OBJ) {
			unsigned int age = read_idle ? AGE_IDLE : 0;

			if (slot_age(*sp) != age)
				*sp = slot_set_age(*sp, age);
		}
		futex_unlock(&c->lock);
	}
	file_rdunlock(f);
	if (disk) {
		err = backing_read(st->bd, disk, buf);
		backing_read_end(st->bd);
	}
	if (!err && csize)
		err = codec_decode(codec_scratch(SCRATCH_IN), csize, buf);
	if (!err && gr.pending)
		err = group_finish(&gr, buf);
out:
	ctr_add(st, err ? SC_FAILED_READS : SC_READS, 1);
	return err;
}

int store_discard(struct store_file *f, uint64_t first, uint64_t count)
{
	struct store *st = f->st;
	slot_t batch[CLUSTER_SLOTS];
	uint64_t last, ci, last_ci, found;
	bool end_hit = false;

	if (!count || first >= STORE_MAX_PAGES)
		return 0;
	last = count > STORE_MAX_PAGES - first ? STORE_MAX_PAGES - 1 :
						 first + count - 1;
	ci = first >> CLUSTER_SHIFT;
	last_ci = last >> CLUSTER_SHIFT;
	for (;;) {
		struct cluster *c;
		uint64_t lo, hi, i;
		unsigned int n = 0, freed = 0;
		bool empty;

		file_rdlock(f);
		c = cdir_next(&f->dir, ci, &found);
		if (!c || found > last_ci) {
			file_rdunlock(f);
			break;
		}
		lo = found == (first >> CLUSTER_SHIFT) ?
		     first & (CLUSTER_SLOTS - 1) : 0;
		hi = found == last_ci ? last & (CLUSTER_SLOTS - 1) :
					CLUSTER_SLOTS - 1;
		if (hi >= c->cap)
			hi = c->cap - 1;	/* the rest are holes */
		futex_lock(&c->lock);
		for (i = lo; i <= hi; i++) {
			slot_t s = c->slot[i];

			if (slot_type(s) == SLOT_EMPTY)
				continue;
			c->slot[i] = 0;
			c->live--;
			slot_account(st, f, s, -1);
			freed++;
			if (slot_is_group(s) && !group_drop(st, s))
				continue;	/* the group stays */
			batch[n++] = s;
		}
		empty = c->live == 0;
		DEBUG_CHECK(cluster_is_valid, c);
		futex_unlock(&c->lock);
		if (freed) {
			uint64_t end = atomic_load_explicit(&f->end_page,
							    memory_order_relaxed);

			if (end > first && end - 1 <= last)
				end_hit = true;
		}
		file_rdunlock(f);

		for (i = 0; i < n; i++)
			slot_release(st, batch[i]);
		ctr_add(st, SC_NOTIFY_FREE, freed);

		if (empty) {
			/* Free the cluster if no write refilled it meanwhile;
			 * under the write lock nobody else can reach it. */
			file_wrlock(f);
			if (cdir_lookup(&f->dir, found) == c && c->live == 0) {
				cdir_remove(&f->dir, &st->mem_meta, found);
				cluster_free(&st->mem_meta, c);
				DEBUG_CHECK(cdir_is_valid, &f->dir);
			}
			file_wrunlock(f);
		}
		if (found >= last_ci)
			break;
		ci = found + 1;
	}
	if (end_hit) {
		file_wrlock(f);
		end_page_recompute(f);
		file_wrunlock(f);
	}
	return 0;
}

int store_truncate(struct store_file *f, uint64_t npages)
{
	if (npages >= STORE_MAX_PAGES)
		return 0;
	return store_discard(f, npages, STORE_MAX_PAGES - npages);
}

int store_seek_data(struct store_file *f, uint64_t from, uint64_t *page)
{
	uint64_t ci = from >> CLUSTER_SHIFT, found;
	int err = -ENXIO;

	if (from >= STORE_MAX_PAGES)
		return -ENXIO;
	file_rdlock(f);
	for (;;) {
		struct cluster *c = cdir_next(&f->dir, ci, &found);
		uint64_t i;

		if (!c)
			break;
		i = found == (from >> CLUSTER_SHIFT) ?
		    from & (CLUSTER_SLOTS - 1) : 0;
		futex_lock(&c->lock);
		for (; i < c->cap; i++)
			if (slot_type(c->slot[i]) != SLOT_EMPTY)
				break;
		futex_unlock(&c->lock);
		if (i < c->cap) {
			*page = (found << CLUSTER_SHIFT) + i;
			err = 0;
			break;
		}
		if (found >= MAX_CLUSTER)
			break;
		ci = found + 1;
	}
	file_rdunlock(f);
	return err;
}

int store_seek_hole(struct store_file *f, uint64_t from, uint64_t *page)
{
	uint64_t p = from;

	if (from >= STORE_MAX_PAGES)
		return -ENXIO;
	file_rdlock(f);
	while (p < atomic_load_explicit(&f->end_page, memory_order_relaxed)) {
		struct cluster *c = cdir_lookup(&f->dir, p >> CLUSTER_SHIFT);
		uint64_t i;

		if (!c)
			break;
		futex_lock(&c->lock);
		/* Past the cluster's capacity every page is a hole. */
		for (i = p & (CLUSTER_SLOTS - 1); i < c->cap; i++)
			if (slot_type(c->slot[i]) == SLOT_EMPTY)
				break;
		futex_unlock(&c->lock);
		p = ((p >> CLUSTER_SHIFT) << CLUSTER_SHIFT) + i;
		if (i < CLUSTER_SLOTS)
			break;
	}
	file_rdunlock(f);
	*page = p;
	return 0;
}

void store_file_get_counts(struct store_file *f, struct store_file_stats *fs)
{
	memset(fs, 0, sizeof(*fs));
	fs->pages = fctr_read(f, FC_PAGES);
	fs->same_pages = fctr_read(f, FC_SAME);
	fs->huge_pages = fctr_read(f, FC_HUGE);
	fs->compr_bytes = fctr_read(f, FC_COMPR);
	fs->end_page = atomic_load_explicit(&f->end_page, memory_order_relaxed);
	file_rdlock(f);
	fs->clusters = f->dir.clusters;
	fs->meta_bytes = f->dir.clusters * sizeof(struct cluster) +
			 f->dir.slots * sizeof(slot_t) +
			 f->dir.nodes * CDIR_NODE_BYTES + sizeof(*f) +
			 (file_stripes(f) ? sizeof(struct file_stripes) : 0);
	file_rdunlock(f);
}

void store_file_get_stats(struct store_file *f, struct store_file_stats *fs)
{
	struct store *st = f->st;
	uint64_t ci = 0, found;
	struct cluster *c;

	double shared = 0;

	store_file_get_counts(f, fs);
	/* Whether a slot's object is shared depends on every other slot in
	 * the store: count it now, slot by slot. */
	file_rdlock(f);
	while ((c = cdir_next(&f->dir, ci, &found))) {
		unsigned int i;

		futex_lock(&c->lock);
		for (i = 0; i < c->cap; i++) {
			slot_t s = c->slot[i];
			uint32_t refs = 1;

			if (slot_type(s) < SLOT_OBJ || slot_on_disk(s))
				continue;
			if (slot_type(s) == SLOT_FOLD)
				refs = fold_refs(st->fold, slot_payload(s));
			if (refs >= 2) {
				fs->folded_pages++;
				shared += (double)slot_size(s) / refs;
			} else {
				fs->own_bytes += slot_size(s);
			}
		}
		futex_unlock(&c->lock);
		if (found >= MAX_CLUSTER)
			break;
		ci = found + 1;
	}
	file_rdunlock(f);
	fs->shared_bytes = (uint64_t)(shared + 0.5);
}

/* ---- the store ---- */

_Static_assert(STORE_POOL_RESERVE_MAX == POOL_RESERVE_MAX,
	       "the store's reserve bound is the pool's");
_Static_assert(STORE_POOL_RESERVE_DEFAULT <= POOL_RESERVE_MAX,
	       "the default reserve is within the pool's bound");

void store_config_default(struct store_config *cfg)
{
	*cfg = (struct store_config){
		.fold = STORE_FOLD_DEFAULT,
		.huge_threshold = STORE_HUGE_THRESHOLD_DEFAULT,
		.defrag_ratio = STORE_DEFRAG_RATIO_DEFAULT,
		.recompress_after = STORE_RECOMPRESS_AFTER_DEFAULT,
		.group_size = group_size_default(),
		.pool_reserve = STORE_POOL_RESERVE_DEFAULT,
	};
}

struct store *store_create(const struct store_config *cfg)
{
	struct store_config def;
	struct meta_mem boot;
	struct store *st;

	if (!cfg) {
		store_config_default(&def);
		cfg = &def;
	}
	if (cfg->fold > STORE_FOLD_OFF || cfg->defrag_ratio > 100 ||
	    cfg->huge_threshold > PAGE)
		return NULL;
	meta_mem_init(&boot, NULL, NULL);
	st = meta_alloc_aligned(&boot, sizeof(*st), 64, NULL);
	if (!st)
		return NULL;
	meta_mem_init(&st->mem_meta, mem_over, st);
	meta_mem_init(&st->mem_fold, mem_over, st);
	meta_mem_init(&st->mem_pat, mem_over, st);
	meta_mem_init(&st->mem_ns, mem_over, st);
	atomic_store(&st->mem_meta.bytes, meta_mem_bytes(&boot));
	atomic_init(&st->mem_limit, cfg->mem_limit);
	atomic_init(&st->mem_used_max, 0);
	atomic_init(&st->rc.walk_bytes, 0);	/* mem_total() reads it */
	atomic_init(&st->fold_mode, cfg->fold);
	/* A field left 0 takes its default (store.h). */
	atomic_init(&st->defrag_ratio, cfg->defrag_ratio ? cfg->defrag_ratio :
				       STORE_DEFRAG_RATIO_DEFAULT);
	st->huge_threshold = cfg->huge_threshold ? cfg->huge_threshold :
			     STORE_HUGE_THRESHOLD_DEFAULT;
	st->hash = cfg->hash ? cfg->hash : default_hash;
	ctr_stripes_init(st->ctr, CTR_STRIPES);
	pthread_mutex_init(&st->files_lock, NULL);

	{
		struct pool_config pc = {
			.refill = !cfg->no_background && cfg->refill,
			.reserve_bytes = cfg->pool_reserve == STORE_POOL_RESERVE_NONE ? 0 :
					 cfg->pool_reserve ? cfg->pool_reserve :
					 STORE_POOL_RESERVE_DEFAULT,
		};

		if (pc.reserve_bytes > STORE_POOL_RESERVE_MAX)
			pc.reserve_bytes = STORE_POOL_RESERVE_MAX;
		st->pool = pool_create(&pc);
	}
	if (!st->pool)
		goto fail_free_store;
	/* The store's metadata from the pool's heap, not malloc: it goes
	 * back to the OS when freed, also under mlockall() (mem.h). */
	meta_mem_set_pool(&st->mem_meta, st->pool);
	meta_mem_set_pool(&st->mem_fold, st->pool);
	meta_mem_set_pool(&st->mem_pat, st->pool);
	meta_mem_set_pool(&st->mem_ns, st->pool);
	st->fold = fold_create(&st->mem_fold, object_same, st);
	if (!st->fold)
		goto fail_destroy_pool;
	st->pat = pattern_create(&st->mem_pat);
	if (!st->pat)
		goto fail_destroy_fold;
	if (recompress_init(st, cfg))
		goto fail_destroy_pat;
	st->bd = backing_create(st);
	if (!st->bd)
		goto fail_destroy_pat;
	if (!cfg->no_background && compactor_start(st))
		goto fail_destroy_backing;
	if (!cfg->no_background && recompress_start(st))
		goto fail_stop_compactor;
	if (!cfg->no_background && backing_start(st->bd))
		goto fail_stop_recompress;
	mem_note_max(st);
	return st;

fail_stop_recompress:
	recompress_stop(st);
fail_stop_compactor:
	compactor_stop(st);
fail_destroy_backing:
	backing_destroy(st->bd);
fail_destroy_pat:
	pattern_destroy(st->pat);
fail_destroy_fold:
	fold_destroy(st->fold);
fail_destroy_pool:
	pool_destroy(st->pool);
fail_free_store:
	pthread_mutex_destroy(&st->files_lock);
	free(st);
	return NULL;
}

void store_destroy(struct store *st)
{
	if (!st)
		return;
	backing_stop(st->bd);
	recompress_stop(st);
	compactor_stop(st);
	while (st->files_head)
		store_file_destroy(st->files_head);
	backing_destroy(st->bd);
	pattern_destroy(st->pat);
	fold_destroy(st->fold);
	pool_destroy(st->pool);
	pthread_mutex_destroy(&st->files_lock);
	free(st);
}

void store_get_stats(struct store *st, struct store_stats *ss)
{
	struct fold_stats fs;

	memset(ss, 0, sizeof(*ss));
	fold_get_stats(st->fold, &fs);
	ss->orig_data_size = ctr_read(st, SC_PAGES) * PAGE;
	ss->compr_data_size = ctr_read(st, SC_COMPR);
	ss->mem_used_total = mem_total(st);
	ss->mem_limit = atomic_load(&st->mem_limit);
	mem_note_max(st);
	ss->mem_used_max = atomic_load(&st->mem_used_max);
	ss->same_pages = ctr_read(st, SC_SAME);
	ss->pages_compacted = ctr_read(st, SC_COMPACTED);
	ss->huge_pages = ctr_read(st, SC_HUGE);
	ss->huge_pages_since = ctr_read(st, SC_HUGE_SINCE);
	ss->pages_folded = fs.folded;
	ss->fold_hits = ctr_read(st, SC_FOLD_HITS);
	ss->fold_false = fs.false_matches;
	ss->fold_objs = fs.shared;
	ss->fold_index_bytes = fs.bytes;
	ss->fold_scan_freed = ctr_read(st, SC_FOLD_SCAN_FREED);
	ss->reads = ctr_read(st, SC_READS);
	ss->writes = ctr_read(st, SC_WRITES);
	ss->failed_reads = ctr_read(st, SC_FAILED_READS);
	ss->failed_writes = ctr_read(st, SC_FAILED_WRITES);
	ss->notify_free = ctr_read(st, SC_NOTIFY_FREE);
	ss->recomp_pages = ctr_read(st, SC_COLD);
	ss->recomp_total = ctr_read(st, SC_RECOMP_TOTAL);
	ss->recomp_saved = ctr_read(st, SC_RECOMP_SAVED);
	ss->recomp_kept = ctr_read(st, SC_RECOMP_KEPT);
	ss->intake_cold = ctr_read(st, SC_INTAKE_COLD);
	ss->group_pages = ctr_read(st, SC_GROUP_PAGES);
	ss->groups = ctr_read(st, SC_GROUPS);
	ss->group_saved = ctr_read(st, SC_GROUP_SAVED);
	ss->group_scratch_bytes = codec_group_scratch_bytes();
	ss->frag_pct = pool_frag_pct(st->pool);
	{
		struct pool_stats *ps = malloc(sizeof(*ps));

		if (ps) {
			pool_get_stats(st->pool, ps);
			ss->pool_pages = ps->pages;
			ss->pool_objs = ps->objs;
			ss->pool_reserve_bytes = ps->reserve_bytes;
			ss->pool_refill_pages = ps->refill_pages;
			ss->pool_writer_pages = ps->writer_pages;
			ss->pool_ready_hits = ps->ready_hits;
			ss->pool_refill_cpu_ns = ps->refill_cpu_ns;
			free(ps);
		}
	}
	pthread_mutex_lock(&st->files_lock);
	ss->files = st->nfiles;
	pthread_mutex_unlock(&st->files_lock);
	ss->meta_bytes = meta_mem_bytes(&st->mem_meta);
	ss->ns_bytes = meta_mem_bytes(&st->mem_ns);
}

/* ---- the caller's records ---- */

void *store_mem_alloc(struct store *st, size_t size, bool limited, int *err)
{
	size_t usable;
	void *p;

	/* The heap only: store_mem_free() tells its objects (counted) from
	 * malloc's (made before the store, not counted) by address. */
	if (limited && mem_over(st, pool_meta_cost(st->pool, size))) {
		if (err)
			*err = -ENOSPC;
		return NULL;
	}
	p = pool_meta_alloc(st->pool, size, true, &usable);
	if (!p) {
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	atomic_fetch_add_explicit(&st->mem_ns.bytes, usable,
				  memory_order_relaxed);
	mem_note_max(st);
	return p;
}

void store_mem_free(struct store *st, void *p)
{
	if (!p)
		return;
	if (st && pool_meta_owns(st->pool, p))
		meta_free(&st->mem_ns, p);
	else
		free(p);
}

/* ---- triggers ---- */

int store_compact(struct store *st, uint64_t *pages_freed)
{
	unsigned int ratio = atomic_load(&st->defrag_ratio);
	uint64_t n = compact_run(st, 100 - ratio);

	backing_reclaim(st->bd);	/* disk tier: freed blocks out */

	if (pages_freed)
		*pages_freed = n;
	return 0;
}

int store_shrink(struct store *st, uint64_t *pages_freed)
{
	uint64_t n = compact_run(st, 100);

	backing_reclaim(st->bd);	/* disk tier: freed blocks out */
	/* And the empty slabs the metadata heap keeps for reuse. */
	(void)pool_meta_trim(st->pool);

	if (pages_freed)
		*pages_freed = n;
	return 0;
}

/*
 * Fold one slot that holds an unindexed object: hash its contents, share an
 * equal indexed object if there is one, else index this one. Called with
 * the cluster lock held; returns the handle to free (0 if none).
 */
static pool_handle_t fold_slot(struct store *st, struct store_file *f,
			       struct cluster *c, unsigned int i,
			       unsigned int *freed_size)
{
	slot_t s = c->slot[i], new;
	pool_handle_t handle = slot_payload(s);
	void *page = codec_scratch(SCRATCH_OUT);
	const void *obj;
	uint32_t id, aux;
	uint64_t hash;
	int err = 0;

	obj = pool_map(st->pool, handle);
	if (!obj)
		return 0;
	err = codec_decode(obj, slot_size(s), page);
	pool_unmap(st->pool, handle);
	if (err)
		return 0;
	hash = st->hash(page, PAGE);
	if (fold_get(st->fold, hash, page, &id, &aux)) {
		new = slot_make_obj(SLOT_FOLD, id, aux, aux == PAGE);
		slot_account(st, f, s, -1);
		slot_account(st, f, new, 1);
		c->slot[i] = new;
		*freed_size = slot_size(s);
		ctr_add(st, SC_FOLD_HITS, 1);
		return handle;
	}
	/* Same object, same page: it keeps its age and recompression bits. */
	if (fold_insert(st->fold, hash, handle, &id) == 0)
		c->slot[i] = slot_make_obj(SLOT_FOLD, id, slot_size(s),
					   slot_flag(s)) |
			     (s & (SLOT_AGE_MASK | SLOT_COLD | SLOT_KEEP));
	return 0;
}

static uint64_t fold_file(struct store *st, struct store_file *f)
{
	uint64_t ci = 0, found, freed = 0;

	for (;;) {
		unsigned int i;
		struct cluster *c;

		file_rdlock(f);
		c = cdir_next(&f->dir, ci, &found);
		file_rdunlock(f);
		if (!c)
			break;
		/* One slot per lock hold, so writers wait a page at most. */
		for (i = 0; i < CLUSTER_SLOTS; i++) {
			pool_handle_t handle = 0;
			unsigned int size = 0;

			file_rdlock(f);
			c = cdir_lookup(&f->dir, found);
			if (!c || i >= c->cap) {
				file_rdunlock(f);
				break;
			}
			futex_lock(&c->lock);
			/* Grouped pages stay out of the index (groups
			 * are never shared), and so do pages on disk. */
			if (slot_type(c->slot[i]) == SLOT_OBJ &&
			    !slot_is_group(c->slot[i]) &&
			    !slot_on_disk(c->slot[i]))
				handle = fold_slot(st, f, c, i, &size);
			futex_unlock(&c->lock);
			file_rdunlock(f);
			if (handle) {
				object_free(st, handle, size);
				freed++;
			}
		}
		if (found >= MAX_CLUSTER)
			break;
		ci = found + 1;
	}
	return freed;
}

int store_fold(struct store *st, uint64_t *pages_freed)
{
	struct store_file *f;
	uint64_t cursor = 0, freed = 0;

	while ((f = file_next(st, &cursor))) {
		freed += fold_file(st, f);
		file_put(f);
	}
	ctr_add(st, SC_FOLD_SCAN_FREED, (int64_t)freed);
	if (pages_freed)
		*pages_freed = freed;
	return 0;
}

/* ---- settings ---- */

int store_set_mem_limit(struct store *st, uint64_t bytes)
{
	atomic_store(&st->mem_limit, bytes);
	return 0;
}

int store_set_fold_mode(struct store *st, enum store_fold_mode mode)
{
	if (mode != STORE_FOLD_INLINE && mode != STORE_FOLD_SCAN &&
	    mode != STORE_FOLD_OFF)
		return -EINVAL;
	atomic_store(&st->fold_mode, mode);
	return 0;
}

int store_set_defrag_ratio(struct store *st, unsigned int pct)
{
	if (pct > 100)
		return -EINVAL;
	atomic_store(&st->defrag_ratio, pct);
	return 0;
}

int store_set_pool_reserve(struct store *st, uint64_t bytes)
{
	if (bytes > STORE_POOL_RESERVE_MAX)
		return -EINVAL;
	pool_set_reserve(st->pool, bytes);
	return 0;
}

uint64_t store_get_pool_reserve(struct store *st)
{
	return pool_get_reserve(st->pool);
}

void store_reset_mem_used_max(struct store *st)
{
	atomic_store(&st->mem_used_max, mem_total(st));
}

enum store_fold_mode store_get_fold_mode(struct store *st)
{
	return (enum store_fold_mode)atomic_load(&st->fold_mode);
}

unsigned int store_get_defrag_ratio(struct store *st)
{
	return atomic_load(&st->defrag_ratio);
}

unsigned int store_get_classes(struct store *st, struct store_class_stats *cls,
			       unsigned int max)
{
	struct pool_stats *ps = malloc(sizeof(*ps));
	unsigned int i, n;

	if (!ps)
		return 0;
	pool_get_stats(st->pool, ps);
	n = ps->nr_classes;
	for (i = 0; i < n && i < max; i++) {
		cls[i].obj_size = ps->classes[i].obj_size;
		cls[i].pages_per_span = ps->classes[i].pages_per_span;
		cls[i].objs_per_span = ps->classes[i].objs_per_span;
		cls[i].spans = ps->classes[i].spans;
		cls[i].objs_inuse = ps->classes[i].objs_inuse;
	}
	free(ps);
	return n;
}

/* ---- consistency ---- */

struct ref {
	uint32_t key;	/* handle, entry id or pattern id */
	uint32_t val;	/* object size, or an entry's handle */
	uint32_t refs;	/* entries: their refcount */
};

struct refs {
	struct ref *v;
	size_t n, cap;
	bool oom;
};

static void refs_push(struct refs *r, uint32_t key, uint32_t val,
		      uint32_t refs)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		struct ref *v = realloc(r->v, cap * sizeof(*v));

		if (!v) {
			r->oom = true;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = (struct ref){ key, val, refs };
}

static int cmp_ref(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static void refs_sort(struct refs *r)
{
	if (r->n)
		qsort(r->v, r->n, sizeof(*r->v), cmp_ref);
}

struct check_state {
	struct store *st;
	struct refs fold;	/* FOLD slots: entry ids */
	struct refs obj;	/* OBJ slots: handles, sizes */
	struct refs pat;	/* SAME slots with a pattern id */
	struct refs ent;	/* fold entries: id, handle, refs */
	struct refs grp;	/* GROUP slots: head, index, cluster */
	uint32_t cluster_no;	/* clusters visited */
	uint64_t pages, same, huge, cold, disk;
	const char *bad;
};

static void check_slot(struct check_state *cs, slot_t s)
{
	struct store *st = cs->st;
	uint32_t handle;

	cs->pages++;
	if ((s & SLOT_COLD) && (s & SLOT_KEEP))
		cs->bad = "store: slot both COLD and KEEP";
	cs->cold += !!(s & SLOT_COLD);
	switch (slot_type(s)) {
	case SLOT_EMPTY:
		break;
	case SLOT_SAME:
		cs->same++;
		if (slot_flag(s))
			refs_push(&cs->pat, slot_payload(s), 0, 0);
		break;
	case SLOT_OBJ:
	case SLOT_FOLD:
		cs->huge += slot_flag(s);
		if (slot_on_disk(s)) {	/* disk tier: checked by backing */
			if (slot_is_group(s))
				cs->bad = "store: a grouped page on disk";
			cs->disk++;
			break;
		}
		if (slot_is_group(s)) {
			refs_push(&cs->grp, slot_payload(s), slot_gidx(s),
				  cs->cluster_no);
			break;
		}
		if (slot_type(s) == SLOT_OBJ) {
			handle = slot_payload(s);
			refs_push(&cs->obj, handle, slot_size(s), 0);
		} else {
			handle = fold_handle(st->fold, slot_payload(s));
			refs_push(&cs->fold, slot_payload(s), 0, 0);
		}
		if (pool_obj_size(st->pool, handle) != slot_size(s))
			cs->bad = "store: slot size != its object's size";
		break;
	}
}

static void check_file(struct check_state *cs, struct store_file *f)
{
	uint64_t ci = 0, found, last = 0, pages = 0, same = 0, huge = 0;
	uint64_t compr = 0;
	const char *why = NULL;
	struct cluster *c;

	file_rdlock(f);
	if (!cdir_is_valid(&f->dir, &why))
		cs->bad = why;
	while (!cs->bad && (c = cdir_next(&f->dir, ci, &found))) {
		unsigned int i;

		futex_lock(&c->lock);
		cs->cluster_no++;
		if (!cluster_is_valid(c, &why))
			cs->bad = why;
		else if (!c->live)
			cs->bad = "store: empty cluster kept";
		for (i = 0; i < c->cap && !cs->bad; i++) {
			if (slot_type(c->slot[i]) == SLOT_EMPTY)
				continue;
			last = (found << CLUSTER_SHIFT) + i + 1;
			check_slot(cs, c->slot[i]);
			pages++;
			same += slot_type(c->slot[i]) == SLOT_SAME;
			if (slot_type(c->slot[i]) >= SLOT_OBJ) {
				huge += slot_flag(c->slot[i]);
				compr += slot_size(c->slot[i]);
			}
		}
		futex_unlock(&c->lock);
		if (found >= MAX_CLUSTER)
			break;
		ci = found + 1;
	}
	if (!cs->bad && last != atomic_load(&f->end_page))
		cs->bad = "store: end_page != last stored page + 1";
	if (!cs->bad && (pages != fctr_read(f, FC_PAGES) ||
			 same != fctr_read(f, FC_SAME) ||
			 huge != fctr_read(f, FC_HUGE) ||
			 compr != fctr_read(f, FC_COMPR)))
		cs->bad = "store: per-file counters != the file's slots";
	file_rdunlock(f);
}

static int cmp_grp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->val < y->val ? -1 : x->val > y->val;
}

/*
 * Groups against the slots naming them: live == slots, one cluster,
 * distinct indices < n. Their objects go to cs->obj (owned once), their
 * bytes to *compr.
 */
static void check_groups(struct check_state *cs, uint64_t *compr,
			 uint64_t *groups)
{
	struct store *st = cs->st;
	size_t i, j;

	if (cs->grp.n)
		qsort(cs->grp.v, cs->grp.n, sizeof(*cs->grp.v), cmp_grp);
	for (i = 0; i < cs->grp.n && !cs->bad; i = j) {
		pool_handle_t head = cs->grp.v[i].key, chunk[CODEC_GROUP_MAX];
		struct group_hdr h;
		unsigned int k;

		for (j = i + 1; j < cs->grp.n && cs->grp.v[j].key == head; j++) {
			if (cs->grp.v[j].val == cs->grp.v[j - 1].val)
				cs->bad = "store: two slots with one group index";
			if (cs->grp.v[j].refs != cs->grp.v[i].refs)
				cs->bad = "store: a group spans clusters";
		}
		if (group_header(st, head, &h, chunk)) {
			cs->bad = "store: group header unreadable";
			break;
		}
		if (h.live != j - i)
			cs->bad = "store: group live count != slots naming it";
		else if (!h.n || h.n > CODEC_GROUP_MAX ||
			 cs->grp.v[j - 1].val >= h.n)
			cs->bad = "store: group index past its pages";
		else if (h.frame >= (size_t)h.n * STORE_PAGE_SIZE)
			cs->bad = "store: group frame too big";
		*compr += group_bytes(st, head);
		refs_push(&cs->obj, head, 0, 0);
		for (k = 0; k < h.nchunks; k++)
			refs_push(&cs->obj, chunk[k], 0, 0);
		(*groups)++;
	}
}

static void check_entry(void *arg, uint32_t id, uint32_t handle, uint32_t refs)
{
	struct check_state *cs = arg;

	refs_push(&cs->ent, id, handle, refs);
}

/* Entries against the slots naming them; sums what the counters should
 * say. Both lists sorted by id. */
static void check_entries(struct check_state *cs, uint64_t *compr,
			  uint64_t *folded, uint64_t *shared)
{
	size_t i, j = 0;

	for (i = 0; i < cs->ent.n && !cs->bad; i++) {
		struct ref *e = &cs->ent.v[i];
		uint32_t n = 0;

		if (j < cs->fold.n && cs->fold.v[j].key < e->key) {
			cs->bad = "store: slot names a fold entry that is free";
			break;
		}
		for (; j < cs->fold.n && cs->fold.v[j].key == e->key; j++)
			n++;
		if (n == 0)
			cs->bad = "store: fold entry referenced by no slot";
		else if (n != e->refs)
			cs->bad = "store: fold refcount != slots naming it";
		if (n >= 2) {
			*folded += n;
			(*shared)++;
		}
		*compr += pool_obj_size(cs->st->pool, e->val);
	}
	if (!cs->bad && j != cs->fold.n)
		cs->bad = "store: slot names a fold entry that is free";
}

bool store_is_valid(struct store *st, const char **why)
{
	struct check_state cs = { .st = st };
	uint64_t cursor = 0, compr = 0, folded = 0, shared = 0, distinct = 0;
	uint64_t groups = 0;
	struct store_file *f;
	struct store_stats ss;
	size_t i, j;

	while (!cs.bad && (f = file_next(st, &cursor))) {
		check_file(&cs, f);
		file_put(f);
	}
	if (cs.bad)
		goto out_free;
	if (!fold_is_valid(st->fold, &cs.bad) ||
	    !backing_is_valid(st->bd, cs.disk, &cs.bad) ||
	    !pattern_is_valid(st->pat, &cs.bad) ||
	    !pool_is_valid(st->pool, &cs.bad))
		goto out_free;
	fold_for_each(st->fold, check_entry, &cs);
	if (cs.fold.oom || cs.obj.oom || cs.pat.oom || cs.ent.oom ||
	    cs.grp.oom) {
		cs.bad = "store: out of memory for the check";
		goto out_free;
	}

	refs_sort(&cs.fold);
	refs_sort(&cs.ent);
	check_entries(&cs, &compr, &folded, &shared);
	if (cs.bad)
		goto out_free;

	/* Every pool object is owned once: by one OBJ slot or one entry. */
	for (i = 0; i < cs.obj.n; i++)
		compr += cs.obj.v[i].val;
	for (i = 0; i < cs.ent.n; i++)
		refs_push(&cs.obj, cs.ent.v[i].val, 0, 0);
	check_groups(&cs, &compr, &groups);
	if (cs.bad)
		goto out_free;
	if (cs.obj.oom) {
		cs.bad = "store: out of memory for the check";
		goto out_free;
	}
	refs_sort(&cs.obj);
	for (i = 1; i < cs.obj.n; i++)
		if (cs.obj.v[i].key == cs.obj.v[i - 1].key) {
			cs.bad = "store: one pool object owned twice";
			goto out_free;
		}

	/* Patterns: refs == slots naming them, none unreferenced. */
	refs_sort(&cs.pat);
	for (i = 0; i < cs.pat.n; i = j) {
		for (j = i; j < cs.pat.n && cs.pat.v[j].key == cs.pat.v[i].key;
		     j++)
			;
		if (pattern_refs(st->pat, cs.pat.v[i].key) != j - i) {
			cs.bad = "store: pattern refcount != slots naming it";
			goto out_free;
		}
		distinct++;
	}
	if (distinct != pattern_count(st->pat)) {
		cs.bad = "store: unreferenced patterns in the table";
		goto out_free;
	}

	/* The counters against what was found. */
	store_get_stats(st, &ss);
	if (ss.orig_data_size != cs.pages * PAGE)
		cs.bad = "store: orig_data_size != stored pages";
	else if (ss.same_pages != cs.same)
		cs.bad = "store: same_pages != same-filled slots";
	else if (ss.huge_pages != cs.huge)
		cs.bad = "store: huge_pages != raw slots";
	else if (ss.compr_data_size != compr)
		cs.bad = "store: compr_data_size != sizes of distinct objects";
	else if (ss.pages_folded != folded || ss.fold_objs != shared)
		cs.bad = "store: pages_folded/fold_objs wrong";
	else if (ss.pool_objs != cs.obj.n)
		cs.bad = "store: pool objects != objects owned by slots";
	else if (ss.recomp_pages != cs.cold)
		cs.bad = "store: recomp_pages != COLD slots";
	else if (ss.group_pages != cs.grp.n || ss.groups != groups)
		cs.bad = "store: group_pages/groups != GROUP slots/groups";

out_free:
	free(cs.fold.v);
	free(cs.obj.v);
	free(cs.pat.v);
	free(cs.ent.v);
	free(cs.grp.v);
	if (cs.bad && why)
		*why = cs.bad;
	return !cs.bad;
}
