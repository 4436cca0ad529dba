/* `popek switch PATH`: a learning Ethernet switch on a Unix stream socket.
 * Ports speak QEMU's -netdev stream framing (net/stream.h), so popek VMs
 * (--net socket=PATH) and QEMU VMs (-netdev stream,addr.type=unix,
 * addr.path=PATH) share one segment; --connect adds a peer that listens
 * itself (Debian's passt). */
#ifndef POPEK_NET_SWITCH_H
#define POPEK_NET_SWITCH_H

#include <stddef.h>
#include <stdint.h>

#define SWITCH_PORTS 32
#define SWITCH_MACS  256

/* The forwarding table: which port a source address was last seen on. */
struct switch_table {
	struct {
		uint8_t mac[6];
		int port; /* -1: free */
	} e[SWITCH_MACS];
	unsigned next; /* the slot a new address replaces when all are taken */
};

void switch_table_init(struct switch_table *t);
/* A frame arrived on port: remember where its source lives. */
void switch_learn(struct switch_table *t, const uint8_t src[6], int port);
/* The port for dst, or -1: flood (broadcast, multicast, unknown). */
int switch_lookup(const struct switch_table *t, const uint8_t dst[6]);
/* The port is gone: forget what lived behind it. */
void switch_forget(struct switch_table *t, int port);

/* Serve PATH until SIGINT/SIGTERM, with the npeers Unix sockets in peers
 * (listening peers such as passt) connected as ports first. Returns an exit
 * code; err on failure. */
int switch_run(const char *path, char *const *peers, int npeers, char *err, size_t errlen);

#endif
