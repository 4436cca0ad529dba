#include "net/frame.h"

#include <stdbool.h>
#include <string.h>

#define ETH_P_IP     0x0800
#define ETH_P_IPV6   0x86dd
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static int is_vlan(uint16_t type)
{
	return type == 0x8100 || type == 0x88a8 || type == 0x9100;
}

/* TCP and UDP start with the two ports; a fragment that is not the first
 * has none. l4 .. end is what the frame holds of the upper layer. */
static void ports(struct frame_info *fi, const uint8_t *l4, const uint8_t *end)
{
	if ((fi->proto != IPPROTO_TCP_ && fi->proto != IPPROTO_UDP_) || end - l4 < 4)
		return;
	fi->sport = be16(l4);
	fi->dport = be16(l4 + 2);
	fi->flags |= FRAME_PORTS;
}

static void ipv4(struct frame_info *fi, const uint8_t *ip, const uint8_t *end)
{
	if (end - ip < 20 || ip[0] >> 4 != 4)
		return;
	size_t ihl = (size_t)(ip[0] & 15) * 4, total = be16(ip + 2);
	/* A header length below the minimum or past the packet is a lie. */
	if (ihl < 20 || (size_t)(end - ip) < ihl || total < ihl)
		return;
	if ((size_t)(end - ip) > total)
		end = ip + total; /* Ethernet padding is no payload */
	fi->family = 4;
	fi->proto = ip[9];
	memcpy(fi->src, ip + 12, 4);
	memcpy(fi->dst, ip + 16, 4);
	uint16_t frag = be16(ip + 6);
	if (frag & 0x3fff) /* more fragments, or an offset */
		fi->flags |= FRAME_FRAGMENT;
	if (!(frag & 0x1fff))
		ports(fi, ip + ihl, end);
}

/* Extension headers walked to find the upper layer; more is not a packet
 * any stack here sends. */
#define IPV6_EXT_MAX 8

static void ipv6(struct frame_info *fi, const uint8_t *ip, const uint8_t *end)
{
	if (end - ip < 40 || ip[0] >> 4 != 6)
		return;
	size_t payload = be16(ip + 4);
	if ((size_t)(end - ip - 40) > payload)
		end = ip + 40 + payload;
	fi->family = 6;
	memcpy(fi->src, ip + 8, 16);
	memcpy(fi->dst, ip + 24, 16);
	uint8_t next = ip[6];
	const uint8_t *p = ip + 40;
	bool first = true;
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		size_t len;
		if (next == 0 || next == 43 || next == 60) { /* hop-by-hop, routing, options */
			if (end - p < 8)
				break;
			len = ((size_t)p[1] + 1) * 8;
		} else if (next == 44) { /* fragment */
			if (end - p < 8)
				break;
			fi->flags |= FRAME_FRAGMENT;
			first = !(be16(p + 2) & 0xfff8);
			len = 8;
		} else if (next == 51) { /* authentication header */
			if (end - p < 8)
				break;
			len = ((size_t)p[1] + 2) * 4;
		} else {
			fi->proto = next;
			if (first)
				ports(fi, p, end);
			return;
		}
		if ((size_t)(end - p) < len)
			break;
		next = p[0];
		p += len;
	}
	/* The upper layer is out of reach: the header where the walk ended
	 * stands for it (no ports). */
	fi->proto = next;
}

void frame_classify(const uint8_t *f, size_t len, struct frame_info *fi)
{
	memset(fi, 0, sizeof(*fi));
	const uint8_t *end = f + len, *p = f + 12;
	if (len < 14)
		return;
	fi->ethertype = be16(p);
	p += 2;
	while (is_vlan(fi->ethertype) && fi->vlans < 2 && end - p >= 4) {
		fi->ethertype = be16(p + 2);
		fi->vlans++;
		p += 4;
	}
	if (fi->ethertype == ETH_P_IP)
		ipv4(fi, p, end);
	else if (fi->ethertype == ETH_P_IPV6)
		ipv6(fi, p, end);
}
