/* Disk images are referenced by a snapshot, not copied: it records enough of
 * each image's identity to notice that it changed since. */
#ifndef POPEK_SNAPSHOT_DISKS_H
#define POPEK_SNAPSHOT_DISKS_H

#include <stddef.h>
#include <stdint.h>

struct disk_ident {
	uint64_t size;
	int64_t mtime_ns;
	uint32_t crc32; /* of the first and last MiB */
};

int disk_ident(const char *path, struct disk_ident *id, char *err, size_t errlen);
/* The same from an open image (path only names it in messages). */
int disk_ident_fd(int fd, const char *path, struct disk_ident *id, char *err, size_t errlen);

#endif
