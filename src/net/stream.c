#include "net/stream.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

bool stream_flush(struct stream *s)
{
	while (s->out_off < s->out_len) {
		ssize_t w = write(s->fd, s->out + s->out_off, s->out_len - s->out_off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w < 0 && errno != EAGAIN)
				s->out_off = s->out_len; /* a dead peer: reading notices it */
			break;
		}
		s->out_off += (size_t)w;
	}
	if (s->out_off == s->out_len)
		s->out_len = s->out_off = 0;
	return s->out_len != 0;
}

bool stream_send(struct stream *s, const struct iovec *iov, unsigned n, size_t len)
{
	if (s->out_len || len == 0 || len > NET_GSO_MAX)
		return false;
	uint8_t *p = s->out;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	size_t off = 4;
	for (unsigned i = 0; i < n && off < 4 + len; i++) {
		size_t k = iov[i].iov_len < 4 + len - off ? iov[i].iov_len : 4 + len - off;
		memcpy(p + off, iov[i].iov_base, k);
		off += k;
	}
	s->out_len = off;
	stream_flush(s);
	return true;
}

int stream_read(struct stream *s, void (*fn)(void *ctx, const uint8_t *frame, size_t len),
		void *ctx)
{
	for (;;) {
		ssize_t r = read(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0)
			return -1;
		s->in_len += (size_t)r;
		size_t off = 0;
		while (s->in_len - off >= 4) {
			const uint8_t *p = s->in + off;
			size_t len =
			    (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
			if (len == 0 || len > NET_GSO_MAX)
				return -1;
			if (s->in_len - off < 4 + len)
				break;
			fn(ctx, p + 4, len);
			off += 4 + len;
		}
		memmove(s->in, s->in + off, s->in_len - off);
		s->in_len -= off;
	}
}
