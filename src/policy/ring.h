/* A bounded ring of guest-action events between the threads that produce them
 * (vCPUs, device threads) and one consumer (the audit writer, a trace client).
 * Producers never block and never make a system call: an event that does not
 * fit is counted as dropped, and the consumer reports the count. */
#ifndef POPEK_POLICY_RING_H
#define POPEK_POLICY_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "net/frame.h"

/* One action as the trace and the audit log record it. */
struct policy_event {
	uint64_t ns;	/* CLOCK_REALTIME */
	uint64_t addr;	/* port, guest-physical address, hypercall number or first sector */
	uint64_t value; /* what the guest saw or wrote after the rule; request bytes (disk, rng,
			   console) */
	const char
	    *device;	  /* the device the address belongs to, or NULL; lives as long as the VM */
	const char *path; /* syscall: its first path argument, or NULL; popek exec writes its
			     audit lines at once (no ring), so it needs to live only so long */
	int32_t vcpu;
	int32_t rule;	 /* line of the rule that acted, 0 = none (traced only) */
	uint8_t cls;	 /* enum policy_class */
	uint8_t verdict; /* enum policy_action */
	uint8_t op;	 /* one POLICY_READ... bit */
	uint8_t size;
	struct frame_info net; /* class net: the frame's headers */
};

struct event_ring;

/* A ring of 2^order events (order 1-20); NULL without memory. */
struct event_ring *ring_create(unsigned order);
void ring_destroy(struct event_ring *r);
/* Any thread: false if the ring is full (the caller decides whether that
 * counts as a drop: ring_drop). */
bool ring_push(struct event_ring *r, const struct policy_event *e);
void ring_drop(struct event_ring *r);
/* The single consumer: the oldest event, false if none is ready. */
bool ring_pop(struct event_ring *r, struct policy_event *e);
/* The drops since the last call, and zero them. */
uint64_t ring_take_dropped(struct event_ring *r);

#endif
