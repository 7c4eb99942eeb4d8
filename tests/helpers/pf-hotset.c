// SPDX-License-Identifier: MIT
/*
 * pf-hotset - a program with a hot set, for the two-tier swap test and
 * benchmark: it fills memory with pages, then touches them for a while,
 * most touches going to a small hot part, and checks every page it touches.
 *
 *   pf-hotset -s MiB [-f PAGES] [-H HOT%] [-A TO_HOT%] [-t SECONDS]
 *             [-w WRITE%] [-S SEED] [-g FILE]
 *
 * Contents: the pages of file PAGES (a dump of real programs' memory, such
 * as tests/bench/datasets.sh makes), repeated to fill MiB; every copy after
 * the first has one 8-byte word of each page changed, so that repeats are
 * not duplicates (a store that folds identical pages gets no free ride);
 * same-filled pages are left as they are. Without -f, memory-like pages
 * made here (structure, pointers, counters, text, zero runs).
 *
 * Touches: HOT% (default 10) of the pages, spread over the range, are the
 * hot set; TO_HOT% (default 90) of the touches go to a page of it chosen at
 * random, the rest to any page. A touch reads the whole page and compares
 * its XXH3 hash with the one recorded when it was last written; WRITE% of
 * touches (default 0) then change one word and record the new hash.
 *
 * Output, one line each: "filled pages=N seconds=S" after the fill; then
 * "touches=T seconds=S rate=R errors=E writes=W". With -g, the program
 * waits after the fill until FILE exists, and after the touches until
 * FILE.done exists, so that a script can read memory figures while the
 * pages sit in swap. Exit status 0 only without errors; 2 for bad usage or
 * a missing file.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "testdata.h"

#define PAGE 4096u

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wait_for(const char *path)
{
	while (access(path, F_OK) != 0)
		usleep(20000);
}

static bool same_filled(const uint64_t *w)
{
	for (unsigned int i = 1; i < PAGE / 8; i++)
		if (w[i] != w[0])
			return false;
	return true;
}

/* A memory-like page from key (as pf-memfill's heap pages). */
static void made_page(uint64_t *w, uint64_t key)
{
	static const char words[] = "the page store folds identical pages and "
				    "compresses the rest with lz4 before it ";
	uint64_t r = td_mix(key);
	unsigned int i = 0;

	while (i < PAGE / 8) {
		unsigned int run = 4 + (unsigned int)(r % 28);
		unsigned int what = (unsigned int)((r >> 8) % 4);

		for (unsigned int j = 0; j < run && i < PAGE / 8; j++, i++) {
			switch (what) {
			case 0:
				w[i] = 0x00007f3a12000000ull +
				       ((td_mix(r + j) & 0xfff) << 4);
				break;
			case 1:
				w[i] = (r >> 16) % 64 + j;
				break;
			case 2:
				memcpy(&w[i], words + ((r + j * 8) % (sizeof(words) - 9)), 8);
				break;
			default:
				w[i] = 0;
				break;
			}
		}
		r = td_mix(r);
	}
	w[0] = key;
}

/* Which word of a page a stamp or a write changes: one that depends on
 * the page, so that changed words are spread over the page. */
static unsigned int word_of(uint64_t idx)
{
	return (unsigned int)(td_mix(idx ^ 0x5bd1e995) % (PAGE / 8));
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng += 0x9e3779b97f4a7c15ull;
	return td_mix(rng);
}

int main(int argc, char **argv)
{
	const char *file = NULL, *go = NULL;
	uint64_t mib = 0, npages, nhot, *hash, *hot, i;
	unsigned int hot_pct = 10, to_hot = 90, write_pct = 0, seconds = 10;
	uint64_t touches = 0, writes = 0, errors = 0;
	unsigned char *mem, *src = MAP_FAILED;
	size_t src_pages = 0;
	double t0, t;
	int c;

	while ((c = getopt(argc, argv, "s:f:H:A:t:w:S:g:")) != -1) {
		switch (c) {
		case 's': mib = strtoull(optarg, NULL, 0); break;
		case 'f': file = optarg; break;
		case 'H': hot_pct = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'A': to_hot = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 't': seconds = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'w': write_pct = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'S': rng = td_mix(strtoull(optarg, NULL, 0)); break;
		case 'g': go = optarg; break;
		default:
			fprintf(stderr, "usage: %s -s MiB [-f PAGES] [-H HOT%%] [-A TO_HOT%%] "
				"[-t SECONDS] [-w WRITE%%] [-S SEED] [-g FILE]\n", argv[0]);
			return 2;
		}
	}
	if (!mib || !hot_pct || hot_pct > 100 || to_hot > 100 || write_pct > 100) {
		fprintf(stderr, "pf-hotset: -s MiB is required; percentages 1..100\n");
		return 2;
	}
	if (file) {
		struct stat sb;
		int fd = open(file, O_RDONLY);

		if (fd < 0 || fstat(fd, &sb) || sb.st_size < PAGE) {
			fprintf(stderr, "pf-hotset: %s: %s\n", file,
				fd < 0 ? strerror(errno) : "not a file of pages");
			return 2;
		}
		src_pages = (size_t)sb.st_size / PAGE;
		src = mmap(NULL, src_pages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (src == MAP_FAILED) {
			fprintf(stderr, "pf-hotset: mmap %s: %s\n", file, strerror(errno));
			return 2;
		}
	}
	npages = mib * 1024 * 1024 / PAGE;
	nhot = npages * hot_pct / 100;
	if (!nhot)
		nhot = 1;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	hash = malloc(npages * sizeof(*hash));
	hot = malloc(nhot * sizeof(*hot));
	if (mem == MAP_FAILED || !hash || !hot) {
		fprintf(stderr, "pf-hotset: out of memory\n");
		return 2;
	}
	/* Swap works on 4 KiB pages: no transparent huge pages here. */
	madvise(mem, npages * PAGE, MADV_NOHUGEPAGE);

	t0 = now();
	for (i = 0; i < npages; i++) {
		uint64_t *w = (uint64_t *)(mem + i * PAGE);

		if (src_pages) {
			uint64_t copy = i / src_pages;

			memcpy(w, src + (i % src_pages) * PAGE, PAGE);
			if (copy && !same_filled(w))
				w[word_of(i)] ^= td_mix(copy);
		} else {
			made_page(w, td_mix(i ^ rng));
		}
		hash[i] = XXH3_64bits(w, PAGE);
	}
	t = now() - t0;
	if (src != MAP_FAILED)
		munmap(src, src_pages * PAGE);
	printf("filled pages=%llu seconds=%.3f\n", (unsigned long long)npages, t);
	fflush(stdout);

	/* The hot set: nhot pages spread evenly over the range. */
	for (i = 0; i < nhot; i++)
		hot[i] = i * npages / nhot + td_mix(i) % (npages / nhot);
	if (go)
		wait_for(go);

	t0 = now();
	do {
		for (unsigned int k = 0; k < 256; k++) {
			uint64_t r = next_rand(), idx;
			uint64_t *w;

			if (r % 100 < to_hot)
				idx = hot[(r >> 8) % nhot];
			else
				idx = (r >> 8) % npages;
			w = (uint64_t *)(mem + idx * PAGE);
			if (XXH3_64bits(w, PAGE) != hash[idx]) {
				if (errors < 10)
					printf("error: page %llu is not what was written\n",
					       (unsigned long long)idx);
				errors++;
			}
			touches++;
			if ((r >> 40) % 100 < write_pct) {
				w[word_of(idx + touches)] += 1;
				hash[idx] = XXH3_64bits(w, PAGE);
				writes++;
			}
		}
		t = now() - t0;
	} while (t < seconds);
	printf("touches=%llu seconds=%.3f rate=%.0f errors=%llu writes=%llu\n",
	       (unsigned long long)touches, t, (double)touches / t,
	       (unsigned long long)errors, (unsigned long long)writes);
	fflush(stdout);
	if (go) {
		char done[4096];

		snprintf(done, sizeof(done), "%s.done", go);
		wait_for(done);
	}
	munmap(mem, npages * PAGE);
	free(hash);
	free(hot);
	return errors ? 1 : 0;
}
