/* Queue notifications without a trip through the vCPU loop: each queue's
 * notify address is bound to an eventfd (the engine's ioeventfd fast path)
 * that the VM's event loop watches as device work, so a paused VM leaves the
 * kicks pending. Without an engine fast path none of this is used and kicks
 * arrive as MMIO writes. */
#ifndef POPEK_VIRTIO_KICK_H
#define POPEK_VIRTIO_KICK_H

#include <stdbool.h>
#include <stdint.h>

#include "util/loop.h"

#define KICK_MAX_QUEUES 8
#define KICK_WIDTH	2 /* drivers write the 16-bit queue index */

/* The machine's binding of guest MMIO writes to eventfds (engine ioeventfd). */
struct ioeventfd_sink {
	int (*set)(void *ctx, uint64_t gpa, unsigned len, int fd, bool assign);
	void *ctx;
};

struct virtio_kick_queue {
	struct virtio_kick *k;
	unsigned q;
	int fd;
	struct loop_watch *w;
};

struct virtio_kick {
	struct ioeventfd_sink sink;
	unsigned nqueues, stride;
	struct virtio_kick_queue queue[KICK_MAX_QUEUES];
	bool bound;
	uint64_t bound_at;
	void (*fire)(void *ctx, unsigned q);
	void *ctx;
};

/* Create the eventfds and watch them on loop; fire(ctx, q) runs on the loop
 * thread. Returns 0, or -1 (then the device simply keeps using MMIO exits). */
int virtio_kick_start(struct virtio_kick *k, struct ioeventfd_sink sink, struct loop *loop,
		      unsigned nqueues, unsigned stride, void (*fire)(void *ctx, unsigned q),
		      void *ctx);
/* Bind queue q's eventfd to base + q * stride, or unbind when !mapped; a
 * moved BAR rebinds. Binding failures leave the MMIO path in charge. */
void virtio_kick_bind(struct virtio_kick *k, bool mapped, uint64_t base);
/* Unbind, stop watching, close the eventfds. */
void virtio_kick_stop(struct virtio_kick *k);

#endif
