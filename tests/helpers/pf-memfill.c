// SPDX-License-Identifier: MIT
/*
 * pf-memfill - fill memory with known, memory-like contents and verify every
 * byte, for the swap end-to-end test.
 *
 *   pf-memfill -s MiB [-g GO_FILE] [-S seed] [-p passes]
 *
 * Pages come in kinds that exercise every path of the store: same-filled
 * pages (zeros and repeated words), pages that are exact copies of one of
 * a few templates (folded), and unique "heap-like" pages (small integers,
 * pointers, text, zero runs; they compress 2-4x with LZ4), each stamped with
 * its index and generation so that a page swapped back to the wrong place
 * is caught.
 *
 * Steps: fill all pages; print "filled" and, with -g, wait until GO_FILE
 * exists (the test reads the stats while the pages sit in swap); then for
 * each pass: verify every page in a shuffled order, rewrite every other
 * page with the next generation. Finally verify everything once more and
 * print "pages=N checked=C errors=E". Exit status 0 only without errors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testdata.h"

#define PAGE 4096u
#define TEMPLATES 64

static uint64_t seed = 0x9e3779b97f4a7c15ull;

enum kind { K_ZERO, K_SAME, K_DUP, K_HEAP };

static enum kind page_kind(uint64_t idx)
{
	switch (td_mix(idx ^ seed) % 8) {
	case 0:
		return K_ZERO;
	case 1:
		return K_SAME;
	case 2:
	case 3:
		return K_DUP;
	default:
		return K_HEAP;
	}
}

/* A heap-like page from key: runs of structure, pointers, small counters,
 * words of text, and zeros. */
static void heap_page(uint64_t *w, uint64_t key)
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
			case 0: /* pointers into one region */
				w[i] = 0x00007f3a12000000ull +
				       ((td_mix(r + j) & 0xfff) << 4);
				break;
			case 1: /* small counters */
				w[i] = (r >> 16) % 64 + j;
				break;
			case 2: /* text */
				memcpy(&w[i], words + ((r + j * 8) % (sizeof(words) - 9)), 8);
				break;
			default:
				w[i] = 0;
				break;
			}
		}
		r = td_mix(r);
	}
}

static void expected_page(uint64_t idx, uint32_t gen, unsigned char *p)
{
	uint64_t *w = (uint64_t *)p;
	uint64_t key = td_mix(idx * 31 + gen + seed);

	switch (page_kind(idx + gen)) {
	case K_ZERO:
		memset(p, 0, PAGE);
		break;
	case K_SAME:
		for (unsigned int i = 0; i < PAGE / 8; i++)
			w[i] = 0x0101010101010101ull * (1 + key % 255);
		break;
	case K_DUP:
		heap_page(w, td_mix(seed + key % TEMPLATES));
		break;
	case K_HEAP:
		heap_page(w, key);
		w[0] = idx;
		w[1] = gen | (seed << 32);
		break;
	}
}

static uint64_t checked, errors;

static void verify(unsigned char *mem, uint64_t idx, uint32_t gen)
{
	unsigned char want[PAGE] __attribute__((aligned(8)));

	expected_page(idx, gen, want);
	checked++;
	if (memcmp(mem + idx * PAGE, want, PAGE) == 0)
		return;
	if (errors < 10) {
		size_t off = 0;

		while (mem[idx * PAGE + off] == want[off])
			off++;
		printf("error: page %llu generation %u differs from byte %zu\n",
		       (unsigned long long)idx, gen, off);
	}
	errors++;
}

int main(int argc, char **argv)
{
	const char *go_file = NULL;
	uint64_t mib = 0, npages, *order;
	uint32_t *gen;
	unsigned int passes = 1;
	unsigned char *mem;
	int c;

	while ((c = getopt(argc, argv, "s:g:S:p:")) != -1) {
		switch (c) {
		case 's':
			mib = strtoull(optarg, NULL, 0);
			break;
		case 'g':
			go_file = optarg;
			break;
		case 'S':
			seed = td_mix(strtoull(optarg, NULL, 0));
			break;
		case 'p':
			passes = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: %s -s MiB [-g go_file] [-S seed] [-p passes]\n",
				argv[0]);
			return 2;
		}
	}
	if (!mib) {
		fprintf(stderr, "pf-memfill: -s MiB is required\n");
		return 2;
	}
	npages = mib * 1024 * 1024 / PAGE;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(npages, sizeof(*gen));
	order = malloc(npages * sizeof(*order));
	if (mem == MAP_FAILED || !gen || !order) {
		fprintf(stderr, "pf-memfill: out of memory\n");
		return 2;
	}
	/* No transparent huge pages: swap works on 4 KiB pages here. */
	madvise(mem, npages * PAGE, MADV_NOHUGEPAGE);

	for (uint64_t i = 0; i < npages; i++)
		expected_page(i, 0, mem + i * PAGE);
	printf("filled pages=%llu\n", (unsigned long long)npages);
	fflush(stdout);
	if (go_file)
		while (access(go_file, F_OK) != 0)
			usleep(20000);

	for (uint64_t i = 0; i < npages; i++)
		order[i] = i;
	for (unsigned int pass = 0; pass < passes; pass++) {
		for (uint64_t i = npages - 1; i > 0; i--) {
			uint64_t j = td_mix(seed + pass * npages + i) % (i + 1);
			uint64_t t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (uint64_t i = 0; i < npages; i++) {
			uint64_t idx = order[i];

			verify(mem, idx, gen[idx]);
			if (i % 2 == 0) {
				gen[idx]++;
				expected_page(idx, gen[idx], mem + idx * PAGE);
			}
		}
		printf("pass %u done errors=%llu\n", pass,
		       (unsigned long long)errors);
		fflush(stdout);
	}
	for (uint64_t i = 0; i < npages; i++)
		verify(mem, i, gen[i]);

	printf("pages=%llu checked=%llu errors=%llu\n",
	       (unsigned long long)npages, (unsigned long long)checked,
	       (unsigned long long)errors);
	munmap(mem, npages * PAGE);
	free(gen);
	free(order);
	return errors ? 1 : 0;
}
