/* SPDX-License-Identifier: MIT */
/*
 * spin.h - what a thread that polls for work instead of sleeping needs:
 * a cheap clock and a pause between polls (recv.c, fanout.c).
 */
#ifndef PAGEFOLD_FS_SPIN_H
#define PAGEFOLD_FS_SPIN_H

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

#endif
