/* SPDX-License-Identifier: MIT */
/*
 * thread.h - what every thread that serves requests does before its first
 * one (the workers of main.c, the helpers of fanout.c).
 */
#ifndef PAGEFOLD_FS_THREAD_H
#define PAGEFOLD_FS_THREAD_H

/* Stack the serving threads fault in at start: deeper than any request
 * goes (the store's data path and libfuse's dispatch). */
#define PF_STACK_PREFAULT (64 * 1024)

/*
 * Fault in PF_STACK_PREFAULT bytes of the calling thread's stack and
 * allocate its store codec state (store_thread_prepare()), so that a
 * request, a swap-out or a swap-in of a cold page, allocates nothing for
 * the thread: under mlockall() all of it is then locked. 0 or -errno.
 */
int pf_thread_prepare(void);

#endif /* PAGEFOLD_FS_THREAD_H */
