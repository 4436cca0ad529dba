/* ACPI tables, written from the ACPI 6.x specification: table layouts from
 * chapter 5.2, AML from chapter 20. The DSDT is produced by a small encoder
 * below rather than a compiled blob, so every byte is explained here. */
#include "boot/acpi.h"

#include <stdbool.h>
#include <string.h>

#include "boot/layout.h"
#include "devices/pci.h"

#define OEM_ID	     "POPEK "
#define OEM_TABLE_ID "POPEKVM "
#define TABLES_SIZE  (BIOS_END - BIOS_START)

/* A byte buffer the tables are assembled in; overflow is remembered and
 * checked once at the end instead of at every call. */
struct out {
	uint8_t *b;
	size_t len, cap;
	bool overflow;
};

static void emit(struct out *o, const void *p, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->b + o->len, p, n);
	o->len += n;
}

static void emit8(struct out *o, uint8_t v)
{
	emit(o, &v, 1);
}

static void emit16(struct out *o, uint16_t v)
{
	emit8(o, (uint8_t)v);
	emit8(o, (uint8_t)(v >> 8));
}

static void emit32(struct out *o, uint32_t v)
{
	emit16(o, (uint16_t)v);
	emit16(o, (uint16_t)(v >> 16));
}

static void emit64(struct out *o, uint64_t v)
{
	emit32(o, (uint32_t)v);
	emit32(o, (uint32_t)(v >> 32));
}

static void patch32(struct out *o, size_t at, uint32_t v)
{
	if (!o->overflow)
		for (int i = 0; i < 4; i++)
			o->b[at + i] = (uint8_t)(v >> (8 * i));
}

static void align(struct out *o, size_t a)
{
	while (o->len % a && !o->overflow)
		emit8(o, 0);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

/* ---- AML encoder (ACPI 6.x, 20.2) ---- */

enum {
	AML_ZERO = 0x00,
	AML_ONE = 0x01,
	AML_NAME = 0x08,
	AML_BYTE = 0x0a,
	AML_WORD = 0x0b,
	AML_DWORD = 0x0c,
	AML_QWORD = 0x0e,
	AML_SCOPE = 0x10,
	AML_BUFFER = 0x11,
	AML_PACKAGE = 0x12,
	AML_EXT = 0x5b,
	AML_EXT_DEVICE = 0x82,
	AML_ROOT = '\\',
	AML_DUAL_NAME = 0x2e,
};

static void aml_int(struct out *o, uint64_t v)
{
	if (v <= 1)
		emit8(o, v ? AML_ONE : AML_ZERO);
	else if (v <= 0xff) {
		emit8(o, AML_BYTE);
		emit8(o, (uint8_t)v);
	} else if (v <= 0xffff) {
		emit8(o, AML_WORD);
		emit16(o, (uint16_t)v);
	} else if (v <= 0xffffffff) {
		emit8(o, AML_DWORD);
		emit32(o, (uint32_t)v);
	} else {
		emit8(o, AML_QWORD);
		emit64(o, v);
	}
}

/* A NameString: "\\" root prefix allowed, then one or two 4-char segments
 * separated by '.'. Callers pass segments already 4 characters long. */
static void aml_name(struct out *o, const char *s)
{
	if (*s == AML_ROOT)
		emit8(o, (uint8_t)*s++);
	if (strlen(s) == 9 && s[4] == '.') {
		emit8(o, AML_DUAL_NAME);
		emit(o, s, 4);
		emit(o, s + 5, 4);
	} else {
		emit(o, s, 4);
	}
}

/* Objects with a PkgLength: remember where the body starts, and when it is
 * complete insert the encoded length (which counts its own bytes) before it. */
static size_t aml_pkg_begin(struct out *o)
{
	return o->len;
}

static void aml_pkg_end(struct out *o, size_t start)
{
	if (o->overflow)
		return;
	size_t body = o->len - start;
	unsigned n = body + 1 <= 0x3f ? 1 : body + 2 <= 0xfff ? 2 : body + 3 <= 0xfffff ? 3 : 4;
	size_t total = body + n;
	uint8_t enc[4];
	if (n == 1) {
		enc[0] = (uint8_t)total;
	} else {
		enc[0] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			enc[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	if (n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memmove(o->b + start + n, o->b + start, body);
	memcpy(o->b + start, enc, n);
	o->len += n;
}

/* EisaId("PNP0A03"): three 5-bit letters and four hex digits, big-endian. */
static uint32_t eisa_id(const char *id)
{
	unsigned hex = 0;
	for (int i = 3; i < 7; i++)
		hex = hex << 4 | (unsigned)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
	uint8_t b[4] = {
	    (uint8_t)(((id[0] - 0x40) << 2) | ((id[1] - 0x40) >> 3)),
	    (uint8_t)((((id[1] - 0x40) & 7) << 5) | (id[2] - 0x40)),
	    (uint8_t)(hex >> 8),
	    (uint8_t)hex,
	};
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Resource descriptors (6.4) for the PCI root bridge's _CRS. */
enum { RES_MEMORY = 0, RES_IO = 1, RES_BUS = 2 };

static void res_word(struct out *o, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	emit8(o, 0x88); /* Word Address Space Descriptor */
	emit16(o, 13);
	emit8(o, type);
	emit8(o, 0x0c); /* min and max fixed, producer */
	emit8(o, tflags);
	emit16(o, 0); /* granularity */
	emit16(o, min);
	emit16(o, max);
	emit16(o, 0); /* translation */
	emit16(o, (uint16_t)(max - min + 1));
}

static void res_dword_mem(struct out *o, uint32_t min, uint32_t max)
{
	emit8(o, 0x87); /* DWord Address Space Descriptor */
	emit16(o, 23);
	emit8(o, RES_MEMORY);
	emit8(o, 0x0c);
	emit8(o, 0x01); /* read-write, non-cacheable */
	emit32(o, 0);
	emit32(o, min);
	emit32(o, max);
	emit32(o, 0);
	emit32(o, max - min + 1);
}

static void res_io(struct out *o, uint16_t base, uint8_t len)
{
	emit8(o, 0x47); /* I/O Port Descriptor, 16-bit decode */
	emit8(o, 1);
	emit16(o, base);
	emit16(o, base);
	emit8(o, 1);
	emit8(o, len);
}

/* DSDT body:
 *   Name (\_S5, Package () { S5, S5, 0, 0 })
 *   Scope (\_SB) { Device (PCI0) { _HID PNP0A03, _UID 0, _BBN 0, _CRS } }
 * The root bridge must be in the namespace: with ACPI, Linux finds PCI only
 * through it, and takes its bus windows from _CRS. */
static void dsdt_body(struct out *o)
{
	emit8(o, AML_NAME);
	aml_name(o, "\\_S5_");
	emit8(o, AML_PACKAGE);
	size_t pkg = aml_pkg_begin(o);
	emit8(o, 4);
	aml_int(o, ACPI_S5_SLP_TYP);
	aml_int(o, ACPI_S5_SLP_TYP);
	aml_int(o, 0);
	aml_int(o, 0);
	aml_pkg_end(o, pkg);

	emit8(o, AML_SCOPE);
	size_t scope = aml_pkg_begin(o);
	aml_name(o, "\\_SB_");
	emit8(o, AML_EXT);
	emit8(o, AML_EXT_DEVICE);
	size_t dev = aml_pkg_begin(o);
	aml_name(o, "PCI0");
	emit8(o, AML_NAME);
	aml_name(o, "_HID");
	aml_int(o, eisa_id("PNP0A03"));
	emit8(o, AML_NAME);
	aml_name(o, "_UID");
	aml_int(o, 0);
	emit8(o, AML_NAME);
	aml_name(o, "_BBN");
	aml_int(o, 0);
	emit8(o, AML_NAME);
	aml_name(o, "_CRS");
	emit8(o, AML_BUFFER);
	size_t buf = aml_pkg_begin(o);
	/* The buffer size operand precedes the bytes: emit a placeholder
	 * DWord and patch it once the descriptors are known. */
	emit8(o, AML_DWORD);
	size_t size_at = o->len;
	emit32(o, 0);
	size_t res = o->len;
	res_word(o, RES_BUS, 0, 0, 0xff);
	res_io(o, 0xcf8, 8);
	res_word(o, RES_IO, 0x03, 0x0000, 0x0cf7);
	res_word(o, RES_IO, 0x03, 0x0d00, 0xffff);
	res_dword_mem(o, 0x000a0000, 0x000bffff);
	res_dword_mem(o, (uint32_t)PCI_MMIO_START, (uint32_t)(PCI_MMIO_END - 1));
	emit8(o, 0x79); /* End Tag; checksum 0 means "not checked" */
	emit8(o, 0);
	patch32(o, size_at, (uint32_t)(o->len - res));
	aml_pkg_end(o, buf);
	aml_pkg_end(o, dev);
	aml_pkg_end(o, scope);
}

/* ---- tables (5.2) ---- */

/* Standard 36-byte header; the length and checksum are fixed by table_end. */
static size_t table_begin(struct out *o, const char *sig, uint8_t rev)
{
	align(o, 16);
	size_t at = o->len;
	emit(o, sig, 4);
	emit32(o, 0);
	emit8(o, rev);
	emit8(o, 0);
	emit(o, OEM_ID, 6);
	emit(o, OEM_TABLE_ID, 8);
	emit32(o, 1);
	emit(o, "PopK", 4);
	emit32(o, 1);
	return at;
}

static void table_end(struct out *o, size_t at)
{
	if (o->overflow)
		return;
	patch32(o, at + 4, (uint32_t)(o->len - at));
	o->b[at + 9] = checksum(o->b + at, o->len - at);
}

/* Generic Address Structure in system I/O space. */
static void gas_io(struct out *o, uint8_t bits, uint64_t port)
{
	emit8(o, port ? 1 : 0);
	emit8(o, port ? bits : 0);
	emit8(o, 0);
	emit8(o, port ? (bits == 8 ? 1 : bits == 16 ? 2 : 3) : 0);
	emit64(o, port);
}

enum {
	FADT_WBINVD = 1u << 0,
	FADT_PROC_C1 = 1u << 2,
	FADT_PWR_BUTTON = 1u << 4, /* no fixed power button */
	FADT_SLP_BUTTON = 1u << 5, /* no fixed sleep button */
	FADT_FIX_RTC = 1u << 6,	   /* no RTC wake status */
	FADT_TMR_VAL_EXT = 1u << 8,
	FADT_RESET_REG_SUP = 1u << 10,
	BOOT_ARCH_LEGACY_DEVICES = 1u << 0,
	BOOT_ARCH_8042 = 1u << 1,
};

static size_t fadt(struct out *o, uint64_t base, size_t facs, size_t dsdt)
{
	size_t at = table_begin(o, "FACP", 6);
	emit32(o, (uint32_t)(base + facs));
	emit32(o, (uint32_t)(base + dsdt));
	emit8(o, 0); /* reserved */
	emit8(o, 0); /* preferred PM profile: unspecified */
	emit16(o, ACPI_SCI_IRQ);
	emit32(o, 0); /* SMI_CMD 0: ACPI mode is always on */
	emit8(o, 0);
	emit8(o, 0);
	emit8(o, 0);
	emit8(o, 0);
	emit32(o, ACPI_PM1_EVT);
	emit32(o, 0);
	emit32(o, ACPI_PM1_CNT);
	emit32(o, 0);
	emit32(o, 0); /* PM2 */
	emit32(o, ACPI_PM_TMR);
	emit32(o, 0); /* GPE0 */
	emit32(o, 0); /* GPE1 */
	emit8(o, 4);  /* PM1_EVT_LEN */
	emit8(o, 2);  /* PM1_CNT_LEN */
	emit8(o, 0);
	emit8(o, 4); /* PM_TMR_LEN */
	emit8(o, 0);
	emit8(o, 0);
	emit8(o, 0);
	emit8(o, 0);
	emit16(o, 101);	 /* C2 latency > 100: C2 unsupported */
	emit16(o, 1001); /* C3 latency > 1000: C3 unsupported */
	emit16(o, 0);
	emit16(o, 0);
	emit8(o, 0);
	emit8(o, 0);
	emit8(o, 0);
	emit8(o, 0);
	emit8(o, 0); /* no CMOS century register */
	emit16(o, BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042);
	emit8(o, 0);
	emit32(o, FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_FIX_RTC |
		      FADT_TMR_VAL_EXT | FADT_RESET_REG_SUP);
	gas_io(o, 8, ACPI_RESET_PORT);
	emit8(o, ACPI_RESET_VALUE);
	emit16(o, 0); /* ARM boot arch */
	emit8(o, 0);  /* FADT minor version */
	emit64(o, base + facs);
	emit64(o, base + dsdt);
	gas_io(o, 32, ACPI_PM1_EVT);
	gas_io(o, 0, 0);
	gas_io(o, 16, ACPI_PM1_CNT);
	gas_io(o, 0, 0);
	gas_io(o, 0, 0);
	gas_io(o, 32, ACPI_PM_TMR);
	gas_io(o, 0, 0);
	gas_io(o, 0, 0);
	gas_io(o, 0, 0); /* sleep control/status: only for HW-reduced */
	gas_io(o, 0, 0);
	emit(o, "POPEK\0\0\0", 8); /* hypervisor vendor identity */
	table_end(o, at);
	return at;
}

enum { MADT_LAPIC = 0, MADT_IOAPIC = 1, MADT_ISO = 2, MADT_LAPIC_NMI = 4 };

static size_t madt(struct out *o, int ncpus)
{
	size_t at = table_begin(o, "APIC", 4);
	emit32(o, ACPI_LAPIC_ADDR);
	emit32(o, 1); /* PCAT_COMPAT: there are 8259s to mask */
	for (int i = 0; i < ncpus; i++) {
		emit8(o, MADT_LAPIC);
		emit8(o, 8);
		emit8(o, (uint8_t)i); /* processor UID */
		emit8(o, (uint8_t)i); /* APIC ID = vCPU index */
		emit32(o, 1);	      /* enabled */
	}
	emit8(o, MADT_IOAPIC);
	emit8(o, 12);
	emit8(o, 0); /* IOAPIC ID, as its ID register resets to */
	emit8(o, 0);
	emit32(o, ACPI_IOAPIC_ADDR);
	emit32(o, 0); /* GSI base */
	/* The PIT's IRQ0 is wired to IOAPIC pin 2, as on every PC. */
	emit8(o, MADT_ISO);
	emit8(o, 10);
	emit8(o, 0);
	emit8(o, 0);
	emit32(o, 2);
	emit16(o, 0); /* conforming polarity and trigger */
	/* The SCI and the PCI INTx lines are level-triggered, active high.
	 * There is no _PRT: Linux then takes a device's IRQ from its
	 * Interrupt Line register (virtio devices use MSI-X anyway). */
	static const uint8_t level_high[] = {ACPI_SCI_IRQ, PCI_INTX_GSI0, PCI_INTX_GSI1};
	for (size_t i = 0; i < sizeof(level_high); i++) {
		emit8(o, MADT_ISO);
		emit8(o, 10);
		emit8(o, 0);
		emit8(o, level_high[i]);
		emit32(o, level_high[i]);
		emit16(o, 0x0d); /* polarity 01 active high, trigger 11 level */
	}
	emit8(o, MADT_LAPIC_NMI);
	emit8(o, 6);
	emit8(o, 0xff); /* all processors */
	emit16(o, 0);
	emit8(o, 1); /* LINT1 */
	table_end(o, at);
	return at;
}

uint64_t acpi_build(const struct guest_mem *mem, int ncpus)
{
	uint8_t *area = gpa_ptr(mem, BIOS_START, TABLES_SIZE);
	if (!area || ncpus < 1 || ncpus > 255)
		return 0;
	memset(area, 0, TABLES_SIZE);
	struct out o = {.b = area, .cap = TABLES_SIZE};
	uint64_t base = BIOS_START;

	/* RSDP first: a legacy scan of 0xe0000..0xfffff finds it on a
	 * 16-byte boundary. Addresses are patched in below. */
	size_t rsdp = o.len;
	emit(&o, "RSD PTR ", 8);
	emit8(&o, 0);
	emit(&o, OEM_ID, 6);
	emit8(&o, 2); /* ACPI 2.0+: use the XSDT */
	emit32(&o, 0);
	emit32(&o, 36);
	emit64(&o, 0);
	emit8(&o, 0);
	emit(&o, "\0\0\0", 3);

	align(&o, 64);
	size_t facs = o.len;
	emit(&o, "FACS", 4);
	emit32(&o, 64);
	for (int off = 8; off < 64; off += 4)
		emit32(&o, off == 32 ? 2 : 0); /* version 2 at offset 32; no waking vector */

	size_t dsdt = table_begin(&o, "DSDT", 2);
	dsdt_body(&o);
	table_end(&o, dsdt);

	size_t fadt_at = fadt(&o, base, facs, dsdt);
	size_t madt_at = madt(&o, ncpus);

	size_t xsdt = table_begin(&o, "XSDT", 1);
	emit64(&o, base + fadt_at);
	emit64(&o, base + madt_at);
	table_end(&o, xsdt);
	if (o.overflow)
		return 0;

	uint8_t *r = area + rsdp;
	for (int i = 0; i < 8; i++)
		r[24 + i] = (uint8_t)((base + xsdt) >> (8 * i));
	r[8] = checksum(r, 20);
	r[32] = checksum(r, 36);
	return base + rsdp;
}
