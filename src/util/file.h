/* Whole-file reads, bounded: kernels, initrds and snapshot files. */
#ifndef POPEK_UTIL_FILE_H
#define POPEK_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Read the regular file path (at most max bytes) into a malloc'ed buffer with a
 * NUL after the data. Returns 0; -EFBIG if it is larger than max (*len is then
 * its size, err is left for the caller to word); or another -errno with err
 * naming the file and the problem. */
int file_read_all(const char *path, uint64_t max, uint8_t **buf, size_t *len, char *err,
		  size_t errlen);

#endif
