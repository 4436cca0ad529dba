#include "machine/bus.h"

#include <json-c/json.h>
#include <string.h>

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	pthread_rwlock_init(&b->lock, NULL);
}

void bus_destroy(struct bus *b)
{
	pthread_rwlock_destroy(&b->lock);
}

static atomic_ulong *counter_for(struct bus *b, const char *name)
{
	for (int i = 0; i < b->ncounters; i++)
		if (!strcmp(b->counters[i].name, name))
			return &b->counters[i].hits;
	struct bus_counter *c = &b->counters[b->ncounters++];
	c->name = name;
	return &c->hits;
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, const struct bus_ops *ops, void *dev,
		 const char *name)
{
	int rc = -1;
	if (!len || base + len - 1 < base)
		return -1;
	pthread_rwlock_wrlock(&b->lock);
	if (b->n == BUS_MAX_REGIONS || b->ncounters == BUS_MAX_REGIONS)
		goto out;
	int i = 0;
	while (i < b->n && b->r[i].base < base)
		i++;
	if (i > 0 && b->r[i - 1].base + b->r[i - 1].len > base)
		goto out;
	if (i < b->n && base + len > b->r[i].base)
		goto out;
	memmove(&b->r[i + 1], &b->r[i], (size_t)(b->n - i) * sizeof(b->r[0]));
	b->r[i] = (struct bus_region){base, len, ops, dev, name, counter_for(b, name)};
	b->n++;
	rc = 0;
out:
	pthread_rwlock_unlock(&b->lock);
	return rc;
}

void bus_unregister(struct bus *b, uint64_t base, void *dev)
{
	pthread_rwlock_wrlock(&b->lock);
	for (int i = 0; i < b->n; i++) {
		if (b->r[i].base == base && b->r[i].dev == dev) {
			memmove(&b->r[i], &b->r[i + 1], (size_t)(b->n - i - 1) * sizeof(b->r[0]));
			b->n--;
			break;
		}
	}
	pthread_rwlock_unlock(&b->lock);
}

/* Binary search: the region with the greatest base <= addr, if it covers addr. */
static const struct bus_region *find(const struct bus *b, uint64_t addr)
{
	int lo = 0, hi = b->n - 1, found = -1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (b->r[mid].base <= addr) {
			found = mid;
			lo = mid + 1;
		} else {
			hi = mid - 1;
		}
	}
	if (found < 0 || addr - b->r[found].base >= b->r[found].len)
		return NULL;
	return &b->r[found];
}

bool bus_access(struct bus *b, uint64_t addr, void *data, unsigned size, bool write)
{
	pthread_rwlock_rdlock(&b->lock);
	const struct bus_region *r = find(b, addr);
	if (r) {
		atomic_fetch_add_explicit(r->hits, 1, memory_order_relaxed);
		if (write) {
			if (r->ops->write)
				r->ops->write(r->dev, addr - r->base, data, size);
		} else if (r->ops->read) {
			r->ops->read(r->dev, addr - r->base, data, size);
		} else {
			memset(data, 0xff, size);
		}
	} else {
		atomic_fetch_add_explicit(&b->unclaimed, 1, memory_order_relaxed);
		if (!write)
			memset(data, 0xff, size);
	}
	pthread_rwlock_unlock(&b->lock);
	return r != NULL;
}

const char *bus_name(struct bus *b, uint64_t addr)
{
	pthread_rwlock_rdlock(&b->lock);
	const struct bus_region *r = find(b, addr);
	const char *name = r ? r->name : NULL;
	pthread_rwlock_unlock(&b->lock);
	return name;
}

void bus_stats(struct bus *b, struct json_object *obj)
{
	pthread_rwlock_rdlock(&b->lock);
	for (int i = 0; i < b->ncounters; i++) {
		unsigned long n = atomic_load(&b->counters[i].hits);
		if (n)
			json_object_object_add(obj, b->counters[i].name,
					       json_object_new_int64((int64_t)n));
	}
	unsigned long u = atomic_load(&b->unclaimed);
	if (u)
		json_object_object_add(obj, "unclaimed", json_object_new_int64((int64_t)u));
	pthread_rwlock_unlock(&b->lock);
}
