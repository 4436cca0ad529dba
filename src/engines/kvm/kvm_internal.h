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
};

struct engine_vcpu {
	struct engine_vm *vm;
	int fd, index;
	struct kvm_run *run;
	atomic_bool thread_known;
	pthread_t thread;
	enum exit_reason pending; /* exit whose result must be completed on the next run */
	struct kvm_regs regs;	  /* lent to the machine, without sync_regs */
};

int kvm_get_state(struct engine_vcpu *v, struct cpu_state *st);
int kvm_set_state(struct engine_vcpu *v, const struct cpu_state *st);
int kvm_probe_msrs(struct engine_vm *vm);
int kvm_get_vm_state(struct engine_vm *vm, struct vm_state *st);
int kvm_set_vm_state(struct engine_vm *vm, const struct vm_state *st);

#endif
