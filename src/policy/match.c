#include "policy/policy.h"

static bool matches(const struct policy_rule *r, const struct policy_access *a)
{
	return r->cls == a->cls && a->addr >= r->lo && a->addr <= r->hi &&
	       (r->dirs & (a->write ? POLICY_WRITE : POLICY_READ)) &&
	       (!r->sizes || (a->size < 32 && (r->sizes & (1u << a->size)))) &&
	       (r->vcpu < 0 || r->vcpu == a->vcpu);
}

const struct policy_rule *policy_match(const struct policy *p, const struct policy_access *a,
				       const struct policy_rule **logged)
{
	*logged = NULL;
	for (int i = 0; i < p->n; i++) {
		const struct policy_rule *r = &p->rule[i];
		if (!matches(r, a))
			continue;
		if (r->action != POLICY_LOG)
			return r;
		if (!*logged)
			*logged = r;
	}
	return NULL;
}
