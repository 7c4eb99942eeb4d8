// SPDX-License-Identifier: MIT
/*
 * zswap.c - the kernel's zswap figures (zswap.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zswap.h"

/* The value of the line "name<sep> value" in text, if there is one. */
static bool find_value(const char *text, const char *name, char sep,
		       uint64_t *val)
{
	size_t n = strlen(name);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, name, n) == 0 && p[n] == sep) {
			char *end;
			unsigned long long v;

			p += n + 1;
			while (*p == ' ')
				p++;
			errno = 0;
			v = strtoull(p, &end, 10);
			if (end == p || errno)
				return false;
			*val = v;
			return true;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

void zswap_parse_meminfo(const char *text, struct zswap_stats *zs)
{
	uint64_t kb;

	/* "Zswap:  1234 kB" */
	if (find_value(text, "Zswap", ':', &kb))
		zs->pool_bytes = kb * 1024;
	if (find_value(text, "Zswapped", ':', &kb))
		zs->stored_bytes = kb * 1024;
}

void zswap_parse_vmstat(const char *text, struct zswap_stats *zs)
{
	find_value(text, "zswpin", ' ', &zs->zswpin);
	find_value(text, "zswpout", ' ', &zs->zswpout);
	find_value(text, "zswpwb", ' ', &zs->zswpwb);
}

/* The whole of a /proc file (small ones) in a malloc'd string. */
static char *read_text(const char *path, int *err)
{
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap);
	int fd;

	if (!buf) {
		*err = -ENOMEM;
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err = -errno;
		free(buf);
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *nbuf = realloc(buf, cap * 2);

			if (!nbuf) {
				*err = -ENOMEM;
				goto fail;
			}
			buf = nbuf;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

int zswap_read_stats(struct zswap_stats *zs)
{
	int err = 0;
	char *text;

	memset(zs, 0, sizeof(*zs));
	text = read_text("/proc/meminfo", &err);
	if (!text)
		return err;
	zswap_parse_meminfo(text, zs);
	free(text);
	text = read_text("/proc/vmstat", &err);
	if (!text)
		return err;
	zswap_parse_vmstat(text, zs);
	free(text);
	return 0;
}
