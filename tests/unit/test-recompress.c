// SPDX-License-Identifier: MIT
/*
 * test-recompress - idle tracking and the cold codec, with exact numbers.
 *
 * Which pages are idle is checked through the counters: every idle page
 * that holds an object of its own is either moved to the cold codec
 * (recomp_total) or left as it was because the codec did not shrink it
 * (recomp_kept), so their sum must equal the number of such pages the test
 * left idle, whatever the codec achieves. Every page is read back and
 * compared after each step, and store_is_valid() cross-checks the slots
 * against every counter. The randomized model test in test-store.c mixes
 * aging, idle marking and recompression into its operations as well.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"
#include "testdata.h"

#define PG STORE_PAGE_SIZE
#define NUNIQ 600	/* distinct compressible pages in file a */
#define NSAME 40	/* same-filled pages after them */
#define NDUP 20		/* pages of file b, each equal to one of file a */

/* ok() that a figure fell, both values in the line. */
static void fell(uint64_t before, uint64_t after, const char *what)
{
	ok(after < before, "%s: %llu -> %llu", what,
	   (unsigned long long)before, (unsigned long long)after);
}

static unsigned char data[NUNIQ + NSAME][PG];
static unsigned char bdata[NDUP][PG];	/* what file b holds */

static const char *words[] = {
	"the", "page", "store", "compress", "memory", "swap", "kernel",
	"struct", "return", "static", "int", "void", "if", "else", "for",
	"while", "fold", "object", "handle", "cluster", "of", "and", "a",
	"0x7ffd", "error", "value", "name", "data", "size_t", "const",
};

/* Text-like, distinct for every seed, compressible by any codec. */
static void gen_text(unsigned char *p, uint64_t seed)
{
	size_t n = 0, nw = sizeof(words) / sizeof(words[0]);
	uint64_t x = seed;

	while (n < PG) {
		const char *w;
		size_t l;

		x = td_mix(x + 1);
		w = words[x % nw];
		l = strlen(w);
		if (n + l + 1 > PG)
			l = PG - n - 1;
		memcpy(p + n, w, l);
		n += l;
		p[n++] = (x >> 32) % 8 ? ' ' : '\n';
	}
	memcpy(p, &seed, sizeof(seed));		/* distinct for sure */
}

static struct store *new_store(bool bg, uint64_t after)
{
	struct store_config cfg = {
		.no_background = !bg,
		.recompress_after = after,
		.group_size = 1,	/* one page per frame: exact counts */
	};

	return store_create(&cfg);
}

static void check_valid(struct store *st, const char *what)
{
	const char *why = "?";

	if (!ok(store_is_valid(st, &why), "store valid: %s", what))
		diag("store_is_valid: %s", why);
}

static bool read_is(struct store_file *f, uint64_t page, const void *want)
{
	static unsigned char buf[PG];

	return store_read(f, page, buf) == 0 && memcmp(buf, want, PG) == 0;
}

/* Every page of a (0..NUNIQ+NSAME) and b (NDUP copies) reads back. */
static unsigned int bad_pages(struct store_file *a, struct store_file *b)
{
	unsigned int i, bad = 0;

	for (i = 0; i < NUNIQ + NSAME; i++)
		bad += !read_is(a, i, data[i]);
	for (i = 0; b && i < NDUP; i++)
		bad += !read_is(b, i, bdata[i]);
	return bad;
}

static void stats(struct store *st, struct store_stats *ss)
{
	store_get_stats(st, ss);
}

static void fill(struct store_file *a, struct store_file *b)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < NUNIQ; i++) {
		gen_text(data[i], i + 1);
		err |= store_write(a, i, data[i]);
	}
	for (i = 0; i < NSAME; i++) {
		memset(data[NUNIQ + i], i % 2 ? 0 : 0x5a, PG);
		err |= store_write(a, NUNIQ + i, data[NUNIQ + i]);
	}
	/* b's pages fold onto a's pages 0, 7, 14, ...: shared objects */
	for (i = 0; b && i < NDUP; i++) {
		memcpy(bdata[i], data[i * 7], PG);
		err |= store_write(b, i, bdata[i]);
	}
	ok(err == 0, "filled %u distinct, %u same-filled and %u shared pages",
	   NUNIQ, NSAME, b ? NDUP : 0);
}

/* a's pages in [from, to) whose object b does not share: b holds copies
 * of a's pages 0, 7, ..., 133, and a's pages 100..149 get rewritten. */
static unsigned int unshared(unsigned int from, unsigned int to)
{
	unsigned int i, n = 0;

	for (i = from; i < to; i++)
		n += !(i % 7 == 0 && i / 7 < NDUP && (i < 100 || i >= 150));
	return n;
}

static void test_idle_and_recompress(void)
{
	struct store *st = new_store(false, 80);
	struct store_file *a = store_file_create(st), *b = store_file_create(st);
	struct store_stats s0, s1, s2;
	uint64_t n, moved;
	unsigned int i;

	fill(a, b);
	stats(st, &s0);
	is_u64(s0.pages_folded, 2 * NDUP, "the shared pages are folded");

	/* 7 ticks of recompress_after / 8: nothing is idle yet */
	for (i = 0; i < 7; i++)
		store_age_tick(st, &n);
	store_recompress(st, &moved);
	stats(st, &s1);
	is_u64(moved, 0, "7 of 8 ticks: no page idle, none moved");
	is_u64(s1.recomp_total + s1.recomp_kept, 0, "7 of 8 ticks: none tried");

	/* read 0..99, rewrite 100..149: those become young again */
	for (i = 0; i < 100; i++)
		read_is(a, i, data[i]);
	for (i = 100; i < 150; i++) {
		data[i][100] ^= 0xff;
		store_write(a, i, data[i]);
	}
	stats(st, &s1);
	store_age_tick(st, &n);		/* ages, and moves what is idle */
	store_recompress(st, &moved);	/* finds nothing more */
	stats(st, &s2);
	/* Idle now: a's pages 150..599 but those shared with b, and b's
	 * copies of a's pages 105..147, which the rewrite left b alone with
	 * (b was never read). */
	is_u64(s2.recomp_total + s2.recomp_kept, unshared(150, NUNIQ) + 5,
	       "8th tick: exactly the idle unshared pages were tried");
	ok(s2.recomp_total >= (unshared(150, NUNIQ) + 5) * 9 / 10,
	   "most of them moved (%llu)", (unsigned long long)s2.recomp_total);
	moved += n;
	is_u64(moved, s2.recomp_total, "tick + recompress report the pages moved");
	is_u64(s2.recomp_pages, s2.recomp_total, "recomp_pages: the moved pages");
	ok(s2.recomp_saved > 0 && s2.compr_data_size + s2.recomp_saved ==
	   s1.compr_data_size, "compr_data_size fell by recomp_saved (%llu -> %llu, saved %llu)",
	   (unsigned long long)s1.compr_data_size,
	   (unsigned long long)s2.compr_data_size,
	   (unsigned long long)s2.recomp_saved);
	fell(s1.mem_used_total, s2.mem_used_total, "mem_used_total fell");
	is_u64(bad_pages(a, b), 0, "every page reads back after recompression");
	check_valid(st, "after recompression");

	/* reads of cold pages: still cold, age back to 0, contents exact */
	stats(st, &s1);
	for (i = 0; i < 20; i++)
		store_age_tick(st, &n);
	store_recompress(st, &moved);
	stats(st, &s2);
	is_u64(s2.recomp_total + s2.recomp_kept,
	       s1.recomp_total + s1.recomp_kept + unshared(0, 150),
	       "20 more ticks: the young unshared pages were tried too");

	/* marking everything idle: the shared objects are still skipped */
	store_mark_idle(st, &n);
	is_u64(n, NUNIQ + NDUP, "mark_idle marked every page with an object");
	stats(st, &s1);
	store_recompress(st, &moved);
	stats(st, &s2);
	is_u64(moved, 0, "nothing left to move but shared objects");
	is_u64(s2.recomp_total + s2.recomp_kept, unshared(0, NUNIQ) + 5,
	       "every unshared object was tried exactly once");

	/* unshare: drop b's copies, the objects are now the a's alone */
	store_discard(b, 0, NDUP);
	store_mark_idle(st, NULL);
	store_recompress(st, &moved);
	stats(st, &s2);
	is_u64(s2.recomp_total + s2.recomp_kept, NUNIQ + 5,
	       "after unsharing, the former shared objects were tried too");
	is_u64(bad_pages(a, NULL), 0, "every page reads back");

	/* folding onto a cold object, then overwriting its first owner */
	for (i = 0; i < NDUP; i++) {
		memcpy(bdata[i], data[i * 7], PG);
		store_write(b, i, bdata[i]);
	}
	stats(st, &s1);
	is_u64(s1.pages_folded, 2 * NDUP, "new copies fold onto cold objects");
	is_u64(bad_pages(a, b), 0, "folded copies of cold pages read back");
	for (i = 0; i < NDUP; i++) {
		gen_text(data[i * 7], 1000000 + i);
		store_write(a, i * 7, data[i * 7]);
	}
	is_u64(bad_pages(a, b), 0,
	       "overwritten cold pages read their new contents, b's copies "
	       "the old ones");
	check_valid(st, "after folding and overwrites");
	store_file_destroy(a);
	store_file_destroy(b);
	stats(st, &s2);
	is_u64(s2.recomp_pages, 0, "files gone: no cold page left");
	is_u64(s2.pool_objs, 0, "files gone: no object left");
	store_destroy(st);
}

static void test_lz4hc(void)
{
	struct store_cold_codec alg = { STORE_COLD_LZ4HC, 12 };
	struct store *st = new_store(false, 0);
	struct store_file *a = store_file_create(st);
	struct store_stats ss;
	uint64_t moved;

	ok(store_set_cold_codec(st, &alg) == 0, "lz4hc:12 accepted");
	fill(a, NULL);
	store_age_tick(st, NULL);
	store_recompress(st, &moved);
	is_u64(moved, 0, "recompress_after 0: aging alone never makes idle");
	store_mark_idle(st, NULL);
	store_recompress(st, &moved);
	stats(st, &ss);
	is_u64(ss.recomp_total + ss.recomp_kept, NUNIQ,
	       "lz4hc: every marked page tried");
	diag("lz4hc:12 moved %llu, kept %llu, saved %llu bytes",
	     (unsigned long long)ss.recomp_total,
	     (unsigned long long)ss.recomp_kept,
	     (unsigned long long)ss.recomp_saved);
	is_u64(bad_pages(a, NULL), 0, "lz4hc pages read back");
	check_valid(st, "lz4hc");
	store_destroy(st);
}

static void test_settings(void)
{
	static const char *good[] = { "zstd", "zstd:1", "zstd:19", "lz4hc",
				      "lz4hc:12" };
	static const char *bad[] = { "", "zstd:", "zstd:0", "zstd:x", "ZSTD",
				     "zstd:1234", "gzip", "zstd:3:4", ":3",
				     "lz4", "zstd 3" };
	struct store *st = new_store(false, 0);
	struct store_cold_codec a, got;
	char buf[32];
	unsigned int i, nbad = 0, ngood = 0;

	store_get_cold_codec(st, &got);
	store_cold_codec_format(&got, buf, sizeof(buf));
	ok(!strcmp(buf, "zstd:6"), "default cold codec zstd:6 (%s)", buf);
	is_u64(store_get_recompress_after(st), 0, "recompress_after 0 by default");
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ngood += store_cold_codec_parse(good[i], strlen(good[i]),
						&a) == 0 &&
			 store_set_cold_codec(st, &a) == 0;
	is_u64(ngood, 5, "good codec names accepted");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (store_cold_codec_parse(bad[i], strlen(bad[i]), &a) !=
		    -EINVAL) {
			diag("accepted: '%s'", bad[i]);
			nbad++;
		}
	}
	is_u64(nbad, 0, "bad codec names rejected with EINVAL");
	a.algo = STORE_COLD_ZSTD;
	a.level = 20;
	ok(store_set_cold_codec(st, &a) == -EINVAL, "zstd:20 -> EINVAL");
	a.algo = STORE_COLD_LZ4HC;
	a.level = 13;
	ok(store_set_cold_codec(st, &a) == -EINVAL, "lz4hc:13 -> EINVAL");
	a.algo = (enum store_cold_algo)7;
	a.level = 1;
	ok(store_set_cold_codec(st, &a) == -EINVAL, "codec 7 -> EINVAL");
	store_get_cold_codec(st, &got);
	store_cold_codec_format(&got, buf, sizeof(buf));
	ok(!strcmp(buf, "lz4hc:12"), "refused values left it as it was (%s)",
	   buf);
	ok(store_set_recompress_after(st, STORE_RECOMPRESS_AFTER_MAX + 1) ==
	   -EINVAL, "recompress_after past the maximum -> EINVAL");
	ok(store_set_recompress_after(st, 3600) == 0 &&
	   store_get_recompress_after(st) == 3600, "recompress_after 3600 set");
	store_destroy(st);
}

/* The background thread does it by itself. */
static void test_background(void)
{
	struct store *st = new_store(true, 1);
	struct store_file *a = store_file_create(st);
	struct store_stats ss;
	unsigned int waited;

	fill(a, NULL);
	for (waited = 0; waited < 100; waited++) {
		stats(st, &ss);
		if (ss.recomp_total + ss.recomp_kept == NUNIQ)
			break;
		usleep(100 * 1000);
	}
	stats(st, &ss);
	is_u64(ss.recomp_total + ss.recomp_kept, NUNIQ,
	       "recompress_after 1: every page tried by the background thread");
	ok(waited >= 5, "not before they were idle (%.1f s)", waited / 10.0);
	diag("background: moved %llu pages in ~%.1f s, saved %llu bytes",
	     (unsigned long long)ss.recomp_total, waited / 10.0,
	     (unsigned long long)ss.recomp_saved);
	is_u64(bad_pages(a, NULL), 0, "every page reads back");
	/* turning it off stops the aging: a fresh write stays as it is */
	store_set_recompress_after(st, 0);
	gen_text(data[0], 555555);
	store_write(a, 0, data[0]);
	{
		struct store_stats s1;

		stats(st, &s1);
		usleep(1500 * 1000);
		stats(st, &ss);
		is_u64(ss.recomp_total + ss.recomp_kept,
		       s1.recomp_total + s1.recomp_kept,
		       "off: nothing tried any more");
	}
	is_u64(bad_pages(a, NULL), 0, "every page reads back");
	check_valid(st, "background");
	store_destroy(st);
}

/* Bytes malloc has handed out, in every arena (mmapped chunks included). */
static uint64_t malloc_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/* Whether malloc_in_use() sees allocations (sanitizers replace malloc,
 * and mallinfo2() then reports glibc's untouched arenas). */
static bool mallinfo_sees_malloc(void)
{
	uint64_t before = malloc_in_use();
	void *volatile p = malloc(65536);
	bool seen = p && malloc_in_use() >= before + 65536;

	free(p);
	return seen;
}

struct cold_reader {
	struct store_file *f;
	bool prepare;		/* call store_thread_prepare() first */
	int prep;		/* what it returned */
	unsigned int bad;	/* pages that failed or differed */
	int64_t grew;		/* malloc_in_use() after the reads - before */
};

/* A new thread that reads every unique page of f, cold ones included. */
static void *cold_reader_main(void *arg)
{
	struct cold_reader *r = arg;
	unsigned char *buf = malloc(PG); /* this thread's arena, made now */
	uint64_t before;

	if (!buf) {
		r->bad = NUNIQ;
		return NULL;
	}
	if (r->prepare)
		r->prep = store_thread_prepare(NULL);
	before = malloc_in_use();
	for (unsigned int i = 0; i < NUNIQ; i++)
		if (store_read(r->f, i, buf) || memcmp(buf, data[i], PG))
			r->bad++;
	r->grew = (int64_t)(malloc_in_use() - before);
	free(buf);
	return NULL;
}

static void run_cold_reader(struct cold_reader *r)
{
	pthread_t t;

	if (pthread_create(&t, NULL, cold_reader_main, r) ||
	    pthread_join(t, NULL))
		r->bad = NUNIQ;
}

/*
 * Swap safety: a thread that serves swap-ins must not allocate to read a
 * cold page (the allocation may wait for the very swap-out it would serve,
 * or fail and turn a swap-in into an I/O error). A thread that called
 * store_thread_prepare() reads zstd pages with malloc's total unchanged;
 * one that did not is shown to allocate the decoding context, so the
 * measurement sees what it must. Where mallinfo2() does not see malloc
 * (sanitizer builds replace it), those two checks are skipped.
 */
static void test_prepared_thread(void)
{
	struct store *st = new_store(false, 0);
	struct store_file *a = store_file_create(st);
	struct store_cold_codec alg;
	struct cold_reader cold = { .f = a }, warm = { .f = a, .prepare = true };
	struct store_stats ss;
	bool zstd;

	store_get_cold_codec(st, &alg);
	zstd = alg.algo == STORE_COLD_ZSTD;
	fill(a, NULL);
	store_mark_idle(st, NULL);
	store_recompress(st, NULL);
	stats(st, &ss);
	ok(ss.recomp_pages >= NUNIQ / 2, "most pages cold (%llu of %u)",
	   (unsigned long long)ss.recomp_pages, NUNIQ);

	run_cold_reader(&cold);
	is_u64(cold.bad, 0, "an unprepared thread reads every cold page back");
	run_cold_reader(&warm);
	is_u64(warm.prep, 0, "store_thread_prepare() succeeds");
	is_u64(warm.bad, 0, "a prepared thread reads every cold page back");
	if (!mallinfo_sees_malloc()) {
		printf("ok %u - # SKIP mallinfo2() does not see this malloc "
		       "(sanitizer build)\n", ++tap_n);
		printf("ok %u - # SKIP (same)\n", ++tap_n);
	} else {
		ok(!zstd || cold.grew >= 16384,
		   "unprepared: the zstd context is allocated on the read path "
		   "(%lld bytes)", (long long)cold.grew);
		is_u64(warm.grew, 0,
		       "prepared: reading cold pages allocates nothing");
	}
	check_valid(st, "prepared thread");
	store_destroy(st);
}

/*
 * A cold intake: written pages go straight to the cold codec. Measured
 * against a store with the LZ4 intake holding the same pages.
 */
static void test_intake(void)
{
	struct store_cold_codec z1 = { STORE_COLD_ZSTD, 1 }, got;
	struct store_cold_codec bad = { STORE_COLD_ZSTD, 20 };
	struct store *st = new_store(false, 0), *ref = new_store(false, 0);
	struct store_file *a = store_file_create(st), *b = store_file_create(st);
	struct store_file *ra = store_file_create(ref);
	struct store_stats ss, rs, s1;
	static unsigned char noise[PG];
	uint64_t moved;
	unsigned int i;
	char buf[32];

	ok(!store_get_intake(st, &got), "the intake is LZ4 by default");
	ok(store_set_intake(st, &z1) == 0, "intake zstd:1 accepted");
	ok(store_set_intake(st, &bad) == -EINVAL, "intake zstd:20 -> EINVAL");
	ok(store_get_intake(st, &got) && got.algo == STORE_COLD_ZSTD &&
	   got.level == 1, "a refused intake left it as it was");
	fill(a, b);
	for (i = 0; i < NUNIQ + NSAME; i++)
		store_write(ra, i, data[i]);
	stats(st, &ss);
	stats(ref, &rs);
	is_u64(ss.intake_cold, NUNIQ, "every distinct page went to the cold codec");
	is_u64(ss.recomp_pages, NUNIQ, "... and counts in recomp_pages");
	is_u64(ss.same_pages, NSAME, "same-filled pages stay same-filled");
	is_u64(ss.pages_folded, 2 * NDUP, "copies still fold onto cold objects");
	ok(ss.compr_data_size * 10 < rs.compr_data_size * 9,
	   "zstd:1 holds the pages in less than 0.9 of LZ4's bytes (%llu vs %llu)",
	   (unsigned long long)ss.compr_data_size,
	   (unsigned long long)rs.compr_data_size);
	is_u64(bad_pages(a, b), 0, "every page reads back");
	check_valid(st, "cold intake");

	/* Cold on arrival: recompression has nothing left to do. */
	store_mark_idle(st, NULL);
	store_recompress(st, &moved);
	stats(st, &s1);
	is_u64(moved, 0, "idle + recompress: nothing to move");
	is_u64(s1.recomp_total + s1.recomp_kept, 0, "... nothing even tried");

	/* A page no codec shrinks is stored raw, not cold. */
	td_fill(noise, PG, 77);
	store_write(a, NUNIQ + NSAME, noise);
	stats(st, &s1);
	is_u64(s1.huge_pages, 1, "an incompressible page is stored raw");
	is_u64(s1.intake_cold, NUNIQ, "... and not counted as cold");
	ok(read_is(a, NUNIQ + NSAME, noise), "... and reads back");

	/* Back to LZ4: rewritten pages leave the cold codec. */
	ok(store_set_intake(st, NULL) == 0 && !store_get_intake(st, &got),
	   "intake set back to LZ4");
	for (i = 200; i < 210; i++) {
		data[i][10] ^= 0x55;
		store_write(a, i, data[i]);
	}
	stats(st, &s1);
	is_u64(s1.recomp_pages, NUNIQ - 10, "10 rewritten pages are LZ4 again");
	is_u64(s1.intake_cold, NUNIQ, "intake_cold counts cold writes only");
	is_u64(bad_pages(a, b), 0, "every page reads back after the rewrites");
	check_valid(st, "intake back to LZ4");
	store_cold_codec_format(&z1, buf, sizeof(buf));
	store_destroy(st);
	store_destroy(ref);
}

/* read_idle: a read leaves the page idle, the next tick moves it. */
static void test_read_idle(void)
{
	struct store *st = new_store(false, 80);
	struct store_file *a = store_file_create(st);
	struct store_stats ss;
	uint64_t n;
	unsigned int i;

	ok(!store_get_read_idle(st), "read_idle is off by default");
	store_set_read_idle(st, true);
	ok(store_get_read_idle(st), "read_idle on");
	fill(a, NULL);
	for (i = 0; i < 100; i++)
		ok(i || read_is(a, i, data[i]), "a read of page 0 is exact");
	for (i = 1; i < 100; i++)
		read_is(a, i, data[i]);
	store_age_tick(st, &n);
	stats(st, &ss);
	is_u64(ss.recomp_total + ss.recomp_kept, 100,
	       "one tick: exactly the 100 pages read were tried");
	ok(ss.recomp_total >= 90, "most of them moved (%llu)",
	   (unsigned long long)ss.recomp_total);
	is_u64(bad_pages(a, NULL), 0, "every page reads back");
	check_valid(st, "read_idle");
	store_destroy(st);
}

struct cold_writer {
	struct store *st;
	struct store_file *f;
	bool prepare;
	int prep;
	unsigned int bad;
	int64_t grew;
};

/* A new thread that writes pages 1..NUNIQ-1 of f with a cold intake. */
static void *cold_writer_main(void *arg)
{
	struct cold_writer *w = arg;
	uint64_t before;

	if (w->prepare)
		w->prep = store_thread_prepare(w->st);
	before = malloc_in_use();
	for (unsigned int i = 1; i < NUNIQ; i++)
		w->bad += store_write(w->f, i, data[i]) != 0;
	w->grew = (int64_t)(malloc_in_use() - before);
	return NULL;
}

/* Swap safety for the intake: a prepared thread writes cold pages without
 * allocating a compression context (it exists already). */
static void test_prepared_writer(void)
{
	struct store_cold_codec z = { STORE_COLD_ZSTD, 1 };
	/* No folding: only the codec may allocate (the fold index would
	 * grow back after the discards). */
	struct store_config cfg = { .no_background = true, .group_size = 1,
				    .intake_cold = true,
				    .intake = z, .fold = STORE_FOLD_OFF };
	struct store *st = store_create(&cfg);
	struct cold_writer cold = { .st = st }, warm = { .st = st, .prepare = true };
	struct store_stats ss;
	pthread_t t;

	/* Both writers overwrite pages that the main thread wrote with the
	 * same contents: the clusters exist and every new object takes the
	 * place its predecessor leaves in the pool, so what they allocate is
	 * the codec's. */
	cold.f = warm.f = store_file_create(st);
	for (unsigned int i = 1; i < NUNIQ; i++)
		store_write(cold.f, i, data[i]);
	ok(!pthread_create(&t, NULL, cold_writer_main, &cold) &&
	   !pthread_join(t, NULL), "an unprepared writer ran");
	ok(!pthread_create(&t, NULL, cold_writer_main, &warm) &&
	   !pthread_join(t, NULL), "a prepared writer ran");
	is_u64(warm.prep, 0, "store_thread_prepare(st) succeeds");
	is_u64(cold.bad + warm.bad, 0, "every write succeeded");
	stats(st, &ss);
	is_u64(ss.recomp_pages, NUNIQ - 1, "the pages are cold");
	if (!mallinfo_sees_malloc()) {
		printf("ok %u - # SKIP mallinfo2() does not see this malloc "
		       "(sanitizer build)\n", ++tap_n);
		printf("ok %u - # SKIP (same)\n", ++tap_n);
	} else {
		/* A new thread also gets pool spans of its own shard (their
		 * records come from malloc, a few KiB): the codec's share is
		 * the difference, a zstd context being 60-90 KiB. */
		ok(cold.grew >= warm.grew + 16384,
		   "unprepared: the zstd compression context is allocated on "
		   "the write path (%lld bytes, prepared %lld)",
		   (long long)cold.grew, (long long)warm.grew);
		ok(warm.grew < 16384,
		   "prepared: no codec context allocated by cold writes "
		   "(%lld bytes: the pool's span records)", (long long)warm.grew);
	}
	check_valid(st, "prepared writer");
	store_destroy(st);
}

/* zram's forms: idle N (pages untouched for N seconds) and recompress
 * type=huge|idle|huge_idle threshold=N algo=CODEC. */
static void test_zram_forms(void)
{
	struct store_config cfg = { .no_background = true, .group_size = 1,
				    .recompress_after = 80,
				    .huge_threshold = 1024 };
	struct store *st = store_create(&cfg), *off = new_store(false, 0);
	struct store_file *a = store_file_create(st);
	struct store_recompress_opts o = { 0 };
	struct store_cold_codec alg;
	struct store_stats s0, s1;
	uint64_t n, huge;
	unsigned int i;
	char buf[32];

	ok(store_mark_idle_since(off, 60, &n) == -EINVAL,
	   "idle N without aging: EINVAL (no ages kept)");
	store_destroy(off);

	/* With a huge threshold of 1 KiB, text pages are stored raw. */
	fill(a, NULL);
	stats(st, &s0);
	huge = s0.huge_pages;
	ok(huge >= NUNIQ / 2, "%llu of %u text pages stored raw (huge)",
	   (unsigned long long)huge, NUNIQ);

	/* Three ticks of 10 s: every page is 30 s old; read 100 of them. */
	for (i = 0; i < 3; i++)
		store_age_tick(st, NULL);
	for (i = 0; i < 100; i++)
		read_is(a, i, data[i]);
	ok(store_mark_idle_since(st, 40, &n) == 0 && n == 0,
	   "idle 40: no page is 40 s old (marked %llu)", (unsigned long long)n);
	ok(store_mark_idle_since(st, 25, &n) == 0 && n == NUNIQ - 100,
	   "idle 25: the %u pages not read for 30 s are marked (%llu)",
	   NUNIQ - 100, (unsigned long long)n);

	/* type=huge moves raw pages, idle or not; the rest stay. */
	o.type = STORE_RECOMPRESS_HUGE;
	o.threshold = 4096;
	ok(store_recompress_with(st, &o, &n) == 0, "recompress type=huge threshold=4096");
	stats(st, &s1);
	is_u64(s1.recomp_total + s1.recomp_kept, huge,
	       "type=huge: exactly the raw pages were tried");
	ok(s1.huge_pages < huge / 10, "type=huge: most raw pages are cold now "
	   "(%llu left raw)", (unsigned long long)s1.huge_pages);
	is_u64(bad_pages(a, NULL), 0, "every page reads back");

	/* threshold above every object: nothing tried. */
	o.type = STORE_RECOMPRESS_IDLE;
	o.threshold = 4096;
	store_mark_idle(st, NULL);
	stats(st, &s0);
	store_recompress_with(st, &o, &n);
	stats(st, &s1);
	is_u64(s1.recomp_total + s1.recomp_kept, s0.recomp_total + s0.recomp_kept,
	       "type=idle threshold=4096: no object that big is left, none tried");
	o.threshold = 4097;
	ok(store_recompress_with(st, &o, &n) == -EINVAL, "threshold past a page: EINVAL");
	o.threshold = 0;
	o.type = 4;
	ok(store_recompress_with(st, &o, &n) == -EINVAL, "an unknown type: EINVAL");

	/* algo= for this run only. */
	for (i = 0; i < 50; i++) {
		data[i][7] ^= 1;
		store_write(a, i, data[i]);
	}
	store_mark_idle(st, NULL);
	memset(&o, 0, sizeof(o));
	o.algo_set = true;
	o.algo.algo = STORE_COLD_LZ4HC;
	o.algo.level = 12;
	stats(st, &s0);
	ok(store_recompress_with(st, &o, &n) == 0 && n > 0,
	   "recompress algo=lz4hc:12 moved %llu pages", (unsigned long long)n);
	store_get_cold_codec(st, &alg);
	store_cold_codec_format(&alg, buf, sizeof(buf));
	ok(strcmp(buf, "zstd:6") == 0, "... and left recomp_algorithm as it was (%s)", buf);
	o.algo.level = 13;
	ok(store_recompress_with(st, &o, &n) == -EINVAL, "algo lz4hc:13: EINVAL");
	is_u64(bad_pages(a, NULL), 0, "every page reads back");
	check_valid(st, "zram forms");
	store_destroy(st);
}

/* ---- groups ---- */

struct greader {
	struct store_file *f;
	_Atomic bool stop;
	unsigned int bad, reads;
};

/* Reads pages 0..NUNIQ-1, which hold data[i] or, once overwritten by the
 * main thread, data[i] with byte 200 flipped (gdata_alt), or zeros once
 * discarded. */
static unsigned char gdata_alt[NUNIQ][PG], gdata_orig[NUNIQ][PG];
static const unsigned char zero_page[PG];

static void *greader_main(void *arg)
{
	struct greader *r = arg;
	static _Thread_local unsigned char buf[PG];
	unsigned int i = 0;

	while (!atomic_load(&r->stop)) {
		i = (i + 37) % NUNIQ;
		if (store_read(r->f, i, buf) ||
		    (memcmp(buf, gdata_orig[i], PG) &&
		     memcmp(buf, gdata_alt[i], PG) && memcmp(buf, zero_page, PG)))
			r->bad++;
		r->reads++;
	}
	return NULL;
}

static void test_groups(void)
{
	struct store_config cfg = { .no_background = true, .group_size = 8 };
	struct store *st = store_create(&cfg), *one = new_store(false, 0);
	struct store_file *a = store_file_create(st), *b = store_file_create(st);
	struct store_file *a1 = store_file_create(one);
	struct store_stats s0, s1, s2, o1;
	struct greader r = { .f = a };
	pthread_t th;
	uint64_t n;
	unsigned int i;

	is_u64(store_get_group_size(st), 8, "group_pages from the config");
	ok(store_set_group_size(st, 0) == -EINVAL, "group_pages 0: EINVAL");
	ok(store_set_group_size(st, STORE_GROUP_MAX + 1) == -EINVAL,
	   "group_pages %u: EINVAL", STORE_GROUP_MAX + 1);
	is_u64(store_get_group_size(one), 1, "... 1 where asked");

	/* Reads (the checks' too) leave pages idle, but where a test wants
	 * pages used again. */
	store_set_read_idle(st, true);
	fill(a, b);
	for (i = 0; i < NUNIQ; i++)
		store_write(a1, i, data[i]);
	store_mark_idle(st, NULL);
	store_mark_idle(one, NULL);
	store_recompress(one, NULL);
	stats(one, &o1);
	stats(st, &s0);
	store_recompress(st, &n);
	stats(st, &s1);
	/* Cluster 0 (pages 0..511) has 512 - 20 unshared pages with objects:
	 * 61 groups of 8 and one of 4; cluster 1 (512..599) 11 groups. */
	is_u64(s1.group_pages, NUNIQ - NDUP, "every unshared page is grouped");
	is_u64(s1.groups, 61 + 1 + 11, "in groups of 8 per cluster, the rest of "
	       "a cluster in one");
	is_u64(n, NUNIQ - NDUP, "recompress reports them");
	is_u64(s1.recomp_pages, NUNIQ - NDUP, "and they count as cold");
	ok(s1.group_saved > 0 && s1.compr_data_size + s1.group_saved ==
	   s0.compr_data_size, "compr_data_size fell by group_saved");
	ok(s1.compr_data_size < o1.compr_data_size,
	   "groups hold less than one frame a page: %llu < %llu bytes",
	   (unsigned long long)s1.compr_data_size,
	   (unsigned long long)o1.compr_data_size);
	is_u64(bad_pages(a, b), 0, "every grouped page reads back");
	stats(st, &s2);
	/* The reads made this thread's group scratch and nothing else. */
	ok(s1.group_scratch_bytes == 0 && s2.group_scratch_bytes > 0,
	   "the reading thread has group scratch now (%llu bytes)",
	   (unsigned long long)s2.group_scratch_bytes);
	is_u64(s2.mem_used_total - s1.mem_used_total, s2.group_scratch_bytes,
	       "mem_used_total grew by exactly the scratch");
	check_valid(st, "groups made");

	/* Readers of grouped pages while pages leave their groups. */
	memcpy(gdata_orig, data, sizeof(gdata_orig));
	memcpy(gdata_alt, data, sizeof(gdata_alt));
	for (i = 0; i < NUNIQ; i++)
		gdata_alt[i][200] ^= 0xff;
	ok(pthread_create(&th, NULL, greader_main, &r) == 0, "reader started");

	/* overwrite one page of a group, discard a run across groups */
	memcpy(data[3], gdata_alt[3], PG);
	store_write(a, 3, data[3]);
	stats(st, &s2);
	is_u64(s2.group_pages, s1.group_pages - 1, "an overwritten page left its group");
	is_u64(s2.groups, s1.groups, "... which stays");
	ok(s2.compr_data_size > s1.compr_data_size, "... with its bytes");
	store_discard(a, 200, 64);
	for (i = 200; i < 264; i++)
		memset(data[i], 0, PG);
	stats(st, &s2);
	ok(s2.groups < s1.groups, "groups whose pages were all discarded are "
	   "freed (%llu -> %llu)", (unsigned long long)s1.groups,
	   (unsigned long long)s2.groups);
	is_u64(bad_pages(a, b), 0, "every page reads back after the overwrite "
	       "and the discard");
	check_valid(st, "pages left groups");

	/* Sparse groups: overwrite 7 of every 8 pages of 400..479; the
	 * walk regroups what is left of those groups. */
	for (i = 400; i < 480; i++) {
		if (i % 8 == 0 || (i % 7 == 0 && i / 7 < NDUP))
			continue;
		memcpy(data[i], gdata_alt[i], PG);
		store_write(a, i, data[i]);
	}
	stats(st, &s1);
	store_recompress(st, &n);	/* the new pages are young */
	stats(st, &s2);
	ok(n > 0 && s2.groups < s1.groups, "sparse groups regrouped: %llu pages, "
	   "groups %llu -> %llu", (unsigned long long)n,
	   (unsigned long long)s1.groups, (unsigned long long)s2.groups);
	fell(s1.compr_data_size, s2.compr_data_size,
	     "... giving back their dead bytes (compr_data_size)");
	is_u64(bad_pages(a, b), 0, "every page reads back after regrouping");
	check_valid(st, "sparse groups regrouped");

	while (r.reads < 500)
		usleep(1000);
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	ok(r.bad == 0, "a reader saw only whole pages, old or new (%u reads, "
	   "%u bad)", r.reads, r.bad);

	/* A grouped page read again is hot: the next walk takes it out. */
	store_mark_idle(st, NULL);
	store_recompress(st, NULL);
	stats(st, &s1);
	store_set_read_idle(st, false);
	read_is(a, 300, data[300]);
	read_is(a, 301, data[301]);
	store_set_read_idle(st, true);
	store_recompress(st, &n);
	stats(st, &s2);
	is_u64(s2.group_pages, s1.group_pages - 2, "two pages read again left "
	       "their groups");
	is_u64(s2.recomp_pages, s1.recomp_pages - 2, "... and the cold codec");
	is_u64(bad_pages(a, b), 0, "every page reads back");
	check_valid(st, "hot pages left");

	/* A group with one page left (pages 512..519 made one): that page
	 * is rewritten alone, the dead pages' bytes given back. */
	for (i = 513; i < 520; i++) {
		memcpy(data[i], gdata_alt[i], PG);
		store_write(a, i, data[i]);
	}
	stats(st, &s1);
	store_recompress(st, &n);	/* the new pages are young */
	stats(st, &s2);
	ok(n >= 1, "the last page of a mostly dead group was rewritten (with "
	   "%llu more)", (unsigned long long)n - 1);
	/* (the pages that left their groups were read idle since, by the
	 * checks: they may have joined new groups, hence no exact counts) */
	ok(s2.compr_data_size < s1.compr_data_size,
	   "... alone in a group of its own, the dead bytes given back "
	   "(%llu -> %llu)", (unsigned long long)s1.compr_data_size,
	   (unsigned long long)s2.compr_data_size);
	ok(read_is(a, 512, data[512]), "... and it reads back");
	check_valid(st, "a group of one");

	/* group_pages 1: no new groups, existing ones stay */
	ok(store_set_group_size(st, 1) == 0, "group_pages 1");
	store_mark_idle(st, NULL);
	store_recompress(st, &n);
	stats(st, &s1);
	is_u64(s1.group_pages, s2.group_pages, "groups stay with group_pages 1");
	is_u64(n, 7, "the 7 rewritten pages went to the cold codec alone");
	ok(store_set_group_size(st, 16) == 0, "group_pages 16");
	for (i = 0; i < NUNIQ; i += 3) {
		memcpy(data[i], gdata_alt[i], PG);
		store_write(a, i, data[i]);
	}
	store_mark_idle(st, NULL);
	store_recompress(st, &n);
	stats(st, &s2);
	ok(s2.group_pages > 0 && n > 0, "groups of 16: %llu pages moved, "
	   "%llu in %llu groups", (unsigned long long)n,
	   (unsigned long long)s2.group_pages, (unsigned long long)s2.groups);
	is_u64(bad_pages(a, b), 0, "every page reads back");
	check_valid(st, "groups of 16");

	store_file_destroy(a);
	store_file_destroy(b);
	stats(st, &s2);
	is_u64(s2.groups + s2.group_pages + s2.pool_objs, 0,
	       "files gone: no group, no object left");
	store_file_destroy(a1);
	store_destroy(one);
	store_destroy(st);
}

struct rewrite {
	struct store *st;
	struct store_file *f;
	uint64_t page;
	const unsigned char *now;
	unsigned int calls;
	uint64_t compr_before, compr_after;
};

/* The walk's hook: page is discarded and written again with now, and
 * read (read_idle: idle again), while the walk has read it but not yet
 * installed its new form. */
static void rewrite_hook(void *arg)
{
	struct rewrite *r = arg;
	unsigned char buf[PG];
	struct store_stats ss;

	if (r->calls++)
		return;
	stats(r->st, &ss);
	r->compr_before = ss.compr_data_size;
	store_discard(r->f, r->page, 1);
	store_write(r->f, r->page, r->now);
	store_read(r->f, r->page, buf);
	stats(r->st, &ss);
	r->compr_after = ss.compr_data_size;
}

/*
 * A page rewritten while a walk works on it keeps its new bytes. The new
 * page differs from the old in one byte of its random half, so it
 * compresses to the same size; written right after the discard it takes
 * the handle the discard freed, and a read makes it idle again: the slot
 * value is the one the walk saw, and only the object's bytes tell.
 */
static void test_rewritten_meanwhile(unsigned int group)
{
	struct store_config cfg = { .no_background = true, .group_size = group,
				    .fold = STORE_FOLD_OFF };
	struct store *st = store_create(&cfg);
	struct store_file *f = store_file_create(st);
	static unsigned char was[4][PG], now[PG];
	struct rewrite r = { st, f, 0, now, 0, 0, 0 };	/* the first */
	uint64_t n = 0;
	unsigned int p;

	store_set_read_idle(st, true);
	for (p = 0; p < 4; p++) {
		memset(was[p], 0, PG);
		td_fill(was[p], 1500, 777 + p + 10 * group);
		store_write(f, p, was[p]);
		read_is(f, p, was[p]);		/* idle */
	}
	memcpy(now, was[0], PG);
	now[700] ^= 0x5a;
	store_set_walk_hook(st, rewrite_hook, &r);
	store_recompress(st, &n);
	store_set_walk_hook(st, NULL, NULL);
	ok(r.calls >= 1 && r.compr_after == r.compr_before,
	   "group %u: page 0 rewritten during the walk, same size (%llu -> %llu)",
	   group, (unsigned long long)r.compr_before,
	   (unsigned long long)r.compr_after);
	ok(read_is(f, 0, now), "group %u: the rewritten page reads its new "
	   "bytes after the walk", group);
	ok(read_is(f, 1, was[1]) && read_is(f, 2, was[2]) &&
	   read_is(f, 3, was[3]), "group %u: the others read back", group);
	check_valid(st, "a page rewritten during a walk");
	store_destroy(st);
}

int main(void)
{
	test_settings();
	test_idle_and_recompress();
	test_lz4hc();
	test_background();
	test_prepared_thread();
	test_intake();
	test_read_idle();
	test_prepared_writer();
	test_zram_forms();
	test_groups();
	test_rewritten_meanwhile(1);
	test_rewritten_meanwhile(8);
	return tap_done();
}
