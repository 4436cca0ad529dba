/* Interposition policy (docs/policy.md): rules that allow, deny, log, modify,
 * stop or pause the guest's actions, first match wins, no match = allow. A
 * log rule only records: matching goes on past it, as with iptables' LOG.
 * Parsed once before the VM starts; read-only afterwards, so vCPU threads
 * match without locks. */
#ifndef POPEK_POLICY_H
#define POPEK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum policy_class { POLICY_PIO, POLICY_MMIO, POLICY_HYPERCALL, NR_POLICY_CLASSES };

enum policy_action {
	POLICY_ALLOW,
	POLICY_DENY,
	POLICY_LOG,
	POLICY_MODIFY,
	POLICY_STOP,
	POLICY_PAUSE,
	NR_POLICY_ACTIONS
};

extern const char *const policy_class_names[NR_POLICY_CLASSES];
extern const char *const policy_action_names[NR_POLICY_ACTIONS];

#define POLICY_READ  1u
#define POLICY_WRITE 2u

struct policy_rule {
	enum policy_action action;
	enum policy_class cls;
	unsigned dirs;	 /* POLICY_READ|POLICY_WRITE bits; both if not given */
	uint64_t lo, hi; /* port, address or hypercall number range (inclusive) */
	unsigned sizes;	 /* bit n: access size n bytes; 0 = any */
	int vcpu;	 /* -1 = any */
	uint64_t value;	 /* modify: the value read or written instead */
	int line;	 /* in the policy file, for the audit log */
};

#define POLICY_MAX_RULES 1024

struct policy {
	int n;
	unsigned classes;	      /* bit per class with at least one rule: the cheap check */
	int audit_fd;		      /* -1 = no --audit */
	char *text;		      /* the file as written (malloc'ed), or NULL */
	struct policy_events *events; /* the trace and audit ring, or NULL (policy/trace.h) */
	struct policy_rule rule[POLICY_MAX_RULES];
};

/* One guest action as a rule sees it. */
struct policy_access {
	enum policy_class cls;
	bool write;
	uint64_t addr; /* port, guest-physical address or hypercall number */
	unsigned size; /* bytes (pio, mmio) */
	int vcpu;
	const char *device; /* the device at addr, for the trace and audit; may be NULL */
};

/* Parse text (the contents of file, named in messages) into p; on a
 * malformed rule returns -1 with "FILE:LINE:COL: expected ..." in err. */
int policy_parse(struct policy *p, const char *text, const char *file, char *err, size_t errlen);
/* Read and parse a file (keeping its text); -1 with a message in err if
 * unreadable or malformed. */
int policy_load(struct policy *p, const char *path, char *err, size_t errlen);
/* Free a malloc'ed policy and its text. */
void policy_free(struct policy *p);

static inline bool policy_has_class(const struct policy *p, enum policy_class c)
{
	return p && (p->classes & (1u << c));
}
/* The first rule matching a that decides (any action but log), or NULL
 * (allow); *logged is the first log rule matching before it, or NULL. */
const struct policy_rule *policy_match(const struct policy *p, const struct policy_access *a,
				       const struct policy_rule **logged);

/* Record an action rule r acted on (NULL: none did, the class is traced):
 * time, vCPU, class, device, operation, address, size, value, verdict, rule,
 * to the audit log (if r) and the trace clients of its class. */
void policy_audit(const struct policy *p, const struct policy_access *a, uint64_t value,
		  const struct policy_rule *r);

#endif
