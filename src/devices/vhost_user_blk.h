/* virtio-blk served by a vhost-user-blk backend: a qemu-storage-daemon popek
 * starts for an image whose format is not raw, or the user's backend at
 * --disk socket=PATH. */
#ifndef POPEK_VHOST_USER_BLK_H
#define POPEK_VHOST_USER_BLK_H

#include "devices/services.h"

/* Makes cfg->disk[i] (kind DISK_IMAGE or DISK_SOCKET); the disk row
 * (devices/disk.h) is what the registry holds. */
extern const struct device_type vhost_user_blk_device;

#endif
