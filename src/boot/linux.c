/* Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst and
 * zero-page.rst). Every field of the image is untrusted: each offset and size
 * is checked against the file length and guest RAM before use. */
#include "boot/linux.h"

#include <stdio.h>
#include <string.h>

#include "boot/layout.h"
#include "boot/memmap.h"

/* Offsets in boot_params; the setup header sits at the same offsets in the
 * bzImage file as in boot_params. */
enum {
	BP_ACPI_RSDP = 0x070,
	BP_E820_ENTRIES = 0x1e8,
	HDR_SETUP_SECTS = 0x1f1,
	HDR_SYSSIZE = 0x1f4,
	HDR_BOOT_FLAG = 0x1fe,
	HDR_JUMP = 0x200,
	HDR_MAGIC = 0x202,
	HDR_VERSION = 0x206,
	HDR_TYPE_OF_LOADER = 0x210,
	HDR_LOADFLAGS = 0x211,
	HDR_RAMDISK_IMAGE = 0x218,
	HDR_RAMDISK_SIZE = 0x21c,
	HDR_CMD_LINE_PTR = 0x228,
	HDR_INITRD_ADDR_MAX = 0x22c,
	HDR_KERNEL_ALIGNMENT = 0x230,
	HDR_RELOCATABLE = 0x234,
	HDR_XLOADFLAGS = 0x236,
	HDR_CMDLINE_SIZE = 0x238,
	HDR_PREF_ADDRESS = 0x258,
	HDR_INIT_SIZE = 0x260,
	HDR_MIN_END = 0x264 + 4, /* through init_size: what protocol 2.12 guarantees */
	HDR_MAX_END = 0x290,	 /* the header may grow up to edd_mbr_sig_buffer */
	BP_E820_TABLE = 0x2d0,
	BP_SIZE = 0x1000,
};

#define HDRS_MAGIC	  0x53726448u /* "HdrS" */
#define BOOT_FLAG_MAGIC	  0xaa55u
#define PROTO_MIN	  0x020cu /* 2.12: xloadflags tells us the 64-bit entry exists */
#define XLF_KERNEL_64	  (1u << 0)
#define LOADED_HIGH	  (1u << 0)
#define LOADER_UNDEFINED  0xff
#define ENTRY64_OFFSET	  0x200
#define INITRD_MAX_LEGACY 0x37ffffffu
#define PAGE_SIZE	  4096ull
#define MiB		  (1ull << 20)

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* What the two image formats hand to the common part. */
struct kernel_placement {
	uint64_t entry;		  /* guest-physical 64-bit entry */
	uint64_t end;		  /* first byte above everything the kernel may use */
	uint64_t initrd_max;	  /* highest byte address the initrd may occupy */
	uint64_t cmdline_max;	  /* longest command line, without its NUL */
};

/* ---- ELF (vmlinux) ---- */

enum {
	EI_CLASS = 4,
	EI_DATA = 5,
	ELFCLASS64 = 2,
	ELFDATA2LSB = 1,
	ET_EXEC = 2,
	EM_X86_64 = 62,
	PT_LOAD = 1,
	PT_NOTE = 4,
	EHDR64_SIZE = 64,
	PHDR64_SIZE = 56,
	XEN_ELFNOTE_GUEST_OS = 6,
};

struct phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

static bool elf64_x86_header(const uint8_t *img, size_t len)
{
	return len >= EHDR64_SIZE && !memcmp(img, "\177ELF", 4) && img[EI_CLASS] == ELFCLASS64 &&
	       img[EI_DATA] == ELFDATA2LSB && le16(img + 0x12) == EM_X86_64;
}

/* Program header i, or false if the table does not lie inside the file. */
static bool elf_phdr(const uint8_t *img, size_t len, unsigned i, struct phdr *ph)
{
	uint64_t phoff = le64(img + 0x20);
	unsigned phentsize = le16(img + 0x36), phnum = le16(img + 0x38);
	if (i >= phnum || phentsize < PHDR64_SIZE || phoff > len ||
	    (uint64_t)phnum * phentsize > len - phoff)
		return false;
	const uint8_t *p = img + phoff + (uint64_t)i * phentsize;
	*ph = (struct phdr){.type = le32(p),
			    .offset = le64(p + 8),
			    .vaddr = le64(p + 16),
			    .paddr = le64(p + 24),
			    .filesz = le64(p + 32),
			    .memsz = le64(p + 40)};
	return true;
}

/* A note that only Linux carries: any note owned by "Linux" (build salt,
 * version), or Xen's GUEST_OS note saying "linux". */
static bool note_says_linux(const uint8_t *n, uint64_t len)
{
	uint64_t off = 0;
	while (len - off >= 12) {
		uint32_t namesz = le32(n + off), descsz = le32(n + off + 4), type = le32(n + off + 8);
		uint64_t name = off + 12, desc = name + align_up(namesz, 4);
		if (desc > len || align_up(descsz, 4) > len - desc)
			return false;
		if (namesz == 6 && !memcmp(n + name, "Linux", 6))
			return true;
		if (namesz == 4 && !memcmp(n + name, "Xen", 4) && type == XEN_ELFNOTE_GUEST_OS &&
		    descsz >= 5 && !memcmp(n + desc, "linux", 5))
			return true;
		off = desc + align_up(descsz, 4);
	}
	return false;
}

static bool elf_is_linux(const uint8_t *img, size_t len)
{
	if (!elf64_x86_header(img, len))
		return false;
	struct phdr ph;
	for (unsigned i = 0; elf_phdr(img, len, i, &ph); i++)
		if (ph.type == PT_NOTE && ph.offset <= len && ph.filesz <= len - ph.offset &&
		    note_says_linux(img + ph.offset, ph.filesz))
			return true;
	return false;
}

static bool is_bzimage(const uint8_t *img, size_t len)
{
	return len >= HDR_MAGIC + 4 && le32(img + HDR_MAGIC) == HDRS_MAGIC;
}

bool linux_probe(const uint8_t *img, size_t len)
{
	return is_bzimage(img, len) || elf_is_linux(img, len);
}

/* The guest RAM a kernel may occupy: above the low boot area and the BIOS
 * hole, below the 32-bit PCI hole (the identity map covers 4 GiB). */
static uint64_t low_ram_end(const struct guest_mem *mem)
{
	return mem->range[0].size;
}

static int vmlinux_load(const struct guest_mem *mem, const struct linux_args *a, uint8_t *zp,
			struct kernel_placement *k, char *err, size_t errlen)
{
	const uint8_t *img = a->kernel;
	size_t len = a->kernel_len;
	uint64_t ram_end = low_ram_end(mem);
	if (le16(img + 0x10) != ET_EXEC) {
		snprintf(err, errlen, "vmlinux is not an executable ELF (e_type %u)",
			 le16(img + 0x10));
		return -1;
	}
	uint64_t e_entry = le64(img + 0x18);
	bool entry_found = false;
	unsigned nload = 0;
	k->end = 0;
	struct phdr ph;
	for (unsigned i = 0; elf_phdr(img, len, i, &ph); i++) {
		if (ph.type != PT_LOAD || !ph.memsz)
			continue;
		if (ph.filesz > ph.memsz || ph.offset > len || ph.filesz > len - ph.offset) {
			snprintf(err, errlen,
				 "vmlinux segment %u lies outside the file (truncated image?)", i);
			return -1;
		}
		if (ph.paddr < HIGH_MEMORY || ph.paddr > ram_end || ph.memsz > ram_end - ph.paddr) {
			snprintf(err, errlen,
				 "vmlinux segment %u at %#llx+%#llx is outside guest RAM "
				 "[1 MiB, %llu MiB): raise --mem",
				 i, (unsigned long long)ph.paddr, (unsigned long long)ph.memsz,
				 (unsigned long long)(ram_end / MiB));
			return -1;
		}
		uint8_t *dst = gpa_ptr(mem, ph.paddr, ph.memsz);
		memcpy(dst, img + ph.offset, ph.filesz);
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
		if (ph.paddr + ph.memsz > k->end)
			k->end = ph.paddr + ph.memsz;
		nload++;
		/* Linux links e_entry as the physical startup_64; accept a
		 * virtual one too and translate it through its segment. */
		if (!entry_found && e_entry - ph.paddr < ph.memsz) {
			k->entry = e_entry;
			entry_found = true;
		}
	}
	for (unsigned i = 0; !entry_found && elf_phdr(img, len, i, &ph); i++) {
		if (ph.type == PT_LOAD && e_entry - ph.vaddr < ph.memsz) {
			k->entry = e_entry - ph.vaddr + ph.paddr;
			entry_found = true;
		}
	}
	if (!nload || !entry_found) {
		snprintf(err, errlen, "vmlinux has %s", nload ? "its entry point outside every segment"
							     : "no loadable segment");
		return -1;
	}
	/* No setup header in a vmlinux: write the fields startup_64 and the
	 * early boot code read, as the kernel's own PVH entry does. */
	put16(zp + HDR_BOOT_FLAG, BOOT_FLAG_MAGIC);
	put32(zp + HDR_MAGIC, HDRS_MAGIC);
	put16(zp + HDR_VERSION, 0x020f);
	zp[HDR_LOADFLAGS] = LOADED_HIGH;
	put32(zp + HDR_KERNEL_ALIGNMENT, 2 * MiB);
	put16(zp + HDR_XLOADFLAGS, XLF_KERNEL_64);
	put32(zp + HDR_CMDLINE_SIZE, BOOT_CMDLINE_MAX - 1);
	k->initrd_max = 0x7fffffff; /* what every 64-bit kernel's header says */
	k->cmdline_max = BOOT_CMDLINE_MAX - 1;
	return 0;
}

/* ---- bzImage ---- */

static int bzimage_load(const struct guest_mem *mem, const struct linux_args *a, uint8_t *zp,
			struct kernel_placement *k, char *err, size_t errlen)
{
	const uint8_t *img = a->kernel;
	size_t len = a->kernel_len;
	if (len < HDR_MIN_END) {
		snprintf(err, errlen, "bzImage truncated: %zu bytes cannot hold a setup header", len);
		return -1;
	}
	if (le16(img + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC) {
		snprintf(err, errlen, "bzImage has no boot-sector signature 0xAA55: not a kernel image");
		return -1;
	}
	unsigned version = le16(img + HDR_VERSION);
	if (version < PROTO_MIN) {
		snprintf(err, errlen,
			 "kernel speaks boot protocol %u.%02u; popek needs 2.12 or newer "
			 "(Linux 3.8+) for the 64-bit entry",
			 version >> 8, version & 0xff);
		return -1;
	}
	if (!(le16(img + HDR_XLOADFLAGS) & XLF_KERNEL_64)) {
		snprintf(err, errlen,
			 "kernel has no 64-bit entry point (a 32-bit kernel?): use an x86-64 kernel");
		return -1;
	}
	unsigned setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	uint64_t setup_size = (setup_sects + 1ull) * 512;
	uint64_t sys_size = (uint64_t)le32(img + HDR_SYSSIZE) * 16;
	if (!sys_size || setup_size > len || sys_size > len - setup_size) {
		snprintf(err, errlen,
			 "bzImage truncated: its header describes %llu bytes but the file has %zu",
			 (unsigned long long)(setup_size + sys_size), len);
		return -1;
	}

	uint64_t ram_end = low_ram_end(mem);
	uint64_t init_size = le32(img + HDR_INIT_SIZE);
	if (init_size < sys_size)
		init_size = sys_size;
	uint64_t align = le32(img + HDR_KERNEL_ALIGNMENT);
	if (align < PAGE_SIZE || align > (1ull << 30) || (align & (align - 1)))
		align = 2 * MiB;
	uint64_t pref = le64(img + HDR_PREF_ADDRESS);
	bool relocatable = img[HDR_RELOCATABLE];
	/* A relocatable kernel runs where it is loaded (rounded up to its
	 * alignment); a fixed one moves itself to pref_address. */
	uint64_t load = HIGH_MEMORY, run;
	if (relocatable && pref >= HIGH_MEMORY && !(pref & (align - 1)) && pref < ram_end &&
	    init_size <= ram_end - pref)
		load = pref;
	if (relocatable)
		run = align_up(load, align);
	else
		run = pref > load ? pref : load;
	if (run >= ram_end || init_size > ram_end - run) {
		snprintf(err, errlen,
			 "kernel needs %llu MiB of RAM from %#llx but the VM has %llu MiB: "
			 "raise --mem",
			 (unsigned long long)(init_size / MiB + 1), (unsigned long long)run,
			 (unsigned long long)(ram_end / MiB));
		return -1;
	}
	memcpy(gpa_ptr(mem, load, sys_size), img + setup_size, sys_size);

	uint64_t hdr_end = HDR_MAGIC + img[HDR_JUMP + 1];
	if (hdr_end < HDR_MIN_END)
		hdr_end = HDR_MIN_END;
	if (hdr_end > HDR_MAX_END)
		hdr_end = HDR_MAX_END;
	memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	zp[HDR_LOADFLAGS] |= LOADED_HIGH;

	k->entry = load + ENTRY64_OFFSET;
	k->end = run + init_size;
	k->initrd_max = le32(img + HDR_INITRD_ADDR_MAX);
	if (!k->initrd_max)
		k->initrd_max = INITRD_MAX_LEGACY;
	k->cmdline_max = le32(img + HDR_CMDLINE_SIZE);
	return 0;
}

/* ---- common: command line, initrd, e820, entry state ---- */

static int place_cmdline(const struct guest_mem *mem, const struct linux_args *a, uint8_t *zp,
			 const struct kernel_placement *k, char *err, size_t errlen)
{
	const char *cmdline = a->cmdline ? a->cmdline : "";
	size_t n = strlen(cmdline);
	uint64_t max = k->cmdline_max < BOOT_CMDLINE_MAX - 1 ? k->cmdline_max : BOOT_CMDLINE_MAX - 1;
	if (n > max) {
		snprintf(err, errlen, "kernel command line is %zu bytes; this kernel accepts %llu",
			 n, (unsigned long long)max);
		return -1;
	}
	gpa_write(mem, BOOT_CMDLINE, cmdline, n + 1);
	put32(zp + HDR_CMD_LINE_PTR, BOOT_CMDLINE);
	return 0;
}

/* The initrd goes as high as the kernel allows, page aligned, so that the
 * kernel's own decompression and early allocations below it stay clear. */
static int place_initrd(const struct guest_mem *mem, const struct linux_args *a, uint8_t *zp,
			const struct kernel_placement *k, char *err, size_t errlen)
{
	if (!a->initrd)
		return 0;
	uint64_t top = low_ram_end(mem);
	if (k->initrd_max < top - 1)
		top = k->initrd_max + 1;
	uint64_t floor = align_up(k->end, PAGE_SIZE);
	if (a->initrd_len > top || ((top - a->initrd_len) & ~(PAGE_SIZE - 1)) < floor) {
		snprintf(err, errlen,
			 "initrd of %llu MiB does not fit between the kernel (ends at %llu MiB) and "
			 "%llu MiB: raise --mem or use a smaller initrd",
			 (unsigned long long)((a->initrd_len + MiB - 1) / MiB),
			 (unsigned long long)(floor / MiB),
			 (unsigned long long)(top / MiB));
		return -1;
	}
	uint64_t addr = (top - a->initrd_len) & ~(PAGE_SIZE - 1);
	gpa_write(mem, addr, a->initrd, a->initrd_len);
	put32(zp + HDR_RAMDISK_IMAGE, (uint32_t)addr);
	put32(zp + HDR_RAMDISK_SIZE, (uint32_t)a->initrd_len);
	return 0;
}

static void fill_e820(const struct guest_mem *mem, uint8_t *zp)
{
	struct memmap_entry map[MEMMAP_MAX];
	int n = memmap_build(mem, map);
	for (int i = 0; i < n; i++) {
		uint8_t *e = zp + BP_E820_TABLE + 20 * i;
		put64(e, map[i].addr);
		put64(e + 8, map[i].size);
		put32(e + 16, map[i].type);
	}
	zp[BP_E820_ENTRIES] = (uint8_t)n;
}

/* Identity map of the low 4 GiB with 2 MiB pages (PML4, PDPT, 4 PDs) and a
 * GDT holding __BOOT_CS (0x10) and __BOOT_DS (0x18). */
static void long_mode_tables(const struct guest_mem *mem)
{
	uint8_t *pt = gpa_ptr(mem, BOOT_PAGETABLES, BOOT_PAGETABLES_END - BOOT_PAGETABLES);
	memset(pt, 0, BOOT_PAGETABLES_END - BOOT_PAGETABLES);
	put64(pt, (BOOT_PAGETABLES + 0x1000) | 3);
	for (int i = 0; i < 4; i++) {
		put64(pt + 0x1000 + 8 * i, (BOOT_PAGETABLES + 0x2000 + 0x1000 * i) | 3);
		for (int j = 0; j < 512; j++)
			put64(pt + 0x2000 + 0x1000 * i + 8 * j,
			      ((uint64_t)i << 30 | (uint64_t)j << 21) | 0x83);
	}
	uint8_t *gdt = gpa_ptr(mem, BOOT_GDT, 32);
	memset(gdt, 0, 32);
	put64(gdt + 0x10, 0x00af9b000000ffffull);
	put64(gdt + 0x18, 0x00cf93000000ffffull);
}

static void flat(struct seg *s, uint16_t sel, bool code)
{
	*s = (struct seg){.base = 0,
			  .limit = 0xffffffff,
			  .sel = sel,
			  .type = code ? 0xb : 0x3,
			  .s = 1,
			  .present = 1,
			  .l = code,
			  .db = !code,
			  .g = 1};
}

static void long_mode_state(struct cpu_state *st, uint64_t entry)
{
	memset(st, 0, sizeof(*st));
	flat(&st->seg[SEG_CS], 0x10, true);
	for (int s = 0; s < NR_SEGS; s++)
		if (s != SEG_CS && s != SEG_TR && s != SEG_LDTR)
			flat(&st->seg[s], 0x18, false);
	st->seg[SEG_TR] = (struct seg){.limit = 0x67, .type = 0xb, .present = 1};
	st->seg[SEG_LDTR] = (struct seg){.type = 0x2, .unusable = 1};
	st->gdt = (struct dtable){BOOT_GDT, 0x1f};
	st->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
	st->cr3 = BOOT_PAGETABLES;
	st->cr4 = CR4_PAE;
	st->msr[MSR_IDX_EFER] = EFER_LME | EFER_LMA;
	st->rflags = RFLAGS_FIXED;
	st->rip = entry;
	st->gpr[R_RSI] = BOOT_INFO;
	st->mp_state = MP_RUNNABLE;
}

int linux_load(const struct guest_mem *mem, const struct linux_args *a, struct cpu_state *st,
	       char *err, size_t errlen)
{
	if (low_ram_end(mem) < BOOT_LOW_END || !gpa_ptr(mem, 0, HIGH_MEMORY)) {
		snprintf(err, errlen, "guest RAM is too small for Linux: raise --mem");
		return -1;
	}
	uint8_t zp[BP_SIZE] = {0};
	struct kernel_placement k = {0};
	int r;
	if (is_bzimage(a->kernel, a->kernel_len))
		r = bzimage_load(mem, a, zp, &k, err, errlen);
	else if (elf_is_linux(a->kernel, a->kernel_len))
		r = vmlinux_load(mem, a, zp, &k, err, errlen);
	else {
		snprintf(err, errlen,
			 "not a Linux kernel: expected a bzImage (\"HdrS\" header) or a vmlinux ELF");
		r = -1;
	}
	if (r || place_cmdline(mem, a, zp, &k, err, errlen) ||
	    place_initrd(mem, a, zp, &k, err, errlen))
		return -1;
	zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	put64(zp + BP_ACPI_RSDP, a->rsdp);
	fill_e820(mem, zp);
	gpa_write(mem, BOOT_INFO, zp, sizeof(zp));
	long_mode_tables(mem);
	long_mode_state(st, k.entry);
	return 0;
}
