/* The device registry: every device a popek VM can have, in the order the
 * machine creates them (PCI slot order follows, so --disk order is vda, vdb,
 * ...). One row per kind of device; each row's hooks live with the device. */
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include "devices/acpi_pm.h"
#include "devices/cmos_rtc.h"
#include "devices/debug_exit.h"
#include "devices/disk.h"
#include "devices/fw_cfg.h"
#include "devices/i8042.h"
#include "devices/pc_testdev.h"
#include "devices/pvpanic.h"
#include "devices/uart16550.h"
#include "devices/virtio_console.h"
#include "devices/virtio_fs.h"
#include "devices/virtio_net.h"
#include "devices/virtio_rng.h"
#include "devices/virtio_vsock.h"
#include "machine/interpose.h"
#include "machine/machine.h"

static const struct device_type *const registry[] = {
    &uart_device,
    &debug_exit_device,
    &acpi_pm_device,
    &i8042_device,
    &cmos_rtc_device,
    &fw_cfg_device,
    &pc_testdev_device,
    /* on the PCI bus */
    &disk_device,
    &pvpanic_device,
    &virtio_rng_device,
    &virtio_console_device,
    &virtio_net_device, /* the other devices keep their PCI slots */
    &virtio_fs_device,
    &virtio_vsock_device,
};

int machine_add_device(struct machine *m, const struct device_type *t, int i, char *err,
		       size_t errlen)
{
	if (m->ndevices == MAX_DEVICES) {
		snprintf(err, errlen, "too many devices: cannot add %s", t->name);
		return EXIT_CODE_HOST;
	}
	struct machine_device *d = &m->devices[m->ndevices];
	if (t->numbered)
		snprintf(d->name, sizeof(d->name), "%s%d", t->name, i);
	else
		snprintf(d->name, sizeof(d->name), "%s", t->name);
	d->type = t;
	d->dev = NULL;
	err[0] = 0;
	m->svc.gate.dev = d->name; /* the policy's name for its requests */
	if (t->input)
		machine_console_tap(m, d->name, t == &uart_device ? TAP_UART_OUT : TAP_VIRTIO_OUT);
	int rc = t->create(&m->svc, m->cfg, i, &d->dev, err, errlen);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "cannot create device %s", d->name);
		return rc < 0 ? EXIT_CODE_HOST : rc;
	}
	m->ndevices++;
	return 0;
}

int machine_create_devices(struct machine *m, char *err, size_t errlen)
{
	for (size_t r = 0; r < sizeof(registry) / sizeof(registry[0]); r++) {
		const struct device_type *t = registry[r];
		int n = t->count ? t->count(m->cfg) : 1;
		for (int i = 0; i < n; i++) {
			int rc = machine_add_device(m, t, i, err, errlen);
			if (rc)
				return rc;
		}
	}
	return 0;
}

struct machine_device *machine_device_find(struct machine *m, const char *name)
{
	for (int i = 0; i < m->ndevices; i++)
		if (!strcmp(m->devices[i].name, name))
			return &m->devices[i];
	return NULL;
}

static struct machine_device *machine_disk(struct machine *m, int i)
{
	char name[24];
	snprintf(name, sizeof(name), "%s%d", disk_device.name, i);
	return machine_device_find(m, name);
}

int machine_disk_fd(struct machine *m, int i)
{
	struct machine_device *d = machine_disk(m, i);
	return d ? disk_fd(d->dev) : -1;
}

int machine_disk_track(struct machine *m, int i, uint64_t *bitmap)
{
	struct machine_device *d = machine_disk(m, i);
	return d ? disk_track(d->dev, bitmap) : -1;
}

int machine_disks_lock(struct machine *m, int timeout_s, char *err, size_t errlen)
{
	for (int i = 0; i < m->cfg->ndisks; i++) {
		int fd = machine_disk_fd(m, i), op = m->cfg->disk[i].ro ? LOCK_SH : LOCK_EX;
		int tries = timeout_s * 100;
		struct timespec nap = {0, 10 * 1000 * 1000};
		while (fd >= 0 && flock(fd, op | LOCK_NB) < 0 && tries-- > 0)
			clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL);
		if (fd >= 0 && tries < 0) {
			snprintf(
			    err, errlen,
			    "disk image %s is still attached elsewhere %d s after the handover",
			    m->cfg->disk[i].path, timeout_s);
			return -1;
		}
	}
	return 0;
}
