/* Fuzz fw_cfg: selector writes and data reads of every size at its two ports,
 * snapshots in between; no read may run past an item or return data for an
 * item it does not have. */
#include <stdlib.h>

#include "devices/fw_cfg.h"
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add(r, &fw_cfg_device);
	fuzz_window(r, &r->m.pio, FW_CFG_PORT, 2);
}

FUZZ_RIG_TARGET(setup)
