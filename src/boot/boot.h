/* Boot loaders: put a kernel (and initrd, command line, boot information) into
 * guest memory and produce the boot vCPU's initial state. Everything a file
 * can get wrong is refused here, before any guest code runs. */
#ifndef POPEK_BOOT_H
#define POPEK_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "boot/elf.h"
#include "engines/cpu_state.h"
#include "machine/config.h"
#include "machine/memory.h"

struct boot_args {
	const struct vm_config *cfg;
	struct guest_mem *mem;
	int ncpus;
	uint64_t rsdp; /* ACPI RSDP address, 0 when there are no tables */
	/* The files, read into memory by boot_load. */
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd;
	size_t initrd_len;
	/* The kernel file's identity (for the kernel cache, kcache.h); NULL
	 * when the kernel was not read from a file. */
	const struct stat *kernel_file;
};

/* Read the kernel/initrd named in cfg and load them; fills *bsp. */
int boot_load(struct boot_args *a, struct cpu_state *bsp, char *err, size_t errlen);
/* The same for a kernel (and initrd) already in a->kernel: pick the boot
 * protocol from the image and load it. */
int boot_load_image(struct boot_args *a, struct cpu_state *bsp, char *err, size_t errlen);

/* --- shared by the protocol implementations (multiboot.c, pvh.c, ...) --- */

/* Check that the PT_LOAD segments fit at their physical addresses (as
 * boot_check_range); *end = highest byte + 1. */
int boot_check_elf(const struct boot_args *a, const struct elf_image *e, uint64_t *end, char *err,
		   size_t errlen);
/* Check, then copy the PT_LOAD segments to their physical addresses. */
int boot_load_elf(const struct boot_args *a, const struct elf_image *e, uint64_t *end, char *err,
		  size_t errlen);
/* Check that [gpa, gpa+len) is RAM and clear of popek's boot structures. */
int boot_check_range(const struct boot_args *a, uint64_t gpa, uint64_t len, const char *what,
		     char *err, size_t errlen);
/* Put the initrd page-aligned at or above min_addr and below max_end. */
int boot_place_initrd(const struct boot_args *a, uint64_t min_addr, uint64_t max_end,
		      uint64_t *addr, char *err, size_t errlen);
/* The initrd above the kernel (ending at kernel_end) and the command line. */
int boot_place_modules(const struct boot_args *a, uint64_t kernel_end, uint64_t *initrd, char *err,
		       size_t errlen);
/* Copy the command line (NUL-terminated) to BOOT_CMDLINE; argv0 (the kernel's
 * path), if not NULL, goes first and a space after it, as GRUB and QEMU start
 * a multiboot one. */
int boot_write_cmdline(const struct boot_args *a, const char *argv0, char *err, size_t errlen);
/* GDT at BOOT_GDT: 0x08 32-bit code, 0x10 64-bit code, 0x18 data. */
void boot_write_gdt(struct guest_mem *mem);
/* Identity page tables at BOOT_PAGETABLES mapping the first 4 GiB with 2 MiB pages. */
void boot_write_pagetables(struct guest_mem *mem);
/* Switch st to 64-bit mode using the tables above, starting at rip. */
void boot_enter_long_mode(struct cpu_state *st, uint64_t rip);

int multiboot_find(const uint8_t *img, size_t len, uint32_t *offset);
int multiboot_load(struct boot_args *a, uint32_t hdr_off, struct cpu_state *st, char *err,
		   size_t errlen);
/* Write a PVH hvm_start_info at BOOT_INFO; returns its address. */
uint64_t pvh_write_start_info(const struct boot_args *a, uint64_t initrd_addr);
/* The PVH entry point: an ELF note of owner "Xen", this type, a 32-bit address. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
int pvh_load(struct boot_args *a, const struct elf_image *e, uint32_t entry, struct cpu_state *st,
	     char *err, size_t errlen);

#define BOOT_GDT_CS32 0x08
#define BOOT_GDT_CS64 0x10
#define BOOT_GDT_DS   0x18

#endif
