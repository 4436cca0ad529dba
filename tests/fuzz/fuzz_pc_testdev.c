/* Fuzz pc-testdev: accesses of every size at its port register and across
 * the edges of its MMIO window (a window access may run past the end), with
 * snapshots in between. */
#include <stdlib.h>

#include "devices/pc_testdev.h"
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add(r, &pc_testdev_device);
	fuzz_window(r, &r->m.pio, PC_TESTDEV_PORT - 4, PC_TESTDEV_PORT_LEN + 8);
	fuzz_window(r, &r->m.mmio, PC_TESTDEV_MMIO - 8, PC_TESTDEV_MMIO_LEN + 16);
}

FUZZ_RIG_TARGET(setup)
