/* Fuzz the virtio modern PCI transport itself: the common configuration
 * (feature selection, status transitions, queue setup and enable, vector
 * assignment), ISR, device config and notify areas, with snapshots of the
 * transport taken in any state. virtio-rng stands behind it: its queue work
 * is the simplest, so the program's ops go to the transport. */
#include <stdlib.h>

#include "devices/virtio_rng.h"
#include "fuzz_util.h"

static void rng_free(void *vp)
{
	virtio_rng_destroy(((struct virtio_pci *)vp)->dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	char err[256];
	struct virtio_rng *rng = virtio_rng_create(&r->env, err, sizeof(err));
	if (!rng)
		abort();
	fuzz_add_virtio(r, "virtio-rng0", virtio_rng_pci(rng), rng_free);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar + VIRTIO_BAR_COMMON, 0x40},
					{&r->m.mmio, bar + VIRTIO_BAR_ISR, 4},
					{&r->m.mmio, bar + VIRTIO_BAR_DEVICE, 0x40},
					{&r->m.mmio, bar + VIRTIO_BAR_NOTIFY, 0x40}};
	fuzz_run(r, w, 4, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
