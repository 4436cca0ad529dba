/* pvpanic-pci (QEMU's device 1b36:0011): the guest kernel writes here from its
 * panic notifier, so a panic ends the VM with a crash report instead of a
 * reboot loop or a silent hang. Linux: CONFIG_PVPANIC + pvpanic-pci. */
#ifndef POPEK_PVPANIC_H
#define POPEK_PVPANIC_H

#include "devices/services.h"

extern const struct device_type pvpanic_device;

#endif
