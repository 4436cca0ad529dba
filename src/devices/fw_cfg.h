/* QEMU's firmware configuration device, legacy I/O interface only (no DMA):
 * a 16-bit write of a selector to port 0x510, then byte reads of the item from
 * 0x511. CPU test kernels (kvm-unit-tests) read the CPU count and RAM size
 * here. popek's hypercall is a 32-bit OUT to the same port; the machine takes
 * it before it reaches the bus, so the two never meet. */
#ifndef POPEK_FW_CFG_H
#define POPEK_FW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "devices/services.h"

#define FW_CFG_PORT 0x510 /* selector (16-bit write); data at 0x511 (8-bit) */

extern const struct device_type fw_cfg_device;

/* Internal, exposed for tests: the device itself. */
struct fw_cfg;
struct bus;
struct fw_cfg *fw_cfg_new(struct bus *pio, uint64_t ram_size, int ncpus);
void fw_cfg_free(void *dev);
int fw_cfg_save(void *dev, void **buf, size_t *len);
int fw_cfg_load(void *dev, const void *buf, size_t len);

#endif
