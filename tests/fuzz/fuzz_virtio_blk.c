/* Fuzz virtio-blk through its PCI transport as a hostile guest driver: the
 * input is a program of BAR reads/writes, config space writes and RAM pokes
 * (to build rings and requests). The VMM must never crash, hang or touch
 * memory outside guest RAM and the image. */
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add_virtio_blk(r);
	fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, 1), VIRTIO_BAR_SIZE);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
}

FUZZ_RIG_TARGET(setup)
