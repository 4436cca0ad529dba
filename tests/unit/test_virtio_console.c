/* virtio-console (TX callback, RX by offering input) and virtio-rng, driven
 * through the PCI transport. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "virtio_driver.h"

#define BUF  0x200000
#define F_V1 (1ull << VIRTIO_F_VERSION_1)

struct sink {
	char buf[64];
	size_t len;
};

static void tx(void *ctx, const void *buf, size_t len)
{
	struct sink *k = ctx;
	memcpy(k->buf + k->len, buf, len);
	k->len += len;
}

static void count_tx(void *ctx, const void *buf, size_t len)
{
	*(size_t *)ctx += len;
}

/* A TX chain of 254 buffers of 4 MiB each (all the same RAM) is 1 GiB of
 * output for one request: the device sends the first 64 KiB only. */
static void console_tx_bounded(void **state)
{
	struct vdrv d;
	size_t sent = 0;
	char err[128];
	vd_init(&d);
	struct virtio_console *con =
	    virtio_console_create(&d.env, count_tx, &sent, err, sizeof(err));
	assert_non_null(con);
	assert_true(vd_start(&d, F_V1 | 1ull << VIRTIO_F_INDIRECT_DESC, 2, true) &
		    VIRTIO_STATUS_DRIVER_OK);
	/* An indirect table holds the 254 descriptors (the ring has VD_QSIZE). */
	uint64_t table = BUF + 0x10000;
	for (unsigned i = 0; i < 254; i++) {
		struct virtq_desc e = {BUF, 4u << 20, i + 1 < 254 ? VIRTQ_DESC_F_NEXT : 0,
				       (uint16_t)(i + 1)};
		gpa_write(&d.mem, table + 16 * i, &e, sizeof(e));
	}
	struct virtq_desc head = {table, 254 * 16, VIRTQ_DESC_F_INDIRECT, 0};
	gpa_write(&d.mem, d.q[1].desc, &head, sizeof(head));
	uint16_t zero = 0, one = 1;
	gpa_write(&d.mem, d.q[1].avail + 4, &zero, 2);
	gpa_write(&d.mem, d.q[1].avail + 2, &one, 2);
	vd_wr(&d, VIRTIO_BAR_NOTIFY + 1 * VIRTIO_NOTIFY_MULTIPLIER, 2, 1);
	uint32_t len;
	assert_true(vd_used(&d, 1, &len));
	assert_int_equal(sent, 64u << 10);
	assert_false(vd_status(&d) & VIRTIO_STATUS_NEEDS_RESET);
	virtio_console_destroy(con);
	vd_fini(&d);
}

static void console_tx_and_rx(void **state)
{
	struct vdrv d;
	struct sink out = {0};
	char err[128];
	vd_init(&d);
	struct virtio_console *con = virtio_console_create(&d.env, tx, &out, err, sizeof(err));
	assert_non_null(con);
	assert_int_equal(vd_cfg(&d, PCI_DEVICE_ID, 2), 0x1043);
	/* before the driver is up, input waits */
	assert_int_equal(virtio_console_input(con, (const uint8_t *)"x", 1), 0);
	assert_true(vd_start(&d, F_V1, 2, true) & VIRTIO_STATUS_DRIVER_OK);

	/* TX: the guest's bytes reach the host side, in order, across buffers. */
	gpa_write(&d.mem, BUF, "hello world", 11);
	vd_submit(&d, 1, (struct vd_buf[]){{BUF, 6, false}, {BUF + 6, 5, false}}, 2);
	assert_int_equal(out.len, 11);
	assert_memory_equal(out.buf, "hello world", 11);
	uint32_t len;
	assert_true(vd_used(&d, 1, &len));
	assert_int_equal(len, 0);

	/* RX: no buffer posted yet, nothing is taken. */
	assert_int_equal(virtio_console_input(con, (const uint8_t *)"abcdef", 6), 0);
	vd_submit(&d, 0, (struct vd_buf[]){{BUF + 0x1000, 4, true}}, 1);
	int msis = d.msis;
	assert_int_equal(virtio_console_input(con, (const uint8_t *)"abcdef", 6), 4);
	assert_int_equal(d.msis, msis + 1);
	assert_true(vd_used(&d, 0, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(gpa_ptr(&d.mem, BUF + 0x1000, 4), "abcd", 4);
	vd_submit(&d, 0, (struct vd_buf[]){{BUF + 0x2000, 64, true}}, 1);
	assert_int_equal(virtio_console_input(con, (const uint8_t *)"ef", 2), 2);
	assert_true(vd_used(&d, 0, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(gpa_ptr(&d.mem, BUF + 0x2000, 2), "ef", 2);

	/* A broken RX chain flags the device instead of taking input. */
	vd_submit(&d, 0, (struct vd_buf[]){{VD_RAM, 64, true}}, 1);
	assert_int_equal(virtio_console_input(con, (const uint8_t *)"z", 1), 0);
	assert_true(vd_status(&d) & VIRTIO_STATUS_NEEDS_RESET);

	virtio_console_destroy(con);
	vd_fini(&d);
}

static void rng_fills_buffers(void **state)
{
	struct vdrv d;
	char err[128];
	vd_init(&d);
	struct virtio_rng *rng = virtio_rng_create(&d.env, err, sizeof(err));
	assert_non_null(rng);
	assert_int_equal(vd_cfg(&d, PCI_DEVICE_ID, 2), 0x1044);
	assert_true(vd_start(&d, F_V1, 1, true) & VIRTIO_STATUS_DRIVER_OK);
	memset(gpa_ptr(&d.mem, BUF, 64), 0, 64);
	vd_submit(&d, 0, (struct vd_buf[]){{BUF, 32, true}, {BUF + 32, 32, true}}, 2);
	uint32_t len;
	assert_true(vd_used(&d, 0, &len));
	assert_int_equal(len, 64);
	static const uint8_t zero[32];
	assert_memory_not_equal(gpa_ptr(&d.mem, BUF, 32), zero, 32);
	assert_memory_not_equal(gpa_ptr(&d.mem, BUF + 32, 32), zero, 32);
	/* a huge buffer is answered in bounded chunks */
	vd_submit(&d, 0, (struct vd_buf[]){{BUF, 1u << 20, true}}, 1);
	assert_true(vd_used(&d, 0, &len));
	assert_int_equal(len, 64u << 10);
	virtio_rng_destroy(rng);
	vd_fini(&d);
}

struct binding {
	uint64_t gpa;
	unsigned len;
	int fd;
	bool bound;
};

static struct binding bindings[4];

static int fake_ioeventfd(void *ctx, uint64_t gpa, unsigned len, int fd, bool assign)
{
	for (int i = 0; i < 4; i++) {
		struct binding *b = &bindings[i];
		if (assign && !b->bound) {
			*b = (struct binding){gpa, len, fd, true};
			return 0;
		}
		if (!assign && b->bound && b->gpa == gpa && b->fd == fd) {
			b->bound = false;
			return 0;
		}
	}
	return -1;
}

static int nbound(uint64_t *gpa)
{
	int n = 0;
	for (int i = 0; i < 4; i++)
		if (bindings[i].bound) {
			n++;
			*gpa = bindings[i].gpa;
		}
	return n;
}

static void *run_loop(void *l)
{
	loop_run(l);
	return NULL;
}

static bool wait_used(struct vdrv *d, uint32_t *len)
{
	for (int i = 0; i < 2000; i++) {
		if (vd_used(d, 0, len))
			return true;
		usleep(1000);
	}
	return false;
}

static void rng_kicked_by_eventfd(void **state)
{
	struct vdrv d;
	char err[128];
	uint64_t gpa = 0;
	memset(bindings, 0, sizeof(bindings));
	vd_init(&d);
	struct loop *l = loop_new(err, sizeof(err));
	assert_non_null(l);
	pthread_t lt;
	assert_int_equal(pthread_create(&lt, NULL, run_loop, l), 0);
	d.env.ioeventfd = (struct ioeventfd_sink){fake_ioeventfd, NULL};
	d.env.loop = l;
	struct virtio_rng *rng = virtio_rng_create(&d.env, err, sizeof(err));
	assert_non_null(rng);
	/* bound at the notify area of the firmware-placed BAR, 16-bit writes */
	assert_int_equal(nbound(&gpa), 1);
	assert_int_equal(gpa, PCI_MMIO_START + VIRTIO_BAR_NOTIFY);
	assert_int_equal(bindings[0].len, 2);
	assert_true(vd_start(&d, F_V1, 1, true) & VIRTIO_STATUS_DRIVER_OK);

	/* the engine signals the eventfd; the loop thread does the work */
	vd_offer(&d, 0, (struct vd_buf[]){{BUF, 32, true}}, 1);
	uint64_t one = 1;
	assert_int_equal(write(bindings[0].fd, &one, 8), 8);
	uint32_t len = 0;
	assert_true(wait_used(&d, &len));
	assert_int_equal(len, 32);

	/* a paused loop leaves the kick pending: no used entry until resumed */
	loop_pause(l, true);
	vd_offer(&d, 0, (struct vd_buf[]){{BUF, 16, true}}, 1);
	assert_int_equal(write(bindings[0].fd, &one, 8), 8);
	usleep(50 * 1000);
	assert_false(vd_used(&d, 0, &len));
	loop_pause(l, false);
	assert_true(wait_used(&d, &len));
	assert_int_equal(len, 16);

	/* the binding follows the BAR, and goes away with memory decoding */
	pci_config_write(&d.pb, d.slot, 0, PCI_BAR0, 4, 0xd0000000);
	assert_int_equal(nbound(&gpa), 1);
	assert_int_equal(gpa, 0xd0000000 + VIRTIO_BAR_NOTIFY);
	pci_config_write(&d.pb, d.slot, 0, PCI_COMMAND, 2, 0);
	assert_int_equal(nbound(&gpa), 0);
	pci_config_write(&d.pb, d.slot, 0, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(nbound(&gpa), 1);
	loop_stop(l);
	pthread_join(lt, NULL);
	virtio_rng_destroy(rng);
	assert_int_equal(nbound(&gpa), 0);
	loop_free(l);
	vd_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(console_tx_and_rx),
	    cmocka_unit_test(console_tx_bounded),
	    cmocka_unit_test(rng_fills_buffers),
	    cmocka_unit_test(rng_kicked_by_eventfd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
