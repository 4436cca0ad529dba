/* Queue notifications without a trip through the vCPU loop: each queue's
 * notify address is bound to an eventfd (the engine's ioeventfd fast path)
 * and one thread per device turns signals into queue work. Without an engine
 * fast path none of this is used and kicks arrive as MMIO writes. */
#ifndef POPEK_VIRTIO_KICK_H
#define POPEK_VIRTIO_KICK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define KICK_MAX_QUEUES 8
#define KICK_WIDTH	2 /* drivers write the 16-bit queue index */

/* The machine's binding of guest MMIO writes to eventfds (engine ioeventfd). */
struct ioeventfd_sink {
	int (*set)(void *ctx, uint64_t gpa, unsigned len, int fd, bool assign);
	void *ctx;
};

struct virtio_kick {
	struct ioeventfd_sink sink;
	unsigned nqueues, stride;
	int fd[KICK_MAX_QUEUES];
	int stop_fd;
	bool bound;
	uint64_t bound_at;
	pthread_t thread;
	void (*fire)(void *ctx, unsigned q);
	void *ctx;
};

/* Create the eventfds and the thread; fire(ctx, q) runs on that thread.
 * Returns 0, or -1 (then the device simply keeps using MMIO exits). */
int virtio_kick_start(struct virtio_kick *k, struct ioeventfd_sink sink, unsigned nqueues,
		      unsigned stride, void (*fire)(void *ctx, unsigned q), void *ctx);
/* Bind queue q's eventfd to base + q * stride, or unbind when !mapped; a
 * moved BAR rebinds. Binding failures leave the MMIO path in charge. */
void virtio_kick_bind(struct virtio_kick *k, bool mapped, uint64_t base);
/* Unbind, stop the thread, close the eventfds. */
void virtio_kick_stop(struct virtio_kick *k);

#endif
