/* Fuzz virtio-vsock as a hostile driver (its BAR, config space, RAM for the
 * receive, transmit and event queues) while host programs connect, write,
 * and hang up (FUZZ_OP_HOST). The host ends are socketpairs the fuzzer never
 * reads, so the guest's data fills the device's per-connection buffer; the
 * device has no loop, and each host op serves its sockets once. Guest
 * connections to the host are refused (no Unix socket path). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/virtio_vsock.h"
#include "fuzz_util.h"

#define PEERS 4

static struct virtio_vsock *vs;
static int peer[PEERS] = {-1, -1, -1, -1};

/* value: bits 0-1 what, 2-3 which peer, 32-63 a port or the bytes' filler. */
static void host(void *ctx, uint64_t value)
{
	unsigned what = value & 3, i = (value >> 2) & (PEERS - 1);
	uint32_t arg = (uint32_t)(value >> 32);
	char line[32];
	int sv[2];
	switch (what) {
	case 0: /* a new host program connects to guest port arg */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
			break;
		if (peer[i] >= 0)
			close(peer[i]);
		peer[i] = sv[0];
		if (write(sv[0], line, (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", arg)) <
		    0)
			break;
		virtio_vsock_host_connect(vs, sv[1]);
		break;
	case 1: { /* it writes up to 64 KiB */
		static char buf[65536];
		memset(buf, (int)arg, sizeof(buf));
		if (peer[i] >= 0 && send(peer[i], buf, (arg & 0xffff) + 1, MSG_NOSIGNAL) < 0)
			break;
		break;
	}
	case 2: /* it hangs up, or half-closes */
		if (peer[i] >= 0 && (arg & 1))
			shutdown(peer[i], SHUT_WR);
		else if (peer[i] >= 0) {
			close(peer[i]);
			peer[i] = -1;
		}
		break;
	}
	virtio_vsock_poll(vs);
}

static void setup(struct fuzz_rig *r)
{
	static struct vm_config cfg; /* the rig's, with a vsock of CID 3 */
	cfg = *r->m.cfg;
	cfg.vsock.cid = 3;
	r->m.cfg = &cfg;
	vs = fuzz_add(r, &virtio_vsock_device);
	fuzz_window(r, &r->m.mmio, fuzz_pci_enable(r, 1), VIRTIO_BAR_SIZE);
	fuzz_window(r, &r->m.pio, PCI_CONFIG_ADDR, 8);
	r->host = host;
}

FUZZ_RIG_TARGET(setup)
