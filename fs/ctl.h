/* SPDX-License-Identifier: MIT */
/*
 * ctl.h - the /.ctl pseudo-files: their table, and the small pure functions
 * that format stats and parse what is written, kept apart from the FUSE
 * plumbing so tests can call them directly.
 *
 * zram's sysfs is the model: stats files are one line of fixed-order numbers
 * (new columns are only ever appended) or a table with a header row;
 * triggers are write-only; settings read back what was set. A write is one
 * complete value, optionally followed by one newline.
 */
#ifndef PAGEFOLD_FS_CTL_H
#define PAGEFOLD_FS_CTL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"
#include "strbuf.h"
#include "zswap.h"

struct pf_fs;
struct ctl_file;

/*
 * The files under /.ctl: one row of ctl_files[] (ctl.c) each, served in
 * that order. A new file is a new row, with a show or write function of its
 * own where the generic ones below do not fit, and an entry in
 * pagefold-ctl(5).
 *
 * A row:
 *   name   the file's name under /.ctl.
 *   mode   0444 a stats file, 0200 a trigger, 0644 a setting; show is set
 *          exactly when mode has 0444, write exactly when it has 0200.
 *          ops.c refuses other opens with EACCES before calling either.
 *   show   the file's whole contents, appended to sb when the file is
 *          opened for reading: 0 or -errno, which the open returns (so does
 *          a failed append, sb->err, which pf_ctl_show() checks).
 *   write  one value written to the file: buf holds len bytes, not
 *          NUL-terminated, optionally followed by one newline (the
 *          ctl_parse_*() below); parses it and applies it: 0 or -errno,
 *          which the write(2) returns: -EINVAL for what is not a value,
 *          -ERANGE for a value the setting cannot mean (as the parsers).
 *          A refused value leaves the setting as it was.
 *   num, flag, trigger
 *          the parameters of the generic show and write functions (ctl.c),
 *          for the files that are one number, one 0/1 flag, or a trigger
 *          with nothing to parse; a row with functions of its own leaves
 *          them out.
 */
typedef int ctl_show_fn(struct pf_fs *fs, const struct ctl_file *f,
			struct strbuf *sb);
typedef int ctl_write_fn(struct pf_fs *fs, const struct ctl_file *f,
			 const char *buf, size_t len);

struct ctl_file {
	const char *name;
	mode_t mode;
	ctl_show_fn *show;
	ctl_write_fn *write;
	union {
		/* One number, read through get and set through set (or, for
		 * a setting the store keeps as an unsigned int, get_uint and
		 * set_uint); shown in decimal; written as a decimal number in
		 * min..max, or with bytes, as a size (ctl_parse_size(): K, M,
		 * G or T) of at most max. */
		struct {
			uint64_t (*get)(struct store *st);
			int (*set)(struct store *st, uint64_t v);
			unsigned int (*get_uint)(struct store *st);
			int (*set_uint)(struct store *st, unsigned int v);
			uint64_t min, max;
			bool bytes;
		} num;
		/* 0 or 1. */
		struct {
			bool (*get)(struct store *st);
			void (*set)(struct store *st, bool on);
		} flag;
		/* Written "1": runs it (what it reports is not shown). */
		int (*trigger)(struct store *st, uint64_t *out);
	};
};

extern const struct ctl_file ctl_files[];
extern const unsigned int ctl_nfiles;

/* Index of the file called name in ctl_files[], or -1. mm_stat, zram's
 * first file, is the first row. */
int ctl_lookup(const char *name);
#define CTL_MM_STAT 0

/* The contents of f at open, and a write to it: f's show and write, with
 * -EACCES where f has none. */
int pf_ctl_show(struct pf_fs *fs, const struct ctl_file *f, struct strbuf *sb);
int pf_ctl_write(struct pf_fs *fs, const struct ctl_file *f, const char *buf,
		 size_t len);

/* fs-level figures that the stats files show beside the store's: a
 * snapshot of fs/'s counters (enum pf_counter) and settings. */
struct ctl_fs_stats {
	uint64_t invalid_io;     /* I/O requests refused as out of range */
	uint64_t read_reqs;      /* read requests on regular files */
	uint64_t write_reqs;     /* write requests on regular files */
	uint64_t read_bytes;     /* bytes those reads returned */
	uint64_t write_bytes;    /* bytes those writes stored */
	uint64_t max_read_req;   /* largest read request seen, bytes */
	uint64_t max_write_req;  /* largest write request seen, bytes */
	uint64_t discard_reqs;   /* punch-hole and zero-range requests */
	uint64_t enospc;         /* requests failed with ENOSPC */
	uint64_t inodes;         /* files, directories, symlinks (not /.ctl) */
	unsigned int threads;    /* worker threads serving requests */
	unsigned int spin_us;    /* a worker polls this long before sleeping */
	bool mlocked;            /* mlockall() succeeded */
	bool io_flusher;         /* PR_SET_IO_FLUSHER succeeded */
	bool oom_protected;      /* oom_score_adj is -1000 */
	enum store_fold_mode fold;  /* current fold mode */
	unsigned int defrag_ratio;  /* current defrag ratio, percent */
	uint64_t recompress_after;  /* seconds, 0 = off */
	struct store_cold_codec cold_codec; /* the cold codec */
	bool intake_cold;           /* the intake is a cold codec ... */
	struct store_cold_codec intake; /* ... this one */
	bool read_idle;             /* a read leaves the page idle */
	unsigned int group_size;    /* pages per cold group, 1 = none */
	uint64_t idle_pages;        /* store_idle_pages(), counted at the read */
	uint64_t pool_reserve;      /* bound on the pool's reserve, bytes */
	struct store_bd_stats bd;   /* the disk tier */
	uint64_t writeback_after;   /* its policy: seconds idle, */
	uint64_t mem_high;          /* ... above this many bytes */
};

/* Formatters: pure, append to sb. */
void ctl_fmt_mm_stat(struct strbuf *sb, const struct store_stats *ss);
void ctl_fmt_io_stat(struct strbuf *sb, const struct store_stats *ss,
		     uint64_t invalid_io);
void ctl_fmt_stat(struct strbuf *sb, const struct store_stats *ss,
		  const struct ctl_fs_stats *fss);
/* zswap's figures beside pagefold's: one line, fixed order (zswap.h). */
void ctl_fmt_zswap_stat(struct strbuf *sb, const struct zswap_stats *zs);
void ctl_fmt_classes(struct strbuf *sb, const struct store_class_stats *cls,
		     unsigned int n);
void ctl_fmt_files_header(struct strbuf *sb);
void ctl_fmt_files_row(struct strbuf *sb, const char *path, bool deleted,
		       uint64_t size, const struct store_file_stats *fst);

/*
 * Parsers for what is written to a control file: buf holds len bytes (not
 * NUL-terminated); one trailing newline is allowed. They return 0, or
 * -EINVAL for garbage, an empty value or an unknown word, -ERANGE for a
 * number the setting cannot mean (out of its range, or too large to
 * represent), -EOPNOTSUPP for a codec this build lacks: the errors of the
 * opt_parse_*() functions the mount options use (opts.h).
 */
int ctl_parse_trigger(const char *buf, size_t len);
int ctl_parse_size(const char *buf, size_t len, uint64_t *bytes);
/* mem_limit: a size up to ram bytes (opt_parse_mem_limit()). */
int ctl_parse_mem_limit(const char *buf, size_t len, uint64_t ram,
			uint64_t *bytes);
int ctl_parse_percent(const char *buf, size_t len, unsigned int *pct);
/* fold: either "1" (run a scan, *is_trigger = true) or a mode name. */
int ctl_parse_fold(const char *buf, size_t len, bool *is_trigger,
		   enum store_fold_mode *mode);
int ctl_parse_reset(const char *buf, size_t len);
/* idle: "all" (as zram) or "1": every page (*seconds = 0); or, as zram,
 * a number of seconds >= 2: the pages untouched that long. */
int ctl_parse_idle(const char *buf, size_t len, uint64_t *seconds);
/* recompress: "1" (idle pages, the set codec), or zram's words in any
 * order: type=idle|huge|huge_idle threshold=BYTES algo=CODEC[:LEVEL]
 * priority=1. ERANGE for a threshold past 4096 or a level out of range. */
int ctl_parse_recompress(const char *buf, size_t len,
			 struct store_recompress_opts *o);
int ctl_parse_seconds(const char *buf, size_t len, uint64_t *secs);
int ctl_parse_cold_codec(const char *buf, size_t len,
			 struct store_cold_codec *a);
/* intake: "lz4" or a cold codec (opt_parse_intake()). */
int ctl_parse_intake(const char *buf, size_t len, bool *cold,
		     struct store_cold_codec *a);
/* "0" or "1". */
int ctl_parse_bool(const char *buf, size_t len, bool *on);
/* writeback: zram's "idle", "huge", "huge_idle", "incompressible", also as
 * "type=WORD"; the STORE_WB_* in *type. */
int ctl_parse_writeback(const char *buf, size_t len, unsigned int *type);
/* backing_dev: an absolute path (into path, size bytes) or "none" (path
 * ""). */
int ctl_parse_backing(const char *buf, size_t len, char *path, size_t size);
/* bd_stat: zram's three columns, then pagefold's. */
void ctl_fmt_bd_stat(struct strbuf *sb, const struct store_bd_stats *bs);

/*
 * Writes refused at the memory limit, told to the user. A write the store
 * refuses fails with ENOSPC and counts in enospc_reqs, and nothing else
 * says so: under swap the kernel keeps the page it could not write in RAM
 * and retries it, for minutes, with no message anywhere. So the daemon
 * says it:
 *
 *   - a warning at the first refused write of a burst;
 *   - while refusals go on, a warning at most once a minute
 *     (CTL_ENOSPC_EVERY_MS) with the count since the last one;
 *   - a notice when a burst that was warned about ends.
 *
 * A burst begins at a refused write and ends at the first successful write
 * CTL_ENOSPC_QUIET_MS or more after the last refused one (writes that slip
 * through while the store stays full, folded or same-filled pages, do not
 * end it). A burst that begins within a minute of the last warning is
 * warned about at its first refusal after that minute, with the refusals
 * counted since the last message, so there is never more than one warning
 * a minute, whatever the pattern.
 *
 * The state is atomics only: a refused write does a few atomic operations
 * and, once a minute, a CAS that one thread wins; a successful write reads
 * one flag (ctl_enospc_written() is called only when it is set). The
 * functions are pure (the time is passed in, in milliseconds of a
 * monotonic clock) and say what to tell; pf_ctl_enospc_*() below read the
 * clock and log it.
 */
#define CTL_ENOSPC_EVERY_MS 60000
#define CTL_ENOSPC_QUIET_MS 1000
#define CTL_ENOSPC_NEVER INT64_MIN

struct ctl_enospc {
	atomic_bool active;           /* a burst is going on */
	atomic_bool announced;        /* ... and was warned about */
	_Atomic uint64_t total;       /* refused writes, ever */
	_Atomic uint64_t burst_base;  /* total when the burst began */
	_Atomic uint64_t told;        /* total at the last message */
	_Atomic int64_t burst_start;  /* ms: the burst's first refusal */
	_Atomic int64_t last_refused; /* ms */
	_Atomic int64_t last_warned;  /* ms, or CTL_ENOSPC_NEVER */
};
#define CTL_ENOSPC_INIT { .last_warned = CTL_ENOSPC_NEVER }

enum ctl_enospc_say {
	CTL_ENOSPC_NOTHING,
	CTL_ENOSPC_FIRST,   /* warning: writes are refused */
	CTL_ENOSPC_STILL,   /* warning: still refused, once a minute */
	CTL_ENOSPC_AGAIN,   /* notice: writes succeed again */
};

struct ctl_enospc_note {
	uint64_t refused;   /* refused since the last message */
	uint64_t burst;     /* refused in this burst */
	int64_t since_ms;   /* since the last warning (STILL) */
	int64_t burst_ms;   /* since the burst began; for AGAIN, from its
			       first refusal to its last */
};

enum ctl_enospc_say ctl_enospc_refused(struct ctl_enospc *e, int64_t now_ms,
				       struct ctl_enospc_note *note);
enum ctl_enospc_say ctl_enospc_written(struct ctl_enospc *e, int64_t now_ms,
				       struct ctl_enospc_note *note);

/* The daemon's (one mount a process). */
extern struct ctl_enospc ctl_enospc_state;

/* The write path's calls: a write of a regular file was refused with
 * ENOSPC (after counting it in enospc_reqs) / succeeded. */
void pf_ctl_enospc_refused(struct pf_fs *fs);
void pf_ctl_enospc_resumed(struct pf_fs *fs);
static inline void pf_ctl_enospc_written(struct pf_fs *fs)
{
	if (atomic_load_explicit(&ctl_enospc_state.active,
				 memory_order_relaxed))
		pf_ctl_enospc_resumed(fs);
}

#endif /* PAGEFOLD_FS_CTL_H */
