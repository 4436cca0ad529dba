#include "devices/virtio_kick.h"

#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void close_fds(struct virtio_kick *k)
{
	for (unsigned q = 0; q < k->nqueues; q++) {
		loop_unwatch(k->queue[q].w);
		if (k->queue[q].fd >= 0)
			close(k->queue[q].fd);
	}
}

static void kicked(void *ctx, unsigned ready)
{
	struct virtio_kick_queue *kq = ctx;
	uint64_t n;
	if (read(kq->fd, &n, sizeof(n)) == sizeof(n))
		kq->k->fire(kq->k->ctx, kq->q);
}

int virtio_kick_start(struct virtio_kick *k, struct ioeventfd_sink sink, struct loop *loop,
		      unsigned nqueues, unsigned stride, void (*fire)(void *ctx, unsigned q),
		      void *ctx)
{
	memset(k, 0, sizeof(*k));
	if (!sink.set || !loop || nqueues == 0 || nqueues > KICK_MAX_QUEUES)
		return -1;
	k->sink = sink;
	k->nqueues = nqueues;
	k->stride = stride;
	k->fire = fire;
	k->ctx = ctx;
	for (unsigned q = 0; q < nqueues; q++)
		k->queue[q] = (struct virtio_kick_queue){.k = k, .q = q, .fd = -1};
	for (unsigned q = 0; q < nqueues; q++) {
		struct virtio_kick_queue *kq = &k->queue[q];
		kq->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (kq->fd < 0 ||
		    !(kq->w = loop_watch(loop, kq->fd, LOOP_IN, LOOP_DEVICE, kicked, kq)))
			goto fail;
	}
	return 0;
fail:
	close_fds(k);
	k->nqueues = 0;
	k->sink.set = NULL;
	return -1;
}

static void bind_all(struct virtio_kick *k, uint64_t base, bool assign, unsigned upto)
{
	for (unsigned q = 0; q < upto; q++)
		k->sink.set(k->sink.ctx, base + (uint64_t)q * k->stride, KICK_WIDTH, k->queue[q].fd,
			    assign);
}

void virtio_kick_bind(struct virtio_kick *k, bool mapped, uint64_t base)
{
	if (!k->sink.set)
		return;
	if (k->bound && (!mapped || k->bound_at != base)) {
		bind_all(k, k->bound_at, false, k->nqueues);
		k->bound = false;
	}
	if (!mapped || k->bound)
		return;
	for (unsigned q = 0; q < k->nqueues; q++) {
		if (k->sink.set(k->sink.ctx, base + (uint64_t)q * k->stride, KICK_WIDTH,
				k->queue[q].fd, true) < 0) {
			bind_all(k, base, false, q);
			return;
		}
	}
	k->bound = true;
	k->bound_at = base;
}

void virtio_kick_stop(struct virtio_kick *k)
{
	if (!k->sink.set)
		return;
	virtio_kick_bind(k, false, 0);
	close_fds(k);
	k->sink.set = NULL;
}
