/* The kvm engine: hardware-assisted trap-and-emulate through /dev/kvm. The CPU
 * runs the guest; privileged operations the hardware cannot finish come back
 * as KVM exits, which we translate into engine exits for the machine. The
 * LAPIC, IOAPIC, PIC and PIT live in the kernel (KVM_CREATE_IRQCHIP/PIT2). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "engines/kvm/kvm_internal.h"
#include "util/counter.h"

#define KICK_SIGNAL SIGUSR1
#define TSS_ADDR    0xfffbd000 /* 3 pages VMX needs for real-mode emulation */

static void kick_handler(int sig)
{
	(void)sig; /* only here to interrupt KVM_RUN */
}

static int open_kvm(char *err, size_t errlen)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	int e = errno;
	if (e == ENOENT)
		snprintf(err, errlen,
			 "/dev/kvm: not found — load the kvm module (modprobe kvm_intel or "
			 "kvm_amd) or use --engine soft");
	else if (e == EACCES || e == EPERM)
		snprintf(err, errlen,
			 "/dev/kvm: permission denied — add yourself to group kvm or use "
			 "--engine soft");
	else
		snprintf(err, errlen, "/dev/kvm: %s — use --engine soft", strerror(e));
	return -e;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	/* From KVM's own limit (KVM_MAX_CPUID_ENTRIES, 256): a call that ends in
	 * E2BIG has enumerated every leaf first, ~0.4 ms on a nested host. */
	for (int n = 256; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = (uint32_t)n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

static void kvm_vm_destroy(struct engine_vm *vm)
{
	if (!vm)
		return;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	free(vm->cpuid);
	free(vm);
}

/* Wire interrupt lines as on a PC: ISA IRQs 0-15 to the 8259 pair, GSIs to
 * IOAPIC pins, except that ISA IRQ0 (the PIT) arrives at IOAPIC pin 2 (the
 * override in our MADT). KVM's default sends the in-kernel PIT to pin 0. */
static int set_irq_routing(struct engine_vm *vm)
{
	enum { NR_PIC = 16, NR_IOAPIC = 24 };
	struct kvm_irq_routing *r =
	    calloc(1, sizeof(*r) + (NR_PIC + NR_IOAPIC) * sizeof(struct kvm_irq_routing_entry));
	if (!r)
		return -1;
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < NR_PIC; gsi++) {
		if (gsi == 2)
			continue; /* the cascade */
		r->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {.irqchip =
				      gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				  .pin = gsi % 8}};
	}
	for (unsigned gsi = 0; gsi < NR_IOAPIC; gsi++) {
		if (gsi == 2)
			continue;
		r->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi ? gsi : 2}};
	}
	r->nr = n;
	int rc = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r);
	free(r);
	return rc;
}

static int kvm_vm_create(const struct engine_vm_config *cfg, struct engine_vm **out, char *err,
			 size_t errlen)
{
	struct engine_vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->vm_fd = -1;
	vm->kvm_fd = open_kvm(err, errlen);
	if (vm->kvm_fd < 0) {
		int rc = vm->kvm_fd;
		free(vm);
		return rc;
	}
	const char *step = "KVM_GET_API_VERSION";
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		goto fail;
	step = "KVM_CHECK_EXTENSION(IRQCHIP, IMMEDIATE_EXIT)";
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0)
		goto fail;
	int maxcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (maxcpus > 0 && cfg->ncpus > maxcpus) {
		snprintf(err, errlen, "/dev/kvm allows at most %d vCPUs — lower --cpus", maxcpus);
		kvm_vm_destroy(vm);
		return -EINVAL;
	}
	vm->want_tsc_khz = cfg->tsc_khz;
	vm->has_xsave = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0;
	vm->has_xcrs = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	vm->sync_regs =
	    (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) & KVM_SYNC_X86_REGS) != 0;
	step = "KVM_CREATE_VM";
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		goto fail;
	step = "KVM_GET_VCPU_MMAP_SIZE";
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0)
		goto fail;
	kvm_coalesce_probe(vm);
	/* Only VMX needs these; elsewhere they may fail harmlessly. */
	ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR);
	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	step = "KVM_SET_GSI_ROUTING";
	if (set_irq_routing(vm) < 0)
		goto fail;
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	step = "KVM_CREATE_PIT2";
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		goto fail;
	step = "KVM_GET_SUPPORTED_CPUID";
	vm->cpuid = supported_cpuid(vm->kvm_fd);
	if (!vm->cpuid)
		goto fail;
	step = "KVM_GET_MSR_INDEX_LIST";
	if (kvm_probe_msrs(vm) < 0)
		goto fail;

	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
	*out = vm;
	return 0;
fail:;
	int e = errno ? errno : EINVAL;
	snprintf(err, errlen, "/dev/kvm: %s failed: %s — use --engine soft", step, strerror(e));
	kvm_vm_destroy(vm);
	return -e;
}

static int kvm_map_memory(struct engine_vm *vm, unsigned slot, uint64_t gpa, uint64_t size,
			  void *hva, unsigned flags)
{
	struct kvm_userspace_memory_region r = {
	    .slot = slot,
	    .flags = (flags & ENGINE_MEM_READONLY) ? KVM_MEM_READONLY : 0,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	if (slot < sizeof(vm->slot) / sizeof(vm->slot[0])) {
		vm->slot[slot] = r;
		if (slot >= vm->nslots)
			vm->nslots = slot + 1;
	}
	return 0;
}

/* KVM_MEM_LOG_DIRTY_PAGES on every RAM slot: KVM write-protects the pages
 * and records the first write to each after every KVM_GET_DIRTY_LOG. */
static int kvm_dirty_log(struct engine_vm *vm, bool on)
{
	for (unsigned i = 0; i < vm->nslots; i++) {
		struct kvm_userspace_memory_region *r = &vm->slot[i];
		r->flags = on ? r->flags | KVM_MEM_LOG_DIRTY_PAGES
			      : r->flags & ~(uint32_t)KVM_MEM_LOG_DIRTY_PAGES;
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, r) < 0)
			return -errno;
	}
	return 0;
}

static int kvm_dirty_collect(struct engine_vm *vm, unsigned slot, uint64_t *bitmap)
{
	if (slot >= vm->nslots)
		return -EINVAL;
	size_t words = (vm->slot[slot].memory_size / 4096 + 63) / 64;
	uint64_t *got = calloc(words, sizeof(*got));
	if (!got)
		return -ENOMEM;
	struct kvm_dirty_log d = {.slot = slot, .dirty_bitmap = got};
	int rc = ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &d) < 0 ? -errno : 0;
	for (size_t i = 0; !rc && i < words; i++)
		bitmap[i] |= got[i];
	free(got);
	return rc;
}

/* CPUID as KVM supports it, with this vCPU's APIC ID filled in and the
 * hypervisor bit set: KVM does not report it, and without it Linux ignores
 * the KVM leaves (0x40000000), so no kvmclock — it then calibrates the TSC
 * against the PIT, slowly, and may give up on the TSC altogether. */
static int set_cpuid(struct engine_vcpu *v)
{
	struct kvm_cpuid2 *src = v->vm->cpuid;
	size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return -ENOMEM;
	memcpy(c, src, sz);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1) {
			e->ebx = (e->ebx & 0x00ffffff) | ((uint32_t)v->index << 24);
			e->ecx |= 1u << 31;
		}
		if (e->function == 0xb || e->function == 0x1f)
			e->edx = (uint32_t)v->index;
	}
	int rc = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return rc;
}

static void kvm_vcpu_destroy(struct engine_vcpu *v)
{
	if (!v)
		return;
	if (v->run)
		munmap(v->run, (size_t)v->vm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

/* The rate a VM that moved here calibrated its TSC against (cfg.tsc_khz):
 * KVM_SET_TSC_KHZ, which needs TSC scaling in the host's CPU unless the rate
 * is above the host's (KVM then catches the TSC up at each exit) or within
 * its tolerance. Without it the guest's TSC runs at the host's rate: said
 * once, with what it does to the guest. */
static void set_tsc_khz(struct engine_vcpu *v)
{
	struct engine_vm *vm = v->vm;
	int host = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (vm->want_tsc_khz && host > 0 && (uint32_t)host != vm->want_tsc_khz &&
	    ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)vm->want_tsc_khz) < 0) {
		if (v->index == 0)
			fprintf(stderr,
				"popek: kvm: this guest's TSC counted at %u kHz where it ran; "
				"this host's KVM cannot scale its TSC (no KVM_CAP_TSC_CONTROL) to "
				"that, so here it counts at %d kHz: a guest that calibrated it "
				"sees time run %.2f times as fast (kvmclock is right; Linux on "
				"the tsc clocksource is not) — move it to a host with TSC scaling "
				"or to the soft engine\n",
				vm->want_tsc_khz, host, (double)host / vm->want_tsc_khz);
	}
	int now = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (v->index == 0 && now > 0)
		vm->tsc_khz = (uint32_t)now;
}

static uint32_t kvm_tsc_khz(struct engine_vm *vm)
{
	return vm->tsc_khz;
}

static int kvm_vcpu_create(struct engine_vm *vm, int index, struct engine_vcpu **out)
{
	struct engine_vcpu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->index = index;
	v->pending = NR_EXIT_REASONS;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, index);
	int rc = 0;
	if (v->fd < 0) {
		rc = -errno;
		goto fail;
	}
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		rc = -errno;
		goto fail;
	}
	if (vm->sync_regs)
		v->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	rc = set_cpuid(v);
	if (rc)
		goto fail;
	set_tsc_khz(v);
	*out = v;
	return 0;
fail:
	kvm_vcpu_destroy(v);
	return rc;
}

static uint64_t current_rip(struct engine_vcpu *v)
{
	struct kvm_regs r;
	return ioctl(v->fd, KVM_GET_REGS, &r) < 0 ? 0 : r.rip;
}

/* The registers lent to the machine: in kvm_run with sync regs (no extra
 * ioctl), else fetched once and kept for the write-back. */
static struct kvm_regs *lent_regs(struct engine_vcpu *v)
{
	return v->vm->sync_regs ? &v->run->s.regs.regs : &v->regs;
}

/* Finish the instruction behind the previous exit before running again. */
static int complete_exit(struct engine_vcpu *v, const struct vcpu_exit *ex)
{
	enum exit_reason p = v->pending;
	v->pending = NR_EXIT_REASONS;
	if (p == EXIT_MMIO && !v->run->mmio.is_write) {
		memcpy(v->run->mmio.data, ex->mmio.data, sizeof(v->run->mmio.data));
	} else if (p == EXIT_IO && ex->io.regs_dirty) {
		struct kvm_regs *r = lent_regs(v);
		const struct exit_regs *e = &ex->io.regs;
		r->rax = e->rax;
		r->rbx = e->rbx;
		r->rcx = e->rcx;
		r->rdx = e->rdx;
		r->rsi = e->rsi;
		r->rdi = e->rdi;
		if (v->vm->sync_regs)
			v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
		else if (ioctl(v->fd, KVM_SET_REGS, r) < 0)
			return -errno;
	}
	return 0;
}

static int lend_regs(struct engine_vcpu *v, struct vcpu_exit *ex)
{
	struct kvm_regs *r = lent_regs(v);
	if (!v->vm->sync_regs && ioctl(v->fd, KVM_GET_REGS, r) < 0)
		return -errno;
	ex->io.has_regs = true;
	ex->io.regs = (struct exit_regs){r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi};
	v->pending = EXIT_IO;
	return 0;
}

static void fail_exit(struct engine_vcpu *v, struct vcpu_exit *ex, enum exit_reason reason,
		      const char *why)
{
	ex->reason = reason;
	ex->fail.rip = current_rip(v);
	snprintf(ex->fail.why, sizeof(ex->fail.why), "%s", why);
}

static int kvm_vcpu_run(struct engine_vcpu *v, struct vcpu_exit *ex)
{
	if (!atomic_load(&v->thread_known)) {
		v->thread = pthread_self();
		atomic_store(&v->thread_known, true);
	}
	kvm_coalesce_release(v);
	struct kvm_run *run = v->run;
	if (!v->exited) {
		int rc = complete_exit(v, ex);
		if (rc)
			return rc;
		v->kicked = false;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno != EINTR && errno != EAGAIN)
				return -errno;
			/* An exchange, not a store: if it reads a kick's 1, it
			 * acquires what the kicker published first (pause or stop);
			 * if a kick comes after it, the 1 stays and the next
			 * KVM_RUN returns at once. */
			__atomic_exchange_n(&run->immediate_exit, 0, __ATOMIC_ACQ_REL);
			v->kicked = true;
		}
		v->exited = true;
	}
	/* The guest made its coalesced writes before this exit: they go first. */
	switch (kvm_coalesce_take(v, ex)) {
	case COALESCE_TAKEN:
		return 0;
	case COALESCE_BUSY:
		ex->reason = EXIT_KICKED;
		return 0;
	case COALESCE_NONE:
		break;
	}
	v->exited = false;
	if (v->kicked) {
		ex->reason = EXIT_KICKED;
		return 0;
	}
	char why[96];
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		ex->reason = EXIT_IO;
		ex->io.port = run->io.port;
		ex->io.size = run->io.size;
		ex->io.write = run->io.direction == KVM_EXIT_IO_OUT;
		ex->io.count = run->io.count;
		ex->io.data = (uint8_t *)run + run->io.data_offset;
		ex->io.has_regs = ex->io.regs_dirty = ex->io.coalesced = false;
		/* A single 32-bit OUT may be a hypercall: the machine decodes it. */
		if (ex->io.write && ex->io.size == 4 && ex->io.count == 1)
			return lend_regs(v, ex);
		return 0;
	case KVM_EXIT_MMIO:
		ex->reason = EXIT_MMIO;
		ex->mmio.gpa = run->mmio.phys_addr;
		ex->mmio.size = (uint8_t)(run->mmio.len > 8 ? 8 : run->mmio.len);
		ex->mmio.write = run->mmio.is_write;
		memcpy(ex->mmio.data, run->mmio.data, 8);
		if (!ex->mmio.write)
			v->pending = EXIT_MMIO;
		return 0;
	case KVM_EXIT_INTR:
		ex->reason = EXIT_KICKED;
		return 0;
	case KVM_EXIT_HLT:
		fail_exit(v, ex, EXIT_HLT, "hlt");
		return 0;
	case KVM_EXIT_SHUTDOWN:
		fail_exit(v, ex, EXIT_SHUTDOWN, "");
		return 0;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(why, sizeof(why), "hardware refused VM entry (reason %#llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		fail_exit(v, ex, EXIT_FAIL, why);
		return 0;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(why, sizeof(why), "KVM internal error (suberror %u%s)",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
			     ? ": instruction emulation failed"
			     : "");
		fail_exit(v, ex, EXIT_FAIL, why);
		return 0;
	case KVM_EXIT_SYSTEM_EVENT:
		snprintf(why, sizeof(why), "system event %u (%s)", run->system_event.type,
			 run->system_event.type == KVM_SYSTEM_EVENT_RESET ? "reset" : "shutdown");
		fail_exit(v, ex,
			  run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? EXIT_SHUTDOWN
									      : EXIT_FAIL,
			  why);
		return 0;
	default:
		snprintf(why, sizeof(why), "unexpected KVM exit %u", run->exit_reason);
		fail_exit(v, ex, EXIT_FAIL, why);
		return 0;
	}
}

/* Called from any thread while the vCPU runs (util/counter.h). */
static void kvm_stats(struct engine_vcpu *v, struct json_object *obj)
{
	json_object_object_add(obj, "coalesced_pio",
			       json_object_new_int64((int64_t)counter_read(&v->ncoalesced)));
}

static void kvm_vcpu_kick(struct engine_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load(&v->thread_known))
		pthread_kill(v->thread, KICK_SIGNAL);
}

static int kvm_irq_line(struct engine_vm *vm, unsigned gsi, bool level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = level};
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static int kvm_msi(struct engine_vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

static int kvm_ioeventfd(struct engine_vm *vm, uint64_t gpa, unsigned len, int fd, bool assign)
{
	struct kvm_ioeventfd io = {
	    .addr = gpa, .len = len, .fd = fd, .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN};
	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

const struct engine_ops kvm_engine = {
    .name = "kvm",
    .vm_create = kvm_vm_create,
    .vm_destroy = kvm_vm_destroy,
    .map_memory = kvm_map_memory,
    .vcpu_create = kvm_vcpu_create,
    .vcpu_destroy = kvm_vcpu_destroy,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_kick = kvm_vcpu_kick,
    .get_state = kvm_get_state,
    .set_state = kvm_set_state,
    .irq_line = kvm_irq_line,
    .msi = kvm_msi,
    .get_vm_state = kvm_get_vm_state,
    .set_vm_state = kvm_set_vm_state,
    .ioeventfd = kvm_ioeventfd,
    .dirty_log = kvm_dirty_log,
    .dirty_collect = kvm_dirty_collect,
    .coalesce_pio = kvm_coalesce_pio,
    .tsc_khz = kvm_tsc_khz,
    .stats = kvm_stats,
};
