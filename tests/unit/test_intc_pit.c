/* 8254 PIT of the soft engine: channel 2 countdown through port 0x61 as Linux
 * calibrates the TSC, latch and read-back commands, channel 0 on IRQ0. */
#include "intc_test.h"

#define MS     1000000ull
#define PIT_HZ 1193182ull

static uint16_t read_count(struct soft_intc *ic, unsigned ch)
{
	outb(ic, 0x43, (uint8_t)(ch << 6)); /* counter latch */
	uint8_t lo = inb(ic, 0x40 + ch);
	return (uint16_t)(lo | inb(ic, 0x40 + ch) << 8);
}

static void channel2_countdown_via_port61(void **state)
{
	struct soft_intc *ic = test_intc(1);
	uint16_t latch = (uint16_t)(PIT_HZ / 100); /* 10 ms */
	/* Linux's pit_calibrate_tsc(): gate high, speaker off, mode 0, lo/hi. */
	outb(ic, 0x61, (inb(ic, 0x61) & ~0x02) | 0x01);
	outb(ic, 0x43, 0xb0);
	assert_int_equal(inb(ic, 0x61) & 0x20, 0); /* OUT2 low after the control word */
	outb(ic, 0x42, latch & 0xff);
	outb(ic, 0x42, latch >> 8);
	uint64_t t0 = now_ns();
	uint16_t c1 = read_count(ic, 2);
	assert_true(c1 <= latch && c1 > latch / 2);
	while (!(inb(ic, 0x61) & 0x20) && now_ns() - t0 < 2000 * MS)
		;
	uint64_t t = now_ns() - t0;
	assert_true(t >= 9 * MS && t < 1000 * MS);
	sleep_ms(1);
	assert_true(read_count(ic, 2) > latch); /* wrapped past zero */

	/* Read-back: status of channel 2 (OUT high, lo/hi, mode 0). */
	outb(ic, 0x43, 0xe8);
	assert_int_equal(inb(ic, 0x42), 0x80 | 0x30);
	/* Gate low pauses mode 0. */
	outb(ic, 0x61, 0x00);
	uint16_t p1 = read_count(ic, 2);
	sleep_ms(5);
	assert_int_equal(read_count(ic, 2), p1);
	intc_destroy(ic);
}

static void live_reads_toggle_bytes(void **state)
{
	struct soft_intc *ic = test_intc(1);
	outb(ic, 0x61, 0x01);
	outb(ic, 0x43, 0xb4); /* channel 2, lo/hi, mode 2 */
	outb(ic, 0x42, 0x00);
	outb(ic, 0x42, 0x80); /* 0x8000 */
	uint8_t lo = inb(ic, 0x42), hi = inb(ic, 0x42);
	uint16_t v = (uint16_t)(lo | hi << 8);
	assert_true(v <= 0x8000 && v > 0x4000);
	/* Read-back latching count and status together: status comes first. */
	outb(ic, 0x43, 0xc8);
	assert_int_equal(inb(ic, 0x42), 0x80 | 0x34); /* OUT is high in mode 2 */
	lo = inb(ic, 0x42);
	hi = inb(ic, 0x42);
	assert_true((uint16_t)(lo | hi << 8) <= 0x8000);
	/* The refresh bit toggles every 15 us. */
	uint8_t first = inb(ic, 0x61) & 0x10;
	uint64_t t0 = now_ns();
	while ((inb(ic, 0x61) & 0x10) == first && now_ns() - t0 < 100 * MS)
		;
	assert_true(now_ns() - t0 < 100 * MS);
	intc_destroy(ic);
}

static unsigned count_irqs(struct soft_intc *ic, uint64_t ms, uint8_t vector)
{
	unsigned n = 0;
	uint64_t t0 = now_ns();
	while (now_ns() - t0 < ms * MS) {
		intc_poll(ic, 0);
		if (attention(ic, 0) & INTC_ATTN_IRQ) {
			assert_int_equal(intc_ack(ic, 0), vector);
			outb(ic, 0x20, 0x20);
			n++;
		}
	}
	return n;
}

static void channel0_rate_generator_on_irq0(void **state)
{
	struct soft_intc *ic = test_intc(1);
	pic_init_linux(ic, 0x01);
	outb(ic, 0x21, 0xfe);
	outb(ic, 0x43, 0x34); /* Linux's periodic mode: channel 0, lo/hi, mode 2 */
	outb(ic, 0x40, (PIT_HZ / 100) & 0xff);
	outb(ic, 0x40, (PIT_HZ / 100) >> 8);
	unsigned n = count_irqs(ic, 200, 0x20);
	assert_true(n >= 8 && n <= 21); /* 100 Hz for 200 ms; late polls coalesce ticks */

	/* One-shot (mode 4, as Linux's oneshot clockevent): exactly one. */
	outb(ic, 0x43, 0x38);
	outb(ic, 0x40, (PIT_HZ / 200) & 0xff);
	outb(ic, 0x40, (PIT_HZ / 200) >> 8);
	assert_int_equal(count_irqs(ic, 50, 0x20), 1);

	/* Shutdown: a control word alone stops the interrupts. */
	outb(ic, 0x43, 0x34);
	outb(ic, 0x40, 0x00);
	outb(ic, 0x40, 0x10);
	outb(ic, 0x43, 0x30);
	assert_int_equal(count_irqs(ic, 30, 0x20), 0);
	intc_destroy(ic);
}

static void irq0_reaches_ioapic_pin2(void **state)
{
	struct soft_intc *ic = test_intc(1);
	apic_enable(ic, 0);
	ioapic_write(ic, 0x15, 0);
	ioapic_write(ic, 0x14, 0x30); /* pin 2 -> vector 0x30, CPU 0, edge */
	outb(ic, 0x43, 0x30);
	outb(ic, 0x40, (PIT_HZ / 1000) & 0xff);
	outb(ic, 0x40, (PIT_HZ / 1000) >> 8);
	/* Halt until the PIT fires: intc_wait sleeps to its deadline. */
	assert_int_equal(intc_wait(ic, 0, true), INTC_WAKE_READY);
	assert_int_equal(intc_ack(ic, 0), 0x30);
	intc_destroy(ic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(channel2_countdown_via_port61),
	    cmocka_unit_test(live_reads_toggle_bytes),
	    cmocka_unit_test(channel0_rate_generator_on_irq0),
	    cmocka_unit_test(irq0_reaches_ioapic_pin2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
