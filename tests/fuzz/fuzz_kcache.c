/* Fuzz the kernel cache's reader with arbitrary entry files: whatever the
 * bytes, kcache_load copies a kernel into guest RAM or refuses with a
 * message, reading only inside the entry and writing only inside guest RAM.
 * Odd-sized inputs get their header's checksum and key made to match, so
 * that the checks past them are reached as well. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/kcache.h"
#include "fuzz_util.h"

static struct kcache c;

static void remove_entry(void)
{
	unlink(c.path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *buf;
	struct cpu_state *st;
	char *err;
	size_t errlen;
	if (!c.path[0]) {
		snprintf(c.path, sizeof(c.path), "/tmp/fuzz_kcache.%d", (int)getpid());
		atexit(remove_entry);
	}
	buf = realloc(buf, size ? size : 1);
	memcpy(buf, data, size);
	memset(&c.head.key, 0, sizeof(c.head.key));
	if ((size & 1) && size >= sizeof(struct kcache_head)) {
		struct kcache_head h;
		memcpy(&h, buf, sizeof(h));
		h.head_hash = XXH64(&h, offsetof(struct kcache_head, head_hash), 0);
		memcpy(buf, &h, sizeof(h));
		c.head.key = h.key;
	}
	FILE *f = fopen(c.path, "wb");
	if (!f || fwrite(buf, 1, size, f) != size || fclose(f))
		abort();
	struct boot_args *a = fuzz_boot_args(buf, size, &st, &err, &errlen);
	struct elf_image e;
	int r = kcache_load(&c, a, &e, err, errlen);
	if (r < -1 || r > 1)
		abort();
	fuzz_boot_check(r, err);
	return 0;
}
