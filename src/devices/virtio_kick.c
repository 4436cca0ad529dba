#include "devices/virtio_kick.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void close_fds(struct virtio_kick *k)
{
	for (unsigned q = 0; q < k->nqueues; q++)
		if (k->fd[q] >= 0)
			close(k->fd[q]);
	if (k->stop_fd >= 0)
		close(k->stop_fd);
}

static void *kick_thread(void *arg)
{
	struct virtio_kick *k = arg;
	struct pollfd p[KICK_MAX_QUEUES + 1];
	for (unsigned q = 0; q < k->nqueues; q++)
		p[q] = (struct pollfd){k->fd[q], POLLIN, 0};
	p[k->nqueues] = (struct pollfd){k->stop_fd, POLLIN, 0};
	for (;;) {
		if (poll(p, k->nqueues + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[k->nqueues].revents)
			return NULL;
		for (unsigned q = 0; q < k->nqueues; q++) {
			uint64_t n;
			if (p[q].revents && read(k->fd[q], &n, sizeof(n)) == sizeof(n))
				k->fire(k->ctx, q);
		}
	}
}

int virtio_kick_start(struct virtio_kick *k, struct ioeventfd_sink sink, unsigned nqueues,
		      unsigned stride, void (*fire)(void *ctx, unsigned q), void *ctx)
{
	memset(k, 0, sizeof(*k));
	k->stop_fd = -1;
	for (unsigned q = 0; q < KICK_MAX_QUEUES; q++)
		k->fd[q] = -1;
	if (!sink.set || nqueues == 0 || nqueues > KICK_MAX_QUEUES)
		return -1;
	k->sink = sink;
	k->nqueues = nqueues;
	k->stride = stride;
	k->fire = fire;
	k->ctx = ctx;
	for (unsigned q = 0; q < nqueues; q++)
		if ((k->fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			goto fail;
	if ((k->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0)
		goto fail;
	/* Signals belong to the main and vCPU threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&k->thread, NULL, kick_thread, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
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
		k->sink.set(k->sink.ctx, base + (uint64_t)q * k->stride, KICK_WIDTH, k->fd[q],
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
		if (k->sink.set(k->sink.ctx, base + (uint64_t)q * k->stride, KICK_WIDTH, k->fd[q],
				true) < 0) {
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
	uint64_t one = 1;
	if (write(k->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(k->thread, NULL);
	close_fds(k);
	k->sink.set = NULL;
}
