/* SPDX-License-Identifier: MIT */
/*
 * store-int.h - the store's private structures, shared by the modules
 * that work on them: store.c (files, data path, settings, stats),
 * compact.c (compaction), recompress.c (idle tracking, recompression),
 * group.c (groups of idle pages) and backing.c (the disk tier). Nothing
 * outside store/ may include it; fs/ sees store.h only.
 *
 * What a reader holds, which the modules' safety arguments rest on, is
 * written at the head of store.c.
 */
#ifndef PAGEFOLD_STORE_INT_H
#define PAGEFOLD_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "backing.h"
#include "bg.h"
#include "cluster.h"
#include "ctr.h"
#include "fold.h"
#include "mem.h"
#include "pattern.h"
#include "pool.h"
#include "store.h"

/*
 * Store-wide counters, gauges and event counts alike, in CTR_STRIPES
 * stripes (ctr.h).
 */
enum store_ctr {
	SC_PAGES,		/* non-empty slots */
	SC_COMPR,		/* bytes of live objects (distinct) */
	SC_SAME,		/* SAME slots */
	SC_HUGE,		/* OBJ/FOLD slots stored raw */
	SC_HUGE_SINCE,		/* writes that stored a page raw */
	SC_FOLD_HITS,		/* writes/scans that found an equal page */
	SC_FOLD_SCAN_FREED,	/* objects freed by fold scans */
	SC_COMPACTED,		/* pool pages freed by compaction */
	SC_READS,
	SC_WRITES,
	SC_FAILED_READS,
	SC_FAILED_WRITES,
	SC_NOTIFY_FREE,
	SC_COLD,		/* slots marked COLD (gauge) */
	SC_RECOMP_TOTAL,	/* pages moved to the cold codec */
	SC_RECOMP_SAVED,	/* bytes those moves saved */
	SC_RECOMP_KEPT,		/* idle pages the cold codec did not shrink */
	SC_INTAKE_COLD,		/* pages written straight to the cold codec */
	SC_GROUP_PAGES,		/* GROUP slots (gauge) */
	SC_GROUPS,		/* live groups (gauge) */
	SC_GROUP_SAVED,		/* bytes grouping saved, ever */
	SC_NR
};

CTR_STRIPE(ctr_stripe, SC_NR);

/* Idle tracking and recompression (recompress.c). */
struct recompression {
	struct bg_thread t;
	_Atomic uint64_t after;		/* recompress_after, seconds; 0 = off */
	_Atomic unsigned int algo;	/* enum store_cold_algo << 8 | level */
	_Atomic unsigned int intake;	/* 0: LZ4; else INTAKE_COLD |
					   enum store_cold_algo << 8 | level */
	_Atomic bool read_idle;		/* a read marks the page idle */
	_Atomic unsigned int group;	/* pages per group; 1 = no groups */
	pthread_mutex_t walk_lock;	/* one walk at a time: two would only
					   race for the same pages */
	_Atomic uint64_t walk_bytes;	/* the running walk's buffers */
};

#define INTAKE_COLD (1u << 16)

/* The cold codec of an intake or algo word (codec << 8 | level). */
static inline enum store_cold_algo intake_algo(unsigned int spec)
{
	return (enum store_cold_algo)(spec >> 8 & 0xff);
}

#define MAX_CLUSTER ((STORE_MAX_PAGES - 1) >> CLUSTER_SHIFT)

/*
 * The file lock is a striped reader-writer lock ("big reader" lock): a
 * reader takes only the rwlock of its thread's counter stripe, so threads
 * working on one file do not bounce one lock word between cores on every
 * page; a writer (adding or removing a cluster, rare) takes every stripe in
 * order. Each stripe has its own cache line.
 */
struct file_lock_stripe {
	pthread_rwlock_t rw;
} __attribute__((aligned(CTR_LINE)));

/* Per-file counters, striped like the store's (summed on read). */
enum file_ctr {
	FC_PAGES,	/* non-empty slots */
	FC_SAME,	/* SAME slots */
	FC_HUGE,	/* OBJ/FOLD slots stored raw */
	FC_COMPR,	/* sum of the sizes in OBJ/FOLD slots */
	FC_NR
};

CTR_STRIPE(file_ctr_stripe, FC_NR);

/*
 * A file. Lock order: st->files_lock (only to link/unlink and iterate),
 * then the file lock (read for slot work, write to add/remove clusters),
 * then a cluster lock, then a fold shard lock or the pattern lock, then the
 * pool's own locks (inside pool calls).
 *
 * Invariants (with the file lock held for writing and no write in flight):
 *   end_page == index of the last non-empty slot + 1, or 0
 *   ctr[FC_*] summed == the counts over the file's slots
 *   dir.clusters == clusters in the tree, each with live > 0 (a cluster is
 *   emptied and unlinked under the write lock, never left behind)
 */
/*
 * A file's lock and counters in CTR_STRIPES stripes, for files that span
 * more than one cluster (a swap file at once); a smaller file gets by
 * with one stripe of each, in its record (1 KiB less per file: what a
 * tree of small files would otherwise pay per file).
 */
struct file_stripes {
	struct file_lock_stripe lock[CTR_STRIPES];
	struct file_ctr_stripe ctr[CTR_STRIPES];
};

/*
 * The file lock is lock0 while stripes is NULL, and the stripes' locks
 * once it is set (by a writer holding lock0, who takes every new stripe
 * before it publishes them and lets go of lock0 with them; stripes never
 * goes back to NULL). Counters added to ctr0 before then stay there:
 * reads sum ctr0 and the stripes.
 */
struct store_file {
	struct file_lock_stripe lock0;
	struct file_ctr_stripe ctr0;
	_Atomic(struct file_stripes *) stripes;
	bool lock0_held;		/* the write lock's holder also holds
					   lock0 (it published the stripes) */
	struct store *st;
	struct cdir dir;
	uint64_t id;			/* creation order, for iteration */
	struct store_file *prev, *next;	/* st->files list */
	_Atomic uint32_t refs;		/* list membership + iterators */
	/* raised by every write: a line of its own */
	_Atomic uint64_t end_page __attribute__((aligned(CTR_LINE)));
};

/*
 * Memory: mem_used_total == pool_mem_bytes(pool) + mem_meta + mem_fold +
 * mem_pat + mem_ns, where mem_meta counts the store record, file records,
 * clusters and directory nodes, and mem_ns the caller's records
 * (store_mem_alloc()). All but the store record come from the pool's
 * metadata heap, whose pages not in live objects pool_mem_bytes() counts.
 */
struct store {
	/* store_set_walk_hook(): tests only; called with no lock held */
	void (*walk_hook)(void *arg);
	void *walk_hook_arg;
	struct pool *pool;
	struct fold_index *fold;
	struct pattern_table *pat;
	struct meta_mem mem_meta;
	struct meta_mem mem_fold;
	struct meta_mem mem_pat;
	struct meta_mem mem_ns;		/* store_mem_alloc(): the caller's */
	_Atomic uint64_t mem_limit;	/* 0 = none */
	_Atomic uint64_t mem_used_max;
	_Atomic int fold_mode;
	_Atomic unsigned int defrag_ratio;
	unsigned int huge_threshold;
	uint64_t (*hash)(const void *page, size_t len);

	pthread_mutex_t files_lock;
	struct store_file *files_head, *files_tail;
	uint64_t nfiles;
	uint64_t next_file_id;

	struct bg_thread compactor;	/* compact.c */
	struct recompression rc;
	struct backing *bd;		/* disk tier (backing.c) */
	struct ctr_stripe ctr[CTR_STRIPES];
};

/* The pool handle of an OBJ or FOLD slot's object. */
static inline pool_handle_t slot_handle(struct store *st, slot_t s)
{
	return slot_type(s) == SLOT_FOLD ? fold_handle(st->fold, slot_payload(s))
					 : slot_payload(s);
}

/* store_set_walk_hook()'s call, where a walk has read and not yet
 * installed; no lock held. */
static inline void walk_hook(struct store *st)
{
	if (st->walk_hook)
		st->walk_hook(st->walk_hook_arg);
}

static inline void ctr_add(struct store *st, enum store_ctr c, int64_t d)
{
	ctr_stripe_add(&st->ctr[ctr_stripe_id()], c, d);
}

static inline uint64_t ctr_read(struct store *st, enum store_ctr c)
{
	return ctr_count(ctr_stripes_sum(st->ctr, CTR_STRIPES, c));
}

/* store.c, for recompress.c */
int object_create(struct store *st, const void *src, unsigned int size,
		  pool_handle_t *handle);
void object_free(struct store *st, pool_handle_t handle, unsigned int size);
void slot_account(struct store *st, struct store_file *f, slot_t s, int d);
void file_rdlock(struct store_file *f);
void file_rdunlock(struct store_file *f);
void file_put(struct store_file *f);
/* The next live file after *cursor, with a reference (file_put() it). */
struct store_file *file_next(struct store *st, uint64_t *cursor);

/*
 * group.c: a group's head object opens with this header, then nchunks
 * pool handles, then the frame's first bytes; the chunks hold the rest.
 * Invariants (cluster lock held): 1 <= live <= n <= CODEC_GROUP_MAX;
 * live == slots naming the head; they are slots of one cluster with
 * distinct indices < n.
 */
struct group_hdr {
	uint64_t serial;	/* unique in the process: readers' caches */
	uint32_t frame;		/* bytes of the zstd frame */
	uint8_t n;		/* pages in the frame */
	uint8_t live;		/* slots naming the group */
	uint8_t nchunks;	/* objects holding the frame's tail */
	uint8_t spare;
};

/* A read of a grouped page whose frame was copied out under the lock and
 * is decoded after (group_finish()). */
struct group_read {
	bool pending;
	uint64_t serial;
	unsigned int frame, n, idx;
};

/* A new group of n pages holding frame (live 0: the caller sets it under
 * the cluster lock once its slots name it); its bytes in all objects to
 * *bytes. 0, -ENOSPC, -ENOMEM. */
int group_create(struct store *st, const void *frame, unsigned int len,
		 unsigned int n, pool_handle_t *head, unsigned int *bytes);
/* Free a group no slot names any more. */
void group_free(struct store *st, pool_handle_t head);
/* The header (and chunk handles, if chunk is not NULL). */
int group_header(struct store *st, pool_handle_t head, struct group_hdr *h,
		 pool_handle_t *chunk);
/* Bytes of all the group's objects. */
unsigned int group_bytes(struct store *st, pool_handle_t head);
/* Cluster lock held: set the live count / one slot of s's group less
 * (true when it was the last: the caller frees the group, unlocked). */
void group_set_live(struct store *st, pool_handle_t head, unsigned int live);
bool group_drop(struct store *st, slot_t s);
/* Cluster lock held: the page of group slot s into page when this
 * thread's scratch holds its group, else the frame copied to the scratch
 * and gr->pending set; group_finish() decodes it after the lock is
 * dropped. */
int group_fetch(struct store *st, slot_t s, void *page, struct group_read *gr);
int group_finish(const struct group_read *gr, void *page);

/* mem_used_total, for backing.c's policy */
uint64_t store_mem_used(struct store *st);

/* recompress.c */
int recompress_init(struct store *st, const struct store_config *cfg);
/* STORE_GROUP_DEFAULT, or 1 in a build without zstd (no groups). */
unsigned int group_size_default(void);
int recompress_start(struct store *st);
void recompress_stop(struct store *st);

/* compact.c */
int compactor_start(struct store *st);
void compactor_stop(struct store *st);
uint64_t compact_run(struct store *st, unsigned int usage_pct);

#endif /* PAGEFOLD_STORE_INT_H */
