/* Vyukov's bounded queue, many producers and one consumer: each cell carries
 * a sequence number that says whose turn it is, so a producer claims a cell
 * with one compare-and-swap and publishes it with one release store, and the
 * consumer never waits for a producer (an unfinished cell reads as empty). */
#include "policy/ring.h"

#include <stdatomic.h>
#include <stdlib.h>

struct cell {
	_Atomic uint64_t seq; /* pos: free for the producer of pos; pos+1: holds its event */
	struct policy_event ev;
};

struct event_ring {
	_Alignas(64) _Atomic uint64_t head; /* the next position producers claim */
	_Alignas(64) _Atomic uint64_t dropped;
	_Alignas(64) uint64_t tail; /* the consumer's position */
	uint64_t mask;
	struct cell cell[];
};

struct event_ring *ring_create(unsigned order)
{
	if (order < 1 || order > 20)
		return NULL;
	uint64_t n = 1ull << order;
	struct event_ring *r =
	    aligned_alloc(64, (sizeof(*r) + n * sizeof(struct cell) + 63) & ~63ull);
	if (!r)
		return NULL;
	atomic_init(&r->head, 0);
	atomic_init(&r->dropped, 0);
	r->tail = 0;
	r->mask = n - 1;
	for (uint64_t i = 0; i < n; i++)
		atomic_init(&r->cell[i].seq, i);
	return r;
}

void ring_destroy(struct event_ring *r)
{
	free(r);
}

bool ring_push(struct event_ring *r, const struct policy_event *e)
{
	uint64_t pos = atomic_load_explicit(&r->head, memory_order_relaxed);
	for (;;) {
		struct cell *c = &r->cell[pos & r->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t d = (int64_t)(seq - pos);
		if (d == 0) {
			if (atomic_compare_exchange_weak_explicit(&r->head, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				c->ev = *e;
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				return true;
			}
		} else if (d < 0) {
			return false; /* the consumer has not freed this cell: full */
		} else {
			pos = atomic_load_explicit(&r->head, memory_order_relaxed);
		}
	}
}

void ring_drop(struct event_ring *r)
{
	atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
}

bool ring_pop(struct event_ring *r, struct policy_event *e)
{
	struct cell *c = &r->cell[r->tail & r->mask];
	if (atomic_load_explicit(&c->seq, memory_order_acquire) != r->tail + 1)
		return false;
	*e = c->ev;
	atomic_store_explicit(&c->seq, r->tail + r->mask + 1, memory_order_release);
	r->tail++;
	return true;
}

uint64_t ring_take_dropped(struct event_ring *r)
{
	return atomic_exchange_explicit(&r->dropped, 0, memory_order_relaxed);
}
