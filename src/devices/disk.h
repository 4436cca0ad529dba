/* The registry's row for --disk: each disk is served by popek's own
 * virtio-blk (raw images) or by a vhost-user-blk backend, chosen per disk,
 * in one row so PCI slots — the guest's vda, vdb, ... — follow --disk order. */
#ifndef POPEK_DISK_H
#define POPEK_DISK_H

#include <stdint.h>

#include "devices/services.h"

extern const struct device_type disk_device;
/* The open image of a raw disk (snapshots identify it by it), or -1. */
int disk_fd(const void *dev);

/* Dirty tracking for --copy-storage: one bit per DISK_BLOCK of the image. */
#define DISK_BLOCK (64u << 10)
/* From here each block a guest write changed is set in bitmap (atomically,
 * after the write reached the image); NULL stops it. -1: a disk popek does not
 * write itself (vhost-user). The caller stops it before freeing bitmap. */
int disk_track(void *dev, uint64_t *bitmap);
/* Bytes [pos, pos + len) were written: their blocks' bits. */
void disk_dirty_mark(uint64_t *bitmap, uint64_t pos, uint64_t len);

#endif
