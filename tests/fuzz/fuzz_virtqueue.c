/* Fuzz the split virtqueue with arbitrary ring contents: whatever the driver
 * wrote, virtq_pop either returns a chain whose every buffer lies in guest RAM
 * or reports a broken ring; it never reads outside RAM and never loops. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtqueue.h"

#define RAM (2u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool in_ram(const struct guest_mem *m, const void *p, size_t len)
{
	const uint8_t *b = p;
	return b >= m->base && len <= m->size && (size_t)(b - m->base) <= m->size - len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static bool ready;
	char err[128];
	if (!ready) {
		if (guest_mem_init(&mem, RAM, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			abort();
		}
		ready = true;
	}
	if (size < 2)
		return 0;
	/* byte 0: queue size (log2) and INDIRECT_DESC; the rest is RAM from 0 on,
	 * where the rings live (avail first, so short inputs reach it). */
	struct virtq vq;
	virtq_reset(&vq, (uint16_t)(1u << (data[0] & 15)));
	vq.indirect = data[0] & 0x80;
	vq.avail_gpa = 0;
	vq.desc_gpa = 0x210;
	vq.used_gpa = 0x1210;
	memset(mem.base, 0, 0x10000);
	memcpy(mem.base, data + 1, size - 1 < 0x10000 ? size - 1 : 0x10000);
	if (virtq_enable(&vq, &mem) < 0)
		return 0;

	static struct vq_chain c;
	static uint8_t scratch[4096];
	for (int i = 0; i < 2 * VQ_MAX_SIZE; i++) {
		int r = virtq_pop(&vq, &c);
		if (r <= 0)
			break;
		if (c.head >= vq.size || c.nread + c.nwrite > VQ_MAX_SIZE)
			abort();
		uint64_t rl = 0, wl = 0;
		for (unsigned k = 0; k < c.nread + c.nwrite; k++) {
			if (!in_ram(&mem, c.iov[k].iov_base, c.iov[k].iov_len))
				abort();
			*(k < c.nread ? &rl : &wl) += c.iov[k].iov_len;
		}
		if (rl != c.read_len || wl != c.write_len)
			abort();
		vq_chain_read(&c, 0, scratch, sizeof(scratch));
		vq_chain_write(&c, 0, scratch, sizeof(scratch));
		virtq_push(&vq, c.head, (uint32_t)c.write_len);
	}
	return 0;
}
