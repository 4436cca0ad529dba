/* A minimal virtio 1.x PCI driver for unit tests: it talks to a device only
 * through the config ports and the BAR on the MMIO bus, as a guest would. */
#ifndef POPEK_TEST_VIRTIO_DRIVER_H
#define POPEK_TEST_VIRTIO_DRIVER_H

#include <string.h>

#include "devices/virtio_pci.h"

#define VD_RAM	    (8u << 20)
#define VD_RINGS    0x100000 /* queue q's rings at VD_RINGS + q * 0x10000 */
#define VD_QSIZE    16
#define VD_MSI_DATA 0x40

struct vd_queue {
	uint64_t desc, avail, used;
	uint16_t avail_idx, used_seen;
};

struct vdrv {
	struct bus pio, mmio;
	struct pci_bus pb;
	struct guest_mem mem;
	struct virtio_env env;
	unsigned slot;
	uint64_t bar;
	int msis;
	uint32_t msi_data;
	bool intx;
	struct vd_queue q[VIRTIO_MAX_QUEUES];
};

static void vd_msi(void *ctx, uint64_t addr, uint32_t data)
{
	struct vdrv *d = ctx;
	__atomic_add_fetch(&d->msis, 1, __ATOMIC_SEQ_CST);
	d->msi_data = data;
}

static void vd_line(void *ctx, unsigned gsi, bool level)
{
	struct vdrv *d = ctx;
	d->intx = level;
}

static inline void vd_init(struct vdrv *d)
{
	char err[128];
	memset(d, 0, sizeof(*d));
	bus_init(&d->pio, "pio");
	bus_init(&d->mmio, "mmio");
	struct irq_line intx[PCI_INTX_LINES] = {{vd_line, d, PCI_INTX_GSI0},
						{vd_line, d, PCI_INTX_GSI1}};
	assert_int_equal(pci_bus_init(&d->pb, &d->pio, &d->mmio, intx, err, sizeof(err)), 0);
	assert_int_equal(guest_mem_init(&d->mem, VD_RAM, err, sizeof(err)), 0);
	d->env = (struct virtio_env){.pci = &d->pb, .mem = &d->mem, .msi = {vd_msi, d}};
	d->slot = 1;
}

static inline void vd_fini(struct vdrv *d)
{
	pci_bus_destroy(&d->pb);
	guest_mem_free(&d->mem);
	bus_destroy(&d->pio);
	bus_destroy(&d->mmio);
}

static inline uint32_t vd_cfg(struct vdrv *d, unsigned off, unsigned size)
{
	return pci_config_read(&d->pb, d->slot, 0, off, size);
}

static inline uint64_t vd_rd(struct vdrv *d, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	bus_access(&d->mmio, d->bar + off, &v, size, false);
	return v;
}

static inline void vd_wr(struct vdrv *d, uint64_t off, unsigned size, uint64_t v)
{
	bus_access(&d->mmio, d->bar + off, &v, size, true);
}

/* Offsets in the common config (spec §4.1.4.3). */
#define VD_DFSEL  0x00
#define VD_DF	  0x04
#define VD_GFSEL  0x08
#define VD_GF	  0x0c
#define VD_MSIXC  0x10
#define VD_STATUS 0x14
#define VD_QSEL	  0x16
#define VD_QSIZE_ 0x18
#define VD_QMSIX  0x1a
#define VD_QEN	  0x1c
#define VD_QDESC  0x20
#define VD_QDRV	  0x28
#define VD_QDEV	  0x30

static inline uint64_t vd_device_features(struct vdrv *d)
{
	vd_wr(d, VD_DFSEL, 4, 0);
	uint64_t lo = vd_rd(d, VD_DF, 4);
	vd_wr(d, VD_DFSEL, 4, 1);
	return lo | vd_rd(d, VD_DF, 4) << 32;
}

static inline uint8_t vd_status(struct vdrv *d)
{
	return (uint8_t)vd_rd(d, VD_STATUS, 1);
}

/* Find the capability with this ID; 0 if absent. */
static inline unsigned vd_find_cap(struct vdrv *d, uint8_t id)
{
	for (unsigned off = vd_cfg(d, PCI_CAP_PTR, 1); off; off = vd_cfg(d, off + 1, 1))
		if (vd_cfg(d, off, 1) == id)
			return off;
	return 0;
}

/* Reset, negotiate features, set up nq queues, optionally MSI-X, DRIVER_OK.
 * Returns the status the device ended in. */
static inline uint8_t vd_start(struct vdrv *d, uint64_t features, unsigned nq, bool msix)
{
	d->bar = (uint64_t)vd_cfg(d, PCI_BAR0 + 4, 4) << 32 | (vd_cfg(d, PCI_BAR0, 4) & ~0xfu);
	vd_wr(d, VD_STATUS, 1, 0);
	vd_wr(d, VD_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vd_wr(d, VD_GFSEL, 4, 0);
	vd_wr(d, VD_GF, 4, (uint32_t)features);
	vd_wr(d, VD_GFSEL, 4, 1);
	vd_wr(d, VD_GF, 4, (uint32_t)(features >> 32));
	vd_wr(d, VD_STATUS, 1,
	      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	if (!(vd_status(d) & VIRTIO_STATUS_FEATURES_OK))
		return vd_status(d);
	if (msix) {
		unsigned cap = vd_find_cap(d, 0x11);
		pci_config_write(&d->pb, d->slot, 0, cap + 2, 2, 0x8000);
		for (unsigned v = 0; v <= nq; v++) {
			vd_wr(d, VIRTIO_BAR_MSIX + 16 * v, 4, 0xfee00000);
			vd_wr(d, VIRTIO_BAR_MSIX + 16 * v + 8, 4, VD_MSI_DATA + v);
			vd_wr(d, VIRTIO_BAR_MSIX + 16 * v + 12, 4, 0);
		}
		vd_wr(d, VD_MSIXC, 2, 0);
	}
	for (unsigned q = 0; q < nq; q++) {
		struct vd_queue *vq = &d->q[q];
		memset(vq, 0, sizeof(*vq));
		vq->desc = VD_RINGS + q * 0x10000;
		vq->avail = vq->desc + 16 * VD_QSIZE;
		vq->used = vq->desc + 0x1000;
		memset(gpa_ptr(&d->mem, vq->desc, 0x2000), 0, 0x2000);
		vd_wr(d, VD_QSEL, 2, q);
		vd_wr(d, VD_QSIZE_, 2, VD_QSIZE);
		if (msix)
			vd_wr(d, VD_QMSIX, 2, q + 1);
		vd_wr(d, VD_QDESC, 8, vq->desc);
		vd_wr(d, VD_QDRV, 4, (uint32_t)vq->avail);
		vd_wr(d, VD_QDRV + 4, 4, vq->avail >> 32);
		vd_wr(d, VD_QDEV, 8, vq->used);
		vd_wr(d, VD_QEN, 2, 1);
	}
	vd_wr(d, VD_STATUS, 1, vd_status(d) | VIRTIO_STATUS_DRIVER_OK);
	return vd_status(d);
}

struct vd_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Place a chain at descriptors 0..n-1 of queue q and make it available. */
static inline void vd_offer(struct vdrv *d, unsigned q, const struct vd_buf *b, unsigned n)
{
	struct vd_queue *vq = &d->q[q];
	for (unsigned i = 0; i < n; i++) {
		struct virtq_desc desc = {b[i].gpa, b[i].len,
					  (uint16_t)((b[i].write ? VIRTQ_DESC_F_WRITE : 0) |
						     (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
					  (uint16_t)(i + 1)};
		gpa_write(&d->mem, vq->desc + 16 * i, &desc, sizeof(desc));
	}
	uint16_t head = 0;
	gpa_write(&d->mem, vq->avail + 4 + 2 * (vq->avail_idx % VD_QSIZE), &head, 2);
	vq->avail_idx++;
	/* a driver publishes the index after the ring (the device may be a thread) */
	__atomic_store_n((uint16_t *)gpa_ptr(&d->mem, vq->avail + 2, 2), vq->avail_idx,
			 __ATOMIC_RELEASE);
}

/* Offer a chain and kick the queue through the notify area. */
static inline void vd_submit(struct vdrv *d, unsigned q, const struct vd_buf *b, unsigned n)
{
	vd_offer(d, q, b, n);
	vd_wr(d, VIRTIO_BAR_NOTIFY + q * VIRTIO_NOTIFY_MULTIPLIER, 2, q);
}

/* Next used element of queue q: returns false if none, else its length. */
static inline bool vd_used(struct vdrv *d, unsigned q, uint32_t *len)
{
	struct vd_queue *vq = &d->q[q];
	uint16_t idx =
	    __atomic_load_n((uint16_t *)gpa_ptr(&d->mem, vq->used + 2, 2), __ATOMIC_ACQUIRE);
	if (idx == vq->used_seen)
		return false;
	uint32_t elem[2];
	gpa_read(&d->mem, vq->used + 4 + 8 * (vq->used_seen % VD_QSIZE), elem, 8);
	vq->used_seen++;
	*len = elem[1];
	return true;
}

#endif
