/* Fuzz the CMOS RTC: index/data port sequences over every register (clock,
 * alarms, status registers, NVRAM), with snapshots in between. */
#include <stdlib.h>

#include "devices/cmos_rtc.h"
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	if (cmos_rtc_create(&r->m))
		abort();
	fuzz_window(r, &r->m.pio, CMOS_INDEX_PORT, 2);
}

FUZZ_RIG_TARGET(setup)
