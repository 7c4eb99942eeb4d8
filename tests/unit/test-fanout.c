// SPDX-License-Identifier: MIT
/*
 * test-fanout - fs/fanout.c: the helper threads that share the chunks of
 * one request.
 *
 * What fanout.h promises and this checks: run(job, i) is called exactly
 * once for each chunk i in [0, nchunks), with or without helpers (fo NULL,
 * 0 helpers, 1..8 helpers, spinning helpers); what the chunks wrote is
 * there when pf_fanout_run() returns (results, and the first error a
 * chunk reported, the way fs/file.c collects one); the helpers do run
 * chunks, at the same time as the requester (a job of n + 1 chunks that
 * each wait for all the others completes only if the requester and all n
 * helpers run one at once); several requesters may post jobs to one pool
 * at once; pf_fanout_create() reports success in *err, and
 * pf_fanout_destroy() takes NULL.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fanout.h"
#include "tap.h"
#include "testdata.h"

#define MAX_CHUNKS 4096

/* A job that computes td_mix(seed + i) into out[i] and counts its calls. */
struct count_job {
	struct pf_fanout_job job; /* first */
	uint64_t seed;
	atomic_uint calls[MAX_CHUNKS];
	uint64_t out[MAX_CHUNKS];
	unsigned int fail_at;     /* chunk that reports -EIO; >= nchunks: none */
	atomic_int err;           /* first error, 0 if none */
	pthread_t requester;
	atomic_uint elsewhere;    /* chunks run by another thread */
};

static void count_chunk(struct pf_fanout_job *job, unsigned int c)
{
	struct count_job *cj = (struct count_job *)job;
	int none = 0;

	atomic_fetch_add(&cj->calls[c], 1);
	cj->out[c] = td_mix(cj->seed + c);
	if (!pthread_equal(pthread_self(), cj->requester))
		atomic_fetch_add(&cj->elsewhere, 1);
	if (c == cj->fail_at)
		atomic_compare_exchange_strong(&cj->err, &none, -EIO);
}

/* Run a count_job of n chunks on fo; true if every chunk ran exactly once
 * with the right result and the error is the expected one. */
static bool run_count(struct pf_fanout *fo, struct count_job *cj,
		      unsigned int n, uint64_t seed, unsigned int fail_at,
		      const char **why)
{
	memset(cj, 0, sizeof(*cj));
	cj->job.run = count_chunk;
	cj->job.nchunks = n;
	cj->seed = seed;
	cj->fail_at = fail_at;
	cj->requester = pthread_self();
	atomic_init(&cj->err, 0);
	pf_fanout_run(fo, &cj->job);

	for (unsigned int i = 0; i < MAX_CHUNKS; i++) {
		unsigned int want = i < n ? 1 : 0;

		if (atomic_load(&cj->calls[i]) != want) {
			*why = "a chunk ran other than exactly once";
			return false;
		}
		if (i < n && cj->out[i] != td_mix(seed + i)) {
			*why = "a chunk's result is wrong";
			return false;
		}
	}
	if (atomic_load(&cj->err) != (fail_at < n ? -EIO : 0)) {
		*why = "the chunk's error is not the job's";
		return false;
	}
	return true;
}

static struct count_job cjob;

static void test_no_helpers(void)
{
	static const unsigned int sizes[] = { 0, 1, 2, 3, 64, MAX_CHUNKS };
	struct pf_fanout *fo;
	const char *why = "";
	int err = 1;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		ok(run_count(NULL, &cjob, sizes[k], k, MAX_CHUNKS, &why),
		   "fo NULL, %u chunks: each once, results right (%s)",
		   sizes[k], why);
		is_u64(atomic_load(&cjob.elsewhere), 0,
		       "  ... all in the requester");
	}

	fo = pf_fanout_create(NULL, 0, &err);
	ok(fo != NULL && err == 0, "0 helpers: created, *err 0 (%d)", err);
	if (!fo)
		return;
	ok(run_count(fo, &cjob, 100, 7, 50, &why),
	   "0 helpers, 100 chunks: each once, the error reported (%s)", why);
	is_u64(atomic_load(&cjob.elsewhere), 0, "  ... all in the requester");
	pf_fanout_destroy(fo);
}

static void test_helpers(unsigned int nhelpers, unsigned int spin_us)
{
	static const unsigned int sizes[] = { 0, 1, 2, 5, 17, 256, MAX_CHUNKS };
	unsigned int bad = 0, errs_bad = 0;
	struct pf_fanout *fo;
	const char *why = "";
	int err = 1;

	fo = pf_fanout_create(NULL, nhelpers, &err);
	ok(fo != NULL && err == 0, "%u helpers: created, *err 0 (%d)",
	   nhelpers, err);
	if (!fo)
		return;
	pf_fanout_set_spin(fo, spin_us);

	/* Back to back, as a dd or a swap-in sends them. */
	for (unsigned int r = 0; r < 200; r++) {
		unsigned int n = sizes[r % (sizeof(sizes) / sizeof(sizes[0]))];

		if (!run_count(fo, &cjob, n, r * 7919u, MAX_CHUNKS, &why)) {
			if (!bad++)
				diag("round %u, %u chunks: %s", r, n, why);
		}
		/* With a failing chunk in the middle. */
		if (n && !run_count(fo, &cjob, n, r, n / 2, &why)) {
			if (!errs_bad++)
				diag("round %u, %u chunks, error: %s", r, n, why);
		}
	}
	is_u64(bad, 0, "200 jobs: every chunk once, results right");
	is_u64(errs_bad, 0, "200 jobs with a failing chunk: error reported");
	pf_fanout_destroy(fo);
}

/*
 * Concurrency: nhelpers + 1 chunks, each of which waits (up to 10 s) until
 * all of them have started. Only if the requester and every helper run a
 * chunk at the same time does the job finish without a timeout.
 */
struct meet_job {
	struct pf_fanout_job job; /* first */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	unsigned int started;     /* lock */
	unsigned int timeouts;    /* lock */
};

static void meet_chunk(struct pf_fanout_job *job, unsigned int c)
{
	struct meet_job *mj = (struct meet_job *)job;
	struct timespec until;

	(void)c;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&mj->lock);
	if (++mj->started == mj->job.nchunks)
		pthread_cond_broadcast(&mj->cv);
	while (mj->started < mj->job.nchunks)
		if (pthread_cond_timedwait(&mj->cv, &mj->lock, &until) ==
		    ETIMEDOUT) {
			mj->timeouts++;
			break;
		}
	pthread_mutex_unlock(&mj->lock);
}

static void test_concurrent(unsigned int nhelpers)
{
	struct meet_job mj = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cv = PTHREAD_COND_INITIALIZER,
	};
	struct pf_fanout *fo;
	int err;

	fo = pf_fanout_create(NULL, nhelpers, &err);
	if (!ok(fo != NULL, "%u helpers: created", nhelpers))
		return;
	for (unsigned int r = 0; r < 3; r++) {
		mj.job.run = meet_chunk;
		mj.job.nchunks = nhelpers + 1;
		mj.started = 0;
		mj.timeouts = 0;
		pf_fanout_run(fo, &mj.job);
		ok(mj.started == nhelpers + 1 && mj.timeouts == 0,
		   "%u helpers, round %u: the requester and every helper ran a "
		   "chunk at once (%u started, %u timed out)", nhelpers, r,
		   mj.started, mj.timeouts);
	}
	pf_fanout_destroy(fo);
}

/* Several requesters share one pool, as the FUSE workers do. */
#define NREQ 4

struct requester {
	pthread_t tid;
	struct pf_fanout *fo;
	unsigned int id;
	unsigned int bad;
	struct count_job cj;
};

static void *requester_main(void *arg)
{
	struct requester *rq = arg;
	const char *why = "";

	for (unsigned int r = 0; r < 300; r++) {
		unsigned int n = 1 + (unsigned int)(td_mix(rq->id * 1000u + r) %
						    512);
		unsigned int fail = r % 3 ? MAX_CHUNKS : n - 1;

		if (!run_count(rq->fo, &rq->cj, n, rq->id * 100000u + r, fail,
			       &why) && !rq->bad++)
			printf("# requester %u round %u: %s\n", rq->id, r, why);
	}
	return NULL;
}

static void test_requesters(unsigned int nhelpers, unsigned int spin_us)
{
	static struct requester rq[NREQ];
	struct pf_fanout *fo;
	uint64_t bad = 0;
	int err;

	fo = pf_fanout_create(NULL, nhelpers, &err);
	if (!ok(fo != NULL, "%u helpers: created", nhelpers))
		return;
	pf_fanout_set_spin(fo, spin_us);
	for (unsigned int i = 0; i < NREQ; i++) {
		rq[i].fo = fo;
		rq[i].id = i;
		rq[i].bad = 0;
		pthread_create(&rq[i].tid, NULL, requester_main, &rq[i]);
	}
	for (unsigned int i = 0; i < NREQ; i++) {
		pthread_join(rq[i].tid, NULL);
		bad += rq[i].bad;
	}
	is_u64(bad, 0, "4 requesters x 300 jobs on one pool: every chunk "
	       "once, results and errors right");
	pf_fanout_destroy(fo);
}

int main(void)
{
	test_no_helpers();
	for (unsigned int n = 1; n <= 8; n *= 2)
		test_helpers(n, 0);
	test_helpers(3, 50);
	for (unsigned int n = 1; n <= 4; n++)
		test_concurrent(n);
	test_requesters(3, 0);
	test_requesters(2, 20);
	pf_fanout_destroy(NULL);
	ok(1, "pf_fanout_destroy(NULL) returns");
	return tap_done();
}
