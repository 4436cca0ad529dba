#include "devices/pci.h"

#include <stdio.h>
#include <string.h>

/* A neutral host bridge identity (QEMU's PCIe host bridge): no Linux quirks. */
#define HOST_VENDOR 0x1b36
#define HOST_DEVICE 0x0008
#define HOST_CLASS  0x060000

/* The highest guest-physical address a BAR may claim (x86 MAXPHYADDR ceiling). */
#define PCI_ADDR_LIMIT (1ull << 52)

static uint32_t cfg_get(const struct pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)d->cfg[off + i] << (8 * i);
	return v;
}

static uint32_t cfg_get_bytes(const uint8_t *cfg, unsigned off)
{
	return (uint32_t)cfg[off] | (uint32_t)cfg[off + 1] << 8 | (uint32_t)cfg[off + 2] << 16 |
	       (uint32_t)cfg[off + 3] << 24;
}

static void cfg_put(struct pci_dev *d, unsigned off, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		d->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

static void wmask_put(struct pci_dev *d, unsigned off, unsigned size, uint32_t v)
{
	for (unsigned i = 0; i < size; i++)
		d->wmask[off + i] = (uint8_t)(v >> (8 * i));
}

static unsigned intx_index(const struct pci_dev *d)
{
	return d->slot % PCI_INTX_LINES;
}

/* Recompute the wired-OR of d's INTx line; called with intx_lock held. */
static void intx_update_locked(struct pci_dev *d)
{
	struct pci_bus *pb = d->bus;
	unsigned li = intx_index(d);
	uint32_t before = pb->intx_asserted[li];
	bool on = d->intx_level && !atomic_load(&d->intx_blocked);
	if (on)
		pb->intx_asserted[li] |= 1u << d->slot;
	else
		pb->intx_asserted[li] &= ~(1u << d->slot);
	if (!before != !pb->intx_asserted[li])
		irq_line_set(&pb->intx[li], pb->intx_asserted[li] != 0);
}

void pci_set_intx(struct pci_dev *d, bool level)
{
	if (!d->bus)
		return;
	pthread_mutex_lock(&d->bus->intx_lock);
	d->intx_level = level;
	intx_update_locked(d);
	pthread_mutex_unlock(&d->bus->intx_lock);
}

static uint64_t bar_address(const struct pci_dev *d, unsigned n)
{
	uint64_t lo = cfg_get(d, PCI_BAR0 + 4 * n, 4) & ~0xfull;
	uint64_t hi = cfg_get(d, PCI_BAR0 + 4 * n + 4, 4);
	return hi << 32 | lo;
}

/* Make the MMIO bus match what the guest programmed: a BAR decodes only with
 * memory decoding on and a sane address. Called with the bus lock held. */
static void update_bars(struct pci_dev *d)
{
	bool decode = cfg_get(d, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;
	for (unsigned n = 0; n < PCI_NUM_BARS; n++) {
		struct pci_bar *b = &d->bar[n];
		if (!b->size)
			continue;
		uint64_t addr = bar_address(d, n);
		bool want =
		    decode && addr && addr < PCI_ADDR_LIMIT && b->size <= PCI_ADDR_LIMIT - addr;
		if (b->mapped && (!want || b->mapped_at != addr)) {
			bus_unregister(d->bus->mmio, b->mapped_at, b->opaque);
			b->mapped = false;
		}
		if (want && !b->mapped) {
			/* An overlap with another range leaves the BAR dark, as a
			 * conflicting decode would be on real hardware. */
			if (bus_register(d->bus->mmio, addr, b->size, b->ops, b->opaque, d->name) ==
			    0) {
				b->mapped = true;
				b->mapped_at = addr;
			}
		}
	}
}

static struct pci_dev *lookup(struct pci_bus *pb, unsigned slot, unsigned fn)
{
	if (slot >= PCI_SLOTS || fn != 0)
		return NULL;
	return pb->dev[slot];
}

static uint32_t config_read_locked(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned off,
				   unsigned size)
{
	struct pci_dev *d = lookup(pb, slot, fn);
	if (!d || off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off)
		return size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
	return cfg_get(d, off, size);
}

static void config_write_locked(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned off,
				unsigned size, uint32_t val)
{
	struct pci_dev *d = lookup(pb, slot, fn);
	if (!d || off >= PCI_CFG_SIZE || size > PCI_CFG_SIZE - off)
		return;
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = d->wmask[off + i];
		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | ((val >> (8 * i)) & m));
	}
	bool touches_cmd = off < PCI_COMMAND + 2 && off + size > PCI_COMMAND;
	bool touches_bar = off < PCI_BAR0 + 4 * PCI_NUM_BARS && off + size > PCI_BAR0;
	if (touches_cmd || touches_bar)
		update_bars(d);
	if (touches_cmd) {
		bool blocked = cfg_get(d, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE;
		pthread_mutex_lock(&pb->intx_lock);
		atomic_store(&d->intx_blocked, blocked);
		intx_update_locked(d);
		pthread_mutex_unlock(&pb->intx_lock);
	}
	if (d->cfg_written)
		d->cfg_written(d, off, size);
}

uint32_t pci_config_read(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned off,
			 unsigned size)
{
	pthread_mutex_lock(&pb->lock);
	uint32_t v = config_read_locked(pb, slot, fn, off, size);
	pthread_mutex_unlock(&pb->lock);
	return v;
}

void pci_config_write(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned off, unsigned size,
		      uint32_t val)
{
	pthread_mutex_lock(&pb->lock);
	config_write_locked(pb, slot, fn, off, size, val);
	pthread_mutex_unlock(&pb->lock);
}

/* 0xCF8: only whole-dword accesses reach the address latch; byte accesses
 * belong to other legacy registers (0xCF9 reset control, the 0xCFB probe). */
static void addr_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct pci_bus *pb = dev;
	memset(data, 0xff, size);
	if (off == 0 && size == 4) {
		pthread_mutex_lock(&pb->lock);
		uint32_t v = pb->cf8;
		pthread_mutex_unlock(&pb->lock);
		memcpy(data, &v, 4);
	}
}

static void addr_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct pci_bus *pb = dev;
	if (off == 0 && size == 4) {
		uint32_t v;
		memcpy(&v, data, 4);
		pthread_mutex_lock(&pb->lock);
		pb->cf8 = v & 0x80fffffcu;
		pthread_mutex_unlock(&pb->lock);
	}
}

/* Decode the latched address; false if it selects nothing we implement. */
static bool decode_cf8(uint32_t cf8, uint64_t off, unsigned size, unsigned *slot, unsigned *reg)
{
	if (!(cf8 & 0x80000000u) || ((cf8 >> 16) & 0xff) != 0 || ((cf8 >> 8) & 7) != 0)
		return false;
	if (size > 4 || off + size > 4)
		return false;
	*slot = (cf8 >> 11) & 0x1f;
	*reg = (cf8 & 0xfc) + (unsigned)off;
	return true;
}

static void data_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct pci_bus *pb = dev;
	unsigned slot, reg;
	memset(data, 0xff, size);
	pthread_mutex_lock(&pb->lock);
	if (decode_cf8(pb->cf8, off, size, &slot, &reg)) {
		uint32_t v = config_read_locked(pb, slot, 0, reg, size);
		memcpy(data, &v, size);
	}
	pthread_mutex_unlock(&pb->lock);
}

static void data_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct pci_bus *pb = dev;
	unsigned slot, reg;
	pthread_mutex_lock(&pb->lock);
	if (decode_cf8(pb->cf8, off, size, &slot, &reg)) {
		uint32_t v = 0;
		memcpy(&v, data, size);
		config_write_locked(pb, slot, 0, reg, size, v);
	}
	pthread_mutex_unlock(&pb->lock);
}

static const struct bus_ops addr_ops = {.read = addr_read, .write = addr_write};
static const struct bus_ops data_ops = {.read = data_read, .write = data_write};

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint8_t revision, uint32_t class_code)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	cfg_put(d, PCI_VENDOR_ID, 2, vendor);
	cfg_put(d, PCI_DEVICE_ID, 2, device);
	cfg_put(d, PCI_REVISION, 1, revision);
	cfg_put(d, PCI_CLASS_PROG, 3, class_code);
	cfg_put(d, PCI_SUBSYS_VENDOR, 2, vendor);
	cfg_put(d, PCI_SUBSYS_ID, 2, device);
	wmask_put(d, PCI_COMMAND, 2,
		  PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	wmask_put(d, PCI_INTERRUPT_LINE, 1, 0xff);
	d->cap_end = PCI_CAP_START;
}

void pci_dev_set_bar64(struct pci_dev *d, unsigned n, uint64_t size, const struct bus_ops *ops,
		       void *opaque)
{
	/* Callers pass constants; a bad one is a programming error caught by tests. */
	if (n + 1 >= PCI_NUM_BARS || size < 16 || (size & (size - 1)))
		return;
	d->bar[n] = (struct pci_bar){.size = size, .ops = ops, .opaque = opaque};
	cfg_put(d, PCI_BAR0 + 4 * n, 4, PCI_BAR_MEM_TYPE_64);
	uint64_t mask = ~(size - 1);
	wmask_put(d, PCI_BAR0 + 4 * n, 4, (uint32_t)mask & ~0xfu);
	wmask_put(d, PCI_BAR0 + 4 * n + 4, 4, (uint32_t)(mask >> 32));
}

unsigned pci_dev_add_cap(struct pci_dev *d, const uint8_t *body, unsigned len, const uint8_t *wmask)
{
	unsigned off = (d->cap_end + 3) & ~3u;
	if (len < 2 || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
		return 0;
	memcpy(&d->cfg[off], body, len);
	d->cfg[off + 1] = 0;
	if (wmask)
		memcpy(&d->wmask[off], wmask, len);
	if (d->cap_last)
		d->cfg[d->cap_last + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAP_PTR] = (uint8_t)off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->cap_last = off;
	d->cap_end = off + len;
	return off;
}

int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio,
		 const struct irq_line intx[PCI_INTX_LINES], char *err, size_t errlen)
{
	memset(pb, 0, sizeof(*pb));
	pb->pio = pio;
	pb->mmio = mmio;
	pb->mmio_next = PCI_MMIO_START;
	for (int i = 0; i < PCI_INTX_LINES; i++)
		pb->intx[i] = intx[i];
	pthread_mutex_init(&pb->lock, NULL);
	pthread_mutex_init(&pb->intx_lock, NULL);

	pci_dev_init(&pb->host, "pci-host", HOST_VENDOR, HOST_DEVICE, 0, HOST_CLASS);
	pb->host.wmask[PCI_INTERRUPT_LINE] = 0;
	pb->host.bus = pb;
	pb->dev[0] = &pb->host;

	if (bus_register(pio, PCI_CONFIG_ADDR, 4, &addr_ops, pb, "pci-config") ||
	    bus_register(pio, PCI_CONFIG_DATA, 4, &data_ops, pb, "pci-config")) {
		bus_unregister(pio, PCI_CONFIG_ADDR, pb);
		snprintf(err, errlen,
			 "PCI config ports 0x%x-0x%x are already taken by another device",
			 PCI_CONFIG_ADDR, PCI_CONFIG_DATA + 3);
		pthread_mutex_destroy(&pb->lock);
		pthread_mutex_destroy(&pb->intx_lock);
		return -1;
	}
	return 0;
}

static void unmap_all(struct pci_dev *d)
{
	for (unsigned n = 0; n < PCI_NUM_BARS; n++) {
		if (d->bar[n].mapped)
			bus_unregister(d->bus->mmio, d->bar[n].mapped_at, d->bar[n].opaque);
		d->bar[n].mapped = false;
	}
}

void pci_bus_remove(struct pci_dev *d)
{
	struct pci_bus *pb = d->bus;
	if (!pb)
		return;
	pthread_mutex_lock(&pb->lock);
	unmap_all(d);
	pci_set_intx(d, false);
	pb->dev[d->slot] = NULL;
	d->bus = NULL;
	pthread_mutex_unlock(&pb->lock);
}

void pci_bus_destroy(struct pci_bus *pb)
{
	bus_unregister(pb->pio, PCI_CONFIG_ADDR, pb);
	bus_unregister(pb->pio, PCI_CONFIG_DATA, pb);
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		if (pb->dev[s]) {
			unmap_all(pb->dev[s]);
			pb->dev[s]->bus = NULL;
		}
		pb->dev[s] = NULL;
	}
	pthread_mutex_destroy(&pb->lock);
	pthread_mutex_destroy(&pb->intx_lock);
}

int pci_bus_add(struct pci_bus *pb, struct pci_dev *d, char *err, size_t errlen)
{
	pthread_mutex_lock(&pb->lock);
	unsigned slot = 1;
	while (slot < PCI_SLOTS && pb->dev[slot])
		slot++;
	if (slot == PCI_SLOTS) {
		pthread_mutex_unlock(&pb->lock);
		snprintf(err, errlen, "no free PCI slot for %s: at most %d devices fit on the bus",
			 d->name, PCI_SLOTS - 1);
		return -1;
	}
	uint64_t next = pb->mmio_next;
	for (unsigned n = 0; n < PCI_NUM_BARS; n++) {
		uint64_t size = d->bar[n].size;
		if (!size)
			continue;
		uint64_t addr = (next + size - 1) & ~(size - 1);
		if (addr >= PCI_MMIO_END || size > PCI_MMIO_END - addr) {
			pthread_mutex_unlock(&pb->lock);
			snprintf(err, errlen,
				 "PCI MMIO window full while placing %s: use fewer devices",
				 d->name);
			return -1;
		}
		cfg_put(d, PCI_BAR0 + 4 * n, 4, (uint32_t)addr | PCI_BAR_MEM_TYPE_64);
		cfg_put(d, PCI_BAR0 + 4 * n + 4, 4, (uint32_t)(addr >> 32));
		next = addr + size;
	}
	d->bus = pb;
	d->slot = slot;
	cfg_put(d, PCI_INTERRUPT_PIN, 1, 1);
	cfg_put(d, PCI_INTERRUPT_LINE, 1, intx_index(d) ? PCI_INTX_GSI1 : PCI_INTX_GSI0);
	cfg_put(d, PCI_COMMAND, 2, cfg_get(d, PCI_COMMAND, 2) | PCI_COMMAND_MEMORY);
	update_bars(d);
	for (unsigned n = 0; n < PCI_NUM_BARS; n++) {
		if (d->bar[n].size && !d->bar[n].mapped) {
			unmap_all(d);
			d->bus = NULL;
			pthread_mutex_unlock(&pb->lock);
			snprintf(err, errlen,
				 "cannot map BAR%u of %s at 0x%llx: the MMIO range is taken", n,
				 d->name, (unsigned long long)bar_address(d, n));
			return -1;
		}
	}
	pb->mmio_next = next;
	pb->dev[slot] = d;
	pthread_mutex_unlock(&pb->lock);
	return 0;
}

void pci_dev_save_config(struct pci_dev *d, uint8_t out[PCI_CFG_SIZE])
{
	pthread_mutex_lock(&d->bus->lock);
	memcpy(out, d->cfg, PCI_CFG_SIZE);
	pthread_mutex_unlock(&d->bus->lock);
}

void pci_dev_load_config(struct pci_dev *d, const uint8_t in[PCI_CFG_SIZE])
{
	struct pci_bus *pb = d->bus;
	if (!pb)
		return;
	pthread_mutex_lock(&pb->lock);
	for (unsigned off = 0; off < PCI_CFG_SIZE; off += 4)
		config_write_locked(pb, d->slot, 0, off, 4, cfg_get_bytes(in, off));
	pthread_mutex_unlock(&pb->lock);
}
