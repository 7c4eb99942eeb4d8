// SPDX-License-Identifier: MIT
/*
 * conn.c - FUSE_INIT flags libfuse 3.14 cannot name (conn.h).
 *
 * The kernel's first request is INIT: its header's unique id and its flags
 * are noted when read; the reply with that unique id is the INIT reply,
 * written once, by the thread that processed INIT, before any other
 * request is answered. Atomics only order the note and the reply; there is
 * no lock on the request path.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "pf.h" /* FUSE_USE_VERSION, fuse_lowlevel.h */

/* Linux 6.6 named it FUSE_DIRECT_IO_RELAX, 6.7 FUSE_DIRECT_IO_ALLOW_MMAP;
 * Debian 12's headers (6.1) have neither. */
#ifndef FUSE_DIRECT_IO_ALLOW_MMAP
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#endif

static _Atomic uint64_t init_unique;    /* 0: INIT not seen yet */
static _Atomic uint64_t init_offered;   /* the kernel's flags | flags2 << 32 */
static atomic_bool init_replied;        /* the INIT reply went out */
static atomic_bool mmap_allowed;

/* Note the INIT request as it arrives. */
static void note_request(const void *buf, size_t len)
{
	const struct fuse_in_header *in = buf;
	const struct fuse_init_in *arg;
	uint64_t flags;

	if (len < sizeof(*in) || in->opcode != FUSE_INIT ||
	    atomic_load_explicit(&init_replied, memory_order_relaxed))
		return;
	arg = (const void *)(in + 1);
	if (len < sizeof(*in) + offsetof(struct fuse_init_in, flags2))
		return;
	flags = arg->flags;
	if ((flags & FUSE_INIT_EXT) &&
	    len >= sizeof(*in) + offsetof(struct fuse_init_in, flags2) +
		   sizeof(arg->flags2))
		flags |= (uint64_t)arg->flags2 << 32;
	atomic_store_explicit(&init_offered, flags, memory_order_relaxed);
	atomic_store_explicit(&init_unique, in->unique, memory_order_release);
}

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	if (n > 0 && !atomic_load_explicit(&init_replied, memory_order_relaxed))
		note_request(buf, (size_t)n);
	return n;
}

/* The INIT reply, with FUSE_DIRECT_IO_ALLOW_MMAP added when the kernel
 * offered it; any other reply untouched. */
static ssize_t hook_writev(int fd, struct iovec *iov, int count,
			   void *userdata)
{
	const size_t need = offsetof(struct fuse_init_out, flags2) +
			    sizeof(uint32_t);
	const struct fuse_out_header *out;
	struct fuse_init_out arg;
	struct iovec patched[2];
	uint64_t unique, offered;

	(void)userdata;
	if (atomic_load_explicit(&init_replied, memory_order_relaxed) ||
	    count != 2 || iov[0].iov_len < sizeof(*out))
		return writev(fd, iov, count);
	out = iov[0].iov_base;
	unique = atomic_load_explicit(&init_unique, memory_order_acquire);
	if (!unique || out->unique != unique)
		return writev(fd, iov, count);
	atomic_store_explicit(&init_replied, true, memory_order_relaxed);
	offered = atomic_load_explicit(&init_offered, memory_order_relaxed);
	if (out->error || iov[1].iov_len < need ||
	    iov[1].iov_len > sizeof(arg) ||
	    !(offered & FUSE_INIT_EXT) || !(offered & FUSE_DIRECT_IO_ALLOW_MMAP))
		return writev(fd, iov, count);
	memcpy(&arg, iov[1].iov_base, iov[1].iov_len);
	arg.flags |= FUSE_INIT_EXT;
	arg.flags2 |= (uint32_t)(FUSE_DIRECT_IO_ALLOW_MMAP >> 32);
	patched[0] = iov[0];
	patched[1] = (struct iovec){ &arg, iov[1].iov_len };
	atomic_store_explicit(&mmap_allowed, true, memory_order_relaxed);
	return writev(fd, patched, 2);
}

int pf_conn_extend(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = hook_read,
		.writev = hook_writev,
	};

	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

bool pf_conn_mmap_allowed(void)
{
	return atomic_load_explicit(&mmap_allowed, memory_order_relaxed);
}
