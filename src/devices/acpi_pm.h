/* ACPI fixed hardware (PM1a event/control blocks, PM timer) at the ports the
 * FADT announces: the guest powers off by writing SLP_TYP(S5)|SLP_EN. */
#ifndef POPEK_ACPI_PM_H
#define POPEK_ACPI_PM_H

struct machine;
struct acpi_pm;

struct acpi_pm *acpi_pm_create(struct machine *m);
void acpi_pm_destroy(struct acpi_pm *pm);

#endif
