/* --net user: libslirp inside the VMM, no root. The guest sees QEMU's
 * addresses: network 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3 (forwarded
 * to the host's resolver), DHCP from 10.0.2.15; and IPv6 fd00::/64 with the
 * host at fd00::2 and DNS at fd00::3. libslirp is not thread-safe:
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
	/* An ACK that opened the guest's window lets libslirp read its host
	 * socket again, which it asks for only in the next round's fds: no
	 * waiting for the round's timeout. */
	if (s->b.kick)
		s->b.kick(s->b.kick_ctx);
}

/* libslirp's own state (slirp_state_save): its DHCP lease table and IP id.
 * It records connections only for guestfwd sockets, whose far end is inside
 * the VMM; popek has none, and the guest's connections to the outside are
 * host kernel sockets of the old process, gone with it. */
static ssize_t state_put(const void *buf, size_t len, void *opaque)
{
	blob_put_bytes(opaque, buf, len);
	return (ssize_t)len;
}

static ssize_t state_get(void *buf, size_t len, void *opaque)
{
	struct reader *r = opaque;
	rd_get_bytes(r, buf, len);
	return r->bad ? -1 : (ssize_t)len;
}

static void s_save(struct net_backend *b, struct blob *out)
{
	struct slirp_backend *s = (struct slirp_backend *)b;
	blob_put32(out, (uint32_t)slirp_state_version());
	slirp_state_save(s->slirp, state_put, out);
}

static int s_load(struct net_backend *b, struct reader *in)
{
	struct slirp_backend *s = (struct slirp_backend *)b;
	uint32_t version = rd_get32(in);
	if (!in->bad && version != (uint32_t)slirp_state_version()) {
		fprintf(
		    stderr,
		    "popek: user networking: the snapshot holds libslirp state version %u, this "
		    "libslirp reads %d: restore with the libslirp that saved it\n",
		    version, slirp_state_version());
		return -1;
	}
	/* A record of ours has no socket entries (first byte 0) and the size
	 * of any save of this libslirp: nothing else reaches libslirp, whose
	 * loader would allocate socket buffers of sizes the file gives. */
	struct blob fresh = {0};
	slirp_state_save(s->slirp, state_put, &fresh);
	size_t n = fresh.oom ? 0 : fresh.len;
	blob_free(&fresh);
	const uint8_t *p = rd_view(in, n);
	if (!n || !p || in->left || p[0] != 0)
		return -1;
	struct reader r = {p, n, false};
	return slirp_state_load(s->slirp, (int)version, state_get, &r) < 0 || r.left ? -1 : 0;
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
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};

/* A hostfwd address, IPv4 or IPv6, into ss with the port. */
static int fwd_addr(const char *text, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

/* The address a Linux guest autoconfigures from our prefix: fd00:: and the
 * EUI-64 of its MAC (libslirp has no stateful DHCPv6 to ask). */
static void slaac_addr(const uint8_t mac[6], char *out, size_t len)
{
	snprintf(out, len, "fd00::%02x%02x:%02xff:fe%02x:%02x%02x", mac[0] ^ 2, mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
}

/* One hostfwd: the host side defaults to 127.0.0.1; the guest side to its
 * address of the host side's family (libslirp does not forward across
 * families): 10.0.2.15 (DHCP's first), or the autoconfigured IPv6 one. */
static int add_forward(struct slirp_backend *s, const struct net_hostfwd *f, const uint8_t mac[6],
		       char *err, size_t errlen)
{
	const char *haddr = f->host_addr ? f->host_addr : "127.0.0.1";
	struct sockaddr_storage host, guest;
	socklen_t hlen, glen;
	if (fwd_addr(haddr, f->host_port, &host, &hlen) < 0) {
		snprintf(err, errlen,
			 "--net user: hostfwd: %s is not an IPv4 or IPv6 address (IPv6 goes in "
			 "brackets: [::1]:8080)",
			 haddr);
		return -1;
	}
	char slaac[48];
	slaac_addr(mac, slaac, sizeof(slaac));
	const char *gaddr = f->guest_addr		 ? f->guest_addr
			    : host.ss_family == AF_INET6 ? slaac
							 : "10.0.2.15";
	if (fwd_addr(gaddr, f->guest_port, &guest, &glen) < 0 ||
	    guest.ss_family != host.ss_family) {
		snprintf(
		    err, errlen,
		    "--net user: hostfwd: guest address %s is not an %s address (libslirp "
		    "forwards IPv4 to IPv4 and IPv6 to IPv6; leave it out for the guest's own)",
		    gaddr, host.ss_family == AF_INET6 ? "IPv6" : "IPv4");
		return -1;
	}
	int flags = (f->udp ? SLIRP_HOSTFWD_UDP : 0) |
		    (host.ss_family == AF_INET6 ? SLIRP_HOSTFWD_V6ONLY : 0);
	if (slirp_add_hostxfwd(s->slirp, (struct sockaddr *)&host, hlen, (struct sockaddr *)&guest,
			       glen, flags) < 0) {
		snprintf(
		    err, errlen,
		    "--net user: cannot forward %s %s:%u to the guest: %s (is the port in use? "
		    "pick another HOSTPORT)",
		    f->udp ? "udp" : "tcp", haddr, f->host_port, strerror(errno));
		return -1;
	}
	return 0;
}

struct net_backend *net_slirp_open(const struct net_config *nc, const uint8_t mac[6], char *err,
				   size_t errlen)
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
	    /* QEMU's IPv6 defaults: prefix fd00::/64 (router advertisements
	     * from libslirp, so the guest autoconfigures), host fd00::2 (the
	     * host's ::1), DNS fd00::3. */
	    .in6_enabled = true,
	    .vprefix_addr6 = {{{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}},
	    .vprefix_len = 64,
	    .vhost6 = {{{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}}},
	    .vnameserver6 = {{{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}}},
	    .if_mtu = NET_BIG_MTU,
	    .if_mru = NET_BIG_MTU,
	};
	s->slirp = slirp_new(&cfg, &callbacks, s);
	if (!s->slirp) {
		snprintf(err, errlen, "libslirp could not start user networking");
		free(s);
		return NULL;
	}
	for (int i = 0; i < nc->nhostfwd; i++) {
		if (add_forward(s, &nc->hostfwd[i], mac, err, errlen) < 0) {
			slirp_cleanup(s->slirp);
			free(s);
			return NULL;
		}
	}
	s->b.ops = &slirp_ops;
	s->b.big_mtu = true;
	return &s->b;
}
