/* The soft engine: the engine_ops table, VM and vCPU lifetime, the run loop
 * (fetch-decode-execute with interrupt and exit checks between instructions),
 * state import/export and the trap statistics.
 *
 * SMP: one host thread per vCPU (the machine's), each running vcpu_run on its
 * own soft_cpu. Guest memory is shared host memory, LOCKed instructions are
 * host atomics, and the interrupt controllers take their own lock. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engines/soft/intc/intc.h"
#include "engines/soft/jit/jit.h"
#include "engines/soft/soft.h"

struct engine_vcpu {
	struct soft_cpu c;
};

/* Instructions run between checks of timers (intc_poll). */
#define BATCH 4096

enum { AWAIT_NONE, AWAIT_IO, AWAIT_MMIO, AWAIT_SYSCALL };

const char *const trap_names[NR_TRAPS] = {
    [TRAP_HLT] = "hlt",
    [TRAP_IN] = "in",
    [TRAP_OUT] = "out",
    [TRAP_INS] = "ins",
    [TRAP_OUTS] = "outs",
    [TRAP_MOV_CR] = "mov_cr",
    [TRAP_MOV_DR] = "mov_dr",
    [TRAP_RDMSR] = "rdmsr",
    [TRAP_WRMSR] = "wrmsr",
    [TRAP_CPUID] = "cpuid",
    [TRAP_RDTSC] = "rdtsc",
    [TRAP_LGDT] = "lgdt",
    [TRAP_LIDT] = "lidt",
    [TRAP_LLDT] = "lldt",
    [TRAP_LTR] = "ltr",
    [TRAP_SGDT] = "sgdt_sidt",
    [TRAP_STR] = "sldt_str_lar_lsl",
    [TRAP_INVLPG] = "invlpg",
    [TRAP_CLI] = "cli",
    [TRAP_STI] = "sti",
    [TRAP_POPF] = "popf",
    [TRAP_PUSHF] = "pushf",
    [TRAP_IRET] = "iret",
    [TRAP_INT] = "int",
    [TRAP_SYSCALL] = "syscall",
    [TRAP_SYSRET] = "sysret",
    [TRAP_SWAPGS] = "swapgs",
    [TRAP_MOV_SEG] = "mov_seg",
    [TRAP_FAR] = "far_transfer",
    [TRAP_CLTS] = "clts",
    [TRAP_WBINVD] = "wbinvd",
    [TRAP_XSETBV] = "xsetbv",
    [TRAP_LMSW] = "lmsw",
    [TRAP_SMSW] = "smsw",
    [TRAP_RDPMC] = "rdpmc",
    [TRAP_MMIO] = "mmio",
    [TRAP_EXCEPTION] = "exception",
    [TRAP_INTERRUPT] = "interrupt",
};

static const char *const class_names[NR_CLASSES] = {"innocuous", "sensitive", "privileged"};

/* ---- Glue to the interrupt controllers ---- */

bool soft_pio(struct soft_cpu *c, uint16_t port, void *data, unsigned size, bool write)
{
	return intc_pio(c->vm->intc, port, data, size, write);
}

bool soft_mmio(struct soft_cpu *c, uint64_t gpa, void *data, unsigned size, bool write)
{
	return intc_mmio(c->vm->intc, c->index, gpa, data, size, write);
}

int soft_intc_msr(struct soft_cpu *c, uint32_t msr, uint64_t *val, bool write)
{
	return intc_msr(c->vm->intc, c->index, msr, val, write);
}

uint64_t soft_tsc(struct soft_cpu *c)
{
	return intc_rdtsc(c->vm->intc, c->index);
}

uint32_t soft_intc_cpuid1_ecx(struct soft_cpu *c)
{
	(void)c;
	return (1u << 21) | (1u << 24); /* x2APIC, TSC-deadline timer */
}

/* CPUID.1:EDX.APIC reads as IA32_APIC_BASE.EN says, as on hardware. */
uint32_t soft_intc_cpuid1_edx(struct soft_cpu *c)
{
	return intc_apic_enabled(c->vm->intc, c->index) ? 1u << 9 : 0;
}

uint32_t soft_intc_kvm_features(struct soft_cpu *c)
{
	(void)c;
	return (1u << 3) | (1u << 24); /* kvmclock (new MSRs), stable bit */
}

uint64_t soft_cr8_read(struct soft_cpu *c)
{
	return intc_cr8_read(c->vm->intc, c->index);
}

void soft_cr8_write(struct soft_cpu *c, uint64_t v)
{
	intc_cr8_write(c->vm->intc, c->index, v);
}

/* The interrupt controller writes what it asks for (kvmclock's page). */
static void *intc_mem(void *ctx, uint64_t gpa, uint64_t len)
{
	uint8_t *p = phys_ptr(ctx, gpa, len, true);
	for (uint64_t o = 0; p && o < len; o += 4096)
		phys_written(ctx, p + o);
	if (p && len)
		phys_written(ctx, p + len - 1);
	return p;
}

/* ---- VM ---- */

static int soft_vm_create(const struct engine_vm_config *cfg, struct engine_vm **out, char *err,
			  size_t errlen)
{
	if (cfg->ncpus < 1 || cfg->ncpus > SOFT_MAX_CPUS) {
		snprintf(err, errlen, "soft engine: %d vCPUs requested, it supports 1 to %d",
			 cfg->ncpus, SOFT_MAX_CPUS);
		return -EINVAL;
	}
	struct engine_vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "soft engine: out of memory");
		return -ENOMEM;
	}
	vm->cfg = *cfg;
	pthread_mutex_init(&vm->lock, NULL);
	vm->intc = intc_create(cfg->ncpus, intc_mem, vm);
	if (!vm->intc) {
		snprintf(err, errlen, "soft engine: cannot create interrupt controllers");
		free(vm);
		return -ENOMEM;
	}
	if (cfg->tsc_khz)
		intc_set_tsc_khz(vm->intc, cfg->tsc_khz);
	*out = vm;
	return 0;
}

static void soft_vm_destroy(struct engine_vm *vm)
{
	if (!vm)
		return;
	intc_destroy(vm->intc);
	for (int i = 0; i < vm->nslots; i++) {
		free(vm->slot[i].code);
		free(vm->slot[i].dirty);
	}
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

static int soft_map_memory(struct engine_vm *vm, unsigned slot, uint64_t gpa, uint64_t size,
			   void *hva, unsigned flags)
{
	if (slot >= SOFT_MAX_SLOTS || (gpa & 0xfff) || (size & 0xfff) || gpa + size < gpa)
		return -EINVAL;
	uint64_t *code = calloc(size >> 12, sizeof(*code));
	if (!code)
		return -ENOMEM;
	free(vm->slot[slot].code);
	vm->slot[slot] =
	    (struct soft_slot){.gpa = gpa, .size = size, .hva = hva, .flags = flags, .code = code};
	if ((int)slot >= vm->nslots)
		vm->nslots = (int)slot + 1;
	/* cached translations may point at the old backing */
	for (int i = 0; i < SOFT_MAX_CPUS; i++)
		if (vm->cpu[i])
			tlb_flush(vm->cpu[i], false);
	return 0;
}

/* Arming a page's code word routes its next write through code_written,
 * which records it (mmu.c); vCPUs are parked, so no write is in flight. */
static int soft_dirty_log(struct engine_vm *vm, bool on)
{
	for (int i = 0; i < vm->nslots; i++) {
		struct soft_slot *s = &vm->slot[i];
		uint64_t pages = s->size >> 12;
		uint64_t *d = on ? calloc((pages + 63) / 64, sizeof(*d)) : NULL;
		if (on && !d)
			return -ENOMEM;
		free(__atomic_exchange_n(&s->dirty, d, __ATOMIC_ACQ_REL));
		for (uint64_t p = 0; on && p < pages; p++)
			__atomic_fetch_or(&s->code[p], DIRTY_ARMED, __ATOMIC_RELAXED);
	}
	return 0;
}

static int soft_dirty_collect(struct engine_vm *vm, unsigned slot, uint64_t *bitmap)
{
	if ((int)slot >= vm->nslots || !vm->slot[slot].dirty)
		return -EINVAL;
	struct soft_slot *s = &vm->slot[slot];
	for (uint64_t w = 0; w < ((s->size >> 12) + 63) / 64; w++) {
		uint64_t bits = __atomic_exchange_n(&s->dirty[w], 0, __ATOMIC_RELAXED);
		bitmap[w] |= bits;
		for (; bits; bits &= bits - 1)
			__atomic_fetch_or(&s->code[w * 64 + (unsigned)__builtin_ctzll(bits)],
					  DIRTY_ARMED, __ATOMIC_RELAXED);
	}
	return 0;
}

/* ---- vCPU ---- */

static void seg_reset(struct seg *s, uint16_t sel, uint64_t base, uint8_t type)
{
	*s = (struct seg){
	    .base = base, .limit = 0xffff, .sel = sel, .type = type, .s = 1, .present = 1};
}

/* Power-on / INIT state (Intel SDM Vol. 3 9.1.1). */
static void cpu_reset(struct soft_cpu *c)
{
	memset(c->r, 0, sizeof(c->r));
	c->r[R_RDX] = 0x600;
	c->rip = 0xfff0;
	c->fl = RFLAGS_FIXED;
	c->lf_op = LF_NONE;
	seg_reset(&c->seg[SEG_CS], 0xf000, 0xffff0000, 0xb);
	for (int s = 0; s < SEG_TR; s++)
		if (s != SEG_CS)
			seg_reset(&c->seg[s], 0, 0, 3);
	seg_reset(&c->seg[SEG_TR], 0, 0, 0xb);
	c->seg[SEG_TR].s = 0;
	seg_reset(&c->seg[SEG_LDTR], 0, 0, 2);
	c->seg[SEG_LDTR].s = 0;
	c->gdt = (struct dtable){0, 0xffff};
	c->idt = (struct dtable){0, 0xffff};
	c->cr0 = CR0_ET | CR0_NW | CR0_CD;
	c->cr2 = c->cr3 = c->cr4 = c->cr8 = 0;
	c->efer = 0;
	c->xcr0 = XSTATE_X87;
	c->dr6 = 0xffff0ff0;
	c->dr7 = 0x400;
	c->pat = 0x0007040600070406ull;
	c->misc_enable = 1; /* fast strings */
	c->halted = false;
	c->interrupt_shadow = false;
	c->nmi_masked = c->nmi_pending = false;
	c->delivering = -1;
	c->pending_exc = c->pending_irq = -1;
	fpu_reset(c);
	tlb_flush(c, false);
	update_mode(c);
}

/* The decoded-block array (11 MiB for `popek exec`, 176 MiB for a VM):
 * transparent huge pages where the host has them, so the first touches of a
 * short run cost a few 2 MiB faults rather than one 4 KiB fault per block
 * (they were most of the start-up time of `popek exec` on this engine), and
 * slots are handed out from the front (block_tag.slot), so only the huge pages
 * that hold blocks are ever touched. */
static struct block *blocks_alloc(const struct soft_cpu *c)
{
	/* 2 MiB-aligned: the host backs only whole aligned 2 MiB extents with
	 * huge pages, and the front is where the slots go first (an 11 MiB
	 * mapping began 1 MiB into one: 256 faults of 4 KiB) */
	const size_t huge = 2u << 20;
	size_t bytes = block_count(c) * sizeof(struct block);
	uint8_t *m =
	    mmap(NULL, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uint8_t *at = (uint8_t *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
	if (at > m)
		munmap(m, (size_t)(at - m));
	if (m + huge > at)
		munmap(at + bytes, (size_t)(m + huge - at));
	madvise(at, bytes, MADV_HUGEPAGE); /* advice: without THP it still works */
	return (struct block *)at;
}

static void blocks_free(const struct soft_cpu *c)
{
	if (c->blocks)
		munmap(c->blocks, block_count(c) * sizeof(struct block));
}

static int soft_vcpu_create(struct engine_vm *vm, int index, struct engine_vcpu **out)
{
	if (index < 0 || index >= vm->cfg.ncpus || vm->cpu[index])
		return -EINVAL;
	struct engine_vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	struct soft_cpu *c = &v->c;
	c->block_bits = vm->cfg.syscall_exits ? BLOCK_CACHE_BITS_EXEC : BLOCK_CACHE_BITS_VM;
	/* the tags are one cache line per set */
	c->blocks = blocks_alloc(c);
	c->tags = aligned_alloc(64, block_count(c) * sizeof(*c->tags));
	if (!c->blocks || !c->tags) {
		blocks_free(c);
		free(c->tags);
		free(v);
		return -ENOMEM;
	}
	block_cache_init(c);
	if (vm->cfg.jit) {
		int rc = jit_create(c, vm->cfg.jit_after ? vm->cfg.jit_after : JIT_AFTER);
		if (rc) {
			blocks_free(c);
			free(c->tags);
			free(v);
			return rc;
		}
	}
	c->vm = vm;
	c->index = index;
	c->code_bit = 1ull << index;
	c->gchain_epoch = 1; /* odd: see struct soft_cpu */
	c->attn = intc_attention(vm->intc, index);
	atomic_init(&c->kick, false);
	cpu_reset(c);
	c->mp_state = index == 0 ? MP_RUNNABLE : MP_WAIT_FOR_SIPI;
	vm->cpu[index] = c;
	*out = v;
	return 0;
}

static void soft_vcpu_destroy(struct engine_vcpu *v)
{
	if (!v)
		return;
	v->c.vm->cpu[v->c.index] = NULL;
	jit_destroy(&v->c);
	blocks_free(&v->c);
	free(v->c.tags);
	free(v);
}

static void soft_vcpu_kick(struct engine_vcpu *v)
{
	atomic_store(&v->c.kick, true);
	intc_kick(v->c.vm->intc, v->c.index);
}

/* NMI, INIT and SIPI from the local APIC. */
static void take_events(struct soft_cpu *c)
{
	uint8_t sipi = 0;
	unsigned ev = intc_take_events(c->vm->intc, c->index, &sipi);
	if (ev & INTC_EV_INIT) {
		cpu_reset(c);
		c->mp_state = c->index ? MP_WAIT_FOR_SIPI : MP_RUNNABLE;
	}
	if ((ev & INTC_EV_SIPI) && c->mp_state == MP_WAIT_FOR_SIPI) {
		c->seg[SEG_CS].sel = (uint16_t)(sipi << 8);
		c->seg[SEG_CS].base = (uint64_t)sipi << 12;
		c->rip = 0;
		c->mp_state = MP_RUNNABLE;
	}
	if (ev & INTC_EV_NMI)
		c->nmi_pending = true;
}

/* Something for the run loop: an event, a deliverable interrupt or a kick. */
static inline bool attention(struct soft_cpu *c)
{
	unsigned attn = atomic_load_explicit(c->attn, memory_order_relaxed);
	return (attn & INTC_ATTN_EVENT) || ((attn & INTC_ATTN_IRQ) && (c->fl & FL_IF)) ||
	       atomic_load_explicit(&c->kick, memory_order_relaxed);
}

/* One block: its instructions run until the last one (which may branch),
 * or until one exits or writes this block's code. A block that branches back
 * to its own start (a loop) runs again, up to budget instructions, without
 * being looked up again while nothing invalidated it. */
static inline int run_block(struct soft_cpu *c, int budget)
{
	/* Interrupts are only taken between blocks, so the one-instruction
	 * shadow after STI / MOV SS ends with the first instruction of a block;
	 * so does RF (set by IRET), which only an interrupt taken before that
	 * instruction still saw (instruction breakpoints are not implemented). */
	c->interrupt_shadow = false;
	c->fl &= ~(uint64_t)FL_RF;
	c->insn_rip = c->rip; /* a fetch fault belongs to the first instruction */
	c->insn_rsp = c->r[R_RSP];
	c->last = NULL;
	struct block *b = next_block(c);
	c->cur_block = b;
	if (c->jit && b->runs < c->jit->after && ++b->runs == c->jit->after)
		jit_block(c, b); /* hot: translate before running it */
	if (c->jit_exit)
		jit_link(c, b); /* the translation that ran last goes on here */
	if (b->generic) {
		c->last = b->insn;
		counter_add(&c->stat_insns, 1);
		exec_insn(c, b->insn);
		return 1;
	}
	/* Straight-line handlers leave RIP alone: it is set once, here, and
	 * restored from c->last (which an instruction sets before it may fault
	 * or stop the block) when an instruction faults. The handlers chain
	 * to each other (exec_fast.c) and return here at the block's end. */
	uint64_t epoch = epoch_now(c);
	int done = 0;
	for (;;) {
		c->rip = b->end;
		c->stop = false;
		c->jit_exit = 0;
		c->jit_limit = budget - done;
		b->insn[0].fn(c, b->insn);
		/* A translation may have jumped on into others (chaining): the
		 * blocks it left ran whole, and it ended in c->cur_block. */
		int chained = (int)c->jit_chained;
		c->jit_chained = 0;
		b = c->cur_block;
		if (__builtin_expect(c->stop, 0)) {
			/* ended early by the instruction at c->last */
			int part = (int)(c->last - b->insn) + 1;
			if (part < b->n)
				c->rip = c->last->start + c->last->len;
			counter_add(&c->stat_insns, (unsigned)(chained + part));
			return done + chained + part;
		}
		/* counted per pass: a fault in a later pass counts its own part */
		counter_add(&c->stat_insns, (unsigned)(chained + b->n));
		done += chained + b->n;
		if (c->rip != b->insn[0].start || epoch_now(c) != epoch || done >= budget ||
		    attention(c))
			return done;
		if (c->jit_exit)
			jit_link(c, b);
	}
}

/* Up to BATCH instructions, until an exit, HLT, an interrupt or a kick. Kept
 * out of vcpu_run so that its locals live in registers (no setjmp here). */
static __attribute__((noinline)) void run_batch(struct soft_cpu *c)
{
	int n = 0;
	/* A guest that runs code another vCPU or a device wrote without the
	 * serialization x86 asks for (a spin on a flag, then a jump) still sees
	 * it within a bounded number of instructions, as hardware's snooping
	 * would make it: every 4096 batches (some 16 M instructions) all
	 * cached code is compared again. (Writes by vCPUs and devices already
	 * reach the holders at once, code_written and soft_ram_written: this
	 * is the bound for any that did not; each costs every translated
	 * jump's link, so not more often.) */
	if ((++c->batches & 4095) == 0)
		epoch_bump(c);
	do {
		n += run_block(c, BATCH - n);
		if (c->exit_pending || c->halted || attention(c))
			break;
	} while (n < BATCH);
}

static void deliver_interrupts(struct soft_cpu *c, unsigned attn)
{
	if (c->interrupt_shadow)
		return;
	if (c->nmi_pending && !c->nmi_masked) {
		c->nmi_pending = false;
		c->nmi_masked = true;
		c->halted = false;
		c->insn_rip = c->rip;
		c->insn_rsp = c->r[R_RSP];
		trap(c, TRAP_INTERRUPT);
		deliver_event(c, EXC_NMI, false, 0, false, c->rip);
		return;
	}
	if ((attn & INTC_ATTN_IRQ) && (c->fl & FL_IF)) {
		int v = intc_ack(c->vm->intc, c->index);
		if (v < 0)
			return;
		c->halted = false;
		c->insn_rip = c->rip;
		c->insn_rsp = c->r[R_RSP];
		trap(c, TRAP_INTERRUPT);
		deliver_event(c, v, false, 0, false, c->rip);
	}
}

/* An instruction was abandoned (fault, or an exit to replay it): back to
 * its first byte. Only the general dispatcher's instructions can have moved
 * RSP before faulting (the fast handlers write memory first), so only they
 * saved it. */
static void restore_insn(struct soft_cpu *c)
{
	if (c->last && c->last->fn != exec_insn) /* the block's count was not added */
		counter_add(&c->stat_insns, (uint64_t)(c->last - c->cur_block->insn) + 1);
	counter_add(&c->stat_insns, (uint64_t)c->jit_chained); /* nor the chain's before it */
	c->jit_chained = 0;
	if (c->last) {
		c->rip = c->last->start;
		if (c->last->fn == exec_insn || c->last->fn == exec_in_block)
			c->r[R_RSP] = c->insn_rsp;
	} else {
		c->rip = c->insn_rip;
		c->r[R_RSP] = c->insn_rsp;
	}
	/* a fault while delivering this one restores the same state */
	c->insn_rip = c->rip;
	c->insn_rsp = c->r[R_RSP];
	c->last = NULL;
}

/* The instruction whose device accesses the machine has just done runs again,
 * alone and through the general dispatcher, so that nothing after it runs
 * while the log of its accesses (mmu.c) is in use. */
static void replay_insn(struct soft_cpu *c)
{
	c->mmio_pos = 0;
	c->insn_rip = c->rip;
	c->insn_rsp = c->r[R_RSP];
	c->last = NULL;
	decode(c, &c->replay, c->rip, c->replay_bytes);
	c->replay.fn = exec_insn;
	c->last = &c->replay;
	c->stat_insns++;
	exec_insn(c, &c->replay);
	c->last = NULL;
}

/* popek exec's result of an EXIT_SYSCALL (engine_vm_config.syscall_exits). */
static void syscall_done(struct soft_cpu *c, const struct vcpu_exit *exit)
{
	c->r[R_RAX] = exit->sys.ret;
	if (exit->sys.flush)
		tlb_flush(c, false);
}

static int soft_vcpu_run(struct engine_vcpu *v, struct vcpu_exit *exit)
{
	struct soft_cpu *c = &v->c;
	struct soft_intc *ic = c->vm->intc;

	/* Complete the exit the machine just handled. */
	bool mmio = c->await == AWAIT_MMIO;
	if (c->await == AWAIT_IO)
		c->io_in_ready = true;
	else if (mmio)
		mmio_done(c, exit);
	else if (c->await == AWAIT_SYSCALL)
		syscall_done(c, exit);
	if (c->regs_lent && exit->io.regs_dirty) {
		const struct exit_regs *r = &exit->io.regs;
		c->r[R_RAX] = r->rax;
		c->r[R_RBX] = r->rbx;
		c->r[R_RCX] = r->rcx;
		c->r[R_RDX] = r->rdx;
		c->r[R_RSI] = r->rsi;
		c->r[R_RDI] = r->rdi;
	}
	c->regs_lent = false;
	c->await = AWAIT_NONE;
	c->exit = exit;
	if (mmio && mmio_next_exit(c)) { /* more accesses of the same instruction */
		c->await = AWAIT_MMIO;
		return 0;
	}
	/* Devices tell of their writes to RAM (soft_ram_written); popek exec's
	 * system calls write the program's memory and page tables freely. */
	if (c->vm->cfg.syscall_exits)
		epoch_bump(c);
	c->exit_pending = false;
	c->last = NULL;

	switch (setjmp(c->jb)) {
	case JMP_EXCEPTION:
		restore_insn(c);
		mmio_reset(c); /* the instruction is abandoned */
		handle_fault(c);
		break;
	case JMP_EXIT:
		restore_insn(c);
		c->await = exit->reason == EXIT_MMIO ? AWAIT_MMIO : AWAIT_IO;
		return 0;
	}
	/* An instruction waiting for its device data completes before any
	 * interrupt: the handler must not run into its replay. */
	if (c->mmio_replay) {
		c->mmio_replay = false;
		replay_insn(c);
	}
	if (c->mmio_out == c->mmio_n)
		mmio_reset(c);

	if (c->pending_exc >= 0) {
		int vec = c->pending_exc;
		c->pending_exc = -1;
		c->insn_rip = c->rip;
		c->insn_rsp = c->r[R_RSP];
		deliver_exception(c, vec, c->pending_exc_has_err, c->pending_exc_err);
	}
	if (c->pending_irq >= 0) {
		int vec = c->pending_irq;
		c->pending_irq = -1;
		c->insn_rip = c->rip;
		c->insn_rsp = c->r[R_RSP];
		deliver_event(c, vec, false, 0, false, c->rip);
	}
	for (;;) {
		if (c->exit_pending) {
			if (exit->reason == EXIT_SYSCALL)
				c->await = AWAIT_SYSCALL;
			else if (mmio_next_exit(c))
				c->await = AWAIT_MMIO;
			return 0;
		}
		if (atomic_load_explicit(&c->kick, memory_order_relaxed) &&
		    atomic_exchange(&c->kick, false)) {
			exit->reason = EXIT_KICKED;
			return 0;
		}
		unsigned attn = atomic_load_explicit(c->attn, memory_order_acquire);
		if (attn & INTC_ATTN_EVENT)
			take_events(c);
		if (c->mp_state == MP_WAIT_FOR_SIPI) {
			intc_wait(ic, c->index, false);
			continue;
		}
		/* An instruction waiting for its port data completes before any
		 * interrupt: the handler must not run into its replay. */
		if ((attn || c->nmi_pending) && !c->io_in_ready)
			deliver_interrupts(c, attn);
		if (c->halted) {
			intc_wait(ic, c->index, c->fl & FL_IF);
			attn = atomic_load_explicit(c->attn, memory_order_acquire);
			if ((attn & INTC_ATTN_IRQ) && (c->fl & FL_IF))
				c->halted = false;
			continue;
		}
		run_batch(c);
		/* port data belongs to the first instruction only */
		c->io_in_ready = false;
		c->last = NULL;
		intc_poll(ic, c->index);
	}
}

/* ---- State ---- */

static uint64_t *state_msr(struct soft_cpu *c, int idx)
{
	switch (idx) {
	case MSR_IDX_STAR:
		return &c->star;
	case MSR_IDX_LSTAR:
		return &c->lstar;
	case MSR_IDX_CSTAR:
		return &c->cstar;
	case MSR_IDX_SFMASK:
		return &c->sfmask;
	case MSR_IDX_KERNEL_GS_BASE:
		return &c->kernel_gs_base;
	case MSR_IDX_SYSENTER_CS:
		return &c->sysenter_cs;
	case MSR_IDX_SYSENTER_ESP:
		return &c->sysenter_esp;
	case MSR_IDX_SYSENTER_EIP:
		return &c->sysenter_eip;
	case MSR_IDX_TSC_AUX:
		return &c->tsc_aux;
	case MSR_IDX_PAT:
		return &c->pat;
	case MSR_IDX_MISC_ENABLE:
		return &c->misc_enable;
	}
	return NULL;
}

/* MSRs that live in the interrupt controllers, with their numbers. */
static const struct {
	int idx;
	uint32_t msr;
} intc_msrs[] = {
    {MSR_IDX_APIC_BASE, MSR_APIC_BASE},
    {MSR_IDX_TSC, MSR_TSC},
    {MSR_IDX_TSC_DEADLINE, MSR_TSC_DEADLINE},
    {MSR_IDX_KVM_SYSTEM_TIME, MSR_KVM_SYSTEM_TIME_NEW},
    {MSR_IDX_KVM_WALL_CLOCK, MSR_KVM_WALL_CLOCK_NEW},
};

static int soft_get_state(struct engine_vcpu *v, struct cpu_state *st)
{
	struct soft_cpu *c = &v->c;
	struct soft_intc *ic = c->vm->intc;
	memcpy(st->gpr, c->r, sizeof(st->gpr));
	st->rip = c->rip;
	st->rflags = get_flags(c);
	memcpy(st->seg, c->seg, sizeof(st->seg));
	st->gdt = c->gdt;
	st->idt = c->idt;
	st->cr0 = c->cr0;
	st->cr2 = c->cr2;
	st->cr3 = c->cr3;
	st->cr4 = c->cr4;
	st->cr8 = intc_cr8_read(ic, c->index);
	st->xcr0 = c->xcr0;
	memcpy(st->dr, c->dr, sizeof(st->dr));
	st->dr6 = c->dr6;
	st->dr7 = c->dr7;
	for (int i = 0; i < NR_STATE_MSRS; i++) {
		uint64_t *p = state_msr(c, i);
		st->msr[i] = p ? *p : 0;
	}
	st->msr[MSR_IDX_EFER] = c->efer;
	for (size_t i = 0; i < sizeof(intc_msrs) / sizeof(intc_msrs[0]); i++) {
		uint64_t val = 0;
		intc_msr(ic, c->index, intc_msrs[i].msr, &val, false);
		st->msr[intc_msrs[i].idx] = val;
	}
	memset(st->xsave, 0, sizeof(st->xsave));
	fxsave(c, st->xsave);
	st->xsave[XSAVE_HEADER] = (uint8_t)XCR0_SUPPORTED; /* XSTATE_BV: all are in the image */
	st->xsave_size = XSAVE_SIZE;
	st->has_lapic = true;
	intc_get_lapic(ic, c->index, st->lapic);
	st->mp_state = c->mp_state == MP_WAIT_FOR_SIPI ? MP_WAIT_FOR_SIPI
		       : c->halted		       ? MP_HALTED
						       : MP_RUNNABLE;
	st->sipi_vector = 0;
	st->exception_pending = false;
	st->interrupt_pending = false;
	st->nmi_pending = c->nmi_pending;
	st->nmi_masked = c->nmi_masked;
	st->interrupt_shadow = c->interrupt_shadow;
	return 0;
}

static int soft_set_state(struct engine_vcpu *v, const struct cpu_state *st)
{
	struct soft_cpu *c = &v->c;
	struct soft_intc *ic = c->vm->intc;
	memcpy(c->r, st->gpr, sizeof(c->r));
	c->rip = st->rip;
	c->fl = (st->rflags & 0x3f7fd5) | RFLAGS_FIXED;
	c->lf_op = LF_NONE;
	memcpy(c->seg, st->seg, sizeof(c->seg));
	c->gdt = st->gdt;
	c->idt = st->idt;
	c->cr0 = st->cr0 | CR0_ET;
	c->cr2 = st->cr2;
	c->cr3 = st->cr3;
	c->cr4 = st->cr4;
	/* What this CPU cannot hold (AVX saved by kvm) is dropped, x87 kept on. */
	c->xcr0 = (st->xcr0 & XCR0_SUPPORTED) | XSTATE_X87;
	memcpy(c->dr, st->dr, sizeof(c->dr));
	c->dr6 = st->dr6;
	c->dr7 = st->dr7;
	for (int i = 0; i < NR_STATE_MSRS; i++) {
		uint64_t *p = state_msr(c, i);
		if (p)
			*p = st->msr[i];
	}
	c->efer = st->msr[MSR_IDX_EFER];
	if ((c->efer & EFER_LME) && (c->cr0 & CR0_PG))
		c->efer |= EFER_LMA;
	/* Order matters: APIC base, then the register page, then the timers. */
	for (size_t i = 0; i < sizeof(intc_msrs) / sizeof(intc_msrs[0]); i++) {
		uint64_t val = st->msr[intc_msrs[i].idx];
		if (intc_msrs[i].idx == MSR_IDX_APIC_BASE) {
			if (val)
				intc_set_apic_base(ic, c->index, val);
			if (st->has_lapic)
				intc_set_lapic(ic, c->index, st->lapic);
		} else if (intc_msrs[i].idx == MSR_IDX_TSC) {
			intc_set_tsc(ic, c->index, val); /* keeps vCPUs on one TSC */
		} else if (val) {
			intc_msr(ic, c->index, intc_msrs[i].msr, &val, true);
		}
	}
	intc_cr8_write(ic, c->index, st->cr8);
	fpu_reset(c);
	if (st->xsave_size >= XSAVE_SIZE)
		xrstor_image(c, st->xsave, XCR0_SUPPORTED, true);
	else if (st->xsave_size >= 512)
		fxrstor(c, st->xsave);
	c->mp_state = st->mp_state == MP_WAIT_FOR_SIPI ? MP_WAIT_FOR_SIPI : MP_RUNNABLE;
	c->halted = st->mp_state == MP_HALTED;
	c->nmi_pending = st->nmi_pending;
	c->nmi_masked = st->nmi_masked;
	c->interrupt_shadow = st->interrupt_shadow;
	c->delivering = -1;
	c->await = AWAIT_NONE;
	c->regs_lent = c->io_in_ready = false;
	mmio_reset(c);
	c->cpl = (c->cr0 & CR0_PE) ? c->seg[SEG_SS].dpl : 0;
	if ((c->cr0 & CR0_PE) && (c->efer & EFER_LMA) && c->seg[SEG_CS].l)
		c->cpl = c->seg[SEG_CS].sel & 3;
	update_mode(c);
	tlb_flush(c, false);
	if (st->exception_pending) {
		/* An exception in flight from a snapshot: deliver it on the first run. */
		c->pending_exc = st->exception_vector;
		c->pending_exc_err = st->exception_error;
		c->pending_exc_has_err = st->exception_has_error;
	} else {
		c->pending_exc = -1;
	}
	if (st->interrupt_pending)
		c->pending_irq = st->interrupt_vector;
	else
		c->pending_irq = -1;
	return 0;
}

static int soft_irq_line(struct engine_vm *vm, unsigned gsi, bool level)
{
	intc_irq_line(vm->intc, gsi, level);
	return 0;
}

static int soft_msi(struct engine_vm *vm, uint64_t addr, uint32_t data)
{
	intc_msi(vm->intc, addr, data);
	return 0;
}

/* Called from any thread while the vCPU runs: each counter is read once
 * (util/counter.h), so the totals may lag one another by a block. */
static void soft_stats(struct engine_vcpu *v, struct json_object *obj)
{
	struct soft_cpu *c = &v->c;
	uint64_t cls_n[NR_CLASSES];
	for (int i = 0; i < NR_CLASSES; i++)
		cls_n[i] = counter_read(&c->stat_class[i]);
	/* after the classes: a block's instructions are added when it ends */
	uint64_t insns = counter_read(&c->stat_insns);
	json_object_object_add(obj, "instructions", json_object_new_int64((int64_t)insns));
	struct json_object *cls = json_object_new_object();
	/* stat_class counts only what exec_insn ran; every fast handler runs an
	 * innocuous instruction */
	uint64_t special = cls_n[CLS_SENSITIVE] + cls_n[CLS_PRIVILEGED];
	cls_n[CLS_INNOCUOUS] = insns > special ? insns - special : 0;
	for (int i = 0; i < NR_CLASSES; i++)
		json_object_object_add(cls, class_names[i],
				       json_object_new_int64((int64_t)cls_n[i]));
	json_object_object_add(obj, "classes", cls);
	struct json_object *traps = json_object_new_object();
	for (int i = 0; i < NR_TRAPS; i++) {
		uint64_t n = counter_read(&c->stat_trap[i]);
		if (n)
			json_object_object_add(traps, trap_names[i],
					       json_object_new_int64((int64_t)n));
	}
	json_object_object_add(obj, "traps", traps);
	struct json_object *tlb = json_object_new_object();
	uint64_t hits = counter_read(&c->stat_tlb_hit) + insns - counter_read(&c->stat_fetch_slow);
	json_object_object_add(tlb, "hits", json_object_new_int64((int64_t)hits));
	json_object_object_add(tlb, "misses",
			       json_object_new_int64((int64_t)counter_read(&c->stat_tlb_miss)));
	json_object_object_add(tlb, "flushes",
			       json_object_new_int64((int64_t)counter_read(&c->stat_tlb_flush)));
	json_object_object_add(obj, "tlb", tlb);
	/* what block building costs: blocks decoded, and cached ones compared
	 * byte by byte again after an epoch change */
	struct json_object *blocks = json_object_new_object();
	json_object_object_add(blocks, "decoded",
			       json_object_new_int64((int64_t)counter_read(&c->stat_fetch_slow)));
	json_object_object_add(blocks, "revalidated",
			       json_object_new_int64((int64_t)counter_read(&c->stat_revalidated)));
	json_object_object_add(
	    blocks, "cached",
	    json_object_new_int64(__atomic_load_n(&c->blocks_used, __ATOMIC_RELAXED)));
	json_object_object_add(obj, "blocks", blocks);
	if (c->jit) {
		struct jit *j = c->jit;
		struct json_object *jit = json_object_new_object();
		json_object_object_add(
		    jit, "blocks", json_object_new_int64((int64_t)counter_read(&j->stat_blocks)));
		json_object_object_add(
		    jit, "insns", json_object_new_int64((int64_t)counter_read(&j->stat_insns)));
		json_object_object_add(
		    jit, "bytes", json_object_new_int64((int64_t)counter_read(&j->stat_bytes)));
		json_object_object_add(jit, "translate_ns",
				       json_object_new_int64((int64_t)counter_read(&j->stat_ns)));
		json_object_object_add(
		    jit, "flushes", json_object_new_int64((int64_t)counter_read(&j->stat_flushes)));
		json_object_object_add(
		    jit, "links", json_object_new_int64((int64_t)counter_read(&j->stat_links)));
		json_object_object_add(obj, "jit", jit);
	}
	struct json_object *ud = json_object_new_object();
	for (int i = 0; i < 16; i++) {
		uint64_t n = counter_read(&c->stat_ud[i].count);
		if (!n)
			break;
		char name[16];
		unsigned op = __atomic_load_n(&c->stat_ud[i].op, __ATOMIC_RELAXED), map = op >> 8;
		static const char *const prefix[4] = {"", "0f", "0f38", "0f3a"};
		snprintf(name, sizeof(name), "%s%02x", prefix[map & 3], op & 0xff);
		json_object_object_add(ud, name, json_object_new_int64((int64_t)n));
	}
	json_object_object_add(obj, "undefined_opcodes", ud);
}

static int soft_last_undefined(struct engine_vcpu *v, char *buf, size_t len)
{
	const struct soft_cpu *c = &v->c;
	if (!c->ud_seen)
		return 0;
	static const char *const map[4] = {"", "0f ", "0f 38 ", "0f 3a "};
	unsigned opcode_len = 1 + ((c->ud_op >> 8) & 3 ? 1 + ((c->ud_op >> 8) > 1) : 0);
	char bytes[3 * 15 + 8] = "not captured";
	/* A decode that stopped at the bad opcode may not hold the whole instruction. */
	for (unsigned i = 0; c->ud_len >= opcode_len && i < c->ud_len; i++)
		snprintf(bytes + (i ? 3 * i - 1 : 0), sizeof(bytes) - 3 * i, "%s%02x", i ? " " : "",
			 c->ud_bytes[i]);
	snprintf(buf, len, "#UD at RIP %#llx, bytes [%s], opcode %s%02x, class %s",
		 (unsigned long long)c->ud_rip, bytes, map[(c->ud_op >> 8) & 3], c->ud_op & 0xff,
		 c->ud_cls < NR_CLASSES ? class_names[c->ud_cls] : "?");
	return 1;
}

static int soft_get_vm_state(struct engine_vm *vm, struct vm_state *st)
{
	intc_get_vm_state(vm->intc, st);
	return 0;
}

static int soft_set_vm_state(struct engine_vm *vm, const struct vm_state *st)
{
	intc_set_vm_state(vm->intc, st);
	return 0;
}

static uint32_t soft_tsc_khz(struct engine_vm *vm)
{
	return intc_tsc_khz(vm->intc);
}

const struct engine_ops soft_engine = {
    .name = "soft",
    .vm_create = soft_vm_create,
    .vm_destroy = soft_vm_destroy,
    .map_memory = soft_map_memory,
    .dirty_log = soft_dirty_log,
    .dirty_collect = soft_dirty_collect,
    .ram_written = soft_ram_written,
    .vcpu_create = soft_vcpu_create,
    .vcpu_destroy = soft_vcpu_destroy,
    .vcpu_run = soft_vcpu_run,
    .vcpu_kick = soft_vcpu_kick,
    .get_state = soft_get_state,
    .set_state = soft_set_state,
    .irq_line = soft_irq_line,
    .msi = soft_msi,
    .get_vm_state = soft_get_vm_state,
    .set_vm_state = soft_set_vm_state,
    .tsc_khz = soft_tsc_khz,
    .last_undefined = soft_last_undefined,
    .stats = soft_stats,
};
