/* The Linux boot protocol loader against synthetic bzImages and vmlinux ELFs. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "boot/bzpayload.h"
#include "boot/kcache.h"
#include "boot/layout.h"
#include "boot/linux.h"
#include "boot/memmap.h"
#include "util/file.h"

#define MiB (1ull << 20)

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}
static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

enum { SETUP_SECTS = 4, SETUP_SIZE = (SETUP_SECTS + 1) * 512, KERNEL_SIZE = 64 * 1024 };

/* A bzImage as Linux's build tool lays it out, with a recognisable kernel. */
static uint8_t *make_bzimage(size_t *len)
{
	*len = SETUP_SIZE + KERNEL_SIZE;
	uint8_t *img = calloc(1, *len);
	img[0x1f1] = SETUP_SECTS;
	put32(img + 0x1f4, KERNEL_SIZE / 16);
	put16(img + 0x1fe, 0xaa55);
	img[0x200] = 0xeb;
	img[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(img + 0x202, "HdrS", 4);
	put16(img + 0x206, 0x020f);
	img[0x211] = 1;
	put32(img + 0x22c, 0x7fffffff);
	put32(img + 0x230, 2 * MiB);
	img[0x234] = 1;
	put16(img + 0x236, 0x7f);
	put32(img + 0x238, 2047);
	put64(img + 0x258, 16 * MiB);
	put32(img + 0x260, 8 * MiB);
	for (size_t i = SETUP_SIZE; i < *len; i++)
		img[i] = (uint8_t)(i * 7);
	return img;
}

struct fixture {
	struct guest_mem mem;
	struct vm_config cfg;
	struct cpu_state st;
	bool guest_decompress; /* --decompress guest */
	char err[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[128];
	if (!f || guest_mem_init(&f->mem, 64 * MiB, err, sizeof(err)))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	guest_mem_free(&f->mem);
	free(f);
	return 0;
}

static int load(struct fixture *f, const uint8_t *img, size_t len, const uint8_t *initrd,
		size_t initrd_len, const char *cmdline)
{
	vm_config_defaults(&f->cfg);
	f->cfg.cmdline = cmdline;
	f->cfg.guest_decompress = f->guest_decompress;
	struct boot_args a = {.cfg = &f->cfg,
			      .mem = &f->mem,
			      .ncpus = 1,
			      .rsdp = 0xe0000,
			      .kernel = img,
			      .kernel_len = len,
			      .initrd = initrd,
			      .initrd_len = initrd_len};
	/* What boot_load does before handing over to a protocol. */
	cpu_state_init_protected(&f->st);
	boot_write_gdt(&f->mem);
	f->st.gdt = (struct dtable){BOOT_GDT, 31};
	f->err[0] = 0;
	return linux_load(&a, &f->st, f->err, sizeof(f->err));
}

static void test_good_bzimage(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len);
	static uint8_t initrd[10000];
	memset(initrd, 0x5a, sizeof(initrd));
	assert_true(linux_probe(img, len));
	assert_int_equal(load(f, img, len, initrd, sizeof(initrd), "console=ttyS0"), 0);

	/* Relocatable and 16+8 MiB fits in 64 MiB: loaded at pref_address. */
	uint64_t load_addr = 16 * MiB;
	assert_memory_equal(gpa_ptr(&f->mem, load_addr, KERNEL_SIZE), img + SETUP_SIZE,
			    KERNEL_SIZE);
	assert_int_equal(f->st.rip, load_addr + 0x200);
	assert_int_equal(f->st.gpr[R_RSI], BOOT_INFO);
	assert_true(f->st.msr[MSR_IDX_EFER] & EFER_LMA);
	assert_true(f->st.cr0 & CR0_PG);
	assert_int_equal(f->st.cr3, BOOT_PAGETABLES);
	assert_int_equal(f->st.seg[SEG_CS].sel, 0x10);
	assert_true(f->st.seg[SEG_CS].l);
	assert_int_equal(f->st.seg[SEG_DS].sel, 0x18);
	assert_false(f->st.rflags & RFLAGS_IF);

	const uint8_t *zp = gpa_ptr(&f->mem, BOOT_INFO, 4096);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(get16(zp + 0x206), 0x020f);
	assert_int_equal(zp[0x210], 0xff);
	assert_int_equal(get64(zp + 0x070), 0xe0000);
	assert_int_equal(get32(zp + 0x228), BOOT_CMDLINE);
	assert_string_equal((const char *)gpa_ptr(&f->mem, BOOT_CMDLINE, 14), "console=ttyS0");

	/* The initrd is at the top of RAM, page aligned, above the kernel. */
	uint32_t rd = get32(zp + 0x218);
	assert_int_equal(get32(zp + 0x21c), sizeof(initrd));
	assert_int_equal(rd & 0xfff, 0);
	assert_true(rd >= load_addr + 8 * MiB);
	assert_true(rd + sizeof(initrd) <= 64 * MiB);
	assert_true(64 * MiB - (rd + sizeof(initrd)) < 4096);
	assert_memory_equal(gpa_ptr(&f->mem, rd, sizeof(initrd)), initrd, sizeof(initrd));

	/* e820 matches the shared memory map. */
	struct memmap_entry map[MEMMAP_MAX];
	int n = memmap_build(&f->mem, map);
	assert_int_equal(zp[0x1e8], n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(get64(zp + 0x2d0 + 20 * i), map[i].addr);
		assert_int_equal(get64(zp + 0x2d0 + 20 * i + 8), map[i].size);
		assert_int_equal(get32(zp + 0x2d0 + 20 * i + 16), map[i].type);
	}

	/* Identity map: PML4[0] -> PDPT, PD entry for 2 MiB..4 MiB. */
	const uint8_t *pt = gpa_ptr(&f->mem, BOOT_PAGETABLES, 0x6000);
	assert_int_equal(get64(pt) & ~0xfffull, BOOT_PAGETABLES + 0x1000);
	assert_int_equal(get64(pt + 0x2000 + 8), 2 * MiB | 0x83);
	assert_int_equal(get64(pt + 0x5000 + 8 * 511), (4ull << 30) - 2 * MiB + 0x83);
	const uint8_t *gdt = gpa_ptr(&f->mem, BOOT_GDT, 32);
	assert_int_equal(get64(gdt + 0x10), 0x00af9b000000ffffull);
	free(img);
}

static void test_small_ram_loads_low(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len);
	put32(img + 0x260, 50 * MiB); /* 16 + 50 > 64: pref_address does not fit */
	assert_int_equal(load(f, img, len, NULL, 0, NULL), 0);
	assert_int_equal(f->st.rip, 1 * MiB + 0x200);
	put32(img + 0x260, 63 * MiB); /* runs at 2 MiB (aligned): 65 MiB > 64 */
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "--mem"));
	free(img);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len);
	assert_int_equal(load(f, img, len - 1, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "truncated"));
	assert_int_equal(load(f, img, 0x300, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "truncated"));
	put32(img + 0x1f4, 0xffffffff);
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "truncated"));
	free(img);
}

static void test_bad_magic(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len);
	img[0x1fe] = 0;
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "0xAA55"));
	img[0x1fe] = 0x55;
	img[0x203] = 'X';
	assert_false(linux_probe(img, len));
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "not a Linux kernel"));
	free(img);
}

static void test_old_protocol(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len);
	put16(img + 0x206, 0x020a);
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "2.10"));
	put16(img + 0x206, 0x020c);
	put16(img + 0x236, 0);
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "64-bit"));
	free(img);
}

static void test_initrd_too_big(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len);
	size_t big = 41 * MiB; /* kernel occupies up to 24 MiB; 64 - 24 = 40 MiB left */
	uint8_t *initrd = calloc(1, big);
	assert_int_equal(load(f, img, len, initrd, big, NULL), -1);
	assert_non_null(strstr(f->err, "initrd"));
	assert_int_equal(load(f, img, len, initrd, 39 * MiB, NULL), 0);
	/* initrd_addr_max caps the top even with RAM above it. */
	put32(img + 0x22c, 32 * MiB - 1);
	assert_int_equal(load(f, img, len, initrd, 9 * MiB, NULL), -1);
	assert_int_equal(load(f, img, len, initrd, 7 * MiB, NULL), 0);
	const uint8_t *zp = gpa_ptr(&f->mem, BOOT_INFO, 4096);
	assert_true(get32(zp + 0x218) + 7 * MiB <= 32 * MiB);
	free(initrd);
	free(img);
}

static void test_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_bzimage(&len);
	put32(img + 0x238, 10);
	assert_int_equal(load(f, img, len, NULL, 0, "0123456789"), 0);
	assert_int_equal(load(f, img, len, NULL, 0, "0123456789a"), -1);
	assert_non_null(strstr(f->err, "command line"));
	free(img);
}

/* A vmlinux-like ELF: one text segment linked at 0xffffffff81000000, loaded
 * at 16 MiB, with a "Linux" note and a physical e_entry. */
static uint8_t *make_vmlinux(size_t *len, const char *note_owner)
{
	*len = 0x3000;
	uint8_t *img = calloc(1, *len);
	memcpy(img, "\177ELF\2\1\1", 7);
	put16(img + 0x10, 2);
	put16(img + 0x12, 62);
	put64(img + 0x18, 16 * MiB);
	put64(img + 0x20, 64);
	put16(img + 0x36, 56);
	put16(img + 0x38, 2);
	uint8_t *ph = img + 64;
	put32(ph, 1);
	put64(ph + 8, 0x1000);
	put64(ph + 16, 0xffffffff81000000ull);
	put64(ph + 24, 16 * MiB);
	put64(ph + 32, 0x1000);
	put64(ph + 40, 0x5000);
	ph += 56;
	put32(ph, 4);
	put64(ph + 8, 0x2000);
	put64(ph + 32, 24);
	uint8_t *n = img + 0x2000;
	put32(n, (uint32_t)strlen(note_owner) + 1);
	put32(n + 4, 4);
	put32(n + 8, 0x100);
	strcpy((char *)n + 12, note_owner);
	memset(img + 0x1000, 0xcc, 0x1000);
	/* Linux vmlinux also carries a PVH entry note (Xen, type 18). */
	n += 24;
	put32(n, 4);
	put32(n + 4, 4);
	put32(n + 8, 18);
	memcpy(n + 12, "Xen", 4);
	put32(n + 16, 16 * MiB + 0x100);
	put64(img + 64 + 56 + 32, 44);
	return img;
}

static void test_vmlinux(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_vmlinux(&len, "Linux");
	assert_true(linux_probe(img, len));
	memset(gpa_ptr(&f->mem, 16 * MiB, 0x5000), 0xff, 0x5000);
	assert_int_equal(load(f, img, len, NULL, 0, "quiet"), 0);
	assert_int_equal(f->st.rip, 16 * MiB);
	const uint8_t *k = gpa_ptr(&f->mem, 16 * MiB, 0x5000);
	assert_int_equal(k[0], 0xcc);
	assert_int_equal(k[0xfff], 0xcc);
	assert_int_equal(k[0x1000], 0); /* bss cleared */
	const uint8_t *zp = gpa_ptr(&f->mem, BOOT_INFO, 4096);
	assert_int_equal(get16(zp + 0x1fe), 0xaa55);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_true(get16(zp + 0x206) >= 0x020c);
	assert_int_equal(zp[0x210], 0xff);
	assert_int_equal(get32(zp + 0x228), BOOT_CMDLINE);

	/* A virtual e_entry is translated through its segment. */
	put64(img + 0x18, 0xffffffff81000010ull);
	assert_int_equal(load(f, img, len, NULL, 0, NULL), 0);
	assert_int_equal(f->st.rip, 16 * MiB + 0x10);
	put64(img + 0x18, 0x1234);
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "entry"));
	free(img);
}

/* boot_load picks the Linux 64-bit entry over the PVH note. */
static void test_dispatch_prefers_linux(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_vmlinux(&len, "Linux");
	char path[64];
	snprintf(path, sizeof(path), "/tmp/popek-unit-linux-%d", getpid());
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(img, 1, len, fp), len);
	fclose(fp);
	vm_config_defaults(&f->cfg);
	f->cfg.kernel = path;
	struct boot_args a = {.cfg = &f->cfg, .mem = &f->mem, .ncpus = 1};
	int rc = boot_load(&a, &f->st, f->err, sizeof(f->err));
	unlink(path);
	assert_int_equal(rc, 0);
	assert_int_equal(f->st.rip, 16 * MiB);
	assert_int_equal(f->st.gpr[R_RSI], BOOT_INFO);
	assert_true(f->st.msr[MSR_IDX_EFER] & EFER_LMA);
	free(img);
}

static void test_vmlinux_bad(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = make_vmlinux(&len, "GNU");
	assert_false(linux_probe(img, len)); /* an ELF, but not Linux */
	free(img);
	img = make_vmlinux(&len, "Linux");
	put64(img + 64 + 24, 64 * MiB - 0x4000); /* 20 KiB do not fit in 16 */
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "raise --mem"));
	put64(img + 64 + 24, 16 * MiB);
	put64(img + 64 + 32, 0x3000); /* file data runs past the end */
	put64(img + 64 + 40, 0x3000);
	assert_int_equal(load(f, img, len, NULL, 0, NULL), -1);
	assert_non_null(strstr(f->err, "past the end of the file"));
	assert_false(linux_probe(img, 40)); /* shorter than an ELF header */
	free(img);
}

/* ---- bzImages whose payload popek decompresses ---- */

enum codec { GZIP, XZ, ZSTD };

/* in compressed as Linux's build does it: gzip -9, xz with the x86 BCJ
 * filter and a CRC32 check, zstd with its checksum; xz and zstd get the
 * size appended. */
static uint8_t *pack(enum codec c, const uint8_t *in, size_t len, size_t *outlen)
{
	size_t cap = len + len / 2 + 1024;
	uint8_t *out = malloc(cap);
	size_t n = 0;
	if (c == GZIP) {
		z_stream z = {0};
		assert_int_equal(
		    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = (Bytef *)(uintptr_t)in;
		z.avail_in = (uInt)len;
		z.next_out = out;
		z.avail_out = (uInt)cap;
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		n = z.total_out;
		deflateEnd(&z);
		*outlen = n;
		return out; /* gzip's trailer ends with the size */
	}
	if (c == XZ) {
		lzma_options_lzma opt;
		assert_false(lzma_lzma_preset(&opt, 1));
		lzma_filter filters[] = {
		    {LZMA_FILTER_X86, NULL}, {LZMA_FILTER_LZMA2, &opt}, {LZMA_VLI_UNKNOWN, NULL}};
		assert_int_equal(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, NULL, in, len,
							   out, &n, cap),
				 LZMA_OK);
	} else {
		ZSTD_CCtx *z = ZSTD_createCCtx();
		assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(z, ZSTD_c_checksumFlag, 1)));
		n = ZSTD_compress2(z, out, cap, in, len);
		assert_false(ZSTD_isError(n));
		ZSTD_freeCCtx(z);
	}
	put32(out + n, (uint32_t)len);
	*outlen = n + 4;
	return out;
}

enum { PAYLOAD_OFFSET = 0x100 };

/* make_bzimage's layout with payload (compressed) at PAYLOAD_OFFSET of the
 * protected-mode kernel, as the kernel's header_64 says where it is. */
static uint8_t *make_bzimage_with(const uint8_t *payload, size_t plen, size_t *len)
{
	size_t sys = (PAYLOAD_OFFSET + plen + 15) & ~(size_t)15;
	uint8_t *img = make_bzimage(len);
	img = realloc(img, SETUP_SIZE + sys);
	memset(img + SETUP_SIZE, 0x90, sys);
	memcpy(img + SETUP_SIZE + PAYLOAD_OFFSET, payload, plen);
	put32(img + 0x1f4, (uint32_t)(sys / 16));
	put32(img + 0x248, PAYLOAD_OFFSET);
	put32(img + 0x24c, (uint32_t)plen);
	*len = SETUP_SIZE + sys;
	return img;
}

static uint8_t *packed_vmlinux_bzimage(enum codec c, size_t *len)
{
	size_t elf_len, plen;
	uint8_t *elf = make_vmlinux(&elf_len, "Linux");
	uint8_t *payload = pack(c, elf, elf_len, &plen);
	uint8_t *img = make_bzimage_with(payload, plen, len);
	free(payload);
	free(elf);
	return img;
}

/* Booted from the compressed kernel the in-guest decompressor would run. */
static void assert_in_guest_path(struct fixture *f, const uint8_t *img)
{
	assert_int_equal(f->st.rip, 16 * MiB + 0x200);
	assert_memory_equal(gpa_ptr(&f->mem, 16 * MiB, 64), img + SETUP_SIZE, 64);
}

static void test_bzpayload_codecs(void **state)
{
	struct fixture *f = *state;
	static uint8_t initrd[5000];
	for (enum codec c = GZIP; c <= ZSTD; c++) {
		size_t len;
		uint8_t *img = packed_vmlinux_bzimage(c, &len);
		memset(gpa_ptr(&f->mem, 16 * MiB, 0x5000), 0xff, 0x5000);
		assert_int_equal(load(f, img, len, initrd, sizeof(initrd), "quiet"), 0);
		/* The vmlinux's own entry, segments and cleared bss. */
		assert_int_equal(f->st.rip, 16 * MiB);
		const uint8_t *k = gpa_ptr(&f->mem, 16 * MiB, 0x5000);
		assert_int_equal(k[0], 0xcc);
		assert_int_equal(k[0xfff], 0xcc);
		assert_int_equal(k[0x1000], 0);
		assert_int_equal(k[0x4fff], 0);
		/* The zero page has the bzImage's own header, not a vmlinux's. */
		const uint8_t *zp = gpa_ptr(&f->mem, BOOT_INFO, 4096);
		assert_int_equal(get16(zp + 0x206), 0x020f);
		assert_int_equal(get32(zp + 0x238), 2047);
		assert_int_equal(get32(zp + 0x248), PAYLOAD_OFFSET);
		assert_int_equal(get32(zp + 0x24c), get32(img + 0x24c));
		assert_int_equal(get32(zp + 0x260), 8 * MiB);
		assert_true(zp[0x211] & 1);
		assert_int_equal(get32(zp + 0x228), BOOT_CMDLINE);
		/* The initrd is clear of the kernel. */
		assert_true(get32(zp + 0x218) >= 16 * MiB + 0x5000);
		free(img);
	}
}

static void test_bzpayload_guest_decompress(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = packed_vmlinux_bzimage(XZ, &len);
	f->guest_decompress = true;
	assert_int_equal(load(f, img, len, NULL, 0, NULL), 0);
	assert_in_guest_path(f, img);
	free(img);
}

static void test_bzpayload_unknown_codec(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name, *magic;
	} others[] = {
	    {"lz4", "\x02\x21\x4c\x18"},
	    {"lzma", "\x5d\x00\x00"},
	    {"bzip2", "BZh9"},
	    {"lzo", "\x89LZO"},
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		uint8_t payload[256] = {0};
		memcpy(payload, others[i].magic, strlen(others[i].magic) + 1);
		put32(payload + sizeof(payload) - 4, 0x3000);
		char err[256];
		uint64_t size;
		assert_null(
		    bzpayload_open(payload, sizeof(payload), 1 << 20, &size, err, sizeof(err)));
		assert_non_null(strstr(err, others[i].name));
		size_t len;
		uint8_t *img = make_bzimage_with(payload, sizeof(payload), &len);
		assert_int_equal(load(f, img, len, NULL, 0, NULL), 0);
		assert_in_guest_path(f, img);
		free(img);
	}
}

/* Decompress p whole: 0 if it decodes to exactly want (want_len bytes),
 * or -1. Read in pieces and skips, as the loader reads a vmlinux. */
static int decompress(const uint8_t *p, size_t len, uint64_t max, const uint8_t *want,
		      size_t want_len, char *err, size_t errlen)
{
	uint64_t size;
	struct bzpayload *z = bzpayload_open(p, len, max, &size, err, errlen);
	if (!z)
		return -1;
	uint8_t *out = calloc(1, size);
	int r = bzpayload_read(z, out, 100, err, errlen) ||
		bzpayload_read(z, NULL, 1000, err, errlen) ||
		bzpayload_read(z, out + 1100, size - 1100, err, errlen) ||
		bzpayload_finish(z, err, errlen);
	bzpayload_close(z);
	if (!r) {
		assert_int_equal(size, want_len);
		assert_memory_equal(out, want, 100);
		assert_memory_equal(out + 1100, want + 1100, size - 1100);
	}
	free(out);
	return r ? -1 : 0;
}

static void test_bzpayload_corrupt(void **state)
{
	struct fixture *f = *state;
	static const char *names[] = {"gzip", "xz", "zstd"};
	size_t elf_len;
	uint8_t *elf = make_vmlinux(&elf_len, "Linux");
	for (enum codec c = GZIP; c <= ZSTD; c++) {
		size_t plen;
		uint8_t *p = pack(c, elf, elf_len, &plen);
		char err[256];
		assert_int_equal(decompress(p, plen, 1 << 20, elf, elf_len, err, sizeof(err)), 0);

		/* More than the bound, or nothing, declared. */
		assert_int_equal(decompress(p, plen, elf_len - 1, elf, elf_len, err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "declares"));
		uint8_t *q = malloc(plen);
		memcpy(q, p, plen);
		put32(q + plen - 4, 0);
		assert_int_equal(decompress(q, plen, 1 << 20, elf, elf_len, err, sizeof(err)), -1);
		/* A declared size that is wrong either way (gzip's own check
		 * catches that, the others' stream ends elsewhere). */
		put32(q + plen - 4, (uint32_t)elf_len - 1);
		assert_int_equal(decompress(q, plen, 1 << 20, elf, elf_len, err, sizeof(err)), -1);
		assert_non_null(strstr(err, names[c]));
		put32(q + plen - 4, (uint32_t)elf_len + 1);
		assert_int_equal(decompress(q, plen, 1 << 20, elf, elf_len, err, sizeof(err)), -1);
		assert_non_null(strstr(err, names[c]));

		/* Flipped bits inside the stream: its check or its decoder
		 * refuses it. */
		memcpy(q, p, plen);
		for (size_t i = 16; i + 8 < plen; i += 7)
			q[i] ^= 0x5a;
		assert_int_equal(decompress(q, plen, 1 << 20, elf, elf_len, err, sizeof(err)), -1);
		assert_non_null(strstr(err, names[c]));
		/* Such a payload is left to the kernel's own decompressor,
		 * which reports the damage in the guest. */
		size_t len;
		uint8_t *img = make_bzimage_with(q, plen, &len);
		assert_int_equal(load(f, img, len, NULL, 0, NULL), 0);
		assert_in_guest_path(f, img);
		free(img);

		/* Truncated: the stream is cut short, the size kept at the end. */
		for (size_t keep = 6; keep < plen - 4; keep = keep * 2 + 1) {
			memcpy(q, p, keep);
			memcpy(q + keep, p + plen - 4, 4);
			assert_int_equal(
			    decompress(q, keep + 4, 1 << 20, elf, elf_len, err, sizeof(err)), -1);
			assert_non_null(strstr(err, names[c]));
		}
		assert_int_equal(decompress(p, 3, 1 << 20, elf, elf_len, err, sizeof(err)), -1);
		free(q);
		free(p);
	}
	free(elf);
}

/* elf packed with codec into a bzImage takes the in-guest path; so does the
 * same image with payload_length past the kernel when too_long. Frees elf. */
static void expect_guest_path(struct fixture *f, enum codec codec, uint8_t *elf, size_t elf_len,
			      bool too_long)
{
	size_t plen, len;
	uint8_t *p = pack(codec, elf, elf_len, &plen);
	uint8_t *img = make_bzimage_with(p, plen, &len);
	assert_int_equal(load(f, img, len, NULL, 0, NULL), 0);
	assert_in_guest_path(f, img);
	if (too_long) {
		put32(img + 0x24c, 0xffffff00); /* payload_length past the kernel */
		assert_int_equal(load(f, img, len, NULL, 0, NULL), 0);
		assert_in_guest_path(f, img);
	}
	free(img);
	free(p);
	free(elf);
}

/* A payload that decompresses but is no loadable vmlinux, or a payload the
 * header places outside the kernel: the in-guest path. */
static void test_bzpayload_not_vmlinux(void **state)
{
	struct fixture *f = *state;
	size_t elf_len;
	uint8_t *elf = make_vmlinux(&elf_len, "Linux");
	elf[4] = 1; /* ELF32 */
	expect_guest_path(f, GZIP, elf, elf_len, false);

	elf = make_vmlinux(&elf_len, "Linux");
	put64(elf + 64 + 24, 64 * MiB - 0x4000); /* 20 KiB do not fit in 16 */
	put64(elf + 0x18, 64 * MiB - 0x4000);
	expect_guest_path(f, ZSTD, elf, elf_len, true);

	/* A segment among the headers: the stream has passed it already. */
	elf = make_vmlinux(&elf_len, "Linux");
	put64(elf + 64 + 8, 0x800);
	expect_guest_path(f, XZ, elf, elf_len, false);
}

/* ---- the kernel cache (boot/kcache.h) ---- */

struct cached {
	char kernel[64], dir[64], entry[64 + 256];
};

/* A packed bzImage in a file, an empty cache directory for it. */
static void cached_setup(struct cached *c, uint8_t *img, size_t len)
{
	snprintf(c->kernel, sizeof(c->kernel), "/tmp/popek-unit-kc-%d.bz", getpid());
	snprintf(c->dir, sizeof(c->dir), "/tmp/popek-unit-kc-%d", getpid());
	FILE *fp = fopen(c->kernel, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(img, 1, len, fp), len);
	fclose(fp);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", c->dir);
	assert_int_equal(system(cmd), 0);
	setenv("POPEK_CACHE_DIR", c->dir, 1);
	c->entry[0] = 0;
}

static void cached_teardown(struct cached *c)
{
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", c->dir, c->kernel);
	assert_int_equal(system(cmd), 0);
	unsetenv("POPEK_CACHE_DIR");
}

/* boot_load of the file; guest RAM at the kernel poisoned first. */
static int cached_boot(struct fixture *f, struct cached *c, bool cache)
{
	memset(gpa_ptr(&f->mem, 16 * MiB, 0x5000), 0xff, 0x5000);
	vm_config_defaults(&f->cfg);
	f->cfg.kernel = c->kernel;
	f->cfg.no_kernel_cache = !cache;
	struct boot_args a = {.cfg = &f->cfg, .mem = &f->mem, .ncpus = 1};
	return boot_load(&a, &f->st, f->err, sizeof(f->err));
}

/* The entries in the cache directory: their number, the last one's path. */
static int cached_entries(struct cached *c)
{
	DIR *d = opendir(c->dir);
	int n = 0;
	for (struct dirent *de; d && (de = readdir(d));)
		if (de->d_name[0] != '.') {
			snprintf(c->entry, sizeof(c->entry), "%s/%s", c->dir, de->d_name);
			n++;
		}
	if (d)
		closedir(d);
	return n;
}

static uint8_t *read_entry(const struct cached *c, size_t *len)
{
	uint8_t *buf;
	char err[256];
	assert_int_equal(file_read_all(c->entry, 1 << 20, &buf, len, err, sizeof(err)), 0);
	return buf;
}

static void write_entry(const struct cached *c, const uint8_t *buf, size_t len)
{
	FILE *fp = fopen(c->entry, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

/* The entry's checksums made right again, as if popek had written it so. */
static void reseal(uint8_t *buf, size_t len)
{
	struct kcache_head h;
	memcpy(&h, buf, sizeof(h));
	h.data_hash = XXH64(buf + KCACHE_DATA, len - KCACHE_DATA, 0);
	h.head_hash = XXH64(&h, offsetof(struct kcache_head, head_hash), 0);
	memcpy(buf, &h, sizeof(h));
}

/* The first boot of a bzImage file writes its entry (the vmlinux's one
 * segment after the header); the next copies the kernel from it: an entry
 * whose data was changed (and sealed) boots the changed kernel. */
static void test_kcache_hit(void **state)
{
	struct fixture *f = *state;
	size_t len, elen;
	uint8_t *img = packed_vmlinux_bzimage(XZ, &len);
	struct cached c;
	cached_setup(&c, img, len);
	assert_int_equal(cached_boot(f, &c, true), 0);
	assert_int_equal(cached_entries(&c), 1);
	uint8_t *e = read_entry(&c, &elen);
	assert_int_equal(elen, KCACHE_DATA + 0x1000);
	assert_memory_equal(e, "popekKC1", 8);
	assert_int_equal(e[KCACHE_DATA], 0xcc);

	e[KCACHE_DATA] = 0x90;
	reseal(e, elen);
	write_entry(&c, e, elen);
	assert_int_equal(cached_boot(f, &c, true), 0);
	const uint8_t *k = gpa_ptr(&f->mem, 16 * MiB, 0x5000);
	assert_int_equal(k[0], 0x90); /* from the entry */
	assert_int_equal(k[1], 0xcc);
	assert_int_equal(k[0x1000], 0); /* bss cleared */
	assert_int_equal(f->st.rip, 16 * MiB);
	/* --kernel-cache off decodes the payload again. */
	assert_int_equal(cached_boot(f, &c, false), 0);
	assert_int_equal(k[0], 0xcc);
	free(e);
	cached_teardown(&c);
	free(img);
}

/* damage(entry) then a boot: the entry is refused, the payload decoded and
 * the entry written anew. */
static void expect_rebuilt(struct fixture *f, struct cached *c, void (*damage)(struct cached *))
{
	size_t elen;
	damage(c);
	assert_int_equal(cached_boot(f, c, true), 0);
	const uint8_t *k = gpa_ptr(&f->mem, 16 * MiB, 0x5000);
	assert_int_equal(k[0], 0xcc);
	assert_int_equal(k[0x1000], 0);
	assert_int_equal(cached_entries(c), 1); /* no temporary file left */
	uint8_t *e = read_entry(c, &elen);
	assert_int_equal(elen, KCACHE_DATA + 0x1000);
	assert_int_equal(e[KCACHE_DATA], 0xcc);
	/* and it parses for the kernel file as it is now */
	struct stat st;
	struct kcache_key key;
	struct elf_image el;
	char err[256];
	assert_int_equal(stat(c->kernel, &st), 0);
	kcache_key_of(&st, &key);
	assert_int_equal(kcache_parse(e, elen, &key, &el, err, sizeof(err)), 0);
	free(e);
}

static void flip_data(struct cached *c)
{
	size_t len;
	uint8_t *e = read_entry(c, &len);
	e[KCACHE_DATA + 100] ^= 1; /* not resealed */
	write_entry(c, e, len);
	free(e);
}

static void truncate_entry(struct cached *c)
{
	assert_int_equal(truncate(c->entry, KCACHE_DATA + 0x800), 0);
}

static void touch_kernel(struct cached *c)
{
	struct timespec t[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	assert_int_equal(utimensat(AT_FDCWD, c->kernel, t, 0), 0);
}

static void test_kcache_refused(void **state)
{
	struct fixture *f = *state;
	size_t len;
	uint8_t *img = packed_vmlinux_bzimage(ZSTD, &len);
	struct cached c;
	cached_setup(&c, img, len);
	assert_int_equal(cached_boot(f, &c, true), 0);
	assert_int_equal(cached_entries(&c), 1);
	expect_rebuilt(f, &c, flip_data);
	expect_rebuilt(f, &c, truncate_entry);
	expect_rebuilt(f, &c, touch_kernel);
	cached_teardown(&c);
	free(img);
}

/* kcache_parse on damaged headers (sealed, so the checksum is not what
 * stops them): each is refused with a reason. */
static void test_kcache_parse(void **state)
{
	(void)state;
	struct kcache_key key = {.dev = 1, .ino = 2, .size = 3};
	size_t len = KCACHE_DATA + 0x3000;
	uint8_t *good = calloc(1, len), *e = malloc(len);
	struct kcache_head h = {.magic = "popekKC1", .key = key, .entry = 16 * MiB, .nsegs = 2};
	h.seg[0].paddr = 16 * MiB;
	h.seg[0].filesz = 0x1000;
	h.seg[0].memsz = 0x2000;
	h.seg[1].paddr = 32 * MiB;
	h.seg[1].filesz = h.seg[1].memsz = 0x2000;
	h.data_len = 0x3000;
	memcpy(good, &h, sizeof(h));
	reseal(good, len);
	struct elf_image el;
	char err[256];
	assert_int_equal(kcache_parse(good, len, &key, &el, err, sizeof(err)), 0);
	assert_int_equal(el.nsegs, 2);
	assert_int_equal(el.seg[1].offset, KCACHE_DATA + 0x1000);
	assert_int_equal(el.entry, 16 * MiB);

	struct kcache_key other = key;
	other.ino = 7;
	assert_int_equal(kcache_parse(good, len, &other, &el, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "another version"));
	assert_int_equal(kcache_parse(good, 100, &key, &el, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));

	static const struct {
		size_t off; /* into the header */
		uint64_t value;
		const char *why;
	} bad[] = {
	    {offsetof(struct kcache_head, magic), 0x4141414141414141ull, "format"},
	    {offsetof(struct kcache_head, nsegs), 0, "segments"},
	    {offsetof(struct kcache_head, nsegs), 17, "segments"},
	    {offsetof(struct kcache_head, seg[0].filesz), 0x2001, "segment 0"},
	    {offsetof(struct kcache_head, seg[1].filesz), 0x1000, "over"},
	    {offsetof(struct kcache_head, seg[1].memsz), 0x1000, "segment 1"},
	    {offsetof(struct kcache_head, seg[1].filesz), ~0ull, "segment 1"},
	    {offsetof(struct kcache_head, data_len), 0x2fff, "header says"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(e, good, len);
		memcpy(e + bad[i].off, &bad[i].value, 8);
		reseal(e, len);
		err[0] = 0;
		assert_int_equal(kcache_parse(e, len, &key, &el, err, sizeof(err)), -1);
		assert_non_null(strstr(err, bad[i].why));
	}
	/* Unsealed: the header's checksum. */
	memcpy(e, good, len);
	e[offsetof(struct kcache_head, entry)] ^= 1;
	assert_int_equal(kcache_parse(e, len, &key, &el, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "checksum"));
	free(e);
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_bzimage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_small_ram_loads_low, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_old_protocol, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_initrd_too_big, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmdline_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vmlinux, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dispatch_prefers_linux, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vmlinux_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzpayload_codecs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzpayload_guest_decompress, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzpayload_unknown_codec, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzpayload_corrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bzpayload_not_vmlinux, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kcache_hit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kcache_refused, setup, teardown),
	    cmocka_unit_test(test_kcache_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
