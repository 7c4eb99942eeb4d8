// SPDX-License-Identifier: MIT
/*
 * main.c - pagefold: options, the mount point, and main(), which mounts,
 * makes the daemon safe to swap to (safety.h), creates the store and runs
 * the worker pool (workers.h) until the session ends.
 *
 * lock ordering: no locks of its own.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backing.h"
#include "conn.h"
#include "log.h"
#include "mountinfo.h"
#include "ops.h"
#include "opts.h"
#include "pf.h"
#include "recv.h"
#include "safety.h"
#include "workers.h"

#define PF_MAX_THREADS 64

/* ---- options ---- */

struct pf_conf {
	struct opt_mount opt;     /* the options, at their defaults first */
	bool show_help;
	bool show_version;
	const char *nonopt[2];    /* [source] mountpoint */
	int n_nonopt;
	char err[256];            /* first error, printed once */
};

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_MEM_LIMIT,
	KEY_FOLD,
	KEY_DEFRAG,
	KEY_THREADS,
	KEY_RECOMP_AFTER,
	KEY_RECOMP_ALG,
	KEY_SPIN,
	KEY_INTAKE,
	KEY_READ_IDLE,
	KEY_GROUP_SIZE,
	KEY_POOL_RESERVE,
	KEY_POOL_REFILL,
	KEY_BACKING_FILE,
	KEY_WB_AFTER,
	KEY_MEM_HIGH,
};

static const struct fuse_opt pf_opt_spec[] = {
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("mem_limit=", KEY_MEM_LIMIT),
	FUSE_OPT_KEY("fold=", KEY_FOLD),
	FUSE_OPT_KEY("defrag_ratio=", KEY_DEFRAG),
	FUSE_OPT_KEY("max_threads=", KEY_THREADS),
	FUSE_OPT_KEY("recompress_after=", KEY_RECOMP_AFTER),
	FUSE_OPT_KEY("recomp_algorithm=", KEY_RECOMP_ALG),
	FUSE_OPT_KEY("spin_us=", KEY_SPIN),
	FUSE_OPT_KEY("intake=", KEY_INTAKE),
	FUSE_OPT_KEY("comp_algorithm=", KEY_INTAKE), /* zram's name */
	FUSE_OPT_KEY("read_idle=", KEY_READ_IDLE),
	FUSE_OPT_KEY("group_size=", KEY_GROUP_SIZE),
	FUSE_OPT_KEY("pool_reserve=", KEY_POOL_RESERVE),
	FUSE_OPT_KEY("pool_refill=", KEY_POOL_REFILL),
	FUSE_OPT_KEY("backing_file=", KEY_BACKING_FILE),
	FUSE_OPT_KEY("writeback_after=", KEY_WB_AFTER),
	FUSE_OPT_KEY("mem_high=", KEY_MEM_HIGH),
	FUSE_OPT_END
};

__attribute__((format(printf, 2, 3)))
static int conf_error(struct pf_conf *conf, const char *fmt, ...)
{
	va_list ap;

	if (conf->err[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(conf->err, sizeof(conf->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* Why a cold codec option (name=val) was refused; ret from
 * opt_parse_codec() or opt_parse_intake(). */
static int codec_error(struct pf_conf *conf, const char *name,
		       const char *val, int ret, const char *expected)
{
	struct store_cold_codec a;
	const char *colon = strchr(val, ':');
	int min = 0, max = 0;

	if (ret == -EOPNOTSUPP)
		return conf_error(conf, "bad %s '%s': pagefold was built without it",
				  name, val);
	if (ret == -ERANGE && colon &&
	    store_cold_codec_parse(val, (size_t)(colon - val), &a) == 0) {
		a.level = 0;
		(void)store_cold_codec_check(&a, &min, &max);
		return conf_error(conf, "bad %s '%s': level out of %d..%d",
				  name, val, min, max);
	}
	return conf_error(conf, "bad %s '%s': expected %s", name, val,
			  expected);
}

static int pf_opt_proc(void *data, const char *arg, int key,
		       struct fuse_args *outargs)
{
	struct pf_conf *conf = data;
	const char *val = strchr(arg, '=');
	uint64_t v;
	int ret;

	(void)outargs;
	val = val ? val + 1 : "";
	switch (key) {
	case KEY_HELP:
		conf->show_help = true;
		return 0;
	case KEY_VERSION:
		conf->show_version = true;
		return 0;
	case KEY_MEM_LIMIT: {
		uint64_t ram = opt_ram_bytes();

		ret = opt_parse_mem_limit(val, ram, &v);
		if (ret == -ERANGE && opt_parse_size(val, &v) == 0)
			return conf_error(conf, "bad mem_limit '%s': more than the machine's memory (%llu bytes)",
					  val, (unsigned long long)ram);
		if (ret)
			return conf_error(conf, "bad mem_limit '%s': %s", val,
					  ret == -ERANGE ? "too large" :
					  "expected bytes with an optional K, M, G or T suffix");
		conf->opt.store.mem_limit = v;
		return 0;
	}
	case KEY_FOLD:
		if (opt_parse_fold(val, &conf->opt.store.fold))
			return conf_error(conf, "bad fold '%s': expected inline, scan or off",
					  val);
		return 0;
	case KEY_DEFRAG:
		if (opt_parse_uint(val, 0, 100, &v))
			return conf_error(conf, "bad defrag_ratio '%s': expected 0..100",
					  val);
		conf->opt.store.defrag_ratio = (unsigned int)v;
		return 0;
	case KEY_THREADS:
		if (opt_parse_uint(val, 1, PF_MAX_THREADS, &v))
			return conf_error(conf, "bad max_threads '%s': expected 1..%d",
					  val, PF_MAX_THREADS);
		conf->opt.threads = (unsigned int)v;
		return 0;
	case KEY_SPIN:
		if (opt_parse_uint(val, 0, PF_SPIN_US_MAX, &v))
			return conf_error(conf, "bad spin_us '%s': expected microseconds, 0..%u",
					  val, PF_SPIN_US_MAX);
		conf->opt.spin_us = (unsigned int)v;
		return 0;
	case KEY_RECOMP_AFTER:
		if (opt_parse_uint(val, 0, STORE_RECOMPRESS_AFTER_MAX, &v))
			return conf_error(conf, "bad recompress_after '%s': expected seconds, 0..%llu",
					  val, (unsigned long long)STORE_RECOMPRESS_AFTER_MAX);
		conf->opt.store.recompress_after = v;
		return 0;
	case KEY_RECOMP_ALG:
		ret = opt_parse_codec(val, &conf->opt.store.cold_codec);
		if (ret)
			return codec_error(conf, "recomp_algorithm", val, ret,
					   "zstd or lz4hc, optionally :LEVEL");
		return 0;
	case KEY_INTAKE:
		ret = opt_parse_intake(val, &conf->opt.store.intake_cold,
				       &conf->opt.store.intake);
		if (ret)
			return codec_error(conf, "intake", val, ret,
					   "lz4, or zstd or lz4hc, optionally :LEVEL");
		return 0;
	case KEY_READ_IDLE:
		if (opt_parse_bool(val, &conf->opt.store.read_idle))
			return conf_error(conf, "bad read_idle '%s': expected 0 or 1",
					  val);
		return 0;
	case KEY_GROUP_SIZE:
		if (opt_parse_uint(val, 1, STORE_GROUP_MAX, &v))
			return conf_error(conf, "bad group_size '%s': expected pages, 1..%u",
					  val, STORE_GROUP_MAX);
		conf->opt.store.group_size = (unsigned int)v;
		return 0;
	case KEY_POOL_RESERVE:
		if (opt_parse_size(val, &v) || v > STORE_POOL_RESERVE_MAX)
			return conf_error(conf, "bad pool_reserve '%s': expected bytes with an optional K or M suffix, at most %lluM",
					  val, (unsigned long long)
					  (STORE_POOL_RESERVE_MAX >> 20));
		/* 0 in store_config is the default: none has its own value */
		conf->opt.store.pool_reserve = v ? v : STORE_POOL_RESERVE_NONE;
		return 0;
	case KEY_POOL_REFILL: {
		bool on;

		if (opt_parse_bool(val, &on))
			return conf_error(conf, "bad pool_refill '%s': expected 0 or 1",
					  val);
		conf->opt.store.refill = on;
		return 0;
	}
	case KEY_BACKING_FILE:
		if (!*val)
			return conf_error(conf, "bad backing_file '': expected a path");
		free(conf->opt.backing_file);
		conf->opt.backing_file = strdup(val);
		if (!conf->opt.backing_file)
			return conf_error(conf, "out of memory");
		return 0;
	case KEY_WB_AFTER:
		if (opt_parse_uint(val, 0, STORE_RECOMPRESS_AFTER_MAX, &v))
			return conf_error(conf, "bad writeback_after '%s': expected seconds, 0..%llu",
					  val, (unsigned long long)STORE_RECOMPRESS_AFTER_MAX);
		conf->opt.writeback_after = v;
		return 0;
	case KEY_MEM_HIGH:
		if (opt_parse_size(val, &v))
			return conf_error(conf, "bad mem_high '%s': expected bytes with an optional K, M, G or T suffix",
					  val);
		conf->opt.mem_high = v;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (conf->n_nonopt == 2)
			return conf_error(conf, "too many arguments: '%s' (usage: pagefold [options] [source] mountpoint)",
					  arg);
		conf->nonopt[conf->n_nonopt++] = arg;
		return 0;
	default:
		return 1; /* for libfuse */
	}
}

static void usage(const char *prog)
{
	struct store_cold_codec cold;
	struct store_config def;
	char cold_name[32];

	store_config_default(&def);	/* the build's: no groups without zstd */
	store_cold_codec_default(&cold);
	if (store_cold_codec_format(&cold, cold_name, sizeof(cold_name)) < 0)
		snprintf(cold_name, sizeof(cold_name), "?");
	printf("usage: %s [options] [source] mountpoint\n\n", prog);
	printf("Mounts a filesystem whose files are page stores kept in memory,\n"
	       "compressed (LZ4) and with identical pages folded into one.\n"
	       "Statistics, triggers and settings are in mountpoint/.ctl.\n\n");
	/* The defaults from where they are set (store.h, opts.h, recv.h). */
	printf("pagefold options:\n"
	       "    -o mem_limit=SIZE      most memory the store may hold, in bytes or\n"
	       "                           with a K, M, G or T suffix, at most the\n"
	       "                           RAM; 0 = no limit (default 0)\n"
	       "    -o fold=MODE           inline: fold identical pages as they are\n"
	       "                           written (default); scan: only when 1 is\n"
	       "                           written to .ctl/fold; off: never\n"
	       "    -o defrag_ratio=PCT    0..100: pool fragmentation above which\n"
	       "                           compaction runs (default %u)\n"
	       "    -o max_threads=N       worker threads, all started at mount\n"
	       "                           (default: twice the CPUs, %d..%d)\n"
	       "    -o recompress_after=S  seconds a page must stay untouched before\n"
	       "                           it is recompressed with the cold codec;\n"
	       "                           0 = only when asked (default %u)\n"
	       "    -o recomp_algorithm=A  the cold codec: zstd or lz4hc, optionally\n"
	       "                           :LEVEL (default %s)\n"
	       "    -o intake=A            what written pages are compressed with:\n"
	       "                           lz4 (default), or a cold codec as for\n"
	       "                           recomp_algorithm, for pages that arrive\n"
	       "                           cold (swap behind zswap: zstd:1)\n"
	       "    -o comp_algorithm=A    zram's name for intake\n"
	       "    -o read_idle=0|1       1: a page read is left idle, so the next\n"
	       "                           aging tick recompresses it (swap: a page\n"
	       "                           read is back in RAM); default 0\n"
	       "    -o group_size=N        1..%u: idle pages of a file recompressed\n"
	       "                           together, N to a zstd frame; 1 = each\n"
	       "                           alone (default %u)\n"
	       "    -o pool_reserve=SIZE   resident memory the pool keeps ready for\n"
	       "                           new spans (counted in mem_used_total), at\n"
	       "                           most %lluM; 0 = none (default %uK)\n"
	       "    -o pool_refill=0|1     1: a background thread faults the pool's\n"
	       "                           new pages in ahead of the writers\n"
	       "                           (default 0)\n"
	       "    -o backing_file=PATH   a file for the disk tier: pages written\n"
	       "                           back (.ctl/writeback) go there, still\n"
	       "                           compressed; truncated at mount, scratch\n"
	       "                           as swap is (default: none)\n"
	       "    -o writeback_after=S   with mem_high: pages idle this long are\n"
	       "                           written back while memory is above\n"
	       "                           mem_high; 0 = off (default)\n"
	       "    -o mem_high=SIZE       the watermark for writeback_after;\n"
	       "                           0 = off (default)\n"
	       "    -o spin_us=US          after serving a request, one worker polls\n"
	       "                           for the next one this long before it\n"
	       "                           sleeps; 0 = never poll (default %u)\n"
	       "    -f                     stay in the foreground\n"
	       "    -s                     one worker thread\n"
	       "    -d, -o debug           print every request (implies -f)\n"
	       "    -h, --help             print this help\n"
	       "    -V, --version          print versions\n"
	       "    -o clone_fd, -o max_idle_threads=N\n"
	       "                           accepted for compatibility; no effect\n\n"
	       "FUSE options (allow_other, default_permissions, ...):\n",
	       STORE_DEFRAG_RATIO_DEFAULT,
	       OPT_THREADS_DEFAULT_MIN, OPT_THREADS_DEFAULT_MAX,
	       STORE_RECOMPRESS_AFTER_DEFAULT, cold_name,
	       STORE_GROUP_MAX, def.group_size,
	       (unsigned long long)(STORE_POOL_RESERVE_MAX >> 20),
	       STORE_POOL_RESERVE_DEFAULT >> 10,
	       PF_SPIN_US_DEFAULT);
	fuse_lowlevel_help();
}

static void version(void)
{
	printf("pagefold version %s\n", PF_VERSION);
	printf("FUSE library version %s\n", fuse_pkgversion());
	fflush(stdout);
	fuse_lowlevel_version();
}

/* ---- the mount point ---- */

/* The absolute path of the mount point as /proc/self/mountinfo names it:
 * relative paths, "." and "..", trailing slashes and symbolic links
 * resolved. The last component is resolved only if it can be without
 * asking a filesystem mounted there (a dead FUSE mount answers ENOTCONN):
 * then the directory above it is resolved and the name appended. */
static void resolve_mountpoint(const char *arg, char out[PATH_MAX])
{
	char buf[PATH_MAX], dir[PATH_MAX];
	char *slash, *base;
	size_t len;

	if (realpath(arg, out))
		return;
	snprintf(buf, sizeof(buf), "%s", arg);
	len = strlen(buf);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	slash = strrchr(buf, '/');
	if (!slash) {
		base = buf;
		snprintf(dir, sizeof(dir), ".");
	} else {
		base = slash + 1;
		*slash = '\0';
		snprintf(dir, sizeof(dir), "%s", slash == buf ? "/" : buf);
	}
	if (strcmp(base, ".") && strcmp(base, "..") && realpath(dir, out) &&
	    strlen(out) + 1 + strlen(base) < PATH_MAX) {
		if (strcmp(out, "/") != 0)
			strcat(out, "/");
		strcat(out, base);
		return;
	}
	snprintf(out, PATH_MAX, "%s", arg);
}

struct mount_at {
	const char *path;
	char *type;
	size_t size;
	bool found;
};

static int mount_at_path(const struct mountinfo *m, void *ctx)
{
	struct mount_at *at = ctx;

	/* Bottom first: the last one listed is the topmost. */
	if (strcmp(m->mount_point, at->path) == 0) {
		snprintf(at->type, at->size, "%s", m->fstype);
		at->found = true;
	}
	return 0;
}

/* The filesystem type of the topmost mount on path (absolute, resolved),
 * in type (e.g. "fuse.pagefold"); false if nothing is mounted there. From
 * mountinfo, so a hung or dead daemon cannot block it. */
static bool mount_type_at(const char *path, char *type, size_t size)
{
	struct mount_at at = { path, type, size, false };

	return mountinfo_each(mount_at_path, &at) == 0 && at.found;
}

/*
 * What mount(8) users expect before anything is mounted: the mount point
 * exists and is a directory (the kernel takes a regular file, and the
 * mount then answers EIO), it is not a pagefold mount already (a second
 * one would hide the first and its files), and, as a warning, that what
 * it holds is hidden while mounted. 0, or -1 after saying why.
 */
static int check_mountpoint(const char *arg, const char *mnt)
{
	char type[64];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (mount_type_at(mnt, type, sizeof(type)) &&
	    strcmp(type, MOUNTINFO_PAGEFOLD) == 0) {
		fprintf(stderr, "pagefold: %s is already a pagefold mount; unmount it first (fusermount3 -u %s) or mount on another directory\n",
			mnt, mnt);
		return -1;
	}
	if (stat(arg, &st)) {
		if (errno == ENOENT)
			fprintf(stderr, "pagefold: mount point %s does not exist\n",
				arg);
		else
			fprintf(stderr, "pagefold: mount point %s: %s\n", arg,
				strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "pagefold: mount point %s is not a directory\n",
			arg);
		return -1;
	}
	d = opendir(arg);
	if (!d)
		return 0; /* not readable by this user: fusermount3 decides */
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	if (de)
		pf_log(LOG_WARNING, "mount point %s is not empty: what it holds is hidden while pagefold is mounted on it",
		       mnt);
	closedir(d);
	return 0;
}


/* Helpers for large requests: one per CPU beside the requesting worker. */
static unsigned int default_helpers(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus <= 1)
		return 0;
	return (unsigned int)(cpus - 1 > 15 ? 15 : cpus - 1);
}

/*
 * The command line: options into conf, libfuse's own arguments into args
 * (with fsname and subtype first, so that the user's win), the mount point
 * resolved into mnt and checked. 0: go on; 1: done (help or version
 * printed); -1: refused, with a message on standard error.
 */
static int parse_command_line(const char *prog, struct fuse_args *args,
			      struct pf_conf *conf, char mnt[PATH_MAX])
{
	char *fsname = NULL, *optstr = NULL;
	const char *source;
	int ret = -1;

	if (fuse_opt_parse(args, conf, pf_opt_spec, pf_opt_proc) == -1) {
		if (conf->err[0])
			fprintf(stderr, "pagefold: %s\n", conf->err);
		return -1;
	}
	if (conf->show_help) {
		usage(prog);
		return 1;
	}
	if (conf->show_version) {
		version();
		return 1;
	}
	if (conf->n_nonopt == 0) {
		fprintf(stderr, "pagefold: no mountpoint given (usage: pagefold [options] [source] mountpoint)\n");
		return -1;
	}
	/* mount.fuse3 runs "pagefold SOURCE MOUNTPOINT -o ...". */
	source = conf->n_nonopt == 2 ? conf->nonopt[0] : "pagefold";
	if (fuse_opt_add_opt_escaped(&fsname, source))
		goto out_of_memory;
	optstr = malloc(strlen(fsname) + 64);
	if (!optstr)
		goto out_of_memory;
	/* First, so that the user's own fsname= or subtype= win. */
	sprintf(optstr, "-ofsname=%s,subtype=pagefold", fsname);
	if (fuse_opt_insert_arg(args, 1, optstr) ||
	    fuse_opt_add_arg(args, conf->nonopt[conf->n_nonopt - 1]))
		goto out_of_memory;

	/* Before libfuse, which resolves the path and so would ask a dead
	 * mount there, and whose message for a missing one is terse. */
	resolve_mountpoint(conf->nonopt[conf->n_nonopt - 1], mnt);
	ret = check_mountpoint(conf->nonopt[conf->n_nonopt - 1], mnt) ? -1 : 0;
	goto out;
out_of_memory:
	fprintf(stderr, "pagefold: out of memory\n");
out:
	free(optstr);
	free(fsname);
	return ret;
}

/*
 * Everything the mounted daemon serves with, in order: swap safety (before
 * any thread or store memory exists, so that all of it is locked and every
 * thread inherits PR_SET_IO_FLUSHER), the store (after the fork: it may run
 * a thread of its own), the fanout helpers, the receive mode, then the
 * workers, until the session ends. 0 or -errno.
 */
static int serve_mounted(struct pf_fs *fs, struct fuse_session *se,
			 const struct pf_conf *conf, bool singlethread,
			 const char *mnt, int *backing_fd)
{
	int ret;

	pf_swap_safety(fs);

	fs->st = store_create(&conf->opt.store);
	if (!fs->st) {
		pf_log(LOG_ERR, "cannot create the store: out of memory");
		return -ENOMEM;
	}
	/* store_create() takes a defrag_ratio of 0 for the default; the
	 * setter takes it as it is. */
	ret = store_set_defrag_ratio(fs->st, conf->opt.store.defrag_ratio);
	if (ret)
		pf_log(LOG_WARNING, "defrag_ratio: %s", strerror(-ret));
	if (*backing_fd >= 0) {
		ret = store_set_backing_fd(fs->st, *backing_fd,
					   conf->opt.backing_file);
		*backing_fd = -1;	/* the store's now, or closed */
		if (ret) {
			pf_log(LOG_ERR, "backing_file %s: %s",
			       conf->opt.backing_file, strerror(-ret));
			return ret;
		}
	}
	(void)store_set_writeback_after(fs->st, conf->opt.writeback_after);
	(void)store_set_mem_high(fs->st, conf->opt.mem_high);

	/* Like the workers: started now, under mlockall(), blocking the
	 * signals only the main thread takes. */
	fs->fanout = pf_fanout_create(fs->st,
				      singlethread ? 0 : default_helpers(),
				      &ret);
	if (!fs->fanout) {
		pf_log(LOG_ERR, "starting the helper threads: %s",
		       strerror(-ret));
		return ret;
	}

	fs->spin_us = conf->opt.spin_us;
	ret = pf_recv_setup(se, fs->spin_us);
	if (ret) {
		pf_log(LOG_WARNING, "spin_us: cannot poll the fuse device (%s); workers only sleep",
		       strerror(-ret));
		fs->spin_us = 0;
		(void)pf_recv_setup(se, 0);
	}
	pf_fanout_set_spin(fs->fanout, fs->spin_us);
	ret = pf_workers_start(se, fs->st, fs->threads);
	if (ret)
		pf_log(LOG_ERR, "starting %u workers: %s", fs->threads,
		       strerror(-ret));
	else
		ret = pf_workers_serve(mnt);
	pf_workers_stop();
	pf_recv_teardown();
	pf_fanout_destroy(fs->fanout);
	fs->fanout = NULL;
#ifdef PF_DEBUG
	{
		const char *why = NULL;

		if (!pf_fs_is_valid(fs, &why)) {
			pf_log(LOG_ERR, "namespace invalid at exit: %s", why);
			ret = ret ? ret : -EIO;
		}
		if (!store_is_valid(fs->st, &why)) {
			pf_log(LOG_ERR, "store invalid at exit: %s",
			       why ? why : "?");
			ret = ret ? ret : -EIO;
		}
	}
#endif
	return ret;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts = { 0 };
	struct pf_conf conf = { 0 };
	struct fuse_session *se = NULL;
	struct pf_fs *fs = NULL;
	char mnt[PATH_MAX];
	sigset_t set;
	int backing_fd = -1;
	int status = 1;
	int ret;

	pf_malloc_setup();	/* before any thread, any allocation worth it */
	opt_mount_defaults(&conf.opt);
	ret = parse_command_line(argv[0], &args, &conf, mnt);
	if (ret) {
		status = ret > 0 ? 0 : 1;
		goto free_args;
	}
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto free_args;

	/* The disk tier's file: opened (and refused) here, with the error on
	 * the terminal, before the mount could hide a path below it. */
	if (conf.opt.backing_file) {
		ret = pf_backing_open(conf.opt.backing_file, &backing_fd);
		if (ret) {
			fprintf(stderr, "pagefold: bad backing_file '%s': %s\n",
				conf.opt.backing_file,
				ret == -EDEADLK ? "on a pagefold mount (writeback through pagefold deadlocks)" :
				ret == -EINVAL ? "not a regular file" :
				strerror(-ret));
			goto free_args;
		}
		/* Shown in .ctl/backing_dev: absolute, as the daemon's working
		 * directory will be /. */
		{
			char *abs = realpath(conf.opt.backing_file, NULL);

			if (abs) {
				free(conf.opt.backing_file);
				conf.opt.backing_file = abs;
			}
		}
	}

	fs = pf_fs_create(getuid(), getgid());
	if (!fs) {
		fprintf(stderr, "pagefold: out of memory\n");
		goto free_args;
	}
	fs->threads = opts.singlethread ? 1 :
		      conf.opt.threads;

	se = fuse_session_new(&args, &pf_ops, sizeof(pf_ops), fs);
	if (!se)
		goto destroy_fs; /* libfuse said why */
	if (fuse_session_mount(se, opts.mountpoint) != 0)
		goto destroy_session;
	/* Shared mmap of direct-I/O files, which libfuse cannot ask for. */
	ret = pf_conn_extend(se);
	if (ret) {
		pf_log(LOG_ERR, "cannot hook the FUSE connection: %s",
		       strerror(-ret));
		goto unmount;
	}
	/* From here on a signal must unmount, not kill: only the main thread
	 * takes them (in pf_workers_serve()), and the workers inherit the
	 * mask. */
	pf_workers_sigset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (fuse_daemonize(opts.foreground) != 0)
		goto unmount;
	if (!opts.foreground)
		pf_log_to_syslog();

	status = serve_mounted(fs, se, &conf, opts.singlethread, mnt,
				&backing_fd) ? 1 : 0;
unmount:
	fuse_session_unmount(se);
destroy_session:
	fuse_session_destroy(se);
destroy_fs:
	if (fs) {
		struct store *st = fs->st;

		pf_fs_destroy(fs);
		store_destroy(st);
	}
free_args:
	if (backing_fd >= 0)
		close(backing_fd);
	free(conf.opt.backing_file);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return status;
}
