/* An address space of device ranges: one for port I/O, one for MMIO.
 * Devices register [base, base+len) with a read and a write handler; the vCPU
 * loop dispatches exits here and never knows device names. Ranges may be added
 * and removed while vCPUs run (PCI BAR programming), hence the rwlock. */
#ifndef POPEK_BUS_H
#define POPEK_BUS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct json_object;

struct bus_ops {
	/* data is size bytes (1, 2, 4 or 8), little-endian; offset is from base. */
	void (*read)(void *dev, uint64_t offset, void *data, unsigned size);
	void (*write)(void *dev, uint64_t offset, const void *data, unsigned size);
};

struct bus_region {
	uint64_t base, len;
	const struct bus_ops *ops;
	void *dev;
	const char *name;
	atomic_ulong *hits; /* shared by every range a device registers under one name */
};

struct bus_counter {
	const char *name;
	atomic_ulong hits;
};

#define BUS_MAX_REGIONS 64

struct bus {
	const char *name;
	pthread_rwlock_t lock;
	int n;
	struct bus_region r[BUS_MAX_REGIONS]; /* sorted by base, never overlapping */
	int ncounters;
	struct bus_counter counters[BUS_MAX_REGIONS];
	atomic_ulong unclaimed;
};

void bus_init(struct bus *b, const char *name);
void bus_destroy(struct bus *b);

/* Returns 0, or -1 if the range overlaps another or the table is full. */
int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev,
		 const char *name);
/* Remove the range of dev that starts at base; no-op if absent. */
void bus_unregister(struct bus *b, uint64_t base, void *dev);

/* Dispatch one access. Unclaimed reads return all-ones, unclaimed writes are
 * dropped (as on a PC bus). Returns false if nothing claimed the address. */
bool bus_access(struct bus *b, uint64_t addr, void *data, unsigned size, bool write);

/* The name of the device at addr (as bus_stats shows it, for traces and dev
 * matches), or NULL; names outlive their ranges. */
const char *bus_name(struct bus *b, uint64_t addr);

/* Add {"device": hits, ...} to obj. */
void bus_stats(struct bus *b, struct json_object *obj);

#endif
