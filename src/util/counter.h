/* Event counters with one writer (the thread that owns them: a vCPU) and
 * readers on other threads (`popek stats`). Relaxed atomics: no torn or
 * invented values and no ordering, which statistics do not need. On x86 the
 * increment is the same load, add and store as a plain one, without LOCK. */
#ifndef POPEK_UTIL_COUNTER_H
#define POPEK_UTIL_COUNTER_H

#include <stdint.h>

/* Only the owning thread adds. */
static inline void counter_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline uint64_t counter_read(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

#endif
