/* Fuzz virtio-console as a hostile driver (its BAR, config space, RAM for
 * the receive and transmit queues) while the host types into it. */
#include "devices/virtio_console.h"
#include "fuzz_util.h"

static void type(void *con, uint64_t v)
{
	virtio_console_input(con, (const uint8_t *)&v, 1 + (v >> 61)); /* 1 to 8 bytes */
}

static void setup(struct fuzz_rig *r)
{
	r->host = type;
	r->host_ctx = fuzz_add_virtio_console(r);
	fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, 1), VIRTIO_BAR_SIZE);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
}

FUZZ_RIG_TARGET(setup)
