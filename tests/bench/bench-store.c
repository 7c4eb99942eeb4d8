// SPDX-License-Identifier: MIT
/*
 * bench-store - page store throughput and memory on a file of pages.
 *
 *   bench-store [-t THREADS] [-r REPS] [-f inline|scan|off] [-H HUGE] FILE
 *
 * FILE holds whole 4 KiB pages (tests/bench/datasets.sh makes them). For
 * each thread count (default "1 2"), REPS times (default 3): a fresh store
 * with default settings (background compaction on), one file, the pages
 * split into one contiguous range per thread; every thread writes its range
 * page by page (timed), then reads it back (timed), then the whole file is
 * compared with the input (not timed; any difference ends the run with
 * exit status 2). Throughput counts uncompressed bytes: pages * 4096 / wall
 * time from the start barrier until the last thread is done, and per CPU
 * second the worker threads used (user + sys, CLOCK_THREAD_CPUTIME_ID): on
 * a shared machine the first says what the run got, the second what a
 * busy core does. The median rep is printed.
 *
 * Output, one line each, name=value pairs:
 *   run  threads=T write_mbs=... read_mbs=... write_cpu_mbs=...
 *        read_cpu_mbs=... (medians of REPS) and the per-rep wall figures
 *   mem  the store's statistics after writing the set once with one thread
 *        (the first rep): orig_data_size compr_data_size mem_used_total ...
 *   pagecost  what a new page of anonymous memory costs the host, in us
 *        (page_cost(): the pool's way, a plain first write, THP), medians
 *   lz4  the host's own speed, as a yardstick that does not depend on the
 *        machine: liblz4 alone compressing every page of the set
 *        separately (LZ4_compress_default, as zram does) and decompressing
 *        it again, one thread, median of REPS; uncompressed bytes per second
 *
 * -H sets the huge threshold (default: the store's default), -f the fold
 * mode (default inline).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>

#include "store.h"

#define PG STORE_PAGE_SIZE
#define MAX_THREADS 16
#define MAX_REPS 15

struct job {
	pthread_t thread;
	struct store_file *f;
	const unsigned char *pages;
	uint64_t first, count;
	pthread_barrier_t *start;
	int err;
	uint64_t sum;		/* keeps the reads from being optimized out */
	bool do_read;
	double cpu;		/* CPU seconds this thread used (user + sys) */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	unsigned char *buf = aligned_alloc(64, PG);
	double c0;
	uint64_t i;

	pthread_barrier_wait(j->start);
	c0 = thread_cpu();
	for (i = j->first; i < j->first + j->count && !j->err; i++) {
		if (j->do_read) {
			j->err = store_read(j->f, i, buf);
			j->sum += buf[i % PG];
		} else {
			j->err = store_write(j->f, i, j->pages + i * PG);
		}
	}
	j->cpu = thread_cpu() - c0;
	pthread_barrier_wait(j->start);
	free(buf);
	return NULL;
}

/* Run one phase (write or read) with nthreads; returns wall seconds and
 * the worker threads' CPU seconds in *cpu. */
static double phase(struct store_file *f, const unsigned char *pages,
		    uint64_t npages, unsigned int nthreads, bool do_read,
		    double *cpu)
{
	struct job jobs[MAX_THREADS];
	pthread_barrier_t start;
	unsigned int t;
	double t0, t1;

	pthread_barrier_init(&start, NULL, nthreads + 1);
	for (t = 0; t < nthreads; t++) {
		jobs[t] = (struct job){
			.f = f, .pages = pages, .start = &start,
			.first = npages * t / nthreads,
			.count = npages * (t + 1) / nthreads - npages * t / nthreads,
			.do_read = do_read,
		};
		pthread_create(&jobs[t].thread, NULL, job_main, &jobs[t]);
	}
	pthread_barrier_wait(&start);
	t0 = now();
	pthread_barrier_wait(&start);
	t1 = now();
	*cpu = 0;
	for (t = 0; t < nthreads; t++) {
		pthread_join(jobs[t].thread, NULL);
		*cpu += jobs[t].cpu;
		if (jobs[t].err) {
			fprintf(stderr, "bench-store: %s failed: %s\n",
				do_read ? "read" : "write",
				strerror(-jobs[t].err));
			exit(1);
		}
	}
	pthread_barrier_destroy(&start);
	return t1 - t0;
}

/* Plain liblz4 on the same pages: compress each page alone into dst, then
 * decompress each one (timed), then check them all (not timed). Seconds of
 * each timed pass into *c and *d. */
static int lz4_pass(const unsigned char *pages, uint64_t npages,
		    char *dst, int *len, double *c, double *d)
{
	unsigned char out[PG];
	double t0 = now();
	uint64_t i;

	for (i = 0; i < npages; i++) {
		len[i] = LZ4_compress_default((const char *)pages + i * PG,
					      dst + i * LZ4_COMPRESSBOUND(PG),
					      PG, LZ4_COMPRESSBOUND(PG));
		if (len[i] <= 0)
			return -1;
	}
	*c = now() - t0;
	t0 = now();
	for (i = 0; i < npages; i++) {
		if (LZ4_decompress_safe(dst + i * LZ4_COMPRESSBOUND(PG),
					(char *)out, len[i], PG) != PG)
			return -1;
	}
	*d = now() - t0;
	for (i = 0; i < npages; i++) {
		if (LZ4_decompress_safe(dst + i * LZ4_COMPRESSBOUND(PG),
					(char *)out, len[i], PG) != PG ||
		    memcmp(out, pages + i * PG, PG))
			return -1;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void print_mem(struct store *st)
{
	struct store_stats s;

	store_get_stats(st, &s);
	printf("mem orig_data_size=%llu compr_data_size=%llu mem_used_total=%llu "
	       "same_pages=%llu pages_folded=%llu fold_objs=%llu huge_pages=%llu "
	       "meta_bytes=%llu fold_index_bytes=%llu pool_pages=%llu "
	       "pool_objs=%llu frag_pct=%u fold_hits=%llu fold_false=%llu\n",
	       (unsigned long long)s.orig_data_size,
	       (unsigned long long)s.compr_data_size,
	       (unsigned long long)s.mem_used_total,
	       (unsigned long long)s.same_pages,
	       (unsigned long long)s.pages_folded,
	       (unsigned long long)s.fold_objs,
	       (unsigned long long)s.huge_pages,
	       (unsigned long long)s.meta_bytes,
	       (unsigned long long)s.fold_index_bytes,
	       (unsigned long long)s.pool_pages,
	       (unsigned long long)s.pool_objs, s.frag_pct,
	       (unsigned long long)s.fold_hits,
	       (unsigned long long)s.fold_false);
}

/*
 * What a new page of anonymous memory costs this host, in us per page,
 * the way the pool's spans get them: MADV_POPULATE_WRITE of 2 pages at a
 * time, then a first write of 1 KiB into each page (method 0); a plain
 * first write (1); 2 MiB at a time in a MADV_HUGEPAGE range, then the
 * writes (2; -1 where THP or MADV_POPULATE_WRITE is not available). On a
 * virtual machine with shadow page tables the first write after the
 * kernel populated a page can cost as much as the populate itself.
 */
#define COST_PAGES 16384u
#define THP_BYTES (2u << 20)

static double page_cost(int method)
{
	size_t len = (size_t)COST_PAGES * PG;
	char *raw = mmap(NULL, len + THP_BYTES, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *a;
	size_t step = method == 2 ? THP_BYTES / PG : 2;
	double t0, t;
	static char src[1024];

	if (raw == MAP_FAILED)
		return -1;
	a = (char *)(((uintptr_t)raw + THP_BYTES - 1) & ~(uintptr_t)(THP_BYTES - 1));
	if (method == 2 && madvise(a, len, MADV_HUGEPAGE)) {
		munmap(raw, len + THP_BYTES);
		return -1;
	}
	t0 = now();
	for (size_t i = 0; i < COST_PAGES; i += step) {
		if (method != 1 &&
		    madvise(a + i * PG, step * PG, MADV_POPULATE_WRITE)) {
			munmap(raw, len + THP_BYTES);
			return -1;
		}
		for (size_t j = i; j < i + step && j < COST_PAGES; j++)
			memcpy(a + j * PG, src, sizeof(src));
	}
	t = now() - t0;
	munmap(raw, len + THP_BYTES);
	return t * 1e6 / COST_PAGES;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-store [-t \"1 2\"] [-r REPS] "
		"[-f inline|scan|off] [-H HUGE] FILE\n");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *threads = "1 2", *p;
	struct store_config cfg = { 0 };
	unsigned int reps = 3, r, nthreads;
	unsigned char *pages, *buf;
	uint64_t npages, i;
	struct stat sb;
	int opt, fd;

	while ((opt = getopt(argc, argv, "t:r:f:H:")) != -1) {
		switch (opt) {
		case 't':
			threads = optarg;
			break;
		case 'r':
			reps = (unsigned int)atoi(optarg);
			if (reps < 1 || reps > MAX_REPS)
				usage();
			break;
		case 'f':
			if (!strcmp(optarg, "inline"))
				cfg.fold = STORE_FOLD_INLINE;
			else if (!strcmp(optarg, "scan"))
				cfg.fold = STORE_FOLD_SCAN;
			else if (!strcmp(optarg, "off"))
				cfg.fold = STORE_FOLD_OFF;
			else
				usage();
			break;
		case 'H':
			cfg.huge_threshold = (unsigned int)atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind + 1 != argc)
		usage();
	fd = open(argv[optind], O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) || sb.st_size == 0 || sb.st_size % PG) {
		fprintf(stderr, "bench-store: %s: not a file of whole pages\n",
			argv[optind]);
		return 1;
	}
	npages = (uint64_t)sb.st_size / PG;
	/* A private copy in anonymous memory, faulted in before timing. */
	pages = malloc((size_t)sb.st_size);
	buf = malloc(PG);
	if (!pages || !buf) {
		fprintf(stderr, "bench-store: out of memory\n");
		return 1;
	}
	for (i = 0; i < (uint64_t)sb.st_size;) {
		ssize_t n = pread(fd, pages + i, (size_t)sb.st_size - i, (off_t)i);

		if (n <= 0) {
			fprintf(stderr, "bench-store: read %s failed\n",
				argv[optind]);
			return 1;
		}
		i += (uint64_t)n;
	}
	close(fd);

	for (p = threads; *p; ) {
		double wr[MAX_REPS], rd[MAX_REPS], wc[MAX_REPS], rc[MAX_REPS];
		char *end;

		nthreads = (unsigned int)strtoul(p, &end, 10);
		if (end == p)
			break;
		p = end;
		while (*p == ' ' || *p == ',')
			p++;
		if (nthreads < 1 || nthreads > MAX_THREADS)
			usage();
		for (r = 0; r < reps; r++) {
			struct store *st = store_create(&cfg);
			struct store_file *f = st ? store_file_create(st) : NULL;

			if (!f) {
				fprintf(stderr, "bench-store: store_create failed\n");
				return 1;
			}
			wr[r] = phase(f, pages, npages, nthreads, false, &wc[r]);
			if (nthreads == 1 && r == 0)
				print_mem(st);
			rd[r] = phase(f, pages, npages, nthreads, true, &rc[r]);
			for (i = 0; i < npages; i++) {
				if (store_read(f, i, buf) ||
				    memcmp(buf, pages + i * PG, PG)) {
					fprintf(stderr, "bench-store: page %llu "
						"differs after the run\n",
						(unsigned long long)i);
					return 2;
				}
			}
			store_destroy(st);
		}
		printf("run threads=%u pages=%llu", nthreads,
		       (unsigned long long)npages);
		for (r = 0; r < reps; r++)
			printf(" write%u_mbs=%.0f read%u_mbs=%.0f", r,
			       npages * PG / wr[r] / 1e6, r,
			       npages * PG / rd[r] / 1e6);
		qsort(wr, reps, sizeof(double), cmp_double);
		qsort(rd, reps, sizeof(double), cmp_double);
		qsort(wc, reps, sizeof(double), cmp_double);
		qsort(rc, reps, sizeof(double), cmp_double);
		/* wall: bytes / elapsed time; cpu: bytes / CPU seconds of the
		 * workers, i.e. per busy core, whatever else the machine ran */
		printf(" write_mbs=%.0f read_mbs=%.0f write_cpu_mbs=%.0f "
		       "read_cpu_mbs=%.0f verify=ok\n",
		       npages * PG / wr[reps / 2] / 1e6,
		       npages * PG / rd[reps / 2] / 1e6,
		       npages * PG / wc[reps / 2] / 1e6,
		       npages * PG / rc[reps / 2] / 1e6);
		fflush(stdout);
	}
	{
		double c[MAX_REPS], d[MAX_REPS];
		char *dst = malloc(npages * LZ4_COMPRESSBOUND(PG));
		int *len = malloc(npages * sizeof(*len));

		if (!dst || !len) {
			fprintf(stderr, "bench-store: out of memory\n");
			return 1;
		}
		for (r = 0; r < reps; r++) {
			if (lz4_pass(pages, npages, dst, len, &c[r], &d[r])) {
				fprintf(stderr, "bench-store: plain LZ4 failed\n");
				return 2;
			}
		}
		qsort(c, reps, sizeof(double), cmp_double);
		qsort(d, reps, sizeof(double), cmp_double);
		printf("lz4 pages=%llu compress_mbs=%.0f decompress_mbs=%.0f\n",
		       (unsigned long long)npages,
		       npages * PG / c[reps / 2] / 1e6,
		       npages * PG / d[reps / 2] / 1e6);
		free(dst);
		free(len);
	}
	{
		double c[3][MAX_REPS];
		int m;

		for (r = 0; r < reps; r++)
			for (m = 0; m < 3; m++)
				c[m][r] = page_cost(m);
		for (m = 0; m < 3; m++)
			qsort(c[m], reps, sizeof(double), cmp_double);
		printf("pagecost pages=%u populate2_us=%.2f touch_us=%.2f "
		       "thp_us=%.2f\n", COST_PAGES, c[0][reps / 2],
		       c[1][reps / 2], c[2][reps / 2]);
	}
	free(pages);
	free(buf);
	return 0;
}
