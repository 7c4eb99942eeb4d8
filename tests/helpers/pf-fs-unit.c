// SPDX-License-Identifier: MIT
/*
 * pf-fs-unit - TAP tests of fs/'s pure functions: value parsing for mount
 * options and /.ctl writes, and the /.ctl formatters. Run by
 * tests/t0010-fs-units.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "mountinfo.h"
#include "opts.h"
#include "tap.h"

static void test_parse_size(void)
{
	const struct {
		const char *s;
		int ret;
		uint64_t want;
	} cases[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "1k", 0, 1024 },
		{ "1K", 0, 1024 },
		{ "512M", 0, 512ull << 20 },
		{ "2g", 0, 2ull << 30 },
		{ "3T", 0, 3ull << 40 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "99999999999999999999", -ERANGE, 0 },
		{ "16777216T", -ERANGE, 0 },
		{ "16777215T", 0, 16777215ull << 40 },
		{ "", -EINVAL, 0 },
		{ "M", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "1 ", -EINVAL, 0 },
		{ "1MB", -EINVAL, 0 },
		{ "1Q", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
		{ "1.5G", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		int ret = opt_parse_size(cases[i].s, &v);

		ok(ret == cases[i].ret, "opt_parse_size(\"%s\") returns %d (got %d)",
		   cases[i].s, cases[i].ret, ret);
		if (cases[i].ret == 0)
			is_u64(v, cases[i].want, "  ... and the value");
		else
			is_u64(v, 12345, "  ... and leaves the value alone");
	}
}

static void test_parse_uint_fold(void)
{
	enum store_fold_mode m = STORE_FOLD_OFF;
	uint64_t v = 7;

	ok(opt_parse_uint("100", 0, 100, &v) == 0 && v == 100, "100 in 0..100");
	ok(opt_parse_uint("101", 0, 100, &v) == -ERANGE && v == 100,
	   "101 not in 0..100: ERANGE");
	ok(opt_parse_uint("0", 1, 64, &v) == -ERANGE, "0 not in 1..64: ERANGE");
	ok(opt_parse_uint("99999999999999999999", 0, 100, &v) == -ERANGE,
	   "overflow is ERANGE");
	ok(opt_parse_uint("5x", 0, 100, &v) == -EINVAL, "trailing garbage");
	ok(opt_parse_fold("scan", &m) == 0 && m == STORE_FOLD_SCAN, "fold scan");
	ok(opt_parse_fold("inline", &m) == 0 && m == STORE_FOLD_INLINE, "fold inline");
	ok(opt_parse_fold("off", &m) == 0 && m == STORE_FOLD_OFF, "fold off");
	ok(opt_parse_fold("Off", &m) == -EINVAL && m == STORE_FOLD_OFF,
	   "fold names are lower case");
	ok(strcmp(opt_fold_name(STORE_FOLD_SCAN), "scan") == 0, "fold name");
}

#define S(x) x, sizeof(x) - 1

static void test_ctl_parsers(void)
{
	enum store_fold_mode m = STORE_FOLD_OFF;
	bool trig = false;
	unsigned int pct = 0;
	uint64_t v = 0;

	ok(ctl_parse_trigger(S("1\n")) == 0, "trigger 1\\n");
	ok(ctl_parse_trigger(S("1")) == 0, "trigger 1");
	ok(ctl_parse_trigger(S("0\n")) == -EINVAL, "trigger 0");
	ok(ctl_parse_trigger(S("1\n\n")) == -EINVAL, "trigger with two newlines");
	ok(ctl_parse_trigger(S("")) == -EINVAL, "empty trigger");
	ok(ctl_parse_trigger(S("1\0")) == -EINVAL, "NUL byte");
	ok(ctl_parse_size(S("64M\n"), &v) == 0 && v == 64ull << 20, "size 64M");
	ok(ctl_parse_size(S("99999999999999999999\n"), &v) == -ERANGE &&
	   v == 64ull << 20, "size overflow");
	ok(ctl_parse_size(S("abc\n"), &v) == -EINVAL, "size garbage");
	ok(ctl_parse_size(S("\n"), &v) == -EINVAL, "size empty");
	ok(ctl_parse_size("1111111111111111111111111111111111111111111111111111111111111111111111", 70, &v) ==
	   -EINVAL, "size too long to be a value");
	ok(ctl_parse_percent(S("30\n"), &pct) == 0 && pct == 30, "percent 30");
	ok(ctl_parse_percent(S("101\n"), &pct) == -ERANGE && pct == 30,
	   "percent 101: ERANGE");
	ok(ctl_parse_fold(S("1\n"), &trig, &m) == 0 && trig, "fold 1 is the trigger");
	ok(ctl_parse_fold(S("scan\n"), &trig, &m) == 0 && !trig &&
	   m == STORE_FOLD_SCAN, "fold scan is the mode");
	ok(ctl_parse_fold(S("sometimes\n"), &trig, &m) == -EINVAL, "fold unknown");
	ok(ctl_parse_reset(S("0\n")) == 0, "reset 0");
	ok(ctl_parse_reset(S("1\n")) == -EINVAL, "reset 1");
	v = 7;
	ok(ctl_parse_idle(S("all\n"), &v) == 0 && v == 0, "idle all: every page");
	v = 7;
	ok(ctl_parse_idle(S("1"), &v) == 0 && v == 0, "idle 1: every page");
	ok(ctl_parse_idle(S("600\n"), &v) == 0 && v == 600,
	   "idle 600: zram's form, pages untouched for 600 s");
	ok(ctl_parse_idle(S("0\n"), &v) == -ERANGE &&
	   ctl_parse_idle(S("al\n"), &v) == -EINVAL &&
	   ctl_parse_idle(S("5m\n"), &v) == -EINVAL,
	   "idle 0 ERANGE, idle al and 5m EINVAL");
	{
		struct store_recompress_opts o;

		ok(ctl_parse_recompress(S("1\n"), &o) == 0 && !o.type &&
		   !o.threshold && !o.algo_set, "recompress 1: the defaults");
		ok(ctl_parse_recompress(S("type=huge\n"), &o) == 0 &&
		   o.type == STORE_RECOMPRESS_HUGE, "recompress type=huge");
		ok(ctl_parse_recompress(S("threshold=3000 type=huge_idle"), &o) == 0 &&
		   o.type == (STORE_RECOMPRESS_IDLE | STORE_RECOMPRESS_HUGE) &&
		   o.threshold == 3000, "recompress threshold=3000 type=huge_idle");
		ok(ctl_parse_recompress(S("type=idle algo=zstd:3 priority=1"), &o) == 0 &&
		   o.type == STORE_RECOMPRESS_IDLE && o.algo_set &&
		   o.algo.algo == STORE_COLD_ZSTD && o.algo.level == 3,
		   "recompress type=idle algo=zstd:3 priority=1");
		ok(ctl_parse_recompress(S("type=cold"), &o) == -EINVAL &&
		   ctl_parse_recompress(S("type"), &o) == -EINVAL &&
		   ctl_parse_recompress(S("type=idle type=huge"), &o) == -EINVAL &&
		   ctl_parse_recompress(S("algo=brotli"), &o) == -EINVAL &&
		   ctl_parse_recompress(S("2"), &o) == -EINVAL &&
		   ctl_parse_recompress(S("speed=9"), &o) == -EINVAL,
		   "recompress: bad words are EINVAL");
		ok(ctl_parse_recompress(S("threshold=5000"), &o) == -ERANGE &&
		   ctl_parse_recompress(S("priority=2"), &o) == -ERANGE &&
		   ctl_parse_recompress(S("algo=zstd:99"), &o) == -ERANGE,
		   "recompress: out of range is ERANGE");
	}
	ok(ctl_parse_seconds(S("300\n"), &v) == 0 && v == 300, "seconds 300");
	ok(ctl_parse_seconds(S("31622401\n"), &v) == -ERANGE && v == 300,
	   "seconds past 366 days: ERANGE");
	ok(ctl_parse_seconds(S("5m\n"), &v) == -EINVAL, "seconds with a unit");
	{
		struct store_cold_codec a = { STORE_COLD_LZ4HC, 0 };

		ok(ctl_parse_cold_codec(S("zstd:7\n"), &a) == 0 &&
		   a.algo == STORE_COLD_ZSTD && a.level == 7, "recomp zstd:7");
		ok(ctl_parse_cold_codec(S("lz4hc\n"), &a) == 0 &&
		   a.algo == STORE_COLD_LZ4HC && a.level == 0, "recomp lz4hc");
		ok(ctl_parse_cold_codec(S("zstd:\n"), &a) == -EINVAL &&
		   ctl_parse_cold_codec(S("brotli\n"), &a) == -EINVAL,
		   "recomp zstd:, brotli");
		ok(ctl_parse_cold_codec(S("algo=zstd:9 priority=1\n"), &a) == 0 &&
		   a.algo == STORE_COLD_ZSTD && a.level == 9,
		   "recomp in zram's form: algo=zstd:9 priority=1");
		ok(ctl_parse_cold_codec(S("priority=1"), &a) == -EINVAL &&
		   ctl_parse_cold_codec(S("algo=zstd priority=2"), &a) == -ERANGE,
		   "recomp: no algo is EINVAL, priority 2 ERANGE");
	}
	ok(ctl_lookup("mm_stat") == CTL_MM_STAT && ctl_lookup("nope") == -1,
	   "ctl_lookup");
}

static int count_fields(const char *s)
{
	int n = 0;
	bool in = false;

	for (; *s && *s != '\n'; s++) {
		if (*s != ' ' && !in)
			n++;
		in = *s != ' ';
	}
	return n;
}

static void test_ctl_formatters(void)
{
	struct store_stats ss;
	struct store_class_stats cls[2] = {
		{ .obj_size = 32, .pages_per_span = 1, .objs_per_span = 128,
		  .spans = 3, .objs_inuse = 300 },
		{ .obj_size = 3264, .pages_per_span = 4, .objs_per_span = 5,
		  .spans = 2, .objs_inuse = 9 },
	};
	struct store_file_stats fst = { .pages = 10, .same_pages = 2,
		.folded_pages = 3, .compr_bytes = 5000, .clusters = 1,
		.own_bytes = 3000, .shared_bytes = 700 };
	unsigned long long col[20];
	struct strbuf sb;

	memset(&ss, 0, sizeof(ss));
	ss.orig_data_size = 1;
	ss.compr_data_size = 2;
	ss.mem_used_total = 3;
	ss.mem_limit = 4;
	ss.mem_used_max = 5;
	ss.same_pages = 6;
	ss.pages_compacted = 7;
	ss.huge_pages = 8;
	ss.huge_pages_since = 9;
	ss.pages_folded = 10;
	ss.fold_hits = 11;
	ss.fold_false = 12;
	ss.fold_index_bytes = 13;
	ss.meta_bytes = 14;
	ss.recomp_pages = 15;
	ss.recomp_saved = 16;
	ss.group_pages = 17;
	ss.groups = 18;
	ss.group_saved = 19;
	ss.failed_reads = 21;
	ss.failed_writes = 22;
	ss.notify_free = 24;

	strbuf_init(&sb);
	ctl_fmt_mm_stat(&sb, &ss);
	ok(sb.len > 0 && sb.buf[sb.len - 1] == '\n' && !strchr(sb.buf, '\n')[1],
	   "mm_stat is one line");
	ok(sscanf(sb.buf, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		  &col[0], &col[1], &col[2], &col[3], &col[4], &col[5], &col[6],
		  &col[7], &col[8], &col[9], &col[10], &col[11], &col[12],
		  &col[13], &col[14], &col[15], &col[16], &col[17], &col[18],
		  &col[19]) == 19,
	   "mm_stat has 19 columns");
	{
		int i = 0;

		while (i < 19 && col[i] == (unsigned long long)i + 1)
			i++;
		ok(i == 19, "mm_stat: zram's nine in order, then pages_folded, fold_hits, fold_false, fold_index_bytes, meta_bytes, recomp_pages, recomp_saved, group_pages, groups, group_saved");
	}

	sb.len = 0;
	ctl_fmt_io_stat(&sb, &ss, 23);
	ok(sscanf(sb.buf, "%llu %llu %llu %llu", &col[0], &col[1], &col[2],
		  &col[3]) == 4 && col[0] == 21 && col[1] == 22 && col[2] == 23 &&
	   col[3] == 24 && count_fields(sb.buf) == 4,
	   "io_stat: failed_reads failed_writes invalid_io notify_free");

	sb.len = 0;
	ctl_fmt_classes(&sb, cls, 2);
	ok(strncmp(sb.buf, "class ", 6) == 0 &&
	   strstr(sb.buf, "objs_inuse"), "classes has a header row");
	{
		const char *total = strstr(sb.buf, "Total");
		unsigned long long spans, alloc, inuse, pages;

		ok(total && sscanf(total, "Total - - - %llu %llu %llu %llu",
				   &spans, &alloc, &inuse, &pages) == 4 &&
		   spans == 5 && alloc == 3 * 128 + 2 * 5 && inuse == 309 &&
		   pages == 3 + 8, "classes Total row sums the classes");
	}

	sb.len = 0;
	ctl_fmt_files_row(&sb, "/a b\\c", false, 40960, &fst);
	if (!ok(strcmp(sb.buf, "/a\\040b\\134c 40960 10 2 3 5000 1 3000 700\n") == 0,
		"files row escapes the path"))
		diag("got: %s", sb.buf);
	sb.len = 0;
	ctl_fmt_files_row(&sb, "gone", true, 1, &fst);
	if (!ok(strncmp(sb.buf, "gone\\040(deleted) 1 ", 20) == 0,
		"deleted files are marked in one column"))
		diag("got: %s", sb.buf);
	ok(sb.err == 0, "no allocation failure");
	strbuf_release(&sb);
}

static void test_intake_bool(void)
{
	struct store_cold_codec a = { STORE_COLD_LZ4HC, 3 };
	bool cold = true, on = false;
	char buf[32];

	ok(opt_parse_intake("lz4", &cold, &a) == 0 && !cold, "intake lz4");
	ok(opt_parse_intake("zstd:1", &cold, &a) == 0 && cold &&
	   a.algo == STORE_COLD_ZSTD && a.level == 1, "intake zstd:1");
	ok(opt_parse_intake("lz4hc", &cold, &a) == 0 && cold &&
	   a.algo == STORE_COLD_LZ4HC && a.level == 0, "intake lz4hc");
	cold = false;
	ok(opt_parse_intake("LZ4", &cold, &a) == -EINVAL && !cold,
	   "intake names are lower case");
	ok(opt_parse_intake("", &cold, &a) == -EINVAL, "empty intake refused");
	ok(opt_parse_intake("lz4:1", &cold, &a) == -EINVAL, "lz4 takes no level");
	a.algo = STORE_COLD_ZSTD;
	a.level = 1;
	opt_format_intake(true, &a, buf, sizeof(buf));
	ok(strcmp(buf, "zstd:1") == 0, "intake zstd:1 formats back (%s)", buf);
	opt_format_intake(false, &a, buf, sizeof(buf));
	ok(strcmp(buf, "lz4") == 0, "intake lz4 formats back (%s)", buf);
	ok(opt_parse_bool("1", &on) == 0 && on, "bool 1");
	ok(opt_parse_bool("0", &on) == 0 && !on, "bool 0");
	on = true;
	ok(opt_parse_bool("yes", &on) == -EINVAL && on, "bool yes refused");
	ok(opt_parse_bool("01", &on) == -EINVAL && on, "bool 01 refused");
	ok(opt_parse_bool("2", &on) == -ERANGE && on, "bool 2: ERANGE");
	ok(opt_parse_bool("99999999999999999999", &on) == -ERANGE && on,
	   "bool past 2^64: ERANGE");
	ok(opt_parse_bool("", &on) == -EINVAL && on, "bool empty: EINVAL");
	ok(ctl_parse_bool(S("1\n"), &on) == 0 && on, "ctl bool with a newline");
	ok(ctl_parse_intake(S("zstd:3\n"), &cold, &a) == 0 && cold &&
	   a.level == 3, "ctl intake with a newline");
}

static void test_ranges(void)
{
	struct store_cold_codec a = { STORE_COLD_LZ4HC, 3 };
	uint64_t v = 7;
	bool cold = false;

	ok(opt_parse_mem_limit("1G", 2ull << 30, &v) == 0 && v == 1ull << 30,
	   "mem_limit 1G of 2 GiB of RAM");
	ok(opt_parse_mem_limit("2G", 2ull << 30, &v) == 0 && v == 2ull << 30,
	   "mem_limit equal to RAM");
	v = 7;
	ok(opt_parse_mem_limit("2147483649", 2ull << 30, &v) == -ERANGE &&
	   v == 7, "mem_limit a byte above RAM: ERANGE, unchanged");
	ok(opt_parse_mem_limit("18446744073709551615", 2ull << 30, &v) == -ERANGE,
	   "mem_limit 2^64 - 1: ERANGE");
	ok(opt_parse_mem_limit("0", 2ull << 30, &v) == 0 && v == 0,
	   "mem_limit 0 (none)");
	ok(opt_parse_mem_limit("1Q", 2ull << 30, &v) == -EINVAL,
	   "mem_limit garbage: EINVAL");
	ok(ctl_parse_mem_limit(S("3G\n"), 2ull << 30, &v) == -ERANGE,
	   "ctl mem_limit above RAM: ERANGE");
	ok(opt_ram_bytes() > 0, "opt_ram_bytes() knows the RAM");
	ok(opt_parse_codec("lz4hc:12", &a) == 0 && a.level == 12, "lz4hc:12");
	ok(opt_parse_codec("lz4hc:13", &a) == -ERANGE && a.level == 12,
	   "lz4hc:13: ERANGE");
	ok(opt_parse_codec("lz4hc:0", &a) == -ERANGE, "lz4hc:0: ERANGE");
	ok(opt_parse_codec("lz4hc:1000", &a) == -ERANGE, "lz4hc:1000: ERANGE");
	ok(opt_parse_codec("lz4hc:99999999999999999999", &a) == -ERANGE,
	   "a level past 2^64: ERANGE");
	ok(opt_parse_codec("lz4hc:", &a) == -EINVAL &&
	   opt_parse_codec("lz4hc:x", &a) == -EINVAL &&
	   opt_parse_codec("lz4hc:1x", &a) == -EINVAL &&
	   opt_parse_codec(":1", &a) == -EINVAL &&
	   opt_parse_codec("gzip:1", &a) == -EINVAL,
	   "codec garbage: EINVAL");
	ok(opt_parse_intake("lz4hc:13", &cold, &a) == -ERANGE && !cold,
	   "intake level out of range: ERANGE");
	ok(opt_parse_intake("lz4:1", &cold, &a) == -EINVAL, "intake lz4:1: EINVAL");
}

/* The ENOSPC messages: when each is said, with what counts. */
static void test_enospc(void)
{
	struct ctl_enospc e = CTL_ENOSPC_INIT;
	struct ctl_enospc_note n;
	enum ctl_enospc_say say;
	int quiet = 1;

	ok(ctl_enospc_written(&e, 0, &n) == CTL_ENOSPC_NOTHING,
	   "a write before any refusal says nothing");
	say = ctl_enospc_refused(&e, 1000, &n);
	ok(say == CTL_ENOSPC_FIRST && n.refused == 1 && n.burst == 1,
	   "the first refused write warns, count 1");
	for (int t = 2000; t <= 50000; t += 1000)
		if (ctl_enospc_refused(&e, t, &n) != CTL_ENOSPC_NOTHING)
			quiet = 0;
	ok(quiet, "49 more refusals within the minute say nothing");
	ok(ctl_enospc_written(&e, 50500, &n) == CTL_ENOSPC_NOTHING,
	   "a write 0.5 s after a refusal does not end the burst");
	say = ctl_enospc_refused(&e, 61000, &n);
	ok(say == CTL_ENOSPC_STILL && n.refused == 50 && n.burst == 51 &&
	   n.since_ms == 60000 && n.burst_ms == 60000,
	   "a minute after the warning: still refused, 50 since, 51 in all");
	ok(ctl_enospc_refused(&e, 62000, &n) == CTL_ENOSPC_NOTHING,
	   "... then nothing again for a minute");
	say = ctl_enospc_written(&e, 63000, &n);
	ok(say == CTL_ENOSPC_AGAIN && n.burst == 52 && n.burst_ms == 61000,
	   "a write 1 s after the last refusal: writes succeed again, 52");
	ok(ctl_enospc_written(&e, 64000, &n) == CTL_ENOSPC_NOTHING,
	   "... said once");
	ok(ctl_enospc_refused(&e, 70000, &n) == CTL_ENOSPC_NOTHING,
	   "a new burst within a minute of the last warning: not yet");
	ok(ctl_enospc_written(&e, 72000, &n) == CTL_ENOSPC_NOTHING,
	   "... and its end says nothing either");
	say = ctl_enospc_refused(&e, 121000, &n);
	ok(say == CTL_ENOSPC_FIRST && n.refused == 2 && n.burst == 1,
	   "the next burst past the minute warns, counting the quiet one");
}

static void test_zswap(void)
{
	static const char meminfo[] =
		"MemTotal:       24683564 kB\n"
		"Zswap:             1024 kB\n"
		"Zswapped:          4096 kB\n"
		"Dirty:                0 kB\n";
	static const char vmstat[] =
		"pswpout 5\nzswpin 11\nzswpout 22\nzswpwb 33\nzswpwb_x 9\n";
	struct zswap_stats zs = { 0 };
	unsigned long long col[5];
	struct strbuf sb;

	zswap_parse_meminfo(meminfo, &zs);
	is_u64(zs.pool_bytes, 1024 * 1024, "meminfo Zswap in bytes");
	is_u64(zs.stored_bytes, 4096 * 1024, "meminfo Zswapped in bytes");
	zswap_parse_vmstat(vmstat, &zs);
	ok(zs.zswpin == 11 && zs.zswpout == 22 && zs.zswpwb == 33,
	   "vmstat zswpin zswpout zswpwb");
	zswap_parse_meminfo("MemTotal: 5 kB\n", &zs);
	is_u64(zs.pool_bytes, 1024 * 1024, "a kernel without zswap changes nothing");
	strbuf_init(&sb);
	ctl_fmt_zswap_stat(&sb, &zs);
	ok(sscanf(sb.buf, "%llu %llu %llu %llu %llu", &col[0], &col[1], &col[2],
		  &col[3], &col[4]) == 5 && count_fields(sb.buf) == 5 &&
	   col[0] == 1048576 && col[1] == 4194304 && col[2] == 11 &&
	   col[3] == 22 && col[4] == 33,
	   "zswap_stat: pool_bytes stored_bytes zswpin zswpout zswpwb");
	strbuf_release(&sb);
}

static void test_mountinfo(void)
{
	char l1[] = "36 35 0:52 / /tmp/a\\040b rw,nosuid shared:7 master:1 - "
		    "fuse.pagefold pagefold rw,user_id=0\n";
	char l2[] = "22 1 8:1 / / rw - ext4 /dev/sda1 rw";
	char l3[] = "22 1 8:1 / / rw ext4 /dev/sda1 rw";	/* no " - " */
	char l4[] = "22 1 x:1 / / rw - ext4 /dev/sda1 rw";
	char l5[] = "22 1 8:1 / - ";
	char e1[] = "a\\011b\\134c\\0", e2[] = "\\400\\18x";
	struct mountinfo m;

	ok(mountinfo_parse(l1, &m), "mountinfo: optional fields, escapes");
	ok(strcmp(m.mount_point, "/tmp/a b") == 0, "mountinfo: \\040 is a blank");
	ok(strcmp(m.fstype, "fuse.pagefold") == 0, "mountinfo: type after \" - \"");
	ok(m.major == 0 && m.minor == 52, "mountinfo: device 0:52");
	ok(mountinfo_parse(l2, &m) && m.major == 8 && m.minor == 1 &&
	   strcmp(m.mount_point, "/") == 0 && strcmp(m.fstype, "ext4") == 0,
	   "mountinfo: no optional fields");
	ok(!mountinfo_parse(l3, &m), "mountinfo: no separator: refused");
	ok(!mountinfo_parse(l4, &m), "mountinfo: bad device: refused");
	ok(!mountinfo_parse(l5, &m), "mountinfo: too few fields: refused");
	octal_unescape(e1);
	ok(strcmp(e1, "a\tb\\c\\0") == 0, "unescape: tab, backslash; short kept");
	octal_unescape(e2);
	ok(strcmp(e2, "\\400\\18x") == 0, "unescape: not octal bytes kept");
}

int main(void)
{
	test_parse_size();
	test_parse_uint_fold();
	test_ctl_parsers();
	test_ctl_formatters();
	test_intake_bool();
	test_ranges();
	test_enospc();
	test_zswap();
	test_mountinfo();
	return tap_done();
}
