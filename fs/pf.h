/* SPDX-License-Identifier: MIT */
/*
 * pf.h - what the files of fs/ share: the filesystem object, inodes, the
 * namespace functions (inode.c), the byte-range functions on files (file.c)
 * and the fs counters. Only fs/ includes it.
 *
 * Node ids: the kernel names an inode by the address of its struct pf_inode
 * (FUSE_ROOT_ID names the root), as libfuse's passthrough_ll does, so the
 * data path never looks anything up. st_ino is a separate counter.
 */
#ifndef PAGEFOLD_FS_PF_H
#define PAGEFOLD_FS_PF_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <uthash.h>

#include "store.h"
#include "ctl.h"
#include "fanout.h"

#define PF_PAGE      STORE_PAGE_SIZE
#define PF_PAGE_MASK ((uint64_t)STORE_PAGE_SIZE - 1)
/* Largest request we ask the kernel for (max_write; reads follow max_pages). */
#define PF_MAX_IO    (1024u * 1024u)
/* Largest file: what the store can address. */
#define PF_MAX_SIZE  (STORE_MAX_PAGES * STORE_PAGE_SIZE)

enum pf_kind {
	PF_DIR,
	PF_REG,
	PF_LNK,
	PF_CTLDIR, /* /.ctl */
	PF_CTL,    /* a file in /.ctl */
};

#define PF_INODE_MAGIC 0x70666e6fu /* "pfno" */

/*
 * An inode. Three locks guard it; take them in this order:
 *   fs->ns_lock  (names, links, reference counts, the children table)
 *   io_lock      (orders data operations on a regular file: full-page
 *                 writes and reads share it, partial-page writes, truncate
 *                 and fallocate hold it exclusively)
 *   attr_lock    (mode, owner, size, times)
 *
 * Invariants (checked by pf_fs_is_valid()):
 *   linked (parent != NULL) <=> nlink > 0, except the root (no parent,
 *                               nlink >= 2)
 *   dir:  nlink == 2 + number of child directories
 *         nchildren == HASH_COUNT(children)
 *   reg:  sf == NULL => nlink == 0 && nopen == 0   (pages freed early)
 *   freed exactly when nlink == 0 && nlookup == 0 && nopen == 0
 *   (the root and the /.ctl inodes are never freed)
 */
struct pf_inode {
	uint32_t magic;
	enum pf_kind kind;
	uint64_t ino;        /* st_ino, never reused */
	uint64_t generation;

	/* fs->ns_lock */
	uint64_t nlookup;    /* kernel references: lookups - forgets */
	uint32_t nopen;      /* open file handles */
	uint32_t nlink;
	struct pf_inode *parent;  /* NULL: root or unlinked */
	char *name;               /* name in parent; kept after unlink */
	UT_hash_handle hh;        /* in parent->children, keyed by name */
	struct pf_inode *children;
	uint64_t nchildren;
	struct pf_inode *all_prev, *all_next; /* fs->all */

	/* attr_lock */
	pthread_mutex_t attr_lock;
	mode_t mode;         /* includes the type bits */
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;

	/* regular files */
	pthread_rwlock_t io_lock;
	struct store_file *sf; /* ns_lock to change; stable while open */

	char *target;        /* symlinks */
	const struct ctl_file *ctl; /* PF_CTL: its row of ctl_files[] */
};

/* fs-level counters, read through pf_counter_read(). */
enum pf_counter {
	PF_C_INVALID_IO,     /* I/O requests refused as out of range */
	PF_C_READ_REQS,      /* read requests on regular files */
	PF_C_WRITE_REQS,     /* write requests on regular files */
	PF_C_READ_BYTES,     /* bytes returned by them */
	PF_C_WRITE_BYTES,    /* bytes accepted by them */
	PF_C_MAX_READ_REQ,   /* largest read request seen, bytes */
	PF_C_MAX_WRITE_REQ,  /* largest write request seen, bytes */
	PF_C_DISCARD_REQS,   /* punch-hole and zero-range requests */
	PF_C_ENOSPC,         /* requests failed with ENOSPC */
	PF_C_NR
};

struct pf_fs {
	struct store *st;
	uid_t owner_uid;     /* the mounting user: may write /.ctl */
	gid_t owner_gid;

	pthread_mutex_t ns_lock;
	struct pf_inode *root;
	struct pf_inode *ctl_dir;
	struct pf_inode *all;     /* every inode but the root and /.ctl ones */
	uint64_t ninodes;         /* ns_lock: length of all */
	uint64_t next_ino;        /* ns_lock */

	_Atomic uint64_t counters[PF_C_NR];

	/* What the swap-safety setup achieved (for /.ctl/stat). */
	bool mlocked;
	bool io_flusher;
	bool oom_protected;
	unsigned int threads;
	unsigned int spin_us;     /* 0 when the workers only sleep (recv.h) */

	/* Helpers that share the pages of large requests (fanout.h); NULL:
	 * every request runs in its worker alone. Set before the first
	 * request, destroyed after the last. */
	struct pf_fanout *fanout;
};

static inline void pf_counter_add(struct pf_fs *fs, enum pf_counter c, uint64_t v)
{
	atomic_fetch_add_explicit(&fs->counters[c], v, memory_order_relaxed);
}

static inline void pf_counter_max(struct pf_fs *fs, enum pf_counter c, uint64_t v)
{
	uint64_t old = atomic_load_explicit(&fs->counters[c], memory_order_relaxed);

	while (old < v && !atomic_compare_exchange_weak_explicit(&fs->counters[c],
			&old, v, memory_order_relaxed, memory_order_relaxed))
		;
}

static inline uint64_t pf_counter_read(struct pf_fs *fs, enum pf_counter c)
{
	return atomic_load_explicit(&fs->counters[c], memory_order_relaxed);
}

/* inode.c: the filesystem object and the namespace. */
struct pf_fs *pf_fs_create(uid_t owner_uid, gid_t owner_gid);
void pf_fs_destroy(struct pf_fs *fs);
bool pf_fs_is_valid(struct pf_fs *fs, const char **why);

struct pf_inode *pf_fs_inode(struct pf_fs *fs, fuse_ino_t nodeid);
fuse_ino_t pf_inode_nodeid(struct pf_fs *fs, struct pf_inode *inode);
void pf_inode_stat(struct pf_fs *fs, struct pf_inode *inode, struct stat *stbuf);
void pf_inode_touch(struct pf_inode *inode, bool mtime, bool ctime);

int pf_ns_lookup(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 struct pf_inode **out);
int pf_ns_create(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 mode_t mode, uid_t uid, gid_t gid, const char *target,
		 struct pf_inode **out);
int pf_ns_remove(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 bool want_dir);
int pf_ns_rename(struct pf_fs *fs, struct pf_inode *dir, const char *name,
		 struct pf_inode *newdir, const char *newname, unsigned int flags);
void pf_ns_forget(struct pf_fs *fs, struct pf_inode *inode, uint64_t n);
void pf_ns_open(struct pf_fs *fs, struct pf_inode *inode);
void pf_ns_release(struct pf_fs *fs, struct pf_inode *inode);

/* A snapshot of a directory for readdir. */
struct pf_dirent {
	uint64_t ino;
	mode_t type;
	char *name;
};
struct pf_dirlist {
	size_t n;
	struct pf_dirent *ents;
};
int pf_dir_list(struct pf_fs *fs, struct pf_inode *dir, struct pf_dirlist *dl);
void pf_dirlist_free(struct pf_dirlist *dl);

/* Visit every regular file holding a store, in creation order, with its
 * path from the root (a deleted one's name alone), size and store figures;
 * ns_lock is held across, so visit must not take it. Stops at the first
 * non-zero return of visit, and returns it (or -ENOMEM for a path). */
typedef int pf_file_visit_fn(void *ctx, const char *path, bool deleted,
			     uint64_t size, const struct store_file_stats *fst);
int pf_fs_for_each_file(struct pf_fs *fs, pf_file_visit_fn *visit, void *ctx);

/* file.c: byte ranges of regular files onto store pages. All return 0 or
 * -errno; the inode must be a regular file the caller holds open or
 * looked up. */
int pf_file_read(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		 size_t size, void *buf, size_t buf_size, size_t *skip,
		 size_t *len);
int pf_file_write(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		  const void *buf, size_t size, size_t *written);
int pf_file_truncate(struct pf_fs *fs, struct pf_inode *inode, uint64_t size);
int pf_file_fallocate(struct pf_fs *fs, struct pf_inode *inode, int mode,
		      uint64_t off, uint64_t len);
int pf_file_seek(struct pf_fs *fs, struct pf_inode *inode, uint64_t off,
		 int whence, uint64_t *pos);
uint64_t pf_file_blocks(struct pf_inode *inode);

#endif /* PAGEFOLD_FS_PF_H */
