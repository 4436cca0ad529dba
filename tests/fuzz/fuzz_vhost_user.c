/* The vhost-user frontend against a hostile backend: the input is everything
 * the backend sends back, read by the frontend as it sets up RAM, starts two
 * queues and stops them. Nothing the backend says may crash the VMM or make it
 * read past a message; each bad reply just fails the call. The first byte
 * picks whether the backend agreed to REPLY_ACK (every request answered)
 * and to CONFIG (the device config space is read last, as vhost-user-blk
 * does). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/memory.h"
#include "vhost/vhost_user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (64u << 10) /* fits the socket buffer: the writer never blocks */

static struct guest_mem mem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > MAX_INPUT)
		return 0;
	char err[256];
	if (!mem.base && guest_mem_init(&mem, 2u << 20, err, sizeof(err)) < 0)
		abort();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if (size > 1 && write(sv[1], data + 1, size - 1) != (ssize_t)(size - 1))
		abort();
	shutdown(sv[1], SHUT_WR); /* the backend said all it will: then EOF */
	struct vhost_user v;
	memset(&v, 0, sizeof(v));
	v.fd = sv[0];
	v.nqueues = 2;
	for (unsigned q = 0; q < VHOST_USER_MAX_QUEUES; q++)
		v.kick[q] = v.call[q] = -1;
	v.features = 1ull << 30; /* PROTOCOL_FEATURES: rings get enabled too */
	v.protocol_features = ((data[0] & 1) ? 1ull << 3 : 0) | ((data[0] & 2) ? 1ull << 9 : 0);
	vhost_user_setup(&v, 1ull << 32, &mem);
	struct vhost_vring r = {.num = 64, .desc = 0x1000, .avail = 0x2000, .used = 0x3000};
	for (unsigned q = 0; q < 2; q++)
		vhost_user_start_queue(&v, q, &r, &mem);
	vhost_user_stop(&v);
	uint8_t config[60];
	vhost_user_get_config(&v, config, sizeof(config));
	/* The parser on its own, for a reply of each size the frontend expects. */
	vhost_user_check_reply(data + 1, size - 1, data[0] & 0x1f, 8);
	vhost_user_close(&v);
	close(sv[1]);
	return 0;
}
