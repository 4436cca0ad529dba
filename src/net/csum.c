#include "net/csum.h"

void csum_complete(uint8_t *f, size_t len, size_t start, size_t offset)
{
	/* Big-endian 16-bit words summed 32 bits at a time: carries collect in
	 * the upper half of the 64-bit sum and fold back at the end. */
	uint64_t sum = 0;
	size_t i = start;
	for (; i + 4 <= len; i += 4)
		sum += (uint32_t)f[i] << 24 | (uint32_t)f[i + 1] << 16 | (uint32_t)f[i + 2] << 8 |
		       f[i + 3];
	for (; i + 2 <= len; i += 2)
		sum += (uint32_t)f[i] << 8 | f[i + 1];
	if (i < len)
		sum += (uint32_t)f[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	/* 0 and 0xffff are the same number; UDP reserves 0 for "no checksum" */
	uint16_t c = (uint16_t)~sum ? (uint16_t)~sum : 0xffff;
	f[start + offset] = (uint8_t)(c >> 8);
	f[start + offset + 1] = (uint8_t)c;
}
