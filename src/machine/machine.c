/* Machine assembly and lifecycle: memory → engine → devices → boot → vCPUs. */
#include "machine/machine.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "boot/boot.h"
#include "boot/acpi.h"
#include "devices/virtio_vsock.h"
#include "jail/jail.h"
#include "machine/calibrate.h"
#include "machine/console.h"
#include "machine/interpose.h"
#include "machine/stats.h"
#include "machine/vcpu.h"
#include "policy/active.h"
#include "policy/policy.h"
#include "policy/trace.h"

uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void machine_stop(struct machine *m, enum stop_kind kind, int exit_code, const char *fmt, ...)
{
	pthread_mutex_lock(&m->stop_lock);
	if (atomic_load(&m->stop) == STOP_NONE) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(m->stop_msg, sizeof(m->stop_msg), fmt, ap);
		va_end(ap);
		m->exit_code = exit_code;
		atomic_store_explicit(&m->stop, kind, memory_order_release);
		for (int i = 0; i < m->ncpus; i++)
			if (m->vcpu[i].ev)
				m->engine->vcpu_kick(m->vcpu[i].ev);
	}
	pthread_mutex_unlock(&m->stop_lock);
	pthread_mutex_lock(&m->pause_lock);
	pthread_cond_broadcast(&m->pause_cond);
	pthread_mutex_unlock(&m->pause_lock);
}

void machine_pause(struct machine *m)
{
	pthread_mutex_lock(&m->pause_lock);
	m->pause_requested = true;
	pthread_mutex_unlock(&m->pause_lock);
	for (int i = 0; i < m->ncpus; i++)
		m->engine->vcpu_kick(m->vcpu[i].ev);
	pthread_mutex_lock(&m->pause_lock);
	while (m->parked < atomic_load(&m->running_vcpus) && !machine_stopping(m))
		pthread_cond_wait(&m->pause_cond, &m->pause_lock);
	pthread_mutex_unlock(&m->pause_lock);
	/* No device work from the loop either: a paused VM's memory and device
	 * state stay as they were when the vCPUs stopped (rigs have no loop). */
	if (m->loop)
		loop_pause(m->loop, true);
}

int machine_after_resume(struct machine *m, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&m->pause_lock);
	int i = m->nafter_resume < MAX_DEVICES ? m->nafter_resume++ : -1;
	if (i >= 0) {
		m->after_resume[i].fn = fn;
		m->after_resume[i].arg = arg;
	}
	pthread_mutex_unlock(&m->pause_lock);
	return i < 0 ? -1 : 0;
}

void machine_resume(struct machine *m)
{
	loop_pause(m->loop, false);
	pthread_mutex_lock(&m->pause_lock);
	/* Posted under the lock: none is lost to a racing machine_after_resume. */
	bool lost = false;
	for (int i = 0; i < m->nafter_resume; i++)
		lost |= loop_post(m->loop, m->after_resume[i].fn, m->after_resume[i].arg) < 0;
	m->nafter_resume = 0;
	m->pause_requested = false;
	pthread_cond_broadcast(&m->pause_cond);
	pthread_mutex_unlock(&m->pause_lock);
	if (lost)
		machine_stop(m, STOP_ERROR, EXIT_CODE_HOST,
			     "out of memory for a request deferred by a pause rule");
}

bool machine_paused(struct machine *m)
{
	pthread_mutex_lock(&m->pause_lock);
	bool p = m->pause_requested;
	pthread_mutex_unlock(&m->pause_lock);
	return p;
}

void machine_park_if_paused(struct machine *m)
{
	pthread_mutex_lock(&m->pause_lock);
	if (m->pause_requested) {
		m->parked++;
		pthread_cond_broadcast(&m->pause_cond);
		while (m->pause_requested && !machine_stopping(m))
			pthread_cond_wait(&m->pause_cond, &m->pause_lock);
		m->parked--;
	}
	pthread_mutex_unlock(&m->pause_lock);
}

static void irq_set(void *ctx, unsigned gsi, bool level)
{
	struct machine *m = ctx;
	m->engine->irq_line(m->evm, gsi, level);
}

static void msi_send(void *ctx, uint64_t addr, uint32_t data)
{
	struct machine *m = ctx;
	m->engine->msi(m->evm, addr, data);
}

struct irq_line machine_irq_line(struct machine *m, unsigned gsi)
{
	return (struct irq_line){.set = irq_set, .ctx = m, .gsi = gsi};
}

static void svc_stop(void *ctx, enum stop_kind kind, int exit_code, const char *why)
{
	machine_stop(ctx, kind, exit_code, "%s", why);
}

static uint64_t svc_clock(void *ctx)
{
	const struct machine *m = ctx;
	return monotonic_ns() - m->start_ns;
}

static void svc_console_tx(void *ctx, const void *buf, size_t len)
{
	struct machine *m = ctx;
	if (m->console)
		console_write(m->console, buf, len);
}

/* A device's DMA into RAM, for an engine that caches guest code. */
static void ram_written(void *ctx, const void *hva, uint64_t len)
{
	struct machine *m = ctx;
	m->engine->ram_written(m->evm, hva, len);
}

static int engine_ioeventfd(void *ctx, uint64_t gpa, unsigned len, int fd, bool assign)
{
	struct machine *m = ctx;
	int rc = -1, max = (int)(sizeof(m->kicks) / sizeof(m->kicks[0])), i = 0;
	pthread_mutex_lock(&m->kick_lock);
	if (assign && !m->kicks_trap && m->nkicks < max) {
		rc = m->engine->ioeventfd(m->evm, gpa, len, fd, true);
		if (!rc)
			m->kicks[m->nkicks++] = (struct kick_binding){gpa, len, fd};
	} else if (!assign) {
		while (i < m->nkicks && (m->kicks[i].gpa != gpa || m->kicks[i].fd != fd))
			i++;
		rc = 0; /* a binding machine_trap_kicks took back is gone already */
		if (i < m->nkicks) {
			rc = m->engine->ioeventfd(m->evm, gpa, len, fd, false);
			m->kicks[i] = m->kicks[--m->nkicks];
		}
	}
	pthread_mutex_unlock(&m->kick_lock);
	return rc;
}

void machine_trap_kicks(struct machine *m)
{
	pthread_mutex_lock(&m->kick_lock);
	m->kicks_trap = true;
	for (int i = 0; i < m->nkicks; i++)
		m->engine->ioeventfd(m->evm, m->kicks[i].gpa, m->kicks[i].len, m->kicks[i].fd,
				     false);
	m->nkicks = 0;
	pthread_mutex_unlock(&m->kick_lock);
}

void machine_console_tap(struct machine *m, const char *dev, enum tap_slot slot)
{
	struct console_tap tap = {m, dev, svc_console_tx, NULL, m};
	m->svc.console_ctx = interpose_tap(slot, &tap);
}

void machine_services_init(struct machine *m)
{
	m->svc = (struct dev_services){.pio = &m->pio,
				       .mmio = &m->mmio,
				       .pci = &m->pci,
				       .mem = &m->mem,
				       .loop = m->loop,
				       .msi = machine_msi_sink(m),
				       .ctx = m,
				       .irq_set = irq_set,
				       .stop = svc_stop,
				       .clock_ns = svc_clock,
				       .console_tx = interpose_console_out,
				       .gate = interpose_gate(m)};
	/* Some policy rules need virtio notifications to trap as MMIO exits
	 * (docs/policy.md): no ioeventfd then. */
	if (m->engine && m->engine->ioeventfd &&
	    interpose_allows_ioeventfd(m->cfg ? m->cfg->policy : NULL))
		m->svc.ioeventfd = (struct ioeventfd_sink){engine_ioeventfd, m};
}

struct msi_sink machine_msi_sink(struct machine *m)
{
	return (struct msi_sink){.send = msi_send, .ctx = m};
}

/* Guest kernel code must run at least this fast for --engine auto to pick kvm;
 * hardware does thousands of millions, nested PVM about one million. */
#define AUTO_KVM_MIN_IPS 50e6

/* --engine auto: kvm when it runs guest kernel code at hardware speed, else soft. */
static const struct engine_ops *choose_engine(char *why, size_t whylen)
{
	char err[256] = "";
	double ips = engine_kernel_speed(&kvm_engine, err, sizeof(err));
	if (ips >= AUTO_KVM_MIN_IPS) {
		snprintf(why, whylen, "kvm runs guest kernel code at %.0f M instructions/s",
			 ips / 1e6);
		return &kvm_engine;
	}
	if (ips < 0)
		snprintf(why, whylen, "%s", err);
	else
		snprintf(why, whylen,
			 "kvm runs guest kernel code at only %.1f M instructions/s (emulated)",
			 ips / 1e6);
	return &soft_engine;
}

static int create_engine(struct machine *m, char *err, size_t errlen)
{
	const struct vm_config *cfg = m->cfg;
	struct engine_vm_config ecfg = {
	    .ncpus = m->ncpus, .ram_size = m->mem.size, .jit = cfg->jit, .tsc_khz = cfg->tsc_khz};
	char why[300] = "";
	if (!strcmp(cfg->engine, "auto"))
		m->engine = choose_engine(why, sizeof(why));
	else
		m->engine = engine_find(cfg->engine);
	if (!m->engine) {
		snprintf(err, errlen, "unknown engine '%s' — use kvm, soft or auto", cfg->engine);
		return EXIT_CODE_USAGE;
	}
	int rc = m->engine->vm_create(&ecfg, &m->evm, err, errlen);
	if (rc && why[0] && m->engine == &soft_engine) {
		/* auto with no soft engine: a slow kvm still beats none. */
		fprintf(stderr, "popek: engine kvm (auto: %s; soft engine unavailable: %s)\n", why,
			err);
		m->engine = &kvm_engine;
		rc = m->engine->vm_create(&ecfg, &m->evm, err, errlen);
	} else if (!rc && why[0]) {
		fprintf(stderr, "popek: engine %s (auto: %s)\n", m->engine->name, why);
	}
	if (rc)
		return EXIT_CODE_ENGINE;
	if (m->engine->ram_written) {
		m->mem.written_ctx = m;
		m->mem.written = ram_written;
	}
	for (int i = 0; i < m->mem.nranges; i++) {
		const struct mem_range *r = &m->mem.range[i];
		rc = m->engine->map_memory(m->evm, (unsigned)i, r->gpa, r->size,
					   m->mem.base + r->offset, 0);
		if (rc) {
			snprintf(err, errlen, "engine %s cannot map guest RAM: %s", m->engine->name,
				 strerror(-rc));
			return EXIT_CODE_HOST;
		}
	}
	return 0;
}

static int create_devices(struct machine *m, char *err, size_t errlen)
{
	m->console = console_open(m->cfg, err, errlen);
	if (!m->console)
		return EXIT_CODE_HOST;
	m->loop = loop_new(err, errlen);
	if (!m->loop)
		return EXIT_CODE_HOST;
	struct irq_line intx[PCI_INTX_LINES] = {machine_irq_line(m, PCI_INTX_GSI0),
						machine_irq_line(m, PCI_INTX_GSI1)};
	if (pci_bus_init(&m->pci, &m->pio, &m->mmio, intx, err, errlen))
		return EXIT_CODE_HOST;
	m->pci_ready = true;
	/* The config address is a latch read back by an exit of its own: its
	 * writes can wait for the data port access that follows, one exit per
	 * config access instead of two (Linux's early bus scans make ~16000). */
	if (m->engine->coalesce_pio && interpose_allows_coalesced_pio(m->cfg->policy))
		m->engine->coalesce_pio(m->evm, PCI_CONFIG_ADDR, 4);
	machine_services_init(m);
	return machine_create_devices(m, err, errlen);
}

static int create_vcpus(struct machine *m, const struct cpu_state *bsp, char *err, size_t errlen)
{
	struct cpu_state *ap = malloc(sizeof(*ap));
	int rc = 0;
	if (!ap) {
		snprintf(err, errlen, "out of memory");
		return EXIT_CODE_HOST;
	}
	/* Application processors wait for INIT/SIPI, as on a PC. */
	cpu_state_init_protected(ap);
	ap->msr[MSR_IDX_APIC_BASE] &= ~(1ull << 8);
	ap->mp_state = MP_WAIT_FOR_SIPI;
	for (int i = 0; i < m->ncpus && !rc; i++) {
		struct vcpu *v = &m->vcpu[i];
		v->m = m;
		v->index = i;
		rc = m->engine->vcpu_create(m->evm, i, &v->ev);
		if (!rc && bsp) /* no bsp: a snapshot provides every vCPU's state */
			rc = m->engine->set_state(v->ev, i ? ap : bsp);
		if (rc)
			snprintf(err, errlen, "engine %s: cannot create vCPU %d: %s",
				 m->engine->name, i, strerror(-rc));
	}
	free(ap);
	return rc ? EXIT_CODE_HOST : 0;
}

/* Whether a vhost-user backend will map guest RAM: it needs the RAM's fd.
 * Disks other than raw images are served by one (a qemu-storage-daemon popek
 * starts, or the user's), and so is every --fs (a virtiofsd). */
static bool vhost_user_backends(const struct vm_config *cfg)
{
	bool any = cfg->nfs > 0;
	for (int i = 0; i < cfg->ndisks; i++)
		any |= cfg->disk[i].kind != DISK_RAW;
	return any;
}

int machine_create(struct machine *m, const struct vm_config *cfg, char *err, size_t errlen)
{
	int rc;
	memset(m, 0, sizeof(*m));
	m->mem.fd = m->mem.pagemap_fd = m->uffd = -1;
	m->cfg = cfg;
	m->name = cfg->name ? cfg->name : "vm";
	m->ncpus = cfg->cpus;
	pthread_mutex_init(&m->stop_lock, NULL);
	pthread_mutex_init(&m->pause_lock, NULL);
	pthread_mutex_init(&m->kick_lock, NULL);
	pthread_cond_init(&m->pause_cond, NULL);
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	/* The policy every action goes through, replaceable while the VM runs,
	 * and the rings its audit log and traces are written from. */
	m->events = policy_events_create(cfg->policy ? cfg->policy->audit_fd : -1);
	m->policy = m->events ? policy_active_create(cfg->policy, m->events) : NULL;
	if (!m->policy) {
		snprintf(err, errlen, "out of memory for the policy");
		return EXIT_CODE_HOST;
	}
	if (cfg->cpus < 1 || cfg->cpus > MAX_VCPUS) {
		snprintf(err, errlen, "--cpus %d is out of range 1..%d", cfg->cpus, MAX_VCPUS);
		return EXIT_CODE_USAGE;
	}
	bool restoring = cfg->ram_fd >= 0;
	if (restoring		 ? guest_mem_init_fd(&m->mem, cfg->mem, cfg->ram_fd, err, errlen)
	    : cfg->mem_hugepages ? guest_mem_init_hugetlb(&m->mem, cfg->mem, err, errlen)
	    : vhost_user_backends(cfg) ? guest_mem_init_shared(&m->mem, cfg->mem, err, errlen)
				       : guest_mem_init(&m->mem, cfg->mem, err, errlen))
		return EXIT_CODE_USAGE;

	struct cpu_state *bsp = calloc(1, sizeof(*bsp));
	struct boot_args ba = {.cfg = cfg, .mem = &m->mem, .ncpus = m->ncpus};
	if (!bsp) {
		snprintf(err, errlen, "out of memory");
		return EXIT_CODE_HOST;
	}
	/* Refuse a bad image before touching the engine: errors name the file, not KVM.
	 * A restored VM has its firmware tables and kernel in the RAM image already. */
	if (!restoring)
		ba.rsdp = acpi_build(&m->mem, m->ncpus);
	if (!restoring && boot_load(&ba, bsp, err, errlen)) {
		free(bsp);
		return EXIT_CODE_IMAGE;
	}
	rc = create_engine(m, err, errlen);
	/* Nested paging faults once per guest page: 4 KiB pages slow a kvm boot. */
	if (!rc && m->engine == &kvm_engine && !restoring && m->mem.pages == MEM_PAGES_4K)
		fprintf(stderr, "popek: guest RAM in 4 KiB pages: %s\n", guest_mem_why_4k(&m->mem));
	if (!rc)
		rc = create_devices(m, err, errlen);
	if (!rc)
		rc = interpose_check(m, cfg->policy, err, errlen);
	if (!rc)
		rc = create_vcpus(m, restoring ? NULL : bsp, err, errlen);
	free(bsp);
	/* Here, before the control socket that reports uptime from it is served. */
	m->start_ns = monotonic_ns();
	/* The vCPUs count as running from now on: a pause asked for before
	 * machine_run starts them waits until they have parked. */
	atomic_store(&m->running_vcpus, m->ncpus);
	return rc;
}

int machine_jail(struct machine *m, char *err, size_t errlen)
{
	struct jail_profile p = {.kvm = m->engine == &kvm_engine, .uffd = m->uffd};
	/* Only popek's own virtio-blk does file I/O; vhost-user disks are the backend's. */
	for (int i = 0; i < m->cfg->ndisks; i++)
		p.disks |= m->cfg->disk[i].kind == DISK_RAW;
	for (int i = 0; i < m->cfg->nnics; i++) {
		p.nics = true;
		p.usernet |= m->cfg->nic[i].kind == NET_USER;
	}
	struct machine_device *vs = machine_device_find(m, virtio_vsock_device.name);
	if (vs)
		p.vsock_dir = virtio_vsock_dir(vs->dev);
	int rc = jail_enter(m->cfg, &p, err, errlen);
	if (!rc && vs)
		virtio_vsock_moved(vs->dev, jail_vsock_dir(&p));
	return rc;
}

static void user_quit(void *ctx)
{
	machine_stop(ctx, STOP_POWEROFF, 0, "quit from the console (Ctrl-A x)");
}

static void on_signal(void *ctx, int sig)
{
	machine_stop(ctx, STOP_ERROR, 128 + sig, "stopped by signal %d (%s)", sig, strsignal(sig));
}

void machine_vcpus_ended(struct machine *m, int n)
{
	pthread_mutex_lock(&m->pause_lock);
	bool last = atomic_fetch_sub(&m->running_vcpus, n) == n;
	pthread_cond_broadcast(&m->pause_cond); /* a pauser may be waiting for them */
	pthread_mutex_unlock(&m->pause_lock);
	if (last)
		loop_stop(m->loop);
}

static bool hvc_is_console(const char *cmdline)
{
	bool hvc = false;
	for (const char *s = cmdline; s && (s = strstr(s, "console=")); s += 8)
		if (s == cmdline || s[-1] == ' ')
			hvc = !strncmp(s + 8, "hvc", 3);
	return hvc;
}

/* Which device takes console input: virtio-console when the kernel command
 * line makes hvc0 the console (its last console=), else the UART. */
static int start_console_input(struct machine *m)
{
	const char *want = hvc_is_console(m->cfg->cmdline) ? "virtio-console0" : "uart0";
	struct machine_device *d = machine_device_find(m, want);
	if (!d || !d->type->input)
		return -1;
	struct console_tap tap = {m, d->name, NULL, d->type->input, d->dev};
	return console_start_input(m->console, m->loop, interpose_console_in,
				   interpose_tap(TAP_INPUT, &tap), user_quit, m);
}

/* After a crash: an instruction the engine refused may be the cause (one it
 * does not implement, rather than the guest's own ud2). */
static void report_undefined(struct machine *m)
{
	char why[256];
	for (int i = 0; i < m->ncpus && m->engine->last_undefined; i++)
		if (m->engine->last_undefined(m->vcpu[i].ev, why, sizeof(why)))
			fprintf(
			    stderr,
			    "popek: vCPU %d last raised %s — if that is not an intentional ud2, "
			    "engine %s lacks this instruction\n",
			    i, why, m->engine->name);
}

/* Signals that stop the VM (with exit code 128 + signal). */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

int machine_run(struct machine *m)
{
	sigset_t sigs, old;
	sigemptyset(&sigs);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaddset(&sigs, stop_signals[i]);
	/* vCPU threads inherit the mask: the loop takes these signals (signalfd). */
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	if (loop_signals(m->loop, stop_signals, sizeof(stop_signals) / sizeof(stop_signals[0]),
			 on_signal, m) < 0)
		fprintf(stderr, "popek: warning: cannot watch signals: %s\n", strerror(errno));
	if (start_console_input(m) < 0)
		fprintf(stderr, "popek: warning: console input is not available\n");
	if (policy_events_start(m->events))
		machine_stop(m, STOP_ERROR, EXIT_CODE_HOST, "cannot start the audit writer thread");
	uint64_t t0 = monotonic_ns();
	int started = 0;
	for (int i = 0; i < m->ncpus; i++) {
		if (pthread_create(&m->vcpu[i].thread, NULL, vcpu_thread, &m->vcpu[i])) {
			/* vCPUs never started never park: a pauser must not wait for them */
			machine_stop(m, STOP_ERROR, EXIT_CODE_HOST, "cannot start vCPU thread %d",
				     i);
			machine_vcpus_ended(m, m->ncpus - i);
			break;
		}
		started++;
	}
	/* m->ncpus stays: the vCPU threads read it (machine_stop) as they start.
	 * The last vCPU to end stops the loop. */
	if (loop_run(m->loop) < 0)
		machine_stop(m, STOP_ERROR, EXIT_CODE_HOST, "event loop failed: %s",
			     strerror(errno));
	for (int i = 0; i < started; i++)
		pthread_join(m->vcpu[i].thread, NULL);
	if (m->pauser_live)
		pthread_join(m->pauser, NULL);
	policy_events_stop(m->events); /* the last audit lines are out, traces end */
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	double secs = (double)(monotonic_ns() - t0) / 1e9;
	switch (atomic_load(&m->stop)) {
	case STOP_CRASH:
		fprintf(stderr, "popek: VM crashed: %s\n", m->stop_msg);
		report_undefined(m);
		break;
	case STOP_ERROR:
		fprintf(stderr, "popek: %s\n", m->stop_msg);
		break;
	default:
		break;
	}
	if (m->cfg->stats) {
		char *json = machine_stats_json(m, secs);
		fprintf(stderr, "%s\n", json);
		free(json);
	}
	return m->exit_code;
}

void machine_destroy(struct machine *m)
{
	console_close(m->console);
	for (int i = 0; i < MAX_VCPUS; i++)
		if (m->vcpu[i].ev)
			m->engine->vcpu_destroy(m->vcpu[i].ev);
	/* Before the engine VM: devices unbind their engine fast paths. */
	for (int i = m->ndevices - 1; i >= 0; i--)
		if (m->devices[i].type->destroy)
			m->devices[i].type->destroy(m->devices[i].dev);
	if (m->pci_ready)
		pci_bus_destroy(&m->pci);
	if (m->evm)
		m->engine->vm_destroy(m->evm);
	loop_free(m->loop);
	guest_mem_free(&m->mem);
	policy_active_destroy(m->policy);
	policy_events_destroy(m->events);
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	pthread_mutex_destroy(&m->stop_lock);
	pthread_mutex_destroy(&m->pause_lock);
	pthread_mutex_destroy(&m->kick_lock);
	pthread_cond_destroy(&m->pause_cond);
}
