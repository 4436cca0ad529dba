#include <stdio.h>
#include <stdlib.h>

#include "net/net.h"

struct net_backend *net_backend_open(const struct net_config *nc, const uint8_t mac[6], char *err,
				     size_t errlen)
{
	struct net_backend *b = nc->kind == NET_USER  ? net_slirp_open(nc, mac, err, errlen)
				: nc->kind == NET_TAP ? net_tap_open(nc, err, errlen)
						      : net_socket_open(nc, err, errlen);
	if (!b)
		return NULL;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

void net_backend_send(struct net_backend *b, const struct iovec *iov, unsigned n, size_t len)
{
	pthread_mutex_lock(&b->lock);
	b->ops->send(b, iov, n, len);
	pthread_mutex_unlock(&b->lock);
}

void net_backend_close(struct net_backend *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	b->ops->destroy(b);
}
