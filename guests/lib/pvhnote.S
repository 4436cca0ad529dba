/* PVH entry note: XEN_ELFNOTE_PHYS32_ENTRY (18), the 32-bit physical address
 * a PVH loader jumps to with EBX = hvm_start_info. */
	.section .note.Xen, "a", @note
	.balign 4
	.long	4		/* namesz */
	.long	4		/* descsz */
	.long	18		/* type */
	.asciz	"Xen"
	.long	_start32
