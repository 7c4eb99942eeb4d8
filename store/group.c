// SPDX-License-Identifier: MIT
/*
 * group.c - groups: several cold pages of one cluster in one zstd frame.
 *
 * A group is held in pool objects (of at most a page each): a head object,
 * which opens with struct group_hdr and the handles of the chunks, then
 * the frame's first bytes; and as many chunk objects as the rest of the
 * frame needs, 4096 bytes each but the last. The slots of its pages name
 * the head (cluster.h: SLOT_GROUP, the page's index in the frame).
 *
 * All pages of a group are slots of one cluster, so the cluster lock
 * guards the group as it guards its slots: the header's live count
 * changes only under it, and a group whose last slot leaves is unreachable
 * (it is freed after the lock is dropped, like any released object). The
 * frame itself never changes: a page that leaves a group leaves its bytes
 * behind (dead bytes, counted in compr_data_size and mem_used_total) until
 * the recompression walk rewrites the group (recompress.c).
 *
 * Readers keep the last group they decoded in their thread's scratch
 * (codec.h), named by the group's serial, unique for the process's
 * lifetime: a handle can be reused by a new group, a serial cannot.
 *
 * lock ordering: the caller's cluster lock, then the pool's.
 */
#include <errno.h>
#include <string.h>

#include "codec.h"
#include "store-int.h"

static _Atomic uint64_t next_serial = 1;

static unsigned int head_cap(unsigned int nchunks)
{
	return POOL_MAX_OBJ - (unsigned int)sizeof(struct group_hdr) -
	       nchunks * (unsigned int)sizeof(pool_handle_t);
}

int group_create(struct store *st, const void *frame, unsigned int len,
		 unsigned int n, pool_handle_t *head, unsigned int *bytes)
{
	unsigned char buf[POOL_MAX_OBJ];
	struct group_hdr *h = (struct group_hdr *)buf;
	pool_handle_t chunk[CODEC_GROUP_MAX + 1];
	unsigned int nchunks = 0, first, off, i, total;
	int err;

	while (len > head_cap(nchunks) + nchunks * POOL_MAX_OBJ)
		nchunks++;
	if (nchunks > CODEC_GROUP_MAX || n < 1 || n > CODEC_GROUP_MAX)
		return -EINVAL;
	first = len < head_cap(nchunks) ? len : head_cap(nchunks);
	total = 0;
	for (i = 0, off = first; i < nchunks; i++, off += POOL_MAX_OBJ) {
		unsigned int sz = len - off < POOL_MAX_OBJ ? len - off :
							     POOL_MAX_OBJ;

		err = object_create(st, (const unsigned char *)frame + off, sz,
				    &chunk[i]);
		if (err)
			goto fail_free_chunks;
		total += sz;
	}
	memset(h, 0, sizeof(*h));
	h->serial = atomic_fetch_add_explicit(&next_serial, 1,
					      memory_order_relaxed);
	h->frame = len;
	h->n = (uint8_t)n;
	h->live = 0;
	h->nchunks = (uint8_t)nchunks;
	memcpy(buf + sizeof(*h), chunk, nchunks * sizeof(pool_handle_t));
	memcpy(buf + sizeof(*h) + nchunks * sizeof(pool_handle_t), frame, first);
	err = object_create(st, buf, POOL_MAX_OBJ - head_cap(nchunks) + first,
			    head);
	if (err)
		goto fail_free_chunks;
	total += POOL_MAX_OBJ - head_cap(nchunks) + first;
	*bytes = total;
	ctr_add(st, SC_GROUPS, 1);
	return 0;

fail_free_chunks:
	while (i-- > 0)
		object_free(st, chunk[i],
			    (unsigned int)pool_obj_size(st->pool, chunk[i]));
	return err;
}

int group_header(struct store *st, pool_handle_t head, struct group_hdr *h,
		 pool_handle_t *chunk)
{
	const unsigned char *obj = pool_map(st->pool, head);

	if (!obj)
		return -EIO;
	memcpy(h, obj, sizeof(*h));
	if (chunk)
		memcpy(chunk, obj + sizeof(*h),
		       h->nchunks * sizeof(pool_handle_t));
	pool_unmap(st->pool, head);
	return h->nchunks > CODEC_GROUP_MAX ? -EIO : 0;
}

unsigned int group_bytes(struct store *st, pool_handle_t head)
{
	pool_handle_t chunk[CODEC_GROUP_MAX];
	struct group_hdr h;
	unsigned int total, i;

	if (group_header(st, head, &h, chunk))
		return 0;
	total = (unsigned int)pool_obj_size(st->pool, head);
	for (i = 0; i < h.nchunks; i++)
		total += (unsigned int)pool_obj_size(st->pool, chunk[i]);
	return total;
}

void group_free(struct store *st, pool_handle_t head)
{
	pool_handle_t chunk[CODEC_GROUP_MAX];
	struct group_hdr h;
	unsigned int i;

	if (group_header(st, head, &h, chunk))
		return;
	for (i = 0; i < h.nchunks; i++)
		object_free(st, chunk[i],
			    (unsigned int)pool_obj_size(st->pool, chunk[i]));
	object_free(st, head, (unsigned int)pool_obj_size(st->pool, head));
	ctr_add(st, SC_GROUPS, -1);
}

void group_set_live(struct store *st, pool_handle_t head, unsigned int live)
{
	struct group_hdr *h = pool_map(st->pool, head);

	if (!h)
		return;
	h->live = (uint8_t)live;
	pool_unmap(st->pool, head);
}

bool group_drop(struct store *st, slot_t s)
{
	pool_handle_t head = slot_payload(s);
	struct group_hdr *h = pool_map(st->pool, head);
	bool last;

	if (!h)
		return false;
	last = --h->live == 0;
	pool_unmap(st->pool, head);
	return last;
}

int group_fetch(struct store *st, slot_t s, void *page,
		struct group_read *gr)
{
	struct codec_group_scratch *gs;
	pool_handle_t head = slot_payload(s), chunk[CODEC_GROUP_MAX];
	unsigned int idx = slot_gidx(s), off, i, first;
	const unsigned char *obj;
	struct group_hdr h;

	gr->pending = false;
	obj = pool_map(st->pool, head);
	if (!obj)
		return -EIO;
	memcpy(&h, obj, sizeof(h));
	if (h.nchunks > CODEC_GROUP_MAX || idx >= h.n || h.n > CODEC_GROUP_MAX ||
	    h.frame > (size_t)h.n * STORE_PAGE_SIZE) {
		pool_unmap(st->pool, head);
		return -EIO;
	}
	gs = codec_group_scratch(h.n);
	if (!gs) {
		pool_unmap(st->pool, head);
		return -ENOMEM;
	}
	if (gs->serial == h.serial) {
		memcpy(page, gs->out + (size_t)idx * STORE_PAGE_SIZE,
		       STORE_PAGE_SIZE);
		pool_unmap(st->pool, head);
		return 0;
	}
	memcpy(chunk, obj + sizeof(h), h.nchunks * sizeof(pool_handle_t));
	first = head_cap(h.nchunks);
	if (first > h.frame)
		first = h.frame;
	memcpy(gs->in, obj + POOL_MAX_OBJ - head_cap(h.nchunks), first);
	pool_unmap(st->pool, head);
	for (i = 0, off = first; i < h.nchunks; i++, off += POOL_MAX_OBJ) {
		unsigned int sz = h.frame - off < POOL_MAX_OBJ ?
				  h.frame - off : POOL_MAX_OBJ;

		obj = pool_map(st->pool, chunk[i]);
		if (!obj)
			return -EIO;
		memcpy(gs->in + off, obj, sz);
		pool_unmap(st->pool, chunk[i]);
	}
	gs->serial = 0;		/* out is about to change */
	gr->pending = true;
	gr->serial = h.serial;
	gr->frame = h.frame;
	gr->n = h.n;
	gr->idx = idx;
	return 0;
}

int group_finish(const struct group_read *gr, void *page)
{
	struct codec_group_scratch *gs;
	int err;

	if (!gr->pending)
		return 0;
	gs = codec_group_scratch(gr->n);	/* made by group_fetch() */
	if (!gs)
		return -ENOMEM;
	err = codec_group_decode(gs->in, gr->frame, gs->out, gr->n);
	if (err)
		return err;
	gs->serial = gr->serial;
	memcpy(page, gs->out + (size_t)gr->idx * STORE_PAGE_SIZE,
	       STORE_PAGE_SIZE);
	return 0;
}
