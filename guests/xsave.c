/* xsave: the XSAVE feature set for x87 and SSE state.
 *   - CPUID.1:ECX.XSAVE set, OSXSAVE following CR4.OSXSAVE; XGETBV, XSETBV and
 *     XSAVE raise #UD while CR4.OSXSAVE is clear;
 *   - XSETBV #GP: ECX != 0, x87 bit clear, AVX without SSE, unsupported bits;
 *     XGETBV #GP for ECX = 2; CPUID 0xD.0 size for XCR0 = x87|SSE is 576;
 *   - XSAVE/XRSTOR round trip of x87 + SSE state (and the REX.W forms); the
 *     image has the FXSAVE layout, XSTATE_BV, bytes 416-511 untouched;
 *   - the requested-feature bitmap: components outside EDX:EAX are neither
 *     saved nor restored, their XSTATE_BV bits are kept;
 *   - XRSTOR with XSTATE_BV clear puts components in their initial state
 *     (MXCSR is still loaded);
 *   - #GP on a misaligned area, XCOMP_BV or reserved header bytes set,
 *     XSTATE_BV outside XCR0. (A reserved MXCSR bit in the image and CR0.TS
 *     are unit tests: QEMU 7.2's TCG raises neither #GP nor #NM for them.) */
#include "guest.h"

const char guest_name[] = "xsave";

#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_OSXSAVE    (1ull << 18)
#define VEC_UD	       6
#define VEC_GP	       13
#define HDR	       512 /* XSAVE header: XSTATE_BV, XCOMP_BV, reserved */
#define AREA	       1024

static uint8_t area[4][AREA] __attribute__((aligned(64)));
static uint8_t xmm_out[256] __attribute__((aligned(16)));
static uint8_t pattern[256] __attribute__((aligned(16)));

/* The fault handler resumes at fixup and records the vector in caught. */
static volatile uint64_t fixup;
static volatile int caught;

static void on_fault(struct trap_frame *f)
{
	if (!fixup)
		fail("unexpected vector %lu at rip %#lx", f->vector, f->rip);
	caught = (int)f->vector;
	f->rip = fixup;
	fixup = 0;
}

/* Run one instruction with EAX, ECX, EDX and RDI set; returns the vector it
 * raised or -1. EAX:EDX come back in *out for XGETBV. */
#define TRY(insn, rdi, ecx, v, out)                                                                \
	({                                                                                         \
		uint32_t lo_ = (uint32_t)(v), hi_ = (uint32_t)((uint64_t)(v) >> 32);               \
		caught = -1;                                                                       \
		__asm__ volatile("leaq 1f(%%rip), %%r11\n\tmovq %%r11, %[fx]\n\t" insn "\n1:"      \
				 : [fx] "=m"(fixup), "+a"(lo_), "+d"(hi_)                          \
				 : "c"(ecx), "D"(rdi)                                              \
				 : "r11", "memory");                                               \
		fixup = 0;                                                                         \
		*(out) = ((uint64_t)hi_ << 32) | lo_;                                              \
		caught;                                                                            \
	})

static uint64_t scratch;

static int xgetbv_try(uint32_t ecx, uint64_t *v)
{
	return TRY("xgetbv", 0, ecx, 0, v);
}

static int xsetbv_try(uint32_t ecx, uint64_t v)
{
	return TRY("xsetbv", 0, ecx, v, &scratch);
}

static int xsave_try(void *p, uint64_t rfbm)
{
	return TRY("xsave (%%rdi)", p, 0, rfbm, &scratch);
}

static int xrstor_try(const void *p, uint64_t rfbm)
{
	return TRY("xrstor (%%rdi)", p, 0, rfbm, &scratch);
}

static uint64_t xcr0(void)
{
	uint64_t v;
	if (xgetbv_try(0, &v) >= 0)
		fail("xgetbv 0 faulted");
	return v;
}

static void xsave(void *p, uint64_t rfbm)
{
	if (xsave_try(p, rfbm) >= 0)
		fail("xsave faulted: vector %d", caught);
}

static void xrstor(const void *p, uint64_t rfbm)
{
	if (xrstor_try(p, rfbm) >= 0)
		fail("xrstor faulted: vector %d", caught);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void expect_vec(int got, int want, const char *what)
{
	if (got != want)
		fail("%s: vector %d, expected %d", what, got, want);
}

/* XMM0-XMM15 from and to memory (256 bytes). */
static void xmm_load(const uint8_t *p)
{
	__asm__ volatile("movdqu 0(%0), %%xmm0; movdqu 16(%0), %%xmm1; movdqu 32(%0), %%xmm2\n\t"
			 "movdqu 48(%0), %%xmm3; movdqu 64(%0), %%xmm4; movdqu 80(%0), %%xmm5\n\t"
			 "movdqu 96(%0), %%xmm6; movdqu 112(%0), %%xmm7; movdqu 128(%0), %%xmm8\n\t"
			 "movdqu 144(%0), %%xmm9; movdqu 160(%0), %%xmm10\n\t"
			 "movdqu 176(%0), %%xmm11; movdqu 192(%0), %%xmm12\n\t"
			 "movdqu 208(%0), %%xmm13; movdqu 224(%0), %%xmm14\n\t"
			 "movdqu 240(%0), %%xmm15" ::"r"(p)
			 : "memory");
}

static void xmm_store(uint8_t *p)
{
	__asm__ volatile("movdqu %%xmm0, 0(%0); movdqu %%xmm1, 16(%0); movdqu %%xmm2, 32(%0)\n\t"
			 "movdqu %%xmm3, 48(%0); movdqu %%xmm4, 64(%0); movdqu %%xmm5, 80(%0)\n\t"
			 "movdqu %%xmm6, 96(%0); movdqu %%xmm7, 112(%0); movdqu %%xmm8, 128(%0)\n\t"
			 "movdqu %%xmm9, 144(%0); movdqu %%xmm10, 160(%0)\n\t"
			 "movdqu %%xmm11, 176(%0); movdqu %%xmm12, 192(%0)\n\t"
			 "movdqu %%xmm13, 208(%0); movdqu %%xmm14, 224(%0)\n\t"
			 "movdqu %%xmm15, 240(%0)" ::"r"(p)
			 : "memory");
}

static uint16_t fcw(void)
{
	uint16_t v;
	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static uint16_t fsw(void)
{
	uint16_t v;
	__asm__ volatile("fnstsw %0" : "=m"(v));
	return v;
}

static uint32_t mxcsr(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void set_mxcsr(uint32_t v)
{
	__asm__ volatile("ldmxcsr %0" ::"m"(v));
}

/* x87: FCW 0x0f7f, ST0 = 1, ST1 = pi (TOP 6); MXCSR 0x3f80; XMM = pattern. */
static void load_state(void)
{
	uint16_t cw = 0x0f7f;
	__asm__ volatile("fninit; fldcw %0; fldpi; fld1" ::"m"(cw));
	set_mxcsr(0x3f80);
	xmm_load(pattern);
}

static void clobber_state(void)
{
	static const uint8_t zero[256] __attribute__((aligned(16)));
	__asm__ volatile("fninit");
	set_mxcsr(0x1f80);
	xmm_load(zero);
}

static void check_range(const uint8_t *p, int from, int to, uint8_t v, const char *what)
{
	for (int i = from; i < to; i++)
		if (p[i] != v)
			fail("%s: byte %d is %#x, expected %#x", what, i, p[i], v);
}

static void prepare(uint8_t *p, uint64_t xstate_bv)
{
	memset(p, 0xcc, AREA);
	memset(p + HDR, 0, 64);
	wr64(p + HDR, xstate_bv);
}

static void check_image(const uint8_t *p, const char *what)
{
	uint16_t cw, sw;
	memcpy(&cw, p, 2);
	memcpy(&sw, p + 2, 2);
	if (cw != 0x0f7f || ((sw >> 11) & 7) != 6 || p[4] != 0xc0)
		fail("%s: FCW %#x FSW %#x FTW %#x, expected 0xf7f, TOP 6, 0xc0", what, cw, sw,
		     p[4]);
	if (rd64(p + 32) != 0x8000000000000000ull || (rd64(p + 40) & 0xffff) != 0x3fff)
		fail("%s: ST0 is not 1.0", what);
	if ((uint32_t)rd64(p + 24) != 0x3f80)
		fail("%s: MXCSR %#x, expected 0x3f80", what, (uint32_t)rd64(p + 24));
	if (memcmp(p + 160, pattern, 256))
		fail("%s: XMM registers differ", what);
	check_range(p, 416, 512, 0xcc, what);
	if ((rd64(p + HDR) & 3) != 3 || rd64(p + HDR + 8))
		fail("%s: XSTATE_BV %#lx XCOMP_BV %#lx", what, rd64(p + HDR), rd64(p + HDR + 8));
}

static void test_disabled(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 26)))
		fail("CPUID.1:ECX.XSAVE is clear");
	if (r[2] & (1u << 27))
		fail("CPUID.1:ECX.OSXSAVE set while CR4.OSXSAVE is clear");
	uint64_t v;
	expect_vec(xgetbv_try(0, &v), VEC_UD, "xgetbv with CR4.OSXSAVE clear");
	expect_vec(xsetbv_try(0, 3), VEC_UD, "xsetbv with CR4.OSXSAVE clear");
	expect_vec(xsave_try(area[0], 3), VEC_UD, "xsave with CR4.OSXSAVE clear");
	kprintf("xsave: #UD while CR4.OSXSAVE is clear\n");
}

static void test_xcr0(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 27)))
		fail("CPUID.1:ECX.OSXSAVE clear after setting CR4.OSXSAVE");
	if (xcr0() != 1)
		fail("XCR0 after reset is %#lx, expected 1", xcr0());
	cpuid(0xd, 0, r);
	uint64_t supported = ((uint64_t)r[3] << 32) | r[0];
	if ((supported & 3) != 3)
		fail("CPUID 0xD.0 supports %#lx, no x87|SSE", supported);
	if (xsetbv_try(0, 3) >= 0)
		fail("xsetbv 3: vector %d", caught);
	if (xcr0() != 3)
		fail("XCR0 is %#lx after xsetbv 3", xcr0());
	cpuid(0xd, 0, r);
	if (r[1] != 576 || r[2] < 576)
		fail("CPUID 0xD.0 sizes %u/%u, expected 576 and at least 576", r[1], r[2]);

	uint64_t unsupported = ~supported & ~3ull;
	uint64_t low = unsupported & -unsupported;
	expect_vec(xsetbv_try(1, 3), VEC_GP, "xsetbv ecx=1");
	expect_vec(xsetbv_try(0, 0), VEC_GP, "xsetbv 0");
	expect_vec(xsetbv_try(0, 2), VEC_GP, "xsetbv without x87");
	expect_vec(xsetbv_try(0, 5), VEC_GP, "xsetbv AVX without SSE");
	expect_vec(xsetbv_try(0, 3 | low), VEC_GP, "xsetbv unsupported bit");
	if (xcr0() != 3)
		fail("XCR0 is %#lx after the faulting xsetbv", xcr0());
	uint64_t v;
	expect_vec(xgetbv_try(2, &v), VEC_GP, "xgetbv ecx=2");
	cpuid(0xd, 1, r);
	if (r[0] & (1u << 2)) {
		if (xgetbv_try(1, &v) >= 0 || (v & ~3ull))
			fail("xgetbv 1: vector %d, value %#lx", caught, v);
	}
	kprintf("xsave: XCR0 %#lx of %#lx, faults of XSETBV/XGETBV ok\n", xcr0(), supported);
}

static void test_round_trip(void)
{
	uint8_t *a = area[0], *b = area[1];
	prepare(a, 0);
	load_state();
	xsave(a, ~0ull);
	check_image(a, "xsave");
	clobber_state();
	xrstor(a, ~0ull);
	xmm_store(xmm_out);
	if (memcmp(xmm_out, pattern, 256))
		fail("XMM registers after xrstor differ");
	if (fcw() != 0x0f7f || ((fsw() >> 11) & 7) != 6 || mxcsr() != 0x3f80)
		fail("after xrstor: FCW %#x FSW %#x MXCSR %#x", fcw(), fsw(), mxcsr());
	prepare(b, 0);
	xsave(b, 3);
	check_image(b, "xsave after xrstor");
	if (memcmp(a, b, 416))
		fail("legacy regions of two saves of the same state differ");

	clobber_state();
	prepare(b, 0);
	if (TRY("xrstor64 (%%rdi)", a, 0, 3, &scratch) >= 0 ||
	    TRY("xsave64 (%%rdi)", b, 0, 3, &scratch) >= 0)
		fail("xrstor64/xsave64 faulted: vector %d", caught);
	check_image(b, "xsave64 after xrstor64");

	uint32_t r[4];
	cpuid(0xd, 1, r);
	if (r[0] & 1) {
		prepare(b, 0);
		if (TRY("xsaveopt (%%rdi)", b, 0, 3, &scratch) >= 0)
			fail("xsaveopt faulted: vector %d", caught);
		check_image(b, "xsaveopt");
	}
	kprintf("xsave: x87+SSE round trip ok\n");
}

static void test_partial(void)
{
	uint8_t *a = area[0], *c = area[2];
	/* x87 only: SSE bytes untouched, XSTATE_BV[1] kept. */
	prepare(c, 2);
	xsave(c, 1);
	check_range(c, 24, 32, 0xcc, "x87-only xsave: MXCSR");
	check_range(c, 160, 416, 0xcc, "x87-only xsave: XMM");
	if (memcmp(c, a, 24) || memcmp(c + 32, a + 32, 128))
		fail("x87-only xsave: x87 region differs");
	if ((rd64(c + HDR) & 3) != 3)
		fail("x87-only xsave: XSTATE_BV %#lx, expected bits 0 and 1", rd64(c + HDR));

	/* SSE only from an image with other x87 and XMM contents. */
	memcpy(c, a, AREA);
	uint16_t cw = 0x037f;
	memcpy(c, &cw, 2);
	for (int i = 0; i < 256; i++)
		c[160 + i] = (uint8_t)~pattern[i];
	xrstor(c, 2);
	xmm_store(xmm_out);
	if (fcw() != 0x0f7f)
		fail("SSE-only xrstor changed FCW to %#x", fcw());
	if (memcmp(xmm_out, c + 160, 256))
		fail("SSE-only xrstor did not load the XMM registers");
	xrstor(a, 3);
	kprintf("xsave: requested-feature bitmap ok\n");
}

static void test_init(void)
{
	uint8_t *d = area[3];
	load_state();
	memset(d, 0x5a, AREA);
	memset(d + HDR, 0, 64);
	wr64(d + 24, 0x9f80); /* MXCSR (FZ), loaded although XSTATE_BV[1] = 0 */
	xrstor(d, 3);
	xmm_store(xmm_out);
	check_range(xmm_out, 0, 256, 0, "XMM after xrstor of the initial state");
	uint8_t env[28];
	__asm__ volatile("fnstenv %0" : "=m"(env));
	uint16_t tw;
	memcpy(&tw, env + 8, 2);
	if (fcw() != 0x037f || fsw() != 0 || tw != 0xffff)
		fail("x87 after xrstor of the initial state: FCW %#x FSW %#x FTW %#x", fcw(), fsw(),
		     tw);
	if (mxcsr() != 0x9f80)
		fail("MXCSR after xrstor of the initial state: %#x, expected 0x9f80", mxcsr());
	/* A component reported in use must have been written with its contents. */
	uint8_t *e = area[2];
	prepare(e, 0);
	xsave(e, 3);
	uint64_t bv = rd64(e + HDR);
	if (bv & 2)
		check_range(e, 160, 416, 0, "XMM image of the initial state");
	kprintf("xsave: initial state restored, XSTATE_BV %#lx afterwards\n", bv & 3);
	set_mxcsr(0x1f80);
}

static void test_faults(void)
{
	uint8_t *a = area[0], *c = area[2];
	load_state();
	prepare(a, 0);
	xsave(a, 3);
	expect_vec(xsave_try(a + 8, 3), VEC_GP, "xsave misaligned");
	expect_vec(xrstor_try(a + 16, 3), VEC_GP, "xrstor misaligned");
	static const struct {
		int off;
		uint64_t v;
		const char *what;
	} bad[] = {
	    {HDR + 8, 1, "xrstor with XCOMP_BV set"},
	    {HDR + 16, 1, "xrstor with reserved header byte 16"},
	    {HDR + 23, 0x80, "xrstor with reserved header byte 23"},
	    {HDR, 7, "xrstor with XSTATE_BV outside XCR0"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memcpy(c, a, AREA);
		uint64_t old = rd64(c + bad[i].off);
		wr64(c + bad[i].off, old | bad[i].v);
		set_mxcsr(0x1f80);
		expect_vec(xrstor_try(c, 3), VEC_GP, bad[i].what);
		if (mxcsr() != 0x1f80)
			fail("%s changed MXCSR to %#x", bad[i].what, mxcsr());
	}
	kprintf("xsave: #GP cases ok\n");
}

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	for (int i = 0; i < 256; i++)
		pattern[i] = (uint8_t)(i * 7 + 3);
	trap_set_handler(VEC_UD, on_fault);
	trap_set_handler(VEC_GP, on_fault);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
	test_disabled();
	write_cr4(read_cr4() | CR4_OSXSAVE);
	test_xcr0();
	test_round_trip();
	test_partial();
	test_init();
	test_faults();
	return 0;
}
