// SPDX-License-Identifier: MIT
/*
 * pagefoldctl.c - one table of every pagefold mount, in the manner of
 * zramctl(8): what each holds, in what memory, with what settings, whether
 * a file of it is in use as swap, and whether its daemon is safe to swap to.
 *
 * Everything shown comes from files anyone can read: /proc/self/mountinfo
 * (the mounts), each mount's /.ctl (stat, files, zswap_stat), /proc/swaps
 * and /sys/class/block/loopN/loop/backing_file (which file a swap device
 * is), and /proc/PID of the daemon (the reasons when it is not safe). It
 * never links the store (only fs/mountinfo.c, the daemon's mountinfo
 * reader): every figure is one a script can read or derive from /.ctl
 * itself. See pagefoldctl(8) for every column.
 *
 * Structure: gather (mounts, their stats and files, swap devices, daemon
 * pids) into plain structs, then render the selected columns of each row
 * into strings, then print them aligned (or raw). Functions return 0 or
 * -errno; main() alone decides the messages and the exit status.
 *
 * Exit status: 0 done; 1 a mount could not be read or an argument is not
 * a pagefold mount point; 2 bad usage (an unknown option or column).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>

#include "mountinfo.h"

#define PAGE_BYTES 4096
#define CAP_IPC_LOCK_BIT 14
#define CAP_SYS_RESOURCE_BIT 24

static const char *prog = "pagefoldctl";

/* ---- columns ---- */

enum col_id {
	COL_MOUNTPOINT,
	COL_FILE,
	COL_SIZE,
	COL_DATA,
	COL_COMPR,
	COL_TOTAL,
	COL_RATIO,
	COL_LIMIT,
	COL_SAVED_FOLD,
	COL_FOLDED,
	COL_SAME,
	COL_COLD,
	COL_IDLE,
	COL_INTAKE,
	COL_COLD_CODEC,
	COL_FILES,
	COL_SWAP,
	COL_ZSWAP_POOL,
	COL_ZSWAP_STORED,
	COL_ZSWAP_WB,
	COL_TOTAL_BOTH,
	COL_PID,
	COL_LOCKED,
	COL_IO_FLUSHER,
	COL_OOM_PROTECT,
	COL_NR
};

struct column {
	const char *name;
	bool right;          /* numbers: right-aligned */
	const char *help;
};

static const struct column columns[COL_NR] = {
	[COL_MOUNTPOINT]   = { "MOUNTPOINT", false, "where the pagefold is mounted" },
	[COL_FILE]         = { "FILE", false, "a file's path in the mount (-f rows; - on a mount's row)" },
	[COL_SIZE]         = { "SIZE", true, "file size; a mount: its files' sizes added up" },
	[COL_DATA]         = { "DATA", true, "bytes of the pages stored (orig_data_size)" },
	[COL_COMPR]        = { "COMPR", true, "compressed bytes of them (compr_data_size)" },
	[COL_TOTAL]        = { "TOTAL", true, "memory the store holds (mem_used_total)" },
	[COL_RATIO]        = { "RATIO", true, "DATA / TOTAL" },
	[COL_LIMIT]        = { "LIMIT", true, "memory limit (mem_limit), - for none" },
	[COL_SAVED_FOLD]   = { "SAVED-FOLD", true, "compressed bytes folding saves (file: its part)" },
	[COL_FOLDED]       = { "FOLDED", true, "pages sharing their object (pages_folded)" },
	[COL_SAME]         = { "SAME", true, "same-filled pages (same_pages)" },
	[COL_COLD]         = { "COLD", true, "pages in the cold codec (recomp_pages)" },
	[COL_IDLE]         = { "IDLE", true, "pages idle now, cold or not (idle_pages)" },
	[COL_INTAKE]       = { "INTAKE", false, "codec of written pages (intake)" },
	[COL_COLD_CODEC]   = { "COLD-CODEC", false, "the cold codec (recomp_algorithm)" },
	[COL_FILES]        = { "FILES", true, "files holding a store (files)" },
	[COL_SWAP]         = { "SWAP", false, "swap devices: loop devices backed by a file here" },
	[COL_ZSWAP_POOL]   = { "ZSWAP-POOL", true, "zswap's pool, the hot tier (swap mounts)" },
	[COL_ZSWAP_STORED] = { "ZSWAP-STORED", true, "pages zswap holds, uncompressed" },
	[COL_ZSWAP_WB]     = { "ZSWAP-WB", true, "pages zswap wrote back since boot (zswpwb)" },
	[COL_TOTAL_BOTH]   = { "TOTAL-BOTH", true, "ZSWAP-POOL + TOTAL" },
	[COL_PID]          = { "PID", true, "the daemon's process id" },
	[COL_LOCKED]       = { "LOCKED", false, "the daemon's memory is locked (mlocked)" },
	[COL_IO_FLUSHER]   = { "IO-FLUSHER", false, "the daemon is an I/O flusher (io_flusher)" },
	[COL_OOM_PROTECT]  = { "OOM-PROTECT", false, "oom_score_adj is -1000 (oom_protected)" },
};

static const enum col_id default_cols[] = {
	COL_MOUNTPOINT, COL_SIZE, COL_DATA, COL_COMPR, COL_TOTAL, COL_RATIO,
	COL_LIMIT, COL_SAVED_FOLD, COL_COLD, COL_IDLE, COL_FILES, COL_SWAP,
};
#define NR_DEFAULT_COLS (sizeof(default_cols) / sizeof(default_cols[0]))

struct options {
	bool files;          /* -f: a row per file too */
	bool bytes;          /* -b: sizes in bytes */
	bool raw;            /* -r: space separated, escaped, bytes */
	bool noheadings;     /* -n */
	enum col_id cols[COL_NR * 4];
	size_t ncols;
};

/* ---- reading files ---- */

/* The whole of path, NUL-terminated, in *text (to free). 0 or -errno. */
static int read_text(const char *path, char **text)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nbuf;
	FILE *f;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		goto free_buf;
	}
	for (;;) {
		size_t n;

		if (cap - len < 2) {
			nbuf = realloc(buf, cap * 2);
			if (!nbuf) {
				ret = -ENOMEM;
				goto close_file;
			}
			buf = nbuf;
			cap *= 2;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				ret = errno ? -errno : -EIO;
			break;
		}
	}
close_file:
	fclose(f);
	if (ret)
		goto free_buf;
	buf[len] = '\0';
	*text = buf;
	return 0;
free_buf:
	free(buf);
	return ret;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* ---- what a mount's /.ctl says ---- */

/* The .ctl/stat names shown, in the order of enum stat_id. */
enum stat_id {
	ST_ORIG_DATA_SIZE,
	ST_COMPR_DATA_SIZE,
	ST_MEM_USED_TOTAL,
	ST_MEM_LIMIT,
	ST_SAME_PAGES,
	ST_PAGES_FOLDED,
	ST_RECOMP_PAGES,
	ST_IDLE_PAGES,
	ST_FILES,
	ST_MLOCKED,
	ST_IO_FLUSHER,
	ST_OOM_PROTECTED,
	ST_NR
};

static const char *const stat_names[ST_NR] = {
	[ST_ORIG_DATA_SIZE] = "orig_data_size",
	[ST_COMPR_DATA_SIZE] = "compr_data_size",
	[ST_MEM_USED_TOTAL] = "mem_used_total",
	[ST_MEM_LIMIT] = "mem_limit",
	[ST_SAME_PAGES] = "same_pages",
	[ST_PAGES_FOLDED] = "pages_folded",
	[ST_RECOMP_PAGES] = "recomp_pages",
	[ST_IDLE_PAGES] = "idle_pages",
	[ST_FILES] = "files",
	[ST_MLOCKED] = "mlocked",
	[ST_IO_FLUSHER] = "io_flusher",
	[ST_OOM_PROTECTED] = "oom_protected",
};

/* One read of .ctl/stat: a single snapshot of every figure. A name an
 * older daemon does not print stays unset (shown as -). */
struct ctl_stat {
	uint64_t val[ST_NR];
	bool have[ST_NR];
	char *intake;            /* NULL when absent */
	char *recomp_algorithm;
};

struct file_row {
	char *path;              /* decoded, from the mount's root */
	uint64_t size, pages, same, folded, compr_bytes;
	bool have_split;         /* the daemon gives the next two */
	uint64_t own_bytes, shared_bytes;
};

struct zswap {
	uint64_t pool_bytes, stored_bytes, zswpin, zswpout, zswpwb;
};

struct swap_dev {
	char *dev;               /* /dev/loopN, as /proc/swaps names it */
	char *backing;           /* the loop device's backing file */
	int mount;               /* index of the mount holding it, or -1 */
};

struct mount {
	char *dir;               /* decoded mount point */
	unsigned int major, minor;
	bool selected;           /* shown (all, or named on the command line) */
	int err;                 /* reading its /.ctl failed: -errno */
	const char *err_what;    /* ... reading this */
	struct ctl_stat st;
	bool have_files;
	struct file_row *files;
	size_t nfiles;
	bool have_zswap;
	struct zswap zs;
	pid_t pid;               /* the daemon, 0 when not known */
};

struct state {
	struct mount *mounts;
	size_t nmounts;
	struct swap_dev *swaps;
	size_t nswaps;
};

static int ctl_path(const struct mount *m, const char *name, char **path)
{
	if (asprintf(path, "%s/.ctl/%s", strcmp(m->dir, "/") ? m->dir : "",
		     name) < 0)
		return -ENOMEM;
	return 0;
}

static int read_ctl(const struct mount *m, const char *name, char **text)
{
	char *path;
	int ret = ctl_path(m, name, &path);

	if (ret)
		return ret;
	ret = read_text(path, text);
	free(path);
	return ret;
}

static int parse_stat(char *text, struct ctl_stat *st)
{
	char *save = NULL, *line;

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *value = strchr(line, ' ');
		char **word = NULL;

		if (!value)
			continue;
		*value++ = '\0';
		if (strcmp(line, "intake") == 0)
			word = &st->intake;
		else if (strcmp(line, "recomp_algorithm") == 0)
			word = &st->recomp_algorithm;
		if (word) {
			free(*word);
			*word = strdup(value);
			if (!*word)
				return -ENOMEM;
			continue;
		}
		for (int i = 0; i < ST_NR; i++)
			if (strcmp(line, stat_names[i]) == 0)
				st->have[i] = parse_u64(value, &st->val[i]);
	}
	return 0;
}

static int load_stat(struct mount *m)
{
	char *text;
	int ret = read_ctl(m, "stat", &text);

	if (ret)
		return ret;
	ret = parse_stat(text, &m->st);
	free(text);
	return ret;
}

/* The header of .ctl/files names its columns; find ours by name, so that
 * columns appended later change nothing here. own_bytes and shared_bytes
 * are newer than the others: a daemon without them is still read. */
enum { FC_SIZE, FC_PAGES, FC_SAME, FC_FOLDED, FC_COMPR, FC_REQUIRED,
       FC_OWN = FC_REQUIRED, FC_SHARED, FC_NR };
static const char *const file_col_names[FC_NR] = {
	"size", "pages", "same", "folded", "compr_bytes", "own_bytes",
	"shared_bytes"
};

static int parse_files_header(char *line, int idx[FC_NR])
{
	char *save = NULL, *w;
	int n = 0;

	for (int i = 0; i < FC_NR; i++)
		idx[i] = -1;
	for (w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save), n++)
		for (int i = 0; i < FC_NR; i++)
			if (n > 0 && strcmp(w, file_col_names[i]) == 0)
				idx[i] = n;
	if (n == 0 || strcmp(line, "path") != 0)
		return -EPROTO;
	for (int i = 0; i < FC_REQUIRED; i++)
		if (idx[i] < 0)
			return -EPROTO;
	if ((idx[FC_OWN] < 0) != (idx[FC_SHARED] < 0))
		return -EPROTO;
	return 0;
}

static int parse_files_row(char *line, const int idx[FC_NR],
			   struct file_row *row)
{
	char *save = NULL, *w;
	uint64_t *dst[FC_NR] = {
		&row->size, &row->pages, &row->same, &row->folded,
		&row->compr_bytes, &row->own_bytes, &row->shared_bytes
	};
	int n = 0, found = 0, want = 0;

	memset(row, 0, sizeof(*row));
	for (int i = 0; i < FC_NR; i++)
		want += idx[i] >= 0;
	for (w = strtok_r(line, " ", &save); w; w = strtok_r(NULL, " ", &save), n++) {
		if (n == 0) {
			octal_unescape(w);
			row->path = w;
			continue;
		}
		for (int i = 0; i < FC_NR; i++)
			if (idx[i] == n) {
				if (!parse_u64(w, dst[i]))
					return -EPROTO;
				found++;
			}
	}
	row->have_split = idx[FC_OWN] >= 0;
	return row->path && found == want ? 0 : -EPROTO;
}

static int load_files(struct mount *m)
{
	char *text, *save = NULL, *line;
	int idx[FC_NR], ret;
	bool header = true;

	ret = read_ctl(m, "files", &text);
	if (ret)
		return ret;
	m->have_files = true;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct file_row row, *nfiles;

		if (header) {
			ret = parse_files_header(line, idx);
			if (ret)
				break;
			header = false;
			continue;
		}
		ret = parse_files_row(line, idx, &row);
		if (ret)
			break;
		row.path = strdup(row.path);
		if (!row.path) {
			ret = -ENOMEM;
			break;
		}
		nfiles = realloc(m->files, (m->nfiles + 1) * sizeof(*nfiles));
		if (!nfiles) {
			free(row.path);
			ret = -ENOMEM;
			break;
		}
		m->files = nfiles;
		m->files[m->nfiles++] = row;
	}
	free(text);
	return ret;
}

static int load_zswap(struct mount *m)
{
	char *text;
	int ret = read_ctl(m, "zswap_stat", &text);

	if (ret)
		return ret;
	if (sscanf(text, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64, &m->zs.pool_bytes, &m->zs.stored_bytes,
		   &m->zs.zswpin, &m->zs.zswpout, &m->zs.zswpwb) == 5)
		m->have_zswap = true;
	else
		ret = -EPROTO;
	free(text);
	return ret;
}

/* ---- mounts ---- */

static int add_mount(struct state *s, const char *dir, unsigned int major,
		     unsigned int minor)
{
	struct mount *nm = realloc(s->mounts, (s->nmounts + 1) * sizeof(*nm));

	if (!nm)
		return -ENOMEM;
	s->mounts = nm;
	memset(&nm[s->nmounts], 0, sizeof(*nm));
	nm[s->nmounts].dir = strdup(dir);
	if (!nm[s->nmounts].dir)
		return -ENOMEM;
	nm[s->nmounts].major = major;
	nm[s->nmounts].minor = minor;
	nm[s->nmounts].selected = true;
	s->nmounts++;
	return 0;
}

/* One mount: a later mount at the same place hides an earlier one. */
static int see_mount(const struct mountinfo *m, void *ctx)
{
	struct state *s = ctx;

	for (size_t i = 0; i < s->nmounts; i++)
		if (s->mounts[i].selected &&
		    strcmp(s->mounts[i].dir, m->mount_point) == 0)
			s->mounts[i].selected = false;
	if (strcmp(m->fstype, MOUNTINFO_PAGEFOLD) != 0)
		return 0;
	return add_mount(s, m->mount_point, m->major, m->minor);
}

/* Every pagefold mount that is visible, in mount order: one mounted over
 * later at the same place is hidden, and its /.ctl could not be reached. */
static int find_mounts(struct state *s)
{
	int ret = mountinfo_each(see_mount, s);

	if (ret)
		return ret;
	/* Drop the hidden ones for good. */
	for (size_t i = 0; i < s->nmounts;) {
		if (s->mounts[i].selected) {
			i++;
			continue;
		}
		free(s->mounts[i].dir);
		memmove(&s->mounts[i], &s->mounts[i + 1],
			(s->nmounts - i - 1) * sizeof(s->mounts[0]));
		s->nmounts--;
	}
	return 0;
}

/* Keep only the mounts named by paths (which must each be one). */
static int select_mounts(struct state *s, char **paths, int n)
{
	bool *want;

	if (n == 0)
		return 0;
	want = calloc(s->nmounts + 1, sizeof(*want));
	if (!want)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		char *real = realpath(paths[i], NULL);
		size_t j;

		if (!real) {
			fprintf(stderr, "%s: %s: %s\n", prog, paths[i], strerror(errno));
			free(want);
			return -ENOENT;
		}
		for (j = 0; j < s->nmounts; j++)
			if (strcmp(s->mounts[j].dir, real) == 0)
				break;
		if (j == s->nmounts) {
			fprintf(stderr, "%s: %s: not a pagefold mount point\n",
				prog, paths[i]);
			free(real);
			free(want);
			return -ENOENT;
		}
		want[j] = true;
		free(real);
	}
	for (size_t j = 0; j < s->nmounts; j++)
		s->mounts[j].selected = want[j];
	free(want);
	return 0;
}

/* ---- swap devices and their backing files ---- */

static int add_swap(struct state *s, const char *dev, const char *backing)
{
	struct swap_dev *ns = realloc(s->swaps, (s->nswaps + 1) * sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	s->swaps = ns;
	ns[s->nswaps].dev = strdup(dev);
	ns[s->nswaps].backing = strdup(backing);
	ns[s->nswaps].mount = -1;
	s->nswaps++;
	if (!ns[s->nswaps - 1].dev || !ns[s->nswaps - 1].backing)
		return -ENOMEM;
	return 0;
}

/* The loop device's backing file, or -errno (-ENOENT: not a loop). */
static int loop_backing(const char *dev, char **backing)
{
	const char *name = strrchr(dev, '/');
	char *path, *text, *nl;
	int ret;

	name = name ? name + 1 : dev;
	if (asprintf(&path, "/sys/class/block/%s/loop/backing_file", name) < 0)
		return -ENOMEM;
	ret = read_text(path, &text);
	free(path);
	if (ret)
		return ret;
	nl = strrchr(text, '\n');
	if (nl)
		*nl = '\0';
	*backing = text;
	return 0;
}

/* Which mount holds path: the one whose mount point is the longest prefix
 * of it, or -1. */
static int mount_of_path(const struct state *s, const char *path)
{
	size_t best_len = 0;
	int best = -1;

	for (size_t i = 0; i < s->nmounts; i++) {
		const char *dir = s->mounts[i].dir;
		size_t len = strcmp(dir, "/") ? strlen(dir) : 0;

		if (strncmp(path, dir, len) == 0 && path[len] == '/' &&
		    (best < 0 || len > best_len)) {
			best = (int)i;
			best_len = len;
		}
	}
	return best;
}

/* /proc/swaps: "Filename Type Size Used Priority", names escaped \ooo. */
static int find_swaps(struct state *s)
{
	char *text, *save = NULL, *line;
	bool header = true;
	int ret;

	ret = read_text("/proc/swaps", &text);
	if (ret == -ENOENT) /* a kernel without swap */
		return 0;
	if (ret)
		return ret;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *dev = line, *end = strpbrk(line, " \t"), *backing;

		if (header) {
			header = false;
			continue;
		}
		if (end)
			*end = '\0';
		octal_unescape(dev);
		if (loop_backing(dev, &backing))
			continue; /* not a loop device */
		ret = add_swap(s, dev, backing);
		free(backing);
		if (ret)
			break;
		s->swaps[s->nswaps - 1].mount =
			mount_of_path(s, s->swaps[s->nswaps - 1].backing);
	}
	free(text);
	return ret;
}

static bool mount_has_swap(const struct state *s, size_t mi)
{
	for (size_t i = 0; i < s->nswaps; i++)
		if (s->swaps[i].mount == (int)mi)
			return true;
	return false;
}

/* ---- the daemon of a mount ---- */

/* The connection a /dev/fuse descriptor serves, from its fdinfo
 * ("fuse_connection: N", the kernel's dev_t of the mount); -1 if not
 * told. */
static long fuse_fd_connection(const char *pid, const char *fd)
{
	char *path, *text, *p;
	long conn = -1;

	if (asprintf(&path, "/proc/%s/fdinfo/%s", pid, fd) < 0)
		return -1;
	if (read_text(path, &text) == 0) {
		p = strstr(text, "fuse_connection:");
		if (p)
			conn = strtol(p + strlen("fuse_connection:"), NULL, 10);
		free(text);
	}
	free(path);
	return conn;
}

/* Scan the processes' descriptors for /dev/fuse and give each mount the
 * pid whose descriptor serves its connection. Processes that cannot be
 * read (another user's, without root) are passed over. */
static void find_daemons(struct state *s)
{
	DIR *proc = opendir("/proc"), *fds;
	struct dirent *p, *fd;
	char *path, link[64];

	if (!proc)
		return;
	while ((p = readdir(proc))) {
		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		if (asprintf(&path, "/proc/%s/fd", p->d_name) < 0)
			break;
		fds = opendir(path);
		if (!fds) {
			free(path);
			continue;
		}
		while ((fd = readdir(fds))) {
			char *fdpath;
			ssize_t n;
			long conn;

			if (fd->d_name[0] == '.' ||
			    asprintf(&fdpath, "%s/%s", path, fd->d_name) < 0)
				continue;
			n = readlink(fdpath, link, sizeof(link) - 1);
			free(fdpath);
			if (n < 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, "/dev/fuse") != 0)
				continue;
			conn = fuse_fd_connection(p->d_name, fd->d_name);
			for (size_t i = 0; i < s->nmounts; i++) {
				struct mount *m = &s->mounts[i];

				if (!m->pid && conn == (long)((m->major << 20) | m->minor))
					m->pid = (pid_t)strtol(p->d_name, NULL, 10);
			}
		}
		closedir(fds);
		free(path);
	}
	closedir(proc);
}

/* From /proc/PID: the effective capabilities, oom_score_adj and the soft
 * RLIMIT_MEMLOCK (UINT64_MAX: unlimited). false when unreadable. */
struct daemon_info {
	uint64_t cap_eff;
	long oom_score_adj;
	uint64_t memlock;
};

static bool daemon_info(pid_t pid, struct daemon_info *di)
{
	char *path, *text, *p;
	bool ok = false;

	if (asprintf(&path, "/proc/%d/status", (int)pid) < 0)
		return false;
	if (read_text(path, &text) == 0) {
		p = strstr(text, "\nCapEff:");
		ok = p && sscanf(p + 8, "%" SCNx64, &di->cap_eff) == 1;
		free(text);
	}
	free(path);
	if (!ok || asprintf(&path, "/proc/%d/oom_score_adj", (int)pid) < 0)
		return false;
	ok = read_text(path, &text) == 0;
	free(path);
	if (!ok)
		return false;
	di->oom_score_adj = strtol(text, NULL, 10);
	free(text);
	di->memlock = UINT64_MAX;
	if (asprintf(&path, "/proc/%d/limits", (int)pid) < 0)
		return false;
	if (read_text(path, &text) == 0) {
		p = strstr(text, "Max locked memory");
		if (p) {
			p += strlen("Max locked memory");
			while (*p == ' ')
				p++;
			if (isdigit((unsigned char)*p))
				di->memlock = strtoull(p, NULL, 10);
		}
		free(text);
	}
	free(path);
	return true;
}

/* ---- rendering cells ---- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	return d;
}

__attribute__((format(printf, 1, 2)))
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	return s;
}

/* Bytes: a number with --bytes (and --raw), else one decimal of the
 * largest binary unit below the value, as zramctl (4.0KiB, 74.2MiB). */
static char *fmt_size(const struct options *o, uint64_t v)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	if (o->bytes || o->raw)
		return xasprintf("%" PRIu64, v);
	if (v < 1024)
		return xasprintf("%" PRIu64 "B", v);
	while (u < 5 && (u < 0 || d >= 1024.0)) {
		d /= 1024.0;
		u++;
	}
	/* 1023.96 would print as 1024.0 of this unit: use the next one. */
	if (u < 5 && d >= 1023.95) {
		d /= 1024.0;
		u++;
	}
	return xasprintf("%.1f%ciB", d, units[u]);
}

static char *fmt_count(uint64_t v)
{
	return xasprintf("%" PRIu64, v);
}

static char *fmt_stat_size(const struct options *o, const struct ctl_stat *st,
			   enum stat_id id)
{
	return st->have[id] ? fmt_size(o, st->val[id]) : xstrdup("-");
}

static char *fmt_stat_count(const struct ctl_stat *st, enum stat_id id)
{
	return st->have[id] ? fmt_count(st->val[id]) : xstrdup("-");
}

/* A mount's swap devices, comma separated, or "-". file: only the one
 * backed by that file (a path from the mount's root). */
static char *fmt_swaps(const struct state *s, size_t mi, const char *file)
{
	const struct mount *m = &s->mounts[mi];
	char *out = NULL;

	for (size_t i = 0; i < s->nswaps; i++) {
		const struct swap_dev *sw = &s->swaps[i];
		char *n;

		if (sw->mount != (int)mi)
			continue;
		if (file) {
			size_t len = strcmp(m->dir, "/") ? strlen(m->dir) : 0;

			if (strcmp(sw->backing + len, file) != 0)
				continue;
		}
		n = out ? xasprintf("%s,%s", out, sw->dev) : xstrdup(sw->dev);
		free(out);
		out = n;
	}
	return out ? out : xstrdup("-");
}

/* Compressed bytes folding saves: what the files refer to, each shared
 * object counted once per page naming it (the files' compr_bytes added
 * up), minus what is stored (compr_data_size, each object once). */
static bool saved_fold(const struct mount *m, uint64_t *saved)
{
	uint64_t refs = 0;

	if (!m->have_files || !m->st.have[ST_COMPR_DATA_SIZE])
		return false;
	for (size_t i = 0; i < m->nfiles; i++)
		refs += m->files[i].compr_bytes;
	/* Two snapshots: while pages are written they may disagree. */
	*saved = refs > m->st.val[ST_COMPR_DATA_SIZE] ?
		 refs - m->st.val[ST_COMPR_DATA_SIZE] : 0;
	return true;
}

/* yes, or no with the reason the daemon's /proc entry gives. */
static char *fmt_safety(const struct options *o, const struct mount *m,
			enum col_id col)
{
	static const enum stat_id ids[] = {
		[COL_LOCKED] = ST_MLOCKED,
		[COL_IO_FLUSHER] = ST_IO_FLUSHER,
		[COL_OOM_PROTECT] = ST_OOM_PROTECTED,
	};
	enum stat_id id = ids[col];
	struct daemon_info di;
	char *lim, *s;

	if (!m->st.have[id])
		return xstrdup("-");
	if (m->st.val[id])
		return xstrdup("yes");
	if (!m->pid || !daemon_info(m->pid, &di))
		return xstrdup("no");
	switch (col) {
	case COL_LOCKED:
		if (di.cap_eff & (UINT64_C(1) << CAP_IPC_LOCK_BIT))
			return xstrdup("no (mlockall failed)");
		if (di.memlock == UINT64_MAX)
			return xstrdup("no (no CAP_IPC_LOCK)");
		lim = fmt_size(o, di.memlock);
		s = xasprintf("no (no CAP_IPC_LOCK, RLIMIT_MEMLOCK %s)", lim);
		free(lim);
		return s;
	case COL_IO_FLUSHER:
		if (di.cap_eff & (UINT64_C(1) << CAP_SYS_RESOURCE_BIT))
			return xstrdup("no (refused by the kernel)");
		return xstrdup("no (no CAP_SYS_RESOURCE)");
	default:
		if (di.cap_eff & (UINT64_C(1) << CAP_SYS_RESOURCE_BIT))
			return xasprintf("no (oom_score_adj %ld)", di.oom_score_adj);
		return xasprintf("no (oom_score_adj %ld, no CAP_SYS_RESOURCE)",
				 di.oom_score_adj);
	}
}

static char *mount_cell(const struct options *o, const struct state *s,
			size_t mi, enum col_id col)
{
	const struct mount *m = &s->mounts[mi];
	const struct ctl_stat *st = &m->st;
	bool swap = mount_has_swap(s, mi);
	uint64_t v = 0;

	switch (col) {
	case COL_MOUNTPOINT:
		return xstrdup(m->dir);
	case COL_FILE:
		return xstrdup("-");
	case COL_SIZE:
		if (!m->have_files)
			return xstrdup("-");
		for (size_t i = 0; i < m->nfiles; i++)
			v += m->files[i].size;
		return fmt_size(o, v);
	case COL_DATA:
		return fmt_stat_size(o, st, ST_ORIG_DATA_SIZE);
	case COL_COMPR:
		return fmt_stat_size(o, st, ST_COMPR_DATA_SIZE);
	case COL_TOTAL:
		return fmt_stat_size(o, st, ST_MEM_USED_TOTAL);
	case COL_RATIO:
		if (!st->have[ST_ORIG_DATA_SIZE] || !st->have[ST_MEM_USED_TOTAL] ||
		    st->val[ST_MEM_USED_TOTAL] == 0)
			return xstrdup("-");
		return xasprintf("%.2f", (double)st->val[ST_ORIG_DATA_SIZE] /
					 (double)st->val[ST_MEM_USED_TOTAL]);
	case COL_LIMIT:
		if (st->have[ST_MEM_LIMIT] && st->val[ST_MEM_LIMIT] == 0)
			return xstrdup("-");
		return fmt_stat_size(o, st, ST_MEM_LIMIT);
	case COL_SAVED_FOLD:
		return saved_fold(m, &v) ? fmt_size(o, v) : xstrdup("-");
	case COL_FOLDED:
		return fmt_stat_count(st, ST_PAGES_FOLDED);
	case COL_SAME:
		return fmt_stat_count(st, ST_SAME_PAGES);
	case COL_COLD:
		return fmt_stat_count(st, ST_RECOMP_PAGES);
	case COL_IDLE:
		return fmt_stat_count(st, ST_IDLE_PAGES);
	case COL_INTAKE:
		return xstrdup(st->intake ? st->intake : "-");
	case COL_COLD_CODEC:
		return xstrdup(st->recomp_algorithm ? st->recomp_algorithm : "-");
	case COL_FILES:
		return fmt_stat_count(st, ST_FILES);
	case COL_SWAP:
		return fmt_swaps(s, mi, NULL);
	case COL_ZSWAP_POOL:
		return swap && m->have_zswap ? fmt_size(o, m->zs.pool_bytes) : xstrdup("-");
	case COL_ZSWAP_STORED:
		return swap && m->have_zswap ? fmt_size(o, m->zs.stored_bytes) : xstrdup("-");
	case COL_ZSWAP_WB:
		return swap && m->have_zswap ? fmt_count(m->zs.zswpwb) : xstrdup("-");
	case COL_TOTAL_BOTH:
		if (!swap || !m->have_zswap || !st->have[ST_MEM_USED_TOTAL])
			return xstrdup("-");
		return fmt_size(o, m->zs.pool_bytes + st->val[ST_MEM_USED_TOTAL]);
	case COL_PID:
		return m->pid ? xasprintf("%d", (int)m->pid) : xstrdup("-");
	case COL_LOCKED:
	case COL_IO_FLUSHER:
	case COL_OOM_PROTECT:
		return fmt_safety(o, m, col);
	case COL_NR:
		break;
	}
	return xstrdup("-");
}

static char *file_cell(const struct options *o, const struct state *s,
		       size_t mi, const struct file_row *f, enum col_id col)
{
	switch (col) {
	case COL_MOUNTPOINT:
		return xstrdup(s->mounts[mi].dir);
	case COL_FILE:
		return xstrdup(f->path);
	case COL_SIZE:
		return fmt_size(o, f->size);
	case COL_DATA:
		return fmt_size(o, f->pages * PAGE_BYTES);
	case COL_COMPR:
		return fmt_size(o, f->compr_bytes);
	case COL_SAVED_FOLD:
		/* What the file refers to, minus its own objects and its part
		 * of the shared ones: its part of the mount's SAVED-FOLD. */
		if (!f->have_split)
			return xstrdup("-");
		return fmt_size(o, f->compr_bytes > f->own_bytes + f->shared_bytes ?
			       f->compr_bytes - f->own_bytes - f->shared_bytes : 0);
	case COL_FOLDED:
		return fmt_count(f->folded);
	case COL_SAME:
		return fmt_count(f->same);
	case COL_SWAP:
		return fmt_swaps(s, mi, f->path);
	default:
		return xstrdup("-");
	}
}

/* --raw: blanks, backslashes and control characters as \xHH, as lsblk
 * --raw writes them, so that a cell is one word. Otherwise only control
 * characters, so that a row is one line. */
static char *escape_cell(const struct options *o, char *cell)
{
	size_t n = 0;
	char *out, *p;

	for (p = cell; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < ' ' || c == 0x7f || (o->raw && (c == ' ' || c == '\\')))
			n++;
	}
	if (n == 0)
		return cell;
	out = malloc(strlen(cell) + 3 * n + 1);
	if (!out) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	p = out;
	for (const char *c = cell; *c; c++) {
		unsigned char u = (unsigned char)*c;

		if (u < ' ' || u == 0x7f || (o->raw && (u == ' ' || u == '\\')))
			p += sprintf(p, "\\x%02x", u);
		else
			*p++ = *c;
	}
	*p = '\0';
	free(cell);
	return out;
}

/* ---- the table ---- */

struct table {
	size_t ncols;
	char **cells;            /* nrows * ncols */
	size_t nrows;
};

static void table_add_row(struct table *t, char **row)
{
	char **nc = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*nc));

	if (!nc) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	t->cells = nc;
	memcpy(&t->cells[t->nrows * t->ncols], row, t->ncols * sizeof(*row));
	t->nrows++;
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
}

static void table_print(const struct options *o, const struct table *t)
{
	size_t *width = calloc(t->ncols, sizeof(*width));

	if (!width) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	for (size_t c = 0; c < t->ncols; c++) {
		width[c] = o->noheadings ? 0 : strlen(columns[o->cols[c]].name);
		for (size_t r = 0; r < t->nrows; r++) {
			size_t w = strlen(t->cells[r * t->ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = o->noheadings ? 1 : 0; r <= t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = r == 0 ? columns[o->cols[c]].name :
					   t->cells[(r - 1) * t->ncols + c];
			bool last = c + 1 == t->ncols;
			int w = (int)width[c];

			if (c > 0)
				putchar(' ');
			if (o->raw)
				fputs(cell, stdout);
			else if (columns[o->cols[c]].right)
				printf("%*s", w, cell);
			else if (last)
				fputs(cell, stdout);
			else
				printf("%-*s", w, cell);
		}
		putchar('\n');
	}
	free(width);
}

static void add_row(const struct options *o, struct table *t,
		    const struct state *s, size_t mi, const struct file_row *f)
{
	char *row[COL_NR * 4];

	for (size_t c = 0; c < o->ncols; c++) {
		char *cell = f ? file_cell(o, s, mi, f, o->cols[c]) :
				 mount_cell(o, s, mi, o->cols[c]);

		row[c] = escape_cell(o, cell);
	}
	table_add_row(t, row);
}

/* ---- gathering ---- */

static bool selected(const struct options *o, enum col_id col)
{
	for (size_t i = 0; i < o->ncols; i++)
		if (o->cols[i] == col)
			return true;
	return false;
}

/* Read what the selected columns need of every selected mount; a mount
 * that cannot be read is reported and left out. 0, or 1 if any failed. */
static int gather(const struct options *o, struct state *s)
{
	bool need_files = o->files || selected(o, COL_SIZE) ||
			  selected(o, COL_SAVED_FOLD);
	bool need_zswap = selected(o, COL_ZSWAP_POOL) ||
			  selected(o, COL_ZSWAP_STORED) ||
			  selected(o, COL_ZSWAP_WB) || selected(o, COL_TOTAL_BOTH);
	bool need_pid = selected(o, COL_PID);
	int status = 0, ret;

	for (size_t i = 0; i < s->nmounts; i++) {
		struct mount *m = &s->mounts[i];

		if (!m->selected)
			continue;
		m->err_what = "stat";
		ret = load_stat(m);
		if (!ret && need_files) {
			m->err_what = "files";
			ret = load_files(m);
		}
		if (!ret && need_zswap && mount_has_swap(s, i)) {
			m->err_what = "zswap_stat";
			ret = load_zswap(m);
		}
		if (ret) {
			fprintf(stderr, "%s: %s: cannot read .ctl/%s: %s\n", prog,
				m->dir, m->err_what, strerror(-ret));
			m->err = ret;
			status = 1;
			continue;
		}
		for (int id = ST_MLOCKED; id <= ST_OOM_PROTECTED; id++)
			if (m->st.have[id] && !m->st.val[id] &&
			    (selected(o, COL_LOCKED) || selected(o, COL_IO_FLUSHER) ||
			     selected(o, COL_OOM_PROTECT)))
				need_pid = true;
	}
	if (need_pid)
		find_daemons(s);
	return status;
}

static void state_free(struct state *s)
{
	for (size_t i = 0; i < s->nmounts; i++) {
		struct mount *m = &s->mounts[i];

		for (size_t j = 0; j < m->nfiles; j++)
			free(m->files[j].path);
		free(m->files);
		free(m->st.intake);
		free(m->st.recomp_algorithm);
		free(m->dir);
	}
	free(s->mounts);
	for (size_t i = 0; i < s->nswaps; i++) {
		free(s->swaps[i].dev);
		free(s->swaps[i].backing);
	}
	free(s->swaps);
}

/* ---- options ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s [options] [mountpoint...]\n\n"
		"Shows every pagefold mount (or those named): what it holds, in what\n"
		"memory, its settings, the swap devices backed by its files and\n"
		"whether its daemon is safe to swap to.\n\n"
		"options:\n"
		"    -f, --files          a row for every file holding pages too\n"
		"    -b, --bytes          sizes in bytes, not KiB/MiB/GiB\n"
		"    -r, --raw            raw output: space separated, sizes in bytes,\n"
		"                         blanks and backslashes written as \\xHH\n"
		"    -n, --noheadings     no header line\n"
		"    -o, --output LIST    the columns, comma separated (+LIST: added\n"
		"                         to the default ones)\n"
		"        --output-all     every column\n"
		"    -h, --help           print this help\n"
		"    -V, --version        print the version\n\n"
		"columns (default: MOUNTPOINT,SIZE,DATA,COMPR,TOTAL,RATIO,LIMIT,\n"
		"SAVED-FOLD,COLD,IDLE,FILES,SWAP; FILE after MOUNTPOINT with -f):\n",
		prog);
	for (int c = 0; c < COL_NR; c++)
		fprintf(out, "    %-13s %s\n", columns[c].name, columns[c].help);
	fprintf(out, "\nSee pagefoldctl(8).\n");
}

static int add_col(struct options *o, enum col_id col)
{
	if (o->ncols >= sizeof(o->cols) / sizeof(o->cols[0]))
		return -E2BIG;
	o->cols[o->ncols++] = col;
	return 0;
}

static void default_columns(struct options *o)
{
	o->ncols = 0;
	for (size_t i = 0; i < NR_DEFAULT_COLS; i++) {
		add_col(o, default_cols[i]);
		if (default_cols[i] == COL_MOUNTPOINT && o->files)
			add_col(o, COL_FILE);
	}
}

/* "COL,COL,..." (names in any case), or "+COL,..." after the defaults.
 * -EINVAL with a message for an unknown name. */
static int parse_columns(struct options *o, const char *list)
{
	char *copy, *save = NULL, *w;
	int ret = 0;

	if (*list == '+') {
		default_columns(o);
		list++;
	} else {
		o->ncols = 0;
	}
	copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	for (w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		int c;

		for (c = 0; c < COL_NR; c++)
			if (strcasecmp(w, columns[c].name) == 0)
				break;
		if (c == COL_NR) {
			fprintf(stderr, "%s: unknown column: %s (see --help)\n", prog, w);
			ret = -EINVAL;
			break;
		}
		if (add_col(o, (enum col_id)c)) {
			fprintf(stderr, "%s: too many columns\n", prog);
			ret = -EINVAL;
			break;
		}
	}
	free(copy);
	if (!ret && o->ncols == 0) {
		fprintf(stderr, "%s: no columns given\n", prog);
		ret = -EINVAL;
	}
	return ret;
}

enum { OPT_OUTPUT_ALL = 0x100 };

/* 0, or the exit status: 2 for bad usage, -1 for done (help, version). */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "files", no_argument, NULL, 'f' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "raw", no_argument, NULL, 'r' },
		{ "noheadings", no_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "output-all", no_argument, NULL, OPT_OUTPUT_ALL },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *list = NULL;
	bool all = false;
	int c;

	while ((c = getopt_long(argc, argv, "fbrno:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': o->files = true; break;
		case 'b': o->bytes = true; break;
		case 'r': o->raw = true; break;
		case 'n': o->noheadings = true; break;
		case 'o': list = optarg; all = false; break;
		case OPT_OUTPUT_ALL: all = true; list = NULL; break;
		case 'h':
			usage(stdout);
			return -1;
		case 'V':
			printf("%s from pagefold %s\n", prog, PF_VERSION);
			return -1;
		default:
			fprintf(stderr, "Try '%s --help'.\n", prog);
			return 2;
		}
	}
	if (all) {
		o->ncols = 0;
		for (int col = 0; col < COL_NR; col++)
			add_col(o, (enum col_id)col);
	} else if (list) {
		if (parse_columns(o, list))
			return 2;
	} else {
		default_columns(o);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct state s = { 0 };
	struct table t = { 0 };
	int status, ret;

	status = parse_args(argc, argv, &o);
	if (status)
		return status < 0 ? 0 : status;

	ret = find_mounts(&s);
	if (ret) {
		fprintf(stderr, "%s: cannot read /proc/self/mountinfo: %s\n",
			prog, strerror(-ret));
		state_free(&s);
		return 1;
	}
	if (select_mounts(&s, argv + optind, argc - optind)) {
		state_free(&s);
		return 1;
	}
	ret = find_swaps(&s);
	if (ret)
		fprintf(stderr, "%s: cannot read the swap devices: %s\n", prog,
			strerror(-ret));
	status = gather(&o, &s);

	t.ncols = o.ncols;
	for (size_t i = 0; i < s.nmounts; i++) {
		const struct mount *m = &s.mounts[i];

		if (!m->selected || m->err)
			continue;
		add_row(&o, &t, &s, i, NULL);
		if (!o.files)
			continue;
		for (size_t j = 0; j < m->nfiles; j++)
			add_row(&o, &t, &s, i, &m->files[j]);
	}
	table_print(&o, &t);
	table_free(&t);
	state_free(&s);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "%s: writing the output: %s\n", prog, strerror(errno));
		return 1;
	}
	return status;
}
