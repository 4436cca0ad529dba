#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, uint64_t max, uint8_t **buf, size_t *len, char *err,
		  size_t errlen)
{
	struct stat st;
	int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
	*buf = NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	*len = (size_t)st.st_size;
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
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
	if (fd >= 0)
		close(fd);
	return rc;
}
