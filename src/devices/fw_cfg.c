#include "devices/fw_cfg.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "machine/bus.h"

/* Selector keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h). */
enum {
	FW_CFG_SIGNATURE = 0x00,
	FW_CFG_ID = 0x01,
	FW_CFG_RAM_SIZE = 0x03,
	FW_CFG_NB_CPUS = 0x05,
	FW_CFG_MAX_CPUS = 0x0f,
	FW_CFG_FILE_DIR = 0x19,
};

/* Bit 15 selects the architecture-specific items, bit 14 asks for write
 * access (ignored, as by QEMU since 2.4); the rest is the item number. */
#define KEY_ARCH     0x8000
#define KEY_ENTRY    0x3fff
#define ID_TRADITION 1u /* the I/O port interface; no DMA */
#define ITEM_MAX     8
#define NITEMS	     6

struct item {
	uint16_t key;
	uint8_t len;
	uint8_t data[ITEM_MAX];
};

struct fw_cfg {
	struct bus *pio;
	pthread_mutex_t lock;
	struct item items[NITEMS];
	uint16_t selector;
	uint32_t offset; /* into the selected item; reset by every selector write */
};

static struct item le(uint16_t key, uint64_t v, uint8_t len)
{
	struct item it = {.key = key, .len = len};
	for (int i = 0; i < len; i++)
		it.data[i] = (uint8_t)(v >> (8 * i));
	return it;
}

/* The item a selector names, or NULL: unknown items (every architecture-
 * specific one among them) read as zeros. */
static const struct item *selected(const struct fw_cfg *f)
{
	if (f->selector & KEY_ARCH)
		return NULL;
	for (int i = 0; i < NITEMS; i++)
		if (f->items[i].key == (f->selector & KEY_ENTRY))
			return &f->items[i];
	return NULL;
}

static void fw_cfg_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct fw_cfg *f = dev;
	/* The data register is 8 bits wide on I/O ports: wider reads get 0 and
	 * leave the offset alone, as on QEMU. */
	memset(data, 0, size);
	if (size != 1)
		return;
	pthread_mutex_lock(&f->lock);
	const struct item *it = selected(f);
	uint8_t v = 0;
	if (it && f->offset < it->len)
		v = it->data[f->offset];
	if (f->offset < UINT32_MAX)
		f->offset++;
	pthread_mutex_unlock(&f->lock);
	*(uint8_t *)data = v;
}

/* A 16-bit write selects an item; byte writes to the data register are
 * ignored (read-only items). */
static void fw_cfg_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct fw_cfg *f = dev;
	if (size != 2)
		return;
	uint16_t key;
	memcpy(&key, data, 2);
	pthread_mutex_lock(&f->lock);
	f->selector = key;
	f->offset = 0;
	pthread_mutex_unlock(&f->lock);
}

static const struct bus_ops fw_cfg_ops = {.read = fw_cfg_read, .write = fw_cfg_write};

struct fw_cfg *fw_cfg_new(struct bus *pio, uint64_t ram_size, int ncpus)
{
	struct fw_cfg *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->pio = pio;
	pthread_mutex_init(&f->lock, NULL);
	struct item sig = {.key = FW_CFG_SIGNATURE, .len = 4, .data = "QEMU"};
	f->items[0] = sig;
	f->items[1] = le(FW_CFG_ID, ID_TRADITION, 4);
	f->items[2] = le(FW_CFG_RAM_SIZE, ram_size, 8);
	f->items[3] = le(FW_CFG_NB_CPUS, (uint64_t)ncpus, 2);
	f->items[4] = le(FW_CFG_MAX_CPUS, (uint64_t)ncpus, 2);
	f->items[5] = le(FW_CFG_FILE_DIR, 0, 4); /* big-endian count of files: none */
	if (bus_register(pio, FW_CFG_PORT, 2, &fw_cfg_ops, f, "fw_cfg")) {
		pthread_mutex_destroy(&f->lock);
		free(f);
		return NULL;
	}
	return f;
}

void fw_cfg_free(void *dev)
{
	struct fw_cfg *f = dev;
	if (!f)
		return;
	bus_unregister(f->pio, FW_CFG_PORT, f);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

struct fw_cfg_saved {
	uint32_t version;
	uint16_t selector, pad;
	uint32_t offset;
};

#define FW_CFG_STATE_VERSION 1

int fw_cfg_save(void *dev, void **buf, size_t *len)
{
	struct fw_cfg *f = dev;
	struct fw_cfg_saved *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	pthread_mutex_lock(&f->lock);
	*s = (struct fw_cfg_saved){
	    .version = FW_CFG_STATE_VERSION, .selector = f->selector, .offset = f->offset};
	pthread_mutex_unlock(&f->lock);
	*buf = s;
	*len = sizeof(*s);
	return 0;
}

/* Any selector and offset is a state the guest can reach, so only the
 * record's shape is checked. */
int fw_cfg_load(void *dev, const void *buf, size_t len)
{
	struct fw_cfg *f = dev;
	struct fw_cfg_saved s;
	if (len != sizeof(s))
		return -1;
	memcpy(&s, buf, sizeof(s));
	if (s.version != FW_CFG_STATE_VERSION)
		return -1;
	pthread_mutex_lock(&f->lock);
	f->selector = s.selector;
	f->offset = s.offset;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fw_cfg_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			 void **dev, char *err, size_t errlen)
{
	return (*dev = fw_cfg_new(s->pio, s->mem->size, cfg->cpus)) ? 0 : -1;
}

const struct device_type fw_cfg_device = {.name = "fw_cfg",
					  .create = fw_cfg_create,
					  .save = fw_cfg_save,
					  .load = fw_cfg_load,
					  .destroy = fw_cfg_free};
