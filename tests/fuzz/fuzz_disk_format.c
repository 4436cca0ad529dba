/* The --disk format probe on hostile image headers: it must only ever look
 * inside the bytes it was given, and name a format or none. */
#include <stdlib.h>

#include "devices/disk_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f = disk_format_probe(data, size);
	if (f && !*f)
		abort();
	return 0;
}
