#include "machine/interpose.h"

#include "machine/hypercall.h"

static void pio(struct machine *m, struct vcpu_exit *ex)
{
	for (uint32_t i = 0; i < ex->io.count; i++)
		bus_access(&m->pio, ex->io.port, ex->io.data + (size_t)i * ex->io.size, ex->io.size,
			   ex->io.write);
}

enum exit_reason interpose(struct vcpu *v, struct vcpu_exit *ex)
{
	struct machine *m = v->m;
	struct hypercall hc;
	if (ex->reason == EXIT_MMIO) {
		bus_access(&m->mmio, ex->mmio.gpa, ex->mmio.data, ex->mmio.size, ex->mmio.write);
		return EXIT_MMIO;
	}
	if (hypercall_decode(ex, &hc)) {
		hypercall_complete(ex, hypercall_handle(v, &hc));
		return EXIT_HYPERCALL;
	}
	pio(m, ex);
	return EXIT_IO;
}
