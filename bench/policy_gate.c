/* bench/policy's in-process part: the CPU time the policy point adds to one
 * guest action, timed over many calls, so that a noisy host does not drown
 * it. Two actions: a 1-byte port write to a device that does nothing (the
 * UART's exit, the most common one) through interpose(), and a 4 KiB disk
 * write through the request gate virtio-blk calls. Each under: the bus or
 * the device alone (no policy point at all), an empty policy, a policy with
 * 20 rules for another class, 20 rules of the class that match nothing, and
 * a log rule for the class with the audit log and one `popek trace` client
 * attached (their writer threads' CPU is counted: it is the VMM's too).
 * Thread CPU time, best of REPS runs of N calls. Prints one line per case:
 * CASE PIO_NS DISK_NS (tab-separated), then "drops N" (events lost: the log
 * case runs fewer calls than a ring holds, so it must be 0).
 * Usage: policy_gate [N] */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/request_gate.h"
#include "machine/interpose.h"
#include "policy/active.h"
#include "policy/policy.h"
#include "policy/trace.h"

#define REPS	  7
#define LOG_CALLS 50000 /* fewer than a consumer's ring holds: nothing dropped */

static struct machine m;
static struct vm_config cfg;
static struct vcpu v = {.m = &m};

static void nop_read(void *dev, uint64_t off, void *data, unsigned size)
{
	memset(data, 0, size);
}

static void nop_write(void *dev, uint64_t off, const void *data, unsigned size)
{
}

static const struct bus_ops nop_ops = {nop_read, nop_write};

static uint64_t cpu_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A `popek trace` client or the audit file: a socket end read to its end,
 * counting lines. */
struct sink {
	int fd;
	_Atomic uint64_t lines;
	clockid_t clock;
	pthread_t thread;
};

static void *sink_read(void *arg)
{
	struct sink *s = arg;
	char buf[65536];
	ssize_t n;
	while ((n = read(s->fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				atomic_fetch_add(&s->lines, 1);
	return NULL;
}

/* One end of a new socket pair read by a sink thread; the other end returned. */
static int sink_start(struct sink *s)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return -1;
	s->fd = sv[1];
	atomic_store(&s->lines, 0);
	if (pthread_create(&s->thread, NULL, sink_read, s) ||
	    pthread_getcpuclockid(s->thread, &s->clock))
		return -1;
	return sv[0];
}

/* The policy text's rules, installed as the VM's (NULL: none). */
static void use(const char *text)
{
	char err[256];
	struct policy *p = calloc(1, sizeof(*p));
	if (!p || (text && policy_parse(p, text, "bench", err, sizeof(err)))) {
		fprintf(stderr, "policy_gate: %s\n", p ? err : "out of memory");
		exit(1);
	}
	policy_replace(m.policy, p);
}

enum action { PIO, DISK };

static void act(enum action a, const struct request_gate *g, bool gated)
{
	if (a == PIO) {
		uint8_t byte = 'x';
		struct vcpu_exit ex = {.reason = EXIT_IO,
				       .io = {.port = 0x3f8, .size = 1, .write = true, .count = 1}};
		ex.io.data = &byte;
		if (gated)
			interpose(&v, &ex);
		else
			bus_access(&m.pio, 0x3f8, &byte, 1, true);
	} else {
		struct gate_request rq = {
		    .kind = GATE_DISK, .op = GATE_WRITE, .sector = 64, .count = 8, .len = 4096};
		if (gated)
			gate_check(g, &rq);
	}
}

/* The least CPU ns per call over REPS runs of n calls; with sinks, their
 * threads' CPU is taken out of the process's (they stand for the trace
 * client, another process) and the rest added: the writer threads'. */
static double time_calls(enum action a, const struct request_gate *g, bool gated, long n,
			 struct sink *sinks, int nsinks)
{
	double best = 1e30;
	for (int r = 0; r < REPS; r++) {
		uint64_t want[2] = {0, 0};
		for (int i = 0; i < nsinks; i++)
			want[i] = atomic_load(&sinks[i].lines) + (uint64_t)n;
		uint64_t t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID),
			 p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), s0 = 0;
		for (int i = 0; i < nsinks; i++)
			s0 += cpu_ns(sinks[i].clock);
		for (long i = 0; i < n; i++)
			act(a, g, gated);
		uint64_t mine = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - t0, others = 0;
		if (nsinks) {
			/* Until the writers delivered every event of this run (or
			 * 10 s: a lost event is counted as a drop at the end). */
			for (int i = 0, naps = 0; i < nsinks; i++)
				while (atomic_load(&sinks[i].lines) < want[i] && naps++ < 10000)
					usleep(1000);
			uint64_t s1 = 0;
			for (int i = 0; i < nsinks; i++)
				s1 += cpu_ns(sinks[i].clock);
			others = cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - p0 - mine - (s1 - s0);
		}
		double per = (double)(mine + others) / (double)n;
		if (per < best)
			best = per;
	}
	return best;
}

/* 20 rules of class cls that match none of the actions timed. */
static char *twenty(enum action cls)
{
	static char text[2048];
	size_t len = 0;
	for (int i = 0; i < 20; i++)
		len += (size_t)(cls == PIO ? snprintf(text + len, sizeof(text) - len,
						      "deny pio port 0x%x\n", 0x2000 + 16 * i)
					   : snprintf(text + len, sizeof(text) - len,
						      "deny disk write sectors %d-%d\n",
						      100000 + 8 * i, 100007 + 8 * i));
	return text;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	bus_init(&m.pio, "pio");
	bus_init(&m.mmio, "mmio");
	bus_register(&m.pio, 0x3f8, 8, &nop_ops, NULL, "uart");
	m.cfg = &cfg;
	m.ncpus = 1;

	struct sink sinks[2];
	int audit_fd = sink_start(&sinks[0]);
	struct policy_events *ev = audit_fd < 0 ? NULL : policy_events_create(audit_fd);
	m.policy = ev ? policy_active_create(NULL, ev) : NULL;
	if (!m.policy || policy_events_start(ev)) {
		fprintf(stderr, "policy_gate: cannot set up the policy and its event rings\n");
		return 1;
	}
	struct request_gate g = interpose_gate(&m);
	g.dev = "virtio-blk0";
	static const struct request_gate none = {0};

	printf("bus or device alone\t%.1f\t%.1f\n", time_calls(PIO, &none, false, n, NULL, 0),
	       time_calls(DISK, &none, true, n, NULL, 0));
	use(NULL);
	printf("empty policy\t%.1f\t%.1f\n", time_calls(PIO, &g, true, n, NULL, 0),
	       time_calls(DISK, &g, true, n, NULL, 0));
	use(twenty(DISK));
	double pio_other = time_calls(PIO, &g, true, n, NULL, 0);
	use(twenty(PIO));
	printf("20 rules, other class\t%.1f\t%.1f\n", pio_other,
	       time_calls(DISK, &g, true, n, NULL, 0));
	double pio_twenty = time_calls(PIO, &g, true, n, NULL, 0);
	use(twenty(DISK));
	printf("20 rules, no match\t%.1f\t%.1f\n", pio_twenty,
	       time_calls(DISK, &g, true, n, NULL, 0));

	char err[256];
	int trace_fd = sink_start(&sinks[1]);
	if (trace_fd < 0 || policy_trace_attach(ev, trace_fd, 1u << POLICY_PIO | 1u << POLICY_DISK,
						"{\"ok\":true}", err, sizeof(err))) {
		fprintf(stderr, "policy_gate: cannot attach a trace client\n");
		return 1;
	}
	while (atomic_load(&sinks[1].lines) < 1) /* its first line: attached */
		usleep(1000);
	use("log pio\nlog disk\n");
	double pio_log = time_calls(PIO, &g, true, LOG_CALLS, sinks, 2);
	printf("log + audit + trace\t%.1f\t%.1f\n", pio_log,
	       time_calls(DISK, &g, true, LOG_CALLS, sinks, 2));

	policy_active_destroy(m.policy);
	policy_events_destroy(ev);
	uint64_t want = 2ull * REPS * LOG_CALLS;
	uint64_t got_audit = atomic_load(&sinks[0].lines),
		 got_trace = atomic_load(&sinks[1].lines) - 1;
	printf("drops\t%llu\n", (unsigned long long)(2 * want - got_audit - got_trace));
	return 0;
}
