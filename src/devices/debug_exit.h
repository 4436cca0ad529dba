/* isa-debug-exit compatible device: a guest write of status ends the VM with
 * exit code (status << 1) | 1, exactly as QEMU's, so QEMU test guests work. */
#ifndef POPEK_DEBUG_EXIT_H
#define POPEK_DEBUG_EXIT_H

#include <stdint.h>

#include "devices/services.h"

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_SIZE 4

extern const struct device_type debug_exit_device;

#endif
