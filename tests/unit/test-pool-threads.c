// SPDX-License-Identifier: MIT
/*
 * test-pool-threads - workers allocate, free, write and verify objects
 * (through pool_read/pool_write and through mappings) while another thread
 * compacts without pause and a third reads statistics. Every object's
 * contents follow from its seed, so any move that loses or mixes bytes, and
 * any mapping that moves under its reader, is a mismatch.
 */
#include "pool.h"
#include "tap.h"
#include "testdata.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NR_WORKERS    3
#define OPS_PER_WORKER 300000
#define MAX_LIVE      6000
#define RESERVE_BYTES (64u * 4096u) /* the store's default reserve, 256 KiB */

struct obj {
	pool_handle_t h;
	uint32_t size;
	uint64_t seed;
};

struct worker {
	pthread_t tid;
	struct pool *pool;
	uint64_t rng;
	struct obj *o;
	uint32_t n;
	uint64_t mismatch, failed, allocs, frees, maps, writes;
};

static struct pool *pool;
static volatile int workers_left;

static uint64_t rnd(uint64_t *s)
{
	return td_next(s);
}

/* Mostly the sizes of compressed memory pages (around 1-2.3 KiB, some
 * small, a few whole pages), some uniform so every class is used. */
static uint32_t rnd_size(uint64_t *s)
{
	uint32_t r = (uint32_t)(rnd(s) % 100);

	if (r < 10)
		return 1 + (uint32_t)(rnd(s) % 4096);
	if (r < 24)
		return 64 + (uint32_t)(rnd(s) % 200);
	if (r < 95)
		return 900 + (uint32_t)(rnd(s) % 1400);
	if (r < 98)
		return 2300 + (uint32_t)(rnd(s) % 772);
	return 4096;
}

static bool check(struct worker *w, const struct obj *x, bool via_map)
{
	uint8_t want[4096], got[4096];

	td_fill(want, x->size, x->seed);
	if (via_map) {
		const uint8_t *m = pool_map(w->pool, x->h);
		bool same;

		if (!m)
			return false;
		memcpy(got, m, x->size);
		/* Let compaction run while the mapping is held: the object
		 * must neither move nor change. */
		sched_yield();
		same = !memcmp(got, want, x->size) &&
		       !memcmp(m, want, x->size) &&
		       pool_map(w->pool, x->h) == m;
		pool_unmap(w->pool, x->h);
		pool_unmap(w->pool, x->h);
		w->maps++;
		return same;
	}
	return !pool_read(w->pool, x->h, got, x->size) &&
	       !memcmp(got, want, x->size);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[4096];

	for (uint32_t op = 0; op < OPS_PER_WORKER; op++) {
		bool grow = (op / 20000) % 2 == 0;
		uint32_t r = (uint32_t)(rnd(&w->rng) % 100);

		if (w->n < MAX_LIVE && (!w->n || r < (grow ? 55u : 30u))) {
			struct obj *x = &w->o[w->n];

			x->size = rnd_size(&w->rng);
			x->seed = rnd(&w->rng);
			if (pool_alloc(w->pool, x->size, &x->h)) {
				w->failed++;
				continue;
			}
			td_fill(buf, x->size, x->seed);
			if (r & 1) {
				w->failed += pool_write(w->pool, x->h, buf,
							x->size) != 0;
			} else {
				memcpy(pool_map(w->pool, x->h), buf, x->size);
				pool_unmap(w->pool, x->h);
			}
			w->n++;
			w->allocs++;
		} else if (r < 85) {
			uint32_t i = (uint32_t)(rnd(&w->rng) % w->n);

			if (!check(w, &w->o[i], false))
				w->mismatch++;
			pool_free(w->pool, w->o[i].h);
			w->o[i] = w->o[--w->n];
			w->frees++;
		} else if (r < 95) {
			uint32_t i = (uint32_t)(rnd(&w->rng) % w->n);

			if (!check(w, &w->o[i], r & 1))
				w->mismatch++;
		} else {
			/* New contents, through a mapping or a copy. */
			struct obj *x = &w->o[(uint32_t)(rnd(&w->rng) % w->n)];

			x->seed = rnd(&w->rng);
			td_fill(buf, x->size, x->seed);
			if (r & 1) {
				uint8_t *m = pool_map(w->pool, x->h);

				memcpy(m, buf, x->size);
				pool_unmap(w->pool, x->h);
			} else {
				w->failed += pool_write(w->pool, x->h, buf,
							x->size) != 0;
			}
			w->writes++;
		}
	}
	__atomic_sub_fetch(&workers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct compactor {
	uint64_t calls, freed, stat_reads, rng;
	uint64_t bad_stats;
};

static void *compactor_main(void *arg)
{
	static const unsigned int usages[] = { 25, 50, 75, 90, 100 };
	struct compactor *c = arg;

	while (__atomic_load_n(&workers_left, __ATOMIC_ACQUIRE)) {
		bool done;
		unsigned int usage = usages[rnd(&c->rng) % 5];

		c->freed += pool_compact(pool, 1 + rnd(&c->rng) % 128, usage,
					 &done);
		c->calls++;
		sched_yield();  /* continuous, but let the workers run */
	}
	return NULL;
}

static void *stats_main(void *arg)
{
	struct compactor *c = arg;
	static struct pool_stats st;

	while (__atomic_load_n(&workers_left, __ATOMIC_ACQUIRE)) {
		pool_get_stats(pool, &st);
		/* Consistent per field only; still a few things must hold. */
		if (st.nr_classes == 0 || st.span_bytes != st.pages * 4096 ||
		    pool_frag_pct(pool) > 100 || pool_mem_bytes(pool) == 0)
			c->bad_stats++;
		c->stat_reads++;
		sched_yield();
	}
	return NULL;
}

int main(void)
{
	struct worker w[NR_WORKERS];
	struct compactor comp = { .rng = 42 }, reader = { 0 };
	pthread_t ctid, stid;
	static struct pool_stats st;
	uint64_t mismatch = 0, failed = 0, allocs = 0, frees = 0, live = 0;
	uint64_t live_bytes = 0, maps = 0, writes = 0;
	const char *why = NULL;
	struct timespec t0, t1;

	/* With the background refill and the reserve, as the store runs it:
	 * their faulting in and releasing race with everything below. */
	{
		struct pool_config cfg = {
			.refill = true,
			.reserve_bytes = RESERVE_BYTES,
		};

		pool = pool_create(&cfg);
	}
	ok(pool, "pool_create (refill on, reserve %u bytes)",
	   RESERVE_BYTES);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	workers_left = NR_WORKERS;
	for (int i = 0; i < NR_WORKERS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].pool = pool;
		w[i].rng = 0x1234567ull * (i + 1);
		w[i].o = calloc(MAX_LIVE, sizeof(struct obj));
		pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
	}
	pthread_create(&ctid, NULL, compactor_main, &comp);
	pthread_create(&stid, NULL, stats_main, &reader);
	for (int i = 0; i < NR_WORKERS; i++)
		pthread_join(w[i].tid, NULL);
	pthread_join(ctid, NULL);
	pthread_join(stid, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	for (int i = 0; i < NR_WORKERS; i++) {
		mismatch += w[i].mismatch;
		failed += w[i].failed;
		allocs += w[i].allocs;
		frees += w[i].frees;
		maps += w[i].maps;
		writes += w[i].writes;
		live += w[i].n;
		for (uint32_t k = 0; k < w[i].n; k++)
			live_bytes += w[i].o[k].size;
	}
	pool_get_stats(pool, &st);
	diag("%d workers x %d ops in %.1f s: %llu allocs, %llu frees, %llu "
	     "held mappings, %llu rewrites; compactor: %llu calls, %llu "
	     "pages freed, %llu objects moved; %llu stats reads; lock "
	     "acquisitions %llu, contended %llu", NR_WORKERS, OPS_PER_WORKER,
	     (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
	     (unsigned long long)allocs, (unsigned long long)frees,
	     (unsigned long long)maps, (unsigned long long)writes,
	     (unsigned long long)comp.calls, (unsigned long long)comp.freed,
	     (unsigned long long)st.counters[POOL_C_MIGRATED],
	     (unsigned long long)reader.stat_reads,
	     (unsigned long long)st.counters[POOL_C_LOCK_ACQUIRED],
	     (unsigned long long)st.counters[POOL_C_LOCK_CONTENDED]);

	is_u64(mismatch, 0, "no object ever read back wrong or moved while "
	       "mapped");
	is_u64(failed, 0, "no operation failed");
	is_u64(reader.bad_stats, 0, "concurrent stats readers saw sane values");
	ok(st.counters[POOL_C_MIGRATED] > 1000 && comp.calls > 100,
	   "compaction really ran alongside (%llu moves)",
	   (unsigned long long)st.counters[POOL_C_MIGRATED]);
	ok(st.refill && st.refill_pages > 0,
	   "the refill ran alongside (%llu pages faulted in ahead, %llu by "
	   "the writers; reserve %llu bytes)",
	   (unsigned long long)st.refill_pages,
	   (unsigned long long)st.writer_pages,
	   (unsigned long long)st.reserve_bytes);
	is_u64(st.counters[POOL_C_ALLOCS], allocs, "allocs counted");
	is_u64(st.counters[POOL_C_FREES], frees, "frees counted");
	is_u64(st.counters[POOL_C_ALLOCS] - st.counters[POOL_C_FREES], st.objs,
	       "allocs - frees == objs");
	is_u64(st.objs, live, "objs == objects the workers hold");
	is_u64(st.live_bytes, live_bytes, "live_bytes == their sizes");
	ok(st.counters[POOL_C_LOCK_CONTENDED] <=
	   st.counters[POOL_C_LOCK_ACQUIRED], "contended <= acquired");
	ok(pool_is_valid(pool, &why), "pool valid (%s)", why ? why : "ok");

	/* Everything still reads back after a full compaction. */
	{
		bool done = false;
		uint64_t bad = 0, want = 0;

		while (!done)
			pool_compact(pool, 1000, 100, &done);
		for (int i = 0; i < NR_WORKERS; i++)
			for (uint32_t k = 0; k < w[i].n; k++)
				bad += !check(&w[i], &w[i].o[k], k & 1);
		is_u64(bad, 0, "all objects intact after a full compaction");
		pool_get_stats(pool, &st);
		for (uint32_t i = 0; i < st.nr_classes; i++) {
			const struct pool_class_stats *c = &st.classes[i];
			uint64_t rem = c->objs_inuse % c->objs_per_span;

			want += c->objs_inuse / c->objs_per_span *
				c->pages_per_span +
				(rem * c->obj_size + 4095) / 4096;
		}
		is_u64(st.pages, want, "packed: pages = what live objects need");
	}
	for (int i = 0; i < NR_WORKERS; i++) {
		for (uint32_t k = 0; k < w[i].n; k++)
			pool_free(pool, w[i].o[k].h);
		free(w[i].o);
	}
	{
		bool done = false;

		while (!done)
			pool_compact(pool, 1000, 100, &done);
	}
	pool_get_stats(pool, &st);
	is_u64(st.objs + st.pages, 0, "empty at the end");
	pool_destroy(pool);
	return tap_done();
}
