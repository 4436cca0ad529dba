/* Fuzz virtio-blk through its PCI transport as a hostile guest driver: the
 * input is a program of BAR reads/writes, config space writes and RAM pokes
 * (to build rings and requests). The VMM must never crash, hang or touch
 * memory outside guest RAM and the image. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add_virtio_blk(r);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar, VIRTIO_BAR_SIZE},
					{&r->m.pio, PCI_CONFIG_ADDR, 8}};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
