/* Where the boot loaders put things in guest-physical memory. All below 1 MiB
 * except the kernel itself, so they never collide with a loaded image (every
 * loader refuses segments that overlap [BOOT_LOW_START, BOOT_LOW_END)). */
#ifndef POPEK_BOOT_LAYOUT_H
#define POPEK_BOOT_LAYOUT_H

#define BOOT_LOW_START	    0x1000
#define BOOT_GDT	    0x1000 /* boot GDT (one page) */
#define BOOT_INFO	    0x2000 /* multiboot info / PVH start_info / Linux zero page (4 KiB) */
#define BOOT_MEMMAP	    0x3000 /* memory map entries (4 KiB) */
#define BOOT_CMDLINE	    0x4000 /* kernel command line (up to BOOT_CMDLINE_MAX) */
#define BOOT_CMDLINE_MAX    0x2000
#define BOOT_MODULES	    0x6000 /* module list (initrd) */
#define BOOT_PAGETABLES	    0x9000 /* identity page tables for 64-bit entry: PML4, PDPT, 4 PDs */
#define BOOT_PAGETABLES_END 0xf000
#define BOOT_LOW_END	    0x10000
#define BOOT_STACK_TOP	    0x80000 /* initial RSP where a protocol promises a stack */

#define EBDA_START  0x9fc00 /* top of conventional memory, as on a PC */
#define BIOS_START  0xe0000 /* ACPI tables / MP table area */
#define BIOS_END    0x100000
#define HIGH_MEMORY 0x100000

#endif
