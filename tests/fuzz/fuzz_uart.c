/* Fuzz the 16550 UART as a hostile guest (register accesses at COM1, with the
 * host typing in between and snapshots taken mid-way). */
#include "devices/uart16550.h"
#include "fuzz_util.h"

static void type(void *uart, uint64_t v)
{
	uart_input(uart, (const uint8_t *)&v, 1 + (v >> 61)); /* 1 to 8 bytes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	struct uart *u = fuzz_add_uart(r);
	const struct fuzz_window w[] = {{&r->m.pio, 0x3f8, 8}};
	fuzz_run(r, w, 1, data, size, type, u);
	fuzz_rig_end(r);
	return 0;
}
