/* IOAPIC of the soft engine: redirection entries, physical and logical
 * destinations, edge and level pins with remote IRR and EOI broadcast, MSI. */
#include "intc_test.h"

#define RTE_LEVEL   (1u << 15)
#define RTE_MASKED  (1u << 16)
#define RTE_RIRR    (1u << 14)
#define RTE_LOGICAL (1u << 11)

static void route(struct soft_intc *ic, unsigned pin, uint32_t low, uint8_t dest)
{
	ioapic_write(ic, 0x11 + 2 * pin, (uint32_t)dest << 24);
	ioapic_write(ic, 0x10 + 2 * pin, low);
}

static struct soft_intc *setup(void)
{
	struct soft_intc *ic = test_intc(2);
	apic_enable(ic, 0);
	apic_enable(ic, 1);
	return ic;
}

static void identifies_itself(void **state)
{
	struct soft_intc *ic = setup();
	assert_int_equal(ioapic_read(ic, 1), 0x00170011); /* 24 pins, version 0x11 */
	ioapic_write(ic, 0, 0x05000000);
	assert_int_equal(ioapic_read(ic, 0), 0x05000000);
	assert_int_equal(ioapic_read(ic, 0x10), RTE_MASKED); /* pins start masked */
	intc_destroy(ic);
}

static void edge_pin_to_physical_cpu(void **state)
{
	struct soft_intc *ic = setup();
	route(ic, 5, 0x35, 1);
	intc_irq_line(ic, 5, true);
	intc_irq_line(ic, 5, false);
	assert_int_equal(attention(ic, 0), 0);
	assert_int_equal(attention(ic, 1), INTC_ATTN_IRQ);
	assert_int_equal(intc_pending(ic, 1), 0x35);
	assert_int_equal(intc_ack(ic, 1), 0x35);
	assert_int_equal(apic_read(ic, 1, 0x100 + 0x10), 1u << (0x35 - 32)); /* ISR */
	assert_int_equal(apic_read(ic, 1, 0x180 + 0x10), 0);		     /* TMR: edge */
	apic_write(ic, 1, 0xb0, 0);
	assert_int_equal(apic_read(ic, 1, 0x100 + 0x10), 0);
	assert_int_equal(attention(ic, 1), 0);
	intc_destroy(ic);
}

static void masked_edge_is_delivered_on_unmask(void **state)
{
	struct soft_intc *ic = setup();
	route(ic, 7, 0x37 | RTE_MASKED, 0);
	intc_irq_line(ic, 7, true);
	intc_irq_line(ic, 7, false);
	assert_int_equal(attention(ic, 0), 0);
	route(ic, 7, 0x37, 0);
	assert_int_equal(intc_ack(ic, 0), 0x37);
	intc_destroy(ic);
}

static void level_pin_holds_remote_irr(void **state)
{
	struct soft_intc *ic = setup();
	route(ic, 9, 0x39 | RTE_LEVEL, 0);
	intc_irq_line(ic, 9, true);
	assert_int_equal(intc_ack(ic, 0), 0x39);
	assert_true(ioapic_read(ic, 0x10 + 18) & RTE_RIRR);
	assert_int_equal(apic_read(ic, 0, 0x180 + 0x10), 1u << (0x39 - 32)); /* TMR: level */
	assert_int_equal(intc_pending(ic, 0), -1);

	/* EOI while still asserted: remote IRR clears and the pin fires again. */
	apic_write(ic, 0, 0xb0, 0);
	assert_int_equal(intc_ack(ic, 0), 0x39);
	intc_irq_line(ic, 9, false);
	apic_write(ic, 0, 0xb0, 0);
	assert_false(ioapic_read(ic, 0x10 + 18) & RTE_RIRR);
	assert_int_equal(intc_pending(ic, 0), -1);
	assert_int_equal(attention(ic, 0), 0);
	intc_destroy(ic);
}

static void logical_flat_and_lowest_priority(void **state)
{
	struct soft_intc *ic = setup();
	apic_write(ic, 0, 0xd0, 0x01000000);
	apic_write(ic, 1, 0xd0, 0x02000000);
	route(ic, 10, 0x4a | RTE_LOGICAL, 0x02);
	intc_irq_line(ic, 10, true);
	intc_irq_line(ic, 10, false);
	assert_int_equal(attention(ic, 0), 0);
	assert_int_equal(intc_ack(ic, 1), 0x4a);

	/* Lowest priority among both: CPU 0 is busy (TPR 0x20), CPU 1 gets it. */
	apic_write(ic, 0, 0x80, 0x20);
	route(ic, 11, 0x4b | RTE_LOGICAL | (1u << 8), 0x03);
	intc_irq_line(ic, 11, true);
	intc_irq_line(ic, 11, false);
	assert_int_equal(intc_pending(ic, 0), -1);
	assert_true(apic_read(ic, 1, 0x200 + 0x20) & (1u << (0x4b - 64)));
	intc_destroy(ic);
}

static void msi_messages(void **state)
{
	struct soft_intc *ic = setup();
	intc_msi(ic, 0xfee01000, 0x41);
	assert_int_equal(attention(ic, 0), 0);
	assert_int_equal(intc_ack(ic, 1), 0x41);
	intc_msi(ic, 0xfee00000, 0x400); /* NMI to CPU 0 */
	assert_int_equal(attention(ic, 0), INTC_ATTN_EVENT);
	uint8_t sipi;
	assert_int_equal(intc_take_events(ic, 0, &sipi), INTC_EV_NMI);
	intc_msi(ic, 0x12345000, 0x41); /* not an interrupt address: dropped */
	intc_msi(ic, 0xfee00000, 0x05); /* illegal vector: dropped, ESR bit 6 */
	assert_int_equal(attention(ic, 0), 0);
	apic_write(ic, 0, 0x280, 0);
	intc_destroy(ic);
}

/* Linux on a KVM-like hypervisor without interrupt remapping runs the APICs
 * in x2APIC physical mode: 8-bit IOAPIC and MSI destinations are APIC IDs. */
static void x2apic_cpus_get_8bit_messages(void **state)
{
	struct soft_intc *ic = setup();
	assert_int_equal(wrmsr(ic, 1, 0x1b, 0xfee00c00), 1);
	assert_int_equal(wrmsr(ic, 1, 0x80f, 0x1ff), 1);
	route(ic, 4, 0x34, 1);
	intc_irq_line(ic, 4, true);
	intc_irq_line(ic, 4, false);
	assert_int_equal(intc_ack(ic, 1), 0x34);
	assert_int_equal(wrmsr(ic, 1, 0x80b, 0), 1);
	intc_msi(ic, 0xfee01000, 0x42);
	assert_int_equal(intc_ack(ic, 1), 0x42);
	assert_int_equal(attention(ic, 0), 0);
	intc_destroy(ic);
}

static void bad_gsi_and_register_ignored(void **state)
{
	struct soft_intc *ic = setup();
	intc_irq_line(ic, 24, true);
	intc_irq_line(ic, 1000, true);
	ioapic_write(ic, 0x90, 0xffffffff);
	assert_int_equal(ioapic_read(ic, 0x90), 0);
	assert_int_equal(attention(ic, 0) | attention(ic, 1), 0);
	intc_destroy(ic);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(identifies_itself),
	    cmocka_unit_test(edge_pin_to_physical_cpu),
	    cmocka_unit_test(masked_edge_is_delivered_on_unmask),
	    cmocka_unit_test(level_pin_holds_remote_irr),
	    cmocka_unit_test(logical_flat_and_lowest_priority),
	    cmocka_unit_test(msi_messages),
	    cmocka_unit_test(x2apic_cpus_get_8bit_messages),
	    cmocka_unit_test(bad_gsi_and_register_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
