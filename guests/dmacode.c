/* dmacode: code a device wrote. The guest stores two small functions on
 * virtio-blk (sector 1 returns 1, sector 2 returns 2), then reads them in
 * turn into one page and calls it, many times after each read, so that the
 * CPU has cached (on the soft engine: decoded and translated) what it ran
 * before. After every read completes, a call must run the bytes the device
 * has just written: DMA is coherent with instruction fetch on x86 once the
 * driver has seen the completion. cmdline: rounds=N (default 40). */
#include "guest.h"
#include "virtio.h"

const char guest_name[] = "dmacode";

#define SECTOR 512
#define CALLS  300 /* per round: past the soft engine's translation threshold */

static struct virtio_dev blk;
static uint8_t page[4096] __attribute__((aligned(4096)));
static uint8_t sector[SECTOR];

/* mov $value, %eax; ret — then int3 to the end of the sector */
static void function(uint8_t *at, uint32_t value)
{
	for (int i = 0; i < SECTOR; i++)
		at[i] = 0xcc;
	at[0] = 0xb8;
	for (int i = 0; i < 4; i++)
		at[1 + i] = (uint8_t)(value >> (8 * i));
	at[5] = 0xc3;
}

int guest_main(const struct boot_info *bi)
{
	uint64_t rounds = boot_arg(bi, "rounds", 40);
	pic_disable();
	if (!vio_find(&blk, VIO_ID_BLOCK))
		fail("no virtio-blk device (run with --disk)");
	if (!vio_start(&blk, 1))
		fail("virtio-blk did not start (status %#x)", vio_status(&blk));
	if (vblk_capacity(&blk) < 3)
		fail("the disk has %lu sectors, need at least 3", vblk_capacity(&blk));
	for (uint32_t v = 1; v <= 2; v++) {
		function(sector, v);
		int st = vblk_request(&blk, VBLK_T_OUT, v, sector, SECTOR);
		if (st != VBLK_S_OK)
			fail("write of sector %u: status %d", v, st);
	}
	uint32_t (*call)(void) = (uint32_t(*)(void))(uintptr_t)page;
	for (uint64_t r = 0; r < rounds; r++) {
		uint32_t want = 1 + (uint32_t)(r & 1);
		int st = vblk_request(&blk, VBLK_T_IN, want, page, SECTOR);
		if (st != VBLK_S_OK)
			fail("read of sector %u: status %d", want, st);
		for (int i = 0; i < CALLS; i++) {
			uint32_t got = call();
			if (got != want)
				fail("round %lu, call %d after the read: the code returned %u, the "
				     "device wrote code returning %u",
				     r, i, got, want);
		}
	}
	kprintf("dmacode: %lu rounds of %d calls ran the code the device wrote\n", rounds, CALLS);
	return 0;
}
