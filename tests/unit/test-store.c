// SPDX-License-Identifier: MIT
/*
 * test-store - the page store against a plain in-memory model.
 *
 * 1. Focused tests: API edges, same-filled pages, per-file stats with exact
 *    numbers, seek data/hole, a forced false fold match (a hash function that
 *    collides for every page), the memory limit (ENOSPC at the limit with the
 *    old page intact, a limit lowered below use), and the metadata cost of a
 *    1 TiB sparse file.
 * 2. A randomized model test: 200,000+ operations on several files mixing
 *    writes of real-memory-like pages (copied from this process's own
 *    mappings through /proc/self/mem), text-like, structured, duplicate,
 *    same-filled, nearly-same-filled and incompressible pages with reads,
 *    discards, truncates, seeks, compactions, shrinks, fold scans, fold mode
 *    changes and memory limit phases. Every read is checked against the
 *    model, every page is checked periodically, store_is_valid() runs
 *    periodically, and the statistics are recomputed from the model and
 *    compared (orig_data_size, same_pages, huge_pages, pages_folded,
 *    compr_data_size, per-file figures, I/O counters). The last 40% of the
 *    operations add aging ticks, idle marking, recompression and cold codec
 *    changes; from then on sizes and huge counts are checked as bounds
 *    (recompression only shrinks them) and store_is_valid() checks them
 *    exactly against the slots.
 *
 * PF_STORE_OPS overrides the number of model operations; PF_STORE_SEED the
 * random seed (printed, so a failure can be replayed).
 */
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "store.h"
#include "tap.h"
#include "testdata.h"

#define PG STORE_PAGE_SIZE
#define HUGE_THR 3072u

/* ---- randomness ---- */

static uint64_t rng_s = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	return td_next(&rng_s);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* ---- page sources ---- */

#define NREAL 1024
static unsigned char *real_pages;	/* NREAL pages copied from our memory */
static size_t nreal;

/*
 * Copy pages out of this process's own mappings (libraries, heap, stack,
 * data) through /proc/self/mem: the kernel does the copying, so sanitizers
 * do not see reads of memory they consider poisoned.
 */
static void load_real_pages(void)
{
	struct region { uint64_t start, pages; } reg[512];
	size_t nreg = 0, tries = 0;
	char line[512];
	FILE *maps;
	int mem;

	real_pages = malloc((size_t)NREAL * PG);
	maps = fopen("/proc/self/maps", "r");
	mem = open("/proc/self/mem", O_RDONLY);
	if (!real_pages || !maps || mem < 0)
		goto out;
	while (fgets(line, sizeof(line), maps) && nreg < 512) {
		unsigned long long a, b;
		char perm[8];

		if (sscanf(line, "%llx-%llx %7s", &a, &b, perm) != 3)
			continue;
		if (perm[0] != 'r' || strstr(line, "[vvar") ||
		    strstr(line, "[vsyscall]"))
			continue;
		if (b - a > (256ull << 20))	/* sanitizer shadow etc. */
			continue;
		reg[nreg].start = a;
		reg[nreg].pages = (b - a) / PG;
		nreg++;
	}
	while (nreal < NREAL && nreg && tries++ < NREAL * 20) {
		struct region *r = &reg[rnd_below(nreg)];
		uint64_t at = r->start + rnd_below(r->pages) * PG;

		if (pread(mem, real_pages + nreal * PG, PG, (off_t)at) == PG)
			nreal++;
	}
out:
	if (maps)
		fclose(maps);
	if (mem >= 0)
		close(mem);
}

static const char *words[] = {
	"the", "page", "store", "compress", "memory", "swap", "kernel",
	"struct", "return", "static", "int", "void", "if", "else", "for",
	"while", "fold", "object", "handle", "cluster", "of", "and", "a",
	"to", "in", "is", "that", "it", "with", "as", "{", "}", ";", "==",
	"0x7ffd", "error", "value", "name", "data", "size_t", "const",
};

static void gen_text(unsigned char *p)
{
	size_t n = 0, nw = sizeof(words) / sizeof(words[0]);

	while (n < PG) {
		const char *w = words[rnd_below(nw)];
		size_t l = strlen(w);

		if (n + l + 1 > PG)
			l = PG - n - 1;
		memcpy(p + n, w, l);
		n += l;
		p[n++] = rnd_below(8) ? ' ' : '\n';
	}
}

static void gen_struct(unsigned char *p)
{
	uint64_t id = rnd_below(1 << 20), base = 0x7f0000000000ull +
		rnd_below(1 << 24) * 64;
	size_t i;

	for (i = 0; i < PG; i += 64) {
		uint64_t rec[8] = {
			id++, base + i * 3, rnd_below(100), 0,
			rnd_below(4) ? 0 : rnd(), 0x100000001ull, 0, 42,
		};

		memcpy(p + i, rec, 64);
	}
}

static void gen_random(unsigned char *p)
{
	size_t i;

	for (i = 0; i < PG; i += 8) {
		uint64_t v = rnd();

		memcpy(p + i, &v, 8);
	}
}

static void gen_fill(unsigned char *p, uint64_t pattern)
{
	size_t i;

	for (i = 0; i < PG; i += 8)
		memcpy(p + i, &pattern, 8);
}

static void gen_real(unsigned char *p)
{
	if (!nreal) {
		gen_struct(p);
		return;
	}
	memcpy(p, real_pages + rnd_below(nreal) * PG, PG);
	if (rnd_below(4) == 0)	/* a variant: one byte changed */
		p[rnd_below(PG)] ^= (unsigned char)(1 + rnd_below(255));
}

static const uint64_t patterns[] = {
	0, 0xffffffffffffffffull, 0x0101010101010101ull, 0xdeadbeefdeadbeefull,
	0x00000000ffffffffull, 0x8000000000000000ull, 0x0123456789abcdefull,
	0xcafebabe00000000ull,
};

/* A same-filled page: common patterns, 64-bit ones, fresh random ones. */
static void gen_same(unsigned char *p)
{
	uint64_t pat;

	switch (rnd_below(6)) {
	case 0:
	case 1:
		pat = 0;
		break;
	case 2:
		pat = rnd();	/* a fresh 64-bit pattern */
		break;
	default:
		pat = patterns[rnd_below(sizeof(patterns) / sizeof(patterns[0]))];
		break;
	}
	gen_fill(p, pat);
}

/* Same-filled but for one word: first, last or somewhere. */
static void gen_nearly_same(unsigned char *p)
{
	size_t w;
	uint64_t v;

	gen_fill(p, patterns[rnd_below(3)]);
	switch (rnd_below(3)) {
	case 0:
		w = 0;
		break;
	case 1:
		w = PG / 8 - 1;
		break;
	default:
		w = rnd_below(PG / 8);
		break;
	}
	memcpy(&v, p + w * 8, 8);
	v ^= 1ull << rnd_below(64);
	memcpy(p + w * 8, &v, 8);
}

#define NPOPULAR 48
static unsigned char popular[NPOPULAR][PG];

static void gen_popular_set(void)
{
	unsigned int i;

	for (i = 0; i < NPOPULAR; i++) {
		switch (i % 4) {
		case 0:
			gen_real(popular[i]);
			break;
		case 1:
			gen_text(popular[i]);
			break;
		case 2:
			gen_struct(popular[i]);
			break;
		default:
			if (i % 8 == 3)
				gen_random(popular[i]);
			else
				gen_real(popular[i]);
			break;
		}
	}
}

static void gen_page(unsigned char *p)
{
	unsigned int r = (unsigned int)rnd_below(100);

	if (r < 28)
		gen_real(p);
	else if (r < 40)
		gen_text(p);
	else if (r < 52)
		gen_struct(p);
	else if (r < 75)
		memcpy(p, popular[rnd_below(NPOPULAR)], PG);
	else if (r < 87)
		gen_same(p);
	else if (r < 93)
		gen_random(p);
	else
		gen_nearly_same(p);
}

/* What the store should make of a page. */
enum mkind { MK_HOLE, MK_SAME, MK_OBJ };

static bool page_same(const unsigned char *p)
{
	uint64_t a, b;
	size_t i;

	memcpy(&a, p, 8);
	for (i = 8; i < PG; i += 8) {
		memcpy(&b, p + i, 8);
		if (a != b)
			return false;
	}
	return true;
}

/* Size the store must give the page's object: LZ4 below the threshold,
 * else raw. */
static unsigned int page_csize(const unsigned char *p)
{
	static char dst[PG];
	int n = LZ4_compress_default((const char *)p, dst, PG, HUGE_THR - 1);

	return n > 0 ? (unsigned int)n : PG;
}

/* ---- helpers ---- */

static struct store *new_store(uint64_t (*hash)(const void *, size_t),
			       enum store_fold_mode mode, bool bg)
{
	struct store_config cfg = {
		.fold = mode,
		.huge_threshold = HUGE_THR,
		.no_background = !bg,
		.hash = hash,
	};

	return store_create(&cfg);
}

static bool check_valid(struct store *st, const char *what)
{
	const char *why = "?";
	bool v = store_is_valid(st, &why);

	if (!ok(v, "store valid: %s", what))
		diag("store_is_valid: %s", why);
	return v;
}

static bool read_is(struct store_file *f, uint64_t page, const void *want)
{
	static unsigned char buf[PG];

	if (store_read(f, page, buf))
		return false;
	return memcmp(buf, want, PG) == 0;
}

static const unsigned char zero_page[PG];

/* ---- focused tests ---- */

static void test_api_edges(void)
{
	struct store_config bad = { .fold = 7 };
	struct store_config bad2 = { .defrag_ratio = 101 };
	struct store *st = new_store(NULL, STORE_FOLD_INLINE, true);
	struct store_file *f;
	unsigned char p[PG];
	uint64_t pg;

	ok(store_create(&bad) == NULL, "bad fold mode refused at create");
	ok(store_create(&bad2) == NULL, "bad defrag ratio refused at create");
	ok(st != NULL, "store created with defaults");
	store_destroy(NULL);
	store_file_destroy(NULL);
	f = store_file_create(st);
	ok(f != NULL, "file created");
	gen_text(p);
	is_u64(store_write(f, STORE_MAX_PAGES, p), (uint64_t)-EFBIG,
	       "write past STORE_MAX_PAGES: -EFBIG");
	is_u64(store_write(f, STORE_MAX_PAGES - 1, p), 0,
	       "write of the last addressable page");
	ok(read_is(f, STORE_MAX_PAGES - 1, p), "last addressable page reads back");
	ok(read_is(f, 12345, zero_page), "hole reads as zeros");
	is_u64(store_seek_data(f, 0, &pg), 0, "seek_data finds the far page");
	is_u64(pg, STORE_MAX_PAGES - 1, "seek_data result");
	is_u64(store_truncate(f, 0), 0, "truncate to 0");
	is_u64(store_seek_data(f, 0, &pg), (uint64_t)-ENXIO,
	       "empty file: seek_data -ENXIO");
	is_u64(store_set_fold_mode(st, 3), (uint64_t)-EINVAL,
	       "bad fold mode refused");
	is_u64(store_get_fold_mode(st), STORE_FOLD_INLINE, "fold mode unchanged");
	is_u64(store_set_defrag_ratio(st, 101), (uint64_t)-EINVAL,
	       "defrag ratio 101 refused");
	is_u64(store_get_defrag_ratio(st), 20, "default defrag ratio 20");
	is_u64(store_set_defrag_ratio(st, 35), 0, "defrag ratio 35 set");
	is_u64(store_get_defrag_ratio(st), 35, "defrag ratio reads back");
	is_u64(store_set_fold_mode(st, STORE_FOLD_SCAN), 0, "fold mode scan");
	is_u64(store_get_fold_mode(st), STORE_FOLD_SCAN, "fold mode reads back");
	{
		struct store_class_stats cls[300];
		unsigned int n = store_get_classes(st, cls, 300);

		ok(n > 0 && n <= 300, "pool classes listed (%u)", n);
	}
	check_valid(st, "after edges");
	store_file_destroy(f);
	store_destroy(st);
}

/* The default huge threshold is 7/8 of a page: a page compressing to 3.3
 * KiB is kept compressed, an incompressible one raw. */
static void test_default_threshold(void)
{
	struct store *st = store_create(NULL);
	struct store_file *f = store_file_create(st);
	static char dst[2 * PG];
	struct store_stats ss;
	unsigned char p[PG], r[PG];
	int n;

	gen_random(p);
	memset(p + 3300, 0, PG - 3300);
	n = LZ4_compress_default((const char *)p, dst, PG, sizeof(dst));
	ok(n > 3072 && n < 3584, "test page compresses to %d bytes (3/4..7/8)", n);
	gen_random(r);
	is_u64(store_write(f, 0, p), 0, "3.3 KiB page written");
	is_u64(store_write(f, 1, r), 0, "random page written");
	store_get_stats(st, &ss);
	is_u64(ss.huge_pages, 1, "default threshold: only the random page is raw");
	is_u64(ss.compr_data_size, (uint64_t)n + PG,
	       "default threshold: 3.3 KiB page kept compressed");
	ok(read_is(f, 0, p) && read_is(f, 1, r), "both read back");
	store_destroy(st);
}

static void test_same_filled(void)
{
	struct store *st = new_store(NULL, STORE_FOLD_INLINE, false);
	struct store_file *f = store_file_create(st);
	struct store_stats ss;
	unsigned char p[PG];
	unsigned int i;
	bool all = true;

	for (i = 0; i < 8; i++) {
		gen_fill(p, patterns[i]);
		all &= store_write(f, i, p) == 0;
	}
	gen_fill(p, 0x1122334455667788ull);
	all &= store_write(f, 8, p) == 0;
	all &= store_write(f, 9, p) == 0;
	ok(all, "same-filled pages written");
	for (i = 0; i < 8; i++) {
		gen_fill(p, patterns[i]);
		if (!read_is(f, i, p))
			all = false;
	}
	gen_fill(p, 0x1122334455667788ull);
	all &= read_is(f, 8, p) && read_is(f, 9, p);
	ok(all, "same-filled pages read back");
	store_get_stats(st, &ss);
	is_u64(ss.same_pages, 10, "same_pages");
	is_u64(ss.pool_objs, 0, "same-filled pages take no pool object");
	is_u64(ss.compr_data_size, 0, "compr_data_size 0");
	is_u64(ss.orig_data_size, 10 * PG, "orig_data_size");
	/* nearly same-filled: must be stored as data, not as a pattern */
	gen_fill(p, 0);
	p[PG - 1] = 1;
	store_write(f, 10, p);
	ok(read_is(f, 10, p), "zero page with last byte set reads back");
	gen_fill(p, 0);
	p[0] = 1;
	store_write(f, 11, p);
	ok(read_is(f, 11, p), "zero page with first byte set reads back");
	store_get_stats(st, &ss);
	is_u64(ss.same_pages, 10, "nearly same pages are not same_pages");
	check_valid(st, "same-filled");
	store_destroy(st);
}

static void test_file_stats(void)
{
	struct store *st = new_store(NULL, STORE_FOLD_INLINE, false);
	struct store_file *a = store_file_create(st), *b = store_file_create(st);
	struct store_file_stats fa, fb, fe;
	struct store_stats ss;
	unsigned char t[PG], r[PG], s[PG];
	unsigned int ct, cr;

	store_file_get_counts(b, &fe);	/* while b is empty: its record */
	gen_text(t);
	gen_random(r);
	gen_fill(s, 0x5555555555555555ull);
	ct = page_csize(t);
	cr = page_csize(r);
	/* a: text at 0 and 1 (folded), random at 700 (huge), same at 5 */
	store_write(a, 0, t);
	store_write(a, 1, t);
	store_write(a, 700, r);
	store_write(a, 5, s);
	/* b: text at 3 (shares a's object), nothing else */
	store_write(b, 3, t);
	store_file_get_counts(a, &fa);
	is_u64(fa.pages, 4, "file a counts: pages");
	is_u64(fa.compr_bytes, 2ull * ct + PG, "file a counts: compr_bytes");
	is_u64(fa.folded_pages, 0, "file a counts: folded_pages not counted");
	store_file_get_stats(a, &fa);
	store_file_get_stats(b, &fb);
	is_u64(fa.pages, 4, "file a: pages");
	is_u64(fa.same_pages, 1, "file a: same_pages");
	is_u64(fa.folded_pages, 2, "file a: folded_pages");
	is_u64(fa.huge_pages, 1, "file a: huge_pages");
	is_u64(cr, PG, "random page is incompressible");
	is_u64(fa.compr_bytes, 2ull * ct + PG, "file a: compr_bytes");
	is_u64(fa.clusters, 2, "file a: clusters (pages 0..5 and 700)");
	is_u64(fa.end_page, 701, "file a: end_page");
	/* Clusters sized to the highest page written in them: 8 slots for
	 * pages 0..5, 256 for page 188 of the second; one directory node;
	 * and, with two clusters, the file's lock in 8 stripes (1 KiB). */
	is_u64(fa.meta_bytes - fe.meta_bytes, 2 * 8 + (8 + 256) * 8 + 520 + 1024,
	       "file a: meta_bytes: clusters of 8 and 256 slots, one node, "
	       "lock stripes");
	{
		unsigned char u[PG];

		memcpy(u, t, PG);
		u[100] ^= 0x5a;		/* a page of its own, no fold hit */
		store_write(a, 511, u);
		store_file_get_counts(a, &fa);
		is_u64(fa.meta_bytes - fe.meta_bytes,
		       2 * 8 + (512 + 256) * 8 + 520 + 1024,
		       "file a: a write to page 511 grew cluster 0 to 512 slots");
		ok(read_is(a, 0, t) && read_is(a, 1, t) && read_is(a, 5, s) &&
		   read_is(a, 511, u),
		   "file a: the pages of the grown cluster read back");
		store_discard(a, 511, 1);
	}
	is_u64(fb.pages, 1, "file b: pages");
	is_u64(fb.folded_pages, 1, "file b: folded_pages (shared with a)");
	is_u64(fb.compr_bytes, ct, "file b: compr_bytes");
	/* The text object has three pages (a's 0 and 1, b's 3): a third
	 * each; a alone owns its raw page. */
	store_file_get_stats(a, &fa);
	is_u64(fa.own_bytes, PG, "file a: own_bytes, its raw page");
	is_u64(fa.shared_bytes, (2 * ct + 1) / 3, "file a: shared_bytes, 2/3 of the text");
	is_u64(fb.own_bytes, 0, "file b: owns nothing alone");
	is_u64(fb.shared_bytes, (ct + 1) / 3, "file b: shared_bytes, 1/3 of the text");
	store_get_stats(st, &ss);
	ok(fa.own_bytes + fa.shared_bytes + fb.own_bytes + fb.shared_bytes >=
	   ss.compr_data_size - 1 &&
	   fa.own_bytes + fa.shared_bytes + fb.own_bytes + fb.shared_bytes <=
	   ss.compr_data_size + 1,
	   "own + shared over the files = compr_data_size");
	is_u64(fb.end_page, 4, "file b: end_page");
	store_get_stats(st, &ss);
	is_u64(ss.pages_folded, 3, "store: pages_folded = 3 slots share one object");
	is_u64(ss.fold_objs, 1, "store: one shared object");
	is_u64(ss.fold_hits, 2, "store: two fold hits");
	is_u64(ss.compr_data_size, ct + PG, "store: compr_data_size counts the shared object once");
	is_u64(ss.huge_pages, 1, "store: huge_pages");
	is_u64(ss.huge_pages_since, 1, "store: huge_pages_since");
	is_u64(ss.files, 2, "store: files");
	/* overwrite one shared copy: the others stay folded */
	store_write(a, 1, r);
	store_file_get_stats(a, &fa);
	store_get_stats(st, &ss);
	is_u64(fa.folded_pages, 3, "after overwrite: a's text (shared with b) and two random pages folded");
	is_u64(ss.pages_folded, 4, "after overwrite: text x2 + random x2");
	ok(read_is(a, 0, t) && read_is(b, 3, t) && read_is(a, 1, r),
	   "shared pages read back after overwrite");
	store_discard(b, 0, 10);
	store_file_get_stats(b, &fb);
	is_u64(fb.pages, 0, "b discarded: no pages");
	is_u64(fb.clusters, 0, "b discarded: cluster freed");
	is_u64(fb.end_page, 0, "b discarded: end_page 0");
	store_get_stats(st, &ss);
	is_u64(ss.notify_free, 2,
	       "notify_free counts the discarded pages (b's, and a's page 511)");
	is_u64(ss.pages_folded, 2, "text no longer shared");
	check_valid(st, "file stats");
	store_file_destroy(b);
	store_get_stats(st, &ss);
	is_u64(ss.files, 1, "file destroyed");
	store_destroy(st);
}

static void test_seek(void)
{
	struct store *st = new_store(NULL, STORE_FOLD_INLINE, false);
	struct store_file *f = store_file_create(st);
	unsigned char p[PG];
	uint64_t pg = 0;
	bool good = true;

	gen_text(p);
	/* data at 0..2, 511, 512, 1500 (a zero page is data), 5000 */
	store_write(f, 0, p);
	store_write(f, 1, p);
	store_write(f, 2, p);
	store_write(f, 511, p);
	store_write(f, 512, p);
	store_write(f, 1500, zero_page);
	store_write(f, 5000, p);
	good &= store_seek_data(f, 0, &pg) == 0 && pg == 0;
	good &= store_seek_data(f, 3, &pg) == 0 && pg == 511;
	good &= store_seek_data(f, 513, &pg) == 0 && pg == 1500;
	good &= store_seek_data(f, 1501, &pg) == 0 && pg == 5000;
	good &= store_seek_data(f, 5001, &pg) == -ENXIO;
	ok(good, "seek_data");
	good = true;
	good &= store_seek_hole(f, 0, &pg) == 0 && pg == 3;
	good &= store_seek_hole(f, 511, &pg) == 0 && pg == 513;
	good &= store_seek_hole(f, 1500, &pg) == 0 && pg == 1501;
	good &= store_seek_hole(f, 4000, &pg) == 0 && pg == 4000;
	good &= store_seek_hole(f, 5000, &pg) == 0 && pg == 5001;
	good &= store_seek_hole(f, 9999, &pg) == 0 && pg == 9999;
	ok(good, "seek_hole");
	store_discard(f, 1, 1);
	good = store_seek_hole(f, 0, &pg) == 0 && pg == 1;
	good &= store_seek_data(f, 1, &pg) == 0 && pg == 2;
	ok(good, "seek after discarding a page in the middle");
	store_truncate(f, 1501);
	good = store_seek_data(f, 1501, &pg) == -ENXIO;
	good &= store_seek_hole(f, 1500, &pg) == 0 && pg == 1501;
	ok(good, "seek after truncate");
	check_valid(st, "seek");
	store_destroy(st);
}

/* Every page hashes the same: every lookup meets every stored page. */
static uint64_t colliding_hash(const void *p, size_t len)
{
	(void)p;
	(void)len;
	return 0x5a5a5a5a5a5a5a5aull;
}

static void test_false_match(void)
{
	struct store *st = new_store(colliding_hash, STORE_FOLD_INLINE, false);
	struct store_file *f = store_file_create(st);
	unsigned char a[PG], b[PG], c[PG];
	struct store_stats ss;

	gen_text(a);
	gen_struct(b);
	gen_random(c);
	is_u64(store_write(f, 0, a), 0, "page A written");
	is_u64(store_write(f, 1, b), 0, "page B (same hash, other bytes) written");
	store_get_stats(st, &ss);
	is_u64(ss.fold_false, 1, "one false match counted");
	is_u64(ss.pages_folded, 0, "nothing folded on a false match");
	is_u64(ss.fold_hits, 0, "no fold hit");
	ok(read_is(f, 0, a), "page A reads back intact");
	ok(read_is(f, 1, b), "page B reads back intact");
	is_u64(store_write(f, 2, c), 0, "page C (raw) written");
	is_u64(store_write(f, 3, b), 0, "page B written again");
	store_get_stats(st, &ss);
	ok(ss.fold_false >= 3, "false matches against A and B (%llu)",
	   (unsigned long long)ss.fold_false);
	is_u64(ss.fold_hits, 1, "second B folded onto the first");
	is_u64(ss.pages_folded, 2, "pages_folded 2");
	ok(read_is(f, 0, a) && read_is(f, 1, b) && read_is(f, 2, c) &&
	   read_is(f, 3, b), "all four pages intact");
	/* the same through a fold scan */
	store_set_fold_mode(st, STORE_FOLD_SCAN);
	store_write(f, 4, a);
	store_write(f, 5, c);
	store_write(f, 6, a);
	{
		uint64_t freed = 99;

		is_u64(store_fold(st, &freed), 0, "fold scan");
		is_u64(freed, 3, "scan freed the copies of A, C and A");
	}
	store_get_stats(st, &ss);
	is_u64(ss.pages_folded, 7, "after scan: A x3, B x2, C x2 folded");
	is_u64(ss.fold_scan_freed, 3, "fold_scan_freed");
	ok(read_is(f, 0, a) && read_is(f, 1, b) && read_is(f, 2, c) &&
	   read_is(f, 3, b) && read_is(f, 4, a) && read_is(f, 5, c) &&
	   read_is(f, 6, a), "all seven pages intact after the scan");
	check_valid(st, "false match");
	store_destroy(st);
}

static void test_limit(void)
{
	struct store *st = new_store(NULL, STORE_FOLD_INLINE, false);
	struct store_file *f = store_file_create(st);
	struct store_stats ss;
	unsigned char p[PG], old[PG], q[PG];
	uint64_t base, limit, n = 0, fails = 0, i;
	bool good = true, bounded = true;
	int err = 0;

	store_get_stats(st, &ss);
	base = ss.mem_used_total;
	limit = base + (512 << 10);
	is_u64(store_set_mem_limit(st, limit), 0, "limit set");
	store_get_stats(st, &ss);
	is_u64(ss.mem_limit, limit, "mem_limit reads back");
	/* incompressible pages until the limit refuses one */
	for (i = 0; i < 1000; i++) {
		gen_random(p);
		err = store_write(f, i, p);
		if (err)
			break;
		n++;
		store_get_stats(st, &ss);
		bounded &= ss.mem_used_total <= limit;
	}
	is_u64(err, (uint64_t)-ENOSPC, "write at the limit fails with -ENOSPC");
	ok(n > 64 && n < 128, "%llu raw pages fitted in 512 KiB",
	   (unsigned long long)n);
	ok(bounded, "mem_used_total never passed the limit");
	ok(read_is(f, n, zero_page), "the refused page is still a hole");
	/* an overwrite that is refused keeps the old page */
	memcpy(old, p, PG);
	store_read(f, 0, old);
	for (i = 0; i < 50; i++) {
		gen_random(p);
		err = store_write(f, n + 1 + i, p);
		fails += err == -ENOSPC;
		good &= err == 0 || err == -ENOSPC;
	}
	ok(good && fails > 0, "further new pages refused (%llu)",
	   (unsigned long long)fails);
	gen_random(p);
	err = store_write(f, 0, p);
	if (err == -ENOSPC)
		ok(read_is(f, 0, old), "refused overwrite: old page reads back");
	else
		ok(err == 0 && read_is(f, 0, p), "overwrite fitted in freed space");
	/* same-filled overwrites need no memory: they succeed and free */
	for (i = 0; i < n / 2; i++)
		good &= store_write(f, i, zero_page) == 0;
	ok(good, "same-filled overwrites succeed at the limit");
	store_get_stats(st, &ss);
	ok(ss.mem_used_total <= limit, "use below the limit after freeing");
	gen_random(q);
	is_u64(store_write(f, 5000, q), 0, "a new page fits again");
	/* lower the limit below use: allocating writes refused until under */
	store_get_stats(st, &ss);
	limit = ss.mem_used_total - (64 << 10);
	store_set_mem_limit(st, limit);
	gen_random(p);
	is_u64(store_write(f, 6000, p), (uint64_t)-ENOSPC,
	       "limit below use: a new page is refused");
	ok(read_is(f, 5000, q), "limit below use: stored pages still read back");
	ok(read_is(f, 6000, zero_page), "limit below use: the refused page is a hole");
	is_u64(store_write(f, 0, zero_page), 0,
	       "limit below use: a same-filled write still works");
	for (i = n / 2; i < n; i++)
		store_discard(f, i, 1);
	store_get_stats(st, &ss);
	ok(ss.mem_used_total <= limit, "discards brought use under the limit");
	is_u64(store_write(f, 6000, p), 0, "under the limit again: write works");
	ok(read_is(f, 6000, p), "and reads back");
	store_get_stats(st, &ss);
	ok(ss.mem_used_max >= base + (400 << 10), "mem_used_max kept the peak");
	ok(ss.failed_writes >= fails + 2, "failed_writes counted (%llu)",
	   (unsigned long long)ss.failed_writes);
	store_reset_mem_used_max(st);
	store_get_stats(st, &ss);
	ok(ss.mem_used_max == ss.mem_used_total, "mem_used_max reset to use");
	store_set_mem_limit(st, 0);
	check_valid(st, "limit");
	store_destroy(st);
}

/* A page that LZ4 compresses to roughly len bytes: len random bytes, then
 * zeros (len 4096: incompressible, stored raw). */
static void gen_sized(unsigned char *p, unsigned int len)
{
	gen_random(p);
	if (len < PG)
		memset(p + len, 0, PG - len);
}

/*
 * Fill to the limit with distinct pages of many sizes (so new spans of many
 * classes, and new handle-table pages, are needed near the limit), at
 * several limits that do not fall on a page boundary: after every write,
 * mem_used_total <= mem_limit; a refused write changes nothing.
 */
static void test_limit_tight(void)
{
	static const unsigned int extra[] = { 3456, 1, 4095, 777, 12345 };
	unsigned char p[PG], want[PG];
	unsigned int r, i;

	for (r = 0; r < sizeof(extra) / sizeof(extra[0]); r++) {
		struct store *st = new_store(NULL, STORE_FOLD_INLINE, false);
		struct store_file *f = store_file_create(st);
		struct store_stats ss;
		uint64_t limit, over = 0, refused = 0, wrong = 0, n = 0;
		bool full = false;

		store_get_stats(st, &ss);
		limit = ss.mem_used_total + (768 << 10) + extra[r];
		store_set_mem_limit(st, limit);
		for (i = 0; i < 4000; i++) {
			uint64_t page = rnd_below(600);
			unsigned int len = i % 5 == 0 ? PG :
					   64 + (unsigned int)rnd_below(3000);
			int err;

			store_read(f, page, want);
			gen_sized(p, len);
			err = store_write(f, page, p);
			store_get_stats(st, &ss);
			if (ss.mem_used_total > limit && !over++)
				diag("limit %llu: write %u (%u bytes) left "
				     "mem_used_total %llu",
				     (unsigned long long)limit, i, len,
				     (unsigned long long)ss.mem_used_total);
			if (err == -ENOSPC) {
				refused++;
				full = true;
				wrong += !read_is(f, page, want);
			} else if (err) {
				wrong++;
			} else {
				n++;
				wrong += !read_is(f, page, p);
			}
		}
		ok(full && n > 100, "limit +%u: filled (%llu written, %llu "
		   "refused)", extra[r], (unsigned long long)n,
		   (unsigned long long)refused);
		ok(over == 0, "limit +%u: mem_used_total <= mem_limit after "
		   "every write (%llu writes passed it)", extra[r],
		   (unsigned long long)over);
		ok(wrong == 0, "limit +%u: refused writes kept the old page, "
		   "others read back (%llu wrong)", extra[r],
		   (unsigned long long)wrong);
		store_set_mem_limit(st, 0);
		check_valid(st, "limit tight");
		store_destroy(st);
	}
}

static void test_sparse_tib(void)
{
	struct store *st = new_store(NULL, STORE_FOLD_INLINE, false);
	struct store_file *f = store_file_create(st);
	const uint64_t last = (UINT64_C(1) << 40) / PG - 1; /* 1 TiB file */
	struct store_file_stats fs;
	struct store_stats s0, s1;
	unsigned char p[PG];
	uint64_t pg, empty;

	store_get_stats(st, &s0);
	store_file_get_stats(f, &fs);
	empty = fs.meta_bytes;
	ok(empty <= 512, "empty file: %llu bytes (the file record)",
	   (unsigned long long)empty);
	{
		/* A small file: one page costs its record and a cluster of
		 * 8 slots, not a full cluster table. */
		struct store_file *g = store_file_create(st);
		struct store_file_stats gs;

		gen_text(p);
		store_write(g, 3, p);
		store_file_get_stats(g, &gs);
		ok(gs.meta_bytes <= 512 && gs.meta_bytes == empty + 8 + 8 * 8,
		   "a file of one page: %llu bytes of metadata (record + 8 slots)",
		   (unsigned long long)gs.meta_bytes);
		store_file_destroy(g);
	}
	gen_text(p);
	is_u64(store_write(f, last, p), 0, "last page of 1 TiB written");
	is_u64(store_write(f, 0, p), 0, "first page written");
	store_file_get_stats(f, &fs);
	store_get_stats(st, &s1);
	diag("1 TiB sparse file, first + last page: file meta %llu bytes, "
	     "store meta +%llu bytes", (unsigned long long)fs.meta_bytes,
	     (unsigned long long)(s1.meta_bytes - s0.meta_bytes));
	ok(fs.meta_bytes <= 64 << 10, "file metadata <= 64 KiB");
	ok(s1.meta_bytes - s0.meta_bytes <= 64 << 10,
	   "store metadata grew <= 64 KiB");
	is_u64(fs.clusters, 2, "two clusters");
	is_u64(fs.end_page, last + 1, "end_page is the file's end");
	ok(read_is(f, last, p) && read_is(f, 0, p), "both pages read back");
	ok(read_is(f, last / 2, zero_page), "the middle is a hole");
	ok(store_seek_data(f, 1, &pg) == 0 && pg == last, "seek_data jumps to the end");
	ok(store_seek_hole(f, 0, &pg) == 0 && pg == 1, "seek_hole after page 0");
	store_truncate(f, 1);
	store_file_get_stats(f, &fs);
	is_u64(fs.end_page, 1, "truncated: end_page 1");
	is_u64(fs.clusters, 1, "truncated: one cluster left");
	store_discard(f, 0, last + 1);
	store_file_get_stats(f, &fs);
	store_get_stats(st, &s1);
	is_u64(fs.clusters, 0, "emptied: no cluster left");
	/* A file that once spanned clusters keeps its striped lock. */
	ok(fs.meta_bytes >= empty && fs.meta_bytes - empty <= 2048,
	   "emptied: the bare file record and its lock stripes (+%llu bytes)",
	   (unsigned long long)(fs.meta_bytes - empty));
	/* The store counts what malloc handed out, the file its sizes. */
	ok(s1.meta_bytes - s0.meta_bytes >= fs.meta_bytes - empty &&
	   s1.meta_bytes - s0.meta_bytes <= fs.meta_bytes - empty + 64,
	   "store metadata: what the file still holds, nothing more "
	   "(+%llu bytes)", (unsigned long long)(s1.meta_bytes - s0.meta_bytes));
	check_valid(st, "sparse");
	store_destroy(st);
}

/* Fragment the pool (write N pages, discard every other one), then check
 * that compaction gives pages back and every page survives it. */
static unsigned char *frag_fill(struct store_file *f, unsigned int n)
{
	unsigned char *data = malloc((size_t)n * PG);
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (i % 3)
			gen_text(data + (size_t)i * PG);
		else
			gen_struct(data + (size_t)i * PG);
		store_write(f, i, data + (size_t)i * PG);
	}
	for (i = 0; i < n; i += 2)
		store_discard(f, i, 1);
	return data;
}

static bool frag_intact(struct store_file *f, const unsigned char *data,
			unsigned int n)
{
	unsigned int i;
	bool good = true;

	for (i = 0; i < n; i++)
		good &= read_is(f, i, i % 2 ? data + (size_t)i * PG : zero_page);
	return good;
}

static void test_compaction(void)
{
	const unsigned int n = 6000;
	struct store_config cfg = { .no_background = true, .defrag_ratio = 10 };
	struct store *st = store_create(&cfg);
	struct store_file *f = store_file_create(st);
	struct store_stats s0, s1, s2;
	unsigned char *data = frag_fill(f, n);
	uint64_t freed = 0, freed2 = 0, t;

	store_get_stats(st, &s0);
	diag("fragmented: %llu pool pages, frag %u%%",
	     (unsigned long long)s0.pool_pages, s0.frag_pct);
	ok(s0.frag_pct >= 20, "discarding every other page fragments the pool");
	is_u64(store_compact(st, &freed), 0, "compact");
	store_get_stats(st, &s1);
	diag("after compact: %llu pool pages, frag %u%%",
	     (unsigned long long)s1.pool_pages, s1.frag_pct);
	ok(freed > 0, "compact freed %llu pages", (unsigned long long)freed);
	/* moved objects may touch fresh pages of the spans they land in */
	ok(s1.pool_pages < s0.pool_pages &&
	   s0.pool_pages - s1.pool_pages <= freed &&
	   s0.pool_pages - s1.pool_pages >= freed * 9 / 10,
	   "pool_pages fell by about what compact freed (%llu -> %llu)",
	   (unsigned long long)s0.pool_pages, (unsigned long long)s1.pool_pages);
	is_u64(s1.pages_compacted, freed, "pages_compacted counts it");
	ok(s1.mem_used_total < s0.mem_used_total, "mem_used_total fell");
	is_u64(store_shrink(st, &freed2), 0, "shrink");
	store_get_stats(st, &s2);
	ok(s2.frag_pct <= s1.frag_pct, "shrink leaves no more fragmentation (%u%%)",
	   s2.frag_pct);
	is_u64(s2.pages_compacted, freed + freed2, "pages_compacted adds shrink's");
	ok(frag_intact(f, data, n), "every page intact after compact and shrink");
	check_valid(st, "compaction");
	store_destroy(st);
	free(data);

	/* the background thread, without any trigger: wait until it has
	 * compacted and stopped (pages_compacted stable for 0.5 s), then an
	 * explicit compact at the same ratio must find little left to do */
	cfg.no_background = false;
	st = store_create(&cfg);
	f = store_file_create(st);
	data = frag_fill(f, n);
	store_get_stats(st, &s0);
	{
		uint64_t last = 0, stable = 0;

		for (t = 0; t < 100 && stable < 5; t++) {	/* up to 10 s */
			struct timespec ts = { 0, 100 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			store_get_stats(st, &s1);
			stable = s1.pages_compacted && s1.pages_compacted == last ?
				 stable + 1 : 0;
			last = s1.pages_compacted;
		}
	}
	ok(s1.pages_compacted > 0, "background thread compacted %llu pages "
	   "(frag %u%% -> %u%%)", (unsigned long long)s1.pages_compacted,
	   s0.frag_pct, s1.frag_pct);
	freed = 0;
	store_compact(st, &freed);
	ok(freed * 4 <= s1.pages_compacted,
	   "an explicit compact afterwards freed only %llu more",
	   (unsigned long long)freed);
	ok(frag_intact(f, data, n), "every page intact after background compaction");
	check_valid(st, "background compaction");
	store_destroy(st);
	free(data);
}

/* ---- the model test ---- */

#define NFILES 4
#define NEAR 2048
#define NFAR 12
#define MPAGES (NEAR + NFAR)

static const uint64_t far_pages[NFAR] = {
	3000, 4095, 4096, 70000, UINT64_C(1) << 20, (UINT64_C(1) << 28) - 1,
	UINT64_C(1) << 28, UINT64_C(1) << 30, (UINT64_C(1) << 33) + 5,
	UINT64_C(1) << 36, STORE_MAX_PAGES - 2, STORE_MAX_PAGES - 1,
};

struct mpage {
	uint8_t kind;		/* enum mkind */
	uint16_t csize;		/* MK_OBJ: compressed size or PG */
};

struct mfile {
	struct store_file *f;
	unsigned char *data;	/* MPAGES pages */
	struct mpage *pg;
};

struct model {
	struct store *st;
	struct mfile file[NFILES];
	uint64_t writes, reads, failed, freed;
	bool limited;		/* a memory limit is in force */
	bool complete;		/* every equal pair of pages shares an object */
	bool recomp;		/* pages may have gone to the cold codec: sizes
				   and huge counts are upper bounds */
	bool grouped;		/* groups were made: grouped pages left the
				   fold index, so equal pages need not share
				   an object any more (never complete) */
	uint64_t bad_reads, bad_writes;
	uint64_t enospc;
};

static uint64_t mindex(unsigned int m)
{
	return m < NEAR ? m : far_pages[m - NEAR];
}

static unsigned char *mdata(struct mfile *mf, unsigned int m)
{
	return mf->data + (size_t)m * PG;
}

static void model_write(struct model *md, unsigned int fi, unsigned int m,
			const unsigned char *p)
{
	struct mfile *mf = &md->file[fi];
	enum store_fold_mode mode = store_get_fold_mode(md->st);
	struct store_stats before, after;
	int err;

	if (md->limited)
		store_get_stats(md->st, &before);
	err = store_write(mf->f, mindex(m), p);
	if (err == 0) {
		memcpy(mdata(mf, m), p, PG);
		if (page_same(p)) {
			mf->pg[m].kind = MK_SAME;
			mf->pg[m].csize = 0;
		} else {
			mf->pg[m].kind = MK_OBJ;
			mf->pg[m].csize = (uint16_t)page_csize(p);
			if (mode != STORE_FOLD_INLINE || md->limited)
				md->complete = false;
		}
		md->writes++;
		if (md->limited) {
			store_get_stats(md->st, &after);
			if (after.mem_used_total > before.mem_used_total &&
			    after.mem_used_total > after.mem_limit)
				md->bad_writes++;
		}
		return;
	}
	md->failed++;
	if (err != -ENOSPC || !md->limited) {
		md->bad_writes++;
		diag("write %u/%u failed: %d", fi, m, err);
		return;
	}
	md->enospc++;
	if (!read_is(mf->f, mindex(m),
		     mf->pg[m].kind == MK_HOLE ? zero_page : mdata(mf, m))) {
		md->bad_reads++;
		diag("refused write %u/%u: old page lost", fi, m);
	}
	md->reads++;
}

static void model_read(struct model *md, unsigned int fi, unsigned int m)
{
	struct mfile *mf = &md->file[fi];

	if (!read_is(mf->f, mindex(m),
		     mf->pg[m].kind == MK_HOLE ? zero_page : mdata(mf, m))) {
		md->bad_reads++;
		if (md->bad_reads < 10)
			diag("page %u/%u (index %llu) reads wrong", fi, m,
			     (unsigned long long)mindex(m));
	}
	md->reads++;
}

static void model_clear(struct model *md, struct mfile *mf, unsigned int m)
{
	if (mf->pg[m].kind != MK_HOLE)
		md->freed++;
	mf->pg[m].kind = MK_HOLE;
	mf->pg[m].csize = 0;
	memset(mdata(mf, m), 0, PG);
}

static void model_discard(struct model *md, unsigned int fi, uint64_t first,
			  uint64_t count)
{
	struct mfile *mf = &md->file[fi];
	unsigned int m;

	if (store_discard(mf->f, first, count)) {
		md->bad_writes++;
		return;
	}
	for (m = 0; m < MPAGES; m++) {
		uint64_t i = mindex(m);

		if (i >= first && i - first < count)
			model_clear(md, mf, m);
	}
}

static void model_truncate(struct model *md, unsigned int fi, uint64_t n)
{
	struct mfile *mf = &md->file[fi];
	unsigned int m;

	if (store_truncate(mf->f, n)) {
		md->bad_writes++;
		return;
	}
	for (m = 0; m < MPAGES; m++)
		if (mindex(m) >= n)
			model_clear(md, mf, m);
}

/* Model pages sorted by index, for seeks. */
static void model_seek(struct model *md, unsigned int fi, uint64_t from)
{
	struct mfile *mf = &md->file[fi];
	uint64_t want_data = UINT64_MAX, want_hole = UINT64_MAX, got;
	unsigned int m;
	int err;

	/* indices are increasing in m */
	for (m = 0; m < MPAGES; m++) {
		uint64_t i = mindex(m);

		if (i < from)
			continue;
		if (mf->pg[m].kind != MK_HOLE && want_data == UINT64_MAX)
			want_data = i;
	}
	/* the first hole at or after from: from itself unless it holds data,
	 * then the first index after a run of data pages */
	want_hole = from;
	for (m = 0; m < MPAGES; m++) {
		if (mindex(m) != want_hole)
			continue;
		if (mf->pg[m].kind == MK_HOLE)
			break;
		want_hole++;
	}
	err = store_seek_data(mf->f, from, &got);
	if (want_data == UINT64_MAX ? err != -ENXIO : (err || got != want_data)) {
		md->bad_reads++;
		diag("seek_data(%u, %llu): %d %llu, want %llu", fi,
		     (unsigned long long)from, err, (unsigned long long)got,
		     (unsigned long long)want_data);
	}
	err = store_seek_hole(mf->f, from, &got);
	if (err || got != want_hole) {
		md->bad_reads++;
		diag("seek_hole(%u, %llu): %d %llu, want %llu", fi,
		     (unsigned long long)from, err, (unsigned long long)got,
		     (unsigned long long)want_hole);
	}
}

struct group_key {
	XXH128_hash_t h;
	unsigned int fi, m;
};

static int cmp_key(const void *a, const void *b)
{
	const struct group_key *x = a, *y = b;

	if (x->h.high64 != y->h.high64)
		return x->h.high64 < y->h.high64 ? -1 : 1;
	if (x->h.low64 != y->h.low64)
		return x->h.low64 < y->h.low64 ? -1 : 1;
	return 0;
}

struct expect {
	uint64_t pages, same, huge, folded, compr;
	uint64_t f_pages[NFILES], f_same[NFILES], f_huge[NFILES];
	uint64_t f_folded[NFILES], f_compr[NFILES], f_end[NFILES];
	uint64_t f_clusters[NFILES];
};

/* What the statistics must say, from the model alone. pages_folded and
 * compr_data_size assume every equal pair shares one object (md->complete);
 * otherwise they are bounds. */
static void model_expect(struct model *md, struct expect *e)
{
	struct group_key *keys = malloc(sizeof(*keys) * NFILES * MPAGES);
	size_t n = 0, i, j;
	unsigned int fi, m;

	memset(e, 0, sizeof(*e));
	for (fi = 0; fi < NFILES; fi++) {
		struct mfile *mf = &md->file[fi];
		uint64_t last_ci = UINT64_MAX;

		for (m = 0; m < MPAGES; m++) {
			struct mpage *p = &mf->pg[m];

			if (p->kind == MK_HOLE)
				continue;
			e->pages++;
			e->f_pages[fi]++;
			e->f_end[fi] = mindex(m) + 1;
			if (mindex(m) >> 9 != last_ci) {
				e->f_clusters[fi]++;
				last_ci = mindex(m) >> 9;
			}
			if (p->kind == MK_SAME) {
				e->same++;
				e->f_same[fi]++;
				continue;
			}
			if (p->csize == PG) {
				e->huge++;
				e->f_huge[fi]++;
			}
			e->f_compr[fi] += p->csize;
			keys[n].h = XXH3_128bits(mdata(mf, m), PG);
			keys[n].fi = fi;
			keys[n].m = m;
			n++;
		}
	}
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && cmp_key(&keys[i], &keys[j]) == 0; j++)
			if (memcmp(mdata(&md->file[keys[i].fi], keys[i].m),
				   mdata(&md->file[keys[j].fi], keys[j].m), PG))
				diag("XXH128 collision in the model?");
		e->compr += md->file[keys[i].fi].pg[keys[i].m].csize;
		if (j - i >= 2) {
			size_t k;

			e->folded += j - i;
			for (k = i; k < j; k++)
				e->f_folded[keys[k].fi]++;
		}
	}
	free(keys);
}

static bool model_check_stats(struct model *md, bool full)
{
	struct store_stats ss;
	struct expect e;
	bool good = true;
	unsigned int fi;

	model_expect(md, &e);
	store_get_stats(md->st, &ss);
#define EXPECT(cond, ...) do {						\
	if (!(cond)) {							\
		good = false;						\
		diag(__VA_ARGS__);					\
	}								\
} while (0)
	EXPECT(ss.orig_data_size == e.pages * PG, "orig_data_size %llu, model %llu pages",
	       (unsigned long long)ss.orig_data_size, (unsigned long long)e.pages);
	EXPECT(ss.same_pages == e.same, "same_pages %llu, model %llu",
	       (unsigned long long)ss.same_pages, (unsigned long long)e.same);
	if (md->recomp)
		EXPECT(ss.huge_pages <= e.huge, "huge_pages %llu > model max %llu",
		       (unsigned long long)ss.huge_pages, (unsigned long long)e.huge);
	else
		EXPECT(ss.huge_pages == e.huge, "huge_pages %llu, model %llu",
		       (unsigned long long)ss.huge_pages, (unsigned long long)e.huge);
	EXPECT(ss.writes == md->writes, "writes %llu, model %llu",
	       (unsigned long long)ss.writes, (unsigned long long)md->writes);
	EXPECT(ss.failed_writes == md->failed, "failed_writes %llu, model %llu",
	       (unsigned long long)ss.failed_writes, (unsigned long long)md->failed);
	EXPECT(ss.reads >= md->reads, "reads %llu < model %llu",
	       (unsigned long long)ss.reads, (unsigned long long)md->reads);
	EXPECT(ss.notify_free == md->freed, "notify_free %llu, model %llu",
	       (unsigned long long)ss.notify_free, (unsigned long long)md->freed);
	EXPECT(ss.mem_used_max >= ss.mem_used_total, "mem_used_max < total");
	if (md->complete) {
		EXPECT(ss.pages_folded == e.folded, "pages_folded %llu, model %llu",
		       (unsigned long long)ss.pages_folded, (unsigned long long)e.folded);
		if (md->recomp)
			EXPECT(ss.compr_data_size <= e.compr,
			       "compr_data_size %llu > model max %llu",
			       (unsigned long long)ss.compr_data_size,
			       (unsigned long long)e.compr);
		else
			EXPECT(ss.compr_data_size == e.compr,
			       "compr_data_size %llu, model %llu",
			       (unsigned long long)ss.compr_data_size,
			       (unsigned long long)e.compr);
	} else {
		EXPECT(ss.pages_folded <= e.folded, "pages_folded %llu > model max %llu",
		       (unsigned long long)ss.pages_folded, (unsigned long long)e.folded);
		if (!md->recomp)
			EXPECT(ss.compr_data_size >= e.compr,
			       "compr_data_size %llu < model min %llu",
			       (unsigned long long)ss.compr_data_size,
			       (unsigned long long)e.compr);
	}
	for (fi = 0; full && fi < NFILES; fi++) {
		struct store_file_stats fs, fc;

		store_file_get_stats(md->file[fi].f, &fs);
		store_file_get_counts(md->file[fi].f, &fc);
		EXPECT(fc.pages == fs.pages && fc.same_pages == fs.same_pages &&
		       fc.huge_pages == fs.huge_pages &&
		       fc.compr_bytes == fs.compr_bytes &&
		       fc.clusters == fs.clusters && fc.end_page == fs.end_page &&
		       fc.meta_bytes == fs.meta_bytes && fc.folded_pages == 0,
		       "file %u: store_file_get_counts != store_file_get_stats", fi);
		EXPECT(fs.pages == e.f_pages[fi] && fs.same_pages == e.f_same[fi] &&
		       (md->recomp ? fs.huge_pages <= e.f_huge[fi] :
				     fs.huge_pages == e.f_huge[fi]) &&
		       (md->recomp ? fs.compr_bytes <= e.f_compr[fi] :
				     fs.compr_bytes == e.f_compr[fi]) &&
		       fs.end_page == e.f_end[fi] &&
		       fs.clusters == e.f_clusters[fi],
		       "file %u stats: pages %llu/%llu same %llu/%llu huge %llu/%llu "
		       "compr %llu/%llu end %llu/%llu clusters %llu/%llu", fi,
		       (unsigned long long)fs.pages, (unsigned long long)e.f_pages[fi],
		       (unsigned long long)fs.same_pages, (unsigned long long)e.f_same[fi],
		       (unsigned long long)fs.huge_pages, (unsigned long long)e.f_huge[fi],
		       (unsigned long long)fs.compr_bytes, (unsigned long long)e.f_compr[fi],
		       (unsigned long long)fs.end_page, (unsigned long long)e.f_end[fi],
		       (unsigned long long)fs.clusters, (unsigned long long)e.f_clusters[fi]);
		if (md->complete)
			EXPECT(fs.folded_pages == e.f_folded[fi],
			       "file %u folded_pages %llu, model %llu", fi,
			       (unsigned long long)fs.folded_pages,
			       (unsigned long long)e.f_folded[fi]);
	}
#undef EXPECT
	return good;
}

static uint64_t verify_all(struct model *md)
{
	uint64_t before = md->bad_reads;
	unsigned int fi, m;

	for (fi = 0; fi < NFILES; fi++)
		for (m = 0; m < MPAGES; m++)
			model_read(md, fi, m);
	return md->bad_reads - before;
}

struct recomp_stat {
	uint64_t ticks, marks, triggers, moved, group_sizes;
};

/* Aging ticks, idle marks, recompress triggers and cold codec changes on a
 * schedule; recompress_after is 8 s, i.e. 8 ticks make a page idle. */
static void model_recomp_ops(struct model *md, uint64_t op,
			     struct recomp_stat *rs)
{
	static const struct store_cold_codec algs[] = {
		{ STORE_COLD_ZSTD, 0 }, { STORE_COLD_LZ4HC, 9 },
		{ STORE_COLD_ZSTD, 1 },
	};
	uint64_t n = 0;

	if (!md->recomp) {
		store_set_recompress_after(md->st, 8);
		md->recomp = true;
	}
	if (op % 400 == 0) {
		if (store_age_tick(md->st, &n))
			md->bad_writes++;
		rs->ticks++;
		rs->moved += n;
	}
	if (op % 7000 == 3500) {
		if (store_mark_idle(md->st, &n))
			md->bad_writes++;
		rs->marks++;
	}
	if (op % 2500 == 1200) {
		if (store_recompress(md->st, &n))
			md->bad_writes++;
		rs->triggers++;
		rs->moved += n;
	}
	if (op % 10000 == 5000 &&
	    store_set_cold_codec(md->st, &algs[(op / 10000) % 3]))
		md->bad_writes++;
	/* group sizes in turn, 1 (no new groups) among them */
	if (op % 3000 == 100) {
		static const unsigned int sizes[] = { 8, 2, 16, 1, 4, 3 };
		unsigned int g = sizes[(op / 3000) % 6];

		if (store_set_group_size(md->st, g))
			md->bad_writes++;
		rs->group_sizes++;
	}
	if (op % 3000 == 1500)
		store_set_read_idle(md->st, (op / 3000) % 2);
	if (store_get_group_size(md->st) > 1) {
		md->grouped = true;
		md->complete = false;
	}
}

/* A page index with locality: runs near the last one, sometimes far. */
static unsigned int pick_page(void)
{
	static unsigned int last;
	unsigned int r = (unsigned int)rnd_below(100);

	if (r < 50)
		last = (last + 1 + (unsigned int)rnd_below(4)) % NEAR;
	else if (r < 95)
		last = (unsigned int)rnd_below(NEAR);
	else
		return NEAR + (unsigned int)rnd_below(NFAR);
	return last;
}

static void test_model(uint64_t nops)
{
	struct model md = { 0 };
	unsigned char *p = malloc(PG);
	uint64_t op, limit_left = 0, checks_bad = 0, valid_bad = 0;
	uint64_t scans = 0, scan_freed = 0, compacts = 0, enospc_phases = 0;
	struct recomp_stat rstat = { 0 };
	unsigned int fi;

	md.st = new_store(NULL, STORE_FOLD_INLINE, false);
	md.complete = true;
	ok(md.st != NULL, "model: store created");
	for (fi = 0; fi < NFILES; fi++) {
		md.file[fi].f = store_file_create(md.st);
		md.file[fi].data = calloc(MPAGES, PG);
		md.file[fi].pg = calloc(MPAGES, sizeof(struct mpage));
	}
	for (op = 0; op < nops; op++) {
		unsigned int r = (unsigned int)rnd_below(1000);

		fi = (unsigned int)rnd_below(NFILES);
		if (r < 460) {
			gen_page(p);
			model_write(&md, fi, pick_page(), p);
		} else if (r < 820) {
			model_read(&md, fi, pick_page());
		} else if (r < 880) {
			unsigned int m = pick_page();
			uint64_t count = rnd_below(64) ? 1 + rnd_below(8) :
							 1 + rnd_below(1100);

			model_discard(&md, fi, mindex(m), count);
		} else if (r < 881) {
			model_truncate(&md, fi, rnd_below(4) ?
				       NEAR * 3 / 4 + rnd_below(NEAR) :
				       mindex(NEAR + (unsigned int)rnd_below(NFAR)));
		} else if (r < 900) {
			model_seek(&md, fi, rnd_below(3) ? rnd_below(NEAR + 10) :
				   mindex(NEAR + (unsigned int)rnd_below(NFAR)) -
				   rnd_below(2));
		}
		/* the rarer operations, on a schedule */
		if (op % 1500 == 700) {
			uint64_t freed = 0;

			if ((op / 1500) % 3)
				store_compact(md.st, &freed);
			else
				store_shrink(md.st, &freed);
			compacts++;
		}
		/* the last 40%: aging, idle marking and recompression too */
		if (op >= nops * 6 / 10)
			model_recomp_ops(&md, op, &rstat);
		if (op % 6000 == 3000 && !limit_left) {
			uint64_t freed = 0;

			if (store_fold(md.st, &freed))
				md.bad_writes++;
			scan_freed += freed;
			scans++;
			if (store_get_fold_mode(md.st) == STORE_FOLD_INLINE)
				md.complete = !md.grouped;
		}
		if (op % 9000 == 1000) {
			/* scan and off phases in turn, each followed by inline
			 * phases; fold scans (above) land in all three modes */
			static const enum store_fold_mode modes[] = {
				STORE_FOLD_SCAN, STORE_FOLD_INLINE,
				STORE_FOLD_OFF, STORE_FOLD_INLINE,
			};

			store_set_fold_mode(md.st, modes[(op / 9000) % 4]);
		}
		if (op % 20000 == 10000 && !limit_left) {
			struct store_stats ss;
			int64_t delta;

			store_get_stats(md.st, &ss);
			/* just above use, or below it */
			delta = rnd_below(2) ? (int64_t)rnd_below(300 << 10) :
					      -(int64_t)rnd_below(ss.mem_used_total / 4);
			store_set_mem_limit(md.st, ss.mem_used_total + delta);
			md.limited = true;
			limit_left = 1500;
			enospc_phases++;
		}
		if (limit_left && --limit_left == 0) {
			store_set_mem_limit(md.st, 0);
			md.limited = false;
		}
		if (op % 1000 == 999 && !model_check_stats(&md, op % 5000 == 4999))
			checks_bad++;
		if (op % 5000 == 4999) {
			const char *why = NULL;

			if (!store_is_valid(md.st, &why)) {
				valid_bad++;
				diag("op %llu: store_is_valid: %s",
				     (unsigned long long)op, why);
			}
		}
		if (op % 25000 == 24999)
			verify_all(&md);
		if (md.bad_reads + md.bad_writes + checks_bad + valid_bad > 20)
			break;
	}
	ok(op == nops, "model: %llu operations ran", (unsigned long long)op);
	is_u64(md.bad_reads, 0, "model: every read matched the model");
	is_u64(md.bad_writes, 0, "model: no unexpected write error or limit overrun");
	is_u64(checks_bad, 0, "model: statistics matched the model");
	is_u64(valid_bad, 0, "model: store_is_valid held throughout");
	is_u64(verify_all(&md), 0, "model: final pass over every page");
	store_set_mem_limit(md.st, 0);
	store_set_fold_mode(md.st, STORE_FOLD_INLINE);
	store_fold(md.st, NULL);
	md.complete = !md.grouped;
	ok(model_check_stats(&md, true), "model: %s stats after a last fold scan",
	   md.grouped ? "bounded (groups were made)" : "exact");
	check_valid(md.st, "model end");
	diag("model: %llu writes (%llu refused at the limit in %llu limit phases), "
	     "%llu reads, %llu pages freed, %llu compactions, %llu fold scans "
	     "freeing %llu pages",
	     (unsigned long long)md.writes, (unsigned long long)md.enospc,
	     (unsigned long long)enospc_phases, (unsigned long long)md.reads,
	     (unsigned long long)md.freed, (unsigned long long)compacts,
	     (unsigned long long)scans, (unsigned long long)scan_freed);
	diag("model: %llu aging ticks, %llu idle marks, %llu recompress "
	     "triggers moving %llu pages",
	     (unsigned long long)rstat.ticks, (unsigned long long)rstat.marks,
	     (unsigned long long)rstat.triggers,
	     (unsigned long long)rstat.moved);
	/* with the default schedule (not for short PF_STORE_OPS runs) */
	if (nops >= 100000) {
		struct store_stats ss;

		store_get_stats(md.st, &ss);
		ok(rstat.moved > 0, "model: pages went to the cold codec");
		ok(ss.groups > 0 && ss.group_pages > ss.groups,
		   "model: groups at the end (%llu pages in %llu groups, "
		   "%llu group size changes)",
		   (unsigned long long)ss.group_pages,
		   (unsigned long long)ss.groups,
		   (unsigned long long)rstat.group_sizes);
		ok(md.enospc > 0, "model: the limit phases did refuse writes");
		ok(scan_freed > 0, "model: fold scans freed duplicates");
	}
	{
		struct store_stats ss;

		store_get_stats(md.st, &ss);
		diag("model end: %llu pages, %llu same, %llu folded, %llu huge, "
		     "compr %llu, mem %llu, fold hits %llu",
		     (unsigned long long)(ss.orig_data_size / PG),
		     (unsigned long long)ss.same_pages,
		     (unsigned long long)ss.pages_folded,
		     (unsigned long long)ss.huge_pages,
		     (unsigned long long)ss.compr_data_size,
		     (unsigned long long)ss.mem_used_total,
		     (unsigned long long)ss.fold_hits);
		ok(ss.pages_folded > 0 && ss.same_pages > 0 && ss.huge_pages > 0,
		   "model: folded, same and huge pages all present at the end");
	}
	for (fi = 0; fi < NFILES; fi++) {
		store_file_destroy(md.file[fi].f);
		free(md.file[fi].data);
		free(md.file[fi].pg);
	}
	{
		struct store_stats ss;

		store_get_stats(md.st, &ss);
		is_u64(ss.pool_objs, 0, "all files destroyed: no pool object left");
		is_u64(ss.orig_data_size, 0, "all files destroyed: nothing stored");
	}
	store_destroy(md.st);
	free(p);
}

int main(void)
{
	const char *e = getenv("PF_STORE_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
	uint64_t nops = 200000;

	e = getenv("PF_STORE_OPS");
	if (e)
		nops = strtoull(e, NULL, 0);
	rng_s = seed * 0x9e3779b97f4a7c15ull + 1;
	diag("seed %llu (PF_STORE_SEED to replay)", (unsigned long long)seed);
	load_real_pages();
	diag("%zu real-memory pages loaded from /proc/self/mem", nreal);
	ok(nreal >= NREAL / 2, "real-memory pages available");
	gen_popular_set();

	test_api_edges();
	test_default_threshold();
	test_same_filled();
	test_file_stats();
	test_seek();
	test_false_match();
	test_limit();
	test_limit_tight();
	test_sparse_tib();
	test_compaction();
	test_model(nops);
	return tap_done();
}
