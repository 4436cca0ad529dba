/* MSI-X for a PCI function: the capability, the vector table and the pending
 * bit array. The table and PBA live inside one of the owner's memory BARs; the
 * owner routes those accesses here and serialises every call with its lock. */
#ifndef POPEK_MSIX_H
#define POPEK_MSIX_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/pci.h"
#include "machine/irq.h"

#define MSIX_MAX_VECTORS 64
#define MSIX_ENTRY_SIZE	 16
#define MSIX_NO_VECTOR	 0xffff

struct msix {
	struct pci_dev *pci;
	struct msi_sink sink;
	unsigned nvec, cap;
	bool enabled, fmask;
	uint32_t table[MSIX_MAX_VECTORS][4]; /* addr lo, addr hi, data, vector control */
	uint64_t pending;
};

/* Add the capability to d; table and PBA are at the given offsets of BAR bar.
 * Returns 0, or -1 if nvec is out of range or config space is full. */
int msix_init(struct msix *x, struct pci_dev *d, unsigned nvec, unsigned bar, uint32_t table_off,
	      uint32_t pba_off, struct msi_sink sink);

/* The guest wrote config space: re-read enable/function mask (call from the
 * pci_dev cfg_written hook, with the PCI bus lock held). */
void msix_config_written(struct msix *x);

bool msix_enabled(const struct msix *x);

/* BAR accesses, offset relative to the table / PBA start. */
void msix_table_read(struct msix *x, uint64_t off, void *data, unsigned size);
void msix_table_write(struct msix *x, uint64_t off, const void *data, unsigned size);
void msix_pba_read(struct msix *x, uint64_t off, void *data, unsigned size);

struct blob;
struct reader;
/* Snapshots of the table and pending bits (enable/mask live in config space).
 * load returns -1 if the saved table does not fit this function. */
void msix_save(const struct msix *x, struct blob *b);
int msix_load(struct msix *x, struct reader *r);

/* Signal vector vec: sent now, or left pending while masked. */
void msix_notify(struct msix *x, unsigned vec);

#endif
