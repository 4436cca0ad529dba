/* A minimal PS/2 keyboard controller (ports 0x60/0x64): enough for Linux's
 * i8042 and atkbd probes to finish promptly, and for the guest to reset the
 * machine by pulsing the reset line (command 0xFE, reboot=k). No mouse. */
#ifndef POPEK_I8042_H
#define POPEK_I8042_H

#include "devices/services.h"

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_KBD_GSI	   1

extern const struct device_type i8042_device;

#endif
