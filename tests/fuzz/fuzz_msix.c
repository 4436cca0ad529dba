/* Fuzz MSI-X: the capability in config space (enable, function mask), the
 * vector table and the PBA in the BAR, vectors assigned through the virtio
 * common config, and the device signalling any vector (masked or not). */
#include "fuzz_util.h"

static void notify(void *arg, uint64_t v)
{
	struct virtio_pci *vp = arg;
	pthread_mutex_lock(&vp->lock);
	msix_notify(&vp->msix, v & 0xff);
	pthread_mutex_unlock(&vp->lock);
}

static void setup(struct fuzz_rig *r)
{
	struct virtio_pci *vp = fuzz_add_virtio_rng(r);
	uint64_t bar = fuzz_pci_enable(r, 1);
	r->host = notify;
	r->host_ctx = vp;
	fuzz_window(r, &r->m.mmio, bar + VIRTIO_BAR_MSIX, 0x1000);
	fuzz_window(r, &r->m.mmio, bar + VIRTIO_BAR_PBA, 0x1000);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
	fuzz_window(r, &r->m.mmio, bar + VIRTIO_BAR_COMMON, 0x40);
}

FUZZ_RIG_TARGET(setup)
