/* ACPI fixed hardware (PM1a event/control blocks, PM timer) at the ports the
 * FADT announces: the guest powers off by writing SLP_TYP(S5)|SLP_EN. */
#ifndef POPEK_ACPI_PM_H
#define POPEK_ACPI_PM_H

#include "devices/services.h"

extern const struct device_type acpi_pm_device;

#endif
