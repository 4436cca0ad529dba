/* Fuzz the host-side bzImage payload decoder with arbitrary payloads (any
 * magic, any declared size, any stream): it either returns exactly the
 * declared number of bytes or refuses with a message, reading only inside
 * the input and writing only inside the buffer it allocates. */
#include <stdlib.h>
#include <string.h>

#include "boot/bzpayload.h"

/* Bounds the allocation per input, as guest RAM bounds it in popek. */
#define MAX_OUT (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out;
	size_t n;
	char err[256];
	if (bzpayload_decompress(data, size, MAX_OUT, &out, &n, err, sizeof(err))) {
		if (out || !memchr(err, 0, sizeof(err)) || !err[0])
			abort(); /* a refusal must leave nothing and say why */
		return 0;
	}
	if (!n || n > MAX_OUT)
		abort();
	/* n is the buffer's own size: ASan checks its last byte is inside. */
	volatile uint8_t last = out[n - 1];
	(void)last;
	free(out);
	return 0;
}
