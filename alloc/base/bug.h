/* SPDX-License-Identifier: MIT */
/*
 * bug.h - a broken invariant: say where and why, and abort.
 *
 * The one exception to "alloc/ and store/ never print or exit": when a
 * debug check (PF_DEBUG) finds a broken invariant or a misuse (a double
 * free, a stale handle), memory can no longer be trusted, so the process
 * stops at once, with a core, instead of returning an error.
 *
 *   BUG("free of %p: not a live object", p);
 *   BUG_ON(s->inuse > c->objs_per_span, "span %p overfull", s);
 *
 * print "pagefold <file>:<line>: <message>" on stderr and abort().
 * DEBUG_CHECK(cluster_is_valid, c) runs a checker of the usual kind
 * (bool x_is_valid(x, const char **why)) in debug builds and BUGs with
 * its answer; other builds do not call it. This is the lowest layer's
 * header that every layer may include (alloc/base/, exported by meson's
 * base_dep through each layer's dependency).
 */
#ifndef PAGEFOLD_ALLOC_BUG_H
#define PAGEFOLD_ALLOC_BUG_H

__attribute__((noreturn, cold, format(printf, 3, 4)))
void bug_at(const char *file, int line, const char *fmt, ...);

#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)

#define BUG_ON(cond, ...) do {                          \
	if (__builtin_expect(!!(cond), 0))              \
		BUG(__VA_ARGS__);                       \
} while (0)

#ifdef PF_DEBUG
#define DEBUG_CHECK(valid, obj) do {                    \
	const char *why_ = "?";                         \
	BUG_ON(!valid((obj), &why_), "%s: invariant broken: %s", \
	       #valid, why_);                           \
} while (0)
#else
#define DEBUG_CHECK(valid, obj) do { } while (0)
#endif

#endif /* PAGEFOLD_ALLOC_BUG_H */
