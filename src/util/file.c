#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open path as a regular file of at most max bytes (its stat in *st): the
 * fd, or -errno. */
static int open_bounded(const char *path, uint64_t max, size_t *len, struct stat *st, char *err,
			size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	*len = (size_t)st->st_size;
	if ((uint64_t)st->st_size > max) {
		close(fd);
		return -EFBIG;
	}
	return fd;
}

int file_map(const char *path, uint64_t max, const uint8_t **buf, size_t *len, struct stat *st,
	     char *err, size_t errlen)
{
	struct stat own;
	*buf = NULL;
	int fd = open_bounded(path, max, len, st ? st : &own, err, errlen);
	if (fd < 0)
		return fd;
	int rc = 0;
	if (*len) {
		void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			snprintf(err, errlen, "%s: cannot map it: %s", path, strerror(errno));
		} else {
			*buf = p;
		}
	}
	close(fd);
	return rc;
}

void file_unmap(const uint8_t *buf, size_t len)
{
	if (buf)
		munmap((void *)buf, len);
}

int file_read_all(const char *path, uint64_t max, uint8_t **buf, size_t *len, char *err,
		  size_t errlen)
{
	struct stat st;
	int rc = 0, fd = open_bounded(path, max, len, &st, err, errlen);
	*buf = NULL;
	if (fd < 0)
		return fd;
	*buf = malloc(*len + 1);
	if (!*buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (size_t done = 0; done < *len;) {
		ssize_t n = pread(fd, *buf + done, *len - done, (off_t)done);
		if (n <= 0) {
			rc = n ? -errno : -EIO;
			snprintf(err, errlen, "%s: read failed: %s", path,
				 n ? strerror(errno) : "file shrank");
			free(*buf);
			*buf = NULL;
			goto out;
		}
		done += (size_t)n;
	}
	(*buf)[*len] = 0;
out:
	close(fd);
	return rc;
}
