/* 8259 pair of the soft engine: initialization, delivery through the BSP's
 * LINT0 (ExtINT), priorities, EOI, cascade, ELCR level mode, AEOI, spurious. */
#include "intc_test.h"

static void pulse(struct soft_intc *ic, unsigned irq)
{
	intc_irq_line(ic, irq, true);
	intc_irq_line(ic, irq, false);
}

static void delivers_and_eois(void **state)
{
	struct soft_intc *ic = test_intc(2);
	pic_init_linux(ic, 0x01);
	outb(ic, 0x21, 0xfd); /* only IRQ1 */
	outb(ic, 0xa1, 0xff);
	assert_int_equal(attention(ic, 0), 0);

	pulse(ic, 1);
	assert_int_equal(attention(ic, 0), INTC_ATTN_IRQ);
	assert_int_equal(attention(ic, 1), 0); /* the PIC only reaches the BSP */
	assert_int_equal(intc_pending(ic, 0), 0x21);
	outb(ic, 0x20, 0x0a); /* OCW3: read IRR */
	assert_int_equal(inb(ic, 0x20), 0x02);

	assert_int_equal(intc_ack(ic, 0), 0x21);
	assert_int_equal(attention(ic, 0), 0);
	outb(ic, 0x20, 0x0b); /* OCW3: read ISR */
	assert_int_equal(inb(ic, 0x20), 0x02);

	pulse(ic, 1); /* same priority in service: held */
	assert_int_equal(attention(ic, 0), 0);
	outb(ic, 0x20, 0x20); /* non-specific EOI */
	assert_int_equal(inb(ic, 0x20), 0x00);
	assert_int_equal(attention(ic, 0), INTC_ATTN_IRQ);
	assert_int_equal(intc_ack(ic, 0), 0x21);
	outb(ic, 0x20, 0x61); /* specific EOI for IRQ1 */
	assert_int_equal(inb(ic, 0x20), 0x00);
	assert_int_equal(inb(ic, 0x21), 0xfd);
	intc_destroy(ic);
}

static void priority_and_cascade(void **state)
{
	struct soft_intc *ic = test_intc(1);
	pic_init_linux(ic, 0x01);
	outb(ic, 0x21, 0x00);
	outb(ic, 0xa1, 0x00);
	pulse(ic, 12);
	pulse(ic, 4);
	assert_int_equal(intc_ack(ic, 0), 0x2c); /* slave via IRQ2 beats IRQ4 */
	/* IRQ4 has lower priority than IRQ2, which is in service. */
	assert_int_equal(attention(ic, 0), 0);
	outb(ic, 0xa0, 0x20);
	outb(ic, 0x20, 0x20);
	assert_int_equal(intc_ack(ic, 0), 0x24);
	outb(ic, 0x20, 0x20);
	assert_int_equal(attention(ic, 0), 0);

	/* Nothing requested: nothing to acknowledge. */
	assert_int_equal(intc_ack(ic, 0), -1);
	/* A slave request withdrawn before INTA is withdrawn from the master. */
	pulse(ic, 12);
	outb(ic, 0xa1, 0x10);
	assert_int_equal(attention(ic, 0), 0);
	outb(ic, 0x20, 0x0a);
	assert_int_equal(inb(ic, 0x20), 0x00);
	intc_destroy(ic);
}

static void masked_requests_wait(void **state)
{
	struct soft_intc *ic = test_intc(1);
	pic_init_linux(ic, 0x01);
	outb(ic, 0x21, 0xff);
	pulse(ic, 3);
	assert_int_equal(attention(ic, 0), 0);
	assert_int_equal(intc_pending(ic, 0), -1);
	outb(ic, 0x21, 0xf7);
	assert_int_equal(intc_pending(ic, 0), 0x23);
	intc_destroy(ic);
}

static void level_mode_via_elcr(void **state)
{
	struct soft_intc *ic = test_intc(1);
	pic_init_linux(ic, 0x01);
	outb(ic, 0x21, 0xfb);
	outb(ic, 0xa1, 0xfb); /* IRQ10 */
	outb(ic, 0x4d1, 0x04);
	assert_int_equal(inb(ic, 0x4d1), 0x04);
	outb(ic, 0x4d0, 0xff);
	assert_int_equal(inb(ic, 0x4d0), 0xf8); /* IRQ0-2 cannot be level */

	intc_irq_line(ic, 10, true);
	assert_int_equal(intc_ack(ic, 0), 0x2a);
	outb(ic, 0xa0, 0x20);
	outb(ic, 0x20, 0x20);
	/* Still asserted: requested again. */
	assert_int_equal(intc_pending(ic, 0), 0x2a);
	intc_irq_line(ic, 10, false);
	assert_int_equal(intc_pending(ic, 0), -1);
	assert_int_equal(attention(ic, 0), 0);
	intc_destroy(ic);
}

static void auto_eoi_and_poll(void **state)
{
	struct soft_intc *ic = test_intc(1);
	pic_init_linux(ic, 0x03); /* AEOI */
	outb(ic, 0x21, 0x00);
	pulse(ic, 5);
	assert_int_equal(intc_ack(ic, 0), 0x25);
	outb(ic, 0x20, 0x0b);
	assert_int_equal(inb(ic, 0x20), 0x00); /* no ISR bit in AEOI mode */

	pulse(ic, 6);
	outb(ic, 0x20, 0x0c); /* OCW3 poll */
	assert_int_equal(inb(ic, 0x20), 0x86);
	outb(ic, 0x20, 0x0c);
	assert_int_equal(inb(ic, 0x20), 0x00);
	intc_destroy(ic);
}

static void not_our_ports(void **state)
{
	struct soft_intc *ic = test_intc(1);
	uint8_t v = 0x5a;
	assert_false(intc_pio(ic, 0x3f8, &v, 1, false));
	assert_int_equal(v, 0x5a);
	assert_false(intc_pio(ic, 0x22, &v, 1, true));
	intc_destroy(ic);
}

static void apic_disabled_gets_pic_directly(void **state)
{
	struct soft_intc *ic = test_intc(1);
	pic_init_linux(ic, 0x01);
	outb(ic, 0x21, 0xfe);
	/* Mask LINT0: the PIC no longer reaches the CPU... */
	apic_write(ic, 0, 0x350, 0x10700);
	pulse(ic, 0);
	assert_int_equal(attention(ic, 0), 0);
	/* ...until the APIC is globally disabled: INTR then goes straight in. */
	assert_int_equal(wrmsr(ic, 0, 0x1b, 0xfee00000 | 0x100), 1);
	assert_int_equal(attention(ic, 0), INTC_ATTN_IRQ);
	assert_int_equal(intc_ack(ic, 0), 0x20);
	intc_destroy(ic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(delivers_and_eois),
	    cmocka_unit_test(priority_and_cascade),
	    cmocka_unit_test(masked_requests_wait),
	    cmocka_unit_test(level_mode_via_elcr),
	    cmocka_unit_test(auto_eoi_and_poll),
	    cmocka_unit_test(not_our_ports),
	    cmocka_unit_test(apic_disabled_gets_pic_directly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
