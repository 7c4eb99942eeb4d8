// SPDX-License-Identifier: MIT
/*
 * pf-memdump - copy pages of real programs' memory into a file, as test
 * data that compresses and repeats the way swapped memory does.
 *
 *   pf-memdump OUT MAX_MIB PID...
 *
 * Reads every readable mapping of each PID through /proc/PID/mem (root, or
 * the processes' owner) and appends whole pages to OUT until MAX_MIB have
 * been written. Prints the number of pages written.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096u

int main(int argc, char **argv)
{
	static unsigned char buf[64 * PAGE];
	uint64_t max, written = 0;
	int out;

	if (argc < 4) {
		fprintf(stderr, "usage: %s OUT MAX_MIB PID...\n", argv[0]);
		return 2;
	}
	max = strtoull(argv[2], NULL, 0) * 1024 * 1024;
	out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0) {
		perror(argv[1]);
		return 1;
	}
	for (int a = 3; a < argc && written < max; a++) {
		char path[64], line[512];
		FILE *maps;
		int mem;

		snprintf(path, sizeof(path), "/proc/%s/maps", argv[a]);
		maps = fopen(path, "r");
		snprintf(path, sizeof(path), "/proc/%s/mem", argv[a]);
		mem = open(path, O_RDONLY);
		if (!maps || mem < 0) {
			fprintf(stderr, "pf-memdump: cannot read pid %s\n", argv[a]);
			if (maps)
				fclose(maps);
			if (mem >= 0)
				close(mem);
			continue;
		}
		while (written < max && fgets(line, sizeof(line), maps)) {
			unsigned long long start, end;
			char perms[8];

			if (sscanf(line, "%llx-%llx %7s", &start, &end, perms) != 3 ||
			    perms[0] != 'r' || strstr(line, "[vvar") ||
			    strstr(line, "[vsyscall]"))
				continue;
			for (uint64_t off = start; off < end && written < max;) {
				size_t len = sizeof(buf);
				ssize_t n;

				if (len > end - off)
					len = (size_t)(end - off);
				if (len > max - written)
					len = (size_t)(max - written);
				n = pread(mem, buf, len, (off_t)off);
				if (n <= 0) {
					off += PAGE; /* unreadable page */
					continue;
				}
				n -= n % PAGE;
				if (n == 0 || write(out, buf, (size_t)n) != n)
					break;
				written += (uint64_t)n;
				off += (uint64_t)n;
			}
		}
		fclose(maps);
		close(mem);
	}
	close(out);
	printf("%llu\n", (unsigned long long)(written / PAGE));
	return written ? 0 : 1;
}
