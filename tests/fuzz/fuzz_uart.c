/* Fuzz the 16550 UART as a hostile guest (register accesses at COM1, with the
 * host typing in between and snapshots taken mid-way). */
#include <stdlib.h>

#include "devices/uart16550.h"
#include "fuzz_util.h"

static void discard(void *ctx, const void *buf, size_t len)
{
}

static void type(void *uart, uint64_t v)
{
	uart_input(uart, (const uint8_t *)&v, 1 + (v >> 61)); /* 1 to 8 bytes */
}

static void uart_free(void *uart)
{
	uart_destroy(uart);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	struct uart *u = uart_create(&r->m.pio, 0x3f8, machine_irq_line(&r->m, 4), discard, NULL);
	if (!u || machine_add_device(&r->m, &(struct machine_device){.name = "uart0",
								     .dev = u,
								     .save = uart_save,
								     .load = uart_load,
								     .destroy = uart_free}))
		abort();
	const struct fuzz_window w[] = {{&r->m.pio, 0x3f8, 8}};
	fuzz_run(r, w, 1, data, size, type, u);
	fuzz_rig_end(r);
	return 0;
}
