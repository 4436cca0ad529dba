/* virtio-blk backed by a raw image file (--disk FILE[,ro][,format=raw]). Requests run on
 * the vCPU thread that kicked the queue, or with eventfd kicks on the VM's
 * loop: synchronous, and FLUSH completes only after fsync() returned. */
#ifndef POPEK_VIRTIO_BLK_H
#define POPEK_VIRTIO_BLK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_pci.h"

struct virtio_blk;
struct disk_config;

struct virtio_blk *virtio_blk_create(const struct virtio_env *env, const struct disk_config *d,
				     char *err, size_t errlen);
/* Its transport. */
struct virtio_pci *virtio_blk_pci(struct virtio_blk *b);
void virtio_blk_destroy(void *blk);
/* A raw --disk (devices/disk.h chooses it per disk). */
extern const struct device_type virtio_blk_device;
/* The open image (snapshots identify it through this fd). */
int virtio_blk_fd(const struct virtio_blk *b);
/* --copy-storage: mark each block written in bitmap, or stop (NULL); see
 * disk_track in devices/disk.h. */
void virtio_blk_track(struct virtio_blk *b, uint64_t *bitmap);

#endif
