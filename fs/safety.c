// SPDX-License-Identifier: MIT
/*
 * safety.c - the daemon's swap safety (safety.h).
 *
 * lock ordering: no locks of its own.
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "log.h"
#include "pf.h"
#include "safety.h"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

/*
 * malloc under mlockall(): glibc gives freed memory back with
 * madvise(MADV_DONTNEED), which the kernel refuses on locked pages, so
 * whatever a heap grew to stays resident (only the top of the main heap,
 * given back with brk, and blocks malloc mapped on their own, unmapped
 * when freed, do return). The store's and the namespace's metadata do not
 * come from malloc (store_mem_alloc(), alloc/mheap.h); what is left here is
 * small and short-lived (requests, directory listings, /.ctl contents).
 * Two settings keep it so: a fixed mmap threshold, so a large block (a
 * listing of a big directory, a long /.ctl/files) is mapped and unmapped
 * instead of growing a heap for good - glibc's default threshold rises to
 * the size of each mapped block freed, up to 32 MiB; and one arena, so
 * the workers share one heap whose top can shrink, instead of each
 * keeping its own high-water mark (their small allocations are served
 * from per-thread caches without the arena's lock).
 */
#define PF_MMAP_THRESHOLD (64 * 1024)

void pf_malloc_setup(void)
{
	/* Quietly: a malloc that is not glibc's (a sanitizer's) refuses. */
	(void)mallopt(M_MMAP_THRESHOLD, PF_MMAP_THRESHOLD);
	(void)mallopt(M_ARENA_MAX, 1);
}

static bool has_cap_ipc_lock(void)
{
	unsigned long long caps = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			found = true;
			break;
		}
	fclose(f);
	return found && (caps & (1ULL << 14)); /* CAP_IPC_LOCK */
}

void pf_swap_safety(struct pf_fs *fs)
{
	struct rlimit rl;
	FILE *f;

	/* mlockall(MCL_FUTURE) without CAP_IPC_LOCK makes every later mmap
	 * past RLIMIT_MEMLOCK fail, so only lock when nothing can fail. */
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && !has_cap_ipc_lock()) {
		pf_log(LOG_WARNING, "memory not locked: no CAP_IPC_LOCK and RLIMIT_MEMLOCK is %llu bytes (needed when used as swap)",
		       (unsigned long long)rl.rlim_cur);
	} else if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)) {
		pf_log(LOG_WARNING, "mlockall: %s (needed when used as swap)",
		       strerror(errno));
	} else {
		fs->mlocked = true;
	}

	/* Per thread, inherited by the workers created after it. */
	if (prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0))
		pf_log(LOG_WARNING, "PR_SET_IO_FLUSHER: %s; going on without it",
		       strerror(errno));
	else
		fs->io_flusher = true;

	f = fopen("/proc/self/oom_score_adj", "we");
	if (!f || fputs("-1000\n", f) == EOF || fflush(f) == EOF) {
		pf_log(LOG_WARNING, "oom_score_adj -1000: %s; going on",
		       strerror(errno));
	} else {
		fs->oom_protected = true;
	}
	if (f)
		fclose(f);
}
