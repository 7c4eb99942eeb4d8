// SPDX-License-Identifier: MIT
/*
 * pf-punch - punch holes in a regular pattern, to fragment pagefold's pool.
 *
 *   pf-punch FILE STRIDE KEEP
 *
 * In every run of STRIDE pages, keeps the first KEEP pages and punches the
 * rest (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), up to the file size.
 * Prints the number of pages punched.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096

int main(int argc, char **argv)
{
	unsigned long long stride, keep, punched = 0;
	struct stat st;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s FILE STRIDE KEEP\n", argv[0]);
		return 2;
	}
	stride = strtoull(argv[2], NULL, 0);
	keep = strtoull(argv[3], NULL, 0);
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || fstat(fd, &st) || stride == 0 || keep >= stride) {
		fprintf(stderr, "pf-punch: %s: %s\n", argv[1],
			fd < 0 ? strerror(errno) : "bad arguments");
		return 2;
	}
	for (off_t off = 0; off < st.st_size; off += (off_t)(stride * PAGE)) {
		off_t start = off + (off_t)(keep * PAGE);
		off_t len = (off_t)((stride - keep) * PAGE);

		if (start >= st.st_size)
			break;
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      start, len)) {
			fprintf(stderr, "pf-punch: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
		punched += stride - keep;
	}
	close(fd);
	printf("%llu\n", punched);
	return 0;
}
