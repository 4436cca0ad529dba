/* The audit log (--audit FILE): one JSON object per line, written with a
 * single write() to an O_APPEND file so lines from several vCPUs never mix. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"

static const char *const ops[NR_POLICY_CLASSES][2] = {
    [POLICY_PIO] = {"read", "write"},
    [POLICY_MMIO] = {"read", "write"},
    [POLICY_HYPERCALL] = {"call", "call"},
};
static const char *const addr_keys[NR_POLICY_CLASSES] = {"port", "addr", "nr"};

void policy_audit(const struct policy *p, const struct policy_access *a, uint64_t value,
		  const struct policy_rule *r)
{
	if (p->audit_fd < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char line[256];
	int n = snprintf(line, sizeof(line),
			 "{\"ns\":%" PRIu64 ",\"vcpu\":%d,\"class\":\"%s\",\"op\":\"%s\","
			 "\"%s\":%" PRIu64 ",\"size\":%u,\"value\":%" PRIu64
			 ",\"verdict\":\"%s\",\"rule\":%d}\n",
			 (uint64_t)(ts.tv_sec * 1000000000ll + ts.tv_nsec), a->vcpu,
			 policy_class_names[a->cls], ops[a->cls][a->write], addr_keys[a->cls],
			 a->addr, a->size, value, policy_action_names[r->action], r->line);
	if (n > 0 && (size_t)n < sizeof(line) && write(p->audit_fd, line, (size_t)n) < 0) {
		/* The guest goes on: a full disk must not stop it or crash the VMM. */
	}
}
