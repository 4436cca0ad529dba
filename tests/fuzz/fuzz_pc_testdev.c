/* Fuzz pc-testdev: accesses of every size at its port register and across
 * the edges of its MMIO window (a window access may run past the end), with
 * snapshots in between. */
#include <stdlib.h>

#include "devices/pc_testdev.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add(r, &pc_testdev_device);
	const struct fuzz_window w[] = {
	    {&r->m.pio, PC_TESTDEV_PORT - 4, PC_TESTDEV_PORT_LEN + 8},
	    {&r->m.mmio, PC_TESTDEV_MMIO - 8, PC_TESTDEV_MMIO_LEN + 16},
	};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
