/* libFuzzer: a hostile state.bin. The input is parsed as a section file and
 * every record is decoded by every codec popek has (vCPU, VM, each device's
 * load): nothing may crash, read out of bounds or hang, whatever the bytes. */
#include "fuzz_util.h"
#include "snapshot/codec.h"
#include "snapshot/sections.h"

static void decode_all(struct fuzz_rig *r, const uint8_t *data, size_t size)
{
	static struct cpu_state cpu;
	static struct vm_state vm;
	decode_cpu_state(data, size, &cpu);
	decode_vm_state(data, size, &vm);
	for (int i = 0; i < r->m.ndevices; i++)
		if (r->m.devices[i].type->load)
			r->m.devices[i].type->load(r->m.devices[i].dev, data, size);
}

static void setup(struct fuzz_rig *r)
{
	fuzz_add_platform(r);
	fuzz_pci_enable(r, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sections sec;
	struct fuzz_rig *r = fuzz_rig(setup);
	char err[256];
	/* The raw input as each record too, so decoders see arbitrary bytes directly. */
	decode_all(r, data, size);
	if (sections_parse(data, size, &sec, err, sizeof(err)) == 0)
		for (int i = 0; i < sec.n; i++)
			decode_all(r, sec.s[i].data, sec.s[i].len);
	fuzz_done(r);
	return 0;
}
