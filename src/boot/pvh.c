/* The PVH boot ABI (Xen's hvm_start_info, also used by Linux and QEMU):
 * 32-bit protected mode, paging off, EBX = start info. */
#include <stdio.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "boot/memmap.h"

#define PVH_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

uint64_t pvh_write_start_info(const struct boot_args *a, uint64_t initrd_addr)
{
	struct memmap_entry map[MEMMAP_MAX];
	int n = memmap_build(a->mem, map);
	struct hvm_memmap_entry mm[MEMMAP_MAX];
	for (int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_entry){map[i].addr, map[i].size, map[i].type, 0};
	gpa_write(a->mem, BOOT_MEMMAP, mm, (uint64_t)n * sizeof(mm[0]));

	struct hvm_start_info si = {
	    .magic = PVH_MAGIC,
	    .version = 1,
	    .cmdline_paddr = BOOT_CMDLINE,
	    .rsdp_paddr = a->rsdp,
	    .memmap_paddr = BOOT_MEMMAP,
	    .memmap_entries = (uint32_t)n,
	};
	if (initrd_addr) {
		struct hvm_modlist_entry mod = {initrd_addr, a->initrd_len, 0, 0};
		gpa_write(a->mem, BOOT_MODULES, &mod, sizeof(mod));
		si.nr_modules = 1;
		si.modlist_paddr = BOOT_MODULES;
	}
	gpa_write(a->mem, BOOT_INFO, &si, sizeof(si));
	return BOOT_INFO;
}

int pvh_load(struct boot_args *a, const struct elf_image *e, uint32_t entry, struct cpu_state *st,
	     char *err, size_t errlen)
{
	uint64_t end, initrd;
	if (boot_load_elf(a, e, &end, err, errlen) ||
	    boot_place_modules(a, end, &initrd, err, errlen))
		return -1;
	if (!gpa_ptr(a->mem, entry, 1)) {
		snprintf(err, errlen, "PVH entry point %#x is outside guest RAM", entry);
		return -1;
	}
	st->rip = entry;
	st->gpr[R_RBX] = pvh_write_start_info(a, initrd);
	return 0;
}
