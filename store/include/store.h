/* SPDX-License-Identifier: MIT */
/*
 * store.h - files as sparse arrays of 4 KiB pages, kept compressed in a pool.
 *
 * A store holds files; a file is addressed by page index. Each page written
 * is either a same-filled page (one 8-byte word repeated, zeros included),
 * kept as the pattern with no pool object; or compressed with LZ4 (stored
 * raw when the result reaches the huge threshold) into a pool object. With
 * folding on, identical pages share one object: a page's XXH3 hash is looked
 * up in the fold index and, on a hit, the contents are compared for real
 * before a reference is taken.
 *
 * Byte offsets, file sizes, names and inodes belong to fs/: the store only
 * knows pages. All functions return 0 or -errno and never print or exit.
 * Every function is thread safe; writes and reads to different files or
 * different clusters of a file proceed in parallel. Racing writes to one
 * page leave one of the written pages, whole.
 *
 * Memory: mem_used_total counts everything the store allocates - pool
 * spans and bookkeeping, file records, cluster tables and their directory,
 * the fold index, the pattern table - and the caller's records it
 * allocated with store_mem_alloc() (fs/: inodes, names, directory tables),
 * and is what the limit sees. All of that metadata comes from the pool's
 * metadata heap (alloc/include/pool.h), not from malloc: freed, it goes back to the
 * OS, also under mlockall(), where glibc keeps freed memory resident (it
 * releases with madvise(MADV_DONTNEED), which locked pages refuse). The
 * heap's own cost is counted too: partly used slabs (metadata freed in
 * the middle of a slab waits there for the next object of its size), at
 * most one empty slab per size class kept for reuse (256 KiB together;
 * store_shrink() returns them), its frame table (24 bytes per 128 KiB
 * frame it ever used). So after every file is deleted mem_used_total
 * falls back to what an empty store holds (0.4 MB of pool structures)
 * plus what stays from the peak: the pool's page map (8 bytes per pool
 * page ever held), the heap's kept slabs and frame table, and until a
 * compaction returns them the pool's kept empty spans and handle tables
 * (measured: 443 KB fresh, 1.14 MB after 175 MB was stored and deleted:
 * 384 KB of page map, 256 KB of kept slabs, 40 KB of frame table), and
 * the daemon's resident memory with it. Counted too: the buffers of
 * threads that read grouped pages (two pages per page of the largest
 * group a thread read, at its first group; group_scratch_bytes) and the
 * buffers of a recompression walk while it runs (~150 KiB), and with a
 * backing file attached its space map and the writeback walk's buffers
 * (~370 KiB). Not counted: the codec state of each thread that reads or
 * writes pages (24 KiB of LZ4 state and two page buffers, ~94 KiB more
 * for the zstd decoding context of a thread that read a cold page or
 * called store_thread_prepare(); 68 KiB of read buffer for a thread that
 * read a page from the backing file) and the background threads' stacks,
 * as zram does not count its per-CPU streams. Metadata per stored page:
 * 8 bytes of slot + the pool's 8 per object, plus ~21 bytes per unique page
 * for the fold index when folding (byte counts in cluster.h and fold.h).
 */
#ifndef PAGEFOLD_STORE_H
#define PAGEFOLD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_PAGE_SIZE  4096u
#define STORE_PAGE_SHIFT 12
/* Pages a file's slot table keeps under one lock (a cluster, cluster.h):
 * writers of pages in different clusters never meet. A caller that splits
 * requests keeps its pieces inside one (fs/file.c). */
#define STORE_CLUSTER_PAGES 512u

struct store;
struct store_file;

enum store_fold_mode {
	STORE_FOLD_INLINE = 0, /* fold on every write (default) */
	STORE_FOLD_SCAN,       /* store first, fold when store_fold() runs */
	STORE_FOLD_OFF,        /* never fold */
};

/* The cold codec for idle pages (see store_recompress()). */
enum store_cold_algo {
	STORE_COLD_ZSTD = 0,
	STORE_COLD_LZ4HC = 1,
	STORE_COLD_NR		/* how many */
};

struct store_cold_codec {
	enum store_cold_algo algo;
	int level;		/* 0 = the codec's default */
};

/*
 * The store's defaults, each in this one place with the reason for it:
 * what store_config_default() fills in, what store_create() takes for a
 * field left 0 where 0 is not a value of the field, and what pagefold(8)
 * documents for the mount options of the same names. The rest is off or
 * none by default: no memory limit, no cold intake, read_idle and the
 * refill off; the cold codec is zstd at its own default level, 6 (lz4hc
 * at 9 in a build without zstd).
 */
/* Fold as pages are written: a page stored twice costs one object from
 * its first write on, for a hash and an index lookup per write. */
#define STORE_FOLD_DEFAULT STORE_FOLD_INLINE
/* 7/8 of a page: the pool packs objects across page boundaries, so a 3.5
 * KiB object costs 3.5 KiB; measured on real programs' pages, 3/4 stored
 * ~2% of them raw for ~0.8% more memory, 7/8 is the smallest total (up to
 * 4095 packs slightly worse). */
#define STORE_HUGE_THRESHOLD_DEFAULT (STORE_PAGE_SIZE * 7 / 8)
/* Compaction copies every object it moves: the background thread waits
 * until a fifth of the pool's pages is unused, and store_compact() empties
 * the spans less than four fifths used. */
#define STORE_DEFRAG_RATIO_DEFAULT 20u
/* Five minutes: most swapped-out pages sit for minutes, and zstd then
 * holds them in ~2/3 of the memory LZ4 needs. */
#define STORE_RECOMPRESS_AFTER_DEFAULT 300u
/* 8 pages to a zstd frame: real programs' pages took 0.557 of zram's
 * memory against 0.638 one page a frame, and a random 4 KiB read of a cold
 * page ran at 0.41 of LZ4's speed; 16 saved 2% more for 0.26
 * (tests/bench/README.md, bench-recompress). 1 (no groups) in a build
 * without zstd. */
#define STORE_GROUP_DEFAULT 8u
/* All the reserve can hold in use (2 pages for each span length, 1 to 32
 * pages), so by default the bound is never what limits it. */
#define STORE_POOL_RESERVE_DEFAULT (256u << 10)

struct store_config {
	uint64_t mem_limit;          /* bytes, 0 = no limit */
	enum store_fold_mode fold;   /* STORE_FOLD_INLINE (0) by default */
	unsigned int huge_threshold; /* compressed size >= this: stored raw;
					0 = STORE_HUGE_THRESHOLD_DEFAULT */
	unsigned int defrag_ratio;   /* percent, 0..100: background compaction
					starts when fragmentation passes it and
					store_compact() empties spans used below
					100 - defrag_ratio; 0 here is
					STORE_DEFRAG_RATIO_DEFAULT (a ratio of
					0: store_set_defrag_ratio()) */
	bool no_background;          /* don't start the background threads
					(compaction, aging + recompression) */
	uint64_t recompress_after;   /* seconds idle before a page goes to the
					cold codec; 0 = never by itself */
	struct store_cold_codec cold_codec; /* {0}: zstd at its default
					level (lz4hc if built without zstd) */
	bool intake_cold;            /* written pages go to the cold codec
					intake (store_set_intake()) */
	struct store_cold_codec intake; /* with intake_cold */
	bool read_idle;              /* a read leaves the page idle
					(store_set_read_idle()) */
	unsigned int group_size;     /* pages per cold group, 1 = none
					(store_set_group_size()); 0 = the
					build's default (STORE_GROUP_DEFAULT,
					1 without zstd) */
	/* The pool's reserve of resident pages for new spans, bytes (rounded
	 * down to pages; counted in mem_used_total): 0 = the default,
	 * STORE_POOL_RESERVE_DEFAULT; STORE_POOL_RESERVE_NONE: none. */
	uint64_t pool_reserve;
	/* A background thread faults new pool pages in ahead of the writers
	 * (not with no_background). Off by default: it paid for one writer
	 * with a CPU to spare (bench-store, real.pages: write/LZ4 0.77 ->
	 * 0.85) and cost through the file system, whose workers keep both
	 * CPUs busy (bench-fs, 1 MiB writes from a fresh daemon: 1.29 ->
	 * 1.10x zram, 4 KiB random writes 0.28 -> 0.20x). */
	bool refill;
	/* Hash used by the fold index; NULL = XXH3 64-bit. Tests replace it to
	 * force false matches. */
	uint64_t (*hash)(const void *page, size_t len);
};

#define STORE_POOL_RESERVE_NONE    UINT64_MAX
#define STORE_POOL_RESERVE_MAX     (UINT64_C(256) << 20)

/* Every field of *cfg at its default, as the value itself (no 0 standing
 * for one): the defaults above, recompress_after included, and the group
 * size this build can use. */
void store_config_default(struct store_config *cfg);

/* NULL on allocation failure. cfg NULL: store_config_default()'s. */
struct store *store_create(const struct store_config *cfg);
/* Stops the background thread, frees every file and the pool; NULL is ok. */
void store_destroy(struct store *st);

/* A new, empty file. NULL if out of memory or over the limit. */
struct store_file *store_file_create(struct store *st);
/* Releases every page of the file and the file itself; NULL is ok. */
void store_file_destroy(struct store_file *f);

/*
 * Write one full page. Replaces what the page held before. -ENOSPC when the
 * memory limit would be passed (the page keeps its old contents; with the
 * limit set below current use, every write that needs new memory is
 * refused, while same-filled pages and pages folded onto a stored one still
 * go in), -ENOMEM if memory runs out, -EFBIG for a page index past
 * STORE_MAX_PAGES. No lock is held while the page is compressed.
 */
#define STORE_MAX_PAGES (UINT64_C(1) << 40) /* 4 PiB per file */
int store_write(struct store_file *f, uint64_t page, const void *buf);

/*
 * Prepare the calling thread for store_read() and store_write() on st: its
 * codec state (LZ4 state, scratch pages, the zstd decoding context for cold
 * pages, ~120 KiB with zstd; and, while st's intake is a cold codec, that
 * codec's compression context at the intake level) is allocated and
 * faulted in now, so that serving a page later allocates nothing per
 * thread. Threads that serve swap call it before their first request. st
 * may be NULL (no intake context). 0, -ENOMEM or -EIO.
 */
int store_thread_prepare(struct store *st);

/* The calling thread's next store_read() calls read pages pages in a row
 * (this count includes the next one): a page in the backing file is then
 * read with the ones after it in one pread. 0 or 1: no hint. */
void store_read_hint(unsigned int pages);

/* Read one full page into buf; holes read as zeros. -EIO if a stored page
 * does not decompress to exactly one page, -EFBIG past STORE_MAX_PAGES. */
int store_read(struct store_file *f, uint64_t page, void *buf);

/* Release count pages from first on (holes stay holes). Counted in
 * notify_free for every page that held data. */
int store_discard(struct store_file *f, uint64_t first, uint64_t count);

/* Release every page at index >= npages. */
int store_truncate(struct store_file *f, uint64_t npages);

/* First page >= from that holds data (or is a hole), for SEEK_DATA and
 * SEEK_HOLE; -ENXIO if no data page at or after from. Every page at or
 * after the highest written page is a hole. */
int store_seek_data(struct store_file *f, uint64_t from, uint64_t *page);
int store_seek_hole(struct store_file *f, uint64_t from, uint64_t *page);

/* Per-file figures. */
struct store_file_stats {
	uint64_t pages;          /* pages holding data (all kinds) */
	uint64_t same_pages;     /* of those, same-filled */
	uint64_t folded_pages;   /* of those, sharing an object with a slot */
	uint64_t huge_pages;     /* of those, stored raw */
	uint64_t compr_bytes;    /* compressed bytes referenced by the file
				    (a shared object counts in every slot
				    that references it) */
	uint64_t own_bytes;      /* bytes of objects named by one page of
				    this file alone (get_stats only) */
	uint64_t shared_bytes;   /* this file's part of objects several
				    pages share: size / pages sharing it,
				    for each of its pages (get_stats only);
				    own + shared over all files ==
				    compr_data_size, to rounding */
	uint64_t clusters;       /* cluster tables allocated */
	uint64_t meta_bytes;     /* directory + cluster tables of this file */
	uint64_t end_page;       /* highest page holding data + 1, or 0 */
};
/* All figures. folded_pages depends on every other file, so it is counted
 * by walking the file's slots: O(pages of the file). */
void store_file_get_stats(struct store_file *f, struct store_file_stats *fs);
/* The same without folded_pages (left 0), in constant time: for st_blocks
 * and anything else called often. */
void store_file_get_counts(struct store_file *f, struct store_file_stats *fs);

/* Store-wide statistics; the first nine mean what zram's mm_stat means. */
struct store_stats {
	uint64_t orig_data_size;   /* bytes of pages stored (4096 per page) */
	uint64_t compr_data_size;  /* compressed bytes of distinct objects */
	uint64_t mem_used_total;   /* all memory the store holds (pool spans,
				      handle tables, clusters, fold index,
				      file records) */
	uint64_t mem_limit;        /* current limit, 0 = none */
	uint64_t mem_used_max;     /* high-water mark of mem_used_total */
	uint64_t same_pages;       /* same-filled pages stored */
	uint64_t pages_compacted;  /* pool pages freed by compaction */
	uint64_t huge_pages;       /* pages stored raw */
	uint64_t huge_pages_since; /* pages ever stored raw */
	uint64_t pages_folded;     /* slots sharing an object with another slot */
	/* folding */
	uint64_t fold_hits;        /* writes/scans that found an equal page */
	uint64_t fold_false;       /* hash matched, contents differed */
	uint64_t fold_objs;        /* shared objects (refcount > 1) */
	uint64_t fold_index_bytes; /* memory of the fold index */
	uint64_t fold_scan_freed;  /* pages freed by fold scans, total */
	/* I/O */
	uint64_t reads;            /* pages read */
	uint64_t writes;           /* pages written */
	uint64_t failed_reads;
	uint64_t failed_writes;
	uint64_t notify_free;      /* data pages released by discard/truncate */
	/* recompression */
	uint64_t recomp_pages;     /* pages held in the cold codec now */
	uint64_t recomp_total;     /* pages moved to the cold codec, ever */
	uint64_t recomp_saved;     /* compressed bytes those moves saved */
	uint64_t recomp_kept;      /* idle pages left as they were: the cold
				      codec did not make them smaller */
	uint64_t intake_cold;      /* pages written straight to the cold
				      codec (intake), ever */
	/* groups */
	uint64_t group_pages;      /* pages held in groups now (of
				      recomp_pages) */
	uint64_t groups;           /* groups now */
	uint64_t group_saved;      /* compressed bytes grouping saved, ever:
				      the grouped pages' objects (or their
				      shares of older groups) minus the
				      group's objects */
	uint64_t group_scratch_bytes; /* threads' group scratch (counted in
				      mem_used_total) */
	/* pool */
	uint64_t pool_pages;       /* pages held by the pool */
	uint64_t pool_objs;        /* live pool objects */
	unsigned int frag_pct;     /* pool fragmentation, percent */
	uint64_t pool_reserve_bytes; /* resident pages kept for new spans
				      (in mem_used_total) */
	uint64_t pool_refill_pages; /* pages the background refill faulted
				      in ahead of the writers, ever */
	uint64_t pool_writer_pages; /* pool pages writers faulted in
				      themselves, ever */
	uint64_t pool_ready_hits;  /* new spans that found pages in the
				      reserve, ever */
	uint64_t pool_refill_cpu_ns; /* CPU time of the refill thread */
	uint64_t files;            /* live files */
	uint64_t meta_bytes;       /* cluster tables + directories + files */
	uint64_t ns_bytes;         /* the caller's records (store_mem_alloc()) */
};
void store_get_stats(struct store *st, struct store_stats *ss);

/*
 * Triggers. Each reports what it freed through the out parameter (may be
 * NULL). compact empties spans used below 100 - defrag_ratio; shrink packs
 * every class fully; both report pool pages freed (pages_compacted). fold
 * walks every file's pages that hold an unindexed object (written with
 * folding off or in scan mode, or when the index could not grow), hashes
 * them and either shares an equal stored object (freeing this copy) or
 * indexes the object for later writes; it reports the copies freed, i.e.
 * pages that no longer hold an object of their own (fold_scan_freed).
 * Pages already in the index are not re-examined. Locks are taken one page
 * at a time, so writers wait at most one page's decompression; the call
 * itself runs until the pass is done.
 */
int store_compact(struct store *st, uint64_t *pages_freed);
int store_shrink(struct store *st, uint64_t *pages_freed);
int store_fold(struct store *st, uint64_t *pages_freed);

/* Settings, changeable while running; -EINVAL for out-of-range values
 * (fold mode not one of the three, defrag ratio above 100). */
int store_set_mem_limit(struct store *st, uint64_t bytes);
int store_set_fold_mode(struct store *st, enum store_fold_mode mode);
int store_set_defrag_ratio(struct store *st, unsigned int pct);
void store_reset_mem_used_max(struct store *st);
/* The pool's reserve bound (store_config.pool_reserve; 0 here: none);
 * -EINVAL above STORE_POOL_RESERVE_MAX. */
int store_set_pool_reserve(struct store *st, uint64_t bytes);
uint64_t store_get_pool_reserve(struct store *st);
enum store_fold_mode store_get_fold_mode(struct store *st);
unsigned int store_get_defrag_ratio(struct store *st);

/*
 * Idle pages and the cold codec.
 *
 * Three words, one idea each, in the code, the control files and the tests:
 *   idle        a page's age state: not read or written for a while, or
 *               marked so (zram's word: the idle trigger, read_idle).
 *   recompress  moving idle pages to the cold codec: the trigger, the
 *               background walk and its thread (recompress.c; zram's word).
 *   cold        held in the cold codec (zstd, or LZ4HC): a cold page, cold
 *               groups, struct store_cold_codec (codec and level), a cold
 *               intake. zram's names for the same are kept where users see
 *               them: recomp_algorithm is the cold codec, recomp_pages the
 *               cold pages, recomp_total/saved/kept what recompressing did.
 *
 * Every page holding an object has an age (in its slot, no extra memory):
 * the number of ticks since it was last written or read, one tick being
 * recompress_after / 8 seconds. A page is idle when its age reaches 8
 * ticks, or when store_mark_idle() marked it, until it is next read or
 * written. With recompress_after set, a background thread (lowest CPU
 * priority) ages every page once per tick and moves the idle ones to the
 * cold codec; store_recompress() does it for every idle page now. A page is
 * moved only if the cold codec makes it at least 16 bytes (one size class)
 * smaller, otherwise it is left as it is and not tried again until it is
 * rewritten (recomp_kept). Pages stay in the cold codec when read; a write
 * stores LZ4 again. Objects shared by folding are moved only while one slot
 * names them (the common case); a shared one stays as it is.
 *
 * Each page is handled under its cluster lock for a decompression at most,
 * and compressed with no lock held.
 */
#define STORE_RECOMPRESS_AFTER_MAX (UINT64_C(366) * 24 * 3600)

/* -EINVAL past STORE_RECOMPRESS_AFTER_MAX; 0 stops the aging. */
int store_set_recompress_after(struct store *st, uint64_t seconds);
uint64_t store_get_recompress_after(struct store *st);
/* -EINVAL for a level out of the codec's range, -EOPNOTSUPP for a codec this
 * build lacks. Level 0 is the codec's default. */
int store_set_cold_codec(struct store *st,
			 const struct store_cold_codec *a);
void store_get_cold_codec(struct store *st,
			  struct store_cold_codec *a);
/* The build's default cold codec, its level resolved: zstd at its default
 * level, or LZ4HC at its own in a build without zstd. */
void store_cold_codec_default(struct store_cold_codec *a);
/* What store_set_cold_codec() would say, without a store; the
 * codec's level range goes to *min and *max (when the codec exists). */
int store_cold_codec_check(const struct store_cold_codec *a,
			   int *min, int *max);
/* "zstd", "zstd:LEVEL", "lz4hc", "lz4hc:LEVEL" (len bytes, no newline):
 * 0 or -EINVAL; the level is not range-checked here. format() writes the
 * same form with the level always given; returns the length. */
int store_cold_codec_parse(const char *s, size_t len,
			   struct store_cold_codec *a);
int store_cold_codec_format(const struct store_cold_codec *a,
			    char *buf, size_t size);

/*
 * The intake: what a written page is compressed with. LZ4 by default (a ==
 * NULL); or a cold codec, for a store whose pages arrive cold: a swap file
 * behind the kernel's zswap receives what zswap wrote back because nobody
 * touched it for a while, and a page read back goes to zswap next time, so
 * LZ4 first and the cold codec minutes later would be work spent twice.
 * Pages written through a cold intake count in recomp_pages (and
 * intake_cold) and are never recompressed; a page the cold codec cannot
 * shrink below the huge threshold goes through LZ4 as usual. Same-filled
 * and folded pages are unaffected. -EINVAL or -EOPNOTSUPP as
 * store_set_cold_codec(). Threads prepared before a change to a cold
 * intake allocate their compression context at their first cold write.
 */
int store_set_intake(struct store *st, const struct store_cold_codec *a);
/* true when the intake is a cold codec (then in *a, level resolved). */
bool store_get_intake(struct store *st, struct store_cold_codec *a);

/*
 * read_idle: a read leaves the page idle instead of young, so the next
 * aging tick (or store_recompress()) moves it to the cold codec. For swap:
 * a page the kernel swapped in lives in RAM now, and the store's copy is
 * only read again if the kernel drops that page unchanged; keeping that
 * copy in LZ4 is memory spent on the page least likely to be read next.
 * Off by default (for files read as files, a read is real use).
 */
void store_set_read_idle(struct store *st, bool on);

/*
 * Groups: with zstd as the cold codec, the recompression walk packs the
 * idle pages of a cluster, in file order, up to this many at a time into
 * one zstd frame (a group), so that they are compressed together: real
 * programs' pages take less memory that way than one frame each. A read
 * of a grouped page decodes the whole frame into the thread's scratch,
 * where the next read of a page of the same group finds it. A write or
 * discard of a grouped page takes it out of its group, leaving its bytes
 * in the frame until the group's last page leaves (the group is freed) or
 * until a walk finds at most half of the group's pages live and groups
 * them again; a grouped page read again (no longer idle) is given back an
 * LZ4 object of its own by the next walk. Shared (folded) objects,
 * same-filled pages and pages stored raw are never grouped; a lone idle
 * page left over goes to the cold codec alone as before. The walk decodes
 * a group's pages under their cluster lock together (up to group_size
 * decompressions, ~50 us), and compresses them with no lock held. 1 = no groups
 * (each idle page alone, as before groups existed); existing groups stay
 * until their pages leave. -EINVAL outside 1..STORE_GROUP_MAX,
 * -EOPNOTSUPP above 1 without zstd in the build.
 */
#define STORE_GROUP_MAX     16u
int store_set_group_size(struct store *st, unsigned int pages);
unsigned int store_get_group_size(struct store *st);
bool store_get_read_idle(struct store *st);

/* Mark every stored page idle now (as zram's idle trigger); *pages (may be
 * NULL) gets the number marked. */
int store_mark_idle(struct store *st, uint64_t *pages);
/* Mark idle the pages not read or written for at least seconds (zram's
 * idle trigger with a number). Ages are counted only while
 * recompress_after is set, in ticks of an eighth of it: -EINVAL when it is
 * 0; a page's age saturates at 254 ticks. */
int store_mark_idle_since(struct store *st, uint64_t seconds, uint64_t *pages);

/* Which pages store_recompress_with() moves (zram's recompress type=). */
enum store_recompress_type {
	STORE_RECOMPRESS_IDLE = 1,	/* idle pages (the default) */
	STORE_RECOMPRESS_HUGE = 2,	/* pages stored raw; with IDLE: both */
};

struct store_recompress_opts {
	unsigned int type;	/* STORE_RECOMPRESS_* or'ed; 0 = idle */
	unsigned int threshold;	/* only objects of at least this many
				   compressed bytes (0: all); <= 4096 */
	bool algo_set;		/* this codec instead of recomp_algorithm */
	struct store_cold_codec algo;
};

/* store_recompress() with a choice of pages and codec: -EINVAL for a bad
 * type or threshold, or what store_set_cold_codec() says of algo.
 * o may be NULL (idle pages, the set codec). */
int store_recompress_with(struct store *st,
			  const struct store_recompress_opts *o,
			  uint64_t *pages);

/* Move every idle page to the cold codec now, compacting along the way
 * (so memory does not climb while old and new copies coexist) and fully at
 * the end, as shrink; *pages (may be NULL) gets the number moved. Runs
 * until done. Called by tests only: fs/ uses store_recompress_with(). */
int store_recompress(struct store *st, uint64_t *pages);
/* One tick of aging: what the background thread does every
 * recompress_after / 8 seconds (ages every page, moves the idle ones).
 * For tests, with no_background; *pages as above. */
int store_age_tick(struct store *st, uint64_t *pages);
/* For tests: fn(arg) is called by a recompression walk after it read a
 * page (or a group's pages) and before it installs the new form, and by a
 * writeback walk after it wrote a batch and before it switches the slots,
 * with no store lock held, so that a test can change a page meanwhile.
 * NULL: none. */
void store_set_walk_hook(struct store *st, void (*fn)(void *arg), void *arg);
/* Pages idle now (not read or written for recompress_after seconds, or
 * marked idle; cold ones included): a walk of every slot, for stats. */
uint64_t store_idle_pages(struct store *st);

/*
 * The disk tier: a backing file for the coldest pages (backing.c).
 *
 * store_writeback() moves pages to the backing file still compressed
 * (their pool objects packed into 4 KiB blocks, up to 256 KiB per write);
 * a written-back page keeps only its 8-byte slot in memory and stays in
 * the file until it is overwritten or discarded. A read takes one pread
 * (one or two blocks) and decodes; a failed one is -EIO for that page
 * alone. A failed write (a full filesystem, an I/O error) keeps the pages
 * in memory and counts them in failed_writes. A folded object is written
 * once per writeback pass, and shared by its slots on disk too. Freed
 * space is punched out of the file (when the filesystem can) at the next
 * writeback, so the file holds about what is written back.
 * Pages in cold groups (group_size) are not written back: their bytes are
 * one zstd frame shared by the group's pages, and stay in memory with it.
 */
enum store_wb_type {
	STORE_WB_IDLE = 1,		/* idle pages (as recompression) */
	STORE_WB_HUGE = 2,		/* pages stored raw; with IDLE: both */
	STORE_WB_INCOMPRESSIBLE = 4,	/* pages the cold codec could not
					   shrink (recomp_kept) */
};

/* Open path as a backing file: a regular file (created if missing; it is
 * emptied when it becomes the backing file), O_DIRECT where the filesystem
 * takes it. -EINVAL for anything but a regular file, or the errno of open.
 * A path that must not be used (on a pagefold mount: writeback through
 * pagefold waits on itself) is the caller's to refuse: fs/backing.c. */
int store_backing_open(const char *path, int *fd);
/* Use fd (from store_backing_open(), the store owns it now; -1: none) as
 * the backing file, emptied. -EBUSY while pages are written back (fd is
 * closed, the file untouched). */
int store_set_backing_fd(struct store *st, int fd, const char *path);
/* Both at once; path NULL: none. */
int store_set_backing(struct store *st, const char *path);
/* The path, or "none". */
int store_get_backing(struct store *st, char *buf, size_t size);

/* Write back the pages of type (one STORE_WB_* or IDLE|HUGE): -ENODEV
 * without a backing file, -EINVAL for a bad type; -EIO when the limit is
 * used up or -ENOSPC/-EIO when the file cannot take a page and no page
 * was written. *pages (may be NULL) gets the pages moved. */
int store_writeback(struct store *st, unsigned int type, uint64_t *pages);
/* zram's writeback_limit: pages (of 4 KiB) writeback may still move while
 * the limit is enabled; each page moved takes one. */
int store_set_writeback_limit(struct store *st, uint64_t pages);
uint64_t store_get_writeback_limit(struct store *st);
void store_set_writeback_limit_enable(struct store *st, bool on);
bool store_get_writeback_limit_enable(struct store *st);
/* The policy: while mem_used_total is above mem_high, a background thread
 * writes back pages idle for writeback_after seconds (ages as
 * store_mark_idle_since(); with recompress_after 0, pages marked idle).
 * Both 0 = off (the default). */
int store_set_writeback_after(struct store *st, uint64_t seconds);
uint64_t store_get_writeback_after(struct store *st);
int store_set_mem_high(struct store *st, uint64_t bytes);
uint64_t store_get_mem_high(struct store *st);

struct store_bd_stats {
	uint64_t bd_count;	/* pages in the backing file now */
	uint64_t bd_reads;	/* pages read from it, ever */
	uint64_t bd_writes;	/* pages written to it, ever */
	uint64_t file_bytes;	/* blocks of the file in use, bytes */
	uint64_t obj_bytes;	/* bytes of live objects in them */
	uint64_t objs;		/* live objects (shared ones once) */
	unsigned int frag_pct;	/* 100 * (file - obj bytes) / file bytes */
	uint64_t failed_writes;	/* pages a writeback could not write */
	uint64_t failed_reads;	/* pages a read could not bring back */
	uint64_t punched_blocks;/* blocks punched out, ever */
	uint64_t map_bytes;	/* memory of the space map */
	bool direct;		/* opened O_DIRECT */
	bool punch;		/* the filesystem punches holes */
};
void store_get_bd_stats(struct store *st, struct store_bd_stats *bs);

/* Pool size classes, for /.ctl/classes: fills up to max entries, returns the
 * number of classes. */
struct store_class_stats {
	uint32_t obj_size;
	uint32_t pages_per_span;
	uint32_t objs_per_span;
	uint64_t spans;
	uint64_t objs_inuse;
};
unsigned int store_get_classes(struct store *st, struct store_class_stats *cls,
			       unsigned int max);

/*
 * Memory for the caller's own records (fs/: inodes, names, directory
 * tables), from the pool's metadata heap like the store's own metadata:
 * zeroed, counted in mem_used_total (ns_bytes) and given back to the OS
 * when freed. With limited, NULL and -ENOSPC in *err when the memory limit
 * would be passed; otherwise NULL only for -ENOMEM. err may be NULL.
 */
void *store_mem_alloc(struct store *st, size_t size, bool limited, int *err);
/* Free p from store_mem_alloc(); anything else (malloc's, e.g. records made
 * before the store existed; st may then be NULL) goes to free(). NULL is
 * ok. */
void store_mem_free(struct store *st, void *p);

/* Full consistency check (slots, refcounts, every counter, the fold index,
 * the pattern table, the pool); for tests and debug builds. The cross-checks
 * of counters against the slots assume no other thread is changing the
 * store meanwhile; the background compactor may run. */
bool store_is_valid(struct store *st, const char **why);

#endif /* PAGEFOLD_STORE_H */
