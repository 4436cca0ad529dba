/* Fuzz virtio-console as a hostile driver (its BAR, config space, RAM for
 * the receive and transmit queues) while the host types into it. */
#include "devices/virtio_console.h"
#include "fuzz_util.h"

static void type(void *con, uint64_t v)
{
	virtio_console_input(con, (const uint8_t *)&v, 1 + (v >> 61)); /* 1 to 8 bytes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	struct virtio_console *con = fuzz_add_virtio_console(r);
	uint64_t bar = fuzz_pci_enable(r, 1);
	const struct fuzz_window w[] = {{&r->m.mmio, bar, VIRTIO_BAR_SIZE},
					{&r->m.pio, PCI_CONFIG_ADDR, 8}};
	fuzz_run(r, w, 2, data, size, type, con);
	fuzz_rig_end(r);
	return 0;
}
