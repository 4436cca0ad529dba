#include "machine/config.h"

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
}
