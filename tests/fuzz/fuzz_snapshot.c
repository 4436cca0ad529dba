/* libFuzzer: a hostile state.bin. The input is parsed as a section file and
 * every record popek would load from it is decoded: nothing may crash, read
 * out of bounds or hang, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "devices/cmos_rtc.h"
#include "devices/uart16550.h"
#include "machine/bus.h"
#include "snapshot/codec.h"
#include "snapshot/sections.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sections sec;
	static struct cpu_state cpu;
	static struct vm_state vm;
	static struct bus pio;
	static struct uart *uart;
	static struct cmos_rtc *rtc;
	char err[256];
	if (!uart) {
		bus_init(&pio, "pio");
		uart = uart_create(&pio, 0x3f8, (struct irq_line){0}, NULL, NULL);
		rtc = cmos_rtc_new(&pio, 64u << 20);
	}
	/* The raw input as each record too, so decoders see arbitrary bytes directly. */
	decode_cpu_state(data, size, &cpu);
	decode_vm_state(data, size, &vm);
	uart_load(uart, data, size);
	cmos_rtc_load(rtc, data, size);
	if (sections_parse(data, size, &sec, err, sizeof(err)))
		return 0;
	for (int i = 0; i < sec.n; i++) {
		decode_cpu_state(sec.s[i].data, sec.s[i].len, &cpu);
		decode_vm_state(sec.s[i].data, sec.s[i].len, &vm);
		uart_load(uart, sec.s[i].data, sec.s[i].len);
		cmos_rtc_load(rtc, sec.s[i].data, sec.s[i].len);
	}
	return 0;
}
