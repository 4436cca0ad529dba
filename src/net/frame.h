/* The frame classifier: what a `net` policy rule (docs/policy.md) matches in
 * an Ethernet frame — the ethertype behind up to two VLAN tags, the IPv4 or
 * IPv6 addresses and protocol, TCP/UDP ports. The frame is the guest's (or
 * the network's): every length is checked against the bytes there are, and
 * what cannot be read is reported as absent, never guessed. */
#ifndef POPEK_NET_FRAME_H
#define POPEK_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_PORTS    1u /* sport and dport were read (TCP or UDP) */
#define FRAME_FRAGMENT 2u /* an IP fragment: only the first one carries ports */

/* The bytes the classifier may look at: Ethernet, two VLAN tags, IPv6 and
 * a few extension headers, the ports. A device copies this much of a frame
 * before its policy check, and sends that copy. */
#define FRAME_HEAD_MAX 256

struct frame_info {
	uint16_t ethertype; /* after VLAN tags; 0 if the frame is too short */
	uint8_t family;	    /* 4, 6, or 0: no valid IP header */
	uint8_t proto; /* IP protocol: the upper layer, past IPv6 extension headers (if in reach) */
	uint8_t flags; /* FRAME_* */
	uint8_t vlans; /* tags skipped */
	uint16_t sport, dport;
	uint8_t src[16], dst[16]; /* IPv4: the first 4 bytes */
};

/* Classify the len bytes at f (a frame's first bytes; the rest unread). */
void frame_classify(const uint8_t *f, size_t len, struct frame_info *fi);

#endif
