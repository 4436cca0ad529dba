/* Fuzz virtio-blk through its PCI transport as a hostile guest driver: the
 * input is a program of BAR reads/writes, config space writes and RAM pokes
 * (to build rings and requests). The VMM must never crash, hang or touch
 * memory outside guest RAM and the image. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio_blk.h"

#define RAM (2u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nop_msi(void *ctx, uint64_t addr, uint32_t data)
{
}

static void nop_line(void *ctx, unsigned gsi, bool level)
{
}

struct rig {
	struct bus pio, mmio;
	struct pci_bus pb;
	struct guest_mem mem;
	struct virtio_blk *blk;
};

static struct rig *rig_get(void)
{
	static struct rig r;
	static bool ready;
	char err[256];
	if (ready)
		return &r;
	char path[] = "/tmp/popek-fuzz-blk-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, 64 << 10) < 0)
		abort();
	bus_init(&r.pio, "pio");
	bus_init(&r.mmio, "mmio");
	struct irq_line intx[PCI_INTX_LINES] = {{nop_line, NULL, PCI_INTX_GSI0},
						{nop_line, NULL, PCI_INTX_GSI1}};
	if (pci_bus_init(&r.pb, &r.pio, &r.mmio, intx, err, sizeof(err)) ||
	    guest_mem_init(&r.mem, RAM, err, sizeof(err)))
		abort();
	struct virtio_env env = {.pci = &r.pb, .mem = &r.mem, .msi = {nop_msi, NULL}};
	r.blk = virtio_blk_create(&env, path, false, err, sizeof(err));
	if (!r.blk)
		abort();
	unlink(path);
	close(fd);
	ready = true;
	return &r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rig *r = rig_get();
	/* Start from reset with the BAR at its firmware address. */
	pci_config_write(&r->pb, 1, 0, PCI_BAR0, 4, (uint32_t)PCI_MMIO_START);
	pci_config_write(&r->pb, 1, 0, PCI_BAR0 + 4, 4, 0);
	pci_config_write(&r->pb, 1, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	uint8_t zero = 0;
	bus_access(&r->mmio, PCI_MMIO_START + VIRTIO_BAR_COMMON + 0x14, &zero, 1, true);
	memset(r->mem.base, 0, 0x40000);

	/* 12-byte ops: kind, size, offset (le16), value (le64). */
	for (size_t i = 0; i + 12 <= size; i += 12) {
		const uint8_t *op = data + i;
		unsigned sz = 1u << (op[1] & 3);
		uint16_t off;
		uint64_t val;
		memcpy(&off, op + 2, 2);
		memcpy(&val, op + 4, 8);
		switch (op[0] & 3) {
		case 0:
			bus_access(&r->mmio, PCI_MMIO_START + (off & (VIRTIO_BAR_SIZE - 1)), &val,
				   sz, true);
			break;
		case 1:
			bus_access(&r->mmio, PCI_MMIO_START + (off & (VIRTIO_BAR_SIZE - 1)), &val,
				   sz, false);
			break;
		case 2: /* RAM: ring and request area below 256 KiB */
			memcpy(r->mem.base + ((size_t)off << 2), &val, 8);
			break;
		default:
			pci_config_write(&r->pb, 1, 0, off & 0xff, sz > 4 ? 4 : sz, (uint32_t)val);
			break;
		}
	}
	return 0;
}
