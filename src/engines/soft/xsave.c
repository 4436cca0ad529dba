/* The XSAVE feature set for the state this CPU has: x87 (component 0) and SSE
 * (component 1), in the standard format, whose legacy region is the FXSAVE
 * image (x87.c). XGETBV/XSETBV, XSAVE, XSAVEOPT, XRSTOR, and CPUID leaf 0xD.
 * AVX is not implemented, so XCR0 offers nothing above SSE
 * (docs/soft-engine.md says why). */
#include <string.h>

#include "engines/soft/soft.h"

#define SEG(d) ((d)->seg >= 0 ? (d)->seg : (d)->ea_seg)

/* Where each component lives in the legacy region. MXCSR belongs to SSE but,
 * unlike the XMM registers, XRSTOR loads it even when XSTATE_BV[1] is clear.
 * Outside 64-bit mode XMM8-XMM15 are neither saved nor restored (len32). */
static const struct {
	uint16_t off, len, len32;
	uint64_t comp;
	bool always_loaded;
} legacy[] = {
    {0, 24, 24, XSTATE_X87, false},	/* FCW FSW FTW FOP FIP FDP */
    {24, 8, 8, XSTATE_SSE, true},	/* MXCSR, MXCSR_MASK */
    {32, 128, 128, XSTATE_X87, false},	/* ST0-ST7 */
    {160, 256, 128, XSTATE_SSE, false}, /* XMM0-XMM15 */
};

/* XINUSE: the components not in their initial configuration (SDM Vol. 1
 * 13.6). MXCSR does not count. */
uint64_t xstate_in_use(const struct soft_cpu *c)
{
	static const xmm_t zero[16];
	uint64_t in_use = 0;
	bool st_zero = true;
	for (int i = 0; i < 8; i++)
		st_zero = st_zero && !memcmp(&c->st[i], zero, 10);
	if (c->fcw != 0x37f || c->fsw || c->ftop || c->ftw_empty != 0xff || !st_zero)
		in_use |= XSTATE_X87;
	if (memcmp(c->xmm, zero, sizeof(c->xmm)))
		in_use |= XSTATE_SSE;
	return in_use;
}

/* Load the components in rfbm from a standard-format image whose header has
 * been checked: those with XSTATE_BV clear get their initial configuration.
 * m64: as in 64-bit mode, all sixteen XMM registers. */
void xrstor_image(struct soft_cpu *c, const uint8_t *img, uint64_t rfbm, bool m64)
{
	static const uint8_t init[512] = {[0] = 0x7f, [1] = 0x03}; /* FCW 0x37f, all empty */
	uint64_t bv = load_n(img + XSAVE_HEADER, 8);
	uint8_t cur[512];
	fxsave(c, cur);
	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
		if (rfbm & legacy[i].comp) {
			bool from_img = (bv & legacy[i].comp) || legacy[i].always_loaded;
			memcpy(cur + legacy[i].off, (from_img ? img : init) + legacy[i].off,
			       m64 ? legacy[i].len : legacy[i].len32);
		}
	fxrstor(c, cur);
}

/* #UD, #NM and #GP checks shared by XSAVE, XSAVEOPT and XRSTOR. */
static uint64_t xsave_checks(struct soft_cpu *c, struct insn *d)
{
	if (!(c->cr4 & CR4_OSXSAVE) || d->lock || d->rep || d->opsize_prefix)
		raise_ud(c);
	if (c->cr0 & CR0_TS)
		raise_exc(c, EXC_NM, false, 0);
	int acc = (d->reg & 7) == 5 ? ACC_READ : ACC_WRITE;
	if (seg_lin(c, SEG(d), d->ea, XSAVE_SIZE, acc) & 63) /* the linear address */
		raise_gp(c, 0);
	return ((c->r[R_RDX] << 32) | (uint32_t)c->r[R_RAX]) & c->xcr0;
}

/* 0F AE /4 XSAVE, /5 XRSTOR, /6 XSAVEOPT, with or without REX.W: the x87
 * pointers are saved as zero, so the 64-bit forms write the same image. */
void exec_xsave(struct soft_cpu *c, struct insn *d)
{
	uint64_t rfbm = xsave_checks(c, d);
	int seg = SEG(d);
	uint8_t img[XSAVE_SIZE];
	if ((d->reg & 7) != 5) {
		/* XSAVEOPT may skip unmodified components; saving them is exact too. */
		fxsave(c, img);
		for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++) {
			if (!(rfbm & legacy[i].comp))
				continue;
			int len = c->mode == 8 ? legacy[i].len : legacy[i].len32;
			for (int o = legacy[i].off; o < legacy[i].off + len; o += 8)
				mem_write(c, seg, d->ea + o, 8, load_n(img + o, 8));
		}
		uint64_t bv = mem_read(c, seg, d->ea + XSAVE_HEADER, 8);
		bv = (bv & ~rfbm) | (xstate_in_use(c) & rfbm);
		mem_write(c, seg, d->ea + XSAVE_HEADER, 8, bv);
		return;
	}
	for (int o = 0; o < XSAVE_SIZE; o += 8)
		store_n(img + o, 8, mem_read(c, seg, d->ea + o, 8));
	/* Standard form: XSTATE_BV within XCR0, XCOMP_BV and the next 8 bytes 0. */
	if ((load_n(img + XSAVE_HEADER, 8) & ~c->xcr0) || load_n(img + XSAVE_HEADER + 8, 8) ||
	    load_n(img + XSAVE_HEADER + 16, 8))
		raise_gp(c, 0);
	if ((rfbm & XSTATE_SSE) && (load_n(img + 24, 4) & 0xffff0000u))
		raise_gp(c, 0);
	xrstor_image(c, img, rfbm, c->mode == 8);
}

/* 0F 01 D0 XGETBV (ECX 0: XCR0, 1: XINUSE & XCR0) and 0F 01 D1 XSETBV. */
void exec_xcr(struct soft_cpu *c, struct insn *d, bool write)
{
	if (!(c->cr4 & CR4_OSXSAVE) || d->lock || d->rep || d->opsize_prefix)
		raise_ud(c);
	uint32_t n = (uint32_t)c->r[R_RCX];
	if (!write) {
		if (n > 1)
			raise_gp(c, 0);
		uint64_t v = n ? xstate_in_use(c) & c->xcr0 : c->xcr0;
		c->r[R_RAX] = (uint32_t)v;
		c->r[R_RDX] = v >> 32;
		return;
	}
	require_cpl0(c);
	trap(c, TRAP_XSETBV);
	uint64_t v = (c->r[R_RDX] << 32) | (uint32_t)c->r[R_RAX];
	/* x87 must stay enabled; AVX (which needs SSE) and above are unsupported. */
	if (n != 0 || !(v & XSTATE_X87) || (v & ~XCR0_SUPPORTED))
		raise_gp(c, 0);
	c->xcr0 = v;
}

/* CPUID leaf 0xD. Sizes: the legacy region and the header, as no component
 * above SSE exists. */
void xsave_cpuid(uint32_t sub, uint32_t r[4])
{
	switch (sub) {
	case 0:
		r[0] = (uint32_t)XCR0_SUPPORTED;
		r[1] = XSAVE_SIZE; /* for the components enabled in XCR0 */
		r[2] = XSAVE_SIZE; /* for all supported ones */
		break;
	case 1:
		r[0] = (1u << 0) | (1u << 2); /* XSAVEOPT, XGETBV with ECX = 1 */
		break;
	}
}
