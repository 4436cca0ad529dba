/* What a device may ask of the machine it is plugged into, instead of the
 * machine itself: its buses, guest RAM, interrupt lines and MSIs, stopping
 * the VM, the VM's clock, the console, and the VM's event loop (watch an fd,
 * arm a timer: util/loop.h). The machine fills one of these; devices never
 * include machine/machine.h. */
#ifndef POPEK_SERVICES_H
#define POPEK_SERVICES_H

#include <stddef.h>
#include <stdint.h>

#include "devices/request_gate.h"
#include "devices/virtio_kick.h"
#include "machine/bus.h"
#include "machine/config.h"
#include "machine/irq.h"
#include "machine/memory.h"
#include "machine/stop.h"
#include "util/loop.h"

struct pci_bus;

struct dev_services {
	struct bus *pio, *mmio;
	struct pci_bus *pci; /* the host bridge's bus */
	const struct guest_mem *mem;
	struct loop *loop;
	struct msi_sink msi;
	struct ioeventfd_sink ioeventfd; /* .set NULL: the engine has no fast path */
	struct request_gate gate;	 /* the policy's; .dev is set per instance */
	void *ctx;			 /* the machine, opaque, for the calls below */
	void (*irq_set)(void *ctx, unsigned gsi, bool level);
	/* Record why the VM stops (the first reason wins) and stop the vCPUs. */
	void (*stop)(void *ctx, enum stop_kind kind, int exit_code, const char *why);
	uint64_t (*clock_ns)(void *ctx); /* CLOCK_MONOTONIC ns since the VM was built */
	/* Guest → host console bytes; console_ctx is set for each console
	 * device (the policy sees which one wrote). */
	void (*console_tx)(void *console_ctx, const void *buf, size_t len);
	void *console_ctx;
};

static inline struct irq_line dev_irq_line(const struct dev_services *s, unsigned gsi)
{
	return (struct irq_line){.set = s->irq_set, .ctx = s->ctx, .gsi = gsi};
}

/* One row of the machine's device registry (src/machine/devices.c): how a
 * kind of device is made, saved, loaded and destroyed. Every device file
 * exports one. Pausing needs no hook: while the VM is paused the loop runs
 * no device callback. */
struct device_type {
	const char *name; /* instance and snapshot name; numbered ones get their index */
	bool numbered;	  /* "virtio-blk" → virtio-blk0, virtio-blk1, ... */
	/* How many instances the configuration asks for; NULL means one. */
	int (*count)(const struct vm_config *cfg);
	/* Make instance i; *dev is what the hooks below receive. 0, or -1 or an
	 * EXIT_CODE_* (a bad --disk is the user's: EXIT_CODE_USAGE) with err set. */
	int (*create)(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		      char *err, size_t errlen);
	/* State as a malloc'ed blob, and back: load validates (the blob may come
	 * from a hostile file) and returns -1 if it is not valid. NULL: stateless. */
	int (*save)(void *dev, void **buf, size_t *len);
	int (*load)(void *dev, const void *buf, size_t len);
	void (*destroy)(void *dev); /* NULL: nothing to free (the buses go with the machine) */
	/* Console devices: take host → guest bytes, return how many fit. */
	size_t (*input)(void *dev, const uint8_t *buf, size_t len);
};

#endif
