/* Interrupt/exception entry, the SYSCALL entry and the ring-3 round trip.
 * Every path builds the same struct trap_frame (guest.h) and calls
 * trap_dispatch(frame); every return to the interrupted code is IRETQ. */
#include "segments.h"
#define VEC_SYSCALL 0x100
#define TSS_RSP0 4

	.text
/* 256 stubs, 16 bytes apart (trap.c computes isr_stubs + 16 * vector). Vectors
 * where the CPU pushes no error code push a 0 so the frame layout is uniform. */
	.altmacro
	.macro	isr_stub v
	.balign	16
	.if	(\v == 8) || ((\v >= 10) && (\v <= 14)) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
	.else
	pushq	$0
	.endif
	pushq	$\v
	jmp	trap_common
	.endm

	.balign	16
	.globl	isr_stubs
isr_stubs:
	v = 0
	.rept	256
	isr_stub %v
	v = v + 1
	.endr
	.noaltmacro

trap_common:
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%r11
	push	%r10
	push	%r9
	push	%r8
	push	%rbp
	push	%rdi
	push	%rsi
	push	%rdx
	push	%rcx
	push	%rbx
	push	%rax
	cld
	mov	%rsp, %rdi
	call	trap_dispatch
	pop	%rax
	pop	%rbx
	pop	%rcx
	pop	%rdx
	pop	%rsi
	pop	%rdi
	pop	%rbp
	pop	%r8
	pop	%r9
	pop	%r10
	pop	%r11
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	add	$16, %rsp		/* vector, error code */
	iretq

/* SYSCALL: RCX = user RIP, R11 = user RFLAGS, RSP still the user's. Switch to the
 * TSS RSP0 stack and fake the frame an interrupt from ring 3 would have pushed.
 * One CPU at a time in ring 3, so a single scratch slot for the user RSP is enough. */
	.globl	syscall_entry
syscall_entry:
	mov	%rsp, syscall_user_rsp(%rip)
	mov	tss + TSS_RSP0(%rip), %rsp
	pushq	$(SEL_UDATA | 3)
	pushq	syscall_user_rsp(%rip)
	push	%r11
	pushq	$(SEL_UCODE | 3)
	push	%rcx
	pushq	$0
	pushq	$VEC_SYSCALL
	jmp	trap_common

/* long user_run(void (*entry)(void)): save the callee-saved registers, then IRETQ
 * to entry in ring 3 on the user stack, interrupts off. user_return(code) unwinds
 * back here from any trap handler and makes user_run return code. */
	.globl	user_run
user_run:
	push	%rbx
	push	%rbp
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, user_kernel_rsp(%rip)
	pushq	$(SEL_UDATA | 3)
	lea	user_stack_top(%rip), %rax
	push	%rax
	pushq	$0x2			/* RFLAGS: IF = 0, IOPL = 0 */
	pushq	$(SEL_UCODE | 3)
	push	%rdi
	xor	%eax, %eax		/* leak no kernel values to ring 3 */
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%edi, %edi
	xor	%ebp, %ebp
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	xor	%r14d, %r14d
	xor	%r15d, %r15d
	iretq

	.globl	user_return
user_return:
	mov	%rdi, %rax
	mov	user_kernel_rsp(%rip), %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbp
	pop	%rbx
	ret

	.section .bss
	.balign	8
syscall_user_rsp:
	.quad	0
user_kernel_rsp:
	.quad	0

	.section .bss.user, "aw", @nobits
	.balign	16
	.space	16384
user_stack_top:
