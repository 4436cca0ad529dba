/* Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst and
 * zero-page.rst). Every field of the image is untrusted: each offset and size
 * is checked against the file length and guest RAM before use. */
#include "boot/linux.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/bzpayload.h"
#include "boot/kcache.h"
#include "boot/layout.h"
#include "boot/memmap.h"
#include "machine/machine.h"

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
	HDR_PAYLOAD_OFFSET = 0x248,
	HDR_PAYLOAD_LENGTH = 0x24c,
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
	uint64_t entry;	      /* guest-physical 64-bit entry */
	uint64_t end;	      /* first byte above everything the kernel may use */
	uint64_t initrd_max;  /* highest byte address the initrd may occupy */
	uint64_t cmdline_max; /* longest command line, without its NUL */
};

/* ---- vmlinux ELF ---- */

#define LINUX_ELFNOTE_BUILD_SALT 0x100
#define XEN_ELFNOTE_GUEST_OS	 6

/* Linux marks its vmlinux with a "Linux" build-salt note (4.19+); kernels
 * built with Xen support also say "linux" in Xen's GUEST_OS note. A PVH
 * note alone is not enough: other kernels carry it too. */
static int vmlinux_parse(const uint8_t *img, size_t len, struct elf_image *e, char *err,
			 size_t errlen)
{
	struct elf_note n;
	if (elf_parse(img, len, e, err, errlen))
		return -1;
	if (e->is64 && (elf_find_note(img, e, "Linux", LINUX_ELFNOTE_BUILD_SALT, &n) ||
			(elf_find_note(img, e, "Xen", XEN_ELFNOTE_GUEST_OS, &n) && n.descsz >= 5 &&
			 !memcmp(n.desc, "linux", 5))))
		return 0;
	snprintf(err, errlen, "ELF is not a 64-bit Linux vmlinux (it has no \"Linux\" note)");
	return -1;
}

static bool is_bzimage(const uint8_t *img, size_t len)
{
	return len >= HDR_MAGIC + 4 && le32(img + HDR_MAGIC) == HDRS_MAGIC;
}

bool linux_probe(const uint8_t *img, size_t len)
{
	struct elf_image e;
	char err[128];
	return is_bzimage(img, len) ||
	       (elf_is_elf(img, len) && !vmlinux_parse(img, len, &e, err, sizeof(err)));
}

bool linux_probe_file(const char *path)
{
	/* O_NONBLOCK: a FIFO must not hang the probe; only regular files count. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	bool linux = false;
	if (fd < 0)
		return false;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0) {
		void *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (img != MAP_FAILED) {
			linux = linux_probe(img, (size_t)st.st_size);
			munmap(img, (size_t)st.st_size);
		}
	}
	close(fd);
	return linux;
}

/* Guest RAM below the 32-bit PCI hole: where the kernel and initrd go (the
 * boot identity map covers 4 GiB). */
static uint64_t low_ram_end(const struct guest_mem *mem)
{
	return mem->range[0].size;
}

/* The 64-bit entry, a physical address inside a segment. */
static int vmlinux_entry(const struct elf_image *e, struct kernel_placement *k, char *err,
			 size_t errlen)
{
	/* Linux links e_entry as the physical address of startup_64; accept a
	 * virtual one too and translate it through its segment. */
	for (int i = 0; i < e->nsegs; i++)
		if (e->entry - e->seg[i].paddr < e->seg[i].memsz) {
			k->entry = e->entry;
			return 0;
		}
	for (int i = 0; i < e->nsegs; i++)
		if (e->entry - e->seg[i].vaddr < e->seg[i].memsz) {
			k->entry = e->entry - e->seg[i].vaddr + e->seg[i].paddr;
			return 0;
		}
	snprintf(err, errlen, "vmlinux entry point %#llx lies outside every segment",
		 (unsigned long long)e->entry);
	return -1;
}

static int vmlinux_load(struct boot_args *a, const struct elf_image *e, uint8_t *zp,
			struct kernel_placement *k, char *err, size_t errlen)
{
	if (boot_load_elf(a, e, &k->end, err, errlen) || vmlinux_entry(e, k, err, errlen))
		return -1;
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

/* The checks both ways of loading a bzImage need: *setup_size is where its
 * protected-mode kernel starts in the file, *sys_size how long it is. */
static int bzimage_check(const uint8_t *img, size_t len, uint64_t *setup_size, uint64_t *sys_size,
			 char *err, size_t errlen)
{
	if (len < HDR_MIN_END) {
		snprintf(err, errlen, "bzImage truncated: %zu bytes cannot hold a setup header",
			 len);
		return -1;
	}
	if (le16(img + HDR_BOOT_FLAG) != BOOT_FLAG_MAGIC) {
		snprintf(err, errlen,
			 "bzImage has no boot-sector signature 0xAA55: not a kernel image");
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
		snprintf(
		    err, errlen,
		    "kernel has no 64-bit entry point (a 32-bit kernel?): use an x86-64 kernel");
		return -1;
	}
	unsigned setup_sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	*setup_size = (setup_sects + 1ull) * 512;
	*sys_size = (uint64_t)le32(img + HDR_SYSSIZE) * 16;
	if (!*sys_size || *setup_size > len || *sys_size > len - *setup_size) {
		snprintf(err, errlen,
			 "bzImage truncated: its header describes %llu bytes but the file has %zu",
			 (unsigned long long)(*setup_size + *sys_size), len);
		return -1;
	}
	return 0;
}

/* The kernel reads its own setup header back from the zero page, whichever
 * way it was loaded. */
static void bzimage_header(const uint8_t *img, uint8_t *zp, struct kernel_placement *k)
{
	uint64_t hdr_end = HDR_MAGIC + img[HDR_JUMP + 1];
	if (hdr_end < HDR_MIN_END)
		hdr_end = HDR_MIN_END;
	if (hdr_end > HDR_MAX_END)
		hdr_end = HDR_MAX_END;
	memcpy(zp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, hdr_end - HDR_SETUP_SECTS);
	zp[HDR_LOADFLAGS] |= LOADED_HIGH;
	k->initrd_max = le32(img + HDR_INITRD_ADDR_MAX);
	if (!k->initrd_max)
		k->initrd_max = INITRD_MAX_LEGACY;
	k->cmdline_max = le32(img + HDR_CMDLINE_SIZE);
}

/* The protected-mode kernel, compressed, where it decompresses itself. */
static int bzimage_place(struct boot_args *a, uint64_t setup_size, uint64_t sys_size,
			 struct kernel_placement *k, char *err, size_t errlen)
{
	const uint8_t *img = a->kernel;
	uint64_t ram_end = low_ram_end(a->mem);
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
	memcpy(gpa_ptr(a->mem, load, sys_size), img + setup_size, sys_size);
	k->entry = load + ENTRY64_OFFSET;
	k->end = run + init_size;
	return 0;
}

#define CACHE_PIECE (4ull << 20)

/* The vmlinux's segments decoded straight into guest RAM, in file order
 * (as Linux lays them out), the gaps between them skipped; each also into
 * the kernel cache's new entry if kc is not NULL (a failure there only sets
 * *kc to NULL, with the reason in cache_why). */
static int unpack_segments(struct boot_args *a, struct bzpayload *z, const struct elf_image *e,
			   uint64_t pos, struct kcache **kc, char *cache_why, size_t whylen,
			   char *err, size_t errlen)
{
	for (int i = 0; i < e->nsegs; i++) {
		const struct elf_segment *s = &e->seg[i];
		if (s->offset < pos) {
			snprintf(err, errlen,
				 "ELF segment %d at offset %#llx is not after the one before it", i,
				 (unsigned long long)s->offset);
			return -1;
		}
		uint8_t *dst = gpa_ptr(a->mem, s->paddr, s->memsz);
		if (bzpayload_read(z, NULL, s->offset - pos, err, errlen))
			return -1;
		/* In pieces, so the cache's writer writes one while the next is
		 * decoded. */
		for (uint64_t done = 0; done < s->filesz;) {
			uint64_t n =
			    s->filesz - done < CACHE_PIECE ? s->filesz - done : CACHE_PIECE;
			if (bzpayload_read(z, dst + done, n, err, errlen))
				return -1;
			if (*kc && kcache_add(*kc, dst + done, n, cache_why, whylen)) {
				kcache_abort(*kc);
				*kc = NULL;
			}
			done += n;
		}
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
		pos = s->offset + s->filesz;
	}
	return 0;
}

/* The payload decompressed here and its vmlinux loaded as a vmlinux is: at
 * its link-time physical address, so the relocations appended to it (for
 * the decompressor's KASLR) are not needed. Guest RAM is written only once
 * the headers are valid; if the data then proves corrupt the caller falls
 * back to the in-guest path, which overwrites what the kernel uses. With kc,
 * the vmlinux's segments become the kernel cache's entry for this file
 * (what became of it in cache_why). */
static int bzimage_unpack(struct boot_args *a, uint64_t setup_size, uint64_t sys_size,
			  struct kernel_placement *k, struct kcache *kc, char *cache_why,
			  size_t whylen, char *err, size_t errlen)
{
	const uint8_t *img = a->kernel;
	uint64_t off = le32(img + HDR_PAYLOAD_OFFSET), len = le32(img + HDR_PAYLOAD_LENGTH);
	if (!len || off > sys_size || len > sys_size - off) {
		snprintf(err, errlen,
			 "the setup header's payload (%llu bytes at %llu) is not inside the "
			 "%llu-byte kernel",
			 (unsigned long long)len, (unsigned long long)off,
			 (unsigned long long)sys_size);
		return -1;
	}
	uint64_t max = le32(img + HDR_INIT_SIZE), size;
	if (max > low_ram_end(a->mem))
		max = low_ram_end(a->mem);
	struct bzpayload *z = bzpayload_open(img + setup_size + off, len, max, &size, err, errlen);
	if (!z)
		return -1;
	/* The ELF and program headers: Linux puts its first segment 2 MiB in. */
	uint8_t head[4096];
	uint64_t hlen = size < sizeof(head) ? size : sizeof(head);
	struct elf_image e;
	int r = bzpayload_read(z, head, hlen, err, errlen);
	if (!r) {
		char why[200] = "ELF is 32-bit: not an x86-64 vmlinux";
		if (elf_parse_head(head, hlen, size, &e, why, sizeof(why)) || !e.is64 ||
		    vmlinux_entry(&e, k, why, sizeof(why)) ||
		    boot_check_elf(a, &e, &k->end, why, sizeof(why))) {
			snprintf(err, errlen, "the vmlinux in its payload: %s", why);
			r = -1;
		}
	}
	if (!r && kc && kcache_begin(kc, &e, cache_why, whylen))
		kc = NULL;
	r = r || unpack_segments(a, z, &e, hlen, &kc, cache_why, whylen, err, errlen) ||
	    bzpayload_finish(z, err, errlen);
	bzpayload_close(z);
	if (kc && (r || kcache_commit(kc, cache_why, whylen)))
		kcache_abort(kc);
	else if (kc)
		snprintf(cache_why, whylen, "written to %s", kc->path);
	return r ? -1 : 0;
}

/* The kernel cache's entry for this file, if there is one: 0 with the
 * vmlinux in guest RAM, else -1 (and why, if there was an entry). */
static int bzimage_cached(struct boot_args *a, struct kcache *kc, struct kernel_placement *k,
			  char *why, size_t whylen)
{
	struct elf_image e;
	int r = kcache_load(kc, a, &e, why, whylen);
	if (!r &&
	    (boot_check_elf(a, &e, &k->end, why, whylen) || vmlinux_entry(&e, k, why, whylen)))
		r = -1;
	return r ? -1 : 0;
}

/* The kernel on the host: from the kernel cache if it has this file's,
 * else decoded from the payload (and the cache's entry written). 0, or -1
 * with why when the guest must decompress it. */
static int bzimage_host(struct boot_args *a, uint64_t setup_size, uint64_t sys_size,
			struct kernel_placement *k, char *why, size_t whylen)
{
	char cache_why[PATH_MAX + 100] = "off (--kernel-cache off)";
	struct kcache cache, *kc = NULL;
	uint64_t t0 = monotonic_ns();
	if (!a->kernel_file)
		snprintf(cache_why, sizeof(cache_why), "off (the kernel is not a file)");
	else if (!a->cfg->no_kernel_cache && !kcache_init(&cache, a->cfg->kernel, a->kernel_file,
							  cache_why, sizeof(cache_why))) {
		kc = &cache;
		if (!bzimage_cached(a, kc, k, cache_why, sizeof(cache_why))) {
			if (a->cfg->verbose)
				fprintf(
				    stderr,
				    "popek: bzImage kernel copied from the kernel cache (%s) in "
				    "%llu ms, vmlinux entered at %#llx\n",
				    kc->path, (unsigned long long)((monotonic_ns() - t0) / 1000000),
				    (unsigned long long)k->entry);
			return 0;
		}
		if (a->cfg->verbose)
			fprintf(stderr, "popek: kernel cache: not used: %s\n", cache_why);
	}
	if (bzimage_unpack(a, setup_size, sys_size, k, kc, cache_why, sizeof(cache_why), why,
			   whylen))
		return -1;
	if (a->cfg->verbose)
		fprintf(stderr,
			"popek: bzImage payload decompressed on the host in %llu ms, vmlinux "
			"entered at %#llx\npopek: kernel cache: %s\n",
			(unsigned long long)((monotonic_ns() - t0) / 1000000),
			(unsigned long long)k->entry, cache_why);
	return 0;
}

static int bzimage_load(struct boot_args *a, uint8_t *zp, struct kernel_placement *k, char *err,
			size_t errlen)
{
	uint64_t setup_size, sys_size;
	if (bzimage_check(a->kernel, a->kernel_len, &setup_size, &sys_size, err, errlen))
		return -1;
	bzimage_header(a->kernel, zp, k);
	char why[300] = "--decompress guest";
	if (!a->cfg->guest_decompress &&
	    !bzimage_host(a, setup_size, sys_size, k, why, sizeof(why)))
		return 0;
	if (a->cfg->verbose)
		fprintf(stderr, "popek: bzImage decompresses itself in the guest: %s\n", why);
	return bzimage_place(a, setup_size, sys_size, k, err, errlen);
}

/* ---- common: command line, initrd, e820, entry state ---- */

static int place_cmdline(struct boot_args *a, uint8_t *zp, const struct kernel_placement *k,
			 char *err, size_t errlen)
{
	size_t n = a->cfg->cmdline ? strlen(a->cfg->cmdline) : 0;
	if (n > k->cmdline_max) {
		snprintf(err, errlen, "kernel command line is %zu bytes; this kernel accepts %llu",
			 n, (unsigned long long)k->cmdline_max);
		return -1;
	}
	put32(zp + HDR_CMD_LINE_PTR, BOOT_CMDLINE);
	return boot_write_cmdline(a, NULL, err, errlen);
}

/* The initrd goes as high as the kernel allows, page aligned, clear of
 * everything the kernel uses while it decompresses and sets itself up. */
static int place_initrd(struct boot_args *a, uint8_t *zp, const struct kernel_placement *k,
			char *err, size_t errlen)
{
	if (!a->initrd)
		return 0;
	uint64_t top = low_ram_end(a->mem);
	if (k->initrd_max < top - 1)
		top = k->initrd_max + 1;
	uint64_t floor = align_up(k->end, PAGE_SIZE);
	if (a->initrd_len > top || ((top - a->initrd_len) & ~(PAGE_SIZE - 1)) < floor) {
		snprintf(
		    err, errlen,
		    "initrd of %llu MiB does not fit between the kernel (ends at %llu MiB) and "
		    "%llu MiB: raise --mem or use a smaller initrd",
		    (unsigned long long)((a->initrd_len + MiB - 1) / MiB),
		    (unsigned long long)(floor / MiB), (unsigned long long)(top / MiB));
		return -1;
	}
	uint64_t addr = (top - a->initrd_len) & ~(PAGE_SIZE - 1);
	if (boot_check_range(a, addr, a->initrd_len, "initrd", err, errlen))
		return -1;
	gpa_write(a->mem, addr, a->initrd, a->initrd_len);
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

int linux_load(struct boot_args *a, struct cpu_state *st, char *err, size_t errlen)
{
	if (!gpa_ptr(a->mem, 0, HIGH_MEMORY + MiB)) {
		snprintf(err, errlen, "guest RAM is too small for Linux: raise --mem");
		return -1;
	}
	uint8_t zp[BP_SIZE] = {0};
	struct kernel_placement k = {0};
	struct elf_image e;
	int r;
	if (is_bzimage(a->kernel, a->kernel_len))
		r = bzimage_load(a, zp, &k, err, errlen);
	else if (elf_is_elf(a->kernel, a->kernel_len))
		r = vmlinux_parse(a->kernel, a->kernel_len, &e, err, errlen) ||
		    vmlinux_load(a, &e, zp, &k, err, errlen);
	else {
		snprintf(
		    err, errlen,
		    "not a Linux kernel: expected a bzImage (\"HdrS\" header) or a vmlinux ELF");
		r = -1;
	}
	if (r || place_cmdline(a, zp, &k, err, errlen) || place_initrd(a, zp, &k, err, errlen))
		return -1;
	zp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	put64(zp + BP_ACPI_RSDP, a->rsdp);
	fill_e820(a->mem, zp);
	gpa_write(a->mem, BOOT_INFO, zp, sizeof(zp));
	/* 64-bit boot protocol: identity paging, __BOOT_CS/__BOOT_DS from the
	 * boot GDT, interrupts off, RSI = zero page. */
	boot_write_pagetables(a->mem);
	boot_enter_long_mode(st, k.entry);
	st->rflags &= ~(uint64_t)RFLAGS_IF;
	st->gpr[R_RSI] = BOOT_INFO;
	return 0;
}
