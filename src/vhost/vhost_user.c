#include "vhost/vhost_user.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Requests (vhost-user spec, "Front-end message types"). */
enum {
	GET_FEATURES = 1,
	SET_FEATURES = 2,
	SET_OWNER = 3,
	SET_MEM_TABLE = 5,
	SET_VRING_NUM = 8,
	SET_VRING_ADDR = 9,
	SET_VRING_BASE = 10,
	GET_VRING_BASE = 11,
	SET_VRING_KICK = 12,
	SET_VRING_CALL = 13,
	GET_PROTOCOL_FEATURES = 15,
	SET_PROTOCOL_FEATURES = 16,
	SET_VRING_ENABLE = 18,
	GET_CONFIG = 24,
};

#define FLAG_VERSION	1u
#define FLAG_VERSION_M	3u
#define FLAG_REPLY	(1u << 2)
#define FLAG_NEED_REPLY (1u << 3)

#define F_PROTOCOL_FEATURES 30
#define PF_REPLY_ACK	    3
#define PF_CONFIG	    9
/* Protocol features popek knows how to use. */
#define PF_WANTED (1ull << PF_REPLY_ACK | 1ull << PF_CONFIG)

#define MAX_REGIONS 8
/* A backend that does not answer within this is treated as dead. */
#define REPLY_TIMEOUT_S 5

struct hdr {
	uint32_t request, flags, size;
};

struct region {
	uint64_t gpa, size, uaddr, mmap_offset;
};

struct vring_addr {
	uint32_t index, flags;
	uint64_t desc, used, avail, log;
};

struct vring_state {
	uint32_t index, num;
};

struct device_config {
	uint32_t offset, size, flags;
	uint8_t data[VHOST_USER_CONFIG_MAX];
};

/* Packed: on the wire the payload follows the 12-byte header directly. */
struct __attribute__((packed)) msg {
	struct hdr h;
	union {
		uint64_t u64;
		struct vring_state state;
		struct vring_addr addr;
		struct device_config config;
		struct {
			uint32_t nregions, pad;
			struct region r[MAX_REGIONS];
		} mem;
	} p;
};

int vhost_user_check_reply(const void *buf, size_t len, uint32_t request, uint32_t size)
{
	struct hdr h;
	if (len < sizeof(h))
		return -1;
	memcpy(&h, buf, sizeof(h));
	if (h.request != request || (h.flags & FLAG_VERSION_M) != FLAG_VERSION ||
	    !(h.flags & FLAG_REPLY) || h.size != size || len - sizeof(h) != size)
		return -1;
	return 0;
}

static void gone(struct vhost_user *v)
{
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
}

/* Send one message with nfds fds (at most one per memory region); -1 (and
 * the backend counts as gone) on failure. */
static int send_fds(struct vhost_user *v, uint32_t request, uint32_t flags, const void *payload,
		    uint32_t size, const int *fds, unsigned nfds)
{
	if (v->fd < 0)
		return -1;
	struct msg m = {.h = {request, FLAG_VERSION | flags, size}};
	if (size)
		memcpy(&m.p, payload, size);
	struct iovec iov = {&m, sizeof(m.h) + size};
	union {
		char buf[CMSG_SPACE(MAX_REGIONS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(v->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)iov.iov_len) {
		gone(v);
		return -1;
	}
	return 0;
}

static int send_msg(struct vhost_user *v, uint32_t request, uint32_t flags, const void *payload,
		    uint32_t size, int fd)
{
	return send_fds(v, request, flags, payload, size, &fd, fd >= 0);
}

static int read_full(int fd, void *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf = (uint8_t *)buf + n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read the reply to request, which must carry exactly size payload bytes. */
static int recv_reply(struct vhost_user *v, uint32_t request, void *payload, uint32_t size)
{
	struct msg m;
	if (v->fd < 0 || read_full(v->fd, &m.h, sizeof(m.h)) < 0)
		goto bad;
	/* The size field is the backend's: never read more than fits. */
	if (m.h.size > sizeof(m.p) || read_full(v->fd, &m.p, m.h.size) < 0 ||
	    vhost_user_check_reply(&m, sizeof(m.h) + m.h.size, request, size) < 0)
		goto bad;
	memcpy(payload, &m.p, size);
	return 0;
bad:
	gone(v);
	return -1;
}

static int get_u64(struct vhost_user *v, uint32_t request, uint64_t *out)
{
	return send_msg(v, request, 0, NULL, 0, -1) || recv_reply(v, request, out, sizeof(*out))
		   ? -1
		   : 0;
}

/* A request that changes backend state; with REPLY_ACK the backend confirms it. */
static int set_fds(struct vhost_user *v, uint32_t request, const void *payload, uint32_t size,
		   const int *fds, unsigned nfds)
{
	bool ack = v->protocol_features & 1ull << PF_REPLY_ACK;
	if (send_fds(v, request, ack ? FLAG_NEED_REPLY : 0, payload, size, fds, nfds) < 0)
		return -1;
	uint64_t status = 0;
	if (ack && recv_reply(v, request, &status, sizeof(status)) < 0)
		return -1;
	return status ? -1 : 0;
}

static int set(struct vhost_user *v, uint32_t request, const void *payload, uint32_t size, int fd)
{
	return set_fds(v, request, payload, size, &fd, fd >= 0);
}

static int set_u64(struct vhost_user *v, uint32_t request, uint64_t val, int fd)
{
	return set(v, request, &val, sizeof(val), fd);
}

int vhost_user_init(struct vhost_user *v, unsigned nqueues)
{
	memset(v, 0, sizeof(*v));
	v->fd = -1;
	for (unsigned q = 0; q < VHOST_USER_MAX_QUEUES; q++)
		v->kick[q] = v->call[q] = -1;
	if (nqueues > VHOST_USER_MAX_QUEUES)
		return -1;
	v->nqueues = nqueues;
	for (unsigned q = 0; q < v->nqueues; q++) {
		v->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		v->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->kick[q] < 0 || v->call[q] < 0)
			return -1;
	}
	return 0;
}

int vhost_user_attach(struct vhost_user *v, int fd)
{
	gone(v);
	v->fd = fd;
	memset(v->started, 0, sizeof(v->started));
	v->features = v->protocol_features = 0;
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		gone(v);
		return -1;
	}
	uint64_t pf = 0;
	int bad = get_u64(v, GET_FEATURES, &v->features) ||
		  send_msg(v, SET_OWNER, 0, NULL, 0, -1) ||
		  ((v->features & 1ull << F_PROTOCOL_FEATURES) &&
		   (get_u64(v, GET_PROTOCOL_FEATURES, &pf) ||
		    send_msg(v, SET_PROTOCOL_FEATURES, 0, &(uint64_t){pf & PF_WANTED}, 8, -1)));
	if (bad) {
		gone(v);
		return -1;
	}
	v->protocol_features = pf & PF_WANTED;
	return 0;
}

void vhost_user_hangup(struct vhost_user *v)
{
	gone(v);
}

void vhost_user_close(struct vhost_user *v)
{
	gone(v);
	for (unsigned q = 0; q < VHOST_USER_MAX_QUEUES; q++) {
		if (v->kick[q] >= 0)
			close(v->kick[q]);
		if (v->call[q] >= 0)
			close(v->call[q]);
		v->kick[q] = v->call[q] = -1;
	}
}

int vhost_user_setup(struct vhost_user *v, uint64_t features, const struct guest_mem *mem)
{
	/* PROTOCOL_FEATURES stays on: it is what makes rings start disabled. */
	uint64_t f = features | (v->features & 1ull << F_PROTOCOL_FEATURES);
	if (set_u64(v, SET_FEATURES, f, -1) < 0)
		return -1;
	struct msg m = {0};
	m.p.mem.nregions = (uint32_t)mem->nranges;
	for (int i = 0; i < mem->nranges; i++) {
		const struct mem_range *r = &mem->range[i];
		m.p.mem.r[i] = (struct region){
		    r->gpa, r->size, (uint64_t)(uintptr_t)(mem->base + r->offset), r->offset};
	}
	uint32_t size = 8 + (uint32_t)mem->nranges * sizeof(struct region);
	/* One fd per region; both ranges live in the same memfd. */
	const int fds[2] = {mem->fd, mem->fd};
	return set_fds(v, SET_MEM_TABLE, &m.p, size, fds, (unsigned)mem->nranges);
}

int vhost_user_start_queue(struct vhost_user *v, unsigned q, const struct vhost_vring *r,
			   const struct guest_mem *mem)
{
	/* The backend reads the rings through the shared mapping: give it our
	 * addresses for them, checked to be RAM (virtq_enable did so too). */
	size_t desc_len = 16u * r->num, avail_len = 6 + 2u * r->num, used_len = 6 + 8u * r->num;
	void *d = gpa_ptr(mem, r->desc, desc_len), *a = gpa_ptr(mem, r->avail, avail_len),
	     *u = gpa_ptr(mem, r->used, used_len);
	if (q >= v->nqueues || !d || !a || !u)
		return -1;
	struct vring_addr addr = {.index = q,
				  .desc = (uint64_t)(uintptr_t)d,
				  .used = (uint64_t)(uintptr_t)u,
				  .avail = (uint64_t)(uintptr_t)a};
	int bad = set(v, SET_VRING_NUM, &(struct vring_state){q, r->num}, 8, -1) ||
		  set(v, SET_VRING_BASE, &(struct vring_state){q, r->base}, 8, -1) ||
		  set(v, SET_VRING_ADDR, &addr, sizeof(addr), -1) ||
		  /* The call fd first: a backend starts the ring at KICK, and a
		   * kick left in the eventfd (a reconnect) makes it answer at once. */
		  set_u64(v, SET_VRING_CALL, q, v->call[q]) ||
		  set_u64(v, SET_VRING_KICK, q, v->kick[q]) ||
		  ((v->features & 1ull << F_PROTOCOL_FEATURES) &&
		   set(v, SET_VRING_ENABLE, &(struct vring_state){q, 1}, 8, -1));
	if (bad)
		return -1;
	v->started[q] = true;
	return 0;
}

int vhost_user_stop(struct vhost_user *v)
{
	int rc = 0;
	for (unsigned q = 0; q < v->nqueues; q++) {
		if (!v->started[q])
			continue;
		v->started[q] = false;
		/* GET_VRING_BASE stops the ring; its answer is where it stopped. */
		struct vring_state st = {q, 0};
		if (send_msg(v, GET_VRING_BASE, 0, &st, sizeof(st), -1) < 0 ||
		    recv_reply(v, GET_VRING_BASE, &st, sizeof(st)) < 0 || st.index != q)
			rc = -1;
	}
	return rc;
}

int vhost_user_get_config(struct vhost_user *v, void *buf, uint32_t len)
{
	if (!(v->protocol_features & 1ull << PF_CONFIG) || len > VHOST_USER_CONFIG_MAX)
		return -1;
	/* The request carries the space it asks for; the reply fills it in. */
	struct device_config c = {.offset = 0, .size = len};
	uint32_t size = 12 + len;
	if (send_msg(v, GET_CONFIG, 0, &c, size, -1) < 0 || recv_reply(v, GET_CONFIG, &c, size) < 0)
		return -1;
	if (c.offset != 0 || c.size != len) {
		gone(v);
		return -1;
	}
	memcpy(buf, c.data, len);
	return 0;
}

void vhost_user_kick(struct vhost_user *v, unsigned q)
{
	uint64_t one = 1;
	if (q < v->nqueues && v->kick[q] >= 0 && write(v->kick[q], &one, sizeof(one)) < 0) {
		/* A full counter still wakes the backend: nothing to do. */
	}
}
