// SPDX-License-Identifier: MIT
/*
 * bg.c - background threads (see bg.h).
 *
 * lock ordering: bg->lock is held to sleep on the condition variable and
 * to set stop or changed (its owner may guard more with it: the pool's
 * refill ring); the thread's work runs without it.
 */
#include <signal.h>

#include "bg.h"

int bg_thread_start(struct bg_thread *bg, void *(*fn)(void *), void *arg)
{
	pthread_condattr_t attr;
	sigset_t all, old;
	int err;

	atomic_init(&bg->stop, false);
	bg->changed = false;
	pthread_mutex_init(&bg->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&bg->cond, &attr);
	pthread_condattr_destroy(&attr);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&bg->thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pthread_cond_destroy(&bg->cond);
		pthread_mutex_destroy(&bg->lock);
		return -err;
	}
	bg->running = true;
	return 0;
}

void bg_thread_kick(struct bg_thread *bg)
{
	if (!bg->running)
		return;
	pthread_mutex_lock(&bg->lock);
	bg->changed = true;
	pthread_cond_signal(&bg->cond);
	pthread_mutex_unlock(&bg->lock);
}

void bg_thread_stop(struct bg_thread *bg)
{
	if (!bg->running)
		return;
	pthread_mutex_lock(&bg->lock);
	atomic_store(&bg->stop, true);
	pthread_cond_signal(&bg->cond);
	pthread_mutex_unlock(&bg->lock);
	pthread_join(bg->thread, NULL);
	pthread_cond_destroy(&bg->cond);
	pthread_mutex_destroy(&bg->lock);
	bg->running = false;
}

void bg_deadline_in(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}
