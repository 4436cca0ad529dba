/* Fuzz the CMOS RTC: index/data port sequences over every register (clock,
 * alarms, status registers, NVRAM), with snapshots in between. */
#include <stdlib.h>

#include "devices/cmos_rtc.h"
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add(r, &cmos_rtc_device);
	fuzz_window(r, &r->m.pio, CMOS_INDEX_PORT, 2);
}

FUZZ_RIG_TARGET(setup)
