/* Block translation: the leading instructions of a block that have a rule
 * become host code working on the soft_cpu in place (guest registers in
 * c->r, flags in the lazy-flag fields exactly as the fast handlers leave
 * them), then the code jumps to the interpreter's handler of the first
 * instruction without a rule. Memory operands probe the software TLB inline;
 * a miss, a page crossing or a store into a page with cached code jumps to
 * the interpreter's handler of that instruction instead, which redoes it in
 * full (walk, fault, MMIO, invalidation), so a translated instruction itself
 * never faults and exceptions stay precise without a map from host code.
 *
 * The rule for an instruction comes from the opcode table: its fast-handler
 * family (struct opcode's fast) indexes rules[] below. For most families
 * only instructions for which choose_fast() found a handler are translated,
 * so prefixes, modes and operand sizes it rejects stay with the interpreter;
 * the rules marked own check their forms and sizes themselves. */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "engines/soft/intc/intc.h"
#include "engines/soft/jit/jit.h"
#include "engines/soft/soft.h"

#define REG(n)	 ((int32_t)offsetof(struct soft_cpu, r[0]) + 8 * (n))
#define FIELD(f) ((int32_t)offsetof(struct soft_cpu, f))
/* A store probe has two ways out and DIV two; a loop's copy of its head adds
 * its own. */
#define MAX_MISSES (BLOCK_INSNS * 4)
#define NCACHE	   7

/* The guest register each of cache_host holds (-1: none), those of them
 * written since c->r was (dirty: stored back before anything leaves the
 * translation or calls out), and when each was last used (the least
 * recently used is replaced). */
struct cache {
	int8_t reg[NCACHE];
	uint8_t dirty;
	unsigned used[NCACHE];
	unsigned tick;
};

struct tr {
	struct emit e;
	struct soft_cpu *c;
	const struct block *b;
	bool ended; /* the closing branch left through its own exits */
	struct cache cache;
	int nlinks;  /* the direct exits emitted, after the jit's nlinks */
	int k;	     /* index of the instruction being translated */
	uint32_t lf; /* the lazy operation the translated code last set, LF_NONE = not known */
	int lf_size;
	/* The last instruction whose operation left the host flags as the
	 * guest's (an ALU operation at its own size), and where its code
	 * ended: a reader with nothing emitted since uses them. */
	int hf_k;
	uint8_t *hf_at;
	/* Where chained exits and run_block enter the body: loads of the
	 * registers cached at head (pre; none in a first pass), then head,
	 * where a branch back to the block's start that has the very registers
	 * cached goes on with them. The pass before records in loop the cache
	 * at that branch, and so the next pass's pre. */
	uint8_t *start, *head;
	struct cache pre, loop;
	bool looped;
	struct miss {
		uint8_t *rel;
		int k;
		bool pend; /* its way stores the pending CMP's flags first (the loop's copy of its
			      head) */
		struct cache cache; /* what its way to the interpreter stores back */
	} miss[MAX_MISSES];
	int nmiss;
	/* Per instruction, from a first pass: it sets the lazy flags, reads them,
	 * sets some and keeps the others (partial: a rotate, INC/DEC, which
	 * read the flags before only when their own are live), or may leave
	 * for the interpreter (which may fault and push RFLAGS); then for the
	 * second: its flags are dead (set again before anything could see
	 * them), so it need not store them. */
	bool writes[BLOCK_INSNS], reads[BLOCK_INSNS], partial[BLOCK_INSNS], dead[BLOCK_INSNS];
	/* whether flags are live at the block's start (the first pass says,
	 * else assumed): a loop's back-edge need not store them when not */
	bool live_in;
	/* A CMP or TEST of cached registers (or an immediate) just before the
	 * closing Jcc computes only the host's flags; its lazy flags are
	 * stored on the ways out instead (store_pending), from the registers,
	 * which stay cached to the end. */
	struct pending {
		bool on;
		uint32_t lf;
		int size, a, b; /* host registers; b < 0: the immediate */
		int32_t imm;
	} pend;
	/* A loop whose flags are live at its start (its first instructions may
	 * leave for the interpreter) goes back, when its registers are those
	 * head expects, to a copy of its instructions up to the first that sets
	 * the flags, whose ways out store the closing CMP's pending flags first
	 * (dup: the pass tries it; dup_w: that instruction). The pending
	 * operands must then stay in their host registers: what the copy
	 * writes or replaces is in written, and a miss that would need one
	 * marks the copy failed, and the pass is done again without it. */
	bool dup, dup_failed, in_dup;
	int dup_w;
	uint8_t written;
	int ptr_k; /* the instruction whose probed host address r15 holds, or -1 */
	uint8_t *at[BLOCK_INSNS + 1];		/* where each instruction's code starts */
	struct cache cache_at[BLOCK_INSNS + 1]; /* and the cache there */
};

/* Host opcodes (r/m, r form) of the group-1 operations by ModRM.reg; CMP and
 * TEST compute like SUB and AND without writing. ADC and SBB have no rule. */
static const uint8_t alu_op[8] = {0x01, 0x09, 0, 0, 0x21, 0x29, 0x31, 0x29};
static const uint32_t alu_lf[8] = {LF_ADD, LF_LOGIC, 0, 0, LF_LOGIC, LF_SUB, LF_LOGIC, LF_SUB};

/* Used by nothing else the translation emits: r8-r10, which get_flags (its
 * one call) clobbers, so the cache is stored back before it, and rbx, rbp,
 * r12 and r13, which the entry saves for run_block (once for a whole chain
 * of translations); r11 is left for the host address of a read-modify-write. */
typedef bool (*rule)(struct tr *t, const struct insn *d);

static const int cache_host[NCACHE] = {H_R8, H_R9, H_R10, H_RBX, H_RBP, H_R12, H_R13};

/* The block's entry, called as its first handler: saves the callee-saved
 * registers the cache uses and r14, which holds c->jit_chained for the
 * whole chain of translations (stored back on every way out: a count in
 * memory cost each pass of a loop a store and a load that waited for it),
 * and r15 (the host address a load keeps for the store after it), and
 * calls the body, whose exits and ways to the interpreter return here; rsp
 * is 8 off 16-byte alignment at the body, as at a call. */
static void emit_entry(struct emit *e)
{
	static const uint8_t save[] = {0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41,
				       0x56, 0x41, 0x57, 0x48, 0x83, 0xec, 0x08};
	static const uint8_t restore[] = {0x48, 0x83, 0xc4, 0x08, 0x41, 0x5f, 0x41, 0x5e,
					  0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3};
	emit_bytes(e, save, sizeof(save));
	emit_load(e, 8, H_R14, FIELD(jit_chained));
	emit_u8(e, 0xe8); /* call rel32: the body, right after */
	emit_u32(e, sizeof(restore));
	emit_bytes(e, restore, sizeof(restore));
}

/* Before anything leaves the chain: c->jit_chained = r14, and c->cur_block
 * the block whose translation runs (rsi is its instructions). A chained
 * jump does not store them, nor RIP: only the ways out do. */
static void store_chained(struct emit *e)
{
	emit_store(e, 8, H_R14, FIELD(jit_chained));
	emit_lea_disp(e, H_RAX, H_RSI, -(int32_t)offsetof(struct block, insn));
	emit_store(e, 8, H_RAX, FIELD(cur_block));
}

static void cache_clear(struct tr *t)
{
	memset(&t->cache, 0, sizeof(t->cache));
	memset(t->cache.reg, -1, sizeof(t->cache.reg));
}

/* c->r = the dirty registers of cache, which stays as it is: for a way out
 * that only some paths take. */
static void store_back(struct emit *e, const struct cache *cache)
{
	for (int i = 0; i < NCACHE; i++)
		if (cache->dirty & 1 << i)
			emit_store(e, 8, cache_host[i], REG(cache->reg[i]));
}

static int cache_find(struct tr *t, int r)
{
	for (int i = 0; i < NCACHE; i++)
		if (t->cache.reg[i] == r) {
			t->cache.used[i] = ++t->cache.tick;
			return i;
		}
	return -1;
}

/* A slot for guest register r, not cached: a free one or the least
 * recently used, stored back first when dirty. */
static int cache_take(struct tr *t, int r)
{
	struct cache *ca = &t->cache;
	int i = 0;
	for (int s = 1; s < NCACHE && ca->reg[i] >= 0; s++)
		if (ca->reg[s] < 0 || ca->used[s] < ca->used[i])
			i = s;
	if (ca->dirty & 1 << i)
		emit_store(&t->e, 8, cache_host[i], REG(ca->reg[i]));
	ca->dirty &= (uint8_t) ~(1 << i);
	t->written |= (uint8_t)(1 << i);
	ca->reg[i] = (int8_t)r;
	ca->used[i] = ++ca->tick;
	return i;
}

/* The host register holding guest register r, loaded if it was not cached. */
static int reg_host(struct tr *t, int r)
{
	int i = cache_find(t, r);
	if (i < 0) {
		i = cache_take(t, r);
		emit_load(&t->e, 8, cache_host[i], REG(r));
	}
	return cache_host[i];
}

/* The host register that guest register r is written in, all 64 bits (its
 * value before is not loaded), in the cache only until it is stored back. */
static int dst_host(struct tr *t, int r)
{
	int i = cache_find(t, r);
	if (i < 0)
		i = cache_take(t, r);
	t->cache.dirty |= (uint8_t)(1 << i);
	t->written |= (uint8_t)(1 << i);
	return cache_host[i];
}

/* host = guest register r (sizes 2 and 4: zero-extended) */
static void get_reg(struct tr *t, int size, int host, int r)
{
	if (size == 2)
		emit_movzx(&t->e, 2, host, reg_host(t, r), false);
	else
		emit_op_rr(&t->e, size, 0x89, host, reg_host(t, r));
}

/* guest register r = host, all 64 bits */
static void put_reg(struct tr *t, int host, int r)
{
	emit_op_rr(&t->e, 8, 0x89, dst_host(t, r), host);
}

/* Leave for the interpreter at instruction t->k when flags say so. */
static bool pend_kept(const struct tr *t);

static void miss(struct tr *t, uint8_t cc)
{
	uint8_t *rel = emit_jcc(&t->e, cc);
	if (t->in_dup && (t->nmiss == MAX_MISSES || !pend_kept(t))) {
		t->dup_failed = true;
		return;
	}
	if (!rel || t->nmiss == MAX_MISSES) {
		t->e.full = true;
		return;
	}
	t->miss[t->nmiss].pend = t->in_dup;
	t->miss[t->nmiss].rel = rel;
	t->miss[t->nmiss].cache = t->cache;
	t->miss[t->nmiss++].k = t->k;
}

/* Continue in the interpreter at instruction k: rsi = &insn[k], jump to its
 * handler, which chains on to the block's end as usual. The first
 * instruction's handler is this translation now, so its own is called by
 * address. */
static void to_interpreter(struct emit *e, const struct block *b, int k)
{
	store_chained(e);
	emit_mov_imm(e, H_RAX, b->end); /* the interpreter's handlers keep RIP at the end */
	emit_store(e, 8, H_RAX, FIELD(rip));
	if (k == 0) {
		emit_mov_imm(e, H_RAX, (uint64_t)(uintptr_t)b->insn[0].fn);
		emit_bytes(e, (const uint8_t[]){0xff, 0xe0}, 2); /* jmp rax */
		return;
	}
	emit_lea_disp(e, H_RSI, H_RSI, k * (int32_t)sizeof(struct insn));
	emit_jmp_mem(e, H_RSI, (int32_t)offsetof(struct insn, fn));
}

static int seg_of(const struct insn *d)
{
	return d->seg >= 0 ? d->seg : d->ea_seg;
}

/* rax = the offset of d's memory operand (exec_fast.c's ea()), plus the
 * FS/GS base when with_seg. */
static void ea(struct tr *t, const struct insn *d, bool with_seg)
{
	struct emit *e = &t->e;
	if (d->base == 16) {
		emit_mov_imm(e, H_RAX, d->start + d->len + (uint64_t)(int64_t)d->disp);
	} else if (d->base >= 0) {
		get_reg(t, 8, H_RAX, d->base);
		if (d->disp)
			emit_lea_disp(e, H_RAX, H_RAX, d->disp);
	} else {
		emit_mov_imm(e, H_RAX, (uint64_t)(int64_t)d->disp);
	}
	if (d->index >= 0) {
		get_reg(t, 8, H_RCX, d->index);
		if (d->scale > 1)
			emit_shift_imm(e, 8, 4, H_RCX, (uint8_t)__builtin_ctz(d->scale));
		emit_alu_rr(e, 0x01, H_RAX, H_RCX);
	}
	if (d->addrsize != 8)
		emit_zext32(e, H_RAX);
	if (with_seg && seg_of(d) >= SEG_FS)
		emit_alu_mem(e, 0x03, H_RAX, H_RDI,
			     FIELD(seg) + seg_of(d) * (int32_t)sizeof(struct seg) +
				 (int32_t)offsetof(struct seg, base));
}

/* rax (a linear address) -> host pointer through the software TLB entry of
 * its page (exec_fast.c's fast_ptr), clobbering rcx and rdx: rcx = the
 * entry's offset in the soft_cpu's TLB set, which is fixed (blocks are
 * looked up by CPL 3 or not). Eight host instructions, none a store: the
 * interpreter counts its TLB hits, translated code does not (an increment
 * in memory per access cost a store and a load on every pass of a loop). */
static void probe(struct tr *t, int size, int acc)
{
	struct emit *e = &t->e;
	int32_t set = FIELD(tlb) + (t->c->cpl == 3) * (int32_t)sizeof(t->c->tlb[0]);
	/* ecx = the entry's offset: the index (bits 12 up) times 64, the entry's size */
	emit_op_rr(e, 4, 0x89, H_RCX, H_RAX);
	emit_shift_imm(e, 4, 5, H_RCX, 12 - 6);
	emit_alu_imm(e, 4, 4, H_RCX, (int32_t)((TLB_SIZE - 1) << 6));
	/* The page of the operand's last byte: one that crosses into the next
	 * page finds that page's tag in another entry, so it misses here too. */
	if (size == 1)
		emit_alu_rr(e, 0x89, H_RDX, H_RAX);
	else
		emit_lea_disp(e, H_RDX, H_RAX, size - 1);
	emit_and_imm(e, H_RDX, -4096);
	emit_alu_sib(e, 0x3b, H_RDX, H_RDI, H_RCX,
		     set + (int32_t)offsetof(struct tlb_entry, tag) + 8 * acc);
	miss(t, 0x5); /* jne: another page, no access of this kind, or a crossing */
	if (acc == ACC_WRITE) {
		emit_alu_sib(e, 0x8b, H_RDX, H_RDI, H_RCX,
			     set + (int32_t)offsetof(struct tlb_entry, code));
		emit_ind(e, 8, false, H_RDX, H_RDX);
		emit_alu_rr(e, 0x85, H_RDX, H_RDX);
		miss(t, 0x5); /* jnz: code cached from this page must be invalidated */
	}
	emit_alu_sib(e, 0x03, H_RAX, H_RDI, H_RCX,
		     set + (int32_t)offsetof(struct tlb_entry, addend));
}

static bool size48(const struct insn *d)
{
	return d->opsize == 4 || d->opsize == 8;
}

/* Whether the next instruction stores size bytes to d's memory operand,
 * which d, writing guest register written, leaves where it was: a MOV of
 * the result of a load or ALU operation back (mem's walk: add ecx, [a];
 * mov [a], ecx). */
static bool store_follows(const struct tr *t, const struct insn *d, int size, int written)
{
	if (t->k + 1 >= t->b->n)
		return false;
	const struct insn *n = &t->b->insn[t->k + 1];
	return opcode_of(n->op)->fast == FAST_MOV_STORE && n->is_mem && n->opsize == size &&
	       size48(n) && !n->lock && n->base == d->base && n->index == d->index &&
	       n->scale == d->scale && n->disp == d->disp && seg_of(n) == seg_of(d) &&
	       n->addrsize == d->addrsize && d->base != 16 && written != d->base &&
	       written != d->index;
}

/* hreg = d's r/m operand of size bytes (zero-extended); a memory operand
 * clobbers rax, rcx and rdx, so it is fetched before any other operand. A
 * load whose value the next instruction stores back probes for writing
 * and keeps the host address in r15 for that store (a page it may read
 * but not write makes it leave for the interpreter, which does both). */
static void rm_load(struct tr *t, const struct insn *d, int size, int hreg)
{
	if (!d->is_mem) {
		get_reg(t, size, hreg, d->rm);
		return;
	}
	int fam = opcode_of(d->op)->fast;
	bool keep = (fam == FAST_ALU_R_RM || fam == FAST_MOV_LOAD) && size48(d) &&
		    store_follows(t, d, size, d->reg);
	ea(t, d, true);
	probe(t, size, keep ? ACC_WRITE : ACC_READ);
	if (keep) {
		emit_alu_rr(&t->e, 0x89, H_R15, H_RAX);
		t->ptr_k = t->k;
	}
	if (size == 2)
		emit_movzx(&t->e, 2, hreg, H_RAX, true);
	else
		emit_ind(&t->e, size, false, hreg, H_RAX);
}

/* Guest register r = rax, as wreg() does: 32-bit writes zero bits 32-63,
 * 16-bit ones keep bits 16-63. */
static void set_reg(struct tr *t, int size, int r)
{
	if (size == 2) { /* bits 16-63 kept, by a MOV of 16 bits: the host's flags stay */
		int h = reg_host(t, r);
		dst_host(t, r);
		emit_op_rr(&t->e, 2, 0x89, h, H_RAX);
		return;
	}
	if (size == 4)
		emit_zext32(&t->e, H_RAX);
	put_reg(t, H_RAX, r);
}

/* Without REX, byte registers 4-7 are AH, CH, DH, BH: bits 8-15 of 0-3. */
static bool high_byte(const struct insn *d, int r)
{
	return !d->rex && r >= 4 && r < 8;
}

/* host (rax, rcx or rdx) = byte register r, zero-extended */
static void get_reg8(struct tr *t, const struct insn *d, int host, int r)
{
	bool high = high_byte(d, r);
	get_reg(t, 4, host, high ? r - 4 : r);
	if (high)
		emit_shift_imm(&t->e, 4, 5, host, 8);
	emit_movzx(&t->e, 1, host, host, false);
}

/* The bits of guest register r outside keep = host (rcx or rdx, zero-extended,
 * shifted left by shift), the bits in keep kept; clobbers rax. */
static void put_part(struct tr *t, int host, int r, int32_t keep, uint8_t shift)
{
	get_reg(t, 8, H_RAX, r);
	emit_and_imm(&t->e, H_RAX, keep);
	if (shift)
		emit_shift_imm(&t->e, 8, 4, host, shift);
	emit_alu_rr(&t->e, 0x09, H_RAX, host);
	put_reg(t, H_RAX, r);
}

/* byte register r = host (rcx or rdx, zero-extended), the rest kept */
static void put_reg8(struct tr *t, const struct insn *d, int host, int r)
{
	bool high = high_byte(d, r);
	put_part(t, host, high ? r - 4 : r, high ? ~0xff00 : ~0xff, high ? 8 : 0);
}

/* Whether the flags of the instruction being translated are stored: the
 * copies of its operands that set_lazy stores are needed only then. */
static bool flags_live(const struct tr *t)
{
	return !t->dead[t->k];
}

/* The lazy flags of rax = rdx op rcx (lazy() in soft.h); lf LF_NONE: an
 * operation known at run time only, in r11 (ADC, SBB). */
static void set_lazy(struct tr *t, uint32_t lf, int size)
{
	struct emit *e = &t->e;
	t->lf = lf;
	t->lf_size = size;
	t->writes[t->k] = true;
	if (t->dead[t->k])
		return;
	if (lf == LF_NONE)
		emit_store(e, 4, H_R11, FIELD(lf_op));
	else
		emit_store_imm(e, 4, FIELD(lf_op), (int32_t)lf);
	emit_store_imm(e, 1, FIELD(lf_size), size);
	emit_store(e, 8, H_RAX, FIELD(lf_res));
	if (lf == LF_LOGIC)
		return;
	emit_store(e, 8, H_RDX, FIELD(lf_a));
	emit_store(e, 8, H_RCX, FIELD(lf_b));
}

static bool host_flags(struct tr *t);
static void real_flags(struct tr *t);
static bool guess_flags(struct tr *t, uint8_t *slow[2]);
static void call_saved(struct tr *t, const void *fn, int arg, uint8_t *slow[2]);

static uint64_t imm_of(const struct insn *d, int size)
{
	return size == 8 ? (uint64_t)d->imm : (uint32_t)d->imm;
}

/* The second ALU operand, an immediate or a register, into rcx. */
static void alu_b(struct tr *t, const struct insn *d, int size, bool imm)
{
	if (imm)
		emit_mov_imm(&t->e, H_RCX, imm_of(d, size));
	else
		get_reg(t, size, H_RCX, d->reg);
}

/* rax = rax OP rcx at the operand size (4 or 8: a 32-bit operation
 * zero-extends, as the lazy result may be), the first operand kept in rdx
 * while flags need it; the host's flags are then the guest's. */
static void alu_emit(struct tr *t, int op, int lf, int size)
{
	if (alu_lf[op] != LF_LOGIC && flags_live(t))
		emit_alu_rr(&t->e, 0x89, H_RDX, H_RAX);
	emit_op_rr(&t->e, size, alu_op[op], H_RAX, H_RCX);
	t->hf_k = t->k;
	set_lazy(t, lf, size);
}

/* ADC and SBB of registers: dst op= src (or the immediate). The carry in
 * comes from the host's flags where the translation knows what set them,
 * else from the real flags; it picks the lazy operation at run time, as in
 * alu(): LF_ADD or LF_SUB + 1 with a carry (LF_ADC, LF_SBB). */
static bool tr_carry(struct tr *t, const struct insn *d, int op, int dst, int src, bool imm)
{
	struct emit *e = &t->e;
	int size = d->opsize;
	if (d->is_mem)
		return false;
	if (!host_flags(t)) {
		real_flags(t);
		emit_bt_mem(e, FIELD(fl), 0);
	}
	/* nothing from here to the operation changes the host's flags */
	emit_setcc(e, 0x2, H_R11); /* setc */
	emit_lea_disp(e, H_R11, H_R11, op == 2 ? LF_ADD : LF_SUB);
	get_reg(t, size, H_RAX, dst);
	if (imm)
		emit_mov_imm(e, H_RCX, imm_of(d, size));
	else
		get_reg(t, size, H_RCX, src);
	if (flags_live(t))
		emit_alu_rr(e, 0x89, H_RDX, H_RAX);
	emit_op_rr(e, size, op == 2 ? 0x11 : 0x19, H_RAX, H_RCX);
	t->hf_k = t->k;
	set_lazy(t, LF_NONE, size); /* the operation is known at run time only */
	set_reg(t, size, dst);
	return true;
}

/* The lazy flags of the pending CMP or TEST (lazy() of a, b and a op b;
 * 64-bit values, which the flag code masks to the size); clobbers rax. */
static void store_pending(struct tr *t)
{
	struct emit *e = &t->e;
	const struct pending *p = &t->pend;
	if (!p->on)
		return;
	emit_store_imm(e, 4, FIELD(lf_op), (int32_t)p->lf);
	emit_store_imm(e, 1, FIELD(lf_size), p->size);
	emit_alu_rr(e, 0x89, H_RAX, p->a);
	if (p->lf == LF_LOGIC) {
		emit_alu_rr(e, 0x21, H_RAX, p->b);
	} else if (p->b >= 0) {
		emit_store(e, 8, p->a, FIELD(lf_a));
		emit_store(e, 8, p->b, FIELD(lf_b));
		emit_alu_rr(e, 0x29, H_RAX, p->b);
	} else {
		emit_store(e, 8, p->a, FIELD(lf_a));
		emit_store_imm(e, 8, FIELD(lf_b), p->imm);
		emit_alu_imm(e, 8, 5, H_RAX, p->imm);
	}
	emit_store(e, 8, H_RAX, FIELD(lf_res));
}

/* Whether the pending CMP's host registers still hold what they held at
 * the loop's back-edge (nothing in the copy of the head wrote or replaced
 * them). */
static bool pend_kept(const struct tr *t)
{
	for (int i = 0; i < NCACHE; i++)
		if ((t->written & 1 << i) &&
		    (cache_host[i] == t->pend.a || cache_host[i] == t->pend.b))
			return false;
	return true;
}

/* Whether the instruction being translated is followed by the block's
 * closing Jcc, which then reads the host's flags as they are. */
static bool before_jcc(const struct tr *t)
{
	const struct block *b = t->b;
	return t->k == b->n - 2 && opcode_of(b->insn[b->n - 1].op)->fast == FAST_JCC;
}

/* CMP a, b (or the immediate) or TEST a, b before the closing Jcc: on the
 * cached registers, the lazy flags pending. */
static bool tr_compare(struct tr *t, const struct insn *d, bool test, int a, int b)
{
	struct emit *e = &t->e;
	int size = d->opsize;
	int hb = b >= 0 ? reg_host(t, b) : -1, ha = reg_host(t, a);
	if (hb >= 0)
		emit_op_rr(e, size, test ? 0x85 : 0x39, ha, hb);
	else
		emit_alu_imm(e, size, 7, ha, (int32_t)d->imm);
	t->hf_k = t->k;
	t->lf = test ? LF_LOGIC : LF_SUB;
	t->lf_size = size;
	t->writes[t->k] = true;
	t->pend = (struct pending){
	    .on = true, .lf = t->lf, .size = size, .a = ha, .b = hb, .imm = (int32_t)d->imm};
	return true;
}

static bool tr_alu(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int size = d->opsize, fam = opcode_of(d->op)->fast;
	int op = fam == FAST_ALU_IMM ? d->reg & 7 : d->op >> 3 & 7;
	bool test = fam == FAST_TEST || fam == FAST_TEST_AX_I || fam == FAST_GROUP3;
	bool rax = fam == FAST_ALU_AX_I || fam == FAST_TEST_AX_I;
	bool imm = rax || fam == FAST_ALU_IMM || fam == FAST_GROUP3;
	int dst = fam == FAST_ALU_R_RM ? d->reg : rax ? R_RAX : d->rm;
	if (!size48(d) && size != 2)
		return false;
	if (test)
		op = 4;
	bool write = !test && op != 7;
	if (!alu_op[op] && size != 2)
		return tr_carry(t, d, op, dst, fam == FAST_ALU_R_RM ? d->rm : d->reg, imm);
	if (!alu_op[op])
		return false; /* ADC, SBB of 16 bits */
	if (!write && !d->is_mem && size != 2 && !(test && imm) && before_jcc(t))
		return tr_compare(t, d, test, dst,
				  imm			 ? -1
				  : fam == FAST_ALU_R_RM ? d->rm
							 : d->reg);
	if (d->is_mem && write && fam != FAST_ALU_R_RM) {
		/* read-modify-write: one probe for writing (a page with a
		 * write tag is readable), the host address kept in r11 */
		ea(t, d, true);
		probe(t, size, ACC_WRITE);
		emit_alu_rr(e, 0x89, H_R11, H_RAX);
		emit_ind(e, size, false, H_RAX, H_R11);
		alu_b(t, d, size, imm);
		alu_emit(t, op, alu_lf[op], size);
		emit_ind(e, size, true, H_RAX, H_R11);
		return true;
	}
	if (!d->is_mem && size != 2) {
		/* in the cached registers, 32-bit writes zero-extending; live
		 * flags stored from them, the operands before and the result
		 * after (CMP and TEST compute on a copy, or nothing when their
		 * flags are dead) */
		uint32_t lf = test ? LF_LOGIC : alu_lf[op];
		bool live = flags_live(t);
		if (!live && !write) {
			set_lazy(t, lf, size);
			return true;
		}
		int src = imm ? -1 : reg_host(t, fam == FAST_ALU_R_RM ? d->rm : d->reg);
		int h = reg_host(t, dst), r = h;
		if (live) {
			emit_store_imm(e, 4, FIELD(lf_op), (int32_t)lf);
			emit_store_imm(e, 1, FIELD(lf_size), size);
			if (lf != LF_LOGIC && imm)
				emit_store_imm(e, 8, FIELD(lf_b), (int32_t)d->imm);
			else if (lf != LF_LOGIC)
				emit_store(e, 8, src, FIELD(lf_b));
			if (lf != LF_LOGIC)
				emit_store(e, 8, h, FIELD(lf_a));
		}
		if (write) {
			dst_host(t, dst);
		} else {
			emit_alu_rr(e, 0x89, H_RAX, h);
			r = H_RAX;
		}
		if (imm)
			emit_alu_imm(e, size, op == 7 ? 5 : op, r, (int32_t)d->imm); /* CMP: SUB */
		else
			emit_op_rr(e, size, alu_op[op], r, src);
		if (live)
			emit_store(e, 8, r, FIELD(lf_res));
		t->hf_k = t->k;
		t->lf = lf;
		t->lf_size = size;
		t->writes[t->k] = true;
		return true;
	}
	if (fam == FAST_ALU_R_RM) { /* a = reg, b = r/m */
		rm_load(t, d, size, H_RCX);
		get_reg(t, size, H_RAX, d->reg);
	} else { /* a = r/m (or rAX), b = reg or imm */
		if (rax)
			get_reg(t, size, H_RAX, R_RAX);
		else
			rm_load(t, d, size, H_RAX);
		alu_b(t, d, size, imm);
	}
	alu_emit(t, op, test ? LF_LOGIC : alu_lf[op], size);
	if (write)
		set_reg(t, size, dst);
	return true;
}

/* 16-bit MOV (89, 8B, C7 /0): a register keeps bits 16-63, as wreg() has it. */
static bool tr_mov16(struct tr *t, const struct insn *d, int fam)
{
	struct emit *e = &t->e;
	if (fam == FAST_MOV_LOAD) {
		if (d->is_mem) {
			ea(t, d, true);
			probe(t, 2, ACC_READ);
			emit_movzx(e, 2, H_RCX, H_RAX, true);
		} else {
			get_reg(t, 4, H_RCX, d->rm);
			emit_movzx(e, 2, H_RCX, H_RCX, false);
		}
		put_part(t, H_RCX, d->reg, ~0xffff, 0);
		return true;
	}
	if (d->is_mem) {
		ea(t, d, true);
		probe(t, 2, ACC_WRITE);
	}
	if (fam == FAST_MOV_STORE)
		get_reg(t, 4, H_RCX, d->reg);
	else
		emit_mov_imm(e, H_RCX, (uint16_t)d->imm);
	if (d->is_mem) {
		emit_ind(e, 2, true, H_RCX, H_RAX);
	} else {
		emit_movzx(e, 2, H_RCX, H_RCX, false);
		put_part(t, H_RCX, d->rm, ~0xffff, 0);
	}
	return true;
}

static bool tr_mov(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int size = d->opsize, fam = opcode_of(d->op)->fast;
	if (fam == FAST_MOV_RM_IMM && (d->reg & 7))
		return false;
	if (size == 2)
		return tr_mov16(t, d, fam);
	if (!size48(d))
		return false;
	if (fam == FAST_MOV_LOAD) {
		rm_load(t, d, size, H_RAX);
		set_reg(t, size, d->reg);
		return true;
	}
	if (!d->is_mem) { /* in the cached registers (32 bits zero-extending) */
		if (fam == FAST_MOV_STORE) {
			int src = reg_host(t, d->reg);
			emit_op_rr(e, size, 0x89, dst_host(t, d->rm), src);
		} else {
			emit_mov_imm(e, dst_host(t, d->rm), imm_of(d, size));
		}
		return true;
	}
	int ptr = H_RAX;
	if (fam == FAST_MOV_STORE && t->ptr_k >= 0 && t->ptr_k == t->k - 1) {
		ptr = H_R15; /* probed for writing by the load before */
	} else {
		ea(t, d, true);
		probe(t, size, ACC_WRITE);
	}
	if (fam == FAST_MOV_STORE)
		get_reg(t, size, H_RCX, d->reg);
	else
		emit_mov_imm(e, H_RCX, imm_of(d, size));
	emit_ind(e, size, true, H_RCX, ptr);
	return true;
}

static bool tr_mov_imm(struct tr *t, const struct insn *d)
{
	emit_mov_imm(&t->e, dst_host(t, (d->op & 7) | (d->rex & 1) << 3), imm_of(d, d->opsize));
	return true;
}

static bool tr_lea(struct tr *t, const struct insn *d)
{
	ea(t, d, false);
	set_reg(t, d->opsize, d->reg);
	return true;
}

static bool tr_movsxd(struct tr *t, const struct insn *d)
{
	rm_load(t, d, 4, H_RAX);
	emit_alu_rr(&t->e, 0x63, H_RAX, H_RAX); /* movsxd rax, eax */
	set_reg(t, d->opsize, d->reg);
	return true;
}

/* PUSH of guest register r, or of v when r < 0 (CALL's return address). */
static void emit_push(struct tr *t, int r, uint64_t v)
{
	struct emit *e = &t->e;
	get_reg(t, 8, H_RAX, R_RSP);
	emit_lea_disp(e, H_RAX, H_RAX, -8);
	probe(t, 8, ACC_WRITE);
	if (r >= 0)
		get_reg(t, 8, H_RCX, r);
	else
		emit_mov_imm(e, H_RCX, v);
	emit_ind(e, 8, true, H_RCX, H_RAX);
	get_reg(t, 8, H_RDX, R_RSP);
	emit_lea_disp(e, H_RDX, H_RDX, -8);
	put_reg(t, H_RDX, R_RSP);
}

/* rcx = the quadword at RSP, RSP += 8 */
static void emit_pop(struct tr *t)
{
	struct emit *e = &t->e;
	get_reg(t, 8, H_RAX, R_RSP);
	probe(t, 8, ACC_READ);
	emit_ind(e, 8, false, H_RCX, H_RAX);
	get_reg(t, 8, H_RDX, R_RSP);
	emit_lea_disp(e, H_RDX, H_RDX, 8);
	put_reg(t, H_RDX, R_RSP);
}

static bool tr_push(struct tr *t, const struct insn *d)
{
	emit_push(t, (d->op & 7) | (d->rex & 1) << 3, 0);
	return true;
}

static bool tr_pop(struct tr *t, const struct insn *d)
{
	emit_pop(t);
	put_reg(t, H_RCX, (d->op & 7) | (d->rex & 1) << 3); /* POP RSP: the value wins */
	return true;
}

/* The lazy flags made real from the host's, when the translation knows what
 * set them (else false): RFLAGS' arithmetic bits into c->fl (AF cleared
 * after a logic operation, where the host leaves it undefined and
 * lazy_flags() clears it), no call, the register cache kept. */
static bool host_real_flags(struct tr *t)
{
	struct emit *e = &t->e;
	bool logic = t->lf == LF_LOGIC;
	if (!host_flags(t))
		return false;
	emit_bytes(e, (const uint8_t[]){0x9c, 0x58}, 2); /* pushfq; pop rax */
	emit_and_imm(e, H_RAX, logic ? FL_ARITH & ~FL_AF : FL_ARITH);
	emit_load(e, 8, H_RDX, FIELD(fl));
	emit_and_imm(e, H_RDX, (int32_t)~FL_ARITH);
	emit_alu_rr(e, 0x09, H_RDX, H_RAX);
	emit_store(e, 8, H_RDX, FIELD(fl));
	emit_store_imm(e, 4, FIELD(lf_op), LF_NONE);
	return true;
}

/* A call of fn(c), or fn(c, arg) when arg >= 0, with rdi and rsi kept and
 * the stack aligned; it clobbers r8-r11, so the cache must be stored back
 * and cleared first. */
static void call_c(struct emit *e, const void *fn, int arg)
{
	static const uint8_t save[] = {0x57, 0x56, 0x48, 0x83, 0xec, 0x08};
	static const uint8_t restore[] = {0x48, 0x83, 0xc4, 0x08, 0x5e, 0x5f};
	emit_bytes(e, save, sizeof(save));
	if (arg >= 0)
		emit_mov_imm(e, H_RSI, (uint64_t)arg);
	emit_call_abs(e, fn);
	emit_bytes(e, restore, sizeof(restore));
}

/* Pending lazy flags made real in c->fl, for an instruction that keeps some
 * of them (get_flags, called with the stack aligned and rdi/rsi kept). */
static void real_flags(struct tr *t)
{
	struct emit *e = &t->e;
	t->reads[t->k] = true;
	store_back(e, &t->cache);
	cache_clear(t); /* get_flags clobbers them, if it is called */
	emit_load(e, 4, H_RAX, FIELD(lf_op));
	emit_alu_rr(e, 0x85, H_RAX, H_RAX);
	uint8_t *skip = emit_jcc(e, 0x4); /* je: flags already real */
	call_c(e, (const void *)get_flags, -1);
	if (skip)
		emit_patch(skip, e->p);
}

/* rax = d's r/m operand of a read-modify-write: memory through one probe
 * for writing (a page with a write tag is readable), its host address kept
 * in r11 for rmw_store. */
static void rmw_load(struct tr *t, const struct insn *d, int size)
{
	if (!d->is_mem) {
		get_reg(t, size, H_RAX, d->rm);
		return;
	}
	ea(t, d, true);
	probe(t, size, ACC_WRITE);
	emit_alu_rr(&t->e, 0x89, H_R11, H_RAX);
	emit_ind(&t->e, size, false, H_RAX, H_R11);
}

/* d's r/m operand = rax, after rmw_load */
static void rmw_store(struct tr *t, const struct insn *d, int size)
{
	if (d->is_mem)
		emit_ind(&t->e, size, true, H_RAX, H_R11);
	else
		set_reg(t, size, d->rm);
}

/* INC/DEC of a register or memory keep CF, which lazy_flags() takes from
 * the real flags: when the host's flags are the guest's, CF alone is
 * written there (INC and DEC replace all the others, so the lazy operation
 * before need not be made real), else all of them are made real. The
 * host's CF is then loaded from them, so the host's INC or DEC leaves the
 * host's flags the guest's. */
static bool tr_incdec(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int size = d->opsize;
	if ((d->reg & 7) > 1 || (!size48(d) && size != 2))
		return false;
	t->partial[t->k] = true;
	if (t->dead[t->k] && !d->is_mem && size != 2) { /* in the cached register */
		t->writes[t->k] = true;
		t->lf = LF_NONE;
		int h = reg_host(t, d->rm);
		dst_host(t, d->rm);
		emit_ext_rr(e, size, 0xff, d->reg & 1, h);
		return true;
	}
	uint8_t *slow[2];
	bool known = host_flags(t), guessed = !known && guess_flags(t, slow) && host_flags(t);
	if (known || guessed) {
		emit_setcc(e, 0x2, H_R11); /* setc */
		emit_load(e, 8, H_RAX, FIELD(fl));
		emit_and_imm(e, H_RAX, ~FL_CF);
		emit_alu_rr(e, 0x09, H_RAX, H_R11);
		emit_store(e, 8, H_RAX, FIELD(fl));
		if (guessed)
			call_saved(t, (const void *)get_flags, -1, slow);
	} else {
		real_flags(t);
	}
	rmw_load(t, d, size);
	emit_alu_rr(e, 0x89, H_RDX, H_RAX);
	emit_mov_imm(e, H_RCX, 1);
	emit_bt_mem(e, FIELD(fl), 0);
	emit_ext_rr(e, size, 0xff, d->reg & 1, H_RAX);
	t->hf_k = t->k;
	set_lazy(t, d->reg & 1 ? LF_DEC : LF_INC, size);
	t->reads[t->k] = false; /* partial */
	rmw_store(t, d, size);
	return true;
}

/* NOT and NEG (F7 /2, /3) of a register or memory; NEG's flags are those of
 * 0 - the operand (alu()'s SUB), which the host's NEG sets. */
static bool tr_notneg(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int size = d->opsize, ext = d->reg & 7;
	bool neg = ext == 3;
	if (!d->is_mem && (!neg || !flags_live(t))) { /* in the cached register */
		if (neg)
			set_lazy(t, LF_SUB, size);
		int h = reg_host(t, d->rm);
		dst_host(t, d->rm);
		emit_ext_rr(e, size, 0xf7, ext, h);
		return true;
	}
	rmw_load(t, d, size);
	if (neg) {
		emit_alu_rr(e, 0x89, H_RCX, H_RAX);
		emit_mov_imm(e, H_RDX, 0);
	}
	emit_ext_rr(e, size, 0xf7, ext, H_RAX);
	if (neg) {
		t->hf_k = t->k;
		set_lazy(t, LF_SUB, size);
	}
	rmw_store(t, d, size);
	return true;
}

/* The lazy flags of a multiplication whose low half is in rax, the host's
 * OF saying whether the product overflowed it (lazy()'s a for LF_MUL);
 * clobbers r11. */
static void set_lazy_mul(struct tr *t, int size)
{
	struct emit *e = &t->e;
	t->lf = LF_MUL;
	t->lf_size = size;
	t->writes[t->k] = true;
	if (t->dead[t->k])
		return;
	emit_setcc(e, 0x0, H_R11); /* seto */
	emit_store_imm(e, 4, FIELD(lf_op), LF_MUL);
	emit_store_imm(e, 1, FIELD(lf_size), size);
	emit_store(e, 8, H_RAX, FIELD(lf_res));
	emit_store(e, 8, H_R11, FIELD(lf_a));
	emit_store_imm(e, 8, FIELD(lf_b), 0);
}

/* MUL, IMUL (one operand) and DIV of rDX:rAX by the r/m operand. A divisor
 * of zero or a quotient that does not fit (the high half not below the
 * divisor) leaves for the interpreter, which raises #DE at this instruction.
 * The product's lazy flags are LF_MUL's (lf_a: the host's OF, which MUL and
 * IMUL set when the high half is needed); DIV leaves the flags alone, as
 * group3() does. */
static bool tr_muldiv(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int size = d->opsize, ext = d->reg & 7;
	rm_load(t, d, size, H_RCX);
	get_reg(t, size, H_RAX, R_RAX);
	if (ext == 6) {
		get_reg(t, size, H_RDX, R_RDX);
		emit_op_rr(e, size, 0x85, H_RCX, H_RCX);
		miss(t, 0x4); /* jz */
		emit_op_rr(e, size, 0x39, H_RDX, H_RCX);
		miss(t, 0x3); /* jae */
	}
	emit_ext_rr(e, size, 0xf7, ext, H_RCX);
	if (ext != 6)
		set_lazy_mul(t, size);
	set_reg(t, size, R_RAX);
	if (size == 4)
		emit_zext32(e, H_RDX);
	put_reg(t, H_RDX, R_RDX);
	return true;
}

/* Group 3 of 32 and 64 bits: TEST with an immediate, NOT, NEG, MUL, IMUL,
 * DIV (IDIV stays interpreted). */
static bool tr_group3(struct tr *t, const struct insn *d)
{
	if (!size48(d))
		return false;
	switch (d->reg & 7) {
	case 0:
		return tr_alu(t, d);
	case 2:
	case 3:
		return tr_notneg(t, d);
	case 4:
	case 5:
	case 6:
		return tr_muldiv(t, d);
	default:
		return false;
	}
}

static bool tr_bswap(struct tr *t, const struct insn *d)
{
	int r = (d->op & 7) | (d->rex & 1) << 3;
	if (!size48(d))
		return false; /* 16 bits: undefined */
	int h = reg_host(t, r);
	dst_host(t, r);
	emit_bswap(&t->e, d->opsize, h);
	return true;
}

/* MOVZX r, r/m8 and r/m16, and MOVSX to 32 bits (zero-extended: the host's
 * MOVSX r32 does it) or 64. Without REX, byte registers 4-7 are AH-BH:
 * those stay with the interpreter. */
static bool tr_movzx(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int fam = opcode_of(d->op)->fast;
	bool sx = fam == FAST_MOVSX;
	int size = sx ? 1 + (d->op & 1) : fam == FAST_MOVZX8 ? 1 : 2;
	if (sx && !size48(d))
		return false;
	if (!d->is_mem) {
		if (size == 1 && !d->rex && d->rm >= 4 && d->rm < 8)
			return false;
		get_reg(t, 8, H_RAX, d->rm);
	} else {
		ea(t, d, true);
		probe(t, size, ACC_READ);
	}
	if (sx)
		emit_movsx(e, size, d->opsize, H_RAX, H_RAX, d->is_mem);
	else
		emit_movzx(e, size, H_RAX, H_RAX, d->is_mem);
	put_reg(t, H_RAX, d->reg);
	return true;
}

/* ROL, ROR of a register by a nonzero count: only CF and OF change, so the
 * others are made real first; OF by shift_op's rule for every count (the
 * host's is undefined past 1). */
static bool tr_rotate(struct tr *t, const struct insn *d, unsigned cnt)
{
	struct emit *e = &t->e;
	int size = d->opsize, bits = size * 8;
	bool rol = (d->reg & 7) == 0;
	/* Counted as a writer for the liveness pass: when every flag is set
	 * again before anything reads one, CF and OF (and the flags before,
	 * which it keeps) are dead, and it is a rotate of the cached register. */
	t->writes[t->k] = true;
	t->partial[t->k] = true;
	if (t->dead[t->k]) {
		t->lf = LF_NONE;
		int h = reg_host(t, d->rm);
		dst_host(t, d->rm);
		emit_shift_imm(e, size, rol ? 0 : 1, h, (uint8_t)cnt);
		return true;
	}
	if (!host_real_flags(t))
		real_flags(t);
	t->reads[t->k] = false; /* partial */
	t->partial[t->k] = true;
	t->lf = LF_NONE;
	get_reg(t, size, H_RAX, d->rm);
	emit_shift_imm(e, size, rol ? 0 : 1, H_RAX, (uint8_t)cnt);
	emit_alu_rr(e, 0x89, H_RDX, H_RAX); /* rdx = the sign bit */
	emit_shift_imm(e, 8, 5, H_RDX, (uint8_t)(bits - 1));
	emit_alu_rr(e, 0x89, H_RCX, H_RAX); /* rcx = ROL: bit 0, ROR: bit bits-2 */
	if (!rol)
		emit_shift_imm(e, 8, 5, H_RCX, (uint8_t)(bits - 2));
	emit_and_imm(e, H_RCX, 1);
	emit_alu_rr(e, 0x31, H_RCX, H_RDX); /* rcx = OF */
	emit_shift_imm(e, 8, 4, H_RCX, 11);
	if (rol) { /* CF = bit 0 */
		emit_alu_rr(e, 0x89, H_RDX, H_RAX);
		emit_and_imm(e, H_RDX, 1);
	}
	emit_alu_rr(e, 0x09, H_RCX, H_RDX); /* rcx = OF | CF */
	emit_load(e, 8, H_RDX, FIELD(fl));
	emit_and_imm(e, H_RDX, (int32_t) ~(FL_CF | FL_OF));
	emit_alu_rr(e, 0x09, H_RDX, H_RCX);
	emit_store(e, 8, H_RDX, FIELD(fl));
	set_reg(t, size, d->rm);
	return true;
}

/* SHL, SHR, SAR by 1 or a nonzero immediate count (the others keep the
 * interpreter's flag rules): an operation of the operand size, so 32-bit
 * results are zero-extended as the masked C result is. */
static bool tr_shift(struct tr *t, const struct insn *d)
{
	static const uint32_t lf[8] = {[4] = LF_SHL, [5] = LF_SHR, [7] = LF_SAR};
	struct emit *e = &t->e;
	int size = d->opsize, op = d->reg & 7;
	unsigned cnt = opcode_of(d->op)->fast == FAST_SHIFT_1
			   ? 1
			   : (unsigned)d->imm & (unsigned)(size * 8 - 1);
	if (!d->is_mem && cnt && op < 2)
		return tr_rotate(t, d, cnt);
	if (d->is_mem || !lf[op] || !cnt)
		return false;
	if (!flags_live(t)) { /* in the cached register */
		set_lazy(t, lf[op], size);
		int h = reg_host(t, d->rm);
		dst_host(t, d->rm);
		emit_shift_imm(e, size, op, h, (uint8_t)cnt);
		return true;
	}
	get_reg(t, size, H_RAX, d->rm);
	if (flags_live(t))
		emit_alu_rr(e, 0x89, H_RDX, H_RAX);
	emit_shift_imm(e, size, op, H_RAX, (uint8_t)cnt);
	if (flags_live(t))
		emit_mov_imm(e, H_RCX, cnt);
	set_lazy(t, lf[op], size);
	put_reg(t, H_RAX, d->rm);
	return true;
}

/* SHL, SHR, SAR of a register by CL, masked as the host masks it. A count
 * of 0 changes no flag, so the lazy flags are stored only for another: the
 * instruction is no flag write to the liveness pass, and what it leaves is
 * known at run time only. */
static bool tr_shift_cl(struct tr *t, const struct insn *d)
{
	static const uint32_t lf[8] = {[4] = LF_SHL, [5] = LF_SHR, [7] = LF_SAR};
	struct emit *e = &t->e;
	int size = d->opsize, op = d->reg & 7;
	if (d->is_mem || !lf[op])
		return false;
	get_reg(t, 4, H_RCX, R_RCX);
	get_reg(t, size, H_RAX, d->rm);
	emit_and_imm(e, H_RCX, size * 8 - 1);
	emit_alu_rr(e, 0x89, H_RDX, H_RAX);
	emit_ext_rr(e, size, 0xd3, op, H_RAX);
	emit_op_rr(e, 4, 0x85, H_RCX, H_RCX); /* test ecx, ecx */
	uint8_t *zero = emit_jcc(e, 0x4);
	set_lazy(t, lf[op], size);
	if (zero)
		emit_patch(zero, e->p);
	t->writes[t->k] = false;
	t->lf = LF_NONE;
	set_reg(t, size, d->rm);
	return true;
}

/* SHL, SHR, SAR of a byte register or memory by 1 (D0) or a nonzero
 * immediate (C0), leaving the lazy flags as shift_op() does. */
static bool tr_shift8(struct tr *t, const struct insn *d)
{
	static const uint32_t lf[8] = {[4] = LF_SHL, [5] = LF_SHR, [7] = LF_SAR};
	struct emit *e = &t->e;
	int op = d->reg & 7;
	unsigned cnt = (d->op & 0xff) == 0xd0 ? 1 : (unsigned)d->imm & 31;
	if (!lf[op] || !cnt)
		return false;
	if (d->is_mem) {
		ea(t, d, true);
		probe(t, 1, ACC_WRITE);
		emit_alu_rr(e, 0x89, H_R11, H_RAX);
		emit_movzx(e, 1, H_RAX, H_R11, true);
	} else {
		get_reg8(t, d, H_RAX, d->rm);
	}
	emit_alu_rr(e, 0x89, H_RDX, H_RAX);
	emit_mov_imm(e, H_RCX, cnt);
	emit_bytes(e, (const uint8_t[]){0xc0, (uint8_t)(0xc0 | op << 3), (uint8_t)cnt}, 3);
	set_lazy(t, lf[op], 1);
	if (d->is_mem) {
		emit_bytes(e, (const uint8_t[]){0x41, 0x88, 0x03}, 3); /* mov [r11], al */
		return true;
	}
	emit_movzx(e, 1, H_RCX, H_RAX, false);
	put_reg8(t, d, H_RCX, d->rm);
	return true;
}

/* IMUL r, r/m and IMUL r, r/m, imm (imul2): the low half, and the lazy
 * operation's a = whether the signed product overflowed, which is the
 * host's OF after an IMUL of the operand size. */
static bool tr_imul(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int size = d->opsize;
	bool imm = opcode_of(d->op)->fast == FAST_IMUL_I;
	if (!d->is_mem && !imm && t->dead[t->k]) { /* in the cached registers */
		set_lazy_mul(t, size);
		int src = reg_host(t, d->rm), h = reg_host(t, d->reg);
		dst_host(t, d->reg);
		emit_imul_rr(e, size, h, src);
		return true;
	}
	rm_load(t, d, size, H_RCX);
	if (imm)
		emit_mov_imm(e, H_RAX, imm_of(d, size));
	else
		get_reg(t, size, H_RAX, d->reg);
	emit_imul_rr(e, size, H_RAX, H_RCX);
	set_lazy_mul(t, size);
	set_reg(t, size, d->reg);
	return true;
}

/* Chaining. A translation of a whole block leaves by exits: each direct one
 * (a branch target, the fall-through) is a stub that jit_link patches to
 * enter the translation of the block at its target, once execution got
 * there through run_block; a RET looks its target up in the indirect-branch
 * table. Entering another block is what run_block would do, so it is done
 * only when run_block would not stop: the chain epoch of the target's kind
 * is the one the link was made in, with the target validated in its code
 * epoch then (eviction, a TLB flush — for global pages one that drops
 * global translations —, a write to cached code by any vCPU or device all
 * bump it, so that unlinks every jump at once), no
 * interrupt, event or kick wants the vCPU, and the chain's instructions stay
 * within run_block's budget. Otherwise the exit returns to run_block with
 * RIP the target and jit_exit saying which exit to link. */

#define MAX_OUTS 8

/* Jumps to an exit's way back to run_block, patched once it is emitted;
 * and checks that rarely fail in one compare but need more when they do,
 * finished off the hot path (so a pass of a loop takes no branch but its
 * back-edge): the jump there and where it goes back to. */
enum { COLD_GCHAIN, COLD_IRQ };
struct outs {
	uint8_t *rel[MAX_OUTS];
	int n;
	struct {
		uint8_t *rel, *resume;
		int kind;
	} cold[2];
	int ncold;
};

static void out_if(struct tr *t, struct outs *o, uint8_t cc)
{
	uint8_t *rel = emit_jcc(&t->e, cc);
	if (rel && o->n < MAX_OUTS)
		o->rel[o->n++] = rel;
	else
		t->e.full = true;
}

static void cold_if(struct tr *t, struct outs *o, uint8_t cc, int kind)
{
	uint8_t *rel = emit_jcc(&t->e, cc);
	if (!rel || o->ncold == 2) {
		t->e.full = true;
		return;
	}
	o->cold[o->ncold].rel = rel;
	o->cold[o->ncold].resume = t->e.p;
	o->cold[o->ncold++].kind = kind;
}

/* The rest of the checks cold_if left, after the exit's last jump: rax
 * still holds the link's epoch (COLD_GCHAIN) or the attention pointer
 * (COLD_IRQ). */
static void emit_colds(struct tr *t, struct outs *o)
{
	struct emit *e = &t->e;
	for (int i = 0; i < o->ncold; i++) {
		emit_patch(o->cold[i].rel, e->p);
		if (o->cold[i].kind == COLD_GCHAIN) {
			emit_alu_mem(e, 0x3b, H_RAX, H_RDI, FIELD(gchain_epoch));
			out_if(t, o, 0x5);
		} else {
			emit_test_mem(e, H_RAX, 0, INTC_ATTN_EVENT);
			out_if(t, o, 0x5);
			emit_test_mem(e, H_RDI, FIELD(fl), FL_IF); /* a request, taken if IF */
			out_if(t, o, 0x5);
		}
		emit_u8(e, 0xe9); /* jmp rel32 */
		uint8_t *rel = e->p;
		emit_u32(e, 0);
		if (!e->full)
			emit_patch(rel, o->cold[i].resume);
	}
	o->ncold = 0;
}

/* attention() in soft.c, then the budget: the block being left counts
 * (r14 is c->jit_chained). Nothing wanting the vCPU costs a load and a
 * test of the attention word and a compare of kick. */
static void enter_checks(struct tr *t, struct outs *o)
{
	struct emit *e = &t->e;
	emit_load(e, 8, H_RAX, FIELD(attn));
	emit_test_mem(e, H_RAX, 0, INTC_ATTN_EVENT | INTC_ATTN_IRQ);
	cold_if(t, o, 0x5, COLD_IRQ);
	emit_grp1_mem(e, 1, 7, H_RDI, FIELD(kick), 0);
	out_if(t, o, 0x5);
	emit_lea_disp(e, H_RAX, H_R14, t->b->n);
	emit_alu_mem(e, 0x3b, H_RAX, H_RDI, FIELD(jit_limit));
	out_if(t, o, 0xd); /* jge */
	emit_alu_rr(e, 0x89, H_R14, H_RAX);
}

/* The way back to run_block, with RIP the target when one is given (a RET
 * stored it already). */
static void emit_out(struct tr *t, struct outs *o, int32_t exit, const uint64_t *target)
{
	emit_colds(t, o);
	for (int i = 0; i < o->n; i++)
		emit_patch(o->rel[i], t->e.p);
	if (target) {
		emit_mov_imm(&t->e, H_RAX, *target);
		emit_store(&t->e, 8, H_RAX, FIELD(rip));
	}
	store_chained(&t->e);
	emit_store_imm(&t->e, 4, FIELD(jit_exit), exit);
	emit_u8(&t->e, 0xc3); /* ret */
}

/* Whether the jit_target at rdx + off was linked in the current chain epoch
 * of its kind (chain_epoch or, for a block on global pages, gchain_epoch:
 * the two never hold the same value); out if not. */
static void chain_check(struct tr *t, struct outs *o, int32_t off)
{
	struct emit *e = &t->e;
	emit_alu_mem(e, 0x8b, H_RAX, H_RDX, off + (int32_t)offsetof(struct jit_target, epoch));
	emit_alu_mem(e, 0x3b, H_RAX, H_RDI, FIELD(chain_epoch));
	cold_if(t, o, 0x5, COLD_GCHAIN);
}

/* Through the jit_target at rdx + off (rdx kept by the checks): its epoch,
 * then enter_checks, then into its block. */
static void enter_target(struct tr *t, struct outs *o, int32_t off)
{
	struct emit *e = &t->e;
	chain_check(t, o, off);
	enter_checks(t, o);
	/* rsi = its instructions, as a fast handler is called (its misses index them) */
	emit_alu_mem(e, 0x8b, H_RSI, H_RDX, off + (int32_t)offsetof(struct jit_target, b));
	emit_lea_disp(e, H_RSI, H_RSI, (int32_t)offsetof(struct block, insn));
	emit_jmp_mem(e, H_RDX, off + (int32_t)offsetof(struct jit_target, code));
}

static rule rule_of(const struct insn *d);

/* The loop's copy of its head, at the back-edge: instructions 0 to dup_w
 * again from the registers head has, then on into the body after dup_w,
 * whose cache it must reach. What the translation knew at the back-edge
 * is what its way out needs: it is put back after. */
static void emit_dup(struct tr *t)
{
	int w = t->dup_w, k = t->k;
	struct cache cache = t->cache;
	uint32_t lf = t->lf;
	int lf_size = t->lf_size, hf_k = t->hf_k;
	uint8_t *hf_at = t->hf_at;
	t->cache = t->pre;
	t->written = 0;
	t->in_dup = true;
	for (t->k = 0; t->k <= w && !t->dup_failed; t->k++)
		if (!rule_of(&t->b->insn[t->k])(t, &t->b->insn[t->k]))
			t->dup_failed = true; /* no rule declines a second time, but */
	t->in_dup = false;
	if (memcmp(t->cache.reg, t->cache_at[w + 1].reg, sizeof(t->cache.reg)) ||
	    t->cache.dirty != t->cache_at[w + 1].dirty)
		t->dup_failed = true;
	emit_u8(&t->e, 0xe9); /* jmp rel32 */
	uint8_t *rel = t->e.p;
	emit_u32(&t->e, 0);
	if (!t->e.full)
		emit_patch(rel, t->at[w + 1]);
	t->cache = cache;
	t->k = k;
	t->lf = lf;
	t->lf_size = lf_size;
	t->hf_k = hf_k;
	t->hf_at = hf_at;
}

/* A branch back to the block's own start (a loop), once linked: the same
 * checks as entering any block, then back into the body, RIP (the block's
 * end), c->cur_block and rsi being what they were: to head with the
 * registers cached when they are those head expects (through the copy of
 * the head when there is one), else to the start (which loads them) with
 * them stored back. Not taken, they are stored back on the way out. */
static void emit_loop(struct tr *t, struct outs *o)
{
	struct emit *e = &t->e;
	t->loop = t->cache;
	t->looped = true;
	bool same = !memcmp(t->cache.reg, t->pre.reg, sizeof(t->pre.reg));
	bool dup = t->dup && same && t->pend.on; /* to the copy of the head, flags pending */
	if (t->live_in && !dup)
		store_pending(t);
	chain_check(t, o, (int32_t)offsetof(struct jit_link, to));
	enter_checks(t, o);
	if (dup) {
		emit_dup(t);
	} else {
		if (!same)
			store_back(e, &t->cache);
		emit_u8(e, 0xe9); /* jmp rel32 */
		uint8_t *rel = e->p;
		emit_u32(e, 0);
		if (!e->full)
			emit_patch(rel, same ? t->head : t->start);
	}
	emit_colds(t, o);
	for (int i = 0; i < o->n; i++)
		emit_patch(o->rel[i], e->p);
	o->n = 0;
	store_back(e, &t->cache);
	if (!t->live_in || dup)
		store_pending(t);
}

/* The exit to target, unlinked: the epoch its cell holds is never reached. */
static void emit_exit(struct tr *t, uint64_t target)
{
	struct emit *e = &t->e;
	struct jit *j = t->c->jit;
	bool loop = target == t->b->insn[0].start;
	if (!loop) {
		store_pending(t);
		store_back(e, &t->cache);
	}
	int i = j->nlinks + t->nlinks;
	if (i == JIT_MAX_LINKS) {
		e->full = true;
		return;
	}
	j->link[i] = (struct jit_link){.to.epoch = ~0ull, .target = target, .key = code_key(t->c)};
	struct outs o = {.n = 0};
	emit_mov_imm(e, H_RDX, (uint64_t)(uintptr_t)&j->link[i]);
	if (loop)
		emit_loop(t, &o);
	else
		enter_target(t, &o, (int32_t)offsetof(struct jit_link, to));
	emit_out(t, &o, i + 1, &target);
	if (!e->full)
		t->nlinks++;
}

/* The exit of a RET to rcx, through the indirect-branch table. */
static void emit_exit_ind(struct tr *t)
{
	struct emit *e = &t->e;
	struct outs o = {.n = 0};
	store_back(e, &t->cache);
	emit_store(e, 8, H_RCX, FIELD(rip));
	emit_alu_rr(e, 0x89, H_RAX, H_RCX);
	emit_shift_imm(e, 8, 5, H_RAX, 10);
	emit_alu_rr(e, 0x31, H_RAX, H_RCX);
	emit_and_imm(e, H_RAX, (1 << JIT_IND_BITS) - 1);
	emit_shift_imm(e, 8, 4, H_RAX, 6);
	emit_mov_imm(e, H_RDX, (uint64_t)(uintptr_t)t->c->jit->ind);
	emit_alu_rr(e, 0x01, H_RDX, H_RAX);
	emit_alu_mem(e, 0x3b, H_RCX, H_RDX, (int32_t)offsetof(struct jit_ind, rip));
	out_if(t, &o, 0x5);
	emit_grp1_mem(e, 8, 7, H_RDX, (int32_t)offsetof(struct jit_ind, key), code_key(t->c));
	out_if(t, &o, 0x5);
	enter_target(t, &o, (int32_t)offsetof(struct jit_ind, to));
	emit_out(t, &o, JIT_EXIT_IND, NULL);
}

static uint64_t target_of(const struct insn *d)
{
	return d->start + d->len + (uint64_t)d->imm;
}

/* The block's closing branch. A Jcc is translated when the block's own
 * translated code set the flags it reads by ADD, SUB/CMP or a logic
 * operation: redoing that operation on the lazy operands at its size gives
 * the host the very flags, and the guest's condition code is the host's.
 * Not taken, it goes on to the block's fall-through exit. */

/* TEST r/m8, r8 */
static bool tr_test8(struct tr *t, const struct insn *d)
{
	if (d->is_mem) {
		ea(t, d, true);
		probe(t, 1, ACC_READ);
		emit_movzx(&t->e, 1, H_RAX, H_RAX, true);
	} else {
		get_reg8(t, d, H_RAX, d->rm);
	}
	get_reg8(t, d, H_RCX, d->reg);
	emit_alu_rr(&t->e, 0x21, H_RAX, H_RCX);
	set_lazy(t, LF_LOGIC, 1);
	return true;
}

/* The byte ALU operations ADD, OR, AND, SUB, XOR, CMP and TEST: a = the
 * destination, b = the source, as the 32- and 64-bit forms of tr_alu, with
 * a memory destination read and written through one probe (r11 holding its
 * host address) and the bytes zero-extended, as the interpreter's alu()
 * has them. */
static bool tr_alu8(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int fam = opcode_of(d->op)->fast;
	bool group = fam == FAST_ALU8_IMM || fam == FAST_TEST8_IMM;
	bool test = fam == FAST_TEST8_IMM || fam == FAST_TEST8_AL;
	bool al = fam == FAST_ALU8_AL || fam == FAST_TEST8_AL;
	int op = test ? 4 : group ? d->reg & 7 : d->op >> 3 & 7;
	if (!alu_op[op] || (fam == FAST_TEST8_IMM && (d->reg & 7)))
		return false; /* ADC, SBB; F6's other members */
	bool write = op != 7 && !test;
	bool to_reg = fam == FAST_ALU8 && (d->op & 2); /* x2: r8, r/m8 */
	bool imm = group || al;
	int dst = al ? R_RAX : to_reg ? d->reg : d->rm;
	if (d->is_mem) {
		ea(t, d, true);
		probe(t, 1, !to_reg && write ? ACC_WRITE : ACC_READ);
		emit_alu_rr(e, 0x89, H_R11, H_RAX);
		if (to_reg) {
			get_reg8(t, d, H_RAX, dst);
			/* movzx ecx, byte [r11] */
			emit_bytes(e, (const uint8_t[]){0x41, 0x0f, 0xb6, 0x0b}, 4);
		} else {
			emit_movzx(e, 1, H_RAX, H_RAX, true);
		}
	} else {
		get_reg8(t, d, H_RAX, dst);
	}
	if (imm)
		emit_mov_imm(e, H_RCX, (uint8_t)d->imm);
	else if (!to_reg)
		get_reg8(t, d, H_RCX, d->reg);
	else if (!d->is_mem)
		get_reg8(t, d, H_RCX, d->rm);
	if (alu_lf[op] != LF_LOGIC && flags_live(t))
		emit_alu_rr(e, 0x89, H_RDX, H_RAX);
	emit_alu_rr(e, alu_op[op], H_RAX, H_RCX);
	set_lazy(t, alu_lf[op], 1);
	if (!write)
		return true;
	if (d->is_mem && !to_reg) {
		emit_bytes(e, (const uint8_t[]){0x41, 0x88, 0x03}, 3); /* mov [r11], al */
		return true;
	}
	emit_movzx(e, 1, H_RCX, H_RAX, false);
	put_reg8(t, d, H_RCX, dst);
	return true;
}

/* MOV r/m8, r8 (88), MOV r8, r/m8 (8A), MOV r/m8, imm8 (C6 /0), MOV r8,
 * imm8 (B0+r) */
static bool tr_mov8(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int fam = opcode_of(d->op)->fast;
	if (fam == FAST_MOV8_IMM && (d->reg & 7))
		return false;
	if (fam == FAST_MOV8_R_IMM) {
		emit_mov_imm(e, H_RCX, (uint8_t)d->imm);
		put_reg8(t, d, H_RCX, (d->op & 7) | (d->rex & 1) << 3);
		return true;
	}
	if (fam == FAST_MOV_LOAD8) {
		if (d->is_mem) {
			ea(t, d, true);
			probe(t, 1, ACC_READ);
			emit_movzx(e, 1, H_RCX, H_RAX, true);
		} else {
			get_reg8(t, d, H_RCX, d->rm);
		}
		put_reg8(t, d, H_RCX, d->reg);
		return true;
	}
	if (d->is_mem) {
		ea(t, d, true);
		probe(t, 1, ACC_WRITE);
	}
	if (fam == FAST_MOV8_IMM)
		emit_mov_imm(e, H_RCX, (uint8_t)d->imm);
	else
		get_reg8(t, d, H_RCX, d->reg);
	if (d->is_mem)
		emit_bytes(e, (const uint8_t[]){0x88, 0x08}, 2); /* mov [rax], cl */
	else
		put_reg8(t, d, H_RCX, d->rm);
	return true;
}

/* The host flags = the guest's, for a reader of the flags (Jcc, CMOVcc,
 * SETcc) that a translated ADD, SUB/CMP or logic operation set; clobbers
 * rax and rcx. False when the translation does not know what set them. */
/* Whether host_flags() can give the host the guest's flags here. */
static bool flags_known(const struct tr *t)
{
	return t->hf_at == t->e.p || t->lf == LF_LOGIC || t->lf == LF_ADD || t->lf == LF_SUB ||
	       t->lf == LF_INC || t->lf == LF_DEC;
}

static bool host_flags(struct tr *t)
{
	struct emit *e = &t->e;
	int size = t->lf_size;
	t->reads[t->k] = true;
	if (!flags_known(t))
		return false;
	if (t->hf_at == e->p)
		return true; /* nothing was emitted since: they still are */
	if (t->lf == LF_LOGIC && size == 1) {
		emit_load(e, 4, H_RAX, FIELD(lf_res));
		emit_bytes(e, (const uint8_t[]){0x84, 0xc0}, 2); /* test al, al */
	} else if (size == 1 && (t->lf == LF_ADD || t->lf == LF_SUB)) {
		emit_load(e, 4, H_RAX, FIELD(lf_a));
		emit_load(e, 4, H_RCX, FIELD(lf_b));
		emit_bytes(e, (const uint8_t[]){t->lf == LF_ADD ? 0x00 : 0x38, 0xc8}, 2);
	} else if (t->lf == LF_LOGIC) {
		emit_load(e, size, H_RAX, FIELD(lf_res));
		emit_op_rr(e, size, 0x85, H_RAX, H_RAX); /* test */
	} else if (t->lf == LF_ADD || t->lf == LF_SUB) {
		emit_load(e, size, H_RAX, FIELD(lf_a));
		emit_load(e, size, H_RCX, FIELD(lf_b));
		emit_op_rr(e, size, t->lf == LF_ADD ? 0x01 : 0x39, H_RAX, H_RCX); /* add, cmp */
	} else if (t->lf == LF_INC || t->lf == LF_DEC) { /* CF from the real flags */
		emit_bt_mem(e, FIELD(fl), 0);
		emit_load(e, size, H_RAX, FIELD(lf_a));
		emit_ext_rr(e, size, 0xff, t->lf == LF_DEC, H_RAX);
	} else {
		return false;
	}
	return true;
}

static bool jit_cond(struct soft_cpu *c, unsigned cc)
{
	return cond(c, cc);
}

/* al = condition cc of the lazy flags, for a reader the translation does
 * not know the flags of (set by another block, say): a call of cond(), with
 * the registers stored back (the call clobbers r8-r10) and rdi, rsi kept. */
/* The lazy operation another block left, guessed to be the one pending when
 * this block is translated (what runs before a block is mostly the same
 * each time), for the first flag reader of a block, when it is an
 * operation host_flags can redo: a guard that it is that operation at
 * that size (its two jumps, slow, go to call_saved's call otherwise), and
 * the translation then knows it. */
static bool guess_flags(struct tr *t, uint8_t *slow[2])
{
	struct emit *e = &t->e;
	uint32_t op = t->c->lf_op;
	int size = t->c->lf_size;
	if (flags_known(t) || t->in_dup || (size != 1 && size != 2 && size != 4 && size != 8) ||
	    (op != LF_ADD && op != LF_SUB && op != LF_LOGIC && op != LF_INC && op != LF_DEC))
		return false;
	for (int k = 0; k < t->k; k++) /* what set the flags must be from before the block */
		if (t->writes[k] || t->reads[k] || t->partial[k] ||
		    opcode_of(t->b->insn[k].op)->fast == FAST_SHIFT_CL)
			return false;
	emit_grp1_mem(e, 4, 7, H_RDI, FIELD(lf_op), (int32_t)op);
	slow[0] = emit_jcc(e, 0x5);
	emit_grp1_mem(e, 1, 7, H_RDI, FIELD(lf_size), size);
	slow[1] = emit_jcc(e, 0x5);
	if (!slow[0] || !slow[1])
		return false;
	t->lf = op;
	t->lf_size = size;
	return true;
}

/* After the guessed path's code: jump over the way a wrong guess takes,
 * fn(c[, arg]) with the registers stored back and loaded again after (so
 * the cache is the same on both ways), to where the two meet. The lazy
 * operation is not known after. */
static void call_saved(struct tr *t, const void *fn, int arg, uint8_t *slow[2])
{
	struct emit *e = &t->e;
	emit_u8(e, 0xe9); /* jmp rel32 */
	uint8_t *join = e->p;
	emit_u32(e, 0);
	if (e->full)
		return;
	emit_patch(slow[0], e->p);
	emit_patch(slow[1], e->p);
	store_back(e, &t->cache);
	call_c(e, fn, arg);
	for (int i = 0; i < NCACHE; i++)
		if (t->cache.reg[i] >= 0)
			emit_load(e, 8, cache_host[i], REG(t->cache.reg[i]));
	if (!e->full)
		emit_patch(join, e->p);
	t->lf = LF_NONE;
	t->hf_at = NULL;
}

static void call_cond(struct tr *t, uint8_t cc)
{
	store_back(&t->e, &t->cache);
	cache_clear(t);
	call_c(&t->e, (const void *)jit_cond, cc);
}

static bool tr_jcc(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	uint8_t *not_taken, *slow[2];
	if (host_flags(t)) {
		not_taken = emit_jcc(e, (d->op & 15) ^ 1);
	} else if (guess_flags(t, slow) && host_flags(t)) {
		emit_setcc(e, d->op & 15, H_RAX); /* as cond() would answer */
		call_saved(t, (const void *)jit_cond, d->op & 15, slow);
		emit_bytes(e, (const uint8_t[]){0x84, 0xc0}, 2); /* test al, al */
		not_taken = emit_jcc(e, 0x4);
	} else {
		call_cond(t, d->op & 15);
		emit_bytes(e, (const uint8_t[]){0x84, 0xc0}, 2); /* test al, al */
		not_taken = emit_jcc(e, 0x4);
	}
	emit_exit(t, target_of(d));
	if (not_taken)
		emit_patch(not_taken, e->p);
	return true;
}

/* CMOVcc r, r/m: the source is read (and may fault) whatever the
 * condition, and a 32-bit destination is zero-extended either way. */
static bool tr_cmov(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	int size = d->opsize;
	if (!flags_known(t)) { /* r11 = cond(), then rax = the source or the old value */
		t->reads[t->k] = true;
		call_cond(t, d->op & 15);
		emit_movzx(e, 1, H_R11, H_RAX, false);
		rm_load(t, d, size, H_RAX);
		get_reg(t, 8, H_RCX, d->reg);
		emit_op_rr(e, 4, 0x85, H_R11, H_R11);
		emit_cmov(e, 0x4, H_RAX, H_RCX); /* cmovz */
		set_reg(t, size, d->reg);
		return true;
	}
	rm_load(t, d, size, H_R11);
	if (!host_flags(t))
		return false;
	get_reg(t, 8, H_RAX, d->reg);
	emit_cmov(e, d->op & 15, H_RAX, H_R11);
	set_reg(t, size, d->reg);
	return true;
}

/* SETcc of a register's low byte (not AH-BH: without REX, 4-7 name them)
 * or of memory: the condition goes to r11 first (a memory operand's probe
 * changes the host's flags), from the host's flags or from cond(). */
static bool tr_setcc(struct tr *t, const struct insn *d)
{
	struct emit *e = &t->e;
	uint8_t cc = d->op & 15;
	if (!d->is_mem && !d->rex && d->rm >= 4 && d->rm < 8)
		return false;
	if (host_flags(t)) {
		emit_setcc(e, cc, H_R11);
	} else {
		call_cond(t, cc);
		emit_movzx(e, 1, H_R11, H_RAX, false);
	}
	if (d->is_mem) {
		ea(t, d, true);
		probe(t, 1, ACC_WRITE);
		emit_bytes(e, (const uint8_t[]){0x44, 0x88, 0x18}, 3); /* mov [rax], r11b */
		return true;
	}
	get_reg(t, 8, H_RAX, d->rm);
	emit_and_imm(e, H_RAX, -256);
	emit_alu_rr(e, 0x09, H_RAX, H_R11);
	put_reg(t, H_RAX, d->rm);
	return true;
}

static bool tr_jmp(struct tr *t, const struct insn *d)
{
	emit_exit(t, target_of(d));
	t->ended = true;
	return true;
}

static bool tr_call(struct tr *t, const struct insn *d)
{
	emit_push(t, -1, d->start + d->len);
	emit_exit(t, target_of(d));
	t->ended = true;
	return true;
}

/* Group 5: INC and DEC; CALL and JMP through a register (the forms
 * choose_fast gave a handler: 64 bits, a register operand) leave through the
 * indirect-branch table as RET does, the target read before the push. */
static bool tr_group5(struct tr *t, const struct insn *d)
{
	int r = d->reg & 7;
	if (r < 2)
		return tr_incdec(t, d);
	if ((r != 2 && r != 4) || d->is_mem)
		return false;
	get_reg(t, 8, H_R11, d->rm);
	if (r == 2)
		emit_push(t, -1, d->start + d->len);
	emit_alu_rr(&t->e, 0x89, H_RCX, H_R11);
	emit_exit_ind(t);
	t->ended = true;
	return true;
}

static bool tr_ret(struct tr *t, const struct insn *d)
{
	(void)d;
	emit_pop(t);
	emit_exit_ind(t);
	t->ended = true;
	return true;
}

static bool tr_nop(struct tr *t, const struct insn *d)
{
	return true;
}

/* own: the rule checks its forms and operand size itself; the others take
 * only instructions that choose_fast gave a handler, of 32 or 64 bits. The
 * own families include forms the interpreter runs in exec_in_block (bytes,
 * 16-bit MOV and ALU operations, ADC/SBB, NOT/NEG, INC/DEC of memory,
 * MOV r8, imm8, MOVSX, BSWAP). */
static const struct rule_info {
	rule fn;
	bool own;
} rules[] = {
    [FAST_ALU_RM_R] = {tr_alu, true},	    [FAST_ALU_R_RM] = {tr_alu, true},
    [FAST_ALU_AX_I] = {tr_alu, true},	    [FAST_ALU_IMM] = {tr_alu, true},
    [FAST_TEST] = {tr_alu, false},	    [FAST_TEST_AX_I] = {tr_alu, false},
    [FAST_GROUP3] = {tr_group3, true},	    [FAST_MOV_STORE] = {tr_mov, true},
    [FAST_MOV_LOAD] = {tr_mov, true},	    [FAST_MOV_RM_IMM] = {tr_mov, true},
    [FAST_MOV_R_IMM] = {tr_mov_imm, false}, [FAST_LEA] = {tr_lea, false},
    [FAST_MOVSXD] = {tr_movsxd, false},	    [FAST_PUSH] = {tr_push, false},
    [FAST_POP] = {tr_pop, false},	    [FAST_GROUP5] = {tr_group5, true},
    [FAST_NOP] = {tr_nop, false},	    [FAST_SHIFT_I] = {tr_shift, false},
    [FAST_SHIFT_1] = {tr_shift, false},	    [FAST_SHIFT_CL] = {tr_shift_cl, false},
    [FAST_IMUL_I] = {tr_imul, false},	    [FAST_IMUL_RM] = {tr_imul, false},
    [FAST_JCC] = {tr_jcc, false},	    [FAST_JMP] = {tr_jmp, false},
    [FAST_CALL] = {tr_call, false},	    [FAST_RET] = {tr_ret, false},
    [FAST_MOVZX8] = {tr_movzx, false},	    [FAST_MOVZX16] = {tr_movzx, false},
    [FAST_CMOV] = {tr_cmov, false},	    [FAST_SETCC] = {tr_setcc, false},
    [FAST_TEST8] = {tr_test8, true},	    [FAST_MOV_STORE8] = {tr_mov8, true},
    [FAST_MOV_LOAD8] = {tr_mov8, true},	    [FAST_MOV8_IMM] = {tr_mov8, true},
    [FAST_ALU8] = {tr_alu8, true},	    [FAST_ALU8_AL] = {tr_alu8, true},
    [FAST_ALU8_IMM] = {tr_alu8, true},	    [FAST_TEST8_IMM] = {tr_alu8, true},
    [FAST_TEST8_AL] = {tr_alu8, true},	    [FAST_SHIFT8] = {tr_shift8, true},
    [FAST_MOV8_R_IMM] = {tr_mov8, true},    [FAST_MOVSX] = {tr_movzx, true},
    [FAST_BSWAP] = {tr_bswap, true},
};

static rule rule_of(const struct insn *d)
{
	unsigned fam = opcode_of(d->op)->fast;
	if (fam >= sizeof(rules) / sizeof(rules[0]) || d->fn == exec_insn || d->lock || d->rep)
		return NULL;
	const struct rule_info *r = &rules[fam];
	if (!r->own && (d->fn == exec_in_block || !size48(d)))
		return NULL;
	return r->fn;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether two misses leave the same way: at one instruction, storing back
 * the same registers. */
static bool same_way(const struct miss *a, const struct miss *b)
{
	if (a->k != b->k || a->pend != b->pend || a->cache.dirty != b->cache.dirty)
		return false;
	for (int i = 0; i < NCACHE; i++)
		if (a->cache.dirty & 1 << i && a->cache.reg[i] != b->cache.reg[i])
			return false;
	return true;
}

/* Translate b's leading run of instructions with rules into one piece of
 * host code (at most what one block holds) and make it b's entry. A first
 * pass finds where flags are dead and which registers a loop's back-edge
 * has cached; the second emits with that (a third without the copy of a
 * loop's head, when the second could not make it). */
static bool translate(struct soft_cpu *c, struct block *b)
{
	struct jit *j = c->jit;
	if (j->used > JIT_CODE_SIZE - 64)
		return false;
	struct tr t;
	bool exits[BLOCK_INSNS], dead[BLOCK_INSNS] = {0}, looped = false, live_in = true;
	bool dup = false;
	int dup_w = 0;
	struct cache loop;
	int n = b->n;
	for (int pass = 0;; pass++) {
		t = (struct tr){
		    .c = c, .b = b, .hf_k = -1, .dup = dup, .dup_w = dup_w, .ptr_k = -1};
		cache_clear(&t);
		if (looped) { /* loaded at the start, so as good as written */
			t.cache = loop;
			for (int i = 0; i < NCACHE; i++)
				if (loop.reg[i] >= 0)
					t.cache.dirty |= (uint8_t)(1 << i);
		}
		t.pre = t.cache;
		memcpy(t.dead, dead, sizeof(dead));
		t.live_in = live_in;
		t.e.p = j->rw + j->used;
		t.e.end = j->rw + JIT_CODE_SIZE;
		emit_entry(&t.e);
		t.start = t.e.p;
		for (int i = 0; i < NCACHE; i++)
			if (t.pre.reg[i] >= 0)
				emit_load(&t.e, 8, cache_host[i], REG(t.pre.reg[i]));
		t.head = t.e.p;
		for (; t.k < n; t.k++) {
			rule r = rule_of(&b->insn[t.k]);
			uint8_t *mark = t.e.p;
			int nmiss = t.nmiss, nlinks = t.nlinks;
			struct cache cache = t.cache;
			t.at[t.k] = mark;
			t.cache_at[t.k] = cache;
			if (!r || !r(&t, &b->insn[t.k])) {
				t.e.p = mark; /* a rule that declined may have emitted */
				t.nmiss = nmiss;
				t.nlinks = nlinks;
				t.cache = cache;
				break;
			}
			exits[t.k] = t.nmiss > nmiss;
			if (t.hf_k == t.k)
				t.hf_at = t.e.p;
		}
		t.at[t.k] = t.e.p;
		t.cache_at[t.k] = t.cache;
		if (t.k == 0)
			return true;
		if (pass > 0) {
			if (t.k < b->n) {
				store_pending(&t);
				store_back(&t.e, &t.cache);
				to_interpreter(&t.e, b, t.k);
			} else if (!t.ended) {
				emit_exit(&t, b->end);
			}
			if (!t.dup_failed)
				break;
			dup = false; /* again, the back-edge storing the flags */
			continue;
		}
		/* Backwards: flags are live where the translation ends (the
		 * interpreter or the next block goes on), before a reader and
		 * before an instruction that may leave for the interpreter. */
		n = t.k;
		bool live = true;
		for (int k = n - 1; k >= 0; k--) {
			dead[k] = t.writes[k] && !live;
			if (t.writes[k] && !t.partial[k])
				live = false; /* a partial writer reads what it keeps if live */
			if (t.reads[k] || exits[k])
				live = true;
		}
		live_in = live;
		looped = t.looped;
		loop = t.loop;
		/* The head a loop's copy repeats: up to the first instruction
		 * that sets flags, none reading them (they are pending) nor
		 * shifting by CL (which may set them, unseen by this pass), and
		 * not the closing CMP (whose flags are the pending ones). */
		bool plain = true;
		for (dup_w = 0; dup_w < n - 2 && !t.writes[dup_w] && !t.reads[dup_w]; dup_w++)
			plain &= opcode_of(b->insn[dup_w].op)->fast != FAST_SHIFT_CL;
		dup = plain && looped && live_in && t.writes[dup_w] && !t.reads[dup_w] &&
		      !t.partial[dup_w] && dup_w < n - 2;
	}
	uint8_t *start = j->rw + j->used;
	/* A way to the interpreter per instruction and registers to store back */
	for (int i = 0; i < t.nmiss; i++) {
		if (i > 0 && same_way(&t.miss[i - 1], &t.miss[i]))
			continue;
		uint8_t *stub = t.e.p;
		if (t.miss[i].pend)
			store_pending(&t);
		store_back(&t.e, &t.miss[i].cache);
		to_interpreter(&t.e, b, t.miss[i].k);
		for (int m = i; m < t.nmiss && same_way(&t.miss[i], &t.miss[m]); m++)
			if (!t.e.full)
				emit_patch(t.miss[m].rel, stub);
	}
	if (t.e.full || j->nentries == JIT_MAX_BLOCKS)
		return false;
	size_t len = (size_t)(t.e.p - start);
	void *code = j->rx + (start - j->rw), *body = j->rx + (t.start - j->rw);
	j->entry[j->nentries++] = (struct jit_entry){b, code, body, b->insn[0].fn};
	j->nlinks += t.nlinks;
	b->insn[0].fn = (void (*)(struct soft_cpu *, struct insn *))code;
	if (t.k == b->n)
		b->jit_code = body;
	j->used = (j->used + len + 15) & ~(size_t)15;
	counter_add(&j->stat_blocks, 1);
	counter_add(&j->stat_insns, (unsigned)t.k);
	counter_add(&j->stat_bytes, len);
	return true;
}

void jit_block(struct soft_cpu *c, struct block *b)
{
	if (b->generic || c->mode != 8)
		return;
	uint64_t t0 = now_ns();
	if (!translate(c, b)) { /* the buffer is full: start again empty */
		jit_flush(c);
		translate(c, b);
	}
	counter_add(&c->jit->stat_ns, now_ns() - t0);
}

void jit_link(struct soft_cpu *c, struct block *b)
{
	struct jit *j = c->jit;
	int x = c->jit_exit;
	c->jit_exit = 0;
	if (!b->jit_code)
		return;
	const struct block_tag *tag = &c->tags[b->tag];
	uint64_t rip = b->insn[0].start;
	if (tag->lin != rip || tag->rip != rip || tag->epoch != tag_epoch(c, tag))
		return; /* not cached (not in RAM), or not validated now */
	uint64_t chain =
	    __atomic_load_n(tag->global ? &c->gchain_epoch : &c->chain_epoch, __ATOMIC_RELAXED);
	struct jit_target to = {.epoch = chain, .b = b, .code = b->jit_code};
	if (x == JIT_EXIT_IND) {
		j->ind[jit_ind_hash(rip)] = (struct jit_ind){.rip = rip, .key = tag->key, .to = to};
		counter_add(&j->stat_links, 1);
		return;
	}
	struct jit_link *l = &j->link[x - 1];
	if (l->target != rip || l->key != tag->key)
		return; /* something else ran in between: an interrupt, say */
	if (l->to.epoch == to.epoch && l->to.b == b)
		return; /* linked already: the chain ran out of budget there */
	l->to = to;
	counter_add(&j->stat_links, 1);
}
