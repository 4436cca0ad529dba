/* virtio-console with a single port (hvc0 in Linux), shaped like the UART so
 * the machine's console can drive either: guest output goes to tx on the
 * vCPU thread that kicked, host input is offered with virtio_console_input. */
#ifndef POPEK_VIRTIO_CONSOLE_H
#define POPEK_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "devices/virtio_pci.h"

struct virtio_console;
typedef void (*virtio_console_tx_fn)(void *ctx, const void *buf, size_t len);

struct virtio_console *virtio_console_create(const struct virtio_env *env, virtio_console_tx_fn tx,
					     void *tx_ctx, char *err, size_t errlen);
/* Host → guest bytes (a console_input_fn): returns how many fit in the
 * receive buffers the driver has posted; 0 until it posts some. */
size_t virtio_console_input(void *con, const uint8_t *buf, size_t len);
/* Its transport. */
struct virtio_pci *virtio_console_pci(struct virtio_console *c);
void virtio_console_destroy(void *console);
/* Takes console input when the kernel's console is hvc0. */
extern const struct device_type virtio_console_device;

#endif
