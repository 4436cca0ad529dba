/* devpolicy: virtio requests for the policy tests (tests/integration/57-policy-dev.sh).
 * cmdline words choose what it does, each printing one line the test reads:
 *   write sector=N [sectors=K]  write K sectors of 0xa5 at N, then FLUSH: "write N: status S"
 *   rate ops=N [bytes=B]        N reads of B bytes (512): "rate: N ops in U us, X ops/s, Y B/s"
 *   rng [len=N]                 one entropy request of N bytes (16): "rng: L bytes HEX"
 * It passes unless the device never answers. */
#include "guest.h"
#include "popek/hypercall.h"
#include "virtio.h"

const char guest_name[] = "devpolicy";

#define SECTOR 512

static struct virtio_dev dev;
static uint8_t buf[64 << 10] __attribute__((aligned(4096)));

static void blk_start(void)
{
	if (!vio_find(&dev, VIO_ID_BLOCK))
		fail("no virtio-blk device (run with --disk)");
	if (!vio_start(&dev, 1))
		fail("virtio-blk did not start (status %#x)", vio_status(&dev));
}

static void do_write(const struct boot_info *bi)
{
	uint64_t sector = boot_arg(bi, "sector", 0), n = boot_arg(bi, "sectors", 1);
	if (n * SECTOR > sizeof(buf))
		fail("sectors=%lu is more than this guest's buffer", n);
	memset(buf, 0xa5, n * SECTOR);
	int st = vblk_request(&dev, VBLK_T_OUT, sector, buf, (uint32_t)(n * SECTOR));
	if (st == VBLK_TIMEOUT)
		fail("write %lu: the device never answered", sector);
	kprintf("write %lu: status %d\n", sector, st);
	st = vblk_request(&dev, VBLK_T_FLUSH, 0, NULL, 0);
	kprintf("flush: status %d\n", st);
}

static void do_rate(const struct boot_info *bi)
{
	uint64_t ops = boot_arg(bi, "ops", 100), bytes = boot_arg(bi, "bytes", SECTOR);
	if (!bytes || bytes % SECTOR || bytes > sizeof(buf))
		fail("bytes=%lu: a multiple of 512 up to %lu", bytes, (uint64_t)sizeof(buf));
	uint64_t t0 = (uint64_t)hc_get_time(POPEK_CLOCK_MONOTONIC);
	for (uint64_t i = 0; i < ops; i++) {
		int st = vblk_request(&dev, VBLK_T_IN, 0, buf, (uint32_t)bytes);
		if (st != VBLK_S_OK)
			fail("read %lu: status %d", i, st);
	}
	uint64_t us = ((uint64_t)hc_get_time(POPEK_CLOCK_MONOTONIC) - t0) / 1000;
	if (!us)
		us = 1;
	kprintf("rate: %lu ops in %lu us, %lu ops/s, %lu B/s\n", ops, us, ops * 1000000 / us,
		ops * bytes * 1000000 / us);
}

static void do_rng(const struct boot_info *bi)
{
	uint64_t len = boot_arg(bi, "len", 16);
	if (!len || len > 64)
		fail("len=%lu: 1 to 64", len);
	if (!vio_find(&dev, VIO_ID_RNG))
		fail("no virtio-rng device");
	if (!vio_start(&dev, 1))
		fail("virtio-rng did not start (status %#x)", vio_status(&dev));
	memset(buf, 0, len);
	struct vio_buf b = {(uint64_t)buf, (uint32_t)len, true};
	vio_submit(&dev, 0, &b, 1);
	uint32_t got;
	if (!vio_wait_used(&dev, 0, &got, 10000000))
		fail("virtio-rng never answered");
	kprintf("rng: %u bytes ", got);
	for (uint32_t i = 0; i < got && i < len; i++)
		kprintf("%02x", buf[i]);
	kprintf("\n");
}

int guest_main(const struct boot_info *bi)
{
	pic_disable();
	if (boot_flag(bi, "rng")) {
		do_rng(bi);
		return 0;
	}
	blk_start();
	if (boot_flag(bi, "write"))
		do_write(bi);
	else if (boot_flag(bi, "rate"))
		do_rate(bi);
	else
		fail("say write, rate or rng on the cmdline");
	return 0;
}
