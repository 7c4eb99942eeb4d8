/* SPDX-License-Identifier: MIT */
/*
 * lock.h - a 4-byte mutex for the store's many small locks (one per cluster,
 * one per fold shard). pthread_mutex_t is 40 bytes; a cluster lock is paid
 * once per 512 stored pages, so it must be small.
 *
 * The classic three-state futex mutex: 0 free, 1 held, 2 held with
 * (possible) waiters. Uncontended lock and unlock are one atomic each. A
 * contended locker spins briefly (on the data path a critical section is a
 * slot update or a copy out of the pool: one object, well under a
 * microsecond, or a group's frame, a few; the background passes hold a
 * cluster lock for one page's or one group's decode, up to tens of
 * microseconds), then sleeps in the
 * kernel, so a preempted holder never makes the others burn a core.
 */
#ifndef PAGEFOLD_STORE_LOCK_H
#define PAGEFOLD_STORE_LOCK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

struct futex_lock {
	_Atomic uint32_t v;	/* 0 free, 1 held, 2 held + waiters */
};

static inline void futex_lock_init(struct futex_lock *l)
{
	atomic_init(&l->v, 0);
}

static inline void futex_call(_Atomic uint32_t *addr, int op, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)addr, op | FUTEX_PRIVATE_FLAG, val,
		NULL, NULL, 0);
}

static inline void futex_lock_slow(struct futex_lock *l)
{
	uint32_t c;
	int spin;

	for (spin = 0; spin < 100; spin++) {
		c = 0;
		if (atomic_compare_exchange_weak_explicit(&l->v, &c, 1,
				memory_order_acquire, memory_order_relaxed))
			return;
		if (c == 2)
			break;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	c = atomic_exchange_explicit(&l->v, 2, memory_order_acquire);
	while (c != 0) {
		futex_call(&l->v, FUTEX_WAIT, 2);
		c = atomic_exchange_explicit(&l->v, 2, memory_order_acquire);
	}
}

static inline void futex_lock(struct futex_lock *l)
{
	uint32_t c = 0;

	if (atomic_compare_exchange_strong_explicit(&l->v, &c, 1,
			memory_order_acquire, memory_order_relaxed))
		return;
	futex_lock_slow(l);
}

static inline void futex_unlock(struct futex_lock *l)
{
	if (atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)
		futex_call(&l->v, FUTEX_WAKE, 1);
}

#endif /* PAGEFOLD_STORE_LOCK_H */
