/* Multiboot v1 (GNU Multiboot Specification 0.6.96): 32-bit protected-mode
 * entry with EAX = 0x2BADB002 and EBX = the multiboot information. */
#include <stdio.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "boot/memmap.h"

#define MB_MAGIC	 0x1badb002
#define MB_BOOT_MAGIC	 0x2badb002
#define MB_SEARCH	 8192
#define MB_F_AOUT_KLUDGE (1u << 16)
#define MB_F_UNSUPPORTED (1u << 2) /* video mode: we have no framebuffer */

#define MBI_MEM	    (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS    (1u << 3)
#define MBI_MMAP    (1u << 6)
#define MBI_LOADER  (1u << 9)

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};

struct mb_mmap {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

struct mb_module {
	uint32_t start, end, string, reserved;
};

int multiboot_find(const uint8_t *img, size_t len, uint32_t *offset)
{
	size_t lim = len < MB_SEARCH ? len : MB_SEARCH;
	for (size_t off = 0; off + 12 <= lim; off += 4) {
		uint32_t h[3];
		memcpy(h, img + off, sizeof(h));
		if (h[0] == MB_MAGIC && (uint32_t)(h[0] + h[1] + h[2]) == 0) {
			*offset = (uint32_t)off;
			return 0;
		}
	}
	return -1;
}

/* The a.out kludge: the header itself says where the file goes. */
static int load_kludge(struct boot_args *a, const struct mb_header *h, uint32_t hdr_off,
		       uint64_t *end, char *err, size_t errlen)
{
	if (hdr_off + sizeof(*h) > a->kernel_len || h->header_addr < h->load_addr ||
	    h->header_addr - h->load_addr > hdr_off) {
		snprintf(err, errlen, "multiboot address fields are inconsistent");
		return -1;
	}
	uint64_t file_off = hdr_off - (h->header_addr - h->load_addr);
	uint64_t load_len =
	    h->load_end_addr ? (uint64_t)h->load_end_addr - h->load_addr : a->kernel_len - file_off;
	uint64_t mem_end = h->bss_end_addr ? h->bss_end_addr : h->load_addr + load_len;
	if (h->load_end_addr && h->load_end_addr < h->load_addr) {
		snprintf(err, errlen, "multiboot load_end_addr is below load_addr");
		return -1;
	}
	if (load_len > a->kernel_len - file_off || mem_end < h->load_addr + load_len) {
		snprintf(err, errlen, "multiboot image is truncated or its bss is invalid");
		return -1;
	}
	if (boot_check_range(a, h->load_addr, mem_end - h->load_addr, "kernel", err, errlen))
		return -1;
	uint8_t *dst = gpa_ptr(a->mem, h->load_addr, mem_end - h->load_addr);
	memcpy(dst, a->kernel + file_off, load_len);
	memset(dst + load_len, 0, mem_end - h->load_addr - load_len);
	*end = mem_end;
	return 0;
}

int multiboot_load(struct boot_args *a, uint32_t hdr_off, struct cpu_state *st, char *err,
		   size_t errlen)
{
	struct mb_header h = {0};
	memcpy(&h, a->kernel + hdr_off, a->kernel_len - hdr_off < sizeof(h) ? 12 : sizeof(h));
	uint64_t end, entry, initrd;
	if (h.flags & MB_F_UNSUPPORTED & 0xffff) {
		snprintf(err, errlen,
			 "multiboot kernel requires a video mode; popek has no framebuffer");
		return -1;
	}
	if (elf_is_elf(a->kernel, a->kernel_len) && !(h.flags & MB_F_AOUT_KLUDGE)) {
		struct elf_image e;
		if (elf_parse(a->kernel, a->kernel_len, &e, err, errlen) ||
		    boot_load_elf(a, &e, &end, err, errlen))
			return -1;
		entry = e.entry;
	} else if (h.flags & MB_F_AOUT_KLUDGE) {
		if (load_kludge(a, &h, hdr_off, &end, err, errlen))
			return -1;
		entry = h.entry_addr;
	} else {
		snprintf(err, errlen, "multiboot image is not ELF and has no address fields");
		return -1;
	}
	if (entry >= 1ull << 32) {
		snprintf(err, errlen, "multiboot entry point %#llx is above 4 GiB",
			 (unsigned long long)entry);
		return -1;
	}
	/* The command line starts with the kernel's path, as GRUB and QEMU pass
	 * it: kernels take their argv[0] from it. */
	if (boot_place_initrd(a, end, a->mem->range[0].size, &initrd, err, errlen) ||
	    boot_write_cmdline(a, a->cfg->kernel, err, errlen))
		return -1;

	struct memmap_entry map[MEMMAP_MAX];
	int n = memmap_build(a->mem, map);
	struct mb_mmap mm[MEMMAP_MAX];
	for (int i = 0; i < n; i++)
		mm[i] = (struct mb_mmap){20, map[i].addr, map[i].size, map[i].type};
	gpa_write(a->mem, BOOT_MEMMAP, mm, (uint64_t)n * sizeof(mm[0]));

	/* BOOT_MODULES: the module list, then the loader's name, then the
	 * module's string (its path, as QEMU's -initrd gives it). */
	static const char loader[] = "popek";
	uint64_t loader_addr = BOOT_MODULES + sizeof(struct mb_module);
	uint64_t modname_addr = loader_addr + sizeof(loader);
	gpa_write(a->mem, loader_addr, loader, sizeof(loader));

	/* MODS with mods_count 0 when there is no initrd, as QEMU reports it. */
	struct mb_info mbi = {
	    .flags = MBI_MEM | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER,
	    .mem_lower = EBDA_START >> 10,
	    .mem_upper = (uint32_t)((a->mem->range[0].size - HIGH_MEMORY) >> 10),
	    .cmdline = BOOT_CMDLINE,
	    .mods_addr = BOOT_MODULES,
	    .mmap_length = (uint32_t)(n * sizeof(mm[0])),
	    .mmap_addr = BOOT_MEMMAP,
	    .boot_loader_name = (uint32_t)loader_addr,
	};
	if (initrd) {
		const char *name = a->cfg->initrd ? a->cfg->initrd : ""; /* bytes without a file */
		size_t namelen = strlen(name) + 1;
		if (namelen > BOOT_MODULES_END - modname_addr) {
			snprintf(err, errlen, "initrd path is %zu bytes; the limit is %llu",
				 namelen - 1,
				 (unsigned long long)(BOOT_MODULES_END - modname_addr - 1));
			return -1;
		}
		gpa_write(a->mem, modname_addr, name, namelen);
		struct mb_module mod = {(uint32_t)initrd, (uint32_t)(initrd + a->initrd_len),
					(uint32_t)modname_addr, 0};
		gpa_write(a->mem, BOOT_MODULES, &mod, sizeof(mod));
		mbi.mods_count = 1;
	}
	gpa_write(a->mem, BOOT_INFO, &mbi, sizeof(mbi));

	st->rip = entry;
	st->gpr[R_RAX] = MB_BOOT_MAGIC;
	st->gpr[R_RBX] = BOOT_INFO;
	return 0;
}
