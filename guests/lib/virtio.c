/* The guest-side virtio 1.x PCI transport and split virtqueues (see virtio.h). */
#include "virtio.h"

#include "guest.h"
#include "pci.h"

#define CAP_COMMON  1
#define CAP_NOTIFY  2
#define CAP_ISR	    3
#define CAP_DEVICE  4
#define MSIX_ENABLE (1u << 15)

static uint64_t mmio_rd(uint64_t a, unsigned size)
{
	switch (size) {
	case 1:
		return mmio_read8(a);
	case 2:
		return mmio_read16(a);
	case 4:
		return mmio_read32(a);
	default:
		return mmio_read64(a);
	}
}

static void mmio_wr(uint64_t a, unsigned size, uint64_t v)
{
	switch (size) {
	case 1:
		mmio_write8(a, (uint8_t)v);
		break;
	case 2:
		mmio_write16(a, (uint16_t)v);
		break;
	case 4:
		mmio_write32(a, (uint32_t)v);
		break;
	default:
		mmio_write64(a, v);
		break;
	}
}

/* Memory BAR n, 32- or 64-bit. */
static uint64_t bar_addr(unsigned slot, unsigned n)
{
	uint32_t lo = pci_read(slot, PCI_BAR0 + 4 * n, 4);
	return (lo & 6) == 4 && n < 5 ? pci_bar64(slot, n) : lo & ~0xfull;
}

void vio_locate(struct virtio_dev *d)
{
	d->common = d->isr = d->devcfg = d->notify = 0;
	for (unsigned c = pci_find_cap(d->slot, PCI_CAP_VENDOR, 0); c;
	     c = pci_find_cap(d->slot, PCI_CAP_VENDOR, c)) {
		unsigned n = pci_read(d->slot, c + 4, 1) % 6;
		uint64_t bar = bar_addr(d->slot, n);
		uint64_t at = bar + pci_read(d->slot, c + 8, 4);
		switch (pci_read(d->slot, c + 3, 1)) {
		case CAP_COMMON:
			d->common = at;
			d->bar = bar;
			d->bar_index = n;
			break;
		case CAP_NOTIFY:
			d->notify = at;
			d->notify_mult = pci_read(d->slot, c + 16, 4);
			break;
		case CAP_ISR:
			d->isr = at;
			break;
		case CAP_DEVICE:
			d->devcfg = at;
			break;
		}
	}
	d->msix_cap = pci_find_cap(d->slot, PCI_CAP_MSIX, 0);
	d->msix_table = d->msix_pba = 0;
	if (d->msix_cap) {
		uint32_t t = pci_read(d->slot, d->msix_cap + 4, 4),
			 p = pci_read(d->slot, d->msix_cap + 8, 4);
		d->msix_table = bar_addr(d->slot, t & 7) + (t & ~7u);
		d->msix_pba = bar_addr(d->slot, p & 7) + (p & ~7u);
	}
}

/* Guests map only the first 4 GiB: a 64-bit BAR firmware left above that
 * (SeaBIOS under QEMU puts them high) or unassigned moves into the PCI hole,
 * 1 MiB per slot and 64 KiB per BAR, which holds any virtio BAR. */
#define VIO_BAR_HOME 0xe0000000ull

bool vio_find(struct virtio_dev *d, uint16_t type)
{
	int slot = pci_find(VIO_VENDOR, (uint16_t)(VIO_DEVICE0 + type));
	if (slot < 0)
		return false;
	d->slot = (unsigned)slot;
	for (unsigned n = 0; n < 5; n++) {
		uint64_t bar = bar_addr(d->slot, n);
		if ((pci_read(d->slot, PCI_BAR0 + 4 * n, 4) & 7) == 4 && (!bar || bar >> 32))
			pci_set_bar64(d->slot, n,
				      VIO_BAR_HOME + ((uint64_t)slot << 20) + (n << 16));
	}
	pci_write(d->slot, PCI_COMMAND, 2, pci_read(d->slot, PCI_COMMAND, 2) | PCI_CMD_MEMORY);
	vio_locate(d);
	return d->common && d->notify;
}

uint64_t vio_cc(const struct virtio_dev *d, unsigned off, unsigned size)
{
	return mmio_rd(d->common + off, size);
}

void vio_cc_set(const struct virtio_dev *d, unsigned off, unsigned size, uint64_t v)
{
	mmio_wr(d->common + off, size, v);
}

uint8_t vio_status(const struct virtio_dev *d)
{
	return (uint8_t)vio_cc(d, VIO_CC_STATUS, 1);
}

bool vio_wait_status(const struct virtio_dev *d, uint8_t bits, uint64_t timeout_us)
{
	uint64_t end = tsc_deadline_us(timeout_us);
	while ((vio_status(d) & bits) != bits)
		if (rdtsc() > end)
			return false;
		else
			cpu_relax();
	return true;
}

void vio_reset(struct virtio_dev *d)
{
	vio_cc_set(d, VIO_CC_STATUS, 1, 0);
	/* The device is reset once status reads back 0 (§4.1.4.3.2). */
	uint64_t end = tsc_deadline_us(100000);
	while (vio_status(d) && rdtsc() < end)
		cpu_relax();
}

static void msix_route(struct virtio_dev *d)
{
	uint16_t ctrl = (uint16_t)pci_read(d->slot, d->msix_cap + 2, 2);
	unsigned nvec = (ctrl & 0x7ffu) + 1;
	pci_write(d->slot, d->msix_cap + 2, 2, MSIX_ENABLE);
	for (unsigned v = 0; v < nvec; v++) {
		uint64_t e = d->msix_table + 16 * v;
		mmio_write32(e, 0xfee00000); /* fixed delivery to APIC ID 0 */
		mmio_write32(e + 4, 0);
		mmio_write32(e + 8, (uint32_t)(d->msi_vec + v));
		mmio_write32(e + 12, 0); /* unmasked */
	}
	vio_cc_set(d, VIO_CC_MSIX, 2, 0);
}

bool vio_begin(struct virtio_dev *d, uint64_t features)
{
	vio_reset(d);
	vio_cc_set(d, VIO_CC_STATUS, 1, VIO_S_ACKNOWLEDGE);
	vio_cc_set(d, VIO_CC_STATUS, 1, VIO_S_ACKNOWLEDGE | VIO_S_DRIVER);
	vio_cc_set(d, VIO_CC_GFSELECT, 4, 0);
	vio_cc_set(d, VIO_CC_GF, 4, (uint32_t)features);
	vio_cc_set(d, VIO_CC_GFSELECT, 4, 1);
	vio_cc_set(d, VIO_CC_GF, 4, (uint32_t)(features >> 32));
	vio_cc_set(d, VIO_CC_STATUS, 1, VIO_S_ACKNOWLEDGE | VIO_S_DRIVER | VIO_S_FEATURES_OK);
	if (!(vio_status(d) & VIO_S_FEATURES_OK))
		return false;
	if (d->msi_vec && d->msix_cap)
		msix_route(d);
	return true;
}

void vio_queue(struct virtio_dev *d, unsigned q, uint16_t size)
{
	struct vio_ring *r = &d->ring[q];
	memset(r, 0, sizeof(*r));
	vio_cc_set(d, VIO_CC_Q_SELECT, 2, q);
	vio_cc_set(d, VIO_CC_Q_SIZE, 2, size);
	if (d->msi_vec)
		vio_cc_set(d, VIO_CC_Q_MSIX, 2, q + 1);
	vio_cc_set(d, VIO_CC_Q_DESC, 8, (uint64_t)r->desc);
	vio_cc_set(d, VIO_CC_Q_DRIVER, 8, (uint64_t)&r->avail);
	vio_cc_set(d, VIO_CC_Q_DEVICE, 8, (uint64_t)&r->used);
	vio_cc_set(d, VIO_CC_Q_ENABLE, 2, 1);
}

void vio_driver_ok(const struct virtio_dev *d)
{
	vio_cc_set(d, VIO_CC_STATUS, 1, vio_status(d) | VIO_S_DRIVER_OK);
}

bool vio_start(struct virtio_dev *d, unsigned nq)
{
	if (!vio_begin(d, 1ull << VIO_F_VERSION_1 | 1ull << VIO_F_INDIRECT_DESC))
		return false;
	for (unsigned q = 0; q < nq; q++)
		vio_queue(d, q, VIO_QSIZE);
	vio_driver_ok(d);
	uint8_t s = vio_status(d);
	return (s & VIO_S_DRIVER_OK) && !(s & VIO_S_NEEDS_RESET);
}

void vio_chain(struct virtio_dev *d, unsigned q, unsigned first, const struct vio_buf *b,
	       unsigned n)
{
	struct vio_ring *r = &d->ring[q];
	for (unsigned i = 0; i < n; i++) {
		unsigned k = (first + i) % VIO_QSIZE;
		r->desc[k] = (struct vio_desc){
		    .addr = b[i].addr,
		    .len = b[i].len,
		    .flags =
			(uint16_t)((b[i].write ? VIO_D_WRITE : 0) | (i + 1 < n ? VIO_D_NEXT : 0)),
		    .next = (uint16_t)((k + 1) % VIO_QSIZE),
		};
	}
}

void vio_kick(const struct virtio_dev *d, unsigned q)
{
	mmio_write16(d->notify + q * d->notify_mult, (uint16_t)q);
}

void vio_offer(struct virtio_dev *d, unsigned q, uint16_t head)
{
	struct vio_ring *r = &d->ring[q];
	r->avail.ring[r->avail.idx % VIO_QSIZE] = head;
	/* The ring entry (and the descriptors) before the index the device reads. */
	__atomic_store_n(&r->avail.idx, (uint16_t)(r->avail.idx + 1), __ATOMIC_RELEASE);
	vio_kick(d, q);
}

void vio_submit(struct virtio_dev *d, unsigned q, const struct vio_buf *b, unsigned n)
{
	vio_chain(d, q, 0, b, n);
	vio_offer(d, q, 0);
}

bool vio_wait_used(struct virtio_dev *d, unsigned q, uint32_t *len, uint64_t timeout_us)
{
	struct vio_ring *r = &d->ring[q];
	uint64_t end = tsc_deadline_us(timeout_us);
	while (__atomic_load_n(&r->used.idx, __ATOMIC_ACQUIRE) == r->used_seen)
		if (rdtsc() > end)
			return false;
		else
			cpu_relax();
	*len = r->used.ring[r->used_seen % VIO_QSIZE].len;
	r->used_seen++;
	return true;
}
