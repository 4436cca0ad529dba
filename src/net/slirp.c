/* --net user: libslirp inside the VMM, no root. The guest sees QEMU's
 * addresses: network 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3 (forwarded
 * to the host's resolver), DHCP from 10.0.2.15. libslirp is not thread-safe:
 * every call runs under the backend's lock. */
#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net.h"

#define SLIRP_TIMERS 8 /* libslirp 4.7 uses two (RA, DNS) */

struct slirp_timer {
	bool used, armed;
	int64_t expire_ms;
	SlirpTimerCb cb;
	void *cb_opaque;
};

struct slirp_backend {
	struct net_backend b;
	Slirp *slirp;
	struct slirp_timer timer[SLIRP_TIMERS];
	struct net_pollset *ps; /* the round being filled or dispatched */
	unsigned base;		/* our first index in ps */
};

static int64_t clock_ns(void *opaque)
{
	(void)opaque;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_backend *s = opaque;
	s->b.deliver(s->b.ctx, buf, len);
	return (ssize_t)len;
}

static void guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "popek: user networking: the guest sent a bad packet: %s\n", msg);
}

static void *timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_backend *s = opaque;
	for (int i = 0; i < SLIRP_TIMERS; i++) {
		if (!s->timer[i].used) {
			s->timer[i] =
			    (struct slirp_timer){.used = true, .cb = cb, .cb_opaque = cb_opaque};
			return &s->timer[i];
		}
	}
	fprintf(stderr, "popek: user networking: out of timers\n");
	return NULL;
}

static void timer_free(void *timer, void *opaque)
{
	(void)opaque;
	if (timer)
		*(struct slirp_timer *)timer = (struct slirp_timer){0};
}

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	struct slirp_timer *t = timer;
	if (t) {
		t->expire_ms = expire_ms;
		t->armed = true;
	}
}

static void no_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void notify(void *opaque)
{
	struct slirp_backend *s = opaque;
	if (s->b.kick)
		s->b.kick(s->b.kick_ctx);
}

static const SlirpCb callbacks = {
    .send_packet = send_packet,
    .guest_error = guest_error,
    .clock_get_ns = clock_ns,
    .timer_new = timer_new,
    .timer_free = timer_free,
    .timer_mod = timer_mod,
    .register_poll_fd = no_fd,
    .unregister_poll_fd = no_fd,
    .notify = notify,
};

static int add_poll(int fd, int events, void *opaque)
{
	struct slirp_backend *s = opaque;
	struct net_pollset *ps = s->ps;
	if (ps->n == NET_POLL_MAX)
		return -1; /* libslirp then skips this socket for the round */
	short ev = (short)((events & SLIRP_POLL_IN ? POLLIN : 0) |
			   (events & SLIRP_POLL_OUT ? POLLOUT : 0) |
			   (events & SLIRP_POLL_PRI ? POLLPRI : 0));
	ps->fd[ps->n] = (struct pollfd){fd, ev, 0};
	return (int)(ps->n++ - s->base);
}

static int get_revents(int idx, void *opaque)
{
	struct slirp_backend *s = opaque;
	unsigned i = s->base + (unsigned)idx;
	if (idx < 0 || i >= s->ps->n)
		return 0;
	short r = s->ps->fd[i].revents;
	return (r & POLLIN ? SLIRP_POLL_IN : 0) | (r & POLLOUT ? SLIRP_POLL_OUT : 0) |
	       (r & POLLPRI ? SLIRP_POLL_PRI : 0) | (r & POLLERR ? SLIRP_POLL_ERR : 0) |
	       (r & POLLHUP ? SLIRP_POLL_HUP : 0);
}

static void s_fill(struct net_backend *b, struct net_pollset *ps, int *timeout_ms)
{
	struct slirp_backend *s = (struct slirp_backend *)b;
	s->ps = ps;
	s->base = ps->n;
	uint32_t t = *timeout_ms < 0 ? 1000 : (uint32_t)*timeout_ms;
	slirp_pollfds_fill(s->slirp, &t, add_poll, s);
	int64_t now = clock_ns(NULL) / 1000000;
	for (int i = 0; i < SLIRP_TIMERS; i++) {
		const struct slirp_timer *tm = &s->timer[i];
		if (tm->used && tm->armed) {
			int64_t left = tm->expire_ms > now ? tm->expire_ms - now : 0;
			if (left < (int64_t)t)
				t = (uint32_t)left;
		}
	}
	*timeout_ms = (int)t;
}

static void s_dispatch(struct net_backend *b, struct net_pollset *ps)
{
	struct slirp_backend *s = (struct slirp_backend *)b;
	s->ps = ps;
	slirp_pollfds_poll(s->slirp, 0, get_revents, s);
	int64_t now = clock_ns(NULL) / 1000000;
	for (int i = 0; i < SLIRP_TIMERS; i++) {
		struct slirp_timer *tm = &s->timer[i];
		if (tm->used && tm->armed && tm->expire_ms <= now) {
			tm->armed = false;
			tm->cb(tm->cb_opaque);
		}
	}
}

static void s_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	struct slirp_backend *s = (struct slirp_backend *)b;
	uint8_t frame[NET_GSO_MAX];
	size_t off = 0;
	for (unsigned i = 0; i < n && off < sizeof(frame); i++) {
		size_t k =
		    iov[i].iov_len < sizeof(frame) - off ? iov[i].iov_len : sizeof(frame) - off;
		memcpy(frame + off, iov[i].iov_base, k);
		off += k;
	}
	(void)len;
	slirp_input(s->slirp, frame, (int)off);
}

static void s_destroy(struct net_backend *b)
{
	struct slirp_backend *s = (struct slirp_backend *)b;
	slirp_cleanup(s->slirp);
	free(s);
}

static const struct net_backend_ops slirp_ops = {
    .fill = s_fill,
    .dispatch = s_dispatch,
    .send = s_send,
    .destroy = s_destroy,
};

static int add_forwards(struct slirp_backend *s, const struct net_config *nc, char *err,
			size_t errlen)
{
	for (int i = 0; i < nc->nhostfwd; i++) {
		const struct net_hostfwd *f = &nc->hostfwd[i];
		struct in_addr host = {htonl(INADDR_LOOPBACK)}, guest = {0};
		if ((f->host_addr && inet_pton(AF_INET, f->host_addr, &host) != 1) ||
		    (f->guest_addr && inet_pton(AF_INET, f->guest_addr, &guest) != 1)) {
			snprintf(err, errlen, "--net user: hostfwd: %s is not an IPv4 address",
				 f->host_addr && inet_pton(AF_INET, f->host_addr, &host) != 1
				     ? f->host_addr
				     : f->guest_addr);
			return -1;
		}
		if (slirp_add_hostfwd(s->slirp, f->udp, host, f->host_port, guest, f->guest_port) <
		    0) {
			snprintf(
			    err, errlen,
			    "--net user: cannot forward %s %s:%u to the guest: %s (is the port "
			    "in use? pick another HOSTPORT)",
			    f->udp ? "udp" : "tcp", f->host_addr ? f->host_addr : "127.0.0.1",
			    f->host_port, strerror(errno));
			return -1;
		}
	}
	return 0;
}

struct net_backend *net_slirp_open(const struct net_config *nc, char *err, size_t errlen)
{
	struct slirp_backend *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory creating user networking");
		return NULL;
	}
	SlirpConfig cfg = {
	    .version = 1,
	    .restricted = nc->restricted,
	    .in_enabled = true,
	    .vnetwork = {htonl(0x0a000200)},
	    .vnetmask = {htonl(0xffffff00)},
	    .vhost = {htonl(0x0a000202)},
	    .vhostname = "popek",
	    .vdhcp_start = {htonl(0x0a00020f)},
	    .vnameserver = {htonl(0x0a000203)},
	};
	s->slirp = slirp_new(&cfg, &callbacks, s);
	if (!s->slirp) {
		snprintf(err, errlen, "libslirp could not start user networking");
		free(s);
		return NULL;
	}
	if (add_forwards(s, nc, err, errlen) < 0) {
		slirp_cleanup(s->slirp);
		free(s);
		return NULL;
	}
	s->b.ops = &slirp_ops;
	return &s->b;
}
