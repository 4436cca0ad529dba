/* Fuzz the address space of popek exec (mm.c) as a hostile program drives
 * it: each 8-byte record is an mmap, munmap, mprotect, mremap, read or write
 * of a guest range, a walk of the mappings or a guest iovec array; popek's
 * page tables must stay consistent (a written
 * byte reads back while mapped writable) and never touch host memory
 * outside guest RAM (ASan). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "exec/exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPAN (64 * XPAGE) /* the fuzzed window of the address space */

/* /proc/self/maps' walk: runs in address order, none empty or overlapping. */
static void check_range(void *ctx, uint64_t start, uint64_t end, int prot)
{
	uint64_t *last = ctx;
	if (start >= end || start < *last || (start | end) & (XPAGE - 1) || prot & ~7)
		abort();
	*last = end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mm mm;
	static bool ready;
	char err[256];
	if (!ready) {
		if (mm_init(&mm, 16u << 20, err, sizeof(err)))
			abort();
		ready = true;
	}
	mm_reset(&mm);
	const uint64_t base = 0x10000000;
	for (size_t i = 0; i + 8 <= size; i += 8) {
		const uint8_t *r = data + i;
		uint64_t va = base + (uint64_t)(r[1] % 64) * XPAGE;
		uint64_t len = (uint64_t)(r[2] % 16 + 1) * XPAGE;
		int prot = r[3] & 7;
		uint8_t buf[3 * XPAGE];
		size_t n = (size_t)(r[4] | r[5] << 8) % sizeof(buf);
		uint64_t at = va + r[6] * 16;
		switch (r[0] % 9) {
		case 0:
			mm_map_anon(&mm, va, len, prot);
			break;
		case 1:
			mm_unmap(&mm, va, len);
			break;
		case 2:
			mm_protect(&mm, va, len, prot);
			break;
		case 3:
			if (mm_range_free(&mm, base + SPAN, len))
				mm_move(&mm, va, len, base + SPAN);
			mm_unmap(&mm, base + SPAN, 16 * XPAGE);
			break;
		case 4:
			mm_read(&mm, at, buf, n);
			break;
		case 5: {
			memset(buf, r[7], n);
			if (mm_write(&mm, at, buf, n) == 0 && n) {
				uint8_t back[sizeof(buf)];
				if (mm_read(&mm, at, back, n) || memcmp(back, buf, n))
					abort();
			}
			break;
		}
		case 6: {
			struct iovec iov[8];
			int k = mm_iov(&mm, at, n, r[7] & 1, iov, 8);
			for (int j = 0; j < k; j++)
				memset(iov[j].iov_base, 0, iov[j].iov_len);
			break;
		}
		case 7: {
			uint64_t last = 0;
			mm_ranges(&mm, check_range, &last);
			break;
		}
		case 8: { /* a guest iovec array, as readv/sendmsg take it */
			struct iovec iov[8];
			int k = mm_iovec(&mm, at, r[7] % 8, true, iov, 8);
			for (int j = 0; j < k; j++)
				memset(iov[j].iov_base, 0, iov[j].iov_len);
			break;
		}
		}
	}
	return 0;
}
