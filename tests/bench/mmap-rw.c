// SPDX-License-Identifier: MIT
/*
 * mmap-rw - write a file's pages through a shared mapping, then read them
 * back through a fresh one, timed: the shared-mmap figures of
 * bench-ramdisk, pagefold beside tmpfs.
 *
 *   mmap-rw DATA FILE
 *
 * DATA's pages are copied into FILE (created at DATA's size) through a
 * MAP_SHARED mapping and msync(MS_SYNC)ed; the mapping is dropped and the
 * file's page cache with it (POSIX_FADV_DONTNEED: on tmpfs the page cache
 * is the storage and stays), then FILE is mapped again and every page read
 * and compared with DATA. Prints "write_mbs=W read_mbs=R pages=N"; exit 1
 * if a byte differs, 2 on a usage or system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "mmap-rw: %s: %s\n", what, strerror(errno));
	return 2;
}

int main(int argc, char **argv)
{
	const unsigned char *data;
	unsigned char *m;
	struct stat sb;
	size_t size, i, bad = 0;
	double t0, tw, tr;
	int dfd, fd;

	if (argc != 3) {
		fprintf(stderr, "usage: mmap-rw DATA FILE\n");
		return 2;
	}
	dfd = open(argv[1], O_RDONLY);
	if (dfd < 0 || fstat(dfd, &sb))
		return fail(argv[1]);
	size = (size_t)sb.st_size / PAGE * PAGE;
	data = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, dfd, 0);
	fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (data == MAP_FAILED || fd < 0 || ftruncate(fd, (off_t)size))
		return fail(argv[2]);

	t0 = now();
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return fail("mmap for writing");
	for (i = 0; i < size; i += PAGE)
		memcpy(m + i, data + i, PAGE);
	if (msync(m, size, MS_SYNC))
		return fail("msync");
	tw = now() - t0;
	munmap(m, size);
	posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_DONTNEED);

	t0 = now();
	m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return fail("mmap for reading");
	for (i = 0; i < size; i += PAGE)
		bad += memcmp(m + i, data + i, PAGE) != 0;
	tr = now() - t0;
	munmap(m, size);
	close(fd);
	printf("write_mbs=%.0f read_mbs=%.0f pages=%zu bad=%zu\n",
	       (double)size / tw / 1e6, (double)size / tr / 1e6, size / PAGE, bad);
	return bad ? 1 : 0;
}
