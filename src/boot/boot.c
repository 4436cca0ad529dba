#include "boot/boot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot/layout.h"
#include "boot/linux.h"
#include "machine/machine.h"
#include "util/file.h"

/* The kernel and initrd are mapped, not read: each is then copied once, from
 * the page cache into guest RAM. */
static int map_file(const char *path, uint64_t max, const char *what, const uint8_t **buf,
		    size_t *len, struct stat *st, char *err, size_t errlen)
{
	char why[400];
	int rc = file_map(path, max, buf, len, st, why, sizeof(why));
	if (rc == -EFBIG)
		snprintf(err, errlen, "%s %s (%zu bytes) is larger than guest RAM — raise --mem",
			 what, path, *len);
	else if (rc)
		snprintf(err, errlen, "%s %s", what, why);
	else if (*len == 0)
		snprintf(err, errlen, "%s %s: the file is empty", what, path);
	return rc || !*len ? -1 : 0;
}

int boot_check_range(const struct boot_args *a, uint64_t gpa, uint64_t len, const char *what,
		     char *err, size_t errlen)
{
	if (!gpa_ptr(a->mem, gpa, len)) {
		snprintf(err, errlen,
			 "%s at %#llx..%#llx does not fit in guest RAM (%llu MiB) — raise --mem",
			 what, (unsigned long long)gpa, (unsigned long long)(gpa + len),
			 (unsigned long long)(a->mem->size >> 20));
		return -1;
	}
	/* The EBDA, option-ROM and BIOS area: reserved on a PC, and where
	 * popek's boot structures and ACPI tables live. */
	_Static_assert(BOOT_AREA >= EBDA_START && BOOT_AREA_END <= BIOS_START,
		       "boot structures must stay in the reserved BIOS area");
	if (gpa < BIOS_END && EBDA_START < gpa + len) {
		snprintf(err, errlen,
			 "%s at %#llx..%#llx overlaps the reserved BIOS area %#llx..%#llx "
			 "(popek's boot structures and ACPI tables)",
			 what, (unsigned long long)gpa, (unsigned long long)(gpa + len),
			 (unsigned long long)EBDA_START, (unsigned long long)BIOS_END);
		return -1;
	}
	return 0;
}

int boot_check_elf(const struct boot_args *a, const struct elf_image *e, uint64_t *end, char *err,
		   size_t errlen)
{
	*end = 0;
	for (int i = 0; i < e->nsegs; i++) {
		const struct elf_segment *s = &e->seg[i];
		if (boot_check_range(a, s->paddr, s->memsz, "kernel segment", err, errlen))
			return -1;
		if (s->paddr + s->memsz > *end)
			*end = s->paddr + s->memsz;
	}
	return 0;
}

int boot_load_elf(const struct boot_args *a, const struct elf_image *e, uint64_t *end, char *err,
		  size_t errlen)
{
	if (boot_check_elf(a, e, end, err, errlen))
		return -1;
	for (int i = 0; i < e->nsegs; i++) {
		const struct elf_segment *s = &e->seg[i];
		uint8_t *dst = gpa_ptr(a->mem, s->paddr, s->memsz);
		memcpy(dst, a->kernel + s->offset, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}

int boot_place_initrd(const struct boot_args *a, uint64_t min_addr, uint64_t max_end,
		      uint64_t *addr, char *err, size_t errlen)
{
	*addr = 0;
	if (!a->initrd)
		return 0;
	uint64_t start = (min_addr + 0xfff) & ~0xfffull;
	if (start < HIGH_MEMORY)
		start = HIGH_MEMORY;
	if (start + a->initrd_len > max_end ||
	    boot_check_range(a, start, a->initrd_len, "initrd", err, errlen)) {
		snprintf(
		    err, errlen,
		    "initrd (%zu bytes) does not fit in guest RAM after the kernel — raise --mem",
		    a->initrd_len);
		return -1;
	}
	memcpy(gpa_ptr(a->mem, start, a->initrd_len), a->initrd, a->initrd_len);
	*addr = start;
	return 0;
}

int boot_write_cmdline(const struct boot_args *a, const char *argv0, char *err, size_t errlen)
{
	const char *c = a->cfg->cmdline ? a->cfg->cmdline : "";
	char *dst = gpa_ptr(a->mem, BOOT_CMDLINE, BOOT_CMDLINE_MAX);
	int n = argv0 ? snprintf(dst, BOOT_CMDLINE_MAX, "%s %s", argv0, c)
		      : snprintf(dst, BOOT_CMDLINE_MAX, "%s", c);
	if (n < 0 || n >= BOOT_CMDLINE_MAX) {
		snprintf(err, errlen, "kernel command line is %d bytes; the limit is %d", n,
			 BOOT_CMDLINE_MAX - 1);
		return -1;
	}
	return 0;
}

int boot_place_modules(const struct boot_args *a, uint64_t kernel_end, uint64_t *initrd, char *err,
		       size_t errlen)
{
	return boot_place_initrd(a, kernel_end, a->mem->range[0].size, initrd, err, errlen) ||
	       boot_write_cmdline(a, NULL, err, errlen);
}

void boot_write_gdt(struct guest_mem *mem)
{
	const uint64_t gdt[] = {
	    0, 0x00cf9b000000ffffull, /* 0x08: 32-bit code, base 0, 4 GiB */
	    0x00af9b000000ffffull,    /* 0x10: 64-bit code */
	    0x00cf93000000ffffull,    /* 0x18: data, base 0, 4 GiB */
	};
	gpa_write(mem, BOOT_GDT, gdt, sizeof(gdt));
}

void boot_write_pagetables(struct guest_mem *mem)
{
	uint64_t *pml4 = gpa_ptr(mem, BOOT_PAGETABLES, 0x1000);
	uint64_t *pdpt = gpa_ptr(mem, BOOT_PAGETABLES + 0x1000, 0x1000);
	uint64_t *pd = gpa_ptr(mem, BOOT_PAGETABLES + 0x2000, 0x4000);
	memset(pml4, 0, 0x6000);
	pml4[0] = (BOOT_PAGETABLES + 0x1000) | 3; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PAGETABLES + 0x2000 + i * 0x1000) | 3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
}

void boot_enter_long_mode(struct cpu_state *st, uint64_t rip)
{
	st->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	st->cr4 = CR4_PAE;
	st->cr3 = BOOT_PAGETABLES;
	st->msr[MSR_IDX_EFER] = EFER_LME | EFER_LMA;
	for (int i = 0; i < SEG_TR; i++)
		cpu_state_flat_seg(&st->seg[i], BOOT_GDT_DS, false, false);
	cpu_state_flat_seg(&st->seg[SEG_CS], BOOT_GDT_CS64, true, true);
	st->rip = rip;
}

static void boot_write_platform(struct boot_args *a, struct cpu_state *st)
{
	cpu_state_init_protected(st);
	boot_write_gdt(a->mem);
	st->gdt = (struct dtable){BOOT_GDT, 4 * 8 - 1};
}

/* popek's plain ELF64 protocol: 64-bit mode, identity paging, RDI = PVH start info. */
static int elf64_load(struct boot_args *a, const struct elf_image *e, struct cpu_state *st,
		      char *err, size_t errlen)
{
	uint64_t end, initrd;
	if (boot_load_elf(a, e, &end, err, errlen) ||
	    boot_place_modules(a, end, &initrd, err, errlen))
		return -1;
	boot_write_pagetables(a->mem);
	boot_enter_long_mode(st, e->entry);
	st->gpr[R_RDI] = pvh_write_start_info(a, initrd);
	return 0;
}

int boot_load_image(struct boot_args *a, struct cpu_state *st, char *err, size_t errlen)
{
	struct elf_image e;
	struct elf_note note;
	uint32_t mb;
	boot_write_platform(a, st);
	/* Before PVH: a Linux vmlinux carries a PVH note too, but its 64-bit
	 * entry skips the kernel's own mode switches. */
	if (linux_probe(a->kernel, a->kernel_len))
		return linux_load(a, st, err, errlen);
	bool elf = elf_is_elf(a->kernel, a->kernel_len);
	if (elf && elf_parse(a->kernel, a->kernel_len, &e, err, errlen))
		return -1;
	if (elf && elf_find_note(a->kernel, &e, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &note)) {
		if (note.descsz < 4) {
			snprintf(err, errlen, "PVH entry note is truncated");
			return -1;
		}
		uint32_t entry = (uint32_t)note.desc[0] | (uint32_t)note.desc[1] << 8 |
				 (uint32_t)note.desc[2] << 16 | (uint32_t)note.desc[3] << 24;
		return pvh_load(a, &e, entry, st, err, errlen);
	}
	if (multiboot_find(a->kernel, a->kernel_len, &mb) == 0)
		return multiboot_load(a, mb, st, err, errlen);
	if (elf && e.is64)
		return elf64_load(a, &e, st, err, errlen);
	if (elf)
		snprintf(err, errlen,
			 "32-bit ELF without a multiboot header or PVH note: popek cannot "
			 "tell how to enter it");
	else
		snprintf(
		    err, errlen,
		    "not a kernel popek can boot (expected a Linux bzImage or vmlinux, an "
		    "ELF with a PVH note or multiboot header, a 64-bit ELF, or a multiboot image)");
	return -1;
}

int boot_load(struct boot_args *a, struct cpu_state *bsp, char *err, size_t errlen)
{
	char why[256];
	struct stat kernel_file;
	uint64_t t0 = monotonic_ns();
	int rc = -1;
	a->kernel = a->initrd = NULL;
	a->initrd_len = 0;
	if (map_file(a->cfg->kernel, a->mem->size, "kernel", &a->kernel, &a->kernel_len,
		     &kernel_file, err, errlen))
		goto out;
	a->kernel_file = &kernel_file;
	if (a->cfg->initrd && map_file(a->cfg->initrd, a->mem->size, "initrd", &a->initrd,
				       &a->initrd_len, NULL, err, errlen))
		goto out;
	rc = boot_load_image(a, bsp, why, sizeof(why));
	if (rc)
		snprintf(err, errlen, "kernel %s: %s", a->cfg->kernel, why);
	else if (a->cfg->verbose)
		fprintf(stderr, "popek: kernel and initrd mapped and loaded in %llu ms\n",
			(unsigned long long)((monotonic_ns() - t0) / 1000000));
out:
	file_unmap(a->kernel, a->kernel_len);
	file_unmap(a->initrd, a->initrd_len);
	a->kernel = a->initrd = NULL;
	a->kernel_file = NULL;
	return rc;
}
