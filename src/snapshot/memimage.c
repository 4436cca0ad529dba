#include "snapshot/memimage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define PAGE		4096u
#define PAGES_PER_CHUNK (MEM_CHUNK / PAGE)

static const uint8_t zero_page[PAGE];

bool memimage_page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (unsigned i = 0; i < PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

static uint32_t zero_chunk_crc(void)
{
	static uint32_t crc;
	if (!crc) {
		uLong c = crc32(0, NULL, 0);
		for (unsigned i = 0; i < PAGES_PER_CHUNK; i++)
			c = crc32(c, zero_page, PAGE);
		crc = (uint32_t)c;
	}
	return crc;
}

/* Anonymous RAM: the pages ever touched, present or swapped out (pagemap
 * bits 63 and 62); a page never touched reads as zero. Every page when the
 * pagemap cannot say. lseek and read: the jail allows pread only with disks. */
static void touched_pages(const struct guest_mem *m, uint64_t off, bool *cand)
{
	uint64_t ent[PAGES_PER_CHUNK];
	off_t at = (off_t)((uintptr_t)(m->base + off) / PAGE * sizeof(ent[0]));
	if (m->pagemap_fd < 0 || lseek(m->pagemap_fd, at, SEEK_SET) != at ||
	    read(m->pagemap_fd, ent, sizeof(ent)) != (ssize_t)sizeof(ent)) {
		memset(cand, 1, PAGES_PER_CHUNK);
		return;
	}
	for (unsigned i = 0; i < PAGES_PER_CHUNK; i++)
		cand[i] = ent[i] >> 62 != 0;
}

void memimage_data_pages(const struct guest_mem *m, uint64_t off, bool *cand)
{
	if (m->fd < 0) {
		touched_pages(m, off, cand);
		return;
	}
	memset(cand, 0, PAGES_PER_CHUNK);
	off_t pos = off;
	while (pos < (off_t)(off + MEM_CHUNK)) {
		off_t data = lseek(m->fd, pos, SEEK_DATA);
		if (data < 0 || data >= (off_t)(off + MEM_CHUNK))
			break;
		off_t hole = lseek(m->fd, data, SEEK_HOLE);
		if (hole < 0 || hole > (off_t)(off + MEM_CHUNK))
			hole = (off_t)(off + MEM_CHUNK);
		for (off_t p = data & ~(off_t)(PAGE - 1); p < hole; p += PAGE)
			cand[(p - (off_t)off) / PAGE] = true;
		pos = hole;
	}
	if (m->private_map) {
		unsigned char vec[PAGES_PER_CHUNK];
		if (mincore(m->base + off, MEM_CHUNK, vec) == 0)
			for (unsigned i = 0; i < PAGES_PER_CHUNK; i++)
				cand[i] |= vec[i] & 1;
		else
			memset(cand, 1, PAGES_PER_CHUNK);
	}
}

static int write_all(int fd, const void *p, size_t n, off_t off)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = off >= 0 ? pwrite(fd, b, n, off) : write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

int64_t memimage_save(const struct guest_mem *m, int dir_fd, const char *path, bool compress,
		      uint32_t *crcs, progress_fn progress, void *ctx, char *err, size_t errlen)
{
	int fd = openat(dir_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ZSTD_CCtx *z = compress ? ZSTD_createCCtx() : NULL;
	uint8_t *chunk = malloc(MEM_CHUNK), *zout = NULL;
	size_t zcap = ZSTD_CStreamOutSize();
	int64_t written = 0;
	bool cand[PAGES_PER_CHUNK];
	if (fd < 0 || !chunk || (compress && (!z || !(zout = malloc(zcap))))) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : ENOMEM));
		goto fail;
	}
	if (z)
		ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, 3);
	uint64_t nchunks = m->size / MEM_CHUNK + (m->size % MEM_CHUNK != 0);
	for (uint64_t c = 0; c < nchunks; c++) {
		uint64_t off = c * MEM_CHUNK,
			 len = m->size - off < MEM_CHUNK ? m->size - off : MEM_CHUNK;
		memimage_data_pages(m, off, cand);
		uLong crc = crc32(0, NULL, 0);
		for (uint64_t p = 0; p < len; p += PAGE) {
			const uint8_t *src = cand[p / PAGE] ? m->base + off + p : zero_page;
			bool zero = src == zero_page || memimage_page_zero(src);
			crc = crc32(crc, src, PAGE);
			memcpy(chunk + p, zero ? zero_page : src, PAGE);
			if (!zero && !z) {
				if (write_all(fd, src, PAGE, (off_t)(off + p)))
					goto io_fail;
				written += PAGE;
			}
		}
		crcs[c] = (uint32_t)crc;
		if (z) {
			ZSTD_inBuffer in = {chunk, len, 0};
			ZSTD_EndDirective mode = c + 1 == nchunks ? ZSTD_e_end : ZSTD_e_continue;
			size_t left;
			do {
				ZSTD_outBuffer out = {zout, zcap, 0};
				left = ZSTD_compressStream2(z, &out, &in, mode);
				if (ZSTD_isError(left) || write_all(fd, zout, out.pos, -1))
					goto io_fail;
				written += (int64_t)out.pos;
			} while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
		}
		if (progress)
			progress(ctx, off + len, m->size);
	}
	if (!z && ftruncate(fd, (off_t)m->size) < 0)
		goto io_fail;
	if (fsync(fd) < 0)
		goto io_fail;
	close(fd);
	free(chunk);
	free(zout);
	ZSTD_freeCCtx(z);
	return written;
io_fail:
	snprintf(err, errlen, "writing %s: %s", path, strerror(errno ? errno : EIO));
fail:
	if (fd >= 0)
		close(fd);
	free(chunk);
	free(zout);
	ZSTD_freeCCtx(z);
	return -1;
}

static int verify_raw(int fd, uint64_t size, const uint32_t *crcs, char *err, size_t errlen)
{
	uint8_t *buf = malloc(MEM_CHUNK);
	int rc = 0;
	if (!buf)
		return -1;
	for (uint64_t off = 0, c = 0; off < size && !rc; off += MEM_CHUNK, c++) {
		uint64_t len = size - off < MEM_CHUNK ? size - off : MEM_CHUNK;
		off_t data = lseek(fd, (off_t)off, SEEK_DATA);
		uint32_t crc;
		if (len == MEM_CHUNK && (data < 0 || (uint64_t)data >= off + len)) {
			crc = zero_chunk_crc();
		} else if (pread(fd, buf, len, (off_t)off) != (ssize_t)len) {
			snprintf(err, errlen, "memory image is unreadable at %#llx",
				 (unsigned long long)off);
			rc = -1;
			break;
		} else {
			crc = (uint32_t)crc32(0, buf, (uInt)len);
		}
		if (crc != crcs[c]) {
			snprintf(
			    err, errlen,
			    "memory image fails its checksum at %#llx — the snapshot is corrupt",
			    (unsigned long long)off);
			rc = -1;
		}
	}
	free(buf);
	return rc;
}

/* Decompress into a memfd, keeping it sparse; always verified. */
static int open_zstd(int in_fd, uint64_t size, const uint32_t *crcs, char *err, size_t errlen)
{
	int mfd = memfd_create("popek-restore", MFD_CLOEXEC);
	ZSTD_DCtx *z = ZSTD_createDCtx();
	size_t icap = ZSTD_DStreamInSize();
	uint8_t *ibuf = malloc(icap), *chunk = malloc(MEM_CHUNK);
	uint64_t off = 0, fill = 0;
	int rc = -1;
	if (mfd < 0 || !z || !ibuf || !chunk || ftruncate(mfd, (off_t)size) < 0) {
		snprintf(err, errlen, "cannot allocate memory to decompress the snapshot");
		goto out;
	}
	size_t last = 1;
	for (;;) {
		ssize_t n = read(in_fd, ibuf, icap);
		if (n < 0) {
			snprintf(err, errlen, "reading the memory image: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		ZSTD_inBuffer in = {ibuf, (size_t)n, 0};
		while (in.pos < in.size) {
			ZSTD_outBuffer out = {chunk + fill, MEM_CHUNK - fill, 0};
			last = ZSTD_decompressStream(z, &out, &in);
			if (ZSTD_isError(last)) {
				snprintf(err, errlen, "memory image is corrupt (zstd: %s)",
					 ZSTD_getErrorName(last));
				goto out;
			}
			fill += out.pos;
			uint64_t want = size - off < MEM_CHUNK ? size - off : MEM_CHUNK;
			if (fill < want)
				continue;
			if (off >= size ||
			    (uint32_t)crc32(0, chunk, (uInt)want) != crcs[off / MEM_CHUNK]) {
				snprintf(err, errlen,
					 "memory image fails its checksum at %#llx — the snapshot "
					 "is corrupt",
					 (unsigned long long)off);
				goto out;
			}
			for (uint64_t p = 0; p < want; p += PAGE)
				if (!memimage_page_zero(chunk + p) &&
				    write_all(mfd, chunk + p, PAGE, (off_t)(off + p))) {
					snprintf(err, errlen, "out of memory restoring guest RAM");
					goto out;
				}
			off += want;
			fill = 0;
		}
	}
	if (off != size || last != 0) {
		snprintf(err, errlen, "memory image is truncated (%llu of %llu bytes)",
			 (unsigned long long)off, (unsigned long long)size);
		goto out;
	}
	rc = mfd;
	mfd = -1;
out:
	if (mfd >= 0)
		close(mfd);
	ZSTD_freeDCtx(z);
	free(ibuf);
	free(chunk);
	return rc;
}

int memimage_open(const char *path, bool compressed, uint64_t size, const uint32_t *crcs,
		  bool verify, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (compressed) {
		int mfd = open_zstd(fd, size, crcs, err, errlen);
		close(fd);
		return mfd;
	}
	if ((uint64_t)st.st_size != size) {
		snprintf(err, errlen,
			 "memory image %s is %lld bytes, expected %llu — truncated snapshot?", path,
			 (long long)st.st_size, (unsigned long long)size);
		close(fd);
		return -1;
	}
	if (verify && verify_raw(fd, size, crcs, err, errlen)) {
		close(fd);
		return -1;
	}
	return fd;
}
