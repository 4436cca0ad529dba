/* Helpers shared by the soft-engine interrupt controller tests: a small guest
 * RAM for kvmclock, and port/MMIO/MSR accessors as the CPU core would call them. */
#ifndef POPEK_TEST_INTC_H
#define POPEK_TEST_INTC_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "engines/soft/intc/intc.h"

#define TEST_RAM_SIZE 0x10000
static uint8_t test_ram[TEST_RAM_SIZE];

static inline void *test_mem(void *ctx, uint64_t gpa, uint64_t len)
{
	(void)ctx;
	if (gpa > TEST_RAM_SIZE || len > TEST_RAM_SIZE - gpa)
		return NULL;
	return test_ram + gpa;
}

static inline struct soft_intc *test_intc(int ncpus)
{
	struct soft_intc *ic = intc_create(ncpus, test_mem, NULL);
	assert_non_null(ic);
	return ic;
}

static inline void outb(struct soft_intc *ic, uint16_t port, uint8_t v)
{
	assert_true(intc_pio(ic, port, &v, 1, true));
}

static inline uint8_t inb(struct soft_intc *ic, uint16_t port)
{
	uint8_t v = 0;
	assert_true(intc_pio(ic, port, &v, 1, false));
	return v;
}

static inline void apic_write(struct soft_intc *ic, int cpu, unsigned reg, uint32_t v)
{
	assert_true(intc_mmio(ic, cpu, 0xfee00000 + reg, &v, 4, true));
}

static inline uint32_t apic_read(struct soft_intc *ic, int cpu, unsigned reg)
{
	uint32_t v = 0;
	assert_true(intc_mmio(ic, cpu, 0xfee00000 + reg, &v, 4, false));
	return v;
}

static inline void ioapic_write(struct soft_intc *ic, uint32_t reg, uint32_t v)
{
	assert_true(intc_mmio(ic, 0, 0xfec00000, &reg, 4, true));
	assert_true(intc_mmio(ic, 0, 0xfec00010, &v, 4, true));
}

static inline uint32_t ioapic_read(struct soft_intc *ic, uint32_t reg)
{
	uint32_t v = 0;
	assert_true(intc_mmio(ic, 0, 0xfec00000, &reg, 4, true));
	assert_true(intc_mmio(ic, 0, 0xfec00010, &v, 4, false));
	return v;
}

static inline uint64_t rdmsr(struct soft_intc *ic, int cpu, uint32_t msr)
{
	uint64_t v = 0;
	assert_int_equal(intc_msr(ic, cpu, msr, &v, false), 1);
	return v;
}

static inline int wrmsr(struct soft_intc *ic, int cpu, uint32_t msr, uint64_t v)
{
	return intc_msr(ic, cpu, msr, &v, true);
}

static inline unsigned attention(struct soft_intc *ic, int cpu)
{
	return atomic_load(intc_attention(ic, cpu));
}

/* Software-enable a LAPIC (SVR bit 8, spurious vector 0xff). */
static inline void apic_enable(struct soft_intc *ic, int cpu)
{
	apic_write(ic, cpu, 0xf0, 0x1ff);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Linux's 8259 setup: vectors 0x20 and 0x28, cascade on IRQ2, 8086 mode. */
static inline void pic_init_linux(struct soft_intc *ic, uint8_t icw4)
{
	outb(ic, 0x20, 0x11);
	outb(ic, 0x21, 0x20);
	outb(ic, 0x21, 0x04);
	outb(ic, 0x21, icw4);
	outb(ic, 0xa0, 0x11);
	outb(ic, 0xa1, 0x28);
	outb(ic, 0xa1, 0x02);
	outb(ic, 0xa1, icw4);
}

#endif
