#include "boot/elf.h"

#include <stdio.h>
#include <string.h>

#define PT_LOAD	  1
#define PT_NOTE	  4
#define EM_386	  3
#define EM_X86_64 62

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

bool elf_is_elf(const uint8_t *img, size_t len)
{
	return len >= 4 && !memcmp(img,
				   "\x7f"
				   "ELF",
				   4);
}

int elf_parse(const uint8_t *img, size_t len, struct elf_image *e, char *err, size_t errlen)
{
	return elf_parse_head(img, len, len, e, err, errlen);
}

int elf_parse_head(const uint8_t *img, size_t len, uint64_t filelen, struct elf_image *e, char *err,
		   size_t errlen)
{
	memset(e, 0, sizeof(*e));
	if (len < 52 || !elf_is_elf(img, len)) {
		snprintf(err, errlen, "not an ELF file");
		return -1;
	}
	if (img[4] != 1 && img[4] != 2) {
		snprintf(err, errlen, "ELF class %u is neither 32- nor 64-bit", img[4]);
		return -1;
	}
	e->is64 = img[4] == 2;
	if (img[5] != 1) {
		snprintf(err, errlen, "ELF is not little-endian");
		return -1;
	}
	if (e->is64 && len < 64) {
		snprintf(err, errlen, "ELF header truncated");
		return -1;
	}
	uint16_t machine = rd16(img + 18);
	if (machine != (e->is64 ? EM_X86_64 : EM_386)) {
		snprintf(err, errlen, "ELF machine %u is not x86 — build the kernel for x86",
			 machine);
		return -1;
	}
	uint64_t phoff = e->is64 ? rd64(img + 32) : rd32(img + 28);
	uint16_t phentsize = rd16(img + (e->is64 ? 54 : 42));
	uint16_t phnum = rd16(img + (e->is64 ? 56 : 44));
	e->entry = e->is64 ? rd64(img + 24) : rd32(img + 24);
	uint16_t want = e->is64 ? 56 : 32;
	if (phnum == 0 || phentsize < want || phoff > len ||
	    (uint64_t)phnum * phentsize > len - phoff) {
		snprintf(err, errlen,
			 "ELF program headers lie outside the file (truncated image?)");
		return -1;
	}
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + (uint64_t)i * phentsize;
		uint32_t type = rd32(ph);
		struct elf_segment s;
		if (e->is64) {
			s = (struct elf_segment){.offset = rd64(ph + 8),
						 .vaddr = rd64(ph + 16),
						 .paddr = rd64(ph + 24),
						 .filesz = rd64(ph + 32),
						 .memsz = rd64(ph + 40)};
		} else {
			s = (struct elf_segment){.offset = rd32(ph + 4),
						 .vaddr = rd32(ph + 8),
						 .paddr = rd32(ph + 12),
						 .filesz = rd32(ph + 16),
						 .memsz = rd32(ph + 20)};
		}
		if (type != PT_LOAD && type != PT_NOTE)
			continue;
		if (s.offset > filelen || s.filesz > filelen - s.offset) {
			snprintf(err, errlen, "ELF segment %u extends past the end of the file", i);
			return -1;
		}
		if (type == PT_NOTE) {
			if (e->nnotes < ELF_MAX_SEGMENTS) {
				e->note[e->nnotes].offset = s.offset;
				e->note[e->nnotes++].size = s.filesz;
			}
			continue;
		}
		if (s.filesz > s.memsz || s.paddr + s.memsz < s.paddr) {
			snprintf(err, errlen, "ELF segment %u has an invalid size", i);
			return -1;
		}
		if (!s.memsz)
			continue;
		if (e->nsegs == ELF_MAX_SEGMENTS) {
			snprintf(err, errlen, "ELF has more than %d loadable segments",
				 ELF_MAX_SEGMENTS);
			return -1;
		}
		for (int j = 0; j < e->nsegs; j++) {
			const struct elf_segment *o = &e->seg[j];
			if (s.paddr < o->paddr + o->memsz && o->paddr < s.paddr + s.memsz) {
				snprintf(err, errlen, "ELF segments %d and %u overlap at %#llx", j,
					 i, (unsigned long long)s.paddr);
				return -1;
			}
		}
		e->seg[e->nsegs++] = s;
	}
	if (!e->nsegs) {
		snprintf(err, errlen, "ELF has nothing to load");
		return -1;
	}
	return 0;
}

bool elf_find_note(const uint8_t *img, const struct elf_image *e, const char *owner, uint32_t type,
		   struct elf_note *out)
{
	size_t olen = strlen(owner) + 1;
	for (int i = 0; i < e->nnotes; i++) {
		const uint8_t *p = img + e->note[i].offset;
		uint64_t left = e->note[i].size;
		while (left >= 12) {
			uint32_t namesz = rd32(p), descsz = rd32(p + 4), ntype = rd32(p + 8);
			uint64_t nameal = ((uint64_t)namesz + 3) & ~3ull,
				 descal = ((uint64_t)descsz + 3) & ~3ull;
			if (nameal + descal > left - 12)
				break;
			if (ntype == type && namesz == olen && !memcmp(p + 12, owner, olen)) {
				*out = (struct elf_note){(const char *)p + 12, namesz, ntype,
							 descsz, p + 12 + nameal};
				return true;
			}
			p += 12 + nameal + descal;
			left -= 12 + nameal + descal;
		}
	}
	return false;
}
