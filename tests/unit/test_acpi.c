/* ACPI tables parsed back from guest memory: pointers, checksums, MADT
 * entries, the FADT's fixed hardware and the DSDT's \_S5 and PCI0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "boot/acpi.h"
#include "boot/layout.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}
static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

struct tables {
	struct guest_mem mem;
	uint64_t rsdp;
};

/* A table at gpa with a valid header and checksum, or a test failure. */
static const uint8_t *table(const struct guest_mem *mem, uint64_t gpa, const char *sig)
{
	const uint8_t *t = gpa_ptr(mem, gpa, 36);
	assert_non_null(t);
	assert_memory_equal(t, sig, 4);
	uint32_t len = get32(t + 4);
	assert_true(len >= 36);
	assert_true(gpa >= BIOS_START && gpa + len <= BIOS_END);
	assert_int_equal(sum(t, len), 0);
	return t;
}

static const uint8_t *find_in_xsdt(const struct guest_mem *mem, uint64_t rsdp, const char *sig)
{
	const uint8_t *r = gpa_ptr(mem, rsdp, 36);
	const uint8_t *x = table(mem, get64(r + 24), "XSDT");
	for (uint32_t off = 36; off < get32(x + 4); off += 8) {
		const uint8_t *t = gpa_ptr(mem, get64(x + off), 4);
		if (t && !memcmp(t, sig, 4))
			return table(mem, get64(x + off), sig);
	}
	fail_msg("%s not in the XSDT", sig);
	return NULL;
}

static void build(struct tables *t, int ncpus)
{
	char err[128];
	assert_int_equal(guest_mem_init(&t->mem, 16 << 20, err, sizeof(err)), 0);
	memset(gpa_ptr(&t->mem, BIOS_START, BIOS_END - BIOS_START), 0xee, BIOS_END - BIOS_START);
	t->rsdp = acpi_build(&t->mem, ncpus);
}

static void test_rsdp(void **state)
{
	struct tables t;
	build(&t, 1);
	assert_int_equal(t.rsdp, BIOS_START);
	/* The legacy scan: "RSD PTR " on a 16-byte boundary, both checksums. */
	const uint8_t *r = gpa_ptr(&t.mem, t.rsdp, 36);
	assert_memory_equal(r, "RSD PTR ", 8);
	assert_int_equal(t.rsdp % 16, 0);
	assert_int_equal(sum(r, 20), 0);
	assert_int_equal(r[15], 2);
	assert_int_equal(get32(r + 20), 36);
	assert_int_equal(sum(r, 36), 0);
	table(&t.mem, get64(r + 24), "XSDT");
	guest_mem_free(&t.mem);
}

static void test_madt(void **state)
{
	struct tables t;
	build(&t, 4);
	const uint8_t *m = find_in_xsdt(&t.mem, t.rsdp, "APIC");
	assert_int_equal(get32(m + 36), 0xfee00000);
	int lapics = 0, ioapics = 0, isos = 0;
	bool irq0 = false, sci = false;
	uint32_t len = get32(m + 4);
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;
		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[3], lapics); /* APIC IDs 0..n-1 */
			assert_int_equal(get32(e + 4) & 1, 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(get32(e + 4), 0xfec00000);
			assert_int_equal(get32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			if (e[3] == 0) {
				assert_int_equal(get32(e + 4), 2);
				irq0 = true;
			}
			if (e[3] == 9 || e[3] == 10 || e[3] == 11) {
				assert_int_equal(get32(e + 4), e[3]);
				assert_int_equal(get16(e + 8), 0x0d); /* level, active high */
				sci |= e[3] == 9;
			}
			isos++;
			break;
		}
		off += e[1];
	}
	assert_int_equal(lapics, 4);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 4);
	assert_true(irq0 && sci);
	guest_mem_free(&t.mem);
}

static void test_fadt_and_dsdt(void **state)
{
	struct tables t;
	build(&t, 2);
	const uint8_t *f = find_in_xsdt(&t.mem, t.rsdp, "FACP");
	assert_int_equal(get32(f + 4), 276);
	assert_int_equal(get16(f + 46), 9); /* SCI_INT */
	assert_int_equal(get32(f + 56), ACPI_PM1_EVT);
	assert_int_equal(get32(f + 64), ACPI_PM1_CNT);
	assert_int_equal(get32(f + 76), ACPI_PM_TMR);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	uint32_t flags = get32(f + 112);
	assert_false(flags & (1u << 20)); /* not HW-reduced */
	assert_true(flags & (1u << 10));  /* reset register */
	assert_int_equal(f[116], 1);	  /* in I/O space */
	assert_int_equal(get64(f + 120), ACPI_RESET_PORT);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	assert_true(get16(f + 109) & 2);		    /* an 8042 is present */
	assert_int_equal(get64(f + 172 + 4), ACPI_PM1_CNT); /* X_PM1a_CNT_BLK */

	const uint8_t *facs = gpa_ptr(&t.mem, get64(f + 132), 64);
	assert_memory_equal(facs, "FACS", 4);
	assert_int_equal(get32(facs + 4), 64);
	assert_int_equal(get64(f + 132) % 64, 0);

	uint64_t dsdt_gpa = get64(f + 140);
	assert_int_equal(get32(f + 40), dsdt_gpa);
	const uint8_t *d = table(&t.mem, dsdt_gpa, "DSDT");
	uint32_t len = get32(d + 4);
	/* Name(\_S5_, Package(){5, 5, 0, 0}) encoded as the spec says. */
	static const uint8_t s5[] = {0x08,
				     '\\',
				     '_',
				     'S',
				     '5',
				     '_',
				     0x12,
				     0x08,
				     0x04,
				     0x0a,
				     ACPI_S5_SLP_TYP,
				     0x0a,
				     ACPI_S5_SLP_TYP,
				     0x00,
				     0x00};
	assert_true(len >= 36 + sizeof(s5));
	assert_memory_equal(d + 36, s5, sizeof(s5));
	/* The PCI root bridge: Device(PCI0) with _HID EisaId("PNP0A03"). */
	static const uint8_t hid[] = {0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03};
	bool found = false;
	for (uint32_t i = 36; i + sizeof(hid) <= len; i++)
		found |= !memcmp(d + i, hid, sizeof(hid));
	assert_true(found);
	guest_mem_free(&t.mem);
}

static void test_limits(void **state)
{
	struct tables t;
	build(&t, 255);
	assert_int_not_equal(t.rsdp, 0);
	find_in_xsdt(&t.mem, t.rsdp, "APIC");
	guest_mem_free(&t.mem);
	build(&t, 0);
	assert_int_equal(t.rsdp, 0);
	guest_mem_free(&t.mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rsdp),
	    cmocka_unit_test(test_madt),
	    cmocka_unit_test(test_fadt_and_dsdt),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
