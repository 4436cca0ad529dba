#include "fuzz_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
#include "policy/policy.h"

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

#define DISK_SIZE (64u << 10)

static int disk_fd = -1;

/* What the rig looked like when setup was done: every input starts there. */
static struct pristine {
	void *state[MAX_DEVICES]; /* each device's save, NULL if it has none */
	size_t len[MAX_DEVICES];
	uint8_t cfg[PCI_SLOTS][PCI_CFG_SIZE];
	uint32_t cf8;
	struct bus pio, mmio;
} pristine;

/* What the registry's devices see: defaults and one disk. */
static struct vm_config rig_cfg;

static void build(struct fuzz_rig *r, void (*setup)(struct fuzz_rig *r))
{
	char err[256];
	vm_config_defaults(&rig_cfg);
	rig_cfg.ndisks = 1; /* fuzz_add_virtio_blk's */
	r->m.engine = &fuzz_engine;
	pthread_mutex_init(&r->m.stop_lock, NULL);
	pthread_mutex_init(&r->m.pause_lock, NULL);
	pthread_cond_init(&r->m.pause_cond, NULL);
	r->m.policy = policy_active_create(NULL, NULL); /* no rules: the gate lets all go */
	if (!r->m.policy)
		abort();
	if (guest_mem_init(&r->m.mem, FUZZ_RAM, err, sizeof(err))) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	r->m.start_ns = monotonic_ns();
	bus_init(&r->m.pio, "pio");
	bus_init(&r->m.mmio, "mmio");
	struct irq_line intx[PCI_INTX_LINES] = {machine_irq_line(&r->m, PCI_INTX_GSI0),
						machine_irq_line(&r->m, PCI_INTX_GSI1)};
	if (pci_bus_init(&r->pci, &r->m.pio, &r->m.mmio, intx, err, sizeof(err))) {
		fprintf(stderr, "fuzz: %s\n", err);
		abort();
	}
	r->env =
	    (struct virtio_env){.pci = &r->pci, .mem = &r->m.mem, .msi = machine_msi_sink(&r->m)};
	r->m.cfg = &rig_cfg;
	machine_services_init(&r->m);
	r->m.svc.pci = &r->pci;
	setup(r);
	for (int i = 0; i < r->m.ndevices; i++) {
		struct machine_device *d = &r->m.devices[i];
		if (d->type->save && d->type->save(d->dev, &pristine.state[i], &pristine.len[i]))
			abort();
	}
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		if (r->pci.dev[s])
			pci_dev_save_config(r->pci.dev[s], pristine.cfg[s]);
	pristine.cf8 = r->pci.cf8;
	pristine.pio = r->m.pio;
	pristine.mmio = r->m.mmio;
}

/* Whether the input may have left guest RAM nonzero: it wrote RAM, or a
 * device that can write anywhere (virtio DMA) is in the rig. */
static bool ram_written, has_dma;

static void zero_ram(struct guest_mem *mem)
{
	/* Zeroes at the cost of the pages touched, wherever they are: fresh RAM
	 * is anonymous (dropped pages read as zero), a memfd gets a hole. */
	if ((ram_written || has_dma) &&
	    (mem->fd < 0
		 ? madvise(mem->base, FUZZ_RAM, MADV_DONTNEED)
		 : fallocate(mem->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, FUZZ_RAM)))
		abort();
	ram_written = false;
}

static void zero_disk(void)
{
	struct stat st;
	if (disk_fd < 0)
		return;
	if (fstat(disk_fd, &st) || (st.st_size != DISK_SIZE && ftruncate(disk_fd, DISK_SIZE)) ||
	    (st.st_blocks &&
	     fallocate(disk_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, DISK_SIZE)))
		abort();
}

static bool same_map(const struct bus *a, const struct bus *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (a->r[i].base != b->r[i].base || a->r[i].len != b->r[i].len ||
		    a->r[i].ops != b->r[i].ops || a->r[i].dev != b->r[i].dev)
			return false;
	return true;
}

static bool pci_pristine(const struct fuzz_rig *r)
{
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		if (r->pci.dev[s] && memcmp(r->pci.dev[s]->cfg, pristine.cfg[s], PCI_CFG_SIZE))
			return false;
	return same_map(&r->m.mmio, &pristine.mmio);
}

static bool device_pristine(const struct machine_device *d, int i)
{
	void *buf;
	size_t len;
	if (d->type->save(d->dev, &buf, &len))
		abort();
	bool same = len == pristine.len[i] && !memcmp(buf, pristine.state[i], len);
	free(buf);
	return same;
}

/* Anything the reset did not put back would leak from one input into the
 * next, and a crash would no longer replay from its input. */
static void not_pristine(const char *what)
{
	fprintf(stderr, "fuzz: the reset left %s in another state than when it was built\n", what);
	abort();
}

static void reset_pci(struct fuzz_rig *r)
{
	/* Every BAR off first, so none is in the way of another's way back. */
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		if (r->pci.dev[s])
			pci_config_write(&r->pci, s, 0, PCI_COMMAND, 2, 0);
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		if (r->pci.dev[s]) {
			pci_set_intx(r->pci.dev[s], false);
			pci_dev_load_config(r->pci.dev[s], pristine.cfg[s]);
		}
}

void fuzz_done(struct fuzz_rig *r)
{
	atomic_store(&r->m.stop, STOP_NONE);
	r->m.exit_code = 0;
	r->m.stop_msg[0] = 0;
	zero_ram(&r->m.mem);
	zero_disk();
	if (!pci_pristine(r))
		reset_pci(r);
	r->pci.cf8 = pristine.cf8;
	/* A device the input left alone need not load (virtio's load replays
	 * its whole config space); one that does load must save as it did. */
	for (int i = 0; i < r->m.ndevices; i++) {
		const struct machine_device *d = &r->m.devices[i];
		if (!d->type->save || !d->type->load || device_pristine(d, i))
			continue;
		if (d->type->load(d->dev, pristine.state[i], pristine.len[i])) {
			fprintf(stderr, "fuzz: %s cannot load the state it had when built\n",
				d->name);
			abort();
		}
		if (!device_pristine(d, i))
			not_pristine(d->name);
	}
	if (!same_map(&r->m.pio, &pristine.pio))
		not_pristine("the port I/O map");
	if (!pci_pristine(r))
		not_pristine("PCI config space or the MMIO map");
	if (r->pci.intx_asserted[0] || r->pci.intx_asserted[1])
		not_pristine("PCI INTx");
}

struct fuzz_rig *fuzz_rig(void (*setup)(struct fuzz_rig *r))
{
	static struct fuzz_rig r;
	static bool built;
	if (!built) {
		build(&r, setup);
		built = true;
	}
	return &r;
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
	if (disk_fd < 0) {
		disk_fd = memfd_create("popek-fuzz-disk", 0);
		if (disk_fd < 0 || ftruncate(disk_fd, DISK_SIZE))
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", disk_fd);
	}
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

/* A virtio device can write guest RAM anywhere (DMA). */
static void *add_virtio(struct fuzz_rig *r, const struct device_type *t)
{
	has_dma = true;
	return fuzz_add(r, t);
}

struct uart *fuzz_add_uart(struct fuzz_rig *r)
{
	return fuzz_add(r, &uart_device);
}

struct virtio_blk *fuzz_add_virtio_blk(struct fuzz_rig *r)
{
	rig_cfg.disk[0].path = fuzz_disk();
	return add_virtio(r, &virtio_blk_device);
}

void fuzz_add_pvpanic(struct fuzz_rig *r)
{
	fuzz_add(r, &pvpanic_device);
}

void fuzz_policy(struct fuzz_rig *r, const char *rules)
{
	struct policy *pol = calloc(1, sizeof(*pol));
	char err[256];
	if (!pol || policy_parse(pol, rules, "fuzz", err, sizeof(err)))
		abort();
	pol->audit_fd = -1;
	policy_replace(r->m.policy, pol);
}

struct virtio_pci *fuzz_add_virtio_rng(struct fuzz_rig *r)
{
	return add_virtio(r, &virtio_rng_device); /* the device is its transport */
}

struct virtio_console *fuzz_add_virtio_console(struct fuzz_rig *r)
{
	return add_virtio(r, &virtio_console_device);
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

void fuzz_window(struct fuzz_rig *r, struct bus *bus, uint64_t base, uint64_t len)
{
	if (r->nw == FUZZ_MAX_WINDOWS)
		abort();
	r->w[r->nw++] = (struct fuzz_window){bus, base, len};
}

void fuzz_run(struct fuzz_rig *r, const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + FUZZ_OP_LEN <= size; i += FUZZ_OP_LEN) {
		const uint8_t *op = data + i;
		const struct fuzz_window *win = &r->w[(op[0] >> 3) % r->nw];
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
			ram_written = true;
			break;
		case FUZZ_OP_PCI_WRITE:
			sz = sz > 4 ? 4 : sz; /* conf1 data is a dword port: accesses are aligned */
			pci_config_write(&r->pci, (op[1] >> 2) % PCI_SLOTS, 0,
					 off % PCI_CFG_SIZE & ~(sz - 1), sz, (uint32_t)val);
			break;
		case FUZZ_OP_HOST:
			if (r->host)
				r->host(r->host_ctx, val);
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
