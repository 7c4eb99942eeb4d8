// SPDX-License-Identifier: MIT
/*
 * pf-mmap - shared and private mappings of a file, checked against read(2)
 * and write(2) of the same file, for the tests.
 *
 *   pf-mmap FILE
 *
 * FILE is created (or truncated) at 1 MiB + 123 bytes (the last page
 * partly past the end). Prints one line per check, "ok N - what" or
 * "not ok N - what (details)", TAP without a plan (the caller counts); exit
 * status 0 only if every check passed, 2 if a mapping could not be made at
 * all (the error is printed).
 *
 * Checks: a write through one MAP_SHARED mapping is seen through a second
 * mapping of another descriptor at once; by pread(2) before and after
 * msync(MS_SYNC); a pwrite(2) is seen through the mappings; a MAP_PRIVATE
 * mapping sees the file and its own writes stay its own; after munmap and
 * close, a new descriptor reads what was written; the bytes past the end of
 * the file in the last page read as zeros.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define SIZE (256 * PAGE + 123)
#define MAPLEN (257 * PAGE)

static int n, failed;

static void check(bool cond, const char *what, const char *detail)
{
	n++;
	if (cond) {
		printf("ok %d - %s\n", n, what);
		return;
	}
	failed++;
	printf("not ok %d - %s (%s)\n", n, what, detail ? detail : "");
}

/* The bytes page i should hold after the mapped writes. */
static void stamp(char *p, int i, const char *tag)
{
	snprintf(p, 64, "%s page %d", tag, i);
}

int main(int argc, char **argv)
{
	char buf[PAGE], want[64], detail[160];
	char *a, *b, *priv;
	int fd, fd2, i, bad;

	if (argc != 2) {
		fprintf(stderr, "usage: pf-mmap FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	fd2 = open(argv[1], O_RDWR);
	if (fd < 0 || fd2 < 0 || ftruncate(fd, SIZE)) {
		printf("not ok 1 - open and size %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	a = mmap(NULL, MAPLEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, MAPLEN, PROT_READ, MAP_SHARED, fd2, 0);
	if (a == MAP_FAILED || b == MAP_FAILED) {
		printf("not ok 1 - mmap(MAP_SHARED) of %s: %s\n", argv[1],
		       strerror(errno));
		return 2;
	}
	check(true, "two MAP_SHARED mappings made", NULL);

	for (i = 0; i < 256; i++)
		stamp(a + (size_t)i * PAGE, i, "mapped");
	a[SIZE - 1] = 'z';
	bad = 0;
	for (i = 0; i < 256; i++) {
		stamp(want, i, "mapped");
		bad += strcmp(b + (size_t)i * PAGE, want) != 0;
	}
	snprintf(detail, sizeof(detail), "%d pages differ", bad);
	check(!bad, "writes through one mapping are seen through the other", detail);

	bad = 0;
	for (i = 0; i < 256; i += 17) {
		stamp(want, i, "mapped");
		if (pread(fd2, buf, 64, (off_t)i * PAGE) != 64 || strcmp(buf, want))
			bad++;
	}
	snprintf(detail, sizeof(detail), "%d pages differ", bad);
	check(!bad, "pread sees the mapped writes before msync", detail);
	check(msync(a, MAPLEN, MS_SYNC) == 0, "msync(MS_SYNC)", strerror(errno));
	bad = 0;
	for (i = 0; i < 256; i++) {
		stamp(want, i, "mapped");
		if (pread(fd2, buf, 64, (off_t)i * PAGE) != 64 || strcmp(buf, want))
			bad++;
	}
	snprintf(detail, sizeof(detail), "%d pages differ", bad);
	check(!bad, "pread sees every mapped write after msync", detail);

	stamp(want, 100, "written");
	check(pwrite(fd, want, 64, 100 * PAGE) == 64, "pwrite into the mapped range",
	      strerror(errno));
	check(strcmp(a + 100 * PAGE, want) == 0 && strcmp(b + 100 * PAGE, want) == 0,
	      "both mappings see the pwrite", b + 100 * PAGE);

	priv = mmap(NULL, MAPLEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd2, 0);
	check(priv != MAP_FAILED, "a MAP_PRIVATE mapping", strerror(errno));
	if (priv != MAP_FAILED) {
		stamp(want, 5, "mapped");
		check(strcmp(priv + 5 * PAGE, want) == 0,
		      "the private mapping sees the file", priv + 5 * PAGE);
		strcpy(priv + 5 * PAGE, "private");
		check(pread(fd2, buf, 64, 5 * PAGE) == 64 && strcmp(buf, want) == 0 &&
		      strcmp(a + 5 * PAGE, want) == 0,
		      "a write to the private mapping stays private", buf);
		munmap(priv, MAPLEN);
	}
	check(b[SIZE - 1] == 'z' && b[SIZE] == 0 && b[MAPLEN - 1] == 0,
	      "the last page: data up to the end, zeros past it", NULL);

	munmap(a, MAPLEN);
	munmap(b, MAPLEN);
	close(fd);
	close(fd2);
	fd = open(argv[1], O_RDONLY);
	bad = 0;
	for (i = 0; i < 256; i++) {
		stamp(want, i, i == 100 ? "written" : "mapped");
		if (pread(fd, buf, 64, (off_t)i * PAGE) != 64 || strcmp(buf, want))
			bad++;
	}
	snprintf(detail, sizeof(detail), "%d pages differ", bad);
	check(!bad, "after munmap and close, a new descriptor reads every page",
	      detail);
	check(pread(fd, buf, 1, SIZE - 1) == 1 && buf[0] == 'z',
	      "... and the last byte", NULL);
	close(fd);
	return failed ? 1 : 0;
}
