/* A virtual machine: guest memory, two buses, interrupt routing, vCPU threads
 * and the engine underneath. One process runs one machine. */
#ifndef POPEK_MACHINE_H
#define POPEK_MACHINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "engines/engine.h"
#include "machine/bus.h"
#include "machine/config.h"
#include "machine/irq.h"
#include "machine/memory.h"

/* Why the machine stopped; the first reason recorded wins. */
enum stop_kind {
	STOP_NONE,
	STOP_GUEST_EXIT, /* the guest chose an exit status (debug-exit, hypercall) */
	STOP_POWEROFF,
	STOP_RESET,
	STOP_CRASH, /* triple fault, HLT with interrupts off forever, engine failure */
	STOP_ERROR  /* host-side failure */
};

/* popek's exit codes (documented in README.md). Guest statuses pass through. */
#define EXIT_CODE_USAGE	 64 /* bad command line */
#define EXIT_CODE_IMAGE	 65 /* kernel/initrd refused before start */
#define EXIT_CODE_ENGINE 69 /* engine unavailable */
#define EXIT_CODE_CRASH	 70 /* the VM crashed */
#define EXIT_CODE_HOST	 71 /* host-side failure */
#define EXIT_CODE_POLICY 72 /* a policy rule stopped the VM */
#define EXIT_CODE_JAIL	 73 /* the jail's seccomp filter stopped a forbidden system call */

/* Written by the vCPU's thread only, read live by `popek stats`: util/counter.h. */
struct vcpu_counters {
	uint64_t exits[NR_EXIT_REASONS];
	uint64_t hypercalls[8]; /* by number; the last slot counts unknown ones */
};

struct machine;

struct vcpu {
	struct machine *m;
	int index;
	struct engine_vcpu *ev;
	pthread_t thread;
	struct vcpu_counters count;
	pthread_t pauser; /* the last pause a policy rule started */
	bool pauser_live;
};

struct console;
struct uart;
struct pci_platform;
struct policy_active;
struct policy_events;

/* A device as the machine sees it: a name, snapshot hooks and a destructor.
 * save returns the device's plain state as a malloc'ed blob; load validates a
 * blob (it may come from a hostile file) and returns -1 if it is not valid. */
struct machine_device {
	const char *name; /* unique in the VM, stable across runs: "uart0", "virtio-blk0" */
	void *dev;
	int (*save)(void *dev, void **buf, size_t *len);
	int (*load)(void *dev, const void *buf, size_t len);
	void (*destroy)(void *dev);
	/* Optional, for devices with work from threads other than the vCPUs'
	 * (I/O threads, console input): stop it completely while the VM is
	 * paused (no guest memory update, no interrupt) and restart it. */
	void (*pause)(void *dev, bool paused);
};

#define MAX_DEVICES 32

struct machine {
	const struct vm_config *cfg;
	const struct engine_ops *engine;
	struct engine_vm *evm;
	struct guest_mem mem;
	struct bus pio, mmio;
	int ncpus;
	struct vcpu vcpu[MAX_VCPUS];

	pthread_mutex_t stop_lock;
	atomic_int stop;	  /* enum stop_kind */
	atomic_int running_vcpus; /* from machine_create until each vCPU thread ends */
	int exit_code;
	char stop_msg[256];

	/* Pause: vCPUs park outside the engine so their state can be read. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	bool pause_requested;
	int parked; /* vCPUs currently parked */

	uint64_t start_ns; /* CLOCK_MONOTONIC when the VM was built, for get_time; constant */
	const char *name;
	struct console *console;
	struct uart *uart;
	int ndevices;
	struct machine_device devices[MAX_DEVICES];
	struct pci_platform *pci;     /* PCI host bridge and virtio devices */
	struct policy_active *policy; /* what interpose() applies; `popek policy` replaces it */
	struct policy_events *events; /* audit writer and trace clients */
};

/* Build everything (memory, engine, devices, loaded kernel); err says why not.
 * Returns 0 or an EXIT_CODE_*. */
int machine_create(struct machine *m, const struct vm_config *cfg, char *err, size_t errlen);
/* Enter the jail (src/jail/) with the allowlist this engine and device set
 * need: after machine_create and everything else that needs the host, before
 * any thread of the VMM's own starts. 0 or an EXIT_CODE_*. */
int machine_jail(struct machine *m, char *err, size_t errlen);
/* Run all vCPUs until the machine stops; returns the process exit code. */
int machine_run(struct machine *m);
void machine_destroy(struct machine *m);

/* Record why the machine stops (first call wins) and kick every vCPU. */
void machine_stop(struct machine *m, enum stop_kind kind, int exit_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline bool machine_stopping(struct machine *m)
{
	return atomic_load_explicit(&m->stop, memory_order_acquire) != STOP_NONE;
}

/* Register a device for snapshots and teardown (destroyed in reverse order). */
int machine_add_device(struct machine *m, const struct machine_device *d);

/* Stop every vCPU at an instruction boundary and wait until all are parked;
 * resume lets them go on. Safe from any thread but a vCPU's own. */
void machine_pause(struct machine *m);
void machine_resume(struct machine *m);
bool machine_paused(struct machine *m);
/* Called by a vCPU thread after each exit: parks it while a pause is requested. */
void machine_park_if_paused(struct machine *m);

/* The interrupt line gsi of this machine, for handing to a device. */
struct irq_line machine_irq_line(struct machine *m, unsigned gsi);
struct msi_sink machine_msi_sink(struct machine *m);

uint64_t monotonic_ns(void);

#endif
