/* --net tap=IFNAME: frames go through a Linux tap device with virtio-net
 * headers (IFF_VNET_HDR), so checksum and TSO offloads pass straight through
 * to the host kernel. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net/net.h"

struct tap_backend {
	struct net_backend b;
	int fd;
	unsigned idx;
	uint8_t buf[NET_HDR_LEN + NET_GSO_MAX];
};

static void t_fill(struct net_backend *b, struct net_pollset *ps, int *timeout_ms)
{
	struct tap_backend *t = (struct tap_backend *)b;
	(void)timeout_ms;
	t->idx = ps->n;
	ps->fd[ps->n++] = (struct pollfd){t->fd, POLLIN, 0};
}

static void t_dispatch(struct net_backend *b, struct net_pollset *ps)
{
	struct tap_backend *t = (struct tap_backend *)b;
	if (!ps->fd[t->idx].revents)
		return;
	/* A bounded batch per round, so the guest's transmit side gets the lock. */
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
		if (n < (ssize_t)NET_HDR_LEN)
			break;
		t->b.deliver(t->b.ctx, t->buf, (size_t)n);
	}
}

static void t_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	struct tap_backend *t = (struct tap_backend *)b;
	(void)len;
	/* A full tap queue drops the frame, as a wire would. */
	while (writev(t->fd, iov, (int)n) < 0 && errno == EINTR)
		;
}

static void t_set_offload(struct net_backend *b, unsigned off)
{
	struct tap_backend *t = (struct tap_backend *)b;
	unsigned flags = (off & NET_OFF_CSUM ? TUN_F_CSUM : 0) |
			 (off & NET_OFF_TSO4 ? TUN_F_TSO4 : 0) |
			 (off & NET_OFF_TSO6 ? TUN_F_TSO6 : 0);
	if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)flags) < 0)
		fprintf(stderr, "popek: --net tap: cannot set offloads: %s\n", strerror(errno));
}

static void t_destroy(struct net_backend *b)
{
	struct tap_backend *t = (struct tap_backend *)b;
	close(t->fd);
	free(t);
}

static const struct net_backend_ops tap_ops = {
    .fill = t_fill,
    .dispatch = t_dispatch,
    .send = t_send,
    .set_offload = t_set_offload,
    .destroy = t_destroy,
};

struct net_backend *net_tap_open(const struct net_config *nc, char *err, size_t errlen)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	int hdr = (int)NET_HDR_LEN;
	if (strlen(nc->target) >= sizeof(ifr.ifr_name)) {
		snprintf(err, errlen, "--net tap=%s: interface names are at most %zu characters",
			 nc->target, sizeof(ifr.ifr_name) - 1);
		return NULL;
	}
	strcpy(ifr.ifr_name, nc->target);
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen,
			 "--net tap=%s: cannot open /dev/net/tun: %s (load the tun module: "
			 "modprobe tun)",
			 nc->target, strerror(errno));
		return NULL;
	}
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		snprintf(err, errlen, "--net tap=%s: cannot attach to the tap: %s (%s)", nc->target,
			 strerror(e),
			 e == EPERM || e == EACCES
			     ? "create it for your user first: sudo ip tuntap add dev IFNAME mode "
			       "tap user $USER"
			 : e == EBUSY ? "another program has it open"
				      : "check the name; create it with ip tuntap add");
		close(fd);
		return NULL;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, 0ul) < 0) {
		snprintf(err, errlen, "--net tap=%s: the tap refuses virtio-net headers: %s",
			 nc->target, strerror(errno));
		close(fd);
		return NULL;
	}
	struct tap_backend *t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->fd = fd;
	t->b.ops = &tap_ops;
	t->b.vnet_hdr = true;
	return &t->b;
}
