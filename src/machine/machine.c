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
#include "devices/acpi_pm.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/pc_testdev.h"
#include "devices/uart16550.h"
#include "jail/jail.h"
#include "machine/calibrate.h"
#include "machine/console.h"
#include "machine/interpose.h"
#include "machine/pci_platform.h"
#include "machine/stats.h"
#include "machine/vcpu.h"

#define COM1_PORT 0x3f8
#define COM1_GSI  4

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

static void pause_devices(struct machine *m, bool paused)
{
	for (int i = 0; i < m->ndevices; i++)
		if (m->devices[i].pause)
			m->devices[i].pause(m->devices[i].dev, paused);
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
	pause_devices(m, true);
}

void machine_resume(struct machine *m)
{
	pause_devices(m, false);
	pthread_mutex_lock(&m->pause_lock);
	m->pause_requested = false;
	pthread_cond_broadcast(&m->pause_cond);
	pthread_mutex_unlock(&m->pause_lock);
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
	struct engine_vm_config ecfg = {.ncpus = m->ncpus, .ram_size = m->mem.size};
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

int machine_add_device(struct machine *m, const struct machine_device *d)
{
	if (m->ndevices == MAX_DEVICES)
		return -1;
	m->devices[m->ndevices++] = *d;
	return 0;
}

static void uart_free(void *uart)
{
	uart_destroy(uart);
}

/* How each optional device (--device) is made. */
static int (*const optional_create[NR_OPTIONAL_DEVICES])(struct machine *m) = {
    [DEV_PC_TESTDEV] = pc_testdev_create,
};

static int create_devices(struct machine *m, char *err, size_t errlen)
{
	m->console = console_open(m->cfg, err, errlen);
	if (!m->console)
		return EXIT_CODE_HOST;
	struct console_tap tap = {m, "uart0", console_tx, NULL, m->console};
	m->uart = uart_create(&m->pio, COM1_PORT, machine_irq_line(m, COM1_GSI),
			      interpose_console_out, interpose_tap(TAP_UART_OUT, &tap));
	if (m->uart)
		machine_add_device(m, &(struct machine_device){.name = "uart0",
							       .dev = m->uart,
							       .save = uart_save,
							       .load = uart_load,
							       .destroy = uart_free,
							       .pause = uart_pause});
	if (!m->uart || debug_exit_create(m) || acpi_pm_create(m) || i8042_create(m) ||
	    cmos_rtc_create(m) || fw_cfg_create(m)) {
		snprintf(err, errlen, "cannot create the platform devices");
		return EXIT_CODE_HOST;
	}
	for (int i = 0; i < NR_OPTIONAL_DEVICES; i++)
		if (m->cfg->device[i] && optional_create[i](m)) {
			snprintf(err, errlen, "cannot create device %s", optional_device_names[i]);
			return EXIT_CODE_HOST;
		}
	return pci_platform_create(m, err, errlen);
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

int machine_create(struct machine *m, const struct vm_config *cfg, char *err, size_t errlen)
{
	int rc;
	memset(m, 0, sizeof(*m));
	m->mem.fd = -1;
	m->cfg = cfg;
	m->name = cfg->name ? cfg->name : "vm";
	m->ncpus = cfg->cpus;
	pthread_mutex_init(&m->stop_lock, NULL);
	pthread_mutex_init(&m->pause_lock, NULL);
	pthread_cond_init(&m->pause_cond, NULL);
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	if (cfg->cpus < 1 || cfg->cpus > MAX_VCPUS) {
		snprintf(err, errlen, "--cpus %d is out of range 1..%d", cfg->cpus, MAX_VCPUS);
		return EXIT_CODE_USAGE;
	}
	bool restoring = cfg->ram_fd >= 0;
	if (restoring ? guest_mem_init_fd(&m->mem, cfg->mem, cfg->ram_fd, err, errlen)
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
	if (!rc)
		rc = create_devices(m, err, errlen);
	if (!rc)
		rc = interpose_check(m, cfg->policy, err, errlen);
	if (!rc)
		rc = create_vcpus(m, restoring ? NULL : bsp, err, errlen);
	free(bsp);
	/* Here, before the control thread that reports uptime from it exists. */
	m->start_ns = monotonic_ns();
	/* The vCPUs count as running from now on: a pause the control thread
	 * asks for before machine_run starts them waits until they have parked. */
	atomic_store(&m->running_vcpus, m->ncpus);
	return rc;
}

int machine_jail(struct machine *m, char *err, size_t errlen)
{
	struct jail_profile p = {.kvm = m->engine == &kvm_engine, .disks = m->cfg->ndisks > 0};
	return jail_enter(m->cfg, &p, err, errlen);
}

static void user_quit(void *ctx)
{
	machine_stop(ctx, STOP_POWEROFF, 0, "quit from the console (Ctrl-A x)");
}

static void wait_for_vcpus(struct machine *m, int started)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	struct timespec tick = {0, 20 * 1000 * 1000};
	while (atomic_load(&m->running_vcpus) > 0) {
		int sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig > 0)
			machine_stop(m, STOP_ERROR, 128 + sig, "stopped by signal %d (%s)", sig,
				     strsignal(sig));
	}
	for (int i = 0; i < started; i++)
		pthread_join(m->vcpu[i].thread, NULL);
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

int machine_run(struct machine *m)
{
	sigset_t sigs, old;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	/* vCPU threads inherit the mask: only the main thread takes these signals. */
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	console_input_fn input = uart_input;
	void *input_ctx = m->uart;
	pci_platform_console_input(m, &input, &input_ctx);
	struct console_tap tap = {m, input == uart_input ? "uart0" : "virtio-console0", NULL, input,
				  input_ctx};
	if (console_start_input(m->console, interpose_console_in, interpose_tap(TAP_INPUT, &tap),
				user_quit, m) < 0)
		fprintf(stderr, "popek: warning: console input is not available\n");
	uint64_t t0 = monotonic_ns();
	int started = 0;
	for (int i = 0; i < m->ncpus; i++) {
		if (pthread_create(&m->vcpu[i].thread, NULL, vcpu_thread, &m->vcpu[i])) {
			/* vCPUs never started never park: a pauser must not wait for them */
			pthread_mutex_lock(&m->pause_lock);
			atomic_fetch_sub(&m->running_vcpus, m->ncpus - i);
			pthread_cond_broadcast(&m->pause_cond);
			pthread_mutex_unlock(&m->pause_lock);
			machine_stop(m, STOP_ERROR, EXIT_CODE_HOST, "cannot start vCPU thread %d",
				     i);
			break;
		}
		started++;
	}
	/* m->ncpus stays: the vCPU threads read it (machine_stop) as they start. */
	wait_for_vcpus(m, started);
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
	pci_platform_destroy(m);
	if (m->evm)
		m->engine->vm_destroy(m->evm);
	for (int i = m->ndevices - 1; i >= 0; i--)
		if (m->devices[i].destroy)
			m->devices[i].destroy(m->devices[i].dev);
	guest_mem_free(&m->mem);
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	pthread_mutex_destroy(&m->stop_lock);
	pthread_mutex_destroy(&m->pause_lock);
	pthread_cond_destroy(&m->pause_cond);
}
