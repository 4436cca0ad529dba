/* The paravirtual hypercall interface (docs/hypercalls.md), handled by the
 * machine on an EXIT_HYPERCALL from either engine. */
#ifndef POPEK_MACHINE_HYPERCALL_H
#define POPEK_MACHINE_HYPERCALL_H

#include "machine/machine.h"

void hypercall_handle(struct vcpu *v, struct vcpu_exit *ex);

#endif
