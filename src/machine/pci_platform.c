#include "machine/pci_platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/pvpanic.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "machine/interpose.h"
#include "machine/machine.h"

struct pci_platform {
	struct pci_bus bus;
	struct virtio_env env;
	struct virtio_blk *disk[MAX_DISKS];
	struct virtio_rng *rng;
	struct virtio_console *console;
	struct pvpanic *pvpanic;
	char disk_name[MAX_DISKS][24];
};

/* Snapshots see each virtio device under a name stable across runs. */
static int add_snapshot_hooks(struct machine *m, const char *name, struct virtio_pci *vp, char *err,
			      size_t errlen)
{
	struct machine_device d = {.name = name,
				   .dev = vp,
				   .save = virtio_pci_save,
				   .load = virtio_pci_load,
				   .pause = virtio_pci_pause};
	if (machine_add_device(m, &d) == 0)
		return 0;
	snprintf(err, errlen, "too many devices: cannot register %s", name);
	return -1;
}

static int engine_ioeventfd(void *ctx, uint64_t gpa, unsigned len, int fd, bool assign)
{
	struct machine *m = ctx;
	return m->engine->ioeventfd(m->evm, gpa, len, fd, assign);
}

int pci_platform_create(struct machine *m, char *err, size_t errlen)
{
	struct pci_platform *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory creating the PCI bus");
		return EXIT_CODE_HOST;
	}
	struct irq_line intx[PCI_INTX_LINES] = {machine_irq_line(m, PCI_INTX_GSI0),
						machine_irq_line(m, PCI_INTX_GSI1)};
	if (pci_bus_init(&p->bus, &m->pio, &m->mmio, intx, err, errlen)) {
		free(p);
		return EXIT_CODE_HOST;
	}
	m->pci = p;
	p->env = (struct virtio_env){
	    .pci = &p->bus, .mem = &m->mem, .msi = machine_msi_sink(m), .gate = interpose_gate(m)};
	/* Some policy rules need virtio notifications to trap as MMIO exits
	 * (docs/policy.md): no ioeventfd then. */
	if (m->engine->ioeventfd && interpose_allows_ioeventfd(m->cfg->policy))
		p->env.ioeventfd = (struct ioeventfd_sink){engine_ioeventfd, m};
	const struct vm_config *cfg = m->cfg;
	/* Disks first, so --disk order is slot order is vda, vdb, ... */
	for (int i = 0; i < cfg->ndisks; i++) {
		snprintf(p->disk_name[i], sizeof(p->disk_name[i]), "virtio-blk%d", i);
		p->env.gate.dev = p->disk_name[i];
		p->disk[i] =
		    virtio_blk_create(&p->env, cfg->disk[i].path, cfg->disk[i].ro, err, errlen);
		if (!p->disk[i])
			return EXIT_CODE_USAGE;
		if (add_snapshot_hooks(m, p->disk_name[i], virtio_blk_pci(p->disk[i]), err, errlen))
			return EXIT_CODE_HOST;
	}
	p->pvpanic = pvpanic_create(m, &p->bus, err, errlen);
	if (!p->pvpanic)
		return EXIT_CODE_HOST;
	p->env.gate.dev = "virtio-rng0";
	p->rng = virtio_rng_create(&p->env, err, errlen);
	if (!p->rng || add_snapshot_hooks(m, "virtio-rng0", virtio_rng_pci(p->rng), err, errlen))
		return EXIT_CODE_HOST;
	p->env.gate.dev = "virtio-console0";
	struct console_tap tap = {m, "virtio-console0", console_tx, NULL, m->console};
	p->console = virtio_console_create(&p->env, interpose_console_out,
					   interpose_tap(TAP_VIRTIO_OUT, &tap), err, errlen);
	if (!p->console ||
	    add_snapshot_hooks(m, "virtio-console0", virtio_console_pci(p->console), err, errlen))
		return EXIT_CODE_HOST;
	return 0;
}

void pci_platform_destroy(struct machine *m)
{
	struct pci_platform *p = m->pci;
	if (!p)
		return;
	for (int i = 0; i < MAX_DISKS; i++)
		virtio_blk_destroy(p->disk[i]);
	virtio_rng_destroy(p->rng);
	virtio_console_destroy(p->console);
	pvpanic_destroy(p->pvpanic);
	pci_bus_destroy(&p->bus);
	free(p);
	m->pci = NULL;
}

int pci_platform_disk_fd(struct machine *m, int i)
{
	return m->pci && i >= 0 && i < MAX_DISKS && m->pci->disk[i] ? virtio_blk_fd(m->pci->disk[i])
								    : -1;
}

static bool hvc_is_console(const char *cmdline)
{
	bool hvc = false;
	for (const char *s = cmdline; s && (s = strstr(s, "console=")); s += 8)
		if (s == cmdline || s[-1] == ' ')
			hvc = !strncmp(s + 8, "hvc", 3);
	return hvc;
}

void pci_platform_console_input(struct machine *m, console_input_fn *fn, void **ctx)
{
	if (m->pci && m->pci->console && hvc_is_console(m->cfg->cmdline)) {
		*fn = virtio_console_input;
		*ctx = m->pci->console;
	}
}
