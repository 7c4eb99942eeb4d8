// SPDX-License-Identifier: MIT
/*
 * pf-seek - print what lseek(2) answers for SEEK_DATA or SEEK_HOLE.
 *
 *   pf-seek FILE data|hole OFFSET
 *
 * Prints the offset, or the error name (ENXIO, EINVAL, ...) on failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int whence, fd;
	off_t res;

	if (argc != 4 || (strcmp(argv[2], "data") && strcmp(argv[2], "hole"))) {
		fprintf(stderr, "usage: %s FILE data|hole OFFSET\n", argv[0]);
		return 2;
	}
	whence = strcmp(argv[2], "data") == 0 ? SEEK_DATA : SEEK_HOLE;
	fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	res = lseek(fd, (off_t)strtoll(argv[3], NULL, 0), whence);
	if (res < 0)
		printf("%s\n", errno == ENXIO ? "ENXIO" : errno == EINVAL ?
		       "EINVAL" : strerror(errno));
	else
		printf("%lld\n", (long long)res);
	close(fd);
	return 0;
}
