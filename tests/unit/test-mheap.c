// SPDX-License-Identifier: MIT
/*
 * test-mheap - the pool's metadata heap (alloc/mheap.h): every size class
 * and large sizes (usable bytes, alignment, zeroing, contents), that what
 * it counts is what is resident (mincore() over the heap's frames after
 * every object was written), that freed slabs go back to the OS (also
 * under mlockall(), in a child), the kept empty slab per class (no system
 * call when a class goes back and forth across a slab boundary, a cap on
 * them all), mheap_cost() against what an allocation really adds, a
 * randomized model test with mheap_is_valid(), threads, and misuse
 * detection in debug builds.
 */
#include "mheap.h"
#include "arena.h"
#include "tap.h"
#include "testdata.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE MH_PAGE_SIZE

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	return td_next(&rng_state);
}

static uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/* Mostly metadata-like sizes; some large ones. */
static size_t rnd_size(void)
{
	switch (rnd_below(10)) {
	case 0:
		return MH_SMALL_MAX + 1 + rnd_below(60000);
	case 1:
	case 2:
		return 4104;	/* a full cluster table */
	case 3:
		return 1216;	/* a file record */
	default:
		return 1 + rnd_below(MH_SMALL_MAX);
	}
}

static void fill(void *p, size_t n, uint32_t seed)
{
	unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 8));
}

static bool check(const void *p, size_t n, uint32_t seed)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != (unsigned char)(seed * 31 + i * 7 + (i >> 8)))
			return false;
	return true;
}


/* Pages of the heap's frames [0, top_max) that are resident. */
static uint64_t heap_resident_pages(struct mheap *h)
{
	size_t len = (size_t)h->top_max << MH_FRAME_SHIFT;
	size_t pages = len / PAGE;
	unsigned char *vec;
	uint64_t r = 0;

	if (!pages)
		return 0;
	vec = malloc(pages);
	if (!vec || mincore(h->base, len, vec)) {
		free(vec);
		return UINT64_MAX;
	}
	for (size_t i = 0; i < pages; i++)
		r += vec[i] & 1;
	free(vec);
	return r;
}

static uint64_t counted_pages(struct mheap *h)
{
	return (mheap_resident_bytes(h) - __atomic_load_n(&h->table_bytes,
			__ATOMIC_RELAXED)) / PAGE;
}

static struct mheap heap;

/* One test point: mheap_is_valid(), with its reason when it fails. */
static void valid(const char *when)
{
	const char *why = "";

	if (!ok(mheap_is_valid(&heap, &why), "mheap_is_valid() %s", when))
		diag("%s", why);
}

/* Every class and a few large sizes: usable bytes, alignment, zeroing. */
static void test_sizes(void)
{
	static void *obj[MH_SMALL_MAX / MH_STEP + 8];
	size_t n = 0, usable, bad_usable = 0, bad_align = 0, bad_zero = 0;
	bool contents = true;

	for (size_t size = 1; size <= MH_SMALL_MAX; size += MH_STEP) {
		void *p = mheap_alloc(&heap, size, true, &usable);

		if (!p || usable != (size + MH_STEP - 1) / MH_STEP * MH_STEP)
			bad_usable++;
		if (!p)
			continue;
		if ((uintptr_t)p % MH_STEP ||
		    (usable % 64 == 0 && (uintptr_t)p % 64))
			bad_align++;
		for (size_t i = 0; i < size; i++)
			if (((unsigned char *)p)[i])
				bad_zero++;
		fill(p, usable, (uint32_t)size);
		obj[n++] = p;
	}
	for (size_t size = MH_SMALL_MAX + 1; size < (1u << 22); size = size * 3) {
		void *p = mheap_alloc(&heap, size, true, &usable);

		if (!p || usable != (size + PAGE - 1) / PAGE * PAGE ||
		    mheap_usable(&heap, p) != usable)
			bad_usable++;
		if (!p)
			continue;
		if ((uintptr_t)p % PAGE)
			bad_align++;
		fill(p, usable, (uint32_t)size);
		obj[n++] = p;
	}
	is_u64(bad_usable, 0, "usable bytes: the class size, whole pages above 8 KiB");
	is_u64(bad_align, 0, "16-byte aligned, 64 for sizes in multiples of 64, pages above 8 KiB");
	is_u64(bad_zero, 0, "zeroed when asked");
	valid("with one object per class");
	is_u64(heap_resident_pages(&heap), counted_pages(&heap),
	       "counted pages == resident pages (mincore) once written");
	for (size_t i = 0; i < n; i++) {
		size_t u = mheap_usable(&heap, obj[i]);
		uint32_t seed = (uint32_t)(i < MH_SMALL_MAX / MH_STEP ?
				 i * MH_STEP + 1 : 0);

		if (seed && !check(obj[i], u, seed))
			contents = false;
		if (mheap_free(&heap, obj[i]) != u)
			bad_usable++;
	}
	ok(contents, "every object kept its contents");
	is_u64(bad_usable, 0, "mheap_free() returns the usable bytes");
	is_u64(mheap_live_bytes(&heap), 0, "nothing live");
	mheap_trim(&heap);
	is_u64(counted_pages(&heap), 0, "all freed and trimmed: no page counted");
	is_u64(heap_resident_pages(&heap), 0, "... and none resident");
	valid("when empty");
}

/* Slabs go back as they empty; one empty slab per class stays. */
static void test_release(void)
{
	enum { N = 20000 };
	static void *obj[N];
	struct mheap_stats st;
	uint64_t rel0, peak;
	size_t usable;

	for (int i = 0; i < N; i++) {
		obj[i] = mheap_alloc(&heap, 4104, false, &usable);
		fill(obj[i], 4104, (uint32_t)i);
	}
	peak = counted_pages(&heap);
	ok(peak >= N * 4104ull / PAGE && peak <= N * 4104ull / PAGE * 105 / 100,
	   "20000 cluster tables: %llu pages (<= 5%% over their bytes)",
	   (unsigned long long)peak);
	is_u64(heap_resident_pages(&heap), peak, "... all of them resident");
	/* Free every other one: slabs stay (half used), counted. */
	for (int i = 0; i < N; i += 2)
		mheap_free(&heap, obj[i]);
	is_u64(counted_pages(&heap), peak,
	       "half freed, every slab still in use: nothing released");
	/* New objects fill the holes before new slabs are made. */
	for (int i = 0; i < N; i += 2)
		obj[i] = mheap_alloc(&heap, 4104, false, &usable);
	is_u64(counted_pages(&heap), peak, "the holes are refilled first");
	rel0 = __atomic_load_n(&heap.releases, __ATOMIC_RELAXED);
	for (int i = 0; i < N; i++)
		mheap_free(&heap, obj[i]);
	mheap_get_stats(&heap, &st);
	ok(st.cached_bytes <= MH_FRAME_SIZE, "all freed: one empty slab kept "
	   "(%llu bytes)", (unsigned long long)st.cached_bytes);
	is_u64(counted_pages(&heap), st.cached_bytes / PAGE,
	       "... and only it counted");
	is_u64(heap_resident_pages(&heap), st.cached_bytes / PAGE,
	       "... and only it resident");
	ok(__atomic_load_n(&heap.releases, __ATOMIC_RELAXED) - rel0 >=
	   peak / MH_FRAME_PAGES, "one release per slab");
	/* Back and forth across a slab boundary: no system call. */
	rel0 = __atomic_load_n(&heap.releases, __ATOMIC_RELAXED);
	for (int i = 0; i < 10000; i++)
		mheap_free(&heap, mheap_alloc(&heap, 4104, false, &usable));
	is_u64(__atomic_load_n(&heap.releases, __ATOMIC_RELAXED) - rel0, 0,
	       "alloc/free of one object, 10000 times: the kept slab, no release");
	/* The kept slabs of all classes together stay under the cap. */
	for (uint32_t s = 1024; s <= MH_SMALL_MAX; s += MH_STEP)
		mheap_free(&heap, mheap_alloc(&heap, s, false, &usable));
	mheap_get_stats(&heap, &st);
	ok(st.cached_bytes <= MH_CACHE_PAGES * PAGE,
	   "%u classes emptied: kept slabs %llu bytes <= %u",
	   (MH_SMALL_MAX - 1024) / MH_STEP + 1,
	   (unsigned long long)st.cached_bytes, MH_CACHE_PAGES * PAGE);
	valid("after it");
	ok(mheap_trim(&heap) == st.cached_bytes / PAGE, "trim returns them");
	is_u64(counted_pages(&heap), 0, "nothing counted after trim");
	is_u64(heap_resident_pages(&heap), 0, "nothing resident after trim");
}

/* mheap_cost() is what the next allocation adds to the resident bytes. */
static void test_cost(void)
{
	enum { N = 4000 };
	static void *obj[N];
	uint32_t wrong = 0, nonzero = 0;

	memset(obj, 0, sizeof(obj));
	for (int op = 0; op < 40000; op++) {
		int i = (int)rnd_below(N);
		size_t usable;

		if (obj[i]) {
			mheap_free(&heap, obj[i]);
			obj[i] = NULL;
		} else {
			size_t size = rnd_size();
			uint64_t before = mheap_resident_bytes(&heap);
			uint64_t cost = mheap_cost(&heap, size);

			obj[i] = mheap_alloc(&heap, size, false, &usable);
			if (!obj[i] ||
			    mheap_resident_bytes(&heap) - before != cost)
				wrong++;
			nonzero += cost != 0;
		}
	}
	is_u64(wrong, 0, "resident growth of each allocation == mheap_cost()");
	ok(nonzero > 100, "(%u of them grew the heap)", nonzero);
	for (int i = 0; i < N; i++)
		if (obj[i])
			mheap_free(&heap, obj[i]);
	valid("after it");
	mheap_trim(&heap);
}

/* Random alloc/free against a model of every live object. */
static void test_model(void)
{
	enum { N = 6000 };
	static struct { void *p; size_t size; uint32_t seed; } obj[N];
	uint32_t bad = 0, checks = 0, invalid = 0;
	const char *why = "";

	for (uint32_t op = 0; op < 300000; op++) {
		uint32_t i = rnd_below(N);
		size_t usable;

		if (obj[i].p) {
			if (!check(obj[i].p, obj[i].size, obj[i].seed))
				bad++;
			mheap_free(&heap, obj[i].p);
			obj[i].p = NULL;
			continue;
		}
		obj[i].size = rnd_below(4) ? 1 + rnd_below(600) : rnd_size();
		obj[i].seed = op;
		obj[i].p = mheap_alloc(&heap, obj[i].size, rnd_below(2), &usable);
		if (!obj[i].p || usable < obj[i].size) {
			bad++;
			continue;
		}
		fill(obj[i].p, obj[i].size, op);
		if (op % 20000 == 0) {
			checks++;
			invalid += !mheap_is_valid(&heap, &why);
		}
	}
	is_u64(bad, 0, "300000 random operations: every object intact");
	is_u64(invalid, 0, "mheap_is_valid() all along");
	if (invalid)
		diag("%s", why);
	is_u64(heap_resident_pages(&heap), counted_pages(&heap),
	       "counted pages == resident pages (mincore)");
	for (uint32_t i = 0; i < N; i++)
		if (obj[i].p) {
			if (!check(obj[i].p, obj[i].size, obj[i].seed))
				bad++;
			mheap_free(&heap, obj[i].p);
			obj[i].p = NULL;
		}
	is_u64(bad, 0, "... and at the end");
	mheap_trim(&heap);
	is_u64(counted_pages(&heap), 0, "all freed: nothing counted");
	is_u64(heap_resident_pages(&heap), 0, "... nothing resident");
	valid("after it");
}

/* Threads allocating and freeing at once. */
struct worker {
	uint32_t seed;
	uint32_t bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	enum { N = 2000 };
	void *p[N] = { 0 };
	size_t sz[N] = { 0 };
	uint64_t s = w->seed;

	for (uint32_t op = 0; op < 100000; op++) {
		uint32_t i;
		size_t usable;

		s = s * 6364136223846793005ull + 1442695040888963407ull;
		i = (uint32_t)(s >> 33) % N;
		if (p[i]) {
			if (!check(p[i], sz[i], w->seed + i))
				w->bad++;
			mheap_free(&heap, p[i]);
			p[i] = NULL;
		} else {
			sz[i] = 1 + (s >> 40) % (i % 50 ? 2000 : 20000);
			p[i] = mheap_alloc(&heap, sz[i], false, &usable);
			if (!p[i]) {
				w->bad++;
				continue;
			}
			fill(p[i], sz[i], w->seed + i);
		}
	}
	for (uint32_t i = 0; i < N; i++)
		if (p[i])
			mheap_free(&heap, p[i]);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];
	struct worker w[4];
	uint32_t bad = 0;
	const char *why = "";

	for (int i = 0; i < 4; i++) {
		w[i].seed = 1000u * (uint32_t)i + 7;
		w[i].bad = 0;
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	/* The checker may run while they work: it takes the locks. */
	for (int i = 0; i < 20; i++)
		if (!mheap_is_valid(&heap, &why))
			bad++;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	is_u64(bad, 0, "4 threads, 400000 operations: contents intact, valid meanwhile");
	is_u64(mheap_live_bytes(&heap), 0, "nothing live after they freed all");
	valid("after it");
	mheap_trim(&heap);
	is_u64(counted_pages(&heap), 0, "nothing counted after trim");
}

/*
 * Under mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT), as the daemon
 * runs: the pages must go back all the same (MADV_DONTNEED_LOCKED). In a
 * child. Returns 0 or a failure code.
 */
static int mlocked_child(void)
{
	struct mheap h;
	enum { N = 12000 };
	static void *obj[N];
	long rss0, rss1, rss2;
	size_t usable;

	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT))
		return 77;
	if (td_status_kb("VmLck") <= 0)
		return 78;	/* ASan: mlockall() is a no-op there */
	if (mheap_init(&h, 1ull << 30))
		return 1;
	rss0 = td_status_kb("RssAnon");
	for (int i = 0; i < N; i++) {
		obj[i] = mheap_alloc(&h, i % 3 ? 4104 : 1216, false, &usable);
		if (!obj[i])
			return 2;
		fill(obj[i], usable, (uint32_t)i);
	}
	rss1 = td_status_kb("RssAnon");
	for (int i = 0; i < N; i++)
		mheap_free(&h, obj[i]);
	mheap_trim(&h);
	rss2 = td_status_kb("RssAnon");
	printf("# mlocked child: RssAnon %ld -> %ld -> %ld kB, release "
	       "method %d\n", rss0, rss1, rss2, h.release_mode);
	fflush(stdout);
	if (rss1 - rss0 < 35000)
		return 3;	/* the test itself is broken */
	if (rss2 > rss0 + 1024)
		return 4;
	if (h.release_mode == ARENA_REL_DONTNEED)
		return 5;	/* locked memory refused plain DONTNEED */
	mheap_fini(&h);
	return 0;
}

static void test_mlocked(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(mlocked_child());
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		ok(1, "# SKIP mlockall() refused here");
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 78) {
		ok(1, "# SKIP mlockall() locked nothing (a sanitizer build)");
		return;
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "under mlockall: 40 MB of metadata freed goes back (status %d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
}

#ifdef PF_DEBUG
static void misuse_double_free(void)
{
	size_t usable;
	void *p = mheap_alloc(&heap, 100, false, &usable);
	void *q = mheap_alloc(&heap, 100, false, &usable);

	mheap_free(&heap, p);
	mheap_free(&heap, p);	/* aborts in debug builds */
	mheap_free(&heap, q);
	_exit(0);
}
#endif

static void test_misuse(void)
{
#ifdef PF_DEBUG
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		/* Quiet: the message is expected. */
		if (!freopen("/dev/null", "w", stderr))
			_exit(2);
		signal(SIGABRT, SIG_DFL);
		misuse_double_free();
	}
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	   "debug build: a double free aborts");
#else
	ok(1, "# SKIP double-free detection is in debug builds");
#endif
}

int main(void)
{
	if (mheap_init(&heap, 4ull << 30))
		skip_all("cannot reserve 4 GiB of address space");
	test_sizes();
	test_release();
	test_cost();
	test_model();
	test_threads();
	test_mlocked();
	test_misuse();
	mheap_fini(&heap);
	return tap_done();
}
