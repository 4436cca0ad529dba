/* Where recorded actions go (docs/policy.md, "Trace" and "The event ring and drops"):
 * the audit writer (--audit: actions a rule acted on) and up to
 * TRACE_MAX_CLIENTS trace clients (`popek trace`: every action of the classes
 * they asked for). Each consumer has its own bounded ring and thread, so a
 * slow one drops its own events and stalls neither the guest nor the others. */
#ifndef POPEK_POLICY_TRACE_H
#define POPEK_POLICY_TRACE_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"
#include "policy/ring.h"

#define TRACE_MAX_CLIENTS 8
#define TRACE_RING_ORDER  16 /* 65536 events (6 MiB) per consumer */

struct policy_events;

/* With an audit writer on audit_fd if >= 0 (not started yet); NULL without memory. */
struct policy_events *policy_events_create(int audit_fd);
/* Start the audit writer thread: after the jail, with the other threads. */
int policy_events_start(struct policy_events *e);
/* Deliver what is left, end every consumer thread, refuse new clients. */
void policy_events_stop(struct policy_events *e);
void policy_events_destroy(struct policy_events *e);

/* Classes some trace client takes (bit per class): with the policy's own
 * classes, what interposition must record. e may be NULL. */
unsigned policy_events_traced(const struct policy_events *e);

/* Stream every action of classes (bit per class) to the connected socket fd
 * (owned from now on) as JSON lines after the line first, until the client
 * goes or the VM ends. 0, or -1 with err (too many clients, VM ending). */
int policy_trace_attach(struct policy_events *e, int fd, unsigned classes, const char *first,
			char *err, size_t errlen);

/* Producers, from inside policy_enter (a leaving trace client waits for a
 * grace period before its ring goes): hand ev to every consumer that takes
 * it. A stop or pause verdict (flush) is in the audit log when this returns. */
void policy_events_put(struct policy_events *e, const struct policy_event *ev, bool flush);

/* One event as a JSON line with its newline (audit.c); the length, or 0 if
 * it does not fit. */
size_t policy_event_json(const struct policy_event *ev, char *buf, size_t len);
/* The line that reports n events a consumer lost: {"ns":...,"dropped":n}. */
size_t policy_drop_json(uint64_t n, char *buf, size_t len);

#endif
