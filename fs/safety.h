/* SPDX-License-Identifier: MIT */
/*
 * safety.h - what a daemon that serves swap does for itself before it
 * serves: memory locked, an I/O flusher, out of the OOM killer's reach, and
 * malloc kept from holding on to freed memory. See pagefold(8), SWAP.
 */
#ifndef PAGEFOLD_FS_SAFETY_H
#define PAGEFOLD_FS_SAFETY_H

struct pf_fs;

/* malloc's settings, before any thread or allocation worth it. */
void pf_malloc_setup(void);

/*
 * mlockall, PR_SET_IO_FLUSHER, oom_score_adj -1000: each that works is
 * recorded in fs (mlocked, io_flusher, oom_protected, shown in .ctl/stat),
 * each that does not is logged as a warning and skipped. Call it before any
 * thread or store memory exists, so that all of it is locked and every
 * thread inherits PR_SET_IO_FLUSHER.
 */
void pf_swap_safety(struct pf_fs *fs);

#endif /* PAGEFOLD_FS_SAFETY_H */
