#include "machine/interpose.h"

#include <sched.h>
#include <string.h>

#include "machine/hypercall.h"
#include "policy/active.h"
#include "policy/policy.h"
#include "policy/trace.h"
#include "popek/hypercall.h"

/* Whether class c's actions are recorded even when no rule acts: a trace
 * client takes them. */
static bool traced(const struct policy *p, enum policy_class c)
{
	return policy_events_traced(p->events) & (1u << c);
}

/* The policy if it has a rule for class c or c is traced, else NULL: without
 * either the class costs this check and nothing else. */
static const struct policy *policy_for(const struct policy *p, enum policy_class c)
{
	return policy_has_class(p, c) || traced(p, c) ? p : NULL;
}

static void *pauser(void *arg)
{
	machine_pause(arg);
	return NULL;
}

/* A pause rule: pause the whole VM. machine_pause waits for every vCPU to
 * park, this one included, so a helper thread calls it; this vCPU parks at
 * its next exit (the kick), with no access in flight, so a snapshot of the
 * paused VM is consistent. */
static void tripwire(struct vcpu *v)
{
	struct machine *m = v->m;
	if (v->pauser_live)
		pthread_join(v->pauser, NULL);
	v->pauser_live = !pthread_create(&v->pauser, NULL, pauser, m);
	if (!v->pauser_live) {
		machine_stop(m, STOP_ERROR, EXIT_CODE_HOST,
			     "vCPU %d: cannot pause for a policy rule", v->index);
		return;
	}
	while (!machine_paused(m) && !machine_stopping(m))
		sched_yield(); /* until the request is up: the next run then exits at once */
}

static void policy_stop(struct vcpu *v, const struct policy_access *a, const struct policy_rule *r)
{
	machine_stop(v->m, STOP_ERROR, EXIT_CODE_POLICY,
		     "vCPU %d: stopped by policy rule on line %d (%s %s %#llx)", v->index, r->line,
		     policy_class_names[a->cls], a->write ? "write" : "read",
		     (unsigned long long)a->addr);
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
	const struct policy_rule *r = NULL, *logged = NULL;
	struct policy_access a = {cls, write, addr, size, v->index, NULL};
	if (p)
		r = policy_match(p, &a, &logged);
	enum policy_action act = r ? r->action : POLICY_ALLOW;
	if (act == POLICY_ALLOW && !logged && !(p && traced(p, cls))) {
		bus_access(bus, addr, data, size, write);
		return;
	}
	a.device = bus_name(bus, addr);
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
		policy_stop(v, &a, r);
	else if (act == POLICY_PAUSE)
		tripwire(v);
}

static void hypercall(struct vcpu *v, const struct policy *p, struct vcpu_exit *ex,
		      const struct hypercall *hc)
{
	const struct policy_rule *r = NULL, *logged = NULL;
	struct policy_access a = {POLICY_HYPERCALL, true, hc->nr, 4, v->index, "hypercall"};
	if (p)
		r = policy_match(p, &a, &logged);
	enum policy_action act = r ? r->action : POLICY_ALLOW;
	if (act == POLICY_ALLOW && !logged && !(p && traced(p, POLICY_HYPERCALL))) {
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
		policy_stop(v, &a, r);
	else if (act == POLICY_PAUSE)
		tripwire(v);
}

/* The action under the policy held now (one policy for all of it, even if
 * `popek policy` replaces it meanwhile). */
static enum exit_reason under_policy(struct vcpu *v, const struct policy *p, struct vcpu_exit *ex)
{
	struct machine *m = v->m;
	struct hypercall hc;
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
	enum exit_reason r = under_policy(v, policy_enter(v->m->policy), ex);
	policy_leave();
	return r;
}
