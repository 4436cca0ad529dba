/* Rules back to text (`popek policy NAME`): the canonical form, one rule per
 * line in the grammar policy_parse reads (parse.c), every match a rule has
 * and none it left at its default. Parsing the output gives the same rules. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = o->failed ? 0 : vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			o->failed = true;
		if (o->failed || (size_t)n < o->cap - o->len) {
			o->len += o->failed ? 0 : (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *b = realloc(o->buf, cap);
		o->failed = !b;
		if (b) {
			o->buf = b;
			o->cap = cap;
		}
	}
}

static bool full(const struct policy_range *r)
{
	return r->lo == 0 && r->hi == UINT64_MAX;
}

/* " WORD N" or " WORD N-M", in hex or decimal. */
static void range(struct out *o, const char *word, const struct policy_range *r, bool hex)
{
	const char *f = hex ? "0x%" PRIx64 : "%" PRIu64;
	put(o, " %s ", word);
	put(o, f, r->lo);
	if (r->hi != r->lo) {
		put(o, "-");
		put(o, f, r->hi);
	}
}

static void bytes(struct out *o, const char *word, const uint8_t *b, unsigned n)
{
	bool text = true;
	for (unsigned i = 0; i < n; i++)
		text &= b[i] >= 0x20 && b[i] < 0x7f;
	put(o, " %s %s", word, text ? "\"" : "0x");
	for (unsigned i = 0; i < n; i++)
		if (!text)
			put(o, "%02x", b[i]);
		else if (b[i] == '"' || b[i] == '\\')
			put(o, "\\%c", b[i]);
		else
			put(o, "%c", b[i]);
	if (text)
		put(o, "\"");
}

/* N with the largest of K, M, G that divides it. */
static void scaled(struct out *o, uint64_t v)
{
	static const char units[] = "GMK";
	for (int i = 0; i < 3; i++) {
		unsigned shift = 30 - 10 * (unsigned)i;
		if (v && !(v & ((1ull << shift) - 1))) {
			put(o, "%" PRIu64 "%c", v >> shift, units[i]);
			return;
		}
	}
	put(o, "%" PRIu64, v);
}

static void cidr(struct out *o, const char *word, const struct policy_cidr *c)
{
	char a[INET6_ADDRSTRLEN];
	if (!c->family)
		return;
	inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof(a));
	put(o, " %s %s", word, a);
	if (c->prefix != (c->family == 4 ? 32 : 128))
		put(o, "/%u", c->prefix);
}

static void net(struct out *o, const struct policy_rule *r)
{
	if (!full(&r->ethertype)) {
		put(o, " ethertype 0x%04" PRIx64, r->ethertype.lo);
		if (r->ethertype.hi != r->ethertype.lo)
			put(o, "-0x%04" PRIx64, r->ethertype.hi);
	}
	if (r->proto == 6 || r->proto == 17 || r->proto == POLICY_PROTO_ICMP)
		put(o, " %s", r->proto == 6 ? "tcp" : r->proto == 17 ? "udp" : "icmp");
	else if (r->proto >= 0)
		put(o, " proto %d", r->proto);
	cidr(o, "src", &r->src);
	cidr(o, "dst", &r->dst);
	if (!full(&r->sport))
		range(o, "sport", &r->sport, false);
	if (!full(&r->dport))
		range(o, "dport", &r->dport, false);
	if (r->fragment)
		put(o, " fragment");
}

/* The system call facts (parse.c's K_CALL, path, family, addr, port, errno). */
static void call(struct out *o, const struct policy_rule *r)
{
	static const struct {
		int family;
		const char *word;
	} families[] = {
	    {AF_UNIX, "unix"}, {AF_INET, "inet"}, {AF_INET6, "inet6"}, {AF_NETLINK, "netlink"}};
	if (r->call[0])
		put(o, " %s", r->call);
	if (r->path[0])
		put(o, " path %s", r->path);
	if (r->family >= 0) {
		const char *w = NULL;
		for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
			if (families[i].family == r->family)
				w = families[i].word;
		w ? put(o, " family %s", w) : put(o, " family %d", r->family);
	}
	if (r->has_net) {
		/* IPv4 is held as ::ffff:a.b.c.d with 96 more prefix bits */
		static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
		bool v4 = !memcmp(r->net, mapped, sizeof(mapped)) && r->prefix >= 96;
		char a[INET6_ADDRSTRLEN];
		inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? r->net + 12 : r->net, a, sizeof(a));
		put(o, " addr %s", a);
		if (r->prefix != 128)
			put(o, "/%u", v4 ? r->prefix - 96 : r->prefix);
	}
	if (r->has_port)
		range(o, "port", &r->port, false);
	if ((r->action == POLICY_DENY || r->action == POLICY_STOP) && r->err != EPERM) {
		const char *name = strerrorname_np(r->err);
		name ? put(o, " errno %s", name) : put(o, " errno %d", r->err);
	}
}

static void rule(struct out *o, const struct policy_rule *r)
{
	put(o, "%s %s", policy_action_names[r->action], policy_class_names[r->cls]);
	if (r->ops != policy_class_ops[r->cls])
		put(o, " %s", policy_op_name(r->cls, r->ops));
	if (!full(&r->addr))
		range(o, policy_range_words[r->cls], &r->addr,
		      r->cls == POLICY_PIO || r->cls == POLICY_MMIO);
	for (unsigned s = 1; s < 32; s++)
		if (r->sizes & (1u << s))
			put(o, " size %u", s);
	if (!full(&r->len))
		range(o, "length", &r->len, false);
	if (r->has_written)
		range(o, "written", &r->written, true);
	for (int i = 0; i < 4; i++)
		if (!full(&r->arg[i]))
			range(o, (const char *[]){"arg0", "arg1", "arg2", "arg3"}[i], &r->arg[i],
			      true);
	if (r->vcpu >= 0)
		put(o, " vcpu %d", r->vcpu);
	if (r->dev[0])
		put(o, " dev %s", r->dev);
	if (r->ncontains)
		bytes(o, "contains", r->contains, r->ncontains);
	if (r->cls == POLICY_NET)
		net(o, r);
	if (r->cls == POLICY_SYSCALL)
		call(o, r);
	if (r->action == POLICY_MODIFY && r->nbytes) {
		bytes(o, "bytes", r->bytes, r->nbytes);
		if (r->at)
			put(o, " at %" PRIu64, r->at);
	} else if (r->action == POLICY_MODIFY) {
		put(o, " value 0x%" PRIx64, r->value);
	}
	if (r->action == POLICY_LIMIT) {
		const struct policy_limit *l = &r->limit;
		put(o, " %s ", l->bytes ? "bytes" : "ops");
		scaled(o, l->rate);
		put(o, "/s");
		if (l->burst != (l->rate / 10 ? l->rate / 10 : 1)) {
			put(o, " burst ");
			scaled(o, l->burst);
		}
	}
	put(o, "\n");
}

char *policy_format(const struct policy *p)
{
	struct out o = {.buf = malloc(256), .cap = 256};
	if (!o.buf)
		return NULL;
	o.buf[0] = 0;
	for (int i = 0; p && i < p->n; i++)
		rule(&o, &p->rule[i]);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
