// SPDX-License-Identifier: MIT
/*
 * test-store-mem - the store's memory goes back when its contents go.
 *
 * 1. The pattern table grows, shrinks (its index below 1/8 load, its
 *    entry array once the top ids drain), reuses the lowest free ids, stays
 *    correct throughout (every value and reference count checked,
 *    pattern_is_valid()) and frees everything when empty - from malloc and
 *    from the pool's metadata heap.
 * 2. The fold index: 100,000 entries, most dropped (the index shrinks,
 *    the rest still found), then all (every shard resets to nothing),
 *    fold_is_valid() all along.
 * 3. The store: many small files, a large one, 64-bit patterns, folded
 *    pages and records from store_mem_alloc(); everything deleted:
 *    mem_used_total, meta_bytes, fold_index_bytes and ns_bytes fall back to
 *    those of a fresh store (plus the pool's page map and the heap's kept
 *    slabs, which shrink returns), store_is_valid() all along, and the limit
 *    applies to store_mem_alloc().
 * 4. The same under mlockall() in a child, as the daemon runs: the
 *    process's anonymous resident memory follows mem_used_total up and
 *    back down (skipped where mlockall() locks nothing: sanitizer builds).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fold.h"
#include "mem.h"
#include "pattern.h"
#include "pool.h"
#include "store.h"
#include "tap.h"
#include "testdata.h"

#define PG STORE_PAGE_SIZE

static uint64_t rng_s = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	return td_next(&rng_s);
}


/* ---- 1. the pattern table ---- */

#define NPAT 20000

static uint64_t pat_value(uint32_t i, uint32_t round)
{
	return (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)round << 40;
}

/* Every value and reference count of the model against the table. */
static bool pat_matches(struct pattern_table *pt, const uint32_t *id,
			const uint32_t *refs, uint32_t round)
{
	for (uint32_t i = 0; i < NPAT; i++) {
		if (!refs[i])
			continue;
		if (pattern_value(pt, id[i]) != pat_value(i, round) ||
		    pattern_refs(pt, id[i]) != refs[i])
			return false;
	}
	return true;
}

static void test_pattern(struct pool *pool, const char *from)
{
	static uint32_t id[NPAT], refs[NPAT];
	struct meta_mem mem;
	struct pattern_table *pt;
	uint64_t empty, peak, after;
	uint32_t max_id = 0, bad = 0;
	const char *why = "";

	meta_mem_init(&mem, NULL, NULL);
	if (pool)
		meta_mem_set_pool(&mem, pool);
	pt = pattern_create(&mem);
	empty = meta_mem_bytes(&mem);
	memset(refs, 0, sizeof(refs));
	for (uint32_t i = 0; i < NPAT; i++) {
		for (uint32_t r = 0; r < 1 + i % 3; r++) {
			uint32_t got;

			if (pattern_get(pt, pat_value(i, 0), &got) ||
			    (r && got != id[i]))
				bad++;
			id[i] = got;
			refs[i]++;
		}
	}
	peak = meta_mem_bytes(&mem);
	ok(!bad, "pattern table, %s: 20000 patterns, 1-3 references each",
	   from);
	is_u64(pattern_count(pt), NPAT, "... all counted");
	ok(pat_matches(pt, id, refs, 0), "... values and references right");
	ok(pattern_is_valid(pt, &why), "... valid (%s)", why);

	/* Keep one pattern in 64: the index shrinks, the entries stay (the
	 * survivors are spread up to the top id). */
	for (uint32_t i = 0; i < NPAT; i++)
		while (i % 64 && refs[i]) {
			pattern_put(pt, id[i]);
			refs[i]--;
		}
	after = meta_mem_bytes(&mem);
	ok(pattern_is_valid(pt, &why), "one in 64 kept: valid (%s)", why);
	ok(pat_matches(pt, id, refs, 0), "... the survivors intact");
	/* 32768 cells (128 KiB) for 20000 patterns, 2048 for 313. */
	ok(after <= peak - 100000,
	   "... the index shrank: %llu -> %llu bytes",
	   (unsigned long long)peak, (unsigned long long)after);

	/* New patterns take the lowest free ids: no growth. */
	for (uint32_t i = 0; i < NPAT; i++) {
		if (!(i % 64) || i % 4)
			continue;
		if (pattern_get(pt, pat_value(i, 0), &id[i]))
			bad++;
		refs[i] = 1;
	}
	is_u64(bad, 0, "refilled one in four");
	ok(meta_mem_bytes(&mem) <= peak, "... into the holes: no more than the "
	   "peak (%llu bytes)", (unsigned long long)meta_mem_bytes(&mem));
	ok(pat_matches(pt, id, refs, 0), "... all values right");

	/* Drop every pattern whose id is in the upper 7/8: the top drains,
	 * the array shrinks. */
	for (uint32_t i = 0; i < NPAT; i++)
		while (refs[i] && id[i] >= NPAT / 8) {
			pattern_put(pt, id[i]);
			refs[i]--;
		}
	for (uint32_t i = 0; i < NPAT; i++)
		if (refs[i] && id[i] > max_id)
			max_id = id[i];
	after = meta_mem_bytes(&mem);
	ok(pattern_is_valid(pt, &why), "ids above 1/8 dropped: valid (%s)",
	   why);
	ok(pat_matches(pt, id, refs, 0), "... the rest intact");
	ok(after < empty + (peak - empty) / 3,
	   "... the entry array shrank: %llu bytes (peak %llu)",
	   (unsigned long long)after, (unsigned long long)peak);

	/* Back and forth across a boundary: correct every time. */
	for (uint32_t k = 0; k < 2000; k++) {
		uint32_t x;

		if (pattern_get(pt, pat_value(NPAT + k % 7, 1), &x))
			bad++;
		pattern_put(pt, x);
	}
	ok(!bad && pattern_is_valid(pt, &why),
	   "2000 get/put pairs at the top: valid (%s)", why);

	/* Everything gone: nothing kept but the table itself. */
	for (uint32_t i = 0; i < NPAT; i++)
		while (refs[i]) {
			pattern_put(pt, id[i]);
			refs[i]--;
		}
	is_u64(pattern_count(pt), 0, "all dropped");
	is_u64(meta_mem_bytes(&mem), empty, "... the table holds no array");
	ok(pattern_is_valid(pt, &why), "... valid (%s)", why);
	/* And it grows again. */
	for (uint32_t i = 0; i < 1000; i++)
		if (pattern_get(pt, pat_value(i, 2), &id[i]) ||
		    pattern_value(pt, id[i]) != pat_value(i, 2))
			bad++;
	is_u64(bad, 0, "it grows again");
	pattern_destroy(pt);
	is_u64(meta_mem_bytes(&mem), 0, "destroyed: nothing counted");
}

/* ---- 2. the fold index ---- */

#define NFOLD 100000

/* The "page" is its object's handle: contents compare equal exactly when
 * the handles are equal. */
static bool same_handle(void *ctx, uint32_t handle, const void *page,
			uint32_t *aux)
{
	(void)ctx;
	*aux = handle;
	return handle == *(const uint32_t *)page;
}

static void test_fold(struct pool *pool)
{
	static uint64_t hash[NFOLD];
	static uint32_t id[NFOLD], refs[NFOLD];
	struct meta_mem mem;
	struct fold_index *fi;
	struct fold_stats fs;
	uint64_t empty, peak, after;
	uint32_t bad = 0;
	const char *why = "";

	meta_mem_init(&mem, NULL, NULL);
	meta_mem_set_pool(&mem, pool);
	fi = fold_create(&mem, same_handle, NULL);
	empty = meta_mem_bytes(&mem);
	for (uint32_t i = 0; i < NFOLD; i++) {
		uint32_t handle = i + 1, got, aux;

		hash[i] = rnd();
		if (fold_insert(fi, hash[i], handle, &id[i]))
			bad++;
		refs[i] = 1;
		if (i % 3 == 0) {	/* a second page with the same contents */
			if (fold_get(fi, hash[i], &handle, &got, &aux) != 1 ||
			    got != id[i] || aux != handle)
				bad++;
			refs[i]++;
		}
	}
	peak = meta_mem_bytes(&mem);
	fold_get_stats(fi, &fs);
	is_u64(bad, 0, "fold: 100000 entries, a third shared");
	is_u64(fs.entries, NFOLD, "... all in the index");
	ok(fold_is_valid(fi, &why), "... valid (%s)", why);

	/* Keep one in 100. */
	for (uint32_t i = 0; i < NFOLD; i++)
		while (i % 100 && refs[i]) {
			uint32_t h = fold_put(fi, id[i]);

			if (--refs[i] ? h != 0 : h != i + 1)
				bad++;
		}
	after = meta_mem_bytes(&mem);
	is_u64(bad, 0, "99% dropped: the last put of each returns its handle");
	ok(fold_is_valid(fi, &why), "... valid (%s)", why);
	ok(after < peak - (peak - empty) / 5,
	   "... the index shrank: %llu -> %llu bytes",
	   (unsigned long long)peak, (unsigned long long)after);
	for (uint32_t i = 0; i < NFOLD; i += 100) {
		uint32_t handle = i + 1, got, aux;

		if (fold_handle(fi, id[i]) != handle ||
		    fold_get(fi, hash[i], &handle, &got, &aux) != 1 ||
		    got != id[i])
			bad++;
		else
			refs[i]++;
	}
	is_u64(bad, 0, "... the survivors are found");

	for (uint32_t i = 0; i < NFOLD; i++)
		while (refs[i]) {
			fold_put(fi, id[i]);
			refs[i]--;
		}
	fold_get_stats(fi, &fs);
	is_u64(fs.entries, 0, "all dropped");
	is_u64(meta_mem_bytes(&mem), empty,
	       "... every shard reset: only the index's own record left");
	ok(fold_is_valid(fi, &why), "... valid (%s)", why);
	for (uint32_t i = 0; i < 5000; i++)
		if (fold_insert(fi, hash[i], i + 1, &id[i]) ||
		    fold_handle(fi, id[i]) != i + 1)
			bad++;
	is_u64(bad, 0, "it fills again");
	for (uint32_t i = 0; i < 5000; i++)
		fold_put(fi, id[i]);
	fold_destroy(fi);
	is_u64(meta_mem_bytes(&mem), 0, "destroyed: nothing counted");
}

/* ---- 3. the store ---- */

/* Text-like, compressible, different for every seed. */
static void gen_page(unsigned char *p, uint64_t seed)
{
	static const char *words[] = {
		"page ", "fold ", "store ", "memory ", "honest ", "slab ",
		"the ", "a ", "of ", "mlockall ", "heap ", "cluster ",
		"index ", "0x7f3a ", "\n", "{ ", "} ", "return ",
	};
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t n = 0;

	while (n < PG) {
		const char *w;
		size_t len;

		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		w = words[(s * 0x2545f4914f6cdd1dull >> 32) % 18];
		len = strlen(w);
		if (len > PG - n)
			len = PG - n;
		memcpy(p + n, w, len);
		n += len;
	}
	memcpy(p, &seed, sizeof(seed));	/* unique */
}

static void gen_fill(unsigned char *p, uint64_t v)
{
	for (size_t i = 0; i < PG; i += 8)
		memcpy(p + i, &v, 8);
}

#define NSMALL 3000
#define NBIG   20000
#define NREC   6000

struct fill {
	struct store_file *f[NSMALL + 1];
	void *rec[NREC];
};

/* What the daemon holds for a copy of a documentation tree and a large
 * file: small files of 1-8 pages (some sharing pages, some 64-bit
 * patterns), a large file, and inode-like records with names. */
static int fill_store(struct store *st, struct fill *fl)
{
	unsigned char page[PG];
	uint64_t seed = 1;
	int err = 0;

	for (uint32_t i = 0; i < NSMALL; i++) {
		uint32_t n = 1 + i % 8;

		fl->f[i] = store_file_create(st);
		if (!fl->f[i])
			return -ENOMEM;
		for (uint32_t pg = 0; pg < n && !err; pg++) {
			switch ((i + pg) % 10) {
			case 0:
				gen_fill(page, rnd() | 1);	/* a 64-bit pattern */
				break;
			case 1:
				gen_page(page, 7);		/* folded */
				break;
			default:
				gen_page(page, seed++);
			}
			err = store_write(fl->f[i], pg, page);
		}
	}
	fl->f[NSMALL] = store_file_create(st);
	if (!fl->f[NSMALL])
		return -ENOMEM;
	for (uint32_t pg = 0; pg < NBIG && !err; pg++) {
		gen_page(page, seed++);
		err = store_write(fl->f[NSMALL], pg, page);
	}
	for (uint32_t i = 0; i < NREC && !err; i++) {
		fl->rec[i] = store_mem_alloc(st, i % 2 ? 336 : 24, true, &err);
		if (fl->rec[i])
			memset(fl->rec[i], 0x5a, i % 2 ? 336 : 24);
	}
	return err;
}

static void empty_store(struct store *st, struct fill *fl)
{
	for (uint32_t i = 0; i <= NSMALL; i++)
		store_file_destroy(fl->f[i]);
	for (uint32_t i = 0; i < NREC; i++)
		store_mem_free(st, fl->rec[i]);
	memset(fl, 0, sizeof(*fl));
}

static void test_store(void)
{
	static struct fill fl;
	struct store_config cfg = { .no_background = true };
	struct store *st = store_create(&cfg);
	struct store_stats s0, s1, s2, s3;
	const char *why = "";
	uint64_t map, slack;
	void *p;
	int err;

	store_get_stats(st, &s0);
	err = fill_store(st, &fl);
	store_get_stats(st, &s1);
	is_u64(err, 0, "store: 3001 files, 20000 + ~13500 pages, 6000 records");
	ok(store_is_valid(st, &why), "... valid (%s)", why);
	ok(s1.ns_bytes >= NREC / 2 * (336 + 24) && s1.ns_bytes <= NREC * 336,
	   "... records counted in ns_bytes (%llu)",
	   (unsigned long long)s1.ns_bytes);
	ok(s1.fold_index_bytes > s0.fold_index_bytes * 10,
	   "... fold index %llu bytes", (unsigned long long)s1.fold_index_bytes);

	empty_store(st, &fl);
	store_get_stats(st, &s2);
	ok(store_is_valid(st, &why), "all deleted: valid (%s)", why);
	is_u64(s2.meta_bytes, s0.meta_bytes, "... meta_bytes as in a fresh store");
	is_u64(s2.fold_index_bytes, s0.fold_index_bytes,
	       "... fold_index_bytes as in a fresh store");
	is_u64(s2.ns_bytes, 0, "... ns_bytes 0");
	/* What stays: the pool's page map (8 bytes per page it ever held,
	 * touched pages); until a compaction, the empty spans the pool keeps
	 * (one per shard of a class: pool_pages) and the handle tables of its
	 * classes (4 bytes per object at the peak, in pages); the heap's kept
	 * empty slabs (256 KiB at most). */
	map = (s1.pool_pages * 8 + 2 * 4096 + 4095) / 4096 * 4096;
	slack = 256 * 1024 + 16 * 4096 + s1.pool_objs * 4 + 64 * 4096;
	ok(s2.mem_used_total - s2.pool_pages * PG <=
	   s0.mem_used_total + map + slack,
	   "... mem_used_total %llu -> %llu -> %llu, of which %llu in kept "
	   "pool spans (the rest <= fresh + page map %llu + kept slabs)",
	   (unsigned long long)s0.mem_used_total,
	   (unsigned long long)s1.mem_used_total,
	   (unsigned long long)s2.mem_used_total,
	   (unsigned long long)(s2.pool_pages * PG), (unsigned long long)map);
	store_shrink(st, NULL);
	store_get_stats(st, &s3);
	ok(s3.mem_used_total <= s0.mem_used_total + map + 16 * 4096,
	   "... after shrink %llu (kept spans and slabs returned)",
	   (unsigned long long)s3.mem_used_total);

	/* Filled again: the same peak, near enough (memory is reused). */
	err = fill_store(st, &fl);
	store_get_stats(st, &s2);
	ok(!err && s2.mem_used_total <= s1.mem_used_total + s1.mem_used_total / 50,
	   "filled again: %llu bytes (first time %llu)",
	   (unsigned long long)s2.mem_used_total,
	   (unsigned long long)s1.mem_used_total);
	empty_store(st, &fl);

	/* The limit applies to the caller's records. */
	store_get_stats(st, &s2);
	store_set_mem_limit(st, s2.mem_used_total + 4096);
	err = 0;
	for (int i = 0; i < 100 && !err; i++) {
		fl.rec[i] = store_mem_alloc(st, 3000, true, &err);
		if (!fl.rec[i])
			break;
	}
	is_u64(err, -ENOSPC, "records at the memory limit: -ENOSPC");
	for (int i = 0; i < 100; i++)
		store_mem_free(st, fl.rec[i]);
	p = store_mem_alloc(st, 3000, false, &err);
	ok(p != NULL, "... unless not limited");
	store_mem_free(st, p);
	store_mem_free(st, malloc(100));	/* malloc's: goes to free() */
	store_mem_free(st, NULL);
	ok(store_is_valid(st, &why), "valid (%s)", why);
	store_destroy(st);
}

/* ---- 4. resident memory under mlockall ---- */

static int mlocked_child(void)
{
	static struct fill fl;
	struct store_config cfg = { .no_background = true };
	struct store_stats s0, s1, s2;
	struct store *st;
	long rss0, rss1, rss2, d1, d2;

	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT))
		return 77;
	if (td_status_kb("VmLck") <= 0)
		return 78;
	st = store_create(&cfg);
	if (!st || store_thread_prepare(st))
		return 1;
	store_get_stats(st, &s0);
	rss0 = td_status_kb("RssAnon");
	if (fill_store(st, &fl))
		return 2;
	store_get_stats(st, &s1);
	rss1 = td_status_kb("RssAnon");
	empty_store(st, &fl);
	store_get_stats(st, &s2);
	rss2 = td_status_kb("RssAnon");
	d1 = (long)(s1.mem_used_total - s0.mem_used_total) / 1024;
	d2 = (long)(s2.mem_used_total - s0.mem_used_total) / 1024;
	printf("# mlocked child: RssAnon %ld -> %ld -> %ld kB; mem_used_total "
	       "+%ld kB, then +%ld kB\n", rss0, rss1, rss2, d1, d2);
	fflush(stdout);
	/* Filled: what the process grew by is what the store counts, within
	 * 5% + 1 MiB (pages the pool prefaulted ahead, stdio). */
	if (labs((rss1 - rss0) - d1) > d1 / 20 + 1024)
		return 3;
	/* Emptied: back to what the store still counts + 1 MiB. */
	if (rss2 - rss0 > d2 + 1024)
		return 4;
	store_destroy(st);
	return 0;
}

static void test_mlocked(void)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(mlocked_child());
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		ok(1, "# SKIP mlockall() refused here");
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 78) {
		ok(1, "# SKIP mlockall() locked nothing (a sanitizer build, "
		   "whose malloc keeps freed memory in quarantine)");
		return;
	}
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "under mlockall: resident memory follows mem_used_total up and "
	   "down (status %d)",
	   WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
}

int main(void)
{
	struct pool *pool = pool_create(NULL);

	if (!pool)
		skip_all("cannot create a pool");
	test_pattern(NULL, "malloc");
	test_pattern(pool, "the pool's heap");
	test_fold(pool);
	pool_destroy(pool);
	test_store();
	test_mlocked();
	return tap_done();
}
