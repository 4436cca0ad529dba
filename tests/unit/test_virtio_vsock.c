/* virtio-vsock driven through its PCI transport by a test driver (this
 * thread, as a vCPU would) while the device serves real Unix sockets on a
 * loop thread: the CONNECT handshake, data and credit both ways, guest
 * connections to PATH_PORT, refusals, shutdown. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/virtio_vsock.h"
#include "virtio_driver.h"

#define F_V1  (1ull << VIRTIO_F_VERSION_1)
#define RXBUF 0x200000 /* receive buffer i at RXBUF + i * 0x2000 */
#define TXBUF 0x300000
#define HDR   44
#define RXQ   0
#define TXQ   1
#define CID   3

enum { REQUEST = 1, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST };

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

static void *run_loop(void *l)
{
	loop_run(l);
	return NULL;
}

/* Make descriptor n (a one-buffer chain) available on queue q. */
static void offer(struct vdrv *d, unsigned q, uint16_t n, uint64_t gpa, uint32_t len, bool write)
{
	struct vd_queue *vq = &d->q[q];
	struct virtq_desc desc = {gpa, len, write ? VIRTQ_DESC_F_WRITE : 0, 0};
	gpa_write(&d->mem, vq->desc + 16 * n, &desc, sizeof(desc));
	gpa_write(&d->mem, vq->avail + 4 + 2 * (vq->avail_idx % VD_QSIZE), &n, 2);
	vq->avail_idx++;
	__atomic_store_n((uint16_t *)gpa_ptr(&d->mem, vq->avail + 2, 2), vq->avail_idx,
			 __ATOMIC_RELEASE);
	vd_wr(d, VIRTIO_BAR_NOTIFY + q * VIRTIO_NOTIFY_MULTIPLIER, 2, q);
}

static unsigned next_rx;

static void post_rx(struct vdrv *d)
{
	unsigned i = next_rx++ % VD_QSIZE;
	offer(d, RXQ, (uint16_t)i, RXBUF + i * 0x2000, HDR + 4096, true);
}

/* The guest sends one packet (header, then payload) on the transmit queue. */
static void guest_send(struct vdrv *d, uint16_t op, uint32_t sport, uint32_t dport,
		       const void *data, uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	static unsigned n;
	unsigned i = n++ % VD_QSIZE;
	struct hdr h = {CID, 2, sport, dport, len, 1, op, 0, buf_alloc, fwd_cnt};
	if (op == SHUTDOWN)
		h.flags = 3;
	gpa_write(&d->mem, TXBUF + i * 0x1000, &h, HDR);
	if (len)
		gpa_write(&d->mem, TXBUF + i * 0x1000 + HDR, data, len);
	offer(d, TXQ, (uint16_t)i, TXBUF + i * 0x1000, HDR + len, false);
	uint32_t used;
	assert_true(vd_used(d, TXQ, &used)); /* handled in this (the kicking) thread */
}

/* The next packet the device gave the guest, with its payload in data. */
static struct hdr guest_recv(struct vdrv *d, char *data)
{
	struct vd_queue *vq = &d->q[RXQ];
	for (int t = 0; t < 5000; t++) {
		uint16_t idx = __atomic_load_n((uint16_t *)gpa_ptr(&d->mem, vq->used + 2, 2),
					       __ATOMIC_ACQUIRE);
		if (idx != vq->used_seen) {
			uint32_t elem[2];
			gpa_read(&d->mem, vq->used + 4 + 8 * (vq->used_seen++ % VD_QSIZE), elem, 8);
			struct hdr h;
			gpa_read(&d->mem, RXBUF + elem[0] * 0x2000, &h, HDR);
			assert_int_equal(elem[1], HDR + h.len);
			if (data)
				gpa_read(&d->mem, RXBUF + elem[0] * 0x2000 + HDR, data, h.len);
			post_rx(d); /* give the buffer back, as Linux does */
			return h;
		}
		usleep(1000);
	}
	fail_msg("no packet for the guest within 5 s");
	return (struct hdr){0};
}

static int unix_socket(const char *path, bool listening)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (listening)
		assert_true(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 4) == 0);
	else
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void read_exactly(int fd, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, buf + got, len - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

static void streams(void **state)
{
	struct vdrv d;
	char err[256], dir[] = "/tmp/popek-vsock-XXXXXX", path[128], data[4096];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	vd_init(&d);
	struct loop *l = loop_new(err, sizeof(err));
	assert_non_null(l);
	pthread_t lt;
	assert_int_equal(pthread_create(&lt, NULL, run_loop, l), 0);
	d.env.loop = l;
	struct virtio_vsock *v = virtio_vsock_create(&d.env, CID, path, err, sizeof(err));
	assert_non_null(v);
	assert_int_equal(vd_cfg(&d, PCI_DEVICE_ID, 2), 0x1040 + 19);
	assert_true(vd_start(&d, F_V1, 3, true) & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(vd_rd(&d, VIRTIO_BAR_DEVICE, 8), CID);
	for (int i = 0; i < 8; i++)
		post_rx(&d);

	/* Host → guest: CONNECT, REQUEST, RESPONSE, OK with the host's port. */
	int h = unix_socket(path, false);
	assert_int_equal(write(h, "CONNECT 5000\n", 13), 13);
	struct hdr p = guest_recv(&d, NULL);
	assert_int_equal(p.op, REQUEST);
	assert_true(p.src_cid == 2 && p.dst_cid == CID && p.dst_port == 5000 && p.type == 1);
	uint32_t hport = p.src_port;
	guest_send(&d, RESPONSE, 5000, hport, NULL, 0, 8, 0); /* the guest takes 8 bytes */
	char line[32];
	int n = snprintf(line, sizeof(line), "OK %u\n", hport);
	read_exactly(h, data, (size_t)n);
	assert_memory_equal(data, line, (size_t)n);

	/* Data host → guest stops at the guest's credit and goes on with it. */
	assert_int_equal(write(h, "0123456789abcdef", 16), 16);
	p = guest_recv(&d, data);
	assert_true(p.op == RW && p.len == 8);
	assert_memory_equal(data, "01234567", 8);
	usleep(50 * 1000);
	guest_send(&d, CREDIT_UPDATE, 5000, hport, NULL, 0, 8, 8);
	p = guest_recv(&d, data);
	assert_true(p.op == RW && p.len == 8);
	assert_memory_equal(data, "89abcdef", 8);

	/* Guest → host, and the credit the device gives for it. */
	guest_send(&d, RW, 5000, hport, "pong", 4, 8, 16);
	read_exactly(h, data, 4);
	assert_memory_equal(data, "pong", 4);
	guest_send(&d, CREDIT_REQUEST, 5000, hport, NULL, 0, 8, 16);
	p = guest_recv(&d, NULL);
	assert_true(p.op == CREDIT_UPDATE && p.buf_alloc == 256u << 10 && p.fwd_cnt == 4);

	/* Host EOF → SHUTDOWN; the guest shuts too → RST, the socket closes. */
	shutdown(h, SHUT_WR);
	p = guest_recv(&d, NULL);
	assert_true(p.op == SHUTDOWN && p.flags == 2);
	guest_send(&d, SHUTDOWN, 5000, hport, NULL, 0, 8, 16);
	p = guest_recv(&d, NULL);
	assert_int_equal(p.op, RST);
	assert_int_equal(read(h, data, 1), 0);
	close(h);

	/* Guest → host: PATH_6000 is connected; PATH_6001 has no listener. */
	char lpath[160];
	snprintf(lpath, sizeof(lpath), "%s_6000", path);
	int ls = unix_socket(lpath, true);
	guest_send(&d, REQUEST, 1025, 6000, NULL, 0, 4096, 0);
	p = guest_recv(&d, NULL);
	assert_true(p.op == RESPONSE && p.src_port == 6000 && p.dst_port == 1025);
	int c = accept(ls, NULL, NULL);
	assert_true(c >= 0);
	guest_send(&d, RW, 1025, 6000, "hello", 5, 4096, 0);
	read_exactly(c, data, 5);
	assert_memory_equal(data, "hello", 5);
	assert_int_equal(write(c, "back", 4), 4);
	p = guest_recv(&d, data);
	assert_true(p.op == RW && p.len == 4);
	assert_memory_equal(data, "back", 4);
	guest_send(&d, REQUEST, 1026, 6001, NULL, 0, 4096, 0);
	p = guest_recv(&d, NULL);
	assert_true(p.op == RST && p.dst_port == 1026);

	/* A packet for no stream, an unknown op: reset, nothing else. */
	guest_send(&d, RW, 4444, 6000, "x", 1, 4096, 0);
	p = guest_recv(&d, NULL);
	assert_true(p.op == RST && p.dst_port == 4444);
	guest_send(&d, 99, 1025, 6000, NULL, 0, 4096, 0);
	p = guest_recv(&d, NULL);
	assert_true(p.op == RST && p.dst_port == 1025);
	assert_int_equal(read(c, data, 1), 0); /* that stream is gone */
	assert_false(vd_status(&d) & VIRTIO_STATUS_NEEDS_RESET);

	/* A bad line gets an ERR line and the socket closes. */
	h = unix_socket(path, false);
	assert_int_equal(write(h, "CONNECT x\n", 10), 10);
	const char want[] = "ERR expected CONNECT PORT\n";
	read_exactly(h, data, sizeof(want) - 1);
	assert_memory_equal(data, want, sizeof(want) - 1);
	assert_int_equal(read(h, data, 1), 0);
	close(h);

	close(c);
	close(ls);
	unlink(lpath);
	loop_stop(l);
	pthread_join(lt, NULL);
	virtio_vsock_destroy(v);
	assert_int_equal(access(path, F_OK), -1); /* the listener's file goes with it */
	loop_free(l);
	vd_fini(&d);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
