/* Fuzz PCI configuration space with every device popek plugs in (virtio-blk,
 * pvpanic, virtio-rng, virtio-console): conf1 address/data ports at any size,
 * BAR sizing and moving (64-bit BARs, halves written separately), command
 * register decode bits, capabilities, and accesses anywhere in the PCI hole,
 * so BARs left overlapping or half-moved are exercised too. */
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add_platform(r);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
	fuzz_window(r, &r->m.mmio, PCI_MMIO_START, PCI_MMIO_END - PCI_MMIO_START);
}

FUZZ_RIG_TARGET(setup)
