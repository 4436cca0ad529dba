/* Fuzz the i8042 keyboard controller: any sequence of data and command port
 * accesses (controller commands, keyboard commands, the reset line). */
#include <stdlib.h>

#include "devices/i8042.h"
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add(r, &i8042_device);
	fuzz_window(r, &r->m.pio, I8042_DATA_PORT, 1);
	fuzz_window(r, &r->m.pio, I8042_COMMAND_PORT, 1);
}

FUZZ_RIG_TARGET(setup)
