/* SPDX-License-Identifier: MIT */
/*
 * conn.h - what pagefold asks of the kernel at FUSE_INIT beyond what libfuse
 * 3.14 can name: FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6+), which lets files
 * served with direct I/O be mapped shared. Without it every mmap(MAP_SHARED)
 * of a pagefold file fails with ENODEV (sqlite's WAL index, editors, build
 * tools, fsx in its default mode).
 *
 * libfuse builds the INIT reply from the FUSE_CAP_* flags it knows, so the
 * flag is added to the reply on its way to the kernel: pf_conn_extend()
 * gives the session I/O hooks that read and write /dev/fuse as libfuse
 * would, note the kernel's INIT request, and add the flag to the one INIT
 * reply if the kernel offered it. Every other request and reply passes
 * through unchanged.
 *
 * Files keep FOPEN_DIRECT_IO: read(2), write(2) and a loop device's I/O
 * (swap) never pass through the page cache. Only a shared mapping uses it,
 * for the mapped range, and the kernel writes dirty mapped pages back
 * before a direct read or write of the same range.
 */
#ifndef PAGEFOLD_FS_CONN_H
#define PAGEFOLD_FS_CONN_H

#include <stdbool.h>

struct fuse_session;

/* Install the hooks on se (after fuse_session_mount(), before the first
 * request is read). 0 or -errno. */
int pf_conn_extend(struct fuse_session *se);

/* After INIT: the kernel offered shared mmap of direct-I/O files and the
 * reply asked for it. */
bool pf_conn_mmap_allowed(void);

#endif /* PAGEFOLD_FS_CONN_H */
