// SPDX-License-Identifier: MIT
/*
 * cluster.c - clusters of slots and the radix-tree directory above them.
 * Takes no locks: callers hold the file lock and cluster locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

struct dir_node {
	uint32_t count;		/* non-NULL children */
	uint32_t unused;
	void *child[DIR_FANOUT];
};

_Static_assert(sizeof(struct dir_node) == CDIR_NODE_BYTES, "node size");
_Static_assert(sizeof(struct cluster) == 8, "cluster header must stay 8 bytes");
_Static_assert(CLUSTER_SLOTS <= UINT16_MAX, "live and cap are 16 bits");

#define MAX_HEIGHT 6	/* 36 bits >= 31 bits of cluster index */

struct cluster *cluster_new(struct meta_mem *mem, unsigned int cap, int *err)
{
	struct cluster *c = meta_alloc(mem, sizeof(*c) + cap * sizeof(slot_t),
				       META_ZERO | META_LIMITED, err);

	if (c) {
		futex_lock_init(&c->lock);
		c->cap = (uint16_t)cap;
	}
	return c;
}

struct cluster *cluster_grow(struct meta_mem *mem, struct cluster *c,
			     unsigned int cap, int *err)
{
	struct cluster *n = cluster_new(mem, cap, err);

	if (!n)
		return NULL;
	memcpy(n->slot, c->slot, c->cap * sizeof(slot_t));
	n->live = c->live;
	return n;
}

void cluster_free(struct meta_mem *mem, struct cluster *c)
{
	meta_free(mem, c);
}

bool cluster_is_valid(const struct cluster *c, const char **why)
{
	uint32_t i, live = 0;

	if (c->cap < CLUSTER_MIN_SLOTS || c->cap > CLUSTER_SLOTS ||
	    (c->cap & (c->cap - 1))) {
		*why = "cluster: capacity not a power of two in range";
		return false;
	}
	for (i = 0; i < c->cap; i++) {
		slot_t s = c->slot[i];

		if (slot_type(s) == SLOT_EMPTY) {
			if (s) {
				*why = "cluster: empty slot with bits set";
				return false;
			}
			continue;
		}
		live++;
		if (slot_type(s) >= SLOT_OBJ) {
			unsigned int size = slot_size(s);

			if (size == 0 || size > 4096 ||
			    (slot_flag(s) != (size == 4096))) {
				*why = "cluster: object size/huge flag wrong";
				return false;
			}
			if (slot_type(s) == SLOT_OBJ && !slot_payload(s)) {
				*why = "cluster: object slot without handle";
				return false;
			}
		} else if (slot_size(s)) {
			*why = "cluster: same-filled slot with a size";
			return false;
		}
		if (slot_is_group(s) ?
		    slot_type(s) != SLOT_OBJ || !(s & SLOT_COLD) ||
		    slot_flag(s) : !!(s & SLOT_GIDX_MASK)) {
			*why = "cluster: group bits on a slot that is not a "
			       "cold object, or an index without a group";
			return false;
		}
		/* disk tier: a plain object's slot, never a group's */
		if ((s & SLOT_DISK) && (slot_type(s) != SLOT_OBJ ||
					(s & (SLOT_COLD | SLOT_KEEP |
					      SLOT_GROUP)))) {
			*why = "cluster: DISK bit on a slot that is no plain OBJ";
			return false;
		}
		if (slot_type(s) == SLOT_SAME &&
		    (s & (SLOT_AGE_MASK | SLOT_COLD | SLOT_KEEP))) {
			*why = "cluster: same-filled slot with an age";
			return false;
		}
	}
	if (live != c->live) {
		*why = "cluster: live count wrong";
		return false;
	}
	return true;
}

/* ---- directory ---- */

static inline uint64_t span_of(unsigned int height)
{
	return UINT64_C(1) << (DIR_BITS * height);
}

static inline unsigned int idx_at(uint64_t ci, unsigned int level)
{
	return (unsigned int)(ci >> (DIR_BITS * (level - 1))) & (DIR_FANOUT - 1);
}

struct cluster *cdir_lookup(const struct cdir *d, uint64_t ci)
{
	void *n = d->root;
	unsigned int h;

	if (!n || ci >= span_of(d->height))
		return NULL;
	for (h = d->height; h > 0 && n; h--)
		n = ((struct dir_node *)n)->child[idx_at(ci, h)];
	return n;
}

static struct dir_node *node_new(struct cdir *d, struct meta_mem *mem,
				 int *err)
{
	struct dir_node *n = meta_alloc(mem, sizeof(*n),
					META_ZERO | META_LIMITED, err);

	if (n)
		d->nodes++;
	return n;
}

static void node_free(struct cdir *d, struct meta_mem *mem, struct dir_node *n)
{
	d->nodes--;
	meta_free(mem, n);
}

/* Drop a root that has nothing or only child[0] until the tree is no taller
 * than needed. */
static void cdir_shrink(struct cdir *d, struct meta_mem *mem)
{
	while (d->height > 0) {
		struct dir_node *r = d->root;

		if (!r) {
			d->height = 0;
			break;
		}
		if (r->count == 0) {
			node_free(d, mem, r);
			d->root = NULL;
			d->height = 0;
			break;
		}
		if (r->count != 1 || !r->child[0])
			break;
		d->root = r->child[0];
		d->height--;
		node_free(d, mem, r);
	}
}

/* Free the empty nodes on the path to ci, bottom up, then shrink. */
static void cdir_prune(struct cdir *d, struct meta_mem *mem, uint64_t ci)
{
	struct dir_node *path[MAX_HEIGHT + 1];
	unsigned int h, depth = 0;
	void *n = d->root;

	if (ci < span_of(d->height)) {
		for (h = d->height; h > 0 && n; h--) {
			path[depth++] = n;
			n = ((struct dir_node *)n)->child[idx_at(ci, h)];
		}
		/* path[k] is at level height - k. */
		while (depth > 1 && path[depth - 1]->count == 0) {
			struct dir_node *parent = path[depth - 2];

			node_free(d, mem, path[depth - 1]);
			parent->child[idx_at(ci, d->height - depth + 2)] = NULL;
			parent->count--;
			depth--;
		}
	}
	cdir_shrink(d, mem);
}

int cdir_insert(struct cdir *d, struct meta_mem *mem, uint64_t ci,
		struct cluster *c)
{
	struct dir_node *parent = NULL;
	void **slot;
	unsigned int h;
	int err = 0;

	while (ci >= span_of(d->height)) {
		if (d->height == MAX_HEIGHT)
			return -EFBIG;
		if (d->root) {
			struct dir_node *n = node_new(d, mem, &err);

			if (!n)
				goto fail_prune;
			n->child[0] = d->root;
			n->count = 1;
			d->root = n;
		}
		d->height++;
	}
	slot = &d->root;
	for (h = d->height; h > 0; h--) {
		if (!*slot) {
			struct dir_node *n = node_new(d, mem, &err);

			if (!n)
				goto fail_prune;
			*slot = n;
			if (parent)
				parent->count++;
		}
		parent = *slot;
		slot = &parent->child[idx_at(ci, h)];
	}
	*slot = c;
	if (parent)
		parent->count++;
	d->clusters++;
	d->slots += c->cap;
	return 0;

fail_prune:
	cdir_prune(d, mem, ci);
	return err;
}

void cdir_replace(struct cdir *d, uint64_t ci, struct cluster *c)
{
	void **slot = &d->root;
	unsigned int h;

	for (h = d->height; h > 0; h--)
		slot = &((struct dir_node *)*slot)->child[idx_at(ci, h)];
	d->slots += c->cap;
	d->slots -= ((struct cluster *)*slot)->cap;
	*slot = c;
}

struct cluster *cdir_remove(struct cdir *d, struct meta_mem *mem, uint64_t ci)
{
	struct dir_node *parent = NULL;
	struct cluster *c;
	void **slot = &d->root;
	unsigned int h;

	if (!d->root || ci >= span_of(d->height))
		return NULL;
	for (h = d->height; h > 0 && *slot; h--) {
		parent = *slot;
		slot = &parent->child[idx_at(ci, h)];
	}
	c = *slot;
	if (!c)
		return NULL;
	*slot = NULL;
	if (parent)
		parent->count--;
	d->clusters--;
	d->slots -= c->cap;
	cdir_prune(d, mem, ci);
	return c;
}

static void *next_rec(void *n, unsigned int h, uint64_t base, uint64_t ci,
		      uint64_t *found)
{
	struct dir_node *node = n;
	unsigned int i, shift;

	if (h == 0) {
		*found = base;
		return n;
	}
	shift = DIR_BITS * (h - 1);
	for (i = (unsigned int)((ci - base) >> shift); i < DIR_FANOUT; i++) {
		uint64_t cbase = base + ((uint64_t)i << shift);
		void *r;

		if (!node->child[i])
			continue;
		r = next_rec(node->child[i], h - 1, cbase,
			     ci > cbase ? ci : cbase, found);
		if (r)
			return r;
	}
	return NULL;
}

struct cluster *cdir_next(const struct cdir *d, uint64_t ci, uint64_t *found)
{
	if (!d->root || ci >= span_of(d->height))
		return NULL;
	return next_rec(d->root, d->height, 0, ci, found);
}

static void *prev_rec(void *n, unsigned int h, uint64_t base, uint64_t ci,
		      uint64_t *found)
{
	struct dir_node *node = n;
	unsigned int shift;
	int i;

	if (h == 0) {
		*found = base;
		return n;
	}
	shift = DIR_BITS * (h - 1);
	for (i = (int)((ci - base) >> shift); i >= 0; i--) {
		uint64_t cbase = base + ((uint64_t)i << shift);
		uint64_t clast = cbase + span_of(h - 1) - 1;
		void *r;

		if (!node->child[i])
			continue;
		r = prev_rec(node->child[i], h - 1, cbase,
			     ci < clast ? ci : clast, found);
		if (r)
			return r;
	}
	return NULL;
}

struct cluster *cdir_prev(const struct cdir *d, uint64_t ci, uint64_t *found)
{
	if (!d->root)
		return NULL;
	if (ci >= span_of(d->height))
		ci = span_of(d->height) - 1;
	return prev_rec(d->root, d->height, 0, ci, found);
}

static void clear_rec(struct cdir *d, struct meta_mem *mem, void *n,
		      unsigned int h, uint64_t base,
		      void (*fn)(void *, uint64_t, struct cluster *), void *arg)
{
	struct dir_node *node = n;
	unsigned int i;

	if (h == 0) {
		if (fn)
			fn(arg, base, n);
		return;
	}
	for (i = 0; i < DIR_FANOUT; i++)
		if (node->child[i])
			clear_rec(d, mem, node->child[i], h - 1,
				  base + ((uint64_t)i << (DIR_BITS * (h - 1))),
				  fn, arg);
	node_free(d, mem, node);
}

void cdir_clear(struct cdir *d, struct meta_mem *mem,
		void (*fn)(void *arg, uint64_t ci, struct cluster *c),
		void *arg)
{
	if (d->root)
		clear_rec(d, mem, d->root, d->height, 0, fn, arg);
	cdir_init(d);
}

struct check {
	uint64_t clusters, slots, nodes;
	const char *bad;
};

static void check_rec(void *n, unsigned int h, struct check *ck)
{
	struct dir_node *node = n;
	unsigned int i, count = 0;

	if (h == 0) {
		ck->clusters++;
		ck->slots += ((const struct cluster *)n)->cap;
		return;
	}
	ck->nodes++;
	for (i = 0; i < DIR_FANOUT; i++) {
		if (!node->child[i])
			continue;
		count++;
		check_rec(node->child[i], h - 1, ck);
	}
	if (count != node->count)
		ck->bad = "cdir: node count wrong";
	if (count == 0)
		ck->bad = "cdir: empty node kept";
}

bool cdir_is_valid(const struct cdir *d, const char **why)
{
	struct check ck = { 0, 0, 0, NULL };

	if (!d->root) {
		if (d->height || d->clusters || d->slots || d->nodes)
			ck.bad = "cdir: empty tree with height or counts";
		goto out;
	}
	if (d->height > MAX_HEIGHT) {
		ck.bad = "cdir: too tall";
		goto out;
	}
	if (d->height > 0) {
		struct dir_node *r = d->root;

		if (r->count < 2 && r->child[0])
			ck.bad = "cdir: taller than needed";
	}
	check_rec(d->root, d->height, &ck);
	if (!ck.bad && (ck.clusters != d->clusters || ck.slots != d->slots ||
			ck.nodes != d->nodes))
		ck.bad = "cdir: cluster/slot/node counts wrong";
out:
	if (ck.bad && why)
		*why = ck.bad;
	return !ck.bad;
}
