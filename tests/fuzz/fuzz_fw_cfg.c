/* Fuzz fw_cfg: selector writes and data reads of every size at its two ports,
 * snapshots in between; no read may run past an item or return data for an
 * item it does not have. */
#include <stdlib.h>

#include "devices/fw_cfg.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add(r, &fw_cfg_device);
	const struct fuzz_window w[] = {{&r->m.pio, FW_CFG_PORT, 2}};
	fuzz_run(r, w, 1, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
