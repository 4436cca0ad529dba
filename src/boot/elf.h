/* A bounded ELF reader: enough of ELF32/ELF64 to load an x86 kernel image.
 * It only reads inside the given buffer and validates every offset. */
#ifndef POPEK_ELF_H
#define POPEK_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELF_MAX_SEGMENTS 16

struct elf_segment {
	uint64_t paddr, vaddr, offset, filesz, memsz;
};

struct elf_note {
	const char *name; /* not NUL-terminated: namesz bytes */
	uint32_t namesz, type, descsz;
	const uint8_t *desc;
};

struct elf_image {
	bool is64;
	uint64_t entry;
	int nsegs;
	struct elf_segment seg[ELF_MAX_SEGMENTS];
	/* PT_NOTE ranges, for elf_next_note */
	int nnotes;
	struct {
		uint64_t offset, size;
	} note[ELF_MAX_SEGMENTS];
};

bool elf_is_elf(const uint8_t *img, size_t len);
/* Validate headers and PT_LOAD/PT_NOTE segments against the file. */
int elf_parse(const uint8_t *img, size_t len, struct elf_image *out, char *err, size_t errlen);
/* The same with only the file's first hdrlen bytes at hdr (they must hold
 * the ELF and program headers) and filelen the whole file's length. */
int elf_parse_head(const uint8_t *hdr, size_t hdrlen, uint64_t filelen, struct elf_image *out,
		   char *err, size_t errlen);
/* Find a note by owner name and type (img: the whole file); returns false
 * if absent. */
bool elf_find_note(const uint8_t *img, const struct elf_image *e, const char *owner, uint32_t type,
		   struct elf_note *out);

#endif
