/* Recording actions: one JSON object per line, for the audit log (--audit
 * FILE) and `popek trace`. In a running VM the events go through the
 * consumers' rings (policy/trace.c); a policy without them (unit tests) writes
 * its audit lines directly, each with one write() to an O_APPEND file. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy/trace.h"

/* The key naming each class's address, if it has one. */
static const char *const addr_keys[NR_POLICY_CLASSES] = {"port", "addr", "nr",
							 "sector", [POLICY_SYSCALL] = "nr"};

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* snprintf's count, or 0 if it did not fit. */
static size_t fits(int n, size_t len)
{
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* s as a JSON string's contents: quotes, backslashes, control and non-ASCII
 * bytes escaped (a guest's path may hold any byte), cut to fit out. */
static void json_escape(const char *s, char *out, size_t len)
{
	size_t n = 0;
	for (; *s && n + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			n += (size_t)snprintf(out + n, len - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = 0;
}

/* What a frame's headers said: ethertype, then what the classifier found. */
static void frame_json(const struct frame_info *f, char *buf, size_t len)
{
	size_t n = fits(snprintf(buf, len, ",\"ethertype\":%u", f->ethertype), len);
	if (f->family) {
		char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
		int af = f->family == 4 ? AF_INET : AF_INET6;
		inet_ntop(af, f->src, src, sizeof(src));
		inet_ntop(af, f->dst, dst, sizeof(dst));
		n += fits(snprintf(buf + n, len - n, ",\"proto\":%u,\"src\":\"%s\",\"dst\":\"%s\"",
				   f->proto, src, dst),
			  len - n);
	}
	if (f->flags & FRAME_PORTS)
		n += fits(
		    snprintf(buf + n, len - n, ",\"sport\":%u,\"dport\":%u", f->sport, f->dport),
		    len - n);
	if (f->flags & FRAME_FRAGMENT)
		fits(snprintf(buf + n, len - n, ",\"fragment\":true"), len - n);
}

size_t policy_event_json(const struct policy_event *ev, char *buf, size_t len)
{
	char where[48] = "", rule[24] = "";
	if (addr_keys[ev->cls])
		snprintf(where, sizeof(where), ",\"%s\":%" PRIu64, addr_keys[ev->cls], ev->addr);
	if (ev->rule)
		snprintf(rule, sizeof(rule), ",\"rule\":%d", ev->rule);
	/* Exits have a size and value; device requests a length. */
	char what[48 + 6 * 256 + 16], frame[192] = "";
	if (ev->cls == POLICY_SYSCALL) { /* the call's result, and what it named */
		char path[6 * 256];
		json_escape(ev->path ? ev->path : "", path, sizeof(path));
		snprintf(what, sizeof(what), ",\"ret\":%" PRId64 "%s%s%s", (int64_t)ev->value,
			 ev->path ? ",\"path\":\"" : "", path, ev->path ? "\"" : "");
	} else if (ev->cls <= POLICY_HYPERCALL)
		snprintf(what, sizeof(what), ",\"size\":%u,\"value\":%" PRIu64, ev->size,
			 ev->value);
	else
		snprintf(what, sizeof(what), ",\"len\":%" PRIu64, ev->value);
	if (ev->cls == POLICY_NET)
		frame_json(&ev->net, frame, sizeof(frame));
	return fits(snprintf(buf, len,
			     "{\"ns\":%" PRIu64 ",\"vcpu\":%d,\"device\":\"%s\",\"class\":\"%s\","
			     "\"op\":\"%s\"%s%s%s,\"verdict\":\"%s\"%s}\n",
			     ev->ns, ev->vcpu, ev->device ? ev->device : "-",
			     policy_class_names[ev->cls], policy_op_name(ev->cls, ev->op), where,
			     what, frame, policy_action_names[ev->verdict], rule),
		    len);
}

size_t policy_drop_json(uint64_t n, char *buf, size_t len)
{
	return fits(
	    snprintf(buf, len, "{\"ns\":%" PRIu64 ",\"dropped\":%" PRIu64 "}\n", realtime_ns(), n),
	    len);
}

void policy_audit(const struct policy *p, const struct policy_access *a, uint64_t value,
		  const struct policy_rule *r)
{
	struct policy_event ev = {.ns = realtime_ns(),
				  .addr = a->addr,
				  .value = value,
				  .device = a->dev,
				  .path = a->npaths ? a->paths[0] : NULL,
				  .vcpu = a->vcpu,
				  .rule = r ? r->line : 0,
				  .cls = (uint8_t)a->cls,
				  .verdict = (uint8_t)(r ? r->action : POLICY_ALLOW),
				  .op = (uint8_t)a->op,
				  .size = (uint8_t)a->size};
	if (a->frame)
		ev.net = *a->frame;
	if (p->events) {
		/* A stop or pause is in the log before the VM is seen stopping. */
		bool flush = r && (r->action == POLICY_STOP || r->action == POLICY_PAUSE);
		policy_events_put(p->events, &ev, flush);
		return;
	}
	char line[2048];
	size_t n = r && p->audit_fd >= 0 ? policy_event_json(&ev, line, sizeof(line)) : 0;
	if (n && write(p->audit_fd, line, n) < 0) {
		/* The guest goes on: a full disk must not stop it or crash the VMM. */
	}
}
