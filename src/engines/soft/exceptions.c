/* Exceptions and interrupts: raising them from inside an instruction, the
 * double-fault rules, delivery through the real-mode IVT or the protected /
 * long-mode IDT (with TSS stack switches and IST), and IRET. */
#include <stdio.h>

#include <string.h>

#include "engines/soft/soft.h"

_Noreturn void raise_exc(struct soft_cpu *c, int vec, bool has_err, uint32_t err)
{
	c->exc_vec = vec;
	c->exc_has_err = has_err;
	c->exc_err = (int)err;
	longjmp(c->jb, JMP_EXCEPTION);
}

_Noreturn void raise_gp(struct soft_cpu *c, uint32_t err)
{
	raise_exc(c, EXC_GP, true, err);
}

/* Keep the faulting instruction's bytes: they come from the decoded block
 * that holds it (the guest's memory may have changed since). */
static void remember_ud(struct soft_cpu *c, const struct insn *d)
{
	c->ud_seen = true;
	c->ud_rip = d->start;
	c->ud_op = d->op;
	c->ud_cls = d->cls;
	c->ud_len = 0;
	uintptr_t first = (uintptr_t)c->blocks, at = (uintptr_t)d;
	if (!c->blocks || at < first || at >= first + block_count(c) * sizeof(struct block))
		return;
	size_t i = (at - first) / sizeof(struct block);
	const struct block *b = &c->blocks[i];
	uint64_t off = d->start - c->tags[b->tag].rip;
	if (off >= b->nbytes)
		return;
	c->ud_len = (uint8_t)(d->len < b->nbytes - off ? d->len : b->nbytes - off);
	if (c->ud_len > sizeof(c->ud_bytes))
		c->ud_len = sizeof(c->ud_bytes);
	memcpy(c->ud_bytes, b->code + off, c->ud_len);
}

_Noreturn void raise_ud(struct soft_cpu *c)
{
	if (c->last) {
		remember_ud(c, c->last);
		for (int i = 0; i < 16; i++) {
			if (c->stat_ud[i].count && c->stat_ud[i].op != c->last->op)
				continue;
			__atomic_store_n(&c->stat_ud[i].op, c->last->op, __ATOMIC_RELAXED);
			counter_add(&c->stat_ud[i].count, 1);
			break;
		}
	}
	raise_exc(c, EXC_UD, false, 0);
}

/* Supervisor-privilege accesses to system structures (IDT, TSS, GDT, stacks
 * of a more privileged level): they use the supervisor TLB whatever the CPL. */
static uint64_t sys_read(struct soft_cpu *c, uint64_t lin, int size)
{
	return lin_read(c, lin, size, ACC_READ, 0);
}

static void sys_write(struct soft_cpu *c, uint64_t lin, int size, uint64_t v)
{
	lin_write(c, lin, size, v, 0);
}

static bool contributory(int vec)
{
	return vec == EXC_DE || (vec >= EXC_TS && vec <= EXC_GP);
}

void write_flags(struct soft_cpu *c, uint64_t v, int size, bool iret)
{
	uint64_t mask = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID;
	uint64_t iopl = (c->fl >> 12) & 3;
	if (iret)
		mask |= FL_RF;
	if (c->cpl == 0)
		mask |= FL_IOPL;
	if (c->cpl <= (int)iopl || !(c->cr0 & CR0_PE))
		mask |= FL_IF;
	if (size == 2)
		mask &= 0xffff;
	else if (size == 4)
		mask &= 0xffffffff;
	set_flags(c, v, mask);
}

static uint16_t push_lin(struct soft_cpu *c, uint64_t *sp, int size, uint64_t v, uint64_t base,
			 uint64_t spmask)
{
	*sp = (*sp - size) & spmask;
	sys_write(c, base + *sp, size, v);
	return 0;
}

static void deliver_real(struct soft_cpu *c, int vec, uint64_t ret_rip)
{
	if ((uint32_t)vec * 4 + 3 > c->idt.limit)
		raise_gp(c, 0);
	uint16_t ip = (uint16_t)sys_read(c, c->idt.base + vec * 4, 2);
	uint16_t cs = (uint16_t)sys_read(c, c->idt.base + vec * 4 + 2, 2);
	uint64_t fl = get_flags(c);
	push(c, 2, fl);
	push(c, 2, c->seg[SEG_CS].sel);
	push(c, 2, ret_rip);
	c->fl &= ~(uint64_t)(FL_IF | FL_TF | FL_AC | FL_RF);
	load_seg(c, SEG_CS, cs);
	c->rip = ip;
}

/* Read the gate for vec; raises #GP/#NP with the IDT error code. */
static void read_gate(struct soft_cpu *c, int vec, int ext, bool soft_int, int size, uint64_t *lo,
		      uint64_t *hi)
{
	uint32_t err = vec * 8 + 2 + ext;
	if ((uint32_t)vec * size + size - 1 > c->idt.limit)
		raise_gp(c, err);
	*lo = sys_read(c, c->idt.base + vec * size, 8);
	*hi = size == 16 ? sys_read(c, c->idt.base + vec * size + 8, 8) : 0;
	int type = (*lo >> 40) & 0xf, dpl = (*lo >> 45) & 3;
	bool ok = size == 16 ? (type == 0xe || type == 0xf)
			     : (type == 0xe || type == 0xf || type == 6 || type == 7);
	if (!ok || (*lo >> 44) & 1)
		raise_gp(c, err);
	if (soft_int && dpl < c->cpl)
		raise_gp(c, err);
	if (!((*lo >> 47) & 1))
		raise_exc(c, EXC_NP, true, err);
}

/* The code segment an IDT gate points to, and the privilege it runs at. */
static int gate_target(struct soft_cpu *c, uint16_t sel, struct seg *cs, int ext)
{
	uint64_t lo, hi;
	if ((sel & ~3) == 0)
		raise_gp(c, ext);
	read_descriptor(c, sel, &lo, &hi, EXC_GP);
	unpack_descriptor(cs, sel, lo);
	if (!cs->s || !(cs->type & 8) || cs->dpl > c->cpl)
		raise_gp(c, (sel & ~3) + ext);
	if (!cs->present)
		raise_exc(c, EXC_NP, true, (sel & ~3) + ext);
	return (cs->type & 4) ? c->cpl : cs->dpl; /* conforming keeps CPL */
}

static void deliver_long(struct soft_cpu *c, int vec, bool has_err, uint32_t err, bool soft_int,
			 uint64_t ret_rip, int ext)
{
	uint64_t lo, hi;
	read_gate(c, vec, ext, soft_int, 16, &lo, &hi);
	uint16_t sel = (uint16_t)(lo >> 16);
	uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull) | (hi << 32);
	int ist = (lo >> 32) & 7;
	struct seg cs;
	int ncpl = gate_target(c, sel, &cs, ext);
	if (!cs.l || cs.db)
		raise_gp(c, (sel & ~3) + ext);

	uint64_t rsp = c->r[R_RSP];
	uint64_t tss = c->seg[SEG_TR].base;
	if (ist)
		rsp = sys_read(c, tss + 0x24 + (ist - 1) * 8, 8);
	else if (ncpl < c->cpl)
		rsp = sys_read(c, tss + 4 + ncpl * 8, 8);
	rsp &= ~0xfull;
	if ((uint64_t)((int64_t)(rsp << 16) >> 16) != rsp)
		raise_exc(c, EXC_SS, true, ext);

	uint64_t fl = get_flags(c);
	uint64_t sp = rsp;
	push_lin(c, &sp, 8, c->seg[SEG_SS].sel, 0, ~0ull);
	push_lin(c, &sp, 8, c->r[R_RSP], 0, ~0ull);
	push_lin(c, &sp, 8, fl, 0, ~0ull);
	push_lin(c, &sp, 8, c->seg[SEG_CS].sel, 0, ~0ull);
	push_lin(c, &sp, 8, ret_rip, 0, ~0ull);
	if (has_err)
		push_lin(c, &sp, 8, err, 0, ~0ull);

	if (ncpl != c->cpl) {
		struct seg *ss = &c->seg[SEG_SS];
		ss->sel = (uint16_t)ncpl;
		ss->unusable = 1;
		ss->base = 0;
		ss->dpl = (uint8_t)ncpl;
	}
	cs.sel = (sel & ~3) | (uint16_t)ncpl;
	c->seg[SEG_CS] = cs;
	c->cpl = ncpl;
	c->r[R_RSP] = sp;
	c->rip = target;
	c->fl &= ~(uint64_t)(FL_TF | FL_NT | FL_RF | FL_VM);
	if (((lo >> 40) & 0xf) == 0xe)
		c->fl &= ~(uint64_t)FL_IF;
}

static void deliver_prot(struct soft_cpu *c, int vec, bool has_err, uint32_t err, bool soft_int,
			 uint64_t ret_rip, int ext)
{
	uint64_t lo, hi;
	read_gate(c, vec, ext, soft_int, 8, &lo, &hi);
	int type = (lo >> 40) & 0xf, gsize = (type & 8) ? 4 : 2;
	uint16_t sel = (uint16_t)(lo >> 16);
	uint64_t target = (lo & 0xffff) | ((lo >> 32) & 0xffff0000ull);
	struct seg cs;
	int ncpl = gate_target(c, sel, &cs, ext);
	uint64_t fl = get_flags(c);

	struct seg nss = c->seg[SEG_SS];
	uint64_t sp = c->r[R_RSP], spmask = nss.db ? 0xffffffffull : 0xffff;
	if (ncpl < c->cpl) {
		uint64_t tss = c->seg[SEG_TR].base;
		uint32_t esp = (uint32_t)sys_read(c, tss + 4 + ncpl * 8, 4);
		uint16_t ssel = (uint16_t)sys_read(c, tss + 8 + ncpl * 8, 2);
		uint64_t dlo, dhi;
		if ((ssel & ~3) == 0)
			raise_exc(c, EXC_TS, true, ext);
		read_descriptor(c, ssel, &dlo, &dhi, EXC_TS);
		unpack_descriptor(&nss, ssel, dlo);
		sp = esp;
		spmask = nss.db ? 0xffffffffull : 0xffff;
		push_lin(c, &sp, gsize, c->seg[SEG_SS].sel, nss.base, spmask);
		push_lin(c, &sp, gsize, c->r[R_RSP], nss.base, spmask);
	} else {
		ncpl = c->cpl;
	}
	push_lin(c, &sp, gsize, fl, nss.base, spmask);
	push_lin(c, &sp, gsize, c->seg[SEG_CS].sel, nss.base, spmask);
	push_lin(c, &sp, gsize, ret_rip, nss.base, spmask);
	if (has_err)
		push_lin(c, &sp, gsize, err, nss.base, spmask);

	c->seg[SEG_SS] = nss;
	cs.sel = (sel & ~3) | (uint16_t)ncpl;
	c->seg[SEG_CS] = cs;
	c->cpl = ncpl;
	c->r[R_RSP] = (c->r[R_RSP] & ~spmask) | (sp & spmask);
	c->rip = target;
	c->fl &= ~(uint64_t)(FL_TF | FL_NT | FL_RF | FL_VM);
	if (!(type & 1))
		c->fl &= ~(uint64_t)FL_IF;
}

void deliver_event(struct soft_cpu *c, int vec, bool has_err, uint32_t err, bool soft_int,
		   uint64_t ret_rip)
{
	int ext = soft_int ? 0 : 1;
	c->delivering = vec;
	if (!(c->cr0 & CR0_PE))
		deliver_real(c, vec, ret_rip);
	else if (c->efer & EFER_LMA)
		deliver_long(c, vec, has_err, err, soft_int, ret_rip, ext);
	else
		deliver_prot(c, vec, has_err, err, soft_int, ret_rip, ext);
	c->delivering = -1;
	c->interrupt_shadow = false;
	update_mode(c);
}

/* An exception was raised (possibly while delivering another one): apply the
 * double-fault rules and deliver. Triple fault ends the run with SHUTDOWN. */
void handle_fault(struct soft_cpu *c)
{
	int vec = c->exc_vec;
	bool has_err = c->exc_has_err;
	uint32_t err = (uint32_t)c->exc_err;
	int prev = c->delivering;

	if (prev >= 0) {
		if (prev == EXC_DF) {
			c->exit->reason = EXIT_SHUTDOWN;
			c->exit->fail.rip = c->rip;
			snprintf(c->exit->fail.why, sizeof(c->exit->fail.why),
				 "triple fault: exception %d while delivering #DF", vec);
			c->exit_pending = true;
			c->delivering = -1;
			return;
		}
		if ((contributory(prev) && contributory(vec)) ||
		    (prev == EXC_PF && (vec == EXC_PF || contributory(vec)))) {
			vec = EXC_DF;
			has_err = true;
			err = 0;
		}
	}
	if (!(c->cr0 & CR0_PE))
		has_err = false;
	trap(c, TRAP_EXCEPTION);
	deliver_exception(c, vec, has_err, err);
}

/* Fault-class exceptions (SDM Vol. 3 6.5): the return address is the
 * faulting instruction. */
#define FAULT_CLASS                                                                                \
	(1u << EXC_DE | 1u << EXC_BR | 1u << EXC_UD | 1u << EXC_NM | 1u << EXC_TS | 1u << EXC_NP | \
	 1u << EXC_SS | 1u << EXC_GP | 1u << EXC_PF | 1u << EXC_MF | 1u << EXC_AC | 1u << EXC_XM)

/* A fault pushes RFLAGS with RF set (SDM Vol. 3 17.3.1.1), so that IRET back to
 * the faulting instruction would not hit an instruction breakpoint on it
 * again; aborts, traps, INT n and interrupts push RF as it is. */
void deliver_exception(struct soft_cpu *c, int vec, bool has_err, uint32_t err)
{
	if (vec < 32 && ((FAULT_CLASS >> vec) & 1))
		c->fl |= FL_RF;
	deliver_event(c, vec, has_err, err, false, c->rip);
}

void do_iret(struct soft_cpu *c, int size)
{
	trap(c, TRAP_IRET);
	if (!(c->cr0 & CR0_PE)) {
		uint64_t ip = pop(c, size), cs = pop(c, size), fl = pop(c, size);
		load_seg(c, SEG_CS, (uint16_t)cs);
		c->rip = ip & mask_of(size);
		write_flags(c, fl, size, true);
		c->nmi_masked = false;
		update_mode(c);
		return;
	}
	if (c->fl & FL_NT)
		raise_gp(c, 0); /* task switches are not supported */
	c->nmi_masked = false;
	bool long64 = c->mode == 8;
	uint64_t ip = pop(c, size);
	uint16_t cs = (uint16_t)pop(c, size);
	uint64_t fl = pop(c, size);
	int rpl = cs & 3;
	if (rpl < c->cpl)
		raise_gp(c, cs & ~3);
	uint64_t sp = 0;
	uint16_t ss = 0;
	bool outer = rpl > c->cpl;
	if (long64 || outer) {
		sp = pop(c, size);
		ss = (uint16_t)pop(c, size);
	}
	int old_cpl = c->cpl;
	write_flags(c, fl, size, true);
	load_cs(c, cs, rpl);
	c->rip = ip & (c->mode == 8 ? ~0ull : 0xffffffffull);
	if (long64 || outer) {
		if ((ss & ~3) == 0 && (c->efer & EFER_LMA) && c->mode == 8 && rpl < 3) {
			struct seg *s = &c->seg[SEG_SS];
			s->sel = ss;
			s->unusable = 1;
			s->dpl = (uint8_t)rpl;
			s->base = 0;
		} else {
			load_seg(c, SEG_SS, ss);
		}
		c->r[R_RSP] =
		    size == 8 ? sp : (c->r[R_RSP] & ~mask_of(size)) | (sp & mask_of(size));
		if (size == 4 && c->mode == 8)
			c->r[R_RSP] = (uint32_t)sp;
	}
	if (rpl > old_cpl) {
		/* Data segments the outer level may not use become null. */
		static const int segs[] = {SEG_ES, SEG_DS, SEG_FS, SEG_GS};
		for (int i = 0; i < 4; i++) {
			struct seg *s = &c->seg[segs[i]];
			bool conforming_code = (s->type & 0xc) == 0xc;
			if (s->dpl < rpl && !conforming_code) {
				s->sel = 0;
				s->unusable = 1;
			}
		}
	}
	c->interrupt_shadow = false;
	update_mode(c);
}
