// SPDX-License-Identifier: MIT
/*
 * workers.c - the worker pool and the main thread's wait (workers.h).
 *
 * Signals: SIGINT, SIGTERM and SIGHUP detach the mount (lazy unmount); the
 * daemon keeps serving whoever still has a file open - a loop device used
 * as swap - and exits when the kernel closes the connection. Unmounting
 * with umount or fusermount3 -u does the same. A worker that ends sends
 * the main thread SIGUSR1.
 *
 * lock ordering: no locks of its own (srv.live and srv.error are atomic;
 * the rest is set before the workers start).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"
#include "pf.h"
#include "recv.h"
#include "thread.h"
#include "workers.h"


/* What libfuse 3.12..3.16 reads into a receive buffer: FUSE_MAX_MAX_PAGES
 * (256) pages plus a 4 KiB header, however large max_write is. Other
 * versions get no preallocated buffer (libfuse allocates it). */
static size_t receive_bufsize(void)
{
	int v = fuse_version();

	if (v < 312 || v > 316)
		return 0;
	return 256 * (size_t)sysconf(_SC_PAGESIZE) + 0x1000;
}

struct worker {
	pthread_t tid;
	bool started;
	struct fuse_buf fbuf;
	void *scratch;
	size_t scratch_size;
	struct pf_recv recv;
};

struct server {
	struct fuse_session *se;
	pthread_t main_tid;
	atomic_uint live;
	atomic_int error;
	struct pf_thread_start start; /* the workers report prepared */
	unsigned int nworkers;
	struct worker *workers;
};

static struct server srv = {
	.start = PF_THREAD_START_INIT(NULL),
};

/* Fault every page of a buffer in now (and so lock it, under mlockall).
 * Volatile stores: malloc followed by memset(0) may become calloc, which
 * touches nothing. */
static void prefault(void *buf, size_t size)
{
	volatile char *p = buf;
	size_t step = (size_t)sysconf(_SC_PAGESIZE);

	for (size_t i = 0; i < size; i += step)
		p[i] = 0;
	if (size)
		p[size - 1] = 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int res;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pf_tls_scratch = w->scratch;
	pf_tls_scratch_size = w->scratch_size;
	(void)pf_thread_prepare_report(&srv.start);

	while (!fuse_session_exited(srv.se)) {
		/* Cancellable only while blocked in read(2) on the device,
		 * as in libfuse's own loop; a polling worker is woken by
		 * pf_recv_stop() instead (recv.h). */
		res = pf_recv_buf(&w->recv, srv.se, &w->fbuf);
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (res <= 0) {
			if (res < 0) {
				pf_log(LOG_ERR, "reading the fuse device: %s",
				       strerror(-res));
				atomic_store(&srv.error, res);
			}
			fuse_session_exit(srv.se);
			break;
		}
		fuse_session_process_buf(srv.se, &w->fbuf);
	}
	atomic_fetch_sub(&srv.live, 1);
	pthread_kill(srv.main_tid, SIGUSR1);
	return NULL;
}

static void workers_free(void)
{
	for (unsigned int i = 0; srv.workers && i < srv.nworkers; i++) {
		pf_recv_fini(&srv.workers[i].recv);
		free(srv.workers[i].fbuf.mem);
		free(srv.workers[i].scratch);
	}
	free(srv.workers);
	srv.workers = NULL;
}

/* Allocate and touch every buffer, then start every thread. */
static int workers_start(unsigned int n)
{
	size_t bufsize = receive_bufsize();
	unsigned int i;
	int ret;

	srv.workers = calloc(n, sizeof(*srv.workers));
	if (!srv.workers)
		return -ENOMEM;
	srv.nworkers = n;
	for (i = 0; i < n; i++)
		srv.workers[i].recv.epfd = -1;
	for (i = 0; i < n; i++) {
		struct worker *w = &srv.workers[i];

		w->scratch_size = PF_MAX_IO + 2 * PF_PAGE;
		w->scratch = aligned_alloc(PF_PAGE, w->scratch_size);
		if (!w->scratch)
			return -ENOMEM;
		prefault(w->scratch, w->scratch_size);
		if (bufsize) {
			w->fbuf.mem = malloc(bufsize);
			if (!w->fbuf.mem)
				return -ENOMEM;
			prefault(w->fbuf.mem, bufsize);
			w->fbuf.size = bufsize;
		}
	}
	for (i = 0; i < n; i++) {
		ret = pf_recv_init(&srv.workers[i].recv, srv.se);
		if (ret)
			return ret;
	}
	if (!bufsize)
		pf_log(LOG_NOTICE, "libfuse %s: receive buffers allocated on demand",
		       fuse_pkgversion());
	atomic_store(&srv.live, n);
	for (i = 0; i < n; i++) {
		ret = pthread_create(&srv.workers[i].tid, NULL, worker_main,
				     &srv.workers[i]);
		if (ret) {
			atomic_fetch_sub(&srv.live, n - i);
			return -ret;
		}
		srv.workers[i].started = true;
	}
	/* Serve only with every worker ready to serve without allocating. */
	return pf_thread_start_wait(&srv.start, n);
}

static void workers_stop(void)
{
	fuse_session_exit(srv.se);
	pf_recv_stop();
	for (unsigned int i = 0; i < srv.nworkers; i++)
		if (srv.workers[i].started)
			pthread_cancel(srv.workers[i].tid);
	for (unsigned int i = 0; i < srv.nworkers; i++)
		if (srv.workers[i].started)
			pthread_join(srv.workers[i].tid, NULL);
}

/* Lazy unmount: the name goes now, the filesystem when its last user does. */
static void detach_mount(const char *mnt)
{
	pid_t pid;
	int status;

	if (geteuid() == 0) {
		if (umount2(mnt, MNT_DETACH))
			pf_log(LOG_ERR, "umount %s: %s", mnt, strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", "--",
		       mnt, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		pf_log(LOG_ERR, "fusermount3 -u -z %s failed", mnt);
}

void pf_workers_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

/* Wait for the workers to finish, detaching the mount on a signal. */
static void serve(const char *mnt)
{
	sigset_t set;
	bool detached = false;
	int sig;

	pf_workers_sigset(&set);
	for (;;) {
		sig = sigwaitinfo(&set, NULL);
		if (sig < 0)
			continue;
		if (sig == SIGUSR1) {
			if (atomic_load(&srv.live) == 0 ||
			    fuse_session_exited(srv.se))
				break;
			continue;
		}
		if (!detached) {
			pf_log(LOG_NOTICE, "signal %d: unmounting %s; exiting once no file is in use",
			       sig, mnt);
			detach_mount(mnt);
			detached = true;
		}
	}
}

int pf_workers_start(struct fuse_session *se, struct store *st,
		     unsigned int n)
{
	srv.se = se;
	srv.main_tid = pthread_self();
	srv.start.st = st;
	return workers_start(n);
}

int pf_workers_serve(const char *mnt)
{
	serve(mnt);
	return atomic_load(&srv.error);
}

void pf_workers_stop(void)
{
	if (srv.se)
		workers_stop();
	workers_free();
}
