#include "policy/active.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/trace.h"

struct policy_active {
	_Atomic(struct policy *) cur;
	_Atomic unsigned classes; /* cur's, stored after cur: see policy_active_watched */
	pthread_mutex_t lock;	  /* one replacement at a time */
	struct policy_events *events;
};

/* Reader slots, one per thread that ever interposed (claimed on first use,
 * given back when the thread ends). Process-wide: a grace period waits for
 * all of them, whichever policy they hold. */
#define READERS 256

struct reader {
	_Alignas(64) _Atomic uint64_t seq; /* odd: inside policy_enter */
	atomic_bool used;
};

static struct reader readers[READERS];
static _Thread_local struct reader *self;
static _Thread_local unsigned depth;
static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;

static void give_back(void *r)
{
	atomic_store_explicit(&((struct reader *)r)->used, false, memory_order_release);
}

static void make_key(void)
{
	pthread_key_create(&reader_key, give_back);
}

static struct reader *claim(void)
{
	pthread_once(&reader_once, make_key);
	for (;;) {
		for (int i = 0; i < READERS; i++) {
			bool free_slot = false;
			if (atomic_compare_exchange_strong(&readers[i].used, &free_slot, true)) {
				pthread_setspecific(reader_key, &readers[i]);
				return &readers[i];
			}
		}
		sched_yield(); /* more live threads than slots: wait for one to end */
	}
}

const struct policy *policy_enter(struct policy_active *a)
{
	if (!self)
		self = claim();
	/* seq_cst on both sides (here and in policy_synchronize): either this
	 * load sees the new pointer or the replacer sees this slot odd. */
	if (depth++ == 0)
		atomic_fetch_add_explicit(&self->seq, 1, memory_order_seq_cst);
	return atomic_load_explicit(&a->cur, memory_order_seq_cst);
}

unsigned policy_active_watched(const struct policy_active *a)
{
	return atomic_load_explicit(&a->classes, memory_order_acquire) |
	       policy_events_traced(a->events);
}

void policy_leave(void)
{
	/* Only this thread writes its slot: a store, not a locked add. */
	if (--depth == 0)
		atomic_store_explicit(&self->seq,
				      atomic_load_explicit(&self->seq, memory_order_relaxed) + 1,
				      memory_order_release);
}

void policy_synchronize(void)
{
	for (int i = 0; i < READERS; i++) {
		uint64_t s = atomic_load_explicit(&readers[i].seq, memory_order_seq_cst);
		if (!(s & 1))
			continue;
		/* An action is short, but its thread may be preempted in it. */
		for (int spins = 0;
		     atomic_load_explicit(&readers[i].seq, memory_order_acquire) == s; spins++) {
			if (spins < 100)
				sched_yield();
			else
				poll(NULL, 0, 1);
		}
	}
}

struct policy_active *policy_active_create(const struct policy *initial, struct policy_events *ev)
{
	struct policy_active *a = calloc(1, sizeof(*a));
	struct policy *p = calloc(1, sizeof(*p));
	if (!a || !p) {
		free(p);
		free(a);
		return NULL;
	}
	if (initial)
		*p = *initial;
	else
		p->audit_fd = -1;
	p->events = ev;
	atomic_init(&a->cur, p);
	atomic_init(&a->classes, p->classes);
	pthread_mutex_init(&a->lock, NULL);
	a->events = ev;
	return a;
}

void policy_active_destroy(struct policy_active *a)
{
	if (!a)
		return;
	policy_free(atomic_load(&a->cur));
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void policy_replace(struct policy_active *a, struct policy *p)
{
	pthread_mutex_lock(&a->lock);
	struct policy *old = atomic_load_explicit(&a->cur, memory_order_relaxed);
	p->events = a->events;
	p->audit_fd = old->audit_fd; /* the direct audit log, when there is no event ring */
	atomic_store_explicit(&a->cur, p, memory_order_seq_cst);
	atomic_store_explicit(&a->classes, p->classes, memory_order_seq_cst);
	policy_synchronize();
	policy_free(old);
	pthread_mutex_unlock(&a->lock);
}

char *policy_active_text(struct policy_active *a)
{
	pthread_mutex_lock(&a->lock);
	char *t = policy_format(atomic_load_explicit(&a->cur, memory_order_relaxed));
	pthread_mutex_unlock(&a->lock);
	return t;
}
