/* A poll-style backend on the VM's epoll loop: watches follow the fds the
 * backend names each round (libslirp's set changes as connections come and
 * go); a one-shot timer stands for its timeout. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/net.h"
#include "util/loop.h"

#define NS_PER_MS 1000000ull
#define ROUND_MAX 1000 /* ms: frames that waited out a pause move on by then */

static void round_fn(void *ctx);

static void on_fd(void *ctx, unsigned ready)
{
	(void)ready; /* the round polls every fd for its real events */
	round_fn(ctx);
}

static unsigned loop_events(short ev)
{
	return (ev & (POLLIN | POLLPRI) ? LOOP_IN : 0) | (ev & POLLOUT ? LOOP_OUT : 0);
}

/* Make the loop's watches match this round's fds (index 0 and on). */
static void rewatch(struct net_loop *l)
{
	/* Drop watches of fds no longer asked for; update the others. */
	for (unsigned w = 0; w < l->nwatch;) {
		unsigned i = 0;
		while (i < l->ps.n && l->ps.fd[i].fd != l->watched_fd[w])
			i++;
		if (i == l->ps.n) {
			loop_unwatch(l->watch[w]);
			l->nwatch--;
			l->watch[w] = l->watch[l->nwatch];
			l->watched_fd[w] = l->watched_fd[l->nwatch];
			continue;
		}
		loop_watch_events(l->watch[w], loop_events(l->ps.fd[i].events));
		w++;
	}
	for (unsigned i = 0; i < l->ps.n; i++) {
		unsigned w = 0;
		while (w < l->nwatch && l->watched_fd[w] != l->ps.fd[i].fd)
			w++;
		if (w < l->nwatch || l->nwatch == NET_POLL_MAX)
			continue;
		struct loop_watch *lw =
		    loop_watch(l->loop, l->ps.fd[i].fd, loop_events(l->ps.fd[i].events),
			       LOOP_DEVICE, on_fd, l);
		if (!lw)
			continue; /* out of memory: the round timer still comes */
		l->watch[l->nwatch] = lw;
		l->watched_fd[l->nwatch++] = l->ps.fd[i].fd;
	}
}

static void round_fn(void *ctx)
{
	struct net_loop *l = ctx;
	struct net_backend *b = l->b;
	pthread_mutex_lock(&b->lock);
	if (l->ps.n && poll(l->ps.fd, l->ps.n, 0) < 0 && errno != EINTR)
		for (unsigned i = 0; i < l->ps.n; i++)
			l->ps.fd[i].revents = 0;
	b->ops->dispatch(b, &l->ps);
	pthread_mutex_unlock(&b->lock);
	l->after(l->ctx);
	pthread_mutex_lock(&b->lock);
	int timeout = ROUND_MAX;
	l->ps.n = 0;
	b->ops->fill(b, &l->ps, &timeout);
	pthread_mutex_unlock(&b->lock);
	rewatch(l);
	if (timeout < 0 || timeout > ROUND_MAX)
		timeout = ROUND_MAX;
	/* 0 would cancel the timer: a due timer fires in a microsecond. */
	loop_timer_arm(l->timer, timeout ? (uint64_t)timeout * NS_PER_MS : 1000, 0);
}

/* On the loop thread: a round in a microsecond, through the device-class
 * timer (so a kick just before a pause waits for the resume). */
static void round_soon(void *ctx)
{
	struct net_loop *l = ctx;
	loop_timer_arm(l->timer, 1000, 0);
}

static void kick(void *ctx)
{
	struct net_loop *l = ctx;
	loop_post(l->loop, round_soon, l);
}

int net_loop_start(struct net_loop *l, struct loop *loop, struct net_backend *b,
		   void (*after)(void *), void *ctx, char *err, size_t errlen)
{
	*l = (struct net_loop){.b = b, .loop = loop, .after = after, .ctx = ctx};
	l->timer = loop ? loop_timer_new(loop, LOOP_DEVICE, round_fn, l) : NULL;
	if (!l->timer) {
		snprintf(err, errlen, "cannot put the NIC on the VM's event loop: %s",
			 loop ? strerror(errno) : "there is none");
		return -1;
	}
	/* The first round names the fds; nothing is ready yet. */
	pthread_mutex_lock(&b->lock);
	b->kick = kick;
	b->kick_ctx = l;
	int timeout = ROUND_MAX;
	b->ops->fill(b, &l->ps, &timeout);
	pthread_mutex_unlock(&b->lock);
	rewatch(l);
	loop_timer_arm(l->timer, (uint64_t)(timeout > 0 ? timeout : 1) * NS_PER_MS, 0);
	return 0;
}

/* After the loop stopped running (a kick posted now would outlive l). */
void net_loop_stop(struct net_loop *l)
{
	if (!l->b)
		return; /* never started */
	pthread_mutex_lock(&l->b->lock);
	l->b->kick = NULL;
	pthread_mutex_unlock(&l->b->lock);
	for (unsigned w = 0; w < l->nwatch; w++)
		loop_unwatch(l->watch[w]);
	l->nwatch = 0;
	if (l->timer)
		loop_timer_free(l->timer);
	l->timer = NULL;
}
