// SPDX-License-Identifier: MIT
/*
 * thread.c - preparing a serving thread (thread.h).
 */
#include <stddef.h>

#include "store.h"
#include "thread.h"

/* Not inlined: the array must be a frame of its own, below the caller's. */
static __attribute__((noinline)) void prefault_stack(void)
{
	volatile char stack[PF_STACK_PREFAULT];

	for (size_t i = 0; i < sizeof(stack); i += 1024)
		stack[i] = 0;
}

int pf_thread_prepare(struct store *st)
{
	prefault_stack();
	return store_thread_prepare(st);
}

int pf_thread_prepare_report(struct pf_thread_start *ts)
{
	int err = pf_thread_prepare(ts->st);

	pthread_mutex_lock(&ts->lock);
	if (err && !ts->err)
		ts->err = err;
	ts->nprepared++;
	pthread_cond_broadcast(&ts->cv);
	pthread_mutex_unlock(&ts->lock);
	return err;
}

int pf_thread_start_wait(struct pf_thread_start *ts, unsigned int n)
{
	int err;

	pthread_mutex_lock(&ts->lock);
	while (ts->nprepared < n)
		pthread_cond_wait(&ts->cv, &ts->lock);
	err = ts->err;
	pthread_mutex_unlock(&ts->lock);
	return err;
}
