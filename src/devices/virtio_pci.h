/* virtio 1.x modern PCI transport (spec §4.1): one 64-bit memory BAR holds the
 * common config, ISR, device config, notify area and the MSI-X table. A device
 * (blk, console, rng) supplies its queues' work in a virtio_dev_ops and reaches
 * the machine only through the PCI bus, guest memory and an msi_sink. */
#ifndef POPEK_VIRTIO_PCI_H
#define POPEK_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/msix.h"
#include "devices/pci.h"
#include "devices/request_gate.h"
#include "devices/services.h"
#include "devices/virtio_kick.h"
#include "devices/virtqueue.h"
#include "machine/irq.h"
#include "machine/memory.h"

#define VIRTIO_MAX_QUEUES 4

#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_RNG	  4

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

/* Layout of the BAR (each part page-aligned, as drivers map them separately). */
#define VIRTIO_BAR_COMMON	 0x0000
#define VIRTIO_BAR_ISR		 0x1000
#define VIRTIO_BAR_DEVICE	 0x2000
#define VIRTIO_BAR_NOTIFY	 0x3000
#define VIRTIO_BAR_MSIX		 0x4000
#define VIRTIO_BAR_PBA		 0x5000
#define VIRTIO_BAR_SIZE		 0x8000
#define VIRTIO_NOTIFY_MULTIPLIER 4
#define VIRTIO_COMMON_LEN	 0x38
#define VIRTIO_DEVICE_CFG_MAX	 0x1000

struct virtio_pci;

struct virtio_dev_ops {
	/* The driver made buffers available on queue q (a kick, or DRIVER_OK
	 * after buffers were queued early). Called with vp->lock held. */
	void (*queue_notify)(struct virtio_pci *vp, unsigned q);
	/* Optional: the driver reset the device. Called with vp->lock held. */
	void (*reset)(struct virtio_pci *vp);
};

struct virtio_pci_info {
	const char *name;
	uint16_t type;
	uint32_t class_code;
	unsigned nqueues;
	uint16_t queue_size;
	uint64_t features; /* device-specific; VERSION_1 and INDIRECT_DESC are added */
	const struct virtio_dev_ops *ops;
	const void *config; /* device config, read-only for the driver */
	unsigned config_len;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_pci_info info;
	void *dev; /* the device behind this transport */
	const struct guest_mem *mem;
	pthread_mutex_t lock; /* everything below, and the device's queue work */
	struct msix msix;
	uint64_t driver_features;
	uint32_t dev_feature_sel, drv_feature_sel;
	uint8_t status, isr, config_gen;
	uint16_t queue_sel, config_vector;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	uint16_t vq_vector[VIRTIO_MAX_QUEUES];
	struct virtio_kick kick;  /* eventfd kicks on the VM's loop, when the engine offers them */
	struct loop *loop;	  /* the VM's (NULL in rigs without one) */
	struct request_gate gate; /* every request passes it before the device acts */
	/* A request a gate deferred (GATE_DEFER) waits, still in the ring, until
	 * the VM has paused and resumed: queues with a bit in deferred do nothing
	 * until the gate's after_resume replays them (replaying). */
	uint32_t deferred;
	bool replay_posted, replaying;
	bool after_pause; /* the request being handled is the one deferred */
};

/* What a virtio device needs from the machine. */
struct virtio_env {
	struct pci_bus *pci;
	const struct guest_mem *mem;
	struct msi_sink msi;
	struct ioeventfd_sink ioeventfd; /* optional: .set NULL means MMIO kicks only */
	struct loop *loop;		 /* where eventfd kicks are served (with ioeventfd) */
	struct request_gate gate;	 /* optional: .check NULL lets every request go */
};

/* The environment of a device the machine creates from its registry. */
struct virtio_env virtio_env_of(const struct dev_services *s);

/* Set up the transport and plug it into env->pci. Returns 0 or -1 with err set. */
int virtio_pci_init(struct virtio_pci *vp, const struct virtio_pci_info *info, void *dev,
		    const struct virtio_env *env, char *err, size_t errlen);
/* Snapshot hooks (struct device_type save/load). dev is the virtio_pci, or a
 * device that has its transport as first member.
 * load checks everything: the state may come from a hostile file. */
int virtio_pci_save(void *dev, void **buf, size_t *len);
int virtio_pci_load(void *dev, const void *buf, size_t len);
/* Unplug; the caller makes sure no other thread uses vp any more. */
void virtio_pci_destroy(struct virtio_pci *vp);

/* The rest is for devices, with vp->lock held. */

/* Is the driver up (DRIVER_OK) and the device not broken? */
bool virtio_pci_live(const struct virtio_pci *vp);

/* Handle one request; returns the bytes written into the chain, -1 if the
 * driver broke the protocol (the device then needs a reset), or VIRTIO_DEFER
 * when the gate deferred it (the chain goes back to the ring). */
#define VIRTIO_DEFER (-2)
typedef int64_t (*virtio_handler)(struct virtio_pci *vp, struct vq_chain *c);

/* Pop every available chain of queue q through handle, push the results and
 * interrupt the driver once. */
void virtio_pci_process(struct virtio_pci *vp, unsigned q, virtio_handler handle);

/* Interrupt the driver for used buffers on q, unless it asked not to be. */
void virtio_pci_used(struct virtio_pci *vp, unsigned q);

/* The driver broke the rules: set NEEDS_RESET and tell it (config interrupt). */
void virtio_pci_fail(struct virtio_pci *vp);

#endif
