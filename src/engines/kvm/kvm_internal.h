/* Private to the kvm engine: the VM and vCPU objects behind engine_vm/vcpu. */
#ifndef POPEK_KVM_INTERNAL_H
#define POPEK_KVM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "engines/engine.h"

struct engine_vm {
	int kvm_fd, vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid;
	uint64_t msr_ok; /* bit i: cpu_state MSR i is known to this KVM */
	bool has_xsave, has_xcrs;
	bool sync_regs; /* kvm_run carries the registers on every exit */
	/* The RAM slots as mapped, to turn dirty logging on and off. */
	struct kvm_userspace_memory_region slot[2];
	unsigned nslots;
	/* Coalesced port writes (kvm_coalesce.c): the ring's place in each
	 * vCPU's kvm_run mapping (0: no ring), its entries, and the vCPU whose
	 * taken entry the machine is applying. */
	size_t ring_offset;
	uint32_t ring_max;
	_Atomic(struct engine_vcpu *) ring_owner;
	/* The guest's TSC rate (kHz): the one asked for (0: the host's) and
	 * the one its vCPUs got. */
	uint32_t want_tsc_khz, tsc_khz;
};

struct engine_vcpu {
	struct engine_vm *vm;
	int fd, index;
	struct kvm_run *run;
	atomic_bool thread_known;
	pthread_t thread;
	enum exit_reason pending; /* exit whose result must be completed on the next run */
	struct kvm_regs regs;	  /* lent to the machine, without sync_regs */
	/* KVM_RUN returned, and its exit waits behind coalesced writes. */
	bool exited, kicked;
	uint8_t coalesced[8]; /* the data of the coalesced write being reported */
	uint64_t ncoalesced;  /* writes reported without an exit (util/counter.h) */
};

enum coalesce_take { COALESCE_NONE, COALESCE_TAKEN, COALESCE_BUSY };
void kvm_coalesce_probe(struct engine_vm *vm);
int kvm_coalesce_pio(struct engine_vm *vm, uint16_t port, unsigned len);
/* A coalesced write into *ex (TAKEN), none left (NONE), or another vCPU's
 * entry still being applied (BUSY: come back later). */
enum coalesce_take kvm_coalesce_take(struct engine_vcpu *v, struct vcpu_exit *ex);
void kvm_coalesce_release(struct engine_vcpu *v); /* v's taken entry was applied */

int kvm_get_state(struct engine_vcpu *v, struct cpu_state *st);
int kvm_set_state(struct engine_vcpu *v, const struct cpu_state *st);
int kvm_probe_msrs(struct engine_vm *vm);
int kvm_get_vm_state(struct engine_vm *vm, struct vm_state *st);
int kvm_set_vm_state(struct engine_vm *vm, const struct vm_state *st);

#endif
