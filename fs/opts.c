// SPDX-License-Identifier: MIT
/*
 * opts.c - the mount options' defaults; value parsing for mount options
 * and /.ctl settings.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "opts.h"
#include "recv.h"

void opt_mount_defaults(struct opt_mount *m)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long n = cpus > 0 ? 2 * cpus : OPT_THREADS_DEFAULT_MIN;

	*m = (struct opt_mount){
		.threads = (unsigned int)(n < OPT_THREADS_DEFAULT_MIN ?
					  OPT_THREADS_DEFAULT_MIN :
					  n > OPT_THREADS_DEFAULT_MAX ?
					  OPT_THREADS_DEFAULT_MAX : n),
		.spin_us = PF_SPIN_US_DEFAULT,
	};
	store_config_default(&m->store);
}

/* Decimal digits only; *end is left at the first non-digit. */
static int parse_digits(const char *s, uint64_t *val, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned int d = (unsigned int)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*val = v;
	*end = p;
	return 0;
}

int opt_parse_size(const char *s, uint64_t *bytes)
{
	const char *end;
	uint64_t v;
	unsigned int shift = 0;
	int ret;

	ret = parse_digits(s, &v, &end);
	if (ret)
		return ret;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	case 't': case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (shift && end[1] != '\0')
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = v << shift;
	return 0;
}

uint64_t opt_ram_bytes(void)
{
	struct sysinfo si;

	if (sysinfo(&si))
		return 0;
	return (uint64_t)si.totalram * (si.mem_unit ? si.mem_unit : 1);
}

int opt_parse_mem_limit(const char *s, uint64_t ram, uint64_t *bytes)
{
	uint64_t v;
	int ret = opt_parse_size(s, &v);

	if (ret)
		return ret;
	/* More than the machine has is no limit at all, and most likely a
	 * slip (a T for a G): say so rather than take it. */
	if (ram && v > ram)
		return -ERANGE;
	*bytes = v;
	return 0;
}

int opt_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *val)
{
	const char *end;
	uint64_t v;
	int ret;

	ret = parse_digits(s, &v, &end);
	if (ret)
		return ret;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*val = v;
	return 0;
}

int opt_parse_codec(const char *s, struct store_cold_codec *a)
{
	const char *colon = strchr(s, ':');
	struct store_cold_codec c;
	uint64_t level = 0;
	const char *end;
	int min, max, ret, lvl_ret = 0;

	/* The name alone: the store knows the codecs. */
	if (store_cold_codec_parse(s, colon ? (size_t)(colon - s) :
				   strlen(s), &c))
		return -EINVAL;
	if (colon) {
		lvl_ret = parse_digits(colon + 1, &level, &end);
		if (lvl_ret == -EINVAL || (!lvl_ret && *end != '\0'))
			return -EINVAL;
		if (lvl_ret == -ERANGE) {
			/* digits past 2^64: check the rest is digits too */
			for (end = colon + 1; *end >= '0' && *end <= '9'; end++)
				;
			if (*end != '\0')
				return -EINVAL;
		}
	}
	c.level = 0;
	ret = store_cold_codec_check(&c, &min, &max);
	if (ret == -EINVAL)
		return -EINVAL;
	if (colon && (lvl_ret || level < (uint64_t)min || level > (uint64_t)max))
		return -ERANGE;
	if (ret)
		return ret;
	c.level = (int)level;
	*a = c;
	return 0;
}

int opt_parse_intake(const char *s, bool *cold, struct store_cold_codec *a)
{
	int ret;

	if (strcmp(s, "lz4") == 0) {
		*cold = false;
		return 0;
	}
	ret = opt_parse_codec(s, a);
	if (ret)
		return ret;
	*cold = true;
	return 0;
}

int opt_format_intake(bool cold, const struct store_cold_codec *a,
		      char *buf, size_t size)
{
	if (!cold)
		return snprintf(buf, size, "lz4");
	return store_cold_codec_format(a, buf, size);
}

int opt_parse_bool(const char *s, bool *on)
{
	const char *end;
	uint64_t v;
	int ret;

	if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0) {
		/* A number, but not 0 or 1: out of range, unless it is one of
		 * them spelt another way ("01"), which is not a value here. */
		ret = parse_digits(s, &v, &end);
		if (ret == -ERANGE || (!ret && *end == '\0' && v > 1))
			return -ERANGE;
		return -EINVAL;
	}
	*on = s[0] == '1';
	return 0;
}

static const char *const fold_names[] = {
	[STORE_FOLD_INLINE] = "inline",
	[STORE_FOLD_SCAN] = "scan",
	[STORE_FOLD_OFF] = "off",
};

int opt_parse_fold(const char *s, enum store_fold_mode *mode)
{
	for (unsigned int i = 0; i < sizeof(fold_names) / sizeof(fold_names[0]); i++) {
		if (strcmp(s, fold_names[i]) == 0) {
			*mode = (enum store_fold_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *opt_fold_name(enum store_fold_mode mode)
{
	if ((unsigned int)mode < sizeof(fold_names) / sizeof(fold_names[0]))
		return fold_names[mode];
	return "?";
}
