/* Console input on the VM's loop (src/machine/console.c): stdin (a pipe put
 * in its place) reaches the device in order, what the device has no room for
 * is offered again, and a paused loop delivers nothing, not even a retry,
 * until it resumes. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "machine/console.h"
#include "util/loop.h"

/* A device that takes at most room bytes until the test makes more. */
struct device {
	pthread_mutex_t lock;
	char got[256];
	size_t n, room;
};

static size_t take(void *ctx, const uint8_t *buf, size_t len)
{
	struct device *d = ctx;
	pthread_mutex_lock(&d->lock);
	size_t k = len < d->room ? len : d->room;
	memcpy(d->got + d->n, buf, k);
	d->n += k;
	d->room -= k;
	pthread_mutex_unlock(&d->lock);
	return k;
}

static void never_quit(void *ctx)
{
	fail();
}

static size_t received(struct device *d, char *out)
{
	pthread_mutex_lock(&d->lock);
	size_t n = d->n;
	memcpy(out, d->got, n);
	out[n] = 0;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* Wait up to 2 s for the device to hold want. */
static bool holds(struct device *d, const char *want)
{
	char buf[257];
	for (int i = 0; i < 2000; i++) {
		if (received(d, buf) == strlen(want) && !strcmp(buf, want))
			return true;
		usleep(1000);
	}
	return false;
}

static void set_room(struct device *d, size_t n)
{
	pthread_mutex_lock(&d->lock);
	d->room = n;
	pthread_mutex_unlock(&d->lock);
}

static void *run(void *l)
{
	loop_run(l);
	return NULL;
}

static void input_is_held_while_paused(void **state)
{
	char err[128];
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved_stdin = dup(STDIN_FILENO);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	struct vm_config cfg;
	vm_config_defaults(&cfg);
	struct console *c = console_open(&cfg, err, sizeof(err));
	struct loop *l = loop_new(err, sizeof(err));
	assert_non_null(c);
	assert_non_null(l);
	struct device d = {.lock = PTHREAD_MUTEX_INITIALIZER, .room = 4};
	assert_int_equal(console_start_input(c, l, take, &d, never_quit, NULL), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, run, l), 0);

	/* what fits arrives; the rest waits for room and follows in order */
	assert_int_equal(write(p[1], "abcdef", 6), 6);
	assert_true(holds(&d, "abcd"));
	set_room(&d, 100);
	assert_true(holds(&d, "abcdef"));

	/* paused: new input waits in stdin */
	loop_pause(l, true);
	assert_int_equal(write(p[1], "xy", 2), 2);
	usleep(50 * 1000);
	char buf[257];
	assert_int_equal(received(&d, buf), 6);
	loop_pause(l, false);
	assert_true(holds(&d, "abcdefxy"));

	/* paused: no retry of what did not fit either */
	set_room(&d, 0);
	assert_int_equal(write(p[1], "gh", 2), 2);
	usleep(20 * 1000); /* "gh" is read, and waits for room */
	loop_pause(l, true);
	set_room(&d, 100);
	assert_int_equal(write(p[1], "ij", 2), 2);
	usleep(100 * 1000); /* many retry periods */
	assert_int_equal(received(&d, buf), 8);
	loop_pause(l, false);
	assert_true(holds(&d, "abcdefxyghij"));

	loop_stop(l);
	pthread_join(t, NULL);
	console_close(c);
	loop_free(l);
	dup2(saved_stdin, STDIN_FILENO);
	close(saved_stdin);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(input_is_held_while_paused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
