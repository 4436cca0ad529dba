#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "devices/cmos_rtc.h"
#include "machine/bus.h"

static struct bus pio;
static struct cmos_rtc *rtc;

static uint8_t rd(uint8_t idx)
{
	uint8_t v;
	bus_access(&pio, 0x70, &idx, 1, true);
	bus_access(&pio, 0x71, &v, 1, false);
	return v;
}

static void wr(uint8_t idx, uint8_t v)
{
	bus_access(&pio, 0x70, &idx, 1, true);
	bus_access(&pio, 0x71, &v, 1, true);
}

static int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

static int setup(void **state)
{
	bus_init(&pio, "pio");
	rtc = cmos_rtc_new(&pio, 256u << 20);
	return rtc ? 0 : -1;
}

static int teardown(void **state)
{
	cmos_rtc_free(rtc);
	bus_destroy(&pio);
	return 0;
}

static void reads_host_time_in_bcd(void **state)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	assert_int_equal(rd(0x0a) & 0x80, 0); /* never "update in progress" */
	assert_int_equal(rd(0x0d), 0x80);
	assert_int_equal(bcd(rd(0x09)), tm.tm_year % 100);
	assert_int_equal(bcd(rd(0x32)), (tm.tm_year + 1900) / 100);
	assert_int_equal(bcd(rd(0x08)), tm.tm_mon + 1);
	int sec = bcd(rd(0x00)) + 60 * bcd(rd(0x02));
	int want = tm.tm_sec + 60 * tm.tm_min;
	assert_true(abs(sec - want) <= 2 || abs(sec - want) >= 3598);
}

static void binary_mode_and_memory_size(void **state)
{
	wr(0x0b, 0x06); /* binary, 24h */
	assert_true(rd(0x09) < 100);
	assert_int_equal(rd(0x34) | rd(0x35) << 8, (256 - 16) * 16); /* 64 KiB units above 16 MiB */
	wr(0x40, 0x5a);
	assert_int_equal(rd(0x40), 0x5a);
}

static void guest_sets_the_clock(void **state)
{
	wr(0x0b, 0x82); /* SET, BCD, 24h */
	wr(0x32, 0x20);
	wr(0x09, 0x01); /* 2001-02-03 04:05:06 */
	wr(0x08, 0x02);
	wr(0x07, 0x03);
	wr(0x04, 0x04);
	wr(0x02, 0x05);
	wr(0x00, 0x06);
	wr(0x0b, 0x02);
	assert_int_equal(rd(0x09), 0x01);
	assert_int_equal(rd(0x08), 0x02);
	assert_int_equal(rd(0x04), 0x04);
	void *buf;
	size_t len;
	assert_int_equal(cmos_rtc_save(rtc, &buf, &len), 0);
	struct cmos_rtc *other = cmos_rtc_new(&(struct bus){0}, 64u << 20);
	assert_int_equal(cmos_rtc_load(other, buf, len), 0);
	assert_int_equal(cmos_rtc_load(other, buf, len - 1), -1);
	((uint8_t *)buf)[4] = 0x80; /* index out of range */
	assert_int_equal(cmos_rtc_load(other, buf, len), -1);
	free(buf);
	cmos_rtc_free(other);
}

/* Day 0 of month 0 of year 0 normalizes to a date before year 0, which the
 * registers cannot show: the clock keeps running at host time. */
static void guest_date_before_year_zero_is_ignored(void **state)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	wr(0x0b, 0x86); /* SET, binary, 24h */
	wr(0x32, 0);
	wr(0x09, 0);
	wr(0x08, 0);
	wr(0x07, 0);
	wr(0x0b, 0x06);
	assert_int_equal(rd(0x09), tm.tm_year % 100);
	assert_int_equal(rd(0x32), (tm.tm_year + 1900) / 100);
}

/* Years before 1900 read back as set (not as a negative tm_year % 100). */
static void guest_sets_year_0050(void **state)
{
	wr(0x0b, 0x82); /* SET, BCD, 24h */
	wr(0x32, 0x00);
	wr(0x09, 0x50);
	wr(0x08, 0x06);
	wr(0x07, 0x15);
	wr(0x0b, 0x02);
	assert_int_equal(rd(0x09), 0x50);
	assert_int_equal(rd(0x32), 0x00);
}

/* A hostile snapshot's clock offset must not overflow the host time. */
static void load_refuses_huge_offset(void **state)
{
	void *buf;
	size_t len;
	assert_int_equal(cmos_rtc_save(rtc, &buf, &len), 0);
	int64_t huge = INT64_MAX;
	memcpy((uint8_t *)buf + 8, &huge, sizeof(huge));
	assert_int_equal(cmos_rtc_load(rtc, buf, len), -1);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(reads_host_time_in_bcd, setup, teardown),
	    cmocka_unit_test_setup_teardown(binary_mode_and_memory_size, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_sets_the_clock, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_date_before_year_zero_is_ignored, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(guest_sets_year_0050, setup, teardown),
	    cmocka_unit_test_setup_teardown(load_refuses_huge_offset, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
