/* PCI host bridge with configuration mechanism #1 (ports 0xCF8/0xCFC): one bus,
 * one function per slot, 64-bit memory BARs placed like firmware would and
 * remapped on the MMIO bus whenever the guest moves them. */
#ifndef POPEK_PCI_H
#define POPEK_PCI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/bus.h"
#include "machine/irq.h"

#define PCI_CONFIG_ADDR 0xcf8
#define PCI_CONFIG_DATA 0xcfc

/* Where BARs go: the 32-bit PCI hole below the IOAPIC (0xfec00000). */
#define PCI_MMIO_START 0xc0000000ull
#define PCI_MMIO_END   0xfec00000ull

/* INTx pin A of every slot is wired to one of these GSIs (level, active high). */
#define PCI_INTX_GSI0  10
#define PCI_INTX_GSI1  11
#define PCI_INTX_LINES 2

#define PCI_SLOTS    32
#define PCI_NUM_BARS 6
#define PCI_CFG_SIZE 256

/* Standard type-0 header offsets and bits used here. */
#define PCI_VENDOR_ID	   0x00
#define PCI_DEVICE_ID	   0x02
#define PCI_COMMAND	   0x04
#define PCI_STATUS	   0x06
#define PCI_REVISION	   0x08
#define PCI_CLASS_PROG	   0x09
#define PCI_HEADER_TYPE	   0x0e
#define PCI_BAR0	   0x10
#define PCI_SUBSYS_VENDOR  0x2c
#define PCI_SUBSYS_ID	   0x2e
#define PCI_CAP_PTR	   0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d
#define PCI_CAP_START	   0x40

#define PCI_COMMAND_MEMORY	 0x0002
#define PCI_COMMAND_MASTER	 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT	 0x0008
#define PCI_STATUS_CAP_LIST	 0x0010
#define PCI_BAR_MEM_TYPE_64	 0x04

struct pci_dev;

struct pci_bar {
	uint64_t size; /* power of two, 0 = BAR not implemented */
	const struct bus_ops *ops;
	void *opaque;
	uint64_t mapped_at; /* valid when mapped */
	bool mapped;
};

struct pci_dev {
	const char *name;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change */
	struct pci_bar bar[PCI_NUM_BARS];
	/* Optional: the guest wrote config bytes [off, off+size). Called with the
	 * bus lock held, so it may read cfg[]; it must not call back into pci_*
	 * except pci_set_intx. */
	void (*cfg_written)(struct pci_dev *d, unsigned off, unsigned size);
	struct pci_bus *bus;
	unsigned slot;
	unsigned cap_end;	  /* next free byte for a capability */
	unsigned cap_last;	  /* offset of the last capability, 0 if none */
	atomic_bool intx_blocked; /* command.INTX_DISABLE, mirrored for pci_set_intx */
	bool intx_level;
};

struct pci_bus {
	struct bus *pio, *mmio;
	pthread_mutex_t lock; /* config space, cf8, BAR mappings */
	uint32_t cf8;
	struct pci_dev *dev[PCI_SLOTS];
	struct pci_dev host;
	uint64_t mmio_next;

	pthread_mutex_t intx_lock; /* leaf lock: wired-OR of INTx per line */
	struct irq_line intx[PCI_INTX_LINES];
	uint32_t intx_asserted[PCI_INTX_LINES]; /* bit per slot */
};

/* Registers the config ports on pio. intx[i] drives GSI PCI_INTX_GSI0 + i. */
int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio,
		 const struct irq_line intx[PCI_INTX_LINES], char *err, size_t errlen);
/* Unmaps every BAR; devices are owned (and freed) by their creators. */
void pci_bus_destroy(struct pci_bus *pb);

/* Fill the header of a type-0 function. class_code is base<<16 | sub<<8 | prog_if. */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint8_t revision, uint32_t class_code);
/* Declare BAR n (and n+1, its upper half) as a 64-bit memory BAR of size bytes. */
void pci_dev_set_bar64(struct pci_dev *d, unsigned n, uint64_t size, const struct bus_ops *ops,
		       void *opaque);
/* Append a capability: body[0] is the ID, body[1] (next) is filled in here.
 * wmask (len bytes, may be NULL) says which bits the guest may write.
 * Returns the capability's config offset, or 0 if config space is full. */
unsigned pci_dev_add_cap(struct pci_dev *d, const uint8_t *body, unsigned len,
			 const uint8_t *wmask);

/* Plug d into the first free slot, give its BARs addresses in the PCI hole
 * and enable memory decoding as firmware would. */
int pci_bus_add(struct pci_bus *pb, struct pci_dev *d, char *err, size_t errlen);

/* Unplug d: unmap its BARs and free its slot (before the device is freed). */
void pci_bus_remove(struct pci_dev *d);

/* Level of INTx pin A; lines are shared, so the bridge ORs all slots. */
void pci_set_intx(struct pci_dev *d, bool level);

/* Snapshots: copy d's config space out, or replay a saved one through the
 * write masks (so identity and read-only fields stay ours) and remap BARs. */
void pci_dev_save_config(struct pci_dev *d, uint8_t out[PCI_CFG_SIZE]);
void pci_dev_load_config(struct pci_dev *d, const uint8_t in[PCI_CFG_SIZE]);

/* Config space accessors as the guest sees it (used by the port handler and tests). */
uint32_t pci_config_read(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned off,
			 unsigned size);
void pci_config_write(struct pci_bus *pb, unsigned slot, unsigned fn, unsigned off, unsigned size,
		      uint32_t val);

static inline uint16_t pci_cfg16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}

#endif
