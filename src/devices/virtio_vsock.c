#include "devices/virtio_vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/vsock_uds.h"
#include "snapshot/blob.h"

#define RXQ 0
#define TXQ 1
#define EVQ 2

#define HOST_CID   2
#define QUEUE_SIZE 256
#define HDR_LEN	   44
/* The biggest payload a packet may carry (Linux's own limit). */
#define MAX_PKT (64u << 10)
/* The buf_alloc we give the guest: the most of its data we ever hold for one
 * connection whose host side does not read. */
#define CONN_BUF  (256u << 10)
#define MAX_CONNS 128
/* RSTs for connections that no longer exist, waiting for receive buffers;
 * more are dropped (the guest's connect or close then times out). */
#define RST_RING	256
#define CONNECT_MAX	32
#define FIRST_HOST_PORT (1u << 30)
#define STATE_VERSION	1

enum {
	OP_REQUEST = 1,
	OP_RESPONSE,
	OP_RST,
	OP_SHUTDOWN,
	OP_RW,
	OP_CREDIT_UPDATE,
	OP_CREDIT_REQUEST,
};
#define TYPE_STREAM	      1
#define SHUT_RCV	      1 /* the sender will receive no more */
#define SHUT_SEND	      2 /* the sender will send no more */
#define EVENT_TRANSPORT_RESET 0

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == HDR_LEN, "virtio_vsock_hdr is 44 bytes");

enum conn_state {
	CONN_LINE,	 /* a host program connected; its CONNECT line is coming */
	CONN_CONNECTING, /* REQUEST owed or sent to the guest, no answer yet */
	CONN_OPEN,
};

/* Control packets a connection owes the guest, sent as receive buffers come. */
#define OWE_REQUEST  1u
#define OWE_RESPONSE 2u
#define OWE_SHUTDOWN 4u /* SHUT_SEND: the host side sent its last byte */
#define OWE_CREDIT   8u

struct conn {
	struct virtio_vsock *v;
	int fd;
	struct loop_watch *w;
	unsigned events; /* what w watches now */
	enum conn_state state;
	uint32_t gport, hport; /* the guest's port, the host side's */
	unsigned owe;
	char line[CONNECT_MAX];
	unsigned linelen;
	/* host → guest: the guest's credit */
	uint32_t peer_alloc, peer_fwd, sent;
	bool host_eof;
	/* guest → host: what we received, forwarded and last told the guest */
	uint32_t recvd, fwd, fwd_told;
	uint32_t peer_shut;
	bool wr_shut; /* the host socket's write side is shut */
	uint8_t *buf; /* ring of CONN_BUF bytes not yet taken by the host socket */
	uint32_t head, len;
	bool dead; /* killed: waits on v->dead to be freed */
	struct conn *next_dead;
};

struct rst {
	uint32_t gport, hport;
};

struct virtio_vsock {
	struct virtio_pci vp; /* first: the registry's save/load see the transport */
	struct loop *loop;
	uint64_t config_cid; /* struct virtio_vsock_config */
	uint64_t cid;
	struct vsock_uds uds;  /* lfd -1: no host side */
	struct loop_watch *lw; /* the listener's */
	struct conn *conns[MAX_CONNS];
	unsigned nconns;
	struct rst rst[RST_RING];
	unsigned rst_head, rst_count;
	bool rx_full;	/* no receive buffer: hosts wait until the driver adds some */
	bool owe_reset; /* a TRANSPORT_RESET event for the event queue */
	uint32_t next_port;
	struct conn *dead; /* closed, for the loop thread to free */
	bool reap_posted;
	struct vq_chain chain; /* receive scratch */
};

/* ---- connections: the table, watches, teardown ---- */

static struct conn *conn_find(struct virtio_vsock *v, uint32_t gport, uint32_t hport)
{
	for (unsigned i = 0; i < v->nconns; i++)
		if (v->conns[i]->gport == gport && v->conns[i]->hport == hport &&
		    v->conns[i]->state != CONN_LINE)
			return v->conns[i];
	return NULL;
}

static uint32_t credit(const struct conn *c)
{
	uint32_t in_flight = c->sent - c->peer_fwd;
	return in_flight < c->peer_alloc ? c->peer_alloc - in_flight : 0;
}

/* Read the host socket only while the guest can take what we read. */
static bool readable(const struct conn *c)
{
	return c->state == CONN_OPEN && !c->host_eof && !(c->peer_shut & SHUT_RCV) &&
	       !(c->owe & OWE_RESPONSE) && credit(c) && !c->v->rx_full;
}

static void conn_watch(struct conn *c)
{
	unsigned ev = c->state == CONN_LINE ? LOOP_IN
		      : c->state == CONN_OPEN
			  ? (readable(c) ? LOOP_IN : 0) | (c->len ? LOOP_OUT : 0)
			  : 0;
	if (c->w && ev != c->events && loop_watch_events(c->w, ev) == 0)
		c->events = ev;
}

static void watch_all(struct virtio_vsock *v)
{
	for (unsigned i = 0; i < v->nconns; i++)
		conn_watch(v->conns[i]);
}

static void free_dead(struct conn *d)
{
	while (d) {
		struct conn *next = d->next_dead;
		loop_unwatch(d->w);
		close(d->fd);
		free(d->buf);
		free(d);
		d = next;
	}
}

/* Without a loop (fuzzing) nothing else frees them. */
static void free_dead_now(struct virtio_vsock *v)
{
	if (!v->loop) {
		free_dead(v->dead);
		v->dead = NULL;
	}
}

/* On the loop thread, where unwatching never waits for a callback that
 * waits for our lock. */
static void reap(void *arg)
{
	struct virtio_vsock *v = arg;
	pthread_mutex_lock(&v->vp.lock);
	struct conn *d = v->dead;
	v->dead = NULL;
	v->reap_posted = false;
	pthread_mutex_unlock(&v->vp.lock);
	free_dead(d);
}

static void queue_rst(struct virtio_vsock *v, uint32_t gport, uint32_t hport)
{
	if (v->rst_count == RST_RING)
		return;
	v->rst[(v->rst_head + v->rst_count++) % RST_RING] = (struct rst){gport, hport};
}

/* Forget c (telling the guest with an RST if it knows c); it is freed later
 * (on the loop thread), so callers may still look at c->dead. */
static void conn_kill(struct conn *c, bool rst)
{
	struct virtio_vsock *v = c->v;
	if (c->dead)
		return;
	c->dead = true;
	for (unsigned i = 0; i < v->nconns; i++)
		if (v->conns[i] == c) {
			v->conns[i] = v->conns[--v->nconns];
			break;
		}
	if (rst && c->state != CONN_LINE)
		queue_rst(v, c->gport, c->hport);
	if (c->w)
		loop_watch_events(c->w, 0);
	c->events = 0;
	c->next_dead = v->dead;
	v->dead = c;
	if (!v->reap_posted && v->loop && loop_post(v->loop, reap, v) == 0)
		v->reap_posted = true;
}

static void kill_all(struct virtio_vsock *v)
{
	while (v->nconns)
		conn_kill(v->conns[0], false);
	v->rst_count = 0;
	v->rx_full = false;
}

static void conn_ready(void *ctx, unsigned ready);

/* A connection on fd (closed if there cannot be one). */
static struct conn *conn_new(struct virtio_vsock *v, int fd, enum conn_state st)
{
	struct conn *c = v->nconns < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		close(fd);
		return NULL;
	}
	*c = (struct conn){.v = v, .fd = fd, .state = st};
	if (v->loop && !(c->w = loop_watch(v->loop, fd, 0, LOOP_DEVICE, conn_ready, c))) {
		close(fd);
		free(c);
		return NULL;
	}
	v->conns[v->nconns++] = c;
	return c;
}

static void host_say(struct conn *c, const char *fmt, uint32_t n)
{
	char msg[64];
	int len = snprintf(msg, sizeof(msg), fmt, n);
	/* A fresh socket's buffer has room for a line: no need to queue it. */
	if (send(c->fd, msg, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && c->state == CONN_OPEN)
		conn_kill(c, true);
}

/* ---- to the guest ---- */

static void fill_hdr(struct virtio_vsock *v, struct vsock_hdr *h, uint32_t gport, uint32_t hport,
		     uint16_t op)
{
	*h = (struct vsock_hdr){.src_cid = HOST_CID,
				.dst_cid = v->cid,
				.src_port = hport,
				.dst_port = gport,
				.type = TYPE_STREAM,
				.op = op};
}

/* The next receive buffer in v->chain: 1, 0 if there is none (hosts wait for
 * the driver), -1 if the driver broke the ring. */
static int rx_pop(struct virtio_vsock *v)
{
	struct virtio_pci *vp = &v->vp;
	if (v->rx_full || !virtio_pci_live(vp) || !vp->vq[RXQ].enabled)
		return 0;
	int r = virtq_pop(&vp->vq[RXQ], &v->chain);
	/* Receive buffers are device-writable, with room for a header and data
	 * (one that fits no data would stall the stream it came to). */
	if (r > 0 && (v->chain.nread || v->chain.write_len <= HDR_LEN))
		r = -1;
	if (r < 0)
		virtio_pci_fail(vp);
	if (r == 0)
		v->rx_full = true;
	return r;
}

/* Finish the popped buffer with header h (and h->len payload bytes already in
 * place); a connection's packet carries its credit for the guest. */
static void rx_push(struct virtio_vsock *v, struct vsock_hdr *h, struct conn *c)
{
	if (c) {
		h->buf_alloc = CONN_BUF;
		h->fwd_cnt = c->fwd_told = c->fwd;
	}
	vq_chain_write(&v->chain, 0, h, HDR_LEN);
	virtq_push(&v->vp.vq[RXQ], v->chain.head, HDR_LEN + h->len);
}

static bool send_owed(struct virtio_vsock *v, struct conn *c)
{
	static const struct {
		unsigned bit;
		uint16_t op;
	} order[] = {{OWE_REQUEST, OP_REQUEST},
		     {OWE_RESPONSE, OP_RESPONSE},
		     {OWE_SHUTDOWN, OP_SHUTDOWN},
		     {OWE_CREDIT, OP_CREDIT_UPDATE}};
	bool any = false;
	for (unsigned i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(c->owe & order[i].bit))
			continue;
		if (rx_pop(v) <= 0)
			break;
		struct vsock_hdr h;
		fill_hdr(v, &h, c->gport, c->hport, order[i].op);
		h.flags = order[i].op == OP_SHUTDOWN ? SHUT_SEND : 0;
		rx_push(v, &h, c);
		c->owe &= ~(order[i].bit | OWE_CREDIT); /* every packet updates credit */
		any = true;
	}
	return any;
}

/* Control packets before data: RSTs of gone connections, then what each
 * connection owes. */
static void rx_pump(struct virtio_vsock *v)
{
	bool any = false;
	while (v->rst_count && rx_pop(v) > 0) {
		struct rst r = v->rst[v->rst_head];
		v->rst_head = (v->rst_head + 1) % RST_RING;
		v->rst_count--;
		struct vsock_hdr h;
		fill_hdr(v, &h, r.gport, r.hport, OP_RST);
		rx_push(v, &h, NULL);
		any = true;
	}
	for (unsigned i = 0; i < v->nconns; i++)
		any |= send_owed(v, v->conns[i]);
	if (any)
		virtio_pci_used(&v->vp, RXQ);
}

static void send_reset_event(struct virtio_vsock *v)
{
	struct virtio_pci *vp = &v->vp;
	struct vq_chain *c = &v->chain;
	if (!v->owe_reset || !virtio_pci_live(vp) || !vp->vq[EVQ].enabled)
		return;
	int r = virtq_pop(&vp->vq[EVQ], c);
	if (r > 0 && (c->nread || c->write_len < 4))
		r = -1;
	if (r < 0)
		virtio_pci_fail(vp);
	if (r <= 0)
		return;
	uint32_t id = EVENT_TRANSPORT_RESET;
	vq_chain_write(c, 0, &id, sizeof(id));
	virtq_push(&vp->vq[EVQ], c->head, sizeof(id));
	virtio_pci_used(vp, EVQ);
	v->owe_reset = false;
}

/* ---- the host sockets ---- */

/* Both sides are done with the stream: close it (the guest learns by RST). */
static void check_done(struct conn *c)
{
	if (c->len || !(c->peer_shut & SHUT_SEND))
		return;
	if (!c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
	if (c->host_eof || (c->peer_shut & SHUT_RCV))
		conn_kill(c, true);
}

/* Tell the guest about the room it has again, before it runs dry. */
static void maybe_credit(struct conn *c)
{
	if (c->fwd - c->fwd_told >= CONN_BUF / 4)
		c->owe |= OWE_CREDIT;
}

/* Host socket → guest, as far as credit and receive buffers go. */
static void host_read(struct conn *c)
{
	struct virtio_vsock *v = c->v;
	struct iovec iov[VQ_MAX_SIZE];
	bool any = false;
	while (readable(c) && rx_pop(v) > 0) {
		struct vq_chain *ch = &v->chain;
		uint64_t room = ch->write_len - HDR_LEN, cr = credit(c);
		uint64_t want = room < cr ? room : cr;
		want = want < MAX_PKT ? want : MAX_PKT;
		unsigned k = iov_slice(ch->iov, ch->nwrite, HDR_LEN, want, iov);
		ssize_t n = readv(c->fd, iov, (int)k);
		if (n <= 0) {
			v->vp.vq[RXQ].last_avail--; /* unused: the driver still owns it */
			if (n == 0) {
				c->host_eof = true;
				c->owe |= OWE_SHUTDOWN;
			} else if (errno != EAGAIN && errno != EINTR) {
				conn_kill(c, true);
				break;
			}
			break;
		}
		struct vsock_hdr h;
		fill_hdr(v, &h, c->gport, c->hport, OP_RW);
		h.len = (uint32_t)n;
		rx_push(v, &h, c);
		c->sent += (uint32_t)n;
		any = true;
	}
	if (any)
		virtio_pci_used(&v->vp, RXQ);
}

/* Buffered guest data → host socket. */
static int flush(struct conn *c)
{
	while (c->len) {
		uint32_t first = CONN_BUF - c->head < c->len ? CONN_BUF - c->head : c->len;
		struct iovec iov[2] = {{c->buf + c->head, first}, {c->buf, c->len - first}};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = c->len > first ? 2 : 1};
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->head = (c->head + (uint32_t)n) % CONN_BUF;
		c->len -= (uint32_t)n;
		c->fwd += (uint32_t)n;
	}
	free(c->buf);
	c->buf = NULL;
	c->head = 0;
	return 0;
}

static void line_read(struct conn *c);

static void conn_ready(void *ctx, unsigned ready)
{
	struct conn *c = ctx;
	struct virtio_vsock *v = c->v;
	pthread_mutex_lock(&v->vp.lock);
	if (!c->dead && c->state == CONN_LINE) {
		line_read(c);
	} else if (!c->dead) {
		if (flush(c) < 0) {
			conn_kill(c, true);
		} else {
			maybe_credit(c);
			host_read(c);
			if (!c->dead)
				check_done(c);
			if (!c->dead)
				conn_watch(c);
		}
		rx_pump(v);
	}
	pthread_mutex_unlock(&v->vp.lock);
}

static uint32_t new_host_port(struct virtio_vsock *v, uint32_t gport)
{
	uint32_t p;
	do
		p = v->next_port++ | FIRST_HOST_PORT;
	while (conn_find(v, gport, p));
	return p;
}

/* "CONNECT PORT\n", read without taking a byte of the stream behind it. */
static void line_read(struct conn *c)
{
	char peek[CONNECT_MAX];
	ssize_t n = recv(c->fd, peek, CONNECT_MAX - c->linelen, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_kill(c, false);
		return;
	}
	char *nl = memchr(peek, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
	if (recv(c->fd, c->line + c->linelen, take, MSG_DONTWAIT) != (ssize_t)take) {
		conn_kill(c, false);
		return;
	}
	c->linelen += (unsigned)take;
	if (!nl && c->linelen < CONNECT_MAX)
		return;
	c->line[c->linelen - 1] = 0;
	uint32_t port;
	if (!nl || vsock_uds_parse_connect(c->line, &port) < 0) {
		host_say(c, "ERR expected CONNECT PORT\n", 0);
		conn_kill(c, false);
		return;
	}
	if (!virtio_pci_live(&c->v->vp)) {
		host_say(c, "ERR the guest has no vsock driver running\n", 0);
		conn_kill(c, false);
		return;
	}
	c->gport = port;
	c->hport = new_host_port(c->v, c->gport);
	c->state = CONN_CONNECTING;
	c->owe = OWE_REQUEST;
	conn_watch(c);
	rx_pump(c->v);
}

void virtio_vsock_host_connect(struct virtio_vsock *v, int fd)
{
	static const char full[] = "ERR too many vsock connections\n";
	pthread_mutex_lock(&v->vp.lock);
	if (v->nconns == MAX_CONNS &&
	    send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		errno = 0; /* closed below either way */
	struct conn *c = conn_new(v, fd, CONN_LINE);
	if (c)
		conn_watch(c);
	pthread_mutex_unlock(&v->vp.lock);
}

void virtio_vsock_poll(struct virtio_vsock *v)
{
	struct conn *all[MAX_CONNS];
	pthread_mutex_lock(&v->vp.lock);
	unsigned n = v->nconns;
	memcpy(all, v->conns, n * sizeof(all[0]));
	pthread_mutex_unlock(&v->vp.lock);
	/* Killed ones stay allocated (on v->dead) until the end. */
	for (unsigned i = 0; i < n; i++)
		conn_ready(all[i], LOOP_IN | LOOP_OUT);
	pthread_mutex_lock(&v->vp.lock);
	free_dead_now(v);
	pthread_mutex_unlock(&v->vp.lock);
}

static void listener_ready(void *ctx, unsigned ready)
{
	struct virtio_vsock *v = ctx;
	int fd;
	while ((fd = accept4(v->uds.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		virtio_vsock_host_connect(v, fd);
}

/* A guest REQUEST to the host's port: connect PATH_PORT. */
static void guest_connect(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	int fd = v->nconns < MAX_CONNS ? vsock_uds_connect(&v->uds, h->dst_port) : -1;
	struct conn *c = fd >= 0 ? conn_new(v, fd, CONN_OPEN) : NULL;
	if (!c) {
		queue_rst(v, h->src_port, h->dst_port); /* no such listener: refused */
		return;
	}
	c->gport = h->src_port;
	c->hport = h->dst_port;
	c->peer_alloc = h->buf_alloc;
	c->peer_fwd = h->fwd_cnt;
	c->owe = OWE_RESPONSE;
}

/* ---- from the guest ---- */

/* Guest data for the host socket: straight from the guest's buffers if the
 * socket takes it, else into the connection's buffer (never more than the
 * credit we gave, or the guest broke the rules and the stream is reset). */
static void guest_data(struct conn *c, const struct vq_chain *ch, uint32_t len)
{
	if (c->recvd - c->fwd + len > CONN_BUF) {
		conn_kill(c, true);
		return;
	}
	c->recvd += len;
	uint32_t done = 0;
	if (!c->len) {
		struct iovec iov[VQ_MAX_SIZE];
		struct msghdr m = {.msg_iov = iov};
		m.msg_iovlen = iov_slice(ch->iov, ch->nread, HDR_LEN, len, iov);
		ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_kill(c, true);
			return;
		}
		done = n > 0 ? (uint32_t)n : 0;
		c->fwd += done;
	}
	if (done < len) {
		if (!c->buf && !(c->buf = malloc(CONN_BUF))) {
			conn_kill(c, true);
			return;
		}
		/* The credit check above keeps len + c->len within CONN_BUF. */
		for (uint32_t off = done, n = 1; off < len && n;) {
			uint32_t tail = (c->head + c->len) % CONN_BUF;
			uint32_t room = tail < c->head ? c->head - tail : CONN_BUF - tail;
			n = (uint32_t)vq_chain_read(ch, HDR_LEN + off, c->buf + tail,
						    room < len - off ? room : len - off);
			c->len += n;
			off += n;
		}
	}
	maybe_credit(c);
}

static void guest_packet(struct virtio_vsock *v, const struct vsock_hdr *h,
			 const struct vq_chain *ch)
{
	struct conn *c = conn_find(v, h->src_port, h->dst_port);
	if (h->type != TYPE_STREAM) {
		if (h->op != OP_RST)
			queue_rst(v, h->src_port, h->dst_port);
		return;
	}
	if (c) {
		c->peer_alloc = h->buf_alloc;
		c->peer_fwd = h->fwd_cnt;
	}
	switch (h->op) {
	case OP_REQUEST:
		if (c)
			conn_kill(c, true);
		else
			guest_connect(v, h);
		return;
	case OP_RST:
		if (c && c->state == CONN_CONNECTING)
			host_say(c, "ERR connection refused by the guest\n", 0);
		if (c)
			conn_kill(c, false);
		return;
	case OP_RESPONSE:
		if (c && c->state == CONN_CONNECTING) {
			c->state = CONN_OPEN;
			host_say(c, "OK %u\n", c->hport);
			return;
		}
		break;
	case OP_SHUTDOWN:
		if (c && c->state == CONN_OPEN) {
			c->peer_shut |= h->flags & (SHUT_RCV | SHUT_SEND);
			check_done(c);
			return;
		}
		break;
	case OP_RW:
		if (c && c->state == CONN_OPEN && !(c->peer_shut & SHUT_SEND)) {
			guest_data(c, ch, h->len);
			return;
		}
		break;
	case OP_CREDIT_UPDATE:
		if (c)
			return;
		break;
	case OP_CREDIT_REQUEST:
		if (c) {
			c->owe |= OWE_CREDIT;
			return;
		}
		break;
	}
	/* An op out of place or unknown: that stream is over. */
	if (c)
		conn_kill(c, true);
	else
		queue_rst(v, h->src_port, h->dst_port);
}

static int64_t tx_request(struct virtio_pci *vp, struct vq_chain *ch)
{
	struct virtio_vsock *v = vp->dev;
	struct vsock_hdr h;
	if (ch->nwrite)
		return -1; /* transmit buffers are device-readable only */
	if (vq_chain_read(ch, 0, &h, HDR_LEN) != HDR_LEN)
		return 0; /* no header: dropped */
	/* Packets must come from the guest's CID and be for the host, with the
	 * payload the header claims. */
	if (h.src_cid != v->cid || h.dst_cid != HOST_CID)
		return 0;
	if (h.len > MAX_PKT || h.len > ch->read_len - HDR_LEN || (h.len && h.op != OP_RW)) {
		struct conn *c = conn_find(v, h.src_port, h.dst_port);
		if (c)
			conn_kill(c, true);
		else if (h.op != OP_RST)
			queue_rst(v, h.src_port, h.dst_port);
		return 0;
	}
	guest_packet(v, &h, ch);
	return 0;
}

static void vsock_notify(struct virtio_pci *vp, unsigned q)
{
	struct virtio_vsock *v = vp->dev;
	if (q == TXQ)
		virtio_pci_process(vp, TXQ, tx_request);
	if (q == RXQ)
		v->rx_full = false; /* new receive buffers */
	if (q == EVQ)
		send_reset_event(v);
	rx_pump(v);
	watch_all(v);
	free_dead_now(v);
}

/* A driver reset: every stream is gone for the guest. */
static void vsock_reset(struct virtio_pci *vp)
{
	struct virtio_vsock *v = vp->dev;
	kill_all(v);
	v->owe_reset = false;
}

static const struct virtio_dev_ops vsock_ops = {.queue_notify = vsock_notify, .reset = vsock_reset};

/* ---- creation, snapshots ---- */

struct virtio_vsock *virtio_vsock_create(const struct virtio_env *env, uint32_t cid,
					 const char *uds, char *err, size_t errlen)
{
	struct virtio_vsock *v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory creating virtio-vsock");
		return NULL;
	}
	v->uds.lfd = -1;
	v->loop = env->loop;
	v->cid = v->config_cid = cid;
	if (uds && vsock_uds_listen(&v->uds, uds, err, errlen) < 0) {
		virtio_vsock_destroy(v);
		return NULL;
	}
	if (uds &&
	    !(v->lw = loop_watch(v->loop, v->uds.lfd, LOOP_IN, LOOP_DEVICE, listener_ready, v))) {
		snprintf(err, errlen, "--vsock: out of memory watching %s", v->uds.path);
		virtio_vsock_destroy(v);
		return NULL;
	}
	struct virtio_pci_info info = {
	    .name = "virtio-vsock",
	    .type = VIRTIO_ID_VSOCK,
	    .class_code = 0x028000, /* network controller, other */
	    .nqueues = 3,
	    .queue_size = QUEUE_SIZE,
	    .ops = &vsock_ops,
	    .config = &v->config_cid,
	    .config_len = sizeof(v->config_cid),
	};
	if (virtio_pci_init(&v->vp, &info, v, env, err, errlen) < 0) {
		v->vp.dev = NULL; /* not plugged: destroy must not unplug it */
		virtio_vsock_destroy(v);
		return NULL;
	}
	return v;
}

void virtio_vsock_destroy(void *dev)
{
	struct virtio_vsock *v = dev;
	if (!v)
		return;
	if (v->vp.dev) {
		pthread_mutex_lock(&v->vp.lock);
		kill_all(v);
		pthread_mutex_unlock(&v->vp.lock);
		virtio_pci_destroy(&v->vp);
	}
	free_dead(v->dead); /* the loop has stopped: no reap comes */
	loop_unwatch(v->lw);
	vsock_uds_close(&v->uds);
	free(v);
}

const char *virtio_vsock_path(const struct virtio_vsock *v)
{
	return v->uds.path;
}

const char *virtio_vsock_dir(const struct virtio_vsock *v)
{
	return v->uds.dir;
}

void virtio_vsock_moved(struct virtio_vsock *v, const char *dir)
{
	pthread_mutex_lock(&v->vp.lock);
	/* Unjailed, dir is the folder itself. */
	if (dir != v->uds.dir && strlen(dir) <= VSOCK_UDS_DIR_MIN)
		snprintf(v->uds.dir, sizeof(v->uds.dir), "%s", dir);
	pthread_mutex_unlock(&v->vp.lock);
}

/* The transport's state and the guest's CID. Connections are not saved: the
 * host sockets are not ours to save. */
static int vsock_save(void *dev, void **buf, size_t *len)
{
	struct virtio_vsock *v = dev;
	void *pci;
	size_t n;
	if (virtio_pci_save(&v->vp, &pci, &n))
		return -1;
	struct blob b = {0};
	blob_put32(&b, STATE_VERSION);
	blob_put64(&b, v->cid);
	blob_put_bytes(&b, pci, n);
	free(pci);
	if (b.oom) {
		blob_free(&b);
		return -1;
	}
	*buf = b.buf;
	*len = b.len;
	return 0;
}

static void reset_event_posted(void *arg)
{
	struct virtio_vsock *v = arg;
	pthread_mutex_lock(&v->vp.lock);
	send_reset_event(v);
	pthread_mutex_unlock(&v->vp.lock);
}

/* After a restore the guest's streams have no host side: like Firecracker,
 * reset them all and tell the driver (TRANSPORT_RESET), which also makes it
 * read the CID again. The event goes from the loop, which runs once the
 * whole VM is loaded: an interrupt raised now could be lost when the vCPUs'
 * interrupt state is loaded after the devices'. */
static int vsock_load(void *dev, const void *buf, size_t len)
{
	struct virtio_vsock *v = dev;
	struct reader r = {buf, len, false};
	uint32_t version = rd_get32(&r);
	uint64_t cid = rd_get64(&r);
	if (r.bad || version != STATE_VERSION || cid < 3 || cid >= 0xffffffff)
		return -1;
	if (virtio_pci_load(&v->vp, r.p, r.left))
		return -1;
	pthread_mutex_lock(&v->vp.lock);
	v->cid = v->config_cid = cid;
	v->owe_reset = true;
	if (!v->loop || loop_post(v->loop, reset_event_posted, v) < 0)
		send_reset_event(v);
	free_dead_now(v);
	pthread_mutex_unlock(&v->vp.lock);
	return 0;
}

static int vsock_count(const struct vm_config *cfg)
{
	return cfg->vsock.cid ? 1 : 0;
}

static int vsock_create(const struct dev_services *s, const struct vm_config *cfg, int i,
			void **dev, char *err, size_t errlen)
{
	struct virtio_env env = virtio_env_of(s);
	*dev = virtio_vsock_create(&env, cfg->vsock.cid, cfg->vsock.uds, err, errlen);
	return *dev ? 0 : EXIT_CODE_USAGE;
}

const struct device_type virtio_vsock_device = {.name = "virtio-vsock",
						.count = vsock_count,
						.create = vsock_create,
						.save = vsock_save,
						.load = vsock_load,
						.destroy = virtio_vsock_destroy};
