/* Loader tests on synthetic images: ELF parsing limits, and the entry state
 * and boot information of the multiboot, PVH and ELF64 protocols. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "boot/boot.h"
#include "boot/layout.h"

#define LOAD 0x200000

/* A minimal ELF: one PT_LOAD of `code` at load, optional PT_NOTE, optional
 * multiboot header at the start of the segment. */
static size_t make_elf_at(uint8_t *buf, uint32_t load, int is64, int with_mb, int with_pvh)
{
	memset(buf, 0, 4096);
	memcpy(buf,
	       "\x7f"
	       "ELF",
	       4);
	buf[4] = is64 ? 2 : 1;
	buf[5] = 1;
	buf[6] = 1;
	uint16_t machine = is64 ? 62 : 3, phnum = with_pvh ? 2 : 1;
	memcpy(buf + 18, &machine, 2);
	size_t ph = is64 ? 64 : 52, phsz = is64 ? 56 : 32, seg = 0x200, note = 0x400;
	uint32_t entry = load + 16;
	if (is64) {
		uint64_t e = entry, po = ph;
		memcpy(buf + 24, &e, 8);
		memcpy(buf + 32, &po, 8);
		memcpy(buf + 54, &phsz, 2);
		memcpy(buf + 56, &phnum, 2);
		uint64_t p[7] = {1 | (7ull << 32), seg, load, load, 0x100, 0x2000, 0x1000};
		memcpy(buf + ph, p, sizeof(p));
		uint64_t n[7] = {4, note, 0, 0, 24, 24, 4};
		if (with_pvh)
			memcpy(buf + ph + phsz, n, sizeof(n));
	} else {
		uint32_t e = entry, po = (uint32_t)ph;
		memcpy(buf + 24, &e, 4);
		memcpy(buf + 28, &po, 4);
		memcpy(buf + 42, &phsz, 2);
		memcpy(buf + 44, &phnum, 2);
		uint32_t p[8] = {1, (uint32_t)seg, load, load, 0x100, 0x2000, 7, 0x1000};
		memcpy(buf + ph, p, sizeof(p));
		uint32_t n[8] = {4, (uint32_t)note, 0, 0, 24, 24, 4, 4};
		if (with_pvh)
			memcpy(buf + ph + phsz, n, sizeof(n));
	}
	if (with_mb) {
		uint32_t h[3] = {0x1badb002, 0, (uint32_t)-0x1badb002};
		memcpy(buf + seg, h, sizeof(h));
	}
	if (with_pvh) {
		uint32_t n[6] = {4, 4, 18, 0x006e6558 /* "Xen\0" */, load + 0x40, 0};
		memcpy(buf + note, n, sizeof(n));
	}
	buf[seg + 16] = 0xf4; /* hlt */
	return 0x1000;
}

static size_t make_elf(uint8_t *buf, int is64, int with_mb, int with_pvh)
{
	return make_elf_at(buf, LOAD, is64, with_mb, with_pvh);
}

struct env {
	struct guest_mem mem;
	struct vm_config cfg;
	struct cpu_state st;
	char path[64];
	const char *initrd; /* --initrd for the next boot_image */
	char err[512];
};

static int boot_image(struct env *e, const uint8_t *img, size_t len, const char *cmdline)
{
	snprintf(e->path, sizeof(e->path), "/tmp/popek-unit-%d.elf", getpid());
	FILE *f = fopen(e->path, "wb");
	fwrite(img, 1, len, f);
	fclose(f);
	vm_config_defaults(&e->cfg);
	e->cfg.kernel = e->path;
	e->cfg.cmdline = cmdline;
	e->cfg.initrd = e->initrd;
	struct boot_args a = {.cfg = &e->cfg, .mem = &e->mem, .ncpus = 1};
	int rc = boot_load(&a, &e->st, e->err, sizeof(e->err));
	unlink(e->path);
	return rc;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[128];
	assert_int_equal(guest_mem_init(&e->mem, 32 << 20, err, sizeof(err)), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	guest_mem_free(&e->mem);
	free(e);
	return 0;
}

static void multiboot_entry(void **state)
{
	struct env *e = *state;
	uint8_t img[4096];
	size_t n = make_elf(img, 0, 1, 0);
	assert_int_equal(boot_image(e, img, n, "hello=1"), 0);
	assert_int_equal(e->st.gpr[R_RAX], 0x2badb002);
	assert_int_equal(e->st.gpr[R_RBX], BOOT_INFO);
	assert_int_equal(e->st.rip, LOAD + 16);
	assert_int_equal(e->st.cr0 & CR0_PG, 0);
	assert_true(e->st.cr0 & CR0_PE);
	assert_int_equal(e->st.seg[SEG_CS].db, 1);
	uint32_t mbi[22];
	gpa_read(&e->mem, BOOT_INFO, mbi, sizeof(mbi));
	assert_true(mbi[0] & (1 << 6));		     /* memory map present */
	assert_int_equal(mbi[2], (32 << 10) - 1024); /* mem_upper in KiB */
	char want[128];
	snprintf(want, sizeof(want), "%s hello=1", e->path); /* argv[0] first, as QEMU */
	assert_string_equal((char *)gpa_ptr(&e->mem, mbi[4], 1), want);
	assert_true(mbi[0] & (1 << 3)); /* modules: none */
	assert_int_equal(mbi[5], 0);
	uint8_t *k = gpa_ptr(&e->mem, LOAD, 0x2000);
	assert_int_equal(k[16], 0xf4);
	assert_int_equal(k[0x1fff], 0); /* bss cleared */

	assert_int_equal(boot_image(e, img, n, NULL), 0);
	snprintf(want, sizeof(want), "%s ", e->path);
	assert_string_equal((char *)gpa_ptr(&e->mem, mbi[4], 1), want);
}

/* --initrd is module 0: kvm-unit-tests reads its environment from it. */
static void multiboot_module(void **state)
{
	struct env *e = *state;
	static const char env[] = "NR_CPUS=1\nMEMSIZE=32\n";
	char ipath[64];
	snprintf(ipath, sizeof(ipath), "/tmp/popek-unit-%d.env", getpid());
	FILE *f = fopen(ipath, "wb");
	fwrite(env, 1, sizeof(env) - 1, f);
	fclose(f);
	uint8_t img[4096];
	size_t n = make_elf(img, 0, 1, 0);
	e->initrd = ipath;
	int rc = boot_image(e, img, n, "x");
	unlink(ipath);
	assert_int_equal(rc, 0);
	uint32_t mbi[22], mod[4];
	gpa_read(&e->mem, BOOT_INFO, mbi, sizeof(mbi));
	assert_true(mbi[0] & (1 << 3));
	assert_int_equal(mbi[5], 1);
	gpa_read(&e->mem, mbi[6], mod, sizeof(mod));
	assert_int_equal(mod[1] - mod[0], sizeof(env) - 1);
	assert_true(mod[0] >= LOAD + 0x2000); /* above the kernel */
	assert_memory_equal(gpa_ptr(&e->mem, mod[0], sizeof(env) - 1), env, sizeof(env) - 1);
	assert_string_equal((char *)gpa_ptr(&e->mem, mod[2], 1), ipath);
}

/* A kernel linked in conventional memory, like real-mode test kernels at
 * 0x8000: popek's boot structures stay out of its way, for every protocol. */
static bool clear_of_kernel(uint64_t addr, uint64_t len)
{
	return addr >= 0x8000 + 0x2000 || addr + len <= 0x8000;
}

static void low_kernels(void **state)
{
	struct env *e = *state;
	uint8_t img[4096];
	size_t n = make_elf_at(img, 0x8000, 0, 1, 0);
	assert_int_equal(boot_image(e, img, n, "low"), 0);
	assert_int_equal(e->st.rip, 0x8000 + 16);
	uint8_t *k = gpa_ptr(&e->mem, 0x8000, 0x2000);
	assert_int_equal(k[16], 0xf4);
	assert_memory_equal(k, img + 0x200, 12);	    /* the multiboot header, intact */
	assert_true(clear_of_kernel(e->st.gpr[R_RBX], 88)); /* multiboot info */
	assert_true(clear_of_kernel(e->st.gdt.base, 32));
	uint32_t mbi[22];
	gpa_read(&e->mem, e->st.gpr[R_RBX], mbi, sizeof(mbi));
	assert_true(clear_of_kernel(mbi[4], 64));	/* command line */
	assert_true(clear_of_kernel(mbi[12], mbi[11])); /* memory map */

	n = make_elf_at(img, 0x8000, 1, 0, 1); /* PVH */
	assert_int_equal(boot_image(e, img, n, NULL), 0);
	assert_int_equal(e->st.rip, 0x8000 + 0x40);
	assert_true(clear_of_kernel(e->st.gpr[R_RBX], 56));
	n = make_elf_at(img, 0x8000, 1, 0, 0); /* ELF64: page tables too */
	assert_int_equal(boot_image(e, img, n, NULL), 0);
	assert_int_equal(e->st.rip, 0x8000 + 16);
	assert_true(clear_of_kernel(e->st.gpr[R_RDI], 56));
	assert_true(clear_of_kernel(e->st.cr3, 0x6000));
	assert_int_equal(k[16], 0xf4);

	n = make_elf_at(img, 0x1000, 0, 1, 0); /* anywhere in conventional memory */
	assert_int_equal(boot_image(e, img, n, NULL), 0);

	n = make_elf_at(img, 0x9f000, 0, 1, 0); /* runs into the EBDA */
	assert_int_not_equal(boot_image(e, img, n, NULL), 0);
	assert_non_null(strstr(e->err, "reserved BIOS area"));
	n = make_elf_at(img, 0xc1000, 0, 1, 0); /* over the boot structures */
	assert_int_not_equal(boot_image(e, img, n, NULL), 0);
	assert_non_null(strstr(e->err, "reserved BIOS area"));
}

static void pvh_entry(void **state)
{
	struct env *e = *state;
	uint8_t img[4096];
	size_t n = make_elf(img, 1, 0, 1);
	assert_int_equal(boot_image(e, img, n, NULL), 0);
	assert_int_equal(e->st.rip, LOAD + 0x40);
	assert_int_equal(e->st.gpr[R_RBX], BOOT_INFO);
	uint32_t si[2];
	gpa_read(&e->mem, BOOT_INFO, si, sizeof(si));
	assert_int_equal(si[0], 0x336ec578);
}

static void elf64_entry(void **state)
{
	struct env *e = *state;
	uint8_t img[4096];
	size_t n = make_elf(img, 1, 0, 0);
	assert_int_equal(boot_image(e, img, n, NULL), 0);
	assert_int_equal(e->st.rip, LOAD + 16);
	assert_true(e->st.cr0 & CR0_PG);
	assert_true(e->st.msr[MSR_IDX_EFER] & EFER_LMA);
	assert_int_equal(e->st.seg[SEG_CS].l, 1);
	assert_int_equal(e->st.gpr[R_RDI], BOOT_INFO);
	uint64_t pde;
	gpa_read(&e->mem, BOOT_PAGETABLES + 0x2000 + 8 * 3, &pde, 8);
	assert_int_equal(pde, (3ull << 21) | 0x83); /* identity 2 MiB page */
}

static void refuses_broken_elves(void **state)
{
	struct env *e = *state;
	uint8_t img[4096];
	make_elf(img, 1, 0, 0);
	uint64_t bad = 0xffffff00; /* segment file offset beyond the file */
	memcpy(img + 64 + 8, &bad, 8);
	assert_int_not_equal(boot_image(e, img, 4096, NULL), 0);
	assert_non_null(strstr(e->err, "past the end"));

	make_elf(img, 1, 0, 0);
	uint16_t m = 40; /* ARM */
	memcpy(img + 18, &m, 2);
	assert_int_not_equal(boot_image(e, img, 4096, NULL), 0);
	assert_non_null(strstr(e->err, "not x86"));

	make_elf(img, 1, 0, 0);
	uint64_t filesz = 0x3000; /* filesz > memsz */
	memcpy(img + 64 + 32, &filesz, 8);
	assert_int_not_equal(boot_image(e, img, 4096, NULL), 0);

	make_elf(img, 0, 0, 0); /* 32-bit ELF, no way to enter it */
	assert_int_not_equal(boot_image(e, img, 4096, NULL), 0);
	assert_non_null(strstr(e->err, "32-bit ELF"));
}

static void pvh_note_truncated(void **state)
{
	struct env *e = *state;
	uint8_t img[4096];
	make_elf(img, 1, 0, 1);
	uint32_t descsz = 2;
	memcpy(img + 0x400 + 4, &descsz, 4);
	assert_int_not_equal(boot_image(e, img, 4096, NULL), 0);
	assert_non_null(strstr(e->err, "truncated"));
}

static void elf_notes_are_bounded(void **state)
{
	uint8_t img[4096];
	make_elf(img, 1, 0, 1);
	uint32_t namesz = 0xfffffff0; /* note claims a huge name */
	memcpy(img + 0x400, &namesz, 4);
	struct elf_image ei;
	char err[128];
	assert_int_equal(elf_parse(img, 4096, &ei, err, sizeof(err)), 0);
	struct elf_note n;
	assert_false(elf_find_note(img, &ei, "Xen", 18, &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(multiboot_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(multiboot_module, setup, teardown),
	    cmocka_unit_test_setup_teardown(low_kernels, setup, teardown),
	    cmocka_unit_test_setup_teardown(pvh_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(elf64_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(refuses_broken_elves, setup, teardown),
	    cmocka_unit_test_setup_teardown(pvh_note_truncated, setup, teardown),
	    cmocka_unit_test(elf_notes_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
