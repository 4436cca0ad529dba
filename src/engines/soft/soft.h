/* The soft engine's private interface: one virtual CPU interpreted in software.
 *
 * The interpreter is a classic trap-and-emulate VMM without hardware help:
 * innocuous instructions run straight through the interpreter against the
 * virtual register file, sensitive and privileged ones take a "trap" into a
 * handler that emulates them against the virtual machine state, and a software
 * TLB caches guest-virtual -> host-pointer translations the way a shadow page
 * table would (see docs/soft-engine.md). */
#ifndef POPEK_SOFT_H
#define POPEK_SOFT_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engines/engine.h"
#include "util/counter.h"

#define SOFT_MAX_SLOTS 8
#define SOFT_MAX_CPUS  64
#define TLB_BITS       10
#define TLB_SIZE       (1u << TLB_BITS)
#define IO_BUF_SIZE    4096
/* MAXPHYADDR: CPUID 0x80000008 reports it, the page walk (mmu.c) treats
 * address bits above it as reserved. */
#define PHYS_ADDR_BITS 40

struct soft_intc;
struct soft_cpu;
struct insn;
struct jit;

struct soft_slot {
	uint64_t gpa, size;
	uint8_t *hva;
	unsigned flags;
	/* One word per 4 KiB page: bit i set = vCPU i holds decoded blocks of
	 * this page, so writes there must invalidate them (mmu.c). While a
	 * migration logs writes, DIRTY_ARMED (vCPU 63's bit) is also set in the
	 * word of every page not written since the last collect: the first write
	 * takes the same slow path and lands in dirty, and later ones run at
	 * full speed. */
	uint64_t *code;
	uint64_t *dirty; /* a bit per page; NULL unless logging */
};

#define DIRTY_ARMED (1ull << 63)

struct engine_vm {
	struct engine_vm_config cfg;
	struct soft_slot slot[SOFT_MAX_SLOTS];
	int nslots;
	struct soft_intc *intc;
	struct soft_cpu *cpu[SOFT_MAX_CPUS];
	pthread_mutex_t lock;
};

/* Instruction classes in the Popek-Goldberg sense. */
enum insn_class { CLS_INNOCUOUS, CLS_SENSITIVE, CLS_PRIVILEGED, NR_CLASSES };

/* Instructions that trap to an emulation handler, counted one by one. */
enum trap_kind {
	TRAP_HLT,
	TRAP_IN,
	TRAP_OUT,
	TRAP_INS,
	TRAP_OUTS,
	TRAP_MOV_CR,
	TRAP_MOV_DR,
	TRAP_RDMSR,
	TRAP_WRMSR,
	TRAP_CPUID,
	TRAP_RDTSC,
	TRAP_LGDT,
	TRAP_LIDT,
	TRAP_LLDT,
	TRAP_LTR,
	TRAP_SGDT,
	TRAP_STR,
	TRAP_INVLPG,
	TRAP_CLI,
	TRAP_STI,
	TRAP_POPF,
	TRAP_PUSHF,
	TRAP_IRET,
	TRAP_INT,
	TRAP_SYSCALL,
	TRAP_SYSRET,
	TRAP_SWAPGS,
	TRAP_MOV_SEG,
	TRAP_FAR,
	TRAP_CLTS,
	TRAP_WBINVD,
	TRAP_XSETBV,
	TRAP_LMSW,
	TRAP_SMSW,
	TRAP_RDPMC,
	TRAP_MMIO,
	TRAP_EXCEPTION,
	TRAP_INTERRUPT,
	NR_TRAPS
};
extern const char *const trap_names[NR_TRAPS];

/* Lazy flags: the last flag-setting operation, evaluated only when read. */
enum lazy_op {
	LF_NONE, /* flags are in cpu->fl */
	LF_ADD,
	LF_ADC,
	LF_SUB,
	LF_SBB,
	LF_LOGIC,
	LF_INC,
	LF_DEC,
	LF_SHL, /* lf_a = operand, lf_b = count (1..63) */
	LF_SHR,
	LF_SAR,
	LF_MUL /* lf_a = 1 when the product overflowed */
};

#define FL_CF	 0x0001u
#define FL_PF	 0x0004u
#define FL_AF	 0x0010u
#define FL_ZF	 0x0040u
#define FL_SF	 0x0080u
#define FL_TF	 0x0100u
#define FL_IF	 0x0200u
#define FL_DF	 0x0400u
#define FL_OF	 0x0800u
#define FL_IOPL	 0x3000u
#define FL_NT	 0x4000u
#define FL_RF	 0x10000u
#define FL_VM	 0x20000u
#define FL_AC	 0x40000u
#define FL_ID	 0x200000u
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

enum {
	EXC_DE = 0,
	EXC_DB = 1,
	EXC_NMI = 2,
	EXC_BP = 3,
	EXC_OF = 4,
	EXC_BR = 5,
	EXC_UD = 6,
	EXC_NM = 7,
	EXC_DF = 8,
	EXC_TS = 10,
	EXC_NP = 11,
	EXC_SS = 12,
	EXC_GP = 13,
	EXC_PF = 14,
	EXC_MF = 16,
	EXC_AC = 17,
	EXC_MC = 18,
	EXC_XM = 19
};

/* Why the interpreter long-jumps out of an instruction. */
enum { JMP_EXCEPTION = 1, JMP_EXIT = 2 };

enum access { ACC_READ, ACC_WRITE, ACC_EXEC };

struct tlb_entry {
	uint64_t tag[3];  /* page-aligned linear address per access kind; ~0 = invalid */
	uintptr_t addend; /* host = addend + linear */
	uint64_t pmask;	  /* ~(size - 1) of the guest page this piece belongs to */
	uint64_t *code;	  /* the page's code word (soft_slot.code) */
	bool global;
	/* to 64 bytes, so translated code finds an entry by a shift, not a multiply */
	uint8_t pad[64 - 6 * 8 - 1];
};
_Static_assert(sizeof(struct tlb_entry) == 64, "the translator's probe indexes by shift");

typedef union {
	uint8_t b[16];
	uint16_t w[8];
	uint32_t d[4];
	uint64_t q[2];
	int8_t sb[16];
	int16_t sw[8];
	int32_t sd[4];
	int64_t sq[2];
	float f[4];
	double df[2];
	long long v __attribute__((vector_size(16)));
} xmm_t;

/* One decoded instruction (64 bytes, so a block stays compact). */
struct insn {
	uint64_t start; /* RIP (segment offset) of the first byte */
	int64_t imm;
	uint64_t ea; /* offset in the segment, computed at execution */
	void (*fn)(struct soft_cpu *c, struct insn *d); /* executes it (exec_fast.c) */
	int32_t disp, imm2;
	uint16_t op; /* map << 8 | opcode byte; map 1 = 0F, 2 = 0F38, 3 = 0F3A */
	uint8_t len;
	uint8_t opsize; /* 2, 4 or 8 */
	uint8_t addrsize;
	uint8_t rex;
	uint8_t rep;	      /* 0, 0xf2 or 0xf3 */
	uint8_t mod, reg, rm; /* reg and rm include REX bits */
	uint8_t scale;
	uint8_t ea_seg;
	uint8_t cls;	    /* enum insn_class */
	int8_t seg;	    /* segment override or -1 */
	int8_t base, index; /* -1 = none; base 16 = RIP-relative */
	bool lock, opsize_prefix, has_modrm, is_mem;
	bool invalid; /* #UD in this mode (decode.c's A_NO64) */
};

/* What the CPU knows of one opcode (opcodes.c), per map (1-byte, 0F, 0F38,
 * 0F3A) and opcode byte: the single table the decoder, the classifier and the
 * block builder read. Masks over ModRM.reg (bit n = /n) give the forms of a
 * group that a fact holds for. */
enum {
	OP_M = 1,      /* ModRM (+ SIB and displacement) */
	OP_I8 = 2,     /* an 8-bit immediate (after OP_I16: ENTER's second) */
	OP_IZ = 4,     /* a 16- or 32-bit immediate by operand size */
	OP_I16 = 8,    /* a 16-bit immediate */
	OP_IV = 16,    /* an immediate of the operand size (MOV r, imm64) */
	OP_MOFFS = 32, /* an absolute offset of the address size (MOV AL, moffs) */
	OP_FAR = 64,   /* a far pointer, offset then selector (outside 64-bit mode) */
	OP_RAX = 128,  /* rAX as the implicit r/m operand (ALU rAX, imm) */
};
/* Families of fast handlers (exec_fast.c's choose_fast picks the member by
 * operand size, register or memory operand and prefixes). */
enum fast_form {
	FAST_NONE,
	FAST_ALU_RM_R, /* ADD/OR/ADC/SBB/AND/SUB/XOR/CMP r/m, r (ADC, SBB: translated only) */
	FAST_ALU_R_RM, /* ... r, r/m */
	FAST_ALU_AX_I, /* ... rAX, imm */
	FAST_ALU_IMM,  /* group 1: ... r/m, imm */
	FAST_TEST,     /* TEST r/m, r */
	FAST_TEST_AX_I,
	FAST_GROUP3, /* TEST r/m, imm (/0) */
	FAST_MOV_STORE,
	FAST_MOV_LOAD,
	FAST_MOV_STORE8,
	FAST_MOV_RM_IMM, /* C7 /0 */
	FAST_MOV_R_IMM,
	FAST_LEA,
	FAST_MOVSXD,
	FAST_IMUL_I,
	FAST_JCC,
	FAST_JMP,
	FAST_CALL,
	FAST_RET,
	FAST_PUSH,
	FAST_POP,
	FAST_GROUP5, /* INC, DEC (/0 /1); CALL, JMP through a register (/2 /4) */
	FAST_SHIFT_I,
	FAST_SHIFT_1,
	FAST_SHIFT_CL,
	FAST_NOP,
	FAST_CMOV,
	FAST_SETCC,
	FAST_MOVZX8,
	FAST_MOVZX16,
	FAST_IMUL_RM,
	/* byte forms only the translator has rules for (the interpreter runs
	 * them in exec_in_block) */
	FAST_TEST8,	 /* TEST r/m8, r8 */
	FAST_MOV_LOAD8,	 /* MOV r8, r/m8 */
	FAST_MOV8_IMM,	 /* MOV r/m8, imm8 (C6 /0) */
	FAST_ALU8,	 /* ADD/OR/AND/SUB/XOR/CMP r/m8, r8 (x0) and r8, r/m8 (x2) */
	FAST_ALU8_AL,	 /* ... AL, imm8 */
	FAST_ALU8_IMM,	 /* group 1: ... r/m8, imm8 (80) */
	FAST_TEST8_IMM,	 /* TEST r/m8, imm8 (F6 /0) */
	FAST_TEST8_AL,	 /* TEST AL, imm8 */
	FAST_SHIFT8,	 /* shifts of r/m8 by 1 (D0) or imm8 (C0) */
	FAST_MOV8_R_IMM, /* MOV r8, imm8 (B0+r) */
	FAST_MOVSX,	 /* MOVSX r, r/m8 (0F BE) and r/m16 (0F BF) */
	FAST_BSWAP,	 /* 0F C8+r: also translated only */
};
struct opcode {
	uint8_t fast;	 /* enum fast_form */
	uint8_t shape;	 /* OP_*: the bytes that follow the opcode */
	uint8_t no_imm;	 /* forms without the immediate (group 3: only TEST has one) */
	uint8_t cls : 2; /* enum insn_class */
	uint8_t alt_cls : 2;
	bool no64 : 1;	  /* #UD in 64-bit mode */
	uint8_t branch;	  /* forms that are branches with a fast handler: they end a block */
	uint8_t alt;	  /* forms of class alt_cls instead */
	uint8_t in_block; /* forms the general dispatcher may run inside a block:
			   * innocuous straight-line code (exec_fast.c) */
};
extern const struct opcode opcodes[4][256];

static inline const struct opcode *opcode_of(unsigned op)
{
	return &opcodes[op >> 8 & 3][op & 0xff];
}

static inline bool op_form(uint8_t mask, unsigned reg)
{
	return mask >> (reg & 7) & 1;
}

/* A block of decoded straight-line instructions (decode.c), valid while the
 * guest bytes it came from are unchanged. Its tag (below) says where it came
 * from and when those bytes were last seen unchanged. */
#define BLOCK_INSNS 16
/* Each vCPU caches 1 << bits blocks, two-way set associative: 17 for a VM
 * (131 072 blocks, 176 MiB of address space, touched as used: Linux sending
 * over TCP, its kernel with dd and nc, runs some 40 000 distinct blocks, and
 * 32 768 decoded 1.2 M blocks a second time per 400 M instructions, where
 * this decodes 33 000, and evicted their translations), 13 for popek exec's
 * one program, whose start-up would pay for the larger tag array. */
#define BLOCK_CACHE_BITS_VM   17
#define BLOCK_CACHE_BITS_EXEC 13

struct block {
	int n;
	uint16_t nbytes;
	uint16_t split; /* 0, or the bytes in the first page when its one instruction crosses */
	bool generic;	/* one instruction for the general dispatcher (exec_insn) */
	uint16_t runs;	/* run_block calls since decoded, up to the translator's threshold */
	uint32_t tag;	/* index of the tag (set * 2 + way) that holds it */
	uint64_t end;	/* RIP after the last instruction */
	/* A translation of all of it (jit/jit.h), so other translations may
	 * jump straight in; NULL when none. Evicting it bumps chain_epoch,
	 * which unlinks every jump to it. */
	void *jit_code;
	/* The fields above and the first instruction's handler share the
	 * block's first cache line: running a block touches that line, then
	 * one per instruction it interprets; the bytes, only compared after an
	 * epoch change, come last. */
	struct insn insn[BLOCK_INSNS + 1]; /* + block_end */
	uint8_t code[BLOCK_INSNS * 15];
} __attribute__((aligned(64)));

/* The lookup half of a block, kept apart so that the tags of a set share a
 * cache line and a lookup touches no block it does not run. */
struct block_tag {
	uint64_t lin; /* linear address of the first byte, ~0 = not cached */
	uint64_t rip;
	uint64_t epoch; /* validation epoch in which the bytes last matched */
	/* Where its block is stored, BLOCK_NONE before the way's first fill.
	 * Ways take storage in the order they are first filled, so a short
	 * run touches only the front of the array (each of its huge pages
	 * costs the host a 2 MiB clear), not every set's. */
	uint32_t slot;
	uint8_t key; /* code_key() */
	bool global; /* validated on global pages only: epoch is gcode_epoch's */
};
#define BLOCK_NONE UINT32_MAX

/* One access to guest-physical space that is not RAM. An instruction makes up
 * to MMIO_LOG of them (FXSAVE/FXRSTOR: 64 of 8 bytes). */
#define MMIO_LOG 80
struct mmio_access {
	uint64_t gpa, data;
	uint8_t size;
	bool write;
};

struct soft_cpu {
	uint64_t r[NR_GPRS];
	uint64_t rip;
	uint64_t fl; /* RFLAGS; arithmetic bits stale while lf_op != LF_NONE */
	uint32_t lf_op;
	uint8_t lf_size;
	uint64_t lf_res, lf_a, lf_b;

	struct seg seg[NR_SEGS];
	struct dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, xcr0, efer;
	uint64_t dr[4], dr6, dr7;
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base, sysenter_cs, sysenter_esp,
	    sysenter_eip, tsc_aux, pat, misc_enable;
	int cpl;
	int mode; /* code size: 2, 4 or 8 */

	xmm_t xmm[16];
	uint32_t mxcsr;
	long double st[8];
	uint16_t fcw, fsw, ftw_empty; /* ftw_empty: bit i set = physical register i empty */
	int ftop;

	/* Software TLB: [0] supervisor, [1] user (CPL 3). */
	struct tlb_entry tlb[2][TLB_SIZE];
	/* Linear range [lo, last] that holds every cached piece of a large
	 * page (empty when lo > last): an INVLPG outside it needs to look at one
	 * entry per TLB, not scan them for a large page containing the address. */
	uint64_t tlb_large_lo, tlb_large_last;

	/* Exits in flight: completion data arrives with the next vcpu_run. */
	struct vcpu_exit *exit;
	bool exit_pending;
	bool io_in_ready, regs_lent;
	/* The device accesses of the instruction in flight, in order (mmu.c):
	 * [0, mmio_out) done by the machine, [mmio_out, mmio_n) still to do;
	 * a replay consumes them from mmio_pos. */
	struct mmio_access mmio_log[MMIO_LOG];
	uint8_t mmio_n, mmio_out, mmio_pos;
	bool mmio_replay;	  /* run the instruction again once the log is done */
	struct insn replay;	  /* the instruction replayed (soft.c) */
	uint8_t replay_bytes[15]; /* its bytes */
	uint32_t io_in_count;
	uint16_t io_in_port; /* the IN/INS that exited, so only it takes the data */
	uint8_t io_in_size;
	uint8_t io_buf[IO_BUF_SIZE];

	/* Exception in flight, for #DF / triple-fault detection. */
	int exc_vec, exc_err, delivering;
	bool exc_has_err;
	struct insn *cur;
	jmp_buf jb;

	bool interrupt_shadow, halted, nmi_masked, nmi_pending;
	const atomic_uint *attn;      /* the interrupt controllers' attention word */
	int await;		      /* kind of exit whose data the next run brings */
	uint64_t insn_rip, insn_rsp;  /* restored when an instruction faults */
	struct insn *last;	      /* the instruction that faults, exits or stops its block */
	int pending_exc, pending_irq; /* from a restored snapshot, -1 = none */
	uint32_t pending_exc_err;
	bool pending_exc_has_err;
	enum mp_state mp_state;
	atomic_bool kick;
	int index;
	struct engine_vm *vm;

	struct block *blocks;
	struct jit *jit;	/* the translator (jit/jit.h), NULL when off */
	struct block_tag *tags; /* tags[set * 2 + way]; each names its block's slot */
	uint32_t blocks_used;	/* slots handed out so far */
	/* Advances whenever guest memory or the translation may have changed
	 * under this vCPU's cached blocks: any vCPU's or device's write to a
	 * page it has cached code from, a TLB flush, accessed/dirty bits set by
	 * a page walk, and every 256 batches. (A CPL change selects other
	 * blocks: code_key.) */
	uint64_t code_epoch;
	/* The same for blocks on global pages (the kernel's): it advances with
	 * code_epoch except at flushes that keep global translations (CR3
	 * writes), so a context switch leaves their validation standing. */
	uint64_t gcode_epoch;
	/* Advance with code_epoch and gcode_epoch and when a translated block
	 * is evicted: what a chained jump into a translation compares
	 * (jit/translate.c), so an eviction unlinks every jump without every
	 * cached block having to be compared with guest memory again. Steps of
	 * two, chain_epoch even and gchain_epoch odd, so that a link's epoch
	 * matches only the counter it was taken from. */
	uint64_t chain_epoch;
	uint64_t gchain_epoch;
	uint64_t code_bit; /* this vCPU's bit in the code words */
	uint32_t batches;  /* run_batch calls, for the periodic revalidation */
	bool stop;	   /* end the block after this instruction (exit, code written) */
	struct block *cur_block;
	/* Chaining between translations (jit/translate.c): instructions of the
	 * blocks a chain has left, not yet counted, and the most it may run
	 * before it returns to run_block; how the last translation left (its
	 * link + 1, JIT_EXIT_IND, 0: by no exit that could be linked). */
	int64_t jit_chained, jit_limit;
	int32_t jit_exit;
	unsigned block_bits;				    /* BLOCK_CACHE_BITS_* */
	uint8_t block_mru[(1u << BLOCK_CACHE_BITS_VM) / 2]; /* most recently used way per set */
	uint64_t stat_insns;
	uint64_t stat_class[NR_CLASSES];
	uint64_t stat_trap[NR_TRAPS];
	uint64_t stat_tlb_hit, stat_tlb_miss, stat_tlb_flush, stat_fetch_slow, stat_revalidated;
	/* Opcodes that raised #UD (map << 8 | byte), so an instruction the
	 * interpreter lacks shows up in --stats rather than only as a guest oops. */
	struct {
		uint16_t op;
		uint64_t count;
	} stat_ud[16];
	/* The last instruction that raised #UD, for the crash report. */
	bool ud_seen;
	uint64_t ud_rip;
	uint16_t ud_op;
	uint8_t ud_cls, ud_len, ud_bytes[15];
};

/* decode.c */
void decode(struct soft_cpu *c, struct insn *d, uint64_t rip, uint8_t *bytes);
struct block *fetch_block(struct soft_cpu *c);
void block_cache_init(struct soft_cpu *c);

/* The validation epoch is advanced by its vCPU and, when they write code it
 * has cached, by the others (code_written) and by devices (soft_ram_written),
 * hence atomic; the reads are plain loads on x86. */
static inline uint64_t epoch_now(const struct soft_cpu *c)
{
	return __atomic_load_n(&c->code_epoch, __ATOMIC_RELAXED);
}

static inline uint64_t gepoch_now(const struct soft_cpu *c)
{
	return __atomic_load_n(&c->gcode_epoch, __ATOMIC_RELAXED);
}

/* The epoch a block's tag is valid in. */
static inline uint64_t tag_epoch(const struct soft_cpu *c, const struct block_tag *t)
{
	return t->global ? gepoch_now(c) : epoch_now(c);
}

static inline void chain_bump(struct soft_cpu *c)
{
	__atomic_fetch_add(&c->chain_epoch, 2, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->gchain_epoch, 2, __ATOMIC_RELAXED);
}

static inline void epoch_bump(struct soft_cpu *c)
{
	__atomic_fetch_add(&c->code_epoch, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->gcode_epoch, 1, __ATOMIC_RELAXED);
	chain_bump(c);
}

/* A flush that keeps global translations: only blocks on other pages, and
 * jumps into them, revalidate. */
static inline void epoch_bump_local(struct soft_cpu *c)
{
	__atomic_fetch_add(&c->code_epoch, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->chain_epoch, 2, __ATOMIC_RELAXED);
}

/* Linear address of RIP and its set in the block cache. */
static inline uint64_t code_lin(const struct soft_cpu *c)
{
	return c->mode == 8 ? c->rip : (c->seg[SEG_CS].base + c->rip) & 0xffffffff;
}

/* What else a block's decoding and validation depend on: the code size, and
 * whether it was fetched through the user TLB (CPL 3), so that a CPL change
 * needs no revalidation. */
static inline uint8_t code_key(const struct soft_cpu *c)
{
	return (uint8_t)(c->mode | (c->cpl == 3) << 4);
}

static inline unsigned block_count(const struct soft_cpu *c)
{
	return 1u << c->block_bits;
}

static inline unsigned block_set(const struct soft_cpu *c, uint64_t lin)
{
	return (unsigned)((lin ^ (lin >> c->block_bits)) & (block_count(c) / 2 - 1));
}

/* The block at RIP when it was validated in the current epoch (the hot case,
 * inline); otherwise fetch_block revalidates or decodes it. */
static inline struct block *next_block(struct soft_cpu *c)
{
	uint64_t lin = code_lin(c);
	unsigned set = block_set(c, lin);
	const struct block_tag *t = &c->tags[set * 2];
	for (int w = 0; w < 2; w++)
		if (t[w].epoch == tag_epoch(c, &t[w]) && t[w].lin == lin && t[w].rip == c->rip &&
		    t[w].key == code_key(c)) {
			c->block_mru[set] = (uint8_t)w;
			return &c->blocks[t[w].slot];
		}
	return fetch_block(c);
}

/* flags.c */
uint64_t get_flags(struct soft_cpu *c);
void set_flags(struct soft_cpu *c, uint64_t fl, uint64_t mask);
bool cond_slow(struct soft_cpu *c, unsigned cc);
static inline void lazy(struct soft_cpu *c, uint32_t op, int size, uint64_t res, uint64_t a,
			uint64_t b)
{
	c->lf_op = op;
	c->lf_size = (uint8_t)size;
	c->lf_res = res;
	if (op == LF_LOGIC) /* flags from the result alone */
		return;
	c->lf_a = a;
	c->lf_b = b;
}
bool parity(uint8_t v);

/* mmu.c */
void tlb_flush(struct soft_cpu *c, bool keep_global);
void tlb_flush_page(struct soft_cpu *c, uint64_t lin);
uint8_t *tlb_fill(struct soft_cpu *c, uint64_t lin, int acc, int user);
uint64_t lin_read(struct soft_cpu *c, uint64_t lin, int size, int acc, int user);
void lin_write(struct soft_cpu *c, uint64_t lin, int size, uint64_t val, int user);
uint8_t *phys_ptr(struct engine_vm *vm, uint64_t gpa, uint64_t len, bool write);
/* Record a write to the page at host address hva for a migration's dirty log. */
void phys_written(struct engine_vm *vm, const void *hva);
bool pae_pdpt_valid(struct soft_cpu *c, uint64_t cr3);
bool mmio_next_exit(struct soft_cpu *c);
void mmio_done(struct soft_cpu *c, const struct vcpu_exit *exit);
void mmio_reset(struct soft_cpu *c);

/* A 48-bit linear address sign-extended to 64 bits. */
static inline bool canonical(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

static inline uint64_t mask_of(int size)
{
	return size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

/* Condition code cc (the low nibble of Jcc/SETcc/CMOVcc) when it follows
 * from the lazy operation without computing every flag: after SUB/CMP all
 * but O, S and P come from the operands; after any operation Z and S come
 * from the result; after a logic operation (CF = OF = 0) all but P do.
 * Returns 0 or 1, or -1 for cond_slow's cases. */
static inline __attribute__((always_inline)) int cond_lazy(const struct soft_cpu *c, unsigned cc)
{
	unsigned k = cc >> 1;
	bool r;
	if (c->lf_op == LF_SUB && k != 0 && k != 5 && k != 4) {
		uint64_t m = mask_of(c->lf_size), a = c->lf_a & m, b = c->lf_b & m;
		int sh = 64 - c->lf_size * 8;
		int64_t sa = (int64_t)(a << sh) >> sh, sb = (int64_t)(b << sh) >> sh;
		switch (k) {
		case 1:
			r = a < b;
			break;
		case 2:
			r = a == b;
			break;
		case 3:
			r = a <= b;
			break;
		case 6:
			r = sa < sb;
			break;
		default:
			r = sa <= sb;
			break;
		}
		return r ^ (cc & 1);
	}
	if (c->lf_op == LF_NONE || k == 0 || k == 5 || (c->lf_op != LF_LOGIC && k != 2 && k != 4))
		return -1;
	uint64_t res = c->lf_res & mask_of(c->lf_size);
	bool z = res == 0, sf = (res >> (c->lf_size * 8 - 1)) & 1;
	switch (k) {
	case 1: /* B: CF */
		r = false;
		break;
	case 2: /* E: ZF */
	case 3: /* BE: CF | ZF */
		r = z;
		break;
	case 4: /* S: SF */
	case 6: /* L: SF != OF */
		r = sf;
		break;
	default: /* LE: ZF | SF != OF */
		r = z || sf;
		break;
	}
	return r ^ (cc & 1);
}

static inline bool cond(struct soft_cpu *c, unsigned cc)
{
	int r = cond_lazy(c, cc);
	return r >= 0 ? r : cond_slow(c, cc);
}

/* Guest memory is shared with the other vCPUs and the device threads. x86
 * makes aligned accesses single-copy atomic and orders them as TSO, which is
 * what acquire loads and release stores give (plain MOVs on an x86 host).
 * Size 1 always is aligned. */
#define GUEST_ALIGNED(p, size) (((uintptr_t)(p) & (uintptr_t)((size)-1)) == 0)

/* An unaligned access is one host MOV (memcpy), atomic within a cache line
 * as x86 promises no more. Another thread touches the same bytes meanwhile
 * only when the guest races with itself (cross-modifying code, say), so that
 * race is the guest's, and TSan is told not to watch these few accesses. */
__attribute__((no_sanitize_thread)) static inline uint64_t load_unaligned(const uint8_t *p,
									  int size)
{
	uint16_t v2;
	uint32_t v4;
	uint64_t v8;
	switch (size) {
	case 2:
		__builtin_memcpy(&v2, p, 2);
		return v2;
	case 4:
		__builtin_memcpy(&v4, p, 4);
		return v4;
	default:
		__builtin_memcpy(&v8, p, 8);
		return v8;
	}
}

__attribute__((no_sanitize_thread)) static inline void store_unaligned(uint8_t *p, int size,
								       uint64_t v)
{
	uint16_t v2 = (uint16_t)v;
	uint32_t v4 = (uint32_t)v;
	switch (size) {
	case 2:
		__builtin_memcpy(p, &v2, 2);
		break;
	case 4:
		__builtin_memcpy(p, &v4, 4);
		break;
	default:
		__builtin_memcpy(p, &v, 8);
		break;
	}
}

static inline uint64_t load_n(const uint8_t *p, int size)
{
	if (!GUEST_ALIGNED(p, size))
		return load_unaligned(p, size);
	switch (size) {
	case 1:
		return __atomic_load_n(p, __ATOMIC_ACQUIRE);
	case 2:
		return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
	case 4:
		return __atomic_load_n((const uint32_t *)(const void *)p, __ATOMIC_ACQUIRE);
	default:
		return __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_ACQUIRE);
	}
}

static inline void store_n(uint8_t *p, int size, uint64_t v)
{
	if (!GUEST_ALIGNED(p, size)) {
		store_unaligned(p, size, v);
		return;
	}
	switch (size) {
	case 1:
		__atomic_store_n(p, (uint8_t)v, __ATOMIC_RELEASE);
		break;
	case 2:
		__atomic_store_n((uint16_t *)(void *)p, (uint16_t)v, __ATOMIC_RELEASE);
		break;
	case 4:
		__atomic_store_n((uint32_t *)(void *)p, (uint32_t)v, __ATOMIC_RELEASE);
		break;
	default:
		__atomic_store_n((uint64_t *)(void *)p, v, __ATOMIC_RELEASE);
		break;
	}
}

/* Atomic compare-and-exchange on guest memory for LOCKed instructions: the
 * value the one atomic access found (old's low size bytes when it stored). A
 * CMPXCHG must take its result from here: reading the memory again after a
 * failed compare can find the expected value another vCPU wrote meanwhile and
 * report a store that never happened. */
static inline uint64_t cmpxchg_n(uint8_t *p, int size, uint64_t old, uint64_t new_)
{
	switch (size) {
	case 1: {
		uint8_t o = (uint8_t)old;
		__atomic_compare_exchange_n(p, &o, (uint8_t)new_, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
		return o;
	}
	case 2: {
		uint16_t o = (uint16_t)old;
		__atomic_compare_exchange_n((uint16_t *)(void *)p, &o, (uint16_t)new_, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		return o;
	}
	case 4: {
		uint32_t o = (uint32_t)old;
		__atomic_compare_exchange_n((uint32_t *)(void *)p, &o, (uint32_t)new_, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		return o;
	}
	default:
		__atomic_compare_exchange_n((uint64_t *)(void *)p, &old, new_, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		return old;
	}
}

/* Did the compare-and-swap store? */
static inline bool cas_n(uint8_t *p, int size, uint64_t old, uint64_t new_)
{
	return cmpxchg_n(p, size, old, new_) == (old & mask_of(size));
}

void code_written(struct soft_cpu *c, uint64_t *code);
void soft_ram_written(struct engine_vm *vm, const void *hva, uint64_t len);

static inline struct tlb_entry *tlb_entry_of(struct soft_cpu *c, uint64_t lin)
{
	return &c->tlb[c->cpl == 3][(lin >> 12) & (TLB_SIZE - 1)];
}

/* A write through entry e: if any vCPU has decoded code from the page, its
 * blocks are stale now (self- or cross-modifying code). */
static inline bool code_cached(const struct tlb_entry *e)
{
	return __builtin_expect(__atomic_load_n(e->code, __ATOMIC_RELAXED) != 0, 0);
}

static inline void code_check(struct soft_cpu *c, const struct tlb_entry *e)
{
	if (code_cached(e))
		code_written(c, e->code);
}

/* Host pointer for [lin, lin+size) if it stays in one cached page. */
static inline uint8_t *tlb_peek(struct soft_cpu *c, uint64_t lin, int size, int acc)
{
	struct tlb_entry *e = tlb_entry_of(c, lin);
	if (__builtin_expect(e->tag[acc] == (lin & ~0xfffull) && (lin & 0xfff) + size <= 0x1000,
			     1)) {
		if (acc == ACC_WRITE)
			code_check(c, e);
		return (uint8_t *)(e->addend + lin);
	}
	return NULL;
}

/* The same for data accesses, counted for --stats. */
static inline uint8_t *tlb_lookup(struct soft_cpu *c, uint64_t lin, int size, int acc)
{
	uint8_t *p = tlb_peek(c, lin, size, acc);
	counter_add(&c->stat_tlb_hit, p != NULL);
	return p;
}

uint64_t seg_lin_slow(struct soft_cpu *c, int seg, uint64_t off, int size, int acc);

/* Segment offset -> linear address, with the 64-bit-mode case inline. */
static inline uint64_t seg_lin(struct soft_cpu *c, int seg, uint64_t off, int size, int acc)
{
	if (__builtin_expect(c->mode == 8 && seg < SEG_FS, 1) &&
	    (uint64_t)((int64_t)(off << 16) >> 16) == off)
		return off;
	return seg_lin_slow(c, seg, off, size, acc);
}

static inline uint64_t mem_read(struct soft_cpu *c, int seg, uint64_t off, int size)
{
	uint64_t lin = seg_lin(c, seg, off, size, ACC_READ);
	uint8_t *p = tlb_lookup(c, lin, size, ACC_READ);
	if (p)
		return load_n(p, size);
	return lin_read(c, lin, size, ACC_READ, c->cpl == 3);
}

static inline void mem_write(struct soft_cpu *c, int seg, uint64_t off, int size, uint64_t v)
{
	uint64_t lin = seg_lin(c, seg, off, size, ACC_WRITE);
	uint8_t *p = tlb_lookup(c, lin, size, ACC_WRITE);
	if (p)
		store_n(p, size, v);
	else
		lin_write(c, lin, size, v, c->cpl == 3);
}

/* Host pointer for a read-modify-write of [seg:off, +size), or NULL when the
 * access must take the slow path (MMIO, page crossing). Faults are raised. */
uint8_t *mem_rmw_ptr(struct soft_cpu *c, int seg, uint64_t off, int size);

/* exceptions.c */
_Noreturn void raise_exc(struct soft_cpu *c, int vec, bool has_err, uint32_t err);
_Noreturn void raise_gp(struct soft_cpu *c, uint32_t err);
_Noreturn void raise_ud(struct soft_cpu *c);
void deliver_event(struct soft_cpu *c, int vec, bool has_err, uint32_t err, bool soft_int,
		   uint64_t next_rip);
void deliver_exception(struct soft_cpu *c, int vec, bool has_err, uint32_t err);
void handle_fault(struct soft_cpu *c);
void write_flags(struct soft_cpu *c, uint64_t v, int size, bool iret);
void do_iret(struct soft_cpu *c, int size);

/* sysregs.c */
void update_mode(struct soft_cpu *c);
void load_seg(struct soft_cpu *c, int seg, uint16_t sel);
void load_cs(struct soft_cpu *c, uint16_t sel, int new_cpl);
void read_descriptor(struct soft_cpu *c, uint16_t sel, uint64_t *lo, uint64_t *hi, int exc);
void unpack_descriptor(struct seg *s, uint16_t sel, uint64_t lo);
void write_cr(struct soft_cpu *c, int n, uint64_t v);
uint64_t read_cr(struct soft_cpu *c, int n);
bool msr_access(struct soft_cpu *c, uint32_t msr, uint64_t *val, bool write);
void do_cpuid(struct soft_cpu *c);
uint64_t read_tsc(struct soft_cpu *c);
void far_jump(struct soft_cpu *c, uint16_t sel, uint64_t off, bool call, int opsize, uint64_t ret);
void far_return(struct soft_cpu *c, int opsize, uint16_t pop_extra);
void do_syscall(struct soft_cpu *c);
void do_sysret(struct soft_cpu *c, int opsize);

/* exec.c and friends: execute one decoded instruction. */
void exec_insn(struct soft_cpu *c, struct insn *d);
void choose_handler(struct soft_cpu *c, struct insn *d);
void block_end(struct soft_cpu *c, struct insn *d);
void exec_in_block(struct soft_cpu *c, struct insn *d);
void optimize_block(struct insn *insn, int n);
uint64_t shift_op(struct soft_cpu *c, int op, int size, uint64_t a, unsigned cnt);
uint64_t imul2(struct soft_cpu *c, int size, uint64_t a, uint64_t b);
void exec_0f(struct soft_cpu *c, struct insn *d);
bool exec_sse(struct soft_cpu *c, struct insn *d);
void exec_x87(struct soft_cpu *c, struct insn *d);
void exec_string(struct soft_cpu *c, struct insn *d);
void exec_io(struct soft_cpu *c, struct insn *d);
void fxsave(struct soft_cpu *c, uint8_t *img);
void fxrstor(struct soft_cpu *c, const uint8_t *img);
void fpu_reset(struct soft_cpu *c);

/* xsave.c: the XSAVE feature set for x87 and SSE state. */
#define XCR0_SUPPORTED (XSTATE_X87 | XSTATE_SSE)
#define XSAVE_SIZE     576 /* legacy region and header: all that XCR0_SUPPORTED needs */
uint64_t xstate_in_use(const struct soft_cpu *c);
void xrstor_image(struct soft_cpu *c, const uint8_t *img, uint64_t rfbm, bool m64);
void exec_xsave(struct soft_cpu *c, struct insn *d);
void exec_xcr(struct soft_cpu *c, struct insn *d, bool write);
void xsave_cpuid(uint32_t sub, uint32_t r[4]);

/* Register and operand helpers shared by the exec files. */
uint64_t reg_get(struct soft_cpu *c, int r, int size, bool rex);
void reg_set(struct soft_cpu *c, int r, int size, bool rex, uint64_t v);
uint64_t rm_get(struct soft_cpu *c, struct insn *d, int size);
void rm_set(struct soft_cpu *c, struct insn *d, int size, uint64_t v);
void push(struct soft_cpu *c, int size, uint64_t v);
uint64_t pop(struct soft_cpu *c, int size);
int stack_size(struct soft_cpu *c);
uint64_t alu(struct soft_cpu *c, int op, int size, uint64_t a, uint64_t b);

static inline void trap(struct soft_cpu *c, int kind)
{
	counter_add(&c->stat_trap[kind], 1);
}

static inline void require_cpl0(struct soft_cpu *c)
{
	if (c->cpl)
		raise_gp(c, 0);
}

/* Interrupt-controller glue (soft.c) */
bool soft_pio(struct soft_cpu *c, uint16_t port, void *data, unsigned size, bool write);
bool soft_mmio(struct soft_cpu *c, uint64_t gpa, void *data, unsigned size, bool write);
int soft_intc_msr(struct soft_cpu *c, uint32_t msr, uint64_t *val, bool write);
uint64_t soft_tsc(struct soft_cpu *c);
uint64_t soft_cr8_read(struct soft_cpu *c);
void soft_cr8_write(struct soft_cpu *c, uint64_t v);
uint32_t soft_intc_cpuid1_ecx(struct soft_cpu *c);
uint32_t soft_intc_cpuid1_edx(struct soft_cpu *c);
uint32_t soft_intc_kvm_features(struct soft_cpu *c);

#endif
