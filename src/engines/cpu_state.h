/* The complete architectural state of one x86-64 vCPU, engine-neutral.
 *
 * Boot loaders produce it, snapshots store it, and either engine can load it:
 * the kvm engine translates it to KVM's structures, the soft engine runs on it.
 * Layouts follow the architecture (Intel SDM / AMD APM), never an engine. */
#ifndef POPEK_CPU_STATE_H
#define POPEK_CPU_STATE_H

#include <stdbool.h>
#include <stdint.h>

enum {
	R_RAX,
	R_RCX,
	R_RDX,
	R_RBX,
	R_RSP,
	R_RBP,
	R_RSI,
	R_RDI,
	R_R8,
	R_R9,
	R_R10,
	R_R11,
	R_R12,
	R_R13,
	R_R14,
	R_R15,
	NR_GPRS
};

enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_TR, SEG_LDTR, NR_SEGS };

/* A segment register with its hidden (descriptor cache) part unpacked. */
struct seg {
	uint64_t base;
	uint32_t limit; /* byte granular: already scaled by G */
	uint16_t sel;
	uint8_t type; /* 4-bit descriptor type */
	uint8_t s : 1, dpl : 2, present : 1, avl : 1, l : 1, db : 1, g : 1;
	uint8_t unusable;
};

struct dtable {
	uint64_t base;
	uint16_t limit;
};

/* MSRs a Linux guest relies on; all other MSRs are engine defaults. */
enum {
	MSR_IDX_EFER,
	MSR_IDX_STAR,
	MSR_IDX_LSTAR,
	MSR_IDX_CSTAR,
	MSR_IDX_SFMASK,
	MSR_IDX_KERNEL_GS_BASE,
	MSR_IDX_SYSENTER_CS,
	MSR_IDX_SYSENTER_ESP,
	MSR_IDX_SYSENTER_EIP,
	MSR_IDX_TSC,
	MSR_IDX_TSC_AUX,
	MSR_IDX_PAT,
	MSR_IDX_MISC_ENABLE,
	MSR_IDX_APIC_BASE,
	MSR_IDX_TSC_DEADLINE,
	MSR_IDX_KVM_SYSTEM_TIME,
	MSR_IDX_KVM_WALL_CLOCK,
	NR_STATE_MSRS
};

/* Architectural MSR numbers for the table above (cpu_state.c). */
extern const uint32_t cpu_state_msr_numbers[NR_STATE_MSRS];

#define MSR_EFER		0xc0000080
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SFMASK		0xc0000084
#define MSR_FS_BASE		0xc0000100
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MSR_TSC_AUX		0xc0000103
#define MSR_SYSENTER_CS		0x174
#define MSR_SYSENTER_ESP	0x175
#define MSR_SYSENTER_EIP	0x176
#define MSR_TSC			0x10
#define MSR_APIC_BASE		0x1b
#define MSR_MISC_ENABLE		0x1a0
#define MSR_PAT			0x277
#define MSR_TSC_DEADLINE	0x6e0
#define MSR_KVM_WALL_CLOCK_NEW	0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

#define EFER_SCE (1u << 0)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)
#define EFER_NXE (1u << 11)

#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)
#define CR0_EM (1u << 2)
#define CR0_TS (1u << 3)
#define CR0_ET (1u << 4)
#define CR0_NE (1u << 5)
#define CR0_WP (1u << 16)
#define CR0_AM (1u << 18)
#define CR0_NW (1u << 29)
#define CR0_CD (1u << 30)
#define CR0_PG (1u << 31)

#define CR4_PSE	       (1u << 4)
#define CR4_PAE	       (1u << 5)
#define CR4_PGE	       (1u << 7)
#define CR4_OSFXSR     (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define CR4_FSGSBASE   (1u << 16)
#define CR4_OSXSAVE    (1u << 18)

#define RFLAGS_FIXED (1u << 1)
#define RFLAGS_IF    (1u << 9)

/* Multiprocessor state of a vCPU (matches the INIT/SIPI protocol). */
enum mp_state {
	MP_RUNNABLE,	 /* executing */
	MP_HALTED,	 /* HLT, waiting for an interrupt */
	MP_WAIT_FOR_SIPI /* application processor after INIT */
};

#define XSAVE_AREA_SIZE 4096 /* standard-format XSAVE image; first 512 bytes = FXSAVE */
#define XSAVE_HEADER	512  /* offset of its header: XSTATE_BV, XCOMP_BV */
#define LAPIC_PAGE_SIZE 1024 /* local APIC registers, at their architectural offsets */

/* XSAVE state components: bits of XCR0 and XSTATE_BV. */
#define XSTATE_X87 (1ull << 0)
#define XSTATE_SSE (1ull << 1)
#define XSTATE_AVX (1ull << 2)

struct cpu_state {
	uint64_t gpr[NR_GPRS];
	uint64_t rip, rflags;
	struct seg seg[NR_SEGS];
	struct dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t xcr0;
	uint64_t dr[4], dr6, dr7;
	uint64_t msr[NR_STATE_MSRS];

	/* x87/SSE/AVX: XSAVE standard format, valid up to xsave_size bytes. */
	uint32_t xsave_size;
	uint8_t xsave[XSAVE_AREA_SIZE] __attribute__((aligned(64)));

	/* Local APIC register page; only meaningful when has_lapic. The mode is
	 * IA32_APIC_BASE's; in x2APIC mode too the ID sits in bits 31:24 and
	 * ICR2 holds the ICR's upper half (KVM_GET_LAPIC's format without
	 * KVM_CAP_X2APIC_API), and the LDR is derived from the ID. */
	bool has_lapic;
	uint8_t lapic[LAPIC_PAGE_SIZE];

	/* Events in flight at the instruction boundary. */
	enum mp_state mp_state;
	uint8_t sipi_vector;
	bool exception_pending;
	uint8_t exception_vector;
	bool exception_has_error;
	uint32_t exception_error;
	bool interrupt_pending; /* external interrupt acknowledged, not yet delivered */
	uint8_t interrupt_vector;
	bool nmi_pending, nmi_masked;
	bool interrupt_shadow; /* after STI / MOV SS */
};

/* A flat segment for boot code: code/data, 32- or 64-bit. */
void cpu_state_flat_seg(struct seg *s, uint16_t sel, bool code, bool long64);

/* Reset the state to what a CPU has after power-on, in 32-bit flat protected
 * mode with paging off: the starting point of multiboot and PVH entries. */
void cpu_state_init_protected(struct cpu_state *st);

/* Set the x87/SSE part of the XSAVE image to its architectural reset values. */
void cpu_state_reset_fpu(struct cpu_state *st);

#endif
