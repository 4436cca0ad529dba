/* virtio-blk requests (virtio 1.x §5.2.6) over the guest virtio driver. */
#include "guest.h"
#include "virtio.h"

#define VBLK_WAIT_US 10000000 /* only a dead device takes this long */

static struct {
	uint32_t type, reserved;
	uint64_t sector;
} hdr;
static volatile uint8_t status;

int vblk_request(struct virtio_dev *d, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct vio_buf b[3];
	unsigned n = 0;
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status = 0xff;
	b[n++] = (struct vio_buf){(uint64_t)&hdr, sizeof(hdr), false};
	if (len)
		b[n++] = (struct vio_buf){(uint64_t)buf, len, type == VBLK_T_IN};
	b[n++] = (struct vio_buf){(uint64_t)&status, 1, true};
	vio_submit(d, 0, b, n);
	uint32_t used;
	if (!vio_wait_used(d, 0, &used, VBLK_WAIT_US))
		return VBLK_TIMEOUT;
	return status;
}

uint64_t vblk_capacity(const struct virtio_dev *d)
{
	return mmio_read64(d->devcfg); /* capacity in 512-byte sectors */
}
