#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "machine/bus.h"

struct dev {
	uint64_t last_off;
	uint32_t last_val;
	int reads, writes;
};

static void dev_read(void *d, uint64_t off, void *data, unsigned size)
{
	struct dev *dv = d;
	dv->reads++;
	dv->last_off = off;
	memset(data, 0x5a, size);
}

static void dev_write(void *d, uint64_t off, const void *data, unsigned size)
{
	struct dev *dv = d;
	dv->writes++;
	dv->last_off = off;
	dv->last_val = 0;
	memcpy(&dv->last_val, data, size);
}

static const struct bus_ops ops = {dev_read, dev_write};

static void dispatches_by_range(void **state)
{
	struct bus b;
	struct dev a = {0}, c = {0};
	bus_init(&b, "t");
	assert_int_equal(bus_register(&b, 0x100, 8, &ops, &a, "a"), 0);
	assert_int_equal(bus_register(&b, 0x10, 4, &ops, &c, "c"), 0);
	uint32_t v = 0x1234;
	assert_true(bus_access(&b, 0x103, &v, 2, true));
	assert_int_equal(a.writes, 1);
	assert_int_equal(a.last_off, 3);
	assert_int_equal(a.last_val, 0x1234);
	assert_true(bus_access(&b, 0x13, &v, 1, false));
	assert_int_equal(c.reads, 1);
	assert_int_equal(v & 0xff, 0x5a);
	bus_destroy(&b);
}

static void unclaimed_reads_all_ones(void **state)
{
	struct bus b;
	struct dev a = {0};
	bus_init(&b, "t");
	assert_int_equal(bus_register(&b, 0x100, 8, &ops, &a, "a"), 0);
	uint32_t v = 0;
	assert_false(bus_access(&b, 0x108, &v, 4, false));
	assert_int_equal(v, 0xffffffff);
	assert_false(bus_access(&b, 0xff, &v, 4, true));
	assert_int_equal(a.writes + a.reads, 0);
	bus_destroy(&b);
}

static void refuses_overlap_and_wrap(void **state)
{
	struct bus b;
	struct dev a = {0};
	bus_init(&b, "t");
	assert_int_equal(bus_register(&b, 0x100, 8, &ops, &a, "a"), 0);
	assert_int_equal(bus_register(&b, 0x104, 8, &ops, &a, "b"), -1);
	assert_int_equal(bus_register(&b, 0xf8, 9, &ops, &a, "b"), -1);
	assert_int_equal(bus_register(&b, 0xf8, 8, &ops, &a, "b"), 0);
	assert_int_equal(bus_register(&b, ~0ull - 2, 8, &ops, &a, "w"), -1);
	assert_int_equal(bus_register(&b, 0x200, 0, &ops, &a, "z"), -1);
	bus_destroy(&b);
}

static void unregister_removes(void **state)
{
	struct bus b;
	struct dev a = {0};
	bus_init(&b, "t");
	assert_int_equal(bus_register(&b, 0x100, 8, &ops, &a, "a"), 0);
	bus_unregister(&b, 0x100, &a);
	uint8_t v;
	assert_false(bus_access(&b, 0x100, &v, 1, false));
	assert_int_equal(bus_register(&b, 0x100, 8, &ops, &a, "a"), 0);
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dispatches_by_range),
	    cmocka_unit_test(unclaimed_reads_all_ones),
	    cmocka_unit_test(refuses_overlap_and_wrap),
	    cmocka_unit_test(unregister_removes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
