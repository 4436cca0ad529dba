/* Fast paths: specialised handlers for the most frequent 64-bit-mode
 * instruction forms (moves, word-size ALU ops, branches, push/pop), chosen
 * once at decode time and stored in the cached instruction, so the common
 * case skips the generic dispatcher's prefix and mode checks. Anything
 * unusual (byte or 16-bit operands, LOCK, REP, other modes) keeps exec_insn.
 * They do not advance RIP: run_block sets it once per block. */
#include <pthread.h>

#include "engines/soft/soft.h"

#define SEG(d) ((d)->seg >= 0 ? (d)->seg : (d)->ea_seg)

/* Threaded code: each straight-line handler ends by calling the next decoded
 * instruction's handler in tail position (the compiler emits a jump), so a
 * block runs without going back to a dispatch loop, and every handler has its
 * own indirect jump for the branch predictor to learn. The block's last
 * entry is block_end, which returns to run_block; branches end blocks and
 * return themselves. After a store, stop (an exit, or a write to cached code)
 * ends the chain. */
static inline void next_insn(struct soft_cpu *c, struct insn *d)
{
	d[1].fn(c, d + 1);
}

#define THREADED(name)                                                                             \
	static void name(struct soft_cpu *c, struct insn *d)                                       \
	{                                                                                          \
		name##_op(c, d);                                                                   \
		next_insn(c, d);                                                                   \
	}
#define THREADED_STORE(name)                                                                       \
	static void name(struct soft_cpu *c, struct insn *d)                                       \
	{                                                                                          \
		name##_op(c, d);                                                                   \
		if (!c->stop)                                                                      \
			next_insn(c, d);                                                           \
	}

void block_end(struct soft_cpu *c, struct insn *d)
{
}

static inline uint64_t ea(struct soft_cpu *c, struct insn *d)
{
	uint64_t a = (uint64_t)d->disp;
	if (d->base == 16)
		a += d->start + d->len;
	else if (d->base >= 0)
		a += c->r[d->base];
	if (d->index >= 0)
		a += c->r[d->index] * d->scale;
	return d->addrsize == 8 ? a : (uint32_t)a;
}

static inline void wreg(struct soft_cpu *c, int r, int size, uint64_t v)
{
	c->r[r] = size == 8 ? v : (uint32_t)v;
}

static inline uint64_t rreg(struct soft_cpu *c, int r, int size)
{
	return size == 8 ? c->r[r] : (uint32_t)c->r[r];
}

/* A 16-bit register write keeps bits 16-63. */
static inline void wreg16(struct soft_cpu *c, int r, uint64_t v)
{
	c->r[r] = (c->r[r] & ~0xffffull) | (v & 0xffff);
}

/* A byte register: without REX, numbers 4-7 are AH, CH, DH, BH. */
static inline uint8_t rreg8(const struct soft_cpu *c, int r, bool rex)
{
	return !rex && r >= 4 && r < 8 ? (uint8_t)(c->r[r - 4] >> 8) : (uint8_t)c->r[r];
}

/* Guest memory from the fast handlers, which only run in 64-bit mode: the
 * linear address is the offset (plus the FS/GS base), and a TLB hit also
 * proves it canonical, since entries are only made for canonical addresses.
 * A miss takes the general path, which checks, walks, faults or exits; only
 * then, or when a write hits cached code, does c->last need to name the
 * instruction (run_block, restore_insn), so only then is it set. */
static inline __attribute__((always_inline)) uint8_t *
fast_ptr(struct soft_cpu *c, struct insn *d, int seg, uint64_t off, int size, int acc)
{
	uint64_t lin = seg < SEG_FS ? off : off + c->seg[seg].base;
	struct tlb_entry *e = tlb_entry_of(c, lin);
	if (__builtin_expect(e->tag[acc] != (lin & ~0xfffull) || (lin & 0xfff) + size > 0x1000,
			     0)) {
		c->last = d;
		return NULL;
	}
	counter_add(&c->stat_tlb_hit, 1);
	if (acc == ACC_WRITE && code_cached(e)) {
		c->last = d;
		code_written(c, e->code);
	}
	return (uint8_t *)(e->addend + lin);
}

static inline __attribute__((always_inline)) uint64_t fast_read(struct soft_cpu *c, struct insn *d,
								int seg, uint64_t off, int size)
{
	uint8_t *p = fast_ptr(c, d, seg, off, size, ACC_READ);
	return __builtin_expect(p != NULL, 1) ? load_n(p, size) : mem_read(c, seg, off, size);
}

static inline __attribute__((always_inline)) void
fast_write(struct soft_cpu *c, struct insn *d, int seg, uint64_t off, int size, uint64_t v)
{
	uint8_t *p = fast_ptr(c, d, seg, off, size, ACC_WRITE);
	if (__builtin_expect(p != NULL, 1))
		store_n(p, size, v);
	else
		mem_write(c, seg, off, size, v);
}

static inline __attribute__((always_inline)) uint8_t *
fast_rmw_ptr(struct soft_cpu *c, struct insn *d, int seg, uint64_t off, int size)
{
	uint8_t *p = fast_ptr(c, d, seg, off, size, ACC_WRITE);
	return __builtin_expect(p != NULL, 1) ? p : mem_rmw_ptr(c, seg, off, size);
}

static inline __attribute__((always_inline)) uint64_t rm_load(struct soft_cpu *c, struct insn *d)
{
	if (!d->is_mem)
		return rreg(c, d->rm, d->opsize);
	return fast_read(c, d, SEG(d), ea(c, d), d->opsize);
}

/* ALU op r/m <- r/m OP reg, memory operand (the register forms are below). */
#define ALU_RM_R(name, LF, OP, WRITE)                                                              \
	static inline void name##_rm_r_op(struct soft_cpu *c, struct insn *d)                      \
	{                                                                                          \
		int size = d->opsize;                                                              \
		uint64_t b = rreg(c, d->reg, size), a, r;                                          \
		uint64_t off = ea(c, d);                                                           \
		if (!(WRITE)) {                                                                    \
			a = fast_read(c, d, SEG(d), off, size);                                    \
			r = OP;                                                                    \
			lazy(c, LF, size, r, a, b);                                                \
			return;                                                                    \
		}                                                                                  \
		uint8_t *p = fast_rmw_ptr(c, d, SEG(d), off, size);                                \
		a = p ? load_n(p, size) : fast_read(c, d, SEG(d), off, size);                      \
		r = OP;                                                                            \
		if (p)                                                                             \
			store_n(p, size, r);                                                       \
		else                                                                               \
			fast_write(c, d, SEG(d), off, size, r);                                    \
		lazy(c, LF, size, r, a, b);                                                        \
	}                                                                                          \
	THREADED_STORE(name##_rm_r)

/* reg <- reg OP r/m */
#define ALU_R_RM(name, LF, OP, WRITE)                                                              \
	static inline void name##_r_rm_op(struct soft_cpu *c, struct insn *d)                      \
	{                                                                                          \
		int size = d->opsize;                                                              \
		uint64_t a = rreg(c, d->reg, size), b, r;                                          \
		b = rm_load(c, d);                                                                 \
		r = OP;                                                                            \
		lazy(c, LF, size, r, a, b);                                                        \
		if (WRITE)                                                                         \
			wreg(c, d->reg, size, r);                                                  \
	}                                                                                          \
	THREADED(name##_r_rm)

/* r/m <- r/m OP immediate, memory operand */
#define ALU_IMM(name, LF, OP, WRITE)                                                               \
	static inline void name##_imm_op(struct soft_cpu *c, struct insn *d)                       \
	{                                                                                          \
		int size = d->opsize;                                                              \
		uint64_t b = (uint64_t)d->imm & mask_of(size), a, r;                               \
		uint64_t off = ea(c, d);                                                           \
		a = fast_read(c, d, SEG(d), off, size);                                            \
		r = OP;                                                                            \
		if (WRITE)                                                                         \
			fast_write(c, d, SEG(d), off, size, r);                                    \
		lazy(c, LF, size, r, a, b);                                                        \
	}                                                                                          \
	THREADED_STORE(name##_imm)

#define ALU(name, LF, OP, WRITE)                                                                   \
	ALU_RM_R(name, LF, OP, WRITE) ALU_R_RM(name, LF, OP, WRITE) ALU_IMM(name, LF, OP, WRITE)

/* The ALU operations with fast handlers: name, lazy-flag kind, result, whether
 * the result is written back (CMP only sets flags). */
#define ALU_OPS(X)                                                                                 \
	X(add, LF_ADD, a + b, 1)                                                                   \
	X(or, LF_LOGIC, a | b, 1)                                                                  \
	X(and, LF_LOGIC, a &b, 1)                                                                  \
	X(sub, LF_SUB, a - b, 1)                                                                   \
	X(xor, LF_LOGIC, a ^ b, 1)                                                                 \
	X(cmp, LF_SUB, a - b, 0)

ALU_OPS(ALU)
ALU_RM_R(test, LF_LOGIC, a &b, 0)
ALU_IMM(test, LF_LOGIC, a &b, 0)

/* The register-only forms once more, one handler per operand size, so the
 * hottest instructions run without a branch on size or operand kind:
 * DST OP= SRC (rmr: r/m op= reg, rrm: reg op= r/m, ri: r/m op= imm). */
/* MOV dst, src followed by fn reading dst, as one handler on the MOV (see
 * fuse_moves): the copied value reaches the operation in a host register
 * instead of through the guest register file, and one dispatch goes. */
#define FUSED_MOV(fn, size)                                                                        \
	static void fn##_mv(struct soft_cpu *c, struct insn *d)                                    \
	{                                                                                          \
		uint64_t v = rreg(c, d->reg, size);                                                \
		c->r[d->rm] = v;                                                                   \
		fn##_with(c, d + 1, v);                                                            \
		next_insn(c, d + 1);                                                               \
	}

/* The threaded handler of a register instruction whose body fn##_with takes
 * its first operand (the expression A), and its fusion with a preceding MOV. */
#define REG_HANDLERS(fn, A, size)                                                                  \
	static inline void fn##_op(struct soft_cpu *c, struct insn *d)                             \
	{                                                                                          \
		fn##_with(c, d, A);                                                                \
	}                                                                                          \
	THREADED(fn) FUSED_MOV(fn, size)

#define ALU_REG_FN(fn, LF, OP, WRITE, DST, B, size, FLAGS)                                         \
	static inline void fn##_with(struct soft_cpu *c, struct insn *d, uint64_t a)               \
	{                                                                                          \
		uint64_t b = B, r = OP;                                                            \
		if (FLAGS)                                                                         \
			lazy(c, LF, size, r, a, b);                                                \
		if (WRITE)                                                                         \
			wreg(c, d->DST, size, r);                                                  \
	}                                                                                          \
	REG_HANDLERS(fn, rreg(c, d->DST, size), size)
/* each form also as a _nf twin that leaves the flags alone (see elide_dead_flags) */
#define ALU_REG_FORM(name, form, LF, OP, WRITE, DST, B, size)                                      \
	ALU_REG_FN(name##_##form##size, LF, OP, WRITE, DST, B, size, 1)                            \
	ALU_REG_FN(name##_##form##size##_nf, LF, OP, WRITE, DST, B, size, 0)
#define ALU_REG_RMR(name, LF, OP, WRITE)                                                           \
	ALU_REG_FORM(name, rmr, LF, OP, WRITE, rm, rreg(c, d->reg, 4), 4)                          \
	ALU_REG_FORM(name, rmr, LF, OP, WRITE, rm, c->r[d->reg], 8)
#define ALU_REG_RI(name, LF, OP, WRITE)                                                            \
	ALU_REG_FORM(name, ri, LF, OP, WRITE, rm, (uint32_t)d->imm, 4)                             \
	ALU_REG_FORM(name, ri, LF, OP, WRITE, rm, (uint64_t)d->imm, 8)
#define ALU_REG(name, LF, OP, WRITE)                                                               \
	ALU_REG_RMR(name, LF, OP, WRITE)                                                           \
	ALU_REG_FORM(name, rrm, LF, OP, WRITE, reg, rreg(c, d->rm, 4), 4)                          \
	ALU_REG_FORM(name, rrm, LF, OP, WRITE, reg, c->r[d->rm], 8) ALU_REG_RI(name, LF, OP, WRITE)

ALU_OPS(ALU_REG)
ALU_REG_RMR(test, LF_LOGIC, a &b, 0)
ALU_REG_RI(test, LF_LOGIC, a &b, 0)

static inline void mov_rmr4_op(struct soft_cpu *c, struct insn *d)
{
	c->r[d->rm] = (uint32_t)c->r[d->reg];
}
THREADED(mov_rmr4)

static inline void mov_rmr8_op(struct soft_cpu *c, struct insn *d)
{
	c->r[d->rm] = c->r[d->reg];
}
THREADED(mov_rmr8)

static inline void mov_rm_r_op(struct soft_cpu *c, struct insn *d)
{
	fast_write(c, d, SEG(d), ea(c, d), d->opsize, c->r[d->reg]);
}
THREADED_STORE(mov_rm_r)

static inline void mov_r_rm_op(struct soft_cpu *c, struct insn *d)
{
	wreg(c, d->reg, d->opsize, rm_load(c, d));
}
THREADED(mov_r_rm)

static inline void mov_rm_imm_op(struct soft_cpu *c, struct insn *d)
{
	if (d->is_mem)
		fast_write(c, d, SEG(d), ea(c, d), d->opsize, (uint64_t)d->imm);
	else
		wreg(c, d->rm, d->opsize, (uint64_t)d->imm);
}
THREADED_STORE(mov_rm_imm)

static inline void mov_r_imm_op(struct soft_cpu *c, struct insn *d)
{
	wreg(c, (d->op & 7) | ((d->rex & 1) << 3), d->opsize, (uint64_t)d->imm);
}
THREADED(mov_r_imm)

static inline void lea_op(struct soft_cpu *c, struct insn *d)
{
	wreg(c, d->reg, d->opsize, ea(c, d));
}
THREADED(lea)

static inline void movzx8_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t v =
	    d->is_mem ? fast_read(c, d, SEG(d), ea(c, d), 1) : reg_get(c, d->rm, 1, d->rex);
	wreg(c, d->reg, d->opsize, v);
}
THREADED(movzx8)

static inline void movzx16_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t v = d->is_mem ? fast_read(c, d, SEG(d), ea(c, d), 2) : (uint16_t)c->r[d->rm];
	wreg(c, d->reg, d->opsize, v);
}
THREADED(movzx16)

static inline void movsxd_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t v = d->is_mem ? fast_read(c, d, SEG(d), ea(c, d), 4) : (uint32_t)c->r[d->rm];
	wreg(c, d->reg, d->opsize, (uint64_t)(int64_t)(int32_t)v);
}
THREADED(movsxd)

/* Branches end their block, so RIP already points past them (run_block). */
static __attribute__((noinline)) void jcc_slow(struct soft_cpu *c, struct insn *d)
{
	if (cond_slow(c, d->op & 15))
		c->rip = d->start + d->len + (uint64_t)d->imm;
}

/* the common conditions without a call, so without a stack frame */
static inline __attribute__((always_inline)) void jcc_op(struct soft_cpu *c, struct insn *d)
{
	int taken = cond_lazy(c, d->op & 15);
	if (taken < 0)
		jcc_slow(c, d);
	else if (taken)
		c->rip = d->start + d->len + (uint64_t)d->imm;
}

static void jcc(struct soft_cpu *c, struct insn *d)
{
	jcc_op(c, d);
}

static void jmp(struct soft_cpu *c, struct insn *d)
{
	c->rip = d->start + d->len + (uint64_t)d->imm;
}

static void call(struct soft_cpu *c, struct insn *d)
{
	uint64_t ret = d->start + d->len, sp = c->r[R_RSP] - 8;
	fast_write(c, d, SEG_SS, sp, 8, ret);
	c->r[R_RSP] = sp;
	c->rip = ret + (uint64_t)d->imm;
}

static void ret(struct soft_cpu *c, struct insn *d)
{
	(void)d;
	uint64_t sp = c->r[R_RSP];
	c->rip = fast_read(c, d, SEG_SS, sp, 8);
	c->r[R_RSP] = sp + 8;
}

/* CALL and JMP through a 64-bit register (FF /2, /4): the target is read
 * before the push, as group5() does. */
static void call_r(struct soft_cpu *c, struct insn *d)
{
	uint64_t target = c->r[d->rm], ret = d->start + d->len, sp = c->r[R_RSP] - 8;
	fast_write(c, d, SEG_SS, sp, 8, ret);
	c->r[R_RSP] = sp;
	c->rip = target;
}

static void jmp_r(struct soft_cpu *c, struct insn *d)
{
	c->rip = c->r[d->rm];
}

static inline void push_r_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t sp = c->r[R_RSP] - 8;
	fast_write(c, d, SEG_SS, sp, 8, c->r[(d->op & 7) | ((d->rex & 1) << 3)]);
	c->r[R_RSP] = sp;
}
THREADED_STORE(push_r)

static inline void pop_r_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t sp = c->r[R_RSP];
	uint64_t v = fast_read(c, d, SEG_SS, sp, 8);
	c->r[R_RSP] = sp + 8;
	c->r[(d->op & 7) | ((d->rex & 1) << 3)] = v;
}
THREADED(pop_r)

static inline void incdec_r_op(struct soft_cpu *c, struct insn *d)
{
	int size = d->opsize;
	uint64_t a = rreg(c, d->rm, size);
	get_flags(c); /* INC/DEC keep CF */
	if (d->reg & 1) {
		lazy(c, LF_DEC, size, a - 1, a, 1);
		wreg(c, d->rm, size, a - 1);
	} else {
		lazy(c, LF_INC, size, a + 1, a, 1);
		wreg(c, d->rm, size, a + 1);
	}
}
THREADED(incdec_r)

static inline void cmov_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t v = rm_load(c, d);
	if (cond(c, d->op & 15))
		wreg(c, d->reg, d->opsize, v);
	else
		wreg(c, d->reg, d->opsize, c->r[d->reg]);
}
THREADED(cmov)

static inline void setcc_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t v = cond(c, d->op & 15);
	if (d->is_mem)
		fast_write(c, d, SEG(d), ea(c, d), 1, v);
	else
		reg_set(c, d->rm, 1, d->rex, v);
}
THREADED_STORE(setcc)

/* Any shift or rotate of a register (ROL ROR RCL RCR SHL SHR SAL SAR) by an
 * immediate, by 1 or by CL, with the general flag rules of shift_op; 16-bit
 * ones (an LZMA decoder's probabilities are 16-bit) keep bits 16-63. */
static inline void shift_reg(struct soft_cpu *c, struct insn *d, unsigned cnt)
{
	if (d->opsize == 2)
		wreg16(c, d->rm, shift_op(c, d->reg & 7, 2, (uint16_t)c->r[d->rm], cnt));
	else
		wreg(c, d->rm, d->opsize,
		     shift_op(c, d->reg & 7, d->opsize, rreg(c, d->rm, d->opsize), cnt));
}

static inline void shift_imm_op(struct soft_cpu *c, struct insn *d)
{
	shift_reg(c, d, (unsigned)d->imm);
}
THREADED(shift_imm)

static inline void shift_1_op(struct soft_cpu *c, struct insn *d)
{
	shift_reg(c, d, 1);
}
THREADED(shift_1)

static inline void shift_cl_op(struct soft_cpu *c, struct insn *d)
{
	shift_reg(c, d, (uint8_t)c->r[R_RCX]);
}
THREADED(shift_cl)

static inline void mov_rmr16_op(struct soft_cpu *c, struct insn *d)
{
	wreg16(c, d->rm, c->r[d->reg]);
}
THREADED(mov_rmr16)

/* MOV r/m8, r8 to memory */
static inline void mov_m8_r_op(struct soft_cpu *c, struct insn *d)
{
	fast_write(c, d, SEG(d), ea(c, d), 1, rreg8(c, d->reg, d->rex));
}
THREADED_STORE(mov_m8_r)

/* SHL/SHR/SAR reg, imm8 with a count that is not 0 after masking (a zero
 * count leaves the flags alone, so it stays with shift_imm), per size. */
static inline unsigned shift_count(const struct insn *d)
{
	return (unsigned)d->imm & (d->opsize == 8 ? 63 : 31);
}

#define SHIFT_IMM_FN(fn, LF, size, EXPR, FLAGS)                                                    \
	static inline void fn##_with(struct soft_cpu *c, struct insn *d, uint64_t a)               \
	{                                                                                          \
		unsigned cnt = (unsigned)d->imm & (size * 8 - 1);                                  \
		uint64_t r = (EXPR)&mask_of(size);                                                 \
		if (FLAGS)                                                                         \
			lazy(c, LF, size, r, a, cnt);                                              \
		c->r[d->rm] = r;                                                                   \
	}                                                                                          \
	REG_HANDLERS(fn, rreg(c, d->rm, size), size)
#define SHIFT_IMM(name, LF, size, EXPR)                                                            \
	SHIFT_IMM_FN(name##size, LF, size, EXPR, 1) SHIFT_IMM_FN(name##size##_nf, LF, size, EXPR, 0)
#define SHIFT_IMM_SIZES(name, LF, EXPR4, EXPR8)                                                    \
	SHIFT_IMM(name, LF, 4, EXPR4) SHIFT_IMM(name, LF, 8, EXPR8)

SHIFT_IMM_SIZES(shl_imm, LF_SHL, a << cnt, a << cnt)
SHIFT_IMM_SIZES(shr_imm, LF_SHR, a >> cnt, a >> cnt)
SHIFT_IMM_SIZES(sar_imm, LF_SAR, (uint64_t)((int32_t)a >> cnt), (uint64_t)((int64_t)a >> cnt))

static inline void imul_r_rm_op(struct soft_cpu *c, struct insn *d)
{
	uint64_t b = rm_load(c, d);
	wreg(c, d->reg, d->opsize, imul2(c, d->opsize, rreg(c, d->reg, d->opsize), b));
}
THREADED(imul_r_rm)

static inline void imul_imm_op(struct soft_cpu *c, struct insn *d)
{
	wreg(c, d->reg, d->opsize, imul2(c, d->opsize, rm_load(c, d), (uint64_t)d->imm));
}
THREADED(imul_imm)

/* IMUL reg, reg and IMUL reg, reg, imm: reg <- A * B in T (int32_t or int64_t) */
#define IMUL_REG_FN(fn, size, T, A, B, FLAGS)                                                      \
	static inline void fn##_with(struct soft_cpu *c, struct insn *d, uint64_t a)               \
	{                                                                                          \
		T r;                                                                               \
		bool of = __builtin_mul_overflow((T)a, (T)(B), &r);                                \
		if (FLAGS)                                                                         \
			lazy(c, LF_MUL, size, (uint64_t)r &mask_of(size), of, 0);                  \
		c->r[d->reg] = (uint64_t)r & mask_of(size);                                        \
	}                                                                                          \
	REG_HANDLERS(fn, A, size)
#define IMUL_REG(form, size, T, A, B)                                                              \
	IMUL_REG_FN(imul_##form##size, size, T, A, B, 1)                                           \
	IMUL_REG_FN(imul_##form##size##_nf, size, T, A, B, 0)
IMUL_REG(rr, 4, int32_t, c->r[d->reg], c->r[d->rm])
IMUL_REG(rr, 8, int64_t, c->r[d->reg], c->r[d->rm])
IMUL_REG(rri, 4, int32_t, c->r[d->rm], d->imm)
IMUL_REG(rri, 8, int64_t, c->r[d->rm], d->imm)

static inline void nop_op(struct soft_cpu *c, struct insn *d)
{
}
THREADED(nop)

typedef void (*handler)(struct soft_cpu *, struct insn *);

/* Register-only instructions that set every arithmetic flag (none can
 * fault), with the operand (r/m or reg) they compute on and its size. */
enum { A_RM, A_REG };
#define ALU_FORMS(X, name)                                                                         \
	X(name##_rmr4, A_RM, 4)                                                                    \
	X(name##_rmr8, A_RM, 8)                                                                    \
	X(name##_rrm4, A_REG, 4)                                                                   \
	X(name##_rrm8, A_REG, 8) X(name##_ri4, A_RM, 4) X(name##_ri8, A_RM, 8)
#define FLAG_SETTERS(X)                                                                            \
	ALU_FORMS(X, add)                                                                          \
	ALU_FORMS(X, or)                                                                           \
	ALU_FORMS(X, and)                                                                          \
	ALU_FORMS(X, sub)                                                                          \
	ALU_FORMS(X, xor)                                                                          \
	ALU_FORMS(X, cmp)                                                                          \
	X(test_rmr4, A_RM, 4)                                                                      \
	X(test_rmr8, A_RM, 8)                                                                      \
	X(test_ri4, A_RM, 4)                                                                       \
	X(test_ri8, A_RM, 8)                                                                       \
	X(shl_imm4, A_RM, 4)                                                                       \
	X(shl_imm8, A_RM, 8)                                                                       \
	X(shr_imm4, A_RM, 4)                                                                       \
	X(shr_imm8, A_RM, 8)                                                                       \
	X(sar_imm4, A_RM, 4)                                                                       \
	X(sar_imm8, A_RM, 8)                                                                       \
	X(imul_rr4, A_REG, 4) X(imul_rr8, A_REG, 8) X(imul_rri4, A_RM, 4) X(imul_rri8, A_RM, 8)

/* A flag setter and the conditional branch that ends its block, as one
 * handler: the branch reads the flags the setter just computed (see
 * fuse_pairs). */
#define FUSED_JCC(fn, field, size)                                                                 \
	static void fn##_jc(struct soft_cpu *c, struct insn *d)                                    \
	{                                                                                          \
		fn##_op(c, d);                                                                     \
		jcc_op(c, d + 1);                                                                  \
	}
FLAG_SETTERS(FUSED_JCC)

/* What the block passes know of each flag setter: its twin that skips the
 * lazy-flag bookkeeping, its fusions with a preceding MOV and with a
 * following Jcc, the operand it computes on and its size. */
struct fast_info {
	handler fn, nf, mv, jc;
	uint8_t a_field, size;
};
#define INFO(fn, field, size)                                                                      \
	{fn, fn##_nf, fn##_mv, fn##_jc, field, size},                                              \
	    {fn##_nf, NULL, fn##_nf##_mv, NULL, field, size},
static const struct fast_info fast_infos[] = {FLAG_SETTERS(INFO)};

/* Neither touches the flags nor can fault. */
static bool flags_untouched(const struct insn *d)
{
	handler f = d->fn;
	if (f == mov_rmr4 || f == mov_rmr8 || f == mov_r_imm || f == lea || f == nop)
		return true;
	return !d->is_mem && (f == mov_r_rm || f == movzx8 || f == movzx16 || f == movsxd);
}

/* fast_infos as an open-addressing hash table on the handler's address:
 * blocks are built often enough (Linux boots decode millions) that a linear
 * search shows up in profiles. */
#define INFO_SLOTS 512
static const struct fast_info *info_table[INFO_SLOTS];
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static unsigned info_slot(handler f)
{
	return (unsigned)(((uintptr_t)f >> 4) * 0x9e3779b1u) % INFO_SLOTS;
}

static void info_init(void)
{
	for (size_t i = 0; i < sizeof(fast_infos) / sizeof(fast_infos[0]); i++) {
		unsigned s = info_slot(fast_infos[i].fn);
		while (info_table[s])
			s = (s + 1) % INFO_SLOTS;
		info_table[s] = &fast_infos[i];
	}
}

static const struct fast_info *info_of(handler f)
{
	for (unsigned s = info_slot(f); info_table[s]; s = (s + 1) % INFO_SLOTS)
		if (info_table[s]->fn == f)
			return info_table[s];
	return NULL;
}

/* Flags that a later instruction of the block overwrites before anything can
 * see them are not computed: walking back from the block's end (where the
 * flags are live), a flag-setting register instruction whose result flags
 * are dead runs as its _nf twin. Anything that reads the flags, may fault
 * (an exception frame holds RFLAGS) or is not known makes them live. */
static void elide_dead_flags(struct insn *insn, int n)
{
	bool live = true;
	for (int i = n - 1; i >= 0; i--) {
		struct insn *d = &insn[i];
		const struct fast_info *f = info_of(d->fn);
		if (f) {
			if (!live && f->nf)
				d->fn = f->nf;
			live = false;
		} else if (!flags_untouched(d)) {
			live = true;
		}
	}
}

/* Two-operand code copies a register before changing the copy (mov rdx, rax;
 * shr rdx, 12): such a MOV and the register instruction after it that
 * computes on the copy run as one handler on the MOV, which skips the second.
 * Neither can fault, so nothing observable depends on where one ends. */
static void fuse_moves(struct insn *insn, int n)
{
	for (int i = 0; i + 1 < n; i++) {
		struct insn *d = &insn[i], *o = d + 1;
		int size = d->fn == mov_rmr8 ? 8 : d->fn == mov_rmr4 ? 4 : 0;
		const struct fast_info *f = size ? info_of(o->fn) : NULL;
		if (f && f->size == size && (f->a_field == A_REG ? o->reg : o->rm) == d->rm)
			d->fn = f->mv;
	}
}

/* A block that ends in a conditional branch after the instruction that sets
 * its flags (cmp; jne) runs the two as one handler. */
static void fuse_branch(struct insn *insn, int n)
{
	if (n < 2 || insn[n - 1].fn != jcc)
		return;
	const struct fast_info *f = info_of(insn[n - 2].fn);
	if (f && f->jc)
		insn[n - 2].fn = f->jc;
}

/* The block-wide passes over freshly decoded fast handlers. */
void optimize_block(struct insn *insn, int n)
{
	pthread_once(&info_once, info_init);
	elide_dead_flags(insn, n);
	fuse_moves(insn, n);
	fuse_branch(insn, n);
}

/* The specialised handler for d, if there is one: the member of its opcode's
 * fast family (struct opcode) for its operand size, operand kind and prefixes. */
static void choose_fast(struct insn *d)
{
	if (d->lock || d->rep)
		return;
	unsigned fam = opcode_of(d->op)->fast, alu = (d->op >> 3) & 7, r = d->reg & 7;
	bool q = d->opsize == 8, mem = d->is_mem;
	/* ALU operations by [op][64-bit], NULL for ADC/SBB */
#define ALU_PAIR(op, form)                                                                         \
	{                                                                                          \
		op##_##form##4, op##_##form##8                                                     \
	}
#define ALU_TABLE(f)                                                                               \
	{                                                                                          \
		ALU_PAIR(add, f), ALU_PAIR(or, f), {NULL, NULL}, {NULL, NULL}, ALU_PAIR(and, f),   \
		    ALU_PAIR(sub, f), ALU_PAIR(xor, f), ALU_PAIR(cmp, f)                           \
	}
	static const handler rmr[8][2] = ALU_TABLE(rmr), rrm[8][2] = ALU_TABLE(rrm),
			     ri[8][2] = ALU_TABLE(ri);
#undef ALU_PAIR
#undef ALU_TABLE
	static const handler rm_r[8] = {add_rm_r, or_rm_r,  NULL,     NULL,
					and_rm_r, sub_rm_r, xor_rm_r, cmp_rm_r};
	static const handler r_rm[8] = {add_r_rm, or_r_rm,  NULL,     NULL,
					and_r_rm, sub_r_rm, xor_r_rm, cmp_r_rm};
	static const handler imm[8] = {add_imm, or_imm,	 NULL,	  NULL,
				       and_imm, sub_imm, xor_imm, cmp_imm};
	handler h = NULL;
	if (fam == FAST_MOV_STORE8) {
		h = mem ? mov_m8_r : NULL;
	} else if (d->opsize == 2) {
		/* the few 16-bit forms */
		if (fam == FAST_MOV_STORE)
			h = mem ? mov_rm_r : mov_rmr16;
		else if (!mem)
			h = fam == FAST_SHIFT_I	   ? shift_imm
			    : fam == FAST_SHIFT_1  ? shift_1
			    : fam == FAST_SHIFT_CL ? shift_cl
						   : NULL;
	} else {
		switch (fam) {
		case FAST_ALU_RM_R:
			h = mem ? rm_r[alu] : rmr[alu][q];
			break;
		case FAST_ALU_R_RM:
			h = mem ? r_rm[alu] : rrm[alu][q];
			break;
		case FAST_ALU_AX_I:
			h = mem ? NULL : ri[alu][q];
			break;
		case FAST_ALU_IMM:
			h = mem ? imm[r] : ri[r][q];
			break;
		case FAST_TEST:
			h = mem ? test_rm_r : q ? test_rmr8 : test_rmr4;
			break;
		case FAST_TEST_AX_I:
			h = mem ? NULL : q ? test_ri8 : test_ri4;
			break;
		case FAST_GROUP3:
			h = r ? NULL : mem ? test_imm : q ? test_ri8 : test_ri4;
			break;
		case FAST_MOV_STORE:
			h = mem ? mov_rm_r : q ? mov_rmr8 : mov_rmr4;
			break;
		case FAST_MOV_LOAD:
			h = mov_r_rm;
			break;
		case FAST_MOV_RM_IMM:
			h = r ? NULL : mov_rm_imm;
			break;
		case FAST_MOV_R_IMM:
			h = mov_r_imm;
			break;
		case FAST_LEA:
			h = mem ? lea : NULL;
			break;
		case FAST_MOVSXD:
			h = movsxd;
			break;
		case FAST_IMUL_I:
			h = mem ? imul_imm : q ? imul_rri8 : imul_rri4;
			break;
		case FAST_JCC:
			h = jcc;
			break;
		case FAST_JMP:
			h = jmp;
			break;
		case FAST_CALL:
			h = d->opsize_prefix ? NULL : call;
			break;
		case FAST_RET:
			h = d->opsize_prefix ? NULL : ret;
			break;
		case FAST_PUSH:
			h = d->opsize_prefix ? NULL : push_r;
			break;
		case FAST_POP:
			h = d->opsize_prefix ? NULL : pop_r;
			break;
		case FAST_GROUP5:
			if (mem)
				break;
			h = r < 2	       ? incdec_r
			    : d->opsize_prefix ? NULL /* 16-bit CALL and JMP */
			    : r == 2	       ? call_r
			    : r == 4	       ? jmp_r
					       : NULL;
			break;
		case FAST_SHIFT_I:
			if (mem)
				break;
			if (r < 4 || !shift_count(d))
				h = shift_imm;
			else
				h = r == 5   ? (q ? shr_imm8 : shr_imm4)
				    : r == 7 ? (q ? sar_imm8 : sar_imm4)
					     : (q ? shl_imm8 : shl_imm4);
			break;
		case FAST_SHIFT_1:
			h = mem ? NULL : shift_1;
			break;
		case FAST_SHIFT_CL:
			h = mem ? NULL : shift_cl;
			break;
		case FAST_NOP:
			/* 90 with REX.B is XCHG r8, rAX */
			h = d->op == 0x90 && (d->rex & 1) ? NULL : nop;
			break;
		case FAST_CMOV:
			h = cmov;
			break;
		case FAST_SETCC:
			h = setcc;
			break;
		case FAST_MOVZX8:
			h = movzx8;
			break;
		case FAST_MOVZX16:
			h = movzx16;
			break;
		case FAST_IMUL_RM:
			h = mem ? imul_r_rm : q ? imul_rr8 : imul_rr4;
			break;
		}
	}
	if (h)
		d->fn = h;
}

/* A general-dispatcher instruction inside a block (struct opcode's in_block:
 * innocuous code that only computes on registers, flags and memory, never
 * branches, traps to the machine but for MMIO, which stops the block, or
 * changes privilege, modes, the stack pointer's role or translations): RIP stays
 * at the block's end, a fault restores it (and RSP) from c->last. */
void exec_in_block(struct soft_cpu *c, struct insn *d)
{
	uint64_t end = c->rip;
	c->last = d;
	exec_insn(c, d);
	c->rip = end;
	if (!c->stop)
		next_insn(c, d);
}

/* The handler for d: a specialised one, the general dispatcher inside a
 * block, or the general dispatcher in a block of its own. */
void choose_handler(struct soft_cpu *c, struct insn *d)
{
	d->fn = exec_insn;
	if (c->mode != 8 || d->invalid)
		return;
	choose_fast(d);
	if (d->fn == exec_insn && op_form(opcode_of(d->op)->in_block, d->reg))
		d->fn = exec_in_block;
}
