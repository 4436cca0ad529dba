/* A virtual machine: guest memory, two buses, interrupt routing, vCPU threads,
 * the event loop its devices' host-side work runs on, and the engine
 * underneath. One process runs one machine. Threads: the main thread runs
 * the loop (console input, eventfd kicks, the control socket, signals); one
 * thread per vCPU; all start after the jail is entered. */
#ifndef POPEK_MACHINE_H
#define POPEK_MACHINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "devices/pci.h"
#include "devices/services.h"
#include "engines/engine.h"
#include "machine/bus.h"
#include "machine/config.h"
#include "machine/irq.h"
#include "machine/memory.h"
#include "machine/stop.h"
#include "util/loop.h"

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
struct policy_active;
struct policy_events;

/* A device of this VM: one instance of a registry row (devices/services.h). */
struct machine_device {
	char name[24]; /* unique in the VM, stable across runs: "uart0", "virtio-blk0" */
	const struct device_type *type;
	void *dev;
};

#define MAX_DEVICES 32

/* An outgoing migration as `popek stats` shows it: written by its thread
 * (util/counter.h), all zero before the first. */
struct migration_progress {
	uint64_t active, round, sent_bytes, dirty_pages, dirty_rate, expected_downtime_us,
	    throttle_pct;
};

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
	/* What runs once the VM resumes (machine_after_resume), under pause_lock. */
	struct {
		void (*fn)(void *arg);
		void *arg;
	} after_resume[MAX_DEVICES];
	int nafter_resume;

	uint64_t start_ns; /* CLOCK_MONOTONIC when the VM was built, for get_time; constant */
	const char *name;
	struct console *console;
	struct loop *loop;
	struct pci_bus pci;	 /* the host bridge's bus */
	bool pci_ready;		 /* pci is initialised (and must be destroyed) */
	struct dev_services svc; /* what every device gets: filled by machine_services_init */
	int ndevices;
	struct machine_device devices[MAX_DEVICES];
	struct policy_active *policy; /* what interpose() applies; `popek policy` replaces it */
	struct policy_events *events; /* audit writer and trace clients */
	struct migration_progress migration;
	int uffd; /* an incoming post-copy's userfaultfd on RAM, or -1: the jail allows it */
	pthread_t pauser; /* the last pause a policy rule started off the vCPUs (on the loop) */
	bool pauser_live;
	/* Guest MMIO writes the engine signals on eventfds (ioeventfd), kept so
	 * that a live policy can take them all back (machine_trap_kicks). */
	pthread_mutex_t kick_lock;
	bool kicks_trap; /* taken back: virtio notifications trap from now on */
	int nkicks;
	struct kick_binding {
		uint64_t gpa;
		unsigned len;
		int fd;
	} kicks[MAX_DEVICES * KICK_MAX_QUEUES];
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

/* Fill m->svc from m (buses, RAM, loop, engine, console): for machine_create,
 * and for rigs that build a machine without it (tests, fuzzers). */
void machine_services_init(struct machine *m);
/* Take every ioeventfd binding back from the engine and make no new ones:
 * virtio notifications trap as MMIO exits from now on, on the vCPU that
 * wrote them (a policy replaced live that must see them). */
void machine_trap_kicks(struct machine *m);
/* Run fn(arg) on the loop once the VM next resumes (after a pause that is
 * under way). Up to MAX_DEVICES at a time; -1 when full. */
int machine_after_resume(struct machine *m, void (*fn)(void *arg), void *arg);
/* Create instance i of type t and add it to m (snapshots, teardown in
 * reverse order). 0 or an EXIT_CODE_* with err set. */
int machine_add_device(struct machine *m, const struct device_type *t, int i, char *err,
		       size_t errlen);
/* Every device of the registry the configuration asks for (src/machine/devices.c). */
int machine_create_devices(struct machine *m, char *err, size_t errlen);
/* The device called name (a snapshot section's), or NULL. */
struct machine_device *machine_device_find(struct machine *m, const char *name);
/* The fd of --disk number i's image, or -1. */
int machine_disk_fd(struct machine *m, int i);
/* --disk number i's writes tracked in bitmap, or no more (NULL): disk_track
 * in devices/disk.h. 0, or -1 if popek does not write that disk itself. */
int machine_disk_track(struct machine *m, int i, uint64_t *bitmap);
/* Take every disk's lock (disk_config.lock_later), waiting up to timeout_s for
 * the migration source to let go. 0, or -1 with err. */
int machine_disks_lock(struct machine *m, int timeout_s, char *err, size_t errlen);

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
