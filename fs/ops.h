/* SPDX-License-Identifier: MIT */
/*
 * ops.h - the low-level FUSE operations table, and the per-worker buffer
 * that reads are assembled in.
 */
#ifndef PAGEFOLD_FS_OPS_H
#define PAGEFOLD_FS_OPS_H

#include "pf.h"

extern const struct fuse_lowlevel_ops pf_ops;

/* Set by each worker thread to its preallocated, locked buffer of
 * pf_tls_scratch_size bytes (at least PF_MAX_IO + 2 pages); operations run
 * outside a worker allocate one instead. */
extern _Thread_local void *pf_tls_scratch;
extern _Thread_local size_t pf_tls_scratch_size;

#endif /* PAGEFOLD_FS_OPS_H */
