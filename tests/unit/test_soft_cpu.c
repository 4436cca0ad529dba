/* Soft engine CPU core: small hand-assembled programs run through engine_ops
 * on a 4 MiB guest (tests/unit/soft_guest.h), checking results, flags,
 * exceptions with their error codes, exits, paging/TLB semantics, privilege
 * transitions and the real -> protected -> long mode path. Each program is
 * listed with its source as a comment. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "soft_guest.h"

/* Assembled with GNU as; sources in the comments above each test. */
static const uint8_t exc_de_code[] = {0x31, 0xc9, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf7, 0xf1, 0xf4};
static const uint8_t exc_pf_code[] = {0x48, 0xc7, 0xc0, 0x00, 0x00, 0x00, 0x40, 0xc7,
				      0x40, 0x10, 0x01, 0x00, 0x00, 0x00, 0xf4};
static const uint8_t invlpg_code[] = {
    0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x48, 0xc7, 0x04, 0x25, 0x08,
    0x30, 0x00, 0x00, 0x87, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00,
    0x20, 0x00, 0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x20, 0x00, 0x48, 0x8b, 0x0c,
    0x25, 0x00, 0x00, 0x20, 0x00, 0x0f, 0x20, 0xda, 0x0f, 0x22, 0xda, 0xf4};
static const uint8_t io_code[] = {0x66, 0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee, 0xec, 0x89, 0xc3, 0x66,
				  0xba, 0x10, 0x05, 0xb8, 0x02, 0x00, 0x00, 0x00, 0xbf, 0x0b, 0x00,
				  0x00, 0x00, 0xbe, 0x16, 0x00, 0x00, 0x00, 0xef, 0xf4};
static const uint8_t loop_code[] = {0xb9, 0x64, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x48, 0x01, 0xc8,
				    0xe2, 0xfb, 0x48, 0xc7, 0xc3, 0xff, 0xff, 0xff, 0xff, 0x48,
				    0x83, 0xc3, 0x01, 0x48, 0x83, 0xd0, 0x00, 0xf4};
static const uint8_t mmio_code[] = {0x48, 0xbe, 0x00, 0x00, 0xe0, 0x3f, 0x00, 0x00,
				    0x00, 0x00, 0x8b, 0x46, 0x08, 0xc7, 0x46, 0x0c,
				    0x78, 0x56, 0x34, 0x12, 0x83, 0xc0, 0x01, 0xf4};
static const uint8_t sse_code[] = {0x48, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x66,
				   0x48, 0x0f, 0x6e, 0xc0, 0xf2, 0x0f, 0x58, 0xc0, 0xf2, 0x0f, 0x59,
				   0xc0, 0xf2, 0x48, 0x0f, 0x2c, 0xd8, 0x66, 0x0f, 0x74, 0xc9, 0x66,
				   0x0f, 0xef, 0xd2, 0x66, 0x0f, 0xf8, 0xd1, 0x66, 0x0f, 0xd7, 0xc9,
				   0xd9, 0xe8, 0xd9, 0xe8, 0xde, 0xc1, 0xdb, 0x1c, 0x25, 0x00, 0x00,
				   0x02, 0x00, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x02, 0x00, 0xf4};
static const uint8_t sys_code[] = {
    0xb9, 0x81, 0x00, 0x00, 0xc0, 0x31, 0xc0, 0xba, 0x08, 0x00, 0x20, 0x00, 0x0f, 0x30,
    0xb9, 0x82, 0x00, 0x00, 0xc0, 0x48, 0x8d, 0x05, 0x2d, 0x00, 0x00, 0x00, 0x31, 0xd2,
    0x0f, 0x30, 0xb9, 0x84, 0x00, 0x00, 0xc0, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x31, 0xd2,
    0x0f, 0x30, 0x48, 0x8d, 0x0d, 0x0a, 0x00, 0x00, 0x00, 0x49, 0xc7, 0xc3, 0x02, 0x00,
    0x00, 0x00, 0x48, 0x0f, 0x07, 0x49, 0xc7, 0xc4, 0x07, 0x00, 0x00, 0x00, 0x0f, 0x05,
    0xf4, 0x49, 0x89, 0xcd, 0x41, 0x8c, 0xce, 0x48, 0x8b, 0x1c, 0x24, 0xfa, 0xf4};
static const uint8_t triple_code[] = {0x0f, 0x01, 0x1d, 0x02, 0x00, 0x00, 0x00, 0x0f, 0x0b, 0x00,
				      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t user_priv_code[] = {0xb9, 0x81, 0x00, 0x00, 0xc0, 0x31, 0xc0, 0xba, 0x08, 0x00,
					 0x20, 0x00, 0x0f, 0x30, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f,
					 0x32, 0x48, 0x8d, 0x0d, 0x0a, 0x00, 0x00, 0x00, 0x49, 0xc7,
					 0xc3, 0x02, 0x00, 0x00, 0x00, 0x48, 0x0f, 0x07, 0xf4};
static const uint8_t modes_code[] = {
    0xfa, 0x8c, 0xc8, 0x8e, 0xd8, 0x66, 0x0f, 0x01, 0x16, 0x60, 0x00, 0x0f, 0x20, 0xc0, 0x66,
    0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x1d, 0x00, 0x01, 0x00, 0x18, 0x00, 0x66,
    0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0xb8, 0x20, 0x00, 0x00, 0x00, 0x0f, 0x22, 0xe0,
    0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32,
    0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80,
    0x0f, 0x22, 0xc0, 0xea, 0x55, 0x00, 0x01, 0x00, 0x08, 0x00, 0x48, 0xb8, 0x88, 0x77, 0x66,
    0x55, 0x44, 0x33, 0x22, 0x11, 0xf4, 0x47, 0x00, 0x00, 0x40, 0x00, 0x00};

static const uint8_t real_int_code[] = {0x31, 0xc0, 0x8e, 0xd8, 0xc7, 0x06, 0x84, 0x00, 0x16, 0x00,
					0xc7, 0x06, 0x86, 0x00, 0x00, 0x10, 0xbb, 0x34, 0x12, 0xcd,
					0x21, 0xf4, 0xb9, 0x78, 0x56, 0x9c, 0x5a, 0xcf};
static const uint8_t lock_code[] = {0xb9, 0xa0, 0x86, 0x01, 0x00, 0xf0, 0x48, 0xff, 0x04, 0x25,
				    0x00, 0x00, 0x02, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xf0,
				    0x48, 0x0f, 0xc1, 0x04, 0x25, 0x08, 0x00, 0x02, 0x00, 0xff,
				    0xc9, 0x75, 0xe4, 0x66, 0xba, 0x10, 0x05, 0xef};
static const uint8_t prot32_code[] = {
    0xb8, 0x2f, 0x00, 0x01, 0x00, 0x66, 0xa3, 0x30, 0x50, 0x00, 0x00, 0x66, 0xc7, 0x05, 0x32, 0x50,
    0x00, 0x00, 0x18, 0x00, 0x66, 0xc7, 0x05, 0x34, 0x50, 0x00, 0x00, 0x00, 0x8e, 0xc1, 0xe8, 0x10,
    0x66, 0xa3, 0x36, 0x50, 0x00, 0x00, 0x0f, 0x01, 0x1d, 0x38, 0x00, 0x01, 0x00, 0x0f, 0x0b, 0x5b,
    0x8c, 0xc9, 0xf4, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xff, 0x07, 0x00, 0x50, 0x00, 0x00};

static const uint8_t c16_code[] = {
    0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, 0x48, 0xc7, 0xc2, 0x02, 0x00, 0x00, 0x00, 0x48, 0xc7,
    0xc3, 0x03, 0x00, 0x00, 0x00, 0x48, 0xc7, 0xc1, 0x04, 0x00, 0x00, 0x00, 0xf0, 0x48, 0x0f, 0xc7,
    0x0c, 0x25, 0x00, 0x00, 0x02, 0x00, 0x41, 0x0f, 0x94, 0xc0, 0x48, 0xc7, 0xc0, 0x09, 0x00, 0x00,
    0x00, 0xf0, 0x48, 0x0f, 0xc7, 0x0c, 0x25, 0x00, 0x00, 0x02, 0x00, 0x41, 0x0f, 0x94, 0xc1, 0xf4};

/* XSAVE family (guests/xsave.c checks the rest, also under QEMU). Each
 * program starts by setting CR4.OSXSAVE: mov rax,cr4; or eax,0x40000; mov cr4,rax */
static const uint8_t xinuse_code[] = {
    0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x00, 0x04, 0x00, 0x0f, 0x22, 0xe0, 0x31, 0xc9, 0xb8, 0x03,
    0x00, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0x01, 0xd1, 0xb9, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x01,
    0xd0, 0x49, 0x89, 0xc0, 0x66, 0x0f, 0x74, 0xc0, 0x0f, 0x01, 0xd0, 0x49, 0x89, 0xc1, 0xd9,
    0xe8, 0x0f, 0x01, 0xd0, 0x49, 0x89, 0xc2, 0xbf, 0x00, 0x10, 0x02, 0x00, 0xb8, 0xff, 0xff,
    0xff, 0xff, 0xba, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xae, 0x27, 0xbf, 0x00, 0x20, 0x02, 0x00,
    0x0f, 0xae, 0x2f, 0xb9, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x01, 0xd0, 0x49, 0x89, 0xc3, 0xf4};
static const uint8_t xrstor_code[] = {
    0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x00, 0x04, 0x00, 0x0f, 0x22, 0xe0, 0x31, 0xc9, 0xb8, 0x03, 0x00,
    0x00, 0x00, 0x31, 0xd2, 0x0f, 0x01, 0xd1, 0xbf, 0x00, 0x20, 0x02, 0x00, 0x0f, 0xae, 0x2f, 0xf4};
static const uint8_t xsave_ts_code[] = {0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x00, 0x04, 0x00, 0x0f,
					0x22, 0xe0, 0x0f, 0x20, 0xc0, 0x83, 0xc8, 0x08, 0x0f,
					0x22, 0xc0, 0xbf, 0x00, 0x10, 0x02, 0x00, 0xb8, 0x03,
					0x00, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0xae, 0x27, 0xf4};
static const uint8_t xsave_compat_code[] = {
    0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x00, 0x04, 0x00, 0x0f, 0x22, 0xe0, 0x31, 0xc9, 0xb8,
    0x03, 0x00, 0x00, 0x00, 0x31, 0xd2, 0x0f, 0x01, 0xd1, 0xbf, 0x00, 0x10, 0x02, 0x00,
    0x0f, 0xae, 0x27, 0xbf, 0x00, 0x20, 0x02, 0x00, 0x0f, 0xae, 0x2f, 0xf4};
static const uint8_t xsave_fs_code[] = {0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x00, 0x04, 0x00, 0x0f,
					0x22, 0xe0, 0x31, 0xc9, 0xb8, 0x03, 0x00, 0x00, 0x00,
					0x31, 0xd2, 0x0f, 0x01, 0xd1, 0xbf, 0x08, 0x00, 0x00,
					0x00, 0x64, 0x0f, 0xae, 0x27, 0xf4};
static const uint8_t xsetbv_user_code[] = {
    0x0f, 0x20, 0xe0, 0x0d, 0x00, 0x00, 0x04, 0x00, 0x0f, 0x22, 0xe0, 0x6a, 0x2b,
    0x68, 0x00, 0x00, 0x07, 0x00, 0x6a, 0x02, 0x6a, 0x33, 0x48, 0x8d, 0x05, 0x03,
    0x00, 0x00, 0x00, 0x50, 0x48, 0xcf, 0x31, 0xc9, 0x0f, 0x01, 0xd0, 0x48, 0x89,
    0xc3, 0xb8, 0x03, 0x00, 0x00, 0x00, 0x0f, 0x01, 0xd1, 0xf4};

static struct sg g;

/* Every test runs twice: on the interpreter, then with the translator on. */
static bool use_jit;

static int setup(void **state)
{
	(void)state;
	return sg_init_jit(&g, 1, use_jit);
}

static int teardown(void **state)
{
	(void)state;
	sg_free(&g);
	return 0;
}

static void load(const uint8_t *code, size_t len)
{
	sg_code(&g, code, len);
}

static uint32_t vector(void)
{
	uint32_t v;
	memcpy(&v, g.ram + SG_VEC, 4);
	return v;
}

/* mov ecx,100; xor eax,eax; 1: add rax,rcx; loop 1b; mov rbx,-1; add rbx,1;
 * adc rax,0; hlt */
static void test_loop_and_carry(void **state)
{
	(void)state;
	load(loop_code, sizeof(loop_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 5050 + 1);
	assert_int_equal(g.st.gpr[R_RBX], 0);
	assert_int_equal(g.st.gpr[R_RCX], 0);
	assert_int_equal(g.st.rflags & 0x41, 0); /* adc consumed the carry: CF=0, ZF=0 */
}

/* xor ecx,ecx; mov eax,1; div ecx -> #DE delivered through the IDT */
static void test_divide_error(void **state)
{
	(void)state;
	load(exc_de_code, sizeof(exc_de_code));
	memset(g.ram + SG_VEC, 0xff, 4);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 0);
	/* the frame holds the faulting RIP (div is at +7), no error code */
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), SG_CODE + 7);
}

/* mov rax,0x40000000; mov dword [rax+0x10],1 -> #PF, not present, write */
static void test_page_fault(void **state)
{
	(void)state;
	load(exc_pf_code, sizeof(exc_pf_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	assert_int_equal(g.st.cr2, 0x40000010);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), 2); /* W, not present, supervisor */
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP] + 8), SG_CODE + 7); /* faulting RIP */
}

/* mov rax,0x40000000; jmp rax -> #PF on the fetch: RIP and CR2 are the
 * target, the error code says instruction fetch, not present */
static void test_fetch_fault(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0xc7, 0xc0, 0x00, 0x00, 0x00, 0x40, 0xff, 0xe0};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	assert_int_equal(g.st.cr2, 0x40000000);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), 0x10);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP] + 8), 0x40000000);
}

/* A present entry with a reserved bit set: #PF with P|RSVD in the error code
 * (and W or I/D as the access), CR2 the address, the access not done. Each
 * case changes one entry of the identity map (or adds a second tree under
 * PML4[1]) and then reads, writes or jumps to addr: mov rax,addr; then
 * mov ecx,[rax] / mov [rax],ecx / jmp rax; hlt. */
#define SG_PDPT2 0xa000
#define SG_PT	 0xb000
static void test_reserved_bits(void **state)
{
	static const struct {
		const char *what;
		uint64_t gpa, entry; /* the entry changed, and its new value */
		uint64_t addr;
		int acc;      /* 0 read, 1 write, 2 fetch */
		uint32_t err; /* 0: no fault, the access completes */
	} cases[] = {
	    {"2M page, bit 51", SG_PD + 8, 0x200000 | 0x87 | 1ull << 51, 0x200010, 0, 0x9},
	    {"2M page, bit 40 (MAXPHYADDR)", SG_PD + 8, 0x200000 | 0x87 | 1ull << 40, 0x200010, 1,
	     0xb},
	    {"2M page, bit 13", SG_PD + 8, 0x200000 | 0x87 | 1ull << 13, 0x200010, 0, 0x9},
	    {"2M page, bit 12 is PAT", SG_PD + 8, 0x200000 | 0x87 | 1ull << 12, 0x200010, 0, 0},
	    {"2M page, bits 62:52 ignored", SG_PD + 8, 0x200000 | 0x87 | 0x7ffull << 52, 0x200010,
	     1, 0},
	    {"PTE, bit 45", SG_PT, 0x200000 | 0x7 | 1ull << 45, 0x200010, 0, 0x9},
	    {"PTE, bit 45, fetch", SG_PT, 0x200000 | 0x7 | 1ull << 45, 0x200010, 2, 0x19},
	    {"PML4E with PS", SG_PML4 + 8, SG_PDPT2 | 0x87, 0x8000000010ull, 0, 0x9},
	    {"1G page, bit 13", SG_PDPT2, 0x87 | 1ull << 13, 0x8000000010ull, 0, 0x9},
	    {"1G page", SG_PDPT2, 0x87, 0x8000000010ull, 0, 0},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		teardown(NULL);
		setup(NULL);
		uint8_t code[16] = {0x48, 0xb8};
		memcpy(code + 2, &cases[i].addr, 8);
		static const uint8_t acc[3][2] = {{0x8b, 0x08}, {0x89, 0x08}, {0xff, 0xe0}};
		memcpy(code + 10, acc[cases[i].acc], 2);
		code[12] = 0xf4;
		load(code, sizeof(code));
		sg_w64(&g, SG_PML4 + 8, SG_PDPT2 | 7);
		sg_w64(&g, SG_PD + 8, SG_PT | 7); /* the 4 KiB pages of 2-4 MiB */
		for (uint64_t p = 0; p < 512; p++)
			sg_w64(&g, SG_PT + p * 8, (0x200000 + p * 4096) | 7);
		sg_w64(&g, SG_PDPT2, SG_PD | 7);
		sg_w64(&g, cases[i].gpa, cases[i].entry);
		memset(g.ram + SG_VEC, 0xff, 4);
		g.ram[0x200010] = 0xf4; /* a fetch that succeeds halts there */
		print_message("reserved bits: %s\n", cases[i].what);
		assert_int_equal(sg_run(&g), EXIT_HLT);
		if (!cases[i].err) {
			assert_int_equal(vector(), 0xffffffff);
			continue;
		}
		assert_int_equal(vector(), 14);
		assert_int_equal(g.st.cr2, cases[i].addr);
		assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), cases[i].err);
	}
}

/* mov rax,SG_PML4|1<<45; mov cr3,rax: a CR3 bit above MAXPHYADDR -> #GP(0),
 * CR3 unchanged */
static void test_cr3_reserved(void **state)
{
	static const uint8_t code[] = {0x48, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x00,
				       0x20, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0xf4};
	(void)state;
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 13);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), 0);
	assert_int_equal(g.st.cr3, SG_PML4);
}

/* The RFLAGS image in the frame: RF (bit 16) set for a fault (ud2; a #GP from
 * mov rax,[non-canonical], which pushes an error code first), clear for a
 * trap (int3) and for INT n. */
static void test_rf_in_frames(void **state)
{
	static const struct {
		uint8_t code[16];
		uint32_t vec;
		int frame; /* where RFLAGS is: 2, or 3 after an error code */
		bool rf;
	} cases[] = {
	    {{0x0f, 0x0b}, 6, 2, true},
	    {{0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x48, 0x8b, 0x00}, 13, 3, true},
	    {{0xcc}, 3, 2, false},
	    {{0xcd, 0x40}, 0x40, 2, false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		teardown(NULL);
		setup(NULL);
		load(cases[i].code, sizeof(cases[i].code));
		assert_int_equal(sg_run(&g), EXIT_HLT);
		assert_int_equal(vector(), cases[i].vec);
		uint64_t fl = sg_r64(&g, g.st.gpr[R_RSP] + 8 * (uint64_t)cases[i].frame);
		assert_int_equal(!!(fl & (1u << 16)), cases[i].rf);
		assert_int_equal(g.st.rflags & (1u << 16), 0); /* the handler runs with RF clear */
	}
}

/* Non-canonical bases in 64-bit mode: LGDT/LIDT -> #GP(0); LTR/LLDT of a
 * descriptor whose upper base half makes it non-canonical -> #GP(selector);
 * WRMSR of a linear-address MSR -> #GP(0). The register keeps its value. */
static void test_noncanonical_bases(void **state)
{
	/* mov ecx,msr; xor eax,eax; mov edx,0x80000000; wrmsr; hlt */
#define WRMSR_HIGH(msr)                                                                            \
	{                                                                                          \
		0xb9, (msr)&0xff, ((msr) >> 8) & 0xff, ((msr) >> 16) & 0xff, (msr) >> 24, 0x31,    \
		    0xc0, 0xba, 0, 0, 0, 0x80, 0x0f, 0x30, 0xf4                                    \
	}
	static const struct {
		const char *what;
		uint8_t code[16];
		uint64_t gdt_lo, gdt_hi; /* GDT entry 0x38 (if lo != 0) */
		uint32_t err;
	} cases[] = {
	    {"lgdt", {0x0f, 0x01, 0x14, 0x25, 0x00, 0x00, 0x02, 0x00, 0xf4}, 0, 0, 0},
	    {"lidt", {0x0f, 0x01, 0x1c, 0x25, 0x00, 0x00, 0x02, 0x00, 0xf4}, 0, 0, 0},
	    {"ltr",
	     {0x66, 0xb8, 0x38, 0x00, 0x0f, 0x00, 0xd8, 0xf4},
	     0x67 | 0x89ull << 40,
	     0x8000,
	     0x38},
	    {"lldt",
	     {0x66, 0xb8, 0x38, 0x00, 0x0f, 0x00, 0xd0, 0xf4},
	     0xff | 0x82ull << 40,
	     0x8000,
	     0x38},
	    {"wrmsr FS_BASE", WRMSR_HIGH(0xc0000100u), 0, 0, 0},
	    {"wrmsr GS_BASE", WRMSR_HIGH(0xc0000101u), 0, 0, 0},
	    {"wrmsr KERNEL_GS_BASE", WRMSR_HIGH(0xc0000102u), 0, 0, 0},
	    {"wrmsr LSTAR", WRMSR_HIGH(0xc0000082u), 0, 0, 0},
	    {"wrmsr CSTAR", WRMSR_HIGH(0xc0000083u), 0, 0, 0},
	    {"wrmsr SYSENTER_ESP", WRMSR_HIGH(0x175u), 0, 0, 0},
	    {"wrmsr SYSENTER_EIP", WRMSR_HIGH(0x176u), 0, 0, 0},
	};
#undef WRMSR_HIGH
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		teardown(NULL);
		setup(NULL);
		print_message("non-canonical: %s\n", cases[i].what);
		load(cases[i].code, sizeof(cases[i].code));
		sg_w64(&g, SG_DATA, 0xffff); /* limit */
		sg_w64(&g, SG_DATA + 2, 0x8000000000000000ull);
		if (cases[i].gdt_lo) {
			sg_w64(&g, SG_GDT + 0x38, cases[i].gdt_lo);
			sg_w64(&g, SG_GDT + 0x40, cases[i].gdt_hi);
		}
		memset(g.ram + SG_VEC, 0xff, 4);
		assert_int_equal(sg_run(&g), EXIT_HLT);
		assert_int_equal(vector(), 13);
		assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), cases[i].err);
		assert_int_equal(g.st.gdt.base, SG_GDT);
		assert_int_equal(g.st.idt.base, SG_IDT);
		assert_int_equal(g.st.seg[SEG_TR].base, SG_TSS);
		assert_int_equal(g.st.seg[SEG_FS].base, 0);
	}
}

/* Compatibility mode (CS.L=0 under long mode) runs the opcodes that are only
 * invalid in 64-bit mode: segment push/pop, PUSHA/POPA, BCD adjusts, AAM/AAD,
 * BOUND, LES, INTO, ARPL, 0x82, far CALL ptr16:32 (to a RETF). */
static void test_compat_mode_opcodes(void **state)
{
	static const uint8_t code[] = {
	    0x1e, 0x07,					    /* push ds; pop es */
	    0x0e, 0x5d,					    /* push cs; pop ebp */
	    0x16, 0x17, 0x06, 0x1f,			    /* push ss; pop ss; push es; pop ds */
	    0x60, 0x61,					    /* pusha; popa */
	    0xb0, 0x19, 0x04, 0x28, 0x27,		    /* mov al,0x19; add al,0x28; daa */
	    0x88, 0xc2,					    /* mov dl,al */
	    0xb0, 0x57, 0xd4, 0x0a, 0x89, 0xc7,		    /* mov al,87; aam; mov edi,eax */
	    0xd5, 0x0a, 0x88, 0xc6,			    /* aad; mov dh,al */
	    0xbb, 0x00, 0x00, 0x02, 0x00,		    /* mov ebx,SG_DATA */
	    0xb9, 0x05, 0x00, 0x00, 0x00, 0x62, 0x0b,	    /* mov ecx,5; bound ecx,[ebx] */
	    0xc4, 0x73, 0x08,				    /* les esi,[ebx+8] */
	    0xce,					    /* into (OF clear) */
	    0x66, 0xb8, 0x10, 0x00, 0x66, 0xb9, 0x03, 0x00, /* mov ax,0x10; mov cx,3 */
	    0x63, 0xc8,					    /* arpl ax,cx */
	    0x82, 0xc0, 0x01,				    /* add al,1 */
	    0x9a, 0x00, 0x01, 0x01, 0x00, 0x18, 0x00,	    /* call 0x18:0x10100 */
	    0xf4};
	static const uint8_t far_target[] = {0xb9, 0x77, 0x07,
					     0x00, 0x00, 0xcb}; /* mov ecx; retf */
	/* from 64-bit mode: jmp far [SG_DATA+16] to SG_CS32:SG_CODE+0x200 */
	static const uint8_t enter[] = {0xff, 0x2c, 0x25, 0x10, 0x00, 0x02, 0x00};
	(void)state;
	load(enter, sizeof(enter));
	memcpy(g.ram + SG_CODE + 0x100, far_target, sizeof(far_target));
	memcpy(g.ram + SG_CODE + 0x200, code, sizeof(code));
	sg_w64(&g, SG_DATA, 10ull << 32);	  /* BOUND: 0..10 */
	sg_w64(&g, SG_DATA + 8, 0x2b12345678ull); /* LES: 0x2b:0x12345678 */
	sg_w64(&g, SG_DATA + 16, (uint64_t)SG_CS32 << 32 | (SG_CODE + 0x200));
	memset(g.ram + SG_VEC, 0xff, 4);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 0xffffffff);
	assert_int_equal(g.st.gpr[R_RBP], SG_CS32);
	assert_int_equal(g.st.seg[SEG_DS].sel, SG_DS);
	assert_int_equal(g.st.gpr[R_RDX] & 0xffff, 0x5747); /* DAA 0x47, AAD 87 */
	assert_int_equal(g.st.gpr[R_RDI] & 0xffff, 0x0807); /* AAM */
	assert_int_equal(g.st.gpr[R_RSI], 0x12345678);
	assert_int_equal(g.st.seg[SEG_ES].sel, 0x2b);
	assert_int_equal(g.st.gpr[R_RAX] & 0xffff, 0x14); /* ARPL 0x13, +1 */
	assert_int_equal(g.st.gpr[R_RCX], 0x777);
	assert_int_equal(g.st.gpr[R_RSP], SG_STACK);
	assert_int_equal(g.st.seg[SEG_CS].sel, SG_CS32);
}

/* The same opcodes are #UD in 64-bit mode. */
static void test_opcodes_invalid_in_64bit_mode(void **state)
{
	static const uint8_t ops[][8] = {{0x06},
					 {0x07},
					 {0x0e},
					 {0x16},
					 {0x17},
					 {0x1e},
					 {0x1f},
					 {0x27},
					 {0x2f},
					 {0x37},
					 {0x3f},
					 {0x60},
					 {0x61},
					 {0x62, 0x0b},
					 {0x82, 0xc0, 0x01},
					 {0xce},
					 {0xd4, 0x0a},
					 {0xd5, 0x0a},
					 {0xd6},
					 {0x9a, 0, 0, 0, 0, 0x08, 0},
					 {0xea, 0, 0, 0, 0, 0x08, 0},
					 {0xc4, 0x73, 0x08},
					 {0xc5, 0x73, 0x08}};
	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		teardown(NULL);
		setup(NULL);
		print_message("64-bit #UD: opcode %#x\n", ops[i][0]);
		load(ops[i], sizeof(ops[i]));
		memset(g.ram + SG_VEC, 0xff, 4);
		assert_int_equal(sg_run(&g), EXIT_HLT);
		assert_int_equal(vector(), 6);
		assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), SG_CODE);
	}
}

/* Machine-check MSRs are absent (MCA not in CPUID): RDMSR/WRMSR #GP(0);
 * another unknown MSR still reads 0. mov ecx,msr; rdmsr or wrmsr; hlt */
static void test_mca_msrs_absent(void **state)
{
	static const struct {
		uint32_t msr;
		bool write, gp;
	} cases[] = {
	    {0x179, false, true}, {0x17a, true, true},	  {0x17b, false, true},
	    {0x400, true, true},  {0x401, false, true},	  {0x47f, false, true},
	    {0x280, false, true}, {0x1234, false, false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		teardown(NULL);
		setup(NULL);
		uint8_t code[8] = {0xb9, 0, 0, 0, 0, 0x0f, cases[i].write ? 0x30 : 0x32, 0xf4};
		memcpy(code + 1, &cases[i].msr, 4);
		load(code, sizeof(code));
		g.st.gpr[R_RAX] = g.st.gpr[R_RDX] = 0x55;
		assert_int_equal(soft_engine.set_state(g.v, &g.st), 0);
		memset(g.ram + SG_VEC, 0xff, 4);
		assert_int_equal(sg_run(&g), EXIT_HLT);
		if (cases[i].gp) {
			assert_int_equal(vector(), 13);
			assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP]), 0);
		} else {
			assert_int_equal(vector(), 0xffffffff);
			assert_int_equal(g.st.gpr[R_RAX], 0);
		}
	}
}

/* out 0x3f8,'A'; in al,dx; mov ebx,eax; hypercall 2 (11, 22); hlt */
static void test_io_and_hypercall(void **state)
{
	(void)state;
	load(io_code, sizeof(io_code));
	assert_int_equal(sg_run(&g), EXIT_IO);
	assert_true(g.exit.io.write);
	assert_int_equal(g.exit.io.port, 0x3f8);
	assert_int_equal(g.exit.io.size, 1);
	assert_int_equal(g.exit.io.data[0], 'A');
	assert_int_equal(sg_run(&g), EXIT_IO);
	assert_false(g.exit.io.write);
	g.exit.io.data[0] = 0x5a; /* the device's answer, consumed by the next run */
	/* The hypercall is a 32-bit OUT that lends the machine the registers. */
	assert_int_equal(sg_run(&g), EXIT_IO);
	assert_true(g.exit.io.write && g.exit.io.has_regs);
	assert_int_equal(g.exit.io.port, 0x510);
	assert_int_equal(g.exit.io.size, 4);
	assert_int_equal(g.exit.io.regs.rax, 2);
	assert_int_equal(g.exit.io.regs.rdi, 11);
	assert_int_equal(g.exit.io.regs.rsi, 22);
	assert_int_equal(g.exit.io.regs.rbx, 0x5a); /* RBX = what IN read */
	g.exit.io.regs.rax = 1234;
	g.exit.io.regs_dirty = true;
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 1234);
}

/* mov rsi,0x3fe00000 (mapped to gpa 0xc0000000, not RAM); mov eax,[rsi+8];
 * mov dword [rsi+12],0x12345678; add eax,1; hlt */
static void test_mmio(void **state)
{
	(void)state;
	load(mmio_code, sizeof(mmio_code));
	sg_w64(&g, SG_PD + 511 * 8, 0xc0000000 | 0x87);
	assert_int_equal(sg_run(&g), EXIT_MMIO);
	assert_false(g.exit.mmio.write);
	assert_int_equal(g.exit.mmio.gpa, 0xc0000008);
	assert_int_equal(g.exit.mmio.size, 4);
	uint32_t v = 41;
	memcpy(g.exit.mmio.data, &v, 4);
	assert_int_equal(sg_run(&g), EXIT_MMIO);
	assert_true(g.exit.mmio.write);
	assert_int_equal(g.exit.mmio.gpa, 0xc000000c);
	memcpy(&v, g.exit.mmio.data, 4);
	assert_int_equal(v, 0x12345678);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 42);
}

/* One exit for the device access at gpa of size bytes; a read gets v. */
static void expect_mmio(bool write, uint64_t gpa, int size, uint64_t v)
{
	assert_int_equal(sg_run(&g), EXIT_MMIO);
	assert_int_equal(g.exit.mmio.write, write);
	assert_int_equal(g.exit.mmio.gpa, gpa);
	assert_int_equal(g.exit.mmio.size, size);
	if (write) {
		uint64_t got = 0;
		memcpy(&got, g.exit.mmio.data, size);
		assert_int_equal(got, v);
	} else {
		memcpy(g.exit.mmio.data, &v, 8);
	}
}

/* Instructions with several device accesses: each one reaches the machine
 * once, in order, and the instruction completes with their data.
 * mov rsi,0x3fe00000 (gpa 0xc0000000); lea rdi,[rsi+16]; mov eax,0x11223344;
 * cmpsq (two reads); mov [rsi+0xff6],eax (crosses a page: four byte writes);
 * hlt */
static void test_mmio_several(void **state)
{
	static const uint8_t code[] = {0x48, 0xbe, 0x00, 0x00, 0xe0, 0x3f, 0x00, 0x00, 0x00, 0x00,
				       0x48, 0x8d, 0x7e, 0x10, 0xb8, 0x44, 0x33, 0x22, 0x11, 0x48,
				       0xa7, 0x89, 0x86, 0xf6, 0x0f, 0x00, 0x00, 0xf4};
	(void)state;
	load(code, sizeof(code));
	sg_w64(&g, SG_PD + 511 * 8, 0xc0000000 | 0x87);
	expect_mmio(false, 0xc0000000, 8, 0x123456789ull);
	expect_mmio(false, 0xc0000010, 8, 0x123456789ull);
	expect_mmio(true, 0xc0000ffe, 1, 0x44);
	expect_mmio(true, 0xc0000fff, 1, 0x33);
	expect_mmio(true, 0xc0001000, 1, 0x22);
	expect_mmio(true, 0xc0001001, 1, 0x11);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RSI], 0x3fe00008);
	assert_int_equal(g.st.gpr[R_RDI], 0x3fe00018);
	assert_true(g.st.rflags & 0x40); /* ZF: the two reads were equal */
}

/* The engine's --stats counter group.name for the guest's vCPU. */
static int64_t engine_stat(struct sg *guest, const char *group, const char *name)
{
	struct json_object *o = json_object_new_object(), *grp, *val;
	soft_engine.stats(guest->v, o);
	assert_true(json_object_object_get_ex(o, group, &grp));
	assert_true(json_object_object_get_ex(grp, name, &val));
	int64_t v = json_object_get_int64(val);
	json_object_put(o);
	return v;
}

/* Runs a program that reads 0x200000 (rax), remaps it to gpa 0, reads it
 * again (rbx: the stale translation) and after INVLPG once more (rcx). */
static void run_remap(struct sg *guest)
{
	sg_w64(guest, 0x200000, 0x1111);
	sg_w64(guest, 0, 0x2222);
	assert_int_equal(sg_run(guest), EXIT_HLT);
	assert_int_equal(guest->st.gpr[R_RAX], 0x1111);
	assert_int_equal(guest->st.gpr[R_RBX], 0x1111);
	assert_int_equal(guest->st.gpr[R_RCX], 0x2222);
}

/* rax=[0x200000]; remap that 2 MiB page to gpa 0; rbx=[0x200000] (stale TLB,
 * as on hardware); invlpg; rcx=[0x200000] (new mapping); reload CR3; hlt */
static void test_tlb_invalidation(void **state)
{
	(void)state;
	load(invlpg_code, sizeof(invlpg_code));
	run_remap(&g);
	assert_true(engine_stat(&g, "tlb", "flushes") >= 2);
}

/* The same with a 4 KiB page while the code runs from a 2 MiB one: INVLPG
 * of an address no cached large page covers drops just its own entry.
 * PD[1] -> page table at 0xa000 mapping 0x200000.. one to one;
 *   rax=[0x200000]; PTE 0 -> gpa 0; rbx=[0x200000] (stale);
 *   invlpg [0x200000]; rcx=[0x200000]; hlt */
static void test_tlb_invalidation_4k(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0x48,
				       0xc7, 0x04, 0x25, 0x00, 0xa0, 0x00, 0x00, 0x03, 0x00,
				       0x00, 0x00, 0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x20,
				       0x00, 0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x20, 0x00,
				       0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x20, 0x00, 0xf4};
	load(code, sizeof(code));
	for (uint64_t i = 0; i < 512; i++)
		sg_w64(&g, 0xa000 + i * 8, (0x200000 + (i << 12)) | 3);
	sg_w64(&g, SG_PD + 8, 0xa000 | 7);
	run_remap(&g);
}

/* mov ecx,200; mov rax,cr3; 1: mov cr3,rax; dec ecx; jnz 1b; hlt. Each CR3
 * write flushes the non-global translations, and the blocks of the loop are
 * compared with guest memory again after it, unless their page is global
 * (CR4.PGE is set): the returned count of revalidations. */
static int64_t cr3_loop_revalidations(uint64_t pde_flags)
{
	static const uint8_t code[] = {0xb9, 0xc8, 0x00, 0x00, 0x00, 0x0f, 0x20, 0xd8,
				       0x0f, 0x22, 0xd8, 0xff, 0xc9, 0x75, 0xf9, 0xf4};
	load(code, sizeof(code));
	sg_w64(&g, SG_PD, pde_flags);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RCX], 0);
	assert_true(engine_stat(&g, "tlb", "flushes") >= 200);
	return engine_stat(&g, "blocks", "revalidated");
}

static void test_cr3_write_revalidates_local_code(void **state)
{
	(void)state;
	assert_true(cr3_loop_revalidations(0x87) >= 200);
}

static void test_cr3_write_keeps_global_code(void **state)
{
	(void)state;
	assert_true(cr3_loop_revalidations(0x187) < 20); /* G */
}

/* STAR/LSTAR/SFMASK; sysretq to ring 3; ring 3 does syscall; the kernel entry
 * records RCX and CS and halts. */
static void test_syscall_sysret(void **state)
{
	(void)state;
	load(sys_code, sizeof(sys_code));
	g.st.gpr[R_RSP] = 0x70000;
	soft_engine.set_state(g.v, &g.st);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_R12], 7);	    /* ran in ring 3 */
	assert_int_equal(g.st.gpr[R_R14], SG_CS64); /* back in the kernel */
	assert_int_equal(g.st.seg[SEG_CS].sel, SG_CS64);
	assert_int_equal(g.st.gpr[R_R11] & 3, 2);	    /* R11 = user RFLAGS */
	assert_int_equal(g.st.gpr[R_R13], g.st.gpr[R_RCX]); /* return address */
	assert_int_equal(g.st.rflags & 0x200, 0);
}

/* sysretq to ring 3, which executes hlt: #GP(0) with a stack switch to RSP0 */
static void test_privileged_in_user_mode(void **state)
{
	(void)state;
	load(user_priv_code, sizeof(user_priv_code));
	g.st.gpr[R_RSP] = 0x70000;
	soft_engine.set_state(g.v, &g.st);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 13);
	uint64_t sp = g.st.gpr[R_RSP];
	assert_int_equal(sp, SG_STACK - 48);		/* RSP0 from the TSS, six words pushed */
	assert_int_equal(sg_r64(&g, sp), 0);		/* error code */
	assert_int_equal(sg_r64(&g, sp + 16) & 3, 3);	/* CS of ring 3 */
	assert_int_equal(sg_r64(&g, sp + 32), 0x70000); /* user RSP */
	assert_true(engine_stat(&g, "classes", "privileged") >= 1);
}

/* lidt with limit 0; ud2 -> #UD cannot be delivered -> #GP -> #DF -> shutdown */
static void test_triple_fault(void **state)
{
	(void)state;
	load(triple_code, sizeof(triple_code));
	assert_int_equal(sg_run(&g), EXIT_SHUTDOWN);
	assert_int_equal(g.exit.fail.rip, SG_CODE + 7);
}

/* SSE2 double arithmetic and conversion, integer SIMD, x87 fld1/faddp/fistp */
static void test_sse_x87(void **state)
{
	(void)state;
	load(sse_code, sizeof(sse_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], 16);	   /* (2+2)^2 */
	assert_int_equal(g.st.gpr[R_RCX], 0xffff); /* pmovmskb of all ones */
	assert_int_equal(g.st.gpr[R_RDX], 2);	   /* 1 + 1 through the x87 stack */
	/* xmm2 = 0 - (-1) per byte, visible in the FXSAVE image of get_state */
	for (int i = 0; i < 16; i++)
		assert_int_equal(g.st.xsave[160 + 32 + i], 1);
}

/* Real mode at 1000:0000 -> lgdt, CR0.PE, far jump to 32-bit code -> PAE,
 * CR3, EFER.LME, CR0.PG, far jump to 64-bit code: the AP trampoline path. */
static void test_real_to_long_mode(void **state)
{
	(void)state;
	load(modes_code, sizeof(modes_code));
	struct cpu_state *s = &g.st;
	for (int i = SEG_ES; i <= SEG_GS; i++)
		s->seg[i] = (struct seg){.limit = 0xffff, .type = 3, .s = 1, .present = 1};
	s->seg[SEG_CS] = (struct seg){
	    .base = 0x10000, .limit = 0xffff, .sel = 0x1000, .type = 0xb, .s = 1, .present = 1};
	s->cr0 = 0x10;
	s->cr4 = 0;
	s->cr3 = 0;
	s->msr[MSR_IDX_EFER] = 0;
	s->rip = 0;
	s->gpr[R_RSP] = 0x8000;
	soft_engine.set_state(g.v, s);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 0x1122334455667788ull);
	assert_true(g.st.seg[SEG_CS].l);
	assert_true(g.st.msr[MSR_IDX_EFER] & EFER_LMA);
}

/* Real mode at 1000:0000: IVT entry 0x21 -> handler (mov cx; pushf; pop dx;
 * iret), int 0x21, hlt. The handler sees IF clear; IRET restores it. */
static void test_real_mode_interrupt(void **state)
{
	(void)state;
	load(real_int_code, sizeof(real_int_code));
	struct cpu_state *s = &g.st;
	for (int i = SEG_ES; i <= SEG_GS; i++)
		s->seg[i] = (struct seg){.limit = 0xffff, .type = 3, .s = 1, .present = 1};
	s->seg[SEG_CS] = (struct seg){
	    .base = 0x10000, .limit = 0xffff, .sel = 0x1000, .type = 0xb, .s = 1, .present = 1};
	s->idt = (struct dtable){0, 0x3ff};
	s->cr0 = 0x10;
	s->cr4 = 0;
	s->msr[MSR_IDX_EFER] = 0;
	s->rip = 0;
	s->rflags = 0x2;
	s->gpr[R_RSP] = 0x8000;
	soft_engine.set_state(g.v, s);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX] & 0xffff, 0x1234);
	assert_int_equal(g.st.gpr[R_RCX] & 0xffff, 0x5678);
	assert_int_equal(g.st.gpr[R_RDX] & 0x200, 0); /* IF cleared on entry */
	assert_int_equal(g.st.gpr[R_RSP] & 0xffff, 0x8000);
	assert_int_equal(g.st.rip, 0x16); /* after hlt, back in the caller */
}

/* 32-bit protected mode, paging off: a 32-bit interrupt gate for #UD; the
 * handler pops the pushed EIP (no error code for #UD) and reads CS. */
static void test_protected_mode_exception(void **state)
{
	(void)state;
	load(prot32_code, sizeof(prot32_code));
	struct cpu_state *s = &g.st;
	sg_seg(&s->seg[SEG_CS], SG_CS32, 0xb, 0, false, true);
	for (int i = SEG_ES; i <= SEG_GS; i++)
		if (i != SEG_CS)
			sg_seg(&s->seg[i], SG_DS, 0x3, 0, false, true);
	s->cr0 = 0x11;
	s->cr4 = 0;
	s->msr[MSR_IDX_EFER] = 0;
	s->rip = SG_CODE;
	s->gpr[R_RSP] = 0x80000;
	soft_engine.set_state(g.v, s);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], SG_CODE + 0x2d); /* the ud2 */
	assert_int_equal(g.st.gpr[R_RCX] & 0xffff, SG_CS32);
	assert_int_equal(g.st.gpr[R_RSP], 0x80000 - 8); /* EFLAGS and CS still pushed */
}

/* lock cmpxchg16b: a match stores RCX:RBX and sets ZF; a mismatch loads the
 * memory into RDX:RAX and clears ZF */
static void test_cmpxchg16b(void **state)
{
	(void)state;
	load(c16_code, sizeof(c16_code));
	sg_w64(&g, 0x20000, 1);
	sg_w64(&g, 0x20008, 2);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_R8] & 0xff, 1);
	assert_int_equal(g.st.gpr[R_R9] & 0xff, 0);
	assert_int_equal(sg_r64(&g, 0x20000), 3);
	assert_int_equal(sg_r64(&g, 0x20008), 4);
	assert_int_equal(g.st.gpr[R_RAX], 3);
	assert_int_equal(g.st.gpr[R_RDX], 4);
}

struct lock_cpu {
	struct engine_vcpu *v;
	struct vcpu_exit exit;
	int rc;
};

static void *lock_runner(void *arg)
{
	struct lock_cpu *l = arg;
	do
		l->rc = soft_engine.vcpu_run(l->v, &l->exit);
	while (!l->rc && l->exit.reason == EXIT_KICKED);
	return NULL;
}

/* Runs vCPU 0 of a two-vCPU guest from its state and vCPU 1 from the same
 * state at rip1, each on a host thread of its own, until both make a
 * hypercall. */
static void run_two_vcpus(struct sg *two, uint64_t rip1)
{
	struct lock_cpu cpu[2] = {{.v = two->v}};
	assert_int_equal(soft_engine.vcpu_create(two->vm, 1, &cpu[1].v), 0);
	struct cpu_state st = two->st;
	st.rip = rip1;
	assert_int_equal(soft_engine.set_state(cpu[1].v, &st), 0);
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, lock_runner, &cpu[i]);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(cpu[i].rc, 0);
		assert_int_equal(cpu[i].exit.reason, EXIT_IO);
		assert_true(cpu[i].exit.io.has_regs);
	}
	soft_engine.vcpu_destroy(cpu[1].v);
}

/* Two vCPUs on two host threads each do 100000 LOCK INC and LOCK XADD on the
 * same words (LOCK XADD adding 1), then a hypercall: LOCKed instructions are atomic on the shared
 * guest memory. */
static void test_smp_lock_atomicity(void **state)
{
	(void)state;
	struct sg two;
	assert_int_equal(sg_init(&two, 2), 0);
	memcpy(two.ram + SG_CODE, lock_code, sizeof(lock_code));
	run_two_vcpus(&two, two.st.rip);
	assert_int_equal(sg_r64(&two, 0x20000), 200000);
	assert_int_equal(sg_r64(&two, 0x20008), 200000);
	sg_free(&two);
}

/* vCPU 0: 1000000 x LOCK CMPXCHG dword [0x20000], 0 -> 2, the successes
 * (ZF) counted and stored at 0x20100. vCPU 1 at SG_CODE + 0x80: 1000000 x
 * (XCHG [0x20000] with 1, then with 0), the 2s it takes out stored at 0x20108. */
static const uint8_t cmpxchg_code[] = {
    0xb9, 0x40, 0x42, 0x0f, 0x00, 0x45, 0x31, 0xc0, 0x31, 0xc0, 0xba, 0x02, 0x00, 0x00, 0x00, 0xf0,
    0x0f, 0xb1, 0x14, 0x25, 0x00, 0x00, 0x02, 0x00, 0x75, 0x03, 0x49, 0xff, 0xc0, 0xff, 0xc9, 0x75,
    0xe7, 0x4c, 0x89, 0x04, 0x25, 0x00, 0x01, 0x02, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};
static const uint8_t xchg_code[] = {
    0xb9, 0x40, 0x42, 0x0f, 0x00, 0x45, 0x31, 0xc9, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x87, 0x04, 0x25,
    0x00, 0x00, 0x02, 0x00, 0x83, 0xf8, 0x02, 0x75, 0x03, 0x49, 0xff, 0xc1, 0x31, 0xc0, 0x87, 0x04,
    0x25, 0x00, 0x00, 0x02, 0x00, 0x83, 0xf8, 0x02, 0x75, 0x03, 0x49, 0xff, 0xc1, 0xff, 0xc9, 0x75,
    0xd7, 0x4c, 0x89, 0x0c, 0x25, 0x08, 0x01, 0x02, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};

/* LOCK CMPXCHG reports success (ZF) only when it stored: every 2 that vCPU 0
 * claims to have written is taken out by vCPU 1's XCHG or still there at the
 * end. A failed compare that read the word again afterwards could find the 0
 * vCPU 1 had just put back and claim a store that never happened; Linux's
 * lock-free lists (the scheduler's wake-up list) then lose an entry. */
static void test_smp_cmpxchg_is_one_access(void **state)
{
	(void)state;
	struct sg two;
	assert_int_equal(sg_init(&two, 2), 0);
	memcpy(two.ram + SG_CODE, cmpxchg_code, sizeof(cmpxchg_code));
	memcpy(two.ram + SG_CODE + 0x80, xchg_code, sizeof(xchg_code));
	run_two_vcpus(&two, two.st.rip + 0x80);
	uint32_t left;
	memcpy(&left, two.ram + 0x20000, 4);
	uint64_t claimed = sg_r64(&two, 0x20100), taken = sg_r64(&two, 0x20108);
	assert_true(claimed > 0);
	assert_int_equal(claimed, taken + (left == 2));
	sg_free(&two);
}

static void *kicker(void *arg)
{
	(void)arg;
	usleep(20000);
	soft_engine.vcpu_kick(g.v);
	return NULL;
}

/* sti; hlt; jmp back: only a kick can end the run */
static void test_kick_wakes_hlt(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xfb, 0xf4, 0xeb, 0xfd};
	load(code, sizeof(code));
	pthread_t t;
	pthread_create(&t, NULL, kicker, NULL);
	struct vcpu_exit ex;
	assert_int_equal(soft_engine.vcpu_run(g.v, &ex), 0);
	assert_int_equal(ex.reason, EXIT_KICKED);
	pthread_join(t, NULL);
}

/* get_state / set_state round trip keeps registers and the FXSAVE image */
/* A store into the next instruction of the same block takes effect:
 *   mov dword [rip+1], 0x42   ; the immediate of the mov below
 *   mov eax, 0x11
 *   hlt */
static void test_smc_same_block(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xc7, 0x05, 0x01, 0x00, 0x00, 0x00, 0x42, 0x00,
				       0x00, 0x00, 0xb8, 0x11, 0x00, 0x00, 0x00, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 0x42);
}

/* A loop that rewrites its own first instruction runs the new one on the
 * next pass. The first pass runs inside the entry block and the second
 * decodes the loop as a block of its own, so the store of the second pass
 * hits cached code (through the TLB's fast path: the first store dirtied
 * the page):
 *   mov dword [rip + scratch], 0
 *   mov ecx, 3; xor ebx, ebx
 * top: mov eax, 1; add ebx, eax
 *   mov [rip + top+1], ecx           ; the next pass adds this ecx
 *   dec ecx; jnz top; hlt            -> ebx = 1 + 3 + 2
 * scratch: .long 0 */
static void test_smc_loop(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xc7, 0x05, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
				       0xb9, 0x03, 0x00, 0x00, 0x00, 0x31, 0xdb, 0xb8, 0x01, 0x00,
				       0x00, 0x00, 0x01, 0xc3, 0x89, 0x0d, 0xf4, 0xff, 0xff, 0xff,
				       0xff, 0xc9, 0x75, 0xef, 0xf4, 0x00, 0x00, 0x00, 0x00};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], 6);
}

/* An instruction that crosses a page is cached like any other, and a store
 * into its part in the next page makes the next pass run the new bytes. At
 * SG_CODE + 0xffd, 3 passes:
 *   mov eax, 0x00010001          ; b8 01 00 | 01 00 (the page ends after b8 01 00)
 *   add ebx, eax
 *   mov [SG_CODE + 0x1000], cx   ; the immediate's upper half, in the next page
 *   dec ecx; jnz back; hlt       -> ebx = 0x10001 + 0x30001 + 0x20001 */
static void test_smc_page_crossing(void **state)
{
	(void)state;
	static const uint8_t entry[] = {0xb9, 0x03, 0x00, 0x00, 0x00,  /* mov ecx, 3 */
					0x31, 0xdb,		       /* xor ebx, ebx */
					0xe9, 0xf1, 0x0f, 0x00, 0x00}; /* jmp SG_CODE + 0xffd */
	static const uint8_t loop[] = {0xb8, 0x01, 0x00, 0x01, 0x00, 0x01, 0xc3, 0x66,
				       0x89, 0x0c, 0x25, 0x00, 0x10, 0x01, 0x00, 0xff,
				       0xc9, 0x0f, 0x85, 0xe9, 0xff, 0xff, 0xff, 0xf4};
	load(entry, sizeof(entry));
	memcpy(g.ram + SG_CODE + 0xffd, loop, sizeof(loop));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], 0x60003);
}

/* The flags an instruction computes are kept when a later one in the block
 * could fault before they are overwritten: the exception frame holds them.
 *   mov rax, -1; add rax, 1          ; CF PF AF ZF
 *   mov rbx, [0x40000000]            ; #PF
 *   xor ecx, ecx; hlt */
static void test_flags_at_fault(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48,
				       0x83, 0xc0, 0x01, 0x48, 0x8b, 0x1c, 0x25, 0x00,
				       0x00, 0x00, 0x40, 0x31, 0xc9, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	uint64_t sp = g.st.gpr[R_RSP];
	assert_int_equal(sg_r64(&g, sp + 8), SG_CODE + 11);  /* faulting RIP */
	assert_int_equal(sg_r64(&g, sp + 24) & 0x8d5, 0x55); /* CF PF AF ZF set; SF OF clear */
}

/* Cross-modifying code: vCPU 1 keeps calling func (mov eax, 1; ret) and
 * counting; once it has run 100 times, vCPU 0 rewrites the immediate to 2 and
 * raises a flag, with no serializing instruction on either side. The call
 * after vCPU 1 sees the flag runs the new code, as on hardware.
 *   writer (SG_CODE):       1: cmp dword [0x20008], 100; jb 1b
 *                           mov dword [func+1], 2; mov dword [0x20000], 1
 *                           hypercall
 *   reader (SG_CODE+0x100): xor ebx, ebx
 *                           2: call func; add ebx, eax; mov [0x20008], ebx
 *                           cmp dword [0x20000], 0; je 2b
 *                           call func; mov [0x20010], eax; hypercall
 *   func (SG_CODE+0x200):   mov eax, 1; ret */
static void test_cross_modifying_code(void **state)
{
	(void)state;
	static const uint8_t writer[] = {0x83, 0x3c, 0x25, 0x08, 0x00, 0x02, 0x00, 0x64, 0x72, 0xf6,
					 0xc7, 0x04, 0x25, 0x01, 0x02, 0x01, 0x00, 0x02, 0x00, 0x00,
					 0x00, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00,
					 0x00, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};
	static const uint8_t reader[] = {0x31, 0xdb, 0xe8, 0xf9, 0x00, 0x00, 0x00, 0x01, 0xc3,
					 0x89, 0x1c, 0x25, 0x08, 0x00, 0x02, 0x00, 0x83, 0x3c,
					 0x25, 0x00, 0x00, 0x02, 0x00, 0x00, 0x74, 0xe8, 0xe8,
					 0xe1, 0x00, 0x00, 0x00, 0x89, 0x04, 0x25, 0x10, 0x00,
					 0x02, 0x00, 0x66, 0xba, 0x10, 0x05, 0xef};
	static const uint8_t func[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
	struct sg two;
	assert_int_equal(sg_init_jit(&two, 2, use_jit), 0);
	memcpy(two.ram + SG_CODE, writer, sizeof(writer));
	memcpy(two.ram + SG_CODE + 0x100, reader, sizeof(reader));
	memcpy(two.ram + SG_CODE + 0x200, func, sizeof(func));
	run_two_vcpus(&two, SG_CODE + 0x100);
	assert_true(sg_r64(&two, 0x20008) >= 100);
	assert_int_equal(sg_r64(&two, 0x20010), 2);
	sg_free(&two);
}

static void test_state_round_trip(void **state)
{
	(void)state;
	struct cpu_state *s = &g.st;
	for (int i = 0; i < NR_GPRS; i++)
		s->gpr[i] = 0x1000 + i;
	s->rip = SG_CODE + 3;
	s->rflags = 0x2 | 0x1 | 0x800;
	for (int i = 0; i < 16; i++)
		s->xsave[160 + i * 16] = (uint8_t)(i + 1);
	s->msr[MSR_IDX_LSTAR] = 0xffffffff81000000ull;
	assert_int_equal(soft_engine.set_state(g.v, s), 0);
	static struct cpu_state out;
	assert_int_equal(soft_engine.get_state(g.v, &out), 0);
	assert_memory_equal(out.gpr, s->gpr, sizeof(s->gpr));
	assert_int_equal(out.rip, s->rip);
	assert_int_equal(out.rflags, s->rflags);
	assert_int_equal(out.msr[MSR_IDX_LSTAR], s->msr[MSR_IDX_LSTAR]);
	for (int i = 0; i < 16; i++)
		assert_int_equal(out.xsave[160 + i * 16], i + 1);
	assert_int_equal(out.cr3, SG_PML4);
	assert_true(out.has_lapic);
}

/* xsetbv 3; xgetbv 1 -> r8; pcmpeqb xmm0,xmm0; xgetbv 1 -> r9; fld1;
 * xgetbv 1 -> r10; xsave [0x21000] (rfbm ~0); xrstor [0x22000] (all-zero
 * header); xgetbv 1 -> r11; hlt. XINUSE is exact here: the initial state
 * is not in use, touching XMM0 and the x87 stack puts SSE and x87 in use,
 * an XRSTOR of the initial state takes them out again. */
static void test_xsave_in_use(void **state)
{
	(void)state;
	load(xinuse_code, sizeof(xinuse_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.xcr0, 3);
	assert_int_equal(g.st.gpr[R_R8], 0);
	assert_int_equal(g.st.gpr[R_R9], XSTATE_SSE);
	assert_int_equal(g.st.gpr[R_R10], XSTATE_X87 | XSTATE_SSE);
	assert_int_equal(g.st.gpr[R_R11], 0);
	assert_int_equal(sg_r64(&g, 0x21000 + XSAVE_HEADER), XSTATE_X87 | XSTATE_SSE);
	assert_int_equal(sg_r64(&g, 0x21000 + 160), ~0ull); /* XMM0 */
	assert_int_equal(g.ram[0x21000 + 4], 0x80);	    /* abridged FTW: ST0 = phys 7 */
	assert_int_equal(sg_r64(&g, 0x21000 + 416), 0);	    /* not written */
	/* the XRSTOR of the initial state emptied the registers again */
	assert_int_equal(g.st.xsave[4], 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(g.st.xsave[160 + i], 0);
	assert_int_equal(engine_stat(&g, "traps", "xsetbv"), 1);
}

/* xsetbv 3; xrstor [0x22000] of an image whose MXCSR has reserved bit 16 */
static void test_xrstor_bad_mxcsr(void **state)
{
	(void)state;
	load(xrstor_code, sizeof(xrstor_code));
	sg_w64(&g, 0x22000 + 24, 0x10000 | 0x1f80);
	sg_w64(&g, 0x22000 + XSAVE_HEADER, XSTATE_X87 | XSTATE_SSE);
	sg_w64(&g, 0x22000 + 160, 0x1234);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 13);
	assert_int_equal(g.st.xsave[160], 0); /* nothing was loaded */
}

/* CR0.TS; xsave [0x21000] -> #NM */
static void test_xsave_ts(void **state)
{
	(void)state;
	load(xsave_ts_code, sizeof(xsave_ts_code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 7);
}

/* iretq to ring 3; xgetbv 0 -> rbx works there; xsetbv -> #GP */
static void test_xsetbv_user(void **state)
{
	(void)state;
	load(xsetbv_user_code, sizeof(xsetbv_user_code));
	memset(g.ram + SG_VEC, 0xff, 4);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 13);
	assert_int_equal(g.st.gpr[R_RBX], XSTATE_X87);
	assert_int_equal(g.st.xcr0, XSTATE_X87);
}

/* 32-bit compatibility mode: xsetbv 3; xsave [0x21000]; xrstor [0x22000]
 * (all-zero header). Outside 64-bit mode XMM8-XMM15 are neither saved nor
 * initialised. */
static void test_xsave_compat(void **state)
{
	(void)state;
	load(xsave_compat_code, sizeof(xsave_compat_code));
	struct cpu_state *s = &g.st;
	sg_seg(&s->seg[SEG_CS], SG_CS32, 0xb, 0, false, true);
	for (int i = 0; i < 256; i++)
		s->xsave[160 + i] = (uint8_t)(i | 1);
	soft_engine.set_state(g.v, s);
	memset(g.ram + 0x21000, 0xcc, 512);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	for (int i = 0; i < 256; i++) {
		assert_int_equal(g.ram[0x21000 + 160 + i], i < 128 ? (i | 1) : 0xcc);
		assert_int_equal(g.st.xsave[160 + i], i < 128 ? 0 : (i | 1));
	}
}

/* xsetbv 3; xsave fs:[8] with FS.base 0x20ff8: the offset is misaligned, the
 * linear address 0x21000 is not, and alignment is a property of the latter */
static void test_xsave_alignment_linear(void **state)
{
	(void)state;
	load(xsave_fs_code, sizeof(xsave_fs_code));
	g.st.seg[SEG_FS].base = 0x20ff8;
	soft_engine.set_state(g.v, &g.st);
	memset(g.ram + SG_VEC, 0xff, 4);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 0xffffffff);
	assert_int_equal(g.ram[0x21000], 0x7f); /* FCW */
}

/* set_state takes the XSAVE image as XRSTOR does: a component whose
 * XSTATE_BV bit is clear is in its initial state whatever the image holds,
 * and XCR0 bits this CPU lacks (AVX from a kvm snapshot) are dropped. */
static void test_state_xstate_bv(void **state)
{
	(void)state;
	struct cpu_state *s = &g.st;
	memset(s->xsave + 160, 0x77, 256);   /* XMM contents ... */
	s->xsave[XSAVE_HEADER] = XSTATE_X87; /* ... that are not in the image */
	s->xsave[24] = 0xa0;		     /* MXCSR 0x1fa0: loaded all the same */
	s->xsave_size = 576;
	s->xcr0 = 7;
	assert_int_equal(soft_engine.set_state(g.v, s), 0);
	static struct cpu_state out;
	assert_int_equal(soft_engine.get_state(g.v, &out), 0);
	assert_int_equal(out.xcr0, 3);
	for (int i = 0; i < 256; i++)
		assert_int_equal(out.xsave[160 + i], 0);
	assert_int_equal(out.xsave[24], 0xa0);
	assert_int_equal(out.xsave[0], 0x7f);
	assert_int_equal(out.xsave[1], 0x03);
}

static int64_t jit_stat(const char *key)
{
	struct json_object *st = json_object_new_object(), *j, *n;
	soft_engine.stats(g.v, st);
	int64_t v = -1;
	if (json_object_object_get_ex(st, "jit", &j) && json_object_object_get_ex(j, key, &n))
		v = json_object_get_int64(n);
	json_object_put(st);
	return v;
}

/* Instructions the vCPU ran, by --stats. */
static int64_t insns_run(void)
{
	struct json_object *st = json_object_new_object(), *n;
	soft_engine.stats(g.v, st);
	assert_true(json_object_object_get_ex(st, "instructions", &n));
	int64_t v = json_object_get_int64(n);
	json_object_put(st);
	return v;
}

/* A #PF in a block entered by a chained jump, which stores neither RIP nor
 * c->cur_block (the ways out do): the frame names the load, and the
 * instruction count is exact.
 *   mov ecx, 10; mov esi, 0x20000; mov r9d, 0x40000000; xor eax, eax
 * top: add eax, 1; jmp b
 * b: mov edx, [rsi]; sub ecx, 1; cmp ecx, 3; cmove rsi, r9   ; faults on pass 8
 *   test ecx, ecx; jnz top; hlt */
static void test_fault_in_chained_block(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xb9, 0x0a, 0x00, 0x00, 0x00, 0xbe, 0x00, 0x00, 0x02, 0x00,
				       0x41, 0xb9, 0x00, 0x00, 0x00, 0x40, 0x31, 0xc0, 0x83, 0xc0,
				       0x01, 0xeb, 0x00, 0x8b, 0x16, 0x83, 0xe9, 0x01, 0x83, 0xf9,
				       0x03, 0x49, 0x0f, 0x44, 0xf1, 0x85, 0xc9, 0x75, 0xeb, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP] + 8), SG_CODE + 23); /* the load */
	assert_int_equal(g.st.gpr[R_RAX], 8);
	assert_int_equal(g.st.gpr[R_RCX], 3);
	assert_int_equal(insns_run(), 65); /* as the interpreter counts them */
	if (use_jit)
		assert_true(jit_stat("links") >= 2);
}

/* The flags of register ALU operations computed in the cached registers
 * (their lazy operands stored from them) are what the frame of a #PF from
 * a later load holds, also when the result's register is written between.
 *   mov eax, 5; mov ebx, 7; sub rax, rbx      ; CF AF SF
 *   mov eax, 0xf0; mov ebx, 0x0f; and eax, ebx ; ZF PF (AF undefined)
 *   mov eax, 1; add eax, 0x7fffffff; mov eax, 3 ; OF SF AF PF
 * each then: mov rcx, [0x40000000] (#PF); xor edx, edx; hlt */
static void test_deferred_flags_at_fault(void **state)
{
	static const struct {
		uint8_t code[32];
		size_t len, at;
		uint64_t mask, flags;
	} cases[] = {
	    {{0xb8, 0x05, 0x00, 0x00, 0x00, 0xbb, 0x07, 0x00, 0x00, 0x00, 0x48, 0x29,
	      0xd8, 0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x00, 0x40, 0x31, 0xd2, 0xf4},
	     24,
	     13,
	     0x8d5,
	     0x91},
	    {{0xb8, 0xf0, 0x00, 0x00, 0x00, 0xbb, 0x0f, 0x00, 0x00, 0x00, 0x21, 0xd8,
	      0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x00, 0x40, 0x31, 0xd2, 0xf4},
	     23,
	     12,
	     0x8c5,
	     0x44},
	    {{0xb8, 0x01, 0x00, 0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0x7f, 0xb8, 0x03, 0x00,
	      0x00, 0x00, 0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x00, 0x40, 0x31, 0xd2, 0xf4},
	     26,
	     15,
	     0x8d5,
	     0x894},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (i)
			teardown(state), setup(state);
		load(cases[i].code, cases[i].len);
		assert_int_equal(sg_run(&g), EXIT_HLT);
		assert_int_equal(vector(), 14);
		uint64_t sp = g.st.gpr[R_RSP];
		assert_int_equal(sg_r64(&g, sp + 8), SG_CODE + cases[i].at); /* the load */
		assert_int_equal(sg_r64(&g, sp + 24) & cases[i].mask, cases[i].flags);
	}
}

/* A translated loop whose first instruction may miss the TLB goes back to a
 * copy of its head whose ways out store the flags of the closing CMP, which
 * the back-edge no longer stores: the frame of a #PF there holds them. The
 * second form writes a register the CMP reads before the load (mov rbx,
 * r10), so the translation does without the copy; the frame is the same.
 *   mov ecx, 20; mov esi, 0x20000; mov r9d, 0x40000000; mov rbx, -1
 *   [mov r10, -1]; xor eax, eax
 * top: [mov rbx, r10]; movzx edx, byte [rsi]; add rax, rdx; sub ecx, 1
 *   cmp ecx, 3; cmove rsi, r9          ; the next pass loads from 0x40000000
 *   cmp rcx, rbx; jne top              ; 3 - (-1): CF AF set, the rest clear */
static void test_flags_at_fault_in_loop(void **state)
{
	(void)state;
	static const uint8_t copy[] = {0xb9, 0x14, 0x00, 0x00, 0x00, 0xbe, 0x00, 0x00, 0x02, 0x00,
				       0x41, 0xb9, 0x00, 0x00, 0x00, 0x40, 0x48, 0xc7, 0xc3, 0xff,
				       0xff, 0xff, 0xff, 0x31, 0xc0, 0x0f, 0xb6, 0x16, 0x48, 0x01,
				       0xd0, 0x83, 0xe9, 0x01, 0x83, 0xf9, 0x03, 0x49, 0x0f, 0x44,
				       0xf1, 0x48, 0x39, 0xd9, 0x75, 0xeb, 0xf4};
	static const uint8_t no_copy[] = {
	    0xb9, 0x14, 0x00, 0x00, 0x00, 0xbe, 0x00, 0x00, 0x02, 0x00, 0x41, 0xb9,
	    0x00, 0x00, 0x00, 0x40, 0x48, 0xc7, 0xc3, 0xff, 0xff, 0xff, 0xff, 0x49,
	    0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff, 0x31, 0xc0, 0x4c, 0x89, 0xd3, 0x0f,
	    0xb6, 0x16, 0x48, 0x01, 0xd0, 0x83, 0xe9, 0x01, 0x83, 0xf9, 0x03, 0x49,
	    0x0f, 0x44, 0xf1, 0x48, 0x39, 0xd9, 0x75, 0xe8, 0xf4};
	for (int run = 0; run < 2; run++) {
		if (run)
			teardown(state), setup(state);
		load(run ? no_copy : copy, run ? sizeof(no_copy) : sizeof(copy));
		assert_int_equal(sg_run(&g), EXIT_HLT);
		assert_int_equal(vector(), 14);
		uint64_t sp = g.st.gpr[R_RSP];
		assert_int_equal(sg_r64(&g, sp + 8), SG_CODE + (run ? 35 : 25)); /* the load */
		assert_int_equal(g.st.gpr[R_RCX], 3);
		assert_int_equal(sg_r64(&g, sp + 24) & 0x8d5, 0x11); /* CF AF */
	}
	if (use_jit)
		assert_true(jit_stat("links") >= 1);
}

/* Translated loads, stores, PUSH/POP, IMUL, SHL and DEC in a loop, then a
 * #PF from a load in the middle of a translated block, whose frame must name
 * that load (the translation hands it to the interpreter):
 *   mov ecx, 50; xor eax, eax; lea rdi, [rsp - 4096]
 * top: mov rdx, rcx; imul rdx, rdx, 3; shl rdx, 2
 *   mov [rdi + rcx*8], rdx; mov rsi, [rdi + rcx*8]; add rax, rsi
 *   push rax; pop rbx; dec ecx; jnz top      -> rax = 12 * (1 + ... + 50)
 *   mov r9, rax; mov r8, [0x40000000]; hlt */
static void test_jit_block(void **state)
{
	(void)state;
	static const uint8_t code[] = {
	    0xb9, 0x32, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x48, 0x8d, 0xbc, 0x24, 0x00, 0xf0, 0xff,
	    0xff, 0x48, 0x89, 0xca, 0x48, 0x6b, 0xd2, 0x03, 0x48, 0xc1, 0xe2, 0x02, 0x48, 0x89,
	    0x14, 0xcf, 0x48, 0x8b, 0x34, 0xcf, 0x48, 0x01, 0xf0, 0x50, 0x5b, 0xff, 0xc9, 0x75,
	    0xe4, 0x49, 0x89, 0xc1, 0x4c, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	assert_int_equal(g.st.gpr[R_RBX], 15300);
	assert_int_equal(g.st.gpr[R_R9], 15300);
	assert_int_equal(sg_r64(&g, SG_STACK - 4096 + 8 * 7), 7 * 12);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP] + 8), SG_CODE + 0x2e); /* faulting RIP */
	if (use_jit)
		assert_true(jit_stat("insns") >= 10);
	else
		assert_int_equal(jit_stat("insns"), -1);
}

/* Registers the translation keeps in host registers reach the guest's state
 * where it leaves: more of them written than it caches (so some are stored
 * back early), an INC (whose flags call out) between, then a #PF from a
 * load, whose handler must see every write before it and none after.
 *   mov eax, 1; mov ebx, 2; mov ecx, 3; mov edx, 4; mov esi, 5
 *   add rax, rbx; inc esi; add rcx, rdx; mov edi, 9
 *   mov r8, [0x40000000]; mov eax, 77; hlt */
static void test_registers_at_fault(void **state)
{
	(void)state;
	static const uint8_t code[] = {
	    0xb8, 0x01, 0x00, 0x00, 0x00, 0xbb, 0x02, 0x00, 0x00, 0x00, 0xb9, 0x03, 0x00,
	    0x00, 0x00, 0xba, 0x04, 0x00, 0x00, 0x00, 0xbe, 0x05, 0x00, 0x00, 0x00, 0x48,
	    0x01, 0xd8, 0xff, 0xc6, 0x48, 0x01, 0xd1, 0xbf, 0x09, 0x00, 0x00, 0x00, 0x4c,
	    0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40, 0xb8, 0x4d, 0x00, 0x00, 0x00, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(vector(), 14);
	static const struct {
		int reg;
		uint64_t v;
	} want[] = {{R_RAX, 3}, {R_RBX, 2}, {R_RCX, 7}, {R_RDX, 4}, {R_RSI, 6}, {R_RDI, 9}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(g.st.gpr[want[i].reg], want[i].v);
	assert_int_equal(sg_r64(&g, g.st.gpr[R_RSP] + 8), SG_CODE + 0x26); /* faulting RIP */
	if (use_jit)
		assert_true(jit_stat("insns") >= 9);
}

/* CALL and RET (translated at the end of their blocks) in a loop:
 *   mov ecx, 20; xor eax, eax
 * top: call f; sub ecx, 1; jnz top; hlt
 * f: add rax, rcx; ret                      -> rax = 20 + 19 + ... + 1 */
static void test_call_ret(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xb9, 0x14, 0x00, 0x00, 0x00, 0x31, 0xc0, 0xe8,
				       0x06, 0x00, 0x00, 0x00, 0x83, 0xe9, 0x01, 0x75,
				       0xf6, 0xf4, 0x48, 0x01, 0xc8, 0xc3};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 210);
	assert_int_equal(g.st.gpr[R_RSP], SG_STACK);
	assert_int_equal(g.st.rip, SG_CODE + 0x12);
	assert_int_equal(sg_r64(&g, SG_STACK - 8), SG_CODE + 0xc); /* the return address */
	if (use_jit)
		assert_true(jit_stat("insns") >= 5);
}

/* One function returning to two call sites in turn: translated, each RET
 * finds its caller's block in the indirect-branch table, which must tell the
 * two apart.
 *   mov ecx, 20; xor eax, eax; xor ebx, ebx
 * top: call f; add rbx, 1; call f; add rbx, 2
 *   sub ecx, 1; jnz top; hlt
 * f: add rax, rcx; ret                   -> rax = 2 * (20 + ... + 1), rbx = 60 */
static void test_ret_two_sites(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xb9, 0x14, 0x00, 0x00, 0x00, 0x31, 0xc0, 0x31, 0xdb, 0xe8,
				       0x13, 0x00, 0x00, 0x00, 0x48, 0x83, 0xc3, 0x01, 0xe8, 0x0a,
				       0x00, 0x00, 0x00, 0x48, 0x83, 0xc3, 0x02, 0x83, 0xe9, 0x01,
				       0x75, 0xe9, 0xf4, 0x48, 0x01, 0xc8, 0xc3};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 420);
	assert_int_equal(g.st.gpr[R_RBX], 60);
	assert_int_equal(g.st.gpr[R_RSP], SG_STACK);
	assert_int_equal(insns_run(), 4 + 20 * 10);
	if (use_jit)
		assert_true(jit_stat("links") >= 3); /* both returns and the loop */
}

/* A translated exit linked to a block whose code then changes: the write
 * bumps the epoch, so the link is not taken and the new code runs.
 *   mov ecx, 5; xor ebx, ebx
 * a: cmp ecx, 3; jne b                  ; linked to b on the first passes
 *   mov dword [rip + b+1], 7            ; at ecx = 3: b adds 7 from now on
 * b: mov eax, 1; add ebx, eax; sub ecx, 1; jnz a; hlt   -> ebx = 1 + 1 + 3 * 7 */
static void test_smc_linked_block(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xb9, 0x05, 0x00, 0x00, 0x00, 0x31, 0xdb, 0x83, 0xf9,
				       0x03, 0x75, 0x0a, 0xc7, 0x05, 0x01, 0x00, 0x00, 0x00,
				       0x07, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00,
				       0x01, 0xc3, 0x83, 0xe9, 0x01, 0x75, 0xe5, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], 23);
	if (use_jit)
		assert_true(jit_stat("links") >= 2);
}

/* Two blocks jumping to each other forever, chained when translated: the
 * chain still returns for a kick, and the blocks it ran are all counted.
 *   a: add rax, 1; jmp b
 *   b: add rbx, 1; jmp a */
static void test_kick_ends_chain(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0x83, 0xc0, 0x01, 0xeb, 0x00,
				       0x48, 0x83, 0xc3, 0x01, 0xeb, 0xf4};
	load(code, sizeof(code));
	pthread_t t;
	pthread_create(&t, NULL, kicker, NULL);
	struct vcpu_exit ex;
	do
		assert_int_equal(soft_engine.vcpu_run(g.v, &ex), 0);
	while (ex.reason != EXIT_KICKED);
	pthread_join(t, NULL);
	assert_int_equal(soft_engine.get_state(g.v, &g.st), 0);
	uint64_t a = g.st.gpr[R_RAX], b = g.st.gpr[R_RBX];
	assert_true(a > 1000);
	assert_true(a == b || a == b + 1);
	assert_int_equal(g.st.rip, SG_CODE + (a == b ? 0 : 6));
	assert_int_equal(insns_run(), (int64_t)(2 * (a + b)));
	if (use_jit)
		assert_true(jit_stat("links") >= 2);
}

/* A block that branches to its own start, translated: once linked, the
 * back-edge goes straight to the translation's start, each pass counted,
 * and the run still returns at the end of the batch's budget (6000
 * instructions are more than one batch).
 *   mov ecx, 2000; xor eax, eax
 * top: add rax, rcx; sub ecx, 1; jnz top; hlt     -> rax = 2000 + ... + 1 */
static void test_self_loop(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xb9, 0xd0, 0x07, 0x00, 0x00, 0x31, 0xc0, 0x48,
				       0x01, 0xc8, 0x83, 0xe9, 0x01, 0x75, 0xf8, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 2001000);
	assert_int_equal(g.st.gpr[R_RCX], 0);
	assert_int_equal(insns_run(), 2 + 2000 * 3 + 1);
	if (use_jit)
		assert_true(jit_stat("links") >= 1);
}

/* Run the code at SG_CODE again, from the state the last run left. */
static void restart(void)
{
	assert_int_equal(soft_engine.get_state(g.v, &g.st), 0);
	g.st.rip = SG_CODE;
	g.st.mp_state = MP_RUNNABLE;
	assert_int_equal(soft_engine.set_state(g.v, &g.st), 0);
}

/* Loops that keep the registers they cache in host registers from one pass
 * to the next, with a load that crosses a page on some passes (its miss
 * hands the pass to the interpreter with them stored back); the first with
 * more registers than are cached (so some are replaced on every pass and
 * the back-edge stores them back), the second with few (it keeps them):
 *   mov esi, 0x20ff0; mov ecx, 32
 * top: add rax, [rsi]; add rbx, rax; add rdx, rbx; add rdi, rdx; add r8, rdi
 *   add r9, r8; add r10, r9; add r11, r10; add r12, r11
 *   add rsi, 1; sub ecx, 1; jnz top; hlt
 * and the same without the adds to rdx ... r12. */
static void test_loop_registers(void **state)
{
	(void)state;
	static const uint8_t many[] = {0xbe, 0xf0, 0x0f, 0x02, 0x00, 0xb9, 0x20, 0x00, 0x00, 0x00,
				       0x48, 0x03, 0x06, 0x48, 0x01, 0xc3, 0x48, 0x01, 0xda, 0x48,
				       0x01, 0xd7, 0x49, 0x01, 0xf8, 0x4d, 0x01, 0xc1, 0x4d, 0x01,
				       0xca, 0x4d, 0x01, 0xd3, 0x4d, 0x01, 0xdc, 0x48, 0x83, 0xc6,
				       0x01, 0x83, 0xe9, 0x01, 0x75, 0xdc, 0xf4};
	static const uint8_t few[] = {0xbe, 0xf0, 0x0f, 0x02, 0x00, 0xb9, 0x20, 0x00, 0x00,
				      0x00, 0x48, 0x03, 0x06, 0x48, 0x01, 0xc3, 0x48, 0x83,
				      0xc6, 0x01, 0x83, 0xe9, 0x01, 0x75, 0xf1, 0xf4};
	/* computed by a model of the loop */
	static const struct {
		int reg;
		uint64_t v;
	} want[] = {{R_RAX, 0xdeff1f3f5f7f9fb0},
		    {R_RBX, 0x6b02992ec356e840},
		    {R_RSI, 0x21010},
		    {R_RCX, 0},
		    {R_RDX, 0x5bf62f16bd31978},
		    {R_RDI, 0xeb8520d4b5d7c9b0},
		    {R_R8, 0xcd3ab9270138690},
		    {R_R9, 0xec16ad9fde5ba900},
		    {R_R10, 0x45af54c9b248c0bc},
		    {R_R11, 0xb23df9a97bb33fc8},
		    {R_R12, 0xb923cf8c5c103c30}};
	for (int run = 0; run < 2; run++) {
		load(run ? few : many, run ? sizeof(few) : sizeof(many));
		if (run) { /* from the start again, the registers zero */
			restart();
			memset(g.st.gpr, 0, sizeof(g.st.gpr));
			g.st.gpr[R_RSP] = SG_STACK;
			assert_int_equal(soft_engine.set_state(g.v, &g.st), 0);
		}
		for (uint64_t a = 0x20ff0; a < 0x21030; a++)
			g.ram[a] = (uint8_t)(a * 7 + 1);
		int64_t before = insns_run();
		assert_int_equal(sg_run(&g), EXIT_HLT);
		for (size_t i = 0; i < (run ? 4 : sizeof(want) / sizeof(want[0])); i++)
			assert_int_equal(g.st.gpr[want[i].reg], want[i].v);
		assert_int_equal(insns_run() - before, 2 + 32 * (run ? 5 : 12) + 1);
	}
	if (use_jit)
		assert_true(jit_stat("links") >= 2);
}

/* The same loop without an end: a kick still ends it, between passes.
 *   top: add rax, 1; jmp top */
static void test_kick_ends_loop(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0x83, 0xc0, 0x01, 0xeb, 0xfa};
	load(code, sizeof(code));
	pthread_t t;
	pthread_create(&t, NULL, kicker, NULL);
	struct vcpu_exit ex;
	do
		assert_int_equal(soft_engine.vcpu_run(g.v, &ex), 0);
	while (ex.reason != EXIT_KICKED);
	pthread_join(t, NULL);
	assert_int_equal(soft_engine.get_state(g.v, &g.st), 0);
	assert_true(g.st.gpr[R_RAX] > 1000);
	assert_int_equal(g.st.rip, SG_CODE);
	assert_int_equal(insns_run(), (int64_t)(2 * g.st.gpr[R_RAX]));
	if (use_jit)
		assert_true(jit_stat("links") >= 1);
}

/* Read-modify-write of memory, 64- and 32-bit, with a register and an
 * immediate, and the flags of the last one read after it:
 *   mov qword [rsp-16], 5; mov ecx, 10; mov ebx, 7
 * top: add [rsp-16], rcx; sub dword [rsp-16], 1; sub ecx, 1; jnz top
 *   sub qword [rsp-16], 50; mov rax, [rsp-16]; setz bl; hlt
 *                                        -> 5 + 55 - 10 - 50 = 0, ZF */
static void test_rmw_memory(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0xc7, 0x44, 0x24, 0xf0, 0x05, 0x00, 0x00, 0x00, 0xb9,
				       0x0a, 0x00, 0x00, 0x00, 0xbb, 0x07, 0x00, 0x00, 0x00, 0x48,
				       0x01, 0x4c, 0x24, 0xf0, 0x83, 0x6c, 0x24, 0xf0, 0x01, 0x83,
				       0xe9, 0x01, 0x75, 0xf1, 0x48, 0x83, 0x6c, 0x24, 0xf0, 0x32,
				       0x48, 0x8b, 0x44, 0x24, 0xf0, 0x0f, 0x94, 0xc3, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 0);
	assert_int_equal(g.st.gpr[R_RBX], 1);
	assert_int_equal(sg_r64(&g, SG_STACK - 16), 0);
	if (use_jit)
		assert_true(jit_stat("insns") >= 8);
}

/* Rotates change CF and OF only (OF by the count-1 rule), the other flags
 * staying as the XOR left them:
 *   mov rax, 0xc000000000000001; xor ecx, ecx    ; ZF PF
 *   rol rax, 1     ; 0x8000000000000003, CF, not OF
 *   ror eax, 3     ; 0x60000000, not CF, OF
 *   pushfq; pop rbx; hlt */
static void test_rotate_flags(void **state)
{
	(void)state;
	static const uint8_t code[] = {0x48, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x00,
				       0x00, 0x00, 0xc0, 0x31, 0xc9, 0x48, 0xd1,
				       0xc0, 0xc1, 0xc8, 0x03, 0x9c, 0x5b, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 0x60000000);
	assert_int_equal(g.st.gpr[R_RBX] & 0x8c5, 0x844); /* OF ZF PF; not SF CF */
	if (use_jit)
		assert_true(jit_stat("insns") >= 4);
}

/* Loads, stores and a read-modify-write at a page's last bytes, exactly
 * fitting and crossing into the next page, which maps a frame that is not
 * the next one (so an access through the first page's host address alone
 * would read or write the wrong bytes). Each crossing access starts a
 * probe of its own: after the first in a block the interpreter goes on.
 * PD[1] -> page table at 0xa000, one to one but 0x201000 -> 0x300000 and
 * 0x203000 -> 0x301000;
 *   mov esi, 0x200ff8; mov ecx, 3
 * top: mov rax, [rsi]; mov edx, [rsi+4]; mov ebx, [rsi+6]; jmp 1f
 * 1: movzx edi, word [rsi+7]; jmp 2f
 * 2: mov [rsi+0x2000], rax; mov [rsi+0x2006], rbx; jmp 3f
 * 3: add [rsi+0x2005], ecx; sub ecx, 1; jnz top; hlt */
static void test_page_crossing(void **state)
{
	(void)state;
	static const uint8_t code[] = {
	    0xbe, 0xf8, 0x0f, 0x20, 0x00, 0xb9, 0x03, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x06, 0x8b,
	    0x56, 0x04, 0x8b, 0x5e, 0x06, 0xeb, 0x00, 0x0f, 0xb7, 0x7e, 0x07, 0xeb, 0x00, 0x48,
	    0x89, 0x86, 0x00, 0x20, 0x00, 0x00, 0x48, 0x89, 0x9e, 0x06, 0x20, 0x00, 0x00, 0xeb,
	    0x00, 0x01, 0x8e, 0x05, 0x20, 0x00, 0x00, 0x83, 0xe9, 0x01, 0x75, 0xd4, 0xf4};
	load(code, sizeof(code));
	for (uint64_t i = 0; i < 512; i++)
		sg_w64(&g, 0xa000 + i * 8, (0x200000 + (i << 12)) | 3);
	sg_w64(&g, 0xa000 + 8, 0x300000 | 3);
	sg_w64(&g, 0xa000 + 3 * 8, 0x301000 | 3);
	sg_w64(&g, SG_PD + 8, 0xa000 | 7);
	sg_w64(&g, 0x200ff8, 0x8877665544332211ull);
	sg_w64(&g, 0x201000, 0xeeeeeeeeeeeeeeeeull); /* the frame after, not mapped there */
	sg_w64(&g, 0x300000, 0x0f0e0d0c0b0a0908ull);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RAX], 0x8877665544332211ull);
	assert_int_equal(g.st.gpr[R_RDX], 0x88776655);
	assert_int_equal(g.st.gpr[R_RBX], 0x09088877);
	assert_int_equal(g.st.gpr[R_RDI], 0x0888);
	/* the qword, then rbx over its last two bytes, then + 1 at 0x202ffd */
	assert_int_equal(sg_r64(&g, 0x202ff8), 0x8877675544332211ull);
	assert_int_equal(sg_r64(&g, 0x301000), 0x0908);
	assert_int_equal(sg_r64(&g, 0x203000), 0);
	assert_int_equal(sg_r64(&g, 0x201000), 0xeeeeeeeeeeeeeeeeull);
	if (use_jit)
		assert_true(jit_stat("insns") >= 8);
}

/* Operands at the edges of each size: zero, one, the signed limits, carries. */
static const uint64_t edge[] = {0,
				1,
				2,
				5,
				0x7f,
				0x80,
				0x7fffffff,
				0x80000000,
				0xffffffff,
				0x100000000,
				0x7fffffffffffffff,
				0x8000000000000000,
				0xffffffffffffffff};
#define NEDGE ((int)(sizeof(edge) / sizeof(edge[0])))

/* The host's RFLAGS after a OP b at size 1, 2, 4 or 8, OP the group-1
 * operation alu (0 ADD, 1 OR, 4 AND, 5 SUB, 6 XOR, 7 CMP; not ADC or SBB),
 * and *res the destination after it. The stack pointer steps over the red
 * zone first, where the compiler may keep locals that PUSHFQ would hit. */
static uint64_t host_alu(int alu, int size, uint64_t a, uint64_t b, uint64_t *res)
{
	uint64_t fl = 0;
#define HOST_OP(insn, cons, type)                                                                  \
	do {                                                                                       \
		type x = (type)a, y = (type)b;                                                     \
		__asm__ volatile("lea -128(%%rsp), %%rsp\n\t" insn " %2, %1\n\t"                   \
				 "pushfq\n\tpop %0\n\tlea 128(%%rsp), %%rsp"                       \
				 : "=r"(fl), "+" cons(x)                                           \
				 : cons(y)                                                         \
				 : "cc");                                                          \
		*res = x;                                                                          \
	} while (0)
#define HOST_SIZES(op)                                                                             \
	do {                                                                                       \
		if (size == 1)                                                                     \
			HOST_OP(op "b", "q", uint8_t);                                             \
		else if (size == 2)                                                                \
			HOST_OP(op "w", "r", uint16_t);                                            \
		else if (size == 4)                                                                \
			HOST_OP(op "l", "r", uint32_t);                                            \
		else                                                                               \
			HOST_OP(op "q", "r", uint64_t);                                            \
	} while (0)
	switch (alu) {
	case 0:
		HOST_SIZES("add");
		break;
	case 1:
		HOST_SIZES("or");
		break;
	case 4:
		HOST_SIZES("and");
		break;
	case 5:
		HOST_SIZES("sub");
		break;
	case 6:
		HOST_SIZES("xor");
		break;
	case 7:
		HOST_SIZES("cmp");
		break;
	default:
		fail_msg("host_alu: no operation %d", alu);
	}
#undef HOST_SIZES
#undef HOST_OP
	return fl;
}

static bool host_cond(uint64_t fl, unsigned cc)
{
	bool cf = fl & 1, pf = fl & 4, zf = fl & 0x40, sf = fl & 0x80, of = fl & 0x800, r;
	switch (cc >> 1) {
	case 0:
		r = of;
		break;
	case 1:
		r = cf;
		break;
	case 2:
		r = zf;
		break;
	case 3:
		r = cf || zf;
		break;
	case 4:
		r = sf;
		break;
	case 5:
		r = pf;
		break;
	case 6:
		r = sf != of;
		break;
	default:
		r = zf || sf != of;
		break;
	}
	return r ^ (cc & 1);
}

/* Operations whose flags are dead, translated in the cached registers: MOV
 * of a register and of immediates, ADD, XOR, OR, AND with a register or an
 * immediate, SHL, SHR, SAR, at 32 bits (zero-extending) and 64; then a CMP
 * whose flags SETcc reads.
 *   mov rax, -1; mov rbx, -1; mov rdx, -1; mov ecx, ebx; add eax, 1
 *   xor ebx, 0x0f0f0f0f; shr rcx, 4; sub rdx, rcx; shl edx, 8
 *   mov esi, 0x12345678; mov r8, rsi; or r8d, 0xff000000; sar r8d, 4
 *   and rsi, -16; cmp rax, rbx; setb r9b; hlt */
static void test_dead_flags_in_place(void **state)
{
	(void)state;
	static const uint8_t code[] = {
	    0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0xc7, 0xc3, 0xff, 0xff, 0xff,
	    0xff, 0x48, 0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff, 0x89, 0xd9, 0x83, 0xc0, 0x01,
	    0x81, 0xf3, 0x0f, 0x0f, 0x0f, 0x0f, 0x48, 0xc1, 0xe9, 0x04, 0x48, 0x29, 0xca,
	    0xc1, 0xe2, 0x08, 0xbe, 0x78, 0x56, 0x34, 0x12, 0x49, 0x89, 0xf0, 0x41, 0x81,
	    0xc8, 0x00, 0x00, 0x00, 0xff, 0x41, 0xc1, 0xf8, 0x04, 0x48, 0x83, 0xe6, 0xf0,
	    0x48, 0x39, 0xd8, 0x41, 0x0f, 0x92, 0xc1, 0xf4};
	load(code, sizeof(code));
	assert_int_equal(sg_run(&g), EXIT_HLT);
	static const struct {
		int reg;
		uint64_t v;
	} want[] = {{R_RAX, 0}, {R_RBX, 0xf0f0f0f0}, {R_RCX, 0x0fffffff},
		    {R_RDX, 0}, {R_RSI, 0x12345670}, {R_R8, 0xfff34567},
		    {R_R9, 1}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(g.st.gpr[want[i].reg], want[i].v);
	if (use_jit)
		assert_true(jit_stat("insns") >= 16);
}

/* Readers of the flags a SUB set, with translated code between that
 * changes the host's: the CMOVcc's own address computation and TLB probe,
 * then a LEA (base + index, here 0) before the Jcc.
 *   mov ecx, 3; xor ebx, ebx; xor edi, edi; mov rdx, -1; mov esi, 1
 * top: add ebx, 1; sub ecx, 1; cmovz edi, [rdx + rsi]; lea rax, [rdx + rsi]
 *   jnz top; hlt           -> ebx = 3, edi = the dword at 0 (moved at ecx = 0) */
static void test_flags_across_code(void **state)
{
	(void)state;
	static const uint8_t code[] = {0xb9, 0x03, 0x00, 0x00, 0x00, 0x31, 0xdb, 0x31, 0xff, 0x48,
				       0xc7, 0xc2, 0xff, 0xff, 0xff, 0xff, 0xbe, 0x01, 0x00, 0x00,
				       0x00, 0x83, 0xc3, 0x01, 0x83, 0xe9, 0x01, 0x0f, 0x44, 0x3c,
				       0x32, 0x48, 0x8d, 0x04, 0x32, 0x75, 0xf0, 0xf4};
	load(code, sizeof(code));
	sg_w64(&g, 0, 0x1234);
	assert_int_equal(sg_run(&g), EXIT_HLT);
	assert_int_equal(g.st.gpr[R_RBX], 3);
	assert_int_equal(g.st.gpr[R_RDI], 0x1234);
	assert_int_equal(g.st.gpr[R_RAX], 0);
	if (use_jit)
		assert_true(jit_stat("insns") >= 5);
}

/* ADD, OR, AND, SUB, XOR and CMP of 8, 16, 32 and 64 bits on edge values,
 * against the host: the destination (its other bits kept at 8 and 16 bits,
 * cleared above 32 by a 32-bit write, CMP writing nothing) and the flags
 * PUSHFQ sees (AF but after the logic operations, which leave it undefined).
 *   mov rax, a; mov rcx, b; op al/ax/eax/rax, cl/cx/ecx/rcx; pushfq; pop rbx; hlt */
static void test_alu_sizes(void **state)
{
	(void)state;
	static const int alus[] = {0, 1, 4, 5, 6, 7};
	for (int op = 0; op < 6; op++)
		for (int size = 1; size <= 8; size *= 2)
			for (int i = 0; i < NEDGE; i++)
				for (int j = 0; j < NEDGE; j++) {
					int alu = alus[op];
					uint64_t a = edge[i], b = edge[j], res;
					uint8_t code[40], *p = code;
					*p++ = 0x48, *p++ = 0xb8;
					memcpy(p, &a, 8), p += 8;
					*p++ = 0x48, *p++ = 0xb9;
					memcpy(p, &b, 8), p += 8;
					if (size == 2)
						*p++ = 0x66;
					if (size == 8)
						*p++ = 0x48;
					*p++ = (uint8_t)(alu << 3 | (size > 1));
					*p++ = 0xc8;
					*p++ = 0x9c, *p++ = 0x5b, *p++ = 0xf4;
					load(code, (size_t)(p - code));
					restart();
					assert_int_equal(sg_run(&g), EXIT_HLT);
					uint64_t fl = host_alu(alu, size, a, b, &res);
					uint64_t keep = size == 1   ? ~0xffull
							: size == 2 ? ~0xffffull
								    : 0;
					uint64_t want = alu == 7 ? a : (a & keep) | res;
					uint64_t mask =
					    alu == 1 || alu == 4 || alu == 6 ? 0x8c5 : 0x8d5;
					if (g.st.gpr[R_RAX] != want ||
					    (g.st.gpr[R_RBX] & mask) != (fl & mask))
						fail_msg(
						    "op %d size %d %#llx, %#llx: rax %#llx flags "
						    "%#llx, want %#llx %#llx",
						    alu, size, (unsigned long long)a,
						    (unsigned long long)b,
						    (unsigned long long)g.st.gpr[R_RAX],
						    (unsigned long long)(g.st.gpr[R_RBX] & mask),
						    (unsigned long long)want,
						    (unsigned long long)(fl & mask));
				}
	if (use_jit)
		assert_true(jit_stat("insns") > 1000);
}

/* Every condition code after ADD, SUB and AND of three sizes on edge values,
 * against the host, read by each kind of reader: the translator evaluates a
 * Jcc, SETcc or CMOVcc from the flag-setting operation it translated in the
 * same block.
 *   mov rax, a; mov rcx, b; mov ebx, 0x100; mov edx, 1; op rax/eax/al, rcx/ecx/cl
 *   jcc: jcc taken; mov ebx, 2; hlt; taken: mov ebx, 1; hlt     -> 1 taken
 *   setcc: setcc bl; hlt                                          -> 0x101 set
 *   cmov: cmovcc ebx, edx; hlt                                    -> 1 moved */
static void test_jcc_conditions(void **state)
{
	(void)state;
	static const uint8_t ops[] = {0x01, 0x29, 0x21}; /* add, sub, and rax, rcx */
	static const int alus[] = {0, 5, 4};
	for (int form = 0; form < 3; form++)
		for (int op = 0; op < 3; op++)
			for (int size = 1; size <= 8; size = size == 1 ? 4 : size + 4)
				for (int i = 0; i < NEDGE; i++)
					for (int j = 0; j < NEDGE; j += 2)
						for (unsigned cc = 0; cc < 16; cc++) {
							uint64_t a = edge[i],
								 b = edge[(i + j) % NEDGE];
							uint8_t code[60], *p = code;
							*p++ = 0x48, *p++ = 0xb8;
							memcpy(p, &a, 8), p += 8;
							*p++ = 0x48, *p++ = 0xb9;
							memcpy(p, &b, 8), p += 8;
							static const uint8_t init[] = {
							    0xbb, 0, 1, 0, 0, 0xba, 1, 0, 0, 0};
							memcpy(p, init, sizeof(init)),
							    p += sizeof(init);
							if (size == 8)
								*p++ = 0x48;
							/* add, sub, and: 00, 28, 20 al, cl */
							*p++ = (uint8_t)(ops[op] - (size == 1)),
							*p++ = 0xc8;
							if (form == 0) {
								static const uint8_t tail[] = {
								    0xbb, 2, 0, 0, 0, 0xf4,
								    0xbb, 1, 0, 0, 0, 0xf4};
								*p++ = (uint8_t)(0x70 | cc),
								*p++ = 6;
								memcpy(p, tail, sizeof(tail));
								p += sizeof(tail);
							} else {
								*p++ = 0x0f;
								*p++ =
								    (uint8_t)((form == 1 ? 0x90
											 : 0x40) |
									      cc);
								*p++ = form == 1 ? 0xc3 : 0xda;
								*p++ = 0xf4;
							}
							load(code, (size_t)(p - code));
							restart();
							assert_int_equal(sg_run(&g), EXIT_HLT);
							uint64_t res;
							bool yes = host_cond(
							    host_alu(alus[op], size, a, b, &res),
							    cc);
							static const uint64_t want[3][2] = {
							    {2, 1}, {0x100, 0x101}, {0x100, 1}};
							if (g.st.gpr[R_RBX] != want[form][yes])
								fail_msg(
								    "form %d op %d size %d %#llx, "
								    "%#llx cc %u",
								    form, op, size,
								    (unsigned long long)a,
								    (unsigned long long)b, cc);
						}
	if (use_jit)
		assert_true(jit_stat("insns") > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_loop_and_carry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_divide_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reserved_bits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cr3_reserved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rf_in_frames, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_noncanonical_bases, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_compat_mode_opcodes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mca_msrs_absent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_opcodes_invalid_in_64bit_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_io_and_hypercall, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mmio, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mmio_several, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_invalidation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tlb_invalidation_4k, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cr3_write_revalidates_local_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cr3_write_keeps_global_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_syscall_sysret, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_privileged_in_user_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_triple_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sse_x87, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_to_long_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_real_mode_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_protected_mode_exception, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cmpxchg16b, setup, teardown),
	    cmocka_unit_test(test_smp_lock_atomicity),
	    cmocka_unit_test(test_smp_cmpxchg_is_one_access),
	    cmocka_unit_test(test_cross_modifying_code),
	    cmocka_unit_test_setup_teardown(test_kick_wakes_hlt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kick_ends_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loop_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kick_ends_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ret_two_sites, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smc_linked_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rmw_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page_crossing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rotate_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smc_same_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smc_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_smc_page_crossing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jit_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_registers_at_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jcc_conditions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_alu_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_across_code, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_flags_in_place, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_call_ret, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_at_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flags_at_fault_in_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deferred_flags_at_fault, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fault_in_chained_block, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xsave_in_use, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xrstor_bad_mxcsr, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xsave_ts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xsetbv_user, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xsave_compat, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_xsave_alignment_linear, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_xstate_bv, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("interpreter", tests, NULL, NULL);
	use_jit = true;
	return failed + cmocka_run_group_tests_name("translator", tests, NULL, NULL);
}
