/* The x87 FPU: register stack, loads and stores of every memory format,
 * arithmetic, compares, control/status words, environment save/restore, and
 * FXSAVE/FXRSTOR (shared with SSE state). Values are kept as the host's 80-bit
 * long double, the same format the guest sees; transcendental functions use
 * the host's x87 instructions. Exceptions are always treated as masked. */
#include <string.h>

#include "engines/soft/soft.h"

#define SEG(d) ((d)->seg >= 0 ? (d)->seg : (d)->ea_seg)

#define FSW_C0 0x0100
#define FSW_C1 0x0200
#define FSW_C2 0x0400
#define FSW_C3 0x4000
#define FSW_CC (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

void fpu_reset(struct soft_cpu *c)
{
	c->fcw = 0x37f;
	c->fsw = 0;
	c->ftw_empty = 0xff;
	c->ftop = 0;
	memset(c->st, 0, sizeof(c->st));
	c->mxcsr = 0x1f80;
	memset(c->xmm, 0, sizeof(c->xmm));
}

static long double *st(struct soft_cpu *c, int i)
{
	return &c->st[(c->ftop + i) & 7];
}

static void fpush(struct soft_cpu *c, long double v)
{
	c->ftop = (c->ftop - 1) & 7;
	if (!(c->ftw_empty & (1u << c->ftop)))
		c->fsw |= 0x41 | FSW_C1; /* stack overflow: IE + SF */
	c->st[c->ftop] = v;
	c->ftw_empty &= (uint16_t) ~(1u << c->ftop);
}

static void fpop(struct soft_cpu *c)
{
	c->ftw_empty |= (uint16_t)(1u << c->ftop);
	c->ftop = (c->ftop + 1) & 7;
}

static uint16_t fsw_read(struct soft_cpu *c)
{
	return (uint16_t)((c->fsw & ~0x3800u) | ((unsigned)c->ftop << 11));
}

/* Round to an integer by the FCW rounding control. */
static long double round_rc(long double v, int rc)
{
	if (!(v < 9.2233720368547758e18L && v > -9.2233720368547758e18L))
		return v; /* already integral (or NaN / infinity) */
	long double t = (long double)(int64_t)v;
	switch (rc) {
	case 0: {
		long double diff = v - t;
		if (diff < 0)
			diff = -diff;
		if (diff > 0.5L || (diff == 0.5L && ((int64_t)t & 1)))
			t += v < 0 ? -1 : 1;
		break;
	}
	case 1:
		if (t > v)
			t -= 1;
		break;
	case 2:
		if (t < v)
			t += 1;
		break;
	}
	return t;
}

static uint64_t to_int(struct soft_cpu *c, long double v, int size, bool truncate)
{
	long double r = truncate ? round_rc(v, 3) : round_rc(v, (c->fcw >> 10) & 3);
	long double lim = size == 2 ? 32768.0L : size == 4 ? 2147483648.0L : 9223372036854775808.0L;
	if (!(r < lim && r >= -lim)) {
		c->fsw |= 1; /* invalid: integer indefinite */
		return 1ull << (size * 8 - 1);
	}
	return (uint64_t)(int64_t)r;
}

static long double load_fp(struct soft_cpu *c, struct insn *d, int size)
{
	uint64_t raw = mem_read(c, SEG(d), d->ea, size);
	if (size == 4) {
		float f;
		uint32_t r32 = (uint32_t)raw;
		memcpy(&f, &r32, 4);
		return f;
	}
	double f;
	memcpy(&f, &raw, 8);
	return f;
}

static void store_fp(struct soft_cpu *c, struct insn *d, int size, long double v)
{
	if (size == 4) {
		float f = (float)v;
		uint32_t r;
		memcpy(&r, &f, 4);
		mem_write(c, SEG(d), d->ea, 4, r);
	} else {
		double f = (double)v;
		uint64_t r;
		memcpy(&r, &f, 8);
		mem_write(c, SEG(d), d->ea, 8, r);
	}
}

static long double load_int(struct soft_cpu *c, struct insn *d, int size)
{
	uint64_t v = mem_read(c, SEG(d), d->ea, size);
	int sh = 64 - size * 8;
	return (long double)((int64_t)(v << sh) >> sh);
}

static long double load_m80(struct soft_cpu *c, struct insn *d)
{
	long double v = 0;
	uint8_t b[16] = {0};
	store_n(b, 8, mem_read(c, SEG(d), d->ea, 8));
	store_n(b + 8, 2, mem_read(c, SEG(d), d->ea + 8, 2));
	memcpy(&v, b, 10);
	return v;
}

static void store_m80(struct soft_cpu *c, struct insn *d, long double v)
{
	uint8_t b[16] = {0};
	memcpy(b, &v, 10);
	mem_rmw_ptr(c, SEG(d), d->ea + 8, 2);
	mem_write(c, SEG(d), d->ea, 8, load_n(b, 8));
	mem_write(c, SEG(d), d->ea + 8, 2, load_n(b + 8, 2));
}

/* Compare a with b: C3/C2/C0 in FSW, or ZF/PF/CF for FCOMI. */
static void fcompare(struct soft_cpu *c, long double a, long double b, bool eflags)
{
	unsigned z = 0, p = 0, cf = 0;
	if (a != a || b != b)
		z = p = cf = 1;
	else if (a < b)
		cf = 1;
	else if (a == b)
		z = 1;
	if (eflags) {
		set_flags(c, (z ? FL_ZF : 0) | (p ? FL_PF : 0) | (cf ? FL_CF : 0), FL_ARITH);
		c->fsw &= ~FSW_C1;
	} else {
		c->fsw = (uint16_t)((c->fsw & ~FSW_CC) | (z ? FSW_C3 : 0) | (p ? FSW_C2 : 0) |
				    (cf ? FSW_C0 : 0));
	}
}

static long double arith(int op, long double a, long double b)
{
	switch (op) {
	case 0:
		return a + b;
	case 1:
		return a * b;
	case 4:
		return a - b;
	case 5:
		return b - a;
	case 6:
		return a / b;
	default:
		return b / a;
	}
}

static void fxam(struct soft_cpu *c)
{
	long double v = *st(c, 0);
	uint8_t raw[16] = {0};
	memcpy(raw, &v, 10);
	uint16_t se = (uint16_t)load_n(raw + 8, 2);
	uint64_t man = load_n(raw, 8);
	unsigned cc;
	if (c->ftw_empty & (1u << c->ftop))
		cc = FSW_C3 | FSW_C0;
	else if ((se & 0x7fff) == 0x7fff)
		cc = (man << 1) ? FSW_C0 : FSW_C2 | FSW_C0;
	else if ((se & 0x7fff) == 0)
		cc = man ? FSW_C3 | FSW_C2 : FSW_C3;
	else
		cc = (man >> 63) ? FSW_C2 : 0;
	if (se & 0x8000)
		cc |= FSW_C1;
	c->fsw = (uint16_t)((c->fsw & ~FSW_CC) | cc);
}

/* D9 E0-FF: constants and the functions. */
static void d9_special(struct soft_cpu *c, unsigned rm)
{
	long double a = *st(c, 0), b = *st(c, 1), r;
	switch (rm) {
	case 0x20:
		*st(c, 0) = -a;
		return;
	case 0x21:
		*st(c, 0) = a < 0 || (a == 0 && __builtin_signbit(a)) ? -a : a;
		return;
	case 0x24:
		fcompare(c, a, 0.0L, false);
		return;
	case 0x25:
		fxam(c);
		return;
	case 0x28:
		fpush(c, 1.0L);
		return;
	case 0x29:
		__asm__("fldl2t" : "=t"(r));
		fpush(c, r);
		return;
	case 0x2a:
		__asm__("fldl2e" : "=t"(r));
		fpush(c, r);
		return;
	case 0x2b:
		__asm__("fldpi" : "=t"(r));
		fpush(c, r);
		return;
	case 0x2c:
		__asm__("fldlg2" : "=t"(r));
		fpush(c, r);
		return;
	case 0x2d:
		__asm__("fldln2" : "=t"(r));
		fpush(c, r);
		return;
	case 0x2e:
		fpush(c, 0.0L);
		return;
	case 0x30:
		__asm__("f2xm1" : "+t"(a));
		*st(c, 0) = a;
		return;
	case 0x31:
		__asm__("fyl2x" : "=t"(r) : "0"(a), "u"(b) : "st(1)");
		fpop(c);
		*st(c, 0) = r;
		return;
	case 0x32:
		__asm__("fptan; fstp %%st(0)" : "+t"(a));
		*st(c, 0) = a;
		fpush(c, 1.0L);
		c->fsw &= ~FSW_C2;
		return;
	case 0x33:
		__asm__("fpatan" : "=t"(r) : "0"(a), "u"(b) : "st(1)");
		fpop(c);
		*st(c, 0) = r;
		return;
	case 0x34: {
		long double e;
		__asm__("fxtract" : "=t"(r), "=u"(e) : "0"(a));
		*st(c, 0) = e;
		fpush(c, r);
		return;
	}
	case 0x35:
	case 0x38: {
		uint16_t sw;
		if (rm == 0x38)
			__asm__("1: fprem; fnstsw %%ax; testb $4, %%ah; jnz 1b"
				: "=t"(r), "=a"(sw)
				: "0"(a), "u"(b));
		else
			__asm__("1: fprem1; fnstsw %%ax; testb $4, %%ah; jnz 1b"
				: "=t"(r), "=a"(sw)
				: "0"(a), "u"(b));
		*st(c, 0) = r;
		c->fsw = (uint16_t)((c->fsw & ~FSW_CC) | (sw & (FSW_C0 | FSW_C1 | FSW_C3)));
		return;
	}
	case 0x36:
		c->ftop = (c->ftop - 1) & 7;
		return;
	case 0x37:
		c->ftop = (c->ftop + 1) & 7;
		return;
	case 0x39:
		__asm__("fyl2xp1" : "=t"(r) : "0"(a), "u"(b) : "st(1)");
		fpop(c);
		*st(c, 0) = r;
		return;
	case 0x3a:
		__asm__("fsqrt" : "+t"(a));
		*st(c, 0) = a;
		return;
	case 0x3b: {
		long double s;
		__asm__("fsincos" : "=t"(r), "=u"(s) : "0"(a));
		*st(c, 0) = s;
		fpush(c, r);
		c->fsw &= ~FSW_C2;
		return;
	}
	case 0x3c:
		*st(c, 0) = round_rc(a, (c->fcw >> 10) & 3);
		return;
	case 0x3d:
		__asm__("fscale" : "=t"(r) : "0"(a), "u"(b));
		*st(c, 0) = r;
		return;
	case 0x3e:
		__asm__("fsin" : "+t"(a));
		*st(c, 0) = a;
		c->fsw &= ~FSW_C2;
		return;
	case 0x3f:
		__asm__("fcos" : "+t"(a));
		*st(c, 0) = a;
		c->fsw &= ~FSW_C2;
		return;
	}
	raise_ud(c);
}

/* Full two-bit tag word from the empty bitmap (valid/zero/special). */
static uint16_t full_tags(struct soft_cpu *c)
{
	uint16_t tw = 0;
	for (int i = 0; i < 8; i++) {
		unsigned t;
		if (c->ftw_empty & (1u << i)) {
			t = 3;
		} else {
			long double v = c->st[i];
			t = v == 0 ? 1 : (v != v || v - v != 0) ? 2 : 0;
		}
		tw |= (uint16_t)(t << (2 * i));
	}
	return tw;
}

/* FNSTENV / FLDENV in the 32-bit protected-mode format (28 bytes). */
static void env_store(struct soft_cpu *c, struct insn *d)
{
	uint64_t a = d->ea;
	int seg = SEG(d);
	mem_write(c, seg, a, 4, c->fcw | 0xffff0000u);
	mem_write(c, seg, a + 4, 4, fsw_read(c) | 0xffff0000u);
	mem_write(c, seg, a + 8, 4, full_tags(c) | 0xffff0000u);
	for (int i = 12; i < 28; i += 4)
		mem_write(c, seg, a + i, 4, 0);
}

static void env_load(struct soft_cpu *c, struct insn *d)
{
	uint64_t a = d->ea;
	int seg = SEG(d);
	c->fcw = (uint16_t)mem_read(c, seg, a, 2);
	uint16_t sw = (uint16_t)mem_read(c, seg, a + 4, 2);
	uint16_t tw = (uint16_t)mem_read(c, seg, a + 8, 2);
	c->fsw = sw & ~0x3800u;
	c->ftop = (sw >> 11) & 7;
	c->ftw_empty = 0;
	for (int i = 0; i < 8; i++)
		if (((tw >> (2 * i)) & 3) == 3)
			c->ftw_empty |= (uint16_t)(1u << i);
}

static void mem_ops(struct soft_cpu *c, struct insn *d, unsigned esc, int r)
{
	switch (esc) {
	case 0:
	case 2:
	case 4:
	case 6: {
		long double v = esc == 0   ? load_fp(c, d, 4)
				: esc == 4 ? load_fp(c, d, 8)
				: esc == 2 ? load_int(c, d, 4)
					   : load_int(c, d, 2);
		if (r == 2 || r == 3) {
			fcompare(c, *st(c, 0), v, false);
			if (r == 3)
				fpop(c);
		} else {
			*st(c, 0) = arith(r, *st(c, 0), v);
		}
		return;
	}
	case 1:
		switch (r) {
		case 0:
			fpush(c, load_fp(c, d, 4));
			return;
		case 2:
		case 3:
			store_fp(c, d, 4, *st(c, 0));
			if (r == 3)
				fpop(c);
			return;
		case 4:
			env_load(c, d);
			return;
		case 5:
			c->fcw = (uint16_t)mem_read(c, SEG(d), d->ea, 2);
			return;
		case 6:
			env_store(c, d);
			return;
		case 7:
			mem_write(c, SEG(d), d->ea, 2, c->fcw);
			return;
		}
		break;
	case 3:
		switch (r) {
		case 0:
			fpush(c, load_int(c, d, 4));
			return;
		case 1:
		case 2:
		case 3:
			mem_write(c, SEG(d), d->ea, 4, to_int(c, *st(c, 0), 4, r == 1));
			if (r != 2)
				fpop(c);
			return;
		case 5:
			fpush(c, load_m80(c, d));
			return;
		case 7:
			store_m80(c, d, *st(c, 0));
			fpop(c);
			return;
		}
		break;
	case 5:
		switch (r) {
		case 0:
			fpush(c, load_fp(c, d, 8));
			return;
		case 1:
			mem_write(c, SEG(d), d->ea, 8, to_int(c, *st(c, 0), 8, true));
			fpop(c);
			return;
		case 2:
		case 3:
			store_fp(c, d, 8, *st(c, 0));
			if (r == 3)
				fpop(c);
			return;
		case 4: { /* FRSTOR */
			env_load(c, d);
			struct insn t = *d;
			for (int i = 0; i < 8; i++) {
				t.ea = d->ea + 28 + i * 10;
				*st(c, i) = load_m80(c, &t);
			}
			return;
		}
		case 6: { /* FNSAVE */
			env_store(c, d);
			struct insn t = *d;
			for (int i = 0; i < 8; i++) {
				t.ea = d->ea + 28 + i * 10;
				store_m80(c, &t, *st(c, i));
			}
			uint32_t mx = c->mxcsr;
			xmm_t x[16];
			memcpy(x, c->xmm, sizeof(x));
			fpu_reset(c);
			c->mxcsr = mx;
			memcpy(c->xmm, x, sizeof(x));
			return;
		}
		case 7:
			mem_write(c, SEG(d), d->ea, 2, fsw_read(c));
			return;
		}
		break;
	case 7:
		switch (r) {
		case 0:
			fpush(c, load_int(c, d, 2));
			return;
		case 1:
		case 2:
		case 3:
			mem_write(c, SEG(d), d->ea, 2, to_int(c, *st(c, 0), 2, r == 1));
			if (r != 2)
				fpop(c);
			return;
		case 5:
			fpush(c, load_int(c, d, 8));
			return;
		case 7:
			mem_write(c, SEG(d), d->ea, 8, to_int(c, *st(c, 0), 8, false));
			fpop(c);
			return;
		}
		break;
	}
	raise_ud(c);
}

static void reg_ops(struct soft_cpu *c, unsigned esc, int r, int i)
{
	unsigned rm = (unsigned)(r << 3 | i);
	switch (esc) {
	case 0:
		if (r == 2 || r == 3) {
			fcompare(c, *st(c, 0), *st(c, i), false);
			if (r == 3)
				fpop(c);
		} else {
			*st(c, 0) = arith(r, *st(c, 0), *st(c, i));
		}
		return;
	case 1:
		if (r == 0) {
			fpush(c, *st(c, i));
		} else if (r == 1) {
			long double t = *st(c, 0);
			*st(c, 0) = *st(c, i);
			*st(c, i) = t;
		} else if (rm == 0x10) {
			/* FNOP */
		} else if (rm >= 0x20) {
			d9_special(c, rm);
		} else {
			raise_ud(c);
		}
		return;
	case 2:
	case 3: {
		if (esc == 2 && rm == 0x29) { /* FUCOMPP */
			fcompare(c, *st(c, 0), *st(c, 1), false);
			fpop(c);
			fpop(c);
			return;
		}
		if (esc == 3 && rm == 0x22) { /* FNCLEX */
			c->fsw &= 0x7f00;
			return;
		}
		if (esc == 3 && rm == 0x23) { /* FNINIT */
			c->fcw = 0x37f;
			c->fsw = 0;
			c->ftw_empty = 0xff;
			c->ftop = 0;
			return;
		}
		if (esc == 3 && (r == 5 || r == 6)) { /* FUCOMI / FCOMI */
			fcompare(c, *st(c, 0), *st(c, i), true);
			return;
		}
		if (r > 3)
			break;
		static const unsigned cc[4] = {2, 4, 6, 10}; /* B, E, BE, U as Jcc codes */
		bool take = cond(c, cc[r]);
		if (esc == 3)
			take = !take;
		if (take)
			*st(c, 0) = *st(c, i);
		return;
	}
	case 4:
	case 6: {
		static const int swap[8] = {0, 1, 2, 3, 5, 4, 7, 6};
		if (esc == 6 && rm == 0x19) { /* FCOMPP */
			fcompare(c, *st(c, 0), *st(c, 1), false);
			fpop(c);
			fpop(c);
			return;
		}
		if (r == 2 || r == 3) {
			fcompare(c, *st(c, 0), *st(c, i), false);
			if (r == 3)
				fpop(c);
			return;
		}
		*st(c, i) = arith(swap[r], *st(c, i), *st(c, 0));
		if (esc == 6)
			fpop(c);
		return;
	}
	case 5:
		switch (r) {
		case 0:
			c->ftw_empty |= (uint16_t)(1u << ((c->ftop + i) & 7));
			return;
		case 2:
		case 3:
			*st(c, i) = *st(c, 0);
			if (r == 3)
				fpop(c);
			return;
		case 4:
		case 5:
			fcompare(c, *st(c, 0), *st(c, i), false);
			if (r == 5)
				fpop(c);
			return;
		}
		break;
	case 7:
		if (rm == 0x20) {
			c->r[R_RAX] = (c->r[R_RAX] & ~0xffffull) | fsw_read(c);
			return;
		}
		if (r == 5 || r == 6) {
			fcompare(c, *st(c, 0), *st(c, i), true);
			fpop(c);
			return;
		}
		if (r == 0) { /* FFREEP */
			c->ftw_empty |= (uint16_t)(1u << ((c->ftop + i) & 7));
			fpop(c);
			return;
		}
		break;
	}
	raise_ud(c);
}

void exec_x87(struct soft_cpu *c, struct insn *d)
{
	if (c->cr0 & (CR0_EM | CR0_TS))
		raise_exc(c, EXC_NM, false, 0);
	unsigned esc = (d->op & 0xff) - 0xd8;
	int r = d->reg & 7;
	if (d->is_mem)
		mem_ops(c, d, esc, r);
	else
		reg_ops(c, esc, r, d->rm & 7);
}

void fxsave(struct soft_cpu *c, uint8_t *img)
{
	memset(img, 0, 512);
	store_n(img, 2, c->fcw);
	store_n(img + 2, 2, fsw_read(c));
	img[4] = (uint8_t)~c->ftw_empty;
	store_n(img + 24, 4, c->mxcsr);
	store_n(img + 28, 4, 0xffff); /* MXCSR_MASK: DAZ supported */
	for (int i = 0; i < 8; i++)
		memcpy(img + 32 + i * 16, st(c, i), 10);
	memcpy(img + 160, c->xmm, 256);
}

void fxrstor(struct soft_cpu *c, const uint8_t *img)
{
	c->fcw = (uint16_t)load_n(img, 2);
	uint16_t sw = (uint16_t)load_n(img + 2, 2);
	c->fsw = sw & ~0x3800u;
	c->ftop = (sw >> 11) & 7;
	c->ftw_empty = (uint8_t)~img[4];
	c->mxcsr = (uint32_t)load_n(img + 24, 4) & 0xffff;
	for (int i = 0; i < 8; i++) {
		long double v = 0;
		memcpy(&v, img + 32 + i * 16, 10);
		*st(c, i) = v;
	}
	memcpy(c->xmm, img + 160, 256);
}
