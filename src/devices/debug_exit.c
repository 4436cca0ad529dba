#include "devices/debug_exit.h"

#include <string.h>

#include "machine/machine.h"

static void debug_exit_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	uint32_t v = 0;
	memcpy(&v, data, size < 4 ? size : 4);
	machine_stop(dev, STOP_GUEST_EXIT, (int)(((v << 1) | 1) & 0xff),
		     "guest wrote %u to isa-debug-exit", v);
}

static const struct bus_ops debug_exit_ops = {.write = debug_exit_write};

int debug_exit_create(struct machine *m)
{
	return bus_register(&m->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, &debug_exit_ops, m,
			    "debug-exit");
}
