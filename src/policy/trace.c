#include "policy/trace.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "policy/active.h"

#define CONSUMERS (1 + TRACE_MAX_CLIENTS) /* [0]: the audit writer */
#define OUT_BUF	  65536			  /* lines go out in batches of up to this */
#define LINE_MAX_ 512
#define NAP_MS	  1    /* how long a consumer waits before looking at its ring again */
#define LAST_MS	  2000 /* how long a slow client may hold up the VM's end for its last lines */

enum slot_state { SLOT_FREE, SLOT_LIVE, SLOT_ENDED };

struct consumer {
	struct policy_events *e;
	_Atomic unsigned classes; /* trace client: classes it takes; 0 = not attached */
	bool audit;		  /* the audit writer: events a rule acted on */
	struct event_ring *ring;
	char *out;
	size_t pending; /* bytes in out to send before the events */
	int fd;
	/* The ring's one consumer at a time: its thread, or a producer
	 * flushing a stop or pause verdict into the audit log. */
	pthread_mutex_t drain_lock;
	atomic_bool stop;
	uint64_t last_ns;      /* once stopping: when its thread gives up on a slow client */
	enum slot_state state; /* under e->lock */
	pthread_t thread;
};

struct policy_events {
	_Atomic unsigned traced; /* OR of the trace clients' classes */
	pthread_mutex_t lock;	 /* attach, detach, stop */
	bool stopped, audit_started;
	struct consumer c[CONSUMERS];
};

static void nap(void)
{
	poll(NULL, 0, NAP_MS); /* poll, not nanosleep: the jail allows the one (seccomp.c) */
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether the VM is ending and c's client had its LAST_MS to take its lines. */
static bool too_late(struct consumer *c)
{
	if (!atomic_load(&c->stop))
		return false;
	if (!c->last_ns)
		c->last_ns = now_ns() + LAST_MS * 1000000ull;
	return now_ns() > c->last_ns;
}

/* Write n bytes to c's sink; -1 if a trace client is gone, or once the VM
 * ends will not take them within LAST_MS. An audit file that fails (disk
 * full) loses lines: the guest goes on. */
static int emit(struct consumer *c, const char *p, size_t n)
{
	while (n) {
		ssize_t w =
		    c->audit ? write(c->fd, p, n) : send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (c->audit) {
			return 0;
		} else if (w < 0 && errno == EAGAIN && !too_late(c)) {
			struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
			poll(&pf, 1, 50); /* a slow client: its ring fills and drops, not ours */
		} else {
			return -1;
		}
	}
	return 0;
}

/* Write out what c's ring holds (at most one ring's worth, so a flood cannot
 * keep it here), then how many events it lost; -1 if its client is gone. A
 * future event loop can call this instead of the consumer's thread. */
static int drain(struct consumer *c)
{
	pthread_mutex_lock(&c->drain_lock);
	struct policy_event ev;
	size_t n = c->pending;
	int rc = 0;
	c->pending = 0;
	for (int i = 0; rc == 0 && i < 1 << TRACE_RING_ORDER && ring_pop(c->ring, &ev); i++) {
		if (n + LINE_MAX_ > OUT_BUF) {
			rc = emit(c, c->out, n);
			n = 0;
		}
		n += policy_event_json(&ev, c->out + n, OUT_BUF - n);
	}
	uint64_t lost = ring_take_dropped(c->ring);
	if (lost)
		n += policy_drop_json(lost, c->out + n, OUT_BUF - n);
	if (rc == 0 && n)
		rc = emit(c, c->out, n);
	pthread_mutex_unlock(&c->drain_lock);
	return rc;
}

static void consumer_free(struct consumer *c)
{
	ring_destroy(c->ring);
	free(c->out);
	c->ring = NULL;
	c->out = NULL;
}

static int consumer_init(struct consumer *c, struct policy_events *e, int fd)
{
	c->e = e;
	c->fd = fd;
	c->ring = ring_create(TRACE_RING_ORDER);
	c->out = malloc(OUT_BUF);
	atomic_store(&c->stop, false);
	c->last_ns = 0;
	if (c->ring && c->out)
		return 0;
	consumer_free(c);
	return -1;
}

struct policy_events *policy_events_create(int audit_fd)
{
	struct policy_events *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	pthread_mutex_init(&e->lock, NULL);
	for (int i = 0; i < CONSUMERS; i++) {
		e->c[i].fd = -1;
		pthread_mutex_init(&e->c[i].drain_lock, NULL);
	}
	e->c[0].audit = true;
	if (audit_fd >= 0 && consumer_init(&e->c[0], e, audit_fd)) {
		policy_events_destroy(e);
		return NULL;
	}
	return e;
}

static void *audit_writer(void *arg)
{
	struct consumer *c = arg;
	while (!atomic_load(&c->stop)) {
		drain(c);
		nap();
	}
	drain(c); /* what the last vCPU exits produced */
	return NULL;
}

int policy_events_start(struct policy_events *e)
{
	struct consumer *a = &e->c[0];
	if (!a->ring)
		return 0;
	if (pthread_create(&a->thread, NULL, audit_writer, a))
		return -1;
	e->audit_started = true;
	return 0;
}

unsigned policy_events_traced(const struct policy_events *e)
{
	return e ? atomic_load_explicit(&e->traced, memory_order_relaxed) : 0;
}

/* Under e->lock. */
static void update_traced(struct policy_events *e)
{
	unsigned t = 0;
	for (int i = 1; i < CONSUMERS; i++)
		t |= atomic_load(&e->c[i].classes);
	atomic_store(&e->traced, t);
}

/* A trace client leaves: no producer may use its ring any more. */
static void detach(struct consumer *c)
{
	struct policy_events *e = c->e;
	pthread_mutex_lock(&e->lock);
	atomic_store(&c->classes, 0);
	update_traced(e);
	pthread_mutex_unlock(&e->lock);
	policy_synchronize(); /* producers push from inside policy_enter */
	close(c->fd);
	c->fd = -1;
	consumer_free(c);
	pthread_mutex_lock(&e->lock);
	c->state = SLOT_ENDED;
	pthread_mutex_unlock(&e->lock);
}

static void *trace_client(void *arg)
{
	struct consumer *c = arg;
	struct pollfd pf = {.fd = c->fd, .events = POLLIN};
	for (;;) {
		bool ending = atomic_load(&c->stop);
		if (drain(c) < 0 || ending)
			break;
		if (poll(&pf, 1, NAP_MS) > 0) { /* the client sends nothing: this is its hang-up */
			char junk[256];
			ssize_t r = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				break;
		}
	}
	detach(c);
	return NULL;
}

int policy_trace_attach(struct policy_events *e, int fd, unsigned classes, const char *first,
			char *err, size_t errlen)
{
	pthread_mutex_lock(&e->lock);
	struct consumer *c = NULL;
	for (int i = 1; i < CONSUMERS; i++) {
		if (e->c[i].state == SLOT_ENDED) {
			pthread_join(e->c[i].thread, NULL);
			e->c[i].state = SLOT_FREE;
		}
		if (!c && e->c[i].state == SLOT_FREE)
			c = &e->c[i];
	}
	const char *why = e->stopped		    ? "the VM is ending"
			  : !c			    ? "too many trace clients (at most 8 at once)"
			  : consumer_init(c, e, fd) ? "out of memory"
						    : NULL;
	if (!why) {
		/* Before any event: the client reads its answer first. */
		snprintf(c->out, OUT_BUF, "%s\n", first);
		c->pending = strlen(c->out);
		atomic_store_explicit(&c->classes, classes, memory_order_release);
		if (pthread_create(&c->thread, NULL, trace_client, c)) {
			atomic_store(&c->classes, 0);
			consumer_free(c);
			why = "cannot start the trace thread";
		} else {
			c->state = SLOT_LIVE;
			update_traced(e);
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (why) {
		close(fd);
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}

void policy_events_stop(struct policy_events *e)
{
	pthread_t threads[CONSUMERS];
	int n = 0;
	pthread_mutex_lock(&e->lock);
	e->stopped = true;
	for (int i = 1; i < CONSUMERS; i++)
		if (e->c[i].state != SLOT_FREE) {
			atomic_store(&e->c[i].stop, true);
			threads[n++] = e->c[i].thread;
		}
	pthread_mutex_unlock(&e->lock);
	struct consumer *a = &e->c[0];
	atomic_store(&a->stop, true);
	if (e->audit_started)
		pthread_join(a->thread, NULL);
	else if (a->ring)
		drain(a);
	e->audit_started = false;
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_lock(&e->lock);
	for (int i = 1; i < CONSUMERS; i++)
		e->c[i].state = SLOT_FREE; /* joined: a second stop has nothing to do */
	pthread_mutex_unlock(&e->lock);
}

void policy_events_destroy(struct policy_events *e)
{
	if (!e)
		return;
	policy_events_stop(e);
	struct consumer *a = &e->c[0];
	consumer_free(a); /* not the audit file: it belongs to the configuration */
	for (int i = 0; i < CONSUMERS; i++)
		pthread_mutex_destroy(&e->c[i].drain_lock);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void policy_events_put(struct policy_events *e, const struct policy_event *ev, bool flush)
{
	struct consumer *a = &e->c[0];
	if (ev->rule && a->ring) {
		if (flush) {
			while (!ring_push(a->ring, ev))
				drain(a);
			drain(a);
		} else if (!ring_push(a->ring, ev)) {
			ring_drop(a->ring);
		}
	}
	if (!(policy_events_traced(e) & (1u << ev->cls)))
		return;
	for (int i = 1; i < CONSUMERS; i++) {
		struct consumer *c = &e->c[i];
		if ((atomic_load_explicit(&c->classes, memory_order_acquire) & (1u << ev->cls)) &&
		    !ring_push(c->ring, ev))
			ring_drop(c->ring);
	}
}
