#include "devices/acpi_pm.h"

#include <stdlib.h>
#include <string.h>

#include "boot/acpi.h"
#include "devices/services.h"

/* Offsets inside the block that starts at ACPI_PM_BASE. */
enum {
	PM1_STS = ACPI_PM1_EVT - ACPI_PM_BASE,
	PM1_EN = PM1_STS + 2,
	PM1_CNT = ACPI_PM1_CNT - ACPI_PM_BASE,
	PM_TMR = ACPI_PM_TMR - ACPI_PM_BASE,
};

#define CNT_SCI_EN	  (1u << 0)
#define CNT_SLP_TYP_SHIFT 10
#define CNT_SLP_TYP_MASK  (7u << CNT_SLP_TYP_SHIFT)
#define CNT_SLP_EN	  (1u << 13)
#define PM_TIMER_HZ	  3579545ull

struct acpi_pm {
	const struct dev_services *svc;
	pthread_mutex_t lock;
	uint16_t sts, en, cnt;
};

/* The PM timer counts at 3.579545 MHz from VM start (32 bits, TMR_VAL_EXT). */
static uint32_t pm_timer(const struct dev_services *s)
{
	uint64_t ns = s->clock_ns(s->ctx);
	return (uint32_t)(ns / 1000000000ull * PM_TIMER_HZ +
			  ns % 1000000000ull * PM_TIMER_HZ / 1000000000ull);
}

static void put_le(uint8_t *p, uint32_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void pm_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct acpi_pm *pm = dev;
	uint8_t regs[ACPI_PM_LEN] = {0};
	memset(data, 0xff, size);
	if (off >= ACPI_PM_LEN || size > ACPI_PM_LEN - off)
		return;
	pthread_mutex_lock(&pm->lock);
	put_le(regs + PM1_STS, pm->sts, 2);
	put_le(regs + PM1_EN, pm->en, 2);
	/* SCI_EN reads 1: the platform is always in ACPI mode (SMI_CMD is 0). */
	put_le(regs + PM1_CNT, (pm->cnt & ~CNT_SLP_EN) | CNT_SCI_EN, 2);
	pthread_mutex_unlock(&pm->lock);
	put_le(regs + PM_TMR, pm_timer(pm->svc), 4);
	memcpy(data, regs + off, size);
}

static void pm_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct acpi_pm *pm = dev;
	if (off >= ACPI_PM_LEN || size > ACPI_PM_LEN - off)
		return;
	/* Byte-granular: merge what was written over the current values. */
	uint8_t val[ACPI_PM_LEN] = {0}, hit[ACPI_PM_LEN] = {0};
	memcpy(val + off, data, size);
	memset(hit + off, 0xff, size);
	pthread_mutex_lock(&pm->lock);
	uint16_t sts_mask = get_le16(hit + PM1_STS);
	pm->sts &= (uint16_t) ~(get_le16(val + PM1_STS) & sts_mask); /* write 1 to clear */
	uint16_t en_mask = get_le16(hit + PM1_EN);
	pm->en = (uint16_t)((pm->en & ~en_mask) | (get_le16(val + PM1_EN) & en_mask));
	uint16_t cnt_mask = get_le16(hit + PM1_CNT);
	uint16_t cnt = (uint16_t)((pm->cnt & ~cnt_mask) | (get_le16(val + PM1_CNT) & cnt_mask));
	pm->cnt = cnt & (uint16_t)~CNT_SLP_EN;
	pthread_mutex_unlock(&pm->lock);
	if (!(cnt_mask & CNT_SLP_EN) || !(cnt & CNT_SLP_EN))
		return;
	unsigned typ = (cnt & CNT_SLP_TYP_MASK) >> CNT_SLP_TYP_SHIFT;
	if (typ == ACPI_S5_SLP_TYP)
		pm->svc->stop(pm->svc->ctx, STOP_POWEROFF, 0, "guest powered off (ACPI S5)");
	/* Other sleep states are not in the DSDT; a guest asking anyway
	 * simply keeps running. */
}

static const struct bus_ops pm_ops = {.read = pm_read, .write = pm_write};

struct pm_saved {
	uint32_t version;
	uint16_t sts, en, cnt, pad;
};

#define PM_STATE_VERSION 1

static int pm_save(void *dev, void **buf, size_t *len)
{
	struct acpi_pm *pm = dev;
	struct pm_saved *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	pthread_mutex_lock(&pm->lock);
	*s = (struct pm_saved){PM_STATE_VERSION, pm->sts, pm->en, pm->cnt, 0};
	pthread_mutex_unlock(&pm->lock);
	*buf = s;
	*len = sizeof(*s);
	return 0;
}

static int pm_load(void *dev, const void *buf, size_t len)
{
	struct acpi_pm *pm = dev;
	struct pm_saved s;
	if (len != sizeof(s))
		return -1;
	memcpy(&s, buf, sizeof(s));
	if (s.version != PM_STATE_VERSION)
		return -1;
	pthread_mutex_lock(&pm->lock);
	pm->sts = s.sts;
	pm->en = s.en;
	pm->cnt = s.cnt & (uint16_t)~CNT_SLP_EN;
	pthread_mutex_unlock(&pm->lock);
	return 0;
}

static void pm_destroy(void *dev)
{
	struct acpi_pm *pm = dev;
	bus_unregister(pm->svc->pio, ACPI_PM_BASE, pm);
	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

static int pm_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		     char *err, size_t errlen)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	if (!pm)
		return -1;
	pm->svc = s;
	pthread_mutex_init(&pm->lock, NULL);
	if (bus_register(s->pio, ACPI_PM_BASE, ACPI_PM_LEN, &pm_ops, pm, "acpi-pm")) {
		pthread_mutex_destroy(&pm->lock);
		free(pm);
		return -1;
	}
	*dev = pm;
	return 0;
}

const struct device_type acpi_pm_device = {.name = "acpi-pm",
					   .create = pm_create,
					   .save = pm_save,
					   .load = pm_load,
					   .destroy = pm_destroy};
