#include "devices/pc_testdev.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "machine/bus.h"

struct pc_testdev {
	struct bus *pio, *mmio;
	pthread_mutex_t lock; /* vCPUs access it concurrently */
	uint8_t port[PC_TESTDEV_PORT_LEN];
	uint8_t mem[PC_TESTDEV_MMIO_LEN];
};

/* Both ranges are plain little-endian storage. The bus hands over accesses
 * by their first byte, so one may run past the end: those bytes read as
 * all-ones and are not stored, as nothing decodes them. */
static void store_read(struct pc_testdev *t, const uint8_t *store, uint64_t len, uint64_t off,
		       void *data, unsigned size)
{
	memset(data, 0xff, size);
	pthread_mutex_lock(&t->lock);
	if (off < len)
		memcpy(data, store + off, size < len - off ? size : len - off);
	pthread_mutex_unlock(&t->lock);
}

static void store_write(struct pc_testdev *t, uint8_t *store, uint64_t len, uint64_t off,
			const void *data, unsigned size)
{
	pthread_mutex_lock(&t->lock);
	if (off < len)
		memcpy(store + off, data, size < len - off ? size : len - off);
	pthread_mutex_unlock(&t->lock);
}

static void port_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct pc_testdev *t = dev;
	store_read(t, t->port, sizeof(t->port), off, data, size);
}

static void port_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct pc_testdev *t = dev;
	store_write(t, t->port, sizeof(t->port), off, data, size);
}

static void mem_read(void *dev, uint64_t off, void *data, unsigned size)
{
	struct pc_testdev *t = dev;
	store_read(t, t->mem, sizeof(t->mem), off, data, size);
}

static void mem_write(void *dev, uint64_t off, const void *data, unsigned size)
{
	struct pc_testdev *t = dev;
	store_write(t, t->mem, sizeof(t->mem), off, data, size);
}

static const struct bus_ops port_ops = {.read = port_read, .write = port_write};
static const struct bus_ops mem_ops = {.read = mem_read, .write = mem_write};

struct pc_testdev *pc_testdev_new(struct bus *pio, struct bus *mmio)
{
	struct pc_testdev *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pio = pio;
	t->mmio = mmio;
	pthread_mutex_init(&t->lock, NULL);
	if (bus_register(pio, PC_TESTDEV_PORT, PC_TESTDEV_PORT_LEN, &port_ops, t, "pc-testdev")) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	if (bus_register(mmio, PC_TESTDEV_MMIO, PC_TESTDEV_MMIO_LEN, &mem_ops, t, "pc-testdev")) {
		bus_unregister(pio, PC_TESTDEV_PORT, t);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	return t;
}

void pc_testdev_free(void *dev)
{
	struct pc_testdev *t = dev;
	if (!t)
		return;
	bus_unregister(t->pio, PC_TESTDEV_PORT, t);
	bus_unregister(t->mmio, PC_TESTDEV_MMIO, t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* The snapshot blob: a version word, then the register and the window. */
#define SAVED_VERSION 1
#define SAVED_LEN     (4 + PC_TESTDEV_PORT_LEN + PC_TESTDEV_MMIO_LEN)

int pc_testdev_save(void *dev, void **buf, size_t *len)
{
	struct pc_testdev *t = dev;
	uint8_t *s = malloc(SAVED_LEN);
	if (!s)
		return -1;
	uint32_t version = SAVED_VERSION;
	memcpy(s, &version, 4);
	pthread_mutex_lock(&t->lock);
	memcpy(s + 4, t->port, sizeof(t->port));
	memcpy(s + 4 + sizeof(t->port), t->mem, sizeof(t->mem));
	pthread_mutex_unlock(&t->lock);
	*buf = s;
	*len = SAVED_LEN;
	return 0;
}

int pc_testdev_load(void *dev, const void *buf, size_t len)
{
	struct pc_testdev *t = dev;
	const uint8_t *s = buf;
	uint32_t version;
	if (len != SAVED_LEN)
		return -1;
	memcpy(&version, s, 4);
	if (version != SAVED_VERSION)
		return -1;
	pthread_mutex_lock(&t->lock);
	memcpy(t->port, s + 4, sizeof(t->port));
	memcpy(t->mem, s + 4 + sizeof(t->port), sizeof(t->mem));
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Only with --device pc-testdev. */
static int pc_testdev_count(const struct vm_config *cfg)
{
	return cfg->device[DEV_PC_TESTDEV];
}

static int pc_testdev_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			     void **dev, char *err, size_t errlen)
{
	return (*dev = pc_testdev_new(s->pio, s->mmio)) ? 0 : -1;
}

const struct device_type pc_testdev_device = {.name = "pc-testdev",
					      .count = pc_testdev_count,
					      .create = pc_testdev_create,
					      .save = pc_testdev_save,
					      .load = pc_testdev_load,
					      .destroy = pc_testdev_free};
