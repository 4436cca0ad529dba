/* pc-testdev, the test device of QEMU and kvm-unit-tests (QEMU's
 * hw/misc/pc-testdev.c): a 32-bit register at ports 0xe0-0xe3 and a 64 KiB
 * window of device memory at 0xff000000, both reading back what was written.
 * Test guests use the window to run every memory-operand instruction on MMIO
 * and compare with RAM. Only present with `--device pc-testdev`. */
#ifndef POPEK_PC_TESTDEV_H
#define POPEK_PC_TESTDEV_H

#include <stddef.h>
#include <stdint.h>

#include "devices/services.h"

struct bus;

#define PC_TESTDEV_PORT	    0xe0
#define PC_TESTDEV_PORT_LEN 4
#define PC_TESTDEV_MMIO	    0xff000000ull
#define PC_TESTDEV_MMIO_LEN 0x10000

extern const struct device_type pc_testdev_device;

/* Internal, exposed for tests: the device on two buses of the caller's. */
struct pc_testdev;
struct pc_testdev *pc_testdev_new(struct bus *pio, struct bus *mmio);
void pc_testdev_free(void *dev);
int pc_testdev_save(void *dev, void **buf, size_t *len);
int pc_testdev_load(void *dev, const void *buf, size_t len);

#endif
