// SPDX-License-Identifier: MIT
/*
 * backing.c - the disk tier's file as the daemon opens it (see backing.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backing.h"
#include "mountinfo.h"

struct on_pagefold {
	const char *path;	/* absolute; or NULL */
	const dev_t *dev;	/* or NULL */
};

/* Is o->path lexically below this pagefold mount, or o->dev its device? */
static int on_pagefold_mount(const struct mountinfo *m, void *ctx)
{
	const struct on_pagefold *o = ctx;
	size_t n = strlen(m->mount_point);

	if (strcmp(m->fstype, MOUNTINFO_PAGEFOLD) != 0)
		return 0;
	if (o->dev && major(*o->dev) == m->major &&
	    minor(*o->dev) == m->minor)
		return 1;
	return o->path && strncmp(o->path, m->mount_point, n) == 0 &&
	       (o->path[n] == '/' || o->path[n] == '\0' ||
		(n == 1 && m->mount_point[0] == '/'));
}

/* From mountinfo, without touching the path itself: that could ask our
 * own mount, which deadlocks a single-threaded daemon. */
static bool on_pagefold(const char *path, const dev_t *dev)
{
	struct on_pagefold o = { path, dev };

	return mountinfo_each(on_pagefold_mount, &o) > 0;
}

int pf_backing_open(const char *path, int *out)
{
	char abs[PATH_MAX];
	struct stat sb;
	size_t len = 0;
	int fd, err;

	if (!path || !*path)
		return -EINVAL;
	if (path[0] != '/') {
		if (!getcwd(abs, sizeof(abs)))
			return -ENAMETOOLONG;
		len = strlen(abs);
		if (len + 1 < sizeof(abs))
			abs[len++] = '/';
	}
	if ((size_t)snprintf(abs + len, sizeof(abs) - len, "%s", path) >=
	    sizeof(abs) - len)
		return -ENAMETOOLONG;
	if (on_pagefold(abs, NULL))
		return -EDEADLK;
	err = store_backing_open(abs, &fd);
	if (err)
		return err;
	if (fstat(fd, &sb)) {
		err = -errno;
		close(fd);
		return err;
	}
	/* Reached by another name (a link, a bind mount): by its device. */
	if (on_pagefold(NULL, &sb.st_dev)) {
		close(fd);
		return -EDEADLK;
	}
	*out = fd;
	return 0;
}

int pf_backing_attach(struct store *st, const char *path)
{
	int fd = -1;
	int err = path ? pf_backing_open(path, &fd) : 0;

	return err ? err : store_set_backing_fd(st, fd, path);
}
