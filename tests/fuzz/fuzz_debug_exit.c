/* Fuzz isa-debug-exit: any access size and value at its ports; the first
 * write ends the (fake) machine with (value << 1) | 1, later ones change nothing. */
#include <stdlib.h>

#include "devices/debug_exit.h"
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add(r, &debug_exit_device);
	fuzz_window(r, &r->m.pio, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig(setup);
	fuzz_run(r, data, size);
	if (atomic_load(&r->m.stop) != STOP_NONE && (r->m.exit_code & 1) == 0)
		abort(); /* (value << 1) | 1 is odd: no guest write can fake a clean exit 0 */
	fuzz_done(r);
	return 0;
}
