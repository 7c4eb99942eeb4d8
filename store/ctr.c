// SPDX-License-Identifier: MIT
/*
 * ctr.c - a thread's counter stripe (see ctr.h).
 */
#include "ctr.h"

static _Atomic unsigned int next_stripe;
static _Thread_local unsigned int tls_stripe_plus1;

unsigned int ctr_stripe_id(void)
{
	if (!tls_stripe_plus1)
		tls_stripe_plus1 = atomic_fetch_add_explicit(&next_stripe, 1,
				memory_order_relaxed) % CTR_STRIPES + 1;
	return tls_stripe_plus1 - 1;
}
