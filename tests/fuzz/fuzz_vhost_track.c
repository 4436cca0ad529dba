/* popek's in-flight record of a vhost-user queue (devices/vhost_track.h)
 * against a hostile driver and a hostile backend. Each input byte is one
 * step: the driver posts a head (any value), the backend answers an id (any
 * value), either side moves its ring index by any amount, or popek looks at
 * the rings. Then the record is restored. It must never touch memory outside
 * the rings, and when it succeeds it must have handed over avail - used
 * distinct heads, all in the ring, from the used index on. */
#include <stdlib.h>
#include <string.h>

#include "devices/vhost_track.h"
#include "devices/virtqueue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define QSIZE 16
#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000

static struct guest_mem mem;

/* What the record of the rings reports written must be guest RAM. */
static void written(void *ctx, const void *hva, uint64_t len)
{
	(void)ctx;
	uintptr_t off = (uintptr_t)hva - (uintptr_t)mem.base;
	if (!hva || off >= mem.size || len > mem.size - off)
		abort();
}

static uint16_t idx_of(uint64_t ring)
{
	uint16_t v;
	gpa_read(&mem, ring + 2, &v, 2);
	return v;
}

static void move_idx(uint64_t ring, uint16_t by)
{
	uint16_t v = (uint16_t)(idx_of(ring) + by);
	gpa_write(&mem, ring + 2, &v, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	if (!mem.base && guest_mem_init(&mem, 2u << 20, err, sizeof(err)) < 0)
		abort();
	memset(mem.base, 0, 0x4000);
	mem.written = written;
	struct virtq vq;
	virtq_reset(&vq, QSIZE);
	vq.desc_gpa = DESC;
	vq.avail_gpa = AVAIL;
	vq.used_gpa = USED;
	if (virtq_enable(&vq, &mem) < 0)
		abort();
	static struct vhost_track t;
	vhost_track_start(&t, &vq);
	for (size_t i = 0; i < size; i++) {
		uint16_t arg = data[i] & 31, a = idx_of(AVAIL), u = idx_of(USED);
		switch (data[i] >> 5) {
		case 0: /* the driver posts head arg */
			gpa_write(&mem, AVAIL + 4 + 2u * (a % QSIZE), &arg, 2);
			move_idx(AVAIL, 1);
			break;
		case 1: { /* the backend answers id arg */
			uint32_t e[2] = {arg, 0};
			gpa_write(&mem, USED + 4 + 8u * (u % QSIZE), e, 8);
			move_idx(USED, 1);
			break;
		}
		case 2:
			move_idx(AVAIL, (uint16_t)(arg << 11));
			break;
		case 3:
			move_idx(USED, (uint16_t)(arg << 11));
			break;
		case 4: { /* the driver writes descriptor arg % QSIZE from what follows */
			struct virtq_desc d = {0};
			size_t n = size - i - 1 < sizeof(d) ? size - i - 1 : sizeof(d);
			memcpy(&d, data + i + 1, n);
			gpa_write(&mem, DESC + sizeof(d) * (arg % QSIZE), &d, sizeof(d));
			i += n;
			break;
		}
		default:
			vhost_track_update(&t, &vq);
		}
	}
	uint16_t base;
	if (vhost_track_restore(&t, &vq, &base) == 0) {
		uint16_t n = (uint16_t)(idx_of(AVAIL) - idx_of(USED));
		bool seen[QSIZE] = {false};
		if (base != idx_of(USED) || n > QSIZE)
			abort();
		for (uint16_t k = 0; k < n; k++) {
			uint16_t h;
			gpa_read(&mem, AVAIL + 4 + 2u * ((uint16_t)(base + k) % QSIZE), &h, 2);
			if (h >= QSIZE || seen[h])
				abort();
			seen[h] = true;
		}
	}
	return 0;
}
