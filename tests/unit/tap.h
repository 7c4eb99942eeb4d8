/* SPDX-License-Identifier: MIT */
/*
 * tap.h - the smallest TAP producer that does the job.
 *
 *   ok(cond, "what %d", n);      one test point
 *   is_u64(got, want, "what");   equality with both values in the message
 *   skip_all("why");             plan 1..0 # SKIP and exit
 *   return tap_done();           prints the plan, exit status 0 if all passed
 *
 * Assertions print the failing file:line on a "#" diagnostic line.
 */
#ifndef PAGEFOLD_TAP_H
#define PAGEFOLD_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned int tap_n, tap_failed;

__attribute__((format(printf, 4, 5), unused))
static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	printf("%sok %u - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_u64(got, want, name) do {                                        \
	uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);          \
	if (!ok(got_ == want_, "%s", name))                                 \
		printf("#   got %" PRIu64 ", want %" PRIu64 "\n", got_, want_); \
} while (0)

__attribute__((unused))
static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

__attribute__((noreturn, unused))
static void skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	exit(0);
}

__attribute__((unused))
static int tap_done(void)
{
	printf("1..%u\n", tap_n);
	if (tap_failed)
		printf("# %u of %u failed\n", tap_failed, tap_n);
	return tap_failed ? 1 : 0;
}

#endif /* PAGEFOLD_TAP_H */
