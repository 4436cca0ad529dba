/* Tier 1 of the soft engine: a block's leading run of register, load and
 * store instructions becomes host x86-64 code (translate.c), written by a
 * small emitter (emit.c) into a W^X code buffer (cache.c). The host code has
 * the signature of a fast handler and replaces the block's first one: it runs
 * its instructions natively, then jumps to the interpreter's handler of the
 * first instruction it does not cover (or one whose TLB probe missed), so
 * correctness never depends on coverage. See docs/soft-engine.md. */
#ifndef POPEK_SOFT_JIT_H
#define POPEK_SOFT_JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct soft_cpu;
struct block;
struct insn;

/* Per vCPU, flushed whole when full: 4 MiB held a fraction of what a Linux
 * kernel sending over TCP keeps hot, and was flushed every 2 s. */
#define JIT_CODE_SIZE  (32u << 20)
#define JIT_MAX_BLOCKS 65536
#define JIT_MAX_LINKS  (2 * JIT_MAX_BLOCKS) /* a Jcc's two exits */
/* Entries of the indirect-branch table: a kernel has thousands of return sites. */
#define JIT_IND_BITS 12
#define JIT_EXIT_IND (-1) /* jit_exit after a RET found no entry */
/* Runs before a block is translated: most blocks a Linux boot decodes run a
 * few times only (it decodes over a million), and translating costs more
 * than decoding. */
#define JIT_AFTER 16

/* One translation: the block it was installed in and the handler it
 * replaced, so a flush can put the interpreter back. */
struct jit_entry {
	struct block *b;
	void *code; /* the block's first handler: saves what the body may use, calls it */
	void *body; /* where chained exits and loops enter */
	void (*orig)(struct soft_cpu *c, struct insn *d);
};

/* Where a chained exit goes: the translated block and its host code, valid
 * while the vCPU's epoch is the one the block was validated in. Data the
 * exit's code loads, so linking writes no code (a store into code the host
 * may have cached costs a pipeline flush). */
struct jit_target {
	uint64_t epoch;
	struct block *b;
	void *code;
};

/* A direct exit of a translation (a branch target or the fall-through) and
 * what the block it may enter must be. */
struct jit_link {
	struct jit_target to;
	uint64_t target;
	int64_t key; /* code_key() of the translation, which its target shares */
};

/* The indirect-branch table: a RET's target -> the block translated there.
 * 64 bytes, so the host code indexes it by a shift. */
struct jit_ind {
	uint64_t rip;
	int64_t key;
	struct jit_target to;
	uint64_t pad[3];
};
_Static_assert(sizeof(struct jit_ind) == 64, "the host code indexes the table by a shift of 6");

struct jit {
	uint8_t *rw, *rx; /* two views of one memfd: written through rw, run through rx */
	size_t used;
	struct jit_entry entry[JIT_MAX_BLOCKS];
	int nentries;
	struct jit_link link[JIT_MAX_LINKS];
	int nlinks;
	struct jit_ind ind[1u << JIT_IND_BITS];
	unsigned after; /* runs of a block before it is translated */
	uint64_t stat_blocks, stat_insns, stat_bytes, stat_ns, stat_flushes, stat_links;
};

/* The code an emitter writes, in a bounded buffer (emit.c). */
struct emit {
	uint8_t *p, *end;
	bool full;
};

/* cache.c */
int jit_create(struct soft_cpu *c, unsigned after);
void jit_destroy(struct soft_cpu *c);
void jit_flush(struct soft_cpu *c);

/* translate.c: called by run_block when a block has run `after` times. */
void jit_block(struct soft_cpu *c, struct block *b);
/* translate.c: the translation that ran last left by exit c->jit_exit and
 * execution went on at b: make that exit jump to b's translation. */
void jit_link(struct soft_cpu *c, struct block *b);

static inline unsigned jit_ind_hash(uint64_t rip)
{
	return (unsigned)((rip ^ rip >> 10) & ((1u << JIT_IND_BITS) - 1));
}

/* emit.c: the few host instructions translations use. Registers are host
 * numbers (0 rax .. 15 r15); memory operands are [rdi + disp] (the soft_cpu)
 * or [reg]. */
enum {
	H_RAX,
	H_RCX,
	H_RDX,
	H_RBX,
	H_RSP,
	H_RBP,
	H_RSI,
	H_RDI,
	H_R8,
	H_R9,
	H_R10,
	H_R11,
	H_R12,
	H_R13,
	H_R14,
	H_R15
};
void emit_bytes(struct emit *e, const void *b, size_t n);
void emit_u8(struct emit *e, uint8_t v);
void emit_u32(struct emit *e, uint32_t v);
void emit_load(struct emit *e, int size, int reg, int32_t disp);  /* reg = [rdi+disp] */
void emit_store(struct emit *e, int size, int reg, int32_t disp); /* [rdi+disp] = reg */
void emit_store_imm(struct emit *e, int size, int32_t disp, int32_t imm);
void emit_mov_imm(struct emit *e, int reg, uint64_t imm);
void emit_alu_rr(struct emit *e, uint8_t op, int dst, int src);		 /* 64-bit dst op= src */
void emit_op_rr(struct emit *e, int size, uint8_t op, int dst, int src); /* 2, 4 or 8 bytes */
/* 64-bit reg op [base+disp] with op in its r, r/m form (8B mov, 03 add, 3B cmp) */
void emit_alu_mem(struct emit *e, uint8_t op, int reg, int base, int32_t disp);
/* the same on [base + index + disp32] (index not rsp) */
void emit_alu_sib(struct emit *e, uint8_t op, int reg, int base, int index, int32_t disp);
void emit_shift_imm(struct emit *e, int size, int ext, int reg, uint8_t n);
void emit_imul_rr(struct emit *e, int size, int dst, int src); /* signed, low half */
void emit_setcc(struct emit *e, uint8_t cc, int reg);	       /* reg = cc ? 1 : 0 */
void emit_and_imm(struct emit *e, int reg, int32_t imm);
void emit_alu_imm(struct emit *e, int size, int ext, int reg, int32_t imm); /* group 1, /ext */
void emit_ind(struct emit *e, int size, bool store, int reg, int ptr); /* reg <-> [ptr], size 2-8 */
/* op /ext of size 2, 4 or 8 on a register: F7 /2 NOT, /3 NEG, FF /0 INC,
 * /1 DEC, D3 /n shifts by CL */
void emit_ext_rr(struct emit *e, int size, uint8_t op, int ext, int reg);
void emit_bswap(struct emit *e, int size, int reg);
void emit_bt_mem(struct emit *e, int32_t disp, uint8_t bit); /* CF = that bit of [rdi+disp] */
/* reg = the zero-extended byte or word in src, or at [src] when mem (src
 * rax, rcx or rdx: as a byte register, 4-7 would be AH-BH or need REX) */
void emit_movzx(struct emit *e, int size, int reg, int src, bool mem);
void emit_movsx(struct emit *e, int size, int dsize, int reg, int src, bool mem); /* to dsize */
void emit_zext32(struct emit *e, int reg);
uint8_t *emit_jcc(struct emit *e, uint8_t cc); /* rel32 to patch */
void emit_patch(uint8_t *rel, const uint8_t *target);
void emit_lea_disp(struct emit *e, int reg, int base, int32_t disp);
void emit_jmp_mem(struct emit *e, int base, int32_t disp);
void emit_call_abs(struct emit *e, const void *fn);
/* group 1 (81 /ext, 80 /ext for bytes) on [base+disp] with imm, size 1, 4 or 8 */
void emit_grp1_mem(struct emit *e, int size, int ext, int base, int32_t disp, int32_t imm);
void emit_test_mem(struct emit *e, int base, int32_t disp, int32_t imm); /* 32-bit */
void emit_cmov(struct emit *e, uint8_t cc, int dst, int src);		 /* 64-bit */

#endif
