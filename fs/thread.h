/* SPDX-License-Identifier: MIT */
/*
 * thread.h - what every thread that serves requests does before its first
 * one (the workers of main.c, the helpers of fanout.c).
 */
#ifndef PAGEFOLD_FS_THREAD_H
#define PAGEFOLD_FS_THREAD_H

#include <pthread.h>

/* Stack the serving threads fault in at start: deeper than any request
 * goes (the store's data path and libfuse's dispatch). */
#define PF_STACK_PREFAULT (64 * 1024)

/*
 * Fault in PF_STACK_PREFAULT bytes of the calling thread's stack and
 * allocate its codec state for st (store_thread_prepare()), so that a
 * request, a swap-out or a swap-in of a cold page, allocates nothing for
 * the thread: under mlockall() all of it is then locked. 0 or -errno.
 */
struct store;
int pf_thread_prepare(struct store *st);

/*
 * A starter that serves only once all the threads it started are prepared:
 * each new thread calls pf_thread_prepare_report(), the starter
 * pf_thread_start_wait() for as many as it started.
 */
struct pf_thread_start {
	pthread_mutex_t lock;
	pthread_cond_t cv;           /* a thread reported */
	unsigned int nprepared;      /* lock: threads that reported */
	int err;                     /* lock: the first error reported, or 0 */
	struct store *st;            /* the store the threads serve */
};

#define PF_THREAD_START_INIT(st_) \
	{ PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, (st_) }

/* In a new thread: pf_thread_prepare(ts->st), reported to ts; its result. */
int pf_thread_prepare_report(struct pf_thread_start *ts);
/* In the starter: wait for n reports; the first error, or 0. */
int pf_thread_start_wait(struct pf_thread_start *ts, unsigned int n);

#endif /* PAGEFOLD_FS_THREAD_H */
