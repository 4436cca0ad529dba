/* Fuzz virtio-net through its PCI transport as a hostile guest driver: the
 * program builds rings and frames in RAM, kicks the transmit and receive
 * queues, and (FUZZ_OP_HOST) has the backend deliver frames of any length.
 * The backend is a loopback: every frame the guest sends comes back on its
 * receive queue, so transmit and receive both run on guest-made rings. The
 * first input byte picks a backend with virtio-net headers (the offloads
 * offered, as for tap) or without (as for user networking). Frames both ways
 * pass the machine's gate under net rules that classify, deny, defer (pause)
 * and stop them. */
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_net.h"
#include "fuzz_util.h"

static const char rules[] = "deny net tx tcp dport 25\n"
			    "log net rx udp src 10.0.0.0/8\n"
			    "deny net rx length 0-59\n"
			    "pause net tx ethertype 0x88b5\n"
			    "stop net fragment ethertype 0x86dd\n"
			    "log net\n";

struct loopback {
	struct net_backend b;
	uint8_t frame[NET_HDR_LEN + NET_GSO_MAX];
};

static void lo_fill(struct net_backend *b, struct net_pollset *ps, int *timeout_ms)
{
}

static void lo_dispatch(struct net_backend *b, struct net_pollset *ps)
{
}

static void lo_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	struct loopback *l = (struct loopback *)b;
	if (len > sizeof(l->frame))
		abort(); /* the device let an oversized frame through */
	size_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		memcpy(l->frame + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	if (off != len)
		abort(); /* the length the device claims must be the bytes it gives */
	b->deliver(b->ctx, l->frame, len);
}

static void lo_destroy(struct net_backend *b)
{
	free(b);
}

static const struct net_backend_ops lo_ops = {
    .fill = lo_fill, .dispatch = lo_dispatch, .send = lo_send, .destroy = lo_destroy};

struct target {
	struct virtio_net *n;
	struct loopback *l;
};

/* A frame from the host side: length and filler from the op's value. */
static void host_frame(void *ctx, uint64_t value)
{
	struct target *t = ctx;
	static uint8_t frame[NET_HDR_LEN + NET_GSO_MAX + 16];
	size_t len = (size_t)(value & 0x1ffff) % sizeof(frame);
	memset(frame, (int)(value >> 32), len);
	pthread_mutex_lock(&t->l->b.lock);
	t->l->b.deliver(t->l->b.ctx, frame, len);
	pthread_mutex_unlock(&t->l->b.lock);
	virtio_net_poll(t->n);
}

/* Two NICs on loopbacks, not served by a loop (FUZZ_OP_HOST moves frames
 * in): slot 1 without virtio-net headers (user networking's mode), slot 2
 * with them (tap's, offloads offered). */
static bool vnet; /* the mode of the NIC being created */
static struct target targets[2];

static int lo_create(const struct dev_services *s, const struct vm_config *cfg, int i, void **dev,
		     char *err, size_t errlen)
{
	struct loopback *l = calloc(1, sizeof(*l));
	if (!l)
		abort();
	l->b.ops = &lo_ops;
	l->b.vnet_hdr = vnet;
	pthread_mutex_init(&l->b.lock, NULL);
	static const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
	struct virtio_env env = virtio_env_of(s);
	targets[vnet].l = l;
	return (*dev = targets[vnet].n = virtio_net_create(&env, &l->b, mac, NULL, err, errlen))
		   ? 0
		   : -1;
}

static const struct device_type fuzz_net_device = {.name = "virtio-net",
						   .numbered = true,
						   .create = lo_create,
						   .save = virtio_pci_save,
						   .load = virtio_pci_load,
						   .destroy = virtio_net_destroy};

static void host_either(void *ctx, uint64_t value)
{
	host_frame(&targets[value >> 63], value);
}

static void setup(struct fuzz_rig *r)
{
	fuzz_policy(r, rules);
	for (unsigned slot = 1; slot <= 2; slot++) {
		vnet = slot == 2;
		fuzz_add(r, &fuzz_net_device);
		fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, slot), VIRTIO_BAR_SIZE);
	}
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
	r->host = host_either;
}

FUZZ_RIG_TARGET(setup)
