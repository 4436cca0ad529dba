/* The audit log (--audit FILE): one JSON object per line, written with a
 * single write() to an O_APPEND file so lines from several vCPUs never mix. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"

/* The key naming each class's address, if it has one. */
static const char *const addr_keys[NR_POLICY_CLASSES] = {"port", "addr", "nr", "sector"};

void policy_audit(const struct policy *p, const struct policy_access *a, uint64_t value,
		  const struct policy_rule *r)
{
	if (p->audit_fd < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char line[384];
	size_t n = (size_t)snprintf(
	    line, sizeof(line), "{\"ns\":%" PRIu64 ",\"vcpu\":%d,\"class\":\"%s\",\"op\":\"%s\"",
	    (uint64_t)(ts.tv_sec * 1000000000ll + ts.tv_nsec), a->vcpu, policy_class_names[a->cls],
	    policy_op_name(a->op));
	if (a->dev && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"dev\":\"%s\"", a->dev);
	if (addr_keys[a->cls] && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"%s\":%" PRIu64,
				      addr_keys[a->cls], a->addr);
	if (n < sizeof(line) && a->cls <= POLICY_HYPERCALL)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"size\":%u,\"value\":%" PRIu64,
				      a->size, value);
	else if (n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"len\":%" PRIu64, a->len);
	if (n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n,
				      ",\"verdict\":\"%s\",\"rule\":%d}\n",
				      policy_action_names[r->action], r->line);
	if (n < sizeof(line) && write(p->audit_fd, line, n) < 0) {
		/* The guest goes on: a full disk must not stop it or crash the VMM. */
	}
}
