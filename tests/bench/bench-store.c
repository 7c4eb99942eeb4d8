// SPDX-License-Identifier: MIT
/*
 * bench-store - page store throughput and memory on a file of pages.
 *
 *   bench-store [-t THREADS] [-r REPS] [-f inline|scan|off] [-H HUGE]
 *               [-F] [-R BYTES|none] FILE
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
 *        read_cpu_mbs=... (medians of REPS) and the per-rep wall figures;
 *        write_sys_us, write_faults: the writers' system time (us) and
 *        minor faults per page written
 *   mem  the store's statistics after writing the set once with one thread
 *        (the first rep): orig_data_size compr_data_size mem_used_total ...
 *   pagecost  what a new page of anonymous memory costs the host, in us
 *        (page_cost(): the pool's way, a plain first write, THP), medians;
 *        host=dear when the pool's way costs DEAR_PAGE_US or more (a
 *        virtual machine with shadow page tables), cheap otherwise; thp=
 *        the transparent huge page mode (the pool's arena never uses huge
 *        pages: its figures do not depend on it)
 *   breakdown  us per page of the set, one thread: same_us, hash_us,
 *        compress_us, copy_us (each stage timed alone over the set:
 *        stages_measure()), pool_us (pool_alloc_within() with the copy
 *        into a fresh pool, pool_sys_us and pool_faults of it), write_us
 *        (the store's write, CPU time per page), newpage_us (of it, the
 *        writer's system time: faulting in new memory), write_faults,
 *        newpage_dear_us (those faults at a dear host's 6.4 us), rest_us
 *        (write_us minus the stages and newpage_us: the store's own work),
 *        pool_pages (new pool pages per page written), refill_us (CPU of
 *        the pool's refill thread per page, on another core), refill=,
 *        reserve= (the settings)
 *   lz4  the host's own speed, as a yardstick that does not depend on the
 *        machine: liblz4 alone compressing every page of the set
 *        separately (LZ4_compress_default, as zram does) and decompressing
 *        it again, one thread, median of REPS; uncompressed bytes per second
 *
 * -H sets the huge threshold (default: the store's default), -f the fold
 * mode (default inline), -F turns the pool's background refill on (off
 * by default, as in the store), -R sets the pool's reserve (bytes, or
 * none). With -R none the store gets its new pages as before issue 21.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>

#include <xxhash.h>

#include "codec.h"
#include "pool.h"
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
	double sys;		/* of them, system time */
	uint64_t faults;	/* minor faults this thread took */
};

/* This thread's system time (seconds) and minor faults. */
static double thread_sys(uint64_t *faults)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	*faults = (uint64_t)ru.ru_minflt;
	return (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

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
	double c0, s0;
	uint64_t i, f0, f1;

	pthread_barrier_wait(j->start);
	s0 = thread_sys(&f0);
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
	j->sys = thread_sys(&f1) - s0;
	j->faults = f1 - f0;
	pthread_barrier_wait(j->start);
	free(buf);
	return NULL;
}

/* The last phase's worker threads: system seconds and minor faults. */
static double last_sys;
static uint64_t last_faults;

/* Run one phase (write or read) with nthreads; returns wall seconds and
 * the worker threads' CPU seconds in *cpu (system seconds and faults in
 * last_sys, last_faults). */
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
	last_sys = 0;
	last_faults = 0;
	for (t = 0; t < nthreads; t++) {
		pthread_join(jobs[t].thread, NULL);
		*cpu += jobs[t].cpu;
		last_sys += jobs[t].sys;
		last_faults += jobs[t].faults;
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

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * What stands between a page and its compression, each stage timed alone
 * over the whole set, one thread, in us per page of the set (so the
 * stages add up to a page's share of the write time): the same-filled
 * check (every page), XXH3 for the fold index, LZ4 into the scratch
 * buffer and the copy of the result into resident memory (pages that are
 * not same-filled), and pool_alloc_within() with the copy into a fresh
 * pool (duplicates included: the store folds them) with the minor faults
 * and system time that pass took. Medians of reps.
 */
struct stages {
	double same, hash, compress, copy, pool, pool_sys;
	uint64_t pool_faults;
};

static int cmp_double(const void *a, const void *b);

static double stage_median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static int stages_measure(const unsigned char *pages, uint64_t npages,
			  unsigned int reps, const struct store_config *cfg,
			  struct stages *out)
{
	double t[6][MAX_REPS];
	unsigned int *size = malloc(npages * sizeof(*size));
	unsigned char *cbuf = malloc(npages * PG);
	pool_handle_t *h = malloc(npages * sizeof(*h));
	uint64_t i, nobj = 0, off, f0, f1, faults[MAX_REPS];
	volatile uint64_t sink = 0;
	char *dst;

	if (!size || !cbuf || !h)
		return -1;
	memset(h, 0, npages * sizeof(*h));
	dst = malloc(npages * PG);
	if (!dst)
		return -1;
	memset(dst, 0, npages * PG);	/* resident before timing */
	for (unsigned int r = 0; r < reps; r++) {
		uint64_t pattern;
		double t0, s0;
		struct pool *pool;

		t0 = now();
		for (i = 0; i < npages; i++)
			size[i] = codec_same_filled(pages + i * PG, &pattern);
		t[0][r] = now() - t0;
		t0 = now();
		for (i = 0; i < npages; i++)
			if (!size[i])
				sink += XXH3_64bits(pages + i * PG, PG);
		t[1][r] = now() - t0;
		t0 = now();
		for (i = 0; i < npages; i++) {
			if (size[i]) {
				size[i] = 0;
				continue;
			}
			size[i] = codec_compress(pages + i * PG, cbuf + i * PG,
						 STORE_PAGE_SIZE * 7 / 8 - 1);
			if (!size[i])
				size[i] = PG;	/* stored raw */
		}
		t[2][r] = now() - t0;
		t0 = now();
		for (i = 0, off = 0; i < npages; i++) {
			if (!size[i])
				continue;
			memcpy(dst + off, size[i] == PG ? pages + i * PG :
			       cbuf + i * PG, size[i]);
			off += size[i];
		}
		t[3][r] = now() - t0;
		{
			/* As the store would make it (store_create()). */
			struct pool_config pc = {
				.refill = cfg->refill,
				.reserve_bytes =
					cfg->pool_reserve == STORE_POOL_RESERVE_NONE ? 0 :
					cfg->pool_reserve ? cfg->pool_reserve :
					STORE_POOL_RESERVE_DEFAULT,
			};

			pool = pool_create(&pc);
		}
		if (!pool)
			return -1;
		s0 = thread_sys(&f0);
		t0 = now();
		for (i = 0, nobj = 0; i < npages; i++) {
			if (!size[i])
				continue;
			if (pool_alloc_within(pool, size[i], 0, size[i] == PG ?
					      pages + i * PG : cbuf + i * PG,
					      &h[nobj++]))
				return -1;
		}
		t[4][r] = now() - t0;
		t[5][r] = thread_sys(&f1) - s0;
		faults[r] = f1 - f0;
		pool_destroy(pool);
	}
	out->same = stage_median(t[0], reps) * 1e6 / npages;
	out->hash = stage_median(t[1], reps) * 1e6 / npages;
	out->compress = stage_median(t[2], reps) * 1e6 / npages;
	out->copy = stage_median(t[3], reps) * 1e6 / npages;
	out->pool = stage_median(t[4], reps) * 1e6 / npages;
	out->pool_sys = stage_median(t[5], reps) * 1e6 / npages;
	qsort(faults, reps, sizeof(*faults), cmp_u64);
	out->pool_faults = faults[reps / 2];
	free(size);
	free(cbuf);
	free(h);
	free(dst);
	(void)sink;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* From print_mem(): the refill thread's CPU us during the first write,
 * the pool's pages after it. */
static double mem_refill_us;
static uint64_t mem_pool_pages;

static void print_mem(struct store *st)
{
	struct store_stats s;

	store_get_stats(st, &s);
	printf("mem orig_data_size=%llu compr_data_size=%llu mem_used_total=%llu "
	       "same_pages=%llu pages_folded=%llu fold_objs=%llu huge_pages=%llu "
	       "meta_bytes=%llu fold_index_bytes=%llu pool_pages=%llu "
	       "pool_objs=%llu frag_pct=%u fold_hits=%llu fold_false=%llu "
	       "pool_reserve_bytes=%llu pool_refill_pages=%llu "
	       "pool_writer_pages=%llu pool_ready_hits=%llu "
	       "pool_refill_cpu_us=%.0f\n",
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
	       (unsigned long long)s.fold_false,
	       (unsigned long long)s.pool_reserve_bytes,
	       (unsigned long long)s.pool_refill_pages,
	       (unsigned long long)s.pool_writer_pages,
	       (unsigned long long)s.pool_ready_hits,
	       s.pool_refill_cpu_ns / 1e3);
	mem_refill_us = s.pool_refill_cpu_ns / 1e3;
	mem_pool_pages = s.pool_pages;
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

/* A host whose new page (populate2) costs this much is "dear" (shadow page
 * tables: 6.3-6.5 us measured on one); DEAR_HOST_US prices the writer's own
 * faults as such a host would. */
#define DEAR_PAGE_US 3.0
#define DEAR_HOST_US 6.4

/* The transparent huge page mode: always, madvise, never or "none". */
static const char *thp_mode(void)
{
	static char mode[16] = "none";
	char buf[128], *l, *r;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return mode;
	if (fgets(buf, sizeof(buf), f) && (l = strchr(buf, '[')) &&
	    (r = strchr(l, ']')) && r - l - 1 < (long)sizeof(mode)) {
		memcpy(mode, l + 1, (size_t)(r - l - 1));
		mode[r - l - 1] = 0;
	}
	fclose(f);
	return mode;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-store [-t \"1 2\"] [-r REPS] "
		"[-f inline|scan|off] [-H HUGE] [-F] [-R BYTES|none] FILE\n");
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
	double one_write_us = 0, one_sys_us = 0, one_faults = 0;

	while ((opt = getopt(argc, argv, "t:r:f:H:FR:")) != -1) {
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
		case 'F':
			cfg.refill = true;
			break;
		case 'R':
			cfg.pool_reserve = strcmp(optarg, "none") ?
				strtoull(optarg, NULL, 0) :
				STORE_POOL_RESERVE_NONE;
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
		double ws[MAX_REPS];
		uint64_t wf[MAX_REPS];
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
			ws[r] = last_sys;
			wf[r] = last_faults;
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
		qsort(ws, reps, sizeof(double), cmp_double);
		qsort(wf, reps, sizeof(uint64_t), cmp_u64);
		printf(" write_mbs=%.0f read_mbs=%.0f write_cpu_mbs=%.0f "
		       "read_cpu_mbs=%.0f write_sys_us=%.3f write_faults=%.3f "
		       "verify=ok\n",
		       npages * PG / wr[reps / 2] / 1e6,
		       npages * PG / rd[reps / 2] / 1e6,
		       npages * PG / wc[reps / 2] / 1e6,
		       npages * PG / rc[reps / 2] / 1e6,
		       ws[reps / 2] * 1e6 / npages,
		       (double)wf[reps / 2] / npages);
		if (nthreads == 1) {
			one_write_us = wc[reps / 2] * 1e6 / npages;
			one_sys_us = ws[reps / 2] * 1e6 / npages;
			one_faults = (double)wf[reps / 2] / npages;
		}
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
		       "thp_us=%.2f host=%s thp=%s\n", COST_PAGES, c[0][reps / 2],
		       c[1][reps / 2], c[2][reps / 2],
		       c[0][reps / 2] >= DEAR_PAGE_US ? "dear" : "cheap",
		       thp_mode());
	}
	{
		struct stages sg;

		if (stages_measure(pages, npages, reps, &cfg, &sg)) {
			fprintf(stderr, "bench-store: stages failed\n");
			return 1;
		}
		/* us per page of the set, one thread; write_us is the store's
		 * (CPU time), newpage_us what the writer itself spent in the
		 * kernel (faulting in new pool pages: the store makes no other
		 * system call on the write path), rest_us the store's own
		 * work (fold index, slots, locks, pool bookkeeping) */
		printf("breakdown same_us=%.3f hash_us=%.3f compress_us=%.3f "
		       "copy_us=%.3f pool_us=%.3f pool_sys_us=%.3f "
		       "pool_faults=%.3f write_us=%.3f newpage_us=%.3f "
		       "write_faults=%.3f newpage_dear_us=%.3f rest_us=%.3f "
		       "pool_pages=%.3f refill_us=%.3f refill=%s reserve=%llu\n",
		       sg.same, sg.hash, sg.compress, sg.copy, sg.pool,
		       sg.pool_sys, (double)sg.pool_faults / npages,
		       one_write_us, one_sys_us, one_faults,
		       /* the writer's faults at a dear host's price */
		       one_faults * DEAR_HOST_US,
		       one_write_us - one_sys_us - sg.same - sg.hash -
		       sg.compress - sg.copy,
		       (double)mem_pool_pages / npages,
		       /* CPU of the refill thread (another core), per page */
		       mem_refill_us / npages,
		       cfg.refill ? "on" : "off",
		       (unsigned long long)(cfg.pool_reserve ==
			STORE_POOL_RESERVE_NONE ? 0 : cfg.pool_reserve ?
			cfg.pool_reserve : STORE_POOL_RESERVE_DEFAULT));
	}
	free(pages);
	free(buf);
	return 0;
}
