/* durable: numbered records on virtio-blk, each made durable before it is
 * reported. Record n (n = 1, 2, ...) fills sector n: magic, n, a payload derived
 * from n and a checksum over the rest. After each write the guest issues a
 * FLUSH, and only when the FLUSH completed with OK does it print "ack n": a
 * record the console reported must survive whatever happens to popek after
 * that line. When the disk is full it starts again at sector 1 with the next
 * numbers, so every sector always holds an intact record or its predecessor.
 * cmdline: records=N stops after N records (default: run until killed). */
#include "guest.h"
#include "virtio.h"

const char guest_name[] = "durable";

#define SECTOR	     512
#define RECORD_MAGIC 0x44524f4345524b50ull /* "PKRECORD" little-endian */

struct record {
	uint64_t magic, number;
	uint64_t payload[(SECTOR - 24) / 8];
	uint64_t checksum; /* FNV-1a of every byte before it */
};
_Static_assert(sizeof(struct record) == SECTOR, "one record per sector");

static struct virtio_dev blk;
static struct record rec;

static uint64_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

int guest_main(const struct boot_info *bi)
{
	uint64_t limit = boot_arg(bi, "records", 0);
	pic_disable();
	if (!vio_find(&blk, VIO_ID_BLOCK))
		fail("no virtio-blk device (run with --disk)");
	if (!vio_start(&blk, 1))
		fail("virtio-blk did not start (status %#x)", vio_status(&blk));
	uint64_t sectors = vblk_capacity(&blk);
	if (sectors < 2)
		fail("the disk has %lu sectors, need at least 2", sectors);
	kprintf("durable: %lu sectors\n", sectors);
	for (uint64_t n = 1; !limit || n <= limit; n++) {
		rec.magic = RECORD_MAGIC;
		rec.number = n;
		for (size_t i = 0; i < ARRAY_SIZE(rec.payload); i++)
			rec.payload[i] = n * 0x9e3779b97f4a7c15ull + i;
		rec.checksum = fnv1a(&rec, offsetof(struct record, checksum));
		uint64_t sector = 1 + (n - 1) % (sectors - 1);
		int st = vblk_request(&blk, VBLK_T_OUT, sector, &rec, SECTOR);
		if (st != VBLK_S_OK)
			fail("write of record %lu to sector %lu: status %d", n, sector, st);
		st = vblk_request(&blk, VBLK_T_FLUSH, 0, NULL, 0);
		if (st != VBLK_S_OK)
			fail("flush after record %lu: status %d", n, st);
		kprintf("ack %lu\n", n);
	}
	return 0;
}
