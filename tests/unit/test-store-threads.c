// SPDX-License-Identifier: MIT
/*
 * test-store-threads - the page store under concurrent use, with
 * verification.
 *
 * Worker threads write, read and discard pages
 *   - in one shared file, interleaved page by page (thread t owns the pages
 *     p with p % NWORKERS == t), so every cluster is written, emptied, freed
 *     and recreated by all threads at once;
 *   - in a churn region of the shared file where each thread owns one page
 *     per cluster, so clusters are freed and recreated under the others;
 *   - in a file of their own, with truncates;
 *   - with contents drawn partly from a set shared by all threads, so that
 *     equal pages are folded, unfolded and refolded concurrently;
 * and every read is checked against the thread's own model of its pages.
 * All workers also hammer one page of the shared file with self-describing
 * contents (the first word names the rest): every read of it must be one
 * whole written value, never a mix, and the final value must be the last
 * value of one of the writers.
 * Meanwhile one thread runs compaction and shrinks, another fold scans and
 * fold mode changes, idle marking and recompression, another reads
 * statistics and seeks; the background compaction thread runs too, and the
 * background aging thread (recompress_after 1 s) moves idle pages to the
 * cold codec under the workers' feet. At the end every page is verified, the store
 * is checked with store_is_valid() and the counters are compared with the
 * models.
 */
#include <errno.h>
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
#define NWORKERS 4
#define SHARED_PAGES 4096	/* pages of the shared file in play */
#define OWN_PAGES 1024		/* pages of each worker's own file */
#define RACE_PAGE 100000	/* the page every worker writes */
/* Churn region of the shared file: each worker owns one page in each of
 * CHURN_CLUSTERS clusters, written and discarded at a high rate, so that
 * clusters go empty (and are freed) and get refilled by others at once. */
#define CHURN_BASE (1u << 20)
#define CHURN_CLUSTERS 32
#define NPOPULAR 32

static uint64_t worker_ops = 250000;

static struct store *st;
static struct store_file *shared_file;
static unsigned char popular[NPOPULAR][PG];
static atomic_bool workers_done;
static atomic_uint_fast64_t race_bad, race_reads;

/* ---- contents ---- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return td_mix(r->s);
}

/*
 * A page is described by 64 bits: the top two bits say what kind of page,
 * the rest which one. 0 is a hole.
 */
#define D_HOLE    0ull
#define D_SEEDED  (1ull << 62)	/* generated from a seed, seed in word 0 */
#define D_POPULAR (2ull << 62)	/* popular[low bits] */
#define D_SAME    (3ull << 62)	/* same-filled, pattern from low bits */
#define D_KIND(d) ((d) & (3ull << 62))

static const uint64_t patterns[] = {
	0, 0xffffffffffffffffull, 0x0101010101010101ull, 0x1234567800000000ull,
};

static void fill_seeded(unsigned char *p, uint64_t seed)
{
	struct rng r = { seed };
	unsigned int i, kind = (unsigned int)(seed % 3);

	memcpy(p, &seed, 8);
	for (i = 8; i < PG; i += 8) {
		uint64_t v;

		switch (kind) {
		case 0:	/* compressible: small numbers and repeats */
			v = (i % 64 == 0) ? rnd(&r) : (i / 8) * (seed & 0xff);
			break;
		case 1:	/* text-ish */
			v = 0x2020656874206120ull + (rnd(&r) & 0x0f0f);
			break;
		default: /* incompressible */
			v = rnd(&r);
			break;
		}
		memcpy(p + i, &v, 8);
	}
}

static void fill_desc(unsigned char *p, uint64_t d)
{
	uint64_t v;
	unsigned int i;

	switch (D_KIND(d)) {
	case D_HOLE:
		memset(p, 0, PG);
		break;
	case D_SEEDED:
		fill_seeded(p, d);
		break;
	case D_POPULAR:
		memcpy(p, popular[d & (NPOPULAR - 1)], PG);
		break;
	default:
		v = patterns[d & 3];
		if ((d & 4) != 0)
			v = td_mix(d & 0xffff) | 1;
		for (i = 0; i < PG; i += 8)
			memcpy(p + i, &v, 8);
		break;
	}
}

static uint64_t pick_desc(struct rng *r)
{
	uint64_t x = rnd(r), k = x % 100;

	if (k < 45)
		return D_SEEDED | (rnd(r) >> 2);
	if (k < 85)
		return D_POPULAR | (rnd(r) % NPOPULAR);
	return D_SAME | (rnd(r) & 0xffff);
}

/* ---- workers ---- */

struct worker {
	pthread_t thread;
	unsigned int id;
	struct store_file *own;
	uint64_t shared_model[SHARED_PAGES / NWORKERS];
	uint64_t own_model[OWN_PAGES];
	uint64_t churn_model[CHURN_CLUSTERS];
	uint64_t race_last;	/* last value this worker wrote to RACE_PAGE */
	uint64_t bad, errors, writes, reads, discarded;
	uint64_t seed;
};

static bool check_page(struct store_file *f, uint64_t page, uint64_t d,
		       unsigned char *buf, unsigned char *want)
{
	if (store_read(f, page, buf))
		return false;
	fill_desc(want, d);
	return memcmp(buf, want, PG) == 0;
}

static void race_check(struct worker *w, unsigned char *buf,
		       unsigned char *want)
{
	uint64_t seed;

	if (store_read(shared_file, RACE_PAGE, buf)) {
		w->errors++;
		return;
	}
	atomic_fetch_add(&race_reads, 1);
	memcpy(&seed, buf, 8);
	if (seed == 0 && buf[PG - 1] == 0)
		return;		/* not written yet */
	fill_seeded(want, seed);
	if (D_KIND(seed) != D_SEEDED || memcmp(buf, want, PG)) {
		atomic_fetch_add(&race_bad, 1);
		w->bad++;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(PG), *want = malloc(PG);
	struct rng r = { w->seed };
	uint64_t op;

	for (op = 0; op < worker_ops; op++) {
		uint64_t x = rnd(&r) % 1000, d, where = rnd(&r) % 8;
		bool shared = where < 4;
		uint64_t *model;
		uint64_t idx, page;
		struct store_file *f;

		if (where == 7) {
			/* churn: write, discard or read one page */
			idx = rnd(&r) % CHURN_CLUSTERS;
			page = CHURN_BASE + idx * 512 + w->id * 37;
			model = &w->churn_model[idx];
			if (x < 350) {
				d = pick_desc(&r);
				fill_desc(buf, d);
				if (store_write(shared_file, page, buf)) {
					w->errors++;
					continue;
				}
				*model = d;
				w->writes++;
			} else if (x < 800) {
				if (store_discard(shared_file, page, 1)) {
					w->errors++;
					continue;
				}
				w->discarded += *model != D_HOLE;
				*model = D_HOLE;
			} else if (!check_page(shared_file, page, *model, buf,
					       want)) {
				w->bad++;
			}
			continue;
		}
		if (shared) {
			idx = rnd(&r) % (SHARED_PAGES / NWORKERS);
			page = idx * NWORKERS + w->id;
			model = &w->shared_model[idx];
			f = shared_file;
		} else {
			idx = rnd(&r) % OWN_PAGES;
			page = idx;
			model = &w->own_model[idx];
			f = w->own;
		}
		if (x < 420) {
			d = pick_desc(&r);
			fill_desc(buf, d);
			if (store_write(f, page, buf)) {
				w->errors++;
				continue;
			}
			*model = d;
			w->writes++;
		} else if (x < 820) {
			if (!check_page(f, page, *model, buf, want)) {
				w->bad++;
				if (w->bad < 5)
					diag("worker %u: page %llu of %s file wrong",
					     w->id, (unsigned long long)page,
					     shared ? "the shared" : "its own");
			}
			w->reads++;
		} else if (x < 900) {
			if (store_discard(f, page, 1)) {
				w->errors++;
				continue;
			}
			w->discarded += *model != D_HOLE;
			*model = D_HOLE;
		} else if (x < 905 && !shared) {
			uint64_t n = OWN_PAGES / 2 + rnd(&r) % OWN_PAGES, i;

			if (store_truncate(f, n)) {
				w->errors++;
				continue;
			}
			for (i = n; i < OWN_PAGES; i++) {
				w->discarded += w->own_model[i] != D_HOLE;
				w->own_model[i] = D_HOLE;
			}
		} else if (x < 960) {
			d = D_SEEDED | (((rnd(&r) >> 8) << 4) | w->id);
			fill_seeded(buf, d);
			if (store_write(shared_file, RACE_PAGE, buf)) {
				w->errors++;
				continue;
			}
			w->race_last = d;
			w->writes++;
		} else {
			race_check(w, buf, want);
		}
	}
	free(buf);
	free(want);
	return NULL;
}

/* ---- background pressure ---- */

static void nap(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

static uint64_t compactions, compact_freed, folds, fold_freed, stat_reads;
static uint64_t recomp_moved;

static void *compactor_main(void *arg)
{
	unsigned int i = 0;

	(void)arg;
	while (!atomic_load(&workers_done)) {
		uint64_t n = 0;

		if (i++ % 3 == 0)
			store_shrink(st, &n);
		else
			store_compact(st, &n);
		compact_freed += n;
		compactions++;
		nap(2000);
	}
	return NULL;
}

static void *folder_main(void *arg)
{
	unsigned int i = 0;

	(void)arg;
	while (!atomic_load(&workers_done)) {
		uint64_t n = 0;

		/* scan mode for a while, then back to inline */
		store_set_fold_mode(st, i % 4 == 1 ? STORE_FOLD_SCAN :
					i % 4 == 3 ? STORE_FOLD_OFF :
						     STORE_FOLD_INLINE);
		store_fold(st, &n);
		fold_freed += n;
		folds++;
		if (i % 2) {
			store_mark_idle(st, NULL);
			store_recompress(st, &n);
			recomp_moved += n;
		}
		i++;
		nap(5000);
	}
	store_set_fold_mode(st, STORE_FOLD_INLINE);
	return NULL;
}

static void *stats_main(void *arg)
{
	struct worker *ws = arg;
	unsigned int i = 0;

	while (!atomic_load(&workers_done)) {
		struct store_stats ss;
		struct store_file_stats fs;
		uint64_t pg;

		store_get_stats(st, &ss);
		store_file_get_stats(i % 2 ? shared_file : ws[i % NWORKERS].own,
				     &fs);
		store_seek_data(shared_file, (i * 97) % SHARED_PAGES, &pg);
		store_seek_hole(shared_file, (i * 89) % SHARED_PAGES, &pg);
		stat_reads++;
		i++;
		nap(1000);
	}
	return NULL;
}

int main(void)
{
	struct store_config cfg = { .defrag_ratio = 5, .recompress_after = 1 };
	static struct worker ws[NWORKERS];
	pthread_t comp, fold, stats;
	uint64_t seed = (uint64_t)time(NULL), bad = 0, errors = 0;
	uint64_t writes = 0, discarded = 0, pages = 0, same = 0, i;
	struct store_stats ss;
	unsigned char *buf = malloc(PG), *want = malloc(PG);
	const char *why = NULL, *e;
	struct rng r;
	bool race_ok = false;
	unsigned int t;

	e = getenv("PF_STORE_SEED");
	if (e)
		seed = strtoull(e, NULL, 0);
	e = getenv("PF_STORE_OPS");
	if (e)
		worker_ops = strtoull(e, NULL, 0);
	diag("seed %llu, %u workers x %llu operations", (unsigned long long)seed,
	     NWORKERS, (unsigned long long)worker_ops);
	r.s = seed;
	for (t = 0; t < NPOPULAR; t++)
		fill_seeded(popular[t], D_SEEDED | (rnd(&r) >> 2));

	st = store_create(&cfg);
	ok(st != NULL, "store created (background compaction on)");
	shared_file = store_file_create(st);
	for (t = 0; t < NWORKERS; t++) {
		ws[t].id = t;
		ws[t].own = store_file_create(st);
		ws[t].seed = td_mix(seed + t + 1);
	}
	for (t = 0; t < NWORKERS; t++)
		pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]);
	pthread_create(&comp, NULL, compactor_main, NULL);
	pthread_create(&fold, NULL, folder_main, NULL);
	pthread_create(&stats, NULL, stats_main, ws);
	for (t = 0; t < NWORKERS; t++)
		pthread_join(ws[t].thread, NULL);
	atomic_store(&workers_done, true);
	pthread_join(comp, NULL);
	pthread_join(fold, NULL);
	pthread_join(stats, NULL);

	for (t = 0; t < NWORKERS; t++) {
		bad += ws[t].bad;
		errors += ws[t].errors;
		writes += ws[t].writes;
		discarded += ws[t].discarded;
	}
	diag("%llu writes, %llu discards of data, %llu racing-page reads; "
	     "%llu compactions freed %llu pages, %llu fold scans freed %llu, "
	     "%llu stats reads", (unsigned long long)writes,
	     (unsigned long long)discarded,
	     (unsigned long long)atomic_load(&race_reads),
	     (unsigned long long)compactions, (unsigned long long)compact_freed,
	     (unsigned long long)folds, (unsigned long long)fold_freed,
	     (unsigned long long)stat_reads);
	is_u64(errors, 0, "no store call failed");
	is_u64(bad, 0, "every read during the run matched the reader's model");
	is_u64(atomic_load(&race_bad), 0,
	       "the racing page was always one whole written value");
	ok(atomic_load(&race_reads) > 0, "the racing page was read");

	/* final state: every page of every model */
	bad = 0;
	for (t = 0; t < NWORKERS; t++) {
		for (i = 0; i < SHARED_PAGES / NWORKERS; i++) {
			uint64_t d = ws[t].shared_model[i];

			bad += !check_page(shared_file, i * NWORKERS + t, d, buf,
					   want);
			pages += d != D_HOLE;
			same += D_KIND(d) == D_SAME;
		}
		for (i = 0; i < OWN_PAGES; i++) {
			uint64_t d = ws[t].own_model[i];

			bad += !check_page(ws[t].own, i, d, buf, want);
			pages += d != D_HOLE;
			same += D_KIND(d) == D_SAME;
		}
		for (i = 0; i < CHURN_CLUSTERS; i++) {
			uint64_t d = ws[t].churn_model[i];

			bad += !check_page(shared_file,
					   CHURN_BASE + i * 512 + t * 37, d,
					   buf, want);
			pages += d != D_HOLE;
			same += D_KIND(d) == D_SAME;
		}
	}
	is_u64(bad, 0, "after the run every page matches its model");
	if (store_read(shared_file, RACE_PAGE, buf) == 0) {
		for (t = 0; t < NWORKERS; t++) {
			if (!ws[t].race_last)
				continue;
			fill_seeded(want, ws[t].race_last);
			race_ok |= memcmp(buf, want, PG) == 0;
		}
	}
	ok(race_ok, "the racing page holds the last value of one writer");
	pages += 1;	/* the racing page */

	/* No more aging, and a walk of our own waits for the background
	 * one to end: no page is between two objects (or two groups) while
	 * the checks below look. */
	store_set_recompress_after(st, 0);
	store_recompress(st, NULL);

	if (!ok(store_is_valid(st, &why), "store_is_valid after the run"))
		diag("store_is_valid: %s", why);
	store_get_stats(st, &ss);
	is_u64(ss.orig_data_size, pages * PG, "orig_data_size matches the models");
	is_u64(ss.same_pages, same, "same_pages matches the models");
	is_u64(ss.failed_writes + ss.failed_reads, 0, "no failed I/O counted");
	is_u64(ss.writes, writes, "writes counted");
	is_u64(ss.notify_free, discarded, "notify_free counts the discarded data pages");
	ok(ss.pages_folded > 0 && ss.fold_hits > 0, "pages were folded (%llu)",
	   (unsigned long long)ss.pages_folded);
	ok(ss.recomp_total > 0, "pages went to the cold codec meanwhile (%llu, "
	   "%llu by the trigger)", (unsigned long long)ss.recomp_total,
	   (unsigned long long)recomp_moved);
	diag("end: %llu pages, %llu folded, mem_used_total %llu, frag %u%%, "
	     "pages_compacted %llu", (unsigned long long)(ss.orig_data_size / PG),
	     (unsigned long long)ss.pages_folded,
	     (unsigned long long)ss.mem_used_total, ss.frag_pct,
	     (unsigned long long)ss.pages_compacted);

	/* everything released when the files go */
	store_file_destroy(shared_file);
	for (t = 0; t < NWORKERS; t++)
		store_file_destroy(ws[t].own);
	store_get_stats(st, &ss);
	is_u64(ss.pool_objs, 0, "files destroyed: no object left");
	is_u64(ss.pages_folded, 0, "files destroyed: nothing folded");
	if (!ok(store_is_valid(st, &why), "store_is_valid when empty"))
		diag("store_is_valid: %s", why);
	store_destroy(st);
	free(buf);
	free(want);
	return tap_done();
}
