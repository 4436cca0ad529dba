/* virtio-console (TX to a pipe, RX from a pipe via its input thread) and
 * virtio-rng, driven through the PCI transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/virtio_console.h"
#include "devices/virtio_rng.h"
#include "virtio_driver.h"

#define BUF  0x200000
#define F_V1 (1ull << VIRTIO_F_VERSION_1)

static bool wait_used(struct vdrv *d, unsigned q, uint32_t *len)
{
	for (int i = 0; i < 2000; i++) {
		if (vd_used(d, q, len))
			return true;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

static void console_tx_and_rx(void **state)
{
	struct vdrv d;
	char err[128];
	int in[2], out[2];
	vd_init(&d);
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	struct virtio_console *con = virtio_console_create(&d.env, in[0], out[1], err, sizeof(err));
	assert_non_null(con);
	assert_int_equal(vd_cfg(&d, PCI_DEVICE_ID, 2), 0x1043);
	assert_true(vd_start(&d, F_V1, 2, true) & VIRTIO_STATUS_DRIVER_OK);

	/* TX: the guest's bytes come out of the host fd. */
	gpa_write(&d.mem, BUF, "hello", 5);
	vd_submit(&d, 1, (struct vd_buf[]){{BUF, 5, false}}, 1);
	char got[8] = {0};
	assert_int_equal(read(out[0], got, sizeof(got)), 5);
	assert_string_equal(got, "hello");
	uint32_t len;
	assert_true(vd_used(&d, 1, &len));

	/* RX: input written before any buffer exists waits for one. */
	assert_int_equal(write(in[1], "abcdef", 6), 6);
	nanosleep(&(struct timespec){0, 20000000}, NULL);
	assert_false(vd_used(&d, 0, &len));
	vd_submit(&d, 0, (struct vd_buf[]){{BUF + 0x1000, 4, true}}, 1);
	assert_true(wait_used(&d, 0, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(gpa_ptr(&d.mem, BUF + 0x1000, 4), "abcd", 4);
	vd_submit(&d, 0, (struct vd_buf[]){{BUF + 0x2000, 64, true}}, 1);
	assert_true(wait_used(&d, 0, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(gpa_ptr(&d.mem, BUF + 0x2000, 2), "ef", 2);

	virtio_console_destroy(con);
	vd_fini(&d);
	close(in[0]), close(in[1]), close(out[0]), close(out[1]);
}

static void console_without_input(void **state)
{
	struct vdrv d;
	char err[128];
	int out[2];
	vd_init(&d);
	assert_int_equal(pipe(out), 0);
	struct virtio_console *con = virtio_console_create(&d.env, -1, out[1], err, sizeof(err));
	assert_non_null(con);
	assert_true(vd_start(&d, F_V1, 2, false) & VIRTIO_STATUS_DRIVER_OK);
	vd_submit(&d, 0, (struct vd_buf[]){{BUF, 16, true}}, 1);
	uint32_t len;
	assert_false(vd_used(&d, 0, &len));
	virtio_console_destroy(con);
	vd_fini(&d);
	close(out[0]), close(out[1]);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(console_tx_and_rx),
	    cmocka_unit_test(console_without_input),
	    cmocka_unit_test(rng_fills_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
