// SPDX-License-Identifier: MIT
/*
 * recv.c - receiving requests from /dev/fuse: spin briefly, then sleep
 * (see recv.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pf.h" /* FUSE_USE_VERSION, fuse_lowlevel.h */
#include "recv.h"
#include "spin.h"

static uint64_t spin_ns;          /* set once, before the workers start */
static atomic_uint spinners;      /* workers spinning now: 0 or 1 */
static struct pf_spin_gov gov;    /* does spinning pay (spin.h) */
static int stop_fd = -1;          /* eventfd: readable once pf_recv_stop() */

int pf_recv_setup(struct fuse_session *se, unsigned int spin_us)
{
	int fd = fuse_session_fd(se);
	int fl;

	spin_ns = 0;
	if (!spin_us)
		return 0;
	if (stop_fd < 0)
		stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_fd < 0)
		return -errno;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	spin_ns = (uint64_t)spin_us * 1000u;
	return 0;
}

void pf_recv_stop(void)
{
	uint64_t one = 1;

	if (stop_fd >= 0 && write(stop_fd, &one, sizeof(one)) < 0) {
		/* Only EAGAIN (the counter is full): it is readable anyway. */
	}
}

void pf_recv_teardown(void)
{
	if (stop_fd >= 0)
		close(stop_fd);
	stop_fd = -1;
}

int pf_recv_init(struct pf_recv *r, struct fuse_session *se)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE,
				  .data.fd = fuse_session_fd(se) };

	r->epfd = -1;
	r->spinner = false;
	r->spin_end = 0;
	if (!spin_ns)
		return 0;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	/* Exclusive: a request wakes one sleeper. The stop event is not:
	 * it wakes them all. */
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fuse_session_fd(se), &ev) < 0 ||
	    epoll_ctl(r->epfd, EPOLL_CTL_ADD, stop_fd,
		      &(struct epoll_event){ .events = EPOLLIN,
					     .data.fd = stop_fd }) < 0) {
		int err = -errno;

		close(r->epfd);
		r->epfd = -1;
		return err;
	}
	return 0;
}

void pf_recv_fini(struct pf_recv *r)
{
	if (r->spinner)
		atomic_fetch_sub(&spinners, 1);
	r->spinner = false;
	if (r->epfd >= 0)
		close(r->epfd);
	r->epfd = -1;
}

/* Sleep until the device has something (or an error) for us, or
 * pf_recv_stop(). Not a cancellation point: a worker that polls leaves
 * through its return path, never by pthread_cancel() (whose unwinding, for
 * one, leaves the frames' stack redzones poisoned under AddressSanitizer). */
static bool sleep_on_device(struct pf_recv *r)
{
	struct epoll_event ev[2];
	int n = epoll_wait(r->epfd, ev, 2, -1);

	for (int i = 0; i < n; i++)
		if (ev[i].data.fd == stop_fd)
			return false;
	return true;
}

static void spin_release(struct pf_recv *r)
{
	if (r->spinner) {
		r->spinner = false;
		atomic_fetch_sub_explicit(&spinners, 1, memory_order_release);
	}
}

/* The polling path. Not inlined into pf_recv_buf(), whose frame must hold
 * no stack variables: in the blocking path a worker can be cancelled, and
 * unwinding by cancellation leaves a frame's redzones poisoned under
 * AddressSanitizer. */
static __attribute__((noinline)) int recv_poll(struct pf_recv *r,
						struct fuse_session *se,
						struct fuse_buf *buf)
{
	bool served = true; /* the caller has just served a request */
	int res;

	for (;;) {
		res = fuse_session_receive_buf(se, buf);
		if (res != -EAGAIN) {
			if (r->spinner)
				pf_spin_gov_end(&gov, true);
			spin_release(r);
			return res;
		}
		/* Nothing queued. Spin if we just served one, nobody else
		 * spins and spinning has been paying; else sleep. */
		if (served && !r->spinner && pf_spin_gov_try(&gov)) {
			if (atomic_fetch_add_explicit(&spinners, 1,
						      memory_order_acquire) == 0) {
				r->spinner = true;
				r->spin_end = pf_now_ns() + spin_ns;
			} else {
				atomic_fetch_sub_explicit(&spinners, 1,
							  memory_order_relaxed);
			}
		}
		served = false;
		if (r->spinner) {
			if (pf_now_ns() < r->spin_end) {
				pf_cpu_relax();
				continue;
			}
			pf_spin_gov_end(&gov, false);
		}
		spin_release(r);
		if (!sleep_on_device(r))
			return 0; /* stopping */
	}
}

int pf_recv_buf(struct pf_recv *r, struct fuse_session *se,
		struct fuse_buf *buf)
{
	int res;

	if (r->epfd >= 0)
		return recv_poll(r, se, buf);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	res = fuse_session_receive_buf(se, buf);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	return res;
}
