// SPDX-License-Identifier: MIT
/*
 * pf-rename - renameat2(2) with a flag, which mv(1) of Debian 12 cannot ask.
 *
 *   pf-rename OLD NEW noreplace|exchange
 *
 * Prints "ok" or the error name (EEXIST, ENOENT, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int main(int argc, char **argv)
{
	unsigned int flags;

	if (argc != 4 || (strcmp(argv[3], "noreplace") && strcmp(argv[3], "exchange"))) {
		fprintf(stderr, "usage: %s OLD NEW noreplace|exchange\n", argv[0]);
		return 2;
	}
	flags = strcmp(argv[3], "exchange") == 0 ? RENAME_EXCHANGE : RENAME_NOREPLACE;
	if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], flags) == 0)
		printf("ok\n");
	else
		printf("%s\n", errno == EEXIST ? "EEXIST" : errno == ENOENT ? "ENOENT" :
		       errno == EINVAL ? "EINVAL" : strerror(errno));
	return 0;
}
