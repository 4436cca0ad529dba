/* Which image format a --disk file holds, told by its content (never by its
 * name): raw images are served by popek's virtio-blk, every other format by
 * qemu-storage-daemon, which reads them all. */
#ifndef POPEK_DISK_FORMAT_H
#define POPEK_DISK_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the image's start the probe looks at. */
#define DISK_FORMAT_HEAD 512

/* QEMU's driver name for the format whose header starts head ("qcow2"), or
 * NULL for raw (no known header). */
const char *disk_format_probe(const uint8_t *head, size_t len);
/* The same for the file at path; NULL also when it cannot be read (opening
 * it as raw then says why). */
const char *disk_format_detect(const char *path);

#endif
