/* Fuzz the CMOS RTC: index/data port sequences over every register (clock,
 * alarms, status registers, NVRAM), with snapshots in between. */
#include <stdlib.h>

#include "devices/cmos_rtc.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add(r, &cmos_rtc_device);
	const struct fuzz_window w[] = {{&r->m.pio, CMOS_INDEX_PORT, 2}};
	fuzz_run(r, w, 1, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
