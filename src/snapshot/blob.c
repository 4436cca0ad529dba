#include "snapshot/blob.h"

#include <stdlib.h>
#include <string.h>

static bool reserve(struct blob *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + n)
		cap *= 2;
	uint8_t *nb = realloc(b->buf, cap);
	if (!nb) {
		b->oom = true;
		return false;
	}
	b->buf = nb;
	b->cap = cap;
	return true;
}

void blob_put_bytes(struct blob *b, const void *p, size_t n)
{
	if (n && reserve(b, n)) {
		memcpy(b->buf + b->len, p, n);
		b->len += n;
	}
}

static void put_le(struct blob *b, uint64_t v, int n)
{
	uint8_t t[8];
	for (int i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	blob_put_bytes(b, t, (size_t)n);
}

void blob_put8(struct blob *b, uint8_t v)
{
	put_le(b, v, 1);
}

void blob_put16(struct blob *b, uint16_t v)
{
	put_le(b, v, 2);
}

void blob_put32(struct blob *b, uint32_t v)
{
	put_le(b, v, 4);
}

void blob_put64(struct blob *b, uint64_t v)
{
	put_le(b, v, 8);
}

void blob_free(struct blob *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

const uint8_t *rd_view(struct reader *r, size_t n)
{
	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static uint64_t get_le(struct reader *r, int n)
{
	const uint8_t *p = rd_view(r, (size_t)n);
	uint64_t v = 0;
	for (int i = 0; p && i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t rd_get8(struct reader *r)
{
	return (uint8_t)get_le(r, 1);
}

uint16_t rd_get16(struct reader *r)
{
	return (uint16_t)get_le(r, 2);
}

uint32_t rd_get32(struct reader *r)
{
	return (uint32_t)get_le(r, 4);
}

uint64_t rd_get64(struct reader *r)
{
	return get_le(r, 8);
}

void rd_get_bytes(struct reader *r, void *dst, size_t n)
{
	const uint8_t *p = rd_view(r, n);
	if (p)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}
