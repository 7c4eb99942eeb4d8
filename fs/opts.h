/* SPDX-License-Identifier: MIT */
/*
 * opts.h - the mount options' defaults, and the parsing and naming of the
 * values pagefold accepts, shared by the mount options (main.c) and the
 * /.ctl settings (ctl.c), so that both take the same values and refuse
 * the same ones. Pure functions on NUL-terminated strings (no blanks, no
 * signs, decimal digits only), but opt_ram_bytes() and
 * opt_mount_defaults(), which ask the kernel.
 */
#ifndef PAGEFOLD_FS_OPTS_H
#define PAGEFOLD_FS_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * The mount options' values, each at its default until the command line
 * sets it (main.c): opt_mount_defaults() is the one place fs/ decides
 * them. The store's are store_config_default()'s (store.h); the daemon's
 * own are in the comments below.
 */
struct opt_mount {
	struct store_config store;
	/* Worker threads, all started at mount: twice the CPUs, at least
	 * OPT_THREADS_DEFAULT_MIN, at most OPT_THREADS_DEFAULT_MAX. */
	unsigned int threads;
	unsigned int spin_us;      /* PF_SPIN_US_DEFAULT (recv.h) */
	char *backing_file;        /* the disk tier; NULL: none */
	/* The writeback policy (store_set_writeback_after(),
	 * store_set_mem_high()): 0, off. */
	uint64_t writeback_after;
	uint64_t mem_high;
};
#define OPT_THREADS_DEFAULT_MIN 4
#define OPT_THREADS_DEFAULT_MAX 16

void opt_mount_defaults(struct opt_mount *m);

/*
 * Errors, the same for every value (mount options and /.ctl settings):
 * -EINVAL for what is not a value of the setting at all (empty, garbage,
 * an unknown suffix or word), -ERANGE for a well-formed number the setting
 * cannot mean (outside its range, or past 2^64 - 1), -EOPNOTSUPP for a
 * codec this build lacks.
 */

/*
 * A byte count: decimal digits, then optionally one suffix K, M, G or T
 * (either case, powers of 1024), e.g. "536870912", "512M", "2g".
 * 0, or -EINVAL (empty, garbage, unknown suffix), -ERANGE (over 2^64 - 1).
 */
int opt_parse_size(const char *s, uint64_t *bytes);

/* The machine's RAM in bytes (sysinfo(2), MemTotal); 0 if unknown. */
uint64_t opt_ram_bytes(void);

/* A memory limit: a size (opt_parse_size()) of at most ram bytes (when ram
 * is not 0), or 0 for none; -ERANGE above ram. */
int opt_parse_mem_limit(const char *s, uint64_t ram, uint64_t *bytes);

/* A decimal number in [min, max]: -EINVAL for garbage, -ERANGE outside
 * the range or if it does not fit in 64 bits. */
int opt_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *val);

/* A cold codec as recomp_algorithm takes it: "zstd[:LEVEL]" or
 * "lz4hc[:LEVEL]" (no level: the codec's default, a->level = 0). -EINVAL
 * for an unknown codec or a malformed level, -ERANGE for a level outside
 * the codec's range (store_cold_codec_check()), -EOPNOTSUPP for a
 * codec this build lacks. */
int opt_parse_codec(const char *s, struct store_cold_codec *a);

/* The intake (store_set_intake()): "lz4" (*cold = false) or a cold codec
 * as opt_parse_codec() takes it (*cold = true, the codec in *a), with its
 * errors. opt_format_intake() writes the same form back ("lz4",
 * "zstd:1"); returns the length. */
int opt_parse_intake(const char *s, bool *cold, struct store_cold_codec *a);
int opt_format_intake(bool cold, const struct store_cold_codec *a,
		      char *buf, size_t size);

/* "0" or "1"; another number is -ERANGE ("2"), or -EINVAL when it spells
 * 0 or 1 another way ("01"). */
int opt_parse_bool(const char *s, bool *on);

/* "inline", "scan" or "off". */
int opt_parse_fold(const char *s, enum store_fold_mode *mode);
const char *opt_fold_name(enum store_fold_mode mode);

#endif /* PAGEFOLD_FS_OPTS_H */
