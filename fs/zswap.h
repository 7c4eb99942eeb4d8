/* SPDX-License-Identifier: MIT */
/*
 * zswap.h - the kernel's zswap seen from pagefold. In the two-tier swap
 * zswap keeps the recently swapped pages compressed in kernel memory (the
 * hot tier) and writes what it lets go back to a pagefold swap file (the
 * cold tier); .ctl/zswap_stat shows its figures beside pagefold's own.
 * They are system-wide: zswap has one pool for every swap device.
 */
#ifndef PAGEFOLD_FS_ZSWAP_H
#define PAGEFOLD_FS_ZSWAP_H

#include <stdint.h>

struct zswap_stats {
	uint64_t pool_bytes;   /* memory zswap's pool holds (meminfo Zswap) */
	uint64_t stored_bytes; /* the pages it holds, uncompressed (Zswapped) */
	uint64_t zswpin;       /* pages loaded back from zswap, ever (vmstat) */
	uint64_t zswpout;      /* pages stored in zswap, ever */
	uint64_t zswpwb;       /* pages zswap wrote back to the swap device */
};

/* Pure parsers of /proc/meminfo and /proc/vmstat text (NUL-terminated):
 * they set the fields whose lines they find and leave the others. */
void zswap_parse_meminfo(const char *text, struct zswap_stats *zs);
void zswap_parse_vmstat(const char *text, struct zswap_stats *zs);

/* Both files read now; all zeros on a kernel without zswap. 0 or -errno
 * (a /proc file that cannot be read). */
int zswap_read_stats(struct zswap_stats *zs);

#endif /* PAGEFOLD_FS_ZSWAP_H */
