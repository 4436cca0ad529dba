#include "devices/pvpanic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/pci.h"
#include "machine/machine.h"

#define PVPANIC_PANICKED     (1u << 0)
#define PVPANIC_CRASH_LOADED (1u << 1)

struct pvpanic {
	struct pci_dev pci;
	struct machine *m;
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
		machine_stop(p->m, STOP_CRASH, EXIT_CODE_CRASH,
			     "guest kernel panicked (pvpanic) — see the console for its message");
	else if (v & PVPANIC_CRASH_LOADED)
		machine_stop(p->m, STOP_CRASH, EXIT_CODE_CRASH,
			     "guest kernel crashed into its crash kernel (pvpanic)");
}

static const struct bus_ops pvpanic_ops = {.read = pvpanic_read, .write = pvpanic_write};

void pvpanic_destroy(struct pvpanic *p)
{
	if (!p)
		return;
	pci_bus_remove(&p->pci);
	free(p);
}

struct pvpanic *pvpanic_create(struct machine *m, struct pci_bus *bus, char *err, size_t errlen)
{
	struct pvpanic *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory creating pvpanic");
		return NULL;
	}
	p->m = m;
	pci_dev_init(&p->pci, "pvpanic", 0x1b36, 0x0011, 1, 0x088000 /* system peripheral */);
	pci_dev_set_bar64(&p->pci, 0, 4096, &pvpanic_ops, p);
	if (pci_bus_add(bus, &p->pci, err, errlen)) {
		free(p);
		return NULL;
	}
	return p;
}
