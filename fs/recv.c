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
#include <unistd.h>

#include "pf.h" /* FUSE_USE_VERSION, fuse_lowlevel.h */
#include "recv.h"
#include "spin.h"

static uint64_t spin_ns;          /* set once, before the workers start */
static atomic_uint spinners;      /* workers spinning now: 0 or 1 */

int pf_recv_setup(struct fuse_session *se, unsigned int spin_us)
{
	int fd = fuse_session_fd(se);
	int fl;

	spin_ns = (uint64_t)spin_us * 1000u;
	if (!spin_us)
		return 0;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int pf_recv_init(struct pf_recv *r, struct fuse_session *se)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };

	r->epfd = -1;
	r->spinner = false;
	r->spin_end = 0;
	if (!spin_ns)
		return 0;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fuse_session_fd(se), &ev) < 0) {
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

/* Sleep until the device has something (or an error) for us. */
static void sleep_on_device(struct pf_recv *r)
{
	struct epoll_event ev;

	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	(void)epoll_wait(r->epfd, &ev, 1, -1);
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
}

static void spin_release(struct pf_recv *r)
{
	if (r->spinner) {
		r->spinner = false;
		atomic_fetch_sub_explicit(&spinners, 1, memory_order_release);
	}
}

int pf_recv_buf(struct pf_recv *r, struct fuse_session *se,
		struct fuse_buf *buf)
{
	bool served = true; /* the caller has just served a request */
	int res;

	if (r->epfd < 0) {
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		res = fuse_session_receive_buf(se, buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		return res;
	}
	for (;;) {
		res = fuse_session_receive_buf(se, buf);
		if (res != -EAGAIN) {
			spin_release(r);
			return res;
		}
		/* Nothing queued. Spin if we just served one and nobody else
		 * spins; else sleep. */
		if (served && !r->spinner &&
		    atomic_fetch_add_explicit(&spinners, 1,
					      memory_order_acquire) == 0) {
			r->spinner = true;
			r->spin_end = pf_now_ns() + spin_ns;
		} else if (served && !r->spinner) {
			atomic_fetch_sub_explicit(&spinners, 1,
						  memory_order_relaxed);
		}
		served = false;
		if (r->spinner && pf_now_ns() < r->spin_end) {
			pf_cpu_relax();
			continue;
		}
		spin_release(r);
		sleep_on_device(r);
	}
}
