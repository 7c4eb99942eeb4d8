/* SPDX-License-Identifier: MIT */
/*
 * ctr.h - counters kept in stripes.
 *
 * Counters that many threads add to (the store's, a file's) are kept in
 * stripes, each in cache lines of its own; a thread always adds to the
 * same stripe (ctr_stripe_id(), also the stripe of striped locks), so
 * threads writing pages do not bounce one line between cores, and a read
 * sums the stripes. A gauge's stripes may be negative, their sum is not
 * (ctr_count() clamps what a read racing with adds may see).
 *
 * CTR_STRIPE(tag, n) declares struct tag: one stripe of n counters,
 * n * 8 bytes rounded up to whole cache lines.
 *
 *	CTR_STRIPE(ctr_stripe, SC_NR);
 *	struct ctr_stripe ctr[CTR_STRIPES];
 *
 *	ctr_stripes_init(ctr, CTR_STRIPES);
 *	ctr_stripe_add(&ctr[ctr_stripe_id()], SC_PAGES, 1);
 *	pages = ctr_count(ctr_stripes_sum(ctr, CTR_STRIPES, SC_PAGES));
 */
#ifndef PAGEFOLD_STORE_CTR_H
#define PAGEFOLD_STORE_CTR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CTR_STRIPES 8
#define CTR_LINE    64

#define CTR_STRIPE(tag, n) \
	struct tag { _Atomic int64_t v[n]; } __attribute__((aligned(CTR_LINE)))

/* This thread's stripe, 0..CTR_STRIPES-1: threads take them in turn as
 * they first ask, and keep theirs. */
unsigned int ctr_stripe_id(void);

/* Add d to counter c of one stripe. */
#define ctr_stripe_add(stripe, c, d) ctr_add_one_(&(stripe)->v[c], (d))

/* Sum of counter c over n stripes in a row. */
#define ctr_stripes_sum(stripes, n, c) \
	ctr_sum_(&(stripes)[0].v[c], sizeof((stripes)[0]), (n))

/* Every counter of n stripes in a row to 0. */
#define ctr_stripes_init(stripes, n) \
	ctr_init_((stripes)[0].v, sizeof((stripes)[0]), (n), \
		  sizeof((stripes)[0].v) / sizeof((stripes)[0].v[0]))

/* A sum read as a count: never below 0. */
static inline uint64_t ctr_count(int64_t sum)
{
	return sum < 0 ? 0 : (uint64_t)sum;
}

static inline void ctr_add_one_(_Atomic int64_t *v, int64_t d)
{
	atomic_fetch_add_explicit(v, d, memory_order_relaxed);
}

/* The same counter of each stripe is stride bytes after the last. */
static inline _Atomic int64_t *ctr_next_(_Atomic int64_t *v, size_t stride)
{
	return (_Atomic int64_t *)(void *)((char *)v + stride);
}

static inline int64_t ctr_sum_(_Atomic int64_t *v, size_t stride,
			       unsigned int n)
{
	int64_t sum = 0;

	for (unsigned int i = 0; i < n; i++, v = ctr_next_(v, stride))
		sum += atomic_load_explicit(v, memory_order_relaxed);
	return sum;
}

static inline void ctr_init_(_Atomic int64_t *v, size_t stride,
			     unsigned int n, size_t nctr)
{
	for (unsigned int i = 0; i < n; i++, v = ctr_next_(v, stride))
		for (size_t c = 0; c < nctr; c++)
			atomic_init(&v[c], 0);
}

#endif /* PAGEFOLD_STORE_CTR_H */
