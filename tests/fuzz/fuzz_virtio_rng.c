/* Fuzz virtio-rng as a hostile driver: its whole BAR, config space and guest
 * RAM (rings and buffers the device fills with entropy). */
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add_virtio_rng(r);
	fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, 1), VIRTIO_BAR_SIZE);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
}

FUZZ_RIG_TARGET(setup)
