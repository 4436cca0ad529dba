/* Fuzz the ACPI fixed hardware: PM1a status/enable/control and the PM timer,
 * any access size (S5 power-off just stops the fake machine). */
#include <stdlib.h>

#include "boot/acpi.h"
#include "devices/acpi_pm.h"
#include "fuzz_util.h"

static void setup(struct fuzz_rig *r)
{
	fuzz_add(r, &acpi_pm_device);
	fuzz_window(r, &r->m.pio, ACPI_PM_BASE, ACPI_PM_LEN);
}

FUZZ_RIG_TARGET(setup)
