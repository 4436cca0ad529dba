/* memwrite: a ring-3 computation that keeps rewriting a buffer, for the
 * migration tests. Each round mixes every page of the buffer into a running
 * hash and writes a new value into each, so a page a migration failed to
 * resend changes the final result.
 * cmdline: rounds=N (default 60), pages=N of the 8 MiB buffer (default 512),
 * iters=N of extra computation per round (default 2000000). */
#include "guest.h"

const char guest_name[] = "memwrite";

#define SYS_PROGRESS 1
#define MAX_PAGES    2048

USER_DATA static uint64_t rounds = 60, pages = 512, iters = 2000000, state = 0x243f6a8885a308d3ull;
USER_BSS static uint64_t buf[MAX_PAGES][512];

USER_TEXT static uint64_t mix(uint64_t x)
{
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	return x * 0x2545f4914f6cdd1dull;
}

USER_TEXT static void user_main(void)
{
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t x = state;
		for (uint64_t i = 0; i < iters; i++)
			x = mix(x);
		for (uint64_t p = 0; p < pages; p++) {
			uint64_t *w = &buf[p][(r * 7 + p) % 512];
			x = mix(x ^ *w ^ buf[p][(r * 13 + p * 3) % 512]);
			*w = x;
		}
		state = x;
		usys_int3(SYS_PROGRESS, (long)r, 0, 0);
	}
	usys_int3(USYS_EXIT, 0, 0, 0);
}

static long sys(struct trap_frame *f)
{
	if (f->rax == SYS_PROGRESS) {
		kprintf("memwrite: round %lu\n", f->rdi);
		return 0;
	}
	return user_exit_only(f);
}

int guest_main(const struct boot_info *bi)
{
	rounds = boot_arg(bi, "rounds", rounds);
	pages = boot_arg(bi, "pages", pages);
	iters = boot_arg(bi, "iters", iters);
	if (pages > MAX_PAGES)
		pages = MAX_PAGES;
	user_init(sys);
	if (user_run(user_main) != 0)
		fail("user mode exited with an error");
	uint64_t h = state;
	for (uint64_t p = 0; p < MAX_PAGES; p++)
		for (unsigned i = 0; i < 512; i++)
			h = (h ^ buf[p][i]) * 0x100000001b3ull;
	kprintf("memwrite: result %#018lx after %lu rounds over %lu pages\n", h, rounds, pages);
	return 0;
}
