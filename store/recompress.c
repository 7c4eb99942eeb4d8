// SPDX-License-Identifier: MIT
/*
 * recompress.c - idle tracking and recompression of cold pages.
 *
 * Ages live in the slots (cluster.h, bits 16..23), so tracking costs no
 * memory. A walk visits every cluster of every file, one cluster lock hold
 * per cluster: it ages or marks the slots and lists the idle ones, then
 * moves those one page at a time (recompress_page()), or a group of them
 * at a time (group_make(), the same three steps for all its pages):
 *
 *   1. under the file's read lock and the cluster lock: the slot is still
 *      what the walk saw, and its object has one reference; decode it.
 *   2. no lock: compress with the cold codec; a new pool object.
 *   3. under the locks again: if the slot is still what the walk saw (a
 *      read resets the age, a write or discard replaces the slot) and its
 *      object still holds the bytes read (obj_fingerprint(): a discard
 *      and rewrite can bring the same slot value back), point the slot -
 *      or, for a FOLD slot, its fold entry - at the new object, then free
 *      the old one.
 *
 * Why the old object can be freed at once: every reader touches an object
 * only between pool_map() and pool_unmap(), under the cluster lock of a
 * slot that names it (store.c's head: a read copies the object out under
 * the lock and decodes the copy after dropping it; this walk and the fold
 * scan decode under the lock). An OBJ slot is the only name of its object,
 * and step 3 holds that slot's cluster lock, so no reader is between map
 * and unmap, and a reader coming after sees the new slot. A fold entry may
 * be reached from slots in other clusters, whose readers hold other
 * cluster locks, so it is switched only while it has one reference
 * (fold_replace() checks under the shard lock, which every new reference
 * takes); the one slot is ours. Nobody else can have the old object mapped.
 *
 * lock ordering: rc->walk_lock (held through a walk), then as store.c
 * (file, cluster, fold shard, pool); rc->t.lock is only held to sleep.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "codec.h"
#include "store-int.h"

#define AGE_TICKS	8	/* ticks (of recompress_after / 8) to idle */
#define MIN_GAIN	16	/* bytes the cold codec must save: a class */
#define COMPACT_EVERY	1024	/* pages moved between compactions */

enum walk_op {
	WALK_TICK,	/* age every page, move the idle ones */
	WALK_MARK,	/* mark every page idle */
	WALK_RECOMPRESS,	/* move the idle pages */
};

struct walk {
	struct store *st;
	enum walk_op op;
	unsigned int threshold;		/* age from which a page is idle */
	unsigned int mark_age;		/* WALK_MARK: only pages this old */
	unsigned int type;		/* WALK_RECOMPRESS: STORE_RECOMPRESS_* */
	unsigned int min_size;		/* WALK_RECOMPRESS: objects this big */
	unsigned int spec;		/* codec << 8 | level */
	unsigned int group;		/* pages per group; 1: none made */
	uint64_t fp;			/* the read page's object fingerprint */
	const _Atomic bool *stop;	/* background: give up when set */
	uint64_t done;			/* pages marked or moved */
	uint64_t since_compact;		/* pages moved since the last */
	unsigned int n, nhot;
	uint16_t cand[CLUSTER_SLOTS];
	slot_t seen[CLUSTER_SLOTS];
	uint16_t hot[CLUSTER_SLOTS];	/* grouped pages used again */
	slot_t hot_seen[CLUSTER_SLOTS];
	unsigned char page[STORE_PAGE_SIZE];
	unsigned char out[STORE_PAGE_SIZE];
	unsigned char gpage[CODEC_GROUP_MAX * STORE_PAGE_SIZE];
	unsigned char gout[CODEC_GROUP_MAX * STORE_PAGE_SIZE];
};

static unsigned int spec_make(enum store_cold_algo c, int level)
{
	return (unsigned int)c << 8 | (unsigned int)level;
}

/* ---- one page ---- */

/* The cluster at ci with its lock held (and the file's read lock), or NULL
 * with nothing held. */
static struct cluster *cluster_lock(struct store_file *f, uint64_t ci)
{
	struct cluster *c;

	file_rdlock(f);
	c = cdir_lookup(&f->dir, ci);
	if (!c) {
		file_rdunlock(f);
		return NULL;
	}
	futex_lock(&c->lock);
	return c;
}

static void cluster_unlock(struct store_file *f, struct cluster *c)
{
	futex_unlock(&c->lock);
	file_rdunlock(f);
}

/*
 * The fingerprint of the bytes slot s's object holds now (0 when it cannot
 * be mapped); cluster lock held. A walk takes it when it reads a page and
 * compares it when it installs: the same slot value is not enough, as the
 * page may have been discarded and written again meanwhile into the same
 * handle at the same size, with the same age (read_idle makes every read
 * page idle): installing then would put the old page's bytes back.
 */
static uint64_t obj_fingerprint(struct store *st, pool_handle_t h,
				unsigned int size)
{
	const void *obj = pool_map(st->pool, h);
	uint64_t fp;

	if (!obj)
		return 0;
	fp = XXH3_64bits(obj, size);
	pool_unmap(st->pool, h);
	return fp;
}

void store_set_walk_hook(struct store *st, void (*fn)(void *arg), void *arg)
{
	st->walk_hook = fn;
	st->walk_hook_arg = arg;
}

/* Decode the object of slot i into w->page if the slot is still seen and
 * its object has no other name; its handle goes to *handle. 0 or -EAGAIN
 * (leave the page). */
static int recompress_read(struct walk *w, struct store_file *f, uint64_t ci,
			   unsigned int i, slot_t seen, pool_handle_t *handle)
{
	struct store *st = w->st;
	struct cluster *c;
	const void *obj;
	int err = -EAGAIN;

	c = cluster_lock(f, ci);
	if (!c)
		return -EAGAIN;
	if (c->slot[i] != seen)
		goto out;
	if (slot_type(seen) == SLOT_FOLD &&
	    fold_refs(st->fold, slot_payload(seen)) != 1)
		goto out;
	*handle = slot_handle(st, seen);
	obj = pool_map(st->pool, *handle);
	if (obj) {
		err = codec_decode(obj, slot_size(seen), w->page) ? -EAGAIN : 0;
		w->fp = XXH3_64bits(obj, slot_size(seen));
		pool_unmap(st->pool, *handle);
	}
out:
	cluster_unlock(f, c);
	return err;
}

/* Replace slot i's value seen by new if it is unchanged; for a FOLD slot
 * the entry is switched to the new object. */
static bool recompress_install(struct walk *w, struct store_file *f,
			       uint64_t ci, unsigned int i, slot_t seen,
			       slot_t new, pool_handle_t old,
			       pool_handle_t handle)
{
	struct store *st = w->st;
	struct cluster *c;
	bool ok = false;

	c = cluster_lock(f, ci);
	if (!c)
		return false;
	if (c->slot[i] != seen ||
	    obj_fingerprint(st, slot_handle(st, seen), slot_size(seen)) != w->fp)
		goto out;
	if (slot_type(seen) == SLOT_FOLD &&
	    fold_replace(st->fold, slot_payload(seen), old, handle))
		goto out;
	slot_account(st, f, seen, -1);
	slot_account(st, f, new, 1);
	c->slot[i] = new;
	ok = true;
out:
	cluster_unlock(f, c);
	return ok;
}

static void recompress_page(struct walk *w, struct store_file *f, uint64_t ci,
			    unsigned int i, slot_t seen)
{
	struct store *st = w->st;
	unsigned int osize = slot_size(seen), nsize;
	pool_handle_t old, handle;
	slot_t new;

	if (recompress_read(w, f, ci, i, seen, &old))
		return;
	walk_hook(st);
	nsize = codec_cold_compress(intake_algo(w->spec),
				    (int)(w->spec & 0xff), w->page, w->out,
				    osize);
	if (!nsize || nsize + MIN_GAIN > osize) {
		/* Not worth it: remember, so later walks skip it. */
		if (recompress_install(w, f, ci, i, seen, seen | SLOT_KEEP, old,
				       old))
			ctr_add(st, SC_RECOMP_KEPT, 1);
		return;
	}
	if (object_create(st, w->out, nsize, &handle))
		return;		/* limit or memory: leave it as it is */
	new = slot_make_obj(slot_type(seen),
			    slot_type(seen) == SLOT_FOLD ? slot_payload(seen)
							 : handle,
			    nsize, false);
	new = slot_set_age(new, slot_age(seen)) | SLOT_COLD;
	if (!recompress_install(w, f, ci, i, seen, new, old, handle)) {
		object_free(st, handle, nsize);
		return;
	}
	object_free(st, old, osize);
	ctr_add(st, SC_RECOMP_TOTAL, 1);
	ctr_add(st, SC_RECOMP_SAVED, (int64_t)(osize - nsize));
	w->done++;
	w->since_compact++;
}

/* ---- groups ---- */

static bool walk_stopped(const struct walk *w);

/* A grouped page used again (hot) leaves its group for an LZ4 object of
 * its own, as a write would store it. */
static void group_leave(struct walk *w, struct store_file *f, uint64_t ci,
			unsigned int i, slot_t seen)
{
	struct store *st = w->st;
	struct group_read gr;
	pool_handle_t handle;
	const void *src = w->out;
	unsigned int size;
	struct cluster *c;
	bool last;
	slot_t new;
	int err;

	c = cluster_lock(f, ci);
	if (!c)
		return;
	err = c->slot[i] == seen ? group_fetch(st, seen, w->page, &gr) : -EAGAIN;
	if (!err)
		err = group_finish(&gr, w->page);
	cluster_unlock(f, c);
	if (err)
		return;
	size = codec_compress(w->page, w->out, st->huge_threshold - 1);
	if (!size) {
		src = w->page;
		size = STORE_PAGE_SIZE;
	}
	if (object_create(st, src, size, &handle))
		return;
	new = slot_make_obj(SLOT_OBJ, handle, size, size == STORE_PAGE_SIZE) |
	      (seen & SLOT_AGE_MASK);
	c = cluster_lock(f, ci);
	if (!c || c->slot[i] != seen) {
		if (c)
			cluster_unlock(f, c);
		object_free(st, handle, size);
		return;
	}
	slot_account(st, f, seen, -1);
	slot_account(st, f, new, 1);
	c->slot[i] = new;
	last = group_drop(st, seen);
	cluster_unlock(f, c);
	if (last)
		group_free(st, slot_payload(seen));
}

struct member {
	uint16_t i;
	slot_t seen;
	pool_handle_t handle;	/* its object (not for a grouped page) */
	uint64_t fp;		/* its bytes' fingerprint, as read */
};

/* Decode the pages of the members still as seen into w->gpage, dropping
 * the others from m; the old bytes they hold to *osum. */
static unsigned int group_gather(struct walk *w, struct store_file *f,
				 uint64_t ci, struct member *m, unsigned int k,
				 uint64_t *osum)
{
	struct store *st = w->st;
	unsigned int j, kk = 0;
	struct cluster *c;

	*osum = 0;
	c = cluster_lock(f, ci);
	if (!c)
		return 0;
	for (j = 0; j < k; j++) {
		slot_t s = m[j].seen;
		unsigned char *page = w->gpage + (size_t)kk * STORE_PAGE_SIZE;
		const void *obj;
		int err = -EIO;

		if (c->slot[m[j].i] != s)
			continue;
		if (slot_is_group(s)) {
			struct group_read gr;

			err = group_fetch(st, s, page, &gr);
			if (!err)
				err = group_finish(&gr, page);
			m[j].handle = 0;
		} else {
			if (slot_type(s) == SLOT_FOLD &&
			    fold_refs(st->fold, slot_payload(s)) != 1)
				continue;
			m[j].handle = slot_handle(st, s);
			obj = pool_map(st->pool, m[j].handle);
			if (obj) {
				err = codec_decode(obj, slot_size(s), page);
				m[j].fp = XXH3_64bits(obj, slot_size(s));
				pool_unmap(st->pool, m[j].handle);
			}
		}
		if (err)
			continue;
		*osum += slot_size(s);
		m[kk++] = m[j];
	}
	cluster_unlock(f, c);
	return kk;
}

/* Pack the pages of m (in index order) into one group; a group of one
 * page is what is left of a mostly dead group, rewritten to give back
 * the dead pages' bytes. */
static void group_make(struct walk *w, struct store_file *f, uint64_t ci,
		       struct member *m, unsigned int k)
{
	struct store *st = w->st;
	pool_handle_t head, oldh[CODEC_GROUP_MAX];
	unsigned int j, n, bytes, share, nold = 0, installed = 0, moved = 0;
	unsigned int olds[CODEC_GROUP_MAX];
	bool oldg[CODEC_GROUP_MAX];
	uint64_t osum, isum = 0;
	struct cluster *c;

	k = group_gather(w, f, ci, m, k, &osum);
	if (!k)
		return;
	/* Worth it only when the group takes a class less than the
	 * pages did. */
	if (osum <= MIN_GAIN)
		return;
	n = codec_group_compress((int)(w->spec & 0xff), w->gpage,
				 k * STORE_PAGE_SIZE, w->gout,
				 (unsigned int)(osum - MIN_GAIN));
	if (!n)
		return;
	if (group_create(st, w->gout, n, k, &head, &bytes))
		return;		/* limit or memory: leave them */
	share = (bytes + k - 1) / k;
	if (share >= STORE_PAGE_SIZE)
		share = STORE_PAGE_SIZE - 1;
	walk_hook(st);
	c = cluster_lock(f, ci);
	for (j = 0; c && j < k; j++) {
		slot_t s = m[j].seen, new;

		/* A grouped page cannot come back to the same slot value:
		 * only a walk makes groups, and this one holds walk_lock. */
		if (c->slot[m[j].i] != s ||
		    (!slot_is_group(s) &&
		     obj_fingerprint(st, m[j].handle, slot_size(s)) != m[j].fp))
			continue;
		if (slot_type(s) == SLOT_FOLD &&
		    fold_drop_single(st->fold, slot_payload(s), m[j].handle))
			continue;
		new = slot_make_group(head, j, share) | (s & SLOT_AGE_MASK);
		slot_account(st, f, s, -1);
		slot_account(st, f, new, 1);
		c->slot[m[j].i] = new;
		installed++;
		isum += slot_size(s);
		moved += !(s & SLOT_COLD);
		if (slot_is_group(s)) {
			if (group_drop(st, s)) {
				oldh[nold] = slot_payload(s);
				oldg[nold++] = true;
			}
		} else {
			oldh[nold] = m[j].handle;
			olds[nold] = slot_size(s);
			oldg[nold++] = false;
		}
	}
	if (c) {
		group_set_live(st, head, installed);
		cluster_unlock(f, c);
	}
	if (!installed) {
		group_free(st, head);
		return;
	}
	for (j = 0; j < nold; j++) {
		if (oldg[j])
			group_free(st, oldh[j]);
		else
			object_free(st, oldh[j], olds[j]);
	}
	ctr_add(st, SC_GROUP_SAVED, (int64_t)isum - (int64_t)bytes);
	ctr_add(st, SC_RECOMP_SAVED, (int64_t)isum - (int64_t)bytes);
	ctr_add(st, SC_RECOMP_TOTAL, moved);
	w->done += installed;
	w->since_compact += installed;
}

/* Cut the cluster's candidates into groups of up to w->group pages, in
 * index order (neighbours in the file, holes and other pages between
 * them skipped). A lone page left over goes to the cold codec alone. */
static void walk_groups(struct walk *w, struct store_file *f, uint64_t ci)
{
	struct member m[CODEC_GROUP_MAX];
	unsigned int k, j, at, n = 0;

	/* Pages stored raw are tried alone; shared ones stay (so that they
	 * do not leave holes in the groups). */
	for (j = 0; j < w->n && !walk_stopped(w); j++) {
		if (slot_flag(w->seen[j])) {
			recompress_page(w, f, ci, w->cand[j], w->seen[j]);
			continue;
		}
		if (slot_type(w->seen[j]) == SLOT_FOLD &&
		    fold_refs(w->st->fold, slot_payload(w->seen[j])) != 1)
			continue;
		w->cand[n] = w->cand[j];
		w->seen[n++] = w->seen[j];
	}
	w->n = n;
	for (at = 0; at < w->n && !walk_stopped(w); at += k) {
		k = w->n - at < w->group ? w->n - at : w->group;
		if (k == 1 && !slot_is_group(w->seen[at])) {
			/* alone: to the cold codec, unless it is there */
			if (!(w->seen[at] & SLOT_COLD))
				recompress_page(w, f, ci, w->cand[at],
						w->seen[at]);
			break;
		}
		for (j = 0; j < k; j++) {
			m[j].i = w->cand[at + j];
			m[j].seen = w->seen[at + j];
			m[j].handle = 0;
		}
		group_make(w, f, ci, m, k);
	}
}

/* The age from which a page is idle: 8 ticks while aging runs, else only
 * pages marked idle. */
static unsigned int idle_threshold(struct store *st)
{
	return atomic_load(&st->rc.after) ? AGE_TICKS : AGE_IDLE;
}

/* ---- walks ---- */

/* Is slot s (its age already updated) one the walk moves? */
static bool walk_wants(const struct walk *w, slot_t s)
{
	if (s & (SLOT_COLD | SLOT_KEEP | SLOT_DISK))
		return false;
	if (slot_size(s) < w->min_size)
		return false;
	return slot_of_type(s, w->type & STORE_RECOMPRESS_HUGE,
			    w->type & STORE_RECOMPRESS_IDLE, w->threshold);
}

/* A lone cold page that groups would take (walk_wants() takes the
 * others). */
static bool group_wants(const struct walk *w, slot_t s)
{
	return w->group > 1 && (s & SLOT_COLD) && !slot_on_disk(s) &&
	       !slot_flag(s) &&
	       slot_age(s) >= w->threshold && slot_size(s) >= w->min_size;
}

/* Age or mark the slots of cluster ci, listing the ones to move in w. */
static bool walk_cluster(struct walk *w, struct store_file *f, uint64_t from,
			 uint64_t *ci)
{
	pool_handle_t head = 0;		/* the last group looked at */
	bool sparse = false;		/* ... is at most half alive */
	struct cluster *c;
	unsigned int i;

	file_rdlock(f);
	c = cdir_next(&f->dir, from, ci);
	if (!c) {
		file_rdunlock(f);
		return false;
	}
	w->n = 0;
	w->nhot = 0;
	futex_lock(&c->lock);
	for (i = 0; i < c->cap; i++) {
		slot_t s = c->slot[i];
		unsigned int age = slot_age(s);

		if (slot_type(s) < SLOT_OBJ)
			continue;
		if (w->op == WALK_MARK) {
			if (age < w->mark_age)
				continue;
			if (age != AGE_IDLE)
				w->done++;
			age = AGE_IDLE;
		} else if (w->op == WALK_TICK && age < AGE_MAX) {
			age++;
		}
		s = slot_set_age(s, age);
		c->slot[i] = s;
		if (w->op == WALK_MARK)
			continue;
		if (slot_is_group(s)) {
			/* Used again since it was grouped: it leaves. */
			if (age < w->threshold) {
				w->hot[w->nhot] = (uint16_t)i;
				w->hot_seen[w->nhot++] = s;
				continue;
			}
			/* Mostly dead: its live pages are regrouped. */
			if (slot_payload(s) != head) {
				struct group_hdr h;

				head = slot_payload(s);
				sparse = !group_header(w->st, head, &h, NULL) &&
					 h.live * 2 <= h.n;
			}
			if (w->group > 1 && sparse) {
				w->cand[w->n] = (uint16_t)i;
				w->seen[w->n++] = s;
			}
			continue;
		}
		if (walk_wants(w, s) || group_wants(w, s)) {
			w->cand[w->n] = (uint16_t)i;
			w->seen[w->n++] = s;
		}
	}
	futex_unlock(&c->lock);
	file_rdunlock(f);
	return true;
}

static bool walk_stopped(const struct walk *w)
{
	return w->stop && atomic_load_explicit(w->stop, memory_order_relaxed);
}

static void walk_file(struct walk *w, struct store_file *f)
{
	uint64_t from = 0, ci;

	while (!walk_stopped(w) && walk_cluster(w, f, from, &ci)) {
		unsigned int k;

		for (k = 0; k < w->nhot && !walk_stopped(w); k++)
			group_leave(w, f, ci, w->hot[k], w->hot_seen[k]);
		if (w->group > 1)
			walk_groups(w, f, ci);
		for (k = 0; k < w->n && !walk_stopped(w) && w->group <= 1; k++)
			recompress_page(w, f, ci, w->cand[k], w->seen[k]);
		/*
		 * The new objects go to smaller classes and the old ones leave
		 * holes in theirs: without compaction along the way, memory
		 * would climb towards LZ4 + cold copies of every page moved
		 * before it fell.
		 */
		if (w->since_compact >= COMPACT_EVERY) {
			compact_run(w->st,
				    100 - atomic_load(&w->st->defrag_ratio));
			w->since_compact = 0;
		}
		if (ci >= MAX_CLUSTER)
			break;
		from = ci + 1;
	}
}

/* What a walk does besides its op: defaults for ticks and the plain
 * triggers (mark every page; move idle pages with the cold codec). */
struct walk_opts {
	unsigned int mark_age;
	unsigned int type;
	unsigned int min_size;
	unsigned int spec;		/* 0: the recomp_algorithm setting */
};

static int walk_store(struct store *st, enum walk_op op,
		      const struct walk_opts *o, const _Atomic bool *stop,
		      uint64_t *pages)
{
	struct store_file *f;
	struct walk *w;
	uint64_t cursor = 0;

	w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->st = st;
	w->op = op;
	w->threshold = idle_threshold(st);
	w->mark_age = o ? o->mark_age : 0;
	w->type = o ? o->type : STORE_RECOMPRESS_IDLE;
	w->min_size = o ? o->min_size : 0;
	w->spec = o && o->spec ? o->spec : atomic_load(&st->rc.algo);
	/* Groups are zstd frames of idle pages; huge pages stay alone. */
	w->group = atomic_load(&st->rc.group);
	if (intake_algo(w->spec) != STORE_COLD_ZSTD ||
	    w->type != STORE_RECOMPRESS_IDLE ||
	    !codec_group_available())
		w->group = 1;
	w->stop = stop;
	w->done = 0;
	w->since_compact = 0;
	pthread_mutex_lock(&st->rc.walk_lock);
	/* Its page buffers (~150 KiB with groups' room) count while it runs. */
	atomic_store(&st->rc.walk_bytes, sizeof(*w));
	while ((f = file_next(st, &cursor))) {
		walk_file(w, f);
		file_put(f);
	}
	if (w->since_compact)
		compact_run(st, 100 - atomic_load(&st->defrag_ratio));
	atomic_store(&st->rc.walk_bytes, 0);
	pthread_mutex_unlock(&st->rc.walk_lock);
	if (pages)
		*pages = w->done;
	free(w);
	return 0;
}

int store_mark_idle(struct store *st, uint64_t *pages)
{
	return walk_store(st, WALK_MARK, NULL, NULL, pages);
}

int store_mark_idle_since(struct store *st, uint64_t seconds, uint64_t *pages)
{
	uint64_t after = atomic_load(&st->rc.after), ticks;
	struct walk_opts o = { 0 };

	if (!after)
		return -EINVAL;		/* no ages without aging */
	/* Ages count ticks of after / 8 seconds: the pages untouched for at
	 * least seconds are those at least this many ticks old. */
	ticks = (seconds * AGE_TICKS + after - 1) / after;
	o.mark_age = ticks > AGE_MAX ? AGE_MAX : (unsigned int)ticks;
	return walk_store(st, WALK_MARK, &o, NULL, pages);
}

int store_recompress_with(struct store *st,
			  const struct store_recompress_opts *ro,
			  uint64_t *pages)
{
	struct walk_opts o = { 0 };
	uint64_t moved = 0;
	int err;

	if (ro) {
		if (ro->type & ~(unsigned int)(STORE_RECOMPRESS_IDLE |
					       STORE_RECOMPRESS_HUGE) ||
		    ro->threshold > STORE_PAGE_SIZE)
			return -EINVAL;
		o.type = ro->type ? ro->type : STORE_RECOMPRESS_IDLE;
		o.min_size = ro->threshold;
		if (ro->algo_set) {
			enum store_cold_algo c =
				(enum store_cold_algo)ro->algo.algo;
			int min, max, def;

			err = store_cold_codec_check(&ro->algo, &min, &max);
			if (err)
				return err;
			codec_cold_levels(c, &min, &max, &def);
			o.spec = spec_make(c, ro->algo.level ? ro->algo.level
							     : def);
		}
	} else {
		o.type = STORE_RECOMPRESS_IDLE;
	}
	err = walk_store(st, WALK_RECOMPRESS, &o, NULL, &moved);

	/* A bulk move asked for by hand: the LZ4 objects left holes all over
	 * their classes, pack them fully. */
	if (!err && moved)
		compact_run(st, 100);
	if (pages)
		*pages = moved;
	return err;
}

int store_recompress(struct store *st, uint64_t *pages)
{
	return store_recompress_with(st, NULL, pages);
}

int store_age_tick(struct store *st, uint64_t *pages)
{
	return walk_store(st, WALK_TICK, NULL, NULL, pages);
}

/*
 * Pages idle now: stored pages (own object or folded) not read or written
 * for recompress_after seconds, or marked idle, cold or not yet. A walk of
 * every slot under its cluster lock, taking nothing else: for a stat read,
 * not for a data path.
 */
uint64_t store_idle_pages(struct store *st)
{
	unsigned int threshold = idle_threshold(st);
	struct store_file *f;
	uint64_t cursor = 0, n = 0;

	while ((f = file_next(st, &cursor))) {
		uint64_t from = 0, ci;
		struct cluster *c;

		for (;;) {
			file_rdlock(f);
			c = cdir_next(&f->dir, from, &ci);
			if (!c) {
				file_rdunlock(f);
				break;
			}
			futex_lock(&c->lock);
			for (unsigned int i = 0; i < c->cap; i++)
				if (slot_type(c->slot[i]) >= SLOT_OBJ &&
				    slot_age(c->slot[i]) >= threshold)
					n++;
			futex_unlock(&c->lock);
			file_rdunlock(f);
			if (ci >= MAX_CLUSTER)
				break;
			from = ci + 1;
		}
		file_put(f);
	}
	return n;
}

/* ---- settings ---- */

int store_set_recompress_after(struct store *st, uint64_t seconds)
{
	struct recompression *rc = &st->rc;

	if (seconds > STORE_RECOMPRESS_AFTER_MAX)
		return -EINVAL;
	atomic_store(&rc->after, seconds);
	bg_thread_kick(&rc->t);
	return 0;
}

uint64_t store_get_recompress_after(struct store *st)
{
	return atomic_load(&st->rc.after);
}

void store_cold_codec_default(struct store_cold_codec *a)
{
	int min, max;

	a->algo = codec_cold_available(STORE_COLD_ZSTD) ? STORE_COLD_ZSTD :
							  STORE_COLD_LZ4HC;
	codec_cold_levels(a->algo, &min, &max, &a->level);
}

int store_cold_codec_check(const struct store_cold_codec *a,
			   int *min, int *max)
{
	enum store_cold_algo c = (enum store_cold_algo)a->algo;
	int def;

	if ((unsigned int)a->algo >= STORE_COLD_NR)
		return -EINVAL;
	codec_cold_levels(c, min, max, &def);
	if (a->level && (a->level < *min || a->level > *max))
		return -EINVAL;
	return codec_cold_available(c) ? 0 : -EOPNOTSUPP;
}

int store_set_cold_codec(struct store *st,
			 const struct store_cold_codec *a)
{
	enum store_cold_algo c = (enum store_cold_algo)a->algo;
	int min, max, def, err;

	err = store_cold_codec_check(a, &min, &max);
	if (err)
		return err;
	codec_cold_levels(c, &min, &max, &def);
	atomic_store(&st->rc.algo, spec_make(c, a->level ? a->level : def));
	return 0;
}

void store_get_cold_codec(struct store *st,
			  struct store_cold_codec *a)
{
	unsigned int spec = atomic_load(&st->rc.algo);

	a->algo = intake_algo(spec);
	a->level = (int)(spec & 0xff);
}

int store_set_intake(struct store *st, const struct store_cold_codec *a)
{
	enum store_cold_algo c;
	int min, max, def, err;

	if (!a) {
		atomic_store(&st->rc.intake, 0);
		return 0;
	}
	err = store_cold_codec_check(a, &min, &max);
	if (err)
		return err;
	c = (enum store_cold_algo)a->algo;
	codec_cold_levels(c, &min, &max, &def);
	atomic_store(&st->rc.intake,
		     INTAKE_COLD | spec_make(c, a->level ? a->level : def));
	return 0;
}

bool store_get_intake(struct store *st, struct store_cold_codec *a)
{
	unsigned int spec = atomic_load(&st->rc.intake);

	if (!spec)
		return false;
	a->algo = intake_algo(spec);
	a->level = (int)(spec & 0xff);
	return true;
}

unsigned int group_size_default(void)
{
	/* Without zstd there are no groups: the default is then 1. */
	return codec_group_available() ? STORE_GROUP_DEFAULT : 1;
}

int store_set_group_size(struct store *st, unsigned int pages)
{
	if (pages < 1 || pages > STORE_GROUP_MAX)
		return -EINVAL;
	if (pages > 1 && !codec_group_available())
		return -EOPNOTSUPP;
	atomic_store(&st->rc.group, pages);
	return 0;
}

unsigned int store_get_group_size(struct store *st)
{
	return atomic_load(&st->rc.group);
}

void store_set_read_idle(struct store *st, bool on)
{
	atomic_store(&st->rc.read_idle, on);
}

bool store_get_read_idle(struct store *st)
{
	return atomic_load(&st->rc.read_idle);
}

int store_cold_codec_parse(const char *s, size_t len,
			   struct store_cold_codec *a)
{
	size_t i, name_len = len;
	unsigned int c;
	long level = 0;

	for (i = 0; i < len; i++) {
		if (s[i] == ':') {
			name_len = i;
			break;
		}
	}
	for (c = 0; c < STORE_COLD_NR; c++) {
		const char *name = codec_cold_name((enum store_cold_algo)c);

		if (strlen(name) == name_len && !memcmp(s, name, name_len))
			break;
	}
	if (c == STORE_COLD_NR)
		return -EINVAL;
	if (name_len < len) {
		/* ":N", N of one to three digits */
		if (len - name_len < 2 || len - name_len > 4)
			return -EINVAL;
		for (i = name_len + 1; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -EINVAL;
			level = level * 10 + (s[i] - '0');
		}
		if (level == 0)
			return -EINVAL;
	}
	a->algo = (enum store_cold_algo)c;
	a->level = (int)level;
	return 0;
}

int store_cold_codec_format(const struct store_cold_codec *a,
			    char *buf, size_t size)
{
	const char *name = codec_cold_name((enum store_cold_algo)a->algo);

	return snprintf(buf, size, "%s:%d", name ? name : "?", a->level);
}

/* ---- the background thread ---- */

static void *recompress_main(void *arg)
{
	struct store *st = arg;
	struct recompression *rc = &st->rc;
	struct timespec next;
	bool armed = false;

	/* Cold pages can wait: foreground I/O gets the CPU first. */
	(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	pthread_mutex_lock(&rc->t.lock);
	while (!atomic_load(&rc->t.stop)) {
		uint64_t after = atomic_load(&rc->after);
		int err = 0;

		if (rc->t.changed || !armed) {
			rc->t.changed = false;
			armed = after != 0;
			if (armed)
				bg_deadline_in(&next, after * 1000 / AGE_TICKS);
		}
		if (!armed)
			pthread_cond_wait(&rc->t.cond, &rc->t.lock);
		else
			err = pthread_cond_timedwait(&rc->t.cond, &rc->t.lock,
						     &next);
		if (err != ETIMEDOUT || atomic_load(&rc->t.stop) ||
		    rc->t.changed)
			continue;
		pthread_mutex_unlock(&rc->t.lock);
		(void)walk_store(st, WALK_TICK, NULL, &rc->t.stop, NULL);
		pthread_mutex_lock(&rc->t.lock);
		armed = false;	/* the next tick counts from now */
	}
	pthread_mutex_unlock(&rc->t.lock);
	return NULL;
}

int recompress_init(struct store *st, const struct store_config *cfg)
{
	struct store_cold_codec a = cfg->cold_codec;
	struct recompression *rc = &st->rc;

	atomic_init(&rc->after, 0);
	atomic_init(&rc->algo, 0);
	atomic_init(&rc->intake, 0);
	atomic_init(&rc->read_idle, cfg->read_idle);
	atomic_init(&rc->group, 1);
	pthread_mutex_init(&rc->walk_lock, NULL);
	if (store_set_group_size(st, cfg->group_size ? cfg->group_size :
				  group_size_default()))
		return -EINVAL;
	rc->t.running = false;
	rc->t.changed = false;
	if (a.algo == STORE_COLD_ZSTD && !a.level &&
	    !codec_cold_available(STORE_COLD_ZSTD))
		store_cold_codec_default(&a);
	if (store_set_cold_codec(st, &a))
		return -EINVAL;
	if (cfg->intake_cold && store_set_intake(st, &cfg->intake))
		return -EINVAL;
	return store_set_recompress_after(st, cfg->recompress_after);
}

int recompress_start(struct store *st)
{
	return bg_thread_start(&st->rc.t, recompress_main, st);
}

void recompress_stop(struct store *st)
{
	bg_thread_stop(&st->rc.t);
	pthread_mutex_destroy(&st->rc.walk_lock);
}
