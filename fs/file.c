// SPDX-License-Identifier: MIT
/*
 * file.c - byte ranges of regular files onto store pages.
 *
 * lock ordering: an inode's io_lock, then its attr_lock. fs->ns_lock is
 * never taken here. Large reads and writes take the fan-out pool's lock
 * (fanout.c) with io_lock held; the helpers then run store calls on the
 * requester's behalf, covered by the io_lock it holds until they are done.
 *
 * io_lock is shared by reads and by writes made only of whole pages, which
 * the store serialises per page itself; it is exclusive for anything that
 * reads a page, changes part of it and writes it back (partial-page writes,
 * truncate to a size inside a page, the edges of a punched or zeroed
 * range), so two such updates of one page never lose each other's bytes.
 *
 * Pages handed to the store are 8-byte aligned (the store may read them as
 * words): whole pages at odd places in a request are copied first.
 *
 * Ordering for the memory limit: where an operation both rewrites a page
 * (which may need memory) and frees pages, the rewrite comes first, so an
 * ENOSPC leaves the file exactly as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pf.h"

static bool page_is_zero(const unsigned char *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < PF_PAGE / sizeof(*w); i++)
		if (w[i])
			return false;
	return true;
}

static uint64_t file_size(struct pf_inode *inode)
{
	uint64_t size;

	pthread_mutex_lock(&inode->attr_lock);
	size = inode->size;
	pthread_mutex_unlock(&inode->attr_lock);
	return size;
}

/* Set the size (or only grow it), and the change times. */
static void file_set_size(struct pf_inode *inode, uint64_t size, bool grow_only)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&inode->attr_lock);
	if (!grow_only || size > inode->size)
		inode->size = size;
	inode->mtime = ts;
	inode->ctime = ts;
	pthread_mutex_unlock(&inode->attr_lock);
}

/*
 * Zero bytes [from, to) of one page, 0 <= from < to <= PF_PAGE, with io_lock
 * held exclusively. A hole stays a hole; a page that becomes all zeros is
 * released rather than stored.
 */
static int page_zero_part(struct store_file *sf, uint64_t page, size_t from,
			  size_t to)
{
	unsigned char buf[PF_PAGE] __attribute__((aligned(16)));
	uint64_t data;
	int ret;

	ret = store_seek_data(sf, page, &data);
	if (ret == -ENXIO || (!ret && data != page))
		return 0; /* a hole already */
	if (ret)
		return ret;
	ret = store_read(sf, page, buf);
	if (ret)
		return ret;
	memset(buf + from, 0, to - from);
	if (page_is_zero(buf))
		return store_discard(sf, page, 1);
	return store_write(sf, page, buf);
}

/*
 * Large requests are cut into chunks of pages, aligned to page indexes that
 * are multiples of the chunk size, and a request of two chunks or more is
 * shared with the fan-out helpers (fanout.h).
 *
 * Writes: chunks of PF_WCHUNK_PAGES (a divisor of the store's cluster,
 * STORE_CLUSTER_PAGES, so a chunk never straddles one). Splitting inside a cluster is
 * what lets a 1 MiB write (256 pages, one cluster) use more than one core:
 * store_write() holds no lock while it compresses, so threads on one
 * cluster only meet on the short slot update.
 *
 * Reads: the same chunks. store_read() holds the cluster lock only to copy
 * the compressed bytes out and decodes after dropping it, so threads
 * reading one cluster share the decoding (what a 1 MiB read of pages in the
 * cold codec, ~5 us each to decode, spends most of its time on).
 */
#define PF_WCHUNK_PAGES  16u
_Static_assert(STORE_CLUSTER_PAGES % PF_WCHUNK_PAGES == 0,
	       "a chunk never straddles two clusters");
#define PF_NO_PAGE       UINT64_MAX

/* [*from, *to) of chunk c of the pages [first, last], chunks of n pages
 * (a power of two). */
static void chunk_pages(uint64_t first, uint64_t last, uint64_t n,
			unsigned int c, uint64_t *from, uint64_t *to)
{
	uint64_t base = first & ~(n - 1);

	*from = base + (uint64_t)c * n;
	*to = *from + n;
	if (*from < first)
		*from = first;
	if (*to > last + 1)
		*to = last + 1;
}

static unsigned int chunk_index(uint64_t first, uint64_t n, uint64_t page)
{
	return (unsigned int)((page - (first & ~(n - 1))) / n);
}

static unsigned int chunk_count(uint64_t first, uint64_t last, uint64_t n)
{
	return chunk_index(first, n, last) + 1;
}

struct read_job {
	struct pf_fanout_job job; /* first */
	struct store_file *sf;
	unsigned char *out;
	uint64_t first, last;
	atomic_int err;           /* first error, 0 if none */
};

static void read_chunk(struct pf_fanout_job *job, unsigned int c)
{
	struct read_job *rj = (struct read_job *)job;
	uint64_t from, to;
	int ret, none;

	chunk_pages(rj->first, rj->last, PF_WCHUNK_PAGES, c, &from, &to);
	for (uint64_t p = from; p < to; p++) {
		if (atomic_load_explicit(&rj->err, memory_order_relaxed))
			return; /* the request fails anyway */
		store_read_hint((unsigned int)(to - p));	/* disk tier */
		ret = store_read(rj->sf, p, rj->out + (p - rj->first) * PF_PAGE);
		if (ret) {
			none = 0;
			atomic_compare_exchange_strong(&rj->err, &none, ret);
			return;
		}
	}
}

int pf_file_read(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		 size_t size, void *buf, size_t buf_size, size_t *skip,
		 size_t *len)
{
	struct read_job rj;
	uint64_t fsize;
	int ret = 0;

	*skip = 0;
	*len = 0;
	pthread_rwlock_rdlock(&inode->io_lock);
	fsize = file_size(inode);
	if (off >= fsize || size == 0 || !inode->sf)
		goto unlock;
	if (size > fsize - off)
		size = (size_t)(fsize - off);
	rj.sf = inode->sf;
	rj.out = buf;
	rj.first = off / PF_PAGE;
	rj.last = (off + size - 1) / PF_PAGE;
	if ((rj.last - rj.first + 1) * PF_PAGE > buf_size) {
		ret = -EINVAL; /* caller's buffer is sized for max_read */
		goto unlock;
	}
	atomic_init(&rj.err, 0);
	rj.job.run = read_chunk;
	rj.job.nchunks = chunk_count(rj.first, rj.last, PF_WCHUNK_PAGES);
	pf_fanout_run(fs->fanout, &rj.job);
	ret = atomic_load(&rj.err);
	if (ret)
		goto unlock;
	*skip = (size_t)(off & PF_PAGE_MASK);
	*len = size;
	pf_counter_add(fs, PF_C_READ_BYTES, size);
unlock:
	pthread_rwlock_unlock(&inode->io_lock);
	return ret;
}

/*
 * A write's chunks run in any order, so a failure can leave pages after the
 * failed one already written. What the caller is told is the prefix before
 * the lowest failed page (as if the pages had been written in order): every
 * page below it was written, the failed page keeps its old contents (the
 * store's guarantee), and chunks stop at pages above the lowest failure seen
 * so far. Pages above the prefix that did get written hold the caller's new
 * bytes; those past the end of the file are released again afterwards, so
 * that nothing lives past the size (a later truncate up must read zeros).
 */
struct write_job {
	struct pf_fanout_job job; /* first */
	struct store_file *sf;
	const unsigned char *in;
	uint64_t off, size;       /* the request, bytes */
	uint64_t first, last;     /* its pages */
	bool serial;              /* one chunk of every page */
	_Atomic uint64_t bad;     /* lowest failed page, PF_NO_PAGE if none */
	/* Error of the lowest failure in each chunk (a chunk stops at its
	 * first); read for the chunk holding bad. */
	int *errs;
};

/* Lower *bad to page unless it is lower already. */
static void atomic_min_u64(_Atomic uint64_t *bad, uint64_t page)
{
	uint64_t old = atomic_load_explicit(bad, memory_order_relaxed);

	while (page < old && !atomic_compare_exchange_weak(bad, &old, page))
		;
}

static void write_chunk(struct pf_fanout_job *job, unsigned int c)
{
	unsigned char tmp[PF_PAGE] __attribute__((aligned(16)));
	struct write_job *wj = (struct write_job *)job;
	uint64_t from, to;
	int ret;

	if (wj->serial) {
		from = wj->first;
		to = wj->last + 1;
	} else {
		chunk_pages(wj->first, wj->last, PF_WCHUNK_PAGES, c, &from,
			    &to);
	}
	for (uint64_t p = from; p < to; p++) {
		uint64_t pstart = p * PF_PAGE;
		uint64_t lo = pstart > wj->off ? pstart : wj->off;
		uint64_t hi = pstart + PF_PAGE < wj->off + wj->size ?
			      pstart + PF_PAGE : wj->off + wj->size;
		const unsigned char *src = wj->in + (lo - wj->off);
		size_t poff = (size_t)(lo - pstart), plen = (size_t)(hi - lo);

		if (p > atomic_load_explicit(&wj->bad, memory_order_relaxed))
			return; /* past a failed page: would not be reported */
		if (plen == PF_PAGE && !((uintptr_t)src & 7)) {
			ret = store_write(wj->sf, p, src);
		} else if (plen == PF_PAGE) {
			/* The store may read the page as 64-bit words. */
			memcpy(tmp, src, PF_PAGE);
			ret = store_write(wj->sf, p, tmp);
		} else {
			/* An edge page: io_lock is held exclusively. */
			ret = store_read(wj->sf, p, tmp);
			if (!ret) {
				memcpy(tmp + poff, src, plen);
				ret = store_write(wj->sf, p, tmp);
			}
		}
		if (ret) {
			wj->errs[c] = ret;
			atomic_min_u64(&wj->bad, p);
			return;
		}
	}
}

/* With io_lock held exclusively: release pages [from, last] that lie past
 * the end of the file. */
static void discard_past_size(struct pf_inode *inode, uint64_t from,
			      uint64_t last)
{
	uint64_t size = file_size(inode);
	uint64_t end_page = size / PF_PAGE + !!(size & PF_PAGE_MASK);

	if (from < end_page)
		from = end_page;
	if (from <= last && inode->sf)
		store_discard(inode->sf, from, last + 1 - from);
}

/* Chunks of the largest request; a larger one (only from tests) is written
 * in one chunk, serially. */
#define PF_MAX_CHUNKS (PF_MAX_IO / PF_PAGE / PF_WCHUNK_PAGES + 2)

int pf_file_write(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		  const void *buf, size_t size, size_t *written)
{
	int errs[PF_MAX_CHUNKS];
	struct write_job wj;
	uint64_t end = off + size, bad;
	bool exclusive;
	size_t done;
	int ret = 0;

	*written = 0;
	if (size == 0)
		return 0;
	if (off >= PF_MAX_SIZE || size > PF_MAX_SIZE - off)
		return -EFBIG;
	wj.sf = inode->sf;
	wj.in = buf;
	wj.off = off;
	wj.size = size;
	wj.first = off / PF_PAGE;
	wj.last = (end - 1) / PF_PAGE;
	wj.errs = errs;
	atomic_init(&wj.bad, PF_NO_PAGE);
	wj.job.run = write_chunk;
	wj.job.nchunks = chunk_count(wj.first, wj.last, PF_WCHUNK_PAGES);
	wj.serial = wj.job.nchunks > PF_MAX_CHUNKS;
	if (wj.serial)
		wj.job.nchunks = 1;
	exclusive = (off & PF_PAGE_MASK) || (end & PF_PAGE_MASK);

	if (exclusive)
		pthread_rwlock_wrlock(&inode->io_lock);
	else
		pthread_rwlock_rdlock(&inode->io_lock);
	if (!inode->sf) {
		ret = -EIO; /* cannot happen on an open file */
		goto unlock;
	}
	wj.sf = inode->sf;
	pf_fanout_run(fs->fanout, &wj.job);

	bad = atomic_load(&wj.bad);
	if (bad == PF_NO_PAGE) {
		done = size;
	} else {
		ret = wj.serial ? errs[0] :
		      errs[chunk_index(wj.first, PF_WCHUNK_PAGES, bad)];
		done = bad == wj.first ? 0 : (size_t)(bad * PF_PAGE - off);
	}
	if (done) {
		file_set_size(inode, off + done, true);
		pf_counter_add(fs, PF_C_WRITE_BYTES, done);
		ret = 0; /* a short write reports what was written */
	}
	*written = done;
	if (bad != PF_NO_PAGE && bad < wj.last) {
		/* Release pages written past the failure that lie past the
		 * end of the file. Every write that completed has set the
		 * size by the time we hold io_lock exclusively. */
		if (!exclusive) {
			pthread_rwlock_unlock(&inode->io_lock);
			pthread_rwlock_wrlock(&inode->io_lock);
		}
		discard_past_size(inode, bad + 1, wj.last);
	}
unlock:
	pthread_rwlock_unlock(&inode->io_lock);
	return ret;
}

int pf_file_truncate(struct pf_fs *fs, struct pf_inode *inode, uint64_t size)
{
	uint64_t old;
	int ret = 0;

	(void)fs;
	if (size > PF_MAX_SIZE)
		return -EFBIG;
	pthread_rwlock_wrlock(&inode->io_lock);
	old = file_size(inode);
	if (size < old && inode->sf) {
		/* The tail of the new last page must read back as zeros if
		 * the file grows again. */
		if (size & PF_PAGE_MASK) {
			ret = page_zero_part(inode->sf, size / PF_PAGE,
					     (size_t)(size & PF_PAGE_MASK),
					     PF_PAGE);
			if (ret)
				goto unlock;
		}
		ret = store_truncate(inode->sf, (size + PF_PAGE - 1) / PF_PAGE);
		if (ret)
			goto unlock;
	}
	file_set_size(inode, size, false);
unlock:
	pthread_rwlock_unlock(&inode->io_lock);
	return ret;
}

/* Zero [off, end) of the file: edges rewritten, whole pages released. */
static int range_zero(struct store_file *sf, uint64_t off, uint64_t end)
{
	uint64_t first_full = (off + PF_PAGE - 1) / PF_PAGE;
	uint64_t end_full = end / PF_PAGE;
	int ret;

	if (off >= end)
		return 0;
	if (off / PF_PAGE == (end - 1) / PF_PAGE &&
	    ((off & PF_PAGE_MASK) || (end & PF_PAGE_MASK))) {
		/* Inside one page and not all of it. */
		return page_zero_part(sf, off / PF_PAGE,
				      (size_t)(off & PF_PAGE_MASK),
				      (size_t)(end - (off & ~PF_PAGE_MASK)));
	}
	if (off & PF_PAGE_MASK) {
		ret = page_zero_part(sf, off / PF_PAGE,
				     (size_t)(off & PF_PAGE_MASK), PF_PAGE);
		if (ret)
			return ret;
	}
	if (end & PF_PAGE_MASK) {
		ret = page_zero_part(sf, end / PF_PAGE, 0,
				     (size_t)(end & PF_PAGE_MASK));
		if (ret)
			return ret;
	}
	if (end_full > first_full)
		return store_discard(sf, first_full, end_full - first_full);
	return 0;
}

int pf_file_fallocate(struct pf_fs *fs, struct pf_inode *inode, int mode,
		      uint64_t off, uint64_t len)
{
	uint64_t size, end;
	bool punch;
	int ret;

	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		punch = true;
	else if (mode == FALLOC_FL_ZERO_RANGE ||
		 mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
		punch = false;
	else
		return -EOPNOTSUPP;
	if (len == 0)
		return -EINVAL;
	if (off >= PF_MAX_SIZE || len > PF_MAX_SIZE - off)
		return -EFBIG;
	end = off + len;
	pf_counter_add(fs, PF_C_DISCARD_REQS, 1);

	pthread_rwlock_wrlock(&inode->io_lock);
	if (!inode->sf) {
		ret = -EIO;
		goto unlock;
	}
	size = file_size(inode);
	/* Nothing lives past the size, so only [off, min(end, size)) has
	 * anything to free. */
	ret = range_zero(inode->sf, off, end < size ? end : size);
	if (ret)
		goto unlock;
	if (!punch && !(mode & FALLOC_FL_KEEP_SIZE) && end > size)
		file_set_size(inode, end, true);
	else
		file_set_size(inode, size, true); /* times only */
unlock:
	pthread_rwlock_unlock(&inode->io_lock);
	return ret;
}

int pf_file_seek(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		 int whence, uint64_t *pos)
{
	uint64_t size, page, p;
	int ret;

	(void)fs;
	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	pthread_rwlock_rdlock(&inode->io_lock);
	size = file_size(inode);
	if (off >= size) {
		ret = -ENXIO;
		goto unlock;
	}
	page = off / PF_PAGE;
	if (whence == SEEK_DATA) {
		ret = inode->sf ? store_seek_data(inode->sf, page, &p) : -ENXIO;
		if (ret)
			goto unlock;
		p = p * PF_PAGE;
		if (p < off)
			p = off;
		if (p >= size) {
			ret = -ENXIO;
			goto unlock;
		}
	} else {
		if (inode->sf) {
			ret = store_seek_hole(inode->sf, page, &p);
			if (ret)
				goto unlock;
		} else {
			p = page;
		}
		p = p * PF_PAGE;
		if (p < off)
			p = off;
		if (p > size)
			p = size;
	}
	*pos = p;
	ret = 0;
unlock:
	pthread_rwlock_unlock(&inode->io_lock);
	return ret;
}

/*
 * st_blocks: what the file really holds, in 512-byte units - its compressed
 * bytes. A file whose pages are all same-filled holds no compressed bytes
 * but is not empty: it gets one block, so that tools taking st_blocks == 0
 * for "all holes" do not skip its data.
 */
uint64_t pf_file_blocks(struct pf_inode *inode)
{
	struct store_file_stats fst;
	uint64_t blocks = 0;

	pthread_rwlock_rdlock(&inode->io_lock);
	if (inode->sf) {
		store_file_get_counts(inode->sf, &fst);
		blocks = (fst.compr_bytes + 511) / 512;
		if (!blocks && fst.pages)
			blocks = 1;
	}
	pthread_rwlock_unlock(&inode->io_lock);
	return blocks;
}
