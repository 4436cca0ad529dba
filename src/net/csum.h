/* The Internet checksum (RFC 1071) a NIC completes for a checksum offload
 * (virtio-net's VIRTIO_NET_HDR_F_NEEDS_CSUM): the guest leaves the sum of
 * the pseudo-header in the checksum field, and the device sums from
 * csum_start to the end of the frame and stores the complement. */
#ifndef POPEK_NET_CSUM_H
#define POPEK_NET_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Complete the checksum of frame f (len bytes) at start + offset, which the
 * caller has checked lies inside it (start + offset + 2 <= len). */
void csum_complete(uint8_t *f, size_t len, size_t start, size_t offset);

#endif
