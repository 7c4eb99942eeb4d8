/* SPDX-License-Identifier: MIT */
/*
 * workers.h - the daemon's worker pool: the threads that read requests from
 * the FUSE device and serve them, started before the first request with
 * every buffer they need allocated and touched.
 *
 * The loop is our own rather than fuse_session_loop_mt(): libfuse starts
 * worker threads and allocates their 1 MiB receive buffers on demand,
 * i.e. exactly when the machine is short of memory and swapping to us. Here
 * every worker, its receive buffer and its read buffer exist, and are
 * touched under mlockall(), before the first request is served.
 *
 * One pool a process; the main thread calls these, in this order.
 */
#ifndef PAGEFOLD_FS_WORKERS_H
#define PAGEFOLD_FS_WORKERS_H

#include <signal.h>

#include "pf.h"

/*
 * Start n workers serving se, each prepared for st (thread.h) before any
 * serves; returns once all are ready, 0 or -errno. The calling thread must
 * block pf_workers_sigset() first (the workers inherit the mask;
 * pf_workers_serve() takes them).
 */
int pf_workers_start(struct fuse_session *se, struct store *st,
		     unsigned int n);

/* The signals only the main thread takes: SIGINT, SIGTERM, SIGHUP (detach
 * the mount) and SIGUSR1 (a worker ended). */
void pf_workers_sigset(sigset_t *set);

/*
 * Wait in the main thread until the session ends; SIGINT, SIGTERM or SIGHUP
 * detach the mount at mnt (lazy unmount) and the workers go on serving
 * whoever still has a file open. Returns 0, or the -errno that ended it.
 */
int pf_workers_serve(const char *mnt);

/* Stop and join the workers (any started), free their buffers. */
void pf_workers_stop(void);

#endif /* PAGEFOLD_FS_WORKERS_H */
