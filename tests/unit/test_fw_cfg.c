/* fw_cfg's legacy I/O interface as kvm-unit-tests uses it: a 16-bit selector
 * write to 0x510, then byte reads from 0x511. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/fw_cfg.h"
#include "machine/bus.h"

static struct bus pio;
static struct fw_cfg *dev;

static void sel(uint16_t key)
{
	bus_access(&pio, 0x510, &key, 2, true);
}

static uint64_t get(uint16_t key, int bytes)
{
	uint64_t v = 0;
	sel(key);
	for (int i = 0; i < bytes; i++) {
		uint8_t b;
		bus_access(&pio, 0x511, &b, 1, false);
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

static int setup(void **state)
{
	bus_init(&pio, "pio");
	dev = fw_cfg_new(&pio, 3ull << 30, 3);
	return dev ? 0 : -1;
}

static int teardown(void **state)
{
	fw_cfg_free(dev);
	bus_destroy(&pio);
	return 0;
}

static void items(void **state)
{
	assert_int_equal(get(0x00, 4), 0x554d4551); /* "QEMU" */
	assert_int_equal(get(0x01, 4), 1);	    /* traditional interface, no DMA */
	assert_int_equal(get(0x03, 8), 3ull << 30);
	assert_int_equal(get(0x05, 2), 3);
	assert_int_equal(get(0x0f, 2), 3);
	assert_int_equal(get(0x19, 4), 0);	      /* file directory: no files */
	assert_int_equal(get(0x02, 8), 0);	      /* unknown: zeros */
	assert_int_equal(get(0x8003, 8), 0);	      /* architecture-specific: none */
	assert_int_equal(get(0x4000, 4), 0x554d4551); /* write-channel bit: same item */
}

static void offset_semantics(void **state)
{
	assert_int_equal(get(0x00, 2), 0x4551);
	uint8_t b;
	bus_access(&pio, 0x511, &b, 1, false); /* continues where the last read stopped */
	assert_int_equal(b, 'M');
	assert_int_equal(get(0x00, 8), 0x554d4551); /* reselect restarts; past the end: 0 */
	sel(0x00);
	bus_access(&pio, 0x510, &b, 1, false); /* 0x510 reads the data register too */
	assert_int_equal(b, 'Q');
	sel(0x05);
	b = 0x5a; /* byte writes (data register) are ignored */
	bus_access(&pio, 0x511, &b, 1, true);
	bus_access(&pio, 0x511, &b, 1, false);
	assert_int_equal(b, 3);
	sel(0x00);
	uint32_t w = 0xdeadbeef;
	bus_access(&pio, 0x511, &w, 4, false); /* wider reads: 0, offset unchanged (QEMU) */
	assert_int_equal(w, 0);
	bus_access(&pio, 0x510, &w, 2, false);
	assert_int_equal(w, 0);
	bus_access(&pio, 0x511, &b, 1, false);
	assert_int_equal(b, 'Q');
	sel(0x05);
	uint32_t hc = 0x00; /* a 32-bit write (the hypercall width) selects nothing */
	bus_access(&pio, 0x510, &hc, 4, true);
	bus_access(&pio, 0x511, &b, 1, false);
	assert_int_equal(b, 3);
}

static void snapshot_round_trip(void **state)
{
	get(0x00, 2); /* selector 0, offset 2 */
	void *buf;
	size_t len;
	assert_int_equal(fw_cfg_save(dev, &buf, &len), 0);
	sel(0x05);
	assert_int_equal(fw_cfg_load(dev, buf, len), 0);
	uint8_t b;
	bus_access(&pio, 0x511, &b, 1, false);
	assert_int_equal(b, 'M');
	assert_int_not_equal(fw_cfg_load(dev, buf, len - 1), 0);
	uint32_t bad = 7;
	memcpy(buf, &bad, 4);
	assert_int_not_equal(fw_cfg_load(dev, buf, len), 0);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(items, setup, teardown),
	    cmocka_unit_test_setup_teardown(offset_semantics, setup, teardown),
	    cmocka_unit_test_setup_teardown(snapshot_round_trip, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
