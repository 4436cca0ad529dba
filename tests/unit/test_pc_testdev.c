#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/pc_testdev.h"
#include "machine/bus.h"

static struct bus pio, mmio;
static struct pc_testdev *dev;

static int setup(void **state)
{
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	dev = pc_testdev_new(&pio, &mmio);
	return dev ? 0 : -1;
}

static int teardown(void **state)
{
	pc_testdev_free(dev);
	bus_destroy(&pio);
	bus_destroy(&mmio);
	return 0;
}

static uint64_t rd(struct bus *b, uint64_t addr, unsigned size)
{
	uint64_t v = 0;
	assert_true(bus_access(b, addr, &v, size, false));
	return v;
}

static void wr(struct bus *b, uint64_t addr, unsigned size, uint64_t v)
{
	assert_true(bus_access(b, addr, &v, size, true));
}

static void port_reads_back(void **state)
{
	wr(&pio, 0xe0, 4, 0x12345678);
	assert_int_equal(rd(&pio, 0xe0, 4), 0x12345678);
	wr(&pio, 0xe1, 1, 0xab); /* one byte of the register */
	assert_int_equal(rd(&pio, 0xe0, 4), 0x1234ab78);
	assert_int_equal(rd(&pio, 0xe2, 2), 0x1234);
	/* past the register's end: not stored, reads as all-ones */
	wr(&pio, 0xe3, 4, 0x11223344);
	assert_int_equal(rd(&pio, 0xe3, 4), 0xffffff44);
	assert_int_equal(rd(&pio, 0xe0, 4), 0x4434ab78);
	assert_false(bus_access(&pio, 0xe4, &(uint32_t){0}, 4, false));
}

static void window_reads_back_every_size(void **state)
{
	uint64_t base = PC_TESTDEV_MMIO;
	wr(&mmio, base, 8, 0x0102030405060708ull);
	assert_int_equal(rd(&mmio, base, 8), 0x0102030405060708ull);
	assert_int_equal(rd(&mmio, base + 1, 4), 0x04050607);
	assert_int_equal(rd(&mmio, base + 6, 2), 0x0102);
	wr(&mmio, base + 3, 1, 0xee);
	assert_int_equal(rd(&mmio, base, 8), 0x01020304ee060708ull);
	wr(&mmio, base + 0xfffe, 2, 0xbeef);
	assert_int_equal(rd(&mmio, base + 0xfffe, 2), 0xbeef);
	/* an 8-byte access at the last bytes: only those are the device's */
	wr(&mmio, base + 0xfffc, 8, 0x1111111122222222ull);
	assert_int_equal(rd(&mmio, base + 0xfffc, 8), 0xffffffff22222222ull);
	assert_false(bus_access(&mmio, base + 0x10000, &(uint8_t){0}, 1, false));
}

static void snapshot_round_trip(void **state)
{
	wr(&pio, 0xe0, 4, 0xcafef00d);
	wr(&mmio, PC_TESTDEV_MMIO + 0x1234, 8, 0x8877665544332211ull);
	void *buf;
	size_t len;
	assert_int_equal(pc_testdev_save(dev, &buf, &len), 0);
	wr(&pio, 0xe0, 4, 0);
	wr(&mmio, PC_TESTDEV_MMIO + 0x1234, 8, 0);
	assert_int_equal(pc_testdev_load(dev, buf, len), 0);
	assert_int_equal(rd(&pio, 0xe0, 4), 0xcafef00d);
	assert_int_equal(rd(&mmio, PC_TESTDEV_MMIO + 0x1234, 8), 0x8877665544332211ull);
	/* a hostile blob: wrong length or version */
	assert_int_equal(pc_testdev_load(dev, buf, len - 1), -1);
	((uint8_t *)buf)[0] ^= 0xff;
	assert_int_equal(pc_testdev_load(dev, buf, len), -1);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(port_reads_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(window_reads_back_every_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(snapshot_round_trip, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
