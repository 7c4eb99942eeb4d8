// SPDX-License-Identifier: MIT
/*
 * compact.c - pool compaction for the store: the compact and shrink
 * triggers, and a background thread that compacts when fragmentation passes
 * defrag_ratio.
 *
 * lock ordering: st->compactor.lock is only held to sleep on the condition
 * variable; compaction itself runs with no store lock held and takes only
 * the pool's locks (a size class's shard locks), a bounded number of moves
 * at a time (pool_compact()).
 *
 * Empty clusters need no sweep here: the store frees a cluster the moment
 * its last slot is released.
 */
#include <sched.h>
#include <time.h>

#include "store-int.h"

#define STEP_BUDGET	256	/* objects moved per pool_compact() call */
#define BG_PERIOD_MS	200	/* how often the thread looks at frag_pct */
#define BG_STEP_PAUSE_US 200	/* pause between background steps */

/* Compact until the pool finds nothing more under usage_pct; returns the
 * pool pages freed. */
uint64_t compact_run(struct store *st, unsigned int usage_pct)
{
	uint64_t freed = 0;
	bool done = false;

	while (!done) {
		size_t n = pool_compact(st->pool, STEP_BUDGET, usage_pct, &done);

		freed += n;
		ctr_add(st, SC_COMPACTED, (int64_t)n);
	}
	return freed;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void *compactor_main(void *arg)
{
	struct store *st = arg;
	struct bg_thread *bg = &st->compactor;

	pthread_mutex_lock(&bg->lock);
	while (!atomic_load(&bg->stop)) {
		struct timespec ts;
		unsigned int ratio;

		bg_deadline_in(&ts, BG_PERIOD_MS);
		pthread_cond_timedwait(&bg->cond, &bg->lock, &ts);
		if (atomic_load(&bg->stop))
			break;
		pthread_mutex_unlock(&bg->lock);

		/* Budgeted steps with pauses, so foreground writes and reads
		 * get the pool's locks and the CPU between them. */
		ratio = atomic_load(&st->defrag_ratio);
		while (!atomic_load(&bg->stop) &&
		       pool_frag_pct(st->pool) > ratio) {
			bool done = false;
			size_t n;

			n = pool_compact(st->pool, STEP_BUDGET, 100 - ratio,
					 &done);
			ctr_add(st, SC_COMPACTED, (int64_t)n);
			if (done)
				break;
			sleep_us(BG_STEP_PAUSE_US);
		}
		pthread_mutex_lock(&bg->lock);
	}
	pthread_mutex_unlock(&bg->lock);
	return NULL;
}

int compactor_start(struct store *st)
{
	return bg_thread_start(&st->compactor, compactor_main, st);
}

void compactor_stop(struct store *st)
{
	bg_thread_stop(&st->compactor);
}
