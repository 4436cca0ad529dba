/* Where the boot loaders put things in guest-physical memory. popek's own
 * structures live in the legacy option-ROM area (0xc0000..0xe0000), like the
 * multiboot option ROM QEMU uses: the memory map reports it reserved and every
 * loader refuses segments there, so they never collide with a kernel — not
 * even one linked low in conventional memory (e.g. at 0x8000). */
#ifndef POPEK_BOOT_LAYOUT_H
#define POPEK_BOOT_LAYOUT_H

#define BOOT_AREA	    0xc0000
#define BOOT_GDT	    0xc0000 /* boot GDT (one page) */
#define BOOT_INFO	    0xc1000 /* multiboot info / PVH start_info / Linux zero page (4 KiB) */
#define BOOT_MEMMAP	    0xc2000 /* memory map entries (4 KiB) */
#define BOOT_CMDLINE	    0xc3000 /* kernel command line (up to BOOT_CMDLINE_MAX) */
#define BOOT_CMDLINE_MAX    0x2000
#define BOOT_MODULES	    0xc5000 /* module list (initrd) and the strings it points to */
#define BOOT_MODULES_END    0xc8000
#define BOOT_PAGETABLES	    0xc8000 /* identity page tables for 64-bit entry: PML4, PDPT, 4 PDs */
#define BOOT_PAGETABLES_END 0xce000
#define BOOT_AREA_END	    0xe0000

#define EBDA_START  0x9fc00 /* top of conventional memory, as on a PC */
#define BIOS_START  0xe0000 /* ACPI tables / MP table area */
#define BIOS_END    0x100000
#define HIGH_MEMORY 0x100000

#endif
