#include <fnmatch.h>
#include <string.h>

#include "policy/policy.h"

static bool in(const struct policy_range *r, uint64_t v)
{
	return v >= r->lo && v <= r->hi;
}

/* A needle in data: the memmem of the request's bytes. */
static bool holds(const struct policy_rule *r, const struct policy_access *a)
{
	return a->data && memmem(a->data, a->datalen, r->contains, r->ncontains);
}

static bool path_in(const struct policy_rule *r, const struct policy_access *a)
{
	for (unsigned i = 0; i < a->npaths; i++)
		if (fnmatch(r->path, a->paths[i], 0) == 0)
			return true;
	return false;
}

/* Whether addr starts with the prefix bits of net. */
static bool prefix_holds(const uint8_t *net, unsigned prefix, const uint8_t *addr)
{
	unsigned whole = prefix / 8, bits = prefix % 8;
	if (memcmp(net, addr, whole))
		return false;
	return !bits || !((net[whole] ^ addr[whole]) & (0xff00u >> bits));
}

/* The system call facts: a rule's path, family, address and port each need
 * the call to carry one. */
static bool call_matches(const struct policy_rule *r, const struct policy_access *a)
{
	return (!r->path[0] || path_in(r, a)) && (r->family < 0 || r->family == a->family) &&
	       (!r->has_net || (a->ip && prefix_holds(r->net, r->prefix, a->ip))) &&
	       (!r->has_port || (a->has_port && in(&r->port, a->port)));
}

static bool in_cidr(const struct policy_cidr *c, const struct frame_info *f, const uint8_t *addr)
{
	if (!c->family)
		return true;
	return c->family == f->family && prefix_holds(c->addr, c->prefix, addr);
}

/* A rule's port range is not full only if given: then the frame must have ports. */
static bool in_ports(const struct policy_range *r, const struct frame_info *f, uint16_t port)
{
	return r->hi == UINT64_MAX || ((f->flags & FRAME_PORTS) && in(r, port));
}

static bool net_matches(const struct policy_rule *r, const struct frame_info *f)
{
	if (!f)
		return false;
	if (!in(&r->ethertype, f->ethertype) || (r->fragment && !(f->flags & FRAME_FRAGMENT)))
		return false;
	if (r->proto >= 0) {
		if (!f->family)
			return false;
		if (r->proto == POLICY_PROTO_ICMP ? f->proto != (f->family == 4 ? 1 : 58)
						  : f->proto != r->proto)
			return false;
	}
	return in_cidr(&r->src, f, f->src) && in_cidr(&r->dst, f, f->dst) &&
	       in_ports(&r->sport, f, f->sport) && in_ports(&r->dport, f, f->dport);
}

static bool matches(const struct policy_rule *r, const struct policy_access *a)
{
	if (r->cls != a->cls || !(r->ops & a->op) || (r->vcpu >= 0 && r->vcpu != a->vcpu))
		return false;
	/* A request covering sectors [addr, addr+count) matches a range it overlaps. */
	uint64_t last = a->count > 1 ? a->addr + (a->count - 1) : a->addr;
	if (last < a->addr)
		last = UINT64_MAX;
	if (last < r->addr.lo || a->addr > r->addr.hi || !in(&r->len, a->len))
		return false;
	/* A flush covers no sector: only rules without a sector range see it. */
	if (a->cls == POLICY_DISK && !a->count && (r->addr.lo || r->addr.hi != UINT64_MAX))
		return false;
	if (r->sizes && (a->size >= 32 || !(r->sizes & (1u << a->size))))
		return false;
	if (r->has_written && (a->op != POLICY_WRITE || !in(&r->written, a->value)))
		return false;
	if (a->args)
		for (int i = 0; i < 4; i++)
			if (!in(&r->arg[i], a->args[i]))
				return false;
	if (r->dev[0] && (!a->dev || strcmp(r->dev, a->dev)))
		return false;
	if (a->cls == POLICY_SYSCALL && !call_matches(r, a))
		return false;
	if (r->cls == POLICY_NET && !net_matches(r, a->frame))
		return false;
	return !r->ncontains || holds(r, a);
}

/* The rules are read-only but for their buckets and counters. */
static void count(const struct policy_rule *r, uint64_t held_ns)
{
	struct policy_rule *w = (struct policy_rule *)r;
	atomic_fetch_add_explicit(&w->hits, 1, memory_order_relaxed);
	if (held_ns)
		atomic_fetch_add_explicit(&w->held_ns, held_ns, memory_order_relaxed);
}

static bool decides(const struct policy_rule *r)
{
	return r->action != POLICY_LOG && r->action != POLICY_LIMIT;
}

const struct policy_rule *policy_match(const struct policy *p, const struct policy_access *a,
				       const struct policy_rule **logged)
{
	*logged = NULL;
	for (int i = 0; i < p->n; i++) {
		const struct policy_rule *r = &p->rule[i];
		if (!matches(r, a))
			continue;
		if (r->action != POLICY_LIMIT) /* policy_limit counts those */
			count(r, 0);
		if (decides(r))
			return r;
		if (!*logged && r->action == POLICY_LOG)
			*logged = r;
	}
	return NULL;
}

/* units at rate per second as ns, saturating so that a huge request on a
 * slow bucket waits long instead of wrapping into no wait. */
static uint64_t ns_of(uint64_t units, uint64_t rate)
{
	unsigned __int128 ns = (unsigned __int128)units * 1000000000u / rate;
	return ns > UINT64_MAX / 4 ? UINT64_MAX / 4 : (uint64_t)ns;
}

/* Take cost units from the bucket at now; the wait (ns) until they are due. */
static uint64_t charge(struct policy_limit *l, uint64_t cost, uint64_t now)
{
	uint64_t step = ns_of(cost, l->rate), slack = ns_of(l->burst, l->rate);
	uint64_t tat = atomic_load(&l->tat), next;
	do {
		next = (tat > now ? tat : now) + step;
	} while (!atomic_compare_exchange_weak(&l->tat, &tat, next));
	return next - now > slack ? next - now - slack : 0;
}

uint64_t policy_limit(const struct policy *p, const struct policy_access *a, uint64_t now_ns)
{
	uint64_t wait = 0;
	if (!p || !(p->limit_classes & (1u << a->cls)))
		return 0;
	for (int i = 0; i < p->n; i++) {
		const struct policy_rule *r = &p->rule[i];
		if (!matches(r, a))
			continue;
		if (decides(r))
			break;
		if (r->action != POLICY_LIMIT)
			continue;
		struct policy_limit *l = (struct policy_limit *)&r->limit;
		uint64_t w = charge(l, l->bytes ? (a->len ? a->len : a->size) : 1, now_ns);
		count(r, w);
		if (w > wait)
			wait = w;
	}
	return wait;
}

size_t policy_patch(const struct policy_rule *r, uint8_t *data, size_t len)
{
	if (r->at >= len)
		return 0;
	size_t n = len - r->at < r->nbytes ? len - r->at : r->nbytes;
	memcpy(data + r->at, r->bytes, n);
	return n;
}
