/* --net user[,hostfwd=...][,restrict=on] | tap=IFNAME | socket=PATH, each with
 * optional ,mac=XX:XX:XX:XX:XX:XX and ,capture=FILE.pcap. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

static int port(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* "[ADDR]:PORT" with ADDR optional, an IPv6 ADDR in brackets as in QEMU
 * ("[::1]:8080"); cuts s at the colon and drops the brackets. */
static int addr_port(char *s, const char **addr, uint16_t *p)
{
	char *colon = strrchr(s, ':');
	if (!colon)
		return -1;
	*colon = 0;
	if (*s == '[') {
		size_t n = strlen(s);
		if (n < 3 || s[n - 1] != ']')
			return -1;
		s[n - 1] = 0;
		s++;
	}
	*addr = *s ? s : NULL;
	return port(colon + 1, p);
}

static int parse_hostfwd(char *v, struct net_config *nc)
{
	if (nc->nhostfwd == MAX_HOSTFWDS)
		return -1;
	struct net_hostfwd *f = &nc->hostfwd[nc->nhostfwd];
	if (!strncmp(v, "tcp:", 4))
		f->udp = false;
	else if (!strncmp(v, "udp:", 4))
		f->udp = true;
	else
		return -1;
	char *dash = strchr(v + 4, '-');
	if (!dash)
		return -1;
	*dash = 0;
	if (addr_port(v + 4, &f->host_addr, &f->host_port) ||
	    addr_port(dash + 1, &f->guest_addr, &f->guest_port))
		return -1;
	nc->nhostfwd++;
	return 0;
}

static int parse_mac(const char *v, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	if (sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	/* A multicast source address is not a NIC's. */
	return mac[0] & 1 ? -1 : 0;
}

int net_config_parse(char *arg, struct net_config *nc, char *err, size_t errlen)
{
	memset(nc, 0, sizeof(*nc));
	if (strlen(arg) >= sizeof(nc->spec)) {
		snprintf(err, errlen, "--net %.40s...: longer than %zu characters", arg,
			 sizeof(nc->spec) - 1);
		return -1;
	}
	strcpy(nc->spec, arg);
	char *save = NULL;
	char *kind = strtok_r(arg, ",", &save);
	if (kind && !strcmp(kind, "user")) {
		nc->kind = NET_USER;
	} else if (kind && !strncmp(kind, "tap=", 4) && kind[4]) {
		nc->kind = NET_TAP;
		nc->target = kind + 4;
	} else if (kind && !strncmp(kind, "socket=", 7) && kind[7]) {
		nc->kind = NET_SOCKET;
		nc->target = kind + 7;
	} else {
		snprintf(err, errlen, "--net %s: start with user, tap=IFNAME or socket=PATH",
			 nc->spec);
		return -1;
	}
	for (char *o; (o = strtok_r(NULL, ",", &save));) {
		char *v = strchr(o, '=');
		if (v)
			*v++ = 0;
		bool user = nc->kind == NET_USER;
		if (v && user && !strcmp(o, "hostfwd")) {
			char copy[128];
			snprintf(copy, sizeof(copy), "%s", v);
			if (parse_hostfwd(v, nc)) {
				snprintf(
				    err, errlen,
				    "--net: hostfwd=%s: use tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT "
				    "(or udp:...), at most %d",
				    copy, MAX_HOSTFWDS);
				return -1;
			}
		} else if (v && user && !strcmp(o, "restrict") &&
			   (!strcmp(v, "on") || !strcmp(v, "off"))) {
			nc->restricted = !strcmp(v, "on");
		} else if (v && !strcmp(o, "mac")) {
			if (parse_mac(v, nc->mac)) {
				snprintf(err, errlen,
					 "--net: mac=%s: use six hex bytes like 52:54:00:12:34:56 "
					 "(first byte even: not multicast)",
					 v);
				return -1;
			}
			nc->mac_set = true;
		} else if (v && *v && !strcmp(o, "capture")) {
			nc->capture = v;
		} else {
			snprintf(err, errlen,
				 "--net %s: unknown option '%s' (user takes hostfwd= and "
				 "restrict=on|off; every NIC takes mac= and capture=)",
				 nc->spec, o);
			return -1;
		}
	}
	return 0;
}

void net_mac(const struct net_config *nc, const char *vm_name, int index, uint8_t mac[6])
{
	if (nc->mac_set) {
		memcpy(mac, nc->mac, 6);
		return;
	}
	/* FNV-1a of the name: QEMU's locally administered prefix 52:54:00,
	 * three bytes of hash, the NIC index folded into the last. */
	uint32_t h = 2166136261u;
	for (const char *s = vm_name ? vm_name : ""; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	mac[0] = 0x52;
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)(((h & 0xff) & ~3u) | ((unsigned)index & 3u));
}
