// SPDX-License-Identifier: MIT
/*
 * thread.c - preparing a serving thread (thread.h).
 */
#include <stddef.h>

#include "store.h"
#include "thread.h"

/* Not inlined: the array must be a frame of its own, below the caller's. */
static __attribute__((noinline)) void prefault_stack(void)
{
	volatile char stack[PF_STACK_PREFAULT];

	for (size_t i = 0; i < sizeof(stack); i += 1024)
		stack[i] = 0;
}

int pf_thread_prepare(void)
{
	prefault_stack();
	return store_thread_prepare();
}
