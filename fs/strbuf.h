/* SPDX-License-Identifier: MIT */
/*
 * strbuf.h - a growable string buffer, for what fs/ prints (the /.ctl
 * files' contents, paths).
 */
#ifndef PAGEFOLD_FS_STRBUF_H
#define PAGEFOLD_FS_STRBUF_H

#include <stddef.h>

/* A growable string buffer. On allocation failure it stays usable, keeps
 * what it had and records the error in err (-ENOMEM). */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
	int err;
};

void strbuf_init(struct strbuf *sb);
void strbuf_release(struct strbuf *sb);
__attribute__((format(printf, 2, 3)))
void strbuf_printf(struct strbuf *sb, const char *fmt, ...);
/* Append s with blanks, backslashes and control characters written as
 * \ooo octal escapes (as /proc/mounts does), so it stays one column. */
void strbuf_add_escaped(struct strbuf *sb, const char *s);

#endif /* PAGEFOLD_FS_STRBUF_H */
