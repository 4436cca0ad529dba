#include "devices/pvpanic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/services.h"

#define PVPANIC_PANICKED     (1u << 0)
#define PVPANIC_CRASH_LOADED (1u << 1)

struct pvpanic {
	struct pci_dev pci;
	const struct dev_services *svc;
};

/* Reading tells the driver which events we understand. */
static void pvpanic_read(void *dev, uint64_t off, void *data, unsigned size)
{
	memset(data, 0, size);
	if (off == 0)
		*(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct pvpanic *p = dev;
	uint8_t v = off == 0 ? *(const uint8_t *)data : 0;
	if (v & PVPANIC_PANICKED)
		p->svc->stop(p->svc->ctx, STOP_CRASH, EXIT_CODE_CRASH,
			     "guest kernel panicked (pvpanic) — see the console for its message");
	else if (v & PVPANIC_CRASH_LOADED)
		p->svc->stop(p->svc->ctx, STOP_CRASH, EXIT_CODE_CRASH,
			     "guest kernel crashed into its crash kernel (pvpanic)");
}

static const struct bus_ops pvpanic_ops = {.read = pvpanic_read, .write = pvpanic_write};

static void pvpanic_destroy(void *dev)
{
	struct pvpanic *p = dev;
	if (!p)
		return;
	pci_bus_remove(&p->pci);
	free(p);
}

static int pvpanic_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			  void **dev, char *err, size_t errlen)
{
	struct pvpanic *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory creating pvpanic");
		return -1;
	}
	p->svc = s;
	pci_dev_init(&p->pci, "pvpanic", 0x1b36, 0x0011, 1, 0x088000 /* system peripheral */);
	pci_dev_set_bar64(&p->pci, 0, 4096, &pvpanic_ops, p);
	if (pci_bus_add(s->pci, &p->pci, err, errlen)) {
		free(p);
		return -1;
	}
	*dev = p;
	return 0;
}

const struct device_type pvpanic_device = {
    .name = "pvpanic", .create = pvpanic_create, .destroy = pvpanic_destroy};
