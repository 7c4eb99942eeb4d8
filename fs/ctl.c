// SPDX-License-Identifier: MIT
/*
 * ctl.c - the /.ctl pseudo-files.
 *
 * The first half is pure: the formatters and the parsers. The second half
 * connects them to the store and the fs counters: each file's show and
 * write functions, then the table of the files (ctl_files[], ctl.h), which
 * ops.c reaches through pf_ctl_show() and pf_ctl_write() at open and write.
 *
 * lock ordering: showing /.ctl/files takes fs->ns_lock then an inode's
 * attr_lock (through pf_fs_for_each_file); .ctl/stat takes ns_lock alone
 * for the inode count; nothing else here takes a lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "backing.h"
#include "ctl.h"
#include "log.h"
#include "opts.h"
#include "pf.h"

/* ---- formatters ---- */

void ctl_fmt_mm_stat(struct strbuf *sb, const struct store_stats *ss)
{
	/* zram's nine columns in zram's order and widths ... */
	strbuf_printf(sb, "%8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
		      " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
		      " %8" PRIu64,
		      ss->orig_data_size, ss->compr_data_size,
		      ss->mem_used_total, ss->mem_limit, ss->mem_used_max,
		      ss->same_pages, ss->pages_compacted, ss->huge_pages,
		      ss->huge_pages_since);
	/* ... then pagefold's own, only ever appended. */
	strbuf_printf(sb, " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64
		      " %8" PRIu64 " %8" PRIu64 " %8" PRIu64,
		      ss->pages_folded, ss->fold_hits, ss->fold_false,
		      ss->fold_index_bytes, ss->meta_bytes, ss->recomp_pages,
		      ss->recomp_saved);
	/* groups (issue 15) */
	strbuf_printf(sb, " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
		      ss->group_pages, ss->groups, ss->group_saved);
}

void ctl_fmt_io_stat(struct strbuf *sb, const struct store_stats *ss,
		     uint64_t invalid_io)
{
	strbuf_printf(sb, "%8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
		      ss->failed_reads, ss->failed_writes, invalid_io,
		      ss->notify_free);
}

/* A line of .ctl/stat: "name value", the value a number or, with str,
 * a word. */
struct stat_row {
	const char *name;
	uint64_t val;
	const char *str;
};

void ctl_fmt_stat(struct strbuf *sb, const struct store_stats *ss,
		  const struct ctl_fs_stats *fss)
{
	const struct store_bd_stats *bs = &fss->bd;
	char cold[32], intake[32];
	const struct stat_row rows[] = {
		{ "orig_data_size", ss->orig_data_size },
		{ "compr_data_size", ss->compr_data_size },
		{ "mem_used_total", ss->mem_used_total },
		{ "mem_limit", ss->mem_limit },
		{ "mem_used_max", ss->mem_used_max },
		{ "same_pages", ss->same_pages },
		{ "pages_compacted", ss->pages_compacted },
		{ "huge_pages", ss->huge_pages },
		{ "huge_pages_since", ss->huge_pages_since },
		{ "pages_folded", ss->pages_folded },
		{ "fold_hits", ss->fold_hits },
		{ "fold_false", ss->fold_false },
		{ "fold_objs", ss->fold_objs },
		{ "fold_index_bytes", ss->fold_index_bytes },
		{ "fold_scan_freed", ss->fold_scan_freed },
		{ "reads", ss->reads },
		{ "writes", ss->writes },
		{ "failed_reads", ss->failed_reads },
		{ "failed_writes", ss->failed_writes },
		{ "invalid_io", fss->invalid_io },
		{ "notify_free", ss->notify_free },
		{ "pool_pages", ss->pool_pages },
		{ "pool_objs", ss->pool_objs },
		{ "frag_pct", ss->frag_pct },
		{ "files", ss->files },
		{ "meta_bytes", ss->meta_bytes },
		{ "ns_bytes", ss->ns_bytes },
		{ "read_reqs", fss->read_reqs },
		{ "write_reqs", fss->write_reqs },
		{ "read_bytes", fss->read_bytes },
		{ "write_bytes", fss->write_bytes },
		{ "max_read_req", fss->max_read_req },
		{ "max_write_req", fss->max_write_req },
		{ "discard_reqs", fss->discard_reqs },
		{ "enospc_reqs", fss->enospc },
		{ "inodes", fss->inodes },
		{ "threads", fss->threads },
		{ "spin_us", fss->spin_us },
		{ "mlocked", fss->mlocked },
		{ "io_flusher", fss->io_flusher },
		{ "oom_protected", fss->oom_protected },
		{ "defrag_ratio", fss->defrag_ratio },
		{ "recomp_pages", ss->recomp_pages },
		{ "recomp_total", ss->recomp_total },
		{ "recomp_saved", ss->recomp_saved },
		{ "recomp_kept", ss->recomp_kept },
		{ "idle_pages", fss->idle_pages },
		{ "recompress_after", fss->recompress_after },
		{ "intake_cold", ss->intake_cold },
		{ "read_idle", fss->read_idle },
		{ "group_pages", ss->group_pages },
		{ "groups", ss->groups },
		{ "group_saved", ss->group_saved },
		{ "group_scratch_bytes", ss->group_scratch_bytes },
		{ "group_size", fss->group_size },
		{ "pool_reserve", fss->pool_reserve },
		{ "pool_reserve_bytes", ss->pool_reserve_bytes },
		{ "pool_refill_pages", ss->pool_refill_pages },
		{ "pool_writer_pages", ss->pool_writer_pages },
		{ "fold", .str = opt_fold_name(fss->fold) },
		{ "recomp_algorithm", .str = cold },
		{ "intake", .str = intake },
		/* the disk tier */
		{ "bd_count", bs->bd_count },
		{ "bd_reads", bs->bd_reads },
		{ "bd_writes", bs->bd_writes },
		{ "bd_file_bytes", bs->file_bytes },
		{ "bd_obj_bytes", bs->obj_bytes },
		{ "bd_objs", bs->objs },
		{ "bd_frag_pct", bs->frag_pct },
		{ "bd_failed_writes", bs->failed_writes },
		{ "bd_failed_reads", bs->failed_reads },
		{ "bd_punched", bs->punched_blocks },
		{ "bd_map_bytes", bs->map_bytes },
		{ "bd_direct", bs->direct },
		{ "bd_punch", bs->punch },
		{ "writeback_after", fss->writeback_after },
		{ "mem_high", fss->mem_high },
	};

	store_cold_codec_format(&fss->cold_codec, cold, sizeof(cold));
	opt_format_intake(fss->intake_cold, &fss->intake, intake,
			  sizeof(intake));
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (rows[i].str)
			strbuf_printf(sb, "%s %s\n", rows[i].name, rows[i].str);
		else
			strbuf_printf(sb, "%s %" PRIu64 "\n", rows[i].name,
				      rows[i].val);
	}
}

void ctl_fmt_bd_stat(struct strbuf *sb, const struct store_bd_stats *bs)
{
	/* zram's three, in pages of 4 KiB ... */
	strbuf_printf(sb, "%8" PRIu64 " %8" PRIu64 " %8" PRIu64,
		      bs->bd_count, bs->bd_reads, bs->bd_writes);
	/* ... then pagefold's own, only ever appended. */
	strbuf_printf(sb, " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8u %8" PRIu64
		      "\n", bs->file_bytes, bs->obj_bytes, bs->objs,
		      bs->frag_pct, bs->failed_writes);
}

void ctl_fmt_zswap_stat(struct strbuf *sb, const struct zswap_stats *zs)
{
	strbuf_printf(sb, "%12" PRIu64 " %12" PRIu64 " %10" PRIu64 " %10" PRIu64
		      " %10" PRIu64 "\n", zs->pool_bytes, zs->stored_bytes,
		      zs->zswpin, zs->zswpout, zs->zswpwb);
}

#define CLASS_HDR "%5s %8s %14s %13s %8s %14s %10s %10s\n"
#define CLASS_ROW "%5s %8s %14s %13s %8" PRIu64 " %14" PRIu64 " %10" PRIu64 \
		  " %10" PRIu64 "\n"

void ctl_fmt_classes(struct strbuf *sb, const struct store_class_stats *cls,
		     unsigned int n)
{
	uint64_t spans = 0, allocated = 0, inuse = 0, pages = 0;
	char idx[16], size[16], pps[16], ops[16];

	strbuf_printf(sb, CLASS_HDR, "class", "size", "pages_per_span",
		      "objs_per_span", "spans", "objs_allocated", "objs_inuse",
		      "pages_used");
	for (unsigned int i = 0; i < n; i++) {
		uint64_t a = cls[i].spans * cls[i].objs_per_span;
		uint64_t p = cls[i].spans * cls[i].pages_per_span;

		snprintf(idx, sizeof(idx), "%u", i);
		snprintf(size, sizeof(size), "%" PRIu32, cls[i].obj_size);
		snprintf(pps, sizeof(pps), "%" PRIu32, cls[i].pages_per_span);
		snprintf(ops, sizeof(ops), "%" PRIu32, cls[i].objs_per_span);
		strbuf_printf(sb, CLASS_ROW, idx, size, pps, ops, cls[i].spans,
			      a, cls[i].objs_inuse, p);
		spans += cls[i].spans;
		allocated += a;
		inuse += cls[i].objs_inuse;
		pages += p;
	}
	strbuf_printf(sb, CLASS_ROW, "Total", "-", "-", "-", spans, allocated,
		      inuse, pages);
}

void ctl_fmt_files_header(struct strbuf *sb)
{
	strbuf_printf(sb, "path size pages same folded compr_bytes clusters "
		      "own_bytes shared_bytes\n");
}

void ctl_fmt_files_row(struct strbuf *sb, const char *path, bool deleted,
		       uint64_t size, const struct store_file_stats *fst)
{
	strbuf_add_escaped(sb, path);
	if (deleted)
		strbuf_add_escaped(sb, " (deleted)");
	strbuf_printf(sb, " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		      " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		      size, fst->pages, fst->same_pages, fst->folded_pages,
		      fst->compr_bytes, fst->clusters, fst->own_bytes,
		      fst->shared_bytes);
}

/* ---- parsers ---- */

#define CTL_MAX_WRITE 64

/* A written value as a string: one trailing newline dropped; err is
 * -EINVAL if it holds a NUL byte or is too long. */
struct ctl_value {
	char s[CTL_MAX_WRITE];
	int err;
};

static struct ctl_value ctl_value(const char *buf, size_t len)
{
	struct ctl_value v = { .err = -EINVAL };

	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len >= CTL_MAX_WRITE || memchr(buf, '\0', len))
		return v;
	memcpy(v.s, buf, len);
	v.s[len] = '\0';
	v.err = 0;
	return v;
}

/* Exactly word: the triggers' "1", mem_used_max's "0". */
static int ctl_parse_word(const char *buf, size_t len, const char *word)
{
	struct ctl_value v = ctl_value(buf, len);

	if (v.err)
		return v.err;
	return strcmp(v.s, word) == 0 ? 0 : -EINVAL;
}

int ctl_parse_trigger(const char *buf, size_t len)
{
	return ctl_parse_word(buf, len, "1");
}

int ctl_parse_reset(const char *buf, size_t len)
{
	return ctl_parse_word(buf, len, "0");
}

int ctl_parse_size(const char *buf, size_t len, uint64_t *bytes)
{
	struct ctl_value v = ctl_value(buf, len);

	return v.err ? v.err : opt_parse_size(v.s, bytes);
}

int ctl_parse_mem_limit(const char *buf, size_t len, uint64_t ram,
			uint64_t *bytes)
{
	struct ctl_value v = ctl_value(buf, len);

	return v.err ? v.err : opt_parse_mem_limit(v.s, ram, bytes);
}

/* A decimal number in min..max (opt_parse_uint()). */
static int ctl_parse_uint(const char *buf, size_t len, uint64_t min,
			  uint64_t max, uint64_t *val)
{
	struct ctl_value v = ctl_value(buf, len);

	return v.err ? v.err : opt_parse_uint(v.s, min, max, val);
}

int ctl_parse_percent(const char *buf, size_t len, unsigned int *pct)
{
	uint64_t v;
	int ret = ctl_parse_uint(buf, len, 0, 100, &v);

	if (!ret)
		*pct = (unsigned int)v;
	return ret;
}

int ctl_parse_seconds(const char *buf, size_t len, uint64_t *secs)
{
	return ctl_parse_uint(buf, len, 0, STORE_RECOMPRESS_AFTER_MAX, secs);
}

int ctl_parse_bool(const char *buf, size_t len, bool *on)
{
	struct ctl_value v = ctl_value(buf, len);

	return v.err ? v.err : opt_parse_bool(v.s, on);
}

int ctl_parse_fold(const char *buf, size_t len, bool *is_trigger,
		   enum store_fold_mode *mode)
{
	struct ctl_value v = ctl_value(buf, len);

	if (v.err)
		return v.err;
	*is_trigger = strcmp(v.s, "1") == 0;
	return *is_trigger ? 0 : opt_parse_fold(v.s, mode);
}

int ctl_parse_idle(const char *buf, size_t len, uint64_t *seconds)
{
	struct ctl_value v = ctl_value(buf, len);

	if (v.err)
		return v.err;
	if (strcmp(v.s, "all") == 0 || strcmp(v.s, "1") == 0) {
		*seconds = 0;	/* every page */
		return 0;
	}
	/* zram's other form: pages untouched for at least N seconds. */
	return opt_parse_uint(v.s, 2, UINT64_MAX / 8, seconds);
}

/* The next blank-separated word of *p (at most size - 1 bytes) into word;
 * false at the end, or for a word too long (then *bad is set). */
static bool next_word(const char **p, char *word, size_t size, bool *bad)
{
	size_t n = 0;

	while (**p == ' ' || **p == '\t')
		(*p)++;
	if (!**p)
		return false;
	while (**p && **p != ' ' && **p != '\t') {
		if (n + 1 >= size) {
			*bad = true;
			return false;
		}
		word[n++] = *(*p)++;
	}
	word[n] = '\0';
	return true;
}

/*
 * zram's key=value words for recompress: type=idle|huge|huge_idle,
 * threshold=BYTES, algo=CODEC[:LEVEL], priority=1, in any order, each at
 * most once but priority; recomp_algorithm takes algo and priority alone
 * (all false). At least one word.
 */
static int ctl_parse_zram_words(const char *s, bool all,
				struct store_recompress_opts *o)
{
	char word[CTL_MAX_WRITE];
	const char *p = s;
	bool bad = false, any = false;
	uint64_t v;
	int ret;

	memset(o, 0, sizeof(*o));
	while (next_word(&p, word, sizeof(word), &bad)) {
		char *val = strchr(word, '=');

		any = true;
		if (!val)
			return -EINVAL;
		*val++ = '\0';
		if (all && strcmp(word, "type") == 0 && !o->type) {
			if (strcmp(val, "idle") == 0)
				o->type = STORE_RECOMPRESS_IDLE;
			else if (strcmp(val, "huge") == 0)
				o->type = STORE_RECOMPRESS_HUGE;
			else if (strcmp(val, "huge_idle") == 0)
				o->type = STORE_RECOMPRESS_IDLE |
					  STORE_RECOMPRESS_HUGE;
			else
				return -EINVAL;
		} else if (all && strcmp(word, "threshold") == 0 &&
			   !o->threshold) {
			ret = opt_parse_uint(val, 1, STORE_PAGE_SIZE, &v);
			if (ret)
				return ret;
			o->threshold = (unsigned int)v;
		} else if (strcmp(word, "algo") == 0 && !o->algo_set) {
			ret = opt_parse_codec(val, &o->algo);
			if (ret)
				return ret;
			o->algo_set = true;
		} else if (strcmp(word, "priority") == 0) {
			/* one cold codec: priority 1 is the only one */
			ret = opt_parse_uint(val, 1, 1, &v);
			if (ret)
				return ret;
		} else {
			return -EINVAL;
		}
	}
	return bad || !any ? -EINVAL : 0;
}

int ctl_parse_recompress(const char *buf, size_t len,
			 struct store_recompress_opts *o)
{
	struct ctl_value v = ctl_value(buf, len);

	if (v.err)
		return v.err;
	if (strcmp(v.s, "1") == 0) {
		memset(o, 0, sizeof(*o));
		return 0;	/* pagefold's own form: idle pages */
	}
	return ctl_parse_zram_words(v.s, true, o);
}

int ctl_parse_cold_codec(const char *buf, size_t len,
			 struct store_cold_codec *a)
{
	struct ctl_value v = ctl_value(buf, len);
	struct store_recompress_opts o;
	int ret;

	if (v.err)
		return v.err;
	if (!strchr(v.s, '='))
		return opt_parse_codec(v.s, a);
	/* zram's form: algo=CODEC [priority=1] */
	ret = ctl_parse_zram_words(v.s, false, &o);
	if (ret)
		return ret;
	if (!o.algo_set)
		return -EINVAL;
	*a = o.algo;
	return 0;
}

int ctl_parse_intake(const char *buf, size_t len, bool *cold,
		     struct store_cold_codec *a)
{
	struct ctl_value v = ctl_value(buf, len);

	return v.err ? v.err : opt_parse_intake(v.s, cold, a);
}

int ctl_parse_writeback(const char *buf, size_t len, unsigned int *type)
{
	struct ctl_value v = ctl_value(buf, len);
	const char *w = v.s;

	if (v.err)
		return v.err;
	/* zram's words, bare or (newer kernels) as type=WORD */
	if (strncmp(w, "type=", 5) == 0)
		w += 5;
	if (strcmp(w, "idle") == 0)
		*type = STORE_WB_IDLE;
	else if (strcmp(w, "huge") == 0)
		*type = STORE_WB_HUGE;
	else if (strcmp(w, "huge_idle") == 0)
		*type = STORE_WB_IDLE | STORE_WB_HUGE;
	else if (strcmp(w, "incompressible") == 0)
		*type = STORE_WB_INCOMPRESSIBLE;
	else
		return -EINVAL;
	return 0;
}

int ctl_parse_backing(const char *buf, size_t len, char *path, size_t size)
{
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (!len || len >= size || memchr(buf, '\0', len) ||
	    memchr(buf, '\n', len))
		return -EINVAL;
	memcpy(path, buf, len);
	path[len] = '\0';
	if (strcmp(path, "none") == 0) {
		path[0] = '\0';
		return 0;
	}
	/* The daemon's working directory is /: a relative path means
	 * nothing the writer meant. */
	return path[0] == '/' ? 0 : -EINVAL;
}

/* ---- writes refused at the memory limit (ctl.h) ---- */

enum ctl_enospc_say ctl_enospc_refused(struct ctl_enospc *e, int64_t now_ms,
				       struct ctl_enospc_note *note)
{
	uint64_t n = atomic_fetch_add(&e->total, 1) + 1, base;
	int64_t last;
	bool off = false;

	atomic_store(&e->last_refused, now_ms);
	if (!atomic_load(&e->active) &&
	    atomic_compare_exchange_strong(&e->active, &off, true)) {
		atomic_store(&e->burst_base, n - 1);
		atomic_store(&e->burst_start, now_ms);
	}
	last = atomic_load(&e->last_warned);
	if (last != CTL_ENOSPC_NEVER && now_ms - last < CTL_ENOSPC_EVERY_MS)
		return CTL_ENOSPC_NOTHING;
	/* One thread a minute gets here. */
	if (!atomic_compare_exchange_strong(&e->last_warned, &last, now_ms))
		return CTL_ENOSPC_NOTHING;
	n = atomic_load(&e->total);
	base = atomic_load(&e->burst_base);
	note->refused = n - atomic_exchange(&e->told, n);
	note->burst = n > base ? n - base : 1;
	note->since_ms = last == CTL_ENOSPC_NEVER ? 0 : now_ms - last;
	note->burst_ms = now_ms - atomic_load(&e->burst_start);
	return atomic_exchange(&e->announced, true) ? CTL_ENOSPC_STILL :
						      CTL_ENOSPC_FIRST;
}

enum ctl_enospc_say ctl_enospc_written(struct ctl_enospc *e, int64_t now_ms,
				       struct ctl_enospc_note *note)
{
	int64_t last = atomic_load(&e->last_refused);
	uint64_t n, base;
	bool on = true;

	if (!atomic_load(&e->active) || now_ms - last < CTL_ENOSPC_QUIET_MS ||
	    !atomic_compare_exchange_strong(&e->active, &on, false))
		return CTL_ENOSPC_NOTHING;
	if (!atomic_exchange(&e->announced, false))
		return CTL_ENOSPC_NOTHING; /* counted in the next warning */
	n = atomic_load(&e->total);
	base = atomic_load(&e->burst_base);
	atomic_store(&e->told, n);
	note->refused = n - base;
	note->burst = note->refused;
	note->since_ms = 0;
	note->burst_ms = last - atomic_load(&e->burst_start);
	return CTL_ENOSPC_AGAIN;
}

struct ctl_enospc ctl_enospc_state = CTL_ENOSPC_INIT;

static int64_t ctl_now_ms(void)
{
	struct timespec ts;

	/* The vDSO's coarse clock: no system call, tick resolution. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ctl_enospc_tell(struct pf_fs *fs, enum ctl_enospc_say say,
			    const struct ctl_enospc_note *n)
{
	uint64_t reqs = pf_counter_read(fs, PF_C_ENOSPC);
	struct store_stats ss;

	if (say == CTL_ENOSPC_NOTHING)
		return;
	store_get_stats(fs->st, &ss);
	switch (say) {
	case CTL_ENOSPC_FIRST:
		pf_log(LOG_WARNING, "writes refused: the store is full at mem_limit=%" PRIu64 " bytes (%" PRIu64 " in use); %" PRIu64 " write%s refused with ENOSPC (enospc_reqs %" PRIu64 " in .ctl/stat). Swap keeps the pages it cannot write in RAM and retries them; raise .ctl/mem_limit or free space",
			ss.mem_limit, ss.mem_used_total, n->refused,
			n->refused == 1 ? "" : "s", reqs);
		break;
	case CTL_ENOSPC_STILL:
		pf_log(LOG_WARNING, "writes still refused at mem_limit=%" PRIu64 " bytes (%" PRIu64 " in use): %" PRIu64 " refused in the last %" PRId64 " s, %" PRIu64 " in %" PRId64 " s since they began (enospc_reqs %" PRIu64 ")",
			ss.mem_limit, ss.mem_used_total, n->refused,
			n->since_ms / 1000, n->burst, n->burst_ms / 1000, reqs);
		break;
	case CTL_ENOSPC_AGAIN:
		pf_log(LOG_NOTICE, "writes succeed again: %" PRIu64 " refused at mem_limit=%" PRIu64 " bytes over %" PRId64 " s (enospc_reqs %" PRIu64 ")",
			n->burst, ss.mem_limit, n->burst_ms / 1000, reqs);
		break;
	default:
		break;
	}
}

void pf_ctl_enospc_refused(struct pf_fs *fs)
{
	struct ctl_enospc_note n;

	ctl_enospc_tell(fs, ctl_enospc_refused(&ctl_enospc_state,
					       ctl_now_ms(), &n), &n);
}

void pf_ctl_enospc_resumed(struct pf_fs *fs)
{
	struct ctl_enospc_note n;

	ctl_enospc_tell(fs, ctl_enospc_written(&ctl_enospc_state,
					       ctl_now_ms(), &n), &n);
}

/* ---- the files ---- */

static void ctl_fs_stats(struct pf_fs *fs, struct ctl_fs_stats *fss)
{
	memset(fss, 0, sizeof(*fss));
	fss->invalid_io = pf_counter_read(fs, PF_C_INVALID_IO);
	fss->read_reqs = pf_counter_read(fs, PF_C_READ_REQS);
	fss->write_reqs = pf_counter_read(fs, PF_C_WRITE_REQS);
	fss->read_bytes = pf_counter_read(fs, PF_C_READ_BYTES);
	fss->write_bytes = pf_counter_read(fs, PF_C_WRITE_BYTES);
	fss->max_read_req = pf_counter_read(fs, PF_C_MAX_READ_REQ);
	fss->max_write_req = pf_counter_read(fs, PF_C_MAX_WRITE_REQ);
	fss->discard_reqs = pf_counter_read(fs, PF_C_DISCARD_REQS);
	fss->enospc = pf_counter_read(fs, PF_C_ENOSPC);
	pthread_mutex_lock(&fs->ns_lock);
	fss->inodes = fs->ninodes;
	pthread_mutex_unlock(&fs->ns_lock);
	fss->threads = fs->threads;
	fss->spin_us = fs->spin_us;
	fss->mlocked = fs->mlocked;
	fss->io_flusher = fs->io_flusher;
	fss->oom_protected = fs->oom_protected;
	fss->fold = store_get_fold_mode(fs->st);
	fss->defrag_ratio = store_get_defrag_ratio(fs->st);
	fss->recompress_after = store_get_recompress_after(fs->st);
	store_get_cold_codec(fs->st, &fss->cold_codec);
	fss->intake_cold = store_get_intake(fs->st, &fss->intake);
	fss->read_idle = store_get_read_idle(fs->st);
	fss->group_size = store_get_group_size(fs->st);
	fss->pool_reserve = store_get_pool_reserve(fs->st);
	store_get_bd_stats(fs->st, &fss->bd);
	fss->writeback_after = store_get_writeback_after(fs->st);
	fss->mem_high = store_get_mem_high(fs->st);
}

/* The store's figures now. */
static struct store_stats stats_now(struct store *st)
{
	struct store_stats ss;

	store_get_stats(st, &ss);
	return ss;
}

/* Stats files. */

static int show_mm_stat(struct pf_fs *fs, const struct ctl_file *f,
			struct strbuf *sb)
{
	struct store_stats ss = stats_now(fs->st);

	(void)f;
	ctl_fmt_mm_stat(sb, &ss);
	return 0;
}

static int show_io_stat(struct pf_fs *fs, const struct ctl_file *f,
			struct strbuf *sb)
{
	struct store_stats ss = stats_now(fs->st);

	(void)f;
	ctl_fmt_io_stat(sb, &ss, pf_counter_read(fs, PF_C_INVALID_IO));
	return 0;
}

static int show_stat(struct pf_fs *fs, const struct ctl_file *f,
		     struct strbuf *sb)
{
	struct store_stats ss = stats_now(fs->st);
	struct ctl_fs_stats fss;

	(void)f;
	ctl_fs_stats(fs, &fss);
	fss.idle_pages = store_idle_pages(fs->st);
	ctl_fmt_stat(sb, &ss, &fss);
	return 0;
}

static int show_classes(struct pf_fs *fs, const struct ctl_file *f,
			struct strbuf *sb)
{
	struct store_class_stats cls[256];
	unsigned int n;

	(void)f;
	n = store_get_classes(fs->st, cls, sizeof(cls) / sizeof(cls[0]));
	if (n > sizeof(cls) / sizeof(cls[0]))
		n = sizeof(cls) / sizeof(cls[0]);
	ctl_fmt_classes(sb, cls, n);
	return 0;
}

/* A row of /.ctl/files (pf_fs_for_each_file()). */
static int files_row(void *ctx, const char *path, bool deleted, uint64_t size,
		     const struct store_file_stats *fst)
{
	struct strbuf *sb = ctx;

	ctl_fmt_files_row(sb, path, deleted, size, fst);
	return sb->err;
}

static int show_files(struct pf_fs *fs, const struct ctl_file *f,
		      struct strbuf *sb)
{
	(void)f;
	ctl_fmt_files_header(sb);
	return pf_fs_for_each_file(fs, files_row, sb);
}

static int show_zswap_stat(struct pf_fs *fs, const struct ctl_file *f,
			   struct strbuf *sb)
{
	struct zswap_stats zs;
	int ret = zswap_read_stats(&zs);

	(void)fs;
	(void)f;
	if (!ret)
		ctl_fmt_zswap_stat(sb, &zs);
	return ret;
}

static int show_bd_stat(struct pf_fs *fs, const struct ctl_file *f,
			struct strbuf *sb)
{
	struct store_bd_stats bs;

	(void)f;
	store_get_bd_stats(fs->st, &bs);
	ctl_fmt_bd_stat(sb, &bs);
	return 0;
}

/* Generic settings and triggers (the row's num, flag or trigger). */

static int show_num(struct pf_fs *fs, const struct ctl_file *f,
		    struct strbuf *sb)
{
	uint64_t v = f->num.get ? f->num.get(fs->st) : f->num.get_uint(fs->st);

	strbuf_printf(sb, "%" PRIu64 "\n", v);
	return 0;
}

static int write_num(struct pf_fs *fs, const struct ctl_file *f,
		     const char *buf, size_t len)
{
	uint64_t v;
	int ret;

	if (f->num.bytes) {
		ret = ctl_parse_size(buf, len, &v);
		if (!ret && v > f->num.max)
			ret = -ERANGE;
	} else {
		ret = ctl_parse_uint(buf, len, f->num.min, f->num.max, &v);
	}
	if (ret)
		return ret;
	if (f->num.set)
		return f->num.set(fs->st, v);
	return f->num.set_uint(fs->st, (unsigned int)v);
}

static int show_flag(struct pf_fs *fs, const struct ctl_file *f,
		     struct strbuf *sb)
{
	strbuf_printf(sb, "%d\n", f->flag.get(fs->st) ? 1 : 0);
	return 0;
}

static int write_flag(struct pf_fs *fs, const struct ctl_file *f,
		      const char *buf, size_t len)
{
	bool on = false;
	int ret = ctl_parse_bool(buf, len, &on);

	if (!ret)
		f->flag.set(fs->st, on);
	return ret;
}

static int write_trigger(struct pf_fs *fs, const struct ctl_file *f,
			 const char *buf, size_t len)
{
	int ret = ctl_parse_trigger(buf, len);

	return ret ? ret : f->trigger(fs->st, NULL);
}

/* Settings and triggers of their own kind. */

static int show_fold(struct pf_fs *fs, const struct ctl_file *f,
		     struct strbuf *sb)
{
	(void)f;
	strbuf_printf(sb, "%s\n", opt_fold_name(store_get_fold_mode(fs->st)));
	return 0;
}

/* A mode, or "1": a fold scan now. */
static int write_fold(struct pf_fs *fs, const struct ctl_file *f,
		      const char *buf, size_t len)
{
	enum store_fold_mode mode = STORE_FOLD_INLINE;
	bool trigger = false;
	int ret = ctl_parse_fold(buf, len, &trigger, &mode);

	(void)f;
	if (ret)
		return ret;
	return trigger ? store_fold(fs->st, NULL) :
			 store_set_fold_mode(fs->st, mode);
}

/* mem_limit and mem_used_max as the stats have them. */
static uint64_t get_mem_limit(struct store *st)
{
	return stats_now(st).mem_limit;
}

static uint64_t get_mem_used_max(struct store *st)
{
	return stats_now(st).mem_used_max;
}

/* A size, at most the machine's RAM. */
static int write_mem_limit(struct pf_fs *fs, const struct ctl_file *f,
			   const char *buf, size_t len)
{
	uint64_t v;
	int ret = ctl_parse_mem_limit(buf, len, opt_ram_bytes(), &v);

	(void)f;
	return ret ? ret : store_set_mem_limit(fs->st, v);
}

/* "0": the high-water mark back to the current use. */
static int write_mem_used_max(struct pf_fs *fs, const struct ctl_file *f,
			      const char *buf, size_t len)
{
	int ret = ctl_parse_reset(buf, len);

	(void)f;
	if (!ret)
		store_reset_mem_used_max(fs->st);
	return ret;
}

static int write_recompress(struct pf_fs *fs, const struct ctl_file *f,
			    const char *buf, size_t len)
{
	struct store_recompress_opts ro;
	int ret = ctl_parse_recompress(buf, len, &ro);

	(void)f;
	return ret ? ret : store_recompress_with(fs->st, &ro, NULL);
}

static int write_idle(struct pf_fs *fs, const struct ctl_file *f,
		      const char *buf, size_t len)
{
	uint64_t secs;
	int ret = ctl_parse_idle(buf, len, &secs);

	(void)f;
	if (ret)
		return ret;
	return secs ? store_mark_idle_since(fs->st, secs, NULL) :
		      store_mark_idle(fs->st, NULL);
}

static int show_recomp_algorithm(struct pf_fs *fs, const struct ctl_file *f,
				 struct strbuf *sb)
{
	struct store_cold_codec a;
	char alg[32];

	(void)f;
	store_get_cold_codec(fs->st, &a);
	store_cold_codec_format(&a, alg, sizeof(alg));
	strbuf_printf(sb, "%s\n", alg);
	return 0;
}

static int write_recomp_algorithm(struct pf_fs *fs, const struct ctl_file *f,
				  const char *buf, size_t len)
{
	struct store_cold_codec a;
	int ret = ctl_parse_cold_codec(buf, len, &a);

	(void)f;
	return ret ? ret : store_set_cold_codec(fs->st, &a);
}

/* The intake as opt_format_intake() writes it: "lz4", "zstd:1". */
static void format_intake(struct pf_fs *fs, char *alg, size_t size)
{
	struct store_cold_codec a;
	bool cold = store_get_intake(fs->st, &a);

	opt_format_intake(cold, &a, alg, size);
}

static int show_intake(struct pf_fs *fs, const struct ctl_file *f,
		       struct strbuf *sb)
{
	char alg[32];

	(void)f;
	format_intake(fs, alg, sizeof(alg));
	strbuf_printf(sb, "%s\n", alg);
	return 0;
}

/* zram's form of the intake: the codecs, the one in use in brackets. */
static int show_comp_algorithm(struct pf_fs *fs, const struct ctl_file *f,
			       struct strbuf *sb)
{
	static const char *const names[] = { "lz4", "lz4hc", "zstd" };
	char alg[32];

	(void)f;
	format_intake(fs, alg, sizeof(alg));
	alg[strcspn(alg, ":")] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		strbuf_printf(sb, strcmp(names[i], alg) ? "%s%s" : "%s[%s]",
			      i ? " " : "", names[i]);
	strbuf_printf(sb, "\n");
	return 0;
}

/* intake and comp_algorithm: "lz4" or a cold codec. */
static int write_intake(struct pf_fs *fs, const struct ctl_file *f,
			const char *buf, size_t len)
{
	struct store_cold_codec a;
	bool cold = false;
	int ret = ctl_parse_intake(buf, len, &cold, &a);

	(void)f;
	return ret ? ret : store_set_intake(fs->st, cold ? &a : NULL);
}

static int show_backing_dev(struct pf_fs *fs, const struct ctl_file *f,
			    struct strbuf *sb)
{
	char path[PATH_MAX];

	(void)f;
	store_get_backing(fs->st, path, sizeof(path));
	strbuf_printf(sb, "%s\n", path);
	return 0;
}

static int write_backing_dev(struct pf_fs *fs, const struct ctl_file *f,
			     const char *buf, size_t len)
{
	char path[PATH_MAX];
	int ret = ctl_parse_backing(buf, len, path, sizeof(path));

	(void)f;
	return ret ? ret : pf_backing_attach(fs->st, path[0] ? path : NULL);
}

static int write_writeback(struct pf_fs *fs, const struct ctl_file *f,
			   const char *buf, size_t len)
{
	unsigned int type;
	int ret = ctl_parse_writeback(buf, len, &type);

	(void)f;
	return ret ? ret : store_writeback(fs->st, type, NULL);
}

/* ---- the table ---- */

/* Rows of the generic kinds (ctl.h). */
#define STATS(name, show) { name, 0444, show, NULL }
#define TRIGGER(name, fn) { name, 0200, NULL, write_trigger, .trigger = fn }
#define NUMBER(name, get_, set_, min_, max_) \
	{ name, 0644, show_num, write_num, \
	  .num = { .get = get_, .set = set_, .min = min_, .max = max_ } }
#define UINT_NUMBER(name, get_, set_, min_, max_) \
	{ name, 0644, show_num, write_num, \
	  .num = { .get_uint = get_, .set_uint = set_, .min = min_, \
		   .max = max_ } }
#define BYTES(name, get_, set_, max_) \
	{ name, 0644, show_num, write_num, \
	  .num = { .get = get_, .set = set_, .max = max_, .bytes = true } }
#define FLAG(name, get_, set_) \
	{ name, 0644, show_flag, write_flag, .flag = { get_, set_ } }

const struct ctl_file ctl_files[] = {
	STATS("mm_stat", show_mm_stat),
	STATS("io_stat", show_io_stat),
	STATS("stat", show_stat),
	STATS("classes", show_classes),
	STATS("files", show_files),
	TRIGGER("compact", store_compact),
	TRIGGER("shrink", store_shrink),
	/* a setting (the mode) and a trigger (1) in one */
	{ "fold", 0644, show_fold, write_fold },
	{ "mem_limit", 0644, show_num, write_mem_limit,
	  .num = { .get = get_mem_limit } },
	UINT_NUMBER("defrag_ratio", store_get_defrag_ratio,
		    store_set_defrag_ratio, 0, 100),
	{ "mem_used_max", 0644, show_num, write_mem_used_max,
	  .num = { .get = get_mem_used_max } },
	{ "recompress", 0200, NULL, write_recompress },
	{ "idle", 0200, NULL, write_idle },
	NUMBER("recompress_after", store_get_recompress_after,
	       store_set_recompress_after, 0, STORE_RECOMPRESS_AFTER_MAX),
	{ "recomp_algorithm", 0644, show_recomp_algorithm,
	  write_recomp_algorithm },
	{ "intake", 0644, show_intake, write_intake },
	/* zram's name and form for the intake */
	{ "comp_algorithm", 0644, show_comp_algorithm, write_intake },
	FLAG("read_idle", store_get_read_idle, store_set_read_idle),
	UINT_NUMBER("group_size", store_get_group_size, store_set_group_size,
		    1, STORE_GROUP_MAX),
	STATS("zswap_stat", show_zswap_stat),
	BYTES("pool_reserve", store_get_pool_reserve, store_set_pool_reserve,
	      STORE_POOL_RESERVE_MAX),
	/* the disk tier */
	{ "backing_dev", 0644, show_backing_dev, write_backing_dev },
	{ "writeback", 0200, NULL, write_writeback },
	NUMBER("writeback_limit", store_get_writeback_limit,
	       store_set_writeback_limit, 0, UINT64_MAX),
	FLAG("writeback_limit_enable", store_get_writeback_limit_enable,
	     store_set_writeback_limit_enable),
	STATS("bd_stat", show_bd_stat),
	NUMBER("writeback_after", store_get_writeback_after,
	       store_set_writeback_after, 0, STORE_RECOMPRESS_AFTER_MAX),
	BYTES("mem_high", store_get_mem_high, store_set_mem_high, UINT64_MAX),
};

const unsigned int ctl_nfiles = sizeof(ctl_files) / sizeof(ctl_files[0]);

int ctl_lookup(const char *name)
{
	for (unsigned int i = 0; i < ctl_nfiles; i++)
		if (strcmp(ctl_files[i].name, name) == 0)
			return (int)i;
	return -1;
}

int pf_ctl_show(struct pf_fs *fs, const struct ctl_file *f, struct strbuf *sb)
{
	int ret = f->show ? f->show(fs, f, sb) : -EACCES; /* write-only */

	return ret ? ret : sb->err;
}

int pf_ctl_write(struct pf_fs *fs, const struct ctl_file *f, const char *buf,
		 size_t len)
{
	return f->write ? f->write(fs, f, buf, len) : -EACCES; /* read-only */
}
