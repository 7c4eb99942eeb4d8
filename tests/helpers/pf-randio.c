// SPDX-License-Identifier: MIT
/*
 * pf-randio - apply the same random writes (and some punched holes) to a
 * file on pagefold and to a reference copy elsewhere, so the test can cmp
 * them.
 *
 *   pf-randio SRC TARGET REF OPS MAX_SIZE SEED
 *
 * Each operation writes bytes taken from a random offset of SRC (a dump of
 * real memory) at a random offset below MAX_SIZE, with a random length
 * from 1 byte to 512 KiB (half of them page-aligned in offset and length,
 * as swap and databases write); one in ten punches a random hole instead
 * (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE). Both files are opened with
 * O_DIRECT off: pagefold itself serves every file with direct I/O.
 * Exit status 0 when every call on both files did the same thing.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testdata.h"

#define PAGE 4096u

static uint64_t state;

static uint64_t rnd(void)
{
	return td_mix(state += 0x9e3779b97f4a7c15ull);
}

int main(int argc, char **argv)
{
	unsigned char *src, *p;
	uint64_t src_size, ops, max_size;
	int sfd, tfd, rfd;
	struct stat st;
	ssize_t n;

	if (argc != 7) {
		fprintf(stderr, "usage: %s SRC TARGET REF OPS MAX_SIZE SEED\n", argv[0]);
		return 2;
	}
	ops = strtoull(argv[4], NULL, 0);
	max_size = strtoull(argv[5], NULL, 0);
	state = strtoull(argv[6], NULL, 0);
	sfd = open(argv[1], O_RDONLY);
	tfd = open(argv[2], O_RDWR | O_CREAT, 0644);
	rfd = open(argv[3], O_RDWR | O_CREAT, 0644);
	if (sfd < 0 || tfd < 0 || rfd < 0 || fstat(sfd, &st) || st.st_size < (off_t)PAGE) {
		perror("pf-randio: open");
		return 1;
	}
	src_size = (uint64_t)st.st_size;
	src = malloc(src_size);
	if (!src)
		return 1;
	for (uint64_t done = 0; done < src_size; done += (uint64_t)n) {
		n = pread(sfd, src + done, src_size - done, (off_t)done);
		if (n <= 0)
			return 1;
	}

	for (uint64_t i = 0; i < ops; i++) {
		bool aligned = rnd() % 2;
		uint64_t len = 1 + rnd() % (512 * 1024);
		uint64_t off = rnd() % max_size;
		int r1, r2;

		if (aligned) {
			off &= ~(uint64_t)(PAGE - 1);
			len = (len + PAGE - 1) & ~(uint64_t)(PAGE - 1);
		}
		if (off + len > max_size)
			len = max_size - off;
		if (len == 0)
			continue;
		if (rnd() % 10 == 0) {
			r1 = fallocate(tfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       (off_t)off, (off_t)len);
			r2 = fallocate(rfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				       (off_t)off, (off_t)len);
			if (r1 || r2) {
				fprintf(stderr, "op %llu: punch %llu+%llu: %s / %s\n",
					(unsigned long long)i, (unsigned long long)off,
					(unsigned long long)len, r1 ? strerror(errno) : "ok",
					r2 ? "failed" : "ok");
				return 1;
			}
			continue;
		}
		if (len > src_size)
			len = src_size;
		p = src + rnd() % (src_size - len + 1);
		if (aligned)
			p = src + ((uint64_t)(p - src) & ~(uint64_t)(PAGE - 1));
		if (pwrite(tfd, p, len, (off_t)off) != (ssize_t)len ||
		    pwrite(rfd, p, len, (off_t)off) != (ssize_t)len) {
			fprintf(stderr, "op %llu: write %llu+%llu: %s\n",
				(unsigned long long)i, (unsigned long long)off,
				(unsigned long long)len, strerror(errno));
			return 1;
		}
	}
	if (fsync(tfd) || close(tfd) || close(rfd))
		return 1;
	free(src);
	close(sfd);
	return 0;
}
