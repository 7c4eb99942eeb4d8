// SPDX-License-Identifier: MIT
/*
 * codec.c - same-filled detection, LZ4, and the cold codecs (zstd, LZ4HC)
 * for single pages.
 *
 * Compression uses LZ4_compress_fast_extState() with a thread-local state:
 * measured here on pages of a real process it is ~15% faster than
 * LZ4_compress_default() (which builds the state on the stack) and than
 * resetStream_fast() + compress_fast_continue(). No lock is taken here.
 */
#include <errno.h>
#include <lz4.h>
#include <lz4hc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "codec.h"

#define WORDS (CODEC_PAGE / sizeof(uint64_t))

static _Thread_local LZ4_stream_t tls_lz4;
static _Thread_local unsigned char tls_scratch[2][CODEC_PAGE]
	__attribute__((aligned(64)));

bool codec_same_filled(const void *page, uint64_t *pattern)
{
	const uint64_t *w = page;
	uint64_t v = w[0];
	size_t i;

	/* Most pages differ within the first words or at the very end. */
	if (w[WORDS - 1] != v || w[1] != v)
		return false;
	for (i = 2; i < WORDS - 1; i += 8) {
		uint64_t d = 0;
		size_t j, n = WORDS - 1 - i < 8 ? WORDS - 1 - i : 8;

		for (j = 0; j < n; j++)
			d |= w[i + j] ^ v;
		if (d)
			return false;
	}
	*pattern = v;
	return true;
}

void codec_fill(void *page, uint64_t pattern)
{
	uint64_t *w = page;
	size_t i;

	if (pattern == 0) {
		memset(page, 0, CODEC_PAGE);
		return;
	}
	for (i = 0; i < WORDS; i++)
		w[i] = pattern;
}

unsigned int codec_compress(const void *page, void *dst, unsigned int cap)
{
	int n;

	n = LZ4_compress_fast_extState(&tls_lz4, page, dst, CODEC_PAGE,
				       (int)cap, 1);
	return n > 0 ? (unsigned int)n : 0;
}

int codec_decompress(const void *src, unsigned int len, void *page)
{
	int n = LZ4_decompress_safe(src, page, (int)len, CODEC_PAGE);

	return n == (int)CODEC_PAGE ? 0 : -EIO;
}

void *codec_scratch(enum codec_scratch which)
{
	return tls_scratch[which == SCRATCH_IN];
}

/* ---- cold codecs ---- */

#define ZSTD_MAGIC 0xFD2FB528u /* little endian on disk */

/* Per-thread contexts of the cold codecs, allocated on first use. */
struct cold_ctx {
#ifdef HAVE_ZSTD
	ZSTD_CCtx *zc;
	int zc_level;
	ZSTD_DCtx *zd;
#endif
	void *hc;	/* LZ4HC state */
};

static pthread_key_t cold_key;
static pthread_once_t cold_once = PTHREAD_ONCE_INIT;
static bool cold_key_ok;
static _Thread_local struct cold_ctx *tls_cold;

static void cold_ctx_free(void *arg)
{
	struct cold_ctx *cx = arg;

#ifdef HAVE_ZSTD
	ZSTD_freeCCtx(cx->zc);
	ZSTD_freeDCtx(cx->zd);
#endif
	free(cx->hc);
	free(cx);
}

static void cold_key_init(void)
{
	cold_key_ok = pthread_key_create(&cold_key, cold_ctx_free) == 0;
}

/* A zeroed object of size bytes for the calling thread, which the key's
 * destructor frees when the thread exits; NULL without memory or key. */
static void *thread_obj_new(pthread_once_t *once, void (*key_init)(void),
			    const bool *key_ok, const pthread_key_t *key,
			    size_t size)
{
	void *obj;

	pthread_once(once, key_init);
	if (!*key_ok)
		return NULL;
	obj = calloc(1, size);
	if (obj && pthread_setspecific(*key, obj)) {
		free(obj);
		obj = NULL;
	}
	return obj;
}

static struct cold_ctx *cold_ctx(void)
{
	if (!tls_cold)
		tls_cold = thread_obj_new(&cold_once, cold_key_init,
					  &cold_key_ok, &cold_key,
					  sizeof(*tls_cold));
	return tls_cold;
}

static const struct {
	const char *name;
	int min, max, def;
} cold_codecs[STORE_COLD_NR] = {
	/* Measured on 62k pages of real programs (tests/bench), one page per
	 * frame: level 1 holds them at 3.75x (LZ4: 2.5x), 3 at 3.82x, 6 at
	 * 3.96x, 9 at 3.97x; compressing at ~300, 250, 100 and 40 MB/s. Cold
	 * pages are compressed once, by a background thread: 6 is worth it.
	 * Decoding speed is the same for all levels (~5 us a page). */
	[STORE_COLD_ZSTD] = { "zstd", 1, 19, 6 },
	[STORE_COLD_LZ4HC] = { "lz4hc", 1, 12, 9 },
};

const char *codec_cold_name(enum store_cold_algo c)
{
	return c < STORE_COLD_NR ? cold_codecs[c].name : NULL;
}

void codec_cold_levels(enum store_cold_algo c, int *min, int *max, int *def)
{
	*min = cold_codecs[c].min;
	*max = cold_codecs[c].max;
	*def = cold_codecs[c].def;
}

bool codec_cold_available(enum store_cold_algo c)
{
#ifdef HAVE_ZSTD
	return c < STORE_COLD_NR;
#else
	return c == STORE_COLD_LZ4HC;
#endif
}

#ifdef HAVE_ZSTD
static unsigned int zstd_compress_len(struct cold_ctx *cx, int level,
				      const void *src, unsigned int len,
				      void *dst, unsigned int cap)
{
	size_t n;

	if (!cx->zc) {
		cx->zc = ZSTD_createCCtx();
		if (!cx->zc)
			return 0;
		/* The slot holds the size; a page is always one page. */
		ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_contentSizeFlag, 0);
		ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_checksumFlag, 0);
		ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_dictIDFlag, 0);
		cx->zc_level = 0;
	}
	if (cx->zc_level != level) {
		ZSTD_CCtx_setParameter(cx->zc, ZSTD_c_compressionLevel, level);
		cx->zc_level = level;
	}
	n = ZSTD_compress2(cx->zc, dst, cap, src, len);
	return ZSTD_isError(n) || n >= cap ? 0 : (unsigned int)n;
}

static unsigned int zstd_compress(struct cold_ctx *cx, int level,
				  const void *page, void *dst,
				  unsigned int cap)
{
	return zstd_compress_len(cx, level, page, CODEC_PAGE, dst, cap);
}

/* Decode a zstd frame of len bytes that must give exactly want bytes. */
static int zstd_decode_exact(const void *src, unsigned int len, void *dst,
			     size_t want)
{
	struct cold_ctx *cx = cold_ctx();

	if (!cx)
		return -ENOMEM;
	if (!cx->zd) {
		cx->zd = ZSTD_createDCtx();
		if (!cx->zd)
			return -ENOMEM;
	}
	return ZSTD_decompressDCtx(cx->zd, dst, want, src, len) == want ?
	       0 : -EIO;
}

static int zstd_decode(const void *obj, unsigned int size, void *page)
{
	return zstd_decode_exact(obj, size, page, CODEC_PAGE);
}
#endif

/*
 * A page that exercises the decoders the way stored pages do: literals
 * and matches (an LCG's bytes, each 64-byte line repeated once).
 */
static void probe_page(unsigned char *page)
{
	uint32_t x = 0x9e3779b9u;

	for (size_t i = 0; i < CODEC_PAGE; i += 128) {
		for (size_t j = 0; j < 64; j++) {
			x = x * 1664525u + 1013904223u;
			page[i + j] = (unsigned char)(x >> 24);
		}
		memcpy(page + i + 64, page + i, 64);
	}
}

int codec_thread_prepare(void)
{
	unsigned char *page = codec_scratch(SCRATCH_IN);
	unsigned char *out = codec_scratch(SCRATCH_OUT);
	unsigned int n;

	/* LZ4: the state and both scratch pages, written through once. */
	probe_page(page);
	n = codec_compress(page, out, CODEC_PAGE - 1);
	if (!n)
		return -EIO;
	if (codec_decompress(out, n, page))
		return -EIO;
#ifdef HAVE_ZSTD
	{
		unsigned char frame[CODEC_PAGE];
		size_t len;
		int err;

		/* A frame as the cold codec writes it (ZSTD_compress() uses a
		 * context of its own, freed before it returns); decoding it
		 * creates this thread's decoding context. */
		probe_page(page);
		len = ZSTD_compress(frame, sizeof(frame), page, CODEC_PAGE, 1);
		if (ZSTD_isError(len))
			return -ENOMEM;
		err = zstd_decode(frame, (unsigned int)len, out);
		if (err)
			return err;
		if (memcmp(out, page, CODEC_PAGE))
			return -EIO;
	}
#endif
	return 0;
}

int codec_cold_prepare(enum store_cold_algo c, int level)
{
	unsigned char *page = codec_scratch(SCRATCH_IN);
	unsigned char *out = codec_scratch(SCRATCH_OUT);
	unsigned char frame[CODEC_PAGE];
	unsigned int n;

	if (!codec_cold_available(c))
		return -EOPNOTSUPP;
	probe_page(page);
	n = codec_cold_compress(c, level, page, frame, CODEC_PAGE);
	if (!n)
		return -ENOMEM;
	if (codec_decode(frame, n, out) || memcmp(out, page, CODEC_PAGE))
		return -EIO;
	return 0;
}

unsigned int codec_cold_compress(enum store_cold_algo c, int level,
				 const void *page, void *dst, unsigned int cap)
{
	struct cold_ctx *cx;
	int n;

	if (!codec_cold_available(c) || !(cx = cold_ctx()))
		return 0;
#ifdef HAVE_ZSTD
	if (c == STORE_COLD_ZSTD)
		return zstd_compress(cx, level, page, dst, cap);
#endif
	if (!cx->hc) {
		cx->hc = malloc((size_t)LZ4_sizeofStateHC());
		if (!cx->hc)
			return 0;
	}
	n = LZ4_compress_HC_extStateHC(cx->hc, page, dst, CODEC_PAGE,
				       (int)cap - 1, level);
	return n > 0 ? (unsigned int)n : 0;
}

int codec_decode(const void *obj, unsigned int size, void *page)
{
	uint32_t magic;

	if (size == CODEC_PAGE) {
		memcpy(page, obj, CODEC_PAGE);
		return 0;
	}
	if (size >= sizeof(magic)) {
		memcpy(&magic, obj, sizeof(magic));
		if (magic == ZSTD_MAGIC) {
#ifdef HAVE_ZSTD
			return zstd_decode(obj, size, page);
#else
			return -EIO;
#endif
		}
	}
	return codec_decompress(obj, size, page);
}

/* ---- groups ---- */

static pthread_key_t group_key;
static pthread_once_t group_once = PTHREAD_ONCE_INIT;
static bool group_key_ok;
static _Thread_local struct codec_group_scratch *tls_group;
static _Atomic uint64_t group_scratch_total;

static void group_scratch_free(void *arg)
{
	struct codec_group_scratch *gs = arg;

	atomic_fetch_sub(&group_scratch_total,
			 (uint64_t)gs->cap * CODEC_PAGE * 2);
	free(gs->in);
	free(gs->out);
	free(gs);
}

static void group_key_init(void)
{
	group_key_ok = pthread_key_create(&group_key, group_scratch_free) == 0;
}

struct codec_group_scratch *codec_group_scratch(unsigned int npages)
{
	struct codec_group_scratch *gs = tls_group;
	size_t bytes = (size_t)npages * CODEC_PAGE;
	unsigned char *in, *out;

	if (!gs) {
		gs = thread_obj_new(&group_once, group_key_init,
				    &group_key_ok, &group_key, sizeof(*gs));
		if (!gs)
			return NULL;
		tls_group = gs;
	}
	if (npages <= gs->cap)
		return gs;
	in = malloc(bytes);
	out = malloc(bytes);
	if (!in || !out) {
		free(in);
		free(out);
		return NULL;
	}
	/* Written through once, so that they are resident (and locked under
	 * mlockall) from now on, as counted. */
	memset(in, 0, bytes);
	memset(out, 0, bytes);
	free(gs->in);
	free(gs->out);
	atomic_fetch_add(&group_scratch_total,
			 (bytes - (uint64_t)gs->cap * CODEC_PAGE) * 2);
	gs->in = in;
	gs->out = out;
	gs->cap = npages;
	gs->serial = 0;
	return gs;
}

uint64_t codec_group_scratch_bytes(void)
{
	return atomic_load_explicit(&group_scratch_total, memory_order_relaxed);
}

bool codec_group_available(void)
{
#ifdef HAVE_ZSTD
	return true;
#else
	return false;
#endif
}

unsigned int codec_group_compress(int level, const void *pages,
				  unsigned int len, void *dst, unsigned int cap)
{
#ifdef HAVE_ZSTD
	struct cold_ctx *cx = cold_ctx();

	return cx ? zstd_compress_len(cx, level, pages, len, dst, cap) : 0;
#else
	(void)level; (void)pages; (void)len; (void)dst; (void)cap;
	return 0;
#endif
}

int codec_group_decode(const void *frame, unsigned int len, void *pages,
		       unsigned int npages)
{
#ifdef HAVE_ZSTD
	return zstd_decode_exact(frame, len, pages,
				 (size_t)npages * CODEC_PAGE);
#else
	(void)frame; (void)len; (void)pages; (void)npages;
	return -EIO;
#endif
}
