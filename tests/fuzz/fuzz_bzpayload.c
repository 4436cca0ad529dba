/* Fuzz the host-side bzImage payload decoder with arbitrary payloads (any
 * magic, any declared size, any stream), read as the loader reads a vmlinux
 * (headers into a buffer, a skip, a segment into a buffer, the rest): it
 * either decodes or refuses with a message, reading only inside the input
 * and writing only inside the buffers it is given. */
#include <stdlib.h>
#include <string.h>

#include "boot/bzpayload.h"

/* Bounds the output per input, as guest RAM bounds it in popek. */
#define MAX_OUT (16u << 20)

static uint8_t buf[64 << 10];

static void said_why(const char *err)
{
	if (!memchr(err, 0, 256) || !err[0])
		abort(); /* a refusal must say why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	uint64_t n;
	struct bzpayload *z = bzpayload_open(data, size, MAX_OUT, &n, err, sizeof(err));
	if (!z) {
		said_why(err);
		return 0;
	}
	if (!n || n > MAX_OUT)
		abort();
	uint64_t head = n < 4096 ? n : 4096, gap = (n - head) / 3;
	uint64_t seg = n - head - gap < sizeof(buf) ? n - head - gap : sizeof(buf);
	if (bzpayload_read(z, buf, head, err, sizeof(err)) ||
	    bzpayload_read(z, NULL, gap, err, sizeof(err)) ||
	    bzpayload_read(z, buf, seg, err, sizeof(err)) || bzpayload_finish(z, err, sizeof(err)))
		said_why(err);
	bzpayload_close(z);
	return 0;
}
