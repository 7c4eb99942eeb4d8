// SPDX-License-Identifier: MIT
/*
 * ops.c - the low-level FUSE operations.
 *
 * Every operation ends in exactly one fuse_reply_* call; errors from the
 * layers below (0 or -errno) go through reply_err(), the one place they are
 * mapped to what the kernel is told. Work is done in inode.c (names),
 * file.c (bytes to pages) and ctl.c (control files).
 *
 * lock ordering: none taken here directly; see inode.c and file.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ops.h"
#include "pf.h"

/* Names only change through this kernel mount, so the kernel's dentries
 * stay right; attributes of regular files are never cached, so st_size and
 * st_blocks are always fresh. */
#define PF_ENTRY_TIMEOUT 60.0
#define PF_ATTR_TIMEOUT  1.0

_Thread_local void *pf_tls_scratch;
_Thread_local size_t pf_tls_scratch_size;

static struct pf_fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The one place a -errno becomes the kernel's error. */
static void reply_err(fuse_req_t req, int ret)
{
	int err = ret < 0 ? -ret : ret;

	/* ENOSYS would make the kernel stop sending the operation for good;
	 * anything outside errno space is a bug below us. */
	if (err == ENOSYS)
		err = EOPNOTSUPP;
	else if (err >= 4096)
		err = EIO;
	fuse_reply_err(req, err);
}

/* Count what an I/O error says about the request. */
static void count_io_error(struct pf_fs *fs, int ret)
{
	if (ret == -EFBIG || ret == -EINVAL)
		pf_counter_add(fs, PF_C_INVALID_IO, 1);
	else if (ret == -ENOSPC)
		pf_counter_add(fs, PF_C_ENOSPC, 1);
}

static double attr_timeout(struct pf_inode *inode)
{
	return inode->kind == PF_REG || inode->kind == PF_CTL ? 0.0 :
	       PF_ATTR_TIMEOUT;
}

static void fill_entry(struct pf_fs *fs, struct pf_inode *inode,
		       struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = pf_inode_nodeid(fs, inode);
	e->generation = inode->generation;
	pf_inode_stat(fs, inode, &e->attr);
	e->attr_timeout = attr_timeout(inode);
	e->entry_timeout = PF_ENTRY_TIMEOUT;
}

/* Reply with a new entry; if the kernel never gets it, drop the lookup
 * reference it would have held. */
static void reply_entry(fuse_req_t req, struct pf_fs *fs, struct pf_inode *inode)
{
	struct fuse_entry_param e;

	fill_entry(fs, inode, &e);
	if (fuse_reply_entry(req, &e))
		pf_ns_forget(fs, inode, 1);
}

static bool is_owner_or_root(struct pf_fs *fs, fuse_req_t req, uid_t owner)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	(void)fs;
	return ctx->uid == 0 || ctx->uid == owner;
}

static void pf_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Data goes through our buffers, never the page cache; suid bits are
	 * the kernel's to clear. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
			FUSE_CAP_SPLICE_MOVE | FUSE_CAP_WRITEBACK_CACHE |
			FUSE_CAP_HANDLE_KILLPRIV);
	/* 1 MiB requests: libfuse turns max_write into max_pages = 256. */
	conn->max_write = PF_MAX_IO;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
}

static void pf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode;
	int ret;

	ret = pf_ns_lookup(fs, pf_fs_inode(fs, parent), name, &inode);
	if (ret == -ENOENT) {
		/* A negative entry: the kernel may cache the miss. */
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.entry_timeout = PF_ENTRY_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_entry(req, fs, inode);
}

static void pf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct pf_fs *fs = req_fs(req);

	pf_ns_forget(fs, pf_fs_inode(fs, ino), nlookup);
	fuse_reply_none(req);
}

static void pf_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct pf_fs *fs = req_fs(req);

	for (size_t i = 0; i < count; i++)
		pf_ns_forget(fs, pf_fs_inode(fs, forgets[i].ino),
			     forgets[i].nlookup);
	fuse_reply_none(req);
}

static void pf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	struct stat st;

	(void)fi;
	pf_inode_stat(fs, inode, &st);
	fuse_reply_attr(req, &st, attr_timeout(inode));
}

static int setattr_check(struct pf_fs *fs, fuse_req_t req,
			 struct pf_inode *inode, struct stat *attr, int to_set)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	uid_t owner;

	if (inode->kind == PF_CTLDIR)
		return -EPERM;
	if (inode->kind == PF_CTL) {
		/* truncate(2) and ftruncate(2) included: a control file has
		 * no contents to cut. O_TRUNC (echo's >) never gets here:
		 * with FUSE_CAP_ATOMIC_O_TRUNC (pf_init) it comes with the
		 * open (ctl_open()). */
		return -EPERM;
	}
	pthread_mutex_lock(&inode->attr_lock);
	owner = inode->uid;
	pthread_mutex_unlock(&inode->attr_lock);
	if ((to_set & FUSE_SET_ATTR_MODE) && !is_owner_or_root(fs, req, owner))
		return -EPERM;
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != owner &&
	    ctx->uid != 0)
		return -EPERM;
	if ((to_set & FUSE_SET_ATTR_GID) && !is_owner_or_root(fs, req, owner))
		return -EPERM;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (inode->kind == PF_DIR)
			return -EISDIR;
		if (inode->kind != PF_REG)
			return -EINVAL;
		if (attr->st_size < 0)
			return -EINVAL;
	}
	return 0;
}

static void pf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	struct timespec ts;
	struct stat st;
	int ret;

	(void)fi;
	ret = setattr_check(fs, req, inode, attr, to_set);
	if (ret)
		goto out;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		ret = pf_file_truncate(fs, inode, (uint64_t)attr->st_size);
		if (ret) {
			count_io_error(fs, ret);
			goto out;
		}
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&inode->attr_lock);
	if (to_set & FUSE_SET_ATTR_MODE)
		inode->mode = (inode->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		inode->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		inode->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		inode->atime = ts;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		inode->atime = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		inode->mtime = ts;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		inode->mtime = attr->st_mtim;
	inode->ctime = ts;
	pthread_mutex_unlock(&inode->attr_lock);
	pf_inode_stat(fs, inode, &st);
	fuse_reply_attr(req, &st, attr_timeout(inode));
	return;
out:
	reply_err(req, ret);
}

/* The worker's preallocated buffer, or a heap one outside the workers. */
static void *scratch_get(size_t *size, bool *heap)
{
	*heap = false;
	if (pf_tls_scratch) {
		*size = pf_tls_scratch_size;
		return pf_tls_scratch;
	}
	*heap = true;
	*size = PF_MAX_IO + 2 * PF_PAGE;
	return aligned_alloc(PF_PAGE, *size);
}

static void pf_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);

	size_t size, len;
	bool heap;
	char *buf;

	if (inode->kind != PF_LNK) {
		reply_err(req, -EINVAL);
		return;
	}
	/* Reply from our own buffer: a forget handled by another worker
	 * may free the inode the moment the kernel has the answer. */
	len = strlen(inode->target);
	buf = scratch_get(&size, &heap);
	if (!buf || len >= size) {
		reply_err(req, buf ? -ENAMETOOLONG : -ENOMEM);
	} else {
		memcpy(buf, inode->target, len + 1);
		fuse_reply_readlink(req, buf);
	}
	if (heap)
		free(buf);
}

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, const char *target)
{
	struct pf_fs *fs = req_fs(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct pf_inode *inode;
	int ret;

	ret = pf_ns_create(fs, pf_fs_inode(fs, parent), name, mode, ctx->uid,
			   ctx->gid, target, &inode);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_entry(req, fs, inode);
}

static void pf_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)rdev;
	make_node(req, parent, name, mode, NULL);
}

static void pf_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

static void pf_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	make_node(req, parent, name, S_IFLNK | 0777, link);
}

static void pf_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pf_fs *fs = req_fs(req);

	reply_err(req, pf_ns_remove(fs, pf_fs_inode(fs, parent), name, false));
}

static void pf_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pf_fs *fs = req_fs(req);

	reply_err(req, pf_ns_remove(fs, pf_fs_inode(fs, parent), name, true));
}

static void pf_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct pf_fs *fs = req_fs(req);

	reply_err(req, pf_ns_rename(fs, pf_fs_inode(fs, parent), name,
				    pf_fs_inode(fs, newparent), newname, flags));
}

static void pf_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	reply_err(req, -EPERM); /* no hard links: a file has one path */
}

/*
 * An open /.ctl file: for reading, its contents, generated at open so `cat`
 * sees fresh values; for writing with O_TRUNC (the shell's >), whether a
 * value was written. The kernel sends no write for zero bytes, so an open
 * that truncates and is closed without a write is the empty value, which
 * is refused like any bad value: every close (flush) of it before a write
 * fails with EINVAL. Without O_TRUNC (>>), writing nothing changes nothing.
 */
struct ctl_handle {
	bool check_empty;     /* opened for writing with O_TRUNC */
	atomic_bool written;  /* a write came through this handle */
	size_t len;
	char data[];
};

static struct ctl_handle *ctl_handle_new(const char *data, size_t len)
{
	struct ctl_handle *h = malloc(sizeof(*h) + len);

	if (!h)
		return NULL;
	h->check_empty = false;
	atomic_init(&h->written, false);
	h->len = len;
	if (len)
		memcpy(h->data, data, len);
	return h;
}

static int ctl_open(struct pf_fs *fs, fuse_req_t req, struct pf_inode *inode,
		    struct fuse_file_info *fi)
{
	int acc = fi->flags & O_ACCMODE;
	mode_t mode = inode->ctl->mode;
	struct ctl_handle *h = NULL;
	struct strbuf sb;
	int ret;

	fi->fh = 0;
	if (acc != O_RDONLY &&
	    (!(mode & 0200) || !is_owner_or_root(fs, req, fs->owner_uid)))
		return -EACCES;
	if (acc != O_WRONLY) {
		if (!(mode & 0444))
			return -EACCES;
		strbuf_init(&sb);
		ret = pf_ctl_show(fs, inode->ctl, &sb);
		if (!ret) {
			h = ctl_handle_new(sb.buf, sb.len);
			ret = h ? 0 : -ENOMEM;
		}
		strbuf_release(&sb);
		if (ret)
			return ret;
	}
	if (acc != O_RDONLY && (fi->flags & O_TRUNC)) {
		if (!h)
			h = ctl_handle_new(NULL, 0);
		if (!h)
			return -ENOMEM;
		h->check_empty = true;
	}
	fi->fh = (uintptr_t)h;
	return 0;
}

static void pf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	int ret = 0;

	switch (inode->kind) {
	case PF_CTL:
		ret = ctl_open(fs, req, inode, fi);
		break;
	case PF_REG:
		if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY)
			ret = pf_file_truncate(fs, inode, 0);
		if (!ret)
			pf_ns_open(fs, inode);
		break;
	case PF_LNK:
		ret = -ELOOP;
		break;
	default:
		ret = -EISDIR;
		break;
	}
	if (ret) {
		reply_err(req, ret);
		return;
	}
	/* Direct I/O: the page cache never holds a second, uncompressed
	 * copy, and every read of a control file reaches us. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1;
	/* An empty value is refused at close (struct ctl_handle). */
	if (inode->kind == PF_CTL && fi->fh &&
	    ((struct ctl_handle *)(uintptr_t)fi->fh)->check_empty)
		fi->noflush = 0;
	if (fuse_reply_open(req, fi)) {
		/* The kernel never got the handle: no release will come. */
		if (inode->kind == PF_REG)
			pf_ns_release(fs, inode);
		else
			free((void *)(uintptr_t)fi->fh);
	}
}

static void pf_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct pf_inode *inode;
	int ret;

	ret = pf_ns_create(fs, pf_fs_inode(fs, parent), name,
			   S_IFREG | (mode & 07777), ctx->uid, ctx->gid, NULL,
			   &inode);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	pf_ns_open(fs, inode);
	fill_entry(fs, inode, &e);
	fi->fh = 0;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1;
	if (fuse_reply_create(req, &e, fi)) {
		pf_ns_release(fs, inode);
		pf_ns_forget(fs, inode, 1);
	}
}

static void pf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);

	if (inode->kind == PF_REG)
		pf_ns_release(fs, inode);
	else if (inode->kind == PF_CTL)
		free((void *)(uintptr_t)fi->fh);
	reply_err(req, 0);
}

static void pf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	size_t buf_size, skip, len;
	bool heap;
	void *buf;
	int ret;

	if (inode->kind == PF_CTL) {
		struct ctl_handle *h = (void *)(uintptr_t)fi->fh;

		/* Copied out: the release that frees h may be handled by
		 * another worker as soon as the reader has its bytes. */
		buf = scratch_get(&buf_size, &heap);
		if (!buf) {
			reply_err(req, -ENOMEM);
			return;
		}
		if (!h) {
			reply_err(req, -EBADF);
		} else if (off < 0) {
			reply_err(req, -EINVAL);
		} else if ((uint64_t)off >= h->len) {
			fuse_reply_buf(req, NULL, 0);
		} else {
			len = h->len - (size_t)off;
			if (len > size)
				len = size;
			if (len > buf_size)
				len = buf_size;
			memcpy(buf, h->data + off, len);
			fuse_reply_buf(req, buf, len);
		}
		if (heap)
			free(buf);
		return;
	}
	if (inode->kind != PF_REG) {
		reply_err(req, -EISDIR);
		return;
	}
	pf_counter_add(fs, PF_C_READ_REQS, 1);
	pf_counter_max(fs, PF_C_MAX_READ_REQ, size);
	if (off < 0) {
		count_io_error(fs, -EINVAL);
		reply_err(req, -EINVAL);
		return;
	}
	buf = scratch_get(&buf_size, &heap);
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	ret = pf_file_read(fs, inode, (uint64_t)off, size, buf, buf_size,
			   &skip, &len);
	if (ret) {
		count_io_error(fs, ret);
		reply_err(req, ret);
	} else {
		fuse_reply_buf(req, (char *)buf + skip, len);
	}
	if (heap)
		free(buf);
}

static void pf_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	size_t written;
	int ret;

	if (inode->kind == PF_CTL) {
		struct ctl_handle *h = (void *)(uintptr_t)fi->fh;

		/* A value came, good or bad: the close has nothing to add. */
		if (h)
			atomic_store(&h->written, true);
		ret = pf_ctl_write(fs, inode->ctl, buf, size);
		if (ret)
			reply_err(req, ret);
		else
			fuse_reply_write(req, size);
		return;
	}
	if (inode->kind != PF_REG) {
		reply_err(req, -EISDIR);
		return;
	}
	pf_counter_add(fs, PF_C_WRITE_REQS, 1);
	pf_counter_max(fs, PF_C_MAX_WRITE_REQ, size);
	ret = off < 0 ? -EINVAL :
	      pf_file_write(fs, inode, (uint64_t)off, buf, size, &written);
	if (ret) {
		count_io_error(fs, ret);
		reply_err(req, ret);
		/* After the reply: the warning may take a syslog call. */
		if (ret == -ENOSPC)
			pf_ctl_enospc_refused(fs);
		return;
	}
	fuse_reply_write(req, written);
	pf_ctl_enospc_written(fs); /* one relaxed load, unless refusing */
}

static void pf_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	struct ctl_handle *h = (void *)(uintptr_t)fi->fh;

	/* Only control files opened with O_TRUNC ask for a flush. */
	if (inode->kind == PF_CTL && h && h->check_empty &&
	    !atomic_load(&h->written)) {
		reply_err(req, -EINVAL); /* the empty value */
		return;
	}
	reply_err(req, 0);
}

static void pf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	reply_err(req, 0); /* memory is as durable as it gets */
}

static void pf_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_dirlist *dl = calloc(1, sizeof(*dl));
	int ret;

	if (!dl) {
		reply_err(req, -ENOMEM);
		return;
	}
	ret = pf_dir_list(fs, pf_fs_inode(fs, ino), dl);
	if (ret) {
		free(dl);
		reply_err(req, ret);
		return;
	}
	fi->fh = (uintptr_t)dl;
	if (fuse_reply_open(req, fi)) {
		pf_dirlist_free(dl);
		free(dl);
	}
}

static void pf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_dirlist *dl = (void *)(uintptr_t)fi->fh;
	size_t used = 0;
	char *buf;
	int ret;

	if (off == 0) {
		/* rewinddir: show the directory as it is now. */
		pf_dirlist_free(dl);
		ret = pf_dir_list(fs, pf_fs_inode(fs, ino), dl);
		if (ret) {
			reply_err(req, ret);
			return;
		}
	}
	buf = malloc(size);
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	for (size_t i = off < 0 ? 0 : (size_t)off; i < dl->n; i++) {
		struct stat st = {
			.st_ino = dl->ents[i].ino,
			.st_mode = dl->ents[i].type,
		};
		size_t n = fuse_add_direntry(req, buf + used, size - used,
					     dl->ents[i].name, &st,
					     (off_t)(i + 1));

		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pf_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct pf_dirlist *dl = (void *)(uintptr_t)fi->fh;

	(void)ino;
	pf_dirlist_free(dl);
	free(dl);
	reply_err(req, 0);
}

static void pf_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	reply_err(req, 0);
}

static void pf_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pf_fs *fs = req_fs(req);
	struct store_stats ss;
	struct statvfs sv;
	uint64_t limit, blocks, used;

	(void)ino;
	store_get_stats(fs->st, &ss);
	limit = ss.mem_limit;
	if (!limit)
		limit = (uint64_t)sysconf(_SC_PHYS_PAGES) *
			(uint64_t)sysconf(_SC_PAGESIZE);
	blocks = limit / PF_PAGE;
	used = (ss.mem_used_total + PF_PAGE - 1) / PF_PAGE;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = PF_PAGE;
	sv.f_frsize = PF_PAGE;
	sv.f_blocks = blocks;
	sv.f_bfree = blocks > used ? blocks - used : 0;
	sv.f_bavail = sv.f_bfree;
	pthread_mutex_lock(&fs->ns_lock);
	sv.f_files = fs->ninodes + UINT32_MAX;
	sv.f_ffree = UINT32_MAX;
	pthread_mutex_unlock(&fs->ns_lock);
	sv.f_favail = sv.f_ffree;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static void pf_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	int ret;

	(void)fi;
	if (inode->kind != PF_REG)
		ret = -EOPNOTSUPP;
	else if (off < 0 || len <= 0)
		ret = -EINVAL;
	else
		ret = pf_file_fallocate(fs, inode, mode, (uint64_t)off,
					(uint64_t)len);
	if (ret)
		count_io_error(fs, ret);
	reply_err(req, ret);
}

static void pf_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	struct pf_fs *fs = req_fs(req);
	struct pf_inode *inode = pf_fs_inode(fs, ino);
	uint64_t pos;
	int ret;

	(void)fi;
	if (inode->kind != PF_REG || off < 0)
		ret = -EINVAL;
	else
		ret = pf_file_seek(fs, inode, (uint64_t)off, whence, &pos);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fuse_reply_lseek(req, (off_t)pos);
}

const struct fuse_lowlevel_ops pf_ops = {
	.init = pf_init,
	.lookup = pf_lookup,
	.forget = pf_forget,
	.forget_multi = pf_forget_multi,
	.getattr = pf_getattr,
	.setattr = pf_setattr,
	.readlink = pf_readlink,
	.mknod = pf_mknod,
	.mkdir = pf_mkdir,
	.symlink = pf_symlink,
	.unlink = pf_unlink,
	.rmdir = pf_rmdir,
	.rename = pf_rename,
	.link = pf_link,
	.open = pf_open,
	.create = pf_create,
	.read = pf_read,
	.write = pf_write,
	.flush = pf_flush,
	.release = pf_release,
	.fsync = pf_fsync,
	.opendir = pf_opendir,
	.readdir = pf_readdir,
	.releasedir = pf_releasedir,
	.fsyncdir = pf_fsyncdir,
	.statfs = pf_statfs,
	.fallocate = pf_fallocate,
	.lseek = pf_lseek,
};
