/* A bzImage payload decoded on the host. Linux's build compresses vmlinux.bin
 * (plus vmlinux.relocs) with one of seven codecs and appends the decompressed
 * size as 4 little-endian bytes (gzip's trailer already ends with it). Every
 * byte is untrusted: the output buffer is exactly the declared size, and a
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

typedef int decode_fn(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen, char *err,
		      size_t errlen);

static int gzip_decode(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen, char *err,
		       size_t errlen)
{
	z_stream z = {0};
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		snprintf(err, errlen, "gzip: zlib cannot start (out of memory?)");
		return -1;
	}
	/* The caller bounds both lengths by a 32-bit header field. */
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	int r = inflate(&z, Z_FINISH);
	bool whole = r == Z_STREAM_END && z.total_out == outlen;
	if (!whole)
		snprintf(err, errlen, "gzip data %s after %lu of %zu bytes",
			 r == Z_STREAM_END ? "ends early"
			 : z.avail_out	   ? (z.msg ? z.msg : "is truncated")
					   : "runs past its declared size",
			 z.total_out, outlen);
	inflateEnd(&z);
	return whole ? 0 : -1;
}

static int xz_decode(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen, char *err,
		     size_t errlen)
{
	uint64_t memlimit = XZ_MEMLIMIT;
	size_t in_pos = 0, out_pos = 0;
	/* One stream; the size Linux appends after it is left unread. */
	lzma_ret r = lzma_stream_buffer_decode(&memlimit, 0, NULL, in, &in_pos, inlen, out,
					       &out_pos, outlen);
	if (r == LZMA_OK && out_pos == outlen)
		return 0;
	/* On an error liblzma leaves the positions as they were. */
	if (r == LZMA_OK)
		snprintf(err, errlen, "xz data ends early after %zu of %zu bytes", out_pos, outlen);
	else if (r == LZMA_MEMLIMIT_ERROR)
		snprintf(err, errlen, "xz data needs more than %llu MiB to decode",
			 XZ_MEMLIMIT >> 20);
	else
		snprintf(err, errlen, "xz data %s",
			 r == LZMA_BUF_ERROR ? "is truncated or runs past its declared size"
			 : r == LZMA_FORMAT_ERROR || r == LZMA_OPTIONS_ERROR
			     ? "uses a format or filter liblzma does not know"
			 : r == LZMA_MEM_ERROR ? "cannot be decoded: out of memory"
					       : "is corrupt");
	return -1;
}

static int zstd_decode(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen, char *err,
		       size_t errlen)
{
	/* The first frame only: the appended size is not a frame. */
	size_t frame = ZSTD_findFrameCompressedSize(in, inlen);
	size_t r = ZSTD_isError(frame) ? frame : ZSTD_decompress(out, outlen, in, frame);
	if (!ZSTD_isError(r) && r == outlen)
		return 0;
	if (ZSTD_isError(r))
		snprintf(err, errlen, "zstd data is corrupt or truncated (%s)",
			 ZSTD_getErrorName(r));
	else
		snprintf(err, errlen, "zstd data ends early after %zu of %zu bytes", r, outlen);
	return -1;
}

/* The codecs Linux's build knows, by magic; NULL: left to the kernel. */
static const struct codec {
	const char *name;
	const char *magic;
	size_t magic_len;
	decode_fn *decode;
} codecs[] = {
    {"gzip", "\x1f\x8b", 2, gzip_decode},
    {"xz",
     "\xfd"
     "7zXZ",
     6, xz_decode}, /* the sixth byte is the NUL */
    {"zstd", "\x28\xb5\x2f\xfd", 4, zstd_decode},
    {"lzma", "\x5d\x00\x00", 3, NULL},
    {"bzip2", "BZh", 3, NULL},
    {"lzo", "\x89LZO", 4, NULL},
    {"lz4", "\x02\x21\x4c\x18", 4, NULL},
};

int bzpayload_decompress(const uint8_t *p, size_t len, uint64_t max, uint8_t **out, size_t *outlen,
			 char *err, size_t errlen)
{
	*out = NULL;
	*outlen = 0;
	const struct codec *c = NULL;
	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]) && !c; i++)
		if (len >= codecs[i].magic_len + 4 &&
		    !memcmp(p, codecs[i].magic, codecs[i].magic_len))
			c = &codecs[i];
	if (!c || len > UINT32_MAX) {
		snprintf(err, errlen, "payload is in no compression format Linux uses");
		return -1;
	}
	if (!c->decode) {
		snprintf(err, errlen, "payload is %s-compressed, which popek does not decode",
			 c->name);
		return -1;
	}
	size_t size = (size_t)p[len - 4] | (size_t)p[len - 3] << 8 | (size_t)p[len - 2] << 16 |
		      (size_t)p[len - 1] << 24;
	if (!size || size > max) {
		snprintf(err, errlen,
			 "%s payload declares %zu decompressed bytes; the kernel's init_size "
			 "and guest RAM allow 1 to %llu",
			 c->name, size, (unsigned long long)max);
		return -1;
	}
	uint8_t *buf = malloc(size);
	if (!buf) {
		snprintf(err, errlen, "no memory for the %zu-byte decompressed kernel", size);
		return -1;
	}
	char why[200];
	if (c->decode(p, len, buf, size, why, sizeof(why))) {
		snprintf(err, errlen, "%s payload: %s", c->name, why);
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = size;
	return 0;
}
