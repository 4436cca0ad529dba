#include "machine/config.h"

#include <stdlib.h>
#include <string.h>

void vm_config_defaults(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mem = 128ull << 20;
	c->cpus = 1;
	c->engine = "auto";
	c->console = CONSOLE_STDIO;
	c->ram_fd = -1;
	c->jail = true;
	/* the translator is the default; POPEK_JIT=off runs every guest
	 * interpreted (the test suites' switch for comparing the two) */
	const char *jit = getenv("POPEK_JIT");
	c->jit = !jit || strcmp(jit, "off");
}

const char *const optional_device_names[NR_OPTIONAL_DEVICES] = {
    [DEV_PC_TESTDEV] = "pc-testdev",
};

int optional_device_find(const char *name)
{
	for (int i = 0; i < NR_OPTIONAL_DEVICES; i++)
		if (!strcmp(name, optional_device_names[i]))
			return i;
	return -1;
}
