// SPDX-License-Identifier: MIT
/*
 * test-pool - the pool allocator, single-threaded: edge cases, every class,
 * the memory limit, memory really going back to the OS (also under
 * mlockall), misuse detection, pins, and a randomized model test of over a
 * million operations checked against a reference copy of every live object.
 */
#include "pool.h"
#include "arena.h"  /* internal: to force each way of releasing memory */
#include "tap.h"
#include "testdata.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	return td_next(&rng_state);
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/*
 * LZ4-compressed sizes of 4 KiB pages dumped from the anonymous memory of
 * python3, perl and redis-server (68557 pages that were not same-filled):
 * cumulative parts per 10000 of sizes up to each bound; pages that did not
 * compress below 3072 bytes are stored whole (4096).
 */
static const struct { uint32_t upto, cum; } size_cdf[] = {
	{128, 11}, {256, 1395}, {384, 1453}, {512, 1505}, {640, 1565},
	{768, 1630}, {896, 2250}, {1024, 2364}, {1152, 4667}, {1280, 5579},
	{1408, 6659}, {1536, 7372}, {1664, 7874}, {1792, 8668}, {1920, 8761},
	{2048, 8807}, {2176, 9731}, {2304, 9872}, {2432, 9891}, {2560, 9904},
	{2688, 9912}, {2816, 9943}, {2944, 9990}, {3072, 9995}, {4096, 10000},
};

/* A compressed-page size; one in ten uniform over 1..4096 so that every
 * class sees traffic. */
static uint32_t rnd_size(void)
{
	uint32_t x, i, lo;

	if (rnd_below(10) == 0)
		return 1 + rnd_below(POOL_MAX_OBJ);
	x = rnd_below(10000);
	for (i = 0; size_cdf[i].cum <= x; i++)
		;
	if (size_cdf[i].upto == 4096)
		return 4096;
	lo = i ? size_cdf[i - 1].upto : 20;
	return lo + 1 + rnd_below(size_cdf[i].upto - lo);
}


static int count_maps(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* Pages of [addr, addr + n pages) resident, by mincore(). */
static uint32_t resident_pages(void *addr, uint32_t n)
{
	unsigned char vec[ARENA_MAX_RUN];
	uint32_t r = 0;

	if (mincore(addr, (size_t)n * POOL_PAGE_SIZE, vec))
		return UINT32_MAX;
	for (uint32_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

static bool compact_all(struct pool *p, unsigned int usage_pct, size_t *freed)
{
	bool done = false;
	size_t total = 0;

	for (int i = 0; i < 100000 && !done; i++)
		total += pool_compact(p, 1000, usage_pct, &done);
	if (freed)
		*freed = total;
	return done;
}

/* Stats equal except the counters an attempt is allowed to move. */
static bool stats_same(const struct pool_stats *a, const struct pool_stats *b)
{
	struct pool_stats x = *a, y = *b;

	x.counters[POOL_C_LOCK_ACQUIRED] = y.counters[POOL_C_LOCK_ACQUIRED] = 0;
	x.counters[POOL_C_LOCK_CONTENDED] = y.counters[POOL_C_LOCK_CONTENDED] = 0;
	x.counters[POOL_C_ENOMEM] = y.counters[POOL_C_ENOMEM] = 0;
	return !memcmp(&x, &y, sizeof(x));
}

/* is_u64() with a formatted name. */
#define is_u64f(got, want, ...) do {                                        \
	uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);          \
	if (!ok(got_ == want_, __VA_ARGS__))                                \
		printf("#   got %" PRIu64 ", want %" PRIu64 "\n", got_, want_); \
} while (0)

static int cmp_handle(const void *a, const void *b)
{
	pool_handle_t x = *(const pool_handle_t *)a, y = *(const pool_handle_t *)b;

	return x < y ? -1 : x > y;
}

static struct pool_stats st, st2;

/* ---------------------------------------------------------------- tests */

static void test_classes(void)
{
	struct pool *p = pool_create(NULL);
	uint32_t prev = 0, max_waste_pct10 = 0, bad = 0;

	ok(p, "pool_create(NULL)");
	pool_get_stats(p, &st);
	ok(st.nr_classes > 1 && st.nr_classes <= 255, "%u classes",
	   st.nr_classes);
	ok(st.classes[0].obj_size <= 32, "smallest class %u <= 32",
	   st.classes[0].obj_size);
	is_u64(st.classes[st.nr_classes - 1].obj_size, 4096, "largest class");
	for (uint32_t i = 0; i < st.nr_classes; i++) {
		const struct pool_class_stats *c = &st.classes[i];
		uint32_t span = c->pages_per_span * POOL_PAGE_SIZE;
		uint32_t waste = span - c->objs_per_span * c->obj_size;

		if (c->obj_size <= prev || c->obj_size % 16 ||
		    c->pages_per_span < 1 || c->pages_per_span > 32 ||
		    c->objs_per_span != span / c->obj_size)
			bad++;
		if (i > 0 && st.classes[i - 1].pages_per_span == c->pages_per_span &&
		    st.classes[i - 1].objs_per_span == c->objs_per_span)
			bad++; /* identical neighbours should have merged */
		if (c->obj_size <= 3072 && waste * 1000 / span > max_waste_pct10)
			max_waste_pct10 = waste * 1000 / span;
		prev = c->obj_size;
	}
	is_u64(bad, 0, "classes ascend in 16-byte multiples, spans 1..32 pages, "
	       "no two neighbours with identical spans");
	ok(max_waste_pct10 <= 10, "span tail waste <= 1.0%% for classes up to "
	   "3072 bytes (worst %u.%u%%)", max_waste_pct10 / 10,
	   max_waste_pct10 % 10);
	diag("%u classes; e.g. %u bytes: %u pages, %u objs", st.nr_classes,
	     st.classes[st.nr_classes / 2].obj_size,
	     st.classes[st.nr_classes / 2].pages_per_span,
	     st.classes[st.nr_classes / 2].objs_per_span);
	pool_destroy(p);
}

static void test_edges(void)
{
	struct pool *p = pool_create(NULL);
	pool_handle_t h = 12345;
	uint8_t buf[4097];
	const char *why = NULL;

	is_u64(pool_alloc(p, 0, &h), (uint64_t)-EINVAL, "size 0 -> -EINVAL");
	is_u64(h, 12345, "handle untouched on -EINVAL");
	is_u64(pool_alloc(p, 4097, &h), (uint64_t)-EINVAL, "size 4097 -> -EINVAL");
	is_u64(pool_alloc(p, SIZE_MAX, &h), (uint64_t)-EINVAL,
	       "size SIZE_MAX -> -EINVAL");
	pool_get_stats(p, &st);
	is_u64(st.objs + st.pages + st.counters[POOL_C_ALLOCS], 0,
	       "nothing allocated by bad sizes");

	is_u64(pool_alloc(p, 1, &h), 0, "size 1");
	ok(h != 0, "handle non-zero");
	is_u64(pool_obj_size(p, h), 1, "pool_obj_size = requested size");
	is_u64(pool_write(p, h, "x", 2), (uint64_t)-EINVAL,
	       "write past the object -> -EINVAL");
	is_u64(pool_read(p, h, buf, 2), (uint64_t)-EINVAL,
	       "read past the object -> -EINVAL");
	is_u64(pool_write(p, h, "y", 1), 0, "write of the whole object");
	buf[0] = 0;
	is_u64(pool_read(p, h, buf, 1), 0, "read of the whole object");
	is_u64(buf[0], 'y', "read back");
	is_u64(pool_read(p, h, buf, 0), 0, "zero-length read");
	pool_free(p, h);

	is_u64(pool_alloc(p, 4096, &h), 0, "size 4096");
	td_fill(buf, 4096, 7);
	is_u64(pool_write(p, h, buf, 4096), 0, "write 4096");
	memset(buf, 0, sizeof(buf));
	is_u64(pool_read(p, h, buf, 4096), 0, "read 4096");
	{
		uint8_t want[4096];

		td_fill(want, 4096, 7);
		ok(!memcmp(buf, want, 4096), "4096-byte object round-trips");
	}
	pool_free(p, h);
	pool_get_stats(p, &st);
	is_u64(st.objs, 0, "no live objects");
	is_u64(st.live_bytes, 0, "no live bytes");
	ok(pool_is_valid(p, &why), "pool valid (%s)", why ? why : "ok");
	pool_destroy(p);
	pool_destroy(NULL);
	ok(1, "pool_destroy(NULL)");
}

/* Every size 1..4096 once, and in every class more than one span's worth
 * (objects cross page and span boundaries), all verified. */
static void test_every_class(void)
{
	struct pool *p = pool_create(NULL);
	uint32_t nr = 0, cap = 1 << 16, bad = 0, zero = 0, dup = 0;
	pool_handle_t *h = malloc(cap * sizeof(*h));
	uint32_t *size = malloc(cap * sizeof(*size));
	uint8_t buf[4096], want[4096];
	const char *why = NULL;

	pool_get_stats(p, &st);
	for (uint32_t s = 1; s <= 4096; s++)
		size[nr++] = s;
	for (uint32_t i = 0; i < st.nr_classes; i++) {
		const struct pool_class_stats *c = &st.classes[i];

		for (uint32_t k = 0; k < c->objs_per_span + 3 && nr < cap; k++)
			size[nr++] = c->obj_size - k % 16;
	}
	for (uint32_t i = 0; i < nr; i++) {
		if (pool_alloc(p, size[i], &h[i])) {
			bad++;
			continue;
		}
		zero += h[i] == 0;
		td_fill(buf, size[i], h[i] ^ (uint64_t)size[i] << 32);
		if (i & 1) {
			void *m = pool_map(p, h[i]);

			memcpy(m, buf, size[i]);
			pool_unmap(p, h[i]);
		} else if (pool_write(p, h[i], buf, size[i])) {
			bad++;
		}
	}
	is_u64f(bad, 0, "%u allocations of every size and class", nr);
	is_u64(zero, 0, "no handle is 0");
	{
		/* Handles are unique: sort a copy. */
		pool_handle_t *c = malloc(nr * sizeof(*c));

		memcpy(c, h, nr * sizeof(*c));
		qsort(c, nr, sizeof(*c), cmp_handle);
		for (uint32_t i = 1; i < nr; i++)
			dup += c[i] == c[i - 1];
		free(c);
		is_u64(dup, 0, "handles unique");
	}
	for (uint32_t i = 0; i < nr; i++) {
		const uint8_t *m;

		td_fill(want, size[i], h[i] ^ (uint64_t)size[i] << 32);
		if (pool_obj_size(p, h[i]) != size[i])
			bad++;
		if (pool_read(p, h[i], buf, size[i]) ||
		    memcmp(buf, want, size[i]))
			bad++;
		m = pool_map(p, h[i]);
		if (!m || memcmp(m, want, size[i]))
			bad++;
		pool_unmap(p, h[i]);
	}
	is_u64(bad, 0, "every object reads back (pool_read and pool_map)");
	pool_get_stats(p, &st);
	{
		uint64_t live = 0;

		for (uint32_t i = 0; i < nr; i++)
			live += size[i];
		is_u64(st.objs, nr, "stats.objs");
		is_u64(st.live_bytes, live, "stats.live_bytes = sum of sizes");
		ok(st.class_bytes >= st.live_bytes &&
		   st.class_bytes - st.live_bytes <= 15ull * nr + 240ull * 8,
		   "class_bytes - live_bytes small (%llu)",
		   (unsigned long long)(st.class_bytes - st.live_bytes));
		ok(st.span_bytes >= st.class_bytes, "span_bytes >= class_bytes");
		is_u64(st.counters[POOL_C_ALLOCS], nr, "allocs counter");
		ok(st.handle_bytes >= 8ull * nr &&
		   st.handle_bytes <= 8ull * nr + 4096ull * 2 * st.nr_classes,
		   "handle_bytes ~ 8 per object (%llu for %u)",
		   (unsigned long long)st.handle_bytes, nr);
	}
	ok(pool_is_valid(p, &why), "pool valid (%s)", why ? why : "ok");
	for (uint32_t i = 0; i < nr; i++)
		pool_free(p, h[i]);
	pool_get_stats(p, &st);
	is_u64(st.objs, 0, "all freed");
	is_u64(st.counters[POOL_C_FREES], nr, "frees counter");
	free(h);
	free(size);
	pool_destroy(p);
}

/* Pages a class needs for n objects with at most one partly used span whose
 * unused tail was returned: what a full compaction must leave. */
static uint64_t packed_pages(const struct pool_class_stats *c)
{
	uint64_t full = c->objs_inuse / c->objs_per_span;
	uint64_t rem = c->objs_inuse % c->objs_per_span;

	return full * c->pages_per_span +
	       (rem * c->obj_size + POOL_PAGE_SIZE - 1) / POOL_PAGE_SIZE;
}

/* After a full compaction: at most one partly used span per class and no
 * page more than the live objects need. */
static void check_packed(struct pool *p, const char *what)
{
	uint64_t want = 0, extra_spans = 0;

	pool_get_stats(p, &st);
	for (uint32_t i = 0; i < st.nr_classes; i++) {
		const struct pool_class_stats *c = &st.classes[i];
		uint64_t spans = (c->objs_inuse + c->objs_per_span - 1) /
				 c->objs_per_span;

		want += packed_pages(c);
		extra_spans += c->spans - spans;
	}
	is_u64f(extra_spans, 0, "%s: at most one partly used span per class",
		what);
	is_u64f(st.pages, want, "%s: pages = what the live objects need", what);
}

static void test_limit(void)
{
	struct pool_config cfg = { .limit_bytes = 256 * 1024 };
	struct pool *p = pool_create(&cfg);
	pool_handle_t h[4096], extra;
	uint32_t n = 0, size = 0, fails = 0;
	const char *why = NULL;
	int ret = 0;

	while (n < 4096) {
		size = rnd_size();
		pool_get_stats(p, &st);
		ret = pool_alloc(p, size, &h[n]);
		if (ret)
			break;
		n++;
	}
	is_u64(ret, (uint64_t)-ENOMEM, "over the limit -> -ENOMEM");
	pool_get_stats(p, &st2);
	ok(stats_same(&st, &st2), "pool unchanged by the failed allocation");
	is_u64(st2.counters[POOL_C_ENOMEM], st.counters[POOL_C_ENOMEM] + 1,
	       "ENOMEM counted");
	ok(st2.span_bytes <= cfg.limit_bytes && st2.span_bytes + 32 * 4096 >
	   cfg.limit_bytes, "span bytes %llu at the limit",
	   (unsigned long long)st2.span_bytes);
	is_u64(st2.limit_bytes, cfg.limit_bytes, "stats.limit_bytes");
	ok(pool_is_valid(p, &why), "pool valid (%s)", why ? why : "ok");

	/* Every class that cannot grow refuses, and leaves the pool alone. */
	for (int s = 4096; s >= 16; s -= 16 * 7) {
		pool_get_stats(p, &st);
		if (pool_alloc(p, s, &extra)) {
			pool_get_stats(p, &st2);
			fails += !stats_same(&st, &st2);
		} else {
			pool_free(p, extra);
		}
	}
	is_u64(fails, 0, "no failed allocation changed the pool");

	/* A freed slot can be reused without new pages. */
	size = (uint32_t)pool_obj_size(p, h[n - 1]);
	pool_free(p, h[n - 1]);
	is_u64(pool_alloc(p, size, &h[n - 1]), 0,
	       "allocation into a freed slot succeeds at the limit");

	pool_set_limit(p, 0);
	is_u64(pool_alloc(p, size, &extra), 0, "limit lifted: allocation works");
	pool_free(p, extra);
	/* A growing span holds a page ahead of its objects (prefaulted with
	 * them); a shrink returns it, so that the 4096-byte allocation below
	 * needs a new page. */
	compact_all(p, 100, NULL);
	pool_get_stats(p, &st);
	pool_set_limit(p, st.span_bytes / 2);
	pool_get_stats(p, &st);
	ret = pool_alloc(p, 4096, &extra);
	is_u64(ret, (uint64_t)-ENOMEM, "limit below use: new pages refused");
	pool_get_stats(p, &st2);
	ok(stats_same(&st, &st2), "... and the pool is unchanged");
	for (uint32_t i = 0; i < n; i++)
		pool_free(p, h[i]);
	pool_destroy(p);
}

/*
 * pool_alloc_within(): the pool's whole memory (span pages, descriptors,
 * handle tables, page map) stays within the cap after every allocation, at
 * caps that fall anywhere in a page, and a refusal changes nothing.
 */
static void test_alloc_within(void)
{
	static const uint32_t extra[] = { 3456, 1, 4095, 777, 12345, 100000 };
	static pool_handle_t h[8192];

	for (unsigned int r = 0; r < sizeof(extra) / sizeof(extra[0]); r++) {
		struct pool *p = pool_create(NULL);
		uint64_t cap = pool_mem_bytes(p) + (512 << 10) + extra[r];
		uint32_t n = 0, over = 0, changed = 0, refused = 0;
		const char *why = NULL;

		for (uint32_t i = 0; i < 8192; i++) {
			uint32_t size = i % 7 ? rnd_size() : 1 + rnd_below(4096);
			uint64_t before = pool_mem_bytes(p);
			int ret;

			pool_get_stats(p, &st);
			ret = pool_alloc_within(p, size, cap, NULL, &h[n]);
			if (ret == 0) {
				n++;
				over += pool_mem_bytes(p) > cap;
				continue;
			}
			refused++;
			pool_get_stats(p, &st2);
			changed += ret != -ENOSPC || !stats_same(&st, &st2) ||
				   pool_mem_bytes(p) != before;
		}
		ok(n > 100 && refused > 0, "cap +%u: %u allocated, %u refused",
		   extra[r], n, refused);
		is_u64f(over, 0, "cap +%u: pool_mem_bytes <= cap after every "
			"allocation", extra[r]);
		is_u64f(changed, 0, "cap +%u: refusals are -ENOSPC and change "
			"nothing", extra[r]);
		ok(pool_is_valid(p, &why), "cap +%u: pool valid (%s)", extra[r],
		   why ? why : "ok");
		for (uint32_t i = 0; i < n; i++)
			pool_free(p, h[i]);
		pool_destroy(p);
	}
}

/* A small arena: exhaustion, and reuse of its address space by spans of
 * other lengths after everything was freed. */
static void test_arena_exhaustion(void)
{
	struct pool_config cfg = { .arena_bytes = 16 << 20 };
	struct pool *p = pool_create(&cfg);
	static pool_handle_t h[1 << 19];
	uint32_t sizes[] = { 4096, 1000, 48, 3000, 720 };
	uint64_t first = 0;
	const char *why = NULL;

	ok(p, "pool with a 16 MiB arena");
	for (unsigned int r = 0; r < sizeof(sizes) / sizeof(sizes[0]); r++) {
		uint32_t n = 0;
		int ret;

		do {
			pool_get_stats(p, &st);
			ret = pool_alloc(p, sizes[r], &h[n]);
		} while (!ret && ++n < (1 << 19));
		pool_get_stats(p, &st2);
		is_u64(ret, (uint64_t)-ENOMEM, "arena full -> -ENOMEM");
		ok(stats_same(&st, &st2), "pool unchanged by the failure");
		if (!r)
			first = st2.span_bytes;
		/* Spans of another length fit in what the last round freed
		 * (free runs are split and merged as needed). */
		ok(st2.span_bytes * 100 >= first * 97,
		   "round %u (%u bytes): %llu of %llu bytes usable", r,
		   sizes[r], (unsigned long long)st2.span_bytes,
		   (unsigned long long)first);
		ok(pool_is_valid(p, &why), "pool valid (%s)", why ? why : "ok");
		for (uint32_t i = 0; i < n; i++)
			pool_free(p, h[i]);
		compact_all(p, 100, NULL);
		pool_get_stats(p, &st);
		is_u64(st.pages, 0, "all pages returned");
	}
	pool_destroy(p);
}

/* Freeing everything really gives the memory back to the OS. */
static void test_release(void)
{
	struct pool *p = pool_create(NULL);
	uint32_t cap = 60000, n = 0, bad = 0;
	pool_handle_t *h = malloc(cap * sizeof(*h));
	uint8_t buf[4096];
	uint64_t bytes = 0, spans_max = 0, held;
	long rss0, rss1, rss2;
	size_t freed = 0;

	rss0 = td_status_kb("RssAnon");
	while (bytes < (64u << 20) && n < cap) {
		uint32_t size = rnd_size();

		if (pool_alloc(p, size, &h[n]))
			break;
		td_fill(buf, size, n);
		pool_write(p, h[n], buf, size);
		bytes += size;
		n++;
	}
	pool_get_stats(p, &st);
	held = st.span_bytes;
	rss1 = td_status_kb("RssAnon");
	diag("%u objects, %llu bytes: pages %llu, RssAnon %ld -> %ld kB", n,
	     (unsigned long long)bytes, (unsigned long long)st.pages, rss0,
	     rss1);
	ok(rss1 - rss0 >= (long)(st.span_bytes / 1024) * 9 / 10,
	   "RssAnon grew by the pool's pages");
	for (uint32_t i = 0; i < st.nr_classes; i++)
		spans_max += st.classes[i].pages_per_span;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t want[4096];

		td_fill(want, pool_obj_size(p, h[i]), i);
		if (pool_read(p, h[i], buf, pool_obj_size(p, h[i])) ||
		    memcmp(buf, want, pool_obj_size(p, h[i])))
			bad++;
		pool_free(p, h[i]);
	}
	is_u64(bad, 0, "contents intact before freeing");
	pool_get_stats(p, &st);
	ok(st.pages <= spans_max, "after freeing all: %llu pages held "
	   "(at most one cached span per class: <= %llu)",
	   (unsigned long long)st.pages, (unsigned long long)spans_max);
	ok(compact_all(p, 100, &freed), "compaction finishes");
	pool_get_stats(p, &st2);
	is_u64(st2.pages, 0, "compaction returned the cached spans: 0 pages");
	is_u64(freed, st.pages, "pool_compact reported the pages it freed");
	is_u64(st2.counters[POOL_C_SPANS_FREED],
	       st2.counters[POOL_C_SPANS_ALLOCATED], "every span freed");
	ok(st2.handle_bytes == 0, "handle tables of empty classes released "
	   "(%llu bytes left)", (unsigned long long)st2.handle_bytes);
	rss2 = td_status_kb("RssAnon");
	diag("RssAnon after free + compact: %ld kB", rss2);
	/* Compare with what the pool held (RssAnon also moves with the
	 * sanitizers' own bookkeeping, e.g. ASan's quarantine). */
	ok(held >= (16u << 20), "the pool held enough to tell (%llu kB)",
	   (unsigned long long)(held / 1024));
	ok(rss1 - rss2 >= (long)(held / 1024) * 95 / 100,
	   "RssAnon dropped by >= 95%% of what the pool held (%ld kB)",
	   rss1 - rss2);

	/* The released range is reusable. */
	bad = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		uint8_t want[4096];
		uint32_t size = rnd_size();

		if (pool_alloc(p, size, &h[i])) {
			bad++;
			continue;
		}
		td_fill(want, size, ~(uint64_t)i);
		pool_write(p, h[i], want, size);
		if (pool_read(p, h[i], buf, size) || memcmp(buf, want, size))
			bad++;
	}
	is_u64(bad, 0, "released memory is reused correctly");
	free(h);
	pool_destroy(p);
}

/*
 * The same under mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), as the
 * daemon runs: MADV_DONTNEED is refused on locked memory, the pool must
 * fall back and still return the pages. In a child process.
 */
static int mlocked_child(void)
{
	struct pool_config cfg = { .arena_bytes = 1ull << 30 };
	struct pool *p;
	pool_handle_t *h = malloc(20000 * sizeof(*h));
	uint8_t buf[4096], want[4096];
	long rss0, rss1, rss2, held_kb;
	int maps0, maps1;
	bool locked;
	uint32_t n = 0;

	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT))
		return 77;
	/* ASan intercepts mlockall() and does nothing (it would lock its
	 * shadow memory): then nothing here is locked. */
	locked = td_status_kb("VmLck") > 0;
	if (!locked)
		printf("# mlockall() locked nothing (a sanitizer build?): the "
		       "locked-memory checks only show that release works\n");
	p = pool_create(&cfg);
	if (!p || !h)
		return 1;
	maps0 = count_maps();
	rss0 = td_status_kb("RssAnon");
	for (n = 0; n < 20000; n++) {
		uint32_t size = rnd_size();

		if (pool_alloc(p, size, &h[n]))
			return 2;
		td_fill(buf, size, n);
		pool_write(p, h[n], buf, size);
	}
	rss1 = td_status_kb("RssAnon");
	pool_get_stats(p, &st);
	held_kb = (long)(st.span_bytes / 1024);
	/* Free every other object, compact, then free the rest: spans are
	 * released one by one, each a separate release. */
	for (n = 0; n < 20000; n += 2)
		pool_free(p, h[n]);
	compact_all(p, 100, NULL);
	for (n = 1; n < 20000; n += 2) {
		uint32_t size = (uint32_t)pool_obj_size(p, h[n]);

		td_fill(want, size, n);
		if (pool_read(p, h[n], buf, size) || memcmp(buf, want, size))
			return 3;
		pool_free(p, h[n]);
	}
	compact_all(p, 100, NULL);
	rss2 = td_status_kb("RssAnon");
	maps1 = count_maps();
	/* (VmLck counts whole locked mappings, touched or not: no use.) */
	printf("# mlocked child: pool held %ld kB; RssAnon %ld -> %ld -> %ld "
	       "kB, maps %d -> %d\n", held_kb, rss0, rss1, rss2, maps0, maps1);
	fflush(stdout);
	if (held_kb < 10000 || rss1 - rss0 < held_kb * 9 / 10)
		return 4; /* the test itself is broken: nothing was used */
	if (rss1 - rss2 < held_kb * 95 / 100)
		return 5;
	if (maps1 > maps0 + 64)
		return 7;
	/* Each method but plain MADV_DONTNEED must work on locked memory. */
	{
		struct arena a;
		uint32_t page;
		uint8_t *m;

		if (arena_init(&a, 64u << 20) || arena_get(&a, 4, &page))
			return 10;
		m = arena_addr(&a, page);
		memset(m, 1, 4 * POOL_PAGE_SIZE);
		a.release_mode = ARENA_REL_MMAP;
		arena_put(&a, page, 4, 4);
		if (resident_pages(m, 4) != 0 || arena_get(&a, 4, &page))
			return 11;
		m = arena_addr(&a, page);
		memset(m, 2, 4 * POOL_PAGE_SIZE);
		if (resident_pages(m, 4) != 4)
			return 12;
		a.release_mode = ARENA_REL_DONTNEED;
		arena_put(&a, page, 4, 4);
		if (resident_pages(m, 4) != 0 ||
		    (locked && a.release_mode == ARENA_REL_DONTNEED))
			return 13;  /* locked memory: must have escalated */
		arena_fini(&a);
	}
	/* Reuse after release, still locked. */
	for (n = 0; n < 5000; n++) {
		uint32_t size = rnd_size();

		if (pool_alloc(p, size, &h[n]))
			return 8;
		td_fill(want, size, n + 99);
		pool_write(p, h[n], want, size);
		if (pool_read(p, h[n], buf, size) || memcmp(buf, want, size))
			return 9;
	}
	pool_destroy(p);
	free(h);
	munlockall();
	return 0;
}

static void test_mlocked(void)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (!pid)
		_exit(mlocked_child());
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		ok(1, "# SKIP mlockall refused (not root?)");
		return;
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "under mlockall(MCL_ONFAULT) freed memory goes back to the OS "
	   "(child status %#x)", status);
}

/*
 * Each release method of the arena, forced: runs handed back hold no
 * memory, come back zeroed and writable, and repeated releases do not
 * fragment the mapping. Returns a failure code, 0 if all is well.
 */
static int arena_methods(void)
{
	for (int mode = ARENA_REL_DONTNEED; mode <= ARENA_REL_MMAP; mode++) {
		struct arena a;
		int maps0;

		if (arena_init(&a, 64u << 20))
			return 10;
		maps0 = count_maps();
		for (int round = 0; round < 200; round++) {
			uint32_t page, n = 1 + round % ARENA_MAX_RUN;
			uint8_t *m;

			if (arena_get(&a, n, &page))
				return 11;
			m = arena_addr(&a, page);
			for (uint32_t k = 0; k < n * POOL_PAGE_SIZE; k += 512)
				if (m[k])
					return 12;  /* not zeroed */
			memset(m, 0xa5, (size_t)n * POOL_PAGE_SIZE);
			if (resident_pages(m, n) != n)
				return 13;
			a.release_mode = mode;
			arena_put(&a, page, n, n);
			if (a.release_mode != mode)
				return 14;  /* fell back: method refused */
			if (resident_pages(m, n) != 0)
				return 15;
		}
		if (count_maps() > maps0 + 8)
			return 16;
		if (!arena_is_valid(&a, NULL))
			return 17;
		arena_fini(&a);
	}
	return 0;
}

static void test_arena_methods(void)
{
	int ret = arena_methods();

	is_u64f(ret, 0, "arena: madvise, MADV_DONTNEED_LOCKED and mmap over "
		"the range each release memory, reuse is zeroed (code %d)",
		ret);
}

/* Run fn in a child with stderr captured; returns its wait status. */
static int in_child(void (*fn)(struct pool *), char *err, size_t errlen)
{
	int fd[2], status = 0;
	ssize_t n, got = 0;
	pid_t pid;

	if (pipe(fd))
		return -1;
	fflush(stdout);
	pid = fork();
	if (!pid) {
		struct pool *p = pool_create(NULL);

		dup2(fd[1], 2);
		close(fd[0]);
		fn(p);
		pool_destroy(p);
		_exit(0);
	}
	close(fd[1]);
	while ((n = read(fd[0], err + got, errlen - 1 - got)) > 0)
		got += n;
	err[got] = 0;
	close(fd[0]);
	waitpid(pid, &status, 0);
	return status;
}

static void misuse_double_free(struct pool *p)
{
	pool_handle_t h, h2;

	pool_alloc(p, 100, &h);
	pool_alloc(p, 100, &h2);
	pool_free(p, h);
	pool_free(p, h);
	if (!pool_is_valid(p, NULL))
		_exit(3);
	pool_free(p, h2);
}

static void misuse_stale(struct pool *p)
{
	pool_handle_t h;

	pool_alloc(p, 100, &h);
	pool_free(p, h + (5000u << 8));  /* never allocated */
	pool_free(p, 0);
	pool_free(p, 0xffffffffu);       /* class out of range */
	if (pool_map(p, h + (1u << 8)) || pool_obj_size(p, 0) ||
	    pool_read(p, 0, &h, 1) != -EINVAL || !pool_is_valid(p, NULL))
		_exit(3);
	pool_free(p, h);
}

static void test_misuse(void)
{
	char err[4096];
	int status;

	status = in_child(misuse_double_free, err, sizeof(err));
#ifdef PF_DEBUG
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	   "debug build: double free aborts");
	ok(strstr(err, "double free") != NULL, "... with a message (%.80s)",
	   err);
#else
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "release build: double free ignored, pool stays valid");
#endif
	status = in_child(misuse_stale, err, sizeof(err));
#ifdef PF_DEBUG
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	   "debug build: stale handle aborts");
	ok(strstr(err, "stale handle") != NULL, "... with a message (%.80s)",
	   err);
#else
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "release build: stale handles rejected, pool stays valid");
#endif
}

/* A mapped object never moves; unmapped, the same objects are moved. */
static void test_pins(void)
{
	struct pool *p = pool_create(NULL);
	pool_handle_t h[2000];
	void *addr[2000];
	uint8_t want[1000];
	uint32_t n = 2000, bad = 0, kept = 0;
	uint64_t migrated;

	for (uint32_t i = 0; i < n; i++) {
		pool_alloc(p, 1000, &h[i]);
		td_fill(want, 1000, i);
		pool_write(p, h[i], want, 1000);
	}
	/* Keep one object in ten, pinned. */
	for (uint32_t i = 0; i < n; i++) {
		if (i % 10) {
			pool_free(p, h[i]);
			continue;
		}
		addr[kept] = pool_map(p, h[i]);
		h[kept++] = h[i];
	}
	pool_get_stats(p, &st);
	migrated = st.counters[POOL_C_MIGRATED];
	compact_all(p, 100, NULL);
	pool_get_stats(p, &st2);
	is_u64(st2.counters[POOL_C_MIGRATED], migrated,
	       "nothing moves while every span is pinned");
	for (uint32_t i = 0; i < kept; i++) {
		void *again = pool_map(p, h[i]);

		td_fill(want, 1000, i * 10);
		bad += again != addr[i] || memcmp(again, want, 1000);
		pool_unmap(p, h[i]);
		pool_unmap(p, h[i]);
	}
	is_u64(bad, 0, "pinned objects kept their address and contents");
	compact_all(p, 100, NULL);
	pool_get_stats(p, &st2);
	ok(st2.counters[POOL_C_MIGRATED] > migrated,
	   "unpinned, compaction moves them (%llu moves)",
	   (unsigned long long)(st2.counters[POOL_C_MIGRATED] - migrated));
	bad = 0;
	for (uint32_t i = 0; i < kept; i++) {
		uint8_t got[1000];

		td_fill(want, 1000, i * 10);
		bad += pool_read(p, h[i], got, 1000) || memcmp(got, want, 1000);
	}
	is_u64(bad, 0, "moved objects read back");
	check_packed(p, "after unpinning");
	for (uint32_t i = 0; i < kept; i++)
		pool_free(p, h[i]);
	pool_destroy(p);
}

/* --------------------------------------------------------- model test */

struct obj {
	pool_handle_t h;
	uint32_t size;
	uint8_t *ref;   /* reference copy of the contents */
};

static uint64_t verify_all(struct pool *p, struct obj *o, uint32_t n,
			   bool use_map)
{
	static uint8_t buf[4096];
	uint64_t bad = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (use_map) {
			const uint8_t *m = pool_map(p, o[i].h);

			bad += !m || memcmp(m, o[i].ref, o[i].size);
			pool_unmap(p, o[i].h);
		} else {
			bad += pool_read(p, o[i].h, buf, o[i].size) ||
			       memcmp(buf, o[i].ref, o[i].size);
		}
	}
	return bad;
}

/*
 * A full compaction packs the last spans of neighbouring classes together:
 * the one object of a 1008-byte class fits the room left on the page of the
 * 1040-byte class's span, so it moves there (a guest) and its page goes.
 * Everything must keep working on the guest: size, reads, writes, maps,
 * free (its index goes home on the remote list), and the empty classes
 * must still give their tables back.
 */
static void test_pack_up(void)
{
	struct pool *p = pool_create(NULL);
	pool_handle_t a, b[2], a2;
	uint8_t want[1040], got[1040];
	uint64_t moved;
	void *m;

	ok(!pool_alloc(p, 1000, &a) && !pool_alloc(p, 1040, &b[0]) &&
	   !pool_alloc(p, 1040, &b[1]), "one 1000-byte and two 1040-byte objects");
	td_fill(want, 1000, 1);
	pool_write(p, a, want, 1000);
	for (int i = 0; i < 2; i++) {
		td_fill(got, 1040, 2 + i);
		pool_write(p, b[i], got, 1040);
	}
	pool_get_stats(p, &st);
	moved = st.counters[POOL_C_MIGRATED];
	ok(compact_all(p, 100, NULL), "shrink completes");
	pool_get_stats(p, &st);
	is_u64(st.pages, 1, "both classes' objects on one page");
	is_u64(st.counters[POOL_C_MIGRATED] - moved, 1, "one object moved");
	is_u64(st.objs, 3, "three objects");
	is_u64(st.live_bytes, 1000 + 2 * 1040, "live bytes unchanged");
	is_u64(st.class_bytes, 3 * 1040, "the guest takes a 1040-byte slot");
	is_u64(pool_obj_size(p, a), 1000, "the guest keeps its size");
	ok(!pool_read(p, a, got, 1000) && !memcmp(got, want, 1000),
	   "the guest keeps its bytes");
	td_fill(want, 1000, 9);
	ok(!pool_write(p, a, want, 1000) && (m = pool_map(p, a)) &&
	   !memcmp(m, want, 1000), "write and map the guest");
	pool_unmap(p, a);
	ok(pool_write(p, a, want, 1001) == -EINVAL,
	   "a write past the guest's size is refused");
	ok(pool_is_valid(p, NULL), "pool valid with a guest");
	pool_free(p, a);
	ok(pool_is_valid(p, NULL), "pool valid after freeing the guest");
	ok(!pool_alloc(p, 1000, &a2) && pool_obj_size(p, a2) == 1000,
	   "its class allocates again");
	pool_free(p, a2);
	pool_free(p, b[0]);
	pool_free(p, b[1]);
	ok(compact_all(p, 100, NULL), "shrink of the emptied pool completes");
	pool_get_stats(p, &st);
	ok(st.pages == 0 && st.handle_bytes == 0 && st.objs == 0,
	   "nothing left: %" PRIu64 " pages, %" PRIu64 " handle bytes",
	   st.pages, st.handle_bytes);
	ok(pool_is_valid(p, NULL), "pool valid at the end");
	pool_destroy(p);
}

static void test_model(void)
{
	enum { OPS = 1000000, CAP = 40000, COMPACT_EVERY = 8192 };
	static const unsigned int usages[] = { 0, 25, 50, 75, 90, 100 };
	struct pool *p = pool_create(NULL);
	struct obj *o = calloc(CAP, sizeof(*o));
	uint64_t mismatch = 0, bad_stats = 0, invalid = 0, seed = 1;
	uint64_t allocs = 0, frees = 0, reads = 0, writes = 0, compactions = 0;
	uint64_t freed_pages = 0, max_live = 0;
	static uint8_t buf[4096];
	const char *why = NULL, *first_why = NULL;
	uint32_t n = 0;
	clock_t t0 = clock();
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t all;

	sched_getaffinity(0, sizeof(all), &all);

	for (uint32_t op = 1; op <= OPS; op++) {
		/* Alternate growing and shrinking phases so spans fill up
		 * and empty out. */
		bool grow = (op / 50000) % 2 == 0;
		uint32_t r = rnd_below(100);

		/* Move between CPUs so objects land in several shards and
		 * compaction moves them across shards. */
		if (op % 10000 == 0 && ncpus > 1) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET((op / 10000) % ncpus, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}

		if (n < CAP && (n == 0 || r < (grow ? 55u : 30u))) {
			struct obj *x = &o[n];

			x->size = rnd_size();
			if (pool_alloc(p, x->size, &x->h)) {
				mismatch++;
				continue;
			}
			x->ref = malloc(x->size);
			td_fill(x->ref, x->size, seed++);
			if (r & 1) {
				pool_write(p, x->h, x->ref, x->size);
			} else {
				memcpy(pool_map(p, x->h), x->ref, x->size);
				pool_unmap(p, x->h);
			}
			n++;
			allocs++;
		} else if (r < 85) {
			uint32_t i = rnd_below(n);

			pool_free(p, o[i].h);
			free(o[i].ref);
			o[i] = o[--n];
			frees++;
		} else if (r < 95) {
			uint32_t i = rnd_below(n);

			if (r & 1) {
				mismatch += pool_read(p, o[i].h, buf, o[i].size) ||
					    memcmp(buf, o[i].ref, o[i].size);
			} else {
				const uint8_t *m = pool_map(p, o[i].h);

				mismatch += !m || memcmp(m, o[i].ref, o[i].size);
				pool_unmap(p, o[i].h);
			}
			mismatch += pool_obj_size(p, o[i].h) != o[i].size;
			reads++;
		} else {
			/* Overwrite a prefix with new contents. */
			uint32_t i = rnd_below(n), len = 1 + rnd_below(o[i].size);

			td_fill(o[i].ref, len, seed++);
			mismatch += pool_write(p, o[i].h, o[i].ref, len) != 0;
			writes++;
		}
		if (n > max_live)
			max_live = n;

		if (op % COMPACT_EVERY == 0) {
			unsigned int usage = usages[rnd_below(6)];
			size_t budget = 1 + rnd_below(512);
			bool done = false;
			uint64_t live = 0;

			if (rnd_below(4) == 0)
				while (!done)
					freed_pages += pool_compact(p, budget,
								    usage, &done);
			else
				freed_pages += pool_compact(p, budget, usage,
							    &done);
			compactions++;
			mismatch += verify_all(p, o, n, compactions & 1);
			pool_get_stats(p, &st);
			for (uint32_t i = 0; i < n; i++)
				live += o[i].size;
			bad_stats += st.objs != n || st.live_bytes != live ||
				     st.counters[POOL_C_ALLOCS] -
				     st.counters[POOL_C_FREES] != n;
			if (!pool_is_valid(p, &why)) {
				invalid++;
				if (!first_why)
					first_why = why;
			}
		}
	}
	sched_setaffinity(0, sizeof(all), &all);
	diag("model: %llu allocs, %llu frees, %llu reads, %llu writes, "
	     "%llu compactions (%llu pages freed), max %llu live, %.1f s",
	     (unsigned long long)allocs, (unsigned long long)frees,
	     (unsigned long long)reads, (unsigned long long)writes,
	     (unsigned long long)compactions, (unsigned long long)freed_pages,
	     (unsigned long long)max_live,
	     (double)(clock() - t0) / CLOCKS_PER_SEC);
	ok(allocs + frees + reads + writes >= OPS - 1000,
	   "at least a million operations");
	is_u64(mismatch, 0, "no object ever differed from its reference copy");
	is_u64(bad_stats, 0, "stats matched the model after every compaction");
	is_u64f(invalid, 0, "pool_is_valid after every compaction (%s)",
	       first_why ? first_why : "ok");
	pool_get_stats(p, &st);
	ok(st.counters[POOL_C_MIGRATED] > 1000, "compaction moved objects "
	   "(%llu)", (unsigned long long)st.counters[POOL_C_MIGRATED]);
	ok(st.counters[POOL_C_SPANS_FREED] > 100, "spans were freed (%llu)",
	   (unsigned long long)st.counters[POOL_C_SPANS_FREED]);

	/* Free a random half, shrink: packed, contents intact. */
	for (uint32_t k = n / 2; k > 0; k--) {
		uint32_t i = rnd_below(n);

		pool_free(p, o[i].h);
		free(o[i].ref);
		o[i] = o[--n];
	}
	{
		size_t freed = 0;
		uint64_t before;

		pool_get_stats(p, &st);
		before = st.pages;
		ok(compact_all(p, 100, &freed), "shrink finishes");
		pool_get_stats(p, &st2);
		ok(freed >= before - st2.pages && st2.pages < before,
		   "shrink freed %zu pages (%llu -> %llu)", freed,
		   (unsigned long long)before, (unsigned long long)st2.pages);
	}
	check_packed(p, "after shrink");
	is_u64(verify_all(p, o, n, false), 0, "contents intact after shrink");
	ok(pool_is_valid(p, &why), "pool valid (%s)", why ? why : "ok");
	for (uint32_t i = 0; i < n; i++) {
		pool_free(p, o[i].h);
		free(o[i].ref);
	}
	compact_all(p, 100, NULL);
	pool_get_stats(p, &st);
	is_u64(st.pages + st.objs + st.live_bytes, 0, "empty at the end");
	free(o);
	pool_destroy(p);
}


/* AnonHugePages (kB) of the mapping holding addr, from /proc/self/smaps;
 * -1 if not found. */
static long smaps_thp_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		/* Mapping lines start with a lowercase hex address, field
		 * lines with a capital. */
		if (!(line[0] >= 'A' && line[0] <= 'Z') &&
		    sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/*
 * The arena's reserve: ready runs made of freed spans' first pages (reused
 * before new memory), bounded, made ahead by arena_refill(), counted; 4 KiB
 * pages whatever the THP mode. Returns a failure code, 0 if all is well.
 */
static int arena_reserve_check(char *why, size_t len)
{
	struct arena a;
	uint32_t page, res, pages[ARENA_MAX_RUN + 1];
	uint8_t *m;

	if (arena_init(&a, 64u << 20))
		return 1;
	/* Off by default: a freed run keeps nothing. */
	if (arena_get(&a, 4, &page))
		return 2;
	m = arena_addr(&a, page);
	memset(m, 1, 4 * POOL_PAGE_SIZE);
	arena_put(&a, page, 4, 4);
	if (resident_pages(m, 4) != 0 || arena_reserve_pages(&a) != 0)
		return 3;
	/* Reuse before new memory: with a reserve, a freed run keeps its
	 * first 2 pages and the next span of its length gets them. */
	arena_set_reserve(&a, 8);
	if (arena_get_ready(&a, 4, &page, &res) || res != 0)
		return 4;
	m = arena_addr(&a, page);
	memset(m, 2, 4 * POOL_PAGE_SIZE);
	arena_put(&a, page, 4, 4);
	snprintf(why, len, "after a put of 4 touched pages: %u resident, "
		 "reserve %u", resident_pages(m, 4), arena_reserve_pages(&a));
	if (resident_pages(m, 4) != ARENA_READY_RES ||
	    arena_reserve_pages(&a) != ARENA_READY_RES)
		return 5;
	{
		uint32_t again;

		if (arena_get_ready(&a, 4, &again, &res) || again != page ||
		    res != ARENA_READY_RES || arena_reserve_pages(&a) != 0)
			return 6;
		if (m[0] != 2 || m[POOL_PAGE_SIZE] != 2)
			return 7;  /* not the same memory: it was released */
		arena_put(&a, page, 4, 4);
	}
	/* A bound below what it holds releases it; then a bound of 3
	 * pages, runs of 1..8 pages freed fully touched. */
	arena_set_reserve(&a, 1);
	if (arena_reserve_pages(&a) != 0 || resident_pages(m, 4) != 0)
		return 8;
	arena_set_reserve(&a, 3);
	for (uint32_t n = 1; n <= 8; n++) {
		if (arena_get(&a, n, &pages[n]))
			return 9;
		memset(arena_addr(&a, pages[n]), 3, (size_t)n * POOL_PAGE_SIZE);
	}
	for (uint32_t n = 1; n <= 8; n++)
		arena_put(&a, pages[n], n, n);
	{
		uint32_t resident = 0;

		for (uint32_t n = 1; n <= 8; n++)
			resident += resident_pages(arena_addr(&a, pages[n]), n);
		snprintf(why, len, "bound 3 pages: reserve %u, resident in "
			 "the freed runs %u", arena_reserve_pages(&a), resident);
		if (arena_reserve_pages(&a) > 3 || resident !=
		    arena_reserve_pages(&a) || arena_reserve_pages(&a) < 2)
			return 10;
	}
	if (!arena_is_valid(&a, NULL))
		return 11;
	/* Made ahead: lengths asked for (hit or miss) get a ready run with
	 * its first pages faulted in, within the bound. */
	arena_set_reserve(&a, 0);
	arena_set_reserve(&a, 64);
	arena_refill(&a, 0);      /* the lengths taken above */
	arena_drop_reserve(&a);
	for (uint32_t n = 5; n <= 7; n += 2) {
		if (arena_get_ready(&a, n, &pages[n], &res) || res)
			return 12;
		arena_unget(&a, pages[n], n);
	}
	res = arena_refill(&a, 0);
	snprintf(why, len, "refill made %u pages, reserve %u", res,
		 arena_reserve_pages(&a));
	if (res != 2 * ARENA_READY_RES ||
	    arena_reserve_pages(&a) != 2 * ARENA_READY_RES)
		return 13;
	if (arena_get_ready(&a, 7, &page, &res) || res != ARENA_READY_RES ||
	    resident_pages(arena_addr(&a, page), 7) != ARENA_READY_RES)
		return 14;
	arena_put(&a, page, 7, res);
	/* Room: a refill under a limit of 1 page makes nothing. */
	arena_drop_reserve(&a);
	if (arena_get_ready(&a, 9, &page, &res))
		return 15;
	arena_unget(&a, page, 9);
	if (arena_refill(&a, 1) != 0 || arena_reserve_pages(&a) != 0)
		return 16;
	/* THP: off for the arena whatever the mode (4 MiB touched, no huge
	 * page), so the figures above hold under "always", "madvise" and
	 * "never" alike. */
	{
		uint32_t first = 0, p2;
		long kb;

		for (uint32_t i = 0; i < 32; i++) {
			if (arena_get(&a, 32, &p2))
				return 17;
			if (!i)
				first = p2;
			memset(arena_addr(&a, p2), 4, 32 * POOL_PAGE_SIZE);
		}
		kb = smaps_thp_kb(arena_addr(&a, first));
		snprintf(why, len, "AnonHugePages of the arena %ld kB", kb);
		if (kb != 0)
			return 18;
	}
	if (!arena_is_valid(&a, NULL))
		return 19;
	arena_fini(&a);
	return 0;
}

/* Wait (up to 5 s) until the refill thread has taken every page asked. */
static void refill_drain(struct pool *p, struct pool_stats *ps)
{
	for (int ms = 0; ms < 5000; ms++) {
		pool_get_stats(p, ps);
		if (!ps->refill_queued)
			return;
		usleep(1000);
	}
}

static void test_reserve(void)
{
	char why[160] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char thp[128] = "(none)";

	if (f) {
		if (!fgets(thp, sizeof(thp), f))
			strcpy(thp, "(unreadable)");
		thp[strcspn(thp, "\n")] = 0;
		fclose(f);
	}
	printf("# transparent_hugepage/enabled: %s\n", thp);
	{
		int r = arena_reserve_check(why, sizeof(why));

		ok(r == 0, "arena reserve: freed runs' first pages reused, "
		   "bound kept, refill ahead, no huge pages (code %d; %s)",
		   r, why);
	}

	/* The pool counts the reserve: pool_mem_bytes() = (span pages +
	 * reserve pages) * 4 KiB + bookkeeping; a span made of a ready run
	 * takes its pages without new memory. */
	{
		struct pool_config cfg = { .reserve_bytes = 64 * POOL_PAGE_SIZE };
		struct pool *p = pool_create(&cfg);
		struct pool_stats *ps = malloc(sizeof(*ps));
		pool_handle_t *h = malloc(4000 * sizeof(*h));
		uint64_t mem, want, hits0, pages0;
		size_t freed;
		int bad = 0;

		for (int i = 0; i < 4000 && !bad; i++)
			bad = pool_alloc(p, 3000, &h[i]);
		for (int i = 0; i < 4000; i++)
			if (i % 4000 >= 8)
				pool_free(p, h[i]);
		pool_get_stats(p, ps);
		mem = pool_mem_bytes(p);
		want = (ps->pages * POOL_PAGE_SIZE + ps->reserve_bytes) +
		       ps->handle_bytes + ps->meta_bytes;
		ok(!bad && ps->reserve_bytes > 0 &&
		   ps->reserve_bytes <= 64 * POOL_PAGE_SIZE && mem == want,
		   "pool: freed spans feed the reserve (%" PRIu64 " bytes), "
		   "counted: mem %" PRIu64 " == pages %" PRIu64
		   " * 4K + reserve + bookkeeping %" PRIu64,
		   ps->reserve_bytes, mem, ps->pages, want);
		hits0 = ps->ready_hits;
		pages0 = ps->pages;
		for (int i = 8; i < 4000 && !bad; i++)
			bad = pool_alloc(p, 3000, &h[i]);
		pool_get_stats(p, ps);
		ok(!bad && ps->ready_hits > hits0 && ps->pages >= pages0,
		   "pool: new spans take ready runs before new memory "
		   "(%" PRIu64 " hits)", ps->ready_hits - hits0);
		for (int i = 0; i < 4000; i++)
			pool_free(p, h[i]);
		compact_all(p, 100, &freed);
		pool_get_stats(p, ps);
		ok(ps->reserve_bytes == 0 && ps->pages == 0,
		   "pool: a full compaction gives the reserve back "
		   "(reserve %" PRIu64 ", pages %" PRIu64 ")",
		   ps->reserve_bytes, ps->pages);
		ok(pool_is_valid(p, NULL), "pool valid after the reserve's use");
		pool_destroy(p);

		/* The background refill: pages faulted in ahead, counted as
		 * the pool's (no page the pool does not count). */
		cfg.refill = true;
		p = pool_create(&cfg);
		for (int i = 0; i < 4000 && !bad; i++) {
			bad = pool_alloc(p, 700 + (i * 37) % 3000, &h[i]);
			/* Let it run, even on a busy machine: it is at nice
			 * 19, and a full ring drops asks (by design: a
			 * writer never waits for it). */
			if (i % 64 == 63)
				refill_drain(p, ps);
		}
		refill_drain(p, ps);
		pool_get_stats(p, ps);
		mem = pool_mem_bytes(p);
		want = (ps->pages * POOL_PAGE_SIZE + ps->reserve_bytes) +
		       ps->handle_bytes + ps->meta_bytes;
		ok(!bad && ps->refill && ps->refill_pages > 0 && mem == want &&
		   ps->writer_pages + ps->refill_pages >= ps->pages / 2,
		   "pool refill: %" PRIu64 " pages faulted in ahead, %" PRIu64
		   " by the writer, of %" PRIu64 "; counted",
		   ps->refill_pages, ps->writer_pages, ps->pages);
		ok(pool_is_valid(p, NULL), "pool valid with the refill");
		pool_destroy(p);
		free(h);
		free(ps);
	}
}

int main(void)
{
	test_classes();
	test_edges();
	test_every_class();
	test_limit();
	test_alloc_within();
	test_arena_exhaustion();
	test_release();
	test_arena_methods();
	test_reserve();
	test_mlocked();
	test_misuse();
	test_pins();
	test_pack_up();
	test_model();
	return tap_done();
}
