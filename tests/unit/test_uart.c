/* 16550A register model: loopback detection, FIFO identification, receive
 * path and the interrupt line as Linux's 8250 driver uses them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/uart16550.h"

struct rig {
	struct bus pio;
	struct uart *u;
	char tx[64];
	size_t ntx;
	int level, edges;
};

static void tx(void *ctx, const void *buf, size_t len)
{
	struct rig *r = ctx;
	memcpy(r->tx + r->ntx, buf, len);
	r->ntx += len;
}

static void irq(void *ctx, unsigned gsi, bool level)
{
	struct rig *r = ctx;
	assert_int_equal(gsi, 4);
	if (level && !r->level)
		r->edges++;
	r->level = level;
}

static struct rig rig;

static uint8_t in(unsigned reg)
{
	uint8_t v;
	bus_access(&rig.pio, 0x3f8 + reg, &v, 1, false);
	return v;
}

static void out(unsigned reg, uint8_t v)
{
	bus_access(&rig.pio, 0x3f8 + reg, &v, 1, true);
}

static int setup(void **state)
{
	memset(&rig, 0, sizeof(rig));
	bus_init(&rig.pio, "pio");
	rig.u = uart_create(&rig.pio, 0x3f8, (struct irq_line){irq, &rig, 4}, tx, &rig);
	return rig.u ? 0 : -1;
}

static int teardown(void **state)
{
	uart_destroy(rig.u);
	bus_destroy(&rig.pio);
	return 0;
}

static void transmits_bytes(void **state)
{
	out(0, 'h');
	out(0, 'i');
	assert_int_equal(rig.ntx, 2);
	assert_memory_equal(rig.tx, "hi", 2);
	assert_int_equal(in(5) & 0x60, 0x60); /* THR and transmitter empty */
}

static void divisor_latch(void **state)
{
	out(3, 0x80);
	out(0, 0x01);
	out(1, 0x00);
	assert_int_equal(in(0), 0x01);
	out(3, 0x03);
	assert_int_equal(rig.ntx, 0); /* DLL write is not data */
}

static void fifo_identifies_16550a(void **state)
{
	out(2, 0x01);
	assert_int_equal(in(2) & 0xc0, 0xc0);
	out(2, 0x00);
	assert_int_equal(in(2) & 0xc0, 0x00);
}

static void loopback_mirrors_modem_lines(void **state)
{
	out(4, 0x10 | 0x0a);		      /* loop, RTS, OUT2 */
	assert_int_equal(in(6) & 0xf0, 0x90); /* CTS, DCD */
	out(0, 'x');
	assert_int_equal(rig.ntx, 0);
	assert_true(in(5) & 1);
	assert_int_equal(in(0), 'x');
}

static void receive_raises_and_clears_irq(void **state)
{
	out(4, 0x08); /* OUT2 gates the IRQ */
	out(1, 0x01); /* RDA interrupt */
	assert_int_equal(rig.level, 0);
	assert_int_equal(uart_input(rig.u, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(rig.level, 1);
	assert_int_equal(in(2) & 0x0f, 0x04);
	assert_int_equal(in(0), 'a');
	assert_int_equal(rig.level, 1);
	assert_int_equal(in(0), 'b');
	assert_int_equal(rig.level, 0);
	assert_int_equal(in(5) & 1, 0);
}

static void thre_interrupt(void **state)
{
	out(4, 0x08);
	out(1, 0x02); /* enabling THRE while empty raises it */
	assert_int_equal(rig.level, 1);
	assert_int_equal(in(2) & 0x0f, 0x02); /* reading IIR clears it */
	assert_int_equal(rig.level, 0);
	out(0, 'z');
	assert_int_equal(rig.level, 1);
	assert_int_equal(rig.edges, 2);
}

static void input_is_bounded(void **state)
{
	uint8_t big[4096];
	memset(big, 'q', sizeof(big));
	size_t took = uart_input(rig.u, big, sizeof(big));
	assert_true(took > 0 && took < sizeof(big));
	assert_int_equal(uart_input(rig.u, big, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(transmits_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(divisor_latch, setup, teardown),
	    cmocka_unit_test_setup_teardown(fifo_identifies_16550a, setup, teardown),
	    cmocka_unit_test_setup_teardown(loopback_mirrors_modem_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(receive_raises_and_clears_irq, setup, teardown),
	    cmocka_unit_test_setup_teardown(thre_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(input_is_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
