/* Fuzz virtio-rng as a hostile driver: its whole BAR, config space and guest
 * RAM (rings and buffers the device fills with entropy). */
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
	const struct fuzz_window w[] = {{&r->m.mmio, bar, VIRTIO_BAR_SIZE},
					{&r->m.pio, PCI_CONFIG_ADDR, 8}};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
