// SPDX-License-Identifier: MIT
/*
 * dump-pages - copy the resident pages of a running process as raw 4 KiB
 * pages, to build benchmark data sets from real programs' memory.
 *
 *   dump-pages [-a] [-s] [-v] [-o FILE] PID
 *
 * It walks /proc/PID/maps, asks /proc/PID/pagemap which pages are present in
 * RAM or swapped out (what a swap device would really be handed), and copies
 * those pages from /proc/PID/mem. Pages never touched (not present, not
 * swapped) are skipped, so a large sparse heap does not turn into zeros.
 *
 * By default only anonymous memory is dumped, which is what swap sees:
 * mappings without a file ([heap], [stack], [anon:...], plain anonymous
 * ones) and private writable file mappings (.data, .bss, COW copies), of
 * which only the pages pagemap does not flag as file or shared pages, i.e.
 * the private copies. Shared mappings and the kernel's [vdso]/[vvar]/
 * [vsyscall] are never dumped. -a dumps every readable mapping instead
 * (file-backed text and read-only data included) and keeps every present or
 * swapped page.
 *
 * Reading /proc/PID/mem swaps swapped-out pages back in; that is harmless
 * for a benchmark source. -s stops the process (SIGSTOP) while it is read and
 * continues it afterwards, for a consistent snapshot.
 *
 * Exit status: 0 pages dumped; 1 usage error; 2 the process cannot be read
 * (gone, no permission); 3 the output cannot be written; 4 nothing to dump.
 * A page that vanishes while it is read (the process unmapped it) is skipped
 * and counted, not an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define PAGE_SZ		4096UL
#define BATCH_PAGES	256UL	/* pages per pagemap and mem read */

#define PM_PRESENT	(1ULL << 63)
#define PM_SWAPPED	(1ULL << 62)
#define PM_FILE_SHARED	(1ULL << 61)	/* file page or shared anonymous */
#define PM_PFN_MASK	((1ULL << 55) - 1)	/* 0 unless CAP_SYS_ADMIN */
#define KPF_ZERO_PAGE	(1ULL << 24)	/* /proc/kpageflags */

enum exit_code {
	EXIT_OK = 0,
	EXIT_USAGE = 1,
	EXIT_PROC = 2,
	EXIT_OUTPUT = 3,
	EXIT_EMPTY = 4,
};

struct dump {
	pid_t pid;
	bool all;		/* -a: every readable mapping */
	bool verbose;
	int mem_fd;
	int pagemap_fd;
	int out_fd;
	int kpageflags_fd;	/* -1: cannot tell the shared zero page */
	/* counts for the -v summary */
	uint64_t maps_seen;
	uint64_t maps_dumped;
	uint64_t pages_written;
	uint64_t pages_swapped;
	uint64_t pages_vanished;
	uint64_t pages_zero_mapped;
	uint64_t buf[BATCH_PAGES];
	unsigned char data[BATCH_PAGES * PAGE_SZ] __attribute__((aligned(4096)));
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dump-pages [-a] [-s] [-v] [-o FILE] PID\n"
		"Write the resident (present or swapped) pages of process PID as raw\n"
		"4096-byte pages, anonymous memory only unless -a.\n"
		"  -a       every readable mapping, file-backed ones included\n"
		"  -s       stop the process while dumping (SIGSTOP/SIGCONT)\n"
		"  -o FILE  write to FILE (created or truncated) instead of stdout\n"
		"  -v       print a summary to stderr\n"
		"  -h       this help\n"
		"exit: 0 ok, 1 usage, 2 process unreadable, 3 output error, 4 nothing dumped\n");
}

static int write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Full pread, or -errno; a short read at EOF returns what was read. */
static ssize_t pread_all(int fd, void *buf, size_t len, off_t off)
{
	unsigned char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/*
 * Is the mapping one that swap would see? perms is "rwxp"-style, path is
 * the maps line's last field ("" for plain anonymous memory).
 */
static bool map_is_anon(const char *perms, const char *path)
{
	bool priv = perms[3] == 'p';
	bool writable = perms[1] == 'w';

	if (!priv)
		return false;	/* shared: file pages, or shmem */
	if (!path[0])
		return true;
	if (!strcmp(path, "[heap]") || !strncmp(path, "[stack", 6) ||
	    !strncmp(path, "[anon:", 6))
		return true;
	if (path[0] == '[')
		return false;	/* [vdso], [vvar], [vsyscall], ... */
	return writable;	/* private file mapping: only COW copies count */
}

static bool map_is_special(const char *path)
{
	return !strcmp(path, "[vsyscall]") || !strncmp(path, "[vvar", 5);
}

/*
 * Is the page the kernel's shared zero page (anonymous memory that was only
 * read, never written)? It is never swapped, so anonymous dumps skip it.
 * Needs root (PFNs and /proc/kpageflags); otherwise such pages are kept.
 */
static bool page_is_zero_mapped(struct dump *d, uint64_t e)
{
	uint64_t pfn = e & PM_PFN_MASK, flags;

	if (d->kpageflags_fd < 0 || !pfn)
		return false;
	if (pread(d->kpageflags_fd, &flags, sizeof(flags),
		  (off_t)(pfn * sizeof(flags))) != sizeof(flags))
		return false;
	return flags & KPF_ZERO_PAGE;
}

/*
 * A page swap would see: present or swapped out; in a private file mapping
 * (file_backed) only the private copies, not the file's own page cache
 * pages; never the shared zero page. With -a: every present or swapped page.
 */
static bool page_wanted(struct dump *d, uint64_t e, bool file_backed)
{
	if (e & PM_SWAPPED)
		return true;
	if (!(e & PM_PRESENT))
		return false;
	if (d->all)
		return true;
	if (file_backed && (e & PM_FILE_SHARED))
		return false;
	if (page_is_zero_mapped(d, e)) {
		d->pages_zero_mapped++;
		return false;
	}
	return true;
}

/*
 * Copy the wanted pages of [start, end) to the output, reading runs of
 * consecutive wanted pages with one pread each.
 */
static int dump_range(struct dump *d, uint64_t start, uint64_t end,
		      bool file_backed)
{
	uint64_t va = start;

	while (va < end) {
		uint64_t n = (end - va) / PAGE_SZ;
		uint64_t i = 0;
		ssize_t got;

		if (n > BATCH_PAGES)
			n = BATCH_PAGES;
		got = pread_all(d->pagemap_fd, d->buf, n * sizeof(uint64_t),
				(off_t)(va / PAGE_SZ * sizeof(uint64_t)));
		if (got < 0) {
			fprintf(stderr, "dump-pages: pid %d pagemap: %s\n",
				d->pid, strerror((int)-got));
			return EXIT_PROC;
		}
		n = (uint64_t)got / sizeof(uint64_t);
		if (!n)
			return 0;

		/* runs of wanted pages, each read with one pread */
		while (i < n) {
			uint64_t run = 0, j;
			ssize_t r;

			while (i < n && !page_wanted(d, d->buf[i], file_backed))
				i++;
			while (i + run < n &&
			       page_wanted(d, d->buf[i + run], file_backed)) {
				if (d->buf[i + run] & PM_SWAPPED)
					d->pages_swapped++;
				run++;
			}
			if (!run)
				break;

			r = pread_all(d->mem_fd, d->data, run * PAGE_SZ,
				      (off_t)(va + i * PAGE_SZ));
			if (r != (ssize_t)(run * PAGE_SZ)) {
				/* fall back to one page at a time */
				r = 0;
				for (j = 0; j < run; j++) {
					ssize_t one = pread_all(d->mem_fd,
						d->data + r, PAGE_SZ,
						(off_t)(va + (i + j) * PAGE_SZ));

					if (one == (ssize_t)PAGE_SZ)
						r += (ssize_t)PAGE_SZ;
					else
						d->pages_vanished++;
				}
			}
			if (r > 0) {
				int err = write_all(d->out_fd, d->data, (size_t)r);

				if (err) {
					fprintf(stderr, "dump-pages: write: %s\n",
						strerror(-err));
					return EXIT_OUTPUT;
				}
				d->pages_written += (uint64_t)r / PAGE_SZ;
			}
			i += run;
		}
		va += n * PAGE_SZ;
	}
	return 0;
}

static int dump_maps(struct dump *d)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	FILE *maps;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", d->pid);
	maps = fopen(path, "re");
	if (!maps) {
		fprintf(stderr, "dump-pages: %s: %s\n", path, strerror(errno));
		return EXIT_PROC;
	}
	while (getline(&line, &cap, maps) > 0) {
		uint64_t start, end;
		char perms[8] = "";
		int name_at = 0;
		char *name;

		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %n",
			   &start, &end, perms, &name_at) < 3 || !name_at) {
			fprintf(stderr, "dump-pages: cannot parse maps line: %s",
				line);
			ret = EXIT_PROC;
			break;
		}
		name = line + name_at;
		name[strcspn(name, "\n")] = '\0';
		d->maps_seen++;

		if (perms[0] != 'r' || map_is_special(name))
			continue;
		if (!d->all && !map_is_anon(perms, name))
			continue;
		d->maps_dumped++;
		ret = dump_range(d, start, end,
				 name[0] && name[0] != '[' && !d->all);
		if (ret)
			break;
	}
	free(line);
	fclose(maps);
	return ret;
}

static int open_proc(pid_t pid, const char *what)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "dump-pages: %s: %s\n", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	const char *out_path = NULL;
	bool stop = false, stopped = false;
	struct dump *d;
	char *end;
	long pid;
	int c, ret;

	d = calloc(1, sizeof(*d));
	if (!d) {
		fprintf(stderr, "dump-pages: out of memory\n");
		return EXIT_USAGE;
	}
	d->mem_fd = d->pagemap_fd = d->kpageflags_fd = -1;
	d->out_fd = STDOUT_FILENO;

	while ((c = getopt(argc, argv, "aso:vh")) != -1) {
		switch (c) {
		case 'a':
			d->all = true;
			break;
		case 's':
			stop = true;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 'v':
			d->verbose = true;
			break;
		case 'h':
			usage(stdout);
			free(d);
			return EXIT_OK;
		default:
			usage(stderr);
			free(d);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		free(d);
		return EXIT_USAGE;
	}
	errno = 0;
	pid = strtol(argv[optind], &end, 10);
	if (errno || *end || pid <= 0 || pid > INT_MAX) {
		fprintf(stderr, "dump-pages: not a PID: '%s'\n", argv[optind]);
		free(d);
		return EXIT_USAGE;
	}
	d->pid = (pid_t)pid;

	ret = EXIT_PROC;
	d->mem_fd = open_proc(d->pid, "mem");
	if (d->mem_fd < 0)
		goto out_free;
	d->pagemap_fd = open_proc(d->pid, "pagemap");
	if (d->pagemap_fd < 0)
		goto out_close_mem;

	d->kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);

	if (out_path) {
		d->out_fd = open(out_path,
				 O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (d->out_fd < 0) {
			fprintf(stderr, "dump-pages: %s: %s\n", out_path,
				strerror(errno));
			ret = EXIT_OUTPUT;
			goto out_close_pagemap;
		}
	} else if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "dump-pages: refusing to write pages to a terminal; use -o FILE or a redirection\n");
		ret = EXIT_USAGE;
		goto out_close_pagemap;
	}

	if (stop) {
		if (kill(d->pid, SIGSTOP)) {
			fprintf(stderr, "dump-pages: SIGSTOP %d: %s\n", d->pid,
				strerror(errno));
			goto out_close_out;
		}
		stopped = true;
	}

	ret = dump_maps(d);

	if (!ret && out_path && fsync(d->out_fd) && errno != EINVAL) {
		fprintf(stderr, "dump-pages: %s: %s\n", out_path, strerror(errno));
		ret = EXIT_OUTPUT;
	}
	if (!ret && !d->pages_written) {
		fprintf(stderr, "dump-pages: pid %d: no pages to dump\n", d->pid);
		ret = EXIT_EMPTY;
	}
	if (d->verbose)
		fprintf(stderr,
			"dump-pages: pid %d: %" PRIu64 " of %" PRIu64
			" mappings, %" PRIu64 " pages (%.1f MiB) written, %"
			PRIu64 " of them swapped, %" PRIu64
			" vanished, %" PRIu64 " zero-page mappings skipped\n",
			d->pid, d->maps_dumped, d->maps_seen, d->pages_written,
			d->pages_written * PAGE_SZ / 1048576.0,
			d->pages_swapped, d->pages_vanished,
			d->pages_zero_mapped);
	if (stopped && kill(d->pid, SIGCONT))
		fprintf(stderr, "dump-pages: SIGCONT %d: %s\n", d->pid,
			strerror(errno));
out_close_out:
	if (out_path && d->out_fd >= 0 && close(d->out_fd) && !ret) {
		fprintf(stderr, "dump-pages: %s: %s\n", out_path, strerror(errno));
		ret = EXIT_OUTPUT;
	}
out_close_pagemap:
	if (d->kpageflags_fd >= 0)
		close(d->kpageflags_fd);
	close(d->pagemap_fd);
out_close_mem:
	close(d->mem_fd);
out_free:
	free(d);
	return ret;
}
