#include "fuzz_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/acpi_pm.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/uart16550.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "policy/active.h"

static int no_irq(struct engine_vm *vm, unsigned gsi, bool level)
{
	return 0;
}

static int no_msi(struct engine_vm *vm, uint64_t addr, uint32_t data)
{
	return 0;
}

static int take_vm_state(struct engine_vm *vm, const struct vm_state *st)
{
	return 0;
}

static int take_state(struct engine_vcpu *vcpu, const struct cpu_state *st)
{
	return 0;
}

/* Interrupts go nowhere; restored vCPU and VM state is accepted and dropped. */
static const struct engine_ops fuzz_engine = {.name = "fuzz",
					      .irq_line = no_irq,
					      .msi = no_msi,
					      .set_vm_state = take_vm_state,
					      .set_state = take_state};

/* What the registry's devices see: defaults and one disk. */
static struct vm_config rig_cfg;

struct fuzz_rig *fuzz_rig_begin(void)
{
	static struct fuzz_rig r;
	static bool ready;
	char err[256];
	if (!ready) {
		vm_config_defaults(&rig_cfg);
		rig_cfg.ndisks = 1; /* fuzz_add_virtio_blk's */
		r.m.engine = &fuzz_engine;
		pthread_mutex_init(&r.m.stop_lock, NULL);
		pthread_mutex_init(&r.m.pause_lock, NULL);
		pthread_cond_init(&r.m.pause_cond, NULL);
		r.m.policy = policy_active_create(NULL, NULL); /* no rules: the gate lets all go */
		if (!r.m.policy)
			abort();
		if (guest_mem_init(&r.m.mem, FUZZ_RAM, err, sizeof(err))) {
			fprintf(stderr, "fuzz: %s\n", err);
			abort();
		}
		ready = true;
	}
	/* Punching the whole memfd zeroes it at the cost of the pages touched. */
	if (fallocate(r.m.mem.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, FUZZ_RAM))
		abort();
	atomic_store(&r.m.stop, STOP_NONE);
	r.m.start_ns = monotonic_ns();
	r.m.ndevices = 0;
	bus_init(&r.m.pio, "pio");
	bus_init(&r.m.mmio, "mmio");
	struct irq_line intx[PCI_INTX_LINES] = {machine_irq_line(&r.m, PCI_INTX_GSI0),
						machine_irq_line(&r.m, PCI_INTX_GSI1)};
	if (pci_bus_init(&r.pci, &r.m.pio, &r.m.mmio, intx, err, sizeof(err))) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	r.env = (struct virtio_env){.pci = &r.pci, .mem = &r.m.mem, .msi = machine_msi_sink(&r.m)};
	r.m.cfg = &rig_cfg;
	machine_services_init(&r.m);
	r.m.svc.pci = &r.pci;
	return &r;
}

void fuzz_rig_end(struct fuzz_rig *r)
{
	for (int i = r->m.ndevices - 1; i >= 0; i--)
		if (r->m.devices[i].type->destroy)
			r->m.devices[i].type->destroy(r->m.devices[i].dev);
	pci_bus_destroy(&r->pci);
	bus_destroy(&r->m.mmio);
	bus_destroy(&r->m.pio);
}

uint64_t fuzz_pci_enable(struct fuzz_rig *r, unsigned slot)
{
	for (unsigned s = 1; s < PCI_SLOTS; s++)
		if (r->pci.dev[s])
			pci_config_write(&r->pci, s, 0, PCI_COMMAND, 2,
					 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	struct pci_dev *d = r->pci.dev[slot];
	if (!d || !d->bar[0].mapped)
		abort();
	return d->bar[0].mapped_at;
}

const char *fuzz_disk(void)
{
	static char path[64];
	static int fd = -1;
	if (fd < 0) {
		fd = memfd_create("popek-fuzz-disk", 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (fd < 0 || ftruncate(fd, 0) || ftruncate(fd, 64 << 10))
		abort();
	return path;
}

void *fuzz_add(struct fuzz_rig *r, const struct device_type *t)
{
	char err[256];
	if (machine_add_device(&r->m, t, 0, err, sizeof(err))) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	return r->m.devices[r->m.ndevices - 1].dev;
}

struct uart *fuzz_add_uart(struct fuzz_rig *r)
{
	return fuzz_add(r, &uart_device);
}

struct virtio_blk *fuzz_add_virtio_blk(struct fuzz_rig *r)
{
	rig_cfg.disk[0].path = fuzz_disk();
	return fuzz_add(r, &virtio_blk_device);
}

void fuzz_add_pvpanic(struct fuzz_rig *r)
{
	fuzz_add(r, &pvpanic_device);
}

struct virtio_pci *fuzz_add_virtio_rng(struct fuzz_rig *r)
{
	return fuzz_add(r, &virtio_rng_device); /* the device is its transport */
}

struct virtio_console *fuzz_add_virtio_console(struct fuzz_rig *r)
{
	return fuzz_add(r, &virtio_console_device);
}

void fuzz_add_platform(struct fuzz_rig *r)
{
	fuzz_add_uart(r);
	fuzz_add(r, &debug_exit_device);
	fuzz_add(r, &acpi_pm_device);
	fuzz_add(r, &i8042_device);
	fuzz_add(r, &cmos_rtc_device);
	fuzz_add_virtio_blk(r);
	fuzz_add_pvpanic(r);
	fuzz_add_virtio_rng(r);
	fuzz_add_virtio_console(r);
}

/* What popek saves it must be able to load: a running guest can put a device
 * in any state its registers allow, and a snapshot taken then must restore. */
static void snapshot_devices(struct fuzz_rig *r)
{
	for (int i = 0; i < r->m.ndevices; i++) {
		struct machine_device *d = &r->m.devices[i];
		void *buf;
		size_t len;
		if (!d->type->save || !d->type->load)
			continue;
		if (d->type->save(d->dev, &buf, &len))
			abort();
		if (d->type->load(d->dev, buf, len)) {
			fprintf(stderr, "fuzz: %s cannot load the state it saved\n", d->name);
			abort();
		}
		free(buf);
	}
}

void fuzz_run(struct fuzz_rig *r, const struct fuzz_window *w, unsigned nw, const uint8_t *data,
	      size_t size, fuzz_host_fn host, void *ctx)
{
	for (size_t i = 0; i + FUZZ_OP_LEN <= size; i += FUZZ_OP_LEN) {
		const uint8_t *op = data + i;
		const struct fuzz_window *win = &w[(op[0] >> 3) % nw];
		unsigned sz = 1u << (op[1] & 3);
		uint32_t off;
		uint64_t val;
		memcpy(&off, op + 2, 4);
		memcpy(&val, op + 6, 8);
		switch (op[0] & 7) {
		case FUZZ_OP_READ:
			bus_access(win->bus, win->base + off % win->len, &val, sz, false);
			break;
		case FUZZ_OP_RAM:
			memcpy(r->m.mem.base + off % (FUZZ_RAM - 7), &val, 8);
			break;
		case FUZZ_OP_PCI_WRITE:
			sz = sz > 4 ? 4 : sz; /* conf1 data is a dword port: accesses are aligned */
			pci_config_write(&r->pci, (op[1] >> 2) % PCI_SLOTS, 0,
					 off % PCI_CFG_SIZE & ~(sz - 1), sz, (uint32_t)val);
			break;
		case FUZZ_OP_HOST:
			if (host)
				host(ctx, val);
			break;
		case FUZZ_OP_SNAPSHOT:
			snapshot_devices(r);
			break;
		default:
			bus_access(win->bus, win->base + off % win->len, &val, sz, true);
			break;
		}
	}
}

struct boot_args *fuzz_boot_args(const uint8_t *data, size_t size, struct cpu_state **st,
				 char **err, size_t *errlen)
{
	static struct guest_mem mem;
	static struct vm_config cfg;
	static struct boot_args a;
	static struct cpu_state cpu;
	static char msg[512];
	if (!mem.base) {
		if (guest_mem_init(&mem, 32ull << 20, msg, sizeof(msg))) {
			fprintf(stderr, "fuzz: %s\n", msg);
			abort();
		}
		vm_config_defaults(&cfg);
		cfg.cmdline = "console=ttyS0";
	}
	size_t rd = size > 4096 ? 4096 : size / 2;
	a = (struct boot_args){.cfg = &cfg,
			       .mem = &mem,
			       .ncpus = 1,
			       .kernel = data,
			       .kernel_len = size,
			       .initrd = data + size - rd,
			       .initrd_len = rd};
	cpu = (struct cpu_state){0};
	msg[0] = 0;
	*st = &cpu;
	*err = msg;
	*errlen = sizeof(msg);
	return &a;
}

void fuzz_boot_check(int rc, const char *err)
{
	if (rc && !err[0])
		abort();
}
