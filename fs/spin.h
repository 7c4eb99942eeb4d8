/* SPDX-License-Identifier: MIT */
/*
 * spin.h - what a thread that polls for work instead of sleeping needs:
 * a cheap clock and a pause between polls (recv.c, fanout.c).
 */
#ifndef PAGEFOLD_FS_SPIN_H
#define PAGEFOLD_FS_SPIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in ns (vDSO: no system call). */
static inline uint64_t pf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Tell the CPU (and a hypervisor watching for PAUSE loops) we are
 * spinning. */
static inline void pf_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * Whether polling pays. Polling for the next request is a win only when
 * requests come closer together than the polling window; under a sparse
 * stream every poll times out and burns its whole window (at 5000 4 KiB
 * reads a second a 50 us window cost a quarter of a CPU). So each timeout
 * makes the next 2, 4, ... 256 chances to poll go by (the thread sleeps at
 * once), and a poll that catches a request makes every later one poll
 * again. Relaxed and racy on purpose: it is a heuristic, shared by the
 * threads that poll for the same kind of work.
 */
struct pf_spin_gov {
	atomic_uint skip;    /* chances to let go by */
	atomic_uint misses;  /* timeouts in a row */
};

#define PF_SPIN_GOV_MAX_SHIFT 8

/* May the caller poll now? */
static inline bool pf_spin_gov_try(struct pf_spin_gov *g)
{
	unsigned int s = atomic_load_explicit(&g->skip, memory_order_relaxed);

	if (!s)
		return true;
	atomic_store_explicit(&g->skip, s - 1, memory_order_relaxed);
	return false;
}

/* How a poll ended: it caught work (hit) or timed out. */
static inline void pf_spin_gov_end(struct pf_spin_gov *g, bool hit)
{
	unsigned int m;

	if (hit) {
		atomic_store_explicit(&g->misses, 0, memory_order_relaxed);
		atomic_store_explicit(&g->skip, 0, memory_order_relaxed);
		return;
	}
	m = atomic_load_explicit(&g->misses, memory_order_relaxed) + 1;
	if (m > PF_SPIN_GOV_MAX_SHIFT)
		m = PF_SPIN_GOV_MAX_SHIFT;
	atomic_store_explicit(&g->misses, m, memory_order_relaxed);
	atomic_store_explicit(&g->skip, 1u << m, memory_order_relaxed);
}

#endif
