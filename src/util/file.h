/* Whole-file reads and maps, bounded: kernels, initrds and snapshot files. */
#ifndef POPEK_UTIL_FILE_H
#define POPEK_UTIL_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Read the regular file path (at most max bytes) into a malloc'ed buffer with a
 * NUL after the data. Returns 0; -EFBIG if it is larger than max (*len is then
 * its size, err is left for the caller to word); or another -errno with err
 * naming the file and the problem. */
int file_read_all(const char *path, uint64_t max, uint8_t **buf, size_t *len, char *err,
		  size_t errlen);

/* Map the regular file path (at most max bytes) read-only, its pages
 * populated: a kernel or initrd is then copied once, from the page cache
 * into guest RAM, instead of read into a buffer first. *st (if st is not
 * NULL) is the mapped file's identity. Errors as for file_read_all; an
 * empty file gives *buf NULL and *len 0. Undo with file_unmap. */
int file_map(const char *path, uint64_t max, const uint8_t **buf, size_t *len, struct stat *st,
	     char *err, size_t errlen);
void file_unmap(const uint8_t *buf, size_t len);

#endif
