/* SPDX-License-Identifier: MIT */
/*
 * recv.h - receiving requests from /dev/fuse: spin briefly, then sleep.
 *
 * A FUSE round trip for one 4 KiB page is mostly two wakeups: the kernel
 * waking a worker blocked in read(2) on /dev/fuse, and the reply waking the
 * requester. On a virtual machine a wakeup of an idle CPU is an
 * inter-processor interrupt and an exit to the hypervisor, several times
 * the cost of decompressing the page. A swap-in (a page fault, a loop
 * device request, a FUSE read) pays it on every page.
 *
 * So, once a worker has served a request, it polls the device without
 * sleeping for up to spin_us microseconds before it goes to sleep: under a
 * stream of small requests the next one is picked up by a running thread,
 * and no wakeup is needed. At most one worker spins at a time, and only
 * after it has just served a request, so an idle daemon burns no CPU: it
 * sleeps as it would with a blocking read. spin_us = 0 turns spinning off.
 *
 * How: the device is switched to O_NONBLOCK at mount; a worker that finds
 * nothing either spins (re-reading) or sleeps in epoll_wait() on a private
 * epoll instance that holds the device with EPOLLEXCLUSIVE, so that one
 * request wakes one sleeper, not all of them.
 */
#ifndef PAGEFOLD_FS_RECV_H
#define PAGEFOLD_FS_RECV_H

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;
struct fuse_buf;

#define PF_SPIN_US_DEFAULT 50u
#define PF_SPIN_US_MAX 10000u

/* Per worker. */
struct pf_recv {
	int epfd;           /* -1 when spinning is off */
	bool spinner;       /* this worker holds the one spinning slot */
	uint64_t spin_end;  /* CLOCK_MONOTONIC ns: stop spinning then */
};

/* Once, after fuse_session_mount() and before any worker starts: set the
 * device non-blocking when spin_us > 0. Returns 0 or -errno. */
int pf_recv_setup(struct fuse_session *se, unsigned int spin_us);

/* Wake every worker sleeping in pf_recv_buf() (which then returns 0) and
 * make later calls return 0 instead of sleeping: call after
 * fuse_session_exit(). Workers blocked in a plain read (spin_us = 0) are not
 * reached: cancel those. */
void pf_recv_stop(void);
/* After the workers are gone. */
void pf_recv_teardown(void);

/* Per worker, before its first pf_recv_buf(). Returns 0 or -errno. */
int pf_recv_init(struct pf_recv *r, struct fuse_session *se);
void pf_recv_fini(struct pf_recv *r);

/*
 * fuse_session_receive_buf(), spinning or sleeping while nothing is queued.
 * Returns what it returns: > 0 a request, 0 the session ended, < 0 -errno
 * (-EINTR and -EAGAIN: call again). With spinning off, it blocks in read(2)
 * with cancellation enabled, as libfuse's own loop does; with spinning on it
 * is never a cancellation point (see pf_recv_stop()).
 */
int pf_recv_buf(struct pf_recv *r, struct fuse_session *se,
		struct fuse_buf *buf);

#endif
