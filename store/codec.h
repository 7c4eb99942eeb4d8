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

/* This thread's scratch pages: 0 = compression output, 1 = verification. */
void *codec_scratch(unsigned int which);

#endif /* PAGEFOLD_STORE_CODEC_H */
