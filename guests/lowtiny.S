/* lowtiny: a tiny multiboot kernel linked at 0x8000, where real-mode CPU test
 * kernels are linked. It checks the boot magic and that its image is intact,
 * prints the command line the loader passed, if any (the test checks that it
 * starts with the kernel's path), and exits through isa-debug-exit: status 0
 * (the VMM exits 1) on success, 1 (exit 3) on failure. 32-bit code only: no
 * paging, no runtime. QEMU boots it too but passes no command line: its
 * multiboot information at 0x9000 falls into the buffer it builds right
 * after this kernel and is lost. */
#define MB_MAGIC	0x1badb002
#define MB_BOOT_MAGIC	0x2badb002
#define MBI_CMDLINE	(1 << 2)
#define COM1		0x3f8
#define DEBUG_EXIT	0xf4

	.code32
	.section .text, "ax"
	.balign 4
mb_header:
	.long	MB_MAGIC, 0, -MB_MAGIC	/* no flags: the loader reads the ELF headers */

	.globl	_start
_start:
	cli
	mov	$stack_top, %esp
	mov	$msg_magic, %esi
	cmp	$MB_BOOT_MAGIC, %eax
	jne	fail
	mov	$msg_image, %esi
	cmpl	$MB_MAGIC, mb_header	/* the loader kept its structures elsewhere */
	jne	fail
	mov	$msg_nocmdline, %esi
	testl	$MBI_CMDLINE, (%ebx)
	jz	pass
	mov	$msg_cmdline, %esi
	call	puts
	mov	16(%ebx), %esi
	call	puts
	mov	$msg_newline, %esi
pass:
	call	puts
	mov	$msg_pass, %esi
	call	puts
	xor	%eax, %eax
	jmp	leave

fail:				/* ESI: the reason */
	push	%esi
	mov	$msg_fail, %esi
	call	puts
	pop	%esi
	call	puts
	mov	$1, %eax
leave:
	out	%eax, $DEBUG_EXIT
1:	hlt
	jmp	1b

/* Write the NUL-terminated string at ESI to COM1. */
puts:
	mov	$COM1, %dx
2:	lodsb
	test	%al, %al
	jz	3f
	out	%al, %dx
	jmp	2b
3:	ret

	.section .rodata, "a"
msg_cmdline:	.asciz	"lowtiny: cmdline: "
msg_newline:	.asciz	"\n"
msg_pass:	.asciz	"PASS lowtiny\n"
msg_fail:	.asciz	"FAIL lowtiny: "
msg_magic:	.asciz	"EAX is not the multiboot magic\n"
msg_image:	.asciz	"the image at 0x8000 was overwritten\n"
msg_nocmdline:	.asciz	"lowtiny: no command line\n"

	.section .bss, "aw", @nobits
	.balign 16
	.space	256
stack_top:
