// SPDX-License-Identifier: MIT
/*
 * strbuf.c - a growable string buffer (strbuf.h).
 *
 * lock ordering: no locks; a buffer belongs to one thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void strbuf_init(struct strbuf *sb)
{
	sb->buf = NULL;
	sb->len = 0;
	sb->cap = 0;
	sb->err = 0;
}

void strbuf_release(struct strbuf *sb)
{
	free(sb->buf);
	strbuf_init(sb);
}

static bool strbuf_grow(struct strbuf *sb, size_t more)
{
	size_t want = sb->len + more + 1;
	size_t cap = sb->cap ? sb->cap : 256;
	char *nbuf;

	if (sb->err)
		return false;
	if (want <= sb->cap)
		return true;
	while (cap < want)
		cap *= 2;
	nbuf = realloc(sb->buf, cap);
	if (!nbuf) {
		sb->err = -ENOMEM;
		return false;
	}
	sb->buf = nbuf;
	sb->cap = cap;
	return true;
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !strbuf_grow(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void strbuf_add_escaped(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == '\\' || c == 0x7f)
			strbuf_printf(sb, "\\%03o", c);
		else
			strbuf_printf(sb, "%c", c);
	}
}
