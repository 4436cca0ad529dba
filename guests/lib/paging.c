/* Finer-grained control over the static identity map of lib/boot.S: a 2 MiB
 * page is split into 512 4 KiB pages (same mapping) the first time one of them
 * needs its own flags. */
#include "guest.h"

#define ADDR_MASK 0x000ffffffffff000ull
#define PT_POOL	  16

extern uint64_t pml4[512];
static uint64_t pt_pool[PT_POOL][512] __attribute__((aligned(4096)));
static unsigned pt_used;

static uint64_t *next_level(uint64_t entry)
{
	if (!(entry & PTE_P))
		fail("page walk hit a non-present upper-level entry %#lx", entry);
	return (uint64_t *)(entry & ADDR_MASK);
}

uint64_t *pte_lookup(uint64_t va)
{
	uint64_t *pdpt = next_level(pml4[(va >> 39) & 511]);
	uint64_t *pd = next_level(pdpt[(va >> 30) & 511]);
	uint64_t *pde = &pd[(va >> 21) & 511];

	if (*pde & PTE_PS) {
		uint64_t *pt, base = *pde & ADDR_MASK & ~0x1fffffull;
		uint64_t flags = *pde & (PTE_P | PTE_W | PTE_U | PTE_PWT | PTE_PCD);

		if (pt_used == PT_POOL)
			fail("out of page tables for 4 KiB mappings");
		pt = pt_pool[pt_used++];
		for (uint64_t i = 0; i < 512; i++)
			pt[i] = (base + (i << 12)) | flags;
		/* the PDE stops being a leaf: let the 4 KiB entries decide U/W */
		*pde = (uint64_t)pt | PTE_P | PTE_W | PTE_U;
		write_cr3(read_cr3()); /* drop the 2 MiB translation */
	}
	return &next_level(*pde)[(va >> 12) & 511];
}

void page_update(uint64_t va, uint64_t len, uint64_t set, uint64_t clear)
{
	for (uint64_t p = va & ~0xfffull; p < va + len; p += 4096) {
		uint64_t *pte = pte_lookup(p);

		*pte = (*pte | set) & ~clear;
		invlpg(p);
	}
}
