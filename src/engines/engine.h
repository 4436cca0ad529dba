/* The CPU engine interface: what the machine needs from a CPU, and nothing more.
 *
 * An engine runs guest instructions until something happens that the machine
 * must handle (an exit). It never sees devices: port I/O and MMIO come back as
 * exits, interrupts come in through irq_line/msi. It knows no call convention
 * either: a hypercall is a port write the machine decodes from the registers
 * the exit carries. Both the kvm
 * engine (hardware trap-and-emulate) and the soft engine (our interpreter)
 * implement this table.
 *
 * Threading: vcpu_run/get_state/set_state of one vCPU are called only from that
 * vCPU's thread (or while it is stopped); vcpu_kick and the VM-wide calls may
 * come from any thread. */
#ifndef POPEK_ENGINE_H
#define POPEK_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engines/cpu_state.h"
#include "engines/vm_state.h"

struct engine_vm;
struct engine_vcpu;
struct json_object;

enum exit_reason {
	EXIT_IO,   /* port I/O: io */
	EXIT_MMIO, /* access to guest-physical space with no RAM: mmio */
	/* Never returned by an engine: the machine counts an EXIT_IO it decodes
	 * as a popek hypercall under this reason. */
	EXIT_HYPERCALL,
	EXIT_HLT,      /* HLT with interrupts disabled: the vCPU can never wake */
	EXIT_SHUTDOWN, /* triple fault: fail */
	EXIT_KICKED,   /* vcpu_kick() asked the run to return */
	EXIT_FAIL,     /* the engine cannot continue: fail */
	/* SYSCALL at CPL3, only if engine_vm_config.syscall_exits: sys (popek exec) */
	EXIT_SYSCALL,
	NR_EXIT_REASONS
};

extern const char *const exit_reason_names[NR_EXIT_REASONS];

/* The general registers a call convention may use. */
struct exit_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi;
};

struct vcpu_exit {
	enum exit_reason reason;
	union {
		/* count > 1 for REP INS/OUTS: data holds count*size bytes.
		 * For reads the machine fills data; the engine completes the
		 * instruction on the next vcpu_run. data stays owned by the engine.
		 * A single 32-bit write (the shape of a hypercall, to any port) also
		 * carries the registers (has_regs); if the machine sets regs_dirty
		 * the engine loads them back on the next vcpu_run. */
		struct {
			uint16_t port;
			uint8_t size;
			bool write;
			uint32_t count;
			uint8_t *data;
			bool has_regs, regs_dirty;
			bool coalesced; /* a write that made no exit (coalesce_pio) */
			struct exit_regs regs;
		} io;
		struct {
			uint64_t gpa;
			uint8_t size;
			bool write;
			uint8_t data[8];
		} mmio;
		struct {
			uint64_t rip;
			char why[120];
		} fail;
		/* Linux's convention: nr in RAX, arguments in RDI RSI RDX R10 R8 R9.
		 * RCX and R11 already hold the return RIP and RFLAGS, as SYSCALL
		 * leaves them. The machine sets ret (loaded into RAX on the next
		 * vcpu_run) and flush if it removed or narrowed a page mapping. */
		struct {
			uint64_t nr, arg[6];
			uint64_t ret;
			bool flush;
		} sys;
	};
};

struct engine_vm_config {
	int ncpus;
	uint64_t ram_size;
	/* A SYSCALL at CPL3 leaves as EXIT_SYSCALL instead of entering the
	 * guest's LSTAR (soft; kvm has no such exit and ignores it). */
	bool syscall_exits;
	/* Translate guest code to host code (soft: src/engines/soft/jit): a
	 * block once it has run jit_after times (0: the engine's default; 1
	 * translates every block, as the differential tests want). */
	bool jit;
	unsigned jit_after;
	/* The rate the guest's TSC counts at, in kHz; 0: the engine's own (soft
	 * 1 GHz, kvm the host's). A VM that moved keeps the rate it calibrated
	 * against. kvm without TSC scaling cannot slow the host's and says so. */
	uint32_t tsc_khz;
};

/* A TSC rate an engine takes (and a snapshot or stream may name): 1 MHz to
 * 10 GHz. */
#define ENGINE_TSC_KHZ_MIN 1000u
#define ENGINE_TSC_KHZ_MAX 10000000u

#define ENGINE_MEM_READONLY 1u

struct engine_ops {
	const char *name;

	/* VM lifetime. create returns a negative errno and writes a message a
	 * person can act on into err (cap errlen) on failure. */
	int (*vm_create)(const struct engine_vm_config *cfg, struct engine_vm **out, char *err,
			 size_t errlen);
	void (*vm_destroy)(struct engine_vm *vm);

	/* Back guest-physical [gpa, gpa+size) with host memory at hva. */
	int (*map_memory)(struct engine_vm *vm, unsigned slot, uint64_t gpa, uint64_t size,
			  void *hva, unsigned flags);

	int (*vcpu_create)(struct engine_vm *vm, int index, struct engine_vcpu **out);
	void (*vcpu_destroy)(struct engine_vcpu *vcpu);

	/* Run until the next exit. Returns 0, or a negative errno for a host failure.
	 * Pass the same exit struct back on the next call: it carries the results
	 * (I/O and MMIO read data, registers written back) the engine must complete. */
	int (*vcpu_run)(struct engine_vcpu *vcpu, struct vcpu_exit *exit);
	/* Make a running (or the next) vcpu_run return EXIT_KICKED soon. */
	void (*vcpu_kick)(struct engine_vcpu *vcpu);

	int (*get_state)(struct engine_vcpu *vcpu, struct cpu_state *st);
	int (*set_state)(struct engine_vcpu *vcpu, const struct cpu_state *st);

	/* Interrupt inputs: ISA/IOAPIC line by GSI, and message-signalled. */
	int (*irq_line)(struct engine_vm *vm, unsigned gsi, bool level);
	int (*msi)(struct engine_vm *vm, uint64_t addr, uint32_t data);
	/* Optional fast path (NULL if the engine has none): when the guest writes
	 * exactly len bytes at MMIO address gpa, signal eventfd fd instead of
	 * returning an EXIT_MMIO; assign=false removes the binding. Devices fall
	 * back to MMIO exits without it. (kvm: KVM_IOEVENTFD.) */
	int (*ioeventfd)(struct engine_vm *vm, uint64_t gpa, unsigned len, int fd, bool assign);
	/* Optional (NULL or -ENOTSUP: every write exits): guest writes to ports
	 * [port, port + len) need no exit of their own; each is reported, in
	 * order, as an EXIT_IO write before the next exit of any vCPU. Only for
	 * latches whose value the guest can see through exits alone. (kvm:
	 * KVM_CAP_COALESCED_PIO.) */
	int (*coalesce_pio)(struct engine_vm *vm, uint16_t port, unsigned len);

	/* VM-wide interrupt controllers, PIT and clock (snapshots); all vCPUs
	 * must be parked. */
	int (*get_vm_state)(struct engine_vm *vm, struct vm_state *st);
	int (*set_vm_state)(struct engine_vm *vm, const struct vm_state *st);

	/* Optional (migration): which RAM pages the vCPUs wrote. dirty_log(on)
	 * starts recording, or stops it; dirty_collect ORs into bitmap (a bit per
	 * 4 KiB page of slot) the pages written since logging started or the last
	 * collect, and starts the next interval. All vCPUs must be parked. */
	int (*dirty_log)(struct engine_vm *vm, bool on);
	int (*dirty_collect)(struct engine_vm *vm, unsigned slot, uint64_t *bitmap);

	/* Optional (NULL: the engine's CPUs see RAM as hardware does): the VMM,
	 * not a vCPU, wrote mapped RAM at [hva, hva+len) — a device's DMA — or,
	 * with hva NULL, somewhere it cannot say. Any thread, any time. */
	void (*ram_written)(struct engine_vm *vm, const void *hva, uint64_t len);

	/* The rate the guest's TSC counts at, in kHz (snapshots and migration
	 * carry it); 0 if not known yet. */
	uint32_t (*tsc_khz)(struct engine_vm *vm);

	/* Optional: describe the last instruction the engine refused with #UD
	 * (RIP, bytes, class), for a crash report; 0 if there was none. */
	int (*last_undefined)(struct engine_vcpu *vcpu, char *buf, size_t len);

	/* Optional: add engine-specific counters (e.g. traps by class) to obj. */
	void (*stats)(struct engine_vcpu *vcpu, struct json_object *obj);
};

extern const struct engine_ops kvm_engine;
extern const struct engine_ops soft_engine;

/* Look an engine up by name ("kvm", "soft"); NULL if unknown. */
const struct engine_ops *engine_find(const char *name);

#endif
