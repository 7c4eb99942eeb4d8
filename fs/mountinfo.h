/* SPDX-License-Identifier: MIT */
/*
 * mountinfo.h - reading /proc/self/mountinfo, once for fs/: the daemon
 * (is the mount point taken, is a backing file on a pagefold mount) and
 * pagefoldctl (which mounts are ours). Reading it asks no filesystem, so
 * a hung or dead FUSE daemon cannot block a caller.
 */
#ifndef PAGEFOLD_FS_MOUNTINFO_H
#define PAGEFOLD_FS_MOUNTINFO_H

#include <stdbool.h>

/* What pagefold's mounts are called there. */
#define MOUNTINFO_PAGEFOLD "fuse.pagefold"

/* One line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE
 * SOURCE SUPEROPTS". The strings point into the line. */
struct mountinfo {
	unsigned int major, minor;	/* the mounted filesystem's device */
	char *mount_point;		/* unescaped */
	char *fstype;			/* e.g. "fuse.pagefold" */
};

/* Split line (one mountinfo line, its newline optional) in place; false if
 * it does not parse. */
bool mountinfo_parse(char *line, struct mountinfo *m);

/* Call fn for each mount, in mount order (mounts stacked on one point are
 * listed bottom first), until it returns non-zero. That value, 0, or
 * -errno when mountinfo cannot be read. */
int mountinfo_each(int (*fn)(const struct mountinfo *m, void *ctx),
		   void *ctx);

/* Undo the \ooo octal escapes the kernel (and /.ctl/files) writes for
 * blanks, backslashes and control characters, in place. */
void octal_unescape(char *s);

#endif /* PAGEFOLD_FS_MOUNTINFO_H */
