/* One thread per NIC serves its backend's fds and timers. An eventfd wakes it
 * for work the NIC has (a refilled receive queue, stop). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net/net.h"

static void *loop_thread(void *arg)
{
	struct net_loop *l = arg;
	struct net_backend *b = l->b;
	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		struct net_pollset ps = {.n = 1};
		int timeout = -1;
		ps.fd[0] = (struct pollfd){l->wake_fd, POLLIN, 0};
		pthread_mutex_lock(&b->lock);
		b->ops->fill(b, &ps, &timeout);
		pthread_mutex_unlock(&b->lock);
		if (poll(ps.fd, ps.n, timeout) < 0 && errno != EINTR)
			break;
		uint64_t v;
		if (ps.fd[0].revents && read(l->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		pthread_mutex_lock(&b->lock);
		b->ops->dispatch(b, &ps);
		pthread_mutex_unlock(&b->lock);
		l->after(l->ctx);
	}
	return NULL;
}

int net_loop_start(struct net_loop *l, struct net_backend *b, void (*after)(void *), void *ctx,
		   char *err, size_t errlen)
{
	*l = (struct net_loop){.b = b, .after = after, .ctx = ctx};
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0) {
		snprintf(err, errlen, "cannot create an eventfd for the NIC: %s", strerror(errno));
		return -1;
	}
	/* Signals belong to the main and vCPU threads. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&l->thread, NULL, loop_thread, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "cannot start the NIC's thread: %s", strerror(rc));
		close(l->wake_fd);
		l->wake_fd = -1;
		return -1;
	}
	return 0;
}

void net_loop_wake(struct net_loop *l)
{
	uint64_t one = 1;
	if (l->wake_fd >= 0 && write(l->wake_fd, &one, sizeof(one)) < 0)
		return; /* the counter is full: a wake-up is pending anyway */
}

void net_loop_stop(struct net_loop *l)
{
	if (l->wake_fd < 0)
		return;
	__atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
	net_loop_wake(l);
	pthread_join(l->thread, NULL);
	close(l->wake_fd);
	l->wake_fd = -1;
}
