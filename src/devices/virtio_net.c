#include "devices/virtio_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/csum.h"
#include "net/frame.h"
#include "net/pcap.h"

#define NET_QUEUE_SIZE	256
#define RXQ		0
#define TXQ		1
#define RX_BACKLOG	64 /* frames waiting for receive buffers */
#define ETH_HLEN	14
#define NET_S_LINK_UP	1
#define NUM_BUFFERS_OFF 10 /* offsetof(struct virtio_net_hdr, num_buffers) */

#define VNET_OFFLOADS                                                                              \
	(VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 |                   \
	 VIRTIO_NET_F_GUEST_TSO6 | VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6)

/* struct virtio_net_config up to max_virtqueue_pairs (§5.1.4). */
struct net_cfg {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

struct rx_frame {
	uint8_t *data; /* virtio-net header, then the frame */
	size_t len;
	bool passed;	  /* the gate let it go (and charged its limits) */
	bool after_pause; /* the gate deferred it for a pause */
};

struct virtio_net {
	struct virtio_pci vp;
	struct net_backend *be;
	struct net_loop loop;
	struct loop *evloop; /* the VM's, where the backend is served */
	struct pcap cap;
	struct net_cfg config;
	unsigned offload;	/* NET_OFF_* the backend was last told */
	pthread_mutex_t rxlock; /* the backlog; innermost lock */
	struct rx_frame rx[RX_BACKLOG];
	unsigned rx_head, rx_count;
	struct vq_chain chain; /* scratch for receive, under vp.lock */
	/* Receive held by the gate, under vp.lock: for a limit until rx_due
	 * (CLOCK_MONOTONIC ns), for a pause until the VM resumes (rx_deferred). */
	uint64_t rx_due;
	bool rx_deferred;
	/* Drains on the loop that could not wait for vp.lock (a vCPU holds it,
	 * maybe for a transmit limit's wait), and the end of a limit's hold. */
	struct loop_timer *rx_timer;
	uint8_t tx_head[FRAME_HEAD_MAX]; /* the checked copy of a frame's headers, under vp.lock */
	/* A frame whose checksum the device completes for a backend without
	 * virtio-net headers (popek's copy, never guest memory), under vp.lock. */
	uint8_t tx_frame[NET_BIG_MAX];
	/* The guest's IPv4 address as its own frames last gave it (0: none
	 * seen), for the gratuitous ARP after a move; under vp.lock. */
	uint8_t ip[4];
};

int virtio_net_hdr_check(const struct virtio_net_hdr *h, uint64_t features, size_t len)
{
	if (len < ETH_HLEN || (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return -1;
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		/* The checksum field must lie inside the frame. */
		if (!(features & VIRTIO_NET_F_CSUM) ||
		    (size_t)h->csum_start + h->csum_offset + 2 > len)
			return -1;
	}
	size_t max = features & VIRTIO_NET_F_MTU ? NET_BIG_MAX : NET_ETH_MAX;
	switch (h->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		break;
	case VIRTIO_NET_HDR_GSO_TCPV4:
	case VIRTIO_NET_HDR_GSO_TCPV6: {
		uint64_t need = h->gso_type == VIRTIO_NET_HDR_GSO_TCPV4 ? VIRTIO_NET_F_HOST_TSO4
									: VIRTIO_NET_F_HOST_TSO6;
		/* Segmentation needs the checksum offload and a sane segment. */
		if (!(features & need) || !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
		    h->gso_size == 0 || h->hdr_len > len)
			return -1;
		max = NET_GSO_MAX;
		break;
	}
	default:
		return -1; /* UDP, ECN: never offered */
	}
	return len > max ? -1 : 0;
}

static uint64_t features(const struct virtio_net *n)
{
	return n->vp.driver_features;
}

/* The backend learns which offloads the guest takes on receive. */
static void sync_offload(struct virtio_net *n)
{
	uint64_t f = virtio_pci_live(&n->vp) ? features(n) : 0;
	unsigned off = (f & VIRTIO_NET_F_GUEST_CSUM ? NET_OFF_CSUM : 0) |
		       (f & VIRTIO_NET_F_GUEST_TSO4 ? NET_OFF_TSO4 : 0) |
		       (f & VIRTIO_NET_F_GUEST_TSO6 ? NET_OFF_TSO6 : 0);
	if (off != n->offload && n->be->ops->set_offload)
		n->be->ops->set_offload(n->be, off);
	n->offload = off;
}

static void drop_oldest(struct virtio_net *n)
{
	free(n->rx[n->rx_head].data);
	n->rx_head = (n->rx_head + 1) % RX_BACKLOG;
	n->rx_count--;
}

static void drop_all(struct virtio_net *n)
{
	pthread_mutex_lock(&n->rxlock);
	while (n->rx_count)
		drop_oldest(n);
	pthread_mutex_unlock(&n->rxlock);
}

/* A frame from the backend (its lock held, any thread). */
static void deliver(void *ctx, const uint8_t *frame, size_t len)
{
	struct virtio_net *n = ctx;
	size_t hdr = n->be->vnet_hdr ? 0 : NET_HDR_LEN, total = hdr + len;
	size_t body = n->be->vnet_hdr ? len - NET_HDR_LEN : len;
	if ((n->be->vnet_hdr && len < NET_HDR_LEN) || body < ETH_HLEN || body > NET_GSO_MAX)
		return;
	uint8_t *p = malloc(total);
	if (!p)
		return;
	memset(p, 0, hdr);
	/* libslirp's frames carry valid checksums: the guest need not check
	 * them again (what a NIC that verified them says). */
	if (hdr && n->be->big_mtu && (features(n) & VIRTIO_NET_F_GUEST_CSUM))
		p[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	memcpy(p + hdr, frame, len);
	struct iovec v = {p, total};
	pcap_write(&n->cap, &v, 1, NET_HDR_LEN, total);
	pthread_mutex_lock(&n->rxlock);
	/* Full: the guest is not receiving. Drop the new frame (the head may be
	 * on its way into the guest right now). */
	bool full = n->rx_count == RX_BACKLOG;
	if (!full)
		n->rx[(n->rx_head + n->rx_count++) % RX_BACKLOG] =
		    (struct rx_frame){.data = p, .len = total};
	pthread_mutex_unlock(&n->rxlock);
	if (full)
		free(p);
}

/* Place one frame into receive buffers: 1 placed (or dropped for good), 0
 * no buffers yet (the frame waits), -1 the driver broke the ring. */
static int place(struct virtio_net *n, const struct rx_frame *f)
{
	struct virtq *vq = &n->vp.vq[RXQ];
	struct vq_chain *c = &n->chain;
	bool mrg = features(n) & VIRTIO_NET_F_MRG_RXBUF;
	struct vq_used used[VQ_MAX_SIZE];
	struct iovec nb[2]; /* where num_buffers lands in the first buffer */
	unsigned k = 0, nnb = 0;
	uint16_t start = vq->last_avail;
	size_t off = 0;
	while (off < f->len) {
		if (k == vq->size) {
			vq->last_avail = start; /* even the whole ring is too small */
			return 1;
		}
		int r = virtq_pop(vq, c);
		if (r <= 0) {
			vq->last_avail = start;
			return r;
		}
		if (c->nread || c->write_len < (k ? 1 : NET_HDR_LEN))
			return -1; /* receive buffers are device-writable, one header at least */
		if (!mrg && c->write_len < f->len) {
			vq->last_avail = start; /* the frame does not fit: drop it */
			return 1;
		}
		if (k == 0)
			nnb = iov_slice(c->iov, c->nwrite, NUM_BUFFERS_OFF, 2, nb);
		uint64_t w = vq_chain_write(c, 0, f->data + off, f->len - off);
		used[k++] = (struct vq_used){c->head, (uint32_t)w};
		off += w;
	}
	uint8_t count[2] = {(uint8_t)k, (uint8_t)(k >> 8)};
	for (unsigned i = 0, done = 0; i < nnb; done += nb[i].iov_len, i++)
		memcpy(nb[i].iov_base, count + done, nb[i].iov_len);
	virtq_push_n(vq, used, k);
	return 1;
}

static void rx_resumed(void *ctx);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The head frame f through the gate, before the guest sees it: false if it
 * must wait (a limit's hold, a pause) or was dropped (denied). On the loop
 * a limit cannot sleep: the frame is held and the timer brings it back. */
static bool rx_pass(struct virtio_net *n, struct rx_frame *f)
{
	const struct request_gate *g = &n->vp.gate;
	if (f->passed || !gate_wants_data(g, GATE_NET))
		return true;
	size_t len = f->len - NET_HDR_LEN;
	struct gate_request rq = {.kind = GATE_NET,
				  .op = GATE_READ,
				  .len = len,
				  .data = f->data + NET_HDR_LEN,
				  .head_len = len < FRAME_HEAD_MAX ? len : FRAME_HEAD_MAX,
				  .after_pause = f->after_pause,
				  .no_sleep = n->rx_timer != NULL};
	enum gate_verdict v = gate_check(g, &rq);
	pthread_mutex_lock(&n->rxlock);
	struct rx_frame *head = &n->rx[n->rx_head];
	if (v == GATE_FAIL)
		drop_oldest(n); /* denied: dropped, as a wire would */
	else if (v == GATE_DEFER)
		head->after_pause = true;
	else
		head->passed = true;
	pthread_mutex_unlock(&n->rxlock);
	if (v == GATE_DEFER) {
		n->rx_deferred = true;
		if (g->after_resume)
			g->after_resume(g->ctx, rx_resumed, n);
		return false;
	}
	if (v == GATE_GO && rq.wait_ns) {
		n->rx_due = now_ns() + rq.wait_ns;
		loop_timer_arm(n->rx_timer, rq.wait_ns, 0);
		return false;
	}
	return v == GATE_GO;
}

/* Move backlog frames into the guest, with vp.lock held. */
static void rx_drain(struct virtio_net *n)
{
	struct virtio_pci *vp = &n->vp;
	if (!virtio_pci_live(vp)) {
		/* No driver to take them: lost, as on a NIC whose link is down,
		 * rather than held for a driver that may never come. */
		drop_all(n);
		return;
	}
	if (!vp->vq[RXQ].enabled)
		return;
	bool any = false;
	uint64_t now = n->rx_due ? now_ns() : 0;
	if (now < n->rx_due) { /* (again: a retry may have moved the timer) */
		loop_timer_arm(n->rx_timer, n->rx_due - now, 0);
		return;
	}
	n->rx_due = 0;
	while (!n->rx_due && !n->rx_deferred) {
		pthread_mutex_lock(&n->rxlock);
		struct rx_frame f = n->rx_count ? n->rx[n->rx_head] : (struct rx_frame){0};
		pthread_mutex_unlock(&n->rxlock);
		if (!f.data)
			break;
		if (!rx_pass(n, &f)) {
			if (n->rx_due || n->rx_deferred)
				break;
			continue; /* denied: the next one */
		}
		int r = place(n, &f);
		if (r < 0)
			virtio_pci_fail(vp);
		if (r <= 0)
			break;
		any = true;
		pthread_mutex_lock(&n->rxlock);
		drop_oldest(n); /* the frame just placed: only we remove frames */
		pthread_mutex_unlock(&n->rxlock);
	}
	if (any)
		virtio_pci_used(vp, RXQ);
}

#define ETH_P_IP  0x0800
#define ETH_P_ARP 0x0806
#define ARP_LEN	  28 /* Ethernet/IPv4 ARP */

/* A frame the guest sends from its MAC names its IPv4 address: the ARP
 * sender's, or the IPv4 source (0.0.0.0 while it asks DHCP, never a group
 * or loopback address). The guest may lie: the address only goes into its
 * own announcement. */
static void learn_ip(struct virtio_net *n, const struct vq_chain *c, size_t len)
{
	uint8_t f[ETH_HLEN + ARP_LEN];
	size_t got = vq_chain_read(c, NET_HDR_LEN, f, len < sizeof(f) ? len : sizeof(f));
	if (got < ETH_HLEN + 20 || memcmp(f + 6, n->config.mac, 6))
		return;
	unsigned type = (unsigned)f[12] << 8 | f[13];
	static const uint8_t arp_ipv4[] = {0, 1, 0x08, 0, 6, 4};
	const uint8_t *ip = NULL;
	if (type == ETH_P_ARP && got == sizeof(f) && !memcmp(f + ETH_HLEN, arp_ipv4, 6) &&
	    !memcmp(f + 22, n->config.mac, 6))
		ip = f + 28;
	else if (type == ETH_P_IP && f[ETH_HLEN] >> 4 == 4)
		ip = f + 26;
	if (ip && ip[0] && ip[0] != 127 && ip[0] < 224)
		memcpy(n->ip, ip, 4);
}

static int64_t tx_request(struct virtio_pci *vp, struct vq_chain *c)
{
	struct virtio_net *n = vp->dev;
	struct virtio_net_hdr h;
	if (c->nwrite)
		return -1; /* transmit buffers are device-readable only */
	if (vq_chain_read(c, 0, &h, NET_HDR_LEN) != NET_HDR_LEN)
		return 0; /* no header: dropped */
	size_t len = c->read_len - NET_HDR_LEN;
	if (virtio_net_hdr_check(&h, features(n), len))
		return 0;
	/* The header the backend sees is our checked copy, not guest memory. */
	struct iovec iov[2 + VQ_MAX_SIZE];
	h.num_buffers = 0;
	iov[0] = (struct iovec){&h, NET_HDR_LEN};
	unsigned k = 1;
	const struct request_gate *g = &vp->gate;
	if (gate_wants_data(g, GATE_NET)) {
		/* So are the frame's headers when the policy reads them: the
		 * backend gets the bytes the gate saw, whatever the guest does to
		 * its buffer meanwhile. */
		size_t head = len < FRAME_HEAD_MAX ? len : FRAME_HEAD_MAX;
		vq_chain_read(c, NET_HDR_LEN, n->tx_head, head);
		struct gate_request rq = {.kind = GATE_NET,
					  .op = GATE_WRITE,
					  .len = len,
					  .data = n->tx_head,
					  .head_len = head,
					  .after_pause = vp->after_pause};
		enum gate_verdict v = gate_check(g, &rq);
		if (v != GATE_GO)
			return v == GATE_DEFER ? VIRTIO_DEFER : 0; /* denied: dropped */
		iov[k++] = (struct iovec){n->tx_head, head};
		k += iov_slice(c->iov, c->nread, NET_HDR_LEN + head, len - head, iov + k);
	} else {
		k += iov_slice(c->iov, c->nread, NET_HDR_LEN, len, iov + k);
	}
	if (!n->be->vnet_hdr && (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
		/* The offload is the device's: the backend gets a whole frame. */
		if (len > sizeof(n->tx_frame))
			return 0; /* only segmentation makes more, never offered here */
		size_t off = 0;
		for (unsigned i = 1; i < k; off += iov[i].iov_len, i++)
			memcpy(n->tx_frame + off, iov[i].iov_base, iov[i].iov_len);
		csum_complete(n->tx_frame, len, h.csum_start, h.csum_offset);
		h.flags = 0;
		iov[1] = (struct iovec){n->tx_frame, len};
		k = 2;
	}
	learn_ip(n, c, len);
	pcap_write(&n->cap, iov, k, NET_HDR_LEN, NET_HDR_LEN + len);
	if (n->be->vnet_hdr)
		net_backend_send(n->be, iov, k, NET_HDR_LEN + len);
	else
		net_backend_send(n->be, iov + 1, k - 1, len);
	return 0;
}

static void net_notify(struct virtio_pci *vp, unsigned q)
{
	struct virtio_net *n = vp->dev;
	sync_offload(n);
	if (q == TXQ)
		virtio_pci_process(vp, TXQ, tx_request);
	/* Transmits may have produced answers (ARP, DHCP from libslirp). */
	rx_drain(n);
}

static void net_reset(struct virtio_pci *vp)
{
	struct virtio_net *n = vp->dev;
	drop_all(n);
	if (n->be)
		sync_offload(n);
}

static const struct virtio_dev_ops net_ops = {.queue_notify = net_notify, .reset = net_reset};

void virtio_net_poll(struct virtio_net *n)
{
	/* The loop never waits for a vCPU that holds the lock (a transmit
	 * limit sleeps under it): it comes back in a millisecond. */
	if (n->rx_timer && pthread_mutex_trylock(&n->vp.lock)) {
		loop_timer_arm(n->rx_timer, 1000000, 0);
		return;
	}
	if (!n->rx_timer)
		pthread_mutex_lock(&n->vp.lock);
	rx_drain(n);
	pthread_mutex_unlock(&n->vp.lock);
}

static void after_poll(void *ctx)
{
	virtio_net_poll(ctx);
}

/* The VM resumed after the pause a received frame was deferred for. */
static void rx_resumed(void *ctx)
{
	struct virtio_net *n = ctx;
	pthread_mutex_lock(&n->vp.lock);
	n->rx_deferred = false;
	rx_drain(n);
	pthread_mutex_unlock(&n->vp.lock);
}

struct virtio_net *virtio_net_create(const struct virtio_env *env, struct net_backend *be,
				     const uint8_t mac[6], const char *capture, char *err,
				     size_t errlen)
{
	struct virtio_net *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory creating virtio-net");
		net_backend_close(be);
		return NULL;
	}
	n->cap.fd = -1;
	n->be = be;
	n->evloop = env->loop;
	/* Without a loop (test rigs) a limit's hold is slept instead. */
	if (env->loop && !(n->rx_timer = loop_timer_new(env->loop, LOOP_DEVICE, after_poll, n))) {
		snprintf(err, errlen, "out of memory creating virtio-net");
		net_backend_close(be);
		free(n);
		return NULL;
	}
	be->deliver = deliver;
	be->ctx = n;
	pthread_mutex_init(&n->rxlock, NULL);
	if (capture && pcap_open(&n->cap, capture, err, errlen) < 0)
		goto fail;
	memcpy(n->config.mac, mac, 6);
	n->config.status = NET_S_LINK_UP;
	n->config.max_virtqueue_pairs = 1;
	n->config.mtu = be->big_mtu ? NET_BIG_MTU : 0;
	struct virtio_pci_info info = {
	    .name = "virtio-net",
	    .type = VIRTIO_ID_NET,
	    .class_code = 0x020000, /* Ethernet controller */
	    .nqueues = 2,
	    .queue_size = NET_QUEUE_SIZE,
	    .features = VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MRG_RXBUF |
			(be->vnet_hdr ? VNET_OFFLOADS : VIRTIO_NET_F_CSUM) |
			(be->big_mtu ? VIRTIO_NET_F_MTU | VIRTIO_NET_F_GUEST_CSUM : 0),
	    .ops = &net_ops,
	    .config = &n->config,
	    .config_len = sizeof(n->config),
	};
	if (virtio_pci_init(&n->vp, &info, n, env, err, errlen) < 0)
		goto fail;
	return n;
fail:
	net_backend_close(be);
	loop_timer_free(n->rx_timer);
	pcap_close(&n->cap);
	pthread_mutex_destroy(&n->rxlock);
	free(n);
	return NULL;
}

int virtio_net_start(struct virtio_net *n, char *err, size_t errlen)
{
	return net_loop_start(&n->loop, n->evloop, n->be, after_poll, n, err, errlen);
}

struct virtio_pci *virtio_net_pci(struct virtio_net *n)
{
	return &n->vp;
}

void virtio_net_destroy(void *dev)
{
	struct virtio_net *n = dev;
	if (!n)
		return;
	net_loop_stop(&n->loop);
	loop_timer_free(n->rx_timer);
	virtio_pci_destroy(&n->vp);
	net_backend_close(n->be);
	pcap_close(&n->cap);
	drop_all(n);
	pthread_mutex_destroy(&n->rxlock);
	free(n);
}

/* The record: u32 version, the transport's record and the backend's (each
 * u32 length first; a backend without state has length 0), then the guest's
 * IPv4 address (4 bytes as on the wire; 0 if none was seen). Version 2 had
 * no address: loaded without one. Version 1 was the transport's record alone
 * (its own version, 1, first): refused. */
#define NET_STATE_VERSION 3

static int net_save(void *dev, void **buf, size_t *len)
{
	struct virtio_net *n = dev;
	void *pci;
	size_t pci_len;
	if (virtio_pci_save(&n->vp, &pci, &pci_len) < 0)
		return -1;
	struct blob be = {0}, b = {0};
	if (n->be->ops->save) {
		pthread_mutex_lock(&n->be->lock);
		n->be->ops->save(n->be, &be);
		pthread_mutex_unlock(&n->be->lock);
	}
	blob_put32(&b, NET_STATE_VERSION);
	blob_put32(&b, (uint32_t)pci_len);
	blob_put_bytes(&b, pci, pci_len);
	blob_put32(&b, (uint32_t)be.len);
	blob_put_bytes(&b, be.buf, be.len);
	blob_put_bytes(&b, n->ip, sizeof(n->ip));
	free(pci);
	bool oom = be.oom || b.oom;
	blob_free(&be);
	if (oom) {
		blob_free(&b);
		return -1;
	}
	*buf = b.buf;
	*len = b.len;
	return 0;
}

/* After a restore or a migration the NIC may sit behind another switch port
 * or host: announce it. With the guest's IPv4 address known, a gratuitous ARP
 * (request, sender and target that address), which also moves its peers' ARP
 * caches, as the guest itself does on VIRTIO_NET_F_GUEST_ANNOUNCE; without,
 * QEMU's RARP from its MAC, which only teaches switches. */
static void announce(struct virtio_net *n)
{
	static const uint8_t none[4];
	bool garp = memcmp(n->ip, none, 4) != 0;
	uint8_t f[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	struct virtio_net_hdr h = {0};
	memcpy(f + 6, n->config.mac, 6);
	f[12] = garp ? ETH_P_ARP >> 8 : 0x80;
	f[13] = garp ? ETH_P_ARP & 0xff : 0x35;
	static const uint8_t arp_ipv4[] = {0, 1, 0x08, 0, 6, 4, 0};
	memcpy(f + ETH_HLEN, arp_ipv4, sizeof(arp_ipv4));
	f[21] = garp ? 1 : 3; /* request : reverse request */
	memcpy(f + 22, n->config.mac, 6);
	memcpy(f + 28, n->ip, 4);
	if (!garp)
		memcpy(f + 32, n->config.mac, 6);
	memcpy(f + 38, n->ip, 4);
	struct iovec iov[2] = {{&h, NET_HDR_LEN}, {f, sizeof(f)}};
	pcap_write(&n->cap, iov, 2, NET_HDR_LEN, NET_HDR_LEN + sizeof(f));
	if (n->be->vnet_hdr)
		net_backend_send(n->be, iov, 2, NET_HDR_LEN + sizeof(f));
	else
		net_backend_send(n->be, iov + 1, 1, sizeof(f));
}

static int net_load(void *dev, const void *buf, size_t len)
{
	struct virtio_net *n = dev;
	struct reader r = {buf, len, false};
	uint32_t version = rd_get32(&r);
	if (version != NET_STATE_VERSION && version != 2)
		return -1;
	size_t pci_len = rd_get32(&r);
	const uint8_t *pci = rd_view(&r, pci_len);
	size_t be_len = rd_get32(&r);
	struct reader be = {rd_view(&r, be_len), be_len, false};
	uint8_t ip[4] = {0};
	if (version == NET_STATE_VERSION)
		rd_get_bytes(&r, ip, sizeof(ip));
	if (r.bad || r.left || (!n->be->ops->load && be_len))
		return -1;
	if (n->be->ops->load) {
		pthread_mutex_lock(&n->be->lock);
		int rc = n->be->ops->load(n->be, &be);
		pthread_mutex_unlock(&n->be->lock);
		if (rc < 0)
			return -1;
	}
	if (virtio_pci_load(&n->vp, pci, pci_len))
		return -1;
	memcpy(n->ip, ip, sizeof(ip));
	announce(n);
	return 0;
}

static int net_count(const struct vm_config *cfg)
{
	return cfg->nnics;
}

/* --net number i: its backend (opened here, before the jail), the NIC, and
 * its service on the VM's loop. */
static int net_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		      char *err, size_t errlen)
{
	const struct net_config *nc = &cfg->nic[i];
	uint8_t mac[6];
	net_mac(nc, cfg->name, i, mac);
	struct net_backend *be = net_backend_open(nc, mac, err, errlen);
	if (!be)
		return EXIT_CODE_USAGE;
	struct virtio_env env = virtio_env_of(s);
	struct virtio_net *n = virtio_net_create(&env, be, mac, nc->capture, err, errlen);
	if (!n)
		return EXIT_CODE_USAGE;
	if (virtio_net_start(n, err, errlen)) {
		virtio_net_destroy(n);
		return EXIT_CODE_HOST;
	}
	*dev = n;
	return 0;
}

const struct device_type virtio_net_device = {.name = "virtio-net",
					      .numbered = true,
					      .count = net_count,
					      .create = net_create,
					      .save = net_save,
					      .load = net_load,
					      .destroy = virtio_net_destroy};
