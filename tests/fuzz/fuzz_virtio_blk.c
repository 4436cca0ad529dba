/* Fuzz virtio-blk through its PCI transport as a hostile guest driver: the
 * input is a program of BAR reads/writes, config space writes and RAM pokes
 * (to build rings and requests). The VMM must never crash, hang or touch
 * memory outside guest RAM and the image. */
#include <stdlib.h>

#include "devices/virtio_blk.h"
#include "fuzz_util.h"

static void blk_free(void *vp)
{
	virtio_blk_destroy(((struct virtio_pci *)vp)->dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	char err[256];
	struct virtio_blk *blk = virtio_blk_create(&r->env, fuzz_disk(), false, err, sizeof(err));
	if (!blk)
		abort();
	fuzz_add_virtio(r, "virtio-blk0", virtio_blk_pci(blk), blk_free);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar, VIRTIO_BAR_SIZE},
					{&r->m.pio, PCI_CONFIG_ADDR, 8}};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
