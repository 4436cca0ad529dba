/* Execution of the one-byte opcode map: integer arithmetic, data movement,
 * stack and control flow. Innocuous instructions act on the virtual register
 * file directly; the few sensitive ones here (segment loads, far transfers,
 * PUSHF/POPF, INT, IRET, HLT, CLI/STI) call their emulation handlers. */
#include <stdio.h>

#include "engines/soft/soft.h"

#define SEG(d) ((d)->seg >= 0 ? (d)->seg : (d)->ea_seg)

uint64_t reg_get(struct soft_cpu *c, int r, int size, bool rex)
{
	if (size == 1) {
		if (!rex && r >= 4 && r < 8)
			return (c->r[r - 4] >> 8) & 0xff;
		return c->r[r] & 0xff;
	}
	return c->r[r] & mask_of(size);
}

void reg_set(struct soft_cpu *c, int r, int size, bool rex, uint64_t v)
{
	switch (size) {
	case 1:
		if (!rex && r >= 4 && r < 8)
			c->r[r - 4] = (c->r[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
		else
			c->r[r] = (c->r[r] & ~0xffull) | (v & 0xff);
		break;
	case 2:
		c->r[r] = (c->r[r] & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		c->r[r] = (uint32_t)v;
		break;
	default:
		c->r[r] = v;
		break;
	}
}

uint64_t rm_get(struct soft_cpu *c, struct insn *d, int size)
{
	if (!d->is_mem)
		return reg_get(c, d->rm, size, d->rex);
	return mem_read(c, SEG(d), d->ea, size);
}

void rm_set(struct soft_cpu *c, struct insn *d, int size, uint64_t v)
{
	if (!d->is_mem)
		reg_set(c, d->rm, size, d->rex, v);
	else
		mem_write(c, SEG(d), d->ea, size, v);
}

int stack_size(struct soft_cpu *c)
{
	if (c->mode == 8)
		return 8;
	return c->seg[SEG_SS].db ? 4 : 2;
}

static void set_sp(struct soft_cpu *c, uint64_t sp)
{
	int ss = stack_size(c);
	if (ss == 8)
		c->r[R_RSP] = sp;
	else if (ss == 4)
		c->r[R_RSP] = (uint32_t)sp;
	else
		c->r[R_RSP] = (c->r[R_RSP] & ~0xffffull) | (sp & 0xffff);
}

void push(struct soft_cpu *c, int size, uint64_t v)
{
	uint64_t sp = (c->r[R_RSP] - size) & mask_of(stack_size(c));
	mem_write(c, SEG_SS, sp, size, v);
	set_sp(c, sp);
}

uint64_t pop(struct soft_cpu *c, int size)
{
	uint64_t sp = c->r[R_RSP] & mask_of(stack_size(c));
	uint64_t v = mem_read(c, SEG_SS, sp, size);
	set_sp(c, sp + size);
	return v;
}

uint64_t alu(struct soft_cpu *c, int op, int size, uint64_t a, uint64_t b)
{
	uint64_t r, cf;
	switch (op) {
	case 0:
		r = a + b;
		lazy(c, LF_ADD, size, r, a, b);
		break;
	case 1:
		r = a | b;
		lazy(c, LF_LOGIC, size, r, 0, 0);
		break;
	case 2:
		cf = get_flags(c) & FL_CF;
		r = a + b + cf;
		lazy(c, cf ? LF_ADC : LF_ADD, size, r, a, b);
		break;
	case 3:
		cf = get_flags(c) & FL_CF;
		r = a - b - cf;
		lazy(c, cf ? LF_SBB : LF_SUB, size, r, a, b);
		break;
	case 4:
		r = a & b;
		lazy(c, LF_LOGIC, size, r, 0, 0);
		break;
	case 6:
		r = a ^ b;
		lazy(c, LF_LOGIC, size, r, 0, 0);
		break;
	default: /* 5 sub, 7 cmp */
		r = a - b;
		lazy(c, LF_SUB, size, r, a, b);
		break;
	}
	return r & mask_of(size);
}

/* Read-modify-write of the r/m operand; `old` is in scope in NEW. With LOCK
 * the update is an atomic compare-and-swap on the host page, retried on a
 * race, so SMP guests get real atomicity. */
#define RMW(c, d, size, NEW)                                                                       \
	do {                                                                                       \
		if (!(d)->is_mem) {                                                                \
			uint64_t old = reg_get(c, (d)->rm, size, (d)->rex);                        \
			reg_set(c, (d)->rm, size, (d)->rex, (NEW));                                \
			break;                                                                     \
		}                                                                                  \
		uint8_t *p_ = mem_rmw_ptr(c, SEG(d), (d)->ea, size);                               \
		if (!p_) {                                                                         \
			uint64_t old = mem_read(c, SEG(d), (d)->ea, size);                         \
			mem_write(c, SEG(d), (d)->ea, size, (NEW));                                \
			break;                                                                     \
		}                                                                                  \
		for (;;) {                                                                         \
			uint64_t old = load_n(p_, size);                                           \
			uint64_t new_ = (NEW);                                                     \
			if (!(d)->lock) {                                                          \
				store_n(p_, size, new_);                                           \
				break;                                                             \
			}                                                                          \
			if (cas_n(p_, size, old, new_))                                            \
				break;                                                             \
		}                                                                                  \
	} while (0)

static uint64_t sext(uint64_t v, int size)
{
	int sh = 64 - size * 8;
	return sh ? (uint64_t)((int64_t)(v << sh) >> sh) : v;
}

uint64_t shift_op(struct soft_cpu *c, int op, int size, uint64_t a, unsigned cnt)
{
	int bits = size * 8;
	uint64_t m = mask_of(size), sign = 1ull << (bits - 1), r = a;
	cnt &= size == 8 ? 63 : 31;
	if (!cnt)
		return a;
	uint64_t f, cf = 0, of = 0;
	switch (op) {
	case 0: { /* ROL */
		unsigned n = cnt % bits;
		r = n ? ((a << n) | (a >> (bits - n))) & m : a;
		cf = r & 1;
		of = !!(r & sign) ^ cf;
		break;
	}
	case 1: { /* ROR */
		unsigned n = cnt % bits;
		r = n ? ((a >> n) | (a << (bits - n))) & m : a;
		cf = !!(r & sign);
		of = cf ^ !!(r & (sign >> 1));
		break;
	}
	case 2: { /* RCL */
		unsigned n = cnt % (bits + 1);
		cf = get_flags(c) & FL_CF;
		for (unsigned i = 0; i < n; i++) {
			uint64_t out = !!(r & sign);
			r = ((r << 1) | cf) & m;
			cf = out;
		}
		of = !!(r & sign) ^ cf;
		break;
	}
	case 3: { /* RCR */
		unsigned n = cnt % (bits + 1);
		cf = get_flags(c) & FL_CF;
		of = !!(r & sign) ^ cf;
		for (unsigned i = 0; i < n; i++) {
			uint64_t out = r & 1;
			r = (r >> 1) | (cf ? sign : 0);
			cf = out;
		}
		break;
	}
	case 4:
	case 6: /* SHL */
		r = cnt < 64 ? (a << cnt) & m : 0;
		lazy(c, LF_SHL, size, r, a, cnt);
		return r;
	case 5: /* SHR */
		r = cnt < 64 ? a >> cnt : 0;
		lazy(c, LF_SHR, size, r, a, cnt);
		return r;
	default: { /* SAR */
		int64_t s = (int64_t)sext(a, size);
		r = (uint64_t)(s >> (cnt > 63 ? 63 : cnt)) & m;
		lazy(c, LF_SAR, size, r, a, cnt);
		return r;
	}
	}
	/* rotates change only CF and OF */
	f = get_flags(c) & ~(uint64_t)(FL_CF | FL_OF);
	f |= cf ? FL_CF : 0;
	f |= of ? FL_OF : 0;
	c->fl = f;
	return r;
}

static void set_mul_flags(struct soft_cpu *c, int size, uint64_t lo, bool overflow)
{
	lazy(c, LF_MUL, size, lo, overflow, 0);
}

static void group3(struct soft_cpu *c, struct insn *d, int size)
{
	uint64_t m = mask_of(size);
	int bits = size * 8;
	switch (d->reg & 7) {
	case 0:
	case 1:
		alu(c, 4, size, rm_get(c, d, size), (uint64_t)d->imm & m);
		return;
	case 2:
		RMW(c, d, size, ~old & m);
		return;
	case 3:
		RMW(c, d, size, alu(c, 5, size, 0, old));
		return;
	}
	uint64_t src = rm_get(c, d, size);
	uint64_t a = size == 1 ? c->r[R_RAX] & 0xff : c->r[R_RAX] & m;
	uint64_t dx = size == 1 ? (c->r[R_RAX] >> 8) & 0xff : c->r[R_RDX] & m;
	uint64_t lo, hi;
	switch (d->reg & 7) {
	case 4: {
		unsigned __int128 p = (unsigned __int128)a * src;
		lo = (uint64_t)p & m;
		hi = size == 8 ? (uint64_t)(p >> 64) : (uint64_t)(p >> bits) & m;
		set_mul_flags(c, size, lo, hi != 0);
		break;
	}
	case 5: {
		__int128 p = (__int128)(int64_t)sext(a, size) * (int64_t)sext(src, size);
		lo = (uint64_t)p & m;
		hi = size == 8 ? (uint64_t)((unsigned __int128)p >> 64) : (uint64_t)(p >> bits) & m;
		set_mul_flags(c, size, lo, (__int128)(int64_t)sext(lo, size) != p);
		break;
	}
	case 6: {
		if (!src)
			raise_exc(c, EXC_DE, false, 0);
		unsigned __int128 n =
		    size == 8 ? ((unsigned __int128)dx << 64) | a : (dx << bits) | a;
		unsigned __int128 q = n / src;
		if (q > m)
			raise_exc(c, EXC_DE, false, 0);
		lo = (uint64_t)q;
		hi = (uint64_t)(n % src);
		break;
	}
	default: {
		int64_t s = (int64_t)sext(src, size);
		if (!s)
			raise_exc(c, EXC_DE, false, 0);
		__int128 n = size == 8 ? (__int128)(((unsigned __int128)dx << 64) | a)
				       : (__int128)(int64_t)sext((dx << bits) | a, size * 2);
		__int128 q, r;
		if (s == -1) {
			q = (__int128)(0 - (unsigned __int128)n);
			r = 0;
			if (n == (__int128)((unsigned __int128)1 << 127))
				raise_exc(c, EXC_DE, false, 0);
		} else {
			q = n / s;
			r = n % s;
		}
		__int128 lim = (__int128)1 << (bits - 1);
		if (q >= lim || q < -lim)
			raise_exc(c, EXC_DE, false, 0);
		lo = (uint64_t)q & m;
		hi = (uint64_t)r & m;
		break;
	}
	}
	if (size == 1) {
		c->r[R_RAX] = (c->r[R_RAX] & ~0xffffull) | (lo & 0xff) | ((hi & 0xff) << 8);
	} else {
		reg_set(c, R_RAX, size, true, lo);
		reg_set(c, R_RDX, size, true, hi);
	}
}

/* Two- and three-operand IMUL: dst = a * b truncated, CF=OF on overflow. */
uint64_t imul2(struct soft_cpu *c, int size, uint64_t a, uint64_t b)
{
	__int128 p = (__int128)(int64_t)sext(a, size) * (int64_t)sext(b, size);
	uint64_t lo = (uint64_t)p & mask_of(size);
	set_mul_flags(c, size, lo, (__int128)(int64_t)sext(lo, size) != p);
	return lo;
}

static int opsize64(struct soft_cpu *c, struct insn *d)
{
	if (c->mode == 8)
		return d->opsize_prefix ? 2 : 8;
	return d->opsize;
}

static void jump(struct soft_cpu *c, struct insn *d, uint64_t target)
{
	if (c->mode == 8)
		c->rip = target;
	else
		c->rip = target & mask_of(d->opsize);
}

static void push_seg(struct soft_cpu *c, struct insn *d, int seg)
{
	trap(c, TRAP_MOV_SEG);
	push(c, opsize64(c, d), c->seg[seg].sel);
}

static void pop_seg(struct soft_cpu *c, struct insn *d, int seg)
{
	trap(c, TRAP_MOV_SEG);
	int size = opsize64(c, d);
	uint64_t sp = c->r[R_RSP];
	uint16_t sel = (uint16_t)pop(c, size);
	c->r[R_RSP] = sp;
	load_seg(c, seg, sel);
	pop(c, size);
	if (seg == SEG_SS)
		c->interrupt_shadow = true;
}

static uint64_t count_reg(struct soft_cpu *c, struct insn *d)
{
	return c->r[R_RCX] & mask_of(d->addrsize);
}

static void set_count_reg(struct soft_cpu *c, struct insn *d, uint64_t v)
{
	reg_set(c, R_RCX, d->addrsize, true, v);
}

static void enter(struct soft_cpu *c, struct insn *d)
{
	int size = opsize64(c, d), ss = stack_size(c);
	unsigned level = d->imm2 & 31;
	push(c, size, c->r[R_RBP]);
	uint64_t frame = c->r[R_RSP] & mask_of(ss);
	uint64_t bp = c->r[R_RBP];
	for (unsigned i = 1; i < level; i++) {
		bp -= size;
		push(c, size, mem_read(c, SEG_SS, bp & mask_of(ss), size));
	}
	if (level)
		push(c, size, frame);
	uint64_t sp = (c->r[R_RSP] - (uint64_t)d->imm) & mask_of(ss);
	mem_read(c, SEG_SS, sp, 1); /* the new stack top must be accessible */
	reg_set(c, R_RBP, ss == 2 ? 2 : size, true, frame);
	set_sp(c, sp);
}

static void pusha(struct soft_cpu *c, struct insn *d)
{
	uint64_t sp = c->r[R_RSP];
	for (int r = R_RAX; r <= R_RDI; r++)
		push(c, d->opsize, r == R_RSP ? sp : c->r[r]);
}

static void popa(struct soft_cpu *c, struct insn *d)
{
	for (int r = R_RDI; r >= R_RAX; r--) {
		uint64_t v = pop(c, d->opsize);
		if (r != R_RSP)
			reg_set(c, r, d->opsize, true, v);
	}
}

static void int_n(struct soft_cpu *c, int vec)
{
	trap(c, TRAP_INT);
	if ((c->fl & FL_VM) && ((c->fl >> 12) & 3) < 3)
		raise_gp(c, 0);
	deliver_event(c, vec, false, 0, true, c->rip);
}

static void load_far_ptr(struct soft_cpu *c, struct insn *d, int seg)
{
	if (!d->is_mem)
		raise_ud(c);
	uint64_t off = mem_read(c, SEG(d), d->ea, d->opsize);
	uint16_t sel = (uint16_t)mem_read(c, SEG(d), d->ea + d->opsize, 2);
	trap(c, TRAP_MOV_SEG);
	load_seg(c, seg, sel);
	reg_set(c, d->reg, d->opsize, true, off);
}

static void group5(struct soft_cpu *c, struct insn *d)
{
	int size = d->opsize;
	switch (d->reg & 7) {
	case 0:
		get_flags(c); /* INC/DEC keep CF: materialise it first */
		RMW(c, d, size,
		    (lazy(c, LF_INC, size, old + 1, old, 1), (old + 1) & mask_of(size)));
		return;
	case 1:
		get_flags(c);
		RMW(c, d, size,
		    (lazy(c, LF_DEC, size, old - 1, old, 1), (old - 1) & mask_of(size)));
		return;
	case 2: {
		int s = opsize64(c, d);
		uint64_t t = rm_get(c, d, s);
		push(c, s, c->rip);
		jump(c, d, t);
		return;
	}
	case 4:
		jump(c, d, rm_get(c, d, opsize64(c, d)));
		return;
	case 3:
	case 5: {
		if (!d->is_mem)
			raise_ud(c);
		uint64_t off = mem_read(c, SEG(d), d->ea, size);
		uint16_t sel = (uint16_t)mem_read(c, SEG(d), d->ea + size, 2);
		far_jump(c, sel, off, (d->reg & 7) == 3, size, c->rip);
		return;
	}
	case 6:
		push(c, opsize64(c, d), rm_get(c, d, opsize64(c, d)));
		return;
	}
	raise_ud(c);
}

static void do_hlt(struct soft_cpu *c)
{
	require_cpl0(c);
	trap(c, TRAP_HLT);
	/* With interrupts off only an NMI or INIT can wake the CPU; on a
	 * uniprocessor nothing sends those, so tell the machine it is stuck. */
	if (!(c->fl & FL_IF) && c->vm->cfg.ncpus == 1) {
		c->exit->reason = EXIT_HLT;
		c->exit->fail.rip = c->last ? c->last->start : c->rip;
		snprintf(c->exit->fail.why, sizeof(c->exit->fail.why), "hlt with IF=0");
		c->exit_pending = true;
		return;
	}
	c->halted = true;
}

static void cli_sti(struct soft_cpu *c, bool sti)
{
	int iopl = (c->fl >> 12) & 3;
	if ((c->cr0 & CR0_PE) && c->cpl > iopl)
		raise_gp(c, 0);
	trap(c, sti ? TRAP_STI : TRAP_CLI);
	if (sti) {
		if (!(c->fl & FL_IF))
			c->interrupt_shadow = true;
		c->fl |= FL_IF;
	} else {
		c->fl &= ~(uint64_t)FL_IF;
	}
}

static void bcd(struct soft_cpu *c, unsigned op, int64_t imm)
{
	uint64_t f = get_flags(c);
	uint8_t al = (uint8_t)c->r[R_RAX], ah = (uint8_t)(c->r[R_RAX] >> 8);
	bool cf = f & FL_CF, af = f & FL_AF;
	switch (op) {
	case 0x27:   /* DAA */
	case 0x2f: { /* DAS */
		uint8_t old = al;
		bool sub = op == 0x2f, ncf = false;
		if ((al & 0xf) > 9 || af) {
			ncf = cf || (sub ? al < 6 : al > 0xf9);
			al = sub ? al - 6 : al + 6;
			af = true;
		} else {
			af = false;
		}
		if (old > 0x99 || cf) {
			al = sub ? al - 0x60 : al + 0x60;
			ncf = true;
		}
		cf = ncf;
		break;
	}
	case 0x37: /* AAA */
	case 0x3f: /* AAS */
		if ((al & 0xf) > 9 || af) {
			if (op == 0x37) {
				c->r[R_RAX] += 0x106;
			} else {
				c->r[R_RAX] = (c->r[R_RAX] & ~0xffffull) |
					      ((c->r[R_RAX] - 6) & 0xff) |
					      ((uint64_t)((ah - 1) & 0xff) << 8);
			}
			af = cf = true;
		} else {
			af = cf = false;
		}
		c->r[R_RAX] &= ~0xf0ull;
		lazy(c, LF_LOGIC, 1, c->r[R_RAX], 0, 0);
		set_flags(c, (cf ? FL_CF : 0) | (af ? FL_AF : 0), FL_CF | FL_AF);
		return;
	case 0xd4: /* AAM */
		if (!(imm & 0xff))
			raise_exc(c, EXC_DE, false, 0);
		ah = al / (uint8_t)imm;
		al = al % (uint8_t)imm;
		c->r[R_RAX] = (c->r[R_RAX] & ~0xffffull) | al | ((uint64_t)ah << 8);
		lazy(c, LF_LOGIC, 1, al, 0, 0);
		return;
	default: /* AAD */
		al = (uint8_t)(al + ah * (uint8_t)imm);
		c->r[R_RAX] = (c->r[R_RAX] & ~0xffffull) | al;
		lazy(c, LF_LOGIC, 1, al, 0, 0);
		return;
	}
	c->r[R_RAX] = (c->r[R_RAX] & ~0xffull) | al;
	lazy(c, LF_LOGIC, 1, al, 0, 0);
	set_flags(c, (cf ? FL_CF : 0) | (af ? FL_AF : 0), FL_CF | FL_AF);
}

void exec_insn(struct soft_cpu *c, struct insn *d)
{
	/* only this dispatcher runs sensitive and privileged instructions, so
	 * the fast handlers need not count classes (see soft_stats) */
	counter_add(&c->stat_class[d->cls], 1);
	c->insn_rsp = c->r[R_RSP];
	if (d->invalid)
		raise_ud(c);
	unsigned b = d->op & 0xff;
	int size = d->opsize;
	bool rex = d->rex != 0;
	bool m64 = c->mode == 8;

	if (d->is_mem) {
		uint64_t ea = (uint64_t)d->disp;
		if (d->base == 16)
			ea += d->start + d->len;
		else if (d->base >= 0)
			ea += c->r[d->base];
		if (d->index >= 0)
			ea += c->r[d->index] * d->scale;
		d->ea = ea & mask_of(d->addrsize);
	}
	c->rip = d->start + d->len;
	if (!m64)
		c->rip &= 0xffffffff;

	if (d->op >> 8) {
		exec_0f(c, d);
		return;
	}
	if (d->lock && (!d->is_mem ||
			!((b < 0x40 && (b & 7) < 2 && (b & 0x38) != 0x38) ||
			  (b >= 0x80 && b <= 0x83 && (d->reg & 7) != 7) || b == 0x86 || b == 0x87 ||
			  ((b == 0xf6 || b == 0xf7) && ((d->reg & 7) == 2 || (d->reg & 7) == 3)) ||
			  ((b == 0xfe || b == 0xff) && (d->reg & 7) < 2))))
		raise_ud(c);

	switch (b) {
	case 0x00 ... 0x3f: {
		int op = (b >> 3) & 7;
		switch (b & 7) {
		case 0:
		case 1: {
			int s = b & 1 ? size : 1;
			uint64_t src = reg_get(c, d->reg, s, rex);
			if (op == 7)
				alu(c, 7, s, rm_get(c, d, s), src);
			else
				RMW(c, d, s, alu(c, op, s, old, src));
			return;
		}
		case 2:
		case 3: {
			int s = b & 1 ? size : 1;
			uint64_t r = alu(c, op, s, reg_get(c, d->reg, s, rex), rm_get(c, d, s));
			if (op != 7)
				reg_set(c, d->reg, s, rex, r);
			return;
		}
		case 4:
		case 5: {
			int s = b & 1 ? size : 1;
			uint64_t r = alu(c, op, s, reg_get(c, R_RAX, s, true),
					 (uint64_t)d->imm & mask_of(s));
			if (op != 7)
				reg_set(c, R_RAX, s, true, r);
			return;
		}
		}
		switch (b) {
		case 0x06:
			push_seg(c, d, SEG_ES);
			return;
		case 0x07:
			pop_seg(c, d, SEG_ES);
			return;
		case 0x0e:
			push_seg(c, d, SEG_CS);
			return;
		case 0x16:
			push_seg(c, d, SEG_SS);
			return;
		case 0x17:
			pop_seg(c, d, SEG_SS);
			return;
		case 0x1e:
			push_seg(c, d, SEG_DS);
			return;
		case 0x1f:
			pop_seg(c, d, SEG_DS);
			return;
		case 0x27:
		case 0x2f:
		case 0x37:
		case 0x3f:
			bcd(c, b, 0);
			return;
		}
		break;
	}
	case 0x40 ... 0x47: {
		uint64_t a = reg_get(c, b & 7, size, true);
		get_flags(c);
		lazy(c, LF_INC, size, a + 1, a, 1);
		reg_set(c, b & 7, size, true, a + 1);
		return;
	}
	case 0x48 ... 0x4f: {
		uint64_t a = reg_get(c, b & 7, size, true);
		get_flags(c);
		lazy(c, LF_DEC, size, a - 1, a, 1);
		reg_set(c, b & 7, size, true, a - 1);
		return;
	}
	case 0x50 ... 0x57:
		push(c, opsize64(c, d), c->r[(b & 7) | ((d->rex & 1) << 3)]);
		return;
	case 0x58 ... 0x5f: {
		int s = opsize64(c, d);
		uint64_t v = pop(c, s);
		reg_set(c, (b & 7) | ((d->rex & 1) << 3), s, true, v);
		return;
	}
	case 0x60:
		pusha(c, d);
		return;
	case 0x61:
		popa(c, d);
		return;
	case 0x62: { /* BOUND: the signed index within [lower, upper] or #BR */
		if (!d->is_mem)
			break;
		int s = size == 2 ? 2 : 4;
		int64_t i = (int64_t)sext(reg_get(c, d->reg, s, false), s);
		int64_t lo = (int64_t)sext(mem_read(c, SEG(d), d->ea, s), s);
		int64_t hi = (int64_t)sext(mem_read(c, SEG(d), d->ea + s, s), s);
		if (i < lo || i > hi)
			raise_exc(c, EXC_BR, false, 0);
		return;
	}
	case 0x63:
		if (!m64) { /* ARPL: raise the selector's RPL to the source's */
			if (!(c->cr0 & CR0_PE) || (c->fl & FL_VM))
				break;
			uint64_t dst = rm_get(c, d, 2), src = reg_get(c, d->reg, 2, false);
			bool raise = (dst & 3) < (src & 3);
			if (raise)
				rm_set(c, d, 2, (dst & ~3ull) | (src & 3));
			set_flags(c, raise ? FL_ZF : 0, FL_ZF);
			return;
		}
		reg_set(c, d->reg, size, true, sext(rm_get(c, d, 4), 4));
		return;
	case 0x68:
	case 0x6a:
		push(c, opsize64(c, d), (uint64_t)d->imm);
		return;
	case 0x69:
	case 0x6b:
		reg_set(c, d->reg, size, true,
			imul2(c, size, rm_get(c, d, size), (uint64_t)d->imm));
		return;
	case 0x6c ... 0x6f:
		exec_io(c, d);
		return;
	case 0x70 ... 0x7f:
		if (cond(c, b & 15))
			jump(c, d, c->rip + (uint64_t)d->imm);
		return;
	case 0x80 ... 0x83: {
		int s = b & 1 ? size : 1, op = d->reg & 7;
		uint64_t imm = (uint64_t)d->imm & mask_of(s);
		if (op == 7)
			alu(c, 7, s, rm_get(c, d, s), imm);
		else
			RMW(c, d, s, alu(c, op, s, old, imm));
		return;
	}
	case 0x84:
	case 0x85: {
		int s = b & 1 ? size : 1;
		alu(c, 4, s, rm_get(c, d, s), reg_get(c, d->reg, s, rex));
		return;
	}
	case 0x86:
	case 0x87: {
		int s = b & 1 ? size : 1;
		uint64_t r = reg_get(c, d->reg, s, rex), prev;
		if (!d->is_mem) {
			prev = reg_get(c, d->rm, s, rex);
			reg_set(c, d->rm, s, rex, r);
		} else {
			/* XCHG with memory is always atomic */
			uint8_t *p = mem_rmw_ptr(c, SEG(d), d->ea, s);
			if (p) {
				do
					prev = load_n(p, s);
				while (!cas_n(p, s, prev, r));
			} else {
				prev = mem_read(c, SEG(d), d->ea, s);
				mem_write(c, SEG(d), d->ea, s, r);
			}
		}
		reg_set(c, d->reg, s, rex, prev);
		return;
	}
	case 0x88:
		rm_set(c, d, 1, reg_get(c, d->reg, 1, rex));
		return;
	case 0x89:
		rm_set(c, d, size, c->r[d->reg]);
		return;
	case 0x8a:
		reg_set(c, d->reg, 1, rex, rm_get(c, d, 1));
		return;
	case 0x8b:
		reg_set(c, d->reg, size, true, rm_get(c, d, size));
		return;
	case 0x8c: {
		int sr = d->reg & 7;
		if (sr >= SEG_TR)
			raise_ud(c);
		trap(c, TRAP_MOV_SEG);
		rm_set(c, d, d->is_mem ? 2 : size, c->seg[sr].sel);
		return;
	}
	case 0x8d:
		if (!d->is_mem)
			raise_ud(c);
		reg_set(c, d->reg, size, true, d->ea);
		return;
	case 0x8e: {
		int sr = d->reg & 7;
		if (sr == SEG_CS || sr >= SEG_TR)
			raise_ud(c);
		trap(c, TRAP_MOV_SEG);
		load_seg(c, sr, (uint16_t)rm_get(c, d, 2));
		if (sr == SEG_SS)
			c->interrupt_shadow = true;
		return;
	}
	case 0x8f: {
		int s = opsize64(c, d);
		uint64_t sp = c->r[R_RSP];
		uint64_t v = pop(c, s);
		if (d->is_mem) {
			/* The address is computed after the pop (RSP-based modes). */
			uint64_t nsp = c->r[R_RSP];
			if (d->base == R_RSP || d->index == R_RSP)
				d->ea = (d->ea + (nsp - sp)) & mask_of(d->addrsize);
			c->r[R_RSP] = sp;
			mem_write(c, SEG(d), d->ea, s, v);
			c->r[R_RSP] = nsp;
		} else {
			reg_set(c, d->rm, s, true, v);
		}
		return;
	}
	case 0x90:
		if (d->rex & 1)
			goto xchg;
		return;
	case 0x91 ... 0x97:
	xchg : {
		int r = (b & 7) | ((d->rex & 1) << 3);
		uint64_t t = reg_get(c, r, size, true);
		reg_set(c, r, size, true, reg_get(c, R_RAX, size, true));
		reg_set(c, R_RAX, size, true, t);
		return;
	}
	case 0x98:
		if (size == 2)
			reg_set(c, R_RAX, 2, true, sext(c->r[R_RAX], 1));
		else if (size == 4)
			reg_set(c, R_RAX, 4, true, sext(c->r[R_RAX], 2));
		else
			c->r[R_RAX] = sext(c->r[R_RAX], 4);
		return;
	case 0x99:
		reg_set(c, R_RDX, size, true, (c->r[R_RAX] >> (size * 8 - 1)) & 1 ? ~0ull : 0);
		return;
	case 0x9a:
		far_jump(c, (uint16_t)d->imm2, (uint64_t)d->imm, true, size, c->rip);
		return;
	case 0x9b:
		if ((c->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
			raise_exc(c, EXC_NM, false, 0);
		return;
	case 0x9c: {
		if ((c->fl & FL_VM) && ((c->fl >> 12) & 3) < 3)
			raise_gp(c, 0);
		trap(c, TRAP_PUSHF);
		push(c, opsize64(c, d), get_flags(c) & ~(uint64_t)(FL_VM | FL_RF));
		return;
	}
	case 0x9d: {
		if ((c->fl & FL_VM) && ((c->fl >> 12) & 3) < 3)
			raise_gp(c, 0);
		trap(c, TRAP_POPF);
		int s = opsize64(c, d);
		write_flags(c, pop(c, s), s, false);
		return;
	}
	case 0x9e:
		set_flags(c, (c->r[R_RAX] >> 8) & 0xff, FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF);
		return;
	case 0x9f:
		c->r[R_RAX] = (c->r[R_RAX] & ~0xff00ull) | ((get_flags(c) & 0xff) << 8);
		return;
	case 0xa0 ... 0xa3: {
		int s = b & 1 ? size : 1, seg = d->seg >= 0 ? d->seg : SEG_DS;
		if (b < 0xa2)
			reg_set(c, R_RAX, s, true, mem_read(c, seg, (uint64_t)d->imm, s));
		else
			mem_write(c, seg, (uint64_t)d->imm, s, c->r[R_RAX]);
		return;
	}
	case 0xa4 ... 0xa7:
	case 0xaa ... 0xaf:
		exec_string(c, d);
		return;
	case 0xa8:
	case 0xa9: {
		int s = b & 1 ? size : 1;
		alu(c, 4, s, c->r[R_RAX], (uint64_t)d->imm);
		return;
	}
	case 0xb0 ... 0xb7:
		reg_set(c, (b & 7) | ((d->rex & 1) << 3), 1, rex, (uint64_t)d->imm);
		return;
	case 0xb8 ... 0xbf:
		reg_set(c, (b & 7) | ((d->rex & 1) << 3), size, true, (uint64_t)d->imm);
		return;
	case 0xc0:
	case 0xc1:
	case 0xd0 ... 0xd3: {
		int s = b & 1 ? size : 1;
		unsigned cnt = b <= 0xc1   ? (unsigned)d->imm
			       : b <= 0xd1 ? 1
					   : (unsigned)c->r[R_RCX] & 0xff;
		RMW(c, d, s, shift_op(c, d->reg & 7, s, old, cnt));
		return;
	}
	case 0xc2:
	case 0xc3: {
		int s = opsize64(c, d);
		uint64_t t = pop(c, s);
		if (b == 0xc2)
			set_sp(c, c->r[R_RSP] + (uint64_t)d->imm);
		jump(c, d, t);
		if (s == 2)
			c->rip &= 0xffff;
		return;
	}
	case 0xc4:
	case 0xc5:
		load_far_ptr(c, d, b == 0xc4 ? SEG_ES : SEG_DS);
		return;
	case 0xc6:
	case 0xc7:
		if (d->reg & 7)
			break;
		rm_set(c, d, b & 1 ? size : 1, (uint64_t)d->imm);
		return;
	case 0xc8:
		enter(c, d);
		return;
	case 0xc9: {
		int s = opsize64(c, d);
		set_sp(c, c->r[R_RBP]);
		reg_set(c, R_RBP, s, true, pop(c, s));
		return;
	}
	case 0xca:
	case 0xcb:
		far_return(c, size, b == 0xca ? (uint16_t)d->imm : 0);
		return;
	case 0xcc:
		trap(c, TRAP_INT);
		deliver_event(c, EXC_BP, false, 0, true, c->rip);
		return;
	case 0xcd:
		int_n(c, d->imm & 0xff);
		return;
	case 0xce:
		if (get_flags(c) & FL_OF)
			int_n(c, EXC_OF);
		return;
	case 0xcf:
		do_iret(c, size);
		return;
	case 0xd4:
	case 0xd5:
		bcd(c, b, d->imm);
		return;
	case 0xd7: {
		uint64_t off = (c->r[R_RBX] + (c->r[R_RAX] & 0xff)) & mask_of(d->addrsize);
		reg_set(c, R_RAX, 1, true, mem_read(c, d->seg >= 0 ? d->seg : SEG_DS, off, 1));
		return;
	}
	case 0xd8 ... 0xdf:
		exec_x87(c, d);
		return;
	case 0xe0 ... 0xe2: {
		uint64_t n = (count_reg(c, d) - 1) & mask_of(d->addrsize);
		set_count_reg(c, d, n);
		bool take = n != 0;
		if (b == 0xe0)
			take = take && !(get_flags(c) & FL_ZF);
		else if (b == 0xe1)
			take = take && (get_flags(c) & FL_ZF);
		if (take)
			jump(c, d, c->rip + (uint64_t)d->imm);
		return;
	}
	case 0xe3:
		if (!count_reg(c, d))
			jump(c, d, c->rip + (uint64_t)d->imm);
		return;
	case 0xe4 ... 0xe7:
	case 0xec ... 0xef:
		exec_io(c, d);
		return;
	case 0xe8: {
		int s = opsize64(c, d);
		push(c, s, c->rip);
		jump(c, d, c->rip + (uint64_t)d->imm);
		return;
	}
	case 0xe9:
	case 0xeb:
		jump(c, d, c->rip + (uint64_t)d->imm);
		return;
	case 0xea:
		far_jump(c, (uint16_t)d->imm2, (uint64_t)d->imm, false, size, 0);
		return;
	case 0xf4:
		do_hlt(c);
		return;
	case 0xf5:
		set_flags(c, get_flags(c) ^ FL_CF, FL_CF);
		return;
	case 0xf6:
		group3(c, d, 1);
		return;
	case 0xf7:
		group3(c, d, size);
		return;
	case 0xf8:
		set_flags(c, 0, FL_CF);
		return;
	case 0xf9:
		set_flags(c, FL_CF, FL_CF);
		return;
	case 0xfa:
		cli_sti(c, false);
		return;
	case 0xfb:
		cli_sti(c, true);
		return;
	case 0xfc:
		c->fl &= ~(uint64_t)FL_DF;
		return;
	case 0xfd:
		c->fl |= FL_DF;
		return;
	case 0xfe:
		get_flags(c);
		if ((d->reg & 7) == 0) {
			RMW(c, d, 1, (lazy(c, LF_INC, 1, old + 1, old, 1), (old + 1) & 0xff));
			return;
		}
		if ((d->reg & 7) == 1) {
			RMW(c, d, 1, (lazy(c, LF_DEC, 1, old - 1, old, 1), (old - 1) & 0xff));
			return;
		}
		break;
	case 0xff:
		group5(c, d);
		return;
	}
	raise_ud(c);
}
