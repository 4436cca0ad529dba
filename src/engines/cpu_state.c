#include "engines/cpu_state.h"

#include <string.h>

const uint32_t cpu_state_msr_numbers[NR_STATE_MSRS] = {
    [MSR_IDX_EFER] = MSR_EFER,
    [MSR_IDX_STAR] = MSR_STAR,
    [MSR_IDX_LSTAR] = MSR_LSTAR,
    [MSR_IDX_CSTAR] = MSR_CSTAR,
    [MSR_IDX_SFMASK] = MSR_SFMASK,
    [MSR_IDX_KERNEL_GS_BASE] = MSR_KERNEL_GS_BASE,
    [MSR_IDX_SYSENTER_CS] = MSR_SYSENTER_CS,
    [MSR_IDX_SYSENTER_ESP] = MSR_SYSENTER_ESP,
    [MSR_IDX_SYSENTER_EIP] = MSR_SYSENTER_EIP,
    [MSR_IDX_TSC] = MSR_TSC,
    [MSR_IDX_TSC_AUX] = MSR_TSC_AUX,
    [MSR_IDX_PAT] = MSR_PAT,
    [MSR_IDX_MISC_ENABLE] = MSR_MISC_ENABLE,
    [MSR_IDX_APIC_BASE] = MSR_APIC_BASE,
    [MSR_IDX_TSC_DEADLINE] = MSR_TSC_DEADLINE,
    [MSR_IDX_KVM_SYSTEM_TIME] = MSR_KVM_SYSTEM_TIME_NEW,
    [MSR_IDX_KVM_WALL_CLOCK] = MSR_KVM_WALL_CLOCK_NEW,
};

void cpu_state_flat_seg(struct seg *s, uint16_t sel, bool code, bool long64)
{
	*s = (struct seg){
	    .base = 0,
	    .limit = 0xffffffff,
	    .sel = sel,
	    .type = code ? 0xb : 0x3, /* execute/read accessed, read/write accessed */
	    .s = 1,
	    .present = 1,
	    .l = code && long64,
	    .db = !(code && long64),
	    .g = 1,
	};
}

void cpu_state_reset_fpu(struct cpu_state *st)
{
	memset(st->xsave, 0, sizeof(st->xsave));
	st->xsave[0] = 0x7f; /* FCW = 0x037f */
	st->xsave[1] = 0x03;
	st->xsave[24] = 0x80; /* MXCSR = 0x1f80 */
	st->xsave[25] = 0x1f;
	st->xsave_size = XSAVE_AREA_SIZE;
	st->xcr0 = 1; /* x87 */
}

void cpu_state_init_protected(struct cpu_state *st)
{
	memset(st, 0, sizeof(*st));
	st->rflags = RFLAGS_FIXED;
	st->cr0 = CR0_PE | CR0_ET;
	for (int i = 0; i < NR_SEGS; i++)
		cpu_state_flat_seg(&st->seg[i], 0x18, false, false);
	cpu_state_flat_seg(&st->seg[SEG_CS], 0x08, true, false);
	/* A busy 32-bit TSS and an empty LDT: what VMX/SVM require to enter. */
	st->seg[SEG_TR] = (struct seg){.limit = 0xffff, .type = 0xb, .present = 1};
	st->seg[SEG_LDTR] = (struct seg){.limit = 0xffff, .type = 0x2, .present = 1, .unusable = 1};
	st->gdt.limit = 0xffff;
	st->idt.limit = 0xffff;
	st->dr6 = 0xffff0ff0;
	st->dr7 = 0x400;
	st->msr[MSR_IDX_PAT] = 0x0007040600070406ull;
	st->msr[MSR_IDX_APIC_BASE] = 0xfee00000ull | (1u << 11) | (1u << 8); /* enabled, BSP */
	st->mp_state = MP_RUNNABLE;
	cpu_state_reset_fpu(st);
}
