/* The paravirtual hypercall interface (docs/hypercalls.md): decoded by the
 * machine from a port write on either engine, then handled here. */
#ifndef POPEK_MACHINE_HYPERCALL_H
#define POPEK_MACHINE_HYPERCALL_H

#include <stdbool.h>
#include <stdint.h>

#include "machine/machine.h"

struct hypercall {
	uint64_t nr;
	uint64_t arg[4];
};

/* Is this exit a popek hypercall? If so, fill hc from the lent registers. */
bool hypercall_decode(const struct vcpu_exit *ex, struct hypercall *hc);
/* Give the guest the call's result (RAX). */
void hypercall_complete(struct vcpu_exit *ex, uint64_t ret);
/* Run the call; returns its result. */
uint64_t hypercall_handle(struct vcpu *v, const struct hypercall *hc);

#endif
