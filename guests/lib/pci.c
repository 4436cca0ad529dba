/* PCI conf1 access from a test guest (see pci.h). */
#include "pci.h"

#include "guest.h"

uint32_t pci_conf_addr(unsigned bus, unsigned dev, unsigned fn, unsigned off)
{
	return 1u << 31 | (bus & 0xff) << 16 | (dev & 31) << 11 | (fn & 7) << 8 | (off & 0xfc);
}

uint32_t pci_read(unsigned dev, unsigned off, unsigned size)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(0, dev, 0, off));
	uint16_t port = (uint16_t)(PCI_CONF_DATA + (off & 3));
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

void pci_write(unsigned dev, unsigned off, unsigned size, uint32_t v)
{
	outl(PCI_CONF_ADDR, pci_conf_addr(0, dev, 0, off));
	uint16_t port = (uint16_t)(PCI_CONF_DATA + (off & 3));
	if (size == 1)
		outb(port, (uint8_t)v);
	else if (size == 2)
		outw(port, (uint16_t)v);
	else
		outl(port, v);
}

int pci_find(uint16_t vendor, uint16_t device)
{
	for (unsigned dev = 0; dev < PCI_SLOTS; dev++)
		if (pci_read(dev, PCI_VENDOR_ID, 2) == vendor &&
		    pci_read(dev, PCI_DEVICE_ID, 2) == device)
			return (int)dev;
	return -1;
}

uint64_t pci_bar64(unsigned dev, unsigned bar)
{
	uint64_t lo = pci_read(dev, PCI_BAR0 + 4 * bar, 4) & ~0xfull;
	return (uint64_t)pci_read(dev, PCI_BAR0 + 4 * bar + 4, 4) << 32 | lo;
}

void pci_set_bar64(unsigned dev, unsigned bar, uint64_t addr)
{
	pci_write(dev, PCI_BAR0 + 4 * bar, 4, (uint32_t)addr);
	pci_write(dev, PCI_BAR0 + 4 * bar + 4, 4, (uint32_t)(addr >> 32));
}

unsigned pci_find_cap(unsigned dev, uint8_t id, unsigned from)
{
	unsigned off = from ? pci_read(dev, from + 1, 1) : pci_read(dev, PCI_CAP_PTR, 1);
	for (unsigned n = 0; off && n < 48; n++) { /* 48: a looped list ends too */
		if (pci_read(dev, off, 1) == id)
			return off;
		off = pci_read(dev, off + 1, 1);
	}
	return 0;
}
