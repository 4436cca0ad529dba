#include "machine/pci_platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/pvpanic.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "machine/machine.h"
#include "policy/policy.h"

struct pci_platform {
	struct pci_bus bus;
	struct virtio_env env;
	struct virtio_blk *disk[MAX_DISKS];
	struct virtio_rng *rng;
	struct virtio_console *console;
	struct pvpanic *pvpanic;
	char disk_name[MAX_DISKS][24];
	struct virtio_net *nic[MAX_NICS];
	char nic_name[MAX_NICS][24];
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

/* The NICs (--net), last so the other devices keep their PCI slots. */
static int add_nics(struct machine *m, struct pci_platform *p, char *err, size_t errlen)
{
	for (int i = 0; i < m->cfg->nnics; i++) {
		const struct net_config *nc = &m->cfg->nic[i];
		uint8_t mac[6];
		net_mac(nc, m->cfg->name, i, mac);
		struct net_backend *be = net_backend_open(nc, err, errlen);
		if (!be ||
		    !(p->nic[i] = virtio_net_create(&p->env, be, mac, nc->capture, err, errlen)))
			return EXIT_CODE_USAGE;
		if (virtio_net_start(p->nic[i], err, errlen))
			return EXIT_CODE_HOST;
		snprintf(p->nic_name[i], sizeof(p->nic_name[i]), "virtio-net%d", i);
		struct machine_device d = {.name = p->nic_name[i],
					   .dev = virtio_net_pci(p->nic[i]),
					   .save = virtio_pci_save,
					   .load = virtio_pci_load,
					   .pause = virtio_net_pause};
		if (machine_add_device(m, &d)) {
			snprintf(err, errlen, "too many devices: cannot register %s", d.name);
			return EXIT_CODE_HOST;
		}
	}
	return 0;
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
	p->env = (struct virtio_env){.pci = &p->bus, .mem = &m->mem, .msi = machine_msi_sink(m)};
	/* An mmio policy rule must see virtio notifications too: no ioeventfd
	 * then, so they trap as MMIO exits (docs/policy.md). */
	if (m->engine->ioeventfd && !policy_has_class(m->cfg->policy, POLICY_MMIO))
		p->env.ioeventfd = (struct ioeventfd_sink){engine_ioeventfd, m};
	const struct vm_config *cfg = m->cfg;
	/* Disks first, so --disk order is slot order is vda, vdb, ... */
	for (int i = 0; i < cfg->ndisks; i++) {
		p->disk[i] =
		    virtio_blk_create(&p->env, cfg->disk[i].path, cfg->disk[i].ro, err, errlen);
		if (!p->disk[i])
			return EXIT_CODE_USAGE;
		snprintf(p->disk_name[i], sizeof(p->disk_name[i]), "virtio-blk%d", i);
		if (add_snapshot_hooks(m, p->disk_name[i], virtio_blk_pci(p->disk[i]), err, errlen))
			return EXIT_CODE_HOST;
	}
	p->pvpanic = pvpanic_create(m, &p->bus, err, errlen);
	if (!p->pvpanic)
		return EXIT_CODE_HOST;
	p->rng = virtio_rng_create(&p->env, err, errlen);
	if (!p->rng || add_snapshot_hooks(m, "virtio-rng0", virtio_rng_pci(p->rng), err, errlen))
		return EXIT_CODE_HOST;
	p->console = virtio_console_create(&p->env, console_tx, m->console, err, errlen);
	if (!p->console ||
	    add_snapshot_hooks(m, "virtio-console0", virtio_console_pci(p->console), err, errlen))
		return EXIT_CODE_HOST;
	return add_nics(m, p, err, errlen);
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
	for (int i = 0; i < MAX_NICS; i++)
		virtio_net_destroy(p->nic[i]);
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
