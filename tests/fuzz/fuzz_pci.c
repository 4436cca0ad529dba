/* Fuzz PCI configuration space with every device popek plugs in (virtio-blk,
 * pvpanic, virtio-rng, virtio-console): conf1 address/data ports at any size,
 * BAR sizing and moving (64-bit BARs, halves written separately), command
 * register decode bits, capabilities, and accesses anywhere in the PCI hole,
 * so BARs left overlapping or half-moved are exercised too. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add_platform(r);
	const struct fuzz_window w[] = {
	    {&r->m.pio, PCI_CONFIG_ADDR, 8},
	    {&r->m.mmio, PCI_MMIO_START, PCI_MMIO_END - PCI_MMIO_START}};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
