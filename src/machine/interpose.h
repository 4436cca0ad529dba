/* The one trap path: every exit that asks popek to act (port I/O, MMIO and
 * the hypercalls decoded from port writes) goes through interpose() before a
 * bus, device or hypercall handler acts on it. */
#ifndef POPEK_MACHINE_INTERPOSE_H
#define POPEK_MACHINE_INTERPOSE_H

#include "machine/machine.h"

/* Act on an EXIT_IO or EXIT_MMIO; returns the reason it counts as
 * (EXIT_HYPERCALL for a decoded hypercall). */
enum exit_reason interpose(struct vcpu *v, struct vcpu_exit *ex);

#endif
