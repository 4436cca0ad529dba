/* An epoll event loop: fds, timers, signals and work posted from other
 * threads, all run on the one thread that calls loop_run. Watches belong to a
 * class; device watches are suspended while the loop is paused, so a paused
 * VM sees no device activity (no queue work, no interrupt) whatever the
 * device does. Machine-free: the VM's loop is one user among the tests. */
#ifndef POPEK_UTIL_LOOP_H
#define POPEK_UTIL_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_watch;
struct loop_timer;

/* Interest and readiness. HUP and errors are reported as LOOP_IN. */
#define LOOP_IN	 1u
#define LOOP_OUT 2u

enum loop_class {
	LOOP_DEVICE,  /* guest-visible work: suspended while paused */
	LOOP_CONTROL, /* the control socket, signals: always served */
};

typedef void (*loop_fd_fn)(void *ctx, unsigned ready);
typedef void (*loop_fn)(void *ctx);

struct loop *loop_new(char *err, size_t errlen);
/* After loop_run returned (or was never called); frees what is left. */
void loop_free(struct loop *l);

/* Run callbacks on this thread until loop_stop. Returns 0, or -1 if epoll failed. */
int loop_run(struct loop *l);
/* From any thread: loop_run returns after the callback running now. */
void loop_stop(struct loop *l);

/* Watch fd for events (LOOP_IN/LOOP_OUT; 0 watches nothing for now). fn runs
 * on the loop thread. NULL if out of memory or fd cannot be watched. The
 * watch calls below are safe from any thread; once loop_unwatch returns, fn
 * is not running and never runs again (from another thread it waits for a
 * call under way: do not hold what fn takes). */
struct loop_watch *loop_watch(struct loop *l, int fd, unsigned events, enum loop_class cls,
			      loop_fd_fn fn, void *ctx);
int loop_watch_events(struct loop_watch *w, unsigned events);
void loop_unwatch(struct loop_watch *w);

/* A timer (one timerfd) whose fn runs on the loop thread; device timers wait
 * out a pause and then fire once for all the expirations they missed. */
struct loop_timer *loop_timer_new(struct loop *l, enum loop_class cls, loop_fn fn, void *ctx);
/* First expiry after first_ns, then every period_ns (0: one-shot). first_ns 0 cancels. */
int loop_timer_arm(struct loop_timer *t, uint64_t first_ns, uint64_t period_ns);
void loop_timer_free(struct loop_timer *t);

/* From any thread: run fn(ctx) on the loop thread soon (also while paused).
 * 0, or -1 if out of memory. */
int loop_post(struct loop *l, loop_fn fn, void *ctx);

/* Deliver signals sigs[0..n) to fn on the loop thread (a signalfd). The
 * caller blocks them in every thread (before starting any). 0 or -1. */
int loop_signals(struct loop *l, const int *sigs, unsigned n, void (*fn)(void *ctx, int sig),
		 void *ctx);

/* From any thread: suspend or resume every device watch and timer. When
 * pausing returns, no device callback runs, on any thread. */
void loop_pause(struct loop *l, bool paused);

#endif
