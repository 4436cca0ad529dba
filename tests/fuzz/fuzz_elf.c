/* Fuzz the ELF reader and loader: whatever the headers say, every segment
 * and note it returns lies inside the file, and loading copies segments to
 * guest RAM or refuses with a message. The PVH note is looked up as the
 * dispatcher does and its entry loaded with pvh_load. */
#include <stdlib.h>

#include "fuzz_util.h"

static bool in_file(uint64_t off, uint64_t len, size_t size)
{
	return off <= size && len <= size - off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cpu_state *st;
	char *err;
	size_t errlen;
	struct boot_args *a = fuzz_boot_args(data, size, &st, &err, &errlen);
	struct elf_image e;
	if (!elf_is_elf(data, size))
		return 0;
	int rc = elf_parse(data, size, &e, err, errlen);
	fuzz_boot_check(rc, err);
	if (rc)
		return 0;
	if (e.nsegs > ELF_MAX_SEGMENTS || e.nnotes > ELF_MAX_SEGMENTS)
		abort();
	for (int i = 0; i < e.nsegs; i++)
		if (!in_file(e.seg[i].offset, e.seg[i].filesz, size) ||
		    e.seg[i].filesz > e.seg[i].memsz)
			abort();
	struct elf_note n;
	if (elf_find_note(data, &e, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, &n)) {
		if (!in_file((uint64_t)(n.desc - data), n.descsz, size) ||
		    !in_file((uint64_t)((const uint8_t *)n.name - data), n.namesz, size))
			abort();
		if (n.descsz >= 4) {
			uint32_t entry = (uint32_t)n.desc[0] | (uint32_t)n.desc[1] << 8 |
					 (uint32_t)n.desc[2] << 16 | (uint32_t)n.desc[3] << 24;
			fuzz_boot_check(pvh_load(a, &e, entry, st, err, errlen), err);
			return 0;
		}
	}
	uint64_t end;
	fuzz_boot_check(boot_load_elf(a, &e, &end, err, errlen), err);
	return 0;
}
