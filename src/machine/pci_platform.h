/* The machine's PCI side: the host bridge and the virtio devices the
 * configuration asks for (a virtio-blk per --disk, virtio-rng, virtio-console). */
#ifndef POPEK_PCI_PLATFORM_H
#define POPEK_PCI_PLATFORM_H

#include <stddef.h>

#include "machine/console.h"

struct machine;

/* Needs m->pio, m->mmio, m->mem, the engine (for interrupts) and m->console.
 * Sets m->pci. Returns 0 or an EXIT_CODE_* with err set. */
int pci_platform_create(struct machine *m, char *err, size_t errlen);
/* After the vCPUs and the console input have stopped. */
void pci_platform_destroy(struct machine *m);
/* The fd of --disk number i's image. */
int pci_platform_disk_fd(struct machine *m, int i);

/* Which device takes console input: virtio-console when the kernel command
 * line makes hvc0 the console (its last console=), else the UART's default. */
void pci_platform_console_input(struct machine *m, console_input_fn *fn, void **ctx);

#endif
