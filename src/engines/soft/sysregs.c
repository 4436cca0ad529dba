/* System registers, the privileged state a trap handler emulates: control
 * registers, EFER and other MSRs, CPUID, descriptor-table segment loads, far
 * transfers and the fast system-call instructions. */
#include <string.h>
#include <time.h>

#include "engines/soft/intc/intc.h"
#include "engines/soft/soft.h"

void update_mode(struct soft_cpu *c)
{
	if (!(c->cr0 & CR0_PE)) {
		c->mode = c->seg[SEG_CS].db ? 4 : 2;
		c->cpl = 0;
	} else if ((c->efer & EFER_LMA) && c->seg[SEG_CS].l) {
		c->mode = 8;
	} else {
		c->mode = c->seg[SEG_CS].db ? 4 : 2;
	}
}

void unpack_descriptor(struct seg *s, uint16_t sel, uint64_t lo)
{
	s->sel = sel;
	s->base = ((lo >> 16) & 0xffffff) | (((lo >> 56) & 0xff) << 24);
	uint32_t limit = (uint32_t)((lo & 0xffff) | (((lo >> 48) & 0xf) << 16));
	s->g = (lo >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->type = (lo >> 40) & 0xf;
	s->s = (lo >> 44) & 1;
	s->dpl = (lo >> 45) & 3;
	s->present = (lo >> 47) & 1;
	s->avl = (lo >> 52) & 1;
	s->l = (lo >> 53) & 1;
	s->db = (lo >> 54) & 1;
	s->unusable = 0;
}

/* Fetch the descriptor sel names from the GDT or LDT; exc(sel) if outside. */
void read_descriptor(struct soft_cpu *c, uint16_t sel, uint64_t *lo, uint64_t *hi, int exc)
{
	uint64_t base, limit;
	if (sel & 4) {
		if (c->seg[SEG_LDTR].unusable || !c->seg[SEG_LDTR].present)
			raise_exc(c, exc, true, sel & ~3);
		base = c->seg[SEG_LDTR].base;
		limit = c->seg[SEG_LDTR].limit;
	} else {
		base = c->gdt.base;
		limit = c->gdt.limit;
	}
	uint64_t off = sel & ~7u;
	if (off + 7 > limit)
		raise_exc(c, exc, true, sel & ~3);
	*lo = lin_read(c, base + off, 8, ACC_READ, 0);
	*hi = off + 15 <= limit ? lin_read(c, base + off + 8, 8, ACC_READ, 0) : 0;
}

static void set_accessed(struct soft_cpu *c, uint16_t sel, uint64_t lo)
{
	if ((lo >> 40) & 1)
		return;
	uint64_t base = (sel & 4) ? c->seg[SEG_LDTR].base : c->gdt.base;
	lin_write(c, base + (sel & ~7u) + 5, 1, ((lo >> 40) & 0xff) | 1, 0);
}

static void real_seg(struct seg *s, uint16_t sel)
{
	s->sel = sel;
	s->base = (uint64_t)sel << 4;
	s->present = 1;
	s->unusable = 0;
}

void load_cs(struct soft_cpu *c, uint16_t sel, int new_cpl)
{
	struct seg *cs = &c->seg[SEG_CS];
	if (!(c->cr0 & CR0_PE)) {
		real_seg(cs, sel);
		update_mode(c);
		return;
	}
	uint64_t lo, hi;
	if ((sel & ~3) == 0)
		raise_gp(c, 0);
	read_descriptor(c, sel, &lo, &hi, EXC_GP);
	struct seg s;
	unpack_descriptor(&s, sel, lo);
	if (!s.s || !(s.type & 8))
		raise_gp(c, sel & ~3);
	if (!s.present)
		raise_exc(c, EXC_NP, true, sel & ~3);
	set_accessed(c, sel, lo);
	s.type |= 1;
	s.sel = (sel & ~3) | (uint16_t)new_cpl;
	*cs = s;
	c->cpl = new_cpl;
	update_mode(c);
}

void load_seg(struct soft_cpu *c, int seg, uint16_t sel)
{
	struct seg *s = &c->seg[seg];
	if (seg == SEG_CS) {
		load_cs(c, sel, (c->cr0 & CR0_PE) ? sel & 3 : 0);
		return;
	}
	if (!(c->cr0 & CR0_PE) || (c->fl & FL_VM)) {
		real_seg(s, sel);
		return;
	}
	if ((sel & ~3) == 0) {
		if (seg == SEG_SS && !(c->mode == 8 && c->cpl < 3))
			raise_gp(c, 0);
		s->sel = sel;
		s->unusable = 1;
		s->base = 0;
		if (seg == SEG_SS)
			s->dpl = (uint8_t)c->cpl;
		return;
	}
	uint64_t lo, hi;
	read_descriptor(c, sel, &lo, &hi, EXC_GP);
	struct seg d;
	unpack_descriptor(&d, sel, lo);
	int rpl = sel & 3;
	if (seg == SEG_SS) {
		if (!d.s || (d.type & 0xa) != 2 || rpl != c->cpl || d.dpl != c->cpl)
			raise_gp(c, sel & ~3);
		if (!d.present)
			raise_exc(c, EXC_SS, true, sel & ~3);
	} else {
		bool code = d.type & 8, readable = d.type & 2, conforming = (d.type & 4) && code;
		if (!d.s || (code && !readable))
			raise_gp(c, sel & ~3);
		if (!conforming && (rpl > d.dpl || c->cpl > d.dpl))
			raise_gp(c, sel & ~3);
		if (!d.present)
			raise_exc(c, EXC_NP, true, sel & ~3);
	}
	set_accessed(c, sel, lo);
	d.type |= 1;
	*s = d;
}

uint64_t read_cr(struct soft_cpu *c, int n)
{
	switch (n) {
	case 0:
		return c->cr0;
	case 2:
		return c->cr2;
	case 3:
		return c->cr3;
	case 4:
		return c->cr4;
	case 8:
		return soft_cr8_read(c);
	}
	raise_ud(c);
}

#define CR4_SUPPORTED                                                                              \
	((1u << 2) | (1u << 3) | CR4_PSE | CR4_PAE | (1u << 6) | CR4_PGE | (1u << 8) |             \
	 CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE)

/* Would PAE paging (not long mode) start or reload its PDPTEs from a bad
 * PDPT with these control registers? */
static bool pae_pdpt_bad(struct soft_cpu *c, uint64_t cr0, uint64_t cr3, uint64_t cr4)
{
	return (cr0 & CR0_PG) && (cr4 & CR4_PAE) && !(c->efer & EFER_LME) &&
	       !pae_pdpt_valid(c, cr3);
}

void write_cr(struct soft_cpu *c, int n, uint64_t v)
{
	switch (n) {
	case 0: {
		uint64_t old = c->cr0;
		v |= CR0_ET;
		if ((v >> 32) || ((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
			raise_gp(c, 0);
		if ((v & CR0_PG) && !(old & CR0_PG) && (c->efer & EFER_LME)) {
			if (!(c->cr4 & CR4_PAE))
				raise_gp(c, 0);
			c->efer |= EFER_LMA;
		}
		if (((old ^ v) & (CR0_PG | CR0_CD | CR0_NW)) && pae_pdpt_bad(c, v, c->cr3, c->cr4))
			raise_gp(c, 0);
		if (!(v & CR0_PG) && (old & CR0_PG) && (c->efer & EFER_LMA)) {
			if (c->mode == 8)
				raise_gp(c, 0);
			c->efer &= ~(uint64_t)EFER_LMA;
		}
		c->cr0 = v;
		if ((old ^ v) & (CR0_PG | CR0_WP | CR0_PE))
			tlb_flush(c, false);
		update_mode(c);
		return;
	}
	case 2:
		c->cr2 = v;
		return;
	case 3:
		/* bits above MAXPHYADDR are reserved (bit 63 too: no PCIDE) */
		if ((c->efer & EFER_LMA) && (v >> PHYS_ADDR_BITS))
			raise_gp(c, 0);
		if (pae_pdpt_bad(c, c->cr0, v, c->cr4))
			raise_gp(c, 0);
		c->cr3 = v & 0x000ffffffffff018ull;
		tlb_flush(c, c->cr4 & CR4_PGE);
		return;
	case 4: {
		if (v & ~(uint64_t)CR4_SUPPORTED)
			raise_gp(c, 0);
		if ((c->efer & EFER_LMA) && !(v & CR4_PAE))
			raise_gp(c, 0);
		uint64_t old = c->cr4;
		if (((old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE)) &&
		    pae_pdpt_bad(c, c->cr0, c->cr3, v))
			raise_gp(c, 0);
		c->cr4 = v;
		if ((old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE))
			tlb_flush(c, false);
		return;
	}
	case 8:
		if (v >> 4)
			raise_gp(c, 0);
		soft_cr8_write(c, v);
		return;
	}
	raise_ud(c);
}

uint64_t read_tsc(struct soft_cpu *c)
{
	return soft_tsc(c);
}

/* The machine-check architecture is not offered (CPUID.1:EDX MCE and MCA
 * clear), so its MSRs do not exist and #GP, as on a CPU without it, rather
 * than read 0 like an unknown model-specific MSR. */
static const struct {
	uint32_t first, last;
} absent_msrs[] = {
    {0x179, 0x17b}, /* MCG_CAP, MCG_STATUS, MCG_CTL */
    {0x17d, 0x17d}, /* MCG_EXT_CTL */
    {0x280, 0x29f}, /* MCi_CTL2 */
    {0x400, 0x47f}, /* MCi_CTL, MCi_STATUS, MCi_ADDR, MCi_MISC of 32 banks */
};

static bool msr_absent(uint32_t msr)
{
	for (size_t i = 0; i < sizeof(absent_msrs) / sizeof(absent_msrs[0]); i++)
		if (msr >= absent_msrs[i].first && msr <= absent_msrs[i].last)
			return true;
	return false;
}

/* Returns false for #GP. MSRs nobody emulates read as 0 and ignore writes, as
 * QEMU's TCG does, so probing kernels do not die on model-specific ones; they
 * are counted under rdmsr/wrmsr like every other. */
bool msr_access(struct soft_cpu *c, uint32_t msr, uint64_t *val, bool write)
{
	int r = soft_intc_msr(c, msr, val, write);
	if (r)
		return r > 0;
	uint64_t *p = NULL;
	switch (msr) {
	case MSR_EFER:
		if (!write) {
			*val = c->efer;
			return true;
		}
		if (*val & ~(uint64_t)(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE))
			return false;
		if (((*val ^ c->efer) & EFER_LME) && (c->cr0 & CR0_PG))
			return false;
		if ((*val ^ c->efer) & EFER_NXE)
			tlb_flush(c, false);
		c->efer = (*val & ~(uint64_t)EFER_LMA) | (c->efer & EFER_LMA);
		return true;
	case MSR_STAR:
		p = &c->star;
		break;
	case MSR_LSTAR:
		p = &c->lstar;
		break;
	case MSR_CSTAR:
		p = &c->cstar;
		break;
	case MSR_SFMASK:
		p = &c->sfmask;
		break;
	case MSR_FS_BASE:
		p = &c->seg[SEG_FS].base;
		break;
	case MSR_GS_BASE:
		p = &c->seg[SEG_GS].base;
		break;
	case MSR_KERNEL_GS_BASE:
		p = &c->kernel_gs_base;
		break;
	case MSR_TSC_AUX:
		p = &c->tsc_aux;
		break;
	case MSR_SYSENTER_CS:
		p = &c->sysenter_cs;
		break;
	case MSR_SYSENTER_ESP:
		p = &c->sysenter_esp;
		break;
	case MSR_SYSENTER_EIP:
		p = &c->sysenter_eip;
		break;
	case MSR_PAT:
		p = &c->pat;
		break;
	case MSR_MISC_ENABLE:
		p = &c->misc_enable;
		break;
	default:
		if (msr_absent(msr))
			return false;
		if (!write)
			*val = 0;
		return true;
	}
	if (write) {
		/* the MSRs that hold linear addresses take only canonical ones */
		bool addr = msr == MSR_FS_BASE || msr == MSR_GS_BASE || msr == MSR_KERNEL_GS_BASE ||
			    msr == MSR_LSTAR || msr == MSR_CSTAR || msr == MSR_SYSENTER_ESP ||
			    msr == MSR_SYSENTER_EIP;
		if (addr && !canonical(*val))
			return false;
		*p = *val;
	} else {
		*val = *p;
	}
	return true;
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void cpuid_str(uint32_t *r, const char *s, size_t n)
{
	memcpy(r, s, n);
}

void do_cpuid(struct soft_cpu *c)
{
	uint32_t leaf = (uint32_t)c->r[R_RAX], sub = (uint32_t)c->r[R_RCX];
	uint32_t r[4] = {0, 0, 0, 0}; /* eax ebx ecx edx */
	uint32_t tsc_khz = intc_tsc_khz(c->vm->intc), crystal_khz = INTC_CRYSTAL_HZ / 1000, g;
	/* Leaf-1 EDX: fpu pse tsc msr pae cx8 pge cmov pat clflush mmx fxsr sse sse2, and apic
	 * while the local APIC is enabled */
	const uint32_t edx1 = (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |
			      (1u << 8) | (1u << 13) | (1u << 15) | (1u << 16) | (1u << 19) |
			      (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26) |
			      soft_intc_cpuid1_edx(c);
	const uint32_t sig = 0x00060fb1; /* family 15, model 107, stepping 1 (as qemu64) */

	switch (leaf) {
	case 0:
		r[0] = 0x16;
		r[1] = 0x68747541; /* "AuthenticAMD" */
		r[3] = 0x69746e65;
		r[2] = 0x444d4163;
		break;
	case 1:
		r[0] = sig;
		r[1] = ((uint32_t)c->index << 24) | (8u << 8);
		/* sse3 cx16 popcnt hypervisor, plus what the interrupt controller offers */
		r[2] = (1u << 0) | (1u << 13) | (1u << 23) | (1u << 31) | soft_intc_cpuid1_ecx(c);
		r[2] |= (1u << 26) | ((c->cr4 & CR4_OSXSAVE) ? 1u << 27 : 0); /* xsave osxsave */
		r[3] = edx1;
		break;
	case 0xd:
		xsave_cpuid(sub, r);
		break;
	case 0x15: /* TSC = crystal * EBX / EAX, at the rates the intc keeps */
		g = gcd(crystal_khz, tsc_khz); /* lowest terms: 1/1 at the default rate */
		r[0] = crystal_khz / g;
		r[1] = tsc_khz / g;
		r[2] = (uint32_t)INTC_CRYSTAL_HZ;
		break;
	case 0x16:
		r[0] = r[1] = tsc_khz / 1000;
		break;
	case 0x40000010:
		r[0] = tsc_khz;
		r[1] = crystal_khz;
		break;
	case 0x40000000:
		r[0] = 0x40000010;
		cpuid_str(&r[1], "KVMKVMKVM\0\0\0", 12);
		break;
	case 0x40000001:
		r[0] = soft_intc_kvm_features(c);
		break;
	case 0x80000000:
		r[0] = 0x80000008;
		r[1] = 0x68747541;
		r[3] = 0x69746e65;
		r[2] = 0x444d4163;
		break;
	case 0x80000001:
		r[0] = sig;
		r[2] = (1u << 0) | (1u << 5); /* lahf_lm abm */
		r[3] = (edx1 & 0x0183f3ff) | (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) |
		       (1u << 29); /* syscall nx 1g rdtscp lm */
		break;
	case 0x80000002:
		cpuid_str(r, "popek soft x86-6", 16);
		break;
	case 0x80000003:
		cpuid_str(r, "4 interpreter\0\0\0", 16);
		break;
	case 0x80000007:
		r[3] = 1u << 8; /* invariant TSC */
		break;
	case 0x80000008:
		r[0] = 0x3000 | PHYS_ADDR_BITS; /* 48-bit virtual */
		break;
	}
	c->r[R_RAX] = r[0];
	c->r[R_RBX] = r[1];
	c->r[R_RCX] = r[2];
	c->r[R_RDX] = r[3];
}

void far_jump(struct soft_cpu *c, uint16_t sel, uint64_t off, bool call, int opsize, uint64_t ret)
{
	trap(c, TRAP_FAR);
	if ((c->cr0 & CR0_PE) && !(c->fl & FL_VM)) {
		uint64_t lo, hi;
		if ((sel & ~3) == 0)
			raise_gp(c, 0);
		read_descriptor(c, sel, &lo, &hi, EXC_GP);
		struct seg s;
		unpack_descriptor(&s, sel, lo);
		if (!s.s || !(s.type & 8))
			raise_gp(c, sel & ~3); /* call gates and task switches are not supported */
	}
	if (call) {
		push(c, opsize, c->seg[SEG_CS].sel);
		push(c, opsize, ret);
	}
	load_cs(c, sel, c->cpl);
	c->rip = off & (c->mode == 8 ? ~0ull : mask_of(opsize));
}

void far_return(struct soft_cpu *c, int opsize, uint16_t pop_extra)
{
	trap(c, TRAP_FAR);
	uint64_t ip = pop(c, opsize);
	uint16_t sel = (uint16_t)pop(c, opsize);
	int rpl = (c->cr0 & CR0_PE) ? sel & 3 : 0;
	if (rpl < c->cpl)
		raise_gp(c, sel & ~3);
	bool outer = rpl > c->cpl;
	c->r[R_RSP] += pop_extra;
	uint64_t sp = 0;
	uint16_t ss = 0;
	if (outer) {
		sp = pop(c, opsize);
		ss = (uint16_t)pop(c, opsize);
	}
	load_cs(c, sel, rpl);
	c->rip = ip & (c->mode == 8 ? ~0ull : mask_of(opsize));
	if (outer) {
		load_seg(c, SEG_SS, ss);
		c->r[R_RSP] = sp + pop_extra;
	}
}

static void flat(struct seg *s, uint16_t sel, bool code, bool l, int dpl)
{
	s->sel = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->s = 1;
	s->dpl = (uint8_t)dpl;
	s->present = 1;
	s->l = l;
	s->db = code ? !l : 1;
	s->g = 1;
	s->unusable = 0;
}

void do_syscall(struct soft_cpu *c)
{
	trap(c, TRAP_SYSCALL);
	if (!(c->efer & EFER_SCE) || !(c->efer & EFER_LMA))
		raise_ud(c);
	if (c->cpl == 3 && c->vm->cfg.syscall_exits) { /* popek exec serves it */
		c->r[R_RCX] = c->rip;
		c->r[R_R11] = get_flags(c);
		c->exit->reason = EXIT_SYSCALL;
		c->exit->sys.nr = c->r[R_RAX];
		static const int args[6] = {R_RDI, R_RSI, R_RDX, R_R10, R_R8, R_R9};
		for (int i = 0; i < 6; i++)
			c->exit->sys.arg[i] = c->r[args[i]];
		c->exit->sys.flush = false;
		c->exit_pending = true;
		return;
	}
	uint16_t sel = (uint16_t)(c->star >> 32) & ~3;
	c->r[R_RCX] = c->rip;
	c->r[R_R11] = get_flags(c);
	flat(&c->seg[SEG_CS], sel, true, true, 0);
	flat(&c->seg[SEG_SS], sel + 8, false, false, 0);
	c->fl &= ~(c->sfmask | FL_RF);
	c->rip = c->mode == 8 ? c->lstar : c->cstar;
	c->cpl = 0;
	update_mode(c);
}

void do_sysret(struct soft_cpu *c, int opsize)
{
	trap(c, TRAP_SYSRET);
	if (!(c->efer & EFER_SCE) || c->mode != 8)
		raise_ud(c);
	if (c->cpl)
		raise_gp(c, 0);
	uint16_t base = (uint16_t)(c->star >> 48);
	if (opsize == 8) {
		if ((uint64_t)((int64_t)(c->r[R_RCX] << 16) >> 16) != c->r[R_RCX])
			raise_gp(c, 0);
		flat(&c->seg[SEG_CS], (base + 16) | 3, true, true, 3);
		c->rip = c->r[R_RCX];
	} else {
		flat(&c->seg[SEG_CS], base | 3, true, false, 3);
		c->rip = (uint32_t)c->r[R_RCX];
	}
	c->seg[SEG_SS].sel = (base + 8) | 3;
	c->seg[SEG_SS].dpl = 3;
	c->seg[SEG_SS].unusable = 0;
	c->seg[SEG_SS].present = 1;
	c->fl = (c->r[R_R11] & ~(uint64_t)(FL_RF | FL_VM)) | RFLAGS_FIXED;
	c->lf_op = LF_NONE;
	c->cpl = 3;
	update_mode(c);
}
