/* virtio-net (virtio 1.x §5.1) over the modern PCI transport: a receive and a
 * transmit queue, MAC, link status, mergeable receive buffers, and the
 * checksum/TSO offloads only when the backend carries virtio-net headers (tap).
 * Frames travel through a net_backend (src/net/), served on the VM's event
 * loop, and received frames wait in a small backlog until the guest posts
 * receive buffers (beyond it new frames are dropped, as a full NIC ring would). */
#ifndef POPEK_VIRTIO_NET_H
#define POPEK_VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "devices/services.h"
#include "devices/virtio_pci.h"
#include "machine/config.h"
#include "net/net.h"

#define VIRTIO_ID_NET 1

#define VIRTIO_NET_F_CSUM	1ull << 0
#define VIRTIO_NET_F_GUEST_CSUM 1ull << 1
#define VIRTIO_NET_F_MTU	1ull << 3
#define VIRTIO_NET_F_MAC	1ull << 5
#define VIRTIO_NET_F_GUEST_TSO4 1ull << 7
#define VIRTIO_NET_F_GUEST_TSO6 1ull << 8
#define VIRTIO_NET_F_HOST_TSO4	1ull << 11
#define VIRTIO_NET_F_HOST_TSO6	1ull << 12
#define VIRTIO_NET_F_MRG_RXBUF	1ull << 15
#define VIRTIO_NET_F_STATUS	1ull << 16

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE	    0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN	    0x80

struct virtio_net;

/* A NIC with MAC mac on backend be (net_backend_open: before the jail),
 * which it owns from now on, even on failure; capture: a pcap path or NULL.
 * NULL with err set. */
struct virtio_net *virtio_net_create(const struct virtio_env *env, struct net_backend *be,
				     const uint8_t mac[6], const char *capture, char *err,
				     size_t errlen);
/* Serve the backend on the VM's loop (env->loop). 0 or -1 with err set. */
int virtio_net_start(struct virtio_net *n, char *err, size_t errlen);
/* Move frames the backend delivered into the guest's receive buffers (the
 * loop does it after every round of the backend). */
void virtio_net_poll(struct virtio_net *n);
struct virtio_pci *virtio_net_pci(struct virtio_net *n);
void virtio_net_destroy(void *n);
/* The registry's row: one instance per --net. */
extern const struct device_type virtio_net_device;

/* Is a transmit header acceptable for a frame of len bytes (after the
 * header) under the negotiated features? 0 yes, -1 drop it. */
int virtio_net_hdr_check(const struct virtio_net_hdr *h, uint64_t features, size_t len);

#endif
