// SPDX-License-Identifier: MIT
/*
 * bench-pool - the pool allocator on the compressed sizes of real pages.
 *
 *   bench-pool [-r REPEAT] [-n PAIRS] [-t ROUNDS] [-s SEED] [-F FILE] PAGES
 *
 * PAGES is a file of raw 4096-byte pages (tests/bench/datasets.sh makes
 * them). Each page is compressed with LZ4_compress_default as the store
 * does: same-filled pages (one 8-byte word repeated) are skipped, they never
 * reach the pool; a page that does not compress below 3/4 of a page is kept
 * whole (4096 bytes). Then:
 *
 *   1. fill: one object per page (REPEAT times over, to model a larger
 *      pool with the same sizes), its compressed bytes written in;
 *   2. free a random half (seeded), then a full compaction (shrink);
 *   3. bytes in spans / live bytes after each step, the share of the pages
 *      the freed half held that came back, and the contents of the objects
 *      left checked against the pages;
 *   4. alloc+free pairs per second, 1 and 2 threads, each thread cycling
 *      through a ring of 4096 objects of the data set's sizes on the same
 *      pool (allocator work only, no data copied), ROUNDS times each, 1
 *      and 2 threads alternating (the result line gives medians, and the
 *      best of each, the least disturbed by others). Two measures: wall clock (total pairs /
 *      the slowest thread), and pairs per CPU-second of each thread, which
 *      on a shared machine separates what the threads cost each other
 *      (locks, cache lines) from whether a second CPU was free at all;
 *      cpu_scaling = 2 x (per-thread rate beside another) / (rate alone).
 *      Each round also runs 2 threads on 2 separate pools, sharing nothing:
 *      control_scaling is what the machine allowed at that moment, and
 *      cpu_control_scaling the same per CPU-second (cpu_scaling below it:
 *      what sharing the pool costs the threads).
 *
 * -F FILE writes the indices (0-based, in PAGES) of the freed half's pages,
 * one per line, so the same pages can be discarded from zram for the same
 * comparison (tests/bench/bench-pool does that; only with REPEAT 1).
 *
 * Output: "name: value" lines, then one "result:" line of name=value pairs.
 */
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <lz4.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE     4096u
#define HUGE_MIN (PAGE * 3 / 4)  /* as the store's default huge_threshold */
#define RING     4096u

struct obj {
	uint32_t page;       /* index in the file */
	uint32_t size;
	uint32_t data;       /* offset of its bytes in comp[] */
	pool_handle_t h;
};

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static double clock_secs(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_secs(CLOCK_MONOTONIC);
}

static bool same_filled(const uint8_t *p)
{
	uint64_t w, x;

	memcpy(&w, p, 8);
	for (unsigned int i = 8; i < PAGE; i += 8) {
		memcpy(&x, p + i, 8);
		if (x != w)
			return false;
	}
	return true;
}

static void die(const char *what)
{
	fprintf(stderr, "bench-pool: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---------------------------------------------------------- throughput */

struct thr {
	pthread_t tid;
	struct pool *pool;
	const uint32_t *sizes;
	uint32_t nr_sizes;
	uint64_t pairs, seed;
	int cpu;
	pool_handle_t ring[RING];
	double secs, cpu_secs;
	int err;
};

static pthread_barrier_t start_line;

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	uint64_t s = t->seed;
	double t0, c0;

	if (t->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	for (uint32_t i = 0; i < RING; i++)
		if (pool_alloc(t->pool, t->sizes[rnd(&s) % t->nr_sizes],
			       &t->ring[i]))
			t->err++;
	pthread_barrier_wait(&start_line);
	t0 = now();
	c0 = clock_secs(CLOCK_THREAD_CPUTIME_ID);
	for (uint64_t n = 0; n < t->pairs; n++) {
		uint32_t i = (uint32_t)n & (RING - 1);

		pool_free(t->pool, t->ring[i]);
		if (pool_alloc(t->pool, t->sizes[rnd(&s) % t->nr_sizes],
			       &t->ring[i]))
			t->err++;
	}
	t->secs = now() - t0;
	t->cpu_secs = clock_secs(CLOCK_THREAD_CPUTIME_ID) - c0;
	for (uint32_t i = 0; i < RING; i++)
		pool_free(t->pool, t->ring[i]);
	return NULL;
}

struct rate {
	double wall;     /* pairs per second, all threads: pairs / slowest */
	double cpu;      /* pairs per CPU-second of one thread, averaged */
};

/* With separate, each thread gets a pool of its own (a control: nothing
 * shared, so it shows what the machine allows at that moment). */
static struct rate run_threads(struct pool *pool, int nr, const uint32_t *sizes,
			       uint32_t nr_sizes, uint64_t pairs, int round,
			       bool separate)
{
	struct thr *t = calloc(nr, sizeof(*t));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct rate r = { 0, 0 };
	double slowest = 0;
	int err = 0;

	pthread_barrier_init(&start_line, NULL, nr);
	for (int i = 0; i < nr; i++) {
		t[i].pool = separate ? pool_create(NULL) : pool;
		if (!t[i].pool)
			die("pool_create");
		t[i].sizes = sizes;
		t[i].nr_sizes = nr_sizes;
		t[i].pairs = pairs;
		t[i].seed = 0x9e3779b97f4a7c15ull * (i + 1) + round;
		t[i].cpu = nr <= cpus ? i : -1;
		pthread_create(&t[i].tid, NULL, thr_main, &t[i]);
	}
	for (int i = 0; i < nr; i++) {
		pthread_join(t[i].tid, NULL);
		if (t[i].secs > slowest)
			slowest = t[i].secs;
		r.cpu += (double)pairs / t[i].cpu_secs / nr;
		err += t[i].err;
		if (separate)
			pool_destroy(t[i].pool);
	}
	pthread_barrier_destroy(&start_line);
	free(t);
	if (err) {
		fprintf(stderr, "bench-pool: %d allocations failed\n", err);
		exit(1);
	}
	r.wall = (double)pairs * nr / slowest;
	return r;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
	fprintf(stderr, "usage: bench-pool [-r REPEAT] [-n PAIRS] [-t ROUNDS] "
		"[-s SEED] [-F FREED_LIST] PAGES\n");
	exit(1);
}

int main(int argc, char **argv)
{
	unsigned int repeat = 1, rounds = 5;
	uint64_t pairs = 5000000;
	const char *freed_list = NULL;
	struct pool_stats *st = malloc(sizeof(*st));
	struct pool *pool;
	struct obj *o;
	uint8_t *file, *comp, out[LZ4_COMPRESSBOUND(PAGE)];
	uint32_t *sizes, nr_pages, nr_obj = 0, nr_same = 0, nr_huge = 0;
	uint64_t comp_len = 0, live0, span0, class0, freed_class = 0;
	uint64_t pages0, pages_free, pages_end, bad = 0, spans0[2];
	double t0, t_fill, t_free, t_compact, ratio_end;
	double rate1[16], rate2[16], ctl2[16], cpu1[16], cpu2[16], cpuc[16];
	size_t compacted = 0;
	struct stat sb;
	int fd, c;

	while ((c = getopt(argc, argv, "r:n:t:s:F:h")) != -1) {
		switch (c) {
		case 'r': repeat = (unsigned int)atoi(optarg); break;
		case 'n': pairs = strtoull(optarg, NULL, 0); break;
		case 't': rounds = (unsigned int)atoi(optarg); break;
		case 's': rng = strtoull(optarg, NULL, 0) | 1; break;
		case 'F': freed_list = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || !repeat || !rounds || rounds > 16 ||
	    (freed_list && repeat != 1))
		usage();
	fd = open(argv[optind], O_RDONLY);
	if (fd < 0 || fstat(fd, &sb))
		die(argv[optind]);
	if (sb.st_size < PAGE || sb.st_size % PAGE) {
		fprintf(stderr, "bench-pool: %s is not whole 4096-byte pages\n",
			argv[optind]);
		return 1;
	}
	nr_pages = (uint32_t)(sb.st_size / PAGE);
	file = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (file == MAP_FAILED)
		die("mmap");

	/* Compress every page once. */
	comp = malloc((size_t)nr_pages * PAGE);
	o = malloc((size_t)nr_pages * repeat * sizeof(*o));
	sizes = malloc((size_t)nr_pages * sizeof(*sizes));
	if (!comp || !o || !sizes || !st)
		die("malloc");
	for (uint32_t i = 0; i < nr_pages; i++) {
		const uint8_t *p = file + (size_t)i * PAGE;
		int n;

		if (same_filled(p)) {
			nr_same++;
			continue;
		}
		n = LZ4_compress_default((const char *)p, (char *)out, PAGE,
					 sizeof(out));
		if (n <= 0 || (unsigned int)n >= HUGE_MIN) {
			n = PAGE;
			memcpy(comp + comp_len, p, PAGE);
			nr_huge++;
		} else {
			memcpy(comp + comp_len, out, n);
		}
		o[nr_obj].page = i;
		o[nr_obj].size = (uint32_t)n;
		o[nr_obj].data = (uint32_t)comp_len;
		sizes[nr_obj] = (uint32_t)n;
		comp_len += (uint32_t)n;
		nr_obj++;
	}
	{
		uint32_t base = nr_obj;

		for (unsigned int r = 1; r < repeat; r++)
			for (uint32_t i = 0; i < base; i++)
				o[nr_obj++] = o[i];
	}
	printf("input: %s: %u pages, %u same-filled (skipped), %u objects "
	       "(%u stored whole), LZ4 %.2f:1, repeat %u -> %u objects\n",
	       argv[optind], nr_pages, nr_same, nr_obj / repeat,
	       nr_huge, (double)(nr_pages - nr_same) * PAGE / comp_len,
	       repeat, nr_obj);

	pool = pool_create(NULL);
	if (!pool)
		die("pool_create");

	/* 1. fill */
	t0 = now();
	for (uint32_t i = 0; i < nr_obj; i++) {
		if (pool_alloc(pool, o[i].size, &o[i].h) ||
		    pool_write(pool, o[i].h, comp + o[i].data, o[i].size)) {
			fprintf(stderr, "bench-pool: allocation %u failed\n", i);
			return 1;
		}
	}
	t_fill = now() - t0;
	pool_get_stats(pool, st);
	live0 = st->live_bytes;
	span0 = st->span_bytes;
	class0 = st->class_bytes;
	pages0 = st->pages;
	printf("fill: %u objects in %.2f s; live %.1f MiB, in spans %.1f MiB: "
	       "span/live %.4f (class rounding %.4f); with handles and "
	       "metadata %.4f\n", nr_obj, t_fill, live0 / 1048576.0,
	       span0 / 1048576.0, (double)span0 / live0,
	       (double)class0 / live0,
	       (double)pool_mem_bytes(pool) / live0);

	/* 2. free a random half */
	for (uint32_t i = nr_obj - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd(&rng) % (i + 1));
		struct obj x = o[i];

		o[i] = o[j];
		o[j] = x;
	}
	{
		FILE *fl = freed_list ? fopen(freed_list, "w") : NULL;

		if (freed_list && !fl)
			die(freed_list);
		t0 = now();
		for (uint32_t i = nr_obj / 2; i < nr_obj; i++) {
			freed_class += pool_obj_size(pool, o[i].h);
			pool_free(pool, o[i].h);
		}
		t_free = now() - t0;
		for (uint32_t i = nr_obj / 2; fl && i < nr_obj; i++)
			fprintf(fl, "%u\n", o[i].page);
		if (fl && fclose(fl))
			die(freed_list);
	}
	nr_obj /= 2;
	pool_get_stats(pool, st);
	pages_free = st->pages;
	printf("free half: %.2f s; live %.1f MiB, in spans %.1f MiB: span/live "
	       "%.4f; pages %llu -> %llu\n", t_free, st->live_bytes / 1048576.0,
	       st->span_bytes / 1048576.0,
	       (double)st->span_bytes / st->live_bytes,
	       (unsigned long long)pages0, (unsigned long long)pages_free);

	/* 3. shrink */
	t0 = now();
	{
		bool done = false;

		while (!done)
			compacted += pool_compact(pool, 4096, 100, &done);
	}
	t_compact = now() - t0;
	pool_get_stats(pool, st);
	pages_end = st->pages;
	ratio_end = (double)st->span_bytes / st->live_bytes;
	{
		/* Pages the freed half held: its share of the class bytes, times
		 * the span pages per class byte at the fill. */
		double held = (double)pages0 * freed_class / class0;
		double back = (double)(pages0 - pages_end) / held;

		printf("compact: %.3f s, %zu pages freed by compaction, %llu "
		       "objects moved; live %.1f MiB, in spans %.1f MiB: "
		       "span/live %.4f (class rounding %.4f); with handles and "
		       "metadata %.4f\n", t_compact, compacted,
		       (unsigned long long)st->counters[POOL_C_MIGRATED],
		       st->live_bytes / 1048576.0, st->span_bytes / 1048576.0,
		       (double)st->span_bytes / st->live_bytes,
		       (double)st->class_bytes / st->live_bytes,
		       (double)pool_mem_bytes(pool) / st->live_bytes);
		printf("returned: the freed half held %.0f pages; %llu came "
		       "back (%llu on free, %llu by compaction): %.1f%%\n", held,
		       (unsigned long long)(pages0 - pages_end),
		       (unsigned long long)(pages0 - pages_free),
		       (unsigned long long)(pages_free - pages_end),
		       100.0 * back);
		printf("metadata: handle tables + back-refs %.1f bytes/object, "
		       "descriptors + page map %.1f bytes/object\n",
		       (double)st->handle_bytes / st->objs,
		       (double)st->meta_bytes / st->objs);

		/* The objects left still hold their pages' bytes. */
		for (uint32_t i = 0; i < nr_obj; i++) {
			uint8_t buf[PAGE];

			if (pool_read(pool, o[i].h, buf, o[i].size) ||
			    memcmp(buf, comp + o[i].data, o[i].size))
				bad++;
		}
		printf("verify: %llu of %u objects differ\n",
		       (unsigned long long)bad, nr_obj);

		/* 4. throughput */
		spans0[0] = st->counters[POOL_C_SPANS_ALLOCATED];
		spans0[1] = st->counters[POOL_C_SPANS_FREED];
		for (unsigned int r = 0; r < rounds; r++) {
			struct rate one, two, ctl;

			one = run_threads(pool, 1, sizes, nr_pages - nr_same,
					  pairs, (int)r, false);
			two = run_threads(pool, 2, sizes, nr_pages - nr_same,
					  pairs, (int)r, false);
			ctl = run_threads(pool, 2, sizes, nr_pages - nr_same,
					  pairs, (int)r, true);
			rate1[r] = one.wall;
			rate2[r] = two.wall;
			ctl2[r] = ctl.wall;
			cpu1[r] = one.cpu;
			cpu2[r] = two.cpu;
			cpuc[r] = ctl.cpu;
			printf("pairs/s round %u: 1 thread %.2f M; 2 threads %.2f "
			       "M (%.2fx), on 2 separate pools %.2f M (%.2fx); "
			       "per thread CPU-second: alone %.2f M, beside "
			       "another %.2f M (on separate pools %.2f M)\n",
			       r + 1, one.wall / 1e6,
			       two.wall / 1e6, two.wall / one.wall,
			       ctl.wall / 1e6, ctl.wall / one.wall,
			       one.cpu / 1e6, two.cpu / 1e6, ctl.cpu / 1e6);
		}
		qsort(rate1, rounds, sizeof(double), cmp_double);
		qsort(rate2, rounds, sizeof(double), cmp_double);
		qsort(ctl2, rounds, sizeof(double), cmp_double);
		qsort(cpu1, rounds, sizeof(double), cmp_double);
		qsort(cpu2, rounds, sizeof(double), cmp_double);
		qsort(cpuc, rounds, sizeof(double), cmp_double);
		pool_get_stats(pool, st);
		printf("throughput runs: %llu lock acquisitions, %llu contended; "
		       "%llu spans created, %llu freed\n",
		       (unsigned long long)st->counters[POOL_C_LOCK_ACQUIRED],
		       (unsigned long long)st->counters[POOL_C_LOCK_CONTENDED],
		       (unsigned long long)(st->counters[POOL_C_SPANS_ALLOCATED] -
					    spans0[0]),
		       (unsigned long long)(st->counters[POOL_C_SPANS_FREED] -
					    spans0[1]));
		printf("result: objects=%u span_live_fill=%.4f "
		       "span_live_compact=%.4f returned_pct=%.1f "
		       "pairs1_m=%.2f pairs2_m=%.2f scaling=%.2f "
		       "best_pairs1_m=%.2f best_pairs2_m=%.2f best_scaling=%.2f "
		       "control_scaling=%.2f best_control_scaling=%.2f "
		       "cpu_pairs1_m=%.2f cpu_pairs2_m=%.2f cpu_scaling=%.2f "
		       "verify_bad=%llu cpu_control_pairs2_m=%.2f "
		       "cpu_control_scaling=%.2f\n", nr_obj * 2,
		       (double)span0 / live0, ratio_end, 100.0 * back,
		       rate1[rounds / 2] / 1e6, rate2[rounds / 2] / 1e6,
		       rate2[rounds / 2] / rate1[rounds / 2],
		       rate1[rounds - 1] / 1e6, rate2[rounds - 1] / 1e6,
		       rate2[rounds - 1] / rate1[rounds - 1],
		       ctl2[rounds / 2] / rate1[rounds / 2],
		       ctl2[rounds - 1] / rate1[rounds - 1],
		       cpu1[rounds / 2] / 1e6, cpu2[rounds / 2] / 1e6,
		       2 * cpu2[rounds / 2] / cpu1[rounds / 2],
		       (unsigned long long)bad, cpuc[rounds / 2] / 1e6,
		       2 * cpuc[rounds / 2] / cpu1[rounds / 2]);
	}
	pool_destroy(pool);
	munmap(file, sb.st_size);
	free(comp);
	free(o);
	free(sizes);
	free(st);
	return bad ? 1 : 0;
}
