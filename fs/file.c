// SPDX-License-Identifier: MIT
/*
 * file.c - byte ranges of regular files onto store pages.
 *
 * lock ordering: an inode's io_lock, then its attr_lock. fs->ns_lock is
 * never taken here.
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

int pf_file_read(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		 size_t size, void *buf, size_t buf_size, size_t *skip,
		 size_t *len)
{
	uint64_t fsize, first, last;
	unsigned char *out = buf;
	int ret = 0;

	*skip = 0;
	*len = 0;
	pthread_rwlock_rdlock(&inode->io_lock);
	fsize = file_size(inode);
	if (off >= fsize || size == 0 || !inode->sf)
		goto unlock;
	if (size > fsize - off)
		size = (size_t)(fsize - off);
	first = off / PF_PAGE;
	last = (off + size - 1) / PF_PAGE;
	if ((last - first + 1) * PF_PAGE > buf_size) {
		ret = -EINVAL; /* caller's buffer is sized for max_read */
		goto unlock;
	}
	for (uint64_t p = first; p <= last; p++) {
		ret = store_read(inode->sf, p, out + (p - first) * PF_PAGE);
		if (ret)
			goto unlock;
	}
	*skip = (size_t)(off & PF_PAGE_MASK);
	*len = size;
	pf_counter_add(fs, PF_C_READ_BYTES, size);
unlock:
	pthread_rwlock_unlock(&inode->io_lock);
	return ret;
}

int pf_file_write(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		  const void *buf, size_t size, size_t *written)
{
	unsigned char tmp[PF_PAGE] __attribute__((aligned(16)));
	const unsigned char *in = buf;
	uint64_t end = off + size, first, last;
	bool partial;
	size_t done = 0;
	int ret = 0;

	*written = 0;
	if (size == 0)
		return 0;
	if (off >= PF_MAX_SIZE || size > PF_MAX_SIZE - off)
		return -EFBIG;
	first = off / PF_PAGE;
	last = (end - 1) / PF_PAGE;
	partial = (off & PF_PAGE_MASK) || (end & PF_PAGE_MASK);

	if (partial)
		pthread_rwlock_wrlock(&inode->io_lock);
	else
		pthread_rwlock_rdlock(&inode->io_lock);
	if (!inode->sf) {
		ret = -EIO; /* cannot happen on an open file */
		goto unlock;
	}
	for (uint64_t p = first; p <= last; p++) {
		size_t poff = p == first ? (size_t)(off & PF_PAGE_MASK) : 0;
		size_t plen = PF_PAGE - poff;

		if (plen > size - done)
			plen = size - done;
		if (plen == PF_PAGE && !((uintptr_t)(in + done) & 7)) {
			ret = store_write(inode->sf, p, in + done);
		} else if (plen == PF_PAGE) {
			/* The store may read the page as 64-bit words. */
			memcpy(tmp, in + done, PF_PAGE);
			ret = store_write(inode->sf, p, tmp);
		} else {
			ret = store_read(inode->sf, p, tmp);
			if (!ret) {
				memcpy(tmp + poff, in + done, plen);
				ret = store_write(inode->sf, p, tmp);
			}
		}
		if (ret)
			break;
		done += plen;
	}
	if (done) {
		file_set_size(inode, off + done, true);
		pf_counter_add(fs, PF_C_WRITE_BYTES, done);
		ret = 0; /* a short write reports what was written */
	}
	*written = done;
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
		store_file_get_stats(inode->sf, &fst);
		blocks = (fst.compr_bytes + 511) / 512;
		if (!blocks && fst.pages)
			blocks = 1;
	}
	pthread_rwlock_unlock(&inode->io_lock);
	return blocks;
}
