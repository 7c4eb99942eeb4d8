// SPDX-License-Identifier: MIT
/*
 * pf-trickle - a sparse stream of small reads, as swap-ins of an idle
 * program make: COUNT 4 KiB reads at scattered page offsets of FILE, one
 * every GAP_US microseconds, through one open file.
 *
 *   pf-trickle FILE COUNT GAP_US
 *
 * Exit status 0 when every read returned a whole page, 1 otherwise.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

int main(int argc, char **argv)
{
	static char buf[PAGE];
	struct timespec gap;
	struct stat sb;
	long count, gap_us, pages, i;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: pf-trickle FILE COUNT GAP_US\n");
		return 1;
	}
	count = atol(argv[2]);
	gap_us = atol(argv[3]);
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) || sb.st_size < PAGE) {
		perror(argv[1]);
		return 1;
	}
	pages = sb.st_size / PAGE;
	gap.tv_sec = gap_us / 1000000;
	gap.tv_nsec = gap_us % 1000000 * 1000;
	for (i = 0; i < count; i++) {
		off_t page = (off_t)((i * 7919) % pages);

		if (pread(fd, buf, PAGE, page * PAGE) != PAGE) {
			fprintf(stderr, "pf-trickle: read %ld failed\n", i);
			return 1;
		}
		nanosleep(&gap, NULL);
	}
	close(fd);
	return 0;
}
