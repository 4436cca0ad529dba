/* Network backends (docs/networking.md): what carries a NIC's Ethernet frames
 * to the host — libslirp (user), a tap device, or a switch socket. A backend
 * knows nothing of virtio: it sends the frames the NIC gives it and delivers
 * the frames it receives through a callback. Its file descriptors and timers
 * are served on the VM's event loop (loop.c) in poll style. */
#ifndef POPEK_NET_H
#define POPEK_NET_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "machine/config.h"
#include "snapshot/blob.h"

/* The virtio-net header (virtio 1.x: always with num_buffers, §5.1.6). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
#define NET_HDR_LEN  sizeof(struct virtio_net_hdr)
#define NET_ETH_MAX  1518u  /* an Ethernet frame with a VLAN tag, without FCS */
#define NET_GSO_MAX  65550u /* a 64 KiB IP packet behind an Ethernet header */
#define NET_POLL_MAX 64	    /* fds one backend watches at once */
/* The MTU a backend without a wire offers (user networking: libslirp's
 * largest, as passt's): a guest sending and receiving 64 KiB packets pays
 * its per-packet costs once per 64 KiB instead of once per 1.5. */
#define NET_BIG_MTU 65520u
#define NET_BIG_MAX (NET_BIG_MTU + 18u) /* with an Ethernet header and a VLAN tag */

/* Offloads the guest may use (bits of TUN_F_*: tap.c maps them). */
#define NET_OFF_CSUM 1u
#define NET_OFF_TSO4 2u
#define NET_OFF_TSO6 4u

struct net_backend;

/* The NIC side: called with the backend's lock held, from any thread. A
 * frame is given as one flat buffer (header first when the backend has
 * vnet headers). */
typedef void net_deliver_fn(void *ctx, const uint8_t *frame, size_t len);

/* Poll-style service of a backend's fds and timers, one round at a time. */
struct net_pollset {
	struct pollfd fd[NET_POLL_MAX];
	unsigned n;
};

struct net_backend_ops {
	/* Add the fds to watch this round to ps; lower *timeout_ms (-1: none)
	 * to the next timer. */
	void (*fill)(struct net_backend *b, struct net_pollset *ps, int *timeout_ms);
	/* After poll: serve ready fds and due timers. */
	void (*dispatch)(struct net_backend *b, struct net_pollset *ps);
	/* One frame from the guest; iov covers header (vnet backends) and frame. */
	void (*send)(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len);
	/* Optional: the offloads (NET_OFF_*) the guest accepts on receive. */
	void (*set_offload)(struct net_backend *b, unsigned off);
	/* Optional: the backend's own state in a snapshot, and back; load
	 * checks everything (the record may come from a hostile file). */
	void (*save)(struct net_backend *b, struct blob *out);
	int (*load)(struct net_backend *b, struct reader *in);
	void (*destroy)(struct net_backend *b);
};

struct net_backend {
	const struct net_backend_ops *ops;
	bool vnet_hdr;	      /* frames both ways start with a virtio_net_hdr: offloads */
	bool big_mtu;	      /* takes and sends frames up to NET_BIG_MAX, checksums all valid */
	pthread_mutex_t lock; /* the backend's state (libslirp is single-threaded) */
	net_deliver_fn *deliver;
	void *ctx;
	/* Set by the loop: the backend wants a round soon (libslirp's notify:
	 * the guest's ACK made room, so it may read its sockets again). */
	void (*kick)(void *kick_ctx);
	void *kick_ctx;
};

/* Open the backend of one --net for the NIC with MAC mac, before the jail
 * (its fds and, for user networking, its listening sockets). NULL with err
 * set. The NIC then sets deliver and ctx. */
struct net_backend *net_backend_open(const struct net_config *nc, const uint8_t mac[6], char *err,
				     size_t errlen);
/* Backend constructors (one file each); they fill b->ops and b->vnet_hdr. */
struct net_backend *net_slirp_open(const struct net_config *nc, const uint8_t mac[6], char *err,
				   size_t errlen);
struct net_backend *net_tap_open(const struct net_config *nc, char *err, size_t errlen);
struct net_backend *net_socket_open(const struct net_config *nc, char *err, size_t errlen);

/* Send under the backend's lock (a frame from the guest). */
void net_backend_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len);
void net_backend_close(struct net_backend *b);

/* A backend served on the VM's event loop (util/loop.h). Each round: the
 * fds the backend asked for last time are polled without waiting, the
 * backend dispatches, after(ctx) runs (with no lock held: the NIC moves
 * delivered frames into the guest), and the backend names the fds and the
 * timeout of the next round, which the loop then watches. The watches are of
 * the device class: a paused VM gets no rounds. */
struct loop;
struct loop_watch;
struct loop_timer;
struct net_loop {
	struct net_backend *b;
	struct loop *loop;
	void (*after)(void *ctx);
	void *ctx;
	struct net_pollset ps; /* this round's fds */
	struct loop_watch *watch[NET_POLL_MAX];
	int watched_fd[NET_POLL_MAX];
	unsigned nwatch;
	struct loop_timer *timer;
};
int net_loop_start(struct net_loop *l, struct loop *loop, struct net_backend *b,
		   void (*after)(void *), void *ctx, char *err, size_t errlen);
/* Once the loop no longer runs (the machine stops it before devices go). */
void net_loop_stop(struct net_loop *l);

/* Parse one --net argument into nc (pointers into arg, which lives on).
 * Returns 0, or -1 with err set. */
int net_config_parse(char *arg, struct net_config *nc, char *err, size_t errlen);
/* The NIC's MAC: nc->mac if given, else one derived from the VM name and the
 * NIC's index (stable across runs of the same VM, distinct between VMs). */
void net_mac(const struct net_config *nc, const char *vm_name, int index, uint8_t mac[6]);

#endif
