/* --net socket=PATH: a port of the `popek switch` (or any peer speaking
 * QEMU's stream framing) listening on the Unix socket PATH. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/net.h"
#include "net/stream.h"

struct socket_backend {
	struct net_backend b;
	struct stream st;
	const char *path;
	unsigned idx; /* our slot in the poll round */
	bool dead;
};

static void k_fill(struct net_backend *b, struct net_pollset *ps, int *timeout_ms)
{
	struct socket_backend *s = (struct socket_backend *)b;
	(void)timeout_ms;
	if (s->dead)
		return;
	short ev = (short)(POLLIN | (s->st.out_len ? POLLOUT : 0));
	s->idx = ps->n;
	ps->fd[ps->n++] = (struct pollfd){s->st.fd, ev, 0};
}

static void received(void *ctx, const uint8_t *frame, size_t len)
{
	struct socket_backend *s = ctx;
	s->b.deliver(s->b.ctx, frame, len);
}

static void k_dispatch(struct net_backend *b, struct net_pollset *ps)
{
	struct socket_backend *s = (struct socket_backend *)b;
	if (s->dead)
		return;
	short r = ps->fd[s->idx].revents;
	if (r & POLLOUT)
		stream_flush(&s->st);
	if ((r & (POLLIN | POLLHUP | POLLERR)) && stream_read(&s->st, received, s) < 0) {
		/* The link goes down for good: the guest sees no more frames. */
		fprintf(stderr,
			"popek: --net socket=%s: the switch went away or broke the framing\n",
			s->path);
		s->dead = true;
	}
}

static void k_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	struct socket_backend *s = (struct socket_backend *)b;
	if (!s->dead)
		stream_send(&s->st, iov, n, len);
}

static void k_destroy(struct net_backend *b)
{
	struct socket_backend *s = (struct socket_backend *)b;
	close(s->st.fd);
	free(s);
}

static const struct net_backend_ops socket_ops = {
    .fill = k_fill,
    .dispatch = k_dispatch,
    .send = k_send,
    .destroy = k_destroy,
};

struct net_backend *net_socket_open(const struct net_config *nc, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(nc->target) >= sizeof(a.sun_path)) {
		snprintf(err, errlen, "--net socket=%s: the path is too long for a Unix socket",
			 nc->target);
		return NULL;
	}
	strcpy(a.sun_path, nc->target);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(err, errlen,
			 "--net socket=%s: cannot connect: %s (start the switch first: popek "
			 "switch %s)",
			 nc->target, strerror(errno), nc->target);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct socket_backend *s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	s->st.fd = fd;
	s->path = nc->target;
	s->b.ops = &socket_ops;
	return &s->b;
}
