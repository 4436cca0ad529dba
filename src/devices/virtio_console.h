/* virtio-console with a single port (hvc0 in Linux). Guest output (TX) is
 * written to out_fd on the vCPU thread that kicked; host input is read from
 * in_fd by a per-device thread, since it arrives whenever the host has it. */
#ifndef POPEK_VIRTIO_CONSOLE_H
#define POPEK_VIRTIO_CONSOLE_H

#include <stddef.h>

#include "devices/virtio_pci.h"

struct virtio_console;

/* in_fd may be -1 (no input). The fds stay owned by the caller. */
struct virtio_console *virtio_console_create(const struct virtio_env *env, int in_fd, int out_fd,
					     char *err, size_t errlen);
void virtio_console_destroy(struct virtio_console *c);

#endif
