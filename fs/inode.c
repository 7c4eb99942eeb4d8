// SPDX-License-Identifier: MIT
/*
 * inode.c - the inode table, directories and names.
 *
 * lock ordering: fs->ns_lock, then an inode's io_lock (taken for writing
 * only to detach the store file of an inode that just lost its last name
 * and its last open handle), then an inode's attr_lock.
 *
 * The namespace is small next to the data, and only metadata operations
 * touch it, so one mutex guards every name, link and reference count.
 * The data path (file.c) never takes it.
 *
 * A regular file's pages are freed as soon as it has no name and no open
 * handle (unlink of a closed file, or the last release of an unlinked one);
 * the inode itself lives until the kernel forgets it as well.
 *
 * Memory: inodes, names, symlink targets and the directories' hash tables
 * come from the store (store_mem_alloc()): counted in mem_used_total and
 * given back to the OS when freed, which malloc cannot do under the
 * daemon's mlockall(). Those made before the store exists (the root,
 * /.ctl and its files, never freed until the end) come from malloc;
 * ns_free() tells them apart.
 */
#include <errno.h>
#include <stdio.h>	/* RENAME_NOREPLACE, RENAME_EXCHANGE */
#include <stdlib.h>
#include <string.h>

/* uthash's tables too (every HASH_ADD or HASH_DELETE has fs in scope). */
#define uthash_malloc(sz)	ns_alloc(fs, (sz), false, NULL)
#define uthash_free(ptr, sz)	ns_free(fs, (ptr))

#include "bug.h"
#include "pf.h"

#define PF_NAME_MAX 255

#ifdef PF_DEBUG
static bool pf_fs_check_locked(struct pf_fs *fs, const char **why);
#endif

/* Zeroed memory for the namespace; limited: -ENOSPC at the memory limit
 * (creating a name), else only -ENOMEM (err may be NULL). */
static void *ns_alloc(struct pf_fs *fs, size_t size, bool limited, int *err)
{
	void *p;

	if (fs->st)
		return store_mem_alloc(fs->st, size, limited, err);
	p = calloc(1, size);
	if (!p && err)
		*err = -ENOMEM;
	return p;
}

static void ns_free(struct pf_fs *fs, void *p)
{
	store_mem_free(fs->st, p);
}

static char *ns_strdup(struct pf_fs *fs, const char *s, bool limited,
		       int *err)
{
	size_t n = strlen(s) + 1;
	char *d = ns_alloc(fs, n, limited, err);

	if (d)
		memcpy(d, s, n);
	return d;
}

static void now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

static bool inode_is_static(struct pf_fs *fs, struct pf_inode *inode)
{
	return inode == fs->root || inode->kind == PF_CTLDIR ||
	       inode->kind == PF_CTL;
}

/* NULL with -ENOSPC (memory limit) or -ENOMEM in *err. */
static struct pf_inode *inode_new(struct pf_fs *fs, enum pf_kind kind,
				  mode_t mode, uid_t uid, gid_t gid, int *err)
{
	struct pf_inode *inode = ns_alloc(fs, sizeof(*inode), true, err);
	pthread_rwlockattr_t rwa;

	if (!inode)
		return NULL;
	inode->magic = PF_INODE_MAGIC;
	inode->kind = kind;
	inode->ino = fs->next_ino++;
	inode->generation = inode->ino;
	inode->mode = mode;
	inode->uid = uid;
	inode->gid = gid;
	now(&inode->mtime);
	inode->atime = inode->ctime = inode->mtime;
	pthread_mutex_init(&inode->attr_lock, NULL);
	/* Writers (truncate, partial pages) must not starve behind a steady
	 * stream of full-page I/O. */
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(&rwa,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&inode->io_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	return inode;
}

static void inode_free(struct pf_fs *fs, struct pf_inode *inode)
{
	if (!inode)
		return;
	pthread_mutex_destroy(&inode->attr_lock);
	pthread_rwlock_destroy(&inode->io_lock);
	inode->magic = 0;
	ns_free(fs, inode->name);
	ns_free(fs, inode->target);
	ns_free(fs, inode);
}

static void all_add(struct pf_fs *fs, struct pf_inode *inode)
{
	inode->all_next = fs->all;
	inode->all_prev = NULL;
	if (fs->all)
		fs->all->all_prev = inode;
	fs->all = inode;
	fs->ninodes++;
}

static void all_del(struct pf_fs *fs, struct pf_inode *inode)
{
	if (inode->all_prev)
		inode->all_prev->all_next = inode->all_next;
	else
		fs->all = inode->all_next;
	if (inode->all_next)
		inode->all_next->all_prev = inode->all_prev;
	fs->ninodes--;
}

static void child_add(struct pf_fs *fs, struct pf_inode *dir,
		      struct pf_inode *child)
{
	child->parent = dir;
	HASH_ADD_KEYPTR(hh, dir->children, child->name, strlen(child->name),
			child);
	dir->nchildren++;
	if (child->kind == PF_DIR || child->kind == PF_CTLDIR)
		dir->nlink++;
}

static void child_del(struct pf_fs *fs, struct pf_inode *dir,
		      struct pf_inode *child)
{
	HASH_DELETE(hh, dir->children, child);
	dir->nchildren--;
	if (child->kind == PF_DIR || child->kind == PF_CTLDIR)
		dir->nlink--;
	child->parent = NULL;
}

static struct pf_inode *child_find(struct pf_inode *dir, const char *name)
{
	struct pf_inode *child = NULL;

	HASH_FIND_STR(dir->children, name, child);
	return child;
}

/* What has to be released once ns_lock is dropped. */
struct doomed {
	struct store_file *sf;
	struct pf_inode *inode;
};

/* Called with ns_lock held after a reference count or link count fell. */
static void inode_maybe_release(struct pf_fs *fs, struct pf_inode *inode,
				struct doomed *d)
{
	if (inode_is_static(fs, inode) || inode->nlink || inode->nopen)
		return;
	if (inode->kind == PF_REG && inode->sf) {
		pthread_rwlock_wrlock(&inode->io_lock);
		d->sf = inode->sf;
		inode->sf = NULL;
		pthread_rwlock_unlock(&inode->io_lock);
	}
	if (inode->nlookup == 0) {
		all_del(fs, inode);
		d->inode = inode;
	}
}

static void doomed_release(struct pf_fs *fs, struct doomed *d)
{
	store_file_destroy(d->sf);
	inode_free(fs, d->inode);
}

void pf_inode_touch(struct pf_inode *inode, bool mtime, bool ctime)
{
	struct timespec ts;

	now(&ts);
	pthread_mutex_lock(&inode->attr_lock);
	if (mtime)
		inode->mtime = ts;
	if (ctime)
		inode->ctime = ts;
	pthread_mutex_unlock(&inode->attr_lock);
}

struct pf_fs *pf_fs_create(uid_t owner_uid, gid_t owner_gid)
{
	struct pf_fs *fs = calloc(1, sizeof(*fs));
	struct pf_inode *inode;

	if (!fs)
		return NULL;
	fs->owner_uid = owner_uid;
	fs->owner_gid = owner_gid;
	fs->next_ino = FUSE_ROOT_ID;
	pthread_mutex_init(&fs->ns_lock, NULL);

	fs->root = inode_new(fs, PF_DIR, S_IFDIR | 0755, owner_uid, owner_gid,
			     NULL);
	if (!fs->root)
		goto free_fs;
	fs->root->nlink = 2;

	fs->ctl_dir = inode_new(fs, PF_CTLDIR, S_IFDIR | 0555, owner_uid,
				owner_gid, NULL);
	if (!fs->ctl_dir)
		goto free_tree;
	fs->ctl_dir->nlink = 2;
	fs->ctl_dir->name = ns_strdup(fs, ".ctl", false, NULL);
	if (!fs->ctl_dir->name) {
		inode_free(fs, fs->ctl_dir);
		fs->ctl_dir = NULL;
		goto free_tree;
	}
	child_add(fs, fs->root, fs->ctl_dir);

	for (unsigned int i = 0; i < ctl_nfiles; i++) {
		inode = inode_new(fs, PF_CTL, S_IFREG | ctl_files[i].mode,
				  owner_uid, owner_gid, NULL);
		if (!inode)
			goto free_tree;
		inode->ctl = &ctl_files[i];
		inode->nlink = 1;
		inode->name = ns_strdup(fs, ctl_files[i].name, false, NULL);
		if (!inode->name) {
			inode_free(fs, inode);
			goto free_tree;
		}
		child_add(fs, fs->ctl_dir, inode);
	}
	return fs;

free_tree:
	pf_fs_destroy(fs);
	return NULL;
free_fs:
	pthread_mutex_destroy(&fs->ns_lock);
	free(fs);
	return NULL;
}

void pf_fs_destroy(struct pf_fs *fs)
{
	struct pf_inode *inode, *next, *tmp;

	if (!fs)
		return;
	/* Drop every directory's table before freeing what it points to. */
	for (inode = fs->all; inode; inode = inode->all_next)
		HASH_CLEAR(hh, inode->children);
	if (fs->ctl_dir) {
		HASH_ITER(hh, fs->ctl_dir->children, inode, tmp) {
			HASH_DELETE(hh, fs->ctl_dir->children, inode);
			inode_free(fs, inode);
		}
	}
	if (fs->root)
		HASH_CLEAR(hh, fs->root->children);
	/* Every inode but the static ones is on the all list. */
	for (inode = fs->all; inode; inode = next) {
		next = inode->all_next;
		if (inode->kind == PF_REG)
			store_file_destroy(inode->sf);
		inode_free(fs, inode);
	}
	inode_free(fs, fs->ctl_dir);
	inode_free(fs, fs->root);
	pthread_mutex_destroy(&fs->ns_lock);
	free(fs);
}

struct pf_inode *pf_fs_inode(struct pf_fs *fs, fuse_ino_t nodeid)
{
	struct pf_inode *inode;

	if (nodeid == FUSE_ROOT_ID)
		return fs->root;
	inode = (struct pf_inode *)(uintptr_t)nodeid;
#ifdef PF_DEBUG
	BUG_ON(inode->magic != PF_INODE_MAGIC, "stale node id %#lx",
	       (unsigned long)nodeid);
#endif
	return inode;
}

fuse_ino_t pf_inode_nodeid(struct pf_fs *fs, struct pf_inode *inode)
{
	if (inode == fs->root)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)(uintptr_t)inode;
}

void pf_inode_stat(struct pf_fs *fs, struct pf_inode *inode, struct stat *stbuf)
{
	uint32_t nlink;

	pthread_mutex_lock(&fs->ns_lock);
	nlink = inode->nlink;
	pthread_mutex_unlock(&fs->ns_lock);

	memset(stbuf, 0, sizeof(*stbuf));
	stbuf->st_ino = inode->ino;
	stbuf->st_nlink = nlink;
	stbuf->st_blksize = PF_MAX_IO;
	if (inode->kind == PF_REG)
		stbuf->st_blocks = (blkcnt_t)pf_file_blocks(inode);
	pthread_mutex_lock(&inode->attr_lock);
	stbuf->st_mode = inode->mode;
	stbuf->st_uid = inode->uid;
	stbuf->st_gid = inode->gid;
	switch (inode->kind) {
	case PF_REG:
	case PF_LNK:
		stbuf->st_size = (off_t)inode->size;
		break;
	case PF_DIR:
	case PF_CTLDIR:
		stbuf->st_size = PF_PAGE;
		break;
	case PF_CTL:
		stbuf->st_size = 0; /* generated at open, like procfs */
		break;
	}
	stbuf->st_atim = inode->atime;
	stbuf->st_mtim = inode->mtime;
	stbuf->st_ctim = inode->ctime;
	pthread_mutex_unlock(&inode->attr_lock);
}

int pf_ns_lookup(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 struct pf_inode **out)
{
	struct pf_inode *child;
	int ret = 0;

	pthread_mutex_lock(&fs->ns_lock);
	if (dir->kind != PF_DIR && dir->kind != PF_CTLDIR) {
		ret = -ENOTDIR;
		goto unlock;
	}
	child = child_find(dir, name);
	if (!child) {
		ret = strlen(name) > PF_NAME_MAX ? -ENAMETOOLONG : -ENOENT;
		goto unlock;
	}
	child->nlookup++;
	*out = child;
unlock:
	pthread_mutex_unlock(&fs->ns_lock);
	return ret;
}

/* May entries be added to or removed from dir? /.ctl is fixed (EPERM);
 * anything but a directory is ENOTDIR. Called under ns_lock. */
static int dir_may_change(const struct pf_inode *dir)
{
	if (dir->kind == PF_CTLDIR)
		return -EPERM;
	return dir->kind == PF_DIR ? 0 : -ENOTDIR;
}

int pf_ns_create(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 mode_t mode, uid_t uid, gid_t gid, const char *target,
		 struct pf_inode **out)
{
	struct store_file *sf = NULL;
	struct pf_inode *inode;
	enum pf_kind kind;
	char *dup_name, *dup_target = NULL;
	int ret;

	if (S_ISDIR(mode))
		kind = PF_DIR;
	else if (S_ISREG(mode))
		kind = PF_REG;
	else if (S_ISLNK(mode))
		kind = PF_LNK;
	else
		return -EPERM; /* no devices, fifos or sockets */
	if (strlen(name) > PF_NAME_MAX)
		return -ENAMETOOLONG;

	dup_name = ns_strdup(fs, name, true, &ret);
	if (!dup_name)
		return ret;
	if (target) {
		dup_target = ns_strdup(fs, target, true, &ret);
		if (!dup_target)
			goto free_names;
	}
	if (kind == PF_REG) {
		sf = store_file_create(fs->st);
		if (!sf) {
			struct store_stats ss;

			store_get_stats(fs->st, &ss);
			ret = ss.mem_limit ? -ENOSPC : -ENOMEM;
			goto free_names;
		}
	}

	pthread_mutex_lock(&fs->ns_lock);
	ret = dir_may_change(dir);
	/* A file that is not in /.ctl is a control file that does not
	 * exist: echo to a misspelt name says so, as sysfs users expect. */
	if (ret == -EPERM && kind == PF_REG)
		ret = -ENOENT;
	if (ret)
		goto unlock;
	if (dir->nlink == 0) {
		ret = -ENOENT; /* removed while we looked */
		goto unlock;
	}
	if (child_find(dir, name)) {
		ret = -EEXIST;
		goto unlock;
	}
	inode = inode_new(fs, kind, mode, uid, gid, &ret);
	if (!inode)
		goto unlock;
	inode->name = dup_name;
	inode->target = dup_target;
	inode->sf = sf;
	if (target)
		inode->size = strlen(target);
	inode->nlink = kind == PF_DIR ? 2 : 1;
	inode->nlookup = 1;
	child_add(fs, dir, inode);
	all_add(fs, inode);
	pf_inode_touch(dir, true, true);
	DEBUG_CHECK(pf_fs_check_locked, fs);
	pthread_mutex_unlock(&fs->ns_lock);
	*out = inode;
	return 0;

unlock:
	pthread_mutex_unlock(&fs->ns_lock);
	store_file_destroy(sf);
free_names:
	ns_free(fs, dup_target);
	ns_free(fs, dup_name);
	return ret;
}

/* Checks shared by remove and rename for a victim about to lose its name. */
static int victim_check(struct pf_inode *victim, bool want_dir)
{
	bool is_dir = victim->kind == PF_DIR || victim->kind == PF_CTLDIR;

	if (victim->kind == PF_CTLDIR || victim->kind == PF_CTL)
		return -EPERM;
	if (want_dir && !is_dir)
		return -ENOTDIR;
	if (!want_dir && is_dir)
		return -EISDIR;
	if (is_dir && victim->nchildren)
		return -ENOTEMPTY;
	return 0;
}

static void victim_unlink(struct pf_fs *fs, struct pf_inode *dir,
			  struct pf_inode *victim)
{
	child_del(fs, dir, victim);
	victim->nlink = 0;
	pf_inode_touch(victim, false, true);
}

int pf_ns_remove(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 bool want_dir)
{
	struct doomed d = { 0 };
	struct pf_inode *victim;
	int ret;

	pthread_mutex_lock(&fs->ns_lock);
	ret = dir_may_change(dir);
	if (ret)
		goto unlock;
	victim = child_find(dir, name);
	if (!victim) {
		ret = -ENOENT;
		goto unlock;
	}
	ret = victim_check(victim, want_dir);
	if (ret)
		goto unlock;
	victim_unlink(fs, dir, victim);
	pf_inode_touch(dir, true, true);
	inode_maybe_release(fs, victim, &d);
	DEBUG_CHECK(pf_fs_check_locked, fs);
unlock:
	pthread_mutex_unlock(&fs->ns_lock);
	doomed_release(fs, &d);
	return ret;
}

static bool is_dir_kind(struct pf_inode *inode)
{
	return inode->kind == PF_DIR || inode->kind == PF_CTLDIR;
}

/* Is dir the same as, or below, top? */
static bool dir_is_under(struct pf_inode *dir, struct pf_inode *top)
{
	for (; dir; dir = dir->parent)
		if (dir == top)
			return true;
	return false;
}

int pf_ns_rename(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 struct pf_inode *newdir, const char *newname, unsigned int flags)
{
	struct doomed d = { 0 };
	struct pf_inode *src, *dst;
	char *src_name = NULL, *dst_name = NULL;
	int ret = 0;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (strlen(newname) > PF_NAME_MAX)
		return -ENAMETOOLONG;

	pthread_mutex_lock(&fs->ns_lock);
	if (dir->kind == PF_CTLDIR || newdir->kind == PF_CTLDIR) {
		ret = -EPERM;
		goto unlock;
	}
	if (dir->kind != PF_DIR || newdir->kind != PF_DIR) {
		ret = -ENOTDIR;
		goto unlock;
	}
	src = child_find(dir, name);
	if (!src) {
		ret = -ENOENT;
		goto unlock;
	}
	if (src->kind == PF_CTLDIR) {
		ret = -EPERM;
		goto unlock;
	}
	dst = child_find(newdir, newname);
	if (dst && dst->kind == PF_CTLDIR) {
		ret = -EPERM;
		goto unlock;
	}
	if (src == dst)
		goto unlock; /* same inode: nothing to do */
	if (is_dir_kind(src) && dir_is_under(newdir, src)) {
		ret = -EINVAL;
		goto unlock;
	}

	if (flags & RENAME_EXCHANGE) {
		if (!dst) {
			ret = -ENOENT;
			goto unlock;
		}
		if (is_dir_kind(dst) && dir_is_under(dir, dst)) {
			ret = -EINVAL;
			goto unlock;
		}
		src_name = ns_strdup(fs, newname, false, NULL);
		dst_name = ns_strdup(fs, name, false, NULL);
		if (!src_name || !dst_name) {
			ret = -ENOMEM;
			goto unlock;
		}
		child_del(fs, dir, src);
		child_del(fs, newdir, dst);
		ns_free(fs, src->name);
		ns_free(fs, dst->name);
		src->name = src_name;
		dst->name = dst_name;
		src_name = dst_name = NULL;
		child_add(fs, newdir, src);
		child_add(fs, dir, dst);
		pf_inode_touch(dst, false, true);
	} else {
		if (dst) {
			if (flags & RENAME_NOREPLACE) {
				ret = -EEXIST;
				goto unlock;
			}
			ret = victim_check(dst, is_dir_kind(src));
			if (ret)
				goto unlock;
		}
		src_name = ns_strdup(fs, newname, false, NULL);
		if (!src_name) {
			ret = -ENOMEM;
			goto unlock;
		}
		if (dst) {
			victim_unlink(fs, newdir, dst);
			inode_maybe_release(fs, dst, &d);
		}
		child_del(fs, dir, src);
		ns_free(fs, src->name);
		src->name = src_name;
		src_name = NULL;
		child_add(fs, newdir, src);
	}
	pf_inode_touch(src, false, true);
	pf_inode_touch(dir, true, true);
	if (newdir != dir)
		pf_inode_touch(newdir, true, true);
	DEBUG_CHECK(pf_fs_check_locked, fs);
unlock:
	pthread_mutex_unlock(&fs->ns_lock);
	ns_free(fs, src_name);
	ns_free(fs, dst_name);
	doomed_release(fs, &d);
	return ret;
}

void pf_ns_forget(struct pf_fs *fs, struct pf_inode *inode, uint64_t n)
{
	struct doomed d = { 0 };

	pthread_mutex_lock(&fs->ns_lock);
	inode->nlookup = inode->nlookup > n ? inode->nlookup - n : 0;
	inode_maybe_release(fs, inode, &d);
	DEBUG_CHECK(pf_fs_check_locked, fs);
	pthread_mutex_unlock(&fs->ns_lock);
	doomed_release(fs, &d);
}

void pf_ns_open(struct pf_fs *fs, struct pf_inode *inode)
{
	pthread_mutex_lock(&fs->ns_lock);
	inode->nopen++;
	pthread_mutex_unlock(&fs->ns_lock);
}

void pf_ns_release(struct pf_fs *fs, struct pf_inode *inode)
{
	struct doomed d = { 0 };

	pthread_mutex_lock(&fs->ns_lock);
	if (inode->nopen)
		inode->nopen--;
	inode_maybe_release(fs, inode, &d);
	DEBUG_CHECK(pf_fs_check_locked, fs);
	pthread_mutex_unlock(&fs->ns_lock);
	doomed_release(fs, &d);
}

static mode_t inode_type(struct pf_inode *inode)
{
	switch (inode->kind) {
	case PF_DIR:
	case PF_CTLDIR:
		return S_IFDIR;
	case PF_LNK:
		return S_IFLNK;
	default:
		return S_IFREG;
	}
}

/*
 * One allocation holds the entries and, after them, their names: a
 * directory of many files is one block, which malloc maps on its own
 * (above the mmap threshold main() sets) and unmaps when the listing is
 * closed, instead of as many small blocks left behind in a worker's arena.
 */
int pf_dir_list(struct pf_fs *fs, struct pf_inode *dir, struct pf_dirlist *dl)
{
	struct pf_inode *child, *tmp;
	size_t i = 0, names = sizeof(".") + sizeof("..");
	char *name;
	int ret = 0;

	dl->n = 0;
	dl->ents = NULL;
	pthread_mutex_lock(&fs->ns_lock);
	if (!is_dir_kind(dir)) {
		ret = -ENOTDIR;
		goto unlock;
	}
	HASH_ITER(hh, dir->children, child, tmp)
		names += strlen(child->name) + 1;
	dl->ents = malloc((dir->nchildren + 2) * sizeof(dl->ents[0]) + names);
	if (!dl->ents) {
		ret = -ENOMEM;
		goto unlock;
	}
	name = (char *)(dl->ents + dir->nchildren + 2);
#define ADD_ENT(ino_, type_, name_) do {				\
		size_t len_ = strlen(name_) + 1;			\
		dl->ents[i].ino = (ino_);				\
		dl->ents[i].type = (type_);				\
		dl->ents[i++].name = memcpy(name, (name_), len_);	\
		name += len_;						\
	} while (0)
	ADD_ENT(dir->ino, S_IFDIR, ".");
	ADD_ENT(dir->parent ? dir->parent->ino : dir->ino, S_IFDIR, "..");
	HASH_ITER(hh, dir->children, child, tmp)
		ADD_ENT(child->ino, inode_type(child), child->name);
#undef ADD_ENT
	dl->n = i;
unlock:
	pthread_mutex_unlock(&fs->ns_lock);
	return ret;
}

void pf_dirlist_free(struct pf_dirlist *dl)
{
	free(dl->ents);	/* the names with it */
	dl->ents = NULL;
	dl->n = 0;
}

/* Path of a linked inode, from the root. */
static void inode_path(struct pf_fs *fs, struct pf_inode *inode, struct strbuf *sb)
{
	const char *names[256];
	size_t n = 0;

	for (; inode && inode != fs->root && n < 256; inode = inode->parent)
		names[n++] = inode->name;
	while (n--)
		strbuf_printf(sb, "/%s", names[n]);
}

int pf_fs_for_each_file(struct pf_fs *fs, pf_file_visit_fn *visit, void *ctx)
{
	struct store_file_stats fst;
	struct pf_inode *inode, *last = NULL;
	struct strbuf path;
	uint64_t size;
	int ret = 0;

	strbuf_init(&path);
	pthread_mutex_lock(&fs->ns_lock);
	/* The list is newest first; visit oldest first. */
	for (inode = fs->all; inode; inode = inode->all_next)
		last = inode;
	for (inode = last; inode; inode = inode->all_prev) {
		if (inode->kind != PF_REG || !inode->sf)
			continue;
		path.len = 0;
		if (inode->nlink)
			inode_path(fs, inode, &path);
		else
			strbuf_printf(&path, "%s", inode->name);
		if (path.err) {
			ret = path.err;
			break;
		}
		store_file_get_stats(inode->sf, &fst);
		pthread_mutex_lock(&inode->attr_lock);
		size = inode->size;
		pthread_mutex_unlock(&inode->attr_lock);
		ret = visit(ctx, path.buf, inode->nlink == 0, size, &fst);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&fs->ns_lock);
	strbuf_release(&path);
	return ret;
}

/* ---- invariants ---- */

static bool check_dir(struct pf_fs *fs, struct pf_inode *dir, uint64_t *seen,
		      const char **why)
{
	struct pf_inode *child, *tmp;
	uint64_t n = 0, subdirs = 0;

	HASH_ITER(hh, dir->children, child, tmp) {
		if (child->magic != PF_INODE_MAGIC) {
			*why = "bad magic in a directory entry";
			return false;
		}
		if (child->parent != dir) {
			*why = "child's parent is not its directory";
			return false;
		}
		if (child->nlink == 0) {
			*why = "linked inode with nlink 0";
			return false;
		}
		n++;
		if (is_dir_kind(child)) {
			subdirs++;
			if (!check_dir(fs, child, seen, why))
				return false;
		}
		if (!inode_is_static(fs, child))
			(*seen)++;
		if (child->kind == PF_REG && !child->sf) {
			*why = "linked regular file without a store file";
			return false;
		}
	}
	if (n != dir->nchildren) {
		*why = "nchildren != number of entries";
		return false;
	}
	if (dir->nlink != 2 + subdirs) {
		*why = "directory nlink != 2 + subdirectories";
		return false;
	}
	return true;
}

static bool pf_fs_check_locked(struct pf_fs *fs, const char **why)
{
	struct pf_inode *inode;
	uint64_t linked = 0, n = 0;

	if (!check_dir(fs, fs->root, &linked, why))
		return false;
	for (inode = fs->all; inode; inode = inode->all_next) {
		n++;
		if (inode->magic != PF_INODE_MAGIC) {
			*why = "bad magic on the inode list";
			return false;
		}
		if (inode->nlink == 0) {
			if (inode->parent) {
				*why = "unlinked inode with a parent";
				return false;
			}
			if (!inode->nlookup && !inode->nopen) {
				*why = "unreferenced inode not freed";
				return false;
			}
			if (inode->kind == PF_REG && !inode->nopen && inode->sf) {
				*why = "closed unlinked file still holds pages";
				return false;
			}
		} else if (!inode->parent) {
			*why = "linked inode without a parent";
			return false;
		}
	}
	if (n != fs->ninodes) {
		*why = "ninodes != length of the inode list";
		return false;
	}
	if (linked > n) {
		*why = "more linked inodes than inodes";
		return false;
	}
	return true;
}

bool pf_fs_is_valid(struct pf_fs *fs, const char **why)
{
	bool ok;

	pthread_mutex_lock(&fs->ns_lock);
	ok = pf_fs_check_locked(fs, why);
	pthread_mutex_unlock(&fs->ns_lock);
	return ok;
}
