/* Fuzz the virtio modern PCI transport itself: the common configuration
 * (feature selection, status transitions, queue setup and enable, vector
 * assignment), ISR, device config and notify areas, with snapshots of the
 * transport taken in any state. virtio-rng stands behind it: its queue work
 * is the simplest, so the program's ops go to the transport. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add_virtio_rng(r);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar + VIRTIO_BAR_COMMON, 0x40},
					{&r->m.mmio, bar + VIRTIO_BAR_ISR, 4},
					{&r->m.mmio, bar + VIRTIO_BAR_DEVICE, 0x40},
					{&r->m.mmio, bar + VIRTIO_BAR_NOTIFY, 0x40}};
	fuzz_run(r, w, 4, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
