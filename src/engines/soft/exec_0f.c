/* The 0F opcode map: bit operations, conditional moves, compare-exchange and
 * most of the system instructions (descriptor tables, control and debug
 * registers, MSRs, SYSCALL/SYSRET, SWAPGS, INVLPG). SIMD and x87 live in
 * fpu_sse.c. */
#include "engines/soft/soft.h"

#define SEG(d) ((d)->seg >= 0 ? (d)->seg : (d)->ea_seg)

static uint64_t sext(uint64_t v, int size)
{
	int sh = 64 - size * 8;
	return sh ? (uint64_t)((int64_t)(v << sh) >> sh) : v;
}

static void need_prot(struct soft_cpu *c)
{
	if (!(c->cr0 & CR0_PE) || (c->fl & FL_VM))
		raise_ud(c);
}

/* LLDT / LTR: system descriptors are 16 bytes in long mode. */
static void load_system_seg(struct soft_cpu *c, struct insn *d, int seg)
{
	need_prot(c);
	require_cpl0(c);
	trap(c, seg == SEG_TR ? TRAP_LTR : TRAP_LLDT);
	uint16_t sel = (uint16_t)rm_get(c, d, 2);
	struct seg *s = &c->seg[seg];
	if ((sel & ~3) == 0) {
		if (seg == SEG_TR)
			raise_gp(c, 0);
		s->sel = sel;
		s->unusable = 1;
		return;
	}
	if (sel & 4)
		raise_gp(c, sel & ~3);
	uint64_t lo, hi;
	read_descriptor(c, sel, &lo, &hi, EXC_GP);
	struct seg n;
	unpack_descriptor(&n, sel, lo);
	bool ok = seg == SEG_TR ? (n.type == 9 || n.type == 1) : n.type == 2;
	if (n.s || !ok)
		raise_gp(c, sel & ~3);
	if (!n.present)
		raise_exc(c, EXC_NP, true, sel & ~3);
	if (c->efer & EFER_LMA) {
		n.base |= (hi & 0xffffffff) << 32;
		if (!canonical(n.base))
			raise_gp(c, sel & ~3);
	}
	if (seg == SEG_TR) {
		n.type |= 2; /* busy */
		lin_write(c, c->gdt.base + (sel & ~7u) + 5, 1, (lo >> 40 & 0xff) | 2, 0);
	}
	*s = n;
}

static void group6(struct soft_cpu *c, struct insn *d)
{
	need_prot(c);
	switch (d->reg & 7) {
	case 0:
	case 1:
		if (c->cpl && (c->cr4 & (1u << 11)))
			raise_gp(c, 0);
		trap(c, TRAP_STR);
		rm_set(c, d, d->is_mem ? 2 : d->opsize,
		       c->seg[(d->reg & 7) == 0 ? SEG_LDTR : SEG_TR].sel);
		return;
	case 2:
		load_system_seg(c, d, SEG_LDTR);
		return;
	case 3:
		load_system_seg(c, d, SEG_TR);
		return;
	case 4:
	case 5: {
		uint16_t sel = (uint16_t)rm_get(c, d, 2);
		bool ok = false;
		if (sel & ~3) {
			uint64_t lo, hi;
			uint64_t limit = (sel & 4) ? c->seg[SEG_LDTR].limit : c->gdt.limit;
			if ((sel & ~7u) + 7 <= limit) {
				read_descriptor(c, sel, &lo, &hi, EXC_GP);
				struct seg s;
				unpack_descriptor(&s, sel, lo);
				bool code = s.type & 8;
				ok = s.s && (s.dpl >= c->cpl || (code && (s.type & 4)));
				if ((d->reg & 7) == 4)
					ok = ok && (!code || (s.type & 2));
				else
					ok = ok && !code && (s.type & 2);
			}
		}
		set_flags(c, ok ? FL_ZF : 0, FL_ZF);
		return;
	}
	}
	raise_ud(c);
}

static void lar_lsl(struct soft_cpu *c, struct insn *d, bool lsl)
{
	need_prot(c);
	trap(c, TRAP_STR);
	uint16_t sel = (uint16_t)rm_get(c, d, 2);
	uint64_t limit = (sel & 4) ? c->seg[SEG_LDTR].limit : c->gdt.limit;
	if ((sel & ~3) == 0 || (sel & ~7u) + 7 > limit) {
		set_flags(c, 0, FL_ZF);
		return;
	}
	uint64_t lo, hi;
	read_descriptor(c, sel, &lo, &hi, EXC_GP);
	struct seg s;
	unpack_descriptor(&s, sel, lo);
	bool conforming = s.s && (s.type & 0xc) == 0xc;
	bool sys_ok = s.s || s.type == 2 || s.type == 9 || s.type == 0xb;
	if (!sys_ok || (!conforming && (s.dpl < c->cpl || s.dpl < (sel & 3)))) {
		set_flags(c, 0, FL_ZF);
		return;
	}
	reg_set(c, d->reg, d->opsize, true, lsl ? s.limit : (lo >> 32) & 0x00f0ff00);
	set_flags(c, FL_ZF, FL_ZF);
}

static void group7(struct soft_cpu *c, struct insn *d)
{
	int r = d->reg & 7;
	bool m64 = c->mode == 8;
	if (!d->is_mem) {
		unsigned rm = d->rm & 7;
		switch (r) {
		case 2:
			if (rm <= 1) { /* XGETBV, XSETBV */
				exec_xcr(c, d, rm == 1);
				return;
			}
			break;
		case 4:
			trap(c, TRAP_SMSW);
			reg_set(c, d->rm, d->opsize, true, c->cr0);
			return;
		case 6:
			require_cpl0(c);
			trap(c, TRAP_LMSW);
			write_cr(c, 0,
				 (c->cr0 & ~0xeull) | (rm_get(c, d, 2) & 0xf) | (c->cr0 & CR0_PE));
			return;
		case 7:
			if (rm == 0 && m64) { /* SWAPGS */
				require_cpl0(c);
				trap(c, TRAP_SWAPGS);
				uint64_t t = c->seg[SEG_GS].base;
				c->seg[SEG_GS].base = c->kernel_gs_base;
				c->kernel_gs_base = t;
				return;
			}
			if (rm == 1) { /* RDTSCP */
				if (c->cpl && (c->cr4 & 4))
					raise_gp(c, 0);
				trap(c, TRAP_RDTSC);
				uint64_t t = read_tsc(c);
				c->r[R_RAX] = (uint32_t)t;
				c->r[R_RDX] = t >> 32;
				c->r[R_RCX] = (uint32_t)c->tsc_aux;
				return;
			}
			break;
		}
		raise_ud(c);
	}
	int seg = SEG(d);
	switch (r) {
	case 0:
	case 1: {
		if (c->cpl && (c->cr4 & (1u << 11)))
			raise_gp(c, 0);
		trap(c, TRAP_SGDT);
		struct dtable *t = r == 0 ? &c->gdt : &c->idt;
		mem_write(c, seg, d->ea, 2, t->limit);
		mem_write(c, seg, d->ea + 2, m64 ? 8 : 4, t->base);
		return;
	}
	case 2:
	case 3: {
		require_cpl0(c);
		trap(c, r == 2 ? TRAP_LGDT : TRAP_LIDT);
		uint16_t limit = (uint16_t)mem_read(c, seg, d->ea, 2);
		uint64_t base = mem_read(c, seg, d->ea + 2, m64 ? 8 : 4);
		if (!m64 && d->opsize == 2)
			base &= 0xffffff;
		if (m64 && !canonical(base))
			raise_gp(c, 0);
		struct dtable *t = r == 2 ? &c->gdt : &c->idt;
		t->limit = limit;
		t->base = base;
		return;
	}
	case 4:
		trap(c, TRAP_SMSW);
		mem_write(c, seg, d->ea, 2, c->cr0);
		return;
	case 6:
		require_cpl0(c);
		trap(c, TRAP_LMSW);
		write_cr(c, 0,
			 (c->cr0 & ~0xeull) | (mem_read(c, seg, d->ea, 2) & 0xf) |
			     (c->cr0 & CR0_PE));
		return;
	case 7:
		require_cpl0(c);
		trap(c, TRAP_INVLPG);
		tlb_flush_page(c, seg_lin(c, seg, d->ea, 1, ACC_READ));
		return;
	}
	raise_ud(c);
}

static void mov_cr(struct soft_cpu *c, struct insn *d, bool to_cr)
{
	require_cpl0(c);
	trap(c, TRAP_MOV_CR);
	int size = c->mode == 8 ? 8 : 4;
	if (to_cr) {
		uint64_t v = c->r[d->rm] & mask_of(size);
		write_cr(c, d->reg, v);
	} else {
		reg_set(c, d->rm, size, true, read_cr(c, d->reg));
	}
}

static void mov_dr(struct soft_cpu *c, struct insn *d, bool to_dr)
{
	require_cpl0(c);
	trap(c, TRAP_MOV_DR);
	int n = d->reg;
	if (n > 7)
		raise_ud(c);
	if (n == 4 || n == 5)
		n += 2;
	uint64_t *p = n < 4 ? &c->dr[n] : n == 6 ? &c->dr6 : &c->dr7;
	if (to_dr)
		*p = c->r[d->rm] & mask_of(c->mode == 8 ? 8 : 4);
	else
		reg_set(c, d->rm, c->mode == 8 ? 8 : 4, true,
			*p | (n == 6   ? 0xffff0ff0
			      : n == 7 ? 0x400
				       : 0));
}

static uint64_t bt_common(struct soft_cpu *c, struct insn *d, int op, uint64_t bit, bool from_reg)
{
	int size = d->opsize, bits = size * 8;
	if (d->is_mem && from_reg) {
		int64_t off = (int64_t)sext(bit, size);
		int64_t words = off >> (bits == 16 ? 4 : bits == 32 ? 5 : 6);
		d->ea = (d->ea + (uint64_t)(words * size)) & mask_of(d->addrsize);
	}
	bit &= bits - 1;
	uint64_t m = 1ull << bit, old;
	if (op == 0) {
		old = rm_get(c, d, size);
	} else if (!d->is_mem) {
		old = reg_get(c, d->rm, size, true);
		uint64_t n = op == 1 ? old | m : op == 2 ? old & ~m : old ^ m;
		reg_set(c, d->rm, size, true, n);
	} else {
		uint8_t *p = mem_rmw_ptr(c, SEG(d), d->ea, size);
		if (p && d->lock) {
			for (;;) {
				old = load_n(p, size);
				uint64_t n = op == 1 ? old | m : op == 2 ? old & ~m : old ^ m;
				if (cas_n(p, size, old, n))
					break;
			}
		} else {
			old = mem_read(c, SEG(d), d->ea, size);
			uint64_t n = op == 1 ? old | m : op == 2 ? old & ~m : old ^ m;
			mem_write(c, SEG(d), d->ea, size, n);
		}
	}
	set_flags(c, (old & m) ? FL_CF : 0, FL_CF);
	return old;
}

static uint64_t shld(struct soft_cpu *c, int size, uint64_t a, uint64_t b, unsigned n, bool left)
{
	int bits = size * 8;
	uint64_t m = mask_of(size), sign = 1ull << (bits - 1);
	n &= size == 8 ? 63 : 31;
	if (!n)
		return a;
	uint64_t r, cf;
	if (size == 2 && n > 16) {
		/* undefined by the architecture; model the 48-bit rotate hardware does */
		unsigned __int128 w = ((unsigned __int128)a << 32) | (b << 16) | a;
		if (left) {
			r = (uint64_t)(w >> (48 - n)) & m;
			cf = (uint64_t)(w >> (48 - n + 16)) & 1;
		} else {
			w = ((unsigned __int128)a << 32) | (b << 16) | a;
			r = (uint64_t)(w >> n) & m;
			cf = (uint64_t)(w >> (n - 1)) & 1;
		}
	} else if (left) {
		r = ((a << n) | (n == (unsigned)bits ? b : b >> (bits - n))) & m;
		cf = (a >> (bits - n)) & 1;
	} else {
		r = ((a >> n) | (n == (unsigned)bits ? b : b << (bits - n))) & m;
		cf = (a >> (n - 1)) & 1;
	}
	uint64_t f = 0;
	f |= cf ? FL_CF : 0;
	f |= ((r ^ a) & sign) ? FL_OF : 0;
	f |= r == 0 ? FL_ZF : 0;
	f |= (r & sign) ? FL_SF : 0;
	f |= parity((uint8_t)r) ? FL_PF : 0;
	set_flags(c, f, FL_ARITH);
	return r;
}

static void cmpxchg(struct soft_cpu *c, struct insn *d, int size)
{
	bool rex = d->rex != 0;
	uint64_t acc = c->r[R_RAX] & mask_of(size), src = reg_get(c, d->reg, size, rex), old;
	if (!d->is_mem) {
		old = reg_get(c, d->rm, size, rex);
		alu(c, 7, size, acc, old);
		if (acc == old)
			reg_set(c, d->rm, size, rex, src);
		else
			reg_set(c, R_RAX, size, true, old);
		return;
	}
	uint8_t *p = mem_rmw_ptr(c, SEG(d), d->ea, size);
	if (p) {
		old = cmpxchg_n(p, size, acc, src);
	} else {
		old = mem_read(c, SEG(d), d->ea, size);
		mem_write(c, SEG(d), d->ea, size, old == acc ? src : old);
	}
	alu(c, 7, size, acc, old);
	if (acc != old)
		reg_set(c, R_RAX, size, true, old);
}

static void cmpxchg8b(struct soft_cpu *c, struct insn *d)
{
	if (!d->is_mem)
		raise_ud(c);
	bool wide = d->rex & 8;
	int seg = SEG(d);
	if (wide) {
		if (d->ea & 15)
			raise_gp(c, 0);
		uint8_t *p = mem_rmw_ptr(c, seg, d->ea, 16);
		unsigned __int128 expect = ((unsigned __int128)c->r[R_RDX] << 64) | c->r[R_RAX];
		unsigned __int128 want = ((unsigned __int128)c->r[R_RCX] << 64) | c->r[R_RBX];
		unsigned __int128 cur;
		bool ok;
		if (p) {
			/* The host's own CMPXCHG16B (every x86-64 host this engine runs
			 * on has it), so it stays atomic against other vCPUs' 8-byte
			 * atomics and stores on the same words. The address is 16-byte
			 * aligned (checked above). */
			uint64_t lo = (uint64_t)expect, hi = (uint64_t)(expect >> 64);
			__asm__ volatile("lock cmpxchg16b %2"
					 : "+a"(lo), "+d"(hi),
					   "+m"(*(unsigned __int128 *)(void *)p), "=@ccz"(ok)
					 : "b"((uint64_t)want), "c"((uint64_t)(want >> 64))
					 : "memory");
			cur = ((unsigned __int128)hi << 64) | lo;
		} else {
			uint64_t lo = mem_read(c, seg, d->ea, 8),
				 hi = mem_read(c, seg, d->ea + 8, 8);
			cur = ((unsigned __int128)hi << 64) | lo;
			ok = cur == expect;
			mem_write(c, seg, d->ea, 8, ok ? c->r[R_RBX] : lo);
			mem_write(c, seg, d->ea + 8, 8, ok ? c->r[R_RCX] : hi);
		}
		if (!ok) {
			c->r[R_RAX] = (uint64_t)cur;
			c->r[R_RDX] = (uint64_t)(cur >> 64);
		}
		set_flags(c, ok ? FL_ZF : 0, FL_ZF);
		return;
	}
	uint64_t expect = ((c->r[R_RDX] & 0xffffffff) << 32) | (c->r[R_RAX] & 0xffffffff);
	uint64_t want = ((c->r[R_RCX] & 0xffffffff) << 32) | (c->r[R_RBX] & 0xffffffff), cur;
	uint8_t *p = mem_rmw_ptr(c, seg, d->ea, 8);
	bool ok;
	if (p) {
		cur = cmpxchg_n(p, 8, expect, want);
		ok = cur == expect;
	} else {
		cur = mem_read(c, seg, d->ea, 8);
		ok = cur == expect;
		mem_write(c, seg, d->ea, 8, ok ? want : cur);
	}
	if (!ok) {
		c->r[R_RAX] = (uint32_t)cur;
		c->r[R_RDX] = cur >> 32;
	}
	set_flags(c, ok ? FL_ZF : 0, FL_ZF);
}

static void bit_scan(struct soft_cpu *c, struct insn *d, bool reverse)
{
	int size = d->opsize, bits = size * 8;
	uint64_t v = rm_get(c, d, size);
	if (d->rep == 0xf3) { /* TZCNT / LZCNT */
		uint64_t n;
		if (!v)
			n = (uint64_t)bits;
		else if (reverse)
			n = (uint64_t)(__builtin_clzll(v) - (64 - bits));
		else
			n = (uint64_t)__builtin_ctzll(v);
		reg_set(c, d->reg, size, true, n);
		set_flags(c, (v ? 0 : FL_CF) | (n ? 0 : FL_ZF), FL_ARITH);
		return;
	}
	if (!v) {
		set_flags(c, FL_ZF, FL_ARITH);
		return;
	}
	uint64_t n = reverse ? (uint64_t)(63 - __builtin_clzll(v)) : (uint64_t)__builtin_ctzll(v);
	reg_set(c, d->reg, size, true, n);
	set_flags(c, 0, FL_ARITH);
}

static void fsgsbase(struct soft_cpu *c, struct insn *d)
{
	if (c->mode != 8 || !(c->cr4 & CR4_FSGSBASE) || d->is_mem)
		raise_ud(c);
	int r = d->reg & 7, size = d->rex & 8 ? 8 : 4;
	int seg = (r & 1) ? SEG_GS : SEG_FS;
	if (r < 2) {
		reg_set(c, d->rm, size, true, c->seg[seg].base);
	} else if (r < 4) {
		uint64_t v = c->r[d->rm] & mask_of(size);
		if ((uint64_t)((int64_t)(v << 16) >> 16) != v)
			raise_gp(c, 0);
		c->seg[seg].base = v;
	} else {
		raise_ud(c);
	}
}

static void group15(struct soft_cpu *c, struct insn *d)
{
	int r = d->reg & 7;
	if (!d->is_mem) {
		if (d->rep == 0xf3) {
			fsgsbase(c, d);
			return;
		}
		if (r >= 5) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			return;
		}
		raise_ud(c);
	}
	int seg = SEG(d);
	switch (r) {
	case 0:
	case 1: {
		if (c->cr0 & (CR0_TS | CR0_EM))
			raise_exc(c, (c->cr0 & CR0_EM) ? EXC_UD : EXC_NM, false, 0);
		if (d->ea & 15)
			raise_gp(c, 0);
		uint8_t img[512];
		if (r == 0) {
			fxsave(c, img);
			for (int i = 0; i < 512; i += 8)
				mem_write(c, seg, d->ea + i, 8, load_n(img + i, 8));
		} else {
			for (int i = 0; i < 512; i += 8)
				store_n(img + i, 8, mem_read(c, seg, d->ea + i, 8));
			uint32_t mxcsr = (uint32_t)load_n(img + 24, 4);
			if (mxcsr & 0xffff0000u)
				raise_gp(c, 0);
			fxrstor(c, img);
		}
		return;
	}
	case 2: {
		uint32_t v = (uint32_t)mem_read(c, seg, d->ea, 4);
		if (v & 0xffff0000u)
			raise_gp(c, 0);
		c->mxcsr = v;
		return;
	}
	case 3:
		mem_write(c, seg, d->ea, 4, c->mxcsr);
		return;
	case 4:
	case 5:
	case 6:
		exec_xsave(c, d);
		return;
	case 7: /* CLFLUSH: caches are coherent here */
		mem_read(c, seg, d->ea, 1);
		return;
	}
	raise_ud(c);
}

static void msr_insn(struct soft_cpu *c, bool write)
{
	require_cpl0(c);
	trap(c, write ? TRAP_WRMSR : TRAP_RDMSR);
	uint32_t msr = (uint32_t)c->r[R_RCX];
	uint64_t v = ((c->r[R_RDX] & 0xffffffff) << 32) | (c->r[R_RAX] & 0xffffffff);
	if (!msr_access(c, msr, &v, write))
		raise_gp(c, 0);
	if (!write) {
		c->r[R_RAX] = (uint32_t)v;
		c->r[R_RDX] = v >> 32;
	}
}

void exec_0f(struct soft_cpu *c, struct insn *d)
{
	unsigned b = d->op & 0xff;
	int size = d->opsize;
	bool rex = d->rex != 0;

	if (d->op >> 8 == 1) {
		if (d->lock && !(d->is_mem && (b == 0xab || b == 0xb3 || b == 0xbb || b == 0xb0 ||
					       b == 0xb1 || b == 0xc0 || b == 0xc1 || b == 0xc7 ||
					       (b == 0xba && (d->reg & 7) >= 5))))
			raise_ud(c);
		switch (b) {
		case 0x00:
			group6(c, d);
			return;
		case 0x01:
			group7(c, d);
			return;
		case 0x02:
		case 0x03:
			lar_lsl(c, d, b == 3);
			return;
		case 0x05:
			do_syscall(c);
			return;
		case 0x06:
			require_cpl0(c);
			trap(c, TRAP_CLTS);
			c->cr0 &= ~(uint64_t)CR0_TS;
			return;
		case 0x07:
			do_sysret(c, size);
			return;
		case 0x08:
		case 0x09:
			require_cpl0(c);
			trap(c, TRAP_WBINVD);
			return;
		case 0x0d:
		case 0x18 ... 0x1f:
			return; /* prefetch and hint NOPs */
		case 0x20:
		case 0x22:
			mov_cr(c, d, b == 0x22);
			return;
		case 0x21:
		case 0x23:
			mov_dr(c, d, b == 0x23);
			return;
		case 0x30:
		case 0x32:
			msr_insn(c, b == 0x30);
			return;
		case 0x31:
			if (c->cpl && (c->cr4 & 4))
				raise_gp(c, 0);
			trap(c, TRAP_RDTSC);
			{
				uint64_t t = read_tsc(c);
				c->r[R_RAX] = (uint32_t)t;
				c->r[R_RDX] = t >> 32;
			}
			return;
		case 0x33:
			trap(c, TRAP_RDPMC);
			raise_gp(c, 0);
		case 0x40 ... 0x4f: {
			uint64_t v = rm_get(c, d, size);
			if (cond(c, b & 15))
				reg_set(c, d->reg, size, true, v);
			else if (size == 4)
				c->r[d->reg] &= 0xffffffff;
			return;
		}
		case 0x80 ... 0x8f:
			if (cond(c, b & 15)) {
				uint64_t t = c->rip + (uint64_t)d->imm;
				c->rip = c->mode == 8 ? t : t & mask_of(size);
			}
			return;
		case 0x90 ... 0x9f:
			rm_set(c, d, 1, cond(c, b & 15));
			return;
		case 0xa0:
		case 0xa8:
			trap(c, TRAP_MOV_SEG);
			push(c, c->mode == 8 ? (d->opsize_prefix ? 2 : 8) : size,
			     c->seg[b == 0xa0 ? SEG_FS : SEG_GS].sel);
			return;
		case 0xa1:
		case 0xa9: {
			trap(c, TRAP_MOV_SEG);
			int s = c->mode == 8 ? (d->opsize_prefix ? 2 : 8) : size;
			uint64_t sp = c->r[R_RSP];
			uint16_t sel = (uint16_t)pop(c, s);
			c->r[R_RSP] = sp;
			uint64_t base = c->seg[b == 0xa1 ? SEG_FS : SEG_GS].base;
			load_seg(c, b == 0xa1 ? SEG_FS : SEG_GS, sel);
			if (c->mode == 8 && (sel & ~3) == 0)
				c->seg[b == 0xa1 ? SEG_FS : SEG_GS].base = base;
			pop(c, s);
			return;
		}
		case 0xa2:
			trap(c, TRAP_CPUID);
			do_cpuid(c);
			return;
		case 0xa3:
			bt_common(c, d, 0, reg_get(c, d->reg, size, true), true);
			return;
		case 0xab:
			bt_common(c, d, 1, reg_get(c, d->reg, size, true), true);
			return;
		case 0xb3:
			bt_common(c, d, 2, reg_get(c, d->reg, size, true), true);
			return;
		case 0xbb:
			bt_common(c, d, 3, reg_get(c, d->reg, size, true), true);
			return;
		case 0xba:
			if ((d->reg & 7) < 4)
				break;
			bt_common(c, d, (d->reg & 7) - 4, (uint64_t)d->imm, false);
			return;
		case 0xa4:
		case 0xa5:
		case 0xac:
		case 0xad: {
			unsigned n = (b & 1) ? (unsigned)c->r[R_RCX] & 0xff : (unsigned)d->imm;
			uint64_t src = reg_get(c, d->reg, size, true);
			uint64_t a = rm_get(c, d, size);
			rm_set(c, d, size, shld(c, size, a, src, n, b < 0xa8));
			return;
		}
		case 0xae:
			group15(c, d);
			return;
		case 0xaf:
			reg_set(c, d->reg, size, true,
				imul2(c, size, reg_get(c, d->reg, size, true), rm_get(c, d, size)));
			return;
		case 0xb0:
			cmpxchg(c, d, 1);
			return;
		case 0xb1:
			cmpxchg(c, d, size);
			return;
		case 0xb6:
			reg_set(c, d->reg, size, true, rm_get(c, d, 1));
			return;
		case 0xb7:
			reg_set(c, d->reg, size, true, rm_get(c, d, 2));
			return;
		case 0xbe:
			reg_set(c, d->reg, size, true, sext(rm_get(c, d, 1), 1));
			return;
		case 0xbf:
			reg_set(c, d->reg, size, true, sext(rm_get(c, d, 2), 2));
			return;
		case 0xb8: {
			if (d->rep != 0xf3)
				break;
			uint64_t v = rm_get(c, d, size);
			reg_set(c, d->reg, size, true, (uint64_t)__builtin_popcountll(v));
			set_flags(c, v ? 0 : FL_ZF, FL_ARITH);
			return;
		}
		case 0xbc:
		case 0xbd:
			bit_scan(c, d, b == 0xbd);
			return;
		case 0xc0:
		case 0xc1: {
			int s = b & 1 ? size : 1;
			uint64_t src = reg_get(c, d->reg, s, rex), prev = 0;
			if (!d->is_mem) {
				prev = reg_get(c, d->rm, s, rex);
				uint64_t sum = alu(c, 0, s, prev, src);
				reg_set(c, d->reg, s, rex, prev);
				reg_set(c, d->rm, s, rex, sum);
				return;
			}
			uint8_t *p = mem_rmw_ptr(c, SEG(d), d->ea, s);
			if (p) {
				for (;;) {
					prev = load_n(p, s);
					uint64_t sum = (prev + src) & mask_of(s);
					if (!d->lock) {
						store_n(p, s, sum);
						break;
					}
					if (cas_n(p, s, prev, sum))
						break;
				}
			} else {
				prev = mem_read(c, SEG(d), d->ea, s);
				mem_write(c, SEG(d), d->ea, s, prev + src);
			}
			alu(c, 0, s, prev, src);
			reg_set(c, d->reg, s, rex, prev);
			return;
		}
		case 0xc7:
			if ((d->reg & 7) == 1) {
				cmpxchg8b(c, d);
				return;
			}
			break;
		case 0xc8 ... 0xcf: {
			int r = (b & 7) | ((d->rex & 1) << 3);
			if (size == 8)
				c->r[r] = __builtin_bswap64(c->r[r]);
			else if (size == 4)
				c->r[r] = __builtin_bswap32((uint32_t)c->r[r]);
			else
				reg_set(c, r, 2, true, 0);
			return;
		}
		case 0x0b:
		case 0xff:
			raise_ud(c);
		}
	}
	if (exec_sse(c, d))
		return;
	raise_ud(c);
}
