/* The guest-physical memory map every boot protocol reports (e820 types). */
#ifndef POPEK_MEMMAP_H
#define POPEK_MEMMAP_H

#include <stdint.h>

#include "machine/memory.h"

enum { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3 };

struct memmap_entry {
	uint64_t addr, size;
	uint32_t type;
};

#define MEMMAP_MAX 8

/* Fill out[] (at most MEMMAP_MAX entries) for the machine's RAM; returns the count. */
int memmap_build(const struct guest_mem *m, struct memmap_entry *out);

#endif
