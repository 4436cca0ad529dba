/* Runtime entry: find out how we were booted, set up the CPU, run the guest,
 * report PASS/FAIL and leave through isa-debug-exit. */
#include "guest.h"

#define MULTIBOOT_MAGIC 0x2badb002
#define PVH_MAGIC	0x336ec578
#define ELF64_MARKER	0x36344c45 /* set by _start64 (lib/boot.S) */
#define DEBUG_EXIT_PORT 0xf4
#define E820_RAM	1

struct multiboot_mmap {
	uint32_t size; /* of the rest of the entry */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

uint64_t boot_arg(const struct boot_info *bi, const char *key, uint64_t def)
{
	size_t k = strlen(key);

	for (const char *p = bi->cmdline; *p; p++) {
		if ((p == bi->cmdline || p[-1] == ' ') && !memcmp(p, key, k) && p[k] == '=') {
			uint64_t v = 0;

			for (p += k + 1; *p >= '0' && *p <= '9'; p++)
				v = v * 10 + (uint64_t)(*p - '0');
			return v;
		}
	}
	return def;
}

void rt_start(uint32_t magic, uint64_t info);

static void parse_multiboot(const struct multiboot_info *mb, struct boot_info *bi)
{
	bi->protocol = "multiboot";
	bi->multiboot = mb;
	if (mb->flags & MB_INFO_CMDLINE)
		bi->cmdline = (const char *)(uint64_t)mb->cmdline;
	if (mb->flags & MB_INFO_MMAP) {
		uint64_t p = mb->mmap_addr, end = p + mb->mmap_length;

		while (p + sizeof(struct multiboot_mmap) <= end) {
			const struct multiboot_mmap *e = (const void *)p;

			if (e->type == E820_RAM)
				bi->ram_bytes += e->len;
			p += e->size + sizeof(e->size);
		}
	} else if (mb->flags & MB_INFO_MEM) {
		bi->ram_bytes = ((uint64_t)mb->mem_lower + mb->mem_upper) * 1024;
	}
}

static void parse_pvh(const struct hvm_start_info *si, struct boot_info *bi)
{
	if (si->cmdline_paddr)
		bi->cmdline = (const char *)si->cmdline_paddr;
	if (si->version >= 1) {
		const struct hvm_memmap_entry *e = (const void *)si->memmap_paddr;

		for (uint32_t i = 0; i < si->memmap_entries; i++)
			if (e[i].type == E820_RAM)
				bi->ram_bytes += e[i].size;
	}
}

bool boot_flag(const struct boot_info *bi, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = bi->cmdline; *p; p++)
		if ((p == bi->cmdline || p[-1] == ' ') && !memcmp(p, word, n) &&
		    (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

void rt_start(uint32_t magic, uint64_t info)
{
	struct boot_info bi = {.protocol = "unknown", .cmdline = ""};

	serial_init();
	trap_init();
	if (magic == MULTIBOOT_MAGIC) {
		parse_multiboot((const void *)info, &bi);
	} else if (info && *(const uint32_t *)info == PVH_MAGIC) {
		/* popek's ELF64 entry passes the same start_info as PVH */
		bi.protocol = magic == ELF64_MARKER ? "elf64" : "pvh";
		parse_pvh((const void *)info, &bi);
	}
	if (guest_main(&bi) != 0)
		fail("guest_main returned an error");
	kprintf("PASS %s\n", guest_name);
	guest_exit(EXIT_PASS);
}

/* isa-debug-exit ends the VM at once. Without it, popek's exit hypercall; without
 * that either (no popek, no debug-exit device), halt with interrupts off. */
void guest_exit(int status)
{
	outl(DEBUG_EXIT_PORT, (uint32_t)status);
	hc_exit(status);
	for (;;)
		__asm__ volatile("cli; hlt");
}

static _Noreturn void vfail(int status, const char *fmt, va_list ap)
{
	kprintf("FAIL %s: ", guest_name);
	kvprintf(fmt, ap);
	kprintf("\n");
	guest_exit(status);
}

void fail_status(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(status, fmt, ap);
}

void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(EXIT_FAIL, fmt, ap);
}
