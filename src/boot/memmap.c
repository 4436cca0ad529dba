#include "boot/memmap.h"

#include "boot/layout.h"

int memmap_build(const struct guest_mem *m, struct memmap_entry *out)
{
	int n = 0;
	uint64_t low = m->range[0].size;
	out[n++] = (struct memmap_entry){0, EBDA_START, E820_RAM};
	/* EBDA + legacy video/ROM hole; the ACPI tables live at BIOS_START. */
	out[n++] = (struct memmap_entry){EBDA_START, BIOS_END - EBDA_START, E820_RESERVED};
	if (low > HIGH_MEMORY)
		out[n++] = (struct memmap_entry){HIGH_MEMORY, low - HIGH_MEMORY, E820_RAM};
	if (m->nranges > 1)
		out[n++] = (struct memmap_entry){m->range[1].gpa, m->range[1].size, E820_RAM};
	return n;
}
