#include "snapshot/disks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SAMPLE (1u << 20)

/* Size and mtime catch ordinary writes; the sampled CRC catches a copy or an
 * edit that restored the mtime, without reading a whole large image. */
int disk_ident(const char *path, struct disk_ident *id, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "disk image %s: %s", path, strerror(errno));
		return -1;
	}
	int rc = disk_ident_fd(fd, path, id, err, errlen);
	close(fd);
	return rc;
}

int disk_ident_fd(int fd, const char *path, struct disk_ident *id, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf = malloc(SAMPLE);
	int rc = -1;
	if (fd < 0 || fstat(fd, &st) < 0 || !buf) {
		snprintf(err, errlen, "disk image %s: %s", path, strerror(errno ? errno : ENOMEM));
		goto out;
	}
	id->size = (uint64_t)st.st_size;
	id->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	uLong crc = crc32(0, NULL, 0);
	off_t offs[2] = {0, st.st_size > SAMPLE ? st.st_size - SAMPLE : 0};
	for (int i = 0; i < (st.st_size > SAMPLE ? 2 : 1); i++) {
		ssize_t n = pread(fd, buf, SAMPLE, offs[i]);
		if (n < 0) {
			snprintf(err, errlen, "disk image %s: %s", path, strerror(errno));
			goto out;
		}
		crc = crc32(crc, buf, (uInt)n);
	}
	id->crc32 = (uint32_t)crc;
	rc = 0;
out:
	free(buf);
	return rc;
}
