/* The policy file grammar (docs/policy.md), one rule per line:
 *   ACTION CLASS MATCH... [value N | bytes B [at N] | ops|bytes RATE [burst N]]
 * '#' starts a comment; numbers are decimal or 0x-hex; RANGE is N or N-M; B
 * is "text" (with \\, \" and \xHH) or 0x-hex bytes. Which matches a class
 * takes is one table (keys), so the parser and its messages agree. */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

const char *const policy_class_names[NR_POLICY_CLASSES] = {"pio", "mmio",    "hypercall", "disk",
							   "rng", "console", "syscall",	  "net"};
const char *const policy_action_names[NR_POLICY_ACTIONS] = {"allow", "deny",  "log",  "modify",
							    "stop",  "pause", "limit"};
const char *const policy_op_names[NR_POLICY_OPS] = {"read", "write", "flush", "discard", "call"};

/* The network's directions, as the guest sees them: rx (in) and tx (out). */
static const char *const net_op_words[2][2] = {{"rx", "in"}, {"tx", "out"}};

const char *policy_op_name(enum policy_class c, unsigned op)
{
	if (c == POLICY_NET && (op == POLICY_READ || op == POLICY_WRITE))
		return net_op_words[op == POLICY_WRITE][0];
	for (int i = 0; i < NR_POLICY_OPS; i++)
		if (op == 1u << i)
			return policy_op_names[i];
	return "?";
}

#define C(c)	 (1u << POLICY_##c)
#define ACCESS	 (C(PIO) | C(MMIO))
#define REQUESTS (C(DISK) | C(RNG) | C(CONSOLE))
#define VM	 (ACCESS | C(HYPERCALL) | REQUESTS | C(NET)) /* what a VM with a kernel does */
#define ALL	 ((1u << NR_POLICY_CLASSES) - 1)

/* The operations of each class, and the word naming its range (if any). */
const unsigned policy_class_ops[NR_POLICY_CLASSES] = {
    [POLICY_PIO] = POLICY_READ | POLICY_WRITE,
    [POLICY_MMIO] = POLICY_READ | POLICY_WRITE,
    [POLICY_HYPERCALL] = POLICY_CALL,
    [POLICY_DISK] = POLICY_READ | POLICY_WRITE | POLICY_FLUSH | POLICY_DISCARD,
    [POLICY_RNG] = POLICY_READ,
    [POLICY_CONSOLE] = POLICY_READ | POLICY_WRITE,
    [POLICY_SYSCALL] = POLICY_CALL,
    [POLICY_NET] = POLICY_READ | POLICY_WRITE,
};
const char *const policy_range_words[NR_POLICY_CLASSES] = {"port", "addr", "nr",
							   "sectors", [POLICY_SYSCALL] = "nr"};
static const uint64_t range_max[NR_POLICY_CLASSES] = {0xffff, UINT64_MAX, UINT64_MAX,
						      UINT64_MAX, [POLICY_SYSCALL] = 511};

struct lexer {
	const char *file, *line; /* line: start of the current line */
	int lineno;
	const char *pos, *tok; /* tok: start of the last token, for messages */
	size_t len;
	char *err;
	size_t errlen;
};

static int expected(struct lexer *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int expected(struct lexer *l, const char *fmt, ...)
{
	int n = snprintf(l->err, l->errlen, "%s:%d:%d: expected ", l->file, l->lineno,
			 (int)(l->tok - l->line) + 1);
	if (n < 0 || (size_t)n >= l->errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* The next token of this line; false at its end (or a comment). A token
 * starting with '"' runs to the closing quote, spaces and '#' included. */
static bool next(struct lexer *l)
{
	while (*l->pos == ' ' || *l->pos == '\t' || *l->pos == '\r')
		l->pos++;
	l->tok = l->pos;
	if (!*l->pos || *l->pos == '\n' || *l->pos == '#')
		return false;
	if (*l->pos == '"') {
		for (l->pos++; *l->pos && *l->pos != '\n' && *l->pos != '"'; l->pos++)
			if (*l->pos == '\\' && l->pos[1] && l->pos[1] != '\n')
				l->pos++;
		if (*l->pos == '"')
			l->pos++;
	}
	while (*l->pos && !strchr(" \t\r\n#", *l->pos))
		l->pos++;
	l->len = (size_t)(l->pos - l->tok);
	return true;
}

static bool is(const struct lexer *l, const char *word)
{
	return l->len == strlen(word) && !strncmp(l->tok, word, l->len);
}

static int lookup(const struct lexer *l, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (is(l, names[i]))
			return i;
	return -1;
}

/* A number at s (up to end), decimal or 0x-hex; NULL if none or it overflows. */
static const char *number(const char *s, const char *end, uint64_t *v)
{
	char buf[32];
	size_t n = (size_t)(end - s);
	if (!n || n >= sizeof(buf) || *s == '-' || *s == '+')
		return NULL;
	memcpy(buf, s, n);
	buf[n] = 0;
	char *stop;
	errno = 0;
	*v = strtoull(buf, &stop, 0);
	if (errno || stop == buf)
		return NULL;
	return s + (stop - buf);
}

static int parse_number(struct lexer *l, uint64_t *v, const char *what)
{
	if (!next(l) || number(l->tok, l->tok + l->len, v) != l->tok + l->len)
		return expected(l, "%s (a number, decimal or 0x-hex)", what);
	return 0;
}

static int parse_range(struct lexer *l, struct policy_range *r, const char *what, uint64_t max)
{
	if (!next(l))
		return expected(l, "a %s range (N or N-M)", what);
	const char *end = l->tok + l->len, *p = number(l->tok, end, &r->lo);
	r->hi = r->lo;
	if (p && p < end && *p == '-')
		p = number(p + 1, end, &r->hi);
	if (p != end || r->hi < r->lo || r->hi > max)
		return expected(l, "a %s range (N or N-M with N <= M <= %#llx)", what,
				(unsigned long long)max);
	return 0;
}

static int hexdigit(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* "text" or 0xHEXBYTES into out; the byte count, or -1. */
static int bytes_of(const char *s, size_t n, uint8_t *out)
{
	int len = 0;
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		for (size_t i = 1; i < n - 1; i++) {
			int c = (unsigned char)s[i];
			if (c == '\\') {
				if (i + 1 >= n - 1)
					return -1;
				c = (unsigned char)s[++i];
				if (c == 'x') {
					if (i + 2 >= n - 1 || hexdigit(s[i + 1]) < 0 ||
					    hexdigit(s[i + 2]) < 0)
						return -1;
					c = hexdigit(s[i + 1]) * 16 + hexdigit(s[i + 2]);
					i += 2;
				} else if (c == 'n') {
					c = '\n';
				} else if (c != '\\' && c != '"') {
					return -1;
				}
			} else if (c == '"') {
				return -1;
			}
			if (len == POLICY_BYTES_MAX)
				return -1;
			out[len++] = (uint8_t)c;
		}
		return len;
	}
	if (n < 4 || n % 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') ||
	    (n - 2) / 2 > POLICY_BYTES_MAX)
		return -1;
	for (size_t i = 2; i < n; i += 2) {
		if (hexdigit(s[i]) < 0 || hexdigit(s[i + 1]) < 0)
			return -1;
		out[len++] = (uint8_t)(hexdigit(s[i]) * 16 + hexdigit(s[i + 1]));
	}
	return len;
}

static int parse_bytes(struct lexer *l, uint8_t *out, unsigned *n)
{
	int len = next(l) ? bytes_of(l->tok, l->len, out) : -1;
	if (len <= 0)
		return expected(l,
				"bytes: \"text\" (\\\\, \\\", \\n, \\xHH) or 0x-hex pairs, "
				"1 to %d bytes",
				POLICY_BYTES_MAX);
	*n = (unsigned)len;
	return 0;
}

/* N with an optional K, M or G (powers of 1024). */
static const char *scaled(const char *s, const char *end, uint64_t *v)
{
	const char *p = number(s, end, v);
	if (!p || p == end)
		return p;
	int shift = *p == 'K' ? 10 : *p == 'M' ? 20 : *p == 'G' ? 30 : 0;
	if (!shift)
		return p;
	if (*v > UINT64_MAX >> shift)
		return NULL;
	*v <<= shift;
	return p + 1;
}

static int parse_rate(struct lexer *l, struct policy_rule *r)
{
	if (!next(l))
		return expected(l, "a rate (N/s, N with K, M or G)");
	const char *end = l->tok + l->len, *p = scaled(l->tok, end, &r->limit.rate);
	if (!p || end - p != 2 || strncmp(p, "/s", 2) || !r->limit.rate)
		return expected(l, "a rate (N/s with N > 0, N with K, M or G: 200/s, 20M/s)");
	r->limit.burst = r->limit.rate / 10 ? r->limit.rate / 10 : 1; /* 100 ms worth */
	return 0;
}

static int parse_burst(struct lexer *l, struct policy_rule *r)
{
	const char *end = next(l) ? l->tok + l->len : NULL;
	if (!end || scaled(l->tok, end, &r->limit.burst) != end)
		return expected(l, "a burst size (N, with K, M or G)");
	return 0;
}

/* ADDR or ADDR/BITS, IPv4 or IPv6; host bits past the prefix are cleared. */
static int parse_cidr(struct lexer *l, struct policy_cidr *c)
{
	char buf[64];
	if (!next(l) || l->len >= sizeof(buf))
		goto bad;
	memcpy(buf, l->tok, l->len);
	buf[l->len] = 0;
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	c->family = strchr(buf, ':') ? 6 : 4;
	unsigned max = c->family == 4 ? 32 : 128;
	uint64_t bits = max;
	if (inet_pton(c->family == 4 ? AF_INET : AF_INET6, buf, c->addr) != 1 ||
	    (slash && (number(slash + 1, buf + l->len, &bits) != buf + l->len || bits > max)))
		goto bad;
	c->prefix = (uint8_t)bits;
	for (unsigned b = c->prefix; b < max; b++)
		c->addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
	return 0;
bad:
	return expected(l, "an address or prefix (10.0.2.2, 10.0.2.0/24, fd00::/8)");
}

static int parse_dev(struct lexer *l, struct policy_rule *r)
{
	if (!next(l) || l->len >= POLICY_DEV_MAX || l->tok[0] == '"')
		return expected(l, "a device name (virtio-blk0, uart0, ...; at most %d characters)",
				POLICY_DEV_MAX - 1);
	memcpy(r->dev, l->tok, l->len);
	r->dev[l->len] = 0;
	return 0;
}

/* A word naming a system call: lowercase letters, digits, '_'. */
static bool call_word(const struct lexer *l)
{
	if (!l->len || l->len >= POLICY_NAME_MAX || l->tok[0] < 'a' || l->tok[0] > 'z')
		return false;
	for (size_t i = 0; i < l->len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789_", l->tok[i]))
			return false;
	return true;
}

static int parse_path(struct lexer *l, struct policy_rule *r)
{
	if (!next(l) || l->len >= POLICY_PATH_MAX || l->tok[0] != '/')
		return expected(l, "a path glob starting with / (at most %d characters)",
				POLICY_PATH_MAX - 1);
	memcpy(r->path, l->tok, l->len);
	r->path[l->len] = 0;
	return 0;
}

static const struct {
	const char *word;
	int family;
} families[] = {{"unix", AF_UNIX}, {"inet", AF_INET}, {"inet6", AF_INET6}, {"netlink", AF_NETLINK}};

static int parse_family(struct lexer *l, struct policy_rule *r)
{
	uint64_t v;
	if (next(l)) {
		for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
			if (is(l, families[i].word)) {
				r->family = families[i].family;
				return 0;
			}
		if (number(l->tok, l->tok + l->len, &v) == l->tok + l->len && v && v < AF_MAX) {
			r->family = (int)v;
			return 0;
		}
	}
	return expected(l, "a socket family (unix, inet, inet6, netlink or a number 1-%d)",
			AF_MAX - 1);
}

/* An address with an optional /prefix: IPv4 goes in as ::ffff:a.b.c.d, so
 * it also matches a v4-mapped IPv6 address. */
static int parse_net(struct lexer *l, struct policy_rule *r)
{
	char text[64];
	if (!next(l) || l->len >= sizeof(text))
		goto bad;
	memcpy(text, l->tok, l->len);
	text[l->len] = 0;
	char *slash = strchr(text, '/');
	if (slash)
		*slash++ = 0;
	bool v4 = inet_pton(AF_INET, text, r->net + 12) == 1;
	if (v4) {
		memset(r->net, 0, 10);
		r->net[10] = r->net[11] = 0xff;
	} else if (inet_pton(AF_INET6, text, r->net) != 1) {
		goto bad;
	}
	uint64_t bits = v4 ? 32 : 128;
	if (slash && (number(slash, slash + strlen(slash), &bits) != slash + strlen(slash) ||
		      bits > (v4 ? 32u : 128u)))
		goto bad;
	r->prefix = (unsigned)bits + (v4 ? 96 : 0);
	r->has_net = true;
	return 0;
bad:
	return expected(l, "an address (IPv4 or IPv6, with an optional /prefix)");
}

int policy_errno(const char *s, size_t len)
{
	uint64_t v;
	if (number(s, s + len, &v) == s + len)
		return v && v < 4096 ? (int)v : -1;
	for (int e = 1; e < 4096; e++) {
		const char *name = strerrorname_np(e);
		if (name && strlen(name) == len && !strncmp(name, s, len))
			return e;
	}
	return -1;
}

enum key {
	K_OP,
	K_RANGE,
	K_SIZE,
	K_LENGTH,
	K_WRITTEN,
	K_ARG0,
	K_ARG1,
	K_ARG2,
	K_ARG3,
	K_VCPU,
	K_DEV,
	K_CONTAINS,
	K_VALUE,
	K_BYTES,
	K_AT,
	K_OPS,
	K_BYTES_RATE,
	K_BURST,
	K_PATH,
	K_FAMILY,
	K_NET,
	K_PORT,
	K_ERRNO,
	K_NIC,
	K_ETHERTYPE,
	K_PROTO,
	K_SRC,
	K_DST,
	K_SPORT,
	K_DPORT,
	K_FRAGMENT,
	K_CALL, /* last: any word that is no other key */
	NR_KEYS
};

#define A(a)	 (1u << POLICY_##a)
#define MATCHERS ((1u << NR_POLICY_ACTIONS) - 1)

/* Which key each class and action takes, and how the message names it. */
static const struct key_info {
	const char *word; /* NULL: the class's op words / range word */
	const char *hint;
	unsigned classes, actions;
} keys[NR_KEYS] = {
    [K_OP] = {NULL, "an operation", ALL, MATCHERS},
    [K_RANGE] = {NULL, "RANGE", C(PIO) | C(MMIO) | C(HYPERCALL) | C(DISK) | C(SYSCALL), MATCHERS},
    [K_SIZE] = {"size", "size N", ACCESS, MATCHERS},
    [K_LENGTH] = {"length", "length RANGE", REQUESTS | C(NET), MATCHERS},
    [K_WRITTEN] = {"written", "written RANGE", ACCESS, MATCHERS},
    [K_ARG0] = {"arg0", "arg0..arg3 RANGE", C(HYPERCALL) | C(SYSCALL), MATCHERS},
    [K_ARG1] = {"arg1", NULL, C(HYPERCALL) | C(SYSCALL), MATCHERS},
    [K_ARG2] = {"arg2", NULL, C(HYPERCALL) | C(SYSCALL), MATCHERS},
    [K_ARG3] = {"arg3", NULL, C(HYPERCALL) | C(SYSCALL), MATCHERS},
    [K_VCPU] = {"vcpu", "vcpu N", VM, MATCHERS},
    [K_DEV] = {"dev", "dev NAME", VM & ~C(HYPERCALL), MATCHERS},
    [K_CONTAINS] = {"contains", "contains BYTES", C(DISK) | C(CONSOLE), MATCHERS},
    [K_VALUE] = {"value", "value N", ACCESS | C(HYPERCALL) | C(SYSCALL), A(MODIFY)},
    [K_BYTES] = {"bytes", "bytes BYTES", REQUESTS, A(MODIFY)},
    [K_AT] = {"at", "at N", REQUESTS, A(MODIFY)},
    [K_OPS] = {"ops", "ops RATE", ALL, A(LIMIT)},
    [K_BYTES_RATE] = {"bytes", "bytes RATE", REQUESTS | ACCESS | C(NET), A(LIMIT)},
    [K_BURST] = {"burst", "burst N", ALL, A(LIMIT)},
    [K_PATH] = {"path", "path GLOB", C(SYSCALL), MATCHERS},
    [K_FAMILY] = {"family", "family unix|inet|inet6|N", C(SYSCALL), MATCHERS},
    [K_NET] = {"addr", "addr IP[/PREFIX]", C(SYSCALL), MATCHERS},
    [K_PORT] = {"port", "port RANGE", C(SYSCALL), MATCHERS},
    [K_ERRNO] = {"errno", "errno E", C(SYSCALL), A(DENY) | A(STOP)},
    [K_CALL] = {NULL, "a call's name", C(SYSCALL), MATCHERS},
    [K_NIC] = {"nic", "nic N", C(NET), MATCHERS},
    [K_ETHERTYPE] = {"ethertype", "ethertype RANGE", C(NET), MATCHERS},
    [K_PROTO] = {NULL, "tcp, udp, icmp, proto N", C(NET), MATCHERS},
    [K_SRC] = {"src", "src ADDR[/BITS]", C(NET), MATCHERS},
    [K_DST] = {"dst", "dst ADDR[/BITS]", C(NET), MATCHERS},
    [K_SPORT] = {"sport", "sport RANGE", C(NET), MATCHERS},
    [K_DPORT] = {"dport", "dport RANGE", C(NET), MATCHERS},
    [K_FRAGMENT] = {"fragment", "fragment", C(NET), MATCHERS},
};

/* rx or in, tx or out: the operation bit, or -1. */
static int net_op(const struct lexer *l)
{
	for (int w = 0; w < 2; w++)
		if (lookup(l, net_op_words[w], 2) >= 0)
			return w ? POLICY_WRITE : POLICY_READ;
	return -1;
}

static bool key_is(const struct lexer *l, enum key k, const struct policy_rule *r)
{
	if (k == K_OP && r->cls == POLICY_NET)
		return net_op(l) >= 0;
	if (k == K_OP) {
		int op = lookup(l, policy_op_names, NR_POLICY_OPS);
		return op >= 0 && (policy_class_ops[r->cls] & (1u << op));
	}
	if (k == K_RANGE)
		return policy_range_words[r->cls] && is(l, policy_range_words[r->cls]);
	if (k == K_CALL) { /* a repeated key word is no call's name */
		for (int j = 0; j < NR_KEYS; j++)
			if (keys[j].word && is(l, keys[j].word))
				return false;
		return call_word(l) && !is(l, policy_range_words[r->cls]);
	}
	if (k == K_PROTO)
		return is(l, "tcp") || is(l, "udp") || is(l, "icmp") || is(l, "proto");
	return is(l, keys[k].word);
}

/* "expected ..." naming every key the rule may still take. */
static int expected_key(struct lexer *l, const struct policy_rule *r, unsigned seen)
{
	char list[512] = "";
	size_t n = 0;
	for (int k = 0; k < NR_KEYS; k++) {
		const struct key_info *ki = &keys[k];
		if ((seen & (1u << k)) || !ki->hint || !(ki->classes & (1u << r->cls)) ||
		    !(ki->actions & (1u << r->action)))
			continue;
		if (k == K_BURST && !(seen & (1u << K_OPS | 1u << K_BYTES_RATE)))
			continue;
		if (k == K_OP) {
			for (int o = 0; o < NR_POLICY_OPS; o++)
				if (policy_class_ops[r->cls] & (1u << o) &&
				    policy_class_ops[r->cls] != POLICY_CALL)
					n += (size_t)snprintf(list + n, sizeof(list) - n, "%s, ",
							      policy_op_name(r->cls, 1u << o));
		} else if (k == K_RANGE) {
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s RANGE, ",
					      policy_range_words[r->cls]);
		} else {
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s, ", ki->hint);
		}
		if (n >= sizeof(list))
			break;
	}
	return expected(l, "%sor the end of the rule", list);
}

static int parse_key(struct lexer *l, struct policy_rule *r, enum key k)
{
	uint64_t v;
	switch (k) {
	case K_OP:
		r->ops = r->cls == POLICY_NET ? (unsigned)net_op(l)
					      : 1u << lookup(l, policy_op_names, NR_POLICY_OPS);
		return 0;
	case K_RANGE:
		return parse_range(l, &r->addr, policy_range_words[r->cls], range_max[r->cls]);
	case K_SIZE:
		if (parse_number(l, &v, "an access size"))
			return -1;
		if (v != 1 && v != 2 && v != 4 && v != 8)
			return expected(l, "an access size of 1, 2, 4 or 8");
		r->sizes = 1u << v;
		return 0;
	case K_LENGTH:
		return parse_range(l, &r->len, "length", UINT64_MAX);
	case K_WRITTEN:
		r->has_written = true;
		return parse_range(l, &r->written, "value", UINT64_MAX);
	case K_ARG0:
	case K_ARG1:
	case K_ARG2:
	case K_ARG3:
		return parse_range(l, &r->arg[k - K_ARG0], "argument", UINT64_MAX);
	case K_VCPU:
		if (parse_number(l, &v, "a vCPU index"))
			return -1;
		if (v >= 64)
			return expected(l, "a vCPU index below 64");
		r->vcpu = (int)v;
		return 0;
	case K_DEV:
		return parse_dev(l, r);
	case K_CONTAINS:
		return parse_bytes(l, r->contains, &r->ncontains);
	case K_VALUE:
		return parse_number(l, &r->value, "the value to use");
	case K_BYTES:
		return parse_bytes(l, r->bytes, &r->nbytes);
	case K_AT:
		return parse_number(l, &r->at, "an offset into the data");
	case K_OPS:
	case K_BYTES_RATE:
		r->limit.bytes = k == K_BYTES_RATE;
		return parse_rate(l, r);
	case K_BURST:
		return parse_burst(l, r);
	case K_PATH:
		return parse_path(l, r);
	case K_FAMILY:
		return parse_family(l, r);
	case K_NET:
		return parse_net(l, r);
	case K_PORT:
		r->has_port = true;
		return parse_range(l, &r->port, "port", 0xffff);
	case K_ERRNO:
		if (!next(l) || (r->err = policy_errno(l->tok, l->len)) < 0)
			return expected(l, "an errno name (EACCES, EPERM, ...) or number 1-4095");
		return 0;
	case K_CALL:
		memcpy(r->call, l->tok, l->len);
		r->call[l->len] = 0;
		return 0;
	case K_NIC:
		if (parse_number(l, &v, "a NIC index") || v >= 100)
			return expected(l, "a NIC index (0 for the first --net)");
		snprintf(r->dev, sizeof(r->dev), "virtio-net%u", (unsigned)v);
		return 0;
	case K_ETHERTYPE:
		return parse_range(l, &r->ethertype, "ethertype", 0xffff);
	case K_PROTO:
		if (is(l, "proto")) {
			if (parse_number(l, &v, "an IP protocol number") || v > 255)
				return expected(l, "an IP protocol number (0-255)");
			r->proto = (int)v;
		} else {
			r->proto = is(l, "tcp") ? 6 : is(l, "udp") ? 17 : POLICY_PROTO_ICMP;
		}
		return 0;
	case K_SRC:
		return parse_cidr(l, &r->src);
	case K_DST:
		return parse_cidr(l, &r->dst);
	case K_SPORT:
		return parse_range(l, &r->sport, "port", 0xffff);
	case K_DPORT:
		return parse_range(l, &r->dport, "port", 0xffff);
	case K_FRAGMENT:
		r->fragment = true;
		return 0;
	default:
		return -1;
	}
}

/* What a complete rule still needs, checked at its end. */
static int finish(struct lexer *l, struct policy_rule *r, unsigned seen)
{
	bool data = r->cls == POLICY_DISK || r->cls == POLICY_RNG || r->cls == POLICY_CONSOLE;
	if (r->action == POLICY_MODIFY && !data && !(seen & 1u << K_VALUE))
		return expected(l, "value N (modify needs the value to use)");
	if (r->action == POLICY_MODIFY && data && !(seen & 1u << K_BYTES))
		return expected(l, "bytes BYTES (modify needs the bytes to write)");
	if (r->action == POLICY_LIMIT && !(seen & (1u << K_OPS | 1u << K_BYTES_RATE)))
		return expected(l, "ops RATE or bytes RATE (limit needs a rate)");
	if ((seen & 1u << K_CALL) && (seen & 1u << K_RANGE))
		return expected(l, "a call's name or nr RANGE, not both");
	/* Only data the guest hands over can be inspected or patched: a disk
	 * read's data does not exist before the device acts. */
	if (r->cls == POLICY_DISK && (seen & (1u << K_CONTAINS | 1u << K_BYTES)) &&
	    r->ops != POLICY_WRITE)
		return expected(l, "write (contains and modify look at a disk write's data)");
	return 0;
}

static int parse_rule(struct lexer *l, struct policy_rule *r)
{
	int a = lookup(l, policy_action_names, NR_POLICY_ACTIONS);
	if (a < 0)
		return expected(l, "an action (allow, deny, log, modify, stop, pause or limit)");
	int c = next(l) ? lookup(l, policy_class_names, NR_POLICY_CLASSES) : -1;
	if (c < 0)
		return expected(
		    l, "a class (pio, mmio, hypercall, disk, rng, console, syscall or net)");
	/* A changed frame would carry checksums that no longer hold. */
	if (a == POLICY_MODIFY && c == POLICY_NET)
		return expected(l, "another action: net frames cannot be modified (their "
				   "checksums would no longer match); deny, log or limit them");
	*r = (struct policy_rule){
	    .action = (enum policy_action)a,
	    .cls = (enum policy_class)c,
	    .ops = policy_class_ops[c],
	    .addr = {0, UINT64_MAX},
	    .len = {0, UINT64_MAX},
	    .arg = {{0, UINT64_MAX}, {0, UINT64_MAX}, {0, UINT64_MAX}, {0, UINT64_MAX}},
	    .vcpu = -1,
	    .family = -1,
	    .port = {0, 0xffff},
	    .err = EPERM,
	    .ethertype = {0, UINT64_MAX},
	    .sport = {0, UINT64_MAX},
	    .dport = {0, UINT64_MAX},
	    .proto = -1,
	    .line = l->lineno};
	unsigned seen = 0;
	while (next(l)) {
		int k = 0;
		for (; k < NR_KEYS; k++)
			if (!(seen & (1u << k)) && (keys[k].classes & (1u << c)) &&
			    (keys[k].actions & (1u << a)) && key_is(l, (enum key)k, r))
				break;
		if (k == K_BURST && !(seen & (1u << K_OPS | 1u << K_BYTES_RATE)))
			k = NR_KEYS;
		if (k == NR_KEYS)
			return expected_key(l, r, seen);
		if (parse_key(l, r, (enum key)k))
			return -1;
		seen |= 1u << k;
		if (k == K_OPS || k == K_BYTES_RATE) /* one rate per rule */
			seen |= 1u << K_OPS | 1u << K_BYTES_RATE;
		if (k == K_DEV || k == K_NIC) /* one device */
			seen |= 1u << K_DEV | 1u << K_NIC;
	}
	return finish(l, r, seen);
}

int policy_parse(struct policy *p, const char *text, const char *file, char *err, size_t errlen)
{
	p->n = 0;
	p->classes = p->data_classes = p->dev_classes = p->limit_classes = p->vcpu_classes = 0;
	struct lexer l = {.file = file, .err = err, .errlen = errlen};
	for (const char *line = text; line;
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		l.line = l.pos = line;
		l.lineno++;
		if (!next(&l))
			continue;
		if (p->n == POLICY_MAX_RULES)
			return expected(&l, "at most %d rules", POLICY_MAX_RULES);
		struct policy_rule *r = &p->rule[p->n];
		if (parse_rule(&l, r))
			return -1;
		unsigned bit = 1u << r->cls;
		p->classes |= bit;
		if (r->ncontains || r->nbytes)
			p->data_classes |= bit;
		if (r->action == POLICY_PAUSE || r->vcpu >= 0)
			p->vcpu_classes |= bit;
		if (r->dev[0])
			p->dev_classes |= bit;
		if (r->action == POLICY_LIMIT)
			p->limit_classes |= bit;
		p->n++;
	}
	return 0;
}

int policy_load(struct policy *p, const char *path, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int rc = file_read_all(path, 1 << 20, &buf, &len, err, errlen);
	if (rc == -EFBIG)
		snprintf(err, errlen, "%s: a policy file is at most 1 MiB", path);
	if (rc)
		return -1;
	if (strlen((const char *)buf) != len) {
		snprintf(err, errlen, "%s: not a text file (it holds a NUL byte)", path);
		rc = -1;
	} else {
		rc = policy_parse(p, (const char *)buf, path, err, errlen);
	}
	free(buf);
	return rc;
}

void policy_free(struct policy *p)
{
	free(p);
}
