/* Fuzz pvpanic-pci: its BAR (panic events, the capability read) and its
 * config space (moving or disabling the BAR). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add_pvpanic(r);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar, 4096}, {&r->m.pio, PCI_CONFIG_ADDR, 8}};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
