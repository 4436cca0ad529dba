#include "util/loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define BATCH 32

struct loop_watch {
	struct loop *l;
	int fd;
	unsigned events;
	enum loop_class cls;
	bool in_epoll, dead;
	loop_fd_fn fn;
	void *ctx;
	struct loop_watch *prev, *next; /* l->watches, or l->dead once unwatched */
};

struct loop_timer {
	struct loop_watch *w;
	int fd;
	loop_fn fn;
	void *ctx;
};

struct post {
	loop_fn fn;
	void *ctx;
	struct post *next;
};

struct loop {
	int epfd;
	int wake_fd; /* eventfd: posted work, stop */
	int sig_fd;
	void (*sig_fn)(void *ctx, int sig);
	void *sig_ctx;
	atomic_bool stop, running;
	pthread_t thread;
	/* Held by the loop thread around every device callback: a pause from
	 * another thread waits for the one under way. */
	pthread_mutex_t dispatch;
	pthread_mutex_t lock;	    /* everything below and every watch's fields */
	pthread_cond_t done;	    /* current went back to NULL */
	struct loop_watch *current; /* whose callback runs now */
	bool paused;
	struct loop_watch *watches, *dead;
	struct post *posts, **posts_tail;
	struct loop_watch *wake_w, *sig_w;
};

static bool on_loop_thread(struct loop *l)
{
	return atomic_load(&l->running) && pthread_equal(pthread_self(), l->thread);
}

static void list_remove(struct loop_watch **head, struct loop_watch *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		*head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

static void list_push(struct loop_watch **head, struct loop_watch *w)
{
	w->prev = NULL;
	w->next = *head;
	if (*head)
		(*head)->prev = w;
	*head = w;
}

/* Put the kernel's view in line with what the watch wants now. A suspended
 * or idle fd is removed rather than given no interest: epoll reports a hang-up
 * (stdin at EOF) whatever the interest, which would spin a paused loop.
 * Called with l->lock held. */
static int sync_epoll(struct loop_watch *w)
{
	struct loop *l = w->l;
	bool want = !w->dead && w->events && !(w->cls == LOOP_DEVICE && l->paused);
	struct epoll_event ev = {.data.ptr = w};
	ev.events = (w->events & LOOP_IN ? EPOLLIN : 0) | (w->events & LOOP_OUT ? EPOLLOUT : 0);
	int rc = 0;
	if (want)
		rc = epoll_ctl(l->epfd, w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ev);
	else if (w->in_epoll)
		rc = epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	if (rc == 0)
		w->in_epoll = want;
	return rc;
}

struct loop_watch *loop_watch(struct loop *l, int fd, unsigned events, enum loop_class cls,
			      loop_fd_fn fn, void *ctx)
{
	struct loop_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	*w = (struct loop_watch){
	    .l = l, .fd = fd, .events = events, .cls = cls, .fn = fn, .ctx = ctx};
	pthread_mutex_lock(&l->lock);
	if (sync_epoll(w) < 0) {
		pthread_mutex_unlock(&l->lock);
		free(w);
		return NULL;
	}
	list_push(&l->watches, w);
	pthread_mutex_unlock(&l->lock);
	return w;
}

int loop_watch_events(struct loop_watch *w, unsigned events)
{
	pthread_mutex_lock(&w->l->lock);
	w->events = events;
	int rc = sync_epoll(w);
	pthread_mutex_unlock(&w->l->lock);
	return rc;
}

void loop_unwatch(struct loop_watch *w)
{
	if (!w)
		return;
	struct loop *l = w->l;
	pthread_mutex_lock(&l->lock);
	/* From another thread: let a call under way finish, so that none is
	 * running or will run once we return. */
	while (l->current == w && !on_loop_thread(l))
		pthread_cond_wait(&l->done, &l->lock);
	w->dead = true;
	sync_epoll(w);
	list_remove(&l->watches, w);
	/* Freed only at the top of the next iteration: the batch being
	 * dispatched may still hold events for it. */
	list_push(&l->dead, w);
	pthread_mutex_unlock(&l->lock);
}

static void free_dead(struct loop *l)
{
	pthread_mutex_lock(&l->lock);
	struct loop_watch *d = l->dead;
	l->dead = NULL;
	pthread_mutex_unlock(&l->lock);
	while (d) {
		struct loop_watch *next = d->next;
		free(d);
		d = next;
	}
}

static void timer_fired(void *ctx, unsigned ready)
{
	struct loop_timer *t = ctx;
	uint64_t n;
	if (read(t->fd, &n, sizeof(n)) == sizeof(n))
		t->fn(t->ctx);
}

struct loop_timer *loop_timer_new(struct loop *l, enum loop_class cls, loop_fn fn, void *ctx)
{
	struct loop_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->fn = fn;
	t->ctx = ctx;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd >= 0 && (t->w = loop_watch(l, t->fd, LOOP_IN, cls, timer_fired, t)))
		return t;
	if (t->fd >= 0)
		close(t->fd);
	free(t);
	return NULL;
}

static struct timespec ts_of(uint64_t ns)
{
	return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

int loop_timer_arm(struct loop_timer *t, uint64_t first_ns, uint64_t period_ns)
{
	/* Setting the timer also forgets expiries not yet read: a cancelled
	 * timer does not fire late. */
	struct itimerspec it = {.it_interval = ts_of(period_ns), .it_value = ts_of(first_ns)};
	return timerfd_settime(t->fd, 0, &it, NULL);
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return;
	loop_unwatch(t->w);
	close(t->fd);
	free(t);
}

int loop_post(struct loop *l, loop_fn fn, void *ctx)
{
	struct post *p = malloc(sizeof(*p));
	if (!p)
		return -1;
	*p = (struct post){fn, ctx, NULL};
	pthread_mutex_lock(&l->lock);
	*l->posts_tail = p;
	l->posts_tail = &p->next;
	pthread_mutex_unlock(&l->lock);
	uint64_t one = 1;
	return write(l->wake_fd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}

static void woken(void *ctx, unsigned ready)
{
	struct loop *l = ctx;
	uint64_t n;
	if (read(l->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&l->lock);
	struct post *p = l->posts;
	l->posts = NULL;
	l->posts_tail = &l->posts;
	pthread_mutex_unlock(&l->lock);
	while (p) {
		struct post *next = p->next;
		p->fn(p->ctx);
		free(p);
		p = next;
	}
}

void loop_stop(struct loop *l)
{
	atomic_store(&l->stop, true);
	uint64_t one = 1;
	if (write(l->wake_fd, &one, sizeof(one)) < 0)
		perror("popek: loop");
}

static void signalled(void *ctx, unsigned ready)
{
	struct loop *l = ctx;
	struct signalfd_siginfo si;
	while (read(l->sig_fd, &si, sizeof(si)) == sizeof(si))
		l->sig_fn(l->sig_ctx, (int)si.ssi_signo);
}

int loop_signals(struct loop *l, const int *sigs, unsigned n, void (*fn)(void *ctx, int sig),
		 void *ctx)
{
	if (l->sig_fd >= 0)
		return -1;
	sigset_t set;
	sigemptyset(&set);
	for (unsigned i = 0; i < n; i++)
		sigaddset(&set, sigs[i]);
	l->sig_fn = fn;
	l->sig_ctx = ctx;
	l->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sig_fd < 0)
		return -1;
	l->sig_w = loop_watch(l, l->sig_fd, LOOP_IN, LOOP_CONTROL, signalled, l);
	return l->sig_w ? 0 : -1;
}

void loop_pause(struct loop *l, bool paused)
{
	/* On the loop thread no other callback can be under way. */
	bool self = on_loop_thread(l);
	if (!self)
		pthread_mutex_lock(&l->dispatch);
	pthread_mutex_lock(&l->lock);
	l->paused = paused;
	for (struct loop_watch *w = l->watches; w; w = w->next)
		if (w->cls == LOOP_DEVICE)
			sync_epoll(w);
	pthread_mutex_unlock(&l->lock);
	if (!self)
		pthread_mutex_unlock(&l->dispatch);
}

/* One event: skipped if its watch went away or was suspended after the
 * kernel reported it (the fd stays ready; the event comes back). */
static void dispatch(struct loop *l, struct loop_watch *w, uint32_t ev)
{
	unsigned ready =
	    (ev & (EPOLLIN | EPOLLHUP | EPOLLERR) ? LOOP_IN : 0) | (ev & EPOLLOUT ? LOOP_OUT : 0);
	bool device = w->cls == LOOP_DEVICE; /* constant for the watch's life */
	if (device)
		pthread_mutex_lock(&l->dispatch);
	pthread_mutex_lock(&l->lock);
	bool live = !w->dead && w->in_epoll;
	if (live)
		l->current = w;
	pthread_mutex_unlock(&l->lock);
	if (live) {
		w->fn(w->ctx, ready);
		pthread_mutex_lock(&l->lock);
		l->current = NULL;
		pthread_cond_broadcast(&l->done);
		pthread_mutex_unlock(&l->lock);
	}
	if (device)
		pthread_mutex_unlock(&l->dispatch);
}

int loop_run(struct loop *l)
{
	l->thread = pthread_self();
	atomic_store(&l->running, true);
	int rc = 0;
	while (!atomic_load(&l->stop)) {
		free_dead(l);
		struct epoll_event ev[BATCH];
		int n = epoll_wait(l->epfd, ev, BATCH, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -1;
			break;
		}
		for (int i = 0; i < n && !atomic_load(&l->stop); i++)
			dispatch(l, ev[i].data.ptr, ev[i].events);
	}
	atomic_store(&l->running, false);
	return rc;
}

struct loop *loop_new(char *err, size_t errlen)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory creating the event loop");
		return NULL;
	}
	l->sig_fd = -1;
	l->posts_tail = &l->posts;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->dispatch, NULL);
	pthread_cond_init(&l->done, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd >= 0 && l->wake_fd >= 0 &&
	    (l->wake_w = loop_watch(l, l->wake_fd, LOOP_IN, LOOP_CONTROL, woken, l)))
		return l;
	snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
	loop_free(l);
	return NULL;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	loop_unwatch(l->wake_w);
	loop_unwatch(l->sig_w);
	/* Watches their owners left behind: nothing can run them any more. */
	while (l->watches)
		loop_unwatch(l->watches);
	free_dead(l);
	for (struct post *p = l->posts, *next; p; p = next) {
		next = p->next;
		free(p);
	}
	if (l->sig_fd >= 0)
		close(l->sig_fd);
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	if (l->epfd >= 0)
		close(l->epfd);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->dispatch);
	pthread_cond_destroy(&l->done);
	free(l);
}
