#include "oci/frame.h"

#include <stdio.h>
#include <string.h>

static const char *const type_names[FRAME_NTYPES] = {
    [FRAME_MOUNT] = "MOUNT",   [FRAME_BOOTED] = "BOOTED", [FRAME_HOST] = "HOST",
    [FRAME_BIND] = "BIND",     [FRAME_TMPFS] = "TMPFS",	  [FRAME_ARG] = "ARG",
    [FRAME_ENV] = "ENV",       [FRAME_CWD] = "CWD",	  [FRAME_USER] = "USER",
    [FRAME_GROUP] = "GROUP",   [FRAME_RLIM] = "RLIM",	  [FRAME_TTY] = "TTY",
    [FRAME_START] = "START",   [FRAME_IN] = "IN",	  [FRAME_SIG] = "SIG",
    [FRAME_WINCH] = "WINCH",   [FRAME_READY] = "READY",	  [FRAME_STARTED] = "STARTED",
    [FRAME_OUT] = "OUT",       [FRAME_EXIT] = "EXIT",	  [FRAME_ERROR] = "ERROR",
    [FRAME_UMOUNT] = "UMOUNT", [FRAME_NET] = "NET",
};

static const char magic[] = "@PK ";

const char *frame_type_name(enum frame_type type)
{
	return type < FRAME_NTYPES ? type_names[type] : "?";
}

/* One space-terminated field starting at *p (not past end). */
static bool field(const char **p, const char *end, const char **start, size_t *n)
{
	*start = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*n = (size_t)(*p - *start);
	if (*p < end)
		(*p)++; /* the space */
	return *n > 0;
}

static bool parse_int(const char *s, size_t n, bool sign, int64_t min, int64_t max, int64_t *out)
{
	bool neg = false;
	if (sign && n > 0 && s[0] == '-') {
		neg = true;
		s++;
		n--;
	}
	if (n == 0 || n > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return false;
	int64_t r = neg ? -(int64_t)v : (int64_t)v;
	if (r < min || r > max)
		return false;
	*out = r;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

enum frame_parse_result frame_parse(const char *line, size_t len, struct frame *f)
{
	size_t ml = sizeof(magic) - 1;
	if (len < ml || memcmp(line, magic, ml))
		return FRAME_NOISE;
	const char *p = line + ml, *end = line + len, *s;
	size_t n;
	if (!field(&p, end, &s, &n))
		return FRAME_BAD;
	int t = -1;
	for (int i = 0; i < FRAME_NTYPES; i++)
		if (strlen(type_names[i]) == n && !memcmp(type_names[i], s, n))
			t = i;
	if (t < 0)
		return FRAME_BAD;
	f->type = (enum frame_type)t;
	int64_t v[4];
	for (int i = 0; i < 4; i++) {
		if (!field(&p, end, &s, &n) || !parse_int(s, n, i > 0, i ? INT64_MIN + 1 : 0,
							  i ? INT64_MAX : UINT32_MAX, &v[i]))
			return FRAME_BAD;
	}
	f->id = (uint32_t)v[0];
	f->a = v[1];
	f->b = v[2];
	f->c = v[3];
	if (!field(&p, end, &s, &n) || p != end)
		return FRAME_BAD;
	f->len = 0;
	if (!(n == 1 && s[0] == '-')) {
		if (n % 2 || n / 2 > FRAME_DATA_MAX)
			return FRAME_BAD;
		for (size_t i = 0; i < n; i += 2) {
			int hi = hexval(s[i]), lo = hexval(s[i + 1]);
			if (hi < 0 || lo < 0)
				return FRAME_BAD;
			f->data[f->len++] = (uint8_t)(hi << 4 | lo);
		}
	}
	f->data[f->len] = 0;
	return FRAME_OK;
}

size_t frame_format(char *out, enum frame_type type, uint32_t id, int64_t a, int64_t b, int64_t c,
		    const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	int n = snprintf(out, FRAME_LINE_MAX, "%s%s %u %lld %lld %lld ", magic,
			 frame_type_name(type), id, (long long)a, (long long)b, (long long)c);
	size_t o = (size_t)n;
	const uint8_t *d = data;
	if (len > FRAME_DATA_MAX)
		len = FRAME_DATA_MAX;
	if (!len)
		out[o++] = '-';
	for (size_t i = 0; i < len; i++) {
		out[o++] = digits[d[i] >> 4];
		out[o++] = digits[d[i] & 15];
	}
	out[o++] = '\n';
	return o;
}

int line_reader_feed(struct line_reader *r, const void *bytes, size_t n,
		     int (*fn)(void *ctx, const char *line, size_t len), void *ctx)
{
	const char *b = bytes;
	for (size_t i = 0; i < n; i++) {
		char ch = b[i];
		if (ch == '\n') {
			bool drop = r->overlong;
			size_t len = r->len;
			r->len = 0;
			r->overlong = false;
			if (len && r->buf[len - 1] == '\r')
				len--; /* a terminal's line discipline may add one */
			if (!drop) {
				r->buf[len] = 0;
				int rc = fn(ctx, r->buf, len);
				if (rc)
					return rc;
			}
		} else if (r->len < FRAME_LINE_MAX) {
			r->buf[r->len++] = ch;
		} else {
			r->overlong = true;
		}
	}
	return 0;
}
