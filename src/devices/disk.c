#include "devices/disk.h"

#include <stdio.h>
#include <stdlib.h>

#include "devices/vhost_user_blk.h"
#include "devices/virtio_blk.h"

struct disk {
	const struct device_type *t; /* what serves it */
	void *dev;
};

static int disk_count(const struct vm_config *cfg)
{
	return cfg->ndisks;
}

static int disk_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		       char *err, size_t errlen)
{
	struct disk *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory creating a disk");
		return -1;
	}
	d->t = cfg->disk[i].kind == DISK_RAW ? &virtio_blk_device : &vhost_user_blk_device;
	*dev = d;
	return d->t->create(s, cfg, i, &d->dev, err, errlen);
}

static int disk_save(void *dev, void **buf, size_t *len)
{
	struct disk *d = dev;
	return d->t->save(d->dev, buf, len);
}

static int disk_load(void *dev, const void *buf, size_t len)
{
	struct disk *d = dev;
	return d->t->load ? d->t->load(d->dev, buf, len) : -1;
}

static void disk_destroy(void *dev)
{
	struct disk *d = dev;
	if (!d)
		return;
	d->t->destroy(d->dev);
	free(d);
}

int disk_fd(const void *dev)
{
	const struct disk *d = dev;
	return d->t == &virtio_blk_device ? virtio_blk_fd(d->dev) : -1;
}

int disk_track(void *dev, uint64_t *bitmap)
{
	struct disk *d = dev;
	if (d->t != &virtio_blk_device)
		return -1;
	virtio_blk_track(d->dev, bitmap);
	return 0;
}

void disk_dirty_mark(uint64_t *bitmap, uint64_t pos, uint64_t len)
{
	for (uint64_t b = pos / DISK_BLOCK; len && b <= (pos + len - 1) / DISK_BLOCK; b++)
		__atomic_fetch_or(&bitmap[b / 64], 1ull << (b % 64), __ATOMIC_RELAXED);
}

const struct device_type disk_device = {.name = "virtio-blk",
					.numbered = true,
					.count = disk_count,
					.create = disk_create,
					.save = disk_save,
					.load = disk_load,
					.destroy = disk_destroy};
