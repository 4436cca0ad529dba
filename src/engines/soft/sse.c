/* SSE, SSE2, SSE3 and MMX. All of these are innocuous: the interpreter runs
 * each lane operation with the host's own SIMD instruction (every x86-64 host
 * has SSE2 and SSE3-era hosts are universal), under the guest's MXCSR, so
 * rounding, NaN propagation and exception flags are bit-exact. MMX registers
 * alias the x87 register mantissas and are computed in the low half of an XMM
 * temporary. */
#include <string.h>

#include "engines/soft/soft.h"

#define SEG(d) ((d)->seg >= 0 ? (d)->seg : (d)->ea_seg)

typedef void (*sse_fn)(xmm_t *d, const xmm_t *s);

#define OP(name, ins)                                                                              \
	static void name(xmm_t *d, const xmm_t *s)                                                 \
	{                                                                                          \
		__asm__ volatile(ins " %1, %0" : "+x"(d->v) : "x"(s->v));                          \
	}

/* One instruction per line: clang-format 14 would fold these macro calls. */
// clang-format off
/* integer */
OP(punpcklbw, "punpcklbw")
OP(punpcklwd, "punpcklwd")
OP(punpckldq, "punpckldq")
OP(packsswb, "packsswb")
OP(pcmpgtb, "pcmpgtb")
OP(pcmpgtw, "pcmpgtw")
OP(pcmpgtd, "pcmpgtd")
OP(packuswb, "packuswb")
OP(punpckhbw, "punpckhbw")
OP(punpckhwd, "punpckhwd")
OP(punpckhdq, "punpckhdq")
OP(packssdw, "packssdw")
OP(punpcklqdq, "punpcklqdq")
OP(punpckhqdq, "punpckhqdq")
OP(pcmpeqb, "pcmpeqb")
OP(pcmpeqw, "pcmpeqw")
OP(pcmpeqd, "pcmpeqd")
OP(psrlw, "psrlw")
OP(psrld, "psrld")
OP(psrlq, "psrlq")
OP(paddq, "paddq")
OP(pmullw, "pmullw")
OP(psubusb, "psubusb")
OP(psubusw, "psubusw")
OP(pminub, "pminub")
OP(pand, "pand")
OP(paddusb, "paddusb")
OP(paddusw, "paddusw")
OP(pmaxub, "pmaxub")
OP(pandn, "pandn")
OP(pavgb, "pavgb")
OP(psraw, "psraw")
OP(psrad, "psrad")
OP(pavgw, "pavgw")
OP(pmulhuw, "pmulhuw")
OP(pmulhw, "pmulhw")
OP(psubsb, "psubsb")
OP(psubsw, "psubsw")
OP(pminsw, "pminsw")
OP(por, "por")
OP(paddsb, "paddsb")
OP(paddsw, "paddsw")
OP(pmaxsw, "pmaxsw")
OP(pxor, "pxor")
OP(psllw, "psllw")
OP(pslld, "pslld")
OP(psllq, "psllq")
OP(pmuludq, "pmuludq")
OP(pmaddwd, "pmaddwd")
OP(psadbw, "psadbw")
OP(psubb, "psubb")
OP(psubw, "psubw")
OP(psubd, "psubd")
OP(psubq, "psubq")
OP(paddb, "paddb")
OP(paddw, "paddw")
OP(paddd, "paddd")
/* floating point */
OP(sqrtps, "sqrtps")
OP(sqrtpd, "sqrtpd")
OP(sqrtss, "sqrtss")
OP(sqrtsd, "sqrtsd")
OP(rsqrtps, "rsqrtps")
OP(rsqrtss, "rsqrtss")
OP(rcpps, "rcpps")
OP(rcpss, "rcpss")
OP(andps, "andps")
OP(andnps, "andnps")
OP(orps, "orps")
OP(xorps, "xorps")
OP(addps, "addps")
OP(addpd, "addpd")
OP(addss, "addss")
OP(addsd, "addsd")
OP(mulps, "mulps")
OP(mulpd, "mulpd")
OP(mulss, "mulss")
OP(mulsd, "mulsd")
OP(subps, "subps")
OP(subpd, "subpd")
OP(subss, "subss")
OP(subsd, "subsd")
OP(minps, "minps")
OP(minpd, "minpd")
OP(minss, "minss")
OP(minsd, "minsd")
OP(divps, "divps")
OP(divpd, "divpd")
OP(divss, "divss")
OP(divsd, "divsd")
OP(maxps, "maxps")
OP(maxpd, "maxpd")
OP(maxss, "maxss")
OP(maxsd, "maxsd")
OP(cvtps2pd, "cvtps2pd")
OP(cvtpd2ps, "cvtpd2ps")
OP(cvtss2sd, "cvtss2sd")
OP(cvtsd2ss, "cvtsd2ss")
OP(cvtdq2ps, "cvtdq2ps")
OP(cvtps2dq, "cvtps2dq")
OP(cvttps2dq, "cvttps2dq")
OP(cvttpd2dq, "cvttpd2dq")
OP(cvtdq2pd, "cvtdq2pd")
OP(cvtpd2dq, "cvtpd2dq")
OP(unpcklps, "unpcklps")
OP(unpcklpd, "unpcklpd")
OP(unpckhps, "unpckhps")
OP(unpckhpd, "unpckhpd")
OP(addsubps, "addsubps")
OP(addsubpd, "addsubpd")
OP(haddps, "haddps")
OP(haddpd, "haddpd")
OP(hsubps, "hsubps")
OP(hsubpd, "hsubpd")
// clang-format on

/* Integer SIMD ops shared by MMX (no prefix) and SSE2 (66). */
static sse_fn int_op(unsigned b)
{
	static const sse_fn tab[0x100 - 0x60] = {
	    [0x60 - 0x60] = punpcklbw,	[0x61 - 0x60] = punpcklwd,  [0x62 - 0x60] = punpckldq,
	    [0x63 - 0x60] = packsswb,	[0x64 - 0x60] = pcmpgtb,    [0x65 - 0x60] = pcmpgtw,
	    [0x66 - 0x60] = pcmpgtd,	[0x67 - 0x60] = packuswb,   [0x68 - 0x60] = punpckhbw,
	    [0x69 - 0x60] = punpckhwd,	[0x6a - 0x60] = punpckhdq,  [0x6b - 0x60] = packssdw,
	    [0x6c - 0x60] = punpcklqdq, [0x6d - 0x60] = punpckhqdq, [0x74 - 0x60] = pcmpeqb,
	    [0x75 - 0x60] = pcmpeqw,	[0x76 - 0x60] = pcmpeqd,    [0xd1 - 0x60] = psrlw,
	    [0xd2 - 0x60] = psrld,	[0xd3 - 0x60] = psrlq,	    [0xd4 - 0x60] = paddq,
	    [0xd5 - 0x60] = pmullw,	[0xd8 - 0x60] = psubusb,    [0xd9 - 0x60] = psubusw,
	    [0xda - 0x60] = pminub,	[0xdb - 0x60] = pand,	    [0xdc - 0x60] = paddusb,
	    [0xdd - 0x60] = paddusw,	[0xde - 0x60] = pmaxub,	    [0xdf - 0x60] = pandn,
	    [0xe0 - 0x60] = pavgb,	[0xe1 - 0x60] = psraw,	    [0xe2 - 0x60] = psrad,
	    [0xe3 - 0x60] = pavgw,	[0xe4 - 0x60] = pmulhuw,    [0xe5 - 0x60] = pmulhw,
	    [0xe8 - 0x60] = psubsb,	[0xe9 - 0x60] = psubsw,	    [0xea - 0x60] = pminsw,
	    [0xeb - 0x60] = por,	[0xec - 0x60] = paddsb,	    [0xed - 0x60] = paddsw,
	    [0xee - 0x60] = pmaxsw,	[0xef - 0x60] = pxor,	    [0xf1 - 0x60] = psllw,
	    [0xf2 - 0x60] = pslld,	[0xf3 - 0x60] = psllq,	    [0xf4 - 0x60] = pmuludq,
	    [0xf5 - 0x60] = pmaddwd,	[0xf6 - 0x60] = psadbw,	    [0xf8 - 0x60] = psubb,
	    [0xf9 - 0x60] = psubw,	[0xfa - 0x60] = psubd,	    [0xfb - 0x60] = psubq,
	    [0xfc - 0x60] = paddb,	[0xfd - 0x60] = paddw,	    [0xfe - 0x60] = paddd,
	};
	return b >= 0x60 ? tab[b - 0x60] : NULL;
}

/* Floating-point ops by opcode and prefix (0 = ps, 1 = pd (66), 2 = ss (F3), 3 = sd (F2)). */
static sse_fn fp_op(unsigned b, int p, int *scalar_bytes)
{
	static const sse_fn arith[16][4] = {
	    [0x1] = {sqrtps, sqrtpd, sqrtss, sqrtsd},
	    [0x2] = {rsqrtps, NULL, rsqrtss, NULL},
	    [0x3] = {rcpps, NULL, rcpss, NULL},
	    [0x4] = {andps, andps, NULL, NULL},
	    [0x5] = {andnps, andnps, NULL, NULL},
	    [0x6] = {orps, orps, NULL, NULL},
	    [0x7] = {xorps, xorps, NULL, NULL},
	    [0x8] = {addps, addpd, addss, addsd},
	    [0x9] = {mulps, mulpd, mulss, mulsd},
	    [0xa] = {cvtps2pd, cvtpd2ps, cvtss2sd, cvtsd2ss},
	    [0xb] = {cvtdq2ps, cvtps2dq, cvttps2dq, NULL},
	    [0xc] = {subps, subpd, subss, subsd},
	    [0xd] = {minps, minpd, minss, minsd},
	    [0xe] = {divps, divpd, divss, divsd},
	    [0xf] = {maxps, maxpd, maxss, maxsd},
	};
	*scalar_bytes = 0;
	if (b >= 0x51 && b <= 0x5f) {
		if (p >= 2 && b != 0x5b)
			*scalar_bytes = p == 2 ? 4 : 8;
		if (b == 0x5a && p == 0)
			*scalar_bytes = 8; /* cvtps2pd reads 64 bits */
		return arith[b & 0xf][p];
	}
	switch (b) {
	case 0x14:
		return p == 0 ? unpcklps : p == 1 ? unpcklpd : NULL;
	case 0x15:
		return p == 0 ? unpckhps : p == 1 ? unpckhpd : NULL;
	case 0xd0:
		return p == 1 ? addsubpd : p == 3 ? addsubps : NULL;
	case 0x7c:
		return p == 1 ? haddpd : p == 3 ? haddps : NULL;
	case 0x7d:
		return p == 1 ? hsubpd : p == 3 ? hsubps : NULL;
	case 0xe6:
		if (p == 2)
			*scalar_bytes = 8;
		return p == 1 ? cvttpd2dq : p == 2 ? cvtdq2pd : p == 3 ? cvtpd2dq : NULL;
	}
	return NULL;
}

static void sse_check(struct soft_cpu *c)
{
	if ((c->cr0 & CR0_EM) || !(c->cr4 & CR4_OSFXSR))
		raise_ud(c);
	if (c->cr0 & CR0_TS)
		raise_exc(c, EXC_NM, false, 0);
}

static void mmx_check(struct soft_cpu *c)
{
	if (c->cr0 & CR0_EM)
		raise_ud(c);
	if (c->cr0 & CR0_TS)
		raise_exc(c, EXC_NM, false, 0);
}

static uint64_t *mm(struct soft_cpu *c, int i)
{
	return (uint64_t *)(void *)&c->st[i & 7];
}

/* Entering MMX: the stack top goes to 0 and every register becomes valid. */
static void mm_write(struct soft_cpu *c, int i, uint64_t v)
{
	uint8_t *p = (uint8_t *)&c->st[i & 7];
	memcpy(p, &v, 8);
	p[8] = p[9] = 0xff;
	c->ftop = 0;
	c->ftw_empty = 0;
}

static uint64_t mm_read(struct soft_cpu *c, int i)
{
	c->ftop = 0;
	c->ftw_empty = 0;
	return *mm(c, i);
}

static void load_mem(struct soft_cpu *c, struct insn *d, xmm_t *t, int bytes, bool aligned)
{
	if (aligned && (d->ea & 15))
		raise_gp(c, 0);
	t->q[0] = t->q[1] = 0;
	if (bytes == 16) {
		t->q[0] = mem_read(c, SEG(d), d->ea, 8);
		t->q[1] = mem_read(c, SEG(d), d->ea + 8, 8);
	} else {
		t->q[0] = mem_read(c, SEG(d), d->ea, bytes);
	}
}

static void store_mem(struct soft_cpu *c, struct insn *d, const xmm_t *t, int bytes, bool aligned)
{
	if (aligned && (d->ea & 15))
		raise_gp(c, 0);
	if (bytes == 16) {
		/* probe both halves before writing either */
		mem_rmw_ptr(c, SEG(d), d->ea + 8, 8);
		mem_write(c, SEG(d), d->ea, 8, t->q[0]);
		mem_write(c, SEG(d), d->ea + 8, 8, t->q[1]);
	} else {
		mem_write(c, SEG(d), d->ea, bytes, t->q[0]);
	}
}

/* Source operand: xmm register / MMX register / memory of `bytes`. */
static void src_op(struct soft_cpu *c, struct insn *d, xmm_t *t, int bytes, bool mmx, bool aligned)
{
	if (d->is_mem) {
		load_mem(c, d, t, bytes, aligned);
	} else if (mmx) {
		t->q[0] = mm_read(c, d->rm);
		t->q[1] = 0;
	} else {
		*t = c->xmm[d->rm];
	}
}

/* Run fn under the guest's MXCSR; raise #XM for unmasked exceptions. */
static void fp_run(struct soft_cpu *c, sse_fn fn, xmm_t *dst, const xmm_t *src)
{
	uint32_t host, now, guest = (c->mxcsr & ~0x3fu) | 0x1f80u;
	__asm__ volatile("stmxcsr %0" : "=m"(host));
	__asm__ volatile("ldmxcsr %0" : : "m"(guest));
	fn(dst, src);
	__asm__ volatile("stmxcsr %0" : "=m"(now));
	__asm__ volatile("ldmxcsr %0" : : "m"(host));
	uint32_t flags = now & 0x3f;
	if (flags & ~(c->mxcsr >> 7) & 0x3f) {
		c->mxcsr |= flags;
		raise_exc(c, (c->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, false, 0);
	}
	c->mxcsr |= flags;
}

static void shift_imm(struct soft_cpu *c, struct insn *d, bool mmx)
{
	unsigned n = (unsigned)d->imm & 0xff;
	xmm_t *x = &c->xmm[d->rm], t;
	if (mmx) {
		t.q[0] = mm_read(c, d->rm);
		t.q[1] = 0;
		x = &t;
	}
	unsigned b = d->op & 0xff, r = d->reg & 7;
	xmm_t cnt = {.q = {n, 0}};
	sse_fn fn = NULL;
	if (b == 0x71)
		fn = r == 2 ? psrlw : r == 4 ? psraw : r == 6 ? psllw : NULL;
	else if (b == 0x72)
		fn = r == 2 ? psrld : r == 4 ? psrad : r == 6 ? pslld : NULL;
	else if (r == 2 || r == 6)
		fn = r == 2 ? psrlq : psllq;
	if (fn) {
		fn(x, &cnt);
	} else if (b == 0x73 && !mmx && (r == 3 || r == 7)) {
		/* byte shifts of the whole register */
		uint8_t out[16] = {0};
		for (int i = 0; i < 16; i++) {
			int from = r == 3 ? i + (int)n : i - (int)n;
			if (n < 16 && from >= 0 && from < 16)
				out[i] = x->b[from];
		}
		memcpy(x->b, out, 16);
	} else {
		raise_ud(c);
	}
	if (mmx)
		mm_write(c, d->rm, t.q[0]);
}

static void shuffle(struct soft_cpu *c, struct insn *d, int p)
{
	xmm_t s, r;
	uint8_t imm = (uint8_t)d->imm;
	if (p == 0) { /* PSHUFW mm */
		mmx_check(c);
		src_op(c, d, &s, 8, true, false);
		for (int i = 0; i < 4; i++)
			r.w[i] = s.w[(imm >> (2 * i)) & 3];
		mm_write(c, d->reg, r.q[0]);
		return;
	}
	src_op(c, d, &s, 16, false, true);
	r = s;
	if (p == 1) {
		for (int i = 0; i < 4; i++)
			r.d[i] = s.d[(imm >> (2 * i)) & 3];
	} else if (p == 2) {
		for (int i = 0; i < 4; i++)
			r.w[4 + i] = s.w[4 + ((imm >> (2 * i)) & 3)];
	} else {
		for (int i = 0; i < 4; i++)
			r.w[i] = s.w[(imm >> (2 * i)) & 3];
	}
	c->xmm[d->reg] = r;
}

/* CMPPS/PD/SS/SD: the predicate is an immediate, so dispatch to a fixed form. */
static void cmp_op(struct soft_cpu *c, struct insn *d, int p)
{
	xmm_t s, r = c->xmm[d->reg];
	int bytes = p == 2 ? 4 : p == 3 ? 8 : 16;
	src_op(c, d, &s, bytes, false, bytes == 16);
	unsigned pred = (unsigned)d->imm & 7;
	uint32_t host, now, guest = (c->mxcsr & ~0x3fu) | 0x1f80u;
	__asm__ volatile("stmxcsr %0" : "=m"(host));
	__asm__ volatile("ldmxcsr %0" : : "m"(guest));
#define CMPCASE(ins)                                                                               \
	switch (pred) {                                                                            \
	case 0:                                                                                    \
		__asm__ volatile(ins " $0, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	case 1:                                                                                    \
		__asm__ volatile(ins " $1, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	case 2:                                                                                    \
		__asm__ volatile(ins " $2, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	case 3:                                                                                    \
		__asm__ volatile(ins " $3, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	case 4:                                                                                    \
		__asm__ volatile(ins " $4, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	case 5:                                                                                    \
		__asm__ volatile(ins " $5, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	case 6:                                                                                    \
		__asm__ volatile(ins " $6, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	default:                                                                                   \
		__asm__ volatile(ins " $7, %1, %0" : "+x"(r.v) : "x"(s.v));                        \
		break;                                                                             \
	}
	switch (p) {
	case 0:
		CMPCASE("cmpps");
		break;
	case 1:
		CMPCASE("cmppd");
		break;
	case 2:
		CMPCASE("cmpss");
		break;
	default:
		CMPCASE("cmpsd");
		break;
	}
#undef CMPCASE
	__asm__ volatile("stmxcsr %0" : "=m"(now));
	__asm__ volatile("ldmxcsr %0" : : "m"(host));
	uint32_t flags = now & 0x3f;
	c->mxcsr |= flags;
	if (flags & ~(c->mxcsr >> 7) & 0x3f)
		raise_exc(c, (c->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, false, 0);
	c->xmm[d->reg] = r;
}

/* (U)COMISS/SD: ZF, PF, CF from the comparison; OF, SF, AF cleared. */
static void comis(struct soft_cpu *c, struct insn *d, bool dbl, bool ordered)
{
	xmm_t s, a = c->xmm[d->reg];
	src_op(c, d, &s, dbl ? 8 : 4, false, false);
	uint8_t z, p, cf;
	uint32_t host, now, guest = (c->mxcsr & ~0x3fu) | 0x1f80u;
	__asm__ volatile("stmxcsr %0" : "=m"(host));
	__asm__ volatile("ldmxcsr %0" : : "m"(guest));
	if (dbl && ordered)
		__asm__ volatile("comisd %3, %4; setz %0; setp %1; setc %2"
				 : "=r"(z), "=r"(p), "=r"(cf)
				 : "x"(s.v), "x"(a.v)
				 : "cc");
	else if (dbl)
		__asm__ volatile("ucomisd %3, %4; setz %0; setp %1; setc %2"
				 : "=r"(z), "=r"(p), "=r"(cf)
				 : "x"(s.v), "x"(a.v)
				 : "cc");
	else if (ordered)
		__asm__ volatile("comiss %3, %4; setz %0; setp %1; setc %2"
				 : "=r"(z), "=r"(p), "=r"(cf)
				 : "x"(s.v), "x"(a.v)
				 : "cc");
	else
		__asm__ volatile("ucomiss %3, %4; setz %0; setp %1; setc %2"
				 : "=r"(z), "=r"(p), "=r"(cf)
				 : "x"(s.v), "x"(a.v)
				 : "cc");
	__asm__ volatile("stmxcsr %0" : "=m"(now));
	__asm__ volatile("ldmxcsr %0" : : "m"(host));
	uint32_t flags = now & 0x3f;
	c->mxcsr |= flags;
	if (flags & ~(c->mxcsr >> 7) & 0x3f)
		raise_exc(c, (c->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, false, 0);
	set_flags(c, (z ? FL_ZF : 0) | (p ? FL_PF : 0) | (cf ? FL_CF : 0), FL_ARITH);
}

/* CVTSI2SS/SD and CVT(T)SS/SD2SI. */
static void cvt_int(struct soft_cpu *c, struct insn *d, unsigned b, int p)
{
	bool w = d->rex & 8, dbl = p == 3;
	uint32_t host, now, guest = (c->mxcsr & ~0x3fu) | 0x1f80u;
	xmm_t r = c->xmm[d->reg], s;
	int64_t iv = 0;
	if (b == 0x2a) {
		int64_t v =
		    (int64_t)(w ? rm_get(c, d, 8) : (uint64_t)(int64_t)(int32_t)rm_get(c, d, 4));
		int32_t v32 = (int32_t)v;
		__asm__ volatile("stmxcsr %0" : "=m"(host));
		__asm__ volatile("ldmxcsr %0" : : "m"(guest));
		if (dbl && w)
			__asm__ volatile("cvtsi2sdq %1, %0" : "+x"(r.v) : "r"(v));
		else if (dbl)
			__asm__ volatile("cvtsi2sdl %1, %0" : "+x"(r.v) : "r"(v32));
		else if (w)
			__asm__ volatile("cvtsi2ssq %1, %0" : "+x"(r.v) : "r"(v));
		else
			__asm__ volatile("cvtsi2ssl %1, %0" : "+x"(r.v) : "r"(v32));
	} else {
		src_op(c, d, &s, dbl ? 8 : 4, false, false);
		bool trunc = b == 0x2c;
		__asm__ volatile("stmxcsr %0" : "=m"(host));
		__asm__ volatile("ldmxcsr %0" : : "m"(guest));
		if (w && dbl) {
			if (trunc)
				__asm__ volatile("cvttsd2si %1, %0" : "=r"(iv) : "x"(s.v));
			else
				__asm__ volatile("cvtsd2si %1, %0" : "=r"(iv) : "x"(s.v));
		} else if (w) {
			if (trunc)
				__asm__ volatile("cvttss2si %1, %0" : "=r"(iv) : "x"(s.v));
			else
				__asm__ volatile("cvtss2si %1, %0" : "=r"(iv) : "x"(s.v));
		} else {
			int32_t i32;
			if (dbl && trunc)
				__asm__ volatile("cvttsd2si %1, %0" : "=r"(i32) : "x"(s.v));
			else if (dbl)
				__asm__ volatile("cvtsd2si %1, %0" : "=r"(i32) : "x"(s.v));
			else if (trunc)
				__asm__ volatile("cvttss2si %1, %0" : "=r"(i32) : "x"(s.v));
			else
				__asm__ volatile("cvtss2si %1, %0" : "=r"(i32) : "x"(s.v));
			iv = (uint32_t)i32;
		}
	}
	__asm__ volatile("stmxcsr %0" : "=m"(now));
	__asm__ volatile("ldmxcsr %0" : : "m"(host));
	uint32_t flags = now & 0x3f;
	c->mxcsr |= flags;
	if (flags & ~(c->mxcsr >> 7) & 0x3f)
		raise_exc(c, (c->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, false, 0);
	if (b == 0x2a)
		c->xmm[d->reg] = r;
	else
		reg_set(c, d->reg, w ? 8 : 4, true, (uint64_t)iv);
}

/* CVTPI2PS/PD, CVT(T)PS2PI, CVT(T)PD2PI: two lanes between MMX and XMM,
 * computed with the SSE2 packed conversions on a temporary. */
static void cvt_mmx(struct soft_cpu *c, struct insn *d, unsigned b, int p)
{
	mmx_check(c);
	xmm_t s, r;
	if (b == 0x2a) {
		src_op(c, d, &s, 8, true, false);
		r = c->xmm[d->reg];
		xmm_t t = r;
		fp_run(c, p ? cvtdq2pd : cvtdq2ps, &t, &s);
		if (p)
			r = t;
		else
			r.q[0] = t.q[0];
		c->xmm[d->reg] = r;
		return;
	}
	src_op(c, d, &s, p ? 16 : 8, false, p != 0);
	if (!p)
		s.q[1] = 0; /* only two single lanes take part */
	r.q[0] = r.q[1] = 0;
	sse_fn fn = p ? (b == 0x2c ? cvttpd2dq : cvtpd2dq) : (b == 0x2c ? cvttps2dq : cvtps2dq);
	fp_run(c, fn, &r, &s);
	mm_write(c, d->reg, r.q[0]);
}

/* Data movement between XMM/MMX registers, memory and GPRs. */
static bool moves(struct soft_cpu *c, struct insn *d, unsigned b, int p)
{
	xmm_t *x = &c->xmm[d->reg], t;
	switch (b) {
	case 0x10: /* movups/movupd/movss/movsd load */
		if (p < 2) {
			src_op(c, d, &t, 16, false, false);
			*x = t;
		} else if (d->is_mem) {
			load_mem(c, d, &t, p == 2 ? 4 : 8, false);
			*x = t;
		} else if (p == 2) {
			x->d[0] = c->xmm[d->rm].d[0];
		} else {
			x->q[0] = c->xmm[d->rm].q[0];
		}
		return true;
	case 0x11:
		if (d->is_mem)
			store_mem(c, d, x, p < 2 ? 16 : p == 2 ? 4 : 8, false);
		else if (p < 2)
			c->xmm[d->rm] = *x;
		else if (p == 2)
			c->xmm[d->rm].d[0] = x->d[0];
		else
			c->xmm[d->rm].q[0] = x->q[0];
		return true;
	case 0x12:
		if (p == 3) { /* movddup */
			src_op(c, d, &t, 8, false, false);
			x->q[0] = x->q[1] = t.q[0];
		} else if (p == 2) { /* movsldup */
			src_op(c, d, &t, 16, false, true);
			x->d[0] = x->d[1] = t.d[0];
			x->d[2] = x->d[3] = t.d[2];
		} else if (d->is_mem) {
			x->q[0] = mem_read(c, SEG(d), d->ea, 8);
		} else if (p == 0) { /* movhlps */
			x->q[0] = c->xmm[d->rm].q[1];
		} else {
			return false;
		}
		return true;
	case 0x13:
	case 0x17:
		if (!d->is_mem || p > 1)
			return false;
		mem_write(c, SEG(d), d->ea, 8, x->q[b == 0x17]);
		return true;
	case 0x16:
		if (p == 2) { /* movshdup */
			src_op(c, d, &t, 16, false, true);
			x->d[0] = x->d[1] = t.d[1];
			x->d[2] = x->d[3] = t.d[3];
		} else if (d->is_mem && p < 2) {
			x->q[1] = mem_read(c, SEG(d), d->ea, 8);
		} else if (p == 0) { /* movlhps */
			x->q[1] = c->xmm[d->rm].q[0];
		} else {
			return false;
		}
		return true;
	case 0x28:
		if (p > 1)
			return false;
		src_op(c, d, &t, 16, false, true);
		*x = t;
		return true;
	case 0x29:
	case 0x2b:
		if (p > 1 || (b == 0x2b && !d->is_mem))
			return false;
		if (d->is_mem)
			store_mem(c, d, x, 16, true);
		else
			c->xmm[d->rm] = *x;
		return true;
	case 0x50: {
		if (d->is_mem || p > 1)
			return false;
		xmm_t *s = &c->xmm[d->rm];
		uint32_t m = p ? (uint32_t)((s->q[0] >> 63) | ((s->q[1] >> 63) << 1))
			       : (s->d[0] >> 31) | ((s->d[1] >> 31) << 1) | ((s->d[2] >> 31) << 2) |
				     ((s->d[3] >> 31) << 3);
		reg_set(c, d->reg, 4, true, m);
		return true;
	}
	case 0x6e: {
		int size = d->rex & 8 ? 8 : 4;
		uint64_t v = rm_get(c, d, size);
		if (p == 0) {
			mmx_check(c);
			mm_write(c, d->reg, v);
		} else if (p == 1) {
			x->q[0] = v;
			x->q[1] = 0;
		} else {
			return false;
		}
		return true;
	}
	case 0x7e: {
		if (p == 2) { /* movq xmm, xmm/m64 */
			src_op(c, d, &t, 8, false, false);
			x->q[0] = t.q[0];
			x->q[1] = 0;
			return true;
		}
		int size = d->rex & 8 ? 8 : 4;
		if (p == 0) {
			mmx_check(c);
			rm_set(c, d, size, mm_read(c, d->reg));
		} else if (p == 1) {
			rm_set(c, d, size, x->q[0]);
		} else {
			return false;
		}
		return true;
	}
	case 0x6f:
		if (p == 0) {
			mmx_check(c);
			src_op(c, d, &t, 8, true, false);
			mm_write(c, d->reg, t.q[0]);
		} else if (p == 1 || p == 2) {
			src_op(c, d, &t, 16, false, p == 1);
			*x = t;
		} else {
			return false;
		}
		return true;
	case 0x7f:
		if (p == 0) {
			mmx_check(c);
			uint64_t v = mm_read(c, d->reg);
			if (d->is_mem)
				mem_write(c, SEG(d), d->ea, 8, v);
			else
				mm_write(c, d->rm, v);
		} else if (p == 1 || p == 2) {
			if (d->is_mem)
				store_mem(c, d, x, 16, p == 1);
			else
				c->xmm[d->rm] = *x;
		} else {
			return false;
		}
		return true;
	case 0xd6:
		if (p == 1) {
			if (d->is_mem) {
				mem_write(c, SEG(d), d->ea, 8, x->q[0]);
			} else {
				c->xmm[d->rm].q[0] = x->q[0];
				c->xmm[d->rm].q[1] = 0;
			}
		} else if (p == 2 && !d->is_mem) { /* movq2dq */
			x->q[0] = mm_read(c, d->rm);
			x->q[1] = 0;
		} else if (p == 3 && !d->is_mem) { /* movdq2q */
			mm_write(c, d->reg, c->xmm[d->rm].q[0]);
		} else {
			return false;
		}
		return true;
	case 0xe7:
		if (!d->is_mem || p > 1)
			return false;
		if (p == 0)
			mem_write(c, SEG(d), d->ea, 8, mm_read(c, d->reg));
		else
			store_mem(c, d, x, 16, true);
		return true;
	case 0xc3: /* movnti */
		if (!d->is_mem || p)
			return false;
		mem_write(c, SEG(d), d->ea, d->opsize == 8 ? 8 : 4, c->r[d->reg]);
		return true;
	case 0xd7: { /* pmovmskb */
		if (d->is_mem || p > 1)
			return false;
		xmm_t s;
		if (p == 0)
			s.q[0] = mm_read(c, d->rm), s.q[1] = 0;
		else
			s = c->xmm[d->rm];
		uint32_t m = 0;
		for (int i = 0; i < (p ? 16 : 8); i++)
			m |= (uint32_t)(s.b[i] >> 7) << i;
		reg_set(c, d->reg, 4, true, m);
		return true;
	}
	case 0xc4: { /* pinsrw */
		if (p > 1)
			return false;
		uint16_t v = (uint16_t)rm_get(c, d, 2);
		if (p == 0) {
			xmm_t m = {.q = {mm_read(c, d->reg), 0}};
			m.w[d->imm & 3] = v;
			mm_write(c, d->reg, m.q[0]);
		} else {
			x->w[d->imm & 7] = v;
		}
		return true;
	}
	case 0xc5: /* pextrw */
		if (d->is_mem || p > 1)
			return false;
		if (p == 0) {
			xmm_t m = {.q = {mm_read(c, d->rm), 0}};
			reg_set(c, d->reg, 4, true, m.w[d->imm & 3]);
		} else {
			reg_set(c, d->reg, 4, true, c->xmm[d->rm].w[d->imm & 7]);
		}
		return true;
	case 0xc6: { /* shufps / shufpd */
		if (p > 1)
			return false;
		src_op(c, d, &t, 16, false, true);
		xmm_t r;
		uint8_t imm = (uint8_t)d->imm;
		if (p == 0) {
			r.d[0] = x->d[imm & 3];
			r.d[1] = x->d[(imm >> 2) & 3];
			r.d[2] = t.d[(imm >> 4) & 3];
			r.d[3] = t.d[(imm >> 6) & 3];
		} else {
			r.q[0] = x->q[imm & 1];
			r.q[1] = t.q[(imm >> 1) & 1];
		}
		*x = r;
		return true;
	}
	case 0xf0: /* lddqu */
		if (p != 3 || !d->is_mem)
			return false;
		load_mem(c, d, x, 16, false);
		return true;
	}
	return false;
}

bool exec_sse(struct soft_cpu *c, struct insn *d)
{
	if (d->op >> 8 != 1)
		return false;
	unsigned b = d->op & 0xff;
	int p = d->rep == 0xf3 ? 2 : d->rep == 0xf2 ? 3 : d->opsize_prefix ? 1 : 0;

	if (b == 0x77) { /* EMMS */
		mmx_check(c);
		c->ftw_empty = 0xff;
		return true;
	}
	bool simd = (b >= 0x10 && b <= 0x17) || (b >= 0x28 && b <= 0x2f) ||
		    (b >= 0x50 && b <= 0x7f) || (b >= 0xc2 && b <= 0xc6) || b >= 0xd0;
	if (!simd)
		return false;
	bool mmx = p == 0 && ((b >= 0x60 && b <= 0x7f) || b >= 0xd0) && b != 0xd0 && b != 0x7c &&
		   b != 0x7d && b != 0xd6;
	if (mmx)
		mmx_check(c);
	else
		sse_check(c);

	if (moves(c, d, b, p))
		return true;

	switch (b) {
	case 0x2a:
	case 0x2c:
	case 0x2d:
		if (p >= 2)
			cvt_int(c, d, b, p);
		else
			cvt_mmx(c, d, b, p);
		return true;
	case 0x2e:
	case 0x2f:
		if (p > 1)
			return false;
		comis(c, d, p == 1, b == 0x2f);
		return true;
	case 0x70:
		shuffle(c, d, p);
		return true;
	case 0x71:
	case 0x72:
	case 0x73:
		if (d->is_mem || p > 1)
			return false;
		shift_imm(c, d, p == 0);
		return true;
	case 0xc2:
		cmp_op(c, d, p);
		return true;
	}

	int scalar = 0;
	sse_fn fn = fp_op(b, p, &scalar);
	if (fn) {
		xmm_t s, r = c->xmm[d->reg];
		src_op(c, d, &s, scalar ? scalar : 16, false, !scalar);
		fp_run(c, fn, &r, &s);
		c->xmm[d->reg] = r;
		return true;
	}
	if (p > 1)
		return false;
	fn = int_op(b);
	if (!fn || ((b == 0x6c || b == 0x6d) && p == 0))
		return false;
	xmm_t s, r;
	if (p == 1) {
		src_op(c, d, &s, 16, false, true);
		r = c->xmm[d->reg];
		fn(&r, &s);
		c->xmm[d->reg] = r;
		return true;
	}
	/* MMX: 64-bit lanes computed in the low half of an XMM temporary. */
	src_op(c, d, &s, 8, true, false);
	r.q[0] = mm_read(c, d->reg);
	r.q[1] = 0;
	if (b == 0x63 || b == 0x67 || b == 0x6b) {
		r.q[1] = s.q[0];
		fn(&r, &r);
	} else if (b >= 0x68 && b <= 0x6a) {
		/* high-half unpack of 64-bit registers = low-half unpack of the top dwords */
		r.q[0] >>= 32;
		s.q[0] >>= 32;
		int_op(b - 8)(&r, &s);
	} else {
		fn(&r, &s);
	}
	mm_write(c, d->reg, r.q[0]);
	return true;
}
