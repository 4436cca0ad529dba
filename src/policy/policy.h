/* Interposition policy (docs/policy.md): rules that allow, deny, log, modify,
 * limit, stop or pause the guest's actions, first match wins, no match =
 * allow. Log and limit rules do not decide: matching goes on past them, as
 * with iptables' LOG. Parsed once before the VM starts; the rules are
 * read-only afterwards, so vCPU and I/O threads match without locks (a limit
 * rule's token bucket and each rule's counters change, atomically). */
#ifndef POPEK_POLICY_H
#define POPEK_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/frame.h"

enum policy_class {
	POLICY_PIO,
	POLICY_MMIO,
	POLICY_HYPERCALL,
	POLICY_DISK,	/* virtio-blk requests */
	POLICY_RNG,	/* virtio-rng entropy requests */
	POLICY_CONSOLE, /* UART and virtio-console data, both directions */
	POLICY_SYSCALL, /* popek exec: the program's system calls */
	POLICY_NET,	/* virtio-net frames, both directions */
	NR_POLICY_CLASSES
};

enum policy_action {
	POLICY_ALLOW,
	POLICY_DENY,
	POLICY_LOG,
	POLICY_MODIFY,
	POLICY_STOP,
	POLICY_PAUSE,
	POLICY_LIMIT,
	NR_POLICY_ACTIONS
};

extern const char *const policy_class_names[NR_POLICY_CLASSES];
extern const char *const policy_action_names[NR_POLICY_ACTIONS];

/* Operations, one bit each; a rule holds a set. For the console and the
 * network, read is data into the guest (input, rx), write data out of it
 * (output, tx). */
#define POLICY_READ    1u
#define POLICY_WRITE   2u
#define POLICY_FLUSH   4u
#define POLICY_DISCARD 8u
#define POLICY_CALL    16u
#define NR_POLICY_OPS  5
extern const char *const policy_op_names[NR_POLICY_OPS];
/* The operations each class has, and the word naming its range (NULL: none). */
extern const unsigned policy_class_ops[NR_POLICY_CLASSES];
extern const char *const policy_range_words[NR_POLICY_CLASSES];
/* The name of the one operation in op, as class c's rules write it. */
const char *policy_op_name(enum policy_class c, unsigned op);

#define POLICY_DEV_MAX	 24  /* device names: "virtio-blk0", "uart0", "cmos-rtc" */
#define POLICY_BYTES_MAX 64  /* contains / modify bytes patterns */
#define POLICY_NAME_MAX	 24  /* a system call's name */
#define POLICY_PATH_MAX	 256 /* a path glob */

struct policy_range {
	uint64_t lo, hi; /* inclusive */
};

/* An address prefix (src, dst); family 0 matches any frame. */
struct policy_cidr {
	uint8_t family; /* 4 or 6 */
	uint8_t prefix; /* bits */
	uint8_t addr[16];
};

/* proto icmp: ICMP over IPv4 or ICMPv6 (other values: the IP protocol). */
#define POLICY_PROTO_ICMP 256

/* limit: a token bucket as a virtual clock (GCRA): each unit of cost moves
 * tat (the time the bucket is next empty) by 1/rate; a request waits for
 * however far tat runs ahead of now by more than the burst. */
struct policy_limit {
	bool bytes;	      /* bytes/s, else ops/s */
	uint64_t rate;	      /* units per second, > 0 */
	uint64_t burst;	      /* units that may go at once */
	_Atomic uint64_t tat; /* CLOCK_MONOTONIC ns */
};

struct policy_rule {
	enum policy_action action;
	enum policy_class cls;
	unsigned ops;		     /* POLICY_READ... bits; every op of the class if not given */
	struct policy_range addr;    /* port, address, hypercall number or sector range */
	struct policy_range len;     /* request bytes (disk, rng, console) */
	struct policy_range written; /* pio/mmio: the value written */
	bool has_written;
	struct policy_range arg[4]; /* hypercall arguments */
	unsigned sizes;		    /* bit n: access size n bytes; 0 = any */
	int vcpu;		    /* -1 = any */
	char dev[POLICY_DEV_MAX];   /* "" = any device */
	/* contains: the request's data holds these bytes (disk writes, console) */
	uint8_t contains[POLICY_BYTES_MAX];
	unsigned ncontains;
	uint64_t value; /* modify pio/mmio/hypercall: the value used instead */
	/* modify disk/rng/console: these bytes replace the data at offset at */
	uint8_t bytes[POLICY_BYTES_MAX];
	unsigned nbytes;
	uint64_t at;
	struct policy_limit limit;
	/* syscall: the call's name as written (popek exec turns it into the
	 * number range addr), a glob (fnmatch(3), no flags: '*' matches '/')
	 * that a path argument or AF_UNIX address must match, the socket family
	 * (-1 any), an address prefix (IPv4 as ::ffff:a.b.c.d) and port range */
	char call[POLICY_NAME_MAX];
	char path[POLICY_PATH_MAX];
	int family;
	uint8_t net[16];
	unsigned prefix;
	bool has_net, has_port;
	struct policy_range port;
	int err; /* deny syscall: the errno the call fails with */
	/* net: what the frame classifier (net/frame.h) reads */
	struct policy_range ethertype, sport, dport;
	int proto; /* -1 any, an IP protocol, or POLICY_PROTO_ICMP */
	struct policy_cidr src, dst;
	bool fragment; /* IP fragments only */
	int line;      /* in the policy file, for the audit log */
	/* What the rule met since its policy was installed (`popek stats`):
	 * the actions it decided (for log and limit rules, the actions it
	 * saw) and a limit rule's waits. With the bucket, all that changes. */
	_Atomic uint64_t hits;
	_Atomic uint64_t held_ns;
};

#define POLICY_MAX_RULES 1024

struct policy {
	int n;
	unsigned classes;	/* bit per class with at least one rule: the cheap check */
	unsigned data_classes;	/* bit per class with a rule that reads request data */
	unsigned dev_classes;	/* bit per class with a dev match (the name is looked up) */
	unsigned limit_classes; /* bit per class with a limit rule */
	unsigned vcpu_classes;	/* bit per class with a rule that needs a vCPU (pause, vcpu N) */
	int audit_fd;		/* -1 = no --audit */
	struct policy_events *events; /* the trace and audit ring, or NULL (policy/trace.h) */
	struct policy_rule rule[POLICY_MAX_RULES];
};

/* One guest action as a rule sees it. */
struct policy_access {
	enum policy_class cls;
	unsigned op;	      /* one POLICY_READ... bit */
	uint64_t addr;	      /* port, guest-physical address, hypercall number or first sector */
	uint64_t count;	      /* sectors from addr a disk request covers (0 or 1 otherwise) */
	unsigned size;	      /* bytes (pio, mmio) */
	uint64_t len;	      /* request bytes (disk, rng, console) */
	uint64_t value;	      /* pio/mmio write: the value written */
	int vcpu;	      /* -1: not on a vCPU (an I/O thread, console input) */
	const char *dev;      /* NULL if unknown */
	const uint64_t *args; /* hypercall: its 4 arguments */
	const uint8_t *data;  /* the data a contains match looks at, or NULL */
	size_t datalen;
	/* syscall: its path arguments (normalized guest paths, an AF_UNIX
	 * address's too), the socket family (0 = none), the peer or local
	 * address (16 bytes, IPv4 mapped) and port */
	const char *const *paths;
	unsigned npaths;
	int family;
	const uint8_t *ip;
	bool has_port;
	uint16_t port;
	const struct frame_info *frame; /* net: the frame's headers */
};

/* Parse text (the contents of file, named in messages) into p; on a
 * malformed rule returns -1 with "FILE:LINE:COL: expected ..." in err. */
int policy_parse(struct policy *p, const char *text, const char *file, char *err, size_t errlen);
/* Read and parse a file; -1 with a message in err if unreadable or
 * malformed. */
int policy_load(struct policy *p, const char *path, char *err, size_t errlen);
/* Free a malloc'ed policy. */
void policy_free(struct policy *p);
/* The rules of p in canonical form, one per line as policy_parse reads
 * them back (comments and spacing dropped, defaults left out). malloc'ed;
 * NULL without memory. */
char *policy_format(const struct policy *p);

static inline bool policy_has_class(const struct policy *p, enum policy_class c)
{
	return p && (p->classes & (1u << c));
}
/* Does a rule for class c look at request data (so the device must copy
 * it once and hand over the copy)? */
static inline bool policy_needs_data(const struct policy *p, enum policy_class c)
{
	return p && (p->data_classes & (1u << c));
}
/* The first rule matching a that decides (not log or limit), or NULL
 * (allow); *logged is the first log rule matching before it, or NULL. */
const struct policy_rule *policy_match(const struct policy *p, const struct policy_access *a,
				       const struct policy_rule **logged);
/* Charge a to every limit rule it matches before the deciding rule;
 * returns how long (ns) the action must wait to stay within all of them. */
uint64_t policy_limit(const struct policy *p, const struct policy_access *a, uint64_t now_ns);
/* Apply a modify rule's bytes to data[0..len): returns bytes changed. */
size_t policy_patch(const struct policy_rule *r, uint8_t *data, size_t len);

/* Record an action rule r acted on (NULL: none did, the class is traced):
 * time, vCPU, class, device, operation, address, size, value, verdict, rule,
 * to the audit log (if r) and the trace clients of its class. */
void policy_audit(const struct policy *p, const struct policy_access *a, uint64_t value,
		  const struct policy_rule *r);
/* The number of errno name (EACCES) or number, or -1. */
int policy_errno(const char *s, size_t len);

#endif
