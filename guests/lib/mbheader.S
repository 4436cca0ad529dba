/* Multiboot v1 header. No address fields (flag 16 clear): the loader reads the
 * ELF program headers. Linked first in .text so it sits in the first 8 KiB. */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x3 /* page-align modules, provide memory info */

	.section .multiboot, "a"
	.balign 4
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)
