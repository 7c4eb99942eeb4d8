/* SPDX-License-Identifier: MIT */
/*
 * codec.h - what happens to the bytes of one page: same-filled detection,
 * LZ4 compression and decompression, per-thread scratch pages.
 *
 * Scratch memory is thread-local (static TLS, allocated with the thread):
 * the LZ4 compression state (16 KiB) and two page buffers, 24 KiB per
 * thread that ever compresses. It is not counted in mem_used_total, as
 * zram's per-CPU compression streams are not: it belongs to the threads,
 * not to the stored data.
 */
#ifndef PAGEFOLD_STORE_CODEC_H
#define PAGEFOLD_STORE_CODEC_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"	/* enum store_cold_algo, STORE_GROUP_MAX */

#define CODEC_PAGE 4096u

/* True when the page is one 8-byte word repeated (zero pages included);
 * the word is stored in *pattern. */
bool codec_same_filled(const void *page, uint64_t *pattern);

/* Fill a page with an 8-byte pattern. */
void codec_fill(void *page, uint64_t pattern);

/*
 * LZ4-compress a page into dst, which holds cap bytes. Returns the
 * compressed size (1..cap), or 0 when the result would not fit in cap
 * bytes: the caller then stores the page raw.
 */
unsigned int codec_compress(const void *page, void *dst, unsigned int cap);

/* Decompress len bytes into a full page; -EIO unless exactly one page
 * comes out (corruption). */
int codec_decompress(const void *src, unsigned int len, void *page);

/* This thread's two scratch pages, by what they hold. */
enum codec_scratch {
	SCRATCH_OUT,	/* a write's compression output; the fold scan's
			   decoded page */
	SCRATCH_IN,	/* stored bytes: a read's copy of its object, the
			   decoded page a fold content check compares */
};
void *codec_scratch(enum codec_scratch which);

/*
 * Allocate and write through, in the calling thread, everything its reads
 * and writes of pages use: the LZ4 state, the scratch pages and, where zstd
 * is built in, the zstd decoding context (one page round trip each). A
 * thread that serves swap calls it before its first request, so that
 * reading a cold page never allocates (under mlockall the pages are then
 * locked too). Compressing with the cold codec allocates its context on
 * first use, unless codec_cold_prepare() made it. Idempotent.
 * 0, -ENOMEM, or -EIO if a round trip came back wrong.
 */
int codec_thread_prepare(void);

/*
 * Any stored object back into its page: an object of CODEC_PAGE bytes is
 * the raw page, one that starts with the zstd frame magic is a zstd frame,
 * anything else is an LZ4 block. The magic cannot open a valid LZ4 block of
 * a page: its bytes 28 b5 2f fd would be a first sequence of 2 literals
 * followed by a match at offset >= 253, further back than the 2 bytes
 * written so far, which every LZ4 decoder rejects (and LZ4 compressors,
 * LZ4HC included, never emit). So the object itself says how to read it,
 * and a shared object can change codec without touching the slots naming
 * it. -EIO unless exactly one page comes out.
 */
int codec_decode(const void *obj, unsigned int size, void *page);

/*
 * The cold codec, for pages idle long enough to be worth more CPU: zstd
 * (frames without checksum, content size or dictionary id: the slot knows
 * the size) or LZ4HC (plain LZ4 blocks, read by LZ4). Each thread that
 * uses it gets its contexts on first use, freed when the thread exits
 * (measured with ZSTD_sizeof_*() after a 4 KiB page at level 6: 88 KiB to
 * compress, 94 KiB to decompress; LZ4HC: 256 KiB); like the LZ4 state they
 * belong to the threads, not to the stored data, and are not counted in
 * mem_used_total.
 */
/* Name ("zstd", "lz4hc"), level range and default level of a codec. */
const char *codec_cold_name(enum store_cold_algo c);
void codec_cold_levels(enum store_cold_algo c, int *min, int *max, int *def);
/* False when pagefold was built without it (zstd is a build option). */
bool codec_cold_available(enum store_cold_algo c);

/* Allocate the calling thread's context for compressing with codec c at
 * level (one page compressed and checked), for threads that compress with
 * it on a path that must not allocate (a cold intake). zstd sizes its
 * context to the level: prepare the level that will be used. 0, -ENOMEM,
 * -EIO, or -EOPNOTSUPP for a codec this build lacks. */
int codec_cold_prepare(enum store_cold_algo c, int level);

/* Compress a page with the cold codec into dst (cap bytes); the size, or
 * 0 when the result would not be smaller than cap or the contexts could
 * not be allocated. */
unsigned int codec_cold_compress(enum store_cold_algo c, int level,
				 const void *page, void *dst, unsigned int cap);

/*
 * Groups: up to CODEC_GROUP_MAX pages in one zstd frame (recompress.c). A
 * thread that reads a grouped page decodes the whole frame into its group
 * scratch, and keeps it there: the next read of a page of the same group
 * (serial) is a copy. The scratch (two buffers of a page per page of the
 * largest group the thread met: 64 KiB for groups of 8; allocated at a
 * thread's first group, freed when the thread exits) is counted, all
 * threads' together, by codec_group_scratch_bytes(), which mem_used_total
 * includes.
 */
#define CODEC_GROUP_MAX STORE_GROUP_MAX	/* the walk's buffers' size */

struct codec_group_scratch {
	uint64_t serial;	/* group whose pages out holds; 0 = none */
	unsigned int cap;	/* pages each buffer holds */
	unsigned char *in;	/* a frame (smaller than its pages) */
	unsigned char *out;	/* its pages */
};

/* This thread's group scratch, with room for a group of npages, or NULL
 * when it cannot be allocated. */
struct codec_group_scratch *codec_group_scratch(unsigned int npages);
/* Bytes of group scratch held by all threads. */
uint64_t codec_group_scratch_bytes(void);
/* False when built without zstd (no groups then). */
bool codec_group_available(void);
/* zstd-compress len bytes of pages (a multiple of a page) at level into
 * dst (cap bytes): the frame's size, or 0 when it would not be smaller
 * than cap (or no context). */
unsigned int codec_group_compress(int level, const void *pages,
				  unsigned int len, void *dst, unsigned int cap);
/* Decode a group frame into npages pages; -EIO unless exactly that many
 * come out, -ENOMEM without a context. */
int codec_group_decode(const void *frame, unsigned int len, void *pages,
		       unsigned int npages);

#endif /* PAGEFOLD_STORE_CODEC_H */
