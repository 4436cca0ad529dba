/* The registry's row for --disk: each disk is served by popek's own
 * virtio-blk (raw images) or by a vhost-user-blk backend, chosen per disk,
 * in one row so PCI slots — the guest's vda, vdb, ... — follow --disk order. */
#ifndef POPEK_DISK_H
#define POPEK_DISK_H

#include "devices/services.h"

extern const struct device_type disk_device;
/* The open image of a raw disk (snapshots identify it by it), or -1. */
int disk_fd(const void *dev);

#endif
