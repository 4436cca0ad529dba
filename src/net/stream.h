/* QEMU's -netdev stream framing: each Ethernet frame is preceded by its
 * length as a 4-byte big-endian number. Used by --net socket= and by
 * `popek switch`, over non-blocking stream sockets: a peer that does not keep
 * up loses frames (as a wire would), it never blocks the sender. */
#ifndef POPEK_NET_STREAM_H
#define POPEK_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "net/net.h"

#define STREAM_BUF (4 + NET_GSO_MAX)

struct stream {
	int fd;
	uint8_t in[STREAM_BUF];
	size_t in_len;
	uint8_t out[STREAM_BUF];
	size_t out_len, out_off; /* a frame the socket took only part of */
};

/* Queue one frame; false if it was dropped (previous frame still pending,
 * or too long). */
bool stream_send(struct stream *s, const struct iovec *iov, unsigned n, size_t len);
/* Write what is pending; true while something still is (poll for POLLOUT). */
bool stream_flush(struct stream *s);
/* Read what the socket has and hand each whole frame to fn. Returns -1 when
 * the peer closed or broke the framing (a length of 0 or over NET_GSO_MAX). */
int stream_read(struct stream *s, void (*fn)(void *ctx, const uint8_t *frame, size_t len),
		void *ctx);

#endif
