// SPDX-License-Identifier: MIT
/*
 * log.c - the daemon's messages (log.h).
 *
 * lock ordering: no locks of its own; log_to_syslog is set once, by the
 * main thread, before any other thread exists.
 */
#include <stdbool.h>
#include <stdio.h>

#include "log.h"
#include "pf.h" /* fuse_log.h */

static bool log_to_syslog;

void pf_vlog(int prio, const char *fmt, va_list ap)
{
	if (log_to_syslog) {
		vsyslog(prio, fmt, ap);
		return;
	}
	fprintf(stderr, "pagefold: ");
	if (prio == LOG_WARNING)
		fprintf(stderr, "warning: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void pf_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pf_vlog(prio, fmt, ap);
	va_end(ap);
}

/* libfuse's own messages follow ours to syslog once we are a daemon. */
static void fuse_log_to_syslog(enum fuse_log_level level, const char *fmt,
			       va_list ap)
{
	vsyslog((int)level, fmt, ap);
}

void pf_log_to_syslog(void)
{
	openlog("pagefold", LOG_PID, LOG_DAEMON);
	log_to_syslog = true;
	fuse_set_log_func(fuse_log_to_syslog);
}
