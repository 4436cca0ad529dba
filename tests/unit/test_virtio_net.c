/* virtio-net driven through its PCI transport, on the real socket backend:
 * the test is the switch at the other end of a Unix socket (QEMU's stream
 * framing) and the backend is served on an event loop of its own thread. Plus the --net parser, the
 * MAC and the switch's learning table. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio_net.h"
#include "net/switch.h"
#include "util/loop.h"
#include "virtio_driver.h"

#define BUF  0x200000
#define F_V1 (1ull << VIRTIO_F_VERSION_1)

struct nic {
	struct vdrv d;
	struct loop *loop; /* the VM's event loop, on its own thread here */
	pthread_t loop_thread;
	struct virtio_net *n;
	int peer; /* our end: the switch */
	char path[64];
};

static const uint8_t MAC[6] = {0x52, 0x54, 0, 1, 2, 3};

static void *run_loop(void *l)
{
	loop_run(l);
	return NULL;
}

static void nic_up(struct nic *t, uint64_t features)
{
	char err[256];
	vd_init(&t->d);
	t->loop = loop_new(err, sizeof(err));
	assert_non_null(t->loop);
	assert_int_equal(pthread_create(&t->loop_thread, NULL, run_loop, t->loop), 0);
	t->d.env.loop = t->loop;
	snprintf(t->path, sizeof(t->path), "/tmp/popek-unit-net-%d.sock", getpid());
	unlink(t->path);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, t->path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0);
	static char spec[80];
	snprintf(spec, sizeof(spec), "socket=%s", t->path);
	struct net_config nc;
	assert_int_equal(net_config_parse(spec, &nc, err, sizeof(err)), 0);
	struct net_backend *be = net_backend_open(&nc, MAC, err, sizeof(err));
	assert_non_null(be);
	t->peer = accept(l, NULL, NULL);
	assert_true(t->peer >= 0);
	close(l);
	t->n = virtio_net_create(&t->d.env, be, MAC, NULL, err, sizeof(err));
	assert_non_null(t->n);
	assert_int_equal(virtio_net_start(t->n, err, sizeof(err)), 0);
	assert_true(vd_start(&t->d, F_V1 | features, 2, true) & VIRTIO_STATUS_DRIVER_OK);
}

static void nic_down(struct nic *t)
{
	loop_stop(t->loop); /* as the machine does: the loop first, then its devices */
	pthread_join(t->loop_thread, NULL);
	virtio_net_destroy(t->n);
	loop_free(t->loop);
	close(t->peer);
	unlink(t->path);
	vd_fini(&t->d);
}

/* One framed frame from the NIC within 5 s; its length, or -1. */
static int peer_read(struct nic *t, uint8_t *buf, size_t cap, int ms)
{
	struct pollfd p = {t->peer, POLLIN, 0};
	uint8_t len[4];
	if (poll(&p, 1, ms) != 1 || recv(t->peer, len, 4, MSG_WAITALL) != 4)
		return -1;
	size_t n = (size_t)len[0] << 24 | (size_t)len[1] << 16 | (size_t)len[2] << 8 | len[3];
	assert_true(n <= cap);
	assert_int_equal(recv(t->peer, buf, n, MSG_WAITALL), (ssize_t)n);
	return (int)n;
}

static void peer_send(struct nic *t, const uint8_t *frame, size_t n)
{
	uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	assert_int_equal(send(t->peer, len, 4, 0), 4);
	assert_int_equal(send(t->peer, frame, n, 0), (ssize_t)n);
}

/* Wait (5 s at most) until queue q's used index reaches want. */
static bool used_reaches(struct nic *t, unsigned q, uint16_t want)
{
	for (int i = 0; i < 500; i++) {
		uint16_t idx = __atomic_load_n(
		    (uint16_t *)gpa_ptr(&t->d.mem, t->d.q[q].used + 2, 2), __ATOMIC_ACQUIRE);
		if (idx == want)
			return true;
		usleep(10000);
	}
	return false;
}

static void make_frame(uint8_t *f, size_t n, uint8_t tag)
{
	memset(f, 0xff, 6); /* broadcast */
	memcpy(f + 6, MAC, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	for (size_t i = 14; i < n; i++)
		f[i] = (uint8_t)(tag + i);
}

static void transmit(struct nic *t, size_t len, uint8_t tag, bool writable)
{
	uint8_t hdr[NET_HDR_LEN] = {0}, f[4096];
	make_frame(f, len, tag);
	gpa_write(&t->d.mem, BUF, hdr, sizeof(hdr));
	gpa_write(&t->d.mem, BUF + 0x100, f, len);
	struct vd_buf b[2] = {{BUF, NET_HDR_LEN, false}, {BUF + 0x100, (uint32_t)len, writable}};
	vd_submit(&t->d, 1, b, 2);
}

static void config_and_features(void **state)
{
	struct nic t;
	nic_up(&t, VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(vd_rd(&t.d, VIRTIO_BAR_DEVICE + i, 1), MAC[i]);
	assert_int_equal(vd_rd(&t.d, VIRTIO_BAR_DEVICE + 6, 2), 1); /* link up */
	uint64_t f = vd_device_features(&t.d);
	assert_true(f & VIRTIO_NET_F_MRG_RXBUF);
	/* No virtio-net headers on a socket: the device completes checksums
	 * itself, and nothing the backend would have to understand is offered. */
	assert_true(f & VIRTIO_NET_F_CSUM);
	assert_false(f & (VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_GUEST_CSUM));
	nic_down(&t);
}

static void transmit_reaches_the_switch(void **state)
{
	struct nic t;
	uint8_t got[2048], want[2048];
	nic_up(&t, VIRTIO_NET_F_MRG_RXBUF);
	transmit(&t, 60, 7, false);
	make_frame(want, 60, 7);
	assert_int_equal(peer_read(&t, got, sizeof(got), 5000), 60);
	assert_memory_equal(got, want, 60);
	/* Over 1518 bytes without TSO: dropped, the next frame goes through. */
	assert_true(used_reaches(&t, 1, 1));
	transmit(&t, 2000, 1, false);
	assert_true(used_reaches(&t, 1, 2));
	transmit(&t, 100, 9, false);
	make_frame(want, 100, 9);
	assert_int_equal(peer_read(&t, got, sizeof(got), 5000), 100);
	assert_memory_equal(got, want, 100);
	assert_false(vd_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	nic_down(&t);
}

/* A UDP/IPv4 frame sent with NEEDS_CSUM (the field holds the pseudo-header's
 * sum, as a driver leaves it): the switch gets the frame with its UDP checksum
 * complete, 0x2840 (worked out by RFC 768's definition), the rest unchanged;
 * the payload has an odd length. A header whose checksum would lie past the
 * frame's end is dropped. */
static void transmit_completes_checksum(void **state)
{
	struct nic t;
	enum { LEN = 14 + 20 + 8 + 37 };
	uint8_t f[LEN] = {0}, got[2048];
	make_frame(f, 14, 0);
	uint8_t ip[20] = {0x45, 0, 0,  20 + 8 + 37, 0, 0,  0x40, 0, 64, 17,
			  0,	0, 10, 0,	    2, 15, 10,	 0, 2,	2};
	uint8_t udp[8] = {4000 >> 8, 4000 & 0xff, 5000 >> 8, 5000 & 0xff, 0, 8 + 37, 0x18, 0x4f};
	memcpy(f + 14, ip, sizeof(ip));
	memcpy(f + 34, udp, sizeof(udp));
	for (int i = 0; i < 37; i++)
		f[42 + i] = (uint8_t)(i * 7 + 3);
	nic_up(&t, VIRTIO_NET_F_CSUM);
	struct virtio_net_hdr h = {
	    .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
	gpa_write(&t.d.mem, BUF, &h, sizeof(h));
	gpa_write(&t.d.mem, BUF + 0x100, f, 20);
	gpa_write(&t.d.mem, BUF + 0x200, f + 20, LEN - 20); /* split across two buffers */
	struct vd_buf b[3] = {
	    {BUF, NET_HDR_LEN, false}, {BUF + 0x100, 20, false}, {BUF + 0x200, LEN - 20, false}};
	vd_submit(&t.d, 1, b, 3);
	assert_int_equal(peer_read(&t, got, sizeof(got), 5000), LEN);
	f[40] = 0x28;
	f[41] = 0x40;
	assert_memory_equal(got, f, LEN);
	/* the guest's buffer is not written: the device completes a copy */
	assert_int_equal(((uint8_t *)gpa_ptr(&t.d.mem, BUF + 0x200, LEN - 20))[20], 0x18);
	h.csum_start = LEN - 7;
	gpa_write(&t.d.mem, BUF, &h, sizeof(h));
	vd_submit(&t.d, 1, b, 3);
	assert_int_equal(peer_read(&t, got, sizeof(got), 300), -1);
	assert_false(vd_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	nic_down(&t);
}

/* Three 64-byte receive buffers take one 150-byte frame (162 with the
 * header): num_buffers says 3 and the pieces are the frame in order. */
static void receive_merges_buffers(void **state)
{
	struct nic t;
	nic_up(&t, VIRTIO_NET_F_MRG_RXBUF);
	struct vd_queue *q = &t.d.q[0];
	for (uint16_t i = 0; i < 3; i++) {
		struct virtq_desc e = {BUF + 0x1000u * i, 64, VIRTQ_DESC_F_WRITE, 0};
		gpa_write(&t.d.mem, q->desc + 16 * i, &e, sizeof(e));
		gpa_write(&t.d.mem, q->avail + 4 + 2 * i, &i, 2);
	}
	uint16_t three = 3;
	gpa_write(&t.d.mem, q->avail + 2, &three, 2);
	vd_wr(&t.d, VIRTIO_BAR_NOTIFY, 2, 0);
	uint8_t f[150], got[162];
	make_frame(f, sizeof(f), 3);
	peer_send(&t, f, sizeof(f));
	assert_true(used_reaches(&t, 0, 3));
	uint32_t lens[3], total = 0;
	for (int i = 0; i < 3; i++) {
		assert_true(vd_used(&t.d, 0, &lens[i]));
		gpa_read(&t.d.mem, BUF + 0x1000u * i, got + total, lens[i]);
		total += lens[i];
	}
	assert_int_equal(total, sizeof(got));
	assert_int_equal(got[10] | got[11] << 8, 3); /* num_buffers */
	assert_memory_equal(got + NET_HDR_LEN, f, sizeof(f));
	nic_down(&t);
}

/* A guest that never posts receive buffers: frames wait (up to the backlog)
 * and the device stays healthy; a buffer posted later gets the oldest. */
static void receive_queue_never_refilled(void **state)
{
	struct nic t;
	nic_up(&t, VIRTIO_NET_F_MRG_RXBUF);
	uint8_t f[200];
	for (int i = 0; i < 100; i++) {
		make_frame(f, sizeof(f), (uint8_t)i);
		peer_send(&t, f, sizeof(f));
	}
	usleep(200000);
	assert_false(vd_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	struct vd_buf b = {BUF, 2048, true};
	vd_submit(&t.d, 0, &b, 1);
	assert_true(used_reaches(&t, 0, 1));
	uint8_t got[NET_HDR_LEN + 200];
	gpa_read(&t.d.mem, BUF, got, sizeof(got));
	make_frame(f, sizeof(f), 0);
	assert_memory_equal(got + NET_HDR_LEN, f, sizeof(f));
	nic_down(&t);
}

/* Transmit buffers the device could write, or a receive buffer it could
 * only read: the driver broke the protocol, the device wants a reset. */
static void hostile_chains_need_reset(void **state)
{
	struct nic t;
	nic_up(&t, VIRTIO_NET_F_MRG_RXBUF);
	transmit(&t, 60, 0, true);
	assert_true(vd_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	nic_down(&t);

	nic_up(&t, VIRTIO_NET_F_MRG_RXBUF);
	struct vd_buf b = {BUF, 2048, false};
	vd_submit(&t.d, 0, &b, 1);
	uint8_t f[60];
	make_frame(f, sizeof(f), 0);
	peer_send(&t, f, sizeof(f));
	for (int i = 0; i < 500 && !(vd_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET); i++)
		usleep(10000);
	assert_true(vd_status(&t.d) & VIRTIO_STATUS_NEEDS_RESET);
	nic_down(&t);
}

static void header_check(void **state)
{
	struct virtio_net_hdr h = {0};
	assert_int_equal(virtio_net_hdr_check(&h, 0, 60), 0);
	assert_int_equal(virtio_net_hdr_check(&h, 0, 10), -1);	 /* shorter than Ethernet */
	assert_int_equal(virtio_net_hdr_check(&h, 0, 1519), -1); /* over the MTU, no TSO */
	/* The big MTU (user networking) when the driver took it, not beyond. */
	assert_int_equal(virtio_net_hdr_check(&h, VIRTIO_NET_F_MTU, NET_BIG_MAX), 0);
	assert_int_equal(virtio_net_hdr_check(&h, VIRTIO_NET_F_MTU, NET_BIG_MAX + 1), -1);
	h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h.csum_start = 34;
	h.csum_offset = 16;
	assert_int_equal(virtio_net_hdr_check(&h, 0, 60), -1); /* CSUM not negotiated */
	assert_int_equal(virtio_net_hdr_check(&h, VIRTIO_NET_F_CSUM, 60), 0);
	assert_int_equal(virtio_net_hdr_check(&h, VIRTIO_NET_F_CSUM, 51), -1); /* field outside */
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	h.gso_size = 1448;
	h.hdr_len = 54;
	uint64_t tso = VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4;
	assert_int_equal(virtio_net_hdr_check(&h, tso, 9000), 0);
	assert_int_equal(virtio_net_hdr_check(&h, VIRTIO_NET_F_CSUM, 9000), -1);
	assert_int_equal(virtio_net_hdr_check(&h, tso, 70000), -1);
	h.hdr_len = 9001; /* a header length that lies */
	assert_int_equal(virtio_net_hdr_check(&h, tso, 9000), -1);
	h.hdr_len = 54;
	h.gso_type |= VIRTIO_NET_HDR_GSO_ECN;
	assert_int_equal(virtio_net_hdr_check(&h, tso, 9000), -1);
}

static void net_option(void **state)
{
	char err[256];
	struct net_config nc;
	char a[] = "user,hostfwd=tcp::8080-:80,hostfwd=udp:0.0.0.0:53-10.0.2.16:5353,restrict=on,"
		   "mac=52:54:00:aa:bb:cc,capture=/tmp/x.pcap";
	assert_int_equal(net_config_parse(a, &nc, err, sizeof(err)), 0);
	assert_int_equal(nc.kind, NET_USER);
	assert_int_equal(nc.nhostfwd, 2);
	assert_false(nc.hostfwd[0].udp);
	assert_null(nc.hostfwd[0].host_addr);
	assert_int_equal(nc.hostfwd[0].host_port, 8080);
	assert_int_equal(nc.hostfwd[0].guest_port, 80);
	assert_true(nc.hostfwd[1].udp);
	assert_string_equal(nc.hostfwd[1].host_addr, "0.0.0.0");
	assert_string_equal(nc.hostfwd[1].guest_addr, "10.0.2.16");
	assert_true(nc.restricted);
	assert_true(nc.mac_set && nc.mac[5] == 0xcc);
	assert_string_equal(nc.capture, "/tmp/x.pcap");
	assert_string_equal(nc.spec, "user,hostfwd=tcp::8080-:80,hostfwd=udp:0.0.0.0:53-10.0.2.16:"
				     "5353,restrict=on,mac=52:54:00:aa:bb:cc,capture=/tmp/x.pcap");
	char b[] = "tap=tap0";
	assert_int_equal(net_config_parse(b, &nc, err, sizeof(err)), 0);
	assert_int_equal(nc.kind, NET_TAP);
	assert_string_equal(nc.target, "tap0");
	char v6[] = "user,hostfwd=tcp:[::1]:8080-[fd00::5054:ff:fe12:3456]:80";
	assert_int_equal(net_config_parse(v6, &nc, err, sizeof(err)), 0);
	assert_string_equal(nc.hostfwd[0].host_addr, "::1");
	assert_string_equal(nc.hostfwd[0].guest_addr, "fd00::5054:ff:fe12:3456");
	assert_int_equal(nc.hostfwd[0].host_port, 8080);
	const char *bad[] = {"tap",
			     "user,hostfwd=tcp:[::1:8080-:80",
			     "user,hostfwd=tcp:[]:8080-:80",
			     "user,hostfwd=tcp::0-:80",
			     "user,hostfwd=sctp::1-:2",
			     "tap=x,restrict=on",
			     "user,mac=53:54:00:00:00:01",
			     "socket=",
			     "usr"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char c[64];
		snprintf(c, sizeof(c), "%s", bad[i]);
		err[0] = 0;
		assert_int_equal(net_config_parse(c, &nc, err, sizeof(err)), -1);
		assert_true(err[0]);
	}
}

static void mac_stable_and_distinct(void **state)
{
	struct net_config nc = {0};
	uint8_t a[6], b[6], c[6];
	net_mac(&nc, "web", 0, a);
	net_mac(&nc, "web", 0, b);
	assert_memory_equal(a, b, 6);
	net_mac(&nc, "db", 0, c);
	assert_memory_not_equal(a, c, 6);
	net_mac(&nc, "web", 1, c);
	assert_memory_not_equal(a, c, 6);
	assert_int_equal(a[0] & 3, 2); /* locally administered, unicast */
}

static void switch_learns(void **state)
{
	struct switch_table t;
	const uint8_t x[6] = {0x52, 0, 0, 0, 0, 1}, y[6] = {0x52, 0, 0, 0, 0, 2},
		      bc[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	switch_table_init(&t);
	assert_int_equal(switch_lookup(&t, x), -1);
	switch_learn(&t, x, 3);
	switch_learn(&t, y, 5);
	switch_learn(&t, bc, 6); /* a group address is never learned */
	assert_int_equal(switch_lookup(&t, x), 3);
	assert_int_equal(switch_lookup(&t, y), 5);
	assert_int_equal(switch_lookup(&t, bc), -1);
	switch_learn(&t, x, 4); /* it moved */
	assert_int_equal(switch_lookup(&t, x), 4);
	switch_forget(&t, 5);
	assert_int_equal(switch_lookup(&t, y), -1);
	/* A full table replaces entries instead of failing. */
	for (unsigned i = 0; i < 2 * SWITCH_MACS; i++) {
		uint8_t m[6] = {0x52, 1, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
		switch_learn(&t, m, 1);
		assert_int_equal(switch_lookup(&t, m), 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_and_features),
	    cmocka_unit_test(transmit_reaches_the_switch),
	    cmocka_unit_test(transmit_completes_checksum),
	    cmocka_unit_test(receive_merges_buffers),
	    cmocka_unit_test(receive_queue_never_refilled),
	    cmocka_unit_test(hostile_chains_need_reset),
	    cmocka_unit_test(header_check),
	    cmocka_unit_test(net_option),
	    cmocka_unit_test(mac_stable_and_distinct),
	    cmocka_unit_test(switch_learns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
