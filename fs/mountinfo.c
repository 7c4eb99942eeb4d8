// SPDX-License-Identifier: MIT
/*
 * mountinfo.c - reading /proc/self/mountinfo (see mountinfo.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mountinfo.h"

void octal_unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

bool mountinfo_parse(char *line, struct mountinfo *m)
{
	char *field[5], *sep, *p;
	int i;

	line[strcspn(line, "\n")] = '\0';
	/* Blanks inside names are escaped, so " - " is the separator. */
	sep = strstr(line, " - ");
	if (!sep)
		return false;
	*sep = '\0';
	p = line;
	for (i = 0; i < 5; i++) {
		field[i] = strsep(&p, " ");
		if (!field[i])
			return false;
	}
	if (sscanf(field[2], "%u:%u", &m->major, &m->minor) != 2)
		return false;
	octal_unescape(field[4]);
	m->mount_point = field[4];
	p = sep + 3;
	m->fstype = strsep(&p, " ");
	return m->fstype[0] != '\0';
}

int mountinfo_each(int (*fn)(const struct mountinfo *m, void *ctx),
		   void *ctx)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	struct mountinfo m;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	if (!f)
		return -errno;
	while (!ret && getline(&line, &cap, f) > 0)
		if (mountinfo_parse(line, &m))
			ret = fn(&m, ctx);
	free(line);
	fclose(f);
	return ret;
}
