/* SPDX-License-Identifier: MIT */
/*
 * log.h - the daemon's messages: standard error ("pagefold: [warning: ]...")
 * until it daemonises, syslog (with libfuse's own messages) after.
 */
#ifndef PAGEFOLD_FS_LOG_H
#define PAGEFOLD_FS_LOG_H

#include <stdarg.h>
#include <syslog.h>

__attribute__((format(printf, 2, 0)))
void pf_vlog(int prio, const char *fmt, va_list ap);
__attribute__((format(printf, 2, 3)))
void pf_log(int prio, const char *fmt, ...);

/* From now on, ours and libfuse's messages go to syslog (LOG_DAEMON). */
void pf_log_to_syslog(void);

#endif /* PAGEFOLD_FS_LOG_H */
