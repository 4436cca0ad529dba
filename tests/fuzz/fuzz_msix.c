/* Fuzz MSI-X: the capability in config space (enable, function mask), the
 * vector table and the PBA in the BAR, vectors assigned through the virtio
 * common config, and the device signalling any vector (masked or not). */
#include <stdlib.h>

#include "devices/virtio_rng.h"
#include "fuzz_util.h"

static void rng_free(void *vp)
{
	virtio_rng_destroy(((struct virtio_pci *)vp)->dev);
}

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
	char err[256];
	struct virtio_rng *rng = virtio_rng_create(&r->env, err, sizeof(err));
	if (!rng)
		abort();
	struct virtio_pci *vp = virtio_rng_pci(rng);
	fuzz_add_virtio(r, "virtio-rng0", vp, rng_free);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar + VIRTIO_BAR_MSIX, 0x1000},
					{&r->m.mmio, bar + VIRTIO_BAR_PBA, 0x1000},
					{&r->m.pio, PCI_CONFIG_ADDR, 8},
					{&r->m.mmio, bar + VIRTIO_BAR_COMMON, 0x40}};
	fuzz_run(r, w, 4, data, size, notify, vp);
	fuzz_rig_end(r);
	return 0;
}
