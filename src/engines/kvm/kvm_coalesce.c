/* Coalesced port writes (KVM_CAP_COALESCED_PIO): KVM appends the guest's
 * writes to a registered port range to a ring shared with us instead of
 * exiting, and the engine reports them, in order, as EXIT_IO writes before
 * the next exit of any vCPU. Only for ports that are plain latches, read back
 * through an exit of their own (the PCI config address): a delayed write is
 * then invisible to the guest.
 *
 * Order across vCPUs: vCPU B may report an entry that vCPU A wrote. A's next
 * access to the latch must not be handled before B's machine has applied the
 * entry, so the vCPU that took an entry owns the ring until its next
 * vcpu_run (the entry is applied by then); another vCPU with an exit to
 * report meanwhile returns EXIT_KICKED and comes back, never blocking (it
 * must stay free to park for a pause). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "engines/kvm/kvm_internal.h"
#include "util/counter.h"

void kvm_coalesce_probe(struct engine_vm *vm)
{
	long page = sysconf(_SC_PAGESIZE);
	int off = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO) <= 0 || off <= 0 ||
	    (long)vm->run_size < (off + 1) * page)
		return;
	vm->ring_offset = (size_t)off * (size_t)page;
	vm->ring_max = (uint32_t)(((size_t)page - sizeof(struct kvm_coalesced_mmio_ring)) /
				  sizeof(struct kvm_coalesced_mmio));
}

int kvm_coalesce_pio(struct engine_vm *vm, uint16_t port, unsigned len)
{
	if (!vm->ring_offset)
		return -ENOTSUP;
	struct kvm_coalesced_mmio_zone z = {.addr = port, .size = len, .pio = 1};
	return ioctl(vm->vm_fd, KVM_REGISTER_COALESCED_MMIO, &z) < 0 ? -errno : 0;
}

static struct kvm_coalesced_mmio_ring *ring_of(struct engine_vcpu *v)
{
	return (struct kvm_coalesced_mmio_ring *)((char *)v->run + v->vm->ring_offset);
}

static bool ring_empty(struct kvm_coalesced_mmio_ring *r)
{
	return __atomic_load_n(&r->first, __ATOMIC_SEQ_CST) ==
	       __atomic_load_n(&r->last, __ATOMIC_SEQ_CST);
}

void kvm_coalesce_release(struct engine_vcpu *v)
{
	struct engine_vcpu *me = v;
	atomic_compare_exchange_strong(&v->vm->ring_owner, &me, NULL);
}

enum coalesce_take kvm_coalesce_take(struct engine_vcpu *v, struct vcpu_exit *ex)
{
	struct engine_vm *vm = v->vm;
	if (!vm->ring_offset)
		return COALESCE_NONE;
	struct kvm_coalesced_mmio_ring *r = ring_of(v);
	/* The ring before the owner: an entry gone from the ring was taken by
	 * an owner that is either still set or done applying it. */
	if (ring_empty(r) && !atomic_load(&vm->ring_owner))
		return COALESCE_NONE;
	struct engine_vcpu *none = NULL;
	if (!atomic_compare_exchange_strong(&vm->ring_owner, &none, v))
		return COALESCE_BUSY;
	uint32_t first = __atomic_load_n(&r->first, __ATOMIC_SEQ_CST);
	uint32_t last = __atomic_load_n(&r->last, __ATOMIC_ACQUIRE);
	if (first == last || first >= vm->ring_max || last >= vm->ring_max) {
		atomic_store(&vm->ring_owner, NULL);
		return COALESCE_NONE;
	}
	const struct kvm_coalesced_mmio *e = &r->coalesced_mmio[first];
	unsigned len = e->len <= sizeof(v->coalesced) ? e->len : sizeof(v->coalesced);
	memcpy(v->coalesced, e->data, len);
	*ex = (struct vcpu_exit){.reason = EXIT_IO,
				 .io = {.port = (uint16_t)e->phys_addr,
					.size = (uint8_t)len,
					.write = true,
					.count = 1,
					.data = v->coalesced,
					.coalesced = true}};
	counter_add(&v->ncoalesced, 1);
	__atomic_store_n(&r->first, (first + 1) % vm->ring_max, __ATOMIC_RELEASE);
	return COALESCE_TAKEN;
}
