// SPDX-License-Identifier: MIT
/*
 * fanout.c - helper threads that share the pages of one large request
 * (see fanout.h).
 *
 * lock ordering: fo->lock is taken alone by the helpers; a requester may
 * hold an inode's io_lock (file.c) when it takes fo->lock, never the other
 * way round. Chunks run with fo->lock not held; whatever locks they take
 * (the store's) are taken by the helper as they would be by the requester,
 * which holds the io_lock on the helpers' behalf until every chunk is done.
 *
 * Job lifetime: a job is on the requester's stack. Helpers find jobs only
 * through the queue and count themselves in job->refs under fo->lock before
 * claiming a chunk; the requester unlinks its job and waits for refs == 0
 * before returning, so no helper touches a job after pf_fanout_run().
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "fanout.h"
#include "spin.h"
#include "thread.h"

struct pf_fanout {
	pthread_mutex_t lock;
	pthread_cond_t work_cv;      /* a job was queued, or stop */
	pthread_cond_t done_cv;      /* some job's refs reached 0 */
	struct pf_fanout_job *head;  /* lock: queued jobs, oldest first */
	struct pf_fanout_job *tail;
	bool stop;                   /* lock */
	atomic_uint nqueued;         /* jobs on the queue; written under lock */
	uint64_t spin_ns;            /* set before the first job */
	struct pf_spin_gov gov;      /* does polling pay (spin.h) */
	unsigned int nhelpers;       /* threads started */
	struct pf_thread_start start; /* the helpers report prepared */
	pthread_t *tids;
};

static void run_chunks(struct pf_fanout_job *job)
{
	unsigned int c;

	while ((c = atomic_fetch_add_explicit(&job->next, 1,
					      memory_order_relaxed)) <
	       job->nchunks)
		job->run(job, c);
}

static bool job_exhausted(struct pf_fanout_job *job)
{
	return atomic_load_explicit(&job->next, memory_order_relaxed) >=
	       job->nchunks;
}

/* fo->lock held. */
static void job_unlink(struct pf_fanout *fo, struct pf_fanout_job *job)
{
	struct pf_fanout_job **pp = &fo->head, *prev = NULL;

	if (!job->queued)
		return;
	while (*pp != job) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	*pp = job->qnext;
	if (fo->tail == job)
		fo->tail = prev;
	atomic_fetch_sub_explicit(&fo->nqueued, 1, memory_order_relaxed);
	job->queued = false;
	job->qnext = NULL;
}

/* fo->lock held: the oldest job with a chunk left, dropping spent ones. */
static struct pf_fanout_job *job_pick(struct pf_fanout *fo)
{
	while (fo->head) {
		struct pf_fanout_job *job = fo->head;

		if (!job_exhausted(job))
			return job;
		job_unlink(fo, job);
	}
	return NULL;
}

/* Without fo->lock: poll for a queued job for up to spin_ns. Large
 * requests come back to back (a dd, a swap-in of a cluster), and a helper
 * still running when the next is posted needs no wakeup. */
static void spin_for_job(struct pf_fanout *fo)
{
	uint64_t end;

	if (!pf_spin_gov_try(&fo->gov))
		return;
	end = pf_now_ns() + fo->spin_ns;
	while (!atomic_load_explicit(&fo->nqueued, memory_order_relaxed)) {
		if (pf_now_ns() >= end) {
			pf_spin_gov_end(&fo->gov, false);
			return;
		}
		pf_cpu_relax();
	}
	pf_spin_gov_end(&fo->gov, true);
}

static void *helper_main(void *arg)
{
	struct pf_fanout *fo = arg;
	struct pf_fanout_job *job = NULL;
	bool worked = false; /* ran a chunk since it last slept or spun */

	(void)pf_thread_prepare_report(&fo->start);
	pthread_mutex_lock(&fo->lock);
	for (;;) {
		while (!fo->stop && !(job = job_pick(fo))) {
			if (worked && fo->spin_ns) {
				worked = false;
				pthread_mutex_unlock(&fo->lock);
				spin_for_job(fo);
				pthread_mutex_lock(&fo->lock);
				continue;
			}
			worked = false;
			pthread_cond_wait(&fo->work_cv, &fo->lock);
		}
		if (fo->stop)
			break;
		worked = true;
		job->refs++;
		pthread_mutex_unlock(&fo->lock);
		run_chunks(job);
		pthread_mutex_lock(&fo->lock);
		job_unlink(fo, job); /* all claimed: nothing left for others */
		if (--job->refs == 0)
			pthread_cond_broadcast(&fo->done_cv);
	}
	pthread_mutex_unlock(&fo->lock);
	return NULL;
}

struct pf_fanout *pf_fanout_create(struct store *st, unsigned int nhelpers,
				   int *err)
{
	struct pf_fanout *fo = calloc(1, sizeof(*fo));
	int ret;

	*err = -ENOMEM;
	if (!fo)
		return NULL;
	pthread_mutex_init(&fo->lock, NULL);
	pthread_cond_init(&fo->work_cv, NULL);
	pthread_cond_init(&fo->done_cv, NULL);
	fo->start = (struct pf_thread_start)PF_THREAD_START_INIT(st);
	if (nhelpers) {
		fo->tids = calloc(nhelpers, sizeof(*fo->tids));
		if (!fo->tids)
			goto destroy;
	}
	for (unsigned int i = 0; i < nhelpers; i++) {
		ret = pthread_create(&fo->tids[i], NULL, helper_main, fo);
		if (ret) {
			*err = -ret;
			goto destroy;
		}
		fo->nhelpers++;
	}
	/* Mounted only with every helper ready to serve without allocating. */
	ret = pf_thread_start_wait(&fo->start, fo->nhelpers);
	if (ret) {
		*err = ret;
		goto destroy;
	}
	*err = 0;
	return fo;

destroy:
	pf_fanout_destroy(fo);
	return NULL;
}

void pf_fanout_destroy(struct pf_fanout *fo)
{
	if (!fo)
		return;
	pthread_mutex_lock(&fo->lock);
	fo->stop = true;
	pthread_cond_broadcast(&fo->work_cv);
	pthread_mutex_unlock(&fo->lock);
	for (unsigned int i = 0; i < fo->nhelpers; i++)
		pthread_join(fo->tids[i], NULL);
	pthread_cond_destroy(&fo->start.cv);
	pthread_mutex_destroy(&fo->start.lock);
	pthread_cond_destroy(&fo->done_cv);
	pthread_cond_destroy(&fo->work_cv);
	pthread_mutex_destroy(&fo->lock);
	free(fo->tids);
	free(fo);
}

void pf_fanout_set_spin(struct pf_fanout *fo, unsigned int spin_us)
{
	if (fo)
		fo->spin_ns = (uint64_t)spin_us * 1000u;
}

void pf_fanout_run(struct pf_fanout *fo, struct pf_fanout_job *job)
{
	unsigned int wake;

	atomic_store_explicit(&job->next, 0, memory_order_relaxed);
	job->refs = 0;
	job->queued = false;
	job->qnext = NULL;
	if (!fo || !fo->nhelpers || job->nchunks < 2) {
		run_chunks(job);
		return;
	}

	wake = job->nchunks - 1;
	if (wake > fo->nhelpers)
		wake = fo->nhelpers;
	pthread_mutex_lock(&fo->lock);
	if (fo->tail)
		fo->tail->qnext = job;
	else
		fo->head = job;
	fo->tail = job;
	atomic_fetch_add_explicit(&fo->nqueued, 1, memory_order_relaxed);
	job->queued = true;
	for (unsigned int i = 0; i < wake; i++)
		pthread_cond_signal(&fo->work_cv);
	pthread_mutex_unlock(&fo->lock);

	run_chunks(job);

	pthread_mutex_lock(&fo->lock);
	job_unlink(fo, job);
	while (job->refs)
		pthread_cond_wait(&fo->done_cv, &fo->lock);
	pthread_mutex_unlock(&fo->lock);
}
