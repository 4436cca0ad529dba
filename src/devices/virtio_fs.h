/* virtio-fs (device id 26) served over vhost-user by virtiofsd. */
#ifndef POPEK_VIRTIO_FS_H
#define POPEK_VIRTIO_FS_H

#include "devices/services.h"

extern const struct device_type virtio_fs_device;

#endif
