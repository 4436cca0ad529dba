/* Minimal ACPI tables in the BIOS area (BIOS_START..BIOS_END): RSDP, XSDT,
 * FADT (+FACS), MADT and a DSDT with \_S5 and the PCI root bridge. Enough for
 * Linux to find every vCPU, the IOAPIC and PCI, and to power off and reset. */
#ifndef POPEK_ACPI_H
#define POPEK_ACPI_H

#include <stdint.h>

#include "machine/memory.h"

/* Fixed-hardware I/O ports the FADT announces (served by devices/acpi_pm.c). */
#define ACPI_PM_BASE	 0x600
#define ACPI_PM1_EVT	 (ACPI_PM_BASE + 0) /* PM1a status (2 bytes) + enable (2 bytes) */
#define ACPI_PM1_CNT	 (ACPI_PM_BASE + 4) /* PM1a control (2 bytes) */
#define ACPI_PM_TMR	 (ACPI_PM_BASE + 8) /* 32-bit PM timer at 3.579545 MHz */
#define ACPI_PM_LEN	 12
#define ACPI_SCI_IRQ	 9
#define ACPI_S5_SLP_TYP	 5    /* the SLP_TYP value \_S5 tells the guest to write */
#define ACPI_RESET_PORT	 0x64 /* i8042 command port ... */
#define ACPI_RESET_VALUE 0xfe /* ... "pulse reset line" */
#define ACPI_IOAPIC_ADDR 0xfec00000u
#define ACPI_LAPIC_ADDR	 0xfee00000u

/* Write the tables for ncpus vCPUs; returns the RSDP's guest-physical
 * address (at BIOS_START, where a legacy scan finds it too), or 0 if guest
 * RAM does not reach the BIOS area. */
uint64_t acpi_build(const struct guest_mem *mem, int ncpus);

#endif
