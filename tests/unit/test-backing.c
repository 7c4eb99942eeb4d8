// SPDX-License-Identifier: MIT
/*
 * test-backing - the disk tier: writeback to a backing file.
 *
 * A model test: three files of random pages (text, same-filled, random =
 * raw, and copies of other pages, so folds), with random operations -
 * writes, overwrites, discards, idle marking, recompression and the four
 * kinds of writeback - and after each step every page is read back and
 * compared with the model, and store_is_valid() checks slots, counters
 * and the backing space map. Then exact checks: a folded object is
 * written once, memory per written-back page, the limit, errors (no
 * file, bad type, busy, a corrupted file gives EIO for its pages only).
 *
 * The backing file goes to $PF_TEST_DIR (default: the build directory,
 * usually a disk filesystem with O_DIRECT) and to /dev/shm (tmpfs: the
 * fallback without O_DIRECT).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "tap.h"
#include "testdata.h"

#define PG STORE_PAGE_SIZE
#define NFILES 3
#define NPAGES 400

static uint64_t model[NFILES][NPAGES];	/* seed of the page, 0 = hole */
static struct store_file *files[NFILES];

static void gen(unsigned char *p, uint64_t seed)
{
	uint64_t x = seed;
	size_t i;

	switch (seed % 8) {
	case 0:		/* same-filled */
		memset(p, (int)(seed >> 3), PG);
		return;
	case 1:		/* random: stored raw */
		td_fill(p, PG, seed);
		return;
	default:	/* text-like */
		for (i = 0; i < PG; i += 8) {
			x = td_mix(x + 1);
			memcpy(p + i, "pagefold" + (x % 4), 4);
			memcpy(p + i + 4, &"0123456789abcdef"[x % 12], 4);
		}
		memcpy(p, &seed, sizeof(seed));
	}
}

static void check_valid(struct store *st, const char *what)
{
	const char *why = "?";

	if (!ok(store_is_valid(st, &why), "store valid: %s", what))
		diag("store_is_valid: %s", why);
}

static unsigned int bad_pages(void)
{
	static unsigned char want[PG], got[PG];
	unsigned int f, i, bad = 0;

	for (f = 0; f < NFILES; f++)
		for (i = 0; i < NPAGES; i++) {
			if (model[f][i])
				gen(want, model[f][i]);
			else
				memset(want, 0, PG);
			if (store_read(files[f], i, got) ||
			    memcmp(got, want, PG)) {
				if (bad < 5)
					diag("file %u page %u differs", f, i);
				bad++;
			}
		}
	return bad;
}

static void put(unsigned int f, unsigned int i, uint64_t seed)
{
	static unsigned char buf[PG];

	gen(buf, seed);
	if (store_write(files[f], i, buf) == 0)
		model[f][i] = seed;
}

static char dir_path[4200];

static char *backing_path(const char *dir, const char *name)
{
	snprintf(dir_path, sizeof(dir_path), "%s/%s.%d", dir, name,
		 (int)getpid());
	return dir_path;
}

/* Attach path as st's backing file; on failure st is destroyed. */
static bool attach(struct store *st, const char *path, const char *what)
{
	int err = store_set_backing(st, path);

	is_u64(-err, 0, what);
	if (err)
		store_destroy(st);
	return !err;
}

static void test_model(const char *dir)
{
	struct store_config cfg = { .no_background = true };
	struct store *st = store_create(&cfg);
	struct store_bd_stats bs;
	char *path = backing_path(dir, "test-backing-model");
	uint64_t x = 42, n;
	unsigned int step, f, i, bad_total = 0, wb_total = 0;

	if (!attach(st, path, "backing file attached"))
		return;
	store_get_bd_stats(st, &bs);
	diag("%s: O_DIRECT %d, punch-hole %d", dir, bs.direct, bs.punch);
	for (f = 0; f < NFILES; f++)
		files[f] = store_file_create(st);
	memset(model, 0, sizeof(model));
	for (f = 0; f < NFILES; f++)
		for (i = 0; i < NPAGES; i++)
			/* every 5th page a copy of a page of file 0: folds */
			put(f, i, i % 5 == 0 ? 1000 + i % 40 : td_mix(f * 7919 + i) | 2);

	for (step = 0; step < 60; step++) {
		unsigned int op;

		x = td_mix(x);
		op = x % 10;
		switch (op) {
		case 0: case 1:		/* overwrite some pages */
			for (n = 0; n < 40; n++) {
				x = td_mix(x);
				put(x % NFILES, (x >> 8) % NPAGES,
				    (x >> 20) % 3 ? (x >> 24) | 2 :
						    1000 + (x >> 24) % 40);
			}
			break;
		case 2:			/* discard a range */
			f = x % NFILES;
			i = (x >> 8) % NPAGES;
			n = (x >> 20) % 30 + 1;
			if (i + n > NPAGES)
				n = NPAGES - i;
			store_discard(files[f], i, n);
			memset(&model[f][i], 0, n * sizeof(model[0][0]));
			break;
		case 3:			/* read a few (makes them young) */
			break;
		case 4:
			store_writeback(st, STORE_WB_HUGE, &n);
			wb_total += (unsigned int)n;
			break;
		case 5:
			store_recompress(st, NULL);
			store_writeback(st, STORE_WB_INCOMPRESSIBLE, &n);
			wb_total += (unsigned int)n;
			break;
		case 6:
			store_mark_idle(st, NULL);
			store_writeback(st, STORE_WB_IDLE | STORE_WB_HUGE, &n);
			wb_total += (unsigned int)n;
			break;
		default:
			store_mark_idle(st, NULL);
			store_writeback(st, STORE_WB_IDLE, &n);
			wb_total += (unsigned int)n;
			break;
		}
		bad_total += bad_pages();
		if (step % 10 == 9)
			check_valid(st, "model step");
	}
	is_u64(bad_total, 0, "every page exact after every step");
	store_get_bd_stats(st, &bs);
	diag("wrote back %u pages; bd_count %llu, bd_reads %llu, file %llu B, objs %llu B, frag %u%%",
	     wb_total, (unsigned long long)bs.bd_count,
	     (unsigned long long)bs.bd_reads,
	     (unsigned long long)bs.file_bytes,
	     (unsigned long long)bs.obj_bytes, bs.frag_pct);
	ok(wb_total > 1000 && bs.bd_reads > 0, "pages went to disk and came back");
	check_valid(st, "after the model");

	/* everything out, then everything discarded: the file empties */
	store_mark_idle(st, NULL);
	store_writeback(st, STORE_WB_IDLE, NULL);
	is_u64(bad_pages(), 0, "every page exact with all on disk");
	check_valid(st, "all on disk");
	for (f = 0; f < NFILES; f++)
		store_discard(files[f], 0, NPAGES);
	memset(model, 0, sizeof(model));
	store_get_bd_stats(st, &bs);
	is_u64(bs.bd_count, 0, "discarded: bd_count 0");
	is_u64(bs.obj_bytes, 0, "discarded: no live bytes");
	store_writeback(st, STORE_WB_IDLE, NULL);	/* punches */
	{
		struct stat sb;

		ok(stat(path, &sb) == 0 && sb.st_blocks == 0 && sb.st_size == 0,
		   "the backing file is empty again (size %lld, blocks %lld)",
		   (long long)sb.st_size, (long long)sb.st_blocks);
	}
	check_valid(st, "after discarding");
	for (f = 0; f < NFILES; f++)
		store_file_destroy(files[f]);
	store_destroy(st);
	unlink(path);
}

static void test_exact(const char *dir)
{
	struct store_config cfg = { .no_background = true };
	struct store *st = store_create(&cfg);
	struct store_file *a = store_file_create(st), *b = store_file_create(st);
	struct store_bd_stats bs;
	struct store_stats s0, s1;
	static unsigned char buf[PG], got[PG];
	char *path;
	uint64_t n;
	unsigned int i;
	int fd;

	is_u64(store_writeback(st, STORE_WB_IDLE, NULL), -ENODEV,
	       "writeback without a backing file: ENODEV");
	is_u64(store_set_backing(st, "/dev/null"), -EINVAL,
	       "a backing file that is not a regular file: EINVAL");
	path = backing_path(dir, "test-backing-exact");
	is_u64(store_set_backing(st, path), 0, "attached");
	is_u64(store_writeback(st, 3 | STORE_WB_INCOMPRESSIBLE, NULL), -EINVAL,
	       "bad writeback type: EINVAL");

	/* 300 distinct text pages in a; b holds 100 copies of one page */
	for (i = 0; i < 300; i++) {
		gen(buf, (uint64_t)i * 8 + 2);
		store_write(a, i, buf);
	}
	gen(buf, 7777 * 8 + 3);
	for (i = 0; i < 100; i++)
		store_write(b, i, buf);
	store_compact(st, NULL);
	store_get_stats(st, &s0);
	store_mark_idle(st, NULL);
	is_u64(store_writeback(st, STORE_WB_IDLE, &n), 0, "writeback idle");
	is_u64(n, 400, "400 pages written back");
	store_get_bd_stats(st, &bs);
	is_u64(bs.bd_count, 400, "bd_count 400");
	is_u64(bs.bd_writes, 400, "bd_writes 400");
	is_u64(bs.objs, 301, "the folded page written once: 301 objects");
	store_get_stats(st, &s1);
	is_u64(s1.compr_data_size, 0, "no compressed bytes left in memory");
	is_u64(s1.orig_data_size, 400 * PG, "orig_data_size keeps the pages");
	diag("mem_used_total %llu -> %llu; per page written back %.1f B",
	     (unsigned long long)s0.mem_used_total,
	     (unsigned long long)s1.mem_used_total,
	     (double)(s0.mem_used_total - s1.mem_used_total) / 400);
	ok(s1.pool_objs == 0, "no pool object left (%llu)",
	   (unsigned long long)s1.pool_objs);
	check_valid(st, "after writeback");

	/* reads: exact, counted, and the page stays on disk */
	for (i = 0; i < 300; i++) {
		gen(buf, (uint64_t)i * 8 + 2);
		if (store_read(a, i, got) || memcmp(buf, got, PG))
			break;
	}
	is_u64(i, 300, "a's pages read back exact");
	gen(buf, 7777 * 8 + 3);
	for (i = 0; i < 100; i++)
		if (store_read(b, i, got) || memcmp(buf, got, PG))
			break;
	is_u64(i, 100, "b's folded pages read back exact");
	store_get_bd_stats(st, &bs);
	is_u64(bs.bd_reads, 400, "bd_reads 400");
	is_u64(bs.bd_count, 400, "pages stay on disk when read");
	is_u64(store_set_backing(st, path), -EBUSY,
	       "backing file cannot change while pages are on it");

	/* overwrite half of b: the shared object lives on for the rest */
	gen(buf, 5 * 8 + 2);
	for (i = 0; i < 50; i++)
		store_write(b, i, buf);
	store_get_bd_stats(st, &bs);
	is_u64(bs.bd_count, 350, "overwritten pages leave the disk");
	is_u64(bs.objs, 301, "the shared object stays for its other slots");
	gen(buf, 7777 * 8 + 3);
	for (i = 50; i < 100; i++)
		if (store_read(b, i, got) || memcmp(buf, got, PG))
			break;
	is_u64(i, 100, "the rest of b still reads back");
	check_valid(st, "after overwrites");

	/* the limit: 10 pages, then EIO */
	store_discard(a, 0, 300);
	for (i = 0; i < 300; i++) {
		gen(buf, (uint64_t)i * 8 + 4);
		store_write(a, i, buf);
	}
	store_set_writeback_limit(st, 10);
	store_set_writeback_limit_enable(st, true);
	store_mark_idle(st, NULL);
	is_u64(store_writeback(st, STORE_WB_IDLE, &n), 0, "limited writeback");
	is_u64(n, 10, "10 pages, as the limit says");
	is_u64(store_get_writeback_limit(st), 0, "the limit is used up");
	is_u64(store_writeback(st, STORE_WB_IDLE, &n), -EIO,
	       "writeback at a used-up limit: EIO");
	store_set_writeback_limit_enable(st, false);
	check_valid(st, "after the limit");

	/* a corrupted file: EIO for the pages on disk, the rest is fine */
	store_writeback(st, STORE_WB_IDLE, NULL);
	gen(buf, 9 * 8 + 2);
	store_write(a, 299, buf);	/* one page back in memory */
	fd = open(path, O_WRONLY);
	{
		static unsigned char junk[PG];
		struct stat sb;
		off_t o;

		memset(junk, 0xa5, PG);
		fstat(fd, &sb);
		for (o = 0; o < sb.st_size; o += PG)
			(void)!pwrite(fd, junk, PG, o);
		close(fd);
	}
	store_get_stats(st, &s0);
	for (i = 0, n = 0; i < 299; i++)
		n += store_read(a, i, got) == -EIO;
	is_u64(n, 299, "every page on the corrupted file: EIO");
	ok(store_read(a, 299, got) == 0 && memcmp(buf, got, PG) == 0,
	   "the page in memory still reads");
	store_get_stats(st, &s1);
	is_u64(s1.failed_reads - s0.failed_reads, 299, "counted in failed_reads");
	check_valid(st, "after EIO");

	store_file_destroy(a);
	store_file_destroy(b);
	store_destroy(st);
	unlink(path);
}


/* ---- threads: writes, reads and discards racing writebacks ---- */

#define TPAGES 600
#define TTHREADS 3

static _Atomic unsigned int running;

struct tctx {
	struct store *st;
	struct store_file *f;
	unsigned int id;
	unsigned int bad;
};

static void *worker(void *arg)
{
	struct tctx *t = arg;
	static _Thread_local unsigned char want[PG], got[PG];
	uint64_t seeds[TPAGES / TTHREADS] = { 0 };
	uint64_t x = t->id + 1;
	unsigned int n = TPAGES / TTHREADS, k;

	for (k = 0; k < 20000; k++) {
		unsigned int i = (unsigned int)((x = td_mix(x)) % n);
		uint64_t page = (uint64_t)i * TTHREADS + t->id;	/* own pages */

		switch ((x >> 32) % 4) {
		case 0:		/* write: text, raw or a shared page */
			seeds[i] = (x >> 40) % 4 ? (x >> 8) | 2 : 1000 + x % 16;
			gen(want, seeds[i]);
			if (store_write(t->f, page, want))
				seeds[i] = 0, store_discard(t->f, page, 1);
			break;
		case 1:
			store_discard(t->f, page, 1);
			seeds[i] = 0;
			break;
		default:	/* read and compare */
			if (seeds[i])
				gen(want, seeds[i]);
			else
				memset(want, 0, PG);
			if (store_read(t->f, page, got) || memcmp(want, got, PG))
				t->bad++;
		}
	}
	atomic_fetch_sub(&running, 1);
	return NULL;
}

static void test_threads(const char *dir)
{
	struct store_config cfg = { .no_background = true };
	struct store *st = store_create(&cfg);
	struct store_file *f = store_file_create(st);
	struct tctx t[TTHREADS];
	pthread_t th[TTHREADS];
	char *path = backing_path(dir, "test-backing-threads");

	atomic_store(&running, TTHREADS);
	unsigned int i, bad = 0, rounds = 0;
	uint64_t n, moved = 0;

	is_u64(store_set_backing(st, path), 0, "threads: attached");
	for (i = 0; i < TTHREADS; i++) {
		t[i] = (struct tctx){ st, f, i, 0 };
		pthread_create(&th[i], NULL, worker, &t[i]);
	}
	/* until every worker is done (they start late, the first rounds
	 * may find an empty file) */
	for (rounds = 0; atomic_load(&running) || rounds < 50; rounds++) {
		store_mark_idle(st, NULL);
		store_writeback(st, rounds % 3 ? STORE_WB_IDLE : STORE_WB_HUGE, &n);
		moved += n;
	}
	for (i = 0; i < TTHREADS; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	diag("threads: %llu pages written back in %u rounds while 3 threads wrote, read and discarded",
	     (unsigned long long)moved, rounds);
	is_u64(bad, 0, "threads: every read matched what its thread wrote");
	ok(moved > 0, "threads: pages went out meanwhile");
	check_valid(st, "after the threads");
	store_file_destroy(f);
	store_destroy(st);
	unlink(path);
}

/*
 * Groups and the disk tier together: grouped pages are never written back
 * (their payload is a group's head object, shared), pages on disk are never
 * grouped or regrouped (their payload is a place in the backing file), and
 * reads, overwrites and discards of each kind go to the right place.
 */
static void test_groups(const char *dir)
{
	struct store_config cfg = { .no_background = true, .group_size = 8 };
	struct store *st = store_create(&cfg);
	struct store_bd_stats bs;
	struct store_stats ss;
	char *path = backing_path(dir, "test-backing-groups");
	uint64_t n, grouped, disk;
	unsigned int f, i;

	if (!attach(st, path, "groups: backing file attached"))
		return;
	for (f = 0; f < NFILES; f++)
		files[f] = store_file_create(st);
	memset(model, 0, sizeof(model));
	for (f = 0; f < NFILES; f++)
		for (i = 0; i < NPAGES; i++)
			put(f, i, i % 5 == 0 ? 1000 + i % 40 :
				  i % 7 == 3 ? (td_mix(f * 31 + i) & ~7ull) | 1 :
					       td_mix(f * 7919 + i) | 2);

	/* 1: idle pages into groups */
	store_mark_idle(st, NULL);
	store_recompress(st, NULL);
	store_get_stats(st, &ss);
	diag("groups: %llu groups, %llu grouped pages",
	     (unsigned long long)ss.groups, (unsigned long long)ss.group_pages);
	ok(ss.groups > 0 && ss.group_pages > ss.groups, "pages grouped");
	check_valid(st, "grouped");

	/* 2: some pages rewritten (out of their groups), then every idle
	 * page written back: the grouped ones stay as they are */
	for (f = 0; f < NFILES; f++)
		for (i = 1; i < NPAGES; i += 4)
			put(f, i, td_mix(f * 104729 + i) | 2);
	store_get_stats(st, &ss);
	grouped = ss.group_pages;
	store_mark_idle(st, NULL);
	store_writeback(st, STORE_WB_IDLE, &n);
	store_writeback(st, STORE_WB_HUGE, NULL);
	store_writeback(st, STORE_WB_INCOMPRESSIBLE, NULL);
	store_get_stats(st, &ss);
	store_get_bd_stats(st, &bs);
	ok(n > 0 && bs.bd_count > 0, "ungrouped idle pages written back (%llu)",
	   (unsigned long long)n);
	is_u64(ss.group_pages, grouped, "grouped pages not written back");
	ok(ss.group_pages + bs.bd_count <= ss.orig_data_size / PG,
	   "grouped and disk pages are distinct");
	check_valid(st, "groups and disk");
	is_u64(bad_pages(), 0, "every page exact, groups and disk");

	/* 3: the reads made every page young: grouped ones leave their
	 * groups at the next walk, disk ones stay where they are; then all
	 * idle again and regrouped - the pages on disk are not taken */
	store_get_bd_stats(st, &bs);
	disk = bs.bd_count;
	store_recompress(st, NULL);
	store_mark_idle(st, NULL);
	store_recompress(st, NULL);
	store_get_stats(st, &ss);
	store_get_bd_stats(st, &bs);
	is_u64(bs.bd_count, disk, "recompression leaves disk pages alone");
	ok(ss.group_pages > 0, "pages regrouped around the disk ones");
	check_valid(st, "regrouped");
	is_u64(bad_pages(), 0, "every page exact after regrouping");

	/* 4: sparse groups (most pages rewritten) regrouped while pages on
	 * disk lie between their pages */
	store_mark_idle(st, NULL);
	store_writeback(st, STORE_WB_IDLE, NULL);
	for (f = 0; f < NFILES; f++)
		for (i = 0; i < NPAGES; i++)
			if (i % 8 < 5)
				put(f, i, td_mix(f * 15485863 + i) | 2);
	store_mark_idle(st, NULL);
	store_recompress(st, NULL);
	check_valid(st, "sparse groups regrouped");
	store_mark_idle(st, NULL);
	store_writeback(st, STORE_WB_IDLE, NULL);
	store_get_stats(st, &ss);
	store_get_bd_stats(st, &bs);
	diag("groups: %llu grouped, %llu on disk, %llu pages",
	     (unsigned long long)ss.group_pages,
	     (unsigned long long)bs.bd_count,
	     (unsigned long long)(ss.orig_data_size / PG));
	ok(ss.group_pages > 0 && bs.bd_count > 0, "both kinds present");
	check_valid(st, "both kinds");
	is_u64(bad_pages(), 0, "every page exact, both kinds");

	/* 5: overwrite and discard pages of every kind */
	for (f = 0; f < NFILES; f++)
		for (i = 0; i < NPAGES; i += 3)
			put(f, i, i % 2 ? td_mix(f * 7 + i * 13) | 2 :
					  1000 + i % 40);
	for (f = 0; f < NFILES; f++)
		for (i = 5; i + 2 < NPAGES; i += 11) {
			store_discard(files[f], i, 2);
			model[f][i] = model[f][i + 1] = 0;
		}
	check_valid(st, "overwritten and discarded");
	is_u64(bad_pages(), 0, "every page exact after overwrites, discards");
	store_fold(st, NULL);
	check_valid(st, "fold pass over both kinds");

	/* 6: all gone: no group, nothing on disk */
	for (f = 0; f < NFILES; f++)
		store_discard(files[f], 0, NPAGES);
	memset(model, 0, sizeof(model));
	store_get_stats(st, &ss);
	store_get_bd_stats(st, &bs);
	ok(ss.groups == 0 && ss.group_pages == 0 && bs.bd_count == 0 &&
	   bs.obj_bytes == 0, "discarded: no group, nothing on disk");
	check_valid(st, "all discarded");
	for (f = 0; f < NFILES; f++)
		store_file_destroy(files[f]);
	store_destroy(st);
	unlink(path);
}

struct rewrite {
	struct store_file *f;
	const unsigned char *now;
	unsigned int calls;
	uint64_t compr_before, compr_after;
	struct store *st;
};

/* The writeback walk's hook, after its batch is on disk and before the
 * slots switch: page 0 is discarded and written again with now. */
static void rewrite_hook(void *arg)
{
	struct rewrite *r = arg;
	struct store_stats ss;

	if (r->calls++)
		return;
	store_get_stats(r->st, &ss);
	r->compr_before = ss.compr_data_size;
	store_discard(r->f, 0, 1);
	store_write(r->f, 0, r->now);
	store_get_stats(r->st, &ss);
	r->compr_after = ss.compr_data_size;
}

/*
 * A page rewritten between the writeback's copy and its switch keeps its
 * new bytes. The new page differs from the old in one byte of its random
 * half: the same size, and written right after the discard it takes the
 * handle the discard freed, so the slot (its age aside, which writeback
 * does not compare) is what the walk saw; only the bytes tell.
 */
static void test_rewritten_meanwhile(const char *dir)
{
	struct store_config cfg = { .no_background = true,
				    .fold = STORE_FOLD_OFF };
	struct store *st = store_create(&cfg);
	struct store_file *f = store_file_create(st);
	static unsigned char was[4][PG], now[PG], got[PG];
	struct rewrite r = { f, now, 0, 0, 0, st };
	uint64_t n = 0;
	unsigned int p, bad = 0;

	if (!attach(st, backing_path(dir, "test-backing-aba"),
		    "rewritten meanwhile: attached"))
		return;
	for (p = 0; p < 4; p++) {
		memset(was[p], 0, PG);
		td_fill(was[p], 1500, 4242 + p);
		store_write(f, p, was[p]);
	}
	memcpy(now, was[0], PG);
	now[700] ^= 0x5a;
	store_mark_idle(st, NULL);
	store_set_walk_hook(st, rewrite_hook, &r);
	store_writeback(st, STORE_WB_IDLE, &n);
	store_set_walk_hook(st, NULL, NULL);
	ok(r.calls >= 1 && r.compr_after == r.compr_before,
	   "rewritten meanwhile: page 0 rewritten during writeback, same size "
	   "(%llu -> %llu)", (unsigned long long)r.compr_before,
	   (unsigned long long)r.compr_after);
	ok(store_read(f, 0, got) == 0 && memcmp(got, now, PG) == 0,
	   "rewritten meanwhile: page 0 reads its new bytes");
	for (p = 1; p < 4; p++)
		bad += store_read(f, p, got) != 0 || memcmp(got, was[p], PG);
	ok(n >= 3 && !bad, "rewritten meanwhile: %llu pages written back, "
	   "pages 1-3 read back", (unsigned long long)n);
	check_valid(st, "a page rewritten during writeback");
	store_set_backing(st, NULL);
	unlink(backing_path(dir, "test-backing-aba"));
	store_destroy(st);
}

int main(void)
{
	const char *dir = getenv("PF_TEST_DIR");
	char cwd[4096];

	if (!dir)
		dir = getcwd(cwd, sizeof(cwd)) ? cwd : "/tmp";
	test_exact(dir);
	test_rewritten_meanwhile(dir);
	test_model(dir);
	test_groups(dir);
	test_threads(dir);
	if (access("/dev/shm", W_OK) == 0)
		test_model("/dev/shm");
	return tap_done();
}
