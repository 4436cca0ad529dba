/* Guest entry points and the switch to 64-bit long mode.
 *
 * _start32: multiboot v1 (EAX = 0x2BADB002, EBX = multiboot info) and PVH
 *           (EBX = hvm_start_info), both in flat 32-bit protected mode, paging off.
 * _start64: popek's ELF64 protocol (long mode, identity map, RDI = hvm_start_info).
 * ap_start32: reached from the real-mode AP trampoline (lib/trampoline.S).
 * All of them load the GDT below and the identity page tables below, and end up
 * in entry64, which calls rt_start(magic, info) on the BSP or ap_start64() on an AP. */
#include "segments.h"

#define AP_MARKER   0xa9a9a9a9
#define ELF64_MARKER 0x36344c45 /* "EL64": tells rt_start the entry was _start64 */

#define CR0_PE (1 << 0)
#define CR0_WP (1 << 16)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define EFER_LME (1 << 8)

	.section .text.boot, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	mov	%eax, %esi		/* boot magic (multiboot) or garbage (PVH) */
	mov	%ebx, %edi		/* multiboot info / hvm_start_info */
	lgdt	gdt_ptr
	ljmp	$SEL_KCODE32, $1f
1:	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	jmp	long_mode_common

	.globl ap_start32
ap_start32:
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$AP_MARKER, %esi
	/* fall through */

/* ESI/EDI survive: they carry the boot magic and info pointer to entry64. */
long_mode_common:
	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$(CR0_PG | CR0_WP | CR0_PE), %eax
	mov	%eax, %cr0
	ljmp	$SEL_KCODE, $entry64

	.code64
	.globl _start64
_start64:
	cli
	cld
	lgdt	gdt_ptr(%rip)
	lea	pml4(%rip), %rax
	mov	%rax, %cr3
	mov	%cr0, %rax
	or	$CR0_WP, %rax
	mov	%rax, %cr0
	mov	$ELF64_MARKER, %esi
	lea	bsp_stack_top(%rip), %rsp	/* the protocol leaves RSP undefined */
	pushq	$SEL_KCODE
	lea	entry64(%rip), %rax
	push	%rax
	lretq

entry64:
	mov	$SEL_KDATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	cmp	$AP_MARKER, %esi
	je	1f
	lea	bsp_stack_top(%rip), %rsp
	mov	%esi, %esi		/* zero-extend magic */
	mov	%edi, %edi		/* start_info / multiboot info: below 4 GiB */
	xchg	%rsi, %rdi		/* rt_start(magic, info) */
	call	rt_start
	ud2
1:	lea	ap_stack_top(%rip), %rsp
	call	ap_start64
	ud2

/* Flat segments (lib/segments.h). SEL_UCODE32 is never used but SYSRET needs it. */
	.section .data
	.balign 16
	.globl gdt
gdt:
	.quad	0			/* 0x00 null */
	.quad	0x00cf9a000000ffff	/* 0x08 kernel code, 32-bit */
	.quad	0x00af9a000000ffff	/* 0x10 kernel code, 64-bit */
	.quad	0x00cf92000000ffff	/* 0x18 kernel data */
	.quad	0x00cffa000000ffff	/* 0x20 user code, 32-bit (SYSRET base) */
	.quad	0x00cff2000000ffff	/* 0x28 user data */
	.quad	0x00affa000000ffff	/* 0x30 user code, 64-bit */
	.quad	0			/* 0x38 unused */
	.quad	0, 0			/* 0x40 TSS, filled in by trap_init() */
gdt_end:
	.globl gdt_limit
	.set	gdt_limit, gdt_end - gdt - 1
	.globl gdt_ptr
gdt_ptr:
	.word	gdt_end - gdt - 1
	.quad	gdt

/* Identity map of the first 4 GiB with 2 MiB pages; the top GiB (LAPIC, I/O APIC,
 * other MMIO) uncached. Static data, so no code has to build it at CPL0.
 * Upper levels allow user access; each leaf decides (lib/paging.c). */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad	pdpt + 0x7
	.fill	511, 8, 0
pdpt:
	.quad	pd + 0x7, pd + 0x1007, pd + 0x2007, pd + 0x3007
	.fill	508, 8, 0
pd:
	i = 0
	.rept	2048
	.if	i >= 1536
	.quad	(i << 21) | 0x9b	/* P, W, PWT, PCD, PS */
	.else
	.quad	(i << 21) | 0x83	/* P, W, PS */
	.endif
	i = i + 1
	.endr

	.section .bss
	.balign 16
	.space	16384
bsp_stack_top:
	.space	16384
ap_stack_top:
