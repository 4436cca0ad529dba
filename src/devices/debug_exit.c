#include "devices/debug_exit.h"

#include <stdio.h>
#include <string.h>

#include "devices/services.h"

static void debug_exit_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	uint32_t v = 0;
	memcpy(&v, data, size < 4 ? size : 4);
	const struct dev_services *s = dev;
	char why[64];
	snprintf(why, sizeof(why), "guest wrote %u to isa-debug-exit", v);
	s->stop(s->ctx, STOP_GUEST_EXIT, (int)(((v << 1) | 1) & 0xff), why);
}

static const struct bus_ops debug_exit_ops = {.write = debug_exit_write};

/* Stateless: the port's handler needs only the services. */
static int debug_exit_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			     void **dev, char *err, size_t errlen)
{
	return bus_register(s->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, &debug_exit_ops, (void *)s,
			    "debug-exit");
}

const struct device_type debug_exit_device = {.name = "debug-exit", .create = debug_exit_create};
