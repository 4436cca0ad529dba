/* Differential tester for the soft engine's CPU: runs random and directed
 * user-level instruction sequences natively on the host CPU and on the soft
 * engine from the same registers, flags, XMM registers and memory, and
 * compares everything afterwards (GPRs, RFLAGS minus the flags the
 * architecture leaves undefined, XMM, MXCSR, the data buffer, the exception
 * raised).
 *
 * Both sides use the same virtual addresses: the host maps the code, data and
 * state pages at fixed low addresses, the guest identity-maps them, so
 * pointers in registers mean the same on both. The test code loads the state
 * block, runs the sequence and stores the state back; natively it is called
 * as a function (faults come back as signals with the trap number), in the
 * guest it ends in HLT (faults go to IDT stubs that record the vector).
 *
 * With -j the soft engine translates every block (soft_guest.h sets the
 * translator's threshold to one run), so host and translated code are compared, and since each case
 * rewrites the code page, every case also checks that stale translations go.
 *
 * usage: cpudiff [-n CASES] [-s SEED] [-v] [-j]   exit 0 when every case matched. */
#include <inttypes.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "../unit/soft_guest.h"

#define CODE_VA	 0x200000ull
#define DATA_VA	 0x210000ull
#define STATE_VA 0x220000ull
#define DATA_LEN 0x2000
#define CODE_LEN 0x1000

struct regs {
	uint64_t gpr[16];
	uint64_t rflags;
	uint32_t mxcsr, pad;
	uint8_t xmm[16][16];
};

struct block {
	struct regs in, out;
	uint64_t host_rsp, scratch_top;
	uint8_t scratch[512];
	uint8_t stack[2048]; /* the test's own RSP points in here */
};

#define ST	   ((struct block *)STATE_VA)
#define OFF(field) ((uint32_t)(STATE_VA + __builtin_offsetof(struct block, field)))

/* Flags whose value the architecture leaves undefined, per instruction kind. */
enum { UF_NONE, UF_LOGIC, UF_SHIFT, UF_MUL, UF_DIV, UF_BT, UF_BSF, UF_SHLD, UF_CNT };
static const uint64_t undef_mask[] = {
    [UF_NONE] = 0,     [UF_LOGIC] = 0x10, [UF_SHIFT] = 0x811, /* OF (count != 1), AF, CF (8/16-bit
								 counts past the width) */
    [UF_MUL] = 0xd4,   [UF_DIV] = 0x8d5,  [UF_BT] = 0x894,    [UF_BSF] = 0x895,
    [UF_SHLD] = 0x811, [UF_CNT] = 0x894,
};

/* ---- code generation ---- */

struct emit {
	uint8_t *p;
	size_t n;
};

static void eb(struct emit *e, uint8_t b)
{
	e->p[e->n++] = b;
}

static void e32(struct emit *e, uint32_t v)
{
	memcpy(e->p + e->n, &v, 4);
	e->n += 4;
}

/* op reg, [abs32] style with an optional mandatory prefix and REX. */
static void abs_op(struct emit *e, int pfx, int rexw, const uint8_t *op, int oplen, int reg,
		   uint32_t addr)
{
	if (pfx)
		eb(e, (uint8_t)pfx);
	uint8_t rex = (uint8_t)(0x40 | (rexw ? 8 : 0) | (reg & 8 ? 4 : 0));
	if (rex != 0x40)
		eb(e, rex);
	for (int i = 0; i < oplen; i++)
		eb(e, op[i]);
	eb(e, (uint8_t)(((reg & 7) << 3) | 4));
	eb(e, 0x25);
	e32(e, addr);
}

static void prologue(struct emit *e)
{
	static const uint8_t mov_store[] = {0x89}, mov_load[] = {0x8b}, movdqu_ld[] = {0x0f, 0x6f},
			     ldmxcsr[] = {0x0f, 0xae}, push_m[] = {0xff};
	/* keep the host's callee-saved registers: push rbx, rbp, r12-r15 */
	static const uint8_t saves[] = {0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57};
	for (size_t i = 0; i < sizeof(saves); i++)
		eb(e, saves[i]);
	abs_op(e, 0, 1, mov_store, 1, 4, OFF(host_rsp));
	for (int i = 0; i < 16; i++)
		abs_op(e, 0xf3, 0, movdqu_ld, 2, i, OFF(in.xmm[i]));
	abs_op(e, 0, 0, ldmxcsr, 2, 2, OFF(in.mxcsr));
	abs_op(e, 0, 0, mov_load, 1, 4, OFF(scratch_top)); /* use the scratch stack for popf */
	abs_op(e, 0, 0, push_m, 1, 6, OFF(in.rflags));
	eb(e, 0x9d);
	for (int i = 0; i < 16; i++)
		abs_op(e, 0, 1, mov_load, 1, i, OFF(in.gpr[i]));
}

static size_t epilogue(struct emit *e)
{
	static const uint8_t mov_store[] = {0x89}, mov_load[] = {0x8b}, movdqu_st[] = {0x0f, 0x7f},
			     stmxcsr[] = {0x0f, 0xae};
	for (int i = 0; i < 16; i++)
		abs_op(e, 0, 1, mov_store, 1, i, OFF(out.gpr[i]));
	abs_op(e, 0, 1, mov_load, 1, 4, OFF(scratch_top));
	eb(e, 0x9c); /* pushfq; pop rax */
	eb(e, 0x58);
	abs_op(e, 0, 1, mov_store, 1, 0, OFF(out.rflags));
	for (int i = 0; i < 16; i++)
		abs_op(e, 0xf3, 0, movdqu_st, 2, i, OFF(out.xmm[i]));
	abs_op(e, 0, 0, stmxcsr, 2, 3, OFF(out.mxcsr));
	abs_op(e, 0, 1, mov_load, 1, 4, OFF(host_rsp));
	static const uint8_t restores[] = {0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d,
					   0x41, 0x5c, 0x5d, 0x5b, 0xfc};
	for (size_t i = 0; i < sizeof(restores); i++)
		eb(e, restores[i]);
	size_t ret_at = e->n;
	eb(e, 0xc3);
	return ret_at;
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static unsigned rn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static uint64_t interesting(void)
{
	static const uint64_t v[] = {0,
				     1,
				     2,
				     0x7f,
				     0x80,
				     0xff,
				     0x7fff,
				     0x8000,
				     0xffff,
				     0x7fffffff,
				     0x80000000,
				     0xffffffff,
				     0x100000000ull,
				     0x7fffffffffffffffull,
				     0x8000000000000000ull,
				     0xffffffffffffffffull,
				     0x3ff0000000000000ull,
				     0x3f800000};
	switch (rn(4)) {
	case 0:
		return v[rn(sizeof(v) / sizeof(v[0]))];
	case 1:
		return rn(64);
	case 2:
		return -(uint64_t)rn(64);
	default:
		return rnd();
	}
}

/* An instruction template: opcode bytes after the prefixes. */
enum {
	T_M = 1,	/* ModRM follows */
	T_I8 = 2,	/* imm8 */
	T_IZ = 4,	/* imm16/32 by operand size */
	T_NO66 = 8,	/* no operand-size prefix */
	T_MEM = 16,	/* memory operand only */
	T_REG = 32,	/* register operand only */
	T_NOW = 64,	/* no REX.W */
	T_SSE = 128,	/* XMM operands: memory aligned to 16 */
	T_STR = 256,	/* string instruction */
	T_LOCK = 512,	/* LOCK allowed with a memory operand */
	T_NOREX = 1024, /* no REX at all */
};

struct tmpl {
	uint8_t pfx; /* mandatory prefix: 0, 0x66, 0xf2, 0xf3 */
	uint8_t op[3], oplen;
	int8_t reg; /* fixed ModRM.reg, or -1 */
	uint16_t flags;
	uint8_t uf;
};

#define A(op, f, uf)                                                                               \
	{                                                                                          \
		0, {op}, 1, -1, f, uf                                                              \
	}
#define G(op, r, f, uf)                                                                            \
	{                                                                                          \
		0, {op}, 1, r, f, uf                                                               \
	}
#define B(op, f, uf)                                                                               \
	{                                                                                          \
		0, {0x0f, op}, 2, -1, f, uf                                                        \
	}
#define P(p, op, f)                                                                                \
	{                                                                                          \
		p, {0x0f, op}, 2, -1, (f) | T_SSE | T_NO66, UF_NONE                                \
	}

static const struct tmpl tmpls[] = {
    /* ALU r/m,r  r,r/m  acc,imm */
    A(0x00, T_M | T_LOCK, 0),
    A(0x01, T_M | T_LOCK, 0),
    A(0x02, T_M, 0),
    A(0x03, T_M, 0),
    A(0x04, T_I8, 0),
    A(0x05, T_IZ, 0),
    A(0x08, T_M | T_LOCK, UF_LOGIC),
    A(0x09, T_M | T_LOCK, UF_LOGIC),
    A(0x0a, T_M, UF_LOGIC),
    A(0x0b, T_M, UF_LOGIC),
    A(0x0c, T_I8, UF_LOGIC),
    A(0x0d, T_IZ, UF_LOGIC),
    A(0x10, T_M | T_LOCK, 0),
    A(0x11, T_M | T_LOCK, 0),
    A(0x12, T_M, 0),
    A(0x13, T_M, 0),
    A(0x14, T_I8, 0),
    A(0x15, T_IZ, 0),
    A(0x18, T_M | T_LOCK, 0),
    A(0x19, T_M | T_LOCK, 0),
    A(0x1a, T_M, 0),
    A(0x1b, T_M, 0),
    A(0x1c, T_I8, 0),
    A(0x1d, T_IZ, 0),
    A(0x20, T_M | T_LOCK, UF_LOGIC),
    A(0x21, T_M | T_LOCK, UF_LOGIC),
    A(0x22, T_M, UF_LOGIC),
    A(0x23, T_M, UF_LOGIC),
    A(0x24, T_I8, UF_LOGIC),
    A(0x25, T_IZ, UF_LOGIC),
    A(0x28, T_M | T_LOCK, 0),
    A(0x29, T_M | T_LOCK, 0),
    A(0x2a, T_M, 0),
    A(0x2b, T_M, 0),
    A(0x2c, T_I8, 0),
    A(0x2d, T_IZ, 0),
    A(0x30, T_M | T_LOCK, UF_LOGIC),
    A(0x31, T_M | T_LOCK, UF_LOGIC),
    A(0x32, T_M, UF_LOGIC),
    A(0x33, T_M, UF_LOGIC),
    A(0x34, T_I8, UF_LOGIC),
    A(0x35, T_IZ, UF_LOGIC),
    A(0x38, T_M, 0),
    A(0x39, T_M, 0),
    A(0x3a, T_M, 0),
    A(0x3b, T_M, 0),
    A(0x3c, T_I8, 0),
    A(0x3d, T_IZ, 0),
    /* group 1, test, xchg, mov, lea, movsxd, imul */
    A(0x80, T_M | T_I8 | T_LOCK, UF_LOGIC),
    A(0x81, T_M | T_IZ | T_LOCK, UF_LOGIC),
    A(0x83, T_M | T_I8 | T_LOCK, UF_LOGIC),
    A(0x84, T_M, UF_LOGIC),
    A(0x85, T_M, UF_LOGIC),
    A(0x86, T_M, 0),
    A(0x87, T_M, 0),
    A(0x88, T_M, 0),
    A(0x89, T_M, 0),
    A(0x8a, T_M, 0),
    A(0x8b, T_M, 0),
    A(0x8d, T_M | T_MEM, 0),
    A(0x63, T_M, 0),
    A(0x69, T_M | T_IZ, UF_MUL),
    A(0x6b, T_M | T_I8, UF_MUL),
    A(0x98, 0, 0),
    A(0x99, 0, 0),
    A(0xa8, T_I8, UF_LOGIC),
    A(0xa9, T_IZ, UF_LOGIC),
    G(0xc6, 0, T_M | T_I8, 0),
    G(0xc7, 0, T_M | T_IZ, 0),
    A(0x9e, T_NO66, 0),
    A(0x9f, T_NO66, 0),
    A(0xf5, 0, 0),
    A(0xf8, 0, 0),
    A(0xf9, 0, 0),
    A(0x90, 0, 0),
    A(0x91, 0, 0),
    A(0x92, 0, 0),
    A(0x93, 0, 0),
    A(0x95, 0, 0),
    /* shifts and rotates */
    A(0xc0, T_M | T_I8, UF_SHIFT),
    A(0xc1, T_M | T_I8, UF_SHIFT),
    A(0xd0, T_M, UF_SHIFT),
    A(0xd1, T_M, UF_SHIFT),
    A(0xd2, T_M, UF_SHIFT),
    A(0xd3, T_M, UF_SHIFT),
    /* group 3 */
    G(0xf6, 0, T_M | T_I8, UF_LOGIC),
    G(0xf7, 0, T_M | T_IZ, UF_LOGIC),
    G(0xf6, 2, T_M | T_LOCK, 0),
    G(0xf7, 2, T_M | T_LOCK, 0),
    G(0xf6, 3, T_M | T_LOCK, 0),
    G(0xf7, 3, T_M | T_LOCK, 0),
    G(0xf6, 4, T_M, UF_MUL),
    G(0xf7, 4, T_M, UF_MUL),
    G(0xf6, 5, T_M, UF_MUL),
    G(0xf7, 5, T_M, UF_MUL),
    G(0xf6, 6, T_M, UF_DIV),
    G(0xf7, 6, T_M, UF_DIV),
    G(0xf6, 7, T_M, UF_DIV),
    G(0xf7, 7, T_M, UF_DIV),
    G(0xfe, 0, T_M | T_LOCK, 0),
    G(0xfe, 1, T_M | T_LOCK, 0),
    G(0xff, 0, T_M | T_LOCK, 0),
    G(0xff, 1, T_M | T_LOCK, 0),
    /* 0F integer */
    B(0x40, T_M, 0),
    B(0x42, T_M, 0),
    B(0x44, T_M, 0),
    B(0x47, T_M, 0),
    B(0x4c, T_M, 0),
    B(0x4f, T_M, 0),
    B(0x4a, T_M, 0),
    B(0x49, T_M, 0),
    B(0x90, T_M, 0),
    B(0x92, T_M, 0),
    B(0x93, T_M, 0),
    B(0x95, T_M, 0),
    B(0x96, T_M, 0),
    B(0x9a, T_M, 0),
    B(0x9c, T_M, 0),
    B(0x9d, T_M, 0),
    B(0x9e, T_M, 0),
    B(0x98, T_M, 0),
    B(0xa3, T_M | T_REG, UF_BT),
    B(0xab, T_M | T_REG, UF_BT),
    B(0xb3, T_M | T_REG, UF_BT),
    B(0xbb, T_M | T_REG, UF_BT),
    {0, {0x0f, 0xba}, 2, 4, T_M | T_I8, UF_BT},
    {0, {0x0f, 0xba}, 2, 5, T_M | T_I8 | T_LOCK, UF_BT},
    {0, {0x0f, 0xba}, 2, 6, T_M | T_I8 | T_LOCK, UF_BT},
    {0, {0x0f, 0xba}, 2, 7, T_M | T_I8 | T_LOCK, UF_BT},
    B(0xa4, T_M | T_I8 | T_NO66, UF_SHLD),
    B(0xa5, T_M | T_NO66, UF_SHLD),
    B(0xac, T_M | T_I8 | T_NO66, UF_SHLD),
    B(0xad, T_M | T_NO66, UF_SHLD),
    B(0xaf, T_M, UF_MUL),
    B(0xb0, T_M | T_LOCK, 0),
    B(0xb1, T_M | T_LOCK, 0),
    B(0xb6, T_M, 0),
    B(0xb7, T_M, 0),
    B(0xbe, T_M, 0),
    B(0xbf, T_M, 0),
    B(0xbc, T_M, UF_BSF),
    B(0xbd, T_M, UF_BSF),
    B(0xc0, T_M | T_LOCK, 0),
    B(0xc1, T_M | T_LOCK, 0),
    B(0xc8, T_NO66, 0),
    B(0xcb, T_NO66, 0),
    B(0xce, T_NO66, 0),
    {0xf3, {0x0f, 0xb8}, 2, -1, T_M, UF_NONE},
    {0xf3, {0x0f, 0xbc}, 2, -1, T_M, UF_CNT},
    {0xf3, {0x0f, 0xbd}, 2, -1, T_M, UF_CNT},
    {0, {0x0f, 0xc7}, 2, 1, T_M | T_MEM | T_LOCK | T_NO66, 0},
    /* push/pop through memory and the stack */
    G(0xff, 6, T_M | T_MEM | T_NO66, 0),
    G(0x8f, 0, T_M | T_MEM | T_NO66, 0),
    A(0x53, T_NOREX | T_NO66, 0),
    A(0x58, T_NOREX | T_NO66, 0),
    /* rotates through carry */
    G(0xd1, 2, T_M, UF_SHIFT),
    G(0xd1, 3, T_M, UF_SHIFT),
    G(0xc1, 2, T_M | T_I8, UF_SHIFT),
    G(0xc1, 3, T_M | T_I8, UF_SHIFT),
    /* strings */
    A(0xa4, T_STR, 0),
    A(0xa5, T_STR, 0),
    A(0xa6, T_STR, 0),
    A(0xa7, T_STR, 0),
    A(0xaa, T_STR, 0),
    A(0xab, T_STR, 0),
    A(0xac, T_STR, 0),
    A(0xad, T_STR, 0),
    A(0xae, T_STR, 0),
    A(0xaf, T_STR, 0),
    /* SSE / SSE2 / SSE3 */
    P(0, 0x10, T_M),
    P(0x66, 0x10, T_M),
    P(0xf3, 0x10, T_M),
    P(0xf2, 0x10, T_M),
    P(0, 0x11, T_M),
    P(0xf3, 0x11, T_M),
    P(0xf2, 0x11, T_M),
    P(0, 0x12, T_M),
    P(0x66, 0x12, T_M | T_MEM),
    P(0xf2, 0x12, T_M),
    P(0xf3, 0x12, T_M),
    P(0, 0x14, T_M),
    P(0x66, 0x14, T_M),
    P(0, 0x15, T_M),
    P(0x66, 0x15, T_M),
    P(0, 0x16, T_M),
    P(0xf3, 0x16, T_M),
    P(0, 0x28, T_M),
    P(0x66, 0x28, T_M),
    P(0, 0x29, T_M),
    P(0xf3, 0x2a, T_M),
    P(0xf2, 0x2a, T_M),
    P(0xf3, 0x2c, T_M),
    P(0xf2, 0x2c, T_M),
    P(0xf3, 0x2d, T_M),
    P(0xf2, 0x2d, T_M),
    P(0, 0x2e, T_M),
    P(0x66, 0x2e, T_M),
    P(0, 0x2f, T_M),
    P(0x66, 0x2f, T_M),
    P(0, 0x50, T_M | T_REG),
    P(0x66, 0x50, T_M | T_REG),
    P(0, 0x51, T_M),
    P(0x66, 0x51, T_M),
    P(0xf3, 0x51, T_M),
    P(0xf2, 0x51, T_M),
    P(0, 0x52, T_M),
    P(0, 0x53, T_M),
    P(0, 0x54, T_M),
    P(0x66, 0x55, T_M),
    P(0, 0x56, T_M),
    P(0x66, 0x57, T_M),
    P(0, 0x58, T_M),
    P(0x66, 0x58, T_M),
    P(0xf3, 0x58, T_M),
    P(0xf2, 0x58, T_M),
    P(0, 0x59, T_M),
    P(0xf2, 0x59, T_M),
    P(0, 0x5a, T_M),
    P(0x66, 0x5a, T_M),
    P(0xf3, 0x5a, T_M),
    P(0xf2, 0x5a, T_M),
    P(0, 0x5b, T_M),
    P(0x66, 0x5b, T_M),
    P(0xf3, 0x5b, T_M),
    P(0x66, 0x5c, T_M),
    P(0xf3, 0x5c, T_M),
    P(0, 0x5d, T_M),
    P(0xf2, 0x5d, T_M),
    P(0x66, 0x5e, T_M),
    P(0xf3, 0x5e, T_M),
    P(0, 0x5f, T_M),
    P(0xf2, 0x5f, T_M),
    P(0x66, 0x60, T_M),
    P(0x66, 0x61, T_M),
    P(0x66, 0x62, T_M),
    P(0x66, 0x63, T_M),
    P(0x66, 0x64, T_M),
    P(0x66, 0x65, T_M),
    P(0x66, 0x66, T_M),
    P(0x66, 0x67, T_M),
    P(0x66, 0x68, T_M),
    P(0x66, 0x69, T_M),
    P(0x66, 0x6a, T_M),
    P(0x66, 0x6b, T_M),
    P(0x66, 0x6c, T_M),
    P(0x66, 0x6d, T_M),
    P(0x66, 0x6e, T_M),
    P(0x66, 0x6f, T_M),
    P(0xf3, 0x6f, T_M),
    P(0x66, 0x70, T_M | T_I8),
    P(0xf3, 0x70, T_M | T_I8),
    P(0xf2, 0x70, T_M | T_I8),
    {0x66, {0x0f, 0x71}, 2, 2, T_M | T_REG | T_I8 | T_SSE | T_NO66, 0},
    {0x66, {0x0f, 0x71}, 2, 4, T_M | T_REG | T_I8 | T_SSE | T_NO66, 0},
    {0x66, {0x0f, 0x72}, 2, 6, T_M | T_REG | T_I8 | T_SSE | T_NO66, 0},
    {0x66, {0x0f, 0x73}, 2, 3, T_M | T_REG | T_I8 | T_SSE | T_NO66, 0},
    {0x66, {0x0f, 0x73}, 2, 7, T_M | T_REG | T_I8 | T_SSE | T_NO66, 0},
    {0x66, {0x0f, 0x73}, 2, 2, T_M | T_REG | T_I8 | T_SSE | T_NO66, 0},
    P(0x66, 0x74, T_M),
    P(0x66, 0x75, T_M),
    P(0x66, 0x76, T_M),
    P(0x66, 0x7c, T_M),
    P(0xf2, 0x7d, T_M),
    P(0x66, 0x7e, T_M),
    P(0xf3, 0x7e, T_M),
    P(0x66, 0x7f, T_M),
    P(0xf3, 0x7f, T_M),
    P(0, 0xc2, T_M | T_I8),
    P(0x66, 0xc2, T_M | T_I8),
    P(0xf3, 0xc2, T_M | T_I8),
    P(0xf2, 0xc2, T_M | T_I8),
    P(0x66, 0xc4, T_M | T_I8),
    P(0x66, 0xc5, T_M | T_REG | T_I8),
    P(0, 0xc6, T_M | T_I8),
    P(0x66, 0xc6, T_M | T_I8),
    P(0x66, 0xd0, T_M),
    P(0x66, 0xd1, T_M),
    P(0x66, 0xd2, T_M),
    P(0x66, 0xd3, T_M),
    P(0x66, 0xd4, T_M),
    P(0x66, 0xd5, T_M),
    P(0x66, 0xd6, T_M),
    P(0x66, 0xd7, T_M | T_REG),
    P(0x66, 0xd8, T_M),
    P(0x66, 0xda, T_M),
    P(0x66, 0xdb, T_M),
    P(0x66, 0xdc, T_M),
    P(0x66, 0xde, T_M),
    P(0x66, 0xdf, T_M),
    P(0x66, 0xe0, T_M),
    P(0x66, 0xe1, T_M),
    P(0x66, 0xe2, T_M),
    P(0x66, 0xe3, T_M),
    P(0x66, 0xe4, T_M),
    P(0x66, 0xe5, T_M),
    P(0x66, 0xe6, T_M),
    P(0xf3, 0xe6, T_M),
    P(0xf2, 0xe6, T_M),
    P(0x66, 0xe8, T_M),
    P(0x66, 0xea, T_M),
    P(0x66, 0xeb, T_M),
    P(0x66, 0xec, T_M),
    P(0x66, 0xee, T_M),
    P(0x66, 0xef, T_M),
    P(0x66, 0xf1, T_M),
    P(0x66, 0xf2, T_M),
    P(0x66, 0xf3, T_M),
    P(0x66, 0xf4, T_M),
    P(0x66, 0xf5, T_M),
    P(0x66, 0xf6, T_M),
    P(0x66, 0xf8, T_M),
    P(0x66, 0xfb, T_M),
    P(0x66, 0xfc, T_M),
    P(0x66, 0xfe, T_M),
    P(0xf2, 0xf0, T_M | T_MEM),
};
#define NTMPL (sizeof(tmpls) / sizeof(tmpls[0]))

struct gen {
	uint8_t code[256];
	size_t len;
	uint64_t undef;
	int ptr_regs; /* bitmap of registers used as memory bases */
	bool string;
};

/* Registers the generator may name: all but RSP. */
static int pick_reg(void)
{
	int r;
	do
		r = (int)rn(16);
	while (r == 4);
	return r;
}

static void gen_insn(struct gen *g, bool last)
{
	const struct tmpl *t;
	for (;;) {
		t = &tmpls[rn(NTMPL)];
		/* a string instruction only comes first: the overlap distance it
		 * starts from is chosen (see random_state), later ones would
		 * inherit whatever earlier instructions left in RSI/RDI */
		if ((t->flags & T_STR) && g->len)
			continue;
		if (last || undef_mask[t->uf] == 0)
			break;
	}
	uint8_t *p = g->code + g->len;
	size_t n = 0;
	bool o16 = !(t->flags & T_NO66) && rn(4) == 0;
	bool lock = (t->flags & T_LOCK) && rn(3) == 0;
	if (t->flags & T_STR) {
		int rep = (int)rn(3);
		if (rep)
			p[n++] = rep == 1 ? 0xf3 : 0xf2;
		g->string = true;
	}
	if (o16)
		p[n++] = 0x66;
	if (t->pfx)
		p[n++] = t->pfx;
	int reg = t->reg >= 0 ? t->reg : pick_reg();
	bool mem = (t->flags & T_M) && !(t->flags & T_REG) && ((t->flags & T_MEM) || rn(2));
	int rm = mem ? (int)(1 + rn(15)) : pick_reg();
	while (mem && (rm == 4 || rm == 5 || rm == 12 || rm == 13))
		rm = (int)(1 + rn(15));
	if (lock && !mem)
		lock = false;
	if (lock)
		p[n++] = 0xf0;
	uint8_t rex = 0x40;
	if (!(t->flags & (T_NOW | T_NOREX)) && !(t->flags & T_SSE) && rn(2))
		rex |= 8;
	if ((t->flags & T_SSE) && t->pfx != 0x66 && rn(4) == 0 &&
	    (t->op[1] == 0x2a || t->op[1] == 0x2c || t->op[1] == 0x2d))
		rex |= 8;
	if ((t->flags & T_SSE) && t->pfx == 0x66 && (t->op[1] == 0x6e || t->op[1] == 0x7e) && rn(2))
		rex |= 8;
	if ((t->flags & T_M) && (reg & 8))
		rex |= 4;
	if ((t->flags & T_M) && (rm & 8))
		rex |= 1;
	if (!(t->flags & T_NOREX) && (rex != 0x40 || rn(8) == 0))
		p[n++] = rex;
	for (int i = 0; i < t->oplen; i++)
		p[n++] = t->op[i];
	if (t->flags & T_M) {
		if (mem) {
			int mod = (int)rn(3);
			p[n++] = (uint8_t)((mod << 6) | ((reg & 7) << 3) | (rm & 7));
			if (mod == 1)
				p[n++] = (uint8_t)(rn(8) * 8);
			else if (mod == 2) {
				uint32_t disp = (uint32_t)rn(32) * 16;
				memcpy(p + n, &disp, 4);
				n += 4;
			}
			g->ptr_regs |= 1 << rm;
		} else {
			p[n++] = (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7));
		}
	}
	if (t->flags & T_I8)
		p[n++] = (uint8_t)interesting();
	if (t->flags & T_IZ) {
		uint32_t imm = (uint32_t)interesting();
		int isz = o16 && !(rex & 8) ? 2 : 4;
		memcpy(p + n, &imm, isz);
		n += isz;
	}
	g->len += n;
	g->undef |= undef_mask[t->uf];
}

/* ---- running ---- */

static sigjmp_buf native_jb;
static volatile int native_trap;
static volatile uint64_t native_gpr[16], native_rip;

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	(void)si;
	native_trap = sig == SIGILL ? 6 : (int)uc->uc_mcontext.gregs[REG_TRAPNO];
	static const int map[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
				    REG_RSI, REG_RDI, REG_R8,  REG_R9,	REG_R10, REG_R11,
				    REG_R12, REG_R13, REG_R14, REG_R15};
	for (int i = 0; i < 16; i++)
		native_gpr[i] = (uint64_t)uc->uc_mcontext.gregs[map[i]];
	native_rip = (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
	siglongjmp(native_jb, 1);
}

static int run_native(void)
{
	native_trap = -1;
	if (sigsetjmp(native_jb, 1) == 0) {
		((void (*)(void))CODE_VA)();
	}
	uint32_t mx = 0x1f80;
	__asm__ volatile("ldmxcsr %0" : : "m"(mx));
	__asm__ volatile("cld");
	return native_trap;
}

static struct sg guest;

/* Returns the vector raised, -1 for none, -2 when the case left the test's
 * memory (MMIO exit) and cannot be compared. */
static int run_soft(const uint8_t *code, size_t ret_at, struct regs *out, uint8_t *data)
{
	uint8_t *ram = guest.ram;
	memcpy(ram + CODE_VA, code, CODE_LEN);
	ram[CODE_VA + ret_at] = 0xf4; /* hlt instead of ret */
	memcpy(ram + STATE_VA, (void *)STATE_VA, sizeof(struct block));
	memcpy(ram + DATA_VA, data, DATA_LEN);
	memset(ram + SG_VEC, 0xff, 4);
	struct cpu_state *s = &guest.st;
	memset(s->gpr, 0, sizeof(s->gpr));
	s->gpr[R_RSP] = STATE_VA + __builtin_offsetof(struct block, scratch) + 256;
	s->rip = CODE_VA;
	s->rflags = 2;
	soft_engine.set_state(guest.v, s);
	enum exit_reason r = sg_run(&guest);
	if (r != EXIT_HLT)
		return -2;
	memcpy(out, ram + STATE_VA + __builtin_offsetof(struct block, out), sizeof(*out));
	int32_t vec;
	memcpy(&vec, ram + SG_VEC, 4);
	if (vec >= 0)
		memcpy(out->gpr, s->gpr, sizeof(out->gpr));
	return vec;
}

static void dump(const char *what, const struct regs *r)
{
	fprintf(stderr, "  %s: rflags=%#" PRIx64 " mxcsr=%#x\n", what, r->rflags, r->mxcsr);
	for (int i = 0; i < 16; i++)
		fprintf(stderr, "    r%-2d=%016" PRIx64 "%s", i, r->gpr[i], i % 4 == 3 ? "\n" : "");
}

static bool verbose;
static unsigned long skipped;

/* Run one case; returns true when both sides agree. */
static bool run_case(const struct gen *g, const struct regs *in, const uint8_t *data_in,
		     const char *label)
{
	struct emit e = {.p = (uint8_t *)CODE_VA, .n = 0};
	memset((void *)CODE_VA, 0xcc, CODE_LEN);
	prologue(&e);
	memcpy(e.p + e.n, g->code, g->len);
	e.n += g->len;
	size_t ret_at = epilogue(&e);
	static uint8_t code[CODE_LEN]; /* as generated: the native run may write to it */
	memcpy(code, (void *)CODE_VA, CODE_LEN);

	struct block *b = ST;
	memset(b, 0, sizeof(*b));
	b->in = *in;
	b->scratch_top = STATE_VA + __builtin_offsetof(struct block, scratch) + 256;
	memcpy((void *)DATA_VA, data_in, DATA_LEN);

	int ntrap = run_native();
	struct regs nout = b->out;
	if (ntrap >= 0)
		for (int i = 0; i < 16; i++)
			nout.gpr[i] = native_gpr[i];
	static uint8_t ndata[DATA_LEN];
	memcpy(ndata, (void *)DATA_VA, DATA_LEN);
	if (ntrap == 14) { /* the sequence left the data buffer */
		skipped++;
		return true;
	}

	/* the same inputs for the soft side */
	memset(b, 0, sizeof(*b));
	b->in = *in;
	b->scratch_top = STATE_VA + __builtin_offsetof(struct block, scratch) + 256;
	struct regs sout;
	int strap = run_soft(code, ret_at, &sout, (uint8_t *)data_in);
	if (strap == -2) {
		skipped++;
		return true;
	}
	const uint8_t *sdata = guest.ram + DATA_VA;

	bool ok = true;
	char why[200] = "";
	/* Run the soft side again: now from its decoded-block cache, which must
	 * not remember anything from the first execution. */
	static uint8_t first_data[DATA_LEN];
	struct regs first = sout;
	memcpy(first_data, sdata, DATA_LEN);
	memset(b, 0, sizeof(*b));
	b->in = *in;
	b->scratch_top = STATE_VA + __builtin_offsetof(struct block, scratch) + 256;
	int strap2 = run_soft(code, ret_at, &sout, (uint8_t *)data_in);
	if (strap2 != strap || memcmp(&first, &sout, sizeof(first)) ||
	    memcmp(first_data, sdata, DATA_LEN)) {
		snprintf(why, sizeof(why),
			 "second soft run differs from the first (cached decode)");
		ok = false;
	}
	if (ok && ntrap != strap) {
		snprintf(why, sizeof(why), "exception: native %d, soft %d", ntrap, strap);
		ok = false;
	}
	for (int i = 0; ok && i < 16; i++)
		if (i != 4 && nout.gpr[i] != sout.gpr[i]) {
			snprintf(why, sizeof(why), "r%d: native %#" PRIx64 ", soft %#" PRIx64, i,
				 nout.gpr[i], sout.gpr[i]);
			ok = false;
		}
	if (ok && ntrap < 0) {
		uint64_t mask = 0xcd5 & ~g->undef;
		if ((nout.rflags ^ sout.rflags) & mask) {
			snprintf(why, sizeof(why), "rflags: native %#" PRIx64 ", soft %#" PRIx64,
				 nout.rflags, sout.rflags);
			ok = false;
		} else if (memcmp(nout.xmm, sout.xmm, sizeof(nout.xmm))) {
			for (int i = 0; i < 16; i++)
				if (memcmp(nout.xmm[i], sout.xmm[i], 16))
					snprintf(why, sizeof(why), "xmm%d differs", i);
			ok = false;
		} else if (nout.mxcsr != sout.mxcsr) {
			snprintf(why, sizeof(why), "mxcsr: native %#x, soft %#x", nout.mxcsr,
				 sout.mxcsr);
			ok = false;
		} else if (memcmp(ndata, sdata, DATA_LEN)) {
			for (int i = 0; i < DATA_LEN; i++)
				if (ndata[i] != sdata[i]) {
					snprintf(why, sizeof(why),
						 "memory +%#x: native %#x, soft %#x", i, ndata[i],
						 sdata[i]);
					break;
				}
			ok = false;
		}
	}
	if (!ok) {
		fprintf(stderr, "MISMATCH %s: %s\n  code:", label, why);
		for (size_t i = 0; i < g->len; i++)
			fprintf(stderr, " %02x", g->code[i]);
		fprintf(stderr, "\n");
		if (verbose) {
			fprintf(stderr, "  native fault at +%#" PRIx64 "\n",
				(uint64_t)(native_rip - CODE_VA));
			dump("in", in);
			dump("native", &nout);
			dump("soft", &sout);
		}
	}
	return ok;
}

static void random_state(const struct gen *g, struct regs *in, uint8_t *data)
{
	for (int i = 0; i < 16; i++)
		in->gpr[i] = interesting();
	for (int i = 0; i < 16; i++)
		if (g->ptr_regs & (1 << i))
			in->gpr[i] = DATA_VA + 0x400 + rn(32) * 16;
	if (g->string) {
		in->gpr[R_RSI] = DATA_VA + 0x800 + rn(64);
		in->gpr[R_RDI] = DATA_VA + 0x1000 + rn(64);
		/* Overlapping moves replicate data. The distance is a multiple of
		 * 8: closer than one element, this host's fast-string microcode
		 * departs from the architectural element-by-element result that
		 * the soft engine implements. */
		if (rn(4) == 0)
			in->gpr[R_RDI] = in->gpr[R_RSI] + 8 * rn(4) - 8;
		in->gpr[R_RCX] = rn(4) == 0 ? rn(600) : rn(40);
	}
	in->gpr[R_RSP] = STATE_VA + __builtin_offsetof(struct block, stack) + 1024;
	in->rflags = 0x2 | (rnd() & 0x8d5) | (g->string && rn(4) == 0 ? 0x400 : 0);
	in->mxcsr = 0x1f80 | (rn(4) == 0 ? (uint32_t)rn(4) << 13 : 0);
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 16; j += 8) {
			uint64_t v = interesting();
			if (rn(3) == 0) { /* floating-point looking values */
				double dv = (double)(int64_t)rnd() / (double)(1 + rn(1000));
				memcpy(&v, &dv, 8);
			}
			memcpy(&in->xmm[i][j], &v, 8);
		}
	for (int i = 0; i < DATA_LEN; i += 8) {
		uint64_t v = interesting();
		memcpy(data + i, &v, 8);
	}
}

/* Directed cases: sequences that once mismatched, kept as regressions. */
struct directed {
	const char *name;
	uint8_t code[48];
	size_t len;
	uint64_t rax, rcx, rdx, rflags;
	uint64_t undef;
	int64_t overlap; /* string case: RDI = RSI + overlap (0 = not a string case) */
};

static const struct directed directed[] = {
    {"adc carry chain", {0x48, 0x01, 0xc8, 0x48, 0x11, 0xd0}, 6, ~0ull, 1, 5, 0x2, 0, 0},
    {"inc keeps CF", {0x48, 0x39, 0xc8, 0x48, 0xff, 0xc0}, 6, 1, 2, 0, 0x2, 0, 0},
    {"sbb after cmp", {0x48, 0x39, 0xc8, 0x48, 0x19, 0xd2}, 6, 1, 2, 7, 0x2, 0, 0},
    {"shl 32-bit by 0 zero-extends", {0xd3, 0xe0}, 2, ~0ull, 0, 0, 0x2, 0x811, 0},
    {"idiv overflow raises #DE",
     {0x48, 0xf7, 0xf9},
     3,
     0,
     ~0ull,
     0x8000000000000000ull,
     0x2,
     0x8d5,
     0},
    {"div by zero", {0xf7, 0xf1}, 2, 5, 0, 0, 0x2, 0x8d5, 0},
    {"bsf of zero leaves dest", {0x0f, 0xbc, 0xc1}, 3, 0x1234567812345678ull, 0, 0, 0x2, 0x895, 0},
    {"rcr 8-bit by 9", {0xc0, 0xd8, 0x09}, 3, 0x81, 0, 0, 0x3, 0x811, 0},
    {"cmpxchg fail loads rax", {0x48, 0x0f, 0xb1, 0xca}, 4, 1, 2, 3, 0x2, 0, 0},
    {"xadd", {0x48, 0x0f, 0xc1, 0xc1}, 4, 5, 7, 0, 0x2, 0, 0},
    {"cqo / idiv", {0x48, 0x99, 0x48, 0xf7, 0xf9}, 5, -100ull, 7, 0, 0x2, 0x8d5, 0},
    {"bt reg offset", {0x48, 0x0f, 0xa3, 0xc8}, 4, 0x10, 4, 0, 0x2, 0x894, 0},
    /* a register MOV fused with the instruction that computes on the copy */
    {"mov, then add the copy to itself",
     {0x48, 0x89, 0xc2, 0x48, 0x01, 0xd2},
     6,
     5,
     0,
     0,
     0x2,
     0,
     0},
    {"mov, then cmp the copy", {0x48, 0x89, 0xc2, 0x48, 0x39, 0xca}, 6, 3, 7, 0, 0x2, 0, 0},
    {"mov, then shr the 32-bit copy",
     {0x89, 0xc2, 0xc1, 0xea, 0x03},
     5,
     0xffffffffffffff00ull,
     0,
     0,
     0x2,
     0x810,
     0},
    {"mov, then imul the copy",
     {0x48, 0x89, 0xc2, 0x48, 0x0f, 0xaf, 0xd1},
     7,
     -3ull,
     7,
     0,
     0x2,
     0xd4,
     0},
    {"mov, then xor into the source (not fused)",
     {0x48, 0x89, 0xc2, 0x48, 0x31, 0xd0},
     6,
     9,
     0,
     0,
     0x2,
     0,
     0},
    /* a flag setter fused with the conditional branch after it (taken: skip the xor) */
    {"cmp, jne taken", {0x39, 0xc8, 0x75, 0x02, 0x31, 0xd2}, 6, 1, 2, 7, 0x2, 0, 0},
    {"cmp, jne not taken", {0x39, 0xc8, 0x75, 0x02, 0x31, 0xd2}, 6, 2, 2, 7, 0x2, 0, 0},
    {"test, js", {0x85, 0xc0, 0x78, 0x02, 0x31, 0xd2}, 6, 0x80000000, 0, 7, 0x2, 0x10, 0},
    {"sub, jbe", {0x29, 0xc8, 0x76, 0x02, 0x31, 0xd2}, 6, 3, 3, 7, 0x2, 0, 0},
    {"add, jo", {0x01, 0xc8, 0x70, 0x02, 0x31, 0xd2}, 6, 0x7fffffff, 1, 7, 0x2, 0, 0},
    /* translation rules of the forms the interpreter runs in exec_in_block,
     * and flag readers after them (rcx points into the data buffer where
     * a case writes memory) */
    {"shl by cl of 0 keeps CF, jb",
     {0x48, 0x39, 0xc8, 0x48, 0xd3, 0xe2, 0x72, 0x02, 0x31, 0xd2},
     10,
     1,
     0x100,
     7,
     0x2,
     0,
     0},
    {"shr by cl, jne", {0x48, 0xd3, 0xe8, 0x75, 0x02, 0x31, 0xd2}, 7, 0x80, 7, 7, 0x2, 0x810, 0},
    {"sar 32-bit by cl", {0xd3, 0xf8}, 2, 0x80000000, 33, 0, 0x2, 0x810, 0},
    {"dec, jne loop", {0xff, 0xc9, 0x75, 0xfc}, 4, 0, 5, 0, 0x3, 0, 0},
    {"inc, sbb keeps CF", {0x48, 0x39, 0xc8, 0xff, 0xc0, 0x19, 0xd2}, 7, 1, 2, 0, 0x2, 0, 0},
    {"inc dword [rcx], jz",
     {0xff, 0x01, 0x74, 0x02, 0x31, 0xc0},
     6,
     1,
     DATA_VA + 0x100,
     0,
     0x3,
     0,
     0},
    {"dec qword [rcx], jo",
     {0x48, 0xff, 0x09, 0x70, 0x02, 0x31, 0xc0},
     7,
     1,
     DATA_VA + 0x100,
     0,
     0x2,
     0,
     0},
    {"neg, jc", {0xf7, 0xd8, 0x72, 0x02, 0x31, 0xd2}, 6, 5, 0, 7, 0x2, 0, 0},
    {"neg qword [rcx], js",
     {0x48, 0xf7, 0x19, 0x78, 0x02, 0x31, 0xd2},
     7,
     0,
     DATA_VA + 0x100,
     7,
     0x2,
     0,
     0},
    {"not qword [rcx], not edx",
     {0x48, 0xf7, 0x11, 0xf7, 0xd2},
     5,
     0,
     DATA_VA + 0x100,
     7,
     0x2,
     0,
     0},
    {"mov word [rcx], dx; mov ax, [rcx]",
     {0x66, 0x89, 0x11, 0x66, 0x8b, 0x01},
     6,
     ~0ull,
     DATA_VA + 0x100,
     0x1234,
     0x2,
     0,
     0},
    {"mov word [rcx], imm16; mov dx, ax",
     {0x66, 0xc7, 0x01, 0x34, 0x92, 0x66, 0x89, 0xc2},
     8,
     7,
     DATA_VA + 0xffe,
     ~0ull,
     0x2,
     0,
     0},
    {"bswap",
     {0x0f, 0xc8, 0x48, 0x0f, 0xca},
     5,
     0x1122334455667788ull,
     0,
     0x0102030405060708ull,
     0x2,
     0,
     0},
    {"add, adc imm", {0x48, 0x01, 0xc8, 0x48, 0x83, 0xd2, 0x05}, 7, ~0ull, 1, 5, 0x2, 0, 0},
    {"cmp bytes, sbb, jne",
     {0x38, 0xc8, 0x19, 0xd2, 0x75, 0x02, 0x31, 0xc0},
     8,
     1,
     2,
     9,
     0x2,
     0,
     0},
    {"sbb, adc, jc",
     {0x48, 0x19, 0xc8, 0x48, 0x11, 0xca, 0x72, 0x02, 0x31, 0xc0},
     10,
     0,
     1,
     ~0ull,
     0x3,
     0,
     0},
    {"cmp 16-bit registers, jl",
     {0x66, 0x39, 0xc8, 0x7c, 0x02, 0x31, 0xd2},
     7,
     0x18000,
     0x27fff,
     7,
     0x2,
     0,
     0},
    {"add 16-bit keeps bits 16-63, jc",
     {0x66, 0x01, 0xc8, 0x72, 0x02, 0x31, 0xd2},
     7,
     0x123456789abcffffull,
     1,
     7,
     0x2,
     0,
     0},
    {"sub 16-bit from memory, js",
     {0x66, 0x29, 0x01, 0x78, 0x02, 0x31, 0xd2},
     7,
     1,
     DATA_VA + 0x100,
     7,
     0x2,
     0,
     0},
    {"xor 16-bit imm, cmp 16-bit memory",
     {0x66, 0x83, 0xf0, 0x7f, 0x66, 0x3b, 0x01},
     7,
     0xffff,
     DATA_VA + 0x100,
     7,
     0x2,
     0x10,
     0},
    {"test al, imm8, jz", {0xa8, 0x81, 0x74, 0x02, 0x31, 0xd2}, 6, 0x7e, 0, 7, 0x2, 0x10, 0},
    {"shl byte [rcx], 1, jc",
     {0xd0, 0x21, 0x72, 0x02, 0x31, 0xd2},
     6,
     0,
     DATA_VA + 0x100,
     7,
     0x2,
     0x10,
     0},
    {"sar dl, 3; shr ah, 1", {0xc0, 0xfa, 0x03, 0xd0, 0xec}, 5, 0x8100, 0, 0x85, 0x2, 0x810, 0},
    {"add, inc, adc: CF through INC",
     {0x48, 0x01, 0xc8, 0x48, 0xff, 0xc2, 0x48, 0x11, 0xc8},
     9,
     ~0ull,
     1,
     5,
     0x2,
     0,
     0},
    {"inc word [rcx], jz",
     {0x66, 0xff, 0x01, 0x74, 0x02, 0x31, 0xc0},
     7,
     0,
     DATA_VA + 0x100,
     0,
     0x2,
     0,
     0},
    {"rol, then add: the rotate's flags dead",
     {0x48, 0xc1, 0xc0, 0x05, 0x48, 0x01, 0xc8},
     7,
     0x8000000000000001ull,
     3,
     0,
     0x2,
     0,
     0},
    {"sub, ror keeps ZF, jz",
     {0x48, 0x29, 0xc8, 0x48, 0xc1, 0xca, 0x03, 0x74, 0x02, 0x31, 0xd2},
     11,
     9,
     9,
     0x17,
     0x2,
     0x800,
     0},
    /* a CMP or TEST before the closing Jcc leaves its lazy flags on the
     * ways out only: read after a loop (whose back-edge skips them) and
     * after either way of a branch */
    {"add/cmp loop, seta after",
     {0x83, 0xc1, 0x01, 0x39, 0xd1, 0x75, 0xf9, 0x0f, 0x97, 0xc0},
     10,
     0,
     0,
     3,
     0x2,
     0,
     0},
    /* rotates and INC/DEC set some flags and keep the others: they read the
     * flags before only when their own are live, and are one host
     * instruction when a later full writer makes them dead */
    {"rotates whose flags an and replaces",
     {0xc1, 0xc9, 0x06, 0xc1, 0xca, 0x0b, 0x21, 0xca},
     8,
     0,
     0x12345678,
     0x9abcdef0,
     0x2,
     0,
     0},
    {"add, then two rotates: ZF SF PF of the add, CF of the last",
     {0x01, 0xc8, 0xc1, 0xc2, 0x07, 0xc1, 0xca, 0x03},
     8,
     0x7fffffff,
     1,
     0x80000001,
     0x2,
     0x800,
     0},
    {"inc whose flags an add replaces",
     {0x48, 0x39, 0xc8, 0x48, 0xff, 0xc2, 0x48, 0x01, 0xc2},
     9,
     1,
     2,
     ~0ull,
     0x2,
     0,
     0},
    {"cmp, inc, rol, sbb: CF of the rol, ZF SF PF of the inc",
     {0x48, 0x39, 0xc8, 0x48, 0xff, 0xc2, 0x48, 0xd1, 0xc2, 0x48, 0x19, 0xc0},
     12,
     1,
     2,
     0x7fffffffffffffffull,
     0x2,
     0,
     0},
    /* register ALU operations compute in the cached registers with their
     * flags live too (stored from them): read by the next block, or after
     * a load that may leave for the interpreter */
    {"cmp eax, imm in place, jb in the next block",
     {0x83, 0xf8, 0x05, 0xeb, 0x00, 0x72, 0x02, 0x31, 0xd2},
     9,
     3,
     0,
     9,
     0x2,
     0,
     0},
    {"sub in place, a load, sbb reads CF",
     {0x48, 0x29, 0xd0, 0x4c, 0x8b, 0x01, 0x4d, 0x19, 0xc9},
     9,
     1,
     DATA_VA + 0x100,
     2,
     0x2,
     0,
     0},
    /* a load whose value the next instruction stores back probes once, for
     * writing, and the store uses its host address (crossing a page: both
     * leave for the interpreter) */
    {"add from memory, store back", {0x03, 0x01, 0x89, 0x01}, 4, 5, DATA_VA + 0x100, 0, 0x2, 0, 0},
    {"mov from memory, store back (SIB)",
     {0x48, 0x8b, 0x04, 0x91, 0x48, 0x89, 0x04, 0x91},
     8,
     0,
     DATA_VA + 0x100,
     3,
     0x2,
     0,
     0},
    {"add from memory across a page, store back",
     {0x03, 0x01, 0x89, 0x01},
     4,
     5,
     DATA_VA + 0xffe,
     0,
     0x2,
     0,
     0},
    /* the first flag reader of a block guesses the lazy operation another
     * block left (the one pending when it is translated), behind a guard:
     * Jcc and INC at a block's start after a CMP, a byte TEST, and a loop
     * whose reader is reached after TEST/CMP on some passes and ADD on
     * others (the guard fails on some) */
    {"cmp, jmp, jb", {0x48, 0x39, 0xc8, 0xeb, 0x00, 0x72, 0x02, 0x31, 0xd2}, 9, 5, 7, 9, 0x2, 0, 0},
    {"test al, jmp, js",
     {0x84, 0xc0, 0xeb, 0x00, 0x78, 0x02, 0x31, 0xd2},
     8,
     0x80,
     0,
     9,
     0x2,
     0,
     0},
    {"cmp, jmp, inc, adc: CF through the INC",
     {0x48, 0x39, 0xc8, 0xeb, 0x00, 0x48, 0xff, 0xc2, 0x48, 0x83, 0xd2, 0x00},
     12,
     1,
     2,
     5,
     0x2,
     0,
     0},
    {"jb after cmp or add from other blocks, in a loop",
     {0xbe, 0x04, 0x00, 0x00, 0x00, 0xf7, 0xc6, 0x01, 0x00, 0x00, 0x00,
      0x75, 0x05, 0x48, 0x39, 0xc8, 0xeb, 0x05, 0x48, 0x01, 0xc8, 0xeb,
      0x00, 0x72, 0x04, 0x48, 0x83, 0xc2, 0x01, 0xff, 0xce, 0x75, 0xe4},
     33,
     0xfffffffffffffff0ull,
     0x20,
     0,
     0x2,
     0,
     0},
    /* a loop whose first instructions may miss the TLB goes back to a copy
     * of them whose ways out store the closing CMP's pending flags: byte
     * loads crossing into the data buffer's second page on a later pass
     * (FNV-style: movzx, add, xor, imul, cmp, jne) */
    {"byte hash loop into the next page",
     {0x44, 0x0f, 0xb6, 0x02, 0x48, 0x83, 0xc2, 0x01, 0x4c, 0x31, 0xc0, 0x48,
      0x69, 0xc0, 0xb3, 0x01, 0x00, 0x00, 0x48, 0x39, 0xca, 0x75, 0xe9},
     23,
     0xcbf29ce484222325ull,
     DATA_VA + 0x1008,
     DATA_VA + 0xff8,
     0x2,
     0,
     0},
    /* the same with mov rcx, rcx first: the copy writes the register the
     * pending CMP reads, so the translation does without the copy */
    {"byte hash loop, head writes the compared register",
     {0x48, 0x89, 0xc9, 0x44, 0x0f, 0xb6, 0x02, 0x48, 0x83, 0xc2, 0x01, 0x4c, 0x31,
      0xc0, 0x48, 0x69, 0xc0, 0xb3, 0x01, 0x00, 0x00, 0x48, 0x39, 0xca, 0x75, 0xe6},
     26,
     0xcbf29ce484222325ull,
     DATA_VA + 0x1008,
     DATA_VA + 0xff8,
     0x2,
     0,
     0},
    /* the head's first flag writer reads memory itself: mov r9, rdx;
     * add rax, [r9]; add rdx, 8; cmp rdx, rcx; jne */
    {"add from memory heads a loop into the next page",
     {0x49, 0x89, 0xd1, 0x49, 0x03, 0x01, 0x48, 0x83, 0xc2, 0x08, 0x48, 0x39, 0xca, 0x75, 0xf1},
     15,
     7,
     DATA_VA + 0x1020,
     DATA_VA + 0xfe0,
     0x2,
     0,
     0},
    {"cmp imm, jb taken, adc after",
     {0x48, 0x83, 0xf8, 0x05, 0x72, 0x02, 0x31, 0xd2, 0x48, 0x11, 0xc9},
     11,
     3,
     7,
     7,
     0x2,
     0,
     0},
    {"cmp imm, jb not taken, adc after",
     {0x48, 0x83, 0xf8, 0x05, 0x72, 0x02, 0x31, 0xd2, 0x48, 0x11, 0xc9},
     11,
     9,
     7,
     7,
     0x2,
     0,
     0},
    {"test, jz, sete and jl after",
     {0x48, 0x85, 0xc0, 0x74, 0x02, 0x31, 0xd2, 0x0f, 0x94, 0xc1, 0x7c, 0x02, 0x31, 0xdb},
     14,
     0x8000000000000000ull,
     0,
     7,
     0x2,
     0x10,
     0},
    {"mov ch, imm8; mov r9b, imm8; mov dl, imm8",
     {0xb5, 0x81, 0x41, 0xb1, 0x7f, 0xb2, 0xfe},
     7,
     0,
     ~0ull,
     ~0ull,
     0x2,
     0,
     0},
    {"movsx eax, byte [rcx]; movsx rdx, dx; movsx ecx, bh",
     {0x0f, 0xbe, 0x01, 0x48, 0x0f, 0xbf, 0xd2, 0x0f, 0xbe, 0xcf},
     10,
     ~0ull,
     DATA_VA + 0x100,
     0x8000,
     0x2,
     0,
     0},
    /* a rotate keeps ZF, SF, PF, AF of the operation before it, made real
     * from the host's flags */
    {"add, rol keeps ZF SF PF AF",
     {0x01, 0xc8, 0xc1, 0xc2, 0x03},
     5,
     0x0f,
     0xf1,
     0x80000001,
     0x2,
     0x800,
     0},
    {"sub, ror keeps them, adc after",
     {0x48, 0x29, 0xc8, 0x48, 0xc1, 0xca, 0x05, 0x48, 0x11, 0xc0},
     10,
     1,
     2,
     0x3f,
     0x2,
     0x800,
     0},
    {"xor, ror", {0x31, 0xc8, 0xc1, 0xca, 0x05}, 5, 0x80, 0x80, 0x21, 0x2, 0x810, 0},
    /* CALL and JMP through a register end a block and leave through the
     * indirect-branch table */
    {"jmp rax over an xor",
     {0x48, 0x8d, 0x05, 0x04, 0x00, 0x00, 0x00, 0xff, 0xe0, 0x31, 0xd2},
     11,
     0,
     0,
     7,
     0x2,
     0,
     0},
    {"call rcx, pop the return address",
     {0x48, 0x8d, 0x0d, 0x04, 0x00, 0x00, 0x00, 0xff, 0xd1, 0x31, 0xd2, 0x5b},
     12,
     0,
     0,
     7,
     0x2,
     0,
     0},
    {"cmp, setb byte [rcx], setl dl",
     {0x39, 0xd0, 0x0f, 0x92, 0x01, 0x0f, 0x9c, 0xc2},
     8,
     1,
     DATA_VA + 0x100,
     2,
     0x2,
     0,
     0},
    {"cmp, jne +0, then setbe byte [rcx]",
     {0x39, 0xd0, 0x75, 0x00, 0x0f, 0x96, 0x01},
     7,
     3,
     DATA_VA + 0x1ff,
     3,
     0x2,
     0,
     0},
    {"div 32-bit overflow raises #DE", {0xf7, 0xf1}, 2, 5, 2, 3, 0x2, 0x8d5, 0},
    {"div 64-bit, then add", {0x48, 0xf7, 0xf1, 0x48, 0x01, 0xd0}, 6, 1000001, 7, 0, 0x2, 0, 0},
    {"div 64-bit by zero after a cmp", {0x48, 0x39, 0xc8, 0x48, 0xf7, 0xf1}, 6, 5, 0, 1, 0x2, 0, 0},
    {"mul 64-bit, jc",
     {0x48, 0xf7, 0xe1, 0x72, 0x02, 0x31, 0xdb},
     7,
     1ull << 40,
     1ull << 30,
     0,
     0x2,
     0xd4,
     0},
    {"imul one operand 32-bit, jo",
     {0xf7, 0xe9, 0x70, 0x02, 0x31, 0xdb},
     6,
     0x10000,
     0x8000,
     0,
     0x2,
     0xd4,
     0},
    {"mul dword [rcx]", {0xf7, 0x21}, 2, 0xfffffffff, DATA_VA + 0x100, 0, 0x2, 0xd4, 0},
    {"cmp, jne +0, then cmovb and cmovge [rcx]",
     {0x48, 0x39, 0xd0, 0x75, 0x00, 0x48, 0x0f, 0x42, 0xc2, 0x0f, 0x4d, 0x11},
     12,
     1,
     DATA_VA + 0x100,
     2,
     0x2,
     0,
     0},
    {"test, jne +0, then cmove 32-bit not taken",
     {0x85, 0xc0, 0x75, 0x00, 0x0f, 0x44, 0xc2},
     7,
     ~0ull,
     0,
     5,
     0x2,
     0x10,
     0},
    /* a block starting with a Jcc: the flags come from the block before */
    {"cmp, jne +0, then jb",
     {0x39, 0xc8, 0x75, 0x00, 0x72, 0x02, 0x31, 0xd2},
     8,
     1,
     2,
     7,
     0x2,
     0,
     0},
    {"add, jne +0, then jp and jle",
     {0x01, 0xc8, 0x75, 0x00, 0x7a, 0x02, 0x31, 0xd2, 0x7e, 0x02, 0x31, 0xdb},
     12,
     0x7fffffff,
     2,
     7,
     0x2,
     0,
     0},
    /* a flag reader after a byte operation and then IMUL or a rotate: the
     * translation must not redo the byte operation */
    {"add bytes, imul, jo",
     {0x00, 0xc8, 0x48, 0x0f, 0xaf, 0xc2, 0x70, 0x02, 0x31, 0xd2},
     10,
     0x400000000000007full,
     1,
     4,
     0x2,
     0xd4,
     0},
    {"add bytes, rol, jc",
     {0x00, 0xc8, 0x48, 0xd1, 0xc0, 0x72, 0x02, 0x31, 0xd2},
     9,
     0xff,
     1,
     7,
     0x2,
     0x800,
     0},
    /* mismatches found by the tester or by booting Linux, kept as regressions */
    {"xchg reg, reg from the decode cache", {0x48, 0x87, 0xca}, 3, 1, 2, 3, 0x2, 0, 0},
    {"cvttsd2si 32-bit sets only its own flags", {0xf2, 0x0f, 0x2c, 0xd2}, 4, 0, 0, 0, 0x2, 0, 0},
    {"cvttps2pi (MMX conversion)", {0x0f, 0x2c, 0xc1}, 3, 0, 0, 0, 0x2, 0, 0},
    {"cvtpi2pd (MMX conversion)", {0x66, 0x0f, 0x2a, 0xc1}, 4, 0, 0, 0, 0x2, 0, 0},
    {"rep movsq overlapping by one element", {0xf3, 0x48, 0xa5}, 3, 0, 40, 0, 0x2, 0, 8},
    {"rep movsd overlapping by two elements", {0xf3, 0xa5}, 2, 0, 77, 0, 0x2, 0, 8},
    /* XSAVE of the SSE state (the test does not set the x87 state) at [rcx]
     * with a zeroed header, MXCSR_MASK cleared (the host's has AMD's MM bit),
     * XMM0 cleared, XRSTOR */
    {"xsave, xrstor SSE",
     {0x31, 0xd2, 0x48, 0x89, 0x91, 0x00, 0x02, 0x00, 0x00, 0x48, 0x89, 0x91, 0x08, 0x02,
      0x00, 0x00, 0x48, 0x89, 0x91, 0x10, 0x02, 0x00, 0x00, 0xb8, 0x02, 0x00, 0x00, 0x00,
      0x0f, 0xae, 0x21, 0x89, 0x51, 0x1c, 0x66, 0x0f, 0xef, 0xc0, 0x0f, 0xae, 0x29},
     41,
     0,
     DATA_VA + 0x400,
     0,
     0x2,
     0,
     0},
    {"xsave misaligned raises #GP",
     {0x31, 0xd2, 0xb8, 0x02, 0x00, 0x00, 0x00, 0x0f, 0xae, 0x21},
     10,
     0,
     DATA_VA + 0x408,
     0,
     0x2,
     0,
     0},
    /* zeroed header and a valid MXCSR but XCOMP_BV = 1: the standard form raises #GP */
    {"xrstor with XCOMP_BV set raises #GP",
     {0x31, 0xd2, 0x48, 0x89, 0x91, 0x00, 0x02, 0x00, 0x00, 0x48, 0x89, 0x91, 0x10, 0x02,
      0x00, 0x00, 0xc7, 0x41, 0x18, 0x80, 0x1f, 0x00, 0x00, 0x48, 0xc7, 0x81, 0x08, 0x02,
      0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xb8, 0x02, 0x00, 0x00, 0x00, 0x0f, 0xae, 0x29},
     42,
     0,
     DATA_VA + 0x400,
     0,
     0x2,
     0,
     0},
};

int main(int argc, char **argv)
{
	unsigned long ncases = 20000;
	bool jit = false;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			ncases = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (!strcmp(argv[i], "-j"))
			jit = true;
		else {
			fprintf(stderr, "usage: %s [-n CASES] [-s SEED] [-v] [-j]\n", argv[0]);
			return 64;
		}
	}
	rng_state = (seed * 0x9e3779b97f4a7c15ull) | 1;

	if (mmap((void *)CODE_VA, CODE_LEN, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != (void *)CODE_VA ||
	    mmap((void *)DATA_VA, DATA_LEN, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != (void *)DATA_VA ||
	    mmap((void *)STATE_VA, 0x2000, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != (void *)STATE_VA) {
		perror("cpudiff: cannot map the fixed test pages at 0x200000");
		return 71;
	}
	static char altstack[65536];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
	sigaltstack(&ss, NULL);
	struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_ONSTACK};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGTRAP, &sa, NULL);

	if (sg_init_jit(&guest, 1, jit)) {
		fprintf(stderr, "cpudiff: cannot create the soft engine VM\n");
		return 71;
	}
	/* The host runs with XSAVE enabled and XCR0 covering x87|SSE: so does the guest. */
	guest.st.cr4 |= CR4_OSXSAVE;
	guest.st.xcr0 = XSTATE_X87 | XSTATE_SSE;
	unsigned long bad = 0, run = 0;
	static uint8_t data[DATA_LEN];

	for (size_t i = 0; i < sizeof(directed) / sizeof(directed[0]); i++) {
		const struct directed *dc = &directed[i];
		struct gen g = {.len = dc->len, .undef = dc->undef, .string = dc->overlap != 0};
		memcpy(g.code, dc->code, dc->len);
		struct regs in;
		rng_state = (seed * 0x9e3779b97f4a7c15ull) | 1;
		random_state(&g, &in, data);
		if (dc->overlap)
			in.gpr[R_RDI] = in.gpr[R_RSI] + (uint64_t)dc->overlap;
		in.gpr[R_RAX] = dc->rax;
		in.gpr[R_RCX] = dc->rcx;
		in.gpr[R_RDX] = dc->rdx;
		in.rflags = dc->rflags;
		run++;
		if (!run_case(&g, &in, data, dc->name))
			bad++;
	}
	rng_state = (seed * 0x9e3779b97f4a7c15ull) | 1;
	for (unsigned long n = 0; n < ncases; n++) {
		struct gen g = {0};
		int count = 1 + (int)rn(3);
		for (int k = 0; k < count; k++)
			gen_insn(&g, k == count - 1);
		struct regs in;
		random_state(&g, &in, data);
		char label[64];
		snprintf(label, sizeof(label), "case %lu (seed %#" PRIx64 ")", n, seed);
		run++;
		if (!run_case(&g, &in, data, label))
			bad++;
	}
	printf("cpudiff: %lu cases, %lu mismatches, %lu skipped (left the test memory)\n", run, bad,
	       skipped);
	if (jit) { /* a translator that translated nothing was not tested */
		struct json_object *st = json_object_new_object(), *j, *n;
		soft_engine.stats(guest.v, st);
		int64_t blocks = 0, insns = 0;
		if (json_object_object_get_ex(st, "jit", &j)) {
			if (json_object_object_get_ex(j, "blocks", &n))
				blocks = json_object_get_int64(n);
			if (json_object_object_get_ex(j, "insns", &n))
				insns = json_object_get_int64(n);
		}
		json_object_put(st);
		printf("cpudiff: %" PRId64 " blocks translated, %" PRId64 " instructions\n", blocks,
		       insns);
		if (!insns)
			bad++;
	}
	sg_free(&guest);
	return bad ? 1 : 0;
}
