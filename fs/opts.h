/* SPDX-License-Identifier: MIT */
/*
 * opts.h - parsing and naming of the values pagefold accepts, shared by the
 * mount options (main.c) and the /.ctl settings (ctl.c). Pure functions on
 * NUL-terminated strings: no blanks, no signs, decimal digits only.
 */
#ifndef PAGEFOLD_FS_OPTS_H
#define PAGEFOLD_FS_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * A byte count: decimal digits, then optionally one suffix K, M, G or T
 * (either case, powers of 1024), e.g. "536870912", "512M", "2g".
 * 0, or -EINVAL (empty, garbage, unknown suffix), -ERANGE (over 2^64 - 1).
 */
int opt_parse_size(const char *s, uint64_t *bytes);

/* A decimal number in [min, max]: -EINVAL outside it or for garbage,
 * -ERANGE if it does not fit in 64 bits. */
int opt_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *val);

/* The intake (store_set_intake()): "lz4" (*cold = false) or a cold codec
 * as recomp_algorithm takes it, "zstd[:LEVEL]" or "lz4hc[:LEVEL]" (*cold =
 * true, the codec in *a; the level is not range-checked here). 0 or
 * -EINVAL. opt_format_intake() writes the same form back ("lz4",
 * "zstd:1"); returns the length. */
int opt_parse_intake(const char *s, bool *cold, struct store_recomp_algorithm *a);
int opt_format_intake(bool cold, const struct store_recomp_algorithm *a,
		      char *buf, size_t size);

/* "0" or "1". */
int opt_parse_bool(const char *s, bool *on);

/* "inline", "scan" or "off". */
int opt_parse_fold(const char *s, enum store_fold_mode *mode);
const char *opt_fold_name(enum store_fold_mode mode);

#endif /* PAGEFOLD_FS_OPTS_H */
