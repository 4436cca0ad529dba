/* The policy file grammar (docs/policy.md), one rule per line:
 *   ACTION CLASS [read|write] [port|addr|nr RANGE] [size N] [vcpu N] [value N]
 * '#' starts a comment; numbers are decimal or 0x-hex; RANGE is N or N-M. */
#include "policy/policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"

const char *const policy_class_names[NR_POLICY_CLASSES] = {"pio", "mmio", "hypercall"};
const char *const policy_action_names[NR_POLICY_ACTIONS] = {"allow",  "deny", "log",
							    "modify", "stop", "pause"};

/* The keyword naming each class's range. */
static const char *const range_words[NR_POLICY_CLASSES] = {"port", "addr", "nr"};
static const uint64_t range_max[NR_POLICY_CLASSES] = {0xffff, UINT64_MAX, UINT64_MAX};

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

/* The next token of this line; false at its end (or a comment). */
static bool next(struct lexer *l)
{
	while (*l->pos == ' ' || *l->pos == '\t' || *l->pos == '\r')
		l->pos++;
	l->tok = l->pos;
	if (!*l->pos || *l->pos == '\n' || *l->pos == '#')
		return false;
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

static int parse_range(struct lexer *l, struct policy_rule *r)
{
	const char *word = range_words[r->cls];
	uint64_t max = range_max[r->cls];
	if (!next(l))
		return expected(l, "a %s range (N or N-M)", word);
	const char *end = l->tok + l->len, *p = number(l->tok, end, &r->lo);
	r->hi = r->lo;
	if (p && p < end && *p == '-')
		p = number(p + 1, end, &r->hi);
	if (p != end || r->hi < r->lo || r->hi > max)
		return expected(l, "a %s range (N or N-M with N <= M <= %#llx)", word,
				(unsigned long long)max);
	return 0;
}

static int parse_rule(struct lexer *l, struct policy_rule *r)
{
	int a = lookup(l, policy_action_names, NR_POLICY_ACTIONS);
	if (a < 0)
		return expected(l, "an action (allow, deny, log, modify, stop or pause)");
	int c = next(l) ? lookup(l, policy_class_names, NR_POLICY_CLASSES) : -1;
	if (c < 0)
		return expected(l, "a class (pio, mmio or hypercall)");
	*r = (struct policy_rule){.action = (enum policy_action)a,
				  .cls = (enum policy_class)c,
				  .dirs = POLICY_READ | POLICY_WRITE,
				  .lo = 0,
				  .hi = UINT64_MAX,
				  .vcpu = -1,
				  .line = l->lineno};
	bool access = r->cls != POLICY_HYPERCALL, got_range = false, got_value = false;
	bool got_dir = false, got_size = false, got_vcpu = false;
	const char *range = range_words[r->cls];
	while (next(l)) {
		uint64_t v;
		if (access && !got_dir && (is(l, "read") || is(l, "write"))) {
			r->dirs = is(l, "read") ? POLICY_READ : POLICY_WRITE;
			got_dir = true;
		} else if (!got_range && is(l, range)) {
			if (parse_range(l, r))
				return -1;
			got_range = true;
		} else if (access && !got_size && is(l, "size")) {
			if (parse_number(l, &v, "an access size"))
				return -1;
			if (v != 1 && v != 2 && v != 4 && v != 8)
				return expected(l, "an access size of 1, 2, 4 or 8");
			r->sizes = 1u << v;
			got_size = true;
		} else if (!got_vcpu && is(l, "vcpu")) {
			if (parse_number(l, &v, "a vCPU index"))
				return -1;
			if (v >= 64)
				return expected(l, "a vCPU index below 64");
			r->vcpu = (int)v;
			got_vcpu = true;
		} else if (r->action == POLICY_MODIFY && !got_value && is(l, "value")) {
			if (parse_number(l, &r->value, "the value to use"))
				return -1;
			got_value = true;
		} else {
			return expected(l, "%s%s RANGE, size N, vcpu N%s or the end of the rule",
					access && !got_dir ? "read, write, " : "", range,
					r->action == POLICY_MODIFY ? ", value N" : "");
		}
	}
	if (r->action == POLICY_MODIFY && !got_value)
		return expected(l, "value N (modify needs the value to use)");
	return 0;
}

int policy_parse(struct policy *p, const char *text, const char *file, char *err, size_t errlen)
{
	p->n = 0;
	p->classes = 0;
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
		p->classes |= 1u << r->cls;
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
	if (!rc) {
		free(p->text);
		p->text = (char *)buf;
		return 0;
	}
	free(buf);
	return rc;
}

void policy_free(struct policy *p)
{
	if (p)
		free(p->text);
	free(p);
}
