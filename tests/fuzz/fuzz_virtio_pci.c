/* Fuzz the virtio modern PCI transport itself: the common configuration
 * (feature selection, status transitions, queue setup and enable, vector
 * assignment), ISR, device config and notify areas, with snapshots of the
 * transport taken in any state. virtio-rng stands behind it: its queue work
 * is the simplest, so the program's ops go to the transport. */
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add_virtio_rng(r);
	uint64_t bar = fuzz_pci_enable(r, 1);
	fuzz_window(r, &r->m.mmio, bar + VIRTIO_BAR_COMMON, 0x40);
	fuzz_window(r, &r->m.mmio, bar + VIRTIO_BAR_ISR, 4);
	fuzz_window(r, &r->m.mmio, bar + VIRTIO_BAR_DEVICE, 0x40);
	fuzz_window(r, &r->m.mmio, bar + VIRTIO_BAR_NOTIFY, 0x40);
}

FUZZ_RIG_TARGET(setup)
