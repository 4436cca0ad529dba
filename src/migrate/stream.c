#include "migrate/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define HELLO_MAX (1u << 20)
#define STATE_MAX (64u << 20)

static const char *const type_names[NR_MIG_TYPES] = {
    [MIG_HELLO] = "HELLO", [MIG_PAGES] = "PAGES",     [MIG_ZERO] = "ZERO",
    [MIG_STATE] = "STATE", [MIG_END] = "END",	      [MIG_SYNC] = "SYNC",
    [MIG_DISK] = "DISK",   [MIG_DISCARD] = "DISCARD", [MIG_POSTCOPY_END] = "POSTCOPY_END",
};

uint64_t mig_max_len(enum mig_type t)
{
	switch (t) {
	case MIG_HELLO:
		return HELLO_MAX;
	case MIG_PAGES:
		return 16 + (uint64_t)MIG_RUN_PAGES * MIG_PAGE;
	case MIG_ZERO:
		return 16;
	case MIG_END:
		return 32;
	case MIG_DISK:
		return 16 + MIG_DISK_MAX;
	case MIG_STATE:
		return STATE_MAX;
	case MIG_SYNC:
	case MIG_POSTCOPY_END:
		return 8;
	case MIG_DISCARD:
		return 16 * MIG_DISCARD_RUNS;
	default:
		return 0;
	}
}

bool mig_run_inside(uint64_t off, uint64_t n, uint64_t mem)
{
	return off % MIG_PAGE == 0 && n && off <= mem && n <= (mem - off) / MIG_PAGE;
}

bool mig_page_run(enum mig_type t, const uint8_t *p, size_t len, uint64_t mem, uint64_t *off,
		  uint64_t *n)
{
	if (len < 16 || mig_le(p + 12, 4))
		return false;
	*off = mig_le(p, 8);
	*n = mig_le(p + 8, 4);
	return *n <= MIG_RUN_PAGES && mig_run_inside(*off, *n, mem) &&
	       len == (t == MIG_PAGES ? 16 + *n * MIG_PAGE : 16);
}

void mig_put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t mig_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* send: a peer that went away is EPIPE here, not SIGPIPE for the VMM. */
int mig_send_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int mig_write(struct mig_out *o, enum mig_type t, const void *payload, size_t len)
{
	const void *stored = payload;
	size_t slen = len;
	uint8_t flags = 0;
	/* Compressed only where it pays: page runs, disk blocks and the state. */
	if (o->compress && len >= 512 && (t == MIG_PAGES || t == MIG_STATE || t == MIG_DISK)) {
		size_t bound = ZSTD_compressBound(len);
		if (bound > o->zcap) {
			void *z = realloc(o->zbuf, bound);
			if (!z)
				return -1;
			o->zbuf = z;
			o->zcap = bound;
		}
		size_t c = ZSTD_compress(o->zbuf, o->zcap, payload, len, 1);
		if (!ZSTD_isError(c) && c < len) {
			stored = o->zbuf;
			slen = c;
			flags = MIG_F_ZSTD;
		}
	}
	uint8_t h[MIG_HDR_LEN] = {(uint8_t)t, flags};
	mig_put_le(h + 4, slen, 4);
	mig_put_le(h + 8, len, 4);
	mig_put_le(h + 12, crc32(0, stored, (uInt)slen), 4);
	if (mig_send_all(o->fd, h, sizeof(h)) || mig_send_all(o->fd, stored, slen))
		return -1;
	o->bytes += sizeof(h) + slen;
	return 0;
}

void mig_out_free(struct mig_out *o)
{
	free(o->zbuf);
	o->zbuf = NULL;
	o->zcap = 0;
}

static int read_in(struct mig_in *in, void *dst, size_t n)
{
	if (in->fd < 0) {
		if (n > in->left)
			return -1;
		memcpy(dst, in->buf, n);
		in->buf += n;
		in->left -= n;
		in->bytes += n;
		return 0;
	}
	uint8_t *p = dst;
	while (n) {
		ssize_t r = read(in->fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		in->bytes += (uint64_t)r;
	}
	return 0;
}

int mig_read_magic(struct mig_in *in, char *err, size_t errlen)
{
	char magic[8];
	if (read_in(in, magic, sizeof(magic))) {
		snprintf(err, errlen, "the connection closed before a migration stream began");
		return -1;
	}
	if (memcmp(magic, MIG_MAGIC, sizeof(magic))) {
		snprintf(err, errlen, "not a popek migration stream (bad magic)");
		return -1;
	}
	return 0;
}

static int grow(uint8_t **buf, size_t *cap, size_t n)
{
	if (n <= *cap)
		return 0;
	uint8_t *b = realloc(*buf, n);
	if (!b)
		return -1;
	*buf = b;
	*cap = n;
	return 0;
}

int mig_read(struct mig_in *in, enum mig_type *t, uint8_t **buf, size_t *cap, size_t *len,
	     char *err, size_t errlen)
{
	uint8_t h[MIG_HDR_LEN];
	uint64_t at = in->bytes;
	if (read_in(in, h, sizeof(h))) {
		snprintf(err, errlen, "stream truncated at byte %llu (the source went away)",
			 (unsigned long long)at);
		return -1;
	}
	uint32_t slen = (uint32_t)mig_le(h + 4, 4), rlen = (uint32_t)mig_le(h + 8, 4),
		 crc = (uint32_t)mig_le(h + 12, 4);
	*t = h[0];
	uint64_t max = h[0] < NR_MIG_TYPES ? mig_max_len(h[0]) : 0;
	bool zstd = h[1] & MIG_F_ZSTD;
	if (!max || (h[1] & ~MIG_F_ZSTD) || h[2] || h[3] || rlen > max || (!zstd && slen != rlen) ||
	    (zstd && slen > ZSTD_compressBound(rlen))) {
		snprintf(err, errlen, "damaged record header at byte %llu (type %u, %u bytes)",
			 (unsigned long long)at, h[0], rlen);
		return -1;
	}
	/* Stored bytes after the uncompressed ones, so one buffer holds both. */
	size_t need = (size_t)rlen + (zstd ? slen : 0);
	if (grow(buf, cap, need ? need : 1)) {
		snprintf(err, errlen, "out of memory for a %u-byte record", rlen);
		return -1;
	}
	uint8_t *stored = *buf + (zstd ? rlen : 0);
	if (read_in(in, stored, slen)) {
		snprintf(err, errlen, "stream truncated inside a %s record at byte %llu",
			 type_names[*t], (unsigned long long)at);
		return -1;
	}
	if ((uint32_t)crc32(0, stored, slen) != crc) {
		snprintf(err, errlen, "%s record at byte %llu fails its checksum (corrupt stream)",
			 type_names[*t], (unsigned long long)at);
		return -1;
	}
	if (zstd) {
		size_t d = ZSTD_decompress(*buf, rlen, stored, slen);
		if (ZSTD_isError(d) || d != rlen) {
			snprintf(err, errlen, "%s record at byte %llu does not decompress",
				 type_names[*t], (unsigned long long)at);
			return -1;
		}
	}
	*len = rlen;
	return 0;
}
