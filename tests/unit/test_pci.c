/* PCI host bridge through its real ports: config mechanism #1, BAR sizing and
 * remapping on the MMIO bus, capabilities, shared INTx, and MSI-X. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/msix.h"
#include "devices/pci.h"

struct fx {
	struct bus pio, mmio;
	struct pci_bus pb;
	bool line[PCI_INTX_LINES];
	int line_changes;
	struct pci_dev a, b;
	int bar_reads;
	uint64_t msi_addr;
	uint32_t msi_data;
	int msis;
	struct msix msix;
};

static struct fx fx;

static void set_line(void *ctx, unsigned gsi, bool level)
{
	fx.line[gsi - PCI_INTX_GSI0] = level;
	fx.line_changes++;
}

static void send_msi(void *ctx, uint64_t addr, uint32_t data)
{
	fx.msi_addr = addr;
	fx.msi_data = data;
	fx.msis++;
}

static void bar_read(void *dev, uint64_t off, void *data, unsigned size)
{
	fx.bar_reads++;
	memset(data, 0x42, size);
}

static const struct bus_ops bar_ops = {.read = bar_read};

static int setup(void **state)
{
	char err[128];
	memset(&fx, 0, sizeof(fx));
	bus_init(&fx.pio, "pio");
	bus_init(&fx.mmio, "mmio");
	struct irq_line intx[PCI_INTX_LINES] = {{set_line, NULL, PCI_INTX_GSI0},
						{set_line, NULL, PCI_INTX_GSI1}};
	assert_int_equal(pci_bus_init(&fx.pb, &fx.pio, &fx.mmio, intx, err, sizeof(err)), 0);
	pci_dev_init(&fx.a, "a", 0x1234, 0x5678, 3, 0x020000);
	pci_dev_set_bar64(&fx.a, 0, 0x4000, &bar_ops, &fx.a);
	return 0;
}

static int teardown(void **state)
{
	pci_bus_destroy(&fx.pb);
	bus_destroy(&fx.pio);
	bus_destroy(&fx.mmio);
	return 0;
}

static void outl(uint16_t port, uint32_t v)
{
	bus_access(&fx.pio, port, &v, 4, true);
}

static uint32_t inl(uint16_t port)
{
	uint32_t v = 0;
	bus_access(&fx.pio, port, &v, 4, false);
	return v;
}

static uint32_t cfg_read(unsigned slot, unsigned off, unsigned size)
{
	outl(PCI_CONFIG_ADDR, 0x80000000u | slot << 11 | (off & 0xfc));
	uint32_t v = 0;
	bus_access(&fx.pio, PCI_CONFIG_DATA + (off & 3), &v, size, false);
	return v;
}

static void cfg_write(unsigned slot, unsigned off, unsigned size, uint32_t v)
{
	outl(PCI_CONFIG_ADDR, 0x80000000u | slot << 11 | (off & 0xfc));
	bus_access(&fx.pio, PCI_CONFIG_DATA + (off & 3), &v, size, true);
}

static uint32_t mmio_read32(uint64_t addr)
{
	uint32_t v = 0;
	bus_access(&fx.mmio, addr, &v, 4, false);
	return v;
}

static void host_bridge_and_empty_slots(void **state)
{
	assert_int_equal(cfg_read(0, PCI_VENDOR_ID, 2), 0x1b36);
	assert_int_equal(cfg_read(0, PCI_REVISION, 4) >> 8, 0x060000); /* host bridge class */
	assert_int_equal(cfg_read(0, 0x0a, 2), 0x0600);
	/* an access straddling the data dword reads as nothing */
	assert_int_equal(cfg_read(0, PCI_CLASS_PROG, 4), 0xffffffffu);
	assert_int_equal(cfg_read(5, 0, 4), 0xffffffffu);
	/* function 1 and bus 1 do not exist */
	outl(PCI_CONFIG_ADDR, 0x80000000u | 1 << 8);
	assert_int_equal(inl(PCI_CONFIG_DATA), 0xffffffffu);
	outl(PCI_CONFIG_ADDR, 0x80000000u | 1 << 16);
	assert_int_equal(inl(PCI_CONFIG_DATA), 0xffffffffu);
	/* without the enable bit, nothing is selected */
	outl(PCI_CONFIG_ADDR, 0);
	assert_int_equal(inl(PCI_CONFIG_DATA), 0xffffffffu);
}

static void address_latch_is_dword_only(void **state)
{
	/* Linux's conf1 probe: a byte write to 0xCFB must not disturb the latch. */
	outl(PCI_CONFIG_ADDR, 0x80000000u);
	uint8_t one = 1;
	bus_access(&fx.pio, PCI_CONFIG_ADDR + 3, &one, 1, true);
	assert_int_equal(inl(PCI_CONFIG_ADDR), 0x80000000u);
}

static void device_gets_firmware_bar(void **state)
{
	char err[128];
	assert_int_equal(pci_bus_add(&fx.pb, &fx.a, err, sizeof(err)), 0);
	assert_int_equal(fx.a.slot, 1);
	assert_int_equal(cfg_read(1, PCI_VENDOR_ID, 4), 0x56781234);
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), PCI_MMIO_START | PCI_BAR_MEM_TYPE_64);
	assert_int_equal(cfg_read(1, PCI_BAR0 + 4, 4), 0);
	assert_true(cfg_read(1, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY);
	assert_int_equal(cfg_read(1, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(cfg_read(1, PCI_INTERRUPT_LINE, 1), PCI_INTX_GSI1);
	assert_int_equal(mmio_read32(PCI_MMIO_START + 0x10), 0x42424242);
	assert_int_equal(fx.bar_reads, 1);
	/* read-only fields ignore writes */
	cfg_write(1, PCI_VENDOR_ID, 4, 0);
	assert_int_equal(cfg_read(1, PCI_VENDOR_ID, 4), 0x56781234);
}

static void bar_sizing_and_moving(void **state)
{
	char err[128];
	assert_int_equal(pci_bus_add(&fx.pb, &fx.a, err, sizeof(err)), 0);
	/* Sizing as Linux does it: decoding off, all-ones, read back, restore. */
	cfg_write(1, PCI_COMMAND, 2, 0);
	assert_int_equal(mmio_read32(PCI_MMIO_START), 0xffffffffu);
	assert_int_equal(fx.bar_reads, 0);
	cfg_write(1, PCI_BAR0, 4, 0xffffffff);
	cfg_write(1, PCI_BAR0 + 4, 4, 0xffffffff);
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), (uint32_t) ~(0x4000 - 1) | PCI_BAR_MEM_TYPE_64);
	assert_int_equal(cfg_read(1, PCI_BAR0 + 4, 4), 0xffffffffu);
	/* Move it above 4 GiB and turn decoding back on. */
	cfg_write(1, PCI_BAR0, 4, 0x00008000);
	cfg_write(1, PCI_BAR0 + 4, 4, 0x10);
	cfg_write(1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(mmio_read32(0x1000008000ull), 0x42424242);
	assert_int_equal(mmio_read32(PCI_MMIO_START), 0xffffffffu);
	/* Decoding off unmaps it. */
	cfg_write(1, PCI_COMMAND, 2, 0);
	assert_int_equal(mmio_read32(0x1000008000ull), 0xffffffffu);
}

static void bar_over_another_range_stays_dark(void **state)
{
	char err[128];
	pci_dev_init(&fx.b, "b", 1, 2, 0, 0);
	pci_dev_set_bar64(&fx.b, 2, 0x1000, &bar_ops, &fx.b);
	assert_int_equal(pci_bus_add(&fx.pb, &fx.a, err, sizeof(err)), 0);
	assert_int_equal(pci_bus_add(&fx.pb, &fx.b, err, sizeof(err)), 0);
	assert_int_equal(fx.b.slot, 2);
	/* b's BAR goes after a's, naturally aligned. */
	assert_int_equal(cfg_read(2, PCI_BAR0 + 8, 4), (PCI_MMIO_START + 0x4000) | 4);
	/* Program b onto a: a keeps its range, b is not decoded. */
	cfg_write(2, PCI_BAR0 + 8, 4, (uint32_t)PCI_MMIO_START);
	assert_false(fx.b.bar[2].mapped);
	assert_true(fx.a.bar[0].mapped);
}

static void capabilities_chain(void **state)
{
	uint8_t c1[8] = {0x09, 0xaa, 8, 1, 2, 3, 4, 5};
	uint8_t c2[5] = {0x05, 0, 0, 0, 0};
	uint8_t m2[5] = {0, 0, 0xff, 0, 0};
	unsigned o1 = pci_dev_add_cap(&fx.a, c1, sizeof(c1), NULL);
	unsigned o2 = pci_dev_add_cap(&fx.a, c2, sizeof(c2), m2);
	assert_int_equal(o1, PCI_CAP_START);
	assert_int_equal(o2, PCI_CAP_START + 8);
	char err[128];
	assert_int_equal(pci_bus_add(&fx.pb, &fx.a, err, sizeof(err)), 0);
	assert_true(cfg_read(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	assert_int_equal(cfg_read(1, PCI_CAP_PTR, 1), o1);
	assert_int_equal(cfg_read(1, o1 + 1, 1), o2);
	assert_int_equal(cfg_read(1, o2 + 1, 1), 0);
	cfg_write(1, o2, 4, 0xffffffff);
	assert_int_equal(cfg_read(1, o2, 4), 0x00ff0005 | (uint32_t)0 << 8);
	/* config space fills up */
	uint8_t big[180] = {0x09};
	pci_dev_init(&fx.b, "b", 1, 2, 0, 0);
	assert_int_equal(pci_dev_add_cap(&fx.b, big, sizeof(big), NULL), PCI_CAP_START);
	assert_int_equal(pci_dev_add_cap(&fx.b, big, sizeof(big), NULL), 0);
}

static void intx_lines_are_wired_or(void **state)
{
	char err[128];
	struct pci_dev c;
	pci_dev_init(&fx.b, "b", 1, 2, 0, 0);
	pci_dev_init(&c, "c", 1, 3, 0, 0);
	assert_int_equal(pci_bus_add(&fx.pb, &fx.a, err, sizeof(err)), 0); /* slot 1 */
	assert_int_equal(pci_bus_add(&fx.pb, &fx.b, err, sizeof(err)), 0); /* slot 2 */
	assert_int_equal(pci_bus_add(&fx.pb, &c, err, sizeof(err)), 0);	   /* slot 3 */
	unsigned li = 1; /* odd slots share GSI1 */
	pci_set_intx(&fx.a, true);
	pci_set_intx(&c, true);
	assert_true(fx.line[li]);
	pci_set_intx(&fx.a, false);
	assert_true(fx.line[li]);
	pci_set_intx(&c, false);
	assert_false(fx.line[li]);
	assert_false(fx.line[0]);
	/* INTx disable in the command register masks the pin. */
	pci_set_intx(&fx.b, true);
	assert_true(fx.line[0]);
	cfg_write(2, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_INTX_DISABLE);
	assert_false(fx.line[0]);
	cfg_write(2, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_true(fx.line[0]);
	pci_bus_remove(&c);
	assert_null(fx.pb.dev[3]);
}

static void msix_written(struct pci_dev *d, unsigned off, unsigned size)
{
	msix_config_written(&fx.msix);
}

static void msix_masking_and_pending(void **state)
{
	char err[128];
	struct msi_sink sink = {send_msi, NULL};
	assert_int_equal(msix_init(&fx.msix, &fx.a, 3, 0, 0x1000, 0x2000, sink), 0);
	fx.a.cfg_written = msix_written;
	assert_int_equal(pci_bus_add(&fx.pb, &fx.a, err, sizeof(err)), 0);
	unsigned cap = fx.msix.cap;
	assert_int_equal(cfg_read(1, cap, 1), 0x11);
	assert_int_equal(cfg_read(1, cap + 2, 2), 2); /* table size - 1 */
	assert_int_equal(cfg_read(1, cap + 4, 4), 0x1000);
	assert_int_equal(cfg_read(1, cap + 8, 4), 0x2000);

	/* Disabled: nothing is sent. */
	msix_notify(&fx.msix, 1);
	assert_int_equal(fx.msis, 0);

	uint32_t entry[4] = {0xfee00000, 0, 0x4041, 0};
	cfg_write(1, cap + 2, 2, 0x8000); /* enable */
	/* Vectors start masked: notify leaves it pending. */
	msix_notify(&fx.msix, 1);
	assert_int_equal(fx.msis, 0);
	uint64_t pba = 0;
	msix_pba_read(&fx.msix, 0, &pba, 8);
	assert_int_equal(pba, 2);
	/* Programming and unmasking vector 1 delivers the pending message. */
	for (int i = 0; i < 4; i++)
		msix_table_write(&fx.msix, 16 + 4 * i, &entry[i], 4);
	assert_int_equal(fx.msis, 1);
	assert_int_equal(fx.msi_addr, 0xfee00000);
	assert_int_equal(fx.msi_data, 0x4041);
	msix_pba_read(&fx.msix, 0, &pba, 8);
	assert_int_equal(pba, 0);
	/* Function mask holds messages back until cleared. */
	cfg_write(1, cap + 2, 2, 0xc000);
	msix_notify(&fx.msix, 1);
	assert_int_equal(fx.msis, 1);
	cfg_write(1, cap + 2, 2, 0x8000);
	assert_int_equal(fx.msis, 2);
	/* Out-of-range vectors and odd table accesses are ignored. */
	msix_notify(&fx.msix, 3);
	msix_notify(&fx.msix, 1000);
	uint16_t half = 0xffff;
	msix_table_write(&fx.msix, 16 + 12, &half, 2);
	msix_table_write(&fx.msix, 48, &entry[0], 4);
	uint32_t v;
	msix_table_read(&fx.msix, 16 + 12, &v, 4);
	assert_int_equal(v, 0);
	assert_int_equal(fx.msis, 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(host_bridge_and_empty_slots),	  T(address_latch_is_dword_only),
	    T(device_gets_firmware_bar),	  T(bar_sizing_and_moving),
	    T(bar_over_another_range_stays_dark), T(capabilities_chain),
	    T(intx_lines_are_wired_or),		  T(msix_masking_and_pending),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
