/* SPDX-License-Identifier: MIT */
/*
 * fanout.h - helper threads that share the pages of one large request.
 *
 * The kernel hands a stream of synchronous direct writes to one worker at a
 * time (it serialises them per file), so a 1 MiB write would compress its
 * 256 pages on one core. A request splits its pages into chunks and posts
 * them as a job; the requesting thread and idle helpers claim chunks one at
 * a time until none is left, then the requester waits for the helpers that
 * are still running one. Claiming chunks rather than being handed a fixed
 * share means a helper that is late to be scheduled costs nothing: the
 * requester simply runs more of the chunks itself.
 *
 * Swap safety: the helpers, their stacks and the pool are created at mount,
 * under mlockall(), like the workers; posting a job allocates nothing (the
 * job lives on the requester's stack).
 */
#ifndef PAGEFOLD_FS_FANOUT_H
#define PAGEFOLD_FS_FANOUT_H

#include <stdatomic.h>
#include <stdbool.h>

struct pf_fanout;
struct store;

/*
 * One request's work. The caller sets run and nchunks; run(job, i) is called
 * exactly once for each i in [0, nchunks), from any thread, concurrently.
 * Embed it in a struct of the request's own and use container_of-style
 * casts (it is the first member).
 */
struct pf_fanout_job {
	void (*run)(struct pf_fanout_job *job, unsigned int chunk);
	unsigned int nchunks;

	/* private */
	atomic_uint next;              /* next chunk to claim */
	unsigned int refs;             /* pool lock: helpers running chunks */
	bool queued;                   /* pool lock */
	struct pf_fanout_job *qnext;   /* pool lock */
};

/*
 * nhelpers threads serving st, started now, each prepared (pf_thread_prepare()) before
 * this returns (0: a pool that runs everything in the caller). NULL on
 * allocation failure or when a helper could not prepare; *err then holds
 * the -errno.
 */
struct pf_fanout *pf_fanout_create(struct store *st, unsigned int nhelpers,
				   int *err);
/* Stops and joins the helpers; no job may be running. NULL is ok. */
void pf_fanout_destroy(struct pf_fanout *fo);
/* After running a job, a helper polls for the next one this long before it
 * sleeps (0, the default: it sleeps at once). Call before the first job. */
void pf_fanout_set_spin(struct pf_fanout *fo, unsigned int spin_us);

/*
 * Run every chunk of job, in this thread and the helpers, and return when
 * all are done. fo may be NULL (everything runs here).
 */
void pf_fanout_run(struct pf_fanout *fo, struct pf_fanout_job *job);

#endif /* PAGEFOLD_FS_FANOUT_H */
