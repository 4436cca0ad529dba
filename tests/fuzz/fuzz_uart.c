/* Fuzz the 16550 UART as a hostile guest (register accesses at COM1, with the
 * host typing in between and snapshots taken mid-way). */
#include "devices/uart16550.h"
#include "fuzz_util.h"

static void type(void *uart, uint64_t v)
{
	uart_input(uart, (const uint8_t *)&v, 1 + (v >> 61)); /* 1 to 8 bytes */
}

static void setup(struct fuzz_rig *r)
{
	r->host = type;
	r->host_ctx = fuzz_add_uart(r);
	fuzz_window(r, &r->m.pio, 0x3f8, 8);
}

FUZZ_RIG_TARGET(setup)
