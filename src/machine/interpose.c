#include "machine/interpose.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/hypercall.h"
#include "net/frame.h"
#include "policy/active.h"
#include "policy/policy.h"
#include "policy/trace.h"
#include "popek/hypercall.h"

_Static_assert(POLICY_READ == 1u << GATE_READ && POLICY_WRITE == 1u << GATE_WRITE &&
		   POLICY_FLUSH == 1u << GATE_FLUSH && POLICY_DISCARD == 1u << GATE_DISCARD,
	       "gate operations are the policy's operation bits");

/* The vCPU whose exit this thread is handling; NULL on I/O and console
 * threads. Device requests find their vCPU (for vcpu matches and pauses) here. */
static _Thread_local struct vcpu *current;

/* Whether class c's actions are recorded even when no rule acts: a trace
 * client takes them. */
static bool traced(const struct policy *p, enum policy_class c)
{
	return policy_events_traced(p->events) & (1u << c);
}

/* The policy if it has a rule for class c or c is traced, else NULL. */
static const struct policy *policy_for(const struct policy *p, enum policy_class c)
{
	return p && (policy_has_class(p, c) || traced(p, c)) ? p : NULL;
}

/* Whether any of the classes in mask has a rule or a trace client: when none
 * does, the action takes no reader slot and sees no policy (the common case
 * costs two loads, not policy_enter's locked add). */
static bool watching(const struct machine *m, unsigned mask)
{
	return policy_active_watched(m->policy) & mask;
}

#define EXIT_CLASSES (1u << POLICY_PIO | 1u << POLICY_MMIO | 1u << POLICY_HYPERCALL)

static void *pauser(void *arg)
{
	machine_pause(arg);
	return NULL;
}

/* Start pausing the whole VM on a helper thread (machine_pause waits for
 * every vCPU to park, and this thread may be one, or hold a device lock a
 * vCPU needs on its way to park); the last such thread is *t. */
static void start_pause(struct machine *m, pthread_t *t, bool *live, const char *who)
{
	if (*live)
		pthread_join(*t, NULL);
	*live = !pthread_create(t, NULL, pauser, m);
	if (!*live)
		machine_stop(m, STOP_ERROR, EXIT_CODE_HOST, "%s: cannot pause for a policy rule",
			     who);
}

/* A pause rule on a vCPU: this vCPU parks at its next exit (the kick), with
 * no access in flight, so a snapshot of the paused VM is consistent. */
static void tripwire(struct vcpu *v)
{
	struct machine *m = v->m;
	char who[16];
	snprintf(who, sizeof(who), "vCPU %d", v->index);
	start_pause(m, &v->pauser, &v->pauser_live, who);
	while (v->pauser_live && !machine_paused(m) && !machine_stopping(m))
		sched_yield(); /* until the request is up: the next run then exits at once */
}

/* A pause rule on a request: on a vCPU, the tripwire; on the loop (console
 * input, eventfd kicks, frames the guest receives), a pause started on a
 * helper thread (may_wait: this thread holds no device lock, so it may wait
 * for the pause itself). The request is deferred by the caller either way. */
static void pause_here(struct machine *m, bool may_wait)
{
	if (current)
		tripwire(current);
	else if (may_wait)
		machine_pause(m);
	else
		start_pause(m, &m->pauser, &m->pauser_live, "the event loop");
}

static void policy_stop(struct machine *m, const struct policy_access *a,
			const struct policy_rule *r)
{
	char who[32] = "an I/O thread";
	if (a->vcpu >= 0)
		snprintf(who, sizeof(who), "vCPU %d", a->vcpu);
	/* A request names its device; an exit's address already says where. */
	const char *dev = a->cls > POLICY_HYPERCALL ? a->dev : NULL;
	machine_stop(m, STOP_ERROR, EXIT_CODE_POLICY,
		     "%s: stopped by policy rule on line %d (%s %s %#llx%s%s)", who, r->line,
		     policy_class_names[a->cls], policy_op_name(a->cls, a->op),
		     (unsigned long long)a->addr, dev ? " on " : "", dev ? dev : "");
}

/* Wait ns for a limit rule, in slices so that a stopping VM does not wait.
 * The thread sleeps: the guest sees a slower device, nothing spins. */
static void hold(struct machine *m, uint64_t ns)
{
	while (ns && !machine_stopping(m)) {
		uint64_t slice = ns < 20000000 ? ns : 20000000;
		struct timespec ts = {0, (long)slice};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
		}
		ns -= slice;
	}
}

static void limit(struct machine *m, const struct policy *p, const struct policy_access *a)
{
	if (p->limit_classes & (1u << a->cls))
		hold(m, policy_limit(p, a, monotonic_ns()));
}

/* The device's name for a dev match: looked up only if a rule asks. */
static const char *bus_dev(const struct policy *p, enum policy_class c, struct bus *bus,
			   uint64_t addr)
{
	return p->dev_classes & (1u << c) ? bus_name(bus, addr) : NULL;
}

static uint64_t value_of(const uint8_t *data, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, data, size);
	return v;
}

/* One port or MMIO access of size bytes at data, through the policy p (may be
 * NULL) to the bus. Denied: reads see all-ones, writes are dropped. */
static void access(struct vcpu *v, const struct policy *p, enum policy_class cls, struct bus *bus,
		   uint64_t addr, uint8_t *data, unsigned size, bool write)
{
	if (!p) {
		bus_access(bus, addr, data, size, write);
		return;
	}
	const struct policy_rule *r, *logged;
	struct policy_access a = {.cls = cls,
				  .op = write ? POLICY_WRITE : POLICY_READ,
				  .addr = addr,
				  .size = size,
				  .value = write ? value_of(data, size) : 0,
				  .vcpu = v->index,
				  .dev = bus_dev(p, cls, bus, addr)};
	limit(v->m, p, &a);
	r = policy_match(p, &a, &logged);
	enum policy_action act = r ? r->action : POLICY_ALLOW;
	if (act == POLICY_ALLOW && !logged && !traced(p, cls)) {
		bus_access(bus, addr, data, size, write);
		return;
	}
	if (!a.dev)
		a.dev = bus_name(bus, addr);
	switch (act) {
	case POLICY_DENY:
	case POLICY_STOP:
		if (!write)
			memset(data, 0xff, size);
		break;
	case POLICY_MODIFY:
		if (write)
			memcpy(data, &r->value, size);
		bus_access(bus, addr, data, size, write);
		if (!write)
			memcpy(data, &r->value, size);
		break;
	default:
		bus_access(bus, addr, data, size, write);
		break;
	}
	policy_audit(p, &a, value_of(data, size), act == POLICY_ALLOW ? logged : r);
	if (act == POLICY_STOP)
		policy_stop(v->m, &a, r);
	else if (act == POLICY_PAUSE)
		tripwire(v);
}

static void hypercall(struct vcpu *v, const struct policy *p, struct vcpu_exit *ex,
		      const struct hypercall *hc)
{
	if (!p) {
		hypercall_complete(ex, hypercall_handle(v, hc));
		return;
	}
	const struct policy_rule *r, *logged;
	struct policy_access a = {.cls = POLICY_HYPERCALL,
				  .op = POLICY_CALL,
				  .addr = hc->nr,
				  .size = 4,
				  .vcpu = v->index,
				  .dev = "hypercall",
				  .args = hc->arg};
	limit(v->m, p, &a);
	r = policy_match(p, &a, &logged);
	enum policy_action act = r ? r->action : POLICY_ALLOW;
	if (act == POLICY_ALLOW && !logged && !traced(p, POLICY_HYPERCALL)) {
		hypercall_complete(ex, hypercall_handle(v, hc));
		return;
	}
	uint64_t ret;
	switch (act) {
	case POLICY_DENY:
	case POLICY_STOP:
		ret = (uint64_t) - (int64_t)POPEK_EPERM;
		break;
	case POLICY_MODIFY:
		ret = r->value; /* instead of running the call */
		break;
	default:
		ret = hypercall_handle(v, hc);
		break;
	}
	hypercall_complete(ex, ret);
	policy_audit(p, &a, ret, act == POLICY_ALLOW ? logged : r);
	if (act == POLICY_STOP)
		policy_stop(v->m, &a, r);
	else if (act == POLICY_PAUSE)
		tripwire(v);
}

/* The action under the policy held now (one policy for all of it, even if
 * `popek policy` replaces it meanwhile). */
static enum exit_reason under_policy(struct vcpu *v, const struct policy *p, struct vcpu_exit *ex)
{
	struct machine *m = v->m;
	struct hypercall hc;
	current = v;
	if (ex->reason == EXIT_MMIO) {
		access(v, policy_for(p, POLICY_MMIO), POLICY_MMIO, &m->mmio, ex->mmio.gpa,
		       ex->mmio.data, ex->mmio.size, ex->mmio.write);
		return EXIT_MMIO;
	}
	if (hypercall_decode(ex, &hc)) {
		hypercall(v, policy_for(p, POLICY_HYPERCALL), ex, &hc);
		return EXIT_HYPERCALL;
	}
	p = policy_for(p, POLICY_PIO);
	for (uint32_t i = 0; i < ex->io.count; i++)
		access(v, p, POLICY_PIO, &m->pio, ex->io.port,
		       ex->io.data + (size_t)i * ex->io.size, ex->io.size, ex->io.write);
	return EXIT_IO;
}

enum exit_reason interpose(struct vcpu *v, struct vcpu_exit *ex)
{
	if (!watching(v->m, EXIT_CLASSES))
		return under_policy(v, NULL, ex);
	enum exit_reason r = under_policy(v, policy_enter(v->m->policy), ex);
	policy_leave();
	return r;
}

/* A request (disk, rng, console, net) through the policy held now: waits
 * for limits (or, with wait, returns how long the caller must hold it),
 * patches data for modify, audits, stops. Returns the deciding action (allow
 * if none); pauses are the caller's, as when they happen differs by class,
 * and happen after the policy is left. */
static enum policy_action request(struct machine *m, struct policy_access *a, uint8_t *data,
				  bool after_pause, uint64_t *wait)
{
	if (!watching(m, 1u << a->cls))
		return POLICY_ALLOW;
	const struct policy *p = policy_for(policy_enter(m->policy), a->cls);
	enum policy_action act = POLICY_ALLOW;
	if (p) {
		const struct policy_rule *r, *logged;
		if (a->vcpu >= 0) /* -1: the caller knows it comes from no vCPU */
			a->vcpu = current ? current->index : -1;
		a->data = data;
		a->datalen = data ? a->len : 0;
		if (wait && (p->limit_classes & (1u << a->cls)))
			*wait = policy_limit(p, a, monotonic_ns());
		else if (!wait)
			limit(m, p, a);
		r = policy_match(p, a, &logged);
		act = r ? r->action : POLICY_ALLOW;
		if (act == POLICY_PAUSE && after_pause)
			act = POLICY_ALLOW; /* this request already paused the VM once */
		else if (act == POLICY_MODIFY && data)
			policy_patch(r, data, a->len);
		if (act != POLICY_ALLOW || logged || traced(p, a->cls))
			policy_audit(p, a, a->len, act == POLICY_ALLOW ? logged : r);
		if (act == POLICY_STOP)
			policy_stop(m, a, r);
	}
	policy_leave();
	return act;
}

/* Whether the policy held now looks at class c at all. */
static bool watched(struct machine *m, enum policy_class c)
{
	if (!watching(m, 1u << c))
		return false;
	bool w = policy_for(policy_enter(m->policy), c);
	policy_leave();
	return w;
}

static const enum policy_class gate_class[] = {[GATE_DISK] = POLICY_DISK,
					       [GATE_RNG] = POLICY_RNG,
					       [GATE_CONSOLE] = POLICY_CONSOLE,
					       [GATE_NET] = POLICY_NET};

/* Every net rule reads a frame's headers, and so does a trace of them: a
 * watched NIC always hands them over. */
static bool gate_wants(void *ctx, enum gate_kind kind)
{
	if (!watching(ctx, 1u << gate_class[kind]))
		return false;
	const struct policy *p = policy_enter(((const struct machine *)ctx)->policy);
	bool wants = kind == GATE_NET ? policy_for(p, POLICY_NET) != NULL
				      : policy_needs_data(p, gate_class[kind]);
	policy_leave();
	return wants;
}

/* Virtio requests: a pause rule defers the request until the VM has paused
 * and resumed, so the paused VM has not seen it happen. */
static enum gate_verdict gate(void *ctx, const char *dev, struct gate_request *rq)
{
	struct machine *m = ctx;
	if (!watching(m, 1u << gate_class[rq->kind]))
		return GATE_GO;
	struct frame_info frame;
	struct policy_access a = {.cls = gate_class[rq->kind],
				  .op = 1u << rq->op,
				  .addr = rq->sector,
				  .count = rq->count,
				  .len = rq->len,
				  .dev = dev};
	uint8_t *data = rq->data;
	if (rq->kind == GATE_NET) {
		frame_classify(data, data ? rq->head_len : 0, &frame);
		a.frame = &frame;
		data = NULL; /* no rule reads a frame past its headers */
		if (rq->op == GATE_READ)
			a.vcpu = -1; /* a received frame comes from no vCPU, whichever drains it */
	}
	switch (request(m, &a, data, rq->after_pause, rq->no_sleep ? &rq->wait_ns : NULL)) {
	case POLICY_DENY:
	case POLICY_STOP:
		return GATE_FAIL;
	case POLICY_PAUSE:
		pause_here(m, false);
		return GATE_DEFER;
	default:
		return GATE_GO;
	}
}

static void gate_after_resume(void *ctx, void (*fn)(void *arg), void *arg)
{
	struct machine *m = ctx;
	if (machine_after_resume(m, fn, arg))
		machine_stop(m, STOP_ERROR, EXIT_CODE_HOST,
			     "too many requests deferred by pause rules at once");
}

struct request_gate interpose_gate(struct machine *m)
{
	return (struct request_gate){
	    .check = gate, .wants_data = gate_wants, .after_resume = gate_after_resume, .ctx = m};
}

/* Console data of one direction through the policy. Returns false if it is
 * denied; modify rules patch buf, which then is what the other side gets. */
static bool console_data(struct console_tap *t, unsigned op, uint8_t *buf, size_t len, bool *pause)
{
	struct policy_access a = {.cls = POLICY_CONSOLE, .op = op, .len = len, .dev = t->dev};
	enum policy_action act = request(t->m, &a, buf, false, NULL);
	*pause = act == POLICY_PAUSE;
	return act != POLICY_DENY && act != POLICY_STOP;
}

/* The most console data one call looks at; a longer write goes in pieces. */
#define TAP_CHUNK 4096

void interpose_console_out(void *tap, const void *buf, size_t len)
{
	struct console_tap *t = tap;
	if (!watched(t->m, POLICY_CONSOLE)) {
		t->out(t->ctx, buf, len);
		return;
	}
	uint8_t copy[TAP_CHUNK];
	for (size_t off = 0; off < len;) {
		size_t n = len - off < TAP_CHUNK ? len - off : TAP_CHUNK;
		memcpy(copy, (const uint8_t *)buf + off, n);
		bool pause;
		if (console_data(t, POLICY_WRITE, copy, n, &pause))
			t->out(t->ctx, copy, n);
		if (pause)
			pause_here(t->m, false);
		off += n;
	}
}

size_t interpose_console_in(void *tap, const uint8_t *buf, size_t len)
{
	struct console_tap *t = tap;
	if (!watched(t->m, POLICY_CONSOLE))
		return t->in(t->ctx, buf, len);
	uint8_t copy[TAP_CHUNK];
	size_t n = len < TAP_CHUNK ? len : TAP_CHUNK;
	memcpy(copy, buf, n);
	bool pause;
	size_t done = n; /* denied input is taken and dropped */
	if (console_data(t, POLICY_READ, copy, n, &pause))
		done = t->in(t->ctx, copy, n);
	if (pause)
		pause_here(t->m, true);
	return done;
}

struct console_tap *interpose_tap(enum tap_slot slot, const struct console_tap *t)
{
	static struct console_tap taps[NR_TAP_SLOTS];
	taps[slot] = *t;
	return &taps[slot];
}

/* What never leaves the engines (docs/policy.md): the PIC, PIT, port 0x61
 * and ELCR ports, the LAPIC and IOAPIC pages. */
static const struct {
	enum policy_class cls;
	uint64_t lo, hi;
	const char *what;
} unseen[] = {
    {POLICY_PIO, 0x20, 0x21, "the PIC"},
    {POLICY_PIO, 0xa0, 0xa1, "the PIC"},
    {POLICY_PIO, 0x40, 0x43, "the PIT"},
    {POLICY_PIO, 0x61, 0x61, "port 0x61 (PIT gate, speaker)"},
    {POLICY_PIO, 0x4d0, 0x4d1, "the PIC's ELCR"},
    {POLICY_MMIO, 0xfec00000, 0xfec00fff, "the IOAPIC"},
    {POLICY_MMIO, 0xfee00000, 0xfeefffff, "the LAPIC"},
};

static bool has_device(const struct machine *m, const struct policy_rule *r)
{
	if (r->cls == POLICY_PIO || r->cls == POLICY_MMIO) {
		const struct bus *b = r->cls == POLICY_PIO ? &m->pio : &m->mmio;
		for (int i = 0; i < b->n; i++)
			if (!strcmp(b->r[i].name, r->dev))
				return true;
		return false;
	}
	static const char *const prefix[NR_POLICY_CLASSES] = {[POLICY_DISK] = "virtio-blk",
							      [POLICY_RNG] = "virtio-rng",
							      [POLICY_CONSOLE] = "",
							      [POLICY_NET] = "virtio-net"};
	for (int i = 0; i < m->ndevices; i++)
		if (!strcmp(m->devices[i].name, r->dev) &&
		    !strncmp(r->dev, prefix[r->cls], strlen(prefix[r->cls])) &&
		    (r->cls != POLICY_CONSOLE || !strcmp(r->dev, "uart0") ||
		     !strcmp(r->dev, "virtio-console0")))
			return true;
	return false;
}

/* The first disk rule r could match whose requests a vhost-user backend
 * reads from shared RAM, never passing popek; -1 if none. */
static int vhost_disk(const struct machine *m, const struct policy_rule *r)
{
	for (int i = 0; r->cls == POLICY_DISK && i < m->cfg->ndisks; i++) {
		char name[24];
		snprintf(name, sizeof(name), "virtio-blk%d", i);
		if (m->cfg->disk[i].kind != DISK_RAW && (!r->dev[0] || !strcmp(r->dev, name)))
			return i;
	}
	return -1;
}

static int refuse(const struct policy_rule *r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int refuse(const struct policy_rule *r, char *err, size_t errlen, const char *fmt, ...)
{
	int n = snprintf(err, errlen, "policy rule on line %d (%s %s) can never match: ", r->line,
			 policy_action_names[r->action], policy_class_names[r->cls]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return EXIT_CODE_USAGE;
}

bool interpose_allows_ioeventfd(const struct policy *p)
{
	unsigned requests =
	    1u << POLICY_DISK | 1u << POLICY_RNG | 1u << POLICY_CONSOLE | 1u << POLICY_NET;
	/* A transmit limit sleeps on the thread that kicked the queue: a vCPU,
	 * never the VM's loop. */
	return !policy_has_class(p, POLICY_MMIO) &&
	       !(p && ((p->vcpu_classes & requests) || (p->limit_classes & 1u << POLICY_NET)));
}

bool interpose_allows_coalesced_pio(const struct policy *p)
{
	return !policy_has_class(p, POLICY_PIO);
}

int interpose_check(struct machine *m, const struct policy *p, char *err, size_t errlen)
{
	for (int i = 0; p && i < p->n; i++) {
		const struct policy_rule *r = &p->rule[i];
		if (r->cls == POLICY_SYSCALL)
			return refuse(r, err, errlen,
				      "a VM's system calls are its kernel's; syscall rules are for "
				      "popek exec (docs/exec.md)");
		for (size_t u = 0; u < sizeof(unseen) / sizeof(unseen[0]); u++)
			if (r->cls == unseen[u].cls && r->addr.lo >= unseen[u].lo &&
			    r->addr.hi <= unseen[u].hi)
				return refuse(r, err, errlen,
					      "%s is emulated inside the %s engine, its accesses "
					      "never reach popek (docs/policy.md)",
					      unseen[u].what, m->engine->name);
		if (r->vcpu >= m->ncpus)
			return refuse(r, err, errlen, "this VM has %d vCPU%s", m->ncpus,
				      m->ncpus == 1 ? "" : "s");
		if (r->cls == POLICY_CONSOLE && r->ops == POLICY_READ && r->vcpu >= 0)
			return refuse(r, err, errlen, "console input comes from no vCPU");
		if (r->cls == POLICY_NET && r->ops == POLICY_READ && r->vcpu >= 0)
			return refuse(r, err, errlen,
				      "frames the guest receives come from no vCPU");
		if (r->cls == POLICY_DISK && r->ops == POLICY_DISCARD)
			return refuse(r, err, errlen, "virtio-blk offers no discard to the guest");
		int vd = vhost_disk(m, r);
		if (vd >= 0)
			return refuse(
			    r, err, errlen,
			    "virtio-blk%d is served by a vhost-user backend that reads its "
			    "requests straight from guest RAM, so they never reach popek "
			    "(docs/vhost-user.md); name the raw disks the rule is for (dev "
			    "virtio-blkN) or give the disk as a raw image",
			    vd);
		if (r->dev[0] && !has_device(m, r))
			return refuse(r, err, errlen,
				      "this VM has no %s device %s (names as `popek stats` and "
				      "docs/policy.md give them)",
				      policy_class_names[r->cls], r->dev);
	}
	return 0;
}
