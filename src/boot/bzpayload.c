/* A bzImage payload decoded on the host. Linux's build compresses vmlinux.bin
 * (plus vmlinux.relocs) with one of seven codecs and appends the decompressed
 * size as 4 little-endian bytes (gzip's trailer already ends with it). Every
 * byte is untrusted: no more than the declared size is produced, and a
 * stream that ends early, runs past it or fails its check is refused. */
#include "boot/bzpayload.h"

#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* Linux's xz_wrap.sh uses a dictionary of at most 32 MiB; liblzma needs
 * about that much to decode it. */
#define XZ_MEMLIMIT (64ull << 20)

struct bzpayload {
	const struct codec *c;
	const uint8_t *in;
	size_t inlen;
	uint64_t size, pos; /* declared output size, bytes produced */
	bool ended;
	z_stream gz;
	lzma_stream xz;
	ZSTD_DStream *zs;
	ZSTD_inBuffer zin;
	uint8_t skip[64 << 10]; /* where skipped output goes */
};

/* A codec's decoder. run produces up to n (> 0) bytes at dst, *got of them:
 * 1 when the stream has ended there, 0 when all n were produced, -1 (err)
 * when the data is corrupt or truncated. */
struct codec {
	const char *name;
	const char *magic;
	size_t magic_len;
	int (*start)(struct bzpayload *z, char *err, size_t errlen);
	int (*run)(struct bzpayload *z, uint8_t *dst, size_t n, size_t *got, char *err,
		   size_t errlen);
	void (*end)(struct bzpayload *z);
};

static int gzip_start(struct bzpayload *z, char *err, size_t errlen)
{
	if (inflateInit2(&z->gz, 16 + MAX_WBITS) != Z_OK) {
		snprintf(err, errlen, "zlib cannot start (out of memory?)");
		return -1;
	}
	/* bzpayload_open bounds the length by the 32-bit header field. */
	z->gz.next_in = (Bytef *)(uintptr_t)z->in;
	z->gz.avail_in = (uInt)z->inlen;
	return 0;
}

static int gzip_run(struct bzpayload *z, uint8_t *dst, size_t n, size_t *got, char *err,
		    size_t errlen)
{
	z->gz.next_out = dst;
	z->gz.avail_out = (uInt)n;
	int r;
	do
		r = inflate(&z->gz, Z_NO_FLUSH);
	while (r == Z_OK && z->gz.avail_out);
	*got = n - z->gz.avail_out;
	if (r == Z_STREAM_END)
		return 1;
	if (r == Z_OK)
		return 0;
	snprintf(err, errlen, "gzip data %s",
		 r == Z_BUF_ERROR ? "is truncated"
		 : z->gz.msg	  ? z->gz.msg
				  : "is corrupt");
	return -1;
}

static void gzip_end(struct bzpayload *z)
{
	inflateEnd(&z->gz);
}

static int xz_start(struct bzpayload *z, char *err, size_t errlen)
{
	z->xz = (lzma_stream)LZMA_STREAM_INIT;
	/* One stream: the size Linux appends after it is left unread. */
	if (lzma_stream_decoder(&z->xz, XZ_MEMLIMIT, 0) != LZMA_OK) {
		snprintf(err, errlen, "liblzma cannot start (out of memory?)");
		return -1;
	}
	z->xz.next_in = z->in;
	z->xz.avail_in = z->inlen;
	return 0;
}

static int xz_run(struct bzpayload *z, uint8_t *dst, size_t n, size_t *got, char *err,
		  size_t errlen)
{
	z->xz.next_out = dst;
	z->xz.avail_out = n;
	lzma_ret r;
	do
		r = lzma_code(&z->xz, LZMA_FINISH); /* all the input is there */
	while (r == LZMA_OK && z->xz.avail_out);
	*got = n - z->xz.avail_out;
	if (r == LZMA_STREAM_END)
		return 1;
	if (r == LZMA_OK)
		return 0;
	if (r == LZMA_MEMLIMIT_ERROR)
		snprintf(err, errlen, "xz data needs more than %llu MiB to decode",
			 XZ_MEMLIMIT >> 20);
	else
		snprintf(err, errlen, "xz data %s",
			 r == LZMA_BUF_ERROR ? "is truncated"
			 : r == LZMA_FORMAT_ERROR || r == LZMA_OPTIONS_ERROR
			     ? "uses a format or filter liblzma does not know"
			 : r == LZMA_MEM_ERROR ? "cannot be decoded: out of memory"
					       : "is corrupt");
	return -1;
}

static void xz_end(struct bzpayload *z)
{
	lzma_end(&z->xz);
}

static int zstd_start(struct bzpayload *z, char *err, size_t errlen)
{
	/* The first frame only: the appended size is not a frame. */
	size_t frame = ZSTD_findFrameCompressedSize(z->in, z->inlen);
	if (ZSTD_isError(frame)) {
		snprintf(err, errlen, "zstd data is corrupt or truncated (%s)",
			 ZSTD_getErrorName(frame));
		return -1;
	}
	z->zs = ZSTD_createDStream();
	if (!z->zs || ZSTD_isError(ZSTD_initDStream(z->zs))) {
		ZSTD_freeDStream(z->zs);
		snprintf(err, errlen, "libzstd cannot start (out of memory?)");
		return -1;
	}
	z->zin = (ZSTD_inBuffer){z->in, frame, 0};
	return 0;
}

static int zstd_run(struct bzpayload *z, uint8_t *dst, size_t n, size_t *got, char *err,
		    size_t errlen)
{
	ZSTD_outBuffer out = {dst, n, 0};
	size_t r = 1;
	while (out.pos < out.size && r) {
		size_t in0 = z->zin.pos, out0 = out.pos;
		r = ZSTD_decompressStream(z->zs, &out, &z->zin);
		if (ZSTD_isError(r)) {
			snprintf(err, errlen, "zstd data is corrupt (%s)", ZSTD_getErrorName(r));
			return -1;
		}
		if (r && z->zin.pos == in0 && out.pos == out0) {
			snprintf(err, errlen, "zstd data is truncated");
			return -1;
		}
	}
	*got = out.pos;
	return !r;
}

static void zstd_end(struct bzpayload *z)
{
	ZSTD_freeDStream(z->zs);
}

/* The codecs Linux's build knows, by magic; no decoder: left to the kernel. */
static const struct codec codecs[] = {
    {"gzip", "\x1f\x8b", 2, gzip_start, gzip_run, gzip_end},
    {"xz",
     "\xfd"
     "7zXZ",
     6, xz_start, xz_run, xz_end}, /* the sixth byte is the NUL */
    {"zstd", "\x28\xb5\x2f\xfd", 4, zstd_start, zstd_run, zstd_end},
    {"lzma", "\x5d\x00\x00", 3, NULL, NULL, NULL},
    {"bzip2", "BZh", 3, NULL, NULL, NULL},
    {"lzo", "\x89LZO", 4, NULL, NULL, NULL},
    {"lz4", "\x02\x21\x4c\x18", 4, NULL, NULL, NULL},
};

struct bzpayload *bzpayload_open(const uint8_t *p, size_t len, uint64_t max, uint64_t *size,
				 char *err, size_t errlen)
{
	const struct codec *c = NULL;
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]) && !c; i++)
		if (len >= codecs[i].magic_len + 4 &&
		    !memcmp(p, codecs[i].magic, codecs[i].magic_len))
			c = &codecs[i];
	if (!c || len > UINT32_MAX) {
		snprintf(err, errlen, "payload is in no compression format Linux uses");
		return NULL;
	}
	if (!c->start) {
		snprintf(err, errlen, "payload is %s-compressed, which popek does not decode",
			 c->name);
		return NULL;
	}
	*size = (uint64_t)p[len - 4] | (uint64_t)p[len - 3] << 8 | (uint64_t)p[len - 2] << 16 |
		(uint64_t)p[len - 1] << 24;
	if (!*size || *size > max) {
		snprintf(err, errlen,
			 "%s payload declares %llu decompressed bytes; the kernel's init_size "
			 "and guest RAM allow 1 to %llu",
			 c->name, (unsigned long long)*size, (unsigned long long)max);
		return NULL;
	}
	struct bzpayload *z = calloc(1, sizeof(*z));
	if (!z) {
		snprintf(err, errlen, "no memory for the %s decoder", c->name);
		return NULL;
	}
	z->c = c;
	z->in = p;
	z->inlen = len;
	z->size = *size;
	char why[200];
	if (c->start(z, why, sizeof(why))) {
		snprintf(err, errlen, "%s payload: %s", c->name, why);
		free(z);
		return NULL;
	}
	return z;
}

int bzpayload_read(struct bzpayload *z, uint8_t *dst, uint64_t n, char *err, size_t errlen)
{
	char why[200] = "";
	int r = 0;
	if (n > z->size - z->pos) {
		snprintf(why, sizeof(why), "a read of %llu bytes runs past its declared size",
			 (unsigned long long)n);
		r = -1;
	}
	while (n && !r) {
		if (z->ended) {
			snprintf(why, sizeof(why), "data ends early after %llu of %llu bytes",
				 (unsigned long long)z->pos, (unsigned long long)z->size);
			r = -1;
			break;
		}
		size_t want = dst ? (size_t)n : n < sizeof(z->skip) ? (size_t)n : sizeof(z->skip);
		size_t got = 0;
		r = z->c->run(z, dst ? dst : z->skip, want, &got, why, sizeof(why));
		z->ended = r == 1;
		r = r < 0 ? -1 : 0;
		z->pos += got;
		n -= got;
		if (dst)
			dst += got;
	}
	if (r)
		snprintf(err, errlen, "%s payload: %s", z->c->name, why);
	return r;
}

int bzpayload_finish(struct bzpayload *z, char *err, size_t errlen)
{
	if (bzpayload_read(z, NULL, z->size - z->pos, err, errlen))
		return -1;
	/* One byte more must find the stream's end, and nothing in it. */
	size_t got = 0;
	char why[200];
	int r = z->ended ? 1 : z->c->run(z, z->skip, 1, &got, why, sizeof(why));
	if (r == 1 && !got)
		return 0;
	if (r >= 0)
		snprintf(why, sizeof(why), "data runs past its declared size of %llu bytes",
			 (unsigned long long)z->size);
	snprintf(err, errlen, "%s payload: %s", z->c->name, why);
	return -1;
}

void bzpayload_close(struct bzpayload *z)
{
	if (z)
		z->c->end(z);
	free(z);
}
