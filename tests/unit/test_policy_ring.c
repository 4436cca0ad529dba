/* The event ring (many producers, one consumer, drops counted), the live
 * policy swap (no reader sees half of two policies or a freed one: ASan and
 * TSan watch), and the consumers: the audit writer and a trace client on a
 * socket that stops reading. Also run under TSan (35-tsan.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/active.h"
#include "policy/policy.h"
#include "policy/ring.h"
#include "policy/trace.h"

static struct policy_event event(int vcpu, uint64_t seq, int rule, enum policy_class c)
{
	return (struct policy_event){.ns = 1,
				     .addr = 0x70,
				     .value = seq,
				     .vcpu = vcpu,
				     .rule = rule,
				     .cls = (uint8_t)c,
				     .op = POLICY_READ,
				     .size = 1};
}

static void test_ring_order_and_full(void **state)
{
	struct event_ring *r = ring_create(3);
	struct policy_event e, got;
	assert_non_null(r);
	for (int round = 0; round < 5; round++) { /* wraps around several times */
		for (uint64_t i = 0; i < 8; i++) {
			e = event(0, i, 0, POLICY_PIO);
			assert_true(ring_push(r, &e));
		}
		assert_false(ring_push(r, &e)); /* full: the producer is told, not blocked */
		for (uint64_t i = 0; i < 8; i++) {
			assert_true(ring_pop(r, &got));
			assert_int_equal(got.value, i);
		}
		assert_false(ring_pop(r, &got));
	}
	ring_drop(r);
	ring_drop(r);
	assert_int_equal(ring_take_dropped(r), 2);
	assert_int_equal(ring_take_dropped(r), 0);
	assert_null(ring_create(0));
	assert_null(ring_create(21));
	ring_destroy(r);
}

#define PRODUCERS    4
#define PER_PRODUCER 40000

static struct event_ring *shared;
static atomic_int producing;

static void *producer(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		struct policy_event e = event(id, i, 0, POLICY_PIO);
		if (!ring_push(shared, &e))
			ring_drop(shared);
	}
	atomic_fetch_sub(&producing, 1);
	return NULL;
}

/* Every event arrives once, in its producer's order, or is counted dropped. */
static void test_ring_many_producers(void **state)
{
	shared = ring_create(8);
	atomic_store(&producing, PRODUCERS);
	pthread_t t[PRODUCERS];
	for (intptr_t i = 0; i < PRODUCERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, producer, (void *)i), 0);
	int64_t next[PRODUCERS] = {0};
	uint64_t popped = 0;
	struct policy_event e;
	for (;;) {
		bool done = atomic_load(&producing) == 0;
		while (ring_pop(shared, &e)) {
			assert_in_range(e.vcpu, 0, PRODUCERS - 1);
			assert_true((int64_t)e.value >= next[e.vcpu]);
			next[e.vcpu] = (int64_t)e.value + 1;
			popped++;
		}
		if (done)
			break;
		sched_yield();
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	while (ring_pop(shared, &e))
		popped++;
	uint64_t dropped = ring_take_dropped(shared);
	assert_int_equal(popped + dropped, PRODUCERS * PER_PRODUCER);
	assert_true(popped > 0);
	ring_destroy(shared);
}

/* A policy whose every rule carries its generation: a reader that saw rules
 * of two generations would have seen half of two policies. */
#define RULES 64

static struct policy *generation(uint64_t g)
{
	struct policy *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->n = RULES;
	p->audit_fd = -1;
	for (int i = 0; i < RULES; i++)
		p->rule[i] = (struct policy_rule){.action = POLICY_LOG, .value = g, .line = i + 1};
	return p;
}

static struct policy_active *live;
static atomic_bool readers_stop;
static atomic_ulong reads;

static void *reader(void *arg)
{
	uint64_t last = 0;
	while (!atomic_load(&readers_stop)) {
		const struct policy *p = policy_enter(live);
		const struct policy *again = policy_enter(live); /* nested: same slot */
		uint64_t g = p->n ? p->rule[0].value : 0;
		for (int i = 0; i < p->n; i++)
			assert_int_equal(p->rule[i].value, g);
		assert_true(g >= last); /* never back to an older policy */
		last = g;
		assert_true(again->n == 0 || again->rule[0].value >= g);
		policy_leave();
		policy_leave();
		atomic_fetch_add(&reads, 1);
	}
	return NULL;
}

static void test_live_replace(void **state)
{
	live = policy_active_create(NULL, NULL);
	assert_non_null(live);
	char *t = policy_active_text(live);
	assert_string_equal(t, "");
	free(t);
	atomic_store(&readers_stop, false);
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, NULL), 0);
	/* Readers already reading: on a loaded host they may start late, and
	 * the replacements must overlap their reads to test anything. */
	while (atomic_load(&reads) < 2)
		sched_yield();
	for (uint64_t g = 1; g <= 200; g++) {
		policy_replace(live, generation(g));
		if (g % 50 == 0)
			sched_yield();
	}
	atomic_store(&readers_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&reads) > 0);
	t = policy_active_text(live); /* the rules in canonical form */
	assert_non_null(strstr(t, "log pio"));
	free(t);
	const struct policy *p = policy_enter(live);
	assert_int_equal(p->rule[RULES - 1].value, 200);
	policy_leave();
	policy_active_destroy(live);
}

static const char *read_fd(int fd)
{
	static char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	size_t w = strlen(what);
	/* by hand: sanitized strstr and memmem check the whole rest each call */
	for (; *s; s++)
		n += *s == *what && !strncmp(s, what, w);
	return n;
}

/* The audit writer takes only what a rule acted on; a stop or pause verdict
 * is in the file when the producer returns, before the VM reports it. */
static void test_audit_consumer(void **state)
{
	int fd = memfd_create("audit", 0);
	struct policy_events *e = policy_events_create(fd);
	assert_non_null(e);
	struct policy_event ev = event(0, 13, 2, POLICY_PIO);
	ev.verdict = POLICY_LOG;
	policy_events_put(e, &ev, false);
	ev = event(0, 14, 0, POLICY_PIO); /* traced only: not audited */
	policy_events_put(e, &ev, false);
	ev = event(1, 15, 3, POLICY_HYPERCALL);
	ev.verdict = POLICY_STOP;
	policy_events_put(e, &ev, true);
	const char *log = read_fd(fd);
	assert_int_equal(count(log, "\n"), 2); /* flushed, with what came before it */
	assert_non_null(
	    strstr(log, "\"port\":112,\"size\":1,\"value\":13,\"verdict\":\"log\",\"rule\":2}"));
	assert_non_null(
	    strstr(log, "\"nr\":112,\"size\":1,\"value\":15,\"verdict\":\"stop\",\"rule\":3}"));
	assert_int_equal(policy_events_start(e), 0);
	ev = event(0, 16, 4, POLICY_MMIO);
	policy_events_put(e, &ev, false);
	policy_events_stop(e); /* the writer thread's last drain */
	assert_int_equal(count(read_fd(fd), "\n"), 3);
	policy_events_destroy(e);
	close(fd);
}

/* A producer, as interpose() is: inside policy_enter. */
static void put(struct policy_events *e, const struct policy_event *ev)
{
	struct policy_active *a = policy_active_create(NULL, e);
	assert_non_null(a);
	policy_enter(a);
	policy_events_put(e, ev, false);
	policy_leave();
	policy_active_destroy(a);
}

/* Read lines from fd until one contains want or 10 s pass; the text read. */
static char *read_until(int fd, const char *want, size_t *len)
{
	size_t cap = 1 << 25, n = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	for (int waited = 0; waited < 10000;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10) <= 0) {
			waited += 10;
			continue;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r <= 0)
			break;
		size_t from = n > strlen(want) ? n - strlen(want) : 0; /* only what is new */
		n += (size_t)r;
		buf[n] = 0;
		if (strstr(buf + from, want))
			break;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static void wait_traced(struct policy_events *e, unsigned want)
{
	for (int i = 0; i < 1000 && policy_events_traced(e) != want; i++)
		usleep(1000);
	assert_int_equal(policy_events_traced(e), want);
}

/* A trace client gets its answer first, then only its classes; one that
 * stops reading loses events (counted, reported) and never blocks the
 * producer; when it hangs up its classes are no longer recorded. */
static void test_trace_client(void **state)
{
	int sv[2];
	char err[128];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct policy_events *e = policy_events_create(-1);
	assert_non_null(e);
	assert_int_equal(policy_events_traced(e), 0);
	assert_int_equal(
	    policy_trace_attach(e, sv[1], 1u << POLICY_PIO, "{\"ok\":true}", err, sizeof(err)), 0);
	assert_int_equal(policy_events_traced(e), 1u << POLICY_PIO);
	struct policy_event ev = event(0, 1, 0, POLICY_HYPERCALL);
	put(e, &ev); /* not a class it asked for */
	ev = event(0, 2, 0, POLICY_PIO);
	put(e, &ev);
	size_t n;
	char *got = read_until(sv[0], "\"value\":2,", &n);
	assert_true(!strncmp(got, "{\"ok\":true}\n", 12));
	assert_non_null(strstr(got, "\"class\":\"pio\",\"op\":\"read\",\"port\":112,\"size\":1,"
				    "\"value\":2,\"verdict\":\"allow\"}\n"));
	assert_null(strstr(got, "hypercall"));
	free(got);

	/* A flood the client does not read: far more than ring and socket hold. */
	const int flood = 3 << TRACE_RING_ORDER;
	struct policy_active *a = policy_active_create(NULL, e);
	assert_non_null(a);
	policy_enter(a);
	for (int i = 0; i < flood; i++) {
		ev = event(0, (uint64_t)i, 0, POLICY_PIO);
		policy_events_put(e, &ev, false);
	}
	policy_leave();
	policy_active_destroy(a);
	got = read_until(sv[0], "\"dropped\":", &n);
	char *d = strstr(got, "\"dropped\":");
	assert_non_null(d);
	long dropped = strtol(d + 10, NULL, 10);
	assert_true(dropped >= flood - (1 << TRACE_RING_ORDER) - count(got, "\"verdict\""));
	assert_true(dropped < flood);
	free(got);

	close(sv[0]); /* the client goes: back to recording nothing */
	wait_traced(e, 0);
	policy_events_destroy(e);
}

/* Clients beyond the table, or after the VM ended, are refused. */
static void test_trace_refused(void **state)
{
	struct policy_events *e = policy_events_create(-1);
	int sv[TRACE_MAX_CLIENTS + 1][2];
	char err[128];
	for (int i = 0; i <= TRACE_MAX_CLIENTS; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
		int rc =
		    policy_trace_attach(e, sv[i][1], 1u << POLICY_MMIO, "{}", err, sizeof(err));
		assert_int_equal(rc, i < TRACE_MAX_CLIENTS ? 0 : -1);
	}
	assert_non_null(strstr(err, "too many trace clients"));
	policy_events_stop(e); /* ends every client: they read EOF after their lines */
	char buf[16];
	for (int i = 0; i < TRACE_MAX_CLIENTS; i++) {
		assert_int_equal(read(sv[i][0], buf, sizeof(buf)), 3);
		assert_int_equal(read(sv[i][0], buf, sizeof(buf)), 0);
	}
	int late[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, late), 0);
	assert_int_equal(policy_trace_attach(e, late[1], 1, "{}", err, sizeof(err)), -1);
	assert_string_equal(err, "the VM is ending");
	for (int i = 0; i <= TRACE_MAX_CLIENTS; i++)
		close(sv[i][0]);
	close(late[0]);
	policy_events_destroy(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ring_order_and_full), cmocka_unit_test(test_ring_many_producers),
	    cmocka_unit_test(test_live_replace),	cmocka_unit_test(test_audit_consumer),
	    cmocka_unit_test(test_trace_client),	cmocka_unit_test(test_trace_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
