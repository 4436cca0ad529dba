/* A small virtio 1.x (modern) PCI driver for test guests: find a device, reset
 * it, negotiate features, set up split virtqueues, route MSI-X to LAPIC vectors,
 * offer buffer chains and poll for used ones. The rings are plain structures the
 * caller may also scribble on, which is what the hostile guest does. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define VIO_VENDOR     0x1af4
#define VIO_DEVICE0    0x1040 /* + device type */
#define VIO_ID_BLOCK   2
#define VIO_ID_CONSOLE 3
#define VIO_ID_RNG     4
#define VIO_QSIZE      16 /* the size this driver gives every queue */
#define VIO_MAX_QUEUES 2

#define VIO_F_INDIRECT_DESC 28
#define VIO_F_VERSION_1	    32

#define VIO_S_ACKNOWLEDGE 0x01
#define VIO_S_DRIVER	  0x02
#define VIO_S_DRIVER_OK	  0x04
#define VIO_S_FEATURES_OK 0x08
#define VIO_S_NEEDS_RESET 0x40

#define VIO_D_NEXT     1
#define VIO_D_WRITE    2
#define VIO_D_INDIRECT 4

/* Common configuration (virtio 1.x §4.1.4.3). */
#define VIO_CC_DFSELECT	  0x00
#define VIO_CC_DF	  0x04
#define VIO_CC_GFSELECT	  0x08
#define VIO_CC_GF	  0x0c
#define VIO_CC_MSIX	  0x10
#define VIO_CC_NUM_QUEUES 0x12
#define VIO_CC_STATUS	  0x14
#define VIO_CC_GENERATION 0x15
#define VIO_CC_Q_SELECT	  0x16
#define VIO_CC_Q_SIZE	  0x18
#define VIO_CC_Q_MSIX	  0x1a
#define VIO_CC_Q_ENABLE	  0x1c
#define VIO_CC_Q_DESC	  0x20
#define VIO_CC_Q_DRIVER	  0x28
#define VIO_CC_Q_DEVICE	  0x30
#define VIO_NO_VECTOR	  0xffff

struct vio_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct vio_ring {
	struct vio_desc desc[VIO_QSIZE];
	struct {
		uint16_t flags, idx, ring[VIO_QSIZE], used_event;
	} avail;
	struct {
		uint16_t flags, idx;
		struct {
			uint32_t id, len;
		} ring[VIO_QSIZE];
		uint16_t avail_event;
	} used;
	uint16_t used_seen;
} __attribute__((aligned(4096)));

struct virtio_dev {
	struct vio_ring ring[VIO_MAX_QUEUES];
	unsigned slot;
	unsigned bar_index;		      /* the BAR holding the common config */
	uint64_t bar;			      /* its address */
	uint64_t common, isr, devcfg, notify; /* guest-physical addresses */
	uint64_t msix_table, msix_pba;	      /* 0 without MSI-X */
	uint32_t notify_mult;
	unsigned msix_cap;
	uint8_t msi_vec; /* LAPIC vector of config changes; queue q gets msi_vec + 1 + q; 0: none */
};

/* A buffer of a chain: device-readable unless write. */
struct vio_buf {
	uint64_t addr;
	uint32_t len;
	bool write;
};

/* Find the device of this type on bus 0 and its virtio capabilities. */
bool vio_find(struct virtio_dev *d, uint16_t type);
/* Re-read the BARs (after one was moved) and recompute the structure addresses. */
void vio_locate(struct virtio_dev *d);
uint64_t vio_cc(const struct virtio_dev *d, unsigned off, unsigned size);
void vio_cc_set(const struct virtio_dev *d, unsigned off, unsigned size, uint64_t v);
uint8_t vio_status(const struct virtio_dev *d);
bool vio_wait_status(const struct virtio_dev *d, uint8_t bits, uint64_t timeout_us);
void vio_reset(struct virtio_dev *d);
/* Reset, negotiate features, turn MSI-X on (if d->msi_vec); false if the device
 * refused FEATURES_OK. */
bool vio_begin(struct virtio_dev *d, uint64_t features);
/* Give queue q the rings in d->ring[q] (cleared) with the given size, and enable it. */
void vio_queue(struct virtio_dev *d, unsigned q, uint16_t size);
void vio_driver_ok(const struct virtio_dev *d);
/* The whole start: VERSION_1 + INDIRECT_DESC, queues 0..nq-1 of VIO_QSIZE,
 * DRIVER_OK. True if the device is live afterwards. */
bool vio_start(struct virtio_dev *d, unsigned nq);
/* Write buffers to descriptors first..first+n-1 as one chain, without publishing it. */
void vio_chain(struct virtio_dev *d, unsigned q, unsigned first, const struct vio_buf *b,
	       unsigned n);
/* Put head into the avail ring, publish the index, notify. */
void vio_offer(struct virtio_dev *d, unsigned q, uint16_t head);
void vio_kick(const struct virtio_dev *d, unsigned q);
/* Chain at descriptor 0 + offer + kick. */
void vio_submit(struct virtio_dev *d, unsigned q, const struct vio_buf *b, unsigned n);
/* Wait for the next used element of q; false on timeout. */
bool vio_wait_used(struct virtio_dev *d, unsigned q, uint32_t *len, uint64_t timeout_us);

/* virtio-blk on queue 0 (virtio_blk.c). */
#define VBLK_T_IN    0
#define VBLK_T_OUT   1
#define VBLK_T_FLUSH 4
#define VBLK_S_OK    0
#define VBLK_S_IOERR 1
#define VBLK_TIMEOUT (-1)
/* One request (buf of len bytes, none for len 0); returns the status byte, or
 * VBLK_TIMEOUT if the device never answered. */
int vblk_request(struct virtio_dev *d, uint32_t type, uint64_t sector, void *buf, uint32_t len);
uint64_t vblk_capacity(const struct virtio_dev *d);

#endif
