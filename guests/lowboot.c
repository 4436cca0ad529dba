/* lowboot: a multiboot kernel linked in conventional memory at 0xa000, low
 * like real-mode CPU test kernels (0x8000 would overlap the boot information
 * QEMU keeps at 0x9000), checking what such kernels take from their loader
 * and platform (kvm-unit-tests: lib/x86/setup.c, fwcfg.c):
 *  - it runs at its low link address, its image intact;
 *  - the command line starts with the kernel's path (argv[0]), then the
 *    user's arguments;
 *  - module 0 is the initrd: with module=WORD on the command line it must
 *    exist and start with WORD, without it there must be no module;
 *  - fw_cfg (ports 0x510/0x511): signature "QEMU", FW_CFG_ID bit 0,
 *    NB_CPUS = cpus=N (default 1), RAM_SIZE = mem=N MiB (default 128, as
 *    guests/run-qemu.sh), within 1 MiB of the RAM the loader reports.
 * QEMU: guests/run-qemu.sh lowboot [-initrd FILE] [-append "module=WORD"]. */
#include "guest.h"

const char guest_name[] = "lowboot";

#define LINK_ADDR	 0xa000
#define FW_CFG_SEL	 0x510
#define FW_CFG_DATA	 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID	 0x01
#define FW_CFG_RAM_SIZE	 0x03
#define FW_CFG_NB_CPUS	 0x05

extern char _start32[];

static uint64_t fw_cfg(uint16_t key, int bytes)
{
	uint64_t v = 0;
	__asm__ volatile("outw %0, %1" : : "a"(key), "Nd"((uint16_t)FW_CFG_SEL));
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)inb(FW_CFG_DATA) << (8 * i);
	return v;
}

/* The value of KEY=... among the arguments (after argv[0]), or NULL. */
static const char *arg(const char *args, const char *key)
{
	size_t k = strlen(key);
	for (const char *p = args; *p; p++)
		if ((p == args || p[-1] == ' ') && !memcmp(p, key, k) && p[k] == '=')
			return p + k + 1;
	return NULL;
}

static uint64_t number(const char *s, uint64_t def)
{
	if (!s || *s < '0' || *s > '9')
		return def;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

static void check_argv0(const char *cmdline, const char **args)
{
	static const char name[] = "lowboot.elf";
	const char *end = cmdline;
	while (*end && *end != ' ')
		end++;
	size_t len = (size_t)(end - cmdline), n = sizeof(name) - 1;
	if (len < n || memcmp(end - n, name, n) || (len > n && end[-(long)n - 1] != '/'))
		fail("argv[0] is not the kernel's path: cmdline \"%s\"", cmdline);
	*args = *end ? end + 1 : end;
	kprintf("lowboot: argv[0] ok, arguments \"%s\"\n", *args);
}

static void check_module(const struct multiboot_info *mb, const char *args)
{
	const char *want = arg(args, "module");
	uint32_t count = mb->flags & MB_INFO_MODS ? mb->mods_count : 0;
	if (!want) {
		if (count)
			fail("%u modules without an initrd", count);
		return;
	}
	if (count != 1)
		fail("expected module 0 (the initrd), the loader reports %u", count);
	const struct multiboot_module *m = (const void *)(uint64_t)mb->mods_addr;
	size_t n = 0;
	while (want[n] && want[n] != ' ')
		n++;
	if (m->end < m->start || m->end - m->start < n ||
	    memcmp((const void *)(uint64_t)m->start, want, n))
		fail("module 0 at %#x..%#x does not start with module=...", m->start, m->end);
	kprintf("lowboot: module 0 at %#x, %u bytes, string \"%s\"\n", m->start, m->end - m->start,
		m->string ? (const char *)(uint64_t)m->string : "");
}

static void check_fw_cfg(const struct multiboot_info *mb, const char *args)
{
	uint64_t sig = fw_cfg(FW_CFG_SIGNATURE, 4), id = fw_cfg(FW_CFG_ID, 4);
	uint64_t cpus = fw_cfg(FW_CFG_NB_CPUS, 2), ram = fw_cfg(FW_CFG_RAM_SIZE, 8);
	if (sig != 0x554d4551) /* "QEMU" */
		fail("fw_cfg signature %#lx, expected \"QEMU\"", sig);
	if (!(id & 1))
		fail("fw_cfg ID %#lx lacks the traditional interface bit", id);
	uint64_t want = number(arg(args, "cpus"), 1);
	if (cpus != want)
		fail("fw_cfg NB_CPUS %lu, expected %lu", cpus, want);
	uint64_t mem = number(arg(args, "mem"), 128) << 20;
	if (ram != mem)
		fail("fw_cfg RAM_SIZE %#lx, expected %#lx", ram, mem);
	/* mem_upper: KiB above 1 MiB, less what firmware keeps at the top. */
	uint64_t loader = ((uint64_t)mb->mem_upper << 10) + (1u << 20);
	if (!(mb->flags & MB_INFO_MEM) || loader > ram || ram - loader >= (1u << 20))
		fail("fw_cfg RAM_SIZE %#lx, the loader reports %#lx", ram, loader);
	kprintf("lowboot: fw_cfg QEMU, %lu cpus, %lu MiB\n", cpus, ram >> 20);
}

int guest_main(const struct boot_info *bi)
{
	const struct multiboot_info *mb = bi->multiboot;
	const char *args;
	if (!mb)
		fail("not booted by multiboot (%s)", bi->protocol);
	if ((uint64_t)_start32 >= LINK_ADDR + 0x1000 || (uint64_t)_start32 < LINK_ADDR)
		fail("entry %p is not in the page at %#x", _start32, LINK_ADDR);
	if (*(const uint32_t *)(uint64_t)LINK_ADDR != 0x1badb002)
		fail("multiboot header at %#x overwritten", LINK_ADDR);
	kprintf("lowboot: running at %p\n", _start32);
	check_argv0(bi->cmdline, &args);
	check_module(mb, args);
	check_fw_cfg(mb, args);
	return 0;
}
