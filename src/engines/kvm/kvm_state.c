/* Translation between popek's neutral struct cpu_state and KVM's structures. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "engines/kvm/kvm_internal.h"

/* EFER and APIC_BASE travel in kvm_sregs, not as MSRs. */
static bool msr_in_sregs(int i)
{
	return i == MSR_IDX_EFER || i == MSR_IDX_APIC_BASE;
}

int kvm_probe_msrs(struct engine_vm *vm)
{
	struct kvm_msr_list probe = {.nmsrs = 0};
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return -1;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -1;
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return -1;
	}
	for (int i = 0; i < NR_STATE_MSRS; i++)
		for (uint32_t j = 0; j < l->nmsrs; j++)
			if (l->indices[j] == cpu_state_msr_numbers[i] && !msr_in_sregs(i))
				vm->msr_ok |= 1ull << i;
	free(l);
	return 0;
}

static void seg_to_kvm(const struct seg *s, struct kvm_segment *k)
{
	*k = (struct kvm_segment){.base = s->base,
				  .limit = s->limit,
				  .selector = s->sel,
				  .type = s->type,
				  .present = s->present,
				  .dpl = s->dpl,
				  .db = s->db,
				  .s = s->s,
				  .l = s->l,
				  .g = s->g,
				  .avl = s->avl,
				  .unusable = s->unusable};
}

static void seg_from_kvm(const struct kvm_segment *k, struct seg *s)
{
	*s = (struct seg){.base = k->base,
			  .limit = k->limit,
			  .sel = k->selector,
			  .type = k->type,
			  .s = k->s,
			  .dpl = k->dpl,
			  .present = k->present,
			  .avl = k->avl,
			  .l = k->l,
			  .db = k->db,
			  .g = k->g,
			  .unusable = k->unusable};
}

static struct kvm_segment *sregs_seg(struct kvm_sregs *s, int i)
{
	struct kvm_segment *t[NR_SEGS] = {&s->es, &s->cs, &s->ss, &s->ds,
					  &s->fs, &s->gs, &s->tr, &s->ldt};
	return t[i];
}

/* struct kvm_msrs ends in a flexible array: give it room for our MSRs. */
struct msr_buf {
	union {
		struct kvm_msrs hdr;
		uint8_t
		    room[sizeof(struct kvm_msrs) + NR_STATE_MSRS * sizeof(struct kvm_msr_entry)];
	};
};

static int fill_msr_list(const struct engine_vm *vm, struct msr_buf *b, int *map)
{
	int n = 0;
	for (int i = 0; i < NR_STATE_MSRS; i++) {
		if (!(vm->msr_ok & (1ull << i)))
			continue;
		b->hdr.entries[n] = (struct kvm_msr_entry){.index = cpu_state_msr_numbers[i]};
		map[n++] = i;
	}
	b->hdr.nmsrs = (uint32_t)n;
	return n;
}

static const uint32_t mp_to_kvm[] = {
    [MP_RUNNABLE] = KVM_MP_STATE_RUNNABLE,
    [MP_HALTED] = KVM_MP_STATE_HALTED,
    [MP_WAIT_FOR_SIPI] = KVM_MP_STATE_INIT_RECEIVED,
};

static enum mp_state mp_from_kvm(uint32_t s)
{
	switch (s) {
	case KVM_MP_STATE_HALTED:
		return MP_HALTED;
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_INIT_RECEIVED:
		return MP_WAIT_FOR_SIPI;
	default:
		return MP_RUNNABLE;
	}
}

int kvm_get_state(struct engine_vcpu *v, struct cpu_state *st)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	struct kvm_debugregs d;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	memset(st, 0, sizeof(*st));
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0 ||
	    ioctl(v->fd, KVM_GET_DEBUGREGS, &d) < 0 || ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 ||
	    ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0)
		return -errno;
	const uint64_t gp[NR_GPRS] = {r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi,
				      r.r8,  r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15};
	memcpy(st->gpr, gp, sizeof(gp));
	st->rip = r.rip;
	st->rflags = r.rflags;
	for (int i = 0; i < NR_SEGS; i++)
		seg_from_kvm(sregs_seg(&s, i), &st->seg[i]);
	st->gdt = (struct dtable){s.gdt.base, s.gdt.limit};
	st->idt = (struct dtable){s.idt.base, s.idt.limit};
	st->cr0 = s.cr0;
	st->cr2 = s.cr2;
	st->cr3 = s.cr3;
	st->cr4 = s.cr4;
	st->cr8 = s.cr8;
	st->msr[MSR_IDX_EFER] = s.efer;
	st->msr[MSR_IDX_APIC_BASE] = s.apic_base;
	memcpy(st->dr, d.db, sizeof(st->dr));
	st->dr6 = d.dr6;
	st->dr7 = d.dr7;

	struct msr_buf mb;
	int map[NR_STATE_MSRS];
	int n = fill_msr_list(v->vm, &mb, map);
	if (ioctl(v->fd, KVM_GET_MSRS, &mb) != n)
		return -EIO;
	for (int i = 0; i < n; i++)
		st->msr[map[i]] = mb.hdr.entries[i].data;

	if (v->vm->has_xsave) {
		struct kvm_xsave *x = malloc(sizeof(*x));
		if (!x || ioctl(v->fd, KVM_GET_XSAVE, x) < 0) {
			free(x);
			return -EIO;
		}
		memcpy(st->xsave, x->region, sizeof(st->xsave));
		st->xsave_size = XSAVE_AREA_SIZE;
		free(x);
	} else {
		struct kvm_fpu f;
		if (ioctl(v->fd, KVM_GET_FPU, &f) < 0)
			return -errno;
		cpu_state_reset_fpu(st);
		memcpy(st->xsave + 160, f.xmm, sizeof(f.xmm));
		memcpy(st->xsave + 24, &f.mxcsr, 4);
	}
	st->xcr0 = 1;
	if (v->vm->has_xcrs) {
		struct kvm_xcrs xc;
		if (ioctl(v->fd, KVM_GET_XCRS, &xc) == 0)
			for (uint32_t i = 0; i < xc.nr_xcrs; i++)
				if (xc.xcrs[i].xcr == 0)
					st->xcr0 = xc.xcrs[i].value;
	}
	struct kvm_lapic_state lapic;
	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) == 0) {
		st->has_lapic = true;
		memcpy(st->lapic, lapic.regs, sizeof(st->lapic));
	}
	st->mp_state = mp_from_kvm(mp.mp_state);
	st->sipi_vector = (uint8_t)ev.sipi_vector;
	st->exception_pending = ev.exception.injected || ev.exception.pending;
	st->exception_vector = ev.exception.nr;
	st->exception_has_error = ev.exception.has_error_code;
	st->exception_error = ev.exception.error_code;
	st->interrupt_pending = ev.interrupt.injected;
	st->interrupt_vector = ev.interrupt.nr;
	st->interrupt_shadow = ev.interrupt.shadow != 0;
	st->nmi_pending = ev.nmi.pending || ev.nmi.injected;
	st->nmi_masked = ev.nmi.masked;
	return 0;
}

int kvm_set_state(struct engine_vcpu *v, const struct cpu_state *st)
{
	struct kvm_regs r = {
	    .rax = st->gpr[R_RAX],
	    .rbx = st->gpr[R_RBX],
	    .rcx = st->gpr[R_RCX],
	    .rdx = st->gpr[R_RDX],
	    .rsi = st->gpr[R_RSI],
	    .rdi = st->gpr[R_RDI],
	    .rsp = st->gpr[R_RSP],
	    .rbp = st->gpr[R_RBP],
	    .r8 = st->gpr[R_R8],
	    .r9 = st->gpr[R_R9],
	    .r10 = st->gpr[R_R10],
	    .r11 = st->gpr[R_R11],
	    .r12 = st->gpr[R_R12],
	    .r13 = st->gpr[R_R13],
	    .r14 = st->gpr[R_R14],
	    .r15 = st->gpr[R_R15],
	    .rip = st->rip,
	    .rflags = st->rflags,
	};
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return -errno;
	for (int i = 0; i < NR_SEGS; i++)
		seg_to_kvm(&st->seg[i], sregs_seg(&s, i));
	s.gdt = (struct kvm_dtable){.base = st->gdt.base, .limit = st->gdt.limit};
	s.idt = (struct kvm_dtable){.base = st->idt.base, .limit = st->idt.limit};
	s.cr0 = st->cr0;
	s.cr2 = st->cr2;
	s.cr3 = st->cr3;
	s.cr4 = st->cr4;
	s.cr8 = st->cr8;
	s.efer = st->msr[MSR_IDX_EFER];
	s.apic_base = st->msr[MSR_IDX_APIC_BASE];
	memset(s.interrupt_bitmap, 0, sizeof(s.interrupt_bitmap));
	struct kvm_debugregs d = {.dr6 = st->dr6, .dr7 = st->dr7};
	memcpy(d.db, st->dr, sizeof(d.db));
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0 || ioctl(v->fd, KVM_SET_REGS, &r) < 0 ||
	    ioctl(v->fd, KVM_SET_DEBUGREGS, &d) < 0)
		return -errno;

	if (v->vm->has_xcrs) {
		struct kvm_xcrs xc = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = st->xcr0}}};
		if (ioctl(v->fd, KVM_SET_XCRS, &xc) < 0)
			return -errno;
	}
	if (v->vm->has_xsave) {
		struct kvm_xsave *x = calloc(1, sizeof(*x));
		if (!x)
			return -ENOMEM;
		memcpy(x->region, st->xsave,
		       st->xsave_size < sizeof(x->region) ? st->xsave_size : sizeof(x->region));
		int rc = ioctl(v->fd, KVM_SET_XSAVE, x);
		free(x);
		if (rc < 0)
			return -errno;
	} else {
		struct kvm_fpu f = {.fcw = 0x37f};
		memcpy(f.xmm, st->xsave + 160, sizeof(f.xmm));
		memcpy(&f.mxcsr, st->xsave + 24, 4);
		if (ioctl(v->fd, KVM_SET_FPU, &f) < 0)
			return -errno;
	}
	if (st->has_lapic) {
		struct kvm_lapic_state lapic;
		memcpy(lapic.regs, st->lapic, sizeof(lapic.regs));
		if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
			return -errno;
	}
	struct msr_buf mb;
	int map[NR_STATE_MSRS];
	int n = fill_msr_list(v->vm, &mb, map);
	for (int i = 0; i < n; i++)
		mb.hdr.entries[i].data = st->msr[map[i]];
	if (ioctl(v->fd, KVM_SET_MSRS, &mb) != n)
		return -EIO;

	struct kvm_vcpu_events ev = {
	    .exception = {.injected = st->exception_pending,
			  .nr = st->exception_vector,
			  .has_error_code = st->exception_has_error,
			  .error_code = st->exception_error},
	    .interrupt = {.injected = st->interrupt_pending,
			  .nr = st->interrupt_vector,
			  .shadow = st->interrupt_shadow ? KVM_X86_SHADOW_INT_STI : 0},
	    .nmi = {.injected = st->nmi_pending, .masked = st->nmi_masked},
	    .sipi_vector = st->sipi_vector,
	    .flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SIPI_VECTOR,
	};
	if (ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	struct kvm_mp_state mp = {.mp_state = mp_to_kvm[st->mp_state]};
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -errno;
	return 0;
}
