/* SPDX-License-Identifier: MIT */
/*
 * testdata.h - reproducible bytes for the unit tests.
 *
 *   td_fill(buf, len, seed)   len bytes that depend on seed and on every
 *                             position (xorshift64*, 8 bytes per step), so
 *                             two objects with different seeds never
 *                             compare equal by accident
 *   td_mix(x)                 splitmix64's finaliser: a well-spread 64-bit
 *                             hash of x, for seeds and random choices
 *   td_next(&state)           the next number of a xorshift64* stream
 *   td_status_kb(field)       a "kB" field of /proc/self/status (VmLck,
 *                             RssAnon, ...), or -1
 */
#ifndef PAGEFOLD_TESTDATA_H
#define PAGEFOLD_TESTDATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void td_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		if (!(i & 7)) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
		}
		buf[i] = (uint8_t)((x * 0x2545f4914f6cdd1dull) >> (8 * (i & 7)));
	}
}

static inline uint64_t td_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t td_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline long td_status_kb(const char *field)
{
	char line[256];
	long kb = -1;
	size_t n = strlen(field);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			kb = atol(line + n + 1);
	fclose(f);
	return kb;
}

#endif /* PAGEFOLD_TESTDATA_H */
