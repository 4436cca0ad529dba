/* Fuzz the virtio-net transmit header check: 12 header bytes, the driver's
 * features (8 bytes) and a frame length (4 bytes). Whatever it accepts must
 * be safe to hand to a backend: a checksum field inside the frame, GSO only
 * with its feature and a header length that fits, no frame over the limit
 * (Ethernet's, or NET_BIG_MAX with VIRTIO_NET_F_MTU). */
#include <stdlib.h>
#include <string.h>

#include "devices/virtio_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_hdr h;
	uint64_t features;
	uint32_t len;
	if (size < NET_HDR_LEN + 12)
		return 0;
	memcpy(&h, data, NET_HDR_LEN);
	memcpy(&features, data + NET_HDR_LEN, 8);
	memcpy(&len, data + NET_HDR_LEN + 8, 4);
	if (virtio_net_hdr_check(&h, features, len))
		return 0;
	bool gso = h.gso_type != VIRTIO_NET_HDR_GSO_NONE;
	size_t max = gso ? NET_GSO_MAX : features & VIRTIO_NET_F_MTU ? NET_BIG_MAX : NET_ETH_MAX;
	if (len < 14 || len > max)
		abort();
	if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (!(features & VIRTIO_NET_F_CSUM) || (size_t)h.csum_start + h.csum_offset + 2 > len))
		abort();
	if (gso &&
	    (h.hdr_len > len || !h.gso_size ||
	     !(features & (h.gso_type == VIRTIO_NET_HDR_GSO_TCPV4 ? VIRTIO_NET_F_HOST_TSO4
								  : VIRTIO_NET_F_HOST_TSO6))))
		abort();
	return 0;
}
