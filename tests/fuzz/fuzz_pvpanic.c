/* Fuzz pvpanic-pci: its BAR (panic events, the capability read) and its
 * config space (moving or disabling the BAR). */
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add_pvpanic(r);
	fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, 1), 4096);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
}

FUZZ_RIG_TARGET(setup)
