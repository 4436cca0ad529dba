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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	struct virtio_pci *vp = fuzz_add_virtio_rng(r);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar + VIRTIO_BAR_MSIX, 0x1000},
					{&r->m.mmio, bar + VIRTIO_BAR_PBA, 0x1000},
					{&r->m.pio, PCI_CONFIG_ADDR, 8},
					{&r->m.mmio, bar + VIRTIO_BAR_COMMON, 0x40}};
	fuzz_run(r, w, 4, data, size, notify, vp);
	fuzz_rig_end(r);
	return 0;
}
