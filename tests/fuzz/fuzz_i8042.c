/* Fuzz the i8042 keyboard controller: any sequence of data and command port
 * accesses (controller commands, keyboard commands, the reset line). */
#include <stdlib.h>

#include "devices/i8042.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add(r, &i8042_device);
	const struct fuzz_window w[] = {{&r->m.pio, I8042_DATA_PORT, 1},
					{&r->m.pio, I8042_COMMAND_PORT, 1}};
	fuzz_run(r, w, 2, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
