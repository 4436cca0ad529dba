/* Fuzz the ACPI fixed hardware: PM1a status/enable/control and the PM timer,
 * any access size (S5 power-off just stops the fake machine). */
#include <stdlib.h>

#include "boot/acpi.h"
#include "devices/acpi_pm.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rig *r = fuzz_rig_begin();
	fuzz_add(r, &acpi_pm_device);
	const struct fuzz_window w[] = {{&r->m.pio, ACPI_PM_BASE, ACPI_PM_LEN}};
	fuzz_run(r, w, 1, data, size, NULL, NULL);
	fuzz_rig_end(r);
	return 0;
}
