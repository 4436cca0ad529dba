/* PCI configuration mechanism #1 (ports 0xcf8/0xcfc) for test guests: enough to
 * find a device on bus 0, read its 64-bit BAR and walk its capabilities. */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdint.h>

#define PCI_CONF_ADDR 0xcf8
#define PCI_CONF_DATA 0xcfc

#define PCI_VENDOR_ID  0x00
#define PCI_DEVICE_ID  0x02
#define PCI_COMMAND    0x04
#define PCI_BAR0       0x10
#define PCI_CAP_PTR    0x34
#define PCI_CMD_MEMORY (1u << 1)
#define PCI_CAP_MSIX   0x11
#define PCI_CAP_VENDOR 0x09
#define PCI_SLOTS      32

/* The conf1 address of bus/dev/fn/offset (offset's low two bits dropped). */
uint32_t pci_conf_addr(unsigned bus, unsigned dev, unsigned fn, unsigned off);
/* Accesses of size 1, 2 or 4 at any offset of a function on bus 0. */
uint32_t pci_read(unsigned dev, unsigned off, unsigned size);
void pci_write(unsigned dev, unsigned off, unsigned size, uint32_t v);
/* The slot on bus 0 holding vendor:device, or -1. */
int pci_find(uint16_t vendor, uint16_t device);
uint64_t pci_bar64(unsigned dev, unsigned bar);
void pci_set_bar64(unsigned dev, unsigned bar, uint64_t addr);
/* Offset of the first capability with this ID at or after the one at from
 * (0: start of the list); 0 if there is none. */
unsigned pci_find_cap(unsigned dev, uint8_t id, unsigned from);

#endif
