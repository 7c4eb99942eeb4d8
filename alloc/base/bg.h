/* SPDX-License-Identifier: MIT */
/*
 * bg.h - a background thread that sleeps on cond (CLOCK_MONOTONIC) under
 * lock until it is woken or its time comes, and leaves when stop is set:
 * the pool's refill (alloc/pool.c); the store's compaction (compact.c),
 * aging and recompression (recompress.c) and writeback (backing.c). The
 * thread starts with every signal blocked: signals are the threads of
 * whoever uses the store. In alloc/base/, as bug.h: every layer's.
 */
#ifndef PAGEFOLD_BASE_BG_H
#define PAGEFOLD_BASE_BG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct bg_thread {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	_Atomic bool stop;
	bool running;
	bool changed;		/* lock: settings changed since the thread
				   last looked (bg_thread_kick()); it clears
				   it */
};

/* Set up lock and cond and start fn(arg); 0 or -errno (nothing running). */
int bg_thread_start(struct bg_thread *bg, void *(*fn)(void *), void *arg);
/* Sets changed and wakes the thread (its settings moved); nothing if not
 * running. */
void bg_thread_kick(struct bg_thread *bg);
/* Sets stop, wakes the thread and joins it; nothing if not running. */
void bg_thread_stop(struct bg_thread *bg);
/* *ts = ms milliseconds from now, on cond's clock: the deadline for
 * pthread_cond_timedwait(&bg->cond, ...). */
void bg_deadline_in(struct timespec *ts, uint64_t ms);

#endif /* PAGEFOLD_BASE_BG_H */
