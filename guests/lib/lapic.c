/* Local APIC in xAPIC (MMIO) mode, and the legacy PIC kept out of the way. */
#include "guest.h"

#define MSR_APIC_BASE	 0x1b
#define APIC_BASE_ENABLE (1u << 11)
#define LAPIC_TPR	 0x080
#define ICR_BUSY	 (1u << 12)
#define PIC1		 0x20
#define PIC2		 0xa0

static uint64_t lapic_base = 0xfee00000;

uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(lapic_base + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(lapic_base + reg, v);
}

/* Remap the 8259s above the exceptions (a BIOS leaves IRQ0 on vector 8, #DF)
 * and mask every line: all our interrupts come from the local APIC. */
void pic_disable(void)
{
	outb(PIC1, 0x11);
	outb(PIC2, 0x11);
	outb(PIC1 + 1, 0x20);
	outb(PIC2 + 1, 0x28);
	outb(PIC1 + 1, 0x04);
	outb(PIC2 + 1, 0x02);
	outb(PIC1 + 1, 0x01);
	outb(PIC2 + 1, 0x01);
	outb(PIC1 + 1, 0xff);
	outb(PIC2 + 1, 0xff);
}

void lapic_enable(uint8_t spurious_vec)
{
	uint64_t msr = rdmsr(MSR_APIC_BASE);

	if (!(msr & APIC_BASE_ENABLE))
		wrmsr(MSR_APIC_BASE, msr | APIC_BASE_ENABLE);
	lapic_base = msr & 0xfffff000ull;
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_SVR, 0x100u | spurious_vec);
}

void lapic_eoi(void)
{
	lapic_write(LAPIC_EOI, 0);
}

uint32_t lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

bool lapic_send_ipi(uint32_t apic_id, uint32_t icr_lo)
{
	uint64_t end;

	lapic_write(LAPIC_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_ICR_LO, icr_lo);
	end = tsc_deadline_us(100000);
	while (lapic_read(LAPIC_ICR_LO) & ICR_BUSY)
		if (rdtsc() > end)
			return false;
	return true;
}
