/* ACPI fixed hardware (PM1a event/control blocks, PM timer) at the ports the
 * FADT announces: the guest powers off by writing SLP_TYP(S5)|SLP_EN. */
#ifndef POPEK_ACPI_PM_H
#define POPEK_ACPI_PM_H

struct machine;

/* Create the device and add it to the machine's registry (snapshots,
 * teardown). Returns 0 or -1. */
int acpi_pm_create(struct machine *m);

#endif
