/* The event loop (util/loop.c) on a thread of its own, driven with real
 * pipes, timerfds and signals: fd callbacks, timers, work posted from other
 * threads, signals, and pausing, which must hold back device work (and only
 * device work) until resumed. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/loop.h"

struct rig {
	struct loop *l;
	pthread_t thread;
};

static void *run(void *arg)
{
	struct rig *r = arg;
	assert_int_equal(loop_run(r->l), 0);
	return NULL;
}

static int setup(void **state)
{
	static struct rig r;
	char err[128];
	r.l = loop_new(err, sizeof(err));
	if (!r.l || pthread_create(&r.thread, NULL, run, &r))
		return -1;
	*state = &r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;
	loop_stop(r->l);
	pthread_join(r->thread, NULL);
	loop_free(r->l);
	return 0;
}

/* Wait up to 2 s for *n to reach want. */
static bool reaches(atomic_int *n, int want)
{
	for (int i = 0; i < 2000 && atomic_load(n) < want; i++)
		usleep(1000);
	return atomic_load(n) >= want;
}

/* Written by the loop thread (maybe again while the test reads), read by the test. */
struct counted {
	atomic_int n;
	atomic_uint ready;
	int fd;		       /* drained on each call, if >= 0 */
	_Atomic(pthread_t) on; /* the thread the last call ran on */
};

static void count_fd(void *ctx, unsigned ready)
{
	struct counted *c = ctx;
	char buf[64];
	if (c->fd >= 0 && read(c->fd, buf, sizeof(buf)) < 0)
		fail();
	c->ready = ready;
	c->on = pthread_self();
	atomic_fetch_add(&c->n, 1);
}

static void count(void *ctx)
{
	struct counted *c = ctx;
	c->on = pthread_self();
	atomic_fetch_add(&c->n, 1);
}

static void fd_callbacks(void **state)
{
	struct rig *r = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct counted in = {.fd = p[0]}, out = {.fd = -1};
	struct loop_watch *wi = loop_watch(r->l, p[0], LOOP_IN, LOOP_DEVICE, count_fd, &in);
	assert_non_null(wi);
	usleep(20 * 1000);
	assert_int_equal(atomic_load(&in.n), 0); /* nothing to read yet */
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_true(reaches(&in.n, 1));
	assert_int_equal(in.ready, LOOP_IN);
	assert_true(pthread_equal(in.on, r->thread));

	/* An empty pipe is writable: LOOP_OUT, until the interest is dropped. */
	struct loop_watch *wo = loop_watch(r->l, p[1], LOOP_OUT, LOOP_DEVICE, count_fd, &out);
	assert_true(reaches(&out.n, 1));
	assert_int_equal(out.ready, LOOP_OUT);
	assert_int_equal(loop_watch_events(wo, 0), 0);
	usleep(20 * 1000);
	int seen = atomic_load(&out.n);
	usleep(20 * 1000);
	assert_int_equal(atomic_load(&out.n), seen);

	/* Unwatched: no more calls, however ready the fd is. */
	loop_unwatch(wi);
	usleep(20 * 1000);
	seen = atomic_load(&in.n);
	assert_int_equal(write(p[1], "y", 1), 1);
	usleep(30 * 1000);
	assert_int_equal(atomic_load(&in.n), seen);
	loop_unwatch(wo);
	close(p[0]);
	close(p[1]);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void timers(void **state)
{
	struct rig *r = *state;
	struct counted once = {0}, tick = {0};
	struct loop_timer *t1 = loop_timer_new(r->l, LOOP_DEVICE, count, &once);
	struct loop_timer *t2 = loop_timer_new(r->l, LOOP_CONTROL, count, &tick);
	assert_non_null(t1);
	assert_non_null(t2);
	uint64_t t0 = now_ns();
	assert_int_equal(loop_timer_arm(t1, 30 * 1000 * 1000, 0), 0);
	assert_true(reaches(&once.n, 1));
	assert_true(now_ns() - t0 >= 30 * 1000 * 1000); /* not early */
	usleep(60 * 1000);
	assert_int_equal(atomic_load(&once.n), 1); /* one-shot */
	assert_true(pthread_equal(once.on, r->thread));

	assert_int_equal(loop_timer_arm(t2, 5 * 1000 * 1000, 5 * 1000 * 1000), 0);
	assert_true(reaches(&tick.n, 4)); /* periodic */
	assert_int_equal(loop_timer_arm(t2, 0, 0), 0);
	usleep(20 * 1000);
	int seen = atomic_load(&tick.n);
	usleep(30 * 1000);
	assert_int_equal(atomic_load(&tick.n), seen); /* cancelled */

	/* Cancelled before it is due: it never fires. */
	assert_int_equal(loop_timer_arm(t1, 20 * 1000 * 1000, 0), 0);
	assert_int_equal(loop_timer_arm(t1, 0, 0), 0);
	usleep(50 * 1000);
	assert_int_equal(atomic_load(&once.n), 1);
	loop_timer_free(t1);
	loop_timer_free(t2);
}

#define POSTERS 4
#define POSTS	500

struct poster {
	struct loop *l;
	struct counted *c;
};

static void *post_many(void *arg)
{
	struct poster *p = arg;
	for (int i = 0; i < POSTS; i++)
		assert_int_equal(loop_post(p->l, count, p->c), 0);
	return NULL;
}

static void posted_from_other_threads(void **state)
{
	struct rig *r = *state;
	struct counted c = {0};
	pthread_t t[POSTERS];
	struct poster p = {r->l, &c};
	for (int i = 0; i < POSTERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, post_many, &p), 0);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(t[i], NULL);
	assert_true(reaches(&c.n, POSTERS * POSTS));
	assert_true(pthread_equal(c.on, r->thread));
	usleep(10 * 1000);
	assert_int_equal(atomic_load(&c.n), POSTERS * POSTS); /* each exactly once */
}

static void pause_holds_back_device_work(void **state)
{
	struct rig *r = *state;
	int dev[2], ctl[2];
	assert_int_equal(pipe(dev), 0);
	assert_int_equal(pipe(ctl), 0);
	struct counted d = {.fd = dev[0]}, c = {.fd = ctl[0]}, dt = {0}, posted = {0};
	struct loop_watch *wd = loop_watch(r->l, dev[0], LOOP_IN, LOOP_DEVICE, count_fd, &d);
	struct loop_watch *wc = loop_watch(r->l, ctl[0], LOOP_IN, LOOP_CONTROL, count_fd, &c);
	struct loop_timer *t = loop_timer_new(r->l, LOOP_DEVICE, count, &dt);
	assert_non_null(wd);
	assert_non_null(wc);
	assert_non_null(t);

	loop_pause(r->l, true);
	assert_int_equal(write(dev[1], "d", 1), 1);
	assert_int_equal(loop_timer_arm(t, 1000 * 1000, 0), 0);
	assert_int_equal(write(ctl[1], "c", 1), 1);
	assert_int_equal(loop_post(r->l, count, &posted), 0);
	/* control work and posted work go on; device work waits */
	assert_true(reaches(&c.n, 1));
	assert_true(reaches(&posted.n, 1));
	usleep(50 * 1000);
	assert_int_equal(atomic_load(&d.n), 0);
	assert_int_equal(atomic_load(&dt.n), 0);
	/* a device watch added while paused waits too */
	int late[2];
	assert_int_equal(pipe(late), 0);
	struct counted l2 = {.fd = late[0]};
	struct loop_watch *wl = loop_watch(r->l, late[0], LOOP_IN, LOOP_DEVICE, count_fd, &l2);
	assert_int_equal(write(late[1], "l", 1), 1);
	usleep(30 * 1000);
	assert_int_equal(atomic_load(&l2.n), 0);

	loop_pause(r->l, false);
	assert_true(reaches(&d.n, 1));
	assert_true(reaches(&dt.n, 1));
	assert_true(reaches(&l2.n, 1));
	loop_unwatch(wd);
	loop_unwatch(wc);
	loop_unwatch(wl);
	loop_timer_free(t);
	close(dev[0]);
	close(dev[1]);
	close(ctl[0]);
	close(ctl[1]);
	close(late[0]);
	close(late[1]);
}

/* A callback that unwatches its neighbour, whose event may be in the same
 * batch: the neighbour is not called and nothing is used after free. */
struct pair {
	struct loop_watch *other;
	atomic_int calls;
};

static void unwatch_other(void *ctx, unsigned ready)
{
	struct pair *p = ctx;
	atomic_fetch_add(&p->calls, 1);
	loop_unwatch(p->other);
	p->other = NULL;
}

static void unwatch_in_callback(void **state)
{
	struct rig *r = *state;
	int a[2], b[2];
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	struct pair pa = {0}, pb = {0};
	/* both ready before either is watched: one batch */
	assert_int_equal(write(a[1], "a", 1), 1);
	assert_int_equal(write(b[1], "b", 1), 1);
	loop_pause(r->l, true);
	struct loop_watch *wa = loop_watch(r->l, a[0], LOOP_IN, LOOP_DEVICE, unwatch_other, &pa);
	struct loop_watch *wb = loop_watch(r->l, b[0], LOOP_IN, LOOP_DEVICE, unwatch_other, &pb);
	pa.other = wb;
	pb.other = wa;
	loop_pause(r->l, false);
	usleep(50 * 1000);
	/* exactly one ran and removed the other; the survivor stays watched */
	assert_true((atomic_load(&pa.calls) == 0) != (atomic_load(&pb.calls) == 0));
	struct pair *ran = atomic_load(&pa.calls) ? &pa : &pb;
	int again = atomic_load(&ran->calls);
	usleep(20 * 1000);
	assert_true(atomic_load(&ran->calls) > again); /* level-triggered: unread data */
	loop_unwatch(ran == &pa ? wa : wb);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

static atomic_int got_sig;

static void on_sig(void *ctx, int sig)
{
	atomic_store(&got_sig, sig);
}

/* A process-directed signal, blocked in every thread as the machine does
 * it, arrives through the loop. */
static void signals(void **state)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the loop thread starts */
	char err[128];
	struct rig r = {.l = loop_new(err, sizeof(err))};
	assert_non_null(r.l);
	const int sigs[] = {SIGUSR1};
	assert_int_equal(loop_signals(r.l, sigs, 1, on_sig, NULL), 0);
	assert_int_equal(pthread_create(&r.thread, NULL, run, &r), 0);
	assert_int_equal(kill(getpid(), SIGUSR1), 0);
	for (int i = 0; i < 2000 && !atomic_load(&got_sig); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&got_sig), SIGUSR1);
	loop_stop(r.l);
	pthread_join(r.thread, NULL);
	loop_free(r.l);
}

static void stop_from_another_thread(void **state)
{
	char err[128];
	struct rig r = {.l = loop_new(err, sizeof(err))};
	assert_non_null(r.l);
	assert_int_equal(pthread_create(&r.thread, NULL, run, &r), 0);
	usleep(10 * 1000);
	loop_stop(r.l);
	pthread_join(r.thread, NULL); /* returns: loop_run ended */
	loop_free(r.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(fd_callbacks, setup, teardown),
	    cmocka_unit_test_setup_teardown(timers, setup, teardown),
	    cmocka_unit_test_setup_teardown(posted_from_other_threads, setup, teardown),
	    cmocka_unit_test_setup_teardown(pause_holds_back_device_work, setup, teardown),
	    cmocka_unit_test_setup_teardown(unwatch_in_callback, setup, teardown),
	    cmocka_unit_test(signals),
	    cmocka_unit_test(stop_from_another_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
