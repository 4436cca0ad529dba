/* Real-mode start-up code for an application processor. smp.c copies it to a
 * page below 1 MiB and sends SIPI with that page's number, so the AP starts here
 * with CS = page >> 4, IP = 0. It only enters protected mode and jumps to
 * ap_start32 in the image, which does the rest like the boot processor did. */
#include "segments.h"

	.section .rodata
	.code16
	.globl	ap_trampoline, ap_trampoline_end
ap_trampoline:
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	tramp_gdtr - ap_trampoline
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$SEL_KCODE32, $ap_start32
	.balign 4
tramp_gdtr:
	.word	gdt_limit
	.long	gdt
ap_trampoline_end:
	.code64
